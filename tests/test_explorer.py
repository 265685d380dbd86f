"""Explorer logic without a browser: reading saved predictions, filters, presets, sorting, paging, HTML, export,
and the widget's reaction to its controls."""

import base64
import json
import re
import subprocess
import sys

import pandas as pd
import pytest
from reasoning_infused.analysis.explorer import ReasoningExplorer
from reasoning_infused.analysis.explorer_table import (
    ANY,
    UNPARSED,
    download_link,
    experiments_with_predictions,
    explorer_table,
    filter_rows,
    highlight,
    mcnemar_cells,
    mcnemar_presets,
    page_of,
    row_html,
    selection_csv,
    sort_rows,
    splits_in,
    static_examples_html,
)

TEXTS = ["i feel happy today", "i am so scared", "i love him", "what a surprise <b>"]
GOLD = ["joy", "fear", "love", "surprise"]


def plain(h: str) -> str:
    """HTML without its tags (emotion words are wrapped in <mark>)."""
    return re.sub(r"<[^>]+>", "", h)


def _scores(top: str, margin: float) -> dict[str, float]:
    return {
        lab: (0.0 if lab == top else -margin)
        for lab in ("sadness", "joy", "love", "anger", "fear", "surprise")
    }


def write_predictions(folder, split="test", texts=TEXTS, gold=GOLD):
    pred = folder / "predictions"
    pred.mkdir(parents=True, exist_ok=True)
    qa = ["joy", "fear", "joy", "fear"]
    qra_free = ["joy", "sadness", "love", None]
    qra_scored = ["joy", "sadness", "love", "surprise"]
    reasonings = ["happy is joy.", "x", "love love love love is love love love", "they were amazed"]
    rows = {
        "qa": [
            {"text": t, "gold": g, "predicted": p, "generated": f"Answer: {p}", "scores": _scores(p, m)}
            for t, g, p, m in zip(texts, gold, qa, [5, 1, 3, 0.5], strict=True)
        ],
        "qra": [
            {
                "text": t,
                "gold": g,
                "predicted": p,
                "predicted_constrained": c,
                "generated": f"Reasoning: {r}\nAnswer: {p}" if p else "junk",
                "reasoning": r,
                "n_tokens": len(r.split()),
                "finish_reason": "length" if i == 2 else "stop",
                "scores": _scores(c, 2),
            }
            for i, (t, g, p, c, r) in enumerate(
                zip(texts, gold, qra_free, qra_scored, reasonings, strict=True)
            )
        ],
    }
    for clf, rs in rows.items():
        (pred / f"{clf}__{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rs))
    return folder


@pytest.fixture
def results(tmp_path):
    exp = write_predictions(tmp_path / "default")
    write_predictions(exp, split="ood_isear")
    write_predictions(tmp_path / "other", split="validation")
    (tmp_path / "empty" / "predictions").mkdir(parents=True)
    return tmp_path


@pytest.fixture
def table(results):
    return explorer_table(results / "default", "test")


def test_table_shows_every_prediction_as_scored(table, results):
    assert experiments_with_predictions(results) == ["default", "other"]
    assert splits_in(results / "default") == ["test", "ood_isear"]
    assert table.row.tolist() == [0, 1, 2, 3]
    assert table.qra.tolist() == [
        "joy",
        "sadness",
        "love",
        UNPARSED,
    ]  # free generation, unparsed shown as such
    assert table.qra_scored.tolist() == [
        "joy",
        "sadness",
        "love",
        "surprise",
    ]  # labels scored after the reasoning
    assert table.qa_conf.iloc[0] > 0.95 and table.qa_conf.iloc[3] < 0.5  # probability of the predicted label
    assert sum(table.qa_probs.iloc[0].values()) == pytest.approx(1.0)
    assert table.leaks.tolist() == [
        True,
        False,
        True,
        True,
    ]  # "happy" names joy, "love" love, "amazed" surprise
    assert table.repetitive.tolist() == [False, False, True, False]
    assert table.cut.tolist() == [False, False, True, False]
    assert table.support.iloc[3] == "unparsed output"
    assert table.quotes_cue.tolist() == [True, False, False, False]  # "happy" after "feel"
    assert filter_rows(table, flag="quotes_cue").row.tolist() == [0]
    with pytest.raises(FileNotFoundError, match="no predictions for split 'nope'"):
        explorer_table(results / "default", "nope")


def test_a_broken_prediction_file_names_file_and_line(results):
    path = results / "default" / "predictions" / "qa__test.jsonl"
    path.write_text(path.read_text() + "{not json\n")
    with pytest.raises(ValueError, match=r"qa__test.jsonl, line 5"):
        explorer_table(results / "default", "test")


def test_filters_presets_search_and_flags(table):
    assert len(filter_rows(table)) == 4
    assert filter_rows(table, gold="fear").row.tolist() == [1]
    assert filter_rows(table, view="qa", correct="wrong").gold.tolist() == ["love", "surprise"]
    assert filter_rows(table, view="qra", predicted=UNPARSED).row.tolist() == [3]
    assert filter_rows(table, view="qra_scored", correct="correct").row.tolist() == [0, 2, 3]
    assert filter_rows(table, search="SCARED").row.tolist() == [1]
    assert filter_rows(table, search="amazed").row.tolist() == [3]  # found in the reasoning
    assert filter_rows(table, flag="leaks").row.tolist() == [0, 2, 3]
    assert filter_rows(table, flag="no leaks").row.tolist() == [1]
    assert filter_rows(table, support="unparsed output").row.tolist() == [3]
    cells = mcnemar_cells(table, "qa", "qra_scored")
    assert cells == {"only Q→A right": 1, "only Q→RA scored right": 2, "both right": 1, "both wrong": 0}
    presets = mcnemar_presets(table)
    key = "only Q→RA scored right (vs Q→A): 2"
    assert presets[key] == ("qa", "qra_scored", "second")
    assert filter_rows(table, preset=presets[key]).row.tolist() == [2, 3]
    assert filter_rows(table, preset=presets["only Q→A right (vs Q→RA scored): 1"]).row.tolist() == [1]


def test_sorting_and_paging(table):
    wrong = filter_rows(table, view="qa", correct="wrong")
    assert sort_rows(wrong, "confident_wrong", "qa").row.tolist() == [2, 3]  # p(joy) on row 2 > p(fear) on 3
    assert sort_rows(table, "least_confident", "qa").row.tolist()[0] == 3
    assert sort_rows(table, "longest_reasoning", "qa").row.tolist()[0] == 2
    rows, page, pages = page_of(table, 7, size=3)
    assert (page, pages, rows.row.tolist()) == (1, 2, [3])  # out-of-range page clamped


def test_html_escapes_highlights_and_colours(table):
    assert highlight("I feel <happy> & scared") == (
        "I feel &lt;<mark class='ri-emo' title='joy'>happy</mark>&gt; &amp; "
        "<mark class='ri-emo' title='fear'>scared</mark>"
    )
    h = row_html(table.iloc[3], ["qa", "qra_scored", "qra"])
    assert "&lt;b&gt;" in h and "</mark> <b>" not in h  # the text is escaped
    assert "Row 3" in h and "#c62828" in h and "#2e7d32" in h  # wrong red, right green
    assert UNPARSED.replace("<", "&lt;").replace(">", "&gt;") in h
    assert "amazed" in h and "title='surprise'" in h  # the reasoning, its emotion word marked
    static = static_examples_html(table, n=4)
    assert "Only Q→A right" in static and "i am so <mark" in static


def test_export_is_the_selection(table):
    sel = filter_rows(table, gold="love")
    csv = selection_csv(sel)
    back = pd.read_csv(pd.io.common.StringIO(csv))
    assert back.row.tolist() == [2] and json.loads(back.qa_probs.iloc[0])["joy"] == pytest.approx(
        0.8007, abs=1e-4
    )
    link = download_link(sel, "x.csv")
    payload = link.split("base64,")[1].split("'")[0]
    assert base64.b64decode(payload).decode() == csv and "1 rows" in link


def test_widget_reacts_to_its_controls(results):
    ex = ReasoningExplorer(results / "default", experiments_root=results)
    assert ex.view.value == "qra_scored"
    assert "1–4 of 4 matching" in ex.status.value and "i feel happy today" in plain(ex.view_html.value)
    ex.gold.value = "love"
    assert "1–1 of 1 matching" in ex.status.value and "i love him" in plain(ex.view_html.value)
    assert ex.export.value == ""  # made on request only
    ex.export_button.click()
    assert "download 1 rows" in ex.export.value
    ex.gold.value = ANY
    ex.search.value = "nothing like this"
    assert "No example matches" in plain(ex.view_html.value)
    ex.search.value = ""
    ex.preset.value = ("qa", "qra_scored", "second")
    assert [v for _, v in ex.listing.options] == [2, 3]
    ex.listing.value = 3
    assert "what a surprise" in plain(ex.view_html.value)
    ex.goto.value = "99999"
    assert "No row 99999" in plain(ex.view_html.value) and "0–3" in plain(ex.view_html.value)
    ex.goto.value = "1"
    assert "i am so scared" in plain(ex.view_html.value) and "not among the 2 matching" in plain(
        ex.view_html.value
    )
    ex.gold.value = "fear"
    ex.split.value = "ood_isear"  # the McNemar preset is recounted (reset); the other filters stay
    assert ex.preset.value is None and "1–1 of 1 matching" in ex.status.value
    ex.experiment.value = "other"
    assert ex.split.value == "validation" and "1–1 of 1 matching" in ex.status.value
    ex._run_live()
    assert "No trained" in ex.live_out.value


def test_reading_saved_results_imports_no_torch(results):
    code = (
        "import sys; from pathlib import Path; from reasoning_infused.analysis.explorer import ReasoningExplorer; "
        f"ReasoningExplorer(Path({str(results / 'default')!r}), experiments_root=Path({str(results)!r})); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "False"


def test_the_explorer_opens_the_committed_esnli_study_with_its_own_labels():
    from reasoning_infused.base.locations import REPO_ROOT

    results = REPO_ROOT / "results"
    assert "esnli" in experiments_with_predictions(results)
    w = ReasoningExplorer(experiments_root=results, results_dir=results / "esnli")
    assert w.experiment.value == "esnli" and len(w.df) == 2000 and "reasoning" in w.df.columns
    assert list(w.gold.options) == [ANY, "entailment", "neutral", "contradiction"]
    assert set(w.df.gold) == {"entailment", "neutral", "contradiction"}
