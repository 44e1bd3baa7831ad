"""The step record survives any completion: the events log and the wandb record never lose a step."""

from __future__ import annotations

import json
import math

import numpy as np

from sn1.validator.events import EventLog, _wandb_safe, read_events

NASTY = ["lone \ud800 surrogate", "\udfff", "nul \x00 esc \x1b[2J c1 \x85", "é日👋", "x" * 100_000]


class Opaque:
    def __repr__(self):
        return "Opaque(\ud800)"


def test_event_log_keeps_every_step_whatever_the_text(tmp_path, capsys):
    log = EventLog(str(tmp_path / "events.jsonl"), max_bytes=10 << 20)
    for step in range(1, 4):
        log.write({"step": step, "completions": NASTY, "rewards": np.array([0.5, math.nan, math.inf]),
                   "scores": {"\ud800key": np.float32(1.5)}, "thing": Opaque(), "n": np.int64(3)})
    log.close()
    events = read_events(str(tmp_path / "events.jsonl"))
    assert [e["step"] for e in events] == [1, 2, 3]
    e = events[0]
    assert e["completions"][0] == "lone \ufffd surrogate" and e["completions"][1] == "\ufffd"
    assert e["completions"][3] == "é日👋" and len(e["completions"][4]) == 100_000
    assert e["rewards"] == [0.5, None, None] and e["scores"] == {"\ufffdkey": 1.5} and e["n"] == 3
    assert e["thing"] == "Opaque(\ufffd)"
    assert "Traceback" not in capsys.readouterr().err


def test_wandb_record_is_flat_and_encodable():
    flat = _wandb_safe({"step": 1, "completions": NASTY, "nested": {"a": {"b": np.float64(2.0)}},
                        "bad": math.nan, "thing": Opaque()})
    json.dumps(flat, ensure_ascii=False).encode("utf-8")
    assert flat["nested/a/b"] == 2.0 and flat["bad"] is None and flat["completions"][1] == "\ufffd"
