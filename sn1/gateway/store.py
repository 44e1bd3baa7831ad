"""Where the gateway keeps its state: keys, per-key limits and usage, records, shared routing state.

The chat endpoint talks to a ``Store`` only:

- ``await lookup(token)``: the active key, or None (401); StoreUnavailable (503) when the state
  cannot be reached;
- ``await admit(key, want_tokens)``: counts one request and reserves tokens, or raises
  LimitExceeded (429), KeyRevoked (401) or StoreUnavailable (503) with nothing counted;
- ``await settle(key, reserved, used)``: the request ended (never raises);
- ``record(rec)``: one row per request, never blocks;
- ``health()``: {} while all is well, else ``{"status": ..., "store": why}``.

Two implementations:

- ``SqliteStore`` (the default): keys in the SQLite file under ``--gateway.path``, limits counted
  in the process's memory. One gateway process per database.
- ``RedisStore`` (``--gateway.redis_url``, in ``store_redis``): everything shared in Redis, so any
  number of replicas act as one gateway.
"""

from __future__ import annotations

import time

from . import keys as keys_mod
from .limits import DAY, Limits
from .records import Record, RecordWriter, recent_outcomes, tokens_today


class StoreUnavailable(Exception):
    """The shared state cannot be reached: the request is refused (503), nothing is counted."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class KeyRevoked(Exception):
    """The key was revoked between its lookup and its admission (e.g. during a slow upload): 401."""


class Store:
    replica = ""

    async def start(self, router) -> None:
        """Seed ``router`` (reliability) and start any background work."""

    async def close(self) -> None:
        pass

    async def lookup(self, token: str):
        raise NotImplementedError

    async def admit(self, key, want_tokens: int) -> int:
        raise NotImplementedError

    async def settle(self, key, reserved: int, used: int) -> None:
        raise NotImplementedError

    def record(self, rec: Record) -> None:
        raise NotImplementedError

    def health(self) -> dict:
        return {}


class SqliteStore(Store):
    """Keys in SQLite, limits in this process's memory (seeded from the records at start)."""

    def __init__(self, conn, folder: str, *, clock=time.time):
        self.conn = conn
        self.limits = Limits(clock=clock)
        for name, used in tokens_today(conn, clock() // DAY * DAY).items():
            self.limits.seed(name, used)
        self.records = RecordWriter(folder)

    async def start(self, router) -> None:
        for uid, ok in recent_outcomes(self.conn):
            router.outcome(uid, ok)

    async def close(self) -> None:
        self.records.close()

    async def lookup(self, token: str):
        return keys_mod.lookup(self.conn, token)

    async def admit(self, key, want_tokens: int) -> int:
        return self.limits.admit(key, want_tokens)

    async def settle(self, key, reserved: int, used: int) -> None:
        self.limits.settle(key, reserved, used)

    def record(self, rec: Record) -> None:
        self.records.add(rec)
