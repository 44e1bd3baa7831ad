"""Yuma Consensus, as pure numpy functions (the sandbox's epoch).

Follows subtensor's epoch (the dense, pre-dTAO "Yuma 1" form):

1. Weights W (rows = validators, columns = uids) count only for validators
   holding a permit, lose self-weights and are row-normalised.
2. Active validators (permit and non-zero weights) have their stake
   normalised to S.
3. Consensus C_j: the largest weight w such that validators holding at least
   ``kappa`` of the stake gave uid j a weight >= w (stake-weighted median at
   kappa = 0.5).
4. Weights are clipped to consensus: W'_ij = min(W_ij, C_j). A lone validator's
   outlier weight is clipped away.
5. Rank R = S @ W'; trust T = R / (S @ W); incentive I = R normalised.
6. Bonds: delta B_ij = S_i W'_ij, column-normalised, then an exponential
   moving average B = a * delta + (1 - a) * B_prev (a = 1 - bonds_moving_average),
   column-normalised again.
7. Dividends D_i = sum_j B_ij I_j, normalised.
8. Emission: half of the epoch's emission to miners by I, half to validators by D.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

KAPPA = 0.5
BONDS_MOVING_AVERAGE = 0.9     # subtensor's default (900_000 / 1e6): weight of old bonds
EPS = 1e-12


@dataclass(frozen=True)
class EpochResult:
    rank: np.ndarray
    trust: np.ndarray
    consensus: np.ndarray
    incentive: np.ndarray
    dividends: np.ndarray
    emission: np.ndarray         # TAO per uid for this epoch
    bonds: np.ndarray            # n x n, new bonds to keep for the next epoch
    validator_trust: np.ndarray


def normalize(x: np.ndarray) -> np.ndarray:
    """x / sum(x); zeros when the sum is zero."""
    x = np.asarray(x, dtype=np.float64)
    s = x.sum()
    return x / s if s > EPS else np.zeros_like(x)


def row_normalize(m: np.ndarray) -> np.ndarray:
    s = m.sum(axis=1, keepdims=True)
    return np.divide(m, s, out=np.zeros_like(m), where=s > EPS)


def col_normalize(m: np.ndarray) -> np.ndarray:
    s = m.sum(axis=0, keepdims=True)
    return np.divide(m, s, out=np.zeros_like(m), where=s > EPS)


def weighted_median_col(stake: np.ndarray, weights: np.ndarray, kappa: float = KAPPA) -> np.ndarray:
    """Per column: the largest weight backed (>=) by at least ``kappa`` of the (normalised) stake."""
    stake = np.asarray(stake, dtype=np.float64)
    n_cols = weights.shape[1]
    out = np.zeros(n_cols)
    total = stake.sum()
    if total <= EPS:
        return out
    s = stake / total
    order = np.argsort(-weights, axis=0, kind="stable")       # per column, largest weight first
    backing = np.cumsum(s[order], axis=0)                      # stake giving >= that weight
    reached = backing >= kappa - 1e-9                          # tolerance for float sums
    k = reached.argmax(axis=0)                                 # first (largest) weight reaching kappa
    cols = np.arange(n_cols)
    out = np.where(reached.any(axis=0), weights[order[k, cols], cols], 0.0)
    return out


def epoch(stake, weights, permits, bonds_prev=None, *, kappa: float = KAPPA,
          bonds_moving_average: float = BONDS_MOVING_AVERAGE, emission_total: float = 1.0) -> EpochResult:
    """One Yuma Consensus epoch.

    stake: (n,) TAO per uid; weights: (n, n) as set (any scale per row);
    permits: (n,) bool validator permits; bonds_prev: (n, n) or None.
    """
    stake = np.asarray(stake, dtype=np.float64)
    n = stake.shape[0]
    W = np.array(weights, dtype=np.float64).reshape(n, n)
    permits = np.asarray(permits, dtype=bool)
    B_prev = np.zeros((n, n)) if bonds_prev is None else np.asarray(bonds_prev, dtype=np.float64)

    W = np.where(permits[:, None], W, 0.0)       # only permitted validators' weights count
    np.fill_diagonal(W, 0.0)                     # no self-weight
    W = row_normalize(np.clip(W, 0.0, None))
    # Active validators: permitted and voting. (Subtensor uses an activity cutoff; here a
    # permit holder that never set weights, e.g. a miner in a subnet of at most K uids,
    # where every uid holds a permit, must not dilute consensus.)
    active = permits & (W.sum(axis=1) > EPS)
    S = normalize(np.where(active, stake, 0.0))

    preranks = S @ W
    C = weighted_median_col(S, W, kappa)
    Wc = np.minimum(W, C[None, :])
    validator_trust = Wc.sum(axis=1)
    R = S @ Wc
    T = np.divide(R, preranks, out=np.zeros(n), where=preranks > EPS)
    I = normalize(R)

    delta = col_normalize(S[:, None] * Wc)
    alpha = 1.0 - bonds_moving_average
    B = col_normalize(alpha * delta + (1.0 - alpha) * B_prev)
    D = normalize(B @ I)

    if I.sum() > EPS:
        E = emission_total * (0.5 * I + 0.5 * D) if D.sum() > EPS else emission_total * I
    else:
        E = np.zeros(n)                          # nothing to pay before anyone sets weights
    return EpochResult(rank=R, trust=T, consensus=C, incentive=I, dividends=D, emission=E,
                       bonds=B, validator_trust=validator_trust)


def top_k_permits(stake, k: int) -> np.ndarray:
    """Permits for the top-k uids by stake, zero stake included (ties go to the lower uid).

    As on chain: while the subnet has at most k neurons, every uid holds a permit.
    """
    stake = np.asarray(stake, dtype=np.float64)
    order = sorted(range(len(stake)), key=lambda i: (-stake[i], i))
    permits = np.zeros(len(stake), dtype=bool)
    permits[order[:max(k, 0)]] = True
    return permits


def normalize_max_weight(x, limit: float) -> np.ndarray:
    """Normalise x to sum 1 with no entry above ``limit`` (water-filling).

    Returns the plain normalisation when it already fits; raises ValueError when
    too few entries are non-zero for the limit to be reachable.
    """
    w = normalize(np.asarray(x, dtype=np.float64))
    if limit >= 1.0 or w.max(initial=0.0) <= limit + EPS:
        return w
    nonzero = int((w > 0).sum())
    if nonzero * limit < 1.0 - 1e-9:
        raise ValueError(f"{nonzero} non-zero weights cannot each stay under max_weight_limit "
                         f"{limit:g} (need at least {int(np.ceil(1 / limit - 1e-9))})")
    capped = np.zeros(len(w), dtype=bool)
    while True:
        free = ~capped
        rest = 1.0 - limit * capped.sum()
        out = np.where(capped, limit, 0.0)
        out[free] = rest * normalize(w[free]) if w[free].sum() > EPS else 0.0
        over = free & (out > limit + EPS)
        if not over.any():
            return out
        capped |= over
