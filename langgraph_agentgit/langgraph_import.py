"""Bring a LangGraph ``SqliteSaver`` database into an agentgit database.

::

    from langgraph_agentgit.langgraph_import import import_langgraph

    report = import_langgraph("checkpoints.sqlite", "chat.db", sessions=True)
    print(report.checkpoints, report.source_bytes, report.target_bytes_after)

The source is opened read-only and read through ``langgraph-checkpoint-sqlite``'s own
``SqliteSaver`` (its checkpoints) and its pending-writes query (task paths and write
indexes included), with this package's strict deserializer: no module named by the file
is imported and nothing it names is called. Every thread, every checkpoint of every
namespace (subgraphs) and every pending write (interrupts, resumes, errors) is stored
through the agentgit store's own ``put`` path, in parent-first order, so that values are
content-addressed and lists stored as deltas; checkpoint ids, metadata, parents and
channel versions (strings stay strings) are kept, and graphs resume where they were.
Everything is written in one transaction: on any error nothing is.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple

from langgraph_agentgit.backends import describe, is_postgres_url
from langgraph_agentgit.backends.sqlite.connection import DEFAULT_LOCK_TIMEOUT
from langgraph_agentgit.errors import ThreadExistsError
from langgraph_agentgit.saver import AgentGitSaver
from langgraph_agentgit.sessions import store as session_ops
from langgraph_agentgit.storage.backend import Connection
from langgraph_agentgit.storage.checkpoints import CheckpointStore
from langgraph_agentgit.storage.serde import StrictSerializer


@dataclass(frozen=True)
class LangGraphImportReport:
    """What :func:`import_langgraph` copied, and the sizes around it.

    ``source_bytes``: the source file (with its ``-wal``). ``target_bytes_before`` and
    ``target_bytes_after``: the target's pages in use (SQLite: page count times page size;
    PostgreSQL: ``pg_total_relation_size`` of the agentgit tables), before and after.
    ``session_ids``: the sessions made with ``sessions=True`` (thread id -> session id)."""

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
    """Copy every thread of a ``SqliteSaver`` file into an agentgit database.

    Args:
        source: the path of a database written by LangGraph's ``SqliteSaver`` (only
            read; it may be on a read-only file system).
        target: a SQLite path (created if missing) or a ``postgresql://`` URL.
        sessions: also make each imported thread the first thread of a new session
            (``SessionManager.adopt``), named after the thread, for ``user_id``.
        user_id: the user of those sessions.
        lock_timeout: seconds to wait for another connection's lock on the target.

    Returns:
        a :class:`LangGraphImportReport`.

    Raises:
        FileNotFoundError: there is no file at ``source``.
        ValueError: ``source`` is a URL (PostgresSaver sources are not supported yet) or
            not a ``SqliteSaver`` database (no ``checkpoints`` and ``writes`` tables).
        ThreadExistsError: a thread of the source already exists in the target (nothing
            is written).
        CorruptDataError: a stored value cannot be decoded.
        DatabaseLockedError, SchemaVersionError: as for any write to the target.
    """
    started = time.monotonic()
    if is_postgres_url(source):
        raise ValueError(
            "import-langgraph reads a SqliteSaver file; PostgresSaver databases are not "
            "supported yet"
        )
    if not os.path.exists(source):
        raise FileNotFoundError(f"no database at {source}")
    source_bytes = sum(os.path.getsize(p) for p in (source, f"{source}-wal") if os.path.exists(p))
    with (
        _open_sqlite_saver(source) as reader,
        AgentGitSaver.from_conn_string(target, lock_timeout=lock_timeout) as saver,
    ):
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


@contextmanager
def _open_sqlite_saver(path: str) -> Iterator[Any]:
    """LangGraph's ``SqliteSaver`` on a read-only connection to ``path``."""
    try:
        from langgraph.checkpoint.sqlite import SqliteSaver
    except ImportError as exc:  # pragma: no cover - a dependency of this package
        raise ImportError(f"import-langgraph needs langgraph-checkpoint-sqlite ({exc})") from exc
    uri = f"file:{quote(os.path.abspath(path))}?mode=ro"
    with closing(sqlite3.connect(uri, uri=True, check_same_thread=False)) as conn:
        try:
            tables = {r[0] for r in conn.execute(_SOURCE_TABLES)}
        except sqlite3.DatabaseError as exc:
            raise ValueError(f"{path} is not a SQLite database ({exc})") from None
        if not {"checkpoints", "writes"} <= tables:
            raise ValueError(
                f"{path} is not a LangGraph SqliteSaver database (it has no checkpoints "
                "and writes tables)"
            )
        reader = SqliteSaver(conn, serde=StrictSerializer())
        # SqliteSaver.setup() creates tables and switches to WAL: writes this read-only
        # connection cannot make, and that the tables found above make unnecessary.
        reader.is_setup = True
        columns = {r[1] for r in conn.execute(_SOURCE_WRITE_COLUMNS)}
        reader._has_task_path = "task_path" in columns
        yield reader


