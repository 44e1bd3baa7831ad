"""Token logprobs with llama.cpp: while generating (miners) and by teacher forcing (verifiers).

Both sides must see the same prompt tokens and the same token bytes, so both
use ``prompt_tokens`` and ``TokenTable`` from here.

- ``generate_with_logprobs`` drives ``Llama.generate`` itself instead of
  ``create_chat_completion(logprobs=...)``: that path needs ``logits_all``
  (a context-sized logits buffer, logits for every prompt token) and sorts
  the whole vocabulary in Python per token. Here the sampled token's
  logits are read straight from the context (``llama_get_logits_ith(-1)``:
  exactly the row the sampler just drew from) and the top K come from
  ``numpy.argpartition``.
- ``TeacherForcer`` evaluates prompt + given tokens in batches (no sampling)
  and returns the model's log-probabilities at every completion position
  plus the one after the last token (where EOS should be). The prompt's KV
  cache is kept between calls, so 50 miners' answers to the same prompt
  cost one prompt evaluation.

Logprobs are the model's own distribution: log-softmax of the raw logits
(temperature 1, before top-k/top-p/min-p), as OpenAI and llama.cpp report them.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Iterator

import numpy as np

from ..protocol.logprobs import TokenLogprob, TopLogprob
from .base import GenParams, LLMError, Messages, Piece, PieceAssembler

MIN_P = 0.05     # llama-cpp-python's create_chat_completion default, kept for the same sampling


def log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64, copy=False)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def chat_prompt(llm, messages: Messages) -> tuple[str, bool]:
    """(prompt text, whether the template already added BOS) as llama-cpp-python formats it."""
    from llama_cpp import llama_chat_format as cf

    msgs = [{"role": m["role"], "content": m.get("content") or ""} for m in messages]
    fmt = getattr(llm, "chat_format", None)
    if fmt == "chatml":
        r = cf.format_chatml(msgs)
    else:
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            raise LLMError(f"llamacpp: logprobs need a chatml model or a GGUF chat template "
                           f"(chat format {fmt!r})")
        eos, bos = llm.token_eos(), llm.token_bos()
        r = cf.Jinja2ChatFormatter(
            template=template, eos_token=llm._model.token_get_text(eos) if eos != -1 else "",
            bos_token=llm._model.token_get_text(bos) if bos != -1 else "")(messages=msgs)
    return r.prompt, bool(r.added_special)


def prompt_tokens(llm, messages: Messages) -> list[int]:
    prompt, added_special = chat_prompt(llm, messages)
    return llm.tokenize(prompt.encode("utf-8"), add_bos=not added_special, special=True)


class TokenTable:
    """Token id <-> bytes for one model (plain tokens only; control tokens have no bytes)."""

    def __init__(self, llm):
        import llama_cpp

        self.n_vocab = llm.n_vocab()
        vocab = llm._model.vocab
        self._bytes: list[bytes] = []
        self.by_bytes: dict[bytes, int] = {}
        self.eog: set[int] = set()
        control = []
        buf = ctypes.create_string_buffer(_PIECE_MAX)
        for i in range(self.n_vocab):
            if llama_cpp.llama_vocab_is_eog(vocab, i):
                self.eog.add(i)
            b = b"" if llama_cpp.llama_vocab_is_control(vocab, i) else _piece(vocab, i, buf)
            if not b:
                # Control and other special tokens render as nothing in text: they are named by
                # their text (<|im_end|>) when they turn up as alternatives.
                b = llm._model.token_get_text(i).encode("utf-8", errors="replace")
                control.append((b, i))
            elif b not in self.by_bytes:             # first id wins; duplicates are rare aliases
                self.by_bytes[b] = i
            self._bytes.append(b)
        for b, i in control:                         # plain tokens keep their bytes
            self.by_bytes.setdefault(b, i)

    def bytes_of(self, token: int) -> bytes:
        return self._bytes[token]


_PIECE_MAX = 512     # llama-cpp-python's own detokenize() uses 32 bytes and returns b"" for longer tokens


def _piece(vocab, token: int, buf) -> bytes:
    """A token's exact bytes, however long (SmolLM2 has tokens of a newline and 40 spaces)."""
    import llama_cpp

    n = llama_cpp.llama_token_to_piece(vocab, token, buf, _PIECE_MAX, 0, False)
    return bytes(buf.raw[:n]) if n > 0 else b""


_TABLES: dict[int, TokenTable] = {}
_TABLES_LOCK = threading.Lock()


