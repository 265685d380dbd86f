"""The study runner: composes the stages (each reuses its artifact when the settings key matches, so a rerun
resumes) and runs the notebooks; also the evaluation of an experiment and the reproducibility check."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from reasoning_infused.base.locations import REPO_ROOT
from reasoning_infused.base.provenance import write_json
from reasoning_infused.experiment.config import claim_results_dir
from reasoning_infused.experiment.settings import Profile

NOTEBOOKS = [
    "01_data_exploration.ipynb",
    "02_generator_finetuning.ipynb",
    "03_augmentation.ipynb",
    "04_classifiers.ipynb",
    "05_analysis.ipynb",
    "06_ablations.ipynb",
]


def evaluate_experiment(profile: Profile, force: bool = False) -> dict[str, Any]:
    """Predict every evaluation set with every classifier (from the store when already done), then score:
    results/<experiment>/metrics.json."""
    from reasoning_infused.data.rows import evaluation_sets
    from reasoning_infused.pipeline.classifiers import predict_all
    from reasoning_infused.pipeline.evaluate import evaluate

    sets = evaluation_sets(profile.data, profile.evaluate.ood)
    return evaluate(profile, sets, predict_all(profile, sets, force))


def check_reproducible(profile: Profile, variant: str, split: str = "test") -> dict[str, Any]:
    """Predict `split` again with the saved `variant` model and compare with the saved predictions."""

    from reasoning_infused.base.provenance import code_version
    from reasoning_infused.data.rows import evaluation_sets
    from reasoning_infused.experiment.artifacts import load_predictions
    from reasoning_infused.pipeline.classifiers import predict
    from reasoning_infused.pipeline.loading import load_classifier

    saved = load_predictions(profile, variant, split)
    ds = evaluation_sets(profile.data, split.startswith("ood_"))[split]
    model, tok = load_classifier(profile, variant)
    again = predict(
        model, tok, variant, ds["text"], ds["label"], profile, desc=f"reproduce {variant}/{split}"
    )
    # the saved scores are rounded to 4 decimals: the new ones are compared the same way
    again = [{**b, "scores": {k: round(v, 4) for k, v in b["scores"].items()}} for b in again]
    diff = compare_predictions({split: saved}, {split: again})["per_file"][split]
    changed = diff["changed_rows"]

    def identical(field: str) -> int:
        return len(saved) - sum(field in c for c in changed)

    out = {
        "variant": variant,
        "split": split,
        "rows": len(saved),
        "identical_predictions": identical("predicted"),
        # Q->RA: the generated texts and the labels scored after them as well (scores are those labels')
        **(
            {
                "identical_generations": identical("generated"),
                "identical_constrained": identical("predicted_constrained"),
            }
            if variant == "qra"
            else {}
        ),
        "max_score_difference": diff["max_score_change"],
        "code_version": code_version(),
        "checked_at": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    path = claim_results_dir(profile) / "reproducibility.json"
    prev = json.loads(path.read_text()) if path.exists() else []
    write_json(path, [*prev, out])
    return out


def _record(profile: Profile, name: str, key: str, value: float) -> None:
    """One entry of results/<experiment>/<name>.json (runner clock per step, peak memory per step)."""
    path = profile.results_dir / f"{name}.json"
    d = json.loads(path.read_text()) if path.exists() else {}
    d[key] = value
    write_json(path, d)


def notebook_env(profile: Profile, profile_arg: str) -> dict[str, str]:
    """Environment that gives a notebook this experiment (read back by config.profile_from_env)."""
    return {
        "RI_PROFILE": str(Path(profile_arg).resolve()) if Path(profile_arg).suffix else profile_arg,
        "RI_SET": json.dumps([f"{k}={json.dumps(v)}" for k, v in profile.overrides.items()]),
        "RI_EXPERIMENT": profile.experiment,
    }


def execute_notebook(
    path: Path, env: dict[str, str], timeout: int = 1800, output: Path | None = None
) -> Path:
    """Run a notebook top to bottom with the experiment given by `env` (RI_PROFILE, RI_SET, RI_EXPERIMENT)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(
            nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
        ).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    out = output or path
    nbformat.write(clean_outputs(nb), out)
    return out


_PROGRESS = re.compile(r"\d+%\|")


