"""Proof of inference: what verification costs, how often it rejects honest miners, what it catches.

Three parts, all on the embedded SmolLM2-135M-Instruct (Q4_1 GGUF) through llama.cpp, CPU:

1. **cost** - verification time per completion and per step: one prompt, 50
   completions of ``--tokens`` (128) tokens from different seeds (temperature 1),
   each verified without de-duplication (sn1.verify.verify_answer).
2. **honest** - false rejects: answers produced exactly as a miner does
   (sn1.llm.llamacpp_logprobs.generate_with_logprobs) by llama.cpp instances
   with different thread counts and batch sizes (n_batch = n_ubatch), over
   seeds, temperatures (0, 0.3, 0.7, 1.0) and prompts from the inference task,
   verified by the validator's model (1 thread, n_batch 512). Prints the
   distributions the tolerances come from (max/mean |Δ logprob|, z).
3. **cheats** - detection rate per cheat, two flavours where it matters:
   *naive* reports the logprobs its own run saw; *recomputed* reports the
   exact logprobs of the real model for its (wrong) tokens - the strongest
   cheat, caught only by plausibility, typicality and the end rule.

    .venv/bin/python benchmarks/inference_verify.py [--honest 300] [--cheats 40] [--tokens 128]
        [--honest_tokens 64] [--budget 1500]

``--budget`` (seconds) stops the honest loop early; the counts actually run are printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import threading
import time
from collections import Counter, defaultdict

import numpy as np

from sn1.llm.base import DEFAULT_SYSTEM_PROMPT, GenParams
from sn1.llm.embedded import embedded_gguf
from sn1.llm.llamacpp_logprobs import generate_with_logprobs, log_softmax, prompt_tokens, top_entries
from sn1.protocol.logprobs import TokenLogprob
from sn1.tasks.inference import build_inference_task
from sn1.verify import Policy, Submission, Verifier, verify_answer

TEMPERATURES = (0.0, 0.3, 0.7, 1.0)
MINER_SETTINGS = ((1, 512), (1, 32), (2, 512), (1, 8))      # (n_threads, n_batch) of honest miners
K = 5


def llama(n_threads: int, n_batch: int):
    from llama_cpp import Llama

    return Llama(model_path=str(embedded_gguf()), n_ctx=1024, n_threads=n_threads, n_threads_batch=n_threads,
                 n_batch=n_batch, n_ubatch=n_batch, chat_format="chatml", verbose=False)


def prompt(rng: random.Random) -> list[dict]:
    return build_inference_task(rng).extra["request"]["messages"]


def honest_answer(llm, msgs, temperature, seed, max_tokens) -> Submission:
    p = GenParams(max_tokens=max_tokens, temperature=temperature, top_k=50, top_p=0.95, seed=seed, logprobs=K)
    pieces = list(generate_with_logprobs(llm, msgs, p, threading.Event(), 1024))
    tokens = [t for pc in pieces for t in pc.logprobs]
    return Submission("".join(pieces), tokens, "ok", "length" if len(tokens) == max_tokens else "stop")


def policy(temperature, max_tokens) -> Policy:
    return Policy(temperature=temperature, top_k=50, top_p=0.95, max_tokens=max_tokens, top_logprobs=K)


# ---- cheats ------------------------------------------------------------------------------------

def recomputed(forcer, msgs, sub: Submission) -> Submission:
    """The same tokens with the real model's exact logprobs and alternatives for the real prompt."""
    table = forcer.table
    ids = [table.by_bytes.get(t.token) for t in sub.logprobs]
    if any(i is None for i in ids):
        return sub
    rows = forcer.logprobs(forcer.prompt_tokens(msgs), ids)
    tokens = [TokenLogprob(table.bytes_of(i), float(rows[j, i]), top_entries(rows[j], K, table))
              for j, i in enumerate(ids)]
    return Submission(sub.completion, tokens, sub.status, sub.finish_reason)


def biased_answer(llm, msgs, temperature, seed, max_tokens, bias: np.ndarray, rng) -> Submission:
    """The same model with a logit bias, sampled in Python (temperature, top-k 50, top-p 0.95)."""
    import llama_cpp

    from sn1.llm.llamacpp_logprobs import token_table

    table = token_table(llm)
    toks = prompt_tokens(llm, msgs)
    llm.reset()
    llm.eval(toks)
    out, text = [], b""
    r = np.random.default_rng(seed)
    for _ in range(max_tokens):
        logits = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(llm._ctx.ctx, -1),
                                       shape=(table.n_vocab,)).astype(np.float64) + bias
        lp = log_softmax(logits)
        if temperature <= 0:
            tok = int(lp.argmax())
        else:
            t = lp / temperature
            idx = np.argsort(-t)[:50]
            q = np.exp(t[idx] - t[idx].max())
            q /= q.sum()
            keep = np.searchsorted(np.cumsum(q), 0.95) + 1
            q = q[:keep] / q[:keep].sum()
            tok = int(idx[:keep][r.choice(keep, p=q)])
        if tok in table.eog:
            break
        out.append(TokenLogprob(table.bytes_of(tok), float(lp[tok]), top_entries(lp, K, table)))
        text += table.bytes_of(tok)
        llm.eval([tok])
    return Submission(text.decode("utf-8", errors="replace"), out, "ok",
                      "length" if len(out) == max_tokens else "stop")


