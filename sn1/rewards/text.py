"""String-overlap rewards: ROUGE (rouge-1 / rouge-l F-measure) and a character diff ratio.

ROUGE comes from Google's `rouge-score` (clipped n-gram counts, so repeating
words cannot raise a score; the original subnet's `rouge` package scored a
40-fold repetition of the reference at 0.98). Two deliberate changes to
`rouge-score`'s defaults, both documented in tests:

* tokenizer: `rouge-score` lower-cases and keeps only ``[a-z0-9]`` runs, which
  turns "café" into "caf" and any CJK text into no tokens at all (score 0).
  We keep Unicode letters and digits (``[^\\W_]+`` after ``lower()``); on ASCII
  text this gives exactly the same tokens. Non-ASCII text is NFKC-normalised and its
  invisible (default-ignorable) characters removed first, so fullwidth letters and
  zero-width characters cannot disguise a copied or repeated text.
* rouge-l: the LCS length comes from `rapidfuzz` (bit-parallel C++), not from
  `rouge-score`'s pure-Python O(n·m) table, which took ~1 s for one 100 kB
  completion. Precision, recall and F follow `rouge-score`'s `_score_lcs`.

Departure (README "Where we differ"): as a *reward*, ROUGE counts only the
words the challenge does not already contain. Words of the challenge are
removed from both the reference and the completion before counting, so
repeating the question (plainly, wrapped in pleasantries, reordered, or as a
bag of its keywords) earns nothing, while an answer earns for what it adds.
When the reference has no word outside the challenge, plain ROUGE is used.
As a *penalty* (compared with the challenge itself) ROUGE is the plain one.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

NGRAMS = ("rouge-1", "rouge-l")
_TOKEN_RE = re.compile(r"[^\W_]+")
# Unicode's default-ignorable code points (zero-width spaces and joiners, soft hyphen, bidi
# marks, variation selectors, tags): invisible, so "Cho\u200bpin" reads as "Chopin" and must
# count as it; without this, one such character per word hid a pasted text from every n-gram rule.
_INVISIBLE = re.compile("[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
                        "\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\U000e0000-\U000e0fff]")
# Not held against an answer by the rouge penalty (the pipeline adds them to the reference's
# words): any answer repeats "the", "is", "what" from the question.
FUNCTION_WORDS = frozenset("""a an the and or but if of to in on at by for with from as into about than then
is are was were be been being am do does did has have had it its this that these those there here i you he
she we they me him her us them my your his our their what which who whom whose when where why how not no so
can could will would shall should may might must let just very also""".split())


class UnicodeTokenizer:
    """`rouge-score` tokenizer interface (`tokenize(text) -> list[str]`), Unicode-aware."""

    def tokenize(self, text: str) -> list[str]:
        if not text.isascii():   # fullwidth/compatibility forms as their plain letters; no invisibles
            text = _INVISIBLE.sub("", unicodedata.normalize("NFKC", text))
        return _TOKEN_RE.findall(text.lower())


_TOKENIZER = UnicodeTokenizer()


# One score() call reads each completion with several models (rouge, source_copy, and the
# pipeline's copies check): inside `tokenized_once()` a text is tokenized once and the list
# shared, so callers must not change the list they get.
_STEP_TOKENS: contextvars.ContextVar[dict | None] = contextvars.ContextVar("sn1_step_tokens", default=None)


def tokens(text: str) -> list[str]:
    cache = _STEP_TOKENS.get()
    if cache is None:
        return _TOKENIZER.tokenize(text)
    words = cache.get(text)
    if words is None:
        words = cache[text] = _TOKENIZER.tokenize(text)
    return words


@contextlib.contextmanager
def tokenized_once():
    """Within this block (one thread), `tokens` of a text is computed once; freed on exit.
    Nested blocks share the outer one's (the validator's article lookup, then score())."""
    if _STEP_TOKENS.get() is not None:
        yield
        return
    token = _STEP_TOKENS.set({})
    try:
        yield
    finally:
        _STEP_TOKENS.reset(token)


def rouge(reference: str, completion: str, ngram: str = "rouge-1", challenge: str = "") -> float:
    """ROUGE F-measure between reference and completion, counting only words that are not
    in `challenge` (none removed when it is empty); 0 if either text has no word left."""
    if ngram not in NGRAMS:
        raise ValueError(f"rouge: unknown ngram {ngram!r} (expected one of {', '.join(NGRAMS)})")
    if not reference or not completion:
        return 0.0
    target, prediction = tokens(reference), tokens(completion)
    if challenge:
        asked = set(tokens(challenge))
        new = [t for t in target if t not in asked]
        if new:   # else the reference only repeats the challenge: plain ROUGE
            target, prediction = new, [t for t in prediction if t not in asked]
    if not target or not prediction:
        return 0.0
    if ngram == "rouge-1":
        return _rouge_1(target, prediction)
    return _rouge_l(target, prediction)


def _rouge_1(target: list[str], prediction: list[str]) -> float:
    # rouge-score's _score_ngrams on unigrams: clipped counts
    from rouge_score import scoring

    t, p = Counter(target), Counter(prediction)
    overlap = sum((t & p).values())
    return float(scoring.fmeasure(overlap / len(prediction), overlap / len(target)))


def _rouge_l(target: list[str], prediction: list[str]) -> float:
    from rapidfuzz.distance import LCSseq
    from rouge_score import scoring

    lcs = LCSseq.similarity(target, prediction)
    return float(scoring.fmeasure(lcs / len(prediction), lcs / len(target)))


_FENCE = re.compile(r"```[^\n`]*\n(.*?)```", re.DOTALL)


def code_of(text: str) -> str:
    """The code a text holds: its longest fenced block (```lang ... ```), else all of it."""
    blocks = _FENCE.findall(text)
    return (max(blocks, key=len) if blocks else text).strip()


def _similarity(a: str, b: str) -> float:
    from rapidfuzz.distance import Indel

    if not a and not b:
        return 1.0   # as difflib: two empty texts are identical
    return float(Indel.normalized_similarity(a, b))


_LINE_COMMENT = re.compile(r"(?:^|(?<=\s))(?:#|//).*$", re.MULTILINE)
_SPACE = re.compile(r"\s+")


def code_shape(code: str) -> str:
    """Code as the debugging task judges it: line comments (# and //) out, every run of
    whitespace one space, so a fix is not marked down for a comment or its indentation."""
    return _SPACE.sub(" ", _LINE_COMMENT.sub("", code)).strip()


@functools.lru_cache(maxsize=4)
def _given(reference: str, challenge: str) -> tuple[str, float]:
    """The reference's code shape, and how close the code the challenge itself holds (its
    fenced blocks) already is to it (0.0: the challenge holds no code)."""
    ref = code_shape(reference)
    return ref, max((_similarity(ref, code_shape(b)) for b in _FENCE.findall(challenge)), default=0.0)


def diff(reference: str, completion: str, challenge: str = "") -> float:
    """Character-level similarity 2·LCS / (len(reference) + len(completion)), by `rapidfuzz`
    (bit-parallel, O(n·m/64)): the ratio difflib.SequenceMatcher approximates (its matching
    blocks are a common subsequence, so difflib's ratio is never above it). difflib's search
    is worst-case quadratic in Python: one 950 kB completion built to defeat its autojunk
    heuristic took 9.5 s.

    Departures (README "Where we differ"): the completion's code is compared (its longest
    fenced block, when it has one), so a fix explained in prose is not marked down for the
    prose; and with a `challenge` that holds code (the debugging task's corrupted code, fenced)
    only the improvement on that code pays, clip((d - d0) / (1 - d0)) with d0 the challenge
    code's own similarity: echoing the corrupted code scored 0.91, above a correct fix
    explained in prose (0.79). Both are then compared as `code_shape` (comments and spacing
    do not count: the corrupted code is within 1% of the reference, so one added comment
    took a correct fix below it)."""
    code = code_of(completion)
    if challenge and "```" in challenge:
        ref, given = _given(reference, challenge)
        if 0.0 < given < 1.0:
            return min(1.0, max(0.0, (_similarity(ref, code_shape(code)) - given) / (1.0 - given)))
    return _similarity(reference.strip(), code)


# Focus: an answer may be up to LENGTH_SLACK times as long as the reference (and at
# least LENGTH_FLOOR words) before its relevance shrinks, in proportion to the excess.
LENGTH_SLACK = 2.0
LENGTH_FLOOR = 60


# Depth: an answer under SHORT_SHARE of the reference's length covers little of it (a one-line
# template from an article's title and description is on topic, not an answer); its relevance
# shrinks in proportion.
# A reference under SHORT_MIN_REFERENCE words asks for no minimum ("Paris" answers a short one).
SHORT_SHARE = 0.3
SHORT_MIN_REFERENCE = 20


def conciseness(reference_words: int, completion_words: int) -> float:
    """words / (SHORT_SHARE x reference) below that many words (references of
    SHORT_MIN_REFERENCE words or more); 1 up to
    max(LENGTH_SLACK x reference, LENGTH_FLOOR) words; then limit / words."""
    limit = max(LENGTH_SLACK * reference_words, LENGTH_FLOOR)
    if completion_words > limit:
        return limit / completion_words
    short = SHORT_SHARE * reference_words if reference_words >= SHORT_MIN_REFERENCE else 0.0
    return completion_words / short if completion_words < short else 1.0


def length_words(text: str) -> int:
    """Words in `text`, counting a long run without spaces (e.g. CJK) as one word per 10 characters."""
    return max(len(text.split()), len(text) // 10)


COPY_NGRAM = 5   # word 5-grams: long enough that an answer written anew rarely shares them
COPY_FREE = 0.2  # an answer may share this much phrasing with the source (names, set phrases)
COPY_FULL = 0.7  # copying this share (or more) of a completion's 5-grams is a full penalty


# Word reuse: a pasted text edited so no 5-gram survives (a word dropped or swapped every few
# words, words shuffled within sentences) still takes nearly all its words from one document.
SOURCE_SEPARATOR = "\f"   # separates a source's documents; word reuse is judged per document
# Words are content words: not in the challenge, not FUNCTION_WORDS (every article has "the").
REUSE_MIN_WORDS = 15      # a shorter answer naturally uses mostly its topic's words
REUSE_FREE = 0.75         # measured: SmolLM2's answers <= 0.32, LLM references written *with* the source <= 0.80
REUSE_FULL = 0.95         # a pasted text keeps ~1.0 whatever its order, typos included


def word_reuse(document: str, completion: str, challenge: str = "") -> float:
    """The share of the completion's content words (clipped counts; words of the challenge and
    FUNCTION_WORDS left out) that `document` contains, a word within one edit (a letter
    dropped, added, changed, or two swapped; words of FUZZY_MIN_LETTERS to FUZZY_MAX_LETTERS letters)
    counting as the document's word; 0 below REUSE_MIN_WORDS such words. The first
    REUSE_MAX_WORDS content words are judged."""
    content = _content_words(tokens(completion), _words_of(challenge))
    return _reuse(_documents(document)[0], content, Counter(content))


FUZZY_MIN_LETTERS = 4       # shorter words match exactly only (one edit turns "cat" into "hat")
# ... and longer ones too: a word's one-letter deletions cost its length squared (a 16,000-letter
# "word" took 0.28 s and 236 MiB); no word of a language is this long.
FUZZY_MAX_LETTERS = 40
REUSE_MAX_WORDS = 1000      # longer texts are judged on their first words (copies are caught by 5-grams)
# Typos are looked for only when the exact words already reach this share: far from a paste,
# they could not lift the share to REUSE_FREE, and a text of many odd words costs no search.
FUZZY_FROM = REUSE_FREE / 2


@dataclass(frozen=True)
class _Doc:
    counts: "Counter[str]"
    near: dict              # the document's words and their one-letter deletions -> the word


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1:] for i in range(len(word))}


def _doc(text: str) -> _Doc:
    counts = Counter(tokens(text))
    near: dict[str, str] = {}
    for w in counts:
        if FUZZY_MIN_LETTERS <= len(w) <= FUZZY_MAX_LETTERS:
            near.setdefault(w, w)
            for v in _deletions(w):
                near.setdefault(v, w)
    return _Doc(counts, near)


def _as_in(doc: _Doc, word: str) -> str:
    """`word`, or the document's word one edit away (shared one-letter deletions: a typo)."""
    if word in doc.counts or not FUZZY_MIN_LETTERS <= len(word) <= FUZZY_MAX_LETTERS:
        return word
    hit = doc.near.get(word)      # a letter dropped
    if hit is None:
        hit = next((doc.near[v] for v in _deletions(word) if v in doc.near), None)   # added, changed, swapped
    return hit or word


