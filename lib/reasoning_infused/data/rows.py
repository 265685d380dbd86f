"""Data layer: the rows of a task (task.py: dair-ai/emotion by default, e-SNLI, or a user's files), the
(question, answer, reasoning) triples of the generator, and the out-of-domain sets.

Every loader returns a `datasets.Dataset`; a task's rows have `text` (its inputs as the task shows them), `label`
(the task's labels) and, when the task names one, `human_reasoning`. Bad input raises `DataError` naming the file
and line.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset

from reasoning_infused.data.emotion import OOD_SETS, emotion_fingerprint, load_emotion, load_ood
from reasoning_infused.data.esnli import load_esnli_split
from reasoning_infused.data.files import (
    DataConfig,
    DataError,
    DataNotFound,
    file_fingerprint,
    read_lines,
    resolve_dir,
    task_features,
)
from reasoning_infused.data.task import Task, load_task

SPLITS = ("train", "validation", "test")


def task_of(d: DataConfig) -> Task:
    """The task a profile's data section names (TaskError names the task file and key when it is bad)."""
    return load_task(d.task)


def labels_of(d: DataConfig) -> list[str]:
    return list(task_of(d).labels)


def stratified_subsample(ds: Dataset, n: int, seed: int, label_column: str = "label") -> Dataset:
    """`n` rows with the class proportions of `ds` (largest remainders), in a seeded order; n=0 or n>=len: all."""
    if n <= 0 or n >= len(ds):
        return ds
    rng = np.random.default_rng(seed)
    labels = np.asarray(ds[label_column])
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts / counts.sum() * n
    take = np.floor(exact).astype(int)
    for j in np.argsort(-(exact - take))[: n - take.sum()]:
        take[j] += 1
    idx = []
    for c, k in zip(classes, take, strict=True):
        members = np.flatnonzero(labels == c)
        idx.extend(rng.choice(members, size=k, replace=False).tolist())
    idx = sorted(idx)
    return ds.select(idx)


# --- reasoning triples -----------------------------------------------------------------------------------------


# --- out-of-domain sets (evaluation only) -----------------------------------------------------------------------


def duplicate_report(splits: dict[str, Dataset]) -> dict[str, Any]:
    """Duplicated texts within each split (and how many carry conflicting labels) and texts shared across splits."""
    out: dict[str, Any] = {}
    labels_by_text: dict[str, dict[str, set[int]]] = {}
    for s, ds in splits.items():
        m: dict[str, set[int]] = {}
        counts = Counter(ds["text"])
        for t, y in zip(ds["text"], ds["label"], strict=True):
            m.setdefault(t, set()).add(y)
        labels_by_text[s] = m
        dup = [t for t, c in counts.items() if c > 1]
        out[f"{s}_duplicated_texts"] = len(dup)
        out[f"{s}_duplicates_with_conflicting_labels"] = sum(1 for t in dup if len(m[t]) > 1)
    names = list(splits)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            out[f"{a}&{b}_shared_texts"] = len(set(labels_by_text[a]) & set(labels_by_text[b]))
    return out


# --- what each stage reads: row selection and fingerprints ------------------------------------------------------