_SOURCE_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table'"
_SOURCE_WRITE_COLUMNS = "PRAGMA table_info(writes)"
# SqliteSaver's own tables, read as its list() reads them (see its checkpoints table).
_SOURCE_THREADS = "SELECT DISTINCT thread_id FROM checkpoints ORDER BY thread_id"
_SOURCE_CHECKPOINT_KEYS = """
SELECT checkpoint_ns, checkpoint_id FROM checkpoints WHERE thread_id = ?
ORDER BY checkpoint_id, checkpoint_ns
"""


def _database_bytes(conn: Connection, store: CheckpointStore) -> int:
    return int(conn.execute(store.sql.DATABASE_BYTES).fetchone()[0] or 0)


def _copy(
    conn: Connection, store: CheckpointStore, reader: Any, sessions: bool, user_id: str | None
) -> tuple[tuple[int, int, int], dict[str, str]]:
    """In the target's write transaction: every thread of ``reader``."""
    from langgraph.checkpoint.sqlite.utils import pending_writes_sql

    source = reader.conn
    thread_ids = [str(r[0]) for r in source.execute(_SOURCE_THREADS).fetchall()]
    for thread_id in thread_ids:
        if (
            conn.execute(store.sql.SELECT_THREAD_PK, (thread_id,)).fetchone()
            or conn.execute(store.sql.SELECT_SESSION_ID_OF_THREAD, (thread_id,)).fetchone()
        ):
            raise ThreadExistsError(
                f"thread {thread_id!r} already exists in the target; nothing was imported"
            )
    checkpoints = writes = 0
    write_query = pending_writes_sql(reader._has_task_path)
    for thread_id in thread_ids:
        # (ns, checkpoint id) -> channel versions of the thread's checkpoints stored so far
        versions: dict[tuple[str, str], dict[str, Any]] = {}
        keys = source.execute(_SOURCE_CHECKPOINT_KEYS, (thread_id,)).fetchall()
        # Each namespace's checkpoints oldest first: a parent is stored before its child
        # (LangGraph's checkpoint ids grow with time), so the child links to its row.
        for ns, checkpoint_id in sorted(keys, key=lambda k: (k[0] != "", k[1])):
            config: RunnableConfig = {
                "configurable": {
                    "thread_id": thread_id,
                    "checkpoint_ns": ns,
                    "checkpoint_id": checkpoint_id,
                }
            }
            found: CheckpointTuple | None = reader.get_tuple(config)
            if found is None:  # pragma: no cover - listed a moment ago, same transaction
                continue
            versions[(ns, checkpoint_id)] = _put(conn, store, found, versions)
            checkpoints += 1
            rows = source.execute(write_query, (thread_id, ns, checkpoint_id)).fetchall()
            store.put_write_rows(
                conn,
                thread_id,
                ns,
                checkpoint_id,
                [
                    (task_id, idx, channel, task_path, reader.serde.loads_typed((kind, value)))
                    for task_id, channel, kind, value, task_path, idx in rows
                ],
            )
            writes += len(rows)
    made: dict[str, str] = {}
    if sessions:
        for thread_id in thread_ids:
            session = session_ops.adopt(conn, store, thread_id, user_id, thread_id, None)
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
    ns = configurable["checkpoint_ns"]
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
