"""Data layer: the rows of a task (task.py: dair-ai/emotion by default, e-SNLI, or a user's files), the
(question, answer, reasoning) triples of the generator, and the out-of-domain sets.

Every loader returns a `datasets.Dataset`; a task's rows have `text` (its inputs as the task shows them), `label`
(the task's labels) and, when the task names one, `human_reasoning`. Bad input raises `DataError` naming the file
and line.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from datasets import ClassLabel, Dataset, Features, Value

from .locations import shared_data_dir
from .task import DEFAULT_TASK, Task, load_task

# Label ids of dair-ai/emotion on the hub (the default task's labels; every other task brings its own).
LABELS: list[str] = list(load_task(DEFAULT_TASK).labels)
SPLITS = ("train", "validation", "test")
_SPLIT_FILES = {"train": "train.txt", "validation": "val.txt", "test": "test.txt"}

# Known sizes and class counts of dair-ai/emotion ("split" config), checked and reported by `summarize_emotion`.
KNOWN_EMOTION_COUNTS: dict[str, dict[str, int]] = {
    "train": {"sadness": 4666, "joy": 5362, "love": 1304, "anger": 2159, "fear": 1937, "surprise": 572},
    "validation": {"sadness": 550, "joy": 704, "love": 178, "anger": 275, "fear": 212, "surprise": 81},
    "test": {"sadness": 581, "joy": 695, "love": 159, "anger": 275, "fear": 224, "surprise": 66},
}

FLAN_SOURCES = ["aqua", "creak", "ecqa", "gsm8k", "qasc", "sensemaking", "strategyqa"]
REASONING_SOURCES = FLAN_SOURCES + ["esnli", "hub"]

OOD_SETS = {"goemotions": "goemotions", "isear": "isear"}


class DataError(ValueError):
    """Bad or missing input data; the message names the file and line."""


class DataNotFound(DataError):
    """An input file or folder does not exist (as opposed to one that exists and is malformed)."""


@dataclass
class DataConfig:
    """The `data` section of a profile: where the data come from and which rows each stage uses."""

    # The task (task.py): a shipped task's name (emotion, esnli) or a task file's path. A profile's top-level
    # `task:` key and every command's --task set it.
    task: str = DEFAULT_TASK
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
    # Seed of every subsample (classifier training rows, validation, test, out-of-domain, generator triples) and
    # of the bootstrap: kept fixed while the training seeds vary, so seeds share the same evaluation rows.
    seed: int = 0


def emotion_features() -> Features:
    return Features({"text": Value("string"), "label": ClassLabel(names=LABELS)})


def task_of(d: DataConfig) -> Task:
    """The task a profile's data section names (TaskError names the task file and key when it is bad)."""
    return load_task(d.task)


def labels_of(d: DataConfig) -> list[str]:
    return list(task_of(d).labels)


def resolve_dir(configured: str, env_var: str, default_sub: str) -> Path | None:
    """Profile value, else environment variable, else ../shared/data/<sub> when it exists, else None (use the hub)."""
    if configured:
        return Path(configured)
    if os.environ.get(env_var):
        return Path(os.environ[env_var])
    d = shared_data_dir() / default_sub
    return d if d.exists() else None


