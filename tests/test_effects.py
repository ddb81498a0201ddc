"""Undoing tool side effects (langgraph_agentgit.effects) on real compiled graphs: a
``ToolNode`` agent and ``create_react_agent``, with a deterministic fake model whose
tools write what they do into a journal file (``tests/effects_shop.py``), on SQLite and
PostgreSQL, through the sync and the async API.

Expected plans and undos are derived from the journal (what the tools really did, in
the order they did it) and from the graph's own state, never written out by hand.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import operator
import os
import re
import uuid
import warnings
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypedDict

import effects_shop as shop
import pytest
from conftest import sql_rows
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.graph import END, START, StateGraph
from langgraph.prebuilt import ToolNode

from langgraph_agentgit import (
    AgentGitError,
    AgentGitSaver,
    AsyncAgentGitSaver,
    CheckpointNotFoundError,
    EffectsUndoneWarning,
    SessionEvent,
    SessionManager,
    SessionNotFoundError,
    ThreadExistsError,
    UndoFailedError,
    UndoRunNotFoundError,
)
from langgraph_agentgit.effects import EffectOutcome, RollbackResult

AGENTS: dict[str, Callable[[str, Any], Any]] = {
    "tool_node": shop.tool_node_agent,
    "react": shop.react_agent,
}
#: The tools the shop registers a runnable undo handler for.
UNDOABLE = ("create_order", "charge")


@dataclass
class World:
    """A saver, a manager with the shop's handlers, the agent, and the journal; every
    call goes through the sync API, or the async one when ``use_async``."""

    saver: Any
    mgr: SessionManager
    graph: Any
    journal: str
    use_async: bool

    async def call(self, method: str, /, *args: Any, **kwargs: Any) -> Any:
        if self.use_async:
            return await getattr(self.mgr, "a" + method)(*args, **kwargs)
        return getattr(self.mgr, method)(*args, **kwargs)

    async def turn(self, session_id: str, text: str) -> None:
        config = await self.call("config", session_id)
        if self.use_async:
            await self.graph.ainvoke({"messages": [("user", text)]}, config)
        else:
            self.graph.invoke({"messages": [("user", text)]}, config)

    async def state(self, session_id: str) -> Any:
        config = await self.call("config", session_id)
        if self.use_async:
            return await self.graph.aget_state(config)
        return self.graph.get_state(config)


@asynccontextmanager
async def world(
    db: str, journal: str, use_async: bool, agent: str = "tool_node", **handler_options: Any
) -> AsyncIterator[World]:
    handlers = shop.make_handlers(journal, use_async=use_async, **handler_options)
    if use_async:
        async with AsyncAgentGitSaver.from_conn_string(db) as saver:
            mgr = SessionManager(saver, undo=handlers)
            yield World(saver, mgr, AGENTS[agent](journal, saver), journal, True)
    else:
        with AgentGitSaver.from_conn_string(db) as saver:
            mgr = SessionManager(saver, undo=handlers)
            yield World(saver, mgr, AGENTS[agent](journal, saver), journal, False)


async def shop_history(w: World) -> tuple[str, int]:
    """A session with three turns; tag ``t1`` after the first. Returns the session id and
    how many tool executions the journal held at ``t1``."""
    s = await w.call("create_session", name="shop")
    await w.turn(s.id, "buy:apple")
    await w.call("tag", s.id, await w.state(s.id), "t1")
    mark = len(shop.read(w.journal, "do"))
    await w.turn(s.id, "buy:pear pay:10 mail:bob look:x boom:y")
    await w.turn(s.id, "buy:plum")
    return s.id, mark


def tool_messages(snapshot: Any) -> list[ToolMessage]:
    return [m for m in snapshot.values["messages"] if isinstance(m, ToolMessage)]


EXPECTED_STATUS = {
    "create_order": "will_undo",
    "charge": "will_undo",
    "send_email": "irreversible",
    "lookup": "no_handler",
    "explode": "tool_error",
}


@pytest.mark.parametrize("agent", sorted(AGENTS))
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_plan_undo_once_and_reopen(any_db: str, tmp_path: Path, mode: str, agent: str):
    journal = str(tmp_path / "journal.jsonl")
    async with world(any_db, journal, mode == "async", agent) as w:
        session_id, mark = await shop_history(w)
        done = shop.read(journal, "do")
        after = done[mark:]
        assert [d["tool"] for d in done[:mark]] == ["create_order"]  # apple, before t1

        # The plan: exactly the calls made after t1, newest first, with real results.
        plan = await w.call("plan_rollback", session_id, "t1")
        head = await w.state(session_id)
        tagged = await w.call("tags", session_id)
        assert plan.target_checkpoint_id == tagged["t1"]
        assert plan.head_checkpoint_id == head.config["configurable"]["checkpoint_id"]
        t1_config = {
            "configurable": {
                "thread_id": head.config["configurable"]["thread_id"],
                "checkpoint_id": tagged["t1"],
            }
        }
        at_t1 = await w.graph.aget_state(t1_config) if w.use_async else w.graph.get_state(t1_config)
        before = {m.id for m in at_t1.values["messages"]}
        # The calls as the model made them after t1 (tools of one step may run in
        # parallel, so the journal has them in any order within a turn).
        calls = [
            (c["name"], c["args"])
            for m in head.values["messages"]
            if isinstance(m, AIMessage) and m.id not in before
            for c in m.tool_calls
        ]
        assert Counter(json.dumps(c, sort_keys=True) for c in calls) == Counter(
            json.dumps([d["tool"], d["args"]], sort_keys=True) for d in after
        )
        assert [(p.effect.tool_name, p.effect.args) for p in plan.effects] == calls[::-1]
        assert [p.status for p in plan.effects] == [EXPECTED_STATUS[c[0]] for c in calls[::-1]]
        assert [p.effect.effect_id for p in plan.effects] == [
            m.id for m in reversed(tool_messages(head)) if m.id not in before
        ]
        new_results = {m.id: m for m in tool_messages(head)}
        first_turn = [p for p in plan.effects if p.effect.args == {"item": "apple"}]
        assert not first_turn
        for p in plan.effects:
            message = new_results[p.effect.effect_id]
            assert p.effect.result == message.content
            assert p.effect.artifact == message.artifact
        orders = {d["args"]["item"]: d["n"] for d in after if d["tool"] == "create_order"}
        for p in plan.effects:
            if p.effect.tool_name == "create_order":
                assert p.effect.artifact == {"order": orders[p.effect.args["item"]]}
        assert len(plan.effects) == len(tool_messages(head)) - 1  # all but apple's

        # Undo: newest first, each handler given the real result.
        result: RollbackResult = await w.call("rollback", session_id, "t1", undo_effects=True)
        assert result.complete
        assert (await w.call("config", session_id)) == result.branch.config  # type: ignore[union-attr]
        undone = shop.read(journal, "undo")
        expected = [c for c in calls[::-1] if c[0] in UNDOABLE]
        assert [(u["tool"], u["args"]) for u in undone] == expected
        for u in undone:
            if u["tool"] == "create_order":
                number = orders[u["args"]["item"]]
                assert u["artifact"] == {"order": number}
                assert u["result"] == f"order #{number} for {u['args']['item']}"
            else:
                assert u["result"] == "charged $10"
        assert [o.effect.effect_id for o in result.outcomes] == [
            p.effect.effect_id for p in plan.effects
        ]
        assert [o.status for o in result.outcomes] == [
            "undone" if p.status == "will_undo" else "skipped" for p in plan.effects
        ]
        assert {o.reason for o in result.skipped} == {"irreversible", "no_handler", "tool_error"}

        # The timeline marks the branch that was left, and only it.
        timeline = await w.call("timeline", session_id)
        main_thread = next(b.branch.thread_id for b in timeline.branches if b.branch.name == "main")
        assert sorted(timeline.undone[main_thread]) == sorted(c[0] for c in expected)
        assert set(timeline.undone) == {main_thread}
        marked = [b for b in timeline.to_dict()["branches"] if b["undone_effects"]]
        assert [b["thread_id"] for b in marked] == [main_thread]
        assert f"{len(expected)} effects undone (charge, create_order)" in timeline.format(None)

        # The new branch inherits only apple; main still shows every call.
        on_branch = await w.call("effects", session_id)
        assert [e.effect.args for e in on_branch] == [{"item": "apple"}]
        on_main = await w.call("effects", session_id, thread_id="main")
        assert len(on_main) == len(done)

        # Rolling back again from the new branch: nothing after t1 there.
        again = await w.call("rollback", session_id, "t1", undo_effects=True)
        assert again.outcomes == ()
        # From main again (a sibling of the branch): everything already undone. Checking
        # main out says so; the branch, which only inherits apple, does not.
        with pytest.warns(EffectsUndoneWarning, match=r"3 tool effect\(s\) undone"):
            await w.call("checkout", session_id, "main")
        replan = await w.call("plan_rollback", session_id, "t1")
        assert [p.status for p in replan.effects if p.effect.tool_name in UNDOABLE] == [
            "undone"
        ] * len(expected)
        twice = await w.call("rollback", session_id, "t1", undo_effects=True)
        assert not twice.undone
        assert {o.reason for o in twice.skipped if o.effect.tool_name in UNDOABLE} == {"undone"}
        assert shop.read(journal, "undo") == undone
        with warnings.catch_warnings():
            warnings.simplefilter("error", EffectsUndoneWarning)
            await w.call("checkout", session_id, result.branch_thread_id)
        with pytest.warns(EffectsUndoneWarning):
            await w.call("checkout", session_id, "main")

    # Everything survives a reopen of the database.
    async with world(any_db, journal, mode == "async", agent) as w:
        replan = await w.call("plan_rollback", session_id, "t1")
        assert [p.status for p in replan.effects if p.effect.tool_name in UNDOABLE] == [
            "undone"
        ] * len(expected)
        runs = await w.call("undo_runs", session_id)
        assert [r.status for r in runs] == ["done"] * 3
        records = await w.call("undone_effects", session_id)
        assert sorted(r.status for r in records.values()) == ["done"] * len(expected)
        assert {r.run_id for r in records.values()} == {result.run_id}

        # Back to the very first checkpoint: only apple, the one effect left, is undone.
        first = (await w.call("checkpoints", session_id))[-1]
        result = await w.call("rollback", session_id, first.config, undo_effects=True)
        assert [(o.effect.args, o.status) for o in result.outcomes if o.status != "skipped"] == [
            ({"item": "apple"}, "undone")
        ]
        assert shop.read(journal, "undo")[:-1] == undone
        last = shop.read(journal, "undo")[-1]
        assert (last["args"], last["artifact"]) == ({"item": "apple"}, {"order": 1})
        counts = Counter(u["effect"] for u in shop.read(journal, "undo"))
        assert set(counts.values()) == {1}


def undo_counts(journal: str) -> Counter[str]:
    return Counter(u["effect"] for u in shop.read(journal, "undo"))


@pytest.mark.parametrize("on_error", ["stop", "continue"])
@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_failing_handler(any_db: str, tmp_path: Path, mode: str, on_error: str):
    journal = str(tmp_path / "journal.jsonl")
    broken = {"charge": True}
    fail = lambda effect: broken.get(effect.tool_name, False)  # noqa: E731
    async with world(any_db, journal, mode == "async", fail=fail) as w:
        session_id, _ = await shop_history(w)
        plan = await w.call("plan_rollback", session_id, "t1")
        order = [p.effect for p in plan.to_undo]
        assert [e.tool_name for e in order] == ["create_order", "charge", "create_order"]
        result = await w.call("rollback", session_id, "t1", undo_effects=True, on_error=on_error)
        by_id = {o.effect.effect_id: o for o in result.outcomes}
        statuses = [by_id[e.effect_id].status for e in order]
        if on_error == "stop":
            assert statuses == ["undone", "failed", "not_run"]
        else:
            assert statuses == ["undone", "failed", "undone"]
        failed = by_id[order[1].effect_id]
        assert failed.error == f"RuntimeError: refund failed for {order[1].effect_id}"
        assert not result.complete
        with pytest.raises(UndoFailedError) as raised:
            result.raise_for_failures()
        assert raised.value.result is result
        assert order[1].effect_id in str(raised.value)
        assert [r.status for r in await w.call("undo_runs", session_id)] == ["incomplete"]
        assert [u["effect"] for u in shop.read(journal, "undo")] == [
            e.effect_id for e, s in zip(order, statuses, strict=True) if s == "undone"
        ]
        # What is left shows in a plan from the abandoned branch, with the error.
        with pytest.warns(EffectsUndoneWarning):
            await w.call("checkout", session_id, "main")
        left = {
            p.effect.effect_id: p for p in (await w.call("plan_rollback", session_id, "t1")).effects
        }
        assert left[order[1].effect_id].status == "will_undo"
        assert left[order[1].effect_id].last_error == failed.error
        assert left[order[2].effect_id].status == ("will_undo" if on_error == "stop" else "undone")

        # Fixed: resume finishes the run, undoing each effect once.
        broken["charge"] = False
        [resumed] = await w.call("resume_undo", session_id)
        assert resumed.run_id == result.run_id
        assert resumed.complete
        assert {o.effect.effect_id for o in resumed.undone} == {
            e.effect_id for e, s in zip(order, statuses, strict=True) if s != "undone"
        }
        assert undo_counts(journal) == Counter(e.effect_id for e in order)
        assert [r.status for r in await w.call("undo_runs", session_id)] == ["done"]
        assert await w.call("resume_undo", session_id) == []


def run_process(target: Callable[..., None], *args: Any) -> int:
    ctx = multiprocessing.get_context("spawn")
    proc = ctx.Process(target=target, args=args)
    proc.start()
    proc.join(300)
    assert proc.exitcode is not None, "the worker did not finish"
    return proc.exitcode


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_crash_mid_undo_then_resume(any_db: str, tmp_path: Path, mode: str):
    journal = str(tmp_path / "journal.jsonl")
    async with world(any_db, journal, mode == "async") as w:
        session_id, _ = await shop_history(w)
        plan = await w.call("plan_rollback", session_id, "t1")
        order = [p.effect.effect_id for p in plan.to_undo]
        tools = [p.effect.tool_name for p in plan.to_undo]
        assert tools == ["create_order", "charge", "create_order"]

    # Another process rolls back and dies in the middle: in the handler of the charge.
    assert run_process(shop.crash_worker, any_db, journal, session_id, "t1", "charge") == 3
    assert shop.read(journal, "survived") == []
    assert [u["effect"] for u in shop.read(journal, "undo")] == order[:1]

    async with world(any_db, journal, mode == "async") as w:
        [run] = await w.call("undo_runs", session_id)
        assert run.status == "running"
        records = await w.call("undone_effects", session_id)
        assert {k: r.status for k, r in records.items()} == {
            order[0]: "done",
            order[1]: "running",
            order[2]: "pending",
        }
        # The branch was opened before the handlers ran, and is current.
        assert (await w.call("config", session_id))["configurable"]["thread_id"] == (
            run.branch_thread_id
        )
        # A resume does not run the in-doubt charge again unless told to.
        [first] = await w.call("resume_undo", session_id)
        assert [
            (o.effect.effect_id, o.status) for o in first.outcomes if o.status != "skipped"
        ] == [
            (order[1], "in_doubt"),
            (order[2], "not_run"),
        ]
        assert [u["effect"] for u in shop.read(journal, "undo")] == order[:1]
        [second] = await w.call("resume_undo", session_id, rerun_in_doubt=True)
        assert second.complete
        assert [o.effect.effect_id for o in second.undone] == order[1:]
        assert undo_counts(journal) == Counter(order)
        assert await w.call("resume_undo", session_id) == []
        assert [r.status for r in await w.call("undo_runs", session_id)] == ["done"]


async def test_two_processes_roll_back_at_once(any_db: str, tmp_path: Path):
    journal = str(tmp_path / "journal.jsonl")
    async with world(any_db, journal, False) as w:
        session_id, _ = await shop_history(w)
        order = [
            p.effect.effect_id for p in (await w.call("plan_rollback", session_id, "t1")).to_undo
        ]
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    procs = [
        ctx.Process(target=shop.rollback_worker, args=(any_db, journal, session_id, "t1", barrier))
        for _ in range(2)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(300)
    assert [proc.exitcode for proc in procs] == [0, 0]
    # Each effect was undone exactly once, and exactly one of the two says it did it.
    assert undo_counts(journal) == Counter(order)
    results = shop.read(journal, "result")
    assert len(results) == 2
    undone_by = Counter(e for r in results for e, status, _ in r["outcomes"] if status == "undone")
    assert undone_by == Counter(order)
    for r in results:
        for effect_id, status, reason in r["outcomes"]:
            if effect_id in order and status != "undone":
                assert (status, reason) in (("skipped", "undone"), ("skipped", "in_progress"))


async def test_registration_errors_and_cleanup(any_db: str, tmp_path: Path):
    journal = str(tmp_path / "journal.jsonl")
    async with world(any_db, journal, False) as w:
        with pytest.raises(ValueError, match="undo kind"):
            w.mgr.register_undo("charge", print, kind="maybe")
        with pytest.raises(TypeError):
            w.mgr.register_undo("charge", None)
        session_id, _ = await shop_history(w)
        with pytest.raises(ValueError, match="on_error"):
            w.mgr.rollback(session_id, "t1", undo_effects=True, on_error="ignore")  # type: ignore[call-overload]
        with pytest.raises(UndoRunNotFoundError):
            w.mgr.resume_undo(session_id, run_id="no-such-run")
        # Without undo_effects a rollback is what it always was: a branch, nothing undone.
        branch = w.mgr.rollback(session_id, "t1")
        assert branch.thread_id == w.mgr.config(session_id)["configurable"]["thread_id"]
        assert shop.read(journal, "undo") == []
        # A handler registered later counts; deleting the session deletes its records.
        w.mgr.register_undo("send_email", shop.make_handlers(journal)["create_order"])
        w.mgr.checkout(session_id, "main")  # nothing undone yet: no warning
        result = w.mgr.rollback(session_id, "t1", undo_effects=True)
        assert "send_email" in {o.effect.tool_name for o in result.undone}
        w.mgr.delete_session(session_id)
    for table in ("agentgit_undo_runs", "agentgit_undone_effects"):
        assert sql_rows(any_db, f"SELECT count(*) FROM {table}") == [(0,)]


async def test_copy_keeps_what_was_undone(tmp_path: Path):
    """copy_database carries the undo records: in the copy, nothing is undone twice."""
    import pg

    from langgraph_agentgit.transfer import copy_database

    journal = str(tmp_path / "journal.jsonl")
    source = str(tmp_path / "source.db")
    async with world(source, journal, False) as w:
        session_id, _ = await shop_history(w)
        result = w.mgr.rollback(session_id, "t1", undo_effects=True)
        assert len(result.undone) == 3
    with pg.fresh_schema() as url:
        report = copy_database(source, url)
        assert (report.undo_runs, report.undone_effects) == (1, 3)
        async with world(url, journal, False) as w:
            with pytest.warns(EffectsUndoneWarning):
                w.mgr.checkout(session_id, "main")
            again = w.mgr.rollback(session_id, "t1", undo_effects=True)
            assert not again.undone
            assert {o.reason for o in again.skipped if o.effect.tool_name in UNDOABLE} == {"undone"}
    assert undo_counts(journal) == Counter(o.effect.effect_id for o in result.undone)


async def test_export_import_keeps_what_was_undone(any_db: str, tmp_path: Path):
    """An export carries a session's undo runs and undone effects; in the imported copy
    (kept ids, or new ones) nothing is undone twice, and a broken undo record is refused."""
    import io

    import pg

    from langgraph_agentgit import ExportFormatError, ImportConflictError
    from langgraph_agentgit.backends import is_postgres_url

    journal = str(tmp_path / "journal.jsonl")
    async with world(any_db, journal, False) as w:
        session_id, _ = await shop_history(w)
        result = w.mgr.rollback(session_id, "t1", undo_effects=True)
        assert len(result.undone) == 3
        out = io.StringIO()
        report = w.mgr.export_sessions(out)
        assert (report.undo_runs, report.undone_effects) == (1, 3)
        runs, records = w.mgr.undo_runs(session_id), w.mgr.undone_effects(session_id)
        main = w.mgr.get_branch(session_id, "main").thread_id
    text = out.getvalue()
    lines = [json.loads(line) for line in text.splitlines()]
    assert [r["id"] for r in lines if r["type"] == "undo_run"] == [result.run_id]

    def broken(kind: str, name: str, value: Any) -> str:
        changed = [dict(r) for r in lines]
        next(r for r in changed if r["type"] == kind)[name] = value
        # Without the digest (as a file written before it): the record's own check
        # is what is tested here.
        del changed[-1]["sha256"]
        return "".join(json.dumps(r) + "\n" for r in changed)

    with contextlib.ExitStack() as stack:
        target = (
            stack.enter_context(pg.fresh_schema())
            if is_postgres_url(any_db)
            else str(tmp_path / "target.db")
        )
        async with world(target, journal, False) as t:
            for kind, name, value in (
                ("undone_effect", "run_id", "no-such-run"),
                ("undo_run", "session_id", "no-such-session"),
                ("undone_effect", "status", "maybe"),
            ):
                with pytest.raises(ExportFormatError) as caught:
                    t.mgr.import_sessions(io.StringIO(broken(kind, name, value)))
                assert caught.value.field == name
            t.mgr.import_sessions(io.StringIO(text))
            assert t.mgr.undo_runs(session_id) == runs
            assert t.mgr.undone_effects(session_id) == records
            with pytest.warns(EffectsUndoneWarning):
                t.mgr.checkout(session_id, "main")
            again = t.mgr.rollback(session_id, "t1", undo_effects=True)
            assert not again.undone
            assert {o.reason for o in again.skipped if o.effect.tool_name in UNDOABLE} == {"undone"}
            # Imported again under new ids: the runs get new ids too, and the copy's
            # records name its own threads.
            with pytest.raises(ImportConflictError):
                t.mgr.import_sessions(io.StringIO(text))
            copy = t.mgr.import_sessions(io.StringIO(text), on_conflict="new_ids")
            new_session = copy.renamed_sessions[session_id]
            assert set(copy.renamed_undo_runs) == {result.run_id}
            [run] = t.mgr.undo_runs(new_session)
            assert run.run_id == copy.renamed_undo_runs[result.run_id]
            assert run.source_thread_id == copy.renamed_threads[main]
            assert {r.thread_id for r in t.mgr.undone_effects(new_session).values()} == {
                copy.renamed_threads[main]
            }
            with pytest.warns(EffectsUndoneWarning):
                t.mgr.checkout(new_session, "main")
            replan = t.mgr.plan_rollback(new_session, "t1")
            assert [p.status for p in replan.effects if p.effect.tool_name in UNDOABLE] == [
                "undone"
            ] * 3
    assert undo_counts(journal) == Counter(o.effect.effect_id for o in result.undone)


# --- ownership and events (SessionManager(user_id=...), mgr.on) -------------------------------

#: Every table a rollback, an undo or a session change writes.
ALL_TABLES = (
    "agentgit_threads",
    "agentgit_checkpoints",
    "agentgit_writes",
    "agentgit_blobs",
    "agentgit_sessions",
    "agentgit_session_threads",
    "agentgit_tags",
    "agentgit_undo_runs",
    "agentgit_undone_effects",
)


def all_rows(db: str) -> dict[str, Any]:
    return {t: sorted(sql_rows(db, f"SELECT * FROM {t}"), key=repr) for t in ALL_TABLES}


async def call_on(w: World, mgr: SessionManager, method: str, /, *args: Any, **kw: Any) -> Any:
    if w.use_async:
        return await getattr(mgr, "a" + method)(*args, **kw)
    return getattr(mgr, method)(*args, **kw)


async def outcome_on(
    w: World, mgr: SessionManager, method: str, /, *args: Any, **kw: Any
) -> tuple[type[BaseException], str] | None:
    """The error class and message a call raises (``None`` if it does not)."""
    try:
        await call_on(w, mgr, method, *args, **kw)
    except AgentGitError as exc:
        return type(exc), str(exc)
    return None


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_scoped_undo_methods_refuse_another_users_session(
    any_db: str, tmp_path: Path, mode: str
):
    journal = str(tmp_path / "journal.jsonl")
    broken = {"charge": True}
    fail = lambda effect: broken.get(effect.tool_name, False)  # noqa: E731
    async with world(any_db, journal, mode == "async") as w:
        handlers = shop.make_handlers(journal, use_async=w.use_async, fail=fail)
        alice = SessionManager(w.saver, user_id="alice", undo=handlers)
        bob = SessionManager(w.saver, user_id="bob", undo=handlers)
        w.mgr = alice
        session_id, _ = await shop_history(w)
        head = (await w.state(session_id)).config["configurable"]["checkpoint_id"]
        # Alice's undo stops at the failing refund: an incomplete run, claims, and effects
        # left to resume, so every undo method has something of hers to find.
        first = await call_on(w, alice, "rollback", session_id, "t1", undo_effects=True)
        assert [o.status for o in first.outcomes if o.effect.tool_name in UNDOABLE] == [
            "undone",
            "failed",
            "not_run",
        ]
        w.mgr = bob
        other = await call_on(w, bob, "create_session", name="bob's")
        await w.turn(other.id, "look:z")
        missing = str(uuid.uuid4())

        def calls(sid: str) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
            return [
                ("plan_rollback", (sid, "t1"), {}),
                ("plan_rollback", (sid, head), {}),
                ("rollback", (sid, "t1"), {"undo_effects": True}),
                ("rollback", (sid, head), {"undo_effects": True, "on_error": "continue"}),
                ("resume_undo", (sid,), {}),
                ("resume_undo", (sid,), {"run_id": first.run_id}),
                ("resume_undo", (sid,), {"rerun_in_doubt": True, "on_error": "continue"}),
                ("effects", (sid,), {}),
                ("effects", (sid,), {"thread_id": "main"}),
                ("undo_runs", (sid,), {}),
                ("undone_effects", (sid,), {}),
                ("checkout", (sid, "main"), {}),
                ("timeline", (sid,), {}),
            ]

        before = all_rows(any_db)
        journal_before = shop.read(journal, "undo")
        with warnings.catch_warnings():
            warnings.simplefilter("error", EffectsUndoneWarning)  # bob learns nothing
            for (method, theirs, kw), (_, absent, absent_kw) in zip(
                calls(session_id), calls(missing), strict=True
            ):
                seen = await outcome_on(w, bob, method, *theirs, **kw)
                expected = await outcome_on(w, bob, method, *absent, **absent_kw)
                assert seen is not None and expected is not None, method
                assert seen[0] is expected[0] is SessionNotFoundError, method
                assert seen[1].replace(session_id, "<id>") == expected[1].replace(
                    missing, "<id>"
                ), method
            # Bob's own undo cannot take a thread id of alice's, nor learn her session.
            failure = await outcome_on(
                w,
                bob,
                "rollback",
                other.id,
                await w.state(other.id),
                thread_id=first.source_thread_id,
                undo_effects=True,
            )
            assert failure is not None and failure[0] is ThreadExistsError
            assert session_id not in failure[1]
        assert all_rows(any_db) == before  # bob changed nothing
        assert shop.read(journal, "undo") == journal_before  # and ran no handler of hers

        # Alice sees and finishes all of it on her own session.
        assert [r.run_id for r in await call_on(w, alice, "undo_runs", session_id)] == [
            first.run_id
        ]
        records = await call_on(w, alice, "undone_effects", session_id)
        assert sorted(r.status for r in records.values()) == ["done", "failed"]
        broken["charge"] = False
        [resumed] = await call_on(w, alice, "resume_undo", session_id, run_id=first.run_id)
        assert resumed.complete
        assert undo_counts(journal) == Counter(
            o.effect.effect_id for o in first.outcomes if o.effect.tool_name in UNDOABLE
        )
        with pytest.warns(EffectsUndoneWarning):
            await call_on(w, alice, "checkout", session_id, "main")


def _current_thread(db: str, session_id: str) -> str | None:
    """The session's current thread as another connection sees it (committed data)."""
    rows = sql_rows(
        db, "SELECT current_thread_id FROM agentgit_sessions WHERE id = ?", (session_id,)
    )
    return rows[0][0] if rows else None


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_rollback_with_undo_effects_emits_the_rollback_event(
    any_db: str, tmp_path: Path, mode: str
):
    journal = str(tmp_path / "journal.jsonl")
    async with world(any_db, journal, mode == "async") as w:
        w.mgr = SessionManager(
            w.saver, user_id="ada", undo=shop.make_handlers(journal, use_async=w.use_async)
        )
        session_id, _ = await shop_history(w)
        source = (await w.call("config", session_id))["configurable"]["thread_id"]
        target = (await w.call("tags", session_id))["t1"]
        seen: list[SessionEvent] = []
        at_callback: list[tuple[str | None, int]] = []

        def record(event: SessionEvent) -> None:
            seen.append(event)
            at_callback.append(
                (_current_thread(any_db, event.session_id), len(shop.read(journal, "undo")))
            )

        w.mgr.on("rollback", record)
        result = await w.call("rollback", session_id, "t1", undo_effects=True)
        assert result.complete and len(result.undone) == 3
        branch = result.branch
        assert branch is not None
        assert seen == [
            SessionEvent(
                "rollback",
                session_id,
                "ada",
                source_thread_id=source,
                thread_id=branch.thread_id,
                checkpoint_id=target,
                name=branch.name,
            )
        ]
        # Emitted once the branch committed (another connection sees it current), before
        # the handlers ran.
        assert at_callback == [(branch.thread_id, 0)]
        assert len(shop.read(journal, "undo")) == 3

        # A rollback with nothing left to undo still is a rollback; a failed one emits
        # nothing.
        again = await w.call("rollback", session_id, "t1", undo_effects=True, name="again")
        assert again.outcomes == ()
        # (t1 was written on main: the new branch hangs off main, as a plain rollback's.)
        assert seen[-1] == SessionEvent(
            "rollback", session_id, "ada", source, again.branch_thread_id, target, "again"
        )
        with pytest.raises(CheckpointNotFoundError):
            await w.call("rollback", session_id, str(uuid.uuid4()), undo_effects=True)
        assert len(seen) == 2


