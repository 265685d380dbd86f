"""The generator's training data: (question, answer, reasoning) triples from FLAN chain-of-thought
subsets, e-SNLI, or a hub dataset."""

from __future__ import annotations

import hashlib
from pathlib import Path

from datasets import Dataset

from reasoning_infused.data.files import DataConfig, DataError, file_fingerprint, read_lines, resolve_dir

FLAN_SOURCES = ["aqua", "creak", "ecqa", "gsm8k", "qasc", "sensemaking", "strategyqa"]


REASONING_SOURCES = FLAN_SOURCES + ["esnli", "hub"]


def _read_flan_tsv(path: Path, source: str) -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {"source": [], "question": [], "answer": [], "reasoning": []}
    for i, line in enumerate(read_lines(path), start=1):
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
        s1 = read_lines(folder / f"s1.{split}")
        s2 = read_lines(folder / f"s2.{split}")
        lab = read_lines(folder / f"labels.{split}")
        ex = read_lines(folder / f"preproc1_expl_1.{split}")
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
