"""The gateway's HTTP routes.

``POST /v1/chat/completions`` checks, in this order and each before any
miner work: the API key (401), the body's size (413) and arrival (408), the
request itself (400), the key's limits (429 with Retry-After). Then the
relay answers it; a client that disconnects cancels the relay, which closes
the miner's connection (the miner stops generating). ``GET /v1/models``
needs a key too; ``/``, ``/health`` and ``/metrics`` are public.
"""

from __future__ import annotations

import asyncio
import logging
import time

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ..protocol.http import BodyTooLarge, read_body, wait_disconnect
from ..protocol.request import MAX_REQUEST_BYTES, RequestError
from ..protocol.wire import CHAT_PATH, encode_error
from . import page
from .limits import LimitExceeded
from .records import Record
from .relay import Relay, send_json
from .request import DEFAULT_MAX_TOKENS, parse
from .store import KeyRevoked, Store, StoreUnavailable

log = logging.getLogger("sn1.gateway")

# A long conversation; 10 MB bodies are refused unread. What the relay forwards is checked
# against the same bound (relay.Relay.run): a miner keeping its default never sees a larger body.
MAX_BODY = MAX_REQUEST_BYTES
BODY_TIMEOUT = 10.0
CLOSE = (b"connection", b"close")


class ChatEndpoint:
    def __init__(self, relay: Relay, store: Store, *, max_tokens: int = DEFAULT_MAX_TOKENS):
        self.relay = relay
        self.store = store
        self.metrics = relay.metrics
        self.max_tokens = max_tokens

    async def key_of(self, headers: Headers):
        """(key, None) or (None, why); StoreUnavailable when keys cannot be read."""
        auth = headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, "missing API key: send 'Authorization: Bearer <key>'"
        key = await self.store.lookup(token.strip())
        return key, None if key else "invalid or revoked API key"

    async def refuse(self, send, status: int, message: str, *, field=None, headers=None, rec=None):
        self.metrics.requests.labels(str(status)).inc()
        if rec is not None:
            rec.status, rec.message = str(status), message
            self.store.record(rec)
        await send_json(send, status, encode_error(status, message, field=field), headers)

    async def __call__(self, scope, receive, send) -> None:
        headers = Headers(scope=scope)
        # Refused before its body is read: the connection is closed too, or a caller could go on
        # sending a chunked body that the server parses (and drops) for as long as it likes.
        try:
            key, why = await self.key_of(headers)
        except StoreUnavailable as e:
            return await self.refuse(send, 503, e.message, headers=[(b"retry-after", b"1"), CLOSE])
        if key is None:
            return await self.refuse(send, 401, why, headers=[(b"www-authenticate", b"Bearer"), CLOSE])
        rec = Record(key_name=key.name)
        t0 = time.monotonic()
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY:
            return await self.refuse(send, 413, f"body of {length} bytes exceeds the {MAX_BODY}-byte limit",
                                     headers=[CLOSE], rec=rec)
        try:
            async with asyncio.timeout(BODY_TIMEOUT):
                body = await read_body(receive, MAX_BODY)
        except TimeoutError:
            return await self.refuse(send, 408, f"request body not received within {BODY_TIMEOUT:g}s",
                                     headers=[CLOSE], rec=rec)
        except BodyTooLarge:
            return await self.refuse(send, 413, f"body exceeds the {MAX_BODY}-byte limit",
                                     headers=[CLOSE], rec=rec)
        except ClientDisconnect:
            return
        try:
            req = parse(body)
        except RequestError as e:
            return await self.refuse(send, e.status, e.message, field=e.field, rec=rec)
        want = min(req.token_limit or self.max_tokens, self.max_tokens)
        try:
            grant = await self.store.admit(key, want)
        except LimitExceeded as e:
            return await self.refuse(send, 429, e.message, headers=[(b"retry-after", str(e.retry_after).encode())],
                                     rec=rec)
        except StoreUnavailable as e:       # nothing was counted: the client may retry
            return await self.refuse(send, 503, e.message, headers=[(b"retry-after", b"1")], rec=rec)
        except KeyRevoked:
            return await self.refuse(send, 401, "invalid or revoked API key", rec=rec,
                                     headers=[(b"www-authenticate", b"Bearer")])
        status = _StatusSend(send)
        self.metrics.in_flight.inc()
        watcher = asyncio.ensure_future(wait_disconnect(receive))
        relay = asyncio.ensure_future(self.relay.run(req, grant, status, rec))
        try:
            done, _ = await asyncio.wait({relay, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if relay in done or status.finished:
                # (once the response is complete the server reports a disconnect: not a client leaving)
                await relay
            else:
                relay.cancel()           # closes the miner's stream (MinerStream.aclose)
                rec.status = "client_gone"
                try:
                    await relay
                except asyncio.CancelledError:
                    pass
        except Exception as e:          # a bug: the client gets a 500, the gateway keeps serving
            log.exception("chat request failed")
            rec.status, rec.message = "error", f"{type(e).__name__}: {e}"
            if not status.started:
                await send_json(send, 500, encode_error(500, "internal error"))
        finally:
            watcher.cancel()
            relay.cancel()
            self.metrics.in_flight.dec()
            self.metrics.requests.labels(str(status.code or 499)).inc()
            rec.duration = time.monotonic() - t0
            await self.store.settle(key, grant, rec.tokens)
            self.store.record(rec)


class _StatusSend:
    """``send`` that remembers the response's status and whether it is complete."""

    def __init__(self, send):
        self.send = send
        self.code = None
        self.finished = False

    @property
    def started(self) -> bool:
        return self.code is not None

    async def __call__(self, message) -> None:
        if message["type"] == "http.response.start":
            self.code = message["status"]
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            self.finished = True
        await self.send(message)


def build_app(chat: ChatEndpoint, *, model: str = "sn1", health=None) -> Starlette:
    metrics = chat.metrics

    async def models(request):
        try:
            key, why = await chat.key_of(request.headers)
        except StoreUnavailable as e:
            return Response(encode_error(503, e.message), 503, media_type="application/json",
                            headers={"retry-after": "1"})
        if key is None:
            return Response(encode_error(401, why), 401, media_type="application/json")
        return JSONResponse({"object": "list", "data": [{"id": model, "object": "model", "created": 0,
                                                         "owned_by": "sn1"}]})

    async def health_route(request):
        body = {"status": "ok", **(health() if health else {})}
        return JSONResponse(body, 200 if body["status"] == "ok" else 503)

    async def metrics_route(request):
        if not getattr(metrics, "public", True):     # --metrics.port: served there only
            return await http_error(request, HTTPException(404))
        return Response(metrics.render(), media_type=metrics.content_type)

    async def index(request):
        return HTMLResponse(page.html())

    async def http_error(request, exc):     # unknown paths and methods in OpenAI's error shape too
        return Response(encode_error(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}"),
                        exc.status_code, media_type="application/json")

    return Starlette(routes=[Route(CHAT_PATH, chat, methods=["POST"]), Route("/v1/models", models),
                             Route("/health", health_route), Route("/metrics", metrics_route),
                             Route("/", index)],
                     exception_handlers={404: http_error, 405: http_error})
