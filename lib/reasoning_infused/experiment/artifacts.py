"""The artifact store: one folder per stage output, named by the hash of exactly what made it.

    runs/artifacts/<stage>/<key>/      stage: generator | augment | classifier | predictions

A key is the hash of the resolved settings the stage depends on, the keys of its inputs, the prompt version and
the fingerprints of the data files it reads (`*_artifact` functions below say which). An artifact is reused only
when its key matches, so a changed setting computes into a new folder and never overwrites another; experiments
with the same upstream settings share those artifacts. Each artifact's `metadata.json` (written last: it marks
the artifact complete) holds its key, its inputs' keys and the settings that made it.

This module owns paths, keys, metadata and loading of artifacts and of an experiment's saved results; the
stage modules (generator, augment, classifiers, evaluate) use it and never reach into each other.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasoning_infused.base.locations import store_root
from reasoning_infused.base.provenance import read_jsonl, write_json
from reasoning_infused.data.files import DataConfig
from reasoning_infused.data.prompts import VARIANTS, multitask_version, prompt_version
from reasoning_infused.data.reasoning_triples import reasoning_fingerprint
from reasoning_infused.data.rows import evaluation_set_identity, split_fingerprint, task_of
from reasoning_infused.experiment.config import flatten, settings_diff
from reasoning_infused.experiment.settings import Profile, TrainConfig, resolve_dtype

STAGES = ("generator", "augment", "classifier", "predictions", "heldout_reasonings")
# Files a complete artifact must hold besides metadata.json (any one of each tuple).
_REQUIRED: dict[str, list[tuple[str, ...]]] = {
    "generator": [("adapter_model.safetensors", "model.safetensors"), ("tokenizer_config.json",)],
    "classifier": [("adapter_model.safetensors", "model.safetensors"), ("tokenizer_config.json",)],
    "augment": [("reasonings.jsonl",), ("dataset",)],
    "predictions": [("predictions.jsonl",)],
    "heldout_reasonings": [("reasonings.jsonl",)],
}
# Settings that change speed or logging only, never a result: left out of every key.
_TRAIN_NOT_IN_KEY = ("logging_steps", "save_steps")
# Settings added after artifacts existed: in the key only when set, so the keys of earlier runs stay valid.
_TRAIN_IN_KEY_ONLY_WHEN_SET = {"label_loss_share": 0.0}


class ArtifactMissing(FileNotFoundError):
    """An input artifact has not been made yet; the message says which command makes it."""


@dataclass(frozen=True)
class Artifact:
    stage: str
    settings: dict[str, Any]  # the resolved settings this stage depends on
    inputs: dict[str, str] = field(default_factory=dict)  # input name -> that artifact's key
    label: str = ""  # for messages: "classifier qra", "predictions qa/test"
    command: str = ""  # the command that makes it, for "run ... first" messages

    @property
    def key(self) -> str:
        blob = json.dumps(
            {"stage": self.stage, "settings": self.settings, "inputs": self.inputs}, sort_keys=True
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    @property
    def path(self) -> Path:
        return store_root() / self.stage / self.key

    def missing_files(self) -> list[str]:
        return [
            " or ".join(alts)
            for alts in _REQUIRED[self.stage]
            if not any((self.path / a).exists() for a in alts)
        ]

    def is_complete(self) -> bool:
        meta = self.path / "metadata.json"
        if not meta.exists():
            return False
        try:
            ok = json.loads(meta.read_text()).get("key") == self.key
        except json.JSONDecodeError:
            ok = False
        return ok and not self.missing_files()

    def metadata(self) -> dict[str, Any]:
        path = self.path / "metadata.json"
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ArtifactMissing(
                f"{path}: not valid JSON ({e}); move the folder away to recompute it"
            ) from None

    def require(self) -> Path:
        """The artifact's folder, or an error naming the command that makes it."""
        if not self.is_complete():
            raise ArtifactMissing(
                f"{self.label or self.stage} not made yet for these settings ({self.path}); run `{self.command}`"
            )
        return self.path

    def begin(self, force: bool = False) -> Path:
        """Prepare the folder for (re)computing. `force`, or a folder whose metadata claims completeness while
        files are missing, moves the old folder aside (renamed, never deleted); a partial run is kept to resume."""
        claims_done = (self.path / "metadata.json").exists()
        if self.path.exists() and (force or (claims_done and not self.is_complete())):
            aside = self.path.with_name(f"{self.key}.old-{time.strftime('%Y%m%d-%H%M%S')}")
            why = (
                "--force"
                if force
                else f"incomplete (missing: {', '.join(self.missing_files()) or 'metadata'})"
            )
            print(f"[{self.stage}] {self.path} {why}: moved to {aside.name}", flush=True)
            self.path.rename(aside)
        self.path.mkdir(parents=True, exist_ok=True)
        write_json(self.path / "settings.json", self._identity())
        return self.path

    def finish(self, meta: dict[str, Any], profile: Profile | None = None) -> dict[str, Any]:
        """Write metadata.json (last): the artifact is complete from here on. With `profile`, the full resolved
        settings of the experiment that made it are recorded too (the key covers only the ones that matter)."""
        made_by = (
            {"made_by_experiment": profile.experiment, "resolved_profile": profile.to_dict()}
            if profile
            else {}
        )
        full = {**self._identity(), **made_by, **meta}
        write_json(self.path / "metadata.json", full)
        return full

    def _identity(self) -> dict[str, Any]:
        return {"stage": self.stage, "key": self.key, "inputs": self.inputs, "settings": self.settings}


