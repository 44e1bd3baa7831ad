"""Score one step: every reward and penalty model over all completions, then the totals (spec §6).

    r = Σ weight_i · reward_i(reference, completion)
    for each penalty j:  r *= 1 - weight_j · penalty_j(challenge, completion)

A NaN (or infinite) value from any model counts as 0. `score()` is blocking
CPU work (relevance runs a transformer): call it from a worker thread, e.g.
`await asyncio.to_thread(score, ...)`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

from sn1.rewards import date as date_model
from sn1.rewards import numeric, text
from sn1.rewards.spec import RewardSpec

WEIGHT_TOLERANCE = 1e-6

# A batch model: (reference, completions, options) -> (rewards, per-completion seconds).
BatchModel = Callable[[str, list, dict], "tuple[list[float], list[float]]"]


def _per_completion(fn: Callable[..., float], option_names: tuple[str, ...] = ()) -> BatchModel:
    """Wrap a (reference, completion, **options) -> float function, timing each completion."""

    def run(reference: str, completions: list[str], options: dict):
        kwargs = {k: options[k] for k in option_names if k in options}
        rewards, timings = [], []
        for completion in completions:
            t0 = time.perf_counter()
            rewards.append(fn(reference, completion, **kwargs))
            timings.append(time.perf_counter() - t0)
        return rewards, timings

    return run


def _relevance(reference: str, completions: list[str], options: dict):
    from sn1.rewards.relevance import default_relevance_model, get_relevance_model

    model = (get_relevance_model(options["model"], options.get("device")) if options.get("model")
             else default_relevance_model())
    t0 = time.perf_counter()
    rewards = model.rewards(reference, completions)
    # One batch for the whole step: each completion is charged an equal share.
    share = (time.perf_counter() - t0) / max(1, len(completions))
    return rewards, [share] * len(completions)


REWARD_MODELS: dict[str, BatchModel] = {
    "rouge": _per_completion(text.rouge, ("ngram",)),
    "relevance": _relevance,
    "diff": _per_completion(text.diff),
    "float_diff": _per_completion(numeric.float_diff),
    "date": _per_completion(date_model.date),
}


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


@dataclass
class StepRewards:
    total: list[float]                                   # one per completion, NaN already 0
    models: dict[str, ModelRewards] = field(default_factory=dict)   # by key, rewards then penalties
    time: float = 0.0                                     # seconds for the whole score() call

    def to_event(self) -> dict:
        """Flat, JSON-serialisable: "rewards", then "<key>_raw", "<key>_normalized",
        "<key>_timings" (lists) and "<key>_batch_time" (float) for every model.
        Non-finite raw values appear as null."""
        event: dict = {"rewards": list(self.total), "reward_time": self.time}
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
        if not (math.isfinite(spec.weight) and 0 <= spec.weight <= 1):
            raise ValueError(f"weight of {spec.name!r} must be within [0, 1], got {spec.weight}")
    total = sum(s.weight for s in rewards)
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        raise ValueError(f"reward weights must sum to 1, got {total:g} "
                         f"({', '.join(f'{model_key(s)}={s.weight:g}' for s in rewards)})")


def _run(spec: RewardSpec, penalty: bool, against: str, completions: list[str]) -> ModelRewards:
    t0 = time.perf_counter()
    raw, timings = REWARD_MODELS[spec.name](against, completions, dict(spec.options))
    batch_time = time.perf_counter() - t0
    raw = [float(v) for v in raw]
    return ModelRewards(model_key(spec, penalty), spec.name, spec.weight, penalty, raw,
                        normalize(raw), [float(t) for t in timings], batch_time)


def score(rewards: list[RewardSpec], penalties: list[RewardSpec], reference: str, challenge: str,
          completions: list[str]) -> StepRewards:
    """Score all completions of one step. Rewards compare with `reference`, penalties with `challenge`."""
    check_specs(rewards, penalties)
    t0 = time.perf_counter()
    completions = [c if isinstance(c, str) else "" for c in completions]
    step = StepRewards(total=[0.0] * len(completions))
    for spec in rewards:
        m = _run(spec, False, reference, completions)
        step.models[m.key] = m
        step.total = [r + spec.weight * finite_or_zero(v) for r, v in zip(step.total, m.raw)]
    for spec in penalties:
        m = _run(spec, True, challenge, completions)
        step.models[m.key] = m
        step.total = [r * (1 - spec.weight * finite_or_zero(v)) for r, v in zip(step.total, m.raw)]
    step.total = [finite_or_zero(r) for r in step.total]
    step.time = time.perf_counter() - t0
    return step
