"""Reasoning explorer: the saved predictions of an experiment as a researcher's tool (ipywidgets; the Voilà app is
`notebooks/apps/reasoning_explorer.ipynb`).

It reads `results/<experiment>/predictions/<classifier>__<split>.jsonl` only: no torch and no model (the live
Q->RA box loads one on first use). Every prediction is shown as it is scored: Q->RA both as generated (free) and
with the labels scored after its reasoning, each with its label probabilities. The logic is plain functions,
tested without a browser; `ReasoningExplorer` only wires them to widgets.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pandas as pd

from reasoning_infused.analysis.explorer_table import (
    ANY,
    FLAGS,
    PAGE_SIZE,
    SHORT,
    SORTS,
    UNPARSED,
    VIEWS,
    download_link,
    experiment_task,
    experiments_with_predictions,
    explorer_table,
    filter_rows,
    highlight,
    mcnemar_presets,
    page_of,
    row_html,
    sort_rows,
    splits_in,
    views_in,
)
from reasoning_infused.base.locations import results_root
from reasoning_infused.data.emotion import LABELS

# --- reading saved predictions ------------------------------------------------------------------------------------


# --- selecting, sorting, paging -----------------------------------------------------------------------------------


# --- HTML ----------------------------------------------------------------------------------------------------------


# --- the widget ----------------------------------------------------------------------------------------------------


class LiveQRA:
    """Runs the trained Q->RA model on free text (torch and the model are loaded on first use)."""

    def __init__(self, profile):
        self.profile = profile
        self._model = None

    def __call__(self, text: str) -> dict[str, Any]:
        from reasoning_infused.pipeline.classifiers import predict
        from reasoning_infused.pipeline.loading import load_classifier

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
        # the experiment menu is also the task selector: each entry names its task (emotion, esnli, a user's)
        self.experiment = w.Dropdown(
            options=[(f"{e} · {experiment_task(self.root / e)}", e) for e in experiments]
            or ([start.name] if start else ["(table)"]),
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
