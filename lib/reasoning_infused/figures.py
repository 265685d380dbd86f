"""Every figure of the study, each drawn by one function from saved results and written as PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from .data import LABELS
from .report import DISPLAY_NAMES


def _save(fig, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def class_balance(counts: dict[str, dict[str, int]], path: Path):
    """Bar chart of class counts per split."""
    df = pd.DataFrame(
        [
            {"split": s, "label": lab, "share": n / sum(c.values())}
            for s, c in counts.items()
            for lab, n in c.items()
        ]
    )
    fig, ax = plt.subplots(figsize=(7, 3.5))
    sns.barplot(df, x="label", y="share", hue="split", ax=ax, order=LABELS)
    ax.set_title("Class balance per split (share of rows)")
    return _save(fig, path), fig


def length_histograms(lengths: dict[str, list[int]], path: Path, title: str, xlabel: str = "tokens"):
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name, vals in lengths.items():
        ax.hist(vals, bins=40, alpha=0.5, label=f"{name} (median {np.median(vals):.0f})")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("rows")
    ax.set_title(title)
    ax.legend()
    return _save(fig, path), fig


def loss_curve(log_rows: list[dict[str, Any]], path: Path, title: str = "Training loss"):
    rows = [r for r in log_rows if "loss" in r]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([r["step"] for r in rows], [float(r["loss"]) for r in rows], marker="o")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss per completion token")
    ax.set_title(title)
    return _save(fig, path), fig


def confusion_matrices(metrics: dict[str, Any], keys: list[str], path: Path):
    """Row-normalised confusion matrices side by side (last column: unparsable outputs)."""
    keys = [k for k in keys if k in metrics["classifiers"]]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 4), squeeze=False)
    for ax, k in zip(axes[0], keys, strict=True):
        m = metrics["classifiers"][k]
        cm = np.array(m["confusion"], dtype=float)
        cm = cm / cm.sum(axis=1, keepdims=True).clip(min=1)
        cols = LABELS + (["unparsed"] if m["parse_failures"] else [])
        sns.heatmap(
            cm[:, : len(cols)],
            annot=True,
            fmt=".2f",
            cmap="Blues",
            vmin=0,
            vmax=1,
            cbar=False,
            ax=ax,
            xticklabels=cols,
            yticklabels=LABELS,
            annot_kws={"size": 7},
        )
        ax.set_title(f"{DISPLAY_NAMES.get(k, k)}\nacc {m['accuracy']:.3f}", fontsize=9)
        ax.set_xlabel("predicted")
        ax.set_ylabel("gold")
        ax.tick_params(axis="y", rotation=0)
    return _save(fig, path), fig


def per_class_f1(
    metrics: dict[str, Any],
    keys: list[str],
    path: Path,
    n_boot: int = 500,
    seed: int = 0,
    predictions: dict[str, list[dict[str, Any]]] | None = None,
):
    """Per-class F1 with bootstrap intervals (from saved predictions when given; else point estimates)."""
    from sklearn.metrics import f1_score

    keys = [k for k in keys if k in metrics["classifiers"]]
    rows = []
    rng = np.random.default_rng(seed)
    for k in keys:
        pc = metrics["classifiers"][k]["per_class"]
        lo = hi = None
        if predictions and k in predictions:
            g = np.array([LABELS.index(r["gold"]) for r in predictions[k]])
            p = np.array(
                [LABELS.index(r["predicted"]) if r["predicted"] in LABELS else -1 for r in predictions[k]]
            )
            boots = []
            for _ in range(n_boot):
                idx = rng.integers(0, len(g), len(g))
                boots.append(f1_score(g[idx], p[idx], labels=list(range(6)), average=None, zero_division=0))
            lo, hi = np.percentile(boots, [2.5, 97.5], axis=0)
        for i, lab in enumerate(LABELS):
            f = pc[lab]["f1"]
            rows.append(
                {
                    "classifier": DISPLAY_NAMES.get(k, k),
                    "label": lab,
                    "f1": f,
                    "lo": f - (lo[i] if lo is not None else f),
                    "hi": (hi[i] if hi is not None else f) - f,
                }
            )
    fig = _grouped_bars(
        pd.DataFrame(rows).rename(columns={"label": "group", "f1": "value"}),
        LABELS,
        "F1 (95% bootstrap CI)",
        "Per-class F1 on the test set",
    )
    return _save(fig, path), fig


def _grouped_bars(df: pd.DataFrame, groups: list[str], ylabel: str, title: str):
    """Bars per (group, classifier) with asymmetric error bars; df: group, classifier, value, lo, hi."""
    fig, ax = plt.subplots(figsize=(9, 4))
    names = list(dict.fromkeys(df.classifier))
    width = 0.8 / max(1, len(names))
    for j, n in enumerate(names):
        sub = df[df.classifier == n].set_index("group").reindex(groups)
        ax.bar(
            np.arange(len(groups)) + j * width, sub.value, width, yerr=[sub.lo, sub.hi], capsize=2, label=n
        )
    ax.set_xticks(np.arange(len(groups)) + width * (len(names) - 1) / 2, groups)
    ax.set_ylabel(ylabel)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7)
    ax.set_title(title)
    return fig


def accuracy_bars(table: pd.DataFrame, path: Path, title: str, reference: float | None = None):
    """Accuracy with 95% intervals, one bar per classifier (table from report.results_frame)."""
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(table) + 1.2))
    t = table.iloc[::-1]
    ax.barh(
        t.classifier,
        t.accuracy,
        xerr=[t.accuracy - t.acc_lo, t.acc_hi - t.accuracy],
        capsize=3,
        color="tab:blue",
    )
    if reference:
        ax.axvline(
            reference, ls="--", color="gray", label=f"fine-tuned encoders (~{reference:.2f}, published)"
        )
        ax.legend(fontsize=7, loc="lower right")
    ax.set_xlim(0, 1)
    ax.set_xlabel("accuracy (95% bootstrap CI)")
    ax.set_title(title)
    return _save(fig, path), fig


def ood_comparison(metrics: dict[str, Any], keys: list[str], path: Path):
    rows = []
    sets = {
        "dair-ai test": metrics["classifiers"],
        **{f"OOD {k}": v for k, v in metrics.get("ood", {}).items()},
    }
    for sname, block in sets.items():
        for k in keys:
            if k in block:
                m = block[k]
                rows.append(
                    {
                        "set": sname,
                        "classifier": DISPLAY_NAMES.get(k, k),
                        "macro_f1": m["macro_f1"],
                        "lo": m["macro_f1"] - m["macro_f1_ci"][0],
                        "hi": m["macro_f1_ci"][1] - m["macro_f1"],
                    }
                )
    df = pd.DataFrame(rows).rename(columns={"set": "group", "macro_f1": "value"})
    fig = _grouped_bars(df, list(dict.fromkeys(df.group)), "macro-F1 (95% CI)", "In-domain vs out-of-domain")
    return _save(fig, path), fig


def accuracy_by_length(df: pd.DataFrame, path: Path):
    """df: columns length_bin, classifier, accuracy, n (from analysis.accuracy_by_length)."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name, sub in df.groupby("classifier", sort=False):
        ax.plot(sub.length_bin.astype(str), sub.accuracy, marker="o", label=name)
    ax.set_xlabel("text length (words)")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=7)
    ax.set_title("Accuracy by text length")
    return _save(fig, path), fig


def faithfulness(df: pd.DataFrame, path: Path):
    """df: condition, follows_reasoning, follows_text (shares) from analysis.faithfulness_probe."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    x = np.arange(len(df))
    ax.bar(x - 0.2, df.follows_reasoning, 0.4, label="final label = the reasoning's label")
    ax.bar(x + 0.2, df.follows_text, 0.4, label="final label = model's own label for the text")
    ax.set_xticks(x, df.condition, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of examples")
    ax.legend(fontsize=7)
    ax.set_title("Faithfulness probe: Q→RA with a forced reasoning")
    return _save(fig, path), fig
