"""The real pipeline, tiny: smoke profile (random 2-layer Llama with the real SmolLM2 tokenizer, a few dozen rows)."""

import dataclasses
import json

import pytest
from reasoning_infused.base.provenance import read_jsonl
from reasoning_infused.experiment import artifacts
from reasoning_infused.experiment.config import load_profile
from reasoning_infused.pipeline.augment import AugmentationMismatch, generate_reasonings, quality_report
from reasoning_infused.pipeline.training import train_sft
from transformers import TrainerCallback

pytestmark = pytest.mark.slow


def test_generator_artifact_and_metadata(smoke_study):
    p = smoke_study["profile"]
    meta = smoke_study["generator"]
    d = artifacts.generator_artifact(p).path
    for f in (
        "adapter_config.json",
        "metadata.json",
        "settings.json",
        "train_log.jsonl",
        "heldout_triples.jsonl",
    ):
        assert (d / f).exists(), f
    for k in (
        "base_model",
        "rows",
        "supervised_tokens_per_epoch",
        "wall_seconds",
        "tokens_per_second",
        "code_version",
        "heldout_loss_before",
        "heldout_loss_after",
        "data_mix",
        "key",
        "settings",
        "package_versions",
        "resolved_profile",
        "made_by_experiment",
    ):
        assert k in meta, k
    assert meta["rows"] == sum(p.generator.sources.values())
    assert meta["dtype"] == "torch.float32"
    assert not (d / "checkpoints").exists()  # cleaned after a complete run


def test_interrupted_augmentation_resumes_without_duplicates(smoke_study):
    p = smoke_study["profile"]
    assert smoke_study["partial_rows"] == 10
    rows = artifacts.read_reasonings(p)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)) == p.data.train_size
    assert {
        "id",
        "text",
        "label",
        "reasoning",
        "n_tokens",
        "finish_reason",
        "flags",
        "flagged",
        "key",
    } <= set(rows[0])
    rep = quality_report(rows)
    assert rep["rows"] == p.data.train_size and 0 <= rep["cut_at_limit_share"] <= 1


def test_augmentation_refuses_rows_from_another_key(smoke_study, tmp_path):
    p = smoke_study["profile"]
    path = artifacts.reasonings_path(p)
    before = path.read_bytes()
    other = load_profile("smoke", ["augment.max_new_tokens=7"])
    other_path = artifacts.reasonings_path(other)
    assert other_path != path  # another setting: another artifact
    other_path.parent.mkdir(parents=True, exist_ok=True)
    other_path.write_bytes(before)  # rows of another key copied in by hand
    try:
        with pytest.raises(AugmentationMismatch, match="reasonings.jsonl:1"):
            generate_reasonings(other)
        assert other_path.read_bytes() == before  # nothing lost or changed
    finally:
        other_path.unlink()
    assert path.read_bytes() == before


def test_metrics_json_has_the_agreed_keys(smoke_study):
    p = smoke_study["profile"]
    m = json.loads((p.results_dir / "metrics.json").read_text())
    for k in (
        "classifiers",
        "mcnemar",
        "ood",
        "profile",
        "code_version",
        "stage_seconds",
        "prompt_version",
        "package_versions",
        "artifact_keys",
        "experiment",
    ):
        assert k in m, k
    for clf in (
        "qa",
        "qra",
        "qar",
        "qra_constrained",
        "zero_shot",
        "majority",
        "tfidf_same_examples",
        "tfidf_full_train",
    ):
        c = m["classifiers"][clf]
        assert c["n_test"] == p.data.test_size
        assert len(c["accuracy_ci"]) == 2 and c["accuracy_ci"][0] <= c["accuracy"] <= c["accuracy_ci"][1]
        for k in ("macro_f1", "per_class", "confusion"):
            assert k in c
    assert "qa__vs__qra" in m["mcnemar"] and 0 <= m["mcnemar"]["qa__vs__qra"]["p_value"] <= 1
    assert set(m["ood"]) == {"goemotions", "isear"}
    assert m["ood"]["isear"]["qa"]["label_space"] == ["sadness", "joy", "anger", "fear"]
    assert m["qra_selected_decoding"] in ("qra", "qra_constrained")
    # the declared primary comparison: second minus first with a paired interval and McNemar's test
    prim = m["primary"]
    assert [prim["first"], prim["second"]] == ["qa", m["qra_selected_decoding"]]
    lo, hi = prim["accuracy_difference_ci"]
    assert lo <= prim["accuracy_difference"] <= hi and 0 <= prim["p_value"] <= 1
    assert all(c["p_holm"] >= c["p_value"] for c in m["comparisons"])
    assert {c["set"] for c in m["comparisons"]} == {"test", "goemotions", "isear"}
    assert set(m["ood_label_space_sensitivity"]) == {"isear"}
    assert set(m["tfidf_c_chosen_on_validation"]) == {"tfidf_same_examples", "tfidf_full_train"}
    assert len(m["classifiers"]["qa"]["per_class"]["joy"]["f1_ci"]) == 2


