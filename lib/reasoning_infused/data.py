"""Data layer: dair-ai/emotion, (question, answer, reasoning) triples, and the out-of-domain sets.

Every loader returns a `datasets.Dataset`. Bad input raises `DataError` naming the file and line.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from datasets import ClassLabel, Dataset, Features, Value

from .config import REPO_ROOT

# Label ids of dair-ai/emotion on the hub.
LABELS: list[str] = ["sadness", "joy", "love", "anger", "fear", "surprise"]
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


def emotion_features() -> Features:
    return Features({"text": Value("string"), "label": ClassLabel(names=LABELS)})


def _shared_data_dir() -> Path:
    return REPO_ROOT.parent / "shared" / "data"


def resolve_dir(configured: str, env_var: str, default_sub: str) -> Path | None:
    """Profile value, else environment variable, else ../shared/data/<sub> when it exists, else None (use the hub)."""
    if configured:
        return Path(configured)
    if os.environ.get(env_var):
        return Path(os.environ[env_var])
    d = _shared_data_dir() / default_sub
    return d if d.exists() else None


def _read_lines(path: Path) -> list[str]:
    if not path.exists():
        raise DataError(f"{path}: file not found")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: bytes that are not UTF-8 ({e.reason} at byte {e.start})") from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def parse_emotion_file(path: Path) -> Dataset:
    """Read one dair-ai split file: one `text;label` per line, label a name from LABELS."""
    texts, labels = [], []
    for i, line in enumerate(_read_lines(path), start=1):
        line = line.rstrip("\r")
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
            raise DataError(f"{local}: emotion folder not found")
        path = local / _SPLIT_FILES[split]
        if not path.exists():
            raise DataError(f"{path}: split file for '{split}' not found")
        return parse_emotion_file(path)
    from datasets import load_dataset  # hub path, for users with network access

    ds = load_dataset(hub_id, "split", split=split)
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
        raise DataError("out-of-domain folder not found; set data.ood_dir or RI_OOD_DIR")
    fname = "mapped_test_only.tsv" if (name == "goemotions" and goemotions_test_only) else "mapped.tsv"
    path = folder / OOD_SETS[name] / fname
    lines = _read_lines(path)
    if not lines or lines[0].split("\t") != ["text", "label"]:
        raise DataError(f"{path}:1: expected the header 'text<TAB>label'")
    texts, labels = [], []
    for i, line in enumerate(lines[1:], start=2):
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
    return [LABELS[i] for i in present]


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
