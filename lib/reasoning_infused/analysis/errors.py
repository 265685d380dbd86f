"""Error and explanation analysis, and the faithfulness probe; `run_analysis` writes analysis.json and figures."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import numpy as np
import pandas as pd

from reasoning_infused.analysis import figures
from reasoning_infused.analysis.tables import DISPLAY_NAMES, is_emotion_study, results_frame
from reasoning_infused.base.provenance import code_version, write_json
from reasoning_infused.data.emotion import LABELS
from reasoning_infused.data.lexicon import reasoning_support_category
from reasoning_infused.data.prompts import VARIANTS
from reasoning_infused.data.rows import classifier_train_rows, load_split, task_of
from reasoning_infused.experiment.artifacts import load_metrics, load_predictions, read_reasonings
from reasoning_infused.experiment.config import claim_results_dir
from reasoning_infused.experiment.settings import Profile
from reasoning_infused.pipeline.loading import load_classifier, load_generator
from reasoning_infused.pipeline.metrics import wilson_interval

MAIN = list(VARIANTS)  # the fine-tuned classifiers, as prompts.yaml defines them


def disagreements(a_rows: list[dict], b_rows: list[dict], a: str = "qa", b: str = "qra") -> pd.DataFrame:
    """Test rows where two classifiers disagree, with which one was right."""
    out = []
    for i, (x, y) in enumerate(zip(a_rows, b_rows, strict=True)):
        if x["predicted"] != y["predicted"]:
            direction = (
                f"only {a} right"
                if x["predicted"] == x["gold"]
                else f"only {b} right"
                if y["predicted"] == y["gold"]
                else "both wrong"
            )
            out.append(
                {
                    "row": i,
                    "text": x["text"],
                    "gold": x["gold"],
                    a: x["predicted"],
                    b: y["predicted"],
                    "direction": direction,
                    f"{b}_generated": y.get("generated", ""),
                }
            )
    return pd.DataFrame(out)


def per_class_gain(metrics: dict[str, Any], a: str = "qa", b: str = "qra") -> pd.DataFrame:
    ca, cb = metrics["classifiers"][a]["per_class"], metrics["classifiers"][b]["per_class"]
    return pd.DataFrame(
        [
            {
                "label": lab,
                f"{a}_f1": ca[lab]["f1"],
                f"{b}_f1": cb[lab]["f1"],
                "f1_gain": cb[lab]["f1"] - ca[lab]["f1"],
                f"{a}_recall": ca[lab]["recall"],
                f"{b}_recall": cb[lab]["recall"],
                "support": ca[lab]["support"],
            }
            for lab in ca
        ]
    )


def confusion_shift(metrics: dict[str, Any], a: str = "qa", b: str = "qra") -> pd.DataFrame:
    """Change in row-normalised confusion (b minus a): which confusions (love<->joy, ...) grow or shrink."""

    labels = metrics.get("labels") or LABELS

    def norm(k):
        cm = np.array(metrics["classifiers"][k]["confusion"], dtype=float)[:, : len(labels)]
        return cm / cm.sum(1, keepdims=True).clip(min=1)

    return pd.DataFrame(
        norm(b) - norm(a), index=[f"gold {x}" for x in labels], columns=[f"pred {x}" for x in labels]
    )


def accuracy_by_length(
    preds: dict[str, list[dict]], bins: tuple[int, ...] = (0, 10, 15, 20, 30, 200)
) -> pd.DataFrame:
    rows = []
    for name, rs in preds.items():
        words = np.array([len(r["text"].split()) for r in rs])
        correct = np.array([r["predicted"] == r["gold"] for r in rs])
        cats = pd.cut(words, bins=list(bins), right=False)
        for cat in cats.categories:
            m = cats == cat
            if m.sum():
                rows.append(
                    {
                        "classifier": DISPLAY_NAMES.get(name, name),
                        "length_bin": str(cat),
                        "accuracy": float(correct[m].mean()),
                        "n": int(m.sum()),
                    }
                )
    return pd.DataFrame(rows)


def conflicting_duplicates(profile: Profile, preds: dict[str, list[dict]]) -> dict[str, Any]:
    """Test texts that also occur in train: accuracy overall and where the training label differs from gold."""
    d = profile.data
    train = load_split(d, "train")
    names = train.features["label"].names
    train_labels: dict[str, set[str]] = defaultdict(set)
    for t, y in zip(train["text"], train["label"], strict=True):
        train_labels[t].add(names[y])
    conflicting_in_train = sum(1 for v in train_labels.values() if len(v) > 1)
    any_rows = next(iter(preds.values()))
    overlap = [i for i, r in enumerate(any_rows) if r["text"] in train_labels]
    conflict = [i for i in overlap if train_labels[any_rows[i]["text"]] != {any_rows[i]["gold"]}]
    out: dict[str, Any] = {
        "train_texts_with_conflicting_labels": conflicting_in_train,
        "test_rows_in_train": len(overlap),
        "test_rows_whose_train_label_differs": len(conflict),
        "classifiers": {},
    }
    for name, rs in preds.items():
        out["classifiers"][name] = {
            "accuracy_on_overlap": float(np.mean([rs[i]["predicted"] == rs[i]["gold"] for i in overlap]))
            if overlap
            else None,
            "predicts_train_label_where_it_differs": float(
                np.mean([rs[i]["predicted"] in train_labels[rs[i]["text"]] for i in conflict])
            )
            if conflict
            else None,
        }
    return out


def conflicting_train_duplicates(profile: Profile) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run the classifiers on the training texts that occur twice with different labels (30 in dair-ai/emotion):
    which of the two labels does each pick, and was the text among its training examples?"""
    from reasoning_infused.pipeline.classifiers import predict

    d = profile.data
    train = load_split(d, "train")
    names = train.features["label"].names
    labels: dict[str, set[str]] = defaultdict(set)
    for t, y in zip(train["text"], train["label"], strict=True):
        labels[t].add(names[y])
    texts = sorted(t for t, v in labels.items() if len(v) > 1)
    used = set(classifier_train_rows(d)["text"])
    rows = [
        {"text": t, "train_labels": sorted(labels[t]), "in_classifier_training": t in used} for t in texts
    ]
    summary: dict[str, Any] = {
        "texts": len(texts),
        "in_classifier_training": sum(r["in_classifier_training"] for r in rows),
    }
    if not texts:
        return summary, rows
    for v in [x for x in MAIN if x in profile.classifier.variants]:
        model, tok = load_classifier(profile, v)
        preds = predict(model, tok, v, texts, [0] * len(texts), profile, desc=f"duplicates {v}")
        key = "predicted_constrained" if v == "qra" else "predicted"
        for r, p in zip(rows, preds, strict=True):
            r[v] = p[key]
        summary[v] = {
            "picks_one_of_the_two_labels": float(np.mean([r[v] in r["train_labels"] for r in rows]))
        }
        del model
    return summary, rows


