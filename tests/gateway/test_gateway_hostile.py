"""Misbehaving miners behind the gateway: what reaches the client is valid UTF-8 from one miner."""

from __future__ import annotations

import httpx
import pytest

ASK = [{"role": "user", "content": "hello there"}]


def test_lone_surrogates_are_replaced_before_forwarding(subnet):
    gw = subnet.start_gateway("surrogate", ["surrogate"])
    key = gw.key("gina")
    with httpx.stream("POST", gw.url + "/v1/chat/completions", headers={"authorization": f"Bearer {key}"},
                      json={"messages": ASK, "stream": True}, timeout=30) as r:
        assert r.status_code == 200
        raw = b"".join(r.iter_raw())
    raw.decode("utf-8")                          # strict: raises on anything that is not UTF-8
    assert b"\\ud800" not in raw and b"data: [DONE]" in raw
    done = gw.client(key).chat.completions.create(model="sn1", messages=ASK)
    assert done.choices[0].message.content == "bad \ufffd text and more"


def test_garbage_and_silent_miners_are_failed_over(subnet):
    gw = subnet.start_gateway("hostile", ["garbage", "silent", "echo"], "--gateway.first_chunk_timeout", "1")
    client = gw.client(gw.key("hank"))
    garbage, silent = subnet.miners["garbage"].uid, subnet.miners["silent"].uid
    for i in range(40):
        done = client.chat.completions.create(model="sn1", messages=[{"role": "user", "content": f"q{i}"}])
        assert done.choices[0].message.content == f"q{i}"
        if gw.metric("sn1_gateway_miner_failures_total", uid=garbage, kind="protocol_error") and \
                gw.metric("sn1_gateway_miner_failures_total", uid=silent, kind="timeout"):
            break
    else:
        pytest.fail("the garbage and silent miners were not both tried")
