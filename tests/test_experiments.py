"""Experiments with an identity: artifacts keyed by the settings that made them, no silent reuse, experiments that
never touch each other's results; the README report and figures from small saved results."""

import hashlib
import json
from pathlib import Path

import pytest
from reasoning_infused.experiment import artifacts
from reasoning_infused.experiment.config import load_profile
from reasoning_infused.pipeline import loading

pytestmark = pytest.mark.slow


def tree_digest(folder: Path) -> str:
    """Hash of every file's path and bytes under a folder: 'byte-identical' made checkable."""
    h = hashlib.sha256()
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(folder)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


# --- keys: what each stage depends on (no training needed) ------------------------------------------------------


def test_keys_follow_exactly_the_settings_each_stage_depends_on():
    base = load_profile("smoke")

    def keys(*overrides):
        p = load_profile("smoke", list(overrides))
        return {
            "generator": artifacts.generator_artifact(p).key,
            "augment": artifacts.augment_artifact(p).key,
            "qa": artifacts.classifier_artifact(p, "qa").key,
            "qra": artifacts.classifier_artifact(p, "qra").key,
            "qa_test": artifacts.predictions_artifact(p, "qa", "test").key,
            "qra_test": artifacts.predictions_artifact(p, "qra", "test").key,
            "zero_shot_test": artifacts.predictions_artifact(p, "zero_shot", "test").key,
        }

    ref = keys()
    assert keys() == ref  # deterministic
    changed = {
        "classifier.train.learning_rate=0.5": {"qa", "qra", "qa_test", "qra_test"},
        "classifier.train.seed=1": {"qa", "qra", "qa_test", "qra_test"},
        "augment.max_new_tokens=5": {"augment", "qra", "qra_test"},
        "generator.train.num_epochs=2": {"generator", "augment", "qra", "qra_test"},
        "classifier.max_new_tokens=9": {"qra_test"},
        "data.test_size=10": {"qa_test", "qra_test", "zero_shot_test"},
        "data.seed=1": set(ref),  # every subsample: all of them
        "augment.drop_flagged=true": {"qra", "qra_test"},
        "classifier.reasoning_transform=shuffle_words": {"qra", "qra_test"},
        # speed-only settings never change a key
        "classifier.predict_batch_size=3": set(),
        "augment.batch_size=3": set(),
        "classifier.train.logging_steps=7": set(),
    }
    for override, expect in changed.items():
        new = keys(override)
        assert {k for k in ref if new[k] != ref[k]} == expect, override
    assert artifacts.classifier_artifact(base, "qra").inputs == {"augment": ref["augment"]}
    assert artifacts.augment_artifact(base).inputs == {"generator": ref["generator"]}


def test_a_data_file_change_changes_the_keys_that_read_it(tmp_path, monkeypatch):
    from reasoning_infused.base.locations import shared_data_dir

    src = shared_data_dir() / "emotion"
    for name in ("train.txt", "val.txt", "test.txt"):
        (tmp_path / name).write_bytes((src / name).read_bytes())
    monkeypatch.setenv("RI_EMOTION_DIR", str(tmp_path))
    p = load_profile("smoke")
    before = artifacts.classifier_artifact(p, "qa").key, artifacts.predictions_artifact(p, "qa", "test").key
    with (tmp_path / "train.txt").open("a") as f:
        f.write("one more line;joy\n")
    after = artifacts.classifier_artifact(p, "qa").key, artifacts.predictions_artifact(p, "qa", "test").key
    assert before[0] != after[0]  # the training file changed
    assert artifacts.generator_artifact(p).key == artifacts.generator_artifact(p).key


# --- reuse and recomputation on the real (tiny) pipeline ---------------------------------------------------------


def test_unchanged_settings_reuse_every_artifact(smoke_study, monkeypatch):
    from reasoning_infused.pipeline import classifiers, generator
    from reasoning_infused.study.runner import evaluate_experiment

    p = load_profile("smoke")
    gen_before = artifacts.generator_artifact(p).metadata()["finished_at"]
    qa_before = artifacts.classifier_artifact(p, "qa").metadata()["finished_at"]

    def no_model(*a, **k):
        raise AssertionError("a model was loaded although every artifact exists")

    monkeypatch.setattr(loading, "load_classifier", no_model)
    monkeypatch.setattr(classifiers.loading, "load_classifier", no_model)
    assert generator.train_generator(p)["finished_at"] == gen_before
    assert classifiers.train_classifier(p, "qa")["finished_at"] == qa_before
    m = evaluate_experiment(p)
    assert m["classifiers"]["qa"] == smoke_study["metrics"]["classifiers"]["qa"]


