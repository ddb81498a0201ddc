"""`AgentGitSaver`: the checkpointer on a plain `sqlite3` connection."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from langgraph.checkpoint.serde.base import SerializerProtocol

from langgraph_agentgit.saver_base import DEFAULT_CACHE_SIZE, AgentGitSaverBase
from langgraph_agentgit.storage.connection import (
    DEFAULT_LOCK_TIMEOUT,
    Access,
    configure,
    connect,
    read_transaction,
    write_transaction,
)

T = TypeVar("T")


class AgentGitSaver(AgentGitSaverBase):
    """A LangGraph checkpointer on embedded SQLite with copy-on-write thread forks.

    One instance serves both ``graph.invoke`` and ``graph.ainvoke``: its async methods run
    the work on a worker thread, so they never block the event loop::

        from langgraph_agentgit import AgentGitSaver

        with AgentGitSaver.from_conn_string("chat.db") as saver:
            graph = builder.compile(checkpointer=saver)
            graph.invoke({"messages": [("user", "hi")]}, {"configurable": {"thread_id": "1"}})

    Args:
        conn: an open ``sqlite3`` connection; it is switched to WAL and migrated.
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
        conn: sqlite3.Connection,
        *,
        serde: SerializerProtocol | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        read_only: bool = False,
        on_lock_wait: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(serde=serde, cache_size=cache_size)
        _require_shareable(conn)
        self.conn = conn
        self.access = Access(lock_timeout, read_only, on_lock_wait)
        # One sqlite3 connection is not safe for concurrent statements from threads.
        self.lock = threading.RLock()
        with self.lock:
            configure(conn, self.access)

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
    ) -> Iterator[AgentGitSaver]:
        """Open (creating if needed) the database at ``path``; ``":memory:"`` works.

        ``read_only=True`` opens an existing file without ever writing to it, also in a
        read-only directory or file system (SQLite's ``mode=ro``, or ``immutable=1`` where
        the ``-wal``/``-shm`` files cannot be created); it raises ``FileNotFoundError`` for
        a missing file and :class:`ReadOnlyDatabaseError` for one whose schema would need
        creating or upgrading.
        """
        conn = connect(path, lock_timeout=lock_timeout, read_only=read_only)
        try:
            yield cls(
                conn,
                serde=serde,
                cache_size=cache_size,
                lock_timeout=lock_timeout,
                read_only=read_only,
                on_lock_wait=on_lock_wait,
            )
        finally:
            conn.close()

    def _read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self.lock, read_transaction(self.conn, self.access):
            return fn(self.conn, *args, **kwargs)

    def _write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        # The wait for another connection's lock counts from here: time spent behind
        # another write of this saver (itself waiting for the database) is part of it.
        started = time.monotonic()
        with (
            self.lock,
            self.store.blobs.transaction(),
            write_transaction(self.conn, self.access, started),
        ):
            return fn(self.conn, *args, **kwargs)

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
