"""BittensorChain against stand-in SDK responses (no network).

The stand-in client answers like ``bittensor.SyncClient``: its metagraph is decoded by the SDK's
own decoder from a runtime-API-shaped record (u16 scores, rao balances, integer IPs), and writes
return the SDK's ``ExtrinsicResult``.
"""

import ipaddress
from types import SimpleNamespace

import bittensor as bt
import pytest
from bittensor import metagraph as bt_metagraph
from bittensor.intents import ServeAxon, SetWeights

from sn1.chain import ChainError, Neuron, connect
from sn1.chain.bittensor import BittensorChain
from sn1.errors import UsageError

RAO = 10**9
HOTKEYS = ["5F" + "a" * 46, "5G" + "b" * 46, "5H" + "c" * 46]


def recorded_graph(block=5_000_123):
    """The shape of SubnetInfoRuntimeApi.get_metagraph for a 3-uid subnet."""
    return {
        "netuid": 102, "name": [115, 110, 49], "symbol": [206, 177], "block": block, "tempo": 360,
        "last_step": block - 100, "blocks_since_last_step": 100,
        "owner_hotkey": HOTKEYS[0], "owner_coldkey": "5C" + "o" * 46, "network_registered_at": 10,
        "num_uids": 3, "max_uids": 256,
        "hotkeys": HOTKEYS, "coldkeys": ["5D" + "x" * 46, "5D" + "y" * 46, "5D" + "z" * 46],
        "identities": [None, None, None],
        "axons": [{"ip": 0, "port": 0, "ip_type": 4},
                  {"ip": int(ipaddress.IPv4Address("10.1.2.3")), "port": 8091, "ip_type": 4},
                  {"ip": int(ipaddress.IPv6Address("::1")), "port": 9000, "ip_type": 6}],
        "active": [True, True, True], "validator_permit": [True, False, False],
        "last_update": [block - 5, block - 900, block - 7000], "block_at_registration": [100, 2000, 4_990_000],
        "rank": [0, 32768, 65535], "trust": [0, 65535, 65535], "consensus": [0, 21845, 43690],
        "incentives": [0, 21845, 43690], "dividends": [65535, 0, 0], "pruning_score": [65535, 100, 200],
        "emission": [int(1.5 * RAO), int(0.25 * RAO), int(0.5 * RAO)],
        "alpha_stake": [1000 * RAO, 0, 0], "tao_stake": [10 * RAO, 0, 0],
        "total_stake": [int(1018.5 * RAO), 0, 7 * RAO],
    }


class StandInClient:
    """Answers the SyncClient calls BittensorChain makes; records the intents it is asked to run."""

    def __init__(self, fail_with=None):
        self.block = 5_000_130
        self.executed = []
        self.fail_with = fail_with
        client = self

        class Subnets:
            def metagraph(self, netuid, block=None, *, commitments=True):
                return None if netuid != 102 else bt_metagraph._build(netuid, recorded_graph(), {})

            def subnet_hyperparameters(self, netuid, *, block=None):
                if netuid != 102:
                    return None
                return {"tempo": 360, "min_allowed_weights": 1, "max_weights_limit": 65535 // 2,
                        "weights_rate_limit": 100, "immunity_period": 5000, "max_validators": 64,
                        "kappa": 32767, "activity_cutoff": 5000}

        class Neurons:
            def uid(self, hotkey_ss58, netuid, *, block=None):
                return HOTKEYS.index(hotkey_ss58) if hotkey_ss58 in HOTKEYS else None

        self.subnets, self.neurons = Subnets(), Neurons()

        def query(item, params, *, block=None):
            assert item is bt.storage.SubtensorModule.MaxAllowedUids and params == [102]
            return 256
        self.query = query
        self.client = client

    def execute(self, intent, wallet, **kwargs):
        self.executed.append((intent, wallet, kwargs))
        if self.fail_with:
            return bt.ExtrinsicResult(success=False, message=self.fail_with,
                                      error=bt.ChainError(self.fail_with, name="SettingWeightsTooFast"))
        return bt.ExtrinsicResult(success=True, message="ok", block_hash="0x" + "ab" * 32)


class RaisingClient(StandInClient):
    @property
    def block(self):
        raise bt.RpcConnectionError("could not connect to wss://test.finney.opentensor.ai:443")

    @block.setter
    def block(self, value):
        pass


def wallet(hotkey):
    return SimpleNamespace(name="w", hotkey_str="h", hotkey=SimpleNamespace(ss58_address=hotkey))


