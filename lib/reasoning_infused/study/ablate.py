"""Preregistered ablation studies: one YAML declares arms (hypothesis, expected outcome, overrides, variants,
seeds), one command runs them arm by arm.

    python -m reasoning_infused ablate ablations/<study>.yaml [--arm NAME] [--dry-run]

Each arm and seed is an experiment (the profile plus the study's and the arm's overrides plus the training seed);
its stages run as their own processes and share every upstream artifact with other arms through the settings keys
(a Q->A control with the same classifier settings is trained once for all arms). A finished arm writes
results/ablations/<study>/<arm>.json: per seed, accuracy and macro-F1 with intervals on the full test set and the
paired comparison of each variant with the arm's matched Q->A control; over seeds, mean, SD and a t-interval of
the difference. A rerun skips finished arms whose declaration and identity are unchanged, and a stopped arm
resumes after its last finished seed (kept with its per-row correctness in <arm>.partial.json, so even a new
machine without the artifact store does not retrain it): a stopped session loses at most the seed in flight.
`summary.json` and a forest plot collect the arms.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np

from reasoning_infused.base.provenance import code_version, lock_hash, write_json
from reasoning_infused.data.rows import evaluation_sets, task_of
from reasoning_infused.experiment import artifacts
from reasoning_infused.experiment.config import (
    ProfileError,
    override_args,
)
from reasoning_infused.experiment.settings import Profile
from reasoning_infused.pipeline.metrics import (
    classification_metrics,
    mcnemar,
    paired_bootstrap_difference,
    seed_summary,
    seeds_items_bootstrap,
    seeds_needed,
)
from reasoning_infused.study.ablation_plan import (
    Ablation,
    Arm,
    arm_file_state,
    arm_identity,
    arm_sets,
    declaration_commit,
    estimate_minutes,
    experiment_profile,
    measured_rates,
    refuse_redeclared,
    resumable_seeds,
)
from reasoning_infused.study.ablation_record import (
    prediction_rows,
    read_record,
    recorded_predictions,
    write_record,
)
from reasoning_infused.study.ablation_results import write_summary
from reasoning_infused.study.ablation_rows import rows_correct_to_json, rows_fingerprint

# --- time estimate from measured rates --------------------------------------------------------------------------


# --- running ----------------------------------------------------------------------------------------------------


def _run_stages(abl: Ablation, p: Profile, arm: Arm, in_process: bool) -> None:
    """Make every artifact the experiment needs: generator and augmentation (if a variant reads reasonings),
    each classifier, and its predictions on the arm's sets."""
    needs_reasonings = (  # generated ones: human reasonings need no generator
        any(v != "qa" for v in p.classifier.variants) and p.classifier.reasoning_source == "generated"
    )
    steps: list[tuple[str, ...]] = []
    if needs_reasonings:
        steps += [("train-generator",), ("augment",)]
    steps += [("train-classifier", "--variant", v) for v in p.classifier.variants]
    steps += [
        ("predict", *[x for v in p.classifier.variants for x in ("--variant", v)], "--sets", *arm_sets(arm))
    ]
    if in_process:  # the tests: the same steps as functions, without a process per step
        from reasoning_infused.pipeline.augment import augment
        from reasoning_infused.pipeline.classifiers import predict_sets, train_classifier
        from reasoning_infused.pipeline.generator import train_generator

        if needs_reasonings:
            train_generator(p)
            augment(p)
        for v in p.classifier.variants:
            train_classifier(p, v)
        predict_sets(p, list(p.classifier.variants), arm_sets(arm))
        return
    from reasoning_infused.study.runner import run_cli_stage

    for step in steps:
        run_cli_stage(abl.profile, override_args(p), p.experiment, *step)


