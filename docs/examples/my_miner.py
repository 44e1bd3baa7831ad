# my_miner.py - a miner of your own: the embedded SmolLM2 (llama.cpp) with your own prompt.
# Run it from the folder that holds this file:  sn1 miner --backend my_miner:MyMiner ...
from contextlib import aclosing

from sn1 import llm
from sn1.config import flag
from sn1.llm.aio import astream


class MyMiner:
    name = "my-smollm2"                     # shown as the answer's "model"

    @classmethod
    def add_args(cls, parser):
        # The engine's flags (--neuron.model_id: another .gguf, --neuron.n_threads...) and one of yours.
        llm.add_engine_args(parser, prefix="neuron", engine="llamacpp")
        flag(parser, "--mine.style", default="Answer in two or three plain sentences, facts first.",
             help="what MyMiner adds to every system prompt")

    def __init__(self, config):
        # Runs before the miner publishes its address: load models here.
        self.engine = llm.from_config(config, prefix="neuron", engine="llamacpp")
        self.style = config.mine.style
        self.supports_logprobs = self.engine.logprobs   # the validator's `inference` task

    async def generate(self, messages, params):
        if params.logprobs is None:         # answers with logprobs are checked against the exact prompt
            messages = [{**m, "content": m["content"] + "\n" + self.style} if m["role"] == "system" else m
                        for m in messages]
        # astream runs the engine in a thread; aclosing stops it when the caller goes away.
        async with aclosing(astream(self.engine, messages, params)) as pieces:
            async for piece in pieces:
                yield piece
