"""Copy a whole database between engines: SQLite to PostgreSQL, and back, or within one.

::

    from langgraph_agentgit.transfer import copy_database

    report = copy_database("chat.db", "postgresql://app@db/chat")
    print(report.checkpoints, report.seconds)

Every row is copied as it is stored, ids included: threads, checkpoints (hidden ones too),
pending writes, blobs (each once: they are content-addressed), sessions, branches, tags,
the tombstones of deleted threads and the records of undone effects. Other rows and the
JSON columns ``refs`` and ``deps`` refer to ids, so keeping them keeps every reference
whole, and nothing is decoded or stored twice. The target must hold no agentgit data;
both sides are brought to the current schema version first. The source is read in one
read transaction and the target written in one write transaction (on PostgreSQL under
the schema's lock that forks, deletes and session changes take), a batch of rows at a
time.

Afterwards (unless ``verify=False``) both sides are opened as savers and every thread's
checkpoints, metadata, parents and pending writes, and every session's branches, tags,
undo runs, undone effects and counts, are compared: a difference raises :class:`CopyMismatchError`.

What each engine's SQL looks like is in ``backends/<engine>/sql.py`` (``COPY_*`` and
``stream_rows``).
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from itertools import zip_longest
from types import ModuleType
from typing import Any

from langchain_core.runnables import RunnableConfig

from langgraph_agentgit.backends import describe, is_postgres_url
from langgraph_agentgit.backends.sqlite.connection import (
    DEFAULT_LOCK_TIMEOUT,
    SQLITE_NOTADB,
    error_code,
    is_agentgit_database,
)
from langgraph_agentgit.errors import (
    CopyMismatchError,
    ReadOnlyDatabaseError,
    TargetNotEmptyError,
)
from langgraph_agentgit.saver import AgentGitSaver
from langgraph_agentgit.sessions.manager import SessionManager

#: The tables in the order they are copied: threads before checkpoints (the count
#: trigger updates the thread row), sessions, their branches and tags after checkpoints
#: (a checkpoint inserted into a session's thread would touch the session's
#: ``updated_at``, which is copied as stored). Also the order of ``COPY_COUNTS``.
TABLES = (
    "threads",
    "checkpoints",
    "writes",
    "blobs",
    "sessions",
    "session_threads",
    "tags",
    "deleted_threads",
    "undo_runs",
    "undone_effects",
)

#: Rows read and written at a time; blobs are the large rows.
BATCH_ROWS = 1000
BATCH_BLOBS = 100


@dataclass(frozen=True)
class CopyReport:
    """What :func:`copy_database` copied: rows per table, and how long it took.

    ``source`` and ``target`` are shown as a person may see them (a URL's password
    hidden). ``threads`` counts thread rows, including those of deleted threads that a
    fork still needs; ``branches`` counts session branches. ``seconds`` is the whole call,
    ``verify_seconds`` the comparison alone (0 without ``verify``)."""

    source: str
    target: str
    threads: int
    checkpoints: int
    writes: int
    blobs: int
    sessions: int
    branches: int
    tags: int
    deleted_threads: int
    undo_runs: int
    undone_effects: int
    verified: bool
    seconds: float
    verify_seconds: float

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data (for JSON)."""
        return asdict(self)


