"""`sn1 leaderboard --html FILE`: one self-contained HTML file (inline SVG and CSS, no script,
no network): the table, each miner's score over steps, and its mean reward per task.

Every text that came from the validator's folder (task names, hotkeys, labels) is escaped:
the folder is written from what miners send and a report is opened in a browser.
"""

from __future__ import annotations

import html
import math
import time

from .leaderboard import MAX_STEPS_CHARTED, Board, status_text

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf"]
MAX_SERIES = 20          # charts show the best this many uids (the table shows all)
E = html.escape


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _name(r) -> str:
    return f"uid {r.uid}" + (f" {r.label}" if r.label else (f" {r.hotkey[:8]}" if r.hotkey else ""))


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    return [lo + (hi - lo) * k / (n - 1) for k in range(n)]


def _step_ticks(lo: int, hi: int, n: int = 8) -> list[int]:
    every = max(1, math.ceil((hi - lo) / n))
    return list(range(lo, hi + 1, every))


def _fmt(v: float, top: float) -> str:
    digits = max(2, min(4, 1 - math.floor(math.log10(top)))) if top > 0 else 2
    return f"{v:.{digits}f}"


def scores_chart(board: Board, w: int = 760, h: int = 320) -> str:
    rows = [r for r in board.rows if r.history][:MAX_SERIES]
    left, right, top, bottom = 56, 16, 16, 40
    pw, ph = w - left - right, h - top - bottom
    points = [p for r in rows for p in r.history[-MAX_STEPS_CHARTED:]]
    parts = [f'<svg id="scores-chart" class="chart" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
             f'viewBox="0 0 {w} {h}" role="img" aria-label="score of each miner over steps">',
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>']
    if not points:
        parts.append(f'<text x="{w / 2}" y="{h / 2}" text-anchor="middle">no step logged yet</text></svg>')
        return "".join(parts)
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y1 = max(max(p[1] for p in points), 0.01) * 1.1      # all-zero scores still get a readable axis
    sx = (lambda s: left + (s - x0) / (x1 - x0) * pw) if x1 > x0 else (lambda s: left + pw / 2)
    sy = lambda v: top + ph - v / y1 * ph   # noqa: E731
    for v in _ticks(0, y1):
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(v):.1f}" y2="{sy(v):.1f}" stroke="#e4e4e4"/>'
                     f'<text x="{left - 6}" y="{sy(v) + 4:.1f}" text-anchor="end" class="tick">{_fmt(v, y1)}</text>')
    for s in _step_ticks(int(x0), int(x1)):
        parts.append(f'<text x="{sx(s):.1f}" y="{top + ph + 16}" text-anchor="middle" class="tick">{s}</text>')
    parts.append(f'<text x="{left + pw / 2}" y="{h - 6}" text-anchor="middle" class="axis">validator step</text>'
                 f'<text x="14" y="{top + ph / 2}" text-anchor="middle" class="axis" '
                 f'transform="rotate(-90 14 {top + ph / 2})">score</text>')
    for i, r in enumerate(rows):
        hist = r.history[-MAX_STEPS_CHARTED:]
        pts = " ".join(f"{sx(s):.1f},{sy(v):.1f}" for s, v in hist)
        parts.append(f'<g class="series" data-uid="{r.uid}"><title>{E(_name(r))}: score {r.score:.4f}</title>'
                     f'<polyline fill="none" stroke="{_color(i)}" stroke-width="2.5" points="{pts}"/>')
        if len(hist) <= 60:
            parts.extend(f'<circle cx="{sx(s):.1f}" cy="{sy(v):.1f}" r="3" fill="{_color(i)}"/>' for s, v in hist)
        parts.append("</g>")
    parts.append("</svg>")
    return "".join(parts)


