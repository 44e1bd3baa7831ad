"""Which public articles does a text quote? An n-gram index of the offline encyclopedia.

The validator's material is public: the offline encyclopedia ships in a package
anyone can install, so a miner can find an article from a challenge's words and
paste it. Pasting the task's *own* article is caught by the `source_copy`
penalty; this index finds any *other* article a completion quotes (a related
one answers "who is X?" as well), so the validator can hold those against it
too (``sn1.tasks.material``).

    index = quote_index(tokenize)            # built once per process (~1 s)
    index.quoted("Frédéric François Chopin was a Polish composer ...")   # -> [article dict, ...]
    index.about("composer Chopin Polish Romantic a was pianist ...")     # the same, reordered

Words come from ``tokenize`` (the validator passes the rewards' tokenizer, so
the index and the `source_copy` penalty read a text alike; the default is
lower-cased runs of Unicode letters and digits). A text *quotes* an article
when they share at least ``MIN_SHARED`` distinct word 5-grams that occur in at
most ``MAX_ARTICLES_PER_GRAM`` articles (set phrases every article uses do not
point at one). A text is *about* the article holding most of its rare words
(idf-weighted): that finds the article behind a paste whose phrasing was
edited away (words dropped, shuffled or misspelt), which shares no 5-gram.
Only the first MAX_TEXT_CHARS characters of a text are looked up.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from typing import Callable

import numpy as np

from .wiki_offline import articles

GRAM = 5
MAX_ARTICLES_PER_GRAM = 3     # a 5-gram in more articles is a set phrase, not a quote
MIN_SHARED = 3                # distinct shared 5-grams before a text counts as quoting an article
MAX_TEXT_CHARS = 400_000      # a longer text is looked up by its beginning (all of it is still scored)
# `about`: words in at most this share of the articles (or RARE_MAX_ARTICLES) say what a text is about
RARE_MAX_SHARE = 0.01
RARE_MAX_ARTICLES = 3
ABOUT_MIN_SHARE = 0.5         # the article must hold half the text's rare-word weight

_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def gram_hashes(tokens: list[str], n: int = GRAM) -> np.ndarray:
    """Distinct 64-bit hashes of the word n-grams (this process's string hash)."""
    if len(tokens) < n:
        return np.zeros(0, dtype=np.int64)
    return np.unique(np.fromiter((hash("\x1f".join(tokens[i:i + n])) for i in range(len(tokens) - n + 1)),
                                 dtype=np.int64, count=len(tokens) - n + 1))


class QuoteIndex:
    """Sorted 5-gram hashes of every article, each with the article it comes from."""

    def __init__(self, docs: tuple[dict, ...] | list[dict], tokenize: Callable[[str], list[str]] = words):
        self.docs, self.tokenize = tuple(docs), tokenize
        self._lock = threading.Lock()
        hashes, owners = [], []
        for i, doc in enumerate(self.docs):
            h = gram_hashes(tokenize(doc.get("extract", "")))
            hashes.append(h)
            owners.append(np.full(len(h), i, dtype=np.int32))
        h = np.concatenate(hashes) if hashes else np.zeros(0, dtype=np.int64)
        o = np.concatenate(owners) if owners else np.zeros(0, dtype=np.int32)
        order = np.argsort(h, kind="stable")
        h, o = h[order], o[order]
        # drop set phrases: grams found in more than MAX_ARTICLES_PER_GRAM articles
        _, counts = np.unique(h, return_counts=True)
        keep = np.repeat(counts <= MAX_ARTICLES_PER_GRAM, counts)
        self.hashes, self.owners = h[keep], o[keep]

    def __len__(self) -> int:
        return len(self.hashes)

    def words_of(self, text: str) -> list[str]:
        """The words `quoted` and `about` read (tokenize once, pass to both)."""
        return self.tokenize(text[:MAX_TEXT_CHARS])

    def quoted(self, text: "str | list[str]", limit: int = 3, min_shared: int = MIN_SHARED) -> list[dict]:
        """Up to `limit` articles sharing the most (at least `min_shared`) distinct 5-grams with `text`."""
        grams = gram_hashes(text if isinstance(text, list) else self.words_of(text))
        if not len(grams) or not len(self.hashes):
            return []
        lo = np.searchsorted(self.hashes, grams, side="left")
        hi = np.searchsorted(self.hashes, grams, side="right")
        hit = hi > lo
        if not hit.any():
            return []
        owners = np.concatenate([self.owners[a:b] for a, b in zip(lo[hit], hi[hit])])
        ids, counts = np.unique(owners, return_counts=True)
        best = np.argsort(-counts, kind="stable")[:limit]
        return [self.docs[ids[j]] for j in best if counts[j] >= min_shared]


    def about(self, text: "str | list[str]", limit: int = 1) -> list[dict]:
        """Up to `limit` articles whose rare words `text` uses most (idf-weighted), for texts
        whose phrasing was edited away: at least ABOUT_MIN_SHARE of the text's rare-word weight."""
        post = self._postings()
        seen = {w for w in (text if isinstance(text, list) else self.words_of(text)) if w in post}
        if not seen:
            return []
        weight: dict[int, float] = {}
        total = 0.0
        for w in seen:
            ids, idf = post[w]
            total += idf
            for i in ids:
                weight[i] = weight.get(i, 0.0) + idf
        best = sorted(weight, key=lambda i: (-weight[i], i))[:limit]
        return [self.docs[i] for i in best if weight[i] >= ABOUT_MIN_SHARE * total]

    @functools.cached_property
    def _by_word(self) -> dict:
        per: dict[str, list[int]] = {}
        for i, doc in enumerate(self.docs):
            for w in set(self.tokenize(doc.get("extract", ""))):
                per.setdefault(w, []).append(i)
        n = max(1, len(self.docs))
        cap = max(RARE_MAX_ARTICLES, int(RARE_MAX_SHARE * n))
        return {w: (ids, math.log(n / len(ids))) for w, ids in per.items() if len(ids) <= cap}

    def _postings(self) -> dict:
        with self._lock:
            return self._by_word


_lock = threading.Lock()


@functools.lru_cache(maxsize=2)
def _default(tokenize: Callable[[str], list[str]]) -> QuoteIndex:
    return QuoteIndex(articles(), tokenize)


def quote_index(tokenize: Callable[[str], list[str]] = words) -> QuoteIndex:
    """The offline encyclopedia's index, built once per process and tokenizer (raises
    DatasetError when the encyclopedia package is missing)."""
    with _lock:
        return _default(tokenize)
