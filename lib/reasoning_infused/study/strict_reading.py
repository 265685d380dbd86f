"""The reviewer's reading of an ablation study (issue 37): every claim as declared and under stricter rules
(seeds x rows intervals, equivalence tests), every gap on the log-odds scale, every shift with a Holm-adjusted p."""

from __future__ import annotations

from typing import Any

from reasoning_infused.analysis.tables import short_name

# decodings read against another decoding of the same arm's models (self-consistency against the greedy one)
WITHIN_ARM = {"qra_sc_vote": "qra_selected", "qra_sc_logprob": "qra_selected"}

# what a study's own history owes its reader (by study): rules or outcomes written after results existed
DISCLOSURES = {
    "qra_gap": "**Disclosed.** In `qra_gap`, the verdict rules of the first round were written on 2026-11-27 "
    "after several arms had results (the YAML's header names them); the `answer_weighted_loss` outcome sentence was edited after the "
    "`seeds` arm finished (git keeps both versions). Rules are not part of an arm's spec hash; outcomes are, and from "
    "the second round on the runner refuses an outcome edited after results exist. The strict reading below "
    "re-reads every claim the same way, whenever its rule was written.",
    "esnli": "**Disclosed.** `weighted_loss` is read as declared, against its Q→A control trained with the same "
    "weights; on e-SNLI those weights change Q→A itself (entailment, the one two-token label, each of its "
    "tokens weighted half as much as a one-token label), so that control is much weaker than the unweighted Q→A. "
    "Arm `weighted_loss_vs_unweighted_qa` (declared after `weighted_loss`'s seed 0, before any seed of its own) reads the same weighted models against "
    "the unweighted Q→A; `human_weighted_loss_vs_unweighted_qa` does the same for human reasonings.",
}


def _mean_accuracy(r: dict[str, Any], key: str, set_name: str = "test") -> float | None:
    vals = [
        s["sets"][set_name]["classifiers"][key]["accuracy"] for s in r["per_seed"] if set_name in s["sets"]
    ]
    vals = [v for v in vals if v is not None]
    return sum(vals) / len(vals) if vals else None


