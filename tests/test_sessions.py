"""SessionManager on real compiled graphs, through the sync and the async API.

Expected transcripts come from *reference* runs: the same turns run on a fresh plain
thread of the same graph, so a branch is checked against what the conversation it
represents produces when run from scratch. Expected counts come from LangGraph's own
``get_state_history``, not from the counters under test.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import sql_rows, table_counts
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.types import Command, StateSnapshot
from session_graphs import (
    AGENT,
    APPROVAL,
    CASES,
    CORE_TABLES,
    COUNTER,
    NESTED,
    SESSION_TABLES,
    GraphCase,
    cfg,
    cid,
    dump_tables,
    open_env,
    process_worker,
    row_counts,
)
from test_migrations import todays_additions

from langgraph_agentgit import (
    AgentGitError,
    AgentGitSaver,
    Branch,
    BranchNotFoundError,
    CheckpointNotFoundError,
    ExternalSession,
    InvalidBranchNameError,
    InvalidTagError,
    LastBranchError,
    SessionManager,
    SessionNotFoundError,
    TagExistsError,
    TagNotFoundError,
    ThreadExistsError,
    ThreadNotFoundError,
)
from langgraph_agentgit.backends.sqlite import sql as schema
from langgraph_agentgit.backends.sqlite import sql as sqlite_sql
from langgraph_agentgit.backends.sqlite.connection import migrate, schema_version, write_transaction
from langgraph_agentgit.storage.checkpoints import CheckpointStore
from langgraph_agentgit.storage.serde import StrictSerializer


@pytest.fixture
def db(any_db: str) -> str:
    """A fresh database on each engine (SQLite file, Postgres schema)."""
    return any_db


@pytest.fixture
def sqlite_db(tmp_path: Path) -> str:
    """For what is about SQLite itself (its migrations, its statement counter)."""
    return str(tmp_path / "sessions.db")


def own_count(history: list[StateSnapshot], parent_history: list[StateSnapshot], fork: str) -> int:
    """Checkpoints a branch wrote itself, from LangGraph's view of both histories; also
    checks that the branch's history is its own checkpoints then the parent's lineage up
    to and including the fork checkpoint, newest first."""
    parent_ids = [cid(s) for s in parent_history]
    inherited = parent_ids[parent_ids.index(fork) :]
    ids = [cid(s) for s in history]
    own = len(ids) - len(inherited)
    assert ids[own:] == inherited
    assert not set(ids[:own]) & set(parent_ids)
    return own


MODES = ["sync", "async"]


# --- the whole story, on every graph, sync and async ----------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_rollback_branch_and_continue(case: GraphCase, mode: str, db: str) -> None:
    turns = ["hello", "weather in Paris", "third"]
    async with open_env(mode, db, case) as env:
        s = await env.call("create_session", user_id="alice", name=case.name)
        main = s.current_thread_id
        assert s.internal_session_ids == (main,)
        assert (s.branch_count, s.total_checkpoints) == (0, 0)
        assert await env.call("config", s.id) == cfg(main)

        ends: list[StateSnapshot] = []
        for text in turns:
            await env.turn(await env.call("config", s.id), text)
            ends.append(await env.state(cfg(main)))
            s = await env.call("get_session", s.id)
            assert s.total_checkpoints == len(await env.history(cfg(main)))
            assert s.branch_count == 0
        main_history = await env.history(cfg(main))
        assert await env.transcript(cfg(main)) == await env.reference(turns)

        # Roll back to the end of the first turn: a new current branch, nothing lost.
        fork = cid(ends[0])
        b1 = await env.call("rollback", s.id, ends[0], name="retry")
        assert isinstance(b1, Branch)
        assert (b1.parent_thread_id, b1.fork_checkpoint_id, b1.name) == (main, fork, "retry")
        assert (b1.session_id, b1.checkpoint_count, b1.config) == (s.id, 0, cfg(b1.thread_id))
        s = await env.call("get_session", s.id)
        assert s.current_thread_id == b1.thread_id
        assert s.internal_session_ids == (main, b1.thread_id)
        assert (s.branch_count, s.total_checkpoints) == (1, len(main_history))
        assert await env.call("config", s.id) == cfg(b1.thread_id)

        # It starts exactly where LangGraph's own time travel to that checkpoint starts.
        at_branch = await env.state(b1.config)
        at_fork = await env.state(cfg(main, fork))
        assert (at_branch.values, at_branch.next) == (at_fork.values, at_fork.next)
        assert [cid(x) for x in await env.history(b1.config)] == [
            cid(x) for x in main_history[[cid(y) for y in main_history].index(fork) :]
        ]

        # Continue the branch, then the original: each keeps its own conversation.
        await env.turn(await env.call("config", s.id), "second try")
        assert await env.transcript(b1.config) == await env.reference(["hello", "second try"])
        assert await env.transcript(cfg(main)) == await env.reference(turns)
        await env.turn(cfg(main), "fourth")
        assert await env.transcript(cfg(main)) == await env.reference([*turns, "fourth"])
        assert await env.transcript(b1.config) == await env.reference(["hello", "second try"])

        # A branch of the branch, at the branch's own head.
        b1_head = await env.state(b1.config)
        b2 = await env.call("rollback", s.id, b1_head)
        assert (b2.parent_thread_id, b2.fork_checkpoint_id) == (b1.thread_id, cid(b1_head))
        await env.turn(await env.call("config", s.id), "deeper")
        assert await env.transcript(b2.config) == await env.reference(
            ["hello", "second try", "deeper"]
        )

        # A sibling of the first branch, by checkpoint id; the current branch stays.
        sibling = await env.call("branch", s.id, fork, name="sibling")
        assert (sibling.parent_thread_id, sibling.fork_checkpoint_id) == (main, fork)
        assert (await env.call("get_session", s.id)).current_thread_id == b2.thread_id
        await env.turn(sibling.config, "other way")
        assert await env.transcript(sibling.config) == await env.reference(["hello", "other way"])

        # Every branch still holds its own conversation.
        expected = {
            main: await env.reference([*turns, "fourth"]),
            b1.thread_id: await env.reference(["hello", "second try"]),
            b2.thread_id: await env.reference(["hello", "second try", "deeper"]),
            sibling.thread_id: await env.reference(["hello", "other way"]),
        }
        for thread_id, transcript in expected.items():
            assert await env.transcript(cfg(thread_id)) == transcript

        # Exact counts, from LangGraph's histories.
        histories = {t: await env.history(cfg(t)) for t in expected}
        own = {
            main: len(histories[main]),
            b1.thread_id: own_count(histories[b1.thread_id], histories[main], fork),
            b2.thread_id: own_count(histories[b2.thread_id], histories[b1.thread_id], cid(b1_head)),
            sibling.thread_id: own_count(histories[sibling.thread_id], histories[main], fork),
        }
        assert all(n > 0 for n in own.values())
        s = await env.call("get_session", s.id)
        assert s.internal_session_ids == (main, b1.thread_id, b2.thread_id, sibling.thread_id)
        assert s.branch_count == 3
        assert s.total_checkpoints == sum(own.values())
        branches = await env.call("branches", s.id)
        assert {b.thread_id: b.checkpoint_count for b in branches} == own
        assert [
            c.config["configurable"]["checkpoint_id"] for c in await env.call("checkpoints", s.id)
        ] == [cid(x) for x in histories[b2.thread_id]]
        before_reopen = (s, branches)

    # Everything survives closing and reopening the database.
    async with open_env(mode, db, case) as env:
        s2 = await env.call("get_session", s.id)
        assert (s2, await env.call("branches", s.id)) == before_reopen
        for thread_id, transcript in expected.items():
            assert await env.transcript(cfg(thread_id)) == transcript

        # Running on a branch forked at C equals LangGraph's own fork from C.
        b3 = await env.call("branch", s.id, fork)
        await env.turn(b3.config, "same input")
        first, *rest = case.turn_inputs("same input")
        await env.invoke(first, cfg(main, fork))
        for item in rest:
            await env.invoke(item, cfg(main))
        ours, theirs = await env.state(b3.config), await env.state(cfg(main))
        assert case.transcript(ours.values) == case.transcript(theirs.values)
        assert ours.next == theirs.next
        assert await env.transcript(b3.config) == await env.reference(["hello", "same input"])


@pytest.mark.parametrize("mode", MODES)
async def test_fork_matches_langgraph_at_every_checkpoint(mode: str, db: str) -> None:
    """At every checkpoint of a tool-calling conversation (mid-turn ones included) a
    branch shows LangGraph's state at that checkpoint, and replaying it (input None)
    ends where LangGraph's own replay ends."""
    async with open_env(mode, db, AGENT) as env:
        s = await env.call("create_session")
        main = s.current_thread_id
        for text in ["hi", "weather in Oslo"]:
            await env.turn(cfg(main), text)
        history = await env.history(cfg(main))
        for snapshot in history:
            branch = await env.call("branch", s.id, snapshot)
            ours, theirs = await env.state(branch.config), await env.state(snapshot.config)
            assert (ours.values, ours.next) == (theirs.values, theirs.next)
        mid_turn = next(x for x in history if x.next == ("tools",))
        branch = await env.call("branch", s.id, mid_turn)
        await env.invoke(None, branch.config)
        await env.invoke(None, mid_turn.config)
        ours, theirs = await env.state(branch.config), await env.state(cfg(main))
        # Re-run nodes make new ToolMessage ids, so compare the conversations.
        assert AGENT.transcript(ours.values) == AGENT.transcript(theirs.values)
        assert ours.next == theirs.next == ()
        assert AGENT.transcript(ours.values)[-1] == "ai: the weather is sunny in Oslo"


