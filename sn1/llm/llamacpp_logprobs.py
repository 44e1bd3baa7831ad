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
  cost one prompt evaluation. ``logprobs_many`` / ``iter_logprobs`` score
  many answers in batched passes (8 sequences, 512 tokens per
  ``llama_decode``, one KV stream per sequence): what a step verifies.

Logprobs are the model's own distribution: log-softmax of the raw logits
(temperature 1, before top-k/top-p/min-p), as OpenAI and llama.cpp report them.
"""

from __future__ import annotations

import ctypes
import os
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


BATCH_SEQS = 8       # sequences per batch: 8 x 64 tokens fill one 512-token pass
BATCH_DECODE = 512   # tokens per llama_decode (its logits buffer: 512 x 49k floats = 100 MB)


class TeacherForcer:
    """One llama.cpp model that scores given tokens (no sampling); thread-safe, one call at a time.

    ``logprobs`` scores one sequence (the reference path, llama-cpp-python's ``eval``);
    ``logprobs_many`` / ``iter_logprobs`` score many sequences after one prompt in batched
    passes on a second context of the same weights (``_BatchContext``).
    """

    def __init__(self, model_path: str, *, n_ctx: int = 1024, n_threads: int | None = None,
                 n_batch: int = 512, chat_format: str | None = None, batch_seqs: int = BATCH_SEQS):
        from llama_cpp import Llama

        kw = dict(model_path=str(model_path), n_ctx=n_ctx, n_batch=n_batch, n_ubatch=n_batch,
                  chat_format=chat_format, logits_all=True, verbose=False)
        if n_threads:
            kw.update(n_threads=n_threads, n_threads_batch=n_threads)
        self.llm = Llama(**kw)
        self.n_ctx = n_ctx
        self.n_threads = n_threads or os.cpu_count() or 1
        self.table = token_table(self.llm)
        self._lock = threading.Lock()
        self._prompt: list[int] | None = None
        self._batch_seqs = max(1, batch_seqs)
        self._batch: _BatchContext | None = None

    def prompt_tokens(self, messages: Messages) -> list[int]:
        return prompt_tokens(self.llm, messages)

    def _check_ids(self, what: str, ids) -> None:
        n = self.table.n_vocab
        for j, t in enumerate(ids):
            if not isinstance(t, (int, np.integer)) or not 0 <= t < n:
                raise LLMError(f"{what}: token {j} is {t!r}, not a token id of the model (0-{n - 1})")

    def logprobs(self, prompt: list[int], completion: list[int], *, stepwise: bool = False) -> np.ndarray:
        """(len(completion) + 1, n_vocab) log-probabilities: row j is the model's distribution
        for completion token j; the last row is the one after the last token.

        ``stepwise``: the completion one token per pass, as a miner decodes: the rows then equal
        the miner's own (a pass over many tokens uses other kernels: up to ~0.2 nat apart); n
        passes, so only for the few answers whose verdict hangs on that difference."""
        if not prompt:
            raise LLMError("teacher forcing needs a prompt")
        if len(prompt) + len(completion) > self.n_ctx:
            raise LLMError(f"prompt + completion are {len(prompt) + len(completion)} tokens, more than "
                           f"the verifier's context of {self.n_ctx}")
        self._check_ids("prompt", prompt)
        self._check_ids("completion", completion)
        llm = self.llm
        with self._lock:
            if self._prompt != prompt:
                llm.reset()
                llm.eval(prompt)
                self._prompt = list(prompt)
            else:
                llm.n_tokens = len(prompt)      # eval() drops the KV cache past this point
            for part in ([[t] for t in completion] if stepwise else [completion] if completion else []):
                llm.eval(part)
            rows = llm.scores[len(prompt) - 1: len(prompt) + len(completion), :]
            return log_softmax(rows)

    def logprobs_stepwise(self, prompt: list[int], completion: list[int]) -> np.ndarray:
        return self.logprobs(prompt, completion, stepwise=True)

    # ---- batched -------------------------------------------------------------------------
    def logprobs_many(self, prompt_ids: list[int], seqs: list[list[int]]) -> list[np.ndarray]:
        """``[logprobs(prompt_ids, s) for s in seqs]`` (float32 rows) in batched passes.

        All rows at once: 50 answers of 64 tokens are ~640 MB. Callers that go through
        the answers one by one use ``iter_logprobs``, which holds one batch at a time.
        """
        out: list[np.ndarray | None] = [None] * len(seqs)
        for i, rows in self.iter_logprobs(prompt_ids, seqs):
            out[i] = rows
        return out     # type: ignore[return-value]

    def iter_logprobs(self, prompt_ids: list[int], seqs: list[list[int]]) -> Iterator[tuple[int, np.ndarray]]:
        """(i, rows of seqs[i]) in order of i (float32, each as ``logprobs`` gives it within
        ~1e-5), computed a batch at a time: the prompt evaluated once and its KV cells
        copied to every sequence's stream, ``batch_seqs`` sequences per batch. Bad input
        (token ids outside the vocabulary, prompt + a sequence longer than ``n_ctx``, no
        prompt) raises LLMError before any pass. Memory: one batch's rows at a time
        (8 x 65 x 49k floats: 100 MB) while the caller holds only the current one."""
        prompt_ids, seqs = self.check_batch(prompt_ids, seqs)
        with self._lock:
            per_batch = self._batch_context().n_seqs
        groups = [list(range(a, min(a + per_batch, len(seqs)))) for a in range(0, len(seqs), per_batch)]
        for g in groups:
            with self._lock:
                rows = self._batch_context().run(prompt_ids, [seqs[i] for i in g])
            yield from zip(g, rows)

    def check_batch(self, prompt_ids, seqs) -> tuple[list[int], list[list[int]]]:
        """The prompt and sequences as lists, or LLMError: no prompt, an id outside the
        vocabulary, prompt + a sequence longer than ``n_ctx``."""
        prompt_ids = list(prompt_ids)
        seqs = [list(s) for s in seqs]
        if not prompt_ids:
            raise LLMError("teacher forcing needs a prompt")
        self._check_ids("prompt", prompt_ids)
        for i, s in enumerate(seqs):
            if len(prompt_ids) + len(s) > self.n_ctx:
                raise LLMError(f"sequence {i}: prompt + completion are {len(prompt_ids) + len(s)} tokens, "
                               f"more than the verifier's context of {self.n_ctx}")
            self._check_ids(f"sequence {i}", s)
        return prompt_ids, seqs

    def _batch_context(self) -> "_BatchContext":
        if self._batch is None:      # created on first use (its KV cache and logits buffer)
            self._batch = _BatchContext(self.llm, self.n_ctx, self._batch_seqs, self.n_threads)
        return self._batch


class _BatchContext:
    """A second llama.cpp context on the teacher's weights, for many sequences at once.

    One KV stream per sequence (``kv_unified`` off: each stream holds ``n_ctx`` cells
    and attention looks only at its own; the unified cache of this build let
    sequences of one batch see each other's cells - tests/verify/test_verify_batch.py).
    The prompt is evaluated once in stream 0 and copied to the others; between
    batches every stream keeps the prompt's cells and drops the rest. A batch
    evaluates up to ``n_seqs`` sequences, ``BATCH_DECODE`` tokens per
    ``llama_decode``, with logits for every position.
    """

    def __init__(self, llm, n_ctx: int, n_seqs: int, n_threads: int):
        import llama_cpp
        from llama_cpp import _internals

        self.n_vocab = llm.n_vocab()
        self.n_ctx = -(-n_ctx // 256) * 256                 # per stream (llama.cpp pads to 256)
        self.n_seqs = max(1, min(n_seqs, int(llama_cpp.llama_max_parallel_sequences())))
        p = llama_cpp.llama_context_default_params()
        p.n_ctx = self.n_ctx * self.n_seqs
        self.n_batch = BATCH_DECODE
        p.n_batch = p.n_ubatch = self.n_batch
        p.n_seq_max = self.n_seqs
        p.kv_unified = False
        p.n_outputs_max = 0                # logits for every position (0 = n_batch) ...
        p.n_outputs_max_per_seq = 0        # ... of every sequence (its default, 1, keeps one)
        p.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED   # as Llama() and the miners
        p.n_threads = p.n_threads_batch = max(1, n_threads)
        p.no_perf = True
        self._ctx = _internals.LlamaContext(model=llm._model, params=p, verbose=False)
        self._batch = _internals.LlamaBatch(n_tokens=self.n_batch, embd=0, n_seq_max=1, verbose=False)
        self.ctx = self._ctx.ctx
        self.mem = llama_cpp.llama_get_memory(self.ctx)
        self._prompt: list[int] | None = None
        self._with_prompt: set[int] = set()       # streams that hold the prompt's cells
        self._first: np.ndarray | None = None     # the prompt's last row (completion token 0)

    def _decode(self, tokens, pos, seq, logits) -> None:
        import llama_cpp

        b = self._batch.batch
        n = len(tokens)
        b.n_tokens = n
        np.ctypeslib.as_array(b.token, shape=(n,))[:] = tokens
        np.ctypeslib.as_array(b.pos, shape=(n,))[:] = pos
        np.ctypeslib.as_array(b.n_seq_id, shape=(n,))[:] = 1
        np.ctypeslib.as_array(b.logits, shape=(n,))[:] = logits
        for i, s in enumerate(seq):
            b.seq_id[i][0] = int(s)
        rc = llama_cpp.llama_decode(self.ctx, b)
        if rc != 0:
            self._forget()
            raise LLMError(f"llama_decode failed ({rc}) on a batch of {n} tokens")

    def _forget(self) -> None:
        import llama_cpp

        self._prompt = None
        self._with_prompt = set()
        llama_cpp.llama_memory_clear(self.mem, True)

    def _logits(self, n_out: int) -> np.ndarray:
        import llama_cpp

        return np.ctypeslib.as_array(llama_cpp.llama_get_logits(self.ctx), shape=(n_out, self.n_vocab))

    def _set_prompt(self, prompt: list[int]) -> None:
        if self._prompt == prompt:
            return
        self._forget()
        n = len(prompt)
        for a in range(0, n, self.n_batch):
            chunk = prompt[a:a + self.n_batch]
            flags = np.zeros(len(chunk), dtype=np.int8)
            flags[-1] = a + len(chunk) == n
            self._decode(chunk, np.arange(a, a + len(chunk)), np.zeros(len(chunk), dtype=np.int32), flags)
        self._first = np.empty((1, self.n_vocab), dtype=np.float32)
        log_softmax_into(self._first, [0], self._logits(1))
        self._prompt = list(prompt)
        self._with_prompt = {0}

    def run(self, prompt: list[int], seqs: list[list[int]]) -> list[np.ndarray]:
        """Rows of every sequence (at most n_seqs): views into one (sum(len + 1), n_vocab)
        float32 array, each sequence's rows contiguous (its first row is the prompt's last)."""
        import llama_cpp

        assert len(seqs) <= self.n_seqs
        self._set_prompt(prompt)
        P = len(prompt)
        tokens, pos, seq, dest, starts = [], [], [], [], []
        row = 0
        for k, s in enumerate(seqs):
            starts.append(row)
            if s:
                if k not in self._with_prompt:
                    llama_cpp.llama_memory_seq_cp(self.mem, 0, k, -1, -1)
                    self._with_prompt.add(k)
                tokens.extend(s)
                pos.extend(range(P, P + len(s)))
                seq.extend([k] * len(s))
                dest.extend(range(row + 1, row + 1 + len(s)))
            row += len(s) + 1
        out = np.empty((row, self.n_vocab), dtype=np.float32)
        out[starts] = self._first
        try:
            for a in range(0, len(tokens), self.n_batch):
                b = min(a + self.n_batch, len(tokens))
                self._decode(tokens[a:b], pos[a:b], seq[a:b], np.ones(b - a, dtype=np.int8))
                log_softmax_into(out, dest[a:b], self._logits(b - a))
        finally:
            for k in range(len(seqs)):          # keep the prompt, drop the answers
                if not llama_cpp.llama_memory_seq_rm(self.mem, k, P, -1):
                    self._forget()
        return [out[starts[k]:starts[k] + len(s) + 1] for k, s in enumerate(seqs)]


_SOFTMAX_ROWS = 64   # rows per numpy pass (bounds the temporaries: 64 x 49k floats = 12 MB)


def log_softmax_into(out: np.ndarray, rows, logits: np.ndarray) -> None:
    """out[rows[i]] = log_softmax(logits[i]) in float32, a block of rows at a time (the logits
    are a view of llama.cpp's buffer: read, never written)."""
    rows = np.asarray(rows)
    for c in range(0, len(rows), _SOFTMAX_ROWS):
        x = logits[c:c + _SOFTMAX_ROWS]
        mx = x.max(axis=1, keepdims=True)
        lse = mx + np.log(np.exp(x - mx).sum(axis=1, keepdims=True))
        out[rows[c:c + _SOFTMAX_ROWS]] = x - lse
