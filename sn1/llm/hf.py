"""Hugging Face transformers engine: a model id, a local folder, or a .gguf file.

Default (no model id): the embedded SmolLM2-135M-Instruct GGUF, which
transformers de-quantises to float32 on load (slow to load, runs on any CPU).

Each generation gets its own ``TextIteratorStreamer`` and its own stopping
criterion watching that generation's cancel event: two callers never share a
streamer (the original miner did, and answers interleaved), and a cancelled
generation stops after the token being computed. ``model.generate`` keeps its
KV cache per call, so concurrent generations share only the read-only weights.

Answers with logprobs (the inference task) are sampled with llama.cpp's own seeded chain
(``llama.cpp/dist-v1``, sn1/llm/sampler.py) in a decoding loop of our own, so a validator
replays them as it replays llama.cpp's; plain text streams use ``model.generate`` (no seed:
torch's generator is process-wide and would couple concurrent requests).

On CPU (benchmarks/miner_throughput.py --engine hf; README "Run a miner"):
- a GGUF is de-quantised once and the result kept as safetensors under
  ``~/.cache/sn1/hf`` (``$SN1_HF_CACHE``), so later starts load it directly
  instead of de-quantising again;
- weights stay float32 on CPU: the token logprobs this engine reports are
  checked against llama.cpp's (sn1.verify), and bfloat16 was not faster in
  our measurements (benchmarks/RESULTS.md);
- ``n_threads`` (``--neuron.n_threads``) sets torch's threads; by default torch
  uses one per core, which oversubscribes a shared machine.
llama.cpp (``--backend llamacpp``) stays several times faster on CPU.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Iterator

from ..errors import UsageError
from .base import GenParams, LLMError, Messages, Piece, PieceAssembler
from .sampler import SAMPLER, Mt19937Stream, draw

log = logging.getLogger(__name__)

_JOIN_S = 5.0       # how long a finished/cancelled stream waits for generate() to return


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class HFEngine:
    name = "hf"
    logprobs = True     # computed from the raw scores in a decoding loop of our own (_stream_logprobs)
    samplers = (SAMPLER,)   # that loop draws with llama.cpp's seeded chain (sn1/llm/sampler.py)

    def __init__(self, model_id: str | None = None, device: str = "cpu", load_in_8bit: bool = False,
                 load_in_4bit: bool = False, dtype: str | None = None, trust_remote_code: bool = False,
                 n_threads: int | None = None, cache_dir: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self._torch = torch
        if n_threads:
            torch.set_num_threads(int(n_threads))    # process-wide: this engine is the process's model
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
        cached = None
        self.model_name = model_id or f"{source}/{kw.get('gguf_file', '')}".rstrip("/")
        if trust_remote_code:
            kw["trust_remote_code"] = True
        model = None
        if "gguf_file" in kw and not trust_remote_code:
            cached = _dequantised_dir(source, kw["gguf_file"], kw.get("dtype"), cache_dir)
            if os.path.isfile(os.path.join(cached, "config.json")):
                plain = {k: v for k, v in kw.items() if k != "gguf_file"}
                try:
                    self.tokenizer = AutoTokenizer.from_pretrained(cached)
                    model = AutoModelForCausalLM.from_pretrained(cached, **plain)
                    log.info("hf: de-quantised weights from %s", cached)
                    cached = None
                except Exception as e:  # noqa: BLE001 - a damaged cache: de-quantise again
                    log.warning("hf: ignoring the damaged cache %s (%s)", cached, _first_line(e))
                    shutil.rmtree(cached, ignore_errors=True)
        if model is None:
            try:
                self.tokenizer = AutoTokenizer.from_pretrained(source, **{k: v for k, v in kw.items()
                                                                          if k in ("gguf_file", "trust_remote_code")})
                model = AutoModelForCausalLM.from_pretrained(source, **kw)
            except (OSError, ValueError, ImportError) as e:
                raise UsageError(f"cannot load model {model_id or source!r} with transformers: "
                                 f"{_first_line(e)}") from e
        if not quantized and device != "auto":
            model = model.to(device)
        packed = getattr(getattr(model, "hf_quantizer", None), "packed_modules", None)
        if cached is not None and not packed:        # de-quantised to plain tensors: worth keeping
            _save_dequantised(model, self.tokenizer, cached)
        self.model = model.eval()
        self.device = model.device
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        log.info("hf: %s loaded on %s", self.model_name, self.device)

    @staticmethod
    def _source(model_id: str | None) -> tuple[str, dict]:
        """(folder or model id, from_pretrained keywords)."""
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
        if params.logprobs is not None:
            yield from self._stream_logprobs(messages, params, cancel)
            return
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

    def _stream_logprobs(self, messages: Messages, params: GenParams,
                         cancel: threading.Event) -> Iterator[Piece]:
        """Token by token with the KV cache: log-softmax of the raw scores, then llama.cpp's
        sampling chain with its own ``std::mt19937`` stream seeded with ``params.seed`` (a fresh
        random seed without one): the answer a llama.cpp miner would draw from these logits."""
        from ..protocol.logprobs import TokenLogprob, TopLogprob

        torch = self._torch
        try:
            ids = self._inputs(messages)["input_ids"]
        except Exception as e:  # noqa: BLE001 - bad messages / template
            raise LLMError(f"hf: cannot format the messages: {_first_line(e)}") from e
        eos = _eos_ids(self.model, self.tokenizer)
        token_bytes = _token_bytes(self.tokenizer)
        k = int(params.logprobs or 0)
        seed = params.seed if params.seed is not None else int.from_bytes(os.urandom(4), "little")
        rng = Mt19937Stream(seed) if params.temperature and params.temperature > 0 else None
        past, step_ids = None, ids
        pieces = PieceAssembler()
        with torch.inference_mode():
            for _ in range(params.max_tokens):
                if cancel.is_set():
                    break
                out = self.model(input_ids=step_ids, use_cache=True, **cache_kw(self.model, past))
                past = cache_of(out)
                lp = torch.log_softmax(out.logits[0, -1].float().cpu(), dim=-1)
                tok = draw(lp.numpy(), rng.next() if rng is not None else None, temperature=params.temperature,
                           top_k=params.top_k, top_p=params.top_p)
                if tok in eos:
                    break
                top = torch.topk(lp, k) if k else None
                alts = () if top is None else tuple(
                    TopLogprob(token_bytes(int(i)), float(v)) for v, i in zip(top.values, top.indices))
                piece = pieces.add(TokenLogprob(token_bytes(tok), float(lp[tok]), alts))
                if piece is not None:
                    yield piece
                step_ids = torch.tensor([[tok]], device=self.device)
        rest = pieces.flush()
        if rest is not None:
            yield rest


def _dequantised_dir(folder: str, gguf: str, dtype, cache_dir: str | None) -> str:
    """Where the de-quantised weights of ``folder/gguf`` in ``dtype`` are kept (keyed by the file's
    identity: a changed GGUF gets a new folder)."""
    path = os.path.join(folder, gguf)
    st = os.stat(path)
    key = hashlib.sha256(f"{os.path.realpath(path)}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    name = f"{Path(gguf).stem}-{str(dtype or 'float32').replace('torch.', '')}-{key}"
    root = cache_dir or os.environ.get("SN1_HF_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "sn1", "hf")
    return os.path.join(root, name)


def _save_dequantised(model, tokenizer, target: str) -> None:
    """Keep the de-quantised model for the next start (atomic: a folder renamed into place).
    A failure (disk full, read-only home) costs only the next start's speed."""
    parent = os.path.dirname(target)
    tmp = None
    try:
        os.makedirs(parent, exist_ok=True)
        tmp = tempfile.mkdtemp(dir=parent, prefix=".tmp-")
        import json

        from safetensors.torch import save_model

        config = model.config.to_dict()
        config.pop("quantization_config", None)     # plain tensors now: loaded without the GGUF quantizer
        with open(os.path.join(tmp, "config.json"), "w") as f:
            json.dump(config, f)
        save_model(model, os.path.join(tmp, "model.safetensors"))    # tied weights stored once
        model.generation_config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        os.rename(tmp, target)
        tmp = None
        log.info("hf: de-quantised weights kept in %s (next start loads them directly)", target)
    except (OSError, ValueError, RuntimeError) as e:
        log.warning("hf: could not keep the de-quantised weights in %s: %s", target, e)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


