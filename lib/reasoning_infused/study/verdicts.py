"""An ablation arm's declared outcome as a rule the runner checks: the verdict (supported, refuted,
inconclusive) comes from the arm files, never typed by hand.

Each arm's `outcome` is a sentence written before it ran; its `verdict` block restates that sentence as checks on
the numbers the arm file holds (the t-interval over seeds of the arm's gap, each seed's paired interval, and the
shift of the gap against another arm). In the study YAML:

    verdict:
      comparisons: [qra_selected]          # the differences checked (variant minus the arm's control); default
      sets: [test]                         # the evaluation sets checked; default
      interval: seeds_x_rows               # which interval the checks read: t (over seeds; default) or
                                           # seeds_x_rows (bootstrap over seeds and test rows)
      supported: [{shift_at_least: 3, disjoint: true}]   # every group holds, on every set and comparison
      refuted: [{shift_within: 2}, {shift_below: 0}]     # some group holds, on some set and comparison

A group is a mapping of checks that all hold; `against` in a group names the arm it is compared with (default
`seeds`). Points are accuracy points (3 = 0.03); `shrinks_*` are fractions of the reference gap. A claim that is
neither supported nor refuted is inconclusive; one whose numbers are not there yet (an arm not run, a comparison
the reference lacks) says what it waits for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# check name -> (needs a reference arm, what it says); values are points unless noted
CHECKS: dict[str, tuple[bool, str]] = {
    "shift_at_least": (True, "shift of the gap against the reference ≥ value"),
    "shift_above": (True, "shift > value"),
    "shift_below": (True, "shift < value"),
    "shift_within": (True, "|shift| ≤ value"),
    "shift_beyond": (True, "|shift| > value"),
    "disjoint": (True, "the two t-intervals do (true) / do not (false) overlap"),
    "interval_above": (True, "the arm's t-interval lies above the reference's (true)"),
    "shrinks_at_least": (True, "shift ≥ value × |reference gap| (value a fraction)"),
    "shrinks_below": (True, "shift < value × |reference gap| (value a fraction)"),
    "means_within": (True, "the arm's and every reference's means lie within value of each other"),
    "upper_at_least": (False, "the gap's t-interval reaches value (includes it or lies above)"),
    "upper_below": (False, "the gap's t-interval lies below value"),
    "lower_above": (False, "the gap's t-interval lies above value"),
    "lower_at_most": (False, "the gap's t-interval reaches value (includes it or lies below)"),
    "every_seed_upper_below": (False, "every seed's paired interval lies below value"),
    "some_seed_upper_at_least": (False, "some seed's paired interval reaches value"),
}
VERDICTS = ("supported", "refuted", "inconclusive", "waiting")
# t: the t-interval over seeds (seed variance only); seeds_x_rows: the bootstrap over seeds and test rows
INTERVALS = ("t", "seeds_x_rows")


class VerdictRuleError(ValueError):
    """A verdict block that cannot be checked; the message names the key."""


@dataclass(frozen=True)
class Group:
    checks: dict[str, Any]
    against: tuple[str, ...] = ("seeds",)
    # another comparison of the same arm to read the shift against (e.g. self-consistency against the greedy
    # decoding, `qra_selected`): the same models, so no other arm is involved
    versus: str = ""


@dataclass(frozen=True)
class Rule:
    supported: tuple[Group, ...]
    refuted: tuple[Group, ...]
    claim: str = ""
    comparisons: tuple[str, ...] = ("qra_selected",)
    sets: tuple[str, ...] = ("test",)
    interval: str = "t"


@dataclass
class Verdict:
    claim: str
    verdict: str  # one of VERDICTS
    because: list[str] = field(default_factory=list)  # the numbers behind it, in words


def parse_rules(raw: Any, where: str) -> list[Rule]:
    """The `verdict` value of one arm (a block or a list of blocks) as rules; VerdictRuleError names the key."""
    blocks = raw if isinstance(raw, list) else [raw]
    rules = []
    for i, block in enumerate(blocks):
        at = f"{where}.verdict" + (f"[{i}]" if isinstance(raw, list) else "")
        if not isinstance(block, dict):
            raise VerdictRuleError(f"{at}: expected a mapping with 'supported' and 'refuted'")
        unknown = set(block) - {"claim", "comparisons", "sets", "supported", "refuted", "interval"}
        if unknown:
            raise VerdictRuleError(f"{at}: unknown key(s) {sorted(unknown)}")
        interval = block.get("interval", "t")
        if interval not in INTERVALS:
            raise VerdictRuleError(f"{at}.interval: expected one of {', '.join(INTERVALS)}, got {interval!r}")
        for key in ("supported", "refuted"):
            if not block.get(key):
                raise VerdictRuleError(f"{at}.{key}: at least one group of checks is needed")
        rules.append(
            Rule(
                supported=tuple(_groups(block["supported"], f"{at}.supported")),
                refuted=tuple(_groups(block["refuted"], f"{at}.refuted")),
                claim=str(block.get("claim", "")),
                comparisons=tuple(_names(block.get("comparisons", ["qra_selected"]), f"{at}.comparisons")),
                sets=tuple(_names(block.get("sets", ["test"]), f"{at}.sets")),
                interval=interval,
            )
        )
    return rules


def _names(raw: Any, at: str) -> list[str]:
    names = [raw] if isinstance(raw, str) else raw
    if not isinstance(names, list) or not names or not all(isinstance(x, str) and x for x in names):
        raise VerdictRuleError(f"{at}: expected a name or a non-empty list of names")
    return names


def _groups(raw: Any, at: str) -> list[Group]:
    groups = raw if isinstance(raw, list) else [raw]
    out = []
    for j, g in enumerate(groups):
        here = f"{at}[{j}]"
        if not isinstance(g, dict) or not set(g) - {"against", "versus"}:
            raise VerdictRuleError(f"{here}: expected a mapping of checks ({', '.join(CHECKS)})")
        if "versus" in g and "against" in g:
            raise VerdictRuleError(
                f"{here}: 'versus' (a comparison of the same arm) and 'against' exclude each other"
            )
        versus = str(g.get("versus") or "")
        against = tuple(_names(g.get("against", "seeds"), f"{here}.against"))
        checks = {k: v for k, v in g.items() if k not in ("against", "versus")}
        for name, value in checks.items():
            if name not in CHECKS:
                raise VerdictRuleError(f"{here}: unknown check {name!r} (known: {', '.join(CHECKS)})")
            boolean = name in ("disjoint", "interval_above")
            if boolean != isinstance(value, bool) or not isinstance(value, (int, float)):
                raise VerdictRuleError(f"{here}.{name}: expected {'true/false' if boolean else 'a number'}")
            if CHECKS[name][0] and name != "means_within" and len(against) != 1:
                raise VerdictRuleError(
                    f"{here}.{name}: compares with one arm; 'against' names {list(against)}"
                )
        out.append(Group(checks, against, versus))
    return out


@dataclass(frozen=True)
class Gap:
    """One arm's difference (variant minus control) on one set: mean and t-interval over seeds, per-seed
    paired intervals (accuracy, fractions)."""

    mean: float
    ci: tuple[float, float]
    seed_cis: tuple[tuple[float, float], ...]
    kind: str = "t"  # which interval `ci` is (INTERVALS)
    # the variant's per-row correctness ([seeds, rows]) with its control's keys, where the arm's records give it
    # (`with_row_correctness`): a shift against a gap with the same control keys is then read row-paired
    rows: dict[str, Any] | None = field(default=None, compare=False)


def arm_gap(result: dict[str, Any], set_name: str, comparison: str, interval: str = "t") -> Gap | None:
    sm = next(
        (s for s in result.get("summary", {}).values() if s["set"] == set_name and s["second"] == comparison),
        None,
    )
    if sm is None or sm["accuracy_difference"]["seeds"] < 2:
        return None
    seed_cis = []
    for r in result.get("per_seed", []):
        comps = r.get("sets", {}).get(set_name, {}).get("comparisons", [])
        c = next((c for c in comps if c["second"] == comparison), None)
        if c is not None:
            seed_cis.append(tuple(c["accuracy_difference_ci"]))
    a = sm["accuracy_difference"]
    if interval == "seeds_x_rows":
        if "accuracy_difference_seeds_x_rows" not in sm:
            return None
        a = {**a, "ci": sm["accuracy_difference_seeds_x_rows"]["ci"]}
    rows = result.get("_rows", {}).get(f"{set_name}:{comparison}")
    return Gap(a["mean"], (a["ci"][0], a["ci"][1]), tuple(seed_cis), interval, rows)


def shares_control(gap: Gap, ref: Gap) -> bool:
    """Whether two gaps were measured against the same Q->A models on the same rows (same control keys, seed by
    seed): then the controls cancel and the shift is the difference of the two variants, row by row."""
    return (
        gap.rows is not None
        and ref.rows is not None
        and gap.rows["control_keys"] == ref.rows["control_keys"]
        and gap.rows["rows"] == ref.rows["rows"]
        and gap.rows["correct"].shape == ref.rows["correct"].shape
    )


def shift_interval(gap: Gap, ref: Gap, level: float = 0.95) -> tuple[float, float]:
    """An interval of the shift (gap minus reference gap). Row-paired where the two share their control models
    (`shares_control`): the seeds x rows bootstrap of the two variants' difference on the same rows. Otherwise
    from the two gaps' seeds x rows intervals treated as independent normal estimates (conservative where the
    arms' controls correlate)."""
    from statistics import NormalDist

    if shares_control(gap, ref):
        from reasoning_infused.pipeline.metrics import seeds_items_bootstrap

        ci = seeds_items_bootstrap(ref.rows["correct"], gap.rows["correct"], level=level)["ci"]
        return ci[0], ci[1]
    z95 = NormalDist().inv_cdf(0.975)
    se = ((gap.ci[1] - gap.ci[0]) ** 2 + (ref.ci[1] - ref.ci[0]) ** 2) ** 0.5 / (2 * z95)
    z = NormalDist().inv_cdf(0.5 + level / 2)
    shift = gap.mean - ref.mean
    return shift - z * se, shift + z * se


