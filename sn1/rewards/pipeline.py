"""Score one step: every reward and penalty model over all completions, then the totals (spec §6).

    r = Σ weight_i · reward_i(reference, completion)
    for each penalty j:  r *= 1 - weight_j · penalty_j(challenge, completion)

Reward models also see the challenge (keyword `challenge`) where their rule
needs it: rouge counts only words the challenge lacks, relevance is measured
above the challenge's own similarity, float_diff pays nothing for a number
copied from it. Penalty models compare with the challenge as the spec says,
and see the reference in its place: the rouge penalty counts only challenge
words the reference does not use, so an answer that names the topic the
question named is not penalised for it, while an echo still is in full.
source_copy compares with the validator's material (`source=`: the task's own
text and the public articles the completions quote, documents separated by
text.SOURCE_SEPARATOR; see sn1.tasks.material).

Isolation: whatever one completion does to a model (an exception, NaN, a
value outside [0, 1], a size over MAX_COMPLETION_CHARS) it scores 0 for that
model (a NaN stays NaN in "<key>_raw" so the log shows it), the reason is logged and kept in the event ("reward_errors"), and the
other completions and the step go on. Lone surrogates are replaced with
U+FFFD before any model sees the text.

Completions that are one text (the same words, give or take a few: word
3-grams shared, see `copies`; at least MIN_SHARED_WORDS words) sent by
several uids in one step share one reward: each gets total / copies. A cabal
of sybils answering with one text, each copy with its own nonce or edits,
earns what one miner would, and so does one whose copies are edited all
through (words swapped, changed, added or dropped every few words: the same
words in much the same order); short answers ("22 March 1945") that honest
miners give alike are not shared.

`score()` is blocking CPU work (relevance runs a transformer): call it from a
worker thread, e.g. `await asyncio.to_thread(score, ...)`.
"""

from __future__ import annotations

import inspect
import logging
import math
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Callable

from rapidfuzz.distance import Indel

from sn1.errors import one_line
from sn1.rewards import date as date_model
from sn1.rewards import numeric, text
from sn1.rewards.spec import RewardSpec

log = logging.getLogger("sn1.rewards")

WEIGHT_TOLERANCE = 1e-6
# Longer completions are not scored (0 for every model). 16 Ki characters are ~4,000 tokens of
# English, 16 times the 256 tokens the validator asks for by default (SmolLM2 writes ~700 tokens
# in the default 10 s timeout). The validator reads up to 1 MiB per answer (validator/query.py):
# scoring 50 such answers took minutes; under this bound every model is linear in the size and a
# step of 50 completions at the bound scores in about a second (benchmarks/scoring.py --largest).
MAX_COMPLETION_CHARS = 16 * 1024
MIN_SHARED_WORDS = 10                    # completions this long that are one text share one reward
# ... when the 3-grams both hold are this share of the larger set: two answers of SmolLM2 to one
# question (temperature 0.2, other seeds) shared at most 0.58 of them in 24 tries
SHARED_OVERLAP = 0.75
SHARED_WINDOW_WORDS = 1000               # ... judged on the first this many words
# ... or, from SHARED_EDIT_MIN_WORDS words on, when the words in order (2·LCS / both lengths) are
# SHARED_SEQUENCE alike or the words in any order (shared counts / the larger) SHARED_BAG alike:
# a copy edited everywhere (a pair of words swapped every 6 words, a word changed every 5th,
# inserted or dropped every 4th) keeps few 3-grams but its words and their order. Measured with
# benchmarks/copies.py (SmolLM2, two seeds per question; RESULTS.md).
SHARED_EDIT_MIN_WORDS = 30
SHARED_SEQUENCE = 0.6
SHARED_BAG = 0.85

# A batch model: (reference, completions, options, challenge) -> (rewards, per-completion seconds).
BatchModel = Callable[..., "tuple[list[float], list[float]]"]


def _per_completion(fn: Callable[..., float], option_names: tuple[str, ...] = ()) -> BatchModel:
    """Wrap a (reference, completion, **options) -> float function, timing each completion.
    The challenge is passed as ``challenge=`` when `fn` takes it."""
    wants_challenge = "challenge" in inspect.signature(fn).parameters

    def run(reference: str, completions: list[str], options: dict, challenge: str = ""):
        kwargs = {k: options[k] for k in option_names if k in options}
        if wants_challenge and challenge:
            kwargs["challenge"] = challenge
        rewards, timings = [], []
        for completion in completions:
            t0 = time.perf_counter()
            rewards.append(fn(reference, completion, **kwargs))
            timings.append(time.perf_counter() - t0)
        return rewards, timings

    return run


