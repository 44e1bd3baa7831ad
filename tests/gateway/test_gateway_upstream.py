"""The gateway's reader of one miner (``open_stream``) against a stand-in miner on 127.0.0.1 that
sends bytes which never reach a body: they count against the answer's wire budget, so the gateway
fails the miner over at once instead of parsing them until the first-chunk deadline."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from sn1.gateway.upstream import MinerFailure, open_stream, wire_allowance
from sn1.protocol.auth import hotkey_signer
from sn1.protocol.budget import budgeted_client
from sn1.testing import make_wallet

MAX_BYTES = 1 << 20
SSE = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n"
EVENTS = b"".join(b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": f"w{i} "},
                                                       "finish_reason": None}]}).encode() + b"\n\n"
                  for i in range(200))
SHAPES = {
    # interim responses forever, never a final one
    "continue": (b"", b"HTTP/1.1 100 Continue\r\n\r\n" * 2000),
    # honest events, one byte per HTTP chunk
    "slivers": (SSE + b"transfer-encoding: chunked\r\n\r\n",
                b"".join(b"1\r\n%s\r\n" % EVENTS[i:i + 1] for i in range(len(EVENTS)))),
}


async def stand_in(shape: str):
    head, piece = SHAPES[shape]

    async def handle(reader, writer):
        try:
            request = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":")[1]) for line in request.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            await reader.readexactly(length)
            writer.write(head)
            while True:                 # until the gateway hangs up
                writer.write(piece)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0)


@pytest.mark.parametrize("shape, kind, why", [("continue", "too_large", "bytes on the wire"),
                                              ("slivers", "protocol_error", "in slivers")])
async def test_bytes_that_never_reach_a_body_fail_the_miner_early(tmp_path, shape, kind, why):
    server = await stand_in(shape)
    port = server.sockets[0].getsockname()[1]
    wallet = make_wallet(tmp_path, "gw")
    http = budgeted_client(8, wire_allowance(MAX_BYTES))
    try:
        t0 = time.monotonic()
        with pytest.raises(MinerFailure) as e:
            stream, _ = await open_stream(http, hotkey_signer(wallet), f"127.0.0.1:{port}",
                                          wallet.hotkey.ss58_address, b'{"messages": []}',
                                          first_chunk_timeout=10, max_bytes=MAX_BYTES)
            try:                        # slivers spell whole events: the first ones come through
                while not stream.done:
                    await asyncio.wait_for(stream.read(), 10)
            finally:
                await stream.aclose()
        took = time.monotonic() - t0
    finally:
        await http.aclose()
        server.close()
    assert e.value.kind == kind and why in e.value.message, (e.value.kind, e.value.message)
    assert took < 10        # not the first-chunk deadline: the budget, whatever the machine's load