def _read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file: a leading byte-order mark is dropped, Windows line ends (CRLF) are read like
    Unix ones, and blank lines at the end are ignored; anything else is kept for the parser to judge."""
    if not path.exists():
        raise DataNotFound(f"{path}: file not found")
    if path.is_dir():
        raise DataError(f"{path}: is a folder, expected a file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: bytes that are not UTF-8 ({e.reason} at byte {e.start})") from None
    text = text.removeprefix("\ufeff").replace("\r\n", "\n")
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def parse_emotion_file(path: Path) -> Dataset:
    """Read one dair-ai split file: one `text;label` per line, label a name from LABELS."""
    texts, labels = [], []
    for i, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            raise DataError(f"{path}:{i}: blank line (only blank lines at the end of a file are ignored)")
        if ";" not in line:
            raise DataError(f"{path}:{i}: no ';' separating text and label: {line[:60]!r}")
        text, label = line.rsplit(";", 1)
        label = label.strip()
        if label not in LABELS:
            raise DataError(f"{path}:{i}: unknown label {label!r} (expected one of {', '.join(LABELS)})")
        if not text.strip():
            raise DataError(f"{path}:{i}: empty text")
        texts.append(text)
        labels.append(LABELS.index(label))
    if not texts:
        raise DataError(f"{path}: no rows")
    return Dataset.from_dict({"text": texts, "label": labels}, features=emotion_features())


def load_emotion(split: str, emotion_dir: str = "", hub_id: str = "dair-ai/emotion") -> Dataset:
    """One split ('train', 'validation' or 'test') of dair-ai/emotion, from a local folder or the hub."""
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    local = resolve_dir(emotion_dir, "RI_EMOTION_DIR", "emotion")
    if local is not None:
        if not local.is_dir():
            raise DataNotFound(f"{local}: emotion folder not found")
        path = local / _SPLIT_FILES[split]
        if not path.exists():
            raise DataNotFound(f"{path}: split file for '{split}' not found")
        return parse_emotion_file(path)
    from datasets import load_dataset  # hub path, for users with network access

    try:
        ds = load_dataset(hub_id, "split", split=split)
    except (ConnectionError, OSError) as e:  # no network, no cached copy: a missing input, not a bug
        raise DataNotFound(
            f"no local emotion folder (data.emotion_dir, $RI_EMOTION_DIR or ../shared/data/emotion) and the hub "
            f"copy of {hub_id} could not be loaded: {type(e).__name__}: {str(e).splitlines()[0][:200]}"
        ) from None
    if ds.features["label"].names != LABELS:
        raise DataError(f"{hub_id}: label names {ds.features['label'].names} differ from {LABELS}")
    return ds


@dataclass
class SplitSummary:
    split: str
    rows: int
    counts: dict[str, int]
    matches_known: bool


def summarize_emotion(splits: dict[str, Dataset]) -> list[SplitSummary]:
    out = []
    for split, ds in splits.items():
        c = Counter(ds["label"])
        counts = {name: c.get(i, 0) for i, name in enumerate(LABELS)}
        out.append(SplitSummary(split, len(ds), counts, counts == KNOWN_EMOTION_COUNTS.get(split)))
    return out


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


def _read_flan_tsv(path: Path, source: str) -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {"source": [], "question": [], "answer": [], "reasoning": []}
    for i, line in enumerate(_read_lines(path), start=1):
        parts = line.split("\t")
        if len(parts) != 3:
            raise DataError(
                f"{path}:{i}: expected 3 tab-separated fields (question, answer, rationale), got {len(parts)}"
            )
        q, a, r = (p.replace("\\n", "\n").strip() for p in parts)
        if not q or not a or not r:
            raise DataError(f"{path}:{i}: empty question, answer or rationale")
        rows["source"].append(source)
        rows["question"].append(q)
        rows["answer"].append(a)
        rows["reasoning"].append(r)
    return rows


def _read_esnli(folder: Path) -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {"source": [], "question": [], "answer": [], "reasoning": []}
    for split in ("dev", "test"):
        s1 = _read_lines(folder / f"s1.{split}")
        s2 = _read_lines(folder / f"s2.{split}")
        lab = _read_lines(folder / f"labels.{split}")
        ex = _read_lines(folder / f"preproc1_expl_1.{split}")
        if not (len(s1) == len(s2) == len(lab) == len(ex)):
            raise DataError(
                f"{folder}: e-SNLI {split} files are not line-aligned ({len(s1)}, {len(s2)}, {len(lab)}, {len(ex)})"
            )
        for i, (p, h, y, e) in enumerate(zip(s1, s2, lab, ex, strict=True), start=1):
            if y not in {"entailment", "neutral", "contradiction"}:
                raise DataError(f"{folder / ('labels.' + split)}:{i}: unknown NLI label {y!r}")
            q = (
                f"Premise: {p.strip()}\nHypothesis: {h.strip()}\nDoes the premise entail the hypothesis?\n"
                "Options:\n- entailment\n- neutral\n- contradiction"
            )
            rows["source"].append("esnli")
            rows["question"].append(q)
            rows["answer"].append(y)
            rows["reasoning"].append(e.strip())
    return rows


def load_reasoning_triples(
    sources: list[str], reasoning_dir: str = "", hub_id: str = "", columns: list[str] | None = None
) -> Dataset:
    """(source, question, answer, reasoning) rows from the named sources (FLAN CoT subsets, 'esnli', or 'hub')."""
    columns = columns or ["question", "answer", "reasoning"]
    if hub_id:
        from datasets import load_dataset

        ds = load_dataset(hub_id, split="train")
        missing = [c for c in columns if c not in ds.column_names]
        if missing:
            raise DataError(f"{hub_id}: missing columns {missing}; has {ds.column_names}")
        qc, ac, rc = columns
        return ds.map(
            lambda r: {"source": "hub", "question": r[qc], "answer": str(r[ac]), "reasoning": r[rc]},
            remove_columns=ds.column_names,
        )
    folder = resolve_dir(reasoning_dir, "RI_REASONING_DIR", "reasoning")
    if folder is None or not folder.is_dir():
        raise DataError(
            f"reasoning folder not found ({folder}); set data.reasoning_dir or data.reasoning_hub_id"
        )
    merged: dict[str, list[str]] = {"source": [], "question": [], "answer": [], "reasoning": []}
    for src in sources:
        if src in FLAN_SOURCES:
            part = _read_flan_tsv(folder / "flan_cot" / f"{src}_train.tsv", src)
        elif src == "esnli":
            part = _read_esnli(folder / "esnli")
        else:
            raise DataError(f"unknown reasoning source {src!r}; known: {', '.join(REASONING_SOURCES)}")
        for k in merged:
            merged[k].extend(part[k])
    return Dataset.from_dict(merged)


# --- out-of-domain sets (evaluation only) -----------------------------------------------------------------------


def load_ood(name: str, ood_dir: str = "", goemotions_test_only: bool = True) -> Dataset:
    """An out-of-domain set, labels mapped onto LABELS. For evaluation only: never train or tune on it."""
    if name not in OOD_SETS:
        raise DataError(f"unknown out-of-domain set {name!r}; known: {', '.join(OOD_SETS)}")
    folder = resolve_dir(ood_dir, "RI_OOD_DIR", "ood")
    if folder is None:
        raise DataNotFound("out-of-domain folder not found; set data.ood_dir or RI_OOD_DIR")
    fname = "mapped_test_only.tsv" if (name == "goemotions" and goemotions_test_only) else "mapped.tsv"
    path = folder / OOD_SETS[name] / fname
    lines = _read_lines(path)
    if not lines or lines[0].split("\t") != ["text", "label"]:
        raise DataError(f"{path}:1: expected the header 'text<TAB>label'")
    texts, labels = [], []
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            raise DataError(f"{path}:{i}: blank line (only blank lines at the end of a file are ignored)")
        parts = line.split("\t")
        if len(parts) != 2:
            raise DataError(f"{path}:{i}: expected 2 tab-separated fields, got {len(parts)}")
        text, label = parts[0], parts[1].strip()
        if label not in LABELS:
            raise DataError(f"{path}:{i}: unknown label {label!r}")
        if not text.strip():
            raise DataError(f"{path}:{i}: empty text")
        texts.append(text)
        labels.append(LABELS.index(label))
    ds = Dataset.from_dict({"text": texts, "label": labels}, features=emotion_features())
    return ds.add_column("evaluation_only", [True] * len(ds))


def ood_label_space(ds: Dataset) -> list[str]:
    """The classes that occur in an out-of-domain set (ISEAR: 4); predictions outside them count as errors."""
    present = sorted(set(ds["label"]))
    return [ds.features["label"].names[i] for i in present]


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


def _task_features(task: Task, with_reasoning: bool) -> Features:
    cols = {"text": Value("string"), "label": ClassLabel(names=list(task.labels))}
    if with_reasoning:
        cols["human_reasoning"] = Value("string")
    return Features(cols)


def _records(path: Path) -> tuple[list[str], list[tuple[int, dict[str, Any]]]]:
    """(columns, [(line number, row)]) of a TSV, CSV or JSONL file with a header (JSONL: the keys of its rows)."""
    import csv
    import json

    lines = _read_lines(path)
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
    return Dataset.from_dict(data, features=_task_features(task, bool(task.reasoning_column)))


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
    return out.cast(_task_features(task, False))


# e-SNLI: which side of the dev split a premise's pairs go to (fixed; about 15% of premises validate)
ESNLI_VALIDATION_SHARE = 15


def esnli_premise_side(premise: str) -> str:
    """'validation' or 'train' for every pair of a premise (a hash of the premise: no premise on both sides)."""
    bucket = int(hashlib.sha256(premise.strip().encode()).hexdigest()[:8], 16) % 100
    return "validation" if bucket < ESNLI_VALIDATION_SHARE else "train"


def load_esnli_split(task: Task, split: str, reasoning_dir: str = "") -> Dataset:
    """e-SNLI rows for the esnli task: train and validation from the dev split, partitioned by premise; test
    from the test split. `human_reasoning` is the first human explanation."""
    folder = resolve_dir(reasoning_dir, "RI_REASONING_DIR", "reasoning")
    if folder is None or not (folder / "esnli").is_dir():
        raise DataNotFound(f"e-SNLI folder not found ({folder}/esnli); set data.reasoning_dir")
    part = _read_esnli_pairs(folder / "esnli", "test" if split == "test" else "dev")
    keep = [i for i, p in enumerate(part["premise"]) if split == "test" or esnli_premise_side(p) == split]
    data = {
        "text": [
            task.render({"premise": part["premise"][i], "hypothesis": part["hypothesis"][i]}) for i in keep
        ],
        "label": [task.labels.index(part["label"][i]) for i in keep],
        "human_reasoning": [part["explanation_1"][i] for i in keep],
    }
    return Dataset.from_dict(data, features=_task_features(task, True))


def _read_esnli_pairs(folder: Path, split: str) -> dict[str, list[str]]:
    names = {"premise": "s1", "hypothesis": "s2", "label": "labels"}
    names |= {f"explanation_{k}": f"preproc1_expl_{k}" for k in (1, 2, 3)}
    cols = {c: [x.strip() for x in _read_lines(folder / f"{stem}.{split}")] for c, stem in names.items()}
    sizes = {len(v) for v in cols.values()}
    if len(sizes) != 1:
        raise DataError(f"{folder}: e-SNLI {split} files are not line-aligned ({sorted(sizes)})")
    for i, y in enumerate(cols["label"], start=1):
        if y not in {"entailment", "neutral", "contradiction"}:
            raise DataError(f"{folder / ('labels.' + split)}:{i}: unknown NLI label {y!r}")
    return cols


def esnli_texts(reasoning_dir: str = "") -> dict[str, set[str]]:
    """Every e-SNLI premise, hypothesis and explanation (dev and test), for the leak checks."""
    folder = resolve_dir(reasoning_dir, "RI_REASONING_DIR", "reasoning")
    out: dict[str, set[str]] = {}
    for split in ("dev", "test"):
        cols = _read_esnli_pairs(folder / "esnli", split)
        out[split] = {x for c in cols if c != "label" for x in cols[c]}
    return out


_FINGERPRINTS: dict[tuple[str, int, int], str] = {}


def file_fingerprint(path: Path) -> str:
    """sha256 (16 hex digits) of a file's bytes; cached per process by path, size and modification time."""
    path = Path(path)
    st = path.stat()
    k = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if k not in _FINGERPRINTS:
        _FINGERPRINTS[k] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return _FINGERPRINTS[k]


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


