"""README "Run your own miner against the demo": its commands, run in the order shown.

The user's shell is imitated: HOME is a fresh folder (so `~/.sn1/demo` is this test's), the
working folder holds the repository's docs/, `sn1`/`btcli` are the virtual environment's. What
differs from a user's run: DEMO_STEPS=2 and DEMO_TIMEOUT=60 (fewer steps, and a deadline a busy
machine meets; `make demo` runs 10 steps of 12 s at most) and the miner's port 8095 becomes a free one.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))      # tests/doc_commands.py (pytest runs --import-mode=importlib)
import doc_commands as doc  # noqa: E402
from sn1.testing import free_port  # noqa: E402

README = doc.ROOT / "README.md"


def _wait_for(log: Path, proc, pattern: str, timeout: float) -> re.Match:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        if m := re.search(pattern, text, re.M):
            return m
        assert proc.poll() is None, f"exited with {proc.returncode} before {pattern!r}:\n{text[-4000:]}"
        time.sleep(0.5)
    raise AssertionError(f"{pattern!r} not seen after {timeout}s:\n{log.read_text(errors='replace')[-4000:]}")


@pytest.mark.slow
def test_readme_own_miner_commands_in_order(tmp_path):
    cmds = doc.commands(doc.blocks(doc.section(README, "## Run your own miner against the demo"), "bash")[0])
    assert cmds[0].startswith("sn1 demo --keep") and cmds[-1].startswith("sn1 leaderboard")
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    (work / "docs").symlink_to(doc.ROOT / "docs")
    env = doc.env(HOME=str(home), DEMO_STEPS="2", DEMO_TIMEOUT="60")
    port = free_port()
    procs, uid = [], None
    try:
        for i, cmd in enumerate(cmds):
            cmd = cmd.replace("--axon.port 8095", f"--axon.port {port}")
            bg = doc.background(cmd)
            last = i == len(cmds) - 1
            if bg is None and not last:
                proc = doc.run(cmd, work, env)
                assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr}"
                if cmd.startswith("sn1 sandbox register"):     # it prints the new uid
                    uid = int(proc.stdout.split()[-1])
                continue
            log = tmp_path / f"step{i}.log"
            procs.append(doc.start(bg or cmd, work, env, log))
            if cmd.startswith("sn1 demo"):
                _wait_for(log, procs[-1], r"keep running; Ctrl-C stops them", 900)
            elif cmd.startswith("sn1 miner"):
                doc.wait_port(port, procs[-1], log)
            elif last:
                # `--watch` prints the board as steps arrive: wait for the new miner's row, answered.
                assert uid is not None, "sandbox register printed no uid"
                m = _wait_for(log, procs[-1], rf"^\s*{uid}\s.*\b(\d+) ok\b", 420)
                assert int(m.group(1)) >= 1
        assert (home / ".sn1" / "demo" / "leaderboard.html").exists()
        # The demo printed the same commands with its own paths.
        demo_out = (tmp_path / "step0.log").read_text()
        assert "sn1 miner --backend my_miner:MyMiner" in demo_out and "chat page: http://127.0.0.1:" in demo_out
    finally:
        doc.stop(list(reversed(procs)))
    assert procs[0].returncode == 0, (tmp_path / "step0.log").read_text()[-3000:]
