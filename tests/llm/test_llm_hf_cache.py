"""The transformers engine de-quantises the embedded GGUF once and keeps the result: the next
start loads it directly (seconds, not the de-quantisation's tens of seconds) and computes the
same tokens and logprobs. A damaged cache is dropped and rebuilt, never a failed start."""

from __future__ import annotations

import logging
import os

import pytest

from sn1.llm.base import GenParams

pytestmark = pytest.mark.slow

MSGS = [{"role": "user", "content": "Name three colours."}]


def _answer(engine):
    pieces = list(engine.stream(MSGS, GenParams(max_tokens=8, temperature=0.0, logprobs=2)))
    return "".join(pieces), [round(t.logprob, 4) for p in pieces for t in p.logprobs]


def test_dequantised_weights_are_kept_and_give_the_same_answers(tmp_path, caplog):
    from sn1.llm.hf import HFEngine

    caplog.set_level(logging.INFO, logger="sn1.llm.hf")
    first = HFEngine(cache_dir=str(tmp_path))
    (kept,) = os.listdir(tmp_path)                     # one folder, renamed into place whole
    assert {"config.json", "model.safetensors"} <= set(os.listdir(tmp_path / kept))
    assert "de-quantised weights kept in" in caplog.text
    want = _answer(first)
    assert want[0] and len(want[1]) == 8
    del first

    caplog.clear()
    second = HFEngine(cache_dir=str(tmp_path))
    assert f"de-quantised weights from {tmp_path / kept}" in caplog.text
    assert _answer(second) == want
    assert second.model_name.endswith(".gguf")          # still named after the model, not the cache

    # A damaged cache (a truncated weights file) is dropped and rebuilt.
    (tmp_path / kept / "model.safetensors").write_bytes(b"\0" * 100)
    caplog.clear()
    third = HFEngine(cache_dir=str(tmp_path))
    assert "ignoring the damaged cache" in caplog.text and "de-quantised weights kept in" in caplog.text
    assert _answer(third) == want
