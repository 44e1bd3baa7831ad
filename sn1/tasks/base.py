"""The Task record and the generation helper the task definitions share."""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass, field
from typing import Callable

from ..datasets import Context
from ..errors import one_line
from ..llm.base import Engine, GenParams, LLMError
from ..rewards.spec import RewardSpec
from .clean import clean


class TaskError(Exception):
    """A task could not be built (no material, the LLM failed or gave nothing usable).

    The message is one line (the CLI prints it as ``error: ...``).
    """


@dataclass
class Task:
    name: str
    desc: str                      # what the persona uses the assistant for
    goal: str
    query: str                     # what the user wants
    reference: str                 # the ideal answer
    challenge: str                 # what is sent to miners
    persona: dict                  # {"profile", "mood", "tone"}
    context: Context
    rewards: list[RewardSpec]
    penalties: list[RewardSpec] = field(default_factory=list)
    static_query: bool = False     # query / reference written by code, not by the LLM
    static_reference: bool = False
    challenge_tries: int = 0
    challenge_rejections: list[str] = field(default_factory=list)
    challenge_fallback: str | None = None   # why a template rewrite was used, if it was
    timings: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def to_event(self) -> dict:
        """Flat, JSON-serialisable fields for the validator's events log."""
        return {
            "task": self.name,
            "task_desc": self.desc,
            "task_goal": self.goal,
            "query": self.query,
            "reference": self.reference,
            "challenge": self.challenge,
            "persona": dict(self.persona),
            "context": self.context.to_dict(),
            # Definitions; the validator's "rewards" key holds the scores.
            "reward_models": [asdict(s) for s in self.rewards],
            "penalty_models": [asdict(s) for s in self.penalties],
            "static_query": self.static_query,
            "static_reference": self.static_reference,
            "challenge_tries": self.challenge_tries,
            "challenge_rejections": list(self.challenge_rejections),
            "challenge_fallback": self.challenge_fallback,
            "task_timings": dict(self.timings),
            "extra": dict(self.extra),
        }


def generate(llm: Engine, rng: random.Random, params: GenParams, *, system: str, user: str,
             max_tokens: int, what: str, question: bool = False, tries: int = 2,
             shots: list[dict] | None = None, accept: Callable[[str], bool] | None = None) -> str:
    """One cleaned LLM answer; retried (new seed) when cleaning leaves nothing or ``accept`` says no.

    ``shots``: example user/assistant turns placed before the request.
    """
    messages = [{"role": "system", "content": system}, *(shots or []), {"role": "user", "content": user}]
    for _ in range(tries):
        p = params.replace(max_tokens=min(params.max_tokens, max_tokens), seed=rng.randrange(2**31))
        try:
            text = clean(llm.chat(messages, p), question=question)
        except LLMError as e:
            raise TaskError(f"LLM failed writing the {what}: {one_line(e)}") from e
        if len(re.findall(r"\w+", text)) >= 2 and (accept is None or accept(text)):
            return text
    raise TaskError(f"LLM gave no usable {what} in {tries} tries")
