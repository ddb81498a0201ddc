"""Shared fixtures and helpers: savers on real SQLite files, a driver that runs a compiled
graph through the sync API (``AgentGitSaver``) or the async API (``AsyncAgentGitSaver``),
and views of checkpoints/tables that tests compare before and after an operation.

Graph builders live in ``tests/graphs.py``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pg
import pytest
from graphs import comparable
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import StateGraph
from langgraph.types import StateSnapshot

from langgraph_agentgit import AgentGitSaver, AsyncAgentGitSaver
from langgraph_agentgit.backends import is_postgres_url
from langgraph_agentgit.saver_base import AgentGitSaverBase

TABLES = ("agentgit_threads", "agentgit_checkpoints", "agentgit_writes", "agentgit_blobs")


# --- configs ----------------------------------------------------------------------------------


def cfg(thread_id: str, checkpoint_id: str | None = None, ns: str | None = None) -> RunnableConfig:
    """A config naming a thread, and optionally one checkpoint / namespace in it."""
    configurable: dict[str, Any] = {"thread_id": thread_id}
    if checkpoint_id is not None:
        configurable["checkpoint_id"] = checkpoint_id
    if ns is not None:
        configurable["checkpoint_ns"] = ns
    return {"configurable": configurable}


def checkpoint_id_of(config: RunnableConfig | None) -> str | None:
    return None if config is None else config["configurable"].get("checkpoint_id")


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def db_path(tmp_path: Path) -> str:
    """A fresh database file per test."""
    return str(tmp_path / "agentgit.db")


@pytest.fixture
def sync_saver(db_path: str) -> Iterator[AgentGitSaver]:
    with AgentGitSaver.from_conn_string(db_path) as saver:
        yield saver


@pytest.fixture
async def async_saver(db_path: str) -> AsyncIterator[AsyncAgentGitSaver]:
    async with AsyncAgentGitSaver.from_conn_string(db_path) as saver:
        yield saver


@pytest.fixture(params=["sync", "async"])
async def saver(request: pytest.FixtureRequest, db_path: str) -> AsyncIterator[AgentGitSaverBase]:
    """Each saver class on a real file; tests drive it with its natural API."""
    if request.param == "sync":
        with AgentGitSaver.from_conn_string(db_path) as sync:
            yield sync
    else:
        async with AsyncAgentGitSaver.from_conn_string(db_path) as aio:
            yield aio


# --- running graphs ---------------------------------------------------------------------------


class Driver:
    """A compiled graph, driven through ``invoke``/``get_state``/... when ``use_async`` is
    false and through ``ainvoke``/``aget_state``/... when it is true."""

    def __init__(self, builder: StateGraph, checkpointer: BaseCheckpointSaver, use_async: bool):
        self.graph = builder.compile(checkpointer=checkpointer)
        self.checkpointer = checkpointer
        self.use_async = use_async

    async def invoke(self, inputs: Any, config: RunnableConfig, **kwargs: Any) -> Any:
        if self.use_async:
            return await self.graph.ainvoke(inputs, config, **kwargs)
        return self.graph.invoke(inputs, config, **kwargs)

    async def get_state(self, config: RunnableConfig, *, subgraphs: bool = False) -> StateSnapshot:
        if self.use_async:
            return await self.graph.aget_state(config, subgraphs=subgraphs)
        return self.graph.get_state(config, subgraphs=subgraphs)

    async def update_state(
        self, config: RunnableConfig, values: Any, as_node: str | None = None
    ) -> RunnableConfig:
        if self.use_async:
            return await self.graph.aupdate_state(config, values, as_node=as_node)
        return self.graph.update_state(config, values, as_node=as_node)

    async def history(self, config: RunnableConfig, **kwargs: Any) -> list[StateSnapshot]:
        if self.use_async:
            return [s async for s in self.graph.aget_state_history(config, **kwargs)]
        return list(self.graph.get_state_history(config, **kwargs))


def drive(builder: StateGraph, saver: BaseCheckpointSaver) -> Driver:
    """Compile ``builder`` on ``saver``, using the async API for an AsyncAgentGitSaver."""
    return Driver(builder, saver, use_async=isinstance(saver, AsyncAgentGitSaver))


def reference(builder: StateGraph) -> Driver:
    """The same graph on LangGraph's own InMemorySaver: the behaviour to match."""
    return Driver(builder, InMemorySaver(), use_async=False)


async def saver_list(
    saver: BaseCheckpointSaver, config: RunnableConfig | None, **kwargs: Any
) -> list[CheckpointTuple]:
    """``list`` or ``alist``, whichever suits the saver on the event loop's thread."""
    if isinstance(saver, AsyncAgentGitSaver):
        return [t async for t in saver.alist(config, **kwargs)]
    return list(saver.list(config, **kwargs))


async def saver_get_tuple(
    saver: BaseCheckpointSaver, config: RunnableConfig
) -> CheckpointTuple | None:
    if isinstance(saver, AsyncAgentGitSaver):
        return await saver.aget_tuple(config)
    return saver.get_tuple(config)


# --- views to compare -------------------------------------------------------------------------


def snapshot_view(snapshot: StateSnapshot) -> dict[str, Any]:
    """What a user sees of a state, minus ids that differ between savers/threads."""
    return {
        "values": comparable(snapshot.values),
        "next": snapshot.next,
        "interrupts": [i.value for t in snapshot.tasks for i in t.interrupts],
        "step": snapshot.metadata.get("step") if snapshot.metadata else None,
        "source": snapshot.metadata.get("source") if snapshot.metadata else None,
    }


def tuple_view(t: CheckpointTuple) -> dict[str, Any]:
    """Everything a CheckpointTuple carries except the thread id in its configs."""
    return {
        "id": t.config["configurable"]["checkpoint_id"],
        "ns": t.config["configurable"].get("checkpoint_ns", ""),
        "parent": checkpoint_id_of(t.parent_config),
        "values": t.checkpoint["channel_values"],
        "versions": t.checkpoint["channel_versions"],
        "seen": t.checkpoint["versions_seen"],
        "metadata": t.metadata,
        "writes": [tuple(w) for w in t.pending_writes or []],
    }


def thread_view(saver: AgentGitSaverBase, thread_id: str) -> list[dict[str, Any]]:
    """A thread's full history through the sync API (all namespaces)."""
    return [tuple_view(t) for t in saver.list(cfg(thread_id))]


def sql_rows(db: str, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of ``query`` read through a separate connection to ``db``: a SQLite file, or
    a ``postgresql://`` URL (``?`` placeholders are given as ``%s`` there)."""
    if is_postgres_url(db):
        import psycopg

        with psycopg.connect(db) as pg_conn:
            return [tuple(r) for r in pg_conn.execute(query.replace("?", "%s"), params or None)]
    with closing(sqlite3.connect(db)) as conn:
        return [tuple(r) for r in conn.execute(query, params)]


def table_counts(db_path: str, tables: tuple[str, ...] = TABLES) -> dict[str, int]:
    """Row counts of the saver's tables, read through a separate connection."""
    return {t: sql_rows(db_path, f"SELECT count(*) FROM {t}")[0][0] for t in tables}


def dump_tables(db_path: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the saver's tables, to prove an operation changed nothing."""
    return {t: sorted(sql_rows(db_path, f"SELECT * FROM {t}"), key=repr) for t in TABLES}


@pytest.fixture(params=["sqlite", "postgres"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database on each engine: a SQLite file, or a Postgres schema's URL."""
    if request.param == "sqlite":
        yield str(tmp_path / "agentgit.db")
        return
    with pg.fresh_schema() as url:
        yield url
