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


# ---- the validator keeps querying while a step is verified ------------------------------------------

def test_validator_queries_the_next_step_while_verifying_and_stops_cleanly(tmp_path, make_wallet, wallet_path):
    """A real validator against two real llama.cpp miners (inference steps only): the next step's
    miners are queried while the previous step is verified; steps, scores and state stay in order;
    SIGINT while a step is being verified still records it and exits 0."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from sn1.chain.sandbox import SandboxChain
    from sn1.testing import ROOT, free_port, stop_processes, wait_for_port
    from sn1.validator import state as state_mod
    from sn1.validator.events import read_events

    sandbox = str(tmp_path / "sandbox")
    chain = SandboxChain.init(sandbox, 1, tempo=20, block_time=0.05, weights_rate_limit=1)
    chain.register(make_wallet("val"), stake=1000)
    common = ["--subtensor.network", "sandbox", "--sandbox.path", sandbox, "--netuid", "1",
              "--wallet.path", str(wallet_path)]
    procs, miners = [], {}
    full = tmp_path / "v"
    try:
        for name in ("m1", "m2"):
            miners[chain.register(make_wallet(name))] = name
            port = free_port()
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "sn1.cli", "miner", "--backend", "llamacpp", "--neuron.n_threads", "1",
                 *common, "--wallet.name", name, "--wallet.hotkey", "default", "--axon.port", str(port)],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_for_port(port, timeout=120, proc=procs[-1])
        from sn1.testing import wait_for_endpoints

        wait_for_endpoints(chain, miners, 30)
        log = open(tmp_path / "validator.log", "w")
        v = subprocess.Popen(
            [sys.executable, "-m", "sn1.cli", "validator", *common, "--wallet.name", "val",
             "--wallet.hotkey", "default", "--llm.engine", "scripted", "--neuron.axon_off", "--wandb.off",
             "--neuron.tasks", "inference", "--neuron.task_p", "1", "--neuron.timeout", "60",
             "--neuron.inference_max_tokens", "24", "--neuron.inference_threads", "1",
             "--neuron.full_path", str(full), "--neuron.seed", "5"],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        procs.append(v)
        events_path = str(full / "events.jsonl")
        deadline = time.monotonic() + 420
        while not (os.path.exists(events_path) and len(read_events(events_path)) >= 3):
            assert v.poll() is None, (tmp_path / "validator.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "fewer than 3 steps in 420 s"
            time.sleep(0.2)
        v.send_signal(signal.SIGINT)
        assert v.wait(timeout=120) == 0, (tmp_path / "validator.log").read_text()[-3000:]
    finally:
        stop_processes(procs)
    events = read_events(events_path)
    assert [e["step"] for e in events] == list(range(1, len(events) + 1))
    st = state_mod.load(str(full))
    assert st.step == len(events) >= 3       # every step that was queried and scored was saved
    for e in events:
        assert e["task"] == "inference" and sorted(e["uids"]) == sorted(miners)
        assert e["query_window"][0] <= e["query_window"][1] <= e["score_window"][0] <= e["score_window"][1]
    # Each step starts before the previous one is verified, and some step's miners stream
    # while the previous step's answers are verified.
    pairs = list(zip(events, events[1:]))
    assert all(b["query_window"][0] - b["task_time"] < a["score_window"][1] for a, b in pairs)
    assert any(b["query_window"][0] < a["score_window"][1] for a, b in pairs)
    # scores only from verified answers
    assert all(st.scores[u] >= 0 for u in miners) and max(st.scores[u] for u in miners) > 0


def test_a_uid_replaced_while_its_step_was_scored_is_not_credited(sandbox_path, make_wallet, tmp_path):
    """Scoring overlaps the next round (whose scoring round may resync): the fold credits a uid only
    if it still holds the hotkey that answered."""
    import asyncio
    import random

    from sn1.chain.sandbox import SandboxChain
    from sn1.config import nest
    from sn1.tasks.inference import build_inference_task
    from sn1.validator import state as state_mod
    from sn1.validator.loop import Queried, Validator
    from sn1.validator.query import MinerResult
    from sn1.verify.rules import Verdict
    from sn1.verify.step import StepVerification

    chain = SandboxChain.init(sandbox_path, 1, tempo=1000, block_time=0.01, max_uids=3, immunity_period=0)
    m1 = chain.register(make_wallet("m1"))
    v_w = make_wallet("val")
    chain.register(v_w, stake=100)
    m2 = chain.register(make_wallet("m2"))
    mg = chain.metagraph()
    v = Validator(config=nest({"neuron.moving_average_alpha": 0.5, "neuron.decay_alpha": 0.0}), chain=chain,
                  wallet=v_w, uid=mg.uid_of(v_w.hotkey.ss58_address), metagraph=mg,
                  state=state_mod.State(scores=np.zeros(mg.n), hotkeys=mg.hotkeys), folder=str(tmp_path / "v"))
    uids = [m1, m2]
    q = Queried(build_inference_task(random.Random(1)), uids, [mg.neurons[u].hotkey for u in uids],
                [MinerResult(u, mg.neurons[u].hotkey, "x", "ok") for u in uids], mg.block, mg.netuid,
                0.0, 0.0, 0.0)
    assert chain.register(make_wallet("m3")) == m1          # m1 pruned, its uid goes to m3
    asyncio.run(v.resync())
    rewards = StepVerification([1.0, 1.0], [Verdict(True), Verdict(True)], [1.0, 1.0])
    event = v.fold(q, rewards)
    assert v.state.scores[m1] == 0.0 and v.state.scores[m2] == 0.5
    assert event["hotkeys"] == q.hotkeys and event["rewards"] == [1.0, 1.0] and v.state.step == 1




def test_a_step_batches_what_fits_and_fails_only_the_answer_too_long(forcer):
    """verify_step's rows: answers that fit the context come from the batched passes (equal to
    one at a time), one too long for it is an LLMError for that answer alone, in order."""
    from sn1.verify.step import _rows_iter

    prompt = forcer.prompt_tokens(MSGS)
    ok1, long, ok2 = seqs_of(forcer, [5, N_CTX, 7], seed=9)
    got = list(_rows_iter(forcer, prompt, [ok1, long, ok2]))
    assert sorted(i for i, _ in got) == [0, 1, 2]
    rows = dict(got)
    assert isinstance(rows[1], LLMError) and "context of 256" in str(rows[1])
    for i, seq in ((0, ok1), (2, ok2)):
        assert np.abs(rows[i] - forcer.logprobs(prompt, seq)).max() <= TOL
