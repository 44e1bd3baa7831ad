"""The LLM layer: engines that chat and stream, shared by miners, validator and tools.

    from sn1.llm import add_args, from_config, gen_params
    add_args(parser)                    # --llm.engine, --llm.model_id, --llm.max_tokens...
    config = sn1.config.parse(parser)
    engine = from_config(config)        # an Engine (sn1.llm.base)
    text = engine.chat(messages, gen_params(config))
    async for piece in sn1.llm.aio.astream(engine, messages, params): ...

Engines are imported lazily: importing this module never loads torch or llama.cpp.
"""

from __future__ import annotations

import argparse
import inspect
from types import SimpleNamespace

from ..config import SEED, Bounded, at_least, flag, fraction, get, positive
from ..errors import UsageError
from ..registry import resolve
from .base import DEFAULT_SYSTEM_PROMPT, Engine, GenParams, LLMError, Messages

__all__ = ["ENGINES", "DEFAULT_MODELS", "DEFAULT_SYSTEM_PROMPT", "Engine", "GenParams", "LLMError",
           "Messages", "add_args", "add_engine_args", "add_sampling_args", "from_config", "gen_params",
           "create"]

# name -> "module:Class"
ENGINES = {
    "llamacpp": "sn1.llm.llamacpp:LlamaCppEngine",
    "hf": "sn1.llm.hf:HFEngine",
    "openai": "sn1.llm.openai_engine:OpenAIEngine",
    "vllm": "sn1.llm.vllm_engine:VLLMEngine",
    "scripted": "sn1.llm.scripted:ScriptedEngine",
}

# What --X.model_id means when not given. None = the embedded SmolLM2-135M-Instruct
# (llamacpp reads its GGUF directly, hf de-quantises it through transformers).
DEFAULT_MODELS = {
    "llamacpp": None,
    "hf": None,
    "openai": "gpt-3.5-turbo-1106",
    "vllm": "HuggingFaceH4/zephyr-7b-beta",
    "scripted": None,
}


def add_args(parser: argparse.ArgumentParser, prefix: str = "llm", engine: str | None = None) -> None:
    """Add the LLM flags under ``--PREFIX.*``: the engine's and the sampling defaults.

    ``engine`` fixes the engine (a miner backend knows its own) and leaves out
    ``--PREFIX.engine``; otherwise the flag chooses, default ``llamacpp``.
    Flags already defined on the parser are kept as they are.
    """
    add_engine_args(parser, prefix, engine)
    add_sampling_args(parser, prefix)


def add_engine_args(parser: argparse.ArgumentParser, prefix: str = "llm", engine: str | None = None) -> None:
    """What selects and loads the model (no sampling flags)."""
    p = f"--{prefix}."
    if engine is None:
        flag(parser, p + "engine", choices=sorted(ENGINES), default="llamacpp",
             help="LLM engine: llamacpp (embedded SmolLM2 on CPU), hf (transformers), "
                  "openai (any OpenAI-compatible HTTP API), vllm (GPU), scripted (tests)")
    flag(parser, p + "model_id", default=None,
         help="model: a Hugging Face id or local folder (hf, vllm), a .gguf file (llamacpp, hf), "
              "a model name (openai); default: the embedded SmolLM2-135M-Instruct "
              "(openai: gpt-3.5-turbo-1106, vllm: HuggingFaceH4/zephyr-7b-beta)")
    flag(parser, p + "base_url", default=None,
         help="openai: base URL of an OpenAI-compatible API (vLLM server, llama.cpp server...); "
              "default https://api.openai.com/v1")
    flag(parser, p + "api_timeout", type=positive(), default=30.0,
         help="openai: seconds to wait for the API to connect or to send the next bytes of a stream")
    flag(parser, p + "device", default="cpu", help="hf: torch device (cpu, cuda, cuda:1, auto)")
    flag(parser, p + "load_in_8bit", action="store_true", help="hf: load the model in 8 bit (bitsandbytes, GPU)")
    flag(parser, p + "load_in_4bit", action="store_true", help="hf: load the model in 4 bit (bitsandbytes, GPU)")
    flag(parser, p + "gpu_memory_utilization", type=fraction(low_open=True), default=0.9,
         help="vllm: fraction of the GPU memory vLLM may take (pick GPUs with CUDA_VISIBLE_DEVICES)")
    flag(parser, p + "n_ctx", type=at_least(16), default=2048, help="llamacpp and hf: context length in tokens")
    flag(parser, p + "n_threads", type=at_least(1), default=None, help="llamacpp and hf: CPU threads per generation")
    flag(parser, p + "parallel", type=at_least(1), default=1,
         help="llamacpp and hf: model contexts, i.e. generations that may run at once (more wait their turn)")


def add_sampling_args(parser: argparse.ArgumentParser, prefix: str = "llm") -> None:
    """The default sampling parameters (spec defaults: 256 tokens, 0.7, top_k 50, top_p 0.95)."""
    p = f"--{prefix}."
    flag(parser, p + "max_tokens", type=at_least(1), default=256, help="most tokens generated per answer")
    flag(parser, p + "temperature", type=Bounded(float, 0, 2), default=0.7, help="sampling temperature (0 = greedy)")
    flag(parser, p + "top_k", type=at_least(0), default=50, help="top-k sampling (0 = off)")
    flag(parser, p + "top_p", type=fraction(low_open=True), default=0.95, help="nucleus sampling")
    flag(parser, p + "seed", type=SEED, default=None, help="sampling seed (llamacpp, openai, vllm)")


def gen_params(config: SimpleNamespace, prefix: str = "llm") -> GenParams:
    """The default GenParams from ``--PREFIX.max_tokens/temperature/top_k/top_p/seed``."""
    base = GenParams()
    return base.replace(
        max_tokens=get(config, f"{prefix}.max_tokens"),
        temperature=get(config, f"{prefix}.temperature"),
        top_k=get(config, f"{prefix}.top_k"),
        top_p=get(config, f"{prefix}.top_p"),
        seed=get(config, f"{prefix}.seed"),
    )


def engine_class(name: str):
    return resolve(ENGINES, name, "LLM engine")


def create(name: str, **options) -> Engine:
    """Build engine ``name`` from keyword options; those its constructor does not take are ignored."""
    cls = engine_class(name)
    params = inspect.signature(cls).parameters.values()
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        known = {p.name for p in params}
        options = {k: v for k, v in options.items() if k in known}
    return cls(**options)


# flag name (after the prefix) -> engine constructor argument
_OPTIONS = {
    "model_id": "model_id", "base_url": "base_url", "api_timeout": "timeout", "device": "device",
    "load_in_8bit": "load_in_8bit", "load_in_4bit": "load_in_4bit",
    "gpu_memory_utilization": "gpu_memory_utilization", "n_ctx": "n_ctx", "n_threads": "n_threads",
    "parallel": "parallel", "seed": "seed",
}


def from_config(config: SimpleNamespace, prefix: str = "llm", engine: str | None = None) -> Engine:
    """The engine that ``--PREFIX.*`` flags describe (``engine`` overrides ``--PREFIX.engine``)."""
    name = engine or get(config, f"{prefix}.engine", "llamacpp")
    options = {arg: get(config, f"{prefix}.{key}") for key, arg in _OPTIONS.items()}
    options = {k: v for k, v in options.items() if v is not None}
    if options.get("model_id") is None:
        options["model_id"] = DEFAULT_MODELS.get(name)
    if options.get("load_in_8bit") and options.get("load_in_4bit"):
        raise UsageError(f"--{prefix}.load_in_8bit and --{prefix}.load_in_4bit exclude each other")
    return create(name, **options)
