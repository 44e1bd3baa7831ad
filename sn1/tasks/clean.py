"""Cleaners for generated text (spec §7).

Small models wrap answers in quotes, prefix them with a role ("Assistant: ",
"#Question: "), stop mid-sentence at the token limit and forget capitals.
``clean`` applies, in order: role prefixes, surrounding quotes, the unfinished
last sentence, capitals.
"""

from __future__ import annotations

import re

_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’", "«": "»", "`": "`"}
_ROLE_WORDS = (r"user|assistant|ai|human|system|bot|chatbot|question|answer|query|response|"
               r"reply|summary|q|a|me|you|student|teacher|parent|hacker|programmer|scientist|"
               r"human agent|ai assistant|opening message|message|request|problem|solution")
# "User: ", "#Question:", "**Assistant**:", "[User]:", "Dear AI, ", "Dear assistant,"
_ROLE = re.compile(
    rf"^\s*(?:#+\s*|\*\*|\[)?(?:{_ROLE_WORDS})(?:\s*\d+)?(?:\*\*|\])?\s*:\s*"
    rf"|^\s*dear\s+(?:ai|assistant|chatbot|bot|ai assistant)\b\s*[,:!]?\s*",
    re.I,
)
_SENTENCE_END = re.compile(r"[.!?…][\"'”’)\]]*(?=\s|$)")


def remove_roles(text: str) -> str:
    """Strip role prefixes at the start of the text and of each line (repeatedly: 'User: Q: ...')."""
    lines = []
    for line in text.splitlines():
        prev = None
        while prev != line:
            prev, line = line, _ROLE.sub("", line, count=1)
        lines.append(line)
    return "\n".join(lines).strip()


def strip_quotes(text: str) -> str:
    text = text.strip()
    while text and text[0] in _QUOTES:
        q, close = text[0], _QUOTES[text[0]]
        k = min(len(text) - len(text.lstrip(q)), len(text) - len(text.rstrip(close)))   # '"""x"""'
        if k == 0 or len(text) <= 2 * k:
            break
        inner = text[k:-k].strip()
        if q in inner or close in inner:
            break   # '"a" and "b"': the quotes belong to the text
        text = inner
    # A lone opening quote (the model was cut off before closing it), or a lone closing one.
    if text and text[0] in _QUOTES and text.count(text[0]) == 1 and _QUOTES[text[0]] not in text[1:]:
        text = text[1:].lstrip()
    closing = {v: k for k, v in _QUOTES.items()}
    if text and text[-1] in closing and text.count(text[-1]) == 1 and closing[text[-1]] not in text[:-1]:
        text = text[:-1].rstrip()
    return text


def prune_ending(text: str) -> str:
    """Cut an unfinished last sentence; text without any sentence end is kept as is."""
    text = text.rstrip()
    ends = list(_SENTENCE_END.finditer(text))
    if not ends or ends[-1].end() == len(text):
        return text
    return text[:ends[-1].end()].rstrip()


def capitalise(text: str) -> str:
    """Upper-case the first letter of every sentence (other letters are left alone)."""
    def up(m: re.Match) -> str:
        return m.group(1) + m.group(2).upper()
    text = re.sub(r"^(\W*)([a-z])", up, text)
    return re.sub(r"((?:[.!?][\"'”’)\]]*|\n)\s+\W*)([a-z])", up, text)


def cut_after_question(text: str) -> str:
    """Keep up to the first question mark (a question followed by chatter)."""
    i = text.find("?")
    return text[:i + 1] if i >= 0 else text


def clean(text: str, *, question: bool = False) -> str:
    text = remove_roles(text or "")
    text = strip_quotes(text)
    text = remove_roles(text)          # roles inside the quotes: '"User: ..."'
    if question:
        text = cut_after_question(text)
    text = prune_ending(text)
    text = re.sub(r"[ \t]+", " ", text).strip()
    return capitalise(text)
