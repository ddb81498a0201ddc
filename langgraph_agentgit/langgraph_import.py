"""Bring a LangGraph ``SqliteSaver`` or ``PostgresSaver`` database into an agentgit database.

::

    from langgraph_agentgit.langgraph_import import import_langgraph

    report = import_langgraph("checkpoints.sqlite", "chat.db", sessions=True)
    print(report.checkpoints, report.source_bytes, report.target_bytes_after)

The source is opened read-only (a SQLite file with ``mode=ro``; a PostgreSQL schema in one
read-only, repeatable-read transaction) and its checkpoints are read through LangGraph's
own saver (``SqliteSaver`` from ``langgraph-checkpoint-sqlite``, ``PostgresSaver`` from
``langgraph-checkpoint-postgres``), its pending writes from its writes table (task paths
and write indexes included), all with this package's strict deserializer: no module named
by the source is imported and nothing it names is called. Every thread, every checkpoint
of every namespace (subgraphs) and every pending write (interrupts, resumes, errors) is
stored through the agentgit store's own ``put`` path, parents first, so that values are
content-addressed and lists stored as deltas; checkpoint ids, metadata, parents and
channel versions (strings stay strings) are kept, and graphs resume where they were.
Everything is written in one transaction: on any error nothing is.

The statements that read LangGraph's tables are the ``LANGGRAPH_*`` constants of the
source engine's ``backends/<engine>/sql.py``.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import Any
from urllib.parse import quote

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple

from langgraph_agentgit.backends import describe, is_postgres_url
from langgraph_agentgit.backends.sqlite.connection import DEFAULT_LOCK_TIMEOUT
from langgraph_agentgit.errors import InvalidSessionNameError, ThreadExistsError
from langgraph_agentgit.saver import AgentGitSaver
from langgraph_agentgit.sessions import store as session_ops
from langgraph_agentgit.storage.backend import Connection
from langgraph_agentgit.storage.checkpoints import CheckpointStore
from langgraph_agentgit.storage.serde import StrictSerializer


@dataclass(frozen=True)
class LangGraphImportReport:
    """What :func:`import_langgraph` copied, and the sizes around it.

    ``source_bytes``: the source's pages (SQLite: page count times page size, the file;
    PostgreSQL: ``pg_total_relation_size`` of LangGraph's tables). ``target_bytes_before``
    and ``target_bytes_after``: the same for the target's agentgit tables, before and
    after. ``session_ids``: the sessions made with ``sessions=True`` (thread id -> session
    id)."""

    source: str
    target: str
    threads: int
    checkpoints: int
    writes: int
    source_bytes: int
    target_bytes_before: int
    target_bytes_after: int
    seconds: float
    session_ids: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data (for JSON)."""
        return asdict(self)


