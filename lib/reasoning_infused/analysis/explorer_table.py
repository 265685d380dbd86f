"""The explorer's data: the table of an experiment's saved predictions (no torch, no model), its filters,
sorting, pages and HTML. The widget app is explorer.py."""

from __future__ import annotations

import base64
import html
import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from reasoning_infused.analysis.quality import grounding, quotes_cue
from reasoning_infused.base.locations import results_root
from reasoning_infused.data.emotion import EMOTION_WORDS, LABELS, emotions_named
from reasoning_infused.data.lexicon import is_degenerate, reasoning_support_category
from reasoning_infused.data.task import Task, TaskError, load_task

UNPARSED = "<unparsed>"


ANY = "(any)"


# Label columns, in display order: each is one way of reading a classifier's prediction.
VIEWS = {
    "qa": "Q→A",
    "qra_scored": "Q→RA, labels scored after the reasoning",
    "qra": "Q→RA, free generation",
    "qar": "Q→AR",
    "zero_shot": "zero-shot base model",
}


SHORT = {
    "qa": "Q→A",
    "qra_scored": "Q→RA scored",
    "qra": "Q→RA free",
    "qar": "Q→AR",
    "zero_shot": "zero-shot",
}


FLAGS = {
    "leaks": "reasoning names the gold emotion",
    "names_other": "reasoning names another emotion",
    "repetitive": "reasoning repeats itself",
    "cut": "reasoning cut at the token limit",
    "quotes_cue": "reasoning quotes the text's emotional cue (words after 'feel')",
}


SORTS = {
    "row": "row id",
    "confident_wrong": "most confident first (pick 'wrong' for most confident wrong)",
    "least_confident": "least confident first",
    "longest_reasoning": "longest reasoning first",
}


PAGE_SIZE = 20


def experiments_with_predictions(root: Path | None = None) -> list[str]:
    """Experiment folders under results/ that hold predictions (default first)."""
    root = Path(root or results_root())
    names = sorted(p.parent.name for p in root.glob("*/predictions") if any(p.glob("*__*.jsonl")))
    return sorted(names, key=lambda n: (n != "default", n))


def splits_in(results_dir: Path) -> list[str]:
    """The evaluation sets with saved predictions: test first, then validation, then the out-of-domain sets."""
    names = {p.stem.split("__", 1)[1] for p in (Path(results_dir) / "predictions").glob("*__*.jsonl")}
    order = {"test": 0, "validation": 1}
    return sorted(names, key=lambda s: (order.get(s, 2), s))


def probabilities(scores: dict[str, float] | None) -> dict[str, float]:
    """Label log-scores -> probabilities over the scored labels (softmax)."""
    if not scores:
        return {}
    top = max(scores.values())
    exp = {k: math.exp(v - top) for k, v in scores.items()}
    total = sum(exp.values())
    return {k: v / total for k, v in exp.items()}


def _read_rows(path: Path) -> list[dict[str, Any]]:
    rows = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}, line {i}: not valid JSON ({e.msg})") from None
    return rows


def _label(x: str | None) -> str:
    return x if x else UNPARSED


def task_of_results(results_dir: Path) -> Task | None:
    """The task an experiment's results were computed on (its profile.yaml's data.task); None for the default
    emotion task, or when the task file is no longer there (then the labels come from the predictions)."""
    import yaml

    saved = Path(results_dir) / "profile.yaml"
    try:
        name = (yaml.safe_load(saved.read_text()) or {}).get("data", {}).get("task", "emotion")
        task = load_task(name)
    except (OSError, TaskError, yaml.YAMLError, AttributeError):
        return None
    return None if task.is_emotion_default else task


def experiment_task(results_dir: Path) -> str:
    """The task an experiment's results are on, by name (metrics.json records it; results written before tasks
    existed are emotion's); "task unknown" when metrics.json is missing or unreadable, never a guess."""
    path = Path(results_dir) / "metrics.json"
    try:
        return json.loads(path.read_text()).get("task", "emotion")
    except (OSError, json.JSONDecodeError):
        return "task unknown"