def rewards_chart(board: Board, w: int = 760, h: int = 320) -> str:
    rows = board.rows[:MAX_SERIES]
    tasks = board.tasks
    left, right, top, bottom = 56, 16, 16, 40
    pw, ph = w - left - right, h - top - bottom
    parts = [f'<svg id="rewards-chart" class="chart" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
             f'viewBox="0 0 {w} {h}" role="img" aria-label="mean reward of each miner per task">',
             f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>']
    if not tasks or not rows:
        parts.append(f'<text x="{w / 2}" y="{h / 2}" text-anchor="middle">no step logged yet</text></svg>')
        return "".join(parts)
    # Rewards are in [0, 1]; the axis ends a little above the best mean, so small rewards show.
    best = max([r.mean(t) or 0.0 for r in rows for t in tasks] + [0.0])
    y1 = min(1.0, max(best * 1.15, 0.05))
    sy = lambda v: top + ph - v / y1 * ph   # noqa: E731
    for v in _ticks(0, y1):
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{sy(v):.1f}" y2="{sy(v):.1f}" stroke="#e4e4e4"/>'
                     f'<text x="{left - 6}" y="{sy(v) + 4:.1f}" text-anchor="end" class="tick">{_fmt(v, y1)}</text>')
    group = pw / len(tasks)
    bar = max(1.0, group * 0.8 / len(rows))
    for t, task in enumerate(tasks):
        gx = left + t * group + group * 0.1
        parts.append(f'<text x="{left + t * group + group / 2:.1f}" y="{top + ph + 16}" text-anchor="middle" '
                     f'class="tick">{E(task)}</text>')
        for i, r in enumerate(rows):
            m = r.mean(task)
            if m is None:
                continue
            m = min(max(m, 0.0), 1.0)
            parts.append(f'<rect class="bar" x="{gx + i * bar:.1f}" y="{sy(m):.1f}" width="{bar * 0.9:.1f}" '
                         f'height="{max(sy(0) - sy(m), 1.0):.1f}" fill="{_color(i)}">'
                         f'<title>{E(_name(r))}, {E(task)}: {m:.3f} over {len(r.rewards.get(task, []))} steps'
                         f'</title></rect>')
    parts.append(f'<text x="14" y="{top + ph / 2}" text-anchor="middle" class="axis" '
                 f'transform="rotate(-90 14 {top + ph / 2})">mean reward</text></svg>')
    return "".join(parts)


def legend(board: Board) -> str:
    items = "".join(f'<span class="key"><i style="background:{_color(i)}"></i>{E(_name(r))}</span>'
                    for i, r in enumerate(board.rows[:MAX_SERIES]))
    return f'<div class="legend">{items}</div>'


def table(board: Board) -> str:
    head = "".join(f"<th>{E(t)}</th>" for t in board.tasks)
    extra = "<th>incentive</th>" if board.chain else ""
    body = []
    for r in board.rows:
        cells = "".join(f"<td>{'-' if r.mean(t) is None else format(r.mean(t), '.3f')}</td>" for t in board.tasks)
        weight = r.chain_weight if board.chain else r.weight
        inc = f"<td>{r.incentive:.4f}</td>" if board.chain else ""
        body.append(f"<tr><td>{r.uid}</td><td>{E(r.label or r.hotkey[:16])}</td>{cells}<td>{r.score:.4f}</td>"
                    f"<td>{weight:.4f}</td>{inc}<td>{E(status_text(r.status))}</td></tr>")
    return (f'<table id="leaderboard"><thead><tr><th>uid</th><th>miner</th>{head}<th>score</th><th>weight</th>'
            f'{extra}<th>answers</th></tr></thead><tbody>{"".join(body)}</tbody></table>')


def render_html(board: Board) -> str:
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(board.updated))
    vuid = "" if board.validator_uid is None else f", validator uid {board.validator_uid}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>SN1 leaderboard: step {board.step}</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; }}
h1 {{ font-size: 20px; margin: 0 0 4px; }} h2 {{ font-size: 16px; margin: 24px 0 8px; }}
.meta {{ color: #666; }}
table {{ border-collapse: collapse; }} th, td {{ padding: 4px 10px; border-bottom: 1px solid #ddd; text-align: right; }}
th:nth-child(2), td:nth-child(2), td:last-child, th:last-child {{ text-align: left; }}
.tick {{ font-size: 11px; fill: #555; }} .axis {{ font-size: 12px; fill: #333; }}
.legend {{ margin: 6px 0; }} .key {{ margin-right: 14px; white-space: nowrap; }}
.key i {{ display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -1px; }}
</style></head><body>
<h1>SN1 leaderboard</h1>
<div class="meta">{E(board.folder)}: step {board.step}, {board.steps_logged} steps logged{vuid}; written {when}</div>
<h2>Miners</h2>
{table(board)}
<p class="meta">score: the validator's moving average of rewards; weight: {"set on chain by this validator; incentive: paid by consensus" if board.chain else "what these scores give when the validator sets weights"}; answers: how each miner's answers ended.</p>
<h2>Score over steps</h2>
{legend(board)}
{scores_chart(board)}
<h2>Mean reward by task</h2>
{legend(board)}
{rewards_chart(board)}
</body></html>
"""
