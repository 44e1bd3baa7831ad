"""Miner backends: what a miner says. The framework (sn1.miner.server) does the rest.

A backend is a class with
    name: str
    add_args(parser)            (classmethod, optional) its own flags
    __init__(config)            config is the nested namespace of sn1.config
    async generate(messages, params) -> async iterator of text pieces
    async aclose()              (optional) free resources
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

# Usable (tests pass `--backend cheat`) but not offered to users: not in --help, usage or errors.
HIDDEN = frozenset({"cheat"})


class BackendChoices(list):
    """``choices=`` for ``--backend``: lists the public backends, accepts every registered one."""

    def __init__(self, table: dict[str, str] = BACKENDS):
        super().__init__(n for n in table if n not in HIDDEN)
        self._all = table

    def __contains__(self, name) -> bool:
        return name in self._all


def load_backend(name: str):
    from ...registry import resolve

    return resolve(BACKENDS, name, "miner backend")
