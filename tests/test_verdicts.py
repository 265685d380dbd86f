"""Verdict rules (verdicts.py): a declared outcome restated as checks on an arm's numbers, on known inputs."""

import pytest
from reasoning_infused.study.verdicts import VerdictRuleError, check_rule, parse_rules


def arm_file(mean, ci, seed_cis=None, second="qra_selected", set_name="test"):
    """The parts of an arm file a verdict reads: the summary over seeds and each seed's paired interval."""
    seed_cis = seed_cis or [(mean - 0.01, mean + 0.01)] * 3
    return {
        "summary": {
            f"{set_name}:{second}-qa": {
                "set": set_name,
                "first": "qa",
                "second": second,
                "accuracy_difference": {"seeds": len(seed_cis), "mean": mean, "ci": list(ci)},
            }
        },
        "per_seed": [
            {
                "seed": i,
                "sets": {set_name: {"comparisons": [{"second": second, "accuracy_difference_ci": list(c)}]}},
            }
            for i, c in enumerate(seed_cis)
        ],
    }


SEEDS = arm_file(-0.177, (-0.195, -0.159))
SHIFT_RULE = {
    "supported": [{"shift_at_least": 3, "disjoint": True}],
    "refuted": [{"shift_within": 2}, {"shift_below": 0}],
}


@pytest.mark.parametrize(
    "arm, expected",
    [
        (arm_file(-0.098, (-0.110, -0.086)), "supported"),  # +7.9 points, intervals apart
        (arm_file(-0.170, (-0.185, -0.155)), "refuted"),  # +0.7: within 2 points
        (arm_file(-0.200, (-0.220, -0.180)), "refuted"),  # more negative
        (arm_file(-0.140, (-0.170, -0.110)), "inconclusive"),  # +3.7 but the intervals overlap
        (arm_file(-0.150, (-0.160, -0.140)), "inconclusive"),  # +2.7: neither
    ],
)
def test_a_shift_rule_reads_the_shift_and_the_intervals(arm, expected):
    (rule,) = parse_rules(SHIFT_RULE, "arm")
    v = check_rule(rule, "arm", {"seeds": SEEDS, "arm": arm})
    assert v.verdict == expected and v.because
    if expected == "supported":
        assert "shift +7.9 (-9.8 against -17.7)" in v.because[0] and "do not overlap" in v.because[0]


def test_interval_rules_and_every_seed():
    interval = parse_rules({"supported": [{"upper_at_least": 0}], "refuted": [{"upper_below": 0}]}, "a")[0]
    assert check_rule(interval, "a", {"a": arm_file(-0.04, (-0.064, -0.022))}).verdict == "refuted"
    assert check_rule(interval, "a", {"a": arm_file(-0.01, (-0.03, 0.01))}).verdict == "supported"
    seeds_rule = parse_rules(
        {
            "supported": [{"every_seed_upper_below": 0, "upper_below": 0}],
            "refuted": [{"some_seed_upper_at_least": 0}, {"upper_at_least": 0}],
        },
        "seeds",
    )[0]
    below = arm_file(-0.1, (-0.12, -0.08), [(-0.12, -0.08), (-0.11, -0.07), (-0.13, -0.09)])
    one_seed_reaches_0 = arm_file(-0.1, (-0.12, -0.08), [(-0.12, -0.08), (-0.11, 0.002), (-0.13, -0.09)])
    assert check_rule(seeds_rule, "seeds", {"seeds": below}).verdict == "supported"
    assert check_rule(seeds_rule, "seeds", {"seeds": one_seed_reaches_0}).verdict == "refuted"


def test_shrink_and_several_references():
    shrink = parse_rules(
        {"supported": [{"shrinks_at_least": 0.5}], "refuted": [{"shrinks_below": 0.25}]}, "a"
    )[0]
    ref = {"seeds": arm_file(-0.20, (-0.22, -0.18))}
    assert check_rule(shrink, "a", {**ref, "a": arm_file(-0.09, (-0.1, -0.08))}).verdict == "supported"  # 55%
    assert check_rule(shrink, "a", {**ref, "a": arm_file(-0.16, (-0.17, -0.15))}).verdict == "refuted"  # 20%
    assert check_rule(shrink, "a", {**ref, "a": arm_file(-0.13, (-0.14, -0.12))}).verdict == "inconclusive"
    trend = parse_rules(
        {
            "supported": [
                {"against": "data_4k", "shift_above": 0},
                {"shift_above": 0, "interval_above": True},
            ],
            "refuted": [{"against": ["seeds", "data_4k"], "means_within": 2}],
        },
        "data_8k",
    )[0]
    arms = {"seeds": arm_file(-0.18, (-0.19, -0.17)), "data_4k": arm_file(-0.12, (-0.13, -0.11))}
    assert (
        check_rule(trend, "data_8k", {**arms, "data_8k": arm_file(-0.05, (-0.06, -0.04))}).verdict
        == "supported"
    )
    flat = {"seeds": arm_file(-0.18, (-0.19, -0.17)), "data_4k": arm_file(-0.17, (-0.18, -0.16))}
    assert (
        check_rule(trend, "data_8k", {**flat, "data_8k": arm_file(-0.165, (-0.18, -0.15))}).verdict
        == "refuted"
    )


