"""Reward models (spec §6) and the step scorer.

    from sn1.rewards import RewardSpec, score, load_relevance_model
    load_relevance_model(config.neuron.relevance_model, config.neuron.device)  # once, at start
    step = score(task.rewards, task.penalties, reference, challenge, completions)
    step.total          # one reward per completion
    step.to_event()     # per-model raw / normalized / timings for the events log

Importing this package is light: rouge-score, sympy and sentence-transformers
are imported on first use.
"""

from sn1.rewards.pipeline import REWARD_MODELS, ModelRewards, StepRewards, check_specs, model_key, score
from sn1.rewards.relevance import (
    DEFAULT_MODEL, RelevanceModel, default_relevance_model, get_relevance_model, load_relevance_model,
)
from sn1.rewards.spec import RewardSpec

__all__ = [
    "DEFAULT_MODEL", "REWARD_MODELS", "ModelRewards", "RelevanceModel", "RewardSpec", "StepRewards",
    "check_specs", "default_relevance_model", "get_relevance_model", "load_relevance_model", "model_key", "score",
]
