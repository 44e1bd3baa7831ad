"""Personas and challenges (spec §8).

The validator's LLM role-plays a human with a random profile, mood and tone and
writes the message that human would send: a lossy, unpredictable rewrite of the
task's query. A challenge that is empty, contains the reference verbatim or
echoes the role-play instructions is rejected and regenerated with another
seed; after ``tries`` rejections ``make_challenge`` raises ``ChallengeError``
(the caller decides: ``build_task`` falls back to ``template_challenge``, a
deterministic persona-flavoured rewrite of the query that passes the same
checks, and records why, unless ``strict``). An engine failure becomes a
one-line ``TaskError``.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import asdict, dataclass

from typing import Callable

from ..llm.base import Engine, GenParams, LLMError
from ..errors import one_line
from .base import TaskError
from .clean import clean

PROFILES = ("student", "teacher", "parent", "hacker", "programmer", "scientist")
MOODS = ("interested", "concerned", "impatient", "tired", "confused", "annoyed", "curious",
         "upbeat", "lazy")
TONES = ("formal", "informal", "indifferent", "casual", "rushed", "polite", "impolite", "friendly",
         "unfriendly", "positive", "negative")

ROLE_PROMPT = (
    "This is a role-playing game. You are not an assistant: you are impersonating a human user, "
    "{article} {mood} {profile}. As this human, you are using an AI assistant to {desc} about "
    "{topic} ({subtopic}), and you write in a {tone} tone. You do not need to greet the assistant "
    "or be polite unless that fits your persona; your spelling and grammar match your persona. "
    "Your single goal is to get {goal}: {query}"
)
_BLANKS = {"topic": "", "subtopic": "", "query": ""}
OPENING_REQUEST = "Write your opening message to the assistant. Reply with that message only."


# Small models forget they play the human and answer as the assistant, or narrate the game.
# A human may well be "trying to help my kid": helping someone of their own is not assistant speak.
_NOT_HUMAN = r"(?!\s+(?:my|our|his|her|their|him|them|a|an|the|some|someone|out|me)\b)"
_ASSISTANT_SPEAK = re.compile(
    # "I'm an AI assistant", "as a language model", "I'm your trusty science assistant!"
    r"\b(?:I am|I'm|as|this is) (?:\w+ )?an? (?:[\w-]+ ){0,2}(?:AI|artificial intelligence|assistant"
    r"|language model|chatbot)\b"
    r"|\b(?:I am|I'm|this is) your (?:[\w-]+ ){0,3}(?:AI|assistant|language model|chatbot|bot|helper"
    r"|tutor|guide|companion)\b"
    # "... to help you", "assisting you", "I'm here to assist", "happy to help", "here and ready to help"
    r"|\b(?:help|assist)(?:ing)? you\b"
    r"|\b(?:here|ready|happy|glad|delighted|available) (?:and \w+ )?to (?:help|assist)\b" + _NOT_HUMAN +
    r"|\bI(?:'m| am) (?:\w+ ){0,2}to (?:help|assist)\b" + _NOT_HUMAN +
    # "How can I help today?", "How may I be of assistance?", "What can I do for you?"
    r"|\bhow (?:can|may|could|might) I (?:\w+ ){0,2}(?:help|assist|be of (?:help|assistance|service))\b"
    r"|\bwhat can I (?:do|help) (?:for|with)\b"
    r"|\blet me know if you (?:have|need) (?:any )?(?:other |more |further )?(?:questions|help)\b"
    r"|\bfeel free to ask\b",
    re.I)
_NARRATES = re.compile(r"\b(?:role-?play\w*|persona|impersonat\w*|the human (?:user)?|in the role of)\b", re.I)
# A challenge asks for something.
_REQUEST = re.compile(
    r"\?|\b(?:please|pls|plz|help|can|could|would|tell|explain|need|want|wonder|summar\w*|fix|solve|find|"
    r"debug|show|give|calculate|compute|check)\b|\b(?:how|what|why|when|who|where|which)\w*", re.I)


class ChallengeError(Exception):
    """No acceptable challenge after the allowed tries; ``rejected`` says why, per try."""

    def __init__(self, message: str, rejected: list[str] | None = None, tries: int = 0):
        super().__init__(message)
        self.rejected = list(rejected or [])
        self.tries = tries


@dataclass(frozen=True)
class Persona:
    profile: str
    mood: str
    tone: str

    def to_dict(self) -> dict:
        return asdict(self)


def random_persona(rng: random.Random) -> Persona:
    return Persona(rng.choice(PROFILES), rng.choice(MOODS), rng.choice(TONES))


def role_prompt(persona: Persona, *, desc: str, goal: str, topic: str, subtopic: str, query: str,
                note: str = "") -> str:
    article = "an" if persona.mood[0] in "aeiou" else "a"
    prompt = ROLE_PROMPT.format(article=article, mood=persona.mood, profile=persona.profile,
                                tone=persona.tone, desc=desc, goal=goal, topic=topic,
                                subtopic=subtopic, query=query)
    return f"{prompt}\n{note}" if note else prompt


# --- rejection ------------------------------------------------------------------------

def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def _ngrams(text: str, n: int = 4) -> set[tuple[str, ...]]:
    words = re.findall(r"\w+", text.lower())
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def contains(haystack: str, needle: str) -> bool:
    """Whole-token, whitespace- and case-insensitive containment.

    '34' is not in '1340' but is in '34m' (numbers end where digits end).
    """
    needle = _norm(needle)
    if not needle:
        return False
    left = r"(?<![\d.])" if needle[0].isdigit() else r"(?<!\w)" if needle[0].isalnum() else ""
    right = r"(?!\d|\.\d)" if needle[-1].isdigit() else r"(?!\w)" if needle[-1].isalnum() else ""
    return re.search(left + re.escape(needle) + right, _norm(haystack)) is not None


def rejection(challenge: str, *, reference: str, query: str, instructions: str,
              keep: list[str] | tuple[str, ...] = ()) -> str | None:
    """Why a challenge is unacceptable, or None when it is fine.

    ``instructions``: the role-play prompt without the task's topic and query
    (repeating the topic is fine, repeating the instructions is an echo).
    ``keep``: strings the challenge must carry (the numbers of a maths problem).
    """
    challenge = challenge.replace("\u2019", "'")    # "I’m" is "I'm"
    if len(re.findall(r"\w+", challenge)) < 2:
        return "empty"
    grams = _ngrams(challenge)
    if grams:
        echoed = len(grams & _ngrams(instructions)) / len(grams)
        if echoed >= 0.5 and not _ngrams(query) >= grams:
            return "echoes the role-play prompt"
    elif contains(instructions, challenge) and not contains(query, challenge):
        return "echoes the role-play prompt"
    # The query itself may hold the reference (a maths problem mentioning its answer);
    # only a reference the challenge could not have taken from the query counts.
    if contains(challenge, reference) and not contains(query, reference):
        return "contains the reference verbatim"
    if _ASSISTANT_SPEAK.search(challenge):
        return "speaks as the assistant"
    if _NARRATES.search(challenge):
        return "narrates the role-play"
    if not _REQUEST.search(challenge):
        return "asks for nothing"
    missing = [k for k in keep if not contains(challenge, k)]
    if missing:
        return f"drops {missing[0]!r} from the query"
    return None


@dataclass
class Challenge:
    text: str
    prompt: str
    tries: int
    rejected: list[str]
    time: float


def instructions_for(persona: Persona, *, desc: str, goal: str, note: str = "") -> str:
    """The role-play prompt without the task's own words (what an echo would repeat)."""
    return role_prompt(persona, desc=desc, goal=goal, note=note, **_BLANKS)