def test_a_verdict_waits_for_numbers_it_cannot_have_yet():
    (rule,) = parse_rules(SHIFT_RULE, "arm")
    v = check_rule(rule, "arm", {"arm": arm_file(-0.1, (-0.11, -0.09))})
    assert v.verdict == "waiting" and "`seeds`" in v.because[0]
    # a comparison the reference arm does not have (Q->AR when `seeds` trained Q->A and Q->RA only)
    qar = parse_rules({**SHIFT_RULE, "comparisons": ["qar"]}, "arm")[0]
    v = check_rule(qar, "arm", {"seeds": SEEDS, "arm": arm_file(-0.1, (-0.11, -0.09), second="qar")})
    assert v.verdict == "waiting" and "`seeds` has no qar on test" in v.because[0]


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"supported": [{"shift_at_least": 3}]}, r"arm\.verdict\.refuted: at least one group"),
        (
            {"supported": [{"shift_atleast": 3}], "refuted": [{"shift_within": 2}]},
            "unknown check 'shift_atleast'",
        ),
        (
            {"supported": [{"disjoint": 3}], "refuted": [{"shift_within": 2}]},
            r"disjoint: expected true/false",
        ),
        ({"supported": [{"shift_at_least": "3"}], "refuted": [{"shift_within": 2}]}, "expected a number"),
        (
            {"supported": [{"against": ["a", "b"], "shift_at_least": 3}], "refuted": [{"shift_within": 2}]},
            "compares with one arm",
        ),
        (
            {"supported": [{}], "refuted": [{"shift_within": 2}]},
            r"supported\[0\]: expected a mapping of checks",
        ),
        (
            {"supported": [{"upper_below": 0}], "refuted": [{"upper_at_least": 0}], "set": ["x"]},
            r"unknown key",
        ),
    ],
)
def test_bad_rules_name_the_key(raw, message):
    with pytest.raises(VerdictRuleError, match=message):
        parse_rules(raw, "arm")


def test_a_rule_is_not_part_of_what_an_arm_computes():
    from reasoning_infused.study.ablation_plan import Arm

    plain = Arm("a", "h", "o", ["data.train_size=4000"])
    with_rule = Arm("a", "h", "o", ["data.train_size=4000"], verdict=SHIFT_RULE)
    assert plain.spec_hash() == with_rule.spec_hash()  # finished arms stay current when a rule is written
    assert plain.spec_hash() != Arm("a", "h", "another outcome", ["data.train_size=4000"]).spec_hash()
    assert "verdict" not in with_rule.declared() and with_rule.verdict_rules()[0].supported


def test_a_rule_can_read_the_seeds_x_rows_interval_instead_of_the_t_interval():
    # t-interval over 3 seeds excludes 0, the wider seeds x rows interval includes it: the verdicts differ
    arm = arm_file(-0.01, (-0.015, -0.005))
    arm["summary"]["test:qra_selected-qa"]["accuracy_difference_seeds_x_rows"] = {"ci": [-0.03, 0.01]}
    raw = {"supported": [{"lower_above": 0}], "refuted": [{"upper_below": 0}]}
    (t_rule,) = parse_rules(raw, "a")
    (sr_rule,) = parse_rules({**raw, "interval": "seeds_x_rows"}, "a")
    assert check_rule(t_rule, "a", {"a": arm}).verdict == "refuted"
    v = check_rule(sr_rule, "a", {"a": arm})
    assert v.verdict == "inconclusive" and "seeds × rows interval [-3.0, +1.0]" in " ".join(v.because)
    with pytest.raises(VerdictRuleError, match=r"a\.verdict\.interval"):
        parse_rules({**raw, "interval": "wald"}, "a")
    # an arm file without the seeds x rows interval waits rather than falling back to the t-interval
    assert check_rule(sr_rule, "a", {"a": arm_file(-0.01, (-0.015, -0.005))}).verdict == "waiting"


def test_the_strict_reading_makes_within_an_equivalence_test_and_apart_a_shift_interval():
    # a +0.7 shift whose seeds x rows intervals are wide: "within 2" holds on the point, not as equivalence
    def wide(mean, half):
        a = arm_file(mean, (mean - 0.005, mean + 0.005))
        a["summary"]["test:qra_selected-qa"]["accuracy_difference_seeds_x_rows"] = {
            "ci": [mean - half, mean + half]
        }
        return a

    finished = {"seeds": wide(-0.177, 0.021), "arm": wide(-0.170, 0.020)}
    (rule,) = parse_rules(
        {"supported": [{"shift_at_least": 4, "disjoint": True}], "refuted": [{"shift_within": 2}]}, "arm"
    )
    assert check_rule(rule, "arm", finished).verdict == "refuted"
    strict = check_rule(rule, "arm", finished, strict=True)
    assert strict.verdict == "inconclusive" and "(equivalence)" in " ".join(strict.because)
    # narrow intervals: the equivalence holds and the strict reading agrees
    finished = {"seeds": wide(-0.177, 0.004), "arm": wide(-0.170, 0.004)}
    assert check_rule(rule, "arm", finished, strict=True).verdict == "refuted"


