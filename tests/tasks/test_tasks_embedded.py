"""Every task built once with the embedded model (SmolLM2-135M on CPU), small token limits."""

from __future__ import annotations

import json
import random

import pytest

from sn1.llm.base import GenParams
from sn1.rewards import check_specs
from sn1.tasks import NAMES, build_task

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def engine():
    from sn1.llm import create
    return create("llamacpp", model_id=None, n_threads=2)


@pytest.mark.parametrize("name", NAMES)
def test_task_with_the_embedded_model(engine, name):
    task = build_task(name, engine, random.Random(1), params=GenParams(max_tokens=24), challenge_tries=2)
    assert task.query.strip() and task.reference.strip() and task.challenge.strip()
    check_specs(task.rewards, task.penalties)
    json.dumps(task.to_event())
    assert task.challenge_tries in (1, 2)
    if task.challenge_fallback:      # the tiny model often forgets it plays the human: a template
        assert len(task.challenge_rejections) >= 2
        assert " ".join(task.challenge.split()).lower() != " ".join(task.query.split()).lower()
        assert not task.challenge.startswith(task.query)
    if name != "debugging":
        assert task.reference not in task.challenge
    if name == "qa":
        assert task.query.endswith("?")
    if name == "debugging":
        assert task.query in task.challenge and task.reference == task.context.content
