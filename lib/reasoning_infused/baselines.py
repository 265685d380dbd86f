"""Baselines: majority class and TF-IDF + logistic regression (scikit-learn). Zero-shot lives in classifiers."""

from __future__ import annotations

from collections import Counter

from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from .data import LABELS

# Published test accuracy of fine-tuned encoders on dair-ai/emotion (model cards of DistilBERT/BERT/RoBERTa
# fine-tunes, ~0.93). A reference line only: not measured here.
ENCODER_REFERENCE_ACCURACY = 0.93


def majority_baseline(train_labels: list[int], n: int) -> list[str]:
    top = Counter(train_labels).most_common(1)[0][0]
    return [LABELS[top]] * n


def tfidf_logreg(train_texts: list[str], train_labels: list[int], seed: int = 0):
    """Word 1-2-gram TF-IDF + logistic regression; fixed settings (nothing is tuned on test)."""
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True),
        LogisticRegression(max_iter=2000, C=10.0, random_state=seed),
    )
    model.fit(train_texts, train_labels)
    return model


def predict_labels(model, texts: list[str]) -> list[str]:
    return [LABELS[i] for i in model.predict(texts)]
