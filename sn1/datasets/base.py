"""The one dataset interface: ``Dataset.sample(rng) -> Context``.

A dataset draws candidates with the caller's ``random.Random`` (never the global
random state, so a seed reproduces the same material) and retries until a
candidate is valid, up to ``max_tries``. Live sources raise ``SourceError``
when the network fails; ``WithFallback`` turns that into offline material and
a logged warning.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

log = logging.getLogger(__name__)


class DatasetError(Exception):
    """No valid sample could be drawn (after the retry cap)."""


class SourceError(DatasetError):
    """A live source failed (network error, deadline, bad answer)."""


@dataclass
class Context:
    title: str
    topic: str
    subtopic: str
    content: str
    tags: list[str] = field(default_factory=list)
    source: str = ""
    extra: dict = field(default_factory=dict)
    # fetch_time (s), tries, dataset, and "fallback" (why) when live material was replaced
    stats: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Context":
        return cls(**{k: d[k] for k in ("title", "topic", "subtopic", "content")},
                   tags=list(d.get("tags", [])), source=d.get("source", ""),
                   extra=dict(d.get("extra", {})), stats=dict(d.get("stats", {})))


class Dataset:
    """Subclasses implement ``draw(rng)``: one candidate, or None when unusable."""

    name = "dataset"
    max_tries = 10

    def draw(self, rng: random.Random) -> Context | None:
        raise NotImplementedError

    def valid(self, ctx: Context) -> bool:
        return bool(ctx.content.strip())

    def sample(self, rng: random.Random, accept: Callable[[Context], bool] | None = None) -> Context:
        """A valid candidate; ``accept`` lets the caller (a task) refuse candidates it cannot use."""
        start = time.perf_counter()
        for tries in range(1, self.max_tries + 1):
            ctx = self.draw(rng)
            if ctx is not None and self.valid(ctx) and (accept is None or accept(ctx)):
                ctx.stats.update(dataset=self.name, tries=tries,
                                 fetch_time=round(time.perf_counter() - start, 4))
                return ctx
        raise DatasetError(f"{self.name}: no valid sample after {self.max_tries} tries")


class WithFallback(Dataset):
    """Live material when the source answers; offline material (and a warning) when not.

    After a failure the live source is skipped for ``cooldown`` seconds so a dead
    network does not cost a full deadline on every step.
    """

    def __init__(self, live: Dataset, offline: Dataset, cooldown: float = 60.0):
        self.live, self.offline, self.cooldown = live, offline, cooldown
        self.name = live.name
        self._down_until = 0.0
        self._lock = threading.Lock()

    def sample(self, rng: random.Random, accept: Callable[[Context], bool] | None = None) -> Context:
        with self._lock:
            down = time.monotonic() < self._down_until
        if down:
            reason = "live source skipped after a recent failure"
        else:
            try:
                return self.live.sample(rng, accept)
            except DatasetError as e:
                reason = str(e)
                log.warning("%s: live material unavailable (%s); using offline material",
                            self.live.name, reason)
                with self._lock:
                    self._down_until = time.monotonic() + self.cooldown
        ctx = self.offline.sample(rng, accept)
        ctx.stats["fallback"] = reason
        return ctx
