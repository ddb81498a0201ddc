"""The benchmark workloads: chat, tool agent, branching and concurrency.

Each workload function runs one repetition (branching: all of them on one built thread)
and returns flat dicts of numbers plus a few verification fields, so that `run.py` can
take medians and the smoke test can check that what was stored reads back.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import json
import math
import multiprocessing
import os
import sqlite3
import time
import traceback
import zlib
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import BaseCheckpointSaver, empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import _messages_delta_reducer, add_messages
from langgraph.prebuilt import ToolNode, tools_condition

from benchmarks import postgres
from benchmarks.fake_models import TOOLS, ScriptedChatModel, answer_text, user_message
from langgraph_agentgit import AgentGitSaver, AsyncAgentGitSaver

MAIN_THREAD = "main"

# --- savers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SaverKind:
    """One row of the conversation tables: a saver, how it is driven, which graph."""

    key: str
    label: str
    backend: str  # "floor" | "memory" | "sqlite" | "agentgit" | "postgres" (PostgresSaver)
    is_async: bool = False
    delta: bool = False  # the graph declares its message list as a DeltaChannel
    postgres: bool = False  # stored on the PostgreSQL server (a fresh schema per run)

    @property
    def on_disk(self) -> bool:
        """Stored in a database (a file, or a schema on the server) that a new saver
        opens again."""
        return self.backend in ("sqlite", "agentgit", "postgres")


SAVER_KINDS: dict[str, SaverKind] = {
    kind.key: kind
    for kind in (
        SaverKind("floor", "floor (InMemorySaver, no serialization)", "floor"),
        SaverKind("memory", "InMemorySaver", "memory"),
        SaverKind("sqlite", "SqliteSaver", "sqlite"),
        SaverKind("sqlite_async", "AsyncSqliteSaver (ainvoke)", "sqlite", is_async=True),
        SaverKind("sqlite_delta", "SqliteSaver + DeltaChannel", "sqlite", delta=True),
        SaverKind("agentgit", "AgentGitSaver", "agentgit"),
        SaverKind("agentgit_async", "AsyncAgentGitSaver (ainvoke)", "agentgit", is_async=True),
        SaverKind("agentgit_delta", "AgentGitSaver + DeltaChannel", "agentgit", delta=True),
        SaverKind("postgres", "PostgresSaver", "postgres", postgres=True),
        SaverKind(
            "postgres_async", "AsyncPostgresSaver (ainvoke)", "postgres", True, postgres=True
        ),
        SaverKind("agentgit_pg", "AgentGitSaver on PostgreSQL", "agentgit", postgres=True),
        SaverKind(
            "agentgit_pg_async",
            "AsyncAgentGitSaver on PostgreSQL (ainvoke)",
            "agentgit",
            True,
            postgres=True,
        ),
    )
}


class PassthroughSerializer:
    """A serializer that stores objects themselves, so the floor row pays for no
    encoding at all.

    Containers inside checkpoint dicts are copied on the way in and out: LangGraph updates
    a loaded checkpoint's ``channel_versions`` in place, which would otherwise rewrite the
    stored history. Channel values (message lists) are shared as they are, because the
    reducers build new lists rather than mutating old ones.
    """

    def dumps_typed(self, obj: Any) -> tuple[str, Any]:
        return "passthrough", _detached(obj)

    def loads_typed(self, data: tuple[str, Any]) -> Any:
        return _detached(data[1])


def _detached(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _detached_inner(v) for k, v in obj.items()}
    return obj


def _detached_inner(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _detached_inner(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_detached_inner(v) for v in obj]
    return obj


@contextlib.contextmanager
def open_saver(backend: str, path: Path | str) -> Iterator[BaseCheckpointSaver]:
    """A sync saver of ``backend`` on the file ``path`` or the ``postgresql://`` URL
    ``path`` (memory ones ignore it; PostgresSaver needs a URL)."""
    if backend == "floor":
        yield InMemorySaver(serde=PassthroughSerializer())  # type: ignore[arg-type]
    elif backend == "memory":
        yield InMemorySaver()
    elif backend == "sqlite":
        with SqliteSaver.from_conn_string(str(path)) as saver:
            yield saver
    elif backend == "agentgit":
        with AgentGitSaver.from_conn_string(str(path)) as agentgit:
            yield agentgit
    elif backend == "postgres":
        from langgraph.checkpoint.postgres import PostgresSaver

        with PostgresSaver.from_conn_string(str(path)) as pg_saver:
            pg_saver.setup()
            yield pg_saver
    else:
        raise ValueError(f"unknown backend {backend!r}")


@contextlib.asynccontextmanager
async def open_async_saver(backend: str, path: Path | str) -> AsyncIterator[BaseCheckpointSaver]:
    """An async saver of ``backend`` on the file or the ``postgresql://`` URL ``path``."""
    if backend == "sqlite":
        async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
            yield saver
    elif backend == "agentgit":
        async with AsyncAgentGitSaver.from_conn_string(str(path)) as agentgit:
            yield agentgit
    elif backend == "postgres":
        from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver

        async with AsyncPostgresSaver.from_conn_string(str(path)) as pg_saver:
            await pg_saver.setup()
            yield pg_saver
    else:
        raise ValueError(f"no async saver for backend {backend!r}")


