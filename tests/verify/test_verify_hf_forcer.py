"""The validator's batched rows from transformers (sn1/llm/hf_forcer.py), one-token passes from llama.cpp.

Real embedded model both ways (the GGUF through llama.cpp, and de-quantised to float32 by
transformers), small token limits, 1 thread.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from sn1.llm.base import GenParams, LLMError
from sn1.verify import Policy, Submission, Verifier, verify_step

pytestmark = pytest.mark.slow

MSGS = [{"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Name three colours of the rainbow."}]


@pytest.fixture(scope="module")
def verifier():
    v = Verifier(None, n_ctx=256, n_threads=1, engine="transformers")
    assert type(v.forcer).__name__ == "HybridForcer"
    return v


@pytest.fixture(scope="module")
def answers():
    """Honest seeded answers as a llama.cpp miner makes them: (Submission, seed, temperature)."""
    from llama_cpp import Llama

    from sn1.llm.embedded import embedded_gguf
    from sn1.llm.llamacpp_logprobs import generate_with_logprobs

    llm = Llama(model_path=str(embedded_gguf()), n_ctx=256, n_threads=1, chat_format="chatml", verbose=False)
    out = []
    for seed, temp in ((11, 0.3), (12, 0.7), (13, 1.0), (14, 1.0), (15, 0.7), (16, 1.0)):
        p = GenParams(max_tokens=24, temperature=temp, top_k=50, top_p=0.95, seed=seed, logprobs=5)
        pieces = list(generate_with_logprobs(llm, MSGS, p, threading.Event(), 256))
        toks = [t for pc in pieces for t in pc.logprobs]
        out.append((Submission("".join(pieces), toks, "ok", "length" if len(toks) == 24 else "stop"), seed, temp))
    del llm
    return out


def policy(seed, temp, **kw):
    return Policy(temperature=temp, top_k=50, top_p=0.95, max_tokens=24, top_logprobs=5, seed=seed, **kw)


def test_rows_are_the_models_batched_or_not_and_close_to_llama_cpp(verifier, answers):
    f = verifier.forcer
    prompt = f.prompt_tokens(MSGS)
    seqs = [[f.table.by_bytes[t.token] for t in s.logprobs] for s, _, _ in answers] + [[]]
    many = f.logprobs_many(prompt, seqs)
    for s, rows in zip(seqs, many):
        assert rows.shape == (len(s) + 1, f.table.n_vocab) and np.isfinite(rows).all()
        alone = f.logprobs(prompt, s)                      # a batch of one: the padding never leaks
        assert np.abs(rows - alone).max() < 1e-3
        # Against a decoding miner's rows (llama.cpp, Q4_1, one token per pass), on the tokens
        # miners report: within the match rule's tolerances (tol_token, tol_mean).
        ref = f.teacher.logprobs(prompt, s, stepwise=True)
        top = np.argsort(-ref, axis=1)[:, :5]
        d = np.abs(np.take_along_axis(rows, top, 1) - np.take_along_axis(ref, top, 1))
        chosen = np.abs(rows[np.arange(len(s)), s] - ref[np.arange(len(s)), s])
        assert d.max() < Policy.tol_token and (not s or chosen.mean() < Policy.tol_mean), (d.max(), chosen)
    # The end check keeps llama.cpp's one-token arithmetic.
    assert np.array_equal(f.logprobs(prompt, seqs[0], stepwise=True), f.teacher.logprobs(prompt, seqs[0], stepwise=True))


def test_honest_answers_verify_and_cheats_do_not(verifier, answers):
    subs = [s for s, _, _ in answers]
    step = verify_step(verifier, MSGS, [policy(seed, temp) for _, seed, temp in answers], subs)
    assert all(v.ok for v in step.verdicts), [v.reason for v in step.verdicts if not v.ok]
    # The same answers judged as if made for other seeds: relays of work done for another uid.
    other = verify_step(verifier, MSGS, [policy(seed + 1000, temp) for _, seed, temp in answers], subs)
    assert not any(v.ok for v in other.verdicts)
    # Cut short and claimed finished: the end is checked on llama.cpp's one-token rows.
    cut = [Submission(spell(s.logprobs[:n]), s.logprobs[:n], "ok", "stop")
           for (s, _, _), n in zip(answers, (5, 9, 13, 7, 11, 15))]
    v = verify_step(verifier, MSGS, [policy(seed, temp) for _, seed, temp in answers], cut).verdicts
    assert not any(x.ok for x in v), [x.reason for x in v]


def spell(tokens):
    from sn1.verify.step import spell as sp

    return sp(tokens)


def test_bad_input_is_an_llm_error_before_any_pass(verifier):
    f = verifier.forcer
    prompt = f.prompt_tokens(MSGS)
    with pytest.raises(LLMError, match="not a token id"):
        list(f.iter_logprobs(prompt, [[1, 2], [f.table.n_vocab]]))
    with pytest.raises(LLMError, match="needs a prompt"):
        list(f.iter_logprobs([], [[1]]))
    with pytest.raises(LLMError, match="context"):
        list(f.iter_logprobs(prompt, [[1] * 300]))


def test_auto_picks_transformers_where_installed_and_unknown_engines_are_refused():
    assert Verifier(None, engine="auto").engine == "transformers"
    assert Verifier(None).engine == "llama.cpp"
    with pytest.raises(ValueError, match="verification engine"):
        Verifier(None, engine="torch")
