"""The snags a new user hits on the command line (issue 20, items 6 and 8): each command as a user
types it, in a subprocess, with its exit code and its exact message.
"""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from sn1.testing import ROOT, free_port, make_wallet, run_sn1


def _one_line(proc) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


@pytest.fixture
def sandbox(tmp_path):
    """An initialised sandbox and a wallet folder: (common flags, wallets, sandbox path)."""
    wallets, sb = tmp_path / "wallets", tmp_path / "sandbox"
    run_sn1("sandbox", "init", "--sandbox.path", sb, check=True)
    return ["--wallet.path", str(wallets), "--subtensor.network", "sandbox", "--sandbox.path", str(sb)], wallets, sb


# ---- flags ------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv,expect", [
    (["-m", "sn1.cli", "validator", "--neuron.max_step", "3"],
     "error: sn1: unrecognized arguments: --neuron.max_step 3; did you mean --neuron.max_steps? "
     "(abbreviated flags are not accepted)"),
    (["neurons/validator.py", "--neuron.max_step", "3"],
     "error: neurons/validator.py: unrecognized arguments: --neuron.max_step 3; did you mean "
     "--neuron.max_steps? (abbreviated flags are not accepted)"),
    (["-m", "sn1.cli", "miner", "--backend", "echo", "--axon.prot", "9000"],
     "error: sn1: unrecognized arguments: --axon.prot 9000; did you mean --axon.port?"),
    (["-m", "sn1.cli", "gateway", "--gateway.prot", "9000"],
     "error: sn1 gateway: unrecognized arguments: --gateway.prot; did you mean --gateway.port?"),
    (["-m", "sn1.cli", "sandbox", "init", "--tmpo", "10"],
     "error: sn1: unrecognized arguments: --tmpo 10; did you mean --tempo?"),
    (["-m", "sn1.cli", "client", "--uids", "1", "--messag", "hi"],
     "error: sn1: unrecognized arguments: --messag hi; did you mean --message? (abbreviated flags are not accepted)"),
    (["-m", "sn1.cli", "gateway", "keys", "create", "--nam", "x"],
     "error: sn1 gateway keys create: unrecognized arguments: --nam; did you mean --name? "
     "(abbreviated flags are not accepted)"),
    (["-m", "sn1.cli", "validator", "--completely-unknown"],
     "error: sn1: unrecognized arguments: --completely-unknown"),
])
def test_typos_suggest_the_nearest_flag_and_abbreviations_are_refused(argv, expect):
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2
    assert _one_line(proc) == expect


def test_a_mistyped_command_is_reported_as_such():
    proc = run_sn1("valdator", "--neuron.timeout", "5")
    assert proc.returncode == 2
    assert _one_line(proc).startswith("error: sn1: argument COMMAND: invalid choice: 'valdator' (choose from ")


def _parsers(parser, path=()):
    import argparse

    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, path + (name,))


def test_no_parser_accepts_abbreviations():
    from sn1.cli import build_parser
    from sn1.client import build_parser as client_parser
    from sn1.gateway.cli import add_args, add_keys_parsers
    from sn1.config import OneLineErrorParser
    from sn1.miner.cli import _build as miner_parser

    gateway = OneLineErrorParser(prog="gateway")
    add_args(gateway)
    add_keys_parsers(gateway)
    found = [*_parsers(build_parser()), *_parsers(client_parser("client.py")),
             *_parsers(miner_parser("echo", "echo", "miner.py")), *_parsers(gateway)]
    assert len(found) > 15
    assert [" ".join(path) for path, p in found if p.allow_abbrev] == []


def test_cheat_is_not_offered_but_still_works():
    help_text = run_sn1("miner", "--help", check=True).stdout
    assert "echo" in help_text and "cheat" not in help_text
    proc = run_sn1("miner", "--backend", "nope")
    assert proc.returncode == 2
    line = _one_line(proc)
    assert line.startswith("error: sn1 miner: argument --backend: ") and "echo" in line and "cheat" not in line
    # tests still run it: it gets past the flags (to the wallet)
    proc = run_sn1("miner", "--backend", "cheat", "--wallet.path", "/nonexistent", "--wallet.name", "w")
    assert proc.returncode == 2 and _one_line(proc).startswith("error: unknown wallet 'w'")


# ---- chain ------------------------------------------------------------------------------------

def test_an_unreachable_network_is_named_with_the_sandbox_hint(tmp_path):
    """What forgetting --subtensor.network gives (here `local` at a port nobody serves, so the
    test reaches nothing outside this machine; finney goes through the same path)."""
    make_wallet(tmp_path, "m")
    port = free_port()
    proc = run_sn1("miner", "--backend", "echo", "--wallet.path", tmp_path, "--wallet.name", "m",
                   "--subtensor.network", "local", env={"BT_CHAIN_ENDPOINT": f"ws://127.0.0.1:{port}"})
    assert proc.returncode == 2
    line = _one_line(proc)
    assert line.startswith(f"error: cannot read the metagraph of netuid 1: cannot reach local "
                           f"(ws://127.0.0.1:{port}): "), line
    assert line.endswith("; for a local subnet on this machine use `--subtensor.network sandbox` "
                         "(README, \"Sandbox\")"), line
    proc = run_sn1("validator", "--wallet.path", tmp_path, "--wallet.name", "m",
                   "--subtensor.chain_endpoint", f"ws://127.0.0.1:{port}")
    assert proc.returncode == 2
    assert f"cannot reach finney (ws://127.0.0.1:{port}): " in _one_line(proc)
    assert "use `--subtensor.network sandbox`" in _one_line(proc)


