"""Batched teacher forcing (TeacherForcer.logprobs_many) against the one-at-a-time path.

Real embedded model (SmolLM2 through llama.cpp), small contexts, 1 thread.
The tolerance below is measured (float32 log-softmax of the same logits: about
4e-6 on these sequences); benchmarks/verify_batch.py prints it on 50 answers.
"""

from __future__ import annotations

import gc
import threading

import numpy as np
import pytest

from sn1.llm.base import GenParams, LLMError
from sn1.verify import Policy, Submission, Verifier, verify_answer, verify_step

MSGS = [{"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Name three colours of the rainbow."}]
N_CTX = 256
TOL = 1e-4          # |batched - one at a time| for any log-probability


@pytest.fixture(scope="module")
def forcer():
    from sn1.llm.embedded import embedded_gguf
    from sn1.llm.llamacpp_logprobs import TeacherForcer

    f = TeacherForcer(str(embedded_gguf()), n_ctx=N_CTX, n_threads=1, chat_format="chatml", batch_seqs=3)
    yield f
    del f
    gc.collect()


def seqs_of(forcer, lengths, seed=0):
    rng = np.random.default_rng(seed)
    n = forcer.table.n_vocab
    return [[int(t) for t in rng.integers(0, n, k)] for k in lengths]


def assert_same(forcer, prompt, seqs, many):
    assert len(many) == len(seqs)
    worst = 0.0
    for s, rows in zip(seqs, many):
        ref = forcer.logprobs(prompt, s)
        assert rows.shape == ref.shape == (len(s) + 1, forcer.table.n_vocab)
        assert np.isfinite(rows).all()
        worst = max(worst, float(np.abs(rows - ref).max()))
    assert worst <= TOL, worst
    return worst


def test_many_equals_one_at_a_time_across_batches(forcer):
    prompt = forcer.prompt_tokens(MSGS)
    # 7 sequences of different lengths, an empty one among them: three batches of at most 3
    seqs = seqs_of(forcer, [20, 1, 0, 37, 5, 64 - 1, 12])
    seqs[3][:10] = seqs[0][:10]          # a shared start: still each its own stream
    many = forcer.logprobs_many(prompt, seqs)
    worst = assert_same(forcer, prompt, seqs, many)
    print(f"max |batched - one at a time| = {worst:.2e}")
    # The same sequence gives the same rows whatever it is batched with and wherever it stands.
    again = forcer.logprobs_many(prompt, [seqs[4], seqs[0], seqs[6]])
    assert np.abs(again[0] - many[4]).max() <= TOL and np.abs(again[1] - many[0]).max() <= TOL


def test_one_sequence_empty_sequence_and_no_sequence(forcer):
    prompt = forcer.prompt_tokens(MSGS)
    s = seqs_of(forcer, [9], seed=3)
    assert_same(forcer, prompt, s, forcer.logprobs_many(prompt, s))
    (empty,) = forcer.logprobs_many(prompt, [[]])
    assert empty.shape == (1, forcer.table.n_vocab)
    assert np.abs(empty - forcer.logprobs(prompt, [])).max() <= TOL
    assert forcer.logprobs_many(prompt, []) == []


def test_a_new_prompt_is_evaluated_again(forcer):
    p1 = forcer.prompt_tokens(MSGS)
    p2 = forcer.prompt_tokens([{"role": "user", "content": "Count from one to five."}])
    s = seqs_of(forcer, [8, 8], seed=4)
    a = forcer.logprobs_many(p1, s)
    b = forcer.logprobs_many(p2, s)
    assert np.abs(a[0] - b[0]).max() > 0.1        # another prompt, other distributions
    assert_same(forcer, p2, s, b)
    assert_same(forcer, p1, s, forcer.logprobs_many(p1, s))


