"""Per-key limits: requests per minute and tokens per (UTC) day.

In memory, in the one gateway process (the hot path takes no lock and does
no I/O); the day's token use is seeded from the records at start, so a
restart does not reset it.

Tokens are the miners' completion tokens. A request reserves its
``max_tokens`` (cut to what is left of the day's budget) before any miner
work and gives back what it did not use, so concurrent requests can never
spend more than the budget together.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field

WINDOW = 60.0
DAY = 86400.0


class LimitExceeded(Exception):
    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.message = message
        self.retry_after = max(1, math.ceil(retry_after))


def day_of(t: float) -> int:
    return int(t // DAY)


@dataclass
class _Usage:
    recent: deque = field(default_factory=deque)   # times of requests within the last minute
    day: int = 0
    used: int = 0          # tokens spent today (finished requests)
    reserved: int = 0      # tokens held by requests in flight


class Limits:
    def __init__(self, clock=time.time):
        self.clock = clock
        self._usage: dict[str, _Usage] = {}

    def seed(self, key_name: str, tokens_today: int) -> None:
        u = self._get(key_name, self.clock())
        u.used = max(u.used, int(tokens_today))

    def _get(self, name: str, now: float) -> _Usage:
        u = self._usage.get(name)
        if u is None:
            u = self._usage[name] = _Usage(day=day_of(now))
        if u.day != day_of(now):
            u.day, u.used = day_of(now), 0
        return u

    def admit(self, key, want_tokens: int) -> int:
        """Count one request of ``key`` and reserve tokens for it; returns how many were reserved
        (at most ``want_tokens``). LimitExceeded (with seconds to wait) before anything is counted."""
        now = self.clock()
        u = self._get(key.name, now)
        recent = u.recent
        while recent and recent[0] <= now - WINDOW:
            recent.popleft()
        if len(recent) >= key.rpm:
            raise LimitExceeded(f"rate limit: key {key.name!r} may send {key.rpm} requests per minute",
                                recent[0] + WINDOW - now)
        left = key.tokens_per_day - u.used - u.reserved
        if left <= 0:
            raise LimitExceeded(f"token limit: key {key.name!r} has used its {key.tokens_per_day} tokens "
                                f"for today (UTC)", (u.day + 1) * DAY - now)
        recent.append(now)
        grant = min(want_tokens, left)
        u.reserved += grant
        return grant

    def settle(self, key, reserved: int, used: int) -> None:
        """A request ended: release its reservation and count what it really used."""
        u = self._get(key.name, self.clock())
        u.reserved = max(0, u.reserved - reserved)
        u.used += max(0, used)

    def used_today(self, key_name: str) -> int:
        u = self._usage.get(key_name)
        return 0 if u is None or u.day != day_of(self.clock()) else u.used