def clean_outputs(nb):
    """Outputs fit to commit: no execution timestamps, progress-bar widgets (tqdm; they render as '0%' or nothing once saved) dropped,
    and this machine's repository path made relative (an artifact store moved by $RI_RUNS_DIR shows as `runs/`, its
    default place), so a reader's clone shows what it would show them; the widget state kept stable (see below)."""
    import nbformat

    from reasoning_infused.base.locations import runs_root

    prefixes = [(str(runs_root()) + "/", "runs/"), (str(REPO_ROOT) + "/", "")]

    def keep(o) -> bool:
        data = o.get("data", {})
        return not (
            "application/vnd.jupyter.widget-view+json" in data
            and _PROGRESS.search(str(data.get("text/plain", "")))
        )

    def relative(x):
        if isinstance(x, str):
            for prefix, short in prefixes:
                x = x.replace(prefix, short)
            return x
        if isinstance(x, list):
            return [relative(v) for v in x]
        if isinstance(x, dict):
            return {k: relative(v) for k, v in x.items()}
        return x

    for cell in nb.cells:
        cell.get("metadata", {}).pop("execution", None)  # timestamps: a re-run must not rewrite the file
        if cell.get("cell_type") == "code":
            cell["outputs"] = [nbformat.from_dict(relative(o)) for o in cell.get("outputs", []) if keep(o)]
    return stable_widget_state(nb)


_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
_WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
_MODEL_REF = "IPY_MODEL_"


def stable_widget_state(nb):
    """The saved widget state, the same on every re-run: only the models that a shown widget reaches are kept
    (the containers of dropped progress bars go with them), and each keeps an id numbered in the order it is
    reached instead of the random one the kernel gave it."""
    holder = nb.metadata.get("widgets", {}).get(_WIDGET_STATE)
    if not isinstance(holder, dict) or not isinstance(holder.get("state"), dict):
        return nb
    state = holder["state"]
    views = [
        o["data"][_WIDGET_VIEW]
        for cell in nb.cells
        if cell.get("cell_type") == "code"
        for o in cell.get("outputs", [])
        if _WIDGET_VIEW in o.get("data", {})
    ]
    order: list[str] = []
    queue = [v.get("model_id") for v in views]
    while queue:
        model = queue.pop(0)
        if model in order or model not in state:
            continue
        order.append(model)
        queue += re.findall(_MODEL_REF + r"(\w+)", json.dumps(state[model], sort_keys=True))
    new_id = {m: f"{i:032x}" for i, m in enumerate(order)}

    def renamed(x):
        if isinstance(x, str):
            if x.startswith(_MODEL_REF) and x[len(_MODEL_REF) :] in new_id:
                return _MODEL_REF + new_id[x[len(_MODEL_REF) :]]
            return new_id.get(x, x)
        if isinstance(x, list):
            return [renamed(v) for v in x]
        if isinstance(x, dict):
            return {k: renamed(v) for k, v in x.items()}
        return x

    for view in views:
        if view.get("model_id") in new_id:
            view["model_id"] = new_id[view["model_id"]]
    holder["state"] = {new_id[m]: renamed(state[m]) for m in order}
    return nb


def run_cli_stage(profile_arg: str, overrides: list[str], experiment: str, *args: str) -> float:
    """Run one stage as its own process: memory is returned to the OS between stages, and a crash in one
    stage leaves every finished artifact in place (rerunning resumes). Returns the process's peak memory (GiB)."""
    import sys

    cmd = [sys.executable, "-m", "reasoning_infused", *args, "--profile", profile_arg, "--name", experiment]
    for o in overrides:
        cmd += ["--set", o]
    return run_process(cmd)


