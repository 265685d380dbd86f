"""Reliability, table-driven: every known failure is one clear line (exit 2) naming the key, file or command, never a
traceback; a killed or damaged run resumes or recomputes with nothing lost. Smoke profile throughout."""

import json
import shutil

import pytest
from conftest import write
from reasoning_infused.cli import main
from reasoning_infused.data.emotion import load_emotion, load_ood
from reasoning_infused.data.reasoning_triples import load_reasoning_triples
from reasoning_infused.experiment import artifacts
from reasoning_infused.experiment.config import load_profile


def run(capsys, *args):
    rc = main(list(args))
    out = capsys.readouterr()
    return rc, out.out, out.err


# --- settings --------------------------------------------------------------------------------------------------

SETTING_CASES = [
    # (arguments after `data --profile smoke`, expected exit code, text the error must contain)
    (["--set", "classifier.train.learning_rate=1e-4"], 0, ""),  # the README's example: any float syntax
    (["--set", "data.emotion_dir=[x"], 2, "data.emotion_dir"),
    (["--set", "generator.heldout_size=-3"], 2, "generator.heldout_size"),
    (["--set", "classifier.predict_batch_size=0"], 2, "classifier.predict_batch_size"),
    (["--set", "classifier.max_new_tokens=-1"], 2, "classifier.max_new_tokens"),
    (["--set", "classifier.train.lora_alpha=-1"], 2, "classifier.train.lora_alpha"),
    (["--set", "classifier.train.logging_steps=0"], 2, "classifier.train.logging_steps"),
    (["--set", "augment.temperature=-1.0"], 2, "augment.temperature"),
    (["--set", "augment.top_p=1.5"], 2, "augment.top_p"),
    (["--set", "classifier.reasoning_transform=reverse"], 2, "classifier.reasoning_transform"),
    (["--set", "data.train_size"], 2, "section.key=value"),
    (["--set", "name=/etc"], 2, "--name"),
    (["--name", "../../x"], 2, "not allowed"),
    (["--name", "/etc"], 2, "not allowed"),
    (["--name", "default"], 2, "reserved"),  # smoke settings can never write into results/default
]


@pytest.mark.parametrize("args, rc, text", SETTING_CASES)
def test_settings_are_validated_with_a_message_naming_the_key(capsys, args, rc, text):
    code, _, err = run(capsys, "data", "--profile", "smoke", *args)
    assert code == rc, err
    assert text in err and "Traceback" not in err


def test_a_folder_or_a_missing_file_as_profile(capsys, tmp_path):
    code, _, err = run(capsys, "data", "--profile", str(tmp_path))
    assert code == 2 and "is a folder" in err
    code, _, err = run(capsys, "data", "--profile", str(tmp_path / "none.yaml"))
    assert code == 2 and "profile file not found" in err


# --- data edge cases ---------------------------------------------------------------------------------------------


def _emotion(tmp_path, train: bytes):
    d = tmp_path / "emotion"
    write(d / "train.txt", train)
    write(d / "val.txt", "so angry;anger\n")
    write(d / "test.txt", "scared;fear\n")
    return str(d)


DATA_CASES = [
    # (train.txt bytes, error text or None, expected texts when it loads)
    (b"\xef\xbb\xbfi feel fine;joy\ni am sad;sadness\n", None, ["i feel fine", "i am sad"]),  # BOM dropped
    (b"i feel fine;joy\r\ni am sad;sadness\r\n", None, ["i feel fine", "i am sad"]),  # CRLF
    (b"i feel fine;joy\ni am sad;sadness\n\n\n", None, ["i feel fine", "i am sad"]),  # trailing blank lines
    (b"i feel fine;joy\n\ni am sad;sadness\n", r"train\.txt:2: blank line", None),
    (b"i feel fine;joy\nno separator\n", r"train\.txt:2: no ';'", None),
    (b"ok;joy\nbad \xff bytes;joy\n", r"train\.txt:2: bytes that are not UTF-8", None),
]


@pytest.mark.parametrize("content, error, texts", DATA_CASES)
def test_emotion_file_edge_cases(tmp_path, content, error, texts):
    d = _emotion(tmp_path, content)
    if error:
        with pytest.raises(Exception, match=error):
            load_emotion("train", d)
    else:
        assert load_emotion("train", d)["text"] == texts


