"""Which miners to query (spec §5 step 4)."""

from __future__ import annotations

import random

from ..chain.base import Metagraph, Neuron


def is_available(n: Neuron, *, self_uid: int | None, vpermit_tao_limit: float) -> bool:
    if n.uid == self_uid or not n.endpoint:
        return False
    # Validators with real stake are not miners.
    return not (n.validator_permit and n.stake > vpermit_tao_limit)


def sample_uids(mg: Metagraph, k: int, rng: random.Random, *, self_uid: int | None,
                vpermit_tao_limit: float = 4096, unique_coldkeys: bool = False,
                unique_ips: bool = False) -> list[int]:
    """``k`` distinct available uids at random (all of them if fewer are available)."""
    candidates = [n for n in mg.neurons
                  if is_available(n, self_uid=self_uid, vpermit_tao_limit=vpermit_tao_limit)]
    rng.shuffle(candidates)
    seen_cold: set[str] = set()
    seen_ip: set[str] = set()
    chosen: list[int] = []
    for n in candidates:
        ip = n.endpoint.rsplit(":", 1)[0]
        if unique_coldkeys and n.coldkey in seen_cold:
            continue
        if unique_ips and ip in seen_ip:
            continue
        seen_cold.add(n.coldkey)
        seen_ip.add(ip)
        chosen.append(n.uid)
        if len(chosen) == k:
            break
    return sorted(chosen)
