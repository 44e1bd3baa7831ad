"""Verify one step of the ``inference`` task: every miner's answer, teacher-forced, then rewards.

Tokenisation: the validator never re-tokenises the answer's text (a text has
many tokenisations and engines pick differently). It takes the miner's own
tokens - the ``bytes`` of each logprobs entry - and maps each to the model's
vocabulary id with those exact bytes. A token the vocabulary does not have,
or tokens that do not spell the streamed text, fail the answer: they are
logprobs of another model or another text.

Blocking (a forward pass per distinct answer): call ``verify_step`` in a
worker thread, never on the event loop.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..llm.base import LLMError
from .rules import Policy, Verdict, check, fail
from .speed import timing_factors


@dataclass
class Submission:
    """What a miner streamed (sn1.validator.query.MinerResult has these fields)."""

    completion: str
    logprobs: list                 # sn1.protocol.logprobs.TokenLogprob, in order
    status: str = "ok"
    finish_reason: str | None = None
    chunk_times: list[float] = field(default_factory=list)
    chunk_tokens: list[int] = field(default_factory=list)
    chunk_chars: list[int] = field(default_factory=list)

    @classmethod
    def of(cls, result) -> "Submission":
        return cls(completion=result.completion, logprobs=list(getattr(result, "logprobs", None) or []),
                   status=result.status, finish_reason=result.finish_reason,
                   chunk_times=list(result.chunk_times), chunk_tokens=list(result.chunk_tokens),
                   chunk_chars=list(getattr(result, "chunk_chars", None) or []))


def model_label(path: str | None) -> str:
    """The name a request uses for the model (the ``model`` field): the GGUF file's stem."""
    if not path:
        from ..llm.embedded import embedded_gguf

        path = str(embedded_gguf())
    return Path(path).stem


class Verifier:
    """The validator's copy of the inference model, loaded on first use; one pass at a time."""

    def __init__(self, model_path: str | None = None, *, n_ctx: int = 1024, n_threads: int | None = None,
                 n_batch: int = 512):
        self.model_path = model_path
        self.n_ctx, self.n_threads, self.n_batch = n_ctx, n_threads, n_batch
        self._forcer = None
        self._lock = threading.Lock()

    @property
    def forcer(self):
        with self._lock:
            if self._forcer is None:
                from ..llm.llamacpp_logprobs import TeacherForcer

                path, chat_format = self.model_path, None
                if not path:
                    from ..llm.embedded import embedded_gguf

                    path, chat_format = str(embedded_gguf()), "chatml"
                self._forcer = TeacherForcer(path, n_ctx=self.n_ctx, n_threads=self.n_threads,
                                             n_batch=self.n_batch, chat_format=chat_format)
            return self._forcer


def verify_answer(forcer, prompt_ids: list[int], sub: Submission, policy: Policy) -> Verdict:
    """The verdict on one answer (blocking: one forward pass over its tokens)."""
    if sub.status != "ok":
        return fail("stream", f"the stream did not complete (status {sub.status})")
    tokens = sub.logprobs
    if not tokens:
        return fail("logprobs", "no logprobs in the stream" if sub.completion else "empty answer")
    if len(tokens) > policy.max_tokens:
        return fail("length", f"{len(tokens)} tokens, more than max_tokens {policy.max_tokens}")
    table = forcer.table
    ids = []
    for j, t in enumerate(tokens):
        i = table.by_bytes.get(t.token)
        if i is None:
            return fail("tokens", f"token {j} {t.token[:40]!r} is not in the model's vocabulary "
                                  "(logprobs of another model?)")
        ids.append(i)
    spelled = b"".join(t.token for t in tokens).decode("utf-8", errors="replace")
    if spelled != sub.completion:
        return fail("tokens", "the logprobs' tokens do not spell the streamed text "
                              "(another tokenisation or another text)")
    alt_ids, alt_lps = [], []
    for j, t in enumerate(tokens):
        row_ids = []
        for a in t.top:
            i = table.by_bytes.get(a.token)
            if i is None:
                return fail("logprobs", f"token {j}: alternative {a.token[:40]!r} is not in the "
                                        "model's vocabulary")
            row_ids.append(i)
        if len(set(row_ids)) != len(row_ids):
            return fail("logprobs", f"token {j}: the same alternative is listed twice")
        alt_ids.append(row_ids)
        alt_lps.append([a.logprob for a in t.top])
    try:
        rows = forcer.logprobs(prompt_ids, ids)
    except LLMError as e:
        return fail("length", str(e))
    return check(rows, ids, [t.logprob for t in tokens], alt_ids, alt_lps, sub.finish_reason,
                 forcer.table.eog, policy)


@dataclass
class StepVerification:
    """The step's rewards and what the events log keeps of the verification."""

    total: list[float]
    verdicts: list[Verdict]
    factors: list[float]
    time: float = 0.0
    n_passes: int = 0

    def to_event(self) -> dict:
        return {
            "rewards": list(self.total), "reward_time": self.time,
            "verify_ok": [v.ok for v in self.verdicts],
            "verify_rule": [v.rule for v in self.verdicts],
            "verify_reason": [v.reason for v in self.verdicts],
            "verify_max_diff": [round(v.max_diff, 5) for v in self.verdicts],
            "verify_z": [None if v.z is None or not math.isfinite(v.z) else round(v.z, 3)
                         for v in self.verdicts],
            "timing_factor": [round(f, 4) for f in self.factors],
            "verify_passes": self.n_passes,
        }


def _key(sub: Submission) -> tuple:
    return (sub.status, sub.finish_reason, sub.completion,
            tuple((t.token, t.logprob, t.top) for t in sub.logprobs))


def _plan(table, subs: list[Submission], policy: Policy) -> list[list[int]]:
    """Token ids of the distinct answers that verify_answer will teacher-force, in order
    (those that fail before the forward pass are left out: they cost no pass)."""
    plan, keys = [], set()
    for sub in subs:
        key = _key(sub)
        if key in keys or sub.status != "ok" or not sub.logprobs or len(sub.logprobs) > policy.max_tokens:
            continue
        keys.add(key)
        ids = [table.by_bytes.get(t.token) for t in sub.logprobs]
        if None not in ids:
            plan.append(ids)
    return plan


def verify_step(verifier: Verifier, messages: list[dict], policy: Policy,
                subs: list[Submission]) -> StepVerification:
    """Verify every answer of a step (identical answers once) and reward them.

    Reward = 1.0 × timing factor for a verified answer, 0 for a failed one.
    """
    t0 = time.perf_counter()
    forcer = verifier.forcer
    prompt_ids = forcer.prompt_tokens(messages)
    seen: dict[tuple, Verdict] = {}
    verdicts = []
    if hasattr(forcer, "planned"):   # the distinct answers' forward passes batched (llamacpp_logprobs)
        forcer = forcer.planned(prompt_ids, _plan(forcer.table, subs, policy))
    for sub in subs:
        key = _key(sub)
        if key not in seen:
            seen[key] = verify_answer(forcer, prompt_ids, sub, policy)
        verdicts.append(seen[key])
    ok = [v.ok for v in verdicts]
    # Speed from what was delivered, not from what a miner claims: verified token counts,
    # chunk weights by the text each chunk carried.
    factors = timing_factors([(s.chunk_times, s.chunk_chars or s.chunk_tokens, len(s.logprobs)) for s in subs], ok)
    total = [f if v.ok else 0.0 for v, f in zip(verdicts, factors)]
    return StepVerification(total, verdicts, factors, time.perf_counter() - t0, len(seen))