def test_predictions_saved_with_scores_and_parse_flags(smoke_study):
    p = smoke_study["profile"]
    rows = read_jsonl(p.results_dir / "predictions" / "qra__test.jsonl")
    assert len(rows) == p.data.test_size
    r = rows[0]
    assert {
        "text",
        "gold",
        "predicted",
        "generated",
        "scores",
        "parse_failed",
        "predicted_constrained",
    } <= set(r)
    assert all((x["predicted"] is None) == x["parse_failed"] for x in rows)
    qa = read_jsonl(p.results_dir / "predictions" / "qa__test.jsonl")
    assert all(x["predicted"] in x["scores"] and not x["parse_failed"] for x in qa)


def test_training_resumes_from_its_last_checkpoint(smoke_study, tmp_path):
    from reasoning_infused.pipeline.classifiers import classifier_examples, training_rows
    from reasoning_infused.pipeline.modeling import load_tokenizer

    p = smoke_study["profile"]
    tc = dataclasses.replace(p.classifier.train, save_steps=1)
    tok = load_tokenizer(p.model)
    examples = classifier_examples(tok, training_rows(p, "qa"), "qa")

    class Crash(TrainerCallback):
        def on_save(self, args, state, control, **kw):
            if state.global_step == 2:
                raise KeyboardInterrupt("simulated kill after step 2")

    out = tmp_path / "resume"
    with pytest.raises(KeyboardInterrupt):
        train_sft(p.model, tc, examples, out, name="resume-test", callbacks=[Crash()])
    assert not (out / "train_meta.json").exists()
    assert (out / "checkpoints" / "checkpoint-2").exists()
    meta = train_sft(p.model, tc, examples, out, name="resume-test")
    assert meta["resumed_from"].endswith("checkpoint-2")
    assert meta["optimizer_steps"] == 5  # 36 rows / batch 8, the run finished where the first would have
    again = train_sft(p.model, tc, examples, out, name="resume-test")  # finished: not trained again
    assert again["finished_at"] == meta["finished_at"]


def test_training_and_prediction_are_reproducible(smoke_study, tmp_path):
    """Same profile, same seed: identical weights and predictions on CPU (what the README promises)."""
    import numpy as np
    from reasoning_infused.data.prompts import classifier_prompt
    from reasoning_infused.pipeline.classifiers import classifier_examples, training_rows
    from reasoning_infused.pipeline.modeling import load_tokenizer, load_trained
    from reasoning_infused.pipeline.scoring import score_labels

    p = smoke_study["profile"]
    tok = load_tokenizer(p.model)
    examples = classifier_examples(tok, training_rows(p, "qar"), "qar")
    scores = []
    for run in ("a", "b"):
        train_sft(p.model, p.classifier.train, examples, tmp_path / run, name=f"repro-{run}")
        model, tok = load_trained(p.model, tmp_path / run)
        prompts = [
            classifier_prompt(tok, t) + "Answer:" for t in ["i feel great", "i am worried about tomorrow"]
        ]
        scores.append(score_labels(model, tok, prompts, batch_size=2))
    assert np.array_equal(scores[0], scores[1])


def test_lora_artifact_merged_once_for_vllm_gives_the_same_logits(smoke_study):
    import torch
    from reasoning_infused.pipeline.modeling import load_trained, merged_checkpoint
    from transformers import AutoModelForCausalLM

    p = smoke_study["profile"]
    d = artifacts.classifier_artifact(p, "qra").path
    merged = merged_checkpoint(p.model, d)
    assert (
        merged == d / "merged" and (merged / "config.json").exists() and (merged / "tokenizer.json").exists()
    )
    stamp = (merged / "config.json").stat().st_mtime
    assert merged_checkpoint(p.model, d) == merged and (merged / "config.json").stat().st_mtime == stamp
    ids = torch.tensor([[1, 200, 300, 400]])
    ref, _ = load_trained(p.model, d)
    plain = AutoModelForCausalLM.from_pretrained(merged).eval()
    with torch.no_grad():
        assert torch.allclose(ref(ids).logits, plain(ids).logits, atol=1e-5)


