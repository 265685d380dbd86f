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

from .config import ModelConfig, ProfileError, TrainConfig
from .modeling import count_parameters, device, load_model_and_tokenizer, resolve_dtype
from .prompts import prompt_version
from .provenance import code_version, package_versions, write_json


@dataclass
class SFTExample:
    prompt: str  # chat-template-rendered prompt ending with the assistant header
    completion: str  # the assistant's text; the end-of-turn token is appended


def tokenize_examples(
    tok: PreTrainedTokenizerBase, examples: list[SFTExample], max_length: int
) -> tuple[Dataset, int]:
    """Pre-tokenised rows (input_ids, completion_mask); rows longer than max_length are dropped and counted."""
    prompts = tok([e.prompt for e in examples], add_special_tokens=False)["input_ids"]
    completions = tok([e.completion for e in examples], add_special_tokens=False)["input_ids"]
    ids, masks, dropped = [], [], 0
    for p, c in zip(prompts, completions, strict=True):
        c = c + [tok.eos_token_id]
        if len(p) + len(c) > max_length:
            dropped += 1
            continue
        ids.append(p + c)
        masks.append([0] * len(p) + [1] * len(c))
    return Dataset.from_dict({"input_ids": ids, "completion_mask": masks}), dropped


class _StepLog(TrainerCallback):
    """Writes every logged step to train_log.jsonl as it happens (survives a crash)."""

    def __init__(self, path: Path):
        self.path = path

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D401
        if state.is_world_process_zero and logs:
            with self.path.open("a") as f:
                f.write(json.dumps({"step": state.global_step, **logs}) + "\n")


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
    loss = torch.nn.functional.cross_entropy(logits, labels[keep], reduction="sum")
    n = num_items_in_batch if num_items_in_batch is not None else keep.sum()
    return loss / torch.as_tensor(n, device=loss.device).clamp(min=1)


def sft_trainer_class():
    from trl import SFTTrainer

    class CompletionOnlySFTTrainer(SFTTrainer):
        """TRL's SFTTrainer (data handling, collation, sampling, checkpoints, resume) with a lean loss."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = completion_only_loss(model, inputs, num_items_in_batch)
            if self.args.average_tokens_across_devices and num_items_in_batch is not None:
                loss = loss * self.accelerator.num_processes
            return (loss, None) if return_outputs else loss

    return CompletionOnlySFTTrainer


def build_sft_config(tc: TrainConfig, output_dir: Path, seed: int, n_rows: int, world_size: int = 1):
    from trl import SFTConfig

    on_gpu = torch.cuda.is_available()
    bf16 = on_gpu and torch.cuda.is_bf16_supported()
    steps_per_epoch = max(1, math.ceil(n_rows / (tc.batch_size * tc.grad_accum * world_size)))
    total_steps = max(1, math.ceil(steps_per_epoch * tc.num_epochs))
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
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt_dir = out_dir / "checkpoints"
    torch.manual_seed(tc.seed)
    model, tok = load_model_and_tokenizer(model_cfg)
    dataset, dropped = tokenize_examples(tok, examples, tc.max_length)
    if len(dataset) == 0:
        raise ProfileError(
            f"train.max_length: no {name} training rows fit in max_length={tc.max_length} tokens; raise it"
        )
    n_tokens = sum(len(x) for x in dataset["input_ids"])
    n_sup = sum(sum(m) for m in dataset["completion_mask"])
    if not tc.full_finetune:
        model = apply_lora(model, tc)
    total, trainable = count_parameters(model)
    args = build_sft_config(tc, ckpt_dir, tc.seed, len(dataset))
    eff_batch = tc.batch_size * tc.grad_accum * args.world_size
    steps = math.ceil(len(dataset) / eff_batch * tc.num_epochs)
    print(
        f"[{name}] {len(dataset)} rows ({dropped} dropped over {tc.max_length} tokens), {n_tokens} tokens "
        f"({n_sup} supervised) per epoch, effective batch {eff_batch}, ~{steps} optimizer steps, "
        f"~{n_tokens / len(dataset) * eff_batch:.0f} tokens/step, {'full' if tc.full_finetune else 'LoRA'} "
        f"fine-tuning of {trainable:,} / {total:,} parameters, {resolve_dtype(model_cfg.dtype)} on {device()}",
        flush=True,
    )
    trainer = sft_trainer_class()(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tok,
        callbacks=[_StepLog(out_dir / "train_log.jsonl"), *(callbacks or [])],
    )
    resume = newest_complete_checkpoint(ckpt_dir, name) if ckpt_dir.exists() else None
    if resume:
        print(f"[{name}] resuming from {resume}", flush=True)
    t0 = time.time()
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    wall = time.time() - t0
    # tokens processed in this process (a resumed run counts only the steps it did)
    done_frac = 1.0
    if resume:
        done_frac = max(1e-9, 1 - int(resume.name.split("-")[1]) / max(1, trainer.state.max_steps))
    tokens_seen = n_tokens * tc.num_epochs * done_frac
    trainer.model.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
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
    write_json(done, meta)  # the weights are saved: a later kill does not lose the training
    shutil.rmtree(ckpt_dir, ignore_errors=True)  # intermediate checkpoints are only for resuming
    print(
        f"[{name}] trained in {wall:.0f} s: {meta['tokens_per_second']:.0f} tokens/s "
        f"({meta['supervised_tokens_per_second']:.0f} supervised tokens/s), final loss {result.training_loss:.3f}"
    )
    return meta


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
