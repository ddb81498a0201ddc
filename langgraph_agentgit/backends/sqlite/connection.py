"""Opening SQLite connections, applying migrations, and running write transactions.

This module and ``schema`` are the only places that know the database is SQLite.

Locks. SQLite in WAL mode lets readers proceed while one connection writes; writers take
the write lock up front (``BEGIN IMMEDIATE``) and wait for it at most ``lock_timeout``
seconds *in total* (SQLite's busy handler and the retries below share one deadline), then
raise :class:`DatabaseLockedError`. Opening a database whose schema is current takes no
lock at all: the version is read first and the write lock is only taken to migrate.

Read-only access. ``read_only=True`` opens the file with ``mode=ro``; where the directory
cannot hold the ``-wal``/``-shm`` files SQLite needs to read a WAL database (a read-only
directory or file system) and there is no write-ahead log to read, it falls back to
``immutable=1`` (SQLite then takes no locks and assumes nobody changes the file, which is
what a location nobody can write means).
"""

from __future__ import annotations

import functools
import os
import random
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from langgraph_agentgit.backends.sqlite import sql as schema
from langgraph_agentgit.errors import (
    DatabaseLockedError,
    ReadOnlyDatabaseError,
    SchemaVersionError,
)

T = TypeVar("T")

#: Default total wait, in seconds, for another connection's write lock.
DEFAULT_LOCK_TIMEOUT = 30.0
#: Kept for callers that used it: the default wait in milliseconds.
BUSY_TIMEOUT_MS = int(DEFAULT_LOCK_TIMEOUT * 1000)
#: After this many seconds of waiting for a lock, ``Access.on_lock_wait`` is called (once).
LOCK_WAIT_NOTICE = 1.0

# Primary result codes (see error_code).
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_READONLY, SQLITE_CORRUPT = 5, 6, 8, 11
SQLITE_CANTOPEN, SQLITE_NOTADB = 14, 26


@dataclass(frozen=True)
class Access:
    """How a saver uses its connection.

    Attributes:
        lock_timeout: seconds a write (or a read blocked by an exclusive lock) waits in
            total for another connection's lock before :class:`DatabaseLockedError`.
        read_only: writes raise :class:`ReadOnlyDatabaseError` without touching SQLite.
        on_lock_wait: called once, on the thread doing the write, when a write has waited
            :data:`LOCK_WAIT_NOTICE` seconds for a lock (a command line tells its user).
    """

    lock_timeout: float = DEFAULT_LOCK_TIMEOUT
    read_only: bool = False
    on_lock_wait: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        if not self.lock_timeout >= 0:
            raise ValueError(
                f"lock_timeout must be a number of seconds >= 0, not {self.lock_timeout!r}"
            )


_DEFAULT_ACCESS = Access()


def connect(
    path: str, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, read_only: bool = False
) -> sqlite3.Connection:
    """Open ``path`` (or ``":memory:"``) for use from several threads; see :func:`configure`.

    With ``read_only`` the file must exist (``FileNotFoundError`` otherwise) and is opened
    as :func:`read_only_uri` says.
    """
    target, uri = (
        (read_only_uri(path, lock_timeout=lock_timeout), True) if read_only else (path, False)
    )
    return sqlite3.connect(
        target,
        uri=uri,
        check_same_thread=False,
        isolation_level=None,  # explicit BEGIN/COMMIT below
        timeout=lock_timeout,
    )


def configure(conn: sqlite3.Connection, access: Access | None = None) -> None:
    """Apply the pragmas the saver relies on to a connection, then migrate its schema.

    The connection is switched to autocommit (``isolation_level = None``) because the
    savers open their own transactions. Read-only: nothing is changed in the file (the
    connection gets ``PRAGMA query_only``), and a schema this code cannot read as it is
    raises :class:`ReadOnlyDatabaseError` (older, so needing a migration, or absent) or
    :class:`SchemaVersionError` (newer).
    """
    access = access or _DEFAULT_ACCESS
    conn.isolation_level = None
    conn.execute(f"PRAGMA busy_timeout = {_ms(access.lock_timeout)}")
    if access.read_only:
        conn.execute("PRAGMA query_only = 1")
        version = _waiting(conn, access, lambda: stored_schema_version(conn), "read")
        _refuse_newer(version)
        if version < len(schema.MIGRATIONS):
            what = (
                "holds no agentgit schema"
                if version == 0
                else f"has schema version {version}, older than this package's "
                f"{len(schema.MIGRATIONS)}"
            )
            raise ReadOnlyDatabaseError(
                f"{database_path(conn)} {what}, and a read-only connection cannot create or "
                "upgrade it: open it once without read_only"
            )
        return
    try:
        # Switching a new file to WAL needs it to itself; several processes opening it at
        # once get SQLITE_BUSY without the busy handler being consulted, hence the waits.
        mode = _waiting(
            conn, access, lambda: conn.execute("PRAGMA journal_mode").fetchone()[0], "open"
        )
        if mode not in ("memory", "wal"):
            _waiting(
                conn, access, lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone(), "open"
            )
        conn.execute("PRAGMA synchronous = NORMAL")
        migrate(conn, access=access)
    except sqlite3.OperationalError as exc:
        if error_code(exc) in (SQLITE_READONLY, SQLITE_CANTOPEN):
            raise _read_only_error(conn, "opened for writing") from exc
        raise


