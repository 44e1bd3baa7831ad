"""``llama.cpp/dist-v1``: llama.cpp's seeded sampling chain, for engines that are not llama.cpp.

The chain llama-cpp-python 0.3.x builds for ``Llama.generate(top_k, top_p, min_p=0.05, temp)``,
one draw per token (sn1/verify/replay.py says it step by step and replays it):
top_k -> top_p (softmax at temperature 1, float32) -> min_p -> temperature -> one
``std::mt19937`` / ``uniform_real_distribution<double>`` draw u; the token is the first whose
running probability reaches u. Temperature 0 is greedy and draws nothing.

An engine that samples with :func:`draw` and a :class:`Mt19937Stream` seeded with the
request's seed gives answers a validator can replay, whatever computes its logits (the
transformers engine: ``sn1/llm/hf.py``).
"""

from __future__ import annotations

import math

import numpy as np

SAMPLER = "llama.cpp/dist-v1"
SAMPLERS = (SAMPLER,)
MIN_P = 0.05            # llama-cpp-python's create_chat_completion default, part of the chain


class Mt19937Stream:
    """``std::uniform_real_distribution<double>(0, 1)`` draws of ``std::mt19937(seed)`` (libstdc++)."""

    def __init__(self, seed: int):
        self._bg = np.random.MT19937(0)
        self._bg._legacy_seeding(int(seed) % 2**32)     # init_genrand(seed): std::mt19937's seeding

    def next(self) -> float:
        a, b = self._bg.random_raw(2)
        r = (float(a) + float(b) * 4294967296.0) / 18446744073709551616.0
        return min(r, math.nextafter(1.0, 0.0))


def kept(vals: np.ndarray, top_p: float, logmin: float) -> int:
    """How many of ``vals`` (sorted descending, already cut to top_k) top_p and min_p keep."""
    n = len(vals)
    if top_p < 1.0 and n > 1:
        p = np.exp((vals - vals[0]).astype(np.float32))
        cs = np.cumsum(p / p.sum(dtype=np.float32), dtype=np.float32)
        hit = np.nonzero(cs >= np.float32(top_p))[0]
        if hit.size:
            n = int(hit[0]) + 1
    if n > 1:
        n = max(1, int(np.count_nonzero(vals[:n] >= vals[0] + logmin)))
    return n


def draw(logits: np.ndarray, u: float | None, *, temperature: float, top_k: int, top_p: float,
         min_p: float = MIN_P) -> int:
    """The token the chain picks from one row of logits (or logprobs: the same up to a shift)
    with the uniform draw ``u`` (None for temperature 0)."""
    x = np.asarray(logits, dtype=np.float32)
    if temperature <= 0 or u is None:
        return int(np.argmax(x))
    nv = x.shape[0]
    k = top_k if top_k and 0 < top_k < nv else nv
    top = np.argpartition(-x, k - 1)[:k] if k < nv else np.arange(nv)
    top = top[np.argsort(-x[top], kind="stable")]
    vals = x[top]
    n = kept(vals, top_p, math.log(min_p) if min_p > 0 else -np.inf)
    w = np.exp(((vals[:n] - vals[0]) / temperature).astype(np.float64))
    cs = np.cumsum(w)
    i = int(np.searchsorted(cs, u * cs[-1], side="left"))
    return int(top[min(i, n - 1)])