@pytest.mark.parametrize("mode", MODES)
async def test_branch_at_an_interrupt(mode: str, db: str) -> None:
    """A branch forked where the graph waits on ``interrupt()`` has LangGraph's values and
    next node there, can be answered differently, and leaves the original alone."""
    async with open_env(mode, db, APPROVAL) as env:
        s = await env.call("create_session")
        main = s.current_thread_id
        await env.invoke({"messages": [("user", "publish")]}, cfg(main))
        waiting = await env.state(cfg(main))
        assert waiting.next == ("review",)
        await env.invoke(Command(resume="yes"), cfg(main))
        branch = await env.call("rollback", s.id, waiting)
        ours = await env.state(branch.config)
        assert (ours.values, ours.next) == (waiting.values, waiting.next)
        await env.invoke(Command(resume="no"), await env.call("config", s.id))
        assert (await env.transcript(branch.config))[-1] == "ai: review: no"
        assert (await env.transcript(cfg(main)))[-1] == "ai: review: yes"
        # Replaying the branch (input None) runs the node again: it interrupts anew.
        again = await env.call("branch", s.id, waiting)
        await env.invoke(None, again.config)
        state = await env.state(again.config)
        assert state.next == ("review",)
        assert [i.value for i in state.interrupts] == [{"draft": "draft for publish"}]


