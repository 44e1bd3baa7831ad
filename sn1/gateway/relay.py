"""One organic request: find a miner that starts answering, then relay that miner's answer only.

Before the first content chunk nothing has reached the client, so a miner
that refuses, fails or stays silent past ``first_chunk_timeout`` is replaced
by the next one in the router's order. From the first chunk on, the answer
is that miner's alone: if it breaks, a streaming client gets an error event
(never a second miner's words spliced in) and a non-streaming one a 502.

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

from ..protocol.wire import DONE, ChunkEncoder, encode_error, new_completion_id, request_body
from .metrics import Metrics
from .records import Record
from .routing import Candidate, Router
from .upstream import MinerFailure, MinerStream, open_stream

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
    pass


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
        order = self.router.order(self.s.max_attempts)
        if not order:
            why, retry_after = self.unavailable()
            raise NoMiner(why, retry_after)
        for c in order:
            self.router.start(c)
            try:
                stream, events = await open_stream(self.http, self.signer, c.endpoint, c.hotkey, body,
                                                   self.s.first_chunk_timeout, self.s.max_answer_bytes)
            except MinerFailure as f:
                self.router.end(c)
                self.router.outcome(c.uid, False)
                self.metrics.miner_failures.labels(str(c.uid), f.kind).inc()
                rec.failed.append((c.uid, f"{f.kind}: {f.message}"))
                continue
            except BaseException:
                self.router.end(c)
                raise
            rec.uid, rec.ttft = c.uid, time.monotonic() - t0
            self.metrics.ttft.observe(rec.ttft)
            return c, stream, events
        tried = "; ".join(f"uid {u}: {m}" for u, m in rec.failed)
        raise NoMiner(f"no miner could answer ({len(rec.failed)} tried): {tried}")

    async def run(self, req, max_tokens: int, send, rec: Record) -> None:
        """Answer ``req`` through ``send`` (ASGI), filling ``rec``."""
        t0 = time.monotonic()
        body = self.body(req, max_tokens)
        if self.s.log_content:
            rec.prompt = json.dumps([m.model_dump(exclude_none=True) for m in req.messages], ensure_ascii=False)
        try:
            c, stream, events = await self.first_miner(body, rec, t0)
        except NoMiner as e:
            rec.status, rec.message = "503", e.args[0]
            retry_after = e.args[1] if len(e.args) > 1 else 1
            return await send_json(send, 503, encode_error(503, e.args[0]),
                                   [(b"retry-after", str(retry_after).encode())])
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
                n = max(1, n)
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
        usage = {"prompt_tokens": 0, "completion_tokens": rec.tokens, "total_tokens": rec.tokens}
        if enc is not None:
            tail = enc.chunk("", 0, finish)
            if req.stream_options is not None and req.stream_options.include_usage:
                tail += ("data: " + json.dumps({"id": enc.id, "object": "chat.completion.chunk",
                                                "created": enc.created, "model": model, "choices": [],
                                                "usage": usage}) + "\n\n").encode()
            await send({"type": "http.response.body", "body": tail + DONE, "more_body": False})
        else:
            body = json.dumps({
                "id": new_completion_id(), "object": "chat.completion", "created": int(time.time()),
                "model": model, "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(parts)},
                                             "finish_reason": finish}],
                "usage": usage, "sn1": {"uid": c.uid, "ttft": rec.ttft}}, ensure_ascii=False).encode()
            await send_json(send, 200, body, meta)


async def send_json(send, status: int, body: bytes, headers: list | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body, "more_body": False})