def import_langgraph(
    source: str,
    target: str,
    *,
    sessions: bool = False,
    user_id: str | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> LangGraphImportReport:
    """Copy every thread of a LangGraph ``SqliteSaver`` or ``PostgresSaver`` database into
    an agentgit database.

    Args:
        source: the path of a file written by ``SqliteSaver`` (only read; it may be on a
            read-only file system), or a ``postgresql://`` URL whose ``search_path`` schema
            holds ``PostgresSaver``'s tables (read in one read-only transaction).
        target: a SQLite path (created if missing) or a ``postgresql://`` URL.
        sessions: also make each imported thread the first thread of a new session
            (``SessionManager.adopt``), named after the thread, for ``user_id``.
        user_id: the user of those sessions.
        lock_timeout: seconds to wait for another connection's lock on the target.

    Returns:
        a :class:`LangGraphImportReport`.

    Raises:
        FileNotFoundError: there is no file at ``source``.
        ValueError: ``source`` holds no LangGraph checkpoint tables, or ``user_id`` is
            not a valid user id (empty, control characters, over 256 characters).
        ImportError: a URL source without ``psycopg`` or ``langgraph-checkpoint-postgres``.
        ThreadExistsError: a thread of the source already exists in the target (nothing
            is written).
        CorruptDataError, UnsafeTypeError: a value of the source cannot be decoded.
        DatabaseLockedError, SchemaVersionError: as for any write to the target.
    """
    session_ops.check_user_id(user_id)
    started = time.monotonic()
    opener = _open_postgres_saver if is_postgres_url(source) else _open_sqlite_saver
    with (
        opener(source) as reader,
        AgentGitSaver.from_conn_string(target, lock_timeout=lock_timeout) as saver,
    ):
        source_bytes = reader.bytes()
        before = saver._read(_database_bytes, saver.store)
        counts, made = saver._write(_copy, saver.store, reader, sessions, user_id)
        after = saver._read(_database_bytes, saver.store)
    return LangGraphImportReport(
        source=describe(source),
        target=describe(target),
        threads=counts[0],
        checkpoints=counts[1],
        writes=counts[2],
        source_bytes=source_bytes,
        target_bytes_before=before,
        target_bytes_after=after,
        seconds=time.monotonic() - started,
        session_ids=made,
    )


class _Source:
    """A LangGraph saver on a read-only connection, and its tables read directly where
    the saver's API does not say enough (thread ids, write indexes and task paths).
    ``sql`` is the source engine's SQL module (its ``LANGGRAPH_*`` statements)."""

    def __init__(self, saver: Any, conn: Any, sql: ModuleType, has_task_path: bool) -> None:
        self.saver = saver
        self.conn = conn
        self.sql = sql
        self.serde = saver.serde
        self.writes_query = sql.LANGGRAPH_WRITES.format(
            task_path="task_path" if has_task_path else "''"
        )

    def rows(self, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cursor = self.conn.cursor()
        try:
            if params:
                cursor.execute(query, params)
            else:
                cursor.execute(query)
            return [tuple(r.values()) if isinstance(r, dict) else tuple(r) for r in cursor]
        finally:
            cursor.close()

    def bytes(self) -> int:
        return int(self.rows(self.sql.LANGGRAPH_BYTES)[0][0] or 0)

    def thread_ids(self) -> list[str]:
        return [str(r[0]) for r in self.rows(self.sql.LANGGRAPH_THREADS)]

    def checkpoint_keys(self, thread_id: str) -> list[tuple[str, str]]:
        keys = [
            (str(ns), str(cid))
            for ns, cid in self.rows(self.sql.LANGGRAPH_CHECKPOINT_KEYS, (thread_id,))
        ]
        # Each namespace's checkpoints oldest first: a parent is stored before its child
        # (LangGraph's checkpoint ids grow with time), so the child links to its row.
        return sorted(keys, key=lambda k: (k[0] != "", k[1]))

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        found: CheckpointTuple | None = self.saver.get_tuple(config)
        return found

    def writes(
        self, thread_id: str, ns: str, checkpoint_id: str
    ) -> list[tuple[str, int, str, str, Any]]:
        """``(task_id, idx, channel, task_path, value)`` of each pending write."""
        return [
            (
                str(task_id),
                int(idx),
                str(channel),
                str(task_path or ""),
                self.serde.loads_typed((kind, bytes(value))),
            )
            for task_id, idx, channel, task_path, kind, value in self.rows(
                self.writes_query, (thread_id, ns, checkpoint_id)
            )
        ]


class NotALangGraphDatabaseError(ValueError):
    """The source is not a LangGraph ``SqliteSaver`` database (not SQLite, or no
    ``checkpoints`` and ``writes`` tables)."""


@contextmanager
def _open_sqlite_saver(path: str) -> Iterator[_Source]:
    """LangGraph's ``SqliteSaver`` on a read-only connection to ``path``."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    from langgraph_agentgit.backends.sqlite import sql

    if not os.path.exists(path):
        raise FileNotFoundError(f"no database at {path}")
    if os.path.isdir(path):
        raise NotALangGraphDatabaseError(f"{path} is not a file but a directory")
    uri = f"file:{quote(os.path.abspath(path))}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, check_same_thread=False)) as conn:
        try:
            tables = {r[0] for r in conn.execute(sql.LANGGRAPH_TABLES)}
        except sqlite3.DatabaseError as exc:
            raise NotALangGraphDatabaseError(f"{path} is not a SQLite database ({exc})") from None
        if not {"checkpoints", "writes"} <= tables:
            raise NotALangGraphDatabaseError(
                f"{path} is not a LangGraph SqliteSaver database (it has no checkpoints "
                "and writes tables)"
            )
        saver = SqliteSaver(conn, serde=StrictSerializer())
        # SqliteSaver.setup() creates tables and switches to WAL: writes this read-only
        # connection cannot make, and that the tables found above make unnecessary.
        saver.is_setup = True
        columns = {r[0] for r in conn.execute(sql.LANGGRAPH_WRITE_COLUMNS)}
        saver._has_task_path = "task_path" in columns
        yield _Source(saver, conn, sql, saver._has_task_path)


@contextmanager
def _open_postgres_saver(url: str) -> Iterator[_Source]:
    """LangGraph's ``PostgresSaver`` on a connection in one read-only, repeatable-read
    transaction (a consistent snapshot, rolled back at the end)."""
    try:
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row
    except ImportError as exc:
        raise ImportError(
            "reading a PostgresSaver database needs psycopg and langgraph-checkpoint-postgres "
            f'(pip install "langgraph-agentgit[postgres]" langgraph-checkpoint-postgres): {exc}'
        ) from exc
    from langgraph_agentgit.backends.postgres import sql

    with psycopg.connect(url, autocommit=False, prepare_threshold=0, row_factory=dict_row) as conn:
        conn.read_only = True
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        try:
            saver = PostgresSaver(conn, serde=StrictSerializer())
            probe = _Source(saver, conn, sql, True)
            tables = {r[0] for r in probe.rows(sql.LANGGRAPH_TABLES)}
            if not {"checkpoints", "checkpoint_blobs", "checkpoint_writes"} <= tables:
                raise ValueError(
                    f"{describe(url)} holds no LangGraph PostgresSaver tables in its "
                    "search_path schema"
                )
            columns = {r[0] for r in probe.rows(sql.LANGGRAPH_WRITE_COLUMNS)}
            yield _Source(saver, conn, sql, "task_path" in columns)
        finally:
            conn.rollback()


def _database_bytes(conn: Connection, store: CheckpointStore) -> int:
    return int(conn.execute(store.sql.DATABASE_BYTES).fetchone()[0] or 0)


def _copy(
    conn: Connection,
    store: CheckpointStore,
    reader: _Source,
    sessions: bool,
    user_id: str | None,
) -> tuple[tuple[int, int, int], dict[str, str]]:
    """In the target's write transaction: every thread of ``reader``."""
    thread_ids = reader.thread_ids()
    for thread_id in thread_ids:
        if (
            conn.execute(store.sql.SELECT_THREAD_PK, (thread_id,)).fetchone()
            or conn.execute(store.sql.SELECT_SESSION_ID_OF_THREAD, (thread_id,)).fetchone()
        ):
            raise ThreadExistsError(
                f"thread {thread_id!r} already exists in the target; nothing was imported"
            )
    checkpoints = writes = 0
    for thread_id in thread_ids:
        # (ns, checkpoint id) -> channel versions of the thread's checkpoints stored so far
        versions: dict[tuple[str, str], dict[str, Any]] = {}
        for ns, checkpoint_id in reader.checkpoint_keys(thread_id):
            config: RunnableConfig = {
                "configurable": {
                    "thread_id": thread_id,
                    "checkpoint_ns": ns,
                    "checkpoint_id": checkpoint_id,
                }
            }
            found = reader.get_tuple(config)
            if found is None:  # pragma: no cover - listed a moment ago, same snapshot
                continue
            versions[(ns, checkpoint_id)] = _put(conn, store, found, versions)
            checkpoints += 1
            rows = reader.writes(thread_id, ns, checkpoint_id)
            store.put_write_rows(conn, thread_id, ns, checkpoint_id, rows)
            writes += len(rows)
    made: dict[str, str] = {}
    if sessions:
        for thread_id in thread_ids:
            # A thread id may hold what a session name may not (newlines, bidirectional
            # overrides): the name is the id cleaned, or untitled if nothing is left.
            try:
                name = session_ops.sanitize_session_name(thread_id)
            except InvalidSessionNameError:
                name = ""
            session = session_ops.adopt(conn, store, thread_id, user_id, name, None)
            made[thread_id] = session.id
    return (len(thread_ids), checkpoints, writes), made


def _put(
    conn: Connection,
    store: CheckpointStore,
    found: CheckpointTuple,
    stored: dict[tuple[str, str], dict[str, Any]],
) -> dict[str, Any]:
    """Store one source checkpoint under its parent, with the channel versions that
    changed since the parent (``stored``: the versions of checkpoints stored before).
    Returns its channel versions."""
    configurable = found.config["configurable"]
    ns = configurable.get("checkpoint_ns") or ""
    parent_id = (found.parent_config or {}).get("configurable", {}).get("checkpoint_id")
    parent_versions = stored.get((ns, parent_id), {}) if parent_id else {}
    versions = dict(found.checkpoint["channel_versions"])
    new_versions = {ch: v for ch, v in versions.items() if parent_versions.get(ch) != v}
    put_config: RunnableConfig = {
        "configurable": {
            "thread_id": configurable["thread_id"],
            "checkpoint_ns": ns,
            "checkpoint_id": parent_id,
        }
    }
    store.put(conn, put_config, found.checkpoint, found.metadata, new_versions)
    return versions


__all__ = ["LangGraphImportReport", "import_langgraph"]
