import json
import os
import subprocess
import sys

from conftest import write
from reasoning_infused.study import runner as study


def run(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "reasoning_infused", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
    )


def test_data_command_prints_known_counts():
    r = run("data", "--profile", "smoke")
    assert r.returncode == 0, r.stderr
    assert "16000 rows" in r.stdout and "2000 rows" in r.stdout
    assert "sadness 4666, joy 5362, love 1304, anger 2159, fear 1937, surprise 572" in r.stdout
    assert "DIFFERS" not in r.stdout


def test_broken_emotion_file_gives_a_one_line_error(tmp_path):
    d = tmp_path / "emotion"
    write(d / "train.txt", "fine;joy\nthis line has no separator\n")
    write(d / "val.txt", "x;joy\n")
    write(d / "test.txt", "x;joy\n")
    r = run("data", "--profile", "smoke", env={"RI_EMOTION_DIR": str(d)})
    assert r.returncode == 2
    err = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(err) == 1 and "train.txt:2" in err[0] and "Traceback" not in r.stderr


def test_bad_profile_override_is_a_clear_error():
    r = run("data", "--profile", "smoke", "--set", "data.train_sise=3")
    assert r.returncode == 2 and "data.train_sise" in r.stderr


def test_the_study_prepares_the_model_in_its_own_process_before_training(isolated_outputs, monkeypatch):
    """The GGUF's materialisation runs as its own stage (its memory then never adds to the generator's training
    peak), recorded with its own time and peak memory."""
    import json

    from reasoning_infused import load_profile

    calls = []
    monkeypatch.setattr(
        study, "run_cli_stage", lambda profile, overrides, exp, *args: calls.append(args) or 0.5
    )
    p = load_profile("smoke", experiment="study-order")
    study.run_study(p, notebooks=False)
    assert calls[:2] == [("prepare-model",), ("train-generator",)]
    assert "prepare_model" in json.loads((p.results_dir / "peak_rss_gib.json").read_text())
    r = run("prepare-model", "--profile", "smoke")
    assert r.returncode == 0, r.stderr
    assert "nothing to prepare for model.source=tiny-random" in r.stdout


def test_preparing_an_already_materialised_model_does_nothing(tmp_path, monkeypatch):
    from reasoning_infused.experiment.settings import ModelConfig
    from reasoning_infused.pipeline.modeling import prepare_model

    monkeypatch.setenv("RI_CACHE_DIR", str(tmp_path))
    write(tmp_path / "smollm2-135m-instruct" / "config.json", "{}")
    write(tmp_path / "smollm2-135m-instruct" / "model.safetensors", b"")
    assert prepare_model(ModelConfig()) == f"already materialised: {tmp_path / 'smollm2-135m-instruct'}"


def test_every_report_regenerates_byte_for_byte_from_the_committed_results(monkeypatch):
    """Each REPORT.md beside its results is what `report --all` writes from the committed files: regenerating
    gives the same bytes (no report is edited by hand, none lags behind its results)."""
    from reasoning_infused.base.locations import REPO_ROOT
    from reasoning_infused.study.ablation_plan import load_ablation
    from reasoning_infused.study.ablation_results import study_summary
    from reasoning_infused.study.report import ablation_report, experiment_report, sweep_report

    results = REPO_ROOT / "results"
    monkeypatch.setenv("RI_RESULTS_DIR", str(results))
    checked = 0
    for metrics in sorted(results.glob("*/metrics.json")):
        assert experiment_report(metrics.parent) == (metrics.parent / "REPORT.md").read_text(), metrics.parent
        checked += 1
    for sweep in sorted((results / "generator_sweep").glob("*.json")):
        assert sweep_report(json.loads(sweep.read_text())) == sweep.with_name("REPORT.md").read_text()
        checked += 1
    for study_yaml in sorted((REPO_ROOT / "ablations").glob("*.yaml")):
        abl = load_ablation(study_yaml)
        assert ablation_report(abl) == (abl.results_dir / "REPORT.md").read_text(), study_yaml
        # summary.json too (all but its provenance): `report --all` leaves it untouched when nothing changed
        fresh = json.loads(json.dumps(study_summary(abl)))
        committed = json.loads((abl.results_dir / "summary.json").read_text())
        for d in (fresh, committed):
            d.pop("code_version"), d.pop("written_at")
        assert fresh == committed, study_yaml
        checked += 1
    assert checked >= 5
    # the README's tables are generated the same way, between their markers
    from reasoning_infused.study.report import answer_table, notebook_table

    readme = (REPO_ROOT / "README.md").read_text()
    for marker, text in (("ANSWER", answer_table()), ("NOTEBOOKS", notebook_table(results / "default"))):
        block = readme.split(f"<!-- {marker}:START -->\n", 1)[1].split(f"<!-- {marker}:END -->", 1)[0]
        assert block.strip() == text.strip(), marker
    assert len(readme.splitlines()) <= 250
