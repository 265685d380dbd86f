"""The multi-task classifier (distilling step-by-step): two tasks per row, label scoring at test."""

import pytest
from reasoning_infused import load_profile
from reasoning_infused.data.emotion import LABELS
from reasoning_infused.data.prompts import multitask_version
from reasoning_infused.experiment.artifacts import classifier_artifact
from reasoning_infused.experiment.config import ProfileError
from reasoning_infused.pipeline.classifiers import classifier_examples, predict_sets, train_classifier
from reasoning_infused.pipeline.modeling import load_tokenizer

ROWS = [
    {"id": 0, "text": "i feel so alone tonight", "label": "sadness", "reasoning": "Being alone hurts."},
    {"id": 1, "text": "we won the cup", "label": "joy", "reasoning": "Answer: winning is fun."},
]


def test_two_examples_per_row_told_apart_by_the_task_prefix():
    tok = load_tokenizer(load_profile("smoke").model)
    ex = classifier_examples(tok, ROWS, "multitask")
    assert len(ex) == 4
    answer, explain = ex[0], ex[1]
    assert (
        "[label] i feel so alone tonight" in answer.prompt
        and "[rationale] i feel so alone tonight" in explain.prompt
    )
    assert answer.completion == "Answer: sadness"
    lo, hi = answer.label_span
    assert answer.completion[lo:hi] == "sadness"
    assert explain.completion == "Reasoning: Being alone hurts." and explain.label_span is None
    # a reasoning cannot smuggle an answer line into the explain task
    assert "Answer:" not in ex[3].completion


def test_the_multitask_key_records_its_own_prompt_file_only():
    p = load_profile("smoke", ["classifier.variants=[qa, multitask]"])
    art = classifier_artifact(p, "multitask")
    assert art.settings["multitask_prompt_version"] == multitask_version()
    assert "multitask_prompt_version" not in classifier_artifact(p, "qa").settings
    assert "augment" in art.inputs  # it trains on the reasonings
    with pytest.raises(ProfileError, match="label_loss_share"):
        load_profile("smoke", ["classifier.variants=[multitask]", "classifier.train.label_loss_share=0.25"])


def test_multitask_trains_on_both_tasks_and_scores_labels(smoke_study):
    p = load_profile("smoke", ["classifier.variants=[multitask]"])
    meta = train_classifier(p, "multitask")
    assert meta["rows"] == 2 * meta["train_rows"]  # the label task and the explain task of every row
    predict_sets(p, ["multitask"], ["validation"])
    from reasoning_infused.experiment.artifacts import read_predictions_artifact

    rows = read_predictions_artifact(p, "multitask", "validation")
    assert len(rows) == p.data.val_size
    assert all(r["predicted"] in LABELS and not r["parse_failed"] for r in rows)


def test_the_multitask_arm_control_trains_the_same_number_of_optimizer_steps():
    from reasoning_infused.base.locations import REPO_ROOT
    from reasoning_infused.study.ablation_plan import experiment_profile, load_ablation

    abl = load_ablation(REPO_ROOT / "ablations" / "qra_gap.yaml")  # every arm's settings validate
    arm = next(a for a in abl.arms if a.name == "multitask")
    control, multi = experiment_profile(abl, arm, 0, True), experiment_profile(abl, arm, 0, False)
    assert control.classifier.variants == ["qa"] and multi.classifier.variants == ["multitask"]
    steps = lambda p, per_row: p.data.train_size * per_row * p.classifier.train.num_epochs  # noqa: E731
    assert steps(control, 1) == steps(multi, 2)  # examples seen = optimizer steps x effective batch


def test_several_sampled_reasonings_per_row_are_keyed_and_trained_on(smoke_study):
    from reasoning_infused.experiment.artifacts import augment_artifacts, augmented_dataset
    from reasoning_infused.pipeline.augment import augment

    with pytest.raises(ProfileError, match="reasoning_samples"):
        load_profile("smoke", ["classifier.reasoning_samples=2"])  # greedy samples would be identical
    one = load_profile("smoke", ["augment.do_sample=true"])
    two = load_profile(
        "smoke", ["augment.do_sample=true", "classifier.reasoning_samples=2", "classifier.variants=[qra]"]
    )
    arts = augment_artifacts(two)
    assert len({a.key for a in arts}) == 2 and arts[0].key == augment_artifacts(one)[0].key
    key = classifier_artifact(two, "qra")
    assert set(key.inputs) == {"augment_0", "augment_1"} and key.settings["reasoning_samples"] == 2
    assert set(classifier_artifact(one, "qra").inputs) == {"augment"}  # unchanged when 1
    augment(two)
    assert all(a.is_complete() for a in arts)
    from reasoning_infused.experiment.artifacts import sample_profiles

    usable = [r for q in sample_profiles(two) for r in augmented_dataset(q) if r["reasoning"].strip()]
    assert len(usable) > len(augmented_dataset(one))  # rows from both samples
    meta = train_classifier(two, "qra")
    assert meta["train_rows"] == len(usable)  # every row with each of its sampled reasonings


def test_the_four_reasonings_arm_control_trains_the_same_number_of_optimizer_steps():
    from reasoning_infused.base.locations import REPO_ROOT
    from reasoning_infused.study.ablation_plan import experiment_profile, load_ablation

    abl = load_ablation(REPO_ROOT / "ablations" / "qra_gap.yaml")
    arm = next(a for a in abl.arms if a.name == "four_reasonings")
    control, qra = experiment_profile(abl, arm, 0, True), experiment_profile(abl, arm, 0, False)
    assert qra.classifier.reasoning_samples == 4 and qra.augment.do_sample
    assert control.data.train_size * control.classifier.train.num_epochs == qra.data.train_size * 4
