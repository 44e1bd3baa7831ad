"""The miner's HTTP server: everything around a backend's ``generate``.

``POST /v1/chat/completions`` (docs/protocol.md), checked in this order, each
refusal before any work: btauth/1 headers present (401), body size while
reading it (413), the whole body within ``body_timeout`` (408), signature /
freshness / replay / receiver (401), caller registered and, for LLM
backends, a validator that could pay for the work (403, see ``caller_refusal``), body valid (400/422), a generation slot
(429 when the line is full). Then the backend's async generator is streamed: the
first piece goes out alone, at once (time to first token is what a reader sees),
then pieces are batched up to ``streaming_batch_size`` or until the batch has
waited ``streaming_interval`` seconds, whichever comes first,
as chunks until it ends (``stop``),
reaches ``max_tokens`` (``length``) or the caller's deadline passes
(``timeout``). When the stream ends for any reason — done,
deadline, client gone, error — the generator is closed (``aclose``) before the
slot is freed, so engines stop generating. ``GET /health`` is public and does
no work.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..errors import one_line
from ..llm.base import DEFAULT_SYSTEM_PROMPT, GenParams, piece_tokens
from ..protocol.http import BodyTooLarge, read_body, wait_disconnect
from ..protocol.auth import AuthError, has_auth_headers, verify_headers
from ..protocol.connections import CHUNKED_REFUSAL
from ..protocol.request import MAX_REQUEST_BYTES, RequestError, parse_request, parse_timeout_header
from ..protocol.wire import (CHAT_PATH, DONE, HEALTH_PATH, TIMEOUT_HEADER, ChunkEncoder,
                             encode_completion, encode_error)
from .metrics import MinerMetrics
from .priority import PriorityGate, QueueFull

log = logging.getLogger("sn1.miner")

SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"),
               (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")]
FINAL_SEND_TIMEOUT = 2.0     # a caller that stopped reading never holds a slot past its deadline for long
RETRY_AFTER_S = 1


@dataclass
class MinerSettings:
    """The framework's knobs (from ``--neuron.*`` / ``--blacklist.*``, see cli.add_server_args)."""

    streaming_batch_size: int = 12
    streaming_interval: float = 0.1     # seconds a started batch may wait for more pieces
    max_concurrent: int = 4
    max_queue: int = 64
    max_request_bytes: int = MAX_REQUEST_BYTES   # the gateway forwards no larger body
    body_timeout: float = 5.0           # seconds to receive the whole body (408 beyond)
    max_timeout: float = 60.0           # the deadline when a caller names none, and the upper bound
    allow_non_registered: bool = False
    force_validator_permit: bool = False
    # Who may have work done (README "Where we differ"): None = the backend decides (every
    # backend but the test miners serves validators only).
    validators_only: bool | None = None
    min_stake: float = 1000.0           # a caller's stake must be at least this ...
    max_weights_age: int = 7200         # ... and its last weights at most this many blocks old (a day)
    system_prompt: str | None = DEFAULT_SYSTEM_PROMPT
    # Operator overrides: when set they win over the request's fields.
    max_tokens: int | None = None       # also caps a request's max_tokens
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None

    @classmethod
    def from_config(cls, config) -> "MinerSettings":
        from ..config import get

        s = cls()
        for name in ("streaming_batch_size", "streaming_interval", "max_concurrent", "max_queue", "max_request_bytes",
                     "body_timeout", "max_timeout", "max_tokens", "temperature", "top_p", "top_k"):
            setattr(s, name, get(config, f"neuron.{name}", getattr(s, name)))
        prompt = get(config, "neuron.system_prompt", s.system_prompt)
        s.system_prompt = prompt or None
        s.allow_non_registered = bool(get(config, "blacklist.allow_non_registered", False))
        s.force_validator_permit = bool(get(config, "blacklist.force_validator_permit", False))
        if get(config, "blacklist.allow_non_validators", False):
            s.validators_only = False
        elif get(config, "backend", None) in OPEN_BACKENDS:
            s.validators_only = False       # test miners: any registered hotkey, as before
        else:
            s.validators_only = True
        s.min_stake = float(get(config, "blacklist.min_stake", s.min_stake))
        s.max_weights_age = int(get(config, "blacklist.max_weights_age", s.max_weights_age))
        return s


