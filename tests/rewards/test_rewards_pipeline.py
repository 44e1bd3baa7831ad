"""score(): weights, penalties, NaN as 0, normalisation, the event record."""

from __future__ import annotations

import json
import math

import pytest

from sn1.rewards import REWARD_MODELS, RewardSpec, score
from sn1.rewards.pipeline import _per_completion, normalize

REF = "the cat sat on the mat"
CHALLENGE = "where did the cat sit"
ROUGE1 = RewardSpec("rouge", 0.5, {"ngram": "rouge-1"})
DIFF = RewardSpec("diff", 0.5)
PENALTY = RewardSpec("rouge", 0.5, {"ngram": "rouge-1"})


def lcs(a: str, b: str) -> int:
    """Longest common subsequence, the textbook table (diff is 2·LCS / total length)."""
    row = [0] * (len(b) + 1)
    for ca in a:
        prev = 0
        for j, cb in enumerate(b):
            prev, row[j + 1] = row[j + 1], prev + 1 if ca == cb else max(row[j + 1], row[j])
    return row[-1]


def test_penalty_math_by_hand():
    echo = CHALLENGE
    step = score([ROUGE1, DIFF], [PENALTY], REF, CHALLENGE, [REF, "the cat", "", echo])
    # Changed on purpose (README "Where we differ"): the reward's rouge-1 counts only words
    # that are neither in the challenge (where, did, the, cat, sit) nor function words (on):
    # the reference keeps (sat, mat). The penalty's rouge-1 counts only challenge words that
    # are neither in the reference nor function words: (sit).
    # completion 0 (the reference): rouge 1, diff 1, penalty 0 (no "sit") -> 1.
    assert step.models["rouge-1"].raw[0] == pytest.approx(1.0)
    assert step.models["penalty:rouge-1"].raw[0] == 0.0
    assert step.total[0] == pytest.approx(1.0)
    # completion 1: no new word -> rouge 0 (was 1/2); diff = 2*7/(22+7) = 14/29; no penalty.
    assert step.models["rouge-1"].raw[1] == 0.0
    assert step.models["diff"].raw[1] == pytest.approx(14 / 29)
    assert step.total[1] == pytest.approx(0.5 * 14 / 29)
    assert step.total[2] == 0.0
    # completion 3, the echo: rouge 0; penalty rouge-1 of (sit) vs (sit) = 1 -> halved.
    d = 2 * lcs(REF, echo) / (len(REF) + len(echo))
    assert step.models["penalty:rouge-1"].raw[3] == pytest.approx(1.0)
    assert step.total[3] == pytest.approx(0.5 * d * (1 - 0.5))
    assert list(step.models) == ["rouge-1", "diff", "penalty:rouge-1"]


def test_two_penalties_multiply():
    pl = RewardSpec("rouge", 0.4, {"ngram": "rouge-l"})
    step = score([RewardSpec("diff", 1.0)], [PENALTY, pl], REF, CHALLENGE, ["did the cat sit there"])
    d = step.models["diff"].raw[0]
    p1, p2 = step.models["penalty:rouge-1"].raw[0], step.models["penalty:rouge-l"].raw[0]
    assert p1 > 0 and p2 > 0
    assert step.total[0] == pytest.approx(d * (1 - 0.5 * p1) * (1 - 0.4 * p2))


@pytest.fixture
def nan_model(monkeypatch):
    """A reward model that returns NaN for its first completion and 0.5 for the others."""
    def fn(reference, completion):
        return math.nan if completion == "bad" else 0.5
    monkeypatch.setitem(REWARD_MODELS, "nan_model", _per_completion(fn))
    return RewardSpec("nan_model", 0.5)


