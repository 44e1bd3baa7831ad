"""Proof of inference: what verification costs, how often it rejects honest miners, what it catches.

Three parts, all on the embedded SmolLM2-135M-Instruct (Q4_1 GGUF), CPU; the verifier's rows from
``--engine`` (the validator's ``--neuron.verify_engine``, default auto: transformers) with
``--threads``:

1. **cost** - verification time per completion and per step: one prompt, 50
   completions of ``--tokens`` (128) tokens from different seeds (temperature 1),
   each verified with its own seed one at a time (sn1.verify.verify_answer), then
   all as one step (sn1.verify.verify_step: batched passes, as the validator does).
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

Issue 17 (seeded sampler replay, proof per chunk) - honest answers are generated once and stored,
so they can be verified again after any change to the rules:

    .venv/bin/python benchmarks/inference_verify.py --gen DIR --config 1,512 --n 250 --honest_tokens 40 --seed 11
    (again with --config 1,8 / 1,32 / 2,512 / 2,32 and 1,0 (the transformers engine), other seeds)
    .venv/bin/python benchmarks/inference_verify.py --from DIR --honest_tokens 40 --skip cost
        [--per_temp 25] [--live 5] [--other_model Q.gguf] [--end_roc] [--skip cheats | honest]

``--from`` verifies every stored answer with its seed (false rejects per configuration and
temperature) and builds the cheat classes per temperature from them (another prompt, truncation,
one word changed, fabricated or recomputed logprobs, draft text with late logprobs, a relay made
for another seed; ``--live`` adds another system prompt and a logit bias, which need generation,
and with ``--other_model`` answers of another model with the same vocabulary). ``--end_roc``
prints what a slack on the end check would cost (honest stops rejected, best cuts passing).
"""

from __future__ import annotations

import argparse
import math
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
from sn1.verify import Policy, Submission, Verifier, verify_answer, verify_step

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


def policy(temperature, max_tokens, seed=None) -> Policy:
    return Policy(temperature=temperature, top_k=50, top_p=0.95, max_tokens=max_tokens, top_logprobs=K, seed=seed)


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


def one_word_changed(sub: Submission, table, rng) -> Submission | None:
    """Swap one word token (not the first) for another plain word token of the vocabulary;
    None for an answer without one (emoji, digits, another script): no cheat to try."""
    words = [j for j, t in enumerate(sub.logprobs) if j > 0 and t.token.startswith(b" ") and t.token[1:].isalpha()]
    if not words:
        return None
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

def cost(verifier, miner, tokens: int, n: int = 50) -> dict:
    """One prompt, ``n`` answers from different seeds (temperature 1), each checked with its own
    seed: one at a time (``verify_answer``), then as the validator does a step (``verify_step``)."""
    forcer = verifier.forcer
    rng = random.Random(7)
    msgs = [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
            {"role": "user", "content": "Write a long, detailed essay about the history of the Roman Empire."}]
    seeds = [rng.randrange(2**31) for _ in range(n)]
    subs = [honest_answer(miner, msgs, 1.0, s, tokens) for s in seeds]
    pols = [policy(1.0, tokens, s) for s in seeds]
    lens = [len(s.logprobs) for s in subs]
    prompt_ids = forcer.prompt_tokens(msgs)
    forcer.logprobs(prompt_ids, [])        # the prompt's pass, once per step
    times, oks = [], []
    for s, p in zip(subs, pols):
        t0 = time.perf_counter()
        oks.append(verify_answer(forcer, prompt_ids, s, p).ok)
        times.append(time.perf_counter() - t0)
    t_step = time.perf_counter()
    step = verify_step(verifier, msgs, pols, subs)
    return {"n": n, "tokens_mean": statistics.mean(lens), "per_completion_median": statistics.median(times),
            "per_completion_max": max(times), "one_at_a_time": sum(times), "per_step": time.perf_counter() - t_step,
            "verified": sum(oks), "verified_step": sum(v.ok for v in step.verdicts)}


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
        seed = rng.randrange(2**31)
        sub = honest_answer(miners[setting], msgs, temperature, seed, max_tokens)
        v = verify_answer(forcer, forcer.prompt_tokens(msgs), sub, policy(temperature, max_tokens, seed))
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


