"""The miner backends in process: generate() over a real engine, closing, errors, W&B request logging."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace as NS

import pytest

from sn1.llm.base import GenParams, LLMError
from sn1.miner.backends import load_backend
from sn1.miner.backends.llm import LlamaCppMiner, OpenAIMiner

from .conftest import Recorder
from .standin_openai import KEY


def config(**wandb):
    return NS(wandb=NS(on=False, project="sn1-test", entity=None, **wandb), logging=NS(logging_dir="~/.sn1/logs"),
              netuid=1, wallet=NS(hotkey="default"), neuron=NS())


def test_registry_names_the_llm_backends():
    assert load_backend("llamacpp") is LlamaCppMiner
    assert {load_backend(n).name for n in ("hf", "openai", "vllm")} == {"hf", "openai", "vllm"}


async def test_generate_streams_and_aclose_stops_the_engine(llama_engine, story):
    rec = Recorder(llama_engine)
    miner = LlamaCppMiner(config(), engine=rec)
    gen = miner.generate(story, GenParams(max_tokens=300))
    got = [await gen.__anext__() for _ in range(4)]
    await gen.aclose()          # what the server does at the deadline
    assert got == [p for _, p, _ in rec.produced[:4]]       # the engine's own pieces, in order
    assert await asyncio.to_thread(rec.finished.wait, 5)
    assert rec.after_cancel() <= 1 and len(rec.produced) < 300


async def test_backend_built_from_flags_talks_to_an_openai_compatible_server(standin, monkeypatch):
    cfg = config()
    cfg.neuron = NS(base_url=standin.base_url, model_id=None, api_timeout=5.0)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    miner = OpenAIMiner(cfg)
    assert miner.model_name == "gpt-3.5-turbo-1106"
    text = "".join([p async for p in miner.generate([{"role": "user", "content": "hi"}], GenParams())])
    assert text.startswith("Paris is the capital")
    with pytest.raises(LLMError, match=r"HTTP 429"):
        async for _ in miner.generate([{"role": "user", "content": "!ratelimit"}], GenParams()):
            pass


@pytest.mark.slow
async def test_wandb_logs_each_request_offline(llama_engine, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    cfg = config()
    cfg.wandb.on = True
    cfg.logging.logging_dir = str(tmp_path)
    miner = LlamaCppMiner(cfg, engine=llama_engine)
    try:
        msgs = [{"role": "user", "content": "Say hi."}]
        text = "".join([p async for p in miner.generate(msgs, GenParams(max_tokens=4))])
        gen = miner.generate([{"role": "user", "content": "Tell a long story."}], GenParams(max_tokens=100))
        await gen.__anext__()
        await gen.aclose()
        run = miner.requests._run
        deadline = time.monotonic() + 10
        while run.summary.get("status") != "cancelled" and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert run.summary["status"] == "cancelled" and run.summary["prompt"] == "Tell a long story."
        assert run.step == 2 and text
    finally:
        await miner.aclose()
    assert list((tmp_path / "wandb").glob("offline-run-*"))