# --- which settings each stage depends on -----------------------------------------------------------------------


def _train_settings(tc: TrainConfig) -> dict[str, Any]:
    return {
        k: v
        for k, v in dataclasses.asdict(tc).items()
        if k not in _TRAIN_NOT_IN_KEY
        and not (k in _TRAIN_IN_KEY_ONLY_WHEN_SET and v == _TRAIN_IN_KEY_ONLY_WHEN_SET[k])
    }


def _model_settings(p: Profile) -> dict[str, Any]:
    m = dataclasses.asdict(p.model)
    if p.model.source != "tiny-random":
        m.pop("tiny_hidden_size")
        m.pop("tiny_layers")
    m["dtype"] = str(resolve_dtype(p.model.dtype)).replace("torch.", "")
    return m


def train_rows_identity(d: DataConfig) -> dict[str, Any]:
    """Which classifier training rows (the stratified subsample of train): file, size, sampling seed, and the task
    (its labels, prompts and sources; no entry for the default emotion task, so earlier keys stay valid)."""
    identity = {"source": split_fingerprint(d, "train"), "size": d.train_size, "seed": d.seed}
    task = task_of(d).identity()
    return identity if task is None else {**identity, "task": task}


def generator_artifact(p: Profile) -> Artifact:
    g = p.generator
    sources = ["hub"] if p.data.reasoning_hub_id else sorted(s for s, n in g.sources.items() if n > 0)
    return Artifact(
        "generator",
        {
            "model": _model_settings(p),
            "sources": g.sources,
            "heldout_size": g.heldout_size,
            "train": _train_settings(g.train),
            "reasoning_data": reasoning_fingerprint(p.data, sources),
            "sampling_seed": p.data.seed,
            "prompt_version": prompt_version(),
        }
        | ({} if task_of(p.data).identity() is None else {"task": task_of(p.data).identity()}),
        label="generator",
        command=f"python -m reasoning_infused train-generator {cli_args(p)}",
    )


def augment_decoding(p: Profile) -> dict[str, Any]:
    """The decoding settings a generated reasoning depends on (repetition control only when set: earlier keys
    stay valid)."""
    a = p.augment
    decoding: dict[str, Any] = {
        "backend": a.backend,
        "max_new_tokens": a.max_new_tokens,
        "do_sample": a.do_sample,
    }
    if a.do_sample:
        decoding |= {"temperature": a.temperature, "top_p": a.top_p, "seed": a.seed}
    if a.no_repeat_ngram_size:
        decoding["no_repeat_ngram_size"] = a.no_repeat_ngram_size
    if a.repetition_penalty != 1.0:
        decoding["repetition_penalty"] = a.repetition_penalty
    return decoding


def heldout_reasonings_artifact(p: Profile, rows: int, seed: int) -> Artifact:
    """The generator's reasonings for emotion training rows outside the classifier's training subsample: what a
    generator candidate is judged on (the generator sweep)."""
    return Artifact(
        "heldout_reasonings",
        {
            "decoding": augment_decoding(p),
            "rows": {"outside": train_rows_identity(p.data), "size": rows, "seed": seed},
            "prompt_version": prompt_version(),
        },
        inputs={"generator": generator_artifact(p).key},
        label="held-out reasonings",
        command="python -m reasoning_infused generator-sweep <sweep YAML>",
    )


