"""Supervised fine-tuning on prompt-completion pairs with TRL's SFTTrainer; shared by the generator and classifiers.

Settings follow the hardware: fp32 on CPU (TRL turns bf16 on by default, ~13x slower here), no gradient
checkpointing unless asked, length-grouped batches, loss on the completion only (TRL computes the LM head only
where the loss is). A run killed midway resumes from its last checkpoint; a finished training leaves
`train_meta.json`, so the stage that owns the artifact can finish it later without training again.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from datasets import Dataset
from transformers import PreTrainedTokenizerBase, TrainerCallback

from reasoning_infused.base.provenance import code_version, package_versions, write_json
from reasoning_infused.data.prompts import prompt_version
from reasoning_infused.experiment.config import ProfileError
from reasoning_infused.experiment.settings import ModelConfig, TrainConfig
from reasoning_infused.pipeline.modeling import (
    count_parameters,
    device,
    load_model_and_tokenizer,
    resolve_dtype,
)


@dataclass
class SFTExample:
    prompt: str  # chat-template-rendered prompt ending with the assistant header
    completion: str  # the assistant's text; the end-of-turn token is appended
    label_span: tuple[int, int] | None = None  # characters of the label in `completion` (classifiers)


def label_token_weights(n_tokens: int, is_label: list[bool], share: float) -> list[float]:
    """Per-token loss weights of one completion summing to 1: `share` spread over the label tokens, 1 - share over
    the others (with no other tokens, the label takes everything)."""
    n_label = sum(is_label)
    if n_label == 0:
        raise ValueError("no label token in the completion: cannot weight the label")
    n_rest = n_tokens - n_label
    w_label = share / n_label if n_rest else 1.0 / n_label
    w_rest = (1 - share) / n_rest if n_rest else 0.0
    return [w_label if x else w_rest for x in is_label]


def tokenize_examples(
    tok: PreTrainedTokenizerBase, examples: list[SFTExample], max_length: int, label_loss_share: float = 0.0
) -> tuple[Dataset, int]:
    """Pre-tokenised rows (input_ids, completion_mask[, label_weights]); rows longer than max_length are dropped and
    counted. With `label_loss_share`, `label_weights` gives each input position the weight of the token it is (0
    on the prompt), the label's tokens found through the tokenizer's character offsets."""
    prompts = tok([e.prompt for e in examples], add_special_tokens=False)["input_ids"]
    enc = tok(
        [e.completion for e in examples],
        add_special_tokens=False,
        return_offsets_mapping=bool(label_loss_share),
    )
    ids, masks, weights, dropped = [], [], [], 0
    for i, (p, c) in enumerate(zip(prompts, enc["input_ids"], strict=True)):
        c = c + [tok.eos_token_id]
        if len(p) + len(c) > max_length:
            dropped += 1
            continue
        ids.append(p + c)
        masks.append([0] * len(p) + [1] * len(c))
        if label_loss_share:
            span = examples[i].label_span
            if span is None:
                raise ValueError(
                    "label_loss_share needs examples that know where their label is (label_span)"
                )
            is_label = [s < span[1] and e > span[0] for s, e in enc["offset_mapping"][i]] + [False]  # + eos
            weights.append([0.0] * len(p) + label_token_weights(len(c), is_label, label_loss_share))
    columns = {"input_ids": ids, "completion_mask": masks}
    if label_loss_share:
        columns["label_weights"] = weights
    return Dataset.from_dict(columns), dropped


class LabelWeightCollator:
    """TRL's collator plus the `label_weights` column, padded with zeros like the labels (right padding)."""

    def __init__(self, base):
        self.base = base

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        weights = [e["label_weights"] for e in examples]
        batch = self.base([{k: v for k, v in e.items() if k != "label_weights"} for e in examples])
        padded = torch.zeros(batch["input_ids"].shape, dtype=torch.float32)
        for i, w in enumerate(weights):
            padded[i, : len(w)] = torch.as_tensor(w, dtype=torch.float32)
        batch["label_weights"] = padded
        return batch


class _StepLog(TrainerCallback):
    """Writes every logged step to train_log.jsonl as it happens (survives a crash)."""

    def __init__(self, path: Path):
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D401
        if state.is_world_process_zero and logs:
            with self.path.open("a") as f:
                f.write(json.dumps({"step": state.global_step, **logs}) + "\n")


