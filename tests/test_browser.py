"""End to end in a real browser: the explorer app served by Voila, driven in headless Chromium by Playwright."""

import json
import os
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


def test_explorer_filters_in_a_real_browser(voila_url, smoke_study):
    from playwright.sync_api import sync_playwright

    p = smoke_study["profile"]
    rows = [
        json.loads(x) for x in (p.results_dir / "predictions" / "qra__test.jsonl").read_text().splitlines()
    ]
    first = rows[0]
    # a gold label whose first example is a different text than the example shown at start
    target = next(r["gold"] for r in rows if r["gold"] != first["gold"])
    expected = next(r["text"] for r in rows if r["gold"] == target)
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
        shown = page.locator(".ri-view .ri-text")
        shown.wait_for(timeout=180_000)
        assert shown.inner_text().strip() == first["text"].strip()
        gold = page.locator(".widget-dropdown", has_text="gold").locator("select")
        gold.select_option(label=target)
        page.wait_for_function(
            "(t) => document.querySelector('.ri-view .ri-text')?.innerText.trim() === t",
            arg=expected.strip(),
            timeout=60_000,
        )
        assert "matching example" in page.locator("body").inner_text()
        browser.close()
