"""The gateway through the official openai client: streaming, keys, limits, failover, bad input.

The gateway routes to the echo miner and to a miner that refuses it (403: no
validator permit), so every answer that arrives is the echo miner's, some
after a transparent failover.
"""

from __future__ import annotations

import httpx
import openai
import pytest

MSG = [{"role": "user", "content": "Naïve café: 東京 in three words, please"}]


@pytest.fixture(scope="module")
def gw(subnet):
    return subnet.start_gateway("api", ["echo", "refuser"], "--gateway.first_chunk_timeout", "3")


@pytest.fixture(scope="module")
def key(gw):
    return gw.key("alice", "--rpm", "1000")


def test_streaming_answer_comes_from_one_miner(gw, key, subnet):
    stream = gw.client(key).chat.completions.create(model="sn1", messages=MSG, stream=True)
    pieces = [c.choices[0].delta.content or "" for c in stream if c.choices]
    assert len([p for p in pieces if p]) > 1, "the answer arrived in one piece, not streamed"
    assert "".join(pieces) == MSG[0]["content"]


def test_streaming_usage_when_asked(gw, key):
    chunks = list(gw.client(key).chat.completions.create(
        model="sn1", messages=MSG, stream=True, stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == len(MSG[0]["content"].split())


def test_non_streaming_answer_and_headers(gw, key, subnet):
    raw = gw.client(key).chat.completions.with_raw_response.create(
        model="anything", messages=MSG, max_tokens=50, temperature=0.5, top_p=0.9, seed=3, stop=["zzz"])
    assert raw.headers["x-sn1-miner-uid"] == str(subnet.miners["echo"].uid)
    assert float(raw.headers["x-sn1-ttft-ms"]) > 0
    done = raw.parse()
    assert done.choices[0].message.content == MSG[0]["content"]
    assert done.choices[0].finish_reason == "stop"
    assert done.usage.completion_tokens > 0
    assert done.model == "anything"


def test_max_tokens_is_passed_on(gw, key):
    done = gw.client(key).chat.completions.create(
        model="sn1", messages=[{"role": "user", "content": "one two three four five six"}], max_tokens=2)
    assert done.choices[0].message.content == "one two "
    assert done.choices[0].finish_reason == "length"


def test_models_and_health(gw, key):
    assert [m.id for m in gw.client(key).models.list()] == ["sn1"]
    assert gw.health()["miners"] == 2
    for method, path, status in (("GET", "/v1/embeddings", 404), ("GET", "/v1/chat/completions", 405)):
        r = httpx.request(method, gw.url + path)
        assert r.status_code == status and r.json()["error"]["code"] == status


def test_bad_key_and_revoked_key(gw, subnet):
    before = miner_work(subnet)
    with pytest.raises(openai.AuthenticationError):
        gw.client("sn1-not-a-real-key").chat.completions.create(model="sn1", messages=MSG)
    assert miner_work(subnet) == before
    k = gw.key("mallory")
    assert gw.client(k).chat.completions.create(model="sn1", messages=MSG).choices[0].message.content
    from sn1.testing import run_sn1

    run_sn1("gateway", "keys", "revoke", "--name", "mallory", "--gateway.path", gw.path, check=True)
    with pytest.raises(openai.AuthenticationError, match="revoked"):
        gw.client(k).chat.completions.create(model="sn1", messages=MSG)
    r = httpx.post(gw.url + "/v1/chat/completions", json={"messages": MSG})
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"


def miner_work(subnet) -> list:
    """What the gateway's miners have served or refused so far (from their /health)."""
    return [(h["served"], h["refused"]) for h in (subnet.miners[m].health() for m in ("echo", "refuser"))]


def test_requests_per_minute(gw, subnet):
    k = gw.key("rpm2", "--rpm", "2")
    c = gw.client(k)
    for _ in range(2):
        c.chat.completions.create(model="sn1", messages=MSG)
    before = miner_work(subnet)
    with pytest.raises(openai.RateLimitError, match="2 requests per minute") as e:
        c.chat.completions.create(model="sn1", messages=MSG)
    assert 1 <= int(e.value.response.headers["retry-after"]) <= 60
    assert miner_work(subnet) == before


def test_tokens_per_day(gw):
    k = gw.key("tpd", "--tokens-per-day", "3")
    c = gw.client(k)
    words = [{"role": "user", "content": "a b c d e f g h"}]
    first = c.chat.completions.create(model="sn1", messages=words)
    # The request was given only what was left of the day's budget.
    assert first.choices[0].message.content == "a b c "
    assert first.usage.completion_tokens == 3
    with pytest.raises(openai.RateLimitError, match="tokens for today") as e:
        c.chat.completions.create(model="sn1", messages=words)
    assert int(e.value.response.headers["retry-after"]) > 0


def test_refusing_miner_is_failed_over(gw, key, subnet):
    refuser = subnet.miners["refuser"].uid
    c = gw.client(key)
    for i in range(40):
        done = c.chat.completions.create(model="sn1", messages=[{"role": "user", "content": f"ask {i}"}])
        assert done.choices[0].message.content == f"ask {i}"     # always the echo miner's whole answer
        if gw.metric("sn1_gateway_miner_failures_total", uid=refuser, kind="refused") > 0:
            break
    else:
        pytest.fail("the refusing miner was never tried")
    assert subnet.miners["refuser"].health()["refused"].get("403", 0) >= 1


BAD = [
    (b"{not json", 400, "not valid JSON"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "tools": []}', 400, "tools: unknown field"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": -5}', 400, "max_tokens"),
    (b'{"messages": []}', 400, "messages"),
    (b'{"messages": [{"role": "wizard", "content": "hi"}]}', 400, "messages.0.role"),
    (b"[1, 2]", 400, "JSON object"),
    (b'{"messages": [{"role": "user", "content": "x"}]}' + b" " * (10 << 20), 413, "exceeds"),
]


@pytest.mark.parametrize("body,status,words", BAD, ids=["json", "unknown", "negative", "empty", "role", "array",
                                                        "10MB"])
def test_bad_input_is_refused_without_miner_work(gw, key, subnet, body, status, words):
    before = miner_work(subnet)
    r = httpx.post(gw.url + "/v1/chat/completions", content=body, timeout=30,
                   headers={"authorization": f"Bearer {key}", "content-type": "application/json"})
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert words in err["message"] and "\n" not in err["message"]
    assert miner_work(subnet) == before


def test_bad_input_through_openai_client(gw, key):
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        gw.client(key).chat.completions.create(model="sn1", messages=MSG, max_tokens=-1)


def test_metrics_and_records(gw, key, subnet):
    text = httpx.get(gw.url + "/metrics").text
    for name in ("sn1_gateway_requests_total", "sn1_gateway_ttft_seconds_bucket",
                 "sn1_gateway_tokens_per_second_bucket", "sn1_gateway_miner_failures_total"):
        assert name in text
    assert gw.metric("sn1_gateway_requests_total", status=200) >= 5
    assert gw.metric("sn1_gateway_requests_total", status=401) >= 2
    import sqlite3
    import time

    time.sleep(0.5)     # records are written by a background thread
    rows = sqlite3.connect(gw.path / "gateway.db").execute(
        "SELECT key_name, uid, status, ttft, tokens, duration, prompt FROM records WHERE status = 'ok'").fetchall()
    assert rows and all(r[1] == subnet.miners["echo"].uid and r[3] > 0 and r[4] > 0 and r[5] >= r[3]
                        for r in rows)
    assert all(r[6] is None for r in rows), "prompts kept without --gateway.log_content"