def stored_predictions(p: Profile, variant: str, set_name: str, record: dict[str, Any] | None) -> list[dict]:
    """One classifier's predictions on one set: from the artifact store, else from the arm's committed per-row
    record (a clean clone), else an experiment's committed predictions of the same key; ArtifactMissing names
    the prediction when none has it."""
    art = artifacts.predictions_artifact(p, variant, set_name)
    if art.is_complete():
        return artifacts.read_predictions_artifact(p, variant, set_name)
    rows = recorded_predictions(record, variant, set_name, art.key)
    return rows if rows is not None else prediction_rows(p, variant, set_name)


def record_seeds(abl: Ablation, arm: Arm, seeds: list[int]) -> list[int]:
    """Write the per-row record of every seed whose predictions the store holds (a seed the store lacks keeps
    the record it has); returns the seeds written."""
    written = []
    for seed in seeds:
        try:
            write_record(abl, arm, seed)
            written.append(seed)
        except artifacts.ArtifactMissing:
            continue
    return written


def _seed_result(abl: Ablation, arm: Arm, seed: int) -> dict[str, Any]:
    """Metrics of every variant of one seed (from the stored predictions) and the paired comparisons with the
    control on test (and out-of-domain sets when the arm asks)."""
    from reasoning_infused.pipeline.evaluate import (
        label_space_sensitivity,
        per_class_difference,
        predictions_by_classifier,
        select_qra_decoding,
    )

    control_p = experiment_profile(abl, arm, seed, True)
    arm_p = experiment_profile(abl, arm, seed, False)
    ev = arm_p.evaluate
    sets = evaluation_sets(arm_p.data, include_ood=arm.ood)
    labels = list(task_of(arm_p.data).labels)
    kw = {
        "n_bootstrap": ev.bootstrap_samples,
        "level": ev.ci_level,
        "seed": arm_p.data.seed,
        "labels": labels,
    }
    rows: dict[str, dict[str, list]] = {s: {} for s in arm_sets(arm)}
    keys = {}
    record = read_record(abl, arm, seed)
    for p in (control_p, arm_p):
        for v in p.classifier.variants:
            keys[f"classifier_{v}"] = artifacts.classifier_artifact(p, v).key
            for s in rows:
                rows[s][v] = stored_predictions(p, v, s, record)
    gold = {s: [labels[i] for i in sets[s]["label"]] for s in rows}
    preds = {s: predictions_by_classifier(rows[s]) for s in rows}
    validation = {
        k: classification_metrics(gold["validation"], v, **kw) for k, v in preds["validation"].items()
    }
    selected = select_qra_decoding(validation)
    if selected:  # the decoding validation chose, under one name for every seed (the headline comparison)
        for s in preds:
            preds[s]["qra_selected"] = preds[s][selected]
    out: dict[str, Any] = {
        "seed": seed,
        "experiments": {"control": control_p.experiment, "arm": arm_p.experiment},
        "artifact_keys": keys,
        "qra_selected_decoding": selected,
        "validation_accuracy": {k: m["accuracy"] for k, m in validation.items()},
        "sets": {},
        "_rows_correct": {},
    }
    for s in [x for x in rows if x != "validation"]:
        from reasoning_infused.data.emotion import ood_label_space

        space = ood_label_space(sets[s]) if s.startswith("ood_") else None
        metrics = {}
        for k, pr in preds[s].items():
            m = classification_metrics(gold[s], pr, label_space=space, **kw)
            metrics[k] = {x: m[x] for x in ("n_test", "accuracy", "accuracy_ci", "macro_f1", "macro_f1_ci")}
            metrics[k]["parse_failures"] = m["parse_failures"]
        comparisons = []
        for k in preds[s]:
            if k == arm.control:
                continue
            c = paired_bootstrap_difference(
                gold[s],
                preds[s][arm.control],
                preds[s][k],
                ev.bootstrap_samples,
                ev.ci_level,
                arm_p.data.seed,
                space,
                labels,
            )
            mc = mcnemar(gold[s], preds[s][arm.control], preds[s][k])
            # per-row correctness for the seeds x rows interval (summarize_seeds); never written to JSON
            out["_rows_correct"][f"{s}:{k}-{arm.control}"] = (
                [p == g for p, g in zip(preds[s][arm.control], gold[s], strict=True)],
                [p == g for p, g in zip(preds[s][k], gold[s], strict=True)],
                rows_fingerprint(gold[s]),
            )
            comparisons.append(
                {
                    "first": arm.control,
                    "second": k,
                    "second_is_selected_decoding": k == selected,
                    **c,
                    "only_first_correct": mc["only_first_correct"],
                    "only_second_correct": mc["only_second_correct"],
                    "p_value": mc["p_value"],
                    # where an out-of-domain difference comes from (one class, or all of them)
                    **(
                        {
                            "per_gold_class": per_class_difference(
                                gold[s], preds[s][arm.control], preds[s][k], labels
                            )
                        }
                        if s.startswith("ood_")
                        else {}
                    ),
                }
            )
        out["sets"][s] = {"classifiers": metrics, "comparisons": comparisons}
        if space is not None and len(space) < len(
            labels
        ):  # ISEAR: the sensitivity to its 4-class label space
            out["sets"][s]["label_space_sensitivity"] = label_space_sensitivity(
                gold[s], {v: rows[s][v] for v in rows[s]}, space
            )
    return out


