"""Pure functions: prompt formats and answer parsing, metrics and tests, quality rules, JSONL safety."""

import json

import numpy as np
import pytest
from reasoning_infused.base.provenance import append_jsonl, read_jsonl
from reasoning_infused.data.emotion import emotions_named
from reasoning_infused.data.lexicon import is_degenerate, quality_flags
from reasoning_infused.data.prompts import (
    classifier_target,
    clean_reasoning,
    parse_answer,
    prompt_version,
    split_reasoning,
)
from reasoning_infused.pipeline.augment import _repair_torn_tail
from reasoning_infused.pipeline.metrics import bootstrap_ci, classification_metrics, mcnemar


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
    from reasoning_infused.pipeline.metrics import macro_f1_rows
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


# --- paired comparisons, multiplicity, seeds (statistics) -------------------------------------------------------
def test_paired_bootstrap_interval_is_narrower_than_unpaired_and_centred_on_the_difference():
    from reasoning_infused.pipeline.metrics import paired_bootstrap_difference

    rng = np.random.default_rng(0)
    gold = list(rng.choice(["joy", "fear", "love"], size=400))
    a = [g if rng.random() < 0.8 else "sadness" for g in gold]
    b = [x if rng.random() < 0.9 else "sadness" for x in a]  # b is a, made worse on ~10% of rows: correlated
    r = paired_bootstrap_difference(gold, a, b, n_samples=2000, seed=1)
    diff = np.mean(np.array(b) == np.array(gold)) - np.mean(np.array(a) == np.array(gold))
    assert r["accuracy_difference"] == pytest.approx(diff)
    lo, hi = r["accuracy_difference_ci"]
    assert lo < diff < hi < 0
    sa = np.sqrt(np.mean(np.array(a) == gold) * (1 - np.mean(np.array(a) == gold)) / 400)
    assert r["accuracy_difference_se"] < np.sqrt(2) * sa  # pairing removes the shared variance
    same = paired_bootstrap_difference(gold, a, a, n_samples=200)
    assert same["accuracy_difference_ci"] == [0.0, 0.0] and same["macro_f1_difference"] == 0.0


def test_holm_adjustment_on_a_known_example():
    from reasoning_infused.pipeline.metrics import holm_adjust

    # m = 4: sorted p 0.01, 0.02, 0.03, 0.5 -> 0.04, 0.06, 0.06 (monotone), 0.5
    assert holm_adjust({"a": 0.03, "b": 0.01, "c": 0.5, "d": 0.02}) == pytest.approx(
        {"a": 0.06, "b": 0.04, "c": 0.5, "d": 0.06}
    )
    assert holm_adjust({"x": 0.9, "y": 0.8}) == {"x": 1.0, "y": 1.0}


def test_seed_summary_and_power():
    from reasoning_infused.pipeline.metrics import seed_summary, seeds_needed

    s = seed_summary([-0.17, -0.15, -0.19])
    assert s["mean"] == pytest.approx(-0.17) and s["sd"] == pytest.approx(0.02)
    assert s["ci"][0] < -0.17 < s["ci"][1] < 0  # t(2) interval: mean ± 4.30 * 0.02 / sqrt(3)
    assert s["ci"][1] == pytest.approx(-0.17 + 4.3027 * 0.02 / np.sqrt(3), rel=1e-3)
    assert seeds_needed(0.01, 0.03) < seeds_needed(0.03, 0.03) < seeds_needed(0.06, 0.03)
    assert seeds_needed(float("nan")) is None


def test_seeds_x_rows_bootstrap_counts_seed_variation():
    from reasoning_infused.pipeline.metrics import seeds_items_bootstrap

    rng = np.random.default_rng(0)
    first = rng.integers(0, 2, size=(3, 400))
    constant = seeds_items_bootstrap(first, first, n_samples=200)
    assert constant["mean"] == 0 and constant["ci"] == [0.0, 0.0]
    # the second classifier gains 0, 10 and 20 points over the first depending on the seed
    second = first.copy()
    for s, share in enumerate((0.0, 0.1, 0.2)):
        wrong = np.flatnonzero(first[s] == 0)
        second[s, wrong[: int(share * 400)]] = 1
    both = seeds_items_bootstrap(first, second, n_samples=500)
    assert both["mean"] == pytest.approx((second - first).mean())
    rows_only = seeds_items_bootstrap(first[1:2].repeat(3, 0), second[1:2].repeat(3, 0), n_samples=500)
    # resampling the seeds too widens the interval beyond what the rows alone give
    assert both["ci"][1] - both["ci"][0] > 1.5 * (rows_only["ci"][1] - rows_only["ci"][0])
    assert both["ci"][0] < both["mean"] < both["ci"][1]
    with pytest.raises(ValueError, match="same shape"):
        seeds_items_bootstrap(first, second[:2])


