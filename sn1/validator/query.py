"""The validator side of the protocol (what Dendrite was): stream one question to many miners.

``MinerClient`` holds one httpx connection pool for all miners; ``query``
sends the same signed body to every target at once (``query_each``: a
request per target) and returns one ``MinerResult`` per target, in order. Per miner:

- its clock starts when its own request headers go on the wire (httpx trace
  hook), so signing, connecting and scheduling on the validator's side never
  count against it, and its deadline is that start plus ``timeout``;
- the stream is read as raw bytes through ``SSEParser``: only complete lines
  are decoded, so newlines and multi-byte characters split across network
  reads or chunks come out exactly as sent;
- everything that arrived before the deadline is kept (status ``timeout``
  with the partial text);
- hard caps on bytes and chunks: past them the answer is cut, the connection
  closed and ``truncated`` set;
- every failure is caught and becomes that miner's status; no miner can touch
  another's result.

Per chunk the work is one ``split`` per network read and one ``json.loads``
per event, so hundreds of streams fit on a couple of cores
(benchmarks/stream_fanout.py).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Protocol, Sequence

import httpx

from ..errors import one_line
from ..llm.base import GenParams
from ..protocol.auth import hotkey_signer, sign_headers
from ..protocol.budget import (DEFAULT_MAX_CHUNKS, MAX_EMPTY_EVENTS, WireBudget, body_allowance,
                               budgeted_client, reads_allowed)
from ..protocol.http import error_message
from ..protocol.sse import FEED_SLICE, SSEError, SSEParser
from ..protocol.wire import (CHAT_PATH, MinerError, ProtocolError, decode_chunk, decode_chunk_with_logprobs,
                             request_body)

log = logging.getLogger("sn1.validator.query")

DEFAULT_MAX_BYTES = 1 << 20        # per response: ~250k tokens of text, far past any max_tokens
MAX_EVENT_BYTES = 256 * 1024     # one SSE event; a batch of tokens is a few hundred bytes
MAX_DATA_LINES = 64              # per event; SN1 and OpenAI servers send one
MAX_MESSAGE = 300                # chars of MinerResult.message: one line, whatever a miner sent
# Connecting counts against nobody up to this: a miner that keeps its SYN queue full cannot
# stretch a query's deadline by the kernel's retries (1, 3, 7 s ...) past timeout + this.
CONNECT_ALLOWANCE = 2.0
_SEND_EVENT = "http11.send_request_headers.started"


class Target(Protocol):
    """What a metagraph Neuron offers: uid, hotkey and ``endpoint`` ("ip:port" or None)."""

    uid: int
    hotkey: str
    endpoint: str | None


@dataclass(slots=True)
class MinerResult:
    uid: int
    hotkey: str
    completion: str = ""
    # ok | timeout | http_error | connect_error | protocol_error | miner_error (docs/protocol.md)
    status: str = "connect_error"
    status_code: int | None = None     # HTTP status when a response arrived
    message: str = ""                  # why, when status != ok: one line of at most MAX_MESSAGE chars
    finish_reason: str | None = None   # the miner's: stop | length | timeout
    chunk_times: list[float] = field(default_factory=list)   # seconds since the request was sent
    chunk_tokens: list[int] = field(default_factory=list)
    process_time: float = 0.0
    truncated: bool = False            # cut at the byte or chunk cap
    n_bytes: int = 0
    logprobs: list | None = None       # TokenLogprobs of every chunk, when asked for
    chunk_chars: list[int] = field(default_factory=list)     # text delivered per chunk (speed weights)
    chunk_lp: list[int] | None = None   # token logprobs each chunk carried (proof travels with its text)

    @property
    def tokens(self) -> int:
        return sum(self.chunk_tokens)

    @property
    def time_to_first_chunk(self) -> float | None:
        return self.chunk_times[0] if self.chunk_times else None

    def to_dict(self) -> dict:
        d = {**asdict(self), "time_to_first_chunk": self.time_to_first_chunk}
        if self.logprobs is not None:
            from ..protocol.logprobs import encode_logprobs

            d["logprobs"] = encode_logprobs(self.logprobs)
        return d


def body_for(messages: list[dict], params: GenParams | None, timeout: float,
             model: str | None = None, sampler: str | None = None) -> bytes:
    p = params or GenParams()
    return request_body(messages, stream=True, timeout=timeout, max_tokens=p.max_tokens,
                        temperature=p.temperature, top_p=p.top_p, top_k=p.top_k, seed=p.seed,
                        stop=p.stop, top_logprobs=p.logprobs, model=model or "sn1", sampler=sampler)


class MinerClient:
    """One connection pool for every miner; use ``async with MinerClient(wallet) as c``."""

    def __init__(self, wallet, *, max_connections: int = 1024, max_bytes: int = DEFAULT_MAX_BYTES,
                 max_chunks: int = DEFAULT_MAX_CHUNKS, http: httpx.AsyncClient | None = None):
        self.wallet = wallet
        self.signer = hotkey_signer(wallet)
        self.max_bytes = max_bytes
        self.max_chunks = max_chunks
        self.max_events = max_chunks + MAX_EMPTY_EVENTS   # with text, and without (sn1.protocol.budget)
        self._own_http = http is None
        # No httpx timeouts: every request runs under its own asyncio deadline instead.
        # No keep-alive: a validator asks each miner once per step, further apart than a
        # miner keeps an idle connection open (uvicorn: 5 s), so reuse would buy nothing; and
        # under load httpcore's pool can expire an idle connection it has just handed to a
        # request (ReadError), which benchmarks/stream_fanout.py hit at 256 streams.
        # Every byte read counts (sn1.protocol.budget): 1xx floods, headers and HTTP framing too.
        self.wire_allowance = body_allowance(max_bytes, self.max_events)
        self.http = http or budgeted_client(max_connections, self.wire_allowance)

    async def __aenter__(self) -> "MinerClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._own_http:
            await self.http.aclose()

    async def query(self, neurons: Iterable[Target], messages: list[dict],
                    params: GenParams | None = None, *, timeout: float = 10.0,
                    on_chunk: Callable[[MinerResult, str, float], None] | None = None,
                    model: str | None = None) -> list[MinerResult]:
        """Stream ``messages`` to every target at once; results in the targets' order.

        ``params.logprobs`` set: token logprobs are asked for and collected in
        ``MinerResult.logprobs``; ``model`` names the model the miners must run.
        """
        body = body_for(messages, params, timeout, model)
        lp = params is not None and params.logprobs is not None
        return list(await asyncio.gather(*(self.query_one(n, body, timeout, on_chunk, logprobs=lp)
                                           for n in neurons)))

    async def query_each(self, neurons: Sequence[Target],
                         requests: Sequence[tuple[list[dict], GenParams | None, str | None, str | None]], *,
                         timeout: float = 10.0,
                         on_chunk: Callable[[MinerResult, str, float], None] | None = None) -> list[MinerResult]:
        """Like ``query``, but each target gets its own request ``(messages, params, model, sampler)``
        (the inference task: a seed per uid, the sampler that must draw with it). Results in the
        targets' order."""
        if len(neurons) != len(requests):
            raise ValueError(f"{len(neurons)} targets but {len(requests)} requests")
        return list(await asyncio.gather(*(
            self.query_one(n, body_for(m, p, timeout, model, sampler), timeout, on_chunk,
                           logprobs=p is not None and p.logprobs is not None)
            for n, (m, p, model, sampler) in zip(neurons, requests))))

    async def query_one(self, neuron: Target, body: bytes, timeout: float,
                        on_chunk: Callable[[MinerResult, str, float], None] | None = None, *,
                        logprobs: bool = False) -> MinerResult:
        """One miner, never raising (except on cancellation of the caller)."""
        r = MinerResult(uid=neuron.uid, hotkey=neuron.hotkey)
        r.logprobs = [] if logprobs else None
        r.chunk_lp = [] if logprobs else None
        if not neuron.endpoint:
            r.message = "no endpoint served on chain"
            return r
        loop = asyncio.get_running_loop()
        now = loop.time
        t0: float | None = None
        got_response = False
        read = _Read()
        budget = WireBudget(self.wire_allowance)
        start = now()
        try:
            async with asyncio.timeout_at(start + timeout) as deadline:
                async def trace(event: str, info) -> None:
                    nonlocal t0
                    await budget.trace(event, info)
                    if event == _SEND_EVENT and not deadline.expired():
                        t0 = now()
                        # the miner's own clock starts here; connecting may take CONNECT_ALLOWANCE
                        deadline.reschedule(min(t0, start + CONNECT_ALLOWANCE) + timeout)

                headers = sign_headers(self.signer, body, neuron.hotkey)
                headers.update({"content-type": "application/json", "accept": "text/event-stream",
                                "accept-encoding": "identity"})
                request = self.http.build_request("POST", f"http://{neuron.endpoint}{CHAT_PATH}",
                                                  content=body, headers=headers,
                                                  extensions={"trace": trace})
                response = await self.http.send(request, stream=True)
                got_response = True
                r.status_code = response.status_code
                try:
                    if t0 is None:      # a transport without the trace hook: the best we know
                        t0 = now()
                    await self._read(response, r, read, t0, now, on_chunk)
                finally:
                    await response.aclose()
        except TimeoutError:
            if read.complete:
                pass            # [DONE] arrived; only the end of the HTTP body was late
            elif r.status_code not in (None, 200):      # a refusal whose body never finished
                r.status, r.message = "http_error", f"HTTP {r.status_code} (its body not received within {timeout:g}s)"
            elif t0 is None:
                r.status, r.message = "connect_error", f"request not sent within {timeout:g}s"
            else:
                r.status = "timeout"
                r.message = (f"cut at the {timeout:g}s deadline" if got_response
                             else f"no response within {timeout:g}s")
        except (httpx.ConnectError, httpx.ConnectTimeout) as e:
            r.status = "connect_error"
            r.message = f"cannot connect to {neuron.endpoint}: {e or type(e).__name__}"
        except httpx.TransportError as e:
            if budget.exceeded and not read.complete:
                r.status, r.truncated = "protocol_error", True
                r.message = f"cut: {e} (response heads and HTTP framing count too)"
            elif not read.complete:
                r.status = "protocol_error" if got_response else "connect_error"
                cause = e.__cause__ or e.__context__
                r.message = f"connection lost: {type(e).__name__}: {e or cause!r}"
        except Exception as e:   # a bug or a hostile peer; contained to this miner
            log.debug("query of uid %s failed", neuron.uid, exc_info=True)
            r.status, r.message = "protocol_error", f"{type(e).__name__}: {e}"
        if r.message:
            r.message = one_line(r.message, MAX_MESSAGE)
        r.completion = "".join(read.parts)
        if read.complete:
            r.process_time = read.end
        elif t0 is not None:
            r.process_time = min(now() - t0, timeout) if r.status == "timeout" else now() - t0
        return r

    async def _read(self, response: httpx.Response, r: MinerResult, read: "_Read", t0: float, now,
                    on_chunk) -> None:
        if response.status_code != 200:
            r.status = "http_error"
            r.message = await error_message(response)
            return
        ctype = response.headers.get("content-type", "")
        if not ctype.startswith("text/event-stream"):
            r.status, r.message = "protocol_error", f"expected text/event-stream, got {ctype or 'nothing'!r}"
            return
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding not in ("", "identity"):   # we asked for identity: a compressed body is refused unread
            r.status, r.message = "protocol_error", f"content-encoding {encoding!r} not accepted (sent identity)"
            return
        max_bytes, max_chunks = self.max_bytes, self.max_chunks
        event_cap = min(max_bytes, MAX_EVENT_BYTES)
        parser = SSEParser(max_line=event_cap, max_event=event_cap, max_data_lines=MAX_DATA_LINES,
                           max_events=self.max_events)
        parts, times, tokens = read.parts, r.chunk_times, r.chunk_tokens
        n_bytes = 0
        empty = 0
        reads = 0
        cut = False
        try:
            async for raw in response.aiter_raw():
                if read.complete:
                    break     # bytes after [DONE]: ignore them, drop the connection
                t = now() - t0
                n_bytes += len(raw)
                reads += 1
                if reads > reads_allowed(n_bytes, self.max_events):
                    raise SSEError(f"{reads} HTTP chunks for {n_bytes} bytes: the body arrives in slivers")
                if n_bytes > max_bytes:
                    raw = raw[:len(raw) - (n_bytes - max_bytes)]
                    n_bytes, cut = max_bytes, True
                async for payload in _payloads(parser, raw):
                    if payload == b"[DONE]":
                        read.complete, read.end = True, t
                        r.status = "timeout" if r.finish_reason == "timeout" else "ok"
                        if r.status == "timeout":
                            r.message = "the miner stopped at the deadline"
                        break
                    lp = ()
                    if r.logprobs is None:
                        content, finish, n = decode_chunk(payload)
                    else:                   # one parse for the text and its token logprobs
                        content, finish, n, lp = decode_chunk_with_logprobs(payload)
                        r.logprobs.extend(lp)
                    if finish is not None:
                        r.finish_reason = finish
                    if content or lp:       # a chunk of proof is a chunk (its text may be cleaned away)
                        if r.chunk_lp is not None:
                            r.chunk_lp.append(len(lp))
                        parts.append(content)
                        times.append(t)
                        tokens.append(n)
                        r.chunk_chars.append(len(content))
                        if on_chunk is not None and content:
                            _call(on_chunk, r, content, t)
                        if len(times) >= max_chunks:
                            cut = True
                            break
                    else:
                        empty += 1
                        if empty > MAX_EMPTY_EVENTS:
                            raise SSEError(f"more than {MAX_EMPTY_EVENTS} events without text")
                if cut:
                    break
                # After [DONE] keep reading: the end of the HTTP body normally comes in the same
                # read, and a response read to its end leaves the connection in the pool.
        except SSEError as e:
            cut = True
            r.message = str(e)
        except MinerError as e:
            r.status, r.message = "miner_error", str(e)
            return
        except ProtocolError as e:
            r.status, r.message = "protocol_error", str(e)
            return
        finally:
            r.n_bytes = n_bytes
        if read.complete:
            return
        if cut:
            r.truncated = True
            r.status = "protocol_error"
            r.message = r.message or f"answer cut at {n_bytes} bytes / {len(times)} chunks"
        else:
            r.status, r.message = "protocol_error", "stream ended without data: [DONE]"


