"""A sandbox subnet with callers of different stakes and real miner processes on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sn1.testing import ROOT, free_port, make_wallet, stop_processes, wait_for_port


@dataclass
class Miner:
    name: str
    port: int
    hotkey: str
    uid: int
    log: Path
    proc: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_log(self, needle: str, count: int = 1, timeout: float = 5.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log_text()
            if text.count(needle) >= count:
                return text
            time.sleep(0.05)
        raise AssertionError(f"{needle!r} x{count} not in {self.name}'s log:\n{self.log_text()[-3000:]}")


@dataclass
class Net:
    root: Path
    chain: object
    wallets: dict
    miners: dict = field(default_factory=dict)

    @property
    def wallet_path(self) -> Path:
        return self.root / "wallets"

    def args(self) -> list[str]:
        return ["--subtensor.network", "sandbox", "--sandbox.path", str(self.root / "sandbox"),
                "--netuid", "1", "--wallet.path", str(self.wallet_path)]

    def neuron(self, name: str):
        return self.chain.metagraph().by_hotkey(self.miners[name].hotkey)


# name -> (backend, extra flags)
MINERS = {
    # Batches by size only (a long interval), so chunk sizes are exact even on a loaded machine.
    "echo": ("echo", ["--neuron.streaming_batch_size", "3", "--neuron.streaming_interval", "30",
                      "--neuron.max_request_bytes", "4096"]),
    "mock": ("mock", ["--neuron.mock_delay", "0.02", "--neuron.max_concurrent", "1",
                      "--neuron.max_queue", "3"]),
    "open": ("phrase", ["--neuron.phrase", "Open to everyone.", "--blacklist.allow_non_registered"]),
    "permit": ("echo", ["--blacklist.force_validator_permit"]),
    # Only the slow-client tests talk to it: they hold its few connections open.
    "guard": ("phrase", ["--neuron.phrase", "Still serving.", "--neuron.body_timeout", "2",
                         "--neuron.max_connections", "3", "--neuron.reserved_connections", "0"]),
}


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    from sn1.chain.sandbox import SandboxChain

    root = tmp_path_factory.mktemp("protocol")
    # Permits go to the top K stakes (every uid while the subnet has <= K): only the three
    # staked callers hold one, so "nopermit" really has none.
    chain = SandboxChain.init(root / "sandbox", 1, tempo=1000, block_time=0.05, max_validators=3)
    wp = root / "wallets"
    wallets = {}
    for name, stake in (("high", 1000.0), ("mid", 100.0), ("low", 10.0), ("nopermit", 0.0)):
        wallets[name] = make_wallet(wp, name)
        chain.register(wallets[name], stake=stake)
    wallets["stranger"] = make_wallet(wp, "stranger")          # never registered
    n = Net(root=root, chain=chain, wallets=wallets)
    started = []
    try:
        for name, (backend, extra) in MINERS.items():
            w = make_wallet(wp, "miner-" + name)
            uid = chain.register(w)
            port = free_port()
            log = root / f"miner-{name}.log"
            proc = subprocess.Popen(
                [sys.executable, "-m", "sn1.cli", "miner", "--backend", backend, *n.args(),
                 "--wallet.name", "miner-" + name, "--axon.ip", "127.0.0.1", "--axon.port", str(port),
                 "--neuron.metagraph_refresh", "1", *extra],
                stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})
            started.append(proc)
            n.miners[name] = Miner(name, port, w.hotkey.ss58_address, uid, log, proc)
        for m in n.miners.values():
            wait_for_port(m.port, timeout=60, proc=m.proc)
        yield n
    finally:
        stop_processes(started)
