"""llama.cpp engine (llama-cpp-python): the embedded SmolLM2-135M-Instruct on CPU by default.

Concurrency: a llama.cpp context (KV cache, sampler, batch) belongs to one
generation at a time. The engine keeps a pool of ``parallel`` independent
``Llama`` instances (default 1; the weights are memory-mapped, so extra
instances cost only their context) and a generation checks one out for its
whole duration. With the default of 1 this is a lock: requests take turns,
which on a small CPU is also the fastest order (two generations on two cores
only slow each other down). A generation waiting for an instance still
honours its cancel event, so a request that times out while queued never
starts.

llama.cpp must be built with portable CPU flags (see docs/install.md): a
native build segfaults on the first token on AVX-512/AMX machines.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from pathlib import Path
from typing import Iterator

from ..errors import UsageError
from .base import GenParams, LLMError, Messages

log = logging.getLogger(__name__)

_POLL_S = 0.05


class LlamaCppEngine:
    name = "llamacpp"
    logprobs = True         # params.logprobs -> Pieces with token logprobs (llamacpp_logprobs)
    samplers = ("llama.cpp/dist-v1",)   # with a seed, draws exactly as sn1/verify/replay.py replays

    def __init__(self, model_id: str | None = None, n_ctx: int = 2048, n_threads: int | None = None,
                 parallel: int = 1, chat_format: str | None = None, seed: int | None = None):
        try:
            from llama_cpp import Llama
        except ImportError as e:
            raise UsageError("llama-cpp-python is not installed: run `make install` "
                             "(it builds a portable wheel, see docs/install.md)") from e
        if model_id:
            path = Path(os.path.expanduser(model_id))
            if not path.is_file():
                raise UsageError(f"llamacpp needs a .gguf file; not found: {path}")
        else:
            from .embedded import embedded_gguf
            path = embedded_gguf()
            chat_format = chat_format or "chatml"   # SmolLM2's format
        if parallel < 1:
            raise UsageError(f"--llm.parallel must be at least 1, got {parallel}")
        self.model_path = path
        self.model_name = path.stem
        self.n_ctx = n_ctx
        self._pool: queue.Queue = queue.Queue()
        for _ in range(parallel):
            # chat_format None: llama.cpp uses the template stored in the GGUF file.
            kw = dict(model_path=str(path), n_ctx=n_ctx, chat_format=chat_format, verbose=False)
            if n_threads:
                kw.update(n_threads=n_threads, n_threads_batch=n_threads)
            if seed is not None:
                kw["seed"] = seed
            try:
                self._pool.put(Llama(**kw))
            except (ValueError, RuntimeError) as e:
                raise UsageError(f"llama.cpp cannot load {path}: {e}") from e
        log.info("llamacpp: %s loaded (%d context%s of %d tokens)",
                 path.name, parallel, "s" if parallel > 1 else "", n_ctx)

    def _checkout(self, cancel: threading.Event):
        while not cancel.is_set():
            try:
                return self._pool.get(timeout=_POLL_S)
            except queue.Empty:
                continue
        return None

    def stream(self, messages: Messages, params: GenParams,
               cancel: threading.Event | None = None) -> Iterator[str]:
        cancel = cancel or threading.Event()
        llm = self._checkout(cancel)
        if llm is None:     # cancelled while waiting for a free context
            return
        try:
            if params.logprobs is not None:
                from .llamacpp_logprobs import generate_with_logprobs

                yield from generate_with_logprobs(llm, messages, params, cancel, self.n_ctx)
                return
            n_prompt = len(llm.tokenize(_chatml(messages).encode(), add_bos=False, special=True))
            if n_prompt >= self.n_ctx:
                raise LLMError(f"llamacpp: the prompt is {n_prompt} tokens, more than the model's "
                               f"context of {self.n_ctx} (--llm.n_ctx)")
            try:
                chunks = llm.create_chat_completion(
                    messages=messages, stream=True,
                    max_tokens=params.max_tokens, temperature=params.temperature,
                    top_p=params.top_p, top_k=params.top_k, seed=params.seed, stop=params.stop,
                )
            except ValueError as e:
                raise LLMError(f"llamacpp: {e}") from e
            try:
                for chunk in chunks:
                    if cancel.is_set():
                        break
                    piece = chunk["choices"][0]["delta"].get("content")
                    if piece:
                        yield piece
            except ValueError as e:     # e.g. the prompt does not fit the context
                raise LLMError(f"llamacpp: {str(e).splitlines()[0]}") from e
            finally:
                # Closing the generator stops llama.cpp evaluating: no token after this one.
                chunks.close()
        finally:
            self._pool.put(llm)

    def chat(self, messages: Messages, params: GenParams) -> str:
        return "".join(self.stream(messages, params))



def _chatml(messages: Messages) -> str:
    """The prompt as llama.cpp's ChatML formatter writes it (used to measure its length)."""
    body = "".join(f"<|im_start|>{m.get('role', 'user')}\n{m.get('content') or ''}<|im_end|>\n" for m in messages)
    return body + "<|im_start|>assistant\n"
