"""`sn1 validator` (and `python neurons/validator.py`)."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("validator", help="run a validator",
                              description="Query miners, score their streams, set weights.")
    from .config import add_args

    add_args(p)
    p.set_defaults(func=_run)
    return p


def _run(args) -> int:
    import asyncio

    from ..config import nest, setup_logging
    from .loop import run

    config = nest(args)
    setup_logging(config)
    return asyncio.run(run(config))


def main(argv=None) -> int:
    from ..config import OneLineErrorParser
    from ..errors import run

    parser = OneLineErrorParser(prog="neurons/validator.py",
                                description="SN1 validator: query, score, set weights.")
    from .config import add_args

    add_args(parser)
    return run(_run, parser.parse_args(argv))