def _relevance(reference: str, completions: list[str], options: dict, challenge: str = ""):
    from sn1.rewards.relevance import default_relevance_model, get_relevance_model

    model = (get_relevance_model(options["model"], options.get("device")) if options.get("model")
             else default_relevance_model())
    t0 = time.perf_counter()
    rewards = model.rewards(reference, completions, challenge=challenge)
    # One batch for the whole step: each completion is charged an equal share.
    share = (time.perf_counter() - t0) / max(1, len(completions))
    return rewards, [share] * len(completions)


REWARD_MODELS: dict[str, BatchModel] = {
    "rouge": _per_completion(text.rouge, ("ngram",)),
    "relevance": _relevance,
    "diff": _per_completion(text.diff),
    "float_diff": _per_completion(numeric.float_diff),
    "date": _per_completion(date_model.date),
    "source_copy": _per_completion(text.source_copy, ("min_words", "phrasing_min_words")),
}
# Penalty models compared with the task's grounding material (`score(..., source=)`) instead of
# the challenge; they see the challenge as text that may be repeated freely.
SOURCE_MODELS = {"source_copy"}


def model_key(spec: RewardSpec, penalty: bool = False) -> str:
    """Event-log name of a model: "rouge-1", "relevance", "float_diff", "penalty:rouge-1"..."""
    if spec.name not in REWARD_MODELS:
        raise ValueError(f"unknown reward model {spec.name!r} (known: {', '.join(sorted(REWARD_MODELS))})")
    key = spec.options.get("ngram", "rouge-1") if spec.name == "rouge" else spec.name
    return f"penalty:{key}" if penalty else key


@dataclass
class ModelRewards:
    """One model's output for one step; lists are aligned with the completions."""

    key: str
    name: str
    weight: float
    penalty: bool
    raw: list[float]
    normalized: list[float]
    timings: list[float]         # seconds per completion (batched models: equal shares)
    batch_time: float            # seconds for the whole step, this model
    errors: dict[int, str] = field(default_factory=dict)   # completion index -> why it scored 0


@dataclass
class StepRewards:
    total: list[float]                                   # one per completion, NaN already 0
    models: dict[str, ModelRewards] = field(default_factory=dict)   # by key, rewards then penalties
    time: float = 0.0                                     # seconds for the whole score() call
    copies: list[int] = field(default_factory=list)       # identical completions sharing each reward

    def to_event(self) -> dict:
        """Flat, JSON-serialisable: "rewards", then "<key>_raw", "<key>_normalized",
        "<key>_timings" (lists) and "<key>_batch_time" (float) for every model.
        Non-finite raw values appear as null."""
        event: dict = {"rewards": list(self.total), "reward_time": self.time,
                       "reward_copies": list(self.copies),
                       "reward_errors": [{"model": k, "index": i, "reason": why}
                                         for k, m in self.models.items() for i, why in sorted(m.errors.items())]}
        for key, m in self.models.items():
            event[f"{key}_raw"] = [v if math.isfinite(v) else None for v in m.raw]
            event[f"{key}_normalized"] = list(m.normalized)
            event[f"{key}_timings"] = list(m.timings)
            event[f"{key}_batch_time"] = m.batch_time
        return event


def finite_or_zero(value: float) -> float:
    value = float(value)
    return value if math.isfinite(value) else 0.0


def normalize(values: list[float]) -> list[float]:
    """Min-max to [0, 1] (NaN as 0). When all values are equal there is no spread: all zeros."""
    clean = [finite_or_zero(v) for v in values]
    if not clean:
        return []
    low, high = min(clean), max(clean)
    if high == low:
        return [0.0] * len(clean)
    return [(v - low) / (high - low) for v in clean]


def check_specs(rewards: list[RewardSpec], penalties: list[RewardSpec]) -> None:
    """ValueError unless names are known, keys unique, reward weights sum to 1, penalty weights in [0, 1]."""
    if not rewards:
        raise ValueError("a task needs at least one reward model")
    keys = [model_key(s) for s in rewards] + [model_key(s, penalty=True) for s in penalties]
    duplicates = sorted({k for k in keys if keys.count(k) > 1})
    if duplicates:
        raise ValueError(f"reward models declared twice: {', '.join(duplicates)}")
    for spec in [*rewards, *penalties]:
        if spec.name == "rouge" and spec.options.get("ngram", "rouge-1") not in text.NGRAMS:
            raise ValueError(f"rouge: unknown ngram {spec.options['ngram']!r} "
                             f"(expected one of {', '.join(text.NGRAMS)})")
        if not (math.isfinite(spec.weight) and 0 <= spec.weight <= 1):
            raise ValueError(f"weight of {spec.name!r} must be within [0, 1], got {spec.weight}")
    total = sum(s.weight for s in rewards)
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        raise ValueError(f"reward weights must sum to 1, got {total:g} "
                         f"({', '.join(f'{model_key(s)}={s.weight:g}' for s in rewards)})")


