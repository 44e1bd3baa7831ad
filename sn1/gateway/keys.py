"""API keys: created once and shown once, stored only as sha256 hashes.

A key is ``sn1-`` plus 43 url-safe characters (256 random bits from
``secrets``), so a plain sha256 is enough (no salt or slow hash needed: nobody
can guess such a key, and the hash table only helps with guessable ones).
Lookup goes by hash, then the stored hash is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import time
from dataclasses import dataclass

from ..errors import UsageError

PREFIX = "sn1-"
SHOWN = 10                  # characters of a key kept for listings ("sn1-AbC123")
MAX_NAME = 64
DEFAULT_RPM = 60
DEFAULT_TOKENS_PER_DAY = 100_000


@dataclass(frozen=True)
class Key:
    id: int
    name: str
    prefix: str
    rpm: int
    tokens_per_day: int
    created: float
    revoked: float | None = None
    hash: str = ""          # sha256 hex of the key's text: its identity in the shared store


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _row(r) -> Key:
    return Key(r["id"], r["name"], r["prefix"], r["rpm"], r["tokens_per_day"], r["created"], r["revoked"], r["hash"])


def check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME or not name.isprintable():
        raise UsageError(f"--name must be 1-{MAX_NAME} printable characters")
    return name


def check_limits(rpm: int | None, tokens_per_day: int | None) -> None:
    if rpm is not None and rpm < 1:
        raise UsageError("--rpm must be >= 1")
    if tokens_per_day is not None and tokens_per_day < 1:
        raise UsageError("--tokens-per-day must be >= 1")


def new_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def looks_like_key(key: str) -> bool:
    return key.startswith(PREFIX) and len(key) <= 128


def create(conn: sqlite3.Connection, name: str, rpm: int = DEFAULT_RPM,
           tokens_per_day: int = DEFAULT_TOKENS_PER_DAY) -> tuple[str, Key]:
    """A new key (the only time its text exists) and its record; UsageError if the name is taken."""
    name = check_name(name)
    check_limits(rpm, tokens_per_day)
    key = new_key()
    now = time.time()
    try:
        with conn:
            cur = conn.execute("INSERT INTO keys (name, prefix, hash, rpm, tokens_per_day, created) "
                               "VALUES (?, ?, ?, ?, ?, ?)", (name, key[:SHOWN], hash_key(key), rpm,
                                                             tokens_per_day, now))
    except sqlite3.IntegrityError:
        raise UsageError(f"an active key named {name!r} exists; revoke it first or choose another name") from None
    return key, Key(cur.lastrowid, name, key[:SHOWN], rpm, tokens_per_day, now, None, hash_key(key))


def lookup(conn: sqlite3.Connection, key: str) -> Key | None:
    """The active key ``key`` names, or None (unknown or revoked).

    One indexed read of a few microseconds: revocations count from the next request.
    """
    if not looks_like_key(key):
        return None
    h = hash_key(key)
    r = conn.execute("SELECT * FROM keys WHERE hash = ? AND revoked IS NULL", (h,)).fetchone()
    if r is None or not hmac.compare_digest(r["hash"], h):
        return None
    return _row(r)


def list_keys(conn: sqlite3.Connection, *, include_revoked: bool = False) -> list[Key]:
    q = "SELECT * FROM keys" + ("" if include_revoked else " WHERE revoked IS NULL") + " ORDER BY id"
    return [_row(r) for r in conn.execute(q)]


def revoke(conn: sqlite3.Connection, name: str) -> Key:
    """Revoke the active key named ``name``; UsageError if there is none."""
    with conn:
        r = conn.execute("SELECT * FROM keys WHERE name = ? AND revoked IS NULL", (name,)).fetchone()
        if r is None:
            raise UsageError(f"no active key named {name!r} (see `sn1 gateway keys list`)")
        conn.execute("UPDATE keys SET revoked = ? WHERE id = ?", (time.time(), r["id"]))
    return _row(r)


def update(conn: sqlite3.Connection, name: str, *, rpm: int | None = None,
           tokens_per_day: int | None = None) -> Key:
    """Change the limits of the active key named ``name`` (from its next request); UsageError if none."""
    check_limits(rpm, tokens_per_day)
    if rpm is None and tokens_per_day is None:
        raise UsageError("nothing to update: give --rpm and/or --tokens-per-day")
    with conn:
        r = conn.execute("SELECT * FROM keys WHERE name = ? AND revoked IS NULL", (name,)).fetchone()
        if r is None:
            raise UsageError(f"no active key named {name!r} (see `sn1 gateway keys list`)")
        conn.execute("UPDATE keys SET rpm = COALESCE(?, rpm), tokens_per_day = COALESCE(?, tokens_per_day) "
                     "WHERE id = ?", (rpm, tokens_per_day, r["id"]))
        r = conn.execute("SELECT * FROM keys WHERE id = ?", (r["id"],)).fetchone()
    return _row(r)
