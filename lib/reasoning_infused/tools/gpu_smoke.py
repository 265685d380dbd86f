"""GPU smoke run: the first thing to run on a machine with CUDA (`python -m reasoning_infused gpu-smoke`).

Three steps, each the command a user would type, in its own process, timed:
1. the smoke profile end to end on one GPU in bf16 (`study --profile smoke --no-notebooks`);
2. the README's data-parallel launch on every visible GPU (`accelerate launch --config_file
   configs/accelerate/ddp.yaml --num_processes N -m reasoning_infused train-classifier --profile smoke ...`);
3. the default study's stages on the default model's *architecture* with random weights
   (`model.source=random-init`): what the default study's compute costs on this GPU. Random weights always
   generate up to the token limit, so generation times are upper bounds; the accuracies mean nothing.

Everything is written under the output folder (runs, results, one log per step) and summarised in
`gpu_smoke.json`: wall time and exit status per step, and the training and generation rates every artifact
recorded (tokens/s, examples/s, processes, dtype, device).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from reasoning_infused.base.locations import REPO_ROOT, model_cache_dir
from reasoning_infused.base.provenance import code_version, package_versions, write_json

RATE_KEYS = (
    "tokens_per_second",
    "supervised_tokens_per_second",
    "examples_per_second",
    "wall_seconds",
    "optimizer_steps",
    "processes",
    "dtype",
    "device",
    "fine_tuning",
    "rows",
)


def default_architecture() -> Path:
    """The materialised SmolLM2-135M-Instruct folder (its config.json and tokenizer are all that is read)."""
    return model_cache_dir() / "smollm2-135m-instruct"


def smoke_steps(n_gpus: int, architecture: Path, python: str = sys.executable) -> list[tuple[str, list[str]]]:
    """(name, command) of each step, in order."""
    ri = [python, "-m", "reasoning_infused"]
    launch = [python, "-m", "accelerate.commands.launch"]  # = `accelerate launch`, from this Python
    return [
        ("smoke_study", [*ri, "study", "--profile", "smoke", "--no-notebooks"]),
        (
            "ddp_train_classifier",
            [
                *launch,
                "--config_file",
                str(REPO_ROOT / "configs" / "accelerate" / "ddp.yaml"),
                "--num_processes",
                str(n_gpus),
                "-m",
                "reasoning_infused",
                "train-classifier",
                "--profile",
                "smoke",
                "--variant",
                "qa",
                "--set",
                "classifier.train.seed=1",  # a new artifact, not the one step 1 trained
            ],
        ),
        (
            "architecture_study",
            [
                *ri,
                "study",
                "--profile",
                "default",
                "--no-notebooks",
                "--name",
                "gpu-architecture-random-weights",
                "--set",
                "model.source=random-init",
                "--set",
                f"model.name_or_path={architecture}",
            ],
        ),
    ]


def portable(text: str, out_dir: Path) -> str:
    """A command or path as a reader's clone can read it: the interpreter as `python`, the repository and the
    output folder as relative names."""
    return (
        text.replace(sys.executable, "python")
        .replace(f"{REPO_ROOT}/", "")
        .replace(str(REPO_ROOT), ".")
        .replace(str(out_dir), "<out>")
    )


def artifact_rates(runs_dir: Path) -> list[dict[str, Any]]:
    """The rates each finished artifact in the store recorded, one row per artifact."""
    rows = []
    for meta_path in sorted((runs_dir / "artifacts").glob("*/*/metadata.json")):
        meta = json.loads(meta_path.read_text())
        row = {
            "stage": meta.get("stage"),
            "variant": meta.get("variant"),
            "experiment": meta.get("made_by_experiment"),
            "key": meta.get("key"),
        }
        row.update({k: meta[k] for k in RATE_KEYS if k in meta})
        rows.append(row)
    return rows


def gpu_description() -> dict[str, Any]:
    import torch

    if not torch.cuda.is_available():
        raise RuntimeError("gpu-smoke needs a CUDA GPU: torch.cuda.is_available() is False on this machine")
    props = [torch.cuda.get_device_properties(i) for i in range(torch.cuda.device_count())]
    return {
        "gpus": [p.name for p in props],
        "gpu_memory_gib": [round(p.total_memory / 2**30, 1) for p in props],
        "bf16_supported": torch.cuda.is_bf16_supported(),
        "cuda": torch.version.cuda,
    }


def run_gpu_smoke(
    out_dir: Path, architecture: Path | None = None, budget_minutes: float = 9.0
) -> dict[str, Any]:
    """Run the three steps under `out_dir`, each within what is left of `budget_minutes`; write gpu_smoke.json."""
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    architecture = Path(architecture or default_architecture()).resolve()
    if not (architecture / "config.json").exists():
        raise FileNotFoundError(
            f"{architecture / 'config.json'}: no model architecture there; pass --architecture FOLDER (a "
            "checkpoint folder with config.json and a tokenizer), or run any default-profile stage once to "
            "materialise SmolLM2-135M-Instruct"
        )
    report: dict[str, Any] = {
        **gpu_description(),
        "architecture": portable(str(architecture), out_dir),
        "code_version": code_version(),
        "package_versions": package_versions(),
        "started_at": time.strftime("%Y-%m-%d %H:%M:%S"),
        "steps": [],
    }
    env = {
        **os.environ,
        "RI_RUNS_DIR": str(out_dir / "runs"),
        "RI_RESULTS_DIR": str(out_dir / "results"),
        "RI_FIGURES_DIR": str(out_dir / "figures"),
        "PYTHONUNBUFFERED": "1",
    }
    deadline = time.time() + budget_minutes * 60
    for name, cmd in smoke_steps(len(report["gpus"]), architecture):
        left = deadline - time.time()
        if left < 20:
            shown = [portable(c, out_dir) for c in cmd]
            report["steps"].append({"step": name, "status": "skipped: out of time", "command": shown})
            continue
        print(f"\n===== {name}: {' '.join(cmd)}", flush=True)
        t0 = time.time()
        with (out_dir / f"{name}.log").open("w") as log:
            try:
                rc = subprocess.run(
                    cmd, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=left
                ).returncode
                status = "ok" if rc == 0 else f"failed (exit {rc})"
            except subprocess.TimeoutExpired:
                status = "stopped: out of time"
        report["steps"].append(
            {
                "step": name,
                "status": status,
                "seconds": round(time.time() - t0, 1),
                "command": [portable(c, out_dir) for c in cmd],
            }
        )
        print(
            f"[gpu-smoke] {name}: {status} in {time.time() - t0:.0f} s (log: {out_dir / f'{name}.log'})",
            flush=True,
        )
        write_json(out_dir / "gpu_smoke.json", {**report, "artifacts": artifact_rates(out_dir / "runs")})
    report["artifacts"] = artifact_rates(out_dir / "runs")
    write_json(out_dir / "gpu_smoke.json", report)
    print(rates_table(report))
    return report


def rates_table(report: dict[str, Any]) -> str:
    """The steps and the rates as plain text (what the command prints at the end)."""
    lines = [f"GPU: {', '.join(report['gpus'])}; architecture {report['architecture']}"]
    for s in report["steps"]:
        lines.append(f"  {s['step']:<24} {s['status']:<22} {s.get('seconds', 0):>7.1f} s")
    lines.append(
        f"  {'experiment':<34} {'stage':<10} {'variant':<8} {'procs':>5} {'tokens/s':>10} {'examples/s':>10}"
    )
    for a in report["artifacts"]:
        tps = a.get("tokens_per_second")
        eps = a.get("examples_per_second")
        lines.append(
            f"  {str(a.get('experiment')):<34} {str(a['stage']):<10} {str(a.get('variant') or ''):<8} "
            f"{a.get('processes', 1):>5} {f'{tps:,.0f}' if tps else '':>10} {f'{eps:,.1f}' if eps else '':>10}"
        )
    return "\n".join(lines)
