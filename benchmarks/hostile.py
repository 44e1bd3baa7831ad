"""Hostile-peer benchmark: what attackers cost the validator's reader and the miner's server.

Three parts, real code over real sockets on 127.0.0.1:

1. ``reader``: the validator's read path (SSEParser fed in FEED_SLICE slices,
   decode_chunk per event) on 4 MiB of an honest stream and of pathological
   shapes; MB/s, best of 3. Goal: pathological within 3x of honest.
2. ``step``: one query to 32 hostile miners (two tests/hostile/hostile_miner.py
   processes: floods, drips, bombs, endless and silent streams) plus one honest
   stand-in, timeout 5 s, after a warm-up query; the worst event-loop stall seen
   by a 5 ms ticker (wall, and this thread's CPU during it), the step's wall
   time, the honest miner's result. Goals: stall <= 50 ms, wall <= timeout + 1 s.
3. ``miner``: a real `sn1 miner --backend phrase` on a sandbox chain; latency
   of signed requests from its registered validator (sequential, new connection
   each, as the validator does) idle-free, then while an attacker process holds
   2,000 idle connections (reopening any the miner closes) from one address and
   from 100 addresses. Goal: <= 2x idle-free.

2b. ``wire``: one hostile miner at a time whose bytes never reach a body (1xx floods, a 103
   with thousands of headers, one-byte HTTP chunks, chunk extensions); the validator's CPU and
   wall time for its query (timeout --timeout). Goal: cut by the wire budget in well under a
   second of CPU, not parsed until the deadline.

    python benchmarks/hostile.py [--parts reader step wire miner] [--requests 40]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..")
sys.path.insert(0, ROOT)
HOSTILE = os.path.join(ROOT, "tests", "hostile", "hostile_miner.py")

MSG = [{"role": "user", "content": "Say something."}]


# ---- 1. reader throughput ---------------------------------------------------------------------

def reader_cases(size: int) -> dict[str, tuple[bytes, int]]:
    """name -> (bytes, network read size)."""
    from sn1.protocol.sse import FEED_SLICE
    from sn1.protocol.wire import ChunkEncoder

    enc = ChunkEncoder("sn1-miner")
    # A real miner's chunks: 12 words per batch.
    one = b"".join(enc.chunk(" ".join(["token"] * 12) + " ", 12) for _ in range(200))
    honest = (one * (size // len(one) + 1))[:size]
    tiny = b'data:{"choices":[{"delta":{"content":"a"}}]}\n\n'
    return {
        "honest (12-token chunks)": (honest, 65536),
        "honest, dripped in 64 B reads": (honest[: size // 8], 64),
        "blank lines": (b"\n" * size, 65536),
        "CR / CRLF mix": (b"\r\n\r" * (size // 3), 65536),
        "comment lines": (b":\n" * (size // 2), 65536),
        "other fields": (b"id: 1\nevent: x\n" * (size // 15), 65536),
        "one endless line": (b"data: " + b"x" * size, 65536),
        "endless line, 1 B reads": (b"data: " + b"x" * (size // 64), 1),
        "data lines, one event": (b"data: x\n" * (size // 8), 65536),
        "tiny events (1 char)": (tiny * (size // len(tiny)), 65536),
        "empty events": (b'data:{"choices":[{"delta":{}}]}\n\n' * (size // 34), 65536),
        "_slice": (b"", FEED_SLICE),
    }


def read_all(data: bytes, read: int, slice_: int) -> float:
    """Seconds for the validator's path to consume ``data`` delivered in ``read``-byte reads
    (caps opened wide so the whole input is parsed: we measure cost per byte, not the cut)."""
    from sn1.protocol.sse import SSEError, SSEParser
    from sn1.protocol.wire import ProtocolError, decode_chunk

    p = SSEParser(max_line=1 << 30, max_event=1 << 30, max_data_lines=1 << 30)
    t = time.perf_counter()
    for i in range(0, len(data), read):
        raw = data[i:i + read]
        for k in range(0, len(raw), slice_):
            try:
                events = p.feed(raw[k:k + slice_])
            except SSEError:
                events = []
            for e in events:
                try:
                    decode_chunk(e)
                except ProtocolError:
                    pass
    return time.perf_counter() - t


def part_reader(size: int) -> dict:
    cases = reader_cases(size)
    slice_ = cases.pop("_slice")[1]
    rows = {}
    for name, (data, read) in cases.items():
        best = min(read_all(data, read, slice_) for _ in range(3))
        rows[name] = len(data) / best / 1e6
    honest = rows["honest (12-token chunks)"]
    print(f"\n## reader: MB/s (validator's path: SSEParser + decode_chunk, {slice_} B slices), best of 3")
    print("| stream | MB/s | x honest's cost per byte | µs per network read | in production |\n"
          "|---|---:|---:|---:|---|")
    for name, mbs in rows.items():
        read = cases[name][1]
        print(f"| {name} | {mbs:.1f} | {honest / mbs:.2f} | {read / mbs:.1f} | {CUT.get(name, '')} |")
    bulk = {k: v for k, v in rows.items() if cases[k][1] > 64 and k not in CUT}
    worst = min(bulk, key=bulk.get)
    print(f"worst shape read in full in production: {worst}, {honest / rows[worst]:.2f}x honest's cost per byte")
    return rows


# What the validator's caps (sn1.validator.query) do to the shapes above: they are not read to the end.
CUT = {"empty events": "cut after 256 events without text",
       "data lines, one event": "cut after 64 data lines",
       "one endless line": "cut at 256 KiB",
       "endless line, 1 B reads": "cut at 256 KiB or the deadline"}


# ---- 2. a step with 32 hostile miners ---------------------------------------------------------

HEAVY = ["newlines", "comments", "empty_events", "tiny_events", "burst", "drip_line", "drip_events",
         "giant_line", "json_bomb", "endless", "slow_endless", "header_flood", "silent", "crlf",
         "object_bomb", "gzip_bomb"]


def start_hostile(modes):
    proc = subprocess.Popen([sys.executable, HOSTILE, *modes], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
    return proc, json.loads(proc.stdout.readline())


async def one_step(client, targets, timeout: float):
    loop = asyncio.get_running_loop()
    worst = (0.0, 0.0, 0.0)
    stop = False

    async def ticker():
        nonlocal worst
        while not stop:
            t, c = loop.time(), time.thread_time()
            await asyncio.sleep(0.005)
            stall = loop.time() - t - 0.005
            if stall > worst[0]:
                worst = (stall, time.thread_time() - c, t - t0)

    t0 = loop.time()
    tick = asyncio.create_task(ticker())
    results = await client.query(targets, MSG, timeout=timeout)
    wall = loop.time() - t0
    stop = True
    await tick
    return wall, worst, results


async def step_rounds(wallet, ports, timeout: float, rounds: int, freeze: bool):
    from sn1.chain.base import Neuron
    from sn1.validator.query import MinerClient

    targets = [Neuron(uid=i, hotkey=wallet.hotkey.ss58_address, coldkey="-", endpoint=f"127.0.0.1:{p}")
               for i, p in enumerate(ports)]
    out = []
    async with MinerClient(wallet) as client:
        await client.query(targets[-1:], MSG, timeout=timeout)        # warm-up (imports, pool)
        if freeze:
            gc.freeze()         # as the validator does after start-up (sn1.validator.loop)
        for _ in range(rounds):
            out.append(await one_step(client, targets, timeout))
    return out


def part_step(tmp: str, rounds: int, timeout: float, freeze: bool = True) -> dict:
    from sn1.testing import make_wallet

    modes = (HEAVY * 2)[:32]
    procs = []
    try:
        ports = []
        for half in (modes[:16], modes[16:], ["honest"]):     # honest alone: no flood delays it
            p, pp = start_hostile(half)
            procs.append(p)
            ports += pp
        wallet = make_wallet(os.path.join(tmp, "wallets"), "bench-validator")
        runs = asyncio.run(step_rounds(wallet, ports, timeout, rounds, freeze))
    finally:
        for p in procs:
            p.kill()
            p.wait()
    print(f"\n## step: 32 hostile miners + 1 honest, timeout {timeout:g}s, {rounds} rounds after a warm-up"
          f"{', gc.freeze() after it' if freeze else ''}")
    print("| round | wall s | worst stall ms (wall) | CPU of this thread in it, ms | at s | honest miner |\n"
          "|---:|---:|---:|---:|---:|---|")
    for i, (wall, (stall, cpu, at), results) in enumerate(runs, 1):
        h = results[-1]
        print(f"| {i} | {wall:.2f} | {stall * 1000:.1f} | {cpu * 1000:.1f} | {at:.2f} | {h.status}, "
              f"{len(h.chunk_times)} chunks, first {h.time_to_first_chunk or 0:.3f}s |")
    statuses: dict = {}
    for r in runs[-1][2][:-1]:
        statuses[r.status] = statuses.get(r.status, 0) + 1
    print("hostile statuses (last round):", statuses)
    return {"wall": max(r[0] for r in runs), "stall_ms": max(r[1][0] for r in runs) * 1000}


# ---- 2b. bytes that never reach a body ---------------------------------------------------------

WIRE = ["info_flood", "info_headers", "tiny_chunks", "chunk_ext"]


async def wire_rounds(wallet, ports, timeout: float) -> list:
    from sn1.chain.base import Neuron
    from sn1.validator.query import MinerClient

    out = []
    async with MinerClient(wallet) as client:
        for mode, port in zip(WIRE, ports):
            target = Neuron(uid=0, hotkey=wallet.hotkey.ss58_address, coldkey="-", endpoint=f"127.0.0.1:{port}")
            c0, t0 = time.process_time(), time.monotonic()
            [r] = await client.query([target], MSG, timeout=timeout)
            out.append((mode, time.process_time() - c0, time.monotonic() - t0, r))
    return out


def part_wire(tmp: str, timeout: float) -> None:
    """One miner at a time of each shape whose bytes never reach a body (1xx floods, 103 headers,
    one-byte HTTP chunks, chunk extensions): the validator's CPU and wall time for its query."""
    from sn1.testing import make_wallet

    proc, ports = start_hostile(WIRE)
    try:
        wallet = make_wallet(os.path.join(tmp, "wallets"), "bench-validator")
        runs = asyncio.run(wire_rounds(wallet, ports, timeout))
    finally:
        proc.kill()
        proc.wait()
    print(f"\n## wire: one miner per shape, timeout {timeout:g}s (sn1/protocol/budget.py)")
    print("| shape | validator CPU s | wall s | status | why |\n|---|---:|---:|---|---|")
    for mode, cpu, wall, r in runs:
        print(f"| {mode} | {cpu:.2f} | {wall:.2f} | {r.status} | {r.message[:60]} |")