def read_only_uri(
    path: str,
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    on_lock_wait: Callable[[], None] | None = None,
) -> str:
    """The ``file:`` URI that opens ``path`` read-only, after trying it.

    ``mode=ro`` where SQLite can share the WAL index (the directory is writable, or the
    ``-wal`` and ``-shm`` files are already there); else, when there is no write-ahead
    log to read, ``immutable=1``. Raises ``FileNotFoundError`` for a missing file,
    :class:`ReadOnlyDatabaseError` for a read-only location holding a ``-wal`` file
    without its ``-shm`` file (its transactions cannot be read there), and
    :class:`DatabaseLockedError` when another connection holds an exclusive lock for
    longer than ``lock_timeout``.
    """
    uri, conn, _found = _open_read_only(path, Access(lock_timeout, on_lock_wait=on_lock_wait))
    conn.close()
    return uri


def is_agentgit_database(
    path: str,
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    on_lock_wait: Callable[[], None] | None = None,
) -> bool:
    """Whether ``path`` holds an agentgit schema, checked read-only: nothing is created or
    migrated, and a read-only location works. Raises ``sqlite3.DatabaseError`` for a file
    that is not SQLite at all, :class:`DatabaseLockedError` when another connection keeps
    it locked for longer than ``lock_timeout``."""
    _uri, conn, found = _open_read_only(path, Access(lock_timeout, on_lock_wait=on_lock_wait))
    conn.close()
    return found


def _open_read_only(path: str, access: Access) -> tuple[str, sqlite3.Connection, bool]:
    """A read-only connection to ``path`` that has read the schema (see
    :func:`read_only_uri`): its URI, itself, and whether the agentgit schema is there."""
    if path == ":memory:" or path.startswith("file:"):
        raise ValueError(f"read-only access needs a database file path, not {path!r}")
    resolved = os.path.abspath(path)
    if not os.path.isfile(resolved):
        raise FileNotFoundError(f"no database at {path}")
    base = f"file:{quote(resolved)}?mode=ro"
    for uri in (base, f"{base}&immutable=1"):
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=access.lock_timeout)
        try:
            found = _waiting(conn, access, functools.partial(_has_schema, conn), "read")
            return uri, conn, found is not None
        except sqlite3.OperationalError as exc:
            conn.close()
            if uri != base or error_code(exc) not in (SQLITE_CANTOPEN, SQLITE_READONLY):
                raise
        except BaseException:
            conn.close()
            raise
        # SQLite cannot create the -shm (and -wal) files here. Without a write-ahead log
        # there is nothing they would be needed for: the file alone is the database.
        wal = f"{resolved}-wal"
        if os.path.exists(wal) and os.path.getsize(wal) > 0:
            raise ReadOnlyDatabaseError(
                f"{path} cannot be read here: its location is read-only and it has a "
                f"write-ahead log ({wal}) without the shared-memory file SQLite needs to "
                "read it; open it once where it can be written (or copy its files "
                "somewhere that can)"
            )
    raise AssertionError("unreachable")


def _has_schema(conn: sqlite3.Connection) -> Any:
    return conn.execute(schema.HAS_SCHEMA_TABLE).fetchone()


def location_writable(path: str) -> bool:
    """Whether the database at ``path`` and its directory (where SQLite puts ``-wal`` and
    ``-shm``) can be written by this process: not so on a read-only file system, in an
    immutable directory, or without the permissions."""
    resolved = os.path.abspath(path)
    directory = os.path.dirname(resolved)
    return os.access(directory, os.W_OK) and (
        not os.path.exists(resolved) or os.access(resolved, os.W_OK)
    )


