"""Live Wikipedia through the MediaWiki action API (plain httpx).

Every request has a deadline and a size cap; pages are cached in memory (LRU)
and optionally on disk (capped in files and bytes; the least recently used
files are evicted first). Failures raise ``SourceError``; ``WithFallback`` (see
``sn1.datasets``) turns them into offline material with a warning. The API's
base URL is configurable so tests can point it at a stand-in server.
"""

from __future__ import annotations

import calendar
import collections
import hashlib
import json
import logging
import os
import random
import re
import tempfile
import threading
import time
from pathlib import Path

import httpx

from .base import Context, Dataset, SourceError
from .text import MONTHS, word_count

log = logging.getLogger(__name__)

DEFAULT_API = "https://en.wikipedia.org/w/api.php"
USER_AGENT = "sn1-validator/2.0 (Bittensor subnet 1; https://github.com/opentensor/prompting)"
EXCLUDED_SECTIONS = {"see also", "references", "further reading", "external links", "notes",
                     "bibliography", "sources", "citations", "footnotes", "notes and references",
                     "gallery", "works cited"}
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
DISK_CACHE_ENTRIES = 5000
DISK_CACHE_BYTES = 256 * 1024 * 1024
_HEADING = re.compile(r"^(={2,6})\s*(.*?)\s*\1\s*$", re.M)


class MediaWiki:
    """A tiny MediaWiki API client: random titles and plain-text pages."""

    def __init__(self, api_url: str = DEFAULT_API, timeout: float = 5.0,
                 cache_dir: str | Path | None = None, cache_size: int = 256,
                 disk_cache_entries: int = DISK_CACHE_ENTRIES, disk_cache_bytes: int = DISK_CACHE_BYTES,
                 transport: httpx.BaseTransport | None = None):
        self.api_url, self.timeout = api_url, timeout
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.disk_cache_entries, self.disk_cache_bytes = disk_cache_entries, disk_cache_bytes
        self._stamp = 0   # last mtime set (ns): strictly increasing, so "oldest" is never a tie
        self._client = httpx.Client(headers={"User-Agent": USER_AGENT}, follow_redirects=True,
                                    transport=transport)
        self._cache: collections.OrderedDict[str, dict] = collections.OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        self.requests = 0   # counted for tests / logs

    def close(self) -> None:
        self._client.close()

    def _get(self, params: dict, deadline: float) -> dict:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise SourceError("wikipedia: deadline passed")
        params = {**params, "format": "json", "formatversion": "2"}
        body = bytearray()
        try:
            with self._client.stream("GET", self.api_url, params=params,
                                     timeout=httpx.Timeout(min(self.timeout, remaining))) as r:
                self.requests += 1
                if r.status_code != 200:
                    raise SourceError(f"wikipedia: HTTP {r.status_code} from {self.api_url}")
                for chunk in r.iter_bytes():
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        raise SourceError("wikipedia: response too large")
                    if time.monotonic() > deadline:
                        raise SourceError("wikipedia: deadline passed while reading")
        except httpx.HTTPError as e:
            raise SourceError(f"wikipedia: {type(e).__name__}: {str(e) or 'request failed'}") from None
        try:
            data = json.loads(body)
        except ValueError:
            raise SourceError("wikipedia: answer is not JSON") from None
        if not isinstance(data, dict):
            raise SourceError("wikipedia: unexpected answer")
        if "error" in data:
            err = data["error"]
            raise SourceError(f"wikipedia: API error {err.get('code', '?') if isinstance(err, dict) else err}")
        return data

    def random_titles(self, n: int, deadline: float) -> list[str]:
        data = self._get({"action": "query", "list": "random", "rnnamespace": "0",
                          "rnlimit": str(n)}, deadline)
        try:
            return [p["title"] for p in data["query"]["random"]]
        except (KeyError, TypeError):
            raise SourceError("wikipedia: unexpected answer to list=random") from None

    # -- pages (cached) --------------------------------------------------------
    def _disk_path(self, title: str) -> Path | None:
        if not self.cache_dir:
            return None
        return self.cache_dir / (hashlib.sha1(title.encode()).hexdigest() + ".json")

    def page(self, title: str, deadline: float) -> dict:
        """{'title', 'extract', 'categories', 'url'} of a page."""
        with self._lock:
            if title in self._cache:
                self._cache.move_to_end(title)
                return self._cache[title]
        path = self._disk_path(title)
        if path and path.is_file():
            try:
                page = json.loads(path.read_text(encoding="utf-8"))
                self._touch(path)
                self._remember(title, page)
                return page
            except (OSError, ValueError):
                pass   # a broken cache file is refetched
        data = self._get({"action": "query", "prop": "extracts|categories|info",
                          "explaintext": "1", "exsectionformat": "wiki", "redirects": "1",
                          "clshow": "!hidden", "cllimit": "50", "inprop": "url",
                          "titles": title}, deadline)
        try:
            raw = data["query"]["pages"][0]
        except (KeyError, IndexError, TypeError):
            raise SourceError(f"wikipedia: unexpected answer for page {title!r}") from None
        if raw.get("missing") or not raw.get("extract"):
            raise SourceError(f"wikipedia: page {title!r} is missing or empty")
        page = {
            "title": raw.get("title", title),
            "extract": raw["extract"],
            "categories": [c["title"].split(":", 1)[-1] for c in raw.get("categories", [])
                           if isinstance(c, dict) and "title" in c],
            "url": raw.get("fullurl") or "",
        }
        self._remember(title, page)
        if path and _atomic_write(path, json.dumps(page)):
            self._touch(path)
            self._evict()
        return page

    # -- the disk cache's cap --------------------------------------------------
    def _touch(self, path: Path) -> None:
        """Mark a cache file as just used (its mtime orders eviction)."""
        with self._lock:
            self._stamp = max(time.time_ns(), self._stamp + 1)
            stamp = self._stamp
        try:
            os.utime(path, ns=(stamp, stamp))
        except OSError:
            pass

    def _evict(self) -> None:
        """Delete the least recently used files until the cache is within both caps."""
        files = []
        for f in self.cache_dir.glob("*.json"):
            try:
                st = f.stat()
            except OSError:     # another process removed it
                continue
            files.append((st.st_mtime_ns, f.name, st.st_size, f))
        files.sort()
        total = sum(size for _, _, size, _ in files)
        count = len(files)
        for _, _, size, f in files:
            if count <= self.disk_cache_entries and total <= self.disk_cache_bytes:
                break
            try:
                f.unlink()
            except FileNotFoundError:
                pass
            except OSError as e:
                log.debug("wikipedia cache eviction failed: %s", e)
                continue
            count, total = count - 1, total - size

    def _remember(self, title: str, page: dict) -> None:
        with self._lock:
            self._cache[title] = page
            self._cache.move_to_end(title)
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)