# ---- 3. miner latency under an idle-connection flood --------------------------------------------

def attacker(port: int, n: int, sources: int, seconds: float, churn: bool) -> None:
    """Open ``n`` idle connections to ``port`` from ``sources`` addresses (127.0.2.2...; never the
    validator's 127.0.0.1) and hold them for ``seconds``; with ``churn`` reopen at once every one
    the miner closes (a connection flood)."""
    sel = selectors.DefaultSelector()
    addrs = [f"127.0.{2 + i // 250}.{2 + i % 250}" for i in range(sources)]
    reopened = 0

    def open_one(i):
        s = socket.socket()
        s.bind((addrs[i % len(addrs)], 0))
        s.setblocking(False)
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        sel.register(s, selectors.EVENT_READ, i)

    for i in range(n):
        open_one(i)
    print("ready", flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for key, _ in sel.select(0.1):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:                      # closed by the miner
                sel.unregister(s)
                s.close()
                if churn:
                    open_one(key.data)
                    reopened += 1
    print(json.dumps({"reopened": reopened}), flush=True)


async def latencies(wallet, neuron, n: int) -> list[float]:
    from sn1.validator.query import MinerClient

    out = []
    async with MinerClient(wallet) as client:
        await client.query([neuron], MSG, timeout=5)       # warm-up
        for _ in range(n):
            t = time.perf_counter()
            [r] = await client.query([neuron], MSG, timeout=5)
            out.append(time.perf_counter() - t if r.status == "ok" else float("inf"))
    return out


def health(port: int) -> dict:
    import httpx

    return httpx.get(f"http://127.0.0.1:{port}/health", timeout=5, trust_env=False).json()


def part_miner(tmp: str, n: int, idle: int) -> dict:
    from sn1.chain.sandbox import SandboxChain
    from sn1.testing import free_port, make_wallet, stop_processes, wait_for_port

    sandbox, wallets = os.path.join(tmp, "sandbox"), os.path.join(tmp, "wallets")
    chain = SandboxChain.init(sandbox, 1, tempo=1000, block_time=0.05)
    val = make_wallet(wallets, "val")
    chain.register(val, stake=1000)
    chain.register(make_wallet(wallets, "miner"))
    port = free_port()
    miner = subprocess.Popen(
        [sys.executable, "-m", "sn1.cli", "miner", "--backend", "phrase", "--neuron.phrase", "Here.",
         "--subtensor.network", "sandbox", "--sandbox.path", sandbox, "--netuid", "1", "--wallet.path", wallets,
         "--wallet.name", "miner", "--axon.ip", "127.0.0.1", "--axon.port", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = {}
    try:
        wait_for_port(port, proc=miner)
        deadline = time.monotonic() + 30
        while True:
            neuron = chain.metagraph().by_hotkey(make_wallet(wallets, "miner").hotkey.ss58_address)
            if neuron.endpoint or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        rows["idle-free"] = (asyncio.run(latencies(val, neuron, n)), None, None)
        for churn, sources in ((False, 1), (False, 100), (True, 1), (True, 100)):
            label = (f"{idle} idle from {sources} address{'es' if sources > 1 else ''}"
                     + (", reopened as closed (flood)" if churn else ", held"))
            att = subprocess.Popen([sys.executable, __file__, "--attacker", str(port), str(idle), str(sources),
                                    "600", str(int(churn))], stdout=subprocess.PIPE, text=True, cwd=ROOT)
            try:
                assert att.stdout.readline().strip() == "ready"
                time.sleep(1.0)
                lat = asyncio.run(latencies(val, neuron, n))
                conns = health(port).get("connections", {})
            finally:
                att.terminate()
                att.wait()
            rows[label] = (lat, conns, None)
            time.sleep(1.5)     # let the miner's side settle
        rows["idle-free, again (noise check)"] = (asyncio.run(latencies(val, neuron, n)), None, None)
    finally:
        stop_processes([miner])
    base = statistics.median(rows["idle-free"][0])
    print(f"\n## miner: signed request latency (phrase backend, new connection each), {n} requests")
    print("| attack | median ms | p90 ms | max ms | x idle-free (median) | miner's view at the end |\n"
          "|---|---:|---:|---:|---:|---|")
    for label, (lat, conns, _) in rows.items():
        lat = sorted(lat)
        med = statistics.median(lat)
        p90 = lat[int(0.9 * (len(lat) - 1))]
        view = "" if not conns else (f"open {conns['open']}, idle {conns['idle']}, evicted {conns['evicted']}, "
                                     f"refused {conns['refused']}")
        print(f"| {label} | {med * 1000:.1f} | {p90 * 1000:.1f} | {lat[-1] * 1000:.1f} | {med / base:.2f} | {view} |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", nargs="+", default=["reader", "step", "wire", "miner"],
                    choices=["reader", "step", "wire", "miner"])
    ap.add_argument("--size", type=int, default=4 << 20, help="bytes per reader case")
    ap.add_argument("--rounds", type=int, default=3, help="step rounds")
    ap.add_argument("--timeout", type=float, default=5.0, help="step timeout, seconds")
    ap.add_argument("--no_freeze", action="store_true", help="step: skip gc.freeze() after the warm-up")
    ap.add_argument("--requests", type=int, default=40, help="miner latency requests per row")
    ap.add_argument("--idle", type=int, default=2000, help="idle connections the attacker holds")
    ap.add_argument("--attacker", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.attacker:
        port, n, sources, seconds, churn = args.attacker
        return attacker(int(port), int(n), int(sources), float(seconds), churn == "1")
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="sn1-hostile-") as tmp:
        if "reader" in args.parts:
            part_reader(args.size)
        if "step" in args.parts:
            part_step(tmp, args.rounds, args.timeout, not args.no_freeze)
        if "wire" in args.parts:
            part_wire(tmp, args.timeout)
        if "miner" in args.parts:
            part_miner(tmp, args.requests, args.idle)


if __name__ == "__main__":
    main()
