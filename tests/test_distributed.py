"""Scale-out, tested on CPU: the smoke classifier trained by 2 processes under `accelerate launch` (gloo) against
one process with the same effective batch. The command is the README's, with the shipped CPU config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from reasoning_infused.base.locations import REPO_ROOT

# 32 rows: 4 optimizer steps of 8 in both runs (an uneven last batch would be padded by repeated rows under DDP)
COMMON = [
    "--set",
    "data.train_size=32",
    "--set",
    "classifier.train.group_by_length=false",  # the length-grouped order depends on the per-process batch size
]
LOSS_RTOL = 1e-4  # same rows per step, same initialisation: only summation order differs


def accelerate_command(config: str, *args: str) -> list[str]:
    """The README's launch command (accelerate's CLI from the same environment as this Python)."""
    accelerate = str(Path(sys.executable).with_name("accelerate"))
    return [accelerate, "launch", "--config_file", config, "-m", "reasoning_infused", *args]


def run(cmd: list[str], runs_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "RI_RUNS_DIR": str(runs_dir), "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def the_artifact(runs_dir: Path) -> Path:
    folders = list((runs_dir / "artifacts" / "classifier").iterdir())
    assert len(folders) == 1, folders  # one artifact, no per-process copies or moved-aside folders
    return folders[0]


def step_losses(artifact: Path) -> list[tuple[int, float]]:
    rows = [json.loads(line) for line in (artifact / "train_log.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in rows if "loss" in r]


@pytest.mark.slow
def test_two_cpu_processes_train_like_one(tmp_path):
    train = ["train-classifier", "--profile", "smoke", "--variant", "qa", *COMMON]
    two = run(
        accelerate_command(
            "configs/accelerate/cpu_ddp.yaml", *train, "--set", "classifier.train.batch_size=4"
        ),
        tmp_path / "two",
    )
    run(
        [sys.executable, "-m", "reasoning_infused", *train, "--set", "classifier.train.batch_size=8"],
        tmp_path / "one",
    )
    art2, art1 = the_artifact(tmp_path / "two"), the_artifact(tmp_path / "one")
    meta2 = json.loads((art2 / "metadata.json").read_text())
    meta1 = json.loads((art1 / "metadata.json").read_text())

    # both finished, as 2 processes and as 1, with the same effective batch and number of optimizer steps
    assert meta2["processes"] == 2 and meta1["processes"] == 1
    assert meta2["effective_batch"] == meta1["effective_batch"] == 8
    assert meta2["optimizer_steps"] == meta1["optimizer_steps"] == 4
    # only the main process wrote: each step logged once, reports printed once, no checkpoint left behind
    losses2, losses1 = step_losses(art2), step_losses(art1)
    assert [s for s, _ in losses2] == [1, 2, 3, 4] == [s for s, _ in losses1]
    assert two.stdout.count("[classifier-qa] trained in") == 1
    assert two.stderr.count("[train-classifier] finished in") == 1
    assert "2 processes (gloo)" in two.stdout
    assert not (art2 / "checkpoints").exists()
    # the gradients are synchronised: the same losses step by step (unsynchronised processes drift from step 2)
    for (_, l2), (_, l1) in zip(losses2, losses1, strict=True):
        assert l2 == pytest.approx(l1, rel=LOSS_RTOL)
    # and the saved adapters agree
    from safetensors.torch import load_file

    w2, w1 = load_file(art2 / "adapter_model.safetensors"), load_file(art1 / "adapter_model.safetensors")
    assert w2.keys() == w1.keys()
    for k in w1:
        assert (w2[k] - w1[k]).abs().max().item() < 1e-4, k


def test_gpu_smoke_runs_the_readme_launch_and_collects_rates(tmp_path):
    from reasoning_infused.tools.gpu_smoke import artifact_rates, rates_table, smoke_steps

    steps = dict(smoke_steps(4, tmp_path / "arch", python="python3"))
    assert list(steps) == ["smoke_study", "ddp_train_classifier", "architecture_study"]
    ddp = steps["ddp_train_classifier"]
    assert ddp[:3] == ["python3", "-m", "accelerate.commands.launch"]  # = `accelerate launch`
    assert ddp[ddp.index("--config_file") + 1].endswith("configs/accelerate/ddp.yaml")
    assert ddp[ddp.index("--num_processes") + 1] == "4"
    assert "model.source=random-init" in steps["architecture_study"]
    assert f"model.name_or_path={tmp_path / 'arch'}" in steps["architecture_study"]

    meta = {"stage": "classifier", "variant": "qa", "key": "k", "made_by_experiment": "smoke", "processes": 2}
    meta |= {"tokens_per_second": 1234.5, "secret": "not a rate"}
    (tmp_path / "runs/artifacts/classifier/k").mkdir(parents=True)
    (tmp_path / "runs/artifacts/classifier/k/metadata.json").write_text(json.dumps(meta))
    (rates,) = artifact_rates(tmp_path / "runs")
    assert rates == {
        "stage": "classifier",
        "variant": "qa",
        "experiment": "smoke",
        "key": "k",
        "tokens_per_second": 1234.5,
        "processes": 2,
    }
    table = rates_table({"gpus": ["X"], "architecture": "a", "steps": [], "artifacts": [rates]})
    assert "1,234" in table and "classifier" in table


def test_gpu_smoke_without_cuda_is_a_clear_error(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    from reasoning_infused.cli import main

    assert main(["gpu-smoke", "--out", str(tmp_path)]) == 2


def test_random_init_model_has_the_architecture_and_fixed_weights(tmp_path):
    """model.source=random-init: a checkpoint folder's config and tokenizer, random weights, the same every load."""
    import torch
    from reasoning_infused.experiment.settings import ModelConfig
    from reasoning_infused.pipeline.modeling import (
        load_model_and_tokenizer,
        load_tokenizer,
        tiny_random_model,
    )

    tok = load_tokenizer(ModelConfig(source="tiny-random"))
    tiny_random_model(tok, hidden=32, layers=1).config.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    cfg = ModelConfig(source="random-init", name_or_path=str(tmp_path))
    torch.manual_seed(123)
    a, _ = load_model_and_tokenizer(cfg)
    torch.manual_seed(456)  # the caller's random state does not matter
    b, tok_b = load_model_and_tokenizer(cfg)
    assert a.config.hidden_size == 32 and a.config.num_hidden_layers == 1
    assert len(tok_b) == len(tok)
    for (n, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert torch.equal(pa, pb), n


def test_random_init_needs_a_folder():
    from reasoning_infused.experiment.config import ProfileError, load_profile

    with pytest.raises(ProfileError, match="model.name_or_path"):
        load_profile("smoke", ["model.source=random-init"])


def test_gpu_smoke_records_portable_commands(tmp_path):
    from reasoning_infused.tools.gpu_smoke import portable

    cmd = f"{sys.executable} -m x --config_file {REPO_ROOT}/configs/accelerate/ddp.yaml --out {tmp_path}/runs"
    assert portable(cmd, tmp_path) == "python -m x --config_file configs/accelerate/ddp.yaml --out <out>/runs"
