"""Property tests (hypothesis): every reward model takes any string to a finite score in [0, 1],
and a 100 kB completion of any shape is scored within a bounded time (pytest-timeout).

Relevance needs the embedding model: it is in the slow part at the end.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sn1.rewards import REWARD_MODELS, RewardSpec, score
from sn1.rewards.date import date
from sn1.rewards.numeric import float_diff
from sn1.rewards.text import diff, rouge, source_copy

# Any text, including lone surrogates and control characters, plus texts made of the
# pieces the parsers look for (numbers, dates, operators, brackets), written in real Unicode:
# letters that case-fold onto ASCII ones (long s, dotless and dotted i, Kelvin sign), combining
# marks, fullwidth and other-script digits, astral-plane characters.
FOLDS = {"s": "ſ", "i": "ıİ", "k": "\u212a"}
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")
ODD = st.sampled_from(["\u0301", "\u0308", "\u200b", "\ufeff", "\U0001f600", "\U0001d7ce", "\U00020000",
                       "\U0001d400", "\uff11", "\u0664", "\u0967", "ß", "ﬃ", "İ", "ı", "ſ", "\u212a",
                       "\u2126", "ǅ", "\u0345", "\ud83d", "\U000e0041", "\u00ad"])


@st.composite
def unicode_word(draw, word: str) -> str:
    """`word` with some letters swapped for their case-folding twins and odd characters put in."""
    out = []
    for ch in word:
        twins = FOLDS.get(ch.lower(), "")
        out.append(draw(st.sampled_from(twins)) if twins and draw(st.booleans()) else
                   ch.upper() if draw(st.integers(0, 5)) == 0 else ch)
        if draw(st.integers(0, 15)) == 0:
            out.append(draw(ODD))
    return "".join(out)


SCRIPTS = ("0123456789", "\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19",
           "\u0660\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669",
           "".join(chr(0x1D7CE + i) for i in range(10)))


def number(low: int, high: int):
    """A number in [low, high] written in ASCII, fullwidth, Arabic-Indic or mathematical digits."""
    return st.tuples(st.integers(low, high), st.sampled_from(SCRIPTS)).map(
        lambda t: "".join(t[1][int(d)] for d in str(t[0])))


MONTH = st.sampled_from(MONTHS).flatmap(unicode_word)
DAY, YEAR = number(1, 31), number(100, 2100)
DATE = st.one_of(st.tuples(DAY, MONTH, YEAR).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
                 st.tuples(MONTH, DAY, YEAR).map(lambda t: f"{t[0]} {t[1]}, {t[2]}"),
                 st.tuples(DAY, DAY, YEAR).map("/".join))
PIECES = st.one_of(
    st.sampled_from(["1", "42", "-3.5", "1,000", "/", "^", "**", "9**9**9", "(", ")", "sqrt(2)",
                     "12/31/1999", "4 July 1776", "July 4, 1776", "or", ",", " ", "\n", "é", "東京",
                     "\ud800", "\x00", "inf", "nan", "1e308", "0.", "answer:", "!"]),
    ODD, DATE, st.sampled_from(["answer", "sqrt", "pi", "inf", "nan"]).flatmap(unicode_word))
TEXT = st.one_of(st.text(max_size=300), st.text(st.characters(codec=None, exclude_categories=()), max_size=200),
                 st.lists(PIECES, max_size=60).map(" ".join), st.lists(PIECES, max_size=60).map("".join))
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def in_range(value: float) -> bool:
    return isinstance(value, float) and math.isfinite(value) and 0.0 <= value <= 1.0


@SETTINGS
@given(reference=TEXT, completion=TEXT, challenge=TEXT)
def test_text_models_are_finite_and_in_range(reference, completion, challenge):
    for ngram in ("rouge-1", "rouge-l"):
        assert in_range(rouge(reference, completion, ngram))
        assert in_range(rouge(reference, completion, ngram, challenge))
    assert in_range(diff(reference, completion))
    assert in_range(source_copy(reference, completion, challenge))


@SETTINGS
@given(reference=st.one_of(DATE, TEXT), completion=st.lists(st.one_of(DATE, PIECES), max_size=8).map(" ".join))
def test_the_date_model_reads_unicode_dates_without_failing(reference, completion):
    # "Auguſt 4, 1776" / "4 Aprıl 1776": IGNORECASE matched them, then the month lookup raised
    assert in_range(date(reference, completion))
    assert in_range(date(completion, reference))


@SETTINGS
@given(reference=TEXT, completion=TEXT, challenge=TEXT)
def test_number_and_date_models_are_finite_and_in_range(reference, completion, challenge):
    assert in_range(float_diff(reference, completion))
    assert in_range(float_diff(reference, completion, challenge))
    assert in_range(date(reference, completion))


@settings(max_examples=60, deadline=None)
@given(reference=TEXT, challenge=TEXT, completions=st.lists(TEXT, max_size=6))
def test_the_pipeline_never_fails_a_step(reference, challenge, completions):
    rewards = [RewardSpec("rouge", 0.3, {"ngram": "rouge-l"}), RewardSpec("diff", 0.2),
               RewardSpec("float_diff", 0.25), RewardSpec("date", 0.25)]
    penalties = [RewardSpec("rouge", 0.5), RewardSpec("source_copy", 1.0)]
    step = score(rewards, penalties, reference, challenge, completions, source=reference + challenge)
    assert len(step.total) == len(completions) and all(in_range(t) for t in step.total)


# ---------------------------------------------------------------- bounded time per 100 kB
BIG = 100_000


@pytest.mark.timeout(120)
@settings(max_examples=8, deadline=None)
@given(unit=st.lists(PIECES, min_size=1, max_size=8).map("".join).filter(lambda u: u.strip()),
       reference=TEXT)
def test_100kb_completions_of_any_shape_are_scored_in_bounded_time(unit, reference):
    big = (unit * (BIG // len(unit) + 1))[:BIG]
    for name, options in (("rouge", {"ngram": "rouge-1"}), ("rouge", {"ngram": "rouge-l"}), ("diff", {}),
                          ("float_diff", {}), ("date", {}), ("source_copy", {})):
        (value,), _ = REWARD_MODELS[name](reference, [big], options, reference)
        assert in_range(float(value))


@pytest.mark.slow
@pytest.mark.timeout(300)
@settings(max_examples=15, deadline=None)
@given(reference=TEXT, challenge=TEXT, completions=st.lists(TEXT, min_size=1, max_size=4))
def test_relevance_is_finite_and_in_range(reference, challenge, completions):
    from sn1.rewards import load_relevance_model

    model = load_relevance_model()
    clean = [c.encode("utf-16", "surrogatepass").decode("utf-16", "replace") for c in completions]
    for value in model.rewards(reference.encode("utf-16", "surrogatepass").decode("utf-16", "replace"),
                               clean, challenge=challenge.encode("utf-16", "surrogatepass")
                               .decode("utf-16", "replace")):
        assert in_range(value)
    # and through score(), raw text (lone surrogates included)
    step = score([RewardSpec("relevance", 1.0)], [], reference, challenge, completions)
    assert all(in_range(t) for t in step.total)
