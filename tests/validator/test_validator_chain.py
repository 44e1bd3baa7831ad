"""The validator against a real sandbox chain: resync, weights, backoff."""

import asyncio

import numpy as np
import pytest

from sn1.chain.sandbox import SandboxChain
from sn1.config import nest
from sn1.validator import state as state_mod
from sn1.validator.loop import Backoff, Validator


def _validator(chain, wallet, tmp_path, **neuron):
    config = nest({"neuron.epoch_length": neuron.get("epoch_length", 1),
                   "neuron.disable_set_weights": neuron.get("disable_set_weights", False)})
    mg = chain.metagraph()
    st = state_mod.State(scores=np.zeros(mg.n), hotkeys=mg.hotkeys)
    return Validator(config=config, chain=chain, wallet=wallet,
                     uid=mg.uid_of(wallet.hotkey.ss58_address), metagraph=mg, state=st,
                     folder=str(tmp_path / "v"), weights_backoff=Backoff(base=0.0))


def test_resync_new_uid_and_replaced_hotkey(sandbox_path, make_wallet, tmp_path):
    chain = SandboxChain.init(sandbox_path, 1, tempo=1000, block_time=0.01, max_uids=3,
                              immunity_period=0)
    m1 = chain.register(make_wallet("m1"))                   # oldest: pruned first on a tie
    v_w = make_wallet("val")
    chain.register(v_w, stake=100)
    v = _validator(chain, v_w, tmp_path)
    v.state.scores = np.array([0.7, 0.0])
    m2 = chain.register(make_wallet("m2"))
    asyncio.run(v.resync())
    assert v.state.scores.tolist() == [0.7, 0.0, 0.0]      # new uid starts at 0
    v.state.scores = np.array([0.7, 0.0, 0.2])
    replaced = chain.register(make_wallet("m3"))             # full subnet: the oldest is pruned
    assert replaced == m1
    asyncio.run(v.resync())
    assert v.state.hotkeys == chain.metagraph().hotkeys
    assert v.state.scores.tolist() == [0.0, 0.0, 0.2]      # m1's score does not pass to m3
    assert v.state.scores[m2] == 0.2


def test_weights_land_on_chain_and_move_incentive(sandbox_path, make_wallet, tmp_path):
    chain = SandboxChain.init(sandbox_path, 1, tempo=5, block_time=0.05, weights_rate_limit=0)
    v_w = make_wallet("val")
    chain.register(v_w, stake=1000)
    good, bad = chain.register(make_wallet("good")), chain.register(make_wallet("bad"))
    v = _validator(chain, v_w, tmp_path)
    v.state.scores = np.array([0.0, 0.9, 0.1])
    assert asyncio.run(v.maybe_set_weights())
    assert v.state.last_weights_block >= 0
    w = chain.weights()[v.uid]
    assert w[good] > w[bad] > 0
    # After a tempo, consensus pays the better miner more.
    import time
    time.sleep(5 * 0.05 * 2 + 0.1)
    mg = chain.metagraph()
    assert mg.neurons[good].incentive > mg.neurons[bad].incentive > 0


def test_weights_failing_again_and_again_never_raise(sandbox_path, make_wallet, tmp_path):
    chain = SandboxChain.init(sandbox_path, 1, tempo=1000, block_time=0.01, weights_rate_limit=10**6)
    v_w = make_wallet("val")
    chain.register(v_w, stake=1000)
    chain.register(make_wallet("m"))
    v = _validator(chain, v_w, tmp_path)
    # A uid the chain does not have: every attempt is refused (not a rate limit).
    v.state.scores = np.array([0.0, 1.0, 1.0])
    results = [asyncio.run(v.maybe_set_weights()) for _ in range(5)]
    assert results == [False] * 5
    assert v.weights_backoff.failures == 5


def test_the_rate_limit_is_waited_for_not_failed(sandbox_path, make_wallet, tmp_path):
    # A rate limit longer than the test: the chain refuses every call after the first.
    chain = SandboxChain.init(sandbox_path, 1, tempo=1000, block_time=0.01, weights_rate_limit=10**6)
    v_w = make_wallet("val")
    chain.register(v_w, stake=1000)
    chain.register(make_wallet("m"))
    v = _validator(chain, v_w, tmp_path)
    v.state.scores = np.array([0.0, 1.0])
    results = []
    for _ in range(5):
        v.state.last_weights_block = -1     # forget our own record: only the chain knows
        results.append(asyncio.run(v.maybe_set_weights()))
    assert results[0] is True and results[1:] == [False] * 4
    assert v.weights_backoff.failures == 0                 # a rate limit is not a failure
    set_at = chain.metagraph().neurons[v.uid].last_update
    assert v.weights_not_before == set_at + 10**6          # the block the chain allows next
    # A validator started later knows it from the metagraph before trying.
    fresh = _validator(chain, v_w, tmp_path)
    fresh.state.scores = np.array([0.0, 1.0])
    assert asyncio.run(fresh.maybe_set_weights()) is False
    assert fresh.weights_not_before == set_at + 10**6 and fresh.weights_backoff.failures == 0


def test_disable_set_weights(sandbox_path, make_wallet, tmp_path):
    chain = SandboxChain.init(sandbox_path, 1, tempo=1000, block_time=0.01)
    v_w = make_wallet("val")
    chain.register(v_w, stake=1000)
    chain.register(make_wallet("m"))
    v = _validator(chain, v_w, tmp_path, disable_set_weights=True)
    v.state.scores = np.array([0.0, 1.0])
    assert asyncio.run(v.maybe_set_weights()) is False
    assert chain.weights() == {} or not chain.weights().get(v.uid)


def test_a_stopping_validator_promises_no_retry(sandbox_path, make_wallet, tmp_path, caplog):
    chain = SandboxChain.init(sandbox_path, 1, tempo=1000, block_time=0.01)
    v_w = make_wallet("val")
    chain.register(v_w, stake=1000)
    chain.register(make_wallet("m"))
    v = _validator(chain, v_w, tmp_path)
    v.state.scores = np.array([0.0, 1.0, 1.0])       # refused by the chain: unknown uid
    with caplog.at_level("WARNING", logger="sn1.validator"):
        assert asyncio.run(v.maybe_set_weights()) is False
        v.weights_backoff.not_before = 0.0
        assert asyncio.run(v.maybe_set_weights(final=True)) is False
    first, last = [r.getMessage() for r in caplog.records if "set_weights failed" in r.getMessage()]
    assert "retrying in" in first
    assert "not retried: the validator is stopping" in last and "retrying" not in last
    assert v.metrics.chain_errors.labels("set_weights")._value.get() == 2     # both counted as failures
