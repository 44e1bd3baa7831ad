"""Sampler replay (sn1/verify/replay.py): the random stream, each rule on hand-built rows, and
the real llama.cpp sampler reproduced token for token."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from sn1.llm.llamacpp_logprobs import log_softmax
from sn1.verify import Policy, check
from sn1.verify.replay import Mt19937Stream, check_position

V, EOS = 8, 7
P = functools.partial(Policy, tol_token=0.5, tol_replay=0.05, top_k=50, top_p=1.0, top_logprobs=2)


def rows_of(*logits) -> np.ndarray:
    return log_softmax(np.array(logits, dtype=np.float64))


def run(rows, ids, finish, p, k=2, **over):
    rep = over.get("rep", [float(rows[j, i]) for j, i in enumerate(ids)])
    alt_ids = [list(np.argsort(-rows[j], kind="stable")[:k]) for j in range(len(ids))]
    alt_lps = [[float(rows[j, a]) for a in alt] for j, alt in enumerate(alt_ids)]
    return check(rows, ids, rep, alt_ids, alt_lps, finish, {EOS}, p)


def draws(seed: int, n: int) -> list[float]:
    s = Mt19937Stream(seed)
    return [s.next() for _ in range(n)]


def token_at(row: np.ndarray, u: float, temperature: float) -> int:
    """The token whose CDF interval (tokens by decreasing logit) holds u: what dist draws."""
    order = np.argsort(-row, kind="stable")
    w = np.exp((row[order] - row[order[0]]) / temperature)
    return int(order[int(np.searchsorted(np.cumsum(w) / w.sum(), u))])


def test_mt19937_is_the_standard_generator():
    # The C++ standard requires the 10000th output of a default-constructed std::mt19937
    # (seed 5489) to be 4123659995.
    s = Mt19937Stream(5489)
    assert int(s._bg.random_raw(10000)[-1]) == 4123659995


def test_uniform_draw_uses_two_outputs_low_word_first():
    s, raw = Mt19937Stream(7), Mt19937Stream(7)._bg.random_raw(4)
    for a, b in (raw[:2], raw[2:]):
        assert s.next() == (int(a) + int(b) * 2.0**32) / 2.0**64
    assert all(0 <= u < 1 for u in draws(1, 1000))


FLAT = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, -3.0]
ENDING = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 5.0]
PEAKED = [4.0, 1.0, 0.5, 0.0, 0.0, 0.0, 0.0, -3.0]


@pytest.mark.parametrize("seed", range(6))
def test_the_seeded_draw_passes_every_other_token_fails(seed):
    p = P(temperature=1.0, max_tokens=3, seed=seed, min_p=0.0)
    rows = rows_of(FLAT, FLAT, FLAT, FLAT)
    us = draws(seed, 3)
    ids = [token_at(rows[j], us[j], 1.0) for j in range(3)]
    assert run(rows, ids, "length", p).ok
    for j in range(3):
        for other in range(V - 1):
            if other == ids[j]:
                continue
            bad = list(ids)
            bad[j] = other
            v = run(rows, bad, "length", p)
            # A neighbour passes only if the draw lies within the slack of the shared boundary.
            order = list(np.argsort(-rows[j], kind="stable"))
            w = np.exp(rows[j][order])
            cdf = np.concatenate([[0.0], np.cumsum(w) / w.sum()])
            r = order.index(other)
            near = min(abs(us[j] - cdf[r]), abs(us[j] - cdf[r + 1])) < 0.06
            assert v.ok == near or (not v.ok and v.rule == "sampler"), (j, other, v.reason)
            if not near:
                assert not v.ok and v.rule == "sampler" and f"token {j} " in v.reason


def test_another_seed_fails():
    rows = rows_of(*([FLAT] * 33))
    us = draws(11, 32)
    ids = [token_at(rows[j], us[j], 0.7) for j in range(32)]
    assert run(rows, ids, "length", P(temperature=0.7, max_tokens=32, seed=11)).ok
    v = run(rows, ids, "length", P(temperature=0.7, max_tokens=32, seed=12))
    assert not v.ok and v.rule == "sampler"


def test_near_ties_never_fail_an_honest_miner():
    # Two tokens 0.01 apart in the validator's logits (unreported: a miner's engine may have them
    # swapped), the draw lands in either one's interval: both pass.
    row = np.log(np.array([0.3, 0.3 - 1e-3, 0.2, 0.1, 0.05, 0.03, 0.019, 0.001]))
    for u in (0.29, 0.31, 0.59, 0.61):
        for t in (0, 1):
            assert check_position(row, t, {}, u, temperature=1.0, top_k=50, top_p=1.0, eps=0.05,
                                  nucleus_slack=0.02, min_p=0.0) is None
    # Far from both: token 3's interval is [0.8, 0.9).
    assert check_position(row, 3, {}, 0.2, temperature=1.0, top_k=50, top_p=1.0, eps=0.05,
                          nucleus_slack=0.02, min_p=0.0) is not None


def test_reported_logprobs_decide_near_ties_and_shading_gains_nothing():
    row = np.log(np.array([0.5, 0.4, 0.05, 0.05]))
    kw = dict(temperature=1.0, top_k=50, top_p=1.0, eps=0.05, nucleus_slack=0.0, min_p=0.0)
    # u = 0.49 is 0.01 below the boundary: with nothing reported the slack lets either token pass.
    assert check_position(row, 1, {}, 0.49, **kw) is None
    assert check_position(row, 0, {}, 0.49, **kw) is None
    # The miner's own values (here the model's) are exact: they name token 0, token 1 fails.
    exact = {0: float(row[0]), 1: float(row[1])}
    assert check_position(row, 0, exact, 0.49, **kw) is None
    assert check_position(row, 1, exact, 0.49, **kw) is not None
    # Shading the reports far past the tolerance buys no more than eps: u = 0.45 stays token 0's.
    shaded = {0: math.log(0.2), 1: math.log(0.7)}
    assert check_position(row, 1, shaded, 0.45, **kw) is not None


def test_greedy_with_tie_tolerance():
    p = P(temperature=0.0, max_tokens=2, seed=3)
    rows = rows_of(PEAKED, [2.0, 2.0 - 1e-3, 0, 0, 0, 0, 0, 0], FLAT)
    assert run(rows, [0, 0], "length", p).ok
    # A near-tie the miner did not report (no alternatives asked for): within tol_replay.
    assert run(rows, [0, 1], "length", P(temperature=0.0, max_tokens=2, seed=3, top_logprobs=0), k=0).ok
    v = run(rows_of(PEAKED, FLAT, FLAT), [0, 3], "length", p)
    assert not v.ok and v.rule == "sampler" and "greedy" in v.reason


def test_top_k_top_p_min_p_cut_the_kept_set():
    rows = rows_of([4, 3, 2, 1, 0, -1, -2, -3], FLAT)
    kw = dict(temperature=1.0, eps=0.0, nucleus_slack=0.0)
    assert "top_k 2" in check_position(rows[0], 3, {}, 0.99, top_k=2, top_p=1.0, min_p=0.0, **kw)
    assert "kept set" in check_position(rows[0], 3, {}, 0.99, top_k=50, top_p=0.8, min_p=0.0, **kw)
    assert "kept set" in check_position(rows[0], 4, {}, 0.99, top_k=50, top_p=1.0, min_p=0.05, **kw)
    assert check_position(rows[0], 2, {}, 0.99, top_k=50, top_p=1.0, min_p=0.05, **kw) is None


def test_end_must_be_drawn():
    p = P(temperature=1.0, max_tokens=4, seed=2)
    us = draws(2, 3)
    rows = rows_of(FLAT, FLAT, PEAKED)
    ids = [token_at(rows[j], us[j], 1.0) for j in range(2)]
    v = run(rows, ids, "stop", p)                     # EOS has p ~ 6e-4 here: not drawn
    assert not v.ok and v.rule == "end" and "stopped after 2 tokens" in v.reason
    assert run(rows_of(FLAT, FLAT, ENDING), ids, "stop", p).ok
    v = run(rows_of(FLAT, FLAT, ENDING), ids, "length", p)
    assert not v.ok and v.rule == "end" and "max_tokens is 4" in v.reason


def test_without_a_seed_the_statistical_rules_apply():
    steps = [4, 3, 2, 1, 0, -1, -2, -3]
    for p in (P(temperature=0.0, max_tokens=2),                             # no seed: no replay
              P(temperature=0.0, max_tokens=2, seed=1, sampler="vllm/unknown")):
        v = run(rows_of(PEAKED, steps, FLAT), [0, 3], "length", p)
        assert not v.ok and v.rule == "plausible"


# ---- the real llama.cpp sampler ----------------------------------------------------------------

def test_replay_reproduces_llama_cpp_token_for_token():
    """Exact rows (one token at a time, like the miner's decode) and no slack: the replay must
    name every token llama.cpp drew, and the end, at every temperature."""
    import threading

    from llama_cpp import Llama

    from sn1.llm.base import GenParams
    from sn1.llm.embedded import embedded_gguf
    from sn1.llm.llamacpp_logprobs import generate_with_logprobs, prompt_tokens, token_table
    from sn1.llm.sampler import Mt19937Stream, draw
    from sn1.verify.replay import replay

    llm = Llama(model_path=str(embedded_gguf()), n_ctx=512, n_threads=1, n_threads_batch=1,
                chat_format="chatml", logits_all=True, verbose=False)
    table = token_table(llm)
    msgs = [{"role": "user", "content": "Tell me about the moon."}]
    checked = 0
    try:
        for seed, temp in ((1, 0.0), (2, 0.3), (3, 0.7), (4, 1.0), (5, 1.0)):
            p = GenParams(max_tokens=24, temperature=temp, top_k=50, top_p=0.95, seed=seed, logprobs=0)
            llm.reset()     # no prompt cache from the last answer: the prompt evaluated as a whole, as below
            toks = [t for pc in generate_with_logprobs(llm, msgs, p, threading.Event(), 512) for t in pc.logprobs]
            ids = [table.by_bytes[t.token] for t in toks]
            pr = prompt_tokens(llm, msgs)
            llm.reset()
            llm.eval(pr)
            for t in ids:
                llm.eval([t])                              # one at a time: the decode's own kernels
            rows = log_softmax(llm.scores[len(pr) - 1:len(pr) + len(ids)])
            finish = "length" if len(ids) == 24 else "stop"
            kw = dict(temperature=temp, top_k=50, top_p=0.95, max_tokens=24, eps=0.0, nucleus_slack=0.0)
            assert replay(rows, ids, [{}] * len(ids), finish, table.eog, seed=seed, **kw) is None
            # The forward sampler other engines use (sn1.llm.sampler.draw) draws the same tokens
            # from the same logits and the same seed, and the end where llama.cpp ended.
            rng = Mt19937Stream(seed)
            drawn = [draw(rows[j], rng.next() if temp > 0 else None, temperature=temp, top_k=50, top_p=0.95)
                     for j in range(len(ids) + (finish == "stop"))]
            assert drawn[:len(ids)] == ids
            if finish == "stop":
                assert drawn[-1] in table.eog
            # Another seed names other tokens (at temperature 0 there is no draw).
            if temp > 0:
                assert replay(rows, ids, [{}] * len(ids), finish, table.eog, seed=seed + 100, **kw) is not None
            checked += len(ids)
    finally:
        del llm
    assert checked >= 60