def distributed_state():
    """accelerate's view of this process: a single process normally; under `accelerate launch` or torchrun, one
    of several (gloo on CPU, NCCL on GPUs). Only its main process writes artifacts, logs and metadata."""
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def checkpoint_problem(ckpt: Path) -> str | None:
    """Why a Trainer checkpoint cannot be resumed from (None if it can). The Trainer writes the weights, then the
    optimizer, scheduler and RNG states, and trainer_state.json last: a kill mid-save leaves one of them missing,
    empty or torn, which is what this looks for."""
    import zipfile

    state = ckpt / "trainer_state.json"
    if not state.exists():
        return "no trainer_state.json (the save was cut)"
    try:
        json.loads(state.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return "trainer_state.json is not valid JSON"
    weights = [ckpt / f for f in ("adapter_model.safetensors", "model.safetensors") if (ckpt / f).exists()]
    if not weights:
        return "no weights file"
    try:
        from safetensors import safe_open

        with safe_open(str(weights[0]), framework="pt") as f:
            list(f.keys())
    except Exception as e:  # safetensors raises its own error types for a torn header
        return f"{weights[0].name} is unreadable ({type(e).__name__}: {e})"
    for name in ("optimizer.pt", "scheduler.pt"):
        path = ckpt / name
        if not path.exists():
            return f"no {name}"
        try:
            with zipfile.ZipFile(path) as z:
                if z.testzip() is not None:
                    return f"{name} is corrupt"
        except zipfile.BadZipFile:
            return f"{name} is torn"
    return None


def newest_complete_checkpoint(ckpt_dir: Path, name: str = "") -> Path | None:
    """The newest checkpoint that can be resumed from; newer incomplete ones are moved aside (renamed, not
    deleted) with a message saying why, so the Trainer's own rotation never sees them."""
    cks = sorted(ckpt_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]), reverse=True)
    for ck in cks:
        why = checkpoint_problem(ck)
        if why is None:
            return ck
        aside = ck.with_name(f"incomplete-{ck.name}-{time.strftime('%Y%m%d-%H%M%S')}")
        ck.rename(aside)
        print(f"[{name}] skipping {ck.name}: {why}; moved to {aside.name}", flush=True)
    return None


def is_distributed_wrapper(model: torch.nn.Module) -> bool:
    """True for a model wrapped by DistributedDataParallel or FSDP (one of several training processes)."""
    from torch.distributed.fsdp import FullyShardedDataParallel
    from torch.nn.parallel import DistributedDataParallel

    if isinstance(model, (DistributedDataParallel, FullyShardedDataParallel)):
        return True
    try:  # FSDP2 shards modules in place: the model's class is rewritten to FSDP<Class>
        from torch.distributed.fsdp import FSDPModule

        return isinstance(model, FSDPModule)
    except ImportError:
        return False


def _causal_lm(model: torch.nn.Module) -> torch.nn.Module:
    """The *ForCausalLM module under PEFT and accelerate wrappers."""
    m = getattr(model, "module", model)  # DDP
    return m.get_base_model() if hasattr(m, "get_base_model") else m


def completion_only_loss(
    model: torch.nn.Module, inputs: dict[str, torch.Tensor], num_items_in_batch=None
) -> torch.Tensor:
    """Cross-entropy on completion tokens, with the LM head computed only at those positions.

    The decoder runs once over the batch; the (49k-wide) LM head and softmax run only where there is a label,
    which on a CPU is most of what TRL's per-token metrics and full-logit paths cost beyond the backbone.
    """
    lm = _causal_lm(model)
    hidden = lm.get_decoder()(
        input_ids=inputs["input_ids"],
        attention_mask=inputs.get("attention_mask"),
        position_ids=inputs.get("position_ids"),
        use_cache=False,
    ).last_hidden_state
    labels = inputs["labels"][:, 1:]
    keep = labels != -100
    logits = lm.get_output_embeddings()(hidden[:, :-1][keep]).float()
    if "label_weights" in inputs:  # each example's weights sum to 1: the loss is a mean over examples
        per_token = torch.nn.functional.cross_entropy(logits, labels[keep], reduction="none")
        loss = (per_token * inputs["label_weights"][:, 1:][keep].to(per_token.device)).sum()
        return loss / labels.shape[0]
    loss = torch.nn.functional.cross_entropy(logits, labels[keep], reduction="sum")
    n = num_items_in_batch if num_items_in_batch is not None else keep.sum()
    return loss / torch.as_tensor(n, device=loss.device).clamp(min=1)