def emotion_fingerprint(d: DataConfig, split: str) -> str:
    """Identity of one dair-ai split as read: the file's hash, or the hub id (no revision is known there)."""
    local = resolve_dir(d.emotion_dir, "RI_EMOTION_DIR", "emotion")
    if local is None:
        return f"hub:{d.emotion_hub_id}:{split}"
    path = local / _SPLIT_FILES[split]
    if not path.exists():
        raise DataError(f"{path}: split file for '{split}' not found")
    return f"file:{file_fingerprint(path)}"


def reasoning_fingerprint(d: DataConfig, sources: list[str]) -> dict[str, str]:
    """Identity of the reasoning triples a generator reads: one hash per file, or the hub id and columns."""
    if d.reasoning_hub_id:
        return {"hub": f"{d.reasoning_hub_id}:{','.join(d.reasoning_columns)}"}
    folder = resolve_dir(d.reasoning_dir, "RI_REASONING_DIR", "reasoning")
    if folder is None or not folder.is_dir():
        raise DataError(
            f"reasoning folder not found ({folder}); set data.reasoning_dir or data.reasoning_hub_id"
        )
    out = {}
    for src in sorted(sources):
        if src in FLAN_SOURCES:
            out[src] = file_fingerprint(folder / "flan_cot" / f"{src}_train.tsv")
        elif src == "esnli":
            parts = [
                file_fingerprint(folder / "esnli" / f"{stem}.{split}")
                for split in ("dev", "test")
                for stem in ("s1", "s2", "labels", "preproc1_expl_1")
            ]
            out[src] = hashlib.sha256("".join(parts).encode()).hexdigest()[:16]
    return out


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

