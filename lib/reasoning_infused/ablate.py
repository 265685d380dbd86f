"""Preregistered ablation studies: one YAML declares arms (hypothesis, expected outcome, overrides, variants,
seeds), one command runs them arm by arm.

    python -m reasoning_infused ablate ablations/<study>.yaml [--arm NAME] [--dry-run]

Each arm and seed is an experiment (the profile plus the study's and the arm's overrides plus the training seed);
its stages run as their own processes and share every upstream artifact with other arms through the settings keys
(a Q->A control with the same classifier settings is trained once for all arms). A finished arm writes
results/ablations/<study>/<arm>.json: per seed, accuracy and macro-F1 with intervals on the full test set and the
paired comparison of each variant with the arm's matched Q->A control; over seeds, mean, SD and a t-interval of
the difference. A rerun skips finished arms whose declaration and identity are unchanged, and a stopped arm
resumes after its last finished seed (kept with its per-row correctness in <arm>.partial.json, so even a new
machine without the artifact store does not retrain it): a stopped session loses at most the seed in flight.
`summary.json` and a forest plot collect the arms.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from . import artifacts
from .config import Profile, ProfileError, load_profile, override_args, parse_override, read_yaml_mapping
from .data import evaluation_sets, task_of
from .locations import check_safe_name, figures_root, results_root
from .metrics import (
    classification_metrics,
    mcnemar,
    paired_bootstrap_difference,
    seed_summary,
    seeds_items_bootstrap,
    seeds_needed,
)
from .prompts import VARIANTS
from .provenance import code_version, write_json
from .verdicts import Rule, Verdict, VerdictRuleError, check_rule, parse_rules

# Fallback rates (2 CPU cores, default profile, measured in the committed default study) used for the time
# estimate only while the store holds no artifact of the same kind to measure from.
_FALLBACK_SECONDS = {"train_row": 0.19, "augment_row": 0.14, "predict_row_qa": 0.042, "predict_row_qra": 0.22}


@dataclass
class Arm:
    name: str
    hypothesis: str  # one sentence, written before the arm runs
    outcome: str  # what result would support and what would refute it, written before the arm runs
    overrides: list[str] = field(default_factory=list)
    variants: list[str] = field(default_factory=lambda: ["qa", "qra"])
    seeds: list[int] = field(default_factory=lambda: [0])
    control: str = "qa"  # the matched control every other variant is compared with
    control_overrides: list[str] = field(default_factory=list)  # extra settings of the control only
    ood: bool = False  # also predict and report the out-of-domain sets
    # the outcome as checks on the arm's numbers (verdicts.py); what the arm computes does not depend on it, so
    # it is not part of the spec hash: a rule can be written for an arm that already ran, never the outcome
    verdict: list[dict[str, Any]] | dict[str, Any] = field(default_factory=list)

    def declared(self) -> dict[str, Any]:
        """What the arm computes and claims, as declared (everything but the verdict rule)."""
        return {k: v for k, v in asdict(self).items() if k != "verdict"}

    def spec_hash(self) -> str:
        """The arm as declared (hypothesis, outcome, overrides, variants, seeds): a changed declaration reruns it.
        What the settings resolve to (profile, study overrides) is `arm_identity`'s job."""
        return hashlib.sha256(json.dumps({"arm": self.declared()}, sort_keys=True).encode()).hexdigest()[:12]

    def legacy_spec_hash(self, study_overrides: list[str], profile: str) -> str:
        """The spec hash arm files written before `arm_identity` carry (declaration, study overrides and profile
        name, not what the profile resolved to); accepted only by `--rescore`, which records the identity."""
        blob = json.dumps(
            {"arm": self.declared(), "study": study_overrides, "profile": profile}, sort_keys=True
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def verdict_rules(self) -> list[Rule]:
        return parse_rules(self.verdict, self.name) if self.verdict else []


@dataclass
class Planned:
    """An arm declared (hypothesis and outcome written) whose feature is not implemented yet: reported, not run."""

    name: str
    hypothesis: str
    outcome: str
    needs: str


@dataclass
class Ablation:
    study: str
    description: str
    profile: str
    overrides: list[str]
    arms: list[Arm]
    planned: list[Planned]
    path: Path
    # the arm each comparison's gap is read against (comparison -> arm name): `seeds` unless named here, for a
    # comparison the `seeds` arm does not train (the report's shift column; verdict rules name theirs)
    references: dict[str, str] = field(default_factory=dict)
    # the task every arm runs on (a shipped name or a task file; the YAML's `task:` or `ablate --task`); empty:
    # the profile's. A task other than the profile's is part of every experiment name and of the results folder.
    task: str = ""

    @property
    def task_suffix(self) -> str:
        return f"--{Path(self.task).stem}" if self.task else ""

    @property
    def results_dir(self) -> Path:
        return results_root() / "ablations" / f"{self.study}{self.task_suffix}"


def _fields(cls, raw: dict[str, Any], where: str) -> dict[str, Any]:
    allowed = set(cls.__dataclass_fields__)
    unknown = set(raw) - allowed
    if unknown:
        raise ProfileError(
            f"{where}: unknown key(s) {sorted(unknown)} (allowed: {', '.join(sorted(allowed))})"
        )
    return raw


def comparison_variant(comparison: str) -> str:
    """The trained variant a comparison reads: `qra_selected` and `qra_constrained` are decodings of `qra`."""
    return "qra" if comparison.startswith("qra") else comparison


def _references(raw: Any, arms: list[Arm], path: Path) -> dict[str, str]:
    """The study's `references` block checked: each key a comparison, each value an arm that trains it."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ProfileError(f"{path}: references: expected a mapping comparison -> arm name")
    comparisons = ("qra_selected", "qra_constrained", *[v for v in VARIANTS if v != "qa"])
    by_name = {a.name: a for a in arms}
    for comparison, name in raw.items():
        if comparison not in comparisons:
            raise ProfileError(
                f"{path}: references.{comparison}: not a comparison (known: {', '.join(comparisons)})"
            )
        if name not in by_name:
            raise ProfileError(f"{path}: references.{comparison}: no arm named {name!r}")
        if comparison_variant(comparison) not in by_name[name].variants:
            raise ProfileError(
                f"{path}: references.{comparison}: arm {name!r} does not train "
                f"{comparison_variant(comparison)!r} (its variants: {by_name[name].variants})"
            )
    return {str(k): str(v) for k, v in raw.items()}


def load_ablation(path: str | Path, task: str | None = None) -> Ablation:
    """Parse and check an ablation YAML: every arm names its hypothesis and expected outcome, every override
    and variant is valid for the profile (checked now, not hours into the run). `task` (ablate --task) replaces
    the YAML's `task:`."""
    path = Path(path)
    raw = read_yaml_mapping(path, "ablation")
    if task:
        raw["task"] = task
    _fields(Ablation, {k: v for k, v in raw.items() if k not in ("path",)}, str(path))
    for key in ("study", "profile", "arms"):
        if key not in raw:
            raise ProfileError(f"{path}: missing key '{key}'")
    try:
        check_safe_name(str(raw["study"]), "study name")
    except ValueError as e:
        raise ProfileError(f"{path}: {e}") from None
    arms = []
    for i, a in enumerate(raw["arms"] or []):
        where = f"{path}: arms[{i}]"
        if not isinstance(a, dict):
            raise ProfileError(f"{where}: expected a mapping")
        arm = Arm(**_fields(Arm, a, where))
        for key in ("hypothesis", "outcome"):
            if not str(getattr(arm, key)).strip():
                raise ProfileError(f"{where} ({arm.name}): '{key}' must be written before the arm runs")
        try:
            check_safe_name(arm.name, "arm name")
        except ValueError as e:
            raise ProfileError(f"{where}: {e}") from None
        try:
            arm.verdict_rules()
        except VerdictRuleError as e:
            raise ProfileError(f"{path}: arms[{i}] ({arm.name}): {e}") from None
        bad = [v for v in arm.variants if v not in VARIANTS]
        if bad or arm.control not in arm.variants or len(arm.variants) < 2 or not arm.seeds:
            raise ProfileError(
                f"{where} ({arm.name}): variants must be among {VARIANTS}, include the control "
                f"{arm.control!r} and at least one other variant, with at least one seed"
            )
        arms.append(arm)
    names = [a.name for a in arms]
    if len(set(names)) != len(names):
        raise ProfileError(f"{path}: arm names must be unique")
    planned = [Planned(**_fields(Planned, p, f"{path}: planned")) for p in raw.get("planned") or []]
    abl = Ablation(
        str(raw["study"]),
        str(raw.get("description", "")),
        str(raw["profile"]),
        list(raw.get("overrides") or []),
        arms,
        planned,
        path,
        _references(raw.get("references"), arms, path),
        str(raw.get("task") or ""),
    )
    for arm in arms:  # every experiment's settings load and validate before anything runs
        for seed in arm.seeds:
            for control in (False, True):
                experiment_profile(abl, arm, seed, control)
    return abl


def experiment_profile(abl: Ablation, arm: Arm, seed: int, control: bool) -> Profile:
    """The experiment of one arm, seed and role (the control or the arm's other variants)."""
    variants = [arm.control] if control else [v for v in arm.variants if v != arm.control]
    sets = abl.overrides + arm.overrides + (arm.control_overrides if control else [])
    sets = sets + [f"classifier.train.seed={seed}", f"classifier.variants={json.dumps(variants)}"]
    sets = sets + ([f"data.task={abl.task}"] if abl.task else [])
    for o in sets:
        parse_override(o)
    role = "control" if control else "arm"
    experiment = f"{abl.study}{abl.task_suffix}--{arm.name}--{role}--seed{seed}"
    return load_profile(abl.profile, sets, experiment=experiment)


def declaration_commit(abl: Ablation, arm: Arm) -> str:
    """The commit that declared the arm as it stands: the oldest commit of the study YAML whose entry for this
    arm has the arm's spec hash. An arm must be declared in a commit before its first seed runs, so an arm
    whose declaration is not committed is refused (ProfileError). A study YAML outside any git checkout (a
    user's scratch study) is recorded as 'not in git'."""
    path = abl.path.resolve()
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=path.parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "not in git"
    rel = path.relative_to(Path(top).resolve()).as_posix()
    log = subprocess.run(
        ["git", "log", "--format=%H", "--reverse", "--", rel], cwd=top, capture_output=True, text=True
    ).stdout.split()
    want = arm.spec_hash()
    for commit in log:
        shown = subprocess.run(["git", "show", f"{commit}:{rel}"], cwd=top, capture_output=True, text=True)
        try:
            raw = yaml.safe_load(shown.stdout) if shown.returncode == 0 else None
        except yaml.YAMLError:
            continue
        entries = raw.get("arms") if isinstance(raw, dict) else None
        entry = next((a for a in entries or [] if isinstance(a, dict) and a.get("name") == arm.name), None)
        try:
            if entry is not None and Arm(**_fields(Arm, entry, rel)).spec_hash() == want:
                return commit[:12]
        except (ProfileError, TypeError):
            continue
    raise ProfileError(
        f"{abl.path}: arm {arm.name!r} is not declared in any commit as it stands; commit its hypothesis, "
        "outcome and verdict rule before its first seed runs"
    )


def refuse_redeclared(abl: Ablation, arm: Arm) -> None:
    """Refuse to run an arm whose declaration changed after results of it were written: a declaration is never
    edited once results exist (add a new arm instead). Results written before declarations were recorded
    (no `declared_in`), or of a study outside git, keep the older rule: they are recomputed."""
    for suffix in (".json", ".partial.json"):
        path = abl.results_dir / f"{arm.name}{suffix}"
        if not path.exists():
            continue
        stored = json.loads(path.read_text())
        declared = stored.get("declared_in")
        if declared and declared != "not in git" and stored.get("spec_hash") != arm.spec_hash():
            raise ProfileError(
                f"{path}: results of arm {arm.name!r} were computed under the declaration of commit "
                f"{stored['declared_in']}, and the declaration has changed since; add a new arm instead "
                "(or move this file away to discard those results)"
            )


# --- time estimate from measured rates --------------------------------------------------------------------------


def _measured_rates() -> dict[str, float]:
    """Seconds per training row (by variant), per augmented row and per predicted row (by variant), from the
    artifacts in the store; fallbacks where none exists yet."""
    rates = dict(_FALLBACK_SECONDS)
    per_variant: dict[str, list[float]] = {}
    for row in artifacts.list_artifacts():
        if row["state"] != "complete":
            continue
        meta = json.loads((Path(row["path"]) / "metadata.json").read_text())
        if row["stage"] == "classifier" and meta.get("rows"):
            # per data row and epoch (the multi-task classifier trains on two examples per data row)
            data_rows = meta.get("train_rows") or meta["rows"]
            per_variant.setdefault(f"train_row_{meta['variant']}", []).append(
                meta["wall_seconds"] / (data_rows * (meta.get("epochs") or 1.0))
            )
        elif row["stage"] == "augment" and meta.get("rows") and meta.get("wall_seconds"):
            per_variant.setdefault("augment_row", []).append(meta["wall_seconds"] / meta["rows"])
        elif row["stage"] == "predictions" and meta.get("rows"):
            v = "qra" if meta["settings"]["variant"] == "qra" else "qa"
            per_variant.setdefault(f"predict_row_{v}", []).append(meta["wall_seconds"] / meta["rows"])
    for k, vals in per_variant.items():
        rates[k] = sorted(vals)[len(vals) // 2]
    return rates


def training_rows(p: Profile) -> int:
    """The classifier training examples of an experiment: `data.train_size`, 0 meaning the full 16,000-row split."""
    return p.data.train_size or 16000


def estimate_minutes(abl: Ablation, arm: Arm, rates: dict[str, float] | None = None) -> float:
    """CPU minutes of the work an arm still has to do (artifacts already in the store cost nothing; an artifact
    several experiments share, such as an augmentation, is counted once; seeds a stopped run finished are kept
    in its interim file and cost nothing either)."""
    rates = rates or _measured_rates()
    total = 0.0
    counted: set[str] = set()
    resumed = resumable_seeds(abl, arm)
    for seed in [s for s in arm.seeds if s not in resumed]:
        for control in (True, False):
            p = experiment_profile(abl, arm, seed, control)
            n_train = training_rows(p)
            k = p.classifier.reasoning_samples
            if any(v != "qa" for v in p.classifier.variants):  # the augmentation(s) those variants read
                for a in artifacts.augment_artifacts(p):
                    if a.key not in counted and not a.is_complete():
                        total += n_train * rates["augment_row"]
                    counted.add(a.key)
            for v in p.classifier.variants:
                if not artifacts.classifier_artifact(p, v).is_complete():
                    per_row = rates.get(f"train_row_{v}", rates["train_row"])
                    if v == "multitask" and "train_row_multitask" not in rates:
                        # not measured yet: a Q->A and a Q->R example per row
                        per_row = rates.get("train_row_qa", rates["train_row"]) + rates.get(
                            "train_row_qra", rates["train_row"]
                        )
                    rows = n_train * (1 if v == "qa" else k)  # k reasonings per row (reasoning_samples)
                    total += rows * p.classifier.train.num_epochs * per_row
                for s in _sets_of(arm):
                    if not artifacts.predictions_artifact(p, v, s).is_complete():
                        if s in ("test", "validation"):
                            size = (p.data.test_size if s == "test" else p.data.val_size) or 2000
                        else:
                            size = p.data.ood_size or _ood_pool_size(p, s)
                        total += size * rates["predict_row_qra" if v == "qra" else "predict_row_qa"]
    return total / 60


def _ood_pool_size(p: Profile, set_name: str) -> int:
    """Rows of a full out-of-domain pool (ood_size 0), for the estimate."""
    from .data import load_ood

    return len(load_ood(set_name.removeprefix("ood_"), p.data.ood_dir, p.data.goemotions_test_only))


def _sets_of(arm: Arm) -> list[str]:
    return ["validation", "test"] + (["ood_goemotions", "ood_isear"] if arm.ood else [])


def arm_identity(abl: Ablation, arm: Arm) -> str:
    """The hash of the keys of every prediction an arm's results are computed from (each seed, control and arm,
    variant and evaluation set). Those keys chain every upstream setting (model, generator, augmentation,
    classifier, decoding), so a changed profile or study override changes the identity and the arm's stored
    result no longer counts as done, while renaming an experiment or editing an unrelated setting does not."""
    keys = []
    for seed in arm.seeds:
        for control in (True, False):
            p = experiment_profile(abl, arm, seed, control)
            keys += [
                artifacts.predictions_artifact(p, v, s).key
                for v in p.classifier.variants
                for s in _sets_of(arm)
            ]
    return hashlib.sha256(json.dumps(sorted(keys)).encode()).hexdigest()[:12]


def arm_file_state(abl: Ablation, arm: Arm, stored: dict[str, Any]) -> str:
    """'current' when a stored arm result matches the arm's declaration and what its settings resolve to now;
    'declaration changed' or 'settings changed' (the profile or study overrides resolve to other artifacts), or
    'legacy' (written before arm identities: `ablate --rescore` records its identity)."""
    if "identity" not in stored and stored.get("spec_hash") == arm.legacy_spec_hash(
        abl.overrides, abl.profile
    ):
        return "legacy"
    if stored.get("spec_hash") != arm.spec_hash():
        return "declaration changed"
    if stored.get("identity") != arm_identity(abl, arm):
        return "settings changed"
    return "current"


# --- running ----------------------------------------------------------------------------------------------------


def _run_stages(abl: Ablation, p: Profile, arm: Arm, in_process: bool) -> None:
    """Make every artifact the experiment needs: generator and augmentation (if a variant reads reasonings),
    each classifier, and its predictions on the arm's sets."""
    needs_reasonings = any(v != "qa" for v in p.classifier.variants)
    steps: list[tuple[str, ...]] = []
    if needs_reasonings:
        steps += [("train-generator",), ("augment",)]
    steps += [("train-classifier", "--variant", v) for v in p.classifier.variants]
    steps += [
        ("predict", *[x for v in p.classifier.variants for x in ("--variant", v)], "--sets", *_sets_of(arm))
    ]
    if in_process:  # the tests: the same steps as functions, without a process per step
        from .augment import augment
        from .classifiers import predict_sets, train_classifier
        from .generator import train_generator

        if needs_reasonings:
            train_generator(p)
            augment(p)
        for v in p.classifier.variants:
            train_classifier(p, v)
        predict_sets(p, list(p.classifier.variants), _sets_of(arm))
        return
    from .study import run_cli_stage

    for step in steps:
        run_cli_stage(abl.profile, override_args(p), p.experiment, *step)


def _seed_result(abl: Ablation, arm: Arm, seed: int) -> dict[str, Any]:
    """Metrics of every variant of one seed (from the stored predictions) and the paired comparisons with the
    control on test (and out-of-domain sets when the arm asks)."""
    from .evaluate import (
        label_space_sensitivity,
        per_class_difference,
        predictions_by_classifier,
        select_qra_decoding,
    )

    control_p = experiment_profile(abl, arm, seed, True)
    arm_p = experiment_profile(abl, arm, seed, False)
    ev = arm_p.evaluate
    sets = evaluation_sets(arm_p.data, include_ood=arm.ood)
    labels = list(task_of(arm_p.data).labels)
    kw = {
        "n_bootstrap": ev.bootstrap_samples,
        "level": ev.ci_level,
        "seed": arm_p.data.seed,
        "labels": labels,
    }
    rows: dict[str, dict[str, list]] = {s: {} for s in _sets_of(arm)}
    keys = {}
    for p in (control_p, arm_p):
        for v in p.classifier.variants:
            keys[f"classifier_{v}"] = artifacts.classifier_artifact(p, v).key
            for s in rows:
                rows[s][v] = artifacts.read_predictions_artifact(p, v, s)
    gold = {s: [labels[i] for i in sets[s]["label"]] for s in rows}
    preds = {s: predictions_by_classifier(rows[s]) for s in rows}
    validation = {
        k: classification_metrics(gold["validation"], v, **kw) for k, v in preds["validation"].items()
    }
    selected = select_qra_decoding(validation)
    if selected:  # the decoding validation chose, under one name for every seed (the headline comparison)
        for s in preds:
            preds[s]["qra_selected"] = preds[s][selected]
    out: dict[str, Any] = {
        "seed": seed,
        "experiments": {"control": control_p.experiment, "arm": arm_p.experiment},
        "artifact_keys": keys,
        "qra_selected_decoding": selected,
        "validation_accuracy": {k: m["accuracy"] for k, m in validation.items()},
        "sets": {},
        "_rows_correct": {},
    }
    for s in [x for x in rows if x != "validation"]:
        from .data import ood_label_space

        space = ood_label_space(sets[s]) if s.startswith("ood_") else None
        metrics = {}
        for k, pr in preds[s].items():
            m = classification_metrics(gold[s], pr, label_space=space, **kw)
            metrics[k] = {x: m[x] for x in ("n_test", "accuracy", "accuracy_ci", "macro_f1", "macro_f1_ci")}
            metrics[k]["parse_failures"] = m["parse_failures"]
        comparisons = []
        for k in preds[s]:
            if k == arm.control:
                continue
            c = paired_bootstrap_difference(
                gold[s],
                preds[s][arm.control],
                preds[s][k],
                ev.bootstrap_samples,
                ev.ci_level,
                arm_p.data.seed,
                space,
                labels,
            )
            mc = mcnemar(gold[s], preds[s][arm.control], preds[s][k])
            # per-row correctness for the seeds x rows interval (summarize_seeds); never written to JSON
            out["_rows_correct"][f"{s}:{k}-{arm.control}"] = (
                [p == g for p, g in zip(preds[s][arm.control], gold[s], strict=True)],
                [p == g for p, g in zip(preds[s][k], gold[s], strict=True)],
                rows_fingerprint(gold[s]),
            )
            comparisons.append(
                {
                    "first": arm.control,
                    "second": k,
                    "second_is_selected_decoding": k == selected,
                    **c,
                    "only_first_correct": mc["only_first_correct"],
                    "only_second_correct": mc["only_second_correct"],
                    "p_value": mc["p_value"],
                    # where an out-of-domain difference comes from (one class, or all of them)
                    **(
                        {
                            "per_gold_class": per_class_difference(
                                gold[s], preds[s][arm.control], preds[s][k], labels
                            )
                        }
                        if s.startswith("ood_")
                        else {}
                    ),
                }
            )
        out["sets"][s] = {"classifiers": metrics, "comparisons": comparisons}
        if space is not None and len(space) < len(
            labels
        ):  # ISEAR: the sensitivity to its 4-class label space
            out["sets"][s]["label_space_sensitivity"] = label_space_sensitivity(
                gold[s], {v: rows[s][v] for v in rows[s]}, space
            )
    return out


def for_json(per_seed: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per-seed results without their per-row working data."""
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in per_seed]


def rows_fingerprint(gold: list[str]) -> str:
    """Which rows (in which order) a per-row comparison scored: two seeds' rows pair up only when these agree."""
    return hashlib.sha256("\n".join(gold).encode()).hexdigest()[:16]


RowsCorrect = tuple[list[bool], list[bool], str]  # control correct, variant correct, rows_fingerprint


def rows_correct_to_json(rows: dict[str, RowsCorrect]) -> dict[str, dict[str, str]]:
    """One seed's per-row correctness (per comparison) as compact strings of 0/1, for the interim file."""
    bits = lambda xs: "".join("1" if x else "0" for x in xs)  # noqa: E731
    return {name: {"first": bits(a), "second": bits(b), "rows": fp} for name, (a, b, fp) in rows.items()}


def rows_correct_from_json(stored: dict[str, dict[str, str]]) -> dict[str, RowsCorrect]:
    return {
        name: ([c == "1" for c in v["first"]], [c == "1" for c in v["second"]], v["rows"])
        for name, v in stored.items()
    }


def summarize_seeds(per_seed: list[dict[str, Any]], level: float = 0.95) -> dict[str, Any]:
    """Per set and compared classifier: the per-seed differences, their mean, SD and t-interval, how many
    seeds the observed SD needs to detect a 3-point difference, and (with 2+ seeds scored on the same rows) the
    accuracy difference's seeds x rows bootstrap interval."""
    out: dict[str, Any] = {}
    for s in per_seed[0]["sets"]:
        for i, c in enumerate(per_seed[0]["sets"][s]["comparisons"]):
            name = f"{s}:{c['second']}-{c['first']}"
            acc = [r["sets"][s]["comparisons"][i]["accuracy_difference"] for r in per_seed]
            f1 = [r["sets"][s]["comparisons"][i]["macro_f1_difference"] for r in per_seed]
            summ = seed_summary(acc, level)
            out[name] = {
                "set": s,
                "first": c["first"],
                "second": c["second"],
                "accuracy_difference_per_seed": acc,
                "accuracy_difference": summ,
                "macro_f1_difference": seed_summary(f1, level),
                "seeds_needed_for_3_points": seeds_needed(summ["sd"], 0.03),
            }
            rows = [r.get("_rows_correct", {}).get(name) for r in per_seed]
            if len(rows) > 1 and all(x is not None for x in rows) and all(x[2] == rows[0][2] for x in rows):
                out[name]["accuracy_difference_seeds_x_rows"] = seeds_items_bootstrap(
                    np.array([x[0] for x in rows]), np.array([x[1] for x in rows]), level=level
                )
    return out


def interim_record(
    abl: Ablation,
    arm: Arm,
    per_seed: list[dict[str, Any]],
    seed_minutes: list[float | None],
    level: float,
    identity: str,
) -> dict[str, Any]:
    """The interim file of a stopped arm: its finished seeds, clearly not the arm's result. It carries the
    per-row correctness and minutes of each seed, so a later run on another machine (without this one's store)
    resumes after the last finished seed instead of retraining it."""
    return {
        "study": abl.study,
        "arm": arm.name,
        "partial": True,
        "seeds_done": [r["seed"] for r in per_seed],
        "seeds_declared": arm.seeds,
        "spec_hash": arm.spec_hash(),
        "identity": identity,
        "per_seed": for_json(per_seed),
        "per_seed_rows_correct": [rows_correct_to_json(r.get("_rows_correct", {})) for r in per_seed],
        "seed_minutes": seed_minutes,
        "summary": summarize_seeds(per_seed, level),
        "code_version": code_version(),
        "written_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def resumable_seeds(
    abl: Ablation, arm: Arm, identity: str | None = None
) -> dict[int, tuple[dict[str, Any], float | None]]:
    """The finished seeds of a stopped run of this arm (from its interim file), with their minutes, when the
    arm's declaration and identity are unchanged since; {} otherwise (or for an interim file written before
    per-row correctness was kept: its seeds are recomputed, from the store when it still holds them)."""
    path = abl.results_dir / f"{arm.name}.partial.json"
    if not path.exists():
        return {}
    stored = json.loads(path.read_text())
    if (
        stored.get("spec_hash") != arm.spec_hash()
        or stored.get("identity") != (identity or arm_identity(abl, arm))
        or "per_seed_rows_correct" not in stored
    ):
        return {}
    minutes = stored.get("seed_minutes") or [None] * len(stored["per_seed"])
    return {
        r["seed"]: ({**r, "_rows_correct": rows_correct_from_json(rows)}, m)
        for r, rows, m in zip(stored["per_seed"], stored["per_seed_rows_correct"], minutes, strict=True)
        if r["seed"] in arm.seeds
    }


def rescore_arm(abl: Ablation, arm: Arm) -> dict[str, Any]:
    """Recompute a finished arm's results from the predictions in the store (no training, no generation): for
    metrics added after it ran. Its times and the code that ran it are kept; the rescoring is recorded."""
    out_path = abl.results_dir / f"{arm.name}.json"
    if not out_path.exists():  # a stopped arm: its finished seeds (still interim)
        out_path = abl.results_dir / f"{arm.name}.partial.json"
    if not out_path.exists():
        raise ProfileError(f"{out_path}: arm {arm.name} has no finished seed; run it first")
    old = json.loads(out_path.read_text())
    legacy = arm_file_state(abl, arm, old) == "legacy"
    if old.get("spec_hash") != arm.spec_hash() and not legacy:
        raise ProfileError(f"{abl.path}: arm {arm.name} was declared differently when it ran; run it again")
    identity = arm_identity(abl, arm)
    if not legacy and old.get("identity") != identity:
        raise ProfileError(
            f"{out_path}: arm {arm.name} ran with settings that resolve to other artifacts than the study "
            "declares now (the profile or the study overrides changed); run it again"
        )
    level = experiment_profile(abl, arm, arm.seeds[0], False).evaluate.ci_level
    seeds = old.get("seeds_done", arm.seeds)
    per_seed = [_seed_result(abl, arm, seed) for seed in seeds]  # ArtifactMissing if a prediction is gone
    result = {
        **old,
        "spec_hash": arm.spec_hash(),
        "identity": identity,  # a legacy file is rescored from the predictions its settings resolve to today
        "per_seed": for_json(per_seed),
        "summary": summarize_seeds(per_seed, level),
        "rescored": {"code_version": code_version(), "at": time.strftime("%Y-%m-%d %H:%M:%S")},
    }
    if old.get("partial"):  # keep what a resume on another machine needs
        result["per_seed_rows_correct"] = [rows_correct_to_json(r["_rows_correct"]) for r in per_seed]
    write_json(out_path, result)
    print(f"[ablate] {arm.name}: rescored from the stored predictions; wrote {out_path}")
    return result


def run_arm(abl: Ablation, arm: Arm, in_process: bool = False) -> dict[str, Any]:
    out_path = abl.results_dir / f"{arm.name}.json"
    spec, identity = arm.spec_hash(), arm_identity(abl, arm)
    refuse_redeclared(abl, arm)
    declared_in = declaration_commit(abl, arm)
    if out_path.exists():
        stored = json.loads(out_path.read_text())
        state = arm_file_state(abl, arm, stored)
        if state == "current":
            print(f"[ablate] {arm.name}: done earlier ({out_path}); skipped")
            return stored
        if state == "legacy":
            raise ProfileError(
                f"{out_path}: written before arm identities; run `ablate {abl.path} --rescore` once to record it"
            )
        print(f"[ablate] {arm.name}: {out_path} is stale ({state}); running it again", flush=True)
    est = estimate_minutes(abl, arm)
    print(
        f"[ablate] {arm.name}: estimated {est:.0f} CPU minutes for what is not in the store yet", flush=True
    )
    partial_path = abl.results_dir / f"{arm.name}.partial.json"
    resumed = resumable_seeds(abl, arm, identity)
    per_seed: list[dict[str, Any]] = []
    seed_minutes: list[float | None] = []
    level = experiment_profile(abl, arm, arm.seeds[0], False).evaluate.ci_level
    for seed in arm.seeds:
        if seed in resumed:  # finished by a stopped run (maybe on another machine): not trained again
            per_seed.append(resumed[seed][0])
            seed_minutes.append(resumed[seed][1])
            print(
                f"[ablate] {arm.name}: seed {seed} taken from {partial_path} (finished earlier)", flush=True
            )
            continue
        t0 = time.time()
        for control in (True, False):
            _run_stages(abl, experiment_profile(abl, arm, seed, control), arm, in_process)
        per_seed.append(_seed_result(abl, arm, seed))
        seed_minutes.append((time.time() - t0) / 60)
        # a stopped run keeps its finished seeds (clearly marked as not the arm result)
        if seed != arm.seeds[-1]:
            record = interim_record(abl, arm, per_seed, seed_minutes, level, identity)
            write_json(partial_path, {**record, "declared_in": declared_in})
            print(f"[ablate] {arm.name}: seed {seed} done; interim results in {partial_path}", flush=True)
    result = {
        "study": abl.study,
        "arm": arm.name,
        "hypothesis": arm.hypothesis,
        "outcome": arm.outcome,
        "declaration": arm.declared(),
        "study_overrides": abl.overrides,
        "profile": abl.profile,
        "spec_hash": spec,
        "declared_in": declared_in,  # the commit that declared the arm (before its first seed ran)
        "identity": identity,
        "per_seed": for_json(per_seed),
        "summary": summarize_seeds(per_seed, level),
        "estimated_minutes": est,
        # the seeds' minutes, summed over the runs that made them (None where a seed's time was not kept)
        "seed_minutes": seed_minutes,
        "measured_minutes": sum(m for m in seed_minutes if m is not None),
        "seeds_resumed": sorted(resumed),
        "code_version": code_version(),
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    write_json(out_path, result)
    partial_path.unlink(missing_ok=True)
    print(
        f"[ablate] {arm.name}: {result['measured_minutes']:.0f} min (estimated {est:.0f}); wrote {out_path}"
    )
    return result


def run_ablation(
    abl: Ablation,
    only: list[str] | None = None,
    dry_run: bool = False,
    in_process: bool = False,
    rescore: bool = False,
):
    """Run the study's arms in order (or only the named ones), then write summary.json and the forest plot.
    `rescore`: recompute the finished ones among them from the stored predictions instead."""
    arms = [a for a in abl.arms if not only or a.name in only]
    missing = set(only or []) - {a.name for a in abl.arms}
    if missing:
        raise ProfileError(f"{abl.path}: no arm named {sorted(missing)}")
    if rescore:
        for a in arms:
            if any((abl.results_dir / f"{a.name}{x}").exists() for x in (".json", ".partial.json")):
                rescore_arm(abl, a)
        return write_summary(abl)
    rates = _measured_rates()
    for a in arms:
        print(
            f"[ablate] {a.name}: seeds {a.seeds}, variants {a.variants}, ~{estimate_minutes(abl, a, rates):.0f} min"
        )
    for p in abl.planned:
        print(f"[ablate] {p.name}: planned, not runnable yet (needs {p.needs})")
    if dry_run:
        return None
    for a in arms:
        run_arm(abl, a, in_process)
    return write_summary(abl)


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
    """summary.json from the current arm files, and the forest plot."""
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
    write_json(abl.results_dir / "summary.json", summary)
    if done:
        from .figures import ablation_forest

        ablation_forest(done, figures_root() / "ablations" / f"{abl.study}_forest.png")
    if len(curve) > 1:
        from .figures import training_length_plot

        training_length_plot(curve, figures_root() / "ablations" / f"{abl.study}_training_length.png")
    return summary
