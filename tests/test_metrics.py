"""Metrics on every role (issue 19, item 3): real miner, validator and gateway processes on a
sandbox subnet, each with ``--metrics.port``; scraped with httpx while real traffic flows.

The public ports never serve metrics (the gateway's only while no metrics port is set), the
counters move with what happens (a request counted with its status and caller kind, a refusal
with its reason, a step with its task, weights set and a chain error), and bad flag values are
refused before any work.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import httpx
import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from sn1.protocol.auth import sign_headers
from sn1.protocol.wire import CHAT_PATH, request_body
from sn1.testing import ROOT, free_port, make_wallet, run_sn1, stop_processes, wait_for_port

pytestmark = pytest.mark.timeout(600)


def scrape(port: int) -> list:
    resp = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    return [s for fam in text_string_to_metric_families(resp.text) for s in fam.samples]


def value(samples_or_port, name: str, **labels) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels`` (0 when none)."""
    samples = scrape(samples_or_port) if isinstance(samples_or_port, int) else samples_or_port
    return sum(s.value for s in samples
               if s.name == name and all(s.labels.get(k) == str(v) for k, v in labels.items()))


def wait_until(check, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s")
        time.sleep(0.1)


@dataclass
class Proc:
    port: int
    metrics_port: int | None
    proc: subprocess.Popen
    log: Path
    uid: int | None = None
    hotkey: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Net:
    root: Path
    chain: object
    wallets: dict
    miners: dict = field(default_factory=dict)
    procs: list = field(default_factory=list)

    def common(self) -> list[str]:
        return ["--subtensor.network", "sandbox", "--sandbox.path", str(self.root / "sandbox"), "--netuid", "1",
                "--wallet.path", str(self.root / "wallets")]

    def start(self, name: str, args: list[str]) -> tuple[subprocess.Popen, Path]:
        log = self.root / f"{name}.log"
        proc = subprocess.Popen([sys.executable, "-m", "sn1.cli", *args], stdout=open(log, "w"),
                                stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.procs.append(proc)
        return proc, log


MINERS = {
    # One slot and no line: a second request while one streams is refused (429).
    "mock": ["--backend", "mock", "--neuron.mock_delay", "0.02", "--neuron.max_concurrent", "1",
             "--neuron.max_queue", "0"],
    "phrase": ["--backend", "phrase", "--neuron.phrase", "The answer is always this phrase."],
}


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    from sn1.chain.sandbox import SandboxChain

    root = tmp_path_factory.mktemp("metrics")
    wp = root / "wallets"
    # One validator permit ("val"); weights may be set once per 100000 blocks, so the validator's
    # second set_weights is a real chain error.
    chain = SandboxChain.init(root / "sandbox", 1, tempo=1000, block_time=0.05, max_validators=1,
                              weights_rate_limit=100000)
    wallets = {}
    for name, stake in (("val", 1000.0), ("operator", 0.0)):
        wallets[name] = make_wallet(wp, name)
        chain.register(wallets[name], stake=stake)
    wallets["stranger"] = make_wallet(wp, "stranger")        # never registered
    n = Net(root, chain, wallets)
    try:
        for name, args in MINERS.items():
            w = make_wallet(wp, "miner-" + name)
            uid = chain.register(w)
            port, mport = free_port(), free_port()
            proc, log = n.start("miner-" + name, ["miner", *args, *n.common(), "--wallet.name", "miner-" + name,
                                                  "--axon.ip", "127.0.0.1", "--axon.port", str(port),
                                                  "--metrics.port", str(mport)])
            n.miners[name] = Proc(port, mport, proc, log, uid, w.hotkey.ss58_address)
        for m in n.miners.values():
            wait_for_port(m.port, timeout=90, proc=m.proc)
            wait_for_port(m.metrics_port, timeout=30, proc=m.proc)
        deadline = time.monotonic() + 30
        while not all(chain.metagraph().neurons[m.uid].endpoint for m in n.miners.values()):
            assert time.monotonic() < deadline, "miners never published their endpoints"
            time.sleep(0.1)
        yield n
    finally:
        stop_processes(n.procs)


def body(**kw) -> bytes:
    kw.setdefault("max_tokens", 8)
    kw.setdefault("timeout", 10.0)
    return request_body([{"role": "user", "content": "Say something."}], **kw)


def post(net, miner: str, wallet: str | None, data: bytes, headers: dict | None = None) -> httpx.Response:
    h = {"content-type": "application/json"}
    if wallet is not None:
        h.update(sign_headers(net.wallets[wallet], data, net.miners[miner].hotkey))
    h.update(headers or {})
    return httpx.post(net.miners[miner].url + CHAT_PATH, content=data, headers=h, timeout=30)


# ---- the miner --------------------------------------------------------------------------------

def test_miner_metrics_are_on_their_own_port_only(net):
    m = net.miners["mock"]
    public = httpx.get(m.url + "/metrics", timeout=5)
    assert public.status_code == 404 and "sn1_miner" not in public.text
    samples = scrape(m.metrics_port)
    info = [s for s in samples if s.name == "sn1_miner_info"]
    assert len(info) == 1 and info[0].labels["hotkey"] == m.hotkey and info[0].labels["backend"] == "mock"
    assert value(samples, "sn1_miner_max_concurrent") == 1
    assert value(samples, "process_resident_memory_bytes") > 0
    # bound to this machine only (the default --metrics.host)
    assert f"metrics on http://127.0.0.1:{m.metrics_port}/metrics" in m.log_text()
    # the metrics port serves nothing else
    assert httpx.get(f"http://127.0.0.1:{m.metrics_port}/health", timeout=5).status_code == 404


def test_miner_counts_requests_by_status_and_caller_and_refusals_by_reason(net):
    port = net.miners["mock"].metrics_port
    before = scrape(port)

    def delta(after, name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert post(net, "mock", None, body()).status_code == 401                    # unsigned
    assert post(net, "mock", "stranger", body()).status_code == 403              # not registered
    other = body(max_tokens=7)                                                    # signed one body, sent another
    bad = post(net, "mock", None, body(), headers=sign_headers(net.wallets["val"], other, net.miners["mock"].hotkey))
    assert bad.status_code == 401 and "BadSignature" in bad.text                  # bad signature
    odd = post(net, "mock", "val", body(), headers={"x-bittensor-signature": "0x00"})
    assert odd.status_code == 401                                                 # not a signature at all
    ok = post(net, "mock", "val", body(max_tokens=6))
    assert ok.status_code == 200 and "data: [DONE]" in ok.text
    # a verified caller saying it is a gateway is counted as one ...
    assert post(net, "mock", "val", body(max_tokens=3), headers={"X-SN1-Caller": "gateway"}).status_code == 200
    # ... an unsigned one stays "other", whatever it says
    assert post(net, "mock", None, body(), headers={"X-SN1-Caller": "validator"}).status_code == 401
    after = scrape(port)

    assert delta(after, "sn1_miner_refusals_total", reason="unsigned") == 2
    assert delta(after, "sn1_miner_refusals_total", reason="not_registered") == 1
    assert delta(after, "sn1_miner_refusals_total", reason="bad_signature") == 1
    assert delta(after, "sn1_miner_refusals_total", reason="malformed_auth") == 1
    assert delta(after, "sn1_miner_requests_total", status=401, caller="other") == 4
    assert delta(after, "sn1_miner_requests_total", status=403, caller="other") == 1
    assert delta(after, "sn1_miner_requests_total", status=200, caller="validator") == 1
    assert delta(after, "sn1_miner_requests_total", status=200, caller="gateway") == 1
    assert delta(after, "sn1_miner_requests_total", caller="gateway") == 1
    assert delta(after, "sn1_miner_generations_total", finish="length", caller="validator") == 1
    assert delta(after, "sn1_miner_completion_tokens_total") == 6 + 3
    assert delta(after, "sn1_miner_ttft_seconds_count") == 2
    assert delta(after, "sn1_miner_tokens_per_second_count") == 2
    # the mock waits 20 ms before each word: no first token comes sooner
    assert delta(after, "sn1_miner_ttft_seconds_bucket", le="0.01") == 0
    assert value(after, "sn1_miner_active_generations") == 0


def test_miner_busy_refusal_queue_and_connections(net):
    port = net.miners["mock"].metrics_port
    before = scrape(port)
    data = body(max_tokens=5000, timeout=30.0)
    m = net.miners["mock"]
    h = {"content-type": "application/json", **sign_headers(net.wallets["val"], data, m.hotkey)}

    async def scenario():
        async with httpx.AsyncClient(timeout=30) as c:
            async with c.stream("POST", m.url + CHAT_PATH, content=data, headers=h) as resp:
                assert resp.status_code == 200
                chunks = resp.aiter_raw()
                await chunks.__anext__()              # the first chunk: the slot is held
                during = await asyncio.to_thread(scrape, port)
                refused = await asyncio.to_thread(post, net, "mock", "val", body())
            # leaving the stream closes the connection: the miner sees the caller gone
            return during, refused

    during, refused = asyncio.run(scenario())
    assert refused.status_code == 429 and refused.headers.get("retry-after") == "1"
    assert value(during, "sn1_miner_active_generations") == 1
    assert value(during, "sn1_miner_queue_depth") == 0
    assert value(during, "sn1_miner_open_connections") >= 1
    assert value(during, "sn1_miner_requests_in_progress") >= 1
    after = wait_until(lambda: (s := scrape(port)) and value(s, "sn1_miner_active_generations") == 0 and
                       value(s, "sn1_miner_generations_total", finish="disconnect") >
                       value(before, "sn1_miner_generations_total", finish="disconnect") and s,
                       what="the abandoned stream counted")
    assert value(after, "sn1_miner_refusals_total", reason="busy") - \
        value(before, "sn1_miner_refusals_total", reason="busy") == 1
    assert value(after, "sn1_miner_requests_total", status=429, caller="validator") - \
        value(before, "sn1_miner_requests_total", status=429, caller="validator") == 1
    assert value(after, "sn1_miner_requests_total", status=499, caller="validator") - \
        value(before, "sn1_miner_requests_total", status=499, caller="validator") == 1


# ---- the validator ----------------------------------------------------------------------------

def test_validator_counts_steps_miners_rewards_weights_and_chain_errors(net, tmp_path):
    mport = free_port()
    log = tmp_path / "validator.log"
    cmd = [sys.executable, "-m", "sn1.cli", "validator", *net.common(), "--wallet.name", "val",
           "--llm.engine", "scripted", "--neuron.axon_off", "--neuron.timeout", "5",
           "--neuron.tasks", "qa", "math", "--neuron.task_p", "0.5", "0.5", "--neuron.query_max_tokens", "16",
           "--neuron.full_path", str(tmp_path / "v"), "--neuron.epoch_length", "1",
           "--neuron.weights_retry_base", "0", "--neuron.seed", "5", "--wandb.off",
           "--metrics.port", str(mport), "--metrics.top_uids", "1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        # The metrics port is up before the models load.
        wait_for_port(mport, timeout=120, proc=proc)
        assert value(mport, "process_resident_memory_bytes") > 0

        def ready():
            s = scrape(mport)
            return s if (value(s, "sn1_validator_steps_total") >= 3 and
                         value(s, "sn1_validator_weights_set_total") >= 1 and
                         value(s, "sn1_validator_chain_errors_total", op="set_weights") >= 1) else None

        try:
            s = wait_until(ready, timeout=300, what="3 steps, weights set and a refused set_weights")
        except AssertionError:
            raise AssertionError(log.read_text()[-4000:]) from None
    finally:
        stop_processes([proc])

    steps = value(s, "sn1_validator_steps_total")
    by_task = {t: value(s, "sn1_validator_steps_total", task=t) for t in ("qa", "math")}
    assert sum(by_task.values()) == steps
    for t, n in by_task.items():
        assert value(s, "sn1_validator_step_duration_seconds_count", task=t) == n
        assert value(s, "sn1_validator_step_phase_seconds_count", task=t, phase="query") == n
        # two miners per step, one reward each
        assert value(s, "sn1_validator_reward_count", task=t) == 2 * n
        assert value(s, "sn1_validator_miner_responses_total", task=t) == 2 * n
    assert value(s, "sn1_validator_step") == steps        # a fresh state: the counters agree
    assert value(s, "sn1_validator_miners") == 2          # the last step's miners, by status
    assert value(s, "sn1_validator_miner_responses_total", status="ok") >= 1
    assert value(s, "sn1_validator_last_weights_set_timestamp_seconds") > time.time() - 600
    assert value(s, "sn1_validator_last_weights_block") >= 0
    # the weights on chain are this validator's
    assert net.chain.weights()[net.chain.metagraph().uid_of(net.wallets["val"].hotkey.ss58_address)]
    scores = [x for x in s if x.name == "sn1_validator_score"]
    assert len(scores) <= 1                                # --metrics.top_uids 1
    miner_uids = {str(m.uid) for m in net.miners.values()}
    assert all(x.labels["uid"] in miner_uids and 0 < x.value <= 1 for x in scores)
    # the miners saw the validator's queries as a validator's
    assert value(net.miners["phrase"].metrics_port, "sn1_miner_requests_total", status=200,
                 caller="validator") >= steps


def test_validator_metrics_of_a_step_verification_and_top_uids():
    """The step event the loop records (here the inference task's, with its verdicts) in the
    validator's metrics; the top-uids gauge is bounded and ordered by score."""
    from sn1.validator.metrics import ValidatorMetrics
    from sn1.verify.rules import Verdict, fail
    from sn1.verify.step import StepVerification

    m = ValidatorMetrics(top_uids=3)
    sv = StepVerification(total=[0.9, 0.0, 0.0, float("nan")],
                          verdicts=[Verdict(True), fail("match", "x"), fail("stream", "y"), fail("match", "z")],
                          factors=[0.9, 0, 0, 0])
    event = {"task": "inference", "step_time": 3.0, "task_time": 0.5, "query_time": 2.0, "score_time": 0.5,
             "status": ["ok", "ok", "timeout", "weird<script>"], **sv.to_event()}
    m.step(event)
    scores = np.zeros(256)
    scores[[7, 100, 200, 201]] = [0.5, 0.9, 0.7, 0.1]
    m.attach(SimpleNamespace(config=SimpleNamespace(), state=SimpleNamespace(step=9, scores=scores,
                                                                             last_weights_block=-1),
                             metagraph=SimpleNamespace(block=1234, n=256)))
    from prometheus_client import generate_latest

    text = generate_latest(m.collector).decode()
    samples = [s for fam in text_string_to_metric_families(text) for s in fam.samples]
    assert value(samples, "sn1_validator_verifications_total", result="pass") == 1
    assert value(samples, "sn1_validator_verifications_total", result="fail", rule="match") == 2
    assert value(samples, "sn1_validator_verifications_total", result="fail", rule="stream") == 1
    assert value(samples, "sn1_validator_miners", status="ok") == 2
    assert value(samples, "sn1_validator_miners", status="other") == 1     # an unknown status: one label
    assert value(samples, "sn1_validator_reward_count", task="inference") == 3   # NaN not observed
    assert value(samples, "sn1_validator_step_phase_seconds_sum", task="inference", phase="query") == 2.0
    top = [(s.labels["uid"], s.value) for s in samples if s.name == "sn1_validator_score"]
    assert top == [("100", 0.9), ("200", 0.7), ("7", 0.5)]
    assert value(samples, "sn1_validator_scored_uids") == 4
    assert value(samples, "sn1_validator_metagraph_block") == 1234


# ---- the gateway ------------------------------------------------------------------------------

def start_gateway(net, name: str, *extra: str) -> Proc:
    port = free_port()
    path = net.root / f"gw-{name}"
    proc, log = net.start("gateway-" + name, [
        "gateway", *net.common(), "--wallet.name", "operator", "--gateway.ip", "127.0.0.1",
        "--gateway.port", str(port), "--gateway.path", str(path),
        "--gateway.uids", str(net.miners["mock"].uid), *extra])
    wait_for_port(port, timeout=60, proc=proc)
    key = run_sn1("gateway", "keys", "create", "--name", "k", "--gateway.path", path, check=True)
    return Proc(port, None, proc, log), key.stdout.strip().splitlines()[-1]


def chat(gw: Proc, key: str) -> httpx.Response:
    return httpx.post(gw.url + "/v1/chat/completions", headers={"authorization": f"Bearer {key}"}, timeout=60,
                      json={"model": "sn1", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4,
                            "stream": True})


def test_gateway_metrics_carry_the_replica_and_move_to_the_metrics_port(net):
    mport = free_port()
    miner_port = net.miners["mock"].metrics_port
    before = value(miner_port, "sn1_miner_requests_total", status=200, caller="gateway")
    gw, key = start_gateway(net, "a", "--gateway.replica", "eu-1", "--metrics.port", str(mport))
    try:
        wait_for_port(mport, timeout=30, proc=gw.proc)
        resp = chat(gw, key)
        assert resp.status_code == 200 and "[DONE]" in resp.text, resp.text
        assert httpx.post(gw.url + "/v1/chat/completions", json={}, timeout=10).status_code == 401
        s = scrape(mport)
        assert value(s, "sn1_gateway_requests_total", status=200, replica="eu-1") == 1
        assert value(s, "sn1_gateway_requests_total", status=401, replica="eu-1") == 1
        assert value(s, "sn1_gateway_ttft_seconds_count", replica="eu-1") == 1
        assert all(x.labels.get("replica") == "eu-1" for x in s)      # every sample, process ones too
        # with a metrics port, the public port no longer serves them
        public = httpx.get(gw.url + "/metrics", timeout=5)
        assert public.status_code == 404 and "sn1_gateway" not in public.text
        # the miner counted the gateway's request as a gateway's
        assert value(miner_port, "sn1_miner_requests_total", status=200, caller="gateway") == before + 1
    finally:
        stop_processes([gw.proc])

    # Without a metrics port: the public /metrics as before, the replica named HOSTNAME:PORT.
    gw, key = start_gateway(net, "b")
    try:
        assert chat(gw, key).status_code == 200
        text = httpx.get(gw.url + "/metrics", timeout=5).text
        samples = [x for fam in text_string_to_metric_families(text) for x in fam.samples]
        assert value(samples, "sn1_gateway_requests_total", status=200,
                     replica=f"{socket.gethostname()}:{gw.port}") == 1
    finally:
        stop_processes([gw.proc])


# ---- bad flags --------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["miner", "validator", "gateway"])
def test_bad_metrics_flags_are_one_line_and_exit_2(role):
    base = ["miner", "--backend", "echo"] if role == "miner" else [role]
    for bad in ("-1", "65536", "abc", "1.5"):
        proc = run_sn1(*base, "--metrics.port", bad)
        assert proc.returncode == 2, proc.stderr
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and "--metrics.port" in lines[0] and "0: no metrics server" in lines[0], proc.stderr
    if role == "validator":
        proc = run_sn1(*base, "--metrics.top_uids", "0")
        assert proc.returncode == 2 and "--metrics.top_uids" in proc.stderr


def test_metrics_port_equal_to_the_public_port_or_taken_is_refused(net):
    port = free_port()
    proc = run_sn1("miner", "--backend", "echo", *net.common(), "--wallet.name", "miner-phrase",
                   "--axon.port", str(port), "--metrics.port", str(port))
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == \
        f"error: --metrics.port {port} is also the public port: metrics need a port of their own"
    taken = net.miners["mock"].metrics_port         # a running miner's metrics port
    proc = run_sn1("miner", "--backend", "echo", *net.common(), "--wallet.name", "miner-phrase",
                   "--axon.ip", "127.0.0.1", "--axon.port", str(free_port()), "--metrics.port", str(taken))
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: cannot listen on 127.0.0.1:{taken}") and "Traceback" not in proc.stderr
    proc = run_sn1("miner", "--backend", "echo", *net.common(), "--wallet.name", "miner-phrase",
                   "--axon.ip", "127.0.0.1", "--axon.port", str(free_port()), "--metrics.port", str(free_port()),
                   "--metrics.host", "no-such-host.invalid")
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: cannot listen on no-such-host.invalid:") and "Traceback" not in proc.stderr
