"""The validator's main loop (spec §5): steps, resync, weights, state.

One step = build a task (LLM, in a thread) -> pick uids -> stream the
challenge to all of them under one deadline -> score (in a thread) -> fold
into the moving-average scores -> log one event. Between rounds: resync the
metagraph, set weights every ``epoch_length`` blocks, save the state.

A round is scored (and folded, logged, saved) while the next round's tasks
are built and its miners queried: an inference step's verification takes
seconds of forward passes. At most one round is being scored; rounds fold in
order; a stop (SIGINT/SIGTERM) waits for the round being scored.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np

from .. import __spec_version__, __version__
from ..chain import Chain, ChainError, Metagraph, RateLimited, connect, load_wallet, register_hint
from ..config import expand, get
from ..errors import UsageError, one_line
from ..protocol import metrics as metrics_port
from . import inference
from . import scores as scores_mod
from . import state as state_mod
from .events import EventLog, WandbLog
from .metrics import ValidatorMetrics
from .uids import sample_uids
from .weights import process_weights, proof_gate

log = logging.getLogger("sn1.validator")

MAX_TASK_TRIES = 5


def default_full_path(config) -> str:
    root = "~/.sn1/validators"
    return os.path.join(root, get(config, "wallet.name"), get(config, "wallet.hotkey"),
                        f"netuid{get(config, 'netuid')}")


def check_task_probabilities(tasks: list[str], task_p: list[float]) -> None:
    if len(tasks) != len(task_p):
        raise UsageError(f"--neuron.tasks has {len(tasks)} names but --neuron.task_p {len(task_p)} values")
    if any(p < 0 for p in task_p) or abs(sum(task_p) - 1.0) > 1e-6:
        raise UsageError(f"--neuron.task_p must be non-negative and sum to 1 (got {sum(task_p):g})")
    from ..tasks import ALL_NAMES

    unknown = [t for t in tasks if t not in ALL_NAMES]
    if unknown:
        raise UsageError(f"unknown task {unknown[0]!r}; known tasks: {', '.join(ALL_NAMES)}")


@dataclass
class Backoff:
    """Exponential backoff for chain calls that failed (weights): never fatal."""

    base: float = 2.0
    cap: float = 300.0
    failures: int = 0
    not_before: float = 0.0

    def ready(self) -> bool:
        return time.monotonic() >= self.not_before

    def failed(self) -> float:
        self.failures += 1
        delay = min(self.cap, self.base * 2 ** (self.failures - 1))
        self.not_before = time.monotonic() + delay
        return delay

    def succeeded(self) -> None:
        self.failures = 0
        self.not_before = 0.0


@dataclass
class Queried:
    """A step between its queries and its scoring (Validator.query -> Validator.finish)."""

    task: object
    uids: list[int]
    hotkeys: list[str]              # at query time: a resync before the fold may replace some
    results: list
    block: int
    netuid: int
    t_start: float
    t_task: float
    t_query: float
    requests: list | None = None    # inference: the request each uid was sent (its own seed)
    t_score0: float = 0.0           # scoring started (after the previous round's)
    t_score: float = 0.0


@dataclass
class Validator:
    config: object
    chain: Chain
    wallet: object
    uid: int
    metagraph: Metagraph
    state: state_mod.State
    folder: str
    llm: object = None
    llm_params: object = None          # sampling defaults of the validator's LLM (--llm.*)
    datasets: dict | None = None       # material for tasks (--neuron.live_data, --data.*)
    verifier: object = None            # the inference task's model (sn1.verify.Verifier)
    verifier_loading: object = None    # its background load (a daemon thread), started at start-up
    rng: random.Random = field(default_factory=random.Random)
    events: EventLog | None = None
    wandb: WandbLog | None = None
    weights_backoff: Backoff = field(default_factory=Backoff)
    weights_not_before: int = 0         # first block the chain's weights rate limit allows
    in_flight: list = field(default_factory=list)          # numbers of the steps running now
    io_lock: threading.Lock = field(default_factory=threading.Lock)   # state and events writes
    last_sync: float = 0.0
    stopping: bool = False
    metrics: ValidatorMetrics = field(default_factory=ValidatorMetrics)

    # ---- task -------------------------------------------------------------------------
    def pick_task_name(self, rng: random.Random) -> str:
        tasks = get(self.config, "neuron.tasks")
        probs = get(self.config, "neuron.task_p")
        return rng.choices(tasks, weights=probs, k=1)[0]

    def make_task(self, rng: random.Random):
        """Blocking: choose and build a task; a failed build picks again (bounded)."""
        from ..tasks import build_task

        errors = []
        for _ in range(MAX_TASK_TRIES):
            name = self.pick_task_name(rng)
            try:
                return build_task(name, self.llm, rng, params=self.llm_params, datasets=self.datasets,
                                  options=inference.task_options(self.config) if name == "inference" else None)
            except Exception as e:  # a bad sample or a bad generation: try another
                log.warning("building task %s failed: %s", name, e)
                errors.append(f"{name}: {e}")
        raise RuntimeError(f"no task could be built in {MAX_TASK_TRIES} tries: {errors[-1]}")

    # ---- one step ---------------------------------------------------------------------
    async def forward(self, client, step_seed: int) -> dict | None:
        """One whole step: query(), then finish()."""
        q = await self.query(client, step_seed)
        return None if q is None else await self.finish(q)

    async def query(self, client, step_seed: int) -> "Queried | None":
        """A step's task and the miners' answers (None: no miner to ask); scored by finish()."""
        from ..llm.base import GenParams

        rng = random.Random(step_seed)
        t_start = time.monotonic()
        task = await asyncio.to_thread(self.make_task, rng)
        t_task = time.monotonic()

        mg = self.metagraph
        uids = sample_uids(
            mg, get(self.config, "neuron.sample_size"), rng, self_uid=self.uid,
            vpermit_tao_limit=get(self.config, "neuron.vpermit_tao_limit"),
            unique_coldkeys=get(self.config, "neuron.query_unique_coldkeys"),
            unique_ips=get(self.config, "neuron.query_unique_ips"),
        )
        if not uids:
            log.warning("no miner is serving an endpoint; waiting")
            await asyncio.sleep(min(5.0, get(self.config, "neuron.timeout")))
            return None

        messages = [{"role": "user", "content": task.challenge}]
        params = GenParams(max_tokens=get(self.config, "neuron.query_max_tokens"))
        model = None
        requests = None
        if task.name == "inference":     # logprobs asked for, answers verified (sn1.verify)
            # each uid its own seed: one computation answers one uid only
            requests = inference.requests_for(task, uids)
            results = await client.query_each([mg.neurons[u] for u in uids],
                                              [inference.request_args(r) for r in requests],
                                              timeout=get(self.config, "neuron.timeout"))
        else:
            results = await client.query([mg.neurons[u] for u in uids], messages, params,
                                         timeout=get(self.config, "neuron.timeout"), model=model)
        return Queried(task, uids, [mg.neurons[u].hotkey for u in uids], results, mg.block, mg.netuid,
                       t_start, t_task, time.monotonic(), requests)

    async def finish(self, q: "Queried") -> dict:
        """Score a queried step and fold it into the scores: the event."""
        return self.fold(q, await self.score(q))

    async def score(self, q: "Queried"):
        """A queried step's rewards (blocking work in a worker thread)."""
        q.t_score0 = time.monotonic()
        if q.task.name == "inference":
            self.verifier = self.verifier or inference.make_verifier(self.config)
            rewards = await asyncio.to_thread(inference.score, self.verifier, q.task, q.results, q.requests)
        else:
            rewards = await asyncio.to_thread(_score_step, q.task, [r.completion for r in q.results])
        q.t_score = time.monotonic()
        return rewards

    def fold(self, q: "Queried", rewards) -> dict:
        """Fold a scored step into the moving averages (in step order) and build its event."""
        task, uids, results, t_start, t_task, t_query = q.task, q.uids, q.results, q.t_start, q.t_task, q.t_query
        t_score = q.t_score
        wall = time.time() - time.monotonic()
        completions = [r.completion for r in results]
        # A resync may have run since the query (the previous round's scoring overlaps it): a uid
        # whose hotkey changed since is not credited with its predecessor's answer.
        hk = self.state.hotkeys
        keep = [i for i, u in enumerate(uids) if u < len(hk) and hk[u] == q.hotkeys[i]]
        self.state.scores = scores_mod.update(
            self.state.scores, [uids[i] for i in keep], [rewards.total[i] for i in keep],
            alpha=get(self.config, "neuron.moving_average_alpha"),
            decay_alpha=get(self.config, "neuron.decay_alpha"),
        )
        if q.requests is not None:       # no proof, no pay
            self.state.record_proofs([uids[i] for i in keep], [rewards.verdicts[i].ok for i in keep])
        self.state.step += 1

        event = {
            "step": self.state.step,
            "block": q.block,
            "netuid": q.netuid,
            "validator_uid": self.uid,
            "step_time": t_score - t_start,
            "task_time": t_task - t_start,
            "query_time": t_query - t_task,
            "score_time": t_score - q.t_score0,     # the wait for the previous step's scoring left out
            # unix times: [miners queried from, to] and [scored from, to] (the next step's queries
            # run while this one is scored)
            "query_window": [round(wall + t_task, 3), round(wall + t_query, 3)],
            "score_window": [round(wall + q.t_score0, 3), round(wall + t_score, 3)],
            **task.to_event(),
            "uids": uids,
            "hotkeys": q.hotkeys,
            "completions": completions,
            "status": [r.status for r in results],
            "status_codes": [r.status_code for r in results],
            "status_messages": [r.message for r in results],
            "process_times": [r.process_time for r in results],
            "time_to_first_chunk": [r.time_to_first_chunk for r in results],
            "chunk_times": [r.chunk_times for r in results],
            "truncated": [r.truncated for r in results],
            "scores": [float(self.state.scores[u]) for u in uids],   # after this step (sn1 leaderboard)
            **rewards.to_event(),      # "rewards" (totals), then every model's raw/normalised/timings
        }
        if q.requests is not None:
            event["seeds"] = [r["seed"] for r in q.requests]     # the seed each uid was sent
        return event

    # ---- between steps ----------------------------------------------------------------
    async def resync(self) -> None:
        mg = await asyncio.to_thread(self.chain.metagraph)
        if mg.hotkeys != self.state.hotkeys:
            changed = sum(1 for a, b in zip(self.state.hotkeys, mg.hotkeys) if a != b)
            log.info("metagraph changed: %d -> %d uids, %d hotkeys replaced",
                     len(self.state.hotkeys), mg.n, changed)
            self.state.scores = scores_mod.resync(self.state.scores, self.state.hotkeys, mg.hotkeys)
            self.state.hotkeys = mg.hotkeys
        uid = mg.uid_of(self.wallet.hotkey.ss58_address)
        if uid is None:
            raise ChainError("this validator's hotkey is no longer registered")
        self.uid = uid
        self.metagraph = mg
        self.last_sync = time.monotonic()

    def should_set_weights(self, block: int) -> bool:
        if get(self.config, "neuron.disable_set_weights"):
            return False
        last = self.state.last_weights_block
        return last < 0 or block - last >= get(self.config, "neuron.epoch_length")

    def weights_allowed_from(self, hp) -> int:
        """The first block the chain accepts this hotkey's weights: ``weights_rate_limit`` blocks
        after it last set them (its ``last_update`` on chain, or what this validator recorded)."""
        last = self.state.last_weights_block
        n = self.metagraph.neurons[self.uid] if self.uid < self.metagraph.n else None
        if n is not None and n.last_update > n.block_at_registration:   # it has set weights before
            last = max(last, n.last_update)
        return last + hp.weights_rate_limit if last >= 0 else 0

    async def maybe_set_weights(self, final: bool = False) -> bool:
        """Set weights when due. The chain's rate limit is known beforehand and waited for (an
        info line, once per wait); other failures are retried with backoff, unless ``final``
        (the process stops next: no retry is promised)."""
        if not self.weights_backoff.ready():
            return False
        try:
            block = await asyncio.to_thread(self.chain.block)
            if not self.should_set_weights(block) or block < self.weights_not_before:
                return False
            hp = await asyncio.to_thread(self.chain.hyperparams)
            allowed = self.weights_allowed_from(hp)
            if block < allowed:
                self._rate_limited(block, allowed, hp.weights_rate_limit)
                return False
            uids, weights = process_weights(self.paid_scores(), hp)
            if not uids:
                return False
            await asyncio.wait_for(
                asyncio.to_thread(self.chain.set_weights, self.wallet, uids, weights, __spec_version__),
                timeout=120)
        except RateLimited as e:   # set by another process of this hotkey since our metagraph read
            self._rate_limited(block, e.next_block or block + max(1, hp.weights_rate_limit),
                               hp.weights_rate_limit)
            return False
        except Exception as e:   # a flaky chain or SDK: retry later, never stop the loop
            self.metrics.chain_error("set_weights")
            delay = self.weights_backoff.failed()
            then = "not retried: the validator is stopping" if final else f"retrying in {delay:.0f}s"
            log.warning("set_weights failed (%d in a row), %s: %s",
                        self.weights_backoff.failures, then, one_line(e) or type(e).__name__)
            return False
        self.weights_backoff.succeeded()
        self.metrics.weights_set()
        self.state.last_weights_block = block
        log.info("set weights at block %d on %d uids (version_key %d)", block, len(uids), __spec_version__)
        return True

    def _rate_limited(self, block: int, allowed: int, limit: int) -> None:
        if allowed != self.weights_not_before:
            log.info("weights: the chain's rate limit is %d blocks; next allowed at block %d (now %d)",
                     limit, allowed, block)
        self.weights_not_before = allowed

    def paid_scores(self) -> np.ndarray:
        """The scores weights are set from: zero for a miner without a recent proof of work
        (``--neuron.proof_window``; off when the inference task is never run)."""
        return proof_gate(self.config, self.state)

    def save(self) -> None:
        with self.io_lock:
            state_mod.save(self.folder, self.state)

    def record(self, event: dict) -> None:
        """Blocking: the local events log, then wandb (which may start a new run)."""
        with self.io_lock:
            self.events.write(event)
        self.wandb.log(event)

    # ---- stopping ---------------------------------------------------------------------
    def on_signal(self, name: str) -> None:
        """First Ctrl-C (or SIGTERM): said at once, the steps in flight finish and are saved.
        A second one stops now (`stop_now`)."""
        key = "Ctrl-C" if name == "SIGINT" else name
        if self.stopping:
            self.stop_now(key)
            return
        self.stopping = True
        if self.in_flight:
            steps = "steps " + ", ".join(map(str, self.in_flight)) if len(self.in_flight) > 1 \
                else f"step {self.in_flight[0]}"
            doing = f"finishing {steps}"
        elif self.llm is None:
            doing = "stopping once the models are loaded"
        else:
            doing = f"stopping after step {self.state.step}"
        log.warning("%s: %s; %s again to stop now", key, doing, key)

    def stop_now(self, key: str) -> None:
        """Stop the process at once. The state on disk stays whole: a write in progress finishes
        first (they take milliseconds), then the state of the last finished step is written
        atomically; the steps in flight are dropped."""
        got = self.io_lock.acquire(timeout=0.5)
        try:
            if got and self.folder and self.state is not None:
                state_mod.save(self.folder, self.state)
        except Exception as e:   # the previous state file is still whole
            log.error("state not saved: %s", one_line(e))
        dropped = f"step {', '.join(map(str, self.in_flight))} dropped; " if self.in_flight else ""
        log.warning("%s again: stopped now; %sstate of step %d in %s", key, dropped, self.state.step, self.folder)
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        # Not a clean interpreter exit: worker threads (an LLM generating, a model loading)
        # cannot be interrupted and would hold it for their whole run.
        os._exit(130)


