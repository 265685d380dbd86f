"""A task is data: one YAML file says what is classified, with which labels, from which rows.

Every stage reads the task (labels, how the inputs are shown, the instruction) instead of assuming emotions.
Shipped tasks live in `tasks/` beside this module (`emotion`, the default, and `esnli`); a user's task file can be
anywhere. The smallest task file:

    name: toy
    labels: [agree, disagree, unrelated]
    inputs: [premise, hypothesis]
    instruction: "How does the second sentence relate to the first?"
    files: {train: train.tsv, validation: validation.tsv, test: test.tsv}

Paths are relative to the task file; a file is TSV, CSV or JSONL (by its suffix) with a header whose columns are
the inputs and `label`. Optional keys: `input_format` (how the inputs are shown; default one line per input,
"Premise: ...", or the text as it is for a single input), `reasoning_column` (human-written reasonings, used
instead of the generator when `classifier.reasoning_source` is `human`), `label_words` (words that name each
label, for the leakage metrics; default the label names), `ood` (out-of-domain sets, emotion only for now),
`transforms` (task-specific reasoning transforms of the ablations), `hub` (a hub dataset instead of files:
`{id, splits: {train: ..}, columns: {<input>: .., label: ..}}`), `description`. Unknown keys are kept and ignored.

This module parses and checks the file (errors name the file and the key); `data` reads the rows.
"""

from __future__ import annotations

import hashlib
import json
import string
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

TASKS_DIR = Path(__file__).parent / "tasks"
DEFAULT_TASK = "emotion"
SPLITS = ("train", "validation", "test")
# Where rows come from: `files` and `hub` for any task; built-in readers for the shipped data sets.
READERS = ("files", "hub", "dair-ai/emotion", "esnli")
KNOWN_KEYS = {
    "name",
    "description",
    "labels",
    "inputs",
    "input_format",
    "instruction",
    "files",
    "hub",
    "reader",
    "reasoning_column",
    "label_words",
    "ood",
    "transforms",
}
# The prompts of the committed emotion results: a task with exactly these settings keeps their artifact keys.
_EMOTION_SETTINGS = {
    "labels": ("sadness", "joy", "love", "anger", "fear", "surprise"),
    "inputs": ("text",),
    "input_format": "{text}",
    "instruction": "Classify the emotion.",
    "reader": "dair-ai/emotion",
}


class TaskError(ValueError):
    """A task file that cannot be used; the message names the file and the key."""


@dataclass(frozen=True)
class Task:
    name: str
    labels: tuple[str, ...]
    inputs: tuple[str, ...]
    instruction: str
    input_format: str
    reader: str = "files"
    files: dict[str, Path] = field(default_factory=dict)  # split -> file (resolved)
    hub: dict[str, Any] = field(default_factory=dict)
    reasoning_column: str = ""
    label_words: dict[str, tuple[str, ...]] = field(default_factory=dict)
    ood: tuple[str, ...] = ()
    transforms: tuple[str, ...] = ()
    description: str = ""
    path: Path | None = None

    def render(self, row: dict[str, Any]) -> str:
        """The text a model sees for one row: its inputs shown by `input_format`."""
        return self.input_format.format(**{k: str(row[k]).strip() for k in self.inputs})

    def words_of(self, label: str) -> tuple[str, ...]:
        """The words that name a label (lower case): the task's list, or the label's own words."""
        return self.label_words.get(label) or tuple(label.lower().replace("_", " ").split())

    def labels_named(self, text: str) -> list[str]:
        """Which labels a text names (by their words), in label order."""
        import re

        words = set(re.findall(r"[a-z]+", text.lower()))
        return [lab for lab in self.labels if words & set(self.words_of(lab))]

    @property
    def is_emotion_default(self) -> bool:
        """The shipped emotion task as the committed results used it: its artifact keys carry no task entry."""
        return self.name == "emotion" and all(getattr(self, k) == v for k, v in _EMOTION_SETTINGS.items())

    def identity(self) -> dict[str, Any] | None:
        """What of the task decides a stage's output (for artifact keys): None for the default emotion task (so
        the keys of the committed results stay valid), else its name, labels, prompts and row sources."""
        if self.is_emotion_default:
            return None
        sources: dict[str, Any] = {}
        if self.reader == "files":
            sources = {s: _file_hash(p) for s, p in sorted(self.files.items())}
        elif self.reader == "hub":
            sources = {"hub": json.dumps(self.hub, sort_keys=True)}
        return {
            "name": self.name,
            "labels": list(self.labels),
            "inputs": list(self.inputs),
            "input_format": self.input_format,
            "instruction": self.instruction,
            "reader": self.reader,
            "reasoning_column": self.reasoning_column,
            "sources": sources,
        }


