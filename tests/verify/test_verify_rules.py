"""Each verification rule, on hand-made distributions (exact) and on the real embedded model."""

from __future__ import annotations

import functools
import gc
import threading

import numpy as np
import pytest

from sn1.llm.base import GenParams
from sn1.llm.llamacpp_logprobs import log_softmax
from sn1.protocol.logprobs import TokenLogprob, TopLogprob
from sn1.verify import Policy, Submission, check, stream_speed, timing_factors, verify_answer, verify_step
from sn1.verify.rules import typicality_z

V, EOS = 8, 7
# Hand-made rows are exact: pin the tolerance the assertions below are written for.
P = functools.partial(Policy, tol_token=0.5)


def rows_of(*logits) -> np.ndarray:
    return log_softmax(np.array(logits, dtype=np.float64))


def honest(rows, ids, k=2):
    """What an honest miner reports for ``ids`` under ``rows`` (minus the final row)."""
    rep = [float(rows[j, i]) for j, i in enumerate(ids)]
    alt_ids = [list(np.argsort(-rows[j])[:k]) for j in range(len(ids))]
    alt_lps = [[float(rows[j, a]) for a in alt] for j, alt in enumerate(alt_ids)]
    return rep, alt_ids, alt_lps


PEAKED = [4.0, 1.0, 0.5, 0.0, 0.0, 0.0, 0.0, -3.0]       # token 0 very likely, EOS unlikely
FLAT = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, -3.0]
STEPS = [4, 3, 2, 1, 0, -1, -2, -3]                      # one logit apart: no near-ties
ENDING = [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 5.0]        # EOS most likely


def run(rows, ids, finish, p, **over):
    rep, alt_ids, alt_lps = honest(rows, ids, p.top_logprobs)
    rep = over.get("rep", rep)
    alt_ids = over.get("alt_ids", alt_ids)
    alt_lps = over.get("alt_lps", alt_lps)
    return check(rows, ids, rep, alt_ids, alt_lps, finish, {EOS}, p)


def test_faithful_answer_passes():
    p = P(temperature=0.7, max_tokens=3, top_logprobs=2)
    rows = rows_of(PEAKED, FLAT, FLAT, FLAT)
    v = run(rows, [0, 2, 1], "length", p)
    assert v.ok and v.rule == "" and v.max_diff == 0 and v.z is not None
    rows = rows_of(PEAKED, FLAT, ENDING)
    assert run(rows, [0, 1], "stop", p).ok


def test_greedy_takes_the_most_likely_token():
    p = P(temperature=0.0, max_tokens=2, top_logprobs=2)
    rows = rows_of(PEAKED, FLAT, FLAT)
    assert run(rows, [0, 0], "length", p).ok
    v = run(rows, [0, 6], "length", p)         # 0.6 below the top: more than the tolerance
    assert not v.ok and v.rule == "plausible" and "token 1 is not the most likely" in v.reason


def test_near_ties_never_fail_an_honest_miner():
    p = P(temperature=0.0, max_tokens=1, top_logprobs=2)
    rows = rows_of([2.0, 2.0 - 1e-3, 0, 0, 0, 0, 0, 0], FLAT)
    assert run(rows, [1], "length", p).ok        # a hair below the top is within tolerance


def test_top_k():
    p = P(temperature=1.0, top_k=2, top_p=1.0, max_tokens=1, top_logprobs=2)
    rows = rows_of(STEPS, FLAT)
    v = run(rows, [3], "length", p)
    assert not v.ok and v.rule == "plausible" and "ranks 4, outside top_k 2" in v.reason


def test_top_p_nucleus():
    p = P(temperature=0.7, top_k=50, top_p=0.8, max_tokens=1, top_logprobs=2)
    rows = rows_of(PEAKED, FLAT)
    v = run(rows, [1], "length", p)
    assert not v.ok and v.rule == "plausible" and "nucleus" in v.reason
    assert run(rows, [1], "length", P(temperature=0.7, top_p=1.0, max_tokens=1, top_logprobs=2)).ok


def test_floor():
    p = P(temperature=1.0, top_k=0, top_p=1.0, max_tokens=1, top_logprobs=2, floor=-5)
    rows = rows_of([10, 0, 0, 0, 0, 0, 0, 0], FLAT)
    v = run(rows, [3], "length", p)
    assert not v.ok and v.rule == "plausible" and "below the floor" in v.reason


def test_reported_logprob_must_match():
    p = P(temperature=0.7, max_tokens=2, top_logprobs=2)
    rows = rows_of(PEAKED, FLAT, FLAT)
    rep, _, _ = honest(rows, [0, 1], 2)
    v = run(rows, [0, 1], "length", p, rep=[rep[0], rep[1] + 0.8])
    assert not v.ok and v.rule == "match" and v.reason.startswith("token 1: reported logprob")
    v = run(rows, [0, 1], "length", p, rep=[rep[0] - 0.3, rep[1] + 0.3])     # each within, mean not
    assert not v.ok and v.rule == "match" and "on average" in v.reason