# --- the command ------------------------------------------------------------------------------


def test_cli_rollback_undo_effects(any_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from typer.testing import CliRunner

    from langgraph_agentgit.cli import app

    journal = str(tmp_path / "journal.jsonl")
    module = f"shop_undo_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(
        f"import effects_shop\nHANDLERS = effects_shop.make_handlers({journal!r})\n"
    )
    monkeypatch.chdir(tmp_path)
    with AgentGitSaver.from_conn_string(any_db) as saver:
        graph = shop.tool_node_agent(journal, saver)
        mgr = SessionManager(saver, undo=shop.make_handlers(journal))
        s = mgr.create_session(name="shop")
        for text in ("buy:apple", "buy:pear pay:10 mail:bob", "buy:plum"):
            graph.invoke({"messages": [("user", text)]}, mgr.config(s.id))
            if text == "buy:apple":
                mgr.tag(s.id, graph.get_state(mgr.config(s.id)), "t1")
        plan = mgr.plan_rollback(s.id, "t1")
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(app, [*args, "--db", any_db], env={"COLUMNS": "200"})

    dry = invoke(
        "rollback", s.id, "t1", "--undo-effects", "--dry-run", "--handlers", f"{module}:HANDLERS"
    )
    assert dry.exit_code == 0, dry.output
    for p in plan.effects:
        assert f"{p.effect.tool_name}(" in dry.stdout
    assert "will_undo" in dry.stdout and "irreversible" in dry.stdout
    dry_json = invoke("rollback", s.id, "t1", "--undo-effects", "--dry-run", "--json")
    assert dry_json.exit_code == 0, dry_json.output
    # Without handlers loaded, a dry run says which calls have none.
    assert [(e["effect_id"], e["status"]) for e in json.loads(dry_json.stdout)["plan"]] == [
        (p.effect.effect_id, "no_handler" if p.kind is not None else p.status) for p in plan.effects
    ]
    assert shop.read(journal, "undo") == []
    assert invoke("rollback", s.id, "t1", "--dry-run").exit_code == 2
    # A dry run refuses the name the real run would refuse, instead of planning for it.
    for bad, why in (("main", "already has a branch named 'main'"), ("abc123", "hex digits")):
        named = invoke("rollback", s.id, "t1", "--undo-effects", "--dry-run", "--name", bad)
        assert named.exit_code == 2 and why in named.stderr, named.output
    # Handlers or --on-error without --undo-effects: the user means the effects undone,
    # and a plain rollback would move the session on without undoing them.
    for extra in (["--handlers", f"{module}:HANDLERS"], ["--on-error", "continue"]):
        plain = invoke("rollback", s.id, "t1", *extra)
        assert plain.exit_code == 2 and "--undo-effects" in plain.stderr, plain.output
    refused = invoke("rollback", s.id, "t1", "--undo-effects")
    assert refused.exit_code == 2 and "--handlers" in refused.stderr
    with AgentGitSaver.from_conn_string(any_db) as saver:
        assert len(SessionManager(saver).branches(s.id)) == 1  # nothing was written

    done = invoke(
        "rollback", s.id, "t1", "--undo-effects", "--handlers", f"{module}:HANDLERS", "--json"
    )
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["complete"] is True
    assert [(o["effect_id"], o["status"]) for o in report["outcomes"]] == [
        (p.effect.effect_id, "undone" if p.status == "will_undo" else "skipped")
        for p in plan.effects
    ]
    assert [u["effect"] for u in shop.read(journal, "undo")] == [
        p.effect.effect_id for p in plan.to_undo
    ]
    checkout = invoke("checkout", s.id, "main")
    assert checkout.exit_code == 0, checkout.output
    assert "warning:" in checkout.stderr and "3 tool effect(s) undone" in checkout.stderr
    again = invoke("rollback", s.id, "t1", "--undo-effects", "--handlers", f"{module}:HANDLERS")
    assert again.exit_code == 0, again.output
    assert "Undone: 0" in again.stdout
    assert len(shop.read(journal, "undo")) == len(plan.to_undo)
    shown = json.loads(invoke("show", s.id, "--json").stdout)["undo_runs"]
    assert [r["status"] for r in shown] == ["done", "done"]
    assert shown[0]["run_id"] == report["run_id"]
    assert shown[0]["effects"] == {"done": sorted(p.effect.tool_name for p in plan.to_undo)}
    assert shown[1]["effects"] == {}
    text = invoke("show", s.id).stdout
    assert "Undo runs" in text and "3: charge, create_order, create_order" in text
    # The tree marks the checkpoints whose effects were undone, and only those.
    tree = invoke("tree", s.id, "--all").stdout
    marked = [line for line in tree.splitlines() if "↶ undone" in line]
    by_checkpoint = Counter(p.effect.checkpoint_id for p in plan.to_undo)
    assert len(marked) == len(by_checkpoint)
    for line in marked:
        shown_id = re.search(r"[0-9a-f]{8}-[0-9a-f-]+", line)
        assert shown_id is not None, line
        [checkpoint_id] = [c for c in by_checkpoint if c.startswith(shown_id.group())]
        tools = sorted(
            p.effect.tool_name for p in plan.to_undo if p.effect.checkpoint_id == checkpoint_id
        )
        assert f"↶ undone {', '.join(tools)}" in line


