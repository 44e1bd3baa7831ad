"""One row per organic request, written by a thread of its own (the event loop never waits on disk).

The queue is bounded: if the disk cannot keep up, rows are dropped and
counted rather than piling up in memory.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field

from . import db

log = logging.getLogger("sn1.gateway")

MAX_QUEUE = 10_000
COLUMNS = ("time", "key_name", "uid", "status", "ttft", "tokens", "duration", "failed_uids", "message",
           "prompt", "answer")


@dataclass
class Record:
    """What happened to one request; filled in as it goes."""

    time: float = field(default_factory=time.time)
    key_name: str | None = None
    uid: int | None = None
    status: str = "started"
    ttft: float | None = None
    tokens: int = 0
    duration: float = 0.0
    failed: list[tuple[int, str]] = field(default_factory=list)    # (uid, kind) tried before
    message: str = ""
    prompt: str | None = None
    answer: str | None = None

    def row(self) -> tuple:
        return (self.time, self.key_name, self.uid, self.status, self.ttft, self.tokens, self.duration,
                ",".join(str(u) for u, _ in self.failed), self.message, self.prompt, self.answer)


class RecordWriter:
    def __init__(self, folder: str):
        self.folder = folder
        self.q: queue.Queue = queue.Queue(MAX_QUEUE)
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="gateway-records", daemon=True)
        self._thread.start()

    def add(self, rec: Record) -> None:
        try:
            self.q.put_nowait(rec.row())
        except queue.Full:
            self.dropped += 1

    def close(self, timeout: float = 5.0) -> None:
        self.q.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        conn = db.connect(self.folder, check_same_thread=False)
        sql = f"INSERT INTO records ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
        stop = False
        while not stop:
            rows = [self.q.get()]
            while len(rows) < 500:
                try:
                    rows.append(self.q.get_nowait())
                except queue.Empty:
                    break
            if None in rows:
                stop = True
                rows = [r for r in rows if r is not None]
            try:
                with conn:
                    conn.execute("BEGIN")
                    conn.executemany(sql, rows)
            except Exception as e:   # a full disk must not take the gateway down
                log.error("could not write %d records: %s", len(rows), e)
        conn.close()


def tokens_today(conn, since: float) -> dict[str, int]:
    """Tokens each key used since ``since`` (the start of the UTC day)."""
    return {r[0]: r[1] for r in conn.execute(
        "SELECT key_name, SUM(tokens) FROM records WHERE time >= ? AND key_name IS NOT NULL GROUP BY key_name",
        (since,))}


def recent_outcomes(conn, limit: int = 2000) -> list[tuple[int, bool]]:
    """(uid, ok) of the latest attempts, oldest first: seeds the router's reliability."""
    out: list[tuple[int, bool]] = []
    rows = conn.execute("SELECT uid, status, failed_uids FROM records WHERE uid IS NOT NULL OR failed_uids != '' "
                        "ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
    for uid, status, failed in reversed(rows):
        out += [(int(u), False) for u in failed.split(",") if u]
        if uid is not None:
            out.append((uid, status != "broken"))
    return out
