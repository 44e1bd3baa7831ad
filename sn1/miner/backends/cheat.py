"""A cheating miner for tests and benchmarks of verification (``--backend cheat``).

It claims to run the requested model and reports token logprobs, but does not
do the work it is asked for. ``--neuron.cheat`` picks how:

- ``other_prompt``: answers a different, fixed prompt with the real model
  (its logprobs are the real ones - for the wrong prompt);
- ``other_system``: the request's question under another system prompt;
- ``other_seed``: the right prompt, sampled with another seed - what a relay of
  another miner's answer (made for that miner's seed) looks like;
- ``fabricate``: the honest text, with made-up logprobs;
- ``truncate``: the honest tokens and logprobs, cut at half ``max_tokens`` (or,
  for an answer that ends sooner, before its last piece: a cut where the model went
  on) and passed off as finished;
- ``word``: the honest answer with one token (the sixth or the first after it)
  swapped for another word;
- ``late``: the honest text streamed without proof, all its logprobs sent
  with the last piece (a draft's speed, the proof of one batched pass later).

Every mode must score 0 on the inference task (tests/verify/test_verify_cheats.py
runs each one; tests/verify/test_verify_e2e.py two of them as real miner processes).
"""

from __future__ import annotations

from ...config import flag
from ...llm.base import Piece, TokenLogprob, TopLogprob
from .llm import LlamaCppMiner

MODES = ("other_prompt", "other_system", "other_seed", "fabricate", "truncate", "word", "late")
OTHER_PROMPT = "Tell me a story about a cat who lives in a lighthouse."
OTHER_SYSTEM = "You are a pirate. Answer every question like a pirate would, with gusto."
SWAP_AT = 6


class CheatMiner(LlamaCppMiner):
    name = "cheat"

    @classmethod
    def add_args(cls, parser) -> None:
        super().add_args(parser)
        flag(parser, "--neuron.cheat", choices=MODES, default="other_prompt",
             help="cheat miner: how it fakes the inference task")

    def __init__(self, config, engine=None):
        super().__init__(config, engine)
        self.mode = getattr(getattr(config, "neuron", None), "cheat", "other_prompt")

    async def generate(self, messages, params):
        mode = self.mode
        if mode == "other_prompt":
            messages = [m for m in messages if m["role"] == "system"] + \
                [{"role": "user", "content": OTHER_PROMPT}]
        elif mode == "other_system":
            messages = [{"role": "system", "content": OTHER_SYSTEM}] + \
                [m for m in messages if m["role"] != "system"]
        elif mode == "other_seed":
            params = params.replace(seed=((params.seed or 0) + 1) % 2**31)
        n = 0
        swapped = False
        held: list[TokenLogprob] = []
        last: str | None = None
        if mode == "truncate":
            # The whole honest answer first: a cut at its own end would be the honest answer.
            pieces = [p async for p in super().generate(messages, params)]
            for piece in pieces[:-1]:
                yield piece
                n += max(1, len(getattr(piece, "logprobs", ())))
                if n >= max(1, params.max_tokens // 2):
                    return
            return
        async for piece in super().generate(messages, params):
            tokens = list(getattr(piece, "logprobs", ()))
            n += max(1, len(tokens))
            if mode == "fabricate" and tokens:
                piece = Piece(str(piece), [TokenLogprob(t.token, -0.05, tuple(TopLogprob(a.token, -0.05 * (i + 1))
                                                                            for i, a in enumerate(t.top)))
                                           for t in tokens])
            elif mode == "word" and not swapped and n >= SWAP_AT and tokens:
                # The first whole piece at or after the sixth token (a piece may hold several).
                word = b" banana" if tokens[0].token != b" banana" else b" apple"
                piece = Piece(word.decode(), [TokenLogprob(word, tokens[0].logprob, tokens[0].top)])
                swapped = True
            elif mode == "late":
                held.extend(tokens)
                if last is not None:
                    yield last               # text without its proof
                last = str(piece)
                continue
            yield piece
        if mode == "late" and last is not None:
            yield Piece(last, held)          # all the proof at the end, with the last piece