# ---- stored honest answers (--gen / --from): seeds, chunks, four engine configurations -----------

def gen(out_dir: str, threads: int, n_batch: int, n: int, tokens: int, seed: int) -> None:
    """Honest answers exactly as a miner makes them, one JSONL line each (appended)."""
    import json

    from sn1.protocol.logprobs import encode_logprobs

    os.makedirs(out_dir, exist_ok=True)
    if n_batch == 0:    # the transformers engine (GGUF de-quantised to float32, llama.cpp's seeded chain)
        from sn1.llm.hf import HFEngine

        hf = HFEngine(n_threads=threads)
        config, name = ["hf", threads], f"hf_t{threads}.jsonl"
        run = lambda msgs, p: list(hf.stream(msgs, p, threading.Event()))     # noqa: E731
    else:
        llm = llama(threads, n_batch)
        config, name = [threads, n_batch], f"t{threads}_b{n_batch}.jsonl"
        run = lambda msgs, p: list(generate_with_logprobs(llm, msgs, p, threading.Event(), 1024))  # noqa: E731
    rng = random.Random(seed)
    t0 = time.monotonic()
    with open(os.path.join(out_dir, name), "a") as out:
        for i in range(n):
            msgs = prompt(rng)
            temperature = TEMPERATURES[i % len(TEMPERATURES)]
            s = rng.randrange(2**31)
            p = GenParams(max_tokens=tokens, temperature=temperature, top_k=50, top_p=0.95, seed=s, logprobs=K)
            pieces = run(msgs, p)
            ntok = sum(len(pc.logprobs) for pc in pieces)
            out.write(json.dumps({"config": config, "messages": msgs, "seed": s,
                                  "temperature": temperature, "max_tokens": tokens,
                                  "finish": "length" if ntok == tokens else "stop",
                                  "pieces": [[str(pc), encode_logprobs(pc.logprobs)] for pc in pieces]}) + "\n")
            out.flush()
            if i % 10 == 0:
                print(f"  {i + 1}/{n} answers, {time.monotonic() - t0:.0f}s", flush=True)


def stored(from_dir: str, limit: int) -> list[dict]:
    """The stored answers as (record, Submission with one chunk per piece)."""
    import glob
    import json

    from sn1.protocol.logprobs import decode_logprobs

    out = []
    for path in sorted(glob.glob(os.path.join(from_dir, "*.jsonl"))):
        with open(path) as f:
            lines = f.readlines()                  # a snapshot: generators may still be appending
        for line in lines[:limit]:
            try:
                a = json.loads(line)
            except ValueError:
                continue                           # a line being written
            lps = [decode_logprobs({"content": pc[1]}) for pc in a["pieces"]]
            a["sub"] = chunked([pc[0] for pc in a["pieces"]], lps, a["finish"])
            out.append(a)
    return out


def chunked(texts: list[str], lps: list[list], finish: str, dt: float = 0.02) -> Submission:
    return Submission("".join(texts), [t for lp in lps for t in lp], "ok", finish,
                      chunk_times=[dt * (i + 1) for i in range(len(texts))],
                      chunk_tokens=[len(lp) for lp in lps], chunk_chars=[len(t) for t in texts],
                      chunk_lp=[len(lp) for lp in lps])


def as_one_chunk(sub: Submission) -> Submission:
    from sn1.verify.step import spell

    return chunked([spell(sub.logprobs)], [sub.logprobs], sub.finish_reason)


