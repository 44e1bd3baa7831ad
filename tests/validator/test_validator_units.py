"""Scores, weights, uid sampling, state file and event log — computed by hand."""

import json
import math
import random

import numpy as np
import pytest

from sn1.chain.base import Hyperparams, Metagraph, Neuron
from sn1.errors import UsageError
from sn1.validator import events, scores, state, uids, weights


def test_ema_updates_only_queried_uids_then_decays():
    s = np.array([0.5, 0.2, 0.0, 1.0])
    out = scores.update(s, [1, 2], [1.0, 0.5], alpha=0.1, decay_alpha=0.001)
    # uid1: 0.1*1 + 0.9*0.2 = 0.28 ; uid2: 0.1*0.5 = 0.05 ; others only decay
    assert out == pytest.approx([0.499, 0.279, 0.049, 0.999])
    assert s[1] == 0.2  # input untouched


def test_ema_nan_reward_counts_as_zero_and_decay_floors_at_zero():
    s = np.array([0.0005, 0.4])
    out = scores.update(s, [1], [float("nan")], alpha=0.5, decay_alpha=0.001)
    assert out[0] == 0.0  # 0.0005 - 0.001 floored
    assert out[1] == pytest.approx(0.5 * 0.4 - 0.001)


def test_ema_length_mismatch_is_an_error():
    with pytest.raises(ValueError):
        scores.update(np.zeros(3), [0, 1], [1.0], alpha=0.1, decay_alpha=0)


def test_resync_resets_changed_hotkeys_and_adds_new_uids():
    s = np.array([0.3, 0.6, 0.9])
    out = scores.resync(s, ["a", "b", "c"], ["a", "B", "c", "d"])
    assert out.tolist() == [0.3, 0.0, 0.9, 0.0]
    assert scores.resync(s, ["a", "b", "c"], ["a"]).tolist() == [0.3]


def test_process_weights_normalises_and_respects_max_weight_limit():
    hp = Hyperparams(min_allowed_weights=1, max_weight_limit=0.5)
    u, w = weights.process_weights(np.array([0.0, 9.0, 1.0, 0.0, 0.0]), hp)
    assert u == [1, 2]
    # 0.9/0.1 capped at 0.5 -> the other must take 0.5 too
    assert w == pytest.approx([0.5, 0.5])
    u, w = weights.process_weights(np.array([6.0, 3.0, 1.0]), Hyperparams(max_weight_limit=0.5), sharpen=1.0)
    assert w == pytest.approx([0.5, 0.375, 0.125])
    assert sum(w) == pytest.approx(1.0)


def test_process_weights_takes_enough_uids_for_the_max_weight_limit():
    # One good miner cannot take 100% under a 0.4 limit: at least 3 uids get weight.
    u, w = weights.process_weights(np.array([0.0, 5.0, 0.0, 0.0]), Hyperparams(max_weight_limit=0.4))
    assert u == [0, 1, 2, 3] and max(w) <= 0.4 + 1e-9 and sum(w) == pytest.approx(1.0)
    assert w[1] == max(w)
    with pytest.raises(ValueError):   # 2 uids can never stay under 0.4 each
        weights.process_weights(np.array([1.0, 1.0]), Hyperparams(max_weight_limit=0.4))


def test_process_weights_fills_when_too_few_nonzero():
    hp = Hyperparams(min_allowed_weights=3, max_weight_limit=1.0)
    u, w = weights.process_weights(np.array([0.0, 1.0, 0.0, float("nan")]), hp)
    assert u == [0, 1, 2, 3]
    assert sum(w) == pytest.approx(1.0)
    assert w[1] == max(w) and w[0] == w[2] == w[3] > 0


def _neuron(uid, endpoint="127.0.0.1:1", coldkey=None, stake=0.0, permit=False):
    return Neuron(uid=uid, hotkey=f"h{uid}", coldkey=coldkey or f"c{uid}", stake=stake,
                  validator_permit=permit, endpoint=endpoint)


