"""The embedded SmolLM2 through transformers (GGUF de-quantised): loaded once for the module."""

from __future__ import annotations

import asyncio
import importlib.util
import threading

import pytest

from sn1.errors import UsageError
from sn1.llm.aio import achat, astream
from sn1.llm.base import GenParams

from .conftest import Recorder

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hf_engine():
    from sn1.llm.hf import HFEngine

    return HFEngine()


def test_stream_gives_text_within_the_token_limit(hf_engine):
    msgs = [{"role": "user", "content": "What is the capital of France?"}]
    params = GenParams(max_tokens=8, temperature=0.0)
    pieces = list(hf_engine.stream(msgs, params))
    assert 1 <= len(pieces) <= 8 and all(pieces)
    assert "".join(pieces).strip()
    assert "<|im_" not in "".join(pieces)
    assert hf_engine.chat(msgs, params) == "".join(pieces)     # greedy: deterministic


async def test_concurrent_requests_get_their_own_streamer(hf_engine):
    """Two prompts at once give exactly their one-at-a-time greedy answers: no interleaving."""
    params = GenParams(max_tokens=8, temperature=0.0)
    msgs = [[{"role": "user", "content": p}] for p in ("Name a colour.", "What is 2 + 2?")]
    alone = [hf_engine.chat(m, params) for m in msgs]
    together = await asyncio.gather(*(achat(hf_engine, m, params) for m in msgs))
    assert together == alone and alone[0] != alone[1]


async def test_generation_stops_after_cancel(hf_engine):
    rec = Recorder(hf_engine)
    msgs = [{"role": "user", "content": "Write a long story about a dragon."}]
    gen = astream(rec, msgs, GenParams(max_tokens=200))
    n = 0
    async for _ in gen:
        n += 1
        if n == 3:
            break
    await gen.aclose()
    assert await asyncio.to_thread(rec.finished.wait, 10)
    # The stopping criterion ended model.generate() itself, not just our reading of it.
    assert not any(t.name == "sn1-hf-generate" and t.is_alive() for t in threading.enumerate())
    assert rec.after_cancel() <= 1 and len(rec.produced) < 100


def test_quantisation_without_bitsandbytes_is_a_clear_error():
    from sn1.llm.hf import HFEngine

    if importlib.util.find_spec("bitsandbytes") is not None:
        pytest.skip("bitsandbytes is installed here")
    with pytest.raises(UsageError, match="need the bitsandbytes package"):
        HFEngine(model_id="HuggingFaceH4/zephyr-7b-beta", load_in_8bit=True)
    with pytest.raises(UsageError, match="not to a GGUF file"):
        HFEngine(load_in_4bit=True)


def test_cuda_without_a_gpu_is_a_clear_error():
    import torch

    from sn1.llm.hf import HFEngine

    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(UsageError, match="--neuron.device cuda: torch sees no CUDA GPU"):
        HFEngine(device="cuda")


def test_unknown_model_offline_is_a_clear_error(tmp_path):
    from sn1.llm.hf import HFEngine

    with pytest.raises(UsageError, match="cannot load model 'no-such-org/no-such-model'"):
        HFEngine(model_id="no-such-org/no-such-model")
