"""Evaluation: every classifier and baseline on test (and out-of-domain), with intervals and McNemar tests.

Choices are made on validation only: the Q->RA decoding (free generation vs labels scored after the reasoning)
is picked by validation accuracy. Results land in results/<experiment>/: metrics.json, predictions/*.jsonl and
artifacts.json (the metadata of every artifact behind them).
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from datasets import Dataset

from . import artifacts
from .baselines import ENCODER_REFERENCE_ACCURACY, majority_baseline, predict_labels, tfidf_logreg
from .config import Profile, claim_results_dir
from .data import LABELS, classifier_train_rows, load_emotion, ood_label_space
from .metrics import classification_metrics, mcnemar
from .prompts import prompt_version
from .provenance import code_version, package_versions, write_json


def _baseline_predictions(profile: Profile, sets: dict[str, Dataset]) -> dict[str, dict[str, list[str]]]:
    d = profile.data
    same = classifier_train_rows(d)
    full = load_emotion("train", d.emotion_dir, d.emotion_hub_id)
    res: dict[str, dict[str, list[str]]] = {s: {} for s in sets}
    models = {}
    if profile.evaluate.tfidf:
        models["tfidf_same_examples"] = tfidf_logreg(same["text"], same["label"], d.seed)
        models["tfidf_full_train"] = tfidf_logreg(full["text"], full["label"], d.seed)
    for sname, ds in sets.items():
        res[sname]["majority"] = majority_baseline(same["label"], len(ds))
        for name, m in models.items():
            res[sname][name] = predict_labels(m, ds["text"])
    return res


def evaluate(
    profile: Profile, sets: dict[str, Dataset], preds: dict[str, dict[str, list[dict[str, Any]]]]
) -> dict[str, Any]:
    """Metrics of every classifier and baseline from their predictions ({set: {classifier: rows}}); writes
    results/<experiment>/metrics.json, the prediction files and artifacts.json (what made them)."""
    t0 = time.time()
    out_dir = claim_results_dir(profile)
    base = _baseline_predictions(profile, sets)
    ev = profile.evaluate
    kw = {"n_bootstrap": ev.bootstrap_samples, "level": ev.ci_level, "seed": profile.data.seed}

    def all_predictions(sname: str) -> dict[str, list[str | None]]:
        p: dict[str, list[str | None]] = {}
        for v, rows in preds[sname].items():
            p[v] = [r["predicted"] for r in rows]
            if v == "qra":
                p["qra_constrained"] = [r["predicted_constrained"] for r in rows]
        p.update(base[sname])
        return p

    # Validation decides the Q->RA decoding that is reported as "qra_selected".
    val_gold = [LABELS[i] for i in sets["validation"]["label"]]
    val_preds = all_predictions("validation")
    validation = {k: classification_metrics(val_gold, v, **kw) for k, v in val_preds.items()}
    selected = None
    if "qra" in val_preds:
        selected = (
            "qra_constrained"
            if validation["qra_constrained"]["accuracy"] > validation["qra"]["accuracy"]
            else "qra"
        )

    test_gold = [LABELS[i] for i in sets["test"]["label"]]
    test_preds = all_predictions("test")
    classifiers = {k: classification_metrics(test_gold, v, **kw) for k, v in test_preds.items()}
    pairs = {}
    for a, b in itertools.combinations(test_preds, 2):
        pairs[f"{a}__vs__{b}"] = mcnemar(test_gold, test_preds[a], test_preds[b])

    ood, ood_mcnemar = {}, {}
    for sname in sets:
        if not sname.startswith("ood_"):
            continue
        gold = [LABELS[i] for i in sets[sname]["label"]]
        space = ood_label_space(sets[sname])
        ood_preds = all_predictions(sname)
        ood[sname[4:]] = {
            k: classification_metrics(gold, v, label_space=space, **kw) for k, v in ood_preds.items()
        }
        ood_mcnemar[sname[4:]] = {
            f"{a}__vs__{b}": mcnemar(gold, ood_preds[a], ood_preds[b])
            for a, b in itertools.combinations(ood_preds, 2)
        }

    used = used_artifacts(profile, preds)
    stage = artifact_seconds(used)
    stage["evaluate_metrics_only"] = time.time() - t0
    metrics = {
        "experiment": profile.experiment,
        "profile": profile.to_dict(),
        "code_version": code_version(),
        "prompt_version": prompt_version(),
        "package_versions": package_versions(),
        "created_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "data_sizes": {s: len(ds) for s, ds in sets.items()}
        | {"train_classifier": len(classifier_train_rows(profile.data))},
        "qra_selected_decoding": selected,
        "classifiers": classifiers,
        "validation": validation,
        "mcnemar": pairs,
        "ood": ood,
        "ood_mcnemar": ood_mcnemar,
        "reference": {
            "fine_tuned_encoders_accuracy": ENCODER_REFERENCE_ACCURACY,
            "paper_qra_minus_qa_points": 8.7,
        },
        "training": {k[len("classifier_") :]: m for k, m in used.items() if k.startswith("classifier_")},
        "artifact_keys": {k: m["key"] for k, m in used.items()},
        "stage_seconds": stage,
    }
    export_predictions(profile, preds)
    write_json(out_dir / "artifacts.json", used)
    write_json(out_dir / "metrics.json", metrics)
    return metrics


def used_artifacts(profile: Profile, preds: dict[str, dict[str, list]]) -> dict[str, dict[str, Any]]:
    """Metadata of every complete artifact behind these results (generator, augmentation, classifiers,
    predictions), by name: the record of what made each number."""
    out: dict[str, dict[str, Any]] = {}
    for name, art in artifacts.experiment_artifacts(profile).items():
        if art.is_complete():
            out[name] = art.metadata()
    for sname, by_variant in preds.items():
        for v in by_variant:
            art = artifacts.predictions_artifact(profile, v, sname)
            if art.is_complete():
                out[f"predictions_{v}__{sname}"] = art.metadata()
    return out


def export_predictions(profile: Profile, preds: dict[str, dict[str, list[dict[str, Any]]]]) -> None:
    """Copy every prediction set into results/<experiment>/predictions/<classifier>__<set>.jsonl."""
    for sname, by_variant in preds.items():
        for v, rows in by_variant.items():
            path = artifacts.predictions_file(profile, v, sname)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            with tmp.open("w") as f:
                for r in rows:
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")
            tmp.replace(path)


def artifact_seconds(used: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Wall time each stage's artifact took to make, read from the artifacts' metadata: true even when a rerun
    reuses them. (The runner's own clock of its last invocation is in stage_seconds.json.)"""
    out: dict[str, float] = {}
    if "generator" in used:
        g = used["generator"]
        out["train_generator"] = g["wall_seconds"] + g.get("heldout_eval_seconds", 0.0)
    if "augment" in used:
        out["augment"] = used["augment"]["wall_seconds"]
    for k, m in used.items():
        if k.startswith("classifier_"):
            out[f"train_{k}"] = m["wall_seconds"]
    pred = [m["wall_seconds"] for k, m in used.items() if k.startswith("predictions_")]
    if pred:
        out["predict"] = sum(pred)
    out["total"] = sum(out.values())
    return out
