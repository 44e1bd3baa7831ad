"""Teacher forcing on transformers: the validator's batched passes over many answers.

The GGUF the miners run, de-quantised to float32 by transformers (``sn1/llm/hf.py`` loads
it and keeps the result). PyTorch's CPU matmuls are GEMMs over every answer's tokens at
once, where llama.cpp's Q4_1 kernels go row by row: a step of 50 answers of 64 tokens takes
about half the time (benchmarks/RESULTS.md, "Verifying a step"). The rows are not bit-equal
to a miner's: the rules' tolerances cover the difference as they cover llama.cpp's own
batched rows (the same size, measured on the same answers).

What needs a llama.cpp miner's exact arithmetic (the end of a stopped answer, one token per
pass), the vocabulary and the chat template stay with llama.cpp: :class:`HybridForcer`
joins the two behind the ``TeacherForcer`` interface sn1.verify uses.
"""

from __future__ import annotations

import copy
import threading
from typing import Iterator

import numpy as np

from .hf import cache_kw, cache_of

MAX_BATCH_TOKENS = 1024     # answer tokens per forward pass (two float32 logit copies: ~400 MB)
MAX_BATCH_SEQS = 16


class TorchRows:
    """Log-probability rows of answers to one prompt, from a transformers model, batched."""

    def __init__(self, model_path: str | None = None, *, n_threads: int | None = None):
        import torch

        from .hf import HFEngine

        self._torch = torch
        self.engine = HFEngine(model_id=model_path, n_threads=n_threads)
        self.model = self.engine.model
        self._lock = threading.Lock()
        self._prompt: list[int] | None = None
        self._cache = None
        self._first: np.ndarray | None = None

    def _set_prompt(self, prompt: list[int]) -> None:
        if self._prompt == prompt:
            return
        torch = self._torch
        out = self.model(input_ids=torch.tensor([prompt]), use_cache=True)
        self._cache = cache_of(out)
        self._first = torch.log_softmax(out.logits[0, -1].float(), dim=-1).numpy()
        self._prompt = list(prompt)

    def iter_rows(self, prompt: list[int], seqs: list[list[int]]) -> Iterator[tuple[int, np.ndarray]]:
        """(i, (len(seqs[i]) + 1, vocab) float32 rows) for every sequence, in order of i. The ids
        must already be checked (``HybridForcer`` does)."""
        torch = self._torch
        groups: list[list[int]] = []
        for i, s in enumerate(seqs):
            g = groups[-1] if groups else None
            if g is None or len(g) >= MAX_BATCH_SEQS or sum(len(seqs[j]) for j in g) + len(s) > MAX_BATCH_TOKENS:
                groups.append([i])
            else:
                g.append(i)
        for g in groups:
            with self._lock, torch.inference_mode():
                self._set_prompt(prompt)
                first = self._first
                live = [i for i in g if seqs[i]]
                lp = None
                if live:
                    width = max(len(seqs[i]) for i in live)
                    # Right-padded: a causal model's rows of real tokens never see the padding.
                    ids = torch.tensor([seqs[i] + [0] * (width - len(seqs[i])) for i in live])
                    cache = copy.deepcopy(self._cache)
                    cache.batch_repeat_interleave(len(live))
                    logits = self.model(input_ids=ids, use_cache=True, **cache_kw(self.model, cache)).logits
                    lp = torch.log_softmax(logits.float(), dim=-1).numpy()
                    del logits, cache
            for i in g:
                n = len(seqs[i])
                rows = np.empty((n + 1, first.shape[0]), dtype=np.float32)
                rows[0] = first
                if n:
                    rows[1:] = lp[live.index(i), :n]
                yield i, rows


class HybridForcer:
    """A ``TeacherForcer`` whose batched rows come from transformers (:class:`TorchRows`);
    one-token passes, the token table and prompts from the llama.cpp teacher."""

    # The batched rows are the transformers engine's own arithmetic: a decoding transformers
    # miner's rows within ~1e-5 (benchmarks/RESULTS.md), so the end check may trust them exactly.
    exact_batched_rows = True

    def __init__(self, teacher, rows: TorchRows):
        self.teacher = teacher
        self.rows = rows
        self.table = teacher.table
        self.n_ctx = teacher.n_ctx
        self.llm = teacher.llm

    def prompt_tokens(self, messages) -> list[int]:
        return self.teacher.prompt_tokens(messages)

    def logprobs(self, prompt: list[int], completion: list[int], *, stepwise: bool = False) -> np.ndarray:
        if stepwise:
            return self.teacher.logprobs(prompt, completion, stepwise=True)
        return next(self.iter_logprobs(prompt, [completion]))[1]

    def logprobs_stepwise(self, prompt: list[int], completion: list[int]) -> np.ndarray:
        return self.teacher.logprobs(prompt, completion, stepwise=True)

    def logprobs_many(self, prompt_ids: list[int], seqs: list[list[int]]) -> list[np.ndarray]:
        return [rows for _, rows in self.iter_logprobs(prompt_ids, seqs)]

    def iter_logprobs(self, prompt_ids: list[int], seqs: list[list[int]]) -> Iterator[tuple[int, np.ndarray]]:
        prompt_ids, seqs = self.teacher.check_batch(prompt_ids, seqs)   # LLMError before any pass
        yield from self.rows.iter_rows(prompt_ids, seqs)
