"""HTTP helpers both ends of the wire share (miner and gateway serve; validator and gateway call).

Server side (ASGI): read a request body under a size cap, wait for the client
to hang up. Client side (httpx): a peer's refusal as one short line.
"""

from __future__ import annotations

import json

from starlette.requests import ClientDisconnect

ERROR_BODY_BYTES = 4096     # of a refusal's body: enough for any OpenAI error object


class BodyTooLarge(Exception):
    """The request body passed the caller's limit; nothing past it was read."""


async def read_body(receive, limit: int) -> bytes:
    """The request body, refusing (without reading on) once it passes ``limit`` bytes."""
    parts, size = [], 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = msg.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        parts.append(chunk)
        if not msg.get("more_body", False):
            return b"".join(parts)


async def wait_disconnect(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def error_message(response) -> str:
    """A peer's one-line reason for a non-200 httpx response (OpenAI error JSON or text),
    read up to a few KiB."""
    data = b""
    async for raw in response.aiter_raw():
        data += raw
        if len(data) >= ERROR_BODY_BYTES:
            break
    data = data[:ERROR_BODY_BYTES]
    try:
        msg = json.loads(data)["error"]["message"]
    except (ValueError, KeyError, TypeError, RecursionError):
        msg = data.decode("utf-8", "replace").strip()
    return f"HTTP {response.status_code}: {msg}" if msg else f"HTTP {response.status_code}"
