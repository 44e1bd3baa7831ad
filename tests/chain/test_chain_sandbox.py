"""SandboxChain: registration, replacement, permits, weight limits, epochs, bad state files."""

import os
import sqlite3
from types import SimpleNamespace

import numpy as np
import pytest

from sn1.chain import Chain, ChainError, connect
from sn1.chain.sandbox import SandboxChain
from sn1.errors import UsageError


def init(path, clock, **kw):
    kw = {"tempo": 10, "block_time": 1.0, "weights_rate_limit": 0, **kw}
    return SandboxChain.init(path, 1, clock=clock, **kw)


def test_register_is_idempotent_and_ordered(sandbox_path, clock, wallets):
    chain = init(sandbox_path, clock)
    assert isinstance(chain, Chain)
    ws = wallets(3)
    assert [chain.register(w) for w in ws] == [0, 1, 2]
    assert chain.register(ws[1], stake=50) == 1              # already registered: same uid, no new stake
    mg = chain.metagraph()
    assert [n.uid for n in mg.neurons] == [0, 1, 2]
    assert mg.neurons[1].hotkey == ws[1].hotkey.ss58_address
    assert mg.neurons[1].coldkey == ws[1].coldkeypub.ss58_address
    assert mg.neurons[1].stake == 0
    assert chain.ledger()["staked"] == 0


def test_block_follows_the_clock(sandbox_path, clock):
    chain = init(sandbox_path, clock, block_time=0.5)
    assert chain.block() == 0
    clock.t += 6.1
    assert chain.block() == 12
    # a second process opening the same path sees the same height
    assert SandboxChain(sandbox_path, 1, clock=clock).block() == 12


def test_hyperparams_roundtrip(sandbox_path, clock):
    chain = init(sandbox_path, clock, max_uids=8, immunity_period=7, max_validators=3,
                 min_allowed_weights=2, max_weight_limit=0.6)
    hp = chain.hyperparams()
    assert (hp.tempo, hp.max_uids, hp.immunity_period, hp.max_validators) == (10, 8, 7, 3)
    assert (hp.min_allowed_weights, hp.max_weight_limit, hp.weights_rate_limit) == (2, 0.6, 0)


def test_double_init_refused_and_other_netuid_allowed(sandbox_path, clock):
    init(sandbox_path, clock)
    with pytest.raises(UsageError, match="already initialised"):
        init(sandbox_path, clock)
    two = SandboxChain.init(sandbox_path, 2, tempo=5, clock=clock)
    assert two.hyperparams().tempo == 5
    with pytest.raises(UsageError, match="runs 1 s blocks"):
        SandboxChain.init(sandbox_path, 3, block_time=2.0, clock=clock)


def test_uninitialised_path_and_unknown_netuid(sandbox_path, clock):
    with pytest.raises(UsageError, match="sn1 sandbox init"):
        SandboxChain(sandbox_path, 1)
    init(sandbox_path, clock)
    with pytest.raises(UsageError, match="unknown netuid 9"):
        SandboxChain(sandbox_path, 9)


@pytest.mark.parametrize("content", [b"not a database at all" * 100, None])
def test_corrupted_or_foreign_state_file(sandbox_path, content):
    os.makedirs(sandbox_path)
    file = sandbox_path / "chain.sqlite"
    if content is None:       # a real SQLite file, but someone else's
        with sqlite3.connect(file) as c:
            c.execute("CREATE TABLE meta (key TEXT, value TEXT)")
            c.execute("INSERT INTO meta VALUES ('format', 'something-else')")
        c.close()
    else:
        file.write_bytes(content)
    before = file.read_bytes()
    with pytest.raises(UsageError, match="not a sandbox state file"):
        SandboxChain(sandbox_path, 1)
    with pytest.raises(UsageError, match="not a sandbox state file"):
        SandboxChain.init(sandbox_path, 1)
    assert file.read_bytes() == before