def test_alternatives_must_match_and_be_complete():
    p = P(temperature=0.7, max_tokens=1, top_logprobs=2)
    rows = rows_of(STEPS, FLAT)
    _, alt_ids, alt_lps = honest(rows, [0], 2)
    v = run(rows, [0], "length", p, alt_lps=[[alt_lps[0][0], alt_lps[0][1] - 2]])
    assert not v.ok and v.rule == "match" and "alternative 1" in v.reason
    # The two listed are not the top two: token 1 (more likely than the listed token 5) is left out.
    v = run(rows, [0], "length", p, alt_ids=[[0, 5]], alt_lps=[[float(rows[0, 0]), float(rows[0, 5])]])
    assert not v.ok and v.rule == "match" and "leave out token id 1" in v.reason
    v = run(rows, [0], "length", p, alt_ids=[[0]], alt_lps=[[float(rows[0, 0])]])
    assert not v.ok and v.rule == "logprobs" and "1 top_logprobs, 2 requested" in v.reason


def test_end_where_the_model_would():
    p = P(temperature=0.7, max_tokens=3, top_logprobs=2)
    v = run(rows_of(PEAKED, FLAT, FLAT), [0, 1], "length", p)
    assert not v.ok and v.rule == "end" and "length after 2 tokens" in v.reason
    v = run(rows_of(PEAKED, FLAT, PEAKED), [0, 1], "stop", p)             # EOS unlikely here: cut short
    assert not v.ok and v.rule == "end" and "would go on" in v.reason
    v = run(rows_of(PEAKED, FLAT, ENDING), [0, 1], "timeout", p)
    assert not v.ok and v.rule == "end" and "did not finish" in v.reason
    p1 = P(temperature=0.7, max_tokens=2, top_logprobs=2)
    v = run(rows_of(PEAKED, FLAT, ENDING), [0, 1], "stop", p1)            # stop *at* max_tokens
    assert not v.ok and v.rule == "end"


def test_skipped_eos_fails():
    p = P(temperature=0.7, max_tokens=3, top_logprobs=2)
    # EOS is nearly certain after token 2, the miner went on.
    v = run(rows_of(PEAKED, FLAT, [0, 0, 0, 0, 0, 0, 0, 12.0], FLAT), [0, 1, 2], "length", p)
    assert not v.ok and v.rule == "plausible" and v.reason.startswith("token 2")


def test_typical_catches_text_that_is_possible_but_never_sampled():
    p = P(temperature=1.0, top_k=50, top_p=0.95, max_tokens=64, top_logprobs=2)
    row = [2.5, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, -6.0]       # token 0 ~ 0.6, others ~ 0.06 each
    rows = rows_of(*([row] * 65))
    always_second = [1] * 64                              # each one plausible, all together not
    v = run(rows, always_second, "length", p)
    assert not v.ok and v.rule == "typical" and v.z < -p.z_max
    rng = np.random.default_rng(0)
    q = np.exp(rows[0])
    sampled = list(rng.choice(V, size=64, p=q / q.sum()))
    assert abs(typicality_z(rows[:64], rows[np.arange(64), sampled], p)) < 4


def test_timing_rate_is_length_neutral_and_bursts_gain_nothing():
    short = ([0.1 * (i + 1) for i in range(10)], [1] * 10)        # a token every 0.1 s
    long = ([0.1 * (i + 1) for i in range(40)], [1] * 40)         # the same speed, 4x the answer
    assert stream_speed(*short) == pytest.approx(stream_speed(*long))
    burst = ([0.1, 1.0], [1, 9])                                  # first at once, the rest held back
    assert stream_speed(*burst)[1] <= stream_speed(*short)[1] + 1e-9
    slow = ([0.1 * (i + 1) for i in range(10)] + [2.0], [1] * 11)  # last token a second late
    assert stream_speed(*slow)[1] < stream_speed(*short)[1]
    f = timing_factors([short, slow, short], [True, True, False])
    assert f[0] == 1.0 > f[1] >= 0.5 and f[2] == 0.0


# ---- the real embedded model ------------------------------------------------------------------

MSGS = [{"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Name three colours of the rainbow."}]


SHARED: dict = {}


@pytest.fixture(scope="module")
def model():
    from sn1.llm.llamacpp import LlamaCppEngine
    from sn1.verify import Verifier

    engine = LlamaCppEngine(n_threads=1)
    verifier = Verifier(None, n_threads=1)
    SHARED["verifier"] = verifier
    yield engine, verifier.forcer
    # Free the llama.cpp models now: freed at interpreter exit, llama-cpp-python prints a traceback.
    SHARED.clear()
    del engine, verifier
    gc.collect()


def answer(engine, temperature=0.7, max_tokens=24, k=3, seed=5):
    pieces = list(engine.stream(MSGS, GenParams(max_tokens=max_tokens, temperature=temperature, seed=seed,
                                                logprobs=k), threading.Event()))
    tokens = [t for p in pieces for t in p.logprobs]
    finish = "length" if len(tokens) == max_tokens else "stop"
    return Submission("".join(pieces), tokens, "ok", finish), \
        Policy(temperature=temperature, max_tokens=max_tokens, top_logprobs=k, seed=seed)


