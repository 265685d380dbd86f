"""Explorer logic without a browser: filters, HTML, and the widget's reaction to its controls."""

import pandas as pd
import pytest
from reasoning_infused.explorer import ANY, ReasoningExplorer, filter_rows, row_html


@pytest.fixture
def table():
    return pd.DataFrame(
        {
            "text": ["i feel happy today", "i am so scared", "i love him", "what a surprise <b>"],
            "gold": ["joy", "fear", "love", "surprise"],
            "qa_predicted": ["joy", "fear", "joy", "fear"],
            "qa_generated": ["Answer: joy", "Answer: fear", "Answer: joy", "Answer: fear"],
            "qra_predicted": ["joy", "sadness", "love", None],
            "qra_generated": [
                "Reasoning: happy\nAnswer: joy",
                "Reasoning: x\nAnswer: sadness",
                "Reasoning: y\nAnswer: love",
                "junk",
            ],
            "qar_predicted": ["joy", "fear", "love", "surprise"],
            "qar_generated": ["Answer: joy", "Answer: fear", "Answer: love", "Answer: surprise"],
            "train_reasoning": ["", "", "They say love.", ""],
        }
    )


def test_filters(table):
    assert len(filter_rows(table)) == 4
    assert filter_rows(table, gold="fear").text.tolist() == ["i am so scared"]
    assert filter_rows(table, classifier="qa", correct="wrong").gold.tolist() == ["love", "surprise"]
    assert filter_rows(table, classifier="qra", predicted="<unparsed>").gold.tolist() == ["surprise"]
    assert filter_rows(table, agreement="all agree").gold.tolist() == ["joy"]
    assert len(filter_rows(table, agreement="disagree")) == 3
    assert filter_rows(table, search="SCARED").gold.tolist() == ["fear"]
    assert filter_rows(table, gold="joy", classifier="qra", correct="wrong").empty


def test_row_html_escapes_and_colours(table):
    h = row_html(table.iloc[3], ["qa", "qra"])
    assert "&lt;b&gt;" in h and "<b>" not in table.iloc[3].text.replace("<b>", "")  # text is escaped
    assert "#c62828" in h  # wrong predictions in red
    assert "They say love." in row_html(table.iloc[2], ["qa"])


def test_widget_reacts_to_filters(table):
    ex = ReasoningExplorer(table)
    assert "4 matching" in ex.status.value and "i feel happy today" in ex.view.value
    ex.gold.value = "love"
    assert "1 matching" in ex.status.value and "i love him" in ex.view.value
    ex.gold.value = ANY
    ex.search.value = "nothing like this"
    assert "No example matches" in ex.view.value
    ex.search.value = ""
    ex._step(1)
    assert "i am so scared" in ex.view.value
    ex._run_live()
    assert "No trained" in ex.live_out.value
