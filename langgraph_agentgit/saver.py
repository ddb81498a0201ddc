"""`AgentGitSaver`: the checkpointer on a `sqlite3` connection or on PostgreSQL (a psycopg 3
connection or pool)."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, TypeVar, cast

from langgraph.checkpoint.serde.base import SerializerProtocol

from langgraph_agentgit.backends import is_postgres_object, is_postgres_url, postgres_runner
from langgraph_agentgit.backends.sqlite import sql as sqlite_sql
from langgraph_agentgit.backends.sqlite.connection import (
    DEFAULT_LOCK_TIMEOUT,
    Access,
    configure,
    connect,
    read_transaction,
    write_transaction,
)
from langgraph_agentgit.saver_base import DEFAULT_CACHE_SIZE, AgentGitSaverBase

T = TypeVar("T")


class AgentGitSaver(AgentGitSaverBase):
    """A LangGraph checkpointer with copy-on-write thread forks, on embedded SQLite or on
    PostgreSQL (the same storage, semantics and API on both).

    One instance serves both ``graph.invoke`` and ``graph.ainvoke``: its async methods run
    the work on a worker thread, so they never block the event loop::

        from langgraph_agentgit import AgentGitSaver

        with AgentGitSaver.from_conn_string("chat.db") as saver:
            graph = builder.compile(checkpointer=saver)
            graph.invoke({"messages": [("user", "hi")]}, {"configurable": {"thread_id": "1"}})

    On PostgreSQL, pass a URL to :meth:`from_conn_string` or your own psycopg 3
    ``Connection`` or ``ConnectionPool`` (needs ``pip install "langgraph-agentgit[postgres]"``)::

        with AgentGitSaver.from_conn_string("postgresql://app@db/chat") as saver: ...

    Args:
        conn: an open ``sqlite3`` connection (it is switched to WAL and migrated), or a
            psycopg 3 ``Connection`` or ``ConnectionPool`` (switched to autocommit: the
            saver opens its own transactions; its schema is created or migrated in the
            connection's ``search_path`` schema).
        serde: the serializer; defaults to :class:`StrictSerializer`.
        cache_size: decoded values kept in memory and shared between checkpoints
            (0 turns the cache off).
        lock_timeout: seconds a write waits, in total, for another connection's write
            lock before raising :class:`DatabaseLockedError` (default 30).
        read_only: never write: the schema is not created or migrated, and every
            write raises :class:`ReadOnlyDatabaseError` (see :meth:`from_conn_string`).
        on_lock_wait: called once when a write has waited a second for another
            connection's lock (to tell a user why nothing happens).
    """

    def __init__(
        self,
        conn: Any,
        *,
        serde: SerializerProtocol | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        read_only: bool = False,
        on_lock_wait: Callable[[], None] | None = None,
        max_age: timedelta | None = None,
    ) -> None:
        self.conn = conn
        self.access = Access(lock_timeout, read_only, on_lock_wait)
        # One sqlite3 connection is not safe for concurrent statements from threads.
        self.lock = threading.RLock()
        self.postgres: Any = None
        if isinstance(conn, sqlite3.Connection):
            super().__init__(sql=sqlite_sql, serde=serde, cache_size=cache_size, max_age=max_age)
            _require_shareable(conn)
            with self.lock:
                configure(conn, self.access)
            return
        if not is_postgres_object(conn):
            raise TypeError(
                "AgentGitSaver needs a sqlite3.Connection, or a psycopg 3 Connection or "
                f"ConnectionPool, not {type(conn).__name__}"
            )
        runner = postgres_runner()
        if not isinstance(conn, (runner.psycopg.Connection, runner.ConnectionPool)):
            raise TypeError(
                f"AgentGitSaver is synchronous: pass a psycopg Connection or ConnectionPool, "
                f"not {type(conn).__name__} (AsyncAgentGitSaver takes the async ones)"
            )
        super().__init__(sql=runner.sql, serde=serde, cache_size=cache_size, max_age=max_age)
        self.postgres = runner.PostgresRunner(
            conn,
            lock_timeout=lock_timeout,
            read_only=read_only,
            journal=self.store.blobs.transaction,
        )

    @classmethod
    @contextmanager
    def from_conn_string(
        cls,
        path: str,
        *,
        serde: SerializerProtocol | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        read_only: bool = False,
        on_lock_wait: Callable[[], None] | None = None,
        max_age: timedelta | None = None,
    ) -> Iterator[AgentGitSaver]:
        """Open (creating if needed) the database at ``path``; ``":memory:"`` works; a
        ``postgresql://`` URL opens a connection pool on that server (closed on exit).

        ``read_only=True`` opens an existing file without ever writing to it, also in a
        read-only directory or file system (SQLite's ``mode=ro``, or ``immutable=1`` where
        the ``-wal``/``-shm`` files cannot be created); it raises ``FileNotFoundError`` for
        a missing file and :class:`ReadOnlyDatabaseError` for one whose schema would need
        creating or upgrading.
        """
        if is_postgres_url(path):
            pool = postgres_runner().open_pool(path)
            try:
                yield cls(
                    pool,
                    serde=serde,
                    cache_size=cache_size,
                    lock_timeout=lock_timeout,
                    read_only=read_only,
                    on_lock_wait=on_lock_wait,
                    max_age=max_age,
                )
            finally:
                pool.close()
            return
        conn = connect(path, lock_timeout=lock_timeout, read_only=read_only)
        try:
            yield cls(
                conn,
                serde=serde,
                cache_size=cache_size,
                lock_timeout=lock_timeout,
                read_only=read_only,
                on_lock_wait=on_lock_wait,
                max_age=max_age,
            )
        finally:
            conn.close()

    def _read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self.postgres is not None:
            return cast(T, self.postgres.read(fn, *args, **kwargs))
        with self.lock, read_transaction(self.conn, self.access):
            return fn(self.conn, *args, **kwargs)

    def _write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self.postgres is not None:
            return cast(T, self.postgres.write(None, fn, *args, **kwargs))
        # The wait for another connection's lock counts from here: time spent behind
        # another write of this saver (itself waiting for the database) is part of it.
        started = time.monotonic()
        with (
            self.lock,
            self.store.blobs.transaction(),
            write_transaction(self.conn, self.access, started),
        ):
            return fn(self.conn, *args, **kwargs)

    def _write_in_thread(
        self, thread_id: str, fn: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T:
        if self.postgres is not None:
            return cast(T, self.postgres.write(thread_id, fn, *args, **kwargs))
        return self._write(fn, *args, **kwargs)

    async def _awrite_in_thread(
        self, thread_id: str, fn: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T:
        loop = asyncio.get_running_loop()
        call = functools.partial(self._write_in_thread, thread_id, fn, *args, **kwargs)
        return await loop.run_in_executor(None, call)

    async def _aread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(self._read, fn, *args, **kwargs))

    async def _awrite(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(self._write, fn, *args, **kwargs))


def _require_shareable(conn: sqlite3.Connection) -> None:
    """LangGraph runs a graph's checkpoint writes on worker threads: a connection opened
    with ``sqlite3.connect(path)`` (``check_same_thread=True``) would fail there, deep in a
    run. Fail now instead, with the fix."""
    failure: list[BaseException] = []

    def probe() -> None:
        try:
            conn.execute("SELECT 1").fetchone()
        except sqlite3.ProgrammingError as exc:
            failure.append(exc)

    worker = threading.Thread(target=probe)
    worker.start()
    worker.join()
    if failure:
        raise ValueError(
            "AgentGitSaver needs a connection it can use from LangGraph's worker threads: "
            "open it with sqlite3.connect(path, check_same_thread=False), or use "
            f"AgentGitSaver.from_conn_string(path) ({failure[0]})"
        )