def test_per_class_difference_and_label_space_sensitivity():
    from reasoning_infused.pipeline.evaluate import label_space_sensitivity, per_class_difference

    gold = ["love", "love", "joy", "joy"]
    first = ["joy", "joy", "joy", "joy"]
    second = ["love", "joy", "joy", "love"]
    d = per_class_difference(gold, first, second)
    assert d["love"] == {
        "n": 2,
        "first_accuracy": 0.0,
        "second_accuracy": 0.5,
        "net_rows_second_minus_first": 1,
    }
    assert d["joy"]["net_rows_second_minus_first"] == -1 and "fear" not in d
    scores = {lab: 0.0 for lab in ["sadness", "joy", "love", "anger", "fear", "surprise"]}
    rows = [{"predicted": "love", "scores": {**scores, "love": 0.9, "joy": 0.5}}]  # love is not in the set
    s = label_space_sensitivity(["joy"], {"qa": rows}, ["joy", "fear"])
    assert s["qa"] == {"accuracy_as_scored": 0.0, "accuracy_within_label_space": 1.0}


def test_wilson_interval_known_values():
    from reasoning_infused.pipeline.metrics import wilson_interval

    lo, hi = wilson_interval(94, 200)  # p = 0.47
    assert lo == pytest.approx(0.4021, abs=2e-4) and hi == pytest.approx(0.5391, abs=2e-4)
    assert wilson_interval(0, 10)[0] == pytest.approx(0.0, abs=1e-12)


def test_tfidf_c_is_chosen_on_validation():
    from reasoning_infused.pipeline.baselines import TFIDF_C_GRID, tfidf_logreg

    texts = ["i feel happy", "so glad today", "i am scared", "afraid of the dark"] * 5
    labels = [1, 1, 4, 4] * 5
    model, c = tfidf_logreg(texts, labels, 0, ["happy glad", "scared afraid"], [1, 4])
    assert c in TFIDF_C_GRID and list(model.predict(["glad", "afraid"])) == [1, 4]


def test_reasoning_transforms():
    from reasoning_infused.data.prompts import NEUTRAL_REASONING, transform_reasoning

    r = "Joy is a feeling of happiness. The writer got a new job. It is good."
    assert transform_reasoning("none", r, "x", 0) == r
    shuffled = transform_reasoning("shuffle_words", r, "x", 0)
    assert sorted(shuffled.split()) == sorted(r.split()) and shuffled != r
    assert shuffled == transform_reasoning("shuffle_words", r, "x", 0)  # deterministic per seed
    assert transform_reasoning("drop_emotion_sentences", r, "x", 0) == "The writer got a new job. It is good."
    assert transform_reasoning("drop_emotion_sentences", "I am so happy.", "x", 0) == NEUTRAL_REASONING
    assert (
        transform_reasoning("grounded_from_text", r, "i feel so lost and alone today since he left", 0)
        == "The writer says they feel so lost and alone today since he left."
    )
    assert transform_reasoning("grounded_from_text", r, "what a day", 0) == "The writer says: what a day."
    with pytest.raises(ValueError, match="unknown reasoning transform"):
        transform_reasoning("reverse", r, "x", 0)


def test_committed_notebook_outputs_drop_progress_bars_and_machine_paths(monkeypatch):
    import nbformat
    from reasoning_infused.base.locations import REPO_ROOT
    from reasoning_infused.study.runner import clean_outputs

    widget = "application/vnd.jupyter.widget-view+json"
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [
        nbformat.v4.new_output(
            "display_data", {widget: {"model_id": "a"}, "text/plain": "Loading: 100%|####| 3/3"}
        ),
        nbformat.v4.new_output(
            "display_data", {widget: {"model_id": "b"}, "text/plain": "VBox(children=())"}
        ),
        nbformat.v4.new_output("stream", name="stdout", text=f"reusing {REPO_ROOT}/runs/artifacts/x\n"),
    ]
    nb.cells = [cell]
    out = clean_outputs(nb).cells[0].outputs
    assert len(out) == 2 and "VBox" in out[0]["data"]["text/plain"]  # the explorer widget stays
    assert out[1]["text"] == "reusing runs/artifacts/x\n"
    nbformat.validate(nb)
    # a store moved elsewhere ($RI_RUNS_DIR, e.g. a study on an empty store) shows as its default place
    monkeypatch.setenv("RI_RUNS_DIR", "/tmp/elsewhere/runs")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="at /tmp/elsewhere/runs/artifacts/y\n")
    ]
    assert clean_outputs(nb).cells[0].outputs[0]["text"] == "at runs/artifacts/y\n"


