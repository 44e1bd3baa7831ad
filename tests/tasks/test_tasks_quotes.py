"""Quoted public articles: the index (sn1.datasets.quotes) and what source_copy is given (sn1.tasks.material)."""

from __future__ import annotations

import random

import pytest

from sn1.datasets import Context
from sn1.datasets.quotes import QuoteIndex, quote_index, words
from sn1.datasets.wiki_offline import articles
from sn1.rewards import score
from sn1.rewards.spec import RewardSpec
from sn1.tasks.base import Task
from sn1.tasks.definitions import TASKS
from sn1.tasks.material import copy_source

DOCS = [
    {"title": "Owl", "extract": "The barn owl hunts small rodents at night across open farmland and marshes."},
    {"title": "Fox", "extract": "The red fox is the largest of the true foxes and lives across the northern hemisphere."},
    {"title": "Heron", "extract": "The grey heron wades in shallow water and spears fish with its long sharp bill."},
]
SET_PHRASE = "according to the national survey of"   # in four articles: a set phrase, not a quote
DOCS += [{"title": f"Survey {i}", "extract": f"{SET_PHRASE} {w} results were published later"}
         for i, w in enumerate(["birds", "trees", "rivers", "soils"])]


@pytest.fixture(scope="module")
def index():
    return QuoteIndex(DOCS)


def test_a_pasted_article_is_found(index):
    assert [d["title"] for d in index.quoted(DOCS[1]["extract"])] == ["Fox"]


def test_a_quote_inside_other_text_is_found(index):
    text = "Well, here is what I know. the grey heron wades in shallow water and spears fish. Hope it helps!"
    assert [d["title"] for d in index.quoted(text)] == ["Heron"]


def test_fewer_than_three_shared_five_grams_is_not_a_quote(index):
    # "the barn owl hunts small rodents" shares 2 five-grams with Owl
    assert index.quoted("yes the barn owl hunts small rodents, I think") == []
    assert index.quoted("the barn owl hunts small rodents at") != []   # 3 five-grams


def test_an_answer_written_anew_quotes_nothing(index):
    assert index.quoted("Foxes are clever canids; the red one is the biggest and lives in the north.") == []
    assert index.quoted("") == []
    assert index.quoted("owl") == []


def test_set_phrases_point_at_no_article(index):
    assert index.quoted(f"{SET_PHRASE} something else entirely, or so they say") == []
    # each survey article: 7 five-grams, of which the 2 inside the set phrase are dropped
    assert len(index) == sum(len(words(d["extract"])) - 4 for d in DOCS[:3]) + 4 * (7 - 2)


def test_most_quoted_article_first_and_limit(index):
    text = DOCS[2]["extract"] + " " + " ".join(DOCS[0]["extract"].split()[:8])
    assert [d["title"] for d in index.quoted(text)] == ["Heron", "Owl"]
    assert [d["title"] for d in index.quoted(text, limit=1)] == ["Heron"]


def test_case_punctuation_and_unicode_do_not_hide_a_quote(index):
    shouted = DOCS[1]["extract"].upper().replace(" ", " ... ")
    assert [d["title"] for d in index.quoted(shouted)] == ["Fox"]
    uni = QuoteIndex([{"title": "Łódź", "extract": "Łódź jest trzecim co do wielkości miastem w Polsce i leży w centrum kraju"}])
    assert [d["title"] for d in uni.quoted("Wiem: łódź jest trzecim co do wielkości miastem w Polsce.")] == ["Łódź"]


def test_huge_texts_are_looked_up_quickly(index):
    text = ("zebra " * 200_000) + DOCS[0]["extract"]   # 1.2 MB; the quote is past MAX_TEXT_CHARS
    assert index.quoted(text) == []
    assert [d["title"] for d in index.quoted(DOCS[0]["extract"] + " zebra" * 200_000)] == ["Owl"]


# --- the real offline encyclopedia ------------------------------------------------------------

@pytest.fixture(scope="module")
def encyclopedia():
    return quote_index()


def test_every_sampled_article_and_its_head_is_found(encyclopedia):
    arts = [a for a in articles() if len(a["extract"].split()) >= 60]
    for art in random.Random(3).sample(arts, 50):
        assert art in encyclopedia.quoted(art["extract"])
        assert art in encyclopedia.quoted(" ".join(art["extract"].split()[:60]))


def _task(name: str, content: str, challenge: str = "who is Frédéric Chopin?", reference: str = "") -> Task:
    spec = TASKS[name]
    ctx = Context(title="Nocturnes (Chopin)", topic="Music", subtopic="Music", content=content)
    return Task(name, "", "", "", reference or "Chopin was a Polish composer and pianist of the Romantic era.",
                challenge, {}, ctx, list(spec.rewards), list(spec.penalties))


def _article(title: str) -> dict:
    return next(a for a in articles() if a["title"] == title)


