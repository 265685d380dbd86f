"""Interactive reasoning explorer (ipywidgets). The logic (tables, filters, HTML) is plain functions, tested
without a browser; `ReasoningExplorer` only wires them to widgets."""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from .config import Profile
from .data import LABELS
from .prompts import VARIANTS

CLASSIFIERS = [*VARIANTS, "zero_shot"]
ANY = "(any)"


def explorer_table(profile: Profile) -> pd.DataFrame:
    """One row per test example: text, gold, and each classifier's prediction and output; plus the generator's
    training-time reasoning when the same text is among the augmented training rows."""
    from .artifacts import load_metrics, load_predictions, read_reasonings

    metrics = load_metrics(profile)
    df = None
    for v in [c for c in CLASSIFIERS if c in metrics["classifiers"]]:
        rows = load_predictions(profile, v, "test")
        part = pd.DataFrame(
            {
                "text": [r["text"] for r in rows],
                "gold": [r["gold"] for r in rows],
                f"{v}_predicted": [r["predicted"] for r in rows],
                f"{v}_generated": [r["generated"] for r in rows],
            }
        )
        df = part if df is None else pd.concat([df, part.drop(columns=["text", "gold"])], axis=1)
    if df is None:
        raise FileNotFoundError("no predictions found: run evaluate first")
    train = {r["text"]: r["reasoning"] for r in read_reasonings(profile)}
    df["train_reasoning"] = [train.get(t, "") for t in df.text]
    return df


def training_table(profile: Profile) -> pd.DataFrame:
    """The augmented training rows (text, gold, generator reasoning, quality flags) as a table."""
    from .artifacts import read_reasonings

    rows = read_reasonings(profile)
    return pd.DataFrame(
        [
            {
                "text": r["text"],
                "gold": r["label"],
                "train_reasoning": r["reasoning"],
                "n_tokens": r["n_tokens"],
                "flagged": r["flagged"],
            }
            for r in rows
        ]
    )


def classifiers_in(df: pd.DataFrame) -> list[str]:
    return [c for c in CLASSIFIERS if f"{c}_predicted" in df.columns]


def filter_rows(
    df: pd.DataFrame,
    *,
    classifier: str = "qra",
    gold: str = ANY,
    predicted: str = ANY,
    correct: str = ANY,
    agreement: str = ANY,
    search: str = "",
) -> pd.DataFrame:
    """Rows matching every filter. `predicted` and `correct` refer to `classifier`; `agreement` compares the
    fine-tuned classifiers (qa, qra, qar): 'all agree' or 'disagree'; `search` is a case-insensitive substring."""
    m = pd.Series(True, index=df.index)
    if gold != ANY:
        m &= df.gold == gold
    col = f"{classifier}_predicted"
    if col in df.columns:
        if predicted != ANY:
            m &= df[col].fillna("<unparsed>") == predicted
        if correct == "correct":
            m &= df[col] == df.gold
        elif correct == "wrong":
            m &= df[col] != df.gold
    if agreement != ANY:
        cols = [f"{c}_predicted" for c in ("qa", "qra", "qar") if f"{c}_predicted" in df.columns]
        same = df[cols].fillna("<unparsed>").nunique(axis=1) == 1
        m &= same if agreement == "all agree" else ~same
    if search.strip():
        m &= df.text.str.contains(search.strip(), case=False, regex=False)
    return df[m]


def row_html(row: pd.Series | dict[str, Any], classifiers: list[str]) -> str:
    """An example as HTML: text, gold, each classifier's output (green right, red wrong), training reasoning."""
    esc = html.escape
    parts = [
        f"<div class='ri-example'><p><b>Text:</b> <span class='ri-text'>{esc(str(row['text']))}</span></p>",
        f"<p><b>Gold:</b> {esc(str(row['gold']))}</p><table>",
    ]
    for c in classifiers:
        pred = row.get(f"{c}_predicted")
        ok = pred == row["gold"]
        color = "#2e7d32" if ok else "#c62828"
        gen = esc(str(row.get(f"{c}_generated", ""))).replace("\n", "<br>")
        parts.append(
            f"<tr><td><b>{esc(c)}</b></td><td style='color:{color}'>{esc(str(pred))}</td><td>{gen}</td></tr>"
        )
    parts.append("</table>")
    if row.get("train_reasoning"):
        parts.append(f"<p><b>Training-time reasoning (generator):</b> {esc(str(row['train_reasoning']))}</p>")
    parts.append("</div>")
    return "".join(parts)


