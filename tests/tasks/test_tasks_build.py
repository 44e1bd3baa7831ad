"""Every task built end to end with the deterministic stand-in LLM; personas; rejected challenges."""

from __future__ import annotations

import json
import random
import threading

import pytest

from sn1.datasets import Context, Dataset, make_datasets
from sn1.errors import UsageError
from sn1.llm.base import Engine, GenParams, LLMError
from sn1.llm.scripted import ScriptedEngine, respond
from sn1.rewards import check_specs
from sn1.rewards.date import first_date
from sn1.rewards.numeric import reference_number
from sn1.rewards.spec import RewardSpec
from sn1.tasks import MOODS, NAMES, PROFILES, TONES, TaskError, build_task, random_persona
from sn1.tasks.corrupt import Corruption, restore
from sn1.tasks.definitions import lower_start
from sn1.tasks.persona import (MOODS as _MOODS, OPENING_REQUEST, ChallengeError, Persona, dress, make_challenge,
                               rejection, role_prompt, template_challenge)

EXPECTED_REWARDS = {
    "qa": ([RewardSpec("rouge", 0.5, {"ngram": "rouge-1"}), RewardSpec("relevance", 0.5)],
           [RewardSpec("rouge", 0.5, {"ngram": "rouge-1"}), RewardSpec("source_copy", 1.0)]),
    "summarization": ([RewardSpec("rouge", 0.5, {"ngram": "rouge-l"}), RewardSpec("relevance", 0.5)],
                      [RewardSpec("rouge", 0.5, {"ngram": "rouge-1"}), RewardSpec("source_copy", 1.0)]),
    "math": ([RewardSpec("float_diff", 1.0)], [RewardSpec("source_copy", 1.0)]),
    "date_qa": ([RewardSpec("date", 1.0)], [RewardSpec("source_copy", 1.0, {"min_words": 10, "phrasing_min_words": 20})]),
    "debugging": ([RewardSpec("diff", 1.0)], []),
    "generic_instruction": ([RewardSpec("rouge", 0.5, {"ngram": "rouge-1"}), RewardSpec("relevance", 0.5)], []),
}


@pytest.fixture(scope="module")
def pool():
    return make_datasets(live=False)


def _stable(event: dict) -> dict:
    event = dict(event, task_timings=None)
    event["context"] = dict(event["context"], stats={k: v for k, v in event["context"]["stats"].items()
                                                     if k != "fetch_time"})
    return event


def test_names():
    assert NAMES == ("qa", "summarization", "math", "date_qa", "debugging", "generic_instruction")


@pytest.mark.parametrize("name", NAMES)
def test_every_task_end_to_end_with_the_scripted_engine(pool, name):
    llm = ScriptedEngine()
    for seed in range(4):
        task = build_task(name, llm, random.Random(seed), datasets=pool)
        assert task.name == name
        assert task.query.strip() and task.reference.strip() and task.challenge.strip()
        assert set(task.persona) == {"profile", "mood", "tone"}
        assert isinstance(task.context, Context)
        assert (task.rewards, task.penalties) == EXPECTED_REWARDS[name]
        check_specs(task.rewards, task.penalties)
        event = task.to_event()
        json.dumps(event)
        assert event["task"] == name and event["challenge"] == task.challenge
        assert event["reference"] == task.reference and event["persona"] == task.persona
        assert set(event["task_timings"]) == {"context", "query_reference", "challenge"}
        # The scripted persona never fails: the challenge is the persona's, not the fallback.
        assert task.challenge_fallback is None and task.challenge_tries >= 1


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_task(pool, name):
    a = build_task(name, ScriptedEngine(), random.Random(11), datasets=pool).to_event()
    b = build_task(name, ScriptedEngine(), random.Random(11), datasets=pool).to_event()
    c = build_task(name, ScriptedEngine(), random.Random(12), datasets=pool).to_event()
    assert _stable(a) == _stable(b)
    assert _stable(a) != _stable(c)


def test_qa_is_grounded_in_the_context(pool):
    llm = ScriptedEngine()
    task = build_task("qa", llm, random.Random(5), datasets=pool)
    assert task.query.endswith("?")
    # the scripted engine answers with sentences of the context, as a good LLM would
    assert task.reference.split(".")[0] in task.context.content
    prompts = [m[-1]["content"] for m in llm.calls]
    assert task.context.content in prompts[0] and task.query in prompts[1]
    assert llm.calls[-1][0]["role"] == "system" and task.query in llm.calls[-1][0]["content"]


