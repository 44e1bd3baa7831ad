"""String-overlap rewards: ROUGE (rouge-1 / rouge-l F-measure) and difflib ratio.

ROUGE comes from Google's `rouge-score` (clipped n-gram counts, so repeating
words cannot raise a score; the original subnet's `rouge` package scored a
40-fold repetition of the reference at 0.98). Two deliberate changes to
`rouge-score`'s defaults, both documented in tests:

* tokenizer: `rouge-score` lower-cases and keeps only ``[a-z0-9]`` runs, which
  turns "café" into "caf" and any CJK text into no tokens at all (score 0).
  We keep Unicode letters and digits (``[^\\W_]+`` after ``lower()``); on ASCII
  text this gives exactly the same tokens.
* rouge-l: the LCS length comes from `rapidfuzz` (bit-parallel C++), not from
  `rouge-score`'s pure-Python O(n·m) table, which took ~1 s for one 100 kB
  completion. Precision, recall and F follow `rouge-score`'s `_score_lcs`.
"""

from __future__ import annotations

import difflib
import re
from functools import lru_cache

NGRAMS = ("rouge-1", "rouge-l")
_TOKEN_RE = re.compile(r"[^\W_]+")


class UnicodeTokenizer:
    """`rouge-score` tokenizer interface (`tokenize(text) -> list[str]`), Unicode-aware."""

    def tokenize(self, text: str) -> list[str]:
        return _TOKEN_RE.findall(text.lower())


_TOKENIZER = UnicodeTokenizer()


@lru_cache(maxsize=None)
def _rouge1_scorer():
    from rouge_score import rouge_scorer  # imports nltk: keep it off the import path

    return rouge_scorer.RougeScorer(["rouge1"], use_stemmer=False, tokenizer=_TOKENIZER)


def rouge(reference: str, completion: str, ngram: str = "rouge-1") -> float:
    """ROUGE F-measure between reference and completion; 0 if either is empty."""
    if ngram not in NGRAMS:
        raise ValueError(f"rouge: unknown ngram {ngram!r} (expected one of {', '.join(NGRAMS)})")
    if not reference or not completion:
        return 0.0
    if ngram == "rouge-1":
        return float(_rouge1_scorer().score(reference, completion)["rouge1"].fmeasure)
    return _rouge_l(reference, completion)


def _rouge_l(reference: str, completion: str) -> float:
    from rapidfuzz.distance import LCSseq
    from rouge_score import scoring

    target = _TOKENIZER.tokenize(reference)
    prediction = _TOKENIZER.tokenize(completion)
    if not target or not prediction:
        return 0.0
    lcs = LCSseq.similarity(target, prediction)
    return float(scoring.fmeasure(lcs / len(prediction), lcs / len(target)))


def diff(reference: str, completion: str) -> float:
    """difflib.SequenceMatcher ratio (character level), reference first as in the original."""
    return float(difflib.SequenceMatcher(None, reference, completion).ratio())
