"""--llm.* / --neuron.* flags -> engines."""

from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from sn1.config import nest
from sn1.errors import UsageError
from sn1.llm import add_args, from_config, gen_params
from sn1.llm.base import GenParams


def parse(argv, prefix="llm", engine=None):
    p = argparse.ArgumentParser()
    add_args(p, prefix=prefix, engine=engine)
    return nest(p.parse_args(argv))


def test_defaults_are_the_seed_ones():
    cfg = parse([])
    assert cfg.llm.engine == "llamacpp"
    assert gen_params(cfg) == GenParams(max_tokens=256, temperature=0.7, top_k=50, top_p=0.95)


def test_flags_override_params():
    cfg = parse(["--neuron.max_tokens", "12", "--neuron.temperature", "0", "--neuron.seed", "3"],
                prefix="neuron", engine="hf")
    assert not hasattr(cfg.neuron, "engine")
    assert gen_params(cfg, "neuron") == GenParams(max_tokens=12, temperature=0.0, top_k=50, top_p=0.95, seed=3)


def test_from_config_builds_the_embedded_llamacpp_engine():
    engine = from_config(parse(["--llm.max_tokens", "5"]))
    assert engine.name == "llamacpp" and engine.model_name == "SmolLM2-135M-Instruct.Q4_1"
    assert engine.chat([{"role": "user", "content": "Hi"}], GenParams(max_tokens=3))


def test_from_config_passes_openai_options(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    engine = from_config(parse(["--llm.engine", "openai", "--llm.base_url", "http://127.0.0.1:9/v1",
                                "--llm.api_timeout", "3"]))
    assert engine.name == "openai" and engine.model_name == "gpt-3.5-turbo-1106"
    assert engine.client.timeout.read == 3


def test_bad_engine_options_are_usage_errors():
    with pytest.raises(UsageError, match="exclude each other"):
        from_config(parse(["--llm.engine", "hf", "--llm.load_in_8bit", "--llm.load_in_4bit"]))
    with pytest.raises(SystemExit):
        parse(["--llm.engine", "gpt5"])


def test_importing_the_llm_layer_loads_nothing_heavy():
    code = ("import sys, argparse, sn1.llm, sn1.llm.aio; sn1.llm.add_args(argparse.ArgumentParser());"
            "print(sorted(m for m in ('torch', 'transformers', 'llama_cpp', 'openai', 'vllm') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_scripted_engine_is_selectable_for_tests():
    engine = from_config(parse(["--llm.engine", "scripted"]))
    assert engine.name == "scripted"
    assert engine.chat([{"role": "user", "content": "Hello there."}], GenParams(max_tokens=5))
