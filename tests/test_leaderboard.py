"""`sn1 leaderboard`: a real validator's folder (sandbox chain, real test miners, the scripted LLM)
read back as a table, live with --watch, and as an HTML report opened in headless Chromium."""

from __future__ import annotations

import json
import os
import queue
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import zlib

import pytest

from sn1.testing import ROOT, free_port, make_wallet, run_sn1, stop_processes, wait_for_port
from sn1.validator import state as state_mod
from sn1.validator.events import read_events

STEPS = 6
MINERS = {"echo": ["--backend", "echo"],
          "phrase": ["--backend", "phrase", "--neuron.phrase", "Always this phrase."],
          "mock": ["--backend", "mock", "--neuron.mock_delay", "0"]}


@pytest.fixture(scope="module")
def validator(tmp_path_factory):
    """A validator folder after STEPS real steps against three miners: (folder, {uid: name}, chain)."""
    from sn1.chain.sandbox import SandboxChain

    root = tmp_path_factory.mktemp("lb")
    sandbox, wallets, folder = str(root / "sandbox"), root / "wallets", root / "validator"
    chain = SandboxChain.init(sandbox, 1, tempo=20, block_time=0.05, weights_rate_limit=1)
    chain.register(make_wallet(wallets, "val"), stake=1000)
    common = ["--subtensor.network", "sandbox", "--sandbox.path", sandbox, "--netuid", "1",
              "--wallet.path", str(wallets)]
    procs, names = [], {}
    try:
        for name, args in MINERS.items():
            uid = chain.register(make_wallet(wallets, name))
            port = free_port()
            procs.append(subprocess.Popen([sys.executable, "-m", "sn1.cli", "miner", *args, *common,
                                           "--wallet.name", name, "--axon.port", str(port)],
                                          cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            names[uid] = name
            wait_for_port(port, proc=procs[-1])
        from sn1.testing import wait_for_endpoints

        wait_for_endpoints(chain, names, 60)
        proc = subprocess.run(
            [sys.executable, "-m", "sn1.cli", "validator", *common, "--wallet.name", "val",
             "--llm.engine", "scripted", "--neuron.axon_off", "--neuron.timeout", "10",
             "--neuron.tasks", "qa", "math", "--neuron.task_p", "0.5", "0.5", "--neuron.seed", "3",
             "--neuron.full_path", str(folder), "--neuron.max_steps", str(STEPS),
             "--neuron.epoch_length", "1", "--neuron.moving_average_alpha", "0.5",
             "--neuron.decay_alpha", "0", "--wandb.off"],
            cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    finally:
        stop_processes(procs)
    return folder, names, chain


def _rows(out: str) -> dict[int, list[str]]:
    lines = out.splitlines()
    head = next(i for i, line in enumerate(lines) if line.lstrip().startswith("uid"))
    rows = {}
    for line in lines[head + 2:]:
        parts = line.split()
        if parts and parts[0].isdigit():
            rows[int(parts[0])] = parts
    return rows


def test_table_shows_each_miners_rewards_per_task_score_weight_and_answers(validator):
    folder, names, _ = validator
    proc = run_sn1("leaderboard", "--neuron.full_path", folder)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    rows = _rows(out)
    assert set(rows) == set(names), out                 # every miner, never the validator itself
    events = read_events(str(folder / "events.jsonl"))
    st = state_mod.load(str(folder))
    assert f"step {st.step}" in out and st.step == STEPS
    tasks = out.splitlines()[1].split()[2:-3]            # uid hotkey <tasks...> answers score weight
    assert tasks and set(tasks) == {e["task"] for e in events}
    weights = []
    for uid, parts in rows.items():
        score, weight = float(parts[-2]), float(parts[-1])
        assert score == pytest.approx(st.scores[uid], abs=5e-5)
        weights.append(weight)
        for i, task in enumerate(tasks):
            got = [r for e in events if e["task"] == task for u, r in zip(e["uids"], e["rewards"]) if u == uid]
            cell = parts[2 + i]
            assert cell == ("-" if not got else f"{sum(got) / len(got):.3f}"), (uid, task, out)
        assert f"{STEPS} ok" in " ".join(parts), out            # every step answered
    # The weights these scores give: the validator's own function, over every uid (itself included).
    from sn1.chain.base import Hyperparams
    from sn1.validator.weights import process_weights

    uids, expected = process_weights(st.scores, Hyperparams())
    assert weights == [pytest.approx(dict(zip(uids, expected)).get(u, 0.0), abs=5e-5) for u in rows]
    assert 0.5 < sum(weights) <= 1.0 + 1e-3
    # Sorted best first; echo repeats the question and earns nothing.
    order = list(rows)
    assert [float(rows[u][-2]) for u in order] == sorted((float(rows[u][-2]) for u in order), reverse=True)
    echo = next(u for u, n in names.items() if n == "echo")
    assert float(rows[echo][-2]) == 0.0


def test_scores_over_steps_end_at_the_saved_score(validator):
    from sn1.validator.leaderboard import collect

    folder, names, _ = validator
    board = collect(str(folder))
    st = state_mod.load(str(folder))
    for r in board.rows:
        assert [s for s, _ in r.history] == list(range(1, STEPS + 1))
        assert r.history[-1][1] == pytest.approx(st.scores[r.uid], abs=1e-9)


def test_chain_view_matches_what_the_chain_holds(validator):
    from sn1.validator.leaderboard import add_chain_view, collect, render_text

    folder, names, chain = validator
    board = add_chain_view(collect(str(folder), labels=names), chain)
    text = render_text(board)
    set_weights = chain.weights()[board.validator_uid]
    for uid, parts in _rows(text).items():
        assert float(parts[-2]) == pytest.approx(set_weights.get(uid, 0.0), abs=1e-4)
        assert parts[1] == names[uid]
    assert "incentive" in text.splitlines()[1]


def test_bad_folders_are_one_line_errors(tmp_path):
    proc = run_sn1("leaderboard", "--neuron.full_path", tmp_path / "nope")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert "no such folder" in proc.stderr and str(tmp_path / "nope") in proc.stderr
    proc = run_sn1("leaderboard", "--neuron.full_path", tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "no events.jsonl" in proc.stderr
    (tmp_path / "state.json").write_text("{not json")
    proc = run_sn1("leaderboard", "--neuron.full_path", tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "not a valid SN1 state file" in proc.stderr


def test_watch_prints_the_board_when_the_first_steps_arrive_and_stops_on_ctrl_c(validator, tmp_path):
    folder, names, _ = validator
    live = tmp_path / "live"
    live.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "sn1.cli", "leaderboard", "--neuron.full_path", str(live),
                             "--watch", "--leaderboard.interval", "0.3", "--html", str(tmp_path / "r.html")],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()

    def read_until(text: str, timeout: float = 60) -> str:
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            seen.append(line)
            if text in line:
                return "".join(seen)
        raise AssertionError(f"{text!r} never printed: {''.join(seen)}")

    try:
        read_until("waiting for the validator's first step")
        # The validator's first three steps arrive (its own files, as it writes them).
        with open(folder / "events.jsonl") as f:
            first = f.readlines()[:3]
        (live / "events.jsonl").write_text("".join(first))
        out = read_until("weight:")
        assert "step 3, 3 steps logged" in out and len(_rows(out)) == len(names)
        shutil.copy(folder / "events.jsonl", live / "events.jsonl")
        shutil.copy(folder / "state.json", live / "state.json")
        out = read_until("weight:")
        assert f"step {STEPS}, {STEPS} steps logged" in out
        assert (tmp_path / "r.html").read_text().count('class="series"') == len(names)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


# ---- the HTML report in a real browser --------------------------------------------------------

@pytest.fixture
def browser():
    from sn1.testing import headless_chromium

    b = headless_chromium(1000, 1600)
    if b is None:
        pytest.skip("chromium and chromium-driver are not installed (`make test` installs them)")
    yield b
    b.quit()


def _png_pixels(png: bytes):
    """(width, height, rows of RGB(A) bytes) of a non-interlaced 8-bit PNG (what Chromium writes)."""
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w = 8, b"", 0
    while pos < len(png):
        n, kind = struct.unpack(">I4s", png[pos:pos + 8])
        data = png[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", data[:10])
            assert depth == 8 and ctype in (2, 6)
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += data
        pos += 12 + n
    raw, stride, rows, prev = zlib.decompress(idat), w * bpp, [], bytearray(w * bpp)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def _colours_drawn(png: bytes, colours: list[str]) -> dict[str, int]:
    """How many pixels of the screenshot have each palette colour (exactly)."""
    w, h, bpp, rows = _png_pixels(png)
    want = {bytes.fromhex(c[1:]): c for c in colours}
    counts = {c: 0 for c in colours}
    for line in rows:
        for x in range(0, w * bpp, bpp):
            c = want.get(line[x:x + 3])
            if c:
                counts[c] += 1
    return counts


def test_html_report_draws_its_charts_in_a_browser_with_no_network(validator, tmp_path, browser):
    from selenium.webdriver.common.by import By

    from sn1.validator.leaderboard_html import PALETTE

    folder, names, _ = validator
    report = tmp_path / "report.html"
    proc = run_sn1("leaderboard", "--neuron.full_path", folder, "--html", report)
    assert proc.returncode == 0, proc.stderr
    assert f"HTML report: {report}" in proc.stdout
    page = report.read_text()
    # Self-contained: nothing to fetch (no script, stylesheet, image or font from anywhere).
    for needle in ("<script", "src=", "<link", "@import", "url("):
        assert needle not in page, needle
    browser.get(report.as_uri())
    assert browser.title == f"SN1 leaderboard: step {STEPS}"
    table = browser.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")
    assert len(table) == len(names)
    for chart in ("scores-chart", "rewards-chart"):
        el = browser.find_element(By.ID, chart)
        assert el.is_displayed() and el.size["width"] > 300 and el.size["height"] > 200
    # One line per miner, spanning every step, with a real extent on screen.
    boxes = browser.execute_script(
        "return [...document.querySelectorAll('#scores-chart polyline')].map(p => "
        "{const b = p.getBBox(); return [p.points.numberOfItems, b.width, b.height];})")
    assert len(boxes) == len(names) and all(n == STEPS and w > 300 for n, w, _ in boxes), boxes
    # The miners that earned something have bars of matching heights (scaled from their mean rewards).
    out = run_sn1("leaderboard", "--neuron.full_path", folder).stdout
    ntasks = len(out.splitlines()[1].split()[2:-3])
    board_rows = _rows(out)
    positive = sum(1 for parts in board_rows.values() for c in parts[2:2 + ntasks] if c != "-" and float(c) > 0.005)
    bars = browser.execute_script(
        "return [...document.querySelectorAll('#rewards-chart rect.bar')].map(r => r.getBBox().height)")
    assert positive > 0 and sum(1 for h in bars if h > 1.5) == positive, (bars, board_rows)
    # Visibly drawn: the screenshot holds the series' colours, in each chart.
    shot = tmp_path / "leaderboard.png"
    assert browser.save_screenshot(str(shot))
    print(f"screenshot: {shot}")
    for chart in ("scores-chart", "rewards-chart"):
        png = browser.find_element(By.ID, chart).screenshot_as_png
        drawn = _colours_drawn(png, PALETTE[:len(names)])
        lines_or_bars = [c for c, n in drawn.items() if n > 20]
        assert len(lines_or_bars) >= (len(names) if chart == "scores-chart" else 1), (chart, drawn)


def test_html_escapes_what_the_folder_holds(validator, tmp_path, browser):
    """Task names come from the validator's log: markup in them must stay text in the report."""
    folder, names, _ = validator
    evil = tmp_path / "evil"
    evil.mkdir()
    events = [json.loads(x) for x in (folder / "events.jsonl").read_text().splitlines()]
    events[0]["task"] = '<img src=x onerror="document.title=\'pwned\'">'
    (evil / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    shutil.copy(folder / "state.json", evil / "state.json")
    assert run_sn1("leaderboard", "--neuron.full_path", evil, "--html", evil / "r.html").returncode == 0
    browser.get((evil / "r.html").as_uri())
    from selenium.webdriver.common.by import By

    assert browser.title.startswith("SN1 leaderboard") and not browser.find_elements(By.TAG_NAME, "img")
    assert "<img src=x" in browser.find_element(By.ID, "leaderboard").text


def test_a_huge_log_is_read_from_its_newest_end_only(validator, tmp_path):
    """The events log may hold gigabytes: the board reads a bounded tail of it, newest steps kept in order."""
    from sn1.validator.leaderboard import read_recent_events

    folder, _, _ = validator
    lines = (folder / "events.jsonl").read_text().splitlines(keepends=True)
    (tmp_path / "events.jsonl.1").write_text("".join(lines[:3]))          # rotated: the older steps
    (tmp_path / "events.jsonl").write_text("{torn line\n" + "".join(lines[3:]))
    assert [e["step"] for e in read_recent_events(str(tmp_path / "events.jsonl"))] == list(range(1, STEPS + 1))
    budget = sum(len(x.encode()) for x in lines[-2:]) + 10                   # two steps and a bit
    assert [e["step"] for e in read_recent_events(str(tmp_path / "events.jsonl"), budget)] == [STEPS - 1, STEPS]
    budget = sum(len(x.encode()) for x in lines[2:]) + 12 + 5               # reaches into the rotated file
    assert [e["step"] for e in read_recent_events(str(tmp_path / "events.jsonl"), budget)] == list(range(3, STEPS + 1))
