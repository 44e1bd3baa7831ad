"""`sn1 demo` (what `make demo` runs): a whole subnet on this machine.

A sandbox chain, one validator on the embedded LLM, four miners (two
embedded-LLM miners with different settings, echo and phrase) and the
gateway in front of them (its URL and an API key are printed). The validator
runs ``--steps`` steps; then consensus runs and the leaderboard is printed.
Everything is real: separate processes talking signed HTTP on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

from .config import SEED, at_least, expand, positive

NETUID = 1
BLOCK_TIME = 0.5      # seconds per sandbox block: a 100-block epoch in under a minute
TEMPO = 20            # consensus every 10 s
EPOCH_LENGTH = 10     # the validator sets weights every 5 s

# (name, kind shown on the leaderboard, sn1 miner arguments)
MINERS = [
    ("smol-precise", "llama.cpp SmolLM2, t=0.2",
     ["--backend", "llamacpp", "--neuron.temperature", "0.2", "--neuron.max_tokens", "96"]),
    ("smol-long", "llama.cpp SmolLM2, t=0.3, long",
     ["--backend", "llamacpp", "--neuron.temperature", "0.3", "--neuron.max_tokens", "192"]),
    ("echo", "echo (repeats the question)", ["--backend", "echo"]),
    ("phrase", "phrase (always the same text)",
     ["--backend", "phrase", "--neuron.phrase", "I am a miner and I always say this."]),
]


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser("demo", help="run a whole subnet on this machine and print a leaderboard",
                              description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=at_least(1), default=os.environ.get("DEMO_STEPS", "10"),
                   help="validator steps ($DEMO_STEPS or 10)")
    p.add_argument("--path", default="~/.sn1/demo", help="folder for the demo's chain, wallets and logs "
                   "(wiped at start)")
    p.add_argument("--timeout", type=positive(), default=os.environ.get("DEMO_TIMEOUT", "12"),
                   help="validator timeout per step in seconds ($DEMO_TIMEOUT or 12; more on a busy machine)")
    p.add_argument("--seed", type=SEED, default=1, help="seed of the validator's task and miner choices")
    p.add_argument("--keep", action="store_true",
                   help="after the leaderboard, keep the miners and the gateway running (Ctrl-C stops them)")
    p.set_defaults(func=run)
    return p


def _free_port() -> int:
    from .testing import free_port

    return free_port()


class Procs:
    """Child processes that are always stopped, even on Ctrl-C."""

    def __init__(self, logdir: str):
        self.logdir = logdir
        self.items: list[tuple[str, subprocess.Popen]] = []

    def start(self, name: str, args: list[str], relay=None) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "sn1.cli", *args]
        logf = open(os.path.join(self.logdir, f"{name}.log"), "w")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
        if relay is None:
            proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env)
        else:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                    text=True, bufsize=1)

            def pump():
                for line in proc.stdout:
                    logf.write(line)
                    logf.flush()
                    relay(line.rstrip("\n"))
            threading.Thread(target=pump, daemon=True).start()
        self.items.append((name, proc))
        return proc

    def stop(self) -> None:
        from .testing import stop_processes

        stop_processes([p for _, p in self.items])


def say(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def run(args) -> int:
    from .chain.sandbox import SandboxChain
    from .testing import make_wallet, wait_for_port

    from .errors import UsageError

    # `kill` (SIGTERM) stops the demo like Ctrl-C: through the finally below, which stops
    # the miners, the gateway and the validator instead of leaving them running.
    signal.signal(signal.SIGTERM, _interrupt)
    root = expand(args.path)
    marker = os.path.join(root, ".sn1-demo")
    if os.path.isdir(root) and os.listdir(root):
        if not os.path.exists(marker):   # never wipe a folder the demo did not make
            raise UsageError(f"--path {root} exists and was not made by `sn1 demo`; choose another folder")
        shutil.rmtree(root)
    sandbox, wallets, logs = (os.path.join(root, d) for d in ("sandbox", "wallets", "logs"))
    os.makedirs(logs)
    open(marker, "w").close()
    t0 = time.monotonic()

    say(f"sandbox chain in {sandbox} ({BLOCK_TIME}s blocks, consensus every {TEMPO} blocks)")
    chain = SandboxChain.init(sandbox, NETUID, tempo=TEMPO, block_time=BLOCK_TIME,
                              weights_rate_limit=EPOCH_LENGTH // 2, immunity_period=1000)
    common = ["--subtensor.network", "sandbox", "--sandbox.path", sandbox, "--netuid", str(NETUID),
              "--wallet.path", wallets]

    v_wallet = make_wallet(wallets, "validator", "default")
    v_uid = chain.register(v_wallet, stake=1000.0)
    say(f"registered validator as uid {v_uid} with 1000 TAO stake")
    kinds: dict[int, str] = {}
    procs = Procs(logs)
    try:
        started = []
        for name, kind, extra in MINERS:
            w = make_wallet(wallets, name, "default")
            uid = chain.register(w, stake=0.0)
            kinds[uid] = kind
            port = _free_port()
            proc = procs.start(f"miner-{name}", ["miner", *extra, *common, "--wallet.name", name,
                                                 "--wallet.hotkey", "default", "--axon.port", str(port)])
            started.append((name, port, proc))
            say(f"miner uid {uid}: {kind} on 127.0.0.1:{port}")
        for name, port, proc in started:
            try:
                wait_for_port(port, timeout=120, proc=proc)
            except AssertionError:
                raise UsageError(f"miner {name} did not start; see {os.path.join(logs, f'miner-{name}.log')}")
        gateway = start_gateway(procs, common, root)
        say("all miners are listening; starting the validator (loads the embedded LLM and MiniLM)")

        def relay(line: str) -> None:
            if "sn1.validator" in line or "ERROR" in line or "Traceback" in line:
                print("  " + line, flush=True)

        full_path = os.path.join(root, "validator")
        html = os.path.join(root, "leaderboard.html")

        def report() -> None:
            print_leaderboard(chain, v_uid, kinds, full_path, html)
            say(f"events log: {os.path.join(full_path, 'events.jsonl')}")
            say(f"process logs: {logs}")
            say(f"done in {time.monotonic() - t0:.0f}s")

        validator_args = [
            "validator", *common, "--wallet.name", "validator", "--wallet.hotkey", "default",
            "--neuron.full_path", full_path,
            "--neuron.timeout", str(args.timeout), "--neuron.epoch_length", str(EPOCH_LENGTH),
            "--neuron.sample_size", "50", "--neuron.axon_off", "--wandb.off",
            "--neuron.query_max_tokens", "192", "--neuron.seed", str(args.seed),
            # A handful of answers per step verify in well under a second on llama.cpp; the
            # transformers rows pay off at dozens of miners and would add a first-run de-quantisation.
            "--neuron.verify_engine", "llama.cpp",
        ]
        vproc = procs.start("validator", [*validator_args, "--neuron.max_steps", str(args.steps)], relay=relay)
        rc = vproc.wait()
        if rc != 0:
            say(f"the validator exited with code {rc}; see {os.path.join(logs, 'validator.log')}")
            return 1
        # Let one more consensus epoch run on the final weights.
        say("validator finished; waiting one consensus epoch for incentive")
        time.sleep(TEMPO * BLOCK_TIME + 1)
        if args.keep:
            report()
            # The validator goes on (same folder, no step limit), so a miner you add is scored.
            procs.start("validator-live", validator_args)
            print_next_steps(root, gateway, kept=True)
            say("--keep: the validator, the miners and the gateway keep running; Ctrl-C stops them")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                say("stopping")
            return 0
    finally:
        procs.stop()
    report()
    print_next_steps(root, gateway, kept=False)
    return 0


def print_next_steps(root: str, gateway: dict, kept: bool) -> None:
    """What to do now: the commands, with this demo's own paths."""
    home = os.path.expanduser("~")
    short = root if not root.startswith(home + os.sep) else "~" + root[len(home):]
    sandbox, wallets, validator = (os.path.join(short, d) for d in ("sandbox", "wallets", "validator"))
    chain = f"--subtensor.network sandbox --sandbox.path {sandbox} --netuid {NETUID}"
    say("next steps:")
    if kept:
        say(f"  chat page: {gateway['url']}/   (API key: {gateway['key']}; the OpenAI API is {gateway['url']}/v1)")
    else:
        say(f"  the subnet and its gateway ({gateway['url']}) are stopped now; `sn1 demo --keep` keeps them "
            f"running after the leaderboard, with the chat page and the API key")
    say(f"  leaderboard again, live: sn1 leaderboard --neuron.full_path {validator} --watch")
    say(f"  HTML report with charts: {os.path.join(short, 'leaderboard.html')} "
        f"(sn1 leaderboard --neuron.full_path {validator} --html FILE)")
    say(f"  logs: {os.path.join(short, 'logs')}")
    say("  run your own miner against it" + ("" if kept else " (with `sn1 demo --keep` running)") + ":")
    say(f"    cp docs/examples/my_miner.py .    # or your own: docs/writing-a-miner.md")
    say(f"    btcli wallet create --wallet mine --wallet-hotkey default --wallet-path {wallets} --no-password")
    say(f"    sn1 sandbox register --sandbox.path {sandbox} --wallet.path {wallets} --wallet.name mine")
    say(f"    sn1 miner --backend my_miner:MyMiner {chain} --wallet.path {wallets} --wallet.name mine "
        f"--axon.port 8095 &")
    say(f"    sn1 leaderboard --neuron.full_path {validator}")
    say("  (README.md, \"Run your own miner against the demo\")")


