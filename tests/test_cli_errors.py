"""What `sn1` prints when a command fails in a way nobody foresaw: one line, or the traceback on request."""

import argparse

import pytest

from sn1.cli import run
from sn1.errors import UsageError


def _boom(args):
    raise OSError(28, "No space left on device\nsecond line")


def test_unexpected_failure_is_one_line_and_exit_1(capsys):
    args = argparse.Namespace(**{"logging.debug": False, "logging.trace": False})
    assert run(_boom, args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: OSError: ") and "No space left" in err
    assert "Traceback" not in err and "--logging.debug" in err


def test_debug_shows_the_traceback():
    args = argparse.Namespace(**{"logging.debug": True})
    with pytest.raises(OSError):
        run(_boom, args)


def test_usage_errors_stay_exit_2(capsys):
    def bad(args):
        raise UsageError("--x must be > 0")
    assert run(bad, argparse.Namespace()) == 2
    assert capsys.readouterr().err == "error: --x must be > 0\n"
