"""The miner's Prometheus metrics (docs/operations.md lists them; served by ``--metrics.port``).

Updated at a few points of ``server.ChatEndpoint``: a refusal (``refused``), the
caller once identified (``identify``), the end of a generation (``generated``),
and the stream's first body write (``watch``: a callable wrapper around
``send``, one call and one attribute test per chunk). Everything that is a state (queue
depth, active generations, open connections) is read from the endpoint, the
priority gate and the connection guard when Prometheus scrapes, so it costs
nothing in between.

Labels have bounded values whatever callers send: ``status`` is the HTTP status
this miner chose, ``caller`` one of ``validator | gateway | other``, ``reason``
one of ``REASONS``, ``finish`` one of ``FINISHES``.
"""

from __future__ import annotations

import contextvars
import time

from prometheus_client import Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

from ..protocol.metrics import CALLER_HEADER, new_registry

TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
TPS_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 10000)

CALLERS = ("validator", "gateway", "other")
FINISHES = ("stop", "length", "timeout", "disconnect", "error")
# Auth failures by bittensor's exception name (in the refusal's message).
_AUTH = {"MalformedAuth": "malformed_auth", "WrongReceiver": "wrong_receiver", "StaleRequest": "stale",
         "ReplayedRequest": "replayed", "BadSignature": "bad_signature"}
REASONS = ("unsigned", *_AUTH.values(), "auth", "too_large", "body_timeout", "not_registered", "no_permit",
           "low_stake", "stale_weights", "bad_request", "no_logprobs", "wrong_model", "busy", "no_slot_in_time", "overloaded", "other")

_CALLER: contextvars.ContextVar[str] = contextvars.ContextVar("sn1_miner_caller", default="other")


def refusal_reason(status: int, message: str) -> str:
    """The bounded reason of one of ``ChatEndpoint``'s refusals (its status and one-line message)."""
    if status == 401:
        if message.startswith("missing btauth"):
            return "unsigned"
        return _AUTH.get(message.partition(":")[0], "auth")
    if status == 403:
        if "validator permit" in message:
            return "no_permit"
        if "stake, less than" in message:
            return "low_stake"
        if "last set weights" in message:
            return "stale_weights"
        return "not_registered"
    if status == 400 and "cannot report token logprobs" in message:
        return "no_logprobs"
    if status == 400 and "is not served here" in message:
        return "wrong_model"
    return {413: "too_large", 408: "body_timeout", 400: "bad_request", 422: "bad_request", 429: "busy",
            503: "no_slot_in_time"}.get(status, "other")


class FirstWrite:
    """``send`` (wrapped once the response has started) that notes when the first body bytes
    went out: the reader's first token."""

    __slots__ = ("send", "t")

    def __init__(self, send):
        self.send = send
        self.t: float | None = None

    def __call__(self, message):
        if self.t is None:
            self.t = time.monotonic()
        return self.send(message)      # the awaitable itself: no extra coroutine per chunk


