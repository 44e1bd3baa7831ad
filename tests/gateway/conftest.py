"""A sandbox subnet with real miner processes and real gateway processes in front of them.

Miners: echo, a phrase miner that refuses the gateway (it serves validator-permit
holders only and the gateway's hotkey holds none), two slow mock miners, a
registered miner whose endpoint has nothing listening ("dead"), and the
embedded llama.cpp miner, and three stand-ins for misbehaving miners
(bad_miner.py: lone surrogates in the text, garbage, silence). Gateways are
started per test module with
``--gateway.uids`` naming which miners they route to.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from sn1.testing import ROOT, free_port, make_wallet, run_sn1, stop_processes, wait_for_port


@dataclass
class Proc:
    name: str
    port: int
    proc: subprocess.Popen
    log: Path
    uid: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_log(self, needle: str, timeout: float = 10.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in (text := self.log_text()):
                return text
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} not in {self.name}'s log:\n{self.log_text()[-3000:]}")

    def health(self) -> dict:
        return httpx.get(self.url + "/health", timeout=5).json()


@dataclass
class Gateway(Proc):
    path: Path = None

    def key(self, name: str, *extra) -> str:
        out = run_sn1("gateway", "keys", "create", "--name", name, "--gateway.path", self.path, *extra, check=True)
        return out.stdout.strip().splitlines()[-1]

    def client(self, key: str, **kw):
        import openai

        return openai.OpenAI(base_url=self.url + "/v1", api_key=key, max_retries=0, timeout=30, **kw)

    def metric(self, name: str, **labels) -> float:
        """The value of one sample of /metrics (0 when absent)."""
        from prometheus_client.parser import text_string_to_metric_families

        total = 0.0
        for fam in text_string_to_metric_families(httpx.get(self.url + "/metrics", timeout=5).text):
            for s in fam.samples:
                if s.name == name and all(s.labels.get(k) == str(v) for k, v in labels.items()):
                    total += s.value
        return total


@dataclass
class Subnet:
    root: Path
    chain: object
    wallets: Path
    miners: dict = field(default_factory=dict)
    procs: list = field(default_factory=list)

    def common(self) -> list[str]:
        return ["--subtensor.network", "sandbox", "--sandbox.path", str(self.root / "sandbox"), "--netuid", "1",
                "--wallet.path", str(self.wallets)]

    def _start(self, name: str, args: list[str]) -> tuple[subprocess.Popen, Path]:
        log = self.root / f"{name}.log"
        proc = subprocess.Popen([sys.executable, "-m", "sn1.cli", *args], stdout=open(log, "w"),
                                stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.procs.append(proc)
        return proc, log

    def start_gateway(self, name: str, miners: list[str], *extra: str) -> Gateway:
        port = free_port()
        path = self.root / f"gw-{name}"
        uids = [str(self.miners[m].uid) for m in miners]
        proc, log = self._start(f"gateway-{name}", [
            "gateway", *self.common(), "--wallet.name", "operator", "--gateway.ip", "127.0.0.1",
            "--gateway.port", str(port), "--gateway.path", str(path), "--gateway.uids", *uids, *extra])
        gw = Gateway(name, port, proc, log, path=path)
        wait_for_port(port, timeout=60, proc=proc)
        return gw


MINERS = {
    "echo": ["--backend", "echo", "--neuron.streaming_batch_size", "2"],
    "refuser": ["--backend", "phrase", "--neuron.phrase", "Only validators hear this.",
                "--blacklist.force_validator_permit"],
    "mock": ["--backend", "mock", "--neuron.mock_delay", "0.1"],
    "mock2": ["--backend", "mock", "--neuron.mock_delay", "0.1"],
    "llm": ["--backend", "llamacpp", "--neuron.max_tokens", "24", "--neuron.temperature", "0"],
}


@pytest.fixture(scope="package")
def subnet(tmp_path_factory):
    from sn1.chain.sandbox import SandboxChain

    root = tmp_path_factory.mktemp("gateway")
    wallets = root / "wallets"
    # One validator permit, held by "val": the gateway's operator hotkey holds none.
    chain = SandboxChain.init(root / "sandbox", 1, tempo=1000, block_time=0.05, max_validators=1)
    chain.register(make_wallet(wallets, "val"), stake=1000.0)
    chain.register(make_wallet(wallets, "operator"), stake=0.0)
    net = Subnet(root, chain, wallets)
    try:
        for name, args in MINERS.items():
            w = make_wallet(wallets, "miner-" + name)
            uid = chain.register(w)
            port = free_port()
            proc, log = net._start(f"miner-{name}", ["miner", *args, *net.common(), "--wallet.name", "miner-" + name,
                                                     "--axon.ip", "127.0.0.1", "--axon.port", str(port)])
            net.miners[name] = Proc(name, port, proc, log, uid)
        for mode in ("surrogate", "garbage", "silent"):      # stand-ins for misbehaving miners
            w = make_wallet(wallets, "miner-" + mode)
            uid = chain.register(w)
            port = free_port()
            log_path = root / f"miner-{mode}.log"
            proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("bad_miner.py")), mode, str(port)],
                                    stdout=open(log_path, "w"), stderr=subprocess.STDOUT)
            net.procs.append(proc)
            chain.serve(w, "127.0.0.1", port)
            net.miners[mode] = Proc(mode, port, proc, log_path, uid)
        dead = make_wallet(wallets, "miner-dead")
        uid = chain.register(dead)
        chain.serve(dead, "127.0.0.1", free_port())      # published, but nothing listens there
        net.miners["dead"] = Proc("dead", 0, None, root / "none", uid)
        for m in net.miners.values():
            if m.proc is not None:
                wait_for_port(m.port, timeout=90, proc=m.proc)
        deadline = time.monotonic() + 30
        while not all(chain.metagraph().neurons[m.uid].endpoint for m in net.miners.values()):
            assert time.monotonic() < deadline, "miners never published their endpoints"
            time.sleep(0.1)
        yield net
    finally:
        stop_processes(net.procs)