def reasoning_support(qra_rows: list[dict], task=None) -> pd.DataFrame:
    """Does the Q->RA reasoning name the predicted label, only other emotions, or none? Accuracy per category."""
    rows = [
        {
            "category": reasoning_support_category(r.get("reasoning", ""), r["predicted"], task),
            "correct": r["predicted"] == r["gold"],
            "reasoning_tokens": r.get("n_tokens", 0),
        }
        for r in qra_rows
    ]
    df = pd.DataFrame(rows)
    return df.groupby("category").agg(n=("correct", "size"), accuracy=("correct", "mean")).reset_index()


def reasoning_length_vs_correctness(qra_rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "tokens": [r.get("n_tokens", 0) for r in qra_rows],
            "correct": [r["predicted"] == r["gold"] for r in qra_rows],
        }
    )
    df["bin"] = pd.qcut(df.tokens, q=4, duplicates="drop").astype(str)
    return (
        df.groupby("bin")
        .agg(n=("correct", "size"), accuracy=("correct", "mean"), tokens=("tokens", "mean"))
        .reset_index()
    )


def faithfulness_probe(profile: Profile, n: int = 200, seed: int = 0) -> tuple[pd.DataFrame, list[dict]]:
    """Force a reasoning into the Q->RA model and see whether the final label follows it or the text.

    Conditions, on n test examples: (1) its own generated reasoning (control); (2) another training example's
    reasoning that was written for a different label; (3) a reasoning the generator writes for this same text
    but a different (wrong) label. The final label is scored after `Answer:` (no parse failures).
    """
    from reasoning_infused.data.prompts import (
        clean_reasoning,
        emotion_generator_prompt,
        labels_after_reasoning_prompt,
    )
    from reasoning_infused.pipeline.inference import TransformersBackend, generate_all
    from reasoning_infused.pipeline.scoring import score_labels

    rng = np.random.default_rng(seed)
    full_task = task_of(profile.data)
    task = None if full_task.is_emotion_default else full_task
    labels = list(full_task.labels)
    test_rows = load_predictions(profile, "qra", "test")
    idx = sorted(rng.choice(len(test_rows), size=min(n, len(test_rows)), replace=False).tolist())
    rows = [test_rows[i] for i in idx]
    train = read_reasonings(profile)
    by_label: dict[str, list[dict]] = defaultdict(list)
    for r in train:
        if r["reasoning"].strip():
            by_label[r["label"]].append(r)
    own_pred = [r["predicted_constrained"] for r in rows]
    # a different label for each row (different from the model's own prediction), drawn at random
    other = [str(rng.choice([lab for lab in labels if lab != p and by_label[lab]])) for p in own_pred]
    donors = [by_label[lab][int(rng.integers(len(by_label[lab])))] for lab in other]
    gen_model, gen_tok = load_generator(profile)
    gen_prompts = [emotion_generator_prompt(gen_tok, r["text"], o) for r, o in zip(rows, other, strict=True)]
    written = generate_all(
        TransformersBackend(gen_model, gen_tok),
        gen_prompts,
        profile.augment.max_new_tokens,
        profile.augment.batch_size,
        desc="probe: reasonings for a wrong label",
    )
    del gen_model
    model, tok = load_classifier(profile, "qra")
    conds = {
        "own reasoning (control)": [r.get("reasoning", "") for r in rows],
        "another example's reasoning": [d["reasoning"] for d in donors],
        "reasoning written for a wrong label": [w.text for w in written],
    }
    summary, detail = [], []
    for cname, reasons in conds.items():
        prompts = [
            labels_after_reasoning_prompt(tok, r["text"], clean_reasoning(x), task)
            for r, x in zip(rows, reasons, strict=True)
        ]
        scores = score_labels(
            model, tok, prompts, profile.classifier.predict_batch_size, labels=labels, desc=f"probe: {cname}"
        )
        preds = [labels[int(np.argmax(s))] for s in scores]
        target = own_pred if cname.startswith("own") else other
        k_r = sum(p == t for p, t in zip(preds, target, strict=True))
        k_t = sum(p == o for p, o in zip(preds, own_pred, strict=True))
        k_a = sum(p == r["gold"] for p, r in zip(preds, rows, strict=True))
        n_rows = len(rows)
        summary.append(
            {
                "condition": cname,
                "n": n_rows,
                "follows_reasoning": k_r / n_rows,
                "follows_reasoning_ci": wilson_interval(k_r, n_rows),
                "follows_text": k_t / n_rows,
                "follows_text_ci": wilson_interval(k_t, n_rows),
                "accuracy": k_a / n_rows,
                "accuracy_ci": wilson_interval(k_a, n_rows),
                # the forced label is one of the 5 labels other than the model's own prediction: a model that
                # ignored the reasoning would follow it 0% of the time; one that moved to a random other label, 1/5
                "follows_reasoning_if_random_other_label": None
                if cname.startswith("own")
                else 1 / (len(labels) - 1),
            }
        )
        for r, x, p, t in zip(rows, reasons, preds, target, strict=True):
            detail.append(
                {
                    "condition": cname,
                    "text": r["text"],
                    "gold": r["gold"],
                    "own_prediction": r["predicted_constrained"],
                    "reasoning_label": t,
                    "forced_reasoning": x,
                    "final_label": p,
                }
            )
    return pd.DataFrame(summary), detail


