"""Which miners to ask, in which order.

Candidates are the metagraph's neurons that serve an endpoint, minus the
gateway's own hotkey and big validators (stake above the validator's
``vpermit_tao_limit``: they do not mine), optionally limited to
``--gateway.uids``. Each request gets its own order, drawn at random with
weights

    (share + floor) * reliability**4 / (1 + requests in flight)

where ``share`` is the miner's incentive relative to the top one, averaged
with its score relative to the top score when a validator runs beside the
gateway (``--gateway.validator_state``). So the miners the chain (and the
validator) rate highest get most requests, miners that failed
organic requests lately get few (``reliability`` is a moving average of
success, seeded from the records at start; a failed first choice costs the
client a failover, up to ``first_chunk_timeout``), and concurrent requests
spread out instead of piling onto the top miner. The floor keeps new and
unpaid miners in the rotation; reliability never goes below
``MIN_RELIABILITY``, so a miner that failed is still tried now and then
(about 1 in 100 of what a reliable one gets) and found again once it recovers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

INCENTIVE_FLOOR = 0.05
ALPHA = 0.3                   # weight of the latest outcome in the moving average
MIN_RELIABILITY = 0.3           # 0.3**4: about 1/100 of a reliable miner's share
VPERMIT_TAO_LIMIT = 4096.0


@dataclass(frozen=True)
class Candidate:
    uid: int
    hotkey: str
    endpoint: str
    incentive: float


class Router:
    def __init__(self, own_hotkey: str, *, uids: set[int] | None = None, rng: random.Random | None = None):
        self.own_hotkey = own_hotkey
        self.uids = uids
        self.rng = rng or random.Random()
        self.candidates: list[Candidate] = []
        self.reliability: dict[int, float] = {}     # by uid; a new hotkey on a uid starts afresh
        self._hotkeys: dict[int, str] = {}
        self.in_flight: dict[int, int] = {}
        self.remote_in_flight: dict[int, int] = {}  # other replicas' (shared through Redis)
        self.shared_outcomes = None                 # a deque when outcomes are shared: (uid, hotkey, ok)
        self.top_incentive = 0.0
        self.scores: dict[int, float] = {}          # the validator's, by uid (empty: not used)
        self.top_score = 0.0

    def update(self, metagraph) -> None:
        for n in metagraph.neurons:
            if self._hotkeys.get(n.uid, n.hotkey) != n.hotkey:
                self.reliability.pop(n.uid, None)
            self._hotkeys[n.uid] = n.hotkey
        self.candidates = [
            Candidate(n.uid, n.hotkey, n.endpoint, float(n.incentive)) for n in metagraph.neurons
            if n.endpoint and n.hotkey != self.own_hotkey
            and not (n.validator_permit and n.stake > VPERMIT_TAO_LIMIT)
            and (self.uids is None or n.uid in self.uids)]
        self.top_incentive = max([c.incentive for c in self.candidates], default=0.0)

    def set_scores(self, scores: dict[int, float]) -> None:
        self.scores = scores
        self.top_score = max(scores.values(), default=0.0)

    def weight(self, c: Candidate) -> float:
        rel = self.reliability.get(c.uid, 1.0)
        share = c.incentive / self.top_incentive if self.top_incentive > 0 else 0.0
        if self.top_score > 0:
            share = (share + self.scores.get(c.uid, 0.0) / self.top_score) / 2
        load = self.in_flight.get(c.uid, 0) + self.remote_in_flight.get(c.uid, 0)
        return (share + INCENTIVE_FLOOR) * rel ** 4 / (1 + load)

    def order(self, limit: int) -> list[Candidate]:
        """Up to ``limit`` distinct candidates, a weighted random permutation (Efraimidis-Spirakis)."""
        rnd = self.rng.random
        keyed = [(rnd() ** (1.0 / self.weight(c)), c) for c in self.candidates]
        keyed.sort(key=lambda kc: kc[0], reverse=True)
        return [c for _, c in keyed[:limit]]

    def outcome(self, uid: int, ok: bool) -> None:
        rel = self.reliability.get(uid, 1.0)
        self.reliability[uid] = max(MIN_RELIABILITY, (1 - ALPHA) * rel + ALPHA * (1.0 if ok else 0.0))
        if self.shared_outcomes is not None:
            self.shared_outcomes.append((uid, self._hotkeys.get(uid, ""), ok))

    def set_shared_reliability(self, shared: dict[str, float]) -> None:
        """Replace reliability with the replicas' shared one (``"uid:hotkey"`` -> value; other hotkeys ignored)."""
        rel = {}
        for field, value in shared.items():
            uid, _, hotkey = field.partition(":")
            if uid.isdigit() and self._hotkeys.get(int(uid)) == hotkey:
                rel[int(uid)] = max(MIN_RELIABILITY, min(1.0, float(value)))
        self.reliability = rel

    def start(self, c: Candidate) -> None:
        self.in_flight[c.uid] = self.in_flight.get(c.uid, 0) + 1

    def end(self, c: Candidate) -> None:
        self.in_flight[c.uid] = max(0, self.in_flight.get(c.uid, 0) - 1)
