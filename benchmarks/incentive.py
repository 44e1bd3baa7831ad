"""Who earns the weight? A tournament of honest LLM work against no-LLM gaming miners.

A sandbox subnet on this machine: one validator on the embedded LLM, one
honest miner on the embedded LLM (llama.cpp SmolLM2, as `sn1 miner` runs it:
date questions grounded in the offline encyclopedia), and miners that run no
LLM at all, each playing one trick a gaming miner would try (see STRATEGIES).
All are real processes talking signed HTTP on 127.0.0.1, as in `sn1 demo`.
After ``--steps`` steps per seed it prints, per miner, the mean reward per
task, the validator's score, the weight on chain and the incentive, and the
share of weight that went to miners running no LLM.

    .venv/bin/python benchmarks/incentive.py --seeds 1 2 3 --steps 40 [--path /tmp/incentive]
    .venv/bin/python benchmarks/incentive.py --replay RUN_DIR     # re-score a run's events
    .venv/bin/python benchmarks/incentive.py --replay RUN_DIR --extra date_lookup title_template

``--replay`` re-scores the events a run logged (same challenges, same
completions) with the reward code on PYTHONPATH, and recomputes scores (EMA)
and weights the way the validator does: run it with an older checkout first
on the path to compare two reward rules on identical miner behaviour.
``--extra`` adds strategies the run lacked: each answers every logged
challenge as a new uid (a strategy is a function of the challenge, so this
is what a live run would have scored them).

The strategy miners are test miners defined here, never user-facing
backends: `incentive.py miner STRATEGY <sn1 miner args>` starts one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
import zlib
from collections import Counter, defaultdict
from functools import lru_cache

NETUID = 1
BLOCK_TIME = 0.5
TEMPO = 20
EPOCH_LENGTH = 10
TASKS = ["summarization", "qa", "math", "date_qa", "inference"]
TASK_P = ["0.2", "0.2", "0.2", "0.2", "0.2"]     # inference: the proof of work (no proof, no pay)
# One llama.cpp thread: on a shared 2-core machine two threads wait on each other at every
# barrier when one is descheduled (0 tokens in 12 s at load 20 with the default).
HONEST = ["--backend", "llamacpp", "--neuron.temperature", "0.2", "--neuron.max_tokens", "128",
          "--neuron.n_threads", "1"]

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_STOP = set("""a an the and or but if of to in on at by for with from as is are was were be been being
do does did done have has had i you he she it we they me my your his her its our their this that these those
what which who whom whose when where why how can could would should will shall may might must not no yes
so than then there here about into over under up down out off again just also very too any some all each
please thanks thank hi hello hey know tell want need like get got help question answer exactly exact
date day one""".split())


# --- material a gaming miner can read: the offline encyclopedia --------------------------------

@lru_cache(maxsize=1)
def _index():
    from sn1.datasets.wiki_offline import articles

    arts = [a for a in articles() if len(a["extract"].split()) >= 20]
    postings: dict[str, list[int]] = defaultdict(list)
    for i, a in enumerate(arts):
        for w in set(_WORD.findall((a["title"] + " " + a["extract"]).lower())):
            if w not in _STOP:
                postings[w].append(i)
    idf = {w: math.log(len(arts) / len(p)) for w, p in postings.items()}
    titles = [set(_WORD.findall(a["title"].lower())) for a in arts]
    return arts, postings, idf, titles


def grounding_article(challenge: str) -> dict | None:
    """The encyclopedia article the challenge is most likely about (idf-weighted word overlap)."""
    arts, postings, idf, titles = _index()
    words = {w for w in _WORD.findall(challenge.lower()) if w not in _STOP}
    score: Counter = Counter()
    for w in words:
        for i in postings.get(w, ()):
            score[i] += idf[w]
    if not score:
        return None
    best = max(score, key=lambda i: score[i] + 5.0 * (bool(titles[i]) and titles[i] <= words))
    return arts[best]


def keywords(challenge: str) -> list[str]:
    seen: dict[str, None] = {}
    for w in _WORD.findall(challenge):
        if w.lower() not in _STOP and len(w) > 2:
            seen.setdefault(w, None)
    return list(seen)


def filler(n_words: int, seed: int) -> str:
    """On-topic-looking prose from random articles, as padding."""
    arts = _index()[0]
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < n_words:
        out += rng.choice(arts)["extract"].split()
    return " ".join(out[:n_words])


# --- strategies: challenge -> completion (no LLM) ----------------------------------------------

def _article(ch: str) -> str:
    a = grounding_article(ch)
    return a["extract"] if a else ch


def _numbers_and_dates(ch: str) -> str:
    nums = re.findall(r"-?\d+(?:\.\d+)?", ch)
    rng = random.Random(ch)
    dates = [f"{rng.randint(1, 28)} {m} {rng.randint(1500, 2020)}" for m in
             ("January", "March", "May", "July", "September", "November")]
    rounds = ["10", "100", "1000", "0.5", "2", "12", "24", "60", "365"]
    tail = nums[-1] if nums else "42"
    return (f"Possible answers: {', '.join(nums + rounds)}. Dates: {'; '.join(dates)}; "
            f"01/01/2000, 12/31/1999. The answer is {tail}")


def _generic(ch: str) -> str:
    """Answer-shaped prose around the challenge's keywords, with nothing in it."""
    k = (keywords(ch) + ["this", "it", "that"])[:3]
    return (f"Great question about {k[0]}. In short, {k[0]} is an important subject, and {k[1]} is closely "
            f"related to {k[2]}. Experts generally agree that {k[0]} matters for several reasons: it shapes "
            f"how we understand {k[1]}, it has a long history, and it continues to influence {k[2]} today. "
            f"To summarise, {k[0]} is best understood through {k[1]} and {k[2]}.")


