"""A sandbox subnet with real test-miner processes, for validator tests."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field

import pytest

from sn1.chain.sandbox import SandboxChain
from sn1.testing import ROOT, free_port, stop_processes, wait_for_port


@dataclass
class Subnet:
    chain: SandboxChain
    sandbox: str
    wallets: str
    validator_uid: int
    miners: dict = field(default_factory=dict)     # uid -> kind
    procs: list = field(default_factory=list)

    def common(self) -> list[str]:
        return ["--subtensor.network", "sandbox", "--sandbox.path", self.sandbox, "--netuid", "1",
                "--wallet.path", self.wallets]

    def validator_cmd(self, *extra: str) -> list[str]:
        return [sys.executable, "-m", "sn1.cli", "validator", *self.common(),
                "--wallet.name", "val", "--wallet.hotkey", "default", "--llm.engine", "scripted",
                "--neuron.axon_off", "--neuron.timeout", "5", "--neuron.tasks", "qa", "math",
                "--neuron.task_p", "0.5", "0.5", *extra]


@pytest.fixture
def subnet(request, tmp_path, make_wallet, wallet_path):
    """Parametrize indirectly with a dict of sandbox hyperparameters to change them."""
    sandbox = str(tmp_path / "sandbox")
    params = {"weights_rate_limit": 1, **getattr(request, "param", {})}
    chain = SandboxChain.init(sandbox, 1, tempo=20, block_time=0.05, **params)
    vuid = chain.register(make_wallet("val"), stake=1000)
    net = Subnet(chain=chain, sandbox=sandbox, wallets=str(wallet_path), validator_uid=vuid)
    for name, args in (("echo", ["--backend", "echo"]),
                       ("phrase", ["--backend", "phrase", "--neuron.phrase", "Always this phrase."])):
        uid = chain.register(make_wallet(name))
        port = free_port()
        proc = subprocess.Popen(
            [sys.executable, "-m", "sn1.cli", "miner", *args, *net.common(), "--wallet.name", name,
             "--wallet.hotkey", "default", "--axon.port", str(port)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        net.procs.append(proc)
        net.miners[uid] = name
        wait_for_port(port, proc=proc)
    # Miners publish their endpoint right after they listen.
    import time
    from sn1.testing import wait_for_endpoints

    wait_for_endpoints(chain, net.miners, 30)
    yield net
    stop_processes(net.procs)
