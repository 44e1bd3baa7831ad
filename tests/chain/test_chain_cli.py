"""`sn1 sandbox ...` end to end in subprocesses: output, --json keys, bad input -> one line, exit 2, state untouched."""

import json
import sqlite3

import pytest

from sn1.chain.base import Neuron
from sn1.chain.sandbox import SandboxChain
from sn1.testing import make_wallet, run_sn1


@pytest.fixture
def sandbox(tmp_path, wallet_path):
    sb = tmp_path / "sb"
    SandboxChain.init(sb, 1, tempo=5, block_time=0.05)      # `sn1 sandbox init` itself: test_init
    for name in ("val", "miner"):
        make_wallet(wallet_path, name, "default")
    return sb


def sandbox_cmd(cmd, sb, wallet_path, *args):
    return run_sn1("sandbox", cmd, "--sandbox.path", sb, "--wallet.path", wallet_path, *args)


def state(sb):
    """Everything in the sandbox, WAL included (the main file alone would miss recent commits)."""
    db = sqlite3.connect(sb / "chain.sqlite")
    try:
        return list(db.iterdump())
    finally:
        db.close()


def test_register_stake_metagraph(sandbox, wallet_path):
    r = sandbox_cmd("register", sandbox, wallet_path, "--wallet.name", "val", "--stake", "100")
    assert (r.returncode, r.stdout.strip()) == (0, "0")
    r = sandbox_cmd("register", sandbox, wallet_path, "--wallet.name", "miner")
    assert (r.returncode, r.stdout.strip()) == (0, "1")
    r = sandbox_cmd("register", sandbox, wallet_path, "--wallet.name", "miner")
    assert (r.returncode, r.stdout.strip()) == (0, "1") and "already registered" in r.stderr
    r = sandbox_cmd("stake", sandbox, wallet_path, "--wallet.name", "val", "--amount", "2.5")
    assert r.returncode == 0 and "102.5" in r.stdout

    r = sandbox_cmd("set-weights", sandbox, wallet_path, "--wallet.name", "val", "--uids", "0", "1",
                    "--weights", "0", "3")
    assert (r.returncode, r.stdout.strip()) == (0, "weights set: uid 1: 1.0000"), r.stderr

    r = run_sn1("sandbox", "metagraph", "--sandbox.path", sandbox, "--json", check=True)
    rows = json.loads(r.stdout)
    assert [list(row) for row in rows] == [list(Neuron.JSON_KEYS)] * 2
    assert rows[0]["stake"] >= 102.5 and rows[0]["validator_permit"] is True
    assert rows[1]["endpoint"] is None
    # blocks of 0.05 s, tempo 5: epochs ran while the next command started; the miner earns it all
    assert rows[1]["incentive"] == 1.0 and rows[1]["consensus"] == 1.0 and rows[1]["stake"] > 0
    assert rows[0]["dividends"] == 1.0

    r = run_sn1("sandbox", "metagraph", "--sandbox.path", sandbox, check=True)
    lines = r.stdout.splitlines()
    assert lines[0].startswith("Metagraph: net: sandbox:1, block:") and "N: 2/256" in lines[0]
    assert lines[1].split()[:3] == ["UID", "STAKE(τ)", "RANK"]
    assert lines[2].split()[0] == "0" and rows[0]["hotkey"][:10] in lines[2]


BAD = [
    (["register", "--wallet.name", "ghost"], "unknown wallet 'ghost'"),
    (["register", "--wallet.name", "miner", "--wallet.hotkey", "nohot"], "unknown hotkey 'nohot'"),
    (["register", "--wallet.name", "miner", "--stake", "-1"], "--stake: must be >= 0, got -1"),
    (["register", "--wallet.name", "miner", "--stake", "lots"], "expected a number >= 0, got 'lots'"),
    (["register", "--wallet.name", "miner", "--netuid", "9"], "unknown netuid 9"),
    (["register", "--wallet.name", "miner", "--netuid", "x"], "--netuid: expected an integer in [0, 65535], got 'x'"),
    (["stake", "--wallet.name", "miner", "--amount", "3"], "not registered"),
    (["stake", "--wallet.name", "val", "--amount", "nan"], "--amount: must be >= 0, got nan"),
    (["stake", "--wallet.name", "val"], "--amount"),
    (["init"], "already initialised"),
    (["set-weights", "--wallet.name", "val", "--uids", "1", "--weights", "1"], "unknown uid(s) [1]"),
    (["set-weights", "--wallet.name", "val", "--uids", "0", "--weights", "1", "2"], "1 uids but 2 weights"),
    (["set-weights", "--wallet.name", "val", "--uids", "a", "--weights", "1"], "--uids: expected an integer"),
    (["set-weights", "--wallet.name", "miner", "--uids", "0", "--weights", "1"], "not registered"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_input_one_line_exit_2_state_untouched(sandbox, wallet_path, args, message):
    SandboxChain(sandbox, 1).register(make_wallet(wallet_path, "val"), stake=10)
    before = state(sandbox)
    cmd, *rest = args
    extra = [] if cmd == "init" else ["--wallet.path", wallet_path]
    r = run_sn1("sandbox", cmd, "--sandbox.path", sandbox, *extra, *rest)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr
    assert r.stdout == ""
    assert state(sandbox) == before


def test_init(tmp_path):
    sb = tmp_path / "new"
    r = run_sn1("sandbox", "init", "--sandbox.path", sb, "--netuid", "3", "--tempo", "7", "--block-time", "0.5",
                "--max-uids", "16", "--max-validators", "4", "--immunity-period", "9", "--max-weight-limit", "0.5")
    assert r.returncode == 0, r.stderr
    assert f"sandbox subnet 3 initialised at {sb}" in r.stdout
    hp = SandboxChain(sb, 3).hyperparams()
    assert (hp.tempo, hp.max_uids, hp.max_validators, hp.immunity_period, hp.max_weight_limit) == (7, 16, 4, 9, 0.5)
    r = run_sn1("sandbox", "init", "--sandbox.path", sb, "--netuid", "4", "--tempo", "0")
    assert r.returncode == 2
    assert r.stderr.strip() == "error: sn1 sandbox init: argument --tempo: must be >= 1, got 0"


def test_uninitialised_and_corrupted_paths(tmp_path, wallet_path):
    make_wallet(wallet_path, "val")
    r = run_sn1("sandbox", "register", "--sandbox.path", tmp_path / "none", "--wallet.path", wallet_path,
                "--wallet.name", "val")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "sn1 sandbox init" in r.stderr
    assert not (tmp_path / "none").exists()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "chain.sqlite").write_text("{'this': 'is not sqlite'}" * 50)
    for cmd in (["metagraph"], ["init"]):
        r = run_sn1("sandbox", *cmd, "--sandbox.path", bad)
        assert r.returncode == 2 and r.stderr.count("\n") == 1 and "corrupted or foreign" in r.stderr
    assert (bad / "chain.sqlite").read_text() == "{'this': 'is not sqlite'}" * 50