def _call(model: BatchModel, against: str, completions: list[str], options: dict, challenge: str):
    """(raw, timings, errors) with every failure confined to the completion that caused it."""
    try:
        raw, timings = model(against, completions, dict(options), challenge)
        raw, timings = [float(v) for v in raw], [float(t) for t in timings]
        if len(raw) != len(completions) or len(timings) != len(completions):
            raise ValueError(f"returned {len(raw)} values for {len(completions)} completions")
        return raw, timings, {}
    except Exception as e:
        if len(completions) == 1:
            return [0.0], [0.0], {0: f"{type(e).__name__}: {one_line(e, 200)}"}
    raw, timings, errors = [], [], {}
    for i, c in enumerate(completions):   # find the culprit(s): one completion at a time
        r, t, err = _call(model, against, [c], options, challenge)
        raw += r
        timings += t
        errors.update({i: why for why in err.values()})
    return raw, timings, errors


def _run(spec: RewardSpec, penalty: bool, against: str, completions: list[str], challenge: str,
         refused: dict[int, str]) -> ModelRewards:
    key = model_key(spec, penalty)
    t0 = time.perf_counter()
    raw, timings, errors = _call(REWARD_MODELS[spec.name], against, completions, spec.options, challenge)
    batch_time = time.perf_counter() - t0
    errors.update(refused)
    for i, v in enumerate(raw):
        if i in errors:
            raw[i] = 0.0
        elif not math.isfinite(v):
            errors[i] = f"not a number ({v})"      # raw keeps the NaN for the log; counts as 0
        elif not 0.0 <= v <= 1.0:
            errors[i] = f"out of range ({v:g})"
            raw[i] = 0.0
    for i, why in sorted(errors.items()):
        if i not in refused:      # those are logged once per step, not once per model
            log.warning("reward %s: completion %d scores 0: %s", key, i, why)
    return ModelRewards(key, spec.name, spec.weight, penalty, raw, normalize(raw), timings, batch_time, errors)


def _valid_text(c) -> str:
    """A str that encodes as UTF-8 (lone surrogates become U+FFFD)."""
    if not isinstance(c, str):
        return ""
    try:
        c.encode("utf-8")
        return c
    except UnicodeEncodeError:
        return c.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _penalty_exempt(reference: str) -> str:
    """Words an answer may repeat from the challenge without penalty: the reference's and function words."""
    return reference + "\n" + " ".join(sorted(text.FUNCTION_WORDS))


