"""Turn scores into weights the chain accepts (spec §5 "Weights")."""

from __future__ import annotations

import numpy as np

from ..chain.base import Hyperparams


def normalize_max_weight(x: np.ndarray, limit: float) -> np.ndarray:
    """L1-normalise so that no entry exceeds ``limit``, spreading the excess over the rest.

    The same fixed point as bittensor's ``normalize_max_weight``: the largest
    values are capped at ``limit`` and the others scaled to fill the remainder.
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    total = x.sum()
    if n == 0:
        return x
    if total <= 0 or limit * n <= 1.0:
        return np.full(n, 1.0 / n)
    w = x / total
    if w.max() <= limit:
        return w
    # Cap the k largest at `limit`; scale the others to 1 - k*limit, smallest k that works.
    order = np.argsort(-w)
    for k in range(1, n):
        rest = w[order[k:]]
        rest_sum = rest.sum()
        if rest_sum <= 0:
            break
        scaled = rest * (1.0 - k * limit) / rest_sum
        if scaled.max() <= limit + 1e-12:
            out = np.empty(n)
            out[order[:k]] = limit
            out[order[k:]] = scaled
            return out
    return np.full(n, 1.0 / n)


def process_weights(scores: np.ndarray, hp: Hyperparams) -> tuple[list[int], list[float]]:
    """(uids, weights) from raw scores: NaN as 0, non-zero uids, at least
    ``min_allowed_weights`` entries, none above ``max_weight_limit``, summing to 1."""
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    s = np.clip(s, 0.0, None)
    n = len(s)
    if n == 0:
        return [], []
    min_count = min(max(hp.min_allowed_weights, 1), n)
    nonzero = np.flatnonzero(s > 0)
    if len(nonzero) < min_count:
        # Too few non-zero scores: give everyone a tiny equal floor (the chain
        # rejects short weight vectors), keeping the ordering of what we know.
        s = s + 1e-6 * (s.max() if s.max() > 0 else 1.0)
        nonzero = np.arange(n)
    w = normalize_max_weight(s[nonzero], hp.max_weight_limit)
    return nonzero.tolist(), w.tolist()
