"""Hostile callers against a real miner process: idle and half-open connections, floods from one and
from many addresses, slow headers, replay, oversize and malformed requests. The miner's validator is
served throughout, and no refused connection reaches the model."""

from __future__ import annotations

import asyncio
import json
import socket
import time

import httpx
import pytest

from sn1.protocol.auth import sign_headers
from sn1.protocol.wire import CHAT_PATH, request_body
from sn1.validator.query import MinerClient

MSG = [{"role": "user", "content": "Who is there?"}]


async def ask(net, miner: str, wallet: str = "val", timeout: float = 5.0):
    async with MinerClient(net.wallets[wallet]) as c:
        [r] = await c.query([net.target(miner)], MSG, timeout=timeout)
    return r


async def health(net, miner: str) -> dict:
    async with httpx.AsyncClient(timeout=5, trust_env=False) as c:
        r = await c.get(f"http://127.0.0.1:{net.port(miner)}/health")
        assert r.status_code == 200, r.text
        return r.json()


def open_idle(port: int, n: int, sources: list[str], payload: bytes = b"") -> list[socket.socket]:
    """``n`` connections (non-blocking) spread over ``sources`` addresses, each sending ``payload``."""
    socks = []
    for i in range(n):
        s = socket.socket()
        s.bind((sources[i % len(sources)], 0))
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        socks.append(s)
    if payload:
        time.sleep(0.2)
        for s in socks:
            try:
                s.send(payload)
            except OSError:
                pass
    return socks


def closed_by_peer(s: socket.socket) -> bool:
    try:
        return s.recv(65536) == b""
    except BlockingIOError:
        return False
    except OSError:                 # reset: closed too
        return True


def close_all(socks) -> None:
    for s in socks:
        s.close()


async def raw_exchange(port: int, data: bytes, wait: float = 5.0, shutdown: bool = False) -> tuple[bytes, float]:
    """Send ``data`` on a fresh connection; (everything the miner wrote until it closed, seconds)."""
    t0 = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        if shutdown:
            writer.write_eof()
        await writer.drain()
        try:
            out = await asyncio.wait_for(reader.read(), wait)
        except ConnectionResetError:     # closed with our unread bytes in its buffer: a TCP reset
            out = b"RESET"
    finally:
        writer.close()
    return out, time.monotonic() - t0


def signed_head(net, miner: str, body: bytes, wallet: str = "val", extra: str = "") -> bytes:
    h = sign_headers(net.wallets[wallet], body, net.miners[miner][1])
    return (f"POST {CHAT_PATH} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items())
            + extra + "\r\n").encode()


# ---- idle connections -------------------------------------------------------------------------

async def test_2000_idle_connections_from_one_address_do_not_stop_the_validator(net):
    before = (await health(net, "guarded"))["connections"]
    socks = open_idle(net.port("guarded"), 2000, ["127.0.0.1"])
    try:
        await asyncio.sleep(0.5)
        t0 = time.monotonic()
        r = await ask(net, "guarded")
        took = time.monotonic() - t0
        h = await health(net, "guarded")            # public, unsigned: still answered
    finally:
        close_all(socks)
    assert r.status == "ok" and r.completion == "Served under attack.", r
    assert took < 3.0, took
    c = h["connections"]
    assert c["open"] <= 16 + 1                      # the per-address cap held
    assert c["evicted"] + c["refused"] - before["evicted"] - before["refused"] >= 2000 - 16


async def test_idle_connections_from_many_addresses_are_bounded_and_fairly_cut(net):
    """max_idle 256, no per-address cap to speak of: 600 idle sockets from 60 addresses. The miner
    keeps 256, taken from the addresses holding the most (oldest first), so a caller holding a
    single connection (a validator between requests) is never the one closed."""
    lone = open_idle(net.port("crowded"), 1, ["127.0.1.1"])
    await asyncio.sleep(0.2)
    sources = [f"127.0.0.{i}" for i in range(2, 62)]
    first = open_idle(net.port("crowded"), 300, sources)
    await asyncio.sleep(0.5)
    later = open_idle(net.port("crowded"), 300, sources)
    try:
        await asyncio.sleep(0.5)
        r = await ask(net, "crowded")
        h = await health(net, "crowded")
        assert r.status == "ok" and r.completion == "Still here.", r
        assert h["connections"]["idle"] <= 256
        await asyncio.sleep(0.2)
        assert not closed_by_peer(lone[0])
        kept: dict = {}
        for i, s in enumerate(first + later):
            kept.setdefault(sources[i % 60], []).append(not closed_by_peer(s))
        counts = [sum(v) for v in kept.values()]
        assert sum(counts) <= 256 and max(counts) - min(counts) <= 1, counts
        for flags in kept.values():             # per address, the newest survive
            assert flags == sorted(flags), flags
    finally:
        close_all(lone + first + later)