@pytest.mark.parametrize("mode", MODES)
async def test_subgraph_checkpoints_are_not_counted(mode: str, db: str) -> None:
    async with open_env(mode, db, NESTED) as env:
        s = await env.call("create_session")
        await env.turn(cfg(s.current_thread_id), "hello")
        root = len(await env.history(cfg(s.current_thread_id)))
        s = await env.call("get_session", s.id)
        assert s.total_checkpoints == root
        rows = sql_rows(db, "SELECT count(*) FROM agentgit_checkpoints WHERE ns <> ''")
        assert rows[0][0] > 0  # the subgraph did write its own checkpoints


# --- every form a checkpoint can be given in -------------------------------------------------


async def test_rollback_accepts_every_checkpoint_form(db: str) -> None:
    async with open_env("sync", db, COUNTER) as env:
        s = await env.call("create_session")
        main = s.current_thread_id
        await env.turn(cfg(main), "a")
        await env.turn(cfg(main), "bb")
        history = await env.history(cfg(main))
        target = history[3]
        mgr = env.mgr
        mgr.tag(s.id, target, "restore-point")
        tuple_ = next(t for t in env.saver.list(cfg(main)) if t.config == target.config)
        forms: list[Any] = [
            cid(target),
            target.config,
            {"configurable": {"checkpoint_id": cid(target)}},
            target,
            tuple_,
            "restore-point",
        ]
        for form in forms:
            assert mgr.rollback(s.id, form).fork_checkpoint_id == cid(target)
        # A config or Branch without a checkpoint id means that thread's head.
        assert mgr.rollback(s.id, cfg(main)).fork_checkpoint_id == cid(history[0])
        assert mgr.branch(s.id, mgr.get_branch(s.id, main)).fork_checkpoint_id == cid(history[0])
        assert mgr.get_session(s.id).branch_count == len(forms) + 2  # type: ignore[union-attr]
        # A checkpoint the session's branch inherits is reachable through the branch,
        # and the new branch hangs off the thread that wrote it.
        branch = mgr.rollback(s.id, history[5])
        nested = mgr.rollback(s.id, history[6].config["configurable"]["checkpoint_id"])
        assert branch.parent_thread_id == nested.parent_thread_id == main
        chosen = mgr.rollback(s.id, cid(history[5]), name="named", thread_id="my-thread-id")
        assert (chosen.thread_id, chosen.name) == ("my-thread-id", "named")
        with pytest.raises(TypeError):
            mgr.rollback(s.id, 42)  # type: ignore[arg-type]


# --- sessions: create, list, activity, deactivate, adopt ----------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_list_sessions_and_activity(mode: str, db: str) -> None:
    async with open_env(mode, db, COUNTER) as env:
        s1 = await env.call("create_session", user_id="ann", name="one", metadata={"k": [1, 2]})
        s2 = await env.call("create_session", user_id="bob", name="two")
        s3 = await env.call("create_session", user_id="ann", name="three")
        assert s1.metadata == {"k": [1, 2]}
        assert isinstance(s1, ExternalSession) and s1.is_active and s1.user_id == "ann"
        listed = await env.call("list_sessions")
        assert [x.id for x in listed] == [s3.id, s2.id, s1.id]
        # A checkpoint written into a session's thread is activity: s1 comes first.
        await env.turn(await env.call("config", s1.id), "x")
        fresh = await env.call("get_session", s1.id)
        assert fresh.updated_at > s1.updated_at
        assert [x.id for x in await env.call("list_sessions")] == [s1.id, s3.id, s2.id]
        assert [x.id for x in await env.call("list_sessions", user_id="ann")] == [s1.id, s3.id]
        off = await env.call("deactivate", s3.id)
        assert not off.is_active
        active = await env.call("list_sessions", active_only=True)
        assert [x.id for x in active] == [s1.id, s2.id]
        assert (await env.call("activate", s3.id)).is_active
        assert await env.call("get_session", "no-such-session") is None
        assert (await env.call("session_of", s2.current_thread_id)).id == s2.id
        assert await env.call("session_of", "plain-thread") is None


@pytest.mark.parametrize("mode", MODES)
async def test_session_metadata_must_be_strict_json(mode: str, db: str) -> None:
    """NaN and infinities (and values JSON cannot hold) are refused before anything is
    written: stored, they made an export that could not be imported."""
    async with open_env(mode, db, COUNTER) as env:
        await env.turn(cfg("plain"), "x")
        before = dump_tables(db)
        loop: dict[str, Any] = {}
        loop["self"] = loop
        for bad in ({"x": float("nan")}, {"x": [1, float("inf")]}, {"y": {"z": -float("inf")}}):
            with pytest.raises(ValueError, match="NaN or an infinite number"):
                await env.call("create_session", user_id="u", metadata=bad)
            with pytest.raises(ValueError, match="NaN or an infinite number"):
                await env.call("adopt", "plain", user_id="u", metadata=bad)
        with pytest.raises(ValueError, match="JSON-serializable"):
            await env.call("create_session", user_id="u", metadata=loop)
        with pytest.raises(TypeError, match="JSON-serializable"):
            await env.call("create_session", user_id="u", metadata={"x": object()})
        assert dump_tables(db) == before
        s = await env.call("create_session", user_id="u", metadata={"x": 1.5})
        assert s.metadata == {"x": 1.5}


