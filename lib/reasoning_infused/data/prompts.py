"""Prompt formats (versioned data in prompts/prompts.yaml), how they are rendered with a tokenizer's chat
template, and the parser of the final answer line. The one place that knows what a prompt or a target looks like.

The task (task.py) fills in what is task-specific: the classifier's instruction (its system message) and the
labels. `task=None` is the default emotion task, whose instruction is prompts.yaml's classifier system message:
its prompts are the committed results' byte for byte."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from reasoning_infused.data.emotion import LABELS, emotions_named
from reasoning_infused.data.task import Task

PROMPTS_FILE = Path(__file__).parent / "prompts" / "prompts.yaml"


@lru_cache(maxsize=1)
def prompt_spec() -> dict[str, Any]:
    return yaml.safe_load(PROMPTS_FILE.read_text())


MULTITASK_FILE = Path(__file__).parent / "prompts" / "multitask.yaml"


@lru_cache(maxsize=1)
def multitask_spec() -> dict[str, Any]:
    return yaml.safe_load(MULTITASK_FILE.read_text())


# The classifier variants: the targets prompts.yaml defines (qa, qra, qar), and the multi-task classifier
# (prompts/multitask.yaml), which trains on two prompt-target pairs per row.
VARIANTS: tuple[str, ...] = (*prompt_spec()["classifier"]["targets"], "multitask")


def render_prompt(tok, messages: list[dict[str, str]]) -> str:
    """Chat-template-rendered prompt ending with the assistant header (what the model continues)."""
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def prompt_version() -> str:
    """`v1-<hash of the prompt file>`: recorded in every artifact and result."""
    digest = hashlib.sha256(PROMPTS_FILE.read_bytes()).hexdigest()[:8]
    return f"{prompt_spec()['version']}-{digest}"


def multitask_version() -> str:
    """`mt1-<hash of prompts/multitask.yaml>`: recorded in the multi-task classifier's key."""
    digest = hashlib.sha256(MULTITASK_FILE.read_bytes()).hexdigest()[:8]
    return f"{multitask_spec()['version']}-{digest}"


def instruction(task: Task | None = None) -> str:
    """The classifier's system message: the task's instruction (prompts.yaml's for the default task)."""
    return task.instruction if task is not None else prompt_spec()["classifier"]["system"]


def multitask_prompt(tok, text: str, kind: str, task: Task | None = None) -> str:
    """The multi-task classifier's prompt for `kind` "answer" (the label; what is scored at test) or "explain"."""
    if kind not in ("answer", "explain"):
        raise ValueError(f"unknown task {kind!r}: answer or explain")
    user = multitask_spec()[f"{kind}_task"].format(text=text)
    return render_prompt(
        tok, [{"role": "system", "content": instruction(task)}, {"role": "user", "content": user}]
    )


def multitask_explain_target(reasoning: str) -> str:
    if not reasoning.strip():
        raise ValueError("the explain task needs a non-empty reasoning")
    return multitask_spec()["explain_target"].format(reasoning=clean_reasoning(reasoning))


def generator_messages(question: str, answer: str) -> list[dict[str, str]]:
    g = prompt_spec()["generator"]
    return [
        {"role": "system", "content": g["system"]},
        {"role": "user", "content": g["user"].format(question=question, answer=answer)},
    ]


def emotion_question(text: str) -> str:
    return prompt_spec()["generator"]["emotion_question"].format(text=text)


def generator_prompt(tok, question: str, answer: str) -> str:
    """The rendered stage-1/stage-2 prompt: write a reasoning for this question and answer."""
    return render_prompt(tok, generator_messages(question, answer))


def emotion_generator_prompt(tok, text: str, label: str) -> str:
    """The augmentation prompt for one example (Q = the text as the task shows it, A = its label)."""
    return generator_prompt(tok, emotion_question(text), label)


augmentation_prompt = emotion_generator_prompt  # the task-neutral name


def classifier_prompt(tok, text: str, task: Task | None = None) -> str:
    return render_prompt(tok, classifier_messages(text, task))


def classifier_messages(text: str, task: Task | None = None) -> list[dict[str, str]]:
    c = prompt_spec()["classifier"]
    return [
        {"role": "system", "content": instruction(task)},
        {"role": "user", "content": c["user"].format(text=text)},
    ]


def clean_reasoning(reasoning: str) -> str:
    """One paragraph, no line that could be mistaken for the answer line."""
    text = " ".join(reasoning.split())
    return re.sub(r"(?i)\banswer\s*:", "answer -", text)


