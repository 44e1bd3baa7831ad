"""Shared fixtures. Everything runs on 127.0.0.1 with real processes; nothing touches the network."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

# Never reach a hub or a remote service from tests.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

# A runner that starts the suite in the background (`cmd &` without job control, as CI scripts
# and nohup do) hands it SIGINT ignored, and every process the tests start inherits that: the
# tests that press Ctrl-C on a demo, a validator or `leaderboard --watch` would wait in vain.
# A handler set here becomes the default action in the children, as in a user's terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def wallet_path(tmp_path) -> Path:
    p = tmp_path / "wallets"
    p.mkdir()
    return p


@pytest.fixture
def make_wallet(wallet_path):
    """make_wallet(name, hotkey="default") -> bittensor.Wallet with unencrypted keys."""
    from sn1.testing import make_wallet as _make

    return lambda name, hotkey="default": _make(wallet_path, name, hotkey)


@pytest.fixture
def sandbox_path(tmp_path) -> Path:
    return tmp_path / "sandbox"
