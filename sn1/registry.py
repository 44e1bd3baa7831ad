"""Name -> "module:Class" tables resolved on first use, so choosing a light
part (an echo miner, the scripted LLM) never imports a heavy one (torch)."""

from __future__ import annotations

import importlib

from .errors import UsageError


def resolve(table: dict[str, str], name: str, what: str):
    """The class registered under ``name``; UsageError naming the choices if unknown."""
    try:
        target = table[name]
    except KeyError:
        raise UsageError(f"unknown {what} {name!r}; choose one of {', '.join(sorted(table))}") from None
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
