"""Live sources against a stand-in MediaWiki server on 127.0.0.1: success, cache, failure, fallback."""

from __future__ import annotations

import importlib.util
import logging
import random
import socket
import time

import pytest

from sn1.datasets import DatasetError, SourceError, WithFallback, make_datasets
from sn1.datasets.code import HuggingFaceCode, OfflineCode
from sn1.datasets.wiki_offline import OfflineDates, OfflineEncyclopedia
from sn1.datasets.wikipedia import LiveDates, LiveEncyclopedia, MediaWiki, sections
from sn1.llm.scripted import ScriptedEngine
from sn1.rewards.date import first_date
from sn1.tasks import build_task


def test_sections_split_headings_into_paths():
    text = "Lead.\n== A ==\nIn A.\n=== B ===\nIn B.\n== C ==\n\n== D ==\nIn D."
    assert sections(text) == [(["Introduction"], "Lead."), (["A"], "In A."), (["A", "B"], "In B."),
                              (["D"], "In D.")]


def test_live_encyclopedia_picks_a_long_section_never_an_excluded_one(wiki_server):
    client = MediaWiki(wiki_server.url, timeout=2)
    ds = LiveEncyclopedia(client)
    seen = set()
    for seed in range(30):
        ctx = ds.sample(random.Random(seed))
        assert ctx.title == "Stand-in Star" and ctx.source == "wikipedia (live)"
        assert len(ctx.content.split()) >= 50
        assert ctx.tags == ["Stars"]
        seen.add(ctx.extra["section"])
    assert seen == {"Introduction", "History", "History / Early observations"}
    # list=random is asked every time; the page itself comes from the cache after the first time.
    pages = [q for q in wiki_server.requests if q.get("prop", "").startswith("extracts")]
    assert len(pages) == 1
    assert all(q["format"] == "json" and q["explaintext"] == "1" for q in pages)


def test_disambiguation_pages_are_skipped(wiki_server):
    wiki_server.random_titles = ["Mercury (disambiguation)", "Stand-in Star"]
    ctx = LiveEncyclopedia(MediaWiki(wiki_server.url, timeout=2)).sample(random.Random(0))
    assert ctx.title == "Stand-in Star" and ctx.stats["tries"] == 2


def test_disk_cache_serves_pages_without_the_network(wiki_server, tmp_path):
    deadline = time.monotonic() + 5
    MediaWiki(wiki_server.url, timeout=2, cache_dir=tmp_path).page("Stand-in Star", deadline)
    assert len(list(tmp_path.glob("*.json"))) == 1
    n = len(wiki_server.requests)
    wiki_server.mode = "error"
    page = MediaWiki(wiki_server.url, timeout=2, cache_dir=tmp_path).page("Stand-in Star", deadline)
    assert page["title"] == "Stand-in Star" and len(wiki_server.requests) == n


DAYS = [f"May {d}" for d in range(1, 8)]


def test_disk_cache_keeps_at_most_its_entries_evicting_the_least_recently_used(wiki_server, tmp_path):
    client = MediaWiki(wiki_server.url, timeout=2, cache_dir=tmp_path, disk_cache_entries=3)
    deadline = time.monotonic() + 5
    for title in DAYS[:3]:
        client.page(title, deadline)
    assert len(list(tmp_path.glob("*.json"))) == 3
    # A fresh client (empty memory cache) reads May 1 from disk: it becomes the most recently used.
    n = len(wiki_server.requests)
    MediaWiki(wiki_server.url, timeout=2, cache_dir=tmp_path, disk_cache_entries=3).page(DAYS[0], deadline)
    assert len(wiki_server.requests) == n
    for title in DAYS[3:5]:
        client.page(title, deadline)
    kept = {p.name for p in tmp_path.glob("*.json")}
    assert kept == {client._disk_path(t).name for t in (DAYS[0], DAYS[3], DAYS[4])}
    assert not list(tmp_path.glob(".tmp-*"))


def test_disk_cache_keeps_within_its_bytes(wiki_server, tmp_path):
    deadline = time.monotonic() + 5
    probe = MediaWiki(wiki_server.url, timeout=2, cache_dir=tmp_path / "probe")
    probe.page(DAYS[0], deadline)
    size = next((tmp_path / "probe").glob("*.json")).stat().st_size
    cap = int(size * 2.5)               # room for two pages
    client = MediaWiki(wiki_server.url, timeout=2, cache_dir=tmp_path / "c", disk_cache_bytes=cap)
    for title in DAYS:
        client.page(title, deadline)
        files = list((tmp_path / "c").glob("*.json"))
        assert sum(f.stat().st_size for f in files) <= cap
    assert {f.name for f in files} == {client._disk_path(t).name for t in DAYS[-2:]}


def test_make_datasets_passes_the_cache_cap(tmp_path):
    pool = make_datasets(True, wikipedia_api="http://127.0.0.1:9/w/api.php", cache_dir=str(tmp_path),
                         cache_max_mb=1.5)
    assert pool["wiki"].live.client.disk_cache_bytes == 1572864


