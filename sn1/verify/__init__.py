"""Proof of inference: teacher-forced checks of a miner's tokens and logprobs.

    from sn1.verify import Policy, Submission, Verifier, verify_step
    v = Verifier(model_path)                       # the inference model (default: embedded SmolLM2)
    step = verify_step(v, messages, Policy(...), [Submission.of(r) for r in results])  # blocking
    step.total, step.verdicts, step.to_event()

Verify knows the LLM layer only (house.json: Validator -> Verify -> LLM).
"""

from .rules import Policy, Verdict, check
from .speed import stream_speed, timing_factors
from .step import StepVerification, Submission, Verifier, model_label, verify_answer, verify_step

__all__ = ["Policy", "Verdict", "check", "stream_speed", "timing_factors", "StepVerification",
           "Submission", "Verifier", "model_label", "verify_answer", "verify_step"]
