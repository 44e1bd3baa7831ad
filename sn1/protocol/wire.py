"""Wire format: request bodies, SSE chunk events, errors (see docs/protocol.md).

Everything here is plain json + bytes so both the miner's hot path (one chunk
encoded per batch of tokens) and the validator's (one json.loads per event)
stay cheap. Text is written as UTF-8 (``ensure_ascii=False``): a JSON payload is
only decoded once its whole SSE line has arrived, so a character split across
network reads is never decoded in halves.
"""

from __future__ import annotations

import json
import time
import uuid

from .logprobs import LogprobsError, decode_logprobs, encode_logprobs
from .text import clean_text, decode_utf8

CHAT_PATH = "/v1/chat/completions"
HEALTH_PATH = "/health"
# The caller's deadline in seconds may come in the body ("timeout") or in this header.
TIMEOUT_HEADER = "X-SN1-Timeout"
FINISH_REASONS = ("stop", "length", "timeout")
DONE = b"data: [DONE]\n\n"
MAX_FINISH_REASON = 32      # chars kept of a peer's finish_reason
MAX_CHUNK_TOKENS = 1 << 16  # a peer's n_tokens above this is ignored (counted as absent)


class ProtocolError(Exception):
    """A peer sent something that is not the SN1 wire format (message safe to log)."""


class MinerError(ProtocolError):
    """The miner itself reported an error in the stream (``data: {"error": ...}``)."""


def _dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def request_body(messages: list[dict], *, stream: bool = True, timeout: float | None = None,
                 max_tokens: int | None = None, temperature: float | None = None,
                 top_p: float | None = None, top_k: int | None = None, seed: int | None = None,
                 model: str = "sn1", stop: list[str] | None = None,
                 top_logprobs: int | None = None, sampler: str | None = None) -> bytes:
    """The exact bytes a caller signs and sends (fields left as None are omitted).

    ``top_logprobs`` (0-20) asks for token logprobs: ``logprobs: true`` plus that many
    alternatives per token. ``sampler`` names the sampling algorithm the answer must follow
    with ``seed`` (``"llama.cpp/dist-v1"``: sn1/verify/replay.py); miners that cannot run it
    refuse with 400.
    """
    body = {"model": model, "messages": messages, "stream": stream}
    if top_logprobs is not None:
        body["logprobs"] = True
    for k, v in (("max_tokens", max_tokens), ("temperature", temperature), ("top_p", top_p),
                 ("top_k", top_k), ("seed", seed), ("stop", stop), ("timeout", timeout),
                 ("top_logprobs", top_logprobs), ("sampler", sampler)):
        if v is not None:
            body[k] = v
    return _dumps(body).encode()


def new_completion_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex


class ChunkEncoder:
    """Encodes one stream's ``chat.completion.chunk`` events.

    The constant part of every event is rendered once; each chunk then costs
    one ``json.dumps`` of its text.
    """

    def __init__(self, model: str, completion_id: str | None = None, created: int | None = None):
        self.id = completion_id or new_completion_id()
        self.created = int(time.time()) if created is None else created
        head = _dumps({"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                       "model": model})[:-1]   # drop the closing brace
        self._prefix = ("data: " + head + ',"choices":[{"index":0,"delta":').encode()
        self._first = True

    def chunk(self, content: str, n_tokens: int, finish_reason: str | None = None,
              logprobs=None) -> bytes:
        """``logprobs``: the TokenLogprobs of this chunk's tokens (None: not asked for)."""
        delta = {"content": content}
        if self._first:
            delta = {"role": "assistant", "content": content}
            self._first = False
        fr = "null" if finish_reason is None else _dumps(finish_reason)
        lp = b"" if logprobs is None else \
            b',"logprobs":' + _dumps({"content": encode_logprobs(logprobs)}).encode()
        return b"".join((self._prefix, _dumps(delta).encode(), lp,
                         f',"finish_reason":{fr}}}],"n_tokens":{int(n_tokens)}}}\n\n'.encode()))


def encode_chunk(content: str, n_tokens: int, finish_reason: str | None = None, *,
                 model: str = "sn1", completion_id: str | None = None, logprobs=None) -> bytes:
    """One standalone chunk event (tests, tools). Streams use ChunkEncoder."""
    return ChunkEncoder(model, completion_id).chunk(content, n_tokens, finish_reason, logprobs)


def encode_completion(content: str, n_tokens: int, finish_reason: str, *, model: str = "sn1",
                      prompt_tokens: int = 0, completion_id: str | None = None, logprobs=None) -> bytes:
    """The ``chat.completion`` body answered to ``stream: false``."""
    choice = {"index": 0, "message": {"role": "assistant", "content": content},
              "finish_reason": finish_reason}
    if logprobs is not None:
        choice["logprobs"] = {"content": encode_logprobs(logprobs)}
    return _dumps({
        "id": completion_id or new_completion_id(), "object": "chat.completion",
        "created": int(time.time()), "model": model,
        "choices": [choice],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": n_tokens,
                  "total_tokens": prompt_tokens + n_tokens},
    }).encode()


def encode_error(status: int, message: str, *, field: str | None = None, sse: bool = False) -> bytes:
    """An OpenAI-style error object; as an SSE event when the stream already started."""
    err = {"message": message, "type": _ERROR_TYPES.get(status, "error"), "code": status}
    if field is not None:
        err["param"] = field
    body = _dumps({"error": err})
    return f"data: {body}\n\n".encode() if sse else body.encode()


_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 405: "invalid_request_error", 408: "timeout_error",
                413: "invalid_request_error", 422: "invalid_request_error", 429: "rate_limit_error", 500: "server_error",
                503: "overloaded_error"}


