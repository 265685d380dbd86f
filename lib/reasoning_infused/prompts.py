"""Prompt formats (versioned data in prompts/prompts.yaml) and the parser of the final answer line."""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from .data import LABELS

PROMPTS_FILE = Path(__file__).parent / "prompts" / "prompts.yaml"
VARIANTS = ("qa", "qra", "qar")


@lru_cache(maxsize=1)
def prompt_spec() -> dict[str, Any]:
    return yaml.safe_load(PROMPTS_FILE.read_text())


def prompt_version() -> str:
    """`v1-<hash of the prompt file>`: recorded in every artifact and result."""
    digest = hashlib.sha256(PROMPTS_FILE.read_bytes()).hexdigest()[:8]
    return f"{prompt_spec()['version']}-{digest}"


def generator_messages(question: str, answer: str) -> list[dict[str, str]]:
    g = prompt_spec()["generator"]
    return [
        {"role": "system", "content": g["system"]},
        {"role": "user", "content": g["user"].format(question=question, answer=answer)},
    ]


def emotion_question(text: str) -> str:
    return prompt_spec()["generator"]["emotion_question"].format(text=text)


def classifier_messages(text: str) -> list[dict[str, str]]:
    c = prompt_spec()["classifier"]
    return [
        {"role": "system", "content": c["system"]},
        {"role": "user", "content": c["user"].format(text=text)},
    ]


def clean_reasoning(reasoning: str) -> str:
    """One paragraph, no line that could be mistaken for the answer line."""
    text = " ".join(reasoning.split())
    return re.sub(r"(?i)\banswer\s*:", "answer -", text)


def classifier_target(variant: str, label: str, reasoning: str = "") -> str:
    if variant not in VARIANTS:
        raise ValueError(f"unknown classifier variant {variant!r}; expected one of {VARIANTS}")
    if label not in LABELS:
        raise ValueError(f"unknown label {label!r}")
    if variant != "qa" and not reasoning.strip():
        raise ValueError(f"variant {variant} needs a non-empty reasoning")
    tmpl = prompt_spec()["classifier"]["targets"][variant]
    return tmpl.format(label=label, reasoning=clean_reasoning(reasoning))


def answer_prefix() -> str:
    return prompt_spec()["classifier"]["answer_prefix"]


_ANSWER_LINE = re.compile(r"^\s*Answer:\s*(.*?)\s*$", re.MULTILINE)


def parse_answer(generated: str) -> str | None:
    """The label on the single `Answer: <label>` line, or None when there is none, several, or an unknown label.

    None is a parse failure, reported as such and counted as an error; it is never mapped to a class.
    """
    found = _ANSWER_LINE.findall(generated)
    if len(found) != 1:
        return None
    value = found[0].strip().rstrip(".").lower()
    return value if value in LABELS else None


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