def test_crlf_and_bom_in_the_reasoning_and_ood_files(tmp_path):
    flan = tmp_path / "reasoning" / "flan_cot"
    write(flan / "ecqa_train.tsv", b"\xef\xbb\xbfq1\ta1\tr1\r\nq2\ta2\tr2\r\n")
    rows = load_reasoning_triples(["ecqa"], str(tmp_path / "reasoning"))
    assert rows["question"] == ["q1", "q2"] and rows["reasoning"] == ["r1", "r2"]
    write(tmp_path / "ood" / "isear" / "mapped.tsv", b"\xef\xbb\xbftext\tlabel\r\ni was scared\tfear\r\n")
    assert load_ood("isear", str(tmp_path / "ood"))["text"] == ["i was scared"]


def test_a_bad_ood_file_is_an_error_but_a_missing_one_is_not(capsys, tmp_path, monkeypatch):
    ood = tmp_path / "ood"
    write(ood / "isear" / "mapped.tsv", "text\tlabel\ni was scared\tterror\n")
    write(ood / "goemotions" / "mapped_test_only.tsv", "text\tlabel\nyay\tjoy\n")
    monkeypatch.setenv("RI_OOD_DIR", str(ood))
    code, _, err = run(capsys, "data", "--profile", "smoke")
    assert code == 2 and "mapped.tsv:2: unknown label 'terror'" in err
    shutil.rmtree(ood / "isear")
    code, out, _ = run(capsys, "data", "--profile", "smoke")
    assert code == 0 and "ood/isear: not available" in out


# --- artifacts: missing, incomplete, damaged ----------------------------------------------------------------------


@pytest.mark.slow
def test_stage_without_its_input_names_the_command(capsys, isolated_outputs):
    code, _, err = run(capsys, "augment", "--profile", "smoke", "--set", "generator.train.num_epochs=4")
    assert code == 2 and "train-generator --profile smoke --set generator.train.num_epochs=4.0" in err
    code, _, err = run(
        capsys, "evaluate", "--profile", "smoke", "--set", "classifier.train.learning_rate=0.123"
    )
    assert code == 2 and "train-classifier --variant qa" in err and "Traceback" not in err


@pytest.mark.slow
def test_incomplete_or_garbled_artifacts_are_recomputed_never_reused(smoke_study, capsys):
    from reasoning_infused.pipeline.classifiers import train_classifier

    p = load_profile("smoke", ["classifier.train.learning_rate=4e-2"])
    art = artifacts.classifier_artifact(p, "qa")
    first = train_classifier(p, "qa")
    for damage in ("weights", "metadata"):
        if damage == "weights":
            (art.path / "adapter_model.safetensors").unlink()
        else:
            (art.path / "metadata.json").write_text("{ not json")
        assert not art.is_complete()
        again = train_classifier(p, "qa")
        assert again["key"] == first["key"] and art.is_complete()
        assert "moved to" in capsys.readouterr().out
    assert len(list(art.path.parent.glob(f"{art.key}.old-*"))) >= 1  # the damaged folders are kept aside


@pytest.mark.slow
def test_corrupt_or_conflicting_augmentation_rows_are_named(smoke_study, capsys):
    from reasoning_infused.pipeline.augment import generate_reasonings

    p = load_profile("smoke", ["augment.max_new_tokens=5"])
    path = generate_reasonings(p, limit_rows=6)
    good = path.read_text()
    lines = good.splitlines(keepends=True)
    path.write_text("".join(lines[:2]) + "{torn\n" + "".join(lines[2:]))
    code, _, err = run(capsys, "augment", "--profile", "smoke", "--set", "augment.max_new_tokens=5")
    assert code == 2 and "reasonings.jsonl:3: not valid JSON" in err and "Traceback" not in err
    row = json.loads(lines[0])
    path.write_text(good + json.dumps({**row, "reasoning": "something else"}) + "\n")
    code, _, err = run(capsys, "augment", "--profile", "smoke", "--set", "augment.max_new_tokens=5")
    assert code == 2 and f"row id {row['id']} appears twice" in err
    path.write_text(good)  # repaired by hand: the run completes from where it was
    code, _, err = run(capsys, "augment", "--profile", "smoke", "--set", "augment.max_new_tokens=5")
    assert code == 0, err