def test_memory_cache_is_bounded(wiki_server):
    client = MediaWiki(wiki_server.url, timeout=2, cache_size=2)
    deadline = time.monotonic() + 5
    for title in ("January 1", "January 2", "January 3"):
        client.page(title, deadline)
    assert list(client._cache) == ["January 2", "January 3"]


def test_live_dates_read_events_births_and_deaths(wiki_server):
    ds = LiveDates(MediaWiki(wiki_server.url, timeout=2))
    kinds = {}
    for seed in range(40):
        ctx = ds.sample(random.Random(seed))
        kinds[ctx.topic] = ctx
        assert first_date(ctx.extra["date"]) is not None          # the date reward can read it
        assert ctx.extra["date"].startswith(ctx.title) and ctx.extra["date"].endswith(ctx.subtopic)
        assert "0473" not in ctx.content and "(" not in ctx.content
    assert set(kinds) == {"Events", "Births", "Deaths"}
    assert kinds["Events"].content == "Carmen premieres at the Opéra-Comique in Paris"
    assert kinds["Births"].content == "Alexander Graham Bell, Scottish-American inventor, was born"
    assert kinds["Deaths"].content == "Robert Adam, Scottish architect, died"


@pytest.mark.parametrize("mode", ["error", "garbage"])
def test_bad_answers_raise_source_error(wiki_server, mode):
    wiki_server.mode = mode
    with pytest.raises(SourceError):
        LiveEncyclopedia(MediaWiki(wiki_server.url, timeout=2)).sample(random.Random(0))


def test_a_hanging_server_costs_at_most_the_timeout(wiki_server):
    wiki_server.mode = "hang"
    client = MediaWiki(wiki_server.url, timeout=0.5)
    t0 = time.monotonic()
    with pytest.raises(SourceError):
        LiveEncyclopedia(client).sample(random.Random(0))
    assert time.monotonic() - t0 < 2.5


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/w/api.php"   # nothing listens there any more


@pytest.mark.parametrize("failure", ["error", "hang", "garbage", "refused"])
def test_network_failure_falls_back_to_offline_with_a_warning(wiki_server, failure, caplog):
    url = _closed_port_url() if failure == "refused" else wiki_server.url
    wiki_server.mode = failure
    client = MediaWiki(url, timeout=0.5)
    ds = WithFallback(LiveEncyclopedia(client), OfflineEncyclopedia(), cooldown=0)
    with caplog.at_level(logging.WARNING):
        ctx = ds.sample(random.Random(1))
    assert ctx.source.startswith("wikipedia (offline")
    assert ctx.stats["fallback"]
    assert len(ctx.content.split()) >= 50
    assert any("live material unavailable" in r.getMessage() for r in caplog.records)
    # The offline material is the one the same seed gives offline.
    assert ctx.content == OfflineEncyclopedia().sample(random.Random(1)).content


def test_after_a_failure_the_live_source_rests_for_the_cooldown(wiki_server):
    wiki_server.mode = "error"
    ds = WithFallback(LiveDates(MediaWiki(wiki_server.url, timeout=1)), OfflineDates(), cooldown=60)
    ds.sample(random.Random(0))
    n = len(wiki_server.requests)
    wiki_server.mode = "ok"
    ctx = ds.sample(random.Random(0))
    assert len(wiki_server.requests) == n and "skipped" in ctx.stats["fallback"]


def test_live_then_recovered(wiki_server):
    ds = WithFallback(LiveDates(MediaWiki(wiki_server.url, timeout=1)), OfflineDates(), cooldown=0)
    wiki_server.mode = "error"
    assert "fallback" in ds.sample(random.Random(0)).stats
    wiki_server.mode = "ok"
    ctx = ds.sample(random.Random(0))
    assert "fallback" not in ctx.stats and ctx.source == "wikipedia (live day pages)"


def test_tasks_on_live_material_end_to_end(wiki_server):
    pool = make_datasets(True, wikipedia_api=wiki_server.url, timeout=2)
    llm = ScriptedEngine()
    task = build_task("date_qa", llm, random.Random(3), datasets=pool)
    assert task.context.source == "wikipedia (live day pages)"
    assert task.query == task.context.content + " on what exact date?"
    assert task.reference == task.context.extra["date"]
    qa = build_task("qa", llm, random.Random(3), datasets=pool)
    assert qa.context.title == "Stand-in Star" and qa.reference


@pytest.mark.skipif(importlib.util.find_spec("datasets") is not None,
                    reason="the optional `datasets` package is installed")
def test_live_code_without_the_datasets_package_falls_back(caplog):
    ds = WithFallback(HuggingFaceCode(deadline=5), OfflineCode(), cooldown=0)
    with caplog.at_level(logging.WARNING):
        ctx = ds.sample(random.Random(0))
    assert "datasets" in ctx.stats["fallback"]
    assert ctx.source in ("python standard library", "cpython headers")
    with pytest.raises(DatasetError, match="not installed"):
        HuggingFaceCode(deadline=5).sample(random.Random(0))
