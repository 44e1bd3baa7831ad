"""The async bridge: the loop stays free, the buffer is bounded, errors are one line, cancel stops the thread."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from sn1.llm.aio import achat, astream
from sn1.llm.base import GenParams, LLMError


class Ticking:
    """A blocking engine: one piece every `delay` seconds, recording what it produced and when."""

    name = "ticking"

    def __init__(self, n=1000, delay=0.0, fail_at=None, exc=RuntimeError("disk on fire\nsecond line")):
        self.n, self.delay, self.fail_at, self.exc = n, delay, fail_at, exc
        self.produced = 0
        self.produced_after_cancel = 0
        self.done = threading.Event()

    def stream(self, messages, params, cancel=None):
        cancel = cancel or threading.Event()
        try:
            for i in range(self.n):
                if cancel.is_set():
                    return
                if i == self.fail_at:
                    raise self.exc
                time.sleep(self.delay)      # blocking, like a model step
                self.produced += 1
                yield f"{i} "
        finally:
            self.done.set()

    def chat(self, messages, params):
        return "".join(self.stream(messages, params))


async def test_pieces_arrive_in_order_and_the_loop_is_never_blocked():
    engine = Ticking(n=20, delay=0.02)
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    t = asyncio.create_task(ticker())
    pieces = [p async for p in astream(engine, [], GenParams())]
    t.cancel()
    assert pieces == [f"{i} " for i in range(20)]
    assert ticks >= 20      # ~0.4 s of blocking work, yet the loop kept ticking


async def test_slow_reader_bounds_the_buffer():
    engine = Ticking(n=10_000)
    gen = astream(engine, [], GenParams(), buffer=8)
    first = await gen.__anext__()
    await asyncio.sleep(0.3)                # the thread runs ahead only until the buffer is full
    assert first == "0 "
    assert engine.produced <= 1 + 8 + 1
    await gen.aclose()
    assert await asyncio.to_thread(engine.done.wait, 2)
    assert engine.produced <= 1 + 8 + 1


async def test_aclose_stops_the_engine():
    engine = Ticking(n=10_000, delay=0.005)
    gen = astream(engine, [], GenParams())
    async for piece in gen:
        if piece == "10 ":
            break
    await gen.aclose()
    assert await asyncio.to_thread(engine.done.wait, 2)
    n = engine.produced
    await asyncio.sleep(0.1)
    assert engine.produced == n <= 10 + 64 + 2     # stopped soon after the reader left


async def test_engine_error_becomes_one_line_llm_error():
    engine = Ticking(n=10, fail_at=3)
    got = []
    with pytest.raises(LLMError) as err:
        async for piece in astream(engine, [], GenParams()):
            got.append(piece)
    assert got == ["0 ", "1 ", "2 "]
    assert str(err.value) == "ticking engine failed: RuntimeError: disk on fire"


async def test_llm_error_passes_through_unchanged():
    engine = Ticking(n=10, fail_at=0, exc=LLMError("openai: api.openai.com is rate limiting us (HTTP 429)"))
    with pytest.raises(LLMError, match=r"^openai: .*429\)$"):
        await achat(engine, [], GenParams())


async def test_achat_cancelled_stops_generation():
    engine = Ticking(n=10_000, delay=0.005)
    task = asyncio.create_task(achat(engine, [], GenParams()))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(engine.done.wait, 2)
    assert engine.produced < 100                   # ~20 in the 0.1 s before the cancel


async def test_concurrent_streams_are_independent():
    engines = [Ticking(n=30, delay=0.001) for _ in range(8)]

    async def collect(e):
        return [p async for p in astream(e, [], GenParams())]

    results = await asyncio.gather(*(collect(e) for e in engines))
    assert all(r == [f"{i} " for i in range(30)] for r in results)
