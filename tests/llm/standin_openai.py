"""A stand-in for the OpenAI API on 127.0.0.1 (the real one is on the internet).

The model name picks the behaviour, or a last user message "!behaviour" (one miner process, many cases):
  ok         streams ANSWER word by word (also answers stream=false)
  slow       streams 2,000 words, one every 10 ms (cancellation: counts what it sent)
  ratelimit  429;  boom  500;  auth (or any model with a wrong key): 401
  malformed  one good chunk, then a line that is not JSON
  badshape   one good chunk, then JSON of the wrong shape
  stall      one good chunk, then silence for a minute
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from sn1.testing import free_port

KEY = "sk-standin-123"
ANSWER = "Paris is the capital of France.\nIt is also its largest city: 2.1 million people — café!"


def _chunk(content, finish=None, role=False):
    delta = {"content": content}
    if role:
        delta["role"] = "assistant"
    return "data: " + json.dumps({
        "id": "chatcmpl-standin", "object": "chat.completion.chunk", "created": int(time.time()),
        "model": "standin", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }) + "\n\n"


def _error(status, message, kind):
    return JSONResponse({"error": {"message": message, "type": kind, "code": None}}, status_code=status)


class StandIn:
    def __init__(self):
        self.requests: list[dict] = []
        self.sent: dict[str, int] = {}          # model -> chunks sent in the last request
        self.disconnected = threading.Event()
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        app = Starlette(routes=[Route("/v1/chat/completions", self.chat, methods=["POST"])])
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="openai-standin")

    def start(self):
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("stand-in server did not start")
            time.sleep(0.02)
        return self

    def stop(self):
        self.server.should_exit = True
        self.server.force_exit = True
        self.thread.join(10)

    async def chat(self, request: Request):
        body = await request.json()
        self.requests.append({"body": body, "auth": request.headers.get("authorization")})
        model = body.get("model")
        last = (body.get("messages") or [{}])[-1].get("content") or ""
        if last.startswith("!"):
            model = last[1:].split()[0]
        if request.headers.get("authorization") != f"Bearer {KEY}" or model == "auth":
            return _error(401, "Incorrect API key provided: sk-wr***ng.", "invalid_request_error")
        if model == "ratelimit":
            return JSONResponse({"error": {"message": "Rate limit reached for requests", "type": "requests",
                                           "code": "rate_limit_exceeded"}},
                                status_code=429, headers={"retry-after": "20"})
        if model == "boom":
            return _error(500, "The server had an error while processing your request.", "server_error")
        if not body.get("stream"):
            return JSONResponse({
                "id": "chatcmpl-standin", "object": "chat.completion", "created": int(time.time()),
                "model": model, "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER},
                                             "finish_reason": "stop"}]})
        self.sent[model] = 0
        # A fresh event per stream: an earlier stream hanging up late must not set this one's.
        self.disconnected = gone = threading.Event()
        return StreamingResponse(self._events(model, gone), media_type="text/event-stream")

    async def _events(self, model, gone):
        try:
            if model == "slow":
                words = [f"w{i} " for i in range(2000)]
            else:
                words = [w + " " for w in ANSWER.split(" ")]
                words[-1] = words[-1][:-1]
            for i, word in enumerate(words):
                yield _chunk(word, role=(i == 0))
                self.sent[model] += 1
                if model == "malformed":
                    yield 'data: {"id": "x", "choices": [{"delta": {"content": "oops"\n\n'
                    return
                if model == "badshape":
                    yield 'data: {"id": "x", "object": "chat.completion.chunk", "choices": "oops"}\n\n'
                    return
                if model == "stall":
                    await asyncio.sleep(60)
                await asyncio.sleep(0.01 if model == "slow" else 0)
            yield _chunk("", finish="stop")
            yield "data: [DONE]\n\n"
        except asyncio.CancelledError:
            gone.set()
            raise
        finally:
            if model in ("slow", "stall"):
                gone.set()
