"""Classifiers Q->A, Q->RA and Q->AR: training (same trainer as the generator) and prediction.

Q->A trains on the classifier training rows; Q->RA and Q->AR on the same rows with their generated reasoning
(rows whose reasoning is empty cannot make a target and are dropped, counted). Predictions are artifacts too:
keyed by the classifier, the decoding settings and the evaluation set, so a changed setting never reuses them.
"""

from __future__ import annotations

import json
import time
from typing import Any

import numpy as np
from datasets import Dataset

from reasoning_infused.base.provenance import code_version
from reasoning_infused.data.emotion import LABELS
from reasoning_infused.data.files import DataError
from reasoning_infused.data.prompts import (
    VARIANTS,
    answer_prefix,
    classifier_prompt,
    classifier_target,
    labels_after_reasoning_prompt,
    multitask_explain_target,
    multitask_prompt,
    parse_answer,
    split_reasoning,
    transform_reasoning,
)
from reasoning_infused.data.rows import classifier_train_rows, task_of
from reasoning_infused.data.task import Task
from reasoning_infused.experiment import artifacts
from reasoning_infused.experiment.settings import Profile
from reasoning_infused.pipeline import loading
from reasoning_infused.pipeline.engines import CT2Backend, VLLMBackend
from reasoning_infused.pipeline.inference import (
    AnswerScoring,
    GenerationBackend,
    TransformersBackend,
    generate_all,
)
from reasoning_infused.pipeline.modeling import load_tokenizer
from reasoning_infused.pipeline.scoring import label_token_ids, score_labels
from reasoning_infused.pipeline.training import SFTExample, distributed_state, train_sft


def classifier_examples(tok, rows, variant: str, task: Task | None = None) -> list[SFTExample]:
    """Prompt-completion pairs; each knows where its label sits in the completion (for label_loss_share). The
    multi-task classifier gets two per row: the label task and the explain task, told apart by their prompts.
    `task` None: the default emotion task."""
    examples = []
    labels = list(task.labels) if task is not None else None
    if variant == "multitask":
        for r in rows:
            target = classifier_target("qa", r["label"], labels=labels)
            start = len(answer_prefix()) + 1
            examples.append(
                SFTExample(
                    multitask_prompt(tok, r["text"], "answer", task),
                    target,
                    label_span=(start, start + len(r["label"])),
                )
            )
            examples.append(
                SFTExample(
                    multitask_prompt(tok, r["text"], "explain", task),
                    multitask_explain_target(r["reasoning"]),
                )
            )
        return examples
    for r in rows:
        target = classifier_target(variant, r["label"], r.get("reasoning", ""), labels=labels)
        find = (
            target.index if variant == "qar" else target.rindex
        )  # the answer line opens Q->AR, ends the others
        start = find(f"{answer_prefix()} {r['label']}") + len(answer_prefix()) + 1
        examples.append(
            SFTExample(
                classifier_prompt(tok, r["text"], task), target, label_span=(start, start + len(r["label"]))
            )
        )
    return examples


def training_rows(profile: Profile, variant: str) -> list[dict[str, Any]]:
    """The rows a variant trains on: {id, text, label name[, reasoning]} in the order of the training subset.
    Reasonings are the augmentation's (generated), or the task's human-written ones (classifier.reasoning_source
    human: the first explanation of each row, no generator)."""
    labels = task_of(profile.data).labels
    if variant == "qa" or profile.classifier.reasoning_source == "human":
        ds = classifier_train_rows(profile.data)
        rows = [
            {"id": i, "text": t, "label": labels[y]}
            for i, t, y in zip(ds["id"], ds["text"], ds["label"], strict=True)
        ]
        if variant == "qa":
            return rows
        human = ds["human_reasoning"]
        keep = [{**r, "reasoning": h} for r, h in zip(rows, human, strict=True) if h.strip()]
        if len(keep) < len(rows):
            print(
                f"[classifier-{variant}] {len(rows) - len(keep)} of {len(rows)} rows dropped (no human reasoning)"
            )
    else:
        keep = augmented_training_rows(profile, variant)
    transform = profile.classifier.reasoning_transform
    if transform != "none" and variant != "qa":
        seed = profile.classifier.train.seed
        keep = [
            {**r, "reasoning": transform_reasoning(transform, r["reasoning"], r["text"], seed + r["id"])}
            for r in keep
        ]
        print(f"[classifier-{variant}] reasonings transformed: {transform}")
    return keep


