"""Reasoning quality as measured quantities, computed the same way for any (text, label, reasoning) rows: the
augmentation's training reasonings, the Q->RA reasonings generated at test, an ablation arm's reasonings.

- form: length, cut at the token limit, repetition, diversity (distinct-1/2, the most frequent reasonings);
- leakage: the gold emotion (or a word of its lexicon, data.EMOTION_WORDS) is named;
- grounding: the share of the reasoning's content words that occur in the text, and whether the reasoning quotes
  the text's emotional cue (the content words right after "feel"/"feeling"/"felt");
- informativeness: leakage-adjusted simulatability (LAS; Hase et al. 2020): how much better a fixed simulator
  (TF-IDF + logistic regression) predicts the gold label from text + reasoning than from the text alone, averaged
  over the rows whose reasoning leaks the label and the rows whose reasoning does not. The simulator is trained on
  training rows only: by 5-fold cross-fitting on the rows themselves (training reasonings), or on the training
  reasonings when scoring other rows (test reasonings). Intervals: percentile bootstrap over rows.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from reasoning_infused.data.emotion import LABELS, emotions_named
from reasoning_infused.data.lexicon import is_degenerate
from reasoning_infused.data.task import Task

Namer = Callable[[str], list[str]]  # which labels a text names

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her here
    hers herself him himself his how i if im in into is it its itself just me more most my myself no nor not now of
    off on once only or other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up very was we were what
    when where which while who whom why will with would you your yours yourself yourselves feel feeling feelings
    felt feels really like get got one also dont don t s m ve ll re d""".split()
)
CUE_VERBS = ("feel", "feeling", "felt", "feels")
_WORD = re.compile(r"[a-z]+")


def content_words(text: str) -> list[str]:
    """Lower-cased words of 3+ letters that are not stopwords."""
    return [w for w in _WORD.findall(text.lower()) if len(w) > 2 and w not in STOPWORDS]


def emotional_cue(text: str, width: int = 3) -> list[str]:
    """The content words among the `width` words after each "feel"/"feeling"/"felt" in the text."""
    words = _WORD.findall(text.lower())
    cue: list[str] = []
    for i, w in enumerate(words):
        if w in CUE_VERBS:
            cue += [x for x in words[i + 1 : i + 1 + width] if len(x) > 2 and x not in STOPWORDS]
    return cue


def grounding(text: str, reasoning: str) -> float | None:
    """Share of the reasoning's content words that occur in the text (None: no content words)."""
    words = content_words(reasoning)
    if not words:
        return None
    in_text = set(_WORD.findall(text.lower()))
    return sum(w in in_text for w in words) / len(words)


def quotes_cue(text: str, reasoning: str) -> bool | None:
    """Does the reasoning contain a word of the text's emotional cue? (None: the text has no cue)."""
    cue = set(emotional_cue(text))
    if not cue:
        return None
    return bool(cue & set(_WORD.findall(reasoning.lower())))


def distinct_n(reasonings: list[str], n: int) -> float:
    """Distinct n-grams over all n-grams of all reasonings (word level)."""
    grams: Counter = Counter()
    for r in reasonings:
        toks = r.lower().split()
        grams.update(tuple(toks[i : i + n]) for i in range(len(toks) - n + 1))
    total = sum(grams.values())
    return len(grams) / total if total else 0.0


def _features(train_text, train_reason, use_reasoning: bool):
    from scipy.sparse import hstack
    from sklearn.feature_extraction.text import TfidfVectorizer

    vt = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True).fit(train_text)
    vr = (
        TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True).fit(train_reason)
        if use_reasoning
        else None
    )

    def transform(texts, reasons):
        x = vt.transform(texts)
        return hstack([x, vr.transform(reasons)]).tocsr() if vr is not None else x

    return transform


def simulator_correct(
    train: list[dict[str, Any]], rows: list[dict[str, Any]], use_reasoning: bool, c: float = 4.0
) -> np.ndarray:
    """Per row of `rows`: does a TF-IDF + logistic-regression simulator trained on `train` predict the gold label
    (from the text, plus the reasoning when `use_reasoning`)?"""
    from sklearn.linear_model import LogisticRegression

    transform = _features([r["text"] for r in train], [r["reasoning"] for r in train], use_reasoning)
    model = LogisticRegression(C=c, max_iter=2000)
    model.fit(
        transform([r["text"] for r in train], [r["reasoning"] for r in train]), [r["label"] for r in train]
    )
    pred = model.predict(transform([r["text"] for r in rows], [r["reasoning"] for r in rows]))
    return np.array([p == r["label"] for p, r in zip(pred, rows, strict=True)])