def test_a_missing_hotkey_or_wallet_names_the_btcli_command(tmp_path):
    make_wallet(tmp_path, "m")
    proc = run_sn1("miner", "--backend", "echo", "--wallet.path", tmp_path, "--wallet.name", "m",
                   "--wallet.hotkey", "hot2")
    assert proc.returncode == 2
    assert _one_line(proc) == (
        f"error: unknown hotkey 'hot2' of wallet 'm': no {tmp_path}/m/hotkeys/hot2; create it with "
        f"`btcli wallet new-hotkey --wallet m --wallet-hotkey hot2 --wallet-path {tmp_path}`")
    proc = run_sn1("validator", "--wallet.path", tmp_path, "--wallet.name", "nobody")
    assert proc.returncode == 2
    assert _one_line(proc) == (
        f"error: unknown wallet 'nobody': no {tmp_path}/nobody/coldkeypub.txt; create it with "
        f"`btcli wallet create --wallet nobody --wallet-hotkey default --wallet-path {tmp_path}`")


def test_the_btcli_command_named_creates_the_hotkey(tmp_path):
    btcli = ROOT / ".venv" / "bin" / "btcli"
    if not btcli.exists():
        pytest.skip("btcli is not installed beside this Python")
    make_wallet(tmp_path, "m")
    proc = run_sn1("miner", "--backend", "echo", "--wallet.path", tmp_path, "--wallet.name", "m",
                   "--wallet.hotkey", "hot2")
    command = _one_line(proc).split("`")[1]
    assert command.startswith("btcli wallet new-hotkey ")
    subprocess.run([str(btcli), *command.split()[1:]], capture_output=True, text=True, timeout=120,
                   stdin=subprocess.DEVNULL, check=True)
    assert (tmp_path / "m" / "hotkeys" / "hot2").exists()


def test_an_unregistered_hotkey_names_the_register_command(sandbox):
    common, wallets, sb = sandbox
    make_wallet(wallets, "m")
    expect = (f"register it with `sn1 sandbox register --wallet.name m --wallet.hotkey default "
              f"--wallet.path {wallets} --sandbox.path {sb}`")
    proc = run_sn1("miner", "--backend", "echo", *common, "--wallet.name", "m")
    assert proc.returncode == 2
    line = _one_line(proc)
    assert line.startswith("error: hotkey default (") and line.endswith(
        f") is not registered on netuid 1 (sandbox); {expect}"), line
    proc = run_sn1("validator", *common, "--wallet.name", "m")
    assert proc.returncode == 2
    assert _one_line(proc) == f"error: hotkey m/default is not registered on netuid 1 (sandbox); {expect}"
    # ... and that command does it.
    register = _one_line(proc).split("`")[1].split()[1:]
    assert run_sn1(*register, check=True).stdout.strip() == "0"


def test_register_hint_off_the_sandbox():
    from sn1.chain import register_hint
    from sn1.config import nest

    config = nest({"subtensor.network": "finney", "netuid": 1, "wallet.name": "w", "wallet.hotkey": "h",
                   "wallet.path": "~/.bittensor/wallets"})
    assert register_hint(config) == ("`btcli subnets register --netuid 1 --network finney --wallet w "
                                     "--wallet-hotkey h` (this costs TAO)")


# ---- ports ------------------------------------------------------------------------------------

def _taken(port: int, host: str = "127.0.0.1") -> socket.socket:
    s = socket.socket()
    s.bind((host, port))
    s.listen()
    return s


def test_a_taken_port_names_its_flag(sandbox):
    common, wallets, _ = sandbox
    make_wallet(wallets, "m")
    run_sn1("sandbox", "register", "--wallet.name", "m", *common[:2], *common[4:], check=True)
    port = free_port()
    with _taken(port):
        proc = run_sn1("miner", "--backend", "echo", *common, "--wallet.name", "m",
                       "--axon.ip", "127.0.0.1", "--axon.port", port)
    assert proc.returncode == 2
    assert _one_line(proc) == (f"error: cannot listen on 127.0.0.1:{port} (--axon.port): Address already in "
                               f"use; choose another port with --axon.port PORT (0: any free port)")


def test_the_default_port_taken_is_named_as_the_default(sandbox):
    common, wallets, _ = sandbox
    make_wallet(wallets, "m")
    run_sn1("sandbox", "register", "--wallet.name", "m", *common[:2], *common[4:], check=True)
    try:
        blocker = _taken(8091, "0.0.0.0")
    except OSError:
        blocker = None          # already taken by something else: the miner meets the same
    try:
        proc = run_sn1("miner", "--backend", "echo", *common, "--wallet.name", "m")
    finally:
        if blocker is not None:
            blocker.close()
    assert proc.returncode == 2
    assert _one_line(proc) == ("error: cannot listen on 0.0.0.0:8091 (--axon.port): Address already in use; "
                               "8091 is the default of --axon.port: choose another port with --axon.port PORT "
                               "(0: any free port)")


# ---- gateway path -----------------------------------------------------------------------------

def test_gateway_path_is_a_folder(tmp_path):
    proc = run_sn1("gateway", "keys", "create", "--name", "a", "--gateway.path", tmp_path / "gw" / "gateway.db")
    assert proc.returncode == 2
    assert _one_line(proc) == (
        f"error: sn1 gateway keys create: argument --gateway.path: takes a folder (the gateway keeps "
        f"gateway.db and its records in it), got the file {tmp_path}/gw/gateway.db; use --gateway.path "
        f"{tmp_path}/gw")
    assert not (tmp_path / "gw").exists()          # nothing made
    out = run_sn1("gateway", "keys", "create", "--name", "a", "--gateway.path", tmp_path / "gw", check=True)
    assert out.stdout.strip().splitlines()[-1].startswith("sn1-")
    assert (tmp_path / "gw" / "gateway.db").is_file()