def test_saved_widget_state_is_the_same_on_every_rerun():
    import uuid

    import nbformat
    from reasoning_infused.study.runner import clean_outputs

    view, state_key = "application/vnd.jupyter.widget-view+json", "application/vnd.jupyter.widget-state+json"

    def executed() -> nbformat.NotebookNode:
        """What a kernel saves: random model ids, an explorer (a box holding a button) and a progress bar."""
        box, button, layout, bar, bar_box = (uuid.uuid4().hex for _ in range(5))
        nb = nbformat.v4.new_notebook()
        cell = nbformat.v4.new_code_cell("x", id="explorer")  # a saved notebook's cell ids are fixed
        cell.outputs = [
            nbformat.v4.new_output(
                "display_data", {view: {"model_id": bar_box}, "text/plain": "Map: 100%|##| 3/3"}
            ),
            nbformat.v4.new_output("display_data", {view: {"model_id": box}, "text/plain": "VBox()"}),
        ]
        nb.cells = [cell]
        model = {"model_module": "@jupyter-widgets/controls", "model_module_version": "2.0.0"}
        nb.metadata["widgets"] = {
            state_key: {
                "version_major": 2,
                "version_minor": 0,
                "state": {
                    bar: {**model, "model_name": "FloatProgressModel", "state": {}},
                    bar_box: {
                        **model,
                        "model_name": "HBoxModel",
                        "state": {"children": [f"IPY_MODEL_{bar}"]},
                    },
                    layout: {**model, "model_name": "LayoutModel", "state": {}},
                    button: {
                        **model,
                        "model_name": "ButtonModel",
                        "state": {"layout": f"IPY_MODEL_{layout}"},
                    },
                    box: {**model, "model_name": "VBoxModel", "state": {"children": [f"IPY_MODEL_{button}"]}},
                },
            }
        }
        return clean_outputs(nb)

    first, second = executed(), executed()
    assert nbformat.writes(first) == nbformat.writes(second)  # the random ids are gone
    state = first.metadata["widgets"][state_key]["state"]
    # the progress bar and its box are dropped; the explorer keeps its models, linked by their new ids
    assert [v["model_name"] for v in state.values()] == ["VBoxModel", "ButtonModel", "LayoutModel"]
    shown = first.cells[0].outputs[0]["data"][view]["model_id"]
    box_children = state[shown]["state"]["children"]
    assert box_children == [f"IPY_MODEL_{list(state)[1]}"]
    assert state[list(state)[1]]["state"]["layout"] == f"IPY_MODEL_{list(state)[2]}"
    nbformat.validate(first)


def test_one_colour_per_classifier_by_key_or_display_name():
    from reasoning_infused.analysis.figures import CLASSIFIER_COLORS, classifier_color
    from reasoning_infused.analysis.tables import DISPLAY_NAMES

    assert set(DISPLAY_NAMES) <= set(CLASSIFIER_COLORS)
    for key, name in DISPLAY_NAMES.items():
        assert classifier_color(key) == classifier_color(name) == CLASSIFIER_COLORS[key]
    assert len({classifier_color(k) for k in ("qa", "qra", "qar", "zero_shot")}) == 4
    assert classifier_color("something else") is None


def test_forest_plot_labels_name_arm_and_comparison_without_fine_tuning_mode(tmp_path):
    from reasoning_infused.analysis.figures import ablation_forest

    def comparison(second, diff):
        return {
            "first": "qa",
            "second": second,
            "accuracy_difference": diff,
            "accuracy_difference_ci": [diff - 0.02, diff + 0.02],
        }

    arm = {
        "summary": {
            f"test:{second}-qa": {
                "set": "test",
                "first": "qa",
                "second": second,
                "accuracy_difference": {"seeds": 2, "mean": -0.1, "ci": [-0.12, -0.08]},
            }
            for second in ("qra", "qra_selected", "qar")
        },
        "per_seed": [
            {
                "seed": i,
                "sets": {
                    "test": {"comparisons": [comparison(s, -0.1) for s in ("qra", "qra_selected", "qar")]}
                },
            }
            for i in range(2)
        ],
    }
    path, fig = ablation_forest({"full_finetune": arm}, tmp_path / "forest.png")
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    # free Q->RA is hidden behind the decoding validation chose; every label is "arm" over "comparison"
    assert labels == ["full_finetune\nQ→RA, decoding chosen on validation − Q→A", "full_finetune\nQ→AR − Q→A"]
    assert path.exists()


