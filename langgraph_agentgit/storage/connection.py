"""Opening SQLite connections, applying migrations, and running write transactions.

This module and ``schema`` are the only places that know the database is SQLite.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar
from urllib.parse import quote

from langgraph_agentgit.errors import SchemaVersionError
from langgraph_agentgit.storage import schema

T = TypeVar("T")

BUSY_TIMEOUT_MS = 30_000
# On top of SQLite's own busy timeout: a few retries with jittered backoff, because a
# deferred reader that wants to upgrade to a writer gets SQLITE_BUSY immediately.
MAX_RETRIES = 12


def connect(path: str) -> sqlite3.Connection:
    """Open ``path`` (or ``":memory:"``) for use from several threads; see :func:`configure`."""
    return sqlite3.connect(
        path,
        check_same_thread=False,
        isolation_level=None,  # explicit BEGIN/COMMIT below
        timeout=BUSY_TIMEOUT_MS / 1000,
    )


def configure(conn: sqlite3.Connection) -> None:
    """Apply the pragmas the saver relies on to a connection, then migrate its schema.

    The connection is switched to autocommit (``isolation_level = None``) because the
    savers open their own transactions.
    """
    conn.isolation_level = None
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    # Switching a new file to WAL needs it to itself; several processes opening it at once
    # get SQLITE_BUSY without the busy handler being consulted, hence the retries.
    mode = _retry(lambda: conn.execute("PRAGMA journal_mode").fetchone()[0])
    if mode not in ("memory", "wal"):
        _retry(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone())
    conn.execute("PRAGMA synchronous = NORMAL")
    migrate(conn)


def is_agentgit_database(path: str) -> bool:
    """Whether ``path`` holds an agentgit schema, checked read-only: nothing is created or
    migrated. Raises ``sqlite3.DatabaseError`` for a file that is not SQLite at all."""
    conn = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True)
    try:
        return conn.execute(schema.HAS_SCHEMA_TABLE).fetchone() is not None
    finally:
        conn.close()


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version stored in the database (0 for a database we never touched)."""
    conn.execute(schema.SCHEMA_VERSION_TABLE)
    row = conn.execute(schema.GET_SCHEMA_VERSION).fetchone()
    return int(row[0]) if row else 0


def migrate(conn: sqlite3.Connection, migrations: list[str] | None = None) -> int:
    """Bring the schema forward to the newest version this code knows.

    Returns the version reached. A database written by a newer version of the package
    raises :class:`SchemaVersionError` instead of being touched.
    """
    steps = schema.MIGRATIONS if migrations is None else migrations
    with write_transaction(conn):
        current = schema_version(conn)
        if current > len(schema.MIGRATIONS):
            raise SchemaVersionError(
                f"database schema version {current} is newer than this langgraph-agentgit "
                f"supports ({len(schema.MIGRATIONS)}); upgrade the package to open it"
            )
        for version in range(current, len(steps)):
            for statement in _split_statements(steps[version]):
                conn.execute(statement)
            conn.execute(schema.SET_SCHEMA_VERSION, (version + 1,))
        return max(current, len(steps))


def _split_statements(script: str) -> Iterator[str]:
    # executescript() would COMMIT our transaction, so statements run one by one;
    # complete_statement() keeps trigger bodies (which contain ';') in one piece.
    buffer = ""
    for line in script.splitlines(keepends=True):
        if line.strip().startswith("--"):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                yield buffer.strip()
            buffer = ""
    if buffer.strip():
        yield buffer.strip()


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    message = str(exc).lower()
    return "locked" in message or "busy" in message


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolling back on any error.

    Taking the write lock up front means SQLite's busy timeout applies to it, instead of
    failing later when a read transaction tries to become a write transaction.
    """
    if conn.in_transaction:  # nested use inside an outer transaction
        yield conn
        return
    _retry(lambda: conn.execute("BEGIN IMMEDIATE"))
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        _retry(lambda: conn.execute("COMMIT"))


@contextmanager
def read_transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """A consistent snapshot for reads spanning several statements."""
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")


def _retry(action: Callable[[], T]) -> T:
    for attempt in range(MAX_RETRIES):
        try:
            return action()
        except sqlite3.OperationalError as exc:
            if not _is_busy(exc) or attempt == MAX_RETRIES - 1:
                raise
            time.sleep(min(0.5, 0.01 * 2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")
