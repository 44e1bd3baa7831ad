"""The scores of a validator running beside the gateway, read from its state file.

The validator saves ``state.json`` (format ``sn1-validator-state/1``: ``scores``
and ``hotkeys`` by uid) atomically after every step; we read that file, never
the validator's code. A score counts only while the uid still has the hotkey
it was earned by. Anything unreadable gives no scores (and a warning): routing
then goes by incentive alone.
"""

from __future__ import annotations

import json
import logging
import math
import os

log = logging.getLogger("sn1.gateway")

STATE_FILE = "state.json"
FORMAT = "sn1-validator-state/1"


def read_scores(path: str, metagraph) -> dict[int, float]:
    """uid -> score from the validator state at ``path`` (its folder or the file itself)."""
    if os.path.isdir(path):
        path = os.path.join(path, STATE_FILE)
    try:
        with open(path, "rb") as f:
            state = json.loads(f.read(64 << 20))
        if state.get("format") != FORMAT:
            raise ValueError(f"format is {state.get('format')!r}, not {FORMAT!r}")
        scores, hotkeys = state["scores"], state["hotkeys"]
    except FileNotFoundError:
        log.debug("no validator state at %s yet", path)     # a validator before its first step
        return {}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        log.warning("validator scores not used: cannot read %s: %s", path, e)
        return {}
    out = {}
    for n in metagraph.neurons:
        if n.uid < len(scores) and n.uid < len(hotkeys) and hotkeys[n.uid] == n.hotkey:
            s = scores[n.uid]
            if isinstance(s, (int, float)) and math.isfinite(s) and s > 0:
                out[n.uid] = float(s)
    return out
