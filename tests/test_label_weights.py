"""Answer-weighted loss (classifier.train.label_loss_share): each example's label tokens carry a fixed share."""

from __future__ import annotations

import json

import pytest
import torch
from reasoning_infused.pipeline.training import label_token_weights


def test_label_weights_sum_to_one_with_the_declared_share():
    w = label_token_weights(6, [False, False, True, False, False, False], 0.25)
    assert sum(w) == pytest.approx(1.0)
    assert w[2] == pytest.approx(0.25)
    assert all(x == pytest.approx(0.75 / 5) for i, x in enumerate(w) if i != 2)
    # a label of two tokens shares its weight; a completion that is only the label takes all of it
    assert label_token_weights(4, [True, True, False, False], 0.5) == [0.25, 0.25, 0.25, 0.25]
    assert label_token_weights(2, [True, True], 0.3) == [0.5, 0.5]
    with pytest.raises(ValueError, match="no label token"):
        label_token_weights(3, [False, False, False], 0.25)


def test_the_label_tokens_are_found_in_every_variant(smoke_profile):
    from reasoning_infused.pipeline.classifiers import classifier_examples
    from reasoning_infused.pipeline.modeling import load_tokenizer
    from reasoning_infused.pipeline.training import tokenize_examples

    tok = load_tokenizer(smoke_profile.model)
    rows = [{"text": "i feel so happy today", "label": "joy", "reasoning": "Answer: sadness is not it."}]
    for variant in ("qa", "qra", "qar"):
        (ex,) = classifier_examples(tok, rows, variant)
        assert ex.completion[ex.label_span[0] : ex.label_span[1]] == "joy"  # not the decoy in the reasoning
        ds, _ = tokenize_examples(tok, [ex], max_length=512, label_loss_share=0.25)
        ids, mask, w = ds[0]["input_ids"], ds[0]["completion_mask"], ds[0]["label_weights"]
        assert sum(w) == pytest.approx(1.0)
        assert all(x == 0 for x, m in zip(w, mask, strict=True) if not m)  # nothing on the prompt
        if variant == "qa":
            continue  # every token weighs the same there (below)
        lightest = min(x for x, m in zip(w, mask, strict=True) if m)
        heavy = [i for i, x in enumerate(w) if x > lightest + 1e-9]
        assert tok.decode([ids[i] for i in heavy]).strip() == "joy"
        assert sum(w[i] for i in heavy) == pytest.approx(0.25)
    # Q->A: "Answer", ":", " joy", end-of-turn -> 0.25 on the label is exactly the unweighted share
    ds, _ = tokenize_examples(tok, classifier_examples(tok, rows, "qa"), 512, label_loss_share=0.25)
    completion_weights = [
        x for x, m in zip(ds[0]["label_weights"], ds[0]["completion_mask"], strict=True) if m
    ]
    assert completion_weights == pytest.approx([1 / len(completion_weights)] * len(completion_weights))


def test_weighted_loss_equals_a_hand_computed_mean_over_examples():
    from reasoning_infused.pipeline.modeling import tiny_random_model
    from reasoning_infused.pipeline.training import completion_only_loss

    class Tok:  # only what tiny_random_model reads
        bos_token_id, eos_token_id, pad_token_id = 1, 2, 0

        def __len__(self):
            return 50

    model = tiny_random_model(Tok(), hidden=16, layers=1)
    ids = torch.tensor([[1, 5, 6, 7, 8, 2], [1, 9, 10, 11, 2, 0]])
    labels = torch.tensor([[-100, -100, 6, 7, 8, 2], [-100, -100, 10, 11, 2, -100]])
    weights = torch.tensor([[0, 0, 0.2, 0.6, 0.1, 0.1], [0, 0, 0.5, 0.25, 0.25, 0]])
    inputs = {
        "input_ids": ids,
        "attention_mask": (ids != 0).long(),
        "labels": labels,
        "label_weights": weights,
    }
    got = completion_only_loss(model, inputs)
    with torch.no_grad():
        logp = model(input_ids=ids, attention_mask=inputs["attention_mask"]).logits.log_softmax(-1)
    want = 0.0
    for b in range(2):
        for t in range(1, 6):
            if labels[b, t] != -100:
                want += -weights[b, t] * logp[b, t - 1, labels[b, t]]
    assert got.item() == pytest.approx(want.item() / 2, rel=1e-5)


def _step_losses(art) -> list[float]:
    return [json.loads(x)["loss"] for x in (art.path / "train_log.jsonl").open() if '"loss"' in x]


@pytest.mark.slow
def test_label_weighted_classifiers_train_into_their_own_artifacts(smoke_study):
    from reasoning_infused.experiment.artifacts import classifier_artifact
    from reasoning_infused.experiment.config import load_profile
    from reasoning_infused.pipeline.classifiers import train_classifier

    base = smoke_study["profile"]
    weighted = load_profile("smoke", ["classifier.train.label_loss_share=0.25"])
    for variant in ("qa", "qra"):
        assert classifier_artifact(weighted, variant).key != classifier_artifact(base, variant).key
        meta = train_classifier(weighted, variant)
        assert meta["settings"]["train"]["label_loss_share"] == 0.25
        # the unweighted key has no label_loss_share: artifacts made before the setting existed stay valid
        assert "label_loss_share" not in classifier_artifact(base, variant).settings["train"]
    # Q->A's completion is "Answer", ":", "<label>", end-of-turn: a share of 0.25 is its unweighted loss exactly
    qa_w, qa = (
        _step_losses(classifier_artifact(weighted, "qa")),
        _step_losses(classifier_artifact(base, "qa")),
    )
    assert qa_w == pytest.approx(qa, rel=1e-5)
    # Q->RA's label is ~1 of 29 tokens: weighting it to 0.25 changes the training from the first step
    qra_w, qra = (
        _step_losses(classifier_artifact(weighted, "qra")),
        _step_losses(classifier_artifact(base, "qra")),
    )
    assert qra_w[0] != pytest.approx(qra[0], rel=1e-3)
