"""Moving-average scores (spec §5 step 6 and sync)."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def update(scores: np.ndarray, uids: Sequence[int], rewards: Sequence[float], *,
           alpha: float, decay_alpha: float) -> np.ndarray:
    """EMA for the queried uids, then a global decay floored at 0.

    scores[uid] = alpha * reward + (1 - alpha) * scores[uid]   (queried uids only)
    scores = max(scores - decay_alpha, 0)                      (every uid)
    NaN or infinite rewards count as 0.
    """
    out = np.asarray(scores, dtype=np.float64).copy()
    r = np.nan_to_num(np.asarray(rewards, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    idx = np.asarray(uids, dtype=np.int64)
    if len(idx) != len(r):
        raise ValueError(f"{len(idx)} uids but {len(r)} rewards")
    out[idx] = alpha * r + (1.0 - alpha) * out[idx]
    return np.clip(out - decay_alpha, 0.0, None)


def resync(scores: np.ndarray, old_hotkeys: Sequence[str], new_hotkeys: Sequence[str]) -> np.ndarray:
    """Scores after a metagraph change: a uid whose hotkey changed restarts at 0; new uids start at 0.

    If the subnet shrank, the extra uids are dropped.
    """
    out = np.zeros(len(new_hotkeys), dtype=np.float64)
    keep = min(len(old_hotkeys), len(new_hotkeys), len(scores))
    for uid in range(keep):
        if old_hotkeys[uid] == new_hotkeys[uid]:
            out[uid] = scores[uid]
    return out