def for_json(per_seed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-seed results without their per-row working data."""
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in per_seed]


def summarize_seeds(per_seed: list[dict[str, Any]], level: float = 0.95) -> dict[str, Any]:
    """Per set and compared classifier: the per-seed differences, their mean, SD and t-interval, how many
    seeds the observed SD needs to detect a 3-point difference, and (with 2+ seeds scored on the same rows) the
    accuracy difference's seeds x rows bootstrap interval."""
    out: dict[str, Any] = {}
    for s in per_seed[0]["sets"]:
        for i, c in enumerate(per_seed[0]["sets"][s]["comparisons"]):
            name = f"{s}:{c['second']}-{c['first']}"
            acc = [r["sets"][s]["comparisons"][i]["accuracy_difference"] for r in per_seed]
            f1 = [r["sets"][s]["comparisons"][i]["macro_f1_difference"] for r in per_seed]
            summ = seed_summary(acc, level)
            out[name] = {
                "set": s,
                "first": c["first"],
                "second": c["second"],
                "accuracy_difference_per_seed": acc,
                "accuracy_difference": summ,
                "macro_f1_difference": seed_summary(f1, level),
                "seeds_needed_for_3_points": seeds_needed(summ["sd"], 0.03),
            }
            rows = [r.get("_rows_correct", {}).get(name) for r in per_seed]
            if len(rows) > 1 and all(x is not None for x in rows) and all(x[2] == rows[0][2] for x in rows):
                out[name]["accuracy_difference_seeds_x_rows"] = seeds_items_bootstrap(
                    np.array([x[0] for x in rows]), np.array([x[1] for x in rows]), level=level
                )
    return out


def interim_record(
    abl: Ablation,
    arm: Arm,
    per_seed: list[dict[str, Any]],
    seed_minutes: list[float | None],
    level: float,
    identity: str,
) -> dict[str, Any]:
    """The interim file of a stopped arm: its finished seeds, clearly not the arm's result. It carries the
    per-row correctness and minutes of each seed, so a later run on another machine (without this one's store)
    resumes after the last finished seed instead of retraining it."""
    return {
        "study": abl.study,
        "arm": arm.name,
        "partial": True,
        "seeds_done": [r["seed"] for r in per_seed],
        "seeds_declared": arm.seeds,
        "spec_hash": arm.spec_hash(),
        "identity": identity,
        "per_seed": for_json(per_seed),
        "per_seed_rows_correct": [rows_correct_to_json(r.get("_rows_correct", {})) for r in per_seed],
        "seed_minutes": seed_minutes,
        "summary": summarize_seeds(per_seed, level),
        "code_version": code_version(),
        "written_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def rescore_arm(abl: Ablation, arm: Arm) -> dict[str, Any]:
    """Recompute a finished arm's results from the predictions in the store (no training, no generation): for
    metrics added after it ran. Its times and the code that ran it are kept; the rescoring is recorded."""
    out_path = abl.results_dir / f"{arm.name}.json"
    if not out_path.exists():  # a stopped arm: its finished seeds (still interim)
        out_path = abl.results_dir / f"{arm.name}.partial.json"
    if not out_path.exists():
        raise ProfileError(f"{out_path}: arm {arm.name} has no finished seed; run it first")
    old = json.loads(out_path.read_text())
    legacy = arm_file_state(abl, arm, old) == "legacy"
    if old.get("spec_hash") != arm.spec_hash() and not legacy:
        raise ProfileError(f"{abl.path}: arm {arm.name} was declared differently when it ran; run it again")
    identity = arm_identity(abl, arm)
    if not legacy and old.get("identity") != identity:
        raise ProfileError(
            f"{out_path}: arm {arm.name} ran with settings that resolve to other artifacts than the study "
            "declares now (the profile or the study overrides changed); run it again"
        )
    level = experiment_profile(abl, arm, arm.seeds[0], False).evaluate.ci_level
    seeds = old.get("seeds_done", arm.seeds)
    per_seed = [_seed_result(abl, arm, seed) for seed in seeds]  # ArtifactMissing if a prediction is gone
    recorded = record_seeds(abl, arm, seeds)
    result = {
        **old,
        "spec_hash": arm.spec_hash(),
        "identity": identity,  # a legacy file is rescored from the predictions its settings resolve to today
        "per_seed": for_json(per_seed),
        "summary": summarize_seeds(per_seed, level),
        "rescored": {"code_version": code_version(), "at": time.strftime("%Y-%m-%d %H:%M:%S")},
        # the seeds whose per-row record is committed, also when the store that wrote it is gone
        "rows_recorded": sorted(
            set(old.get("rows_recorded", []))
            | set(recorded)
            | {s for s in seeds if read_record(abl, arm, s) is not None}
        ),
    }
    if old.get("partial"):  # keep what a resume on another machine needs
        result["per_seed_rows_correct"] = [rows_correct_to_json(r["_rows_correct"]) for r in per_seed]
    write_json(out_path, result)
    print(f"[ablate] {arm.name}: rescored from the stored predictions; wrote {out_path}")
    return result


def run_arm(abl: Ablation, arm: Arm, in_process: bool = False) -> dict[str, Any]:
    out_path = abl.results_dir / f"{arm.name}.json"
    spec, identity = arm.spec_hash(), arm_identity(abl, arm)
    refuse_redeclared(abl, arm)
    declared_in = declaration_commit(abl, arm)
    if out_path.exists():
        stored = json.loads(out_path.read_text())
        state = arm_file_state(abl, arm, stored)
        if state == "current":
            print(f"[ablate] {arm.name}: done earlier ({out_path}); skipped")
            return stored
        if state == "legacy":
            raise ProfileError(
                f"{out_path}: written before arm identities; run `ablate {abl.path} --rescore` once to record it"
            )
        print(f"[ablate] {arm.name}: {out_path} is stale ({state}); running it again", flush=True)
    est = estimate_minutes(abl, arm)
    print(
        f"[ablate] {arm.name}: estimated {est:.0f} CPU minutes for what is not in the store yet", flush=True
    )
    partial_path = abl.results_dir / f"{arm.name}.partial.json"
    resumed = resumable_seeds(abl, arm, identity)
    per_seed: list[dict[str, Any]] = []
    seed_minutes: list[float | None] = []
    level = experiment_profile(abl, arm, arm.seeds[0], False).evaluate.ci_level
    for seed in arm.seeds:
        if seed in resumed:  # finished by a stopped run (maybe on another machine): not trained again
            per_seed.append(resumed[seed][0])
            seed_minutes.append(resumed[seed][1])
            print(
                f"[ablate] {arm.name}: seed {seed} taken from {partial_path} (finished earlier)", flush=True
            )
            continue
        t0 = time.time()
        for control in (True, False):
            _run_stages(abl, experiment_profile(abl, arm, seed, control), arm, in_process)
        per_seed.append(_seed_result(abl, arm, seed))
        record_seeds(abl, arm, [seed])
        seed_minutes.append((time.time() - t0) / 60)
        # a stopped run keeps its finished seeds (clearly marked as not the arm result)
        if seed != arm.seeds[-1]:
            record = interim_record(abl, arm, per_seed, seed_minutes, level, identity)
            write_json(partial_path, {**record, "declared_in": declared_in})
            print(f"[ablate] {arm.name}: seed {seed} done; interim results in {partial_path}", flush=True)
    result = {
        "study": abl.study,
        "arm": arm.name,
        "hypothesis": arm.hypothesis,
        "outcome": arm.outcome,
        "declaration": arm.declared(),
        "study_overrides": abl.overrides,
        "profile": abl.profile,
        "spec_hash": spec,
        "declared_in": declared_in,  # the commit that declared the arm (before its first seed ran)
        "identity": identity,
        "per_seed": for_json(per_seed),
        "summary": summarize_seeds(per_seed, level),
        "estimated_minutes": est,
        # the seeds' minutes, summed over the runs that made them (None where a seed's time was not kept)
        "seed_minutes": seed_minutes,
        "measured_minutes": sum(m for m in seed_minutes if m is not None),
        "seeds_resumed": sorted(resumed),
        "rows_recorded": sorted(r["seed"] for r in per_seed if read_record(abl, arm, r["seed"]) is not None),
        "code_version": code_version(),
        "lock_hash": lock_hash(),  # sha256 of requirements.lock: the exact environment
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    write_json(out_path, result)
    partial_path.unlink(missing_ok=True)
    print(
        f"[ablate] {arm.name}: {result['measured_minutes']:.0f} min (estimated {est:.0f}); wrote {out_path}"
    )
    return result


def run_ablation(
    abl: Ablation,
    only: list[str] | None = None,
    dry_run: bool = False,
    in_process: bool = False,
    rescore: bool = False,
):
    """Run the study's arms in order (or only the named ones), then write summary.json and the forest plot.
    `rescore`: recompute the finished ones among them from the stored predictions instead."""
    arms = [a for a in abl.arms if not only or a.name in only]
    missing = set(only or []) - {a.name for a in abl.arms}
    if missing:
        raise ProfileError(f"{abl.path}: no arm named {sorted(missing)}")
    if rescore:
        finished = [
            a
            for a in arms
            if any((abl.results_dir / f"{a.name}{x}").exists() for x in (".json", ".partial.json"))
        ]
        lost = {}  # arms whose predictions are in neither the store nor the committed records
        for a in finished:
            try:
                rescore_arm(abl, a)
            except artifacts.ArtifactMissing as e:
                lost[a.name] = str(e).splitlines()[0]
                print(f"[ablate] {a.name}: not rescored: {lost[a.name]}")
        summary = write_summary(abl)
        if lost:
            raise ProfileError(
                f"{abl.path}: {len(lost)} of {len(finished)} finished arms could not be rescored (a prediction is "
                f"in neither the store nor the committed per-row records): {', '.join(lost)}; the others were "
                "rescored and summary.json written"
            )
        return summary
    rates = measured_rates()
    for a in arms:
        print(
            f"[ablate] {a.name}: seeds {a.seeds}, variants {a.variants}, ~{estimate_minutes(abl, a, rates):.0f} min"
        )
    for p in abl.planned:
        print(f"[ablate] {p.name}: planned, not runnable yet (needs {p.needs})")
    if dry_run:
        return None
    for a in arms:
        run_arm(abl, a, in_process)
    return write_summary(abl)
