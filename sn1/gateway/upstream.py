"""One signed, streamed request to one miner, read as (content, finish_reason, n_tokens) events.

``open_stream`` returns only once the miner's first content chunk (or its
``[DONE]``) is in hand, within ``first_chunk_timeout``; anything else — a
refusal, a connection error, garbage, silence — is a ``MinerFailure`` and the
caller may try the next miner, since the client has seen nothing yet. After
that, ``MinerStream.read`` gives the following events; a failure there is
final for this answer. Text is re-sanitised: only valid UTF-8 leaves the gateway.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx

from ..errors import one_line
from ..protocol.auth import sign_headers
from ..protocol.budget import MAX_EVENTS, WireBudget, body_allowance, reads_allowed
from ..protocol.metrics import CALLER_HEADER
from ..protocol.http import error_message
from ..protocol.sse import SSEError, SSEParser
from ..protocol.wire import CHAT_PATH, MinerError, ProtocolError, decode_chunk

MAX_EVENT_BYTES = 256 * 1024
MAX_MESSAGE = 300

Event = tuple[str, "str | None", int]


def wire_allowance(max_bytes: int) -> int:
    """Bytes on the wire an answer of ``max_bytes`` body bytes may take (heads, framing)."""
    return body_allowance(max_bytes, MAX_EVENTS)


class MinerFailure(Exception):
    """``kind``: refused | timeout | connect_error | protocol_error | connection_lost | too_large."""

    def __init__(self, kind: str, message: str, status: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = one_line(message, MAX_MESSAGE)
        self.status = status          # the miner's HTTP status when it refused


@dataclass
class MinerStream:
    response: httpx.Response
    max_bytes: int
    started: float                    # monotonic time the request was sent
    budget: WireBudget | None = None  # every byte on the wire (sn1.protocol.budget)

    def __post_init__(self):
        self._raw = self.response.aiter_raw()
        self._parser = SSEParser(max_line=MAX_EVENT_BYTES)
        self.n_bytes = 0
        self.reads = 0
        self.done = False             # [DONE] arrived

    async def read(self) -> list[Event]:
        """The next events (at least one unless ``done``); MinerFailure if the stream breaks."""
        out: list[Event] = []
        while not out and not self.done:
            try:
                raw = await self._raw.__anext__()
            except StopAsyncIteration:
                raise MinerFailure("protocol_error", "stream ended without data: [DONE]") from None
            except httpx.TransportError as e:
                if self.budget is not None and self.budget.exceeded:
                    raise MinerFailure("too_large", f"{e} (HTTP framing counts too)") from None
                raise MinerFailure("connection_lost", f"connection lost: {type(e).__name__}: {e}") from None
            self.n_bytes += len(raw)
            self.reads += 1
            if self.n_bytes > self.max_bytes:
                raise MinerFailure("too_large", f"answer passed {self.max_bytes} bytes")
            if self.reads > reads_allowed(self.n_bytes, MAX_EVENTS):
                raise MinerFailure("protocol_error",
                                   f"{self.reads} HTTP chunks for {self.n_bytes} bytes: the body arrives in slivers")
            try:
                payloads = self._parser.feed(raw)
            except SSEError as e:
                raise MinerFailure("protocol_error", str(e)) from None
            for p in payloads:
                if p == b"[DONE]":
                    self.done = True
                    break
                try:
                    content, finish, n = decode_chunk(p)
                except ProtocolError as e:     # decode_chunk already made the text valid
                    kind = "miner_error" if isinstance(e, MinerError) else "protocol_error"
                    raise MinerFailure(kind, str(e)) from None
                out.append((content, finish, n))
        return out

    async def aclose(self) -> None:
        await self.response.aclose()     # closes the connection: the miner stops generating


async def open_stream(http: httpx.AsyncClient, signer, endpoint: str, hotkey: str, body: bytes,
                      first_chunk_timeout: float, max_bytes: int) -> tuple[MinerStream, list[Event]]:
    """The miner's stream and its events up to and including the first with content."""
    started = time.monotonic()
    stream: MinerStream | None = None
    budget = WireBudget(wire_allowance(max_bytes))
    try:
        async with asyncio.timeout(first_chunk_timeout):
            headers = sign_headers(signer, body, hotkey)
            headers.update({"content-type": "application/json", "accept": "text/event-stream",
                            "accept-encoding": "identity", CALLER_HEADER: "gateway"})
            response = await http.send(http.build_request("POST", f"http://{endpoint}{CHAT_PATH}",
                                                          content=body, headers=headers,
                                                          extensions={"trace": budget.trace}), stream=True)
            stream = MinerStream(response, max_bytes, started, budget)
            if response.status_code != 200:
                raise MinerFailure("refused", await error_message(response), response.status_code)
            ctype = response.headers.get("content-type", "")
            if not ctype.startswith("text/event-stream"):
                raise MinerFailure("protocol_error", f"expected text/event-stream, got {ctype or 'nothing'!r}")
            events: list[Event] = []
            while not stream.done and not any(e[0] for e in events):
                events += await stream.read()
            return stream, events
    except BaseException as e:
        if stream is not None:
            await stream.aclose()
        if isinstance(e, TimeoutError):
            raise MinerFailure("timeout", f"no first chunk within {first_chunk_timeout:g}s") from None
        if isinstance(e, (httpx.ConnectError, httpx.ConnectTimeout)):
            raise MinerFailure("connect_error", f"{type(e).__name__}: {e}") from None
        if isinstance(e, httpx.TransportError):
            if budget.exceeded:
                raise MinerFailure("too_large", f"{e} (response heads and HTTP framing count too)") from None
            raise MinerFailure("connection_lost", f"{type(e).__name__}: {e}") from None
        raise


