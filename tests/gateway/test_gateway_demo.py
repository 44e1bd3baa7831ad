"""`sn1 demo` starts the gateway and prints its URL and a key; README's openai snippet streams an answer."""

from __future__ import annotations

import os
import re
import queue
import subprocess
import sys
import threading
import time

import pytest

from sn1.testing import ROOT


def readme_snippet() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Gateway"):]
    return section[section.index("```python\n") + 10:section.index("```", section.index("```python\n") + 10)]


@pytest.mark.slow
def test_demo_gateway_answers_the_readme_snippet(tmp_path):
    """The user's path: `sn1 demo --keep`, wait for the leaderboard, run the README snippet with
    the printed URL and key, then Ctrl-C."""
    import signal

    import httpx

    snippet = readme_snippet()
    assert len(snippet.strip().splitlines()) == 3
    proc = subprocess.Popen([sys.executable, "-m", "sn1.cli", "demo", "--steps", "3", "--keep",
                             "--path", str(tmp_path / "d")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    out, url, key, kept = [], None, None, False
    lines: queue.Queue = queue.Queue()
    # A thread reads the lines: select() on the pipe misses lines already in Python's buffer.
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    try:
        deadline = time.monotonic() + 420
        while not kept and time.monotonic() < deadline and proc.poll() is None:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                continue
            out.append(line)
            if m := re.search(r"gateway \(OpenAI-compatible API\): (http://\S+/v1)", line):
                url = m.group(1)
            if m := re.search(r"gateway API key: (sn1-\S+)$", line.strip()):
                key = m.group(1)
            kept = "Ctrl-C stops them" in line
        assert url and key and kept, "".join(out)
        assert "Leaderboard" in "".join(out)
        code = snippet.replace("http://127.0.0.1:PORT/v1", url).replace("sn1-…", key)
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip(), "no answer streamed"
        # The gateway read the demo validator's scores (its routing uses them).
        assert httpx.get(url[:-3] + "/health", timeout=5).json()["validator_scores"] > 0
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, "".join(out)
        time.sleep(0.5)
        while not lines.empty():
            out.append(lines.get())
        assert "Traceback" not in "".join(out), "".join(out)
    finally:
        if proc.poll() is None:
            proc.terminate()
