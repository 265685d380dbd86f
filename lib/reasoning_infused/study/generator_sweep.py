"""Choosing the generator on held-out training rows: a declared sweep of generator candidates.

A sweep YAML (`configs/generator_sweep.yaml`) declares the candidates (overrides of the generator's training data
and schedule, and of the decoding) and, before anything runs, the rule that picks one. For each candidate the
generator is trained or reused from the artifact store (training in its own process), then it writes reasonings
for `rows` emotion *training* rows outside the classifier's training subsample (never validation, test or the
out-of-domain sets). Every set gets the reasoning-quality report, and every candidate is compared with the first
one (the profile's current generator) on the same rows: paired differences of leakage, grounding, repetition and
cut, and LAS, each with a paired bootstrap interval. Output: results/generator_sweep/<sweep>.json, shown in
notebook 03. Run: `python -m reasoning_infused generator-sweep configs/generator_sweep.yaml [--dry-run]`.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reasoning_infused.analysis.quality import compare_reasonings, paired_las_difference, quality_report
from reasoning_infused.base.locations import check_safe_name, figures_root, results_root
from reasoning_infused.base.provenance import code_version, write_json
from reasoning_infused.experiment import artifacts
from reasoning_infused.experiment.config import ProfileError, load_profile, override_args, read_yaml_mapping
from reasoning_infused.experiment.settings import Profile


@dataclass
class Candidate:
    name: str
    overrides: list[str] = field(default_factory=list)
    why: str = ""  # what the candidate tests, in a few words


@dataclass
class Sweep:
    name: str
    profile: str
    rows: int  # held-out training rows every candidate writes reasonings for
    seed: int  # which held-out rows (a sampling seed of its own: not the classifier's subsample seed)
    rule: str  # how a candidate is chosen, written before any run
    candidates: list[Candidate]
    path: Path

    @property
    def results_path(self) -> Path:
        return results_root() / "generator_sweep" / f"{self.name}.json"

    @property
    def figure_path(self) -> Path:
        return figures_root() / f"generator_sweep_{self.name}.png"

    def spec_hash(self) -> str:
        blob = json.dumps({k: v for k, v in asdict(self).items() if k != "path"}, sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]


def load_sweep(path: str | Path) -> Sweep:
    """Parse and check a sweep YAML; every candidate's settings load and validate before anything runs."""
    path = Path(path)
    raw = read_yaml_mapping(path, "generator sweep")
    allowed = {"name", "profile", "rows", "seed", "rule", "candidates"}
    unknown = set(raw) - allowed
    if unknown:
        raise ProfileError(
            f"{path}: unknown key(s) {sorted(unknown)} (allowed: {', '.join(sorted(allowed))})"
        )
    for key in ("name", "profile", "rule", "candidates"):
        if not raw.get(key):
            raise ProfileError(f"{path}: missing key '{key}'")
    cands = []
    for i, c in enumerate(raw["candidates"]):
        where = f"{path}: candidates[{i}]"
        if not isinstance(c, dict) or set(c) - {"name", "overrides", "why"} or "name" not in c:
            raise ProfileError(f"{where}: expected a mapping with name, overrides, why")
        try:
            check_safe_name(str(c["name"]), "candidate name")
        except ValueError as e:
            raise ProfileError(f"{where}: {e}") from None
        cands.append(Candidate(str(c["name"]), list(c.get("overrides") or []), str(c.get("why", ""))))
    if len({c.name for c in cands}) != len(cands):
        raise ProfileError(f"{path}: candidate names must be unique")
    if cands[0].overrides:
        raise ProfileError(
            f"{path}: the first candidate is the reference (the profile as it is): no overrides"
        )
    sweep = Sweep(
        str(raw["name"]),
        str(raw["profile"]),
        int(raw.get("rows", 400)),
        int(raw.get("seed", 1)),
        str(raw["rule"]).strip(),
        cands,
        path,
    )
    check_safe_name(sweep.name, "sweep name")
    if sweep.rows < 50:
        raise ProfileError(f"{path}: rows must be at least 50 (the simulator is cross-fitted on them)")
    for c in cands:
        try:
            candidate_profile(sweep, c)
        except ProfileError as e:
            raise ProfileError(f"{path}: candidate {c.name}: {e}") from None
    return sweep


def candidate_profile(sweep: Sweep, cand: Candidate) -> Profile:
    return load_profile(sweep.profile, cand.overrides, experiment=f"gensweep--{sweep.name}--{cand.name}")


def qualifies(comparison: dict[str, Any]) -> bool:
    """The rule `configs/generator_sweep.yaml` declares: LAS and grounding both higher than the reference's
    (paired intervals above 0), and repetition not higher (its paired interval not above 0)."""
    return (
        comparison["las"]["ci"][0] > 0
        and comparison["grounding"]["ci"][0] > 0
        and not comparison["repetitive"]["ci"][0] > 0
    )


def choose(comparisons: dict[str, dict[str, Any]]) -> str | None:
    """The qualifying candidate with the largest LAS gain over the reference, or None (the reference stays)."""
    ok = [n for n, c in comparisons.items() if qualifies(c)]
    return max(ok, key=lambda n: comparisons[n]["las"]["difference"]) if ok else None


def _train(sweep: Sweep, p: Profile, in_process: bool) -> None:
    if artifacts.generator_artifact(p).is_complete():
        return
    if in_process:
        from reasoning_infused.pipeline.generator import train_generator

        train_generator(p)
        return
    from reasoning_infused.study.runner import run_cli_stage

    run_cli_stage(sweep.profile, override_args(p), p.experiment, "train-generator")


