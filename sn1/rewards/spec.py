"""How a task declares its rewards and penalties: plain data.

    RewardSpec("rouge", 0.5, {"ngram": "rouge-1"})
    RewardSpec("relevance", 0.5)

Reward models compare the *reference* with each completion; penalty models
compare the *challenge* with each completion. Reward weights sum to 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class RewardSpec:
    name: str                      # rouge | relevance | diff | float_diff | date
    weight: float
    options: dict = field(default_factory=dict)