async def test_per_address_cap_closes_that_address_oldest_idle(net):
    socks = open_idle(net.port("guarded"), 40, ["127.0.0.7"])
    try:
        await asyncio.sleep(0.5)
        closed = [closed_by_peer(s) for s in socks]
        assert all(closed[:24]) and not any(closed[24:]), closed    # cap 16: the 24 oldest went
        r = await ask(net, "guarded")                   # another address is unaffected
        assert r.status == "ok"
    finally:
        close_all(socks)


@pytest.mark.parametrize("data", [b"", b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n",
                                  b"G", b"GET /health HTTP/1.1\r\nhost: x\r\nx-a: b"])
async def test_silent_or_slow_headers_get_408_and_close(net, data):
    """--neuron.header_timeout 1: request line and headers must be complete within a second."""
    out, took = await raw_exchange(net.port("guarded"), data, wait=5)
    assert out.startswith(b"HTTP/1.1 408 "), out[:200]
    assert 0.8 <= took < 3.0, took


@pytest.mark.parametrize("signed, behind", [(False, False), (True, False), (False, True)])
async def test_chunked_request_body_is_refused_at_its_headers(net, signed, behind):
    """A body in one-byte HTTP chunks: 411 and the connection closed as soon as the headers are
    in, signed or not (validators send a Content-Length), and when it is sent right behind
    another request on the same connection (parsed only once that one is answered); the chunks
    are never parsed (the parser turns each into an event: a stranger's stream of them held
    the miner's loop)."""
    port = net.port("guarded")
    before = (await health(net, "guarded"))["connections"]["refused_chunked"]
    if signed:
        head = signed_head(net, "guarded", b"{}", extra="transfer-encoding: chunked\r\n")
        head = head.replace(b"content-length: 2\r\n", b"")
    else:
        head = (f"POST {CHAT_PATH} HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n"
                "x-bittensor-version: 1\r\nx-bittensor-hotkey: x\r\nx-bittensor-nonce: 1\r\n"
                "x-bittensor-signature: 00\r\n\r\n").encode()
    first = b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n" if behind else b""
    out, _ = await raw_exchange(port, first + head + b"1\r\n \r\n" * 500)
    if behind:
        assert out.startswith(b"HTTP/1.1 200 "), out[:200]
        out = out[out.index(b"HTTP/1.1 ", 10):]
    assert out.startswith(b"HTTP/1.1 411 ") and b"Content-Length" in out, out[:200]
    assert (await health(net, "guarded"))["connections"]["refused_chunked"] == before + 1
    assert (await ask(net, "guarded")).status == "ok"


async def test_slow_header_drip_is_cut_at_the_deadline(net):
    """A byte every 100 ms keeps a connection busy but never completes: the deadline is absolute."""
    t0 = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", net.port("guarded"))
    try:
        async def drip():
            for b in b"GET /health HTTP/1.1\r\nhost: x\r\n" + b"x-pad: " + b"a" * 1000:
                writer.write(bytes([b]))
                await writer.drain()
                await asyncio.sleep(0.1)
        task = asyncio.create_task(drip())
        out = await asyncio.wait_for(reader.read(), 5)
        task.cancel()
    finally:
        writer.close()
    assert out.startswith(b"HTTP/1.1 408 ") and time.monotonic() - t0 < 3.0


