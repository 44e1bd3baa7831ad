"""Each reward formula of spec §6 against values computed by hand."""

from __future__ import annotations

import math
import random
import time

import pytest

from sn1.rewards.date import UNPARSABLE_DISTANCE, date, date_distance, first_date
from sn1.rewards.numeric import float_diff, last_number, parse_number
from sn1.rewards.text import diff, rouge

REF = "the cat sat on the mat"          # tokens: the x2, cat, sat, on, mat
BIG = 100_000                           # characters of a "100 kB completion"


def filler(n_chars: int, word: str = "lorem") -> str:
    return (word + " ") * (n_chars // (len(word) + 1))


# ---------------------------------------------------------------- rouge
def test_rouge1_hand_value():
    # overlap 3 (the, cat, sat): P = 3/3, R = 3/6 -> F = 2/3
    assert rouge(REF, "the cat sat", "rouge-1") == pytest.approx(2 / 3)
    assert rouge(REF, REF, "rouge-1") == pytest.approx(1.0)
    # clipped counts: "the the the" matches "the" at most twice -> P = 2/3, R = 2/6, F = 4/9
    assert rouge(REF, "the the the", "rouge-1") == pytest.approx(4 / 9)


def test_rougel_hand_value():
    # LCS("a b c d e", "a c e x") = "a c e" = 3: P = 3/4, R = 3/5 -> F = 2/3
    assert rouge("a b c d e", "a c e x", "rouge-l") == pytest.approx(2 / 3)
    # order matters for rouge-l, not for rouge-1
    assert rouge("a b c d", "d c b a", "rouge-1") == pytest.approx(1.0)
    assert rouge("a b c d", "d c b a", "rouge-l") == pytest.approx(0.25)


def test_repetition_does_not_raise_rouge():
    # The original library scored this at ~0.98. Clipped counts: P = 6/240, R = 1.
    repeated = " ".join([REF] * 40)
    for ngram in ("rouge-1", "rouge-l"):
        assert rouge(REF, repeated, ngram) == pytest.approx(2 * 0.025 / 1.025)
        assert rouge(REF, repeated, ngram) < rouge(REF, REF, ngram)


def test_rouge_matches_rouge_score_on_ascii():
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"])
    pairs = [
        ("The Eiffel Tower was completed in 1889 for the World's Fair.",
         "Completed in 1889, the tower was built for the World's Fair in Paris."),
        ("Photosynthesis converts light energy into chemical energy.",
         "Plants turn light into chemical energy by photosynthesis; light energy is key."),
    ]
    for ref, comp in pairs:
        expected = scorer.score(ref, comp)
        assert rouge(ref, comp, "rouge-1") == pytest.approx(expected["rouge1"].fmeasure)
        assert rouge(ref, comp, "rouge-l") == pytest.approx(expected["rougeL"].fmeasure)


def test_rouge_empty_and_unicode():
    for ngram in ("rouge-1", "rouge-l"):
        assert rouge(REF, "", ngram) == 0.0
        assert rouge("", REF, ngram) == 0.0
        assert rouge(REF, "  \n ", ngram) == 0.0
        assert rouge(REF, "!!! ???", ngram) == 0.0
    # café, au, lait, à, paris vs café, à, paris: P = 1, R = 3/5 -> F = 0.75
    assert rouge("Café au lait à Paris", "café à PARIS", "rouge-1") == pytest.approx(0.75)
    # CJK runs are tokens too (rouge-score's own tokenizer drops them and scores 0)
    assert rouge("東京 大阪", "東京", "rouge-1") == pytest.approx(2 / 3)
    assert rouge("東京 大阪", "東京 🙂", "rouge-l") == pytest.approx(2 / 3)


def test_rouge_unknown_ngram():
    with pytest.raises(ValueError, match="rouge-2"):
        rouge(REF, REF, "rouge-2")


@pytest.mark.timeout(60)
def test_rouge_100kb_completion():
    completion = REF + " " + filler(BIG)
    n = len(completion.split())
    for ngram in ("rouge-1", "rouge-l"):
        t0 = time.perf_counter()
        value = rouge(REF, completion, ngram)
        # all 6 reference tokens matched: P = 6/n, R = 1
        assert value == pytest.approx(2 * (6 / n) / (6 / n + 1))
        print(f"{ngram} on {len(completion)} chars: {time.perf_counter() - t0:.3f} s")


# ---------------------------------------------------------------- diff
def test_diff_hand_values():
    assert diff("abcd", "bcde") == pytest.approx(2 * 3 / 8)     # "bcd" matches
    assert diff("abcd", "abcd") == 1.0
    assert diff("abcd", "") == 0.0
    assert diff("héllo wörld", "héllo wörld") == 1.0
    assert diff("héllo", "hello") == pytest.approx(2 * 4 / 10)


def test_diff_is_the_longest_common_subsequence_ratio():
    # difflib's ratio counted only the blocks its greedy search found: 1/3 here, where the
    # texts share "cb" in order
    assert diff("bcb", "cab") == pytest.approx(2 * 2 / 6)
    assert diff("", "") == 1.0


FIXED = """def mean(xs):
    if not xs:
        raise ValueError("empty")
    total = 0
    for x in xs:
        total += x
    return total / len(xs)
"""
BROKEN = FIXED.replace("        total += x\n", "")
ASKED = f"Can you find and fix the bug in this python code?\n\n```python\n{BROKEN}```"


@pytest.mark.parametrize("completion, low, high", [
    (BROKEN, 0.0, 0.0),                                     # the challenge's code echoed: scored 0.93
    (f"```python\n{BROKEN}```", 0.0, 0.0),                  # ... fenced
    (f"The loop never adds:\n\n```python\n{FIXED}```\nNow it sums.", 1.0, 1.0),   # the fix, explained
    (FIXED, 1.0, 1.0),
    (FIXED.replace("        total += x\n", "        total += x  # the line that was lost\n"), 1.0, 1.0),
    ("```python\n" + FIXED.replace("    ", "  ") + "```", 1.0, 1.0),      # its own indentation
    (FIXED.replace("len(xs)", "len(x)"), 0.5, 0.99),        # closer, not right
    ("The bug is a missing line. Add it back.", 0.0, 0.0),
])
def test_diff_pays_the_improvement_on_the_challenges_code(completion, low, high):
    assert low <= diff(FIXED, completion, ASKED) <= high
    # without a challenge holding code: the plain similarity of the completion's code
    assert diff(FIXED, completion) == diff(FIXED, completion, "what is wrong here?")


def test_debugging_task_scores_the_echo_below_the_fix():
    from sn1.rewards import score
    from sn1.tasks.definitions import TASKS

    spec = TASKS["debugging"]
    step = score(list(spec.rewards), list(spec.penalties), FIXED, ASKED,
                 [BROKEN, f"Here it is:\n```python\n{FIXED}```"])
    assert step.total == [0.0, 1.0]


@pytest.mark.timeout(60)
def test_diff_does_not_take_quadratic_time():
    # difflib's search is quadratic when no character is common enough to be junk (every
    # character under 1% of the text): a 100 kB completion of 400 CJK characters against a
    # 4,000-character reference took minutes; scored in milliseconds by a bit-parallel LCS
    rng = random.Random(0)
    alphabet = [chr(0x4E00 + i) for i in range(400)]
    reference = "".join(rng.choices(alphabet, k=4000))
    value = diff(reference, "".join(rng.choices(alphabet, k=BIG)))
    assert 0.0 < value < 0.2


@pytest.mark.timeout(60)
def test_diff_100kb_completion():
    code = "def add(a, b):\n    return a + b\n" * 40
    value = diff(code, code + filler(BIG, "x = 1\n"))
    assert 0.0 < value < 0.1


# ---------------------------------------------------------------- float_diff
# Changed on purpose (README "Where we differ"): the spec's 1 - |ref - pred| / |ref| paid
# 0.95 for "42" against 40; credit now falls linearly to 0 at a relative difference of 1%.
@pytest.mark.parametrize("reference, completion, expected", [
    ("42", "The answer is 42.", 1.0),
    ("40", "I think it is 42", 0.0),                # 5% off: was 0.95
    ("40", "it is 40.2", 0.5),                      # 0.5% off: 1 - 0.005 / 0.01
    ("-10", "x = -10.05", 0.5),
    ("-10", "x = -12", 0.0),                        # was 0.8
    ("1000000", "That makes 1,000,000.", 1.0),
    ("0.75", "the ratio is 3/4", 1.0),
    ("8", "so 2^3", 1.0),                           # ^ is a power, not xor
    ("1.4142135623730951", "it is sqrt(2)", 1.0),
    ("1.4142135623730951", "about 1.41", 1.0),      # rounded to what it wrote, 3 significant digits
    ("1.4142135623730951", "about 1.4", 0.0),       # 2 digits: 1% off -> 0
    ("3.14159265", "pi is 3.1416!", 1.0),
    ("7", "5 apples and 7 pears", 1.0),             # the last number wins
    ("5", "5 apples and 7 pears", 0.0),             # was 0.6
    ("100", "about 0.2", 0.0),                      # was 0.002
    ("100", "about 1000", 0.0),
    ("0", "zero is 0", 1.0),                        # ref == 0 guarded
    ("0", "it is 1", 0.0),
    ("42", "no number here", 0.0),
    ("42", "", 0.0),
    ("42", "答案是 42", 1.0),                        # unicode around the number
    ("42", "42 and then inf nan", 1.0),             # non-finite words are not numbers
    ("3", "3 or 9**9**9**9", 1.0),                  # a power tower is not evaluated
    # trailing punctuation and brackets are stripped (the spec's parser found no number)
    ("42", "Answer: 42!", 1.0),
    ("42", "the answer (42)", 1.0),
    ("42", "it is 42)", 1.0),
    ("42", "costs $42.", 1.0),
    ("42", "it's 42?!", 1.0),
    # a list of candidates earns nothing, even when it ends on the answer
    ("33", "1, 2, 3, 33", 0.0),
    ("33", "maybe 10 or 20 or 30 or 33", 0.0),
    ("33", "between 30 and 33", 1.0),               # two numbers are not a list of guesses
    ("36", "12 * 3 = 36", 1.0),                     # working shown is not a list
    # the answer as LLMs mark it, in LaTeX or markdown (each scored 0 before)
    ("42", "\\boxed{42}", 1.0),
    ("42", "So the total is $\\boxed{42}$.", 1.0),
    ("42", "It is $42$.", 1.0),
    ("42", "It is **42**.", 1.0),
    ("42", "It is `42`.", 1.0),
    ("42", "x=42", 1.0),
    ("42", "≈42", 1.0),
    ("0.75", "\\frac{3}{4}", 1.0),
    ("0.75", "The answer is $\\boxed{\\dfrac{3}{4}}$.", 1.0),
    ("1.4142135623730951", "\\(\\sqrt{2}\\)", 1.0),
    ("-5", "\u22125", 1.0),                          # a minus sign, not a hyphen
    # the marked answer wins over a number in a sign-off after it
    ("42", "So \\boxed{42}. Ask me about 3 more topics!", 1.0),
    ("42", "The answer is 42. I hope this helps with your 3 questions.", 1.0),
    ("42", "The answer is:\n42\nThanks for the 3 problems", 1.0),
    ("36", "The answer is 12 * 3 = 36. Enjoy!", 1.0),
    ("42", "Final answer: **42**. See the 3 notes", 1.0),
    ("0.75", "The answer is $\\frac{3}{4}$, see the 2 notes", 1.0),
    # a marker that does not begin with its number is not the answer: the last number is read
    ("42", "Answer:\n1. Multiply 6 by 7.\n2. That gives 42.", 1.0),
    ("42", "The answer is in step 2 below.\nStep 1: think.\nStep 2: 6*7 = 42", 1.0),
    # one number is read whatever is marked: the last box
    ("5", "\\boxed{5} or \\boxed{7}", 0.0),
    ("7", "\\boxed{5} or \\boxed{7}", 1.0),
    ("33", "\\boxed{1, 2, 3, 33}", 0.0),            # a list in a box is a list
])
def test_float_diff_hand_values(reference, completion, expected):
    assert float_diff(reference, completion) == pytest.approx(expected)


def test_float_diff_numbers_copied_from_the_challenge():
    challenge = "what is 99.5 plus 0.5, give or take?"
    assert float_diff("100", "about 99.5", challenge) == 0.0        # copied: would be 0.5
    assert float_diff("100", "about 99.5") == pytest.approx(0.5)   # no challenge given: tolerance only
    assert float_diff("100", "it is 100", challenge) == 1.0
    # the answer itself may appear in the challenge ("5 + 0"): a right answer is still right
    assert float_diff("5", "so 5", "what is 5 + 0") == 1.0
    assert float_diff("5", "so 0", "what is 5 + 0") == 0.0


def test_float_diff_never_evaluates_code(tmp_path):
    marker = tmp_path / "pwned"
    word = f"__import__('pathlib').Path('{marker}').touch()or(1)"
    assert parse_number(word) is None
    assert float_diff("1", f"answer {word}") == 0.0
    assert not marker.exists()


@pytest.mark.timeout(60)
def test_float_diff_100kb_completions():
    # digits everywhere but nothing that parses: only a bounded number of sympy attempts
    assert last_number(filler(BIG, "1+")) is None
    assert last_number(filler(BIG, "(2)**9**9**9")) is None
    assert float_diff("12", filler(BIG, "word") + " 12") == 1.0
    # after the sympy budget is spent, plain numbers are still found
    assert float_diff("12", "12 " + filler(BIG, "1+")) == 1.0


# ---------------------------------------------------------------- date
def test_date_formats():
    july4 = (186, 1776)                          # 2000 is a leap year: July 4 is day 186
    assert first_date("born 4 July 1776") == july4
    assert first_date("on July 4, 1776") == july4
    assert first_date("on july 4th 1776") == july4
    # Changed on purpose: slash dates are month-first (the original's reading), day-first
    # only when the month would exceed 12. This seed read 4/7/1776 day-first.
    assert first_date("on 7/4/1776") == july4        # M/D/YYYY
    assert first_date("on 4/7/1776") == (98, 1776)   # April 7: 31 + 29 + 31 + 7
    assert first_date("on 25/7/1776") == (207, 1776)  # impossible as M/D: read as D/M
    assert first_date("on 01/05/1999") == (5, 1999)  # January 5
    assert first_date("on 7-4-1776!") == july4       # trailing punctuation
    assert first_date("on 7/4/76") == (186, 1976)     # M/D/YY, %y pivot
    assert first_date("on 7/4/05") == (186, 2005)
    assert first_date("31/02/2000 then 1/3/2000") == (3, 2000)    # impossible date skipped; Jan 3
    assert first_date("July 4, 1776 or 14 July 1789") == july4     # earliest in the text
    # how LLMs and other writers also write dates (each scored 0 before)
    assert first_date("on 1776-07-04.") == july4                   # ISO 8601: never swapped
    assert first_date("at 1776-07-04T12:00") == july4               # ... with a time
    assert first_date("on 1776-04-07") == (98, 1776)
    assert first_date("the 4th of July 1776") == july4
    assert first_date("am 04.07.1776") == july4                    # dotted: day first
    assert first_date("am 25.12.1776") == (360, 1776)


def test_date_hand_values():
    ref = "4 July 1776"
    assert date(ref, "It was July 4, 1776.") == 1.0
    assert date(ref, "7/5/1776") == pytest.approx(math.exp(-1 / 1000))   # month first (was 5/7/1776)
    assert date(ref, "(7/4/1776).") == 1.0
    assert date(ref, "July 14th, 1776") == pytest.approx(math.exp(-100 / 1000))
    # 83 days off: exp(-6.889) = 0.00102 is kept; 84 days: exp(-7.056) = 0.00086 < 0.001 -> 0
    assert date(ref, "25 September 1776") == pytest.approx(math.exp(-(83 ** 2) / 1000))
    assert math.exp(-(84 ** 2) / 1000) < 0.001
    assert date(ref, "26 September 1776") == 0.0
    assert date(ref, "July 4, 1777") == 0.0              # 365 days off
    assert date("July 4, 1976", "7/4/76") == 1.0


def test_date_unparsable_empty_unicode():
    assert date_distance("4 July 1776", "sometime in summer") == UNPARSABLE_DISTANCE
    assert date("4 July 1776", "sometime in summer") == 0.0
    assert date("4 July 1776", "") == 0.0
    assert date("no date", "4 July 1776") == 0.0
    assert date("4 July 1776", "C'était le 4 July 1776 — 🎆") == 1.0


def test_date_lists_of_candidates_earn_nothing():
    ref = "4 July 1776"
    assert date(ref, "4 July 1776 or 5 July 1776") == 1.0            # two dates: kept (born / died)
    assert date(ref, "4 July 1776, 5 July 1776 or 6 July 1776") == 0.0
    assert date(ref, "4 July 1776; 7/4/1776; July 4, 1776") == 1.0   # one date written three ways
    assert date(ref, "Dates: 1/1/2000; 4 July 1776; 2 March 1900; 3 May 1950") == 0.0


@pytest.mark.timeout(60)
def test_date_100kb_completion():
    # the date is still found after 100 kB of non-dates, but an answer that long earns
    # (25 / words)^3 ~ 0 (changed on purpose: it scored 1.0)
    long = filler(BIG, "12/34/5678") + " 1 January 2000"
    assert first_date(long) == (1, 2000)
    assert date("1 January 2000", long) == 0.0
    assert date("1 January 2000", filler(BIG, "January")) == 0.0
