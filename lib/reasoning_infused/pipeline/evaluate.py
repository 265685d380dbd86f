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

from reasoning_infused.base.provenance import code_version, lock_hash, package_versions, write_json
from reasoning_infused.data.emotion import LABELS, ood_label_space
from reasoning_infused.data.prompts import prompt_version
from reasoning_infused.data.rows import classifier_train_rows, load_split, task_of
from reasoning_infused.experiment import artifacts
from reasoning_infused.experiment.config import claim_results_dir
from reasoning_infused.experiment.settings import Profile
from reasoning_infused.pipeline.baselines import (
    ENCODER_REFERENCE_ACCURACY,
    majority_baseline,
    predict_labels,
    tfidf_logreg,
)
from reasoning_infused.pipeline.metrics import (
    classification_metrics,
    holm_adjust,
    mcnemar,
    paired_bootstrap_difference,
)


def select_qra_decoding(validation: dict[str, dict[str, Any]]) -> str | None:
    """The Q->RA decoding reported as "qra_selected": labels scored after the reasoning if that is more accurate
    on validation than free generation, else free generation (None without Q->RA)."""
    if "qra" not in validation:
        return None
    better = validation["qra_constrained"]["accuracy"] > validation["qra"]["accuracy"]
    return "qra_constrained" if better else "qra"


def predictions_by_classifier(
    rows_by_variant: dict[str, list[dict[str, Any]]],
) -> dict[str, list[str | None]]:
    """Predicted labels per classifier from prediction rows; Q->RA gives two: free ('qra') and scored after
    the reasoning ('qra_constrained')."""
    out: dict[str, list[str | None]] = {}
    for v, rows in rows_by_variant.items():
        out[v] = [r["predicted"] for r in rows]
        if v == "qra":
            out["qra_constrained"] = [r["predicted_constrained"] for r in rows]
            if rows and "predicted_sc_vote" in rows[0]:  # self-consistency at test time
                out["qra_sc_vote"] = [r["predicted_sc_vote"] for r in rows]
                out["qra_sc_logprob"] = [r["predicted_sc_logprob"] for r in rows]
    return out


def _baseline_predictions(
    profile: Profile, sets: dict[str, Dataset], chosen: dict[str, float]
) -> dict[str, dict[str, list[str]]]:
    """Majority and TF-IDF predictions on every set; the TF-IDF C chosen on validation goes into `chosen`."""
    d = profile.data
    labels = list(task_of(d).labels)
    same = classifier_train_rows(d)
    full = load_split(d, "train")
    res: dict[str, dict[str, list[str]]] = {s: {} for s in sets}
    models = {}
    if profile.evaluate.tfidf:
        val = sets["validation"]
        for name, rows in (("tfidf_same_examples", same), ("tfidf_full_train", full)):
            models[name], chosen[name] = tfidf_logreg(
                rows["text"], rows["label"], d.seed, val["text"], val["label"]
            )
    for sname, ds in sets.items():
        res[sname]["majority"] = majority_baseline(same["label"], len(ds), labels)
        for name, m in models.items():
            res[sname][name] = predict_labels(m, ds["text"], labels)
    return res


