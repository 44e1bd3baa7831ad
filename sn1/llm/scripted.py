"""A deterministic stand-in engine for tests: no model, instant, same prompt -> same text.

It writes from the material in the prompt, so generated tasks are well formed:
- the material is the block under a ``#Context:`` / ``#Question:``-style header in
  the last user message, else the text after the last ``": "`` of a role-play
  system prompt (the persona's goal), else the last user message itself;
- asked to *ask* a question, it asks about a name found in the material;
- asked to role-play (a system prompt saying so), it writes a short opening
  message built from its goal ("Hey, I need <goal>: <query>");
- otherwise it answers with sentences of the material, preferring those that
  share words with a ``#Question:`` when there is one.

Output depends only on the messages and ``params.seed``/``params.max_tokens``
(about one word per token). ``ScriptedEngine(script=[...])`` returns the given
texts (or calls the given functions with (messages, params)) first, then falls
back to the rules above; ``calls`` records every request.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import threading
from collections import deque
from typing import Callable, Iterable, Iterator

from .base import GenParams, Messages

_HEADER = re.compile(r"^\s*#+\s*([A-Za-z ]{2,30}):?\s*$|^\s*#+\s*([A-Za-z ]{2,30}):\s*(.+)$", re.M)
_SENT = re.compile(r"[^.!?\n]+[.!?]?")
_NAME = re.compile(r"(?<![.!?]\s)(?<!^)\b([A-Z][\w'-]+(?:\s+(?:of\s+|the\s+)?[A-Z][\w'-]+)*)")
_STOP = {"the", "a", "an", "of", "to", "in", "and", "or", "is", "was", "are", "what", "which", "who",
         "how", "when", "did", "does", "do", "for", "on", "by", "with", "as", "at", "it", "that", "this"}
_OPENERS = ("Hi,", "Hey,", "Hello,", "Quick question:", "Okay so", "Please help:", "Hmm,", "So,")

Script = Iterable["str | Callable[[Messages, GenParams], str]"]


def _sections(text: str) -> dict[str, str]:
    """'#Context:\\n...\\n#Question:\\n...' -> {'context': ..., 'question': ...}."""
    out: dict[str, str] = {}
    matches = list(_HEADER.finditer(text))
    for i, m in enumerate(matches):
        name = (m.group(1) or m.group(2)).strip().lower()
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = (m.group(3) or "") + text[m.end():end]
        out[name] = body.strip()
    return out


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in _STOP}


def _limit(text: str, max_tokens: int) -> str:
    words = text.split()
    return text if len(words) <= max_tokens else " ".join(words[:max(1, max_tokens)])


def respond(messages: Messages, params: GenParams) -> str:
    key = json.dumps([messages, params.seed], sort_keys=True, default=str)
    rng = random.Random(hashlib.sha256(key.encode()).digest())
    system = " ".join(m.get("content", "") for m in messages if m.get("role") == "system")
    user = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
    parts = _sections(user)
    material = next((parts[k] for k in ("context", "text", "code", "problem", "criterion") if parts.get(k)),
                    None)
    instruction = user if not parts else user[:_HEADER.search(user).start()]

    goal = re.search(r"\bgoal\b[^:\n]*?(?:to get (?P<what>[^:\n]+))?:\s*(?P<query>.+)", system)
    if material is None and goal and re.search(r"role-?play|impersonat", system, re.I):
        query, what = goal.group("query").strip(), goal.group("what")
        if not query.endswith("?") and what:
            query = f"I need {what.strip()}: {query}"
        return _limit(f"{rng.choice(_OPENERS)} {query}", params.max_tokens)

    material = material or user
    sentences = [s.strip() for s in _SENT.findall(material) if len(s.split()) >= 3] or [material.strip()]

    if re.search(r"\bask\b|\bwrite (?:one|a|an) .*(?:question|request)", instruction, re.I):
        sentence = rng.choice(sentences)
        names = [n for n in _NAME.findall(sentence) if n.lower() not in _STOP]
        if not names:   # no name: the longest content word will do
            words = [w.strip("\"'(),;:.") for w in sentence.split()]
            names = [max((w for w in words if w.lower() not in _STOP), key=len, default=words[0])]
        subject = rng.choice(names)
        form = rng.choice(("What does the text say about {}?", "What is known about {}?",
                           "Why is {} mentioned?", "How is {} described?"))
        return _limit(form.format(subject), params.max_tokens)

    question = _words(parts.get("question", ""))
    if question:
        ranked = sorted(range(len(sentences)), key=lambda i: (-len(question & _words(sentences[i])), i))
        start = ranked[0]
    else:
        start = rng.randrange(len(sentences))
    chosen = sentences[start:start + 1 + rng.randrange(3)]
    return _limit(" ".join(chosen), params.max_tokens)


class ScriptedEngine:
    name = "scripted"

    def __init__(self, script: Script | None = None, model_id: str | None = None):
        self.model_name = model_id or "scripted"
        self._script = deque(script or [])
        self._lock = threading.Lock()
        self.calls: list[Messages] = []

    def chat(self, messages: Messages, params: GenParams) -> str:
        with self._lock:
            self.calls.append([dict(m) for m in messages])
            item = self._script.popleft() if self._script else None
        if item is None:
            return respond(messages, params)
        return item(messages, params) if callable(item) else str(item)

    def stream(self, messages: Messages, params: GenParams,
               cancel: threading.Event | None = None) -> Iterator[str]:
        for piece in re.findall(r"\s*\S+", self.chat(messages, params)):
            if cancel is not None and cancel.is_set():
                return
            yield piece
