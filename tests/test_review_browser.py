"""``ai4va-fg review`` in a real browser: the Gradio app on a free local port, driven by headless
Chromium (Debian's ``chromium`` + ``chromium-driver``, through Selenium). The test accepts, rejects
and fixes items with the keyboard shortcuts and text boxes, types a page's panel order, checks the
review file, rebuilds the demo with ``--review`` and checks the result with ``load_dataset``.
Screenshots of both views go to ``build/review-screenshots/`` (the README's picture is one of them,
shrunk, in ``docs/review-app.png``).

Skipped only when no Chromium or chromedriver is installed (``.ci/run`` installs them)."""

from __future__ import annotations

import json
import re
import shutil
import socket
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import ai4va_fg_dataset
from ai4va_fg_dataset.cli import main

DEMO = Path(ai4va_fg_dataset.__file__).parent / "demo_data"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "build" / "review-screenshots"
CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium")
                 if p and Path(p).exists()), None)
DRIVER = next((p for p in (shutil.which("chromedriver"), "/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver")
               if p and Path(p).exists()), None)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="no Chromium / chromedriver found (apt-get install -y chromium chromium-driver; .ci/run does)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _build(out: Path, *extra: str) -> int:
    return main(["build", "--source", "auto", "--path", str(DEMO), "--out", str(out), "--seed", "0",
                 "--split-ratios", "0.6,0.2,0.2", "--skip-bad", "--no-contact-sheet", *extra])


def _rows(out: Path) -> dict[str, dict]:
    return {row["id"]: row for f in sorted(out.glob("*/*.parquet")) for row in pq.read_table(f).to_pylist()}


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1500,1100", "--no-first-run", "--disable-extensions"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def test_review_in_browser_then_rebuild(tmp_path, browser, monkeypatch):
    from datasets import load_dataset
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    from ai4va_fg_dataset.build.review_app import ReviewSession, create_app, launch

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    out = tmp_path / "ds"
    assert _build(out) == 0
    before = _rows(out)
    review = tmp_path / "annotations" / "review.jsonl"
    session = ReviewSession(out, review_file=review, reviewer="selenium")
    app, url = launch(create_app(session), port=_free_port(), block=False)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    from selenium.common.exceptions import StaleElementReferenceException

    wait = WebDriverWait(browser, 30, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,))
    try:
        browser.get(url)

        def item_id() -> str:
            return browser.find_element(By.CSS_SELECTOR, "#item-info h3").text.strip()

        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#item-info h3") and item_id())
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#item-image img"))
        first = item_id()
        assert first in before
        browser.save_screenshot(str(SCREENSHOTS / "items.png"))

        # accept with the keyboard shortcut "a"
        browser.find_element(By.TAG_NAME, "body").send_keys("a")
        wait.until(lambda d: len(_lines(review)) == 1 and item_id() != first)
        second = item_id()
        # reject: "r" focuses the reason box, Enter rejects
        browser.find_element(By.TAG_NAME, "body").send_keys("r")
        browser.switch_to.active_element.send_keys("balloon text belongs to another page", Keys.ENTER)
        wait.until(lambda d: len(_lines(review)) == 2 and item_id() != second)
        third = item_id()
        key = before[third]["answer"]
        new_key = next(c for c in "ABCDEFGH"[: len(before[third]["choices"])] if c != key)
        info = browser.find_element(By.ID, "item-info").text
        assert re.search(rf"\b{key}\. .*<- key", info), info  # the key is marked
        browser.find_element(By.TAG_NAME, "body").send_keys("f")
        browser.switch_to.active_element.send_keys(new_key.lower(), Keys.ENTER)
        wait.until(lambda d: len(_lines(review)) == 3 and item_id() != third)
        assert "Reviewed 3 /" in browser.find_element(By.ID, "progress").text

        # panel order: the first page offered is a panel_reordering page; type the reverse order
        browser.find_element(By.XPATH, "//button[@role='tab'][contains(., 'Panel order')]").click()
        box = wait.until(lambda d: next((e for e in d.find_elements(By.CSS_SELECTOR, "#order-box textarea, "
                                                                    "#order-box input")
                                         if e.is_displayed() and e.get_attribute("value")), None))
        page_id = browser.find_element(By.CSS_SELECTOR, "#order-info h3").text.split()[0]
        order = [t.strip() for t in box.get_attribute("value").split(",")]
        assert len(order) >= 3
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "img")) >= 2)
        browser.save_screenshot(str(SCREENSHOTS / "panel-order.png"))
        box.clear()
        box.send_keys(", ".join(order[::-1]), Keys.ENTER)
        wait.until(lambda d: len(_lines(review)) == 4)
    finally:
        app.close()

    lines = _lines(review)
    assert [(d["target"], d["id"], d["verdict"]) for d in lines] == [
        ("item", first, "accept"), ("item", second, "reject"), ("item", third, "fix"),
        ("page", page_id, "order")]
    assert lines[1]["reason"] == "balloon text belongs to another page"
    # a choice fix is stored as the option text (robust to a rebuild that reorders the options)
    assert lines[2]["value"] == before[third]["choices"]["ABCDEFGH".index(new_key)]
    assert lines[3]["value"] == order[::-1]
    assert all(d["reviewer"] == "selenium" for d in lines)

    rebuilt = tmp_path / "ds2"
    assert _build(rebuilt, "--review", str(review)) == 0
    after = _rows(rebuilt)
    assert second not in after and after[third]["answer"] == new_key and after[first] == before[first]
    page_items = [i for i in before if i.startswith("panel_reordering/") and before[i]["page_id"] == page_id]
    assert page_items and all(after[i]["image"] != before[i]["image"] for i in page_items)
    ds = load_dataset(str(rebuilt))
    ids = {i: a for split in ds.values() for i, a in zip(split["id"], split["answer"])}
    assert second not in ids and ids[third] == new_key and len(ids) == len(before) - 1
    report = json.loads((rebuilt / "build_report.json").read_text())["review"]
    assert report["pages_reordered"] == [page_id] and report["missing"] == []
    assert "## Human review" in (rebuilt / "README.md").read_text()
