"""Command line: `python -m reasoning_infused <stage> --profile P [--set key=value ...]`."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from reasoning_infused.data.files import DataError
from reasoning_infused.data.prompts import VARIANTS
from reasoning_infused.data.task import TaskError
from reasoning_infused.experiment.config import ProfileError, available_profiles, load_profile


def task_overrides(args) -> list[str]:
    """--set overrides plus --task (a shipped task's name, or a task file's path made absolute so that the
    notebooks and stage subprocesses, which run elsewhere, find it)."""
    task = getattr(args, "task", None)
    if not task:
        return list(args.set)
    from pathlib import Path

    value = str(Path(task).resolve()) if Path(task).suffix in (".yaml", ".yml") else task
    return [*args.set, f"data.task={value}"]


def _profile(args):
    return load_profile(args.profile, task_overrides(args), args.name)


def cmd_data(args) -> int:
    from collections import Counter

    from reasoning_infused.data.emotion import load_ood, summarize_emotion
    from reasoning_infused.data.files import DataNotFound
    from reasoning_infused.data.rows import load_split, ood_sets_of, task_of

    p = _profile(args)
    d = p.data
    task = task_of(d)
    splits = {s: load_split(d, s) for s in ("train", "validation", "test")}
    if task.is_emotion_default:
        print(f"dair-ai/emotion ({d.emotion_dir or 'default location'}):")
        for s in summarize_emotion(splits):
            counts = ", ".join(f"{k} {v}" for k, v in s.counts.items())
            flag = "matches the known counts" if s.matches_known else "DIFFERS from the known dair-ai counts"
            print(f"  {s.split:<10} {s.rows:>6} rows: {counts} ({flag})")
    else:
        print(
            f"task {task.name} ({task.path}): labels {', '.join(task.labels)}; inputs {', '.join(task.inputs)}"
        )
        for split, ds in splits.items():
            c = Counter(ds["label"])
            counts = ", ".join(f"{lab} {c.get(i, 0)}" for i, lab in enumerate(task.labels))
            print(f"  {split:<10} {len(ds):>6} rows: {counts}")
    for name in ood_sets_of(d):
        try:
            ds = load_ood(name, d.ood_dir, d.goemotions_test_only)
            print(f"  ood/{name:<10} {len(ds):>6} rows (evaluation only)")
        except DataNotFound as e:  # absent is fine (evaluate.ood: false); present but malformed is an error
            print(f"  ood/{name}: not available ({e})")
    return 0


def cmd_prepare_model(args) -> int:
    from reasoning_infused.pipeline.modeling import prepare_model

    print(f"[prepare-model] {prepare_model(_profile(args).model)}")
    return 0


def cmd_train_generator(args) -> int:
    from reasoning_infused.pipeline.generator import train_generator

    meta = train_generator(_profile(args), force=args.force)
    if "heldout_loss_after" not in meta:  # a non-main process under `accelerate launch`: the main one reports
        return 0
    print(
        json.dumps(
            {
                k: meta[k]
                for k in (
                    "rows",
                    "wall_seconds",
                    "tokens_per_second",
                    "supervised_tokens_per_second",
                    "heldout_loss_before",
                    "heldout_loss_after",
                )
            },
            indent=2,
        )
    )
    return 0


def cmd_augment(args) -> int:
    from reasoning_infused.pipeline.augment import augment

    meta = augment(_profile(args), force=args.force)
    print(json.dumps(meta["quality"], indent=2))
    return 0


def cmd_train_classifier(args) -> int:
    from reasoning_infused.pipeline.classifiers import train_classifier

    p = _profile(args)
    for v in args.variant or p.classifier.variants:
        train_classifier(p, v, force=args.force)
    return 0


def cmd_predict(args) -> int:
    from reasoning_infused.pipeline.classifiers import predict_sets

    p = _profile(args)
    try:
        predict_sets(p, args.variant or p.classifier.variants, args.sets, force=args.force)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"[predict] {', '.join(args.variant or p.classifier.variants)} on {', '.join(args.sets)}: in the store"
    )
    return 0


def cmd_ablate(args) -> int:
    from reasoning_infused.study.ablate import run_ablation
    from reasoning_infused.study.ablation_plan import load_ablation

    task = args.task and (
        str(Path(args.task).resolve()) if Path(args.task).suffix in (".yaml", ".yml") else args.task
    )
    abl = load_ablation(args.study, task=task)
    if args.record:
        from reasoning_infused.study.ablation_record import backfill

        for name, got in backfill(abl).items():
            print(
                f"[ablate] {name}: per-row record of seeds {got['recorded']}; not recoverable: {got['missing']}"
            )
        return 0
    run_ablation(abl, only=args.arm, dry_run=args.dry_run, rescore=args.rescore)
    return 0


def cmd_evaluate(args) -> int:
    from reasoning_infused.analysis.tables import results_table
    from reasoning_infused.study.runner import evaluate_experiment

    m = evaluate_experiment(_profile(args), force=args.force)
    print(results_table(m))
    return 0


def cmd_analyze(args) -> int:
    from reasoning_infused.analysis.errors import run_analysis

    run_analysis(_profile(args))
    return 0


def cmd_study(args) -> int:
    from reasoning_infused.study.runner import run_study

    run_study(
        _profile(args),
        notebooks=not args.no_notebooks,
        profile_arg=args.profile,
        overrides=task_overrides(args),
    )
    return 0


def cmd_report(args) -> int:
    """Write the reports beside their results (REPORT.md), regenerated from the committed files: one experiment
    (--profile/--name), one ablation study (--ablation) or, with --all, every experiment, the generator sweep and
    every ablation study. --readme also writes the section between a README's markers."""
    from reasoning_infused.base.locations import REPO_ROOT, results_root
    from reasoning_infused.study.ablation_plan import load_ablation
    from reasoning_infused.study.ablation_report import ablation_section
    from reasoning_infused.study.ablation_results import arm_results, write_summary
    from reasoning_infused.study.report import (
        ablation_report,
        experiment_report,
        readme_results,
        sweep_report,
        write_report,
    )

    if args.all:
        root = results_root()
        for metrics in sorted(root.glob("*/metrics.json")):
            write_report(metrics.parent / "REPORT.md", experiment_report(metrics.parent))
        for sweep in sorted((root / "generator_sweep").glob("*.json")):
            write_report(sweep.with_name("REPORT.md"), sweep_report(json.loads(sweep.read_text())))
        for study in sorted((REPO_ROOT / "ablations").glob("*.yaml")):
            abl = load_ablation(study)
            write_summary(abl)
            write_report(abl.results_dir / "REPORT.md", ablation_report(abl))
        readme = REPO_ROOT / "README.md"
        if "<!-- ANSWER:START -->" in readme.read_text():
            from reasoning_infused.analysis.figures import answer_forest
            from reasoning_infused.base.locations import figures_root
            from reasoning_infused.study.report import answer_rows, answer_table, notebook_table

            rows = answer_rows()
            answer_forest(rows, figures_root() / "answer.png")
            _write_readme(str(readme), answer_table(rows), "ANSWER")
            _write_readme(str(readme), notebook_table(results_root() / "default"), "NOTEBOOKS")
        return 0
    if args.ablation:
        abl = load_ablation(args.ablation)
        summary = write_summary(abl)
        write_report(abl.results_dir / "REPORT.md", ablation_report(abl))
        found = arm_results(abl)
        section, marker = ablation_section(summary, {**found.done, **found.interim}), "ABLATIONS"
    else:
        p = _profile(args)
        write_report(p.results_dir / "REPORT.md", experiment_report(p.results_dir))
        extra = {}
        for name in ("bench", "analysis", "stage_seconds", "peak_rss_gib"):
            path = p.results_dir / f"{name}.json"
            extra[name] = json.loads(path.read_text()) if path.exists() else None
        metrics = json.loads((p.results_dir / "metrics.json").read_text())
        section = readme_results(
            metrics, extra["bench"], extra["analysis"], extra["stage_seconds"], extra["peak_rss_gib"]
        )
        marker = "RESULTS"
    if args.readme:
        _write_readme(args.readme, section, marker)
    return 0


