"""transformers computes logprobs from the raw scores; the llama.cpp verifier accepts its answers.

The same embedded GGUF, de-quantised to float32 by transformers: another engine,
another numeric path, the same model - the case the tolerances are for.
"""

from __future__ import annotations

import threading

import pytest

from sn1.llm.base import GenParams
from sn1.verify import Policy, Submission, Verifier, verify_answer

pytestmark = pytest.mark.slow

MSGS = [{"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Name three colours of the rainbow."}]


@pytest.fixture(scope="module")
def hf():
    from sn1.llm.hf import HFEngine

    return HFEngine()


@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_hf_logprobs_pass_verification(hf, temperature):
    p = GenParams(max_tokens=16, temperature=temperature, seed=3, logprobs=3)
    pieces = list(hf.stream(MSGS, p, threading.Event()))
    tokens = [t for piece in pieces for t in piece.logprobs]
    assert 1 <= len(tokens) <= 16 and all(len(t.top) == 3 for t in tokens)
    assert b"".join(t.token for t in tokens).decode() == "".join(pieces)
    if temperature == 0:
        assert all(t.token == t.top[0].token for t in tokens)
    forcer = Verifier(None, n_threads=1).forcer
    sub = Submission("".join(pieces), tokens, "ok", "length" if len(tokens) == 16 else "stop")
    v = verify_answer(forcer, forcer.prompt_tokens(MSGS), sub,
                      Policy(temperature=temperature, max_tokens=16, top_logprobs=3))
    assert v.ok, v.reason
