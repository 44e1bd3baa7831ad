"""Grounding material for the validator's tasks, behind one interface.

    ds = make_datasets(live=False)          # {"wiki", "wiki_dates", "math", "code"}
    ctx = ds["wiki"].sample(random.Random(7))   # -> Context; same seed, same context

Offline sources install with the package (Wikipedia summaries, mathgenerator,
the Python standard library). ``live=True`` (``--neuron.live_data``) reads live
Wikipedia (and a Hugging Face code dataset when the optional ``datasets``
package is installed), falling back to offline material with a warning when
the network fails.
"""

from __future__ import annotations

import argparse
import functools
import threading

from ..config import flag, get, positive
from .base import Context, Dataset, DatasetError, SourceError, WithFallback

__all__ = ["Context", "Dataset", "DatasetError", "SourceError", "WithFallback", "NAMES",
           "make_datasets", "default_datasets", "add_args", "from_config"]

NAMES = ("wiki", "wiki_dates", "math", "code")
DEFAULT_WIKIPEDIA_API = "https://en.wikipedia.org/w/api.php"
DEFAULT_HF_CODE = "codeparrot/github-code"


def make_datasets(live: bool = False, *, wikipedia_api: str = DEFAULT_WIKIPEDIA_API,
                  timeout: float = 5.0, deadline: float = 10.0, cache_dir: str | None = None,
                  cooldown: float = 60.0, hf_code_dataset: str = DEFAULT_HF_CODE,
                  cache_max_mb: float = 256.0) -> dict[str, Dataset]:
    """name -> Dataset. Live sources are wrapped so a network failure falls back to offline."""
    from .code import HuggingFaceCode, OfflineCode
    from .maths import MathProblems
    from .wiki_offline import OfflineDates, OfflineEncyclopedia

    out: dict[str, Dataset] = {"wiki": OfflineEncyclopedia(), "wiki_dates": OfflineDates(),
                               "math": MathProblems(), "code": OfflineCode()}
    if live:
        from .wikipedia import LiveDates, LiveEncyclopedia, MediaWiki

        client = MediaWiki(wikipedia_api, timeout=timeout, cache_dir=cache_dir,
                           disk_cache_bytes=int(cache_max_mb * 1024 * 1024))
        out["wiki"] = WithFallback(LiveEncyclopedia(client, deadline=deadline), out["wiki"], cooldown)
        out["wiki_dates"] = WithFallback(LiveDates(client, deadline=deadline), out["wiki_dates"], cooldown)
        out["code"] = WithFallback(HuggingFaceCode(hf_code_dataset, deadline=max(deadline, 30.0)),
                                   out["code"], cooldown)
    return out


_default_lock = threading.Lock()


@functools.lru_cache(maxsize=2)
def _default(live: bool) -> dict[str, Dataset]:
    return make_datasets(live)


def default_datasets(live: bool = False) -> dict[str, Dataset]:
    """Shared datasets with default settings (one set per process)."""
    with _default_lock:
        return _default(bool(live))


def add_args(parser: argparse.ArgumentParser) -> None:
    flag(parser, "--neuron.live_data", action="store_true",
         help="ground tasks in live Wikipedia (and HF code with sn1[live]); offline material if the network fails")
    flag(parser, "--data.wikipedia_api", default=DEFAULT_WIKIPEDIA_API, help="MediaWiki API URL")
    flag(parser, "--data.timeout", type=positive(), default=5.0, help="seconds per live request")
    flag(parser, "--data.deadline", type=positive(), default=10.0, help="seconds to fetch one live sample")
    flag(parser, "--data.cache_dir", default=None, help="folder caching live pages on disk (memory only if unset)")
    flag(parser, "--data.cache_max_mb", type=positive(), default=256.0,
         help="size cap of --data.cache_dir in MiB; least recently used pages are evicted")
    flag(parser, "--data.hf_code_dataset", default=DEFAULT_HF_CODE, help="Hugging Face code dataset (live)")


def from_config(config) -> dict[str, Dataset]:
    live = bool(get(config, "neuron.live_data", False))
    if not live:
        return default_datasets(False)
    return make_datasets(
        True,
        wikipedia_api=get(config, "data.wikipedia_api", DEFAULT_WIKIPEDIA_API),
        timeout=float(get(config, "data.timeout", 5.0)),
        deadline=float(get(config, "data.deadline", 10.0)),
        cache_dir=get(config, "data.cache_dir"),
        cache_max_mb=float(get(config, "data.cache_max_mb", 256.0)),
        hf_code_dataset=get(config, "data.hf_code_dataset", DEFAULT_HF_CODE),
    )