def _sentences(text: str) -> list[str]:
    return [x for x in re.split(r"(?<=[.!?])\s+", text) if x.strip()]


def _extract(ch: str) -> str:
    """Extractive QA without a model: the grounding article's two sentences sharing most words with the challenge."""
    a = grounding_article(ch)
    if not a:
        return ch
    asked = set(keywords(ch.lower()))
    ranked = sorted(_sentences(a["extract"]), key=lambda x: -len(asked & set(_WORD.findall(x.lower()))))
    return " ".join(ranked[:2])


def _reworded(ch: str) -> str:
    """The article with every 4th word dropped: no word 5-gram of it survives."""
    return " ".join(w for i, w in enumerate(_article(ch).split()) if i % 4 != 3)


def _shuffled(ch: str) -> str:
    """The article's words shuffled within each sentence: its vocabulary, none of its phrasing."""
    rng = random.Random(ch)
    return " ".join(" ".join(rng.sample(x.split(), len(x.split()))) for x in _sentences(_article(ch)))


# Latin letters -> Cyrillic look-alikes: the text reads the same, its words are other strings.
_HOMOGLYPHS = str.maketrans("aceopxyAEOPCHKMT", "асеорхуАЕОРСНКМТ")


def _typos(ch: str) -> str:
    """The article with two letters swapped in every third word: no 5-gram and a third of its words gone."""
    out = []
    for i, w in enumerate(_article(ch).split()):
        out.append(w[0] + w[2] + w[1] + w[3:] if i % 3 == 2 and len(w) > 3 else w)
    return " ".join(out)


def _template(ch: str) -> str:
    """A one-line template from the article's title and short description (no LLM, no copying)."""
    a = grounding_article(ch)
    if not a:
        return ch
    return f"{a['title']} is {a.get('description') or 'a notable subject'}. In short: {a['title']}."


_DATE = re.compile(r"\b(?:\d{1,2} (?:January|February|March|April|May|June|July|August|September|October|"
                   r"November|December) \d{3,4}|(?:January|February|March|April|May|June|July|August|"
                   r"September|October|November|December) \d{1,2}, \d{3,4})\b")


