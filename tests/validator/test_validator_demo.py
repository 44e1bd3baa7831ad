"""`sn1 demo` (what `make demo` runs): a whole subnet, then the leaderboard."""

import os
import re

from sn1.testing import run_sn1
from sn1.validator.events import read_events


def test_demo_runs_a_subnet_and_prints_the_leaderboard(tmp_path):
    path = tmp_path / "demo"
    proc = run_sn1("demo", "--path", path, timeout=900)     # the default 10 steps, as `make demo`
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "step 1 " in out and "step 10 " in out                      # progress while it runs
    board = out[out.index("Leaderboard"):].splitlines()
    rows = [line for line in board[3:] if re.match(r"\s*\d+\s", line)]
    kinds = " ".join(rows)
    for kind in ("llama.cpp SmolLM2, t=0.2", "llama.cpp SmolLM2, t=0.3, long", "echo", "phrase"):
        assert kind in kinds
    assert len(rows) == 4
    # score, weight, incentive are the last three columns; weights came from the chain.
    weights = [float(r.split()[-2]) for r in rows]
    incentives = [float(r.split()[-1]) for r in rows]
    assert abs(sum(weights) - 1.0) < 0.01 and abs(sum(incentives) - 1.0) < 0.01
    # Honest miners end above echo and phrase (rows are sorted by score).
    order = [next(k for k in ("t=0.2", "t=0.3", "echo", "phrase") if k in r) for r in rows]
    # (echo used to rank 3rd; since issue 10 it earns nothing, so its place against phrase varies)
    assert set(order[:2]) == {"t=0.2", "t=0.3"} and set(order[2:]) == {"echo", "phrase"}, "\n".join(rows)
    events = read_events(str(path / "validator" / "events.jsonl"))
    assert [e["step"] for e in events] == list(range(1, 11))
    assert str(path / "validator" / "events.jsonl") in out
    # It ends with what to do next (issue 20): the subnet is stopped, how to keep it, your own miner.
    tail = out[out.index("next steps:"):]
    assert "are stopped now" in tail and "sn1 demo --keep" in tail and "--backend my_miner:MyMiner" in tail
    assert (path / "leaderboard.html").exists()


def test_demo_never_wipes_a_folder_it_did_not_make(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "keep.txt").write_text("mine")
    proc = run_sn1("demo", "--path", precious, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "was not made by `sn1 demo`" in proc.stderr
    assert (precious / "keep.txt").read_text() == "mine"
    assert os.listdir(precious) == ["keep.txt"]


def test_demo_stopped_with_sigterm_stops_its_processes(tmp_path):
    import queue
    import signal
    import socket
    import subprocess
    import sys
    import threading
    import time

    from sn1.testing import ROOT

    proc = subprocess.Popen([sys.executable, "-m", "sn1.cli", "demo", "--steps", "50", "--path", str(tmp_path / "d")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    out, ports = [], []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            out.append(line)
            if m := re.search(r"on 127\.0\.0\.1:(\d+)$", line.strip()):
                ports.append(int(m.group(1)))
            if "starting the validator" in line:
                break
        assert len(ports) == 4, "".join(out)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 130, "".join(out)
    finally:
        if proc.poll() is None:
            proc.kill()
    for port in ports:                  # every miner stopped with the demo
        with socket.socket() as s:
            assert s.connect_ex(("127.0.0.1", port)) != 0, port