def test_permits_go_to_top_k_stake(sandbox_path, clock, wallets):
    chain = init(sandbox_path, clock, max_validators=2)
    ws = wallets(4)
    for w, s in zip(ws, [10, 30, 0, 20]):
        chain.register(w, stake=s)
    assert [n.validator_permit for n in chain.metagraph().neurons] == [False, True, False, True]
    assert chain.stake(ws[0], 25) == 35
    assert [n.validator_permit for n in chain.metagraph().neurons] == [True, True, False, False]
    # without a permit, a neuron may not weigh others
    with pytest.raises(ChainError, match="no validator permit"):
        chain.set_weights(ws[3], [2], [1.0])


def test_up_to_k_neurons_all_hold_permits_zero_stake_included(sandbox_path, clock, wallets):
    """As on chain: while the subnet has at most max_validators neurons, every uid holds a permit."""
    chain = init(sandbox_path, clock, max_validators=3, tempo=10, emission_per_block=1.0)
    v, z, m, late = wallets(4)
    chain.register(v, stake=10)
    chain.register(z)
    chain.register(m)
    assert [n.validator_permit for n in chain.metagraph().neurons] == [True, True, True]
    # a zero-stake permit holder may set weights, as on chain...
    chain.set_weights(z, [0, 2], [0, 1])
    chain.set_weights(v, [1, 2], [0, 1])
    # ...past K, the zero-stake ties go to the lower uids: the newcomer has none
    chain.register(late)
    assert [n.validator_permit for n in chain.metagraph().neurons] == [True, True, True, False]
    with pytest.raises(ChainError, match="uid 3 has no validator permit"):
        chain.set_weights(late, [2], [1.0])
    chain.set_weights(z, [3], [1.0])               # uid 1 now votes for uid 3 alone
    clock.blocks(10)
    n = chain.metagraph().neurons
    # uid 1's vote carries no stake: consensus and pay follow uid 0 alone (10 TAO: 5 + 5)
    assert [x.consensus for x in n] == pytest.approx([0, 0, 1, 0])
    assert [x.emission for x in n] == pytest.approx([5, 0, 5, 0])
    assert chain.weights() == {0: {2: pytest.approx(1.0)}, 1: {3: pytest.approx(1.0)}}


def test_replacement_after_immunity(sandbox_path, clock, wallets):
    chain = init(sandbox_path, clock, max_uids=3, immunity_period=5, tempo=100)
    ws = wallets(5)
    for w in ws[:3]:
        chain.register(w)
        clock.blocks(1)                          # registered at blocks 0, 1, 2
    with pytest.raises(ChainError, match="immunity period"):
        chain.register(ws[3])                    # block 3: everyone is still immune
    clock.t += 3                                 # block 6: uids 0 and 1 are past immunity (>= 5 blocks)
    reg = chain.register_neuron(ws[3])
    # all scores are 0 -> the oldest registration outside immunity loses its uid
    assert (reg.uid, reg.new, reg.replaced) == (0, True, ws[0].hotkey.ss58_address)
    mg = chain.metagraph()
    assert mg.neurons[0].hotkey == ws[3].hotkey.ss58_address and mg.neurons[0].block_at_registration == 6
    assert mg.uid_of(ws[0].hotkey.ss58_address) is None
    # uid 1 is next (uid 0 is immune again)
    assert chain.register_neuron(ws[4]).uid == 1