def shift_p_value(gap: Gap, ref: Gap, interval: tuple[float, float] | None = None) -> float:
    """Two-sided p of shift = 0 under the normal approximation of `shift_interval` (its 95% interval's width;
    pass `interval` when it is already computed, so a row-paired bootstrap is not run twice)."""
    from statistics import NormalDist

    lo, hi = interval or shift_interval(gap, ref)
    se = (hi - lo) / (2 * NormalDist().inv_cdf(0.975))
    if se == 0:
        return 0.0 if gap.mean != ref.mean else 1.0
    return 2 * (1 - NormalDist().cdf(abs(gap.mean - ref.mean) / se))


def _strict_check(name: str, value: Any, gap: Gap, refs: list[Gap]) -> tuple[bool, str] | None:
    """The stricter reading of a check (None: read as declared): "within d" is an equivalence test (the 90%
    interval of the shift inside ±d); "beyond d" needs the 95% interval beyond d; intervals "apart" become "the
    shift's 95% interval excludes 0"; "means within d" needs every pairwise equivalence."""
    pts = lambda x: f"{x * 100:+.1f}"  # noqa: E731
    if name == "means_within":
        held, said = True, []
        for ref in refs:
            lo, hi = shift_interval(gap, ref, 0.90)
            held &= -value / 100 <= lo and hi <= value / 100
            said.append(f"[{pts(lo)}, {pts(hi)}]")
        return held, f"90% shift intervals {', '.join(said)} (equivalence within ±{value:g})"
    if not refs or name not in ("shift_within", "shift_beyond", "disjoint"):
        return None
    ref = refs[0]
    if name == "shift_within":
        lo, hi = shift_interval(gap, ref, 0.90)
        return (
            -value / 100 <= lo and hi <= value / 100,
            f"90% shift interval [{pts(lo)}, {pts(hi)}] (equivalence)",
        )
    lo, hi = shift_interval(gap, ref, 0.95)
    if name == "shift_beyond":
        return lo > value / 100 or hi < -value / 100, f"95% shift interval [{pts(lo)}, {pts(hi)}]"
    apart = lo > 0 or hi < 0
    return (
        apart == value,
        f"95% shift interval [{pts(lo)}, {pts(hi)}] {'excludes' if apart else 'includes'} 0",
    )


