"""The Redis store in-process against a real redis-server: exact admission, lapsed reservations,
shared reliability and load, keys managed by name, and refusal (never admission) while Redis is away."""

from __future__ import annotations

import asyncio
import time

import pytest

from sn1.errors import UsageError
from sn1.gateway.limits import LimitExceeded
from sn1.gateway.routing import Router
from sn1.gateway.store import KeyRevoked, StoreUnavailable
from sn1.gateway.store_redis import RedisKeys, RedisStore

from .redis_server import RedisServer, need_redis_server


@pytest.fixture
def redis_url(tmp_path):
    need_redis_server()
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


async def test_admission_is_exact_across_stores(redis_url):
    admin = RedisKeys(redis_url)
    token, key = admin.create("alice", rpm=60, tokens_per_day=10**6)
    s = [RedisStore(redis_url, replica=f"r{i}", hold=60.0) for i in range(3)]
    try:
        looked = await s[1].lookup(token)
        assert looked is not None and looked.name == "alice" and looked.hash == key.hash

        async def one(i):
            try:
                return int(await s[i % 3].admit(key, 5))
            except LimitExceeded as e:
                assert e.retry_after >= 1 and "rate limit" in e.message
                return None

        got = await asyncio.gather(*(one(i) for i in range(300)))
        assert sum(g is not None for g in got) == 60
        assert all(g == 5 for g in got if g is not None)
    finally:
        for x in s:
            await x.close()


async def test_tokens_per_day_reserved_settled_and_lapsed(redis_url):
    admin = RedisKeys(redis_url)
    _, key = admin.create("bob", rpm=1000, tokens_per_day=10)
    a = RedisStore(redis_url, replica="a", hold=60.0)
    b = RedisStore(redis_url, replica="b", hold=0.5)
    try:
        g1 = await a.admit(key, 6)
        g2 = await b.admit(key, 6)
        assert (int(g1), int(g2)) == (6, 4)             # cut to what is left of the day
        with pytest.raises(LimitExceeded) as e:
            await a.admit(key, 1)
        assert "token limit" in e.value.message
        await a.settle(key, g1, 2)                      # used 2 of its 6: 4 come back
        assert int(await a.admit(key, 9)) == 4
        await asyncio.sleep(0.7)                        # b's reservation lapses (its replica "died")
        assert int(await a.admit(key, 9)) == 4
        [(k, used)] = admin.list_keys()
        assert k.name == "bob" and used == 2
        await b.settle(key, g2, 3)                      # a late settlement still counts its use
        assert dict((k.name, u) for k, u in admin.list_keys())["bob"] == 5
    finally:
        await a.close()
        await b.close()


async def test_revoke_and_update_take_effect_on_the_next_request(redis_url):
    admin = RedisKeys(redis_url)
    token, key = admin.create("carol", rpm=100, tokens_per_day=100)
    s = RedisStore(redis_url, replica="a", hold=60.0)
    try:
        with pytest.raises(UsageError, match="exists"):
            admin.create("carol", 1, 1)
        assert admin.update("carol", rpm=2).rpm == 2
        assert [int(await s.admit(key, 1)) for _ in range(2)] == [1, 1]
        with pytest.raises(LimitExceeded):
            await s.admit(key, 1)
        assert admin.update("carol", tokens_per_day=7).tokens_per_day == 7
        assert (await s.lookup(token)).tokens_per_day == 7
        looked = await s.lookup(token)
        admin.revoke("carol")
        with pytest.raises(KeyRevoked):                 # admission reads the key: revoked at once
            await s.admit(looked, 1)
        assert await s.lookup(token) is None
        other = RedisStore(redis_url, replica="b", hold=60.0)
        assert (await other.lookup(token2 := admin.create("dan", 5, 5)[0])).name == "dan"
        admin.revoke("dan")
        await asyncio.sleep(0.6)                        # a replica's cached lookup lasts 0.5 s at most
        assert await other.lookup(token2) is None
        await other.close()
        with pytest.raises(UsageError, match="no active key"):
            admin.update("carol", rpm=5)
        assert [k.name for k, _ in admin.list_keys(include_revoked=True)] == ["carol", "dan"]
        assert admin.list_keys() == []
        token2, _ = admin.create("carol", 1, 1)         # the name is free again
        assert (await s.lookup(token2)).name == "carol" and await s.lookup(token) is None
    finally:
        await s.close()


async def test_reliability_and_load_are_shared(redis_url):
    class MG:
        class N:
            def __init__(self, uid):
                self.uid, self.hotkey, self.endpoint, self.incentive = uid, f"hk{uid}", f"127.0.0.1:{uid}", 1.0
                self.validator_permit, self.stake = False, 0.0

        neurons = [N(1), N(2)]

    a, b = RedisStore(redis_url, replica="a", hold=60.0), RedisStore(redis_url, replica="b", hold=60.0)
    ra, rb = Router("me"), Router("me")
    try:
        for r, s in ((ra, a), (rb, b)):
            r.update(MG)
            await s.start(r)
        for _ in range(4):
            ra.outcome(2, False)
        ra.start(ra.candidates[0])
        await a.sync()
        await b.sync()
        assert rb.reliability[2] == pytest.approx(ra.reliability[2]) and rb.reliability[2] < 0.5
        assert rb.remote_in_flight == {1: 1} and rb.in_flight == {}
        # uid 1: reliable, one request in flight at the other replica; uid 2: unreliable, idle
        assert rb.weight(rb.candidates[0]) == pytest.approx((1 + 0.05) / 2)
        assert rb.weight(rb.candidates[1]) == pytest.approx((1 + 0.05) * rb.reliability[2] ** 4)
    finally:
        await a.close()
        await b.close()


