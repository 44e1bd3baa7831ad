"""Miners failing under the gateway: a client leaving, a miner killed mid-answer, every miner down.

The gateway routes to the slow mock miner and to a miner whose published
endpoint has nothing listening, so some requests fail over from the dead one.
The tests run in file order: the last one finds both miners dead.
"""

from __future__ import annotations

import signal

import openai
import pytest

from sn1.miner.backends.test import MOCK_TEXT

ASK = [{"role": "user", "content": "Tell me something."}]


@pytest.fixture(scope="module")
def gw(subnet):
    return subnet.start_gateway("failures", ["mock", "dead"], "--gateway.first_chunk_timeout", "3")


@pytest.fixture(scope="module")
def client(gw):
    return gw.client(gw.key("bob"))


def test_client_disconnect_cancels_the_miner(gw, client, subnet):
    mock = subnet.miners["mock"]
    stream = client.chat.completions.create(model="sn1", messages=ASK, stream=True, max_tokens=200)
    got = ""
    for chunk in stream:
        got += chunk.choices[0].delta.content or ""
        if len(got.split()) >= 3:
            break
    stream.close()
    assert MOCK_TEXT.startswith(got)
    # 200 words at 0.1 s would take 20 s: the miner stops at once instead.
    mock.wait_log("mock generator closed early", timeout=5)


def test_dead_miner_is_failed_over(gw, client, subnet):
    dead = subnet.miners["dead"].uid
    for _ in range(30):
        done = client.chat.completions.create(model="sn1", messages=ASK, max_tokens=3)
        assert done.choices[0].message.content == "This is a "
        if gw.metric("sn1_gateway_miner_failures_total", uid=dead, kind="connect_error") > 0:
            break
    else:
        pytest.fail("the dead miner was never tried")


def test_miner_killed_mid_answer_ends_the_stream_with_an_error(gw, client, subnet):
    mock = subnet.miners["mock"]
    stream = client.chat.completions.create(model="sn1", messages=ASK, stream=True, max_tokens=200)
    got = ""
    with pytest.raises(openai.APIError, match=f"miner uid {mock.uid} failed mid-answer"):
        for chunk in stream:
            got += chunk.choices[0].delta.content or ""
            if len(got.split()) == 3:
                mock.proc.send_signal(signal.SIGKILL)
                mock.proc.wait()
    # Only the killed miner's words, nothing spliced from another miner.
    assert len(got.split()) >= 3 and MOCK_TEXT.startswith(got)


def test_non_streaming_answer_of_a_killed_miner_is_a_502(subnet):
    import threading
    import time

    victim = subnet.miners["mock2"]
    gw = subnet.start_gateway("nonstream", ["mock2"])
    client = gw.client(gw.key("frank"))
    err = {}

    def ask():
        try:
            client.chat.completions.create(model="sn1", messages=ASK, max_tokens=200)
        except openai.APIStatusError as e:
            err["e"] = e

    t = threading.Thread(target=ask)
    t.start()
    deadline = time.monotonic() + 20
    while gw.metric("sn1_gateway_ttft_seconds_count") < 1:     # the gateway has the first chunk
        assert time.monotonic() < deadline and t.is_alive()
        time.sleep(0.05)
    time.sleep(0.3)           # a few more words (one per 0.1 s; all 200 would take 20 s)
    victim.proc.send_signal(signal.SIGKILL)
    t.join(30)
    e = err["e"]
    assert e.status_code == 502 and f"miner uid {victim.uid} failed mid-answer" in e.message


def test_all_miners_down_is_a_clear_503(gw, client, subnet):
    with pytest.raises(openai.InternalServerError, match="no miner could answer") as e:
        client.chat.completions.create(model="sn1", messages=ASK, stream=True)
    assert e.value.status_code == 503
    msg = e.value.body["message"]
    assert f"uid {subnet.miners['mock'].uid}" in msg and f"uid {subnet.miners['dead'].uid}" in msg
