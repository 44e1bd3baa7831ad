"""Does grounding help an LLM miner answer date questions, and what does the lookup cost?

Builds --n date_qa tasks as the validator does (embedded SmolLM2 writes the
persona's message; offline material), asks the llama.cpp miner backend each
challenge twice, with `--neuron.grounding offline` and `off` (same seed per
question), and scores both with the task's own rewards (date rule and copy
penalty, the validator's material). Prints the mean reward of each, how often
a fact was found (and how often it was the wrong one), and the lookup's time.

    .venv/bin/python benchmarks/grounding.py [--n 40] [--seed 1] [--max_tokens 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import time
from types import SimpleNamespace as NS

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from sn1.llm.base import GenParams  # noqa: E402
from sn1.llm.llamacpp import LlamaCppEngine  # noqa: E402
from sn1.miner.backends.llm import LlamaCppMiner  # noqa: E402
from sn1.miner.server import DEFAULT_SYSTEM_PROMPT  # noqa: E402
from sn1.rewards import score  # noqa: E402
from sn1.tasks.definitions import build_task  # noqa: E402
from sn1.tasks.material import copy_source  # noqa: E402


async def answer(miner, challenge: str, params: GenParams) -> str:
    messages = [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT}, {"role": "user", "content": challenge}]
    return "".join([p async for p in miner.generate(messages, params)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--max_tokens", type=int, default=64)
    args = ap.parse_args()

    engine = LlamaCppEngine()
    miners = {mode: LlamaCppMiner(NS(wandb=NS(on=False), neuron=NS(grounding=mode)), engine=engine)
              for mode in ("offline", "off")}
    facts = miners["offline"].facts
    rng = random.Random(args.seed)
    rewards: dict[str, list[float]] = {"offline": [], "off": []}
    found = wrong = 0
    lookup_s = []
    for i in range(args.n):
        task = build_task("date_qa", engine, rng)
        t0 = time.perf_counter()
        fact = facts.find(task.challenge)
        lookup_s.append(time.perf_counter() - t0)
        found += fact is not None
        wrong += fact is not None and fact.date != task.reference
        seed = rng.randrange(2**31)
        for mode, miner in miners.items():
            text = asyncio.run(answer(miner, task.challenge, GenParams(max_tokens=args.max_tokens, seed=seed)))
            step = score(task.rewards, task.penalties, task.reference, task.challenge, [text],
                         source=copy_source(task, [text]))
            rewards[mode].append(step.total[0])
        print(f"  {i + 1}/{args.n}  grounded {rewards['offline'][-1]:.2f}  alone {rewards['off'][-1]:.2f}"
              f"  fact {'-' if fact is None else ('ok' if fact.date == task.reference else 'WRONG')}", flush=True)

    print(f"\nmachine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"{args.n} date_qa tasks (seed {args.seed}), SmolLM2-135M via llama.cpp, max_tokens {args.max_tokens}")
    for mode in ("off", "offline"):
        r = rewards[mode]
        print(f"  grounding {mode:<8} mean reward {statistics.mean(r):.3f}   "
              f"share >= 0.5: {sum(x >= 0.5 for x in r) / len(r):.2f}")
    print(f"  facts found {found}/{args.n} (wrong {wrong}); lookup median {statistics.median(lookup_s) * 1e6:.0f} us, "
          f"max {max(lookup_s) * 1e6:.0f} us")


if __name__ == "__main__":
    main()
