"""The inference task end to end: a sandbox subnet of real miner processes and a real validator.

The demo's two honest llama.cpp miners (same flags as sn1/demo.py: operator
temperatures and a max_tokens cap) pass verification on every inference step;
echo and phrase (no logprobs: refused with a 4xx) and the cheating miner score 0.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from sn1.chain.sandbox import SandboxChain
from sn1.demo import MINERS
from sn1.testing import ROOT, free_port, stop_processes, wait_for_port
from sn1.validator.events import read_events

DEMO_LLAMA = [(name, extra) for name, kind, extra in MINERS if "llamacpp" in extra]
OTHERS = [("echo", ["--backend", "echo"]), ("phrase", ["--backend", "phrase"]),
          ("cheat", ["--backend", "cheat", "--neuron.cheat", "other_prompt"]),
          ("cheat-trunc", ["--backend", "cheat", "--neuron.cheat", "truncate"])]


@pytest.fixture
def net(tmp_path, make_wallet, wallet_path):
    sandbox = str(tmp_path / "sandbox")
    chain = SandboxChain.init(sandbox, 1, tempo=20, block_time=0.05, weights_rate_limit=1)
    vuid = chain.register(make_wallet("val"), stake=1000)
    common = ["--subtensor.network", "sandbox", "--sandbox.path", sandbox, "--netuid", "1",
              "--wallet.path", str(wallet_path)]
    miners, procs = {}, []
    try:
        for name, args in DEMO_LLAMA + OTHERS:
            uid = chain.register(make_wallet(name))
            port = free_port()
            extra = ["--neuron.n_threads", "1"] if "llamacpp" in args or "cheat" in args else []
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "sn1.cli", "miner", *args, *extra, *common, "--wallet.name", name,
                 "--wallet.hotkey", "default", "--axon.port", str(port)],
                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            miners[uid] = name
            wait_for_port(port, timeout=120, proc=procs[-1])
        from sn1.testing import wait_for_endpoints

        wait_for_endpoints(chain, miners, 30)
        yield chain, vuid, miners, common
    finally:
        stop_processes(procs)


def test_honest_miners_verified_cheats_score_zero(net, tmp_path):
    chain, vuid, miners, common = net
    full = tmp_path / "v"
    proc = subprocess.run(
        [sys.executable, "-m", "sn1.cli", "validator", *common, "--wallet.name", "val",
         "--wallet.hotkey", "default", "--llm.engine", "scripted", "--neuron.axon_off", "--wandb.off",
         "--neuron.tasks", "inference", "--neuron.task_p", "1", "--neuron.timeout", "60",
         "--neuron.inference_max_tokens", "32", "--neuron.inference_threads", "1",
         "--neuron.full_path", str(full), "--neuron.max_steps", "3", "--neuron.seed", "4"],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # The default engine: rows from transformers, the end check on llama.cpp's one-token passes.
    assert "inference verification model ready (transformers rows)" in proc.stdout + proc.stderr
    events = read_events(str(full / "events.jsonl"))
    assert [e["step"] for e in events] == [1, 2, 3]
    for e in events:
        assert e["task"] == "inference"
        by_name = {miners[u]: i for i, u in enumerate(e["uids"])}
        for name, _ in DEMO_LLAMA:
            i = by_name[name]
            assert e["verify_ok"][i], (name, e["verify_reason"][i], e["status_messages"][i])
            assert 0.5 <= e["rewards"][i] <= 1.0
        assert 0.75 <= max(e["rewards"]) <= 1.0    # the fastest at one of ttft / rate gets >= 0.75
        for name in ("echo", "phrase"):
            i = by_name[name]
            assert e["rewards"][i] == 0 and not e["verify_ok"][i]
            assert e["status_codes"][i] == 400 and "cannot report token logprobs" in e["status_messages"][i]
        for name in ("cheat", "cheat-trunc"):
            i = by_name[name]
            assert e["status"][i] == "ok"
            assert e["rewards"][i] == 0 and not e["verify_ok"][i], (name, e["completions"][i])
        assert e["verify_rule"][by_name["cheat-trunc"]] == "end"
        print(e["extra"]["request"]["temperature"], list(zip([miners[u] for u in e["uids"]], e["rewards"],
                                                             e["verify_rule"], e["verify_reason"])))