def copies(completions: list[str], challenge: str = "") -> list[int]:
    """For each completion, how many completions of the step are one text with it.

    One text: at least MIN_SHARED_WORDS words each, and the word 3-grams both hold (words
    as the rouge tokenizer reads them: case, punctuation, spacing, invisible and fullwidth
    characters do not count; 3-grams of the challenge left out, so two answers that restate
    the question alike are not one text for it) are at least SHARED_OVERLAP of the larger
    set. A sybil's nonce word, a changed word or two, or its own closing line leaves two
    pastes one text; two answers written apart share few 3-grams. From SHARED_EDIT_MIN_WORDS
    words the challenge does not hold, also one text: those words in order SHARED_SEQUENCE
    alike (2·LCS / both lengths) or in any order SHARED_BAG alike, so a copy edited all
    through (swapped, changed, inserted or dropped words every few words) is one text too.
    The challenge's words are left out as for 3-grams: two correct fixes of the debugging
    task's code, explained apart, are two answers; an answer that is mostly the question is
    judged on 3-grams only (it earns little anyway: the rouge penalty).
    Judged on the first SHARED_WINDOW_WORDS words; groups are joined transitively.
    """
    asked_words = text.tokens(challenge)[:SHARED_WINDOW_WORDS] if challenge else []
    asked, asked_set = set(_trigrams(asked_words)), set(asked_words)
    grams: list[set | None] = []
    seqs: list[list[str] | None] = []       # words not in the challenge, in order (long texts only)
    bags: list[_Bag | None] = []
    for c in completions:
        words = text.tokens(c)[:SHARED_WINDOW_WORDS]
        grams.append(set(_trigrams(words)) - asked if len(words) >= MIN_SHARED_WORDS else None)
        own = [w for w in words if w not in asked_set]
        long_enough = len(own) >= SHARED_EDIT_MIN_WORDS
        seqs.append(own if long_enough else None)
        bags.append(_Bag(own) if long_enough else None)
    parent = list(range(len(completions)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(grams):
        for j in range(i + 1, len(grams)):
            b = grams[j]
            if not a or not b or root(i) == root(j):     # joined already (by another copy)
                continue
            big = max(len(a), len(b))
            # the size test first: most pairs are told apart without intersecting
            if min(len(a), len(b)) >= SHARED_OVERLAP * big and len(a & b) >= SHARED_OVERLAP * big:
                parent[root(j)] = root(i)
            elif seqs[i] is not None and seqs[j] is not None and _edited_copy(seqs[i], seqs[j], bags[i], bags[j]):
                parent[root(j)] = root(i)
    sizes = defaultdict(int)
    for i in range(len(completions)):
        sizes[root(i)] += 1
    return [sizes[root(i)] for i in range(len(completions))]


class _Bag(Counter):
    """A text's word counts, and its words as a set (pairs intersect sets at C speed)."""

    def __init__(self, words: list[str]):
        super().__init__(words)
        self.words = frozenset(self)


def _edited_copy(a: list[str], b: list[str], bag_a: _Bag, bag_b: _Bag) -> bool:
    """The same words in much the same order, or nearly the same words in any order."""
    big, small = max(len(a), len(b)), min(len(a), len(b))
    # 2·LCS / (small + big) <= 2·small / (small + big): most pairs are told apart by size alone
    if small * (2 - SHARED_SEQUENCE) < SHARED_SEQUENCE * big:
        return False
    # words both hold, counts clipped (the LCS is at most this); the sets' C intersection first
    shared = sum(min(bag_a[w], bag_b[w]) for w in bag_a.words & bag_b.words)
    if shared >= SHARED_BAG * big:
        return True
    if 2 * shared < SHARED_SEQUENCE * (len(a) + len(b)):
        return False
    return Indel.normalized_similarity(a, b, score_cutoff=SHARED_SEQUENCE) >= SHARED_SEQUENCE


def _trigrams(words: list[str]):
    return zip(words, words[1:], words[2:])


def score(rewards: list[RewardSpec], penalties: list[RewardSpec], reference: str, challenge: str,
          completions: list[str], source: str = "") -> StepRewards:
    """Score all completions of one step. Rewards compare with `reference` (and see the
    challenge where their rule needs it), penalties with `challenge`, source models
    (source_copy) with `source`, the material the task was built from ("": none)."""
    check_specs(rewards, penalties)
    t0 = time.perf_counter()
    completions = [_valid_text(c) for c in completions]
    reference, challenge, source = _valid_text(reference), _valid_text(challenge), _valid_text(source)
    refused = {i: f"too long ({len(c)} characters > {MAX_COMPLETION_CHARS})"
               for i, c in enumerate(completions) if len(c) > MAX_COMPLETION_CHARS}
    if refused:
        log.warning("%d completion(s) over %d characters score 0: %s", len(refused), MAX_COMPLETION_CHARS,
                    ", ".join(f"{i} ({len(completions[i])})" for i in sorted(refused)[:10]))
    scored = [("" if i in refused else c) for i, c in enumerate(completions)]
    step = StepRewards(total=[0.0] * len(completions))
    # rouge, source_copy and copies each read the completions' words: tokenize each text once
    with text.tokenized_once():
        for spec in rewards:
            m = _run(spec, False, reference, scored, challenge, refused)
            step.models[m.key] = m
            step.total = [r + spec.weight * finite_or_zero(v) for r, v in zip(step.total, m.raw)]
        for spec in penalties:
            if spec.name in SOURCE_MODELS:
                m = _run(spec, True, source, scored, challenge, refused)
            else:
                # the reference's words are not held against a completion that repeats the challenge
                m = _run(spec, True, challenge, scored, _penalty_exempt(reference), refused)
            step.models[m.key] = m
            step.total = [r * (1 - spec.weight * finite_or_zero(v)) for r, v in zip(step.total, m.raw)]
        step.copies = copies(scored, challenge)
    step.total = [finite_or_zero(r) / n for r, n in zip(step.total, step.copies)]
    step.time = time.perf_counter() - t0
    return step
