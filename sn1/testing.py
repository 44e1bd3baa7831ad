"""Helpers for tests, benchmarks and `sn1 demo`: wallets, free ports, waiting for servers, running `sn1`.

(Kept in the package, like starlette.testclient, so every test folder and
benchmark can import them.)
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


_GIVEN: set[int] = set()
_RANDOM = random.Random()


def _ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (where outgoing connections get theirs)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768                 # Linux's default


def free_port() -> int:
    """A port nothing listens on, for a server a test starts next.

    Chosen below the kernel's ephemeral range: a port the kernel hands out (bind to 0) can be
    taken by any outgoing connection between this call and the server's bind, which, under a
    loaded CI machine, made a miner exit with "cannot listen". A port is never handed out
    twice by one process, so two servers started together do not get the same one.
    """
    low = _ephemeral_low()
    lo, hi = (20000, low - 1) if low > 21000 else (1025, 0)
    for _ in range(200 if hi else 0):
        port = _RANDOM.randint(lo, hi)
        if port in _GIVEN:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port
    with socket.socket() as s:       # no room below the ephemeral range: let the kernel choose
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _GIVEN.add(port)
    return port


def make_wallet(path, name: str, hotkey: str = "default"):
    """A bittensor.Wallet with unencrypted keys under ``path`` (created if missing)."""
    import bittensor as bt

    w = bt.Wallet(name=name, hotkey=hotkey, path=str(path))
    if not (Path(path) / name / "coldkeypub.txt").exists():
        w.create_new_coldkey(use_password=False, suppress=True)
    if not (Path(path) / name / "hotkeys" / hotkey).exists():
        w.create_new_hotkey(use_password=False, suppress=True)
    return w


def run_sn1(*args, check: bool = False, timeout: float = 120, env: dict | None = None,
            input: str | None = None) -> subprocess.CompletedProcess:
    """Run `python -m sn1.cli ARGS` and capture its output."""
    proc = subprocess.run(
        [sys.executable, "-m", "sn1.cli", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT,
        env={**os.environ, **(env or {})}, input=input,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"sn1 {' '.join(map(str, args))} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def wait_for_port(port: int, timeout: float = 60.0, proc: subprocess.Popen | None = None,
                  host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} before listening on {port}")
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listening on {host}:{port} after {timeout}s")


def stop_processes(procs, timeout: float = 10.0) -> None:
    """Terminate child processes, then kill those still alive after ``timeout`` seconds in all."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + timeout
    for p in procs:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def headless_chromium(width: int, height: int):
    """A selenium driver on the system's chromium (headless; nothing downloaded); the caller
    quits it. None when chromium or chromium-driver is not installed (`make test` installs them)."""
    import shutil

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        return None
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}"):
        opts.add_argument(arg)
    b = webdriver.Chrome(service=Service(driver), options=opts)
    b.set_page_load_timeout(30)
    return b


def wait_for_endpoints(chain, uids, timeout: float = 30.0) -> None:
    """Until every uid has published its endpoint on ``chain`` (AssertionError after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while any(not chain.metagraph().neurons[u].endpoint for u in uids):
        assert time.monotonic() < deadline, "miners never served their endpoints"
        time.sleep(0.1)
