"""reports/build.py: outcome precedence, the matrix model, known deviations, interop, and the HTML."""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

import pytest

from conformance.deviations import DEVIATIONS
from reports.build import PRECEDENCE, build_model, combine, counts_for, reason_text, render, write_report
from reports.results import load_run, load_runs

from .helpers import record, results, write


@pytest.mark.parametrize(("outcomes", "expected"), [
    ([], "untested"),
    (["pass"], "pass"),
    (["pass", "not-applicable"], "pass"),
    (["not-applicable"], "not-applicable"),
    (["pass", "deviation"], "deviation"),
    (["deviation", "error"], "error"),
    (["error", "fail"], "fail"),
    (["pass", "fail", "deviation", "not-applicable", "error"], "fail"),
])
def test_combine_takes_the_worst_outcome(outcomes, expected):
    assert combine(outcomes) == expected


def test_precedence_order_is_documented():
    assert PRECEDENCE == ("fail", "error", "deviation", "pass", "not-applicable")


def _cells(model, version, statement_id):
    matrix = next(m for m in model["matrices"] if m["version"] == version)
    for _, rows in matrix["groups"]:
        for row in rows:
            if row.statement.id == statement_id:
                return {run.label: cell for run, cell in zip(matrix["columns"], row.cells)}
    raise AssertionError(f"no row {statement_id} in MQTT {version}")


@pytest.fixture
def two_runs(tmp_path):
    ref = write(tmp_path / "ref.json", results([
        record("t.py::test_ping[v5.0]", ["MQTT-3.12.4-1"]),
        record("t.py::test_ping[v3.1.1]", ["MQTT-3.12.4-1"], "3.1.1"),
        record("t.py::test_flags[v5.0]", ["MQTT-2.1.3-1", "MQTT-3.6.1-1"]),
        record("t.py::test_keep_alive[v5.0]", ["MQTT-3.1.2-22"]),
        record("t.py::test_alias[v3.1.1]", ["MQTT-3.1.2-7"], "3.1.1"),  # alternative spelling of MQTT-3.1.2.7
        record("t.py::test_typo[v5.0]", ["MQTT-9.9.9-9"]),
    ]))
    mos = write(tmp_path / "mos.json", results([
        record("t.py::test_ping[v5.0]", ["MQTT-3.12.4-1"]),
        record("t.py::test_ping_again[v5.0]", ["MQTT-3.12.4-1"], outcome="not-applicable", reason="n/a here"),
        record("t.py::test_ping[v3.1.1]", ["MQTT-3.12.4-1"], "3.1.1", "fail", reason="no PINGRESP"),
        record("t.py::test_flags[v5.0-PINGREQ]", ["MQTT-2.1.3-1", "MQTT-3.6.1-1"], outcome="fail", known_deviation=102,
               reason="known deviation #102 (ref): title. Observed: c1 00 answered with d0 00"),
        record("t.py::test_flags[v5.0-PUBREL]", ["MQTT-2.1.3-1", "MQTT-3.6.1-1"]),
        record("t.py::test_keep_alive[v5.0]", ["MQTT-3.1.2-22"], outcome="fail", known_deviation=101),
        record("t.py::test_alias[v3.1.1]", ["MQTT-3.1.2-7"], "3.1.1", "error", reason="harness"),
    ], name="mosquitto", version_string="mosquitto 2.0.11"))
    return load_runs([ref, mos])


def test_matrix_cells(two_runs):
    model = build_model(two_runs)
    assert [m["version"] for m in model["matrices"]] == ["3.1.1", "5.0"]
    ping5 = _cells(model, "5.0", "MQTT-3.12.4-1")
    assert ping5["refbroker 0.1.0"].outcome == "pass"
    assert ping5["mosquitto 2.0.11"].outcome == "pass"  # pass outweighs not applicable
    assert len(ping5["mosquitto 2.0.11"].tests) == 2
    assert _cells(model, "3.1.1", "MQTT-3.12.4-1")["mosquitto 2.0.11"].outcome == "fail"
    assert _cells(model, "3.1.1", "MQTT-3.1.2.7")["mosquitto 2.0.11"].outcome == "error"
    assert _cells(model, "5.0", "MQTT-3.1.2-22")["mosquitto 2.0.11"].outcome == "deviation"
    assert _cells(model, "5.0", "MQTT-3.1.2-22")["mosquitto 2.0.11"].deviations == [101]
    # a server statement that no test names is untested in every run
    assert {c.outcome for c in _cells(model, "5.0", "MQTT-3.1.4-3").values()} == {"untested"}