# Words that name each emotion (the emotion task's label_words), for the quality report and the explanation
# analysis.
EMOTION_WORDS: dict[str, list[str]] = {
    lab: list(ws) for lab, ws in load_task(DEFAULT_TASK).label_words.items()
}


def emotions_named(text: str) -> list[str]:
    """Which emotions a text names (by the word lists above), in LABELS order."""
    words = set(re.findall(r"[a-z]+", text.lower()))
    return [lab for lab in LABELS if words & set(EMOTION_WORDS[lab])]


def is_degenerate(text: str, n: int = 3, max_repeats: int = 3) -> bool:
    """Repetitive output: some word n-gram occurs at least `max_repeats` times."""
    toks = text.lower().split()
    grams = Counter(tuple(toks[i : i + n]) for i in range(len(toks) - n + 1))
    return bool(grams) and max(grams.values()) >= max_repeats


def quality_flags(reasoning: str, gold: str, finish_reason: str, task: Task | None = None) -> dict[str, bool]:
    """Per-reasoning flags: empty, repetitive, cut at the token limit, names the gold label, names another (by the
    task's label words; the emotion lexicon by default)."""
    named = task.labels_named(reasoning) if task is not None else emotions_named(reasoning)
    return {
        "empty": not reasoning.strip(),
        "degenerate": is_degenerate(reasoning),
        "cut_at_limit": finish_reason == "length",
        "names_gold": gold in named,
        "names_other": any(n != gold for n in named),
    }


def reasoning_support_category(reasoning: str, predicted: str | None, task: Task | None = None) -> str:
    """Does a Q->RA reasoning name the label it ends with, only other labels, or none (notebook 05's groups)?"""
    named = task.labels_named(reasoning) if task is not None else emotions_named(reasoning)
    if predicted is None:
        return "unparsed output"
    if predicted in named and len(named) == 1:
        return "names the predicted label only"
    if predicted in named:
        return "names the predicted label and others"
    if named:
        return "names only other emotions (contradicts)"
    return "names no emotion"
