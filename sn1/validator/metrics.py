"""The validator's Prometheus metrics (docs/operations.md lists them; served by ``--metrics.port``).

The loop calls ``step`` with each step's event (the same dict the events log
keeps), ``step_failed``, ``weights_set`` and ``chain_error``; the moving-average
scores of the top ``--metrics.top_uids`` uids, the step counter and the last
weights block are read from the validator's state when Prometheus scrapes.

Label values are bounded whatever miners send: ``task`` is one of the
validator's task names, ``status`` one of ``STATUSES`` (the validator's own
classification of a miner's answer), ``rule`` a verification rule name, ``uid``
one of at most ``top_uids`` uids at a time.
"""

from __future__ import annotations

import math
import re
import time

import numpy as np
from prometheus_client import Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily

from ..config import Bounded, flag
from ..protocol import metrics as metrics_port

STATUSES = ("ok", "timeout", "http_error", "connect_error", "protocol_error", "miner_error")
STEP_BUCKETS = (0.5, 1, 2.5, 5, 10, 15, 20, 30, 45, 60, 90, 120, 300)
REWARD_BUCKETS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
DEFAULT_TOP_UIDS = 16
_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


def add_args(parser) -> None:
    metrics_port.add_args(parser)
    flag(parser, "--metrics.top_uids", type=Bounded(int, 1, 256), default=DEFAULT_TOP_UIDS,
         help="uids whose moving-average score is exported (the highest; bounds the series)")


def _label(value, known=None) -> str:
    text = str(value)
    if known is not None:
        return text if text in known else "other"
    return text if _NAME.fullmatch(text) else "other"


class ValidatorMetrics:
    """One validator's metrics, in a registry of its own (``collector`` is what the port serves)."""

    def __init__(self, top_uids: int = DEFAULT_TOP_UIDS):
        self.top_uids = top_uids
        self.validator = None
        r = self.collector = metrics_port.new_registry()
        self.steps = Counter("sn1_validator_steps", "Steps completed, by task", ["task"], registry=r)
        self.step_failures = Counter("sn1_validator_step_failures", "Steps that raised (no event, no scores)",
                                     registry=r)
        self.step_seconds = Histogram("sn1_validator_step_duration_seconds", "Seconds of a step (build the task, "
                                      "query, score), by task", ["task"], buckets=STEP_BUCKETS, registry=r)
        self.phase_seconds = Histogram("sn1_validator_step_phase_seconds", "Seconds of one phase of a step "
                                       "(task, query, score), by task", ["task", "phase"], buckets=STEP_BUCKETS,
                                       registry=r)
        self.responses = Counter("sn1_validator_miner_responses", "Miners queried, by task and how their "
                                 "answer ended", ["task", "status"], registry=r)
        self.miners = Gauge("sn1_validator_miners", "Miners of the last step, by how their answer ended",
                            ["status"], registry=r)
        for s in STATUSES:
            self.miners.labels(s).set(0)
        self.rewards = Histogram("sn1_validator_reward", "Rewards given (one per miner per step), by task",
                                 ["task"], buckets=REWARD_BUCKETS, registry=r)
        self.verifications = Counter("sn1_validator_verifications", "Answers of the inference task verified, "
                                     "by result (pass | fail) and the rule that failed", ["result", "rule"],
                                     registry=r)
        self.weights = Counter("sn1_validator_weights_set", "Weights set on chain", registry=r)
        self.last_weights = Gauge("sn1_validator_last_weights_set_timestamp_seconds",
                                  "Unix time weights were last set by this process (0: not yet)", registry=r)
        self.chain_errors = Counter("sn1_validator_chain_errors", "Chain calls that failed, by operation "
                                    "(set_weights | metagraph)", ["op"], registry=r)
        for op in ("set_weights", "metagraph"):
            self.chain_errors.labels(op)
        r.register(self)

    def attach(self, validator) -> "ValidatorMetrics":
        from ..config import get

        self.validator = validator
        self.top_uids = get(validator.config, "metrics.top_uids", self.top_uids)
        return self

    # ---- events (loop.py) ---------------------------------------------------------------------
    def step(self, event: dict) -> None:
        task = _label(event.get("task"))
        self.steps.labels(task).inc()
        self.step_seconds.labels(task).observe(event.get("step_time", 0.0))
        for phase in ("task", "query", "score"):
            t = event.get(f"{phase}_time")
            if t is not None:
                self.phase_seconds.labels(task, phase).observe(t)
        counts = dict.fromkeys(STATUSES, 0)
        for s in event.get("status", ()):
            s = _label(s, STATUSES)
            counts[s] = counts.get(s, 0) + 1
        for s, n in counts.items():
            self.miners.labels(s).set(n)
            if n:
                self.responses.labels(task, s).inc(n)
        hist = self.rewards.labels(task)
        for r in event.get("rewards", ()):
            if r is not None and math.isfinite(r):
                hist.observe(r)
        for ok, rule in zip(event.get("verify_ok", ()), event.get("verify_rule", ())):
            self.verifications.labels("pass" if ok else "fail", "none" if ok else _label(rule or "other")).inc()

    def step_failed(self) -> None:
        self.step_failures.inc()

    def weights_set(self) -> None:
        self.weights.inc()
        self.last_weights.set(time.time())

    def chain_error(self, op: str) -> None:
        self.chain_errors.labels(op).inc()

    # ---- read when scraped --------------------------------------------------------------------
    def collect(self):
        v = self.validator
        if v is None:
            return
        state = v.state
        yield GaugeMetricFamily("sn1_validator_step", "Steps done, across restarts (the state's counter)",
                                value=state.step)
        yield GaugeMetricFamily("sn1_validator_last_weights_block", "Block weights were last set at (-1: never)",
                                value=state.last_weights_block)
        mg = v.metagraph
        yield GaugeMetricFamily("sn1_validator_metagraph_block", "Block of the metagraph in use", value=mg.block)
        yield GaugeMetricFamily("sn1_validator_metagraph_uids", "Uids on the subnet", value=mg.n)
        scores = np.nan_to_num(np.asarray(state.scores, dtype=np.float64))
        yield GaugeMetricFamily("sn1_validator_scored_uids", "Uids with a moving-average score above 0",
                                value=int(np.count_nonzero(scores > 0)))
        g = GaugeMetricFamily("sn1_validator_score", f"Moving-average score of the top uids (at most "
                              f"{self.top_uids})", labels=["uid"])
        if scores.size:
            k = min(self.top_uids, scores.size)
            top = np.argpartition(-scores, k - 1)[:k]
            for uid in sorted(top.tolist(), key=lambda u: (-scores[u], u)):
                if scores[uid] > 0:
                    g.add_metric([str(uid)], float(scores[uid]))
        yield g
