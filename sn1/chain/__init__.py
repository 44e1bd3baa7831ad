"""Chain layer: sandbox (local, SQLite) or Bittensor (finney / test / local)."""

from __future__ import annotations

from .base import Chain, ChainError, Hyperparams, Metagraph, Neuron

from .base import ChainUnreachable, RateLimited

__all__ = ["Chain", "ChainError", "ChainUnreachable", "Hyperparams", "Metagraph", "Neuron", "RateLimited",
           "connect", "load_wallet", "register_hint"]


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
    where = _btcli_wallet(name, hotkey, path)
    if not os.path.exists(cold):
        raise UsageError(f"unknown wallet {name!r}: no {cold}; create it with "
                         f"`btcli wallet create {where}`")
    if need_hotkey and not os.path.exists(hot):
        raise UsageError(f"unknown hotkey {hotkey!r} of wallet {name!r}: no {hot}; create it with "
                         f"`btcli wallet new-hotkey {where}`")
    return wallet


def _btcli_wallet(name: str, hotkey: str, path: str) -> str:
    """btcli 11's wallet options for our --wallet.* flags (the path only when not btcli's default)."""
    import shlex

    from ..config import DEFAULT_WALLET_PATH, expand

    args = f"--wallet {shlex.quote(name)} --wallet-hotkey {shlex.quote(hotkey)}"
    if expand(path) != expand(DEFAULT_WALLET_PATH):
        args += f" --wallet-path {shlex.quote(expand(path))}"
    return args


def register_hint(config) -> str:
    """The command that registers the ``--wallet.*`` hotkey on the ``--subtensor.network`` subnet."""
    import shlex

    from ..config import DEFAULT_NETUID, DEFAULT_SANDBOX_PATH, DEFAULT_WALLET_PATH, expand, get

    network, netuid = get(config, "subtensor.network", "finney"), get(config, "netuid", DEFAULT_NETUID)
    name, hotkey = get(config, "wallet.name", "default"), get(config, "wallet.hotkey", "default")
    wallet_path = get(config, "wallet.path", DEFAULT_WALLET_PATH)
    if network == "sandbox":
        cmd = f"sn1 sandbox register --wallet.name {shlex.quote(name)} --wallet.hotkey {shlex.quote(hotkey)}"
        if expand(wallet_path) != expand(DEFAULT_WALLET_PATH):
            cmd += f" --wallet.path {shlex.quote(expand(wallet_path))}"
        sandbox = get(config, "sandbox.path", DEFAULT_SANDBOX_PATH)
        if expand(sandbox) != expand(DEFAULT_SANDBOX_PATH):
            cmd += f" --sandbox.path {shlex.quote(expand(sandbox))}"
        if netuid != DEFAULT_NETUID:
            cmd += f" --netuid {netuid}"
        return f"`{cmd}`"
    return (f"`btcli subnets register --netuid {netuid} --network {shlex.quote(network)} "
            f"{_btcli_wallet(name, hotkey, wallet_path)}` (this costs TAO)")
