"""An ablation study as declared: arms (hypothesis, outcome, overrides, seeds), their experiments, the
commit that declared each, their identity, and the time estimate of what is not in the store yet."""

from __future__ import annotations

import hashlib
import json
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reasoning_infused.base.locations import check_safe_name, results_root
from reasoning_infused.data.prompts import VARIANTS
from reasoning_infused.experiment import artifacts
from reasoning_infused.experiment.config import (
    ProfileError,
    load_profile,
    parse_override,
    read_yaml_mapping,
)
from reasoning_infused.experiment.settings import Profile
from reasoning_infused.study.ablation_rows import rows_correct_from_json
from reasoning_infused.study.verdicts import Rule, VerdictRuleError, parse_rules

# Fallback rates (2 CPU cores, default profile, measured in the committed default study) used for the time
# estimate only while the store holds no artifact of the same kind to measure from.
_FALLBACK_SECONDS = {
    "train_row": 0.19,
    "augment_row": 0.14,
    "predict_row_qa": 0.042,
    "predict_row_qra": 0.22,
    # one sampled reasoning and the labels scored after it, per row (self-consistency): 2.5 rows/s on 2 cores
    # for the qra_gap models' validation rows, the first time it ran at scale
    "predict_row_qra_sample": 0.40,
}


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


def measured_rates() -> dict[str, float]:
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
            sc = (meta["settings"].get("self_consistency") or {}).get("k", 0)
            if sc:  # the greedy pass counted as one more sample
                per_variant.setdefault("predict_row_qra_sample", []).append(
                    meta["wall_seconds"] / (meta["rows"] * (sc + 1))
                )
            else:
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
    rates = rates or measured_rates()
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
                for s in arm_sets(arm):
                    if not artifacts.predictions_artifact(p, v, s).is_complete():
                        if s in ("test", "validation"):
                            size = (p.data.test_size if s == "test" else p.data.val_size) or 2000
                        else:
                            size = p.data.ood_size or _ood_pool_size(p, s)
                        total += size * rates["predict_row_qra" if v == "qra" else "predict_row_qa"]
                        if v == "qra":  # k sampled reasonings per row on top of the greedy decoding
                            total += size * p.classifier.self_consistency * rates["predict_row_qra_sample"]
    return total / 60


def _ood_pool_size(p: Profile, set_name: str) -> int:
    """Rows of a full out-of-domain pool (ood_size 0), for the estimate."""
    from reasoning_infused.data.emotion import load_ood

    return len(load_ood(set_name.removeprefix("ood_"), p.data.ood_dir, p.data.goemotions_test_only))


def arm_sets(arm: Arm) -> list[str]:
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
                for s in arm_sets(arm)
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