async def setup(config) -> Validator:
    tasks, task_p = get(config, "neuron.tasks"), get(config, "neuron.task_p")
    check_task_probabilities(tasks, task_p)
    inference.check_options(config)
    # Tasks with p=0 are not loaded.
    wallet = load_wallet(config)
    chain = connect(config)
    try:
        mg = await asyncio.to_thread(chain.metagraph)
    except (ChainError, OSError) as e:
        raise UsageError(f"cannot read the metagraph of netuid {get(config, 'netuid')} on "
                         f"{get(config, 'subtensor.network')}: {e}") from None
    uid = mg.uid_of(wallet.hotkey.ss58_address)
    if uid is None:
        raise UsageError(f"hotkey {get(config, 'wallet.name')}/{get(config, 'wallet.hotkey')} "
                         f"is not registered on netuid {get(config, 'netuid')} ({get(config, 'subtensor.network')}); "
                         f"register it with {register_hint(config)}")
    folder = expand(get(config, "neuron.full_path") or default_full_path(config))
    os.makedirs(folder, exist_ok=True)
    st = state_mod.load(folder)
    if st is None:
        st = state_mod.State(scores=np.zeros(mg.n), hotkeys=mg.hotkeys)
        log.info("new validator state in %s", folder)
    else:
        log.info("loaded state from %s: step %d, %d uids", folder, st.step, len(st.hotkeys))
    seed = get(config, "neuron.seed")
    v = Validator(config=config, chain=chain, wallet=wallet, uid=uid, metagraph=mg, state=st,
                  folder=folder, rng=random.Random(seed),
                  weights_backoff=Backoff(base=get(config, "neuron.weights_retry_base", 2.0)))
    v.state.scores = scores_mod.resync(st.scores, st.hotkeys, mg.hotkeys)
    v.state.hotkeys = mg.hotkeys
    v.events = EventLog(os.path.join(folder, "events.jsonl"),
                        get(config, "neuron.events_retention_size"))
    v.wandb = WandbLog(config, folder, run_config={
        "netuid": mg.netuid, "uid": uid, "hotkey": wallet.hotkey.ss58_address,
        "version": __version__, "spec_version": __spec_version__,
        "tasks": tasks, "task_p": task_p,
    })
    return v