def make_challenge(llm: Engine, rng: random.Random, persona: Persona, *, desc: str, goal: str,
                   topic: str, subtopic: str, query: str, reference: str,
                   params: GenParams | None = None, tries: int = 3, max_tokens: int = 96,
                   keep: list[str] | tuple[str, ...] = (), note: str = "") -> Challenge:
    """Ask the LLM (as the persona) for the opening message; reject and retry bad ones.

    Raises ``ChallengeError`` after ``tries`` rejections and ``TaskError`` (one
    line) when the engine fails.
    """
    params = params or GenParams()
    prompt = role_prompt(persona, desc=desc, goal=goal, topic=topic, subtopic=subtopic, query=query,
                         note=note)
    instructions = instructions_for(persona, desc=desc, goal=goal, note=note)
    messages = [{"role": "system", "content": prompt}, {"role": "user", "content": OPENING_REQUEST}]
    rejected: list[str] = []
    start = time.perf_counter()
    for attempt in range(1, tries + 1):
        p = params.replace(max_tokens=min(params.max_tokens, max_tokens), seed=rng.randrange(2**31))
        try:
            text = clean(llm.chat(messages, p))
        except LLMError as e:
            raise TaskError(f"LLM failed writing the challenge: {one_line(e)}") from e
        reason = rejection(text, reference=reference, query=query, instructions=instructions, keep=keep)
        if reason is None:
            return Challenge(text, prompt, attempt, rejected, time.perf_counter() - start)
        rejected.append(reason)
    raise ChallengeError(f"no acceptable challenge in {tries} tries ({'; '.join(rejected)})", rejected, tries)


# --- the template fallback ---------------------------------------------------------------
# When the LLM cannot play the human, the challenge is still a persona's message, never the
# plain query (spec §8: not to be looked up verbatim): an opener for the mood (and now and
# then a word about the profile), the query rephrased by the task, a closer for the tone.

