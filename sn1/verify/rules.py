"""The verification rules: a miner's tokens and logprobs against the model's own (pure numpy).

Input: the model's log-probabilities by teacher forcing, one row per
completion token plus one after the last (``rows``, shape (n + 1, vocab)), the
token ids the miner reported (mapped from their bytes), the logprobs it
reported, and the request's sampling settings. Every position is checked
(the forward pass yields them all, so checking all costs milliseconds); the
first failure is the verdict's reason.

Rules, in order (docs/verification.md):

1. **logprobs** - one entry per token, each with the requested number of
   alternatives; alternatives are real tokens of the model.
2. **plausible** - each chosen token could have been sampled with the
   request's settings: greedy (temperature 0) takes the most likely token;
   otherwise the token is within the top ``top_k``, inside the ``top_p``
   nucleus (of the raw or the tempered distribution, whichever is looser:
   llama.cpp applies top_p before temperature, vLLM after) and above
   ``floor``. "More likely" always means by more than ``tol_token``, so
   near-ties never fail an honest miner.
3. **match** - the reported logprob of every token and of every alternative
   is within ``tol_token`` of the model's, their mean difference within
   ``tol_mean``, and no token more likely than the least likely reported
   alternative (by ``tol_token``) is missing from the alternatives.
4. **end** - ``stop`` before ``max_tokens`` only where an end-of-generation
   token is plausible (rule 2 applied to EOS); ``length`` only at
   ``max_tokens`` tokens.
5. **typical** (temperature > 0) - the answer is not much less likely than
   sampling would make it: z = (Σ log p(chosen) − Σ E_q[log p]) / sqrt(Σ Var_q)
   over the sampling distribution q (tempered, top-k); z below ``-z_max``
   fails. This catches text that is possible token by token but as a whole
   was not sampled from this model and prompt (a logit bias, another system
   prompt) even when its logprobs were recomputed honestly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .replay import MIN_P, SAMPLER, SAMPLERS, replay


@dataclass(frozen=True)
class Policy:
    """Sampling settings of the request and the tolerances (measured: benchmarks/inference_verify.py)."""

    temperature: float = 0.7
    top_k: int = 50
    top_p: float = 0.95
    max_tokens: int = 128
    top_logprobs: int = 5
    tol_token: float = 2.0        # |reported - model| of any logprob, and the left-out check: 1.66 seen honest
    tol_mean: float = 0.12        # mean |reported - model| over the chosen tokens
    floor: float = -12.0          # no sampled token is less likely than e^-12
    nucleus_slack: float = 0.02   # top_p + this: mass estimates differ a little between engines
    z_max: float = 5.0            # honest answers: z >= -3.3 in benchmarks/RESULTS.md
    # Sampler replay (verify/replay.py): with a seed and a known sampler every token is checked
    # against the draw the seeded sampler had to make; plausible/typical are then not needed.
    seed: int | None = None
    sampler: str | None = SAMPLER
    tol_replay: float = 0.5       # slack on the logprobs of tokens the miner did not report
    min_p: float = MIN_P          # part of llama.cpp/dist-v1 (llama-cpp-python's default)

    @classmethod
    def from_request(cls, request: dict, **over) -> "Policy":
        """The policy of one request body (messages, seed, temperature, top_k, top_p, max_tokens,
        top_logprobs, sampler) as sent to one miner."""
        kw = dict(temperature=float(request.get("temperature", cls.temperature)),
                  top_k=int(request.get("top_k", cls.top_k)), top_p=float(request.get("top_p", cls.top_p)),
                  max_tokens=int(request.get("max_tokens", cls.max_tokens)),
                  top_logprobs=int(request.get("top_logprobs", cls.top_logprobs)),
                  seed=request.get("seed"), sampler=request.get("sampler", SAMPLER))
        kw.update(over)
        return cls(**kw)

    @property
    def replays(self) -> bool:
        return self.seed is not None and self.sampler in SAMPLERS


@dataclass
class Verdict:
    ok: bool
    reason: str = ""
    rule: str = ""                 # stream | chunks | logprobs | tokens | length | match | sampler | end
    #                                (no seed or an unknown sampler: plausible | typical instead of sampler)
    n_tokens: int = 0
    max_diff: float = 0.0          # largest |reported - model| over tokens and alternatives
    mean_diff: float = 0.0
    z: float | None = None
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"ok": self.ok, "reason": self.reason, "rule": self.rule, "n_tokens": self.n_tokens,
                "max_diff": round(self.max_diff, 5), "mean_diff": round(self.mean_diff, 5),
                "z": None if self.z is None or not math.isfinite(self.z) else round(self.z, 3)}


def fail(rule: str, reason: str, **kw) -> Verdict:
    return Verdict(False, reason, rule, **kw)


def _implausible(rows: np.ndarray, chosen_lp: np.ndarray, p: Policy) -> tuple[int, str] | None:
    """(position, why) of the first token the request's sampler could not have drawn, or None."""
    above = rows > (chosen_lp[:, None] + p.tol_token)          # clearly more likely tokens
    rank = above.sum(axis=1)
    if p.temperature <= 0:
        bad = np.nonzero(rank > 0)[0]
        if bad.size:
            return int(bad[0]), "is not the most likely token (temperature 0 is greedy)"
    if p.top_k and p.top_k > 0:
        bad = np.nonzero(rank >= p.top_k)[0]
        if bad.size:
            j = int(bad[0])
            return j, f"ranks {int(rank[j]) + 1}, outside top_k {p.top_k}"
    if p.top_p < 1.0 and p.temperature > 0:
        probs = np.exp(rows)
        mass_raw = np.where(above, probs, 0.0).sum(axis=1)
        t = rows / p.temperature
        t = t - t.max(axis=1, keepdims=True)
        tp = np.exp(t)
        tp /= tp.sum(axis=1, keepdims=True)
        mass_t = np.where(above, tp, 0.0).sum(axis=1)
        mass = np.minimum(mass_raw, mass_t)
        bad = np.nonzero(mass >= p.top_p + p.nucleus_slack)[0]
        if bad.size:
            j = int(bad[0])
            return j, f"lies outside the top_p {p.top_p:g} nucleus ({mass[j]:.3f} of the mass is more likely)"
    bad = np.nonzero(chosen_lp < p.floor)[0]
    if bad.size:
        j = int(bad[0])
        return j, f"has logprob {chosen_lp[j]:.2f}, below the floor {p.floor:g}"
    return None


