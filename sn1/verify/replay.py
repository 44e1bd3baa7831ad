"""Sampler replay: which token the miner's sampler had to draw, given the request's seed.

``llama.cpp/dist-v1`` names the sampling chain llama-cpp-python 0.3.x builds
for ``Llama.generate(top_k, top_p, min_p=0.05, temp, repeat_penalty=1.0)``
(what ``sn1.llm.llamacpp_logprobs.generate_with_logprobs`` runs), one
``llama_sampler_sample`` per token:

1. ``top_k``: the ``top_k`` highest logits, sorted (ties: any order);
2. ``top_p``: softmax of those (temperature 1, float32), keep the shortest
   prefix whose running sum reaches ``top_p`` (at least one);
3. ``min_p`` 0.05: keep logits >= the highest + log(0.05);
4. temperature: logits / T;
5. ``dist``: p_i = exp(l_i - max), u = one ``std::uniform_real_distribution<double>``
   draw from a ``std::mt19937`` seeded once with the request's seed (two 32-bit
   outputs a, b: u = (a + b·2³²) / 2⁶⁴, libstdc++'s ``generate_canonical``);
   the token is the first whose running sum reaches u · Σp.

Temperature 0 is greedy (the first highest logit, no draw). Generation stops
when the drawn token is an end-of-generation token, so a ``stop`` answer of n
tokens must have drawn one at position n (the (n+1)-th draw).

Tolerance. The validator's logits are not bit-identical to the miner's: one
token at a time (a miner decoding) and many at once (teacher forcing) use
different matrix kernels in llama.cpp (up to ~0.25 apart in logprob here,
benchmarks/RESULTS.md). The replay therefore takes the miner's own reported
logprobs for the tokens it reported (the chosen one and its top alternatives,
where within ``tol_replay`` of the model's) and gives every other
token ``tol_replay`` of slack either way: an honest engine's own values decide
near-ties exactly, and shading the reports buys no more than the slack.
A token passes when the draw u falls within the widest interval of the CDF
that token can hold under that slack (its rank among near-ties and the kept
set's size at the top_p / min_p cut both left open). Near-ties therefore never
fail an honest miner, and a token from another text, prompt, seed or bias only
passes where u happens to fall inside its slack-widened interval.
"""

from __future__ import annotations

import math

import numpy as np

from ..llm.sampler import MIN_P, SAMPLER, SAMPLERS, Mt19937Stream, kept  # noqa: F401 (SAMPLER(S): re-exported)

_U_SLACK = 1e-6         # float32 sums in the sampler vs float64 here
_SPAN_MARGIN = 2.0      # nats below the min_p cut still taken as candidates


def check_position(row: np.ndarray, token: int, fixed: dict[int, float], u: float | None, *,
                   temperature: float, top_k: int, top_p: float, eps: float, nucleus_slack: float,
                   min_p: float = MIN_P) -> str | None:
    """Why ``token`` cannot be the sampler's draw at this position, or None when it can be.

    ``row``: the validator's logprobs; ``fixed``: the miner's reported logprobs (token id ->
    value) that replace the validator's where they are within ``eps`` of it (further off, the
    token is treated as unreported), so shading the reports gains no more room than the
    slack every other token gets: ``eps`` either way.
    ``token`` may be a set of ids (any of them: end of generation).
    """
    tokens = token if isinstance(token, (set, frozenset, list, tuple)) else (token,)
    x = np.asarray(row)
    nv = x.shape[0]
    k = top_k if top_k and 0 < top_k < nv else nv
    # Candidates, by the most generous values (unreported tokens raised by eps). min_p bounds
    # every set the sampler can keep to within -log(min_p) of the best (2 eps more for the
    # slack): tokens further down can only be "surely less likely", so one comparison over the
    # row finds all that matter (a partial sort of 49k values per token cost 0.45 ms).
    hi = x + np.float32(eps) if x.dtype == np.float32 else x + eps
    if fixed:
        ids = np.fromiter(fixed.keys(), dtype=np.int64)
        vals = np.fromiter(fixed.values(), dtype=np.float64)
        ok = (ids >= 0) & (ids < nv)
        ids, vals = ids[ok], vals[ok]
        near = np.abs(vals - x[ids]) <= eps
        hi[ids[near]] = vals[near]
    else:
        ids = vals = np.zeros(0)
    if min_p > 0:
        idx = np.nonzero(hi >= hi.max() - (-math.log(min_p) + 2 * eps + _SPAN_MARGIN))[0]
    else:
        pool = min(nv, max(k, 1) + 64)
        idx = np.argpartition(-hi, pool - 1)[:pool] if pool < nv else np.arange(nv)
    cand = np.union1d(idx, np.asarray([t for t in tokens if 0 <= t < nv], dtype=np.int64))
    base = x[cand].astype(np.float64)
    isfixed = np.zeros(len(cand), dtype=bool)
    if len(ids):            # the miner's own value, if within eps
        at = np.searchsorted(cand, ids)
        hit = (at < len(cand)) & (cand[np.minimum(at, len(cand) - 1)] == ids)
        at, v = at[hit], vals[hit]
        mine = np.abs(v - base[at]) <= eps
        base[at[mine]], isfixed[at[mine]] = v[mine], True
    slack = np.where(isfixed, 0.0, eps)
    lo, up = base - slack, base + slack
    why = None
    for t in tokens:
        where = np.nonzero(cand == t)[0]
        if not where.size:
            continue
        j = int(where[0])
        why = _check_one(j, base, lo, up, u, temperature, k, top_p, nucleus_slack, min_p)
        if why is None:
            return None
    return why or "is not a token of the model"


