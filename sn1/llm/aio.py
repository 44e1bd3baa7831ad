"""THE bridge from blocking engines to asyncio.

Engines generate in blocking code (llama.cpp, torch, a sync HTTP client).
``astream`` runs one generation in its own worker thread and hands the pieces
to the event loop through a bounded buffer:

- the event loop never blocks: the thread posts pieces with
  ``call_soon_threadsafe``;
- the buffer is bounded (``buffer`` pieces): a slow reader makes the thread
  wait, so nothing piles up without limit;
- closing the iterator (``aclose()``, ``break`` out of ``async for``, task
  cancellation, an exception in the reader) sets the generation's cancel
  event: the engine stops at its next token and the thread stops posting, so
  at most the one token already being computed is produced after that.

A dedicated thread per generation (rather than the loop's default executor)
keeps generations from starving other ``to_thread`` users and needs no tuning:
the miner already bounds how many generations run at once.
"""

from __future__ import annotations

import asyncio
import threading
from typing import AsyncIterator

from .base import Engine, GenParams, LLMError, Messages

DEFAULT_BUFFER = 64       # pieces held between the worker thread and the reader
_POLL_S = 0.05            # how often a thread waiting for buffer room looks at the cancel event


def _as_llm_error(engine: Engine, exc: BaseException) -> LLMError:
    if isinstance(exc, LLMError):
        return exc
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    name = getattr(engine, "name", type(engine).__name__)
    return LLMError(f"{name} engine failed: {type(exc).__name__}" + (f": {detail}" if detail else ""))


async def astream(engine: Engine, messages: Messages, params: GenParams | None = None, *,
                  buffer: int = DEFAULT_BUFFER) -> AsyncIterator[str]:
    """Stream ``engine.stream(messages, params)`` without blocking the loop; cancellable.

    Raises LLMError (one line) when the engine fails.
    """
    params = params or GenParams()
    loop = asyncio.get_running_loop()
    pieces: asyncio.Queue = asyncio.Queue()     # bounded by `room` below
    room = threading.Semaphore(buffer)
    cancel = threading.Event()

    def post(kind: str, value=None) -> None:
        try:
            loop.call_soon_threadsafe(pieces.put_nowait, (kind, value))
        except RuntimeError:        # loop closed: nobody is listening any more
            cancel.set()

    def produce() -> None:
        try:
            it = engine.stream(messages, params, cancel)
            try:
                for piece in it:
                    if not piece and not getattr(piece, "logprobs", None):
                        continue
                    while not room.acquire(timeout=_POLL_S):
                        if cancel.is_set():
                            return
                    if cancel.is_set():
                        return
                    post("piece", piece)
                    if cancel.is_set():
                        return
            finally:
                close = getattr(it, "close", None)
                if close is not None:
                    close()     # a generator engine frees its model context here
            post("end")
        except BaseException as exc:    # noqa: BLE001 - handed to the reader
            post("error", exc)

    thread = threading.Thread(target=produce, daemon=True,
                              name=f"sn1-llm-{getattr(engine, 'name', 'engine')}")
    thread.start()
    try:
        while True:
            kind, value = await pieces.get()
            if kind == "piece":
                room.release()
                yield value
            elif kind == "end":
                return
            elif isinstance(value, LLMError):
                raise value
            else:
                raise _as_llm_error(engine, value) from value
    finally:
        cancel.set()


async def achat(engine: Engine, messages: Messages, params: GenParams | None = None) -> str:
    """The whole answer, generated off the loop; cancelling the awaiting task stops the generation."""
    gen = astream(engine, messages, params)
    try:
        return "".join([piece async for piece in gen])
    finally:
        await gen.aclose()
