"""Checks the interop section of the HTML report in headless Chromium against the interop results files.
Not collected by a plain `pytest tests` (the name does not start with test_): CI runs it after the matrix
as `tox -e interop-report-check`, with MQTT_TOOLKIT_INTEROP_RESULTS (results/interop/) and
MQTT_TOOLKIT_REPORT (the report's index.html, built by `tox -e report-matrix`). The client x broker
counts must equal the results files', every failing cell must link to its drill-down with the reason and
(for plain-TCP cells) the packet trace, and a screenshot of the section is kept in
test-output/interop-report.png.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from tests.reports.test_report_browser import REPO, browser  # noqa: F401 - `browser` is a fixture used below

SCREENSHOT = REPO / "test-output" / "interop-report.png"

COUNTS = """() => Object.fromEntries(Array.from(document.querySelectorAll('#interop-counts tr')).slice(1).map((row) => {
    const cells = Array.from(row.querySelectorAll('td'));
    return [cells[0].innerText, cells.slice(1).map((c) => c.innerText)];
}))"""
BROKERS = """() => Array.from(document.querySelectorAll('#interop-counts th.col')).map((th) => th.innerText)"""


@pytest.fixture(scope="module")
def records() -> list[dict]:
    folder = os.environ.get("MQTT_TOOLKIT_INTEROP_RESULTS")
    if not folder:
        pytest.fail("set MQTT_TOOLKIT_INTEROP_RESULTS (the interop results folder)")
    found = [r for path in sorted(Path(folder).glob("*.json"))
             for r in json.loads(path.read_text(encoding="utf-8"))["interop"]]
    assert found, f"no interop results in {folder}: run tox -m interop first"
    return found


@pytest.fixture
def page(browser):
    report = Path(os.environ.get("MQTT_TOOLKIT_REPORT", ""))
    assert report.is_file(), f"no report at {report}: run tox -e report-matrix first"
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(report.resolve().as_uri())
    yield page
    page.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def test_client_by_broker_counts_match_the_results(page, records):
    brokers = page.evaluate(BROKERS)
    shown = page.evaluate(COUNTS)
    expected: dict[tuple[str, str], Counter] = {}
    for record in records:
        expected.setdefault((record["client"], record["broker"]), Counter())[record["outcome"]] += 1
    assert sorted(shown) == sorted({client for client, _ in expected})
    for client, cells in shown.items():
        for broker, text in zip(brokers, cells):
            n = expected.get((client, broker), Counter())
            wanted = f"{n['pass']} / {n['fail']} / {n['not-applicable']}" + (f" / {n['error']} error" if n["error"] else "")
            assert text == wanted, f"{client} x {broker}: shown {text!r}, results say {wanted!r}"


def test_failing_cells_open_their_drill_down_with_the_trace(page, records):
    failing = [r for r in records if r["outcome"] in ("fail", "error")]
    links = page.locator("#interop-table td.cell a")
    assert links.count() == len({(r["client"], r["broker"], r["scenario"]) for r in failing})
    if not failing:
        return
    with_trace = next((r for r in failing if r.get("traces")), None)
    index = 0
    if with_trace is not None:
        anchors = page.locator("details.interop-detail")
        for i in range(anchors.count()):
            summary = anchors.nth(i).locator("summary").inner_text()
            if with_trace["client"] in summary and with_trace["broker"] in summary and with_trace["scenario"] in summary:
                index = i
                break
    detail = page.locator("details.interop-detail").nth(index)
    anchor = detail.get_attribute("id")
    page.locator(f'#interop-table a[href="#{anchor}"]').first.click()
    if detail.get_attribute("open") is None:  # the report's script opens a linked <details>; else open it here
        detail.locator("summary").click()
    assert detail.locator(".reason").is_visible()
    if with_trace is not None:
        assert detail.locator("table.trace tr").count() > 1
        assert detail.locator("p.note").inner_text()  # the attribution


def test_screenshot(page):
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.locator("#interop").scroll_into_view_if_needed()
    page.locator("#interop").screenshot(path=str(SCREENSHOT))
    assert SCREENSHOT.stat().st_size > 20_000