def explorer_table(results_dir: Path, split: str = "test") -> pd.DataFrame:
    """One row per example of `split`: `row` (its position in the evaluation sample, the id notebook 05 uses),
    text, gold, and for every view (qa, qra_scored, qra, qar, zero_shot) the label, its probability and the
    output; for Q->RA the reasoning, its length, quality flags and support group."""
    results_dir = Path(results_dir)
    files = {p.stem.split("__", 1)[0]: p for p in (results_dir / "predictions").glob(f"*__{split}.jsonl")}
    if not files:
        raise FileNotFoundError(f"{results_dir / 'predictions'}: no predictions for split {split!r}")
    df: pd.DataFrame | None = None
    task = task_of_results(results_dir)
    named = task.labels_named if task is not None else emotions_named
    task_labels: list[str] = list(task.labels) if task is not None else []
    for clf in [c for c in ("qa", "qra", "qar", "zero_shot") if c in files]:
        rows = _read_rows(files[clf])
        if not task_labels:  # the order of the scores: the task's labels
            task_labels = list(rows[0].get("scores") or LABELS) if rows else LABELS
        cols: dict[str, list[Any]] = {
            "row": list(range(len(rows))),
            "text": [r["text"] for r in rows],
            "gold": [r["gold"] for r in rows],
        }
        probs = [probabilities(r.get("scores")) for r in rows]
        if clf == "qra":
            free = [_label(r.get("predicted")) for r in rows]
            scored = [_label(r.get("predicted_constrained")) for r in rows]
            reasoning = [r.get("reasoning", "") for r in rows]
            cols |= {
                "qra_scored": scored,
                "qra_scored_conf": [p.get(lab, float("nan")) for p, lab in zip(probs, scored, strict=True)],
                "qra_scored_probs": probs,
                "qra": free,
                "qra_conf": [float("nan")] * len(rows),  # free generation has no label probabilities
                "qra_output": [r.get("generated", "") for r in rows],
                "reasoning": reasoning,
                "reasoning_tokens": [r.get("n_tokens", 0) for r in rows],
                "leaks": [r["gold"] in named(t) for r, t in zip(rows, reasoning, strict=True)],
                "names_other": [
                    any(e != r["gold"] for e in named(t)) for r, t in zip(rows, reasoning, strict=True)
                ],
                "repetitive": [is_degenerate(t) for t in reasoning],
                "cut": [r.get("finish_reason") == "length" for r in rows],
                "quotes_cue": [bool(quotes_cue(r["text"], t)) for r, t in zip(rows, reasoning, strict=True)],
                "grounding": [grounding(r["text"], t) for r, t in zip(rows, reasoning, strict=True)],
                "support": [
                    reasoning_support_category(t, r.get("predicted"), task)
                    for r, t in zip(rows, reasoning, strict=True)
                ],
            }
        else:
            labels = [_label(r.get("predicted")) for r in rows]
            cols |= {
                clf: labels,
                f"{clf}_conf": [p.get(lab, float("nan")) for p, lab in zip(probs, labels, strict=True)],
                f"{clf}_probs": probs,
                f"{clf}_output": [r.get("generated", "") for r in rows],
            }
        part = pd.DataFrame(cols)
        if df is None:
            df = part
        else:
            if len(part) != len(df) or (part.text.values != df.text.values).any():
                raise ValueError(
                    f"{files[clf]}: its rows are not the same examples as the other classifiers'"
                )
            df = pd.concat([df, part.drop(columns=["row", "text", "gold"])], axis=1)
    assert df is not None
    df.attrs["labels"] = task_labels  # the task's labels, for the filters
    return df


def training_table(profile) -> pd.DataFrame:
    """The augmented training rows of an experiment (text, gold, generator reasoning, quality flags)."""
    from reasoning_infused.experiment.artifacts import read_reasonings

    return pd.DataFrame(
        [
            {
                "text": r["text"],
                "gold": r["label"],
                "train_reasoning": r["reasoning"],
                "n_tokens": r["n_tokens"],
                "flagged": r["flagged"],
            }
            for r in read_reasonings(profile)
        ]
    )


def views_in(df: pd.DataFrame) -> list[str]:
    return [v for v in VIEWS if v in df.columns]


def mcnemar_cells(df: pd.DataFrame, first: str, second: str) -> dict[str, int]:
    """Counts of the four cells of the paired table of two views (as in notebook 05's McNemar tests)."""
    a, b = df[first] == df.gold, df[second] == df.gold
    return {
        f"only {SHORT[first]} right": int((a & ~b).sum()),
        f"only {SHORT[second]} right": int((~a & b).sum()),
        "both right": int((a & b).sum()),
        "both wrong": int((~a & ~b).sum()),
    }


