"""Shared fixtures. Every test writes under a temporary folder: runs, results and figures never touch the repo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def isolated_outputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ri")
    old = {k: os.environ.get(k) for k in ("RI_RUNS_DIR", "RI_RESULTS_DIR", "RI_FIGURES_DIR")}
    os.environ["RI_RUNS_DIR"] = str(root / "runs")
    os.environ["RI_RESULTS_DIR"] = str(root / "results")
    os.environ["RI_FIGURES_DIR"] = str(root / "figures")
    yield root
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="session")
def smoke_profile():
    from reasoning_infused import load_profile

    return load_profile("smoke")


@pytest.fixture(scope="session")
def smoke_study(smoke_profile, isolated_outputs):
    """The whole smoke pipeline once per session (about two minutes); later tests read its artifacts."""
    from reasoning_infused.experiment.artifacts import reasonings_path
    from reasoning_infused.pipeline.augment import augment, generate_reasonings
    from reasoning_infused.pipeline.classifiers import train_classifier
    from reasoning_infused.pipeline.generator import train_generator
    from reasoning_infused.study.runner import evaluate_experiment

    p = smoke_profile
    gen = train_generator(p)
    # interrupted augmentation: 10 rows, then a resumed run completes it (checked in test_pipeline)
    generate_reasonings(p, limit_rows=10)
    partial = reasonings_path(p).read_text().count("\n")
    augment(p)
    for v in p.classifier.variants:
        train_classifier(p, v)
    metrics = evaluate_experiment(p)
    return {"profile": p, "generator": gen, "partial_rows": partial, "metrics": metrics}


def write(path: Path, content: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode("utf-8")
    path.write_bytes(content)
    return path
