"""End to end in a real browser: the explorer app served by Voila, driven in headless Chromium by Playwright."""

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.browser]
APP = Path(__file__).resolve().parents[1] / "notebooks" / "apps" / "reasoning_explorer.ipynb"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def voila_url(smoke_study, tmp_path):
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian package 'chromium'; .ci/run installs it)")
    pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    pytest.importorskip("voila", reason="pip install voila")
    port = _free_port()
    env = {**os.environ, "RI_PROFILE": "smoke"}
    log = (tmp_path / "voila.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "voila",
            str(APP),
            "--no-browser",
            f"--port={port}",
            "--Voila.ip=127.0.0.1",
            "--show_tracebacks=True",
        ],
        env=env,
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("voila did not start: " + (tmp_path / "voila.log").read_text()[-2000:])
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _dropdown(page, label: str):
    """The <select> of the ipywidgets Dropdown whose description is exactly `label`."""
    return (
        page.locator(".widget-dropdown")
        .filter(has=page.locator("label", has_text=re.compile(f"^{re.escape(label)}$")))
        .locator("select")
    )


def _wait_text(page, selector: str, expected: str, timeout: int = 60_000) -> None:
    page.wait_for_function(
        "([s, t]) => (document.querySelector(s)?.innerText || '').includes(t)",
        arg=[selector, expected],
        timeout=timeout,
    )


def _listed_rows(page) -> list[int]:
    return [
        int(t.split("·")[0].split()[1]) for t in page.locator(".ri-listing select option").all_inner_texts()
    ]


def _wait_listed(page, expected: list[int], timeout: float = 60.0) -> list[int]:
    """The listed row ids once they equal `expected` (widget updates reach the page asynchronously)."""
    end = time.time() + timeout
    rows = _listed_rows(page)
    while rows != expected and time.time() < end:
        time.sleep(0.25)
        rows = _listed_rows(page)
    return rows


def test_explorer_in_a_real_browser(voila_url, smoke_study):
    """From a McNemar cell to a sorted list of its examples with both Q->RA labels, on two splits."""
    from playwright.sync_api import sync_playwright
    from reasoning_infused.analysis.explorer_table import (
        explorer_table,
        filter_rows,
        mcnemar_presets,
        sort_rows,
    )

    p = smoke_study["profile"]
    test = explorer_table(p.results_dir, "test")
    presets = mcnemar_presets(test)
    label, cell = max(presets.items(), key=lambda kv: int(kv[0].rsplit(": ", 1)[1]))  # the largest cell
    selected = filter_rows(test, preset=cell)
    least_confident = sort_rows(selected, "least_confident", "qra_scored")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page()
        page.goto(voila_url, timeout=180_000)
        page.locator(".ri-view .ri-text").wait_for(timeout=180_000)
        first = test.iloc[0]
        assert page.locator(".ri-view .ri-text").inner_text().strip() == first.text.strip()
        assert "Row 0" in page.locator(".ri-view").inner_text()
        # a McNemar cell: its examples, both Q->RA labels shown for the one opened
        _dropdown(page, "McNemar cell").select_option(label=label)
        _wait_text(page, ".ri-status", f"of {len(selected)} matching")
        assert _wait_listed(page, selected.row.tolist()[:20]) == selected.row.tolist()[:20]
        view = page.locator(".ri-view").inner_text()
        assert "Q→RA scored" in view and "Q→RA free" in view
        # sorted: least confident Q->RA (scored) first
        _dropdown(page, "sort").select_option(label="least confident first")
        page.wait_for_function(
            "(r) => (document.querySelector('.ri-listing select option')?.innerText || '')"
            ".split('·')[0].trim().split(/\\s+/)[1] === r",
            arg=str(int(least_confident.iloc[0].row)),
            timeout=60_000,
        )
        assert _wait_listed(page, least_confident.row.tolist()[:20]) == least_confident.row.tolist()[:20]
        # click-through: the second listed example opens
        if len(selected) > 1:
            page.locator(".ri-listing select").select_option(index=1)
            _wait_text(page, ".ri-view", f"Row {int(least_confident.iloc[1].row)}")
        # the export link holds the selection
        page.locator("button", has_text="CSV of the selection").click()
        _wait_text(page, ".ri-export", f"download {len(selected)} rows")
        # search in the reasonings: a word that is in some reasoning and in no text
        _dropdown(page, "McNemar cell").select_option(label="(any)")
        words = {w for t in test.reasoning for w in t.lower().split() if w.isalpha() and len(w) > 3}
        words -= {w for t in test.text for w in t.lower().split()}
        if words:
            word = sorted(words)[0]
            hits = filter_rows(test, search=word)
            page.locator(".widget-text", has_text="search").locator("input").fill(word)
            _wait_text(page, ".ri-status", f"of {len(hits)} matching")
            page.locator(".widget-text", has_text="search").locator("input").fill("")
        # another split: the listing follows
        validation = explorer_table(p.results_dir, "validation")
        _dropdown(page, "split").select_option(label="validation")
        _wait_text(page, ".ri-status", f"of {len(validation)} matching")
        want = sort_rows(validation, "least_confident", "qra_scored").row.tolist()[:20]
        assert _wait_listed(page, want) == want
        browser.close()