# --- file tools -------------------------------------------------------------------------------


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_file_tools_restore_bytes(any_db: str, tmp_path: Path, mode: str):
    from langgraph_agentgit.effects.files import FileChangedError, file_undo_handlers

    root = tmp_path / "workspace"
    root.mkdir()
    (root / "keep.bin").write_bytes(bytes(range(256)) + b"\r\n\x00end")
    (root / "notes.txt").write_text("alpha beta\n")
    outside = tmp_path / "secret.txt"
    outside.write_text("untouched")
    use_async = mode == "async"
    saver_cls = AsyncAgentGitSaver if use_async else AgentGitSaver
    saver_cm = saver_cls.from_conn_string(any_db)
    saver = await saver_cm.__aenter__() if use_async else saver_cm.__enter__()
    try:
        graph = shop.file_agent(root, saver)
        mgr = SessionManager(saver, undo=file_undo_handlers(root))
        w = World(saver, mgr, graph, str(tmp_path / "unused.jsonl"), use_async)
        s = await w.call("create_session")
        await w.turn(s.id, "write:start.txt:hello")
        await w.call("tag", s.id, await w.state(s.id), "start")
        at_start = tree_bytes(root)
        await w.turn(s.id, "edit:notes.txt:beta:gamma write:new/deep.txt:fresh del:keep.bin")
        await w.turn(s.id, "write:notes.txt:rewritten edit:start.txt:hello:bye")
        await w.turn(s.id, "write:../secret.txt:pwned write:/etc/x:y del:new/../../secret.txt")
        assert outside.read_text() == "untouched"
        changed = tree_bytes(root)
        assert changed != at_start and "keep.bin" not in changed
        plan = await w.call("plan_rollback", s.id, "start")
        assert [p.status for p in plan.effects[:3]] == ["tool_error"] * 3  # refused paths
        assert len(plan.to_undo) == 5
        result = await w.call("rollback", s.id, "start", undo_effects=True)
        assert result.complete and len(result.undone) == 5
        assert tree_bytes(root) == at_start  # every byte back, new files gone
        assert not (root / "new" / "deep.txt").exists()
        assert outside.read_text() == "untouched"

        # A file changed outside the agent since the call is left alone, and said so.
        with pytest.warns(EffectsUndoneWarning, match="5 tool effect"):
            await w.call("checkout", s.id, "main")
        await w.call("tag", s.id, await w.state(s.id), "before-late")
        await w.turn(s.id, "write:late.txt:agent")
        (root / "late.txt").write_text("edited by hand")
        refused = await w.call("rollback", s.id, "before-late", undo_effects=True)
        [failed] = refused.failed
        assert failed.error.startswith(FileChangedError.__name__)
        assert (root / "late.txt").read_text() == "edited by hand"
    finally:
        if use_async:
            await saver_cm.__aexit__(None, None, None)
        else:
            saver_cm.__exit__(None, None, None)


