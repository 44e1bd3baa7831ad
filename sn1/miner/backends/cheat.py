"""A cheating miner for tests and benchmarks of verification (``--backend cheat``).

It claims to run the requested model and reports token logprobs, but does not
do the work it is asked for. ``--neuron.cheat`` picks how:

- ``other_prompt``: answers a different, fixed prompt with the real model
  (its logprobs are the real ones - for the wrong prompt);
- ``fabricate``: the honest text, with made-up logprobs;
- ``truncate``: the honest tokens and logprobs, cut at half ``max_tokens`` and
  passed off as finished;
- ``word``: the honest answer with one token swapped for another word.

Every mode must score 0 on the inference task (tests/verify/test_verify_e2e.py).
"""

from __future__ import annotations

from ...config import flag
from ...llm.base import Piece, TokenLogprob, TopLogprob
from .llm import LlamaCppMiner

MODES = ("other_prompt", "fabricate", "truncate", "word")
OTHER_PROMPT = "Tell me a story about a cat who lives in a lighthouse."


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
        n = 0
        async for piece in super().generate(messages, params):
            tokens = list(getattr(piece, "logprobs", ()))
            n += max(1, len(tokens))
            if mode == "fabricate" and tokens:
                piece = Piece(str(piece), [TokenLogprob(t.token, -0.05, tuple(TopLogprob(a.token, -0.05 * (i + 1))
                                                                            for i, a in enumerate(t.top)))
                                           for t in tokens])
            elif mode == "word" and n == 6 and tokens:
                swapped = TokenLogprob(b" banana", tokens[0].logprob, tokens[0].top)
                piece = Piece(" banana", [swapped])
            yield piece
            if mode == "truncate" and n >= max(1, params.max_tokens // 2):
                return