def _file_hash(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def shipped_tasks() -> list[str]:
    return sorted(p.stem for p in TASKS_DIR.glob("*.yaml"))


def task_path(name_or_path: str) -> Path:
    """A shipped task by name, or a task file by path."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise TaskError(f"task file not found: {path}")
        return path.resolve()
    shipped = TASKS_DIR / f"{name_or_path}.yaml"
    if not shipped.is_file():
        raise TaskError(
            f"unknown task {name_or_path!r}: not a shipped task ({', '.join(shipped_tasks())}) and not a "
            ".yaml file"
        )
    return shipped


def load_task(name_or_path: str = DEFAULT_TASK) -> Task:
    """Parse and check a task file (a shipped name or a path). TaskError names the file and the key."""
    path = task_path(name_or_path)
    return _load(str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=32)
def _load(path_str: str, _mtime: int) -> Task:
    path = Path(path_str)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise TaskError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise TaskError(f"{path}: the top level must be a mapping")
    return parse_task(raw, path)


def _strings(value: Any, path: Path, key: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise TaskError(f"{path}: '{key}' must be a non-empty list of names")
    out = []
    for i, x in enumerate(items):
        if not isinstance(x, (str, int)) or not str(x).strip():
            raise TaskError(f"{path}: {key}[{i}] must be a non-empty name, got {x!r}")
        out.append(str(x).strip())
    return tuple(out)


def parse_task(raw: dict[str, Any], path: Path) -> Task:
    """A task from its parsed YAML mapping; `path` locates relative files and names the file in errors."""
    for key in ("name", "labels", "inputs", "instruction"):
        if key not in raw or raw[key] in (None, "", []):
            raise TaskError(f"{path}: missing key '{key}'")
    name = str(raw["name"]).strip()
    if not name.replace("_", "").replace("-", "").isalnum():
        raise TaskError(f"{path}: 'name' must be letters, digits, '-' or '_', got {name!r}")
    labels = _strings(raw["labels"], path, "labels")
    seen: set[str] = set()
    for i, lab in enumerate(labels):
        if lab in seen:
            raise TaskError(f"{path}: labels[{i}]: label {lab!r} is declared twice")
        seen.add(lab)
    if len(labels) < 2:
        raise TaskError(f"{path}: 'labels' needs at least two labels")
    inputs = _strings(raw["inputs"], path, "inputs")
    for i, col in enumerate(inputs):
        if not col.isidentifier():
            raise TaskError(f"{path}: inputs[{i}]: {col!r} is not a usable column name")
    if "label" in inputs:
        raise TaskError(f"{path}: inputs: 'label' is the gold label's column, not an input")
    if len(set(inputs)) != len(inputs):
        raise TaskError(f"{path}: inputs: a column is named twice")
    default_format = (
        f"{{{inputs[0]}}}"
        if len(inputs) == 1
        else "\n".join(f"{c.replace('_', ' ').capitalize()}: {{{c}}}" for c in inputs)
    )
    input_format = str(raw.get("input_format") or default_format)
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(input_format) if f is not None}
    except ValueError as e:
        raise TaskError(f"{path}: input_format: {e}") from None
    if fields != set(inputs):
        raise TaskError(
            f"{path}: input_format must show every input and nothing else (inputs {list(inputs)}, "
            f"placeholders {sorted(fields)})"
        )
    reader = str(raw.get("reader") or ("hub" if raw.get("hub") else "files"))
    if reader not in READERS:
        raise TaskError(f"{path}: reader: unknown reader {reader!r} (known: {', '.join(READERS)})")
    files: dict[str, Path] = {}
    if reader == "files":
        given = raw.get("files")
        if not isinstance(given, dict):
            raise TaskError(f"{path}: missing key 'files' (train, validation, test) or 'hub'")
        for split in SPLITS:
            if not given.get(split):
                raise TaskError(f"{path}: files.{split}: missing")
            f = Path(str(given[split]))
            f = f if f.is_absolute() else path.parent / f
            if not f.is_file():
                raise TaskError(f"{path}: files.{split}: file not found: {f}")
            if f.suffix.lower() not in (".tsv", ".csv", ".jsonl"):
                raise TaskError(f"{path}: files.{split}: {f.name}: expected a .tsv, .csv or .jsonl file")
            files[split] = f.resolve()
        extra = set(given) - set(SPLITS)
        if extra:
            raise TaskError(f"{path}: files: unknown split(s) {sorted(extra)} (train, validation, test)")
    hub = raw.get("hub") or {}
    if reader == "hub" and (not isinstance(hub, dict) or not hub.get("id")):
        raise TaskError(f"{path}: hub: expected a mapping with 'id' (and 'splits', 'columns')")
    words = raw.get("label_words") or {}
    if not isinstance(words, dict):
        raise TaskError(f"{path}: label_words: expected a mapping label -> list of words")
    for lab in words:
        if lab not in labels:
            raise TaskError(f"{path}: label_words.{lab}: not a declared label")
    label_words = {
        str(lab): tuple(w.lower() for w in _strings(ws, path, f"label_words.{lab}"))
        for lab, ws in words.items()
    }
    return Task(
        name=name,
        labels=labels,
        inputs=inputs,
        instruction=str(raw["instruction"]),
        input_format=input_format,
        reader=reader,
        files=files,
        hub=dict(hub) if isinstance(hub, dict) else {},
        reasoning_column=str(raw.get("reasoning_column") or ""),
        label_words=label_words,
        ood=_strings(raw["ood"], path, "ood") if raw.get("ood") else (),
        transforms=_strings(raw["transforms"], path, "transforms") if raw.get("transforms") else (),
        description=str(raw.get("description") or ""),
        path=path,
    )
