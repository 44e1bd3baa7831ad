"""The step log: one JSON line per step, size-capped, and Weights & Biases.

The local log is the one you can always read (`events.jsonl` in the
validator's folder); rotation keeps it under ``--neuron.events_retention_size``
(the current file plus one rotated file, each at most half the cap).
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import math
import os

import numpy as np

from ..protocol.text import replace_surrogates

log = logging.getLogger("sn1.validator")


def _plain(x):
    """JSON-safe: numpy scalars/arrays to Python, NaN/inf to None, text encodable as UTF-8."""
    if isinstance(x, str):
        return replace_surrogates(x)
    if isinstance(x, dict):
        return {replace_surrogates(str(k)): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.ndarray):
        return _plain(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if x is None or isinstance(x, (bool, int, float)):
        return x
    return replace_surrogates(repr(x))     # anything else: its repr, never a failed step record


class EventLog:
    def __init__(self, path: str, max_bytes: int):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self._logger = logging.getLogger(f"sn1.events.{path}")
        self._logger.propagate = False
        self._logger.setLevel(logging.INFO)
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=max(1, max_bytes // 2), backupCount=1, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(message)s"))
        self._logger.handlers[:] = [handler]

    def write(self, event: dict) -> None:
        try:
            line = json.dumps(_plain(event), ensure_ascii=False)
        except (TypeError, ValueError, RecursionError) as e:   # keep the step's line, say what broke
            log.warning("event of step %s not fully serialisable: %s", event.get("step"), e)
            line = json.dumps({"step": _plain(event.get("step")), "event_error": replace_surrogates(str(e))})
        self._logger.info(line)
        self._logger.handlers[0].flush()

    def close(self) -> None:
        for h in self._logger.handlers:
            h.close()
        self._logger.handlers[:] = []


def read_events(path: str) -> list[dict]:
    """All events still on disk, oldest first."""
    out: list[dict] = []
    for p in (path + ".1", path):
        if os.path.exists(p):
            with open(p, encoding="utf-8", errors="replace") as f:
                for line in f:
                    try:
                        out.append(json.loads(line))
                    except json.JSONDecodeError:
                        continue   # a line torn by a crash mid-write
    return out


class WandbLog:
    """Weights & Biases run that rolls over every ``run_step_length`` steps.

    Offline (files under the validator's folder) when there is no API key or
    with ``--wandb.offline``; nothing at all with ``--wandb.off``.
    """

    def __init__(self, config, folder: str, run_config: dict):
        from ..config import get

        self.enabled = not get(config, "wandb.off", False)
        self.offline = bool(get(config, "wandb.offline", False)) or not os.environ.get("WANDB_API_KEY")
        self.project = get(config, "wandb.project_name", "alpha-validators")
        self.entity = get(config, "wandb.entity", None)
        self.run_step_length = int(get(config, "wandb.run_step_length", 1500))
        self.folder = folder
        self.run_config = run_config
        self._run = None
        self._steps_in_run = 0

    def _start(self):
        import wandb

        self._run = wandb.init(
            project=self.project, entity=self.entity, dir=self.folder, reinit="finish_previous",
            mode="offline" if self.offline else "online", config=self.run_config,
            tags=[f"netuid_{self.run_config.get('netuid')}"],
            # wandb's own banner and its ~35-line run summary at every finish: silenced; the
            # run's place (and how to upload an offline run) is logged here, once.
            settings=wandb.Settings(silent=True),
        )
        self._steps_in_run = 0
        if self.offline:
            log.info("wandb run %s offline in %s (upload it with `wandb sync %s`)", self._run.id,
                     self._run.settings.sync_dir, self._run.settings.sync_dir)
        else:
            log.info("wandb run %s online: %s", self._run.id, self._run.url)

    def log(self, event: dict) -> None:
        if not self.enabled:
            return
        try:
            if self._run is None or self._steps_in_run >= self.run_step_length:
                self.close()
                self._start()
            self._run.log(_wandb_safe(event))
            self._steps_in_run += 1
        except Exception as e:  # monitoring must never stop the validator
            log.warning("wandb logging failed: %s", e)

    def close(self) -> None:
        if self._run is not None:
            try:
                self._run.finish()
            except Exception as e:
                log.warning("wandb finish failed: %s", e)
            self._run = None


def _wandb_safe(event: dict) -> dict:
    # wandb wants flat scalars or lists; nested dicts are flattened with '/'.
    flat: dict = {}

    def walk(prefix, v):
        if isinstance(v, dict):
            for k, x in v.items():
                walk(f"{prefix}/{k}" if prefix else str(k), x)
        else:
            flat[prefix] = v

    walk("", _plain(event))
    return flat
