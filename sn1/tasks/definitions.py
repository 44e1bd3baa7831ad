"""The six tasks (spec §7) and ``build_task``, the validator's single entry point.

Each definition turns a context into (query, reference): written by the LLM
(qa, summarization, generic_instruction) or by code (math, date_qa,
debugging). Prompts are short and token limits small so the embedded CPU
model stays quick; a stronger LLM gets the same prompts.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping

from ..datasets import Context, Dataset, DatasetError, default_datasets
from ..datasets.text import truncate_words
from ..errors import UsageError
from ..llm.base import DEFAULT_SYSTEM_PROMPT, Engine, GenParams
from ..rewards.spec import RewardSpec
from .base import Task, TaskError, generate
from .corrupt import corrupt
from .persona import ChallengeError, make_challenge, random_persona, template_challenge

CONTEXT_WORDS = 350   # longer sections are cut before prompting (CPU prompt time)


@dataclass
class Draft:
    """What a task definition makes before the persona writes the challenge."""
    query: str
    reference: str
    topic: str
    subtopic: str
    persona_query: str | None = None    # what the persona is told, when not the query itself
    note: str = ""                      # an extra line for the persona
    keep: list[str] = field(default_factory=list)   # strings the challenge must keep
    # The query reworded (keeping every fact needed to answer it) for the template
    # challenge used when the persona fails; default: ``reword_question(query)``.
    rephrase: Callable[[random.Random], str] | None = None
    wrap: Callable[[str], str] | None = None     # turns the persona's text into the challenge
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TaskDef:
    name: str
    desc: str
    goal: str
    dataset: str | None
    rewards: tuple[RewardSpec, ...]
    penalties: tuple[RewardSpec, ...]
    make: Callable[[Context | None, Engine, random.Random, GenParams], Draft]
    static_query: bool = False
    static_reference: bool = False
    # Material the task refuses (drawn again): e.g. a maths problem that prints its own answer.
    accept: Callable[[Context], bool] | None = None


# --- rewording for the template challenge ------------------------------------------------

# First words that are not names: they may lose their capital inside a sentence.
_COMMON_START = {
    "the", "a", "an", "what", "who", "whom", "whose", "which", "when", "where", "why", "how", "is", "are",
    "was", "were", "do", "does", "did", "can", "could", "would", "should", "will", "in", "on", "at",
    "during", "after", "before", "according", "it", "its", "this", "that", "these", "those", "write",
    "explain", "describe", "give", "create", "list", "please", "find", "calculate", "compute", "solve",
    "determine", "convert", "evaluate", "simplify", "area", "volume", "surface", "angle", "perimeter",
    "he", "she", "they", "his", "her", "their", "there", "one", "some", "many", "most", "if", "for",
    "tell", "imagine", "suggest", "provide", "make", "help", "name", "summarize", "summarise",
}
_WH = ("what", "who", "whom", "whose", "which", "when", "where", "why", "how")


def lower_start(text: str) -> str:
    """'The Arab League ...' -> 'the Arab League ...'; names and acronyms keep their capitals."""
    m = re.match(r"([A-Za-z]+)\b", text)
    word = m.group(1) if m else ""
    if word == "A" or (word.lower() in _COMMON_START and not word.isupper()):
        return text[0].lower() + text[1:]
    return text


def reword_question(query: str, topic: str = "") -> Callable[[random.Random], str]:
    """A question or request said another way: lower-cased start, a framing around it."""
    q = lower_start(query.strip())
    forms = ["{q}", "{q} I can't find a clear answer.", "here's what I want to know: {q}"]
    if topic:
        forms += ["about {topic}: {q}", "question on {topic} - {q}"]
    if q.split(" ", 1)[0].lower() in _WH and q.endswith("?"):
        forms += ["do you know {q}", "any idea {q}"]
    return lambda rng: rng.choice(forms).format(q=q, topic=topic)


# --- qa --------------------------------------------------------------------------------

QA_QUERY_SYSTEM = ("You write questions about texts. Ask one specific question that the text answers, "
                   "in at most 50 words, in a neutral tone.")
QA_QUERY_USER = "Ask one specific question about the following context.\n\n#Context:\n{context}"
QA_REFERENCE_SYSTEM = ("You answer questions accurately using only the given context, "
                       "in at most 150 words.")
QA_REFERENCE_USER = ("Answer the question in detail, using the context.\n\n#Context:\n{context}\n\n"
                     "#Question:\n{question}")


# One worked example: small models otherwise rewrite or summarise the context instead of asking.
QA_EXAMPLE_CONTEXT = ("The Eiffel Tower is a wrought-iron lattice tower in Paris, France. It is named after "
                      "the engineer Gustave Eiffel, whose company designed and built the tower from 1887 to 1889.")
QA_EXAMPLE_QUESTION = "Who is the Eiffel Tower named after?"


def make_qa(ctx, llm, rng, params) -> Draft:
    text = truncate_words(ctx.content, CONTEXT_WORDS)
    example = [{"role": "user", "content": QA_QUERY_USER.format(context=QA_EXAMPLE_CONTEXT)},
               {"role": "assistant", "content": QA_EXAMPLE_QUESTION}]
    query = generate(llm, rng, params, system=QA_QUERY_SYSTEM, user=QA_QUERY_USER.format(context=text),
                     max_tokens=64, what="question", question=True, shots=example,
                     accept=lambda q: q.endswith("?"), tries=3)
    reference = generate(llm, rng, params, system=QA_REFERENCE_SYSTEM,
                         user=QA_REFERENCE_USER.format(context=text, question=query),
                         max_tokens=192, what="answer")
    return Draft(query, reference, topic=ctx.title, subtopic=ctx.subtopic,
                 rephrase=reword_question(query, ctx.title))


# --- summarization ----------------------------------------------------------------------

SUMMARY_SYSTEM = ("You are a summarization assistant. You write concise, accurate summaries in a "
                  "neutral tone, in at most 250 words.")
SUMMARY_USER = "Summarize the following context in a concise and accurate manner.\n\n#Context:\n{context}"


def make_summarization(ctx, llm, rng, params) -> Draft:
    text = truncate_words(ctx.content, CONTEXT_WORDS)
    reference = generate(llm, rng, params, system=SUMMARY_SYSTEM, user=SUMMARY_USER.format(context=text),
                         max_tokens=256, what="summary")
    query = f"{ctx.title}, {ctx.subtopic}" if ctx.subtopic and ctx.subtopic != ctx.title else ctx.title
    return Draft(query, reference, topic=ctx.title, subtopic=ctx.subtopic,
                 rephrase=_reword_summary(ctx.title, ctx.subtopic))


def _reword_summary(title: str, section: str) -> Callable[[random.Random], str]:
    if section and section != title:
        s = lower_start(section)
        forms = ("can you sum up {t} for me, the part on {s}?", "what are the main points of {t} ({s})?",
                 "give me a short summary of {t}, the bit about {s}.", "I need the gist of {t}: {s}.",
                 "what's the short version of {t}? specifically {s}.")
    else:
        s = ""
        forms = ("can you sum up {t} for me?", "what's {t} about, in short?",
                 "give me the main points about {t}.", "I need a short summary of {t}.")
    return lambda rng: rng.choice(forms).format(t=title, s=s)


# --- math --------------------------------------------------------------------------------

def math_problem_hides_answer(ctx: Context) -> bool:
    """Some generators print a worked step that already equals the answer ("... = (48/23)^2"):
    repeating the question would then score 1."""
    from ..rewards.numeric import float_diff

    return float_diff(ctx.extra["solution"], ctx.content) < 0.999


def make_math(ctx, llm, rng, params) -> Draft:
    problem = ctx.content.rstrip(" ?.")
    if problem[:2].isalpha() and problem[1].islower():
        problem = problem[0].lower() + problem[1:]   # "..., find the area..."
    query = f"How can I solve the following problem, {problem}?"
    return Draft(
        query, ctx.extra["solution"], topic=ctx.topic, subtopic=ctx.title,
        note="Make sure to include the whole problem in your message.",
        keep=re.findall(r"\d+(?:\.\d+)?", problem),   # a challenge without the numbers is unanswerable
        rephrase=_reword_problem(problem),
    )


_ASKS = ("what", "which", "how", "find", "calculate", "compute", "solve", "determine", "convert",
         "evaluate", "simplify", "express", "is", "are", "does", "do", "write", "give")


def _reword_problem(problem: str) -> Callable[[random.Random], str]:
    """'area of circle with radius 97=' -> 'how do I work out area of circle with radius 97?'."""
    p = lower_start(re.sub(r"(?:\s*[=:?.]|\s+is)+\s*$", "", problem.strip()))
    if p.split(" ", 1)[0].lower() in _ASKS:      # already a question or an order
        forms = ("{p}?", "this one has me stuck: {p}?", "could you show me how to do this: {p}?",
                 "my worksheet says: {p}. how?")
    else:
        forms = ("how do I work out {p}?", "can you solve this for me: {p}", "I'm stuck on this: {p}. "
                 "what's the answer?", "what do you get for {p}?", "need a hand with {p}, what is it?")
    return lambda rng: rng.choice(forms).format(p=p)


# --- date_qa -----------------------------------------------------------------------------

def make_date_qa(ctx, llm, rng, params) -> Draft:
    query = f"{ctx.content} on what exact date?"
    return Draft(query, ctx.extra["date"], topic=ctx.title, subtopic=ctx.topic,
                 rephrase=_reword_event(ctx.content))


_BORN_DIED = re.compile(r"^(?P<who>.+?),?\s+(?:(?P<born>was born)|died)$")
_PASSIVE = re.compile(r"^(?P<subj>[^,:;]{2,60}?) (?P<aux>was|were) (?P<rest>.+)$")


def _reword_event(event: str) -> Callable[[random.Random], str]:
    """The event sentence turned into a question in other words where its shape allows.

    'The Arab League was formed in Cairo' -> 'when was the Arab League formed in Cairo?';
    'X, Scottish architect, died' -> 'when did X, Scottish architect, die?'. Every
    word of the event is kept: it is what the answer depends on.
    """
    event = event.strip().rstrip(" .")
    about = ""
    m = re.match(r"^(?P<about>[^:]{2,60}): (?P<body>.+)$", event)
    if m:
        about, event = m.group("about"), m.group("body")
    e = lower_start(event)
    questions = []
    if (m := _BORN_DIED.match(event)):
        who = m.group("who") + ("," if "," in m.group("who") else "")    # close the apposition
        questions = [f"when was {who} born?", f"what was the birth date of {who}?"] if m.group("born") else \
            [f"when did {who} die?", f"what day did {who} die?"]
    elif (m := _PASSIVE.match(event)) and len(m.group("subj").split()) <= 8 \
            and not re.search(r"\b(?:who|which|that|and|he|she|it|they)\b", m.group("subj"), re.I):
        # only a plain noun phrase before "was": "Crowned he succeeded X and was ..." is not one
        subj, aux, rest = lower_start(m.group("subj")), m.group("aux"), m.group("rest")
        questions = [f"when exactly {aux} {subj} {rest}?", f"on what day {aux} {subj} {rest}?",
                     f"what's the exact date {subj} {aux} {rest}?"]
    generic = [f"what was the exact date when {e}?", f"{e} - when did that happen, exactly?",
               f"do you know on which day {e}?", f"need the full date (day, month, year) for this: {e}."]
    forms = questions or generic

    def rephrase(rng: random.Random) -> str:
        text = rng.choice(forms)
        return f"about {about}: {text}" if about else text
    return rephrase


# --- debugging ---------------------------------------------------------------------------

CORRUPT_TRIES = 8


def make_debugging(ctx, llm, rng, params) -> Draft:
    from ..rewards.text import code_shape

    lang = ctx.extra.get("language", ctx.topic)
    # A corruption that only touched comments or spacing leaves nothing to fix (and the diff
    # reward judges code without them): corrupt again.
    for _ in range(CORRUPT_TRIES):
        c = corrupt(ctx.content, rng)
        if code_shape(c.corrupted) != code_shape(ctx.content):
            break

    def wrap(text: str) -> str:
        return f"{text}\n\n```{lang}\n{c.corrupted}\n```"

    return Draft(
        c.corrupted, ctx.content, topic=f"{lang} code", subtopic=ctx.subtopic,
        persona_query=f"the {lang} code pasted below your message (do not write the code yourself)",
        rephrase=lambda r: r.choice(_DEBUG_ASKS).format(lang=lang, name=ctx.subtopic),
        wrap=wrap, extra={"corruption": c.to_dict(), "language": lang},
    )


_DEBUG_ASKS = ("can you find and fix the bug in this {lang} code?",
               "this {lang} snippet is broken somewhere. what's wrong with it?",
               "something's off in my {lang} code below ({name}), please fix it.",
               "my {lang} code doesn't work, can you spot the bug and fix it?",
               "{name} in the {lang} below has a bug. could you fix it?")


# --- generic_instruction -----------------------------------------------------------------

CRITERION_SYSTEM = "You design tests of AI assistants."
CRITERION_USER = ("Invent one new, practical criterion for grading an AI assistant's answers. "
                  "Name it, then say in one sentence what a 5/5 answer does.")
PROBLEM_USER = ("Write one realistic request that a user could send to an AI assistant to test "
                "this criterion. Reply with the request only.\n\n#Criterion:\n{criterion}")
ANSWER_USER = ("Answer the request so well that the answer scores 5/5 on the criterion.\n\n"
               "#Criterion:\n{criterion}\n\n#Question:\n{request}")


def make_generic_instruction(ctx, llm, rng, params) -> Draft:
    criterion = generate(llm, rng, params, system=CRITERION_SYSTEM, user=CRITERION_USER,
                         max_tokens=64, what="criterion")
    query = generate(llm, rng, params, system=CRITERION_SYSTEM,
                     user=PROBLEM_USER.format(criterion=criterion), max_tokens=64, what="request")
    reference = generate(llm, rng, params, system=DEFAULT_SYSTEM_PROMPT,
                         user=ANSWER_USER.format(criterion=criterion, request=query),
                         max_tokens=192, what="answer")
    name = truncate_words(criterion.split(":")[0].split(".")[0], 8)
    return Draft(query, reference, topic="everyday requests", subtopic=name,
                 extra={"criterion": criterion}, rephrase=reword_question(query))


def _rouge(ngram: str, weight: float) -> RewardSpec:
    return RewardSpec("rouge", weight, {"ngram": ngram})


# Pasting the task's own material (the offline encyclopedia is public) is copying, not
# answering: r *= 1 - share of the completion's 5-grams copied from it (sn1.rewards.text).
_COPY = RewardSpec("source_copy", 1.0)
# A date answer needs no words of the article beyond the date: ten content words (not in the
# question) that one article holds are a pasted snippet, e.g. the article with every 4th word
# dropped, short enough to keep the date rule's credit.
# Its phrasing is judged from 20 words (the date rule's full-credit length): "The Treaty of
# Tordesillas, signed in Tordesillas, Spain on 7 June 1494." restates the question with the
# answer and so shares the source sentence's 5-grams around the date (0.6 penalty from 5 words).
_COPY_DATE = RewardSpec("source_copy", 1.0, {"min_words": 10, "phrasing_min_words": 20})


TASKS: dict[str, TaskDef] = {t.name: t for t in (
    TaskDef("qa", "get help answering a question", "the answer to the following question", "wiki",
            (_rouge("rouge-1", 0.5), RewardSpec("relevance", 0.5)), (_rouge("rouge-1", 0.5), _COPY), make_qa),
    TaskDef("summarization", "get help with a summarization task", "a summary of the following topic",
            "wiki", (_rouge("rouge-l", 0.5), RewardSpec("relevance", 0.5)), (_rouge("rouge-1", 0.5), _COPY),
            make_summarization, static_query=True),
    TaskDef("math", "get help solving a math problem", "the answer to the following math question", "math",
            # No rouge penalty, as spec §7: float_diff itself pays nothing for a number copied
            # from the challenge, so the one this seed added (which also cut honest answers that
            # restate the problem) is gone. The copy penalty stays: a pasted article whose last
            # number happens to be the answer is not a solution.
            (RewardSpec("float_diff", 1.0),), (_COPY,), make_math,
            static_query=True, static_reference=True, accept=math_problem_hides_answer),
    TaskDef("date_qa", "get help answering a specific date-based question",
            "the answer to the following date-based question", "wiki_dates",
            # the copy penalty: the two sentences of the article around the date, pasted, are not an answer
            (RewardSpec("date", 1.0),), (_COPY_DATE,), make_date_qa, static_query=True, static_reference=True),
    TaskDef("debugging", "get help debugging a piece of code", "the bug in the following code found and fixed",
            "code", (RewardSpec("diff", 1.0),), (), make_debugging, static_query=True, static_reference=True),
    TaskDef("generic_instruction", "get help with a request", "a complete answer to the following request",
            None, (_rouge("rouge-1", 0.5), RewardSpec("relevance", 0.5)), (), make_generic_instruction),
)}
NAMES = tuple(TASKS)
# Tasks checked by verification, not against a reference (sn1/tasks/inference.py).
VERIFIED = ("inference",)
ALL_NAMES = NAMES + VERIFIED


# Reward models that check an answer exactly; cheap enough to run on the challenge itself.
ANSWER_CHECKS = ("float_diff", "date")


def answer_given_away(rewards, reference: str, challenge: str) -> str | None:
    """Why repeating ``challenge`` back would earn a full answer-checking reward, or None.

    The persona may restate a maths problem as an expression that evaluates to
    the answer ("help with 54-37, what is it?") or quote the date it asks for;
    an echo miner would then score 1.
    """
    from ..rewards.numeric import numbers_in, reference_number
    from ..rewards.pipeline import REWARD_MODELS

    for spec in rewards:
        # "GCD of 12 and 4": a miner that answers with one of the challenge's numbers at random
        # (or a shuffled echo that ends on it) would be right.
        if spec.name == "float_diff" and (ref := reference_number(reference)) is not None \
                and abs(ref) in numbers_in(challenge):
            return f"the answer {ref:g} is one of the challenge's numbers"
        if spec.name in ANSWER_CHECKS:
            (value,), _ = REWARD_MODELS[spec.name](reference, [challenge], dict(spec.options), challenge)
            if value >= 0.999:
                return f"echoing it earns {spec.name} {value:.3f}"
    return None


def build_task(name: str, llm: Engine, rng: random.Random, *, live: bool = False,
               params: GenParams | None = None, datasets: Mapping[str, Dataset] | None = None,
               strict: bool = False, challenge_tries: int = 3, options: dict | None = None) -> Task:
    """Build one task: context -> query and reference -> persona -> challenge (blocking).

    Raises UsageError for an unknown task name and TaskError (one line) when no
    task can be built: no material, or the LLM failed. When the persona's LLM
    gives no acceptable challenge in ``challenge_tries`` tries, the challenge is
    a template rewrite of the query in the persona's voice (never the query
    itself; why is recorded in ``challenge_fallback``, the LLM's rejected tries
    in ``challenge_rejections``), or TaskError when ``strict``. ``datasets``
    defaults to the shared offline (or live) datasets. ``options``: settings of the
    ``inference`` task (model, max_tokens, top_logprobs; see tasks/inference.py).
    """
    if name == "inference":
        from .inference import build_inference_task

        return build_inference_task(rng, datasets=datasets, live=live, **(options or {}))
    try:
        spec = TASKS[name]
    except KeyError:
        raise UsageError(f"unknown task {name!r}; choose one of {', '.join(ALL_NAMES)}") from None
    params = params or GenParams()
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    ctx = None
    if spec.dataset:
        source = (datasets or default_datasets(live))[spec.dataset]
        try:
            ctx = source.sample(rng, spec.accept)
        except DatasetError as e:
            raise TaskError(f"{name}: no material ({e})") from e
    timings["context"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    draft = spec.make(ctx, llm, rng, params)
    timings["query_reference"] = time.perf_counter() - t1
    if ctx is None:
        crit = draft.extra.get("criterion", "")
        ctx = Context(title=draft.subtopic, topic=draft.topic, subtopic=draft.subtopic, content=crit,
                      tags=[name], source="llm", extra={}, stats={"dataset": None, "tries": 1,
                                                                  "fetch_time": 0.0})

    persona = random_persona(rng)
    t2 = time.perf_counter()
    fallback = None
    persona_query = draft.persona_query or draft.query
    try:
        ch = make_challenge(llm, rng, persona, desc=spec.desc, goal=spec.goal, topic=draft.topic,
                            subtopic=draft.subtopic, query=persona_query,
                            reference=draft.reference, params=params, tries=challenge_tries,
                            keep=draft.keep, note=draft.note)
        text, tries, rejections = ch.text, ch.tries, ch.rejected
    except ChallengeError as e:
        if strict:
            raise TaskError(f"{name}: {e}") from e
        # Never the plain query (spec §8): the persona's message from a template instead.
        fallback, tries, rejections = str(e), e.tries, list(e.rejected)
        try:
            text, more = template_challenge(
                rng, persona, draft.rephrase or reword_question(draft.query), desc=spec.desc,
                goal=spec.goal, query=persona_query, reference=draft.reference, keep=draft.keep,
                note=draft.note)
        except ChallengeError as e2:
            raise TaskError(f"{name}: {e}; {e2}") from e2
        rejections += [f"template: {r}" for r in more]
    timings["challenge"] = time.perf_counter() - t2
    challenge = draft.wrap(text) if draft.wrap else text
    leak = answer_given_away(spec.rewards, draft.reference, challenge)
    if leak:
        raise TaskError(f"{name}: the challenge gives the answer away ({leak})")

    return Task(
        name=name, desc=spec.desc, goal=spec.goal, query=draft.query, reference=draft.reference,
        challenge=challenge, persona=persona.to_dict(), context=ctx, rewards=list(spec.rewards),
        penalties=list(spec.penalties), static_query=spec.static_query,
        static_reference=spec.static_reference, challenge_tries=tries,
        challenge_rejections=rejections, challenge_fallback=fallback,
        timings={k: round(v, 4) for k, v in timings.items()}, extra=draft.extra,
    )
