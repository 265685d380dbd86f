"""Tables of an experiment's results, from metrics.json: for the README, the terminal and the notebooks."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

DISPLAY_NAMES = {
    "qa": "Q→A (LoRA)",
    "qra": "Q→RA, free generation (LoRA)",
    "qra_constrained": "Q→RA, labels scored after the reasoning (LoRA)",
    "qra_selected": "Q→RA, decoding chosen on validation (LoRA)",
    "qra_sc_vote": "Q→RA, vote over sampled reasonings (LoRA)",
    "qra_sc_logprob": "Q→RA, summed log-probability over sampled reasonings (LoRA)",
    "qar": "Q→AR (LoRA)",
    "multitask": "multi-task Q→A + Q→R (LoRA)",
    "zero_shot": "zero-shot base model",
    "majority": "majority class",
    "tfidf_same_examples": "TF-IDF + LR, same training examples",
    "tfidf_full_train": "TF-IDF + LR, full 16k training set",
}


def is_emotion_study(metrics: dict[str, Any]) -> bool:
    """Whether these results are the default emotion task's (older metrics files name no task): only there do the
    paper's numbers, the encoders' reference and the 16k training set apply."""
    return (metrics.get("task") or "emotion") == "emotion"


def display_name(key: str, metrics: dict[str, Any]) -> str:
    """A classifier's display name in these results (the full-training-set baseline is the task's own split)."""
    if key == "tfidf_full_train" and not is_emotion_study(metrics):
        return "TF-IDF + LR, the task's full training split"
    return DISPLAY_NAMES.get(key, key)


def results_frame(
    metrics: dict[str, Any], section: str = "classifiers", ood_set: str | None = None
) -> pd.DataFrame:
    block = metrics["ood"][ood_set] if ood_set else metrics[section]
    rows = []
    for name, m in block.items():
        rows.append(
            {
                "classifier": display_name(name, metrics),
                "key": name,
                "n": m["n_test"],
                "accuracy": m["accuracy"],
                "acc_lo": m["accuracy_ci"][0],
                "acc_hi": m["accuracy_ci"][1],
                "macro_f1": m["macro_f1"],
                "f1_lo": m["macro_f1_ci"][0],
                "f1_hi": m["macro_f1_ci"][1],
                "parse_failures": m["parse_failures"],
            }
        )
    return pd.DataFrame(rows).sort_values("accuracy", ascending=False).reset_index(drop=True)


def mcnemar_frame(metrics: dict[str, Any]) -> pd.DataFrame:
    rows = []
    for pair, r in metrics["mcnemar"].items():
        a, b = pair.split("__vs__")
        rows.append(
            {
                "first": a,
                "second": b,
                "accuracy_difference": r["accuracy_difference"],
                "only_first_correct": r["only_first_correct"],
                "only_second_correct": r["only_second_correct"],
                "p_value": r["p_value"],
            }
        )
    return pd.DataFrame(rows)


def _fmt_table(df: pd.DataFrame) -> str:
    lines = [
        "| classifier | n | accuracy [95% CI] | macro-F1 [95% CI] | parse failures |",
        "|---|---|---|---|---|",
    ]
    for _, r in df.iterrows():
        lines.append(
            f"| {r['classifier']} | {r['n']} | {r['accuracy']:.3f} [{r['acc_lo']:.3f}, {r['acc_hi']:.3f}] | "
            f"{r['macro_f1']:.3f} [{r['f1_lo']:.3f}, {r['f1_hi']:.3f}] | {r['parse_failures']} |"
        )
    return "\n".join(lines)


KEY_PAIRS = [
    ("qa", "qra"),
    ("qa", "qra_constrained"),
    ("qa", "qar"),
    ("qra", "qar"),
    ("qa", "tfidf_same_examples"),
    ("qa", "zero_shot"),
]


def results_table(metrics: dict[str, Any]) -> str:
    """Markdown: test table, McNemar tests of the key pairs, out-of-domain tables."""
    emotion = is_emotion_study(metrics)
    head = "### Test set (dair-ai/emotion)" if emotion else f"### Test set (task `{metrics['task']}`)"
    out = [head, "", _fmt_table(results_frame(metrics)), ""]
    ref = metrics.get("reference", {})
    if ref and emotion:  # the encoders' accuracy and the paper's gain are dair-ai/emotion's
        out.append(
            f"Reference (not measured here): fine-tuned encoders reach ~{ref['fine_tuned_encoders_accuracy']:.2f} "
            f"accuracy; the paper reports Q→RA {ref['paper_qra_minus_qa_points']:+.1f} points over Q→A."
        )
        out.append("")
    if metrics.get("qra_selected_decoding"):
        out.append(f"Q→RA decoding chosen on validation: `{metrics['qra_selected_decoding']}`.")
        out.append("")
    if metrics.get("primary"):
        out += [comparison_table(metrics), ""]
    else:  # results written before comparisons existed
        out += [_mcnemar_table(metrics), ""]
    for name in metrics.get("ood", {}):
        out += [
            "",
            f"### Out of domain: {name} (evaluation only)",
            "",
            "A stratified sample (`data.ood_size`) of the pool, one training seed; the full pools over three training "
            "seeds, with the same breakdown, are arm `ood_full_pools` of the ablation study (below).",
            "",
            _fmt_table(results_frame(metrics, ood_set=name)),
        ]
        for c in metrics.get("comparisons", []):
            if c["set"] == name and c["declared_as"] == ["qa", "qra_selected"] and c.get("per_gold_class"):
                parts = sorted(
                    c["per_gold_class"].items(), key=lambda kv: -abs(kv[1]["net_rows_second_minus_first"])
                )
                out += [
                    "",
                    f"Where {plain_name(c['second'])} − {plain_name(c['first'])} comes from (net rows gained, by gold class): "
                    + ", ".join(
                        f"{lab} {v['net_rows_second_minus_first']:+d} (n={v['n']})" for lab, v in parts
                    )
                    + ".",
                ]
        sens = metrics.get("ood_label_space_sensitivity", {}).get(name)
        if sens:
            space = metrics["ood"][name][next(iter(metrics["ood"][name]))]["label_space"]
            out += [
                "",
                f"{name} has {len(space)} classes ({', '.join(space)}); a predicted label outside them counts as an "
                "error. Sensitivity, picking the best-scoring label among them instead: "
                + "; ".join(
                    f"{plain_name(k)} {v['accuracy_as_scored']:.3f} → {v['accuracy_within_label_space']:.3f}"
                    for k, v in sens.items()
                )
                + ".",
            ]
        tests = metrics.get("ood_mcnemar", {}).get(name, {})
        pairs = [p for p in ("qa__vs__qra", "qa__vs__qra_constrained", "qa__vs__qar") if p in tests]
        if pairs and not metrics.get("primary"):
            out.append("")
            out.append(
                "McNemar: "
                + "; ".join(
                    f"{p.replace('__vs__', ' vs ')} {tests[p]['accuracy_difference']:+.3f} (p = {tests[p]['p_value']:.3g})"
                    for p in pairs
                )
            )
    return "\n".join(out)


def _mcnemar_table(metrics: dict[str, Any]) -> str:
    out = [
        "### McNemar tests (exact, paired, test set)",
        "",
        "| pair | accuracy difference | only first correct | only second correct | p |",
        "|---|---|---|---|---|",
    ]
    for a, b in KEY_PAIRS:
        key = f"{a}__vs__{b}" if f"{a}__vs__{b}" in metrics["mcnemar"] else f"{b}__vs__{a}"
        if key in metrics["mcnemar"]:
            r = metrics["mcnemar"][key]
            x, y = key.split("__vs__")
            out.append(
                f"| {x} vs {y} | {r['accuracy_difference']:+.3f} | {r['only_first_correct']} | "
                f"{r['only_second_correct']} | {r['p_value']:.3g} |"
            )
    return "\n".join(out)


def plain_name(key: str) -> str:
    """A classifier's display name without the fine-tuning mode (an arm may train fully, not with LoRA)."""
    return DISPLAY_NAMES.get(key, key).replace(" (LoRA)", "")


