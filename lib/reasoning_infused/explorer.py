"""Reasoning explorer: the saved predictions of an experiment as a researcher's tool (ipywidgets; the Voilà app is
`notebooks/apps/reasoning_explorer.ipynb`).

It reads `results/<experiment>/predictions/<classifier>__<split>.jsonl` only: no torch and no model (the live
Q->RA box loads one on first use). Every prediction is shown as it is scored: Q->RA both as generated (free) and
with the labels scored after its reasoning, each with its label probabilities. The logic is plain functions,
tested without a browser; `ReasoningExplorer` only wires them to widgets.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from pathlib import Path
from typing import Any

import pandas as pd

from .data import EMOTION_WORDS, LABELS, emotions_named, is_degenerate, reasoning_support_category
from .locations import results_root
from .quality import grounding, quotes_cue
from .task import Task, TaskError, load_task

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


# --- reading saved predictions ------------------------------------------------------------------------------------


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
    from .artifacts import read_reasonings

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


# --- selecting, sorting, paging -----------------------------------------------------------------------------------


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


# --- HTML ----------------------------------------------------------------------------------------------------------

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


# --- the widget ----------------------------------------------------------------------------------------------------


class LiveQRA:
    """Runs the trained Q->RA model on free text (torch and the model are loaded on first use)."""

    def __init__(self, profile):
        self.profile = profile
        self._model = None

    def __call__(self, text: str) -> dict[str, Any]:
        from .artifacts import load_classifier
        from .classifiers import predict

        if not text.strip():
            raise ValueError("type a text first")
        if self._model is None:
            self._model = load_classifier(self.profile, "qra")
        model, tok = self._model
        return predict(model, tok, "qra", [text], [0], self.profile, desc="live")[0]


class ReasoningExplorer:
    """Pick an experiment and a split; filter (gold, a view's label, right/wrong, agreement, reasoning flags and
    support, a McNemar cell), search text and reasonings, sort, page through a list with row ids, open one
    example, go to a row id, export the selection; run the Q->RA model live on typed text."""

    def __init__(
        self,
        results_dir: Path | None = None,
        live: LiveQRA | None = None,
        *,
        experiments_root: Path | None = None,
        df: pd.DataFrame | None = None,
    ):
        import ipywidgets as w

        self.live = live
        self.root = Path(experiments_root or results_root())
        experiments = experiments_with_predictions(self.root)
        start = Path(results_dir) if results_dir else (self.root / experiments[0] if experiments else None)
        self.experiment = w.Dropdown(
            options=experiments or ([start.name] if start else ["(table)"]),
            value=start.name if start else "(table)",
            description="experiment",
        )
        self.split = w.Dropdown(options=splits_in(start) if start else ["(table)"], description="split")
        self.view = w.Dropdown(description="classifier")
        self.gold = w.Dropdown(options=[ANY, *LABELS], description="gold")
        self.predicted = w.Dropdown(options=[ANY, *LABELS, UNPARSED], description="its label")
        self.correct = w.Dropdown(options=[ANY, "correct", "wrong"], description="right?")
        self.agreement = w.Dropdown(options=[ANY, "all agree", "disagree"], description="agreement")
        self.flag = w.Dropdown(
            options=[
                ANY,
                *[(d, f) for f, d in FLAGS.items()],
                *[(f"not: {d}", f"no {f}") for f, d in FLAGS.items()],
            ],
            description="reasoning",
        )
        self.support = w.Dropdown(description="support")
        self.preset = w.Dropdown(description="McNemar cell", layout=w.Layout(width="460px"))
        self.search = w.Text(description="search", placeholder="words in the text or the reasonings")
        self.sort = w.Dropdown(options=[(d, k) for k, d in SORTS.items()], description="sort")
        self.prev = w.Button(description="◀ page", layout=w.Layout(width="80px"))
        self.next = w.Button(description="page ▶", layout=w.Layout(width="80px"))
        self.goto = w.Text(
            description="go to row",
            placeholder="row id, Enter",
            continuous_update=False,  # acts on Enter (or leaving the box)
            layout=w.Layout(width="220px"),
        )
        self.status = w.HTML()
        self.status.add_class("ri-status")
        self.listing = w.Select(
            rows=12, layout=w.Layout(width="100%")
        )  # click or arrow keys: opens an example
        self.listing.add_class("ri-listing")
        self.view_html = w.HTML()
        self.view_html.add_class("ri-view")
        self.export_button = w.Button(description="CSV of the selection", layout=w.Layout(width="180px"))
        self.export_button.on_click(lambda _: self._export())
        self.export = (
            w.HTML()
        )  # the download link, made on request (a saved notebook does not carry the data)
        self.export.add_class("ri-export")
        self.page = 0
        for ctl in (
            self.view,
            self.gold,
            self.predicted,
            self.correct,
            self.agreement,
            self.flag,
            self.support,
        ):
            ctl.observe(self._refilter, names="value")
        for ctl in (self.preset, self.search, self.sort):
            ctl.observe(self._refilter, names="value")
        self.experiment.observe(self._load_experiment, names="value")
        self.split.observe(self._load_split, names="value")
        self.listing.observe(lambda ch: self._open(ch["new"]), names="value")
        self.prev.on_click(lambda _: self._turn(-1))
        self.next.on_click(lambda _: self._turn(1))
        self.goto.observe(lambda _: self._goto(), names="value")
        self.live_text = w.Textarea(
            placeholder="Type a sentence and run the trained Q→RA model on it", layout=w.Layout(width="80%")
        )
        self.live_button = w.Button(description="Run Q→RA", button_style="primary")
        self.live_out = w.HTML()
        self.live_button.on_click(self._run_live)
        self.widget = w.VBox(
            [
                w.HBox([self.experiment, self.split, self.view]),
                w.HBox([self.gold, self.predicted, self.correct]),
                w.HBox([self.agreement, self.flag, self.support]),
                w.HBox([self.preset, self.search]),
                w.HBox([self.sort, self.prev, self.next, self.goto, self.status]),
                self.listing,
                self.view_html,
                w.HBox([self.export_button, self.export]),
                w.HTML("<hr><b>Try it</b>"),
                self.live_text,
                self.live_button,
                self.live_out,
            ]
        )
        self._quiet = False
        if df is not None:  # a ready table (tests, notebooks)
            self._set_table(df)
        elif start is not None:
            self._load_split()

    # --- loading
    def _load_experiment(self, *_):
        self._quiet = True
        self.split.options = splits_in(self.root / self.experiment.value)
        self._quiet = False
        self._load_split()

    def _load_split(self, *_):
        if self._quiet or self.experiment.value == "(table)":
            return
        self._set_table(explorer_table(self.root / self.experiment.value, self.split.value))

    def _set_table(self, df: pd.DataFrame):
        self.df = df
        self._quiet = True
        labels = df.attrs.get("labels") or LABELS
        self.gold.options = [ANY, *labels]
        self.predicted.options = [ANY, *labels, UNPARSED]
        views = views_in(df)
        self.view.options = [(VIEWS[v], v) for v in views]
        self.view.value = "qra_scored" if "qra_scored" in views else views[0]
        groups = sorted(df.support.unique()) if "support" in df.columns else []
        keep = self.support.value if self.support.value in groups else ANY
        self.support.options = [ANY, *groups]
        self.support.value = keep
        self.preset.options = [(ANY, None), *mcnemar_presets(df).items()]
        self.preset.value = None
        self._quiet = False
        self._refilter()

    # --- selection
    def current(self) -> pd.DataFrame:
        rows = filter_rows(
            self.df,
            view=self.view.value,
            gold=self.gold.value,
            predicted=self.predicted.value,
            correct=self.correct.value,
            agreement=self.agreement.value,
            search=self.search.value,
            flag=self.flag.value,
            support=self.support.value,
            preset=self.preset.value,
        )
        return sort_rows(rows, self.sort.value, self.view.value)

    def _refilter(self, *_):
        if self._quiet:
            return
        self.rows = self.current()
        self.page = 0
        self._show_page()
        self.export.value = ""  # a link for the previous selection would be stale

    def _export(self):
        name = f"{self.experiment.value}_{self.split.value}_selection.csv"
        self.export.value = download_link(self.rows, name) if len(self.rows) else "<i>nothing selected</i>"

    def _turn(self, d: int):
        self.page += d
        self._show_page()

    def _show_page(self):
        shown, self.page, pages = page_of(self.rows, self.page)
        n = len(self.rows)
        first = self.page * PAGE_SIZE + 1 if n else 0
        self.status.value = (
            f"{first}–{first + len(shown) - 1 if n else 0} of {n} matching example{'s' if n != 1 else ''} "
            f"(page {self.page + 1} of {pages})"
        )
        views = views_in(self.df)
        self.listing.options = [
            (
                f"row {int(r.row):>5} · gold {r.gold:<8} · "
                + " · ".join(f"{SHORT[v]} {r[v]}{'' if r[v] == r.gold else ' ✗'}" for v in views)
                + f" · {r.text[:60]}",
                int(r.row),
            )
            for _, r in shown.iterrows()
        ]
        if n == 0:
            self.view_html.value = "<p><i>No example matches these filters.</i></p>"
        else:
            self.listing.value = int(shown.iloc[0].row)
            self._open(self.listing.value)

    def _open(self, row_id: int | None, note: str = ""):
        if row_id is None:
            return
        row = self.df[self.df.row == row_id].iloc[0]
        self.view_html.value = note + row_html(row, views_in(self.df))

    def _goto(self):
        text = self.goto.value.strip()
        n = len(self.df)
        if not text.isdigit() or int(text) >= n:
            self.view_html.value = (
                f"<p style='color:#c62828'>No row {html.escape(text)} in {html.escape(str(self.split.value))}: "
                f"row ids are 0–{n - 1}.</p>"
            )
            return
        row_id = int(text)
        note = (
            ""
            if (self.rows.row == row_id).any()
            else f"<p><i>Row {row_id} is not among the {len(self.rows)} matching the filters.</i></p>"
        )
        self._open(row_id, note)

    def _run_live(self, *_):
        if self.live is None:
            self.live_out.value = "<i>No trained Q→RA model attached.</i>"
            return
        try:
            r = self.live(self.live_text.value)
        except (ValueError, FileNotFoundError) as e:
            self.live_out.value = f"<span style='color:#c62828'>{html.escape(str(e))}</span>"
            return
        free = r["predicted"] or UNPARSED
        self.live_out.value = (
            f"<p><b>Q→RA free:</b> {html.escape(free)} · <b>scored after the reasoning:</b> "
            f"{html.escape(str(r.get('predicted_constrained')))}</p><pre>{highlight(r['generated'])}</pre>"
        )
