"""The finished arms read back: which are current, their verdicts, the training-length curve and the
study's summary.json."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from typing import Any

from reasoning_infused.base.locations import figures_root
from reasoning_infused.base.provenance import code_version, write_json
from reasoning_infused.study.ablation_plan import Ablation, arm_file_state, experiment_profile, training_rows
from reasoning_infused.study.verdicts import Verdict, check_rule


@dataclass
class ArmResults:
    """The study's stored arm files, sorted: finished, interim (a stopped arm's finished seeds, with the arm's
    hypothesis and outcome) and stale (a file whose declaration or resolved settings differ from the YAML now:
    never reported as the declared arm), each in the declared order."""

    done: dict[str, dict[str, Any]]
    interim: dict[str, dict[str, Any]]
    stale: dict[str, str]  # arm -> why


def arm_results(abl: Ablation) -> ArmResults:
    out = ArmResults({}, {}, {})
    for a in abl.arms:
        path = abl.results_dir / f"{a.name}.json"
        partial = abl.results_dir / f"{a.name}.partial.json"
        found = path if path.exists() else partial if partial.exists() else None
        if found is None:
            continue
        stored = json.loads(found.read_text())
        state = arm_file_state(abl, a, stored)
        if state != "current":
            todo = "run `ablate --rescore` once" if state == "legacy" else "run the arm again"
            out.stale[a.name] = f"{found.name}: {state}; {todo}"
        elif found == path:
            out.done[a.name] = stored
        else:
            out.interim[a.name] = {**stored, "hypothesis": a.hypothesis, "outcome": a.outcome}
    return out


def arm_verdicts(abl: Ablation, done: dict[str, dict[str, Any]]) -> dict[str, list[Verdict]]:
    """Per arm with a verdict rule: each claim's verdict from the finished arms (its own and its references')."""
    return {a.name: [check_rule(r, a.name, done) for r in a.verdict_rules()] for a in abl.arms if a.verdict}


def curve_point(result: dict[str, Any], examples: int, steps: int, set_name: str = "test") -> dict[str, Any]:
    """One point of a training-length curve from an arm file: per seed, the test accuracy of Q->A and of Q->RA
    with the decoding validation chose, and the gap over seeds (mean, t-interval)."""
    per_seed = result["per_seed"]
    qra = "qra_selected" if "qra_selected" in per_seed[0]["sets"][set_name]["classifiers"] else "qra"
    return {
        "arm": result["arm"],
        "examples": examples,
        "optimizer_steps": steps,
        "seeds": [r["seed"] for r in per_seed],
        "qa_accuracy": [r["sets"][set_name]["classifiers"]["qa"]["accuracy"] for r in per_seed],
        "qra_accuracy": [r["sets"][set_name]["classifiers"][qra]["accuracy"] for r in per_seed],
        "gap": result["summary"][f"{set_name}:{qra}-qa"]["accuracy_difference"],
    }


def training_length_curve(abl: Ablation, done: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The finished arms that differ from the study's settings only in `data.train_size` (the arm without
    overrides is the profile's size) and compare Q->RA with a Q->A control trained alike, as `curve_point`s
    sorted by training examples. Optimizer steps are derived from the resolved settings."""
    points = []
    for a in abl.arms:
        only_size = all(o.split("=", 1)[0].strip() == "data.train_size" for o in a.overrides)
        if a.name not in done or not only_size or a.control_overrides or set(a.variants) != {"qa", "qra"}:
            continue
        p = experiment_profile(abl, a, a.seeds[0], control=True)
        rows = training_rows(p)
        points.append(curve_point(done[a.name], rows, p.classifier.train.optimizer_steps(rows)))
    return sorted(points, key=lambda x: x["examples"])


def write_summary(abl: Ablation) -> dict[str, Any]:
    """summary.json from the current arm files, and the forest plot. An unchanged summary is not rewritten (only
    its provenance, the code version and time, would differ), so regenerating the reports changes no file."""
    summary = study_summary(abl)
    path = abl.results_dir / "summary.json"
    provenance = ("code_version", "written_at")
    old = json.loads(path.read_text()) if path.exists() else None
    if old is None or {k: v for k, v in old.items() if k not in provenance} != {
        k: v for k, v in json.loads(json.dumps(summary)).items() if k not in provenance
    }:
        write_json(path, summary)
    done = arm_results(abl).done
    if done:
        from reasoning_infused.analysis.figures import ablation_forest

        ablation_forest(done, figures_root() / "ablations" / f"{abl.study}_forest.png")
    if len(summary["training_length"]) > 1:
        from reasoning_infused.analysis.figures import training_length_plot

        training_length_plot(
            summary["training_length"], figures_root() / "ablations" / f"{abl.study}_training_length.png"
        )
    return summary


def study_summary(abl: Ablation) -> dict[str, Any]:
    """The study's summary from the current arm files (what summary.json holds), writing nothing."""
    found = arm_results(abl)
    done, interim, stale = found.done, found.interim, found.stale
    verdicts = arm_verdicts(abl, done)
    curve = training_length_curve(abl, done)
    summary = {
        "study": abl.study,
        "description": abl.description,
        "profile": abl.profile,
        "overrides": abl.overrides,
        "arms": {
            name: {"hypothesis": r["hypothesis"], "outcome": r["outcome"], "summary": r["summary"]}
            for name, r in done.items()
        },
        "interim": {
            name: {
                "seeds_done": r["seeds_done"],
                "seeds_declared": r["seeds_declared"],
                "summary": r["summary"],
            }
            for name, r in interim.items()
        },
        "stale": stale,
        # the declared outcomes, checked by each arm's verdict rule on the finished arms (never typed)
        "verdicts": {name: [asdict(v) for v in vs] for name, vs in verdicts.items() if name in done},
        "not_run": [
            a.name for a in abl.arms if a.name not in done and a.name not in interim and a.name not in stale
        ],
        "planned": [asdict(p) for p in abl.planned],
        "references": abl.references,  # comparison -> the arm its shift is read against (default `seeds`)
        # arms that change only the number of training examples, as one curve (Q->A, Q->RA and their gap)
        "training_length": curve,
        "code_version": code_version(),
        "written_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    return summary