def token_table(llm) -> TokenTable:
    """The model's TokenTable, built once per Llama instance (~50k tokens: well under a second)."""
    with _TABLES_LOCK:
        t = _TABLES.get(id(llm))
        if t is None:
            t = _TABLES[id(llm)] = TokenTable(llm)
        return t


def top_entries(lp: np.ndarray, k: int, table: TokenTable) -> tuple[TopLogprob, ...]:
    if k <= 0:
        return ()
    idx = np.argpartition(-lp, k - 1)[:k]
    idx = idx[np.argsort(-lp[idx], kind="stable")]
    return tuple(TopLogprob(table.bytes_of(int(i)), float(lp[i])) for i in idx)


def generate_with_logprobs(llm, messages: Messages, params: GenParams, cancel: threading.Event,
                           n_ctx: int) -> Iterator[Piece]:
    """Sample like create_chat_completion and yield Pieces carrying each token's logprobs.

    A token that ends inside a UTF-8 character waits for the next one (one Piece,
    two entries). Stop strings end the generation at the token that completes one,
    that token included, so text and tokens stay aligned.
    """
    import llama_cpp

    tokens = prompt_tokens(llm, messages)
    if len(tokens) >= n_ctx:
        raise LLMError(f"llamacpp: the prompt is {len(tokens)} tokens, more than the model's "
                       f"context of {n_ctx} (--llm.n_ctx)")
    table = token_table(llm)
    k = min(int(params.logprobs or 0), table.n_vocab)
    max_tokens = min(params.max_tokens, n_ctx - len(tokens))
    llm.set_seed(params.seed if params.seed is not None else int(np.random.randint(0, 2**31)))
    ctx = llm._ctx.ctx
    gen = llm.generate(tokens, top_k=params.top_k, top_p=params.top_p, min_p=MIN_P,
                       temp=params.temperature, repeat_penalty=1.0)
    pieces = PieceAssembler()
    text_so_far = ""
    n = 0
    try:
        for tok in gen:
            if cancel.is_set() or tok in table.eog:
                break
            logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, -1), shape=(table.n_vocab,))
            lp = log_softmax(logits)
            piece = pieces.add(TokenLogprob(table.bytes_of(tok), float(lp[tok]), top_entries(lp, k, table)))
            n += 1
            if piece is not None:
                yield piece
                if params.stop:
                    text_so_far += piece
                    if any(s in text_so_far for s in params.stop):
                        break
            if n >= max_tokens:
                break
        rest = pieces.flush()
        if rest is not None:
            yield rest
    finally:
        gen.close()


class TeacherForcer:
    """One llama.cpp model that scores given tokens (no sampling); thread-safe, one call at a time."""

    def __init__(self, model_path: str, *, n_ctx: int = 1024, n_threads: int | None = None,
                 n_batch: int = 512, chat_format: str | None = None):
        from llama_cpp import Llama

        kw = dict(model_path=str(model_path), n_ctx=n_ctx, n_batch=n_batch, n_ubatch=n_batch,
                  chat_format=chat_format, logits_all=True, verbose=False)
        if n_threads:
            kw.update(n_threads=n_threads, n_threads_batch=n_threads)
        self.llm = Llama(**kw)
        self.n_ctx = n_ctx
        self.table = token_table(self.llm)
        self._lock = threading.Lock()
        self._prompt: list[int] | None = None

    def prompt_tokens(self, messages: Messages) -> list[int]:
        return prompt_tokens(self.llm, messages)

    def logprobs(self, prompt: list[int], completion: list[int]) -> np.ndarray:
        """(len(completion) + 1, n_vocab) log-probabilities: row j is the model's distribution
        for completion token j; the last row is the one after the last token."""
        if not prompt:
            raise LLMError("teacher forcing needs a prompt")
        if len(prompt) + len(completion) > self.n_ctx:
            raise LLMError(f"prompt + completion are {len(prompt) + len(completion)} tokens, more than "
                           f"the verifier's context of {self.n_ctx}")
        llm = self.llm
        with self._lock:
            if self._prompt != prompt:
                llm.reset()
                llm.eval(prompt)
                self._prompt = list(prompt)
            else:
                llm.n_tokens = len(prompt)      # eval() drops the KV cache past this point
            if completion:
                llm.eval(completion)
            rows = llm.scores[len(prompt) - 1: len(prompt) + len(completion), :]
            return log_softmax(rows)