def test_summarization_query_is_title_and_section(pool):
    task = build_task("summarization", ScriptedEngine(), random.Random(2), datasets=pool)
    assert task.query == f"{task.context.title}, {task.context.subtopic}"
    assert task.static_query and not task.static_reference


def test_math_reference_is_the_numeric_solution(pool):
    for seed in range(10):
        task = build_task("math", ScriptedEngine(), random.Random(seed), datasets=pool)
        assert task.reference == task.context.extra["solution"]
        assert reference_number(task.reference) is not None
        assert task.query.startswith("How can I solve the following problem, ") and task.query.endswith("?")


def test_date_qa_asks_for_the_date(pool):
    for seed in range(10):
        task = build_task("date_qa", ScriptedEngine(), random.Random(seed), datasets=pool)
        assert task.query == f"{task.context.content} on what exact date?"
        assert first_date(task.reference) is not None
        assert task.reference not in task.challenge


def test_debugging_challenge_carries_the_corrupted_code(pool):
    for seed in range(10):
        task = build_task("debugging", ScriptedEngine(), random.Random(seed), datasets=pool)
        lang = task.extra["language"]
        assert task.reference == task.context.content
        assert task.query != task.reference
        assert task.challenge.endswith(f"```{lang}\n{task.query}\n```")
        c = Corruption(task.reference, task.query, task.extra["corruption"]["unit"],
                       [tuple(op) for op in task.extra["corruption"]["ops"]])
        assert restore(c) == task.reference


def test_generic_instruction_needs_no_dataset():
    class Nothing(dict):
        def __getitem__(self, key):
            raise AssertionError("generic_instruction must not read a dataset")

    task = build_task("generic_instruction", ScriptedEngine(), random.Random(0), datasets=Nothing())
    assert task.extra["criterion"] and task.context.source == "llm"


def test_unknown_task_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown task 'poetry'"):
        build_task("poetry", ScriptedEngine(), random.Random(0))


def test_no_material_is_a_task_error():
    class Empty(Dataset):
        name = "wiki"
        max_tries = 2

        def draw(self, rng):
            return None

    with pytest.raises(TaskError, match="no material"):
        build_task("qa", ScriptedEngine(), random.Random(0), datasets={"wiki": Empty()})


def test_llm_failure_is_a_task_error(pool):
    def boom(messages, params):
        raise LLMError("the API said no")

    with pytest.raises(TaskError, match="the API said no"):
        build_task("qa", ScriptedEngine([boom]), random.Random(0), datasets=pool)


def test_llm_giving_nothing_usable_is_a_task_error(pool):
    with pytest.raises(TaskError, match="no usable summary"):
        build_task("summarization", ScriptedEngine(["", '""']), random.Random(0), datasets=pool)


def test_qa_question_must_be_a_question(pool):
    llm = ScriptedEngine(["Here is some text.", "More text without asking", "Where was it found?"])
    task = build_task("qa", llm, random.Random(0), datasets=pool)
    assert task.query == "Where was it found?"


# --- personas and challenges --------------------------------------------------------------

def test_personas_cover_the_spec_lists():
    assert PROFILES == ("student", "teacher", "parent", "hacker", "programmer", "scientist")
    assert MOODS == ("interested", "concerned", "impatient", "tired", "confused", "annoyed", "curious",
                     "upbeat", "lazy")
    assert TONES == ("formal", "informal", "indifferent", "casual", "rushed", "polite", "impolite",
                     "friendly", "unfriendly", "positive", "negative")
    rng = random.Random(0)
    seen = {random_persona(rng) for _ in range(2000)}
    assert {p.profile for p in seen} == set(PROFILES) and {p.mood for p in seen} == set(MOODS)
    assert {p.tone for p in seen} == set(TONES)


