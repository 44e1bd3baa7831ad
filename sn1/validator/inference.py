"""The validator's side of the ``inference`` task: what to send, and scoring by verification.

Kept out of loop.py so the loop only branches: the request's fields come from
the task (tasks/inference.py), the verdicts from sn1.verify, run in a worker
thread by the caller.
"""

from __future__ import annotations

import logging
import time

from ..config import get
from ..errors import UsageError
from ..protocol.logprobs import MAX_TOP_LOGPROBS
from ..llm.base import GenParams
from ..verify import Policy, StepVerification, Submission, Verifier, model_label, verify_step

log = logging.getLogger(__name__)


def make_verifier(config) -> Verifier:
    """The inference model for verification (loaded on first use, in the scoring thread)."""
    # Room for the prompt (a system prompt and one request: a few hundred tokens) and the answer.
    n_ctx = max(1024, get(config, "neuron.inference_max_tokens", 64) + 768)
    return Verifier(get(config, "neuron.inference_model"), n_ctx=n_ctx,
                    n_threads=get(config, "neuron.inference_threads"),
                    engine=get(config, "neuron.verify_engine", "auto"))


def asked(config) -> bool:
    """Whether this validator's task mix includes the inference task."""
    return any(t == "inference" and p > 0 for t, p in zip(get(config, "neuron.tasks") or [],
                                                          get(config, "neuron.task_p") or []))


def preload(verifier: Verifier) -> None:
    """Load the verification model now (a worker thread at start-up); a failure is logged here
    and raised again where the first inference step needs the model."""
    t = time.monotonic()
    try:
        verifier.forcer
    except Exception as e:  # noqa: BLE001 - reported by the step that needs it
        log.warning("the inference verification model did not load: %s", e)
        return
    log.info("inference verification model ready (%s rows) in %.1fs",
                                     verifier.engine, time.monotonic() - t)


def check_options(config) -> None:
    """UsageError (one line) for out-of-range ``--neuron.inference_*`` values."""
    k = get(config, "neuron.inference_top_logprobs", 5)
    if not 0 <= k <= MAX_TOP_LOGPROBS:
        raise UsageError(f"--neuron.inference_top_logprobs must be 0-{MAX_TOP_LOGPROBS}, got {k}")
    m = get(config, "neuron.inference_max_tokens", 64)
    if m < 1:
        raise UsageError(f"--neuron.inference_max_tokens must be at least 1, got {m}")


def task_options(config) -> dict:
    """``build_task(..., options=)`` of the inference task from ``--neuron.inference_*``."""
    return {"model": model_label(get(config, "neuron.inference_model")),
            "max_tokens": get(config, "neuron.inference_max_tokens", 64),
            "top_logprobs": get(config, "neuron.inference_top_logprobs", 5)}


def requests_for(task, uids) -> list[dict]:
    """The request each uid is sent: the task's, with a seed of its own (sn1.tasks.inference)."""
    from ..tasks.inference import requests_for as per_uid

    return per_uid(task.extra["request"], uids)


def request_args(r: dict) -> tuple[list[dict], GenParams, str, str | None]:
    """(messages, params, model, sampler) of one request dict."""
    params = GenParams(max_tokens=r["max_tokens"], temperature=r["temperature"], top_k=r["top_k"],
                       top_p=r["top_p"], seed=r["seed"], logprobs=r["top_logprobs"])
    return r["messages"], params, r["model"], r.get("sampler")


def policy_for(task, request: dict | None = None) -> Policy:
    """The policy of the request a miner was sent (its seed included: the sampler is replayed)."""
    return Policy.from_request(request or task.extra["request"])


def score(verifier: Verifier, task, results, requests: list[dict] | None = None) -> StepVerification:
    """Blocking (forward passes): every miner's answer verified, rewards with the timing factor.

    ``requests``: the request body each miner was actually sent (one per result: its own seed,
    messages...); None: every miner got ``task.extra["request"]``.
    """
    if requests is None:
        requests = [task.extra["request"]] * len(results)
    return verify_step(verifier, [r["messages"] for r in requests], [policy_for(task, r) for r in requests],
                       [Submission.of(r) for r in results])