def one_word_changed(sub: Submission, table, rng) -> Submission:
    """Swap one word token (not the first) for another plain word token of the vocabulary."""
    words = [j for j, t in enumerate(sub.logprobs) if j > 0 and t.token.startswith(b" ") and t.token[1:].isalpha()]
    if not words:
        return sub
    j = rng.choice(words)
    pool = table.word_tokens
    new = rng.choice(pool)
    while new == sub.logprobs[j].token:
        new = rng.choice(pool)
    t = sub.logprobs[j]
    tokens = sub.logprobs[:j] + [TokenLogprob(new, t.logprob, t.top)] + sub.logprobs[j + 1:]
    text = b"".join(x.token for x in tokens).decode("utf-8", errors="replace")
    return Submission(text, tokens, sub.status, sub.finish_reason)


def fabricated(sub: Submission, rng, how: str) -> Submission:
    out = []
    for t in sub.logprobs:
        if how == "constant":
            out.append(TokenLogprob(t.token, -0.1, tuple(type(a)(a.token, -0.1 * (i + 1)) for i, a in enumerate(t.top))))
        else:       # the true values plus noise of +-1 nat
            out.append(TokenLogprob(t.token, min(0.0, t.logprob + rng.uniform(-1, 1)),
                                    tuple(type(a)(a.token, min(0.0, a.logprob + rng.uniform(-1, 1))) for a in t.top)))
    return Submission(sub.completion, out, sub.status, sub.finish_reason)


