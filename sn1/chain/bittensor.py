"""The chain interface over the ``bittensor`` 11.x SDK: finney, test, local (or any ws:// endpoint).

Reads go through ``bt.SyncClient`` (``subnets.metagraph``, ``subnets.subnet_hyperparameters``,
``block``); writes are SDK intents (``ServeAxon``, ``SetWeights``) run with ``client.execute``,
which conforms weights, handles commit-reveal and reports failures. SDK errors become
``ChainError`` with the SDK's message.

Registration costs TAO on a real network, so ``register`` never buys a uid: it returns
the hotkey's uid or tells the operator to run ``btcli subnets register``.
"""

from __future__ import annotations

import logging
from typing import Sequence

from .base import ChainError, ChainUnreachable, Hyperparams, Metagraph, Neuron, RateLimited

log = logging.getLogger(__name__)


def _sdk_errors():
    import bittensor as bt

    return (bt.BittensorError, ConnectionError, OSError, TimeoutError, ValueError)


_UNREACHABLE = {"MaxRetriesExceeded", "RpcConnectionError", "ConnectionNotReady"}


def unreachable(e: BaseException) -> bool:
    """Did ``e`` come from not reaching the node at all (DNS, refused, timed out)?"""
    return isinstance(e, (OSError, TimeoutError)) or any(c.__name__ in _UNREACHABLE for c in type(e).__mro__)


def endpoint_of(network: str, endpoint: str | None) -> str:
    if endpoint:
        return endpoint
    try:
        from bittensor.settings import NETWORKS

        return NETWORKS.get(network, network)
    except ImportError:
        return network


def unreachable_message(network: str, endpoint: str | None, what: str, e: BaseException) -> str:
    """The network tried, its endpoint, and where a local run should point instead."""
    from ..errors import one_line

    return (f"cannot reach {network} ({endpoint_of(network, endpoint)}): {one_line(e, 200)}; "
            f"for a local subnet on this machine use `--subtensor.network sandbox` "
            f"(README, \"Sandbox\")")


class BittensorChain:
    """``network``: finney | test | local | ws(s)://...; ``endpoint`` overrides the network's URL.

    ``client`` (for tests): an object shaped like ``bittensor.SyncClient``.
    """

    def __init__(self, network: str, netuid: int, endpoint: str | None = None, *, client=None):
        self.network = network
        self.netuid = int(netuid)
        self.endpoint = endpoint
        self._client = client

    @property
    def client(self):
        if self._client is None:
            import bittensor as bt

            try:
                self._client = bt.SyncClient(self.endpoint or self.network)
            except ValueError as e:          # unknown network name
                from ..errors import UsageError

                raise UsageError(f"--subtensor.network: {e}") from None
        return self._client

    def _call(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ChainError:
            raise
        except _sdk_errors() as e:
            if getattr(getattr(e, "code", None), "name", None) == "RATE_LIMITED":
                raise RateLimited(f"{what} on {self.network} netuid {self.netuid}: {e}") from e
            if unreachable(e):
                raise ChainUnreachable(unreachable_message(self.network, self.endpoint, what, e)) from e
            raise ChainError(f"{what} on {self.network} netuid {self.netuid} failed: {e}") from e

    # ---- reads ---------------------------------------------------------------------------

    def block(self) -> int:
        return int(self._call("reading the block", lambda: self.client.block))

    def hyperparams(self) -> Hyperparams:
        from bittensor import hyperparams as hp_units
        from bittensor import storage

        raw = self._call("reading hyperparameters", self.client.subnets.subnet_hyperparameters, self.netuid)
        if raw is None:
            raise ChainError(f"subnet {self.netuid} does not exist on {self.network}")
        max_uids = raw.get("max_allowed_uids")
        if max_uids is None:   # not listed by the hyperparameters read; it is its own storage item
            max_uids = self._call("reading max_allowed_uids", self.client.query,
                                  storage.SubtensorModule.MaxAllowedUids, [self.netuid])
        limit = hp_units.normalized("max_weights_limit", int(raw["max_weights_limit"]))
        return Hyperparams(
            tempo=int(raw["tempo"]),
            max_uids=int(max_uids),
            min_allowed_weights=int(raw["min_allowed_weights"]),
            max_weight_limit=float(limit),
            weights_rate_limit=int(raw["weights_rate_limit"]),
            immunity_period=int(raw["immunity_period"]),
            max_validators=int(raw["max_validators"]),
        )

    def metagraph(self) -> Metagraph:
        mg = self._call("reading the metagraph", self.client.subnets.metagraph, self.netuid, commitments=False)
        if mg is None:
            raise ChainError(f"subnet {self.netuid} does not exist on {self.network}")
        return from_sdk_metagraph(mg)

    def _uid(self, hotkey: str) -> int | None:
        uid = self._call("looking up the uid", self.client.neurons.uid, hotkey, self.netuid)
        return None if uid is None else int(uid)

    # ---- writes --------------------------------------------------------------------------

    def register(self, wallet, stake: float = 0.0) -> int:
        hotkey = wallet.hotkey.ss58_address
        uid = self._uid(hotkey)
        if uid is None:
            raise ChainError(
                f"hotkey {hotkey} is not registered on netuid {self.netuid} of {self.network}: register it with "
                f"`btcli subnets register --netuid {self.netuid} --network {self.network} "
                f"--wallet {wallet.name} --wallet-hotkey {wallet.hotkey_str}` (this costs TAO)")
        if stake:
            log.info("stake is managed with `btcli stake add` on %s; ignoring stake=%s", self.network, stake)
        return uid

    def serve(self, wallet, ip: str, port: int) -> None:
        from bittensor.intents import ServeAxon

        intent = ServeAxon(netuid=self.netuid, ip=str(ip), port=int(port))
        result = self._call(f"serving {ip}:{port}", self.client.execute, intent, wallet)
        self._call(f"serving {ip}:{port}", result.raise_for_failure)

    def set_weights(self, wallet, uids: Sequence[int], weights: Sequence[float], version_key: int = 0) -> None:
        from bittensor.intents import SetWeights

        uids, weights = [int(u) for u in uids], [float(w) for w in weights]
        if len(uids) != len(weights):
            raise ChainError(f"weights: {len(uids)} uids but {len(weights)} weights")
        intent = SetWeights(netuid=self.netuid, uids=uids, weights=weights, version_key=int(version_key))
        result = self._call("setting weights", self.client.execute, intent, wallet, retries=2)
        self._call("setting weights", result.raise_for_failure)


def from_sdk_metagraph(mg) -> Metagraph:
    """``bittensor.Metagraph`` (SDK 11) -> our Metagraph (stake and emission in the subnet's token units)."""
    neurons = tuple(
        Neuron(
            uid=int(n.uid),
            hotkey=str(n.hotkey),
            coldkey=str(n.coldkey),
            stake=float(n.total_stake.amount),      # subnet (alpha) units under dTAO
            validator_permit=bool(n.validator_permit),
            endpoint=n.axon,
            last_update=int(n.last_update),
            block_at_registration=int(n.block_at_registration),
            rank=float(n.rank),
            trust=float(n.trust),
            consensus=float(n.consensus),
            incentive=float(n.incentive),
            dividends=float(n.dividends),
            emission=float(n.emission.amount),
        )
        for n in sorted(mg.neurons, key=lambda n: n.uid)
    )
    return Metagraph(netuid=int(mg.netuid), block=int(mg.block), neurons=neurons)
