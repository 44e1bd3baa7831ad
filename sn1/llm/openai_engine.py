"""OpenAI-compatible HTTP engine (the `openai` client).

Works with api.openai.com and with anything that speaks the same API: a vLLM
or llama.cpp server, another SN1 miner... (``--neuron.base_url``).

The key comes from ``OPENAI_API_KEY`` in the environment or in a ``.env``
file (current folder or above). A custom base URL needs no key.

Every failure becomes one LLMError line: rejected key (401), rate limit
(429), server errors (5xx), a connection that cannot be made, a stream that
stalls longer than ``timeout`` seconds between bytes, malformed chunks. No
retries: a miner answering within a validator's 10 s window has no time for
back-off, and the caller decides what to do.

Cancelling a stream (``cancel`` set) hangs up the HTTP connection at once, even
while a read is blocked on a stalled upstream, so the remote side stops
generating and the worker thread ends.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from typing import Iterator

from ..errors import UsageError
from .base import GenParams, LLMError, Messages, Piece

log = logging.getLogger(__name__)

DEFAULT_MODEL = "gpt-3.5-turbo-1106"
_CANCEL_POLL_S = 0.05     # how soon a cancel reaches a stream stalled in a read


def load_api_key(env_var: str = "OPENAI_API_KEY") -> str | None:
    """The key from the environment, else from a .env file found from the current folder up."""
    if os.environ.get(env_var):
        return os.environ[env_var]
    from dotenv import dotenv_values, find_dotenv

    path = find_dotenv(usecwd=True)
    return (dotenv_values(path).get(env_var) or None) if path else None


class OpenAIEngine:
    name = "openai"
    logprobs = True     # passed through from the upstream (an LLMError when it sends none)

    def __init__(self, model_id: str | None = None, base_url: str | None = None, api_key: str | None = None,
                 timeout: float = 30.0, connect_timeout: float = 10.0, max_retries: int = 0):
        import openai

        key = api_key or load_api_key()
        if not key:
            if not base_url:
                raise UsageError("OPENAI_API_KEY is not set: export it or put it in a .env file "
                                 "(or point --neuron.base_url at a compatible server)")
            key = "sk-no-key"   # local compatible servers ignore it, the client insists on one
        _quiet_http_logs()
        self.model_name = model_id or DEFAULT_MODEL
        self.base_url = base_url
        self.client = openai.OpenAI(
            api_key=key, base_url=base_url, max_retries=max_retries,
            # `read` bounds the wait for each next piece of the stream: a stalled stream ends.
            timeout=openai.Timeout(timeout, connect=connect_timeout),
        )

    def _where(self) -> str:
        return self.base_url or "api.openai.com"

    def _error(self, exc: Exception) -> LLMError:
        import openai

        where = self._where()
        if isinstance(exc, openai.APIStatusError):
            code = exc.status_code
            what = {401: "rejected the API key", 403: "refused access", 404: "does not know the model or path",
                    429: "is rate limiting us"}.get(code, "server error" if code >= 500 else "refused the request")
            detail = _api_message(exc)
            return LLMError(f"openai: {where} {what} (HTTP {code})" + (f": {detail}" if detail else ""))
        if isinstance(exc, openai.APITimeoutError):
            return LLMError(f"openai: {where} stalled: no data within {self.client.timeout.read:g}s")
        if isinstance(exc, openai.APIConnectionError):
            return LLMError(f"openai: cannot reach {where}: {_cause(exc)}")
        if isinstance(exc, openai.APIError):
            return LLMError(f"openai: {where} sent an error: {_first_line(exc)}")
        if isinstance(exc, (json.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError, ValueError)):
            return LLMError(f"openai: malformed chunk from {where}: {type(exc).__name__}: {_first_line(exc)}")
        return LLMError(f"openai: {type(exc).__name__}: {_first_line(exc)}")

    def _request(self, messages: Messages, params: GenParams, stream: bool):
        kw = dict(model=self.model_name, messages=messages, stream=stream, max_tokens=params.max_tokens,
                  temperature=params.temperature, top_p=params.top_p)
        if params.seed is not None:
            kw["seed"] = params.seed
        if params.stop:
            kw["stop"] = params.stop
        if params.logprobs is not None:
            kw["logprobs"] = True
            kw["top_logprobs"] = params.logprobs
        if self.base_url:
            # OpenAI itself rejects top_k; compatible servers (vLLM, llama.cpp, SN1 miners) take it.
            kw["extra_body"] = {"top_k": params.top_k}
        return self.client.chat.completions.create(**kw)

    def stream(self, messages: Messages, params: GenParams,
               cancel: threading.Event | None = None) -> Iterator[str]:
        cancel = cancel or threading.Event()
        try:
            response = self._request(messages, params, stream=True)
        except Exception as e:  # noqa: BLE001 - mapped to one line
            raise self._error(e) from e
        # The loop below sees `cancel` only between chunks; a stalled upstream would keep this
        # thread (and the remote generation) going until the read timeout. A watcher hangs up.
        done = threading.Event()
        threading.Thread(target=_hang_up_on_cancel, args=(response.response, cancel, done), daemon=True,
                         name="sn1-openai-cancel").start()
        try:
            for chunk in response:
                if cancel.is_set():
                    break
                if not chunk.choices:       # usage-only or keep-alive chunks carry no choices
                    if getattr(chunk, "object", None) not in ("chat.completion.chunk", None):
                        raise ValueError(f"unexpected object {chunk.object!r}")
                    continue
                piece = chunk.choices[0].delta.content
                if piece is not None and not isinstance(piece, str):
                    raise TypeError(f"content is {type(piece).__name__}, not text")
                if params.logprobs is not None:
                    tokens = _upstream_logprobs(chunk.choices[0])
                    if piece and not tokens:
                        raise LLMError(f"openai: {self._where()} sent no logprobs (asked for them)")
                    if piece or tokens:
                        yield Piece(piece or "", tokens)
                elif piece:
                    yield piece
        except LLMError:
            raise
        except Exception as e:  # noqa: BLE001
            if cancel.is_set():
                return          # the watcher's hang-up broke the read: a cancelled stream ends quietly
            raise self._error(e) from e
        finally:
            done.set()
            response.close()    # drops the connection: the server stops generating for us

    def chat(self, messages: Messages, params: GenParams) -> str:
        return "".join(self.stream(messages, params))


def _hang_up_on_cancel(http_response, cancel: threading.Event, done: threading.Event) -> None:
    """Once ``cancel`` is set (before ``done``), drop the connection under a blocked read."""
    while not cancel.wait(_CANCEL_POLL_S):
        if done.is_set():
            return
    if done.is_set():
        return
    stream = http_response.extensions.get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    try:
        if sock is not None and http_response.http_version == "HTTP/1.1":
            # shutdown, not close: it wakes the thread blocked in recv() and sends FIN to the server.
            # (socket.socket's own method, so a TLS socket keeps its state for the reader's cleanup.)
            # An HTTP/1.1 connection carries only this response, so no other request is hit.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)
        else:
            http_response.close()
    except Exception as e:  # noqa: BLE001 - already closed by the reader: nothing left to do
        log.debug("openai: hang-up after cancel: %s", e)


def _quiet_http_logs() -> None:
    """The client logs every request at INFO; keep that for --logging.trace only."""
    from ..config import TRACE

    if logging.getLogger().level > TRACE:
        for name in ("httpx2", "openai"):
            if logging.getLogger(name).level == logging.NOTSET:
                logging.getLogger(name).setLevel(logging.WARNING)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _cause(exc: BaseException) -> str:
    inner = exc.__cause__ or exc.__context__
    return _first_line(inner) if inner else _first_line(exc)


def _api_message(exc) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        msg = err.get("message") if isinstance(err, dict) else err
        if isinstance(msg, str):
            return msg.splitlines()[0][:300]
    return ""


def _upstream_logprobs(choice) -> list:
    """The upstream chunk's ``logprobs.content`` entries, checked like any peer's."""
    from ..protocol.logprobs import LogprobsError, decode_logprobs

    raw = getattr(choice, "logprobs", None)
    if raw is None:
        return []
    try:
        return decode_logprobs(raw.model_dump() if hasattr(raw, "model_dump") else raw)
    except LogprobsError as e:
        raise LLMError(f"openai: upstream logprobs: {e}") from None