def typicality_z(rows: np.ndarray, chosen_lp: np.ndarray, p: Policy) -> float:
    """How many standard deviations less likely the answer is than sampled answers (negative = less)."""
    t = rows / max(p.temperature, 1e-6)
    if p.top_k and p.top_k > 0 and p.top_k < rows.shape[1]:
        kth = -np.partition(-t, p.top_k - 1, axis=1)[:, p.top_k - 1:p.top_k]
        t = np.where(t >= kth, t, -np.inf)
    t = t - t.max(axis=1, keepdims=True)
    q = np.exp(t)
    q /= q.sum(axis=1, keepdims=True)
    lp = np.where(q > 0, rows, 0.0)
    e = (q * lp).sum(axis=1)
    var = np.maximum((q * lp * lp).sum(axis=1) - e * e, 0.0)
    return float((chosen_lp.sum() - e.sum()) / math.sqrt(var.sum() + 1e-6))


def check(rows: np.ndarray, ids: list[int], reported: list[float], alt_ids: list[list[int]],
          alt_lps: list[list[float]], finish: str | None, eog: set[int] | list[int],
          p: Policy) -> Verdict:
    """Verdict for one answer whose tokens already mapped to ids (see step.verify_answer)."""
    n = len(ids)
    if rows.shape[0] != n + 1:
        raise ValueError(f"need {n + 1} rows of logprobs, got {rows.shape[0]}")
    idx = np.arange(n)
    chosen = rows[idx, ids] if n else np.zeros(0)
    diffs = np.abs(np.asarray(reported, dtype=np.float64) - chosen) if n else np.zeros(0)
    stats = dict(n_tokens=n, max_diff=float(diffs.max()) if n else 0.0,
                 mean_diff=float(diffs.mean()) if n else 0.0)

    # 1. logprobs: the requested number of alternatives per token.
    want = min(p.top_logprobs, rows.shape[1])
    for j in range(n):
        if len(alt_ids[j]) != want:
            return fail("logprobs", f"token {j}: {len(alt_ids[j])} top_logprobs, {want} requested", **stats)

    # 2. plausible (without a replay: the sampler's draw decides it, rule "sampler")
    if n and not p.replays:
        bad = _implausible(rows[:n], chosen, p)
        if bad is not None:
            j, why = bad
            return fail("plausible", f"token {j} {why}", **stats)

    # 3. match
    if n:
        j = int(diffs.argmax())
        if diffs[j] > p.tol_token:
            return fail("match", f"token {j}: reported logprob {reported[j]:.3f}, the model gives "
                                 f"{chosen[j]:.3f}", **stats)
        if stats["mean_diff"] > p.tol_mean:
            return fail("match", f"reported logprobs differ from the model's by {stats['mean_diff']:.3f} "
                                 f"on average (tolerance {p.tol_mean:g})", **stats)
    for j in range(n if want else 0):
        row = rows[j]
        got = np.asarray(alt_lps[j], dtype=np.float64)
        model = row[alt_ids[j]]
        d = np.abs(got - model)
        if d.size:
            stats["max_diff"] = max(stats["max_diff"], float(d.max()))
        if d.size and d.max() > p.tol_token:
            k = int(d.argmax())
            return fail("match", f"token {j}: alternative {k} reported {got[k]:.3f}, the model gives "
                                 f"{model[k]:.3f}", **stats)
        missing = np.setdiff1d(np.nonzero(row > got.min() + p.tol_token)[0], alt_ids[j])
        if missing.size:
            return fail("match", f"token {j}: top_logprobs leave out token id {int(missing[0])} "
                                 f"(logprob {row[missing[0]]:.3f})", **stats)

    if p.replays:
        return _replayed(rows, ids, reported, alt_ids, alt_lps, finish, eog, p, stats)

    # 4. end
    bad_end = _end_claim(n, finish, p, stats)
    if bad_end is not None:
        return bad_end
    if finish == "stop":
        last = rows[n]
        eos = max(eog, key=lambda i: last[i])
        bad = _implausible(last[None, :], last[eos:eos + 1], p)
        if bad is not None:
            return fail("end", f"stopped after {n} tokens where the model would go on "
                               f"(end of text {bad[1]})", **stats)

    # 5. typical
    z = None
    if n and p.temperature > 0:
        if finish == "stop":      # stopping was sampled too: a cut where EOS is unlikely counts
            eos_lp = max(rows[n, i] for i in eog)
            z = typicality_z(rows, np.append(chosen, eos_lp), p)
        else:
            z = typicality_z(rows[:n], chosen, p)
        if z < -p.z_max:
            return fail("typical", f"the answer is far less likely than sampling gives (z = {z:.1f})",
                        z=z, **stats)
    return Verdict(True, "", "", z=z, **stats)