def test_replacement_prefers_lowest_pruning_score(sandbox_path, clock, wallets):
    chain = init(sandbox_path, clock, max_uids=3, immunity_period=0, tempo=10)
    v, m1, m2, new = wallets(4)
    chain.register(v, stake=100)
    chain.register(m1)
    chain.register(m2)
    chain.set_weights(v, [1, 2], [0.3, 0.7])
    clock.blocks(10)                             # one epoch: emission v > m2 > m1
    chain.stake(m1, 1)                           # stake does not protect: pruning score is emission
    mg = chain.metagraph()
    assert mg.neurons[1].emission < mg.neurons[2].emission < mg.neurons[0].emission
    reg = chain.register_neuron(new)
    assert (reg.uid, reg.replaced) == (1, m1.hotkey.ss58_address)
    # the replaced uid's weights and bonds are gone, the rest stay
    assert chain.weights() == {0: {2: pytest.approx(0.7)}}
    led = chain.ledger()
    assert led["removed"] == pytest.approx(mg.neurons[1].stake)
    assert led["held"] == pytest.approx(led["staked"] + led["emitted"] - led["removed"])


def test_weight_limits(sandbox_path, clock, wallets):
    chain = init(sandbox_path, clock, min_allowed_weights=2, max_weight_limit=0.5, weights_rate_limit=5)
    v, a, b, c = wallets(4)
    chain.register(v, stake=10)
    for w in (a, b, c):
        chain.register(w)
    bad = [
        (([1, 2], [0.5]), "2 uids but 1 weights"),
        (([1, 7], [0.5, 0.5]), r"unknown uid\(s\) \[7\]"),
        (([1, -1], [0.5, 0.5]), r"unknown uid\(s\) \[-1\]"),
        (([1, 1], [0.5, 0.5]), "duplicate"),
        (([1, 2], [0.5, -0.1]), "non-negative"),
        (([1, 2], [0.5, float("nan")]), "finite"),
        (([1, 2], [0, 0]), "all zero"),
        (([1, 2], [1.0, 0]), "at least 2"),
        (([1, 2, 3], ["x", 1, 1]), "numbers"),
    ]
    for (uids, weights), msg in bad:
        with pytest.raises(ChainError, match=msg):
            chain.set_weights(v, uids, weights)
    assert chain.weights() == {}
    # conformed: 0.8/0.1/0.1 cannot give uid 1 more than max_weight_limit 0.5
    chain.set_weights(v, [1, 2, 3], [8, 1, 1], version_key=10203)
    assert chain.weights() == {0: {1: pytest.approx(0.5), 2: pytest.approx(0.25), 3: pytest.approx(0.25)}}
    with pytest.raises(ChainError, match="rate limit.*next allowed at block 5"):
        chain.set_weights(v, [1, 2], [1, 1])
    clock.blocks(5)
    chain.set_weights(v, [1, 2], [1, 1])
    assert chain.metagraph().neurons[0].last_update == 5
    # not registered
    stranger = wallets(5)[4]
    with pytest.raises(ChainError, match="not registered"):
        chain.set_weights(stranger, [1, 2], [1, 1])


def test_set_weights_stores_the_version_key(sandbox_path, clock, wallets):
    chain = init(sandbox_path, clock, weights_rate_limit=2)
    v0, v1, m = wallets(3)
    chain.register(v0, stake=10)
    chain.register(v1, stake=5)
    chain.register(m)
    assert chain.version_keys() == {}                  # nobody has set weights yet
    chain.set_weights(v0, [2], [1.0], version_key=2_001_003)
    chain.set_weights(v1, [2], [1.0])                  # the default key is 0
    assert chain.version_keys() == {0: 2_001_003, 1: 0}
    # a refused set_weights (rate limit) leaves the stored key alone
    with pytest.raises(ChainError, match="rate limit"):
        chain.set_weights(v0, [2], [1.0], version_key=7)
    assert chain.version_keys()[0] == 2_001_003
    clock.blocks(2)
    chain.set_weights(v0, [2], [1.0], version_key=2_001_004)
    # another process reading the same state sees the latest key
    assert SandboxChain(sandbox_path, 1, clock=clock).version_keys() == {0: 2_001_004, 1: 0}
    assert chain.weights() == {0: {2: 1.0}, 1: {2: 1.0}}     # weights() keeps its shape