def run_sweep(sweep: Sweep, in_process: bool = False, bootstrap_samples: int = 1000) -> dict[str, Any]:
    """Train, generate, assess and choose; resumable through the artifact store (a rerun reuses every trained
    generator and every set of held-out reasonings)."""
    from reasoning_infused.pipeline.augment import heldout_reasonings
    from reasoning_infused.pipeline.modeling import release_memory

    t0 = time.time()
    sets: dict[str, list[dict[str, Any]]] = {}
    times: dict[str, dict[str, Any]] = {}
    for c in sweep.candidates:
        p = candidate_profile(sweep, c)
        print(f"\n===== generator sweep: {c.name} ({', '.join(c.overrides) or 'the profile as it is'}) =====")
        _train(sweep, p, in_process)
        sets[c.name] = heldout_reasonings(p, sweep.rows, sweep.seed)
        release_memory()
        gen_meta = artifacts.generator_artifact(p).metadata()
        held_meta = artifacts.heldout_reasonings_artifact(p, sweep.rows, sweep.seed).metadata()
        times[c.name] = {
            "generator_train_seconds": gen_meta.get("wall_seconds"),
            "optimizer_steps": gen_meta.get("optimizer_steps"),
            "generation_seconds": held_meta.get("wall_seconds"),
            "generator_key": gen_meta.get("key"),
            "heldout_generator_loss": gen_meta.get("heldout_loss_after"),
        }
    ref_name = sweep.candidates[0].name
    reference = sets[ref_name]
    candidates: dict[str, Any] = {}
    comparisons: dict[str, dict[str, Any]] = {}
    for c in sweep.candidates:
        p = candidate_profile(sweep, c)
        rows = sets[c.name]
        entry: dict[str, Any] = {
            "overrides": c.overrides,
            "why": c.why,
            **times[c.name],
            "quality": quality_report(
                rows, max_new_tokens=p.augment.max_new_tokens, bootstrap_samples=bootstrap_samples
            ),
            "examples": [{k: r[k] for k in ("text", "label", "reasoning")} for r in rows[:5]],
        }
        if c.name != ref_name:
            comparisons[c.name] = {
                **compare_reasonings(reference, rows, bootstrap_samples),
                "las": paired_las_difference(reference, rows, bootstrap_samples=bootstrap_samples),
            }
            entry["against_reference"] = comparisons[c.name]
            entry["qualifies"] = qualifies(comparisons[c.name])
        candidates[c.name] = entry
    chosen = choose(comparisons)
    result = {
        "sweep": sweep.name,
        "profile": sweep.profile,
        "rows": sweep.rows,
        "rows_seed": sweep.seed,
        "rows_are": "emotion training rows outside the classifier's training subsample (no validation, test or "
        "out-of-domain row)",
        "rule": sweep.rule,
        "reference": ref_name,
        "candidates": candidates,
        "chosen": chosen,
        "spec_hash": sweep.spec_hash(),
        "code_version": code_version(),
        "seconds": time.time() - t0,
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    write_json(sweep.results_path, result)
    from reasoning_infused.analysis.figures import generator_tradeoff

    generator_tradeoff(result, sweep.figure_path)
    print(
        f"[generator-sweep] chosen: {chosen or f'none qualifies; {ref_name} stays'}; wrote {sweep.results_path}"
    )
    return result


def sweep_table(result: dict[str, Any]) -> str:
    """Markdown: each candidate's quality, cost and paired differences against the reference."""

    def pct(x: float | None) -> str:
        return "–" if x is None else f"{100 * x:.1f}"

    def diff(d: dict[str, Any] | None) -> str:
        if not d or d.get("difference") is None:
            return "–"
        return f"{100 * d['difference']:+.1f} [{100 * d['ci'][0]:+.1f}, {100 * d['ci'][1]:+.1f}]"

    def minutes(s: float | None) -> str:
        return "–" if s is None else f"{s / 60:.1f}"

    out = [
        "| candidate | generator training (min) | generation (min) | median tokens | cut % | repetitive % | "
        "leaks gold % | grounding % | LAS | Δ grounding | Δ LAS | Δ repetitive | qualifies |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, c in result["candidates"].items():
        q = c["quality"]
        a = c.get("against_reference")
        chosen = " **(chosen)**" if name == result["chosen"] else ""
        out.append(
            f"| `{name}`{chosen} | {minutes(c['generator_train_seconds'])} | {minutes(c['generation_seconds'])} | "
            f"{q['length_tokens']['median']:.0f} | {pct(q['cut_at_limit'])} | {pct(q['repetitive'])} | "
            f"{pct(q['leaks_gold'])} | {pct(q['grounding'])} | {100 * q['informativeness']['las']:+.1f} | "
            f"{diff(a and a['grounding'])} | {diff(a and a['las'])} | {diff(a and a['repetitive'])} | "
            f"{'reference' if a is None else ('yes' if c['qualifies'] else 'no')} |"
        )
    return "\n".join(out)


def sweep_markdown(result: dict[str, Any]) -> str:
    """The README block: where the numbers come from, the rule, the table and the choice."""
    chosen = result["chosen"]
    return "\n".join(
        [
            f"Sweep `{result['sweep']}` (code `{result['code_version']}`, {result['finished_at']}): "
            f"{result['rows']} {result['rows_are']}; differences against `{result['reference']}` on the same rows, "
            "in points with paired 95% bootstrap intervals.",
            "",
            sweep_table(result),
            "",
            f"**Rule, declared before the runs:** {result['rule']}",
            "",
            "**Chosen:** "
            + (f"`{chosen}`." if chosen else f"none qualifies; `{result['reference']}` stays the default."),
        ]
    )
