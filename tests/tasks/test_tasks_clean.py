"""Cleaners for generated text and the debugging corruption."""

from __future__ import annotations

import random

import pytest

from sn1.tasks.clean import capitalise, clean, prune_ending, remove_roles, strip_quotes
from sn1.tasks.corrupt import UNITS, corrupt, restore


@pytest.mark.parametrize("raw,expected", [
    ('"What is the capital of France?"', "What is the capital of France?"),
    ("“Hello there.”", "Hello there."),
    ("'''Triple.'''", "Triple."),
    ('"a" and "b"', '"a" and "b"'),      # the quotes belong to the text
    ("unquoted", "unquoted"),
    ('"cut off before closing', "cut off before closing"),
    ('no opening quote."', "no opening quote."),
    ('a "quoted" word', 'a "quoted" word'),
])
def test_strip_quotes(raw, expected):
    assert strip_quotes(raw) == expected


@pytest.mark.parametrize("raw,expected", [
    ("User: hello", "hello"),
    ("Assistant: sure.", "sure."),
    ("#Question: Where is it?", "Where is it?"),
    ("## Answer: It is here.", "It is here."),
    ("**Assistant**: ok", "ok"),
    ("Dear AI, please help.", "please help."),
    ("Dear assistant: please help.", "please help."),
    ("User: Question: nested?", "nested?"),
    ("line one\nAssistant: line two", "line one\nline two"),
    ("America: a great country.", "America: a great country."),    # not a role
    ("Note the ratio: 3:1.", "Note the ratio: 3:1."),
])
def test_remove_roles(raw, expected):
    assert remove_roles(raw) == expected


@pytest.mark.parametrize("raw,expected", [
    ("One. Two. Three and th", "One. Two."),
    ("Done!", "Done!"),
    ("Is it? Maybe", "Is it?"),
    ('He said "stop." And then', 'He said "stop."'),
    ("no sentence end", "no sentence end"),
    ("Pi is 3.14 and e is 2.71", "Pi is 3.14 and e is 2.71"),   # decimal points do not end sentences
])
def test_prune_ending(raw, expected):
    assert prune_ending(raw) == expected


def test_capitalise_every_sentence_and_nothing_else():
    assert capitalise("the sky. is it blue? yes! iPhone stays") == "The sky. Is it blue? Yes! IPhone stays"
    assert capitalise('"quoted start. next') == '"Quoted start. Next'
    assert capitalise("keep McDonald and NASA.") == "Keep McDonald and NASA."


def test_clean_pipeline():
    raw = '"User: what year was it built? I think it was 1889 but the'
    assert clean(raw) == "What year was it built?"   # cut off before the closing quote
    assert clean('"Assistant: the tower is tall. it was built in 1889. and then"') == \
        "The tower is tall. It was built in 1889."
    assert clean("Question: which tower? Also tell me more", question=True) == "Which tower?"
    assert clean("") == "" and clean("   ") == ""


# --- corruption ---------------------------------------------------------------------------

CODE = '''def mean(values):
    """Average of a non-empty list."""
    total = 0
    for v in values:
        total += v
    return total / len(values)
'''


@pytest.mark.parametrize("unit", sorted(UNITS))
def test_corruption_always_changes_and_is_recoverable(unit):
    for seed in range(300):
        c = corrupt(CODE, random.Random(seed), unit=unit)
        assert c.corrupted != CODE and c.original == CODE
        assert restore(c) == CODE
        removes = [op for op in c.ops if op[0] == "remove"]
        swaps = [op for op in c.ops if op[0] == "swap"]
        assert 1 <= len(removes) <= 3 and len(swaps) <= 2
        assert all(op[2].strip() for op in removes)      # removed chunks are never blank


def test_corruption_counts_and_units_vary_with_the_seed():
    seen = {(c.unit, sum(o[0] == "remove" for o in c.ops), sum(o[0] == "swap" for o in c.ops))
            for c in (corrupt(CODE, random.Random(s)) for s in range(300))}
    assert {u for u, _, _ in seen} == set(UNITS)
    assert {r for _, r, _ in seen} == {1, 2, 3} and {s for _, _, s in seen} == {0, 1, 2}


def test_corruption_is_reproducible():
    assert corrupt(CODE, random.Random(9)) == corrupt(CODE, random.Random(9))


@pytest.mark.parametrize("code", ["ab", "x\ny", "one_word_only", "a b", "\n\nfoo\n\n"])
def test_tiny_code_still_changes(code):
    for seed in range(100):
        c = corrupt(code, random.Random(seed))
        assert c.corrupted != code and restore(c) == code


def test_empty_code_is_refused():
    with pytest.raises(ValueError):
        corrupt("  \n ", random.Random(0))