def db_file_bytes(path: Path) -> int:
    """Size of the database once its WAL is folded back in (what the data costs on disk)."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.close()
    return sum(p.stat().st_size for p in (path, _wal(path)) if p.exists())


def _live_db_bytes(conn: Any, path: Path) -> int:
    # Same as db_file_bytes, on the connection a saver is still holding.
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    return sum(p.stat().st_size for p in (path, _wal(path)) if p.exists())


def _wal(path: Path) -> Path:
    return path.with_name(path.name + "-wal")


def remove_db(path: Path) -> None:
    """Delete a database file and its WAL and shared-memory files."""
    for p in (path, _wal(path), path.with_name(path.name + "-shm")):
        p.unlink(missing_ok=True)


# --- graphs -----------------------------------------------------------------------------


class ChatState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


class DeltaChatState(TypedDict):
    messages: Annotated[list[AnyMessage], DeltaChannel(_messages_delta_reducer)]


class ChainState(TypedDict):
    """State of the hand-built branching threads: only the latest exchange is kept, so a
    10,000-checkpoint thread stays buildable on a saver that copies the state each time."""

    turn: int
    exchange: list[AnyMessage]


MODEL = ScriptedChatModel()


def _chat_node(state: dict[str, Any]) -> dict[str, Any]:
    # The input of turn t arrives after 2(t - 1) messages; no need to count them.
    turn = len(state["messages"]) // 2 + 1
    # An answer of its own for each question: a server's users share no answers. When
    # every thread got the same answer at the same turn, a content-addressed store kept
    # one copy for all threads, and a worker decoded it once for all of its cold reads.
    question = str(state["messages"][-1].content).encode()
    answer = answer_text(turn, seed=zlib.crc32(question))
    return {"messages": [AIMessage(content=answer, id=f"ai-{turn}")]}


def _agent_node(state: dict[str, Any]) -> dict[str, Any]:
    return {"messages": [MODEL.invoke(state["messages"])]}


def _noop_node(state: dict[str, Any]) -> dict[str, Any]:
    return {}


def build_graph(workload: str, *, delta: bool = False) -> StateGraph:
    """The (uncompiled) graph of ``workload``: ``chat``, ``tool`` or ``chain``."""
    if workload == "chain":
        chain = StateGraph(ChainState)
        chain.add_node("chat", _noop_node)
        chain.add_edge(START, "chat")
        chain.add_edge("chat", END)
        return chain
    builder = StateGraph(DeltaChatState if delta else ChatState)
    if workload == "chat":
        builder.add_node("chat", _chat_node)
        builder.add_edge(START, "chat")
        builder.add_edge("chat", END)
    elif workload == "tool":
        builder.add_node("agent", _agent_node)
        builder.add_node("tools", ToolNode(TOOLS))
        builder.add_edge(START, "agent")
        builder.add_conditional_edges("agent", tools_condition)
        builder.add_edge("tools", "agent")
    else:
        raise ValueError(f"unknown workload {workload!r}")
    return builder


def expected_counts(workload: str, turns: int) -> tuple[int, int]:
    """(checkpoints, messages) a conversation of ``turns`` turns must leave behind."""
    if workload == "chat":
        # input, the step that applies it, the answer.
        return 3 * turns, 2 * turns
    checkpoints = messages = 0
    for turn in range(1, turns + 1):
        if MODEL.wants_tools(turn):
            calls = len(MODEL.tool_calls(turn))
            checkpoints += 5  # input, apply, tool call, tool results, answer
            messages += 3 + calls
        else:
            checkpoints += 3
            messages += 2
    return checkpoints, messages


def thread_config(thread_id: str, checkpoint_id: str | None = None) -> RunnableConfig:
    configurable: dict[str, Any] = {"thread_id": thread_id, "checkpoint_ns": ""}
    if checkpoint_id is not None:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


# --- verification helpers ---------------------------------------------------------------


def messages_digest(messages: Sequence[BaseMessage]) -> str:
    """A short hash of the messages' type, id, content and tool calls."""
    h = hashlib.sha256()
    for m in messages:
        calls = getattr(m, "tool_calls", None) or []
        h.update(json.dumps([m.type, m.id, m.content, calls], sort_keys=True).encode())
    return h.hexdigest()[:16]


