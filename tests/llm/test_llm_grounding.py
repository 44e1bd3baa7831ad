"""Grounding: a date question looked up in the offline encyclopedia, the fact handed to the model."""

from __future__ import annotations

import random
from types import SimpleNamespace as NS

import pytest

from sn1.datasets.wiki_offline import dated_events
from sn1.llm.base import GenParams
from sn1.miner.backends.llm import LlamaCppMiner
from sn1.miner.grounding import MAX_QUESTION_CHARS, DateFacts, Fact, grounded
from sn1.tasks.definitions import _reword_event

from .conftest import Recorder

ARAB_LEAGUE = "22 March 1945"


@pytest.fixture(scope="module")
def facts():
    return DateFacts.offline()


def test_every_offline_date_question_finds_its_own_fact(facts):
    # The validator's own question forms (sn1/tasks/definitions.py): never a wrong fact, and
    # the plain form always finds the right one.
    rng = random.Random(0)
    found = wrong = 0
    events = dated_events()
    for _title, event, date, _sentence in events:
        assert facts.find(f"{event} on what exact date?").date == date
        for _ in range(2):
            fact = facts.find(_reword_event(event)(rng))
            found += fact is not None
            wrong += fact is not None and fact.date != date
    assert wrong == 0
    assert found >= 0.95 * 2 * len(events)


@pytest.mark.parametrize("question", [
    "When was the Arab League formed in Cairo? I need the exact day.",
    "hey!! when exactly was the arab league formed in cairo??? thanks",
    "ＷＨＥＮ was the Ａｒａｂ Ｌｅａｇｕｅ formed in Cairo?",          # fullwidth letters
])
def test_a_reworded_question_finds_its_fact(facts, question):
    assert facts.find(question).date == ARAB_LEAGUE


@pytest.mark.parametrize("question", [
    "What is the capital of France?",                            # not a date question
    "The Arab League was formed in Cairo. Write a poem about it.",   # names the event, asks no date
    "When was Napoleon born?",                                   # a date question the facts do not hold
    "When did the league form?",                                 # too few words to tell which
    "what date is it today?",
    "",
    "when " * 100_000,                                           # 500 kB of one word
    "When? " + "日本語のテキスト" * 1000,
])
def test_no_fact_for_other_questions(facts, question):
    assert facts.find(question) is None


def test_only_the_head_of_a_long_message_is_read(facts):
    question = "When was the Arab League formed in Cairo?"
    assert facts.find(question + " x" * 100_000).date == ARAB_LEAGUE
    assert facts.find("x" * MAX_QUESTION_CHARS + question) is None


def test_grounded_puts_the_fact_after_the_last_user_message_and_keeps_the_input():
    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "first"},
            {"role": "assistant", "content": "A"}, {"role": "user", "content": "When?"}]
    out = grounded(msgs, Fact("T", "It happened.", "1 May 1900"))
    assert out[-1] == {"role": "user", "content": "When?\n\nFact: It happened on 1 May 1900.\n"
                                                  "Answer in one short sentence with the exact date."}
    assert out[:3] == msgs[:3] and msgs[-1]["content"] == "When?"


def config(grounding):
    return NS(wandb=NS(on=False), neuron=NS(grounding=grounding))


async def _ask(miner, question, **params):
    gen = miner.generate([{"role": "user", "content": question}], GenParams(max_tokens=4, **params))
    return "".join([p async for p in gen])


async def test_the_llm_miner_asks_its_model_with_the_fact(llama_engine):
    rec = Recorder(llama_engine)
    miner = LlamaCppMiner(config("offline"), engine=rec)
    await _ask(miner, "When was the Arab League formed in Cairo?")
    await _ask(miner, "What is the capital of France?")
    assert rec.messages[0][-1]["content"].startswith(
        f"When was the Arab League formed in Cairo?\n\nFact: The Arab League was formed in Cairo on {ARAB_LEAGUE}.")
    assert rec.messages[1][-1]["content"] == "What is the capital of France?"


async def test_no_grounding_when_off_or_when_logprobs_are_asked(llama_engine):
    # A verified answer is checked token by token against the caller's prompt: never changed.
    rec = Recorder(llama_engine)
    question = "When was the Arab League formed in Cairo?"
    await _ask(LlamaCppMiner(config("off"), engine=rec), question)
    await _ask(LlamaCppMiner(config("offline"), engine=rec), question, logprobs=1)
    assert [m[-1]["content"] for m in rec.messages] == [question, question]
