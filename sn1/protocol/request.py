"""Server-side validation of a chat-completions request body.

pydantic does the checking; we turn its first complaint into one line that
names the field (``messages.0.role: Input should be 'system', 'user' or
'assistant'``). Unknown fields are ignored, as OpenAI clients send extras.
"""

from __future__ import annotations

import json
import math
from typing import Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .logprobs import MAX_TOP_LOGPROBS

from .text import replace_surrogates

MAX_TIMEOUT = 3600.0
MAX_INT32 = 2**31 - 1         # integer fields an engine passes on as C ints
MAX_MODEL_CHARS = 256         # a model name (it is echoed in refusals)
# The largest request body a miner reads (its --neuron.max_request_bytes default). The gateway
# refuses any client body whose forwarded form would be larger, so that what it forwards fits
# every miner that keeps the default: one number, here, not two that must agree.
MAX_REQUEST_BYTES = 1 << 20
# Stop sequences: OpenAI allows up to 4. Each is matched against the text held back at every
# generated token (50,000 of them cost ~11-48 ms per token), so count and length are bounded.
MAX_STOP = 4
MAX_STOP_CHARS = 128


class RequestError(Exception):
    """A refused request: HTTP status, one-line message, and the field at fault."""

    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "user", "assistant"]
    content: str

    @field_validator("content", mode="before")
    @classmethod
    def _text_parts(cls, v):
        # OpenAI also allows content as a list of {"type": "text", "text": ...} parts.
        if isinstance(v, list):
            if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                       for p in v):
                raise ValueError("only text content parts are supported")
            return "".join(p["text"] for p in v)
        return v

    @field_validator("content")
    @classmethod
    def _valid_text(cls, v: str) -> str:
        # JSON may carry lone surrogates ("\ud800"): no engine can encode them, so U+FFFD.
        return replace_surrogates(v)


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    model: Optional[str] = Field(None, max_length=MAX_MODEL_CHARS)
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    max_tokens: Optional[int] = Field(None, ge=1, le=MAX_INT32)
    max_completion_tokens: Optional[int] = Field(None, ge=1, le=MAX_INT32)
    temperature: Optional[float] = Field(None, ge=0, le=2)
    top_p: Optional[float] = Field(None, gt=0, le=1)
    top_k: Optional[int] = Field(None, ge=0, le=MAX_INT32)
    # OpenAI's seed is a 64-bit integer; engines take its low 32 bits (llama.cpp, sn1.llm.sampler).
    seed: Optional[int] = Field(None, ge=-(2**63), le=2**64 - 1)
    stop: Optional[Union[str, list[str]]] = None
    timeout: Optional[float] = Field(None, gt=0, le=MAX_TIMEOUT)
    # Token logprobs in every chunk (OpenAI's fields); top_logprobs alternatives per token.
    logprobs: bool = False
    top_logprobs: Optional[int] = Field(None, ge=0, le=MAX_TOP_LOGPROBS)
    # The sampling algorithm the answer must follow with ``seed`` (e.g. "llama.cpp/dist-v1",
    # sn1/verify/replay.py): a miner that cannot run it refuses with 400.
    sampler: Optional[str] = Field(None, max_length=64)

    @model_validator(mode="after")
    def _logprobs_asked(self):
        if self.top_logprobs is not None and not self.logprobs:
            raise ValueError("top_logprobs needs logprobs: true")
        return self

    @field_validator("timeout")
    @classmethod
    def _finite(cls, v):
        if v is not None and not math.isfinite(v):
            raise ValueError("must be a finite number of seconds")
        return v

    @field_validator("stop")
    @classmethod
    def _valid_stop(cls, v):
        if v is None:
            return v
        items = [v] if isinstance(v, str) else v
        if len(items) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop sequences, got {len(items)}")
        for x in items:
            if not x:
                raise ValueError("a stop sequence must not be empty")
            if len(x) > MAX_STOP_CHARS:
                raise ValueError(f"a stop sequence has at most {MAX_STOP_CHARS} characters, got {len(x)}")
        return replace_surrogates(v) if isinstance(v, str) else [replace_surrogates(x) for x in v]

    @property
    def wants_logprobs(self) -> int | None:
        """How many alternatives per token the caller wants, None if no logprobs at all."""
        return (self.top_logprobs or 0) if self.logprobs else None

    @property
    def token_limit(self) -> int | None:
        return self.max_tokens if self.max_tokens is not None else self.max_completion_tokens

    @property
    def stop_list(self) -> list[str] | None:
        if self.stop is None:
            return None
        return [self.stop] if isinstance(self.stop, str) else list(self.stop)


def parse_request(body: bytes, model: type[ChatRequest] = ChatRequest, field_status: int = 422) -> ChatRequest:
    """Validate a raw body as ``model``; raises RequestError(400 bad JSON | ``field_status`` bad field)."""
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise RequestError(400, f"body is not valid JSON: {e}") from None
    except RecursionError:      # [[[[... nested past the interpreter's limit
        raise RequestError(400, "body is not valid JSON: nested too deeply") from None
    if not isinstance(obj, dict):
        raise RequestError(400, "body must be a JSON object")
    try:
        return model.model_validate(obj)
    except ValidationError as e:
        err = e.errors(include_url=False)[0]
        field = ".".join(str(p) for p in err["loc"]) or "body"
        msg = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        raise RequestError(field_status, f"{field}: {msg}", field=field) from None


def parse_timeout_header(value: str | None) -> float | None:
    """The ``X-SN1-Timeout`` header (seconds); RequestError(422) if not a positive number."""
    if value is None:
        return None
    try:
        t = float(value)
    except ValueError:
        t = float("nan")
    if not (math.isfinite(t) and 0 < t <= MAX_TIMEOUT):
        raise RequestError(422, f"header X-SN1-Timeout: must be seconds in (0, {MAX_TIMEOUT:g}]",
                           field="X-SN1-Timeout")
    return t
