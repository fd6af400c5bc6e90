"""The database file: its schema, its version, and opening it safely.

One SQLite database (the standard library's sqlite3) in WAL mode. Its tables are meant to be read
by a person with the `sqlite3` shell (see README.md beside this file):

    broker         one row: schema version, who wrote the file, when it was last saved
    messages       each Application Message held (once, however many rows refer to it)
    retained       topic -> message
    sessions       one row per kept session
    subscriptions  a session's subscriptions, with their options
    outgoing       a session's messages on their way to its client: queued, sent, released
    incoming_qos2  a session's QoS 2 packet ids received and not yet released
    wills          wills waiting for their Will Delay Interval

A file refbroker did not write is never overwritten or reset: opening it is a `PersistenceError`
that says what the file seems to be. A file is refbroker's when SQLite's application_id (in the file
header) says so; `PRAGMA user_version` holds the schema version.
"""

from __future__ import annotations

import os
import sqlite3

from .errors import PersistenceError

SCHEMA_VERSION = 1
APPLICATION_ID = 0x52424B52  # "RBKR" in the SQLite header: a refbroker persistence file

SCHEMA = """
CREATE TABLE broker (
    schema_version  INTEGER NOT NULL,   -- the version of these tables (also PRAGMA user_version)
    written_by      TEXT NOT NULL,      -- e.g. 'refbroker version 0.1.0'
    saved_at        REAL NOT NULL       -- unix time of the last save
);
CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    topic           TEXT NOT NULL,
    payload         BLOB NOT NULL,
    qos             INTEGER NOT NULL,   -- as published
    retain          INTEGER NOT NULL,   -- 0 or 1, as published
    properties      TEXT NOT NULL,      -- JSON: the MQTT 5.0 properties sent on with it, {} if none
    expires_at      REAL,               -- unix time its Message Expiry Interval ends; NULL: never
    sender          TEXT                -- client id of the publisher (for No Local); NULL: the broker's own
);
CREATE TABLE retained (
    topic           TEXT PRIMARY KEY,
    message_id      INTEGER NOT NULL REFERENCES messages(id)
);
CREATE TABLE sessions (
    client_id       TEXT PRIMARY KEY,
    expiry_interval INTEGER NOT NULL,   -- seconds after the connection ends; 4294967295: never
    expires_at      REAL,               -- unix time an offline session ends; NULL: never, or it was online
    connected       INTEGER NOT NULL,   -- 1: the client was connected when this was saved
    protocol_level  INTEGER NOT NULL,   -- 3 (MQTT 3.1), 4 (3.1.1) or 5 (5.0) of its last connection
    username        TEXT                -- user name of its last connection (what it may read)
);
CREATE TABLE subscriptions (
    client_id       TEXT NOT NULL REFERENCES sessions(client_id),
    topic_filter    TEXT NOT NULL,      -- as stored, e.g. '$share/group/a/+'
    qos             INTEGER NOT NULL,   -- granted QoS
    no_local        INTEGER NOT NULL,
    retain_as_published INTEGER NOT NULL,
    retain_handling INTEGER NOT NULL,
    identifier      INTEGER,            -- Subscription Identifier; NULL: none
    PRIMARY KEY (client_id, topic_filter)
);
CREATE TABLE outgoing (
    client_id       TEXT NOT NULL REFERENCES sessions(client_id),
    position        INTEGER NOT NULL,   -- the order they are sent in
    state           TEXT NOT NULL,      -- 'queued'; 'sent': PUBLISH sent, no PUBACK/PUBREC yet;
                                        -- 'released': PUBREL sent, no PUBCOMP yet
    packet_id       INTEGER,            -- NULL while queued
    message_id      INTEGER NOT NULL REFERENCES messages(id),
    qos             INTEGER NOT NULL,   -- of this copy (the message's QoS or the subscription's, the lower)
    retain          INTEGER NOT NULL,   -- the RETAIN flag this copy goes out with
    subscription_ids TEXT NOT NULL,     -- JSON list of Subscription Identifiers
    PRIMARY KEY (client_id, position)
);
CREATE TABLE incoming_qos2 (
    client_id       TEXT NOT NULL REFERENCES sessions(client_id),
    packet_id       INTEGER NOT NULL,   -- PUBREC sent, PUBREL not yet received
    PRIMARY KEY (client_id, packet_id)
);
CREATE TABLE wills (
    client_id       TEXT PRIMARY KEY,
    due_at          REAL NOT NULL,      -- unix time the Will Delay Interval ends
    message_id      INTEGER NOT NULL REFERENCES messages(id)
);
"""

