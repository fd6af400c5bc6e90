"""The report's newer states and the CI driver: MQTT 3.1, "not checkable", "not supported", field names of
3.1.1 traces, results named after the target, and the exit status of `python -m reports run`."""

from __future__ import annotations

import sys

from conformance.catalogue import load_catalogue
from reports.build import build_model, cell_outcome, render, trace_summary
from reports.results import load_run, load_runs
from reports.run import gate, main as run_main, results_name

from .helpers import packet, record, results, write

NOT_CHECKABLE = next(st for st in load_catalogue().values() if st.version == "5.0" and not st.checkable
                     and st.actor in ("server", "both"))


def _matrix(model, version):
    return next(m for m in model["matrices"] if m["version"] == version)


def _cell(model, version, statement_id, column=0):
    for _, rows in _matrix(model, version)["groups"]:
        for row in rows:
            if row.statement.id == statement_id:
                return row.cells[column]
    raise KeyError(statement_id)


def test_v31_matrix_and_order(tmp_path):
    doc = results([record("t::a", ["V31-3.2-a"], version="3.1"), record("t::b", ["MQTT-3.12.4-1"], version="3.1.1")],
                  versions=("3.1", "3.1.1", "5.0"))
    model = build_model(load_runs([write(tmp_path / "r.json", doc)]))
    assert [m["version"] for m in model["matrices"]] == ["3.1", "3.1.1", "5.0"]
    assert _cell(model, "3.1", "V31-3.2-a").outcome == "pass"
    assert _cell(model, "3.1", "V31-3.1-b").outcome == "untested"


def test_not_checkable_is_never_a_pass(tmp_path):
    doc = results([record("t::a", [NOT_CHECKABLE.id])])
    model = build_model(load_runs([write(tmp_path / "r.json", doc)]))
    assert _cell(model, "5.0", NOT_CHECKABLE.id).outcome == "not-checkable"
    failing = results([record("t::a", [NOT_CHECKABLE.id], outcome="fail", reason="boom")])
    model = build_model(load_runs([write(tmp_path / "f.json", failing)]))
    assert _cell(model, "5.0", NOT_CHECKABLE.id).outcome == "fail"  # a failure is still news
    assert cell_outcome(NOT_CHECKABLE, []) == "not-checkable"
    checkable = load_catalogue()[("5.0", "MQTT-3.12.4-1")]
    assert cell_outcome(checkable, []) == "untested" and cell_outcome(checkable, ["pass"], True) == "unsupported"


def test_unsupported_version_column(tmp_path):
    doc = results([record("t::a", ["MQTT-3.12.4-1"], version="3.1.1"),
                   record("t::b", ["MQTT-3.12.4-1"], version="5.0", outcome="fail", reason="CONNACK 0x84")],
                  unsupported_versions={"5.0": "CONNECT level 5 refused with CONNACK 0x01"})
    run = load_run(write(tmp_path / "r.json", doc))
    assert run.unsupported_versions == {"5.0": "CONNECT level 5 refused with CONNACK 0x01"}
    model = build_model([run])
    v5 = _matrix(model, "5.0")
    assert {row.cells[0].outcome for _, rows in v5["groups"] for row in rows} == {"unsupported"}
    summary = next(s for s in model["summaries"] if s["version"] == "5.0")
    assert summary["unsupported"] == "CONNECT level 5 refused with CONNACK 0x01"
    html = render([run], model)
    assert "the broker does not support MQTT 5.0: CONNECT level 5 refused with CONNACK 0x01" in html
    listed = write(tmp_path / "l.json", results([], unsupported_versions=["3.1"]))
    assert load_run(listed).unsupported_versions == {"3.1": "the broker does not support it"}


def test_trace_field_names_follow_the_version(tmp_path):
    assert trace_summary("CONNECT(client_id='a', clean_start=True)", "CONNECT", "3.1.1") == \
        "CONNECT(client_id='a', clean_session=True)"
    assert trace_summary("CONNACK(reason_code=0x00, session_present=False)", "CONNACK", "3.1") == \
        "CONNACK(return_code=0x00, session_present=False)"
    assert trace_summary("DISCONNECT(reason_code=0x00)", "DISCONNECT", "3.1.1") == "DISCONNECT()"
    assert trace_summary("CONNECT(clean_start=True)", "CONNECT", "5.0") == "CONNECT(clean_start=True)"
    trace = [{"client": "c", "packets": [packet(1000.0, "out", "CONNECT", "CONNECT(clean_start=True)", "10 00")]}]
    doc = results([record("t::a", ["MQTT-3.12.4-1"], version="3.1.1", traces=trace)])
    html = render(load_runs([write(tmp_path / "r.json", doc)]))
    assert "CONNECT(clean_session=True)" in html and "clean_start" not in html


def test_labelled_links_to_further_tests(tmp_path):
    doc = results([record("t::a", ["MQTT-3.12.4-1"]), record("t::b", ["MQTT-3.12.4-1"]),
                   record("t::c", ["MQTT-3.12.4-1"])])
    html = render(load_runs([write(tmp_path / "r.json", doc)]))
    assert '<span class="more-tests">other tests:' in html
    assert 'aria-label="test 2 of 3: b, pass"' in html and 'aria-label="test 3 of 3: c, pass"' in html


