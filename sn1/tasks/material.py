"""The material a step's completions are held against: the task's source and what they quote.

`source_copy` (sn1.rewards.text) penalises a completion for the share of its
word 5-grams copied from the material it is given. That material is the task's
own grounding text plus every offline-encyclopedia article a completion of the
step quotes (sn1.datasets.quotes): the encyclopedia is public, so pasting a
*related* article ("who is Chopin?" answered with Chopin's article when the task
was built from one on his Nocturnes) is copying as much as pasting the source.
A long completion also brings the article it is *about* (its rare words), so a
paste with its phrasing edited away meets `source_copy`'s word-reuse measure.
Each article is one document of the source (separated by SOURCE_SEPARATOR):
word reuse is judged per document. An answer written anew shares few 5-grams
with any article and takes well under the free share of its words from one,
so adding articles costs it nothing (measured: benchmarks/incentive.py).
"""

from __future__ import annotations

import logging

from ..datasets import DatasetError
from ..rewards.text import REUSE_MIN_WORDS, SOURCE_SEPARATOR
from .base import Task

log = logging.getLogger(__name__)

QUOTES_PER_COMPLETION = 3


def _index():
    from ..datasets.quotes import quote_index
    from ..rewards.text import tokens

    return quote_index(tokens)   # read as source_copy reads: same words, same 5-grams


def own_text(task: Task) -> str:
    """The task's own grounding text ("" for tasks built without material)."""
    return task.context.content if task.context else ""


def copy_source(task: Task, completions: list[str]) -> str:
    """The text `source_copy` compares completions with (blocking: a thread): the task's own
    text, plus the articles completions quote when the task has a source model and the offline
    encyclopedia is installed."""
    own = own_text(task)
    copies = [p for p in task.penalties if p.name == "source_copy"]
    if not copies:
        return own
    min_words = min(int(p.options.get("min_words", REUSE_MIN_WORDS)) for p in copies)
    try:
        index = _index()
    except DatasetError as e:
        log.warning("quoted articles not checked: %s", e)
        return own
    parts, seen = [own], {own.strip()}
    for completion in completions:
        words = index.words_of(completion or "")   # one tokenization for both lookups
        found = index.quoted(words, limit=QUOTES_PER_COMPLETION)
        if len(words) >= min_words:   # phrasing edited away, words kept
            found += index.about(words)
        for doc in found:
            text = doc["extract"].strip()
            if text not in seen:
                seen.add(text)
                parts.append(text)
    return SOURCE_SEPARATOR.join(p for p in parts if p)


def preload() -> None:
    """Build the quote index now (blocking, ~1 s), so the first step does not pay for it."""
    try:
        _index().about("")   # and its word postings
    except DatasetError as e:
        log.warning("quoted articles will not be checked: %s", e)
