"""Stage 2: one generated reasoning per emotion training example, streamed to a resumable JSONL file."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset
from transformers import PreTrainedTokenizerBase

from reasoning_infused.base.provenance import CorruptFile, append_jsonl, code_version, read_jsonl, write_json
from reasoning_infused.data.emotion import LABELS
from reasoning_infused.data.lexicon import quality_flags
from reasoning_infused.data.prompts import emotion_generator_prompt
from reasoning_infused.data.rows import classifier_train_rows, task_of
from reasoning_infused.experiment import artifacts
from reasoning_infused.experiment.settings import Profile
from reasoning_infused.pipeline import loading
from reasoning_infused.pipeline.engines import CT2Backend, VLLMBackend
from reasoning_infused.pipeline.inference import (
    GenerationBackend,
    TransformersBackend,
    generate_all,
)
from reasoning_infused.pipeline.modeling import load_tokenizer


class AugmentationMismatch(RuntimeError):
    """The JSONL file holds rows from another generator or prompt version."""


def is_flagged(flags: dict[str, bool]) -> bool:
    """Rows failing a quality rule: kept in the file, dropped by the classifier stage only if the profile says so."""
    return flags["empty"] or flags["degenerate"]


def _repair_torn_tail(path: Path) -> None:
    """Cut a last line that a kill left without its newline, so appends start on a fresh line."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as f:
        data = f.read()
        if not data.endswith(b"\n"):
            f.truncate(data.rfind(b"\n") + 1)


def generation_prompts(tok, rows: Dataset) -> list[str]:
    """Stage 2's prompt per row: Q = the row's text as its task shows it, A = its gold label."""
    names = rows.features["label"].names
    return [emotion_generator_prompt(tok, r["text"], names[r["label"]]) for r in rows]


def generation_backend(profile: Profile) -> tuple[GenerationBackend, PreTrainedTokenizerBase]:
    """The profile's trained generator behind its augmentation backend, and its tokenizer."""
    generator = artifacts.generator_artifact(profile)
    generator.require()  # says which command trains it
    backend_name = profile.augment.backend
    if backend_name == "vllm":  # vLLM loads the weights itself (a LoRA generator is merged once for it)
        tok = load_tokenizer(profile.model)
        return VLLMBackend(str(loading.merged_model_path(profile, generator)), tok), tok
    if backend_name in artifacts.CT2_COMPUTE_TYPES:  # converted once from the merged weights
        tok = load_tokenizer(profile.model)
        path = loading.ct2_model_path(profile, generator)
        return CT2Backend(path, tok, artifacts.CT2_COMPUTE_TYPES[backend_name]), tok
    model, tok = loading.load_generator(profile)
    return TransformersBackend(model, tok), tok


def decoding_kwargs(profile: Profile) -> dict[str, Any]:
    """The augmentation's decoding settings as `generate_batches` keywords (repetition control only when set)."""
    a = profile.augment
    kw: dict[str, Any] = {
        "do_sample": a.do_sample,
        "temperature": a.temperature,
        "top_p": a.top_p,
        "seed": a.seed,
    }
    if a.no_repeat_ngram_size:
        kw["no_repeat_ngram_size"] = a.no_repeat_ngram_size
    if a.repetition_penalty != 1.0:
        kw["repetition_penalty"] = a.repetition_penalty
    return kw


