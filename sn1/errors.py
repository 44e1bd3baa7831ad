"""Errors a user can cause. The CLI prints them as one line and exits 2."""


class UsageError(Exception):
    """Bad input: unknown wallet, bad flag value, corrupted state file...

    The message names the problem in one line; nothing was changed.
    """

    exit_code = 2
