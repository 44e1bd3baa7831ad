"""transformers computes logprobs from the raw scores and draws with llama.cpp's seeded chain;
the llama.cpp verifier replays its answers.

The same embedded GGUF, de-quantised to float32 by transformers: another engine,
another numeric path, the same model - the case the tolerances are for.
"""

from __future__ import annotations

import threading

import pytest

from sn1.llm.base import GenParams
from sn1.verify import Policy, Submission, Verifier, verify_step

pytestmark = pytest.mark.slow

MSGS = [{"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Name three colours of the rainbow."}]


@pytest.fixture(scope="module")
def hf():
    from sn1.llm.hf import HFEngine

    return HFEngine()


@pytest.fixture(scope="module")
def verifier():
    # The validator's default: rows from transformers, whose arithmetic is this engine's own
    # (the end of a stopped answer is exact there; on llama.cpp's rows alone it may not be).
    return Verifier(None, n_threads=1, engine="auto")


@pytest.mark.parametrize("temperature", [0.0, 0.7, 1.0])
def test_hf_answers_are_replayed_with_their_seed(hf, verifier, temperature):
    p = GenParams(max_tokens=16, temperature=temperature, seed=3, logprobs=3)
    assert hf.samplers == ("llama.cpp/dist-v1",)
    pieces = list(hf.stream(MSGS, p, threading.Event()))
    tokens = [t for piece in pieces for t in piece.logprobs]
    assert 1 <= len(tokens) <= 16 and all(len(t.top) == 3 for t in tokens)
    assert b"".join(t.token for t in tokens).decode() == "".join(pieces)
    if temperature == 0:
        assert all(t.token == t.top[0].token for t in tokens)
    # The same seed draws the same answer again (the stream is the request's, not the process's).
    assert [t.token for pc in hf.stream(MSGS, p, threading.Event()) for t in pc.logprobs] == \
        [t.token for t in tokens]
    sub = Submission("".join(pieces), tokens, "ok", "length" if len(tokens) == 16 else "stop")
    policy = Policy(temperature=temperature, max_tokens=16, top_logprobs=3, seed=3)
    assert policy.replays
    v = verify_step(verifier, MSGS, policy, [sub]).verdicts[0]
    assert v.ok, v.reason
    if temperature > 0:     # made for seed 3, it is not what seed 4's sampler draws
        other = verify_step(verifier, MSGS, Policy(temperature=temperature, max_tokens=16, top_logprobs=3,
                                                   seed=4), [sub]).verdicts[0]
        assert not other.ok and other.rule in ("sampler", "end"), other
