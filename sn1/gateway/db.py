"""The gateway's SQLite file under ``--gateway.path``: API keys and request records.

WAL mode: the server reads keys while `sn1 gateway keys ...` writes them, and
readers never wait for a writer. Every change is one transaction (atomic on disk).
"""

from __future__ import annotations

import os
import sqlite3

from ..config import expand
from ..errors import UsageError

DB_NAME = "gateway.db"

SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,            -- the first characters, to recognise a key in listings
    hash TEXT NOT NULL UNIQUE,       -- sha256 hex of the whole key; the key itself is never stored
    rpm INTEGER NOT NULL,
    tokens_per_day INTEGER NOT NULL,
    created REAL NOT NULL,
    revoked REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS keys_active_name ON keys(name) WHERE revoked IS NULL;
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    key_name TEXT,
    uid INTEGER,                     -- the miner that answered (NULL: none did)
    status TEXT NOT NULL,            -- ok | HTTP status of a refusal | the failure's kind
    ttft REAL,
    tokens INTEGER NOT NULL DEFAULT 0,
    duration REAL NOT NULL,
    failed_uids TEXT NOT NULL DEFAULT '',   -- miners tried before, comma-separated
    message TEXT NOT NULL DEFAULT '',
    prompt TEXT,                     -- only with --gateway.log_content
    answer TEXT
);
CREATE INDEX IF NOT EXISTS records_key_time ON records(key_name, time);
"""


def db_path(folder: str) -> str:
    return os.path.join(expand(folder), DB_NAME)


def connect(folder: str, *, check_same_thread: bool = True) -> sqlite3.Connection:
    """Open (creating folder and schema) the gateway's database; UsageError if it cannot."""
    path = db_path(folder)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        conn = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=check_same_thread)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.executescript("BEGIN;" + SCHEMA + "COMMIT;")
    except (OSError, sqlite3.Error) as e:
        raise UsageError(f"cannot open the gateway database {path}: {e}") from None
    conn.row_factory = sqlite3.Row
    return conn