def cmd_reproduce(args) -> int:
    from reasoning_infused.study.runner import check_reproducible, compare_with_revision

    if args.against:
        out = compare_with_revision(_profile(args), args.against)
        summary = {k: v for k, v in out.items() if k != "per_file"}
        for name, f in out["per_file"].items():
            summary[name] = {k: v for k, v in f.items() if k != "changed_rows"}
        print(json.dumps(summary, indent=2))
        return 0 if out["files_identical"] == out["files"] else 1
    out = check_reproducible(_profile(args), args.variant, args.split)
    print(json.dumps(out, indent=2))
    same = [
        out[k]
        for k in ("identical_predictions", "identical_generations", "identical_constrained")
        if k in out
    ]
    return 0 if all(n == out["rows"] for n in same) else 1


def cmd_artifacts(args) -> int:
    from reasoning_infused.base.locations import store_root
    from reasoning_infused.experiment.artifacts import list_artifacts, remove_artifact

    if args.remove:
        for path in args.remove:
            remove_artifact(path)
            print(f"removed {path}")
        return 0
    rows = list_artifacts(_profile(args))
    if not rows:
        print(f"the artifact store {store_root()} is empty")
        return 0
    print(
        f"artifact store: {store_root()}  (differs: settings that differ from --profile/--set; '' = this one)"
    )
    print(
        f"{'stage':<12}{'variant':<9}{'key':<18}{'state':<13}{'MB':>8}  {'date':<17} differs from the profile"
    )
    for r in rows:
        print(
            f"{r['stage']:<12}{r['variant']:<9}{r['key'][:17]:<18}{r['state']:<13}{r['size_mb']:>8}  {r['date']:<17} "
            f"{r.get('differs_from_profile', '')}"
        )
    print(f"{len(rows)} artifacts, {sum(r['size_mb'] for r in rows):.0f} MB; remove one with --remove PATH")
    return 0


