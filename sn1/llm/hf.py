"""Hugging Face transformers engine: a model id, a local folder, or a .gguf file.

Default (no model id): the embedded SmolLM2-135M-Instruct GGUF, which
transformers de-quantises to float32 on load (slow to load, runs on any CPU).

Each generation gets its own ``TextIteratorStreamer`` and its own stopping
criterion watching that generation's cancel event: two callers never share a
streamer (the original miner did, and answers interleaved), and a cancelled
generation stops after the token being computed. ``model.generate`` keeps its
KV cache per call, so concurrent generations share only the read-only weights.

Seeds are not honoured here: torch's generator is process-wide and would
couple concurrent requests.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from pathlib import Path
from typing import Iterator

from ..errors import UsageError
from .base import GenParams, LLMError, Messages

log = logging.getLogger(__name__)

_JOIN_S = 5.0       # how long a finished/cancelled stream waits for generate() to return


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class HFEngine:
    name = "hf"

    def __init__(self, model_id: str | None = None, device: str = "cpu", load_in_8bit: bool = False,
                 load_in_4bit: bool = False, dtype: str | None = None, trust_remote_code: bool = False):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self._torch = torch
        source, kw = self._source(model_id)
        quantized = load_in_8bit or load_in_4bit
        if quantized:
            if load_in_8bit and load_in_4bit:
                raise UsageError("--neuron.load_in_8bit and --neuron.load_in_4bit exclude each other")
            if "gguf_file" in kw:
                raise UsageError("8/4-bit loading applies to Hugging Face checkpoints, not to a GGUF "
                                 "file: pass --neuron.model_id (e.g. HuggingFaceH4/zephyr-7b-beta)")
            if importlib.util.find_spec("bitsandbytes") is None:
                raise UsageError("--neuron.load_in_8bit/--neuron.load_in_4bit need the bitsandbytes "
                                 "package and a CUDA GPU: pip install bitsandbytes")
            from transformers import BitsAndBytesConfig
            kw["quantization_config"] = BitsAndBytesConfig(load_in_8bit=load_in_8bit, load_in_4bit=load_in_4bit)
            kw["device_map"] = "auto" if device in ("cpu", "auto") else device
        else:
            device = self._check_device(device)
            if device == "auto":
                kw["device_map"] = "auto"
        if dtype:
            kw["dtype"] = getattr(torch, dtype)
        elif device.startswith("cuda") or quantized:
            kw["dtype"] = torch.float16
        if trust_remote_code:
            kw["trust_remote_code"] = True

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source, **{k: v for k, v in kw.items()
                                                                      if k in ("gguf_file", "trust_remote_code")})
            model = AutoModelForCausalLM.from_pretrained(source, **kw)
        except (OSError, ValueError, ImportError) as e:
            raise UsageError(f"cannot load model {model_id or source!r} with transformers: {_first_line(e)}") from e
        if not quantized and device != "auto":
            model = model.to(device)
        self.model = model.eval()
        self.device = model.device
        self.model_name = model_id or f"{source}/{kw.get('gguf_file', '')}".rstrip("/")
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        log.info("hf: %s loaded on %s", self.model_name, self.device)

    @staticmethod
    def _source(model_id: str | None) -> tuple[str, dict]:
        if not model_id:
            from .embedded import embedded_gguf
            path = embedded_gguf()
            return str(path.parent), {"gguf_file": path.name}
        path = Path(os.path.expanduser(model_id))
        if path.suffix == ".gguf":
            if not path.is_file():
                raise UsageError(f"GGUF file not found: {path}")
            return str(path.parent), {"gguf_file": path.name}
        return (str(path) if path.exists() else model_id), {}

    def _check_device(self, device: str) -> str:
        device = device or "cpu"
        if device.startswith("cuda") and not self._torch.cuda.is_available():
            raise UsageError(f"--neuron.device {device}: torch sees no CUDA GPU (use --neuron.device cpu)")
        return device

    def _inputs(self, messages: Messages):
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            ids = tok.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                          return_dict=True)
        else:   # ChatML, the format SmolLM2 and many chat models use
            text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
            ids = tok(text + "<|im_start|>assistant\n", return_tensors="pt")
        return {k: v.to(self.device) for k, v in ids.items()}

    def stream(self, messages: Messages, params: GenParams,
               cancel: threading.Event | None = None) -> Iterator[str]:
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        cancel = cancel or threading.Event()
        stop = threading.Event()    # set when our reader goes away, even if `cancel` is not

        class _Cancelled(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                return cancel.is_set() or stop.is_set()

        try:
            inputs = self._inputs(messages)
        except Exception as e:  # noqa: BLE001 - bad messages / template
            raise LLMError(f"hf: cannot format the messages: {_first_line(e)}") from e
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        kw = dict(inputs, streamer=streamer, max_new_tokens=params.max_tokens,
                  stopping_criteria=StoppingCriteriaList([_Cancelled()]),
                  pad_token_id=self.tokenizer.pad_token_id)
        if params.temperature and params.temperature > 0:
            kw.update(do_sample=True, temperature=params.temperature, top_k=params.top_k, top_p=params.top_p)
        else:
            kw.update(do_sample=False, temperature=None, top_k=None, top_p=None)
        if params.stop:
            kw.update(stop_strings=params.stop, tokenizer=self.tokenizer)

        failure: list[BaseException] = []

        def run() -> None:
            try:
                with self._torch.inference_mode():
                    self.model.generate(**kw)
            except BaseException as e:  # noqa: BLE001 - reported by the reader
                failure.append(e)
                streamer.text_queue.put(streamer.stop_signal)   # unblock the reader

        worker = threading.Thread(target=run, daemon=True, name="sn1-hf-generate")
        worker.start()
        try:
            for text in streamer:
                if cancel.is_set():
                    break
                if text:
                    yield text
        finally:
            stop.set()
            worker.join(_JOIN_S)
        if failure:
            raise LLMError(f"hf: generation failed: {_first_line(failure[0])}") from failure[0]

    def chat(self, messages: Messages, params: GenParams) -> str:
        return "".join(self.stream(messages, params))
