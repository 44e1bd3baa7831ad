"""Three real gateway processes sharing one real redis-server (``--gateway.redis_url``).

They route to the echo miner (an answer's tokens are its prompt's words). The tests check that
the replicas act as one gateway: a key's requests per minute and tokens per day hold exactly under
concurrency spread over them, keys made, updated and revoked by `sn1 gateway keys` reach all of
them at once, records of all replicas are listed from one place, a key's usage survives a replica's
restart, and Redis killed mid-run gives clear 503s (never an admission) and service resumes by
itself when it returns, without a key lost.
"""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from sn1.testing import run_sn1

from .redis_server import RedisServer, need_redis_server

WORDS = "one two three four five six seven eight nine ten"


@pytest.fixture(scope="module")
def redis(tmp_path_factory):
    need_redis_server()
    server = RedisServer(tmp_path_factory.mktemp("redis"), persist=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()


# A generous first-chunk deadline: on a loaded machine a slow echo must not turn into a 503 (it
# would release its tokens and make the exactness checks count less than they admitted).
SLOW_OK = ("--gateway.first_chunk_timeout", "30")


def replica(subnet, redis, i):
    return subnet.start_gateway(f"replica{i}", ["echo"], "--gateway.redis_url", redis.url, *SLOW_OK)


@pytest.fixture(scope="module")
def replicas(subnet, redis):
    return [replica(subnet, redis, i) for i in range(3)]


def keys(redis, *args, check=True):
    return run_sn1("gateway", "keys", *args, "--gateway.redis_url", redis.url, check=check)


def new_key(redis, name, *limits) -> str:
    return keys(redis, "create", "--name", name, *limits).stdout.strip().splitlines()[-1]


def used_today(redis, name) -> int:
    for line in keys(redis, "list").stdout.splitlines()[1:]:
        f = line.split()
        if f[0] == name:
            return int(f[4])
    raise AssertionError(f"no key {name!r} listed")


async def spread(replicas, key, n, *, max_tokens=1, content=WORDS):
    """n concurrent requests, round-robin over the replicas; the responses."""
    body = {"messages": [{"role": "user", "content": content}], "max_tokens": max_tokens}
    limits = httpx.Limits(max_connections=1000, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=60, limits=limits) as c:
        return await asyncio.gather(*(
            c.post(replicas[i % len(replicas)].url + "/v1/chat/completions", json=body,
                   headers={"authorization": f"Bearer {key}"}) for i in range(n)))


def ask(gw, key, **kw):
    body = {"messages": [{"role": "user", "content": WORDS}], "max_tokens": 1, **kw}
    return httpx.post(gw.url + "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"},
                      timeout=30)


def test_requests_per_minute_are_exact_across_replicas(replicas, redis):
    key = new_key(redis, "rpm60", "--rpm", "60")
    got = asyncio.run(spread(replicas, key, 300))
    codes = [r.status_code for r in got]
    assert codes.count(200) == 60, {c: codes.count(c) for c in set(codes)}
    assert codes.count(429) == 240
    for r in got:
        if r.status_code == 429:
            assert 1 <= int(r.headers["retry-after"]) <= 60
            assert "60 requests per minute" in r.json()["error"]["message"]
    # (each replica got 100 of them: replicas counting on their own would admit up to 180)


def test_tokens_per_day_are_exact_across_replicas(replicas, redis):
    key = new_key(redis, "tpd40", "--rpm", "1000", "--tokens-per-day", "40")
    got = asyncio.run(spread(replicas, key, 30, max_tokens=4))
    ok = [r for r in got if r.status_code == 200]
    spent = sum(r.json()["usage"]["completion_tokens"] for r in ok)
    assert spent == 40 and len(ok) == 10, [r.status_code for r in got]
    assert all(r.status_code == 429 and "token limit" in r.json()["error"]["message"]
               for r in got if r.status_code != 200)
    assert used_today(redis, "tpd40") == 40
    assert ask(replicas[2], key).status_code == 429


