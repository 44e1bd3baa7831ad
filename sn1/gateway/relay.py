"""One organic request: find a miner that starts answering, then relay that miner's answer only.

Before the first content chunk nothing has reached the client, so a miner
that refuses, fails or stays silent past ``first_chunk_timeout`` is replaced
by the next one in the router's order. From the first chunk on, the answer
is that miner's alone: if it breaks, a streaming client gets an error event
(never a second miner's words spliced in) and a non-streaming one a 502.

A refusal that blames the request (400, 413, 422) is not held against the miner unless another
miner then takes the same request; a request that would not fit the miners' body limit once
re-encoded is refused (413) before any miner is asked. Tokens are charged for the bytes relayed
(``charged_tokens``), never the miner's own count alone.

Streaming responses start only once the first chunk is in hand, so a request
no miner could take gets a real HTTP status (503), and the headers name the
miner that answers (``X-SN1-Miner-Uid``) and the time to its first token
(``X-SN1-TTFT-Ms``).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import httpx

from ..protocol.request import MAX_REQUEST_BYTES
from ..protocol.wire import DONE, ChunkEncoder, encode_error, new_completion_id, request_body
from .metrics import Metrics
from .records import Record
from .routing import Candidate, Router
from .upstream import MinerFailure, MinerStream, open_stream

# A miner refusing with one of these blames the request, not itself: it is not counted against
# the miner's reliability (a key holder must not be able to drive good miners to the floor).
CALLER_STATUSES = (400, 413, 422)
# Tokens are charged for what is relayed: a chunk costs the miner's count, but never less than
# its UTF-8 bytes / BYTES_PER_TOKEN (English runs ~4 bytes a token, CJK ~3, code ~3-4: an honest
# miner's count is higher, so it is charged its own; a miner claiming 1 token for 4 MiB is charged
# 524,288 and cut at max_tokens: at most 2x the bytes an honest answer of max_tokens holds).
BYTES_PER_TOKEN = 8
# usage.prompt_tokens: miners run different models with different tokenizers, so the gateway
# reports a model-independent estimate (OpenAI's rule of thumb: ~4 characters a token, plus a
# few tokens of chat template per message), labelled "estimated" in the response's "sn1" field.
PROMPT_CHARS_PER_TOKEN = 4
PROMPT_TOKENS_PER_MESSAGE = 4


USAGE_NOTE = (f"prompt_tokens estimated ({PROMPT_CHARS_PER_TOKEN} characters a token + "
              f"{PROMPT_TOKENS_PER_MESSAGE} a message); completion_tokens charged: the miner's count, "
              f"at least 1 per {BYTES_PER_TOKEN} bytes relayed")


def charged_tokens(content: str, claimed: int) -> int:
    """Tokens charged for one relayed chunk (see BYTES_PER_TOKEN)."""
    return max(1, claimed, -(-len(content.encode("utf-8", "replace")) // BYTES_PER_TOKEN))


def estimate_prompt_tokens(messages) -> int:
    return sum(PROMPT_TOKENS_PER_MESSAGE + -(-len(m.content) // PROMPT_CHARS_PER_TOKEN) for m in messages)


SSE_HEADERS = [(b"content-type", b"text/event-stream; charset=utf-8"), (b"cache-control", b"no-cache"),
               (b"x-accel-buffering", b"no")]
DEADLINE_GRACE = 2.0       # seconds past the miner's own deadline before the gateway cuts it


@dataclass
class RelaySettings:
    first_chunk_timeout: float = 5.0
    timeout: float = 60.0          # the miner's deadline for a whole answer
    max_attempts: int = 3
    max_answer_bytes: int = 4 << 20
    log_content: bool = False
    model: str = "sn1"


class NoMiner(Exception):
    """No miner answered: 503 (with when to retry), or the miners' own refusal of the caller's request."""

    def __init__(self, message: str, status: int = 503, retry_after: int = 1):
        super().__init__(message)
        self.status, self.retry_after = status, retry_after


class Relay:
    def __init__(self, router: Router, http: httpx.AsyncClient, signer, metrics: Metrics,
                 settings: RelaySettings):
        self.router = router
        self.http = http
        self.signer = signer
        self.metrics = metrics
        self.s = settings
        # () -> (why no miner can be asked, seconds until that may change), for the 503
        self.unavailable = lambda: ("no miner is serving: none in the metagraph has an endpoint", 1)

    def body(self, req, max_tokens: int) -> bytes:
        messages = [{"role": m.role, "content": m.content} for m in req.messages]
        timeout = min(req.timeout or self.s.timeout, self.s.timeout)
        return request_body(messages, stream=True, timeout=timeout, max_tokens=max_tokens,
                            temperature=req.temperature, top_p=req.top_p, top_k=req.top_k, seed=req.seed,
                            stop=req.stop_list)

    async def first_miner(self, body: bytes, rec: Record, t0: float):
        """(candidate, stream, events so far) of the first miner that starts answering; NoMiner if none."""
        refusals: list[tuple[Candidate, MinerFailure]] = []
        order = self.router.order(self.s.max_attempts)
        if not order:
            why, retry_after = self.unavailable()
            raise NoMiner(why, retry_after=retry_after)
        for c in order:
            self.router.start(c)
            try:
                stream, events = await open_stream(self.http, self.signer, c.endpoint, c.hotkey, body,
                                                   self.s.first_chunk_timeout, self.s.max_answer_bytes)
            except MinerFailure as f:
                self.router.end(c)
                if f.kind == "refused" and f.status in CALLER_STATUSES:
                    # the request's fault, not the miner's: no reliability lost, no failure
                    # counted, unless another miner takes the same request (below)
                    rec.failed.append((c.uid, f"refused the request ({f.status}): {f.message}"))
                    refusals.append((c, f))
                    continue
                self.router.outcome(c.uid, False)
                self.metrics.miner_failures.labels(str(c.uid), f.kind).inc()
                rec.failed.append((c.uid, f"{f.kind}: {f.message}"))
                continue
            except BaseException:
                self.router.end(c)
                raise
            rec.uid, rec.ttft = c.uid, time.monotonic() - t0
            self.metrics.ttft.observe(rec.ttft)
            for other, f in refusals:
                # another miner took this very request: it was fine, refusing it was the miner's
                # own doing (a cabal refusing every request as "bad" gains nothing by it)
                self.router.outcome(other.uid, False)
                self.metrics.miner_failures.labels(str(other.uid), f.kind).inc()
            return c, stream, events
        tried = "; ".join(f"uid {u}: {m}" for u, m in rec.failed)
        if refusals and len(refusals) == len(rec.failed):
            # every miner tried refused the request itself: the caller learns why, with that status
            status = 413 if any(f.status == 413 for _, f in refusals) else 400
            raise NoMiner(f"the miners refused the request ({len(refusals)} tried): {tried}", status)
        raise NoMiner(f"no miner could answer ({len(rec.failed)} tried): {tried}")

    async def run(self, req, max_tokens: int, send, rec: Record) -> None:
        """Answer ``req`` through ``send`` (ASGI), filling ``rec``."""
        t0 = time.monotonic()
        body = self.body(req, max_tokens)
        if len(body) > MAX_REQUEST_BYTES:
            # re-encoded with the gateway's fields (and its JSON): a body the miners would refuse
            # is refused here, before any miner is asked (and none is blamed)
            msg = (f"the request is {len(body)} bytes as forwarded to miners, over their "
                   f"{MAX_REQUEST_BYTES}-byte limit; shorten the messages")
            rec.status, rec.message = "413", msg
            return await send_json(send, 413, encode_error(413, msg))
        if self.s.log_content:
            rec.prompt = json.dumps([m.model_dump(exclude_none=True) for m in req.messages], ensure_ascii=False)
        try:
            c, stream, events = await self.first_miner(body, rec, t0)
        except NoMiner as e:
            rec.status, rec.message = str(e.status), str(e)
            return await send_json(send, e.status, encode_error(e.status, str(e)),
                                   [(b"retry-after", str(e.retry_after).encode())] if e.status == 503 else None)
        try:
            deadline = t0 + min(req.timeout or self.s.timeout, self.s.timeout) + DEADLINE_GRACE
            await asyncio.wait_for(self._answer(req, c, stream, events, max_tokens, send, rec),
                                   max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            rec.status, rec.message = "broken", "the miner passed its deadline"
            if req.stream:
                await send({"type": "http.response.body", "more_body": False,
                            "body": encode_error(504, f"miner uid {c.uid} passed the deadline", sse=True)})
            else:
                await send_json(send, 504, encode_error(504, f"miner uid {c.uid} passed the deadline"))
        finally:
            self.router.end(c)
            await stream.aclose()
            self.router.outcome(c.uid, rec.status != "broken")
            rec.duration = time.monotonic() - t0
            if rec.tokens and rec.ttft is not None and rec.duration > rec.ttft:
                self.metrics.tokens_per_second.observe(rec.tokens / (rec.duration - rec.ttft))
            self.metrics.tokens.inc(rec.tokens)

    async def _answer(self, req, c: Candidate, stream: MinerStream, events, max_tokens: int, send,
                      rec: Record) -> None:
        model = req.model or self.s.model
        parts: list[str] = []
        finish = None
        enc = ChunkEncoder(model) if req.stream else None
        meta = [(b"x-sn1-miner-uid", str(c.uid).encode()), (b"x-sn1-ttft-ms", f"{rec.ttft * 1000:.1f}".encode())]
        if enc is not None:
            await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS + meta})
        cut = False
        while True:
            out = []
            for content, fin, n in events:
                if fin is not None:
                    finish = fin
                if not content:
                    continue
                n = charged_tokens(content, n)     # never the miner's own claim alone
                if rec.tokens + n > max_tokens:     # a miner that ignores max_tokens is cut there
                    finish, cut = "length", True
                    break
                rec.tokens += n
                parts.append(content)
                if enc is not None:
                    out.append(enc.chunk(content, n))
            if out:
                await send({"type": "http.response.body", "body": b"".join(out), "more_body": True})
            if stream.done or cut:
                break
            try:
                events = await stream.read()
            except MinerFailure as f:
                rec.status, rec.message = "broken", f"{f.kind}: {f.message}"
                self.metrics.miner_failures.labels(str(c.uid), f.kind).inc()
                msg = f"miner uid {c.uid} failed mid-answer: {f.message}"
                if enc is not None:
                    await send({"type": "http.response.body", "body": encode_error(502, msg, sse=True),
                                "more_body": False})
                else:
                    await send_json(send, 502, encode_error(502, msg), meta)
                return
        finish = finish or "stop"
        rec.status = "ok"
        if self.s.log_content:
            rec.answer = "".join(parts)
        prompt = estimate_prompt_tokens(req.messages)
        usage = {"prompt_tokens": prompt, "completion_tokens": rec.tokens, "total_tokens": prompt + rec.tokens}
        if enc is not None:
            tail = enc.chunk("", 0, finish)
            if req.stream_options is not None and req.stream_options.include_usage:
                tail += ("data: " + json.dumps({"id": enc.id, "object": "chat.completion.chunk",
                                                "created": enc.created, "model": model, "choices": [],
                                                "usage": usage, "sn1": {"usage": USAGE_NOTE}}) + "\n\n").encode()
            await send({"type": "http.response.body", "body": tail + DONE, "more_body": False})
        else:
            body = json.dumps({
                "id": new_completion_id(), "object": "chat.completion", "created": int(time.time()),
                "model": model, "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(parts)},
                                             "finish_reason": finish}],
                "usage": usage, "sn1": {"uid": c.uid, "ttft": rec.ttft, "usage": USAGE_NOTE}},
                ensure_ascii=False).encode()
            await send_json(send, 200, body, meta)


async def send_json(send, status: int, body: bytes, headers: list | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body, "more_body": False})
