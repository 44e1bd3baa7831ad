"""Chain layer: sandbox (local, SQLite) or Bittensor (finney / test / local)."""

from __future__ import annotations

from .base import Chain, ChainError, Hyperparams, Metagraph, Neuron

__all__ = ["Chain", "ChainError", "Hyperparams", "Metagraph", "Neuron", "connect", "load_wallet"]


def connect(config) -> Chain:
    """The chain named by ``--subtensor.network`` (``sandbox`` or a Bittensor network)."""
    from ..config import expand, get

    network = get(config, "subtensor.network", "finney")
    netuid = get(config, "netuid", 1)
    if network == "sandbox":
        from .sandbox import SandboxChain

        return SandboxChain(expand(get(config, "sandbox.path")), netuid)
    from .bittensor import BittensorChain

    return BittensorChain(network, netuid, endpoint=get(config, "subtensor.chain_endpoint"))


def load_wallet(config, *, need_hotkey: bool = True):
    """The ``--wallet.*`` wallet; a UsageError naming it when its keys are missing."""
    import os

    import bittensor as bt

    from ..config import expand, get
    from ..errors import UsageError

    path = expand(get(config, "wallet.path", "~/.bittensor/wallets"))
    name, hotkey = get(config, "wallet.name", "default"), get(config, "wallet.hotkey", "default")
    wallet = bt.Wallet(name=name, hotkey=hotkey, path=path)
    cold = os.path.join(path, name, "coldkeypub.txt")
    hot = os.path.join(path, name, "hotkeys", hotkey)
    if not os.path.exists(cold):
        raise UsageError(f"unknown wallet {name!r}: no {cold} (create it with `btcli wallet create`)")
    if need_hotkey and not os.path.exists(hot):
        raise UsageError(f"unknown hotkey {hotkey!r} of wallet {name!r}: no {hot}")
    return wallet