def database_path(conn: sqlite3.Connection) -> str:
    """The file of the connection's main database (``":memory:"`` for none)."""
    try:
        for _seq, name, file in conn.execute("PRAGMA database_list"):
            if name == "main":
                return str(file) or ":memory:"
    except sqlite3.Error:
        pass
    return "the database"


def stored_schema_version(conn: sqlite3.Connection) -> int:
    """The schema version stored in the database, read without writing anything (0 for a
    database we never touched)."""
    if conn.execute(schema.HAS_SCHEMA_TABLE).fetchone() is None:
        return 0
    row = conn.execute(schema.GET_SCHEMA_VERSION).fetchone()
    return int(row[0]) if row else 0


def schema_version(conn: sqlite3.Connection) -> int:
    """The schema version stored in the database (0 for a database we never touched).
    Creates the version table if it is missing: call it in a write transaction."""
    conn.execute(schema.SCHEMA_VERSION_TABLE)
    row = conn.execute(schema.GET_SCHEMA_VERSION).fetchone()
    return int(row[0]) if row else 0


def _refuse_newer(current: int) -> None:
    if current > len(schema.MIGRATIONS):
        raise SchemaVersionError(
            f"database schema version {current} is newer than this langgraph-agentgit "
            f"supports ({len(schema.MIGRATIONS)}); upgrade the package to open it"
        )


def migrate(
    conn: sqlite3.Connection, migrations: list[str] | None = None, *, access: Access | None = None
) -> int:
    """Bring the schema forward to the newest version this code knows.

    Returns the version reached. The version is read first, without a lock: a database
    that is current is not locked at all (so opening one never waits for a writer). A
    database written by a newer version of the package raises
    :class:`SchemaVersionError` instead of being touched.
    """
    steps = schema.MIGRATIONS if migrations is None else migrations
    current = _waiting(conn, access or _DEFAULT_ACCESS, lambda: stored_schema_version(conn), "open")
    _refuse_newer(current)
    if current >= len(steps):
        return current
    with write_transaction(conn, access):
        # Again under the lock: another process may have migrated meanwhile.
        current = schema_version(conn)
        _refuse_newer(current)
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