def test_results_name_and_gate(tmp_path):
    assert results_name(None) == "refbroker.json"
    assert results_name("127.0.0.1:1883") == "127.0.0.1_1883.json"
    assert results_name("docker:mosquitto-2.0.21") == "docker_mosquitto-2.0.21.json"
    clean = load_run(write(tmp_path / "a.json", results([record("t::a", ["MQTT-3.12.4-1"]),
                                                         record("t::b", ["MQTT-3.1.4-3"], outcome="fail",
                                                                known_deviation=13)])))
    code, line = gate(clean)
    assert code == 0 and "1 known deviation(s)" in line and "OK" in line
    failing = load_run(write(tmp_path / "b.json", results([record("t::a", ["MQTT-3.12.4-1"], outcome="fail")])))
    code, line = gate(failing)
    assert code == 1 and "1 new failure(s)" in line and "FAILED" in line
    broken = load_run(write(tmp_path / "c.json", results([], error="connection refused")))
    assert gate(broken)[0] == 1


def test_run_against_refbroker_exit_status(tmp_path, capsys):
    """The driver end to end on the embedded refbroker, one section: results named after the target, the
    report written, exit 0; the same with a test that fails turns the exit status to 1."""
    out = tmp_path / "html"
    code = run_main(["--results-dir", str(tmp_path), "-o", str(out), "--section", "3.12", "--mqtt-version", "3.1.1",
                     "--junitxml", str(tmp_path / "junit.xml")])
    captured = capsys.readouterr().out
    assert code == 0, captured
    assert (tmp_path / "refbroker.json").is_file() and (out / "index.html").is_file()
    assert "refbroker 0.1.0: " in captured and ": OK (no failure)" in captured
    assert 'name="statement" value="MQTT-3.12.4-1"' in (tmp_path / "junit.xml").read_text()


def test_run_exit_status_on_failure_and_allow_failures(tmp_path, capsys, monkeypatch):
    """A suite whose test fails: exit 1 and the summary says why; --allow-failures: exit 0, and says so."""
    import subprocess

    def fake_pytest(command, check=False):
        results_arg = next(a for a in command if a.startswith("--results="))
        write(tmp_path / results_arg.split("=", 1)[1], results([record("t::a", ["MQTT-3.12.4-1"], outcome="fail",
                                                                        reason="no PINGRESP")]))
        return subprocess.CompletedProcess(command, 1)

    monkeypatch.setattr("reports.run.subprocess.run", fake_pytest)
    args = ["--results-dir", str(tmp_path), "-o", str(tmp_path / "html")]
    assert run_main(args) == 1
    assert "FAILED (a failure that is not a known deviation) -> exit 1" in capsys.readouterr().out
    assert run_main([*args, "--allow-failures"]) == 0
    assert "exit 0 because of --allow-failures" in capsys.readouterr().out


def test_run_without_results_is_exit_2(tmp_path, capsys):
    assert run_main(["--results-dir", str(tmp_path), "-o", str(tmp_path / "html"), "--statement", "NOPE-1"]) == 2
    captured = capsys.readouterr()
    assert "the suite wrote no results" in captured.err


def test_python_m_entry_points_have_help():
    import subprocess

    # refbroker's help has mosquitto's layout (no "usage:" line): it lists its options
    for module, expected in (("conformance", "usage:"), ("reports", "usage:"), ("interop", "usage:"),
                             ("bench", "usage:"), ("refbroker", "--test-config")):
        result = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and expected in result.stdout, (module, result.stdout, result.stderr)
    result = subprocess.run([sys.executable, "-m", "reports", "run", "--help"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0 and "--allow-failures" in result.stdout


def test_probed_versions_header_marks_unsupported(tmp_path):
    """The plugin's probe writes `versions`; a version with supported false is shown as not supported."""
    doc = results([record("t::a", ["MQTT-3.12.4-1"], version="3.1.1")], versions=("3.1", "3.1.1"))
    doc["versions"] = {"3.1": {"supported": False, "answer": "it refused an MQTT 3.1 CONNECT with CONNACK 20 02 00 01",
                               "limits": {}},
                       "3.1.1": {"supported": True, "answer": "CONNACK 20 02 00 00", "limits": {}}}
    run = load_run(write(tmp_path / "r.json", doc))
    assert run.unsupported_versions == {"3.1": "it refused an MQTT 3.1 CONNECT with CONNACK 20 02 00 01"}
    model = build_model([run])
    assert {row.cells[0].outcome for _, rows in _matrix(model, "3.1")["groups"] for row in rows} == {"unsupported"}


def test_a_selective_run_shows_not_selected_instead_of_untested(tmp_path):
    chosen = ["5.0", "MQTT-3.12.4-1"]
    doc = results([record("t::a", ["MQTT-3.12.4-1"])],
                  selection={"options": {"section": ["3.12"]}, "statements": [chosen]})
    run = load_run(write(tmp_path / "r.json", doc))
    assert run.selected_statements == {("5.0", "MQTT-3.12.4-1")}
    model = build_model([run])
    assert _cell(model, "5.0", "MQTT-3.12.4-1").outcome == "pass"
    assert _cell(model, "5.0", "MQTT-3.3.1-5").outcome == "not-selected"
    # without a selection in the header, a statement no test names is untested
    model = build_model([load_run(write(tmp_path / "all.json", results([record("t::a", ["MQTT-3.12.4-1"])])))])
    assert _cell(model, "5.0", "MQTT-3.3.1-5").outcome == "untested"
