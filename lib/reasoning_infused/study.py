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


def peak_rss_gib() -> float:
    """Peak resident memory of this process so far (Linux: ru_maxrss is in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def _record(profile: Profile, stage: str, seconds: float) -> None:
    path = profile.results_dir / "stage_seconds.json"
    d = json.loads(path.read_text()) if path.exists() else {}
    d[stage] = seconds
    write_json(path, d)


def _record_peak_rss(profile: Profile, step: str) -> None:
    """Peak memory of the child processes finished so far (max over stages), after `step`."""
    import resource

    path = profile.results_dir / "peak_rss_gib.json"
    d = json.loads(path.read_text()) if path.exists() else {}
    d[step] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20, 3)
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
        NotebookClient(
            nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
        ).execute()
    finally:
        if old is None:
            os.environ.pop("RI_PROFILE", None)
        else:
            os.environ["RI_PROFILE"] = old
    out = output or path
    nbformat.write(nb, out)
    return out


def _run_cli_stage(profile_arg: str, overrides: list[str], stage: str, *args: str) -> None:
    """Run one stage as its own process: memory is returned to the OS between stages, and a crash in one
    stage leaves every finished artifact in place (rerunning resumes)."""
    import subprocess
    import sys

    cmd = [sys.executable, "-m", "reasoning_infused", stage, "--profile", profile_arg, *args]
    for o in overrides:
        cmd += ["--set", o]
    subprocess.run(cmd, check=True)


def run_study(
    profile: Profile,
    notebooks: bool = True,
    profile_arg: str | None = None,
    overrides: list[str] | None = None,
) -> None:
    """Every stage in order, each in its own process, timed; then the notebooks are executed and saved."""
    profile_arg = profile_arg or profile.name
    overrides = overrides or []
    t_start = time.time()
    profile.results_dir.mkdir(parents=True, exist_ok=True)
    save_profile(profile, profile.results_dir / "profile.yaml")
    stages: list[tuple[str, tuple[str, ...]]] = [
        ("train_generator", ("train-generator",)),
        ("augment", ("augment",)),
    ]
    stages += [
        (f"train_classifier_{v}", ("train-classifier", "--variant", v)) for v in profile.classifier.variants
    ]
    stages += [("evaluate", ("evaluate",)), ("analyze", ("analyze",))]
    for name, cli in stages:
        print(f"\n===== {name} ({profile.name}) =====", flush=True)
        t0 = time.time()
        _run_cli_stage(profile_arg, overrides, *cli)
        _record(profile, name, time.time() - t0)
        _record_peak_rss(profile, name)
    if notebooks:
        # the default profile's executed notebooks are the committed ones; other profiles' go to the run folder
        out_dir = REPO_ROOT / "notebooks" if profile.name == "default" else profile.run_dir / "notebooks"
        out_dir.mkdir(parents=True, exist_ok=True)
        for nb in NOTEBOOKS:
            run_stage(
                profile,
                f"notebook_{nb[:2]}",
                execute_notebook,
                REPO_ROOT / "notebooks" / nb,
                profile_arg,
                output=out_dir / nb,
            )
        _record_peak_rss(profile, "notebooks")  # the notebook kernels are child processes too
    _record(profile, "study_total", time.time() - t_start)
    print(
        f"\nStudy '{profile.name}' done in {(time.time() - t_start) / 60:.1f} min; results in {profile.results_dir}"
    )