def _date_lookup(ch: str) -> str:
    """Date questions answered by lookup: the dated sentence of the public material closest to the challenge."""
    from sn1.datasets.wiki_offline import dated_events

    words = set(keywords(ch.lower()))
    best = max(dated_events(), key=lambda e: len(words & set(_WORD.findall(e[3].lower()))), default=None)
    if best and words & set(_WORD.findall(best[3].lower())):
        return f"It happened on {best[2]}."
    return _article(ch)


STRATEGIES = {
    "echo": lambda ch: ch,
    "echo_polite": lambda ch: ("Great question, thanks for asking! Let me restate it to be sure: "
                               f"{ch} I hope this helps; let me know if you need anything else."),
    "echo_shuffled": lambda ch: " ".join(random.Random(ch).sample(ch.split(), len(ch.split()))),
    "keywords": lambda ch: " ".join(keywords(ch) * 3),
    "article": _article,
    "article_padded": lambda ch: _article(ch) + "\n\n" + filler(1500, zlib.crc32(ch.encode("utf-8", "replace"))),
    "article_head": lambda ch: " ".join(_article(ch).split()[:60]),
    "phrase": lambda ch: "That is an excellent question! Let me think about it carefully and answer it.",
    "empty": lambda ch: "",
    "number_spam": _numbers_and_dates,
    "constant_guess": lambda ch: "The answer is 1.",   # the most frequent maths answer, always
    "generic_filler": _generic,
    # disguised pastes and look-ups: each defeats one naive rule
    "article_extract": _extract,
    "article_reworded": _reworded,
    "article_shuffled": _shuffled,
    "article_disguised": lambda ch: " ".join("\u200b".join(w) for w in _article(ch).split()),
    "article_homoglyph": lambda ch: _article(ch).translate(_HOMOGLYPHS),
    "article_typos": _typos,
    "title_template": _template,
    "date_lookup": _date_lookup,
}


# Strategies that answer by looking the fact up in the public material (a date, an article's
# one-line description) rather than by pasting it: a correct looked-up answer is an answer to
# any rule that reads text, so these are reported apart (--extra / --strategies), not in the default run.
LOOKUPS = ("date_lookup", "title_template")
# Issue 17: the date look-up runs by default, and so does a free rider relaying the honest miner
# (a live-only strategy: it is not a function of the challenge, so --replay cannot add it).
FREE_RIDER = "free_rider"
DEFAULT = (*(n for n in STRATEGIES if n != "title_template"), FREE_RIDER)
NO_MODEL = set(STRATEGIES) | {FREE_RIDER}       # every miner but the honest one runs no model


class StrategyMiner:
    """A test miner (no model): answers with STRATEGIES[name](last user message)."""

    strategy = "echo"
    name = "strategy"

    def __init__(self, config):
        self.config = config

    async def generate(self, messages, params):
        users = [m["content"] for m in messages if m.get("role") == "user"]
        text = await asyncio.to_thread(STRATEGIES[self.strategy], users[-1] if users else "")
        # big pieces: a gaming miner is not bound by its token count
        for i in range(0, len(text), 400):
            await asyncio.sleep(0)
            yield text[i:i + 400]


