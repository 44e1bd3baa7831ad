"""A byte budget on the wire for responses read from miners (the validator's and the gateway's).

The readers' caps (``sn1.validator.query``, ``sn1.gateway.upstream``) count body bytes. A hostile
miner can make its peer parse bytes that never reach a body: endless ``100 Continue`` or ``103``
interim responses with thousands of headers, chunk extensions of kilobytes per byte of data.
httpcore reads every one of them through its network stream, so a stream that counts what it
reads bounds that work whatever shape it takes: ``HEAD_LIMIT`` bytes until the final response's
headers are in, then the body's own allowance.

These clients keep no connection alive between requests, so one connection carries one request
and a stream's count is that request's. ``WireBudget.trace`` goes into the request's ``trace``
extension (httpcore reports the stream it connected and the moment the headers are complete).
"""

from __future__ import annotations

import httpcore
import httpx

# What a reader of miners' streams lets one answer hold (the validator's MinerClient and the
# gateway's upstream both): events with text, and events without (role, finish, keep-alive).
DEFAULT_MAX_CHUNKS = 16384
MAX_EMPTY_EVENTS = 256
MAX_EVENTS = DEFAULT_MAX_CHUNKS + MAX_EMPTY_EVENTS
HEAD_LIMIT = 64 * 1024      # status lines and headers of every response, 1xx included
FRAMING_PER_CHUNK = 8       # an HTTP/1.1 chunk's size line and CRLFs ("3e8\r\n" ... "\r\n")
_CONNECTED = "connection.connect_tcp.complete"
_HEADERS_IN = "http11.receive_response_headers.complete"


class WireBudgetExceeded(httpcore.ReadError):
    """More bytes on the wire than the budget allows (httpx raises it as ``httpx.ReadError``)."""


class CountingStream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream, limit: int):
        self._inner = inner
        self.limit = limit
        self.used = 0

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data = await self._inner.read(max_bytes, timeout)
        self.used += len(data)
        if self.used > self.limit:
            raise WireBudgetExceeded(f"more than {self.limit} bytes on the wire")
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(self, *args, **kwargs) -> httpcore.AsyncNetworkStream:
        return CountingStream(await self._inner.start_tls(*args, **kwargs), self.limit)

    def get_extra_info(self, info: str):
        return self._inner.get_extra_info(info)


class CountingBackend(httpcore.AsyncNetworkBackend):
    """httpcore's own backend, its streams counted; ``limit``: a stream's budget until a
    request's ``WireBudget`` sets its own."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend, limit: int):
        self._inner = inner
        self.limit = limit

    async def connect_tcp(self, *args, **kwargs) -> httpcore.AsyncNetworkStream:
        return CountingStream(await self._inner.connect_tcp(*args, **kwargs), self.limit)

    async def connect_unix_socket(self, *args, **kwargs) -> httpcore.AsyncNetworkStream:
        return CountingStream(await self._inner.connect_unix_socket(*args, **kwargs), self.limit)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class WireBudget:
    """One request's budget: ``head`` bytes for every response head (1xx included), then ``body``
    bytes once the final headers are in. Compose ``trace`` into the request's trace extension."""

    def __init__(self, body: int, head: int = HEAD_LIMIT):
        self.body, self.head = body, head
        self.stream: CountingStream | None = None

    async def trace(self, event: str, info: dict) -> None:
        if event == _CONNECTED and isinstance(info.get("return_value"), CountingStream):
            self.stream = info["return_value"]
            self.stream.limit = self.head
        elif event == _HEADERS_IN and self.stream is not None:
            self.stream.limit = self.stream.used + self.body

    @property
    def exceeded(self) -> bool:
        return self.stream is not None and self.stream.used > self.stream.limit


def body_allowance(max_bytes: int, max_events: int) -> int:
    """Wire bytes an honest answer of at most ``max_bytes`` body bytes in ``max_events`` events
    can take: its body and one HTTP chunk's framing per event, and a margin."""
    return max_bytes + FRAMING_PER_CHUNK * max_events + HEAD_LIMIT


def reads_allowed(n_bytes: int, max_events: int) -> int:
    """Body pieces an honest answer of ``n_bytes`` arrives in: about one per event (an event
    is written as one HTTP chunk) plus the network's own splits. One-byte HTTP chunks reach
    the cap after a few kilobytes instead of costing their parser's time until the deadline."""
    return max_events + n_bytes // 256 + 64


def budgeted_client(max_connections: int, limit: int,
                    backend: httpcore.AsyncNetworkBackend | None = None) -> httpx.AsyncClient:
    """An httpx client without timeouts (callers hold their own deadlines) or keep-alive,
    whose connections count the bytes they read (``limit`` until a ``WireBudget`` sets one).
    ``backend``: the network under the count (httpcore's own by default)."""
    transport = httpx.AsyncHTTPTransport(
        trust_env=False, limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=0))
    # httpx takes no network backend; its transport is a thin shell around one httpcore pool.
    transport._pool = httpcore.AsyncConnectionPool(
        max_connections=max_connections, max_keepalive_connections=0,
        network_backend=CountingBackend(backend or httpcore.AnyIOBackend(), limit))
    return httpx.AsyncClient(transport=transport, timeout=None, trust_env=False)
