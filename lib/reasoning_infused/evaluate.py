"""Evaluation: every classifier and baseline on test (and out-of-domain), with intervals and McNemar tests.

Choices are made on validation only: the Q->RA decoding (free generation vs labels scored after the reasoning)
is picked by validation accuracy. Results land in results/<profile>/metrics.json and predictions/*.jsonl.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

from datasets import Dataset

from .augment import classifier_train_rows
from .baselines import ENCODER_REFERENCE_ACCURACY, majority_baseline, predict_labels, tfidf_logreg
from .classifiers import load_classifier, predict_to_file
from .config import Profile
from .data import LABELS, OOD_SETS, load_emotion, load_ood, ood_label_space, stratified_subsample
from .metrics import classification_metrics, mcnemar
from .prompts import prompt_version
from .provenance import code_version, read_jsonl, write_json


def eval_sets(profile: Profile) -> dict[str, Dataset]:
    """validation (for choices), test (reported), and the out-of-domain sets (evaluation only)."""
    d = profile.data
    sets = {
        "validation": stratified_subsample(
            load_emotion("validation", d.emotion_dir, d.emotion_hub_id), d.val_size, profile.seed
        ),
        "test": stratified_subsample(
            load_emotion("test", d.emotion_dir, d.emotion_hub_id), d.test_size, profile.seed
        ),
    }
    if profile.evaluate.ood:
        for name in OOD_SETS:
            sets[f"ood_{name}"] = stratified_subsample(
                load_ood(name, d.ood_dir, d.goemotions_test_only), d.ood_size, profile.seed
            )
    return sets


def predictions_dir(profile: Profile) -> Path:
    return profile.results_dir / "predictions"


def predict_all(
    profile: Profile, force: bool = False, sets: dict[str, Dataset] | None = None
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Predictions of every model classifier on every evaluation set: {set: {classifier: rows}}."""
    sets = sets or eval_sets(profile)
    variants = list(profile.classifier.variants) + (["zero_shot"] if profile.evaluate.zero_shot else [])
    out: dict[str, dict[str, list[dict[str, Any]]]] = {s: {} for s in sets}
    for v in variants:
        model = tok = None
        for sname, ds in sets.items():
            path = predictions_dir(profile) / f"{v}__{sname}.jsonl"
            if model is None and not (path.exists() and not force):
                model, tok = load_classifier(profile, v)
            rows = predict_to_file(profile, v, sname, ds, path, model, tok, force)
            out[sname][v] = rows
        del model
    return out


def _baseline_predictions(profile: Profile, sets: dict[str, Dataset]) -> dict[str, dict[str, list[str]]]:
    d = profile.data
    same = classifier_train_rows(profile)
    full = load_emotion("train", d.emotion_dir, d.emotion_hub_id)
    res: dict[str, dict[str, list[str]]] = {s: {} for s in sets}
    models = {}
    if profile.evaluate.tfidf:
        models["tfidf_same_examples"] = tfidf_logreg(same["text"], same["label"], profile.seed)
        models["tfidf_full_train"] = tfidf_logreg(full["text"], full["label"], profile.seed)
    for sname, ds in sets.items():
        res[sname]["majority"] = majority_baseline(same["label"], len(ds))
        for name, m in models.items():
            res[sname][name] = predict_labels(m, ds["text"])
    return res


def evaluate(profile: Profile, force: bool = False) -> dict[str, Any]:
    t0 = time.time()
    sets = eval_sets(profile)
    preds = predict_all(profile, force, sets)
    base = _baseline_predictions(profile, sets)
    ev = profile.evaluate
    kw = {"n_bootstrap": ev.bootstrap_samples, "level": ev.ci_level, "seed": profile.seed}

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

    stage = artifact_seconds(profile)
    stage["evaluate_metrics_only"] = time.time() - t0
    gen_meta = {}
    for v in profile.classifier.variants:
        p = profile.run_dir / "classifiers" / v / "metadata.json"
        if p.exists():
            gen_meta[v] = json.loads(p.read_text())
    metrics = {
        "profile": profile.to_dict(),
        "code_version": code_version(),
        "prompt_version": prompt_version(),
        "created_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "data_sizes": {s: len(ds) for s, ds in sets.items()}
        | {"train_classifier": len(classifier_train_rows(profile))},
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
        "training": gen_meta,
        "stage_seconds": stage,
    }
    write_json(profile.results_dir / "metrics.json", metrics)
    return metrics


def artifact_seconds(profile: Profile) -> dict[str, float]:
    """Wall time each stage's artifact took to make, read from the artifacts themselves: true even when a
    rerun reuses them. (The runner's own clock of its last invocation is in stage_seconds.json.)"""
    out: dict[str, float] = {}
    run = profile.run_dir

    def meta(path: Path) -> dict[str, Any]:
        return json.loads(path.read_text()) if path.exists() else {}

    g = meta(run / "generator" / "metadata.json")
    if g:
        out["train_generator"] = g["wall_seconds"] + meta(run / "generator" / "heldout_eval.json").get(
            "seconds", 0.0
        )
    a = meta(run / "augment" / "generation_stats.json")
    if a:
        out["augment"] = sum(r["wall_seconds"] for r in a["runs"])
    for v in profile.classifier.variants:
        c = meta(run / "classifiers" / v / "metadata.json")
        if c:
            out[f"train_classifier_{v}"] = c["wall_seconds"]
    preds = [meta(p) for p in predictions_dir(profile).glob("*.meta.json")]
    if preds:
        out["predict"] = sum(p.get("wall_seconds", 0.0) for p in preds)
    out["total"] = sum(out.values())
    return out


def load_metrics(profile: Profile) -> dict[str, Any]:
    path = profile.results_dir / "metrics.json"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: run `python -m reasoning_infused evaluate --profile {profile.name}`"
        )
    return json.loads(path.read_text())


def load_predictions(profile: Profile, variant: str, split: str = "test") -> list[dict[str, Any]]:
    path = predictions_dir(profile) / f"{variant}__{split}.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run evaluate first")
    return read_jsonl(path)


def check_reproducible(profile: Profile, variant: str, split: str = "test") -> dict[str, Any]:
    """Predict `split` again with the saved `variant` model and compare with the saved predictions."""
    import numpy as np

    from .classifiers import predict

    saved = load_predictions(profile, variant, split)
    ds = eval_sets(profile)[split]
    model, tok = load_classifier(profile, variant)
    again = predict(
        model, tok, variant, ds["text"], ds["label"], profile, desc=f"reproduce {variant}/{split}"
    )
    same = [a["predicted"] == b["predicted"] for a, b in zip(saved, again, strict=True)]
    diffs = [
        abs(a["scores"][k] - round(b["scores"][k], 4))
        for a, b in zip(saved, again, strict=True)
        for k in a["scores"]
    ]
    out = {
        "variant": variant,
        "split": split,
        "rows": len(saved),
        "identical_predictions": int(sum(same)),
        "max_score_difference": float(np.max(diffs)) if diffs else 0.0,
        "code_version": code_version(),
        "checked_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    path = profile.results_dir / "reproducibility.json"
    prev = json.loads(path.read_text()) if path.exists() else []
    write_json(path, [*prev, out])
    return out