def test_cli_incomplete_undo_then_resume(
    any_db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from typer.testing import CliRunner

    from langgraph_agentgit.cli import app

    journal = str(tmp_path / "journal.jsonl")
    flag = tmp_path / "charge-is-broken"
    flag.touch()
    module = f"shop_undo_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(
        "import os\nimport effects_shop\n"
        f"HANDLERS = effects_shop.make_handlers({journal!r}, fail=lambda e: "
        f"e.tool_name == 'charge' and os.path.exists({str(flag)!r}))\n"
    )
    monkeypatch.chdir(tmp_path)
    with AgentGitSaver.from_conn_string(any_db) as saver:
        graph = shop.tool_node_agent(journal, saver)
        mgr = SessionManager(saver)
        s = mgr.create_session(name="shop")
        for text in ("buy:apple", "buy:pear pay:10", "buy:plum"):
            graph.invoke({"messages": [("user", text)]}, mgr.config(s.id))
            if text == "buy:apple":
                mgr.tag(s.id, graph.get_state(mgr.config(s.id)), "t1")
        order = [p.effect.effect_id for p in mgr.plan_rollback(s.id, "t1").effects]
    runner = CliRunner()

    def invoke(*args: str) -> Any:
        return runner.invoke(
            app, [*args, "--handlers", f"{module}:HANDLERS", "--db", any_db], env={"COLUMNS": "200"}
        )

    failed = invoke("rollback", s.id, "t1", "--undo-effects")
    assert failed.exit_code == 1, failed.output
    assert "1 undo handler(s) failed, 1 effect(s) left to undo" in failed.stderr
    assert "failed charge(amount=10)" in failed.stdout
    assert [u["effect"] for u in shop.read(journal, "undo")] == order[:1]
    flag.unlink()
    resumed = invoke("resume-undo", s.id, "--json")
    assert resumed.exit_code == 0, resumed.output
    [run] = json.loads(resumed.stdout)
    assert run["complete"] is True
    assert [o["effect_id"] for o in run["outcomes"] if o["status"] == "undone"] == order[1:]
    assert [u["effect"] for u in shop.read(journal, "undo")] == order
    nothing = invoke("resume-undo", s.id)
    assert nothing.exit_code == 0 and "no unfinished undo run" in nothing.stdout


