"""The ``inference`` task: run a named model on a prompt and prove it, token by token.

No reference answer: the validator asks for the model's token logprobs with a
fixed seed, temperature and ``max_tokens``, then re-runs the same model over
the miner's tokens (sn1.verify). The prompt is a persona's request built from
the offline material (no LLM needed) or a plain instruction about a topic.

``extra["request"]`` holds everything the validator sends and checks: model,
messages, seed, temperature, top_k, top_p, sampler, max_tokens, top_logprobs. Each
queried uid gets its own copy with its own seed (``requests_for``): one
computation answers one uid only.
"""

from __future__ import annotations

import random
import secrets
import time
from typing import Mapping, Sequence

from ..datasets import Context, Dataset, DatasetError, default_datasets
from ..llm.base import DEFAULT_SYSTEM_PROMPT
from ..llm.embedded import GGUF_NAME
from .base import Task, TaskError
from .persona import dress, random_persona

NAME = "inference"
DESC = "get an answer from a named model"
GOAL = "the model's own answer to the following request"
# No 0: greedy decoding gives every seed the same answer, so one computation (or a copy of
# another uid's answer) would answer every uid of the step. The verifier still checks greedy
# requests (temperature 0) for callers that send them.
TEMPERATURES = (0.3, 0.7, 1.0)
# The sampling chain miners must draw with, given the seed (sn1/verify/replay.py replays it);
# miners that cannot follow it refuse the request (400) instead of failing verification.
SAMPLER = "llama.cpp/dist-v1"
TOP_K, TOP_P = 50, 0.95

INSTRUCTIONS = (
    "Write three sentences about {t}.",
    "Explain {t} to a ten-year-old.",
    "List three facts about {t}.",
    "Write a short poem about {t}.",
    "What is {t} known for? Answer briefly.",
    "Describe {t} in one paragraph.",
)
REQUESTS = (
    "can you tell me about {t}?",
    "what's the deal with {t}?",
    "I need a quick overview of {t}.",
    "give me the main points about {t}.",
)


def build_inference_task(rng: random.Random, *, datasets: Mapping[str, Dataset] | None = None,
                         live: bool = False, model: str | None = None, max_tokens: int = 64,
                         top_logprobs: int = 5, system_prompt: str = DEFAULT_SYSTEM_PROMPT) -> Task:
    """One inference task (blocking only while the material is sampled)."""
    t0 = time.perf_counter()
    source = (datasets or default_datasets(live))["wiki"]
    try:
        ctx: Context = source.sample(rng)
    except DatasetError as e:
        raise TaskError(f"{NAME}: no material ({e})") from e
    t1 = time.perf_counter()
    persona = random_persona(rng)
    topic = ctx.title
    if rng.random() < 0.5:
        query = rng.choice(INSTRUCTIONS).format(t=topic)
        challenge = query
    else:
        query = rng.choice(REQUESTS).format(t=topic)
        challenge = dress(rng, persona, query)
    messages = [{"role": "system", "content": system_prompt}, {"role": "user", "content": challenge}]
    model = model or GGUF_NAME.removesuffix(".gguf")    # the embedded model's name (its file's stem)
    request = {"model": model, "messages": messages, "seed": rng.randrange(2**31),
               "temperature": rng.choice(TEMPERATURES), "top_k": TOP_K, "top_p": TOP_P, "sampler": SAMPLER,
               "max_tokens": int(max_tokens), "top_logprobs": int(top_logprobs)}
    return Task(
        name=NAME, desc=DESC, goal=GOAL, query=query, reference="", challenge=challenge,
        persona=persona.to_dict(), context=ctx, rewards=[], penalties=[], static_query=True,
        static_reference=True, challenge_tries=0,
        timings={"context": round(t1 - t0, 4), "query_reference": 0.0,
                 "challenge": round(time.perf_counter() - t1, 4)},
        extra={"request": request},
    )


SEED_RANGE = 2**31            # what every engine accepts as a sampling seed


def requests_for(request: dict, uids: Sequence[int], rng: random.Random | None = None) -> list[dict]:
    """One request per uid: the task's request with a seed of its own, distinct within the step.

    The seeds come from the operating system's generator (``secrets``), never
    from the step's random stream: a miner sees its own seed only and cannot
    learn another uid's, so an answer computed for one uid (a relay, a copy)
    is an answer to the wrong request for every other uid. ``rng`` (tests
    only) replaces the system generator.
    """
    draw = rng.randrange if rng is not None else secrets.randbelow
    seen: set[int] = set()
    out = []
    for _ in uids:
        seed = draw(SEED_RANGE)
        while seed in seen:
            seed = draw(SEED_RANGE)
        seen.add(seed)
        out.append({**request, "seed": seed})
    return out