def mcnemar_presets(df: pd.DataFrame) -> dict[str, tuple[str, str, str]]:
    """Dropdown labels ("only Q→A right vs Q→RA scored: 473") -> (first, second, which)."""
    views = [v for v in ("qa", "qra_scored", "qra", "qar") if v in df.columns]
    out: dict[str, tuple[str, str, str]] = {}
    for i, first in enumerate(views):
        for second in views[i + 1 :]:
            cells = mcnemar_cells(df, first, second)
            for which, key in (
                ("first", f"only {SHORT[first]} right"),
                ("second", f"only {SHORT[second]} right"),
            ):
                out[f"{key} (vs {SHORT[second if which == 'first' else first]}): {cells[key]}"] = (
                    first,
                    second,
                    which,
                )
    return out


def filter_rows(
    df: pd.DataFrame,
    *,
    view: str = "qra_scored",
    gold: str = ANY,
    predicted: str = ANY,
    correct: str = ANY,
    agreement: str = ANY,
    search: str = "",
    flag: str = ANY,
    support: str = ANY,
    preset: tuple[str, str, str] | None = None,
) -> pd.DataFrame:
    """Rows matching every filter. `predicted` and `correct` refer to `view`; `agreement` compares the fine-tuned
    views (all agree / disagree); `search` looks in the text and the reasonings (case-insensitive); `flag` is a
    reasoning-quality flag or 'no <flag>'; `preset` = (first, second, 'first'|'second'): only that one right."""
    m = pd.Series(True, index=df.index)
    if gold != ANY:
        m &= df.gold == gold
    if view in df.columns:
        if predicted != ANY:
            m &= df[view] == predicted
        if correct == "correct":
            m &= df[view] == df.gold
        elif correct == "wrong":
            m &= df[view] != df.gold
    if agreement != ANY:
        cols = [v for v in ("qa", "qra_scored", "qar") if v in df.columns]
        same = df[cols].nunique(axis=1) == 1
        m &= same if agreement == "all agree" else ~same
    if search.strip():
        needle = search.strip()
        hit = df.text.str.contains(needle, case=False, regex=False)
        if "reasoning" in df.columns:
            hit |= df.reasoning.str.contains(needle, case=False, regex=False)
        m &= hit
    if flag != ANY and "reasoning" in df.columns:
        name = flag.removeprefix("no ")
        m &= ~df[name] if flag.startswith("no ") else df[name]
    if support != ANY and "support" in df.columns:
        m &= df.support == support
    if preset is not None:
        first, second, which = preset
        a, b = df[first] == df.gold, df[second] == df.gold
        m &= (a & ~b) if which == "first" else (~a & b)
    return df[m]


def sort_rows(df: pd.DataFrame, how: str, view: str) -> pd.DataFrame:
    """Order rows: by id, by the confidence of `view` (either way), or by reasoning length."""
    conf = f"{view}_conf"
    if how == "confident_wrong" and conf in df.columns:
        return df.sort_values([conf, "row"], ascending=[False, True], na_position="last")
    if how == "least_confident" and conf in df.columns:
        return df.sort_values([conf, "row"], ascending=[True, True], na_position="last")
    if how == "longest_reasoning" and "reasoning_tokens" in df.columns:
        return df.sort_values(["reasoning_tokens", "row"], ascending=[False, True])
    return df.sort_values("row")


def page_of(df: pd.DataFrame, page: int, size: int = PAGE_SIZE) -> tuple[pd.DataFrame, int, int]:
    """(rows of `page`, the page actually shown, number of pages); out-of-range pages are clamped."""
    pages = max(1, math.ceil(len(df) / size))
    page = min(max(0, page), pages - 1)
    return df.iloc[page * size : (page + 1) * size], page, pages


_EMOTION_WORD = {w: lab for lab, words in EMOTION_WORDS.items() for w in words}


_WORD = re.compile(r"[A-Za-z]+")


def highlight(text: str) -> str:
    """HTML-escaped text with every emotion word (the lexicon of data.EMOTION_WORDS) marked with its emotion."""
    out, last = [], 0
    for m in _WORD.finditer(text):
        lab = _EMOTION_WORD.get(m.group().lower())
        if lab:
            out.append(html.escape(text[last : m.start()]))
            out.append(f"<mark class='ri-emo' title='{lab}'>{html.escape(m.group())}</mark>")
            last = m.end()
    out.append(html.escape(text[last:]))
    return "".join(out)


def _verdict(label: str, gold: str) -> str:
    color = "#2e7d32" if label == gold else "#c62828"
    return f"<span style='color:{color}'>{html.escape(label)}</span>"


def _probs_html(probs: dict[str, float]) -> str:
    if not probs:
        return ""
    return " ".join(f"{html.escape(k)} {v:.2f}" for k, v in sorted(probs.items(), key=lambda kv: -kv[1]))