def raw_message_bytes(messages: Sequence[BaseMessage]) -> int:
    """What the conversation itself weighs: message text plus tool-call JSON, UTF-8."""
    total = 0
    for m in messages:
        total += len(str(m.content).encode())
        calls = getattr(m, "tool_calls", None)
        if calls:
            total += len(json.dumps(calls, separators=(",", ":")).encode())
    return total


class _HistoryDigest:
    """Folds each snapshot of a history (message count, last id) into one hash, so
    savers can be compared checkpoint by checkpoint without keeping the snapshots."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.count = 0
        self.skipped = False

    def add(self, values: dict[str, Any]) -> None:
        messages = values.get("messages") or []
        last = messages[-1].id if messages else None
        self.hash.update(f"{len(messages)}:{last};".encode())
        self.count += 1

    def hexdigest(self) -> str | None:
        return None if self.skipped else self.hash.hexdigest()[:16]


def percentile(samples: Sequence[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0 < q <= 1): the smallest sample with at least
    ``q`` of the samples at or below it. Of 20 samples, the 95th percentile is the 19th
    (the slowest is above it)."""
    ordered = sorted(samples)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def _mean_ms(samples: Sequence[float]) -> float:
    return 1000 * sum(samples) / len(samples) if samples else float("nan")


# --- workloads 1 and 2: conversations ---------------------------------------------------


def run_conversation(
    workload: str,
    kind: SaverKind,
    turns: int,
    workdir: Path,
    *,
    read_history: bool = True,
    postgres_url: str | None = None,
) -> dict[str, Any]:
    """One repetition: ``turns`` turns of ``workload`` (chat or tool) on a fresh saver.

    Without ``read_history`` the checkpoints are counted with ``saver.list`` instead of
    being rebuilt into states one by one (which is what a history read costs). Savers of
    a ``postgres`` kind run in a fresh schema on the server at ``postgres_url`` (dropped
    afterwards); their size is what the schema's tables take right after the run."""
    gc.collect()
    inputs = [{"messages": [user_message(turn)]} for turn in range(1, turns + 1)]
    if kind.postgres:
        if postgres_url is None:
            raise ValueError(f"{kind.label} needs a PostgreSQL server (postgres_url)")
        with postgres.fresh_schema(postgres_url) as schema:
            metrics = _conversation(workload, kind, inputs, schema.url, read_history)
            metrics.update(postgres.schema_sizes(schema))
        # What the saver's tables take before anything is stored in them.
        with postgres.fresh_schema(postgres_url) as schema:
            with open_saver(kind.backend, schema.url):
                pass
            metrics["empty_db_bytes"] = postgres.schema_sizes(schema)["db_bytes"]
    else:
        path = workdir / f"{workload}-{kind.key}-{turns}.db"
        remove_db(path)
        try:
            metrics = _conversation(workload, kind, inputs, path, read_history)
            if kind.on_disk:
                metrics["db_bytes"] = db_file_bytes(path)
        finally:
            remove_db(path)
    if kind.on_disk:
        metrics["bytes_per_turn"] = metrics["db_bytes"] / turns
        metrics["db_over_raw"] = metrics["db_bytes"] / metrics["raw_bytes"]
    else:
        metrics.update(db_bytes=None, bytes_per_turn=None, db_over_raw=None)
    expected_checkpoints, expected_messages = expected_counts(workload, turns)
    metrics["expected_checkpoints"] = expected_checkpoints
    metrics["expected_messages"] = expected_messages
    return metrics


def _conversation(
    workload: str,
    kind: SaverKind,
    inputs: list[dict[str, Any]],
    location: Path | str,
    read_history: bool,
) -> dict[str, Any]:
    if kind.is_async:
        return asyncio.run(_conversation_async(workload, kind, inputs, location, read_history))
    return _conversation_sync(workload, kind, inputs, location, read_history)


def _conversation_sync(
    workload: str,
    kind: SaverKind,
    inputs: list[dict[str, Any]],
    path: Path | str,
    read_history: bool,
) -> dict[str, Any]:
    config = thread_config(MAIN_THREAD)
    latencies: list[float] = []
    with open_saver(kind.backend, path) as saver:
        graph = build_graph(workload, delta=kind.delta).compile(checkpointer=saver)
        started = time.perf_counter()
        for item in inputs:
            t0 = time.perf_counter()
            graph.invoke(item, config)
            latencies.append(time.perf_counter() - t0)
        total = time.perf_counter() - started
        warm = []
        for _ in range(5):
            t0 = time.perf_counter()
            warm_state = graph.get_state(config)
            warm.append(time.perf_counter() - t0)
        if not kind.on_disk:
            fresh_ms = None
            state = warm_state
            history_ms, history = _history_sync(graph, saver, config, read_history)
    if kind.on_disk:
        # New savers: nothing cached in the process, as after a restart.
        with open_saver(kind.backend, path) as saver:
            graph = build_graph(workload, delta=kind.delta).compile(checkpointer=saver)
            t0 = time.perf_counter()
            state = graph.get_state(config)
            fresh_ms = 1000 * (time.perf_counter() - t0)
        with open_saver(kind.backend, path) as saver:
            graph = build_graph(workload, delta=kind.delta).compile(checkpointer=saver)
            history_ms, history = _history_sync(graph, saver, config, read_history)
    return _conversation_metrics(
        latencies, total, warm, fresh_ms, history_ms, history, state, warm_state
    )


