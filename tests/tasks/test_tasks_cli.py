"""`sn1 tasks sample` as a user runs it (subprocess), with no network."""

from __future__ import annotations

import json
import socket

import pytest

from sn1.tasks import NAMES
from sn1.testing import run_sn1

KEYS = {"task", "persona", "context", "query", "challenge", "reference"}
# Any attempt to reach the internet goes to a dead proxy and fails.
NO_NET = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
          "ALL_PROXY": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "1", "NO_PROXY": ""}


@pytest.mark.parametrize("task", NAMES)
def test_json_sample_with_the_scripted_engine(task):
    proc = run_sn1("tasks", "sample", "--task", task, "--n", "3", "--seed", "5", "--json",
                   "--llm.engine", "scripted", env=NO_NET, check=True)
    samples = json.loads(proc.stdout)
    assert isinstance(samples, list) and len(samples) == 3
    for s in samples:
        assert set(s) == KEYS
        assert s["task"] == task
        assert set(s["persona"]) == {"profile", "mood", "tone"}
        assert {"title", "topic", "subtopic", "content", "tags", "source", "extra", "stats"} <= set(s["context"])
        assert s["query"] and s["challenge"] and s["reference"]
    assert len({s["challenge"] for s in samples}) == 3


def test_same_seed_same_output():
    def sample(seed: int) -> list[dict]:
        out = json.loads(run_sn1("tasks", "sample", "--task", "qa", "--n", "2", "--seed", seed, "--json",
                                 "--llm.engine", "scripted", env=NO_NET, check=True).stdout)
        for s in out:
            s["context"]["stats"].pop("fetch_time")
        return out

    a, b, c = sample(9), sample(9), sample(10)
    assert a == b
    assert [s["query"] for s in c] != [s["query"] for s in a]


def test_text_output_names_every_part():
    proc = run_sn1("tasks", "sample", "--task", "debugging", "--n", "2", "--seed", "1",
                   "--llm.engine", "scripted", env=NO_NET, check=True)
    out = proc.stdout
    assert out.count("=== ") == 2 and "=== 1/2 debugging ===" in out
    for label in ("persona:", "context:", "query:", "challenge:", "reference:"):
        assert out.count(label) == 2
    assert "```python" in out or "```c" in out


@pytest.mark.parametrize("args,message", [
    (("--n", "0"), "--n: must be in [1, 1000], got 0"),
    (("--task", "poetry"), "invalid choice: 'poetry'"),
    (("--llm.engine", "nope"), "invalid choice: 'nope'"),
    (("--seed", "x"), "--seed: expected an integer in [0, 4294967295], got 'x'"),
])
def test_bad_input_exits_2_with_one_line(args, message):
    proc = run_sn1("tasks", "sample", "--llm.engine", "scripted", *args, env=NO_NET)
    assert proc.returncode == 2
    assert proc.stdout == ""
    [line] = proc.stderr.splitlines()          # one line: no usage block, no traceback
    assert line.startswith("error: ") and message in line


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]      # nothing listens there once closed


@pytest.mark.parametrize("task", ["math", "qa"])
def test_an_engine_failure_is_one_error_line_and_exit_1(task):
    # math: the engine first fails writing the challenge; qa: writing the question.
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    proc = run_sn1("tasks", "sample", "--task", task, "--seed", "1", "--llm.engine", "openai",
                   "--llm.base_url", url, env=NO_NET, timeout=120)
    assert proc.returncode == 1
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    what = "challenge" if task == "math" else "question"
    assert errors[0].startswith(f"error: could not build a {task} task: LLM failed writing the {what}: openai:")
    assert "cannot reach" in errors[0]


def test_live_flag_without_network_falls_back_to_offline():
    proc = run_sn1("tasks", "sample", "--task", "qa", "--n", "1", "--seed", "1", "--json",
                   "--llm.engine", "scripted", "--neuron.live_data", "--data.timeout", "2",
                   "--data.wikipedia_api", "http://127.0.0.1:9/w/api.php", env=NO_NET, check=True)
    [s] = json.loads(proc.stdout)
    assert s["context"]["stats"]["fallback"] and s["context"]["source"].startswith("wikipedia (offline")
    assert "live material unavailable" in proc.stderr


@pytest.mark.slow
def test_json_sample_with_the_embedded_model_by_default():
    proc = run_sn1("tasks", "sample", "--task", "qa", "--n", "1", "--seed", "3", "--json",
                   "--llm.max_tokens", "24", "--llm.n_threads", "2", env=NO_NET, check=True, timeout=600)
    [s] = json.loads(proc.stdout)
    assert set(s) == KEYS and s["task"] == "qa"
    assert s["query"].endswith("?") and s["reference"] and s["challenge"]
    assert "llamacpp" in proc.stderr     # the default engine was the embedded model
