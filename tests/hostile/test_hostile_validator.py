"""A real validator process whose subnet holds miners sending lone surrogates, invalid UTF-8 and
control characters: every step is scored and logged, honest miners are scored normally."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time

import pytest

from sn1.chain.sandbox import SandboxChain
from sn1.testing import ROOT, free_port, make_wallet, stop_processes, wait_for_port
from sn1.validator.events import read_events

from .conftest import start_hostile

pytestmark = pytest.mark.slow

HOSTILE_MODES = ["surrogate", "invalid_utf8", "controls", "miner_error", "json_bomb"]


def test_validator_scores_everyone_while_miners_send_invalid_text(tmp_path):
    sandbox, wallets = str(tmp_path / "sandbox"), tmp_path / "wallets"
    chain = SandboxChain.init(sandbox, 1, tempo=20, block_time=0.05, weights_rate_limit=1)
    chain.register(make_wallet(wallets, "val"), stake=1000)
    common = ["--subtensor.network", "sandbox", "--sandbox.path", sandbox, "--netuid", "1",
              "--wallet.path", str(wallets)]
    procs, kinds = [], {}
    try:
        for name, args in (("echo", ["--backend", "echo"]),
                           ("phrase", ["--backend", "phrase", "--neuron.phrase", "Always this phrase."])):
            uid = chain.register(make_wallet(wallets, name))
            port = free_port()
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "sn1.cli", "miner", *args, *common, "--wallet.name", name,
                 "--axon.port", str(port)], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            kinds[uid] = name
            wait_for_port(port, proc=procs[-1])
        hostile, ports = start_hostile(HOSTILE_MODES)
        procs.append(hostile)
        for mode, port in zip(HOSTILE_MODES, ports):
            w = make_wallet(wallets, "hostile-" + mode)
            uid = chain.register(w)
            chain.serve(w, "127.0.0.1", port)
            kinds[uid] = mode
        from sn1.testing import wait_for_endpoints

        wait_for_endpoints(chain, kinds, 30)

        full = tmp_path / "v"
        proc = subprocess.run(
            [sys.executable, "-m", "sn1.cli", "validator", *common, "--wallet.name", "val",
             "--wallet.hotkey", "default", "--llm.engine", "scripted", "--neuron.axon_off",
             "--neuron.timeout", "5", "--neuron.tasks", "qa", "math", "--neuron.task_p", "0.5", "0.5",
             "--neuron.full_path", str(full), "--neuron.max_steps", "2", "--neuron.seed", "5",
             "--neuron.epoch_length", "1"],
            cwd=ROOT, capture_output=True, text=True, timeout=300,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "WANDB_MODE": "disabled"})
    finally:
        stop_processes(procs)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "UnicodeEncodeError" not in proc.stdout + proc.stderr

    events = read_events(str(full / "events.jsonl"))
    assert [e["step"] for e in events] == [1, 2]
    for e in events:
        assert sorted(e["uids"]) == sorted(kinds)
        by_kind = {kinds[u]: i for i, u in enumerate(e["uids"])}
        status = {k: e["status"][i] for k, i in by_kind.items()}
        text = {k: e["completions"][i] for k, i in by_kind.items()}
        assert status["echo"] == status["phrase"] == "ok"
        assert text["echo"] == e["challenge"] and text["phrase"] == "Always this phrase."
        assert status["surrogate"] == status["invalid_utf8"] == status["controls"] == "ok"
        assert "\ufffd" in text["surrogate"] and "\ufffd" in text["invalid_utf8"]
        assert "\x1b" not in text["controls"] and "\x00" not in text["controls"]
        assert status["miner_error"] == "miner_error" and status["json_bomb"] == "protocol_error"
        rewards = e["rewards"]
        assert len(rewards) == len(kinds) and all(r is not None and math.isfinite(r) for r in rewards)
        assert rewards[by_kind["phrase"]] >= 0 and rewards[by_kind["echo"]] >= 0
    # Every miner was scored into the moving average; honest ones from both steps.
    from sn1.validator import state as state_mod
    st = state_mod.load(str(full))
    assert st.step == 2
