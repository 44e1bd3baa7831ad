"""Token logprobs on the wire: OpenAI's ``choices[0].logprobs.content`` entries.

One entry per generated token::

    {"token": " Paris", "logprob": -0.12, "bytes": [32, 80, 97, 114, 105, 115],
     "top_logprobs": [{"token": " Paris", "logprob": -0.12, "bytes": [...]}, ...]}

``bytes`` are the token's exact bytes (a byte-level BPE token may hold half a
UTF-8 character, which ``token`` cannot show); readers use them when present.
Logprobs are those of the model's own distribution (temperature 1, before
top-k / top-p / min-p), as OpenAI and llama.cpp report them: that is what a
verifier can recompute whatever sampler the miner ran.

``decode_logprobs`` reads what a peer sent, with caps: it raises
``LogprobsError`` (one line) on wrong types, NaN/inf, positive logprobs,
more than ``MAX_TOP_LOGPROBS`` alternatives or oversized tokens; it never
lets a peer's JSON through unchecked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MAX_TOP_LOGPROBS = 20          # what a request may ask for (OpenAI's limit)
MAX_TOKEN_BYTES = 256          # no vocabulary has longer tokens
_LOGPROB_SLACK = 1e-3          # a logprob a hair above 0 is rounding, not a lie


class LogprobsError(ValueError):
    """A peer's logprobs are not well formed (message is one line, safe to log)."""


@dataclass(frozen=True, slots=True)
class TopLogprob:
    token: bytes
    logprob: float


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """One generated token: its bytes, its logprob, and the most likely alternatives."""

    token: bytes
    logprob: float
    top: tuple[TopLogprob, ...] = ()

    @property
    def text(self) -> str:
        return self.token.decode("utf-8", errors="replace")


def encode_logprobs(tokens) -> list[dict]:
    """``content`` entries for ``tokens`` (TokenLogprob-like: token bytes, logprob, top)."""
    out = []
    for t in tokens:
        out.append({
            "token": t.token.decode("utf-8", errors="replace"), "logprob": float(t.logprob),
            "bytes": list(t.token),
            "top_logprobs": [{"token": a.token.decode("utf-8", errors="replace"),
                              "logprob": float(a.logprob), "bytes": list(a.token)} for a in t.top],
        })
    return out


def _token_bytes(entry: dict, where: str) -> bytes:
    raw = entry.get("bytes")
    if raw is not None:
        if not isinstance(raw, list) or len(raw) > MAX_TOKEN_BYTES:
            raise LogprobsError(f"{where}.bytes: must be a list of at most {MAX_TOKEN_BYTES} byte values")
        if not all(isinstance(b, int) and not isinstance(b, bool) and 0 <= b <= 255 for b in raw):
            raise LogprobsError(f"{where}.bytes: values must be integers 0-255")
        return bytes(raw)
    token = entry.get("token")
    if not isinstance(token, str):
        raise LogprobsError(f"{where}.token: must be a string")
    data = token.encode("utf-8", errors="surrogatepass")
    if len(data) > MAX_TOKEN_BYTES:
        raise LogprobsError(f"{where}.token: longer than {MAX_TOKEN_BYTES} bytes")
    return data


def _logprob(value, where: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise LogprobsError(f"{where}.logprob: must be a number, got {type(value).__name__}")
    try:
        v = float(value)
    except OverflowError:       # an integer of hundreds of digits
        raise LogprobsError(f"{where}.logprob: must be finite, got an integer of {value.bit_length()} bits") from None
    if not math.isfinite(v):
        raise LogprobsError(f"{where}.logprob: must be finite, got {v}")
    if v > _LOGPROB_SLACK:
        raise LogprobsError(f"{where}.logprob: a log-probability cannot be positive ({v:g})")
    return min(v, 0.0)


def decode_logprobs(choice_logprobs, *, max_top: int = MAX_TOP_LOGPROBS) -> list[TokenLogprob]:
    """The TokenLogprobs of one chunk's ``choices[0].logprobs`` (None or absent -> [])."""
    if choice_logprobs is None:
        return []
    if not isinstance(choice_logprobs, dict):
        raise LogprobsError("logprobs: must be an object with a `content` list")
    content = choice_logprobs.get("content")
    if content is None:
        return []
    if not isinstance(content, list):
        raise LogprobsError("logprobs.content: must be a list")
    out = []
    for i, entry in enumerate(content):
        where = f"logprobs.content.{i}"
        if not isinstance(entry, dict):
            raise LogprobsError(f"{where}: must be an object")
        top_raw = entry.get("top_logprobs") or []
        if not isinstance(top_raw, list):
            raise LogprobsError(f"{where}.top_logprobs: must be a list")
        if len(top_raw) > max_top:
            raise LogprobsError(f"{where}.top_logprobs: {len(top_raw)} entries, more than the "
                                f"limit of {max_top}")
        top = []
        for j, alt in enumerate(top_raw):
            w = f"{where}.top_logprobs.{j}"
            if not isinstance(alt, dict):
                raise LogprobsError(f"{w}: must be an object")
            top.append(TopLogprob(_token_bytes(alt, w), _logprob(alt.get("logprob"), w)))
        out.append(TokenLogprob(_token_bytes(entry, where), _logprob(entry.get("logprob"), where),
                                tuple(top)))
    return out