def row_html(row: pd.Series | dict[str, Any], views: list[str]) -> str:
    """One example in full: text and reasonings with emotion words marked, each view's label (green right, red
    wrong), its probability and the label probabilities, the raw output, the reasoning's flags."""
    get = row.get
    parts = [
        f"<div class='ri-example'><p><b>Row {int(get('row'))}</b> · gold <b>{html.escape(str(get('gold')))}</b></p>",
        f"<p><b>Text:</b> <span class='ri-text'>{highlight(str(get('text')))}</span></p><table class='ri-preds'>",
        "<tr><th>classifier</th><th>label</th><th>p</th><th>label probabilities</th><th>output</th></tr>",
    ]
    for v in views:
        label = str(get(v))
        conf = get(f"{v}_conf")
        probs = get(f"{v}_probs") or {}
        output = get(f"{v}_output") or ""
        parts.append(
            f"<tr class='ri-pred-{v}'><td>{SHORT[v]}</td><td>{_verdict(label, str(get('gold')))}</td>"
            f"<td>{'' if conf is None or pd.isna(conf) else f'{conf:.2f}'}</td><td>{_probs_html(probs)}</td>"
            f"<td>{highlight(str(output)).replace(chr(10), '<br>')}</td></tr>"
        )
    parts.append("</table>")
    if get("reasoning") is not None and not (isinstance(get("reasoning"), float)):
        flags = [FLAGS[f] for f in FLAGS if bool(get(f))]
        share = get("grounding")
        if share is not None and not pd.isna(share):
            flags.append(f"{share:.0%} of its content words are in the text")
        parts.append(
            f"<p><b>Q→RA reasoning</b> ({int(get('reasoning_tokens') or 0)} tokens; {html.escape(str(get('support')))}"
            f"{'; ' + '; '.join(flags) if flags else ''}):<br><span class='ri-reasoning'>"
            f"{highlight(str(get('reasoning')))}</span></p>"
        )
    parts.append("</div>")
    return "".join(parts)


def list_html(rows: pd.DataFrame, views: list[str]) -> str:
    """The rows of a page as a compact table: id, gold, each view's label, the start of the text."""
    head = "".join(f"<th>{SHORT[v]}</th>" for v in views)
    body = []
    for _, r in rows.iterrows():
        cells = "".join(f"<td>{_verdict(str(r[v]), r.gold)}</td>" for v in views)
        text = r.text if len(r.text) <= 90 else r.text[:87] + "..."
        body.append(
            f"<tr><td>{int(r.row)}</td><td>{html.escape(r.gold)}</td>{cells}<td>{highlight(text)}</td></tr>"
        )
    return (
        f"<table class='ri-list'><tr><th>row</th><th>gold</th>{head}<th>text</th></tr>{''.join(body)}</table>"
        if body
        else "<p><i>No example matches these filters.</i></p>"
    )


def selection_csv(df: pd.DataFrame) -> str:
    """The selected rows as CSV (label probabilities as JSON objects)."""
    out = df.copy()
    for c in [c for c in out.columns if c.endswith("_probs")]:
        out[c] = out[c].map(lambda d: json.dumps({k: round(v, 4) for k, v in d.items()}))
    return out.to_csv(index=False)


def download_link(df: pd.DataFrame, filename: str) -> str:
    """An HTML link that downloads the selection as CSV from the page itself (works in Voilà and exports)."""
    data = base64.b64encode(selection_csv(df).encode("utf-8")).decode("ascii")
    return (
        f"<a download='{html.escape(filename)}' href='data:text/csv;base64,{data}'>download {len(df)} rows as "
        f"CSV ({html.escape(filename)})</a>"
    )


def static_examples_html(df: pd.DataFrame, n: int = 20, first: str = "qa", second: str = "qra_scored") -> str:
    """A static table of informative examples (half where only `first` is right, half where only `second` is),
    for exports and repository web views that cannot run the widgets."""
    if first not in df.columns or second not in df.columns:
        return ""
    a = filter_rows(df, preset=(first, second, "first")).head(n // 2)
    b = filter_rows(df, preset=(first, second, "second")).head(n - len(a))
    views = views_in(df)
    parts = [
        f"<p><b>Only {SHORT[first]} right</b> (first {len(a)} by row id)</p>",
        list_html(a, views),
        f"<p><b>Only {SHORT[second]} right</b> (first {len(b)} by row id)</p>",
        list_html(b, views),
    ]
    return "".join(parts)
