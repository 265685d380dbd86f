"""Two-Stage Reasoning-Infused Learning (Henrichsen & Krebs, arXiv 2507.00214): reference implementation.

The package, bottom to top (no import runs back up):
  base/        paths, provenance (git hash, lock hash, atomic writes)
  data/        tasks (a task is a YAML file), their rows, the generator's triples, prompts, the label lexicon
  experiment/  profiles and their typed settings, the artifact store
  pipeline/    the paper's method: model, training, generation, label scoring, the three stages, evaluation
  analysis/    beside it: error analysis, reasoning quality, tables, findings, figures, the explorer
  study/       the study runner, ablations and their verdicts, reports, the generator sweep
  tools/       bench, engine check, GPU smoke
  cli.py       `python -m reasoning_infused <command>`
The short names below are what the notebooks use; importing them loads no model code (no torch).
"""

from reasoning_infused.data.emotion import LABELS
from reasoning_infused.data.files import DataError
from reasoning_infused.data.task import Task, load_task
from reasoning_infused.experiment.config import ProfileError, load_profile, profile_from_env
from reasoning_infused.experiment.settings import Profile

__all__ = [
    "LABELS",
    "DataError",
    "Profile",
    "ProfileError",
    "Task",
    "load_profile",
    "load_task",
    "profile_from_env",
]
__version__ = "0.1.0"
