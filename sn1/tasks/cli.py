"""`sn1 tasks sample`: see what miners will be asked.

    sn1 tasks sample --task qa --n 5 [--seed S] [--json] [--llm.engine ...] [--neuron.live_data]

Prints, per sample: task, persona, context, query, challenge and reference;
``--json`` prints one JSON array of objects with exactly those keys. The
default LLM is the embedded SmolLM2 (offline, CPU).

Errors are one line on stderr (``error: ...``). Exit status: 0 ok; 2 bad input
(a flag's value, an unknown task or engine); 1 a runtime failure (the engine
cannot load or fails, no material: no task could be built).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import textwrap

from ..config import SEED, Bounded, add_logging_args, get, nest, setup_logging

log = logging.getLogger(__name__)

SAMPLE_KEYS = ("task", "persona", "context", "query", "challenge", "reference")
MAX_N = 1000
TRIES_PER_SAMPLE = 3


def add_parser(subparsers) -> None:
    from .. import datasets, llm
    from .definitions import ALL_NAMES

    p = subparsers.add_parser("tasks", help="the validator's tasks: sample what miners will be asked",
                              description="The validator's tasks (qa, summarization, math, date_qa, "
                                          "debugging, generic_instruction, inference).")
    sub = p.add_subparsers(dest="tasks_command", metavar="ACTION")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    s = sub.add_parser("sample", help="build tasks and print them",
                       description="Build tasks as a validator would and print task, persona, context, "
                                   "query, challenge and reference.")
    s.add_argument("--task", default="qa", choices=ALL_NAMES, help="which task")
    s.add_argument("--n", type=Bounded(int, 1, MAX_N), default=1, help="how many tasks")
    s.add_argument("--seed", type=SEED, default=None, help="seed for reproducible samples")
    s.add_argument("--json", action="store_true", help="print a JSON array")
    llm.add_args(s)
    # Short answers by default: the embedded model runs on CPU.
    s.set_defaults(**{"llm.max_tokens": 160})
    datasets.add_args(s)
    add_logging_args(s)
    s.set_defaults(func=sample_command)
    _one_line_errors(s)


def _one_line_errors(parser: argparse.ArgumentParser) -> None:
    """argparse mistakes as one line and exit 2, like every other bad input."""
    def error(message: str):
        print(f"error: sn1 tasks sample: {message}", file=sys.stderr)
        sys.exit(2)
    parser.error = error   # type: ignore[method-assign]


def _sample(task) -> dict:
    return {"task": task.name, "persona": task.persona, "context": task.context.to_dict(),
            "query": task.query, "challenge": task.challenge, "reference": task.reference}


def _print_text(i: int, n: int, d: dict, out, note: str | None = None) -> None:
    p, c = d["persona"], d["context"]
    fallback = " (live source failed: offline material)" if c["stats"].get("fallback") else ""

    def field(name: str, text: str) -> None:
        body = textwrap.indent(str(text), " " * 11).lstrip()
        print(f"{name + ':':<11}{body}", file=out)

    print(f"=== {i}/{n} {d['task']} ===", file=out)
    field("persona", f"{p['mood']} {p['profile']}, {p['tone']} tone")
    field("context", f"{c['title']} | {c['topic']} | {c['subtopic']}  [{c['source']}]{fallback}\n"
                     f"{c['content']}")
    field("query", d["query"])
    field("challenge", d["challenge"] + (f"\n(the persona's LLM failed: {note}; a template rewrite is used)"
                                         if note else ""))
    field("reference", d["reference"])
    print(file=out)


def sample_command(args: argparse.Namespace) -> int:
    config = nest(args)
    setup_logging(config)

    from .. import datasets, llm
    from ..errors import one_line
    from .base import TaskError
    from .definitions import build_task

    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    try:
        engine = llm.from_config(config)
    except llm.LLMError as e:
        print(f"error: the {get(config, 'llm.engine', 'llamacpp')} engine failed to start: {one_line(e)}",
              file=sys.stderr)
        return 1
    params = llm.gen_params(config)
    pool = datasets.from_config(config)
    live = bool(args.__dict__.get("neuron.live_data"))
    log.info("sampling %d %s task(s) with seed %d and the %s engine", args.n, args.task, seed, engine.name)

    samples = []
    for i in range(1, args.n + 1):
        for attempt in range(1, TRIES_PER_SAMPLE + 1):
            try:
                task = build_task(args.task, engine, rng, live=live, params=params, datasets=pool)
                break
            except TaskError as e:
                log.warning("sample %d: %s", i, e)
                if attempt == TRIES_PER_SAMPLE:
                    print(f"error: could not build a {args.task} task: {one_line(e)}", file=sys.stderr)
                    return 1
        d = _sample(task)
        if args.json:
            samples.append(d)
        else:
            _print_text(i, args.n, d, sys.stdout, task.challenge_fallback)
            sys.stdout.flush()
    if args.json:
        json.dump(samples, sys.stdout, indent=2, ensure_ascii=False)
        print()
    return 0
