"""Bad flags of `sn1 miner`, `sn1 client`, scripts/client.py and the miner scripts: one line, exit 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sn1.testing import ROOT

SN1 = ["-m", "sn1.cli"]

BAD = [
    (SN1 + ["miner", "--backend", "echo", "--bogus"], "error: sn1: unrecognized arguments: --bogus"),
    (SN1 + ["miner", "--backend", "echo", "--axon.port", "x"],
     "error: sn1 miner: argument --axon.port: expected an integer in [0, 65535] (0: any free port), got 'x'"),
    (SN1 + ["miner"], "error: sn1 miner: the following arguments are required: --backend"),
    (SN1 + ["miner", "--backend", "nope"], "error: sn1 miner: argument --backend: invalid choice: 'nope'"),
    (SN1 + ["miner", "--backend", "echo", "--neuron.body_timeout", "0"],
     "error: sn1 miner: argument --neuron.body_timeout: must be > 0, got 0"),
    (SN1 + ["miner", "--backend", "echo", "--neuron.max_connections", "0"],
     "error: sn1 miner: argument --neuron.max_connections: must be >= 1, got 0"),
    (SN1 + ["client"], "error: sn1 client: the following arguments are required: --uids"),
    (SN1 + ["client", "--uids"], "error: sn1 client: argument --uids: expected at least one argument"),
    (SN1 + ["client", "--uids", "1", "--timeout", "soon"],
     "error: sn1 client: argument --timeout: expected a number > 0, got 'soon'"),
    (SN1 + ["client", "--uids", "1", "--bogus"], "error: sn1: unrecognized arguments: --bogus"),
    (["scripts/client.py", "--uids", "x"],
     "error: client.py: argument --uids: expected an integer in [0, 65535], got 'x'"),
    (["scripts/client.py", "--uids", "1", "--bogus"], "error: client.py: unrecognized arguments: --bogus"),
    (["scripts/client.py"], "error: client.py: the following arguments are required: --uids"),
    (["neurons/miners/test/echo.py", "--bogus"], "error: echo.py: unrecognized arguments: --bogus"),
    (["neurons/miners/test/echo.py", "--backend"], "error: echo.py: argument --backend: expected one argument"),
]


def run(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=ROOT, timeout=60)


@pytest.mark.parametrize("args,line", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_flags_print_one_line_and_exit_2(args, line):
    p = run(args)
    assert p.returncode == 2, p.stderr
    assert p.stdout == ""
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(line), p.stderr


@pytest.mark.parametrize("args,flags", [
    (SN1 + ["miner", "--help"], ["--neuron.body_timeout", "--neuron.max_connections", "--axon.port"]),
    (SN1 + ["client", "--help"], ["--uids", "--wallet_name", "--sandbox.path"]),
    (["scripts/client.py", "--help"], ["--uids", "--wallet_name", "--sandbox.path"]),
    (["neurons/miners/test/echo.py", "--help"], ["--neuron.body_timeout", "--neuron.max_connections"]),
])
def test_help_still_prints_full_help(args, flags):
    p = run(args)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert p.stdout.startswith("usage: ") and len(p.stdout.splitlines()) > 20
    for f in flags:
        assert f in p.stdout
