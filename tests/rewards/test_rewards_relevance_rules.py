"""Relevance measured against the challenge, over the whole text, with conciseness (issue 10)."""

from __future__ import annotations

import numpy as np
import pytest

from sn1.rewards import RewardSpec, load_relevance_model, score
from sn1.rewards.relevance import windows
from sn1.rewards.text import conciseness, length_words

pytestmark = pytest.mark.slow

REF = "The Eiffel Tower is a wrought-iron lattice tower in Paris, France, completed in 1889."
PARAPHRASE = "Finished in 1889, the Eiffel Tower is an iron lattice tower standing in Paris."
CHALLENGE = "hey, when was that big iron tower in Paris finished? need it for school"
UNRELATED = "Bananas are rich in potassium and grow best in warm tropical climates."


@pytest.fixture(scope="module")
def model():
    return load_relevance_model()


def test_formula_against_the_challenge_by_hand(model):
    comps = [PARAPHRASE, UNRELATED, REF]
    got = model.rewards(REF, comps, challenge=CHALLENGE)
    ref, ch, *vs = model.embed_long([REF, CHALLENGE, *comps])
    b = max(float(np.dot(ref, ch)), float(np.dot(ref, model.empty)))
    expected = [min(1.0, max(0.0, (float(np.dot(ref, v)) - b) / (1 - b))) for v in vs]
    assert got == pytest.approx(expected, abs=2e-3)   # batch composition: padding noise
    assert got[2] == pytest.approx(1.0, abs=1e-3)     # the reference itself
    assert got[0] > 0.2 and got[1] == 0.0


def test_echo_and_keyword_bags_earn_nothing(model):
    echoes = [CHALLENGE, "Great question! " + CHALLENGE + " Hope this helps!",
              " ".join(reversed(CHALLENGE.split())), "tower Paris iron finished school tower Paris iron"]
    got = model.rewards(REF, echoes, challenge=CHALLENGE)
    assert got[0] == 0.0                               # exactly the baseline
    assert max(got) < 0.1, got
    # the spec's formula (no challenge) paid the echo well
    assert model.rewards(REF, [CHALLENGE])[0] > 0.4


def test_the_whole_text_counts_not_its_first_256_tokens(model):
    first = PARAPHRASE + " " + " ".join([UNRELATED] * 3)            # under 1,500 characters: one window
    padded = PARAPHRASE + " " + " ".join([UNRELATED] * 30)          # ~2,200 characters: windows
    r_first, r_padded = model.rewards(REF, [first, padded])
    assert len(windows(padded)) == 3
    # the windows after the first are off topic: the mean embedding moves away
    ref, v = model.embed_long([REF, padded])
    whole = float(np.dot(ref, v)) - float(np.dot(ref, model.empty))
    assert r_padded == pytest.approx(max(0.0, whole) * conciseness(length_words(REF), length_words(padded)),
                                     abs=2e-3)
    assert r_padded < r_first


def test_long_texts_and_the_reference_repeated_to_1mb(model):
    big = (REF + " ") * (1_000_000 // (len(REF) + 1))                 # ~1 MB, the reference over and over
    r = model.rewards(REF, [big, "", "   ", "東京タワー" * 20_000], challenge=CHALLENGE)
    words = length_words(big)
    # windows cut the repetitions mid-sentence, so similarity is a little under 1; conciseness
    # (60 / ~160,000 words) leaves almost nothing (this seed scored it 1.0)
    limit = conciseness(length_words(REF), words)
    assert 0.5 * limit < r[0] <= limit < 0.001
    assert r[1:3] == [0.0, 0.0]
    assert 0.0 <= r[3] <= 60 / 10_000


def test_score_passes_the_challenge_to_relevance(model):
    step = score([RewardSpec("relevance", 1.0)], [], REF, CHALLENGE, [CHALLENGE, PARAPHRASE])
    assert step.total[0] == 0.0 and step.total[1] > 0.2