async def test_redis_away_refuses_and_resumes(tmp_path):
    need_redis_server()
    server = RedisServer(tmp_path / "redis", persist=True)
    server.start()
    try:
        admin = RedisKeys(server.url)
        token, key = admin.create("dave", rpm=1000, tokens_per_day=1000)
        s = RedisStore(server.url, replica="a", hold=60.0)
        g = await s.admit(key, 10)
        server.kill()
        t0 = time.monotonic()
        with pytest.raises(StoreUnavailable, match="unreachable"):
            await s.lookup(token)
        with pytest.raises(StoreUnavailable):
            await s.admit(key, 1)
        assert time.monotonic() - t0 < 5
        assert s.health()["status"] == "unavailable" and "unreachable" in s.health()["store"]
        await s.settle(key, g, 7)                       # kept, written when Redis returns
        assert len(s.settles) == 1
        server.start()                                  # same port, same append-only file
        deadline = time.monotonic() + 20
        while True:
            await s.sync()
            if s.down is None and not s.settles:
                break
            assert time.monotonic() < deadline, s.down
            await asyncio.sleep(0.2)
        assert s.health().get("status") is None
        assert (await s.lookup(token)).name == "dave"   # no key lost across the restart
        assert dict((k.name, u) for k, u in RedisKeys(server.url).list_keys())["dave"] == 7
        await s.close()
    finally:
        server.stop()


def test_keys_update_and_records_commands_in_sqlite_mode(tmp_path):
    """The same commands without --gateway.redis_url act on the SQLite file (the default)."""
    import json

    from sn1.gateway import db, keys
    from sn1.gateway.records import Record, RecordWriter
    from sn1.testing import run_sn1

    path = str(tmp_path / "gw")
    run_sn1("gateway", "keys", "create", "--name", "ann", "--gateway.path", path, check=True)
    out = run_sn1("gateway", "keys", "update", "--name", "ann", "--rpm", "7", "--gateway.path", path, check=True)
    assert "7 requests/minute, 100000 tokens/day" in out.stdout
    [k] = keys.list_keys(db.connect(path))
    assert (k.rpm, k.tokens_per_day) == (7, 100000)
    bad = run_sn1("gateway", "keys", "update", "--name", "ann", "--gateway.path", path)
    assert bad.returncode != 0 and "nothing to update" in bad.stderr and "Traceback" not in bad.stderr
    w = RecordWriter(path)
    for i in range(3):
        w.add(Record(key_name="ann" if i != 1 else "other", uid=i, status="ok", tokens=i))
    w.close()
    out = run_sn1("gateway", "records", "--key", "ann", "--gateway.path", path, check=True).stdout
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["key_name"], r["uid"]) for r in rows] == [("ann", 2), ("ann", 0)]     # newest first


def test_a_bad_redis_url_is_one_line(tmp_path):
    from sn1.testing import run_sn1

    bad = run_sn1("gateway", "keys", "list", "--gateway.redis_url", "http://x:1/0")
    assert bad.returncode != 0 and "--gateway.redis_url must look like redis://HOST:PORT/DB" in bad.stderr
    assert "Traceback" not in bad.stderr


async def test_keys_import_from_sqlite_keeps_holders_keys(redis_url, tmp_path):
    from sn1.gateway import db, keys
    from sn1.gateway.records import Record, RecordWriter
    from sn1.testing import run_sn1

    path = str(tmp_path / "gw")
    conn = db.connect(path)
    token, _ = keys.create(conn, "ann", rpm=3, tokens_per_day=500)
    old, _ = keys.create(conn, "old")
    keys.revoke(conn, "old")
    keys.create(conn, "bea")
    w = RecordWriter(path)
    w.add(Record(key_name="ann", uid=1, status="ok", tokens=120))
    w.close()
    RedisKeys(redis_url).create("bea", 1, 1)            # a different key already has that name in Redis
    out = run_sn1("gateway", "keys", "import", "--gateway.path", path, "--gateway.redis_url", redis_url, check=True)
    assert "2 keys imported" in out.stdout and "not imported: 'bea'" in out.stdout
    s = RedisStore(redis_url, replica="a", hold=60.0)
    try:
        k = await s.lookup(token)                       # the holder's key works as it is
        assert (k.name, k.rpm, k.tokens_per_day) == ("ann", 3, 500)
        assert await s.lookup(old) is None               # revoked stays revoked
        assert int(await s.admit(k, 1000)) == 380        # today's 120 tokens came along
    finally:
        await s.close()
    again = run_sn1("gateway", "keys", "import", "--gateway.path", path, "--gateway.redis_url", redis_url, check=True)
    assert "0 keys imported" in again.stdout and "2 were there already" in again.stdout
    bad = run_sn1("gateway", "keys", "import", "--gateway.path", path)
    assert bad.returncode != 0 and "needs --gateway.redis_url" in bad.stderr
