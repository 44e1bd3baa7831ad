"""The chat page served at ``GET /`` (plain HTML and JavaScript in chat.html, no build step)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def html() -> str:
    return (Path(__file__).with_name("chat.html")).read_text(encoding="utf-8")
