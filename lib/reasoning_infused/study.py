"""The whole study, stage by stage; every stage reuses its artifact when present, so a rerun resumes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .config import REPO_ROOT, Profile, save_profile
from .provenance import write_json

NOTEBOOKS = [
    "01_data_exploration.ipynb",
    "02_generator_finetuning.ipynb",
    "03_augmentation.ipynb",
    "04_classifiers.ipynb",
    "05_analysis.ipynb",
]


def _record(profile: Profile, stage: str, seconds: float) -> None:
    path = profile.results_dir / "stage_seconds.json"
    d = json.loads(path.read_text()) if path.exists() else {}
    d[stage] = seconds
    write_json(path, d)


def run_stage(profile: Profile, stage: str, fn, *args, **kwargs):
    print(f"\n===== {stage} ({profile.name}) =====", flush=True)
    t0 = time.time()
    out = fn(*args, **kwargs)
    _record(profile, stage, time.time() - t0)
    return out


def execute_notebook(path: Path, profile_name: str, timeout: int = 1800, output: Path | None = None) -> Path:
    """Run a notebook top to bottom on a profile (env RI_PROFILE) and save it with its outputs."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    old = os.environ.get("RI_PROFILE")
    os.environ["RI_PROFILE"] = profile_name
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    finally:
        if old is None:
            os.environ.pop("RI_PROFILE", None)
        else:
            os.environ["RI_PROFILE"] = old
    out = output or path
    nbformat.write(nb, out)
    return out


def run_study(profile: Profile, notebooks: bool = True) -> dict:
    from .analysis import run_analysis
    from .augment import augment
    from .classifiers import train_classifier
    from .evaluate import evaluate
    from .generator import train_generator

    t_start = time.time()
    profile.results_dir.mkdir(parents=True, exist_ok=True)
    save_profile(profile, profile.results_dir / "profile.yaml")
    run_stage(profile, "train_generator", train_generator, profile)
    run_stage(profile, "augment", augment, profile)
    for v in profile.classifier.variants:
        run_stage(profile, f"train_classifier_{v}", train_classifier, profile, v)
    metrics = run_stage(profile, "evaluate", evaluate, profile)
    run_stage(profile, "analyze", run_analysis, profile)
    if notebooks:
        for nb in NOTEBOOKS:
            run_stage(profile, f"notebook_{nb[:2]}", execute_notebook, REPO_ROOT / "notebooks" / nb, profile.name)
    _record(profile, "study_total", time.time() - t_start)
    print(f"\nStudy '{profile.name}' done in {(time.time() - t_start) / 60:.1f} min; results in {profile.results_dir}")
    return metrics