def test_known_deviation_counts_only_for_its_statements(two_runs):
    model = build_model(two_runs)
    flags = _cells(model, "5.0", "MQTT-2.1.3-1")["mosquitto 2.0.11"]
    assert (flags.outcome, flags.deviations) == ("deviation", [102])  # #102 names MQTT-2.1.3-1 for 5.0
    pubrel = _cells(model, "5.0", "MQTT-3.6.1-1")["mosquitto 2.0.11"]
    # the PINGREQ case stopped at #102: for the PUBREL statement only the PUBREL case decides
    assert (pubrel.outcome, pubrel.deviations, len(pubrel.tests), len(pubrel.ignored)) == ("pass", [], 2, 1)
    mosquitto = two_runs[1]
    pingreq = mosquitto.tests[3]
    assert counts_for(pingreq, "MQTT-2.1.3-1") and not counts_for(pingreq, "MQTT-3.6.1-1")


def test_unknown_statement_ids_are_listed(two_runs):
    model = build_model(two_runs)
    assert [(u.run, u.version, u.nodeid, u.statement) for u in model["unknown"]] == [
        ("refbroker 0.1.0", "5.0", "t.py::test_typo[v5.0]", "MQTT-9.9.9-9")]
    assert "unknown statement id 'MQTT-9.9.9-9' for MQTT 5.0" in model["unknown"][0].message
    page = render(two_runs)
    assert "1 statement id(s) in the results that the catalogue does not know" in page
    assert "MQTT-9.9.9-9" in page


def test_wrong_version_id_gets_a_hint(tmp_path):
    run = load_run(write(tmp_path / "r.json", results([record("t::a", ["MQTT-3.1.2.7"], "5.0")])))
    (unknown,) = build_model([run])["unknown"]
    assert unknown.statement == "MQTT-3.1.2.7"
    assert "it exists in MQTT 3.1.1; ids are numbered per version" in unknown.message


def test_summary_counts(two_runs):
    model = build_model(two_runs)
    summary = {(s["run"].label, s["version"]): s for s in model["summaries"]}
    mos5 = summary[("mosquitto 2.0.11", "5.0")]
    assert mos5["counts"]["deviation"] == 2 and mos5["counts"]["pass"] == 2
    assert mos5["tests"] == {"deviation": 2, "pass": 2, "not-applicable": 1}
    assert mos5["total"] == sum(mos5["counts"].values())
    assert summary[("refbroker 0.1.0", "3.1.1")]["tests"] == {"pass": 2}


def test_observed_deviations(two_runs):
    model = build_model(two_runs)
    assert model["observed"][102] == [("mosquitto 2.0.11", 1)]
    assert model["observed"][101] == [("mosquitto 2.0.11", 1)]
    assert model["observed"][13] == []


def test_reason_text_drops_the_repeated_deviation_text(two_runs):
    mosquitto = two_runs[1]
    assert reason_text(mosquitto.tests[3]) == "Observed: c1 00 answered with d0 00"
    assert reason_text(mosquitto.tests[2]) == "no PINGRESP"


class _Cells(HTMLParser):
    """Collects the matrix cells' attributes and text, and element ids."""

    def __init__(self):
        super().__init__()
        self.cells: list[dict] = []
        self.ids: set[str] = set()
        self._row: str | None = None
        self._cell: dict | None = None

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "id" in attributes:
            self.ids.add(attributes["id"])
        if tag == "tr" and "srow" in (attributes.get("class") or ""):
            self._row = attributes["id"]
        if tag == "td" and "cell" in (attributes.get("class") or "").split() and self._row:
            self._cell = {**attributes, "row": self._row, "text": "", "links": []}
            self.cells.append(self._cell)
        if tag == "a" and self._cell is not None:
            self._cell["links"].append(attributes["href"])

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data