def test_findings_are_computed_from_the_numbers():
    import pandas as pd
    from reasoning_infused.analysis.findings import (
        finding_disagreements,
        finding_faithfulness,
        finding_per_class_gain,
        finding_reasoning_support,
        finding_training_tokens,
    )
    from reasoning_infused.analysis.tables import readable

    meta = {
        "qa": {"tokens_per_epoch": 86_000, "supervised_tokens_per_epoch": 8_000},
        "qra": {"tokens_per_epoch": 137_000, "supervised_tokens_per_epoch": 58_000},
    }
    assert "Q→RA trains on 137,000 tokens per epoch against Q→A's 86,000 (1.59×)" in finding_training_tokens(
        meta
    )
    assert "(7.2×)" in finding_training_tokens(meta)
    dirs = pd.Series(["only qa right"] * 3 + ["only qra right"] + ["both wrong"] * 2)
    assert "disagree on 6 rows: only Q→A is right on 3, only Q→RA (free generation) on 1, neither on 2" in (
        finding_disagreements(dirs)
    )
    gain = pd.DataFrame(
        {
            "label": ["joy", "love"],
            "qa_f1": [0.9, 0.5],
            "qra_f1": [0.8, 0.6],
            "f1_gain": [-0.1, 0.1],
            "support": [9, 4],
        }
    )
    assert finding_per_class_gain(gain).startswith(
        "Q→RA (free generation)'s F1 against Q→A falls most for joy (-10.0"
    )
    support = [
        {"category": "names the predicted label only", "n": 800, "accuracy": 0.67},
        {"category": "names the predicted label and others", "n": 21, "accuracy": 0.81},
        {"category": "names no emotion", "n": 1007, "accuracy": 0.61},
        {"category": "unparsed output", "n": 101, "accuracy": 0.0},
    ]
    text = finding_reasoning_support(support)
    assert "most accurate where the reasoning names the predicted label and others (0.81, n = 21)" in text
    assert "least where it names no emotion (0.61" in text
    probe = [
        {
            "condition": "own reasoning (control)",
            "n": 200,
            "follows_reasoning": 1.0,
            "follows_reasoning_ci": [0.98, 1],
            "follows_reasoning_if_random_other_label": float("nan"),
        },
        {
            "condition": "another example's reasoning",
            "n": 200,
            "follows_reasoning": 0.22,
            "follows_reasoning_ci": [0.17, 0.28],
            "follows_reasoning_if_random_other_label": 0.2,
        },
    ]
    text = finding_faithfulness(probe)
    assert (
        "22.0% of 200 rows (95% interval 17.0%–28.0%; not above the 20.0%" in text and "control" not in text
    )
    table = readable(pd.DataFrame({"value": [30.0, 0.12345, 1234.0], "d": [{"a": 1.0}, None, [2.0, 0.5]]}))
    assert table.value.tolist() == ["30", "0.123", "1,234"] and table.d.tolist()[::2] == ["a: 1", "2, 0.500"]


def test_data_and_generator_findings():
    from reasoning_infused.analysis.findings import (
        finding_class_balance,
        finding_duplicates,
        finding_heldout_loss,
        finding_text_lengths,
    )

    counts = {"sadness": 30, "joy": 40, "love": 10, "anger": 10, "fear": 8, "surprise": 2}
    assert "joy and sadness are 70.0% of the 100 rows, surprise only 2.0%" in finding_class_balance(counts)
    assert "median 3 tokens, 90% at most 9, longest 10" in finding_text_lengths(
        [1, 2, 3, 4, 10, 2, 3, 8, 9, 1]
    )
    report = {
        "train_duplicated_texts": 31,
        "train_duplicates_with_conflicting_labels": 30,
        "train&test_shared_texts": 11,
    }
    assert finding_duplicates(report).startswith("31 training texts occur more than once, 30 of them")
    assert "falls from 2.800 (base model) to 2.240 (fine-tuned generator), -20.0%" in finding_heldout_loss(
        2.8, 2.24
    )


def test_arm_story_reads_the_intervals_and_the_shift_against_the_seeds_arm():
    from reasoning_infused.study.ablation_report import arm_story

    def result(means, ci):
        comparison = {
            "first": "qa",
            "second": "qra_selected",
            "second_is_selected_decoding": False,
            "accuracy_difference": means[0],
            "accuracy_difference_ci": [means[0] - 0.02, means[0] + 0.02],
            "only_first_correct": 40,
            "only_second_correct": 10,
        }
        return {
            "hypothesis": "H.",
            "outcome": "O.",
            "per_seed": [{"seed": 0, "sets": {"test": {"comparisons": [comparison]}}}],
            "summary": {
                "test:qra_selected-qa": {
                    "set": "test",
                    "first": "qa",
                    "second": "qra_selected",
                    "accuracy_difference": {"seeds": 3, "mean": sum(means) / 3, "sd": 0.01, "ci": ci},
                }
            },
        }

    seeds = result([-0.17, -0.18, -0.18], [-0.195, -0.159])
    text = arm_story("seeds", seeds, seeds)
    assert "mean -17.7 points over 3 seeds, t-interval [-19.5, -15.9] lies below 0" in text
    assert "against the seeds arm" not in text  # the reference itself
    assert "against the seeds arm" not in arm_story(
        "seeds", {**seeds}, seeds
    )  # also given a copy of its file
    text = arm_story("qar_seeds", {**seeds}, seeds, other_references={"qra_selected": ("qar_seeds", seeds)})
    assert "a shift of" not in text  # the reference a comparison is read against, named per comparison
    other = result([-0.05, -0.01, 0.0], [-0.10, 0.06])
    text = arm_story("data_8k", other, seeds)
    assert "includes 0" in text and "against the seeds arm (-17.7) a shift of +15.7" in text
    assert "**Hypothesis.** H." in text and "| test |" in text