def _check(name: str, value: Any, gap: Gap, refs: list[Gap], strict: bool = False) -> tuple[bool, str]:
    """Whether one check holds, and the numbers in words (points)."""
    if strict and (read := _strict_check(name, value, gap, refs)) is not None:
        return read
    pts = lambda x: f"{x * 100:+.1f}"  # noqa: E731
    interval = lambda ci: f"[{pts(ci[0])}, {pts(ci[1])}]"  # noqa: E731
    if name == "means_within":
        means = [gap.mean] + [r.mean for r in refs]
        spread = max(means) - min(means)
        return spread <= value / 100, f"means {', '.join(pts(m) for m in means)} span {spread * 100:.1f}"
    if CHECKS[name][0]:
        ref = refs[0]
        shift = gap.mean - ref.mean
        said = f"shift {pts(shift)} ({pts(gap.mean)} against {pts(ref.mean)})"
        if name == "shift_at_least":
            return shift >= value / 100, said
        if name == "shift_above":
            return shift > value / 100, said
        if name == "shift_below":
            return shift < value / 100, said
        if name == "shift_within":
            return abs(shift) <= value / 100, said
        if name == "shift_beyond":
            return abs(shift) > value / 100, said
        if name in ("disjoint", "interval_above"):
            above, below = gap.ci[0] > ref.ci[1], gap.ci[1] < ref.ci[0]
            held = (above or below) if name == "disjoint" else above
            words = "do not overlap" if (above or below) else "overlap"
            kind = "seeds × rows intervals" if gap.kind == "seeds_x_rows" else "t-intervals"
            return held == value, f"{kind} {interval(gap.ci)} and {interval(ref.ci)} {words}"
        share = shift / abs(ref.mean) if ref.mean else float("nan")
        said = f"the gap shrinks by {share:.0%} of {pts(ref.mean)}"
        return (share >= value if name == "shrinks_at_least" else share < value), said
    lo, hi = gap.ci
    said = f"{'seeds × rows interval' if gap.kind == 'seeds_x_rows' else 't-interval'} {interval(gap.ci)}"
    if name == "upper_at_least":
        return hi >= value / 100, said
    if name == "upper_below":
        return hi < value / 100, said
    if name == "lower_above":
        return lo > value / 100, said
    if name == "lower_at_most":
        return lo <= value / 100, said
    uppers = [ci[1] for ci in gap.seed_cis]
    said = "per-seed paired intervals " + ", ".join(interval(ci) for ci in gap.seed_cis)
    if not uppers:
        return False, "no per-seed intervals"
    if name == "every_seed_upper_below":
        return all(u < value / 100 for u in uppers), said
    return any(u >= value / 100 for u in uppers), said  # some_seed_upper_at_least


