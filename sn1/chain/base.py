"""The chain as neurons see it: one interface, two implementations.

``SandboxChain`` (sn1.chain.sandbox) keeps a local subnet in SQLite so real
processes can register, serve and set weights on one machine;
``BittensorChain`` (sn1.chain.bittensor) talks to finney / test / local
through the ``bittensor`` SDK. Neurons only use what is defined here.

All methods are blocking; async code calls them through ``asyncio.to_thread``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Protocol, Sequence, runtime_checkable


class ChainError(Exception):
    """The chain refused or failed an operation (retryable or not)."""


class ChainUnreachable(ChainError):
    """No node of the network answered (DNS, refused, timed out); the message names the
    network and its endpoint."""


class RateLimited(ChainError):
    """The chain refused weights because this hotkey set them less than ``weights_rate_limit``
    blocks ago: not a failure, a time to wait. ``next_block``: the first block allowed (or None
    if the chain did not say)."""

    def __init__(self, message: str, next_block: int | None = None):
        super().__init__(message)
        self.next_block = next_block


@dataclass(frozen=True)
class Hyperparams:
    tempo: int = 360                    # blocks between consensus epochs
    max_uids: int = 256
    min_allowed_weights: int = 1
    max_weight_limit: float = 1.0       # max share one uid may get (0..1)
    weights_rate_limit: int = 100       # blocks between two set_weights by one hotkey
    immunity_period: int = 5000         # blocks a new registration cannot be pruned
    max_validators: int = 64            # top-K by stake hold a validator permit


@dataclass(frozen=True)
class Neuron:
    uid: int
    hotkey: str
    coldkey: str
    stake: float = 0.0
    validator_permit: bool = False
    endpoint: str | None = None         # "ip:port" served on chain, None if not serving
    last_update: int = 0
    block_at_registration: int = 0
    rank: float = 0.0
    trust: float = 0.0
    consensus: float = 0.0
    incentive: float = 0.0
    dividends: float = 0.0
    emission: float = 0.0

    # The documented keys of `sn1 sandbox metagraph --json`.
    JSON_KEYS = ("uid", "hotkey", "coldkey", "stake", "validator_permit", "endpoint",
                 "last_update", "rank", "trust", "consensus", "incentive", "dividends",
                 "emission")

    def to_json(self) -> dict:
        d = asdict(self)
        return {k: d[k] for k in self.JSON_KEYS}


@dataclass(frozen=True)
class Metagraph:
    netuid: int
    block: int
    neurons: tuple[Neuron, ...] = field(default_factory=tuple)

    @property
    def n(self) -> int:
        return len(self.neurons)

    @property
    def hotkeys(self) -> list[str]:
        return [n.hotkey for n in self.neurons]

    def uid_of(self, hotkey: str) -> int | None:
        for n in self.neurons:
            if n.hotkey == hotkey:
                return n.uid
        return None

    def by_hotkey(self, hotkey: str) -> Neuron | None:
        uid = self.uid_of(hotkey)
        return None if uid is None else self.neurons[uid]


@runtime_checkable
class Chain(Protocol):
    network: str
    netuid: int

    def block(self) -> int: ...

    def hyperparams(self) -> Hyperparams: ...

    def metagraph(self) -> Metagraph:
        """Snapshot ordered by uid (neurons[i].uid == i)."""
        ...

    def register(self, wallet, stake: float = 0.0) -> int:
        """Register the wallet's hotkey; returns its uid (the existing one if already registered)."""
        ...

    def serve(self, wallet, ip: str, port: int) -> None:
        """Publish the hotkey's endpoint. Raises ChainError if not registered."""
        ...

    def set_weights(self, wallet, uids: Sequence[int], weights: Sequence[float],
                    version_key: int = 0) -> None:
        """Write weights (any non-negative reals; normalised and conformed to limits).

        Raises ChainError on refusal (unknown uid, rate limit, not registered...).
        """
        ...