def run_process(cmd: list[str], stop_grace_s: float = 30.0) -> float:
    """Run `cmd` to its end; returns its peak memory (GiB), raises CalledProcessError when it fails.
    When this process is interrupted meanwhile (Ctrl-C, a notebook's "interrupt kernel", or SIGTERM, which
    `python -m reasoning_infused` turns into an interrupt), the child is stopped first (SIGTERM, SIGKILL after
    `stop_grace_s`): left running, an orphaned stage keeps both cores busy and a rerun beside it trains ~5x slower."""
    import subprocess

    proc = subprocess.Popen(cmd)
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        proc.terminate()
        try:
            proc.wait(timeout=stop_grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    return usage.ru_maxrss / 2**20


def run_study(
    profile: Profile,
    notebooks: bool = True,
    profile_arg: str | None = None,
    overrides: list[str] | None = None,
) -> None:
    """Every stage in order, each in its own process, timed (wall clock and peak memory per stage); then the
    notebooks are executed and saved."""
    profile_arg = profile_arg or profile.name
    overrides = overrides or []
    t_start = time.time()
    claim_results_dir(profile)
    stages: list[tuple[str, tuple[str, ...]]] = [
        (
            "prepare_model",
            ("prepare-model",),
        ),  # own process: the materialisation's memory stays out of training
    ]
    if profile.classifier.reasoning_source == "generated":  # human reasonings need no generator
        stages += [("train_generator", ("train-generator",)), ("augment", ("augment",))]
    stages += [
        (f"train_classifier_{v}", ("train-classifier", "--variant", v)) for v in profile.classifier.variants
    ]
    stages += [("evaluate", ("evaluate",)), ("analyze", ("analyze",))]
    for name, cli in stages:
        print(f"\n===== {name} ({profile.experiment}) =====", flush=True)
        t0 = time.time()
        rss = run_cli_stage(profile_arg, overrides, profile.experiment, *cli)
        _record(profile, "stage_seconds", name, time.time() - t0)
        _record(profile, "peak_rss_gib", name, round(rss, 3))
    if notebooks:
        # the default experiment's executed notebooks are the committed ones; others go to the scratch folder
        out_dir = (
            REPO_ROOT / "notebooks" if profile.experiment == "default" else profile.scratch_dir / "notebooks"
        )
        out_dir.mkdir(parents=True, exist_ok=True)
        env = notebook_env(profile, profile_arg)
        for nb in NOTEBOOKS:
            print(f"\n===== notebook {nb} ({profile.experiment}) =====", flush=True)
            t0 = time.time()
            execute_notebook(REPO_ROOT / "notebooks" / nb, env, output=out_dir / nb)
            _record(profile, "stage_seconds", f"notebook_{nb[:2]}", time.time() - t0)
    _record(profile, "stage_seconds", "study_total", time.time() - t_start)
    print(
        f"\nStudy '{profile.experiment}' done in {(time.time() - t_start) / 60:.1f} min; results in {profile.results_dir}"
    )


def compare_predictions(
    before: dict[str, list[dict[str, Any]]], after: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """Two runs' prediction files (file name -> rows), row by row: per file, how many rows changed their label
    (free or constrained), their generated text, and the largest score change; each changed row both ways."""
    files = {}
    for name in sorted(before.keys() | after.keys()):
        if name not in before or name not in after:
            files[name] = {"only_in": "before" if name in before else "after"}
            continue
        a, b = before[name], after[name]
        if len(a) != len(b):
            files[name] = {"rows_before": len(a), "rows_after": len(b)}
            continue
        changed, max_score = [], 0.0
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            fields = [f for f in ("predicted", "predicted_constrained", "generated") if x.get(f) != y.get(f)]
            if fields:
                changed.append({"row": i, **{f: [x.get(f), y.get(f)] for f in fields}})
            for label, s in x.get("scores", {}).items():
                max_score = max(max_score, abs(s - y.get("scores", {}).get(label, s)))
        files[name] = {
            "rows": len(a),
            "labels_changed": sum("predicted" in c or "predicted_constrained" in c for c in changed),
            "texts_changed": sum("generated" in c for c in changed),
            "accuracy": [
                round(sum(r.get("predicted") == r.get("gold") for r in rows) / max(len(rows), 1), 4)
                for rows in (a, b)
            ],
            "max_score_change": round(max_score, 4),
            "changed_rows": changed,
        }
    same_shape = [f for f in files.values() if "rows" in f]
    return {
        "files": len(files),
        "files_identical": sum(f["labels_changed"] == f["texts_changed"] == 0 for f in same_shape),
        "rows": sum(f["rows"] for f in same_shape),
        "labels_changed": sum(f["labels_changed"] for f in same_shape),
        "texts_changed": sum(f["texts_changed"] for f in same_shape),
        "per_file": files,
    }


def compare_with_revision(profile: Profile, revision: str) -> dict[str, Any]:
    """This experiment's prediction files now against those committed at git `revision` (a rerun of the study
    against the results it replaced): results/<experiment>/rerun_comparison.json."""
    import subprocess

    folder = profile.results_dir / "predictions"
    rel = folder.resolve().relative_to(REPO_ROOT)

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout

    def rows(text: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    names = [Path(p).name for p in git("ls-tree", "--name-only", revision, f"{rel}/").split()]
    before = {n: rows(git("show", f"{revision}:{rel}/{n}")) for n in names if n.endswith(".jsonl")}
    after = {p.name: rows(p.read_text()) for p in sorted(folder.glob("*.jsonl"))}
    old_metrics = json.loads(git("show", f"{revision}:{rel.parent}/metrics.json"))
    new_metrics = json.loads((profile.results_dir / "metrics.json").read_text())
    out = {
        "before": {
            "revision": git("rev-parse", "--short=12", revision).strip(),
            **{
                k: old_metrics.get(k) for k in ("code_version", "lock_hash", "created_at", "package_versions")
            },
        },
        "after": {
            k: new_metrics.get(k) for k in ("code_version", "lock_hash", "created_at", "package_versions")
        },
        **compare_predictions(before, after),
    }
    write_json(profile.results_dir / "rerun_comparison.json", out)
    return out
