"""The emotion task's own data: dair-ai/emotion's `text;label` files, its known class counts, the
out-of-domain sets mapped onto its labels (GoEmotions, ISEAR: evaluation only), and its lexicon of emotion words."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from datasets import ClassLabel, Dataset, Features, Value

from reasoning_infused.data.files import (
    DataConfig,
    DataError,
    DataNotFound,
    file_fingerprint,
    read_lines,
    resolve_dir,
)
from reasoning_infused.data.task import DEFAULT_TASK, SPLITS, load_task

# Label ids of dair-ai/emotion on the hub (the default task's labels; every other task brings its own).
LABELS: list[str] = list(load_task(DEFAULT_TASK).labels)


_SPLIT_FILES = {"train": "train.txt", "validation": "val.txt", "test": "test.txt"}


# Known sizes and class counts of dair-ai/emotion ("split" config), checked and reported by `summarize_emotion`.
KNOWN_EMOTION_COUNTS: dict[str, dict[str, int]] = {
    "train": {"sadness": 4666, "joy": 5362, "love": 1304, "anger": 2159, "fear": 1937, "surprise": 572},
    "validation": {"sadness": 550, "joy": 704, "love": 178, "anger": 275, "fear": 212, "surprise": 81},
    "test": {"sadness": 581, "joy": 695, "love": 159, "anger": 275, "fear": 224, "surprise": 66},
}


OOD_SETS = {"goemotions": "goemotions", "isear": "isear"}


def emotion_features() -> Features:
    return Features({"text": Value("string"), "label": ClassLabel(names=LABELS)})


def parse_emotion_file(path: Path) -> Dataset:
    """Read one dair-ai split file: one `text;label` per line, label a name from LABELS."""
    texts, labels = [], []
    for i, line in enumerate(read_lines(path), start=1):
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
    """Rows and class counts per split (any task: its label names); `matches_known` compares them with
    dair-ai/emotion's published counts, so it is true only for that data set."""
    out = []
    for split, ds in splits.items():
        c = Counter(ds["label"])
        counts = {name: c.get(i, 0) for i, name in enumerate(ds.features["label"].names)}
        out.append(SplitSummary(split, len(ds), counts, counts == KNOWN_EMOTION_COUNTS.get(split)))
    return out


def load_ood(name: str, ood_dir: str = "", goemotions_test_only: bool = True) -> Dataset:
    """An out-of-domain set, labels mapped onto LABELS. For evaluation only: never train or tune on it."""
    if name not in OOD_SETS:
        raise DataError(f"unknown out-of-domain set {name!r}; known: {', '.join(OOD_SETS)}")
    folder = resolve_dir(ood_dir, "RI_OOD_DIR", "ood")
    if folder is None:
        raise DataNotFound("out-of-domain folder not found; set data.ood_dir or RI_OOD_DIR")
    fname = "mapped_test_only.tsv" if (name == "goemotions" and goemotions_test_only) else "mapped.tsv"
    path = folder / OOD_SETS[name] / fname
    lines = read_lines(path)
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


def emotion_fingerprint(d: DataConfig, split: str) -> str:
    """Identity of one dair-ai split as read: the file's hash, or the hub id (no revision is known there)."""
    local = resolve_dir(d.emotion_dir, "RI_EMOTION_DIR", "emotion")
    if local is None:
        return f"hub:{d.emotion_hub_id}:{split}"
    path = local / _SPLIT_FILES[split]
    if not path.exists():
        raise DataError(f"{path}: split file for '{split}' not found")
    return f"file:{file_fingerprint(path)}"


# Words that name each emotion (the emotion task's label_words), for the quality report and the explanation
# analysis.
EMOTION_WORDS: dict[str, list[str]] = {
    lab: list(ws) for lab, ws in load_task(DEFAULT_TASK).label_words.items()
}


def emotions_named(text: str) -> list[str]:
    """Which emotions a text names (by the word lists above), in LABELS order."""
    words = set(re.findall(r"[a-z]+", text.lower()))
    return [lab for lab in LABELS if words & set(EMOTION_WORDS[lab])]
