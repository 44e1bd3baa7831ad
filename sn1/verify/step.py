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

import logging
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..llm.base import LLMError
from ..protocol.text import clean_text, decode_utf8
from .replay import end_drawn
from .rules import Policy, Verdict, check, fail
from .speed import timing_factors

log = logging.getLogger(__name__)


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
    # Proof travels with the text: how many of ``logprobs`` each chunk carried (parallel to
    # chunk_times and chunk_chars; None: not recorded, the answer is checked as one chunk).
    chunk_lp: list[int] | None = None

    @classmethod
    def of(cls, result) -> "Submission":
        return cls(completion=result.completion, logprobs=list(getattr(result, "logprobs", None) or []),
                   status=result.status, finish_reason=result.finish_reason,
                   chunk_times=list(result.chunk_times), chunk_tokens=list(result.chunk_tokens),
                   chunk_chars=list(getattr(result, "chunk_chars", None) or []),
                   chunk_lp=(list(result.chunk_lp) if getattr(result, "chunk_lp", None) is not None
                             else None))

    def chunk_token_counts(self) -> list[int]:
        """Verified tokens per text chunk (the speed weights): the proof each chunk carried."""
        if self.chunk_lp is not None and len(self.chunk_lp) == len(self.chunk_times):
            return list(self.chunk_lp)
        return list(self.chunk_tokens) if len(self.chunk_tokens) == len(self.chunk_times) else \
            [1] * len(self.chunk_times)


def model_label(path: str | None) -> str:
    """The name a request uses for the model (the ``model`` field): the GGUF file's stem."""
    if not path:
        from ..llm.embedded import embedded_gguf

        path = str(embedded_gguf())
    return Path(path).stem


ENGINES = ("auto", "llama.cpp", "transformers")


def transformers_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers", "gguf"))


class Verifier:
    """The validator's copy of the inference model, loaded on first use; one pass at a time.

    ``engine``: what computes the batched rows. ``llama.cpp`` - the miners' own engine;
    ``transformers`` - the same GGUF de-quantised to float32 (sn1/llm/hf_forcer.py: about twice
    as fast on CPU, the exact end check still on llama.cpp); ``auto`` - transformers where
    torch and transformers are installed."""

    def __init__(self, model_path: str | None = None, *, n_ctx: int = 1024, n_threads: int | None = None,
                 n_batch: int = 512, engine: str = "llama.cpp"):
        if engine not in ENGINES:
            raise ValueError(f"verification engine {engine!r}: one of {', '.join(ENGINES)}")
        self.model_path = model_path
        self.n_ctx, self.n_threads, self.n_batch = n_ctx, n_threads, n_batch
        self.auto = engine == "auto"
        self.engine = ("transformers" if transformers_available() else "llama.cpp") if self.auto else engine
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
                forcer = TeacherForcer(path, n_ctx=self.n_ctx, n_threads=self.n_threads,
                                       n_batch=self.n_batch, chat_format=chat_format)
                if self.engine == "transformers":
                    from ..llm.hf_forcer import HybridForcer, TorchRows

                    try:
                        forcer = HybridForcer(forcer, TorchRows(self.model_path, n_threads=self.n_threads))
                    except Exception as e:  # noqa: BLE001 - auto: llama.cpp verifies alone, slower
                        if not self.auto:
                            raise
                        log.warning("verification on llama.cpp only: transformers could not load %s (%s)",
                                    self.model_path or "the embedded model", str(e).splitlines()[0] if str(e) else e)
                        self.engine = "llama.cpp"
                self._forcer = forcer
            return self._forcer


@dataclass
class _Prepared:
    ids: list[int]
    alt_ids: list[list[int]]
    alt_lps: list[list[float]]


def _prepare(table, sub: Submission, policy: Policy) -> "_Prepared | Verdict":
    """Everything checked before a forward pass: the stream, the chunks' proof, the vocabulary."""
    if sub.status != "ok":
        return fail("stream", f"the stream did not complete (status {sub.status})")
    tokens = sub.logprobs
    if not tokens:
        return fail("logprobs", "no logprobs in the stream" if sub.completion else "empty answer")
    if len(tokens) > policy.max_tokens:
        return fail("length", f"{len(tokens)} tokens, more than max_tokens {policy.max_tokens}")
    ids = []
    for j, t in enumerate(tokens):
        i = table.by_bytes.get(t.token)
        if i is None:
            return fail("tokens", f"token {j} {t.token[:40]!r} is not in the model's vocabulary "
                                  "(logprobs of another model?)")
        ids.append(i)
    bad = _chunks_misaligned(sub)
    if bad is not None:
        return fail("chunks", bad)
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
    return _Prepared(ids, alt_ids, alt_lps)