def copy_database(
    source: str,
    target: str,
    *,
    verify: bool = True,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> CopyReport:
    """Copy every agentgit row of ``source`` into ``target``, keeping ids.

    Args:
        source: a SQLite file path or a ``postgresql://`` URL (its ``search_path``, e.g.
            ``?options=-csearch_path%3Dmyschema``, chooses the schema) holding an agentgit
            database. It is migrated to the current schema version if it is older (or
            opened read-only where it cannot be written and is current).
        target: a SQLite file path (created if missing) or a ``postgresql://`` URL whose
            schema holds no agentgit data (its tables are created if missing).
        verify: afterwards, read every thread and session back from both sides and
            compare them.
        lock_timeout: seconds to wait for another connection's lock on either side.

    Returns:
        a :class:`CopyReport`.

    Raises:
        FileNotFoundError: ``source`` is a path with no file.
        ValueError: ``source`` is not an agentgit database, ``target`` is a file that is
            not one, or a URL's ``search_path`` names no existing schema.
        TargetNotEmptyError: ``target`` holds agentgit data, or an agentgit schema older
            than this version (nothing is written to it).
        CopyMismatchError: with ``verify``, the target reads back differently.
        DatabaseLockedError: a lock was not released within ``lock_timeout``.
        SchemaVersionError: either side was written by a newer version of the package.
        ImportError: a URL was given and psycopg is not installed.
        psycopg.Error: a PostgreSQL server does not answer or refuses a statement (the
            target is left as it was: the copy is one transaction).
    """
    started = time.monotonic()
    shown_source, shown_target = describe(source), describe(target)
    _require_agentgit(source)
    if _holds_agentgit(target):
        _refuse_unless_empty(target, lock_timeout)
    elif not is_postgres_url(target) and os.path.exists(target) and os.path.getsize(target):
        raise ValueError(
            f"{shown_target} is not an agentgit database: a copy goes into a new file, an "
            "empty one, or an agentgit database without data"
        )
    with ExitStack() as stack:
        source_saver = stack.enter_context(_open_source(source, lock_timeout))
        target_saver = stack.enter_context(
            AgentGitSaver.from_conn_string(target, lock_timeout=lock_timeout)
        )
        counts = source_saver._read(_copy_from, source_saver.store.sql, target_saver, shown_target)
        verify_seconds = 0.0
        if verify:
            checked = time.monotonic()
            _compare(source_saver, target_saver, shown_source, shown_target)
            verify_seconds = time.monotonic() - checked
    return CopyReport(
        source=shown_source,
        target=shown_target,
        threads=counts["threads"],
        checkpoints=counts["checkpoints"],
        writes=counts["writes"],
        blobs=counts["blobs"],
        sessions=counts["sessions"],
        branches=counts["session_threads"],
        tags=counts["tags"],
        deleted_threads=counts["deleted_threads"],
        undo_runs=counts["undo_runs"],
        undone_effects=counts["undone_effects"],
        verified=verify,
        seconds=time.monotonic() - started,
        verify_seconds=verify_seconds,
    )


# --- before the copy --------------------------------------------------------------------------


def _require_agentgit(database: str) -> None:
    if not is_postgres_url(database) and not os.path.exists(database):
        raise FileNotFoundError(f"no database at {database}")
    if not _holds_agentgit(database):
        raise ValueError(f"{describe(database)} is not an agentgit database (no agentgit tables)")


def _holds_agentgit(target: str) -> bool:
    """Whether ``target`` holds an agentgit schema, looked at without changing anything
    (``False`` for a path with no file). Raises ``ValueError`` for a URL whose
    ``search_path`` names no existing schema."""
    if is_postgres_url(target):
        try:
            from langgraph_agentgit.backends.postgres.probe import agentgit_schema
        except ImportError as exc:
            raise ImportError(
                f'PostgreSQL needs psycopg 3: pip install "langgraph-agentgit[postgres]" ({exc})'
            ) from exc
        schema, found = agentgit_schema(target)
        if schema is None:
            raise ValueError(
                f"{describe(target)}: its search_path names no existing schema (create it "
                "first, or choose one with ?options=-csearch_path%3DSCHEMA)"
            )
        return found
    if not os.path.exists(target):
        return False
    try:
        return is_agentgit_database(target)
    except sqlite3.DatabaseError as exc:
        if error_code(exc) == SQLITE_NOTADB:
            return False
        raise


def _refuse_unless_empty(target: str, lock_timeout: float) -> None:
    """Raise :class:`TargetNotEmptyError` when the agentgit schema at ``target`` holds rows
    or is older than this version; read-only (a refused target is not migrated)."""
    try:
        with AgentGitSaver.from_conn_string(
            target, lock_timeout=lock_timeout, read_only=True
        ) as saver:
            tables = saver._read(_tables_with_rows, saver.store.sql)
    except ReadOnlyDatabaseError as exc:
        raise TargetNotEmptyError(
            f"{describe(target)} holds an agentgit schema that cannot be checked for data "
            f"without writing to it ({exc}); a copy goes only into an empty database, and "
            "nothing was written to it"
        ) from exc
    if tables:
        raise TargetNotEmptyError(_not_empty(describe(target), tables))


def _tables_with_rows(conn: Any, sql: ModuleType) -> list[str]:
    return [row[0] for row in conn.execute(sql.COPY_TABLES_WITH_ROWS).fetchall()]


def _not_empty(shown: str, tables: list[str]) -> str:
    return (
        f"{shown} already holds agentgit data (rows in {', '.join(tables)}); a copy goes "
        "only into a database without any, and nothing was written to it"
    )


@contextmanager
def _open_source(source: str, lock_timeout: float) -> Iterator[AgentGitSaver]:
    """The source as a saver, migrated when it can be written; read-only otherwise."""
    with ExitStack() as stack:
        try:
            saver = stack.enter_context(
                AgentGitSaver.from_conn_string(source, lock_timeout=lock_timeout)
            )
        except ReadOnlyDatabaseError:
            saver = stack.enter_context(
                AgentGitSaver.from_conn_string(source, lock_timeout=lock_timeout, read_only=True)
            )
        yield saver


# --- the copy -----------------------------------------------------------------------------


def _copy_from(
    source_conn: Any, source_sql: ModuleType, target: AgentGitSaver, shown_target: str
) -> dict[str, int]:
    """In the source's read transaction: the target's write transaction."""
    return target._write(_copy_into, source_conn, source_sql, target.store.sql, shown_target)


def _copy_into(
    target_conn: Any,
    source_conn: Any,
    source_sql: ModuleType,
    target_sql: ModuleType,
    shown_target: str,
) -> dict[str, int]:
    """Every table, batch by batch, inside the target's write transaction; checked empty
    in that transaction first (under its lock), so a concurrent writer cannot slip in."""
    tables = _tables_with_rows(target_conn, target_sql)
    if tables:
        raise TargetNotEmptyError(_not_empty(shown_target, tables))
    counts: dict[str, int] = {}
    for table in TABLES:
        select = getattr(source_sql, f"COPY_SELECT_{table.upper()}")
        insert = getattr(target_sql, f"COPY_INSERT_{table.upper()}")
        size = BATCH_BLOBS if table == "blobs" else BATCH_ROWS
        copied = 0
        for rows in source_sql.stream_rows(source_conn, select, size):
            target_conn.executemany(insert, rows)
            copied += len(rows)
        counts[table] = copied
    for statement in target_sql.COPY_RESET_SEQUENCES:
        target_conn.execute(statement)
    # The message index is not copied (SQLite's FTS5 table and PostgreSQL's tsvector are
    # not the same thing): the target's first search or usage read rebuilds it.
    target_conn.execute(target_sql.SEARCH_SET_NEEDS_REINDEX, (1,))
    return counts


# --- checking the copy ----------------------------------------------------------------------


def verify_copy(source: str, target: str, *, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> float:
    """Compare two databases as :func:`copy_database` does after copying (for a copy made
    with ``verify=False``): rows per table, every thread's checkpoint tuples (checkpoint,
    metadata, parent config, pending writes), every session with its branches and tags.

    Both are opened as savers (paths or ``postgresql://`` URLs; each is migrated if
    older). Returns the seconds the comparison took. Raises :class:`CopyMismatchError`
    naming the first difference, ``ValueError`` when either is not an agentgit database
    (``FileNotFoundError`` for a missing file).
    """
    started = time.monotonic()
    _require_agentgit(source)
    _require_agentgit(target)
    with (
        _open_source(source, lock_timeout) as source_saver,
        _open_source(target, lock_timeout) as target_saver,
    ):
        _compare(source_saver, target_saver, describe(source), describe(target))
    return time.monotonic() - started


def _compare(
    source: AgentGitSaver, target: AgentGitSaver, shown_source: str, shown_target: str
) -> None:
    """Raise :class:`CopyMismatchError` at the first difference between what the two
    savers read: rows per table, every thread's checkpoint tuples, every session."""

    def mismatch(what: str) -> CopyMismatchError:
        return CopyMismatchError(f"the copy {shown_target} differs from {shown_source}: {what}")

    counts = [saver._read(_counts, saver.store.sql) for saver in (source, target)]
    if counts[0] != counts[1]:
        table = next(t for t, a, b in zip(TABLES, *counts, strict=True) if a != b)
        raise mismatch(f"agentgit_{table} has {counts[1]} rows, not {counts[0]}")
    thread_ids: list[str] = source._read(_thread_ids, source.store.sql)
    for thread_id in thread_ids:
        config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
        pairs = zip_longest(source.list(config), target.list(config))
        for position, (expected, got) in enumerate(pairs):
            if expected is None or got is None:
                raise mismatch(f"thread {thread_id!r} lists a different number of checkpoints")
            for part in ("config", "checkpoint", "metadata", "parent_config", "pending_writes"):
                if not _same(getattr(expected, part), getattr(got, part), source):
                    raise mismatch(
                        f"thread {thread_id!r}, checkpoint {position} "
                        f"({expected.config['configurable'].get('checkpoint_id')}): {part}"
                    )
    managers = SessionManager(source), SessionManager(target)
    sessions = [m.list_sessions() for m in managers]
    if sessions[0] != sessions[1]:
        raise mismatch("the sessions (or their order, counts or times) differ")
    for session in sessions[0]:
        for view in ("branches", "tags", "undo_runs", "undone_effects"):
            a, b = (getattr(m, view)(session.id) for m in managers)
            if a != b:
                raise mismatch(f"session {session.id!r}: its {view}")


def _counts(conn: Any, sql: ModuleType) -> tuple[int, ...]:
    return tuple(int(n) for n in conn.execute(sql.COPY_COUNTS).fetchone())


def _thread_ids(conn: Any, sql: ModuleType) -> list[str]:
    return [row[0] for row in conn.execute(sql.COPY_THREAD_IDS).fetchall()]


def _same(a: Any, b: Any, saver: AgentGitSaver) -> bool:
    """Equal values, or values that serialize the same (types without ``__eq__``, NaN)."""
    if a == b:
        return True
    try:
        return bool(saver.serde.dumps_typed(a) == saver.serde.dumps_typed(b))
    except Exception:
        return False