def _cross_fit(rows: list[dict[str, Any]], use_reasoning: bool, folds: int, seed: int) -> np.ndarray:
    order = np.random.default_rng(seed).permutation(len(rows))
    correct = np.zeros(len(rows), dtype=bool)
    for k in range(folds):
        held = order[k::folds]
        held_set = set(held.tolist())
        train = [rows[i] for i in range(len(rows)) if i not in held_set]
        correct[held] = simulator_correct(train, [rows[i] for i in held], use_reasoning)
    return correct


def las(with_reasoning: np.ndarray, text_only: np.ndarray, leaks: np.ndarray) -> float:
    """Leakage-adjusted simulatability: the mean of the accuracy gain from the reasoning over leaking and
    non-leaking rows (a group with no rows is left out)."""
    gains = [with_reasoning[g].mean() - text_only[g].mean() for g in (leaks, ~leaks) if g.any()]
    return float(np.mean(gains)) if gains else float("nan")


def las_components(
    rows: list[dict[str, Any]], folds: int = 5, seed: int = 0, named: Namer | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per row: the simulator right with text + reasoning, right with the text alone (both cross-fitted on the
    rows), and whether the reasoning leaks the gold label; `las` of them is the rows' LAS. `named`: which labels a
    text names (the task's label words; the emotion lexicon by default)."""
    named = named or emotions_named
    leaks = np.array([r["label"] in named(r["reasoning"]) for r in rows])
    return _cross_fit(rows, True, folds, seed), _cross_fit(rows, False, folds, seed), leaks


def paired_las_difference(
    reference: list[dict[str, Any]],
    candidate: list[dict[str, Any]],
    folds: int = 5,
    seed: int = 0,
    bootstrap_samples: int = 1000,
    level: float = 0.95,
) -> dict[str, Any]:
    """LAS of two reasoning sets for the same rows, and candidate minus reference with a paired bootstrap
    interval (both computed on the same resampled rows)."""
    a, b = las_components(reference, folds, seed), las_components(candidate, folds, seed)
    rng = np.random.default_rng(seed + 5)
    diffs = []
    for _ in range(bootstrap_samples):
        i = rng.integers(0, len(reference), len(reference))
        diffs.append(las(*(x[i] for x in b)) - las(*(x[i] for x in a)))
    diffs_arr = np.array([d for d in diffs if d == d])
    return {
        "las_reference": las(*a),
        "las_candidate": las(*b),
        "difference": las(*b) - las(*a),
        "ci": _interval(diffs_arr, level),
    }


def _interval(values: np.ndarray, level: float) -> list[float]:
    a = (1 - level) / 2
    return [float(np.quantile(values, a)), float(np.quantile(values, 1 - a))]


def informativeness(
    rows: list[dict[str, Any]],
    simulator_train: list[dict[str, Any]] | None = None,
    *,
    folds: int = 5,
    seed: int = 0,
    bootstrap_samples: int = 1000,
    level: float = 0.95,
    named: Namer | None = None,
) -> dict[str, Any]:
    """LAS of `rows` with its bootstrap interval, and the simulator accuracies per leakage group."""
    named = named or emotions_named
    leaks = np.array([r["label"] in named(r["reasoning"]) for r in rows])
    if simulator_train is None:  # the rows are training rows: cross-fit on them
        with_r, text_only = _cross_fit(rows, True, folds, seed), _cross_fit(rows, False, folds, seed)
        how = f"{folds}-fold cross-fitting on these rows"
    else:
        with_r = simulator_correct(simulator_train, rows, True)
        text_only = simulator_correct(simulator_train, rows, False)
        how = f"trained on {len(simulator_train)} training rows with their training reasonings"
    rng = np.random.default_rng(seed)
    boot = []
    for _ in range(bootstrap_samples):
        i = rng.integers(0, len(rows), len(rows))
        boot.append(las(with_r[i], text_only[i], leaks[i]))
    groups = {}
    for name, g in (("leaking", leaks), ("not_leaking", ~leaks)):
        groups[name] = {
            "n": int(g.sum()),
            "accuracy_text_and_reasoning": float(with_r[g].mean()) if g.any() else None,
            "accuracy_text_only": float(text_only[g].mean()) if g.any() else None,
        }
    return {
        "las": las(with_r, text_only, leaks),
        "las_ci": _interval(np.array([b for b in boot if b == b]), level),
        "groups": groups,
        "simulator": f"TF-IDF (text; text + reasoning) + logistic regression, {how}",
    }


def quality_report(
    rows: list[dict[str, Any]],
    simulator_train: list[dict[str, Any]] | None = None,
    *,
    max_new_tokens: int | None = None,
    top: int = 5,
    seed: int = 0,
    bootstrap_samples: int = 1000,
    task: Task | None = None,
) -> dict[str, Any]:
    """Every quality metric for rows with keys text, label, reasoning (and n_tokens, finish_reason if known).
    `task`: whose labels and label words (leakage) apply; None is the default emotion task and its lexicon."""
    if not rows:
        raise ValueError("no rows to assess")
    labels = list(task.labels) if task is not None else LABELS
    namer = task.labels_named if task is not None else emotions_named
    for i, r in enumerate(rows):
        missing = {"text", "label", "reasoning"} - set(r)
        if missing:
            raise ValueError(f"row {i}: missing {', '.join(sorted(missing))}")
        if r["label"] not in labels:
            raise ValueError(f"row {i}: unknown label {r['label']!r}")
    reasonings = [r["reasoning"] or "" for r in rows]
    lengths = np.array([r.get("n_tokens", len(t.split())) for r, t in zip(rows, reasonings, strict=True)])
    named = [namer(t) for t in reasonings]
    ground = [grounding(r["text"], t) for r, t in zip(rows, reasonings, strict=True)]
    # the cue is the emotion task's ("feel" and the words after it); another task's texts have none to quote
    cue = (
        [quotes_cue(r["text"], t) for r, t in zip(rows, reasonings, strict=True)]
        if task is None
        else [None] * len(rows)
    )
    ground_known = np.array([g for g in ground if g is not None])
    cue_known = np.array([c for c in cue if c is not None], dtype=bool)
    rng = np.random.default_rng(seed)

    def boot_mean(x: np.ndarray) -> list[float]:
        if not len(x):
            return [float("nan"), float("nan")]
        means = [x[rng.integers(0, len(x), len(x))].mean() for _ in range(bootstrap_samples)]
        return _interval(np.array(means), 0.95)

    freq = Counter(t.strip() for t in reasonings)
    report = {
        "rows": len(rows),
        "length_tokens": {
            "median": float(np.median(lengths)),
            "p10": float(np.quantile(lengths, 0.1)),
            "p90": float(np.quantile(lengths, 0.9)),
            "max": int(lengths.max()),
        },
        "cut_at_limit": float(np.mean([r.get("finish_reason") == "length" for r in rows]))
        if any("finish_reason" in r for r in rows)
        else None,
        "max_new_tokens": max_new_tokens,
        "repetitive": float(np.mean([is_degenerate(t) for t in reasonings])),
        "distinct_1": distinct_n(reasonings, 1),
        "distinct_2": distinct_n(reasonings, 2),
        "most_frequent": [{"reasoning": t, "count": n} for t, n in freq.most_common(top)],
        "leaks_gold": float(np.mean([r["label"] in n for r, n in zip(rows, named, strict=True)])),
        "names_other_emotion": float(
            np.mean([any(x != r["label"] for x in n) for r, n in zip(rows, named, strict=True)])
        ),
        "grounding": float(ground_known.mean()) if len(ground_known) else None,
        "grounding_ci": boot_mean(ground_known),
        "rows_with_content_words": int(len(ground_known)),
        "quotes_cue": float(cue_known.mean()) if len(cue_known) else None,
        "quotes_cue_ci": boot_mean(cue_known.astype(float)),
        "rows_with_a_cue": int(len(cue_known)),
        "informativeness": informativeness(
            rows, simulator_train, seed=seed, bootstrap_samples=bootstrap_samples, named=namer
        ),
    }
    return report


def token_f1(prediction: str, reference: str) -> float:
    """Bag-of-words F1 between two texts (lower-cased words; SQuAD-style)."""
    a, b = _WORD.findall(prediction.lower()), _WORD.findall(reference.lower())
    common = sum((Counter(a) & Counter(b)).values())
    if not a or not b or not common:
        return 0.0
    precision, recall = common / len(a), common / len(b)
    return 2 * precision * recall / (precision + recall)


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure: the longest common word subsequence against both lengths."""
    a, b = _WORD.findall(prediction.lower()), _WORD.findall(reference.lower())
    if not a or not b:
        return 0.0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    lcs = prev[-1]
    if not lcs:
        return 0.0
    precision, recall = lcs / len(a), lcs / len(b)
    return 2 * precision * recall / (precision + recall)


def heldout_generator_report(profile, bootstrap_samples: int = 1000, seed: int = 0) -> dict[str, Any]:
    """The trained generator on its held-out triples (never trained on): its reasonings against the human
    rationales (token F1, ROUGE-L, with bootstrap intervals), and their form next to the human ones."""
    from reasoning_infused.base.provenance import read_jsonl
    from reasoning_infused.data.prompts import generator_prompt
    from reasoning_infused.experiment.artifacts import generator_artifact
    from reasoning_infused.pipeline.inference import TransformersBackend, generate_all
    from reasoning_infused.pipeline.loading import load_generator

    triples = read_jsonl(generator_artifact(profile).require() / "heldout_triples.jsonl")
    model, tok = load_generator(profile)
    prompts = [generator_prompt(tok, t["question"], t["answer"]) for t in triples]
    a = profile.augment
    gens = generate_all(
        TransformersBackend(model, tok), prompts, a.max_new_tokens, a.batch_size, desc="held-out"
    )
    f1 = np.array([token_f1(g.text, t["reasoning"]) for g, t in zip(gens, triples, strict=True)])
    rl = np.array([rouge_l(g.text, t["reasoning"]) for g, t in zip(gens, triples, strict=True)])
    rng = np.random.default_rng(seed)

    def ci(x: np.ndarray) -> list[float]:
        return _interval(
            np.array([x[rng.integers(0, len(x), len(x))].mean() for _ in range(bootstrap_samples)]), 0.95
        )

    generated = [g.text for g in gens]
    human = [t["reasoning"] for t in triples]
    return {
        "rows": len(triples),
        "sources": dict(Counter(t["source"] for t in triples)),
        "token_f1": float(f1.mean()),
        "token_f1_ci": ci(f1),
        "rouge_l": float(rl.mean()),
        "rouge_l_ci": ci(rl),
        "generated": {
            "median_words": float(np.median([len(t.split()) for t in generated])),
            "cut_at_limit": float(np.mean([g.finish_reason == "length" for g in gens])),
            "repetitive": float(np.mean([is_degenerate(t) for t in generated])),
            "distinct_2": distinct_n(generated, 2),
        },
        "human": {
            "median_words": float(np.median([len(t.split()) for t in human])),
            "repetitive": float(np.mean([is_degenerate(t) for t in human])),
            "distinct_2": distinct_n(human, 2),
        },
        "examples": [
            {
                "question": t["question"][:200],
                "answer": t["answer"],
                "human": t["reasoning"],
                "generated": g.text,
            }
            for t, g in list(zip(triples, gens, strict=True))[:3]
        ],
    }


def experiment_quality(profile, bootstrap_samples: int = 1000) -> dict[str, Any]:
    """The report for an experiment's training reasonings (augmentation; and the task's human reasonings of the
    same rows when it has them) and, when saved, its Q->RA test reasonings (simulator trained on the training
    reasonings); written to results/<experiment>/reasoning_quality.json. Leakage reads the task's label words."""
    from reasoning_infused.base.provenance import code_version, read_jsonl, write_json
    from reasoning_infused.data.rows import classifier_train_rows, task_of
    from reasoning_infused.experiment.artifacts import read_reasonings

    full_task = task_of(profile.data)
    task = None if full_task.is_emotion_default else full_task
    train = [
        {k: r[k] for k in ("text", "label", "reasoning", "n_tokens", "finish_reason") if k in r}
        for r in read_reasonings(profile)
    ]
    if not train:
        raise FileNotFoundError(
            f"no augmentation for experiment {profile.experiment}: run `python -m reasoning_infused augment`"
        )
    out: dict[str, Any] = {
        "experiment": profile.experiment,
        "task": full_task.name,
        "code_version": code_version(),
        "training_reasonings": quality_report(
            train,
            max_new_tokens=profile.augment.max_new_tokens,
            bootstrap_samples=bootstrap_samples,
            task=task,
        ),
    }
    if full_task.reasoning_column:  # the human reasonings of the same training rows, measured the same way
        ds = classifier_train_rows(profile.data)
        human = [
            {"text": t, "label": full_task.labels[y], "reasoning": h}
            for t, y, h in zip(ds["text"], ds["label"], ds["human_reasoning"], strict=True)
        ]
        out["human_training_reasonings"] = quality_report(
            human, bootstrap_samples=bootstrap_samples, task=task
        )
    test_path = profile.results_dir / "predictions" / "qra__test.jsonl"
    if test_path.exists():
        test = [
            {
                "text": r["text"],
                "label": r["gold"],
                "reasoning": r.get("reasoning") or "",
                "n_tokens": r.get("n_tokens", 0),
                "finish_reason": r.get("finish_reason"),
            }
            for r in read_jsonl(test_path)
        ]
        out["qra_test_reasonings"] = quality_report(
            test,
            train,
            max_new_tokens=profile.classifier.max_new_tokens,
            bootstrap_samples=bootstrap_samples,
            task=task,
        )
    if task is None:  # the generator's held-out report is the emotion study's (its sweep's rows)
        out["generator_heldout"] = heldout_generator_report(profile, bootstrap_samples=bootstrap_samples)
    profile.results_dir.mkdir(parents=True, exist_ok=True)
    write_json(profile.results_dir / "reasoning_quality.json", out)
    return out


# --- paired comparison of two reasoning sets for the same rows (engines, generator candidates) -----------


def paired_mean_difference(
    first: np.ndarray, second: np.ndarray, n_samples: int = 1000, level: float = 0.95, seed: int = 0
) -> dict[str, Any]:
    """Mean of second - first over paired rows (NaN pairs dropped) with a percentile bootstrap interval."""
    keep = ~(np.isnan(first) | np.isnan(second))
    d = (second - first)[keep]
    if not len(d):
        return {"difference": None, "ci": [None, None], "n": 0}
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(n_samples, len(d)))].mean(axis=1)
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    return {
        "difference": float(d.mean()),
        "ci": [float(x) for x in np.percentile(means, q)],
        "n": int(len(d)),
    }