# --- id-less messages and reused tool call ids (a plain ``operator.add`` message list) ---


class PlainState(TypedDict):
    messages: Annotated[list[Any], operator.add]


def _reused_id_graph(saver: Any, call_id: str, ran: list[str]) -> Any:
    """``messages: Annotated[list, operator.add]`` (no ``add_messages``: no message ids),
    a model node that always uses the tool call id ``call_id``, and a real ``ToolNode``."""

    @tool
    def create_order(item: str) -> str:
        """Order an item."""
        ran.append(item)
        return f"ordered {item}"

    def model(state: PlainState) -> dict[str, Any]:
        turn = sum(isinstance(m, HumanMessage) for m in state["messages"])
        call = {"name": "create_order", "args": {"item": f"item{turn}"}, "id": call_id}
        return {"messages": [AIMessage("", tool_calls=[call])]}

    builder = StateGraph(PlainState)
    builder.add_node("model", model)
    builder.add_node("tools", ToolNode([create_order]))
    builder.add_edge(START, "model")
    builder.add_edge("model", "tools")
    builder.add_edge("tools", END)
    return builder.compile(checkpointer=saver)


@pytest.mark.parametrize("call_id", ["call_0", ""])
def test_reused_tool_call_ids_without_message_ids(any_db: str, call_id: str):
    ran: list[str] = []
    undone: list[str] = []
    with AgentGitSaver.from_conn_string(any_db) as saver:
        mgr = SessionManager(saver, undo={"create_order": lambda e: undone.append(e.args["item"])})
        graph = _reused_id_graph(saver, call_id, ran)
        s = mgr.create_session(name="reused")
        config = mgr.config(s.id)
        for text in ("a", "b", "c"):
            graph.invoke({"messages": [HumanMessage(text)]}, config)
            if text == "a":
                mgr.tag(s.id, graph.get_state(config), "t0")
        assert all(m.id is None for m in tool_messages(graph.get_state(config)))
        assert ran == ["item1", "item2", "item3"]

        listed = mgr.effects(s.id)
        assert sorted(p.effect.args["item"] for p in listed) == sorted(ran)
        assert len({p.effect.effect_id for p in listed}) == 3
        plan = mgr.plan_rollback(s.id, "t0")
        assert [p.effect.args["item"] for p in plan.effects] == ["item3", "item2"]
        assert [p.status for p in plan.effects] == ["will_undo", "will_undo"]

        result = mgr.rollback(s.id, "t0", undo_effects=True)
        assert result.complete
        assert undone == ["item3", "item2"]
        # The effect made before the fork keeps its id on the new branch.
        first = {p.effect.effect_id for p in listed if p.effect.args["item"] == "item1"}
        assert {p.effect.effect_id for p in mgr.effects(s.id)} == first
        # Nothing is undone twice.
        assert mgr.rollback(s.id, "t0", undo_effects=True).undone == ()
        assert undone == ["item3", "item2"]


