"""Two processes register and set weights 100 times each on one sandbox: nothing lost, nothing corrupted."""

import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from sn1.chain.sandbox import SandboxChain
from sn1.testing import make_wallet

ROUNDS = 100

WORKER = textwrap.dedent("""
    import random, sys, time
    import bittensor as bt
    from sn1.chain.sandbox import SandboxChain

    sandbox, wallets, name, rounds, go = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
    while not __import__("os").path.exists(go):    # start together, after the slow imports
        time.sleep(0.01)
    chain = SandboxChain(sandbox, 1)
    validator = bt.Wallet(name=name, hotkey="validator", path=wallets)
    rng = random.Random(name)
    for i in range(rounds):
        chain.register(bt.Wallet(name=name, hotkey=f"h{i}", path=wallets), stake=1.0)
        n = chain.metagraph().n
        uids = list(range(n))
        chain.set_weights(validator, uids, [rng.random() + 0.01 for _ in uids], version_key=i)
    print("done")
""")


@pytest.mark.timeout(300)
def test_two_processes_register_and_set_weights(tmp_path, wallet_path):
    sandbox = tmp_path / "sandbox"
    # fast blocks and a short tempo, so epochs also run (and pay) while the writers race
    SandboxChain.init(sandbox, 1, tempo=5, block_time=0.02, weights_rate_limit=0)
    chain = SandboxChain(sandbox, 1)
    hotkeys = {}
    for name in ("a", "b"):
        v = make_wallet(wallet_path, name, "validator")
        chain.register(v, stake=100)
        hotkeys[name] = [make_wallet(wallet_path, name, f"h{i}").hotkey.ss58_address for i in range(ROUNDS)]
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(sandbox), str(wallet_path), name, str(ROUNDS),
                               str(go)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for name in ("a", "b")]
    time.sleep(1.0)
    go.touch()
    for p in procs:
        out, err = p.communicate(timeout=280)
        assert p.returncode == 0, err
        assert out.strip() == "done"

    with sqlite3.connect(sandbox / "chain.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    mg = chain.metagraph()
    assert mg.n == 2 + 2 * ROUNDS
    assert [n.uid for n in mg.neurons] == list(range(mg.n))
    assert set(mg.hotkeys) == set(hotkeys["a"]) | set(hotkeys["b"]) | {
        make_wallet(wallet_path, n, "validator").hotkey.ss58_address for n in ("a", "b")}
    weights = chain.weights()
    assert set(weights) == {0, 1}                       # both validators' last weights are stored
    for row in weights.values():
        assert sum(row.values()) == pytest.approx(1.0)
        assert all(0 <= dest < mg.n for dest in row)
    a_uids = sorted(mg.uid_of(h) for h in hotkeys["a"])
    print("interleaving: a's uids", a_uids[:10], "...")   # shows the writers really raced (-s)
    versions = {n.uid: n for n in mg.neurons}
    assert versions[0].last_update > 0 and versions[1].last_update > 0
    led = chain.ledger()
    assert led["staked"] == pytest.approx(200 + 2 * ROUNDS)   # every stake added exactly once
    assert led["held"] == pytest.approx(led["staked"] + led["emitted"] - led["removed"])
    assert led["epochs"] > 0 and led["emitted"] > 0