class LiveQRA:
    """Runs the trained Q->RA model on free text (loaded on first use)."""

    def __init__(self, profile: Profile):
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
    """Filter test examples by gold label, prediction, classifier, correctness, agreement and text; page through
    them; run the Q->RA model live on typed text."""

    def __init__(self, df: pd.DataFrame, live: LiveQRA | None = None):
        import ipywidgets as w

        self.df = df
        self.live = live
        clfs = classifiers_in(df) or ["qra"]
        self.classifier = w.Dropdown(
            options=clfs, value="qra" if "qra" in clfs else clfs[0], description="classifier"
        )
        self.gold = w.Dropdown(options=[ANY] + LABELS, description="gold")
        self.predicted = w.Dropdown(options=[ANY] + LABELS + ["<unparsed>"], description="predicted")
        self.correct = w.Dropdown(options=[ANY, "correct", "wrong"], description="correct?")
        self.agreement = w.Dropdown(options=[ANY, "all agree", "disagree"], description="agreement")
        self.search = w.Text(description="search", placeholder="words in the text")
        self.index = w.BoundedIntText(value=0, min=0, max=0, description="example")
        self.prev = w.Button(description="◀ previous")
        self.next = w.Button(description="next ▶")
        self.status = w.HTML()
        self.view = w.HTML()
        self.view.add_class("ri-view")
        for ctl in (self.classifier, self.gold, self.predicted, self.correct, self.agreement, self.search):
            ctl.observe(self._refilter, names="value")
        self.index.observe(lambda _: self._show(), names="value")
        self.prev.on_click(lambda _: self._step(-1))
        self.next.on_click(lambda _: self._step(1))
        self.live_text = w.Textarea(
            placeholder="Type a sentence and run the trained Q→RA model on it", layout=w.Layout(width="80%")
        )
        self.live_button = w.Button(description="Run Q→RA", button_style="primary")
        self.live_out = w.HTML()
        self.live_button.on_click(self._run_live)
        filters = w.VBox(
            [
                w.HBox([self.classifier, self.gold, self.predicted]),
                w.HBox([self.correct, self.agreement, self.search]),
            ]
        )
        self.widget = w.VBox(
            [
                filters,
                w.HBox([self.prev, self.index, self.next, self.status]),
                self.view,
                w.HTML("<hr><b>Try it</b>"),
                self.live_text,
                self.live_button,
                self.live_out,
            ]
        )
        self._refilter()

    def current(self) -> pd.DataFrame:
        return filter_rows(
            self.df,
            classifier=self.classifier.value,
            gold=self.gold.value,
            predicted=self.predicted.value,
            correct=self.correct.value,
            agreement=self.agreement.value,
            search=self.search.value,
        )

    def _refilter(self, *_):
        self.rows = self.current()
        self.index.max = max(0, len(self.rows) - 1)
        self.index.value = 0
        self._show()

    def _step(self, d: int):
        self.index.value = min(max(0, self.index.value + d), self.index.max)

    def _show(self):
        n = len(self.rows)
        self.status.value = f"{n} matching example{'s' if n != 1 else ''}"
        if n == 0:
            self.view.value = "<p><i>No example matches these filters.</i></p>"
            return
        self.view.value = row_html(self.rows.iloc[self.index.value], classifiers_in(self.df))

    def _run_live(self, *_):
        if self.live is None:
            self.live_out.value = "<i>No trained Q→RA model attached.</i>"
            return
        try:
            r = self.live(self.live_text.value)
        except (ValueError, FileNotFoundError) as e:
            self.live_out.value = f"<span style='color:#c62828'>{html.escape(str(e))}</span>"
            return
        label = r["predicted"] or f"unparsable (constrained: {r['predicted_constrained']})"
        self.live_out.value = (
            f"<p><b>Q→RA:</b> {html.escape(label)}</p><pre>{html.escape(r['generated'])}</pre>"
        )
