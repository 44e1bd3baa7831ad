"""Text from a peer made safe to score, log and print.

JSON lets a miner send ``"\\ud800"``: a lone surrogate, which Python keeps in
the ``str`` but which cannot be encoded as UTF-8, so writing it to a log, a
terminal or a tokenizer raises. Control characters (ANSI escapes, NUL, C1
codes) rewrite terminals and confuse log readers. ``clean_text`` maps every
surrogate to U+FFFD and drops C0/C1 controls except ``\\n`` and ``\\t``, in
linear time (two C-level passes).
"""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"
_SURROGATES = re.compile("[\ud800-\udfff]")
# C0 (0x00-0x1f) but \t and \n, DEL (0x7f) and C1 (0x80-0x9f): deleted by str.translate.
_CONTROLS = dict.fromkeys([c for c in range(0x20) if c not in (0x09, 0x0A)] + list(range(0x7F, 0xA0)))


def replace_surrogates(s: str) -> str:
    """``s`` encodable as UTF-8: every lone surrogate becomes U+FFFD."""
    if s.isascii():
        return s
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return _SURROGATES.sub(REPLACEMENT, s)


def clean_text(s: str) -> str:
    """``s`` with lone surrogates as U+FFFD and control characters (but \\n, \\t) removed."""
    if s.isascii() and s.isprintable():
        return s          # the common case: plain ASCII text without \n or \t
    return replace_surrogates(s).translate(_CONTROLS)


def decode_utf8(data: bytes) -> str:
    """Bytes from a peer as text: invalid UTF-8 sequences become U+FFFD."""
    return data.decode("utf-8", "replace")