def test_nan_counts_as_zero(nan_model):
    step = score([nan_model, RewardSpec("diff", 0.5)], [], "wxyz", "", ["bad", "wxyz"])
    assert math.isnan(step.models["nan_model"].raw[0])
    assert step.total == pytest.approx([0.5 * 0.0, 0.5 * 0.5 + 0.5 * 1.0])
    assert step.models["nan_model"].normalized == [0.0, 1.0]   # NaN as 0 before min-max
    # as a penalty, NaN removes nothing
    step = score([RewardSpec("diff", 1.0)], [RewardSpec("nan_model", 0.9)], "bad", "", ["bad"])
    assert step.total == pytest.approx([1.0])
    event = step.to_event()
    assert event["penalty:nan_model_raw"] == [None]
    json.dumps(event, allow_nan=False)


def test_event_is_plain_json():
    step = score([ROUGE1, DIFF], [PENALTY], REF, CHALLENGE, [REF, "the dog", "", "mat"])
    event = json.loads(json.dumps(step.to_event(), allow_nan=False))
    assert event["rewards"] == pytest.approx(step.total)
    for key in ("rouge-1", "diff", "penalty:rouge-1"):
        for suffix in ("raw", "normalized", "timings"):
            assert len(event[f"{key}_{suffix}"]) == 4
        assert event[f"{key}_batch_time"] >= 0
        assert all(t >= 0 for t in event[f"{key}_timings"])
    assert max(event["rouge-1_normalized"]) == 1.0 and min(event["rouge-1_normalized"]) == 0.0


def test_normalize():
    assert normalize([1.0, 3.0, 2.0]) == [0.0, 1.0, 0.5]
    assert normalize([0.7, 0.7]) == [0.0, 0.0]
    assert normalize([math.nan, 1.0]) == [0.0, 1.0]
    assert normalize([]) == []


def test_bad_specs_raise():
    with pytest.raises(ValueError, match="sum to 1"):
        score([RewardSpec("diff", 0.6)], [], REF, CHALLENGE, ["x"])
    with pytest.raises(ValueError, match="sum to 1"):
        score([RewardSpec("diff", 0.6), RewardSpec("date", 0.6)], [], REF, CHALLENGE, ["x"])
    with pytest.raises(ValueError, match="unknown reward model 'bleu'"):
        score([RewardSpec("bleu", 1.0)], [], REF, CHALLENGE, ["x"])
    with pytest.raises(ValueError, match="unknown reward model 'bleu'"):
        score([RewardSpec("diff", 1.0)], [RewardSpec("bleu", 0.5)], REF, CHALLENGE, ["x"])
    with pytest.raises(ValueError, match="within"):
        score([RewardSpec("diff", 1.0)], [RewardSpec("diff", 1.5)], REF, CHALLENGE, ["x"])
    with pytest.raises(ValueError, match="twice"):
        score([RewardSpec("diff", 0.5), RewardSpec("diff", 0.5)], [], REF, CHALLENGE, ["x"])
    with pytest.raises(ValueError, match="rouge-3"):
        score([RewardSpec("rouge", 1.0, {"ngram": "rouge-3"})], [], REF, CHALLENGE, ["x"])


def test_weights_within_tolerance_and_no_completions():
    thirds = [RewardSpec("diff", 1 / 3), RewardSpec("date", 1 / 3), RewardSpec("float_diff", 1 / 3)]
    assert score(thirds, [], "1", "", ["1"]).total == pytest.approx([2 / 3])
    assert score(thirds, [], "1", "", []).total == []


def test_task_reward_sets_by_hand():
    math_step = score([RewardSpec("float_diff", 1.0)], [], "12", "?", ["so it is 12.", "about 12.06", "none"])
    assert math_step.total == pytest.approx([1.0, 0.5, 0.0])   # 0.5% off (was: 15 -> 0.75)
    date_step = score([RewardSpec("date", 1.0)], [], "4 July 1776", "?", ["July 14, 1776", "never", ""])
    assert date_step.total == pytest.approx([math.exp(-0.1), 0.0, 0.0])
    none_step = score([RewardSpec("diff", 1.0)], [], "abcd", "?", [None, "bcde"])   # a failed miner
    assert none_step.total == pytest.approx([0.0, 0.75])