@pytest.mark.slow
@pytest.mark.parametrize("damage", ["no trainer_state", "torn weights", "empty optimizer"])
def test_a_kill_during_a_checkpoint_save_resumes_from_the_newest_complete_one(
    smoke_study, tmp_path, capsys, damage
):
    import dataclasses

    from reasoning_infused.pipeline.classifiers import classifier_examples, training_rows
    from reasoning_infused.pipeline.modeling import load_tokenizer
    from reasoning_infused.pipeline.training import train_sft
    from transformers import TrainerCallback

    p = smoke_study["profile"]
    tc = dataclasses.replace(p.classifier.train, save_steps=1)
    examples = classifier_examples(load_tokenizer(p.model), training_rows(p, "qa"), "qa")

    class Kill(TrainerCallback):
        def on_save(self, args, state, control, **kw):
            if state.global_step == 3:
                raise KeyboardInterrupt("simulated kill after the save of step 3")

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        train_sft(p.model, tc, examples, out, name="kill-test", callbacks=[Kill()])
    ck3 = out / "checkpoints" / "checkpoint-3"
    assert ck3.exists() and (out / "checkpoints" / "checkpoint-2").exists()
    # what a kill in the middle of writing checkpoint-3 leaves behind
    if damage == "no trainer_state":
        (ck3 / "trainer_state.json").unlink()
    elif damage == "torn weights":
        w = ck3 / "adapter_model.safetensors"
        w.write_bytes(w.read_bytes()[:5])
    else:
        (ck3 / "optimizer.pt").write_bytes(b"")
    capsys.readouterr()
    meta = train_sft(p.model, tc, examples, out, name="kill-test")
    log = capsys.readouterr().out
    assert "skipping checkpoint-3" in log and meta["resumed_from"].endswith("checkpoint-2")
    assert meta["optimizer_steps"] == 5
    assert list((out).glob("checkpoints")) == [] and (out / "train_meta.json").exists()


def test_no_local_data_and_no_reachable_hub_is_a_clear_error(monkeypatch):
    import reasoning_infused.data.emotion as d

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(d, "resolve_dir", lambda *a: None)  # as on a machine without ../shared/data
    with pytest.raises(d.DataNotFound, match="hub copy of dair-ai/emotion could not be loaded"):
        d.load_emotion("train")


# --- interruption ---------------------------------------------------------------------------------------------

STOPPABLE_PARENT = """
import sys
from reasoning_infused.cli import stop_on_sigterm
from reasoning_infused.study.runner import run_process

stop_on_sigterm()
child = "import os, pathlib, signal, time; {ignore}pathlib.Path(sys.argv[1]).write_text(str(os.getpid())); time.sleep(120)"
try:
    run_process([sys.executable, "-c", "import sys; " + child, sys.argv[1]], stop_grace_s=2)
except KeyboardInterrupt:
    sys.exit(130)
"""


@pytest.mark.parametrize(
    "ignore",
    ["", "signal.signal(signal.SIGTERM, signal.SIG_IGN); "],
    ids=["child-stops", "child-ignores-sigterm"],
)
def test_stopping_a_runner_stops_its_stage_process(tmp_path, ignore):
    """SIGTERM to the runner (as `kill` or an ending session sends) must not leave a stage training beside the rerun:
    the child is terminated, or killed after the grace period when it ignores SIGTERM."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script, pid_file = tmp_path / "parent.py", tmp_path / "child.pid"
    script.write_text(STOPPABLE_PARENT.replace("{ignore}", ignore))
    parent = subprocess.Popen([sys.executable, str(script), str(pid_file)])
    deadline = time.time() + 60
    while not (pid_file.exists() and pid_file.read_text()) and time.time() < deadline:
        time.sleep(0.1)
    child_pid = int(pid_file.read_text())
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=30) == 130
    with pytest.raises(ProcessLookupError):
        os.kill(child_pid, 0)
