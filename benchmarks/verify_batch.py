"""What one inference step's verification costs: one answer at a time vs batched passes.

One prompt, ``--n`` (50) distinct answers of ``--tokens`` (64) tokens from different seeds
(temperature 1), generated once with the embedded model exactly as a miner does
(sn1.llm.llamacpp_logprobs.generate_with_logprobs) and cached in a temp file.
Then, on the validator's model (embedded SmolLM2 Q4_1, llama.cpp, ``--threads``):

- **forward, one at a time** - ``TeacherForcer.logprobs`` per answer (the prompt's pass shared);
- **forward, batched** - ``TeacherForcer.iter_logprobs`` over all answers;
- **step, one at a time** - ``verify_answer`` per answer (pass + rules): the old loop;
- **step, batched** - ``verify_step`` (passes batched, then the same rules), each answer with
  its own seed as the validator asks (sampler replay; the end of an answer that stopped early
  checked on one-token passes).

Prints wall and CPU seconds (``time.process_time``: all threads), teacher-forced tokens
per second, the load average before and after each run, and the largest
|batched - one at a time| log-probability over every row (the numeric tolerance the
rules' near-ties must allow for).

    .venv/bin/python benchmarks/verify_batch.py [--n 50] [--tokens 64] [--threads 2] [--repeat 1]
"""

from __future__ import annotations

import argparse
import os
import pickle
import platform
import random
import tempfile
import threading
import time

import numpy as np

from sn1.llm.base import DEFAULT_SYSTEM_PROMPT, GenParams
from sn1.llm.embedded import embedded_gguf
from sn1.llm.llamacpp_logprobs import TeacherForcer, generate_with_logprobs
from sn1.verify import Policy, Submission, Verifier, verify_answer, verify_step

MSGS = [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
        {"role": "user", "content": "Write a long, detailed essay about the history of the Roman Empire."}]
K = 5


def answers(n: int, tokens: int, path: str) -> tuple[list[Submission], list[int]]:
    """The answers and the seed each was drawn with."""
    if os.path.exists(path):
        with open(path, "rb") as f:
            got = pickle.load(f)
        if isinstance(got, tuple) and len(got[0]) == n:
            return got
    from llama_cpp import Llama

    miner = Llama(model_path=str(embedded_gguf()), n_ctx=1024, n_threads=1, n_threads_batch=1, n_batch=512,
                  n_ubatch=512, chat_format="chatml", verbose=False)
    rng = random.Random(7)
    subs, seeds = [], []
    t = time.perf_counter()
    for _ in range(n):
        seeds.append(rng.randrange(2**31))
        p = GenParams(max_tokens=tokens, temperature=1.0, top_k=50, top_p=0.95, seed=seeds[-1], logprobs=K)
        pieces = list(generate_with_logprobs(miner, MSGS, p, threading.Event(), 1024))
        toks = [tl for pc in pieces for tl in pc.logprobs]
        subs.append(Submission("".join(pieces), toks, "ok", "length" if len(toks) == tokens else "stop"))
    print(f"generated {n} answers in {time.perf_counter() - t:.1f}s; cached in {path}")
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        pickle.dump((subs, seeds), f)
    os.replace(tmp, path)
    return subs, seeds


def timed(label: str, n_tokens: int, fn):
    l0 = os.getloadavg()[0]
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    w, c = time.perf_counter() - w, time.process_time() - c
    print(f"{label:<34} wall {w:6.2f}s  cpu {c:6.2f}s  {n_tokens / w:7.0f} tokens/s  "
          f"(load {l0:.1f} -> {os.getloadavg()[0]:.1f})")
    return out, w, c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--batch_seqs", type=int, default=None, help="sequences per batched pass")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--cache", default=None, help="answers cache (default: a file in the temp dir)")
    ap.add_argument("--skip_old", action="store_true", help="only the batched path")
    ap.add_argument("--engine", default="llama.cpp", choices=("llama.cpp", "transformers"),
                    help="what computes the batched rows (the validator's --neuron.verify_engine)")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; load {os.getloadavg()[0]:.1f}; "
          f"validator threads {args.threads}; rows by {args.engine}")
    cache = args.cache or os.path.join(tempfile.gettempdir(), f"sn1_verify_batch_{args.n}x{args.tokens}.pkl")
    subs, seeds = answers(args.n, args.tokens, cache)
    n_tok = sum(len(s.logprobs) for s in subs)
    distinct = len({tuple(t.token for t in s.logprobs) for s in subs})
    print(f"{len(subs)} answers ({distinct} distinct), {n_tok} tokens (mean {n_tok / len(subs):.1f})")

    verifier = Verifier(None, n_threads=args.threads, engine=args.engine)
    if args.batch_seqs and args.engine == "llama.cpp":
        verifier._forcer = TeacherForcer(str(embedded_gguf()), n_ctx=verifier.n_ctx, n_threads=args.threads,
                                         chat_format="chatml", batch_seqs=args.batch_seqs)
    forcer = verifier.forcer
    prompt = forcer.prompt_tokens(MSGS)
    table = forcer.table
    seqs = [[table.by_bytes[t.token] for t in s.logprobs] for s in subs]
    # As the validator asks: each answer its own seed, so the sampler's draws are replayed and
    # an answer that stops early has its end checked on one-token passes (verify/step.py).
    policy = [Policy(temperature=1.0, top_k=50, top_p=0.95, max_tokens=args.tokens, top_logprobs=K, seed=s)
              for s in seeds]
    stops = sum(s.finish_reason == "stop" for s in subs)
    print(f"{stops} of {len(subs)} answers stopped before max_tokens (their end is checked one token per pass)")
    forcer.logprobs(prompt, [])                 # the prompt's pass and warm-up, as in a running validator
    forcer.logprobs_many(prompt, [seqs[0]])
    if args.engine == "llama.cpp":
        print(f"prompt {len(prompt)} tokens; batch of {forcer._batch.n_seqs} sequences, "
              f"{forcer._batch.n_batch} tokens per llama_decode")
    else:
        from sn1.llm.hf_forcer import MAX_BATCH_SEQS, MAX_BATCH_TOKENS

        print(f"prompt {len(prompt)} tokens; transformers (float32), up to {MAX_BATCH_SEQS} sequences "
              f"or {MAX_BATCH_TOKENS} tokens per forward pass")

    worst = 0.0
    for _ in range(args.repeat):
        if not args.skip_old:
            timed("forward, one at a time", n_tok, lambda: [forcer.logprobs(prompt, s) for s in seqs])
        timed("forward, batched", n_tok, lambda: [None for _ in forcer.iter_logprobs(prompt, seqs)])
        if not args.skip_old:
            old, _, _ = timed("step, one at a time (old loop)", n_tok,
                              lambda: [verify_answer(forcer, prompt, s, p) for s, p in zip(subs, policy)])
        new, _, _ = timed("step, batched (verify_step)", n_tok, lambda: verify_step(verifier, MSGS, policy, subs))
        print(f"  verified {sum(v.ok for v in new.verdicts)}/{len(subs)}, {new.n_passes} passes"
              + ("" if args.skip_old else
                 f"; same verdicts as one at a time: {[v.ok for v in old] == [v.ok for v in new.verdicts]}"))
    if not args.skip_old:
        for i, rows in forcer.iter_logprobs(prompt, seqs):
            worst = max(worst, float(np.abs(rows - forcer.logprobs(prompt, seqs[i])).max()))
        print(f"max |batched - one at a time| over {n_tok + len(seqs)} rows x {table.n_vocab}: {worst:.2e}")


if __name__ == "__main__":
    main()
