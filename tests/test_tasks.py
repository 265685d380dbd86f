"""A task is data (task.py): task files, their errors, the default task's byte-identical prompts and keys, and a
user's own two-input, three-label TSV task through the whole smoke study."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import write
from reasoning_infused.data.task import TaskError, load_task

TOY = """name: toy
labels: [agree, disagree, unrelated]
inputs: [premise, hypothesis]
instruction: "How does the second sentence relate to the first?"
files: {train: train.tsv, validation: validation.tsv, test: test.tsv}
"""

SUBJECTS = [
    "the cat",
    "a child",
    "my neighbour",
    "the old dog",
    "a teacher",
    "the pilot",
    "our team",
    "a farmer",
]
ACTS = ["sleeps", "runs", "sings", "reads", "cooks", "swims"]


def toy_rows(n: int, offset: int) -> str:
    """A header and n premise-hypothesis rows whose label follows from the words (so the task is learnable)."""
    lines = ["premise\thypothesis\tlabel"]
    for i in range(offset, offset + n):
        s, a = SUBJECTS[i % len(SUBJECTS)], ACTS[i % len(ACTS)]
        kind = ("agree", "disagree", "unrelated")[i % 3]
        hyp = {
            "agree": f"{s} {a}",
            "disagree": f"{s} never {a}",
            "unrelated": f"the weather is {('cold', 'warm')[i % 2]}",
        }[kind]
        lines.append(f"{s} {a} every day\t{hyp}\t{kind}")
    return "\n".join(lines) + "\n"


def toy_task(folder: Path, task_text: str = TOY, train: str | None = None) -> Path:
    write(folder / "train.tsv", train if train is not None else toy_rows(60, 0))
    write(folder / "validation.tsv", toy_rows(24, 100))
    write(folder / "test.tsv", toy_rows(30, 200))
    return write(folder / "toy.yaml", task_text)


def test_the_smallest_task_file_works_as_it_stands(tmp_path):
    task = load_task(str(toy_task(tmp_path)))
    assert task.labels == ("agree", "disagree", "unrelated") and task.inputs == ("premise", "hypothesis")
    assert task.render({"premise": "a b", "hypothesis": "c"}) == "Premise: a b\nHypothesis: c"
    assert task.files["train"] == (tmp_path / "train.tsv").resolve()  # relative to the task file
    assert task.identity() is not None and task.identity()["labels"] == list(task.labels)
    assert load_task("emotion").identity() is None  # the default task adds nothing to any key
    assert load_task("esnli").labels == ("entailment", "neutral", "contradiction")


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            ("labels: [agree, disagree, unrelated]", "labels: [agree, disagree, agree]"),
            r"labels\[2\].*declared twice",
        ),
        (("inputs: [premise, hypothesis]\n", ""), r"missing key 'inputs'"),
        (("train: train.tsv", "train: nowhere.tsv"), r"files\.train: file not found"),
        (
            (
                "inputs: [premise, hypothesis]",
                'inputs: [premise, hypothesis]\ninput_format: "{premise} {claim}"',
            ),
            r"input_format must show every input",
        ),
        (
            ("instruction:", "label_words: {maybe: [x]}\ninstruction:"),
            r"label_words\.maybe: not a declared label",
        ),
    ],
)
def test_bad_task_files_name_the_file_and_the_key(tmp_path, edit, message):
    path = toy_task(tmp_path, TOY.replace(*edit))
    with pytest.raises(TaskError, match=message) as e:
        load_task(str(path))
    assert str(path) in str(e.value)


@pytest.mark.parametrize(
    "train, message",
    [
        ("premise\tclaim\tlabel\na\tb\tagree\n", r"train\.tsv:1: no column \['hypothesis'\]"),
        ("premise\thypothesis\tlabel\na\tb\tagree\nc\td\tmaybe\n", r"train\.tsv:3: label 'maybe' is not one"),
        ("premise\thypothesis\tlabel\n", r"train\.tsv: no rows: the train split is empty"),
    ],
)
def test_bad_rows_name_the_data_file_the_line_and_the_task_key(tmp_path, train, message):
    from reasoning_infused.data.files import DataError
    from reasoning_infused.data.rows import load_split
    from reasoning_infused.experiment.config import load_profile

    path = toy_task(tmp_path, train=train)
    p = load_profile("smoke", [f"data.task={path}"])
    with pytest.raises(DataError, match=message) as e:
        load_split(p.data, "train")
    assert "files.train" in str(e.value)


def test_a_task_is_part_of_the_experiment_name_and_every_key(tmp_path):
    from reasoning_infused.experiment import artifacts
    from reasoning_infused.experiment.config import load_profile

    toy = load_profile("smoke", [f"data.task={toy_task(tmp_path)}"])
    emo = load_profile("smoke")
    assert "task=toy" in toy.experiment and toy.experiment != emo.experiment
    for stage in ("generator", "augment", "classifier_qa", "classifier_qra"):
        a, b = artifacts.experiment_artifacts(toy)[stage], artifacts.experiment_artifacts(emo)[stage]
        assert a.key != b.key and a.settings != b.settings
    assert "task" not in json.dumps(artifacts.classifier_artifact(emo, "qa").settings)


def test_the_default_task_keeps_the_committed_keys_and_prompts():
    """Emotion, now a task file, gives the same artifact keys as the committed results/default (so its predictions
    and the finished ablation arms stay valid) and the same prompts."""
    from reasoning_infused.base.locations import REPO_ROOT
    from reasoning_infused.data.prompts import classifier_messages, multitask_prompt
    from reasoning_infused.experiment import artifacts
    from reasoning_infused.experiment.config import load_profile

    committed = json.loads((REPO_ROOT / "results/default/metrics.json").read_text())["artifact_keys"]
    p = load_profile("default")
    mine = {name: a.key for name, a in artifacts.experiment_artifacts(p).items()}
    for v in [*p.classifier.variants, "zero_shot"]:
        for s in ("validation", "test", "ood_goemotions", "ood_isear"):
            mine[f"predictions_{v}__{s}"] = artifacts.predictions_artifact(p, v, s).key
    assert {k: mine.get(k) for k in committed} == committed
    emotion = load_task("emotion")
    assert classifier_messages("i feel fine", emotion) == classifier_messages("i feel fine")

    class Tok:
        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            return json.dumps(messages)

    assert multitask_prompt(Tok(), "x", "answer", emotion) == multitask_prompt(Tok(), "x", "answer")


@pytest.mark.slow
def test_a_users_two_input_three_label_task_runs_the_smoke_study_end_to_end(tmp_path):
    """The issue's acceptance command on a task the repository does not ship: generator, augmentation, the
    three classifiers, evaluation, analysis and every notebook; results and the explorer's table use the task's
    labels."""
    from reasoning_infused.analysis.explorer_table import explorer_table
    from reasoning_infused.cli import main
    from reasoning_infused.experiment.config import load_profile

    path = toy_task(tmp_path)
    assert main(["study", "--profile", "smoke", "--task", str(path)]) == 0
    p = load_profile("smoke", [f"data.task={path.resolve()}"])
    executed = sorted((p.scratch_dir / "notebooks").glob("*.ipynb"))
    assert [x.name[:2] for x in executed] == ["01", "02", "03", "04", "05", "06"]
    m = json.loads((p.results_dir / "metrics.json").read_text())
    assert m["task"] == "toy" and m["labels"] == ["agree", "disagree", "unrelated"]
    assert set(m["classifiers"]) >= {"qa", "qra", "qar", "qra_constrained", "majority", "tfidf_same_examples"}
    assert m["classifiers"]["qa"]["confusion_labels"] == ["agree", "disagree", "unrelated", "<unparsed>"]
    assert not m["ood"]  # the toy task declares no out-of-domain sets
    df = explorer_table(p.results_dir, "test")
    assert set(df.gold) <= {"agree", "disagree", "unrelated"} and len(df) == 30
    assert df.attrs["labels"] == ["agree", "disagree", "unrelated"]
    assert "Premise: " in df.text.iloc[0] and "\nHypothesis: " in df.text.iloc[0]
    rows = [
        json.loads(x) for x in (p.results_dir / "predictions" / "qra__test.jsonl").read_text().splitlines()
    ]
    assert set(rows[0]["scores"]) == {"agree", "disagree", "unrelated"}


def test_reasoning_quality_reads_the_tasks_labels_and_label_words(tmp_path):
    from reasoning_infused.analysis.quality import quality_report

    task = load_task(str(toy_task(tmp_path)))
    rows = [
        {"text": f"Premise: a{i}\nHypothesis: b{i}", "label": lab, "reasoning": why}
        for i, (lab, why) in enumerate(
            [("agree", "the two sentences agree"), ("disagree", "one says never"), ("unrelated", "weather")]
            * 8
        )
    ]
    report = quality_report(rows, task=task, bootstrap_samples=100)
    assert report["leaks_gold"] == pytest.approx(1 / 3)  # only the "agree" reasonings name their label
    with pytest.raises(ValueError, match="unknown label 'agree'"):
        quality_report(rows)  # read as emotion rows, the labels are unknown
