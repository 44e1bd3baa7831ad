"""Gateway state in Redis (``--gateway.redis_url redis://HOST:PORT/DB``): replicas act as one gateway.

Layout (every name under ``sn1:gw:``):

- ``key:<sha256>``  hash: name, prefix, rpm, tpd, created, revoked, id. The key's text is never stored.
- ``name:<name>``   the sha256 of the active key of that name; ``keys`` zset of every key by id;
  ``next_id`` counter.
- ``rpm:<sha256>``  zset of the last minute's admitted requests (score: Redis's clock).
- ``res:<sha256>``  zset of token reservations in flight (member ``rid:tokens``, score: when the
  reservation lapses if its request never settles, e.g. a replica that died mid-request).
- ``use:<sha256>``  hash: day (UTC day number), used (tokens that day), reserved (sum of ``res``).
- ``rel``           hash ``uid:hotkey`` -> reliability (moving average of organic outcomes).
- ``load:<replica>`` hash uid -> requests in flight at that replica (expires 3 s after its last sync);
  ``replicas`` zset of replicas by last sync.
- ``records``       stream, one entry per request, capped (approximately) at ``--gateway.records_max``.

Admission is one Lua script (atomic in Redis, with Redis's own clock, so replicas' clocks do not
matter): the key must be active, fewer than ``rpm`` requests in the sliding minute, and tokens
left today after what is used and reserved; it then counts the request and reserves the tokens.
Settling is another script. Keys, limits and usage are thus exact across replicas, and a revoked
or updated key takes effect on the next request at every replica: the admission script reads the
key's state and limits itself. (A replica reuses a key it looked up for ``KEY_CACHE_TTL``, 0.5 s,
to answer 401 early and save a round trip; admission is never cached.)

Reliability and in-flight load are shared every ``SYNC`` seconds (0.5 s) by a background task:
routing reads its local copy and never waits on Redis. Records are sent in batches by that task.

When Redis cannot be reached, requests are refused with 503 (nothing admitted unaccounted),
``/health`` says why, and service resumes by itself when Redis answers again. Settlements that
could not be written are kept (bounded) and written when Redis returns.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from urllib.parse import urlsplit

from ..errors import UsageError
from . import keys as keys_mod
from .limits import LimitExceeded
from .records import COLUMNS, Record, RecordWriter
from .store import KeyRevoked, Store, StoreUnavailable

log = logging.getLogger("sn1.gateway")

NS = "sn1:gw:"
SYNC = 0.5                  # seconds between syncs of reliability, load and records
LOAD_TTL_MS = 3000          # a replica's load counts this long after its last sync
TIMEOUT = 1.0               # seconds for any one Redis call (connect, command, a free connection)
MAX_CONNECTIONS = 100
MAX_PENDING = 10_000        # settlements and records kept while Redis is away
RECORDS_MAX = 1_000_000
KEY_CACHE_TTL = 0.5         # seconds a looked-up key is reused by this replica (admission re-reads it)
KEY_CACHE_MAX = 10_000
WINDOW_MS = 61_000

ADMIT = """
local k = redis.call('HMGET', KEYS[1], 'rpm', 'tpd', 'revoked')
if not k[1] or (k[3] and k[3] ~= '') then return {-1, '0'} end
local rpm, tpd = tonumber(k[1]), tonumber(k[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 60)
if redis.call('ZCARD', KEYS[2]) >= rpm then
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  return {-2, tostring(tonumber(first[2]) + 60 - now), k[1]}
end
local day = math.floor(now / 86400)
local u = redis.call('HMGET', KEYS[4], 'day', 'used', 'reserved')
local used, reserved = tonumber(u[2]) or 0, tonumber(u[3]) or 0
if tonumber(u[1]) ~= day then used = 0 end
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
if #lapsed > 0 then
  for _, m in ipairs(lapsed) do reserved = reserved - tonumber(string.match(m, ':(%d+)$')) end
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
end
if reserved < 0 then reserved = 0 end
local left = tpd - used - reserved
local grant = math.min(tonumber(ARGV[1]), left)
if grant > 0 then
  redis.call('ZADD', KEYS[2], now, ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[2] .. ':' .. string.format('%d', grant))
  reserved = reserved + grant
end
redis.call('HSET', KEYS[4], 'day', string.format('%d', day), 'used', string.format('%d', used),
           'reserved', string.format('%d', reserved))
redis.call('PEXPIRE', KEYS[4], 259200000)
if grant <= 0 then return {-3, tostring((day + 1) * 86400 - now), k[2]} end
return {grant, '0'}
"""

SETTLE = """
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
local t = redis.call('TIME')
local day = math.floor(tonumber(t[1]) / 86400)
local u = redis.call('HMGET', KEYS[2], 'day', 'used', 'reserved')
local used, reserved = tonumber(u[2]) or 0, tonumber(u[3]) or 0
if tonumber(u[1]) ~= day then used = 0 end
if removed == 1 then reserved = math.max(0, reserved - tonumber(ARGV[2])) end
used = used + tonumber(ARGV[3])
redis.call('HSET', KEYS[2], 'day', string.format('%d', day), 'used', string.format('%d', used),
           'reserved', string.format('%d', reserved))
redis.call('PEXPIRE', KEYS[2], 259200000)
return used
"""

RELIABILITY = """
local alpha, floor = tonumber(ARGV[1]), tonumber(ARGV[2])
for i = 3, #ARGV, 2 do
  local r = tonumber(redis.call('HGET', KEYS[1], ARGV[i])) or 1.0
  r = math.max(floor, (1 - alpha) * r + alpha * tonumber(ARGV[i + 1]))
  redis.call('HSET', KEYS[1], ARGV[i], tostring(r))
end
return #ARGV
"""

# KEYS: key:<hash>, name:<name>, keys, next_id; ARGV: name, prefix, rpm, tpd, created, hash, revoked ('' if not)
CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
if ARGV[7] == '' and redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local id = redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[1], 'name', ARGV[1], 'prefix', ARGV[2], 'rpm', ARGV[3], 'tpd', ARGV[4],
           'created', ARGV[5], 'revoked', ARGV[7], 'id', id)
if ARGV[7] == '' then redis.call('SET', KEYS[2], ARGV[6]) end
redis.call('ZADD', KEYS[3], id, ARGV[6])
return id
"""

REVOKE = """
local h = redis.call('GET', KEYS[1])
if not h then return false end
redis.call('HSET', ARGV[1] .. h, 'revoked', ARGV[2])
redis.call('DEL', KEYS[1])
return h
"""

UPDATE = """
local h = redis.call('GET', KEYS[1])
if not h then return false end
if ARGV[2] ~= '' then redis.call('HSET', ARGV[1] .. h, 'rpm', ARGV[2]) end
if ARGV[3] ~= '' then redis.call('HSET', ARGV[1] .. h, 'tpd', ARGV[3]) end
return h
"""


def where(url: str) -> str:
    """``host:port/db`` of a Redis URL, without any password, for messages."""
    u = urlsplit(url)
    return f"{u.hostname or 'localhost'}:{u.port or 6379}{u.path or '/0'}"


def check_url(url: str) -> str:
    u = urlsplit(url)
    if u.scheme not in ("redis", "rediss", "unix"):
        raise UsageError(f"--gateway.redis_url must look like redis://HOST:PORT/DB, not {url!r}")
    try:
        u.port
    except ValueError:
        raise UsageError(f"--gateway.redis_url has a bad port: {url!r}") from None
    return url


def _key_from(h: str, d: dict) -> keys_mod.Key | None:
    if not d or "name" not in d:
        return None
    return keys_mod.Key(int(d.get("id", 0)), d["name"], d.get("prefix", ""), int(d["rpm"]), int(d["tpd"]),
                        float(d.get("created", 0)), float(d["revoked"]) if d.get("revoked") else None, h)


def _no_retry():
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    return Retry(NoBackoff(), 0)


# ---- the server side ------------------------------------------------------------------------------

class RedisStore(Store):
    def __init__(self, url: str, *, replica: str, hold: float, folder: str | None = None,
                 records_max: int = RECORDS_MAX, sync_interval: float = SYNC):
        from redis.asyncio import BlockingConnectionPool, Redis

        self.url, self.where = url, where(url)
        self.replica = replica
        self.hold = hold
        self.records_max = records_max
        self.sync_interval = sync_interval
        pool = BlockingConnectionPool.from_url(
            url, max_connections=MAX_CONNECTIONS, timeout=TIMEOUT, socket_timeout=TIMEOUT,
            socket_connect_timeout=TIMEOUT, retry=_no_retry(), decode_responses=True)
        self.r = Redis(connection_pool=pool, retry=_no_retry())
        self._admit = self.r.register_script(ADMIT)
        self._settle = self.r.register_script(SETTLE)
        self._rel = self.r.register_script(RELIABILITY)
        self.down: str | None = None
        self.settles: deque = deque()         # (hash, member, reserved, used) not yet written
        self.rows: deque = deque()            # records not yet sent
        self.dropped = 0
        self.local = RecordWriter(folder) if folder else None
        self.router = None
        self._task: asyncio.Task | None = None
        self._seq = 0
        self._rid = uuid.uuid4().hex[:12]
        self._keys: dict[str, tuple[float, keys_mod.Key]] = {}

    # -- failures
    def _fail(self, e: Exception) -> StoreUnavailable:
        why = f"{type(e).__name__}: {e}".strip()[:200]
        if self.down is None:
            log.warning("Redis at %s unreachable (%s): refusing requests with 503 until it answers", self.where, why)
        self.down = why
        return StoreUnavailable(f"the gateway's shared state (Redis at {self.where}) is unreachable; "
                                f"retry shortly")

    def _ok(self) -> None:
        if self.down is not None:
            log.warning("Redis at %s answers again: serving", self.where)
            self.down = None

    def health(self) -> dict:
        if self.down is not None:
            return {"status": "unavailable", "store": f"redis {self.where} unreachable: {self.down}",
                    "replica": self.replica}
        return {"store": f"redis {self.where}", "replica": self.replica}

    # -- requests
    async def lookup(self, token: str):
        from redis.exceptions import RedisError

        if not keys_mod.looks_like_key(token):
            return None
        h = keys_mod.hash_key(token)
        now = time.monotonic()
        hit = self._keys.get(h)
        if hit is not None and hit[0] > now and self.down is None:
            return hit[1]
        try:
            d = await self.r.hgetall(NS + "key:" + h)
        except (RedisError, OSError) as e:
            raise self._fail(e) from None
        self._ok()
        k = _key_from(h, d)
        if k is None or k.revoked is not None:
            self._keys.pop(h, None)
            return None
        if len(self._keys) >= KEY_CACHE_MAX:
            self._keys.clear()
        self._keys[h] = (now + KEY_CACHE_TTL, k)
        return k

    def _request_id(self) -> str:
        self._seq += 1
        return f"{self._rid}-{self._seq}"

    async def admit(self, key, want_tokens: int) -> int:
        from redis.exceptions import RedisError

        h = key.hash
        rid = self._request_id()
        try:
            res = await self._admit(
                keys=[NS + "key:" + h, NS + "rpm:" + h, NS + "res:" + h, NS + "use:" + h],
                args=[int(want_tokens), rid, f"{self.hold:.3f}", WINDOW_MS])
        except (RedisError, OSError) as e:
            raise self._fail(e) from None
        self._ok()
        grant, extra = int(res[0]), res[1]
        limit = res[2] if len(res) > 2 else None       # the key's current limit (it may just have changed)
        if grant == -1:
            self._keys.pop(h, None)
            raise KeyRevoked()          # between lookup and admission
        if grant == -2:
            raise LimitExceeded(f"rate limit: key {key.name!r} may send {limit} requests per minute",
                                float(extra))
        if grant == -3:
            raise LimitExceeded(f"token limit: key {key.name!r} has used its {limit} tokens "
                                f"for today (UTC)", float(extra))
        return _Grant(grant, rid)

    async def settle(self, key, reserved, used: int) -> None:
        rid = getattr(reserved, "rid", None)
        if rid is None:
            return
        item = (key.hash, f"{rid}:{int(reserved)}", int(reserved), max(0, int(used)))
        if not await self._write_settle(item):
            if len(self.settles) < MAX_PENDING:
                self.settles.append(item)
            else:
                log.error("lost the settlement of a request of key %r: too many pending", key.name)

    async def _write_settle(self, item) -> bool:
        from redis.exceptions import RedisError

        h, member, reserved, used = item
        try:
            await self._settle(keys=[NS + "res:" + h, NS + "use:" + h], args=[member, reserved, used])
        except (RedisError, OSError) as e:
            self._fail(e)
            return False
        return True

    def record(self, rec: Record) -> None:
        if self.local is not None:
            self.local.add(rec)
        if len(self.rows) >= MAX_PENDING:
            self.dropped += 1
            return
        fields = {c: v for c, v in zip(COLUMNS, rec.row()) if v is not None}
        fields["replica"] = self.replica
        self.rows.append(fields)

    # -- background sync
    async def start(self, router) -> None:
        from collections import deque as _deque

        self.router = router
        router.shared_outcomes = _deque(maxlen=MAX_PENDING)
        try:
            await self.sync()
        except Exception as e:     # noqa: BLE001 - logged; the loop keeps trying
            log.warning("first sync with Redis at %s failed: %s", self.where, e)
        self._task = asyncio.create_task(self._loop())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
        try:
            await asyncio.wait_for(self.sync(), 2 * TIMEOUT)       # last settlements and records
        except Exception:           # noqa: BLE001
            pass
        if self.local is not None:
            self.local.close()
        await self.r.aclose()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.sync_interval)
            try:
                await self.sync()
            except asyncio.CancelledError:
                raise
            except Exception as e:      # noqa: BLE001 - one bad round must not stop sharing
                log.warning("sync with Redis failed: %s", e)

    async def sync(self) -> None:
        from redis.exceptions import RedisError

        try:
            await self.r.ping()
            self._ok()
            while self.settles:
                if not await self._write_settle(self.settles[0]):
                    return
                self.settles.popleft()
            if self.router is not None:
                await self._sync_router(self.router)
            await self._send_records()
        except (RedisError, OSError) as e:
            self._fail(e)

    async def _sync_router(self, router) -> None:
        from .routing import ALPHA, MIN_RELIABILITY

        outcomes = router.shared_outcomes
        batch = [outcomes.popleft() for _ in range(min(len(outcomes), 500))]
        if batch:
            args = [ALPHA, MIN_RELIABILITY]
            for uid, hotkey, ok in batch:
                args += [f"{uid}:{hotkey}", 1 if ok else 0]
            try:
                await self._rel(keys=[NS + "rel"], args=args)
            except BaseException:
                outcomes.extendleft(reversed(batch))
                raise
        now = time.time()
        load = {str(u): n for u, n in router.in_flight.items() if n > 0}
        p = self.r.pipeline(transaction=True)
        lk = NS + "load:" + self.replica
        p.delete(lk)
        if load:
            p.hset(lk, mapping=load)
            p.pexpire(lk, LOAD_TTL_MS)
        p.zadd(NS + "replicas", {self.replica: now})
        p.zremrangebyscore(NS + "replicas", "-inf", now - 600)
        p.zrange(NS + "replicas", 0, -1)
        p.hgetall(NS + "rel")
        *_, replicas, rel = await p.execute()
        router.set_shared_reliability(rel)
        others = [r for r in replicas if r != self.replica]
        remote: dict[int, int] = {}
        if others:
            p = self.r.pipeline(transaction=False)
            for r in others:
                p.hgetall(NS + "load:" + r)
            for d in await p.execute():
                for u, n in d.items():
                    remote[int(u)] = remote.get(int(u), 0) + int(n)
        router.remote_in_flight = remote

    async def _send_records(self) -> None:
        while self.rows:
            batch = [self.rows.popleft() for _ in range(min(len(self.rows), 1000))]
            p = self.r.pipeline(transaction=False)
            for f in batch:
                p.xadd(NS + "records", f, maxlen=self.records_max, approximate=True)
            try:
                await p.execute()
            except BaseException:
                self.rows.extendleft(reversed(batch))
                raise


