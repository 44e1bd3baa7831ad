"""Run the shell commands a document shows, in the order it shows them (tests of README and docs)."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def section(path: Path, heading: str) -> str:
    """The text under ``heading`` (a markdown heading line, e.g. '## Trying it') up to the next of its level."""
    text = path.read_text()
    start = text.index(heading + "\n")
    level = heading.split()[0]
    nxt = re.search(rf"^{level} ", text[start + len(heading):], re.M)
    return text[start:start + len(heading) + (nxt.start() if nxt else len(text))]


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, re.M | re.S)


def commands(block: str) -> list[str]:
    """One string per command: continuation lines joined, blank and comment-only lines dropped."""
    out, cur = [], ""
    for line in block.splitlines():
        cur += line[:-1] + " " if line.endswith("\\") else line
        if line.endswith("\\"):
            continue
        if cur.strip() and not cur.lstrip().startswith("#"):
            out.append(cur.strip())
        cur = ""
    return out


def background(cmd: str) -> str | None:
    """The command without its trailing ``&`` if it is run in the background, else None."""
    m = re.search(r"\s&\s*(#.*)?$", " " + cmd)
    return cmd[:m.start()].rstrip() if m else None


def env(**extra) -> dict:
    """The user's shell: `sn1`, `btcli` and `python` are the ones of this test's virtual environment."""
    bin_dir = os.path.dirname(sys.executable)
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""), "PYTHONUNBUFFERED": "1",
            **extra}


def run(cmd: str, cwd, env: dict, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def start(cmd: str, cwd, env: dict, log: Path) -> subprocess.Popen:
    f = open(log, "w")
    return subprocess.Popen(["bash", "-c", "exec " + cmd], cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT,
                            start_new_session=True)


def wait_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exited with {proc.returncode}: {log.read_text()}"
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise AssertionError(f"nothing on port {port} after {timeout}s: {log.read_text()}")


def stop(procs) -> None:
    import signal

    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGINT)
    deadline = time.monotonic() + 60
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
