"""The OpenAI engine against a stand-in OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from sn1.errors import UsageError
from sn1.llm.aio import astream
from sn1.llm.base import GenParams, LLMError
from sn1.llm.openai_engine import OpenAIEngine
from sn1.testing import free_port

from .standin_openai import ANSWER, KEY

MSGS = [{"role": "user", "content": "What is the capital of France?"}]
PARAMS = GenParams(max_tokens=50, temperature=0.3, top_k=7)


def engine(standin, model="ok", key=KEY, timeout=5.0):
    return OpenAIEngine(model_id=model, base_url=standin.base_url, api_key=key, timeout=timeout)


def test_streams_the_answer_exactly(standin):
    pieces = list(engine(standin).stream(MSGS, PARAMS))
    assert len(pieces) > 5
    assert "".join(pieces) == ANSWER         # newline and multi-byte characters intact
    sent = standin.requests[-1]["body"]
    assert sent["stream"] is True and sent["max_tokens"] == 50 and sent["top_k"] == 7
    assert sent["messages"] == MSGS


def test_chat_returns_the_whole_answer(standin):
    assert engine(standin).chat(MSGS, PARAMS) == ANSWER


@pytest.mark.parametrize("model,key,pattern", [
    ("ok", "sk-wrong", r"rejected the API key \(HTTP 401\): Incorrect API key provided"),
    ("ratelimit", KEY, r"is rate limiting us \(HTTP 429\): Rate limit reached"),
    ("boom", KEY, r"server error \(HTTP 500\): The server had an error"),
])
def test_http_errors_become_one_line(standin, model, key, pattern):
    with pytest.raises(LLMError, match=pattern) as err:
        list(engine(standin, model, key).stream(MSGS, PARAMS))
    assert "\n" not in str(err.value) and str(err.value).startswith("openai: ")


@pytest.mark.parametrize("model", ["malformed", "badshape"])
def test_malformed_chunks_end_the_stream_with_an_error(standin, model):
    got = []
    with pytest.raises(LLMError, match="malformed chunk") as err:
        for piece in engine(standin, model).stream(MSGS, PARAMS):
            got.append(piece)
    assert got == ["Paris "]                # what came before the bad chunk was delivered
    assert "\n" not in str(err.value)


def test_stalled_stream_ends_after_the_read_timeout(standin):
    t0 = time.monotonic()
    got = []
    with pytest.raises(LLMError, match="stalled: no data within 1s"):
        for piece in engine(standin, "stall", timeout=1.0).stream(MSGS, PARAMS):
            got.append(piece)
    assert got == ["Paris "]
    assert time.monotonic() - t0 < 10


def test_cancel_during_a_stall_hangs_up_at_once(standin):
    """A stalled upstream must not hold the worker thread (and the remote generation) until the
    30 s read timeout: setting cancel drops the connection now and the stream ends quietly."""
    e = engine(standin, "stall", timeout=30.0)
    cancel = threading.Event()
    got, errors = [], []

    def run():
        try:
            for piece in e.stream(MSGS, PARAMS, cancel):
                got.append(piece)
        except Exception as exc:  # noqa: BLE001 - checked below
            errors.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        time.sleep(0.01)
    assert got == ["Paris "]
    gone = standin.disconnected
    time.sleep(0.3)                            # the worker now waits in a read that will not return
    assert worker.is_alive() and not gone.is_set()
    t0 = time.monotonic()
    cancel.set()
    assert gone.wait(5), "the stand-in never saw the disconnect"
    worker.join(5)
    assert not worker.is_alive(), "the worker thread is still blocked in the read"
    assert time.monotonic() - t0 < 5           # far under the 30 s read timeout
    assert errors == [] and got == ["Paris "]   # a cancelled stream ends without an error


def test_unreachable_server_is_a_clear_error():
    e = OpenAIEngine(model_id="ok", base_url=f"http://127.0.0.1:{free_port()}/v1", api_key=KEY, timeout=2)
    with pytest.raises(LLMError, match=r"^openai: cannot reach http://127\.0\.0\.1:\d+/v1"):
        e.chat(MSGS, PARAMS)


def test_key_from_dotenv_file(standin, tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"OPENAI_API_KEY={KEY}\n")
    e = OpenAIEngine(model_id="ok", base_url=standin.base_url, timeout=5)
    assert e.chat(MSGS, PARAMS) == ANSWER
    assert standin.requests[-1]["auth"] == f"Bearer {KEY}"


def test_key_from_environment_wins(standin, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text(f"OPENAI_API_KEY={KEY}\n")
    with pytest.raises(LLMError, match="HTTP 401"):
        OpenAIEngine(model_id="ok", base_url=standin.base_url, timeout=5).chat(MSGS, PARAMS)


def test_no_key_for_openai_itself_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match="OPENAI_API_KEY is not set"):
        OpenAIEngine()


async def test_cancel_closes_the_connection_and_the_server_stops(standin):
    gen = astream(engine(standin, "slow"), MSGS, PARAMS)
    got = []
    async for piece in gen:
        got.append(piece)
        if len(got) == 5:
            break
    await gen.aclose()
    assert await asyncio.to_thread(standin.disconnected.wait, 5), "stand-in never saw the disconnect"
    sent = standin.sent["slow"]
    await asyncio.sleep(0.2)
    assert standin.sent["slow"] == sent < 2000