def truncated(sub: Submission, rng) -> Submission:
    n = len(sub.logprobs)
    cut = rng.randint(max(1, n // 4), max(1, 3 * n // 4))
    tokens = sub.logprobs[:cut]
    return Submission(b"".join(t.token for t in tokens).decode("utf-8", errors="replace"), tokens, "ok", "stop")


# ---- the three parts ---------------------------------------------------------------------------

def cost(forcer, miner, tokens: int, n: int = 50) -> dict:
    rng = random.Random(7)
    msgs = [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
            {"role": "user", "content": "Write a long, detailed essay about the history of the Roman Empire."}]
    subs = [honest_answer(miner, msgs, 1.0, rng.randrange(2**31), tokens) for _ in range(n)]
    lens = [len(s.logprobs) for s in subs]
    prompt_ids = forcer.prompt_tokens(msgs)
    forcer.logprobs(prompt_ids, [])        # the prompt's pass, once per step
    times, oks = [], []
    t_step = time.perf_counter()
    for s in subs:
        t0 = time.perf_counter()
        oks.append(verify_answer(forcer, prompt_ids, s, policy(1.0, tokens)).ok)
        times.append(time.perf_counter() - t0)
    step = time.perf_counter() - t_step
    return {"n": n, "tokens_mean": statistics.mean(lens), "per_completion_median": statistics.median(times),
            "per_completion_max": max(times), "per_step": step, "verified": sum(oks)}


def honest(forcer, n: int, max_tokens: int, budget: float) -> dict:
    rng = random.Random(11)
    miners = {s: llama(*s) for s in MINER_SETTINGS}
    results = []
    t0 = time.monotonic()
    for i in range(n):
        if time.monotonic() - t0 > budget:
            break
        setting = MINER_SETTINGS[i % len(MINER_SETTINGS)]
        temperature = TEMPERATURES[(i // len(MINER_SETTINGS)) % len(TEMPERATURES)]
        msgs = prompt(rng)
        sub = honest_answer(miners[setting], msgs, temperature, rng.randrange(2**31), max_tokens)
        v = verify_answer(forcer, forcer.prompt_tokens(msgs), sub, policy(temperature, max_tokens))
        results.append((setting, temperature, v))
    return {"results": results, "seconds": time.monotonic() - t0}


def cheats(forcer, n: int, max_tokens: int, other_model=None) -> dict:
    rng = random.Random(23)
    miner = llama(1, 512)
    table = forcer.table
    table.word_tokens = [b for b in table.by_bytes if b.startswith(b" ") and b[1:].isalpha() and len(b) > 3]
    vocab = table.n_vocab
    bias = np.zeros(vocab)
    bias[np.random.default_rng(5).choice(vocab, vocab // 10, replace=False)] = 3.0
    caught = defaultdict(list)
    rules = defaultdict(Counter)

    def judge(name, msgs, sub, temperature):
        v = verify_answer(forcer, forcer.prompt_tokens(msgs), sub, policy(temperature, max_tokens))
        caught[name].append(not v.ok)
        rules[name][v.rule or "passed"] += 1

    for i in range(n):
        temperature = TEMPERATURES[i % len(TEMPERATURES)]
        msgs, other = prompt(rng), prompt(rng)
        seed = rng.randrange(2**31)
        h = honest_answer(miner, msgs, temperature, seed, max_tokens)
        o = honest_answer(miner, other, temperature, seed, max_tokens)
        judge("other prompt, naive", msgs, o, temperature)
        judge("other prompt, recomputed", msgs, recomputed(forcer, msgs, o), temperature)
        pirate = [{"role": "system", "content": "You are a pirate. Always answer like a pirate."}, msgs[1]]
        s = honest_answer(miner, pirate, temperature, seed, max_tokens)
        judge("other system prompt, naive", msgs, s, temperature)
        judge("other system prompt, recomputed", msgs, recomputed(forcer, msgs, s), temperature)
        b = biased_answer(miner, msgs, temperature, seed, max_tokens, bias, rng)
        judge("logit bias +3 on 10% of the vocabulary, naive", msgs, b, temperature)
        judge("logit bias +3 on 10% of the vocabulary, recomputed", msgs, recomputed(forcer, msgs, b), temperature)
        judge("fabricated logprobs (constant)", msgs, fabricated(h, rng, "constant"), temperature)
        judge("fabricated logprobs (true +- noise)", msgs, fabricated(h, rng, "noise"), temperature)
        judge("truncated, passed off as finished", msgs, truncated(h, rng), temperature)
        w = one_word_changed(h, table, rng)
        judge("one word changed, naive", msgs, w, temperature)
        judge("one word changed, recomputed", msgs, recomputed(forcer, msgs, w), temperature)
        if other_model is not None:
            g = honest_answer(other_model, msgs, temperature, seed, max_tokens)
            judge("another model (Gemma 3 270M)", msgs, g, temperature)
        print(f"  cheats round {i + 1}/{n} done", flush=True)
    return {"caught": caught, "rules": rules}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--honest", type=int, default=300)
    ap.add_argument("--honest_tokens", type=int, default=64)
    ap.add_argument("--cheats", type=int, default=40)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--budget", type=float, default=1500.0, help="seconds for the honest loop")
    ap.add_argument("--other_model", default=None, help="a .gguf of another model (the 'different model' cheat)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["cost", "honest", "cheats"])
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; load {os.getloadavg()[0]:.1f}")
    t = time.perf_counter()
    forcer = Verifier(None, n_threads=1).forcer
    print(f"verifier loaded in {time.perf_counter() - t:.2f}s (model + token table)")
    print(f"policy defaults: {Policy()}")

    if "cost" not in args.skip:
        c = cost(forcer, llama(1, 512), args.tokens)
        print(f"\n## cost: {c['n']} completions of {c['tokens_mean']:.0f} tokens (mean), one prompt")
        print(f"per completion: median {c['per_completion_median']:.3f}s, max {c['per_completion_max']:.3f}s; "
              f"per step: {c['per_step']:.1f}s; verified {c['verified']}/{c['n']}")

    if "honest" not in args.skip:
        h = honest(forcer, args.honest, args.honest_tokens, args.budget)
        res = h["results"]
        rej = [r for r in res if not r[2].ok]
        print(f"\n## honest: {len(res)} answers of <= {args.honest_tokens} tokens in {h['seconds']:.0f}s; "
              f"false rejects: {len(rej)}")
        for setting, temperature, v in rej:
            print(f"  rejected: threads/n_batch {setting}, T={temperature}: {v.rule}: {v.reason}")
        by = defaultdict(list)
        for setting, temperature, v in res:
            by[setting].append(v)
        for setting, vs in sorted(by.items()):
            md = [v.max_diff for v in vs]
            print(f"  miner threads/n_batch {setting}: n={len(vs)}, max|Δ| p50 {np.percentile(md, 50):.3f} "
                  f"p99 {np.percentile(md, 99):.3f} max {max(md):.3f}; mean|Δ| max "
                  f"{max(v.mean_diff for v in vs):.3f}")
        zs = [v.z for _, _, v in res if v.z is not None]
        if zs:
            print(f"  z (T>0): min {min(zs):.2f}, p1 {np.percentile(zs, 1):.2f}, median {np.median(zs):.2f}")

    if "cheats" not in args.skip:
        other = None
        if args.other_model:
            from llama_cpp import Llama

            # Asked in SmolLM2's chat format: the same prompt text, another model.
            other = Llama(model_path=args.other_model, n_ctx=1024, n_threads=1, chat_format="chatml",
                          verbose=False)
        c = cheats(forcer, args.cheats, args.honest_tokens, other)
        print(f"\n## cheats: {args.cheats} each, answers of <= {args.honest_tokens} tokens")
        print(f"{'cheat':<55} {'caught':>8}  rules")
        for name, got in c["caught"].items():
            rules = ", ".join(f"{r} {k}" for r, k in c["rules"][name].most_common())
            print(f"{name:<55} {sum(got):>3}/{len(got):<4}  {rules}")


if __name__ == "__main__":
    main()
