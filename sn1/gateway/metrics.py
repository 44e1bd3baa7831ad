"""The gateway's Prometheus metrics, in a registry of its own.

Every sample carries a ``replica`` label (``--gateway.replica``, default
``HOSTNAME:PORT``) so the replicas behind one load balancer stay apart when
they are summed. Served on ``--metrics.port`` (127.0.0.1) when it is set, and
then not on the public port; without it, on the public port's ``GET /metrics``
as before.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..protocol.metrics import ConstLabels, new_registry

TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
TPS_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 5000)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, replica: str = "", public: bool = True):
        r = self.registry = new_registry()
        self.replica = replica
        self.public = public        # also served on the public port's /metrics
        self.collector = ConstLabels(r, {"replica": replica}) if replica else r
        self.requests = Counter("sn1_gateway_requests", "Chat requests by HTTP status of the answer",
                                ["status"], registry=r)
        self.ttft = Histogram("sn1_gateway_ttft_seconds",
                              "Seconds from a request's arrival to its first content chunk",
                              buckets=TTFT_BUCKETS, registry=r)
        self.tokens_per_second = Histogram("sn1_gateway_tokens_per_second",
                                           "Completion tokens per second after the first chunk, per answer",
                                           buckets=TPS_BUCKETS, registry=r)
        self.tokens = Counter("sn1_gateway_completion_tokens", "Completion tokens relayed", registry=r)
        self.miner_failures = Counter("sn1_gateway_miner_failures",
                                      "Miner attempts that failed, by uid and kind", ["uid", "kind"], registry=r)
        self.in_flight = Gauge("sn1_gateway_in_flight", "Chat requests being answered", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.collector)
