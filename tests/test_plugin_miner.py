"""docs/writing-a-miner.md as a user follows it: `--backend module:Class`, no edit to `sn1/`.

The doc's code and commands are read from the doc and run as written (only the
fixed /tmp folders and port become this test's own)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))      # tests/doc_commands.py (pytest runs --import-mode=importlib)
import doc_commands as doc  # noqa: E402
from sn1.testing import free_port, make_wallet, run_sn1  # noqa: E402

DOC = doc.ROOT / "docs" / "writing-a-miner.md"


def _contract_example() -> str:
    code = doc.blocks(doc.section(DOC, "## The backend contract"), "python")[0]
    assert code.startswith("# my_miner.py\n")
    return code


def test_the_docs_sandbox_walkthrough_runs_as_written_with_a_plugin_miner(tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "my_miner.py").write_text(_contract_example())
    port = free_port()
    block = doc.blocks(doc.section(DOC, "## Trying it on one machine (sandbox)"), "bash")[0]
    cmds = [c.replace("/tmp/w", str(tmp_path / "w")).replace("/tmp/sb", str(tmp_path / "sb"))
             .replace("8091", str(port)) for c in doc.commands(block)]
    assert any("--backend my_miner:MyMiner" in c for c in cmds)
    env = doc.env()
    procs = []
    try:
        for i, cmd in enumerate(cmds):
            bg = doc.background(cmd)
            if bg is not None:
                log = tmp_path / f"bg{i}.log"
                procs.append(doc.start(bg, work, env, log))
                doc.wait_port(port, procs[-1], log)
                continue
            proc = doc.run(cmd, work, env)
            assert proc.returncode == 0, f"{cmd}\n{proc.stdout}\n{proc.stderr}"
        # The last command is the client: MyMiner's words came back over signed HTTP.
        assert "Hello world!" in proc.stdout.replace("\n", ""), proc.stdout
        assert "ok" in proc.stdout
    finally:
        doc.stop(procs)


@pytest.fixture
def registered(tmp_path):
    """A sandbox subnet with a validator and a miner hotkey registered: (common flags, work folder)."""
    from sn1.chain.sandbox import SandboxChain

    sandbox, wallets = tmp_path / "sb", tmp_path / "w"
    chain = SandboxChain.init(str(sandbox), 1, block_time=0.1)
    chain.register(make_wallet(wallets, "val"), stake=100)
    chain.register(make_wallet(wallets, "miner"))
    work = tmp_path / "work"
    work.mkdir()
    return ["--subtensor.network", "sandbox", "--sandbox.path", str(sandbox), "--netuid", "1",
            "--wallet.path", str(wallets)], work


def test_the_worked_example_wraps_the_embedded_model_and_answers(registered, tmp_path):
    """The doc's worked example is docs/examples/my_miner.py, and its `Run it` commands serve it."""
    common, work = registered
    part = doc.section(DOC, "## A worked example: wrapping a real engine")
    code = doc.blocks(part, "python")[0]
    assert code == (doc.ROOT / "docs" / "examples" / "my_miner.py").read_text()
    cmds = doc.commands(doc.blocks(part, "bash")[0])
    assert cmds[0] == "cp docs/examples/my_miner.py ."
    (work / "docs").symlink_to(doc.ROOT / "docs")          # the user is in the repository's folder
    env = doc.env()
    assert doc.run(cmds[0], work, env).returncode == 0 and (work / "my_miner.py").exists()
    port = free_port()
    miner = cmds[1].replace("--axon.port 8091", f"--axon.port {port} " + " ".join(common))
    log = tmp_path / "miner.log"
    procs = [doc.start(miner, work, env, log)]
    try:
        doc.wait_port(port, procs[0], log)
        client = doc.run(f"sn1 client --uids 1 --wallet_name val --hotkey default --wallet.path {tmp_path / 'w'} "
                         f"--network sandbox --sandbox.path {tmp_path / 'sb'} --netuid 1 --timeout 60 "
                         f"--message 'What is the capital of France?'", work, env)
        assert client.returncode == 0, client.stdout + client.stderr
        assert "ok" in client.stdout and len(client.stdout.strip()) > 40, client.stdout
    finally:
        doc.stop(procs)
    assert "--mine.style" in run_sn1("miner", "--backend", "my_miner:MyMiner", "--help",
                                     env={"PYTHONPATH": f"{work}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
                                     ).stdout


@pytest.mark.parametrize("backend, files, message", [
    ("nosuch_miner:Miner", {}, "no module named 'nosuch_miner'"),
    ("my_miner:Nope", {"my_miner.py": "class MyMiner: ...\n"}, "has no 'Nope'"),
    ("my_miner:MyMiner", {"my_miner.py": "class MyMiner:\n    pass\n"}, "must be a class with `async def generate"),
    ("my_miner:MyMiner", {"my_miner.py": "import numpyy\n"}, "No module named 'numpyy'"),
    ("my_miner:MyMiner", {"my_miner.py": "1/0\n"}, "ZeroDivisionError"),
    ("my-miner:X", {}, "expected a built-in name"),
    ("bogus", {}, "or module:Class"),
])
def test_a_plugin_that_cannot_load_is_one_line_naming_it(registered, backend, files, message):
    common, work = registered
    for name, text in files.items():
        (work / name).write_text(text)
    proc = doc.run(f"sn1 miner --backend {backend} {' '.join(common)} --wallet.name miner --axon.port 0",
                   work, doc.env(), timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: "), proc.stderr
    assert message in proc.stderr, proc.stderr