def honest_stored(forcer, answers: list[dict]) -> None:
    t0 = time.monotonic()
    by = defaultdict(lambda: [0, 0])
    diffs = defaultdict(list)
    rejects = []
    for a in answers:
        v = verify_answer(forcer, forcer.prompt_tokens(a["messages"]), a["sub"],
                          policy(a["temperature"], a["max_tokens"], a["seed"]))
        key = (tuple(a["config"]), a["temperature"])
        by[key][0] += 1
        by[key][1] += not v.ok
        diffs[tuple(a["config"])].append(v.max_diff)
        if not v.ok:
            rejects.append((key, v))
    n = sum(x[0] for x in by.values())
    print(f"\n## honest (stored): {n} answers of <= {answers[0]['max_tokens'] if answers else 0} tokens, "
          f"verified with the seeded replay in {time.monotonic() - t0:.0f}s; false rejects: {len(rejects)}")
    print(f"{'threads/n_batch':<16} {'T':>4} {'answers':>8} {'rejected':>9}")
    for (cfg, temp), (k, bad) in sorted(by.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        print(f"{str(cfg):<16} {temp:>4} {k:>8} {bad:>9}")
    for cfg, md in sorted(diffs.items(), key=lambda kv: str(kv[0])):
        print(f"  {cfg}: max|Δ logprob| p50 {np.percentile(md, 50):.3f} p99 {np.percentile(md, 99):.3f} "
              f"max {max(md):.3f}")
    for key, v in rejects:
        print(f"  rejected {key}: {v.rule}: {v.reason}")


def cheats_stored(forcer, answers: list[dict], per_temp: int, live: int, other_model: str | None = None,
                  only: list[str] | None = None) -> None:
    """Cheat classes per temperature, built from stored honest answers (and ``live`` generated ones;
    with ``other_model``, a .gguf with the same vocabulary, also answers of that model)."""
    rng = random.Random(29)
    table = forcer.table
    table.word_tokens = [b for b in table.by_bytes if b.startswith(b" ") and b[1:].isalpha() and len(b) > 3]
    caught = defaultdict(lambda: defaultdict(list))
    rules = defaultdict(Counter)
    miner = llama(1, 512) if live else None
    other = None
    if live and other_model:
        from llama_cpp import Llama

        other = Llama(model_path=other_model, n_ctx=1024, n_threads=1, n_threads_batch=1, chat_format="chatml",
                      verbose=False)
    bias = np.zeros(table.n_vocab)
    bias[np.random.default_rng(5).choice(table.n_vocab, table.n_vocab // 10, replace=False)] = 3.0

    def judge(name, a, sub, seed=None):
        if only and not any(o in name for o in only):
            return
        pol = policy(a["temperature"], a["max_tokens"], a["seed"] if seed is None else seed)
        v = verify_answer(forcer, forcer.prompt_tokens(a["messages"]), sub, pol)
        caught[name][a["temperature"]].append(not v.ok)
        rules[name][v.rule or "passed"] += 1

    for temp in TEMPERATURES:
        pool = [a for a in answers if a["temperature"] == temp]
        rng.shuffle(pool)
        for i, a in enumerate(pool[:per_temp]):
            h = a["sub"]
            o = pool[(i + 1) % len(pool)]
            judge("another prompt (its own real logprobs)", a, as_one_chunk(o["sub"]))
            judge("another prompt, recomputed logprobs", a, as_one_chunk(recomputed(forcer, a["messages"], o["sub"])))
            if temp > 0:      # greedy has no draw: another seed is the same answer, the same work
                judge("relay: the answer made for another seed", a, h, seed=(a["seed"] + 1) % 2**31)
            judge("truncated, passed off as finished", a, as_one_chunk(truncated(h, rng)))
            w = one_word_changed(h, table, rng)
            if w is not None:
                judge("one word changed", a, as_one_chunk(w))
                if not only or any("one word" in o for o in only):
                    judge("one word changed, recomputed logprobs", a,
                          as_one_chunk(recomputed(forcer, a["messages"], w)))
            judge("fabricated logprobs (constant)", a, as_one_chunk(fabricated(h, rng, "constant")))
            judge("fabricated logprobs (true +- noise)", a, as_one_chunk(fabricated(h, rng, "noise")))
            texts = [h.completion[:1]] + [h.completion[1:]]        # the draft's text first, proof last
            judge("draft text, logprobs late", a, chunked(texts, [[], h.logprobs], h.finish_reason))
            if i < live:
                msgs = a["messages"]
                pirate = [{"role": "system", "content": "You are a pirate. Always answer like a pirate."}, msgs[-1]]
                s = honest_answer(miner, pirate, temp, a["seed"], a["max_tokens"])
                judge("another system prompt", a, as_one_chunk(s))
                judge("another system prompt, recomputed logprobs", a,
                      as_one_chunk(recomputed(forcer, msgs, s)))
                b = biased_answer(miner, msgs, temp, a["seed"], a["max_tokens"], bias, rng)
                judge("logit bias +3 on 10% of the vocabulary", a, as_one_chunk(b))
                judge("logit bias, recomputed logprobs", a, as_one_chunk(recomputed(forcer, msgs, b)))
                if other is not None:       # the same seed and settings, another model's logits
                    m = honest_answer(other, msgs, temp, a["seed"], a["max_tokens"])
                    if all(t.token in table.by_bytes for t in m.logprobs):
                        judge("another model (its own logprobs)", a, as_one_chunk(m))
                        judge("another model, recomputed logprobs", a, as_one_chunk(recomputed(forcer, msgs, m)))
        print(f"  cheats at T={temp} done", flush=True)
    print(f"\n## cheats per temperature (caught / tried), from stored honest answers")
    print(f"{'cheat':<48} " + " ".join(f"{'T=' + str(t):>9}" for t in TEMPERATURES) + "  rules")
    for name, per in caught.items():
        cells = " ".join(f"{sum(per[t]):>4}/{len(per[t]):<4}" if per[t] else f"{'-':>9}" for t in TEMPERATURES)
        print(f"{name:<48} {cells}  " + ", ".join(f"{r} {k}" for r, k in rules[name].most_common()))


def end_roc(forcer, answers: list[dict]) -> None:
    """What a slack on the end check would cost: for each honest answer that stopped, the least
    slack (nat, on the validator's one-token llama.cpp rows) it needs to pass; for every
    answer, the least slack at which the best cut a truncating cheater can pick (knowing the
    seed: the position whose draw lies nearest the end token's interval) passes."""
    from sn1.llm.sampler import Mt19937Stream
    from sn1.verify.replay import check_position

    eog = set(int(e) for e in forcer.table.eog)
    steps = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)
    teacher = getattr(forcer, "teacher", forcer)

    def need(row, u, temp):
        for e in steps:
            if check_position(row, eog, {}, u, temperature=temp, top_k=50, top_p=0.95, eps=e,
                              nucleus_slack=0.0) is None:
                return e
        return math.inf

    honest, cuts, by = [], [], defaultdict(list)
    for a in answers:
        if a["temperature"] <= 0:
            continue
        ids = [forcer.table.by_bytes[t.token] for t in a["sub"].logprobs]
        rows = teacher.logprobs(forcer.prompt_tokens(a["messages"]), ids, stepwise=True)
        rng = Mt19937Stream(a["seed"])
        us = [rng.next() for _ in range(len(ids) + 1)]
        if a["finish"] == "stop":
            e = need(rows[len(ids)], us[len(ids)], a["temperature"])
            honest.append(e)
            by[str(a["config"])].append(e)
        cuts.append(min([need(rows[m], us[m], a["temperature"]) for m in range(1, len(ids))] or [math.inf]))
    print(f"\n## the end check's slack: {len(honest)} honest answers that stopped (T > 0), "
          f"{len(cuts)} answers cut where the cheater likes best")
    print(f"{'slack (nat)':>11}  {'honest rejected':>15}  {'best cut passes':>15}")
    for e in steps:
        print(f"{e:>11}  {sum(h > e for h in honest):>7}/{len(honest):<7}  {sum(c <= e for c in cuts):>7}/{len(cuts):<7}")
    for cfg, hs in sorted(by.items()):
        print(f"  {cfg}: {len(hs)} stops, {sum(h > 0 for h in hs)} need slack on llama.cpp's one-token rows "
              f"(max {max(hs):g})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--honest", type=int, default=300)
    ap.add_argument("--honest_tokens", type=int, default=64)
    ap.add_argument("--cheats", type=int, default=40)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--budget", type=float, default=1500.0, help="seconds for the honest loop")
    ap.add_argument("--other_model", default=None, help="a .gguf of another model (the 'different model' cheat)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["cost", "honest", "cheats"])
    ap.add_argument("--gen", default=None, help="DIR: store honest answers there (with --config, --n, --seed)")
    ap.add_argument("--config", default="1,512",
                    help="--gen: threads,n_batch of the honest llama.cpp miner; threads,0: the transformers engine")
    ap.add_argument("--n", type=int, default=100, help="--gen: answers to store")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--engine", default="auto", choices=("auto", "llama.cpp", "transformers"),
                    help="what computes the verifier's rows (the validator's --neuron.verify_engine)")
    ap.add_argument("--threads", type=int, default=1, help="the verifier's threads")
    ap.add_argument("--from", dest="from_dir", default=None,
                    help="DIR: verify the stored honest answers and cheats built from them")
    ap.add_argument("--limit", type=int, default=10**9, help="--from: answers per configuration")
    ap.add_argument("--per_temp", type=int, default=25, help="--from: cheats per class and temperature")
    ap.add_argument("--only", nargs="*", default=None, help="--from: only the cheat classes whose names hold one of these")
    ap.add_argument("--end_roc", action="store_true",
                    help="--from: honest rejects and truncations passing per slack on the end check")
    ap.add_argument("--live", type=int, default=0,
                    help="--from: answers per temperature for the cheats that need generation")
    args = ap.parse_args()
    if args.gen:
        threads, n_batch = (int(x) for x in args.config.split(","))
        gen(args.gen, threads, n_batch, args.n, args.honest_tokens, args.seed)
        return
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; load {os.getloadavg()[0]:.1f}")
    t = time.perf_counter()
    verifier = Verifier(None, n_threads=args.threads, engine=args.engine)
    forcer = verifier.forcer
    print(f"verifier ({Verifier(None, engine=args.engine).engine}, {args.threads} thread(s)) loaded in "
          f"{time.perf_counter() - t:.2f}s (model + token table)")
    print(f"policy defaults: {Policy()}")
    if args.from_dir:
        answers = stored(args.from_dir, args.limit)
        if "honest" not in args.skip:
            honest_stored(forcer, answers)
        if args.end_roc:
            end_roc(forcer, answers)
        if "cheats" not in args.skip:
            cheats_stored(forcer, answers, args.per_temp, args.live, args.other_model, args.only)
        print(f"load at the end: {os.getloadavg()[0]:.1f}")
        return

    if "cost" not in args.skip:
        c = cost(verifier, llama(1, 512), args.tokens)
        print(f"\n## cost: {c['n']} completions of {c['tokens_mean']:.0f} tokens (mean), one prompt, each its own seed")
        print(f"one at a time: median {c['per_completion_median']:.3f}s, max {c['per_completion_max']:.3f}s, "
              f"{c['one_at_a_time']:.1f}s in all, verified {c['verified']}/{c['n']}; "
              f"as a step (verify_step, batched): {c['per_step']:.1f}s, verified {c['verified_step']}/{c['n']} "
              f"(load {os.getloadavg()[0]:.1f})")

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