def test_the_out_of_domain_reading_is_built_from_the_arm_file():
    from reasoning_infused.study.ablation_report import finding_ood_arm

    def seed(s, diff, love, anger, sens):
        comp = {
            "first": "qa",
            "second": "qra_selected",
            "n": 100,
            "accuracy_difference": diff,
            "per_gold_class": {
                "love": {"net_rows_second_minus_first": love},
                "anger": {"net_rows_second_minus_first": anger},
            },
        }
        return {
            "seed": s,
            "sets": {
                "test": {"comparisons": []},
                "ood_goemotions": {
                    "comparisons": [comp],
                    "label_space_sensitivity": {
                        "qa": {"accuracy_as_scored": sens, "accuracy_within_label_space": sens + 0.1}
                    },
                },
            },
        }

    arm = {
        "per_seed": [seed(0, 0.08, 10, -2, 0.5), seed(1, 0.04, 6, -2, 0.7)],
        "summary": {
            "ood_goemotions:qra_selected-qa": {
                "accuracy_difference": {"seeds": 2, "mean": 0.06, "ci": [-0.19, 0.31]}
            }
        },
    }
    text = finding_ood_arm("pools", arm)
    assert text.startswith("Arm `pools` (2 seeds): goemotions (100 rows)")
    assert "+8.0, +4.0 points for seeds 0, 1, mean +6.0, t-interval [−19.0, +31.0]" in text
    assert (
        "net rows +8, +4, of which gold *love* contributes +10, +6 and the other classes together −2, −2"
        in text
    )
    assert "moves Q→A from 0.600 to 0.700 (mean over seeds)" in text
    assert "test" not in text
    assert finding_ood_arm("pools", {**arm, "partial": True}).startswith("Arm `pools` (interim, 2 seeds)")


def test_welch_difference_of_two_arms_gaps():
    from reasoning_infused.pipeline.metrics import welch_difference

    w = welch_difference([-0.17, -0.18, -0.19], [-0.07, -0.08, -0.09])
    assert w["difference"] == pytest.approx(0.10)
    assert 0 < w["ci"][0] < 0.10 < w["ci"][1]  # symmetric around the difference, excluding 0 here
    assert w["ci"][1] - 0.10 == pytest.approx(0.10 - w["ci"][0])
    one = welch_difference([-0.17], [-0.08, -0.09])  # one seed: no interval
    assert one["difference"] == pytest.approx(0.085) and np.isnan(one["ci"][0])