async def _conversation_async(
    workload: str,
    kind: SaverKind,
    inputs: list[dict[str, Any]],
    path: Path | str,
    read_history: bool,
) -> dict[str, Any]:
    config = thread_config(MAIN_THREAD)
    latencies: list[float] = []
    async with open_async_saver(kind.backend, path) as saver:
        graph = build_graph(workload, delta=kind.delta).compile(checkpointer=saver)
        started = time.perf_counter()
        for item in inputs:
            t0 = time.perf_counter()
            await graph.ainvoke(item, config)
            latencies.append(time.perf_counter() - t0)
        total = time.perf_counter() - started
        warm = []
        for _ in range(5):
            t0 = time.perf_counter()
            warm_state = await graph.aget_state(config)
            warm.append(time.perf_counter() - t0)
    async with open_async_saver(kind.backend, path) as saver:
        graph = build_graph(workload, delta=kind.delta).compile(checkpointer=saver)
        t0 = time.perf_counter()
        state = await graph.aget_state(config)
        fresh_ms = 1000 * (time.perf_counter() - t0)
    async with open_async_saver(kind.backend, path) as saver:
        graph = build_graph(workload, delta=kind.delta).compile(checkpointer=saver)
        digest = _HistoryDigest()
        history_ms: float | None = None
        if read_history:
            t0 = time.perf_counter()
            async for snapshot in graph.aget_state_history(config):
                digest.add(snapshot.values)
            history_ms = 1000 * (time.perf_counter() - t0)
        else:
            async for _ in saver.alist(config):
                digest.count += 1
            digest.skipped = True
    return _conversation_metrics(
        latencies, total, warm, fresh_ms, history_ms, digest, state, warm_state
    )


def _history_sync(
    graph: Any, saver: BaseCheckpointSaver, config: RunnableConfig, read_history: bool
) -> tuple[float | None, _HistoryDigest]:
    digest = _HistoryDigest()
    if not read_history:
        for _ in saver.list(config):
            digest.count += 1
        digest.skipped = True
        return None, digest
    # Iterated, not kept: SqliteSaver's 1000-turn history would need gigabytes as a list.
    t0 = time.perf_counter()
    for snapshot in graph.get_state_history(config):
        digest.add(snapshot.values)
    return 1000 * (time.perf_counter() - t0), digest


def _conversation_metrics(
    latencies: list[float],
    total: float,
    warm: list[float],
    fresh_ms: float | None,
    history_ms: float | None,
    history: _HistoryDigest,
    state: Any,
    warm_state: Any,
) -> dict[str, Any]:
    messages = state.values.get("messages", [])
    head = min(10, len(latencies))
    return {
        "turns": len(latencies),
        "total_s": total,
        "first10_ms": _mean_ms(latencies[:head]),
        "last10_ms": _mean_ms(latencies[-head:]),
        "get_state_ms": _mean_ms(warm),
        "get_state_fresh_ms": fresh_ms,
        "history_ms": history_ms,
        "checkpoints": history.count,
        "messages": len(messages),
        "raw_bytes": raw_message_bytes(messages),
        "digest": messages_digest(messages),
        "history_digest": history.hexdigest(),
        # The saver that wrote the thread and a fresh one must agree.
        "readback_ok": messages_digest(messages)
        == messages_digest(warm_state.values.get("messages", [])),
    }


# --- workload 3: branching --------------------------------------------------------------


@dataclass(frozen=True)
class BranchCase:
    """A thread to branch from: a hand-built chain of checkpoints, or a real chat."""

    key: str
    label: str
    source: str  # "chain" or "chat"
    size: int  # checkpoints of the chain, or turns of the chat


