"""Does a faster generation engine change the study's results? (CTranslate2 int8 against the default decoding.)

The study generates in two places, and the check measures both, on validation only (never test or the
out-of-domain sets):
- augmentation: the same training rows' reasonings from the same generator, decoded by the default engine and by
  the candidate; their reasoning-quality reports, per-row paired differences (leakage, grounding, repetition,
  cut at the limit), then a Q->RA classifier trained on each set and its validation accuracy;
- Q->RA inference: the default Q->RA classifier's validation predictions decoded by each engine.

Every difference comes with a paired bootstrap interval (and McNemar for accuracies). The candidate is "within
noise" when every interval includes 0; only then may ablation arms that regenerate reasonings use it. Each step
runs as its own process through the study runner, so everything lands in the artifact store and a rerun resumes.
Output: results/<experiment>/engine_check_<backend>.json.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from reasoning_infused.analysis.quality import compare_reasonings, paired_las_difference, quality_report
from reasoning_infused.base.provenance import code_version, write_json
from reasoning_infused.experiment import artifacts
from reasoning_infused.experiment.config import load_profile, override_args
from reasoning_infused.experiment.settings import Profile
from reasoning_infused.pipeline.metrics import mcnemar, paired_bootstrap_difference


def compare_predictions(
    reference: list[dict[str, Any]], candidate: list[dict[str, Any]], bootstrap_samples: int = 1000
) -> dict[str, Any]:
    """Q->RA on the same rows, candidate - reference: free (parsed) and labels scored after the reasoning."""
    gold = [r["gold"] for r in reference]
    if gold != [r["gold"] for r in candidate] or [r["text"] for r in reference] != [
        r["text"] for r in candidate
    ]:
        raise ValueError("the two prediction files are not the same rows in the same order")
    out: dict[str, Any] = {
        "rows": len(gold),
        "identical_generations": sum(
            a["generated"] == b["generated"] for a, b in zip(reference, candidate, strict=True)
        ),
    }
    for name, key in (("free", "predicted"), ("constrained", "predicted_constrained")):
        a, b = [r[key] for r in reference], [r[key] for r in candidate]
        out[name] = {
            "accuracy_reference": float(np.mean([p == g for p, g in zip(a, gold, strict=True)])),
            "accuracy_candidate": float(np.mean([p == g for p, g in zip(b, gold, strict=True)])),
            **paired_bootstrap_difference(gold, a, b, n_samples=bootstrap_samples),
            "mcnemar": mcnemar(gold, a, b),
        }
    return out


def _includes_zero(ci: list[float | None]) -> bool:
    return ci[0] is None or ci[0] <= 0 <= ci[1]


def within_noise(report: dict[str, Any]) -> tuple[bool, list[str]]:
    """True when no paired interval of the check excludes 0; the names of those that do."""
    moved = []
    for part in ("augmentation", "augmentation_qra_validation", "inference_qra_validation"):
        block = report.get(part, {})
        for name, v in block.items():
            if isinstance(v, dict) and "ci" in v and not _includes_zero(v["ci"]):
                moved.append(f"{part}.{name}")
            if (
                isinstance(v, dict)
                and "accuracy_difference_ci" in v
                and not _includes_zero(v["accuracy_difference_ci"])
            ):
                moved.append(f"{part}.{name}.accuracy")
    return not moved, moved


def _quality_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows for the quality report, in row-id order (a file's order is the order its rows were generated in)."""
    keys = ("id", "text", "label", "reasoning", "n_tokens", "finish_reason")
    return sorted(({k: r[k] for k in keys if k in r} for r in rows), key=lambda r: r["id"])


