"""Tables from metrics.json (markdown, for the README and the terminal) and pandas frames for notebooks."""

from __future__ import annotations

import math
from itertools import pairwise
from statistics import fmean
from typing import Any

import pandas as pd

DISPLAY_NAMES = {
    "qa": "Q→A (LoRA)",
    "qra": "Q→RA, free generation (LoRA)",
    "qra_constrained": "Q→RA, labels scored after the reasoning (LoRA)",
    "qra_selected": "Q→RA, decoding chosen on validation (LoRA)",
    "qar": "Q→AR (LoRA)",
    "multitask": "multi-task Q→A + Q→R (LoRA)",
    "zero_shot": "zero-shot base model",
    "majority": "majority class",
    "tfidf_same_examples": "TF-IDF + LR, same training examples",
    "tfidf_full_train": "TF-IDF + LR, full 16k training set",
}


def results_frame(
    metrics: dict[str, Any], section: str = "classifiers", ood_set: str | None = None
) -> pd.DataFrame:
    block = metrics["ood"][ood_set] if ood_set else metrics[section]
    rows = []
    for name, m in block.items():
        rows.append(
            {
                "classifier": DISPLAY_NAMES.get(name, name),
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
    out = ["### Test set (dair-ai/emotion)", "", _fmt_table(results_frame(metrics)), ""]
    ref = metrics.get("reference", {})
    if ref:
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


def _fmt_s(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def readme_results(
    metrics: dict[str, Any],
    bench: dict[str, Any] | None = None,
    analysis: dict[str, Any] | None = None,
    runner: dict[str, float] | None = None,
    peak_rss: dict[str, float] | None = None,
) -> str:
    """The README's results section, generated from the committed results files (never typed by hand)."""
    p = metrics["profile"]
    c = metrics["classifiers"]
    exp = metrics.get("experiment") or p["name"]
    name_arg = f" --name {exp}" if exp != p["name"] else ""
    out = [
        f"## Results ({exp})",
        "",
        f"Generated by `python -m reasoning_infused report --profile {p['name']}{name_arg} --readme README.md` from "
        f"`results/{exp}/metrics.json` (code `{metrics['code_version']}`, prompts `{metrics['prompt_version']}`, "
        f"{metrics['created_at']}). Test set: {metrics['data_sizes']['test']} examples; classifiers trained on "
        f"{metrics['data_sizes']['train_classifier']} examples; validation {metrics['data_sizes']['validation']}.",
        "",
    ]
    out.append(results_table(metrics))
    if "qa" in c and "qra" in c:
        sel = metrics.get("qra_selected_decoding") or "qra"
        diff = (c[sel]["accuracy"] - c["qa"]["accuracy"]) * 100
        key = f"qa__vs__{sel}"
        pval = metrics["mcnemar"][key]["p_value"] if key in metrics["mcnemar"] else float("nan")
        prim = metrics.get("primary") or {}
        ci = (
            f" [{prim['accuracy_difference_ci'][0] * 100:+.1f}, {prim['accuracy_difference_ci'][1] * 100:+.1f}] "
            "paired 95% CI,"
            if prim.get("second") == sel and prim.get("first") == "qa"
            else ""
        )
        out += [
            "",
            "### Against the paper",
            "",
            f"- Q→RA ({sel}, chosen on validation) minus Q→A: **{diff:+.1f} accuracy points**{ci} "
            f"(McNemar p = {pval:.3g}); the paper reports +8.7 points for Llama-3.2-1B.",
        ]
        if "qar" in c:
            out.append(f"- Q→AR minus Q→A: {(c['qar']['accuracy'] - c['qa']['accuracy']) * 100:+.1f} points.")
        if "tfidf_same_examples" in c:
            out.append(
                f"- TF-IDF + LR on the same {metrics['data_sizes']['train_classifier']} examples: "
                f"{c['tfidf_same_examples']['accuracy']:.3f}; on all 16,000: {c['tfidf_full_train']['accuracy']:.3f}."
            )
    if analysis and analysis.get("faithfulness_probe"):
        out += [
            "",
            "### Faithfulness probe (Q→RA with a forced reasoning)",
            "",
            "| condition | n | final label follows the reasoning [95% Wilson CI] | follows the model's own label | "
            "accuracy | reference: a random label other than its own |",
            "|---|---|---|---|---|---|",
        ]

        def ci(r: dict[str, Any], k: str) -> str:
            lo_hi = r.get(f"{k}_ci")
            return f"{r[k]:.2f}" + (f" [{lo_hi[0]:.2f}, {lo_hi[1]:.2f}]" if lo_hi else "")

        for r in analysis["faithfulness_probe"]:
            ref = r.get("follows_reasoning_if_random_other_label")
            ref = ref if isinstance(ref, float) and ref == ref else None  # pandas turns None into NaN
            out.append(
                f"| {r['condition']} | {r['n']} | {ci(r, 'follows_reasoning')} | {ci(r, 'follows_text')} | "
                f"{ci(r, 'accuracy')} | {f'{ref:.2f}' if ref else '—'} |"
            )
    st = metrics.get("stage_seconds", {})
    if st:
        out += [
            "",
            "### Time per stage (wall time each artifact took, 2 CPU cores)",
            "",
            "| stage | time |",
            "|---|---|",
        ]
        out += [f"| {k} | {_fmt_s(v)} |" for k, v in st.items() if k != "evaluate_metrics_only"]
    runner = runner or (bench or {}).get("runner_last_invocation_seconds", {})
    if runner:
        peak = peak_rss or {}
        out += [
            "",
            f"Wall clock of the last `make study` per step (`results/{exp}/stage_seconds.json`; a step that reused "
            "its artifact shows loading time only) and each step's own peak memory (`peak_rss_gib.json`):",
            "",
            "| step | wall clock | peak memory |",
            "|---|---|---|",
        ]
        out += [
            f"| {k} | {_fmt_s(v)} | {f'{peak[k]:.2f} GiB' if k in peak else ''} |" for k, v in runner.items()
        ]
    if bench:
        out += [
            "",
            f"### Performance (`results/{exp}/bench.json`, measured at code `{bench.get('code_version', '?')}`; "
            "its study time and peak memory are those of the study before that code)",
            "",
            "| figure | value |",
            "|---|---|",
        ]
        for k in (
            "matmul_gflops",
            "train_tokens_per_s",
            "train_speedup_vs_trl_default",
            "train_speedup_vs_trl_fp32",
            "train_fraction_of_compute_limit",
            "augment_tokens_per_s",
            "augment_batch1_tokens_per_s",
            "augment_speedup_vs_batch1",
            "augment_speedup_vs_batched_generate",
            "augment_batched_generate_tokens_per_s",
            "ct2_float32_tokens_per_s",
            "ct2_float32_same_text",
            "ct2_int8_tokens_per_s",
            "ct2_int8_same_text",
            "augment_study_tokens_per_s",
            "decode_fraction_of_compute_limit",
            "decode_phase_fraction_of_compute_limit",
            "qa_predict_examples_per_s",
            "qra_generate_examples_per_s",
            "study_minutes",
            "peak_rss_gib",
        ):
            v = bench.get(k)
            out.append(f"| {k} | {v:.3g} |" if isinstance(v, (int, float)) else f"| {k} | {v} |")
    return "\n".join(out)


def ablation_section(summary: dict[str, Any], arms: dict[str, dict[str, Any]]) -> str:
    """The README's ablation section from results/ablations/<study>/ (finished arms only; planned ones listed)."""
    study = summary["study"]
    out = [
        f"## Ablations (`ablations/{study}.yaml`)",
        "",
        f"Generated by `python -m reasoning_infused report --ablation ablations/{study}.yaml --readme README.md` from "
        f"`results/ablations/{study}/` (code `{summary['code_version']}`, {summary['written_at']}). Differences are "
        "second minus first in accuracy points on the full evaluation set, each seed with its paired 95% bootstrap "
        "interval and McNemar counts (only first right / only second right); over seeds, mean ± SD, the "
        "t-interval, and the seeds × rows bootstrap interval (seeds and evaluation rows resampled together: "
        "the nonparametric counterpart of a mixed model with seed and item effects).",
        "",
    ]
    if any(not r.get("partial") for r in arms.values()):
        out += [
            "**The factors at a glance** (test set, accuracy points; the gap is the arm's variant minus its matched "
            "Q→A control; the shift is how much the arm moves that gap against arm `seeds`, or the arm named):",
            "",
            *factor_table(arms, references=summary.get("references")),
            "",
            factor_reading(arms, references=summary.get("references")),
            "",
        ]
        if summary.get("verdicts"):
            out += [verdicts_at_a_glance(summary["verdicts"]), ""]
    curve = summary.get("training_length", [])
    if len(curve) > 1:
        out += [
            f"**Training length** (the arms that change only the number of training examples; figure "
            f"`figures/ablations/{study}_training_length.png`):",
            "",
            *training_length_table(curve),
            "",
            finding_training_length(curve),
            "",
        ]
    for name, r in arms.items():
        head = f"### Arm `{name}`"
        if r.get("partial"):
            head += (
                f" — interim: seeds {', '.join(map(str, r['seeds_done']))} of the declared "
                f"{', '.join(map(str, r['seeds_declared']))} (not the arm's result; no verdict)"
            )
        out += [
            head,
            "",
            f"- **Hypothesis**: {r['hypothesis'].strip()}",
            f"- **Would support / refute**: {r['outcome'].strip()}",
            *([] if r.get("partial") else verdict_lines(summary.get("verdicts", {}).get(name, []))),
            "",
        ]
        out += arm_table(r)
        out += ["", "`*`: the Q→RA decoding that validation selected for that seed.", ""]
    if summary.get("stale"):
        out.append(
            "Not reported (stored results no longer match the study's declaration or settings): "
            + "; ".join(f"`{k}` ({v})" for k, v in summary["stale"].items())
            + "."
        )
    if summary.get("not_run"):
        out.append("Declared, not run yet: " + ", ".join(f"`{x}`" for x in summary["not_run"]) + ".")
    if summary.get("planned"):
        out.append(
            "Declared, waiting for a feature: "
            + "; ".join(f"`{p['name']}` (needs {p['needs']})" for p in summary["planned"])
            + "."
        )
    return "\n".join(out)


def training_length_table(curve: list[dict[str, Any]]) -> list[str]:
    """The training-length curve (summary.json's `training_length`) as markdown rows: test accuracy of Q->A and
    Q->RA (decoding chosen on validation), mean over seeds, and the gap with its t-interval (points)."""
    out = [
        "| arm | training examples | optimizer steps | seeds | Q→A | Q→RA | gap: mean [t-interval] |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in curve:
        g = p["gap"]
        gap = f"{g['mean'] * 100:+.1f}" + (_points_interval(g["ci"]) if g["seeds"] > 1 else "")
        out.append(
            f"| `{p['arm']}` | {p['examples']:,} | {p['optimizer_steps']} | {len(p['seeds'])} | "
            f"{_pct(fmean(p['qa_accuracy']))} | {_pct(fmean(p['qra_accuracy']))} | {gap} |"
        )
    return out


def _gap_direction(before: float, after: float) -> str:
    """How a (negative or positive) gap changes in size between two training lengths."""
    return "narrows" if abs(after) < abs(before) else "widens" if abs(after) > abs(before) else "stays"


def finding_training_length(curve: list[dict[str, Any]]) -> str:
    """One sentence on how both classifiers and their gap change along the curve: the two ends for the
    classifiers, every point for the gap, and each change of direction (a curve that turns is not summarised
    by its ends)."""
    if len(curve) < 2:
        return "One training length measured so far: no curve yet."
    first, last = curve[0], curve[-1]
    qa = fmean(last["qa_accuracy"]) - fmean(first["qa_accuracy"])
    qra = fmean(last["qra_accuracy"]) - fmean(first["qra_accuracy"])
    gaps = [p["gap"]["mean"] for p in curve]
    directions = [_gap_direction(a, b) for a, b in pairwise(gaps)]
    runs = [d for i, d in enumerate(directions) if i == 0 or d != directions[i - 1]]
    if len(runs) == 1:
        how = runs[0] + (" at every step" if len(directions) > 1 else "")
    else:
        how = ", then ".join(runs)
    chain = " → ".join(
        f"{p['gap']['mean'] * 100:+.1f}{_points_interval(p['gap']['ci'])} at {p['optimizer_steps']} steps"
        for p in curve
    )
    return (
        f"From {first['examples']:,} to {last['examples']:,} training examples ({first['optimizer_steps']} to "
        f"{last['optimizer_steps']} optimizer steps), Q→A moves {qa * 100:+.1f} points on test and Q→RA "
        f"{qra * 100:+.1f} (means over seeds), and the gap {how}: {chain}."
    )


def verdict_lines(verdicts: list[dict[str, Any]]) -> list[str]:
    """One arm's verdicts (from summary.json or `ablate.arm_verdicts`) as markdown list items."""
    out = []
    for v in verdicts:
        claim = "" if v["claim"] == "the declared outcome" else f" ({v['claim']})"
        out.append(
            f"- **Verdict{claim}**, checked by the arm's rule in the YAML: **{v['verdict']}** — "
            + "; ".join(v["because"])
        )
    return out


def verdicts_at_a_glance(verdicts: dict[str, list[dict[str, Any]]]) -> str:
    """One sentence: each finished arm's verdict(s)."""
    parts = []
    for name, vs in verdicts.items():
        words = [
            f"{v['verdict']}" + ("" if v["claim"] == "the declared outcome" else f" ({v['claim']})")
            for v in vs
        ]
        parts.append(f"`{name}` {', '.join(words)}")
    return (
        "**Verdicts** (each arm's declared outcome, checked by the rule written beside it in the YAML): "
        + "; ".join(parts)
        + "."
    )


def arm_table(r: dict[str, Any]) -> list[str]:
    """Markdown table rows of one arm's result: per comparison, per seed Δ with paired CI, mean ± SD, t-interval."""
    out = [
        "| set | difference | per seed: Δ [paired CI] (only first / only second) | mean ± SD | t-interval | "
        "seeds × rows interval | seeds for 3 points |",
        "|---|---|---|---|---|---|---|",
    ]
    for sm in r["summary"].values():
        per = []
        for seed_row in r["per_seed"]:
            c = next(
                x
                for x in seed_row["sets"][sm["set"]]["comparisons"]
                if x["second"] == sm["second"] and x["first"] == sm["first"]
            )
            sel = "*" if c.get("second_is_selected_decoding") else ""
            lo, hi = c["accuracy_difference_ci"]
            per.append(
                f"s{seed_row['seed']}{sel}: {c['accuracy_difference'] * 100:+.1f} [{lo * 100:+.1f}, {hi * 100:+.1f}] "
                f"({c['only_first_correct']}/{c['only_second_correct']})"
            )
        a = sm["accuracy_difference"]
        sd = f"{a['sd'] * 100:.1f}" if a["sd"] == a["sd"] else "–"
        ci = f"[{a['ci'][0] * 100:+.1f}, {a['ci'][1] * 100:+.1f}]" if a["seeds"] > 1 else "–"
        need = sm.get("seeds_needed_for_3_points")
        sr = sm.get("accuracy_difference_seeds_x_rows")
        crossed = f"[{sr['ci'][0] * 100:+.1f}, {sr['ci'][1] * 100:+.1f}]" if sr else "–"
        out.append(
            f"| {sm['set']} | {plain_name(sm['second'])} − {plain_name(sm['first'])} | {'; '.join(per)} | "
            f"{a['mean'] * 100:+.1f} ± {sd} | {ci} | {crossed} | {need if need else '–'} |"
        )
    return out


def update_readme(readme_path, section: str, marker: str = "RESULTS") -> None:
    """Replace the text between the <!-- MARKER:START --> / <!-- MARKER:END --> lines of the README."""
    from pathlib import Path

    path = Path(readme_path)
    text = path.read_text()
    start, end = f"<!-- {marker}:START -->", f"<!-- {marker}:END -->"
    if start not in text or end not in text:
        raise ValueError(f"{path}: missing the {start} / {end} markers")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    path.write_text(f"{head}{start}\n{section}\n{end}{tail}")


# --- findings as sentences, computed from the results they describe (the notebooks render them as Markdown) --------


SHORT_NAMES = {
    "qa": "Q→A",
    "qra": "Q→RA (free generation)",
    "qra_constrained": "Q→RA (labels scored after its reasoning)",
    "qra_selected": "Q→RA (decoding chosen on validation)",
    "qar": "Q→AR",
    "multitask": "multi-task",
}


def _short(key: str) -> str:
    return SHORT_NAMES.get(key, plain_name(key))


def _pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def finding_training_tokens(train_meta: dict[str, dict[str, Any]]) -> str:
    """How much more Q->RA / Q->AR train on than Q->A (tokens per epoch, all and supervised)."""
    if "qa" not in train_meta:
        return ""
    qa = train_meta["qa"]
    parts = []
    for v in ("qra", "qar"):
        if v in train_meta:
            m = train_meta[v]
            parts.append(
                f"{ {'qra': 'Q→RA', 'qar': 'Q→AR'}[v] } trains on {m['tokens_per_epoch']:,} tokens per epoch against Q→A's "
                f"{qa['tokens_per_epoch']:,} ({m['tokens_per_epoch'] / qa['tokens_per_epoch']:.2f}×); its supervised "
                f"(target) tokens are {m['supervised_tokens_per_epoch']:,} against "
                f"{qa['supervised_tokens_per_epoch']:,} ({m['supervised_tokens_per_epoch'] / max(1, qa['supervised_tokens_per_epoch']):.1f}×)"
            )
    return (
        "; ".join(parts) + ", in the same number of optimizer steps: the reasoning is part of the target."
        if parts
        else ""
    )


def finding_primary(metrics: dict[str, Any]) -> str:
    """The declared primary comparison in one sentence (paired interval, McNemar counts and p)."""
    p = metrics.get("primary")
    if not p:
        return ""
    lo, hi = p["accuracy_difference_ci"]
    flo, fhi = p["macro_f1_difference_ci"]
    return (
        f"Primary comparison ({p['set']}, n = {p['n']:,}): {_short(p['second'])} minus {_short(p['first'])} = "
        f"{p['accuracy_difference'] * 100:+.1f} points of accuracy, paired 95% interval "
        f"[{lo * 100:+.1f}, {hi * 100:+.1f}]; macro-F1 {p['macro_f1_difference'] * 100:+.1f} "
        f"[{flo * 100:+.1f}, {fhi * 100:+.1f}]. Only {_short(p['first'])} right on {p['only_first_correct']:,} rows, "
        f"only {_short(p['second'])} right on {p['only_second_correct']:,} (exact McNemar p = {p['p_value']:.2g})."
    )


def finding_disagreements(directions: pd.Series, a: str = "qa", b: str = "qra") -> str:
    """From analysis.disagreements(...).direction: who is right where two classifiers disagree."""
    counts = directions.value_counts()
    only_a, only_b = int(counts.get(f"only {a} right", 0)), int(counts.get(f"only {b} right", 0))
    both = int(counts.get("both wrong", 0))
    if not len(directions):
        return f"{_short(a)} and {_short(b)} never disagree."
    return (
        f"They disagree on {len(directions):,} rows: only {_short(a)} is right on {only_a:,}, only {_short(b)} on "
        f"{only_b:,}, neither on {both:,}. The first two counts are what the McNemar test in notebook 04 weighs."
    )


def finding_per_class_gain(gain: pd.DataFrame) -> str:
    """From analysis.per_class_gain: the emotions with the largest F1 loss and gain."""
    g = gain.sort_values("f1_gain")
    worst, best = g.iloc[0], g.iloc[-1]
    a, b = [c.removesuffix("_f1") for c in gain.columns if c.endswith("_f1")][:2]
    if best.f1_gain <= 0:
        return (
            f"{_short(b)} has a lower F1 than {_short(a)} for every emotion; most for {worst.label} "
            f"({worst.f1_gain * 100:+.1f} points, support {int(worst.support)}), least for {best.label} "
            f"({best.f1_gain * 100:+.1f})."
        )
    return (
        f"{_short(b)}'s F1 against {_short(a)} falls most for {worst.label} ({worst.f1_gain * 100:+.1f} points, support "
        f"{int(worst.support)}) and rises most for {best.label} ({best.f1_gain * 100:+.1f}, support "
        f"{int(best.support)})."
    )


def finding_confusion_shift(shift: pd.DataFrame) -> str:
    """From analysis.confusion_shift: the off-diagonal confusions that grow and shrink most."""
    off = shift.copy()
    for i in range(min(off.shape)):
        off.iat[i, i] = 0.0
    stacked = off.stack()
    grow, shrink = stacked.idxmax(), stacked.idxmin()
    return (
        f"The confusion that grows most with Q→RA is {grow[0]} → {grow[1].removeprefix('pred ')} "
        f"({stacked[grow] * 100:+.1f} points of that gold class's rows); the one that shrinks most is {shrink[0]} → "
        f"{shrink[1].removeprefix('pred ')} ({stacked[shrink] * 100:+.1f})."
    )


def finding_reasoning_support(rows: list[dict[str, Any]]) -> str:
    """From analysis.json's reasoning_support: accuracy by what the reasoning names (groups of >= 20 rows)."""
    groups = [r for r in rows if r["n"] >= 20 and r["category"] != "unparsed output"]
    if not groups:
        return ""
    best = max(groups, key=lambda r: r["accuracy"])
    worst = min(groups, key=lambda r: r["accuracy"])
    largest = max(groups, key=lambda r: r["n"])
    return (
        f"Among groups of at least 20 rows, Q→RA is most accurate where the reasoning {best['category']} "
        f"({best['accuracy']:.2f}, n = {best['n']:,}) and least where it {worst['category']} "
        f'({worst["accuracy"]:.2f}, n = {worst["n"]:,}); the largest group is "{largest["category"]}" '
        f"(n = {largest['n']:,}, accuracy {largest['accuracy']:.2f})."
    )


def finding_faithfulness(rows: list[dict[str, Any]]) -> str:
    """From analysis.json's faithfulness_probe: how often the label follows a foreign reasoning, against chance."""
    chance_key = "follows_reasoning_if_random_other_label"  # NaN for the control (its own reasoning)
    foreign = [
        r for r in rows if isinstance(r.get(chance_key), (int, float)) and not math.isnan(r[chance_key])
    ]
    if not foreign:
        return ""
    parts = []
    for r in foreign:
        lo, hi = r["follows_reasoning_ci"]
        chance = r[chance_key]
        verdict = "above" if lo > chance else "not above"
        parts.append(
            f"with {r['condition']}, the label follows the reasoning in {_pct(r['follows_reasoning'])} of {r['n']} rows "
            f"(95% interval {_pct(lo)}–{_pct(hi)}; {verdict} the {_pct(chance)} of a random other label)"
        )
    return "In the probe, " + "; ".join(parts) + "."


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


def finding_class_balance(counts: dict[str, int]) -> str:
    """From a split's per-class counts: how imbalanced the classes are."""
    total = sum(counts.values())
    top2 = sorted(counts, key=counts.get, reverse=True)[:2]
    rarest = min(counts, key=counts.get)
    return (
        f"The classes are imbalanced: {top2[0]} and {top2[1]} are {_pct((counts[top2[0]] + counts[top2[1]]) / total)} "
        f"of the {total:,} rows, {rarest} only {_pct(counts[rarest] / total)}: macro-F1 matters as much as accuracy."
    )


def finding_text_lengths(lengths: list[int]) -> str:
    """From token lengths of the texts: how long a text is next to the prompt template."""
    s = pd.Series(lengths)
    return (
        f"Texts are short: median {s.median():.0f} tokens, 90% at most {s.quantile(0.9):.0f}, longest {s.max():,}; "
        "a classifier prompt is dominated by its template, which is why the prompts are kept short."
    )


def finding_duplicates(report: dict[str, int]) -> str:
    """From data.duplicate_report: repeated texts and conflicting labels."""
    return (
        f"{report.get('train_duplicated_texts', 0):,} training texts occur more than once, "
        f"{report.get('train_duplicates_with_conflicting_labels', 0):,} of them with different labels; "
        f"{report.get('train&test_shared_texts', 0):,} test texts also occur in train: notebook 05 looks at how the "
        "classifiers behave on them."
    )


def finding_heldout_loss(before: float, after: float) -> str:
    """The generator's held-out loss per reasoning token before and after fine-tuning."""
    change = "falls" if after < before else "rises"
    return (
        f"The held-out loss per reasoning token {change} from {before:.3f} (base model) to {after:.3f} (fine-tuned "
        f"generator), {(after - before) / before * 100:+.1f}%, on triples the generator never saw."
    )


def _signed(values: list[float], scale: float = 100, fmt: str = "+.1f") -> str:
    return ", ".join(f"{v * scale:{fmt}}".replace("-", "−") for v in values)


def finding_ood_arm(name: str, r: dict[str, Any], second: str = "qra_selected", first: str = "qa") -> str:
    """Per out-of-domain set of an arm: the per-seed differences of `second` − `first` with mean and t-interval,
    where the net rows come from (the gold class that contributes most against all the others), and, for a set
    with fewer classes, the label-space sensitivity averaged over seeds. The numbers are the arm file's."""
    seeds = [row["seed"] for row in r["per_seed"]]
    state = "interim, " if r.get("partial") else ""
    parts = []
    for s in [x for x in r["per_seed"][0]["sets"] if x.startswith("ood_")]:
        comps = [
            next(c for c in row["sets"][s]["comparisons"] if c["second"] == second and c["first"] == first)
            for row in r["per_seed"]
        ]
        n = comps[0]["n"]
        summ = r["summary"].get(f"{s}:{second}-{first}", {}).get("accuracy_difference", {})
        text = (
            f"{s.removeprefix('ood_')} ({n:,} rows): {_short(second)} − {_short(first)} = "
            f"{_signed([c['accuracy_difference'] for c in comps])} points for seeds {', '.join(map(str, seeds))}"
        )
        if summ.get("seeds", 0) > 1:
            lo, hi = summ["ci"]
            text += f", mean {_signed([summ['mean']])}, t-interval [{_signed([lo])}, {_signed([hi])}]"
        per_class = [c.get("per_gold_class") for c in comps]
        if all(per_class):
            total = [sum(v["net_rows_second_minus_first"] for v in pc.values()) for pc in per_class]
            top = max(
                per_class[0], key=lambda k: abs(sum(pc[k]["net_rows_second_minus_first"] for pc in per_class))
            )
            top_rows = [pc[top]["net_rows_second_minus_first"] for pc in per_class]
            text += (
                f"; net rows {_signed(total, 1, '+d')}, of which gold *{top}* contributes {_signed(top_rows, 1, '+d')} "
                f"and the other classes together {_signed([t - k for t, k in zip(total, top_rows, strict=True)], 1, '+d')}"
            )
        sens = [row["sets"][s].get("label_space_sensitivity") for row in r["per_seed"]]
        if all(sens):
            moves = []
            for c in [c for c in (first, "qra_constrained") if c in sens[0]]:
                before = sum(x[c]["accuracy_as_scored"] for x in sens) / len(sens)
                after = sum(x[c]["accuracy_within_label_space"] for x in sens) / len(sens)
                moves.append(f"{_short(c)} from {before:.3f} to {after:.3f}")
            text += (
                "; picking among the set's own classes instead moves "
                + " and ".join(moves)
                + " (mean over seeds)"
            )
        parts.append(text)
    return f"Arm `{name}` ({state}{len(seeds)} seeds): " + "; ".join(parts) + "."


def _interval_reading(ci: list[float]) -> str:
    if ci[1] < 0:
        return "lies below 0"
    if ci[0] > 0:
        return "lies above 0"
    return "includes 0"


GAP_COMPARISONS = (
    "qra_selected",
    "qar",
    "multitask",
)  # the gaps each arm is read by, against its Q->A control


def factor_rows(
    arms: dict[str, dict[str, Any]], reference: str = "seeds", references: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Per finished arm and test comparison (Q->RA with the decoding validation chose, Q->AR, multi-task, each
    minus the arm's matched Q->A): what the arm changes, the gap over seeds (mean, t-interval) and the shift
    against the reference arm's gap for the same comparison (Welch's t-interval over the two arms' seeds; None
    where the reference lacks the comparison). `references` names another reference arm per comparison (the
    study's `references` block, for a comparison the default reference does not train)."""
    from .metrics import welch_difference

    rows = []
    for name, r in arms.items():
        if r.get("partial"):
            continue
        decl = r.get("declaration", {})
        changes = ", ".join(f"`{o}`" for o in decl.get("overrides", [])) or "—"
        if decl.get("control_overrides"):
            changes += "; control: " + ", ".join(f"`{o}`" for o in decl["control_overrides"])
        for key, sm in r["summary"].items():
            if sm["set"] != "test" or sm["second"] not in GAP_COMPARISONS:
                continue
            against = (references or {}).get(sm["second"], reference)
            ref = arms.get(against, {})
            ref_models = {x["seed"]: x.get("artifact_keys") for x in ref.get("per_seed", [])}
            # an arm that evaluates the reference's own trained models (it changes only the evaluation) has, on
            # test, the reference's gap by construction: listed, never read as a factor
            same_models = name != against and all(
                x.get("artifact_keys") and x["artifact_keys"] == ref_models.get(x["seed"])
                for x in r["per_seed"]
            )
            shift = None
            if name != against and key in ref.get("summary", {}) and not same_models:
                shift = welch_difference(
                    ref["summary"][key]["accuracy_difference_per_seed"], sm["accuracy_difference_per_seed"]
                )
            rows.append(
                {
                    "arm": name,
                    "changes": changes,
                    "comparison": f"{_short(sm['second'])} − Q→A",
                    "gap": sm["accuracy_difference"],
                    "shift": shift,
                    "against": against,
                    "is_reference": name == against,
                    "same_models_as_reference": same_models,
                }
            )
    return rows


def _points_interval(ci: list[float]) -> str:
    return "" if ci[0] != ci[0] else f" [{ci[0] * 100:+.1f}, {ci[1] * 100:+.1f}]"  # nothing when nan


def factor_table(
    arms: dict[str, dict[str, Any]], reference: str = "seeds", references: dict[str, str] | None = None
) -> list[str]:
    """`factor_rows` as a markdown table (accuracy points); a shift read against another arm than `reference`
    names it."""
    out = [
        f"| arm | changes | comparison | seeds | gap: mean [t-interval] | shift against `{reference}` [Welch 95%] |",
        "|---|---|---|---|---|---|",
    ]
    for row in factor_rows(arms, reference, references):
        g = row["gap"]
        gap = f"{g['mean'] * 100:+.1f}" + (_points_interval(g["ci"]) if g["seeds"] > 1 else "")
        if row["is_reference"]:
            shift = "(reference)" if row["against"] == reference else f"(reference for {row['comparison']})"
        elif row["same_models_as_reference"]:
            shift = f"the same trained models as `{row['against']}` (the arm changes only the evaluation)"
        elif row["shift"] is None:
            shift = "—"
        else:
            shift = f"{row['shift']['difference'] * 100:+.1f}" + _points_interval(row["shift"]["ci"])
            if row["against"] != reference:
                shift += f" against `{row['against']}`"
        out.append(
            f"| `{row['arm']}` | {row['changes']} | {row['comparison']} | {g['seeds']} | {gap} | {shift} |"
        )
    return out


def factor_reading(
    arms: dict[str, dict[str, Any]], reference: str = "seeds", references: dict[str, str] | None = None
) -> str:
    """One sentence from `factor_rows`: which arms move the gap (shift interval excluding 0), by how much."""
    rows = [
        r
        for r in factor_rows(arms, reference, references)
        if r["shift"] and r["shift"]["ci"][0] == r["shift"]["ci"][0]
    ]
    if not rows:
        return f"No finished arm has a shift against `{reference}` with an interval yet."
    moved = [r for r in rows if r["shift"]["ci"][0] > 0 or r["shift"]["ci"][1] < 0]
    still = [r for r in rows if r not in moved]

    def name(r):
        against = "" if r["against"] == reference else f" against `{r['against']}`"
        return (
            f"`{r['arm']}` ({r['comparison']}: {r['shift']['difference'] * 100:+.1f}"
            f"{_points_interval(r['shift']['ci'])}{against})"
        )

    text = (
        "Against arm `"
        + reference
        + "`"
        + ("" if not references else " (or the arm named)")
        + ", "
        + (
            ("the gap moves in " + "; ".join(map(name, moved)))
            if moved
            else "no arm moves the gap beyond noise"
        )
    )
    if still:
        text += "; within noise: " + "; ".join(map(name, still))
    return text + "."


def arm_story(
    name: str,
    r: dict[str, Any],
    reference: dict[str, Any] | None = None,
    verdicts: list[dict[str, Any]] | None = None,
    other_references: dict[str, tuple[str, dict[str, Any]]] | None = None,
) -> str:
    """One arm as notebook 06 tells it: hypothesis, the preregistered outcome, the result table, the result in
    words (each selected-decoding comparison's mean over seeds, where its t-interval lies, and the shift against
    the `seeds` arm when given, or against the arm `other_references` names for that comparison: comparison ->
    (arm name, arm file)), and the verdicts of its declared rule (finished arms only)."""
    out = [
        f"### Arm `{name}`" + (" (interim: not all declared seeds)" if r.get("partial") else ""),
        "",
        f"**Hypothesis.** {r['hypothesis'].strip()}",
        "",
        f"**Declared before running.** {r['outcome'].strip()}",
        "",
        *arm_table(r),
        "",
    ]
    words = []
    for key, sm in r["summary"].items():
        if sm["second"] not in ("qra_selected", "qar", "multitask") or sm["accuracy_difference"]["seeds"] < 2:
            continue
        a = sm["accuracy_difference"]
        text = (
            f"{sm['set']}, {_short(sm['second'])} − Q→A: mean {a['mean'] * 100:+.1f} points over {a['seeds']} seeds, "
            f"t-interval [{a['ci'][0] * 100:+.1f}, {a['ci'][1] * 100:+.1f}] {_interval_reading(a['ci'])}"
        )
        sr = sm.get("accuracy_difference_seeds_x_rows")
        if sr:
            text += (
                f" (seeds × rows interval [{sr['ci'][0] * 100:+.1f}, {sr['ci'][1] * 100:+.1f}] "
                f"{_interval_reading(sr['ci'])})"
            )
        ref_name, ref_arm = (other_references or {}).get(sm["second"], ("seeds", reference))
        ref = (ref_arm or {}).get("summary", {}).get(key)
        # the reference arm's own story (by name: the notebook passes a copy of its file) has no shift
        if ref and ref_name != name and ref_arm is not r and ref["accuracy_difference"]["seeds"] >= 2:
            shift = a["mean"] - ref["accuracy_difference"]["mean"]
            text += (
                f"; against the {ref_name} arm ({ref['accuracy_difference']['mean'] * 100:+.1f}) "
                f"a shift of {shift * 100:+.1f}"
            )
        words.append(text)
    if words:
        out += ["**Result.** " + "; ".join(words) + ".", ""]
    if verdicts and not r.get("partial"):
        out += [*verdict_lines(verdicts), ""]
    return "\n".join(out)
