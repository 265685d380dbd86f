"""Metrics: accuracy, macro-F1, per-class scores, confusion, bootstrap intervals, exact McNemar test."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import binomtest
from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

from reasoning_infused.data.emotion import LABELS

NONE_LABEL = "<unparsed>"


def _encode(labels: list[str | None], names: list[str] | None = None) -> np.ndarray:
    """Label names to ids in `names` (the task's labels; emotion's by default); None (a parse failure) becomes
    -1, which never equals a gold id. A gold label outside `names` is a ValueError, never a silent -1."""
    names = names or LABELS
    index = {x: i for i, x in enumerate(names)}
    return np.array([index.get(x, -1) if x is not None else -1 for x in labels])


def _label_ids(
    labels: list[str] | None, label_space: list[str] | None
) -> tuple[list[str], list[str], list[int]]:
    """(the task's labels, the set's label space (default: all of them), the space's ids among the labels)."""
    names = list(labels or LABELS)
    space = list(label_space or names)
    return names, space, [names.index(x) for x in space]


def _encode_gold(gold: list[str], names: list[str] | None) -> np.ndarray:
    g = _encode(gold, names)
    if (g == -1).any():
        bad = sorted({x for x, i in zip(gold, g, strict=True) if i == -1})
        raise ValueError(f"gold label(s) {bad} are not among the labels {names or LABELS}")
    return g


def bootstrap_ci(
    correct: np.ndarray, n_samples: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of a 0/1 vector."""
    rng = np.random.default_rng(seed)
    n = len(correct)
    means = correct[rng.integers(0, n, size=(n_samples, n))].mean(axis=1)
    lo, hi = np.percentile(means, [(1 - level) / 2 * 100, (1 + level) / 2 * 100])
    return float(lo), float(hi)


def macro_f1_rows(gold: np.ndarray, pred: np.ndarray, labels: list[int]) -> np.ndarray:
    """Macro-F1 of each row of [k, n] gold/prediction arrays (sklearn's definition with zero_division=0)."""
    return f1_rows(gold, pred, labels).mean(axis=0)


def f1_rows(gold: np.ndarray, pred: np.ndarray, labels: list[int]) -> np.ndarray:
    """[len(labels), k] F1 of each label for each row of [k, n] gold/prediction arrays (zero_division=0)."""
    f1s = []
    for lab in labels:
        g, p = gold == lab, pred == lab
        tp = (g & p).sum(axis=1)
        denom = 2 * tp + (~g & p).sum(axis=1) + (g & ~p).sum(axis=1)
        f1s.append(np.divide(2 * tp, denom, out=np.zeros(len(tp)), where=denom > 0))
    return np.array(f1s)


def _bootstrap_indices(n: int, n_samples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed + 1)
    return np.stack(
        [rng.integers(0, n, size=n) for _ in range(n_samples)]
    )  # same draws as one call per sample


def bootstrap_f1_intervals(
    gold: np.ndarray,
    pred: np.ndarray,
    labels: list[int],
    n_samples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[tuple[float, float], np.ndarray]:
    """Percentile bootstrap intervals of macro-F1 and of each class's F1 ([len(labels), 2]), from one set of
    resampled rows (vectorised: 1,000 sklearn calls took ~3 s per classifier)."""
    idx = _bootstrap_indices(len(gold), n_samples, seed)
    per_class = f1_rows(gold[idx], pred[idx], labels)
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    lo, hi = np.percentile(per_class.mean(axis=0), q)
    return (float(lo), float(hi)), np.percentile(per_class, q, axis=1).T


def classification_metrics(
    gold: list[str],
    pred: list[str | None],
    n_bootstrap: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    label_space: list[str] | None = None,
    labels: list[str] | None = None,
) -> dict[str, Any]:
    """All metrics of one classifier on one set. `labels`: the task's labels (emotion's by default);
    `label_space`: the classes the set has (ISEAR: 4); a prediction outside it, or a parse failure, is an
    error."""
    names, label_space, ids = _label_ids(labels, label_space)
    g, p = _encode_gold(gold, names), _encode(pred, names)
    correct = (g == p).astype(float)
    prec, rec, f1, sup = precision_recall_fscore_support(g, p, labels=ids, zero_division=0)
    cm = confusion_matrix(g, p, labels=list(range(len(names))) + [-1])  # last column: parse failures
    macro_ci, f1_ci = bootstrap_f1_intervals(g, p, ids, n_bootstrap, level, seed)
    return {
        "n_test": int(len(g)),
        "accuracy": float(correct.mean()),
        "accuracy_ci": list(bootstrap_ci(correct, n_bootstrap, level, seed)),
        "macro_f1": float(f1_score(g, p, labels=ids, average="macro", zero_division=0)),
        "macro_f1_ci": list(macro_ci),
        "parse_failures": int((p == -1).sum()),
        "parse_failure_rate": float((p == -1).mean()),
        "per_class": {
            lab: {
                "precision": float(a),
                "recall": float(b),
                "f1": float(c),
                "f1_ci": [float(x) for x in ci],
                "support": int(d),
            }
            for lab, a, b, c, d, ci in zip(label_space, prec, rec, f1, sup, f1_ci, strict=True)
        },
        "confusion": cm[: len(names)].tolist(),
        "confusion_labels": names + [NONE_LABEL],
        "label_space": label_space,
    }


def mcnemar(gold: list[str], pred_a: list[str | None], pred_b: list[str | None]) -> dict[str, Any]:
    """Exact (binomial) McNemar test on the discordant pairs of two classifiers scored on the same examples."""
    g = np.array(gold, dtype=object)
    a = np.array([p is not None for p in pred_a]) & (np.array(pred_a, dtype=object) == g)
    b = np.array([p is not None for p in pred_b]) & (np.array(pred_b, dtype=object) == g)
    only_a = int((a & ~b).sum())
    only_b = int((~a & b).sum())
    n = only_a + only_b
    p = 1.0 if n == 0 else float(binomtest(only_a, n, 0.5).pvalue)
    return {
        "only_first_correct": only_a,
        "only_second_correct": only_b,
        "p_value": p,
        "accuracy_difference": float(a.mean() - b.mean()),
    }


def paired_bootstrap_difference(
    gold: list[str],
    pred_a: list[str | None],
    pred_b: list[str | None],
    n_samples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    label_space: list[str] | None = None,
    labels: list[str] | None = None,
) -> dict[str, Any]:
    """Difference second minus first (b - a) in accuracy and macro-F1 with a percentile interval from a *paired*
    bootstrap: both classifiers are scored on the same resampled rows, so the interval reflects the variance of
    the difference, not of each classifier alone."""
    names, label_space, ids = _label_ids(labels, label_space)
    g, a, b = _encode_gold(gold, names), _encode(pred_a, names), _encode(pred_b, names)
    n = len(g)
    rng = np.random.default_rng(seed + 2)
    idx = rng.integers(0, n, size=(n_samples, n))
    acc_a, acc_b = (a == g).astype(float), (b == g).astype(float)
    d_acc = acc_b[idx].mean(axis=1) - acc_a[idx].mean(axis=1)
    d_f1 = macro_f1_rows(g[idx], b[idx], ids) - macro_f1_rows(g[idx], a[idx], ids)
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    f1 = lambda p: float(f1_score(g, p, labels=ids, average="macro", zero_division=0))  # noqa: E731
    return {
        "n": int(n),
        "accuracy_difference": float(acc_b.mean() - acc_a.mean()),
        "accuracy_difference_ci": [float(x) for x in np.percentile(d_acc, q)],
        "macro_f1_difference": f1(b) - f1(a),
        "macro_f1_difference_ci": [float(x) for x in np.percentile(d_f1, q)],
        "accuracy_difference_se": float(d_acc.std(ddof=1)),
        "bootstrap_samples": n_samples,
    }


def holm_adjust(pvalues: dict[str, float]) -> dict[str, float]:
    """Holm-Bonferroni adjusted p-values (step-down, monotone, capped at 1), same keys."""
    order = sorted(pvalues, key=lambda k: pvalues[k])
    m = len(order)
    out, running = {}, 0.0
    for i, k in enumerate(order):
        running = max(running, min(1.0, (m - i) * pvalues[k]))
        out[k] = running
    return {k: out[k] for k in pvalues}


def seed_summary(differences: list[float], level: float = 0.95) -> dict[str, Any]:
    """Mean, SD and a t-interval over seeds of a per-seed difference (nan interval with fewer than 2 seeds)."""
    from scipy.stats import t

    x = np.asarray(differences, dtype=float)
    k = len(x)
    mean = float(x.mean()) if k else float("nan")
    sd = float(x.std(ddof=1)) if k > 1 else float("nan")
    half = float(t.ppf((1 + level) / 2, k - 1) * sd / np.sqrt(k)) if k > 1 else float("nan")
    return {"seeds": k, "mean": mean, "sd": sd, "ci": [mean - half, mean + half]}


def welch_difference(first: list[float], second: list[float], level: float = 0.95) -> dict[str, Any]:
    """Mean of `second` minus mean of `first` (two groups of per-seed values, e.g. one arm's gaps against the
    reference arm's) with Welch's t-interval; nan interval when a group has fewer than 2 values or neither varies."""
    from scipy.stats import ttest_ind

    a, b = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    diff = float(b.mean() - a.mean()) if len(a) and len(b) else float("nan")
    if len(a) < 2 or len(b) < 2 or (a.std() == 0 and b.std() == 0):
        return {"difference": diff, "ci": [float("nan"), float("nan")]}
    ci = ttest_ind(b, a, equal_var=False).confidence_interval(level)
    return {"difference": diff, "ci": [float(ci.low), float(ci.high)]}


def seeds_items_bootstrap(
    correct_first: np.ndarray,
    correct_second: np.ndarray,
    n_samples: int = 2000,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """Accuracy difference second - first averaged over training seeds, with an interval that counts both sources
    of variation: each resample draws the seeds with replacement and the evaluation rows with replacement (the
    same rows for every seed: the evaluation set is fixed across training seeds). The nonparametric counterpart
    of a mixed model with crossed item and seed effects. Inputs: [seeds, rows] arrays of 0/1 correctness."""
    a, b = np.asarray(correct_first, dtype=float), np.asarray(correct_second, dtype=float)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"expected two [seeds, rows] arrays of the same shape, got {a.shape} and {b.shape}")
    d = b - a
    k, n = d.shape
    rng = np.random.default_rng(seed + 3)
    means = np.empty(n_samples)
    for j in range(n_samples):
        means[j] = d[np.ix_(rng.integers(0, k, k), rng.integers(0, n, n))].mean()
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    return {
        "seeds": int(k),
        "rows": int(n),
        "mean": float(d.mean()),
        "ci": [float(x) for x in np.percentile(means, q)],
        "bootstrap_samples": n_samples,
    }


def seeds_needed(sd: float, delta: float = 0.03, alpha: float = 0.05, power: float = 0.8) -> int | None:
    """The fewest seeds k with which a two-sided one-sample t-test over per-seed differences (SD `sd`) detects a
    mean difference `delta`: the smallest k >= 2 with sqrt(k) * delta / sd >= t(1-alpha/2, k-1) + t(power, k-1)."""
    from scipy.stats import t as tdist

    if not np.isfinite(sd) or sd <= 0:
        return None
    for k in range(2, 10_000):
        if np.sqrt(k) * delta / sd >= tdist.ppf(1 - alpha / 2, k - 1) + tdist.ppf(power, k - 1):
            return k
    return None


def wilson_interval(successes: int, n: int, level: float = 0.95) -> list[float]:
    """Wilson score interval of a proportion (good at small n and near 0 or 1)."""
    from scipy.stats import norm

    if n == 0:
        return [float("nan"), float("nan")]
    z = norm.ppf((1 + level) / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [float(centre - half), float(centre + half)]
