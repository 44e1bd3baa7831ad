from __future__ import annotations

import threading
import time

import pytest

from sn1.llm.base import GenParams


class Recorder:
    """Wraps a real engine and records every piece it produced, and whether cancel was already set."""

    def __init__(self, inner):
        self.inner = inner
        self.name = getattr(inner, "name", "engine")
        self.produced: list[tuple[float, str, bool]] = []   # (time, piece, cancel already set)
        self.cancelled_at: float | None = None
        self.finished = threading.Event()
        self.messages: list[list[dict]] = []                 # what the engine was asked

    def stream(self, messages, params, cancel=None):
        self.messages.append(messages)
        cancel = cancel or threading.Event()
        try:
            for piece in self.inner.stream(messages, params, cancel):
                if cancel.is_set() and self.cancelled_at is None:
                    self.cancelled_at = time.monotonic()
                self.produced.append((time.monotonic(), piece, cancel.is_set()))
                yield piece
        finally:
            self.finished.set()

    def chat(self, messages, params):
        return "".join(self.stream(messages, params))

    def after_cancel(self) -> int:
        return sum(1 for _, _, after in self.produced if after)


@pytest.fixture(scope="session")
def llama_engine():
    from sn1.llm.llamacpp import LlamaCppEngine

    return LlamaCppEngine()


@pytest.fixture
def story():
    return [{"role": "user", "content": "Tell me a long story about a dragon who learns to bake bread."}]


@pytest.fixture
def greedy():
    return GenParams(max_tokens=12, temperature=0.0)


class Subnet:
    """A sandbox subnet with a staked validator wallet; starts real miner processes on 127.0.0.1."""

    def __init__(self, root):
        from sn1.chain.sandbox import SandboxChain
        from sn1.testing import make_wallet

        self.root = root
        self.sandbox = root / "sandbox"
        self.wallets = root / "wallets"
        self.chain = SandboxChain.init(self.sandbox, 1)
        self.validator = make_wallet(self.wallets, "validator", "default")
        self.chain.register(self.validator, stake=1000.0)
        self.procs: list = []

    def start_miner(self, name: str, args: list[str], script: str | None = None,
                    env: dict | None = None, timeout: float = 180, debug: bool = True):
        """(process, uid, port, log file) of a miner started with `sn1 miner ARGS` or `python SCRIPT ARGS`."""
        import os
        import subprocess
        import sys

        from sn1.testing import ROOT, free_port, make_wallet, wait_for_port

        wallet = make_wallet(self.wallets, name, "default")
        uid = self.chain.register(wallet, stake=0.0)
        port = free_port()
        cmd = [sys.executable, *([str(ROOT / script)] if script else ["-m", "sn1.cli", "miner"]), *args,
               "--subtensor.network", "sandbox", "--sandbox.path", str(self.sandbox), "--netuid", "1",
               "--wallet.path", str(self.wallets), "--wallet.name", name, "--wallet.hotkey", "default",
               "--axon.ip", "127.0.0.1", "--axon.port", str(port), *(["--logging.debug"] if debug else [])]
        log_path = self.root / f"{name}.log"
        logf = open(log_path, "w")
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, cwd=ROOT,
                                env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        self.procs.append((proc, logf))
        try:
            wait_for_port(port, timeout=timeout, proc=proc)
        except AssertionError as e:
            raise AssertionError(f"{e}\n{log_path.read_text()[-3000:]}") from None
        return proc, uid, port, log_path

    def neuron(self, uid: int):
        return self.chain.metagraph().neurons[uid]

    def stop(self):
        for proc, _ in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc, logf in self.procs:
            try:
                proc.wait(10)
            except Exception:  # noqa: BLE001
                proc.kill()
                proc.wait(5)
            logf.close()


@pytest.fixture(scope="module")
def subnet(tmp_path_factory):
    s = Subnet(tmp_path_factory.mktemp("subnet"))
    yield s
    s.stop()


@pytest.fixture(scope="module")
def standin():
    """The stand-in OpenAI API (tests/llm/standin_openai.py) on 127.0.0.1."""
    from .standin_openai import StandIn

    s = StandIn().start()
    yield s
    s.stop()
