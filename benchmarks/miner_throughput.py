"""Miner throughput: the engine alone vs the same engine behind the miner server and validator client.

For each engine (``--engines llamacpp hf``: llama.cpp and transformers, both on the
embedded SmolLM2-135M-Instruct):
(a) engine: ``engine.stream`` called directly, one thread per request;
(b) miner:  a real `sn1 miner --backend ENGINE` process on a sandbox subnet with its
    default streaming flags, queried with the validator's client (signed HTTP, SSE).
The engine's load time is printed too (transformers: a first load de-quantises the GGUF
and keeps the result; the miner's start then loads the kept weights).
For 1 and 4 concurrent requests: aggregate tokens/s and the ratio b/a, time to first
token of every request (engine: first piece out of ``stream``; miner: first chunk at
the client, which holds the first token alone), p50 of each and the difference (what
the miner adds), and the miner process's peak RSS. Rounds alternate a and b (the
machine is shared); tokens/s are medians over rounds, TTFT p50 over all requests.

    python benchmarks/miner_throughput.py [--engines llamacpp hf] [--tokens 128] [--rounds 3] [--write]

``--write`` puts the table into benchmarks/RESULTS.md (its own section).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sn1.llm.base import DEFAULT_SYSTEM_PROMPT, GenParams  # noqa: E402

PROMPT = "Tell me a long story about a dragon."     # greedy SmolLM2 runs on for 600+ tokens
MARK_START, MARK_END = "<!-- miner_throughput:start -->", "<!-- miner_throughput:end -->"


def messages():
    # The miner adds this system prompt itself; the direct engine gets the same messages.
    return [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT}, {"role": "user", "content": PROMPT}]


# ---- (a) the engine ----------------------------------------------------------------------------

def run_engine(engine, n: int, params: GenParams) -> dict:
    results = [None] * n
    start = threading.Barrier(n + 1)

    def one(i):
        start.wait()
        t0 = time.perf_counter()
        first = None
        count = 0
        for _ in engine.stream(messages(), params):
            count += 1
            if count == 1:
                first = time.perf_counter() - t0
        results[i] = (count, first, time.perf_counter())

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = max(r[2] for r in results) - t0
    return {"tokens": sum(r[0] for r in results), "wall": wall,
            "tok_s": sum(r[0] for r in results) / wall, "ttft": [r[1] for r in results]}


# ---- (b) the miner -----------------------------------------------------------------------------

class Miner:
    def __init__(self, root: Path, extra: list[str], backend: str = "llamacpp"):
        from sn1.chain.sandbox import SandboxChain
        from sn1.testing import free_port, make_wallet, wait_for_port

        self.chain = SandboxChain.init(root / "sandbox", 1)
        wallets = root / "wallets"
        self.validator = make_wallet(wallets, "validator")
        self.chain.register(self.validator, stake=1000.0)
        self.uid = self.chain.register(make_wallet(wallets, "miner"))
        port = free_port()
        self.log = open(root / "miner.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sn1.cli", "miner", "--backend", backend, *extra,
             "--subtensor.network", "sandbox", "--sandbox.path", str(root / "sandbox"), "--netuid", "1",
             "--wallet.path", str(wallets), "--wallet.name", "miner", "--axon.ip", "127.0.0.1",
             "--axon.port", str(port)],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_port(port, timeout=600, proc=self.proc)
        self.neuron = self.chain.metagraph().neurons[self.uid]

    def peak_rss_mib(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


async def run_miner(miner: Miner, n: int, params: GenParams) -> dict:
    from sn1.validator.query import MinerClient

    async with MinerClient(miner.validator) as client:
        t0 = time.perf_counter()
        results = await client.query([miner.neuron] * n, [{"role": "user", "content": PROMPT}], params,
                                     timeout=600)
        wall = time.perf_counter() - t0
    bad = [r for r in results if r.status != "ok"]
    if bad:
        raise SystemExit(f"miner request failed: {bad[0].status} {bad[0].message}")
    tokens = sum(r.tokens for r in results)
    return {"tokens": tokens, "wall": wall, "tok_s": tokens / wall,
            "ttft": [r.time_to_first_chunk for r in results],
            "first_chunk_tokens": [r.chunk_tokens[0] for r in results]}


# ---- main --------------------------------------------------------------------------------------

def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--engines", nargs="+", default=["llamacpp", "hf"], choices=["llamacpp", "hf"])
    ap.add_argument("--tokens", type=int, default=128, help="max_tokens per request (greedy: all are used)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--concurrency", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--parallel", type=int, default=1, help="llama.cpp contexts (engine and miner alike)")
    ap.add_argument("--threads", type=int, default=None, help="--neuron.n_threads (torch / llama.cpp threads)")
    ap.add_argument("--write", action="store_true", help="update benchmarks/RESULTS.md")
    args = ap.parse_args()
    tables = [bench_engine(name, args) for name in args.engines]
    table = "\n\n".join(tables)
    if args.write:
        write_results(table)
    return 0


def make_engine(name: str, args):
    t0 = time.perf_counter()
    if name == "llamacpp":
        from sn1.llm.llamacpp import LlamaCppEngine

        engine = LlamaCppEngine(parallel=args.parallel, **({"n_threads": args.threads} if args.threads else {}))
    else:
        from sn1.llm.hf import HFEngine

        engine = HFEngine(n_threads=args.threads)
    return engine, time.perf_counter() - t0


def bench_engine(name: str, args) -> str:
    params = GenParams(max_tokens=args.tokens, temperature=0.0)
    engine, load_s = make_engine(name, args)
    print(f"{name}: engine loaded in {load_s:.1f}s", flush=True)
    # A slow engine on a busy machine must not meet the miner's default 60 s cap per generation.
    extra = ["--neuron.max_concurrent", str(max(4, *args.concurrency)), "--neuron.max_timeout", "3600"]
    if name == "llamacpp":
        extra += ["--neuron.parallel", str(args.parallel)]
    if args.threads:
        extra += ["--neuron.n_threads", str(args.threads)]
    a: dict[int, list] = {n: [] for n in args.concurrency}
    b: dict[int, list] = {n: [] for n in args.concurrency}
    with tempfile.TemporaryDirectory(prefix="sn1-bench-") as tmp:
        t0 = time.perf_counter()
        miner = Miner(Path(tmp), extra, backend=name)
        miner_start = time.perf_counter() - t0
        try:
            run_engine(engine, 1, GenParams(max_tokens=8, temperature=0.0))        # warm both
            asyncio.run(run_miner(miner, 1, GenParams(max_tokens=8, temperature=0.0)))
            for rnd in range(args.rounds):
                for n in args.concurrency:
                    a[n].append(run_engine(engine, n, params))
                    b[n].append(asyncio.run(run_miner(miner, n, params)))
                    print(f"{name} round {rnd + 1} x{n}: engine {a[n][-1]['tok_s']:.1f} tok/s, "
                          f"miner {b[n][-1]['tok_s']:.1f} tok/s", flush=True)
            rss = miner.peak_rss_mib()
        finally:
            miner.stop()
    del engine

    med = lambda rows, k: statistics.median(r[k] for r in rows)  # noqa: E731
    p50 = lambda rows: 1000 * statistics.median(t for r in rows for t in r["ttft"])  # noqa: E731
    load = os.getloadavg()[0]
    what = (f"llama.cpp SmolLM2-135M-Instruct Q4_1 (parallel={args.parallel})" if name == "llamacpp" else
            "transformers SmolLM2-135M-Instruct (the same GGUF de-quantised to float32, torch "
            f"{args.threads or 'default'} threads)")
    lines = [
        f"`python benchmarks/miner_throughput.py --engines {name} --tokens {args.tokens} --rounds {args.rounds}` — "
        f"{what}, greedy, {args.tokens} tokens "
        f"per request, the miner's default streaming flags (first token alone, then up to 12 tokens or "
        f"0.1 s per chunk); {platform.machine()}, {os.cpu_count()} cores, load average {load:.1f} at the "
        f"end; tokens/s medians of {args.rounds} rounds, a and b alternating; TTFT p50 over every request. "
        f"Engine load {load_s:.1f} s in this process; the miner process listened {miner_start:.1f} s after start.",
        "",
        "| concurrent | engine tok/s (a) | miner tok/s (b) | b/a | engine TTFT p50 ms | miner TTFT p50 ms "
        "| added by the miner ms |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in args.concurrency:
        ta, tb = med(a[n], "tok_s"), med(b[n], "tok_s")
        fa, fb = p50(a[n]), p50(b[n])
        lines.append(f"| {n} | {ta:.1f} | {tb:.1f} | {tb / ta:.2f} | {fa:.1f} | {fb:.1f} | {fb - fa:+.1f} |")
    first = {t for n in args.concurrency for r in b[n] for t in r["first_chunk_tokens"]}
    lines += ["", f"Tokens in the miner's first chunk: {sorted(first)}. "
                  f"Miner process peak RSS (VmHWM): {rss:.0f} MiB."]
    table = "\n".join(lines)
    print("\n" + table, flush=True)
    return table


def write_results(table: str) -> None:
    path = ROOT / "benchmarks" / "RESULTS.md"
    section = f"{MARK_START}\n## Miner throughput (`benchmarks/miner_throughput.py`)\n\n{table}\n{MARK_END}"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if MARK_START in text and MARK_END in text:
        head, rest = text.split(MARK_START, 1)
        text = head + section + rest.split(MARK_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)
    print(f"written to {path}")


if __name__ == "__main__":
    raise SystemExit(main())