def test_role_prompt_wording():
    p = role_prompt(Persona("student", "impatient", "rushed"), desc="get help answering a question",
                    goal="the answer to the following question", topic="Paris", subtopic="History",
                    query="When was Paris founded?")
    assert "role-playing" in p and "an impatient student" in p
    assert "using an AI assistant to get help answering a question about Paris (History)" in p
    assert "rushed tone" in p and "spelling" in p
    assert p.endswith("single goal is to get the answer to the following question: When was Paris founded?")


def _challenge(llm, **kw):
    args = dict(desc="get help answering a question", goal="the answer to the following question",
                topic="Eiffel Tower", subtopic="Tower in Paris", query="Who designed the Eiffel Tower?",
                reference="Gustave Eiffel's company designed it.")
    args.update(kw)
    return make_challenge(llm, random.Random(0), Persona("parent", "tired", "casual"), **args)


def echo_role_prompt(messages, params):
    return messages[0]["content"]


def test_bad_challenges_are_rejected_and_regenerated():
    llm = ScriptedEngine(["", 'Tell me: "Gustave Eiffel\'s company designed it."', echo_role_prompt,
                          "ugh who built that big paris tower?"])
    ch = _challenge(llm, tries=4)
    assert ch.text == "Ugh who built that big paris tower?"
    assert ch.rejected == ["empty", "contains the reference verbatim", "echoes the role-play prompt"]
    assert ch.tries == 4
    assert len(llm.calls) == 4 and all(m[0]["role"] == "system" for m in llm.calls)
    assert llm.calls[0][1] == {"role": "user", "content": OPENING_REQUEST}


def test_retries_are_bounded_then_a_template_is_the_fallback(pool):
    bad = [echo_role_prompt] * 3
    llm = ScriptedEngine(["Where was it first found?", "It was found in a lake.", *bad])
    task = build_task("qa", llm, random.Random(0), datasets=pool, challenge_tries=3)
    assert task.query == "Where was it first found?"
    assert task.challenge != task.query and "where was it first found?" in task.challenge
    assert "echoes the role-play prompt" in task.challenge_fallback
    # the LLM's rejected tries are kept, not dropped
    assert task.challenge_rejections == ["echoes the role-play prompt"] * 3
    assert task.challenge_tries == 3 and len(llm.calls) == 5
    assert task.to_event()["challenge_rejections"] == task.challenge_rejections


class AssistantOnly(ScriptedEngine):
    """Writes queries and references like the scripted engine, but as the persona always
    answers as the assistant (what the embedded 135M model mostly does)."""

    def chat(self, messages, params):
        self.calls.append(messages)
        if "role-playing game" in messages[0]["content"]:
            return "I'm your trusty science assistant! How can I help you today?"
        return respond(messages, params)


def _facts(name: str, task) -> list[str]:
    """What the challenge must carry for the task to stay answerable."""
    if name == "math":
        import re
        return re.findall(r"\d+(?:\.\d+)?", task.context.content)
    if name == "date_qa":
        return [w for w in task.context.content.replace(":", " ").split() if len(w) > 3]
    if name == "summarization":
        return [task.context.title, task.context.subtopic]
    if name == "debugging":
        return [f"```{task.extra['language']}\n{task.query}\n```"]
    return [task.query.rstrip("?")[1:]]      # qa, generic_instruction: the question (start lower-cased)


@pytest.mark.parametrize("name", NAMES)
def test_a_persona_that_always_fails_gets_a_template_not_the_query(pool, name):
    challenges = set()
    for seed in range(12):
        task = build_task(name, AssistantOnly(), random.Random(seed), datasets=pool, challenge_tries=2)
        assert task.challenge_fallback.startswith("no acceptable challenge in 2 tries")
        assert task.challenge_rejections[:2] == ["speaks as the assistant"] * 2
        assert task.challenge_tries == 2
        ch = " ".join(task.challenge.split()).lower()
        assert " ".join(task.query.split()).lower() != ch
        assert task.reference not in task.challenge
        for fact in _facts(name, task):
            assert fact.lower() in task.challenge.lower() if name != "debugging" else fact in task.challenge, \
                (fact, task.challenge)
        if name == "date_qa":   # the material's sentence (or the plain query) is not there to look up
            assert task.query not in task.challenge
            if task.context.extra.get("sentence"):
                assert task.context.extra["sentence"] not in task.challenge
        if name == "math":
            assert not task.challenge.startswith("How can I solve the following problem")
        challenges.add(task.challenge)
    assert len(challenges) >= 10         # varied, not one fixed sentence


