"""What strangers can hold on a server's port: bounded connections around uvicorn.

uvicorn (h11) alone keeps a connection that never sends its request line
forever, and its ``limit_concurrency`` counts idle connections: about a
thousand silent sockets made a miner answer 503 to its own validators. This
module bounds what any peer can hold before it has proved anything:

- ``ConnectionGuard`` + ``guarded_protocol``: a subclass of uvicorn's HTTP
  protocol that gives each connection ``header_timeout`` seconds for its
  request line and headers (from connect, or from the first byte of a request
  on a kept-alive connection; then ``408`` and close), caps connections per
  source address (``max_per_ip``) and connections not carrying a request
  (``max_idle``). At a cap an idle connection is closed to make room (the
  address's oldest; for the global cap the oldest of the address holding the
  most), so a newcomer (a validator) always gets in: holding sockets only
  pushes out the holder's own older sockets. A connection is refused only when all of its
  address's connections are busy with requests. An address from which a validator's
  signed request was verified (``trust``, by the app) may hold ``max_per_validator_ip``
  for ``TRUST_TTL`` seconds: a validator or a gateway runs many requests at once. Keep-alive idling is bounded
  by uvicorn's ``timeout_keep_alive``. With ``refuse_chunked`` a request whose body comes
  in HTTP chunks gets ``411`` and the connection is closed as soon as its headers are in:
  the parser turns each chunk into an event before the app sees any, so a stranger's
  one-byte chunks would cost the loop time in proportion to what it sends.
- ``Admission``: an ASGI wrapper that counts requests being handled (not
  connections) against ``max_active``; ``reserved`` of them are kept for
  requests that ``trusted(scope)`` accepts (the miner: signed by a registered
  validator). Past the limit: JSON 503 with ``Connection: close``.

Nothing here reads a body or calls the app for a refused peer: refusals cost
no model work.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

from .wire import encode_error

log = logging.getLogger("sn1.connections")

_408 = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: 36\r\nconnection: close\r\n\r\nrequest headers not received in time")
CHUNKED_REFUSAL = "send the body with a Content-Length (chunked request bodies are refused)"
_411 = (b"HTTP/1.1 411 Length Required\r\ncontent-type: text/plain; charset=utf-8\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n" % len(CHUNKED_REFUSAL) + CHUNKED_REFUSAL.encode())
HEAD_SLICE = 2048                     # bytes fed to the parser at a time until a request's headers are in


@dataclass
class ConnectionLimits:
    header_timeout: float = 5.0       # request line + headers
    keepalive_timeout: float = 5.0    # idle between requests on one connection
    max_per_ip: int = 64              # open connections from one source address
    max_idle: int = 1024              # connections not carrying a request, all addresses
    max_per_validator_ip: int = 1024  # from an address a validator's verified request came from
    refuse_chunked: bool = False      # 411 for a chunked request body, before any chunk is parsed


TRUST_TTL = 600.0                     # seconds an address stays trusted after a verified request
MAX_TRUSTED = 1024                    # addresses remembered (validators are few)


class ConnectionGuard:
    """Bookkeeping of open connections (one event loop, no locks needed).

    Idle connections are kept per address, oldest first, and addresses are
    bucketed by how many idle connections they hold, so the victim of the global
    cap (the oldest idle connection of the address holding the most) is found
    in O(1): a validator holding one connection is never the one closed while
    anyone holds more.
    """

    def __init__(self, limits: ConnectionLimits):
        self.limits = limits
        self.ip_of: dict = {}                       # open connection -> its source address
        self.per_ip: dict[str, int] = {}
        self.idle_by_ip: dict[str, OrderedDict] = {}   # address -> its idle connections, oldest first
        self.n_idle = 0
        self._by_count: dict[int, dict] = {}        # idle count -> addresses holding that many
        self._most = 0                              # the highest idle count of any address
        self.evicted = 0                            # idle connections closed to make room
        self.refused = 0                            # connections closed at once (address at its cap)
        self.header_timeouts = 0
        self.refused_chunked = 0                    # requests refused 411 at their headers
        self.trusted: OrderedDict[str, float] = OrderedDict()   # address -> trusted until (monotonic)

    def trust(self, ip: str) -> None:
        """A validator's signed request came from ``ip``: let it hold more connections."""
        self.trusted.pop(ip, None)
        self.trusted[ip] = time.monotonic() + TRUST_TTL
        while len(self.trusted) > MAX_TRUSTED:
            self.trusted.popitem(last=False)

    def cap(self, ip: str) -> int:
        until = self.trusted.get(ip)
        if until is not None and until > time.monotonic():
            return max(self.limits.max_per_ip, self.limits.max_per_validator_ip)
        return self.limits.max_per_ip

    # -- states ---------------------------------------------------------------------------
    def opened(self, conn, ip: str) -> bool:
        """Register a new (idle) connection; False: refuse it."""
        lim = self.limits
        if self.per_ip.get(ip, 0) >= self.cap(ip):
            same_ip = self.idle_by_ip.get(ip)
            if not same_ip:
                self.refused += 1
                return False
            self._evict(next(iter(same_ip)))
        if self.n_idle >= lim.max_idle:
            crowded = next(iter(self._by_count[self._most]))
            self._evict(next(iter(self.idle_by_ip[crowded])))
        self.ip_of[conn] = ip
        self.per_ip[ip] = self.per_ip.get(ip, 0) + 1
        self.set_idle(conn)
        return True

    def set_idle(self, conn) -> None:
        ip = self.ip_of.get(conn)
        if ip is None:
            return
        by_ip = self.idle_by_ip.setdefault(ip, OrderedDict())
        if conn in by_ip:
            return
        by_ip[conn] = None
        self.n_idle += 1
        self._recount(ip, len(by_ip) - 1, len(by_ip))

    def set_busy(self, conn) -> None:
        ip = self.ip_of.get(conn)
        by_ip = self.idle_by_ip.get(ip)
        if by_ip is None or conn not in by_ip:      # not idle
            return
        del by_ip[conn]
        self.n_idle -= 1
        self._recount(ip, len(by_ip) + 1, len(by_ip))
        if not by_ip:
            del self.idle_by_ip[ip]

    def _recount(self, ip: str, old: int, new: int) -> None:
        if old:
            bucket = self._by_count[old]
            del bucket[ip]
            if not bucket:
                del self._by_count[old]
        if new:
            self._by_count.setdefault(new, {})[ip] = None
            self._most = max(self._most, new)
        while self._most and self._most not in self._by_count:
            self._most -= 1

    def closed(self, conn) -> None:
        if conn not in self.ip_of:
            return
        self.set_busy(conn)
        ip = self.ip_of.pop(conn)
        n = self.per_ip[ip] - 1
        if n:
            self.per_ip[ip] = n
        else:
            del self.per_ip[ip]

    def _evict(self, conn) -> None:
        self.evicted += 1
        self.closed(conn)
        conn.drop()

    def snapshot(self) -> dict:
        return {"open": len(self.ip_of), "idle": self.n_idle, "addresses": len(self.per_ip),
                "evicted": self.evicted, "refused": self.refused, "header_timeouts": self.header_timeouts,
                "refused_chunked": self.refused_chunked}


