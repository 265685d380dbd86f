"""Performance benchmark: each baseline and the project's path measured in the same process on the same inputs.

`python -m reasoning_infused bench --profile default` writes results/<profile>/bench.json. Not a test: it takes
several minutes. Figures:
- matmul rate (fp32 and bf16), the compute limit every other figure is divided by;
- training tokens/s: TRL SFTTrainer with its defaults, with bf16 off, and the project's path (same examples);
- generation tokens/s: a batch-1 `generate` loop vs the project's batched backend (same examples);
- Q->A prediction by label scoring (examples/s) next to free generation;
- study minutes and peak memory, read from the study's own records.
"""

from __future__ import annotations

import json
import platform
import time
from typing import Any

import torch
from transformers import TrainerCallback

from reasoning_infused.base.provenance import code_version, write_json
from reasoning_infused.experiment.settings import Profile


def matmul_gflops(dtype: torch.dtype = torch.float32, n: int = 1024, reps: int = 10) -> float:
    a = torch.randn(n, n, dtype=dtype)
    b = torch.randn(n, n, dtype=dtype)
    torch.mm(a, b)
    t0 = time.perf_counter()
    for _ in range(reps):
        torch.mm(a, b)
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


class _StepTimer(TrainerCallback):
    """Times optimizer steps after the first (which pays one-off setup costs)."""

    def __init__(self):
        self.starts: list[float] = []
        self.ends: list[float] = []

    def on_step_begin(self, args, state, control, **kw):
        self.starts.append(time.perf_counter())

    def on_step_end(self, args, state, control, **kw):
        self.ends.append(time.perf_counter())


def _train_rate(profile: Profile, examples, mode: str, steps: int, batch_size: int) -> dict[str, Any]:
    """Tokens/s of `steps` timed optimizer steps (after one warm-up step) on the same examples."""
    from trl import SFTConfig, SFTTrainer

    from reasoning_infused.base.provenance import peak_rss_gib
    from reasoning_infused.pipeline.modeling import load_model_and_tokenizer
    from reasoning_infused.pipeline.training import (
        apply_lora,
        build_sft_config,
        sft_trainer_class,
        tokenize_examples,
    )

    model, tok = load_model_and_tokenizer(profile.model)
    tc = profile.classifier.train
    ds, _ = tokenize_examples(tok, examples, tc.max_length)
    accum = tc.grad_accum if mode == "project" else 1
    n_rows = (steps + 1) * batch_size * accum
    ds = ds.select(range(min(n_rows, len(ds))))
    model = apply_lora(model, tc)
    timer = _StepTimer()
    out = profile.scratch_dir / "bench" / mode
    if mode == "project":
        args = build_sft_config(tc, out, tc.seed, len(ds))
        args.per_device_train_batch_size = batch_size
        args.max_steps = steps + 1
        args.save_strategy = "no"
        trainer = sft_trainer_class()(
            model=model, args=args, train_dataset=ds, processing_class=tok, callbacks=[timer]
        )
    else:  # TRL defaults: bf16 on (the CPU has no bf16 units), gradient checkpointing on, random batches
        kw = {"bf16": False} if mode == "trl_fp32" else {}
        args = SFTConfig(
            output_dir=str(out),
            use_cpu=not torch.cuda.is_available(),
            max_steps=steps + 1,
            per_device_train_batch_size=batch_size,
            save_strategy="no",
            report_to=[],
            completion_only_loss=True,
            seed=tc.seed,
            **kw,
        )
        trainer = SFTTrainer(
            model=model, args=args, train_dataset=ds, processing_class=tok, callbacks=[timer]
        )
    lengths = []

    orig = trainer.compute_loss

    def counting_loss(model, inputs, *a, **k):
        lengths.append(int(inputs["attention_mask"].sum()))
        return orig(model, inputs, *a, **k)

    trainer.compute_loss = counting_loss
    trainer.train()
    timed = sum(e - s for s, e in zip(timer.starts[1:], timer.ends[1:], strict=False))
    tokens = sum(lengths[accum:])  # micro-batches after the warm-up step
    return {
        "mode": mode,
        "bf16": bool(args.bf16),
        "gradient_checkpointing": bool(args.gradient_checkpointing),
        "timed_steps": len(timer.ends) - 1,
        "batch_size": batch_size,
        "grad_accum": accum,
        "peak_rss_gib_so_far": peak_rss_gib(),
        "tokens": tokens,
        "seconds": timed,
        "tokens_per_s": tokens / timed,
    }