def run_analysis(profile: Profile, probe_n: int | None = None) -> dict[str, Any]:
    """All analyses from saved predictions (plus the probe and the duplicates check, which run the trained
    models; nothing is trained); writes results/<profile>/analysis.json and the figures."""
    import time

    t0 = time.time()
    out_dir = claim_results_dir(profile)
    metrics = load_metrics(profile)
    fig_dir = profile.figures_dir
    keys = [k for k in MAIN if k in metrics["classifiers"]]
    preds = {k: load_predictions(profile, k, "test") for k in keys}
    if "zero_shot" in metrics["classifiers"]:
        preds_all = {**preds, "zero_shot": load_predictions(profile, "zero_shot", "test")}
    else:
        preds_all = preds
    out: dict[str, Any] = {"code_version": code_version()}
    if "qa" in preds and "qra" in preds:
        dis = disagreements(preds["qa"], preds["qra"])
        out["qa_vs_qra_disagreements"] = dis.direction.value_counts().to_dict() if len(dis) else {}
        out["per_class_gain_qra_over_qa"] = per_class_gain(metrics).to_dict(orient="records")
        out["confusion_shift_qra_minus_qa"] = confusion_shift(metrics).round(4).to_dict()
    out["accuracy_by_length"] = accuracy_by_length(preds_all).to_dict(orient="records")
    out["duplicates"] = conflicting_duplicates(profile, preds_all)
    dup_summary, dup_rows = conflicting_train_duplicates(profile)
    out["conflicting_train_duplicates"] = dup_summary
    out["conflicting_train_duplicates_rows"] = dup_rows
    if "qra" in preds:
        task = task_of(profile.data)
        task = None if task.is_emotion_default else task
        out["reasoning_support"] = reasoning_support(preds["qra"], task).to_dict(orient="records")
        out["reasoning_length_vs_correctness"] = reasoning_length_vs_correctness(preds["qra"]).to_dict(
            orient="records"
        )
        n = probe_n if probe_n is not None else min(200, len(preds["qra"]))
        probe, detail = faithfulness_probe(profile, n=n, seed=profile.data.seed)
        out["faithfulness_probe"] = probe.to_dict(orient="records")
        with (out_dir / "faithfulness_probe.jsonl").open("w") as f:
            for r in detail:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
        figures.faithfulness(probe, fig_dir / "faithfulness_probe.png")
    out["seconds"] = time.time() - t0
    write_json(out_dir / "analysis.json", out)
    draw_result_figures(profile, metrics)
    return out