def test_file_tools_never_write_through_links(any_db: str, tmp_path: Path):
    """A hard link into the workspace, or a symbolic link swapped in after the call, is
    never written through: not by the tool, not by a rollback's undo."""
    from langgraph_agentgit.effects.files import file_undo_handlers

    root = tmp_path / "workspace"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "secret.txt"
    secret.write_text("secret")
    os.link(secret, root / "hard.txt")
    (root / "a.txt").write_text("original")
    with AgentGitSaver.from_conn_string(any_db) as saver:
        graph = shop.file_agent(root, saver)
        mgr = SessionManager(saver, undo=file_undo_handlers(root))
        s = mgr.create_session()
        config = mgr.config(s.id)
        graph.invoke({"messages": [("user", "write:start.txt:x")]}, config)
        mgr.tag(s.id, graph.get_state(config), "start")
        graph.invoke({"messages": [("user", "write:hard.txt:OWNED write:a.txt:agent")]}, config)
        assert secret.read_text() == "secret"  # the hard link was refused
        hard, written = tool_messages(graph.get_state(config))[-2:]
        assert hard.status == "error" and "hard link" in str(hard.content)
        assert written.status == "success" and (root / "a.txt").read_text() == "agent"

        # The user swaps a.txt for a link to a file outside that holds the same bytes.
        decoy = outside / "decoy.txt"
        decoy.write_text("agent")
        (root / "a.txt").unlink()
        (root / "a.txt").symlink_to(decoy)
        result = mgr.rollback(s.id, "start", undo_effects=True)
        [failed] = result.failed
        assert failed.effect.args["path"] == "a.txt" and "symbolic link" in str(failed.error)
        assert decoy.read_text() == "agent" and secret.read_text() == "secret"
        assert (root / "a.txt").is_symlink()


