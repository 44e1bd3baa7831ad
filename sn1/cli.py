"""`sn1` — one command for every part of the subnet.

Each concern defines its own sub-command in a small ``cli`` module with
``add_parser(subparsers)``; those modules import nothing heavy at top level,
so `sn1 --help` stays instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from . import __version__
from .config import OneLineErrorParser
from .errors import run

COMMANDS = [
    ("sandbox", "sn1.chain.cli"),
    ("miner", "sn1.miner.cli"),
    ("client", "sn1.client"),
    ("validator", "sn1.validator.cli"),
    ("tasks", "sn1.tasks.cli"),
    ("demo", "sn1.demo"),
    ("gateway", "sn1.gateway.cli"),
    ("leaderboard", "sn1.validator.leaderboard"),
]


def build_parser() -> argparse.ArgumentParser:
    # One-line errors, also for sub-commands: their sub-parsers inherit the class, and
    # unknown flags of a sub-command are reported by this top-level parser.
    parser = OneLineErrorParser(prog="sn1", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"sn1 {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for _name, module in COMMANDS:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name == module:   # sub-command not built yet
                continue
            raise
        mod.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return run(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
