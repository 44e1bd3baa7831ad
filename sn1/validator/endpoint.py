"""The validator's own endpoint: a small health page, published on chain.

Miners and operators can check that a validator is alive; it serves no
work, so it needs no authentication. The socket is bound before anything
slow happens, so a taken port is a one-line error at start.
"""

from __future__ import annotations

import asyncio
import logging
import socket

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from .. import __version__
from ..config import get
from ..protocol.connections import ConnectionGuard, ConnectionLimits, guarded_protocol
from ..protocol.serving import bind_socket, published_ip

log = logging.getLogger("sn1.validator")


def build_app(v) -> Starlette:
    async def health(request):
        return JSONResponse({
            "role": "validator", "version": __version__, "uid": v.uid,
            "hotkey": v.wallet.hotkey.ss58_address, "step": v.state.step,
        })

    return Starlette(routes=[Route("/health", health)])


def bind(config) -> socket.socket:
    """Bind --axon.ip/--axon.port now (UsageError if taken)."""
    from .config import DEFAULT_AXON_PORT

    return bind_socket(get(config, "axon.ip"), get(config, "axon.port"), "--axon.port", DEFAULT_AXON_PORT)


async def serve_endpoint(config, v, sock: socket.socket) -> asyncio.Task:
    # Public port: the same bounds as a miner's (header deadline, idle and per-address caps).
    limits = ConnectionLimits()
    server = uvicorn.Server(uvicorn.Config(build_app(v), log_config=None, access_log=False, lifespan="off",
                                           http=guarded_protocol(ConnectionGuard(limits)),
                                           timeout_keep_alive=limits.keepalive_timeout))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    ip = published_ip(config)
    port = get(config, "axon.external_port") or sock.getsockname()[1]
    try:
        await asyncio.to_thread(v.chain.serve, v.wallet, ip, port)
        log.info("serving /health on port %d, published %s:%d", sock.getsockname()[1], ip, port)
    except Exception as e:   # not fatal: the endpoint is informational
        log.warning("could not publish the validator endpoint on chain: %s", e)
    return task