# Test miners do no paid work: they keep serving any registered hotkey.
OPEN_BACKENDS = ("echo", "phrase", "mock")


def caller_refusal(neuron, block: int, *, min_stake: float, max_weights_age: int) -> str | None:
    """Why ``neuron`` is not a validator that could pay for this miner's work, or None to serve it.

    A validator permit alone says nothing while a subnet has fewer uids than
    validator slots (every uid holds one), so the chain must also show stake
    (at least ``min_stake``) and weights: set within ``max_weights_age``
    blocks of ``block``, or never set at all (a new validator needs answers
    before its first weights; its stake is what it risks). A relay that
    re-signs a validator's request with its own key is neither.
    """
    who = f"caller hotkey {neuron.hotkey}"
    if not neuron.validator_permit:
        return f"{who} has no validator permit; this miner serves only validators"
    if not neuron.stake >= min_stake:
        return (f"{who} holds {neuron.stake:g} stake, less than the {min_stake:g} this miner "
                f"requires of a validator (--blacklist.min_stake)")
    weighted = neuron.last_update > neuron.block_at_registration
    age = block - neuron.last_update
    if weighted and age > max_weights_age:
        return (f"{who} last set weights {age} blocks ago, more than the {max_weights_age} this miner "
                f"allows a validator (--blacklist.max_weights_age)")
    return None


class MetagraphView:
    """The miner's picture of the subnet: who may call and with what stake.

    Refreshed every ``interval`` seconds off the event loop; a signed request
    from an unknown hotkey triggers one early refresh at most every
    ``min_refresh`` seconds (a validator that just registered is served
    without waiting a whole interval).
    """

    def __init__(self, chain, interval: float = 60.0, min_refresh: float = 5.0,
                 chain_timeout: float = 30.0, own_hotkey: str | None = None):
        self.chain = chain
        self.own_hotkey = own_hotkey
        self.interval = interval
        self.min_refresh = min_refresh
        self.chain_timeout = chain_timeout
        self.metagraph = None
        self.by_hotkey: dict = {}
        self.last_refresh = -math.inf
        self._lock = asyncio.Lock()

    def set(self, metagraph) -> None:
        self.metagraph = metagraph
        self.by_hotkey = {n.hotkey: n for n in metagraph.neurons}
        self.last_refresh = time.monotonic()

    async def refresh(self) -> None:
        mg = await asyncio.wait_for(asyncio.to_thread(self.chain.metagraph), self.chain_timeout)
        self.set(mg)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.refresh()
            except Exception as e:   # keep serving with the last view
                log.warning("metagraph refresh failed, keeping the last one: %s", e)
                continue
            if self.own_hotkey and self.own_hotkey not in self.by_hotkey:
                log.error("this miner's hotkey %s is no longer registered on the subnet", self.own_hotkey)

    @property
    def block(self) -> int:
        return getattr(self.metagraph, "block", 0) or 0

    async def lookup(self, hotkey: str, accept=None):
        """The caller's neuron; an unknown hotkey (or one ``accept(neuron)`` refuses, e.g. a
        validator that just staked) triggers one early refresh, at most every ``min_refresh`` s."""
        neuron = self.by_hotkey.get(hotkey)
        stale = neuron is None or (accept is not None and not accept(neuron))
        if stale and self.chain is not None and \
                time.monotonic() - self.last_refresh >= self.min_refresh:
            async with self._lock:
                if time.monotonic() - self.last_refresh >= self.min_refresh:
                    try:
                        await self.refresh()
                    except Exception as e:
                        log.warning("metagraph refresh failed: %s", e)
                        self.last_refresh = time.monotonic()   # don't hammer a failing chain
            neuron = self.by_hotkey.get(hotkey)
        return neuron