def cmd_bench(args) -> int:
    from reasoning_infused.tools.bench import run_bench

    run_bench(_profile(args), quick=args.quick)
    return 0


def _write_readme(readme: str, section: str, marker: str) -> None:
    """A command's `--readme`: its section between the README's MARKER lines."""
    from reasoning_infused.study.report import update_readme

    update_readme(readme, section, marker)
    print(f"updated {readme}")


def cmd_quality(args) -> int:
    from reasoning_infused.analysis.quality import experiment_quality
    from reasoning_infused.analysis.quality_tables import quality_table

    p = _profile(args)
    report = experiment_quality(p, bootstrap_samples=args.bootstrap_samples)
    print(quality_table(report))
    print(f"[quality] written to {p.results_dir / 'reasoning_quality.json'}")
    if args.readme:
        from reasoning_infused.analysis.quality_tables import quality_markdown

        _write_readme(args.readme, quality_markdown(report), "QUALITY")
    return 0


def cmd_engine_check(args) -> int:
    from reasoning_infused.analysis.tables import engine_check_table
    from reasoning_infused.tools.engine_check import engine_check

    p = _profile(args)
    report = engine_check(p, args.backend, profile_arg=args.profile)
    print(engine_check_table(report))
    print(f"[engine-check] written to {p.results_dir / f'engine_check_{args.backend}.json'}")
    if args.readme:
        _write_readme(args.readme, engine_check_table(report), "ENGINE_CHECK")
    return 0


