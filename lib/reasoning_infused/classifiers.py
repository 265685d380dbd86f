"""Classifiers Q->A, Q->RA and Q->AR: training (same trainer as the generator) and prediction."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset

from .augment import load_augmented
from .config import Profile
from .data import LABELS
from .inference import GenerationBackend, TransformersBackend, VLLMBackend, generate_all, score_labels
from .modeling import load_model_and_tokenizer, load_tokenizer, load_trained, merged_checkpoint
from .prompts import (
    VARIANTS,
    answer_prefix,
    classifier_messages,
    classifier_target,
    parse_answer,
    split_reasoning,
)
from .provenance import code_version, write_json
from .training import SFTExample, render_prompt, train_sft


def classifier_dir(profile: Profile, variant: str) -> Path:
    return profile.run_dir / "classifiers" / variant


def classifier_prompt(tok, text: str) -> str:
    return render_prompt(tok, classifier_messages(text))


def classifier_examples(tok, rows: Dataset, variant: str) -> list[SFTExample]:
    return [
        SFTExample(
            classifier_prompt(tok, r["text"]), classifier_target(variant, r["label"], r.get("reasoning", ""))
        )
        for r in rows
    ]


def training_rows(profile: Profile) -> Dataset:
    """The augmented training rows, the same for every variant. Rows whose reasoning is empty cannot make a
    Q->RA target and are dropped for all variants (counted); other flagged rows are dropped only when
    augment.drop_flagged is set."""
    ds = load_augmented(profile)
    n = len(ds)
    ds = ds.filter(
        lambda r: bool(r["reasoning"].strip()) and not (profile.augment.drop_flagged and r["flagged"])
    )
    if len(ds) < n:
        print(
            f"[classifiers] {n - len(ds)} of {n} augmented rows dropped (empty reasoning"
            f"{' or flagged' if profile.augment.drop_flagged else ''}); {len(ds)} rows train every variant"
        )
    if len(ds) == 0:
        raise RuntimeError("no augmented rows left to train on")
    return ds


def train_classifier(profile: Profile, variant: str, force: bool = False) -> dict[str, Any]:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    tok = load_tokenizer(profile.model)
    rows = training_rows(profile)
    return train_sft(
        profile,
        profile.classifier.train,
        classifier_examples(tok, rows, variant),
        classifier_dir(profile, variant),
        name=f"classifier-{variant}",
        force=force,
        extra_metadata={"variant": variant, "train_rows": len(rows)},
    )


_VLLM_ENGINES: dict[str, VLLMBackend] = {}  # one engine per process and model: the splits share it


def _generation_backend(profile: Profile, model, tok) -> GenerationBackend:
    """Q->RA free generation: the transformers model already loaded, or a vLLM engine on the merged weights."""
    if profile.classifier.backend != "vllm":
        return TransformersBackend(model, tok)
    path = str(merged_checkpoint(profile.model, classifier_dir(profile, "qra"), profile.seed))
    if path not in _VLLM_ENGINES:
        _VLLM_ENGINES[path] = VLLMBackend(
            path, tok, gpu_memory_utilization=profile.classifier.vllm_gpu_memory_utilization
        )
    return _VLLM_ENGINES[path]


def predict(
    model, tok, variant: str, texts: list[str], golds: list[int], profile: Profile, desc: str = ""
) -> list[dict[str, Any]]:
    """Predictions with per-label scores. Q->A, Q->AR and zero-shot: label scoring (no parse failures).
    Q->RA: greedy generation, parsed (failures reported, never mapped to a class), plus the constrained variant
    that scores the six labels after the generated reasoning."""
    bs = profile.classifier.predict_batch_size
    base_prompts = [classifier_prompt(tok, t) for t in texts]
    rows: list[dict[str, Any]] = []
    if variant in ("qa", "qar", "zero_shot"):
        prefix = answer_prefix()
        scores = score_labels(model, tok, [p + prefix for p in base_prompts], bs, desc=f"{desc} scoring")
        for t, g, s in zip(texts, golds, scores, strict=True):
            pred = LABELS[int(np.argmax(s))]
            rows.append(
                {
                    "text": t,
                    "gold": LABELS[g],
                    "predicted": pred,
                    "generated": f"{prefix} {pred}",
                    "scores": dict(zip(LABELS, map(float, s), strict=True)),
                    "parse_failed": False,
                }
            )
        return rows
    if variant != "qra":
        raise ValueError(f"unknown variant {variant!r}")
    gens = generate_all(
        _generation_backend(profile, model, tok),
        base_prompts,
        profile.classifier.max_new_tokens,
        bs,
        desc=f"{desc} generating",
    )
    reasonings = [split_reasoning(g.text, "qra") for g in gens]
    constrained_prompts = [
        p + (f"Reasoning: {r}\n" if r else "") + answer_prefix()
        for p, r in zip(base_prompts, reasonings, strict=True)
    ]
    scores = score_labels(model, tok, constrained_prompts, bs, desc=f"{desc} constrained scoring")
    for t, g, gen, r, s in zip(texts, golds, gens, reasonings, scores, strict=True):
        parsed = parse_answer(gen.text)
        rows.append(
            {
                "text": t,
                "gold": LABELS[g],
                "predicted": parsed,
                "generated": gen.text,
                "reasoning": r,
                "n_tokens": gen.n_tokens,
                "finish_reason": gen.finish_reason,
                "parse_failed": parsed is None,
                "predicted_constrained": LABELS[int(np.argmax(s))],
                "scores": dict(zip(LABELS, map(float, s), strict=True)),
            }
        )
    return rows


def load_classifier(profile: Profile, variant: str):
    if variant == "zero_shot":
        model, tok = load_model_and_tokenizer(profile.model, profile.seed)
        return model.eval(), tok
    d = classifier_dir(profile, variant)
    if not (d / "metadata.json").exists():
        raise FileNotFoundError(
            f"classifier {variant} not trained yet ({d}); run train-classifier --variant {variant}"
        )
    return load_trained(profile.model, d, profile.seed)


def predict_to_file(
    profile: Profile,
    variant: str,
    split_name: str,
    ds: Dataset,
    path: Path,
    model=None,
    tok=None,
    force: bool = False,
) -> list[dict[str, Any]]:
    """Predict one evaluation set and save JSONL; reuses an existing file made from the same model and data."""
    from .provenance import read_jsonl

    meta_path = path.with_suffix(".meta.json")
    model_meta = classifier_dir(profile, variant) / "metadata.json"
    stamp = json.loads(model_meta.read_text()).get("finished_at") if model_meta.exists() else "base"
    ident = {
        "variant": variant,
        "split": split_name,
        "rows": len(ds),
        "model": stamp,
        "max_new_tokens": profile.classifier.max_new_tokens,
    }
    if path.exists() and meta_path.exists() and not force:
        if {k: v for k, v in json.loads(meta_path.read_text()).items() if k in ident} == ident:
            return read_jsonl(path)
    if model is None:
        model, tok = load_classifier(profile, variant)
    t0 = time.time()
    rows = predict(model, tok, variant, ds["text"], ds["label"], profile, desc=f"{variant}/{split_name}")
    wall = time.time() - t0
    for r in rows:  # keeps the committed prediction files small
        r["scores"] = {k: round(v, 4) for k, v in r["scores"].items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    tmp.replace(path)
    write_json(
        meta_path,
        {
            **ident,
            "wall_seconds": wall,
            "examples_per_second": len(ds) / wall,
            "generation_backend": profile.classifier.backend if variant == "qra" else None,
            "code_version": code_version(),
        },
    )
    return rows