TABLES = ("broker", "messages", "retained", "sessions", "subscriptions", "outgoing", "incoming_qos2", "wills")


def open_database(path: str, *, synchronous_full: bool) -> sqlite3.Connection:
    """Open (or create) the database at `path`, check it is ours and of a version we read.

    `synchronous_full`: every commit reaches the disk before it returns (PRAGMA synchronous=FULL);
    otherwise NORMAL, with which a commit in WAL mode survives a crash of the process but maybe
    not of the machine.
    """
    _refuse_foreign_file(path)
    try:
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    except sqlite3.Error as error:
        raise PersistenceError(f"{path}: cannot open the persistence database ({error})") from None
    try:
        application_id = connection.execute("PRAGMA application_id").fetchone()[0]
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as error:
        connection.close()
        raise PersistenceError(f"{path} is not an SQLite database ({error}); refbroker will not overwrite it. "
                               "Move it away or set another persistence_file.") from None
    if application_id != APPLICATION_ID:
        connection.close()
        if tables or application_id:
            raise PersistenceError(f"{path} is an SQLite database of another program (tables: "
                                   f"{', '.join(sorted(tables)) or 'none'}); refbroker will not overwrite it. "
                                   "Move it away or set another persistence_file.")
        connection = _create(path)
    elif version > SCHEMA_VERSION:
        connection.close()
        raise PersistenceError(f"{path} was written by a newer refbroker (schema version {version}; this one "
                               f"reads up to {SCHEMA_VERSION}).")
    elif set(TABLES) - tables:
        connection.close()
        raise PersistenceError(f"{path} is damaged: tables {', '.join(sorted(set(TABLES) - tables))} are missing.")
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute(f"PRAGMA synchronous = {'FULL' if synchronous_full else 'NORMAL'}")
    connection.execute("PRAGMA foreign_keys = ON")
    return connection


def _create(path: str) -> sqlite3.Connection:
    """A new database: the tables, the one `broker` row and the header marks, in one transaction."""
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.executescript("BEGIN;" + SCHEMA
                             + f"INSERT INTO broker VALUES ({SCHEMA_VERSION}, 'refbroker', 0);"
                             + f"PRAGMA application_id = {APPLICATION_ID};"
                             + f"PRAGMA user_version = {SCHEMA_VERSION};"
                             + "COMMIT;")
    return connection


def _refuse_foreign_file(path: str) -> None:
    """A few foreign files get a clearer message than SQLite's 'file is not a database'."""
    if os.path.isdir(path):
        raise PersistenceError(f"{path} is a directory, not a persistence database file.")
    try:
        with open(path, "rb") as file:
            head = file.read(32)
    except FileNotFoundError:
        return
    except OSError as error:
        raise PersistenceError(f"{path}: cannot read the persistence database ({error.strerror or error})") from None
    if b"mosquitto db" in head:
        raise PersistenceError(f"{path} is mosquitto's own persistence file; refbroker keeps its state in an "
                               "SQLite database and cannot read it. Move it away (mosquitto still can read it) "
                               "or set another persistence_file.")
    if head and not head.startswith(b"SQLite format 3\x00"):
        raise PersistenceError(f"{path} is not an SQLite database; refbroker will not overwrite it. "
                               "Move it away or set another persistence_file.")
