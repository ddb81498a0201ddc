"""Schema migrations: a database written at an older schema version opens and upgrades,
and one written by a newer version of the package is refused without being touched."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import Any

import pytest
from conftest import cfg, checkpoint_id_of, drive, saver_get_tuple, saver_list
from graphs import build_chat_graph
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import Checkpoint, empty_checkpoint
from langgraph.checkpoint.base.id import uuid6

from langgraph_agentgit import AgentGitSaver, AsyncAgentGitSaver, SchemaVersionError
from langgraph_agentgit.backends.sqlite import sql as schema
from langgraph_agentgit.backends.sqlite import sql as sqlite_sql
from langgraph_agentgit.backends.sqlite.connection import migrate, schema_version, write_transaction
from langgraph_agentgit.saver_base import AgentGitSaverBase
from langgraph_agentgit.storage.checkpoints import CheckpointStore
from langgraph_agentgit.storage.serde import StrictSerializer


def raw_connection(path: str) -> sqlite3.Connection:
    """A plain connection in autocommit mode, as the storage functions expect, without the
    saver's automatic migration to the newest schema."""
    return sqlite3.connect(path, isolation_level=None)


@contextmanager
def todays_additions(conn: sqlite3.Connection) -> Iterator[None]:
    """Let today's store (the old writer below) write onto an older schema: it consults
    migration 4's table of deleted threads when it creates a thread, and records when it
    hides a row and stores a write (migration 5's columns). They exist only while the
    block runs; afterwards the database is again exactly the older schema, version
    included."""
    version = schema_version(conn)
    conn.execute(schema.MIGRATIONS[3].strip())
    conn.execute("ALTER TABLE agentgit_checkpoints ADD COLUMN hidden_at TEXT")
    conn.execute("ALTER TABLE agentgit_writes ADD COLUMN written_at INTEGER")
    conn.execute("ALTER TABLE agentgit_threads ADD COLUMN stopped_at TEXT")
    # Migration 10: blob owners, and the garbage collector's state (without its row,
    # each collection sweeps the whole database, as before).
    conn.execute("ALTER TABLE agentgit_blobs ADD COLUMN owner INTEGER")
    conn.execute(
        "CREATE TABLE agentgit_gc_state (singleton INTEGER PRIMARY KEY, debt INTEGER, rows INTEGER)"
    )
    # Migration 12: the lines a thread dropped. Migration 13: the threads' epochs.
    conn.execute("ALTER TABLE agentgit_threads ADD COLUMN dropped TEXT")
    conn.execute("ALTER TABLE agentgit_threads ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0")
    try:
        yield
    finally:
        conn.execute("ALTER TABLE agentgit_threads DROP COLUMN epoch")
        conn.execute("ALTER TABLE agentgit_threads DROP COLUMN dropped")
        conn.execute("DROP TABLE agentgit_gc_state")
        conn.execute("ALTER TABLE agentgit_blobs DROP COLUMN owner")
        conn.execute("ALTER TABLE agentgit_threads DROP COLUMN stopped_at")
        conn.execute("ALTER TABLE agentgit_writes DROP COLUMN written_at")
        conn.execute("ALTER TABLE agentgit_checkpoints DROP COLUMN hidden_at")
        conn.execute("DROP TABLE agentgit_deleted_threads")
    assert schema_version(conn) == version


def make_checkpoint(step: int, messages: list[Any]) -> Checkpoint:
    checkpoint = empty_checkpoint()
    checkpoint["id"] = str(uuid6(clock_seq=step))
    checkpoint["channel_values"] = {"messages": list(messages), "step": step}
    checkpoint["channel_versions"] = {"messages": step + 1, "step": step + 1}
    return checkpoint


class OldWriter:
    """Writes checkpoints with ``CheckpointStore`` straight onto a version-1 database."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.store = CheckpointStore(StrictSerializer(), sql=sqlite_sql)
        # The versions that wrote these schemas had no message index.
        self.store.search.enabled = False
        self.written: dict[str, Checkpoint] = {}

    def put_chain(
        self, thread: str, steps: int, *, ns: str = "", run_ids: list[str] | None = None
    ) -> list[RunnableConfig]:
        config: RunnableConfig = cfg(thread, ns=ns)
        configs = []
        messages: list[Any] = []
        for step in range(steps):
            messages = [*messages, HumanMessage(f"{thread}{ns} {step}", id=f"{thread}{ns}-{step}")]
            checkpoint = make_checkpoint(step, messages)
            metadata: dict[str, Any] = {"source": "loop", "step": step}
            if run_ids:
                metadata["run_id"] = run_ids[step]
            versions = dict(checkpoint["channel_versions"])
            with write_transaction(self.conn):
                config = self.store.put(self.conn, config, checkpoint, metadata, versions)  # type: ignore[arg-type]
                self.store.put_writes(
                    self.conn, config, [("messages", [AIMessage(f"reply {step}")])], f"task-{step}"
                )
            self.written[checkpoint["id"]] = checkpoint
            configs.append(config)
        return configs


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_version_1_database_opens_and_upgrades(db_path: str, kind: str) -> None:
    """Data written at schema version 1 reads back after the upgrade, and migration 2
    backfills each thread's ``checkpoint_count`` (own, visible, root-namespace rows only)."""
    with closing(raw_connection(db_path)) as conn:
        assert migrate(conn, schema.MIGRATIONS[:1]) == 1
        writer = OldWriter(conn)
        with todays_additions(conn):
            a = writer.put_chain("a", 5, run_ids=["run-1"] * 3 + ["run-2"] * 2)
            writer.put_chain("a", 2, ns="sub:1")  # a subgraph's rows: not counted
            writer.put_chain("b", 3)
            a2 = checkpoint_id_of(a[2])
            assert a2 is not None
            with write_transaction(conn):
                writer.store.fork_thread(conn, "a", a2, "a-fork")
                # The fork still inherits these rows, so they are only hidden in "a".
                writer.store.delete_for_runs(conn, ["run-1"])
        assert schema_version(conn) == 1
        columns = [r[1] for r in conn.execute("PRAGMA table_info(agentgit_threads)")]
        assert "checkpoint_count" not in columns

    saver: AgentGitSaverBase
    if kind == "sync":
        with AgentGitSaver.from_conn_string(db_path) as saver:
            await check_upgraded(saver, writer.written, a)
    else:
        async with AsyncAgentGitSaver.from_conn_string(db_path) as saver:
            await check_upgraded(saver, writer.written, a)
    with closing(raw_connection(db_path)) as conn:
        assert schema_version(conn) == len(schema.MIGRATIONS)