def _judge(prep: _Prepared, rows, sub: Submission, policy: Policy, eog) -> Verdict:
    return check(rows, prep.ids, [t.logprob for t in sub.logprobs], prep.alt_ids, prep.alt_lps,
                 sub.finish_reason, eog, policy)


def _exact_end(forcer, prompt_ids: list[int], prep: "_Prepared", policy: Policy, eog,
               last_row=None) -> Verdict | None:
    """The end of a seeded "stop" answer judged on an honest engine's own arithmetic, without
    slack, or None if it holds: llama.cpp's one-token passes (a llama.cpp miner's rows, whatever
    its threads or batch size), or ``last_row`` where the forcer's batched rows are themselves
    an engine's arithmetic (``exact_batched_rows``: transformers, a transformers miner's rows).

    A truncated answer passed off as finished must not pass on a slack: at the end the miner
    reports no logprobs to pin the values, and a cheater who knows the seed picks the cut
    where the draw lies nearest the end token's interval (benchmarks/RESULTS.md: 0.5 nat of
    slack let 31% of such cuts pass, 0.1 nat 8%). Costs one pass per answer token, for answers
    that stopped before max_tokens only."""
    n = len(prep.ids)
    kw = dict(seed=int(policy.seed), n=n, temperature=policy.temperature, top_k=policy.top_k,
              top_p=policy.top_p, min_p=policy.min_p)
    if last_row is not None and getattr(forcer, "exact_batched_rows", False) and end_drawn(last_row, eog, **kw):
        return None
    stepwise = getattr(forcer, "logprobs_stepwise", forcer.logprobs)
    try:
        rows = stepwise(prompt_ids, prep.ids)
    except LLMError as e:
        return fail("length", str(e))
    if end_drawn(rows[n], eog, **kw):
        return None
    return fail("end", f"stopped after {n} tokens where the seeded sampler goes on "
                       "(checked on the engines' own arithmetic)")


def _rows_iter(forcer, prompt_ids: list[int], seqs: list[list[int]]):
    """(i, teacher-forced rows of seqs[i], or the LLMError why not) for every answer to one
    prompt. Where the forcer batches (``iter_logprobs``: the prompt evaluated once, several
    answers per pass, one batch of rows held at a time) answers that fit its context come
    from it; the rest, or all of them if the batched path fails, one at a time."""
    done: set[int] = set()
    many = getattr(forcer, "iter_logprobs", None)
    if many is not None:
        n_ctx = getattr(forcer, "n_ctx", None)
        fit = [i for i, s in enumerate(seqs) if n_ctx is None or len(prompt_ids) + len(s) <= n_ctx]
        try:
            for j, rows in many(prompt_ids, [seqs[i] for i in fit]):
                done.add(fit[j])
                yield fit[j], rows
        except LLMError:
            pass
    for i, seq in enumerate(seqs):
        if i not in done:
            try:
                yield i, forcer.logprobs(prompt_ids, seq)
            except LLMError as e:
                yield i, e


def verify_answer(forcer, prompt_ids: list[int], sub: Submission, policy: Policy) -> Verdict:
    """The verdict on one answer (blocking: one forward pass over its tokens)."""
    prep = _prepare(forcer.table, sub, policy)
    if isinstance(prep, Verdict):
        return prep
    rows = next(_rows_iter(forcer, prompt_ids, [prep.ids]))[1]
    if isinstance(rows, LLMError):
        return fail("length", str(rows))
    v = _judge(prep, rows, sub, policy, forcer.table.eog)
    if v.ok and sub.finish_reason == "stop" and policy.replays:     # as verify_step judges it
        v = _exact_end(forcer, prompt_ids, prep, policy, forcer.table.eog, rows[-1]) or v
    return v


def spell(tokens) -> str:
    """The text a run of tokens spells, decoded and cleaned exactly as chunk text is on the wire."""
    return clean_text(decode_utf8(b"".join(t.token for t in tokens)))


