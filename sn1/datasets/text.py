"""Small text helpers shared by datasets and task cleaners."""

from __future__ import annotations

import re

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December")
_M = "|".join(MONTHS)
# Full dates only, with a 4-digit year: "3 March 1875", "March 30, 1939".
FULL_DATE = re.compile(rf"\b(?:\d{{1,2}} (?:{_M}) \d{{4}}|(?:{_M}) \d{{1,2}}, \d{{4}})\b")

# A sentence ends at . ! ? (optionally followed by a closing quote/bracket) before
# whitespace, except after initials ("Arthur C. Clarke") and common abbreviations.
_ABBREV = {"mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "etc", "no", "prof", "gen", "col",
           "lt", "mt", "ft", "inc", "ltd", "co", "fig", "approx", "c", "ca", "e.g", "i.e", "u.s"}
_END = re.compile(r"[.!?][\"'”’)\]]*(?=\s)")


def split_sentences(text: str) -> list[str]:
    out, start = [], 0
    for m in _END.finditer(text):
        before = text[start:m.start()].rsplit(None, 1)
        last = before[-1].lower().strip("(\"'") if before else ""
        if text[m.start()] == "." and (last in _ABBREV or (len(last) == 1 and last.isalpha())):
            continue
        out.append(text[start:m.end()].strip())
        start = m.end()
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return [s for s in out if s]


def word_count(text: str) -> int:
    return len(text.split())


def truncate_words(text: str, n: int) -> str:
    words = text.split()
    return text if len(words) <= n else " ".join(words[:n])