class FreeRider:
    """A registered hotkey that runs no model: it re-signs each request it gets with its own key
    (sn1.protocol.auth), sends it to the honest miner named by ``FREE_RIDER_TARGET``
    ("ip:port hotkey") and streams that miner's text and logprobs back as its own answer.

    Before issue 17 honest miners served it (any registered hotkey) and the validator sent it
    the same seed as the honest uid, so the copy verified and was paid in full.
    """

    name = "free_rider"
    supports_logprobs = True          # whatever the honest miner can prove, it forwards
    samplers = ("llama.cpp/dist-v1",)  # and it claims the sampler the honest miner runs
    model_name = None                 # any model: it is not the one running it

    def __init__(self, config):
        import httpx

        from sn1.chain import load_wallet
        from sn1.protocol.auth import hotkey_signer

        target = os.environ.get("FREE_RIDER_TARGET", "").split()
        if len(target) != 2:
            raise SystemExit("free_rider: set FREE_RIDER_TARGET='ip:port hotkey' of the miner to relay")
        self.endpoint, self.target_hotkey = target
        self.signer = hotkey_signer(load_wallet(config))
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(60.0), trust_env=False)
        self.relayed = self.refused = 0

    async def generate(self, messages, params):
        from sn1.llm.base import Piece
        from sn1.protocol.auth import sign_headers
        from sn1.protocol.sse import SSEParser
        from sn1.protocol.wire import CHAT_PATH, decode_chunk_with_logprobs, request_body

        body = request_body(messages, stream=True, timeout=30.0, max_tokens=params.max_tokens,
                            temperature=params.temperature, top_p=params.top_p, top_k=params.top_k,
                            seed=params.seed, stop=params.stop, top_logprobs=params.logprobs)
        headers = {"content-type": "application/json", "accept": "text/event-stream",
                   **sign_headers(self.signer, body, self.target_hotkey)}
        parser = SSEParser(max_line=1 << 18, max_event=1 << 18, max_data_lines=64, max_events=1 << 14)
        async with self.http.stream("POST", f"http://{self.endpoint}{CHAT_PATH}", content=body,
                                    headers=headers) as r:
            if r.status_code != 200:
                self.refused += 1
                print(f"[free_rider] refused by the honest miner: {r.status_code} "
                      f"{(await r.aread())[:200]!r}", flush=True)
                return
            self.relayed += 1
            async for raw in r.aiter_raw():
                for payload in parser.feed(raw):
                    if payload == b"[DONE]":
                        return
                    text, _, _, lps = decode_chunk_with_logprobs(payload)
                    if text:
                        yield Piece(text, lps) if params.logprobs is not None else text

    async def aclose(self):
        await self.http.aclose()


def serve_miner(strategy: str, argv: list[str]) -> int:
    from sn1.cli import main as sn1_main
    from sn1.miner import backends

    if strategy == FREE_RIDER:
        backends.BACKENDS["free-rider"] = f"{__name__}:FreeRider"
        return sn1_main(["miner", "--backend", "free-rider", *argv])
    cls = type(f"Strategy_{strategy}", (StrategyMiner,), {"strategy": strategy, "name": strategy})
    globals()[cls.__name__] = cls
    backends.BACKENDS[f"strategy-{strategy}"] = f"{__name__}:{cls.__name__}"
    return sn1_main(["miner", "--backend", f"strategy-{strategy}", *argv])


# --- one run -----------------------------------------------------------------------------------