def test_factor_table_reads_each_arms_gap_and_its_shift_against_the_seeds_arm():
    from reasoning_infused.study.ablation_report import factor_table

    def arm(per_seed, overrides=(), second="qra_selected", tag="qra"):
        mean = sum(per_seed) / len(per_seed)
        summary = {
            f"test:{second}-qa": {
                "set": "test",
                "first": "qa",
                "second": second,
                "accuracy_difference": {
                    "mean": mean,
                    "ci": [mean - 0.01, mean + 0.01],
                    "seeds": len(per_seed),
                },
                "accuracy_difference_per_seed": per_seed,
            },
            f"ood_isear:{second}-qa": {"set": "ood_isear", "second": second},  # not a test gap: not listed
        }
        per_seed = [
            {"seed": i, "artifact_keys": {"classifier_qa": f"qa{i}", "classifier_qra": f"{tag}{i}"}}
            for i in range(len(per_seed))
        ]
        return {"summary": summary, "declaration": {"overrides": list(overrides)}, "per_seed": per_seed}

    rows = factor_table(
        {
            "seeds": arm([-0.17, -0.18, -0.19]),
            "data_4k": arm([-0.07, -0.08, -0.09], ["data.train_size=4000"], tag="qra4k"),
            "shuffled": arm([-0.10, -0.12], second="qar", tag="shuf"),  # no Q->AR in the seeds arm: no shift
            "ood_pools": arm([-0.17, -0.18, -0.19], ["data.ood_size=0"]),  # the seeds arm's models: no factor
        }
    )
    assert len(rows) == 2 + 4 and "the same trained models as `seeds`" in rows[5]
    assert "(reference)" in rows[2] and "−" not in rows[2].split("|")[-2]
    assert "`data.train_size=4000`" in rows[3] and "| +10.0 [" in rows[3]
    assert "Q→AR − Q→A" in rows[4] and rows[4].rstrip().endswith("| — |")
    from reasoning_infused.study.ablation_report import factor_reading

    text = factor_reading(
        {
            "seeds": arm([-0.17, -0.18, -0.19]),
            "data_4k": arm([-0.07, -0.08, -0.09], tag="qra4k"),
            "ood_pools": arm([-0.17, -0.18, -0.19]),
        }
    )
    assert "ood_pools" not in text
    assert text.startswith("Against arm `seeds`, the gap moves in `data_4k`") and "+10.0 [" in text
    same = factor_reading(
        {"seeds": arm([-0.17, -0.18, -0.19]), "lora": arm([-0.16, -0.19, -0.18], tag="full")}
    )
    assert "no arm moves the gap beyond noise; within noise: `lora`" in same
    # a comparison the seeds arm does not train is read against the arm the study names for it
    named = {
        "seeds": arm([-0.17, -0.18, -0.19]),
        "qar_seeds": arm([-0.12, -0.11, -0.13], second="qar", tag="qar"),
        "shuffled": arm([-0.02, -0.03, -0.04], second="qar", tag="shuf"),
    }
    rows = factor_table(named, references={"qar": "qar_seeds"})
    assert "(reference for Q→AR − Q→A)" in rows[3]
    assert "| +9.0 [" in rows[4] and rows[4].rstrip().endswith("] against `qar_seeds` |")
    assert factor_table(named)[4].rstrip().endswith("| — |")  # without the study's references: no shift
    assert "`shuffled` (Q→AR − Q→A: +9.0 [" in factor_reading(named, references={"qar": "qar_seeds"})


def _size_arm(name: str, qa: list[float], qra: list[float]) -> dict:
    """A finished arm file reduced to what the training-length curve reads."""
    diffs = [b - a for a, b in zip(qa, qra, strict=True)]
    mean = sum(diffs) / len(diffs)
    return {
        "arm": name,
        "per_seed": [
            {
                "seed": i,
                "sets": {"test": {"classifiers": {"qa": {"accuracy": a}, "qra_selected": {"accuracy": b}}}},
            }
            for i, (a, b) in enumerate(zip(qa, qra, strict=True))
        ],
        "summary": {
            "test:qra_selected-qa": {
                "accuracy_difference": {"seeds": len(diffs), "mean": mean, "ci": [mean - 0.01, mean + 0.01]}
            }
        },
    }


TRAINING_LENGTH_STUDY = """
study: curve_study
profile: smoke
arms:
  - {name: seeds, hypothesis: h, outcome: o, seeds: [0, 1]}
  - {name: data_big, hypothesis: h, outcome: o, overrides: ["data.train_size=80"], seeds: [0, 1]}
  - {name: data_small, hypothesis: h, outcome: o, overrides: ["data.train_size=20"], seeds: [0, 1]}
  - {name: longer_reasoning, hypothesis: h, outcome: o, overrides: ["augment.max_new_tokens=6"], seeds: [0, 1]}
  - name: two_epoch_control
    hypothesis: h
    outcome: o
    overrides: ["data.train_size=20"]
    control_overrides: ["classifier.train.num_epochs=2"]
    seeds: [0, 1]
  - {name: answer_first, hypothesis: h, outcome: o, overrides: ["data.train_size=20"], variants: [qa, qar]}
  - {name: not_run, hypothesis: h, outcome: o, overrides: ["data.train_size=40"], seeds: [0, 1]}
"""


def test_training_length_curve_takes_only_arms_that_change_the_number_of_examples(tmp_path):
    from reasoning_infused.study.ablation_plan import load_ablation
    from reasoning_infused.study.ablation_results import training_length_curve

    path = tmp_path / "curve_study.yaml"
    path.write_text(TRAINING_LENGTH_STUDY)
    abl = load_ablation(path)
    done = {a.name: _size_arm(a.name, [0.8, 0.82], [0.6, 0.64]) for a in abl.arms if a.name != "not_run"}
    curve = training_length_curve(abl, done)
    # sorted by examples; the smoke profile trains 36 examples at effective batch 8
    assert [(p["arm"], p["examples"], p["optimizer_steps"]) for p in curve] == [
        ("data_small", 20, 3),
        ("seeds", 36, 5),
        ("data_big", 80, 10),
    ]
    assert curve[0]["qa_accuracy"] == [0.8, 0.82] and curve[0]["qra_accuracy"] == [0.6, 0.64]
    assert curve[0]["gap"]["mean"] == pytest.approx(-0.19)


