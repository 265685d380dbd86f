"""The ablation machinery on the smoke profile: a two-arm study YAML runs end to end, resumes at arm level,
and refuses arms without a written hypothesis."""

import json
import os
from pathlib import Path

import pytest
from reasoning_infused.experiment.config import ProfileError
from reasoning_infused.study.ablate import run_ablation
from reasoning_infused.study.ablation_plan import estimate_minutes, load_ablation

pytestmark = pytest.mark.slow

STUDY = """
study: smoke_study
profile: smoke
overrides: ["classifier.train.learning_rate=2e-3"]
arms:
  - name: seeds
    hypothesis: Q->RA differs from Q->A on the tiny model.
    outcome: Anything; this tests the machinery.
    verdict: {supported: [{upper_at_least: 0}], refuted: [{upper_below: 0}]}
    variants: [qa, qra]
    seeds: [0, 1]
  - name: bigger_budget
    hypothesis: A longer reasoning budget changes Q->RA.
    outcome: Anything; this tests the machinery.
    overrides: ["augment.max_new_tokens=6"]
    variants: [qa, qra]
    seeds: [0]
    ood: true
planned:
  - name: later
    hypothesis: h
    outcome: o
    needs: a feature
"""


def test_two_arm_study_runs_resumes_and_summarises(smoke_study, tmp_path, capsys):
    path = tmp_path / "smoke_study.yaml"
    path.write_text(STUDY)
    abl = load_ablation(path)
    assert estimate_minutes(abl, abl.arms[0]) > 0
    summary = run_ablation(abl, in_process=True)
    assert set(summary["arms"]) == {"seeds", "bigger_budget"} and summary["planned"][0]["name"] == "later"
    seeds = json.loads((abl.results_dir / "seeds.json").read_text())
    assert not (abl.results_dir / "seeds.partial.json").exists()  # interim file removed once the arm is done
    assert [r["seed"] for r in seeds["per_seed"]] == [0, 1]
    test = seeds["per_seed"][0]["sets"]["test"]
    assert {"qa", "qra", "qra_constrained"} <= set(test["classifiers"])
    comp = {c["second"]: c for c in test["comparisons"]}
    assert set(comp) == {"qra", "qra_constrained", "qra_selected"} and comp["qra"]["first"] == "qa"
    sel = seeds["per_seed"][0]["qra_selected_decoding"]
    assert comp["qra_selected"]["accuracy_difference"] == comp[sel]["accuracy_difference"]
    lo, hi = comp["qra"]["accuracy_difference_ci"]
    assert lo <= comp["qra"]["accuracy_difference"] <= hi
    s = seeds["summary"]["test:qra-qa"]
    assert len(s["accuracy_difference_per_seed"]) == 2 and s["accuracy_difference"]["seeds"] == 2
    # the seeds x rows interval: both seeds scored on the same test rows; its mean is the mean of the seeds'
    # differences; no per-row working data reaches the file
    sr = s["accuracy_difference_seeds_x_rows"]
    assert sr["seeds"] == 2 and sr["rows"] == test["classifiers"]["qa"]["n_test"]
    assert sr["mean"] == pytest.approx(sum(s["accuracy_difference_per_seed"]) / 2)
    assert sr["ci"][0] <= sr["mean"] <= sr["ci"][1]
    assert all(not k.startswith("_") for r in seeds["per_seed"] for k in r)
    # the two seeds' controls are different models; the same seed's control is shared by both arms
    keys = [r["artifact_keys"]["classifier_qa"] for r in seeds["per_seed"]]
    assert keys[0] != keys[1]
    bigger = json.loads((abl.results_dir / "bigger_budget.json").read_text())
    assert bigger["per_seed"][0]["artifact_keys"]["classifier_qa"] == keys[0]
    assert (
        bigger["per_seed"][0]["artifact_keys"]["classifier_qra"]
        != seeds["per_seed"][0]["artifact_keys"]["classifier_qra"]
    )
    assert "ood_goemotions" in bigger["per_seed"][0]["sets"]
    # out of domain, every difference comes with its per-class breakdown (net rows gained per gold class)
    ood = bigger["per_seed"][0]["sets"]["ood_goemotions"]["comparisons"][0]
    net = sum(c["net_rows_second_minus_first"] for c in ood["per_gold_class"].values())
    assert net == ood["only_second_correct"] - ood["only_first_correct"]
    # rescoring a finished arm from the stored predictions gives the same numbers, and says it was rescored
    before = bigger["summary"]
    run_ablation(abl, only=["bigger_budget"], rescore=True)
    again = json.loads((abl.results_dir / "bigger_budget.json").read_text())
    assert again["summary"] == before and "rescored" in again
    assert again["measured_minutes"] == bigger["measured_minutes"]
    # every seed's per-row record is committed beside the arm file; a clean clone (an empty artifact store)
    # rescores the same numbers from the records alone
    from reasoning_infused.study.ablation_record import read_record, record_path

    assert seeds["rows_recorded"] == [0, 1] and again["rows_recorded"] == [0]
    rec = read_record(abl, abl.arms[1], 0)
    qra = rec["classifiers"]["qra"]
    assert qra["optimizer_steps"] > 0 and qra["supervised_tokens_per_epoch"] > 0 and qra["role"] == "arm"
    test_rows = qra["sets"]["test"]["rows"]
    assert "reasoning" in test_rows[0] and "reasoning" not in qra["sets"]["validation"]["rows"][0]
    assert {"predicted", "predicted_constrained", "scores"} <= set(test_rows[0])
    first = record_path(abl, abl.arms[1], 0).read_bytes()
    store = Path(os.environ["RI_RUNS_DIR"])
    store.rename(store.with_name("runs-away"))
    try:
        written = json.loads((abl.results_dir / "seeds.json").read_text())
        written.pop("rows_recorded")  # an arm file from before the list: the committed records still count
        (abl.results_dir / "seeds.json").write_text(json.dumps(written))
        run_ablation(abl, only=["bigger_budget", "seeds"], rescore=True)
        for name, old in (("bigger_budget", before), ("seeds", seeds["summary"])):
            assert json.loads((abl.results_dir / f"{name}.json").read_text())["summary"] == old
        assert json.loads((abl.results_dir / "seeds.json").read_text())["rows_recorded"] == [0, 1]
        # an arm whose record is gone too is listed, and the others are still rescored
        gone = record_path(abl, next(a for a in abl.arms if a.name == "bigger_budget"), 0)
        kept = gone.read_bytes()
        gone.unlink()
        (abl.results_dir / "seeds.json").write_text(json.dumps(written))
        with pytest.raises(
            ProfileError, match=r"1 of 2 finished arms could not be rescored.*: bigger_budget;"
        ):
            run_ablation(abl, only=["bigger_budget", "seeds"], rescore=True)
        assert json.loads((abl.results_dir / "seeds.json").read_text())["rows_recorded"] == [0, 1]
        gone.write_bytes(kept)
        assert record_path(abl, abl.arms[1], 0).read_bytes() == first  # kept as it was
    finally:
        store.with_name("runs-away").rename(store)
    forest = Path(os.environ["RI_FIGURES_DIR"]) / "ablations" / "smoke_study_forest.png"
    assert forest.exists()
    from reasoning_infused.study.ablation_report import ablation_section

    text = ablation_section(summary, {"seeds": seeds, "bigger_budget": bigger})
    assert "### Arm `seeds`" in text and "s1" in text and "`later` (needs a feature)" in text
    assert (
        "**The factors at a glance**" in text and "| `bigger_budget` | `augment.max_new_tokens=6` |" in text
    )
    # the seeds arm's declared outcome, checked by its rule on its own numbers (printed with them)
    (verdict,) = summary["verdicts"]["seeds"]
    upper = seeds["summary"]["test:qra_selected-qa"]["accuracy_difference"]["ci"][1]
    assert verdict["verdict"] == ("supported" if upper >= 0 else "refuted")
    assert f"**Verdict**, checked by the arm's rule in the YAML: **{verdict['verdict']}**" in text
    assert "**Verdicts**" in text and "`seeds` " + verdict["verdict"] in text
    # the command writes the same section into a README between its markers
    from reasoning_infused.cli import main

    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- ABLATIONS:START -->\nold\n<!-- ABLATIONS:END -->\nend\n")
    assert main(["report", "--ablation", str(path), "--readme", str(readme)]) == 0
    written = readme.read_text()
    assert "### Arm `bigger_budget`" in written and "old" not in written and written.endswith("end\n")
    # a rerun skips the finished arms (same declaration)
    capsys.readouterr()
    run_ablation(load_ablation(path), in_process=True)
    assert capsys.readouterr().out.count("skipped") == 2
    # a changed declaration reruns that arm only (its artifacts are reused from the store)
    path.write_text(STUDY.replace("seeds: [0]\n    ood: true", "seeds: [0]\n    ood: false"))
    capsys.readouterr()
    run_ablation(load_ablation(path), in_process=True)
    assert capsys.readouterr().out.count("skipped") == 1
    # a changed study-level setting leaves every arm's declaration as it was but resolves to other artifacts:
    # the stored arms are stale, never summarised as the declared arms, and rescoring refuses them
    from reasoning_infused.study.ablation_results import arm_results, write_summary

    current = path.read_text()
    path.write_text(current.replace("learning_rate=2e-3", "learning_rate=3e-3"))
    changed = load_ablation(path)
    summary = write_summary(changed)
    assert set(summary["stale"]) == {"seeds", "bigger_budget"} and not summary["arms"]
    assert "settings changed" in summary["stale"]["seeds"] and "seeds" not in summary["not_run"]
    with pytest.raises(ProfileError, match="resolve to other artifacts"):
        run_ablation(changed, only=["seeds"], rescore=True)
    # a file written before arm identities (the old spec hash, no identity) is recorded by one --rescore
    path.write_text(current)
    abl = load_ablation(path)
    seeds_path = abl.results_dir / "seeds.json"
    legacy = json.loads(seeds_path.read_text())
    legacy.pop("identity")
    legacy["spec_hash"] = abl.arms[0].legacy_spec_hash(abl.overrides, abl.profile)
    seeds_path.write_text(json.dumps(legacy))
    assert "rescore" in arm_results(abl).stale["seeds"]
    with pytest.raises(ProfileError, match="--rescore"):
        run_ablation(abl, only=["seeds"], in_process=True)
    run_ablation(abl, only=["seeds"], rescore=True)
    assert set(arm_results(abl).done) == {"seeds", "bigger_budget"}