def run_seed(seed: int, steps: int, root: str, timeout: float, max_tokens: int,
             strategies: list[str] | None = None) -> str:
    from sn1.chain.sandbox import SandboxChain
    from sn1.demo import Procs
    from sn1.testing import free_port, make_wallet, wait_for_port

    run_dir = os.path.join(root, f"seed{seed}")
    if os.path.isdir(run_dir):
        shutil.rmtree(run_dir)
    sandbox, wallets, logs = (os.path.join(run_dir, d) for d in ("sandbox", "wallets", "logs"))
    os.makedirs(logs)
    chain = SandboxChain.init(sandbox, NETUID, tempo=TEMPO, block_time=BLOCK_TIME,
                              weights_rate_limit=EPOCH_LENGTH // 2, immunity_period=1000)
    common = ["--subtensor.network", "sandbox", "--sandbox.path", sandbox, "--netuid", str(NETUID),
              "--wallet.path", wallets]
    v_uid = chain.register(make_wallet(wallets, "validator"), stake=1000.0)
    kinds: dict[int, str] = {}
    procs = Procs(logs)
    try:
        for name in ["honest", *(strategies or DEFAULT)]:
            uid = chain.register(make_wallet(wallets, name), stake=0.0)
            kinds[uid] = name
        honest_at = None
        for name in kinds.values():      # the honest miner first: the free rider relays it
            for attempt in range(3):   # a free port can be taken by another job before we bind it
                port = free_port()
                mine = ["--wallet.name", name, "--wallet.hotkey", "default", "--axon.port", str(port), *common]
                if name == "honest":
                    proc = procs.start("miner-honest", ["miner", *HONEST, *mine])
                    honest_at = f"127.0.0.1:{port} {make_wallet(wallets, name).hotkey.ss58_address}"
                else:
                    proc = _start_script(procs, f"miner-{name}", [os.path.abspath(__file__), "miner", name, *mine],
                                         env={"FREE_RIDER_TARGET": honest_at or ""})
                try:
                    wait_for_port(port, timeout=180, proc=proc)
                    break
                except AssertionError:
                    if attempt == 2:
                        raise
        full_path = os.path.join(run_dir, "validator")
        t0 = time.monotonic()
        vproc = procs.start("validator", [
            "validator", *common, "--wallet.name", "validator", "--wallet.hotkey", "default",
            "--neuron.full_path", full_path, "--neuron.max_steps", str(steps),
            "--neuron.timeout", str(timeout), "--neuron.epoch_length", str(EPOCH_LENGTH),
            "--neuron.sample_size", "50", "--neuron.axon_off", "--wandb.off",
            "--neuron.query_max_tokens", str(max_tokens), "--neuron.seed", str(seed),
            "--neuron.tasks", *TASKS, "--neuron.task_p", *TASK_P, "--neuron.inference_threads", "1",
        ])
        rc = vproc.wait()
        if rc != 0:
            raise SystemExit(f"validator exited with {rc}; see {logs}/validator.log")
        time.sleep(TEMPO * BLOCK_TIME + 1)   # one more consensus epoch on the final weights
        print(f"[incentive] seed {seed}: {steps} steps in {time.monotonic() - t0:.0f} s", flush=True)
    finally:
        procs.stop()
    with open(os.path.join(run_dir, "kinds.json"), "w") as f:
        json.dump({"validator_uid": v_uid, "kinds": kinds}, f)
    report(run_dir, chain)
    return run_dir


def _start_script(procs, name: str, cmd: list[str], env: dict | None = None):
    logf = open(os.path.join(procs.logdir, f"{name}.log"), "w")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen([sys.executable, *cmd], stdout=logf, stderr=subprocess.STDOUT, env=env)
    procs.items.append((name, proc))
    return proc


# --- reporting -----------------------------------------------------------------------------------

def _table(kinds: dict[int, str], per: dict, scores: dict, weight: dict, incentive: dict, tasks: list[str],
           title: str) -> dict:
    print(f"\n{title}")
    head = f"{'uid':>3}  {'miner':<16}" + "".join(f"{t[:13]:>14}" for t in tasks) + \
        f"{'score':>8}{'weight':>8}{'incent.':>9}"
    print(head)
    print("-" * len(head))
    # ranked by what pays: the weight (zero without proof of work), then the validator's score
    rows = sorted(kinds.items(), key=lambda kv: (-weight.get(kv[0], 0.0), -scores.get(kv[0], 0.0)))
    for uid, name in rows:
        cells = "".join(f"{(format(sum(v) / len(v), '.3f') if (v := per[uid].get(t)) else '-'):>14}"
                        for t in tasks)
        inc = incentive.get(uid)
        print(f"{uid:>3}  {name:<16}{cells}{scores.get(uid, 0.0):>8.4f}{weight.get(uid, 0.0):>8.4f}"
              f"{'n/a' if inc is None else format(inc, '.4f'):>9}")
    total = sum(weight.get(u, 0.0) for u in kinds) or 1.0
    honest = [u for u, n in kinds.items() if n == "honest"]
    no_llm = sum(weight.get(u, 0.0) for u, n in kinds.items() if n != "honest") / total
    h_w = sum(weight.get(u, 0.0) for u in honest)
    echo_w = sum(weight.get(u, 0.0) for u, n in kinds.items() if n == "echo")
    rank = [n for _, n in rows].index("honest") + 1 if honest else None
    summary = {"no_llm_share": no_llm, "honest_rank": rank,
               "echo_over_honest": (echo_w / h_w) if h_w else float("inf"),
               "rows": {n: {"score": scores.get(u, 0.0), "weight": weight.get(u, 0.0),
                            "tasks": {t: (sum(v) / len(v) if (v := per[u].get(t)) else None) for t in tasks}}
                        for u, n in kinds.items()}}
    print(f"weight to no-LLM miners: {no_llm:.1%}; honest ranks {rank}; "
          f"echo weight / honest weight: {summary['echo_over_honest']:.1%}")
    return summary


def report(run_dir: str, chain) -> dict:
    from sn1.validator import state as state_mod
    from sn1.validator.events import read_events

    meta = json.load(open(os.path.join(run_dir, "kinds.json")))
    kinds = {int(k): v for k, v in meta["kinds"].items()}
    events = read_events(os.path.join(run_dir, "validator", "events.jsonl"))
    per: dict = defaultdict(lambda: defaultdict(list))
    tasks: list[str] = []
    for ev in events:
        tasks += [ev["task"]] if ev["task"] not in tasks else []
        for uid, r in zip(ev["uids"], ev["rewards"]):
            per[uid][ev["task"]].append(r or 0.0)
    st = state_mod.load(os.path.join(run_dir, "validator")).scores
    weight = chain.weights().get(meta["validator_uid"], {})
    mg = chain.metagraph()
    counts = Counter(ev["task"] for ev in events)
    summary = _table(kinds, per, {u: float(st[u]) for u in kinds}, weight,
                     {u: mg.neurons[u].incentive for u in kinds}, tasks,
                     f"{os.path.basename(run_dir)}: {len(events)} steps "
                     f"({', '.join(f'{t} {c}' for t, c in counts.items())}); live run")
    with open(os.path.join(run_dir, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    return summary


def replay(run_dir: str, alpha: float = 0.1, decay: float = 0.001, extra: list[str] = ()) -> dict:
    """Re-score a run's logged completions with the reward code on the path; EMA and weights as the validator.
    `extra`: strategies the run did not have, answering each logged challenge as new uids."""
    import numpy as np

    from sn1.chain.base import Hyperparams
    from sn1.rewards import score
    from sn1.tasks.definitions import TASKS as DEFS
    from sn1.validator import scores as scores_mod
    from sn1.validator.events import read_events
    from sn1.config import nest
    from sn1.validator.state import State
    from sn1.validator.weights import process_weights, proof_gate

    meta = json.load(open(os.path.join(run_dir, "kinds.json")))
    kinds = {int(k): v for k, v in meta["kinds"].items()}
    events = read_events(os.path.join(run_dir, "validator", "events.jsonl"))
    added = {max(kinds) + 1 + i: name for i, name in enumerate(extra)}
    kinds.update(added)
    n = max(kinds) + 1
    s = np.zeros(n)
    proofs = State(scores=s, hotkeys=[str(u) for u in range(n)])   # no proof, no pay, as the validator
    per: dict = defaultdict(lambda: defaultdict(list))
    clean: dict = defaultdict(list)   # the reference itself as a completion: a correct answer
    tasks: list[str] = []
    for ev in events:
        spec = DEFS[ev["task"]]
        tasks += [ev["task"]] if ev["task"] not in tasks else []
        ev = dict(ev, uids=list(ev["uids"]) + list(added),
                  completions=list(ev["completions"]) + [STRATEGIES[x](ev["challenge"]) for x in added.values()])
        comps = [c or "" for c in ev["completions"]] + [ev["reference"]]
        if ev["task"] == "inference":    # verified, not read: the logged verdicts stand (extras: no proof)
            total = list(ev["rewards"]) + [0.0] * (len(added) + 1)
        else:
            total = None
        try:   # the validator passes the task's material to source models; older code takes no source
            total = total or score(list(spec.rewards), list(spec.penalties), ev["reference"], ev["challenge"],
                                   comps, _copy_source(spec, ev, comps)).total
        except TypeError:
            total = score(list(spec.rewards), list(spec.penalties), ev["reference"], ev["challenge"], comps).total
        clean[ev["task"]].append(total[-1])
        for uid, r in zip(ev["uids"], total[:-1]):
            per[uid][ev["task"]].append(r)
        s = scores_mod.update(s, ev["uids"], total[:-1], alpha=alpha, decay_alpha=decay)
        if ev["task"] == "inference" and ev.get("verify_ok"):
            proofs.record_proofs(ev["uids"][:len(ev["verify_ok"])], ev["verify_ok"])
        proofs.step += 1
    proofs.scores = s
    uids, w = process_weights(proof_gate(nest({"neuron.tasks": ["inference"], "neuron.task_p": [1.0]}), proofs),
                              Hyperparams())
    weight = dict(zip(uids, w))
    summary = _table(kinds, per, {u: float(s[u]) for u in kinds}, weight, {}, tasks,
                     f"{os.path.basename(run_dir)}: {len(events)} steps re-scored with {_rewards_origin()}")
    summary["clean"] = {t: sum(v) / len(v) for t, v in clean.items()}
    print("reference as a completion (clean case), mean total reward: "
          + ", ".join(f"{t} {v:.3f}" for t, v in summary["clean"].items()))
    return summary


def _copy_source(spec, ev: dict, completions: list[str]) -> str:
    """What the validator gives `source_copy`: sn1.tasks.material where this checkout has it."""
    own = (ev.get("context") or {}).get("content", "")
    try:
        from sn1.datasets import Context
        from sn1.tasks.base import Task
        from sn1.tasks.material import copy_source
    except ImportError:
        return own
    task = Task(ev["task"], "", "", "", ev["reference"], ev["challenge"], {}, Context.from_dict(ev["context"]),
                list(spec.rewards), list(spec.penalties))
    return copy_source(task, completions)


def _rewards_origin() -> str:
    import sn1

    return os.path.dirname(os.path.dirname(os.path.abspath(sn1.__file__)))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["miner"]:
        return serve_miner(argv[1], argv[2:])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--path", default="/tmp/sn1-incentive", help="folder for the runs (each seed's folder is wiped)")
    p.add_argument("--timeout", type=float, default=12.0, help="validator timeout per step")
    p.add_argument("--max_tokens", type=int, default=192, help="max_tokens the validator asks of miners")
    p.add_argument("--replay", nargs="+", metavar="RUN_DIR", help="re-score these runs' events instead")
    p.add_argument("--extra", nargs="+", choices=sorted(STRATEGIES), metavar="STRATEGY",
                   help="with --replay: strategies the run lacked, answering its logged challenges")
    p.add_argument("--strategies", nargs="+", choices=sorted(NO_MODEL), metavar="STRATEGY",
                   help="the no-LLM miners of a live run (default: all but title_template, "
                        "with the free rider)")
    p.add_argument("--json", help="write the summaries here")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # SIGTERM (a killed benchmark) unwinds like Ctrl-C, so run_seed's `finally` stops the miners
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    out = {}
    if args.replay:
        for d in args.replay:
            out[d] = replay(d, extra=args.extra or [])
    else:
        for seed in args.seeds:
            d = run_seed(seed, args.steps, os.path.expanduser(args.path), args.timeout, args.max_tokens,
                         args.strategies)
            out[d] = json.load(open(os.path.join(d, "summary.json")))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