def _score_step(task, completions: list[str]):
    """Rewards of one step (blocking: a worker thread). `source_copy` compares with the task's
    material and the public articles the completions quote (sn1.tasks.material)."""
    from ..rewards import score
    from ..rewards.text import tokenized_once
    from ..tasks.material import copy_source, own_text

    with tokenized_once():   # the article lookup and the rewards read the same words
        try:
            source = copy_source(task, completions)
        except Exception as e:   # a lookup must never cost the step: fall back to the task's own text
            log.warning("quoted articles not looked up: %s", one_line(e))
            source = own_text(task)
        return score(task.rewards, task.penalties, task.reference, task.challenge, completions, source)


async def _finish_round(v: Validator, config, queried: list, stop_at: int | None = None) -> None:
    """Score a round's queried steps (together), fold and record them in order, then resync,
    set weights and save. A failed step is logged and skipped."""
    from .memory import release_native_memory

    steps = [q for q in queried if isinstance(q, Queried)]
    scored = iter(await asyncio.gather(*(v.score(q) for q in steps), return_exceptions=True))
    outcomes = []
    for q in queried:
        out = next(scored) if isinstance(q, Queried) else q
        if isinstance(out, BaseException):
            log.error("step failed: %s: %s", type(out).__name__, out)
            v.metrics.step_failed()
        elif out is not None:
            try:
                event = v.fold(q, out)
                log.info(_summary(event))
                v.metrics.step(event)
                await asyncio.to_thread(v.record, event)
            except Exception as e:
                log.error("step failed: %s: %s", type(e).__name__, e)
                v.metrics.step_failed()
                out = e
        outcomes.append(out)
    try:
        interval = get(config, "neuron.sync_interval") or 0
        if time.monotonic() - v.last_sync >= interval:
            await v.resync()
    except Exception as e:   # keep going on the last metagraph
        log.warning("metagraph sync failed, keeping the last one: %s", e)
        v.metrics.chain_error("metagraph")
    await v.maybe_set_weights(final=v.stopping or (stop_at is not None and v.state.step >= stop_at))
    await asyncio.to_thread(v.save)
    await asyncio.to_thread(release_native_memory)   # RSS flat over hours (memory.py)
    v.in_flight = [n for n in v.in_flight if n > v.state.step]
    if all(isinstance(o, BaseException) for o in outcomes):
        await asyncio.sleep(1.0)   # don't spin on a persistent failure


