"""vLLM in process: runs only where the extra is installed and a CUDA GPU is visible."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from sn1.errors import UsageError
from sn1.llm.base import GenParams
from sn1.llm.vllm_engine import unavailable_reason

REASON = unavailable_reason()
# A small chat model present in the local Hugging Face cache (nothing is downloaded in tests).
MODEL = os.environ.get("SN1_VLLM_TEST_MODEL", "HuggingFaceTB/SmolLM2-135M-Instruct")


def model_missing_reason(model: str, cache_dir=None) -> str | None:
    """Why ``model`` cannot be loaded without a download (None when a local folder or the local
    Hugging Face cache has it, weights included)."""
    if os.path.isdir(model):
        return None
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(model, local_files_only=True, cache_dir=cache_dir))
    except Exception as e:  # noqa: BLE001 - LocalEntryNotFoundError, bad repo id...
        return (f"model {model} is not in the local Hugging Face cache and tests download nothing "
                f"(set SN1_VLLM_TEST_MODEL to a cached model or a local folder): {type(e).__name__}")
    if not any(folder.glob("*.safetensors")) and not any(folder.glob("*.bin")):
        return f"model {model} in the local Hugging Face cache has no weight files"
    return None


# Checked only where vLLM could run: on a GPU host the model may still be missing from the cache.
SKIP = REASON or model_missing_reason(MODEL)


def test_missing_vllm_or_gpu_is_a_clear_error():
    if REASON is None:
        pytest.skip("vLLM can run here")
    from sn1.llm.vllm_engine import VLLMEngine

    with pytest.raises(UsageError, match="the vllm engine cannot run: "):
        VLLMEngine(model_id=MODEL)


@pytest.mark.gpu
@pytest.mark.skipif(SKIP is not None, reason=f"vLLM path not tested: {SKIP}")
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


def test_uncached_model_is_a_skip_reason(tmp_path):
    cache = tmp_path / "empty-cache"
    reason = model_missing_reason("sn1-tests/no-such-model", cache)
    assert reason and reason.startswith("model sn1-tests/no-such-model is not in the local Hugging Face cache")
    # a model cached without weights is no better
    snap = cache / "models--sn1-tests--no-weights"
    (snap / "refs").mkdir(parents=True)
    (snap / "refs" / "main").write_text("0" * 40)
    (snap / "snapshots" / ("0" * 40)).mkdir(parents=True)
    (snap / "snapshots" / ("0" * 40) / "config.json").write_text("{}")
    assert model_missing_reason("sn1-tests/no-weights", cache) == \
        "model sn1-tests/no-weights in the local Hugging Face cache has no weight files"
    (snap / "snapshots" / ("0" * 40) / "model.safetensors").write_bytes(b"x")
    assert model_missing_reason("sn1-tests/no-weights", cache) is None
    assert model_missing_reason(str(tmp_path)) is None     # a local folder is used as it is


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
