"""Bad or foreign persistence files: refbroker refuses to start with a message that says what the file
is, and leaves the file as it was (never a silent reset). Run as a process, as a user would."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys

import pytest

from refbroker.persistence.schema import APPLICATION_ID, SCHEMA_VERSION

from ..broker.processes import BrokerProcess, Client, mosquitto_or_skip


def start_on(tmp_path, prepare) -> tuple[subprocess.CompletedProcess, bytes, bytes]:
    """Run refbroker on a persistence file made by `prepare(path)`: (result, file before, file after)."""
    path = tmp_path / "state.db"
    prepare(path)
    before = path.read_bytes() if path.is_file() else b""
    config = tmp_path / "broker.conf"
    config.write_text(f"listener 0 127.0.0.1\nallow_anonymous true\npersistence true\n"
                      f"persistence_location {tmp_path}\npersistence_file state.db\n")
    result = subprocess.run([sys.executable, "-m", "refbroker", "-c", str(config)], capture_output=True, text=True,
                            timeout=20)
    after = path.read_bytes() if path.is_file() else b""
    return result, before, after


def assert_refused(result, *phrases):
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "Traceback" not in output
    for phrase in phrases:
        assert phrase in output, output


def test_a_text_file_is_refused_and_left_alone(tmp_path):
    result, before, after = start_on(tmp_path, lambda path: path.write_text("my notes\n"))
    assert_refused(result, "is not an SQLite database", "will not overwrite it")
    assert before == after


def test_another_programs_sqlite_database_is_refused(tmp_path):
    def prepare(path):
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE customers (name TEXT)")
            db.execute("INSERT INTO customers VALUES ('ada')")
    result, before, after = start_on(tmp_path, prepare)
    assert_refused(result, "SQLite database of another program", "customers")
    assert hashlib.sha256(before).digest() == hashlib.sha256(after).digest()


def test_a_database_of_a_newer_refbroker_is_refused(tmp_path):
    def prepare(path):
        with sqlite3.connect(path) as db:
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
            db.execute("CREATE TABLE future (x)")
    result, before, after = start_on(tmp_path, prepare)
    assert_refused(result, "written by a newer refbroker", f"schema version {SCHEMA_VERSION + 1}")
    assert before == after


def test_a_damaged_refbroker_database_is_refused(tmp_path):
    def prepare(path):
        with sqlite3.connect(path) as db:
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("CREATE TABLE broker (schema_version INTEGER)")
    result, _, _ = start_on(tmp_path, prepare)
    assert_refused(result, "is damaged", "tables", "sessions")


def test_a_directory_where_the_file_should_be_is_refused(tmp_path):
    result, _, _ = start_on(tmp_path, lambda path: path.mkdir())
    assert_refused(result, "is a directory")


def test_a_missing_persistence_location_is_refused(tmp_path):
    config = tmp_path / "broker.conf"
    config.write_text(f"listener 0 127.0.0.1\npersistence true\npersistence_location {tmp_path}/nowhere/\n")
    result = subprocess.run([sys.executable, "-m", "refbroker", "-c", str(config)], capture_output=True, text=True,
                            timeout=20)
    assert_refused(result, "is not a directory")


def test_mosquittos_own_persistence_file_is_recognised_and_refused(tmp_path):
    mosquitto_or_skip()
    # A real mosquitto.db, written by mosquitto 2.0.11
    mosquitto = BrokerProcess("mosquitto", tmp_path, "listener {port} 127.0.0.1\nallow_anonymous true\n"
                                                     "persistence true\npersistence_location {dir}/\n").start()
    client = Client(mosquitto.port)
    client.connect("c")
    client.publish("kept", b"by mosquitto", 1, retain=True)
    mosquitto.stop()
    written = (mosquitto.dir / "mosquitto.db").read_bytes()
    assert written
    result, before, after = start_on(tmp_path, lambda path: path.write_bytes(written))
    assert_refused(result, "is mosquitto's own persistence file", "cannot read it")
    assert before == after == written
