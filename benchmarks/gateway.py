"""Gateway benchmark: OpenAI-SDK streams through `sn1 gateway` vs straight to the miner.

Real processes on a sandbox subnet: mock miners (one word every ``--delay``
seconds, a fast model's pace, so the model is not the bottleneck), one
gateway in front of them, and a second gateway in front of ``--dead`` miners
that are published on chain but not listening plus one live miner. Prints:

- time to first token (TTFT) p50/p99, direct and through the gateway, and what
  the gateway adds, for N concurrent streams (``--clients``);
- tokens/s per stream after the first token, direct and through the gateway, and the ratio;
- ``--streams`` concurrent streams through the gateway: how many failed, and the
  gateway's CPU seconds (user+sys) per 1,000 chunks relayed;
- failover: TTFT of requests whose first miner(s) were dead vs those that hit
  the live miner first (from the gateway's records).

    python benchmarks/gateway.py [--clients 1 10 50] [--requests 6] [--tokens 64] [--streams 200]

With ``--replicas N`` it measures the shared-state path instead: a real ``redis-server`` on a
free port, one gateway in the default SQLite mode, and N gateway replicas on
``--gateway.redis_url``, all in front of the same mock miners. Prints:

- the Redis store's own cost per request, in process (key lookup, reused for 0.5 s; admission;
  settlement: two round trips to Redis), p50/p99, and each gateway's CPU per request;
- TTFT p50/p99 at each ``--clients`` count through the SQLite gateway, one Redis replica (same
  load: the difference is what the Redis path adds) and the N replicas with clients spread over them;
- the exactness check: a 60-requests-per-minute key, ``--burst`` (300) concurrent requests spread
  over the N replicas: how many were admitted (must be 60) and how many got 429 with Retry-After.

    python benchmarks/gateway.py --replicas 3 [--clients 1 10 50] [--requests 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))] if xs else float("nan")


async def one_stream(client, n_tokens: int, out: dict) -> None:
    t0 = time.perf_counter()
    first = last = None
    tokens = chunks = 0
    try:
        stream = await client.chat.completions.create(
            model="sn1", messages=[{"role": "user", "content": "go"}], stream=True, max_tokens=n_tokens)
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                now = time.perf_counter()
                first = first or now
                last = now
                chunks += 1
                tokens += getattr(chunk, "n_tokens", None) or 1
    except Exception as e:      # counted, never hidden
        out.setdefault("errors", []).append(f"{type(e).__name__}: {e}"[:200])
        return
    out.setdefault("ttft", []).append(first - t0)
    out["chunks"] = out.get("chunks", 0) + chunks
    if last > first and tokens > 1:
        out.setdefault("tps", []).append((tokens - 1) / (last - first))


async def run_clients(clients, n: int, requests: int, n_tokens: int) -> dict:
    out: dict = {}

    async def worker(i):
        for _ in range(requests):
            await one_stream(clients[i % len(clients)], n_tokens, out)

    await asyncio.gather(*(worker(i) for i in range(n)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 10, 50])
    ap.add_argument("--requests", type=int, default=6, help="streams per client and mode")
    ap.add_argument("--tokens", type=int, default=64, help="tokens per answer")
    ap.add_argument("--delay", type=float, default=0.005, help="mock miner's seconds per word")
    ap.add_argument("--streams", type=int, default=200)
    ap.add_argument("--dead", type=int, default=10)
    ap.add_argument("--failover-requests", type=int, default=150)
    ap.add_argument("--replicas", type=int, default=0,
                    help="measure the Redis path (--gateway.redis_url) with this many replicas instead")
    ap.add_argument("--burst", type=int, default=300, help="with --replicas: requests of the exactness check")
    args = ap.parse_args()

    import httpx
    import openai
    import psutil

    from sn1.chain.sandbox import SandboxChain
    from sn1.gateway import db, keys
    from sn1.protocol.auth import BtAuth
    from sn1.testing import free_port, make_wallet, stop_processes, wait_for_port

    tmp = tempfile.mkdtemp(prefix="sn1-bench-gateway-")
    wallets, sandbox = os.path.join(tmp, "wallets"), os.path.join(tmp, "sandbox")
    chain = SandboxChain.init(sandbox, 1, tempo=1000, block_time=1.0)
    operator = make_wallet(wallets, "operator")
    chain.register(operator, stake=1000.0)
    common = ["--subtensor.network", "sandbox", "--sandbox.path", sandbox, "--netuid", "1", "--wallet.path", wallets]
    procs, miners = [], []
    log = open(os.path.join(tmp, "procs.log"), "w")

    def start(*a):
        p = subprocess.Popen([sys.executable, "-m", "sn1.cli", *a], stdout=log, stderr=subprocess.STDOUT)
        procs.append(p)
        return p

    try:
        for i in range(2):
            w = make_wallet(wallets, f"m{i}")
            uid = chain.register(w)
            port = free_port()
            p = start("miner", "--backend", "mock", "--neuron.mock_delay", str(args.delay), *common,
                      "--wallet.name", f"m{i}", "--axon.ip", "127.0.0.1", "--axon.port", str(port),
                      "--neuron.max_concurrent", "256", "--neuron.max_queue", "512")
            miners.append((uid, w.hotkey.ss58_address, port, p))
        dead = []
        for i in range(args.dead):
            w = make_wallet(wallets, f"dead{i}")
            dead.append(chain.register(w))
            chain.serve(w, "127.0.0.1", free_port())
        for _, _, port, p in miners:
            wait_for_port(port, timeout=120, proc=p)
        if args.replicas:
            return replicas_bench(args, tmp, common, start, [m[0] for m in miners])
        gws = {}
        for name, uids in (("main", [m[0] for m in miners]), ("failover", dead + [miners[0][0]])):
            port = free_port()
            path = os.path.join(tmp, f"gw-{name}")
            key, _ = keys.create(db.connect(path), "bench", rpm=10**9, tokens_per_day=10**12)
            p = start("gateway", *common, "--wallet.name", "operator", "--gateway.ip", "127.0.0.1",
                      "--gateway.port", str(port), "--gateway.path", path, "--gateway.max_attempts", str(args.dead + 1),
                      "--gateway.uids", *map(str, uids))
            wait_for_port(port, timeout=60, proc=p)
            gws[name] = (f"http://127.0.0.1:{port}/v1", key, p, path)

        limits = httpx.Limits(max_connections=2000, max_keepalive_connections=0)
        direct = [openai.AsyncOpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="-", max_retries=0,
                                     http_client=httpx.AsyncClient(auth=BtAuth(operator, hk), timeout=60,
                                                                   limits=limits))
                  for _, hk, port, _ in miners]
        url, key, gproc, _ = gws["main"]
        via = [openai.AsyncOpenAI(base_url=url, api_key=key, max_retries=0,
                                  http_client=httpx.AsyncClient(timeout=60, limits=limits))]

        print(f"mock miners: {args.tokens} tokens per answer at {args.delay * 1000:g} ms/token; "
              f"{args.requests} streams per client and mode, modes alternated\n")
        print(f"{'clients':>7} | {'TTFT p50 direct':>15} {'gateway':>8} {'added':>7} | {'TTFT p99 direct':>15} "
              f"{'gateway':>8} {'added':>7} | {'tok/s direct':>12} {'gateway':>8} {'ratio':>6} | errors")
        for n in args.clients:
            res = {"direct": {}, "gateway": {}}

            async def measure():
                for _ in range(2):        # alternate the modes so load drifts hit both
                    for mode, clients in (("direct", direct), ("gateway", via)):
                        r = await run_clients(clients, n, max(1, args.requests // 2), args.tokens)
                        for k, v in r.items():
                            res[mode][k] = res[mode].get(k, 0 if k == "chunks" else []) + v
            asyncio.run(measure())
            d, g = res["direct"], res["gateway"]
            ms = lambda x: f"{x * 1000:.1f}"  # noqa: E731
            errs = len(d.get("errors", [])) + len(g.get("errors", []))
            print(f"{n:>7} | {ms(pct(d['ttft'], 50)):>15} {ms(pct(g['ttft'], 50)):>8} "
                  f"{ms(pct(g['ttft'], 50) - pct(d['ttft'], 50)):>7} | {ms(pct(d['ttft'], 99)):>15} "
                  f"{ms(pct(g['ttft'], 99)):>8} {ms(pct(g['ttft'], 99) - pct(d['ttft'], 99)):>7} | "
                  f"{statistics.median(d['tps']):>12.1f} {statistics.median(g['tps']):>8.1f} "
                  f"{statistics.median(g['tps']) / statistics.median(d['tps']):>6.3f} | {errs}")
            for e in (d.get("errors", []) + g.get("errors", []))[:3]:
                print("   ", e)

        gp = psutil.Process(gproc.pid)

        async def burst():
            out: dict = {}
            await asyncio.gather(*(one_stream(via[0], args.tokens, out) for _ in range(args.streams)))
            return out

        c0 = sum(gp.cpu_times()[:2])
        t0 = time.perf_counter()
        out = asyncio.run(burst())
        wall = time.perf_counter() - t0
        cpu = sum(gp.cpu_times()[:2]) - c0
        fails = out.get("errors", [])
        print(f"\n{args.streams} concurrent streams through the gateway: {args.streams - len(fails)} ok, "
              f"{len(fails)} failed, {out.get('chunks', 0)} chunks in {wall:.2f}s; TTFT p50 "
              f"{pct(out.get('ttft', []), 50) * 1000:.1f} ms, p99 {pct(out.get('ttft', []), 99) * 1000:.1f} ms; "
              f"gateway CPU {cpu:.2f}s = {cpu / max(1, out.get('chunks', 0)) * 1000:.3f} s per 1,000 chunks")
        for e in fails[:3]:
            print("   ", e)

        furl, fkey, _, fpath = gws["failover"]
        fc = httpx.Client(timeout=60)
        for _ in range(args.failover_requests):
            r = fc.post(furl + "/chat/completions", headers={"authorization": f"Bearer {fkey}"},
                        json={"messages": [{"role": "user", "content": "go"}], "max_tokens": 2})
            assert r.status_code == 200, r.text
        time.sleep(1.0)     # records are written by a background thread
        rows = sqlite3.connect(os.path.join(fpath, "gateway.db")).execute(
            "SELECT ttft, failed_uids FROM records WHERE status = 'ok'").fetchall()
        by = {}
        for ttft, failed in rows:
            by.setdefault(len([u for u in failed.split(",") if u]), []).append(ttft)
        print(f"\nfailover ({args.dead} dead miners + 1 live, {len(rows)} requests; "
              "dead = published endpoint, connection refused):")
        base = statistics.median(by.get(0, [float("nan")]))
        for k in sorted(by):
            med = statistics.median(by[k])
            extra = f", {(med - base) * 1000 / k:.2f} ms per dead miner" if k else ""
            print(f"  {k:>2} dead before the live one: {len(by[k]):>4} requests, TTFT median {med * 1000:.1f} ms{extra}")
    finally:
        stop_processes(procs)
    return 0


def replicas_bench(args, tmp, common, start, uids) -> int:
    import shutil
    import signal

    import httpx
    import openai
    import psutil

    from sn1.gateway import db, keys
    from sn1.gateway.store_redis import RedisKeys, RedisStore
    from sn1.testing import free_port, wait_for_port

    server = shutil.which("redis-server")
    if server is None:
        print("redis-server is not installed (apt-get install -y redis-server)")
        return 1
    rport = free_port()
    rdir = os.path.join(tmp, "redis")
    os.makedirs(rdir)
    redis_proc = subprocess.Popen([server, "--port", str(rport), "--bind", "127.0.0.1", "--dir", rdir, "--save", "",
                                   "--appendonly", "yes", "--appendfsync", "everysec"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_for_port(rport, timeout=30, proc=redis_proc)
        url = f"redis://127.0.0.1:{rport}/0"
        admin = RedisKeys(url)
        rkey, rk = admin.create("bench", rpm=10**9, tokens_per_day=10**12)

        # 1. the store's own cost per request, in process
        async def store_cost(n=2000):
            s = RedisStore(url, replica="bench", hold=60.0)
            lat = []
            for _ in range(n):
                t0 = time.perf_counter()
                k = await s.lookup(rkey)
                g = await s.admit(k, 16)
                await s.settle(k, g, 16)
                lat.append(time.perf_counter() - t0)
            await s.close()
            return lat
        lat = asyncio.run(store_cost())
        print(f"load {os.getloadavg()[0]:.1f}: Redis store per request (lookup cached 0.5 s + admit + settle), "
              f"in process: p50 {pct(lat, 50) * 1e3:.3f} ms, p99 {pct(lat, 99) * 1e3:.3f} ms\n")

        # 2. TTFT through the gateways
        def gateway(name, *extra):
            port = free_port()
            p = start("gateway", *common, "--wallet.name", "operator", "--gateway.ip", "127.0.0.1",
                      "--gateway.port", str(port), "--gateway.path", os.path.join(tmp, f"gw-{name}"),
                      "--gateway.uids", *map(str, uids), *extra)
            wait_for_port(port, timeout=60, proc=p)
            return f"http://127.0.0.1:{port}/v1", psutil.Process(p.pid)

        skey, _ = keys.create(db.connect(os.path.join(tmp, "gw-sqlite")), "bench", rpm=10**9, tokens_per_day=10**12)
        sqlite_url, sqlite_proc = gateway("sqlite")
        redis_gws = [gateway(f"redis{i}", "--gateway.redis_url", url) for i in range(args.replicas)]
        redis_urls = [u for u, _ in redis_gws]
        procs_of = {"sqlite": [sqlite_proc], "redis": [redis_gws[0][1]], f"redis x{args.replicas}":
                    [p for _, p in redis_gws]}
        cpu_of = lambda ps: sum(sum(p.cpu_times()[:2]) for p in ps)  # noqa: E731
        cpu = {m: [0.0, 0] for m in procs_of}       # CPU seconds, requests
        limits = httpx.Limits(max_connections=2000, max_keepalive_connections=0)

        def clients(urls, key):
            return [openai.AsyncOpenAI(base_url=u, api_key=key, max_retries=0,
                                       http_client=httpx.AsyncClient(timeout=60, limits=limits)) for u in urls]
        modes = {"sqlite": clients([sqlite_url], skey), "redis": clients(redis_urls[:1], rkey),
                 f"redis x{args.replicas}": clients(redis_urls, rkey)}
        print(f"mock miners: {args.tokens} tokens per answer at {args.delay * 1000:g} ms/token; {args.requests} "
              f"streams per client and mode, modes alternated; TTFT in ms")
        print(f"{'clients':>7} {'load':>5} | {'p50 sqlite':>10} {'redis':>7} {'added':>6} "
              f"{'x' + str(args.replicas):>7} | {'p99 sqlite':>10} {'redis':>7} {'added':>6} "
              f"{'x' + str(args.replicas):>7} | errors")
        for n in args.clients:
            res = {m: {} for m in modes}

            async def measure():
                for _ in range(2):
                    for mode, cs in modes.items():
                        c0 = cpu_of(procs_of[mode])
                        r = await run_clients(cs, n, max(1, args.requests // 2), args.tokens)
                        cpu[mode][0] += cpu_of(procs_of[mode]) - c0
                        cpu[mode][1] += n * max(1, args.requests // 2)
                        for k, v in r.items():
                            res[mode][k] = res[mode].get(k, 0 if k == "chunks" else []) + v
            asyncio.run(measure())
            p = {m: (pct(r.get("ttft", []), 50) * 1e3, pct(r.get("ttft", []), 99) * 1e3) for m, r in res.items()}
            sq, rd, rx = p["sqlite"], p["redis"], p[f"redis x{args.replicas}"]
            errs = sum(len(r.get("errors", [])) for r in res.values())
            print(f"{n:>7} {os.getloadavg()[0]:>5.1f} | {sq[0]:>10.1f} {rd[0]:>7.1f} {rd[0] - sq[0]:>6.1f} "
                  f"{rx[0]:>7.1f} | {sq[1]:>10.1f} {rd[1]:>7.1f} {rd[1] - sq[1]:>6.1f} {rx[1]:>7.1f} | {errs}")
            for e in [e for r in res.values() for e in r.get("errors", [])][:3]:
                print("   ", e)

        print("gateway CPU (user+sys) per streamed request, all client counts: " + ", ".join(
            f"{m} {c / max(1, k) * 1e3:.2f} ms" for m, (c, k) in cpu.items()))

        # 3. exactness across the replicas
        ekey, _ = admin.create("exact", rpm=60, tokens_per_day=10**9)

        async def burst():
            async with httpx.AsyncClient(timeout=60, limits=limits) as c:
                return await asyncio.gather(*(
                    c.post(redis_urls[i % len(redis_urls)] + "/chat/completions",
                           headers={"authorization": f"Bearer {ekey}"},
                           json={"messages": [{"role": "user", "content": "go"}], "max_tokens": 1})
                    for i in range(args.burst)))
        t0 = time.perf_counter()
        got = asyncio.run(burst())
        wall = time.perf_counter() - t0
        codes = [r.status_code for r in got]
        retry = all("retry-after" in r.headers for r in got if r.status_code == 429)
        per = [sum(r.status_code == 200 for r in got[i::len(redis_urls)]) for i in range(len(redis_urls))]
        print(f"\nexactness: a 60 rpm key, {args.burst} concurrent requests over {args.replicas} replicas in "
              f"{wall:.2f}s: {codes.count(200)} admitted (by replica {per}), {codes.count(429)} refused 429 "
              f"(Retry-After on all: {retry}), other: {len(codes) - codes.count(200) - codes.count(429)} -> "
              f"{'EXACT' if codes.count(200) == 60 else 'NOT EXACT'}")
        return 0 if codes.count(200) == 60 else 1
    finally:
        redis_proc.send_signal(signal.SIGTERM)
        redis_proc.wait(10)


if __name__ == "__main__":
    sys.exit(main())