def _check_one(j: int, base, lo, up, u, temperature, k, top_p, nucleus_slack, min_p) -> str | None:
    xt_lo, xt_hi = lo[j], up[j]
    others = np.arange(len(base)) != j
    if temperature <= 0:
        # Greedy: fails only if another token is surely higher.
        top = lo[others].max() if others.any() else -np.inf
        if top > xt_hi + 1e-9:
            return f"is not the most likely token (temperature 0 is greedy; {top - xt_hi:.3f} below)"
        return None
    # Rank: tokens surely above, tokens possibly above.
    surely = others & (lo > xt_hi)
    maybe = others & (up >= xt_lo)
    if int(surely.sum()) >= k:
        return f"ranks below {int(surely.sum())} surely more likely tokens, outside top_k {k}"
    # Kept-set sizes: the sampler keeps a prefix of the sorted top_k; bound its length.
    order_hi = np.sort(up)[::-1][:k]            # most generous values: the longest keep
    order_lo = np.sort(lo)[::-1][:k]
    logmin = math.log(min_p) if min_p > 0 else -np.inf
    n_max = max(kept(order_hi, min(1.0, top_p + nucleus_slack), logmin - 2 * _eps_of(up, lo)),
                kept(np.sort(base)[::-1][:k], top_p, logmin))
    n_min = min(kept(order_lo, max(0.0, top_p - nucleus_slack), logmin + 2 * _eps_of(up, lo)),
                kept(np.sort(base)[::-1][:k], top_p, logmin))
    n_min = max(1, n_min)
    if int(surely.sum()) >= n_max:
        return (f"lies outside the sampler's kept set (top_k {k}, top_p {top_p:g}, min_p {min_p:g}): "
                f"{int(surely.sum())} tokens are surely more likely, at most {n_max} are kept")
    if u is None:
        return None
    T = temperature
    m = up.max()
    w_lo = np.exp((lo - m) / T)
    w_hi = np.exp((up - m) / T)
    # Lowest CDF before the token: only surely-above tokens before it, at their lowest; the token
    # and everything else as heavy as possible, the kept set as long as possible.
    rank_hi = np.argsort(-up, kind="stable")
    keep_max = np.zeros(len(base), dtype=bool)
    keep_max[rank_hi[:n_max]] = True
    keep_max[j] = True
    before = float(w_lo[surely].sum())
    rest = float(w_hi[keep_max & ~surely].sum())
    cdf_lo = before / (before + rest) if before + rest > 0 else 0.0
    # Highest CDF through the token: everything possibly above at its highest, the token at its
    # highest, everything else as light as possible, the kept set as short as possible.
    rank_lo = np.argsort(-lo, kind="stable")
    keep_min = np.zeros(len(base), dtype=bool)
    keep_min[rank_lo[:n_min]] = True
    through_mask = maybe.copy()
    through_mask[j] = True
    through = float(w_hi[through_mask].sum())
    after = float(w_lo[keep_min & ~through_mask].sum())
    cdf_hi = through / (through + after) if through + after > 0 else 1.0
    if u < cdf_lo - _U_SLACK or u > cdf_hi + _U_SLACK:
        return (f"is not the token the seeded sampler drew (draw {u:.5f}, the token's interval "
                f"is at most [{cdf_lo:.5f}, {cdf_hi:.5f}])")
    return None


def _eps_of(up, lo) -> float:
    d = (up - lo) / 2
    return float(d.max()) if d.size else 0.0


def replay(rows: np.ndarray, ids: list[int], fixed: list[dict[int, float]], finish: str | None,
           eog, *, seed: int, temperature: float, top_k: int, top_p: float, max_tokens: int,
           eps: float, nucleus_slack: float, min_p: float = MIN_P) -> tuple[int, str] | None:
    """(position, why) of the first token the seeded sampler could not have drawn, else None.

    ``rows``: (n + 1, vocab) validator logprobs; ``fixed[j]``: the miner's reported logprobs
    at position j (token id -> value). ``finish`` "stop": position n must draw an
    end-of-generation token; "length": n must be ``max_tokens`` (checked by the caller).
    """
    rng = Mt19937Stream(seed) if temperature > 0 else None
    n = len(ids)
    kw = dict(temperature=temperature, top_k=top_k, top_p=top_p, eps=eps,
              nucleus_slack=nucleus_slack, min_p=min_p)
    for j in range(n):
        u = rng.next() if rng is not None else None
        why = check_position(rows[j], ids[j], fixed[j], u, **kw)
        if why is not None:
            return j, f"token {j} {why}"
    if finish == "stop":
        u = rng.next() if rng is not None else None
        why = check_position(rows[n], set(int(e) for e in eog), {}, u, **kw)
        if why is not None:
            return n, f"stopped after {n} tokens where the seeded sampler goes on (end of text {why})"
    return None


def end_drawn(row: np.ndarray, eog, *, seed: int, n: int, temperature: float, top_k: int,
              top_p: float, min_p: float = MIN_P) -> bool:
    """Whether the seeded sampler draws an end-of-generation token after ``n`` tokens on exactly
    these logits (no slack). ``row``: the distribution after the last token, as the miner's
    one-token decode computes it (``TeacherForcer.logprobs_stepwise``): the slack the batched
    rows need would otherwise let a cut where the model goes on pass as a finished answer."""
    u = None
    if temperature > 0:
        rng = Mt19937Stream(seed)
        for _ in range(n):
            rng.next()
        u = rng.next()
    return check_position(row, set(int(e) for e in eog), {}, u, temperature=temperature, top_k=top_k,
                          top_p=top_p, eps=0.0, nucleus_slack=0.0, min_p=min_p) is None
