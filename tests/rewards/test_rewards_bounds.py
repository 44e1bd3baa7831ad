"""Bounded scoring work: whatever miners send, one step's scoring is bounded (issue 18, item 5).

The validator reads up to validator.query.DEFAULT_MAX_BYTES of each answer; the pipeline
scores completions up to MAX_COMPLETION_CHARS and every reward model is linear in the
completion's size below that. Speed is measured in benchmarks/scoring.py --largest; these tests
only hold generous deadlines (pytest-timeout) that the quadratic or unbounded code missed by
minutes, never a tight wall-clock figure.
"""

from __future__ import annotations

import random
import string

import pytest

from sn1.rewards import RewardSpec, score
from sn1.rewards.pipeline import MAX_COMPLETION_CHARS
from sn1.validator.query import DEFAULT_MAX_BYTES

# Every model but relevance (the transformer reads a bounded number of tokens anyway)
EVERY = ([RewardSpec("rouge", 0.2, {"ngram": "rouge-1"}), RewardSpec("rouge", 0.2, {"ngram": "rouge-l"}),
          RewardSpec("diff", 0.2), RewardSpec("float_diff", 0.2), RewardSpec("date", 0.2)],
         [RewardSpec("rouge", 0.5), RewardSpec("source_copy", 1.0)])
REFERENCE = "The treaty was signed on 7 June 1494 at Tordesillas by Spain and Portugal. " * 8
CHALLENGE = "On what exact date was the treaty of Tordesillas signed?"


def shapes(size: int, n: int) -> list[str]:
    """n distinct completions of `size` characters, shaped to be slow for one model or another."""
    rng = random.Random(size)
    units = [lambda: "".join(rng.choices(string.ascii_lowercase, k=rng.randint(2, 9))) + " ",
             lambda: f"{rng.randint(1, 28)} June {rng.randint(1000, 2020)}, ",
             lambda: f"{rng.randint(1, 9)}**{rng.randint(1, 9)}+{rng.randint(1, 99)} ",
             lambda: "".join(rng.choices(REFERENCE, k=32)),
             lambda: "".join(chr(0x4E00 + rng.randrange(400)) for _ in range(32))]
    out = []
    for i in range(n):
        unit, parts, length = units[i % len(units)], [f"{i} "], 0
        while length < size:
            parts.append(unit())
            length += len(parts[-1])
        out.append("".join(parts)[:size])
    return out


def test_the_pipeline_scores_no_more_than_an_answer_can_hold():
    # 16 Ki characters: far above any answer asked for (256 tokens by default), far under the
    # 1 MiB the validator reads, which the pipeline used to score in full (minutes per step)
    assert 4096 <= MAX_COMPLETION_CHARS <= DEFAULT_MAX_BYTES // 16


@pytest.mark.timeout(120)
def test_fifty_answers_at_the_read_cap_are_refused_by_size():
    block = " ".join(shapes(64 * 1024, 1))
    completions = [(f"{i} " + block * (DEFAULT_MAX_BYTES // len(block) + 1))[:DEFAULT_MAX_BYTES] for i in range(50)]
    step = score(*EVERY, REFERENCE, CHALLENGE, completions, source=REFERENCE)
    assert step.total == [0.0] * 50
    assert all(m.errors[0].startswith("too long") for m in step.models.values())


@pytest.mark.timeout(120)
def test_fifty_answers_at_the_largest_scored_size_are_scored():
    completions = shapes(MAX_COMPLETION_CHARS, 50)
    step = score(*EVERY, REFERENCE, CHALLENGE, completions, source=REFERENCE)
    assert len(step.total) == 50
    assert not any(m.errors for m in step.models.values())
    assert step.models["rouge-1"].raw[3] > 0          # the reference's characters: some words match


def test_a_word_of_thousands_of_letters_costs_no_typo_search():
    """The typo search builds a word's one-letter deletions (its length squared in bytes): one
    16,000-letter "word" next to twenty words of the source took 236 MiB and 0.28 s to score."""
    import tracemalloc

    from sn1.rewards.text import source_copy

    rng = random.Random(5)
    source = "The treaty divided the newly found lands between the crowns of Spain and Portugal. " * 4
    word = "".join(rng.choices(string.ascii_lowercase, k=16_000))
    completion = "treaty divided newly found lands crowns spain portugal " * 3 + word
    tracemalloc.start()
    try:
        source_copy(source, completion)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"{peak / 2**20:.0f} MiB"
