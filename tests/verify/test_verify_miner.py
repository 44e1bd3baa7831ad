"""Real miner processes answering logprobs requests: what a chunk carries, and the refusals."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from sn1.protocol.auth import sign_headers
from sn1.protocol.wire import CHAT_PATH, decode_chunk, decode_chunk_logprobs, request_body
from sn1.testing import ROOT, free_port, make_wallet, stop_processes, wait_for_port
from sn1.verify import model_label

MSG = [{"role": "system", "content": "You are a helpful assistant."},
       {"role": "user", "content": "Say something about Zürich in one sentence."}]


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    from sn1.chain.sandbox import SandboxChain

    root = tmp_path_factory.mktemp("verify-miner")
    chain = SandboxChain.init(root / "sandbox", 1, tempo=1000, block_time=0.05)
    wp = root / "wallets"
    caller = make_wallet(wp, "caller")
    chain.register(caller, stake=1000.0)   # LLM miners serve validators with stake
    common = ["--subtensor.network", "sandbox", "--sandbox.path", str(root / "sandbox"), "--netuid", "1",
              "--wallet.path", str(wp)]
    miners, procs = {}, []
    try:
        for name, args in (("llama", ["--backend", "llamacpp", "--neuron.n_threads", "1",
                                      "--neuron.streaming_batch_size", "4", "--neuron.temperature", "1.5"]),
                           ("echo", ["--backend", "echo"])):
            w = make_wallet(wp, name)
            chain.register(w)
            port = free_port()
            procs.append(subprocess.Popen([sys.executable, "-m", "sn1.cli", "miner", *args, *common,
                                           "--wallet.name", name, "--axon.port", str(port)],
                                          cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            miners[name] = (f"http://127.0.0.1:{port}", w.hotkey.ss58_address)
            wait_for_port(port, timeout=120, proc=procs[-1])
        yield caller, miners
    finally:
        stop_processes(procs)


async def post(net, miner: str, data: bytes) -> httpx.Response:
    caller, miners = net
    url, hotkey = miners[miner]
    headers = {"content-type": "application/json", **sign_headers(caller, data, hotkey)}
    async with httpx.AsyncClient(timeout=60) as c:
        return await c.post(url + CHAT_PATH, content=data, headers=headers)


def events(text: str) -> list[bytes]:
    return [line[6:].encode() for line in text.split("\n") if line.startswith("data: ") and line != "data: [DONE]"]


async def test_each_chunk_carries_the_logprobs_of_its_tokens(net):
    data = request_body(MSG, max_tokens=20, temperature=0.0, seed=3, top_logprobs=4,
                        model=model_label(None), timeout=60)
    r = await post(net, "llama", data)
    assert r.status_code == 200
    text, tokens, counts = "", [], []
    for payload in events(r.text):
        content, finish, n = decode_chunk(payload)
        lp = decode_chunk_logprobs(payload)
        assert len(lp) == n                      # exactly this chunk's tokens
        text += content
        tokens += lp
        counts.append(n)
    assert counts[0] <= 2 and max(counts) <= 4   # first token alone (a split character: two), then batches of 4
    assert sum(counts) == len(tokens) <= 20
    assert b"".join(t.token for t in tokens).decode() == text
    assert all(len(t.top) == 4 and t.top[0].logprob >= t.top[-1].logprob for t in tokens)
    # Temperature 0 was asked and wins over the operator's 1.5: every token is the top alternative.
    assert all(t.token == t.top[0].token for t in tokens)
    again = await post(net, "llama", request_body(MSG, max_tokens=20, temperature=0.0, seed=3, top_logprobs=4,
                                                  model=model_label(None), timeout=60))
    # Same seed, same request: the same tokens.
    assert [decode_chunk(p)[0] for p in events(again.text)] == [decode_chunk(p)[0] for p in events(r.text)]


async def test_non_streaming_answer_has_logprobs(net):
    r = await post(net, "llama", request_body(MSG, stream=False, max_tokens=6, top_logprobs=0, timeout=60))
    assert r.status_code == 200
    choice = r.json()["choices"][0]
    content = choice["logprobs"]["content"]
    assert 1 <= len(content) <= 6 and all(c["top_logprobs"] == [] for c in content)
    assert "".join(bytes(c["bytes"]).decode("utf-8", "replace") for c in content) == choice["message"]["content"]


@pytest.mark.parametrize("miner, body, status, field, message", [
    ("echo", dict(top_logprobs=2), 400, "logprobs", "cannot report token logprobs"),
    ("llama", dict(top_logprobs=2, model="gemma-3-270m"), 400, "model", "is not served here"),
    ("llama", dict(top_logprobs=21), 422, "top_logprobs", "less than or equal to 20"),
])
async def test_refusals_before_any_work(net, miner, body, status, field, message):
    r = await post(net, miner, request_body(MSG, max_tokens=4, timeout=10, **body))
    assert r.status_code == status
    err = r.json()["error"]
    assert err["param"] == field and message in err["message"]