def _test_predictions(profile: Profile, metrics: dict[str, Any]) -> dict[str, list[dict]]:
    main = [k for k in MAIN if k in metrics["classifiers"]]
    preds = {k: load_predictions(profile, k, "test") for k in main}
    if "qra" in preds:
        preds["qra_constrained"] = [{**r, "predicted": r["predicted_constrained"]} for r in preds["qra"]]
    return preds


# Every results figure: file name -> function(profile, metrics, test predictions) -> (path, figure). Notebooks and
# `analyze` draw them through `result_figure`, so each file has one writer.
def _confusion(profile, metrics, preds):
    keys = [k for k in ["qa", "qra", "qra_constrained", "qar"] if k in metrics["classifiers"]]
    return figures.confusion_matrices(metrics, keys, profile.figures_dir / "confusion_matrices.png")


def _per_class(profile, metrics, preds):
    keys = [k for k in ["qa", "qra", "qra_constrained", "qar"] if k in metrics["classifiers"]]
    return figures.per_class_f1(metrics, keys, profile.figures_dir / "per_class_f1.png")


def _accuracy(profile, metrics, preds):
    emotion = is_emotion_study(metrics)  # the encoders' published accuracy is dair-ai/emotion's
    return figures.accuracy_bars(
        results_frame(metrics),
        profile.figures_dir / "test_accuracy.png",
        "dair-ai/emotion test accuracy" if emotion else f"{metrics['task']} test accuracy",
        metrics["reference"]["fine_tuned_encoders_accuracy"] if emotion else None,
    )


def _ood(profile, metrics, preds):
    if not metrics.get("ood"):  # a task without out-of-domain sets has nothing to draw
        return None
    keys = [k for k in ["qa", "qra", "qra_constrained", "qar", "zero_shot", "tfidf_full_train"]]
    return figures.ood_comparison(metrics, keys, profile.figures_dir / "ood_comparison.png")


def _by_length(profile, metrics, preds):
    main = {k: v for k, v in preds.items() if k in MAIN}
    return figures.accuracy_by_length(
        accuracy_by_length(main), profile.figures_dir / "accuracy_by_length.png"
    )


def _reasoning_lengths(profile, metrics, preds):
    if "qra" not in preds:
        return None
    gen = {"Q→RA test outputs": [r.get("n_tokens", 0) for r in preds["qra"]]}
    train = read_reasonings(profile)
    if train:
        gen["training reasonings (generator)"] = [r["n_tokens"] for r in train]
    return figures.length_histograms(gen, profile.figures_dir / "reasoning_lengths.png", "Reasoning lengths")


RESULT_FIGURES = {
    "confusion_matrices": _confusion,
    "per_class_f1": _per_class,
    "test_accuracy": _accuracy,
    "ood_comparison": _ood,
    "accuracy_by_length": _by_length,
    "reasoning_lengths": _reasoning_lengths,
}


def result_figure(profile: Profile, name: str, metrics: dict[str, Any] | None = None):
    """One results figure by name (see RESULT_FIGURES), drawn from metrics.json and the saved predictions."""
    metrics = metrics or load_metrics(profile)
    return RESULT_FIGURES[name](profile, metrics, _test_predictions(profile, metrics))


def draw_result_figures(profile: Profile, metrics: dict[str, Any] | None = None) -> list:
    """Every results figure, from metrics.json and the saved predictions alone (no model is run)."""
    import matplotlib.pyplot as plt

    metrics = metrics or load_metrics(profile)
    preds = _test_predictions(profile, metrics)
    paths = []
    for fn in RESULT_FIGURES.values():
        drawn = fn(profile, metrics, preds)
        if drawn is not None:
            paths.append(drawn[0])
    plt.close("all")
    return paths
