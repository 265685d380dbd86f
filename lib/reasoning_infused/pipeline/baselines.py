"""Baselines: majority class and TF-IDF + logistic regression (scikit-learn). Zero-shot lives in classifiers."""

from __future__ import annotations

from collections import Counter

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from reasoning_infused.data.emotion import LABELS

# Published test accuracy of fine-tuned encoders on dair-ai/emotion (model cards of DistilBERT/BERT/RoBERTa
# fine-tunes, ~0.93). A reference line only: not measured here.
ENCODER_REFERENCE_ACCURACY = 0.93


def majority_baseline(train_labels: list[int], n: int, labels: list[str] | None = None) -> list[str]:
    top = Counter(train_labels).most_common(1)[0][0]
    return [(labels or LABELS)[top]] * n


TFIDF_C_GRID = (0.1, 1.0, 10.0, 100.0)


def tfidf_logreg(
    train_texts: list[str],
    train_labels: list[int],
    seed: int = 0,
    val_texts: list[str] | None = None,
    val_labels: list[int] | None = None,
):
    """Word 1-2-gram TF-IDF + logistic regression. The inverse regularisation C is chosen on the validation set
    (accuracy, ties to the smaller C) when one is given, else 10; never on test. Returns (model, chosen C)."""
    import numpy as np

    def fit(c: float):
        m = make_pipeline(
            TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True),
            LogisticRegression(max_iter=2000, C=c, random_state=seed),
        )
        return m.fit(train_texts, train_labels)

    if val_texts is None:
        return fit(10.0), 10.0
    scored = [(float(np.mean(fit(c).predict(val_texts) == np.asarray(val_labels))), -c) for c in TFIDF_C_GRID]
    best_c = -max(scored)[1]
    return fit(best_c), best_c


def predict_labels(model, texts: list[str], labels: list[str] | None = None) -> list[str]:
    return [(labels or LABELS)[i] for i in model.predict(texts)]