def sft_trainer_class():
    from trl import SFTTrainer

    class CompletionOnlySFTTrainer(SFTTrainer):
        """TRL's SFTTrainer (data handling, collation, sampling, checkpoints, resume) with a lean loss."""

        def _set_signature_columns_if_needed(self):
            super()._set_signature_columns_if_needed()
            if "label_weights" not in self._signature_columns:
                self._signature_columns = [*self._signature_columns, "label_weights"]

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if "label_weights" in inputs:
                if is_distributed_wrapper(model):
                    raise ProfileError("train.label_loss_share: weighted labels train in one process only")
                loss = completion_only_loss(model, inputs)
                if (
                    num_items_in_batch is not None
                ):  # then the Trainer leaves the accumulation scaling to the loss
                    loss = loss / self.current_gradient_accumulation_steps
                return (loss, None) if return_outputs else loss
            if is_distributed_wrapper(model):
                # DDP synchronises gradients, and FSDP gathers weights, only through the wrapper's own forward: the
                # lean path below calls the decoder directly and would train each process on its own gradients.
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            loss = completion_only_loss(model, inputs, num_items_in_batch)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes
            return (loss, None) if return_outputs else loss

    return CompletionOnlySFTTrainer


def build_sft_config(tc: TrainConfig, output_dir: Path, seed: int, n_rows: int, world_size: int = 1):
    from trl import SFTConfig

    on_gpu = torch.cuda.is_available()
    bf16 = on_gpu and torch.cuda.is_bf16_supported()
    total_steps = tc.optimizer_steps(n_rows, world_size)
    return SFTConfig(
        output_dir=str(output_dir),
        seed=seed,
        data_seed=seed,
        use_cpu=not on_gpu,
        bf16=bf16,  # fp32 on CPU: TRL's default bf16 is ~13x slower without bf16 hardware
        fp16=False,
        gradient_checkpointing=tc.gradient_checkpointing,  # recomputation costs ~30% and memory is not short here
        per_device_train_batch_size=tc.batch_size,
        gradient_accumulation_steps=tc.grad_accum,
        learning_rate=tc.learning_rate,
        num_train_epochs=tc.num_epochs,
        lr_scheduler_type=tc.lr_scheduler,
        warmup_steps=int(round(tc.warmup_ratio * total_steps)),
        weight_decay=tc.weight_decay,
        max_length=None,  # rows are filtered to max_length beforehand, never truncated
        packing=tc.packing,
        completion_only_loss=True,
        train_sampling_strategy="group_by_length" if tc.group_by_length else "random",
        logging_steps=tc.logging_steps,
        save_strategy="steps" if tc.save_steps > 0 else "no",
        save_steps=tc.save_steps if tc.save_steps > 0 else 500,
        save_total_limit=2,
        report_to=[],
        dataloader_num_workers=0,
        disable_tqdm=False,
    )


def apply_lora(model: torch.nn.Module, tc: TrainConfig) -> torch.nn.Module:
    from peft import LoraConfig, get_peft_model

    n_layers = model.config.num_hidden_layers
    layers = list(range(n_layers - tc.lora_top_layers, n_layers)) if tc.lora_top_layers else None
    cfg = LoraConfig(
        r=tc.lora_r,
        lora_alpha=tc.lora_alpha,
        lora_dropout=tc.lora_dropout,
        target_modules=tc.lora_target_modules,
        layers_to_transform=layers,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, cfg)


