"""Maths problems with numeric solutions, from ``mathgenerator``.

mathgenerator's generators call the module-level ``random`` functions. To stay
reproducible without touching the global random state, each call runs with the
generator module's ``random`` name pointed at a ``random.Random`` seeded from
the caller's rng (under a lock, restored afterwards).
"""

from __future__ import annotations

import functools
import random
import re
import threading

from .base import Context, Dataset, DatasetError

# Outputs that look numeric but are not decimal numbers (binary, hex, octal, BCD...).
_SKIP_TITLES = re.compile(r"binary|hex|octal|bcd|base conversion|roman|complement", re.I)
_UNITS = re.compile(r"\s*(?:m\^?[23]?|radians|degrees|\\?%)\s*$")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
_patch_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def generators() -> tuple[tuple[int, str, str, object], ...]:
    """(id, title, subject, generator) for every generator that may give a number."""
    try:
        import mathgenerator
    except ImportError as e:   # pragma: no cover - it is a dependency
        raise DatasetError(f"maths problems need the mathgenerator package ({e})") from None
    out = []
    for gid, title, gen, _fname, subject, *_ in mathgenerator.getGenList():
        if not _SKIP_TITLES.search(title) and hasattr(gen, "func"):
            out.append((gid, title, subject, gen))
    return tuple(out)


def numeric(solution: str) -> str | None:
    """'$34$' -> '34', '$24 m^2$' -> '24', '$\\frac{3}{2}$' -> None."""
    s = str(solution).replace("$", "").strip()
    s = _UNITS.sub("", s).strip()
    return s if _NUMBER.fullmatch(s) else None


def generate(gen, seed: int) -> tuple[str, str]:
    g = gen.func.__globals__
    with _patch_lock:
        saved = g.get("random")
        g["random"] = random.Random(seed)
        try:
            return gen.func()
        finally:
            g["random"] = saved


_ASKS_PROBABILITY = re.compile(r"\bprobabilit(?:y|ies)\b", re.I)


def as_asked(question: str, solution: str, answer: str) -> str:
    """The answer in the form the question asks for: a generator that answers "what is the
    probability ...?" with a percentage ("45.91%") gets the probability (0.4591) as reference.
    (float_diff also accepts "45.91%" for it.)"""
    if "%" in solution and _ASKS_PROBABILITY.search(question):
        return f"{float(answer) / 100:.12g}"
    return answer


GUESSABLE = frozenset({-1.0, 0.0, 1.0, 2.0, 6.0})   # answers a constant guess gets right too often


class MathProblems(Dataset):
    name = "math"
    max_tries = 40   # about half of the generators give non-numeric answers

    def draw(self, rng: random.Random) -> Context | None:
        gid, title, subject, gen = rng.choice(generators())
        seed = rng.randrange(2**63)
        try:
            problem, solution = generate(gen, seed)
        except Exception:   # some generators fail on some draws (IndexError...)
            return None
        answer = numeric(solution)
        if answer is None:
            return None
        text = re.sub(r"\s+", " ", str(problem).replace("$", "")).strip()
        if not text:
            return None
        answer = as_asked(text, str(solution), answer)
        # A miner answering every problem with one constant would win these (rewards cannot
        # tell a guess from a solution): measured over 1,500 draws, 1 is the answer of 3.9% of
        # problems, 2, 0 and 6 of ~1.3% each, -1 of 0.9%; every other value of less.
        if float(answer) in GUESSABLE:
            return None
        topic = subject.replace("_", " ")
        return Context(
            title=title, topic=topic, subtopic=title, content=text, tags=[topic],
            source="mathgenerator",
            extra={"solution": answer, "generator_id": gid, "problem_latex": problem,
                   "solution_raw": solution, "seed": seed},
        )
