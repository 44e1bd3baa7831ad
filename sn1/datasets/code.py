"""Real source code of 5-100 lines.

Offline: functions and classes of the Python standard library (cut with ``ast``)
and paragraphs of CPython's C headers, both present wherever Python is.
Live (optional extra ``sn1[live]``): rows of a Hugging Face code dataset via
``datasets`` streaming; without that package the live source reports a
``SourceError`` and the offline code is used.
"""

from __future__ import annotations

import ast
import concurrent.futures
import functools
import os
import random
import sysconfig
import textwrap
from pathlib import Path

from .base import Context, Dataset, SourceError

MIN_LINES, MAX_LINES = 5, 100
MAX_FILE_BYTES = 1_000_000
_SKIP_DIRS = {"site-packages", "dist-packages", "test", "tests", "__pycache__", "idle_test",
              "lib2to3", "ensurepip", "turtledemo", "config-3"}


@functools.lru_cache(maxsize=8)
def source_files(root: str, suffix: str) -> tuple[str, ...]:
    """Sorted relative paths (so a seed picks the same file on any machine with that tree)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS and not d.startswith(("config-", "."))]
        for f in filenames:
            if f.endswith(suffix):
                out.append(os.path.relpath(os.path.join(dirpath, f), root))
    return tuple(sorted(out))


def _read(path: Path) -> str | None:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            return None
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def python_blocks(text: str) -> list[tuple[str, int, int]]:
    """(name, first line, last line) of every function/class of 5-100 lines, decorators included."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError):
        return []
    out = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            if MIN_LINES <= node.end_lineno - start + 1 <= MAX_LINES:
                out.append((node.name, start, node.end_lineno))
    return out


def _c_code_lines(lines: list[str]) -> int:
    """Lines holding C code outside comments and preprocessor directives."""
    count, in_comment = 0, False
    for line in lines:
        code, rest = "", line
        while rest:
            if in_comment:
                end = rest.find("*/")
                if end < 0:
                    break
                rest, in_comment = rest[end + 2:], False
            else:
                start = rest.find("/*")
                code += rest if start < 0 else rest[:start]
                if start < 0:
                    break
                rest, in_comment = rest[start + 2:], True
        code = code.split("//", 1)[0].strip()
        count += bool(code) and not code.startswith("#")
    return count


def paragraph_block(lines: list[str], rng: random.Random) -> tuple[int, int] | None:
    """Consecutive blank-line-separated paragraphs from a random one, 5-100 lines (1-based).

    The block must not start inside a /* comment */ and must be mostly code.
    """
    text_before, starts = 0, []
    for i, line in enumerate(lines):
        if line.strip() and (i == 0 or not lines[i - 1].strip()) and text_before <= 0:
            starts.append(i)
        text_before += line.count("/*") - line.count("*/")
    if not starts:
        return None
    i = end = rng.choice(starts)
    while end < len(lines) and (end - i < MIN_LINES or lines[end].strip()):
        end += 1
        if end - i > MAX_LINES:
            return None
    if end - i < MIN_LINES:
        return None
    while end > i and not lines[end - 1].strip():
        end -= 1
    if end - i < MIN_LINES or 2 * _c_code_lines(lines[i:end]) < end - i:
        return None
    return i + 1, end


class OfflineCode(Dataset):
    """Python functions/classes from the standard library and C from CPython's headers."""

    name = "code"
    max_tries = 20

    def __init__(self, languages: tuple[str, ...] = ("python", "c")):
        paths = sysconfig.get_paths()
        roots = {"python": (paths["stdlib"], ".py", "python standard library"),
                 "c": (paths.get("include") or "", ".h", "cpython headers")}
        self.roots = {lang: roots[lang] for lang in languages if roots[lang][0] and os.path.isdir(roots[lang][0])}
        if not self.roots:
            raise SourceError(f"no installed source code found for {', '.join(languages)}")

    def draw(self, rng: random.Random) -> Context | None:
        lang = rng.choice(sorted(self.roots))
        root, suffix, source = self.roots[lang]
        files = source_files(root, suffix)
        if not files:
            return None
        rel = rng.choice(files)
        text = _read(Path(root) / rel)
        if not text:
            return None
        lines = text.splitlines()
        if lang == "python":
            blocks = python_blocks(text)
            if not blocks:
                return None
            name, first, last = rng.choice(sorted(blocks, key=lambda b: (b[1], b[2])))
        else:
            span = paragraph_block(lines, rng)
            if span is None:
                return None
            (first, last), name = span, Path(rel).name
        code = textwrap.dedent("\n".join(lines[first - 1:last])).rstrip()
        n = len(code.splitlines())
        if not MIN_LINES <= n <= MAX_LINES or len(code.split()) < 10:
            return None
        return Context(
            title=rel.replace(os.sep, "/"), topic=lang, subtopic=name, content=code,
            tags=[lang], source=source,
            extra={"language": lang, "path": rel.replace(os.sep, "/"), "first_line": first,
                   "last_line": last, "lines": n},
        )


class HuggingFaceCode(Dataset):
    """Rows of a Hugging Face code dataset (needs the optional ``datasets`` package and the network)."""

    name = "code"
    max_tries = 20

    def __init__(self, path: str = "codeparrot/github-code", languages: tuple[str, ...] = ("Python",),
                 deadline: float = 30.0):
        self.path, self.languages, self.deadline = path, list(languages), deadline
        self._rows = None
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="hf-code")

    def _next_row(self, seed: int) -> dict:
        if self._rows is None:
            try:
                import datasets   # optional extra: pip install 'sn1[live]'
            except ImportError:
                raise SourceError("the optional 'datasets' package is not installed "
                                  "(pip install 'sn1[live]')") from None
            ds = datasets.load_dataset(self.path, split="train", streaming=True,
                                       languages=self.languages)
            self._rows = iter(ds.shuffle(seed=seed, buffer_size=1000))
        return next(self._rows)

    def draw(self, rng: random.Random) -> Context | None:
        future = self._pool.submit(self._next_row, rng.randrange(2**32))
        try:
            row = future.result(timeout=self.deadline)
        except concurrent.futures.TimeoutError:
            raise SourceError(f"huggingface: no row within {self.deadline}s") from None
        except SourceError:
            raise
        except Exception as e:   # network, hub or dataset errors
            raise SourceError(f"huggingface: {type(e).__name__}: {e}") from None
        code = (row.get("code") or row.get("content") or "").rstrip()
        n = len(code.splitlines())
        if not MIN_LINES <= n <= MAX_LINES:
            return None
        lang = str(row.get("language") or self.languages[0]).lower()
        path = row.get("path") or ""
        return Context(
            title=path or row.get("repo_name", "code"), topic=lang, subtopic=Path(path).name or lang,
            content=code, tags=[lang], source=f"huggingface:{self.path}",
            extra={"language": lang, "path": path, "repo": row.get("repo_name", ""), "lines": n},
        )
