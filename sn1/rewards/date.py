"""date: distance between the first date of the reference and of the completion (spec §6).

Formats, found anywhere in the text (the earliest match in the text wins;
a match that is not a real date, e.g. 31/02/2000, is skipped):

* ``M/D/YYYY`` (month first, as the original's parser read it and US writers
  mean it; falls back to day first when the month-first reading is
  impossible, e.g. 25/7/1776), also with ``-``;
* ``M/D/YY`` (month first, same fallback), two-digit years read as Python's
  ``%y`` does: 00-68 -> 2000-2068, 69-99 -> 1969-1999;
* ``D Month YYYY``, ``D of Month YYYY`` and ``Month D, YYYY`` (full English
  month names, any case, optional comma, optional ordinal suffix: "July 4th,
  1776", "4th of July 1776");
* ``YYYY-MM-DD`` (ISO 8601, never swapped) and ``D.M.YYYY`` (dotted dates are
  written day first; month first when that reading is impossible).

Distance = |day-of-year difference| (both dates placed in the leap year 2000,
as the original did) + 365 x |year difference|; 500 when either text has no
date. Score = exp(-distance² / 1000), 0 below 0.001.

Departures (README "Where we differ"): a completion naming more than
MAX_DATES different dates is a list of guesses and scores 0; an answer of
up to FOCUS_WORDS words keeps full credit, then credit falls linearly to 0
at FOCUS_ZERO words: a pasted article that happens to hold the date earns
nothing, while "The treaty was signed on 7 June 1494." keeps full credit.
(Words not in the challenge were tried instead: the event clause of a
challenge is often a long quote of the article, so a pasted article kept
most of its credit.) Trailing punctuation never hides a date
("1/5/1999!", "(4 July 1776)").
"""

from __future__ import annotations

import datetime as dt
import math
import re

from sn1.rewards.text import length_words

UNPARSABLE_DISTANCE = 500
MAX_DATES = 2          # more different dates than this in one completion: a list of guesses
FOCUS_WORDS = 20       # a date answer is a sentence: full credit up to 20 words
FOCUS_ZERO = 45        # ... and none from 45 words on
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august",
           "september", "october", "november", "december")
# A month is an ASCII word of 3-9 letters that names one, in any case (_MONTH_NUMBER): matching
# the names with IGNORECASE let Unicode case folding match "Auguſt" (long s) and "Aprıl"
# (dotless i), which then were not found in _MONTHS; and a plain letter class scans a long
# text several times faster than a case-insensitive alternation of twelve names.
_MONTH = r"(?P<month>[A-Za-z]{3,9})"
_MONTH_NUMBER = {name: i + 1 for i, name in enumerate(_MONTHS)}
_DAY = r"(?P<day>\d{1,2})(?:st|nd|rd|th)?"
# Slash dates name their numbers m (month) and d (day) in the order the format
# reads them first. All patterns are linear-time (no nested quantifiers).
_PATTERNS = (
    re.compile(r"\b(?P<m>\d{1,2})[/-](?P<d>\d{1,2})[/-](?P<year>\d{3,4})\b"),   # M/D/YYYY
    re.compile(r"\b(?P<m>\d{1,2})[/-](?P<d>\d{1,2})[/-](?P<yy>\d{2})\b"),       # M/D/YY
    re.compile(rf"\b{_DAY}\s+{_MONTH},?\s+(?P<year>\d{{3,4}})\b"),   # D Month YYYY
    re.compile(rf"\b{_MONTH}\s+{_DAY},?\s+(?P<year>\d{{3,4}})\b"),   # Month D, YYYY
    re.compile(rf"\b{_DAY}\s+of\s+{_MONTH},?\s+(?P<year>\d{{3,4}})\b"),   # D of Month YYYY
    re.compile(r"\b(?P<year>\d{4})-(?P<iso_m>\d{1,2})-(?P<iso_d>\d{1,2})(?!\d)"),   # YYYY-MM-DD[Thh:mm]
    re.compile(r"\b(?P<dd>\d{1,2})\.(?P<mm>\d{1,2})\.(?P<year>\d{3,4})\b"),   # D.M.YYYY (day first)
)


def _day_of_2000(month: int, day: int) -> int | None:
    try:
        return dt.date(2000, month, day).timetuple().tm_yday
    except ValueError:
        return None


def _read(match: re.Match) -> tuple[int, int] | None:
    """(day of year in 2000, year) for one match, or None if it is not a real date."""
    g = match.groupdict()
    if g.get("month"):
        month = _MONTH_NUMBER.get(g["month"].lower())
        doy = _day_of_2000(month, int(g["day"])) if month else None
        return (doy, int(g["year"])) if doy else None
    if g.get("iso_m") is not None:      # year, month, day: never read the other way
        doy = _day_of_2000(int(g["iso_m"]), int(g["iso_d"]))
        return (doy, int(g["year"])) if doy else None
    if g.get("dd") is not None:         # dotted dates are written day first
        day, month = int(g["dd"]), int(g["mm"])
        doy = _day_of_2000(month, day) or _day_of_2000(day, month)
        return (doy, int(g["year"])) if doy else None
    if g.get("yy") is not None:
        yy = int(g["yy"])
        year = 2000 + yy if yy < 69 else 1900 + yy   # the %y pivot
    else:
        year = int(g["year"])
    month, day = int(g["m"]), int(g["d"])
    # The format's reading first; the swapped one when that date cannot exist.
    doy = _day_of_2000(month, day) or _day_of_2000(day, month)
    return (doy, year) if doy else None


def first_date(text: str) -> tuple[int, int] | None:
    """The earliest real date in `text` as (day of year in 2000, year), or None."""
    candidates = []
    for pattern in _PATTERNS:
        for match in pattern.finditer(text):
            parsed = _read(match)
            if parsed:
                candidates.append((match.start(), parsed))
                break  # later matches of this pattern start later
    return min(candidates)[1] if candidates else None


def distinct_dates(text: str, limit: int) -> int:
    """How many different real dates `text` names, counting no further than `limit`."""
    seen: set[tuple[int, int]] = set()
    for pattern in _PATTERNS:
        for match in pattern.finditer(text):
            parsed = _read(match)
            if parsed:
                seen.add(parsed)
                if len(seen) >= limit:
                    return len(seen)
    return len(seen)


def date_distance(reference: str, completion: str) -> int:
    ref, comp = first_date(reference), first_date(completion)
    if ref is None or comp is None:
        return UNPARSABLE_DISTANCE
    return abs(ref[0] - comp[0]) + 365 * abs(ref[1] - comp[1])


def date(reference: str, completion: str) -> float:
    if distinct_dates(completion, MAX_DATES + 1) > MAX_DATES:
        return 0.0
    score = math.exp(-(date_distance(reference, completion) ** 2) / 1000)
    words = length_words(completion)
    if words > FOCUS_WORDS:
        score *= max(0.0, (FOCUS_ZERO - words) / (FOCUS_ZERO - FOCUS_WORDS))
    return 0.0 if score < 0.001 else score