@pytest.mark.parametrize(
    "old, new, message",
    [
        (
            "hypothesis: Q->RA differs from Q->A on the tiny model.",
            'hypothesis: ""',
            "'hypothesis' must be written",
        ),
        (
            "variants: [qa, qra]\n    seeds: [0, 1]",
            "variants: [qra]\n    seeds: [0, 1]",
            "include the control",
        ),
        ("learning_rate=2e-3", "learnin_rate=2e-3", "learnin_rate"),
        ("name: bigger_budget", "name: seeds", "unique"),
        (
            "    variants: [qa, qra]\n    seeds: [0, 1]",
            "    verdict: {supported: [{shift_atleast: 3}], refuted: [{shift_within: 2}]}\n"
            "    variants: [qa, qra]\n    seeds: [0, 1]",
            r"arms\[0\] \(seeds\): seeds\.verdict\.supported\[0\]: unknown check 'shift_atleast'",
        ),
        (
            "arms:\n",
            "references: {qar: seeds}\narms:\n",
            r"references\.qar: arm 'seeds' does not train 'qar'",
        ),
        (
            "arms:\n",
            "references: {qra_selected: nope}\narms:\n",
            r"references\.qra_selected: no arm named 'nope'",
        ),
        ("arms:\n", "references: {qa: seeds}\narms:\n", r"references\.qa: not a comparison"),
    ],
)
def test_bad_declarations_are_refused_before_anything_runs(tmp_path, old, new, message):
    assert old in STUDY
    path = tmp_path / "s.yaml"
    path.write_text(STUDY.replace(old, new))
    with pytest.raises(ProfileError, match=message):
        load_ablation(path)


