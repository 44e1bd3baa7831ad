"""Who an LLM miner works for (issue 17): validators that could pay, shown by the chain.

Real miner processes on a sandbox chain: the embedded llama.cpp miner refuses
a registered hotkey without stake, a staked one whose weights are stale, and
serves a staked validator that never set weights (a new validator) and one
that set them recently; ``--blacklist.allow_non_validators`` opts out; the
test miners keep serving any registered hotkey.
"""

from __future__ import annotations

import subprocess
import sys
import time

import httpx
import pytest

from sn1.chain.base import Neuron
from sn1.miner.server import caller_refusal
from sn1.protocol.auth import sign_headers
from sn1.protocol.wire import CHAT_PATH, request_body
from sn1.testing import ROOT, free_port, make_wallet, stop_processes, wait_for_port

BLOCK = 0.05
MAX_AGE = 40          # blocks: 2 s of this sandbox


def _n(**kw) -> Neuron:
    base = dict(uid=0, hotkey="hk", coldkey="ck", stake=1000.0, validator_permit=True,
                last_update=10, block_at_registration=10)
    return Neuron(**{**base, **kw})


def test_caller_refusal_rules():
    rule = dict(min_stake=1000.0, max_weights_age=100)
    assert caller_refusal(_n(), 500, **rule) is None                         # staked, never weighted
    assert caller_refusal(_n(last_update=450), 500, **rule) is None          # weighted 50 blocks ago
    assert "last set weights 390 blocks ago" in caller_refusal(_n(last_update=110), 500, **rule)
    assert "less than the 1000" in caller_refusal(_n(stake=999.9), 500, **rule)
    assert "no validator permit" in caller_refusal(_n(validator_permit=False), 500, **rule)
    assert "less than the 1000" in caller_refusal(_n(stake=float("nan")), 500, **rule)
    assert caller_refusal(_n(stake=0.0), 500, min_stake=0.0, max_weights_age=100) is None


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    from sn1.chain.sandbox import SandboxChain

    root = tmp_path_factory.mktemp("admission")
    sandbox, wp = root / "sandbox", root / "wallets"
    chain = SandboxChain.init(sandbox, 1, tempo=100000, block_time=BLOCK, weights_rate_limit=0)
    callers = {}
    for name, stake in (("val", 1000.0), ("poor", 0.0), ("stale", 5000.0), ("active", 2000.0)):
        callers[name] = make_wallet(wp, name)
        chain.register(callers[name], stake=stake)
    common = ["--subtensor.network", "sandbox", "--sandbox.path", str(sandbox), "--netuid", "1",
              "--wallet.path", str(wp), "--neuron.metagraph_refresh", "0.5",
              "--blacklist.max_weights_age", str(MAX_AGE)]
    miners, procs = {}, []
    try:
        for name, args in (("llm", ["--backend", "llamacpp", "--neuron.n_threads", "1"]),
                           ("llm-open", ["--backend", "llamacpp", "--neuron.n_threads", "1",
                                         "--blacklist.allow_non_validators"]),
                           ("echo", ["--backend", "echo"])):
            w = make_wallet(wp, name)
            uid = chain.register(w)
            port = free_port()
            procs.append(subprocess.Popen([sys.executable, "-m", "sn1.cli", "miner", *args, *common,
                                           "--wallet.name", name, "--axon.port", str(port)],
                                          cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            miners[name] = (f"http://127.0.0.1:{port}", w.hotkey.ss58_address, uid)
            wait_for_port(port, timeout=120, proc=procs[-1])
        # "stale" set weights once, long enough ago (MAX_AGE blocks and a margin).
        chain.set_weights(callers["stale"], [miners["llm"][2]], [1.0])
        time.sleep((MAX_AGE + 20) * BLOCK)
        yield chain, callers, miners
    finally:
        stop_processes(procs)


def ask(net, caller: str, miner: str) -> httpx.Response:
    _, callers, miners = net
    url, hotkey, _ = miners[miner]
    body = request_body([{"role": "user", "content": "Say hi."}], stream=False, max_tokens=2, temperature=0.0)
    headers = {"content-type": "application/json", **sign_headers(callers[caller], body, hotkey)}
    return httpx.post(url + CHAT_PATH, content=body, headers=headers, timeout=60)


def test_llm_miner_refuses_a_registered_hotkey_without_stake(net):
    r = ask(net, "poor", "llm")
    assert r.status_code == 403
    msg = r.json()["error"]["message"]
    assert "holds 0 stake, less than the 1000" in msg and "\n" not in msg


def test_llm_miner_refuses_a_validator_whose_weights_are_stale(net):
    r = ask(net, "stale", "llm")
    assert r.status_code == 403
    assert "last set weights" in r.json()["error"]["message"]
    assert "--blacklist.max_weights_age" in r.json()["error"]["message"]


def test_llm_miner_serves_a_staked_validator_that_never_set_weights(net):
    r = ask(net, "val", "llm")
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"]


def test_llm_miner_serves_a_validator_that_just_set_weights(net):
    chain, callers, miners = net
    # Refused while stale ...
    chain.set_weights(callers["active"], [miners["llm"][2]], [1.0])
    time.sleep((MAX_AGE + 20) * BLOCK)
    assert ask(net, "active", "llm").status_code == 403
    # ... served again once it sets weights (the refusal made the miner look at the chain again).
    chain.set_weights(callers["active"], [miners["llm"][2]], [1.0])
    deadline = time.monotonic() + 20
    while (r := ask(net, "active", "llm")).status_code != 200:
        assert r.status_code == 403 and time.monotonic() < deadline, r.text
        time.sleep(0.3)


def test_opt_out_flag_serves_any_registered_hotkey(net):
    r = ask(net, "poor", "llm-open")
    assert r.status_code == 200, r.text


def test_test_miners_keep_serving_any_registered_hotkey(net):
    r = ask(net, "poor", "echo")
    assert r.status_code == 200, r.text
