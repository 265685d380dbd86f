"""The e-SNLI task's rows: train and validation from the dev split partitioned by premise, test from the
test split, with the first human explanation of each pair."""

from __future__ import annotations

import hashlib
from pathlib import Path

from datasets import Dataset

from reasoning_infused.data.files import DataError, DataNotFound, read_lines, resolve_dir, task_features
from reasoning_infused.data.task import Task

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
    return Dataset.from_dict(data, features=task_features(task, True))


def _read_esnli_pairs(folder: Path, split: str) -> dict[str, list[str]]:
    names = {"premise": "s1", "hypothesis": "s2", "label": "labels"}
    names |= {f"explanation_{k}": f"preproc1_expl_{k}" for k in (1, 2, 3)}
    cols = {c: [x.strip() for x in read_lines(folder / f"{stem}.{split}")] for c, stem in names.items()}
    sizes = {len(v) for v in cols.values()}
    if len(sizes) != 1:
        raise DataError(f"{folder}: e-SNLI {split} files are not line-aligned ({sorted(sizes)})")
    for i, y in enumerate(cols["label"], start=1):
        if y not in {"entailment", "neutral", "contradiction"}:
            raise DataError(f"{folder / ('labels.' + split)}:{i}: unknown NLI label {y!r}")
    return cols


def esnli_test_texts(reasoning_dir: str = "") -> dict[str, set]:
    """The e-SNLI test split's premises, (premise, hypothesis) pairs and explanations, for the leak checks."""
    folder = resolve_dir(reasoning_dir, "RI_REASONING_DIR", "reasoning")
    cols = _read_esnli_pairs(folder / "esnli", "test")
    return {
        "premises": set(cols["premise"]),
        "pairs": set(zip(cols["premise"], cols["hypothesis"], strict=True)),
        "explanations": {cols[f"explanation_{k}"][i] for k in (1, 2, 3) for i in range(len(cols["premise"]))},
    }
