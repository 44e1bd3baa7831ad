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
# pieces the parsers look for (numbers, dates, operators, brackets).
PIECES = st.sampled_from(["1", "42", "-3.5", "1,000", "/", "^", "**", "9**9**9", "(", ")", "sqrt(2)",
                          "12/31/1999", "4 July 1776", "July 4, 1776", "or", ",", " ", "\n", "é", "東京",
                          "\ud800", "\x00", "inf", "nan", "1e308", "0.", "answer:", "!"])
TEXT = st.one_of(st.text(max_size=300), st.lists(PIECES, max_size=60).map("".join))
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
