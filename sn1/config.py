"""Command-line configuration with the seed's dotted flags (``--wallet.name``).

Every concern adds its own flags with an ``add_*_args(parser)`` function next to
its code; this module holds the shared ones and turns the flat argparse result
into a nested namespace: ``config.wallet.name``, ``config.neuron.timeout``.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from types import SimpleNamespace
from typing import Any, Sequence

DEFAULT_WALLET_PATH = "~/.bittensor/wallets"
DEFAULT_SANDBOX_PATH = "~/.sn1/sandbox"


def flag(parser: argparse.ArgumentParser, name: str, **kw: Any) -> None:
    """Add ``--a.b`` stored under dest ``a.b`` (ignored if already defined)."""
    if any(name in a.option_strings for a in parser._actions):
        return
    parser.add_argument(name, dest=name.lstrip("-"), **kw)


class OneLineErrorParser(argparse.ArgumentParser):
    """An ArgumentParser whose mistakes print one line, ``error: PROG: MESSAGE``, and exit 2
    (like every other bad input) instead of the whole usage; ``--help`` still prints full help.
    Sub-parsers made through its ``add_subparsers()`` are of this class too."""

    def error(self, message: str):
        one_line_error(self, message)


def one_line_error(parser: argparse.ArgumentParser, message: str):
    print(f"error: {parser.prog}: {message}", file=sys.stderr)
    sys.exit(2)


def one_line_errors(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The same for a parser made elsewhere (``subparsers.add_parser(...)`` of a plain parser)."""
    parser.error = lambda message: one_line_error(parser, message)   # type: ignore[method-assign]
    return parser


def add_wallet_args(parser: argparse.ArgumentParser) -> None:
    flag(parser, "--wallet.name", default="default", help="wallet (coldkey) name")
    flag(parser, "--wallet.hotkey", default="default", help="hotkey name")
    flag(parser, "--wallet.path", default=DEFAULT_WALLET_PATH, help="wallets folder")


def add_chain_args(parser: argparse.ArgumentParser, default_netuid: int = 1) -> None:
    flag(parser, "--netuid", type=int, default=default_netuid, help="subnet uid")
    flag(parser, "--subtensor.network", default="finney",
         help="finney | test | local | sandbox")
    flag(parser, "--subtensor.chain_endpoint", default=None,
         help="websocket endpoint of a subtensor node (overrides the network's)")
    flag(parser, "--sandbox.path", default=DEFAULT_SANDBOX_PATH,
         help="folder holding the sandbox chain state")


def add_logging_args(parser: argparse.ArgumentParser) -> None:
    flag(parser, "--logging.debug", action="store_true", help="debug logs")
    flag(parser, "--logging.trace", action="store_true", help="trace logs (very verbose)")
    flag(parser, "--logging.logging_dir", default="~/.sn1/logs", help="where neurons keep logs and state")


def nest(ns: argparse.Namespace | dict) -> SimpleNamespace:
    """{'wallet.name': 'w'} -> namespace(wallet=namespace(name='w'))."""
    flat = vars(ns) if isinstance(ns, argparse.Namespace) else dict(ns)
    root = SimpleNamespace()
    for key, value in flat.items():
        node = root
        *parents, leaf = key.split(".")
        for p in parents:
            if not hasattr(node, p):
                setattr(node, p, SimpleNamespace())
            node = getattr(node, p)
        setattr(node, leaf, value)
    return root


def get(config: SimpleNamespace, dotted: str, default: Any = None) -> Any:
    node: Any = config
    for part in dotted.split("."):
        node = getattr(node, part, None)
        if node is None:
            return default
    return node


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> SimpleNamespace:
    config = nest(parser.parse_args(argv))
    setup_logging(config)
    return config


TRACE = 5
logging.addLevelName(TRACE, "TRACE")


def setup_logging(config: SimpleNamespace) -> None:
    if get(config, "logging.trace"):
        level = TRACE
    elif get(config, "logging.debug"):
        level = logging.DEBUG
    else:
        level = logging.INFO
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)-5s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # Third-party chatter stays at WARNING unless tracing.
    if level > TRACE:
        for noisy in ("httpx", "httpcore", "urllib3", "uvicorn.access", "bittensor",
                      "sentence_transformers", "transformers"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def expand(path: str) -> str:
    return os.path.abspath(os.path.expanduser(path))