@pytest.mark.parametrize("mode", MODES)
async def test_new_thread_ids_are_checked(mode: str, db: str) -> None:
    """create_session, rollback and branch refuse a thread id that is not a clean
    non-empty string, or that is the name of a branch of the session (checkout by that
    name would then be ambiguous); nothing is written."""
    async with open_env(mode, db, COUNTER) as env:
        s = await env.call("create_session", user_id="u")
        await env.turn(await env.call("config", s.id), "x")
        head = await env.state(await env.call("config", s.id))
        await env.call("branch", s.id, head, name="side")
        before = dump_tables(db)
        bad_values: list[tuple[Any, type[Exception], str]] = [
            ("", ValueError, "empty"),
            ("   ", ValueError, "empty"),
            (" padded", ValueError, "whitespace"),
            ("a\x00b", ValueError, "control"),
            ("line\nbreak", ValueError, "control"),
            (["x"], TypeError, "must be a string"),
            (7, TypeError, "must be a string"),
        ]
        for bad, error, fragment in bad_values:
            with pytest.raises(error, match=fragment):
                await env.call("create_session", user_id="u", thread_id=bad)
            for method in ("rollback", "branch"):
                with pytest.raises(error, match=fragment):
                    await env.call(method, s.id, head, thread_id=bad)
        for name in ("main", "side"):
            for method in ("rollback", "branch"):
                with pytest.raises(ValueError, match="is the name of branch"):
                    await env.call(method, s.id, head, thread_id=name)
        assert dump_tables(db) == before
        main = (await env.call("checkout", s.id, "main")).thread_id
        assert main == s.current_thread_id
        made = await env.call("branch", s.id, head, thread_id="fine-id")
        assert made.thread_id == "fine-id"


@pytest.mark.parametrize("mode", MODES)
async def test_a_config_naming_a_missing_thread_is_refused(mode: str, db: str) -> None:
    """A config whose thread_id names no thread (made up, or a deleted branch's) with a
    checkpoint_id the session reaches is refused, not silently read through another
    thread; nothing is written."""
    async with open_env(mode, db, COUNTER) as env:
        s = await env.call("create_session", user_id="u")
        await env.turn(await env.call("config", s.id), "x")
        head = cid(await env.state(await env.call("config", s.id)))
        side = await env.call("branch", s.id, head, name="side")
        await env.call("delete_branch", s.id, side.thread_id)
        before = dump_tables(db)
        for thread in ("made-up-thread", side.thread_id):
            for method in ("rollback", "branch", "tag"):
                args = (s.id, cfg(thread, head)) + (("t",) if method == "tag" else ())
                with pytest.raises(ThreadNotFoundError, match=f"thread {thread!r} does not"):
                    await env.call(method, *args)
        assert dump_tables(db) == before
        made = await env.call("rollback", s.id, cfg(s.current_thread_id, head))
        assert made.fork_checkpoint_id == head


@pytest.mark.parametrize("mode", MODES)
async def test_adopt_and_plain_threads(mode: str, db: str) -> None:
    async with open_env(mode, db, AGENT) as env:
        await env.turn(cfg("plain-1"), "hello")
        await env.turn(cfg("plain-1"), "weather in Rome")
        await env.turn(cfg("plain-2"), "hello")
        s = await env.call("adopt", "plain-1", user_id="u", name="adopted", metadata={"a": 1})
        history = await env.history(cfg("plain-1"))
        assert s.internal_session_ids == ("plain-1",)
        assert s.current_thread_id == "plain-1"
        assert (s.branch_count, s.total_checkpoints) == (0, len(history))
        branch = await env.call("rollback", s.id, history[-3])
        await env.turn(await env.call("config", s.id), "again")
        assert await env.transcript(branch.config) == await env.reference(["hello", "again"])
        # Threads outside any session keep working as plain checkpointer threads.
        await env.turn(cfg("plain-2"), "weather in Rome")
        assert await env.transcript(cfg("plain-2")) == await env.reference(
            ["hello", "weather in Rome"]
        )
        assert await env.call("session_of", "plain-2") is None
        assert [x.id for x in await env.call("list_sessions")] == [s.id]


async def test_migration_from_schema_2_then_adopt(sqlite_db: str) -> None:
    """A database written before sessions existed is upgraded in place; its threads can
    be adopted."""
    conn = sqlite3.connect(sqlite_db, isolation_level=None)
    migrate(conn, schema.MIGRATIONS[:2])
    store = CheckpointStore(StrictSerializer(), sql=sqlite_sql)
    store.search.enabled = False  # the version that wrote schema 2 had no message index
    config: RunnableConfig = cfg("old-thread")
    with todays_additions(conn), write_transaction(conn):
        for step in range(3):
            checkpoint = empty_checkpoint()
            checkpoint["id"] = str(uuid6(clock_seq=step))
            checkpoint["channel_values"] = {"n": step}
            checkpoint["channel_versions"] = {"n": step + 1}
            config = store.put(
                conn, config, checkpoint, {"source": "loop", "step": step}, {"n": step + 1}
            )
    assert schema_version(conn) == 2
    conn.close()
    with AgentGitSaver.from_conn_string(sqlite_db) as saver:
        assert schema_version(saver.conn) == len(schema.MIGRATIONS) == 15
        mgr = SessionManager(saver)
        s = mgr.adopt("old-thread")
        assert (s.total_checkpoints, s.branch_count) == (3, 0)
        branch = mgr.rollback(s.id, config)
        assert branch.fork_checkpoint_id == config["configurable"]["checkpoint_id"]