def test_vllm_backend_without_vllm_says_how_to_install_it(smoke_study):
    import pytest
    from reasoning_infused.experiment.config import load_profile
    from reasoning_infused.pipeline.classifiers import predict
    from reasoning_infused.pipeline.loading import load_classifier

    try:
        import vllm  # noqa: F401

        pytest.skip("vllm is installed")
    except ImportError:
        pass
    p = load_profile("smoke", overrides=["classifier.backend=vllm"])
    model, tok = load_classifier(p, "qra")
    with pytest.raises(RuntimeError, match="pip install vllm"):
        predict(model, tok, "qra", ["i feel fine"], [1], p)


def test_bench_writes_every_agreed_figure(smoke_study):
    """The benchmark on the smoke profile (figures meaningless on a tiny model; the keys and checks are not)."""
    import json

    from reasoning_infused.tools.bench import run_bench

    p = smoke_study["profile"]
    run_bench(p, quick=True)
    bench = json.loads((p.results_dir / "bench.json").read_text())
    for key in (
        "train_tokens_per_s",
        "train_speedup_vs_trl_default",
        "train_fraction_of_compute_limit",
        "augment_speedup_vs_batch1",
        "decode_fraction_of_compute_limit",
        "decode_phase_fraction_of_compute_limit",
        "qa_predict_examples_per_s",
        "study_minutes",
        "peak_rss_gib",
        "matmul_gflops",
    ):
        assert key in bench, key
    assert bench["matmul_gflops"] > 0 and bench["train_tokens_per_s"] > 0
    # the three generation paths are greedy on the same prompts: the same texts
    assert bench["details"]["generation"]["same_text_as_batch1"] == {
        "batched_generate": True,
        "project": True,
    }
    # CTranslate2 next to them, from the same run: float32 writes the project's texts
    ct2 = bench["details"]["generation"]["ct2"]
    assert ct2["float32"]["same_text_as_project"] == ct2["float32"]["of"]
    assert bench["ct2_float32_tokens_per_s"] > 0 and bench["ct2_int8_tokens_per_s"] > 0


def test_self_consistency_samples_k_reasonings_and_combines_their_labels(smoke_study):
    """classifier.self_consistency = k: the same Q->RA model (same classifier key), k sampled reasonings per row,
    the labels scored after each, combined by vote and by summed log-probability, beside an unchanged greedy
    decoding; the prediction key records the setting."""
    from collections import Counter

    from reasoning_infused import load_profile
    from reasoning_infused.experiment import artifacts
    from reasoning_infused.pipeline.classifiers import predict_sets
    from reasoning_infused.pipeline.evaluate import predictions_by_classifier

    base = smoke_study["profile"]
    p = load_profile("smoke", ["classifier.self_consistency=3"])
    assert artifacts.classifier_artifact(p, "qra").key == artifacts.classifier_artifact(base, "qra").key
    assert (
        artifacts.predictions_artifact(p, "qra", "test").key
        != artifacts.predictions_artifact(base, "qra", "test").key
    )
    assert (
        artifacts.predictions_artifact(p, "qa", "test").key
        == artifacts.predictions_artifact(base, "qa", "test").key
    )
    predict_sets(p, ["qra"], ["test"])
    rows = artifacts.read_predictions_artifact(p, "qra", "test")
    assert all(len(r["sc_labels"]) == 3 and len(r["sc_reasonings"]) == 3 for r in rows)
    assert {"qra_sc_vote", "qra_sc_logprob"} <= set(predictions_by_classifier({"qra": rows}))
    base_rows = artifacts.read_predictions_artifact(base, "qra", "test")
    assert [r["generated"] for r in rows] == [r["generated"] for r in base_rows]  # greedy unchanged
    for r in rows:
        top = Counter(r["sc_labels"]).most_common()
        assert r["predicted_sc_vote"] in [lab for lab, c in top if c == top[0][1]]