def test_file_tools_refuse_a_directory(tmp_path: Path):
    from langgraph_agentgit.effects.files import file_tools

    (tmp_path / "sub").mkdir()
    tools = {t.name: t for t in file_tools(tmp_path)}
    for name, args in (("write_file", {"content": "x"}), ("delete_file", {})):
        with pytest.raises(ValueError, match="sub is a directory"):
            tools[name].invoke({"path": "sub", **args})
    assert (tmp_path / "sub").is_dir()


async def test_resume_reports_a_live_handler_running_not_in_doubt(any_db: str, tmp_path: Path):
    """While the process running an effect's handler is alive, a resume reports it
    ``running`` (and never runs it again, even with ``rerun_in_doubt``); once that process
    is gone it is in doubt; one started on another host is in doubt, and says so."""
    journal = str(tmp_path / "journal.jsonl")
    async with world(any_db, journal, False) as w:
        session_id, _ = await shop_history(w)
        plan = await w.call("plan_rollback", session_id, "t1")
        order = [p.effect.effect_id for p in plan.to_undo]
        charge = order[1]

    ctx = multiprocessing.get_context("spawn")
    started, release = ctx.Event(), ctx.Event()
    proc = ctx.Process(
        target=shop.slow_worker, args=(any_db, journal, session_id, "t1", started, release)
    )
    proc.start()
    try:
        assert started.wait(120), "the worker's handler did not start"
        async with world(any_db, journal, False) as w:
            for rerun in (False, True):
                [result] = await w.call("resume_undo", session_id, rerun_in_doubt=rerun)
                [held] = [o for o in result.outcomes if o.effect.effect_id == charge]
                assert held.status == "running", held
                assert f"pid {proc.pid}" in str(held.reason) and not result.complete
            assert undo_counts(journal)[charge] == 0  # never run from here
    finally:
        release.set()
        proc.join(120)
    assert proc.exitcode == 0
    assert undo_counts(journal) == Counter(order)

    # A claim left running by a process on another host: in doubt, and the reason says so.
    owner = json.dumps({"host": "elsewhere.invalid", "pid": 1, "start": None})
    stuck = (
        "UPDATE agentgit_undone_effects SET status = 'running', owner = {p} WHERE effect_id = {p}"
    )
    from langgraph_agentgit.backends import is_postgres_url

    with AgentGitSaver.from_conn_string(any_db) as saver:
        mark = "%s" if is_postgres_url(any_db) else "?"
        saver._write(lambda conn, *a: conn.execute(stuck.format(p=mark), (owner, charge)))
        saver._write(
            lambda conn, *a: conn.execute("UPDATE agentgit_undo_runs SET status = 'incomplete'", ())
        )
    async with world(any_db, journal, False) as w:
        [result] = await w.call("resume_undo", session_id)
        [held] = [o for o in result.outcomes if o.effect.effect_id == charge]
        assert held.status == "in_doubt"
        assert "another host" in str(held.reason) and "elsewhere.invalid" in str(held.reason)


