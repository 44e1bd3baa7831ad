"""Speed, paid only for proven work: a timing factor from the stream's own chunk arrival times.

Only answers whose every chunk carried the proof of its own tokens are timed
(step.py fails the others), so every chunk time here is the arrival of
verified tokens. For each verified answer:

- ``ttft``: arrival of the first chunk (seconds after the request was sent);
- ``rate``: tokens per second after the first chunk: (tokens after the first
  chunk) / (last arrival − first arrival), the tokens counted from each chunk's
  own proof, not from the miner's ``n_tokens`` claims. It does not grow with
  the answer's length (the old tokens / mean arrival time did, so avoiding a
  plausible end paid), and holding tokens back to send them in a burst gains
  nothing: the last arrival is as late as the last token. An answer of one
  chunk has no inter-arrival time: its rate is its tokens / its arrival.

factor = 1 − SPEED_SHARE + SPEED_SHARE · (½ · best_ttft / ttft + ½ · rate / best_rate), the bests
taken over the verified answers of the same step: the fastest gets 1.0, the
slowest no less than 1 − SPEED_SHARE. Unverified answers get 0 (their score is 0 anyway).
"""

from __future__ import annotations

import math

SPEED_SHARE = 0.5
MIN_TIME = 1e-3


def stream_speed(chunk_times: list[float], tokens: list[int]) -> tuple[float, float] | None:
    """(ttft, rate) of one stream; None without chunks. ``tokens``: verified tokens per chunk."""
    if not chunk_times or len(tokens) != len(chunk_times):
        return None
    times = [float(t) for t in chunk_times]
    if not all(math.isfinite(t) for t in times):
        return None
    counts = [max(0, int(k)) for k in tokens]
    first, last = times[0], max(times)
    ttft = max(first, MIN_TIME)
    later = sum(counts[1:])
    if len(times) > 1 and later > 0 and last - first > MIN_TIME:
        return ttft, later / (last - first)
    return ttft, max(1, sum(counts)) / max(last, MIN_TIME)


def timing_factors(streams: list[tuple], verified: list[bool]) -> list[float]:
    """One factor per stream ``(chunk_times, tokens_per_chunk)`` (see module doc); 0 for the unverified."""
    speeds = [stream_speed(*s[:2]) if ok else None for s, ok in zip(streams, verified)]
    known = [s for s in speeds if s is not None]
    if not known:
        return [0.0] * len(streams)
    best_ttft = min(s[0] for s in known)
    best_rate = max(s[1] for s in known)
    out = []
    for s, ok in zip(speeds, verified):
        if s is None:
            out.append(1.0 - SPEED_SHARE if ok else 0.0)
            continue
        quick = 0.5 * best_ttft / s[0] + 0.5 * s[1] / best_rate
        out.append(1.0 - SPEED_SHARE + SPEED_SHARE * quick)
    return out
