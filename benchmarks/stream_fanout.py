"""Fan-out benchmark: one validator client streaming from M phrase miners at once.

The real miner app (sn1.miner.server, btauth verification included) and the
real validator client (sn1.validator.query.MinerClient) over real sockets on
127.0.0.1. Miners run in ``--workers`` processes, each holding many miner apps
on their own ports and hotkeys; every miner streams K words as fast as it can
(batches of 12). For each M the client runs ``--rounds`` queries (after one
warm-up) and we print:

  chunks/s and tokens/s received, validator CPU seconds (user+sys of this
  process) per 1,000 chunks, p50/p99 time to first chunk, and any miner that
  did not answer ok.

    python benchmarks/stream_fanout.py [--miners 1 16 64 256] [--tokens 256] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def hotkey(i: int):
    from bittensor.sp_core import Keypair

    return Keypair.create_from_uri(f"//sn1-bench/miner/{i}")


def validator_key():
    from bittensor.sp_core import Keypair

    return Keypair.create_from_uri("//sn1-bench/validator")


# ---- miner worker process ---------------------------------------------------------------------

def worker(spec_file: str) -> None:
    from types import SimpleNamespace

    import uvicorn

    from sn1.chain.base import Metagraph, Neuron
    from sn1.miner.backends.test import PhraseMiner
    from sn1.protocol.serving import bind_socket
    from sn1.miner.server import MetagraphView, MinerSettings, build_app

    spec = json.load(open(spec_file))
    phrase = " ".join(f"w{i}" for i in range(spec["tokens"]))
    backend = PhraseMiner(SimpleNamespace(neuron=SimpleNamespace(phrase=phrase)))
    val = spec["validator"]
    view = MetagraphView(chain=None)
    view.set(Metagraph(netuid=1, block=0, neurons=(Neuron(0, val, val, stake=1000.0, validator_permit=True),)))
    settings = MinerSettings(max_concurrent=4, max_queue=64)
    apps, socks, ports = {}, [], []
    for hk in spec["miners"]:
        s = bind_socket("127.0.0.1", 0)   # the OS picks a free port; reported back below
        port = s.getsockname()[1]
        apps[port] = build_app(backend, hk, view, settings)
        socks.append(s)
        ports.append(port)

    async def app(scope, receive, send):   # one ASGI app per port, dispatched by the local port
        await apps[scope["server"][1]](scope, receive, send)

    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                           backlog=4096, timeout_keep_alive=30))

    async def run():
        task = asyncio.create_task(server.serve(sockets=socks))
        while not server.started:
            await asyncio.sleep(0.05)
        with open(spec["ready"] + ".tmp", "w") as f:
            json.dump(ports, f)
        os.replace(spec["ready"] + ".tmp", spec["ready"])
        await task

    asyncio.run(run())


# ---- the validator side -----------------------------------------------------------------------

def pct(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


async def measure(targets, wallet, tokens: int, rounds: int, timeout: float) -> dict:
    from sn1.llm.base import GenParams
    from sn1.validator.query import MinerClient

    msgs = [{"role": "user", "content": "benchmark"}]
    params = GenParams(max_tokens=tokens)
    async with MinerClient(wallet) as client:
        await client.query(targets, msgs, params, timeout=timeout)          # warm-up: connections
        chunks = toks = 0
        ttfc, bad = [], {}
        wall = cpu = 0.0
        for _ in range(rounds):
            c0, w0 = time.process_time(), time.perf_counter()
            results = await client.query(targets, msgs, params, timeout=timeout)
            wall += time.perf_counter() - w0
            cpu += time.process_time() - c0
            for r in results:
                chunks += len(r.chunk_times)
                toks += r.tokens
                if r.time_to_first_chunk is not None:
                    ttfc.append(r.time_to_first_chunk)
                if r.status != "ok" or r.tokens != tokens:
                    bad[r.status] = bad.get(r.status, 0) + 1
    return {"miners": len(targets), "chunks": chunks, "tokens": toks, "wall_s": wall, "cpu_s": cpu,
            "chunks_per_s": chunks / wall, "tokens_per_s": toks / wall,
            "cpu_s_per_1k_chunks": 1000 * cpu / max(chunks, 1),
            "ttfc_p50_ms": 1000 * pct(ttfc, 50), "ttfc_p99_ms": 1000 * pct(ttfc, 99),
            "not_ok": bad}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--miners", type=int, nargs="+", default=[1, 16, 64, 256])
    ap.add_argument("--tokens", type=int, default=256, help="K: words each miner streams")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2, help="miner processes")
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker)
        return 0

    from sn1.chain.base import Neuron
    from sn1.testing import stop_processes
    m_max = max(args.miners)
    keys = [hotkey(i).ss58_address for i in range(m_max)]
    val = validator_key()
    tmp = tempfile.mkdtemp(prefix="sn1-bench-")
    procs, shares = [], []
    try:
        for w in range(args.workers):
            share = list(range(w, m_max, args.workers))
            spec = os.path.join(tmp, f"worker{w}.json")
            json.dump({"tokens": args.tokens, "validator": val.ss58_address,
                       "miners": [keys[i] for i in share], "ready": spec + ".ports"}, open(spec, "w"))
            procs.append(subprocess.Popen([sys.executable, __file__, "--worker", spec]))
            shares.append((share, spec + ".ports"))
        ports = [0] * m_max
        deadline = time.monotonic() + 120
        for (share, ready), proc in zip(shares, procs):
            while not os.path.exists(ready):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("a miner worker failed to start")
                time.sleep(0.05)
            for i, port in zip(share, json.load(open(ready))):
                ports[i] = port
        targets = [Neuron(uid=i, hotkey=keys[i], coldkey="-", endpoint=f"127.0.0.1:{ports[i]}")
                   for i in range(m_max)]
        print(f"stream fan-out: K={args.tokens} tokens per miner (batches of 12), {args.rounds} rounds, "
              f"miners in {args.workers} processes, {os.cpu_count()} CPUs")
        from sn1.protocol.auth import sign_headers

        c0 = time.process_time()
        for k in keys[:100]:
            sign_headers(val, b"x" * 300, k)
        print(f"btauth/1 signing costs {10 * (time.process_time() - c0):.2f} ms CPU per request "
              f"(included in the CPU figures below)")
        print(f"{'M':>5} {'chunks/s':>10} {'tokens/s':>10} {'cpu s/1k chunks':>16} "
              f"{'ttfc p50 ms':>12} {'ttfc p99 ms':>12}  not ok")
        rows = []
        for m in args.miners:
            row = asyncio.run(measure(targets[:m], val, args.tokens, args.rounds, args.timeout))
            rows.append(row)
            print(f"{m:>5} {row['chunks_per_s']:>10.0f} {row['tokens_per_s']:>10.0f} "
                  f"{row['cpu_s_per_1k_chunks']:>16.3f} {row['ttfc_p50_ms']:>12.1f} "
                  f"{row['ttfc_p99_ms']:>12.1f}  {row['not_ok'] or '-'}", flush=True)
        if args.json:
            print(json.dumps(rows))
        return 1 if any(r["not_ok"] for r in rows) else 0
    finally:
        stop_processes(procs)


if __name__ == "__main__":
    sys.exit(main())
