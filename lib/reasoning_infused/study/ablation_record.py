"""The per-row record of an ablation arm: what anyone needs to recompute its numbers without the artifact store.

One gzipped JSON per arm and seed, `results/ablations/<study>/rows/<arm>/seed<k>.json.gz`, committed with the arm
file. For each classifier of the seed (the control and the arm's variants): its artifact key, optimizer steps and
supervised tokens, and for every evaluation set the predicted label of each decoding (free and, for Q->RA, scored
after its reasoning), the label scores rounded to 3 decimals and, on test, the generated reasoning; and the gold
label of every row of every set (version 2), so accuracies, paired differences and McNemar counts are recomputed
from the record alone. `ablate --rescore` reads a classifier's predictions from the store when it has them, else
from this record.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from statistics import fmean
from typing import Any

from reasoning_infused.analysis.tables import percent
from reasoning_infused.base.locations import results_root
from reasoning_infused.base.provenance import read_jsonl
from reasoning_infused.data.rows import evaluation_sets, task_of
from reasoning_infused.experiment import artifacts
from reasoning_infused.study.ablation_plan import Ablation, Arm, arm_sets, experiment_profile
from reasoning_infused.study.ablation_rows import rows_fingerprint

RECORD_VERSION = 2  # 2: the gold label of every row of every set


def record_path(abl: Ablation, arm: Arm, seed: int) -> Path:
    return abl.results_dir / "rows" / arm.name / f"seed{seed}.json.gz"


def _compact(row: dict[str, Any], with_reasoning: bool) -> dict[str, Any]:
    out: dict[str, Any] = {
        "predicted": row.get("predicted"),
        "scores": {k: round(v, 3) for k, v in (row.get("scores") or {}).items()},
    }
    for key in ("predicted_constrained", "predicted_sc_vote", "predicted_sc_logprob", "sc_labels"):
        if key in row:
            out[key] = row[key]
    if with_reasoning:
        for key in ("reasoning", "sc_reasonings"):
            if key in row:
                out[key] = row[key]
    return out


def committed_entry(name: str, key: str) -> tuple[Path, dict[str, Any]] | None:
    """An experiment's committed artifact entry (results/<experiment>/artifacts.json) with this name and key:
    (its results folder, its metadata); the same key means the same settings, so the same rows."""
    for meta in sorted(results_root().glob("*/artifacts.json")):
        entry = json.loads(meta.read_text()).get(name)
        if isinstance(entry, dict) and entry.get("key") == key:
            return meta.parent, entry
    return None


def prediction_rows(p: Any, variant: str, set_name: str) -> list[dict[str, Any]]:
    """One classifier's predictions on one set: from the store, else from an experiment's committed prediction
    file of the same key (results/<experiment>/predictions/); ArtifactMissing when neither has them."""
    art = artifacts.predictions_artifact(p, variant, set_name)
    if art.is_complete():
        return artifacts.read_predictions_artifact(p, variant, set_name)
    found = committed_entry(f"predictions_{variant}__{set_name}", art.key)
    path = found and found[0] / "predictions" / f"{variant}__{set_name}.jsonl"
    if path and path.exists():
        return read_jsonl(path)
    art.require()  # raises, naming the command that makes it
    return []


def build_record(abl: Ablation, arm: Arm, seed: int) -> dict[str, Any]:
    """The record of one seed, from the store or the committed predictions (ArtifactMissing names what is
    in neither)."""
    classifiers: dict[str, Any] = {}
    for control in (True, False):
        p = experiment_profile(abl, arm, seed, control)
        for v in p.classifier.variants:
            art = artifacts.classifier_artifact(p, v)
            meta = art.metadata() if art.is_complete() else {}
            if not meta:
                found = committed_entry(f"classifier_{v}", art.key)
                meta = found[1] if found else {}
            sets = {}
            for s in arm_sets(arm):
                rows = prediction_rows(p, v, s)
                sets[s] = {
                    "prediction_key": artifacts.predictions_artifact(p, v, s).key,
                    "rows": [_compact(r, s == "test") for r in rows],
                }
            classifiers[v] = {
                "role": "control" if control else "arm",
                "experiment": p.experiment,
                "classifier_key": art.key,
                "optimizer_steps": meta.get("optimizer_steps"),
                "supervised_tokens_per_epoch": meta.get("supervised_tokens_per_epoch"),
                "tokens_per_epoch": meta.get("tokens_per_epoch"),
                "num_epochs": p.classifier.train.num_epochs,
                "sets": sets,
            }
    return {
        "version": RECORD_VERSION,
        "study": abl.study,
        "arm": arm.name,
        "seed": seed,
        "gold": gold_labels(abl, arm, seed),
        "classifiers": classifiers,
    }


def gold_labels(abl: Ablation, arm: Arm, seed: int) -> dict[str, list[str]]:
    """The gold label (by name) of every row of every evaluation set the arm scores, in the predictions' order."""
    d = experiment_profile(abl, arm, seed, False).data
    sets = evaluation_sets(d, include_ood=arm.ood)
    labels = list(task_of(d).labels)
    return {s: [labels[i] for i in sets[s]["label"]] for s in arm_sets(arm)}


