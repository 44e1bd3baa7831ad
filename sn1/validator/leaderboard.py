"""`sn1 leaderboard`: a validator's view of its miners, from its folder alone.

Reads ``events.jsonl`` (one line per step: task, uids, rewards, statuses) and
``state.json`` (moving-average scores, hotkeys) of any validator's
``--neuron.full_path`` (the demo's is ``~/.sn1/demo/validator``) and shows per
uid: the mean reward per task, the score, the weight those scores give
(``sn1.validator.weights.process_weights``, what the validator sets), and how
its answers ended (``ok``, ``timeout``...). ``--watch`` reprints it as steps
arrive; ``--html FILE`` writes a self-contained report with charts
(sn1.validator.leaderboard_html; no network needed to view it).

The demo prints its leaderboard with this same code, adding what the chain
holds (the weights the validator set, the incentive consensus paid).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from dataclasses import dataclass, field

from ..config import Bounded, expand, flag, one_line_errors
from ..errors import UsageError

DEFAULT_PATH = "~/.sn1/demo/validator"
# The validator's defaults (sn1/validator/config.py), used to replay scores from logs written
# before events carried them.
REPLAY_ALPHA, REPLAY_DECAY = 0.1, 0.001
MAX_STEPS_CHARTED = 2000       # the chart keeps the last this many steps (events are size-capped anyway)
MAX_READ_BYTES = 64 * 1024**2  # of the events log (up to 2 GiB by default), the newest this many bytes are read


@dataclass
class Row:
    uid: int
    hotkey: str = ""
    label: str = ""
    rewards: dict = field(default_factory=dict)        # task -> list of rewards
    status: dict = field(default_factory=dict)         # status -> count
    score: float = 0.0
    weight: float = 0.0
    chain_weight: float | None = None
    incentive: float | None = None
    history: list = field(default_factory=list)        # (step, score)

    def mean(self, task: str) -> float | None:
        r = self.rewards.get(task)
        return sum(r) / len(r) if r else None

    @property
    def queried(self) -> int:
        return sum(self.status.values())


@dataclass
class Board:
    folder: str
    rows: list[Row]
    tasks: list[str]
    step: int
    steps_logged: int
    validator_uid: int | None
    updated: float          # mtime of the newest file read
    chain: bool = False     # chain_weight / incentive are filled


def _num(x) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return 0.0
    return v if math.isfinite(v) else 0.0


def read_recent_events(path: str, max_bytes: int = MAX_READ_BYTES) -> list[dict]:
    """The newest events of the log ``path`` (and its rotated ``path.1``), at most ``max_bytes`` read,
    oldest first; torn or foreign lines are skipped."""
    import json

    chunks: list[bytes] = []
    left = max_bytes
    for p in (path, path + ".1"):              # newest first, until the budget is spent
        if left <= 0:
            break
        try:
            with open(p, "rb") as f:
                size = f.seek(0, os.SEEK_END)
                start = max(0, size - left)
                f.seek(start)
                data = f.read(size - start)
        except OSError:
            continue
        if start > 0:                           # drop the partial first line
            data = data[data.find(b"\n") + 1:] if b"\n" in data else b""
        chunks.insert(0, data)
        left -= size - start
    out = []
    for line in b"".join(chunks).splitlines():
        try:
            out.append(json.loads(line))
        except (ValueError, UnicodeDecodeError):
            continue
    return out


def collect(folder: str, labels: dict[int, str] | None = None) -> Board:
    """The leaderboard of the validator whose folder is ``folder``; UsageError if it has none."""
    from . import state as state_mod
    from .weights import process_weights
    from ..chain.base import Hyperparams

    folder = expand(folder)
    if not os.path.isdir(folder):
        raise UsageError(f"--neuron.full_path {folder}: no such folder (a validator's folder holds "
                         f"events.jsonl and state.json; the demo's is {DEFAULT_PATH})")
    events_path = os.path.join(folder, "events.jsonl")
    st = state_mod.load(folder)
    events = [e for e in read_recent_events(events_path) if isinstance(e, dict) and isinstance(e.get("uids"), list)]
    if st is None and not events:
        raise UsageError(f"--neuron.full_path {folder}: no events.jsonl or state.json yet (is it a "
                         f"validator's folder? has it finished a step?)")
    rows: dict[int, Row] = {}

    def row(uid: int) -> Row:
        if uid not in rows:
            rows[uid] = Row(uid)
        return rows[uid]

    tasks: list[str] = []
    replay: dict[int, float] = {}
    validator_uid = None
    for ev in events:
        task = str(ev.get("task", "?"))
        if task not in tasks:
            tasks.append(task)
        uids = [int(u) for u in ev["uids"] if isinstance(u, int) and 0 <= u < 1 << 16]
        if len(uids) != len(ev["uids"]):
            continue                     # not an event of ours
        validator_uid = ev.get("validator_uid", validator_uid)
        rewards = ev.get("rewards") or []
        statuses = ev.get("status") or []
        hotkeys = ev.get("hotkeys") or []
        logged = ev.get("scores")
        step = int(_num(ev.get("step")))
        for i, uid in enumerate(uids):
            r = row(uid)
            reward = _num(rewards[i]) if i < len(rewards) else 0.0
            s = str(statuses[i]) if i < len(statuses) else "?"
            if i < len(hotkeys) and isinstance(hotkeys[i], str):
                if r.hotkey and r.hotkey != hotkeys[i]:     # the uid changed hands: its history restarts
                    rows[uid] = r = Row(uid)
                    replay[uid] = 0.0
                r.hotkey = hotkeys[i]
            r.rewards.setdefault(task, []).append(reward)
            r.status[s] = r.status.get(s, 0) + 1
            # sn1.validator.scores.update: the queried uids' moving average, then every score decays
            replay[uid] = REPLAY_ALPHA * reward + (1 - REPLAY_ALPHA) * replay.get(uid, 0.0)
        for u in replay:
            replay[u] = max(replay[u] - REPLAY_DECAY, 0.0)
        for i, uid in enumerate(uids):
            score = _num(logged[i]) if isinstance(logged, list) and i < len(logged) else replay[uid]
            rows[uid].history.append((step, score))
    if st is not None:
        for uid, hk in enumerate(st.hotkeys):
            r = row(uid)
            if r.hotkey and r.hotkey != hk:        # replaced since its last step: a new miner
                rows[uid] = r = Row(uid)
            r.hotkey = hk
            r.score = float(st.scores[uid]) if uid < len(st.scores) else 0.0
        try:
            uids, weights = process_weights(st.scores, Hyperparams())
        except ValueError:
            uids, weights = [], []
        for uid, w in zip(uids, weights):
            row(uid).weight = float(w)
    else:
        for r in rows.values():
            r.score = r.history[-1][1] if r.history else 0.0
    if validator_uid is not None:
        rows.pop(int(validator_uid), None)             # the validator does not query itself
    for uid, label in (labels or {}).items():
        row(uid).label = label
    if labels is not None:
        rows = {u: r for u, r in rows.items() if u in labels}
    mtimes = [os.path.getmtime(p) for p in (events_path, os.path.join(folder, state_mod.STATE_FILE))
              if os.path.exists(p)]
    def overall(r: Row) -> float:
        all_rewards = [x for v in r.rewards.values() for x in v]
        return sum(all_rewards) / len(all_rewards) if all_rewards else -1.0
    ordered = sorted(rows.values(), key=lambda r: (-r.score, -overall(r), r.uid))
    ordered = [r for r in ordered if r.queried or r.score > 0 or labels is not None]
    return Board(folder=folder, rows=ordered, tasks=tasks, step=st.step if st else len(events),
                 steps_logged=len(events), validator_uid=None if validator_uid is None else int(validator_uid),
                 updated=max(mtimes) if mtimes else time.time())


def add_chain_view(board: Board, chain, validator_uid: int | None = None) -> Board:
    """Fill what the chain holds: the weights this validator set, the incentive consensus paid."""
    vuid = board.validator_uid if validator_uid is None else validator_uid
    set_weights = chain.weights().get(vuid, {}) if vuid is not None else {}
    mg = chain.metagraph()
    for r in board.rows:
        r.chain_weight = float(set_weights.get(r.uid, 0.0))
        r.incentive = float(mg.neurons[r.uid].incentive) if r.uid < len(mg.neurons) else 0.0
    board.chain = True
    return board


def status_text(status: dict) -> str:
    order = sorted(status, key=lambda s: (s != "ok", -status[s], s))
    return ", ".join(f"{status[s]} {s}" for s in order) or "-"


def render_text(board: Board) -> str:
    """The table: one row per uid, best score first; the numbers last (scripts read them from the end)."""
    tasks = board.tasks
    width = max([8] + [len(t) for t in tasks]) + 2
    show_names = any(r.label for r in board.rows)
    name_w = max([10] + [len(r.label) for r in board.rows]) + 2 if show_names else 12
    ans_w = max([7] + [len(status_text(r.status)) for r in board.rows]) + 2
    who = f"{'miner' if show_names else 'hotkey':<{name_w}}"
    tail = f"{'score':>9}{'weight':>9}" + (f"{'incentive':>11}" if board.chain else "")
    head = f"{'uid':>3}  {who}" + "".join(f"{t:>{width}}" for t in tasks) + f"  {'answers':<{ans_w}}" + tail
    lines = [f"Leaderboard of {board.folder}: step {board.step}, {board.steps_logged} steps logged"
             + ("" if board.validator_uid is None else f", validator uid {board.validator_uid}"),
             head, "-" * len(head)]
    for r in board.rows:
        name = f"{r.label:<{name_w}}" if show_names else f"{(r.hotkey[:10] or '?'):<{name_w}}"
        cells = "".join(f"{'-' if r.mean(t) is None else format(r.mean(t), '.3f'):>{width}}" for t in tasks)
        weight = r.chain_weight if board.chain else r.weight
        inc = f"{r.incentive:>11.4f}" if board.chain else ""
        lines.append(f"{r.uid:>3}  {name}{cells}  {status_text(r.status):<{ans_w}}{r.score:>9.4f}{weight:>9.4f}{inc}")
    if not board.rows:
        lines.append("(no miner scored yet)")
    if board.chain:
        lines.append("weight: set on chain by this validator; incentive: paid by consensus")
    else:
        lines.append("weight: what these scores give (the validator sets them every --neuron.epoch_length blocks)")
    return "\n".join(lines)


# ---- the command ------------------------------------------------------------------------------

def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "leaderboard", help="a validator's scores per miner: table, live view, HTML report",
        description="Per miner: mean reward per task, score, weight and how its answers ended, read "
                    "from a validator's folder (events.jsonl, state.json).")
    one_line_errors(p)
    flag(p, "--neuron.full_path", default=DEFAULT_PATH,
         help="the validator's folder (its --neuron.full_path; the demo's by default)")
    flag(p, "--watch", action="store_true", help="reprint as the validator logs steps (Ctrl-C stops)")
    flag(p, "--leaderboard.interval", type=Bounded(float, 0.2, 3600), default=2.0,
         help="seconds between reads with --watch")
    flag(p, "--html", default=None, metavar="FILE",
         help="also write a self-contained HTML report with charts (rewritten on every read with --watch)")
    p.set_defaults(func=run)
    return p


def _write_html(board: Board, path: str) -> None:
    from .leaderboard_html import render_html
    from .state import atomic_write

    atomic_write(path, render_html(board).encode("utf-8"))


def _files_signature(folder: str) -> tuple:
    """(size, mtime) of the files the board is read from: unchanged means nothing new to read."""
    out = []
    for name in ("events.jsonl.1", "events.jsonl", "state.json"):
        try:
            st = os.stat(os.path.join(expand(folder), name))
            out.append((st.st_size, st.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)


def run(args) -> int:
    flat = vars(args)
    folder = flat["neuron.full_path"]
    html = expand(flat["html"]) if flat.get("html") else None
    if html and os.path.isdir(html):
        raise UsageError(f"--html {html} is a folder; name the file to write (e.g. {html}/leaderboard.html)")
    if not flat.get("watch"):
        board = collect(folder)
        print(render_text(board), flush=True)
        if html:
            _write_html(board, html)
            print(f"HTML report: {html}", flush=True)
        return 0
    tty = sys.stdout.isatty()
    last = None
    seen_files = None
    try:
        while True:
            files = _files_signature(folder)
            if files == seen_files:              # nothing written since the last read: no re-parse
                time.sleep(flat["leaderboard.interval"])
                continue
            seen_files = files
            try:
                board = collect(folder)
                text = render_text(board)
                stamp = (board.step, board.steps_logged, board.updated)
            except UsageError as e:
                if not os.path.isdir(expand(folder)):
                    raise
                board, text, stamp = None, f"waiting for the validator's first step ({e})", None
            if stamp is None or stamp != last:
                if tty:
                    print("\x1b[2J\x1b[H", end="")
                print(text + ("" if tty else "\n"), flush=True)
                if html and board is not None:
                    _write_html(board, html)
                last = stamp
            time.sleep(flat["leaderboard.interval"])
    except KeyboardInterrupt:
        return 0
