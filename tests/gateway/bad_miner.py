"""A misbehaving miner for the gateway's tests: ``python bad_miner.py MODE PORT``.

Modes: ``surrogate`` answers a valid stream whose text carries a lone UTF-16
surrogate (``\\ud800``, legal JSON, not encodable as UTF-8); ``garbage`` answers
200 text/event-stream with a payload that is not JSON; ``silent`` accepts the
connection, reads the request and never answers.
"""

import asyncio
import sys

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
CHUNK = b'data: {"choices":[{"index":0,"delta":{"content":"%s"},"finish_reason":null}]}\n\n'
BODIES = {
    "surrogate": HEAD + CHUNK % b"bad \\ud800 text " + CHUNK % b"and more" + b"data: [DONE]\n\n",
    "garbage": HEAD + b"data: this is not json\n\n",
}


async def handle(mode, reader, writer):
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        await reader.readexactly(length)
        if mode == "silent":
            await asyncio.sleep(3600)
        writer.write(BODIES[mode])
        await writer.drain()
    finally:
        writer.close()


async def main(mode, port):
    server = await asyncio.start_server(lambda r, w: handle(mode, r, w), "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
