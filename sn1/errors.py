"""Errors a user can cause. The CLI prints them as one line and exits 2."""


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