def _content_words(words: list[str], asked: frozenset[str]) -> list[str]:
    out = []
    for w in words:
        if w not in asked and w not in FUNCTION_WORDS:
            out.append(w)
            if len(out) == REUSE_MAX_WORDS:
                break
    return out


def _reuse(doc: _Doc, content: list[str], bag: "Counter[str]", min_words: int = REUSE_MIN_WORDS) -> float:
    """`content`: the completion's content words (`bag` their counts)."""
    if not content or len(content) < min_words:
        return 0.0
    exact = sum((bag & doc.counts).values()) / len(content)
    if exact < FUZZY_FROM or exact >= 1.0:
        return exact
    return sum((Counter(_as_in(doc, w) for w in content) & doc.counts).values()) / len(content)


# One step scores many completions against the same source and challenge: tokenize those once.
@functools.lru_cache(maxsize=4)
def _documents(source: str) -> tuple:
    return tuple(_doc(doc) for doc in source.split(SOURCE_SEPARATOR))


@functools.lru_cache(maxsize=4)
def _words_of(text: str) -> frozenset[str]:
    return frozenset(tokens(text))


@functools.lru_cache(maxsize=4)
def _copyable(source: str, challenge: str) -> frozenset:
    return frozenset(_ngrams(tokens(source), COPY_NGRAM) - _ngrams(tokens(challenge), COPY_NGRAM))


