"""The e-SNLI task (issue 36): its rows, and that no e-SNLI test pair or test explanation reaches the generator's
or the classifiers' training data."""

from __future__ import annotations

import pytest
from reasoning_infused import load_profile
from reasoning_infused.data.esnli import esnli_premise_side, esnli_test_texts
from reasoning_infused.data.reasoning_triples import load_reasoning_triples
from reasoning_infused.data.rows import classifier_train_rows, evaluation_sets
from reasoning_infused.experiment.config import ProfileError


@pytest.fixture(scope="module")
def esnli():
    p = load_profile("esnli")
    return {
        "profile": p,
        "train": classifier_train_rows(p.data),
        "sets": evaluation_sets(p.data, include_ood=False),
        "test": esnli_test_texts(),
    }


def premise(text: str) -> str:
    return text.split("\n", 1)[0].removeprefix("Premise: ")


def test_rows_are_the_declared_ones(esnli):
    train, sets = esnli["train"], esnli["sets"]
    assert (len(train), len(sets["validation"]), len(sets["test"])) == (2000, 300, 2000)
    assert train.features["label"].names == ["entailment", "neutral", "contradiction"]
    assert train[0]["text"].startswith("Premise: ") and "\nHypothesis: " in train[0]["text"]
    assert all(h.strip() for h in train["human_reasoning"])
    # the dev split is partitioned by premise: no premise is both a training and a validation premise
    train_p, val_p = {premise(t) for t in train["text"]}, {premise(t) for t in sets["validation"]["text"]}
    assert not train_p & val_p
    assert {esnli_premise_side(x) for x in train_p} == {"train"}


def test_no_test_pair_or_explanation_reaches_any_training_data(esnli):
    p, test = esnli["profile"], esnli["test"]
    # the classifiers: training and validation come from the dev split; no training or validation premise is a
    # test premise (so no test pair, and no test row's explanation, is trained on)
    for name, rows in (("train", esnli["train"]), ("validation", esnli["sets"]["validation"])):
        premises = {premise(t) for t in rows["text"]}
        assert not premises & test["premises"], name
        pairs = {(premise(t), t.split("\n", 1)[1].removeprefix("Hypothesis: ")) for t in rows["text"]}
        assert not pairs & test["pairs"], name
    # the generator: its profile draws no e-SNLI triple, and no test premise or test explanation of 30+
    # characters (shorter ones are generic: "A man is a person.") occurs anywhere in its data
    sources = [s for s, n in p.generator.sources.items() if n > 0]
    assert "esnli" not in sources
    triples = load_reasoning_triples(sources)
    joined = "\n".join([*triples["question"], *triples["answer"], *triples["reasoning"]])
    texts = [t for t in test["premises"] | test["explanations"] if len(t) >= 30]
    assert len(texts) > 10000
    leaked = [t for t in texts if t in joined]
    assert not leaked, leaked[:3]


def test_the_esnli_generator_may_not_see_esnli():
    with pytest.raises(ProfileError, match="generator.sources.*never see e-SNLI"):
        load_profile("esnli", ["generator.sources={ecqa: 60, esnli: 60}"])
