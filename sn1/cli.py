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
from .errors import UsageError

COMMANDS = [
    ("sandbox", "sn1.chain.cli"),
    ("miner", "sn1.miner.cli"),
    ("client", "sn1.client"),
    ("validator", "sn1.validator.cli"),
    ("tasks", "sn1.tasks.cli"),
    ("demo", "sn1.demo"),
    ("gateway", "sn1.gateway.cli"),
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


def run(func, args) -> int:
    """Run a command function; bad input becomes one line on stderr and exit 2."""
    _printable_streams()
    try:
        rc = func(args)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `sn1 ... | head`: the reader left; say nothing more.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:
        # A failure nobody foresaw (a peer, the disk, a bug): one line, unless the user asked
        # for details with --logging.debug / --logging.trace.
        flat = vars(args) if hasattr(args, "__dict__") else {}
        if flat.get("logging.debug") or flat.get("logging.trace"):
            raise
        from .errors import one_line

        print(f"error: {type(e).__name__}: {one_line(e, 500)} (--logging.debug shows the traceback)",
              file=sys.stderr)
        return 1
    return int(rc or 0)


def _printable_streams() -> None:
    # A miner's text printed to an ASCII terminal (LANG=C) or a pipe must never raise
    # UnicodeEncodeError: characters the stream cannot encode are written as \\u escapes.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError):   # replaced by a test harness, or already closed
            pass


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return run(args.func, args)


if __name__ == "__main__":
    sys.exit(main())