def start_gateway(procs: "Procs", common: list[str], root: str) -> dict:
    """The gateway (signing as the validator's hotkey) with one API key; prints its URL and the key."""
    from .gateway import db, keys
    from .testing import wait_for_port

    path = os.path.join(root, "gateway")
    key, _ = keys.create(db.connect(path), "demo")
    port = _free_port()
    proc = procs.start("gateway", ["gateway", *common, "--wallet.name", "validator", "--wallet.hotkey", "default",
                                   "--gateway.ip", "127.0.0.1", "--gateway.port", str(port),
                                   "--gateway.path", path, "--gateway.metagraph_refresh", "5",
                                   "--gateway.validator_state", os.path.join(root, "validator")])
    wait_for_port(port, timeout=60, proc=proc)
    say(f"gateway (OpenAI-compatible API): http://127.0.0.1:{port}/v1  chat page: http://127.0.0.1:{port}/")
    say(f"gateway API key: {key}")
    return {"url": f"http://127.0.0.1:{port}", "key": key}


def print_leaderboard(chain, validator_uid: int, kinds: dict[int, str], full_path: str, html: str) -> None:
    """`sn1 leaderboard`'s table (sn1.validator.leaderboard) with what the chain holds, and its HTML report."""
    from .validator.leaderboard import add_chain_view, collect, render_text
    from .validator.leaderboard_html import render_html
    from .validator.state import atomic_write

    board = add_chain_view(collect(full_path, labels=kinds), chain, validator_uid)
    print()
    print(render_text(board))
    print()
    atomic_write(html, render_html(board).encode("utf-8"))