def test_a_changed_setting_retrains_repredicts_and_leaves_other_experiments_intact(smoke_study):
    from reasoning_infused.pipeline.classifiers import train_classifier
    from reasoning_infused.study.runner import evaluate_experiment

    base = smoke_study["profile"]
    base_results = tree_digest(base.results_dir)
    base_qa = artifacts.classifier_artifact(base, "qa")
    base_qa_files = tree_digest(base_qa.path)

    p = load_profile("smoke", ["classifier.train.learning_rate=1e-2", "classifier.variants=[qa]"])
    assert p.experiment != "smoke" and p.results_dir != base.results_dir
    art = artifacts.classifier_artifact(p, "qa")
    assert art.key != base_qa.key and not art.is_complete()
    meta = train_classifier(p, "qa")
    assert meta["key"] == art.key and meta["settings"]["train"]["learning_rate"] == 1e-2
    assert "learning_rate" in json.dumps(meta["settings"])
    m = evaluate_experiment(p)
    assert set(m["training"]) == {"qa"} and m["training"]["qa"]["key"] == art.key
    assert m["profile"]["classifier"]["train"]["learning_rate"] == 1e-2
    assert (
        m["artifact_keys"]["predictions_qa__test"]
        != json.loads((base.results_dir / "metrics.json").read_text())["artifact_keys"][
            "predictions_qa__test"
        ]
    )
    # zero-shot does not depend on the classifier settings: its predictions are shared
    assert (
        m["artifact_keys"]["predictions_zero_shot__test"]
        == smoke_study["metrics"]["artifact_keys"]["predictions_zero_shot__test"]
    )
    assert (p.results_dir / "metrics.json").exists() and (p.results_dir / "profile.yaml").exists()
    # the base experiment's results and model are byte-identical
    assert tree_digest(base.results_dir) == base_results
    assert tree_digest(base_qa.path) == base_qa_files

    # a second experiment with other overrides leaves the first one's folder intact
    first = tree_digest(p.results_dir)
    q = load_profile("smoke", ["classifier.train.learning_rate=2e-2", "classifier.variants=[qa]"])
    train_classifier(q, "qa")
    evaluate_experiment(q)
    assert q.results_dir != p.results_dir and tree_digest(p.results_dir) == first
    assert tree_digest(base.results_dir) == base_results


def test_force_moves_the_old_artifact_aside_and_an_incomplete_one_is_recomputed(smoke_study):
    from reasoning_infused.pipeline.classifiers import train_classifier

    p = load_profile("smoke", ["classifier.train.learning_rate=3e-2"])
    art = artifacts.classifier_artifact(p, "qa")
    first = train_classifier(p, "qa")
    again = train_classifier(p, "qa", force=True)
    assert again["finished_at"] >= first["finished_at"]
    aside = list(art.path.parent.glob(f"{art.key}.old-*"))
    assert len(aside) == 1 and (aside[0] / "metadata.json").exists()  # kept, never deleted
    # weights deleted by hand: reported incomplete, not reused
    (art.path / "adapter_model.safetensors").unlink()
    assert not art.is_complete() and art.missing_files()
    with pytest.raises(artifacts.ArtifactMissing, match="train-classifier --variant qa"):
        loading.load_classifier(p, "qa")


def test_artifacts_command_lists_the_store_with_what_differs(smoke_study, capsys):
    from reasoning_infused.cli import main

    assert main(["artifacts", "--profile", "smoke"]) == 0
    out = capsys.readouterr().out
    assert "generator" in out and "predictions" in out and "complete" in out
    assert "learning_rate" in out  # the experiments above differ from the smoke profile by that setting


def test_a_stage_without_its_input_says_which_command_makes_it(isolated_outputs):
    from reasoning_infused.pipeline.augment import augment

    p = load_profile("smoke", ["generator.train.num_epochs=3"])
    with pytest.raises(
        artifacts.ArtifactMissing, match="train-generator --profile smoke --set generator.train"
    ):
        augment(p)


# --- the README report and the figures, from small saved results --------------------------------------------------


def test_report_and_figures_from_saved_results(smoke_study, tmp_path):
    from reasoning_infused.analysis.errors import RESULT_FIGURES, draw_result_figures
    from reasoning_infused.study.report import readme_results, update_readme

    p = smoke_study["profile"]
    metrics = json.loads((p.results_dir / "metrics.json").read_text())
    section = readme_results(metrics)
    acc = metrics["classifiers"]["qa"]["accuracy"]
    assert f"| Q→A (LoRA) | {p.data.test_size} | {acc:.3f}" in section
    assert "results/smoke/metrics.json" in section and metrics["code_version"] in section
    readme = tmp_path / "README.md"
    readme.write_text("head\n<!-- RESULTS:START -->\nOLD-SECTION\n<!-- RESULTS:END -->\ntail\n")
    update_readme(readme, section)
    text = readme.read_text()
    assert (
        "OLD-SECTION" not in text and section in text and text.startswith("head") and text.endswith("tail\n")
    )
    paths = draw_result_figures(p, metrics)
    assert {x.stem for x in paths} == set(RESULT_FIGURES)
    for x in paths:
        assert x.read_bytes()[:4] == b"\x89PNG" and x.parent == p.figures_dir
