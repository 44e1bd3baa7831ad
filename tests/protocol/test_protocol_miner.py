"""Real miner processes on 127.0.0.1, a real sandbox chain, the real validator client.

Covers every refusal of the miner, every status of the client, exact text
(newlines, multi-byte characters split across chunks and network reads),
partial credit on timeout, generator closed on timeout and disconnect,
priority by stake, the caps, and the official openai client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time

import httpx
import pytest

from sn1.chain.base import Neuron
from sn1.miner.backends.test import MOCK_TEXT, words
from sn1.protocol.auth import BtAuth, sign_headers
from sn1.protocol.wire import CHAT_PATH, request_body
from sn1.testing import free_port, run_sn1
from sn1.llm.base import GenParams
from sn1.validator.query import MAX_MESSAGE, MinerClient

TEXT = "Grüße 👋🏽 aus Zürich!\nZweite Zeile — 日本語のテキスト,\r\n\n  eingerückt\tmit Tab  \n"
MSG = [{"role": "user", "content": TEXT}]
# What the validator reads: CR is a control character, dropped (sn1.protocol.text.clean_text).
READ = TEXT.replace("\r", "")


def target(net, name) -> Neuron:
    return net.neuron(name)


def body(content=TEXT, **kw) -> bytes:
    kw.setdefault("max_tokens", 200)
    kw.setdefault("timeout", 5.0)
    return request_body([{"role": "user", "content": content}], **kw)


async def post(net, miner, wallet, data: bytes, *, receiver=None, headers=None, sign=True):
    h = {"content-type": "application/json"}
    if sign:
        h.update(sign_headers(net.wallets[wallet], data, receiver or net.miners[miner].hotkey))
    h.update(headers or {})
    async with httpx.AsyncClient(timeout=10) as c:
        return await c.post(net.miners[miner].url + CHAT_PATH, content=data, headers=h)


async def health(net, miner) -> dict:
    async with httpx.AsyncClient(timeout=5) as c:
        return (await c.get(net.miners[miner].url + "/health")).json()


# ---- start-up ---------------------------------------------------------------------------------

def test_miners_publish_their_endpoint(net):
    for name, m in net.miners.items():
        assert net.neuron(name).endpoint == f"127.0.0.1:{m.port}"


def test_unregistered_miner_refuses_to_start(net):
    from sn1.testing import make_wallet

    make_wallet(net.wallet_path, "unregistered-miner")
    r = run_sn1("miner", "--backend", "echo", *net.args(), "--wallet.name", "unregistered-miner",
                "--axon.port", str(free_port()), timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith("error: hotkey default (")
    assert "is not registered on netuid 1" in r.stderr


# ---- exact text -------------------------------------------------------------------------------

async def test_echo_streams_exact_text_in_batches(net):
    async with MinerClient(net.wallets["high"]) as c:
        [r] = await c.query([target(net, "echo")], MSG, GenParams(max_tokens=200), timeout=5)
    assert r.status == "ok", r.message
    assert r.completion == READ
    n = len(words(TEXT)) - 1           # the first token goes alone, at once; then batches of 3
    assert r.chunk_tokens == [1] + [3] * (n // 3) + ([n % 3] if n % 3 else [])
    assert r.finish_reason == "stop" and r.status_code == 200 and not r.truncated
    assert 0 < r.time_to_first_chunk <= r.chunk_times[-1] <= r.process_time
    assert r.to_dict()["time_to_first_chunk"] == r.time_to_first_chunk
    assert r.chunk_times == sorted(r.chunk_times)


async def test_slow_model_streams_first_token_at_once_then_by_interval(net):
    """The mock miner waits 20 ms per word and batches up to 12 words: the first word comes
    alone, and no later chunk waits much more than --neuron.streaming_interval (0.1 s)."""
    async with MinerClient(net.wallets["high"]) as c:
        [r] = await c.query([target(net, "mock")], MSG, GenParams(max_tokens=40), timeout=10)
    assert r.status == "ok", r.message
    assert r.chunk_tokens[0] == 1 and sum(r.chunk_tokens) == 40
    # 12 words would take >= 0.24 s: chunks are cut by time, not by size.
    assert max(r.chunk_tokens) < 12 and len(r.chunk_tokens) >= 4, r.chunk_tokens


class Dribble(httpx.AsyncBaseTransport):
    """A real connection whose reads are re-cut into ``size``-byte pieces, so every
    multi-byte character arrives split across reads."""

    def __init__(self, size: int):
        self.inner = httpx.AsyncHTTPTransport()
        self.size = size
        self.reads = 0

    async def handle_async_request(self, request):
        resp = await self.inner.handle_async_request(request)
        outer = self

        class Stream(httpx.AsyncByteStream):
            async def __aiter__(self):
                async for part in resp.stream:
                    for i in range(0, len(part), outer.size):
                        outer.reads += 1
                        yield part[i:i + outer.size]

            async def aclose(self):
                await resp.aclose()

        return httpx.Response(resp.status_code, headers=resp.headers, stream=Stream(),
                              extensions=resp.extensions)

    async def aclose(self):
        await self.inner.aclose()


@pytest.mark.parametrize("size", [1, 2, 5])
async def test_multibyte_characters_split_across_reads(net, size):
    transport = Dribble(size)
    async with httpx.AsyncClient(transport=transport, timeout=None) as http:
        c = MinerClient(net.wallets["high"], http=http)
        [r] = await c.query([target(net, "echo")], MSG, timeout=10)
    assert r.status == "ok", r.message
    assert r.completion == READ
    assert transport.reads >= r.n_bytes // size   # the bytes really came in small pieces


async def test_non_streaming_answer(net):
    resp = await post(net, "echo", "high", body(stream=False))
    assert resp.status_code == 200 and resp.headers["content-type"] == "application/json"
    out = resp.json()
    assert out["object"] == "chat.completion"
    assert out["choices"][0]["message"]["content"] == TEXT
    assert out["choices"][0]["finish_reason"] == "stop"
    assert out["usage"]["completion_tokens"] == len(words(TEXT))


async def test_max_tokens_gives_length(net):
    async with MinerClient(net.wallets["high"]) as c:
        [r] = await c.query([target(net, "echo")], MSG, GenParams(max_tokens=4), timeout=5)
    assert r.status == "ok" and r.finish_reason == "length"
    assert r.completion == "".join(words(TEXT)[:4]) and r.tokens == 4


# ---- refusals ---------------------------------------------------------------------------------

async def test_401_missing_headers(net):
    resp = await post(net, "echo", "high", body(), sign=False)
    assert resp.status_code == 401 and "missing btauth/1 headers" in resp.json()["error"]["message"]


@pytest.mark.parametrize("case", ["bad_signature", "wrong_receiver", "stale", "malformed"])
async def test_401_bad_auth(net, case):
    data = body()
    hk = net.miners["echo"].hotkey
    if case == "bad_signature":        # signed one body, sent another
        h = sign_headers(net.wallets["high"], data, hk)
        data = body(content="something else")
        expect = "BadSignature"
    elif case == "wrong_receiver":     # signed for another miner
        h = sign_headers(net.wallets["high"], data, net.miners["mock"].hotkey)
        expect = "WrongReceiver"
    elif case == "stale":
        from bittensor import http_auth
        h = http_auth.sign(net.wallets["high"], method="POST", path=CHAT_PATH, body=data,
                           receiver_ss58=hk, nonce_ns=time.time_ns() - 30 * 10**9)
        expect = "StaleRequest"
    else:
        h = sign_headers(net.wallets["high"], data, hk)
        h["X-Bittensor-Signature"] = "0xnothex"
        expect = "MalformedAuth"
    resp = await post(net, "echo", "high", data, headers=h, sign=False)
    assert resp.status_code == 401
    assert resp.json()["error"]["message"].startswith(expect)


async def test_401_replayed(net):
    data = body()
    h = {"content-type": "application/json", **sign_headers(net.wallets["high"], data, net.miners["echo"].hotkey)}
    assert (await post(net, "echo", "high", data, headers=h, sign=False)).status_code == 200
    again = await post(net, "echo", "high", data, headers=h, sign=False)
    assert again.status_code == 401 and again.json()["error"]["message"].startswith("ReplayedRequest")


async def test_403_not_registered_unless_allowed(net):
    resp = await post(net, "echo", "stranger", body())
    assert resp.status_code == 403 and "not registered" in resp.json()["error"]["message"]
    async with MinerClient(net.wallets["stranger"]) as c:
        [r] = await c.query([target(net, "open")], MSG, timeout=5)
    assert r.status == "ok" and r.completion == "Open to everyone."


async def test_403_without_validator_permit(net):
    resp = await post(net, "permit", "nopermit", body())
    assert resp.status_code == 403 and "no validator permit" in resp.json()["error"]["message"]
    async with MinerClient(net.wallets["high"]) as c:
        [r] = await c.query([target(net, "permit")], MSG, timeout=5)
    assert r.status == "ok" and r.completion == READ


async def test_413_body_too_large_with_and_without_length(net):
    big = body(content="x" * 5000)
    resp = await post(net, "echo", "high", big)
    assert resp.status_code == 413 and "4096-byte limit" in resp.json()["error"]["message"]

    # No Content-Length, the body in HTTP chunks: refused at its headers (411), none of it read.
    h = {"content-type": "application/json", "transfer-encoding": "chunked",
         **sign_headers(net.wallets["high"], big, net.miners["echo"].hotkey)}
    head = f"POST {CHAT_PATH} HTTP/1.1\r\nhost: x\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items())
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(big[i:i + 1000]), big[i:i + 1000]) for i in range(0, len(big), 1000))
    reader, writer = await asyncio.open_connection("127.0.0.1", net.miners["echo"].port)
    try:
        writer.write(head.encode() + b"\r\n" + chunks + b"0\r\n\r\n")
        out = await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()
    assert out.startswith(b"HTTP/1.1 411 ") and b"chunked request bodies are refused" in out, out[:200]


@pytest.mark.parametrize("data,status,field", [
    (b"{not json", 400, None),
    (b'{"messages": [{"role": "wizard", "content": "hi"}], "stream": true}', 422, "messages.0.role"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "timeout": 0}', 422, "timeout"),
])
async def test_400_422_name_the_field(net, data, status, field):
    resp = await post(net, "echo", "high", data)
    assert resp.status_code == status
    err = resp.json()["error"]
    if field:
        assert err["param"] == field and err["message"].startswith(field)


async def test_422_bad_timeout_header(net):
    resp = await post(net, "echo", "high", body(), headers={"X-SN1-Timeout": "soon"})
    assert resp.status_code == 422 and "X-SN1-Timeout" in resp.json()["error"]["message"]


async def test_refused_requests_do_no_work(net):
    before = await health(net, "echo")
    await post(net, "echo", "stranger", body())
    await post(net, "echo", "high", body(), sign=False)
    await post(net, "echo", "high", b"{not json")
    after = await health(net, "echo")
    assert after["served"] == before["served"]
    counted = {code: after["refused"].get(code, 0) - before["refused"].get(code, 0)
               for code in ("401", "403", "400")}
    assert counted == {"401": 1, "403": 1, "400": 1}


# ---- slow clients (the "guard" miner: --neuron.body_timeout 2, --neuron.max_connections 3) ------

async def stalled(net, name: str):
    """A raw connection that sends signed headers and the first bytes of its body, then stalls."""
    m = net.miners[name]
    data = body()
    head = (f"POST {CHAT_PATH} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"content-length: {len(data)}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in sign_headers(net.wallets["high"], data, m.hotkey).items())
            + "\r\n")
    reader, writer = await asyncio.open_connection("127.0.0.1", m.port)
    writer.write(head.encode() + data[:10])
    await writer.drain()
    return reader, writer


async def test_408_when_the_body_stalls_while_others_are_served(net):
    t0 = time.monotonic()
    reader, writer = await stalled(net, "guard")
    try:
        reply = asyncio.create_task(reader.read())          # to EOF: the miner must close it
        async with MinerClient(net.wallets["mid"]) as c:
            [r] = await c.query([target(net, "guard")], MSG, timeout=5)
        assert r.status == "ok" and r.completion == "Still serving."
        assert not reply.done()                              # served while the other one stalls
        data = await asyncio.wait_for(reply, 5)
        elapsed = time.monotonic() - t0
    finally:
        writer.close()
    head, _, payload = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 ")
    assert b"\n" not in payload
    err = json.loads(payload)["error"]
    assert err["code"] == 408 and err["message"] == "request body not received within 2s"
    assert 2.0 <= elapsed < 4.5


async def test_connections_over_the_cap_get_503_until_they_close(net):
    url = net.miners["guard"].url + "/health"

    async def get() -> int:
        async with httpx.AsyncClient(timeout=5) as c:
            return (await c.get(url)).status_code

    conns = [await stalled(net, "guard") for _ in range(2)]
    try:
        assert await get() == 200                 # 2 stalled + this one: within the cap of 3
        conns.append(await stalled(net, "guard"))
        codes = []
        for _ in range(30):                       # until the miner has accepted all three
            codes.append(await get())
            if codes[-1] == 503:
                break
            await asyncio.sleep(0.03)
        assert codes[-1] == 503, codes
        for reader, _ in conns:                   # each stalled one still gets its 408 and is closed
            assert (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.1 408 ")
    finally:
        for _, writer in conns:
            writer.close()
    assert await get() == 200


# ---- client statuses --------------------------------------------------------------------------

async def test_timeout_keeps_partial_text_and_closes_generator(net):
    mock = net.miners["mock"]
    closed_before = mock.log_text().count("mock generator closed early")
    ended = re.compile(r"tokens in ([\d.]+)s, (timeout|disconnect)")
    ends_before = len(ended.findall(mock.log_text()))
    async with MinerClient(net.wallets["high"]) as c:
        [r] = await c.query([target(net, "mock")], MSG, GenParams(max_tokens=5000), timeout=0.8)
    assert r.status == "timeout"
    assert r.completion and ("".join(words(MOCK_TEXT)) * 10).startswith(r.completion)  # partial credit
    assert 0 < r.tokens < 5000 and r.process_time <= 0.8 + 0.05
    assert all(t <= 0.8 for t in r.chunk_times)
    # The client hangs up at its deadline just before the miner's own deadline passes:
    # either way the generation is logged as ended and the generator closed early.
    # The generator is closed (and logs it) before the request's own end line is written.
    mock.wait_log("mock generator closed early", closed_before + 1)
    deadline = time.monotonic() + 5
    while len(ends := ended.findall(mock.log_text())) <= ends_before and time.monotonic() < deadline:
        time.sleep(0.05)
    # ended at the 0.8 s deadline, not after 5000 words (250 s at the mock's 0.05 s a word)
    assert len(ends) > ends_before and 0.6 < float(ends[-1][0]) < 2.0


async def test_timeout_header_stops_the_miner(net):
    t0 = time.monotonic()
    resp = await post(net, "mock", "high", body(max_tokens=5000, timeout=None),
                      headers={"X-SN1-Timeout": "0.5"})
    elapsed = time.monotonic() - t0
    assert resp.status_code == 200 and elapsed < 3
    lines = [ln for ln in resp.text.split("\n\n") if ln]
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[-2][6:])["choices"][0]["finish_reason"] == "timeout"


async def test_non_streaming_timeout_returns_partial_text(net):
    resp = await post(net, "mock", "high", body(max_tokens=5000, stream=False, timeout=0.4))
    out = resp.json()
    assert resp.status_code == 200 and out["choices"][0]["finish_reason"] == "timeout"
    text = out["choices"][0]["message"]["content"]
    assert text and ("".join(words(MOCK_TEXT)) * 10).startswith(text)


async def test_503_when_no_slot_frees_before_the_deadline(net):
    mock = target(net, "mock")
    started = asyncio.Event()
    async with MinerClient(net.wallets["high"]) as c:
        blocker = asyncio.create_task(c.query([mock], MSG, GenParams(max_tokens=5000), timeout=10,
                                              on_chunk=lambda *a: started.set()))
        await asyncio.wait_for(started.wait(), 5)
        t0 = time.monotonic()
        resp = await post(net, "mock", "low", body(max_tokens=3, timeout=0.3))
        waited = time.monotonic() - t0
        blocker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await blocker
    assert resp.status_code == 503 and "no generation slot" in resp.json()["error"]["message"]
    assert resp.headers["retry-after"] == "1" and 0.25 < waited < 3


async def test_disconnect_closes_generator_and_frees_slot(net):
    mock = net.miners["mock"]
    closed_before = mock.log_text().count("mock generator closed early")
    ended = re.compile(r"tokens in ([\d.]+)s, (timeout|disconnect)")
    ends_before = len(ended.findall(mock.log_text()))
    served_before = mock.log_text().count(", disconnect")
    data = body(max_tokens=5000, timeout=60)
    h = {"content-type": "application/json", **sign_headers(net.wallets["high"], data, mock.hotkey)}
    async with httpx.AsyncClient(timeout=10) as c:
        async with c.stream("POST", mock.url + CHAT_PATH, content=data, headers=h) as resp:
            assert resp.status_code == 200
            async for _ in resp.aiter_raw():
                break               # got a chunk; now hang up mid-stream
    text = mock.wait_log(", disconnect", served_before + 1)
    assert text.count("mock generator closed early") == closed_before + 1
    tokens = int(text.split("mock generator closed early after ")[-1].split()[0])
    assert tokens < 200             # stopped long before 5000 tokens (which would take 100 s)
    for _ in range(50):
        if (await health(net, "mock"))["active"] == 0:
            break
        await asyncio.sleep(0.05)
    assert (await health(net, "mock"))["active"] == 0


async def test_priority_by_stake_and_429_when_full(net):
    """max_concurrent 1, max_queue 3: while one generation runs, three callers wait and are
    served highest stake first; a fifth request is refused with 429 and Retry-After."""
    mock = target(net, "mock")
    started = asyncio.Event()
    clients = {n: MinerClient(net.wallets[n]) for n in ("high", "mid", "low")}
    ends: dict[str, float] = {}

    async def ask(name, tokens, on_chunk=None, label=None):
        r = (await clients[name].query([mock], MSG, GenParams(max_tokens=tokens), timeout=10,
                                       on_chunk=on_chunk))[0]
        ends[label or name] = time.monotonic()
        return r

    async def wait_waiting(n):
        for _ in range(100):
            if (await health(net, "mock"))["waiting"] == n:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"never {n} waiting")

    # The blocker would run for 100 s; it holds the only slot until we hang it up.
    blocker = asyncio.create_task(ask("high", 5000, lambda *a: started.set(), "blocker"))
    await asyncio.wait_for(started.wait(), 5)
    tasks = {}
    for i, name in enumerate(("low", "mid", "high")):     # arrive lowest stake first
        tasks[name] = asyncio.create_task(ask(name, 3))
        await wait_waiting(i + 1)
    full = await post(net, "mock", "low", body(max_tokens=3))
    assert full.status_code == 429 and full.headers["retry-after"] == "1"
    assert (await health(net, "mock"))["active"] == 1
    blocker.cancel()                                   # disconnect: frees the slot
    with contextlib.suppress(asyncio.CancelledError):
        await blocker
    results = {n: await t for n, t in tasks.items()}
    for c in clients.values():
        await c.aclose()
    assert all(r.status == "ok" for r in results.values())
    assert ends["high"] < ends["mid"] < ends["low"]


async def test_connect_errors_and_isolation(net, tmp_path):
    """One query with a good miner, a dead port, no endpoint, a hostile server, a slow miner:
    each gets its own status and the good one is untouched."""
    dead = Neuron(uid=90, hotkey=net.miners["echo"].hotkey, coldkey="-", endpoint=f"127.0.0.1:{free_port()}")
    nowhere = Neuron(uid=91, hotkey=net.miners["echo"].hotkey, coldkey="-", endpoint=None)
    async with hostile_server("garbage") as port:
        bad = Neuron(uid=92, hotkey=net.miners["echo"].hotkey, coldkey="-", endpoint=f"127.0.0.1:{port}")
        async with MinerClient(net.wallets["high"]) as c:
            rs = await c.query([target(net, "echo"), dead, nowhere, bad, target(net, "mock")], MSG,
                               GenParams(max_tokens=5000), timeout=1.0)
    good, r_dead, r_none, r_bad, r_slow = rs
    assert good.status == "ok" and good.completion == READ
    assert r_dead.status == "connect_error" and r_dead.completion == ""
    assert dead.endpoint in r_dead.message     # a closed port names the address
    assert r_none.status == "connect_error" and "no endpoint" in r_none.message
    assert r_bad.status == "protocol_error" and "not JSON" in r_bad.message
    assert r_slow.status == "timeout" and r_slow.completion
    assert [r.uid for r in rs] == [good.uid, 90, 91, 92, r_slow.uid]


class Held(httpx.AsyncBaseTransport):
    """Holds requests to some ports before they go out: a validator-side delay (a busy event
    loop, a slow connect) that must not count against that miner."""

    def __init__(self, hold: dict[int, float]):
        self.inner = httpx.AsyncHTTPTransport()
        self.hold = hold

    async def handle_async_request(self, request):
        await asyncio.sleep(self.hold.get(request.url.port, 0.0))
        return await self.inner.handle_async_request(request)

    async def aclose(self):
        await self.inner.aclose()


async def test_times_start_when_the_miners_own_request_is_sent(net):
    """Echo's and mock's requests are held 1 s on the validator's side, open's is not: their
    times and deadlines start when their own request goes out, not when the query began."""
    for _ in range(100):                      # mock serves one at a time: let earlier tests finish
        if (await health(net, "mock"))["active"] == 0:
            break
        await asyncio.sleep(0.05)
    # Time constants wide enough for a loaded 2-core machine: a deadline counted from the start
    # of the query would cut mock 1 s after its send; counted from its send, 3 s.
    hold, timeout = 2.0, 3.0
    transport = Held({net.miners["echo"].port: hold, net.miners["mock"].port: hold})
    async with httpx.AsyncClient(transport=transport, timeout=None) as http:
        c = MinerClient(net.wallets["high"], http=http)
        t0 = time.monotonic()
        echo, open_, mock = await c.query([target(net, n) for n in ("echo", "open", "mock")], MSG,
                                          GenParams(max_tokens=5000), timeout=timeout)
        wall = time.monotonic() - t0
    assert echo.status == "ok" and echo.completion == READ
    assert echo.time_to_first_chunk < hold / 2 and echo.process_time < hold / 2
    assert open_.status == "ok" and open_.completion == "Open to everyone."
    # mock streams to its deadline, 3 s after *its* send: chunks keep coming well past the 1 s
    # where a deadline counted from the start of the query would have cut it.
    assert mock.status == "timeout" and mock.time_to_first_chunk < hold / 2
    assert timeout - hold + 0.75 < mock.chunk_times[-1] <= timeout
    assert mock.process_time <= timeout + 0.25
    assert wall > hold + timeout - 0.25       # the hold really happened, and mock streamed after it


@pytest.mark.parametrize("mode", ["http_text", "http_json", "sse_error"])
async def test_error_messages_are_one_bounded_line(net, mode):
    async with hostile_server(mode) as port:
        n = Neuron(uid=8, hotkey=net.miners["echo"].hotkey, coldkey="-", endpoint=f"127.0.0.1:{port}")
        async with MinerClient(net.wallets["high"]) as c:
            [r] = await c.query([n], MSG, timeout=3)
    assert r.status == ("miner_error" if mode == "sse_error" else "http_error"), r
    assert "\n" not in r.message and "\r" not in r.message and r.message.isprintable()
    assert len(r.message) <= MAX_MESSAGE and r.message.endswith("…")
    assert "line one line two" in r.message


async def test_http_error_status(net):
    async with MinerClient(net.wallets["stranger"]) as c:
        [r] = await c.query([target(net, "echo")], MSG, timeout=5)
    assert r.status == "http_error" and r.status_code == 403 and "not registered" in r.message


# ---- caps -------------------------------------------------------------------------------------

async def test_chunk_cap_cuts_and_flags(net):
    async with MinerClient(net.wallets["high"], max_chunks=2) as c:
        [r] = await c.query([target(net, "echo")], MSG, timeout=5)
    assert r.truncated and r.status == "protocol_error" and "cut" in r.message
    assert r.completion == "".join(words(TEXT)[:4]) and len(r.chunk_times) == 2    # 1 + 3 tokens


async def test_byte_cap_cuts_and_flags(net):
    async with MinerClient(net.wallets["high"], max_bytes=700) as c:
        [r] = await c.query([target(net, "echo")], MSG, timeout=5)
    assert r.truncated and r.n_bytes == 700
    assert r.completion and READ.startswith(r.completion) and r.completion != READ


@pytest.mark.parametrize("mode,expect", [
    ("endless", "cut at"), ("longline", "exceeded"), ("plain", "expected text/event-stream"),
    ("nodone", "without data: [DONE]"), ("error", "miner error: overloaded"),
])
async def test_hostile_servers(net, mode, expect):
    max_bytes = 1 << 20 if mode == "longline" else 20_000   # longline: the 256 KiB event cap acts
    async with hostile_server(mode) as port:
        n = Neuron(uid=7, hotkey=net.miners["echo"].hotkey, coldkey="-", endpoint=f"127.0.0.1:{port}")
        async with MinerClient(net.wallets["high"], max_bytes=max_bytes) as c:
            [r] = await c.query([n], MSG, timeout=3)
    assert r.status == ("miner_error" if mode == "error" else "protocol_error") and expect in r.message, r
    assert r.n_bytes <= min(max_bytes, 256 * 1024 + 65536 + 100)   # event cap + one read
    if mode in ("endless", "longline"):
        assert r.truncated
    if mode in ("nodone", "endless"):
        assert r.completion.startswith("partial")


class hostile_server:
    """A stand-in for a misbehaving miner (no real miner sends these)."""

    def __init__(self, mode: str):
        self.mode = mode

    async def handle(self, reader, writer):
        try:
            await reader.readuntil(b"\r\n\r\n")
            sse = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
            chunk = b'data: {"choices":[{"delta":{"content":"partial "},"finish_reason":null}]}\n\n'
            if self.mode == "garbage":
                writer.write(sse + b"data: {not json}\n\n")
            elif self.mode == "plain":
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nhello")
            elif self.mode == "nodone":
                writer.write(sse + chunk)
            elif self.mode == "error":
                writer.write(sse + b'data: {"error": {"message": "overloaded"}}\n\n')
            elif self.mode == "endless":
                writer.write(sse)
                for _ in range(10_000):
                    writer.write(chunk)
                    await writer.drain()
            elif self.mode == "http_text":        # a huge multi-line error page with escapes
                page = b"line one\r\nline two\n" + b"\x1b[31mred\x1b[0m and more\n" * 5000
                writer.write(b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\n"
                             b"content-length: %d\r\nconnection: close\r\n\r\n" % len(page) + page)
            elif self.mode == "http_json":
                err = json.dumps({"error": {"message": "line one\nline two\n" + "x\n" * 1000}}).encode()
                writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\nconnection: close\r\n\r\n" % len(err) + err)
            elif self.mode == "sse_error":
                err = json.dumps({"error": {"message": "line one\r\nline two\n" + "y\n" * 1000}}).encode()
                writer.write(sse + b"data: " + err + b"\n\n")
            elif self.mode == "longline":
                writer.write(sse + b"data: ")
                for _ in range(10_000):
                    writer.write(b"x" * 1000)
                    await writer.drain()
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> int:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return self.server.sockets[0].getsockname()[1]

    async def __aexit__(self, *exc):
        self.server.close()


# ---- the official openai client ---------------------------------------------------------------

async def test_openai_client_reads_the_stream(net):
    openai = pytest.importorskip("openai")
    m = net.miners["echo"]
    async with httpx.AsyncClient(auth=BtAuth(net.wallets["high"], m.hotkey)) as http:
        client = openai.AsyncOpenAI(base_url=m.url + "/v1", api_key="unused", http_client=http,
                                    max_retries=0)
        stream = await client.chat.completions.create(
            model="sn1", messages=MSG, stream=True, max_tokens=200, extra_body={"timeout": 5})
        chunks = [c async for c in stream]
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == TEXT
        assert chunks[-1].choices[0].finish_reason == "stop"
        assert chunks[0].object == "chat.completion.chunk"
        full = await client.chat.completions.create(model="sn1", messages=MSG, max_tokens=200)
        assert full.choices[0].message.content == TEXT
    permit = net.miners["permit"]
    async with httpx.AsyncClient(auth=BtAuth(net.wallets["nopermit"], permit.hotkey)) as http:
        bad = openai.AsyncOpenAI(base_url=permit.url + "/v1", api_key="unused", max_retries=0,
                                 http_client=http)
        with pytest.raises(openai.PermissionDeniedError, match="no validator permit"):
            await bad.chat.completions.create(model="sn1", messages=MSG)


def test_sync_openai_client(net):
    openai = pytest.importorskip("openai")
    m = net.miners["echo"]
    with httpx.Client(auth=BtAuth(net.wallets["high"], m.hotkey)) as http:
        client = openai.OpenAI(base_url=m.url + "/v1", api_key="unused", http_client=http, max_retries=0)
        text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model="sn1", messages=MSG, stream=True, extra_headers={"X-SN1-Timeout": "5"}))
    assert text == TEXT


# ---- the client command -----------------------------------------------------------------------

def test_client_script_prints_chunks_and_totals(net):
    import subprocess
    import sys

    from sn1.testing import ROOT

    echo, open_ = net.miners["echo"].uid, net.miners["open"].uid
    args = ["--uids", str(echo), str(open_), "--wallet_name", "mid", "--hotkey", "default",
            "--wallet.path", str(net.wallet_path), "--network", "sandbox", "--netuid", "1",
            "--sandbox.path", str(net.root / "sandbox"), "--message", "one two\nthree"]
    p = subprocess.run([sys.executable, "scripts/client.py", *args], capture_output=True, text=True,
                       cwd=ROOT, timeout=60)
    assert p.returncode == 0, p.stderr
    # The first token comes alone, then the rest in one batch; a newline inside is shown escaped.
    assert f"[uid {echo} +" in p.stdout and "] 'one '" in p.stdout and "] 'two\\nthree'" in p.stdout, p.stdout
    assert f"uid {echo}: ok, 3 tokens in 2 chunks" in p.stdout
    assert f"uid {open_}: ok" in p.stdout
    r = run_sn1("client", *args, "--json", timeout=60)
    assert r.returncode == 0, r.stderr
    results = [json.loads(line) for line in r.stdout.splitlines()]
    assert [x["completion"] for x in results] == ["one two\nthree", "Open to everyone."]
    bad = run_sn1("client", *args[:-2], "--uids", "99", timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("error: uid 99 is not on netuid 1")
