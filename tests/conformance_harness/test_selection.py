"""Choosing tests by statement: ids as -k keywords, --statement globs, --section, and
`python -m conformance list`; "did you mean" for mistyped ids, options and commands."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conformance.__main__ import main as conformance_main
from conformance.selection import Selection, matches_section, pattern_matches
from refbroker.cli_hints import suggestion_text

pytest_plugins = ["pytester"]

SUITE = '''
import pytest


@pytest.mark.spec("MQTT-3.3.1-5")
def test_retained(version):
    pass


@pytest.mark.spec("MQTT-3.8.4-1", version="5.0")
def test_suback(version):
    pass


@pytest.mark.spec("MQTT-3.1.2-7", version="3.1.1")
def test_alias(version):
    pass


@pytest.mark.spec("V31-3.9-a", version="3.1")
def test_v31(version):
    pass
'''


def _collected(pytester, *args) -> tuple[set[str], pytest.RunResult]:
    pytester.makepyfile(test_suite=SUITE)
    result = pytester.runpytest("-p", "no:cacheprovider", "--collect-only", "-q", *args)
    names = {line.split("::", 1)[1] for line in result.outlines if "::" in line}
    return names, result


def test_statement_ids_are_keywords(pytester):
    names, _ = _collected(pytester, "-k", "MQTT-3.3.1")
    assert names == {"test_retained[v3.1.1]", "test_retained[v5.0]"}
    # a version's ids only: MQTT-3.8.4-1 is tagged for 5.0
    names, _ = _collected(pytester, "-k", "MQTT-3.8.4-1")
    assert names == {"test_suback[v5.0]"}


def test_statement_globs_are_repeatable(pytester):
    names, _ = _collected(pytester, "--statement", "MQTT-3.3.1-*", "--statement", "v31-*")
    assert names == {"test_retained[v3.1.1]", "test_retained[v5.0]", "test_v31[v3.1]"}


def test_statement_alias_spelling_and_version(pytester):
    # 3.1.1 prints MQTT-3.1.2.7 where tools write MQTT-3.1.2-7: both select the test
    names, _ = _collected(pytester, "--statement", "MQTT-3.1.2-7", "--mqtt-version", "3.1.1")
    assert names == {"test_alias[v3.1.1]"}


def test_section_takes_subsections(pytester):
    names, _ = _collected(pytester, "--section", "3.8")
    assert names == {"test_suback[v5.0]"}
    names, _ = _collected(pytester, "--section", "3.3", "--mqtt-version", "5.0")
    assert names == {"test_retained[v5.0]"}


def test_unknown_statement_is_a_usage_error_with_suggestion(pytester):
    _, result = _collected(pytester, "--statement", "MQTT-3.3.1-55")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--statement 'MQTT-3.3.1-55' matches no statement*did you mean MQTT-3.3.1-5*"])
    _, result = _collected(pytester, "--section", "3.8", "--mqtt-version", "3.1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--section '3.8' has no statement in MQTT 3.1*"])


def test_matching_rules():
    assert pattern_matches("[MQTT-3.3.1-5]", "5.0", "MQTT-3.3.1-5")
    assert pattern_matches("mqtt-3.3.1-?", "5.0", "MQTT-3.3.1-5")
    assert not pattern_matches("MQTT-3.3.1-5", "5.0", "MQTT-3.3.1-50")
    assert matches_section("3.8.3.1", "3.8") and matches_section("3.8", "3.8.") and not matches_section("3.80", "3.8")
    selection = Selection(["MQTT-3.3.1-*"], [], ["5.0"])
    selection.check()
    with pytest.raises(ValueError, match="V31-3.1-a"):
        Selection(["V31-3.1-a"], [], ["5.0"]).check()  # a 3.1 id is not a 5.0 statement


def test_real_suite_section_selection():
    """The shipped suite: --section 3.8 selects SUBSCRIBE tests of every version, nothing else."""
    result = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--pyargs", "conformance",
                             "--collect-only", "-q", "--section", "3.8"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    names = [line for line in result.stdout.splitlines() if "::" in line]
    assert names and all("[v3.1]" not in name for name in names)
    assert any("test_subscribe.py" in name for name in names)


def test_list_command(capsys):
    assert conformance_main(["list", "--statement", "V31-3.2-*", "--version", "3.1"]) == 0
    out = capsys.readouterr().out
    assert "V31-3.2-a" in out and "test_v31.py::test_connack_has_no_session_present" in out
    assert "run them: pytest --pyargs conformance --broker=TARGET --statement 'V31-3.2-*'" in out
    assert conformance_main(["list", "--section", "3.1", "--version", "5.0", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    rows = document["5.0"]
    assert rows and all(r["section"] == "3.1" or r["section"].startswith("3.1.") for r in rows)
    assert all(r["status"] == "tested" and r["tests"] for r in rows if r["section"] == "3.1.2")
    assert conformance_main(["list", "--section", "4.7.3", "--version", "5.0", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["5.0"]
    assert any(r["status"] == "not checkable black-box" and r["reason"] and not r["tests"] for r in rows)


def test_list_refuses_unknown_statement(capsys):
    assert conformance_main(["list", "--statement", "MQTT-9.9.9-9"]) == 2
    assert "matches no statement" in capsys.readouterr().err


@pytest.mark.parametrize("argv, expected", [
    (["lst"], "invalid choice: 'lst'"),
    (["list", "--sectoin", "3.8"], "unrecognized arguments: --sectoin (did you mean --section?)"),
])
def test_mistyped_command_line_suggests(capsys, argv, expected):
    with pytest.raises(SystemExit) as exit_info:
        conformance_main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert expected in err and "did you mean" in err


def test_suggestion_text():
    assert suggestion_text("--prot", ["--port", "--verbose"]) == " (did you mean --port?)"
    assert suggestion_text("--zzz", ["--port"]) == ""