def test_update_and_revoke_reach_every_replica_at_once(replicas, redis):
    key = new_key(redis, "eve", "--rpm", "1000")
    assert [ask(gw, key).status_code for gw in replicas] == [200] * 3
    out = keys(redis, "update", "--name", "eve", "--rpm", "4").stdout     # 3 used in this minute: 1 left
    assert "4 requests/minute" in out
    got = [ask(gw, key) for gw in replicas]
    assert [r.status_code for r in got] == [200, 429, 429]
    assert "may send 4 requests per minute" in got[2].json()["error"]["message"]
    keys(redis, "revoke", "--name", "eve")
    t0 = time.monotonic()
    codes = [ask(gw, key).status_code for gw in replicas]
    assert codes == [401] * 3 and time.monotonic() - t0 < 3
    listed = keys(redis, "list", "--all").stdout
    assert any(line.split()[0] == "eve" and line.endswith("revoked") for line in listed.splitlines())
    bad = keys(redis, "update", "--name", "nobody", "--rpm", "1", check=False)
    assert bad.returncode != 0 and "no active key named 'nobody'" in bad.stderr and "Traceback" not in bad.stderr


def test_records_of_all_replicas_in_one_place(replicas, redis):
    key = new_key(redis, "rec", "--rpm", "1000")
    for gw in replicas:
        assert ask(gw, key).status_code == 200
    deadline = time.monotonic() + 10
    while True:             # records are sent to Redis in batches, every 0.5 s
        out = run_sn1("gateway", "records", "--key", "rec", "--last", "10", "--gateway.redis_url", redis.url,
                      check=True).stdout
        rows = [json.loads(line) for line in out.splitlines()]
        if len(rows) == 3 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert len(rows) == 3 and {r["status"] for r in rows} == {"ok"}
    assert len({r["replica"] for r in rows}) == 3
    assert all(r["key_name"] == "rec" and int(r["tokens"]) == 1 for r in rows)


def test_a_keys_limits_hold_across_a_replica_restart(subnet, replicas, redis):
    key = new_key(redis, "frank", "--rpm", "3", "--tokens-per-day", "1000")
    assert [ask(replicas[0], key).status_code for _ in range(3)] == [200] * 3
    replicas[0].proc.terminate()
    replicas[0].proc.wait(20)
    again = replica(subnet, redis, 0)
    replicas[0] = again
    r = ask(again, key)
    assert r.status_code == 429 and "3 requests per minute" in r.json()["error"]["message"]
    assert used_today(redis, "frank") == 3


def test_redis_lost_mid_run_refuses_then_resumes(replicas, redis):
    key = new_key(redis, "grace", "--rpm", "1000")
    assert ask(replicas[1], key).status_code == 200
    redis.kill()
    try:
        for gw in replicas:
            r = ask(gw, key)
            assert r.status_code == 503, r.text
            assert "Redis" in r.json()["error"]["message"] and r.headers["retry-after"] == "1"
        time.sleep(1.0)         # the background sync notices too
        for gw in replicas:
            h = httpx.get(gw.url + "/health", timeout=5)
            assert h.status_code == 503 and h.json()["status"] == "unavailable"
            assert "unreachable" in h.json()["store"]
        bad = keys(redis, "list", check=False)
        assert bad.returncode != 0 and "cannot reach Redis at 127.0.0.1" in bad.stderr
    finally:
        redis.start()           # same port, same append-only file
    deadline = time.monotonic() + 20
    while [ask(gw, key).status_code for gw in replicas] != [200] * 3:     # the key survived the restart
        assert time.monotonic() < deadline, "the replicas did not resume after Redis returned"
        time.sleep(0.2)
    for gw in replicas:
        assert httpx.get(gw.url + "/health", timeout=5).json()["status"] == "ok"
        assert "Traceback" not in gw.log_text()
