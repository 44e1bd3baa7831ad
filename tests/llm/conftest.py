from __future__ import annotations

import threading
import time

import pytest

from sn1.llm.base import GenParams


class Recorder:
    """Wraps a real engine and records every piece it produced, and whether cancel was already set."""

    def __init__(self, inner):
        self.inner = inner
        self.name = getattr(inner, "name", "engine")
        self.produced: list[tuple[float, str, bool]] = []   # (time, piece, cancel already set)
        self.cancelled_at: float | None = None
        self.finished = threading.Event()

    def stream(self, messages, params, cancel=None):
        cancel = cancel or threading.Event()
        try:
            for piece in self.inner.stream(messages, params, cancel):
                if cancel.is_set() and self.cancelled_at is None:
                    self.cancelled_at = time.monotonic()
                self.produced.append((time.monotonic(), piece, cancel.is_set()))
                yield piece
        finally:
            self.finished.set()

    def chat(self, messages, params):
        return "".join(self.stream(messages, params))

    def after_cancel(self) -> int:
        return sum(1 for _, _, after in self.produced if after)


@pytest.fixture(scope="session")
def llama_engine():
    from sn1.llm.llamacpp import LlamaCppEngine

    return LlamaCppEngine()


@pytest.fixture
def story():
    return [{"role": "user", "content": "Tell me a long story about a dragon who learns to bake bread."}]


@pytest.fixture
def greedy():
    return GenParams(max_tokens=12, temperature=0.0)