def test_serve(sandbox_path, clock, wallets):
    chain = init(sandbox_path, clock)
    w, stranger = wallets(2)
    chain.register(w)
    chain.serve(w, "127.0.0.1", 8091)
    assert chain.metagraph().neurons[0].endpoint == "127.0.0.1:8091"
    chain.serve(w, "::1", 9000)
    assert chain.metagraph().neurons[0].endpoint == "[::1]:9000"
    with pytest.raises(ChainError, match="port"):
        chain.serve(w, "127.0.0.1", 70000)
    with pytest.raises(ChainError, match="ip"):
        chain.serve(w, "localhost!", 80)
    with pytest.raises(ChainError, match="not registered"):
        chain.serve(stranger, "127.0.0.1", 8091)


def test_epoch_pays_as_yuma(sandbox_path, clock, wallets):
    """The three-validator case of test_chain_yuma, run through the chain's lazy epoch."""
    chain = init(sandbox_path, clock, tempo=10, emission_per_block=0.2)
    v0, v1, v2, m3, m4 = wallets(5)
    for w, s in [(v0, 45), (v1, 35), (v2, 20), (m3, 0), (m4, 0)]:
        chain.register(w, stake=s)
    chain.set_weights(v0, [3, 4], [.6, .4])
    chain.set_weights(v1, [3, 4], [.2, .8])
    chain.set_weights(v2, [3, 4], [.5, .5])
    clock.blocks(9)
    assert chain.metagraph().neurons[3].incentive == 0           # block 9: no epoch yet
    clock.blocks(1)
    mg = chain.metagraph()                                         # block 10: one epoch, 2 TAO
    n = mg.neurons
    np.testing.assert_allclose([x.consensus for x in n], [0, 0, 0, .5, .5])
    np.testing.assert_allclose([x.incentive for x in n], [0, 0, 0, .395 / .85, .455 / .85])
    np.testing.assert_allclose([x.dividends for x in n], [.405 / .85, .245 / .85, .2 / .85, 0, 0])
    np.testing.assert_allclose([x.trust for x in n][3:], [.395 / .44, .455 / .56])
    np.testing.assert_allclose([x.emission for x in n], [.405 / .85, .245 / .85, .2 / .85,
                                                         .395 / .85, .455 / .85])
    np.testing.assert_allclose(n[0].stake, 45 + .405 / .85)
    led = chain.ledger()
    assert (led["epochs"], led["last_epoch"]) == (1, 10)
    assert led["held"] == pytest.approx(led["staked"] + led["emitted"])
    assert led["emitted"] == pytest.approx(2.0)
    # reading again in the same tempo runs nothing more
    assert chain.metagraph().neurons[0].stake == n[0].stake
    clock.blocks(30)                                               # three more epochs, caught up at once
    assert chain.ledger()["epochs"] == 1                           # reads of the ledger do not run epochs...
    chain.metagraph()
    assert chain.ledger()["epochs"] == 4                           # ...metagraph does
    assert chain.ledger()["emitted"] == pytest.approx(8.0)


def test_connect_sandbox(sandbox_path, clock):
    init(sandbox_path, clock)
    config = SimpleNamespace(subtensor=SimpleNamespace(network="sandbox"),
                             sandbox=SimpleNamespace(path=str(sandbox_path)), netuid=1)
    chain = connect(config)
    assert isinstance(chain, SandboxChain) and chain.network == "sandbox" and chain.netuid == 1


def test_negative_or_bad_stake(sandbox_path, clock, wallets):
    chain = init(sandbox_path, clock)
    w = wallets(1)[0]
    for bad in (-1, float("nan"), "abc", float("inf")):
        with pytest.raises(ChainError, match="stake"):
            chain.register(w, stake=bad)
    chain.register(w, stake=1)
    with pytest.raises(ChainError, match="amount"):
        chain.stake(w, -5)
    assert chain.metagraph().neurons[0].stake == 1
