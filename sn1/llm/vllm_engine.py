"""vLLM in process (optional extra: ``pip install -e '.[vllm]'``; needs a CUDA GPU).

vLLM places the model on the GPUs it can see: choose them with
``CUDA_VISIBLE_DEVICES`` (e.g. ``CUDA_VISIBLE_DEVICES=1``), as the seed README
explains; ``--neuron.gpu_memory_utilization`` caps its share of GPU memory.

One stepping thread owns the ``LLMEngine`` (it is not thread-safe) and
batches every running request in each ``step()``; callers talk to it through
an inbox. Each request has its own output queue, so answers never mix, and a
cancelled or abandoned stream aborts its request in the engine, freeing its
KV cache at the next step.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from typing import Iterator

from ..errors import UsageError
from .base import GenParams, LLMError, Messages

log = logging.getLogger(__name__)

DEFAULT_MODEL = "HuggingFaceH4/zephyr-7b-beta"
_POLL_S = 0.05


def unavailable_reason() -> str | None:
    """Why vLLM cannot run here (None when it can): the extra is missing or no GPU is visible."""
    import importlib.util

    if importlib.util.find_spec("vllm") is None:
        return "vllm is not installed (optional extra: pip install -e '.[vllm]')"
    try:
        import torch
    except ImportError:
        return "torch is not installed"
    if not torch.cuda.is_available():
        return "no CUDA GPU visible (vLLM needs one; choose it with CUDA_VISIBLE_DEVICES)"
    return None


class VLLMEngine:
    name = "vllm"

    def __init__(self, model_id: str | None = None, gpu_memory_utilization: float = 0.9,
                 max_model_len: int | None = None, seed: int | None = None, dtype: str = "auto"):
        reason = unavailable_reason()
        if reason:
            raise UsageError(f"the vllm engine cannot run: {reason}")
        if not 0 < gpu_memory_utilization <= 1:
            raise UsageError(f"--neuron.gpu_memory_utilization must be in (0, 1], got {gpu_memory_utilization}")
        import vllm

        self.model_name = model_id or DEFAULT_MODEL
        args = vllm.EngineArgs(model=self.model_name, gpu_memory_utilization=gpu_memory_utilization,
                               max_model_len=max_model_len, seed=seed, dtype=dtype)
        try:
            self._engine = vllm.LLMEngine.from_engine_args(args)
        except Exception as e:  # noqa: BLE001 - bad model id, out of memory...
            raise UsageError(f"vllm cannot load {self.model_name!r}: {str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from e
        self._tokenizer = self._engine.get_tokenizer()
        self._SamplingParams = vllm.SamplingParams
        self._inbox: queue.Queue = queue.Queue()
        self._outputs: dict[str, queue.Queue] = {}
        self._dead: str | None = None
        threading.Thread(target=self._run, daemon=True, name="sn1-vllm-step").start()
        log.info("vllm: %s loaded", self.model_name)

    # -- the stepping thread: the only one touching self._engine --------------------------------
    def _commands(self, block: bool) -> list:
        cmds = []
        try:
            cmds.append(self._inbox.get() if block else self._inbox.get_nowait())
            while True:
                cmds.append(self._inbox.get_nowait())
        except queue.Empty:
            pass
        return cmds

    def _run(self) -> None:
        engine = self._engine
        while True:
            try:
                for op, rid, *rest in self._commands(block=not engine.has_unfinished_requests()):
                    if op == "add":
                        prompt, sampling, out = rest
                        self._outputs[rid] = out
                        engine.add_request(rid, prompt, sampling)
                    else:
                        engine.abort_request([rid])
                        self._outputs.pop(rid, None)
                if not engine.has_unfinished_requests():
                    continue
                for result in engine.step():
                    out = self._outputs.get(result.request_id)
                    if out is None:
                        continue
                    out.put(("text", result.outputs[0].text, result.finished))
                    if result.finished:
                        self._outputs.pop(result.request_id, None)
            except Exception as e:  # noqa: BLE001 - tell every waiting stream, then stop
                self._dead = f"vllm engine failed: {type(e).__name__}: {str(e).strip()[:200]}"
                log.exception("vllm stepping thread died")
                for out in list(self._outputs.values()):
                    out.put(("error", self._dead, True))
                return

    # -- callers ---------------------------------------------------------------------------------
    def stream(self, messages: Messages, params: GenParams,
               cancel: threading.Event | None = None) -> Iterator[str]:
        if self._dead:
            raise LLMError(self._dead)
        cancel = cancel or threading.Event()
        try:
            prompt = self._tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        except Exception as e:  # noqa: BLE001
            raise LLMError(f"vllm: cannot format the messages: {e}") from e
        sampling = self._SamplingParams(
            max_tokens=params.max_tokens, temperature=params.temperature, top_p=params.top_p,
            top_k=params.top_k if params.top_k and params.top_k > 0 else -1,
            seed=params.seed, stop=params.stop)
        rid = uuid.uuid4().hex
        out: queue.Queue = queue.Queue()
        self._inbox.put(("add", rid, prompt, sampling, out))
        sent, finished = 0, False
        try:
            while not finished:
                latest = None
                try:
                    latest = out.get(timeout=_POLL_S)
                    while not latest[2]:        # coalesce the steps a slow reader missed
                        latest = out.get_nowait()
                except queue.Empty:
                    pass
                if cancel.is_set():
                    return
                if latest is None:
                    if self._dead:      # the stepping thread died before taking our request
                        raise LLMError(self._dead)
                    continue
                kind, text, finished = latest
                if kind == "error":
                    raise LLMError(text)
                if len(text) > sent:
                    yield text[sent:]
                    sent = len(text)
        finally:
            if not finished:
                self._inbox.put(("abort", rid))

    def chat(self, messages: Messages, params: GenParams) -> str:
        return "".join(self.stream(messages, params))
