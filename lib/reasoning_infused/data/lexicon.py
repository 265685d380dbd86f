"""What a reasoning says about the labels: repetition, the labels it names (the task's label words; the
emotion lexicon by default), its quality flags and its support group."""

from __future__ import annotations

from collections import Counter

from reasoning_infused.data.emotion import emotions_named
from reasoning_infused.data.task import Task


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
