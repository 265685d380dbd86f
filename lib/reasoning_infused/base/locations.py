"""Where things live: the repository, the artifact store, results, figures and the model cache.

The bottom layer: imports nothing of ours. Every location can be moved by an environment variable (the tests
point them all at a temporary folder).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]

# Experiment and profile names become folder names: letters, digits, '.', '_', '-', '=' and '+' only.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=+-]{0,119}$")


def runs_root() -> Path:
    """Run artifacts (checkpoints, generations, caches; git-ignored): $RI_RUNS_DIR, else <repo>/runs."""
    return Path(os.environ.get("RI_RUNS_DIR", REPO_ROOT / "runs"))


def store_root() -> Path:
    """The artifact store: <runs>/artifacts/<stage>/<key>/ (one folder per settings key, shared by experiments)."""
    return runs_root() / "artifacts"


def results_root() -> Path:
    """Committed results: $RI_RESULTS_DIR, else <repo>/results; one folder per experiment."""
    return Path(os.environ.get("RI_RESULTS_DIR", REPO_ROOT / "results"))


def figures_root() -> Path:
    return Path(os.environ.get("RI_FIGURES_DIR", REPO_ROOT / "figures"))


def shared_data_dir() -> Path:
    return REPO_ROOT.parent / "shared" / "data"


def model_cache_dir() -> Path:
    """Materialised checkpoints: $RI_CACHE_DIR, else ~/.cache/reasoning-infused (outside the repo)."""
    root = os.environ.get("RI_CACHE_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "reasoning-infused"
    )
    return Path(root)


def check_safe_name(name: str, what: str = "name") -> str:
    """A name that is safe as one folder name (no '/', no '..', no leading dot); raises ValueError otherwise."""
    if not isinstance(name, str) or not SAFE_NAME.match(name) or ".." in name:
        raise ValueError(
            f"{what} {name!r} is not allowed: use 1-120 letters, digits, '.', '_', '-', '=' or '+', "
            "starting with a letter or digit (it becomes a folder name)"
        )
    return name
