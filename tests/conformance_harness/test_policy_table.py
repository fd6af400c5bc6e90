"""The listener x check table of a policy run (conformance/policy/table.py) and its command line
(python -m conformance.policy): every check of test_policy.py is a column, cells come from the verdicts,
user mistakes get a message and an exit status, not a traceback. The table of real runs against
refbroker and mosquitto is checked in tests/security/test_test_server.py.

    pytest tests/conformance_harness/test_policy_table.py -q
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import conformance.policy
from conformance.policy.table import (CHECKS, RESULTS_SCHEMA, ResultsError, columns, render_markdown, render_text,
                                      validate)
from conformance.targets import free_port

LISTENERS = [
    {"id": "1883-tcp", "port": 31000, "public_port": 1883, "transport": "tcp", "authenticated": False,
     "certificate": "", "client_certificate": False, "purpose": "MQTT, unencrypted, unauthenticated"},
    {"id": "1884-tcp", "port": 31001, "public_port": 1884, "transport": "tcp", "authenticated": True,
     "certificate": "", "client_certificate": False, "purpose": "MQTT, unencrypted, authenticated"},
]


def _results(checks: list[dict]) -> dict:
    return {"schema": RESULTS_SCHEMA, "label": "example", "layout": "x/layout.json", "host": "127.0.0.1",
            "broker_version": "mosquitto version 2.0.11", "started": "2026-01-01 00:00:00 UTC",
            "listeners": LISTENERS, "checks": checks}


def _check(check: str, listener: str, outcome: str = "pass", variant: str = "", message: str = "") -> dict:
    return {"check": check, "listener": listener, "variant": variant, "outcome": outcome, "message": message}


EXAMPLE = _results([
    _check("test_anonymous_clients_where_allowed", "1883-tcp"),
    _check("test_anonymous_clients_where_allowed", "1884-tcp"),
    _check("test_anonymous_clients_may_not_subscribe_to_every_topic", "1883-tcp", "fail",
           message="AssertionError: 1883-tcp: an anonymous subscription to '#' was granted: SUBACK(... [0x00])"),
    *[_check("test_user_rights", "1884-tcp", variant=user) for user in ("rw", "ro", "wo")],
])


def test_every_policy_check_is_a_column_once():
    """CHECKS names each test function of test_policy.py exactly once (a new check gets its column)."""
    source = Path(conformance.policy.__file__).with_name("test_policy.py").read_text(encoding="utf-8")
    tests = [node.name for node in ast.parse(source).body
             if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")]
    assert sorted(check.test for check in CHECKS) == sorted(tests)


def test_the_text_table_has_a_row_per_listener_and_a_cell_per_check():
    text = render_text(EXAMPLE)
    rows = {line.split()[0]: line for line in text.splitlines() if line[:5] in ("31000", "31001")}
    assert set(rows) == {"31000", "31001"}
    assert [head for _, _, head in columns(EXAMPLE)] == ["anon login", "anon # refused", "rw rights", "ro rights",
                                                          "wo rights"]
    assert rows["31000"].split()[:8] == ["31000", "1883", "tcp", "pass", "fail", "n.a.", "n.a.", "n.a."]
    assert rows["31001"].split()[:8] == ["31001", "1884", "tcp", "pass", "n.a.", "pass", "pass", "pass"]
    assert rows["31001"].endswith("MQTT, unencrypted, authenticated")
    assert "6 checks: 5 pass, 1 fail" in text
    assert "1883-tcp / anon # refused: fail: AssertionError: 1883-tcp: an anonymous subscription" in text
    assert "broker says: mosquitto version 2.0.11" in text


def test_the_markdown_table_has_the_same_cells():
    lines = render_markdown(EXAMPLE).splitlines()
    table = [line for line in lines if line.startswith("|")]
    assert table[0] == ("| what it is for | port | public | transport | anon login | anon # refused | rw rights | "
                        "ro rights | wo rights |")
    assert table[1].count("---") == 9
    assert table[2] == ("| MQTT, unencrypted, unauthenticated | 31000 | 1883 | tcp | pass | **fail** | n.a. | n.a. | "
                        "n.a. |")
    assert table[3] == "| MQTT, unencrypted, authenticated | 31001 | 1884 | tcp | pass | n.a. | pass | pass | pass |"


def test_a_skipped_or_broken_check_says_so_with_its_reason():
    results = _results([_check("test_client_certificate_is_required", "1883-tcp", "skip",
                               message="1883-tcp needs a client certificate: give --policy-client-cert"),
                        _check("test_user_rights", "1884-tcp", "error", variant="rw", message="did not run")])
    text = render_text(results)
    assert "1883-tcp / client cert: skip: 1883-tcp needs a client certificate" in text
    assert "1884-tcp / rw rights: error: did not run" in text
    assert "2 checks: 1 error, 1 skip" in text


@pytest.mark.parametrize("bad", [[], {"schema": "mqtt-conformance-results/1", "tests": []},
                                 {"schema": RESULTS_SCHEMA, "listeners": []}])
def test_other_files_are_not_taken_for_policy_results(bad):
    with pytest.raises(ResultsError):
        validate(bad, "f.json")


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "conformance.policy", *args], capture_output=True, text=True,
                          timeout=120, cwd=cwd)


def test_the_table_command_prints_saved_results_as_text_and_markdown(tmp_path):
    saved = tmp_path / "policy-example.json"
    saved.write_text(json.dumps(EXAMPLE))
    text, markdown = _cli("table", str(saved)), _cli("table", str(saved), "--format", "markdown")
    assert text.returncode == 0 and markdown.returncode == 0, text.stderr + markdown.stderr
    assert text.stdout.strip() == render_text(EXAMPLE)
    assert markdown.stdout.strip() == render_markdown(EXAMPLE)


def test_user_mistakes_get_a_message_not_a_traceback(tmp_path):
    not_json, other = tmp_path / "not.json", tmp_path / "suite.json"
    not_json.write_text("{")
    other.write_text(json.dumps({"schema": "mqtt-conformance-results/1", "tests": []}))
    cases = [
        (("table", str(tmp_path / "missing.json")), 2, "cannot read"),
        (("table", str(not_json)), 2, "is not JSON"),
        (("table", str(other)), 2, "is not the results of a policy run"),
        (("run", str(tmp_path / "nowhere")), 2, "--policy-layout"),
        (("tabel", str(other)), 2, "did you mean table?"),
    ]
    for args, status, message in cases:
        done = _cli(*args)
        assert done.returncode == status and message in done.stderr, (args, done.returncode, done.stderr)
        assert "Traceback" not in done.stderr, done.stderr


def test_run_refuses_a_layout_nobody_serves(tmp_path):
    """Nothing listens on the layout's ports: one clear line and exit 3, not a table of failures."""
    layout = {"host": "127.0.0.1", "ca": None, "second_ca": None, "users": {"rw": "readwrite"},
              "root_wildcard_user": "wildcard", "root_wildcard_lifetime": 20,
              "listeners": [{key: value for key, value in entry.items() if key != "id"} | {"port": free_port()}
                            for entry in LISTENERS]}
    (tmp_path / "layout.json").write_text(json.dumps(layout))
    done = _cli("run", str(tmp_path), cwd=tmp_path)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "nothing listens on 127.0.0.1" in done.stderr and "refbroker --test-server" in done.stderr
    assert not (tmp_path / "results").exists()


def test_help_explains_both_commands():
    done = _cli("--help")
    assert done.returncode == 0
    for words in ("run", "table", "listener x check table", "exit status"):
        assert words in done.stdout
    assert "PYTEST-ARGS" in _cli("run", "--help").stdout or "to pytest" in _cli("run", "--help").stdout