def test_the_template_is_deterministic_under_the_seed(pool):
    a = build_task("date_qa", AssistantOnly(), random.Random(4), datasets=pool).to_event()
    b = build_task("date_qa", AssistantOnly(), random.Random(4), datasets=pool).to_event()
    assert _stable(a) == _stable(b)


def test_template_speaks_for_the_persona():
    from sn1.tasks.persona import MOOD_OPENERS, TONE_CLOSERS
    query = "Who designed the Eiffel Tower?"
    moods = set()
    for seed in range(200):
        rng = random.Random(seed)
        persona = random_persona(rng)
        text = dress(rng, persona, "who designed the Eiffel Tower?")
        low = text.lower()
        assert "who designed the eiffel tower?" in low
        assert any(low.startswith(o.lower()) for o in MOOD_OPENERS[persona.mood])       # opener: mood
        assert any(low.endswith(c.lower()) for c in TONE_CLOSERS[persona.tone] if c) or \
            "" in TONE_CLOSERS[persona.tone]                                             # closer: tone
        instructions = role_prompt(persona, desc="d", goal="g", topic="", subtopic="", query="")
        assert rejection(text, reference="Gustave Eiffel", query=query, instructions=instructions) is None
        moods.add(persona.mood)
    assert moods == set(_MOODS)


def test_a_template_with_the_reference_is_rejected_and_reworded():
    # A rewording that would leak the answer is never used, whatever the seed.
    forms = iter(["is it 42? what is 6 x 7?", "what is 6 x 7?"])
    text, rejected = template_challenge(
        random.Random(0), Persona("student", "curious", "polite"), lambda rng: next(forms),
        desc="get help solving a math problem", goal="the answer", query="How can I solve 6 x 7?",
        reference="42", keep=["6", "7"])
    assert "42" not in text and "what is 6 x 7?" in text.lower()
    assert rejected == ["contains the reference verbatim"]
    with pytest.raises(ChallengeError, match="no acceptable template challenge in 3 tries"):
        template_challenge(random.Random(0), Persona("student", "curious", "polite"),
                           lambda rng: "is it 42?", desc="d", goal="g", query="6 x 7?", reference="42",
                           tries=3)


def test_lower_start_keeps_names():
    assert lower_start("The Arab League was formed") == "the Arab League was formed"
    assert lower_start("Who designed it?") == "who designed it?"
    assert lower_start("A cat") == "a cat"
    assert lower_start("Magna Carta is a charter") == "Magna Carta is a charter"
    assert lower_start("US-ACAN declared") == "US-ACAN declared"
    assert lower_start("I need it") == "I need it"


@pytest.mark.parametrize("event,expected", [
    ("The Arab League was formed in Cairo", "the Arab League formed in Cairo?"),
    ("Robert Adam, Scottish architect, died", "did Robert Adam, Scottish architect, die?"),
    ("Alexander Graham Bell, Scottish-American inventor, was born",
     "Alexander Graham Bell, Scottish-American inventor"),
])
def test_date_events_become_questions_in_other_words(event, expected):
    from sn1.tasks.definitions import _reword_event
    rephrase = _reword_event(event)
    outs = {rephrase(random.Random(s)) for s in range(30)}
    assert any(expected in o for o in outs), outs
    assert all(event not in o for o in outs)


def test_an_engine_error_while_writing_the_challenge_is_a_task_error(pool):
    def boom(messages, params):
        raise LLMError("openai: cannot reach http://127.0.0.1:9/v1:\nConnection refused")

    with pytest.raises(TaskError) as info:
        build_task("math", ScriptedEngine([boom]), random.Random(0), datasets=pool)
    assert str(info.value) == ("LLM failed writing the challenge: openai: cannot reach "
                               "http://127.0.0.1:9/v1: Connection refused")
    assert isinstance(info.value.__cause__, LLMError)
    with pytest.raises(TaskError, match="^LLM failed writing the challenge"):
        _challenge(ScriptedEngine([boom]))


