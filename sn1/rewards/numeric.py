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

Departures (README "Where we differ"), so that only the right number pays:

* tolerance: 1 within a relative 1e-9 (or when the reference rounded to the
  precision the completion wrote, with at least 3 significant digits, is
  what it wrote: "3.14" for pi); else linear down to 0 at a relative
  difference of REL_TOLERANCE (1%). The spec's 1 - min(|ref - pred| / |ref|, 1)
  paid half for being off by half: a maths echo ending on one of the
  problem's numbers, or a large round number, earned points;
* a number copied from the challenge earns nothing unless it is the answer;
* a list of candidates (the last number in a run of MAX_CANDIDATES or more
  numbers joined only by commas, "or", "and", slashes...) earns nothing;
* trailing punctuation ("42!", "(42)", "42;") and a leading "$" or "(" are
  stripped before parsing;
* a percentage ("45.91%", "45.91 %", "45.91 percent") is its number, and also
  that number / 100: a probability of 0.4591 answered "45.91%" is right;
* the answer a completion marks is the one read: the last ``\boxed{...}``, else
  the sentence after the last "the answer is" / "Answer:" / "final answer" when
  it begins with its number (not "1. Multiply ..." or "in step 2 below"), else
  the whole text (`answer_part`); LaTeX and markdown are read as plain
  maths first (``\frac{3}{4}``, ``$42$``, ``**42**``, ``x=42``, ``≈42``). An
  LLM's "\boxed{42}" followed by "... your 3 questions" scored 0 as its last
  number was 3. Only one number is ever read, so marking several gains nothing.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

MAX_SYMPY_CHARS = 40       # longer words are not tried as expressions
MAX_SYMPY_WORDS = 8        # expression attempts per completion (each ~0.3-1 ms; 50 completions x 8 < 0.5 s)
MAX_EXPONENT = 1000        # |exponent| of any power inside an expression
REL_TOLERANCE = 0.01       # relative difference at which credit reaches 0
EXACT = 1e-9               # relative difference that counts as equal (float noise)
MAX_CANDIDATES = 4         # a run of this many numbers is a list of guesses
_EXPR_RE = re.compile(r"(?:[0-9.+\-*/^()]|sqrt|pi)+")
_DIGIT_RE = re.compile(r"[0-9]")
_NUMBER_RE = re.compile(r"\d+(?:\.\d+)?")
_PERCENT_END = re.compile(r"%([)\]}.!?;:\"'…]*)$")   # "45.91%." / "(45.91%)": the % goes
_SEPARATORS = {"or", "and", "/", "|", "-", "–", ",", ";", "&", "maybe", "perhaps"}


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


_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_MARKER = re.compile(r"final answer|the answer is|answer\s*(?:is|:|=)", re.IGNORECASE)
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)|[,;]\s|\n")     # "42, because ...": the clause ends
_FRAC = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")
_SQRT = re.compile(r"\\sqrt\s*\{([^{}]*)\}")
_BOLD = re.compile(r"(?<![\w)])\*\*([^*\n]+?)\*\*(?![\w(])")    # **42**, not 9**9**9
_LATEX_WORDS = {"\\cdot": "*", "\\times": "*", "\\pi": "pi", "\\%": "%", "\\,": "", "\\!": "",
                "\\left": "", "\\right": "", "\\(": " ", "\\)": " ", "\\[": " ", "\\]": " ",
                "$": " ", "`": " ", "\u2212": "-"}
MAX_MARKED_CHARS = 400     # the marked answer read (a sentence, a box)