def write_record(abl: Ablation, arm: Arm, seed: int) -> Path:
    """Write (or rewrite) one seed's record; gzip without a timestamp, so the same rows give the same bytes."""
    path = record_path(abl, arm, seed)
    blob = json.dumps(build_record(abl, arm, seed), ensure_ascii=False, sort_keys=True).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as f:
        f.write(blob)
    tmp.replace(path)
    return path


def read_record(abl: Ablation, arm: Arm, seed: int) -> dict[str, Any] | None:
    path = record_path(abl, arm, seed)
    if not path.exists():
        return None
    return json.loads(gzip.decompress(path.read_bytes()))


def arm_records(abl: Ablation, arms: dict[str, dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The committed per-row records of these arms' finished seeds (arm -> records, seed order)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for arm in abl.arms:
        if arm.name in arms:
            seeds = [s["seed"] for s in arms[arm.name]["per_seed"]]
            out[arm.name] = [r for r in (read_record(abl, arm, seed) for seed in seeds) if r is not None]
    return out


def recorded_predictions(
    record: dict[str, Any] | None, variant: str, set_name: str, prediction_key: str
) -> list[dict[str, Any]] | None:
    """A classifier's predictions on one set as the record holds them, when they are the ones these settings
    resolve to (same prediction key); None otherwise."""
    if record is None or variant not in record["classifiers"]:
        return None
    entry = record["classifiers"][variant]["sets"].get(set_name)
    if entry is None or entry["prediction_key"] != prediction_key:
        return None
    return entry["rows"]


def backfill(abl: Ablation) -> dict[str, dict[str, list[int]]]:
    """Write the record of every seed of every finished arm that the store or the committed predictions can give;
    returns {arm: {"recorded": seeds, "missing": seeds}} (what could not be recovered is listed, never guessed)."""
    from reasoning_infused.study.ablation_results import arm_results

    out: dict[str, dict[str, list[int]]] = {}
    found = arm_results(abl)
    for arm in abl.arms:
        r = found.done.get(arm.name) or found.interim.get(arm.name)
        if r is None:
            continue
        seeds = [s["seed"] for s in r["per_seed"]]
        done, missing = [], []
        for seed in seeds:
            try:
                write_record(abl, arm, seed)
                done.append(seed)
            except artifacts.ArtifactMissing:
                missing.append(seed)
        out[arm.name] = {"recorded": done, "missing": missing}
    return out


# --- the records read back as row correctness (row-paired comparisons of arms) -----------------------------------


def record_correctness(record: dict[str, Any], selected: str | None) -> dict[str, dict[str, Any]]:
    """Per set and classifier decoding (the names of the arm file's comparisons; `qra_selected` is the decoding
    validation chose for this seed): which rows it got right. Empty for a record without gold (version 1)."""
    from reasoning_infused.pipeline.evaluate import predictions_by_classifier

    out: dict[str, dict[str, Any]] = {}
    for set_name, gold in (record.get("gold") or {}).items():
        rows = {
            v: c["sets"][set_name]["rows"] for v, c in record["classifiers"].items() if set_name in c["sets"]
        }
        preds = predictions_by_classifier(rows)
        if selected in preds:
            preds["qra_selected"] = preds[selected]
        out[set_name] = {
            k: [p is not None and p == g for p, g in zip(pr, gold, strict=True)] for k, pr in preds.items()
        }
    return out


def with_row_correctness(abl: Ablation, done: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The finished arms, each with `_rows` where every seed has a record with gold labels: per "set:decoding",
    the [seeds, rows] correctness and the control's classifier key per seed. Two arms (or two decodings of one
    arm) whose control keys agree share their Q->A models, so a shift between them is read row-paired (the
    control cancels). Arms without complete records are returned unchanged."""
    import numpy as np

    out = dict(done)
    records = arm_records(abl, done)
    for name, r in done.items():
        recs = records.get(name, [])
        if not r["per_seed"] or len(recs) != len(r["per_seed"]) or any(not x.get("gold") for x in recs):
            continue
        per_seed = [
            record_correctness(x, s.get("qra_selected_decoding"))
            for x, s in zip(recs, r["per_seed"], strict=True)
        ]
        keys = tuple(s["artifact_keys"].get("classifier_qa") for s in r["per_seed"])
        rows: dict[str, dict[str, Any]] = {}
        for set_name, decodings in per_seed[0].items():
            gold = [x["gold"].get(set_name) for x in recs]
            if any(g != gold[0] for g in gold):  # seeds scored on different rows: no [seeds, rows] array
                continue
            for k in decodings:
                got = [c.get(set_name, {}).get(k) for c in per_seed]
                if all(g is not None and len(g) == len(got[0]) for g in got):
                    rows[f"{set_name}:{k}"] = {
                        "control_keys": keys,
                        "rows": rows_fingerprint(gold[0]),
                        "correct": np.array(got, dtype=float),
                    }
        out[name] = {**r, "_rows": rows}
    return out


# --- the records read back as sentences (the reports and notebook 06) ---------------------------------------------

# a trained classifier by its training format (its decodings are named elsewhere)
TRAINED_NAMES = {"qa": "Q→A", "qra": "Q→RA", "qar": "Q→AR", "multitask": "multi-task"}


def _span(values: list[int]) -> str:
    lo, hi = min(values), max(values)
    return f"{lo:,}" if lo == hi else f"{lo:,}–{hi:,}"


def training_budget_line(records: list[dict[str, Any]]) -> str:
    """What each classifier of an arm was trained on, read from its per-row records (one per seed): optimizer
    steps, epochs and supervised tokens per epoch (a range when the seeds differ), and Q->A's supervised tokens as
    a share of each other classifier's (how much more a reasoning-infused example asks the loss to fit). Empty
    without records."""
    if not records:
        return ""
    per: dict[str, list[dict[str, Any]]] = {}
    for rec in records:
        for variant, c in rec["classifiers"].items():
            per.setdefault(variant, []).append(c)
    parts = []
    for variant, cs in per.items():
        epochs = sorted({float(c["num_epochs"]) for c in cs})
        parts.append(
            f"{TRAINED_NAMES.get(variant, variant)} ({'the control' if cs[0].get('role') == 'control' else 'the arm'}): "
            f"{_span([c['optimizer_steps'] for c in cs])} optimizer steps, "
            f"{'/'.join(f'{e:g}' for e in epochs)} epoch{'s' if epochs != [1.0] else ''}, "
            f"{_span([c['supervised_tokens_per_epoch'] for c in cs])} supervised tokens per epoch"
        )
    qa = per.get("qa")
    shares = []
    if qa:
        qa_tokens = fmean(c["supervised_tokens_per_epoch"] for c in qa)
        for variant, cs in per.items():
            if variant != "qa":
                share = qa_tokens / fmean(c["supervised_tokens_per_epoch"] for c in cs)
                shares.append(
                    f"Q→A's supervised tokens per epoch are {percent(share)} of "
                    f"{TRAINED_NAMES.get(variant, variant)}'s"
                )
    seeds = ", ".join(str(r["seed"]) for r in records)
    return (
        f"**Training** (per-row records, seed{'s' if len(records) > 1 else ''} {seeds}): "
        + "; ".join(parts)
        + (". " + "; ".join(shares) if shares else "")
        + "."
    )


def records_size(abl: Ablation) -> int:
    """Bytes of the study's committed per-row records (`rows/`, gzipped JSON)."""
    return sum(p.stat().st_size for p in (abl.results_dir / "rows").rglob("*.json.gz"))


def records_line(
    arms: dict[str, dict[str, Any]], records: dict[str, list[dict[str, Any]]], size_bytes: int | None = None
) -> str:
    """Which finished seeds have a committed per-row record (so `ablate --rescore` recomputes them from the
    repository alone), how large the records are, and which seeds have none (their rows lived only in one
    machine's artifact store)."""
    have = {a: {r["seed"] for r in recs} for a, recs in records.items()}
    total = sum(len(r["per_seed"]) for r in arms.values())
    missing = {
        a: [s["seed"] for s in r["per_seed"] if s["seed"] not in have.get(a, set())] for a, r in arms.items()
    }
    missing = {a: seeds for a, seeds in missing.items() if seeds}
    n_missing = sum(map(len, missing.values()))
    text = (
        "**Per-row records** (`rows/<arm>/seed<k>.json.gz`"
        + (f", {size_bytes / 1e6:.1f} MB in all" if size_bytes is not None else "")
        + f"): {total - n_missing} of {total} finished arm seeds have one, so `ablate --rescore` recomputes them "
        "from the repository alone"
    )
    if missing:
        text += (
            "; without one (their predictions lived only in the artifact store of the machine that ran them, "
            "and their numbers rest on the arm file alone): "
            + "; ".join(
                f"`{a}` seed{'s' if len(v) > 1 else ''} {', '.join(map(str, v))}" for a, v in missing.items()
            )
        )
    return text + "."
