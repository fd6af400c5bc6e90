"""The local test.mosquitto.org: `refbroker --test-server` writes its files and runs; the policy checks
(python -m conformance.policy run, which prints the listener x check table) pass on refbroker, and on
mosquitto with the same layout fail exactly where mosquitto.conf cannot express the public server's
rules for '#'.

    pytest tests/security/test_test_server.py -q
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conformance.transports import Endpoint, open_stream
from refbroker.protocol import MQTT_3_1_1, Connect
from refbroker.testserver import LISTENERS
from refbroker.testserver.layout import free_base_port

from .brokers import BrokerProcess, require

#: the policy checks mosquitto 2.0.11 fails with the test server's mosquitto.conf, and why
MOSQUITTO_DIFFERENCES = {
    "test_anonymous_clients_may_not_subscribe_to_every_topic":
        "mosquitto grants '#' to anonymous clients (SUBACK 0x00): its ACL file can deny topics, not one filter",
    "test_only_the_wildcard_user_subscribes_to_every_topic":
        "mosquitto grants '#' to rw, ro and wo (SUBACK 0x00) for the same reason",
    "test_wildcard_subscription_lasts_its_lifetime":
        "mosquitto keeps the wildcard user's '#' subscription: no setting removes a subscription after a time",
}
#: what each of them shows in the failure message
MOSQUITTO_EVIDENCE = {
    "test_anonymous_clients_may_not_subscribe_to_every_topic": "subscription to '#' was granted: SUBACK(",
    "test_only_the_wildcard_user_subscribes_to_every_topic": "subscription to '#' was granted: SUBACK(",
    "test_wildcard_subscription_lasts_its_lifetime": "the subscription to '#' still delivered",
}


@pytest.fixture(scope="module")
def server_files():
    directory = Path(tempfile.mkdtemp(prefix="test-server-"))
    directory.chmod(0o755)  # mosquitto started as root reads the files as user mosquitto
    out = directory / "layout"
    result = subprocess.run([sys.executable, "-m", "refbroker", "--test-server", "--write-only", "--out", str(out),
                             "--base-port", str(free_base_port())], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    yield out, result.stdout
    shutil.rmtree(directory, ignore_errors=True)


def test_the_command_prints_the_table_and_writes_both_configs(server_files):
    out, printed = server_files
    layout = json.loads((out / "layout.json").read_text())
    assert [entry["public_port"] for entry in layout["listeners"]] == [spec.public_port for spec in LISTENERS]
    for entry in layout["listeners"]:
        assert f"{entry['port']:>6}  {entry['public_port']:>18}  {entry['purpose']}" in printed
    for name in ("mosquitto.conf", "refbroker.conf", "passwords", "acl", "ca.crt", "second-ca.crt", "server.crt",
                 "server-expired.crt", "server-second-ca.crt", "client.crt"):
        assert (out / name).is_file(), name
    assert (out / "ca.key").stat().st_mode & 0o077 == 0, "the CA key is readable by others"
    checked = subprocess.run([sys.executable, "-m", "refbroker", "-c", str(out / "mosquitto.conf"), "--test-config"],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_client_certificate_command_issues_certificates_of_the_ca(server_files):
    out, _ = server_files
    result = subprocess.run([sys.executable, "-m", "refbroker.testserver", "client-cert", str(out), "sensor-7"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    layout = json.loads((out / "layout.json").read_text())
    port = next(entry["port"] for entry in layout["listeners"] if entry["client_certificate"])
    with BrokerProcess("refbroker", (out / "refbroker.conf").read_text(), out.parent / "run-cert",
                       wait_ports=[port]):
        endpoint = Endpoint("tls", "127.0.0.1", port, cafile=str(out / "ca.crt"),
                            certfile=str(out / "clients" / "sensor-7.crt"), keyfile=str(out / "clients" / "sensor-7.key"))
        with open_stream(endpoint, timeout=5) as sock:
            sock.sendall(Connect(client_id="sensor-7").encode(MQTT_3_1_1))
            assert sock.recv(4) == b"\x20\x02\x00\x00"
    bad = subprocess.run([sys.executable, "-m", "refbroker.testserver", "client-cert", str(out.parent / "nowhere"), "x"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "no test server CA" in bad.stderr and "Traceback" not in bad.stderr


def _policy_run(kind: str, out: Path, config: Path, tmp: Path) -> tuple[dict[str, str], dict, str]:
    """The policy checks against the broker `kind` started with `config`, as a user runs them
    (python -m conformance.policy run): {test id: outcome}, the results file and the printed table."""
    require(kind)
    layout = json.loads((out / "layout.json").read_text())
    results_file = tmp / f"policy-{kind}.json"
    with BrokerProcess(kind, config.read_text(), tmp / f"run-{kind}",
                       wait_ports=[entry["port"] for entry in layout["listeners"]]) as broker:
        done = subprocess.run([sys.executable, "-m", "conformance.policy", "run", str(out), "--label", kind,
                               "--results", str(results_file)], capture_output=True, text=True, timeout=600, cwd=tmp)
        exited = broker.process.poll()
        assert exited is None, f"{kind} exited during the policy run (status {exited}):\n{broker.logs()[-3000:]}"
    assert "Traceback" not in done.stderr, done.stderr
    results = json.loads(results_file.read_text())
    outcomes = {f"{r['check']}[{r['listener']}{'-' + r['variant'] if r['variant'] else ''}]": r["outcome"]
                for r in results["checks"]}
    expected_status = 0 if all(outcome == "pass" for outcome in outcomes.values()) else 1
    assert done.returncode == expected_status, done.stdout[-3000:] + done.stderr
    return outcomes, results, done.stdout


def _table_rows(printed: str, results: dict) -> dict[str, list[str]]:
    """The printed table's cells per listener id (the row that starts with the listener's port)."""
    rows = {}
    for listener in results["listeners"]:
        line = next(line for line in printed.splitlines() if line.startswith(f"{listener['port']}  "))
        rows[listener["id"]] = line.removesuffix(listener["purpose"]).split()[3:]
    return rows


def test_the_policy_holds_on_refbroker(server_files, tmp_path):
    """Every check on every listener passes, and the printed table says so: one row per listener of the
    layout, every cell "pass" or "n.a.", and the rows of the authenticated listeners have the user checks."""
    out, _ = server_files
    outcomes, results, printed = _policy_run("refbroker", out, out / "refbroker.conf", tmp_path)
    assert len(outcomes) > 30, outcomes
    assert not [name for name, outcome in outcomes.items() if outcome != "pass"], outcomes
    assert results["broker_version"].startswith("refbroker"), results["broker_version"]
    rows = _table_rows(printed, results)
    assert len(rows) == len(LISTENERS)
    assert all(set(cells) <= {"pass", "n.a."} for cells in rows.values()), rows
    for listener in results["listeners"]:
        passed = rows[listener["id"]].count("pass")
        ran = sum(1 for r in results["checks"] if r["listener"] == listener["id"])
        assert passed == ran, f"{listener['id']}: {passed} pass cells, {ran} checks made"
    assert f"{len(outcomes)} checks: {len(outcomes)} pass" in printed


def test_the_policy_on_mosquitto_differs_only_where_its_config_cannot_say_it(server_files, tmp_path):
    """mosquitto 2.0.11 with the same layout (mosquitto.conf): every listener, user and right as on
    refbroker; only the rules for '#' (MOSQUITTO_DIFFERENCES) fail, and the table lists each failure
    with what mosquitto answered."""
    out, _ = server_files
    tmp_path.chmod(0o755)
    outcomes, results, printed = _policy_run("mosquitto", out, out / "mosquitto.conf", tmp_path)
    failed = {name.split("[")[0] for name, outcome in outcomes.items() if outcome == "fail"}
    assert failed == set(MOSQUITTO_DIFFERENCES), outcomes
    for record in results["checks"]:  # each for the reason given, not because a connection failed
        if record["outcome"] == "fail":
            assert MOSQUITTO_EVIDENCE[record["check"]] in record["message"], record
    assert set(outcomes.values()) == {"pass", "fail"}, outcomes
    assert results["broker_version"].startswith("mosquitto version"), results["broker_version"]
    assert "granted: SUBACK(packet_id=1, reason_codes=[0x00])" in printed, printed


def test_a_partial_run_tables_only_the_checks_that_ran(server_files, tmp_path):
    """Arguments after -- go to pytest: with -k only the chosen checks are run and tabled, the others
    are neither failures nor errors."""
    out, _ = server_files
    layout = json.loads((out / "layout.json").read_text())
    results_file = tmp_path / "partial.json"
    with BrokerProcess("refbroker", (out / "refbroker.conf").read_text(), tmp_path / "run-partial",
                       wait_ports=[entry["port"] for entry in layout["listeners"]]):
        done = subprocess.run([sys.executable, "-m", "conformance.policy", "run", str(out), "--results",
                               str(results_file), "--", "-q", "-k", "anonymous_clients_where_allowed"],
                              capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    checks = json.loads(results_file.read_text())["checks"]
    expected = [entry for entry in layout["listeners"]
                if entry["certificate"] != "expired" and not entry["client_certificate"]]
    assert {record["check"] for record in checks} == {"test_anonymous_clients_where_allowed"}
    assert len(checks) == len(expected) and {record["outcome"] for record in checks} == {"pass"}, checks
    header = next(line for line in done.stdout.splitlines() if line.startswith("port "))
    assert header.split() == ["port", "public", "transport", "anon", "login", "what", "it", "is", "for"]
