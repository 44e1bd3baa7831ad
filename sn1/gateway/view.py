"""The gateway's view of the metagraph: when it is read, and what /health and a 503 say.

With miners to route to, the metagraph is re-read every ``--gateway.metagraph_refresh``
seconds. With none (a gateway started before its miners, or every miner gone), it is
re-read every ``FAST_MIN`` seconds, backing off to ``FAST_MAX``, so a miner that starts
serving is routed to within seconds; a 503 then says when to retry (``Retry-After``: the
next read), and ``/health`` says that nothing can be served, and why.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

from ..errors import one_line

log = logging.getLogger("sn1.gateway")

FAST_MIN = 2.0      # seconds between reads while no miner can be routed to ...
FAST_MAX = 5.0      # ... growing to this
READ_TIMEOUT = 60.0


class MetagraphView:
    def __init__(self, chain, router, *, interval: float, on_read=None, clock=time.monotonic):
        self.chain, self.router, self.interval = chain, router, float(interval)
        self.on_read = on_read            # async callable(metagraph) after each read (validator scores)
        self.clock = clock
        self.block = None
        self.neurons = 0
        self.read_at = self.next_read = clock()
        self.error: str | None = None     # the last read's failure, None once a read succeeds
        self._fast = FAST_MIN

    def set(self, metagraph) -> None:
        self.router.update(metagraph)
        self.block, self.neurons = metagraph.block, metagraph.n
        self.read_at, self.error = self.clock(), None
        self.next_read = self.read_at + self._delay()

    def _delay(self) -> float:
        if self.router.candidates:
            self._fast = FAST_MIN
            return self.interval
        delay, self._fast = self._fast, min(FAST_MAX, self._fast * 1.5)
        return min(delay, self.interval)

    def retry_after(self) -> int:
        """Whole seconds until the next metagraph read (at least 1)."""
        return max(1, math.ceil(self.next_read - self.clock()))

    def no_miner(self) -> str:
        """Why nothing can be served, and when to retry (for a 503 and /health)."""
        if self.error:
            why = f"the metagraph could not be read ({self.error})"
        elif self.router.uids is not None:
            why = (f"none of the uids in --gateway.uids ({', '.join(map(str, sorted(self.router.uids)))}) "
                   f"serves an endpoint")
        else:
            why = f"none of the {self.neurons} neurons of the metagraph (block {self.block}) serves an endpoint"
        return f"no miner is serving: {why}; the gateway looks again in {self.retry_after()}s: retry then"

    def health(self) -> dict:
        out = {"status": "ok" if self.router.candidates else "unavailable",
               "miners": len(self.router.candidates), "block": self.block,
               "metagraph_age_s": round(self.clock() - self.read_at, 1),
               "next_metagraph_read_s": self.retry_after()}
        if not self.router.candidates:
            out["reason"] = self.no_miner()
        elif self.error:
            out["warning"] = f"the last metagraph read failed, routing on the one before: {self.error}"
        return out

    async def run(self) -> None:
        while True:
            await asyncio.sleep(max(0.0, self.next_read - self.clock()))
            try:
                mg = await asyncio.wait_for(asyncio.to_thread(self.chain.metagraph), READ_TIMEOUT)
            except Exception as e:    # keep routing with the last view
                self.error = one_line(e, 300) or type(e).__name__
                log.warning("metagraph refresh failed, keeping the last one: %s", self.error)
                self.next_read = self.clock() + self._delay()
            else:
                had = len(self.router.candidates)
                self.set(mg)
                if not had and self.router.candidates:
                    log.info("metagraph at block %s: %d miners to route to", mg.block, len(self.router.candidates))
                if self.on_read is not None:
                    try:
                        await self.on_read(mg)
                    except Exception as e:
                        log.warning("after the metagraph read: %s", one_line(e, 300))