def test_training_length_table_sentence_and_figure_come_from_the_curve(tmp_path):
    from reasoning_infused.analysis.figures import training_length_plot
    from reasoning_infused.study.ablation_report import finding_training_length, training_length_table
    from reasoning_infused.study.ablation_results import curve_point

    curve = [
        curve_point(_size_arm("seeds", [0.80, 0.82], [0.60, 0.64]), 2000, 125),
        curve_point(_size_arm("data_4k", [0.86, 0.88], [0.76, 0.78]), 4000, 250),
    ]
    table = training_length_table(curve)
    assert table[2] == "| `seeds` | 2,000 | 125 | 2 | 81.0% | 62.0% | -19.0 [-20.0, -18.0] |"
    assert table[3] == "| `data_4k` | 4,000 | 250 | 2 | 87.0% | 77.0% | -10.0 [-11.0, -9.0] |"
    sentence = finding_training_length(curve)
    assert "Q→A moves +6.0 points" in sentence and "Q→RA +15.0" in sentence
    assert (
        "the gap narrows: -19.0 [-20.0, -18.0] at 125 steps → -10.0 [-11.0, -9.0] at 250 steps." in sentence
    )
    assert "the gap widens: -10.0" in finding_training_length(curve[::-1])
    longer = curve + [curve_point(_size_arm("data_8k", [0.90, 0.92], [0.70, 0.72]), 8000, 500)]
    assert "the gap narrows, then widens: -19.0" in finding_training_length(longer)
    assert "-20.0 [-21.0, -19.0] at 500 steps." in finding_training_length(longer)
    steady = [curve_point(_size_arm("data_1k", [0.70, 0.72], [0.45, 0.47]), 1000, 63)] + curve
    assert "the gap narrows at every step: -25.0" in finding_training_length(steady)
    path, fig = training_length_plot(curve, tmp_path / "curve.png")
    assert path.exists() and [t.get_text() for t in fig.axes[0].get_xticklabels()] == [
        "2,000\n125 steps",
        "4,000\n250 steps",
    ]


def test_training_budget_line_reads_steps_and_supervised_tokens_from_the_records():
    from reasoning_infused.study.ablation_record import training_budget_line

    def clf(role, steps, tokens, epochs=1.0):
        return {
            "role": role,
            "optimizer_steps": steps,
            "supervised_tokens_per_epoch": tokens,
            "num_epochs": epochs,
        }

    records = [
        {"seed": 0, "classifiers": {"qa": clf("control", 125, 8000), "qra": clf("arm", 125, 40000)}},
        {"seed": 1, "classifiers": {"qa": clf("control", 125, 8000), "qra": clf("arm", 126, 42000)}},
    ]
    line = training_budget_line(records)
    assert line.startswith("**Training** (per-row records, seeds 0, 1): ")
    assert "Q→A (the control): 125 optimizer steps, 1 epoch, 8,000 supervised tokens per epoch" in line
    assert (
        "Q→RA (the arm): 125–126 optimizer steps, 1 epoch, 40,000–42,000 supervised tokens per epoch" in line
    )
    assert "Q→A's supervised tokens per epoch are 19.5% of Q→RA's" in line  # 8,000 / 41,000
    records[0]["classifiers"]["qa"]["num_epochs"] = 2.0
    assert "1/2 epochs" in training_budget_line(records)
    assert training_budget_line([]) == ""


def test_the_answer_rows_say_what_is_not_run_and_end_with_the_papers_numbers(tmp_path, monkeypatch):
    import json

    from reasoning_infused.analysis.figures import answer_forest
    from reasoning_infused.study import report

    monkeypatch.setenv("RI_RESULTS_DIR", str(tmp_path))
    arm = {
        "per_seed": [
            {"sets": {"test": {"classifiers": {"qa": {"accuracy": a}, "qra_selected": {"accuracy": b}}}}}
            for a, b in ((0.8, 0.6), (0.82, 0.64))
        ],
        "summary": {"test:qra_selected-qa": {"accuracy_difference_seeds_x_rows": {"ci": [-0.21, -0.17]}}},
    }
    (tmp_path / "ablations" / "qra_gap").mkdir(parents=True)
    (tmp_path / "ablations" / "qra_gap" / "seeds.json").write_text(json.dumps(arm))
    rows = report.answer_rows()
    first, paper = rows[0], rows[-1]
    assert first["seeds"] == 2 and abs(first["difference"] + 0.19) < 1e-9 and first["ci"] == [-0.21, -0.17]
    assert abs(first["error_ratio"] - (1 - 0.62) / (1 - 0.81)) < 1e-9
    assert paper.get("paper") and paper["ci"] is None and abs(paper["difference"] - 0.087) < 1e-9
    table = report.answer_table(rows).splitlines()
    assert (
        table[2]
        == "| emotion | generated (the paper's method) | 2 | 0.810 | 0.620 | -19.0 [-21.0, -17.0] | -0.96 | 2.00 |"
    )
    assert sum("not run yet" in line for line in table) == len(report.ANSWER_ROWS) - 1
    assert table[len(report.ANSWER_ROWS) + 2].endswith("| +8.7 (no interval reported) | +0.35 | 0.83 |")
    # a row marked ‡ (e-SNLI's weighted control) carries its footnote under the table
    assert table[-1].startswith("‡: on e-SNLI the answer-weighted loss changes Q→A itself")
    path, fig = answer_forest(rows, tmp_path / "answer.png")
    assert path.exists() and len(fig.axes[0].get_yticklabels()) == len(rows)