def build_chain(saver: BaseCheckpointSaver, thread_id: str, n: int) -> list[str]:
    """Write ``n`` checkpoints in a parent chain with ``saver.put`` (no graph, which would
    take minutes at 10,000); returns their ids, oldest first."""
    ids: list[str] = []
    version: Any = None
    parent: str | None = None
    for i in range(n):
        version = saver.get_next_version(version, None)
        checkpoint = empty_checkpoint()
        checkpoint["channel_values"] = {
            "turn": i,
            "exchange": [user_message(i), AIMessage(content=answer_text(i), id=f"ai-{i}")],
        }
        checkpoint["channel_versions"] = {"turn": version, "exchange": version}
        checkpoint["versions_seen"] = {"chat": {"turn": version}}
        metadata: dict[str, Any] = {"source": "loop", "step": i, "parents": {}}
        saved = saver.put(
            thread_config(thread_id, parent),
            checkpoint,
            metadata,  # type: ignore[arg-type]
            {"turn": version, "exchange": version},
        )
        parent = saved["configurable"]["checkpoint_id"]
        ids.append(parent)
    return ids


def _build_source(case: BranchCase, saver: BaseCheckpointSaver) -> list[str]:
    if case.source == "chain":
        return build_chain(saver, MAIN_THREAD, case.size)
    graph = build_graph("chat").compile(checkpointer=saver)
    config = thread_config(MAIN_THREAD)
    for turn in range(1, case.size + 1):
        graph.invoke({"messages": [user_message(turn)]}, config)
    history = [s.config["configurable"]["checkpoint_id"] for s in graph.get_state_history(config)]
    return history[::-1]


def _edit_values(case: BranchCase, label: str) -> dict[str, Any]:
    # What a user does at an old checkpoint: replace or add the question, then re-run.
    message = HumanMessage(content="Let us try that differently, please.", id=f"edit-{label}")
    if case.source == "chain":
        return {"exchange": [message], "turn": -1}
    return {"messages": [message]}


def reput_copy(saver: BaseCheckpointSaver, source: str, target: str) -> None:
    """Copy a thread the only way SqliteSaver allows: re-put every checkpoint and its
    pending writes, oldest first."""
    for tup in reversed(list(saver.list(thread_config(source)))):
        parent = tup.parent_config["configurable"]["checkpoint_id"] if tup.parent_config else None
        ns = tup.config["configurable"].get("checkpoint_ns", "")
        config = thread_config(target, parent)
        config["configurable"]["checkpoint_ns"] = ns
        saver.put(config, tup.checkpoint, tup.metadata, tup.checkpoint["channel_versions"])
        by_task: dict[str, list[tuple[str, Any]]] = {}
        for task_id, channel, value in tup.pending_writes or []:
            by_task.setdefault(task_id, []).append((channel, value))
        for task_id, writes in by_task.items():
            write_config = thread_config(target, tup.checkpoint["id"])
            write_config["configurable"]["checkpoint_ns"] = ns
            saver.put_writes(write_config, writes, task_id)


def run_branching(case: BranchCase, reps: int, ops: int, workdir: Path) -> list[dict[str, Any]]:
    """Build ``case`` on AgentGitSaver and SqliteSaver, then per repetition measure:

    * a full copy of the thread (AgentGitSaver ``copy_thread``; SqliteSaver has none, so
      every checkpoint is re-put),
    * ``fork_thread`` at the middle checkpoint, ``ops`` times (AgentGitSaver),
    * LangGraph's in-thread fork, ``graph.update_state`` at that checkpoint, ``ops``
      times on each saver — on the fresh copy, so every repetition starts from a thread
      of exactly the same length.
    """
    paths = {b: workdir / f"branch-{case.key}-{b}.db" for b in ("agentgit", "sqlite")}
    runs: list[dict[str, Any]] = [{} for _ in range(reps)]
    try:
        for backend, path in paths.items():
            remove_db(path)
            with open_saver(backend, path) as saver:
                gc.collect()
                t0 = time.perf_counter()
                source_ids = _build_source(case, saver)
                built = time.perf_counter() - t0
                for run in runs:
                    run["checkpoints"] = len(source_ids)
                    run[f"{backend}_build_s"] = built
                _measure_branch_ops(case, backend, saver, path, source_ids, ops, runs)
    finally:
        for path in paths.values():
            remove_db(path)
    return runs


