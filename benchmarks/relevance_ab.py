"""Relevance cost, old rule vs new, alternated in one process (so machine load hits both alike).

The seed's rule (one batch, each text cut at 256 tokens, baseline cos(ref, "")) is inlined in
`old_rewards`; the new one is `RelevanceModel.rewards(..., challenge=)` (windows, challenge
baseline). Steps are scoring.py's (50 completions of ~200 words).

    .venv/bin/python benchmarks/relevance_ab.py
"""
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np  # noqa: E402

import scoring  # noqa: E402
from sn1.rewards import load_relevance_model, score  # noqa: E402
from sn1.tasks.definitions import TASKS  # noqa: E402

model = load_relevance_model()
steps = scoring.build_steps(random.Random(0), 50, 200)

def old_rewards(reference, completions):
    vectors = model.embed([reference] + completions)
    ref, comps = vectors[0], vectors[1:]
    base = float(np.dot(ref, model.empty))
    return [min(1.0, max(0.0, float(s) - base)) for s in comps @ ref]

for task in ("qa", "summarization"):
    ref, ch, comps = steps[task]
    old, new = [], []
    for _ in range(5):
        t0 = time.perf_counter(); old_rewards(ref, comps); old.append(time.perf_counter() - t0)
        t0 = time.perf_counter(); model.rewards(ref, comps, challenge=ch); new.append(time.perf_counter() - t0)
    o, n = statistics.median(old), statistics.median(new)
    print(f"relevance {task}: seed {o:.2f} s/step, branch {n:.2f} s/step, ratio {n / o:.2f}")
    # whole step of the task as declared now, vs the same reward set with the seed's specs' cost
    t = []
    for _ in range(3):
        t0 = time.perf_counter(); score(list(TASKS[task].rewards), list(TASKS[task].penalties), ref, ch, comps, scoring.SOURCE[0]); t.append(time.perf_counter() - t0)
    print(f"  whole {task} step now: {statistics.median(t):.2f} s")