async def check_upgraded(
    saver: AgentGitSaverBase, written: dict[str, Checkpoint], a: list[RunnableConfig]
) -> None:
    async def count(thread: str) -> int:
        if isinstance(saver, AsyncAgentGitSaver):
            return await saver.acheckpoint_count(thread)
        return saver.checkpoint_count(thread)

    assert await count("a") == 2  # run-1's three checkpoints were deleted before the upgrade
    assert await count("b") == 3
    assert await count("a-fork") == 0

    for thread, expected_root in (("a", 2), ("b", 3), ("a-fork", 3)):
        listed = await saver_list(saver, cfg(thread))
        root = [t for t in listed if t.config["configurable"]["checkpoint_ns"] == ""]
        assert len(root) == expected_root
        for t in listed:
            cid = checkpoint_id_of(t.config)
            assert cid is not None
            assert t.checkpoint["channel_values"] == written[cid]["channel_values"]
            assert t.checkpoint["channel_versions"] == written[cid]["channel_versions"]
            # A fork has not run anything at its fork point yet: no writes there.
            at_fork_point = thread == "a-fork" and cid == checkpoint_id_of(a[2])
            assert [w[1:] for w in t.pending_writes or []] == (
                [] if at_fork_point else [("messages", [AIMessage(f"reply {t.metadata['step']}")])]
            )
    sub = await saver_list(saver, cfg("a", ns="sub:1"))
    assert [t.metadata["step"] for t in sub] == [1, 0]
    fork_ids = [checkpoint_id_of(t.config) for t in await saver_list(saver, cfg("a-fork"))]
    assert fork_ids == [checkpoint_id_of(c) for c in reversed(a[:3])]
    head = await saver_get_tuple(saver, cfg("a"))
    assert head is not None and checkpoint_id_of(head.config) == checkpoint_id_of(a[4])
    assert checkpoint_id_of(head.parent_config) == checkpoint_id_of(a[3])

    # The counting triggers of the new schema are live: a real graph run is counted.
    d = drive(build_chat_graph(), saver)
    await d.invoke({"messages": [HumanMessage("new", id="n-1")]}, cfg("b"))
    assert await count("b") == 3 + 3  # one chat turn writes three checkpoints
    await d.invoke({"messages": [HumanMessage("new", id="n-2")]}, cfg("c"))
    assert await count("c") == 3


def dump(path: str) -> list[str]:
    with closing(raw_connection(path)) as conn:
        return list(conn.iterdump())


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_newer_schema_version_is_refused_untouched(db_path: str, kind: str) -> None:
    """A database stamped with a version this code does not know raises
    ``SchemaVersionError`` naming both versions, and is left exactly as it was."""
    with AgentGitSaver.from_conn_string(db_path) as saver:
        graph = build_chat_graph().compile(checkpointer=saver)
        graph.invoke({"messages": [HumanMessage("hi", id="h-1")]}, cfg("t"))
    newer = len(schema.MIGRATIONS) + 1
    with closing(raw_connection(db_path)) as conn:
        conn.execute("UPDATE agentgit_schema SET version = ?", (newer,))
    before = dump(db_path)

    pattern = rf"(?s)(?=.*\b{newer}\b)(?=.*\b{len(schema.MIGRATIONS)}\b)"
    with pytest.raises(SchemaVersionError, match=pattern) as raised:
        if kind == "sync":
            with AgentGitSaver.from_conn_string(db_path):
                pass
        else:
            async with AsyncAgentGitSaver.from_conn_string(db_path) as aio:
                await aio.aget_tuple(cfg("t"))
    assert re.search(rf"\b{newer}\b", str(raised.value))

    assert dump(db_path) == before
    with closing(raw_connection(db_path)) as conn:
        assert schema_version(conn) == newer
        with pytest.raises(SchemaVersionError):
            migrate(conn)
    assert dump(db_path) == before


def test_migrating_twice_is_a_no_op(db_path: str) -> None:
    """Opening an up-to-date database again changes nothing."""
    with AgentGitSaver.from_conn_string(db_path) as saver:
        graph = build_chat_graph().compile(checkpointer=saver)
        graph.invoke({"messages": [HumanMessage("hi", id="h-1")]}, cfg("t"))
    before = dump(db_path)
    with AgentGitSaver.from_conn_string(db_path) as saver:
        assert saver.checkpoint_count("t") == 3
    with closing(raw_connection(db_path)) as conn:
        assert migrate(conn) == len(schema.MIGRATIONS)
    assert dump(db_path) == before
