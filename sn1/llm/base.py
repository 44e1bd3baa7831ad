"""The LLM layer shared by miners and the validator.

An engine offers a blocking ``chat`` and a blocking ``stream`` iterator; async
callers never call them directly on the event loop but through
``sn1.llm.aio`` (a thread per generation, cancellable). Engines hold no
per-request state: each call gets its own streamer / iterator.
"""

from __future__ import annotations

import codecs
import threading
from dataclasses import asdict, dataclass
from typing import Iterable, Iterator, Protocol, runtime_checkable

from ..protocol.logprobs import TokenLogprob, TopLogprob  # noqa: F401 - re-exported for engines

Messages = list[dict]   # [{"role": "system"|"user"|"assistant", "content": str}]

DEFAULT_SYSTEM_PROMPT = (
    "You are a friendly chatbot who always responds concisely and helpfully. "
    "You are honest about things you don't know."
)


class LLMError(Exception):
    """The engine failed (bad answer from a remote API, model error...).

    The message is safe to show to a caller in one line.
    """


@dataclass
class GenParams:
    max_tokens: int = 256
    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 50
    seed: int | None = None
    stop: list[str] | None = None
    logprobs: int | None = None     # None: no logprobs; K: token logprobs with K alternatives each

    def replace(self, **kw) -> "GenParams":
        d = asdict(self)
        d.update({k: v for k, v in kw.items() if v is not None})
        return GenParams(**d)


class Piece(str):
    """A text piece that also carries the logprobs of the tokens it holds.

    It *is* a str, so every consumer of text pieces keeps working; engines that
    were asked for logprobs (``params.logprobs``) yield Pieces, one or more tokens
    each (a token that ends inside a UTF-8 character waits for the next one).
    """

    logprobs: tuple[TokenLogprob, ...]

    def __new__(cls, text: str, logprobs: Iterable[TokenLogprob] = ()):
        piece = super().__new__(cls, text)
        piece.logprobs = tuple(logprobs)
        return piece


class PieceAssembler:
    """Tokens -> Pieces whose text is exactly what the whole stream decodes to there.

    A Piece ends only where the UTF-8 decoder is between characters: a token that
    ends inside a character waits for the next one, however long the tokens are.
    Invalid bytes become U+FFFD, exactly as decoding the whole stream would. So
    every Piece's text is ``decode_utf8(its tokens' bytes)`` and the Pieces join to
    the whole stream's decoding (sn1.verify checks each chunk's text that way).
    At most ``MAX_TOKENS`` tokens wait (a model emitting garbage); then the
    buffer is flushed with replacement characters.
    """

    MAX_TOKENS = 64

    def __init__(self):
        self._tokens: list[TokenLogprob] = []
        self._buf = b""

    def add(self, token: TokenLogprob) -> "Piece | None":
        self._tokens.append(token)
        self._buf += token.token
        dec = codecs.getincrementaldecoder("utf-8")("replace")
        text = dec.decode(self._buf, final=False)
        if dec.getstate()[0] and len(self._tokens) < self.MAX_TOKENS:
            return None           # ends inside a character: wait for the rest of it
        return self._take(text + dec.decode(b"", final=True))

    def flush(self) -> "Piece | None":
        return self._take(self._buf.decode("utf-8", errors="replace")) if self._tokens else None

    def _take(self, text: str) -> "Piece":
        piece = Piece(text, self._tokens)
        self._tokens, self._buf = [], b""
        return piece


def piece_tokens(piece: str) -> int:
    """Tokens in a piece: a Piece's logprob entries, else one."""
    lp = getattr(piece, "logprobs", None)
    return len(lp) if lp else 1


@runtime_checkable
class Engine(Protocol):
    name: str

    def chat(self, messages: Messages, params: GenParams) -> str:
        """The whole answer (blocking)."""
        ...

    def stream(self, messages: Messages, params: GenParams,
               cancel: threading.Event | None = None) -> Iterator[str]:
        """Yield text pieces (about one token each) as they are generated (blocking).

        Must stop producing tokens promptly once ``cancel`` is set. When
        ``params.logprobs`` is set, pieces are ``Piece``s carrying token logprobs;
        an engine that cannot produce them has ``logprobs = False`` (class attribute)
        or raises LLMError.
        """
        ...