def test_strict_mode_fails_instead_of_falling_back(pool):
    llm = ScriptedEngine(["Where was it first found?", "It was found in a lake.", "", "", ""])
    with pytest.raises(TaskError, match="no acceptable challenge in 3 tries"):
        build_task("qa", llm, random.Random(0), datasets=pool, strict=True)


@pytest.mark.parametrize("text,reason", [
    ("", "empty"),
    ("?", "empty"),
    ("Hello! I'm an AI assistant, how can I help you today?", "speaks as the assistant"),
    ("I'm here to assist you with your homework.", "speaks as the assistant"),
    ("I'm your trusty science assistant! Who designed that tower?", "speaks as the assistant"),
    ("Hi! I'm your friendly history tutor. Who built the tower?", "speaks as the assistant"),
    ("I'm here to assist with the Eiffel Tower. Who designed it?", "speaks as the assistant"),
    ("I\u2019m here to assist! Who designed it?", "speaks as the assistant"),
    ("The Eiffel Tower! How can I help you today?", "speaks as the assistant"),
    ("Eiffel Tower, you say? How may I be of assistance today?", "speaks as the assistant"),
    ("Sure, happy to help. What do you want to know about the tower?", "speaks as the assistant"),
    ("What can I do for you regarding the Eiffel Tower?", "speaks as the assistant"),
    ("Who designed it? Let me know if you have any other questions!", "speaks as the assistant"),
    ("I'm trying to help my kid with homework: who designed the eiffel tower?", None),
    ("I'd like some help: who designed the Eiffel Tower?", None),
    ("I asked an AI assistant before and it was wrong. who designed the eiffel tower?", None),
    ("The human user, a tired parent, wants to know who built it.", "narrates the role-play"),
    ("The Eiffel Tower is a tower in Paris.", "asks for nothing"),
    ("who did it? Gustave Eiffel's company designed it.", "contains the reference verbatim"),
    ("You are a tired parent and you are using an AI assistant to get help answering a question",
     "echoes the role-play prompt"),
    ("who designed that tower in paris, the eiffel one?", None),
    ("Who designed the Eiffel Tower?", None),           # the query itself is not an echo
])
def test_rejection_reasons(text, reason):
    persona = Persona("parent", "tired", "casual")
    kw = dict(desc="get help answering a question", goal="the answer to the following question")
    instructions = role_prompt(persona, topic="", subtopic="", query="", **kw)
    assert rejection(text, reference="Gustave Eiffel's company designed it.",
                     query="Who designed the Eiffel Tower?", instructions=instructions) == reason


def test_role_prompt_echo_is_caught_even_without_assistant_words():
    persona = Persona("parent", "tired", "casual")
    kw = dict(desc="get help answering a question", goal="the answer to the following question")
    instructions = role_prompt(persona, topic="", subtopic="", query="", **kw)
    echo = ("This is a role-playing game. You are not an assistant: you are impersonating a human user, "
            "a tired parent.")
    assert rejection(echo, reference="x y", query="Who?", instructions=instructions) in (
        "narrates the role-play", "echoes the role-play prompt")
    words = "Your single goal is to get the answer to the following question, what do you want to know"
    assert rejection(words, reference="x y", query="Who?", instructions=instructions) == \
        "echoes the role-play prompt"


def test_a_reference_found_in_the_query_does_not_reject():
    # "34" is the answer and also appears in the problem: the challenge may repeat the problem.
    assert rejection("how do i do 34 - 0 = ?", reference="34", query="How can I solve 34 - 0 =?",
                     instructions="This is a role-playing game.") is None
    assert rejection("how do i do 24+10? is it 34?", reference="34", query="How can I solve 24+10=?",
                     instructions="This is a role-playing game.") == "contains the reference verbatim"


def test_math_challenge_must_keep_the_numbers(pool):
    llm = ScriptedEngine(["how do I solve this problem?", "what is 2+3? help"])
    ch = _challenge(llm, query="How can I solve the following problem, 2+3=?", reference="5",
                    keep=["2", "3"], tries=2)
    assert ch.text == "What is 2+3?" and ch.rejected == ["drops '2' from the query"]


# --- the scripted engine --------------------------------------------------------------------

