"""A gateway started before its miners (issue 20, item 3): /health says nothing can be served and
why, a request gets a 503 that says when to retry, and a miner that starts serving is routed to
within seconds (not at the next `--gateway.metagraph_refresh`, 60 s by default).

Real processes: a sandbox chain, `sn1 gateway`, then `sn1 miner --backend echo`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from sn1.testing import ROOT, free_port, make_wallet, run_sn1, stop_processes, wait_for_port


@pytest.fixture
def empty_subnet(tmp_path):
    from sn1.chain.sandbox import SandboxChain

    chain = SandboxChain.init(tmp_path / "sandbox", 1, tempo=1000, block_time=0.05)
    wallets = tmp_path / "wallets"
    chain.register(make_wallet(wallets, "operator"))
    common = ["--subtensor.network", "sandbox", "--sandbox.path", str(tmp_path / "sandbox"),
              "--wallet.path", str(wallets)]
    procs = []
    yield chain, wallets, common, procs
    stop_processes(procs)


def _start(procs, log, *args):
    proc = subprocess.Popen([sys.executable, "-m", "sn1.cli", *args], stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    procs.append(proc)
    return proc


def test_gateway_before_its_miners(empty_subnet, tmp_path):
    chain, wallets, common, procs = empty_subnet
    port = free_port()
    gw = _start(procs, tmp_path / "gateway.log", "gateway", *common, "--wallet.name", "operator",
                "--gateway.ip", "127.0.0.1", "--gateway.port", str(port), "--gateway.path", str(tmp_path / "gw"))
    wait_for_port(port, timeout=60, proc=gw)
    url = f"http://127.0.0.1:{port}"
    key = run_sn1("gateway", "keys", "create", "--name", "alice", "--gateway.path", tmp_path / "gw",
                  check=True).stdout.strip().splitlines()[-1]

    health = httpx.get(url + "/health", timeout=10)
    assert health.status_code == 503
    h = health.json()
    assert h["status"] == "unavailable" and h["miners"] == 0
    assert h["reason"].startswith("no miner is serving: none of the 1 neurons of the metagraph"), h
    assert "serves an endpoint; the gateway looks again in" in h["reason"]
    assert 1 <= h["next_metagraph_read_s"] <= 5

    r = httpx.post(url + "/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, timeout=10,
                   json={"model": "sn1", "messages": [{"role": "user", "content": "hello there"}]})
    assert r.status_code == 503
    retry = int(r.headers["retry-after"])
    assert 1 <= retry <= 5
    message = r.json()["error"]["message"]
    assert message.startswith("no miner is serving: ") and message.endswith("s: retry then"), message

    # A miner starts serving: the gateway routes to it within seconds.
    make_wallet(wallets, "miner")
    run_sn1("sandbox", "register", "--wallet.name", "miner", "--wallet.path", wallets,
            "--sandbox.path", tmp_path / "sandbox", check=True)
    mport = free_port()
    miner = _start(procs, tmp_path / "miner.log", "miner", "--backend", "echo", *common, "--wallet.name", "miner",
                   "--axon.ip", "127.0.0.1", "--axon.port", str(mport))
    wait_for_port(mport, timeout=60, proc=miner)
    t0 = time.monotonic()
    while not chain.metagraph().neurons[1].endpoint:     # the miner publishes right after listening
        assert time.monotonic() - t0 < 30, "the miner never published its endpoint"
        time.sleep(0.1)
    t0 = time.monotonic()
    deadline = t0 + 30        # half the default --gateway.metagraph_refresh
    while (health := httpx.get(url + "/health", timeout=10)).status_code != 200:
        assert time.monotonic() < deadline, health.json()
        time.sleep(0.2)
    print(f"routed to the new miner {time.monotonic() - t0:.1f}s after it published its endpoint "
          f"(load {os.getloadavg()[0]:.1f})")
    h = health.json()
    assert h["status"] == "ok" and h["miners"] == 1 and "reason" not in h
    r = httpx.post(url + "/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, timeout=30,
                   json={"model": "sn1", "messages": [{"role": "user", "content": "hello there"}]})
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == "hello there"


def test_gateway_uids_with_no_server_say_so(empty_subnet, tmp_path):
    chain, wallets, common, procs = empty_subnet
    port = free_port()
    gw = _start(procs, tmp_path / "gateway.log", "gateway", *common, "--wallet.name", "operator",
                "--gateway.ip", "127.0.0.1", "--gateway.port", str(port), "--gateway.path", str(tmp_path / "gw"),
                "--gateway.uids", "3", "4")
    wait_for_port(port, timeout=60, proc=gw)
    health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=10)
    assert health.status_code == 503
    assert "none of the uids in --gateway.uids (3, 4) serves an endpoint" in health.json()["reason"]
