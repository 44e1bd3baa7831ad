"""The LLM layer shared by miners and the validator.

An engine offers a blocking ``chat`` and a blocking ``stream`` iterator; async
callers never call them directly on the event loop but through
``sn1.llm.aio`` (a thread per generation, cancellable). Engines hold no
per-request state: each call gets its own streamer / iterator.
"""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from typing import Iterator, Protocol, runtime_checkable

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

    def replace(self, **kw) -> "GenParams":
        d = asdict(self)
        d.update({k: v for k, v in kw.items() if v is not None})
        return GenParams(**d)


@runtime_checkable
class Engine(Protocol):
    name: str

    def chat(self, messages: Messages, params: GenParams) -> str:
        """The whole answer (blocking)."""
        ...

    def stream(self, messages: Messages, params: GenParams,
               cancel: threading.Event | None = None) -> Iterator[str]:
        """Yield text pieces (about one token each) as they are generated (blocking).

        Must stop producing tokens promptly once ``cancel`` is set.
        """
        ...
