"""Hostile miners: a real process that answers the validator's request the way an attacker would.

    python tests/hostile/hostile_miner.py MODE [MODE ...]

listens on 127.0.0.1, one free port per MODE (a mode may repeat), prints one
JSON line, the list of ports in the order of the modes, and serves until killed. No real miner sends any of this.
Used by tests/hostile and benchmarks/hostile.py.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import struct
import sys

SSE_HEAD = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
            b"connection: close\r\n\r\n")
DONE = b"data: [DONE]\n\n"
FOREVER = 10**9


def chunk(content, finish=None) -> bytes:
    """A chunk whose JSON may hold anything ``json.dumps`` writes (ensure_ascii: \\u escapes)."""
    obj = {"choices": [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]}
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def raw_chunk(content_json: bytes) -> bytes:
    """A chunk with the content's JSON bytes spliced in as they are (invalid UTF-8, raw escapes)."""
    return b'data: {"choices":[{"index":0,"delta":{"content":' + content_json + b'},"finish_reason":null}]}\n\n'


async def repeat(w, piece: bytes, total: int = FOREVER, pause: float = 0.0) -> None:
    """Write ``piece`` until ``total`` bytes went out or the reader hangs up."""
    sent = 0
    while sent < total:
        w.write(piece)
        sent += len(piece)
        await w.drain()
        if pause:
            await asyncio.sleep(pause)


async def drip(w, data: bytes, pause: float = 0.001, size: int = 1) -> None:
    for i in range(0, len(data), size):
        w.write(data[i:i + size])
        await w.drain()
        await asyncio.sleep(pause)


# ---- modes: each writes a whole response (or none) --------------------------------------------

async def surrogate(w):      # JSON "\ud800": a lone surrogate inside valid JSON
    w.write(SSE_HEAD + raw_chunk(b'"lone \\ud800 high \\udfff low "') + chunk("then text.", "stop") + DONE)


async def invalid_utf8(w):   # bytes that are not UTF-8 inside the JSON string
    w.write(SSE_HEAD + raw_chunk(b'"bad \xff\xfe\xc3( bytes "') + chunk("ok", "stop") + DONE)


async def controls(w):       # terminal escapes, NUL, C1, CR, DEL
    w.write(SSE_HEAD + chunk("\x1b[2J\x1b[31mred\x00 nul\x85 c1\r cr\x7f del\x9b end\n\tkept", "stop") + DONE)


async def bad_finish(w):     # a finish_reason that is an object, then one that is huge
    w.write(SSE_HEAD + b'data: {"choices":[{"delta":{"content":"y"},"finish_reason":{"a":[1,2]}}]}\n\n'
            + b'data: {"choices":[{"delta":{"content":"z"},"finish_reason":"' + b"s" * 5000 + b'"}]}\n\n'
            + DONE)


async def newlines(w):       # blank lines forever
    w.write(SSE_HEAD + chunk("partial "))
    await repeat(w, b"\n" * 65536)


async def crlf(w):
    w.write(SSE_HEAD + chunk("partial "))
    await repeat(w, b"\r\n\r" * 20000)


async def comments(w):
    w.write(SSE_HEAD + chunk("partial "))
    await repeat(w, b":\n" * 32768)


async def empty_data(w):     # data lines forever, never a blank line
    w.write(SSE_HEAD + chunk("partial "))
    await repeat(w, b"data:\n" * 10000)


async def empty_events(w):   # valid events carrying no text
    w.write(SSE_HEAD + chunk("partial "))
    await repeat(w, b'data:{"choices":[{"delta":{}}]}\n\n' * 2000)


async def tiny_events(w):    # one character per event, as fast as possible
    w.write(SSE_HEAD + chunk("partial "))
    await repeat(w, b'data:{"choices":[{"delta":{"content":"a"}}]}\n\n' * 1500)


async def burst(w):          # 64 KiB bursts of honest chunks, then silence, again
    w.write(SSE_HEAD)
    for _ in range(FOREVER):
        w.write(chunk("partial burst ") * 800)
        await w.drain()
        await asyncio.sleep(0.2)


async def drip_line(w):      # one endless line, a byte at a time
    w.write(SSE_HEAD + chunk("partial ") + b"data: ")
    await w.drain()
    await repeat(w, b"x", pause=0.0005)


async def drip_events(w):    # honest events, dripped a byte per write
    w.write(SSE_HEAD)
    await drip(w, chunk("partial ") + chunk("dripped text ") * 100000, pause=0.0005)


async def giant_line(w):
    w.write(SSE_HEAD + chunk("partial ") + b"data: ")
    await repeat(w, b"x" * 65536)


async def json_bomb(w):      # nested arrays far past the recursion limit
    w.write(SSE_HEAD + chunk("partial ") + b"data: " + b"[" * 100_000 + b"]" * 100_000 + b"\n\n" + DONE)


async def object_bomb(w):    # nested objects as the content
    nest = b'{"a":' * 40_000 + b"1" + b"}" * 40_000
    w.write(SSE_HEAD + chunk("partial ") + raw_chunk(nest) + DONE)