def _ngrams(words: list[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def _ramp(value: float, free: float, full: float) -> float:
    return min(1.0, max(0.0, (value - free) / (full - free)))


def source_copy(source: str, completion: str, challenge: str = "", min_words: int = REUSE_MIN_WORDS,
                phrasing_min_words: int = COPY_NGRAM) -> float:
    """The larger of two penalties for reusing `source` (the validator's material: documents
    separated by SOURCE_SEPARATOR), 0 without a source:

    * phrasing: clip((share - COPY_FREE) / (COPY_FULL - COPY_FREE)), share = the part of the
      completion's word 5-grams copied from the source that are not in `challenge`
      (0 under `phrasing_min_words` words, 5 unless the task says otherwise: date_qa judges
      from 20, as a one-sentence answer restating the event with its date shares the source
      sentence's 5-grams around the date);
    * words: clip((reuse - REUSE_FREE) / (REUSE_FULL - REUSE_FREE)), reuse = the largest
      `word_reuse` of one document (0 under `min_words` content words, REUSE_MIN_WORDS unless
      the task says otherwise: date_qa judges from 10, as a date needs no words of the article).

    The reference is not exempt: it was written from the source, so it quotes it, but
    no miner sees the source; an answer written anew shares few 5-grams with it."""
    words = tokens(completion)
    if not source or len(words) < COPY_NGRAM:
        return 0.0
    phrasing = 0.0
    if len(words) >= phrasing_min_words:
        copied = _copyable(source, challenge)
        grams = [tuple(words[i:i + COPY_NGRAM]) for i in range(len(words) - COPY_NGRAM + 1)]
        share = sum(1 for g in grams if g in copied) / len(grams)
        phrasing = _ramp(share, COPY_FREE, COPY_FULL)
    if phrasing >= 1.0 or len(words) < min_words:
        return phrasing
    content = _content_words(words, _words_of(challenge))
    bag = Counter(content)
    reuse = max(_reuse(doc, content, bag, min_words) for doc in _documents(source))
    return max(phrasing, _ramp(reuse, REUSE_FREE, REUSE_FULL))