def _bench_examples(profile: Profile, n: int):
    """Q->RA training examples (the longest target): from the augmented set when present."""
    from reasoning_infused.data.rows import load_split
    from reasoning_infused.pipeline.classifiers import classifier_examples
    from reasoning_infused.pipeline.modeling import load_tokenizer

    tok = load_tokenizer(profile.model)
    try:
        from reasoning_infused.experiment.artifacts import augmented_dataset

        rows = augmented_dataset(profile).select(range(n))
    except FileNotFoundError:
        train = load_split(profile.data, "train").select(range(n))
        names = train.features["label"].names
        rows = [
            {
                "text": r["text"],
                "label": names[r["label"]],
                "reasoning": "The writer describes how they feel about what happened and why it matters to them.",
            }
            for r in train
        ]
    return classifier_examples(tok, rows, "qra")


def _generation_rates(profile: Profile, n: int) -> dict[str, Any]:
    """Tokens/s on the same `n` training prompts: a batch-1 `generate` loop, batched `generate` (the path before
    `buffered_generate`) and the project's path, with the project's prefill/decode split."""
    from reasoning_infused.data.emotion import load_emotion
    from reasoning_infused.experiment.artifacts import generator_artifact
    from reasoning_infused.pipeline.augment import generation_prompts
    from reasoning_infused.pipeline.inference import TransformersBackend, generate_all
    from reasoning_infused.pipeline.loading import load_generator
    from reasoning_infused.pipeline.modeling import load_model_and_tokenizer

    if generator_artifact(profile).is_complete():
        model, tok = load_generator(profile)
        which = "fine-tuned generator"
    else:
        model, tok = load_model_and_tokenizer(profile.model)
        which = "base model"
    rows = load_emotion("train", profile.data.emotion_dir).shuffle(seed=profile.data.seed).select(range(n))
    prompts = generation_prompts(tok, rows)
    a = profile.augment
    out: dict[str, Any] = {"model": which, "examples": n, "max_new_tokens": a.max_new_tokens}
    texts = {}
    for name, bs, fast in (
        ("batch1", 1, False),
        ("batched_generate", a.batch_size, False),
        ("project", a.batch_size, True),
    ):
        b = TransformersBackend(model, tok, buffered=fast)
        t0 = time.perf_counter()
        gens = generate_all(b, prompts, a.max_new_tokens, bs, desc=f"bench generate ({name})")
        dt = time.perf_counter() - t0
        toks = sum(g.n_tokens for g in gens)
        texts[name] = [g.text for g in gens]
        out[name] = {
            "batch_size": bs,
            "method": "buffered_generate" if fast else "model.generate",
            "generated_tokens": toks,
            "seconds": dt,
            "tokens_per_s": toks / dt,
            "examples_per_s": n / dt,
        }
        if fast:
            out[name]["phases"] = dict(b.stats)
    out["same_text_as_batch1"] = {k: texts[k] == texts["batch1"] for k in ("batched_generate", "project")}
    out["ct2"] = _ct2_rates(profile, prompts, texts["project"]) if which == "fine-tuned generator" else None
    return out


def _ct2_rates(profile: Profile, prompts: list[str], reference: list[str]) -> dict[str, Any] | None:
    """CTranslate2 float32 and int8 on the same prompts (the generator converted once, not timed), with how many
    texts equal the project's path."""
    try:
        import ctranslate2  # noqa: F401
    except ImportError:
        return None
    from reasoning_infused.experiment.artifacts import generator_artifact
    from reasoning_infused.pipeline.engines import CT2Backend
    from reasoning_infused.pipeline.inference import generate_all
    from reasoning_infused.pipeline.loading import ct2_model_path
    from reasoning_infused.pipeline.modeling import load_tokenizer

    path = ct2_model_path(profile, generator_artifact(profile))
    tok = load_tokenizer(profile.model)
    a = profile.augment
    out: dict[str, Any] = {}
    for compute_type in ("float32", "int8"):
        backend = CT2Backend(path, tok, compute_type)
        t0 = time.perf_counter()
        gens = generate_all(
            backend, prompts, a.max_new_tokens, a.batch_size, desc=f"bench ct2 {compute_type}"
        )
        dt = time.perf_counter() - t0
        toks = sum(g.n_tokens for g in gens)
        out[compute_type] = {
            "batch_size": a.batch_size,
            "generated_tokens": toks,
            "seconds": dt,
            "tokens_per_s": toks / dt,
            "same_text_as_project": sum(g.text == r for g, r in zip(gens, reference, strict=True)),
            "of": len(prompts),
        }
    return out