def status_counts(statuses) -> str:
    """"2 ok, 1 timeout, 1 http_error": how the miners of a step ended, ok first."""
    counts: dict[str, int] = {}
    for s in statuses:
        counts[s] = counts.get(s, 0) + 1
    order = sorted(counts, key=lambda s: (s != "ok", -counts[s], s))
    return ", ".join(f"{counts[s]} {s}" for s in order) or "none"


def _summary(event: dict) -> str:
    r = event["rewards"]
    return (f"step {event['step']} {event['task']}: {len(r)} miners ({status_counts(event['status'])}), "
            f"mean reward {np.mean(r):.3f}, max {np.max(r):.3f}, {event['step_time']:.1f}s")


async def run(config) -> int:
    from .. import llm as llm_mod
    from ..rewards import load_relevance_model
    from ..validator.query import MinerClient

    v = await setup(config)
    metrics_sock = metrics_port.bind(config, None if get(config, "neuron.axon_off") else get(config, "axon.port"))
    metrics_task = await metrics_port.serve(metrics_sock, v.metrics.attach(v).collector)   # before models load
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, v.on_signal, sig.name)
        except (NotImplementedError, RuntimeError):
            pass
    sock = None
    if not get(config, "neuron.axon_off"):
        from .endpoint import bind

        sock = bind(config)
    log.info("validator uid %d on netuid %d (%s); state in %s", v.uid, v.metagraph.netuid,
             get(config, "subtensor.network"), v.folder)
    log.info("loading the validator's LLM and reward models ...")
    # The seed's `--neuron.device cuda` also moves the validator's LLM.
    if get(config, "neuron.device", "cpu") != "cpu" and get(config, "llm.device", "cpu") == "cpu":
        config.llm.device = config.neuron.device
    v.llm = await asyncio.to_thread(llm_mod.from_config, config)
    v.llm_params = llm_mod.gen_params(config)
    from ..datasets import from_config as datasets_from_config

    v.datasets = datasets_from_config(config)
    await asyncio.to_thread(load_relevance_model, get(config, "neuron.relevance_model"),
                            get(config, "neuron.device"))
    from ..tasks.material import preload as preload_quotes

    await asyncio.to_thread(preload_quotes)
    if inference.asked(config):
        # The verification model loads in the background (transformers: seconds, or a minute
        # the first time it de-quantises the GGUF); the first inference step's scoring waits for
        # it. A daemon thread, not the loop's executor: Ctrl-C during the load exits at once.
        v.verifier = inference.make_verifier(config)
        v.verifier_loading = threading.Thread(target=inference.preload, args=(v.verifier,), daemon=True,
                                              name="sn1-verifier-load")
        v.verifier_loading.start()
    # Models and libraries are loaded: move their millions of objects out of the collector's
    # way, so a full collection during a step (triggered by parsing many small events) takes
    # milliseconds, not a few hundred (benchmarks/hostile.py).
    gc.freeze()

    server_task = None
    if sock is not None:
        from .endpoint import serve_endpoint

        server_task = await serve_endpoint(config, v, sock)

    # --neuron.max_steps counts the steps of this process; state.step goes on across restarts.
    max_steps = get(config, "neuron.max_steps") or 0
    stop_at = v.state.step + max_steps
    concurrency = max(1, get(config, "neuron.num_concurrent_forwards"))
    # A round's scoring (verification: seconds of forward passes) runs while the next round's
    # tasks are built and its miners queried; at most one round is being scored, and rounds
    # fold into the scores, the events and the state in order.
    pending: asyncio.Task | None = None
    pending_steps = 0
    async with MinerClient(v.wallet) as client:
        while not v.stopping and (not max_steps or v.state.step < stop_at):
            if max_steps and v.state.step + pending_steps >= stop_at:
                await pending          # the steps left are being scored: see whether they all fold
                pending, pending_steps = None, 0
                continue
            n = concurrency if not max_steps else min(concurrency, stop_at - v.state.step - pending_steps)
            seeds = [v.rng.randrange(2**32) for _ in range(n)]
            # the steps being queried and the ones still being scored (what Ctrl-C says it finishes)
            v.in_flight = list(range(v.state.step + 1, v.state.step + pending_steps + n + 1))
            queried = await asyncio.gather(*(v.query(client, s) for s in seeds), return_exceptions=True)
            if pending is not None:
                await pending
            pending = asyncio.create_task(_finish_round(v, config, queried, stop_at if max_steps else None))
            pending_steps = sum(1 for q in queried if isinstance(q, Queried))
        if pending is not None:
            await pending              # Ctrl-C: the round being scored is still recorded and saved
        v.in_flight = []
    v.save()
    v.events.close()
    v.wandb.close()
    if server_task is not None:
        server_task.cancel()
    if metrics_task is not None:
        metrics_task.cancel()
    log.info("stopped after step %d; state in %s", v.state.step, v.folder)
    return 0
