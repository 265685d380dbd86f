"""Findings as sentences, computed from the results they describe (the notebooks render them as Markdown):
every number in them is printed by this code."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from reasoning_infused.analysis.tables import percent, short_name


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
        f"Primary comparison ({p['set']}, n = {p['n']:,}): {short_name(p['second'])} minus {short_name(p['first'])} = "
        f"{p['accuracy_difference'] * 100:+.1f} points of accuracy, paired 95% interval "
        f"[{lo * 100:+.1f}, {hi * 100:+.1f}]; macro-F1 {p['macro_f1_difference'] * 100:+.1f} "
        f"[{flo * 100:+.1f}, {fhi * 100:+.1f}]. Only {short_name(p['first'])} right on {p['only_first_correct']:,} rows, "
        f"only {short_name(p['second'])} right on {p['only_second_correct']:,} (exact McNemar p = {p['p_value']:.2g})."
    )


def finding_disagreements(directions: pd.Series, a: str = "qa", b: str = "qra") -> str:
    """From analysis.disagreements(...).direction: who is right where two classifiers disagree."""
    counts = directions.value_counts()
    only_a, only_b = int(counts.get(f"only {a} right", 0)), int(counts.get(f"only {b} right", 0))
    both = int(counts.get("both wrong", 0))
    if not len(directions):
        return f"{short_name(a)} and {short_name(b)} never disagree."
    return (
        f"They disagree on {len(directions):,} rows: only {short_name(a)} is right on {only_a:,}, only {short_name(b)} on "
        f"{only_b:,}, neither on {both:,}. The first two counts are what the McNemar test in notebook 04 weighs."
    )


def finding_per_class_gain(gain: pd.DataFrame) -> str:
    """From analysis.per_class_gain: the emotions with the largest F1 loss and gain."""
    g = gain.sort_values("f1_gain")
    worst, best = g.iloc[0], g.iloc[-1]
    a, b = [c.removesuffix("_f1") for c in gain.columns if c.endswith("_f1")][:2]
    if best.f1_gain <= 0:
        return (
            f"{short_name(b)} has a lower F1 than {short_name(a)} for every emotion; most for {worst.label} "
            f"({worst.f1_gain * 100:+.1f} points, support {int(worst.support)}), least for {best.label} "
            f"({best.f1_gain * 100:+.1f})."
        )
    return (
        f"{short_name(b)}'s F1 against {short_name(a)} falls most for {worst.label} ({worst.f1_gain * 100:+.1f} points, support "
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
            f"with {r['condition']}, the label follows the reasoning in {percent(r['follows_reasoning'])} of {r['n']} rows "
            f"(95% interval {percent(lo)}–{percent(hi)}; {verdict} the {percent(chance)} of a random other label)"
        )
    return "In the probe, " + "; ".join(parts) + "."


def finding_class_balance(counts: dict[str, int]) -> str:
    """From a split's per-class counts: how imbalanced the classes are."""
    total = sum(counts.values())
    top2 = sorted(counts, key=counts.get, reverse=True)[:2]
    rarest = min(counts, key=counts.get)
    return (
        f"The classes are imbalanced: {top2[0]} and {top2[1]} are {percent((counts[top2[0]] + counts[top2[1]]) / total)} "
        f"of the {total:,} rows, {rarest} only {percent(counts[rarest] / total)}: macro-F1 matters as much as accuracy."
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