@dataclass
class Stats:
    served: int = 0
    refused: dict = field(default_factory=dict)


class _Generation:
    """One backend generation, batched into chunks; its state survives cancellation so the
    handler can flush what was generated before the deadline.

    The first piece is sent on its own as soon as it exists; later pieces are
    batched until ``batch_size`` pieces or until the batch is ``interval``
    seconds old (checked as pieces arrive), whichever comes first.
    """

    def __init__(self, agen, batch_size: int, max_tokens: int, encoder: ChunkEncoder | None,
                 interval: float = 0.1, logprobs: bool = False):
        self.agen = agen
        self.logprobs = logprobs         # pieces carry token logprobs (sn1.llm.base.Piece) to send
        self.batch_lp: list = []         # the TokenLogprobs of the pending batch
        self.text_lp: list = []          # ... of a non-streaming answer
        self.batch_size = batch_size
        self.interval = interval
        self.max_tokens = max_tokens
        self.encoder = encoder
        self.batch: list[str] = []
        self.text: list[str] = []        # non-streaming answers
        self.n = 0
        self.batch_tokens = 0

    async def run(self, send) -> str:
        agen = self.agen
        clock = time.monotonic
        started = 0.0                    # when the pending batch got its first piece
        try:
            if self.max_tokens <= 0:
                return "length"
            async for piece in agen:
                if not isinstance(piece, str):
                    raise TypeError(f"backend yielded {type(piece).__name__}, not str")
                k = piece_tokens(piece) if self.logprobs else 1
                self.n += k
                if self.encoder is None:
                    self.text.append(piece)
                    if self.logprobs:
                        self.text_lp.extend(getattr(piece, "logprobs", ()))
                else:
                    batch = self.batch
                    if not batch:
                        started = clock()
                    batch.append(piece)
                    self.batch_tokens += k
                    if self.logprobs:
                        self.batch_lp.extend(getattr(piece, "logprobs", ()))
                    if self.n == k or self.batch_tokens >= self.batch_size or \
                            clock() - started >= self.interval:
                        data = self.encoder.chunk("".join(batch), self.batch_tokens,
                                                  logprobs=self.batch_lp if self.logprobs else None)
                        await send({"type": "http.response.body", "body": data, "more_body": True})
                        # Cleared only after send returned: a send cancelled while waiting for the
                        # socket wrote nothing, and the batch is flushed with the last chunk.
                        batch.clear()
                        self.batch_lp = []
                        self.batch_tokens = 0
                if self.n >= self.max_tokens:
                    return "length"
            return "stop"
        finally:
            close = getattr(agen, "aclose", None)
            if close is not None:
                await close()     # stops the engine, also when this task is cancelled