# --- errors: specific, naming the id, changing nothing --------------------------------------


@pytest.fixture
def error_world(db: str) -> Any:
    """Two sessions with history and tags, and one plain thread."""
    with AgentGitSaver.from_conn_string(db) as saver:
        graph = COUNTER.build().compile(checkpointer=saver)
        mgr = SessionManager(saver)
        a = mgr.create_session(name="a")
        b = mgr.create_session(name="b")
        lone = mgr.create_session(name="lone")
        for s in (a, b):
            COUNTER.turn(graph, mgr.config(s.id), "one")
            COUNTER.turn(graph, mgr.config(s.id), "two")
        COUNTER.turn(graph, cfg("plain"), "one")
        a_ckpt = cid(list(graph.get_state_history(mgr.config(a.id)))[2])
        b_ckpt = cid(list(graph.get_state_history(mgr.config(b.id)))[2])
        plain_ckpt = cid(graph.get_state(cfg("plain")))
        mgr.tag(a.id, a_ckpt, "keep")
        a_branch = mgr.branch(a.id, a_ckpt)
        yield {
            "mgr": mgr,
            "saver": saver,
            "a": a.id,
            "b": b.id,
            "lone": lone.id,
            "a_main": a.current_thread_id,
            "a_branch": a_branch.thread_id,
            "b_main": b.current_thread_id,
            "lone_main": lone.current_thread_id,
            "a_ckpt": a_ckpt,
            "b_ckpt": b_ckpt,
            "plain_ckpt": plain_ckpt,
        }


NOWHERE = "1f000000-0000-6000-8000-000000000000"

ERROR_CASES: list[tuple[str, Callable[[dict[str, Any]], Any], type[AgentGitError], str]] = [
    ("rollback unknown session", lambda w: w["mgr"].rollback("ghost-s", w["a_ckpt"]),
     SessionNotFoundError, "ghost-s"),
    ("rollback checkpoint of another session", lambda w: w["mgr"].rollback(w["a"], w["b_ckpt"]),
     CheckpointNotFoundError, "b_ckpt"),
    ("rollback checkpoint of a plain thread",
     lambda w: w["mgr"].rollback(w["a"], cfg("plain", w["plain_ckpt"])),
     CheckpointNotFoundError, "plain_ckpt"),
    ("rollback checkpoint from nowhere", lambda w: w["mgr"].rollback(w["a"], NOWHERE),
     CheckpointNotFoundError, NOWHERE),
    ("rollback unknown tag", lambda w: w["mgr"].rollback(w["a"], "no-such-tag"),
     TagNotFoundError, "no-such-tag"),
    ("rollback another session's tag", lambda w: w["mgr"].rollback(w["b"], "keep"),
     TagNotFoundError, "keep"),
    ("rollback subgraph namespace",
     lambda w: w["mgr"].rollback(
         w["a"], {"configurable": {"checkpoint_id": w["a_ckpt"], "checkpoint_ns": "x:1"}}),
     CheckpointNotFoundError, "a_ckpt"),
    ("rollback head of a thread with no checkpoints",
     lambda w: w["mgr"].rollback(w["lone"], cfg(w["lone_main"])),
     CheckpointNotFoundError, "lone_main"),
    ("rollback head of a thread outside the session",
     lambda w: w["mgr"].rollback(w["a"], cfg(w["b_main"])), BranchNotFoundError, "b_main"),
    ("rollback onto an existing thread id",
     lambda w: w["mgr"].rollback(w["a"], w["a_ckpt"], thread_id="plain"),
     ThreadExistsError, "plain"),
    ("rollback onto another session's thread id",
     lambda w: w["mgr"].rollback(w["a"], w["a_ckpt"], thread_id=w["lone_main"]),
     ThreadExistsError, "lone_main"),
    ("branch unknown checkpoint", lambda w: w["mgr"].branch(w["a"], NOWHERE),
     CheckpointNotFoundError, NOWHERE),
    ("checkout another session's thread", lambda w: w["mgr"].checkout(w["a"], w["b_main"]),
     BranchNotFoundError, "b_main"),
    ("checkout unknown thread", lambda w: w["mgr"].checkout(w["a"], "ghost-t"),
     BranchNotFoundError, "ghost-t"),
    ("checkout unknown session", lambda w: w["mgr"].checkout("ghost-s", w["a_main"]),
     SessionNotFoundError, "ghost-s"),
    ("tag twice", lambda w: w["mgr"].tag(w["a"], w["a_ckpt"], "keep"), TagExistsError, "keep"),
    ("tag that looks like an id", lambda w: w["mgr"].tag(w["a"], w["a_ckpt"], NOWHERE),
     InvalidTagError, NOWHERE),
    ("tag with a bidirectional override",
     lambda w: w["mgr"].tag(w["a"], w["a_ckpt"], "evil\u202egnp.exe"), InvalidTagError,
     "bidirectional overrides"),
    ("branch name with a bidirectional isolate",
     lambda w: w["mgr"].rollback(w["a"], w["a_ckpt"], name="evil\u2066x"),
     InvalidBranchNameError, "bidirectional overrides"),
    ("tag unknown checkpoint", lambda w: w["mgr"].tag(w["a"], NOWHERE, "fresh"),
     CheckpointNotFoundError, NOWHERE),
    ("tag unknown session", lambda w: w["mgr"].tag("ghost-s", w["a_ckpt"], "fresh"),
     SessionNotFoundError, "ghost-s"),
    ("untag unknown tag", lambda w: w["mgr"].untag(w["a"], "nope"), TagNotFoundError, "nope"),
    ("tags unknown session", lambda w: w["mgr"].tags("ghost-s"), SessionNotFoundError, "ghost-s"),
    ("config unknown session", lambda w: w["mgr"].config("ghost-s"), SessionNotFoundError,
     "ghost-s"),
    ("branches unknown session", lambda w: w["mgr"].branches("ghost-s"), SessionNotFoundError,
     "ghost-s"),
    ("timeline unknown session", lambda w: w["mgr"].timeline("ghost-s"), SessionNotFoundError,
     "ghost-s"),
    ("deactivate unknown session", lambda w: w["mgr"].deactivate("ghost-s"),
     SessionNotFoundError, "ghost-s"),
    ("delete unknown session", lambda w: w["mgr"].delete_session("ghost-s"),
     SessionNotFoundError, "ghost-s"),
    ("delete unknown branch", lambda w: w["mgr"].delete_branch(w["a"], "ghost-t"),
     BranchNotFoundError, "ghost-t"),
    ("delete the last branch", lambda w: w["mgr"].delete_branch(w["lone"], w["lone_main"]),
     LastBranchError, "lone_main"),
    ("checkpoints of another session's thread",
     lambda w: w["mgr"].checkpoints(w["a"], thread_id=w["b_main"]), BranchNotFoundError,
     "b_main"),
    ("adopt a thread of a session", lambda w: w["mgr"].adopt(w["b_main"]), ThreadExistsError,
     "b_main"),
    ("adopt an unknown thread", lambda w: w["mgr"].adopt("ghost-t"), ThreadNotFoundError,
     "ghost-t"),
    ("create with an existing thread id",
     lambda w: w["mgr"].create_session(thread_id="plain"), ThreadExistsError, "plain"),
    ("diff unknown checkpoint", lambda w: w["mgr"].diff(NOWHERE, w["a_ckpt"]),
     CheckpointNotFoundError, NOWHERE),
    ("diff unknown tag in a session", lambda w: w["mgr"].diff("nope", w["a_ckpt"],
     session_id=w["a"]), TagNotFoundError, "nope"),
]  # fmt: skip


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_errors_name_the_id_and_change_nothing(
    case: tuple[str, Callable[[dict[str, Any]], Any], type[AgentGitError], str],
    error_world: dict[str, Any],
    db: str,
) -> None:
    _title, action, error, named = case
    named = error_world.get(named, named)
    before = dump_tables(db)
    with pytest.raises(error) as raised:
        action(error_world)
    assert named in str(raised.value)
    assert dump_tables(db) == before