def load_split(d: DataConfig, split: str) -> Dataset:
    """One split ('train', 'validation', 'test') of the profile's task, every row of it."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    task = task_of(d)
    if task.reader == "dair-ai/emotion":
        return load_emotion(split, d.emotion_dir, d.emotion_hub_id)
    if task.reader == "esnli":
        return load_esnli_split(task, split, d.reasoning_dir)
    if task.reader == "hub":
        return load_hub_split(task, split)
    return read_task_file(task, split)


def classifier_train_rows(d: DataConfig) -> Dataset:
    """The classifier training examples (a stratified subsample of train, seeded by data.seed), with row ids."""
    train = load_split(d, "train")
    train = train.add_column("id", list(range(len(train))))
    return stratified_subsample(train, d.train_size, d.seed)


def heldout_train_rows(d: DataConfig, n: int, seed: int) -> Dataset:
    """A stratified sample of n training rows outside the classifier's training subsample (with row ids):
    rows to judge generated reasonings on that no classifier of this profile trains on."""
    train = load_split(d, "train")
    train = train.add_column("id", list(range(len(train))))
    used = set(classifier_train_rows(d)["id"])
    rest = train.filter(lambda r: r["id"] not in used)
    if n > len(rest):
        raise DataError(
            f"{n} held-out training rows requested, only {len(rest)} outside the training subsample"
        )
    return stratified_subsample(rest, n, seed)


def evaluation_sets(d: DataConfig, include_ood: bool = True) -> dict[str, Dataset]:
    """validation (for choices), test (reported), and the task's out-of-domain sets (evaluation only)."""
    sets = {
        "validation": stratified_subsample(load_split(d, "validation"), d.val_size, d.seed),
        "test": stratified_subsample(load_split(d, "test"), d.test_size, d.seed),
    }
    if include_ood:
        for name in ood_sets_of(d):
            sets[f"ood_{name}"] = stratified_subsample(
                load_ood(name, d.ood_dir, d.goemotions_test_only), d.ood_size, d.seed
            )
    return sets


def ood_sets_of(d: DataConfig) -> list[str]:
    """The out-of-domain sets of the profile's task (GoEmotions and ISEAR for emotion; none elsewhere yet)."""
    return [name for name in OOD_SETS if name in task_of(d).ood]


# --- a task's own rows: files (TSV, CSV, JSONL with a header), the hub, e-SNLI ----------------------------------


def _records(path: Path) -> tuple[list[str], list[tuple[int, dict[str, Any]]]]:
    """(columns, [(line number, row)]) of a TSV, CSV or JSONL file with a header (JSONL: the keys of its rows)."""
    import csv
    import json

    lines = read_lines(path)
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows, columns = [], []
        for i, line in enumerate(lines, start=1):
            if not line.strip():
                raise DataError(f"{path}:{i}: blank line (only blank lines at the end of a file are ignored)")
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{i}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path}:{i}: expected a JSON object per line")
            columns = columns or list(row)
            rows.append((i, row))
        return columns, rows
    if not lines:
        raise DataError(f"{path}: empty file (expected a header and rows)")
    dialect = {"delimiter": "\t", "quoting": csv.QUOTE_NONE} if suffix == ".tsv" else {}
    reader = csv.reader(lines, **dialect)
    header = [h.strip() for h in next(reader)]
    rows = []
    for i, fields in enumerate(reader, start=2):
        if not any(f.strip() for f in fields):
            raise DataError(f"{path}:{i}: blank line (only blank lines at the end of a file are ignored)")
        if len(fields) != len(header):
            raise DataError(f"{path}:{i}: {len(fields)} fields, the header has {len(header)}")
        rows.append((i, dict(zip(header, fields, strict=True))))
    return header, rows


def read_task_file(task: Task, split: str) -> Dataset:
    """The rows of one split from the task's `files`: every input column and `label` must be there, every label
    one the task declares, and the split must not be empty (errors name the data file and line, and the task
    file's key)."""
    path = task.files[split]
    where = f"(task {task.path}, files.{split})"
    columns, rows = _records(path)
    needed = [*task.inputs, "label"] + ([task.reasoning_column] if task.reasoning_column else [])
    missing = [c for c in needed if c not in columns]
    if missing and rows:
        raise DataError(f"{path}:1: no column {missing} {where}; the header has {columns}")
    if not rows:
        raise DataError(f"{path}: no rows: the {split} split is empty {where}")
    texts, labels, reasonings = [], [], []
    for i, row in rows:
        if any(c not in row for c in needed):
            raise DataError(f"{path}:{i}: missing field(s) {[c for c in needed if c not in row]} {where}")
        label = str(row["label"]).strip()
        if label not in task.labels:
            raise DataError(
                f"{path}:{i}: label {label!r} is not one the task declares ({', '.join(task.labels)}) {where}"
            )
        for c in task.inputs:
            if not str(row[c]).strip():
                raise DataError(f"{path}:{i}: empty {c!r} {where}")
        texts.append(task.render(row))
        labels.append(task.labels.index(label))
        if task.reasoning_column:
            reasonings.append(str(row[task.reasoning_column]).strip())
    data: dict[str, list[Any]] = {"text": texts, "label": labels}
    if task.reasoning_column:
        data["human_reasoning"] = reasonings
    return Dataset.from_dict(data, features=task_features(task, bool(task.reasoning_column)))