def guarded_protocol(guard: ConnectionGuard, base: type | None = None) -> type:
    """uvicorn's HTTP protocol class (httptools or h11, as uvicorn would pick) bounded by ``guard``.

    Pass it as ``uvicorn.Config(http=...)`` with ``timeout_keep_alive`` set to the
    guard's ``keepalive_timeout``. It relies on what both uvicorn protocols
    share: ``self.cycle`` is set once a request's headers are complete and has
    ``response_complete``; ``on_response_complete`` runs when a response ends.
    """
    if base is None:
        from uvicorn.protocols.http.auto import AutoHTTPProtocol as base

    class GuardedProtocol(base):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._guard_timer = None
            self._guard_busy = False
            self._guard_refused = False
            ip = self.client[0] if self.client else ""
            if not guard.opened(self, ip):
                transport.abort()       # nothing read, nothing to flush
                return
            self._wait_headers()

        def data_received(self, data: bytes) -> None:
            if self._guard_refused:
                return                  # a refused request's body: dropped unparsed
            if guard.limits.refuse_chunked and not self._guard_busy and len(data) > HEAD_SLICE:
                # Until a request's headers are in, feed the parser a slice at a time, so a
                # chunked body behind them is refused before its chunks are parsed.
                for i in range(0, len(data), HEAD_SLICE):
                    super().data_received(data[i:i + HEAD_SLICE])
                    if self._refuse_if_chunked() or self.transport.is_closing():
                        return          # refused here, or by the parser (a 400 for garbage)
                    if self.cycle is not None and not self.cycle.response_complete:
                        super().data_received(data[i + HEAD_SLICE:])
                        break
            else:
                super().data_received(data)
            if guard.limits.refuse_chunked and self._refuse_if_chunked():
                return
            self._guard_update()

        def _refuse_if_chunked(self) -> bool:
            cycle = self.cycle
            if cycle is None or self.transport.is_closing():
                return False
            if not any(k.lower() == b"transfer-encoding" for k, _ in cycle.scope["headers"]):
                return False
            self._guard_refused = True
            guard.refused_chunked += 1
            self._cancel_timer()
            if not cycle.response_complete:     # else the app refused it already (same 411)
                cycle.disconnected = True       # the app, if it runs, writes nothing more
                try:
                    self.transport.write(_411)
                except Exception:
                    pass
            self.transport.close()
            return True

        def on_response_complete(self) -> None:
            super().on_response_complete()
            # A request sent right behind this one is parsed now (it waited for this response):
            # chunked, it is refused here, or its chunks would be parsed with nobody checking.
            if guard.limits.refuse_chunked and self._refuse_if_chunked():
                return
            self._guard_update()

        def connection_lost(self, exc) -> None:
            self._cancel_timer()
            guard.closed(self)
            super().connection_lost(exc)

        # -- guard ------------------------------------------------------------------------
        def _guard_update(self) -> None:
            if self.transport.is_closing():
                return
            busy = self.cycle is not None and not self.cycle.response_complete
            if busy and not self._guard_busy:           # headers complete: a request runs
                self._guard_busy = True
                self._cancel_timer()
                guard.set_busy(self)
            elif not busy and self._guard_busy:         # its response ended: kept alive
                self._guard_busy = False
                guard.set_idle(self)
            elif not busy and self._guard_timer is None and self._request_started():
                self._wait_headers()                    # the first bytes of the next request

        def _request_started(self) -> bool:
            # Bytes of a new request arrived on a kept-alive connection (uvicorn has then
            # cancelled its keep-alive timer): its headers get the same deadline.
            return getattr(self, "timeout_keep_alive_task", None) is None

        def _wait_headers(self) -> None:
            self._cancel_timer()
            self._guard_timer = self.loop.call_later(guard.limits.header_timeout, self._headers_late)

        def _cancel_timer(self) -> None:
            if self._guard_timer is not None:
                self._guard_timer.cancel()
                self._guard_timer = None

        def _headers_late(self) -> None:
            self._guard_timer = None
            if self._guard_busy or self.transport.is_closing():
                return
            guard.header_timeouts += 1
            try:
                self.transport.write(_408)
            except Exception:           # the peer is gone already
                pass
            self.transport.close()

        def drop(self) -> None:
            """Closed by the guard to make room (idle: nothing to flush)."""
            self._cancel_timer()
            self.transport.abort()

    return GuardedProtocol


class Admission:
    """ASGI wrapper: at most ``max_active`` requests handled at once, ``reserved`` of them
    only for requests ``trusted(scope)`` accepts; beyond, JSON 503 and the connection closed."""

    def __init__(self, app, max_active: int, reserved: int = 0,
                 trusted: Callable[[dict], bool] | None = None):
        self.app = app
        self.max_active = max_active
        self.reserved = reserved
        self.trusted = trusted
        self.active = 0
        self.refused = 0

    def __getattr__(self, name):      # app.state and friends stay reachable
        return getattr(self.app, name)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.max_active
        if self.reserved and self.active >= limit - self.reserved:
            if self.trusted is None or not self._trusted(scope):
                limit -= self.reserved
        if self.active >= limit:
            self.refused += 1
            body = encode_error(503, f"busy: {self.active} requests in progress; retry later")
            await send({"type": "http.response.start", "status": 503,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode()),
                                    (b"connection", b"close"), (b"retry-after", b"1")]})
            await send({"type": "http.response.body", "body": body, "more_body": False})
            return
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1

    def _trusted(self, scope) -> bool:
        try:
            return bool(self.trusted(scope))
        except Exception:                 # a broken check must not break serving
            log.exception("admission check failed")
            return False