class _Grant(int):
    """Tokens reserved (an int, as the SQLite store returns) that also knows its reservation's id."""

    rid: str

    def __new__(cls, n: int, rid: str):
        g = super().__new__(cls, n)
        g.rid = rid
        return g


# ---- the operator's side: `sn1 gateway keys ...` and `records` against Redis ---------------------

class RedisKeys:
    def __init__(self, url: str):
        import redis

        self.where = where(check_url(url))
        self.r = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5, decode_responses=True)

    def _call(self, fn, *a, **kw):
        import redis

        try:
            return fn(*a, **kw)
        except redis.RedisError as e:
            raise UsageError(f"cannot reach Redis at {self.where}: {e}") from None

    def create(self, name: str, rpm: int, tokens_per_day: int) -> tuple[str, keys_mod.Key]:
        name = keys_mod.check_name(name)
        keys_mod.check_limits(rpm, tokens_per_day)
        key = keys_mod.new_key()
        h = keys_mod.hash_key(key)
        now = time.time()
        kid = self._call(self.r.eval, CREATE, 4, NS + "key:" + h, NS + "name:" + name, NS + "keys", NS + "next_id",
                         name, key[:keys_mod.SHOWN], rpm, tokens_per_day, repr(now), h, "")
        if not kid or int(kid) < 0:
            raise UsageError(f"an active key named {name!r} exists; revoke it first or choose another name")
        return key, keys_mod.Key(int(kid), name, key[:keys_mod.SHOWN], rpm, tokens_per_day, now, None, h)

    def import_key(self, k: keys_mod.Key, used_today: int = 0) -> str:
        """Copy a key of the SQLite store (its hash: holders keep their key) with today's use.
        Returns "imported", "exists" (this hash is already here) or "name taken" (another active key)."""
        revoked = "" if k.revoked is None else repr(k.revoked)
        kid = self._call(self.r.eval, CREATE, 4, NS + "key:" + k.hash, NS + "name:" + k.name, NS + "keys",
                         NS + "next_id", k.name, k.prefix, k.rpm, k.tokens_per_day, repr(k.created), k.hash, revoked)
        if int(kid) == -1:
            return "exists"
        if int(kid) == 0:
            return "name taken"
        if used_today and k.revoked is None:
            day = int(self._call(self.r.time)[0]) // 86400
            self._call(self.r.hset, NS + "use:" + k.hash, mapping={"day": day, "used": int(used_today), "reserved": 0})
        return "imported"

    def get(self, h: str) -> keys_mod.Key | None:
        return _key_from(h, self._call(self.r.hgetall, NS + "key:" + h))

    def revoke(self, name: str) -> keys_mod.Key:
        h = self._call(self.r.eval, REVOKE, 1, NS + "name:" + name, NS + "key:", repr(time.time()))
        if not h:
            raise UsageError(f"no active key named {name!r} (see `sn1 gateway keys list`)")
        return self.get(h)

    def update(self, name: str, *, rpm: int | None = None, tokens_per_day: int | None = None) -> keys_mod.Key:
        keys_mod.check_limits(rpm, tokens_per_day)
        if rpm is None and tokens_per_day is None:
            raise UsageError("nothing to update: give --rpm and/or --tokens-per-day")
        h = self._call(self.r.eval, UPDATE, 1, NS + "name:" + name, NS + "key:",
                       "" if rpm is None else str(rpm), "" if tokens_per_day is None else str(tokens_per_day))
        if not h:
            raise UsageError(f"no active key named {name!r} (see `sn1 gateway keys list`)")
        return self.get(h)

    def list_keys(self, *, include_revoked: bool = False) -> list[tuple[keys_mod.Key, int]]:
        """(key, tokens used today) by id."""
        hashes = self._call(self.r.zrange, NS + "keys", 0, -1)
        p = self.r.pipeline(transaction=False)
        for h in hashes:
            p.hgetall(NS + "key:" + h)
            p.hmget(NS + "use:" + h, "day", "used")
        p.time()
        res = self._call(p.execute)
        today = int(res[-1][0]) // 86400
        out = []
        for i, h in enumerate(hashes):
            k = _key_from(h, res[2 * i])
            if k is None or (k.revoked is not None and not include_revoked):
                continue
            day, used = res[2 * i + 1]
            out.append((k, int(used) if day is not None and int(day) == today and used else 0))
        return out

    def records(self, last: int, key_name: str | None = None, scan: int = 100_000) -> list[dict]:
        """The latest ``last`` records (of ``key_name``), newest first, from the shared stream."""
        out: list[dict] = []
        end, seen = "+", 0
        while len(out) < last and seen < scan:
            batch = self._call(self.r.xrevrange, NS + "records", end, "-", count=1000)
            if not batch:
                break
            for eid, f in batch:
                if key_name is None or f.get("key_name") == key_name:
                    out.append({"id": eid, **f})
                    if len(out) >= last:
                        break
            seen += len(batch)
            end = "(" + batch[-1][0]
        return out