def classifier_target(variant: str, label: str, reasoning: str = "", labels: list[str] | None = None) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"unknown classifier variant {variant!r}; expected one of {VARIANTS}")
    if label not in (labels or LABELS):
        raise ValueError(f"unknown label {label!r}")
    if variant == "multitask":
        raise ValueError(
            "multitask has two targets per row: classifier_target('qa', ...) and multitask_explain_target"
        )
    if variant != "qa" and not reasoning.strip():
        raise ValueError(f"variant {variant} needs a non-empty reasoning")
    tmpl = prompt_spec()["classifier"]["targets"][variant]
    return tmpl.format(label=label, reasoning=clean_reasoning(reasoning))


def answer_prefix() -> str:
    return prompt_spec()["classifier"]["answer_prefix"]


def labels_after_reasoning_prompt(tok, text: str, reasoning: str, task: Task | None = None) -> str:
    """Q->RA with a given reasoning, ending at the answer prefix where the labels are scored. The reasoning
    is inserted as given (a model's own output stays as it wrote it); an empty one gives the bare answer prefix."""
    r = reasoning.strip()
    middle = prompt_spec()["classifier"]["reasoning_prefix"].format(reasoning=r) if r else ""
    return classifier_prompt(tok, text, task) + middle + answer_prefix()


_ANSWER_LINE = re.compile(r"^\s*Answer:\s*(.*?)\s*$", re.MULTILINE)


def parse_answer(generated: str, labels: list[str] | None = None) -> str | None:
    """The label on the single `Answer: <label>` line, or None when there is none, several, or an unknown label.

    None is a parse failure, reported as such and counted as an error; it is never mapped to a class.
    """
    found = _ANSWER_LINE.findall(generated)
    if len(found) != 1:
        return None
    value = found[0].strip().rstrip(".").lower()
    return next((lab for lab in labels or LABELS if lab.lower() == value), None)


def split_reasoning(generated: str, variant: str) -> str:
    """The reasoning part of a Q->RA or Q->AR output (text before/after the answer line, without 'Reasoning:')."""
    if variant == "qra":
        part = (
            generated.split("\nAnswer:", 1)[0]
            if "\nAnswer:" in generated
            else generated.split("Answer:", 1)[0]
        )
    elif variant == "qar":
        part = generated.split("\n", 1)[1] if "\n" in generated else ""
    else:
        return ""
    part = part.strip()
    return part[len("Reasoning:") :].strip() if part.startswith("Reasoning:") else part


# --- reasoning transforms (ablations): what a Q->RA / Q->AR target's reasoning is made of ------------------------

REASONING_TRANSFORMS = ("none", "shuffle_words", "drop_emotion_sentences", "grounded_from_text")
# Used where removing every sentence that names an emotion leaves nothing: keeps the row (and so the number of
# optimizer steps matched to the Q->A control) without naming a label.
NEUTRAL_REASONING = "The text describes how the writer feels about what happened."
_CUE = re.compile(r"\b(?:feel|feels|feeling|felt)\b\s+(.*)", re.IGNORECASE)


def transform_reasoning(transform: str, reasoning: str, text: str, seed: int) -> str:
    """The reasoning a classifier trains on under an ablation transform:
    - none: the generator's reasoning;
    - shuffle_words: the same words in a random order (seeded per row): content kept, sense removed;
    - drop_emotion_sentences: sentences naming an emotion (by the lexicon) removed; NEUTRAL_REASONING if none is left;
    - grounded_from_text: built from the text alone, no generator and no label: the words after the first
      "feel/feeling/felt" (at most 8), else the first 8 words of the text."""
    if transform == "none":
        return reasoning
    if transform == "shuffle_words":
        words = reasoning.split()
        order = sorted(
            range(len(words)), key=lambda i: hashlib.sha256(f"{seed}:{i}:{reasoning}".encode()).digest()
        )
        return " ".join(words[i] for i in order)
    if transform == "drop_emotion_sentences":
        sentences = re.split(r"(?<=[.!?])\s+", reasoning.strip())
        kept = [x for x in sentences if x and not emotions_named(x)]
        return " ".join(kept) if kept else NEUTRAL_REASONING
    if transform == "grounded_from_text":
        m = _CUE.search(text)
        if m and m.group(1).split():
            return f"The writer says they feel {' '.join(m.group(1).split()[:8])}."
        return f"The writer says: {' '.join(text.split()[:8])}."
    raise ValueError(f"unknown reasoning transform {transform!r}; known: {', '.join(REASONING_TRANSFORMS)}")
