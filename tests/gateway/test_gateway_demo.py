"""`sn1 demo` starts the gateway and prints its URL and a key; README's openai snippet streams an answer."""

from __future__ import annotations

import os
import re
import selectors
import subprocess
import sys
import time

import pytest

from sn1.testing import ROOT


def readme_snippet() -> str:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Gateway"):]
    return section[section.index("```python\n") + 10:section.index("```", section.index("```python\n") + 10)]


@pytest.mark.slow
def test_demo_gateway_answers_the_readme_snippet(tmp_path):
    snippet = readme_snippet()
    assert len(snippet.strip().splitlines()) == 3
    proc = subprocess.Popen([sys.executable, "-m", "sn1.cli", "demo", "--steps", "3", "--path", str(tmp_path / "d")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    out, url, key = [], None, None
    try:
        sel = selectors.DefaultSelector()
        sel.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 300
        while key is None and time.monotonic() < deadline and proc.poll() is None:
            if sel.select(timeout=1):
                line = proc.stdout.readline()
                out.append(line)
                if m := re.search(r"gateway \(OpenAI-compatible API\): (http://\S+/v1)", line):
                    url = m.group(1)
                if m := re.search(r"gateway API key: (sn1-\S+)$", line.strip()):
                    key = m.group(1)
        assert url and key, "".join(out)
        code = snippet.replace("http://127.0.0.1:PORT/v1", url).replace("sn1-…", key)
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip(), "no answer streamed"
        # The gateway reads the demo validator's scores once it has some (after its first step).
        import httpx

        health = url[:-3] + "/health"
        while proc.poll() is None and httpx.get(health, timeout=5).json()["validator_scores"] == 0:
            time.sleep(0.5)
        assert proc.poll() is None, "the demo ended before the gateway saw the validator's scores"
        rest, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, "".join(out) + rest
        assert "Leaderboard" in rest
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(30)