def test_versus_reads_a_shift_against_another_comparison_of_the_same_arm():
    arm = arm_file(-0.150, (-0.160, -0.140), second="qra_sc_vote")
    greedy = arm_file(-0.177, (-0.190, -0.165))
    arm["summary"]["test:qra_selected-qa"] = greedy["summary"]["test:qra_selected-qa"]
    raw = {
        "comparisons": ["qra_sc_vote"],
        "supported": [{"versus": "qra_selected", "shift_at_least": 2, "disjoint": True}],
        "refuted": [{"versus": "qra_selected", "shift_within": 1}],
    }
    (rule,) = parse_rules(raw, "sc")
    v = check_rule(rule, "sc", {"sc": arm})  # no other arm is needed
    assert v.verdict == "supported" and "shift +2.7" in v.because[0]
    with pytest.raises(VerdictRuleError, match="exclude each other"):
        parse_rules(
            {**raw, "supported": [{"versus": "qra_selected", "against": "seeds", "shift_above": 0}]}, "sc"
        )


def test_a_shift_between_arms_that_share_their_controls_is_read_row_paired():
    """Two arms measured against the same Q->A models: the controls cancel, so the shift's interval is the
    seeds x rows bootstrap of the two variants on the same rows, much narrower than the independent reading
    when the variants agree on most rows; different control keys fall back to the independent reading."""
    import numpy as np
    from reasoning_infused.study.verdicts import Gap, shares_control, shift_interval

    rng = np.random.default_rng(0)
    ref_rows = (rng.random((3, 2000)) < 0.6).astype(float)
    arm_rows = ref_rows.copy()
    flip = rng.random((3, 2000)) < 0.04  # the arm's variant differs on 4% of rows, mostly for the worse
    arm_rows[flip & (ref_rows == 1)] = 0
    keys = ("k0", "k1", "k2")

    def gap(rows, control_keys, fingerprint="r"):
        mean = float(rows.mean()) - 0.7  # any control: it cancels in the shift
        return Gap(
            mean,
            (mean - 0.03, mean + 0.03),
            (),
            "seeds_x_rows",
            {"control_keys": control_keys, "rows": fingerprint, "correct": rows},
        )

    ref, arm = gap(ref_rows, keys), gap(arm_rows, keys)
    assert shares_control(arm, ref)
    lo, hi = shift_interval(arm, ref)
    shift = arm.mean - ref.mean
    assert shift < 0 and lo <= shift <= hi and hi < 0 and hi - lo < 0.02
    independent = Gap(arm.mean, arm.ci, (), "seeds_x_rows")
    lo_i, hi_i = shift_interval(independent, ref)
    assert hi_i - lo_i > 0.07 and lo_i < 0 < hi_i
    for other in (gap(arm_rows, ("k0", "k1", "x")), gap(arm_rows, keys, fingerprint="other rows")):
        assert not shares_control(other, ref)
        assert shift_interval(other, ref) == pytest.approx((lo_i, hi_i))


def test_the_strict_table_reads_self_consistency_against_the_same_models_greedy_decoding(tmp_path):
    from types import SimpleNamespace

    from reasoning_infused.study.strict_reading import strict_section

    def summary(second, mean):
        return {
            "set": "test",
            "first": "qa",
            "second": second,
            "accuracy_difference": {"seeds": 2, "mean": mean, "ci": [mean - 0.01, mean + 0.01]},
            "accuracy_difference_seeds_x_rows": {"ci": [mean - 0.02, mean + 0.02]},
        }

    accuracies = {"qa": 0.8, "qra_selected": 0.62, "qra_sc_vote": 0.66}
    arm = {
        "summary": {
            "test:qra_selected-qa": summary("qra_selected", -0.18),
            "test:qra_sc_vote-qa": summary("qra_sc_vote", -0.14),
        },
        "per_seed": [
            {
                "seed": s,
                "sets": {"test": {"classifiers": {k: {"accuracy": v} for k, v in accuracies.items()}}},
            }
            for s in (0, 1)
        ],
    }
    abl = SimpleNamespace(
        arms=[SimpleNamespace(name="sc", verdict=None)], references={}, study="x", results_dir=tmp_path
    )
    text = strict_section(abl, {"sc": arm})
    row = next(line for line in text.splitlines() if "vote over sampled reasonings" in line)
    assert "its Q→RA (decoding chosen on validation)" in row and "| +4.0 [" in row