def error_code(exc: sqlite3.Error) -> int | None:
    """The primary SQLite result code of an error (``SQLITE_BUSY``, ...), or None."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return int(code) & 0xFF
    message = str(exc).lower()
    if "locked" in message or "busy" in message:
        return SQLITE_BUSY
    if "readonly" in message or "read-only" in message:
        return SQLITE_READONLY
    if "unable to open" in message:
        return SQLITE_CANTOPEN
    if "not a database" in message:
        return SQLITE_NOTADB
    if "malformed" in message:
        return SQLITE_CORRUPT
    return None


def _is_busy(exc: sqlite3.Error) -> bool:
    return error_code(exc) in (SQLITE_BUSY, SQLITE_LOCKED)


def _ms(seconds: float) -> int:
    return max(0, int(seconds * 1000))


# A write's first wait is shortened only by more than this: the milliseconds that pass
# between asking for a write and its BEGIN (or COMMIT) are not worth two more statements
# per transaction (setting the busy timeout, then restoring it: a third of a turn's
# statements), and a wait may end this much past lock_timeout.
_BUSY_TIMEOUT_SLACK_MS = 5


def _locked_error(conn: sqlite3.Connection, access: Access, waited: float, what: str) -> Exception:
    return DatabaseLockedError(
        f"database {database_path(conn)} is locked by another connection: this {what} "
        f"waited {waited:.1f} s for it (lock_timeout = {access.lock_timeout:g} s)"
        + ("; nothing was written" if what == "write" else "")
    )


def _read_only_error(conn: sqlite3.Connection, doing: str) -> ReadOnlyDatabaseError:
    path = database_path(conn)
    if path != ":memory:" and not location_writable(path):
        why = "its location is read-only (a read-only directory or file system)"
    else:
        why = "SQLite refused to write it (the file or its -wal/-shm files are read-only)"
    return ReadOnlyDatabaseError(
        f"{path} cannot be {doing}: {why}; it can still be read with read_only=True "
        "(`agentgit` read commands do so by themselves)"
    )


def _waiting(
    conn: sqlite3.Connection,
    access: Access,
    action: Callable[[], T],
    what: str = "write",
    started: float | None = None,
) -> T:
    """Run ``action`` (one statement that may meet another connection's lock) until it
    succeeds or ``access.lock_timeout`` seconds have passed in total since ``started``
    (a ``time.monotonic()`` reading; now by default).

    SQLite's busy handler does most of the waiting; the loop covers the SQLITE_BUSY it
    returns without consulting the handler (switching to WAL, recovering a WAL after a
    crash), splits the wait where ``on_lock_wait`` is to be told, and shortens it by
    whatever the caller already waited (for the saver's own lock, behind another write
    of the same saver that was waiting for the database). The connection's busy timeout
    is only changed on those paths, and restored.
    """
    start = time.monotonic() if started is None else started
    deadline = start + access.lock_timeout
    full_ms = _ms(access.lock_timeout)  # the connection's standing busy timeout
    notice_at = start + LOCK_WAIT_NOTICE if access.on_lock_wait is not None else None

    def budget_ms() -> int:
        # The next attempt's own wait ends by the deadline (and, while it is due, by the
        # notice).
        now = time.monotonic()
        until = deadline - now if notice_at is None else min(deadline, notice_at) - now
        return _ms(until)

    current_ms = full_ms
    wanted = budget_ms()
    if wanted < current_ms - _BUSY_TIMEOUT_SLACK_MS:
        conn.execute(f"PRAGMA busy_timeout = {wanted}")
        current_ms = wanted
    attempt = 0
    try:
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
                now = time.monotonic()
                if notice_at is not None and now >= notice_at - 0.05:
                    notice_at = None
                    assert access.on_lock_wait is not None
                    access.on_lock_wait()
                if now >= deadline - 0.001:
                    raise _locked_error(conn, access, now - start, what) from exc
                backoff = min(0.5, 0.005 * 2**attempt) * (0.5 + random.random())
                time.sleep(min(deadline - now, backoff))
                attempt += 1
                wanted = budget_ms()
                if wanted != current_ms:
                    conn.execute(f"PRAGMA busy_timeout = {wanted}")
                    current_ms = wanted
    finally:
        if current_ms != full_ms:
            conn.execute(f"PRAGMA busy_timeout = {full_ms}")


@contextmanager
def write_transaction(
    conn: sqlite3.Connection, access: Access | None = None, started: float | None = None
) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``, rolling back on any error.

    Taking the write lock up front means the wait for it happens here, bounded by
    ``access.lock_timeout`` in total (:class:`DatabaseLockedError` after it), instead of
    failing later when a read transaction tries to become a write transaction. The
    total counts from ``started`` when given: a saver passes the moment the write was
    asked for, so that writes queued behind one waiting for the database do not each
    wait the whole timeout again. A read-only ``access`` raises
    :class:`ReadOnlyDatabaseError` before anything runs, as does SQLite refusing a write
    because the file or its location cannot be written.
    """
    access = access or _DEFAULT_ACCESS
    if access.read_only:
        raise ReadOnlyDatabaseError(
            f"{database_path(conn)} is open read-only: nothing can be written through this "
            "saver (open it without read_only to write)"
        )
    if conn.in_transaction:  # nested use inside an outer transaction
        yield conn
        return
    try:
        _waiting(conn, access, lambda: conn.execute("BEGIN IMMEDIATE"), started=started)
    except sqlite3.OperationalError as exc:
        if error_code(exc) in (SQLITE_READONLY, SQLITE_CANTOPEN):
            raise _read_only_error(conn, "written") from exc
        raise
    try:
        yield conn
    except BaseException as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.OperationalError):
            if error_code(exc) == SQLITE_READONLY:
                raise _read_only_error(conn, "written") from exc
            if _is_busy(exc):
                raise _locked_error(conn, access, access.lock_timeout, "write") from exc
        raise
    try:
        _waiting(conn, access, lambda: conn.execute("COMMIT"))
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@contextmanager
def read_transaction(
    conn: sqlite3.Connection, access: Access | None = None
) -> Iterator[sqlite3.Connection]:
    """A consistent snapshot for reads spanning several statements.

    In WAL mode a read never waits for a writer; only a connection holding an exclusive
    lock (``locking_mode = EXCLUSIVE``, a rollback journal) can block it, for at most
    ``access.lock_timeout`` (then :class:`DatabaseLockedError`).
    """
    if conn.in_transaction:
        yield conn
        return
    conn.execute("BEGIN")
    try:
        yield conn
    except sqlite3.OperationalError as exc:
        if _is_busy(exc):
            access = access or _DEFAULT_ACCESS
            raise _locked_error(conn, access, access.lock_timeout, "read") from exc
        raise
    finally:
        if conn.in_transaction:
            conn.execute("COMMIT")
