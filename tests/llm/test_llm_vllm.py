"""vLLM in process: runs only where the extra is installed and a CUDA GPU is visible."""

from __future__ import annotations

import asyncio
import os

import pytest

from sn1.errors import UsageError
from sn1.llm.base import GenParams
from sn1.llm.vllm_engine import unavailable_reason

REASON = unavailable_reason()
# A small chat model present in the local Hugging Face cache (nothing is downloaded in tests).
MODEL = os.environ.get("SN1_VLLM_TEST_MODEL", "HuggingFaceTB/SmolLM2-135M-Instruct")


def test_missing_vllm_or_gpu_is_a_clear_error():
    if REASON is None:
        pytest.skip("vLLM can run here")
    from sn1.llm.vllm_engine import VLLMEngine

    with pytest.raises(UsageError, match="the vllm engine cannot run: "):
        VLLMEngine(model_id=MODEL)


@pytest.mark.gpu
@pytest.mark.skipif(REASON is not None, reason=f"vLLM path not tested: {REASON}")
async def test_vllm_streams_and_cancels():
    from sn1.llm.aio import achat, astream
    from sn1.llm.vllm_engine import VLLMEngine

    engine = VLLMEngine(model_id=MODEL, gpu_memory_utilization=0.3)
    msgs = [[{"role": "user", "content": p}] for p in ("Name a colour.", "What is 2 + 2?")]
    params = GenParams(max_tokens=16, temperature=0.0)
    alone = [engine.chat(m, params) for m in msgs]
    together = await asyncio.gather(*(achat(engine, m, params) for m in msgs))
    assert together == alone and all(alone)

    gen = astream(engine, [{"role": "user", "content": "Tell a long story."}], GenParams(max_tokens=500))
    async for _ in gen:
        break
    await gen.aclose()
    await asyncio.sleep(0.5)
    assert not engine._outputs      # the request was aborted in the engine


def test_vllm_miner_without_vllm_or_gpu_exits_with_the_reason(subnet):
    if REASON is None:
        pytest.skip("vLLM can run here")
    from sn1.testing import make_wallet, run_sn1

    subnet.chain.register(make_wallet(subnet.wallets, "vllm-miner"))
    out = run_sn1("miner", "--backend", "vllm", "--subtensor.network", "sandbox", "--sandbox.path",
                  subnet.sandbox, "--netuid", "1", "--wallet.path", subnet.wallets,
                  "--wallet.name", "vllm-miner", "--axon.port", "0")
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1] == f"error: the vllm engine cannot run: {REASON}"
