"""The generator sweep: candidates judged on held-out training rows, a declared rule picks one."""

import json

import pytest
from reasoning_infused import load_profile
from reasoning_infused.data.rows import classifier_train_rows
from reasoning_infused.experiment.artifacts import augment_artifact, heldout_reasonings_artifact
from reasoning_infused.experiment.config import ProfileError
from reasoning_infused.study.generator_sweep import choose, load_sweep, qualifies, run_sweep, sweep_table

SWEEP = """
name: tiny
profile: smoke
rows: 60
seed: 1
rule: LAS and grounding higher (paired intervals above 0), repetition not higher; the largest LAS gain.
candidates:
  - name: default
  - name: no_repeat_2
    overrides: ["augment.no_repeat_ngram_size=2"]
    why: repetition control
"""


def _cmp(las_lo, las, ground_lo, rep_lo):
    return {
        "las": {"ci": [las_lo, 1], "difference": las},
        "grounding": {"ci": [ground_lo, 1]},
        "repetitive": {"ci": [rep_lo, 1]},
    }


def test_the_declared_rule_on_known_comparisons():
    assert qualifies(_cmp(0.01, 0.05, 0.02, -0.1))
    assert not qualifies(_cmp(-0.01, 0.05, 0.02, -0.1))  # LAS interval includes 0
    assert not qualifies(_cmp(0.01, 0.05, -0.02, -0.1))  # grounding not higher
    assert not qualifies(_cmp(0.01, 0.05, 0.02, 0.01))  # more repetitive
    assert choose({"a": _cmp(0.01, 0.03, 0.02, -0.1), "b": _cmp(0.02, 0.08, 0.01, -0.1)}) == "b"
    assert choose({"a": _cmp(-0.01, 0.03, 0.02, -0.1)}) is None


def test_repetition_control_is_keyed_only_when_set():
    """Settings added later stay out of the key when unset: the committed default augmentation keeps its key."""
    default = load_profile("default")
    assert augment_artifact(default).settings["decoding"] == {
        "backend": "transformers",
        "max_new_tokens": 40,
        "do_sample": False,
    }
    other = load_profile("default", ["augment.no_repeat_ngram_size=3"])
    assert augment_artifact(other).key != augment_artifact(default).key
    with pytest.raises(ProfileError, match="augment.backend"):
        load_profile("default", ["augment.repetition_penalty=1.2", "augment.backend=ct2"])


@pytest.mark.parametrize(
    "edit, message",
    [
        ("  - name: default\n", "  - name: default\n    overrides: ['augment.max_new_tokens=8']\n"),
        ("rows: 60", "rows: 10"),
        ("name: tiny", "name: tiny\ncolour: red"),
    ],
)
def test_bad_sweeps_are_refused_before_anything_runs(tmp_path, edit, message):
    old, new = edit, message
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP.replace(old, new))
    with pytest.raises(ProfileError, match=str(path)):
        load_sweep(path)


def test_sweep_on_the_smoke_profile(smoke_study, tmp_path):
    path = tmp_path / "sweep.yaml"
    path.write_text(SWEEP)
    sweep = load_sweep(path)
    result = run_sweep(sweep, in_process=True, bootstrap_samples=50)
    saved = json.loads(sweep.results_path.read_text())
    assert saved["chosen"] == result["chosen"] and saved["reference"] == "default"
    assert sweep.figure_path.stat().st_size > 0  # the grounding-against-LAS plot of the candidates
    ref, cand = result["candidates"]["default"], result["candidates"]["no_repeat_2"]
    assert "against_reference" not in ref and cand["qualifies"] == qualifies(cand["against_reference"])
    assert cand["against_reference"]["rows"] == 60 and "las" in cand["against_reference"]
    # the rows are training rows no classifier of the profile trains on
    p = load_profile("smoke")
    art = heldout_reasonings_artifact(p, 60, 1)
    ids = {json.loads(line)["id"] for line in (art.path / "reasonings.jsonl").read_text().splitlines()}
    assert len(ids) == 60 and not ids & set(classifier_train_rows(p.data)["id"])
    # a rerun reuses every generator and every set of reasonings
    before = art.metadata()["finished_at"]
    run_sweep(sweep, in_process=True, bootstrap_samples=50)
    assert art.metadata()["finished_at"] == before
    assert "| `default` |" in sweep_table(result)
