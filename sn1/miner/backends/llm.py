"""Miners that run a real LLM: llama.cpp (embedded SmolLM2), Hugging Face, OpenAI, vLLM.

Each is the same thin backend around an engine of ``sn1.llm``: ``generate``
streams the engine through the async bridge (``sn1.llm.aio.astream``), so
the model runs in a worker thread, the event loop keeps answering (refusals,
429s, other streams), and closing the generator - which the server does when
a stream ends for any reason - stops the generation.

The server has already added the system prompt (``--neuron.system_prompt``)
and resolved the sampling parameters (``--neuron.max_tokens``,
``--neuron.temperature``, ``--neuron.top_k``, ``--neuron.top_p`` over the
request's); the engine's own flags are ``--neuron.model_id``,
``--neuron.device``, ``--neuron.load_in_8bit/4bit``,
``--neuron.gpu_memory_utilization``, ``--neuron.base_url`` (see
``sn1.llm.add_engine_args``). ``--wandb.on`` logs every served request.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

from ... import llm
from ...config import flag, get
from ...llm.aio import astream
from ...llm.base import GenParams, LLMError
from ..grounding import grounded, last_question, load_facts

log = logging.getLogger("sn1.miner.llm")


class _EngineMiner:
    engine_name = ""
    name = ""

    @classmethod
    def add_args(cls, parser) -> None:
        llm.add_engine_args(parser, prefix="neuron", engine=cls.engine_name)
        flag(parser, "--neuron.grounding", default="offline", choices=("offline", "off"),
             help="look a date question up in the offline encyclopedia and give the model the dated "
                  "fact it asks about (sn1/miner/grounding.py); off: the model answers alone")
        flag(parser, "--wandb.on", action="store_true",
             help="log every served request (latency, prompt, completion) to Weights & Biases")
        flag(parser, "--wandb.entity", default=None, help="W&B entity (team or user)")
        flag(parser, "--wandb.project", default="sn1-miners", help="W&B project")

    def __init__(self, config, engine=None):
        self.config = config
        self.engine = engine or llm.from_config(config, prefix="neuron", engine=self.engine_name)
        self.model_name = getattr(self.engine, "model_name", self.engine_name)
        # Token logprobs (the inference task) when the engine can compute them.
        self.supports_logprobs = bool(getattr(self.engine, "logprobs", False))
        self.samplers = tuple(getattr(self.engine, "samplers", ()))   # seeded samplers it reproduces
        self.requests = RequestLog(config, self.name, self.model_name) if get(config, "wandb.on") else None
        self.facts = load_facts(get(config, "neuron.grounding", "offline"))
        log.info("%s miner ready: %s", self.name, self.model_name)

    async def generate(self, messages, params: GenParams):
        started = time.monotonic()
        pieces: list[str] | None = [] if self.requests is not None else None   # kept only to log
        status = "ok"
        stream = astream(self.engine, self._grounded(messages, params), params)
        try:
            async for piece in stream:
                if pieces is not None:
                    pieces.append(piece)
                yield piece
        except LLMError as e:
            status = f"error: {e}"     # the server logs the failure (one line)
            raise
        except (GeneratorExit, asyncio.CancelledError):
            status = "cancelled"
            raise
        finally:
            await stream.aclose()       # sets the engine's cancel event: no token after this
            if self.requests is not None:
                self.requests.log(messages, "".join(pieces), len(pieces), time.monotonic() - started, status)

    def _grounded(self, messages, params: GenParams):
        # Never with logprobs: a verified answer is checked token by token against the prompt
        # the caller sent, so the model must see exactly that prompt.
        if self.facts is None or params.logprobs is not None:
            return messages
        fact = self.facts.find(last_question(messages))    # microseconds: 160 facts, 2 kB read
        return grounded(messages, fact) if fact else messages

    async def aclose(self) -> None:
        if self.requests is not None:
            await asyncio.to_thread(self.requests.close)


class LlamaCppMiner(_EngineMiner):
    """The embedded SmolLM2-135M-Instruct through llama.cpp (or any .gguf with --neuron.model_id)."""

    engine_name = name = "llamacpp"


class HuggingFaceMiner(_EngineMiner):
    """transformers: the embedded SmolLM2 by default (CPU); --neuron.model_id HuggingFaceH4/zephyr-7b-beta on a GPU."""

    engine_name = name = "hf"


class OpenAIMiner(_EngineMiner):
    """The OpenAI API (OPENAI_API_KEY from the environment or .env) or any compatible server (--neuron.base_url)."""

    engine_name = name = "openai"


class VLLMMiner(_EngineMiner):
    """vLLM in process (optional extra, GPU; choose GPUs with CUDA_VISIBLE_DEVICES)."""

    engine_name = name = "vllm"


class RequestLog:
    """Per-request W&B logging; offline (files under the run folder) when no API key is configured.

    ``log`` never blocks the event loop or fails a request: records go to a
    bounded queue that one background thread writes to W&B.
    """

    MAX_PENDING = 1000

    def __init__(self, config, backend: str, model: str):
        import queue
        import threading

        import wandb

        online = bool(os.environ.get("WANDB_API_KEY")) or _netrc_has_wandb()
        self._run = wandb.init(
            project=get(config, "wandb.project", "sn1-miners"), entity=get(config, "wandb.entity"),
            mode=None if os.environ.get("WANDB_MODE") else ("online" if online else "offline"),
            dir=os.path.expanduser(get(config, "logging.logging_dir", "~/.sn1/logs")),
            config={"backend": backend, "model": model, "netuid": get(config, "netuid"),
                    "hotkey": get(config, "wallet.hotkey")},
            reinit="finish_previous",
        )
        self._queue: queue.Queue = queue.Queue(self.MAX_PENDING)
        self._thread = threading.Thread(target=self._write, daemon=True, name="sn1-wandb")
        self._thread.start()
        self.dropped = 0
        log.info("wandb request logging on (%s)", "online" if online else "offline")

    def log(self, messages, completion: str, n_pieces: int, latency: float, status: str) -> None:
        import queue

        record = {"latency": latency, "prompt": last_question(messages), "completion": completion,
                  "n_tokens": n_pieces, "status": status}
        try:
            self._queue.put_nowait(record)
        except queue.Full:   # wandb is behind: never slow the stream down for it
            self.dropped += 1
            if self.dropped in (1, 10, 100) or self.dropped % 1000 == 0:
                log.warning("wandb request log is behind: %d records dropped so far", self.dropped)

    def _write(self) -> None:
        while True:
            record = self._queue.get()
            if record is None:
                return
            try:
                self._run.log(record)
            except Exception:  # noqa: BLE001 - logging must never take the miner down
                log.exception("wandb log failed")

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(10)
        self._run.finish()


def _netrc_has_wandb() -> bool:
    import netrc

    try:
        return netrc.netrc().authenticators("api.wandb.ai") is not None
    except (OSError, netrc.NetrcParseError):
        return False