def train_sft(
    model_cfg: ModelConfig,
    tc: TrainConfig,
    examples: list[SFTExample],
    out_dir: Path,
    *,
    name: str,
    callbacks: list[TrainerCallback] | None = None,
) -> dict[str, Any]:
    """Fine-tune the base model on prompt-completion examples into `out_dir`; returns the training's metadata.

    Resumes from `out_dir/checkpoints` when present; returns the saved metadata when the training already
    finished (`train_meta.json`). Reuse across settings is the artifact store's business, not this function's.
    """
    out_dir = Path(out_dir)
    done = out_dir / "train_meta.json"
    if done.exists():
        return json.loads(done.read_text())
    state = distributed_state()
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_dir = out_dir / "checkpoints"
    torch.manual_seed(tc.seed)
    model, tok = load_model_and_tokenizer(model_cfg)
    dataset, dropped = tokenize_examples(tok, examples, tc.max_length, tc.label_loss_share)
    if len(dataset) == 0:
        raise ProfileError(
            f"train.max_length: no {name} training rows fit in max_length={tc.max_length} tokens; raise it"
        )
    n_tokens = sum(len(x) for x in dataset["input_ids"])
    n_sup = sum(sum(m) for m in dataset["completion_mask"])
    if not tc.full_finetune:
        model = apply_lora(model, tc)
    total, trainable = count_parameters(model)
    args = build_sft_config(tc, ckpt_dir, tc.seed, len(dataset), state.num_processes)
    eff_batch = tc.batch_size * tc.grad_accum * args.world_size
    steps = math.ceil(len(dataset) / eff_batch * tc.num_epochs)
    say = print if state.is_main_process else _silent
    say(
        f"[{name}] {len(dataset)} rows ({dropped} dropped over {tc.max_length} tokens), {n_tokens} tokens "
        f"({n_sup} supervised) per epoch, effective batch {eff_batch}, ~{steps} optimizer steps, "
        f"~{n_tokens / len(dataset) * eff_batch:.0f} tokens/step, {'full' if tc.full_finetune else 'LoRA'} "
        f"fine-tuning of {trainable:,} / {total:,} parameters, {resolve_dtype(model_cfg.dtype)} on {device()}"
        + (f", {state.num_processes} processes ({state.backend})" if state.num_processes > 1 else ""),
        flush=True,
    )
    trainer = sft_trainer_class()(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tok,
        callbacks=[_StepLog(out_dir / "train_log.jsonl"), *(callbacks or [])],
    )
    if tc.label_loss_share:
        trainer.data_collator = LabelWeightCollator(trainer.data_collator)
    with state.main_process_first():  # the main process moves broken checkpoints aside before the others look
        resume = newest_complete_checkpoint(ckpt_dir, name) if ckpt_dir.exists() else None
    if resume:
        say(f"[{name}] resuming from {resume}", flush=True)
    t0 = time.time()
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    wall = time.time() - t0
    # tokens processed in this process (a resumed run counts only the steps it did)
    done_frac = 1.0
    if resume:
        done_frac = max(1e-9, 1 - int(resume.name.split("-")[1]) / max(1, trainer.state.max_steps))
    tokens_seen = (
        n_tokens * tc.num_epochs * done_frac
    )  # all processes together: each sees its share of the rows
    meta = {
        "name": name,
        "base_model": model_cfg.name_or_path or model_cfg.source,
        "model_source": model_cfg.source,
        "fine_tuning": "full" if tc.full_finetune else "lora",
        "parameters_total": total,
        "parameters_trainable": trainable,
        "rows": len(dataset),
        "rows_dropped_over_max_length": dropped,
        "epochs": tc.num_epochs,
        "tokens_per_epoch": n_tokens,
        "supervised_tokens_per_epoch": n_sup,
        "optimizer_steps": trainer.state.global_step,
        "effective_batch": eff_batch,
        "processes": state.num_processes,
        "train_loss": result.training_loss,
        "wall_seconds": wall,
        "resumed_from": str(resume) if resume else None,
        "tokens_per_second": tokens_seen / wall,
        "supervised_tokens_per_second": n_sup * tc.num_epochs * done_frac / wall,
        "device": str(device()),
        "dtype": str(resolve_dtype(model_cfg.dtype)),
        "prompt_version": prompt_version(),
        "code_version": code_version(),
        "package_versions": package_versions(),
        "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    state.wait_for_everyone()
    if not state.is_main_process:  # the weights are the same in every process: the main one saves them
        return meta
    trainer.model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    write_json(done, meta)  # the weights are saved: a later kill does not lose the training
    shutil.rmtree(ckpt_dir, ignore_errors=True)  # intermediate checkpoints are only for resuming
    print(
        f"[{name}] trained in {wall:.0f} s: {meta['tokens_per_second']:.0f} tokens/s "
        f"({meta['supervised_tokens_per_second']:.0f} supervised tokens/s), final loss {result.training_loss:.3f}"
    )
    return meta


def _silent(*args, **kwargs) -> None:
    """print() for processes other than the main one."""


@torch.no_grad()
def completion_loss(
    model: torch.nn.Module, tok: PreTrainedTokenizerBase, examples: list[SFTExample], batch_size: int = 16
) -> float:
    """Mean negative log-likelihood per completion token (the held-out loss of the generator)."""
    model.eval()
    ds, _ = tokenize_examples(tok, examples, max_length=10**9)
    order = sorted(range(len(ds)), key=lambda i: len(ds[i]["input_ids"]))
    total, count = 0.0, 0
    dev = next(model.parameters()).device
    for s in range(0, len(order), batch_size):
        rows = [ds[i] for i in order[s : s + batch_size]]
        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), tok.pad_token_id, dtype=torch.long)
        att = torch.zeros((len(rows), width), dtype=torch.long)
        lab = torch.full((len(rows), width), -100, dtype=torch.long)
        for j, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[j, :n] = torch.tensor(r["input_ids"])
            att[j, :n] = 1
            m = torch.tensor(r["completion_mask"], dtype=torch.bool)
            lab[j, :n] = torch.where(m, torch.tensor(r["input_ids"]), torch.tensor(-100))
        n_items = int((lab[:, 1:] != -100).sum())
        batch = {"input_ids": ids.to(dev), "attention_mask": att.to(dev), "labels": lab.to(dev)}
        total += completion_only_loss(model, batch, num_items_in_batch=n_items).item() * n_items
        count += n_items
    return total / max(1, count)