def augment_artifact(p: Profile) -> Artifact:
    return Artifact(
        "augment",
        {
            "decoding": augment_decoding(p),
            "train_rows": train_rows_identity(p.data),
            "prompt_version": prompt_version(),
        },
        inputs={"generator": generator_artifact(p).key},
        label="augmentation",
        command=f"python -m reasoning_infused augment {cli_args(p)}",
    )


def sample_profiles(p: Profile) -> list[Profile]:
    """The profile once per reasoning sample (`classifier.reasoning_samples`): sampling seed augment.seed + j."""
    k = p.classifier.reasoning_samples
    if k == 1:
        return [p]
    return [
        dataclasses.replace(p, augment=dataclasses.replace(p.augment, seed=p.augment.seed + j))
        for j in range(k)
    ]


def augment_artifacts(p: Profile) -> list[Artifact]:
    """Every augmentation a reasoning classifier of this profile trains on (one unless reasoning_samples > 1)."""
    return [augment_artifact(q) for q in sample_profiles(p)]


def classifier_artifact(p: Profile, variant: str) -> Artifact:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    settings: dict[str, Any] = {
        "variant": variant,
        "model": _model_settings(p),
        "train": _train_settings(p.classifier.train),
        "train_rows": train_rows_identity(p.data),
        "prompt_version": prompt_version(),
    }
    inputs = {}
    if variant != "qa":  # Q->RA and Q->AR train on the reasonings; Q->A on the same rows without them
        settings["drop_flagged"] = p.augment.drop_flagged
        if (
            p.classifier.reasoning_transform != "none"
        ):  # (absent when none: the keys of earlier runs stay valid)
            settings["reasoning_transform"] = p.classifier.reasoning_transform
        if p.classifier.reasoning_source != "generated":  # human reasonings: no generator, no augmentation
            settings["reasoning_source"] = p.classifier.reasoning_source
        elif p.classifier.reasoning_samples > 1:  # (absent when 1: the keys of earlier runs stay valid)
            settings["reasoning_samples"] = p.classifier.reasoning_samples
            inputs |= {f"augment_{j}": a.key for j, a in enumerate(augment_artifacts(p))}
        else:
            inputs["augment"] = augment_artifact(p).key
    if variant == "multitask":
        settings["multitask_prompt_version"] = multitask_version()
    return Artifact(
        "classifier",
        settings,
        inputs,
        label=f"classifier {variant}",
        command=f"python -m reasoning_infused train-classifier --variant {variant} {cli_args(p)}",
    )


def predictions_artifact(p: Profile, variant: str, split: str) -> Artifact:
    """Predictions of one classifier (or the zero-shot base model) on one evaluation set."""
    settings: dict[str, Any] = {
        "variant": variant,
        "set": evaluation_set_identity(p.data, split),
        "prompt_version": prompt_version(),
    }
    if variant == "qra":
        settings["decoding"] = {
            "max_new_tokens": p.classifier.max_new_tokens,
            "backend": p.classifier.backend,
        }
        c = p.classifier
        if c.self_consistency:  # (absent when off: the keys of earlier runs stay valid)
            settings["self_consistency"] = {
                "k": c.self_consistency,
                "temperature": c.sc_temperature,
                "top_p": c.sc_top_p,
                "seed": c.sc_seed,
                # the samples drawn depend on how: `buffered_generate` with one generator per batch (before it,
                # `model.generate`, never finished a run)
                "sampler": "buffered_generate",
            }
    inputs = {}
    if variant == "zero_shot":
        settings["model"] = _model_settings(p)
    else:
        inputs["classifier"] = classifier_artifact(p, variant).key
    return Artifact(
        "predictions",
        settings,
        inputs,
        label=f"predictions {variant}/{split}",
        command=f"python -m reasoning_infused evaluate {cli_args(p)}",
    )


def experiment_artifacts(p: Profile) -> dict[str, Artifact]:
    """The training artifacts an experiment uses, by name (generator, augment, classifier_<variant>)."""
    out = {"generator": generator_artifact(p), "augment": augment_artifact(p)}
    for v in p.classifier.variants:
        out[f"classifier_{v}"] = classifier_artifact(p, v)
    return out