class ChatEndpoint:
    """ASGI app of ``POST /v1/chat/completions``."""

    def __init__(self, backend, hotkey: str, view: MetagraphView, settings: MinerSettings,
                 nonce_store=None):
        self.backend = backend
        self.hotkey = hotkey
        self.view = view
        self.settings = settings
        self.gate = PriorityGate(settings.max_concurrent, settings.max_queue)
        self.nonce_store = nonce_store
        self.model = getattr(backend, "name", type(backend).__name__)
        self.stats = Stats()
        self.metrics = MinerMetrics(self)

    # ---- refusals -------------------------------------------------------------------------
    async def _refuse(self, scope, receive, send, status: int, message: str, field: str | None = None,
                      headers: dict | None = None) -> None:
        self.stats.refused[status] = self.stats.refused.get(status, 0) + 1
        self.metrics.refused(status, message)
        log.debug("refused %d: %s", status, message)
        await Response(encode_error(status, message, field=field), status_code=status,
                       media_type="application/json", headers=headers)(scope, receive, send)

    def _params(self, req) -> GenParams:
        s = self.settings
        p = GenParams()
        max_tokens = req.token_limit or (s.max_tokens or p.max_tokens)
        if s.max_tokens:
            max_tokens = min(max_tokens, s.max_tokens)
        # A logprobs request is checked against its own sampling settings: they win over the
        # operator's (a cap on max_tokens still applies).
        mine = req.wants_logprobs is None
        return p.replace(
            max_tokens=max_tokens,
            temperature=s.temperature if s.temperature is not None and mine else req.temperature,
            top_p=s.top_p if s.top_p is not None and mine else req.top_p,
            top_k=s.top_k if s.top_k is not None and mine else req.top_k,
            seed=req.seed, stop=req.stop_list, logprobs=req.wants_logprobs,
        )

    def _logprobs_refusal(self, req) -> tuple[str, str] | None:
        """(field, why) when the request asks for logprobs this miner cannot give, else None.

        A logprobs request is checked token by token against a named model, so the
        model matters: a set ``model`` other than the one served is refused too.
        """
        if req.wants_logprobs is None:
            return None
        if not getattr(self.backend, "supports_logprobs", False):
            return "logprobs", f"this miner ({self.model}) cannot report token logprobs"
        if req.sampler is not None and req.sampler not in getattr(self.backend, "samplers", ()):
            return "sampler", f"sampler {req.sampler[:64]!r} is not run here (the seeded answer could not be replayed)"
        served = getattr(self.backend, "model_name", None)
        if req.model not in (None, "", "sn1") and served and req.model != served:
            return "model", f"model {req.model!r} is not served here (this miner serves {served!r})"
        return None

    def _messages(self, req) -> list[dict]:
        messages = [{"role": m.role, "content": m.content} for m in req.messages]
        if self.settings.system_prompt and not any(m["role"] == "system" for m in messages):
            messages.insert(0, {"role": "system", "content": self.settings.system_prompt})
        return messages

    # ---- the request ----------------------------------------------------------------------
    async def __call__(self, scope, receive, send) -> None:
        t_arrival = time.monotonic()
        s = self.settings
        headers = Headers(scope=scope)
        if not has_auth_headers(headers):
            return await self._refuse(scope, receive, send, 401,
                                      "missing btauth/1 headers (X-Bittensor-*): sign the request")
        if "transfer-encoding" in headers:
            # Validators send a Content-Length. A chunked body costs the HTTP parser one event per
            # chunk before anything is verified: one-byte chunks from a stranger stalled the loop.
            return await self._refuse(scope, receive, send, 411, CHUNKED_REFUSAL, headers={"Connection": "close"})
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > s.max_request_bytes:
            return await self._refuse(scope, receive, send, 413,
                                      f"body of {length} bytes exceeds the {s.max_request_bytes}-byte limit")
        try:
            # A deadline for the whole body, not per read: a caller dripping a byte at a time
            # must not hold a connection and its buffer for long.
            async with asyncio.timeout(s.body_timeout):
                body = await read_body(receive, s.max_request_bytes)
        except TimeoutError:
            return await self._refuse(scope, receive, send, 408,
                                      f"request body not received within {s.body_timeout:g}s",
                                      headers={"Connection": "close"})
        except BodyTooLarge:
            return await self._refuse(scope, receive, send, 413,
                                      f"body exceeds the {s.max_request_bytes}-byte limit")
        except ClientDisconnect:
            return
        path = scope.get("raw_path") or scope["path"].encode()
        path = path.decode("latin-1")
        if scope.get("query_string"):
            path += "?" + scope["query_string"].decode("latin-1")
        try:
            caller = verify_headers(headers, body, method=scope["method"], path=path,
                                    self_hotkey=self.hotkey, nonce_store=self.nonce_store)
        except AuthError as e:
            return await self._refuse(scope, receive, send, 401, f"{type(e).__name__}: {e}")

        def not_paying(n):   # why this caller could not be a paying validator, or None
            return caller_refusal(n, self.view.block, min_stake=s.min_stake,
                                  max_weights_age=s.max_weights_age)

        neuron = await self.view.lookup(caller, (lambda n: not_paying(n) is None) if s.validators_only else None)
        self.metrics.identify(neuron, headers)
        if neuron is None and not s.allow_non_registered:
            return await self._refuse(scope, receive, send, 403,
                                      f"caller hotkey {caller} is not registered on this subnet")
        if s.force_validator_permit and not (neuron is not None and neuron.validator_permit):
            return await self._refuse(scope, receive, send, 403,
                                      f"caller hotkey {caller} has no validator permit")
        if s.validators_only:
            why = (f"caller hotkey {caller} is not registered; this miner serves only validators"
                   if neuron is None else not_paying(neuron))
            if why is not None:
                return await self._refuse(scope, receive, send, 403, why)
        if neuron is not None and neuron.validator_permit:
            _trust_address(scope)
        try:
            req = parse_request(body)
            timeouts = [t for t in (req.timeout, parse_timeout_header(headers.get(TIMEOUT_HEADER)))
                        if t is not None]
        except RequestError as e:
            return await self._refuse(scope, receive, send, e.status, e.message, field=e.field)
        refusal = self._logprobs_refusal(req)
        if refusal is not None:
            return await self._refuse(scope, receive, send, 400, refusal[1], field=refusal[0])
        timeout = min(timeouts + [s.max_timeout])
        deadline = t_arrival + timeout
        params = self._params(req)
        messages = self._messages(req)
        stake = neuron.stake if neuron is not None else 0.0

        watcher = asyncio.ensure_future(wait_disconnect(receive))
        try:
            status = await self._admit(stake, deadline, watcher)
            if status == 429:
                return await self._refuse(scope, receive, send, 429,
                                          f"busy: {self.gate.active} generations running and "
                                          f"{self.gate.waiting} waiting; retry later",
                                          headers={"Retry-After": str(RETRY_AFTER_S)})
            if status == 503:
                return await self._refuse(scope, receive, send, 503,
                                          f"no generation slot within the {timeout:g}s deadline",
                                          headers={"Retry-After": str(RETRY_AFTER_S)})
            if status is None:   # the caller left while waiting
                return
            try:
                await self._generate(send, req.stream, messages, params, deadline, watcher,
                                     caller=caller, uid=None if neuron is None else neuron.uid,
                                     t_arrival=t_arrival)
            finally:
                self.gate.release()
        finally:
            watcher.cancel()

    async def _admit(self, stake: float, deadline: float, watcher) -> int | None:
        """200 with a slot held, 429 line full, 503 deadline passed, None caller gone."""
        gate = self.gate
        try:
            if gate.try_acquire():    # fast path: nobody waits, no task needed
                return 200
        except QueueFull:
            return 429
        acquire = asyncio.ensure_future(gate.acquire(stake))
        done, _ = await asyncio.wait({acquire, watcher}, timeout=max(0.0, deadline - time.monotonic()),
                                     return_when=asyncio.FIRST_COMPLETED)
        if acquire in done:
            # The line may have filled up before acquire() first ran.
            return 429 if acquire.exception() is not None else 200
        acquire.cancel()
        try:
            await acquire
            gate.release()            # it got the slot just as we gave up
        except (asyncio.CancelledError, QueueFull):
            pass
        return None if watcher in done else 503

    async def _generate(self, send, stream: bool, messages, params: GenParams, deadline: float,
                        watcher, *, caller: str, uid, t_arrival: float) -> None:
        encoder = ChunkEncoder(self.model) if stream else None
        gen = _Generation(self.backend.generate(messages, params), self.settings.streaming_batch_size,
                          params.max_tokens, encoder, self.settings.streaming_interval,
                          logprobs=params.logprobs is not None)
        if stream:
            await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        send = self.metrics.watch(send, stream)     # notes when the first chunk is written
        pump = asyncio.ensure_future(gen.run(send))
        error = None
        try:
            done, _ = await asyncio.wait({pump, watcher}, timeout=max(0.0, deadline - time.monotonic()),
                                         return_when=asyncio.FIRST_COMPLETED)
            if pump in done:
                try:
                    finish = pump.result()
                except Exception as e:
                    # One line per failure (an upstream that is down fails every request);
                    # the traceback only with --logging.debug.
                    finish, error = "error", one_line(f"backend failed: {type(e).__name__}: {e}", 500)
                    log.warning("%s", error, exc_info=log.isEnabledFor(logging.DEBUG))
            else:
                finish = "disconnect" if watcher in done else "timeout"
        finally:
            if not pump.done():
                pump.cancel()   # closes the backend's generator (see _Generation.run)
                try:
                    await pump
                except (asyncio.CancelledError, Exception):
                    pass
        self.stats.served += 1
        self.metrics.generated(finish, gen.n, t_arrival, send, error)
        elapsed = time.monotonic() - t_arrival
        log.info("uid %s (%s): %d tokens in %.2fs, %s", uid, caller[:8], gen.n, elapsed, finish)
        if finish == "disconnect":
            return
        if stream:
            if error is not None:
                tail = encode_error(500, error, sse=True)
            else:
                tail = encoder.chunk("".join(gen.batch), gen.batch_tokens, finish,
                                     logprobs=gen.batch_lp if gen.logprobs else None) + DONE
            try:
                await asyncio.wait_for(send({"type": "http.response.body", "body": tail,
                                             "more_body": False}), FINAL_SEND_TIMEOUT)
            except (asyncio.TimeoutError, OSError):
                pass
        else:
            if error is not None:
                body, status = encode_error(500, error), 500
            else:
                body, status = encode_completion("".join(gen.text), gen.n, finish, model=self.model,
                                                 logprobs=gen.text_lp if gen.logprobs else None), 200
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body, "more_body": False})