def load_hub_split(task: Task, split: str) -> Dataset:
    """One split of a hub dataset (`hub: {id, config, splits: {train: ..}, columns: {<input>: .., label: ..}}`),
    for users with network access. Labels may be names or ids in the task's order."""
    from datasets import load_dataset

    h = task.hub
    cols = {c: c for c in [*task.inputs, "label"]} | dict(h.get("columns") or {})
    name = (h.get("splits") or {}).get(split, split)
    try:
        ds = load_dataset(h["id"], h.get("config"), split=name)
    except (ConnectionError, OSError) as e:
        raise DataNotFound(f"{h['id']} ({split}): could not be loaded: {type(e).__name__}: {e}") from None
    missing = [v for v in cols.values() if v not in ds.column_names]
    if missing:
        raise DataError(
            f"{task.path}: hub.columns: {h['id']} has no column {missing}; it has {ds.column_names}"
        )
    names = getattr(ds.features[cols["label"]], "names", None)

    def convert(r: dict[str, Any]) -> dict[str, Any]:
        y = r[cols["label"]]
        label = names[y] if names and isinstance(y, int) else str(y)
        if label not in task.labels:
            raise DataError(f"{h['id']} ({split}): label {label!r} is not one the task {task.path} declares")
        return {"text": task.render({c: r[cols[c]] for c in task.inputs}), "label": task.labels.index(label)}

    out = ds.map(convert, remove_columns=ds.column_names)
    return out.cast(task_features(task, False))


def split_fingerprint(d: DataConfig, split: str) -> str:
    """Identity of one split of the profile's task as read: the file's hash, or the hub id."""
    task = task_of(d)
    if task.reader == "files":
        return f"file:{file_fingerprint(task.files[split])}"
    if task.reader == "hub":
        return f"hub:{task.hub['id']}:{split}"
    if task.reader == "esnli":
        folder = resolve_dir(d.reasoning_dir, "RI_REASONING_DIR", "reasoning")
        if folder is None:
            raise DataNotFound("e-SNLI folder not found; set data.reasoning_dir")
        part = "test" if split == "test" else "dev"
        stems = ("s1", "s2", "labels", "preproc1_expl_1", "preproc1_expl_2", "preproc1_expl_3")
        digest = "".join(file_fingerprint(folder / "esnli" / f"{stem}.{part}") for stem in stems)
        return f"esnli:{split}:{hashlib.sha256(digest.encode()).hexdigest()[:16]}"
    return emotion_fingerprint(d, split)


def evaluation_set_identity(d: DataConfig, name: str) -> dict[str, Any]:
    """Everything that decides which rows an evaluation set holds: source file, size, seed (and GoEmotions' pool)."""
    if name.startswith("ood_"):
        ood = name[4:]
        folder = resolve_dir(d.ood_dir, "RI_OOD_DIR", "ood")
        if folder is None:
            raise DataError("out-of-domain folder not found; set data.ood_dir or RI_OOD_DIR")
        fname = "mapped_test_only.tsv" if (ood == "goemotions" and d.goemotions_test_only) else "mapped.tsv"
        path = folder / OOD_SETS[ood] / fname
        if not path.exists():
            raise DataNotFound(f"{path}: file not found")
        return {"set": name, "source": f"file:{file_fingerprint(path)}", "size": d.ood_size, "seed": d.seed}
    size = {"validation": d.val_size, "test": d.test_size}[name]
    identity = {"set": name, "source": split_fingerprint(d, name), "size": size, "seed": d.seed}
    task = task_of(d).identity()
    return identity if task is None else {**identity, "task": task}  # (no entry for emotion: keys unchanged)


# --- the emotion lexicon: which emotions a text names -----------------------------------------------------------
