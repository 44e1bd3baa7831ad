"""Issue 20, item 8: a maths question asking for a probability must not pay 0 to the probability.

mathgenerator's "Conditional Probability" generator asks "What is the probability that ...?" and
answers in percent ("45.91%"); the reference used to be 45.91, so the answer 0.4591 earned 0.
"""

import random

import pytest

from sn1.datasets.maths import MathProblems
from sn1.rewards.numeric import float_diff


def _draw_titled(title: str, tries: int = 5000):
    ds, rng = MathProblems(), random.Random(11)
    for _ in range(tries):
        ctx = ds.draw(rng)
        if ctx is not None and ctx.title == title:
            return ctx
    pytest.fail(f"no {title!r} problem in {tries} draws")


def test_a_probability_asked_in_percent_has_the_probability_as_reference():
    ctx = _draw_titled("Conditional Probability")
    assert "probability" in ctx.content.lower() and ctx.extra["solution_raw"].endswith("%")
    percent = float(ctx.extra["solution_raw"].replace("$", "").rstrip("%"))
    ref = ctx.extra["solution"]
    assert float(ref) == pytest.approx(percent / 100) and 0 < float(ref) < 1
    # Both ways of writing the right answer pay in full; a wrong one does not.
    assert float_diff(ref, f"The probability is {float(ref)}.", ctx.content) == 1.0
    assert float_diff(ref, f"So the probability is {percent}%.", ctx.content) == 1.0
    assert float_diff(ref, f"That is {percent} percent", ctx.content) == 1.0
    assert float_diff(ref, f"It is {percent / 2:.2f}%.", ctx.content) == 0.0


def test_percentage_questions_keep_their_percentage():
    ctx = _draw_titled("Percentage difference")
    ref = float(ctx.extra["solution"])
    assert ref == float(ctx.extra["solution_raw"].replace("$", "").replace("\\", "").rstrip("%"))
    assert float_diff(ctx.extra["solution"], f"the difference is {ref}%") == 1.0


@pytest.mark.parametrize("answer,credit", [
    ("0.9896", 1.0), ("98.96%", 1.0), ("98.96 %", 1.0), ("(98.96%)", 1.0), ("98.96% .", 1.0),
    ("98.96", 0.0),          # neither the probability nor marked as a percentage
    ("50%", 0.0), ("1%", 0.0),
])
def test_float_diff_reads_percentages(answer, credit):
    assert float_diff("0.9896", f"the answer is {answer}") == credit
