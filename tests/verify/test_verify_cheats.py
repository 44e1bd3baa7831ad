"""Every cheat mode of the cheat miner scores 0, and bad proof fails its miner alone.

The answers go through the miner server's own chunking (``_Generation`` + ``ChunkEncoder``) and
are read back with the validator's chunk decoder, so what is verified is what travels on the
wire; the model and the verifier are the real embedded SmolLM2 (llama.cpp, one thread).
"""

from __future__ import annotations

import asyncio
import gc
import json
from dataclasses import replace
from types import SimpleNamespace

import pytest

from sn1.llm.base import GenParams
from sn1.miner.backends.cheat import MODES, CheatMiner
from sn1.miner.backends.llm import LlamaCppMiner
from sn1.miner.server import _Generation
from sn1.protocol.logprobs import TokenLogprob
from sn1.protocol.wire import DONE, ChunkEncoder, ProtocolError, decode_chunk_with_logprobs
from sn1.verify import Policy, Submission, Verifier, verify_step

MSGS = [{"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Describe the sea in two sentences."}]
MAX_TOKENS = 24
SHARED: dict = {}


@pytest.fixture(scope="module")
def parts():
    from sn1.llm.llamacpp import LlamaCppEngine

    engine = LlamaCppEngine(n_threads=1)
    verifier = Verifier(None, n_threads=1)
    SHARED.update(engine=engine, verifier=verifier)
    yield engine, verifier
    SHARED.clear()
    del engine, verifier
    gc.collect()


def config(mode: str | None = None):
    return SimpleNamespace(neuron=SimpleNamespace(cheat=mode, grounding="off"), wandb=SimpleNamespace(on=False))


def wire(backend, params: GenParams, batch_size: int = 3) -> list[bytes]:
    """The SSE payloads the miner server sends for this backend's answer."""
    enc = ChunkEncoder("m")
    gen = _Generation(backend.generate(MSGS, params), batch_size, params.max_tokens, enc, 0.1, logprobs=True)
    sent: list[bytes] = []

    async def send(msg):
        sent.append(msg["body"])

    finish = asyncio.run(gen.run(send))
    sent.append(enc.chunk("".join(gen.batch), gen.batch_tokens, finish, logprobs=gen.batch_lp) + DONE)
    return [line[6:] for body in sent for line in body.split(b"\n\n") if line.startswith(b"data: ")
            and line != b"data: [DONE]"]


def read(payloads: list[bytes], t0: float = 0.05, dt: float = 0.05) -> Submission:
    """What the validator's reader (sn1.validator.query) records from these payloads."""
    sub = Submission("", [], "ok", None, chunk_lp=[])
    parts = []
    for i, payload in enumerate(payloads):
        content, finish, n, lp = decode_chunk_with_logprobs(payload)
        sub.logprobs.extend(lp)
        if finish is not None:
            sub.finish_reason = finish
        if content or lp:
            sub.chunk_lp.append(len(lp))
            parts.append(content)
            sub.chunk_times.append(t0 + dt * i)
            sub.chunk_tokens.append(n)
            sub.chunk_chars.append(len(content))
    sub.completion = "".join(parts)
    return sub


def params(temperature: float, seed: int) -> GenParams:
    return GenParams(max_tokens=MAX_TOKENS, temperature=temperature, top_k=50, top_p=0.95, seed=seed, logprobs=3)


def policy(temperature: float, seed: int) -> Policy:
    return Policy(temperature=temperature, top_k=50, top_p=0.95, max_tokens=MAX_TOKENS, top_logprobs=3, seed=seed)


@pytest.mark.parametrize("temperature", [0.0, 0.7])
def test_every_cheat_mode_scores_zero(parts, temperature):
    engine, verifier = parts
    seed = 17
    honest = read(wire(LlamaCppMiner(config(), engine), params(temperature, seed)))
    subs = [honest] + [read(wire(CheatMiner(config(mode), engine), params(temperature, seed))) for mode in MODES]
    step = verify_step(verifier, MSGS, policy(temperature, seed), subs)
    assert step.verdicts[0].ok, step.verdicts[0].reason
    assert step.total[0] > 0
    for mode, sub, v, r in zip(MODES, subs[1:], step.verdicts[1:], step.total[1:]):
        if mode == "other_seed" and temperature == 0:
            # Greedy has no draw: another seed is the same answer, the same work. A relay at
            # temperature 0 is told apart only by another prompt per miner (docs/verification.md).
            assert sub.completion == honest.completion and v.ok
            continue
        assert not v.ok and r == 0.0, (mode, sub.completion)
        if mode == "late":
            assert v.rule == "chunks"
        if mode == "fabricate":
            assert v.rule == "match"
        if mode == "truncate":
            assert v.rule == "end" or (temperature > 0 and v.rule == "sampler")


def test_word_mode_cheats_even_when_pieces_hold_several_tokens(parts):
    """The swap lands on the first piece at or after the sixth token, whatever the piece sizes."""
    engine, _ = parts
    honest = read(wire(LlamaCppMiner(config(), engine), params(0.0, 3)))
    word = read(wire(CheatMiner(config("word"), engine), params(0.0, 3)))
    assert honest.completion != word.completion and " banana" in word.completion


