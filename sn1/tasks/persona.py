"""Personas and challenges (spec §8).

The validator's LLM role-plays a human with a random profile, mood and tone and
writes the message that human would send: a lossy, unpredictable rewrite of the
task's query. A challenge that is empty, contains the reference verbatim or
echoes the role-play instructions is rejected and regenerated with another
seed; after ``tries`` rejections ``make_challenge`` raises ``ChallengeError``
(the caller decides: ``build_task`` falls back to the plain query and records
why, unless ``strict``).
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import asdict, dataclass

from ..llm.base import Engine, GenParams
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
# The role-play instructions alone (what an echo would repeat), without the task's own words.
_BLANKS = {"topic": "", "subtopic": "", "query": ""}
OPENING_REQUEST = "Write your opening message to the assistant. Reply with that message only."


# Small models forget they play the human and answer as the assistant, or narrate the game.
_ASSISTANT_SPEAK = re.compile(
    r"\b(?:I am|I'm|as) (?:\w+ )?an? (?:[\w-]+ ){0,2}(?:AI|artificial intelligence|assistant|language model"
    r"|chatbot)\b"
    r"|\b(?:to|can|could|will|may) (?:\w+ )?(?:help|assist) you\b"
    r"|\bI(?:'m| am) (?:\w+ ){0,2}to (?:help|assist)\b"
    r"|\bhow (?:can|may) I (?:help|assist)\b",
    re.I)
_NARRATES = re.compile(r"\b(?:role-?play\w*|persona|impersonat\w*|the human (?:user)?|in the role of)\b", re.I)
# A challenge asks for something.
_REQUEST = re.compile(
    r"\?|\b(?:please|pls|plz|help|can|could|would|tell|explain|need|want|wonder|summar\w*|fix|solve|find|"
    r"debug|show|give|calculate|compute|check)\b|\b(?:how|what|why|when|who|where|which)\w*", re.I)


class ChallengeError(Exception):
    """No acceptable challenge after the allowed tries."""


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


def make_challenge(llm: Engine, rng: random.Random, persona: Persona, *, desc: str, goal: str,
                   topic: str, subtopic: str, query: str, reference: str,
                   params: GenParams | None = None, tries: int = 3, max_tokens: int = 96,
                   keep: list[str] | tuple[str, ...] = (), note: str = "") -> Challenge:
    """Ask the LLM (as the persona) for the opening message; reject and retry bad ones."""
    params = params or GenParams()
    prompt = role_prompt(persona, desc=desc, goal=goal, topic=topic, subtopic=subtopic, query=query,
                         note=note)
    instructions = role_prompt(persona, desc=desc, goal=goal, note=note, **_BLANKS)
    messages = [{"role": "system", "content": prompt}, {"role": "user", "content": OPENING_REQUEST}]
    rejected: list[str] = []
    start = time.perf_counter()
    for attempt in range(1, tries + 1):
        p = params.replace(max_tokens=min(params.max_tokens, max_tokens), seed=rng.randrange(2**31))
        text = clean(llm.chat(messages, p))
        reason = rejection(text, reference=reference, query=query, instructions=instructions, keep=keep)
        if reason is None:
            return Challenge(text, prompt, attempt, rejected, time.perf_counter() - start)
        rejected.append(reason)
    raise ChallengeError(f"no acceptable challenge in {tries} tries ({'; '.join(rejected)})")