_scan_once = json.JSONDecoder().scan_once     # the C scanner, without json.loads' layers


def _loads(text: str):
    """``json.loads`` of a chunk at a fraction of its fixed cost per call: a stream of
    one-character events then costs little more per byte than honest batches."""
    try:
        obj, end = _scan_once(text, 0)
    except StopIteration as e:
        if text[:1].isspace() and text.strip():
            return _loads(text.lstrip())
        raise ValueError(f"Expecting value: char {e.value}") from None
    if end != len(text) and not text[end:].isspace():
        raise ValueError(f"Extra data: char {end}")
    return obj


def decode_chunk(payload: bytes) -> tuple[str, str | None, int]:
    """(content, finish_reason, n_tokens) of one SSE data payload; ProtocolError if malformed,
    MinerError if it is the miner's own error event.

    ``n_tokens`` is the miner's count for the chunk; other OpenAI-compatible
    servers don't send it, then a chunk with text counts as one. Text is always
    valid: invalid UTF-8 and lone surrogates become U+FFFD, control characters
    (but newline and tab) are dropped (``text.clean_text``).
    """
    return _chunk_fields(_parse(payload))


def decode_chunk_with_logprobs(payload: bytes) -> tuple[str, str | None, int, list]:
    """``decode_chunk`` plus the chunk's TokenLogprobs ([] when it has none), from one parse."""
    obj = _parse(payload)
    return (*_chunk_fields(obj), _logprobs_of(obj))


def decode_chunk_logprobs(payload: bytes) -> list:
    """The TokenLogprobs (sn1.protocol.logprobs) of one SSE data payload; [] when it has none.

    ProtocolError (one line) when they are malformed: wrong types, NaN/inf, more
    than 20 alternatives per token.
    """
    return _logprobs_of(_parse(payload))


def _parse(payload: bytes) -> dict:
    try:
        obj = _loads(decode_utf8(payload))
    except ValueError as e:
        raise ProtocolError(f"chunk is not JSON: {e}") from None
    except RecursionError:      # [[[[... nested past the interpreter's limit
        raise ProtocolError("chunk is JSON nested too deeply") from None
    if not isinstance(obj, dict):
        raise ProtocolError("chunk is not a JSON object")
    return obj


def _chunk_fields(obj: dict) -> tuple[str, str | None, int]:
    try:
        choice = obj["choices"][0]
        content = choice["delta"].get("content") or ""
        finish = choice.get("finish_reason")
    except (KeyError, IndexError, TypeError, AttributeError):
        err = obj.get("error")
        if err is not None:
            msg = err.get("message") if isinstance(err, dict) else err
            raise MinerError(f"miner error: {clean_text(str(msg)[:300])}") from None
        raise ProtocolError("chunk has no choices[0].delta") from None
    if not isinstance(content, str):
        raise ProtocolError("chunk content is not a string")
    n = obj.get("n_tokens")
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= MAX_CHUNK_TOKENS:
        n = 1 if content else 0
    if finish is not None:
        finish = clean_text(finish[:MAX_FINISH_REASON]) if isinstance(finish, str) else None
    return clean_text(content), finish, n


def _logprobs_of(obj: dict) -> list:
    try:
        raw = obj["choices"][0].get("logprobs")
    except (KeyError, IndexError, TypeError, AttributeError):
        return []       # _chunk_fields reports what is wrong with the chunk itself
    try:
        return decode_logprobs(raw)
    except LogprobsError as e:
        raise ProtocolError(str(e)) from None