def _prediction_rates(profile: Profile, n: int) -> dict[str, Any]:
    from reasoning_infused.data.emotion import load_emotion
    from reasoning_infused.experiment.artifacts import ArtifactMissing
    from reasoning_infused.pipeline.classifiers import predict
    from reasoning_infused.pipeline.loading import load_classifier

    test = load_emotion("test", profile.data.emotion_dir).select(range(n))
    res = {}
    for variant in ("qa", "qra"):
        try:
            model, tok = load_classifier(profile, variant)
        except ArtifactMissing:
            model, tok = load_classifier(profile, "zero_shot")
        t0 = time.perf_counter()
        predict(model, tok, variant, test["text"], test["label"], profile, desc=f"bench {variant}")
        dt = time.perf_counter() - t0
        res[variant] = {
            "examples": n,
            "seconds": dt,
            "examples_per_s": n / dt,
            "method": "label scoring" if variant == "qa" else "free generation + constrained scoring",
        }
    return res


def _study_prediction_rates(profile: Profile) -> dict[str, float]:
    """Examples/s of the study's own test-set predictions (from results/<experiment>/artifacts.json)."""
    path = profile.results_dir / "artifacts.json"
    used = json.loads(path.read_text()) if path.exists() else {}
    return {
        k[len("predictions_") : -len("__test")]: m["examples_per_second"]
        for k, m in used.items()
        if k.startswith("predictions_") and k.endswith("__test")
    }


