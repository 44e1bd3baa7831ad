"""What the metrics cost the miner: per streamed chunk, per request, and per scrape.

(a) per chunk (and the wrapper's own cost per call, measured alone): the miner's real streaming loop (``server._Generation`` with the
    real ``ChunkEncoder``) over a backend that yields pieces at once, into a
    ``send`` that does nothing, with and without the metrics' ``send`` wrapper
    (``FirstWrite``), one token per chunk (the worst case: every piece is a
    chunk). Rounds alternate with/without; medians.
(b) per request: ``MinerMetrics.refused`` and ``identify`` + ``generated``
    (what a refused and an answered request add).
(c) per scrape: rendering the miner's and a validator's registry (256 uids).

Best (least disturbed) and median of the rounds; the machine is shared.

    python benchmarks/metrics_overhead.py [--chunks 20000] [--rounds 7]

Prints a table to paste under the metrics heading of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sn1.miner.metrics import FirstWrite, MinerMetrics  # noqa: E402
from sn1.miner.server import _Generation  # noqa: E402
from sn1.protocol.wire import ChunkEncoder  # noqa: E402


async def _pieces(n: int):
    for _ in range(n):
        yield "word "


async def _noop(message) -> None:
    return None


async def stream_once(n: int, wrapped: bool) -> float:
    gen = _Generation(_pieces(n), batch_size=1, max_tokens=n + 1, encoder=ChunkEncoder("bench"), interval=0.1)
    send = FirstWrite(_noop) if wrapped else _noop
    t0 = time.perf_counter()
    await gen.run(send)
    return (time.perf_counter() - t0) / n


def per_chunk(n: int, rounds: int) -> tuple[list[float], list[float]]:
    bare, wrapped = [], []
    for _ in range(rounds):
        bare.append(asyncio.run(stream_once(n, False)))
        wrapped.append(asyncio.run(stream_once(n, True)))
    return bare, wrapped


def wrapper_alone(n: int, rounds: int) -> float:
    """The wrapper's own cost per call: ``await send(m)`` through it minus without it (best rounds)."""
    msg = {"type": "http.response.body", "body": b"x", "more_body": True}

    async def loop(send) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            await send(msg)
        return (time.perf_counter() - t0) / n

    bare = min(asyncio.run(loop(_noop)) for _ in range(rounds))
    wrapped = min(asyncio.run(loop(FirstWrite(_noop))) for _ in range(rounds))
    return wrapped - bare


def per_request(n: int) -> tuple[float, float]:
    chat = SimpleNamespace(gate=SimpleNamespace(waiting=0, active=0, max_concurrent=4, max_queue=64),
                           hotkey="5F" + "x" * 46, model="bench")
    m = MinerMetrics(chat)
    t0 = time.perf_counter()
    for _ in range(n):
        m.refused(401, "missing btauth/1 headers (X-Bittensor-*): sign the request")
    refused = (time.perf_counter() - t0) / n
    neuron = SimpleNamespace(validator_permit=True)
    headers: dict = {}
    t0 = time.perf_counter()
    for _ in range(n):
        m.identify(neuron, headers)
        send = FirstWrite(_noop)
        send.t = time.monotonic()
        m.generated("stop", 64, send.t - 0.05, send)
    answered = (time.perf_counter() - t0) / n
    return refused, answered


def per_scrape(n: int) -> tuple[float, float]:
    import numpy as np
    from prometheus_client import generate_latest

    from sn1.validator.metrics import ValidatorMetrics

    chat = SimpleNamespace(gate=SimpleNamespace(waiting=3, active=4, max_concurrent=4, max_queue=64),
                           hotkey="5F" + "x" * 46, model="bench")
    m = MinerMetrics(chat)
    for status in (200, 401, 403, 429):
        m.refused(status, "x")
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        generate_latest(m.collector)
        times.append(time.perf_counter() - t0)
    miner = min(times), statistics.median(times)
    v = ValidatorMetrics()
    rng = np.random.default_rng(0)
    v.attach(SimpleNamespace(config=SimpleNamespace(), state=SimpleNamespace(step=1, scores=rng.random(256),
                                                                             last_weights_block=5),
                             metagraph=SimpleNamespace(block=1, n=256)))
    for task in ("qa", "math", "summarization", "date_qa", "inference"):
        v.step({"task": task, "step_time": 9.0, "task_time": 1, "query_time": 7, "score_time": 1,
                "status": ["ok"] * 50, "rewards": list(rng.random(50))})
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        generate_latest(v.collector)
        times.append(time.perf_counter() - t0)
    return miner, (min(times), statistics.median(times))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--chunks", type=int, default=20000, help="chunks per streaming round")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    load0 = os.getloadavg()[0]
    bare, wrapped = per_chunk(args.chunks, args.rounds)
    alone = wrapper_alone(200000, args.rounds)
    refused, answered = per_request(20000)
    miner_scrape, validator_scrape = per_scrape(200)
    load1 = os.getloadavg()[0]
    print(f"`python benchmarks/metrics_overhead.py --chunks {args.chunks} --rounds {args.rounds}` — "
          f"{platform.machine()}, {os.cpu_count()} cores, load average {load0:.1f} at the start and "
          f"{load1:.1f} at the end; best and median of the rounds (the best is the least disturbed by "
          f"other processes).\n")
    b0, w0 = min(bare), min(wrapped)
    b1, w1 = statistics.median(bare), statistics.median(wrapped)
    print("| what | best | median |")
    print("|---|---:|---:|")
    print(f"| streaming loop per chunk (1 token per chunk), without the metrics' send wrapper "
          f"| {b0 * 1e6:.2f} µs | {b1 * 1e6:.2f} µs |")
    print(f"| ... with it | {w0 * 1e6:.2f} µs | {w1 * 1e6:.2f} µs |")
    print(f"| added per chunk | {(w0 - b0) * 1e9:+.0f} ns ({(w0 - b0) / b0:+.1%}) "
          f"| {(w1 - b1) * 1e9:+.0f} ns ({(w1 - b1) / b1:+.1%}) |")
    print(f"| the wrapper alone per call (200k awaits, best round) | {alone * 1e9:+.0f} ns | |")
    print(f"| a refused request (reason, status and caller counted; mean) | {refused * 1e6:.2f} µs | |")
    print(f"| an answered request (caller, generation, TTFT and tokens/s; mean) | {answered * 1e6:.2f} µs | |")
    print(f"| one scrape of a miner's /metrics | {miner_scrape[0] * 1e3:.2f} ms | {miner_scrape[1] * 1e3:.2f} ms |")
    print(f"| one scrape of a validator's /metrics (5 tasks, 256 uids, top 16) | {validator_scrape[0] * 1e3:.2f} ms "
          f"| {validator_scrape[1] * 1e3:.2f} ms |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
