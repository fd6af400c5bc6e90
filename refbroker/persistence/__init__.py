"""Persistence: the broker's state in an SQLite database, restored when the broker starts again.

    schema.py      the tables, the schema version, opening a file safely (foreign files refused)
    rows.py        core objects <-> rows (messages, properties as JSON, subscription options)
    store.py       Store: read everything at start; write what changed since the last save
    durability.py  Durability: when to save (mosquitto's autosave, or before every answer)

`Persistence` ties them to a running broker for the host (refbroker/host.py): `open` restores the
saved state into a fresh `Broker`, `after_input` / `on_deadline` save when the policy says so,
`save` saves now (SIGUSR1), `close` saves and closes (a clean stop). The core stays sans-IO: it only
marks what changed (core/changes.py); every read and write of the file happens here.

The schema, for a person with the sqlite3 shell: README.md beside this file.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from ..core.settings import Settings
from .durability import Durability
from .errors import PersistenceError
from .schema import SCHEMA_VERSION, open_database
from .store import Store

__all__ = ["Durability", "Persistence", "PersistenceError", "SCHEMA_VERSION"]


class Persistence:
    def __init__(self, settings: Settings, log: Callable[[str, str], None], written_by: str):
        self.path = settings.persistence_path
        self.durability = Durability.from_settings(settings)
        self.persistent_client_expiration = settings.persistent_client_expiration
        self.log = log
        self.written_by = written_by
        self.store: Store | None = None
        self.last_save = 0.0  # core time

    def open(self, broker, now: float) -> None:
        """Open (or create) the database and restore what it holds into `broker`, which must be new.
        PersistenceError if the file cannot be used: the broker must not start then."""
        directory = os.path.dirname(self.path) or "."
        if not os.path.isdir(directory):
            raise PersistenceError(f"persistence_location {directory!r} is not a directory.")
        connection = open_database(self.path, synchronous_full=True)
        self.store = Store(connection, self.written_by)
        try:
            state, was_online = self.store.load(time.time() - now, self.persistent_client_expiration)
        except Exception as error:  # a damaged file: say so, do not start
            connection.close()
            raise PersistenceError(f"{self.path}: cannot read the saved state ({error!r}).") from None
        broker.restore(state, now)
        self.last_save = now
        if state.sessions or state.retained or state.wills:
            self.log("notice", f"Restored {len(state.sessions)} sessions, {len(state.retained)} retained messages "
                               f"and {len(state.wills)} delayed wills from {self.path}.")
        if was_online:
            from ..core.changes import ChangeMarks
            self.store.save(broker, ChangeMarks(sessions=was_online), time.time() - now)
        self.log("information", f"Persistence: {self.path}; {self.durability.describe()}.")

    def after_input(self, broker, now: float) -> None:
        """The broker acted on an input: save now if the policy says so (before its actions are performed)."""
        if self.durability.save_after_input(broker.change_count):
            self._save(broker, now)

    def next_deadline(self) -> float | None:
        return self.durability.next_save(self.last_save)

    def on_deadline(self, broker, now: float) -> None:
        deadline = self.next_deadline()
        if deadline is not None and now >= deadline:
            self.save(broker, now)

    def save(self, broker, now: float) -> None:
        """Save now, and say so as mosquitto does (autosave, SIGUSR1, exit)."""
        self.log("information", f"Saving in-memory database to {self.path}.")  # as mosquitto
        self._save(broker, now)

    def _save(self, broker, now: float) -> None:
        import sqlite3
        self.last_save = now
        try:
            self.store.save(broker, broker.take_changes(), time.time() - now)
        except sqlite3.Error as error:
            raise PersistenceError(f"{self.path}: cannot save ({error}).") from None

    def close(self, broker, now: float) -> None:
        """A clean stop: save everything, fold the write-ahead log into the file, close it."""
        if self.store is None:
            return
        try:
            self.save(broker, now)
        finally:
            connection = self.store.connection
            try:
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                connection.close()
            self.store = None