def _end_claim(n: int, finish, p: Policy, stats: dict) -> Verdict | None:
    """The finish reason against the length: ``length`` only at max_tokens, ``stop`` only before."""
    if finish == "length":
        if n != p.max_tokens:
            return fail("end", f"finish_reason length after {n} tokens, max_tokens is {p.max_tokens}", **stats)
    elif finish == "stop":
        if n >= p.max_tokens:
            return fail("end", f"finish_reason stop at {n} tokens, past max_tokens {p.max_tokens}", **stats)
    else:
        return fail("end", f"the answer did not finish (finish_reason {finish!r})", **stats)
    return None


def _replayed(rows, ids, reported, alt_ids, alt_lps, finish, eog, p: Policy, stats: dict) -> Verdict:
    """Rules 4-5 with a seed: the end, then every token against the seeded sampler's draw."""
    n = len(ids)
    bad_end = _end_claim(n, finish, p, stats)
    if bad_end is not None:
        return bad_end
    fixed = []
    for j in range(n):
        f = {int(a): float(v) for a, v in zip(alt_ids[j], alt_lps[j])}
        f[int(ids[j])] = float(reported[j])
        fixed.append(f)
    bad = replay(rows, ids, fixed, finish, eog, seed=int(p.seed), temperature=p.temperature,
                 top_k=p.top_k, top_p=p.top_p, max_tokens=p.max_tokens, eps=p.tol_replay,
                 nucleus_slack=p.nucleus_slack, min_p=p.min_p)
    if bad is not None:
        j, why = bad
        return fail("end" if j == n else "sampler", why, **stats)
    return Verdict(True, "", "", **stats)