class MinerMetrics:
    """One miner's metrics, in a registry of its own (``collector`` is what the port serves)."""

    def __init__(self, chat):
        self.chat = chat                  # the ChatEndpoint: gate, settings, model
        self.guard = None                 # ConnectionGuard / Admission, when the server has them
        self.admission = None
        self.requests: dict[tuple[str, str], int] = {}
        self.refusals: dict[str, int] = {}
        self.generations: dict[tuple[str, str], int] = {}
        self.tokens = 0
        r = self.collector = new_registry()
        self.ttft = Histogram("sn1_miner_ttft_seconds", "Seconds from a request's arrival to its first "
                              "streamed chunk written", buckets=TTFT_BUCKETS, registry=r)
        self.tokens_per_second = Histogram("sn1_miner_tokens_per_second", "Tokens per second of a streamed "
                                           "answer after its first chunk", buckets=TPS_BUCKETS, registry=r)
        r.register(self)

    def attach(self, guard=None, admission=None) -> "MinerMetrics":
        self.guard, self.admission = guard, admission
        return self

    # ---- events (server.py) ---------------------------------------------------------------------
    @staticmethod
    def identify(neuron, headers) -> None:
        """The verified caller's kind, for this request's counters (a context variable: per request)."""
        if neuron is None:
            kind = "other"
        elif headers.get(CALLER_HEADER, "").strip().lower() == "gateway":
            kind = "gateway"
        else:
            kind = "validator" if getattr(neuron, "validator_permit", False) else "other"
        _CALLER.set(kind)

    def refused(self, status: int, message: str) -> None:
        reason = refusal_reason(status, message)
        self.refusals[reason] = self.refusals.get(reason, 0) + 1
        self._request(str(status))

    def _request(self, status: str) -> None:
        key = (status, _CALLER.get())
        self.requests[key] = self.requests.get(key, 0) + 1

    @staticmethod
    def watch(send, stream: bool):
        return FirstWrite(send) if stream else send

    def generated(self, finish: str, tokens: int, t_arrival: float, send, error=None) -> None:
        """A generation ended (``send`` as returned by ``watch``)."""
        now = time.monotonic()
        stream = isinstance(send, FirstWrite)
        if finish not in FINISHES:
            finish = "error"
        key = (finish, _CALLER.get())
        self.generations[key] = self.generations.get(key, 0) + 1
        self.tokens += tokens
        self._request("499" if finish == "disconnect" else "500" if error is not None and not stream else "200")
        if stream and send.t is not None and tokens > 0:
            self.ttft.observe(send.t - t_arrival)
            if now - send.t > 1e-3:
                self.tokens_per_second.observe(tokens / (now - send.t))

    # ---- read when scraped ----------------------------------------------------------------------
    def collect(self):
        chat = self.chat
        c = CounterMetricFamily("sn1_miner_requests", "Chat requests answered, by HTTP status and caller kind",
                                labels=["status", "caller"])
        requests = dict(self.requests)
        if self.admission is not None and self.admission.refused:    # 503 before the endpoint: unverified
            requests[("503", "other")] = requests.get(("503", "other"), 0) + self.admission.refused
        for (status, caller), n in sorted(requests.items()):
            c.add_metric([status, caller], n)
        yield c
        c = CounterMetricFamily("sn1_miner_refusals", "Requests refused before any generation, by reason",
                                labels=["reason"])
        refusals = dict(self.refusals)
        if self.admission is not None and self.admission.refused:
            refusals["overloaded"] = refusals.get("overloaded", 0) + self.admission.refused
        for reason, n in sorted(refusals.items()):
            c.add_metric([reason], n)
        yield c
        c = CounterMetricFamily("sn1_miner_generations", "Generations run, by how they ended and caller kind",
                                labels=["finish", "caller"])
        for (finish, caller), n in sorted(self.generations.items()):
            c.add_metric([finish, caller], n)
        yield c
        yield CounterMetricFamily("sn1_miner_completion_tokens", "Tokens generated", value=self.tokens)
        gate = chat.gate
        yield GaugeMetricFamily("sn1_miner_queue_depth", "Requests waiting for a generation slot",
                                value=gate.waiting)
        yield GaugeMetricFamily("sn1_miner_active_generations", "Generations running", value=gate.active)
        yield GaugeMetricFamily("sn1_miner_max_concurrent", "Generation slots (--neuron.max_concurrent)",
                                value=gate.max_concurrent)
        yield GaugeMetricFamily("sn1_miner_max_queue", "Places in the line (--neuron.max_queue)",
                                value=gate.max_queue)
        if self.admission is not None:
            yield GaugeMetricFamily("sn1_miner_requests_in_progress", "HTTP requests being handled",
                                    value=self.admission.active)
        if self.guard is not None:
            snap = self.guard.snapshot()
            yield GaugeMetricFamily("sn1_miner_open_connections", "Open connections on the public port",
                                    value=snap["open"])
            yield GaugeMetricFamily("sn1_miner_idle_connections", "Open connections not carrying a request",
                                    value=snap["idle"])
            c = CounterMetricFamily("sn1_miner_connections_closed",
                                    "Connections the server closed to protect itself, by reason", labels=["reason"])
            c.add_metric(["evicted"], snap["evicted"])
            c.add_metric(["address_cap"], snap["refused"])
            c.add_metric(["header_timeout"], snap["header_timeouts"])
            yield c
        from .. import __version__

        info = InfoMetricFamily("sn1_miner", "This miner: its hotkey, backend and sn1 version")
        info.add_metric([], {"hotkey": chat.hotkey, "backend": str(chat.model), "version": __version__})
        yield info
