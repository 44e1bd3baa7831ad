"""Are sybil copies one text, and honest answers apart? (sn1.rewards.pipeline.copies)

Honest pairs: two answers of the embedded model (SmolLM2) to one question with other seeds, at
each --temps temperature (the validator asks for 0.7; 0.2 is near-greedy, the hard case).
Copies: one honest answer and the same answer edited all through the way a cabal would dodge an
exact-match rule: a pair of words swapped every k words, a word changed / added / dropped every
k-th word. Prints, per temperature, how many honest pairs `copies` joins (false sharing) and,
per edit, how many copies it joins (caught), for answers with 40+ words outside the question and
for answers that are mostly the question (judged on 3-grams alone, as the question's words are
left out of the edit rules).

    .venv/bin/python benchmarks/copies.py [--pairs 30] [--temps 0.2 0.7] [--save FILE | --load FILE]

Questions are the qa / summarization / date_qa / debugging challenges of --events (a validator's
events.jsonl). Generation takes ~10 s a pair on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sn1.rewards import text  # noqa: E402
from sn1.rewards.pipeline import SHARED_EDIT_MIN_WORDS, copies  # noqa: E402

FILLER = "alpha river stone quick light table green orange window silver paper music garden".split()


def questions(events: str | None, n: int) -> list[str]:
    if events:
        out = []
        for line in open(events):
            e = json.loads(line)
            if e.get("task") in ("qa", "summarization", "date_qa", "debugging") and e["challenge"] not in out:
                out.append(e["challenge"])
        return out[:n]
    raise SystemExit("--events is needed (a validator's events.jsonl with text tasks), or --load")


def generate(qs: list[str], temps: list[float]) -> list[dict]:
    from llama_cpp import Llama

    from sn1.llm.embedded import embedded_gguf

    llm = Llama(model_path=str(embedded_gguf()), n_ctx=2048, n_threads=2, verbose=False)
    out = []
    for t in temps:
        for i, q in enumerate(qs):
            pair = [llm.create_chat_completion(messages=[{"role": "user", "content": q}], temperature=t,
                                               seed=s, max_tokens=200)["choices"][0]["message"]["content"]
                    for s in (11 + i, 1011 + i)]
            out.append({"T": t, "challenge": q, "a": pair[0], "b": pair[1]})
            print(f"  T={t} pair {i + 1}/{len(qs)}", file=sys.stderr, flush=True)
    return out


def _swap(t: str, k: int) -> str:
    w = t.split()
    for i in range(0, len(w) - 1, k):
        w[i], w[i + 1] = w[i + 1], w[i]
    return " ".join(w)


def _every(t: str, k: int, fn) -> str:
    return " ".join(x for x in (fn(w) if i % k == k - 1 else w for i, w in enumerate(t.split())) if x)


def edits(rng: random.Random) -> dict:
    return {
        "swap every 6": lambda t: _swap(t, 6), "swap every 3": lambda t: _swap(t, 3),
        "swap every 2": lambda t: _swap(t, 2),
        "change every 8th": lambda t: _every(t, 8, lambda w: rng.choice(FILLER)),
        "change every 5th": lambda t: _every(t, 5, lambda w: rng.choice(FILLER)),
        "change every 4th": lambda t: _every(t, 4, lambda w: rng.choice(FILLER)),
        "change every 3rd": lambda t: _every(t, 3, lambda w: rng.choice(FILLER)),
        "add one every 4th": lambda t: _every(t, 4, lambda w: w + " " + rng.choice(FILLER)),
        "add one every 2nd": lambda t: _every(t, 2, lambda w: w + " " + rng.choice(FILLER)),
        "drop every 4th": lambda t: _every(t, 4, lambda w: ""),
        "drop every 3rd": lambda t: _every(t, 3, lambda w: ""),
        "swap every 4 + change every 6th": lambda t: _every(_swap(t, 4), 6, lambda w: rng.choice(FILLER)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=30)
    ap.add_argument("--temps", type=float, nargs="+", default=[0.2, 0.7])
    ap.add_argument("--events", help="a validator's events.jsonl whose text-task challenges are asked")
    ap.add_argument("--save", help="write the honest pairs here (JSON)")
    ap.add_argument("--load", help="read honest pairs from here instead of generating them")
    args = ap.parse_args()
    pairs = json.load(open(args.load)) if args.load else generate(questions(args.events, args.pairs), args.temps)
    if args.save:
        Path(args.save).write_text(json.dumps(pairs))
    print(f"machine: {platform.machine()}, {platform.python_version()}; {len(pairs)} honest pairs")
    for t in sorted({p["T"] for p in pairs}):
        ps = [p for p in pairs if p["T"] == t and min(len(text.tokens(p["a"])), len(text.tokens(p["b"]))) >= 10]
        joined = sum(copies([p["a"], p["b"]], p["challenge"]) == [2, 2] for p in ps)
        print(f"honest pairs at T={t}: {joined}/{len(ps)} joined (answers of 10 words or more)")
    rng = random.Random(1)

    def own(p) -> int:        # words of the answer the question does not hold
        asked = set(text.tokens(p["challenge"]))
        return sum(w not in asked for w in text.tokens(p["a"]))

    groups = {f"{SHARED_EDIT_MIN_WORDS + 10}+ words outside the question":
              [p for p in pairs if own(p) >= SHARED_EDIT_MIN_WORDS + 10],
              f"40+ words, fewer outside the question (mostly the question echoed)":
              [p for p in pairs if len(text.tokens(p["a"])) >= 40 and own(p) < SHARED_EDIT_MIN_WORDS + 10]}
    edit_fns = edits(rng)
    for label, group in groups.items():
        print(f"edited copies of the {len(group)} answers of {label}:")
        for name, edit in edit_fns.items():
            caught = sum(copies([p["a"], edit(p["a"])], p["challenge"]) == [2, 2] for p in group)
            print(f"  {name:32s} {caught}/{len(group)} joined")


if __name__ == "__main__":
    main()
