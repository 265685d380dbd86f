"""Reading input files: the errors that name a file and line, the data section of a profile (where the
data come from), and file fingerprints."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from datasets import ClassLabel, Features, Value

from reasoning_infused.base.locations import shared_data_dir
from reasoning_infused.data.task import DEFAULT_TASK, Task


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


def resolve_dir(configured: str, env_var: str, default_sub: str) -> Path | None:
    """Profile value, else environment variable, else ../shared/data/<sub> when it exists, else None (use the hub)."""
    if configured:
        return Path(configured)
    if os.environ.get(env_var):
        return Path(os.environ[env_var])
    d = shared_data_dir() / default_sub
    return d if d.exists() else None


def read_lines(path: Path) -> list[str]:
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


def task_features(task: Task, with_reasoning: bool) -> Features:
    cols = {"text": Value("string"), "label": ClassLabel(names=list(task.labels))}
    if with_reasoning:
        cols["human_reasoning"] = Value("string")
    return Features(cols)


_FINGERPRINTS: dict[tuple[str, int, int], str] = {}


def file_fingerprint(path: Path) -> str:
    """sha256 (16 hex digits) of a file's bytes; cached per process by path, size and modification time."""
    path = Path(path)
    st = path.stat()
    k = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if k not in _FINGERPRINTS:
        _FINGERPRINTS[k] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return _FINGERPRINTS[k]
