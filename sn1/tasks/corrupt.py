"""Corrupting code for the debugging task (spec §7).

The code is cut into chunks (characters, words or lines); 1-3 non-blank chunks
are removed and 0-2 pairs of chunks swapped. Removing a non-blank chunk always
shortens the code, so the result always differs from the original. Every
operation is recorded, so ``restore`` gives the original back (the task keeps
the original as its reference anyway).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

UNITS = {"char": "", "word": " ", "line": "\n"}


@dataclass
class Corruption:
    original: str
    corrupted: str
    unit: str                                     # char | word | line
    ops: list[tuple] = field(default_factory=list)   # ("remove", index, chunk) | ("swap", i, j)

    def to_dict(self) -> dict:
        return {"unit": self.unit, "ops": [list(op) for op in self.ops]}


def _split(code: str, sep: str) -> list[str]:
    return list(code) if sep == "" else code.split(sep)


def corrupt(code: str, rng: random.Random, unit: str | None = None,
            n_remove: int | None = None, n_swap: int | None = None) -> Corruption:
    if len(code.strip()) < 2:
        raise ValueError("cannot corrupt code shorter than 2 characters")
    unit = unit or rng.choice(sorted(UNITS))
    if sum(1 for c in _split(code, UNITS[unit]) if c.strip()) < 2:
        unit = "char"   # one word / one line: remove characters instead
    sep = UNITS[unit]
    n_remove = rng.randint(1, 3) if n_remove is None else n_remove
    n_swap = rng.randint(0, 2) if n_swap is None else n_swap
    if n_remove < 1:
        raise ValueError("at least one chunk must be removed")
    chunks = _split(code, sep)
    ops: list[tuple] = []
    for _ in range(n_remove):
        candidates = [i for i, c in enumerate(chunks) if c.strip()]
        if len(candidates) <= 1:
            break   # keep one non-blank chunk (there were at least 2: one was removed)
        i = rng.choice(candidates)
        ops.append(("remove", i, chunks.pop(i)))
    for _ in range(n_swap):
        if len(chunks) < 2:
            break
        i, j = sorted(rng.sample(range(len(chunks)), 2))
        chunks[i], chunks[j] = chunks[j], chunks[i]
        ops.append(("swap", i, j))
    corrupted = sep.join(chunks)
    assert corrupted != code   # a non-blank chunk was removed: the text is shorter
    return Corruption(code, corrupted, unit, ops)


def restore(c: Corruption) -> str:
    """Undo the recorded operations, last first."""
    sep = UNITS[c.unit]
    chunks = _split(c.corrupted, sep)
    for op in reversed(c.ops):
        if op[0] == "swap":
            _, i, j = op
            chunks[i], chunks[j] = chunks[j], chunks[i]
        else:
            _, i, chunk = op
            chunks.insert(i, chunk)
    return sep.join(chunks)
