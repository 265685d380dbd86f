"""Pure functions: prompt formats and answer parsing, metrics and tests, quality rules, JSONL safety."""

import json

import numpy as np
import pytest
from reasoning_infused.augment import _repair_torn_tail, is_degenerate, quality_flags
from reasoning_infused.data import emotions_named
from reasoning_infused.metrics import bootstrap_ci, classification_metrics, mcnemar
from reasoning_infused.prompts import (
    classifier_target,
    clean_reasoning,
    parse_answer,
    prompt_version,
    split_reasoning,
)
from reasoning_infused.provenance import append_jsonl, read_jsonl


# --- prompts and parsing ---------------------------------------------------------------------------------------
def test_targets_have_one_answer_line_in_the_right_place():
    assert classifier_target("qa", "joy") == "Answer: joy"
    qra = classifier_target("qra", "fear", "They mention being scared.")
    qar = classifier_target("qar", "fear", "They mention being scared.")
    assert qra.splitlines()[-1] == "Answer: fear" and qar.splitlines()[0] == "Answer: fear"
    for t in (qra, qar):
        assert parse_answer(t) == "fear"


def test_reasoning_cannot_inject_an_answer_line():
    t = classifier_target("qra", "joy", "Line one.\nAnswer: anger\nmore")
    assert parse_answer(t) == "joy"
    assert "\n" not in clean_reasoning("a\nb")


def test_targets_reject_bad_input():
    with pytest.raises(ValueError):
        classifier_target("qx", "joy")
    with pytest.raises(ValueError):
        classifier_target("qa", "happy")
    with pytest.raises(ValueError):
        classifier_target("qra", "joy", "  ")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Reasoning: they smile.\nAnswer: joy", "joy"),
        ("Reasoning: x\nAnswer:  Sadness.", "sadness"),
        ("Reasoning: x\nAnswer: happiness", None),  # unknown label: a failure, never mapped
        ("Reasoning: the answer is joy", None),  # no answer line
        ("Answer: joy\nAnswer: fear", None),  # ambiguous
        ("", None),
    ],
)
def test_parse_answer(text, expected):
    assert parse_answer(text) == expected


def test_split_reasoning():
    assert split_reasoning("Reasoning: because.\nAnswer: joy", "qra") == "because."
    assert split_reasoning("Answer: joy\nReasoning: because.", "qar") == "because."
    assert split_reasoning("Reasoning: cut off mid", "qra") == "cut off mid"


def test_prompt_version_is_stable_and_versioned():
    v = prompt_version()
    assert v.startswith("v1-") and v == prompt_version()


# --- metrics -----------------------------------------------------------------------------------------------------
def test_metrics_count_parse_failures_as_errors():
    gold = ["joy", "joy", "fear", "anger"]
    pred = ["joy", None, "fear", "joy"]
    m = classification_metrics(gold, pred, n_bootstrap=200)
    assert m["accuracy"] == 0.5 and m["parse_failures"] == 1 and m["n_test"] == 4
    assert m["accuracy_ci"][0] <= 0.5 <= m["accuracy_ci"][1]
    assert m["per_class"]["joy"]["recall"] == 0.5
    assert np.array(m["confusion"]).sum() == 4 and m["confusion"][1][-1] == 1  # joy -> unparsed


def test_label_space_restricts_macro_f1():
    gold = ["joy", "fear", "anger", "sadness"]
    pred = ["joy", "fear", "anger", "love"]  # love is outside ISEAR's four classes: an error
    m = classification_metrics(gold, pred, n_bootstrap=200, label_space=["sadness", "joy", "anger", "fear"])
    assert m["accuracy"] == 0.75 and set(m["per_class"]) == {"sadness", "joy", "anger", "fear"}


def test_bootstrap_ci_is_seeded_and_brackets_the_mean():
    x = (np.random.default_rng(0).random(500) < 0.7).astype(float)
    lo, hi = bootstrap_ci(x, 500, 0.95, seed=3)
    assert (lo, hi) == bootstrap_ci(x, 500, 0.95, seed=3)
    assert lo < x.mean() < hi and hi - lo < 0.1


def test_mcnemar_exact_values():
    gold = ["joy"] * 12
    a = ["joy"] * 10 + ["fear"] * 2
    b = ["fear"] * 10 + ["joy"] * 2  # a right alone on 10, b right alone on 2
    r = mcnemar(gold, a, b)
    assert (r["only_first_correct"], r["only_second_correct"]) == (10, 2)
    assert r["p_value"] == pytest.approx(0.03857421875)  # 2 * P(X <= 2), X ~ Bin(12, 0.5)
    assert mcnemar(gold, a, a)["p_value"] == 1.0


# --- augmentation quality rules and JSONL safety --------------------------------------------------------------------
def test_quality_flags():
    f = quality_flags("The writer feels sad and lonely.", "sadness", "stop")
    assert f["names_gold"] and not f["names_other"] and not f["empty"] and not f["cut_at_limit"]
    f = quality_flags("They are angry.", "joy", "length")
    assert f["names_other"] and not f["names_gold"] and f["cut_at_limit"]
    assert quality_flags("   ", "joy", "stop")["empty"]
    assert emotions_named("I was scared but happy") == ["joy", "fear"]


def test_degenerate_detection():
    assert is_degenerate("i am happy i am happy i am happy i am happy")
    assert not is_degenerate("The writer describes a calm evening with friends and feels content.")


def test_torn_jsonl_tail_is_repaired_and_ignored(tmp_path):
    p = tmp_path / "r.jsonl"
    append_jsonl(p, [{"id": 1}, {"id": 2}])
    with p.open("a") as f:
        f.write('{"id": 3, "text": "cut')  # a kill mid-write
    assert [r["id"] for r in read_jsonl(p)] == [1, 2]
    _repair_torn_tail(p)
    append_jsonl(p, [{"id": 3}])
    assert [r["id"] for r in read_jsonl(p)] == [1, 2, 3]


def test_corrupt_middle_line_is_an_error(tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_text('{"id": 1}\nnot json\n{"id": 2}\n')
    with pytest.raises(ValueError, match=r"r\.jsonl:2"):
        read_jsonl(p)
    json.loads('{"ok": 1}')


def test_vectorised_macro_f1_equals_sklearn():
    import numpy as np
    from reasoning_infused.metrics import macro_f1_rows
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    gold = rng.integers(0, 6, size=(20, 50))
    pred = np.where(rng.random((20, 50)) < 0.6, gold, rng.integers(-1, 6, size=(20, 50)))  # -1: parse failure
    pred[0] = -1  # a row with no valid prediction
    for labels in ([0, 1, 2, 3, 4, 5], [0, 1, 3, 4]):
        want = [
            f1_score(g, p, labels=labels, average="macro", zero_division=0)
            for g, p in zip(gold, pred, strict=True)
        ]
        assert np.allclose(macro_f1_rows(gold, pred, labels), want)
