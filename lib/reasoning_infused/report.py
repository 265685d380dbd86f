"""Tables from metrics.json (markdown, for the README and the terminal) and pandas frames for notebooks."""

from __future__ import annotations

from typing import Any

import pandas as pd

DISPLAY_NAMES = {
    "qa": "Q→A (LoRA)",
    "qra": "Q→RA, free generation (LoRA)",
    "qra_constrained": "Q→RA, labels scored after the reasoning (LoRA)",
    "qar": "Q→AR (LoRA)",
    "zero_shot": "zero-shot base model",
    "majority": "majority class",
    "tfidf_same_examples": "TF-IDF + LR, same training examples",
    "tfidf_full_train": "TF-IDF + LR, full 16k training set",
}


def results_frame(metrics: dict[str, Any], section: str = "classifiers", ood_set: str | None = None) -> pd.DataFrame:
    block = metrics["ood"][ood_set] if ood_set else metrics[section]
    rows = []
    for name, m in block.items():
        rows.append({
            "classifier": DISPLAY_NAMES.get(name, name), "key": name, "n": m["n_test"],
            "accuracy": m["accuracy"], "acc_lo": m["accuracy_ci"][0], "acc_hi": m["accuracy_ci"][1],
            "macro_f1": m["macro_f1"], "f1_lo": m["macro_f1_ci"][0], "f1_hi": m["macro_f1_ci"][1],
            "parse_failures": m["parse_failures"],
        })
    return pd.DataFrame(rows).sort_values("accuracy", ascending=False).reset_index(drop=True)


def mcnemar_frame(metrics: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for pair, r in metrics["mcnemar"].items():
        a, b = pair.split("__vs__")
        rows.append({"first": a, "second": b, "accuracy_difference": r["accuracy_difference"],
                     "only_first_correct": r["only_first_correct"], "only_second_correct": r["only_second_correct"],
                     "p_value": r["p_value"]})
    return pd.DataFrame(rows)


def _fmt_table(df: pd.DataFrame) -> str:
    lines = ["| classifier | n | accuracy [95% CI] | macro-F1 [95% CI] | parse failures |", "|---|---|---|---|---|"]
    for _, r in df.iterrows():
        lines.append(f"| {r['classifier']} | {r['n']} | {r['accuracy']:.3f} [{r['acc_lo']:.3f}, {r['acc_hi']:.3f}] | "
                     f"{r['macro_f1']:.3f} [{r['f1_lo']:.3f}, {r['f1_hi']:.3f}] | {r['parse_failures']} |")
    return "\n".join(lines)


KEY_PAIRS = [("qa", "qra"), ("qa", "qra_constrained"), ("qa", "qar"), ("qra", "qar"), ("qa", "tfidf_same_examples"),
             ("qa", "zero_shot")]


def results_table(metrics: dict[str, Any]) -> str:
    """Markdown: test table, McNemar tests of the key pairs, out-of-domain tables."""
    out = ["### Test set (dair-ai/emotion)", "", _fmt_table(results_frame(metrics)), ""]
    ref = metrics.get("reference", {})
    if ref:
        out.append(f"Reference (not measured here): fine-tuned encoders reach ~{ref['fine_tuned_encoders_accuracy']:.2f} "
                   f"accuracy; the paper reports Q→RA {ref['paper_qra_minus_qa_points']:+.1f} points over Q→A.")
        out.append("")
    if metrics.get("qra_selected_decoding"):
        out.append(f"Q→RA decoding chosen on validation: `{metrics['qra_selected_decoding']}`.")
        out.append("")
    out += ["### McNemar tests (exact, paired, test set)", "", "| pair | accuracy difference | only first correct | only second correct | p |",
            "|---|---|---|---|---|"]
    for a, b in KEY_PAIRS:
        key = f"{a}__vs__{b}" if f"{a}__vs__{b}" in metrics["mcnemar"] else f"{b}__vs__{a}"
        if key in metrics["mcnemar"]:
            r = metrics["mcnemar"][key]
            x, y = key.split("__vs__")
            out.append(f"| {x} vs {y} | {r['accuracy_difference']:+.3f} | {r['only_first_correct']} | "
                       f"{r['only_second_correct']} | {r['p_value']:.3g} |")
    for name in metrics.get("ood", {}):
        out += ["", f"### Out of domain: {name}", "", _fmt_table(results_frame(metrics, ood_set=name))]
    return "\n".join(out)