def evaluate(
    profile: Profile, sets: dict[str, Dataset], preds: dict[str, dict[str, list[dict[str, Any]]]]
) -> dict[str, Any]:
    """Metrics of every classifier and baseline from their predictions ({set: {classifier: rows}}); writes
    results/<experiment>/metrics.json, the prediction files and artifacts.json (what made them)."""
    t0 = time.time()
    out_dir = claim_results_dir(profile)
    tfidf_c: dict[str, float] = {}
    base = _baseline_predictions(profile, sets, tfidf_c)
    ev = profile.evaluate
    labels = list(task_of(profile.data).labels)
    kw = {
        "n_bootstrap": ev.bootstrap_samples,
        "level": ev.ci_level,
        "seed": profile.data.seed,
        "labels": labels,
    }

    def all_predictions(sname: str) -> dict[str, list[str | None]]:
        return predictions_by_classifier(preds[sname]) | base[sname]

    # Validation decides the Q->RA decoding that is reported as "qra_selected".
    val_gold = [labels[i] for i in sets["validation"]["label"]]
    val_preds = all_predictions("validation")
    validation = {k: classification_metrics(val_gold, v, **kw) for k, v in val_preds.items()}
    selected = select_qra_decoding(validation)

    test_gold = [labels[i] for i in sets["test"]["label"]]
    test_preds = all_predictions("test")
    classifiers = {k: classification_metrics(test_gold, v, **kw) for k, v in test_preds.items()}
    pairs = {}
    for a, b in itertools.combinations(test_preds, 2):
        pairs[f"{a}__vs__{b}"] = mcnemar(test_gold, test_preds[a], test_preds[b])

    ood, ood_mcnemar, sensitivity = {}, {}, {}
    for sname in sets:
        if not sname.startswith("ood_"):
            continue
        gold = [labels[i] for i in sets[sname]["label"]]
        space = ood_label_space(sets[sname])
        ood_preds = all_predictions(sname)
        ood[sname[4:]] = {
            k: classification_metrics(gold, v, label_space=space, **kw) for k, v in ood_preds.items()
        }
        if len(space) < len(labels):
            sensitivity[sname[4:]] = label_space_sensitivity(gold, preds[sname], space)
        ood_mcnemar[sname[4:]] = {
            f"{a}__vs__{b}": mcnemar(gold, ood_preds[a], ood_preds[b])
            for a, b in itertools.combinations(ood_preds, 2)
        }

    ood_sets = {s[4:]: sets[s] for s in sets if s.startswith("ood_")}
    comparisons = compare(
        profile,
        selected,
        {"test": (test_gold, test_preds, None)}
        | {
            name: ([labels[i] for i in ds["label"]], all_predictions(f"ood_{name}"), ood_label_space(ds))
            for name, ds in ood_sets.items()
        },
    )
    used = used_artifacts(profile, preds)
    stage = artifact_seconds(used)
    stage["evaluate_metrics_only"] = time.time() - t0
    metrics = {
        "experiment": profile.experiment,
        "profile": profile.to_dict(),
        "code_version": code_version(),
        "prompt_version": prompt_version(),
        "package_versions": package_versions(),
        "lock_hash": lock_hash(),  # sha256 of requirements.lock: the exact environment
        "task": task_of(profile.data).name,
        "labels": labels,
        "created_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "data_sizes": {s: len(ds) for s, ds in sets.items()}
        | {"train_classifier": len(classifier_train_rows(profile.data))},
        "qra_selected_decoding": selected,
        "tfidf_c_chosen_on_validation": tfidf_c,
        "classifiers": classifiers,
        "validation": validation,
        "primary": comparisons["primary"],
        "comparisons": comparisons["secondary"],
        "mcnemar": pairs,
        "ood": ood,
        "ood_mcnemar": ood_mcnemar,
        "ood_label_space_sensitivity": sensitivity,
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


# Secondary comparisons [first, second] reported with paired intervals and Holm-adjusted p-values, on test and on
# each out-of-domain set ("qra_selected": the Q->RA decoding chosen on validation; "qra_other": the other one).
SECONDARY = [
    ("qa", "qra_other"),
    ("qa", "qar"),
    ("qar", "qra_selected"),
    ("tfidf_same_examples", "qa"),
    ("zero_shot", "qa"),
]
OOD_SECONDARY = [("qa", "qra_selected"), ("qa", "qar")]


def compare(
    profile: Profile,
    selected: str | None,
    sets: dict[str, tuple[list[str], dict[str, list], list[str] | None]],
) -> dict[str, Any]:
    """The declared primary comparison (test set) and the secondary ones (test and out-of-domain), each as
    second minus first with a paired bootstrap interval and an exact McNemar test; secondary p-values are
    Holm-adjusted as one family. `sets`: name -> (gold labels, predictions by classifier, label space)."""
    ev = profile.evaluate
    labels = list(task_of(profile.data).labels)
    other = {"qra": "qra_constrained", "qra_constrained": "qra"}.get(selected or "", None)
    alias = {"qra_selected": selected, "qra_other": other}

    def one(set_name: str, first: str, second: str) -> dict[str, Any] | None:
        gold, preds, space = sets[set_name]
        a, b = alias.get(first, first), alias.get(second, second)
        if a not in preds or b not in preds:
            return None
        paired = paired_bootstrap_difference(
            gold, preds[a], preds[b], ev.bootstrap_samples, ev.ci_level, profile.data.seed, space, labels
        )
        mc = mcnemar(gold, preds[a], preds[b])
        return {
            "set": set_name,
            "first": a,
            "second": b,
            "declared_as": [first, second],
            **paired,
            "only_first_correct": mc["only_first_correct"],
            "only_second_correct": mc["only_second_correct"],
            "p_value": mc["p_value"],
            "per_gold_class": per_class_difference(gold, preds[a], preds[b], labels),
        }

    primary = one("test", *ev.primary) if "test" in sets else None
    secondary = [c for f, s in SECONDARY if (c := one("test", f, s))]
    for name in sets:
        if name != "test":
            secondary += [c for f, s in OOD_SECONDARY if (c := one(name, f, s))]
    adjusted = holm_adjust({str(i): c["p_value"] for i, c in enumerate(secondary)})
    for i, c in enumerate(secondary):
        c["p_holm"] = adjusted[str(i)]
    return {"primary": primary, "secondary": secondary}


def per_class_difference(
    gold: list[str], first: list, second: list, labels: list[str] | None = None
) -> dict[str, dict[str, Any]]:
    """Where a difference comes from: per gold class, rows, each classifier's accuracy, and the net rows gained
    by the second (only second right minus only first right)."""
    out = {}
    for lab in labels or LABELS:
        rows = [i for i, g in enumerate(gold) if g == lab]
        if not rows:
            continue
        a = [first[i] == lab for i in rows]
        b = [second[i] == lab for i in rows]
        out[lab] = {
            "n": len(rows),
            "first_accuracy": sum(a) / len(rows),
            "second_accuracy": sum(b) / len(rows),
            "net_rows_second_minus_first": int(sum(y and not x for x, y in zip(a, b, strict=True)))
            - int(sum(x and not y for x, y in zip(a, b, strict=True))),
        }
    return out


def label_space_sensitivity(
    gold: list[str], rows_by_variant: dict[str, list[dict[str, Any]]], space: list[str]
) -> dict[str, dict[str, float]]:
    """Out-of-domain sets with fewer classes (ISEAR: 4) count a prediction outside them as an error. The
    sensitivity: accuracy when each scored classifier instead picks the best-scoring label among the set's
    classes (free Q->RA generation has no scores over labels and is left out)."""
    out = {}
    for v, rows in rows_by_variant.items():
        key = "qra_constrained" if v == "qra" else v
        repicked = [max(space, key=lambda lab, r=r: r["scores"][lab]) for r in rows]
        as_is = [r["predicted_constrained"] if v == "qra" else r["predicted"] for r in rows]
        out[key] = {
            "accuracy_as_scored": sum(p == g for p, g in zip(as_is, gold, strict=True)) / len(gold),
            "accuracy_within_label_space": sum(p == g for p, g in zip(repicked, gold, strict=True))
            / len(gold),
        }
    return out


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