def test_html_cells_titles_and_links(two_runs):
    page = render(two_runs)
    parser = _Cells()
    parser.feed(page)
    cells = {(c["row"], c["data-broker"]): c for c in parser.cells}
    deviation = cells[("s-5.0-MQTT-3.1.2-22", "mosquitto 2.0.11")]
    assert deviation["data-outcome"] == "deviation" and deviation["data-deviation"] == "101"
    assert deviation["text"].strip() == "deviation #101"
    d101 = DEVIATIONS[101]
    assert f"known deviation #101 ({d101.reference}): {d101.title}" in deviation["title"]
    # every link of a cell leads to a test's details in the page
    for cell in parser.cells:
        for href in cell["links"]:
            assert href[1:] in parser.ids
    fail = cells[("s-3.1.1-MQTT-3.12.4-1", "mosquitto 2.0.11")]
    assert (fail["data-outcome"], fail["text"].strip()) == ("fail", "FAIL")
    assert cells[("s-5.0-MQTT-3.1.4-3", "refbroker 0.1.0")]["text"].strip() == "untested"
    # the deviations table, with anchors the test details link to
    for number in DEVIATIONS:
        assert f"dev-{number}" in parser.ids
    assert 'href="#dev-102"' in page  # the details of the #102 test link to the deviations table
    assert DEVIATIONS[102].reference in html.unescape(page)
    assert "no interop results in this report" in page


def test_interop_table(tmp_path, two_runs):
    interop = load_run(write(tmp_path / "interop.json", {"interop": [
        {"client": "paho-mqtt 2.1", "broker": "mosquitto 2.0.11", "scenario": "qos1 round trip", "outcome": "pass"},
        {"client": "paho-mqtt 2.1", "broker": "refbroker 0.1.0", "scenario": "qos1 round trip", "outcome": "fail",
         "reason": "PUBACK missing"},
        {"client": "mosquitto_pub", "broker": "refbroker 0.1.0", "scenario": "will", "outcome": "not-applicable"}]}))
    runs = [*two_runs, interop]
    model = build_model(runs)
    assert model["interop"]["brokers"] == ["mosquitto 2.0.11", "refbroker 0.1.0"]
    rows = {(r["scenario"], r["client"]): [c["outcome"] for c in r["cells"]] for r in model["interop"]["rows"]}
    assert rows == {("qos1 round trip", "paho-mqtt 2.1"): ["pass", "fail"],
                    ("will", "mosquitto_pub"): ["untested", "not-applicable"]}
    assert len(model["matrices"][0]["columns"]) == 2  # an interop-only file is no matrix column
    page = render(runs)
    assert 'id="interop-table"' in page and "no interop results in this report" not in page
    assert "PUBACK missing" in page


def test_write_report_is_one_self_contained_file(tmp_path, two_runs):
    path = write_report(two_runs, tmp_path / "out" / "html")
    assert path == tmp_path / "out" / "html" / "index.html"
    page = path.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    # no external resources: no src= or stylesheet links, every href is an in-page anchor or a relative capture
    assert not re.search(r"<script[^>]+src=", page) and "<link" not in page
    assert not re.search(r"""href=["']https?:""", page)
    for element_id in ("f-version", "f-broker", "f-failed", "f-tested", "f-diff-a", "f-diff-b", "f-text", "f-count",
                       "summary", "matrix", "deviations", "interop", "tests"):
        assert f'id="{element_id}"' in page
    assert list((tmp_path / "out" / "html").iterdir()) == [path]


def test_empty_and_error_runs_render(tmp_path):
    run = load_run(write(tmp_path / "e.json", results([record("t::a", ["MQTT-3.12.4-1"], outcome="error",
                                                              reason="HarnessError: did not start")],
                                                      versions=("3.1.1",), error="refbroker did not start")))
    page = render([run])
    assert "the broker target could not be used" in page and "refbroker did not start" in page
    interop_only = load_run(write(tmp_path / "i.json", {"interop": []}))
    assert "no conformance tests in these files" in render([interop_only])