def comparison_table(metrics: dict[str, Any]) -> str:
    """The declared primary comparison and the Holm-adjusted secondary ones (second minus first, paired)."""
    level = int(round(metrics["profile"]["evaluate"]["ci_level"] * 100))
    head = [
        f"| set | second − first | accuracy Δ [{level}% paired CI] | macro-F1 Δ [{level}% paired CI] | "
        "only first / only second correct | McNemar p | Holm p |",
        "|---|---|---|---|---|---|---|",
    ]

    def row(c: dict[str, Any], holm: str) -> str:
        a, f = c["accuracy_difference_ci"], c["macro_f1_difference_ci"]
        return (
            f"| {c['set']} | {plain_name(c['second'])} − {plain_name(c['first'])} | {c['accuracy_difference'] * 100:+.1f} "
            f"[{a[0] * 100:+.1f}, {a[1] * 100:+.1f}] | {c['macro_f1_difference'] * 100:+.1f} "
            f"[{f[0] * 100:+.1f}, {f[1] * 100:+.1f}] | {c['only_first_correct']} / {c['only_second_correct']} | "
            f"{c['p_value']:.3g} | {holm} |"
        )

    p = metrics["primary"]
    out = [
        "### Primary comparison (declared in the profile: `evaluate.primary`)",
        "",
        *head,
        row(p, "(primary, not adjusted)"),
        "",
        f"Points (×100). Paired bootstrap: {p['bootstrap_samples']} resamples of the same rows for both "
        "classifiers; McNemar: exact binomial test on the discordant rows.",
        "",
        "### Secondary comparisons (Holm-adjusted as one family)",
        "",
        *head,
    ]
    out += [row(c, f"{c['p_holm']:.3g}") for c in metrics["comparisons"]]
    return "\n".join(out)


