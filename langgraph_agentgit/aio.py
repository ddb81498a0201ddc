"""`AsyncAgentGitSaver`: the checkpointer on an `aiosqlite` connection."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import aiosqlite
from langgraph.checkpoint.serde.base import SerializerProtocol

from langgraph_agentgit.saver_base import DEFAULT_CACHE_SIZE, AgentGitSaverBase
from langgraph_agentgit.storage.connection import (
    BUSY_TIMEOUT_MS,
    configure,
    read_transaction,
    write_transaction,
)

T = TypeVar("T")


class AsyncAgentGitSaver(AgentGitSaverBase):
    """The async-first twin of :class:`AgentGitSaver`, with the same methods and storage.

    Work runs on the ``aiosqlite`` connection's own thread. The sync methods may be
    called from other threads (they hand the work to the event loop and wait); called on
    the event loop's own thread they raise, because waiting there would deadlock::

        async with AsyncAgentGitSaver.from_conn_string("chat.db") as saver:
            graph = builder.compile(checkpointer=saver)
            await graph.ainvoke(inputs, {"configurable": {"thread_id": "1"}})
    """

    def __init__(
        self,
        conn: aiosqlite.Connection,
        *,
        serde: SerializerProtocol | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        super().__init__(serde=serde, cache_size=cache_size)
        self.conn = conn
        self.lock = asyncio.Lock()
        self.loop = asyncio.get_running_loop()
        self.is_setup = False

    @classmethod
    @asynccontextmanager
    async def from_conn_string(
        cls,
        path: str,
        *,
        serde: SerializerProtocol | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> AsyncIterator[AsyncAgentGitSaver]:
        """Open (creating if needed) the database at ``path``; ``":memory:"`` works."""
        async with aiosqlite.connect(
            path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000
        ) as conn:
            saver = cls(conn, serde=serde, cache_size=cache_size)
            await saver.setup()
            yield saver

    async def setup(self) -> None:
        """Apply pragmas and migrations; called automatically before first use."""
        async with self.lock:
            if not self.is_setup:
                await self._on_connection_thread(configure)
                self.is_setup = True

    async def _on_connection_thread(self, fn: Callable[..., T], *args: Any) -> T:
        # aiosqlite runs every call on the connection's dedicated thread; _execute is the
        # hook it uses for its own methods, and the only way to run several statements
        # and Python logic between them as one unit on that thread.
        def call() -> T:
            raw: sqlite3.Connection = self.conn._conn
            return fn(raw, *args)

        return await self.conn._execute(call)

    async def _aread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if not self.is_setup:
            await self.setup()

        def run(raw: sqlite3.Connection) -> T:
            with read_transaction(raw):
                return fn(raw, *args, **kwargs)

        async with self.lock:
            return await self._on_connection_thread(run)

    async def _awrite(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if not self.is_setup:
            await self.setup()

        def run(raw: sqlite3.Connection) -> T:
            with write_transaction(raw):
                return fn(raw, *args, **kwargs)

        async with self.lock:
            return await self._on_connection_thread(run)

    def _read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self._from_other_thread(self._aread(fn, *args, **kwargs), fn)

    def _write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return self._from_other_thread(self._awrite(fn, *args, **kwargs), fn)

    def _from_other_thread(self, coro: Any, fn: Callable[..., Any]) -> Any:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            coro.close()
            raise asyncio.InvalidStateError(
                "AsyncAgentGitSaver's sync methods cannot run on its event loop's thread "
                "(they would wait for that same loop). Use the async methods "
                "(e.g. `await saver.aget_tuple(...)`, `graph.ainvoke`), or call the sync "
                "ones from another thread."
            )
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()
