"""The anti-gaming rules of issue 10 (README "Where we differ"), against values computed by hand.

Relevance's rules need the embedding model: tests/rewards/test_rewards_relevance_rules.py.
"""

from __future__ import annotations

import json
import math
import random

import numpy as np
import pytest

from sn1.chain.base import Hyperparams
from sn1.rewards import REWARD_MODELS, RewardSpec, score
from sn1.rewards import pipeline
from sn1.rewards import text as text_mod
from sn1.rewards.pipeline import SHARED_WINDOW_WORDS, _per_completion, copies
from sn1.rewards.relevance import MAX_WINDOWS, WINDOW_CHARS, windows
from sn1.rewards.text import conciseness, length_words, rouge, source_copy, tokens, word_reuse
from sn1.validator.weights import process_weights

REF = "the cat sat on the mat"
CHALLENGE = "where is the cat"
KB100 = 100_000
MB = 1_000_000


def filler(n_chars: int, word: str) -> str:
    return (word + " ") * (n_chars // (len(word) + 1))


# ---------------------------------------------------------------- rouge counts new words only
def test_rouge_counts_only_words_the_challenge_lacks():
    # challenge words (where, is, the, cat) removed: reference (sat, on, mat)
    assert rouge(REF, "the cat sat", "rouge-1", CHALLENGE) == pytest.approx(2 * 1 * (1 / 3) / (1 + 1 / 3))
    assert rouge(REF, REF, "rouge-1", CHALLENGE) == 1.0                       # the answer itself
    assert rouge(REF, CHALLENGE, "rouge-1", CHALLENGE) == 0.0                 # echo
    assert rouge(REF, "cat the is where", "rouge-1", CHALLENGE) == 0.0        # reordered echo
    assert rouge(REF, "Great question! Where is the cat? Hope it helps", "rouge-1", CHALLENGE) == 0.0
    assert rouge(REF, "cat cat cat where where", "rouge-l", CHALLENGE) == 0.0  # keyword bag
    # without a challenge: the spec's plain ROUGE (P = 1, R = 3/6)
    assert rouge(REF, "the cat sat", "rouge-1") == pytest.approx(2 / 3)
    # rouge-l: target (a, c, d, e), prediction (a, c, e): LCS 3 -> P = 1, R = 3/4, F = 6/7
    assert rouge("a b c d e", "a c e x", "rouge-l", "b x") == pytest.approx(6 / 7)


def test_rouge_reference_inside_the_challenge_falls_back_to_plain():
    # nothing of the reference is new: plain ROUGE, so a right answer still scores
    assert rouge("Paris", "Paris", "rouge-1", "is it Paris or Lyon?") == 1.0


def test_rouge_new_words_unicode_empty_and_large():
    # asked (où, est, le, café); target (au, lait, à, paris); prediction (à, paris, crème):
    # overlap 2: P = 2/3, R = 2/4 -> F = 4/7
    assert rouge("Café au lait à Paris", "café à PARIS crème", "rouge-1", "où est le café?") == pytest.approx(4 / 7)
    assert rouge(REF, "", "rouge-1", CHALLENGE) == 0.0
    assert rouge("", REF, "rouge-1", CHALLENGE) == 0.0
    for size in (KB100, MB):
        big = filler(size, "mat")
        n = size // 4
        # target (sat, on, mat), prediction mat x n: overlap 1 -> P = 1/n, R = 1/3
        expected = 2 * (1 / n) * (1 / 3) / (1 / n + 1 / 3)
        assert rouge(REF, big, "rouge-1", CHALLENGE) == pytest.approx(expected)
        assert rouge(REF, big, "rouge-l", CHALLENGE) == pytest.approx(expected)


# ---------------------------------------------------------------- source_copy
SOURCE = "the quick brown fox jumps over the lazy dog today"


def test_source_copy_by_hand():
    assert source_copy(SOURCE, SOURCE) == 1.0                   # 6 of 6 five-grams copied
    # (a quick brown fox jumps) (quick brown fox jumps over) (brown fox jumps over my)
    # (fox jumps over my dog): 1 of 4 copied -> share 0.25 -> (0.25 - 0.2) / 0.5 = 0.1
    assert source_copy(SOURCE, "a quick brown fox jumps over my dog") == pytest.approx(0.1)
    # the challenge's own 5-grams are free: 2 of the 6 -> share 4/6 -> (2/3 - 0.2) / 0.5
    assert source_copy(SOURCE, SOURCE, "the quick brown fox jumps over") == pytest.approx((4 / 6 - 0.2) / 0.5)
    assert source_copy(SOURCE, "a fox is quick and a dog is lazy") == 0.0   # written anew
    assert source_copy(SOURCE, "quick brown fox") == 0.0                    # under 5 words
    assert source_copy("", SOURCE) == 0.0                                   # no source
    assert source_copy(SOURCE, "") == 0.0


def test_source_copy_phrasing_judged_from_a_task_given_length():
    # date_qa: a one-sentence answer that restates the event with its date shares the source
    # sentence's 5-grams around the date; judged only from `phrasing_min_words` words.
    source = "The Treaty of Tordesillas, signed in Tordesillas, Spain on 7 June 1494, divided the new lands."
    challenge = "Do you know on which day the Treaty of Tordesillas, signed in Tordesillas, Spain?"
    answer = "The Treaty of Tordesillas, signed in Tordesillas, Spain on 7 June 1494."   # 12 words
    # 8 five-grams, 4 not in the challenge and in the source: share 0.5 -> (0.5 - 0.2) / 0.5
    assert source_copy(source, answer, challenge) == pytest.approx(0.6)
    assert source_copy(source, answer, challenge, phrasing_min_words=20) == 0.0
    # the source pasted (16 words, 12 five-grams, 4 of them the challenge's): judged from 16
    assert source_copy(source, source, challenge, phrasing_min_words=16) == pytest.approx((8 / 12 - 0.2) / 0.5)
    assert source_copy(source, source, challenge, phrasing_min_words=17) == 0.0


def test_invisible_characters_and_fullwidth_letters_do_not_disguise_a_copy():
    zw = "\u200b".join(SOURCE)                       # a zero-width space between every letter
    assert tokens(zw) == tokens(SOURCE)
    assert source_copy(SOURCE, zw) == 1.0
    soft = SOURCE.replace("o", "o\u00ad").replace("e", "\u2060e")   # soft hyphens, word joiners
    assert source_copy(SOURCE, soft) == 1.0
    full = "".join(chr(ord(c) + 0xFEE0) if "a" <= c <= "z" else c for c in SOURCE)   # ｔｈｅ ｑｕｉｃｋ ...
    assert tokens(full) == tokens(SOURCE) and source_copy(SOURCE, full) == 1.0
    # rouge reads a disguised text as the text: the reference with a zero-width joiner after
    # every "a" and a BOM before every word still matches the reference in full (0 without removal)
    disguised = REF.replace("a", "a\u200d").replace(" ", " \ufeff")
    assert rouge(REF, disguised, "rouge-1") == 1.0 and rouge(REF, disguised, "rouge-l") == 1.0
    # real letters, accents and scripts are kept
    assert tokens("Ça va, 東京タワー! Łódź") == ["ça", "va", "東京タワー", "łódź"]


def test_source_copy_unicode_and_large():
    src = "Ça va très bien merci beaucoup mon ami 東京 タワー"
    assert source_copy(src, src.upper()) == 1.0
    for size in (KB100, MB):
        assert source_copy(SOURCE, filler(size, "lorem")) == 0.0
        # the source repeated: per 10-word period 6 of 10 five-grams are the source's (the 4
        # across the seam are not) -> share 0.6 -> (0.6 - 0.2) / 0.5 = 0.8
        assert source_copy(SOURCE, filler(size, SOURCE)) == pytest.approx(0.8, abs=1e-3)


# ---------------------------------------------------------------- conciseness and windows
def test_conciseness_by_hand():
    assert conciseness(50, 100) == 1.0            # up to 2 x the reference
    assert conciseness(50, 200) == 0.5
    assert conciseness(10, 60) == 1.0             # at least 60 words
    assert conciseness(10, 120) == 0.5
    # depth: under 0.3 x the reference, in proportion
    assert conciseness(100, 30) == 1.0
    assert conciseness(100, 15) == pytest.approx(0.5)     # a one-line answer to a 100-word reference
    assert conciseness(100, 0) == 0.0
    assert conciseness(20, 3) == pytest.approx(0.5)
    assert conciseness(19, 1) == 1.0                      # "Paris" answers a short reference in full
    assert conciseness(0, 0) == 1.0
    assert length_words("日本語" * 1000) == 300    # a run without spaces: one word per 10 characters
    assert length_words("") == 0


def test_windows_cover_the_whole_text_within_bounds():
    assert windows("short text") == ["short text"]
    text = "word " * 1000                                  # 5000 characters
    parts = windows(text)
    assert len(parts) == 5 and all(len(p) <= WINDOW_CHARS for p in parts)
    big = filler(MB, "word")
    parts = windows(big)
    assert len(parts) == MAX_WINDOWS and all(len(p) <= WINDOW_CHARS for p in parts)
    assert windows("x" * MB)[0] == "x" * WINDOW_CHARS      # no spaces at all: cut anyway


# ---------------------------------------------------------------- isolation
@pytest.fixture
def fragile(monkeypatch):
    """A model that raises on "boom", returns NaN on "nan", 5 on "five", else 0.5."""
    def fn(reference, completion):
        if completion == "boom":
            raise RuntimeError("kaput\nwith a traceback line")
        return {"nan": math.nan, "five": 5.0}.get(completion, 0.5)
    monkeypatch.setitem(REWARD_MODELS, "fragile", _per_completion(fn))
    return RewardSpec("fragile", 0.5)


def test_one_completion_cannot_break_a_model_for_the_others(fragile, caplog):
    step = score([fragile, RewardSpec("diff", 0.5)], [], "ok", "", ["boom", "ok", "nan", "five"])
    m = step.models["fragile"]
    assert m.raw[0] == 0.0 and m.raw[1] == 0.5 and m.raw[3] == 0.0
    assert math.isnan(m.raw[2])
    assert set(m.errors) == {0, 2, 3}
    assert "RuntimeError: kaput with a traceback line" == m.errors[0]
    assert step.total[1] == pytest.approx(0.5 * 0.5 + 0.5 * 1.0)
    assert step.total[0] == pytest.approx(0.5 * step.models["diff"].raw[0])   # diff still counts
    event = step.to_event()
    json.dumps(event, allow_nan=False)
    assert {(e["model"], e["index"]) for e in event["reward_errors"]} == {("fragile", 0), ("fragile", 2),
                                                                          ("fragile", 3)}
    assert "completion 0 scores 0" in caplog.text


def test_a_batch_model_failing_on_one_text_is_retried_one_by_one(monkeypatch):
    def batch(reference, completions, options, challenge=""):
        if any("poison" in c for c in completions):
            raise ValueError("tokenizer choked")
        return [0.25] * len(completions), [0.0] * len(completions)
    monkeypatch.setitem(REWARD_MODELS, "batchy", batch)
    step = score([RewardSpec("batchy", 1.0)], [], "r", "", ["a", "poison", "b"])
    assert step.total == [0.25, 0.0, 0.25]
    assert step.models["batchy"].errors == {1: "ValueError: tokenizer choked"}


def test_oversize_and_invalid_unicode(monkeypatch):
    monkeypatch.setattr(pipeline, "MAX_COMPLETION_CHARS", 10)
    step = score([RewardSpec("diff", 1.0)], [], "abc", "", ["abc", "abc" * 10])
    assert step.total == [1.0, 0.0]
    assert step.models["diff"].errors[1].startswith("too long (30 characters")
    monkeypatch.undo()
    lone = "abc\ud800"           # a lone surrogate cannot be encoded as UTF-8
    step = score([RewardSpec("rouge", 0.5, {"ngram": "rouge-1"}), RewardSpec("diff", 0.5)],
                 [RewardSpec("rouge", 0.5)], "abc", "a\udfffquestion", [lone])
    assert 0.0 < step.total[0] <= 1.0 and not any(m.errors for m in step.models.values())
    json.dumps(step.to_event(), allow_nan=False).encode("utf-8")


def test_unknown_rouge_ngram_is_a_spec_error():
    with pytest.raises(ValueError, match="unknown ngram"):
        score([RewardSpec("rouge", 1.0, {"ngram": "rouge-9"})], [], "a", "b", ["a"])


# ---------------------------------------------------------------- identical completions share
def test_identical_completions_share_one_reward():
    long = "the cat sat on the mat and then it slept there all day long"   # 14 words
    assert copies([long, long.upper() + "  ", "x", "x", "a dog ran in the park and then it barked at every bird"]) \
        == [2, 2, 1, 1, 1]
    step = score([RewardSpec("diff", 1.0)], [], long, "", [long, long, " ".join(long.split()), "x", "x"])
    assert step.total[:3] == pytest.approx([1 / 3] * 3)      # a cabal of three earns one reward
    assert step.total[3] == step.total[4] == pytest.approx(step.models["diff"].raw[3])   # short: not shared
    assert step.to_event()["reward_copies"] == [3, 3, 3, 1, 1]


PASTE = ("the treaty of tordesillas was signed in the spanish town of tordesillas and it divided the "
         "newly discovered lands outside europe between the portuguese empire and the crown of castile "
         "along a meridian three hundred and seventy leagues west of the cape verde islands")   # 42 words, 40 3-grams


def test_near_identical_completions_are_one_text():
    # A sybil's nonce word: 40 of 42 3-grams shared (2 new) -> 0.95
    nonce = PASTE + " ref7731"
    # one word changed in the middle: 3 of 40 3-grams differ -> 37/40
    edited = PASTE.replace("divided", "split")
    # its own closing line of 8 words: 40 shared of 48 -> 0.83 (>= SHARED_OVERLAP, 0.75)
    closing = PASTE + " i hope this helps you with your question"
    # an answer written apart on the same subject shares almost no 3-grams
    other = ("in 1494 spain and portugal agreed at tordesillas to split the new world along a line in "
             "the atlantic so that lands west of it went to castile and lands east to portugal")
    assert copies([PASTE, nonce, edited, closing, other]) == [4, 4, 4, 4, 1]
    # half the text its own: 20 of 40 shared 3-grams... of the larger set (60): 0.33 -> apart
    half = " ".join(PASTE.split()[:22]) + " " + other
    assert copies([PASTE, half]) == [1, 1]
    # invisible characters and fullwidth letters do not make a copy another text
    disguised = PASTE.replace("a", "a\u200b").replace("t", "\uff54")
    assert copies([PASTE, disguised]) == [2, 2]


def test_copies_of_empty_and_one_megabyte_completions():
    mb = " ".join(["tordesillas"] + PASTE.split() * 4000)          # ~1 MB, 168,000 words
    assert len(mb) > 1_000_000
    assert copies(["", "", "  ", mb, mb + " nonce", "\udfff"]) == [1, 1, 1, 2, 2, 1]


def test_one_step_tokenizes_each_text_once(monkeypatch):
    # rouge (reward and penalty), source_copy and the copies check all read the completions'
    # words; inside score() each distinct text goes through the tokenizer once.
    seen = []
    real = text_mod._TOKENIZER.tokenize
    monkeypatch.setattr(text_mod._TOKENIZER, "tokenize", lambda t: seen.append(t) or real(t))
    comps = [PASTE, PASTE + " nonce", "a short answer of a few words here and there ok"]
    step = score([RewardSpec("rouge", 1.0, {"ngram": "rouge-1"})],
                 [RewardSpec("rouge", 0.5, {"ngram": "rouge-1"}), RewardSpec("source_copy", 1.0)],
                 "the treaty divided the new lands", "when was the treaty signed?", comps, source=PASTE)
    assert step.copies == [2, 2, 1]
    assert all(seen.count(c) == 1 for c in comps)
    assert text_mod._STEP_TOKENS.get() is None          # the cache is gone after the step
    seen.clear()
    tokens(PASTE), tokens(PASTE)
    assert seen.count(PASTE) == 2                        # outside a step nothing is kept
    # a block around score() (the validator's lookup, then the rewards) keeps one cache
    seen.clear()
    with text_mod.tokenized_once():
        tokens(PASTE)
        score([RewardSpec("rouge", 1.0, {"ngram": "rouge-1"})], [], "the treaty", "", [PASTE])
        assert text_mod._STEP_TOKENS.get() is not None
    assert seen.count(PASTE) == 1 and text_mod._STEP_TOKENS.get() is None


def test_restating_the_challenge_alike_is_not_one_text():
    # Two short answers that restate the question the same way and add different content:
    # the challenge's 3-grams are left out, what remains differs.
    restated = ("the treaty of tordesillas signed in tordesillas spain by the two crowns of castile "
                "and portugal to divide the new lands")                    # 20 words, 18 3-grams
    challenge = f"when was {restated}?"
    a = restated + " dates from june 1494"        # 18 of 22 3-grams shared: 0.82
    b = restated + " was agreed that summer"
    assert copies([a, b]) == [2, 2]                # without the challenge they would share a reward
    assert copies([a, b], challenge) == [1, 1]


def test_copies_are_joined_transitively_and_bounded(monkeypatch):
    # a ~ b and b ~ c join all three, though a and c alone are apart by 3-grams: three words
    # edited change 9 of 40 3-grams (31/40 = 0.775 shared); six change 18 (22/40 = 0.55)
    words = PASTE.split()
    a = " ".join(words)
    b = " ".join(f"x{i}" if i in (5, 15, 25) else w for i, w in enumerate(words))
    c = " ".join(f"y{i}" if i in (10, 20, 30) else w for i, w in enumerate(b.split()))
    assert copies([a, c]) == [2, 2]             # ... but 36 of 42 words in order: one text edited
    with monkeypatch.context() as m:
        m.setattr(pipeline, "SHARED_EDIT_MIN_WORDS", 10**6)     # 3-grams only
        assert copies([a, c]) == [1, 1]
        assert copies([a, b, c]) == [3, 3, 3]
    # only the first SHARED_WINDOW_WORDS words are read: a shared 1,000-word head is one text
    head = " ".join(f"w{i}" for i in range(SHARED_WINDOW_WORDS))
    assert copies([head + " tail one " * 3000, head + " other end " * 3000]) == [2, 2]


def test_copies_of_fifty_large_completions():
    # 50 completions of 5,000 words (1 MB in all): all apart, and each 3-gram set is cut to the
    # window (its cost is in benchmarks/scoring.py)
    rnd = random.Random(0)
    vocab = [f"w{i}" for i in range(5000)]
    big = [" ".join(rnd.choices(vocab, k=5000)) for _ in range(50)]
    assert copies(big) == [1] * 50
    assert copies(big + [big[7] + " nonce"]) == [1] * 7 + [2] + [1] * 42 + [2]


# ---------------------------------------------------------------- weights
def test_weights_are_sharpened_before_normalising():
    # scores [1, 2]: scaled [0.5, 1], cubed [0.125, 1] -> [1/9, 8/9]
    uids, w = process_weights(np.array([1.0, 2.0]), Hyperparams())
    assert uids == [0, 1] and w == pytest.approx([1 / 9, 8 / 9])
    uids, w = process_weights(np.array([1.0, 2.0]), Hyperparams(), sharpen=1.0)
    assert w == pytest.approx([1 / 3, 2 / 3])
    # tiny scores do not underflow: the ordering survives
    uids, w = process_weights(np.array([1e-120, 2e-120, 0.0]), Hyperparams())
    assert uids == [0, 1] and w == pytest.approx([1 / 9, 8 / 9])
    # the chain's cap still holds after sharpening
    uids, w = process_weights(np.array([1.0, 2.0, 3.0]), Hyperparams(max_weight_limit=0.5))
    assert max(w) <= 0.5 + 1e-9 and sum(w) == pytest.approx(1.0)


# ---------------------------------------------------------------- task side
def test_a_maths_challenge_holding_its_answer_is_refused():
    from sn1.tasks.definitions import answer_given_away

    maths = [RewardSpec("float_diff", 1.0)]
    assert "one of the challenge's numbers" in answer_given_away(maths, "4", "what's the GCD of 12 and 4?")
    assert answer_given_away(maths, "17", "What is 54 minus 37? I got 20.") is None


# ---------------------------------------------------------------- word reuse (edited pastes)
WORDS30 = ("amber basalt cobalt dagger ember falcon garnet harbor indigo jasper kestrel lantern meadow nectar "
           "obsidian pepper quartz raven saffron timber umber velvet willow xenon yarrow zephyr acorn bramble "
           "cinder thistle").split()
DOC = "The " + " and the ".join(WORDS30) + "."       # 30 content words, function words between


def _swap(w: str) -> str:
    return w[0] + w[2] + w[1] + w[3:]


def test_word_reuse_by_hand():
    assert word_reuse(DOC, " ".join(reversed(WORDS30))) == 1.0              # reordered
    typos = [(_swap(w) if i % 3 == 2 else w) for i, w in enumerate(WORDS30)]
    assert word_reuse(DOC, " ".join(typos)) == 1.0                          # one typo in every third word
    dropped = [w[:-1] if i % 2 else w for i, w in enumerate(WORDS30)]      # a letter dropped
    assert word_reuse(DOC, " ".join(dropped)) == 1.0
    new = [f"novel{chr(97 + i)}" for i in range(8)]                         # 8 words no edit turns into DOC's
    assert word_reuse(DOC, " ".join(WORDS30[:12] + new)) == pytest.approx(12 / 20)
    assert word_reuse(DOC, " ".join(WORDS30[:21] + new[:3])) == pytest.approx(21 / 24)
    # function words and the challenge's words are not counted; under 15 content words: 0
    assert word_reuse(DOC, " the of and ".join(WORDS30[:14])) == 0.0
    assert word_reuse(DOC, " ".join(WORDS30[:20]), challenge=" ".join(WORDS30[:6])) == 0.0   # 14 left
    assert word_reuse(DOC, " ".join(WORDS30[:21]), challenge=" ".join(WORDS30[:6])) == 1.0   # 15 left
    # clipped counts: repeating the document's one "amber" 20 times reuses it once
    assert word_reuse(DOC, "amber " * 20) == pytest.approx(1 / 20)
    # words under 4 letters match exactly only: "owl" is not "own"
    assert word_reuse("owl " * 25 + DOC, "own " * 25) == 0.0


def test_source_copy_counts_word_reuse_per_document():
    edited = " ".join(reversed([(_swap(w) if i % 3 == 2 else w) for i, w in enumerate(WORDS30)]))
    assert source_copy(DOC, edited) == 1.0                     # no 5-gram survives; reuse 1.0
    new = [f"novel{chr(97 + i)}" for i in range(3)]
    # 21 of 24 content words: reuse 0.875 -> (0.875 - 0.75) / 0.2
    assert source_copy(DOC, " ".join(WORDS30[:21] + new)) == pytest.approx((21 / 24 - 0.75) / 0.2)
    # the same words split over two documents of the source: each holds half, no penalty
    half = "The " + " and the ".join(WORDS30[:15]) + "."
    other = "The " + " and the ".join(WORDS30[15:]) + "."
    assert source_copy(half + "\f" + other, " ".join(reversed(WORDS30))) == 0.0
    assert source_copy(half + "\n\n" + other, " ".join(reversed(WORDS30))) == 1.0   # one document


def test_word_reuse_unicode_and_large():
    pl = "zażółć gęślą jaźń źdźbło łąka pszczoła chrząszcz żółw źrebię ćma".split()
    doc = " i ".join(pl * 3)
    text = " ".join((_swap(w) if i % 3 == 0 else w) for i, w in enumerate(pl * 2 + pl[:2]))   # 22 words
    assert word_reuse(doc, text) == pytest.approx(21 / 22)   # "ćam": under 4 letters, no typo allowed
    assert word_reuse(doc, text.replace("ćam", "ćma")) == 1.0
    assert word_reuse(doc, "") == 0.0 and word_reuse("", text) == 0.0
    kb100 = " ".join(reversed(WORDS30)) + " " + "filler " * 14_500          # ~100 kB: 14,530 words
    assert word_reuse(DOC, kb100) == pytest.approx(30 / 1000)                # judged on the first 1,000
    big = " ".join(reversed(WORDS30)) + " " + "filler " * 200_000           # ~1.4 MB
    assert word_reuse(DOC, big) == pytest.approx(30 / 1000)
    assert source_copy(DOC, big) == 0.0


LONG = ("the treaty of tordesillas was signed in the spanish town of tordesillas in june 1494 and it divided "
        "the newly discovered lands outside europe between the portuguese empire and the crown of castile "
        "along a meridian three hundred and seventy leagues west of the cape verde islands which lay off "
        "the west coast of africa and portugal soon found that brazil lay east of the line")   # 65 words


def _swap_pairs(t: str, every: int) -> str:
    w = t.split()
    for i in range(0, len(w) - 1, every):
        w[i], w[i + 1] = w[i + 1], w[i]
    return " ".join(w)


def _every(t: str, every: int, fn) -> str:
    return " ".join(fn(w) if i % every == every - 1 else w for i, w in enumerate(t.split()))


@pytest.mark.parametrize("edit", [
    lambda t: _swap_pairs(t, 6),                                   # 3-grams kept: 0.38 (was its own text)
    lambda t: _swap_pairs(t, 2),                                   # every pair swapped: 3-grams 0
    lambda t: _every(t, 5, lambda w: "quite"),               # every 5th word changed
    lambda t: _every(t, 4, lambda w: w + " indeed"),         # a word added every 4th
    lambda t: _every(t, 4, lambda w: ""),                    # every 4th word dropped
])
def test_a_copy_edited_all_through_is_one_text(edit):
    edited = edit(LONG)
    assert copies([LONG, edited]) == [2, 2]
    step = score([RewardSpec("rouge", 1.0, {"ngram": "rouge-1"})], [], LONG, "", [LONG, edited])
    assert step.total[0] == pytest.approx(step.models["rouge-1"].raw[0] / 2)


def test_answers_written_apart_on_one_subject_are_not_one_text():
    other = ("in 1494 spain and portugal agreed at tordesillas to split the new world along a line drawn "
             "through the atlantic ocean so that the lands west of it went to castile while lands to the east "
             "went to portugal which is why brazil speaks portuguese today unlike the rest of south america")
    assert copies([LONG, other]) == [1, 1]
    # the same words as the question, in the question's order, are not held against either
    assert copies([LONG, other], challenge=LONG) == [1, 1]


def test_two_correct_fixes_explained_apart_are_two_answers():
    """The debugging task's answer is mostly the challenge's code: the edit rules leave the
    challenge's words out (as 3-grams do), so two miners who both fix the code are not one text."""
    code = "\n".join(f"def step_{i}(values, limit):\n    total = sum(v for v in values if v < limit)\n"
                     f"    return total * {i}" for i in range(8))
    broken = code.replace("v < limit", "v > limit", 1)
    challenge = f"Find and fix the bug:\n```python\n{broken}\n```"
    a = f"The comparison in step_0 is reversed; values under the limit count.\n```python\n{code}\n```"
    b = f"Here is the corrected program, the first filter had its sign flipped:\n```python\n{code}\n```"
    assert copies([a, b], challenge) == [1, 1]
    assert copies([a, b]) == [2, 2]       # without the challenge, the shared code is one text
