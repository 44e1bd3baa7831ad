"""Admission to generation: a bounded number of slots, the waiting line ordered by stake.

At most ``max_concurrent`` generations run; up to ``max_queue`` requests wait,
and a freed slot goes to the waiter with the highest priority (the caller's
stake), first come first served among equals. A full line refuses at once
(the server answers 429). A waiter that gives up (deadline, disconnect) is
cancelled and leaves the line; a slot is never lost.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools


class QueueFull(Exception):
    pass


class PriorityGate:
    def __init__(self, max_concurrent: int, max_queue: int):
        if max_concurrent < 1 or max_queue < 0:
            raise ValueError("max_concurrent must be >= 1 and max_queue >= 0")
        self.max_concurrent = max_concurrent
        self.max_queue = max_queue
        self.active = 0
        self.waiting = 0
        self._heap: list[tuple[float, int, asyncio.Future]] = []
        self._seq = itertools.count()

    def try_acquire(self) -> bool:
        """Take a free slot at once (True), or say the caller must wait (False);
        QueueFull if the line is already full."""
        if self.active < self.max_concurrent and self.waiting == 0:
            self.active += 1
            return True
        if self.waiting >= self.max_queue:
            raise QueueFull(f"{self.active} generations running and {self.waiting} waiting")
        return False

    async def acquire(self, priority: float) -> None:
        """Wait for a slot (QueueFull at once if the line is full); cancel-safe."""
        if self.try_acquire():
            return
        fut = asyncio.get_running_loop().create_future()
        heapq.heappush(self._heap, (-float(priority), next(self._seq), fut))
        self.waiting += 1
        try:
            await fut          # release() hands its slot over by resolving fut
        except BaseException:
            if fut.done() and not fut.cancelled():
                self.release()   # the slot arrived together with our cancellation: pass it on
            else:
                fut.cancel()
                self.waiting -= 1
                self._compact()
            raise

    def release(self) -> None:
        while self._heap:
            _, _, fut = heapq.heappop(self._heap)
            if fut.done():       # a waiter that gave up
                continue
            self.waiting -= 1
            fut.set_result(None)   # the slot moves to it; `active` is unchanged
            return
        self.active -= 1

    def _compact(self) -> None:
        # Drop given-up waiters so the heap stays proportional to the live line.
        if len(self._heap) > 2 * self.waiting + 32:
            self._heap = [e for e in self._heap if not e[2].done()]
            heapq.heapify(self._heap)
