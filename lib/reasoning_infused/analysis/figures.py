"""Every figure of the study, each drawn by one function from saved results and written as PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from reasoning_infused.analysis.tables import DISPLAY_NAMES, display_name, plain_name
from reasoning_infused.data.emotion import LABELS

# One colour per classifier in every figure (keys of DISPLAY_NAMES; also looked up by display name).
CLASSIFIER_COLORS = {
    "qa": "#1f77b4",
    "qra": "#ff7f0e",
    "qra_constrained": "#d62728",
    "qra_selected": "#d62728",  # the same classifier as its chosen decoding
    "qra_sc_vote": "#e377c2",  # self-consistency: the same Q->RA models, k sampled reasonings combined
    "qra_sc_logprob": "#f7b6d2",
    "qar": "#2ca02c",
    "multitask": "#17becf",
    "zero_shot": "#7f7f7f",
    "majority": "#bcbd22",
    "tfidf_same_examples": "#9467bd",
    "tfidf_full_train": "#8c564b",
}
_COLOR_BY_NAME = {DISPLAY_NAMES[k]: c for k, c in CLASSIFIER_COLORS.items() if k in DISPLAY_NAMES}
_COLOR_BY_NAME[display_name("tfidf_full_train", {"task": "any other"})] = CLASSIFIER_COLORS[
    "tfidf_full_train"
]


def classifier_color(name: str) -> str | None:
    """The colour of a classifier given its key or display name (None: matplotlib's next colour)."""
    return CLASSIFIER_COLORS.get(name) or _COLOR_BY_NAME.get(name)


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
    order = list(next(iter(counts.values()), {})) or LABELS  # the task's labels, in its order
    sns.barplot(df, x="label", y="share", hue="split", ax=ax, order=order)
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
        labels = m.get("confusion_labels", LABELS + ["<unparsed>"])[:-1]
        cols = labels + (["unparsed"] if m["parse_failures"] else [])
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
            yticklabels=labels,
            annot_kws={"size": 7},
        )
        ax.set_title(f"{DISPLAY_NAMES.get(k, k)}\nacc {m['accuracy']:.3f}", fontsize=9)
        ax.set_xlabel("predicted")
        ax.set_ylabel("gold")
        ax.tick_params(axis="y", rotation=0)
    return _save(fig, path), fig