async def test_async_errors_change_nothing(db: str) -> None:
    async with open_env("async", db, COUNTER) as env:
        s = await env.call("create_session")
        await env.turn(cfg(s.current_thread_id), "one")
        before = dump_tables(db)
        with pytest.raises(SessionNotFoundError, match="ghost"):
            await env.mgr.arollback("ghost", NOWHERE)
        with pytest.raises(CheckpointNotFoundError, match=NOWHERE):
            await env.mgr.arollback(s.id, NOWHERE)
        with pytest.raises(TagNotFoundError, match="missing-tag"):
            await env.mgr.abranch(s.id, "missing-tag")
        with pytest.raises(BranchNotFoundError, match="ghost-thread"):
            await env.mgr.acheckout(s.id, "ghost-thread")
        assert dump_tables(db) == before


# --- deleting -------------------------------------------------------------------------------


def thread_rows(db: str) -> dict[str | None, list[str]]:
    out: dict[str | None, list[str]] = {}
    for thread_id, checkpoint_id in sql_rows(
        db,
        "SELECT t.thread_id, c.checkpoint_id FROM agentgit_checkpoints c "
        "JOIN agentgit_threads t ON t.pk = c.thread_pk WHERE c.ns = ''",
    ):
        out.setdefault(thread_id, []).append(checkpoint_id)
    return out


@pytest.mark.parametrize("mode", MODES)
async def test_delete_session_spares_other_sessions(mode: str, db: str) -> None:
    async with open_env(mode, db, AGENT) as env:
        a = await env.call("create_session", name="a")
        a_main = a.current_thread_id
        for text in ["hello", "weather in Lima", "bye"]:
            await env.turn(cfg(a_main), text)
        a_history = await env.history(cfg(a_main))
        fork_at = a_history[4]
        a_branch = await env.call("rollback", a.id, a_history[2])
        await env.turn(a_branch.config, "a branch")
        # Another session starts from a plain fork of a's thread.
        if mode == "sync":
            env.saver.fork_thread(a_main, cid(fork_at), "b-root")
        else:
            await env.saver.afork_thread(a_main, cid(fork_at), "b-root")
        b = await env.call("adopt", "b-root", name="b")
        await env.turn(cfg("b-root"), "b talks")
        b_branch = await env.call("rollback", b.id, a_history[6])  # inherited from a
        await env.turn(b_branch.config, "b branch")
        b_before = await env.call("get_session", b.id)
        views = {t: await env.history(cfg(t)) for t in ("b-root", b_branch.thread_id)}

        await env.call("delete_session", a.id)
        assert await env.call("get_session", a.id) is None
        assert await env.call("get_session", b.id) == b_before
        for thread_id, history in views.items():
            assert [cid(x) for x in await env.history(cfg(thread_id))] == [cid(x) for x in history]
            assert (await env.state(cfg(thread_id))).values == history[0].values
        # Only what b still inherits of a's thread is kept, hidden, under no thread id.
        rows = thread_rows(db)
        assert a_main not in rows and a_branch.thread_id not in rows
        assert all(c <= cid(fork_at) for c in rows.get(None, []))
        assert len(rows.get(None, [])) == len(a_history) - 4

        await env.call("delete_session", b.id)
        counts = table_counts(db, CORE_TABLES + SESSION_TABLES)
        assert counts == dict.fromkeys(counts, 0)