def test_a_stopped_arm_keeps_its_finished_seeds_as_interim_results(smoke_study, tmp_path, monkeypatch):
    from reasoning_infused.study import ablate

    path = tmp_path / "stopped.yaml"
    path.write_text(STUDY.replace("study: smoke_study", "study: stopped_study"))
    abl = load_ablation(path)
    real = ablate._run_stages

    def stop_at_seed_1(abl_, p, arm, in_process):
        if p.classifier.train.seed == 1:
            raise KeyboardInterrupt("simulated stop")
        return real(abl_, p, arm, in_process)

    monkeypatch.setattr(ablate, "_run_stages", stop_at_seed_1)
    with pytest.raises(KeyboardInterrupt):
        run_ablation(abl, only=["seeds"], in_process=True)
    interim = json.loads((abl.results_dir / "seeds.partial.json").read_text())
    assert interim["partial"] and interim["seeds_done"] == [0] and interim["seeds_declared"] == [0, 1]
    assert not (abl.results_dir / "seeds.json").exists()
    from reasoning_infused.study.ablation_report import ablation_section
    from reasoning_infused.study.ablation_results import write_summary

    summary = write_summary(abl)
    assert summary["interim"]["seeds"]["seeds_done"] == [0] and "seeds" not in summary["not_run"]
    text = ablation_section(summary, {"seeds": {**interim, "hypothesis": "h", "outcome": "o"}})
    assert "interim: seeds 0 of the declared 0, 1" in text
    # rescoring a stopped arm recomputes its finished seeds only, and it stays interim
    run_ablation(abl, only=["seeds"], rescore=True)
    again = json.loads((abl.results_dir / "seeds.partial.json").read_text())
    assert again["partial"] and [r["seed"] for r in again["per_seed"]] == [0] and "rescored" in again
    assert again["summary"] == interim["summary"] and not (abl.results_dir / "seeds.json").exists()
    assert again["per_seed_rows_correct"] == interim["per_seed_rows_correct"]
    # another machine, without this one's store: seed 0 is taken from the interim file, never trained or
    # scored again, and only seed 1 runs
    real_result = ablate._seed_result

    def machine_without_seed_0(fn):
        def wrapped(*args):
            seed = args[-1] if fn is real_result else args[1].classifier.train.seed
            assert seed != 0, "seed 0 was recomputed although the interim file holds it"
            return fn(*args)

        return wrapped

    monkeypatch.setattr(ablate, "_run_stages", machine_without_seed_0(real))
    monkeypatch.setattr(ablate, "_seed_result", machine_without_seed_0(real_result))
    assert set(ablate.resumable_seeds(abl, abl.arms[0])) == {0}  # what the estimate and the run skip
    resumed = run_ablation(abl, only=["seeds"], in_process=True)["arms"]["seeds"]
    done = json.loads((abl.results_dir / "seeds.json").read_text())
    assert done["seeds_resumed"] == [0] and done["per_seed"][0] == interim["per_seed"][0]
    assert not (abl.results_dir / "seeds.partial.json").exists()
    # the same numbers as a run that recomputes both seeds, the seeds x rows interval included
    monkeypatch.setattr(ablate, "_run_stages", real)
    monkeypatch.setattr(ablate, "_seed_result", real_result)
    (abl.results_dir / "seeds.json").unlink()
    fresh = run_ablation(abl, only=["seeds"], in_process=True)["arms"]["seeds"]
    assert "accuracy_difference_seeds_x_rows" in fresh["summary"]["test:qra-qa"]
    assert resumed == fresh


