"""What the gateway forwards fits the miners, what it accepts it relays, what it charges was relayed
(issue 18, items 1-4).

Real gateways in front of: the echo miner; a real echo miner started with a small
``--neuron.max_request_bytes`` ("small"); and a stand-in miner that claims one token for
chunks of 200 bytes ("liar": this file run as ``python test_gateway_bounds.py serve PORT``).

    python tests/gateway/test_gateway_bounds.py serve PORT     # the lying stand-in alone
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from sn1.protocol.request import MAX_REQUEST_BYTES, MAX_STOP, MAX_STOP_CHARS
from sn1.testing import free_port, make_wallet, wait_for_port

LIAR_CHUNKS = 40
LIAR_PIECE = "word " * 40               # 200 bytes, sent with "n_tokens": 1
SMALL_LIMIT = 2000


@pytest.fixture(scope="module")
def extra(subnet):
    """The small-limit echo miner and the lying stand-in, registered and serving."""
    Proc = type(subnet.miners["echo"])
    chain, wallets = subnet.chain, subnet.wallets
    w = make_wallet(wallets, "miner-small")
    uid = chain.register(w)
    port = free_port()
    proc, log = subnet._start("miner-small", ["miner", "--backend", "echo", *subnet.common(),
                                              "--wallet.name", "miner-small", "--axon.ip", "127.0.0.1",
                                              "--axon.port", str(port),
                                              "--neuron.max_request_bytes", str(SMALL_LIMIT)])
    subnet.miners["small"] = Proc("small", port, proc, log, uid)
    w = make_wallet(wallets, "miner-liar")
    uid = chain.register(w)
    port = free_port()
    log = subnet.root / "miner-liar.log"
    proc = subprocess.Popen([sys.executable, str(Path(__file__)), "serve", str(port)],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)
    subnet.procs.append(proc)
    chain.serve(w, "127.0.0.1", port)
    subnet.miners["liar"] = Proc("liar", port, proc, log, uid)
    for name in ("small", "liar"):
        wait_for_port(subnet.miners[name].port, timeout=90, proc=subnet.miners[name].proc)
    deadline = time.monotonic() + 30
    while not all(chain.metagraph().neurons[subnet.miners[m].uid].endpoint for m in ("small", "liar")):
        assert time.monotonic() < deadline, "miners never published their endpoints"
        time.sleep(0.1)
    return subnet


@pytest.fixture(scope="module")
def gw(extra):
    return extra.start_gateway("bounds", ["echo"])


@pytest.fixture(scope="module")
def key(gw):
    return gw.key("bounds", "--rpm", "1000")


def post(gw, key, body: bytes) -> httpx.Response:
    return httpx.post(gw.url + "/v1/chat/completions", content=body, timeout=60,
                      headers={"authorization": f"Bearer {key}", "content-type": "application/json"})


def failures(gw, uid: int) -> float:
    return gw.metric("sn1_gateway_miner_failures_total", uid=uid)


# ---------------------------------------------------------------- 1. bodies that fit, blame that is fair
def test_a_body_the_gateway_accepts_but_miners_would_not_is_refused_before_any_miner(gw, key, extra):
    echo = extra.miners["echo"]
    served = echo.health()["served"]
    wrapper = json.dumps({"messages": [{"role": "user", "content": ""}]}).encode()
    body = json.dumps({"messages": [{"role": "user", "content": "x" * (MAX_REQUEST_BYTES - len(wrapper))}]}).encode()
    assert len(body) == MAX_REQUEST_BYTES          # accepted by the gateway's body limit...
    r = post(gw, key, body)
    # ... but forwarded with stream/timeout/max_tokens it would pass the miners' (the same number):
    # refused as the caller's, never sent (the miner used to answer 413 and be blamed: 503)
    assert r.status_code == 413, r.text
    assert "as forwarded to miners" in r.json()["error"]["message"]
    assert echo.health()["served"] == served
    assert failures(gw, echo.uid) == 0
    ok = post(gw, key, json.dumps({"messages": [{"role": "user", "content": "still here"}]}).encode())
    assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"] == "still here"


def test_a_miner_refusing_the_callers_request_is_not_held_against_it(extra):
    gw = extra.start_gateway("bounds-small", ["small"])
    key = gw.key("small", "--rpm", "1000")
    small = extra.miners["small"]
    big = json.dumps({"messages": [{"role": "user", "content": "y" * (2 * SMALL_LIMIT)}]}).encode()
    for _ in range(5):
        r = post(gw, key, big)
        # the miner refused the request (413): the caller learns it, with that status
        assert r.status_code == 413, r.text
        assert "refused the request" in r.json()["error"]["message"]
    assert small.health()["refused"].get("413", 0) >= 5
    assert failures(gw, small.uid) == 0
    # its reliability is intact: it still takes the requests it can (no 503)
    r = post(gw, key, json.dumps({"messages": [{"role": "user", "content": "short one"}]}).encode())
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "short one"


def test_a_refusal_is_the_miners_own_when_another_miner_takes_the_same_request(extra):
    # otherwise a miner could refuse every request as "bad" (400) at no cost
    gw = extra.start_gateway("bounds-pair", ["small", "echo"])
    key = gw.key("pair", "--rpm", "1000")
    small = extra.miners["small"]
    content = "z " * SMALL_LIMIT
    for _ in range(40):
        r = post(gw, key, json.dumps({"messages": [{"role": "user", "content": content}],
                                      "max_tokens": 3}).encode())
        assert r.status_code == 200, r.text                     # the echo miner answers every time
        assert r.headers["x-sn1-miner-uid"] == str(extra.miners["echo"].uid)
        if failures(gw, small.uid) > 0:
            break
    else:
        pytest.fail("the small miner was never tried first")
    assert small.health()["refused"].get("413", 0) >= 1


# ---------------------------------------------------------------- 2. no field accepted and dropped
@pytest.mark.parametrize("extra_fields, field", [({"logprobs": True}, "logprobs"),
                                                 ({"logprobs": True, "top_logprobs": 3}, "logprobs")])
def test_logprobs_are_refused_not_dropped(gw, key, extra, extra_fields, field):
    served = extra.miners["echo"].health()["served"]
    r = post(gw, key, json.dumps({"messages": [{"role": "user", "content": "hi"}], **extra_fields}).encode())
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == field and "not relayed" in err["message"]
    assert extra.miners["echo"].health()["served"] == served


def test_usage_reports_prompt_tokens(gw, key):
    from sn1.gateway.relay import estimate_prompt_tokens
    from sn1.protocol.request import Message

    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Naïve café: 東京 " * 20}]
    done = gw.client(key).chat.completions.create(model="sn1", messages=messages, max_tokens=5)
    expected = estimate_prompt_tokens([Message(**m) for m in messages])
    assert expected > 2 * 20 and done.usage.prompt_tokens == expected
    assert done.usage.total_tokens == done.usage.prompt_tokens + done.usage.completion_tokens
    chunks = list(gw.client(key).chat.completions.create(model="sn1", messages=messages, max_tokens=5, stream=True,
                                                         stream_options={"include_usage": True}))
    assert chunks[-1].usage.prompt_tokens == expected


# ---------------------------------------------------------------- 3. charge what was relayed
def test_a_miner_undercounting_its_tokens_is_charged_for_what_it_relayed(extra):
    from sn1.gateway.relay import BYTES_PER_TOKEN, charged_tokens

    gw = extra.start_gateway("bounds-liar", ["liar"])
    key = gw.key("liar", "--rpm", "1000")
    done = gw.client(key).chat.completions.create(model="sn1", messages=[{"role": "user", "content": "hi"}],
                                                  max_tokens=100)
    relayed = len(done.choices[0].message.content.encode())
    # it sent 8,000 bytes claiming 40 tokens: cut at max_tokens counting its bytes
    assert 0 < relayed <= 100 * BYTES_PER_TOKEN < LIAR_CHUNKS * len(LIAR_PIECE)
    assert done.choices[0].finish_reason == "length"
    assert done.usage.completion_tokens * BYTES_PER_TOKEN >= relayed
    assert done.usage.completion_tokens <= 100
    # and the day's budget is charged the same
    day = 2 * charged_tokens(LIAR_PIECE, 1)       # two of its chunks
    k = gw.key("liar-day", "--tokens-per-day", str(day))
    first = gw.client(k).chat.completions.create(model="sn1", messages=[{"role": "user", "content": "hi"}])
    assert first.choices[0].message.content == 2 * LIAR_PIECE
    import openai

    with pytest.raises(openai.RateLimitError, match="tokens for today"):
        gw.client(k).chat.completions.create(model="sn1", messages=[{"role": "user", "content": "hi"}])


# ---------------------------------------------------------------- 4. stop sequences are bounded
STOPS = [({"stop": [f"s{i}" for i in range(MAX_STOP + 1)]}, "at most"),
         ({"stop": ["z" * (MAX_STOP_CHARS + 1)]}, "at most"),
         ({"stop": "z" * (MAX_STOP_CHARS + 1)}, "at most"),
         ({"stop": [""]}, "empty"),
         ({"stop": [f"{i}" for i in range(50_000)]}, "at most")]


@pytest.mark.parametrize("fields, words", STOPS, ids=["count", "length", "one-long", "empty", "50000"])
def test_stop_is_bounded_at_the_gateway(gw, key, extra, fields, words):
    served = extra.miners["echo"].health()["served"]
    r = post(gw, key, json.dumps({"messages": [{"role": "user", "content": "hi"}], **fields}).encode())
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["param"] == "stop" and words in err["message"]
    assert extra.miners["echo"].health()["served"] == served


def test_the_largest_stop_allowed_still_works(gw, key):
    stops = ["q" * MAX_STOP_CHARS] * (MAX_STOP - 1) + ["three"]
    done = gw.client(key).chat.completions.create(model="sn1", stop=stops,
                                                  messages=[{"role": "user", "content": "one two three four"}])
    assert done.choices[0].message.content.startswith("one two")


@pytest.mark.parametrize("fields, words", STOPS, ids=["count", "length", "one-long", "empty", "50000"])
def test_stop_is_bounded_at_the_miner(extra, fields, words):
    from sn1.protocol.auth import sign_headers
    from sn1.protocol.wire import CHAT_PATH

    echo = extra.miners["echo"]
    served = echo.health()["served"]
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}], "stream": True, **fields}).encode()
    caller = make_wallet(extra.wallets, "operator")
    receiver = make_wallet(extra.wallets, "miner-echo").hotkey.ss58_address
    headers = {**sign_headers(caller, body, receiver), "content-type": "application/json"}
    r = httpx.post(echo.url + CHAT_PATH, content=body, headers=headers, timeout=60)
    # a bad field is 422 at the miner, as every other (the gateway answers 400, as OpenAI does)
    assert r.status_code == 422, r.text
    assert "stop" in r.json()["error"]["message"] and words in r.json()["error"]["message"]
    assert echo.health()["served"] == served


# ---------------------------------------------------------------- the lying stand-in
def _serve(port: int) -> None:
    import asyncio

    head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
    chunk = ("data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": LIAR_PIECE},
                                                 "finish_reason": None}], "n_tokens": 1}) + "\n\n").encode()

    async def handle(reader, writer):
        try:
            head_in = await reader.readuntil(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head_in.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            await reader.readexactly(length)
            writer.write(head + chunk * LIAR_CHUNKS + b"data: [DONE]\n\n")
            await writer.drain()
        except Exception:
            pass
        finally:
            writer.close()

    async def main():
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


if __name__ == "__main__" and sys.argv[1:2] == ["serve"]:
    _serve(int(sys.argv[2]))


def test_a_refused_caller_cannot_go_on_sending_a_body(gw):
    """401 before the body is read closes the connection: a stranger's chunked body would
    otherwise be parsed (and dropped) for as long as it kept sending (each chunk resets the
    keep-alive timer)."""
    import socket

    port = int(gw.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
                  + b"1\r\n \r\n" * 100)
        got = s.recv(65536)
        assert got.startswith(b"HTTP/1.1 401 "), got[:200]
        s.settimeout(3)         # under uvicorn's 5 s keep-alive: only a close ends the stream in time
        try:
            while s.recv(65536):    # the rest of the 401, then the end of the stream
                pass
            closed = True
        except ConnectionResetError:
            closed = True
        except socket.timeout:
            closed = False
    assert closed