def cmd_generator_sweep(args) -> int:
    from reasoning_infused.study.generator_sweep import candidate_profile, load_sweep, run_sweep, sweep_table

    try:
        sweep = load_sweep(args.sweep)
    except (ProfileError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.dry_run:
        from reasoning_infused.experiment import artifacts

        for c in sweep.candidates:
            p = candidate_profile(sweep, c)
            trained = artifacts.generator_artifact(p).is_complete()
            made = artifacts.heldout_reasonings_artifact(p, sweep.rows, sweep.seed).is_complete()
            print(
                f"[generator-sweep] {c.name}: {', '.join(c.overrides) or 'the profile as it is'}; generator "
                f"{'in the store' if trained else 'to train'}, held-out reasonings {'in the store' if made else 'to write'}"
            )
        return 0
    result = run_sweep(sweep)
    print(sweep_table(result))
    if args.readme:
        from reasoning_infused.study.generator_sweep import sweep_markdown

        _write_readme(args.readme, sweep_markdown(result), "GENERATOR_SWEEP")
    return 0


def cmd_gpu_smoke(args) -> int:
    from reasoning_infused.tools.gpu_smoke import run_gpu_smoke

    try:
        report = run_gpu_smoke(args.out, args.architecture, args.budget_minutes)
    except RuntimeError as e:  # no CUDA here
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0 if all(s["status"] == "ok" for s in report["steps"]) else 1


def stop_on_sigterm() -> None:
    """Make SIGTERM (`kill`, a job scheduler, a session ending) stop this process like Ctrl-C: the running stage
    process is stopped too (`study.run_process`), finished work is kept, and the same command resumes."""
    import signal

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m reasoning_infused", description=__doc__)
    sub = ap.add_subparsers(dest="command", required=True)

    def add(name, fn, help_):
        sp = sub.add_parser(name, help=help_)
        sp.add_argument("--profile", default="default", help=f"one of {available_profiles()} or a YAML path")
        sp.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="override a profile value, e.g. --set data.train_size=500",
        )
        sp.add_argument(
            "--name",
            default=None,
            help="experiment name (results/<name>/); default: the profile name plus the overridden settings",
        )
        sp.add_argument(
            "--task",
            default=None,
            help="a shipped task (emotion, esnli) or a task YAML's path; default: the profile's (emotion)",
        )
        sp.set_defaults(fn=fn)
        return sp

    add("data", cmd_data, "summarise and check the data")
    add("prepare-model", cmd_prepare_model, "make the base model ready (the packaged GGUF dequantised once)")
    add("train-generator", cmd_train_generator, "stage 1: fine-tune the reasoning generator").add_argument(
        "--force", action="store_true", help="retrain (the old run is renamed, not deleted)"
    )
    add(
        "augment", cmd_augment, "stage 2: generate one reasoning per training example (resumable)"
    ).add_argument(
        "--force", action="store_true", help="generate again (the old artifact is renamed, not deleted)"
    )
    sp = add("train-classifier", cmd_train_classifier, "fine-tune the Q->A / Q->RA / Q->AR classifiers")
    sp.add_argument(
        "--variant", action="append", choices=list(VARIANTS), help="default: the profile's variants"
    )
    sp.add_argument("--force", action="store_true")
    sp = add("predict", cmd_predict, "predict evaluation sets into the artifact store (no results written)")
    sp.add_argument("--variant", action="append", choices=[*VARIANTS, "zero_shot"])
    sp.add_argument("--sets", nargs="+", default=["validation", "test"], help="validation, test, ood_<name>")
    sp.add_argument("--force", action="store_true")
    sp = sub.add_parser(
        "ablate", help="run an ablation study YAML arm by arm (resumes after the last finished seed)"
    )
    sp.add_argument("study", help="path to ablations/<study>.yaml")
    sp.add_argument("--arm", action="append", help="run only these arms (default: all)")
    sp.add_argument("--task", default=None, help="run every arm on this task (a shipped name or a task YAML)")
    sp.add_argument(
        "--record",
        action="store_true",
        help="write the per-row record of every finished seed the store or the committed predictions hold",
    )
    sp.add_argument("--dry-run", action="store_true", help="print the plan and the estimated CPU time only")
    sp.add_argument(
        "--rescore",
        action="store_true",
        help="recompute finished arms from the stored predictions (no training)",
    )
    sp.set_defaults(fn=cmd_ablate)
    add("artifacts", cmd_artifacts, "list the artifact store (stage, key, size, what differs)").add_argument(
        "--remove", nargs="+", metavar="PATH", help="delete these artifact folders"
    )
    add(
        "evaluate", cmd_evaluate, "predict, score, test, write results/<experiment>/metrics.json"
    ).add_argument("--force", action="store_true", help="predict again even where predictions exist")
    add("analyze", cmd_analyze, "error and explanation analysis, faithfulness probe, figures")
    add("study", cmd_study, "every stage in order, then execute the notebooks").add_argument(
        "--no-notebooks", action="store_true"
    )
    add("bench", cmd_bench, "performance figures -> results/<profile>/bench.json").add_argument(
        "--quick", action="store_true", help="fewer repetitions (for a smoke check)"
    )
    sp = add(
        "report", cmd_report, "write the reports (REPORT.md) beside their results, from the committed files"
    )
    sp.add_argument("--readme", help="write it between the RESULTS (or ABLATIONS) markers of this README")
    sp.add_argument("--ablation", help="an ablation YAML: report its finished arms instead of an experiment")
    sp.add_argument(
        "--all",
        action="store_true",
        help="every report: each experiment, the generator sweep, each ablation study",
    )
    sp = add(
        "quality", cmd_quality, "reasoning quality (form, leakage, grounding, LAS) -> reasoning_quality.json"
    )
    sp.add_argument("--bootstrap-samples", type=int, default=1000)
    sp.add_argument("--readme", help="write the table between the QUALITY markers of this README")
    sp = add(
        "engine-check",
        cmd_engine_check,
        "a CTranslate2 engine against the default decoding: reasoning quality and Q->RA validation accuracy",
    )
    sp.add_argument("--backend", default="ct2-int8", choices=["ct2", "ct2-int8"])
    sp.add_argument("--readme", help="write the summary between the ENGINE_CHECK markers of this README")
    sp = sub.add_parser(
        "generator-sweep",
        help="train and compare generator candidates on held-out training rows; the declared rule picks one",
    )
    sp.add_argument("sweep", help="a sweep YAML, e.g. configs/generator_sweep.yaml")
    sp.add_argument("--dry-run", action="store_true", help="list the candidates and what is in the store")
    sp.add_argument("--readme", help="write the table between the GENERATOR_SWEEP markers of this README")
    sp.set_defaults(fn=cmd_generator_sweep)
    sp = sub.add_parser(
        "gpu-smoke",
        help="on a CUDA machine: smoke study in bf16, the DDP launch on all GPUs, the default study's compute",
    )
    sp.add_argument(
        "--out", default="runs/gpu_smoke", help="output folder (runs, results, logs, gpu_smoke.json)"
    )
    sp.add_argument("--architecture", default=None, help="checkpoint folder whose config.json is timed")
    sp.add_argument("--budget-minutes", type=float, default=9.0, help="stop starting steps after this")
    sp.set_defaults(fn=cmd_gpu_smoke)
    sp = add(
        "reproduce", cmd_reproduce, "predict again with a saved model and compare with the saved predictions"
    )
    sp.add_argument("--variant", default="qa", choices=[*VARIANTS, "zero_shot"])
    sp.add_argument("--split", default="test")
    sp.add_argument(
        "--against",
        metavar="REVISION",
        help="instead: compare the experiment's prediction files with those committed at this git revision "
        "(a rerun of the study against the results it replaced); writes rerun_comparison.json",
    )
    args = ap.parse_args(argv)
    t0 = time.time()
    from reasoning_infused.base.provenance import CorruptFile
    from reasoning_infused.pipeline.augment import AugmentationMismatch

    known = (ProfileError, DataError, TaskError, FileNotFoundError, CorruptFile, AugmentationMismatch)
    try:
        rc = args.fn(args)
    except known as e:  # bad settings, bad or missing data, a missing or damaged artifact: one line, exit 2
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: finished work is kept; run the same command again to resume", file=sys.stderr)
        return 130
    except Exception:
        import traceback

        traceback.print_exc()
        print(
            f"\nunexpected error in `{args.command}` (a bug, not bad input): please report it with the command "
            "and the traceback above; finished artifacts are kept and a rerun resumes",
            file=sys.stderr,
        )
        return 1
    if os.environ.get("RANK", "0") == "0":  # under `accelerate launch`, the main process reports
        print(f"[{args.command}] finished in {time.time() - t0:.0f} s", file=sys.stderr)
    return rc