def test_an_arm_runs_only_once_declared_in_a_commit_and_its_declaration_is_frozen_by_results(tmp_path):
    import subprocess

    from reasoning_infused.base.provenance import write_json
    from reasoning_infused.study.ablation_plan import declaration_commit, refuse_redeclared

    repo = tmp_path / "repo"
    repo.mkdir()
    git = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True, text=True)  # noqa: E731
    git("init", "-q")
    git("config", "user.email", "t@t")
    git("config", "user.name", "t")
    path = repo / "s.yaml"
    path.write_text(STUDY)
    with pytest.raises(ProfileError, match="'seeds' is not declared in any commit"):
        declaration_commit(load_ablation(path), load_ablation(path).arms[0])
    git("add", "s.yaml")
    git("commit", "-qm", "declare")
    first = git("rev-parse", "--short=12", "HEAD").stdout.strip()
    abl = load_ablation(path)
    assert declaration_commit(abl, abl.arms[0]) == first
    # an unrelated edit to another arm, committed later: the seeds arm is still declared by the first commit
    path.write_text(STUDY.replace("A longer reasoning budget", "A longer budget"))
    git("commit", "-qam", "edit the other arm")
    abl = load_ablation(path)
    assert declaration_commit(abl, abl.arms[0]) == first
    # results under that declaration, then an edited declaration: refused, never recomputed silently
    write_json(
        abl.results_dir / "seeds.partial.json", {"spec_hash": abl.arms[0].spec_hash(), "declared_in": first}
    )
    refuse_redeclared(abl, abl.arms[0])
    path.write_text(STUDY.replace("differs from Q->A", "is below Q->A"))
    abl = load_ablation(path)
    with pytest.raises(ProfileError, match=f"declaration of commit {first}.*add a new arm"):
        refuse_redeclared(abl, abl.arms[0])


def test_the_committed_records_reproduce_committed_arm_seeds_without_a_store(monkeypatch, tmp_path):
    """The per-row records committed for the finished arms (here `seeds` and `qar_seeds`, seed 0, backfilled
    from results/default's predictions of the same keys) give back the committed numbers with an empty store."""
    from reasoning_infused.base.locations import REPO_ROOT
    from reasoning_infused.study import ablate
    from reasoning_infused.study.ablation_record import read_record

    monkeypatch.setenv("RI_RESULTS_DIR", str(REPO_ROOT / "results"))
    monkeypatch.setenv("RI_RUNS_DIR", str(tmp_path / "empty-store"))
    abl = load_ablation(REPO_ROOT / "ablations/qra_gap.yaml")
    for name in ("seeds", "qar_seeds"):
        arm = next(a for a in abl.arms if a.name == name)
        assert read_record(abl, arm, 0) is not None
        mine = ablate.for_json([ablate._seed_result(abl, arm, 0)])[0]["sets"]["test"]
        committed = json.loads((abl.results_dir / f"{name}.json").read_text())["per_seed"][0]["sets"]["test"]
        assert (
            mine["classifiers"] == committed["classifiers"]
            and mine["comparisons"] == committed["comparisons"]
        )


