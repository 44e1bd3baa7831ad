"""Shared fixtures. Everything runs on 127.0.0.1 with real processes; nothing touches the network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Never reach a hub or a remote service from tests.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")


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