def per_class_f1(metrics: dict[str, Any], keys: list[str], path: Path):
    """Per-class F1 with the bootstrap intervals of metrics.json (the one source of every interval)."""
    keys = [k for k in keys if k in metrics["classifiers"]]
    rows = []
    for k in keys:
        for lab, pc in metrics["classifiers"][k]["per_class"].items():
            lo, hi = pc.get("f1_ci", [pc["f1"], pc["f1"]])
            rows.append(
                {
                    "classifier": DISPLAY_NAMES.get(k, k),
                    "group": lab,
                    "value": pc["f1"],
                    "lo": pc["f1"] - lo,
                    "hi": hi - pc["f1"],
                }
            )
    level = int(round(metrics["profile"]["evaluate"]["ci_level"] * 100))
    fig = _grouped_bars(
        pd.DataFrame(rows),
        list(next(iter(metrics["classifiers"].values()))["per_class"]),
        f"F1 ({level}% bootstrap CI)",
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
        # a percentile interval need not contain the point estimate (tiny or degenerate samples): clip at 0
        err = [sub.lo.clip(lower=0), sub.hi.clip(lower=0)]
        ax.bar(
            np.arange(len(groups)) + j * width,
            sub.value,
            width,
            yerr=err,
            capsize=2,
            label=n,
            color=classifier_color(n),
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
        xerr=[(t.accuracy - t.acc_lo).clip(lower=0), (t.acc_hi - t.accuracy).clip(lower=0)],
        capsize=3,
        color=[classifier_color(n) or "tab:blue" for n in t.classifier],
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
        ax.plot(
            sub.length_bin.astype(str), sub.accuracy, marker="o", label=name, color=classifier_color(name)
        )
    ax.set_xlabel("text length (words)")
    ax.set_ylabel("test accuracy")
    ax.legend(fontsize=7)
    ax.set_title("Accuracy by text length")
    return _save(fig, path), fig


def faithfulness(df: pd.DataFrame, path: Path):
    """df: condition, follows_reasoning, follows_text (shares) from analysis.faithfulness_probe."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    x = np.arange(len(df))
    err = {}
    for col in ("follows_reasoning", "follows_text"):
        if f"{col}_ci" in df:
            ci = np.array(df[f"{col}_ci"].tolist())
            err[col] = [(df[col] - ci[:, 0]).clip(lower=0), (ci[:, 1] - df[col]).clip(lower=0)]
    ax.bar(
        x - 0.2,
        df.follows_reasoning,
        0.4,
        yerr=err.get("follows_reasoning"),
        capsize=3,
        label="final label = the reasoning's label (95% Wilson CI)",
    )
    ax.bar(
        x + 0.2,
        df.follows_text,
        0.4,
        yerr=err.get("follows_text"),
        capsize=3,
        label="final label = model's own label for the text",
    )
    if (
        "follows_reasoning_if_random_other_label" in df
        and df.follows_reasoning_if_random_other_label.notna().any()
    ):
        ref = float(df.follows_reasoning_if_random_other_label.dropna().iloc[0])
        ax.axhline(ref, color="gray", ls=":", lw=1, label=f"a random label other than its own ({ref:.2f})")
    ax.set_xticks(x, df.condition, fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share of examples")
    ax.legend(fontsize=7)
    ax.set_title("Faithfulness probe: Q→RA with a forced reasoning")
    return _save(fig, path), fig


def ablation_forest(arms: dict[str, dict[str, Any]], path: Path, set_name: str = "test"):
    """Per arm and compared classifier: accuracy difference to the arm's matched control on `set_name` (points,
    second minus first), each seed's paired 95% bootstrap interval (thin line) and, with 2+ seeds, the mean
    with its t-interval over seeds (thick line)."""
    rows = []
    for arm, r in arms.items():
        seconds = {s["second"] for s in r["summary"].values()}
        for s in r["summary"].values():
            if s["set"] != set_name or (
                s["second"] in ("qra", "qra_constrained") and "qra_selected" in seconds
            ):
                continue  # Q->RA is shown with the decoding validation chose for each seed
            per_seed = [
                c
                for seed in r["per_seed"]
                for c in seed["sets"][set_name]["comparisons"]
                if c["second"] == s["second"] and c["first"] == s["first"]
            ]
            rows.append((arm, s, per_seed))
    fig, (ax, ax2) = plt.subplots(
        1, 2, figsize=(11, 0.6 * max(1, len(rows)) + 1.4), sharey=True, gridspec_kw={"width_ratios": [3, 1.4]}
    )
    for y, (arm, s, per_seed) in enumerate(rows):
        for j, c in enumerate(per_seed):
            dy = (j - (len(per_seed) - 1) / 2) * 0.12
            lo, hi = c["accuracy_difference_ci"]
            ax.plot([lo * 100, hi * 100], [y + dy, y + dy], color="0.6", lw=1)
            ax.plot(c["accuracy_difference"] * 100, y + dy, "o", color="tab:blue", ms=4)
        m = s["accuracy_difference"]
        if m["seeds"] > 1:
            ax.plot([m["ci"][0] * 100, m["ci"][1] * 100], [y, y], color="black", lw=3, alpha=0.5)
            ax.plot(m["mean"] * 100, y, "D", color="black", ms=6)
        # the same difference on the log-odds scale (the mean accuracies' logits): near the ceiling a gap in
        # points compresses, in log-odds it does not
        accs = []
        for seed in arms[arm][
            "per_seed"
        ]:  # (an arm file without per-classifier accuracies: no log-odds point)
            clf = seed["sets"][set_name].get("classifiers", {})
            if s["first"] in clf and s["second"] in clf:
                accs.append((clf[s["first"]]["accuracy"], clf[s["second"]]["accuracy"]))
        if accs:
            first = sum(a for a, _ in accs) / len(accs)
            second = sum(b for _, b in accs) / len(accs)
            ax2.plot(_logit(second) - _logit(first), y, "s", color="tab:purple", ms=6)
    ax.axvline(0, color="gray", ls="--")
    ax2.axvline(0, color="gray", ls="--")
    labels = [  # two lines (arm, comparison) so long names do not squeeze the plot
        f"{arm}\n{plain_name(s['second'])} − {plain_name(s['first'])}" for arm, s, _ in rows
    ]
    ax.set_yticks(range(len(rows)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel(f"accuracy difference to the matched control ({set_name}, points)")
    ax2.set_xlabel("the same, log-odds (mean accuracies)")
    ax.set_title(
        "Ablations: per seed (dots, paired 95% CI)\nand mean over seeds (diamond, t-interval)", fontsize=9
    )
    ax2.set_title("log-odds scale", fontsize=9)
    return _save(fig, path), fig


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return float(np.log(p / (1 - p)))


def generator_tradeoff(result: dict[str, Any], path: Path):
    """Each generator candidate of a sweep against the reference (the default generator) on the same held-out
    training rows: grounding difference (x) and LAS difference (y), in points, each with its paired 95% bootstrap
    interval. The sweep's rule asks for both intervals above 0: the shaded upper-right quadrant."""
    rows = [
        (name, c["against_reference"])
        for name, c in result["candidates"].items()
        if c.get("against_reference")
    ]
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    for name, a in rows:
        g, las = a["grounding"], a["las"]
        x, y = g["difference"] * 100, las["difference"] * 100
        xerr = [[x - g["ci"][0] * 100], [g["ci"][1] * 100 - x]]
        yerr = [[y - las["ci"][0] * 100], [las["ci"][1] * 100 - y]]
        color = "tab:green" if result["candidates"][name].get("qualifies") else "tab:blue"
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="o", color=color, ecolor="0.65", elinewidth=1, capsize=2)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.axhline(0, color="gray", ls="--", lw=1)
    ax.axvline(0, color="gray", ls="--", lw=1)
    x_hi, y_hi = ax.get_xlim()[1], ax.get_ylim()[1]
    ax.fill_between([0, x_hi], 0, y_hi, color="tab:green", alpha=0.08, label="rule: both above 0")
    ax.set_xlim(right=x_hi)
    ax.set_ylim(top=y_hi)
    ax.set_xlabel(f"grounding difference to `{result['reference']}` (points)")
    ax.set_ylabel(f"LAS difference to `{result['reference']}` (points)")
    ax.set_title(
        f"Generator candidates ({result['rows']} held-out training rows, paired 95% CIs)", fontsize=9
    )
    ax.legend(fontsize=7, loc="lower left")
    return _save(fig, path), fig


