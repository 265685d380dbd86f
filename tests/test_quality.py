"""Reasoning-quality metrics on small known inputs, and the report on rows where the answer is known."""

import numpy as np
import pytest
from reasoning_infused.analysis.quality import (
    content_words,
    distinct_n,
    emotional_cue,
    grounding,
    las,
    quality_report,
    quotes_cue,
)


def test_words_cue_and_grounding():
    assert content_words("I am feeling so Lonely and sad today") == ["lonely", "sad", "today"]
    assert emotional_cue("i feel so very lonely tonight, and i felt abandoned") == ["lonely", "abandoned"]
    assert emotional_cue("no cue here") == []
    assert grounding("i feel lonely tonight", "Lonely people are sad.") == pytest.approx(1 / 3)  # lonely of 3
    assert grounding("text", "it is.") is None  # no content word
    assert quotes_cue("i feel so lonely", "They are lonely.") is True
    assert quotes_cue("i feel so lonely", "Joy is a feeling.") is False
    assert quotes_cue("nothing to quote", "anything") is None
    assert distinct_n(["a b a b", "a b"], 1) == pytest.approx(2 / 6)
    assert distinct_n(["a b a b", "a b"], 2) == pytest.approx(2 / 4)


def test_las_averages_the_leaking_and_non_leaking_gains():
    with_r = np.array([1, 1, 1, 1, 0, 1], dtype=bool)
    text = np.array([0, 0, 1, 1, 0, 0], dtype=bool)
    leaks = np.array([1, 1, 0, 0, 0, 0], dtype=bool)
    # leaking rows: 1.0 - 0.0 = 1.0; others: 0.75 - 0.5 = 0.25 -> mean 0.625
    assert las(with_r, text, leaks) == pytest.approx(0.625)
    assert las(with_r[2:], text[2:], leaks[2:]) == pytest.approx(0.25)  # no leaking rows: one group


# a code word per label: informative about the label without naming an emotion
CODES = {
    "sadness": "alpha",
    "joy": "bravo",
    "love": "charlie",
    "anger": "delta",
    "fear": "echo",
    "surprise": "fox",
}


def _rows(n, reasoning_of, first_id=0):
    rng = np.random.default_rng(0)
    filler = [
        "the day was long",
        "we went out",
        "it was monday",
        "after work",
        "at the station",
        "with friends",
    ]
    labels = ["sadness", "joy", "love", "anger", "fear", "surprise"]
    rows = []
    for i in range(n):
        lab = labels[i % 6]
        text = (
            f"{filler[rng.integers(6)]} {filler[rng.integers(6)]} item{first_id + i}"  # the text says nothing
        )
        rows.append({"text": text, "label": lab, "reasoning": reasoning_of(lab, i)})
    return rows


def test_report_tells_informative_from_uninformative_reasonings():
    informative = quality_report(
        _rows(240, lambda lab, i: f"the code is {CODES[lab]}"), bootstrap_samples=200
    )
    echo_rows = _rows(240, lambda lab, i: "")
    for r in echo_rows:
        r["reasoning"] = r["text"]  # the reasoning repeats the text
    echo = quality_report(echo_rows, bootstrap_samples=200)
    assert informative["leaks_gold"] == 0.0  # code words are not emotion words: no leakage, yet informative
    assert informative["informativeness"]["las"] > 0.5 and informative["informativeness"]["las_ci"][0] > 0.4
    assert abs(echo["informativeness"]["las"]) < 0.1
    assert echo["grounding"] == 1.0 and informative["grounding"] == 0.0  # all of its words are the text's
    constant = quality_report(_rows(60, lambda lab, i: "the day was long"), bootstrap_samples=50)
    assert constant["most_frequent"][0] == {"reasoning": "the day was long", "count": 60}
    assert constant["distinct_2"] < echo["distinct_2"]
    leaky = quality_report(_rows(60, lambda lab, i: f"this is {lab}"), bootstrap_samples=50)
    assert leaky["leaks_gold"] == 1.0 and leaky["informativeness"]["groups"]["not_leaking"]["n"] == 0
    with pytest.raises(ValueError, match="row 0: unknown label 'bored'"):
        quality_report([{"text": "x", "label": "bored", "reasoning": "y"}])
    with pytest.raises(ValueError, match="row 0: missing reasoning"):
        quality_report([{"text": "x", "label": "joy"}])


def test_test_rows_use_a_simulator_trained_on_training_rows():
    train = _rows(240, lambda lab, i: f"the code is {CODES[lab]}")
    test = _rows(60, lambda lab, i: f"the code is {CODES[lab]}", first_id=1000)
    inf = quality_report(test, train, bootstrap_samples=100)["informativeness"]
    assert "trained on 240 training rows" in inf["simulator"] and inf["las"] > 0.5


def test_overlap_with_a_reference_rationale():
    from reasoning_infused.analysis.quality import rouge_l, token_f1

    assert token_f1("the cat sat", "the cat sat") == 1.0
    assert token_f1("a b", "c d") == 0.0 and token_f1("", "x") == 0.0
    assert token_f1("the cat", "the cat sat down") == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert rouge_l("the cat sat", "the cat sat") == 1.0
    # LCS of "a b c d" and "a c d e" is "a c d" (3): P = 3/4, R = 3/4
    assert rouge_l("a b c d", "a c d e") == pytest.approx(0.75)
    assert rouge_l("d c b a", "a b c d") == pytest.approx(0.25)  # order matters, unlike token F1
    assert token_f1("d c b a", "a b c d") == 1.0


@pytest.mark.slow
def test_heldout_generator_report_on_the_smoke_generator(smoke_study):
    from reasoning_infused.analysis.quality import heldout_generator_report

    r = heldout_generator_report(smoke_study["profile"], bootstrap_samples=50)
    assert r["rows"] == smoke_study["profile"].generator.heldout_size  # the held-out triples, all of them
    assert set(r["sources"]) <= {"ecqa", "esnli"}
    assert 0 <= r["token_f1_ci"][0] <= r["token_f1"] <= r["token_f1_ci"][1] <= 1
    assert 0 <= r["rouge_l"] <= 1 and len(r["examples"]) == 3


def test_another_tasks_report_has_no_emotional_cue_and_its_tables_name_labels():
    from reasoning_infused.analysis.quality_tables import quality_markdown, quality_table
    from reasoning_infused.data.task import load_task

    esnli = load_task("esnli")
    rows = [
        {
            "text": f"Premise: i feel so lonely {i}\nHypothesis: x",
            "label": esnli.labels[i % 3],
            "reasoning": "lonely",
        }
        for i in range(30)
    ]
    r = quality_report(rows, bootstrap_samples=20, task=esnli)
    assert (
        r["quotes_cue"] is None and r["rows_with_a_cue"] == 0
    )  # "feel" is the emotion task's cue, not this one's
    report = {"experiment": "e", "code_version": "c", "task": "esnli", "training_reasonings": r}
    assert "names the gold label (leaks)" in quality_markdown(report)
    assert "n/a (the task declares no cue)" in quality_markdown(report)
    assert "leaks the gold label" in quality_table(report)
    assert "names the gold emotion (leaks)" in quality_markdown({**report, "task": "emotion"})
