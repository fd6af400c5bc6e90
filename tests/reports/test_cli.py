"""`python -m reports build`: exit codes, messages, and the report file."""

from __future__ import annotations

import subprocess
import sys

from reports.__main__ import main
from reports.build_command import EXIT_BAD_INPUT, EXIT_OK, EXIT_STRICT

from .helpers import record, results, write


def _good(tmp_path, statements=("MQTT-3.12.4-1",)):
    return write(tmp_path / "good.json", results([record("t::a", list(statements))]))


def test_build_writes_the_report_and_prints_counts(tmp_path, capsys):
    out = tmp_path / "html"
    assert main(["build", str(_good(tmp_path)), "-o", str(out)]) == EXIT_OK
    captured = capsys.readouterr()
    assert (out / "index.html").is_file()
    assert f"report written: {(out / 'index.html').resolve()}" in captured.out
    assert "refbroker 0.1.0 MQTT 5.0: " in captured.out and "1 pass" in captured.out
    assert captured.err == ""


def test_missing_file_exits_2_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "html"
    assert main(["build", str(_good(tmp_path)), str(tmp_path / "nope.json"), "-o", str(out)]) == EXIT_BAD_INPUT
    captured = capsys.readouterr()
    assert captured.err.strip() == f"error: {tmp_path / 'nope.json'}: no such results file"
    assert not out.exists()


def test_bad_file_exits_2(tmp_path, capsys):
    bad = write(tmp_path / "bad.json", '{"tests": [{"nodeid": "t::a", "protocol_version": "5.0", "outcome": "meh"}]}')
    assert main(["build", str(bad), "-o", str(tmp_path / "html")]) == EXIT_BAD_INPUT
    assert "test t::a: unknown outcome 'meh'" in capsys.readouterr().err


def test_unknown_statement_ids_warn_and_fail_with_strict(tmp_path, capsys):
    path = _good(tmp_path, ("MQTT-3.12.4-1", "MQTT-77.1-1"))
    assert main(["build", str(path), "-o", str(tmp_path / "html")]) == EXIT_OK
    err = capsys.readouterr().err
    assert "warning: unknown statement id MQTT-77.1-1 (MQTT 5.0) in t::a [refbroker 0.1.0]" in err
    assert main(["build", str(path), "-o", str(tmp_path / "html"), "--strict"]) == EXIT_STRICT
    assert "error: --strict: 1 unknown statement id(s)" in capsys.readouterr().err
    assert (tmp_path / "html" / "index.html").is_file()  # written all the same


def test_usage_errors_exit_2(tmp_path):
    for argv in ([], ["build"], ["frobnicate"]):
        run = subprocess.run([sys.executable, "-m", "reports", *argv], capture_output=True, text=True, check=False, cwd=tmp_path)
        assert run.returncode == 2, argv
        assert "usage: python -m reports" in run.stderr


def test_module_entry_point(tmp_path):
    run = subprocess.run([sys.executable, "-m", "reports", "build", str(_good(tmp_path)), "-o", str(tmp_path / "o")],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().endswith(str((tmp_path / "o" / "index.html").resolve()))