@pytest.mark.parametrize("mode", MODES)
async def test_delete_source_thread_keeps_branches(mode: str, db: str) -> None:
    async with open_env(mode, db, COUNTER) as env:
        s = await env.call("create_session")
        main = s.current_thread_id
        for text in ["a", "bb", "ccc"]:
            await env.turn(cfg(main), text)
        history = await env.history(cfg(main))
        b1 = await env.call("rollback", s.id, history[4])
        await env.turn(b1.config, "dd")
        b2 = await env.call("rollback", s.id, await env.state(b1.config))
        await env.turn(b2.config, "eee")
        await env.call("checkout", s.id, main)
        views = {t: await env.history(cfg(t)) for t in (b1.thread_id, b2.thread_id)}

        after = await env.call("delete_branch", s.id, main)
        assert after.internal_session_ids == (b1.thread_id, b2.thread_id)
        assert after.current_thread_id == b2.thread_id  # the newest remaining
        assert after.branch_count == 2
        assert after.total_checkpoints == sum(
            b.checkpoint_count for b in await env.call("branches", s.id)
        )
        for thread_id, history_ in views.items():
            assert [cid(x) for x in await env.history(cfg(thread_id))] == [cid(x) for x in history_]
        kept = thread_rows(db)[None]  # main's rows that b1 still inherits
        assert kept and all(c <= cid(history[4]) for c in kept)
        assert "deleted thread" in str(await env.call("timeline", s.id))

        # Deleting the current branch makes its parent current.
        after = await env.call("delete_branch", s.id, b2.thread_id)
        assert (after.current_thread_id, after.branch_count) == (b1.thread_id, 1)

        # A thread deleted behind the manager's back (plain saver API) leaves its
        # branches working; the session lists it with no checkpoints.
        b3 = await env.call("branch", s.id, await env.state(b1.config))
        await env.turn(b3.config, "f")
        b3_history = await env.history(b3.config)
        if mode == "sync":
            env.saver.delete_thread(b1.thread_id)
        else:
            await env.saver.adelete_thread(b1.thread_id)
        assert [cid(x) for x in await env.history(b3.config)] == [cid(x) for x in b3_history]
        counts = {b.thread_id: b.checkpoint_count for b in await env.call("branches", s.id)}
        assert counts[b1.thread_id] == 0


# --- concurrency -----------------------------------------------------------------------------


