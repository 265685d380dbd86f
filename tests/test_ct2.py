"""CTranslate2 backend: float32 decodes the same tokens as transformers (tiny model; the smoke pipeline)."""

import copy

import numpy as np
import pytest
import torch

pytest.importorskip("ctranslate2", reason="pip install ctranslate2")

from reasoning_infused.experiment.artifacts import read_reasonings
from reasoning_infused.experiment.settings import ModelConfig
from reasoning_infused.pipeline.engines import CT2Backend, ct2_convert
from reasoning_infused.pipeline.inference import TransformersBackend, generate_all
from reasoning_infused.pipeline.modeling import load_model_and_tokenizer

TEXTS = ["i feel sad", "what a day it was today", "hello", "i am so angry at everyone", "ok"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    model, tok = load_model_and_tokenizer(ModelConfig(source="tiny-random"))
    # Random weights give near-uniform next-token distributions, where the last bit of a float sum decides the
    # argmax (and differs between kernels and CPUs). A sharper output layer gives clear winners, so equal text
    # tests the engine, not rounding.
    with torch.no_grad():
        model.lm_head.weight.mul_(200.0)
    folder = tmp_path_factory.mktemp("tiny")
    model.save_pretrained(folder / "hf")
    tok.save_pretrained(folder / "hf")
    prompts = [
        tok.apply_chat_template([{"role": "user", "content": t}], tokenize=False, add_generation_prompt=True)
        for t in TEXTS
    ]
    return model, tok, ct2_convert(folder / "hf", folder / "ct2"), prompts


def test_float32_gives_the_same_text_as_transformers(tiny):
    model, tok, ct2_dir, prompts = tiny
    want = generate_all(TransformersBackend(model, tok), prompts, 12, batch_size=2)
    got = generate_all(CT2Backend(ct2_dir, tok), prompts, 12, batch_size=2)
    assert got == want
    assert (ct2_dir / "model.bin").exists() and ct2_convert(
        ct2_dir.parent / "hf", ct2_dir
    ) == ct2_dir  # cached


def test_stopping_at_the_end_token_matches(tiny):
    """Make the token the model writes third the end-of-turn token: both engines stop there, alike."""
    model, tok, ct2_dir, prompts = tiny
    first = generate_all(TransformersBackend(model, tok), prompts[:1], 6, batch_size=1)[0]
    third = tok(first.text, add_special_tokens=False)["input_ids"][2]
    stop_tok = copy.deepcopy(tok)
    stop_tok.eos_token = stop_tok.convert_ids_to_tokens(third)
    want = generate_all(TransformersBackend(model, stop_tok), prompts, 6, batch_size=2)
    got = generate_all(CT2Backend(ct2_dir, stop_tok), prompts, 6, batch_size=2)
    assert got == want
    assert any(g.finish_reason == "stop" for g in want) and any(g.finish_reason == "length" for g in want)


def test_sampling_is_refused_not_silently_unseeded(tiny):
    _, tok, ct2_dir, prompts = tiny
    with pytest.raises(ValueError, match="not reproducible with CTranslate2"):
        generate_all(CT2Backend(ct2_dir, tok), prompts, 8, batch_size=5, do_sample=True, seed=3)


@pytest.mark.slow
def test_smoke_pipeline_runs_on_ct2_into_its_own_artifacts(smoke_study):
    """The stages run on ct2 end to end. (The smoke model's near-uniform distributions make exact equality with
    transformers a matter of rounding there: equality is tested above on a sharp model and measured on the real
    one by `bench`.)"""
    from reasoning_infused.experiment.artifacts import (
        augment_artifact,
        classifier_artifact,
        predictions_artifact,
        read_predictions_artifact,
        read_reasonings,
    )
    from reasoning_infused.experiment.config import load_profile
    from reasoning_infused.pipeline.augment import augment
    from reasoning_infused.pipeline.classifiers import predict_sets

    base = smoke_study["profile"]
    gen = load_profile("smoke", ["augment.backend=ct2"])
    assert augment_artifact(gen).key != augment_artifact(base).key  # the backend is part of the key
    augment(gen)
    rows, base_rows = read_reasonings(gen), read_reasonings(base)
    assert sorted(r["id"] for r in rows) == sorted(r["id"] for r in base_rows)
    assert all(
        r["n_tokens"] <= gen.augment.max_new_tokens and r["finish_reason"] in ("stop", "length") for r in rows
    )
    assert (augment_artifact(base).path / "metadata.json").exists()  # the transformers artifact is untouched
    clf = load_profile("smoke", ["classifier.backend=ct2"])  # the same Q->RA classifier, its own predictions
    assert classifier_artifact(clf, "qra").key == classifier_artifact(base, "qra").key
    assert predictions_artifact(clf, "qra", "test").key != predictions_artifact(base, "qra", "test").key
    predict_sets(clf, ["qra"], ["test"])
    got, want = read_predictions_artifact(clf, "qra", "test"), read_predictions_artifact(base, "qra", "test")
    assert [r["text"] for r in got] == [r["text"] for r in want]
    assert all(
        r["predicted_constrained"] in {"sadness", "joy", "love", "anger", "fear", "surprise"} for r in got
    )


def test_paired_differences_and_the_noise_verdict_on_known_inputs():
    from reasoning_infused.analysis.quality import paired_mean_difference
    from reasoning_infused.tools.engine_check import within_noise

    a = np.array([0.0, 1.0, 1.0, 0.0, np.nan])
    b = np.array([1.0, 1.0, 1.0, 1.0, 0.0])
    d = paired_mean_difference(a, b, n_samples=200)
    assert d["n"] == 4 and d["difference"] == 0.5 and d["ci"][0] <= 0.5 <= d["ci"][1]
    same = paired_mean_difference(np.ones(50), np.ones(50))
    assert same["difference"] == 0 and same["ci"] == [0.0, 0.0]
    report = {
        "augmentation": {"grounding": {"ci": [-0.01, 0.02]}, "leaks_gold": {"ci": [0.01, 0.05]}},
        "inference_qra_validation": {"free": {"accuracy_difference_ci": [-0.04, -0.01]}},
    }
    assert within_noise(report) == (
        False,
        ["augmentation.leaks_gold", "inference_qra_validation.free.accuracy"],
    )
    report["augmentation"]["leaks_gold"]["ci"] = [-0.01, 0.0]
    report["inference_qra_validation"]["free"]["accuracy_difference_ci"] = [-0.04, 0.01]
    assert within_noise(report) == (True, [])


def test_engine_check_compares_both_places_that_generate(smoke_study, capsys):
    """The int8 check on the smoke pipeline: a second augmentation and Q->RA classifier, the Q->RA predictions
    decoded by int8, paired comparisons on validation, a verdict; written where the docs say."""
    import json

    from reasoning_infused.analysis.tables import engine_check_table
    from reasoning_infused.tools.engine_check import engine_check

    p = smoke_study["profile"]
    report = engine_check(p, "ct2-int8", bootstrap_samples=50, in_process=True)
    saved = json.loads((p.results_dir / "engine_check_ct2-int8.json").read_text())
    assert saved["within_noise"] == report["within_noise"]
    n_train = len(read_reasonings(p))
    assert report["augmentation"]["rows"] == n_train
    assert 0 <= report["augmentation"]["identical_reasonings"] <= n_train
    las = report["augmentation"]["las"]  # paired: both LAS on the same resampled rows
    assert las["difference"] == pytest.approx(las["las_candidate"] - las["las_reference"])
    for part in ("augmentation_qra_validation", "inference_qra_validation"):
        r = report[part]
        assert r["rows"] == p.data.val_size
        for name in ("free", "constrained"):
            v = r[name]
            assert v["accuracy_candidate"] - v["accuracy_reference"] == pytest.approx(
                v["accuracy_difference"]
            )
            lo, hi = v["accuracy_difference_ci"]
            assert lo <= v["accuracy_difference"] <= hi
    assert report["within_noise"] == (not report["intervals_excluding_zero"])
    assert "within noise:" in engine_check_table(report)
