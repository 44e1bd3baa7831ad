"""Every numeric flag of every command is range-checked at start: one line, exit 2, no work.

The parsers are the real ones (`sn1 ...`, the seed's scripts); every numeric
flag is found by walking them, so a flag added later without a range fails here.
"""

import argparse
import subprocess
import sys

import pytest

from sn1.cli import build_parser
from sn1.config import DEFAULT_NETUID, DEFAULT_NETWORK, Bounded
from sn1.testing import ROOT


def _commands(parser: argparse.ArgumentParser, path=()):
    """(command path, parser) for every (sub-)command."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, path + (name,))


def _standalone_parsers():
    from sn1.client import build_parser as client_parser
    from sn1.miner.cli import _build as miner_parser
    from sn1.miner.backends import BACKENDS

    yield ("scripts/client.py",), client_parser("client.py")
    for backend in BACKENDS:
        try:
            yield (f"miner --backend {backend}",), miner_parser(backend, backend, "miner.py")
        except ImportError:     # an optional backend not installed (vllm)
            continue


ALL = list(_commands(build_parser())) + list(_standalone_parsers())


def _numeric_actions():
    for path, parser in ALL:
        for action in parser._actions:
            if action.option_strings and (action.type in (int, float) or isinstance(action.type, Bounded)):
                yield path, parser, action


NUMERIC = list(_numeric_actions())


def test_there_are_many_numeric_flags_and_every_one_has_a_range():
    assert len(NUMERIC) > 60
    unchecked = [f"{' '.join(path)} {a.option_strings[0]}" for path, _, a in NUMERIC
                 if not isinstance(a.type, Bounded)]
    assert unchecked == []


def _bad_values(t: Bounded) -> list[str]:
    bad = ["abc", "nan", "inf"]
    if t.low is not None:
        bad.append(str(t.low) if t.low_open else str(t.low - 1))
    if t.high is not None:
        bad.append(str(t.high) if t.high_open else str(t.high + 1))
    if t.kind is int:
        bad.append("1.5")
    return bad


@pytest.mark.parametrize("path,parser,action", NUMERIC,
                         ids=[f"{'/'.join(p)}:{a.option_strings[0]}" for p, _, a in NUMERIC])
def test_out_of_range_values_are_one_line_and_exit_2(path, parser, action, capsys):
    flag = action.option_strings[0]
    for bad in _bad_values(action.type):
        with pytest.raises(SystemExit) as exc:
            parser.parse_args([flag, bad])
        assert exc.value.code == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1, err
        assert err.startswith("error: ") and flag in err and bad in err, err
        assert action.type.describe() in err, err


def test_boundary_values_are_accepted():
    for path, parser, action in NUMERIC:
        t = action.type
        for good in (t.low, t.high):
            if good is not None:
                good = good + (1 if t.low_open and good == t.low else 0) - (1 if t.high_open and good == t.high else 0)
                assert t(str(t.kind(good))) == good, (path, action.option_strings[0], good)


def test_one_set_of_defaults_across_commands():
    seen = {}
    for path, parser in ALL:
        for action in parser._actions:
            if action.dest in ("netuid", "subtensor.network"):
                seen.setdefault(action.dest, set()).add(action.default)
    assert seen == {"netuid": {DEFAULT_NETUID}, "subtensor.network": {DEFAULT_NETWORK}}


@pytest.mark.parametrize("argv,flag,expect", [
    (["-m", "sn1.cli", "miner", "--backend", "echo", "--axon.port", "99999"], "--axon.port", "65535"),
    ([str(ROOT / "neurons/validator.py"), "--neuron.timeout", "-5"], "--neuron.timeout", "> 0"),
    ([str(ROOT / "neurons/validator.py"), "--neuron.sample_size", "-1"], "--neuron.sample_size", ">= 1"),
    ([str(ROOT / "neurons/validator.py"), "--neuron.timeout", "0"], "--neuron.timeout", "> 0"),
    ([str(ROOT / "scripts/client.py"), "--uids", "1", "--timeout", "0"], "--timeout", "> 0"),
    ([str(ROOT / "neurons/miners/test/echo.py"), "--neuron.streaming_batch_size", "0"],
     "--neuron.streaming_batch_size", ">= 1"),
    (["-m", "sn1.cli", "sandbox", "init", "--max-weight-limit", "2"], "--max-weight-limit", "(0, 1]"),
    (["-m", "sn1.cli", "client", "--uids", "1", "--network", "mainnet"], "--network", "sandbox"),
])
def test_commands_refuse_bad_values_before_any_work(argv, flag, expect):
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and flag in lines[0] and expect in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_help_shows_defaults():
    proc = subprocess.run([sys.executable, "-m", "sn1.cli", "client", "--help"], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert f"subnet uid (102: the streaming testnet) (default: {DEFAULT_NETUID})" in text
    assert f"(default: {DEFAULT_NETWORK})" in text and "(default: 10.0)" in text
    proc = subprocess.run([sys.executable, str(ROOT / "neurons/validator.py"), "--help"], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    text = " ".join(proc.stdout.split())
    assert "--neuron.max_steps" in text and "steps to run in this process" in text and "(default: 0)" in text