def test_another_tasks_report_carries_none_of_the_emotion_studys_references():
    import json

    from reasoning_infused.analysis.tables import display_name, results_table
    from reasoning_infused.base.locations import REPO_ROOT
    from reasoning_infused.study.report import readme_results

    emotion = json.loads((REPO_ROOT / "results" / "default" / "metrics.json").read_text())
    other = {**emotion, "task": "esnli", "ood": {}}
    text = readme_results(other)
    for emotion_only in ("dair-ai/emotion", "the paper reports", "16,000", "16k", "encoders"):
        assert emotion_only not in text, emotion_only
    assert "### Test set (task `esnli`)" in text and "### Reasoning-infused classifiers against Q→A" in text
    assert display_name("tfidf_full_train", other) == "TF-IDF + LR, the task's full training split"
    # the emotion study keeps its references (and its committed report, byte for byte: tests/test_cli.py)
    assert "the paper reports +8.7 points" in readme_results(emotion) and "encoders" in results_table(emotion)


def test_records_line_lists_the_finished_seeds_without_a_per_row_record():
    from reasoning_infused.study.ablation_record import records_line

    arms = {"a": {"per_seed": [{"seed": 0}, {"seed": 1}]}, "b": {"per_seed": [{"seed": 0}]}}
    line = records_line(arms, {"a": [{"seed": 0}], "b": [{"seed": 0}]})
    assert "2 of 3 finished arm seeds have one" in line and "`a` seed 1." in line
    assert records_line(arms, {"a": [{"seed": 0}, {"seed": 1}], "b": [{"seed": 0}]}).endswith(
        "repository alone."
    )
    assert "(`rows/<arm>/seed<k>.json.gz`, 2.5 MB in all)" in records_line(arms, {}, 2_460_000)


def test_a_rerun_is_compared_with_the_results_it_replaced_row_by_row():
    from reasoning_infused.study.runner import compare_predictions

    def row(pred, gen=None, score=-0.1):
        return {
            "gold": "a",
            "predicted": pred,
            "scores": {"a": score, "b": -2.0},
            **({"generated": gen} if gen else {}),
        }

    before = {
        "qa.jsonl": [row("a"), row("b")],
        "qra.jsonl": [row("a", "x a"), row("a", "y a")],
        "old.jsonl": [],
    }
    after = {"qa.jsonl": [row("a", score=-0.1004), row("b")], "qra.jsonl": [row("a", "x a"), row("b", "y b")]}
    out = compare_predictions(before, after)
    assert (out["files"], out["files_identical"], out["rows"]) == (3, 1, 4)
    assert (out["labels_changed"], out["texts_changed"]) == (1, 1)
    qa, qra = out["per_file"]["qa.jsonl"], out["per_file"]["qra.jsonl"]
    assert qa["max_score_change"] == 0.0004 and qa["changed_rows"] == []
    assert qra["accuracy"] == [1.0, 0.5]
    assert qra["changed_rows"] == [{"row": 1, "predicted": ["a", "b"], "generated": ["y a", "y b"]}]
    assert out["per_file"]["old.jsonl"] == {"only_in": "before"}
    # and the experiment report shows it as a table, file by file
    from reasoning_infused.study.report import rerun_markdown

    side = {
        "code_version": "abc",
        "lock_hash": None,
        "created_at": "then",
        "package_versions": {"torch": "2"},
    }
    text = rerun_markdown({"before": {**side, "revision": "r1"}, "after": {**side, "lock_hash": "l2"}, **out})
    assert "1 of 3 files are identical" in text and "1 labels and 1 generated texts changed" in text
    assert "lock not recorded" in text and "versions of torch are the same" in text
    assert "| `qra.jsonl` | 2 | 1 | 1 | 1.0000 → 0.5000 | 0.0000 |" in text
