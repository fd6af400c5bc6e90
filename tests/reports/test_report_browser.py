"""The HTML report in a real browser, built from real results.

A small part of the conformance suite (two modules, both MQTT versions) runs against the embedded
refbroker and against Debian's mosquitto, each in its own pytest process writing a results file; then
`python -m reports build` merges them, and headless Chromium (Debian's, driven by Playwright) opens the
page from file:// and checks what a person would see: the summary rows, matrix cells that agree with
the results files, the filters (failed only, text search, version, diff), and a cell's link opening the
test's details with its packet trace. A full-page screenshot is kept in test-output/report.png (a CI
artifact, not committed).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from conformance.catalogue import load_catalogue, normalise_id
from conformance.deviations import DEVIATIONS
from conformance.targets import find_mosquitto

REPO = Path(__file__).resolve().parents[2]
SCREENSHOT = REPO / "test-output" / "report.png"
CHROMIUM = "/usr/bin/chromium"
SUITE_PART = ["conformance.tests.test_connect", "conformance.tests.test_malformed", "conformance.tests.test_v31"]
VERSIONS = ("3.1", "3.1.1", "5.0")
CHROMIUM_ARGS = ["--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run"]
BAD = {"fail", "error", "deviation"}


# ------------------------------------------------------------------------------------------ the results


def _suite_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}


def _run_suite(broker: str, path: Path) -> dict:
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pyargs", *SUITE_PART, "--mqtt-version=all",
         "-q", f"--broker={broker}", f"--results={path}"],
        capture_output=True, text=True, check=False, cwd=REPO, env=_suite_env(), timeout=600)
    # 0: all passed (known deviations are xfails); 1: some tests failed, which the report must show too
    assert run.returncode in (0, 1), f"the suite against {broker} did not run:\n{run.stdout}\n{run.stderr}"
    assert path.is_file(), f"no results file from the suite against {broker}:\n{run.stdout}\n{run.stderr}"
    document = json.loads(path.read_text(encoding="utf-8"))
    assert {t["protocol_version"] for t in document["tests"]} == set(VERSIONS)
    return document


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"chromium not installed ({CHROMIUM}): apt-get install chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed: pip install playwright")
    with sync_api.sync_playwright() as playwright:
        # Debian's chromium: Playwright must not download a browser of its own (no `playwright install`)
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("results")


@pytest.fixture(scope="module")
def suite(browser, results_dir) -> dict[str, dict | None]:
    """{"refbroker": results document, "mosquitto": results document or None when it is not installed}."""
    documents: dict[str, dict | None] = {"refbroker": _run_suite("refbroker", results_dir / "refbroker.json")}
    documents["mosquitto"] = (_run_suite("mosquitto", results_dir / "mosquitto.json")
                              if find_mosquitto() is not None else None)
    return documents


@pytest.fixture(scope="module")
def report(suite, results_dir) -> Path:
    files = [results_dir / f"{name}.json" for name, document in suite.items() if document is not None]
    out = results_dir / "html"
    run = subprocess.run([sys.executable, "-m", "reports", "build", *map(str, files), "-o", str(out)],
                         capture_output=True, text=True, check=False, cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"report written: {(out / 'index.html').resolve()}" in run.stdout
    return out / "index.html"


@pytest.fixture
def page(browser, report):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(report.as_uri())
    yield page
    page.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def _need(suite, broker: str) -> dict:
    if suite[broker] is None:
        pytest.skip("mosquitto not installed: apt-get install mosquitto")
    return suite[broker]


def _label(document: dict) -> str:
    return document["target"]["version_string"]


# ------------------------------------------------------------------------------ reading the page


VISIBLE_ROWS = """() => Array.from(document.querySelectorAll('tr.srow'))
    .filter((row) => row.offsetParent !== null).map((row) => row.id)"""
ALL_ROWS = """() => Array.from(document.querySelectorAll('tr.srow')).map((row) => ({
    id: row.id, text: row.dataset.text,
    cells: Object.fromEntries(Array.from(row.querySelectorAll('td.cell')).map((c) => [c.dataset.broker, c.dataset.outcome]))}))"""


def _visible(page) -> list[str]:
    return page.evaluate(VISIBLE_ROWS)


def _shown_count(page) -> int:
    text = page.locator("#f-count").inner_text()
    assert text.endswith(" statement(s) shown"), text
    return int(text.split()[0])


def _cell(page, version: str, statement: str, label: str):
    return page.locator(f'tr[id="s-{version}-{statement}"] td.cell[data-broker="{label}"]')


WORST_FIRST = ("fail", "error", "deviation", "pass", "not-applicable")


def _expected_cells(document: dict) -> dict[tuple[str, str], tuple[str, int | None]]:
    """The outcome each statement should show for this run, worked out from the results file alone: the
    worst outcome of the tests naming it, where a known deviation counts only for the statements it lists
    when the test names any of them (else for all the test's statements). Statements named only by a
    test that stopped at another statement's deviation are left out. A file with per-statement verdicts
    (`statement_outcomes`) gives each statement its own; "not-reached" and "not-checkable" ones are left out."""
    outcomes: dict[tuple[str, str], list[tuple[str, int | None]]] = defaultdict(list)
    for test in document["tests"]:
        version = test["protocol_version"]
        statements = [normalise_id(version, raw) for raw in test["statement_ids"]]
        number = test["known_deviation"]
        if test.get("statement_outcomes"):
            for raw, verdict in test["statement_outcomes"].items():
                if verdict not in ("not-reached", "not-checkable"):
                    outcomes[(version, normalise_id(version, raw))].append((verdict, number if verdict == "deviation"
                                                                            else None))
            continue
        listed = {(v, s) for v, s in DEVIATIONS[number].statements} if number is not None else set()
        named_listed = [s for s in statements if (version, s) in listed]
        for statement in statements:
            if number is None:
                outcomes[(version, statement)].append((test["outcome"], None))
            elif not named_listed or statement in named_listed:
                outcomes[(version, statement)].append(("deviation", number))
    cells = {key: min(found, key=lambda item: WORST_FIRST.index(item[0])) for key, found in outcomes.items()}
    catalogue = load_catalogue()
    # a statement no black-box test can check is never shown as passed [the report's "not checkable"]
    return {key: (("not-checkable", None) if value[0] == "pass" and not catalogue[key].checkable else value)
            for key, value in cells.items()}


# ----------------------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("broker", ["refbroker", "mosquitto"])
def test_summary_rows(page, suite, broker):
    document = _need(suite, broker)
    label = _label(document)
    rows = page.locator(f'tr.summary-row[data-broker="{label}"]')
    assert rows.count() == 3  # one per MQTT version
    for version in VERSIONS:
        row = page.locator(f'tr.summary-row[data-broker="{label}"][data-version="{version}"]')
        cells = row.locator("td")
        assert cells.nth(0).inner_text() == label and cells.nth(1).inner_text() == version
        statements = page.locator(f'table.matrix[data-version="{version}"] tr.srow').count()
        assert int(cells.nth(2).inner_text()) == statements
        per_outcome = sum(int(row.locator(f'td[data-outcome="{o}"]').inner_text())
                          for o in ("fail", "error", "deviation", "pass", "not-applicable", "not-checkable",
                                    "untested", "unsupported"))
        assert per_outcome == statements
        passed = sum(1 for t in document["tests"] if t["protocol_version"] == version and t["outcome"] == "pass")
        assert f"{passed} pass" in cells.last.inner_text()
        assert row.locator(".bar span").count() >= 1  # the chart


@pytest.mark.parametrize("broker", ["refbroker", "mosquitto"])
def test_matrix_cells_match_the_results(page, suite, broker):
    document = _need(suite, broker)
    label = _label(document)
    expected = _expected_cells(document)
    assert len(expected) >= 20
    checked = defaultdict(int)
    for (version, statement), (outcome, number) in sorted(expected.items()):
        cell = _cell(page, version, statement, label)
        assert cell.count() == 1, f"no cell for {statement} (MQTT {version}) of {label}"
        assert cell.get_attribute("data-outcome") == outcome, f"{statement} (MQTT {version}) of {label}"
        text = cell.inner_text().strip()
        if outcome == "deviation":
            assert text.startswith(f"deviation #{number}")
            title = cell.get_attribute("title")
            assert f"known deviation #{number} ({DEVIATIONS[number].reference}): {DEVIATIONS[number].title}" in title
        else:
            assert text.startswith({"pass": "pass", "fail": "FAIL", "error": "error", "not-applicable": "n/a",
                                    "not-checkable": "not checkable"}[outcome])
        checked[outcome] += 1
    assert checked["pass"] >= 20
    if broker == "mosquitto":  # mosquitto 2.0.11 has known deviations in these modules (#102)
        assert checked["deviation"] >= 2


def test_failed_only_filter(page, suite):
    rows = page.evaluate(ALL_ROWS)
    before = _visible(page)
    assert len(before) == len(rows) == _shown_count(page)
    page.locator("#f-failed").check()
    after = _visible(page)
    expected = [r["id"] for r in rows if BAD & set(r["cells"].values())]
    assert after == expected and _shown_count(page) == len(after)
    assert len(after) < len(before)
    outcomes = {r["id"]: set(r["cells"].values()) for r in rows}
    assert all(outcomes[row] & BAD for row in after)
    if suite["mosquitto"] is not None:
        assert len(after) >= 2  # the known deviations of mosquitto 2.0.11
    # group headers without a visible row are hidden too
    assert page.locator("tr.group-row:visible").count() <= max(1, len(after))
    page.locator("#f-failed").uncheck()
    assert _visible(page) == before


def test_text_search(page):
    rows = page.evaluate(ALL_ROWS)
    page.locator("#f-text").fill("pingreq")
    visible = _visible(page)
    assert visible == [r["id"] for r in rows if "pingreq" in r["text"]] and 0 < len(visible) < len(rows)
    page.locator("#f-text").fill("MQTT-3.12.4-1")
    assert _visible(page) == ["s-3.1.1-MQTT-3.12.4-1", "s-5.0-MQTT-3.12.4-1"]
    page.locator("#f-text").fill("no statement says this")
    assert _visible(page) == [] and _shown_count(page) == 0
    page.locator("#f-text").fill("")
    assert len(_visible(page)) == len(rows)


def test_version_filter(page):
    page.locator("#f-version").select_option("5.0")
    assert page.locator('table.matrix[data-version="3.1.1"]').is_hidden()
    assert page.locator('table.matrix[data-version="5.0"]').is_visible()
    visible = _visible(page)
    assert visible and all(row.startswith("s-5.0-") for row in visible)
    page.locator("#f-version").select_option("3.1.1")
    assert page.locator('table.matrix[data-version="5.0"]').is_hidden()
    assert all(row.startswith("s-3.1.1-") for row in _visible(page))


def test_broker_filter(page, suite):
    label = _label(suite["refbroker"])
    page.locator("#f-broker").select_option(label)
    headers = page.locator('table.matrix[data-version="5.0"] th.col:visible')
    assert [headers.nth(i).inner_text() for i in range(headers.count())] == [label]


def test_diff_filter(page, suite):
    mosquitto = _need(suite, "mosquitto")
    a, b = _label(suite["refbroker"]), _label(mosquitto)
    rows = page.evaluate(ALL_ROWS)
    page.locator("#f-diff-a").select_option(a)
    page.locator("#f-diff-b").select_option(b)
    visible = _visible(page)
    differing = [r["id"] for r in rows if r["cells"][a] != r["cells"][b]]
    assert visible == differing and visible
    # the statements of mosquitto's known deviations in the results are among them
    for (version, statement), (outcome, _) in _expected_cells(mosquitto).items():
        if outcome == "deviation" and _expected_cells(suite["refbroker"]).get((version, statement), ("",))[0] == "pass":
            assert f"s-{version}-{statement}" in visible
    # with the diff set, the other filters still apply
    page.locator("#f-version").select_option("5.0")
    assert _visible(page) == [row for row in differing if row.startswith("s-5.0-")]


def _click_and_check(page, cell, document: dict) -> object:
    link = cell.locator("a.main")
    anchor = link.get_attribute("href")[1:]
    index = int(anchor.split("-")[1])
    link.click()
    details = page.locator(f'details[id="{anchor}"]')
    assert details.evaluate("d => d.open") is True and details.is_visible()
    assert page.evaluate("location.hash") == f"#{anchor}"
    test = document["tests"][index]
    assert test["nodeid"].split("::")[-1] in details.locator("summary").inner_text()
    trace_rows = details.locator("table.trace tr")
    packets = sum(len(t["packets"]) for t in test["traces"])
    assert packets >= 2 and trace_rows.count() == packets + 1  # + the header row
    first_hex = next(p["hex"] for t in test["traces"] for p in t["packets"] if p.get("hex"))
    assert first_hex in details.locator("table.trace").inner_text()
    return details


def _first_passing_statement(document: dict, version: str = "5.0") -> str:
    test = next(t for t in document["tests"] if t["protocol_version"] == version and t["outcome"] == "pass"
                and t["statement_ids"] and any(p.get("hex") for c in t["traces"] for p in c["packets"]))
    return normalise_id(version, test["statement_ids"][0])


def test_cell_link_opens_the_test_with_its_trace(page, suite):
    from conformance.catalogue import load_catalogue

    document = suite["refbroker"]
    statement = _first_passing_statement(document)
    details = _click_and_check(page, _cell(page, "5.0", statement, _label(document)), document)
    assert load_catalogue()[("5.0", statement)].summary in details.inner_text()
    assert "CONNECT" in details.locator("table.trace").inner_text()


def test_deviation_cell_link_shows_the_deviation(page, suite):
    document = _need(suite, "mosquitto")
    label = _label(document)
    deviations = [(key, number) for key, (outcome, number) in _expected_cells(document).items() if outcome == "deviation"]
    assert deviations
    (version, statement), number = min(deviations)
    details = _click_and_check(page, _cell(page, version, statement, label), document)
    note = details.locator(".deviation-ref").inner_text()
    assert f"known deviation #{number}" in note and DEVIATIONS[number].reference in note
    assert DEVIATIONS[number].title in note
    # the note links to the row of the known deviations table
    details.locator(".deviation-ref a").click()
    assert page.locator(f"#dev-{number}").is_visible()
    assert f"{label}:" in page.locator(f"#dev-{number}").inner_text()


def test_sections_and_screenshot(page, suite, capsys):
    assert page.locator("#no-interop").inner_text().startswith("no interop results in this report")
    assert page.locator("#deviations-table tr[data-number]").count() == len(DEVIATIONS)
    assert page.locator("details.test").count() == sum(len(d["tests"]) for d in suite.values() if d is not None)
    # open one test of each broker so the screenshot shows a trace
    statement = _first_passing_statement(suite["refbroker"])
    for name in ("refbroker", "mosquitto"):
        if suite[name] is not None:
            _cell(page, "5.0", statement, _label(suite[name])).locator("a.main").click()
    page.evaluate("window.scrollTo(0, 0)")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 50_000
    with capsys.disabled():
        print(f"\nreport screenshot: {SCREENSHOT}")



# ------------------------------------------------------------------------------ usability (issue: the report)


def test_filters_are_kept_in_the_url(page, browser, report, suite):
    """Filters write the URL's query; opening that URL elsewhere restores them (a shareable link)."""
    page.locator("#f-version").select_option("5.0")
    page.locator("#f-failed").check()
    page.locator("#f-text").fill("connect")
    query = page.evaluate("location.search")
    assert "version=5.0" in query and "failed=1" in query and "q=connect" in query
    shown = _visible(page)
    other = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        other.goto(page.url)
        assert other.locator("#f-version").input_value() == "5.0"
        assert other.locator("#f-failed").is_checked() and other.locator("#f-text").input_value() == "connect"
        assert other.evaluate(VISIBLE_ROWS) == shown
    finally:
        other.close()
    # a link to a test keeps the filters in the query and uses the fragment
    page.locator("#f-failed").uncheck()
    page.locator("#f-text").fill("")
    assert page.evaluate("location.search") == "?version=5.0"


def test_links_to_further_tests_are_labelled(page):
    groups = page.locator("td.cell .more-tests")
    assert groups.count() >= 1
    first = groups.first
    assert first.inner_text().startswith(("other test:", "other tests:"))
    link = first.locator("a.more").first
    label = link.get_attribute("aria-label")
    assert label.startswith("test ") and " of " in label and ", " in label
    anchor = link.get_attribute("href")[1:]
    link.click()
    assert page.locator(f'details[id="{anchor}"]').evaluate("d => d.open") is True


def test_not_checkable_statements_are_never_pass(page):
    catalogue = load_catalogue()
    rows = page.evaluate(ALL_ROWS)
    not_checkable = [r for r in rows if not catalogue[tuple(r["id"][2:].split("-", 1))].checkable]
    assert not_checkable, "the catalogue has server-side statements that are not checkable black-box"
    for row in not_checkable:
        assert "pass" not in row["cells"].values() and "untested" not in row["cells"].values(), row
    cell = page.locator(f'tr[id="{not_checkable[0]["id"]}"] td.cell').first
    assert cell.inner_text().strip().startswith("not checkable")
    assert "no black-box test can make it fail" in cell.get_attribute("title")


def test_traces_use_the_field_names_of_their_version(page, suite):
    document = suite["refbroker"]
    for version, wanted, unwanted in (("3.1.1", "clean_session=", "clean_start="),
                                      ("3.1", "clean_session=", "clean_start="),
                                      ("5.0", "clean_start=", "clean_session=")):
        index = next(i for i, t in enumerate(document["tests"]) if t["protocol_version"] == version
                     and any(p["type"] == "CONNECT" for c in t["traces"] for p in c["packets"]))
        trace = page.locator(f'details[id="t0-{index}"] table.trace').text_content()
        assert wanted in trace and unwanted not in trace, (version, trace[:400])


def test_deviations_table_does_not_break_words(page):
    styles = page.evaluate("""() => Array.from(document.querySelectorAll('#deviations-table td')).map((td) => {
        const style = getComputedStyle(td);
        return {wrap: style.overflowWrap, brk: style.wordBreak, cls: td.className, white: style.whiteSpace,
                fits: td.scrollWidth <= td.clientWidth + 1};
    })""")
    assert styles and all(s["wrap"] != "anywhere" and s["brk"] != "break-all" for s in styles)
    assert all(s["white"] == "nowrap" and s["fits"] for s in styles if s["cls"] == "broker-name")


def test_v31_column_and_counts(page, suite):
    """The 3.1 matrix: one column per broker, cells from the results (mosquitto's #110 as a known deviation)."""
    assert page.locator('table.matrix[data-version="3.1"]').is_visible()
    headers = page.locator('table.matrix[data-version="3.1"] th.col')
    assert headers.count() == sum(1 for d in suite.values() if d is not None)
    if suite["mosquitto"] is not None:
        cell = _cell(page, "3.1", "V31-3.1-b", _label(suite["mosquitto"]))
        assert cell.get_attribute("data-outcome") == "deviation" and cell.inner_text().startswith("deviation #110")
    assert _cell(page, "3.1", "V31-3.1-b", _label(suite["refbroker"])).get_attribute("data-outcome") == "pass"


@pytest.fixture(scope="module")
def unsupported_report(suite, results_dir) -> Path:
    """A second report: refbroker beside a broker whose results say it does not speak MQTT 3.1."""
    document = json.loads(json.dumps(suite["refbroker"]))
    document["target"].update(name="nov31", option="127.0.0.1:1884", version_string="nov31broker 1.0")
    document["unsupported_versions"] = {"3.1": "CONNECT 'MQIsdp' level 3 refused with CONNACK return code 1"}
    for test in document["tests"]:
        if test["protocol_version"] == "3.1":
            test.update(outcome="fail", reason="CONNECT was refused with return code 0x01")
    path = results_dir / "nov31.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    out = results_dir / "html-unsupported"
    run = subprocess.run([sys.executable, "-m", "reports", "build", str(results_dir / "refbroker.json"), str(path),
                          "-o", str(out)], capture_output=True, text=True, check=False, cwd=REPO, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "nov31broker 1.0 MQTT 3.1: not supported by the broker" in run.stdout
    return out / "index.html"


def test_unsupported_version_is_shown_as_such(browser, unsupported_report):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(unsupported_report.as_uri())
        row = page.locator('tr.summary-row[data-broker="nov31broker 1.0"][data-version="3.1"]')
        assert "does not support MQTT 3.1" in row.inner_text()
        cells = page.locator('table.matrix[data-version="3.1"] td.cell[data-broker="nov31broker 1.0"]')
        outcomes = {cells.nth(i).get_attribute("data-outcome") for i in range(cells.count())}
        assert outcomes == {"unsupported"}
        assert page.locator('table.matrix[data-version="5.0"] td.cell[data-broker="nov31broker 1.0"]'
                            '[data-outcome="unsupported"]').count() == 0
        page.locator('table.matrix[data-version="3.1"]').scroll_into_view_if_needed()
        page.screenshot(path=str(SCREENSHOT.with_name("report-unsupported.png")))
    finally:
        page.close()