def training_length_plot(curve: list[dict[str, Any]], path: Path):
    """Left: test accuracy of Q->A and Q->RA (decoding chosen on validation) against training examples, each seed
    a dot, the mean a line. Right: the gap (Q->RA minus Q->A, points), mean with its t-interval over seeds."""
    x = np.array([p["examples"] for p in curve])
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6))
    for key, label in (("qa_accuracy", "qa"), ("qra_accuracy", "qra_selected")):
        color = classifier_color(label)
        for p in curve:
            left.plot([p["examples"]] * len(p[key]), p[key], "o", color=color, ms=4, alpha=0.5)
        left.plot(x, [np.mean(p[key]) for p in curve], "-", color=color, lw=2, label=plain_name(label))
    left.set_ylabel("test accuracy")
    left.legend(fontsize=7)
    gaps = np.array([p["gap"]["mean"] * 100 for p in curve])
    lo = np.array([p["gap"]["ci"][0] * 100 for p in curve])
    hi = np.array([p["gap"]["ci"][1] * 100 for p in curve])
    right.errorbar(x, gaps, yerr=[gaps - lo, hi - gaps], fmt="D-", color="black", capsize=4)
    right.axhline(0, color="gray", ls="--")
    right.set_ylabel("Q→RA − Q→A (points)")
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xticks(
            x, [f"{n:,}\n{p['optimizer_steps']} steps" for n, p in zip(x, curve, strict=True)], fontsize=7
        )
        ax.minorticks_off()
        ax.set_xlabel("training examples (optimizer steps)")
    fig.suptitle("Training length: accuracy per seed (dots) and mean; gap with its t-interval", fontsize=9)
    return _save(fig, path), fig


