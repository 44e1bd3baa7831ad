"""Pay only for proven work (issue 17): a seed per uid, no proof no pay, kept across restarts.

Units on the state and the request builder, the gate against a real sandbox
chain, and a real validator process against the embedded llama.cpp miner, a
free rider relaying it (benchmarks/incentive.py) and a test miner.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import time

import numpy as np
import pytest

from sn1.chain.sandbox import SandboxChain
from sn1.config import nest
from sn1.tasks.inference import requests_for
from sn1.testing import ROOT, free_port, stop_processes, wait_for_port
from sn1.validator import state as state_mod
from sn1.validator.events import read_events
from sn1.validator.loop import Backoff, Validator
from sn1.validator.weights import proof_gate

INFERENCE = {"neuron.tasks": ["qa", "inference"], "neuron.task_p": [0.5, 0.5]}


def test_each_uid_gets_its_own_seed_and_the_same_request_otherwise():
    base = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "seed": 7, "temperature": 0.7,
            "top_k": 50, "top_p": 0.95, "max_tokens": 8, "top_logprobs": 5}
    reqs = requests_for(base, list(range(200)))
    assert len({r["seed"] for r in reqs}) == 200
    assert all({**r, "seed": 7} == base for r in reqs)
    assert all(0 <= r["seed"] < 2**31 for r in reqs)
    # Drawn from the system's generator: two steps never repeat a seed list, and a
    # repeating generator (a test's rng) still gives distinct seeds within a step.
    assert [r["seed"] for r in reqs] != [r["seed"] for r in requests_for(base, list(range(200)))]

    class Stuck(random.Random):
        def randrange(self, n):
            self.k = getattr(self, "k", 0) + 1
            return self.k // 3     # every value three times
    assert len({r["seed"] for r in requests_for(base, range(10), Stuck())}) == 10


def test_inference_steps_sample_and_name_the_sampler_every_seed_is_replayed_with():
    """Greedy (temperature 0) gives every seed the same answer: one computation would answer
    every uid. The validator only asks sampled answers, and names the sampler it replays."""
    from sn1.tasks.inference import build_inference_task
    from sn1.verify.replay import SAMPLER

    rng = random.Random(5)
    reqs = [build_inference_task(rng).extra["request"] for _ in range(60)]
    assert min(r["temperature"] for r in reqs) > 0
    assert len({r["temperature"] for r in reqs}) >= 2
    assert {r["sampler"] for r in reqs} == {SAMPLER}


def _state(n=3, step=10):
    return state_mod.State(step=step, scores=np.zeros(n), hotkeys=[f"h{i}" for i in range(n)])


def test_proof_window_counts_the_last_answers_and_their_age():
    st = _state()
    st.record_proofs([0, 1], [True, False])
    st.step = 11
    st.record_proofs([0, 1, 2], [False, True, False])
    assert st.proven(3, 100).tolist() == [True, True, False]
    assert st.proven(1, 100).tolist() == [False, True, False]      # window 1: only the last answer
    st.step = 12
    st.record_proofs([0], [False])
    assert st.proven(2, 100).tolist() == [False, True, False]      # its pass fell out of the window
    st.step = 200
    assert st.proven(3, 100).tolist() == [False, False, False]     # too old
    with pytest.raises(ValueError):
        st.record_proofs([0], [True, False])


def test_proofs_follow_the_hotkey_and_survive_a_restart(tmp_path):
    st = _state()
    st.record_proofs([1], [True])
    for _ in range(100):                      # bounded per hotkey
        st.record_proofs([2], [True])
    state_mod.save(str(tmp_path), st)
    back = state_mod.load(str(tmp_path))
    assert back.proven(3, 100).tolist() == [False, True, True]
    assert len(back.proofs["h2"]) == state_mod.MAX_PROOFS
    back.hotkeys[1] = "new-owner"             # a uid taken over by another hotkey has no proof
    assert back.proven(3, 100).tolist() == [False, False, True]
    # A state file from before proofs existed loads with none.
    d = json.loads((tmp_path / state_mod.STATE_FILE).read_text())
    del d["proofs"]
    (tmp_path / state_mod.STATE_FILE).write_text(json.dumps(d))
    assert state_mod.load(str(tmp_path)).proofs == {}


def test_gate_is_off_when_inference_is_never_asked():
    st = _state()
    st.scores = np.array([0.5, 0.2, 0.1])
    assert proof_gate(nest(INFERENCE), st).tolist() == [0.0, 0.0, 0.0]
    assert proof_gate(nest({"neuron.tasks": ["qa"], "neuron.task_p": [1.0]}), st).tolist() == [0.5, 0.2, 0.1]
    assert proof_gate(nest({**INFERENCE, "neuron.proof_window": 0}), st).tolist() == [0.5, 0.2, 0.1]
    st.record_proofs([1], [True])
    assert proof_gate(nest(INFERENCE), st).tolist() == [0.0, 0.2, 0.0]


def test_weights_on_chain_are_zero_without_proof_and_positive_once_proven(sandbox_path, make_wallet, tmp_path):
    chain = SandboxChain.init(sandbox_path, 1, tempo=1000, block_time=0.05, weights_rate_limit=0)
    v_w = make_wallet("val")
    chain.register(v_w, stake=1000)
    talker, worker = chain.register(make_wallet("talker")), chain.register(make_wallet("worker"))
    mg = chain.metagraph()
    st = state_mod.State(scores=np.array([0.0, 0.9, 0.3]), hotkeys=mg.hotkeys)
    config = nest({**INFERENCE, "neuron.epoch_length": 0, "neuron.disable_set_weights": False})
    v = Validator(config=config, chain=chain, wallet=v_w, uid=0, metagraph=mg, state=st,
                  folder=str(tmp_path / "v"), weights_backoff=Backoff(base=0.0))
    v.state.record_proofs([talker, worker], [False, True])    # the better text scorer never proved
    assert asyncio.run(v.maybe_set_weights())
    w = chain.weights()[0]
    assert w.get(worker, 0) > 0.99 and w.get(talker, 0.0) < 1e-3
    v.state.step += 1
    v.state.record_proofs([talker], [True])                    # ... until it does
    assert asyncio.run(v.maybe_set_weights())
    w = chain.weights()[0]
    assert w[talker] > w[worker] > 0


# ---- real processes ------------------------------------------------------------------------

@pytest.fixture
def net(tmp_path, make_wallet, wallet_path):
    sandbox = str(tmp_path / "sandbox")
    chain = SandboxChain.init(sandbox, 1, tempo=20, block_time=0.05, weights_rate_limit=1)
    vuid = chain.register(make_wallet("val"), stake=1000)
    common = ["--subtensor.network", "sandbox", "--sandbox.path", sandbox, "--netuid", "1",
              "--wallet.path", str(wallet_path)]
    miners, procs = {}, []
    honest = None
    try:
        for name in ("honest", "free_rider", "echo"):
            w = make_wallet(name)
            uid = chain.register(w)
            port = free_port()
            mine = [*common, "--wallet.name", name, "--wallet.hotkey", "default", "--axon.port", str(port)]
            if name == "honest":
                cmd = ["-m", "sn1.cli", "miner", "--backend", "llamacpp", "--neuron.n_threads", "1", *mine]
                honest = f"127.0.0.1:{port} {w.hotkey.ss58_address}"
            elif name == "free_rider":
                cmd = [str(ROOT / "benchmarks" / "incentive.py"), "miner", "free_rider", *mine]
            else:
                cmd = ["-m", "sn1.cli", "miner", "--backend", "echo", *mine]
            log = open(tmp_path / f"{name}.log", "w")
            procs.append(subprocess.Popen([sys.executable, *cmd], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                          env={**os.environ, "FREE_RIDER_TARGET": honest or "",
                                               "PYTHONUNBUFFERED": "1"}))
            miners[uid] = name
            wait_for_port(port, timeout=120, proc=procs[-1])
        from sn1.testing import wait_for_endpoints

        wait_for_endpoints(chain, miners, 30)
        yield chain, vuid, miners, common
    finally:
        stop_processes(procs)


def _validate(common, full, steps: int) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "sn1.cli", "validator", *common, "--wallet.name", "val",
         "--wallet.hotkey", "default", "--llm.engine", "scripted", "--neuron.axon_off", "--wandb.off",
         "--neuron.tasks", "inference", "--neuron.task_p", "1", "--neuron.timeout", "60",
         "--neuron.inference_max_tokens", "16", "--neuron.inference_threads", "1",
         "--neuron.epoch_length", "1", "--neuron.full_path", str(full), "--neuron.max_steps", str(steps)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_seed_per_uid_free_rider_unpaid_proofs_kept_across_restart(net, tmp_path):
    chain, vuid, miners, common = net
    by_name = {name: uid for uid, name in miners.items()}
    full = tmp_path / "v"
    _validate(common, full, 2)
    events = read_events(str(full / "events.jsonl"))
    assert [e["step"] for e in events] == [1, 2]
    for e in events:
        assert len(e["seeds"]) == len(e["uids"]) == 3 and len(set(e["seeds"])) == 3   # recorded, distinct
        i = {miners[u]: k for k, u in enumerate(e["uids"])}
        assert e["verify_ok"][i["honest"]], e["verify_reason"][i["honest"]]
        assert not e["verify_ok"][i["free_rider"]] and e["rewards"][i["free_rider"]] == 0
        assert not e["verify_ok"][i["echo"]]
    # The honest miner refused the relay: it is no validator (no stake).
    assert "refused by the honest miner: 403" in (tmp_path / "free_rider.log").read_text()
    w = chain.weights()[vuid]
    assert w.get(by_name["honest"], 0) > 0.99
    assert w.get(by_name["free_rider"], 0.0) < 1e-3 and w.get(by_name["echo"], 0.0) < 1e-3
    st = state_mod.load(str(full))
    hk = chain.metagraph().hotkeys
    assert [ok for _, ok in st.proofs[hk[by_name["honest"]]]] == [1, 1]
    assert [ok for _, ok in st.proofs[hk[by_name["free_rider"]]]] == [0, 0]
    # A restart keeps the proofs and adds to them.
    _validate(common, full, 1)
    st = state_mod.load(str(full))
    assert st.step == 3
    assert [s for s, _ in st.proofs[hk[by_name["honest"]]]] == [0, 1, 2]