# ---- bad proof: the miner alone scores 0, the step goes on --------------------------------------

def chunks_of(sub: Submission) -> list[tuple[str, list]]:
    out, at, pos = [], 0, 0
    for k, c in zip(sub.chunk_lp, sub.chunk_chars):
        out.append((sub.completion[pos:pos + c], sub.logprobs[at:at + k]))
        at, pos = at + k, pos + c
    return out


def rebuilt(sub: Submission, chunks: list[tuple[str, list]]) -> Submission:
    return Submission("".join(t for t, _ in chunks), [x for _, lp in chunks for x in lp], "ok",
                      sub.finish_reason, chunk_times=[0.05 * (i + 1) for i in range(len(chunks))],
                      chunk_tokens=[len(lp) for _, lp in chunks], chunk_chars=[len(t) for t, _ in chunks],
                      chunk_lp=[len(lp) for _, lp in chunks])


def test_bad_proof_fails_that_miner_alone(parts):
    engine, verifier = parts
    honest = read(wire(LlamaCppMiner(config(), engine), params(0.7, 9), batch_size=2))
    ch = chunks_of(honest)
    assert len(ch) >= 4
    missing = [(t, lp if i != 1 else []) for i, (t, lp) in enumerate(ch)]          # one chunk without proof
    late = [(t, []) for t, _ in ch[:2]] + [(ch[2][0], ch[0][1] + ch[1][1] + ch[2][1])] + ch[3:]   # sent after its text
    tail = [(t, []) for t, _ in ch] + [("", [x for _, lp in ch for x in lp])]        # all proof at the end
    other = [(t, lp if i != 1 else [TokenLogprob(b" zebra", -0.5, x.top) for x in lp])
             for i, (t, lp) in enumerate(ch)]                                       # proof of other bytes
    shifted = [(t, lp) for t, lp in ch]                                              # boundaries moved
    shifted[0] = (ch[0][0], ch[0][1] + ch[1][1][:1])
    shifted[1] = (ch[1][0], ch[1][1][1:])
    cases = {"missing": missing, "late": late, "tail": tail, "other": other, "shifted": shifted}
    subs = [rebuilt(honest, ch)] + [rebuilt(honest, c) for c in cases.values()]
    subs.append(Submission("", [], "protocol_error", None))       # what NaN / oversized proof leaves
    step = verify_step(verifier, MSGS, policy(0.7, 9), subs)
    assert step.verdicts[0].ok and step.total[0] > 0, step.verdicts[0].reason
    for name, v, r in zip(list(cases) + ["unreadable"], step.verdicts[1:], step.total[1:]):
        assert not v.ok and r == 0.0, name
        assert v.rule == ("stream" if name == "unreadable" else "chunks"), (name, v.rule, v.reason)


def _payload(entry: dict) -> bytes:
    return json.dumps({"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": None,
                                    "logprobs": {"content": [entry]}}]}).encode()


@pytest.mark.parametrize("entry, why", [
    ({"token": "Hi", "logprob": float("nan"), "bytes": [72, 105]}, "finite"),
    ({"token": "Hi", "logprob": -0.1, "bytes": [72] * 300}, "at most 256"),
    ({"token": "Hi", "logprob": -0.1, "bytes": [72, 105],
      "top_logprobs": [{"token": "a", "logprob": -1.0}] * 21}, "more than the limit"),
    ({"token": "Hi", "logprob": 3.0, "bytes": [72, 105]}, "cannot be positive"),
])
def test_unreadable_proof_is_a_protocol_error(entry, why):
    # json.dumps writes NaN as the bare word NaN, which Python's reader accepts: the check is ours.
    with pytest.raises(ProtocolError, match=why):
        decode_chunk_with_logprobs(_payload(entry))


@pytest.mark.parametrize("temperature", [0.3, 1.0])
def test_no_cut_of_an_honest_answer_passes_as_finished(parts, temperature):
    """At the end the miner reports no logprobs, so the batched rows' slack covers every token
    there; a cut must still fail wherever the seeded sampler went on. Every chunk boundary of
    honest answers (several seeds) is tried as a claimed stop: none may pass, the whole answer does."""
    engine, verifier = parts
    cuts = 0
    for seed in range(1, 7):
        honest = read(wire(LlamaCppMiner(config(), engine), params(temperature, seed)))
        chunks = chunks_of(honest)
        subs = [honest] + [replace(rebuilt(honest, chunks[:c]), finish_reason="stop") for c in range(1, len(chunks))]
        step = verify_step(verifier, MSGS, policy(temperature, seed), subs)
        assert step.verdicts[0].ok, step.verdicts[0].reason
        for c, v in enumerate(step.verdicts[1:], 1):
            assert not v.ok and v.rule in ("end", "sampler"), (seed, c, subs[c].completion)
        cuts += len(subs) - 1
    assert cuts >= 20