def test_scripted_engine_is_an_engine_and_deterministic():
    llm = ScriptedEngine()
    assert isinstance(llm, Engine)
    msgs = [{"role": "user", "content": "Summarize.\n\n#Context:\nAlpha is first. Beta is second. "
                                        "Gamma is third. Delta is fourth."}]
    a = llm.chat(msgs, GenParams(seed=1))
    assert a == llm.chat(msgs, GenParams(seed=1)) == respond(msgs, GenParams(seed=1))
    assert all(s.strip() + ("" if s.strip().endswith(".") else ".") in msgs[0]["content"]
               for s in a.split(". "))
    outs = {llm.chat(msgs, GenParams(seed=s)) for s in range(20)}
    assert len(outs) > 1                                   # the seed matters
    other = [{"role": "user", "content": msgs[0]["content"].replace("Alpha", "Omega")}]
    assert any("Omega" in llm.chat(other, GenParams(seed=s)) for s in range(20))   # the prompt matters
    assert "".join(llm.stream(msgs, GenParams(seed=1))) == a
    assert len(llm.chat(msgs, GenParams(seed=1, max_tokens=3)).split()) <= 3


def test_scripted_stream_stops_when_cancelled():
    llm = ScriptedEngine(["one two three four five"])
    cancel = threading.Event()
    got = []
    for piece in llm.stream([{"role": "user", "content": "x"}], GenParams(), cancel):
        got.append(piece)
        if len(got) == 2:
            cancel.set()
    assert got == ["one", " two"]


def test_scripted_engine_through_the_llm_registry():
    from sn1 import llm as llm_layer
    engine = llm_layer.create("scripted", model_id=None, n_ctx=2048)
    assert isinstance(engine, ScriptedEngine)


def test_a_challenge_that_earns_the_answer_when_echoed_is_refused():
    """An echo miner must not score 1 by repeating the question back."""
    from sn1.rewards.spec import RewardSpec
    from sn1.tasks.definitions import answer_given_away

    maths = [RewardSpec("float_diff", 1.0)]
    assert answer_given_away(maths, "17", "Need a hand with 54-37, what is it?")
    assert answer_given_away(maths, "17", "What is 54 minus 37? I got 20.") is None
    dates = [RewardSpec("date", 1.0)]
    assert answer_given_away(dates, "7 June 1494", "Was the treaty signed on 7 June 1494 or later?")
    assert answer_given_away(dates, "7 June 1494", "When was the Treaty of Tordesillas signed?") is None
    assert answer_given_away([RewardSpec("diff", 1.0)], "x = 1", "x = 1") is None   # not an answer check


def test_built_maths_and_date_tasks_never_give_their_answer_away():
    """With an LLM that cannot play the user, the persona templates restate the problem
    ("Need a hand with 54-37, what is it?"): such tasks must be refused, not sent."""
    import random

    from sn1.rewards.pipeline import REWARD_MODELS
    from sn1.tasks import TaskError, build_task

    class Assistant:                     # answers every prompt as the assistant would
        name = "assistant"

        def chat(self, messages, params):
            return "I'm an AI assistant. How can I help you today?"

        def stream(self, messages, params, cancel=None):
            yield self.chat(messages, params)

    rng = random.Random(4)
    built = refused = 0
    for i in range(120):
        name = ("math", "date_qa")[i % 2]
        try:
            task = build_task(name, Assistant(), rng)
        except TaskError as e:
            refused += "gives the answer away" in str(e)
            continue
        built += 1
        model = {"math": "float_diff", "date_qa": "date"}[name]
        (echo,), _ = REWARD_MODELS[model](task.reference, [task.challenge], {})
        assert echo < 0.999, (task.challenge, task.reference)
    assert built >= 60 and refused >= 1


def test_echoing_a_maths_question_earns_nothing():
    """A number copied from the problem earns nothing (it used to earn partial credit, halved by a
    rouge penalty); a right answer that reuses the question's words keeps its full reward."""
    from sn1.rewards import score
    from sn1.tasks import TASKS

    spec = TASKS["math"]
    challenge = "My kid asked me: what is the third angle of a triangle with angles 55 and 41? Thanks"
    echo, answer = score(spec.rewards, spec.penalties, "84", challenge,
                         [challenge, "The third angle of the triangle is 84 degrees."]).total
    assert echo == 0.0          # float_diff reads "41", one of the challenge's numbers
    assert answer == 1.0