def test_the_committed_esnli_records_carry_gold_and_give_back_the_arm_accuracies(monkeypatch):
    """Version-2 records hold every row's gold label: the committed e-SNLI records alone give back each seed's
    test accuracies, and arms `human` and `seeds` (the same Q->A models) are compared row-paired."""
    from reasoning_infused.base.locations import REPO_ROOT
    from reasoning_infused.study.ablation_record import record_correctness, with_row_correctness
    from reasoning_infused.study.ablation_results import arm_results
    from reasoning_infused.study.verdicts import arm_gap, shares_control

    monkeypatch.setenv("RI_RESULTS_DIR", str(REPO_ROOT / "results"))
    abl = load_ablation(REPO_ROOT / "ablations/esnli.yaml")
    done = arm_results(abl).done
    assert {"seeds", "human"} <= set(done)
    rows = with_row_correctness(abl, done)
    for name in ("seeds", "human"):
        for k, s in enumerate(done[name]["per_seed"]):
            for clf, m in s["sets"]["test"]["classifiers"].items():
                got = rows[name]["_rows"][f"test:{clf}"]["correct"][k].mean()
                assert got == pytest.approx(m["accuracy"]), (name, k, clf)
    a, b = (arm_gap(rows[n], "test", "qra_selected", "seeds_x_rows") for n in ("human", "seeds"))
    assert shares_control(a, b)
    assert record_correctness({"classifiers": {}}, None) == {}  # a version-1 record has no gold


def test_the_strict_reading_names_the_shifts_whose_sign_depends_on_the_scale(monkeypatch):
    """data_8k moves Q->RA's gap by +0.7 points against `seeds` but its Q->A is stronger, so on the log-odds
    scale the same shift is negative: the report says so; grounded_reasonings' shift is positive on both."""
    from reasoning_infused.base.locations import REPO_ROOT
    from reasoning_infused.study.ablation_results import arm_results
    from reasoning_infused.study.strict_reading import strict_section

    monkeypatch.setenv("RI_RESULTS_DIR", str(REPO_ROOT / "results"))
    abl = load_ablation(REPO_ROOT / "ablations/qra_gap.yaml")
    text = strict_section(abl, arm_results(abl).done)
    flips = text.split("**The scale changes the sign**")[1].split("\n")[0]
    assert "`data_8k` (Q→RA (decoding chosen on validation): +0.7 points, -0.42 log-odds)" in flips
    assert "`grounded_reasonings`" not in flips


def test_the_estimate_counts_the_sampled_reasonings_of_self_consistency(tmp_path, monkeypatch):
    """k sampled reasonings per row cost k more passes over each evaluation set than the greedy decoding
    (nothing is in the store: with only the per-sample rate non-zero, the greedy arm costs nothing)."""
    from reasoning_infused.study.ablation_plan import experiment_profile

    monkeypatch.setenv("RI_RUNS_DIR", str(tmp_path / "empty-store"))
    monkeypatch.setenv("RI_RESULTS_DIR", str(tmp_path / "results"))
    path = tmp_path / "sc.yaml"
    path.write_text(
        "study: sc_study\nprofile: smoke\narms:\n"
        "  - {name: greedy, hypothesis: h, outcome: o, variants: [qa, qra], seeds: [0]}\n"
        "  - {name: sc, hypothesis: h, outcome: o, variants: [qa, qra], seeds: [0],"
        ' overrides: ["classifier.self_consistency=5"]}\n'
    )
    abl = load_ablation(path)
    rates = {"train_row": 0.0, "augment_row": 0.0, "predict_row_qa": 0.0, "predict_row_qra": 0.0}
    rates["predict_row_qra_sample"] = 1.0
    greedy, sc = (estimate_minutes(abl, arm, rates) for arm in abl.arms)
    d = experiment_profile(abl, abl.arms[1], 0, False).data
    assert greedy == 0
    assert sc * 60 == pytest.approx(5 * (d.val_size + d.test_size))  # one Q->RA classifier, two sets
