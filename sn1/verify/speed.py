"""Speed, paid only for proven work: a timing factor from the stream's own chunk arrival times.

For each verified answer:

- ``ttft``: arrival of the first chunk (seconds after the request was sent);
- ``rate``: verified tokens / (mean arrival time of the answer's text, each
  chunk weighted by the text it delivered). Every character counts from the
  moment the request went out, so a miner that holds tokens back and releases
  them in a burst raises its mean arrival time and *lowers* its rate; only
  sending each token as soon as it exists helps. The weights are the text
  actually delivered, not the miner's own ``n_tokens`` claims.

factor = 1 − SPEED_SHARE + SPEED_SHARE · (½ · best_ttft / ttft + ½ · rate / best_rate), the bests
taken over the verified answers of the same step: the fastest gets 1.0, the
slowest no less than 1 − SPEED_SHARE. Unverified answers get 0 (their score is 0 anyway).
"""

from __future__ import annotations

SPEED_SHARE = 0.5
MIN_TIME = 1e-3


def stream_speed(chunk_times: list[float], weights: list[int], n_tokens: int | None = None
                 ) -> tuple[float, float] | None:
    """(ttft, rate) of one stream; None without chunks. ``weights``: text per chunk."""
    if not chunk_times:
        return None
    if len(weights) != len(chunk_times) or sum(max(0, w) for w in weights) <= 0:
        weights = [1] * len(chunk_times)
    total = sum(max(0, w) for w in weights)
    mean_arrival = sum(t * max(0, w) for t, w in zip(chunk_times, weights)) / total
    n = n_tokens if n_tokens is not None else len(chunk_times)
    return max(chunk_times[0], MIN_TIME), n / max(mean_arrival, MIN_TIME)


def timing_factors(streams: list[tuple], verified: list[bool]) -> list[float]:
    """One factor per stream ``(chunk_times, weights[, n_tokens])`` (see module doc); 0 for the unverified."""
    speeds = [stream_speed(*s) if ok else None for s, ok in zip(streams, verified)]
    known = [s for s in speeds if s is not None]
    if not known:
        return [0.0] * len(streams)
    best_ttft = min(s[0] for s in known)
    best_rate = max(s[1] for s in known)
    out = []
    for s in speeds:
        if s is None:
            out.append(0.0)
            continue
        quick = 0.5 * best_ttft / s[0] + 0.5 * s[1] / best_rate
        out.append(1.0 - SPEED_SHARE + SPEED_SHARE * quick)
    return out