async def test_misuse_gets_clear_errors(any_db: str, tmp_path: Path):
    """Wrong handler tables and rollback options are refused with a clear TypeError or
    ValueError before anything changes."""
    journal = str(tmp_path / "journal.jsonl")
    with AgentGitSaver.from_conn_string(any_db) as saver:
        with pytest.raises(TypeError, match="mapping of tool names"):
            SessionManager(saver, undo=[1, 2])  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"\(handler, kind\) pair, not a tuple of 3"):
            SessionManager(saver, undo={"a": (print, "reversible", 1)})  # type: ignore[dict-item]
    async with world(any_db, journal, False) as w:
        session_id, _ = await shop_history(w)
        head = (await w.state(session_id)).config["configurable"]["checkpoint_id"]
        with pytest.raises(TypeError, match="undo_effects must be True or False"):
            w.mgr.rollback(session_id, "t1", undo_effects="no")  # type: ignore[call-overload]
        with pytest.raises(ValueError, match="on_error goes with undo_effects=True"):
            w.mgr.rollback(session_id, "t1", on_error="continue")  # type: ignore[call-overload]
        with pytest.raises(ValueError, match="on_error goes with undo_effects=True"):
            await w.mgr.arollback(session_id, "t1", on_error="stop")  # type: ignore[call-overload]
        assert (await w.state(session_id)).config["configurable"]["checkpoint_id"] == head
        assert [b.name for b in w.mgr.branches(session_id)] == ["main"]
        assert shop.read(journal, "undo") == []
        # Every skipped outcome says why.
        result = w.mgr.rollback(session_id, "t1", undo_effects=True)
        assert result.skipped and all(o.reason for o in result.skipped)
    with pytest.raises(ValueError, match="reason"):
        EffectOutcome(result.outcomes[0].effect, "skipped")


def test_file_undo_handler_refuses_an_incomplete_artifact(tmp_path: Path):
    from langgraph_agentgit.effects import Effect
    from langgraph_agentgit.effects.files import file_undo_handlers

    (tmp_path / "a.txt").write_text("x")
    undo = file_undo_handlers(tmp_path)["write_file"]
    message = ToolMessage("wrote", tool_call_id="c1")
    for artifact in ({"path": "a.txt", "before": b"old"}, None, {"before": None}):
        effect = Effect("e1", "write_file", "c1", {}, "wrote", artifact, "success", "cp", message)
        with pytest.raises(ValueError, match="has no file artifact"):
            undo(effect)
    assert (tmp_path / "a.txt").read_text() == "x"


def test_cli_handlers_that_are_not_handlers(any_db: str, tmp_path: Path):
    from typer.testing import CliRunner

    from langgraph_agentgit.cli import app

    with AgentGitSaver.from_conn_string(any_db) as saver:
        mgr = SessionManager(saver)
        s = mgr.create_session(name="shop")
        graph = shop.tool_node_agent(str(tmp_path / "journal.jsonl"), saver)
        graph.invoke({"messages": [("user", "buy:apple")]}, mgr.config(s.id))
        mgr.tag(s.id, graph.get_state(mgr.config(s.id)), "t1")
    args = ["rollback", s.id, "t1", "--undo-effects", "--handlers", "os:environ", "--db", any_db]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert "must map tool names to undo handlers" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