async def gzip_bomb(w):      # 64 MiB of zeros in ~64 KiB, announced as gzip
    body = gzip.compress(b"\0" * (64 << 20), compresslevel=9)
    w.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-encoding: gzip\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body) + body)


async def slow_error(w):     # a refusal whose short body is dripped past the deadline
    w.write(b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\n"
            b"content-length: 1000\r\nconnection: close\r\n\r\n")
    await drip(w, b"x" * 1000, pause=0.05)


async def gzip_error(w):     # the same bomb as an error page
    body = gzip.compress(b"\0" * (64 << 20), compresslevel=9)
    w.write(b"HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\ncontent-encoding: gzip\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body) + body)


async def header_flood(w):   # headers that never end
    w.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n")
    await repeat(w, b"x-flood: " + b"a" * 100 + b"\r\n")


async def info_flood(w):     # interim 100 Continue responses forever, never a final one
    await repeat(w, b"HTTP/1.1 100 Continue\r\n\r\n" * 2000)


async def info_headers(w):   # 103 Early Hints with thousands of tiny headers, forever
    await repeat(w, b"HTTP/1.1 103 Early Hints\r\n" + b"a: b\r\n" * 8000 + b"\r\n")


def _http_chunks(data: bytes, ext: bytes = b"") -> bytes:
    return b"".join(b"1%s\r\n%s\r\n" % (ext, data[i:i + 1]) for i in range(len(data)))


async def tiny_chunks(w):    # honest events, each byte in an HTTP chunk of its own
    w.write(SSE_HEAD.replace(b"\r\n\r\n", b"\r\ntransfer-encoding: chunked\r\n\r\n"))
    await repeat(w, _http_chunks(b"".join(chunk(f"partial tiny{i} ") for i in range(200))))


async def chunk_ext(w):      # an HTTP chunk extension of 90 kB per byte of body
    w.write(SSE_HEAD.replace(b"\r\n\r\n", b"\r\ntransfer-encoding: chunked\r\n\r\n"))
    await repeat(w, _http_chunks(chunk("partial ext "), b";x=" + b"a" * 90_000))


async def header_drip(w):    # a status line dripped forever
    await repeat(w, b"H", pause=0.01)


async def endless(w):        # honest-looking chunks, never [DONE]
    w.write(SSE_HEAD)
    await repeat(w, chunk("partial endless ") * 100)


async def slow_endless(w):   # one honest chunk every 10 ms, forever: only the deadline ends it
    w.write(SSE_HEAD)
    await repeat(w, chunk("partial slow "), pause=0.01)


async def early_close(w):    # half a chunk, then the connection closes
    w.write(SSE_HEAD + chunk("partial ") + b'data: {"choices":[{"del')


async def reset(w):          # a chunk, then a TCP reset
    w.write(SSE_HEAD + chunk("partial "))
    await w.drain()
    sock = w.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    w.transport.abort()


async def miner_error(w):
    w.write(SSE_HEAD + chunk("partial ") + b'data: {"error":{"message":"engine \\ud800 exploded\\n\\u001b[2J"}}\n\n')


async def silent(w):         # accepts, reads the request, never answers
    await asyncio.sleep(FOREVER)


async def bad_status(w):     # not HTTP at all
    w.write(b"\x16\x03\x01\x00\xa5 not http\r\n\r\n")


async def surrogate_error(w):  # an HTTP error whose JSON message holds a surrogate and escapes
    body = b'{"error":{"message":"no \\ud800 way\\u001b[31m"}}'
    w.write(b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n" % len(body) + body)


async def honest(w):          # what a good miner sends: 30 chunks of words, 10 ms apart, [DONE]
    w.write(SSE_HEAD)
    for i in range(30):
        w.write(chunk(f"word{i} "))
        await w.drain()
        await asyncio.sleep(0.01)
    w.write(chunk("", "stop") + DONE)


# Not in MODES (the hostile suite runs every mode there): the benchmark's honest reference.
EXTRA = {"honest": honest}

MODES = {f.__name__: f for f in (
    surrogate, invalid_utf8, controls, bad_finish, newlines, crlf, comments, empty_data, empty_events,
    tiny_events, burst, drip_line, drip_events, giant_line, json_bomb, object_bomb, gzip_bomb, gzip_error, slow_error,
    header_flood, info_flood, info_headers, tiny_chunks, chunk_ext, header_drip, endless, slow_endless, early_close, reset, miner_error, silent, bad_status,
    surrogate_error)}


def handler(mode):
    async def handle(reader, writer):
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            await reader.readexactly(length)
            await (MODES.get(mode) or EXTRA[mode])(writer)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()
    return handle


async def main(modes: list[str]) -> None:
    ports = []
    servers = []
    for mode in modes:
        if mode not in MODES and mode not in EXTRA:
            raise SystemExit(f"unknown mode {mode!r}; modes: {', '.join(MODES)}")
        server = await asyncio.start_server(handler(mode), "127.0.0.1", 0)
        servers.append(server)
        ports.append(server.sockets[0].getsockname()[1])
    print(json.dumps(ports), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1:]))
    except KeyboardInterrupt:
        pass