SHORT_NAMES = {
    "qa": "Q→A",
    "qra": "Q→RA (free generation)",
    "qra_constrained": "Q→RA (labels scored after its reasoning)",
    "qra_selected": "Q→RA (decoding chosen on validation)",
    "qra_sc_vote": "Q→RA (vote over sampled reasonings)",
    "qra_sc_logprob": "Q→RA (summed log-probability over sampled reasonings)",
    "qar": "Q→AR",
    "multitask": "multi-task",
}


def short_name(key: str) -> str:
    return SHORT_NAMES.get(key, plain_name(key))


def percent(x: float) -> str:
    return f"{x * 100:.1f}%"


def readable(df: pd.DataFrame) -> pd.DataFrame:
    """A table for reading: whole numbers without decimals (1,234), other numbers to 3 decimals, dicts and lists
    as short 'key: value' text."""

    def cell(x: Any) -> Any:
        if isinstance(x, bool):
            return x
        if isinstance(x, (int, float)) and not (isinstance(x, float) and math.isnan(x)):
            return f"{x:,.0f}" if float(x).is_integer() else f"{x:.3f}"
        if isinstance(x, dict):
            return ", ".join(f"{k}: {cell(v)}" for k, v in x.items())
        if isinstance(x, list):
            return ", ".join(str(cell(v)) for v in x)
        return x

    return df.map(cell)


def engine_check_table(report: dict[str, Any]) -> str:
    """A Markdown list (readable in a terminal too): every paired difference, the times and the verdict."""

    def pts(x: float | None) -> str:
        return "n/a" if x is None else f"{100 * x:+.1f}"

    def ci(c: list[float | None]) -> str:
        return "[n/a]" if c[0] is None else f"[{100 * c[0]:+.1f}, {100 * c[1]:+.1f}]"

    def secs(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.0f} s"

    a, t = report["augmentation"], report["generation_seconds"]
    lines = [
        f"`{report['backend']}` against `{report['reference']}` on the default profile ({report['split']} only; "
        "candidate − reference in points with paired 95% bootstrap intervals; code "
        f"`{report['code_version']}`):",
        f"- augmentation of the {a['rows']:,} training rows: {a['identical_reasonings']:,} reasonings identical; "
        f"generation {secs(t['augment_reference'])} → {secs(t['augment_candidate'])} (each artifact's own run)",
    ]
    for k in ("leaks_gold", "grounding", "repetitive", "cut_at_limit"):
        lines.append(f"  - {k.replace('_', ' ')}: {pts(a[k]['difference'])} {ci(a[k]['ci'])}")
    lo, hi = a["n_tokens"]["ci"]
    lines.append(f"  - mean length: {a['n_tokens']['difference']:+.2f} tokens [{lo:+.2f}, {hi:+.2f}]")
    las = a["las"]
    lines.append(
        f"  - LAS: {100 * las['las_reference']:+.1f} → {100 * las['las_candidate']:+.1f}, "
        f"{pts(las['difference'])} {ci(las['ci'])}"
    )
    for part, title in (
        ("augmentation_qra_validation", "Q→RA trained on the candidate's reasonings"),
        ("inference_qra_validation", "the default Q→RA decoded by the candidate"),
    ):
        r = report[part]
        extra = (
            f"; prediction {secs(t['qra_validation_reference'])} → {secs(t['qra_validation_candidate'])} "
            "(generation and label scoring, each artifact's own run)"
            if part == "inference_qra_validation"
            else ""
        )
        lines.append(f"- {title}: {r['identical_generations']:,} of {r['rows']:,} outputs identical{extra}")
        for name in ("free", "constrained"):
            v = r[name]
            lines.append(
                f"  - {name}: accuracy {v['accuracy_reference']:.3f} → {v['accuracy_candidate']:.3f}, "
                f"{pts(v['accuracy_difference'])} {ci(v['accuracy_difference_ci'])}, McNemar p = "
                f"{v['mcnemar']['p_value']:.3g}"
            )
    lines.append(
        "- **within noise: "
        + (
            "yes**"
            if report["within_noise"]
            else "no** (" + ", ".join(report["intervals_excluding_zero"]) + ")"
        )
    )
    return "\n".join(lines)