MOOD_OPENERS = {
    "interested": ("ooh, something I've been wondering about.", "this caught my interest.",
                   "I'd really like to get this one."),
    "concerned": ("I'm a bit worried I've got this wrong.", "hoping you can clear this up.",
                  "this has been bothering me."),
    "impatient": ("quick, I don't have much time.", "need this fast.", "straight to the point:"),
    "tired": ("long day, my brain is fried.", "too tired to work this out myself.", "ugh, it's late."),
    "confused": ("I'm so confused right now.", "I can't make sense of this.", "ok I'm lost."),
    "annoyed": ("ugh, this is driving me nuts.", "seriously, I've been stuck on this forever.",
                "this is so annoying."),
    "curious": ("just curious,", "random question,", "I've always wondered,"),
    "upbeat": ("hey there!", "hi! hope your day is going well.", "morning!"),
    "lazy": ("eh,", "can't be bothered to work this out myself.", "so,"),
}
PROFILE_LINES = {
    "student": ("it's for an assignment.", "got an exam coming up."),
    "teacher": ("it's for a lesson I'm planning.", "one of my pupils asked."),
    "parent": ("my kid asked me about this.", "trying to keep up with my kids here."),
    "hacker": ("need it for a side project.", "poking at something."),
    "programmer": ("need it for work.", "between two tickets here."),
    "scientist": ("it's for my research notes.", "double-checking something."),
}
TONE_CLOSERS = {
    "formal": ("Thank you in advance.", "I would appreciate a precise answer.", "Kind regards."),
    "informal": ("thx!", "cheers", "ta"),
    "indifferent": ("whatever works.", "no big deal either way.", ""),
    "casual": ("thanks!", "cheers.", ""),
    "rushed": ("asap pls", "quick answer pls", ""),
    "polite": ("Thank you so much!", "Many thanks.", "Thanks for your time."),
    "impolite": ("and don't waste my time.", "just answer it.", "get it right this time."),
    "friendly": ("thanks a lot :)", "you're the best!", "thanks, friend!"),
    "unfriendly": ("just give me the answer.", "no fluff.", ""),
    "positive": ("I'm sure you'll nail it!", "excited to see the answer!", "thanks, this will be great!"),
    "negative": ("probably won't get a straight answer but here goes.", "I doubt this will work.",
                 "last time this didn't go well."),
}
_LOWER_TONES = {"informal", "casual", "rushed"}   # these personas don't bother with capitals


def dress(rng: random.Random, persona: Persona, request: str) -> str:
    """Opener (mood, sometimes profile) + request + closer (tone), spelled for the persona."""
    opener = rng.choice(MOOD_OPENERS[persona.mood])
    profile = rng.choice(PROFILE_LINES[persona.profile]) if rng.random() < 0.5 else ""
    # "just curious," leads straight into the request; the profile line then follows it.
    parts = [opener, request, profile] if opener.endswith(",") else [opener, profile, request]
    parts = [p for p in parts if p]
    closer = rng.choice(TONE_CLOSERS[persona.tone])
    if closer:
        parts.append(closer)
    if persona.tone in _LOWER_TONES or persona.mood == "lazy":
        parts = [p[0].lower() + p[1:] if p[:2].isalpha() and p[1:2].islower() else p for p in parts]
    else:   # capitals after a sentence end, as a careful writer would
        out = []
        for p in parts:
            if not out or out[-1].rstrip()[-1:] in ".!?:":
                p = p[0].upper() + p[1:]
            out.append(p)
        parts = out
    return " ".join(parts)


def template_challenge(rng: random.Random, persona: Persona, rephrase: Callable[[random.Random], str], *,
                       desc: str, goal: str, query: str, reference: str,
                       keep: list[str] | tuple[str, ...] = (), note: str = "",
                       tries: int = 12) -> tuple[str, list[str]]:
    """A deterministic challenge without the LLM: ``dress(rephrase(rng))``, checked like the LLM's.

    ``rephrase(rng)`` rewrites the query keeping every fact needed to answer it.
    Returns (text, reasons earlier variants were rejected); raises ChallengeError
    when no variant passes ``rejection`` and differs from the query.
    """
    sub = random.Random(rng.randrange(2**32))    # the caller's rng advances by one draw only
    instructions = instructions_for(persona, desc=desc, goal=goal, note=note)
    rejected: list[str] = []
    for _ in range(tries):
        text = dress(sub, persona, rephrase(sub))
        reason = rejection(text, reference=reference, query=query, instructions=instructions, keep=keep)
        if reason is None and _norm(text) == _norm(query):
            reason = "is the query itself"
        if reason is None:
            return text, rejected
        rejected.append(reason)
    raise ChallengeError(f"no acceptable template challenge in {tries} tries ({'; '.join(rejected)})",
                         rejected, tries)
