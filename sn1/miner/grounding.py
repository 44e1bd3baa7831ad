"""Grounding: a dated fact from the offline encyclopedia, handed to the model with a date question.

A small model does not know exact dates (SmolLM2-135M states the right date
about once in ten), while the encyclopedia this package ships holds them. So,
like the original's Wikipedia-agent miner, an LLM miner looks a date question
up before answering: when one dated sentence of the encyclopedia matches the
question closely, the model gets it as a fact after the question ("Fact: The
Arab League was formed in Cairo on 22 March 1945."), and it writes the answer
itself. benchmarks/grounding.py measures what it is worth (RESULTS.md,
"Grounded date answers").

A question matches a fact when the words they share carry most of the
fact's weight: each word weighs its inverse document frequency among the
dated sentences, so a date question about something the encyclopedia does
not hold (live Wikipedia material, a user's own question) shares only
common words and goes to the model unchanged. ``--neuron.grounding off``
turns it off.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

log = logging.getLogger("sn1.miner.grounding")

# Only the head of a question is read: it is where a date question names its event, and the
# lookup must stay cheap on the event loop however long the message is.
MAX_QUESTION_CHARS = 2000
# Share of the fact's word weight the question must hold, and how far ahead of the runner-up
# the best fact must be over one of another date (two such facts about one subject are not a match).
MIN_COVER = 0.6
MIN_LEAD = 1.3
MIN_SHARED = 3               # distinct shared words, so a one-word coincidence never matches

_WORD = re.compile(r"\w+", re.UNICODE)
_DATE_QUESTION = re.compile(
    r"\b(?:when|dates?|what day|which day|what year|born|birth|died|death)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Fact:
    title: str
    event: str
    date: str


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.casefold()) if not w.isdigit() or len(w) == 4}


def _plain(text: str) -> str:
    # fullwidth and other compatibility forms as their plain letters ("ＷＨＥＮ" is "WHEN")
    return text if text.isascii() else unicodedata.normalize("NFKC", text)


class DateFacts:
    """Dated facts and the idf of their words; ``find`` answers in microseconds (160 facts)."""

    def __init__(self, facts: list[tuple[Fact, str]]):
        """``facts``: (fact, the sentence it was read from)."""
        self.facts = [f for f, _ in facts]
        # Matched on the whole sentence and its title; the weight to cover is the event's own
        # (a question names the event, not the rest of the sentence).
        self._words = [_words(f"{f.title} {sentence}") for f, sentence in facts]
        df = Counter(w for ws in self._words for w in ws)
        n = len(self.facts)
        self._idf = {w: math.log((n + 1) / c) for w, c in df.items()}
        self._mass = [sum(self._idf.get(w, 0.0) for w in _words(f.event)) for f in self.facts]

    @classmethod
    def offline(cls) -> "DateFacts":
        """The dated sentences of the offline encyclopedia (0.3 s to read)."""
        from ..datasets.wiki_offline import dated_events

        return cls([(Fact(title, event, date), sentence) for title, event, date, sentence in dated_events()])

    def find(self, question: str) -> Fact | None:
        """The fact a date question asks about, or None when none matches it clearly."""
        head = _plain(question[:MAX_QUESTION_CHARS])
        if not _DATE_QUESTION.search(head):
            return None
        asked = _words(head)
        scores = []
        for i, ws in enumerate(self._words):
            shared = asked & ws
            if len(shared) >= MIN_SHARED:
                scores.append((sum(self._idf[w] for w in shared), i))
        if not scores:
            return None
        scores.sort(reverse=True)
        best, i = scores[0]
        if best < MIN_COVER * self._mass[i]:
            return None
        fact = self.facts[i]
        # Two facts of one date (Hillary's and Tenzing's summit) agree; another date must trail.
        rival = next((score for score, j in scores[1:] if self.facts[j].date != fact.date), 0.0)
        if best < MIN_LEAD * rival:
            return None
        return fact


def grounded(messages: list[dict], fact: Fact) -> list[dict]:
    """The messages with the fact after the last user message (a new list; the input is kept).

    After the question, with a request for one sentence. Wordings tried on date questions
    (SmolLM2, the task's date rule and copy penalty; benchmarks/RESULTS.md): the fact above
    the question 0.06-0.31; after it, "one short sentence with the exact date" 0.64-0.85,
    "a few words with the exact date" 0.74-0.81 (lower in the live tournament), "the date
    only" 0.41. Without a request the model restates the whole question or retells the fact,
    and an answer past 20 words loses the date rule's credit.
    """
    out = [dict(m) for m in messages]
    for m in reversed(out):
        if m.get("role") == "user":
            m["content"] = (f"{m['content']}\n\nFact: {fact.event.rstrip(' .')} on {fact.date}.\n"
                            f"Answer in one short sentence with the exact date.")
            break
    return out


def last_question(messages: list[dict]) -> str:
    return next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")


def load_facts(mode: str) -> DateFacts | None:
    """The facts for ``--neuron.grounding MODE``; None when off or the encyclopedia is missing."""
    if mode == "off":
        return None
    try:
        facts = DateFacts.offline()
    except Exception as e:  # noqa: BLE001 - grounding is a help; the miner answers without it
        log.warning("grounding off: cannot read the offline encyclopedia's dated facts (%s)", e)
        return None
    log.info("grounding: %d dated facts from the offline encyclopedia", len(facts.facts))
    return facts
