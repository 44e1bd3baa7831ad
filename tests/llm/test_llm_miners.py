"""Real miner processes (llama.cpp, Hugging Face, OpenAI) on a sandbox subnet, queried by the validator client."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from sn1.llm.base import GenParams
from sn1.validator.query import query_miners

from .standin_openai import ANSWER, KEY

pytestmark = pytest.mark.slow


def ask(text):
    return [{"role": "user", "content": text}]


async def health(port):
    async with httpx.AsyncClient(trust_env=False) as c:
        return (await c.get(f"http://127.0.0.1:{port}/health", timeout=5)).json()


async def wait_idle(port, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (await health(port))["active"] == 0:
            return True
        await asyncio.sleep(0.05)
    return False


# ---- llama.cpp -------------------------------------------------------------------------------

STORY = "Tell me a long story about a dragon."
WARM: dict[str, tuple[float, float]] = {}    # miner -> (seconds to the first chunk, tokens/s), warm


@pytest.fixture(scope="module")
def llama_miner(subnet):
    # One generation at a time and no waiting line: a second caller gets 429 at once.
    miner = subnet.start_miner("llama", ["--backend", "llamacpp", "--neuron.max_concurrent", "1",
                                         "--neuron.max_queue", "0"])
    # The first generation after the model loads pays one-time costs (the offline facts for
    # grounding, llama.cpp's first allocations): on a busy 2-core machine it took longer than the
    # deadline test's whole deadline. Every test here starts on a warm miner, in any order, and
    # the warm-up measures how fast this machine is now (a generous deadline: it only waits).
    [r] = asyncio.run(query_miners(subnet.validator, [subnet.neuron(miner[1])], ask(STORY),
                                   GenParams(max_tokens=24, temperature=0.0), timeout=300))
    # (the miner caps any deadline at its --neuron.max_timeout: on a very busy machine the
    # warm-up may end there; it has warmed the miner all the same)
    assert r.status in ("ok", "timeout") and r.chunk_times, r.message
    first = r.chunk_times[0]
    WARM["llama"] = (first, r.tokens / max(1e-3, r.chunk_times[-1] - first) if len(r.chunk_times) > 1 else 1.0)
    return miner


async def test_llamacpp_miner_answers(subnet, llama_miner):
    _, uid, _, _ = llama_miner
    [r] = await query_miners(subnet.validator, [subnet.neuron(uid)], ask("What is the capital of France?"),
                             GenParams(max_tokens=16), timeout=30)
    assert r.status == "ok", r.message
    assert r.completion.strip() and 1 <= r.tokens <= 16
    assert r.finish_reason in ("stop", "length")


async def test_llamacpp_miner_stops_generating_at_the_deadline(subnet, llama_miner):
    _, uid, port, log = llama_miner
    ttft, rate = WARM["llama"]
    # The deadline leaves room for several first chunks at the speed this machine has now (5 s
    # when idle), and stays short of the time 1000 tokens take at that speed: greedy, this
    # prompt runs on for hundreds of tokens, so only the deadline ends it.
    deadline = min(max(5.0, 10 * ttft), 0.5 * 1000 / rate, 60.0)   # 60: the miner's own cap
    [r] = await query_miners(subnet.validator, [subnet.neuron(uid)], ask(STORY),
                             GenParams(max_tokens=1000, temperature=0.0), timeout=deadline)
    assert r.status == "timeout"
    assert r.chunk_times, "no chunk arrived before the deadline"
    assert 0 < r.tokens < 1000 and len(r.completion) > 0
    assert await wait_idle(port), "the generation slot was not freed after the deadline"
    # The miner's own account: it stopped at the deadline (its own, or the caller hanging up at
    # the same moment), far short of 1000 tokens.
    lines = [ln for ln in log.read_text().splitlines()
             if "tokens in" in ln and ln.endswith(("timeout", "disconnect"))]
    assert lines and int(lines[-1].split(": ")[-1].split()[0]) < 1000


async def test_miner_keeps_refusing_promptly_while_generating(subnet, llama_miner):
    """During a long CPU generation the event loop still answers 401 (unsigned) and 429 (no free slot)."""
    _, uid, port, _ = llama_miner
    neuron = subnet.neuron(uid)
    long = asyncio.create_task(query_miners(subnet.validator, [neuron], ask("Write a long essay about the sea."),
                                            GenParams(max_tokens=120, temperature=0.7), timeout=60))
    while (await health(port))["active"] == 0:
        await asyncio.sleep(0.02)
    async with httpx.AsyncClient(trust_env=False) as c:
        unsigned = await c.post(f"http://127.0.0.1:{port}/v1/chat/completions",
                                json={"messages": ask("hi"), "stream": True}, timeout=10)
    [busy] = await query_miners(subnet.validator, [neuron], ask("hi"), GenParams(max_tokens=5), timeout=10)
    assert not long.done(), "the long generation ended before the refusals were answered"
    assert unsigned.status_code == 401
    assert busy.status == "http_error" and busy.status_code == 429
    [r] = await long
    assert r.status == "ok" and r.tokens > 12


# ---- OpenAI against the stand-in ------------------------------------------------------------

@pytest.fixture(scope="module")
def openai_miner(subnet, standin):
    # Batches of one token, so what came before a failure has already been sent when it happens.
    return subnet.start_miner(
        "openai", ["--neuron.base_url", standin.base_url, "--neuron.api_timeout", "1",
                   "--neuron.streaming_batch_size", "1"],
        script="neurons/miners/openai/miner.py", env={"OPENAI_API_KEY": KEY})


async def test_openai_miner_streams_the_exact_answer(subnet, openai_miner):
    _, uid, _, _ = openai_miner
    [r] = await query_miners(subnet.validator, [subnet.neuron(uid)], ask("Capital of France?"),
                             GenParams(max_tokens=100), timeout=10)
    assert r.status == "ok", r.message
    assert r.completion == ANSWER       # newline and multi-byte characters intact end to end


async def test_openai_miner_grounds_a_date_question_in_its_upstream_request(subnet, openai_miner, standin):
    # The model behind the API gets the dated fact of the offline encyclopedia with the question.
    _, uid, _, _ = openai_miner
    question = "When was the Arab League formed in Cairo?"
    [r] = await query_miners(subnet.validator, [subnet.neuron(uid)], ask(question),
                             GenParams(max_tokens=100), timeout=10)
    assert r.status == "ok", r.message
    sent = standin.requests[-1]["body"]["messages"][-1]["content"]
    assert sent == (f"{question}\n\nFact: The Arab League was formed in Cairo on 22 March 1945.\n"
                    "Answer in one short sentence with the exact date.")


@pytest.mark.parametrize("case,partial,reason", [
    ("auth", "", r"rejected the API key (HTTP 401)"),
    ("ratelimit", "", r"is rate limiting us (HTTP 429)"),
    ("boom", "", r"server error (HTTP 500)"),
    ("malformed", "Paris ", "malformed chunk"),
    ("badshape", "Paris ", "malformed chunk"),
    ("stall", "Paris ", "stalled: no data within 1s"),
])
async def test_openai_failures_end_the_validator_stream_cleanly(subnet, openai_miner, case, partial, reason):
    _, uid, port, log = openai_miner
    t0 = time.monotonic()
    [r] = await query_miners(subnet.validator, [subnet.neuron(uid)], ask(f"!{case}"),
                             GenParams(max_tokens=100), timeout=8)
    assert time.monotonic() - t0 < 8, "the request hung until the validator's deadline"
    assert r.status == "miner_error" and r.status_code == 200     # the miner's own error event
    assert reason in r.message and "\n" not in r.message
    assert r.completion == partial
    assert reason in log.read_text()    # the miner's log says why, too
    assert await wait_idle(port)


async def test_validator_timeout_stops_the_upstream_generation(subnet, openai_miner, standin):
    """Deadline -> miner closes the backend -> the engine closes its HTTP stream -> upstream sees it."""
    _, uid, port, _ = openai_miner
    [r] = await query_miners(subnet.validator, [subnet.neuron(uid)], ask("!slow"),
                             GenParams(max_tokens=5000), timeout=1.0)
    assert r.status == "timeout" and r.completion.startswith("w0 w1 ")
    assert await asyncio.to_thread(standin.disconnected.wait, 5), "upstream kept streaming"
    sent = standin.sent["slow"]
    await asyncio.sleep(0.3)
    assert standin.sent["slow"] == sent < 2000
    assert await wait_idle(port)


async def test_openai_miner_with_its_upstream_down_logs_one_line_per_failure(subnet):
    from sn1.testing import free_port

    _, uid, port, log = subnet.start_miner(
        "openai_down", ["--neuron.base_url", f"http://127.0.0.1:{free_port()}/v1", "--neuron.api_timeout", "1"],
        script="neurons/miners/openai/miner.py", env={"OPENAI_API_KEY": KEY}, debug=False)
    for _ in range(3):
        [r] = await query_miners(subnet.validator, [subnet.neuron(uid)], ask("Capital of France?"),
                                 GenParams(max_tokens=10), timeout=8)
        assert r.status != "ok" and "backend failed" in r.message and "\n" not in r.message
    assert await wait_idle(port)
    text = log.read_text()
    assert "Traceback" not in text, text
    failures = [line for line in text.splitlines() if "backend failed" in line]
    assert len(failures) == 3, text


async def test_openai_miner_without_a_key_exits_with_a_clear_error(subnet, tmp_path):
    import os
    import subprocess
    import sys

    from sn1.testing import ROOT, make_wallet

    make_wallet(subnet.wallets, "nokey", "default")
    subnet.chain.register(make_wallet(subnet.wallets, "nokey", "default"))
    env = {k: v for k, v in os.environ.items() if k != "OPENAI_API_KEY"}
    out = subprocess.run(
        [sys.executable, str(ROOT / "neurons/miners/openai/miner.py"), "--subtensor.network", "sandbox",
         "--sandbox.path", str(subnet.sandbox), "--netuid", "1", "--wallet.path", str(subnet.wallets),
         "--wallet.name", "nokey", "--axon.port", "0"],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=120)
    assert out.returncode == 2
    assert out.stderr.strip().splitlines()[-1].startswith("error: OPENAI_API_KEY is not set")


# ---- Hugging Face (the seed's default miner script) -----------------------------------------

async def test_huggingface_miner_runs_the_embedded_model_on_cpu(subnet):
    _, uid, _, log = subnet.start_miner("hf", ["--neuron.max_tokens", "8"],
                                        script="neurons/miners/huggingface/miner.py", timeout=240)
    [r] = await query_miners(subnet.validator, [subnet.neuron(uid)], ask("What is the capital of France?"),
                             GenParams(max_tokens=64), timeout=60)
    assert r.status == "ok", r.message
    assert r.completion.strip() and 1 <= r.tokens <= 8     # the operator's cap wins
    assert "hf miner ready: " in log.read_text()
