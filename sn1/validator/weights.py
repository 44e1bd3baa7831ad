"""Turn scores into weights the chain accepts (spec §5 "Weights").

Departure (README "Where we differ"): scores are raised to the power
SHARPEN before they are normalised, so the best miners earn clearly more
than the middle (with power 3, a miner scoring half of the best gets an
eighth of its weight). Ordering, `version_key` and the chain's limits are
unchanged.
"""

from __future__ import annotations

import math

import numpy as np

from ..chain.base import Hyperparams
from ..chain.yuma import normalize_max_weight

SHARPEN = 3.0
MAX_WINDOW = 64            # sn1.validator.state.MAX_PROOFS: verdicts kept per miner


def process_weights(scores: np.ndarray, hp: Hyperparams, sharpen: float = SHARPEN) -> tuple[list[int], list[float]]:
    """(uids, weights) from raw scores: NaN as 0, raised to ``sharpen``, non-zero uids, at least
    ``min_allowed_weights`` entries (and enough for ``max_weight_limit`` to be
    reachable), none above ``max_weight_limit``, summing to 1.

    Raises ValueError when the subnet is too small for its own limits.
    """
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    s = np.clip(s, 0.0, None)
    if s.size and s.max() > 0:
        s = (s / s.max()) ** sharpen   # scaled first: tiny scores must not underflow to 0
    n = len(s)
    if n == 0:
        return [], []
    need = max(hp.min_allowed_weights, 1, math.ceil(1.0 / hp.max_weight_limit - 1e-9))
    nonzero = np.flatnonzero(s > 0)
    if len(nonzero) < min(need, n):
        # Too few non-zero scores: give everyone a tiny equal floor (the chain
        # rejects short weight vectors), keeping the ordering of what we know.
        s = s + 1e-6 * (s.max() if s.max() > 0 else 1.0)
        nonzero = np.arange(n)
    w = normalize_max_weight(s[nonzero], hp.max_weight_limit)
    return nonzero.tolist(), w.tolist()


def proof_gate(config, state) -> np.ndarray:
    """No proof, no pay (README "Where we differ"): the validator's scores with every miner zeroed
    that has not passed inference verification in one of its last ``--neuron.proof_window``
    inference answers, ``--neuron.proof_max_age`` steps at most. The scores themselves are kept:
    a miner that proves again is paid for its text answers at once.

    Off (the scores unchanged) with a window of 0 or when the inference task is never asked
    (nobody could prove anything).
    """
    from ..config import get

    scores = np.asarray(state.scores, dtype=np.float64)
    window = get(config, "neuron.proof_window", 3)
    tasks, probs = get(config, "neuron.tasks", []) or [], get(config, "neuron.task_p", []) or []
    asked = any(t == "inference" and p > 0 for t, p in zip(tasks, probs))
    if not window or not asked:
        return scores
    mask = state.proven(min(int(window), MAX_WINDOW), get(config, "neuron.proof_max_age", 1000))
    return np.where(mask[:len(scores)] if len(mask) >= len(scores) else
                    np.pad(mask, (0, len(scores) - len(mask))), scores, 0.0)