def augmented_training_rows(profile: Profile, variant: str) -> list[dict[str, Any]]:
    """The augmentation's rows (one, or k sampled ones: every row then appears k times), without the rows whose
    reasoning is empty (or flagged, with augment.drop_flagged)."""
    ds = [r for q in artifacts.sample_profiles(profile) for r in artifacts.augmented_dataset(q)]
    keep = [r for r in ds if r["reasoning"].strip() and not (profile.augment.drop_flagged and r["flagged"])]
    if len(keep) < len(ds):
        print(
            f"[classifier-{variant}] {len(ds) - len(keep)} of {len(ds)} augmented rows dropped (empty reasoning"
            f"{' or flagged' if profile.augment.drop_flagged else ''})"
        )
    if not keep:
        raise DataError(
            f"no augmented rows left to train on ({artifacts.augment_artifact(profile).path}): every reasoning is "
            "empty or flagged (augment.drop_flagged)"
        )
    return keep


def train_classifier(profile: Profile, variant: str, force: bool = False) -> dict[str, Any]:
    """Train (or reuse) one classifier for these settings; returns the artifact's metadata."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    art = artifacts.classifier_artifact(profile, variant)
    if art.is_complete() and not force:
        meta = art.metadata()
        print(
            f"[classifier-{variant}] reusing {art.path} (trained {meta.get('finished_at', '?')}); --force retrains"
        )
        return meta
    rows = training_rows(profile, variant)  # before begin(): a missing augmentation leaves no empty folder
    state = distributed_state()
    with (
        state.main_process_first()
    ):  # under a launcher, only the main process prepares and finishes the folder
        out = art.begin(force) if state.is_main_process else art.path
    tok = load_tokenizer(profile.model)
    task = task_of(profile.data)
    meta = train_sft(
        profile.model,
        profile.classifier.train,
        classifier_examples(tok, rows, variant, None if task.is_emotion_default else task),
        out,
        name=f"classifier-{variant}",
    )
    if not state.is_main_process:
        return meta
    return art.finish({**meta, "variant": variant, "train_rows": len(rows)}, profile)


_VLLM_ENGINES: dict[str, VLLMBackend] = {}  # one engine per process and model: the splits share it


def _generation_backend(profile: Profile, model, tok) -> GenerationBackend:
    """Q->RA free generation: the transformers model already loaded, CTranslate2 or a vLLM engine on the merged
    weights."""
    backend = profile.classifier.backend
    if backend in artifacts.CT2_COMPUTE_TYPES:
        qra = artifacts.classifier_artifact(profile, "qra")
        return CT2Backend(loading.ct2_model_path(profile, qra), tok, artifacts.CT2_COMPUTE_TYPES[backend])
    if backend != "vllm":
        return TransformersBackend(model, tok)
    path = str(loading.merged_model_path(profile, artifacts.classifier_artifact(profile, "qra")))
    if path not in _VLLM_ENGINES:
        _VLLM_ENGINES[path] = VLLMBackend(
            path, tok, gpu_memory_utilization=profile.classifier.vllm_gpu_memory_utilization
        )
    return _VLLM_ENGINES[path]


def labels_after_generated_reasoning(
    model, tok, texts: list[str], gens, batch_size: int, desc: str = "", task: Task | None = None
) -> tuple[np.ndarray, int]:
    """Label log-probabilities [n, 6] after each generated reasoning (the prompt `labels_after_reasoning_prompt`
    builds) and how many rows took them from the generation pass.

    A row's scores from generation (`Generation.answer_scores`) are used only when that prompt's tokens are
    exactly the classifier prompt's tokens followed by the tokens the model generated up to the answer prefix:
    then they are the same computation. Every other row (no answer line, cut, a reasoning that re-tokenises
    differently, a backend that does not score) is scored in a second pass."""
    reasonings = [split_reasoning(g.text, "qra") for g in gens]
    prompts = [labels_after_reasoning_prompt(tok, t, r, task) for t, r in zip(texts, reasonings, strict=True)]
    labels = list(task.labels) if task is not None else None
    scores = np.zeros((len(texts), len(labels or LABELS)), dtype=np.float64)
    missing = []
    for i, (t, g, p) in enumerate(zip(texts, gens, prompts, strict=True)):
        a = g.answer_scores
        same = a is not None and tok.encode(p, add_special_tokens=False) == tok.encode(
            classifier_prompt(tok, t, task), add_special_tokens=False
        ) + list(a.prefix_ids)
        if same:
            scores[i] = a.logprobs
        else:
            missing.append(i)
    if missing:
        scores[missing] = score_labels(
            model,
            tok,
            [prompts[i] for i in missing],
            batch_size,
            labels=labels or LABELS,
            desc=f"{desc} constrained scoring",
        )
    return scores, len(texts) - len(missing)


def answer_scoring(tok, labels: list[str] | None = None) -> AnswerScoring | None:
    """What greedy generation needs to score the labels where a Q->RA output writes its answer prefix; None when
    two labels share a first token (then only the full second pass scores them)."""
    first = [ids[0] for ids in label_token_ids(tok, labels or LABELS)]
    if len(set(first)) != len(first):
        return None
    return AnswerScoring(tok.encode(answer_prefix(), add_special_tokens=False), first)


def predict(
    model,
    tok,
    variant: str,
    texts: list[str],
    golds: list[int],
    profile: Profile,
    desc: str = "",
    score_during_generation: bool = True,
) -> list[dict[str, Any]]:
    """Predictions with per-label scores. Q->A, Q->AR, multi-task (its label task) and zero-shot: label scoring
    (no parse failures).
    Q->RA: greedy generation, parsed (failures reported, never mapped to a class), plus the constrained variant
    that scores the six labels after the generated reasoning: taken from the generation pass where a row wrote
    the answer line (`score_during_generation`; same scores, tested), else from a second pass."""
    bs = profile.classifier.predict_batch_size
    full_task = task_of(profile.data)
    task = None if full_task.is_emotion_default else full_task
    labels = list(full_task.labels)
    base_prompts = [classifier_prompt(tok, t, task) for t in texts]
    rows: list[dict[str, Any]] = []
    if variant in ("qa", "qar", "zero_shot", "multitask"):
        prefix = answer_prefix()
        if variant == "multitask":  # the label task's prompt
            base_prompts = [multitask_prompt(tok, t, "answer", task) for t in texts]
        scores = score_labels(
            model, tok, [p + prefix for p in base_prompts], bs, labels=labels, desc=f"{desc} scoring"
        )
        for t, g, s in zip(texts, golds, scores, strict=True):
            pred = labels[int(np.argmax(s))]
            rows.append(
                {
                    "text": t,
                    "gold": labels[g],
                    "predicted": pred,
                    "generated": f"{prefix} {pred}",
                    "scores": dict(zip(labels, map(float, s), strict=True)),
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
        answer_scoring=answer_scoring(tok, labels) if score_during_generation else None,
    )
    reasonings = [split_reasoning(g.text, "qra") for g in gens]
    scores, reused = labels_after_generated_reasoning(model, tok, texts, gens, bs, desc, task)
    print(
        f"[predict] {desc}: labels after the reasoning scored during generation for {reused:,} of "
        f"{len(texts):,} rows, {len(texts) - reused:,} in a second pass",
        flush=True,
    )
    sc = self_consistency(profile, model, tok, texts, base_prompts, labels, task, desc)
    for i, (t, g, gen, r, s) in enumerate(zip(texts, golds, gens, reasonings, scores, strict=True)):
        parsed = parse_answer(gen.text, labels)
        rows.append(
            {
                "text": t,
                "gold": labels[g],
                "predicted": parsed,
                "generated": gen.text,
                "reasoning": r,
                "n_tokens": gen.n_tokens,
                "finish_reason": gen.finish_reason,
                "parse_failed": parsed is None,
                "predicted_constrained": labels[int(np.argmax(s))],
                "scores": dict(zip(labels, map(float, s), strict=True)),
                **({k: v[i] for k, v in sc.items()} if sc else {}),
            }
        )
    return rows


def combine_samples(sample_scores: np.ndarray, labels: list[str]) -> tuple[list[str], list[str]]:
    """Self-consistency over k sampled reasonings per row ([k, n, labels] label log-probabilities after each):
    the majority vote of each sample's label (ties to the higher summed log-probability) and the label with the
    highest summed log-probability (each sample's scores normalised over the labels first)."""
    norm = sample_scores - np.logaddexp.reduce(sample_scores, axis=2, keepdims=True)
    summed = norm.sum(axis=0)  # [n, labels]
    votes = np.zeros_like(summed)
    for j in range(sample_scores.shape[0]):
        votes[np.arange(summed.shape[0]), sample_scores[j].argmax(axis=1)] += 1
    vote = [labels[int(np.lexsort((summed[i], votes[i]))[-1])] for i in range(len(summed))]
    logprob = [labels[int(np.argmax(summed[i]))] for i in range(len(summed))]
    return vote, logprob


def self_consistency(
    profile: Profile, model, tok, texts, base_prompts, labels, task, desc: str
) -> dict[str, list]:
    """classifier.self_consistency = k > 0: k sampled reasonings per row, the labels scored after each, combined
    by vote and by summed log-probability; {} when off."""
    c = profile.classifier
    if not c.self_consistency:
        return {}
    bs = c.predict_batch_size
    backend = _generation_backend(profile, model, tok)
    scoring = answer_scoring(tok, labels)
    scores, samples = [], []
    for j in range(c.self_consistency):
        gens = generate_all(
            backend,
            base_prompts,
            c.max_new_tokens,
            bs,
            desc=f"{desc} sample {j + 1}/{c.self_consistency}",
            do_sample=True,
            temperature=c.sc_temperature,
            top_p=c.sc_top_p,
            seed=c.sc_seed + j,
            answer_scoring=scoring,
        )
        s, _ = labels_after_generated_reasoning(model, tok, texts, gens, bs, f"{desc} sample {j + 1}", task)
        scores.append(s)
        samples.append([split_reasoning(g.text, "qra") for g in gens])
    vote, logprob = combine_samples(np.stack(scores), labels)
    return {
        "predicted_sc_vote": vote,
        "predicted_sc_logprob": logprob,
        "sc_labels": [[labels[int(np.argmax(s[i]))] for s in scores] for i in range(len(texts))],
        "sc_reasonings": [list(x) for x in zip(*samples, strict=True)],
    }


def predict_set(
    profile: Profile, variant: str, split: str, ds: Dataset, model=None, tok=None, force: bool = False
) -> list[dict[str, Any]]:
    """Predictions of one classifier on one evaluation set, from the store when this exact request was made
    before (same classifier key, decoding settings and evaluation rows), else computed and stored."""
    art = artifacts.predictions_artifact(profile, variant, split)
    path = art.path / "predictions.jsonl"
    if art.is_complete() and not force:
        return artifacts.read_predictions_artifact(profile, variant, split)
    if model is None:
        model, tok = loading.load_classifier(profile, variant)
    art.begin(force)
    t0 = time.time()
    rows = predict(model, tok, variant, ds["text"], ds["label"], profile, desc=f"{variant}/{split}")
    wall = time.time() - t0
    for r in rows:  # keeps the committed prediction files small
        r["scores"] = {k: round(v, 4) for k, v in r["scores"].items()}
    tmp = path.with_suffix(".tmp")
    with tmp.open("w") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    tmp.replace(path)
    art.finish(
        {
            "rows": len(rows),
            "wall_seconds": wall,
            "examples_per_second": len(rows) / wall,
            "generation_backend": profile.classifier.backend if variant == "qra" else None,
            "code_version": code_version(),
            "finished_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        },
        profile,
    )
    return rows


def predict_all(
    profile: Profile, sets: dict[str, Dataset], force: bool = False, variants: list[str] | None = None
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Predictions of every classifier of the profile (and zero-shot), or of `variants`, on every set:
    {set: {classifier: rows}}. Each model is loaded once, and only when one of its sets is not in the store yet."""
    if variants is None:
        variants = list(profile.classifier.variants) + (["zero_shot"] if profile.evaluate.zero_shot else [])
    out: dict[str, dict[str, list[dict[str, Any]]]] = {s: {} for s in sets}
    for v in variants:
        model = tok = None
        for sname, ds in sets.items():
            if model is None and (
                force or not artifacts.predictions_artifact(profile, v, sname).is_complete()
            ):
                model, tok = loading.load_classifier(profile, v)
            out[sname][v] = predict_set(profile, v, sname, ds, model, tok, force)
        del model
    return out


def predict_sets(profile: Profile, variants: list[str], set_names: list[str], force: bool = False) -> None:
    """Predict the named evaluation sets (validation, test, ood_<name>) with each variant into the store; each
    model is loaded once, and only if one of its sets is missing."""
    from reasoning_infused.data.rows import evaluation_sets

    sets = evaluation_sets(profile.data, include_ood=any(s.startswith("ood_") for s in set_names))
    unknown = [s for s in set_names if s not in sets]
    if unknown:
        raise ValueError(f"unknown evaluation set(s) {unknown}; known: {', '.join(sets)}")
    predict_all(profile, {s: sets[s] for s in set_names}, force, variants=variants)
