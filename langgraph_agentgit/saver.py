"""`AgentGitSaver`: the checkpointer on a plain `sqlite3` connection."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from langgraph.checkpoint.serde.base import SerializerProtocol

from langgraph_agentgit.saver_base import DEFAULT_CACHE_SIZE, AgentGitSaverBase
from langgraph_agentgit.storage.connection import (
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
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        *,
        serde: SerializerProtocol | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        super().__init__(serde=serde, cache_size=cache_size)
        self.conn = conn
        # One sqlite3 connection is not safe for concurrent statements from threads.
        self.lock = threading.RLock()
        with self.lock:
            configure(conn)

    @classmethod
    @contextmanager
    def from_conn_string(
        cls,
        path: str,
        *,
        serde: SerializerProtocol | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> Iterator[AgentGitSaver]:
        """Open (creating if needed) the database at ``path``; ``":memory:"`` works."""
        conn = connect(path)
        try:
            yield cls(conn, serde=serde, cache_size=cache_size)
        finally:
            conn.close()

    def _read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self.lock, read_transaction(self.conn):
            return fn(self.conn, *args, **kwargs)

    def _write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self.lock, write_transaction(self.conn):
            return fn(self.conn, *args, **kwargs)

    async def _aread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(self._read, fn, *args, **kwargs))

    async def _awrite(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(self._write, fn, *args, **kwargs))
