"""Stopping a validator the way a user does (issue 20, item 4), and its first run on the README's
sandbox flow (item 5): the real `sn1 validator` process against a sandbox subnet of real miners.

A miner that accepts connections and never answers keeps a step in flight for the whole
--neuron.timeout, so the Ctrl-C always lands mid-step.
"""

import os
import select
import signal
import socket
import subprocess
import threading
import time

import pytest

from sn1.testing import ROOT, make_wallet
from sn1.validator import state as state_mod
from sn1.validator.events import read_events

TIMEOUT = "60"     # a step lasts this long: the silent miner never answers


class Lines:
    """A process's stderr, read by a thread, waited on line by line with deadlines."""

    def __init__(self, proc):
        self.proc, self.lines, self.cond = proc, [], threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stderr:
            with self.cond:
                self.lines.append(line.rstrip("\n"))
                self.cond.notify_all()
        with self.cond:
            self.lines.append(None)
            self.cond.notify_all()

    def wait_for(self, text: str, timeout: float) -> tuple[str, float]:
        """(the first line containing text, seconds waited); AssertionError with all lines if none."""
        t0 = time.monotonic()
        with self.cond:
            while True:
                for line in self.lines:
                    if line is not None and text in line:
                        return line, time.monotonic() - t0
                left = timeout - (time.monotonic() - t0)
                if left <= 0 or None in self.lines:
                    raise AssertionError(f"no line with {text!r}:\n" + "\n".join(l for l in self.lines if l))
                self.cond.wait(left)

    def text(self) -> str:
        with self.cond:
            return "\n".join(l for l in self.lines if l)


def _silent_miner(subnet):
    """A registered, serving miner whose endpoint accepts and never says a byte."""
    wallet = make_wallet(subnet.wallets, "silent")
    subnet.chain.register(wallet)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    subnet.chain.serve(wallet, "127.0.0.1", listener.getsockname()[1])
    return listener


def _start(subnet, full, *extra):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = subnet.validator_cmd("--neuron.full_path", str(full), "--neuron.timeout", TIMEOUT,
                               "--neuron.seed", "5", *extra)
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env)
    return proc, Lines(proc)


def _wait_mid_step(listener, proc):
    ready, _, _ = select.select([listener], [], [], 240)   # the validator loads, then queries
    assert ready, "the validator never queried the silent miner"
    assert proc.poll() is None


def test_ctrl_c_is_acknowledged_at_once_and_a_second_one_stops_now(subnet, tmp_path):
    listener = _silent_miner(subnet)
    full = tmp_path / "v"
    proc, err = _start(subnet, full)
    try:
        _wait_mid_step(listener, proc)
        proc.send_signal(signal.SIGINT)
        line, waited = err.wait_for("again to stop now", timeout=30)
        assert line.endswith("Ctrl-C: finishing step 1; Ctrl-C again to stop now"), line
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(timeout=30)
        stopped_in = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        listener.close()
    assert rc == 130, err.text()
    line, _ = err.wait_for("Ctrl-C again: stopped now", timeout=5)
    assert f"step 1 dropped; state of step 0 in {full}" in line, line
    # The state on disk is whole (the step in flight is not in it) and loads.
    st = state_mod.load(str(full))
    assert st is not None and st.step == 0
    assert not [p for p in os.listdir(full) if p.startswith(".tmp-")]
    assert "Traceback" not in err.text()
    print(f"ack after {waited:.2f}s, stopped {stopped_in:.2f}s after the second Ctrl-C "
          f"(load {os.getloadavg()[0]:.1f})")


def test_one_ctrl_c_finishes_the_step_and_saves_it(subnet, tmp_path):
    listener = _silent_miner(subnet)
    full = tmp_path / "v"
    proc, err = _start(subnet, full, "--neuron.timeout", "8")
    try:
        _wait_mid_step(listener, proc)
        proc.send_signal(signal.SIGINT)
        err.wait_for("Ctrl-C: finishing step 1; Ctrl-C again to stop now", timeout=30)
        rc = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        listener.close()
    assert rc == 0, err.text()
    assert "stopped after step 1" in err.text()
    assert state_mod.load(str(full)).step == 1
    assert [e["step"] for e in read_events(str(full / "events.jsonl"))] == [1]



@pytest.mark.parametrize("subnet", [{"weights_rate_limit": 2000}], indirect=True)
def test_a_rate_limited_first_run_waits_quietly(subnet, tmp_path):
    """README "Sandbox": weights set by hand just before the validator starts. The validator knows
    the chain's rate limit and waits for it: no warning, no failure, no retry promised at exit."""
    from sn1.testing import make_wallet as wallet_at

    val = wallet_at(subnet.wallets, "val")
    subnet.chain.set_weights(val, [min(subnet.miners)], [1.0])
    before = subnet.chain.weights()[subnet.validator_uid]
    full = tmp_path / "v"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("WANDB_MODE", None)          # wandb offline, as on a user's machine without a key
    env.pop("WANDB_API_KEY", None)
    proc = subprocess.run(subnet.validator_cmd("--neuron.full_path", str(full), "--neuron.max_steps", "3",
                                               "--neuron.epoch_length", "1", "--wandb.offline"),
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    assert state_mod.load(str(full)).step == 3
    # wandb says nothing of its own (it printed ~35 lines at every exit); one line of ours says
    # where the offline run is.
    out = proc.stdout + proc.stderr
    assert not [l for l in out.splitlines() if l.lstrip().startswith("wandb")], out
    runs = [l for l in proc.stderr.splitlines() if "wandb run" in l]
    assert len(runs) == 1 and " offline in " in runs[0] and "`wandb sync " in runs[0], out
    assert not [l for l in proc.stderr.splitlines() if "WARNING" in l and "weight" in l], proc.stderr
    assert "set_weights failed" not in proc.stderr and "retrying" not in proc.stderr
    lines = [l for l in proc.stderr.splitlines() if "rate limit" in l]
    assert len(lines) == 1 and "the chain's rate limit is 2000 blocks; next allowed at block" in lines[0], \
        proc.stderr
    assert subnet.chain.weights()[subnet.validator_uid] == before     # nothing was written


@pytest.mark.parametrize("subnet", [{"weights_rate_limit": 2000}], indirect=True)
def test_weights_are_set_once_the_rate_limit_allows(subnet, tmp_path):
    full = tmp_path / "v"
    proc = subprocess.run(subnet.validator_cmd("--neuron.full_path", str(full), "--neuron.max_steps", "3",
                                               "--neuron.epoch_length", "1"),
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert proc.returncode == 0, proc.stderr
    # never set before: set at once, then the rate limit is waited for (said once, not warned)
    assert proc.stderr.count("set weights at block") == 1, proc.stderr
    assert not [l for l in proc.stderr.splitlines() if "WARNING" in l and "weight" in l], proc.stderr
    assert "retrying" not in proc.stderr
    assert subnet.validator_uid in subnet.chain.weights()