def _atomic_write(path: Path, text: str) -> bool:
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
        return True
    except OSError as e:   # the cache is an optimisation: never fail a sample for it
        log.debug("wikipedia cache write failed: %s", e)
        if tmp:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        return False


def sections(extract: str) -> list[tuple[list[str], str]]:
    """Split a plain-text extract into ([heading path], text); the lead is ["Introduction"]."""
    out: list[tuple[list[str], str]] = []
    path: list[str] = ["Introduction"]
    pos = 0
    for m in _HEADING.finditer(extract):
        out.append((list(path), extract[pos:m.start()].strip()))
        level = len(m.group(1)) - 1          # "==" -> 1, "===" -> 2
        path = path[:level - 1] + [m.group(2)]
        pos = m.end()
    out.append((list(path), extract[pos:].strip()))
    return [(p, t) for p, t in out if t]


class LiveEncyclopedia(Dataset):
    """A random article section of at least ``min_words`` words from live Wikipedia."""

    name = "wiki"
    max_tries = 5

    def __init__(self, client: MediaWiki, min_words: int = 50, deadline: float = 10.0):
        self.client, self.min_words, self.deadline = client, min_words, deadline

    def draw(self, rng: random.Random) -> Context | None:
        deadline = time.monotonic() + self.deadline
        title = self.client.random_titles(1, deadline)[0]
        page = self.client.page(title, deadline)
        if any("disambiguation" in c.lower() for c in page["categories"]):
            return None
        usable = [(p, t) for p, t in sections(page["extract"])
                  if not any(h.lower() in EXCLUDED_SECTIONS for h in p)
                  and word_count(t) >= self.min_words]
        if not usable:
            return None
        path, text = rng.choice(usable)
        return Context(
            title=page["title"], topic=path[0], subtopic=path[-1], content=text,
            tags=page["categories"], source="wikipedia (live)",
            extra={"url": page["url"], "section": " / ".join(path), "words": word_count(text)},
        )


_DAY_LINE = re.compile(r"^\s*(\d{3,4})(?:\s*(?:AD|CE))?\s*[–—-]\s*(.+?)\s*$")


class LiveDates(Dataset):
    """An event, birth or death line from a random Wikipedia day page ("March 3")."""

    name = "wiki_dates"
    max_tries = 5

    def __init__(self, client: MediaWiki, deadline: float = 10.0):
        self.client, self.deadline = client, deadline

    def draw(self, rng: random.Random) -> Context | None:
        month = rng.randrange(1, 13)
        day = rng.randrange(1, calendar.monthrange(2000, month)[1] + 1)   # 2000: Feb 29 exists
        title = f"{MONTHS[month - 1]} {day}"
        page = self.client.page(title, time.monotonic() + self.deadline)
        kind = rng.choice(["Events", "Births", "Deaths"])
        lines = []
        for path, text in sections(page["extract"]):
            if path and path[0] == kind:
                lines += [m.groups() for m in map(_DAY_LINE.match, text.splitlines()) if m]
        lines = [(y, t) for y, t in lines if int(y) >= 1000]
        if not lines:
            return None
        year, text = rng.choice(lines)
        text = re.sub(r"\s*\([^()]*\)", "", text).rstrip(" .")
        if kind == "Births":
            text = f"{text}, was born"
        elif kind == "Deaths":
            text = f"{text}, died"
        if word_count(text) < 3:
            return None
        date = f"{MONTHS[month - 1]} {day}, {year}"
        return Context(
            title=title, topic=kind, subtopic=year, content=text, tags=[kind],
            source="wikipedia (live day pages)",
            extra={"date": date, "url": page["url"]},
        )