def check_rule(rule: Rule, arm: str, finished: dict[str, dict[str, Any]], strict: bool = False) -> Verdict:
    """The verdict of one rule of arm `arm`, from the finished arms' result files (name -> arm file). `strict`:
    the reviewer's reading: every interval is the seeds x rows one, "within" is an equivalence test, "apart" is
    a shift interval that excludes 0 (see `_strict_check`)."""
    if strict:
        rule = Rule(rule.supported, rule.refuted, rule.claim, rule.comparisons, rule.sets, "seeds_x_rows")
    claim = rule.claim or "the declared outcome"
    compared = [
        g for g in rule.supported + rule.refuted if any(CHECKS[n][0] for n in g.checks) and not g.versus
    ]
    needed = [arm] + sorted({a for g in compared for a in g.against} - {arm})
    missing = [a for a in needed if a not in finished]
    if missing:
        return Verdict(claim, "waiting", [f"waiting for arm(s) {', '.join(f'`{a}`' for a in missing)}"])

    def group_holds(g: Group, set_name: str, comparison: str) -> tuple[bool | None, list[str]]:
        gap = arm_gap(finished[arm], set_name, comparison, rule.interval)
        compares = any(CHECKS[n][0] for n in g.checks)
        if g.versus:
            refs = [arm_gap(finished[arm], set_name, g.versus, rule.interval)] if compares else []
        else:
            refs = (
                [arm_gap(finished[a], set_name, comparison, rule.interval) for a in g.against]
                if compares
                else []
            )
        if gap is None:
            return None, [f"`{arm}` has no {comparison} on {set_name} over 2+ seeds"]
        if any(r is None for r in refs):
            if g.versus:
                return None, [f"`{arm}` has no {g.versus} on {set_name} over 2+ seeds to compare"]
            lacking = [a for a, r in zip(g.against, refs, strict=True) if r is None]
            return None, [
                f"{', '.join(f'`{a}`' for a in lacking)} has no {comparison} on {set_name} to compare"
            ]
        held, words = True, []
        for name, value in g.checks.items():
            ok, said = _check(name, value, gap, [r for r in refs if r is not None], strict)
            held &= ok
            words.append(f"{said} ({_condition(name, value)}: {'yes' if ok else 'no'})")
        return held, words

    pairs = [(s, c) for s in rule.sets for c in rule.comparisons]
    words: dict[str, list[str]] = {"supported": [], "refuted": [], "refuted_held": []}
    supported, refuted, unknown = True, False, []
    for kind, groups in (("supported", rule.supported), ("refuted", rule.refuted)):
        for g in groups:
            for s, c in pairs:
                held, said = group_holds(g, s, c)
                if held is None:
                    unknown += said
                    continue
                line = f"{s}, {c}: " + "; ".join(said)
                words[kind].append(line)
                if kind == "supported":
                    supported &= held
                elif held:
                    refuted = True
                    words["refuted_held"].append(line)
    if unknown:
        return Verdict(claim, "waiting", sorted(set(unknown)))
    if supported and refuted:  # a rule whose conditions overlap: said, never resolved silently
        return Verdict(
            claim, "inconclusive", ["both the supporting and the refuting checks hold", *words["supported"]]
        )
    if supported:
        return Verdict(claim, "supported", words["supported"])
    if refuted:
        return Verdict(claim, "refuted", words["refuted_held"])
    return Verdict(claim, "inconclusive", ["neither holds", *words["supported"], *words["refuted"]])


def _condition(name: str, value: Any) -> str:
    """What a check asks for, in words (parse_rules has checked the value's type)."""
    if name == "disjoint":
        return "needs them apart" if value else "needs them to overlap"
    if name == "interval_above":
        return "needs the arm's above" if value else "needs the arm's not above"
    v = "0" if value == 0 else f"{value:+g}"
    return {
        "shift_at_least": f"needs ≥ {v}",
        "shift_above": f"needs > {v}",
        "shift_below": f"needs < {v}",
        "shift_within": f"needs within ±{abs(value):g}",
        "shift_beyond": f"needs beyond ±{abs(value):g}",
        "shrinks_at_least": f"needs ≥ {value:.0%}",
        "shrinks_below": f"needs < {value:.0%}",
        "means_within": f"needs a span ≤ {abs(value):g}",
        "upper_at_least": f"needs it to reach {v} or lie above",
        "upper_below": f"needs it below {v}",
        "lower_above": f"needs it above {v}",
        "lower_at_most": f"needs it to reach {v} or lie below",
        "every_seed_upper_below": f"needs every seed's below {v}",
        "some_seed_upper_at_least": f"needs some seed's to reach {v}",
    }[name]