async def test_kept_alive_connection_closed_after_idle_timeout(net):
    """--neuron.keepalive_timeout 1: a served connection left idle is closed."""
    reader, writer = await asyncio.open_connection("127.0.0.1", net.port("guarded"))
    try:
        writer.write(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 200 ")
        t0 = time.monotonic()
        rest = await asyncio.wait_for(reader.read(), 5)       # body, then EOF when closed
        assert json.loads(rest)["status"] == "ok"
        assert time.monotonic() - t0 < 3.0
    finally:
        writer.close()


async def test_half_open_connections_are_closed(net):
    """The caller sends part of a request and shuts its side: the miner closes without waiting."""
    out, took = await raw_exchange(net.port("guarded"), b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\n",
                                   shutdown=True)
    assert took < 3.0 and b"200 OK" not in out


# ---- reserved capacity ------------------------------------------------------------------------

async def test_reserved_slots_serve_the_validator_while_strangers_fill_the_rest(net):
    """max_connections 8, 2 reserved: six signed-but-unregistered callers stall their bodies and
    hold every unreserved slot; a stranger's next request gets 503 at once, the validator is served."""
    body = request_body(MSG, timeout=5)
    conns = []
    try:
        for _ in range(6):
            reader, writer = await asyncio.open_connection("127.0.0.1", net.port("guarded"))
            writer.write(signed_head(net, "guarded", body, wallet="stranger") + body[:5])
            await writer.drain()
            conns.append((reader, writer))
        await asyncio.sleep(0.3)
        async with httpx.AsyncClient(timeout=5, trust_env=False) as c:
            busy = await c.get(f"http://127.0.0.1:{net.port('guarded')}/health")
        assert busy.status_code == 503 and "busy" in busy.json()["error"]["message"]
        r = await ask(net, "guarded")
        assert r.status == "ok" and r.completion == "Served under attack.", r
        for reader, _ in conns:                  # each stalled body ends with the miner's 408
            assert (await asyncio.wait_for(reader.read(), 5)).startswith(b"HTTP/1.1 408 ")
    finally:
        for _, writer in conns:
            writer.close()
    assert (await health(net, "guarded"))["status"] == "ok"


# ---- malformed, oversize, replayed --------------------------------------------------------------

async def test_replayed_request_is_refused(net):
    body = request_body(MSG, timeout=5)
    data = signed_head(net, "echo", body, extra="connection: close\r\n") + body
    first, _ = await raw_exchange(net.port("echo"), data)
    again, _ = await raw_exchange(net.port("echo"), data)
    assert first.startswith(b"HTTP/1.1 200 ")
    assert again.startswith(b"HTTP/1.1 401 ") and b"ReplayedRequest" in again


@pytest.mark.parametrize("case", ["huge_length", "chunked_past_limit", "header_flood", "bad_request_line",
                                  "bad_request_line_long",
                                  "bad_json", "json_bomb", "not_object", "binary"])
async def test_malformed_and_oversize_requests_get_a_4xx(net, case):
    port = net.port("guarded")
    if case == "huge_length":
        data = signed_head(net, "guarded", b"x" * 10_000) + b"x" * 100
        expect = b"413"
    elif case == "chunked_past_limit":
        head = signed_head(net, "guarded", b"").replace(b"content-length: 0\r\n", b"transfer-encoding: chunked\r\n")
        data = head + b"".join(b"1000\r\n" + b"x" * 0x1000 + b"\r\n" for _ in range(3)) + b"0\r\n\r\n"
        expect = b"411"         # chunked bodies are refused whatever their size, before any is read
    elif case == "header_flood":
        # headers that never end: h11 refuses an incomplete head past 16 KiB
        data = b"GET /health HTTP/1.1\r\nhost: x\r\n" + \
            b"".join(b"x-f%d: %s\r\n" % (i, b"a" * 100) for i in range(2000))
        expect = b"400"
    elif case == "bad_request_line":
        data = b"\x16\x03\x01 GARBAGE \xff\xfe\r\n\r\n"
        expect = b"400"
    elif case == "bad_request_line_long":     # more than one slice of the guard's header parsing
        data = b"GARBAGE\r\n\r\n" + b"x" * 6000
        expect = b"400"
    else:
        body = {"bad_json": b"{not json", "json_bomb": b"[" * 4000 + b"]" * 4000,
                "not_object": b"[1, 2]", "binary": bytes(range(256))}[case]
        data = signed_head(net, "guarded", body) + body
        expect = b"400"
    out, took = await raw_exchange(port, data)
    # A refusal sent while our bytes were still unread can reach us as a reset instead.
    assert out.startswith(b"HTTP/1.1 " + expect) or (case == "header_flood" and out == b"RESET"), out[:300]
    assert took < 3.0
    assert b"Traceback" not in out
    log = net.miners["guarded"][2].read_text()
    assert "Traceback" not in log and "Fatal error" not in log, log[-2000:]


async def test_refused_connections_do_no_model_work(net):
    """Everything above refused or cut connections; the model served only real requests."""
    served_before = (await health(net, "guarded"))["served"]
    socks = open_idle(net.port("guarded"), 200, ["127.0.0.9"], payload=b"POST /v1/chat/completions HTTP/1.1\r\n")
    try:
        await asyncio.sleep(0.3)
        assert (await health(net, "guarded"))["served"] == served_before
    finally:
        close_all(socks)
    r = await ask(net, "guarded")
    assert r.status == "ok"
    assert (await health(net, "guarded"))["served"] == served_before + 1


# ---- the new flags are checked before anything starts -------------------------------------------

@pytest.mark.parametrize("flag,value", [
    ("--neuron.header_timeout", "0"), ("--neuron.keepalive_timeout", "-1"),
    ("--neuron.max_connections_per_ip", "0"), ("--neuron.max_idle_connections", "0"),
    ("--neuron.reserved_connections", "-1"), ("--neuron.reserved_connections", "1024"),
])
def test_connection_flags_are_range_checked(flag, value):
    """One line naming the flag, exit 2, before anything starts (reserved must stay below
    --neuron.max_connections, 1024 by default)."""
    from sn1.testing import run_sn1

    p = run_sn1("miner", "--backend", "echo", flag, value, timeout=60)
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:") and flag in lines[0], p.stderr