def shift_heatmap(df: pd.DataFrame, path: Path, title: str, fmt: str = "+.2f"):
    """A table of changes (Q->RA minus Q->A: confusion shares, per-class gains) as a heatmap centred on 0: red
    grows, blue shrinks."""
    values = df.astype(float)
    bound = float(np.nanmax(np.abs(values.to_numpy()))) or 1.0
    fig, ax = plt.subplots(figsize=(1.1 * len(values.columns) + 2.5, 0.55 * len(values) + 1.6))
    sns.heatmap(
        values, annot=True, fmt=fmt, cmap="RdBu_r", vmin=-bound, vmax=bound, center=0, ax=ax, cbar=False
    )
    ax.set_title(title, fontsize=9)
    ax.tick_params(axis="y", rotation=0)
    return _save(fig, path), fig


def answer_forest(rows: list[dict[str, Any]], path: Path):
    """The README's answer as a picture: per task and source of reasonings (`study.report.answer_rows`), the
    reasoning-infused classifier minus Q->A in points with its seeds x rows 95% interval, and the same difference on
    the log-odds scale; one colour per task; the paper's reported difference (no interval) as an open marker; rows
    not run yet are listed without a point."""
    tasks = list(dict.fromkeys(r["task"] for r in rows if not r.get("paper")))
    colors = dict(zip(tasks, sns.color_palette("colorblind", len(tasks)), strict=True))
    fig, (ax, ax2) = plt.subplots(
        1, 2, figsize=(11, 0.5 * len(rows) + 1.8), sharey=True, gridspec_kw={"width_ratios": [3, 1.3]}
    )
    labels = []
    for y, r in enumerate(rows):
        n = r["seeds"]
        seeds = "" if r.get("paper") else (f", {n} seed{'s' * (n > 1)}" if n else ", not run yet")
        labels.append(f"{r['task']}: {r['reasonings']}{seeds}")
        if "difference" not in r:
            continue
        color = "0.3" if r.get("paper") else colors[r["task"]]
        face = "white" if r.get("paper") or r.get("interim") else color
        if r.get("ci"):
            ax.plot([r["ci"][0] * 100, r["ci"][1] * 100], [y, y], color=color, lw=3, alpha=0.6)
        ax.plot(r["difference"] * 100, y, "D", ms=7, color=color, markerfacecolor=face)
        ax2.plot(r["log_odds"], y, "s", ms=7, color=color, markerfacecolor=face)
    for a in (ax, ax2):
        a.axvline(0, color="gray", ls="--")
    ax.set_yticks(range(len(rows)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("with reasoning − Q→A, test accuracy\n(points; bar: 95% seeds × rows interval)", fontsize=9)
    ax2.set_xlabel("the same, log-odds", fontsize=9)
    fig.suptitle(
        "Does training on a reasoning before the answer help? SmolLM2-135M (open marker: the paper, Llama-3.2-1B)",
        fontsize=10,
    )
    return _save(fig, path), fig