def test_concurrent_processes(db: str) -> None:
    """Three processes create sessions, run and roll back in one file; counts are exact."""
    with AgentGitSaver.from_conn_string(db):
        pass  # create and migrate the file once, before the workers race
    ctx = multiprocessing.get_context("spawn")
    workers = [ctx.Process(target=process_worker, args=(db, w, 2, 2, 2)) for w in range(3)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(120)
    assert [p.exitcode for p in workers] == [0, 0, 0]
    with AgentGitSaver.from_conn_string(db) as saver:
        mgr = SessionManager(saver)
        sessions = mgr.list_sessions()
        assert len(sessions) == 6
        per_turn = 4  # input, __start__, record, bump
        for s in sessions:
            # Two turns on the first thread, then one turn on each of two branches.
            assert (s.branch_count, s.total_checkpoints) == (2, 2 * per_turn + 2 * per_turn)
            assert len(s.internal_session_ids) == 3
        rows = sql_rows(
            db, "SELECT count(*) FROM agentgit_checkpoints WHERE ns = '' AND hidden = 0"
        )[0][0]
        assert rows == sum(s.total_checkpoints for s in sessions)


def test_concurrent_threads_on_one_session(db: str) -> None:
    with AgentGitSaver.from_conn_string(db) as saver:
        graph = COUNTER.build().compile(checkpointer=saver)
        mgr = SessionManager(saver)
        s = mgr.create_session()
        COUNTER.turn(graph, mgr.config(s.id), "x")
        target = cid(graph.get_state(mgr.config(s.id)))
        made: list[Branch] = []
        errors: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(5):
                    made.append(mgr.rollback(s.id, target))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        s = mgr.get_session(s.id)
        assert s is not None and s.branch_count == 20
        assert len(set(s.internal_session_ids)) == 21
        assert s.current_thread_id in {b.thread_id for b in made}


async def test_concurrent_async_rollbacks(db: str) -> None:
    async with open_env("async", db, COUNTER) as env:
        s = await env.call("create_session")
        await env.turn(cfg(s.current_thread_id), "x")
        target = await env.state(cfg(s.current_thread_id))
        branches = await asyncio.gather(*(env.mgr.arollback(s.id, target) for _ in range(10)))
        s = await env.call("get_session", s.id)
        assert s.branch_count == 10
        assert set(s.internal_session_ids[1:]) == {b.thread_id for b in branches}


# --- rollback cost does not grow with history ---------------------------------------------------


def measure_rollback(path: str, n: int) -> dict[str, Any]:
    """Build a session whose thread has ``n`` checkpoints, then roll back into the middle
    of it: rows added per table, bytes of those rows, SQL statements and SQLite VM
    instructions executed."""
    with AgentGitSaver.from_conn_string(path) as saver:
        mgr = SessionManager(saver)
        s = mgr.create_session(thread_id="t")
        config: RunnableConfig = cfg("t")
        ids = []
        # One transaction for the whole chain keeps building 10,000 checkpoints quick.
        with saver.lock, write_transaction(saver.conn):
            for step in range(n):
                checkpoint = empty_checkpoint()
                checkpoint["id"] = str(uuid6(clock_seq=step))
                checkpoint["channel_values"] = {"n": step, "messages": [f"m{step}"]}
                checkpoint["channel_versions"] = {"n": step + 1, "messages": step + 1}
                config = saver.store.put(
                    saver.conn,
                    config,
                    checkpoint,
                    {"source": "loop", "step": step},
                    {"n": step + 1, "messages": step + 1},
                )
                ids.append(checkpoint["id"])
        mgr.tag(s.id, ids[n // 2], "middle")
        assert mgr.get_session(s.id).total_checkpoints == n  # type: ignore[union-attr]
        before = row_counts(saver.conn)
        statements: list[str] = []
        steps = [0]

        def on_step() -> int:
            steps[0] += 1
            return 0

        saver.conn.set_trace_callback(statements.append)
        saver.conn.set_progress_handler(on_step, 1)
        try:
            mgr.rollback(s.id, "middle", thread_id="branch")
            mgr.rollback(s.id, ids[n // 3], thread_id="branch-2")
        finally:
            saver.conn.set_progress_handler(None, 1)
            saver.conn.set_trace_callback(None)
        after = row_counts(saver.conn)
        new_bytes = (
            saver.conn.execute(
                "SELECT sum(length(thread_id) + length(fork_checkpoint_id) + length(created_at)) "
                "FROM agentgit_threads WHERE thread_id LIKE 'branch%'"
            ).fetchone()[0]
            + saver.conn.execute(
                "SELECT sum(length(thread_id) + length(session_id) + length(parent_thread_id) "
                "+ length(fork_checkpoint_id) + length(created_at)) FROM agentgit_session_threads "
                "WHERE thread_id LIKE 'branch%'"
            ).fetchone()[0]
        )
        return {
            "rows": {t: after[t] - before[t] for t in after},
            "bytes": new_bytes,
            "statements": len(statements),
            "vm_steps": steps[0],
        }


def test_rollback_cost_is_independent_of_history(tmp_path: Path) -> None:
    small = measure_rollback(str(tmp_path / "small.db"), 10)
    large = measure_rollback(str(tmp_path / "large.db"), 10_000)
    expected_rows = dict.fromkeys(small["rows"], 0)
    expected_rows.update({"agentgit_threads": 2, "agentgit_session_threads": 2})
    assert small["rows"] == large["rows"] == expected_rows
    assert small["bytes"] == large["bytes"]
    assert small["statements"] == large["statements"]
    # Every lookup is an index seek, so SQLite executes the same program either way.
    assert large["vm_steps"] == small["vm_steps"]


def test_branch_count_is_derived_consistently(db: str) -> None:
    """branch_count and total_checkpoints are derived from rows, never cached: what the
    manager reports equals what the tables say."""
    with AgentGitSaver.from_conn_string(db) as saver:
        graph = COUNTER.build().compile(checkpointer=saver)
        mgr = SessionManager(saver)
        s = mgr.create_session()
        COUNTER.turn(graph, mgr.config(s.id), "x")
        for snapshot in list(graph.get_state_history(mgr.config(s.id)))[:3]:
            mgr.branch(s.id, snapshot)
        s = mgr.get_session(s.id)
        assert s is not None
        forked = sql_rows(
            db,
            "SELECT count(*) FROM agentgit_session_threads "
            "WHERE session_id = ? AND fork_checkpoint_id IS NOT NULL",
            (s.id,),
        )[0][0]
        own = sql_rows(
            db,
            "SELECT count(*) FROM agentgit_checkpoints c JOIN agentgit_threads t "
            "ON t.pk = c.thread_pk JOIN agentgit_session_threads st ON st.thread_id = t.thread_id "
            "WHERE st.session_id = ? AND c.ns = '' AND c.hidden = 0",
            (s.id,),
        )[0][0]
        assert (s.branch_count, s.total_checkpoints) == (forked, own) == (3, 4)


async def test_sync_methods_over_the_async_saver_from_a_worker_thread(db: str) -> None:
    """With an AsyncAgentGitSaver the sync methods work from other threads (they hand the
    work to the saver's loop) and refuse to run on the loop itself."""
    async with open_env("async", db, COUNTER) as env:
        mgr = env.mgr
        s = await asyncio.to_thread(mgr.create_session, name="threaded")
        await env.turn(await mgr.aconfig(s.id), "x")
        target = await env.state(await mgr.aconfig(s.id))
        branch = await asyncio.to_thread(mgr.rollback, s.id, target)
        assert (await mgr.aget_session(s.id)).current_thread_id == branch.thread_id  # type: ignore[union-attr]
        with pytest.raises(asyncio.InvalidStateError):
            mgr.get_session(s.id)
