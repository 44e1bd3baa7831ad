"""Errors a user can cause. The CLI prints them as one line and exits 2."""

from __future__ import annotations

import sys


class UsageError(Exception):
    """Bad input: unknown wallet, bad flag value, corrupted state file...

    The message names the problem in one line; nothing was changed.
    """

    exit_code = 2


def one_line(e: BaseException | str, limit: int | None = None) -> str:
    """An error (or any text) as one printable line, cut to ``limit`` chars if given.

    Engines' messages carry tracebacks and newlines; a miner's error body may be
    huge or full of terminal escapes; all of it ends up in logs and tables.
    """
    text = str(e)
    if limit is not None:
        text = text[:limit * 4]
    text = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    if not text and isinstance(e, BaseException):
        text = type(e).__name__
    return text if limit is None or len(text) <= limit else text[:limit - 1] + "…"


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
