"""The validator's main loop (spec §5): steps, resync, weights, state.

One step = build a task (LLM, in a thread) -> pick uids -> stream the
challenge to all of them under one deadline -> score (in a thread) -> fold
into the moving-average scores -> log one event. Between rounds: resync the
metagraph, set weights every ``epoch_length`` blocks, save the state.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import random
import signal
import time
from dataclasses import dataclass, field

import numpy as np

from .. import __spec_version__, __version__
from ..chain import Chain, ChainError, Metagraph, connect, load_wallet
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
    rng: random.Random = field(default_factory=random.Random)
    events: EventLog | None = None
    wandb: WandbLog | None = None
    weights_backoff: Backoff = field(default_factory=Backoff)
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
        t_query = time.monotonic()

        completions = [r.completion for r in results]
        if task.name == "inference":
            self.verifier = self.verifier or inference.make_verifier(self.config)
            rewards = await asyncio.to_thread(inference.score, self.verifier, task, results, requests)
            self.state.record_proofs(uids, [v.ok for v in rewards.verdicts])   # no proof, no pay
        else:
            rewards = await asyncio.to_thread(_score_step, task, completions)
        t_score = time.monotonic()

        # Resyncs happen only between rounds, so `uids` still index state.scores.
        self.state.scores = scores_mod.update(
            self.state.scores, uids, rewards.total,
            alpha=get(self.config, "neuron.moving_average_alpha"),
            decay_alpha=get(self.config, "neuron.decay_alpha"),
        )
        self.state.step += 1

        event = {
            "step": self.state.step,
            "block": mg.block,
            "netuid": mg.netuid,
            "validator_uid": self.uid,
            "step_time": t_score - t_start,
            "task_time": t_task - t_start,
            "query_time": t_query - t_task,
            "score_time": t_score - t_query,
            **task.to_event(),
            "uids": uids,
            "hotkeys": [mg.neurons[u].hotkey for u in uids],
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
        if requests is not None:
            event["seeds"] = [r["seed"] for r in requests]     # the seed each uid was sent
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

    async def maybe_set_weights(self) -> bool:
        if not self.weights_backoff.ready():
            return False
        try:
            block = await asyncio.to_thread(self.chain.block)
            if not self.should_set_weights(block):
                return False
            hp = await asyncio.to_thread(self.chain.hyperparams)
            uids, weights = process_weights(self.paid_scores(), hp)
            if not uids:
                return False
            await asyncio.wait_for(
                asyncio.to_thread(self.chain.set_weights, self.wallet, uids, weights, __spec_version__),
                timeout=120)
        except Exception as e:   # a flaky chain or SDK: retry later, never stop the loop
            self.metrics.chain_error("set_weights")
            delay = self.weights_backoff.failed()
            log.warning("set_weights failed (%d in a row), retrying in %.0fs: %s",
                        self.weights_backoff.failures, delay, e or type(e).__name__)
            return False
        self.weights_backoff.succeeded()
        self.metrics.weights_set()
        self.state.last_weights_block = block
        log.info("set weights at block %d on %d uids (version_key %d)", block, len(uids), __spec_version__)
        return True

    def paid_scores(self) -> np.ndarray:
        """The scores weights are set from: zero for a miner without a recent proof of work
        (``--neuron.proof_window``; off when the inference task is never run)."""
        return proof_gate(self.config, self.state)

    def save(self) -> None:
        state_mod.save(self.folder, self.state)

    def record(self, event: dict) -> None:
        """Blocking: the local events log, then wandb (which may start a new run)."""
        self.events.write(event)
        self.wandb.log(event)


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
                         f"is not registered on netuid {get(config, 'netuid')}")
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
    from .memory import release_native_memory

    v = await setup(config)
    metrics_sock = metrics_port.bind(config, None if get(config, "neuron.axon_off") else get(config, "axon.port"))
    metrics_task = await metrics_port.serve(metrics_sock, v.metrics.attach(v).collector)   # before models load
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
    # Models and libraries are loaded: move their millions of objects out of the collector's
    # way, so a full collection during a step (triggered by parsing many small events) takes
    # milliseconds, not a few hundred (benchmarks/hostile.py).
    gc.freeze()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, lambda: setattr(v, "stopping", True))
        except (NotImplementedError, RuntimeError):
            pass

    server_task = None
    if sock is not None:
        from .endpoint import serve_endpoint

        server_task = await serve_endpoint(config, v, sock)

    # --neuron.max_steps counts the steps of this process; state.step goes on across restarts.
    max_steps = get(config, "neuron.max_steps") or 0
    stop_at = v.state.step + max_steps
    concurrency = max(1, get(config, "neuron.num_concurrent_forwards"))
    async with MinerClient(v.wallet) as client:
        while not v.stopping and (not max_steps or v.state.step < stop_at):
            n = concurrency if not max_steps else min(concurrency, stop_at - v.state.step)
            seeds = [v.rng.randrange(2**32) for _ in range(n)]
            outcomes = await asyncio.gather(*(v.forward(client, s) for s in seeds),
                                            return_exceptions=True)
            for out in outcomes:
                if isinstance(out, BaseException):
                    log.error("step failed: %s: %s", type(out).__name__, out)
                    v.metrics.step_failed()
                elif out is not None:
                    log.info(_summary(out))
                    v.metrics.step(out)
                    await asyncio.to_thread(v.record, out)
            try:
                interval = get(config, "neuron.sync_interval") or 0
                if time.monotonic() - v.last_sync >= interval:
                    await v.resync()
            except Exception as e:   # keep going on the last metagraph
                log.warning("metagraph sync failed, keeping the last one: %s", e)
                v.metrics.chain_error("metagraph")
            await v.maybe_set_weights()
            await asyncio.to_thread(v.save)
            await asyncio.to_thread(release_native_memory)   # RSS flat over hours (memory.py)
            if all(isinstance(o, BaseException) for o in outcomes):
                await asyncio.sleep(1.0)   # don't spin on a persistent failure
    v.save()
    v.events.close()
    v.wandb.close()
    if server_task is not None:
        server_task.cancel()
    if metrics_task is not None:
        metrics_task.cancel()
    log.info("stopped after step %d; state in %s", v.state.step, v.folder)
    return 0