async def _payloads(parser: SSEParser, raw: bytes):
    """The event payloads in one network read, parsed ``FEED_SLICE`` bytes at a time with the
    event loop given back after each slice: a read can hold 64 KiB of tiny events, and the
    other miners' deadlines must fire on time."""
    for k in range(0, len(raw), FEED_SLICE):
        for payload in parser.feed(raw[k:k + FEED_SLICE] if len(raw) > FEED_SLICE else raw):
            yield payload
        if parser.error is not None:      # a cap, raised once the events before it were read
            raise parser.error
        await asyncio.sleep(0)


class _Read:
    """What one stream delivered so far (kept when a deadline interrupts the read)."""

    __slots__ = ("parts", "complete", "end")

    def __init__(self):
        self.parts: list[str] = []
        self.complete = False        # [DONE] arrived
        self.end = 0.0               # when it arrived, seconds after the request was sent


def _call(on_chunk, r, content, t) -> None:
    try:
        on_chunk(r, content, t)
    except Exception:   # a display callback must not fail a miner's result
        log.exception("on_chunk callback failed")


async def query_miners(wallet, neurons: Sequence[Target], messages: list[dict],
                       params: GenParams | None = None, *, timeout: float = 10.0,
                       client: MinerClient | None = None, **kw) -> list[MinerResult]:
    """One-shot helper: a fresh ``MinerClient`` (or ``client``) queries ``neurons``."""
    if client is not None:
        return await client.query(neurons, messages, params, timeout=timeout,
                                  on_chunk=kw.pop("on_chunk", None))
    on_chunk = kw.pop("on_chunk", None)
    async with MinerClient(wallet, **kw) as c:
        return await c.query(neurons, messages, params, timeout=timeout, on_chunk=on_chunk)