def heldout_reasonings(profile: Profile, rows: int, seed: int) -> list[dict[str, Any]]:
    """The generator's reasonings for `rows` emotion training rows outside the classifier's training subsample
    (`data.heldout_train_rows`), from the store when made before: {id, text, label, reasoning, n_tokens,
    finish_reason} per row."""
    from reasoning_infused.data.rows import heldout_train_rows

    art = artifacts.heldout_reasonings_artifact(profile, rows, seed)
    path = art.path / "reasonings.jsonl"
    if art.is_complete():
        return read_jsonl(path)
    ds = heldout_train_rows(profile.data, rows, seed)
    art.begin()
    backend, tok = generation_backend(profile)
    a = profile.augment
    t0 = time.time()
    gens = generate_all(
        backend,
        generation_prompts(tok, ds),
        a.max_new_tokens,
        a.batch_size,
        desc="held-out reasonings",
        **decoding_kwargs(profile),
    )
    out = [
        {
            "id": i,
            "text": t,
            "label": ds.features["label"].names[y],
            "reasoning": g.text,
            "n_tokens": g.n_tokens,
            "finish_reason": g.finish_reason,
        }
        for i, t, y, g in zip(ds["id"], ds["text"], ds["label"], gens, strict=True)
    ]
    path.unlink(missing_ok=True)  # rows of an interrupted run: never trusted (the artifact was not finished)
    append_jsonl(path, out)
    art.finish(
        {
            "rows": len(out),
            "wall_seconds": time.time() - t0,
            "code_version": code_version(),
            "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
        profile,
    )
    return out


def generate_reasonings(profile: Profile, limit_rows: int | None = None) -> Path:
    """Write one reasoning per classifier training example to reasonings.jsonl; resumes, never duplicates.

    `limit_rows` stops after that many new rows (used by tests to simulate a kill).
    """
    art = artifacts.augment_artifact(profile)
    generator = artifacts.generator_artifact(profile)
    generator.require()  # says which command trains it
    out = art.begin()
    path = out / "reasonings.jsonl"
    key = art.key
    _repair_torn_tail(path)
    done_rows = read_jsonl(path)
    for i, r in enumerate(done_rows, start=1):
        if r.get("key") != key:
            raise AugmentationMismatch(
                f"{path}:{i}: row was written by another generator or prompt version (key {r.get('key')} != {key}); "
                f"move the file away to regenerate (nothing was changed)"
            )
    first_line: dict[int, tuple[int, dict]] = {}
    for i, r in enumerate(done_rows, start=1):
        if r["id"] in first_line and first_line[r["id"]][1] != r:
            raise CorruptFile(
                f"{path}: row id {r['id']} appears twice with different content (lines {first_line[r['id']][0]} "
                f"and {i}); delete one of them (nothing was changed)"
            )
        first_line.setdefault(r["id"], (i, r))
    done = set(first_line)
    rows = classifier_train_rows(profile.data)
    todo = rows.filter(lambda r: r["id"] not in done)
    if limit_rows is not None:
        todo = todo.select(range(min(limit_rows, len(todo))))
    if len(todo) == 0:
        print(f"[augment] all {len(rows)} reasonings present in {path}")
        return path
    print(f"[augment] {len(done)} rows present, generating {len(todo)} with key {key}", flush=True)
    a = profile.augment
    backend, tok = generation_backend(profile)
    prompts = generation_prompts(tok, todo)
    names, task = todo.features["label"].names, task_of(profile.data)
    task = None if task.is_emotion_default else task  # (the emotion lexicon for the default task)
    t0, n_tokens = time.time(), 0
    for idx, gens in backend.generate_batches(
        prompts, a.max_new_tokens, batch_size=a.batch_size, desc="augmenting", **decoding_kwargs(profile)
    ):
        batch = []
        for i, g in zip(idx, gens, strict=True):
            r = todo[i]
            gold = names[r["label"]]
            flags = quality_flags(g.text, gold, g.finish_reason, task)
            batch.append(
                {
                    "id": r["id"],
                    "text": r["text"],
                    "label": gold,
                    "reasoning": g.text,
                    "n_tokens": g.n_tokens,
                    "finish_reason": g.finish_reason,
                    "flags": flags,
                    "flagged": is_flagged(flags),
                    "key": key,
                }
            )
            n_tokens += g.n_tokens
        append_jsonl(path, batch)
    wall = time.time() - t0
    stats_path = out / "generation_stats.json"
    prev = json.loads(stats_path.read_text()) if stats_path.exists() else {"runs": []}
    prev["runs"].append(
        {
            "rows": len(todo),
            "generated_tokens": n_tokens,
            "wall_seconds": wall,
            "tokens_per_second": n_tokens / wall,
            "examples_per_second": len(todo) / wall,
            "batch_size": a.batch_size,
            "backend": a.backend,
            # where the time went (transformers backend, greedy): prompt prefill vs token-by-token decoding
            "phases": dict(getattr(backend, "stats", {})),
            "code_version": code_version(),
        }
    )
    write_json(stats_path, prev)
    print(f"[augment] {len(todo)} rows, {n_tokens} tokens in {wall:.0f} s: {n_tokens / wall:.0f} tokens/s")
    return path


def quality_report(
    rows: list[dict[str, Any]], n_examples: int = 3, labels: list[str] | None = None
) -> dict[str, Any]:
    """Shares of rows per quality rule, length distribution, and a few examples of each problem."""
    n = len(rows)
    if n == 0:
        raise ValueError("no augmented rows to report on")
    lengths = np.array([r["n_tokens"] for r in rows])
    report: dict[str, Any] = {
        "rows": n,
        "tokens_mean": float(lengths.mean()),
        "tokens_median": float(np.median(lengths)),
        "tokens_p90": float(np.percentile(lengths, 90)),
        "tokens_max": int(lengths.max()),
        "flagged_share": sum(r["flagged"] for r in rows) / n,
    }
    for flag in ("empty", "degenerate", "cut_at_limit", "names_gold", "names_other"):
        report[f"{flag}_share"] = sum(r["flags"][flag] for r in rows) / n
        report[f"{flag}_examples"] = [
            {"text": r["text"], "label": r["label"], "reasoning": r["reasoning"]}
            for r in rows
            if r["flags"][flag]
        ][:n_examples]
    report["per_class_names_gold"] = {
        lab: float(np.mean([r["flags"]["names_gold"] for r in rows if r["label"] == lab] or [np.nan]))
        for lab in labels or LABELS
    }
    return report


def build_augmented_dataset(profile: Profile) -> dict[str, Any]:
    """Check the JSONL is complete, save it as a `datasets.Dataset` and the quality report inside the artifact,
    then mark the artifact complete. Returns its metadata."""
    art = artifacts.augment_artifact(profile)
    rows = read_jsonl(art.path / "reasonings.jsonl")
    expected = classifier_train_rows(profile.data)
    have = {r["id"] for r in rows}
    missing = [i for i in expected["id"] if i not in have]
    if missing:
        raise artifacts.ArtifactMissing(
            f"augmentation incomplete: {len(missing)} of {len(expected)} rows missing; rerun `{art.command}`"
        )
    by_id = {r["id"]: r for r in rows}
    ordered = [by_id[i] for i in expected["id"]]
    ds = Dataset.from_list(
        [
            {k: r[k] for k in ("id", "text", "label", "reasoning", "n_tokens", "finish_reason", "flagged")}
            for r in ordered
        ]
    )
    target = art.path / "dataset"
    if not target.exists():  # written once per key: the rows of a key never change
        tmp = target.with_name("dataset.partial")
        ds.save_to_disk(str(tmp))
        tmp.rename(target)
    report = quality_report(ordered, labels=list(task_of(profile.data).labels))
    write_json(art.path / "quality_report.json", report)
    stats_path = art.path / "generation_stats.json"
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else {"runs": []}
    return art.finish(
        {
            "rows": len(ordered),
            "generation_runs": stats["runs"],
            "wall_seconds": sum(r["wall_seconds"] for r in stats["runs"]),
            "quality": {k: v for k, v in report.items() if not k.endswith("_examples")},
            "code_version": code_version(),
            "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
        profile,
    )


def augment(profile: Profile, force: bool = False) -> dict[str, Any]:
    """Stage 2 end to end: generate (resumably), then save the dataset and the quality report. Reuses a complete
    augmentation of the same key; returns its metadata. With classifier.reasoning_samples = k > 1, makes the k
    sampled augmentations and returns the first one's metadata."""
    samples = artifacts.sample_profiles(profile)
    if len(samples) > 1:
        metas = []
        for j, q in enumerate(samples):
            print(f"[augment] reasoning sample {j + 1} of {len(samples)} (sampling seed {q.augment.seed})")
            metas.append(_augment_one(q, force))
        return metas[0]
    return _augment_one(profile, force)


def _augment_one(profile: Profile, force: bool) -> dict[str, Any]:
    art = artifacts.augment_artifact(profile)
    if art.is_complete() and not force:
        print(f"[augment] reusing {art.path}")
        return art.metadata()
    if force:
        art.begin(force=True)
    generate_reasonings(profile)
    return build_augmented_dataset(profile)