def test_copy_source_adds_the_related_article_a_completion_pasted():
    chopin = _article("Frédéric Chopin")["extract"]
    own = "The Nocturnes are 21 short pieces for solo piano written by Frédéric Chopin between 1827 and 1846."
    task = _task("qa", own)
    source = copy_source(task, ["Chopin wrote waltzes.", chopin])
    assert source.startswith(own) and chopin in source
    assert copy_source(task, ["Chopin was a Polish composer who wrote mostly for the piano."]) == own
    # tasks without a source_copy penalty get their own material only
    assert copy_source(_task("generic_instruction", own), [chopin]) == own


def test_pasting_a_related_article_scores_zero_an_answer_keeps_its_reward():
    chopin = _article("Frédéric Chopin")["extract"]
    own = "The Nocturnes are 21 short pieces for solo piano written by Frédéric Chopin between 1827 and 1846."
    task = _task("qa", own)
    answer = "Frédéric Chopin was a Polish composer and pianist of the Romantic era who wrote mainly for piano."
    completions = [chopin, " ".join(chopin.split()[:60]), answer]
    before = score(task.rewards, task.penalties, task.reference, task.challenge, completions, own)
    after = score(task.rewards, task.penalties, task.reference, task.challenge, completions,
                  copy_source(task, completions))
    assert before.total[0] > 0 and before.total[1] > 0        # the task's own source misses them
    assert after.total[0] == 0.0 and after.total[1] == 0.0     # copied: source_copy 1.0
    assert after.total[2] == pytest.approx(before.total[2]) and after.total[2] > 0.3


def test_copy_source_without_the_encyclopedia_is_the_tasks_own(monkeypatch):
    import sn1.datasets.quotes as quotes
    from sn1.datasets import DatasetError

    def missing():
        raise DatasetError("offline encyclopedia missing")

    monkeypatch.setattr(quotes, "quote_index", lambda tokenize=None: missing())
    task = _task("qa", "own material")
    assert copy_source(task, [_article("Frédéric Chopin")["extract"]]) == "own material"


def test_a_source_model_sees_every_quoted_article_once():
    spec = TASKS["qa"]
    chopin = _article("Frédéric Chopin")["extract"]
    task = _task("qa", chopin)   # the completion pastes the task's own article: not added twice
    assert copy_source(task, [chopin, chopin]) == chopin
    assert any(p == RewardSpec("source_copy", 1.0) for p in spec.penalties)


def test_a_disguised_paste_is_still_found():
    chopin = _article("Frédéric Chopin")["extract"]
    disguised = " ".join("\u200b".join(w) for w in chopin.split())   # zero-width spaces inside every word
    task = _task("qa", "own material")
    source = copy_source(task, [disguised])
    assert chopin in source
    total = score(task.rewards, task.penalties, task.reference, task.challenge, [disguised], source).total
    assert total == [0.0]


def test_about_finds_the_article_an_edited_paste_came_from(index):
    shuffled = " ".join(reversed(DOCS[2]["extract"].split()))     # no 5-gram left
    assert index.quoted(shuffled) == []
    assert [d["title"] for d in index.about(shuffled)] == ["Heron"]
    # rare words spread over several articles: none holds half their weight
    assert index.about("barn rodents foxes hemisphere heron spears") == []
    assert index.about("") == [] and index.about("zebra quagga okapi") == []


def test_copy_source_adds_the_article_a_long_edited_paste_is_about():
    chopin = _article("Frédéric Chopin")["extract"]
    edited = " ".join(w[0] + w[2] + w[1] + w[3:] if i % 3 == 2 and len(w) > 3 else w
                      for i, w in enumerate(chopin.split()))     # a typo in every third word
    task = _task("qa", "own material")
    source = copy_source(task, [edited])
    assert chopin in source.split("\f")
    assert score(task.rewards, task.penalties, task.reference, task.challenge, [edited], source).total == [0.0]


def test_date_answers_keep_credit_a_short_snippet_of_the_article_does_not():
    toyota = _article("Toyota")["extract"]
    assert "August 28, 1937" in toyota
    challenge = "what's the exact date Toyota was founded by Kiichiro Toyoda and incorporated? asap pls"
    task = _task("date_qa", "Toyota was founded by Kiichiro Toyoda and incorporated", challenge, "August 28, 1937")
    snippet = " ".join(w for i, w in enumerate(toyota.split()[:48]) if i % 4 != 3)   # 4th words dropped
    answers = [
        "August 28, 1937.",
        "Sure! Toyota was founded by Kiichiro Toyoda and officially incorporated on August 28, 1937. "
        "Let me know if you need anything else.",
        "Toyota Motor Corporation was founded by Kiichiro Toyoda and incorporated on August 28, 1937, in "
        "Koromo, Aichi, Japan, as a spin-off from his father's company, Toyoda Automatic Loom Works.",
    ]
    comps = [snippet, *answers]
    result = score(task.rewards, task.penalties, task.reference, task.challenge, comps, copy_source(task, comps))
    assert result.models["penalty:source_copy"].raw[0] == 1.0 and result.total[0] == 0.0
    assert result.models["penalty:source_copy"].raw[1:] == [0.0, 0.0, 0.0]
    # the date rule's focus alone: full credit to 20 words, 22 words -> (45 - 22) / 25
    assert result.total[1] == 1.0 and result.total[2] == pytest.approx(23 / 25) and result.total[3] > 0.3