def _measure_branch_ops(
    case: BranchCase,
    backend: str,
    saver: BaseCheckpointSaver,
    path: Path,
    source_ids: list[str],
    ops: int,
    runs: list[dict[str, Any]],
) -> None:
    conn = saver.conn  # type: ignore[attr-defined]
    graph = build_graph("chat" if case.source == "chat" else "chain").compile(checkpointer=saver)
    fork_at = source_ids[len(source_ids) // 2]
    source_values = graph.get_state(thread_config(MAIN_THREAD, fork_at)).values
    for rep, run in enumerate(runs):
        gc.collect()

        # Full copy.
        copy_id = f"copy-{rep}"
        before = _live_db_bytes(conn, path)
        t0 = time.perf_counter()
        if backend == "agentgit":
            saver.copy_thread(MAIN_THREAD, copy_id)
        else:
            reput_copy(saver, MAIN_THREAD, copy_id)
        run[f"{backend}_copy_ms"] = 1000 * (time.perf_counter() - t0)
        run[f"{backend}_copy_bytes"] = _live_db_bytes(conn, path) - before
        copied = [t.config for t in saver.list(thread_config(copy_id))]
        run[f"{backend}_copy_ok"] = len(copied) == len(source_ids)

        # Copy-on-write fork (AgentGitSaver only).
        if backend == "agentgit":
            assert isinstance(saver, AgentGitSaver)
            before = _live_db_bytes(conn, path)
            times = []
            for k in range(ops):
                t0 = time.perf_counter()
                saver.fork_thread(MAIN_THREAD, fork_at, f"fork-{rep}-{k}")
                times.append(time.perf_counter() - t0)
            run["fork_thread_ms"] = _mean_ms(times)
            run["fork_thread_bytes"] = (_live_db_bytes(conn, path) - before) / ops
            fork_config = thread_config(f"fork-{rep}-0")
            fork_state = graph.get_state(fork_config)
            run["fork_ok"] = (
                fork_state.config["configurable"]["checkpoint_id"] == fork_at
                and _values_digest(fork_state.values) == _values_digest(source_values)
                and (rep > 0 or sum(1 for _ in saver.list(fork_config)) == len(source_ids) // 2 + 1)
            )

        # LangGraph's own fork: a new checkpoint in the same thread whose parent is old.
        before = _live_db_bytes(conn, path)
        times = []
        old_config = thread_config(copy_id, fork_at)
        forked: RunnableConfig = {}
        for k in range(ops):
            values = _edit_values(case, f"{rep}-{k}")
            t0 = time.perf_counter()
            forked = graph.update_state(old_config, values, as_node="chat")
            times.append(time.perf_counter() - t0)
        run[f"{backend}_update_state_ms"] = _mean_ms(times)
        run[f"{backend}_update_state_bytes"] = (_live_db_bytes(conn, path) - before) / ops
        edited = graph.get_state(forked)
        run[f"{backend}_update_ok"] = (
            edited.parent_config is not None
            and edited.parent_config["configurable"]["checkpoint_id"] == fork_at
        )
        run[f"{backend}_db_bytes"] = _live_db_bytes(conn, path)


def _values_digest(values: dict[str, Any]) -> str:
    messages = values.get("messages") or values.get("exchange") or []
    return f"{values.get('turn')}:{messages_digest(messages)}"


# --- workload 4: concurrency ------------------------------------------------------------


def run_concurrency(
    backend: str, processes: int, threads: int, turns: int, workdir: Path, *, timeout: float = 900
) -> dict[str, Any]:
    """``processes`` spawned processes, each running ``threads`` chat threads of ``turns``
    turns into one database file; then every checkpoint they wrote is read back."""
    path = workdir / f"concurrency-{backend}-{processes}.db"
    remove_db(path)
    # Create the schema first: the measurement is about concurrent writes, not setup.
    with open_saver(backend, path) as saver:
        if isinstance(saver, SqliteSaver):
            saver.setup()
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes)
    queue = ctx.Queue()
    workers = [
        ctx.Process(
            target=concurrency_worker,
            args=(backend, str(path), w, threads, turns, barrier, queue),
        )
        for w in range(processes)
    ]
    try:
        for p in workers:
            p.start()
        results = [queue.get(timeout=timeout) for _ in workers]
        for p in workers:
            p.join(timeout=60)
        metrics = _concurrency_metrics(backend, path, results, processes, threads, turns)
    finally:
        for p in workers:
            if p.is_alive():
                p.terminate()
        remove_db(path)
    return metrics


def concurrency_worker(
    backend: str,
    path: str,
    worker: int,
    threads: int,
    turns: int,
    barrier: Any,
    queue: Any,
) -> None:
    """Body of one spawned process (module level, so that spawn can import it)."""
    result: dict[str, Any] = {"worker": worker, "errors": 0, "error_samples": [], "written": {}}
    try:
        cls = _recording_class(AgentGitSaver if backend == "agentgit" else SqliteSaver)
        with cls.from_conn_string(path) as saver:
            saver.written = []  # type: ignore[attr-defined]
            graph = build_graph("chat").compile(checkpointer=saver)
            thread_ids = [f"w{worker}-t{t}" for t in range(threads)]
            inputs = [{"messages": [user_message(turn)]} for turn in range(1, turns + 1)]
            barrier.wait(timeout=300)
            result["t0"] = time.monotonic()
            # Turn-major order interleaves the threads the way a server would.
            for item in inputs:
                for thread_id in thread_ids:
                    try:
                        graph.invoke(item, thread_config(thread_id))
                    except Exception as exc:
                        result["errors"] += 1
                        if len(result["error_samples"]) < 5:
                            result["error_samples"].append(f"{type(exc).__name__}: {exc}")
            result["t1"] = time.monotonic()
            for thread_id, checkpoint_id in saver.written:  # type: ignore[attr-defined]
                result["written"].setdefault(thread_id, []).append(checkpoint_id)
            result["turns_ok"] = turns * threads - result["errors"]
    except Exception:
        result["errors"] += 1
        result["error_samples"].append(traceback.format_exc(limit=3))
    finally:
        queue.put(result)


def _recording_class(base: type) -> type:
    """``base`` with a ``put`` that remembers which checkpoints it stored."""

    class Recording(base):  # type: ignore[valid-type,misc]
        def put(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
            saved = super().put(config, checkpoint, metadata, new_versions)
            configurable = saved["configurable"]
            self.written.append((configurable["thread_id"], configurable["checkpoint_id"]))
            return saved

    return Recording


def _concurrency_metrics(
    backend: str,
    path: Path,
    results: list[dict[str, Any]],
    processes: int,
    threads: int,
    turns: int,
) -> dict[str, Any]:
    written = {t: ids for r in results for t, ids in r["written"].items()}
    checkpoints = sum(len(v) for v in written.values())
    starts = [r["t0"] for r in results if "t0" in r]
    ends = [r["t1"] for r in results if "t1" in r]
    seconds = (max(ends) - min(starts)) if starts and ends else float("nan")
    unreadable = 0
    wrong_state = 0
    with open_saver(backend, path) as saver:
        graph = build_graph("chat").compile(checkpointer=saver)
        for thread_id, checkpoint_ids in written.items():
            listed = {
                t.config["configurable"]["checkpoint_id"]
                for t in saver.list(thread_config(thread_id))
            }
            for checkpoint_id in checkpoint_ids:
                # get_tuple decodes every value of the checkpoint and its pending writes.
                tup = saver.get_tuple(thread_config(thread_id, checkpoint_id))
                if tup is None or checkpoint_id not in listed:
                    unreadable += 1
            messages = graph.get_state(thread_config(thread_id)).values.get("messages", [])
            if len(messages) != 2 * turns:
                wrong_state += 1
    expected_threads = processes * threads
    return {
        "processes": processes,
        "threads": expected_threads,
        "turns_per_thread": turns,
        "checkpoints": checkpoints,
        "expected_checkpoints": 3 * turns * expected_threads,
        "seconds": seconds,
        "checkpoints_per_s": checkpoints / seconds if seconds else float("nan"),
        "errors": sum(r["errors"] for r in results),
        "error_samples": [s for r in results for s in r["error_samples"]][:5],
        "unreadable": unreadable,
        "threads_with_wrong_state": wrong_state + (expected_threads - len(written)),
    }


def available_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# --- data lifecycle: import-langgraph, export, import --------------------------------------


def run_lifecycle(turns: int, workdir: Path) -> dict[str, Any]:
    """A ``turns``-turn chat on LangGraph's ``SqliteSaver``, brought in with
    ``import-langgraph`` (``import_langgraph``, one session made of the thread), then
    exported (``export_sessions``) and imported into a new database (``import_sessions``).

    Sizes are database files after ``PRAGMA wal_checkpoint(TRUNCATE)``; throughput is
    checkpoints (and source megabytes: the SqliteSaver file for ``import-langgraph``, the
    export file for the others) per second of wall time. The final state of each copy is
    compared with the SqliteSaver's (``readback_ok``)."""
    from langgraph_agentgit import SessionManager
    from langgraph_agentgit.langgraph_import import import_langgraph

    gc.collect()
    source = workdir / f"lifecycle-sqlite-{turns}.db"
    target = workdir / f"lifecycle-agentgit-{turns}.db"
    copy = workdir / f"lifecycle-copy-{turns}.db"
    exported = workdir / f"lifecycle-{turns}.jsonl"
    config = thread_config(MAIN_THREAD)
    for path in (source, target, copy):
        remove_db(path)
    try:
        with open_saver("sqlite", source) as saver:
            graph = build_graph("chat").compile(checkpointer=saver)
            for turn in range(1, turns + 1):
                graph.invoke({"messages": [user_message(turn)]}, config)
            expected = messages_digest(graph.get_state(config).values["messages"])
        sqlite_bytes = db_file_bytes(source)
        t0 = time.perf_counter()
        brought = import_langgraph(str(source), str(target), sessions=True)
        langgraph_import_s = time.perf_counter() - t0
        agentgit_bytes = db_file_bytes(target)
        digests = []
        with AgentGitSaver.from_conn_string(str(target)) as agentgit:
            graph = build_graph("chat").compile(checkpointer=agentgit)
            digests.append(messages_digest(graph.get_state(config).values["messages"]))
            t0 = time.perf_counter()
            with exported.open("w", encoding="utf-8") as out:
                export = SessionManager(agentgit).export_sessions(out)
            export_s = time.perf_counter() - t0
        export_bytes = exported.stat().st_size
        with AgentGitSaver.from_conn_string(str(copy)) as agentgit:
            t0 = time.perf_counter()
            with exported.open("rb") as data:
                imported = SessionManager(agentgit).import_sessions(data)
            import_s = time.perf_counter() - t0
            graph = build_graph("chat").compile(checkpointer=agentgit)
            digests.append(messages_digest(graph.get_state(config).values["messages"]))
        copy_bytes = db_file_bytes(copy)
    finally:
        for path in (source, target, copy):
            remove_db(path)
        exported.unlink(missing_ok=True)
    mb = 1_000_000
    return {
        "turns": turns,
        "checkpoints": brought.checkpoints,
        "expected_checkpoints": expected_counts("chat", turns)[0],
        "exported_checkpoints": export.checkpoints,
        "imported_checkpoints": imported.checkpoints,
        "sqlite_bytes": sqlite_bytes,
        "agentgit_bytes": agentgit_bytes,
        "export_bytes": export_bytes,
        "copy_bytes": copy_bytes,
        "langgraph_import_s": langgraph_import_s,
        "langgraph_import_checkpoints_per_s": brought.checkpoints / langgraph_import_s,
        "langgraph_import_mb_per_s": sqlite_bytes / mb / langgraph_import_s,
        "export_s": export_s,
        "export_checkpoints_per_s": export.checkpoints / export_s,
        "export_mb_per_s": export_bytes / mb / export_s,
        "import_s": import_s,
        "import_checkpoints_per_s": imported.checkpoints / import_s,
        "import_mb_per_s": export_bytes / mb / import_s,
        "readback_ok": all(d == expected for d in digests),
    }


def run_delete_cost(
    sizes: tuple[int, ...],
    per_session: int,
    reps: int,
    workdir: Path,
    postgres_url: str | None = None,
) -> list[dict[str, Any]]:
    """Deleting one session from databases of ``sizes`` sessions (each a hand-built
    thread of ``per_session`` checkpoints, ``build_chain``): ``reps`` deletes with
    the incremental collector as shipped (a sweep of the deleted session's family,
    a whole sweep once a tenth of the rows went), then ``reps`` with a whole sweep
    every time (the collector before it). Milliseconds of wall time per
    ``delete_session``, each size in a fresh file, and with ``postgres_url`` also in
    a fresh schema on that server (``engine``: ``sqlite`` or ``postgres``)."""
    out = [
        _delete_cost(size, per_session, reps, "sqlite", workdir / f"delete-cost-{size}.db")
        for size in sizes
    ]
    if postgres_url is not None:
        for size in sizes:
            with postgres.fresh_schema(postgres_url) as schema:
                out.append(_delete_cost(size, per_session, reps, "postgres", schema.url))
    return out


def _delete_cost(
    size: int, per_session: int, reps: int, engine: str, location: Path | str
) -> dict[str, Any]:
    """:func:`run_delete_cost` at one size on one database (a file is removed after)."""
    from statistics import median

    from langgraph_agentgit import SessionManager

    gc.collect()
    if isinstance(location, Path):
        remove_db(location)
    try:
        with AgentGitSaver.from_conn_string(str(location)) as saver:
            mgr = SessionManager(saver)
            ids = []
            for i in range(size):
                session = mgr.create_session(user_id=f"user-{i % 100}", name=f"s{i}")
                build_chain(saver, mgr.config(session.id)["configurable"]["thread_id"], per_session)
                ids.append(session.id)
            saver._write(saver.store.collect_garbage)  # the first sweep starts the schedule
            timings: dict[str, list[float]] = {"family": [], "whole": []}
            victims = iter(ids)
            for mode in ("family", "whole"):
                if mode == "whole":
                    saver.store.WHOLE_SWEEP_SHARE = 0.0
                for _ in range(reps):
                    t0 = time.perf_counter()
                    mgr.delete_session(next(victims))
                    timings[mode].append((time.perf_counter() - t0) * 1000)
    finally:
        if isinstance(location, Path):
            remove_db(location)
    return {
        "engine": engine,
        "sessions": size,
        "checkpoints": size * per_session,
        "family_ms": median(timings["family"]),
        "family_max_ms": max(timings["family"]),
        "whole_ms": median(timings["whole"]),
    }
