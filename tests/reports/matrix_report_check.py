"""Checks the full-matrix HTML report that CI builds (`tox -e report-matrix`) in headless Chromium.

Not collected by a plain `pytest tests` (the name does not start with test_): CI runs it explicitly after
the matrix, as `tox -e report-matrix-check`, with MQTT_TOOLKIT_RESULTS (the results/ folder) and
MQTT_TOOLKIT_REPORT (the report's index.html). Every results file must have its summary rows, every
statement cell must agree with the outcome worked out from that results file alone, the diff filter
between the first and last broker must show exactly the statements whose outcomes differ, and a
full-page screenshot is kept in test-output/matrix-report.png.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from reports.results import load_runs

from tests.reports.test_report_browser import (  # noqa: F401 - `browser` is a fixture used below
    ALL_ROWS,
    REPO,
    _expected_cells,
    _visible,
    browser,
)

SCREENSHOT = REPO / "test-output" / "matrix-report.png"


def _paths() -> tuple[Path, Path]:
    results, report = os.environ.get("MQTT_TOOLKIT_RESULTS"), os.environ.get("MQTT_TOOLKIT_REPORT")
    if not results or not report:
        pytest.fail("set MQTT_TOOLKIT_RESULTS (results folder) and MQTT_TOOLKIT_REPORT (report index.html)")
    return Path(results), Path(report)


@pytest.fixture(scope="module")
def documents() -> list[dict]:
    results, _ = _paths()
    paths = sorted(results.glob("*.json"))
    found = [json.loads(path.read_text(encoding="utf-8")) for path in paths]
    assert len(found) >= 2, f"the matrix needs at least two results files in {results}, found {len(found)}"
    # The report labels its columns itself (reports.results.assign_labels), telling runs with the same version
    # string apart, the interop results' runs included (tox -e report-matrix reads results/interop/ too)
    runs = load_runs([*paths, *sorted((results / "interop").glob("*.json"))])
    for document, run in zip(found, runs):
        document["label"] = run.label
    return found


def _label(document: dict) -> str:
    return document["label"]


@pytest.fixture
def page(browser):
    _, report = _paths()
    assert report.is_file(), f"no report at {report}: run tox -e report-matrix first"
    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(report.resolve().as_uri())
    yield page
    page.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def test_every_run_has_its_summary_rows_and_cells(page, documents):
    shown = {row["id"]: row["cells"] for row in page.evaluate(ALL_ROWS)}  # every cell, in one round trip
    for document in documents:
        label = _label(document)
        versions = sorted({t["protocol_version"] for t in document["tests"]})
        assert page.locator(f'tr.summary-row[data-broker="{label}"]').count() == len(versions), label
        expected = _expected_cells(document)
        assert expected, f"{label}: no statements in its results"
        for (version, statement), (outcome, _number) in expected.items():
            cells = shown.get(f"s-{version}-{statement}")
            assert cells is not None and label in cells, f"no cell for {statement} (MQTT {version}) of {label}"
            assert cells[label] == outcome, f"{statement} (MQTT {version}) of {label}: {cells[label]} != {outcome}"


def test_diff_between_first_and_last_broker(page, documents):
    a, b = _label(documents[0]), _label(documents[-1])
    rows = page.evaluate(ALL_ROWS)
    page.locator("#f-diff-a").select_option(a)
    page.locator("#f-diff-b").select_option(b)
    differing = [r["id"] for r in rows if r["cells"].get(a) != r["cells"].get(b)]
    assert _visible(page) == differing


def test_screenshot(page, capsys):
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=False)
    assert SCREENSHOT.stat().st_size > 30_000
    with capsys.disabled():
        print(f"\nmatrix report screenshot: {SCREENSHOT}")