def test_metagraph_from_sdk():
    chain = BittensorChain("test", 102, client=StandInClient())
    mg = chain.metagraph()
    assert (mg.netuid, mg.block, mg.n) == (102, 5_000_123, 3)
    assert mg.hotkeys == HOTKEYS
    n0, n1, n2 = mg.neurons
    assert n0.stake == pytest.approx(1018.5) and n0.validator_permit and n0.endpoint is None
    assert n1.endpoint == "10.1.2.3:8091" and n2.endpoint == "[::1]:9000"
    assert n1.rank == pytest.approx(32768 / 65535) and n2.incentive == pytest.approx(2 / 3, abs=1e-4)
    assert n0.dividends == 1.0 and n0.emission == pytest.approx(1.5)
    assert (n1.last_update, n2.block_at_registration) == (5_000_123 - 900, 4_990_000)
    assert set(n1.to_json()) == set(Neuron.JSON_KEYS)
    assert mg.uid_of(HOTKEYS[2]) == 2


def test_hyperparams_and_block():
    chain = BittensorChain("test", 102, client=StandInClient())
    hp = chain.hyperparams()
    assert (hp.tempo, hp.max_uids, hp.min_allowed_weights, hp.weights_rate_limit) == (360, 256, 1, 100)
    assert hp.max_weight_limit == pytest.approx(0.5, abs=1e-4)
    assert (hp.immunity_period, hp.max_validators) == (5000, 64)
    assert chain.block() == 5_000_130


def test_unknown_subnet():
    chain = BittensorChain("test", 7, client=StandInClient())
    with pytest.raises(ChainError, match="subnet 7 does not exist on test"):
        chain.metagraph()
    with pytest.raises(ChainError, match="subnet 7 does not exist"):
        chain.hyperparams()


def test_register_finds_uid_never_buys_one():
    client = StandInClient()
    chain = BittensorChain("test", 102, client=client)
    assert chain.register(wallet(HOTKEYS[1])) == 1
    with pytest.raises(ChainError, match="btcli subnets register --netuid 102 --network test"):
        chain.register(wallet("5Z" + "q" * 46))
    assert client.executed == []


def test_serve_and_set_weights_run_sdk_intents():
    client = StandInClient()
    chain = BittensorChain("test", 102, client=client)
    w = wallet(HOTKEYS[0])
    chain.serve(w, "10.1.2.3", 8091)
    chain.set_weights(w, [1, 2], [0.25, 0.75], version_key=20003)
    (serve, w1, _), (weights, w2, kw) = client.executed
    assert isinstance(serve, ServeAxon) and (serve.netuid, serve.ip, serve.port) == (102, "10.1.2.3", 8091)
    assert isinstance(weights, SetWeights)
    assert (weights.netuid, weights.uids, weights.weights, weights.version_key) == (102, [1, 2], [0.25, 0.75], 20003)
    assert w1 is w and w2 is w and kw == {"retries": 2}


def test_chain_refusal_becomes_chain_error():
    chain = BittensorChain("test", 102, client=StandInClient(fail_with="weights set too fast"))
    with pytest.raises(ChainError, match="weights set too fast"):
        chain.set_weights(wallet(HOTKEYS[0]), [1], [1.0])
    with pytest.raises(ChainError, match="could not connect"):
        BittensorChain("test", 102, client=RaisingClient()).block()
    with pytest.raises(ChainError, match="2 uids but 1 weights"):
        chain.set_weights(wallet(HOTKEYS[0]), [1, 2], [1.0])


def test_connect_builds_a_cold_sdk_client():
    config = SimpleNamespace(subtensor=SimpleNamespace(network="local", chain_endpoint="ws://127.0.0.1:9999"),
                             netuid=3)
    chain = connect(config)
    assert isinstance(chain, BittensorChain) and (chain.network, chain.netuid) == ("local", 3)
    assert chain.client.endpoint == "ws://127.0.0.1:9999"         # built, not connected
    assert BittensorChain("test", 102).client.endpoint == "wss://test.finney.opentensor.ai:443"
    with pytest.raises(UsageError, match="Unknown network 'mainnet'"):
        BittensorChain("mainnet", 1).client


def test_rate_limit_and_unreachable_are_told_apart():
    from sn1.chain import ChainUnreachable, RateLimited

    chain = BittensorChain("test", 102, client=StandInClient(fail_with="weights set too fast"))
    with pytest.raises(RateLimited, match="weights set too fast"):      # SettingWeightsTooFast
        chain.set_weights(wallet(HOTKEYS[0]), [1], [1.0])
    with pytest.raises(ChainUnreachable) as e:
        BittensorChain("test", 102, client=RaisingClient()).block()
    assert str(e.value).startswith("cannot reach test (wss://test.finney.opentensor.ai:443): could not connect")
    assert str(e.value).endswith("; for a local subnet on this machine use `--subtensor.network sandbox` "
                                 "(README, \"Sandbox\")")
    with pytest.raises(ChainUnreachable, match=r"cannot reach finney \(ws://127.0.0.1:1\)"):
        BittensorChain("finney", 102, endpoint="ws://127.0.0.1:1", client=RaisingClient()).block()
