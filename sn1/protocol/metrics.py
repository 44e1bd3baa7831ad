"""Prometheus metrics of every role, served on a port of their own (``--metrics.port``).

The shared part of the miner's, validator's and gateway's metrics (their
definitions live in ``sn1/miner/metrics.py``, ``sn1/validator/metrics.py`` and
``sn1/gateway/metrics.py``):

- ``add_args``: ``--metrics.port`` (0, the default: no metrics server) and
  ``--metrics.host`` (default ``127.0.0.1``: an operator's Prometheus scrapes
  the machine; a public port never serves metrics);
- ``bind``: the socket, bound at start-up before any model loads, so a taken
  port is a one-line error and not a failure minutes later;
- ``serve``: ``GET /metrics`` (Prometheus text format) on that socket, in the
  role's own event loop, behind the same connection bounds as a public port
  (header deadline, per-address and idle caps);
- ``new_registry``: a registry of the role's own (never the global one) with the
  process's CPU, memory and file-descriptor metrics;
- ``ConstLabels``: every sample of a registry with fixed labels added (the
  gateway's ``replica``).

Each role keeps its counters in plain Python or ``prometheus_client`` objects
updated where events happen; everything that is a state (queue depth, open
connections, top scores) is read when Prometheus scrapes, so it costs nothing
in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric

from ..config import Bounded, flag, get

log = logging.getLogger("sn1.metrics")

METRICS_PATH = "/metrics"
DEFAULT_HOST = "127.0.0.1"
METRICS_PORT = Bounded(int, 0, 65535, note="0: no metrics server")
# What a signed, registered caller says it is (the gateway sends "gateway"): the miner's metrics
# count requests by it; a label, never a right.
CALLER_HEADER = "x-sn1-caller"


def add_args(parser) -> None:
    flag(parser, "--metrics.port", type=METRICS_PORT, default=0,
         help="serve Prometheus metrics (GET /metrics) on this port; 0: off. Never the public port")
    flag(parser, "--metrics.host", default=DEFAULT_HOST,
         help="address of the metrics port (127.0.0.1: this machine only; 0.0.0.0 exposes them)")


def new_registry() -> CollectorRegistry:
    """A registry of the role's own, with the process's CPU, memory, fds, GC and Python version."""
    r = CollectorRegistry()
    ProcessCollector(registry=r)
    PlatformCollector(registry=r)
    GCCollector(registry=r)
    return r


def check(config, *public_ports: int | None) -> None:
    """UsageError when the metrics port is one of the role's public ports (it would never bind)."""
    from ..errors import UsageError

    port = get(config, "metrics.port") or 0
    if port and port in [p for p in public_ports if p]:
        raise UsageError(f"--metrics.port {port} is also the public port: metrics need a port of their own")


def bind(config, *public_ports: int | None) -> socket.socket | None:
    """The metrics socket (None with ``--metrics.port 0``); UsageError if the address is taken."""
    from .serving import bind_socket

    check(config, *public_ports)
    port = get(config, "metrics.port") or 0
    if not port:
        return None
    host = get(config, "metrics.host") or DEFAULT_HOST
    sock = bind_socket(host, port)
    if host not in ("127.0.0.1", "::1", "localhost"):
        log.warning("metrics served on %s:%d: anyone who reaches this address can read them", host, port)
    return sock


class ConstLabels:
    """A collector: every sample of ``registry`` with ``labels`` added (existing labels win)."""

    def __init__(self, registry, labels: dict[str, str]):
        self.registry = registry
        self.labels = dict(labels)

    def collect(self):
        extra = self.labels
        for fam in self.registry.collect():
            out = Metric(fam.name, fam.documentation, fam.type, fam.unit)
            out.samples = [s._replace(labels={**extra, **s.labels}) for s in fam.samples]
            yield out


def render(collector) -> bytes:
    return generate_latest(collector)


def build_app(collector):
    """The metrics port's ASGI app: ``GET /metrics`` and nothing else."""
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def metrics(request):
        return Response(render(collector), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route(METRICS_PATH, metrics)])


async def serve(sock: socket.socket | None, collector) -> asyncio.Task | None:
    """Serve ``collector`` on ``sock`` in this event loop (a task; None without a socket)."""
    if sock is None:
        return None
    import uvicorn

    from .connections import ConnectionGuard, ConnectionLimits, guarded_protocol

    limits = ConnectionLimits(max_per_ip=16, max_idle=64, max_per_validator_ip=16)
    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):      # the role's own server or loop handles SIGINT/SIGTERM
            yield

    server = Server(uvicorn.Config(build_app(collector), log_config=None, access_log=False,
                                   lifespan="off", http=guarded_protocol(ConnectionGuard(limits)),
                                   timeout_keep_alive=limits.keepalive_timeout, limit_concurrency=64))
    host, port = sock.getsockname()[:2]
    log.info("metrics on http://%s:%d%s", host, port, METRICS_PATH)
    return asyncio.create_task(server.serve(sockets=[sock]))
