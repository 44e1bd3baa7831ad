"""Hostile peers on 127.0.0.1: attacker miners (a real process), a real miner to attack, a sandbox chain."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from sn1.testing import ROOT, free_port, make_wallet, stop_processes, wait_for_port

HOSTILE = Path(__file__).with_name("hostile_miner.py")


def _load_modes() -> list[str]:
    spec = importlib.util.spec_from_file_location("hostile_miner", HOSTILE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return list(mod.MODES)


MODES = _load_modes()


def start_hostile(modes: list[str]) -> tuple[subprocess.Popen, list[int]]:
    """A hostile_miner.py process serving ``modes``; its ports in the same order."""
    proc = subprocess.Popen([sys.executable, str(HOSTILE), *modes], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, cwd=ROOT, text=True)
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise AssertionError(f"hostile_miner.py exited with {proc.wait()}")
    return proc, json.loads(line)


@pytest.fixture(scope="module")
def hostile():
    """mode -> port of one hostile miner per mode (one process)."""
    modes = MODES
    proc, ports = start_hostile(modes)
    try:
        yield dict(zip(modes, ports))
    finally:
        stop_processes([proc])


@dataclass
class Net:
    root: Path
    chain: object
    wallets: dict
    miners: dict = field(default_factory=dict)     # name -> (port, hotkey, log path)
    procs: list = field(default_factory=list)

    def args(self) -> list[str]:
        return ["--subtensor.network", "sandbox", "--sandbox.path", str(self.root / "sandbox"),
                "--netuid", "1", "--wallet.path", str(self.root / "wallets")]

    def target(self, name: str):
        return self.chain.metagraph().by_hotkey(self.miners[name][1])

    def port(self, name: str) -> int:
        return self.miners[name][0]


# name -> miner flags. "guarded": tight connection limits so the tests see them act quickly.
MINERS = {
    "echo": ["--backend", "echo"],
    "guarded": ["--backend", "phrase", "--neuron.phrase", "Served under attack.",
                "--neuron.header_timeout", "1", "--neuron.keepalive_timeout", "1",
                "--neuron.max_connections_per_ip", "16", "--neuron.max_idle_connections", "64",
                "--neuron.max_connections", "8", "--neuron.reserved_connections", "2",
                "--neuron.body_timeout", "2", "--neuron.max_request_bytes", "8192"],
    # Generous per-address cap: only the global idle cap (and deadlines) protect it.
    "crowded": ["--backend", "phrase", "--neuron.phrase", "Still here.",
                "--neuron.max_connections_per_ip", "100000", "--neuron.max_idle_connections", "256",
                "--neuron.header_timeout", "30"],
}


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    from sn1.chain.sandbox import SandboxChain

    root = tmp_path_factory.mktemp("hostile")
    chain = SandboxChain.init(root / "sandbox", 1, tempo=1000, block_time=0.05, max_validators=2)
    wp = root / "wallets"
    wallets = {}
    for name, stake in (("val", 1000.0), ("val2", 500.0)):
        wallets[name] = make_wallet(wp, name)
        chain.register(wallets[name], stake=stake)
    wallets["stranger"] = make_wallet(wp, "stranger")       # never registered
    n = Net(root=root, chain=chain, wallets=wallets)
    try:
        for name, flags in MINERS.items():
            w = make_wallet(wp, "miner-" + name)
            chain.register(w)
            port = free_port()
            log = root / f"miner-{name}.log"
            n.procs.append(subprocess.Popen(
                [sys.executable, "-m", "sn1.cli", "miner", *flags, *n.args(), "--wallet.name", "miner-" + name,
                 "--axon.ip", "127.0.0.1", "--axon.port", str(port), "--neuron.metagraph_refresh", "1"],
                stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=ROOT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"}))
            n.miners[name] = (port, w.hotkey.ss58_address, log)
        for port, _, _ in n.miners.values():
            wait_for_port(port, timeout=60)
        yield n
    finally:
        stop_processes(n.procs)
