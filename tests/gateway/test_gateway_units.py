"""The gateway's parts on their own: keys, limits, routing, request checks, text sanitising, flags."""

from __future__ import annotations

import random
import sqlite3
import subprocess
import sys

import pytest

from sn1.chain.base import Metagraph, Neuron
from sn1.errors import UsageError
from sn1.gateway import db, keys
from sn1.gateway.limits import DAY, LimitExceeded, Limits
from sn1.gateway.request import parse
from sn1.gateway.routing import Router
from sn1.protocol.request import RequestError
from sn1.testing import ROOT, run_sn1


def test_keys_are_stored_hashed_and_revocable(tmp_path):
    conn = db.connect(str(tmp_path))
    key, k = keys.create(conn, "alice", rpm=5, tokens_per_day=10)
    assert key.startswith("sn1-") and len(key) >= 40
    assert keys.lookup(conn, key) == k
    raw = open(db.db_path(str(tmp_path)), "rb").read()
    assert key.encode() not in raw and key[4:].encode() not in raw
    assert keys.lookup(conn, key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    with pytest.raises(UsageError, match="active key named 'alice'"):
        keys.create(conn, "alice")
    keys.revoke(conn, "alice")
    assert keys.lookup(conn, key) is None
    key2, _ = keys.create(conn, "alice")       # the name is free again
    assert keys.lookup(conn, key2).name == "alice"
    for bad in ("", " ", "x" * 65, "tab\there"):
        with pytest.raises(UsageError):
            keys.create(conn, bad)


def _key(rpm=1000, tpd=10**9, name="k"):
    return keys.Key(1, name, "sn1-x", rpm, tpd, 0.0)


def test_rpm_window_and_retry_after():
    now = [1000.0]
    lim = Limits(clock=lambda: now[0])
    k = _key(rpm=2)
    lim.admit(k, 10)
    now[0] += 20
    lim.admit(k, 10)
    with pytest.raises(LimitExceeded) as e:
        lim.admit(k, 10)
    assert e.value.retry_after == 40          # until the first request leaves the minute
    now[0] += 40
    lim.admit(k, 10)


def test_tokens_are_reserved_so_concurrent_requests_cannot_overspend():
    now = [5 * DAY + 100]
    lim = Limits(clock=lambda: now[0])
    k = _key(tpd=100)
    assert lim.admit(k, 60) == 60
    assert lim.admit(k, 60) == 40             # only what is left
    with pytest.raises(LimitExceeded, match="tokens for today") as e:
        lim.admit(k, 1)
    assert e.value.retry_after == DAY - 100   # until midnight UTC
    lim.settle(k, 60, 10)                     # used 10 of its 60: 50 come back
    assert lim.admit(k, 60) == 50
    now[0] += DAY                             # a new day: what ends now counts for it
    lim.settle(k, 40, 40)
    assert lim.admit(k, 100) == 10            # the third request still holds its 50
    lim.settle(k, 50, 0)
    lim.settle(k, 10, 0)
    assert lim.used_today("k") == 40 and lim.admit(k, 100) == 60


def _mg(*neurons):
    return Metagraph(1, 0, tuple(Neuron(uid=i, hotkey=f"h{i}", coldkey="c", **kw) for i, kw in enumerate(neurons)))


def test_router_candidates_and_preferences():
    r = Router("h0", rng=random.Random(7))
    r.update(_mg({"endpoint": "1:1"},                                   # its own hotkey
                 {"endpoint": "1:2", "incentive": 0.9},
                 {"endpoint": "1:3", "incentive": 0.0},
                 {"endpoint": None, "incentive": 0.5},                  # not serving
                 {"endpoint": "1:5", "validator_permit": True, "stake": 10000.0}))   # a big validator
    assert [c.uid for c in r.candidates] == [1, 2]
    firsts = [r.order(2)[0].uid for _ in range(2000)]
    assert firsts.count(1) > 0.9 * 2000       # the top incentive vs none: 1.05 vs 0.05
    assert firsts.count(2) > 0                # but the unpaid miner is still tried sometimes
    for _ in range(3):
        r.outcome(1, False)
    firsts = [r.order(2)[0].uid for _ in range(2000)]
    assert firsts.count(2) > firsts.count(1)  # three organic failures outweigh incentive
    assert sorted(c.uid for c in r.order(5)) == [1, 2]


def test_router_spreads_concurrent_load():
    r = Router("me", rng=random.Random(1))
    r.update(_mg({"endpoint": "1:1"}, {"endpoint": "1:2"}))
    c0, c1 = r.candidates
    for _ in range(9):
        r.start(c0)                           # nine requests in flight on uid 0
    firsts = [r.order(1)[0].uid for _ in range(1000)]
    assert firsts.count(1) > 0.8 * 1000


def test_router_forgets_a_uid_that_changed_hands():
    r = Router("me")
    r.update(_mg({"endpoint": "1:1"}))
    r.outcome(0, False)
    r.update(Metagraph(1, 0, (Neuron(uid=0, hotkey="new", coldkey="c", endpoint="1:1"),)))
    assert r.reliability.get(0, 1.0) == 1.0


@pytest.mark.parametrize("body,words", [
    (b'{"messages": [{"role": "user", "content": "hi"}], "n": 2}', "n:"),
    (b'{"messages": [{"role": "user", "content": "hi", "extra": 1}]}', "messages.0.extra: unknown field"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "temperature": 3}', "temperature"),
    (b'{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 0}', "max_tokens"),
    (b'\xff\xfe', "not valid JSON"),
])
def test_request_checks(body, words):
    with pytest.raises(RequestError, match=words) as e:
        parse(body)
    assert e.value.status == 400


def test_request_accepts_openai_fields():
    req = parse(b'{"model": "x", "messages": [{"role": "user", "content": "hi", "name": "me"}], "stream": true, '
                b'"stream_options": {"include_usage": true}, "user": "u", "seed": 1, "stop": "a", "top_p": 0.5}')
    assert req.stream and req.stream_options.include_usage and req.stop_list == ["a"]


@pytest.mark.parametrize("flags,words", [
    (["--gateway.port", "70000"], "--gateway.port: must be in [0, 65535] (0: any free port), got 70000"),
    (["--gateway.first_chunk_timeout", "0"], "--gateway.first_chunk_timeout: must be > 0, got 0"),
    (["--gateway.timeout", "inf"], "--gateway.timeout: must be > 0, got inf"),
    (["--gateway.max_attempts", "0"], "--gateway.max_attempts: must be >= 1, got 0"),
    (["--gateway.port", "abc"], "expected an integer in [0, 65535] (0: any free port), got 'abc'"),
])
def test_bad_flags_are_one_line_errors(flags, words, tmp_path):
    for cmd in ([sys.executable, "-m", "sn1.cli", "gateway"], [sys.executable, str(ROOT / "neurons" / "gateway.py")]):
        p = subprocess.run([*cmd, *flags, "--gateway.path", str(tmp_path)], capture_output=True, text=True,
                           cwd=ROOT, timeout=60)
        assert p.returncode == 2 and words in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr


def test_keys_cli_prints_the_key_last(tmp_path):
    out = run_sn1("gateway", "keys", "create", "--name", "dave", "--rpm", "7", "--gateway.path", tmp_path, check=True)
    key = out.stdout.strip().splitlines()[-1]
    assert key.startswith("sn1-") and " " not in key
    listed = run_sn1("gateway", "keys", "list", "--gateway.path", tmp_path, check=True).stdout
    assert "dave" in listed and key not in listed and key[:10] in listed
    bad = run_sn1("gateway", "keys", "create", "--name", "eve", "--tokens-per-day", "0", "--gateway.path", tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: sn1 gateway keys create: argument --tokens-per-day: must be >= 1, got 0"
    gone = run_sn1("gateway", "keys", "revoke", "--name", "nobody", "--gateway.path", tmp_path)
    assert gone.returncode == 2 and "no active key named 'nobody'" in gone.stderr
    rows = sqlite3.connect(tmp_path / "gateway.db").execute("SELECT hash FROM keys").fetchall()
    assert rows and all(len(h) == 64 for (h,) in rows)


def test_records_are_written_and_seed_reliability_and_usage(tmp_path):
    import time

    from sn1.gateway.records import Record, RecordWriter, recent_outcomes, tokens_today

    w = RecordWriter(str(tmp_path))
    w.add(Record(key_name="a", uid=3, status="ok", ttft=0.01, tokens=7, duration=0.1))
    w.add(Record(key_name="a", uid=4, status="broken", tokens=2, failed=[(5, "refused: HTTP 403"), (6, "timeout")]))
    w.add(Record(key_name="b", status="429"))
    w.add(Record(key_name="a", time=time.time() - 2 * DAY, uid=3, status="ok", tokens=100))
    w.close()
    conn = db.connect(str(tmp_path))
    assert tokens_today(conn, time.time() // DAY * DAY) == {"a": 9, "b": 0}
    assert sorted(recent_outcomes(conn)) == [(3, True), (3, True), (4, False), (5, False), (6, False)]


def test_validator_scores_steer_routing(tmp_path):
    import json

    from sn1.gateway.scores import read_scores

    mg = _mg({"endpoint": "1:1"}, {"endpoint": "1:2"}, {"endpoint": "1:3"})
    assert read_scores(str(tmp_path), mg) == {}                       # no validator yet
    (tmp_path / "state.json").write_text(json.dumps({
        "format": "sn1-validator-state/1", "step": 9, "last_weights_block": 0,
        "scores": [0.0, 0.8, 0.4], "hotkeys": ["h0", "h1", "someone-else"]}))
    scores = read_scores(str(tmp_path), mg)
    assert scores == {1: 0.8}         # uid 2's score was earned by another hotkey
    r = Router("me", rng=random.Random(3))
    r.update(mg)
    r.set_scores(scores)
    firsts = [r.order(3)[0].uid for _ in range(3000)]
    assert firsts.count(1) > 0.8 * 3000
    (tmp_path / "state.json").write_text("{torn")
    assert read_scores(str(tmp_path / "state.json"), mg) == {}
