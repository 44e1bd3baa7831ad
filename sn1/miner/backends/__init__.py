"""Miner backends: what a miner says. The framework (sn1.miner.server) does the rest.

A backend is a class with
    name: str
    add_args(parser)            (classmethod, optional) its own flags
    __init__(config)            config is the nested namespace of sn1.config
    async generate(messages, params) -> async iterator of text pieces
    async aclose()              (optional) free resources
Built-in backends are named in BACKENDS; any other importable class is chosen with
``--backend module:Class`` (docs/writing-a-miner.md), with no edit here.
Each yielded piece counts as one token for batching (--neuron.streaming_batch_size).
    supports_logprobs: bool     (optional) when True and a request asks for logprobs
                                (params.logprobs), pieces are sn1.llm.base.Piece: text
                                carrying its tokens' logprobs (they count as len(logprobs)
                                tokens); without it such requests get a 400.
"""

from __future__ import annotations

# name -> "module:Class"; imported lazily so `sn1 miner --backend echo` never loads torch.
BACKENDS = {
    "echo": "sn1.miner.backends.test:EchoMiner",
    "phrase": "sn1.miner.backends.test:PhraseMiner",
    "mock": "sn1.miner.backends.test:MockMiner",
    "llamacpp": "sn1.miner.backends.llm:LlamaCppMiner",
    "hf": "sn1.miner.backends.llm:HuggingFaceMiner",
    "openai": "sn1.miner.backends.llm:OpenAIMiner",
    "vllm": "sn1.miner.backends.llm:VLLMMiner",
    "cheat": "sn1.miner.backends.cheat:CheatMiner",   # fakes the inference task (tests)
}


def is_plugin(name: str | None) -> bool:
    """``module:Class`` (a miner of your own), as opposed to a built-in backend's name."""
    return bool(name) and ":" in name


def load_backend(name: str):
    """The backend class: a built-in name, or any importable ``module:Class`` (the current
    folder is importable, so ``--backend my_miner:MyMiner`` finds ./my_miner.py)."""
    from ...registry import resolve

    if is_plugin(name):
        return load_plugin(name)
    return resolve(BACKENDS, name, "miner backend")


def load_plugin(target: str):
    """Import ``module:Class`` for ``--backend``; UsageError (one line) naming what is wrong."""
    import importlib
    import os
    import sys

    from ...errors import UsageError, one_line

    module, _, attr = target.partition(":")
    if not module or not attr or not all(p.isidentifier() for p in module.split(".") + attr.split(".")):
        raise UsageError(f"--backend {target!r}: expected a built-in name ({', '.join(public_backends())}) "
                         f"or module:Class, e.g. my_miner:MyMiner for class MyMiner in ./my_miner.py")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and (module == e.name or module.startswith(e.name + ".")):
            raise UsageError(f"--backend {target}: no module named {module!r} in {cwd} or on PYTHONPATH "
                             f"(run from the folder that holds {module.split('.')[0]}.py, or add its "
                             f"folder to PYTHONPATH)") from None
        raise UsageError(f"--backend {target}: importing {module} failed: {one_line(e)}") from None
    except Exception as e:  # noqa: BLE001 - the user's module: say what broke, in one line
        raise UsageError(f"--backend {target}: importing {module} failed: "
                         f"{type(e).__name__}: {one_line(e, 300)}") from None
    obj = mod
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise UsageError(f"--backend {target}: module {module} ({getattr(mod, '__file__', '?')}) "
                             f"has no {attr!r}") from None
    gen = getattr(obj, "generate", None)
    if not isinstance(obj, type) or not callable(gen):
        raise UsageError(f"--backend {target}: {attr} must be a class with `async def generate(self, "
                         f"messages, params)` that yields text (docs/writing-a-miner.md)")
    return obj


def public_backends() -> list[str]:
    """The built-in names a user chooses from (``cheat`` exists for tests only)."""
    return [n for n in BACKENDS if n != "cheat"]