def test_sample_uids_rules():
    mg = Metagraph(netuid=1, block=0, neurons=(
        _neuron(0, stake=5000, permit=True),          # self
        _neuron(1, endpoint=None),                    # not serving
        _neuron(2, stake=5000, permit=True),          # big validator
        _neuron(3, stake=100, permit=True),           # small validator: still a miner
        _neuron(4, coldkey="same", endpoint="10.0.0.1:1"),
        _neuron(5, coldkey="same", endpoint="10.0.0.1:2"),
    ))
    rng = random.Random(0)
    assert uids.sample_uids(mg, 50, rng, self_uid=0) == [3, 4, 5]
    assert len(uids.sample_uids(mg, 2, rng, self_uid=0)) == 2
    one_cold = uids.sample_uids(mg, 50, rng, self_uid=0, unique_coldkeys=True)
    assert 3 in one_cold and len({4, 5} & set(one_cold)) == 1
    one_ip = uids.sample_uids(mg, 50, rng, self_uid=0, unique_ips=True)
    assert len({4, 5} & set(one_ip)) == 1


def test_state_roundtrip_and_damaged_file(tmp_path):
    st = state.State(step=7, scores=np.array([0.1, 0.2]), hotkeys=["a", "b"], last_weights_block=42)
    state.save(str(tmp_path), st)
    back = state.load(str(tmp_path))
    assert back.step == 7 and back.scores.tolist() == [0.1, 0.2] and back.hotkeys == ["a", "b"]
    assert back.last_weights_block == 42
    assert state.load(str(tmp_path / "none")) is None
    (tmp_path / "state.json").write_text('{"format": "other"}')
    with pytest.raises(UsageError, match="not a valid SN1 state"):
        state.load(str(tmp_path))
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


def test_event_log_is_capped_and_readable(tmp_path):
    path = str(tmp_path / "events.jsonl")
    log = events.EventLog(path, max_bytes=20_000)
    for i in range(200):
        log.write({"step": i, "x": np.float32(1.5), "nan": float("nan"), "text": "é" * 100})
    log.close()
    total = sum(p.stat().st_size for p in tmp_path.iterdir())
    assert total <= 20_000 + 1000
    got = events.read_events(path)
    assert got[-1]["step"] == 199 and got[-1]["nan"] is None and got[-1]["x"] == 1.5
    assert [e["step"] for e in got] == list(range(got[0]["step"], 200))
    json.dumps(got)


def test_step_line_counts_every_status():
    from sn1.validator.loop import _summary, status_counts

    assert status_counts(["timeout", "ok", "http_error", "ok", "timeout", "connect_error"]) == \
        "2 ok, 2 timeout, 1 connect_error, 1 http_error"
    assert status_counts(["timeout"]) == "1 timeout"
    assert status_counts([]) == "none"
    line = _summary({"step": 7, "task": "qa", "rewards": [0.5, 0.0], "status": ["ok", "timeout"],
                     "step_time": 3.25})
    assert line == "step 7 qa: 2 miners (1 ok, 1 timeout), mean reward 0.250, max 0.500, 3.2s"


def test_a_failing_material_lookup_does_not_cost_the_step(monkeypatch, caplog):
    """The quoted-article lookup falls back to the task's own text; the step is still scored."""
    import sn1.tasks.material as material
    from sn1.datasets import Context
    from sn1.rewards.spec import RewardSpec
    from sn1.tasks.base import Task
    from sn1.validator.loop import _score_step

    def broken(task, completions):
        raise RuntimeError("index\nbroken")

    monkeypatch.setattr(material, "copy_source", broken)
    own = "the quick brown fox jumps over the lazy dog every single morning"
    task = Task("qa", "", "", "", "a fox jumps", "what does the fox do?", {}, Context("t", "t", "t", own),
                [RewardSpec("rouge", 1.0, {"ngram": "rouge-1"})], [RewardSpec("source_copy", 1.0)])
    result = _score_step(task, [own, "a fox jumps"])
    assert result.models["penalty:source_copy"].raw == [1.0, 0.0]   # the task's own text was used
    assert result.total[0] == 0.0 and result.total[1] > 0.5
    assert "quoted articles not looked up: index broken" in caplog.text