def _chunks_misaligned(sub: Submission) -> str | None:
    """Why the chunks' proof does not match their text, or None: every chunk carries the
    logprobs of exactly its own tokens, whose bytes spell that chunk's text (decoded and
    cleaned as the text was). Text without proof, proof sent after its text, proof of other
    bytes: the answer fails."""
    tokens = sub.logprobs
    counts = sub.chunk_lp
    if counts is None:          # no per-chunk record (a whole answer): one chunk
        if spell(tokens) != sub.completion:
            return "the logprobs' tokens do not spell the streamed text (another tokenisation or another text)"
        return None
    chars = sub.chunk_chars
    if len(counts) != len(chars) or sum(counts) != len(tokens) or sum(chars) != len(sub.completion):
        return "the chunks' logprobs do not add up to the answer's tokens"
    if len(sub.chunk_times) != len(counts):
        return "the chunks' arrival times do not match their logprobs"
    at = pos = 0
    for i, (k, c) in enumerate(zip(counts, chars)):
        text = sub.completion[pos:pos + c]
        if k <= 0:
            return f"chunk {i} has text but no logprobs (proof must travel with its text)"
        if spell(tokens[at:at + k]) != text:
            return (f"chunk {i}: its logprobs' tokens do not spell its text "
                    "(another tokenisation, another text or proof sent apart from its text)")
        at, pos = at + k, pos + c
    return None


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
            None if sub.chunk_lp is None else tuple(sub.chunk_lp), tuple(sub.chunk_chars),
            tuple((t.token, t.logprob, t.top) for t in sub.logprobs))


def verify_step(verifier: Verifier, messages, policy, subs: list[Submission]) -> StepVerification:
    """Verify every answer of a step and reward them (blocking: forward passes).

    ``policy``: one Policy for all, or one per submission - the request each miner was actually
    sent (its own seed: ``Policy.from_request(body)``). ``messages``: one conversation for all,
    or one per submission. Identical answers to identical requests are verified once; all
    answers to one prompt get their rows from one forcer call.

    Reward = 1.0 × timing factor for a verified answer, 0 for a failed one.
    """
    t0 = time.perf_counter()
    n = len(subs)
    policies = list(policy) if isinstance(policy, (list, tuple)) else [policy] * n
    convs = messages if messages and isinstance(messages[0], list) else [messages] * n
    if len(policies) != n or len(convs) != n:
        raise ValueError(f"{n} submissions need {n} policies and conversations, got "
                         f"{len(policies)} and {len(convs)}")
    forcer = verifier.forcer
    table = forcer.table
    verdicts: list[Verdict | None] = [None] * n
    seen: dict[tuple, int] = {}
    todo: dict[tuple, list[tuple[int, _Prepared]]] = {}     # prompt -> answers needing rows
    prompts: dict[tuple, list[int]] = {}
    for i, sub in enumerate(subs):
        key = (_key(sub), policies[i], repr(convs[i]))
        if key in seen:
            continue
        seen[key] = i
        prep = _prepare(table, sub, policies[i])
        if isinstance(prep, Verdict):
            verdicts[i] = prep
            continue
        pkey = repr(convs[i])
        if pkey not in prompts:
            prompts[pkey] = forcer.prompt_tokens(convs[i])
        todo.setdefault(pkey, []).append((i, prep))
    for pkey, items in todo.items():
        exact_end = []
        for j, r in _rows_iter(forcer, prompts[pkey], [prep.ids for _, prep in items]):
            i, prep = items[j]
            verdicts[i] = fail("length", str(r)) if isinstance(r, LLMError) else \
                _judge(prep, r, subs[i], policies[i], table.eog)
            if verdicts[i].ok and subs[i].finish_reason == "stop" and policies[i].replays:
                exact_end.append((i, prep, r[-1].copy()))
        for i, prep, last in exact_end:
            verdicts[i] = _exact_end(forcer, prompts[pkey], prep, policies[i], table.eog, last) or verdicts[i]
    for i, sub in enumerate(subs):
        if verdicts[i] is None:
            verdicts[i] = verdicts[seen[(_key(sub), policies[i], repr(convs[i]))]]
    ok = [v.ok for v in verdicts]
    # Speed from proven work only: the arrival times of chunks whose tokens were verified,
    # each weighted by the tokens its own proof carried (not the miner's n_tokens claims).
    factors = timing_factors([(s.chunk_times, s.chunk_token_counts()) for s in subs], ok)
    total = [f if v.ok else 0.0 for v, f in zip(verdicts, factors)]
    return StepVerification(total, verdicts, factors, time.perf_counter() - t0, len(seen))