def cache_kw(model, cache) -> dict:
    """The forward pass's keyword for a KV cache: ``cache`` since transformers 5.x, where
    ``past_key_values`` is deprecated; ``past_key_values`` before."""
    return {_cache_name(type(model)): cache} if cache is not None else {}


@functools.lru_cache(maxsize=None)
def _cache_name(cls) -> str:
    # Once per model class: the decode loop asks on every token.
    import inspect

    return "cache" if "cache" in inspect.signature(cls.forward).parameters else "past_key_values"


def cache_of(out):
    """The KV cache a forward pass returned (``cache`` or, before transformers 5.x, ``past_key_values``)."""
    cache = getattr(out, "cache", None)
    return cache if cache is not None else out.past_key_values


def _eos_ids(model, tokenizer) -> set[int]:
    ids = set()
    for value in (getattr(model.generation_config, "eos_token_id", None), tokenizer.eos_token_id):
        if isinstance(value, int):
            ids.add(value)
        elif value:
            ids.update(int(v) for v in value)
    return ids


def _token_bytes(tokenizer):
    """id -> the token's exact bytes (byte-level BPE tokens may hold half a character)."""
    # GPT-2's byte <-> printable-character table, which byte-level BPE vocabularies are written in.
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    chars, n = printable[:], 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + n)
            n += 1
    to_byte = {chr(c): b for b, c in zip(printable, chars)}
    cache: dict[int, bytes] = {}

    def token_bytes(i: int) -> bytes:
        if i not in cache:
            piece = tokenizer.convert_ids_to_tokens(i)
            if piece in tokenizer.all_special_tokens:
                cache[i] = piece.encode()
            elif all(ch in to_byte for ch in piece):
                cache[i] = bytes(to_byte[ch] for ch in piece)
            else:       # not byte-level (sentencepiece...): its text
                cache[i] = tokenizer.convert_tokens_to_string([piece]).encode("utf-8")
        return cache[i]
    return token_bytes