def validator_request(view: MetagraphView, scope) -> bool:
    """The request names (X-Bittensor-Hotkey) a registered hotkey holding a validator permit.

    Only decides who may use the connections reserved for validators: the
    signature is still checked by the endpoint, so naming someone else's
    hotkey buys at most ``body_timeout`` seconds of a reserved slot.
    """
    hotkey = Headers(scope=scope).get("x-bittensor-hotkey")
    neuron = view.by_hotkey.get(hotkey) if hotkey else None
    return neuron is not None and bool(getattr(neuron, "validator_permit", False))


def _trust_address(scope) -> None:
    """A validator's verified request: its address may hold more connections (the guard's
    ``max_per_validator_ip``), e.g. a gateway streaming many answers at once."""
    guard = getattr(getattr(scope.get("app"), "state", None), "guard", None)
    client = scope.get("client")
    if guard is not None and client:
        guard.trust(client[0])


def build_app(backend, hotkey: str, view: MetagraphView, settings: MinerSettings,
              nonce_store=None) -> Starlette:
    chat = ChatEndpoint(backend, hotkey, view, settings, nonce_store=nonce_store)

    async def health(request):
        return JSONResponse({"status": "ok", "hotkey": hotkey, "backend": chat.model,
                             "active": chat.gate.active, "waiting": chat.gate.waiting,
                             "served": chat.stats.served, "refused": chat.stats.refused,
                             **_connections(request)})

    def _connections(request) -> dict:
        guard = getattr(request.app.state, "guard", None)
        return {"connections": guard.snapshot()} if guard is not None else {}

    app = Starlette(routes=[Route(CHAT_PATH, chat, methods=["POST"]), Route(HEALTH_PATH, health)])
    app.state.chat = chat
    return app