def engine_check(
    profile: Profile,
    backend: str = "ct2-int8",
    profile_arg: str | None = None,
    bootstrap_samples: int = 1000,
    in_process: bool = False,
) -> dict[str, Any]:
    """Run (or reuse from the store) what the comparison needs and write the report; see the module docstring.
    `profile_arg` is the profile name or YAML path it was loaded from (default: its name); `in_process` runs the
    stages as functions (the tests)."""
    if backend not in artifacts.CT2_COMPUTE_TYPES:
        raise ValueError(f"backend must be one of {sorted(artifacts.CT2_COMPUTE_TYPES)}, got {backend!r}")
    t0 = time.time()
    base, profile_arg = profile.experiment, profile_arg or profile.name
    overrides = override_args(profile)
    aug_profile = load_profile(
        profile_arg,
        [*overrides, f"augment.backend={backend}"],
        experiment=f"{base}--engine-{backend}-augment",
    )
    inf_profile = load_profile(
        profile_arg, [*overrides, f"classifier.backend={backend}"], experiment=f"{base}--engine-{backend}-qra"
    )
    steps = [
        (profile, ("augment",)),
        (profile, ("train-classifier", "--variant", "qra")),
        (profile, ("predict", "--variant", "qra", "--sets", "validation")),
        (aug_profile, ("augment",)),
        (aug_profile, ("train-classifier", "--variant", "qra")),
        (aug_profile, ("predict", "--variant", "qra", "--sets", "validation")),
        (inf_profile, ("predict", "--variant", "qra", "--sets", "validation")),
    ]
    for p, step in steps:
        print(f"\n===== engine check: {' '.join(step)} ({p.experiment}) =====", flush=True)
        if in_process:
            _run_in_process(p, step)
        else:
            from reasoning_infused.study.runner import run_cli_stage

            run_cli_stage(profile_arg, override_args(p), p.experiment, *step)
    ref_rows = _quality_rows(artifacts.read_reasonings(profile))
    cand_rows = _quality_rows(artifacts.read_reasonings(aug_profile))
    max_new = profile.augment.max_new_tokens
    ref_val = artifacts.read_predictions_artifact(profile, "qra", "validation")
    report: dict[str, Any] = {
        "backend": backend,
        "reference": profile.augment.backend,
        "experiment": base,
        "split": "validation",
        "augmentation": {
            **compare_reasonings(ref_rows, cand_rows, bootstrap_samples),
            "las": paired_las_difference(ref_rows, cand_rows, bootstrap_samples=bootstrap_samples),
        },
        "augmentation_quality": {
            "reference": quality_report(
                ref_rows, max_new_tokens=max_new, bootstrap_samples=bootstrap_samples
            ),
            "candidate": quality_report(
                cand_rows, max_new_tokens=max_new, bootstrap_samples=bootstrap_samples
            ),
        },
        "augmentation_qra_validation": compare_predictions(
            ref_val, artifacts.read_predictions_artifact(aug_profile, "qra", "validation"), bootstrap_samples
        ),
        "inference_qra_validation": compare_predictions(
            ref_val, artifacts.read_predictions_artifact(inf_profile, "qra", "validation"), bootstrap_samples
        ),
        "generation_seconds": {
            "augment_reference": artifacts.augment_artifact(profile).metadata().get("wall_seconds"),
            "augment_candidate": artifacts.augment_artifact(aug_profile).metadata().get("wall_seconds"),
            "qra_validation_reference": artifacts.predictions_artifact(profile, "qra", "validation")
            .metadata()
            .get("wall_seconds"),
            "qra_validation_candidate": artifacts.predictions_artifact(inf_profile, "qra", "validation")
            .metadata()
            .get("wall_seconds"),
        },
        "code_version": code_version(),
        "seconds": time.time() - t0,
    }
    ok, moved = within_noise(report)
    report["within_noise"] = ok
    report["intervals_excluding_zero"] = moved
    profile.results_dir.mkdir(parents=True, exist_ok=True)
    write_json(profile.results_dir / f"engine_check_{backend}.json", report)
    return report


def _run_in_process(p: Profile, step: tuple[str, ...]) -> None:
    from reasoning_infused.pipeline.augment import augment
    from reasoning_infused.pipeline.classifiers import predict_sets, train_classifier

    if step[0] == "augment":
        augment(p)
    elif step[0] == "train-classifier":
        train_classifier(p, step[2])
    else:
        predict_sets(p, [step[2]], [step[4]])
