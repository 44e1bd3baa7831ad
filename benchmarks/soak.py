"""Does a validator's memory stay flat over hours? A soak run against fast no-LLM miners with churn.

A sandbox subnet on this machine: one validator (embedded LLM and relevance
model, as `sn1 validator` runs by default; ``--engine scripted`` for no LLM) and a few miners that run no LLM
(built-in echo and phrase backends, and strategy miners of
benchmarks/incentive.py), so the validator does steps as fast as it can. One
miner is stopped and restarted on the same port every ``--churn`` seconds.
Every ``--sample`` seconds the validator's RSS (from /proc) is recorded with
the step it is at; step times come from its log. At the end it prints the
samples, the RSS slope after ``--warmup`` minutes (least squares, MB/hour),
step-time percentiles per quarter of the run, failed steps and tracebacks.

    .venv/bin/python benchmarks/soak.py --minutes 60 [--path /tmp/sn1-soak] [--json out.json]
    .venv/bin/python benchmarks/soak.py --minutes 60 --engine scripted      # many more steps
    .venv/bin/python benchmarks/soak.py --minutes 10 --trace 120     # + tracemalloc diffs

``--trace N`` runs the validator under tracemalloc and writes, every N
seconds, the 25 allocation sites that grew most since the first snapshot
after warm-up to PATH/logs/tracemalloc.txt (slows the validator: use it to
find a leak, not to measure).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NETUID = 1
BLOCK_TIME = 0.5
TEMPO = 20
EPOCH_LENGTH = 10
# (name, how it starts): built-in backends and incentive.py strategy miners; none runs a model
MINERS = [
    ("echo", ["miner", "--backend", "echo"]),
    ("phrase", ["miner", "--backend", "phrase", "--neuron.phrase", "I am a miner and I always say this."]),
    ("article", ["script", "article"]),
    ("padded", ["script", "article_padded"]),
    ("numbers", ["script", "number_spam"]),
]
CHURN = "echo"
_STEP = re.compile(r"step (\d+) \S+: .*, ([0-9.]+)s$")


def rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def slope_per_hour(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) points, in MB per hour."""
    n = len(points)
    if n < 2:
        return float("nan")
    mx = sum(t for t, _ in points) / n
    my = sum(m for _, m in points) / n
    sxx = sum((t - mx) ** 2 for t, _ in points)
    sxy = sum((t - mx) * (m - my) for t, m in points)
    return sxy / sxx * 3600 if sxx else float("nan")


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def traced_validator(argv: list[str], every: float, warmup: float, out: str) -> int:
    """`sn1 validator ARGV` in this process under tracemalloc, writing growth reports to OUT."""
    import tracemalloc

    def watch():
        time.sleep(warmup)        # tracing starts after warm-up: model loading traced is 10x slower
        tracemalloc.start(12)
        time.sleep(every)
        base = tracemalloc.take_snapshot()
        flt = [tracemalloc.Filter(False, tracemalloc.__file__)]
        base = base.filter_traces(flt)
        while True:
            time.sleep(every)
            snap = tracemalloc.take_snapshot().filter_traces(flt)
            top = snap.compare_to(base, "traceback")[:25]
            with open(out, "a") as f:
                cur, peak = tracemalloc.get_traced_memory()
                f.write(f"\n=== {time.strftime('%H:%M:%S')} traced {cur / 1e6:.1f} MB (peak {peak / 1e6:.1f})\n")
                for st in top:
                    f.write(f"{st.size_diff / 1e6:+.2f} MB {st.count_diff:+d} blocks\n")
                    for line in st.traceback.format()[-8:]:
                        f.write("    " + line + "\n")
    threading.Thread(target=watch, daemon=True).start()
    from sn1.cli import main as sn1_main

    return sn1_main(["validator", *argv])


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run(args) -> dict:
    from sn1.chain.sandbox import SandboxChain
    from sn1.demo import Procs
    from sn1.testing import free_port, make_wallet, wait_for_port

    signal.signal(signal.SIGTERM, _interrupt)   # `kill` stops the miners and the validator too
    root = os.path.abspath(args.path)
    if os.path.isdir(root):
        if not os.path.exists(os.path.join(root, ".sn1-soak")):
            raise SystemExit(f"--path {root} exists and was not made by soak.py")
        shutil.rmtree(root)
    sandbox, wallets, logs = (os.path.join(root, d) for d in ("sandbox", "wallets", "logs"))
    os.makedirs(logs)
    open(os.path.join(root, ".sn1-soak"), "w").close()
    chain = SandboxChain.init(sandbox, NETUID, tempo=TEMPO, block_time=BLOCK_TIME,
                              weights_rate_limit=EPOCH_LENGTH // 2, immunity_period=1000)
    common = ["--subtensor.network", "sandbox", "--sandbox.path", sandbox, "--netuid", str(NETUID),
              "--wallet.path", wallets]
    chain.register(make_wallet(wallets, "validator"), stake=1000.0)
    procs = Procs(logs)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}

    def start_miner(name: str, how: list[str], port: int, generation: int):
        mine = ["--wallet.name", name, "--wallet.hotkey", "default", "--axon.port", str(port), *common]
        logf = open(os.path.join(logs, f"miner-{name}-{generation}.log"), "w")
        if how[0] == "script":
            cmd = [sys.executable, os.path.join(HERE, "incentive.py"), "miner", how[1], *mine]
        else:
            cmd = [sys.executable, "-m", "sn1.cli", *how, *mine]
        proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env)
        procs.items.append((f"miner-{name}", proc))
        return proc

    miners: dict[str, tuple[int, subprocess.Popen]] = {}
    samples: list[dict] = []
    restarts = 0
    try:
        for name, _ in MINERS:
            chain.register(make_wallet(wallets, name), stake=0.0)
        for name, how in MINERS:
            port = free_port()
            proc = start_miner(name, how, port, 0)
            wait_for_port(port, timeout=180, proc=proc)
            miners[name] = (port, proc)
        full_path = os.path.join(root, "validator")
        vargs = [*common, "--wallet.name", "validator", "--wallet.hotkey", "default",
                 "--neuron.full_path", full_path, "--neuron.timeout", str(args.timeout),
                 "--neuron.epoch_length", str(EPOCH_LENGTH), "--neuron.sample_size", "50",
                 "--neuron.axon_off", "--wandb.off", "--neuron.query_max_tokens", "192",
                 "--neuron.seed", "1", "--llm.engine", args.engine]
        vlog_path = os.path.join(logs, "validator.log")
        vlog = open(vlog_path, "w")
        if args.trace:
            cmd = [sys.executable, os.path.abspath(__file__), "validator", str(args.trace),
                   str(args.warmup * 60), os.path.join(logs, "tracemalloc.txt"), *vargs]
        else:
            cmd = [sys.executable, "-m", "sn1.cli", "validator", *vargs]
        vproc = subprocess.Popen(cmd, stdout=vlog, stderr=subprocess.STDOUT, env=env)
        procs.items.append(("validator", vproc))
        t0 = time.monotonic()
        end = t0 + args.minutes * 60
        next_churn = t0 + args.churn
        next_sample = t0
        print(f"[soak] validator pid {vproc.pid}; {args.minutes:g} min, sample every {args.sample:g} s, "
              f"{CHURN} restarts every {args.churn:g} s; logs in {logs}", flush=True)
        while time.monotonic() < end:
            if vproc.poll() is not None:
                raise SystemExit(f"validator exited with {vproc.returncode}; see {vlog_path}")
            now = time.monotonic()
            if now >= next_sample:
                steps = _steps(vlog_path)
                mb = rss_mb(vproc.pid)
                s = {"t": round(now - t0, 1), "rss_mb": round(mb, 1) if mb else None,
                     "step": steps[-1][0] if steps else 0}
                samples.append(s)
                print(f"[soak] t={s['t']:7.0f}s step {s['step']:5d} rss {s['rss_mb']} MB", flush=True)
                next_sample += args.sample
            if now >= next_churn:
                port, proc = miners[CHURN]
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
                restarts += 1
                proc = start_miner(CHURN, dict(MINERS)[CHURN], port, restarts)
                miners[CHURN] = (port, proc)
                next_churn += args.churn
            time.sleep(1.0)
    except KeyboardInterrupt:
        print("[soak] interrupted: stopping early", flush=True)
    finally:
        procs.stop()
    steps = _steps(vlog_path)
    text = open(vlog_path, errors="replace").read()
    failed = text.count("step failed")
    tracebacks = text.count("Traceback")
    after = [(s["t"], s["rss_mb"]) for s in samples if s["t"] >= args.warmup * 60 and s["rss_mb"]]
    slope = slope_per_hour(after)
    times = [t for _, t in steps]
    quarters = []
    for i in range(4):
        part = times[i * len(times) // 4:(i + 1) * len(times) // 4]
        quarters.append({"steps": len(part), "p50_s": pct(part, 0.5), "p90_s": pct(part, 0.9),
                         "max_s": max(part) if part else float("nan")})
    rss = [m for _, m in after]
    out = {"minutes": args.minutes, "steps": len(steps), "failed_steps": failed, "tracebacks": tracebacks,
           "miner_restarts": restarts, "warmup_min": args.warmup,
           "rss_after_warmup_mb": {"first": rss[0] if rss else None, "last": rss[-1] if rss else None,
                                   "min": min(rss) if rss else None, "max": max(rss) if rss else None},
           "rss_slope_mb_per_hour": round(slope, 1), "step_time_quarters": quarters, "samples": samples,
           "load": os.getloadavg()}
    print(f"\n[soak] {len(steps)} steps in {args.minutes:g} min, {failed} failed, {tracebacks} tracebacks, "
          f"{restarts} miner restarts; load {os.getloadavg()[0]:.2f}")
    if rss:
        print(f"[soak] RSS after {args.warmup:g} min warm-up: first {rss[0]:.0f} MB, last {rss[-1]:.0f} MB, "
              f"min {min(rss):.0f}, max {max(rss):.0f}; slope {slope:+.1f} MB/hour")
    for i, q in enumerate(quarters):
        print(f"[soak] quarter {i + 1}: {q['steps']} steps, step time p50 {q['p50_s']:.2f} s, "
              f"p90 {q['p90_s']:.2f} s, max {q['max_s']:.2f} s")
    return out


def _steps(log_path: str) -> list[tuple[int, float]]:
    out = []
    try:
        with open(log_path, errors="replace") as f:
            for line in f:
                m = _STEP.search(line.rstrip())
                if m:
                    out.append((int(m.group(1)), float(m.group(2))))
    except OSError:
        pass
    return out


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["validator"]:     # internal: the validator under tracemalloc
        return traced_validator(argv[4:], float(argv[1]), float(argv[2]), argv[3])
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=10.0,
                   help="how long the validator runs (10 under `make bench`; the recorded soak ran 60)")
    p.add_argument("--path", default="/tmp/sn1-soak", help="folder for the run (wiped at start)")
    p.add_argument("--sample", type=float, default=30.0, help="seconds between RSS samples")
    p.add_argument("--churn", type=float, default=90.0, help="seconds between restarts of one miner")
    p.add_argument("--warmup", type=float, default=10.0, help="minutes left out of the RSS slope")
    p.add_argument("--timeout", type=float, default=5.0, help="validator timeout per step")
    p.add_argument("--trace", type=float, default=0.0,
                   help="run the validator under tracemalloc, reporting growth every TRACE seconds")
    p.add_argument("--engine", default="llamacpp",
                   help="the validator's LLM engine (--llm.engine): llamacpp (the embedded model) or scripted "
                        "(no model: many more steps, the validator's own memory only)")
    p.add_argument("--json", help="write the summary and samples here")
    args = p.parse_args(argv)
    out = run(args)
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(out, f, indent=1)
        os.replace(tmp, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