def row_measures(rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Per-row quality measures (1/0 or a share; NaN where undefined) of (text, label, reasoning) rows."""

    def share(x: float | None) -> float:
        return float("nan") if x is None else float(x)

    return {
        "leaks_gold": np.array([float(r["label"] in emotions_named(r["reasoning"])) for r in rows]),
        "grounding": np.array([share(grounding(r["text"], r["reasoning"])) for r in rows]),
        "repetitive": np.array([float(is_degenerate(r["reasoning"])) for r in rows]),
        "cut_at_limit": np.array([float(r.get("finish_reason") == "length") for r in rows]),
        "n_tokens": np.array([float(r.get("n_tokens", 0)) for r in rows]),
    }


def compare_reasonings(
    reference: list[dict[str, Any]], candidate: list[dict[str, Any]], bootstrap_samples: int = 1000
) -> dict[str, Any]:
    """Paired per-row differences (candidate - reference) of two decodings of the same rows."""
    if [r["text"] for r in reference] != [r["text"] for r in candidate]:
        raise ValueError("the two reasoning sets are not the same rows in the same order")
    ref, cand = row_measures(reference), row_measures(candidate)
    same = sum(
        a["reasoning"].strip() == b["reasoning"].strip() for a, b in zip(reference, candidate, strict=True)
    )
    return {
        "rows": len(reference),
        "identical_reasonings": same,
        **{k: paired_mean_difference(ref[k], cand[k], bootstrap_samples) for k in ref},
    }
