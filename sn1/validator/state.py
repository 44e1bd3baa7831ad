"""The validator's state (step, scores, hotkeys, proofs), saved atomically after every step.

``proofs`` keeps, per miner hotkey, its last inference verdicts as
``[step, passed]`` pairs (at most ``MAX_PROOFS``): no proof, no pay
(``proven``; README "Where we differ"). Keyed by hotkey, so a uid taken over
by a new hotkey starts without proof, and a restart keeps them.

A crash or ``kill -9`` at any moment leaves either the previous or the new
file, never a torn one: write a temp file in the same folder, fsync, rename.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field

import numpy as np

from ..errors import UsageError

STATE_FILE = "state.json"
FORMAT = "sn1-validator-state/1"      # "proofs" was added later: files without it load with none
MAX_PROOFS = 64                       # verdicts kept per hotkey (the window can be at most this)


@dataclass
class State:
    step: int = 0
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0))
    hotkeys: list[str] = field(default_factory=list)
    last_weights_block: int = -1
    proofs: dict[str, list[list[int]]] = field(default_factory=dict)   # hotkey -> [[step, passed], ...]

    def record_proofs(self, uids, passed) -> None:
        """The inference verdicts of one step (``uids`` index ``hotkeys``); at the current step."""
        if len(uids) != len(passed):
            raise ValueError(f"{len(uids)} uids but {len(passed)} verdicts")
        for uid, ok in zip(uids, passed):
            if 0 <= uid < len(self.hotkeys):
                rec = self.proofs.setdefault(self.hotkeys[uid], [])
                rec.append([int(self.step), int(bool(ok))])
                del rec[:-MAX_PROOFS]
        # Forget hotkeys that left the subnet: the record stays as big as the subnet.
        if len(self.proofs) > len(self.hotkeys):
            keep = set(self.hotkeys)
            self.proofs = {h: r for h, r in self.proofs.items() if h in keep}

    def proven(self, window: int, max_age: int) -> np.ndarray:
        """Per uid: True if one of its last ``window`` inference verdicts passed and was at most
        ``max_age`` steps ago."""
        out = np.zeros(len(self.hotkeys), dtype=bool)
        for uid, hk in enumerate(self.hotkeys):
            rec = self.proofs.get(hk)
            if rec:
                out[uid] = any(ok and self.step - step <= max_age for step, ok in rec[-window:])
        return out

    def to_json(self) -> dict:
        return {
            "format": FORMAT,
            "step": self.step,
            "scores": [float(x) for x in self.scores],
            "hotkeys": list(self.hotkeys),
            "last_weights_block": self.last_weights_block,
            "proofs": {h: [list(p) for p in r] for h, r in self.proofs.items()},
        }


def atomic_write(path: str, data: bytes) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    # Make the rename itself durable.
    dfd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def save(folder: str, state: State) -> None:
    atomic_write(os.path.join(folder, STATE_FILE), json.dumps(state.to_json()).encode())


def _remove_torn_temp_files(folder: str) -> None:
    # Left by a crash between write and rename; never part of the state.
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return
    for name in names:
        if name.startswith(".tmp-") and name.endswith(STATE_FILE):
            try:
                os.unlink(os.path.join(folder, name))
            except FileNotFoundError:
                pass


def load(folder: str) -> State | None:
    """The saved state, None if there is none; UsageError if it is not ours or is damaged."""
    path = os.path.join(folder, STATE_FILE)
    _remove_torn_temp_files(folder)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        return None
    try:
        d = json.loads(raw)
        if d.get("format") != FORMAT:
            raise ValueError("unknown format")
        scores = np.asarray(d["scores"], dtype=np.float64)
        hotkeys = [str(h) for h in d["hotkeys"]]
        if len(scores) != len(hotkeys):
            raise ValueError("scores and hotkeys differ in length")
        proofs = {str(h): [[int(step), int(bool(ok))] for step, ok in r][-MAX_PROOFS:]
                  for h, r in (d.get("proofs") or {}).items()}
        return State(step=int(d["step"]), scores=scores, hotkeys=hotkeys,
                     last_weights_block=int(d.get("last_weights_block", -1)), proofs=proofs)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise UsageError(f"validator state {path} is not a valid SN1 state file ({e}); "
                         f"move it away to start fresh") from None
