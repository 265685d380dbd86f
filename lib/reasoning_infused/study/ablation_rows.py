"""Per-row correctness of an arm's seeds, kept in its interim file so that a stopped arm resumes after its
last finished seed on any machine."""

from __future__ import annotations

import hashlib


def rows_fingerprint(gold: list[str]) -> str:
    """Which rows (in which order) a per-row comparison scored: two seeds' rows pair up only when these agree."""
    return hashlib.sha256("\n".join(gold).encode()).hexdigest()[:16]


RowsCorrect = tuple[list[bool], list[bool], str]  # control correct, variant correct, rows_fingerprint


def rows_correct_to_json(rows: dict[str, RowsCorrect]) -> dict[str, dict[str, str]]:
    """One seed's per-row correctness (per comparison) as compact strings of 0/1, for the interim file."""
    bits = lambda xs: "".join("1" if x else "0" for x in xs)  # noqa: E731
    return {name: {"first": bits(a), "second": bits(b), "rows": fp} for name, (a, b, fp) in rows.items()}


def rows_correct_from_json(stored: dict[str, dict[str, str]]) -> dict[str, RowsCorrect]:
    return {
        name: ([c == "1" for c in v["first"]], [c == "1" for c in v["second"]], v["rows"])
        for name, v in stored.items()
    }