def cli_args(p: Profile) -> str:
    """`--profile P [--set k=v ...] [--name E]` that reproduces this experiment's settings on the command line."""
    parts = [f"--profile {p.name}"]
    parts += [f"--set {k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in p.overrides.items()]
    from reasoning_infused.experiment.config import experiment_name

    if p.experiment and p.experiment != experiment_name(p.name, p.overrides):
        parts.append(f"--name {p.experiment}")
    return " ".join(parts)


# --- loading ------------------------------------------------------------------------------------------------------


CT2_COMPUTE_TYPES = {"ct2": "float32", "ct2-int8": "int8"}  # backend name -> CTranslate2 compute type


def reasonings_path(p: Profile) -> Path:
    return augment_artifact(p).path / "reasonings.jsonl"


def read_reasonings(p: Profile) -> list[dict[str, Any]]:
    """The augmentation's rows as written so far (complete or not)."""
    return read_jsonl(reasonings_path(p))


def augmented_dataset(p: Profile):
    """The finished augmentation as a `datasets.Dataset` (id, text, label name, reasoning, ...)."""
    from datasets import load_from_disk

    return load_from_disk(str(augment_artifact(p).require() / "dataset"))


def read_predictions_artifact(p: Profile, variant: str, split: str) -> list[dict[str, Any]]:
    return read_jsonl(predictions_artifact(p, variant, split).require() / "predictions.jsonl")


# --- an experiment's saved results (results/<experiment>/) -------------------------------------------------------


def predictions_file(p: Profile, variant: str, split: str = "test") -> Path:
    return p.results_dir / "predictions" / f"{variant}__{split}.jsonl"


def load_metrics(p: Profile) -> dict[str, Any]:
    path = p.results_dir / "metrics.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `python -m reasoning_infused evaluate {cli_args(p)}`")
    return json.loads(path.read_text())


def load_predictions(p: Profile, variant: str, split: str = "test") -> list[dict[str, Any]]:
    path = predictions_file(p, variant, split)
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `python -m reasoning_infused evaluate {cli_args(p)}`")
    return read_jsonl(path)


# --- what is in the store -------------------------------------------------------------------------------------


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def list_artifacts(p: Profile | None = None) -> list[dict[str, Any]]:
    """Every folder in the store: stage, key, state, size, date, and (given a profile) the settings that differ
    from what that profile would use for the same stage (and variant)."""
    rows = []
    root = store_root()
    mine: dict[str, Artifact] = {}
    if p is not None:
        mine = {"generator": generator_artifact(p), "augment": augment_artifact(p)}
        for v in VARIANTS:
            mine[f"classifier:{v}"] = classifier_artifact(p, v)
    for stage in STAGES:
        for d in sorted((root / stage).glob("*")) if (root / stage).exists() else []:
            ident_path = d / "metadata.json" if (d / "metadata.json").exists() else d / "settings.json"
            try:
                ident = json.loads(ident_path.read_text())
            except (OSError, json.JSONDecodeError):
                ident = {}
            settings = ident.get("settings", {})
            state = "complete" if (d / "metadata.json").exists() else "partial"
            if ".old-" in d.name:
                state = "moved aside"
            row = {
                "stage": stage,
                "key": d.name,
                "state": state,
                "variant": settings.get("variant", ""),
                "size_mb": round(_size(d) / 2**20, 1),
                "date": time.strftime("%Y-%m-%d %H:%M", time.localtime(d.stat().st_mtime)),
                "path": str(d),
            }
            if p is not None and settings:
                ref = mine.get(f"classifier:{row['variant']}" if stage == "classifier" else stage)
                if ref is not None:
                    diff = settings_diff(ref.settings, settings)
                    row["differs_from_profile"] = (
                        "" if d.name == ref.key else _fmt_diff(diff, ref.inputs, ident)
                    )
            rows.append(row)
    return rows


def _fmt_diff(diff: dict[str, Any], ref_inputs: dict[str, str], ident: dict[str, Any]) -> str:
    parts = [f"{k}={v}" for k, v in flatten(diff).items()]
    for name, key in ident.get("inputs", {}).items():
        if ref_inputs.get(name) != key:
            parts.append(f"{name} input {key}")
    return "; ".join(parts) or "same settings, other inputs"


def remove_artifact(path: Path) -> None:
    """Delete one store folder (the `artifacts --remove` command); refuses anything outside the store."""
    path = Path(path).resolve()
    if store_root().resolve() not in path.parents:
        raise ValueError(f"{path} is not inside the artifact store {store_root()}")
    shutil.rmtree(path)
