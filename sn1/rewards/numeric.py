"""float_diff: compare the last number of a completion with a numeric reference (spec §6).

The original ran `sympy.parse_expr` on every word of the completion. That
`eval`s miner-controlled text and can hang on a power tower ("9**9**9**9").
Here a word only reaches sympy when it is short, contains a digit and uses
arithmetic characters only (plus `sqrt` / `pi`); it is parsed without
evaluation, every power's exponent is bounded before anything is computed,
and at most `MAX_SYMPY_WORDS` words per completion go through sympy. Plain
floats take the fast path (`float()`), so a 100 kB completion costs
milliseconds. Non-finite values ("inf", "nan", "1/0") are not numbers.
`^` means power (sympy's `convert_xor`), as a person writing "2^3" means.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

MAX_SYMPY_CHARS = 40       # longer words are not tried as expressions
MAX_SYMPY_WORDS = 20       # expression attempts per completion (each ~0.3-1 ms)
MAX_EXPONENT = 1000        # |exponent| of any power inside an expression
_EXPR_RE = re.compile(r"(?:[0-9.+\-*/^()]|sqrt|pi)+")
_DIGIT_RE = re.compile(r"[0-9]")


@lru_cache(maxsize=None)
def _sympy():
    import sympy
    from sympy.parsing.sympy_parser import convert_xor, parse_expr, standard_transformations

    return sympy, parse_expr, standard_transformations + (convert_xor,)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _parse_expression(word: str) -> float | None:
    sympy, parse_expr, transformations = _sympy()
    try:
        expr = parse_expr(word, transformations=transformations, evaluate=False)
        if not isinstance(expr, sympy.Expr):
            return None
        # Children come before parents, so each exponent is already known to be small.
        for node in sympy.postorder_traversal(expr):
            if isinstance(node, sympy.Pow):
                exponent = complex(node.exp.evalf())
                if exponent.imag or not abs(exponent.real) <= MAX_EXPONENT:
                    return None
        value = complex(expr.evalf())
    except Exception:  # any parse or evaluation failure means "not a number"
        return None
    if value.imag:
        return None
    return _finite(value.real)


def _clean(word: str) -> str:
    return word.replace(",", "").rstrip(".")


def _as_float(cleaned: str) -> float | None | bool:
    """float(cleaned) if finite; None if not a number; False if only sympy could tell."""
    if not _DIGIT_RE.search(cleaned):
        return None
    try:
        return _finite(float(cleaned))
    except ValueError:
        pass
    if len(cleaned) <= MAX_SYMPY_CHARS and _EXPR_RE.fullmatch(cleaned):
        return False
    return None


def parse_number(word: str) -> float | None:
    """A word as a finite number (float or sympy expression), or None."""
    cleaned = _clean(word)
    value = _as_float(cleaned)
    return _parse_expression(cleaned) if value is False else value


def last_number(text: str) -> float | None:
    """The last word of `text` that parses as a number, or None."""
    attempts = 0
    for word in reversed(text.split()):
        cleaned = _clean(word)
        value = _as_float(cleaned)
        if value is False:
            if attempts >= MAX_SYMPY_WORDS:
                continue
            attempts += 1
            value = _parse_expression(cleaned)
        if value is not None:
            return value
    return None


def float_diff(reference: str, completion: str) -> float:
    """1 if equal, else 1 - min(|ref - pred| / |ref|, 1), 0 when that difference > 0.999; 0 if no number."""
    ref = reference_number(reference)
    pred = last_number(completion)
    if ref is None or pred is None:
        return 0.0
    if pred == ref:
        return 1.0
    if ref == 0:  # relative difference is infinite
        return 0.0
    difference = min(abs(ref - pred) / abs(ref), 1.0)
    return 0.0 if difference > 0.999 else 1.0 - difference


def reference_number(reference: str) -> float | None:
    """The reference is normally a bare number; otherwise take its last number."""
    try:
        return _finite(float(reference.replace(",", "").strip()))
    except ValueError:
        return last_number(reference)
