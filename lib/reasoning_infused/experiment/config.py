"""Profiles: one YAML file per experiment, parsed into typed dataclasses.

An unknown key, a missing section or a value of the wrong type is a `ProfileError` that names the key
(for example ``classifier.train.learning_rate``). Profiles live in ``lib/reasoning_infused/experiment/profiles``;
``--profile`` also accepts a path to a YAML file of your own.

A profile plus `--set` overrides is an *experiment*: its results go to ``results/<experiment>/``. The name is
``--name`` or derived from the profile and the settings that differ from it (``default`` only for the unmodified
default profile), so overrides never write into another experiment's folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from reasoning_infused.base.locations import REPO_ROOT, check_safe_name
from reasoning_infused.data.files import DataConfig
from reasoning_infused.data.prompts import REASONING_TRANSFORMS, VARIANTS
from reasoning_infused.data.reasoning_triples import REASONING_SOURCES
from reasoning_infused.data.task import TaskError, load_task
from reasoning_infused.experiment.settings import Profile, TrainConfig

PROFILE_DIR = Path(__file__).parent / "profiles"
__all__ = ["REPO_ROOT", "DataConfig", "Profile", "ProfileError", "load_profile"]


class ProfileError(ValueError):
    """A profile file or override is invalid; the message names the key."""


def _convert(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ProfileError(f"{key}: expected a mapping, got {type(value).__name__}")
        return _build(tp, value, key)
    if origin is list:
        if not isinstance(value, list):
            raise ProfileError(f"{key}: expected a list, got {value!r}")
        (item,) = typing.get_args(tp)
        return [_convert(v, item, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ProfileError(f"{key}: expected a mapping, got {value!r}")
        _, vt = typing.get_args(tp)
        return {str(k): _convert(v, vt, f"{key}.{k}") for k, v in value.items()}
    if origin in (typing.Union, types.UnionType):
        raise ProfileError(f"{key}: union types are not supported in profiles")
    if tp is bool:
        if not isinstance(value, bool):
            raise ProfileError(f"{key}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ProfileError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads `1e-4` (no dot) as a string; any float syntax is accepted
            try:
                value = float(value)
            except ValueError:
                raise ProfileError(f"{key}: expected a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise ProfileError(f"{key}: expected a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ProfileError(f"{key}: expected a string, got {value!r}")
        return value
    raise ProfileError(f"{key}: unsupported type {tp}")


def _build(cls: type, raw: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if not f.metadata.get("internal")}
    kwargs = {}
    for k, v in raw.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        if key == "seed":
            raise ProfileError(
                "the top-level 'seed' was split in three: data.seed (subsamples, bootstrap), "
                "generator.train.seed and classifier.train.seed (initialisation, batch order)"
            )
        if k not in names:
            raise ProfileError(f"unknown key '{key}' (allowed: {', '.join(sorted(names))})")
        kwargs[k] = _convert(v, hints[k], key)
    try:
        return cls(**kwargs)
    except TypeError as e:  # a required field is missing
        raise ProfileError(f"{prefix or 'profile'}: {e}") from e


def _validate(p: Profile) -> None:
    def check(ok: bool, key: str, msg: str) -> None:
        if not ok:
            raise ProfileError(f"{key}: {msg}")

    check(
        p.model.source in {"smollm2-gguf", "tiny-random", "hub", "random-init"},
        "model.source",
        f"must be smollm2-gguf, tiny-random, hub or random-init, got {p.model.source!r}",
    )
    check(
        p.model.source not in ("hub", "random-init") or bool(p.model.name_or_path),
        "model.name_or_path",
        f"required when source is {p.model.source}",
    )
    check(
        p.model.dtype in {"auto", "float32", "bfloat16", "float16"},
        "model.dtype",
        f"unknown dtype {p.model.dtype!r}",
    )
    for name in ("train_size", "val_size", "test_size", "ood_size"):
        check(getattr(p.data, name) >= 0, f"data.{name}", "must be >= 0")
    check(
        len(p.data.reasoning_columns) == 3,
        "data.reasoning_columns",
        "needs exactly 3 names (question, answer, reasoning)",
    )
    for src, n in p.generator.sources.items():
        check(
            src in REASONING_SOURCES,
            f"generator.sources.{src}",
            f"unknown source; known: {', '.join(REASONING_SOURCES)}",
        )
        check(n >= 0, f"generator.sources.{src}", "must be >= 0")
    for sec in ("generator", "classifier"):
        t: TrainConfig = getattr(p, sec).train
        check(t.learning_rate > 0, f"{sec}.train.learning_rate", "must be > 0")
        check(t.num_epochs > 0, f"{sec}.train.num_epochs", "must be > 0")
        check(t.batch_size >= 1, f"{sec}.train.batch_size", "must be >= 1")
        check(t.grad_accum >= 1, f"{sec}.train.grad_accum", "must be >= 1")
        check(t.max_length >= 8, f"{sec}.train.max_length", "must be >= 8")
        check(
            t.lr_scheduler in {"cosine", "linear", "constant", "constant_with_warmup"},
            f"{sec}.train.lr_scheduler",
            f"unknown scheduler {t.lr_scheduler!r}",
        )
        check(0 <= t.warmup_ratio < 1, f"{sec}.train.warmup_ratio", "must be in [0, 1)")
        check(0 <= t.label_loss_share < 1, f"{sec}.train.label_loss_share", "must be in [0, 1)")
        check(
            sec == "classifier" or t.label_loss_share == 0,
            f"{sec}.train.label_loss_share",
            "only classifiers have a label to weight",
        )
        check(t.lora_r >= 1, f"{sec}.train.lora_r", "must be >= 1")
        check(t.lora_alpha > 0, f"{sec}.train.lora_alpha", "must be > 0")
        check(0 <= t.lora_dropout < 1, f"{sec}.train.lora_dropout", "must be in [0, 1)")
        check(t.weight_decay >= 0, f"{sec}.train.weight_decay", "must be >= 0")
        check(t.logging_steps >= 1, f"{sec}.train.logging_steps", "must be >= 1")
        check(t.save_steps >= 0, f"{sec}.train.save_steps", "must be >= 0 (0 = only at the end)")
        check(t.seed >= 0, f"{sec}.train.seed", "must be >= 0")
        check(bool(t.lora_target_modules), f"{sec}.train.lora_target_modules", "needs at least one module")
        check(t.lora_top_layers >= 0, f"{sec}.train.lora_top_layers", "must be >= 0")
    check(
        p.augment.backend in {"transformers", "vllm", "ct2", "ct2-int8"},
        "augment.backend",
        f"unknown backend {p.augment.backend!r}",
    )
    check(
        not (p.augment.do_sample and p.augment.backend.startswith("ct2")),
        "augment.backend",
        "ct2 decodes greedily only (its sampling is not reproducible); use transformers for do_sample",
    )
    check(p.classifier.reasoning_samples >= 1, "classifier.reasoning_samples", "must be >= 1")
    check(
        p.classifier.reasoning_samples == 1 or p.augment.do_sample,
        "classifier.reasoning_samples",
        "several reasonings per row need sampled decoding (augment.do_sample=true): greedy ones would be identical",
    )
    check(
        not ("multitask" in p.classifier.variants and p.classifier.train.label_loss_share > 0),
        "classifier.train.label_loss_share",
        "the multi-task classifier's explain task has no label to weight: leave label_loss_share at 0",
    )
    check(p.augment.no_repeat_ngram_size >= 0, "augment.no_repeat_ngram_size", "must be >= 0 (0 = off)")
    check(p.augment.repetition_penalty >= 1.0, "augment.repetition_penalty", "must be >= 1.0 (1.0 = off)")
    check(
        p.augment.backend == "transformers"
        or (p.augment.no_repeat_ngram_size == 0 and p.augment.repetition_penalty == 1.0),
        "augment.backend",
        "repetition control (no_repeat_ngram_size, repetition_penalty) needs the transformers backend",
    )
    check(
        p.classifier.backend in {"transformers", "vllm", "ct2", "ct2-int8"},
        "classifier.backend",
        f"unknown backend {p.classifier.backend!r}",
    )
    check(
        p.classifier.reasoning_transform in REASONING_TRANSFORMS,
        "classifier.reasoning_transform",
        f"unknown transform {p.classifier.reasoning_transform!r} ({', '.join(REASONING_TRANSFORMS)})",
    )
    check(p.classifier.self_consistency >= 0, "classifier.self_consistency", "must be >= 0 (0 = off)")
    check(
        p.classifier.self_consistency == 0 or p.classifier.backend == "transformers",
        "classifier.self_consistency",
        "sampling at test time needs classifier.backend transformers",
    )
    check(p.classifier.sc_temperature > 0, "classifier.sc_temperature", "must be > 0")
    check(0 < p.classifier.sc_top_p <= 1, "classifier.sc_top_p", "must be in (0, 1]")
    check(
        p.classifier.reasoning_source in ("generated", "human"),
        "classifier.reasoning_source",
        f"must be generated or human, got {p.classifier.reasoning_source!r}",
    )
    try:
        task = load_task(p.data.task)
    except TaskError as e:
        raise ProfileError(f"task: {e}") from None
    check(
        p.classifier.reasoning_source != "human" or bool(task.reasoning_column),
        "classifier.reasoning_source",
        f"human reasonings need a task with a reasoning_column; task {task.name!r} has none",
    )
    check(
        not (task.reader == "esnli" and p.generator.sources.get("esnli", 0) > 0),
        "generator.sources",
        "the esnli task's generator must never see e-SNLI (its test explanations): drop the esnli source",
    )
    task_specific = {"drop_emotion_sentences", "grounded_from_text"}
    check(
        p.classifier.reasoning_transform not in task_specific
        or p.classifier.reasoning_transform in task.transforms,
        "classifier.reasoning_transform",
        f"{p.classifier.reasoning_transform} needs a task that declares it (emotion); task {task.name!r} does not",
    )
    check(
        0 < p.classifier.vllm_gpu_memory_utilization <= 1,
        "classifier.vllm_gpu_memory_utilization",
        "must be in (0, 1]",
    )
    check(p.augment.max_new_tokens >= 1, "augment.max_new_tokens", "must be >= 1")
    check(p.augment.temperature > 0, "augment.temperature", "must be > 0")
    check(0 < p.augment.top_p <= 1, "augment.top_p", "must be in (0, 1]")
    check(p.augment.seed >= 0, "augment.seed", "must be >= 0")
    check(p.generator.heldout_size >= 1, "generator.heldout_size", "must be >= 1")
    check(p.classifier.max_new_tokens >= 1, "classifier.max_new_tokens", "must be >= 1")
    check(p.classifier.predict_batch_size >= 1, "classifier.predict_batch_size", "must be >= 1")
    check(p.data.seed >= 0, "data.seed", "must be >= 0")
    check(
        p.model.tiny_hidden_size >= 8 and p.model.tiny_hidden_size % 4 == 0,
        "model.tiny_hidden_size",
        "must be >= 8 and a multiple of 4 (4 attention heads)",
    )
    check(p.model.tiny_layers >= 1, "model.tiny_layers", "must be >= 1")
    check(p.augment.batch_size >= 1, "augment.batch_size", "must be >= 1")
    for v in p.classifier.variants:
        check(v in VARIANTS, "classifier.variants", f"unknown variant {v!r} ({', '.join(VARIANTS)})")
    check(0 < p.evaluate.ci_level < 1, "evaluate.ci_level", "must be in (0, 1)")
    check(p.evaluate.bootstrap_samples >= 100, "evaluate.bootstrap_samples", "must be >= 100")
    check(len(p.evaluate.primary) == 2, "evaluate.primary", "needs exactly two classifiers: [first, second]")


def _set_dotted(raw: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    cur = raw
    for part in parts[:-1]:
        cur = cur.setdefault(part, {})
        if not isinstance(cur, dict):
            raise ProfileError(f"{dotted}: '{part}' is not a section")
    cur[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """`key.sub=value` with the value parsed as YAML (so numbers, booleans and lists work)."""
    if "=" not in text:
        raise ProfileError(f"override {text!r} must look like section.key=value")
    key, value = text.split("=", 1)
    key = key.strip()
    if key == "name":
        raise ProfileError("name: a profile's name cannot be overridden; name the experiment with --name")
    try:
        return key, yaml.safe_load(value)
    except yaml.YAMLError as e:
        raise ProfileError(f"{key}: value {value!r} is not valid YAML ({str(e).splitlines()[0]})") from None


def override_args(p: Profile) -> list[str]:
    """The profile's overrides as `key=value` strings that `load_profile` and `--set` accept again."""
    return [f"{k}={json.dumps(v)}" for k, v in p.overrides.items()]


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists and dicts that are settings (sources) stay values at their key."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict) and k not in ("sources",):
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def settings_diff(base: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    """Dotted keys whose value in `other` differs from `base` (both nested settings dicts), with other's values."""
    fb, fo = flatten(base), flatten(other)
    return {k: fo[k] for k in fo if fb.get(k, object()) != fo[k]}


def _slug(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return re.sub(r"[^A-Za-z0-9._+-]+", "", text.replace(", ", "+").replace(",", "+"))[:24]


def experiment_name(profile_name: str, diff: dict[str, Any]) -> str:
    """`<profile>` when nothing differs; else `<profile>-<leaf>=<value>...-<hash>`: readable, and unique because
    the hash covers every differing setting (two keys may share a leaf name)."""
    if not diff:
        return profile_name
    digest = hashlib.sha256(json.dumps(diff, sort_keys=True, default=str).encode()).hexdigest()[:6]
    parts = [
        f"{k.split('.')[-1]}={_slug(Path(v).stem if k == 'data.task' else v)}"
        for k, v in sorted(diff.items())
    ]
    readable = "-".join(parts)[:80].rstrip("-.")
    return f"{profile_name}-{readable}-{digest}"


def _read_profile_file(name_or_path: str) -> tuple[Path, dict[str, Any]]:
    path = Path(name_or_path)
    if path.is_dir():
        raise ProfileError(f"{path}: is a folder; --profile takes a packaged profile name or a YAML file")
    if not path.suffix:
        path = PROFILE_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise ProfileError(
                f"unknown profile {name_or_path!r}; available: {', '.join(available_profiles())}"
            )
    raw = read_yaml_mapping(path, "profile")
    raw.setdefault("name", path.stem)
    return path, raw


def read_yaml_mapping(path: Path, what: str) -> dict[str, Any]:
    """A YAML file whose top level is a mapping (a profile, an ablation study); errors name the file."""
    if not path.is_file():
        raise ProfileError(f"{what} file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ProfileError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ProfileError(f"{path}: the top level must be a mapping")
    return raw


def _profile_from_raw(path: Path, raw: dict[str, Any]) -> Profile:
    if "task" in raw:  # a profile's top-level `task:` is data.task
        raw = {**raw, "data": {**(raw.get("data") or {}), "task": raw["task"]}}
        raw.pop("task")
    try:
        check_safe_name(str(raw["name"]), "profile name")
        profile = _build(Profile, raw)
        _validate(profile)
    except (ProfileError, ValueError) as e:
        raise ProfileError(f"{path.name}: {e}") from None
    return profile


def load_profile(
    name_or_path: str, overrides: list[str] | None = None, experiment: str | None = None
) -> Profile:
    """Load a packaged profile by name (smoke, default, paper) or a YAML file by path; apply `a.b=c` overrides.

    The experiment is `experiment` when given (a safe folder name), else derived from the profile name and the
    settings the overrides change (`experiment_name`).
    """
    path, raw = _read_profile_file(name_or_path)
    base = _profile_from_raw(path, raw)
    import copy

    raw = copy.deepcopy(raw)
    for o in overrides or []:
        k, v = parse_override(o)
        _set_dotted(raw, k, v)
    profile = _profile_from_raw(path, raw)
    profile.overrides = settings_diff(base.settings(), profile.settings())
    if experiment:
        try:
            check_safe_name(experiment, "experiment name")
        except ValueError as e:
            raise ProfileError(str(e)) from None
        if experiment in available_profiles() and (experiment != profile.name or profile.overrides):
            raise ProfileError(
                f"experiment name {experiment!r} is reserved for the unmodified {experiment} profile; "
                "leave --name out to get a derived name, or choose another"
            )
    profile.experiment = experiment or experiment_name(profile.name, profile.overrides)
    return profile


def profile_from_env(default: str = "default") -> Profile:
    """The experiment a notebook runs on: $RI_PROFILE, $RI_SET (a JSON list of overrides) and $RI_EXPERIMENT,
    as the study runner sets them; the unmodified default profile otherwise."""
    import os

    overrides = json.loads(os.environ.get("RI_SET", "[]"))
    return load_profile(
        os.environ.get("RI_PROFILE", default), overrides, os.environ.get("RI_EXPERIMENT") or None
    )


def save_profile(profile: Profile, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(profile.to_dict(), sort_keys=False))


def _without_evaluate(settings: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in settings.items() if k != "evaluate"}


def claim_results_dir(profile: Profile) -> Path:
    """The experiment's results folder, after checking that it holds results of these same settings (or none).

    An experiment folder written with other settings is never overwritten: `results/default/` belongs to the
    unmodified default profile, and a `--name` already used for other settings is refused. The `evaluate`
    section is the exception: it changes only how stored predictions are scored, and `evaluate` rewrites every
    metric from them.
    """
    out = profile.results_dir
    saved = out / "profile.yaml"
    if saved.exists():
        try:
            old = yaml.safe_load(saved.read_text()) or {}
            old_settings = {
                k: v for k, v in old.items() if k not in ("name", "description", "experiment", "overrides")
            }
        except yaml.YAMLError:
            old_settings = None
        mine = _without_evaluate(profile.settings())
        diff = (
            settings_diff(_without_evaluate(old_settings), mine) if old_settings is not None else {"?": None}
        )
        # a setting added to the code after these results were made, at its default (= the behaviour before it
        # existed), is not a difference
        old_keys = flatten(_without_evaluate(old_settings or {}))
        defaults = flatten(Profile(name="defaults").settings())
        diff = {k: v for k, v in diff.items() if k in old_keys or k not in defaults or defaults[k] != v}
        if diff:
            shown = (
                "unreadable profile.yaml"
                if old_settings is None
                else ", ".join(f"{k}={v!r}" for k, v in list(diff.items())[:5])
            )
            raise ProfileError(
                f"{out} holds results of other settings ({shown}); choose another experiment name (--name) "
                "or move that folder away"
            )
    out.mkdir(parents=True, exist_ok=True)
    save_profile(profile, saved)
    return out