def _braced(text: str, start: int) -> str:
    """The text inside the braces that open at text[start - 1] ("{"), up to its match."""
    depth = 1
    for i in range(start, min(len(text), start + MAX_MARKED_CHARS)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[start:i]
    return text[start:start + MAX_MARKED_CHARS]


def plain_maths(text: str) -> str:
    """LaTeX and markdown written as plain maths: \\frac{a}{b} -> (a)/(b), \\sqrt{x} -> sqrt(x),
    \\cdot -> *, math delimiters ($, \\( \\), \\[ \\]), bold and code marks out."""
    for _ in range(4):          # nested fractions, innermost first
        text, n = _FRAC.subn(r"(\1)/(\2)", text)
        if not n:
            break
    text = _SQRT.sub(r"sqrt(\1)", text)
    for latex, plain in _LATEX_WORDS.items():
        text = text.replace(latex, plain)
    return _BOLD.sub(r" \1 ", text)


def answer_part(completion: str) -> str:
    """The part of `completion` that states its answer, as plain maths: the last \\boxed{...};
    else the sentence after the last "the answer is" / "Answer:" / "final answer" (the next
    line when that one ends there) when it begins with a number; else the whole completion."""
    boxes = list(_BOXED.finditer(completion))
    if boxes:
        return plain_maths(_braced(completion, boxes[-1].end()))
    marks = list(_MARKER.finditer(completion))
    if marks:
        rest = plain_maths(completion[marks[-1].end():marks[-1].end() + MAX_MARKED_CHARS]).lstrip(" \t:=")
        next_line = not rest.split("\n", 1)[0].strip()
        rest = rest.lstrip("\n") if next_line else rest
        if not (next_line and _LIST_START.match(rest)):     # "Answer:\n1. Multiply 6 by 7.": steps
            end = _SENTENCE_END.search(rest)
            sentence = rest[:end.start() + 1] if end else rest
            if _states_a_number(sentence.split()):
                return sentence
    return plain_maths(completion)


_LIST_START = re.compile(r"\s*\d+[.)]\s+[^\W\d]")    # "1. Multiply": a numbered step, not an answer
_QUALIFIERS = frozenset("approximately about roughly around exactly precisely nearly almost just "
                        "equal equals to is = ≈ ~".split())
_VARIABLE = re.compile(r"[^\W\d]\w{0,2}$")   # "x", "n", "ab1": a name assigned its value ("x = 42")


def _states_a_number(words: list[str]) -> bool:
    """The marked sentence begins with its number ("42.", "approximately 42", "x = 42",
    "12 * 3 = 36"), not with words that refer to one ("in step 2 below")."""
    i = 0
    while i < len(words):
        w = words[i].lower()
        if w in _QUALIFIERS or (_VARIABLE.match(w) and i + 1 < len(words) and words[i + 1] == "="):
            i += 1
            continue
        return _as_float(_clean(words[i])) is not None
    return False


def _clean(word: str) -> str:
    """Commas out; trailing punctuation and unbalanced closing/opening brackets off; what
    precedes the last "=" and a leading "≈" / "~" off."""
    if "=" in word:
        word = word.rsplit("=", 1)[1]
    word = word.lstrip("≈~")
    word = _PERCENT_END.sub(r"\1", word.replace(",", "")).rstrip(".!?;:\"'…")
    while word and word[-1] in ")]}" and word.count(word[-1]) > word.count({")": "(", "]": "[", "}": "{"}[word[-1]]):
        word = word[:-1].rstrip(".!?;:\"'")
    word = word.lstrip("\"'$£€")
    while word and word[0] in "([{" and word.count(word[0]) > word.count({"(": ")", "[": "]", "{": "}"}[word[0]]):
        word = word[1:]
    return word


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


def _last(words: list[str]) -> tuple[float, int] | None:
    """(value, index) of the last word that parses as a number, or None."""
    attempts = 0
    for i in range(len(words) - 1, -1, -1):
        cleaned = _clean(words[i])
        value = _as_float(cleaned)
        if value is False:
            if attempts >= MAX_SYMPY_WORDS:
                continue
            attempts += 1
            value = _parse_expression(cleaned)
        if value is not None:
            return value, i
    return None


def last_number(text: str) -> float | None:
    """The last word of `text` that parses as a number, or None."""
    found = _last(text.split())
    return found[0] if found else None


def _run_length(words: list[str], index: int) -> int:
    """How many numbers end at words[index], joined only by separators (a list of guesses)."""
    count, i = 1, index - 1
    while i >= 0 and count < MAX_CANDIDATES:
        word = words[i]
        if word.lower().strip(",;") in _SEPARATORS or not word.strip(",;"):
            i -= 1
            continue
        value = _as_float(_clean(word))
        if value is None or value is False:   # not "in (None, False)": 0.0 == False
            break
        count += 1
        i -= 1
    return count


def numbers_in(text: str) -> set[float]:
    """Every plain number written in `text` (digits, optional decimals; commas as separators), unsigned."""
    return {float(m) for m in _NUMBER_RE.findall(text.replace(",", ""))}


def _rounded_match(ref: float, word: str) -> bool:
    """`word` is `ref` rounded to the decimals it shows, with at least 3 significant digits."""
    digits = word.lstrip("-+").replace(".", "").lstrip("0")
    if len(digits) < 3 or not re.fullmatch(r"[-+]?\d+(?:\.\d+)?", word):
        return False
    decimals = len(word.split(".")[1]) if "." in word else 0
    return round(ref, decimals) == float(word)


def float_diff(reference: str, completion: str, challenge: str = "") -> float:
    """Credit for the completion's last number against the numeric reference (rules in the module doc)."""
    ref = reference_number(reference)
    words = answer_part(completion).split()
    found = _last(words)
    if ref is None or found is None:
        return 0.0
    pred, index = found
    if _run_length(words, index) >= MAX_CANDIDATES:
        return 0.0
    word = _clean(words[index])
    credit = _credit(ref, pred, word, challenge)
    if credit < 1.0 and _is_percent(words, index):    # "45.91%" for a probability of 0.4591
        credit = max(credit, _credit(ref * 100, pred, word, challenge))
    return credit


def _is_percent(words: list[str], index: int) -> bool:
    after = words[index + 1].lower() if index + 1 < len(words) else ""
    return "%" in words[index] or after.startswith("%") or after.rstrip(".!?;:,") in ("percent", "per-cent")


def _credit(ref: float, pred: float, word: str, challenge: str) -> float:
    scale = max(abs(ref), 1e-300)
    if abs(pred - ref) <= EXACT * scale or _rounded_match(ref, word):
        return 1.0
    if challenge and abs(pred) in numbers_in(challenge):
        return 0.0
    if ref == 0:  # relative difference is infinite
        return 0.0
    return max(0.0, 1.0 - abs(ref - pred) / scale / REL_TOLERANCE)


def reference_number(reference: str) -> float | None:
    """The reference is normally a bare number; otherwise take its last number."""
    try:
        return _finite(float(reference.replace(",", "").strip()))
    except ValueError:
        return last_number(reference)