def run_bench(profile: Profile, quick: bool = False) -> dict[str, Any]:
    from reasoning_infused.base.provenance import peak_rss_gib
    from reasoning_infused.pipeline.modeling import count_parameters, load_model_and_tokenizer

    torch.manual_seed(profile.classifier.train.seed)
    t_start = time.time()
    fp32 = max(matmul_gflops(torch.float32) for _ in range(3))
    bf16 = matmul_gflops(
        torch.bfloat16, n=1024, reps=1
    )  # same size as fp32: small bf16 matmuls hide the slowness
    model, _ = load_model_and_tokenizer(profile.model)
    n_params = count_parameters(model)[0]
    del model
    print(f"matmul: fp32 {fp32:.1f} GFLOP/s, bf16 {bf16:.2f} GFLOP/s; model {n_params / 1e6:.0f}M parameters")
    steps = 1 if quick else 3
    examples = _bench_examples(profile, 16 * (steps + 1))
    train = {
        # TRL's defaults are so slow on this CPU that they get few, small steps
        "trl_default": _train_rate(
            profile, examples, "trl_default", steps=1, batch_size=2 if not quick else 1
        ),
        "trl_fp32": _train_rate(profile, examples, "trl_fp32", steps=steps, batch_size=8),
        "project": _train_rate(
            profile, examples, "project", steps=steps, batch_size=profile.classifier.train.batch_size
        ),
    }
    for k, v in train.items():
        print(f"train {k}: {v['tokens_per_s']:.1f} tokens/s")
    limit_train = fp32 * 1e9 / (4 * n_params)  # LoRA: forward 2N + backward through activations 2N per token
    gen = _generation_rates(profile, 16 if quick else 64)
    limit_decode = fp32 * 1e9 / (2 * n_params)
    phases = gen["project"]["phases"]
    decode_phase_rate = phases["generated_tokens"] / phases["decode_seconds"]
    from reasoning_infused.experiment.artifacts import augment_artifact

    aug = augment_artifact(profile)
    aug_runs = aug.metadata()["generation_runs"] if aug.is_complete() else []
    pred = _prediction_rates(profile, 32 if quick else 256)
    # Study time = the wall time each artifact took to make (metrics.json -> stage_seconds, from the artifacts'
    # own metadata, true even when a later run reused them) plus the analysis; the runner's clock of its last
    # invocation (stage_seconds.json) is reported too but counts reuse, not work.
    metrics_path = profile.results_dir / "metrics.json"
    artifact = json.loads(metrics_path.read_text()).get("stage_seconds", {}) if metrics_path.exists() else {}
    analysis_path = profile.results_dir / "analysis.json"
    analysis_s = json.loads(analysis_path.read_text()).get("seconds", 0.0) if analysis_path.exists() else 0.0
    study_seconds = (artifact.get("total", 0.0) + analysis_s) or None
    study_source = "artifact metadata (time each artifact took) + analysis"
    stage_path = profile.results_dir / "stage_seconds.json"
    runner = json.loads(stage_path.read_text()) if stage_path.exists() else {}
    core = [k for k in artifact if k.startswith(("train_", "augment"))]
    if "study_total" in runner and core and all(runner.get(k, 0) >= 0.9 * artifact[k] for k in core):
        # the last `study` invocation did every stage's work itself: its wall clock is the honest figure
        study_seconds = runner["study_total"]
        study_source = "wall clock of the last `make study` (stage_seconds.json: study_total), nothing reused"
    rss_path = profile.results_dir / "peak_rss_gib.json"
    study_rss = max(json.loads(rss_path.read_text()).values()) if rss_path.exists() else None
    bench = {
        "matmul_gflops": fp32,
        "matmul_gflops_bf16": bf16,
        "parameters": n_params,
        "train_tokens_per_s": train["project"]["tokens_per_s"],
        "train_speedup_vs_trl_default": train["project"]["tokens_per_s"]
        / train["trl_default"]["tokens_per_s"],
        "train_speedup_vs_trl_fp32": train["project"]["tokens_per_s"] / train["trl_fp32"]["tokens_per_s"],
        "train_compute_limit_tokens_per_s": limit_train,
        "train_fraction_of_compute_limit": train["project"]["tokens_per_s"] / limit_train,
        "augment_tokens_per_s": gen["project"]["tokens_per_s"],
        "augment_batch1_tokens_per_s": gen["batch1"]["tokens_per_s"],
        "augment_speedup_vs_batch1": gen["project"]["tokens_per_s"] / gen["batch1"]["tokens_per_s"],
        "decode_compute_limit_tokens_per_s": limit_decode,
        "decode_fraction_of_compute_limit": gen["project"]["tokens_per_s"] / limit_decode,
        # the decoding steps alone (prefill excluded): generated tokens per second of decoding
        "decode_phase_tokens_per_s": decode_phase_rate,
        "decode_phase_fraction_of_compute_limit": decode_phase_rate / limit_decode,
        "augment_speedup_vs_batched_generate": gen["project"]["tokens_per_s"]
        / gen["batched_generate"]["tokens_per_s"],
        "augment_batched_generate_tokens_per_s": gen["batched_generate"]["tokens_per_s"],
        "ct2_float32_tokens_per_s": (gen["ct2"] or {}).get("float32", {}).get("tokens_per_s"),
        "ct2_int8_tokens_per_s": (gen["ct2"] or {}).get("int8", {}).get("tokens_per_s"),
        "ct2_float32_same_text": (gen["ct2"] or {}).get("float32", {}).get("same_text_as_project"),
        "ct2_int8_same_text": (gen["ct2"] or {}).get("int8", {}).get("same_text_as_project"),
        # the study's own augmentation run (all classifier training rows, length-sorted batches)
        "augment_study_tokens_per_s": aug_runs[-1]["tokens_per_second"] if aug_runs else None,
        "qa_predict_examples_per_s": pred["qa"]["examples_per_s"],
        "qra_generate_examples_per_s": pred["qra"]["examples_per_s"],
        # the study's own prediction of the full test set (from the prediction files' metadata)
        "study_test_examples_per_s": _study_prediction_rates(profile),
        "study_minutes": study_seconds / 60 if study_seconds else None,
        "study_minutes_source": study_source,
        "study_stage_seconds": {**artifact, "analysis": analysis_s},
        "runner_last_invocation_seconds": runner,
        "peak_rss_gib": study_rss,
        "peak_rss_source": "max over the study runner's per-stage processes, each its own peak "
        "(results/<experiment>/peak_rss_gib.json); "
        "a stage that reused its artifact measures loading, not training",
        "bench_peak_rss_gib": peak_rss_gib(),
        "details": {"train": train, "generation": gen, "prediction": pred},
        "machine": {
            "cpu_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "torch": torch.__version__,
            "cuda": torch.cuda.is_available(),
        },
        "quick": quick,
        "code_version": code_version(),
        "profile": profile.name,
        "bench_seconds": time.time() - t_start,
    }
    from reasoning_infused.experiment.config import claim_results_dir

    write_json(claim_results_dir(profile) / "bench.json", bench)
    print(json.dumps({k: v for k, v in bench.items() if not isinstance(v, dict)}, indent=2))
    return bench