def _logit(p: float) -> float:
    import math

    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def strict_section(abl: Any, done: dict[str, dict[str, Any]]) -> str:
    """Every claim as declared and under the stricter reading, side by side (and why a verdict changes); every
    gap on the accuracy and log-odds scales; every shift against its reference with a 95% interval and a
    Holm-adjusted p across the study."""
    from reasoning_infused.pipeline.metrics import holm_adjust
    from reasoning_infused.study.ablation_record import with_row_correctness
    from reasoning_infused.study.verdicts import (
        arm_gap,
        check_rule,
        shares_control,
        shift_interval,
        shift_p_value,
    )

    done = with_row_correctness(abl, done)
    out = [
        "## The reviewer's reading: stricter verdicts",
        "",
        *([DISCLOSURES[abl.study], ""] if abl.study in DISCLOSURES else []),
        "Strict reading: every check reads the seeds × rows 95% interval instead of the t-interval over seeds; "
        '"within d" needs the 90% interval of the shift inside ±d (an equivalence test); "intervals apart" needs the '
        "shift's 95% interval to exclude 0. A shift between two arms (or two decodings of one arm) that share their Q→A "
        "control models, seed by seed, and have per-row records is read row-paired (‡ below: the controls cancel, so "
        "it is the seeds × rows bootstrap of the two variants on the same rows, with exact McNemar per seed); any "
        "other shift treats the two gaps as independent (conservative where controls correlate).",
        "",
        "| arm | claim | as declared | strict | |",
        "|---|---|---|---|---|",
    ]
    changed = []
    for a in abl.arms:
        if a.name not in done or not a.verdict:
            continue
        for rule in a.verdict_rules():
            declared, strict = check_rule(rule, a.name, done), check_rule(rule, a.name, done, strict=True)
            flag = "changed" if declared.verdict != strict.verdict else ""
            out.append(
                f"| `{a.name}` | {rule.claim or 'the declared outcome'} | {declared.verdict} | {strict.verdict} | {flag} |"
            )
            if flag:
                changed.append(
                    f"- `{a.name}` ({rule.claim or 'the declared outcome'}): " + "; ".join(strict.because)
                )
    if changed:
        out += ["", "Why a verdict changes under the strict reading:", "", *changed]
    rows, paired = [], []
    for a in abl.arms:
        r = done.get(a.name)
        if r is None:
            continue
        for sm in r["summary"].values():
            comp = sm["second"]
            if sm["set"] != "test" or comp not in ("qra_selected", "qar", "multitask", *WITHIN_ARM):
                continue
            gap = arm_gap(r, "test", comp, "seeds_x_rows")
            if gap is None:
                continue
            logodds = _logodds_gap(r, comp)
            if comp in WITHIN_ARM:  # read against another decoding of the same models
                ref_name, ref, ref_comp = f"its {short_name(WITHIN_ARM[comp])}", r, WITHIN_ARM[comp]
            else:
                ref_arm, ref_comp = abl.references.get(comp, "seeds"), comp
                ref = done.get(ref_arm) if ref_arm != a.name else None
                ref_name = f"`{ref_arm}`"
            ref_gap = arm_gap(ref, "test", ref_comp, "seeds_x_rows") if ref is not None else None
            shift = None
            if ref_gap is not None:
                lo, hi = shift_interval(gap, ref_gap)
                together = shares_control(gap, ref_gap)
                shift_logodds = logodds - _logodds_gap(ref, ref_comp)
                shift = (
                    gap.mean - ref_gap.mean,
                    lo,
                    hi,
                    shift_p_value(gap, ref_gap, (lo, hi)),
                    ref_name,
                    together,
                    shift_logodds,
                )
                if together:
                    paired.append(
                        f"- ‡ `{a.name}` against {ref_name}, {short_name(comp)}: "
                        + _mcnemar_seeds(gap, ref_gap)
                    )
            rows.append((a.name, comp, gap, logodds, shift))
    pvals = {f"{n}:{c}": s[3] for n, c, _, _, s in rows if s is not None}
    holm = holm_adjust(pvals) if pvals else {}
    out += [
        "",
        "Every gap (test, points, seeds × rows 95% interval) on the log-odds scale too (the difference of the mean "
        "accuracies' logits: near Q→A's ceiling a gap in points compresses), and every shift against its reference "
        "with its 95% interval and Holm-adjusted p across the study's shifts, in points and in log-odds:",
        "",
        "| arm | comparison | gap [95% seeds × rows] | log-odds | shift against | shift [95%] | shift, log-odds "
        "| p | Holm p |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    flips = []
    for name, comp, gap, logodds, shift in rows:
        g = f"{gap.mean * 100:+.1f} [{gap.ci[0] * 100:+.1f}, {gap.ci[1] * 100:+.1f}]"
        if shift is None:
            out.append(
                f"| `{name}` | {short_name(comp)} − Q→A | {g} | {logodds:+.2f} | (reference) | | | | |"
            )
            continue
        d, lo, hi, p, ref_name, together, d_logodds = shift
        mark = "‡" if together else ""
        out.append(
            f"| `{name}` | {short_name(comp)} − Q→A | {g} | {logodds:+.2f} | {ref_name} | "
            f"{d * 100:+.1f} [{lo * 100:+.1f}, {hi * 100:+.1f}]{mark} | {d_logodds:+.2f} | {_p(p)} | "
            f"{_p(holm[f'{name}:{comp}'])} |"
        )
        if d * d_logodds < 0:
            flips.append(f"`{name}` ({short_name(comp)}: {d * 100:+.1f} points, {d_logodds:+.2f} log-odds)")
    if flips:
        out += [
            "",
            "**The scale changes the sign** of these shifts (the arm's Q→A sits at another accuracy than its "
            "reference's, and a gap in points compresses near the ceiling): "
            + "; ".join(flips)
            + ". A verdict read in points on them would not hold on the log-odds scale.",
        ]
    if paired:
        out += [
            "",
            "‡ Row-paired shifts (the two share their Q→A models): per seed, the rows only the reference's variant got "
            "right / only this arm's variant got right, and the exact McNemar p:",
            "",
            *paired,
        ]
    return "\n".join(out) + "\n"


def _mcnemar_seeds(gap: Any, ref: Any) -> str:
    """Per seed: exact McNemar of the two variants' correctness on the same rows (reference first)."""
    from reasoning_infused.pipeline.metrics import mcnemar

    parts = []
    for k, (a, b) in enumerate(zip(ref.rows["correct"], gap.rows["correct"], strict=True)):
        # correctness as predictions of the gold "right": mcnemar counts the rows right in one and not the other
        m = mcnemar([True] * len(a), [bool(x) for x in a], [bool(x) for x in b])
        parts.append(f"s{k}: {m['only_first_correct']}/{m['only_second_correct']}, p {_p(m['p_value'])}")
    return "; ".join(parts)


def _logodds_gap(r: dict[str, Any], comp: str) -> float:
    """The gap on the log-odds scale: the logit of the variant's mean test accuracy minus Q->A's."""
    qa, other = _mean_accuracy(r, "qa"), _mean_accuracy(r, comp)
    return _logit(other) - _logit(qa) if qa is not None and other is not None else float("nan")


def _p(p: float) -> str:
    """A p-value in scientific notation where small; below double precision's reach, a bound."""
    return "<1e-15" if p < 1e-15 else f"{p:.2g}"