@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_real_honest_answer_is_verified(model, temperature):
    engine, forcer = model
    sub, p = answer(engine, temperature)
    v = verify_answer(forcer, forcer.prompt_tokens(MSGS), sub, p)
    assert v.ok, v.reason
    assert v.n_tokens == len(sub.logprobs) and v.max_diff <= p.tol_token


def test_real_bad_inputs_fail_with_a_reason(model):
    engine, forcer = model
    sub, p = answer(engine)
    prompt = forcer.prompt_tokens(MSGS)

    def verdict(**changes):
        s = Submission(**{**sub.__dict__, **changes})
        return verify_answer(forcer, prompt, s, p)

    v = verdict(logprobs=[])
    assert (v.ok, v.rule, v.reason) == (False, "logprobs", "no logprobs in the stream")
    v = verdict(logprobs=[TokenLogprob(b"\xff\xfe\xfd", -0.1)] + sub.logprobs[1:])
    assert not v.ok and v.rule == "tokens" and "not in the model's vocabulary" in v.reason
    v = verdict(completion=sub.completion + " extra")
    assert not v.ok and v.rule == "chunks" and "do not spell the streamed text" in v.reason
    v = verdict(status="timeout")
    assert not v.ok and v.rule == "stream"
    v = verify_answer(forcer, prompt, sub, Policy(temperature=p.temperature, max_tokens=len(sub.logprobs) - 1,
                                                  top_logprobs=p.top_logprobs))
    assert not v.ok and v.rule == "length"
    bad_alt = [TokenLogprob(t.token, t.logprob, (TopLogprob(b"\xff\xfe\xfd", -1.0),) + t.top[1:])
               for t in sub.logprobs]
    v = verdict(logprobs=bad_alt)
    assert not v.ok and v.rule == "logprobs" and "alternative" in v.reason


def test_real_other_tokenisation_fails(model):
    """The same text cut into other tokens, reported with the model's *recomputed* logprobs for
    that split (what a cheat that re-tokenised and teacher-forced would send): every logprob
    matches, but the seeded sampler drew the whole token, not its first half."""
    from sn1.llm.llamacpp_logprobs import top_entries

    engine, forcer = model
    sub, p = answer(engine)
    table = forcer.table
    splits = [j for j, t in enumerate(sub.logprobs)
              if len(t.token) >= 3 and t.token[:1] in table.by_bytes and t.token[1:] in table.by_bytes]
    assert splits
    prompt = forcer.prompt_tokens(MSGS)
    for j in splits:
        t = sub.logprobs[j]
        toks = [x.token for x in sub.logprobs[:j]] + [t.token[:1], t.token[1:]] + \
            [x.token for x in sub.logprobs[j + 1:]]
        ids = [table.by_bytes[b] for b in toks]
        rows = forcer.logprobs(prompt, ids)
        split = [TokenLogprob(b, float(rows[i, ids[i]]), top_entries(rows[i], p.top_logprobs, table))
                 for i, b in enumerate(toks)]
        bigger = Policy(**{**p.__dict__, "max_tokens": p.max_tokens + 1})
        v = verify_answer(forcer, prompt, Submission(sub.completion, split, "ok", sub.finish_reason), bigger)
        assert not v.ok and v.rule in ("sampler", "end"), (j, v)


def test_speed_counts_verified_tokens_not_claimed_ones(model):
    from sn1.verify.step import spell

    engine, forcer = model
    sub, p = answer(engine)
    n = len(sub.logprobs)
    head = len(spell(sub.logprobs[:1]))
    shape = dict(chunk_times=[0.1, 1.0], chunk_chars=[head, len(sub.completion) - head], chunk_lp=[1, n - 1])
    honest_claim = Submission(**{**sub.__dict__, **shape, "chunk_tokens": [1, n - 1]})
    early_claim = Submission(**{**sub.__dict__, **shape, "chunk_tokens": [n - 1, 1]})   # "most came early"
    late = Submission(**{**sub.__dict__, **shape, "chunk_times": [0.1, 2.0], "chunk_tokens": [1, n - 1]})
    step = verify_step(SHARED["verifier"], MSGS, p, [honest_claim, early_claim, late])
    assert all(v.ok for v in step.verdicts), [v.reason for v in step.verdicts]
    assert step.n_passes == 1          # the same proof in the same chunks: verified once
    assert step.factors[0] == step.factors[1] == step.total[0] > step.factors[2]


def test_token_table_has_exact_bytes_for_every_token(model):
    """Long tokens (a newline and 32 spaces) and special ones map both ways; none is empty."""
    _, forcer = model
    table = forcer.table
    assert all(table.bytes_of(i) for i in range(table.n_vocab))
    assert all(table.by_bytes[table.bytes_of(i)] == i for i in range(table.n_vocab))
    assert b"\n" + b" " * 32 in table.by_bytes and b"<|im_end|>" in table.by_bytes