def test_iter_logprobs_is_lazy_and_in_order(forcer):
    prompt = forcer.prompt_tokens(MSGS)
    seqs = seqs_of(forcer, [4] * 7, seed=5)
    it = forcer.iter_logprobs(prompt, seqs)
    first = [next(it) for _ in range(3)]      # one batch of 3
    assert [i for i, _ in first] == [0, 1, 2]
    assert [i for i, _ in it] == [3, 4, 5, 6]


@pytest.mark.parametrize("bad", [[-1], [10**9], "vocab", [1.5], ["x"]])
def test_out_of_vocab_ids_raise_llmerror(forcer, bad):
    prompt = forcer.prompt_tokens(MSGS)
    if bad == "vocab":
        bad = [forcer.table.n_vocab]
    with pytest.raises(LLMError, match="not a token id"):
        forcer.logprobs_many(prompt, [[1, 2], bad])
    with pytest.raises(LLMError, match="not a token id"):
        forcer.logprobs_many(bad, [[1, 2]])
    with pytest.raises(LLMError, match="not a token id"):
        forcer.logprobs(prompt, bad)
    # nothing broken: the next call is right
    s = seqs_of(forcer, [6, 6], seed=6)
    assert_same(forcer, prompt, s, forcer.logprobs_many(prompt, s))


def test_too_long_and_no_prompt_raise_llmerror(forcer):
    prompt = forcer.prompt_tokens(MSGS)
    long = seqs_of(forcer, [N_CTX - len(prompt) + 1], seed=7)
    with pytest.raises(LLMError, match="context of 256"):
        forcer.logprobs_many(prompt, [[5], long[0]])
    with pytest.raises(LLMError, match="needs a prompt"):
        forcer.logprobs_many([], [[5]])
    fits = seqs_of(forcer, [N_CTX - len(prompt)], seed=8)     # exactly the context: fine
    assert_same(forcer, prompt, fits, forcer.logprobs_many(prompt, fits))


# ---- verify_step on real answers: the batched path gives the one-at-a-time verdicts ---------------

def real_answers(n, max_tokens=16, k=3):
    from sn1.llm.llamacpp import LlamaCppEngine

    engine = LlamaCppEngine(n_threads=1)
    subs = []
    for seed in range(n):
        pieces = list(engine.stream(MSGS, GenParams(max_tokens=max_tokens, temperature=1.0, seed=seed,
                                                    logprobs=k), threading.Event()))
        tokens = [t for p in pieces for t in p.logprobs]
        subs.append(Submission("".join(pieces), tokens, "ok",
                               "length" if len(tokens) == max_tokens else "stop"))
    del engine
    gc.collect()
    return subs


def test_verify_step_batched_gives_the_same_verdicts():
    verifier = Verifier(None, n_ctx=N_CTX, n_threads=1)
    forcer = verifier.forcer
    policy = Policy(temperature=1.0, max_tokens=16, top_logprobs=3)
    honest = real_answers(5)
    first = honest[0]
    # a tampered copy (one logprob off), a duplicate, a failed stream, too many tokens
    tampered = Submission(first.completion, [first.logprobs[0].__class__(
        first.logprobs[0].token, first.logprobs[0].logprob - 3.0, first.logprobs[0].top)] + first.logprobs[1:],
        "ok", first.finish_reason)
    failed = Submission("x", [], "timeout", None)
    subs = honest + [tampered, honest[1], failed]
    step = verify_step(verifier, MSGS, policy, subs)
    prompt = forcer.prompt_tokens(MSGS)
    alone = [verify_answer(forcer, prompt, s, policy) for s in subs]
    assert [v.ok for v in step.verdicts] == [v.ok for v in alone]
    assert [v.rule for v in step.verdicts] == [v.rule for v in alone]
    for a, b in zip(step.verdicts, alone):
        assert abs(a.max_diff - b.max_diff) <= TOL
    assert all(v.ok for v in step.verdicts[:5])            # honest answers pass (fixed seeds)
    assert not step.verdicts[5].ok and step.verdicts[5].rule == "match"
    assert step.n_passes == len(subs) - 1                  # the duplicate verified once
    del verifier, forcer
    gc.collect()
