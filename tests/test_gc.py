"""Incremental garbage collection (``CheckpointStore.collect_garbage``): a delete sweeps
only the families (threads linked by fork parents) it changed, frees exactly what they
alone held, never a value another thread still reads (a fork's inherited ones, a
``copy_thread`` copy's, a value two families stored alike), and a whole sweep follows
once such sweeps deleted a tenth of the rows. Real graphs, both engines; the live set is
computed here independently of the store's SQL."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import cfg, sql_rows, thread_view
from graphs import build_agent_graph
from langchain_core.messages import HumanMessage

from langgraph_agentgit import AgentGitSaver, SessionManager
from langgraph_agentgit.storage.checkpoints import CheckpointStore


def ask(text: str) -> dict[str, Any]:
    return {"messages": [HumanMessage(content=text, id=f"h-{text}")]}


@pytest.fixture
def saver(any_db: str) -> Iterator[AgentGitSaver]:
    with AgentGitSaver.from_conn_string(any_db) as s:
        yield s


def blobs(db: str) -> dict[int, tuple[int | None, list[int]]]:
    """Every stored blob: id -> (owner, the ids it is built from)."""
    return {
        int(i): (None if owner is None else int(owner), json.loads(deps) if deps else [])
        for i, owner, deps in sql_rows(db, "SELECT id, owner, deps FROM agentgit_blobs")
    }


def live(db: str) -> set[int]:
    """The blobs a checkpoint row or a write reaches, directly or through what they are
    built from: what no sweep may delete."""
    stored = blobs(db)
    todo = [
        int(v)
        for (refs,) in sql_rows(db, "SELECT refs FROM agentgit_checkpoints")
        for v in json.loads(refs).values()
        if int(v) > 0
    ]
    todo += [int(b) for (b,) in sql_rows(db, "SELECT blob_id FROM agentgit_writes")]
    seen: set[int] = set()
    while todo:
        blob = todo.pop()
        if blob not in seen:
            seen.add(blob)
            todo += stored.get(blob, (None, []))[1]
    return seen


def gc_state(db: str) -> tuple[int, int]:
    ((debt, rows),) = sql_rows(db, "SELECT debt, rows FROM agentgit_gc_state")
    return int(debt), int(rows)


def whole_sweep(saver: AgentGitSaver) -> None:
    saver._write(saver.store.collect_garbage)


def test_a_delete_frees_exactly_what_its_family_alone_held(
    saver: AgentGitSaver, any_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    graph = build_agent_graph().compile(checkpointer=saver)
    for thread, turns in {
        "a": ["2 and 3", "4 and 5"],
        "b": ["6 and 7", "8 and 9"],
        "c": ["10 and 11", "12 and 13"],
    }.items():
        for text in turns:
            graph.invoke(ask(f"{thread}: {text}"), cfg(thread))
    fork_at = [s for s in graph.get_state_history(cfg("a")) if s.next == ("tools",)][-1]
    saver.fork_thread("a", fork_at.config["configurable"]["checkpoint_id"], "a-fork")
    graph.invoke(None, cfg("a-fork"))
    graph.invoke(ask("a-fork: 1 and 1"), cfg("a-fork"))
    saver.copy_thread("b", "b-copy")
    graph.invoke(ask("b-copy: 3 and 3"), cfg("b-copy"))
    whole_sweep(saver)  # the database's first sweep (the schedule starts from it)
    # Family sweeps only, whatever they delete.
    monkeypatch.setattr(CheckpointStore, "WHOLE_SWEEP_SHARE", math.inf)
    views = {t: thread_view(saver, t) for t in ("a-fork", "b-copy")}
    owned_by_copy_source = {
        i for i, (owner, _) in blobs(any_db).items() if i in live(any_db) and owner is None
    }
    assert owned_by_copy_source  # copy_thread shared the source's values

    # "c" shares nothing: its family sweep frees everything it held, as a whole one would.
    before = blobs(any_db)
    saver.delete_thread("c")
    after = blobs(any_db)
    assert set(after) == live(any_db)
    assert len(after) < len(before)
    assert gc_state(any_db)[0] > 0  # a family sweep, not a whole one

    # The fork's source and the copy's source: everything the fork and the copy read
    # stays, and both go on running.
    saver.delete_thread("a")
    saver.delete_thread("b")
    assert live(any_db) <= set(blobs(any_db))
    for thread, view in views.items():
        assert thread_view(saver, thread) == view
    result = graph.invoke(ask("a-fork: 5 and 5"), cfg("a-fork"))
    assert result["messages"][-1].content == "the sum is 10"
    result = graph.invoke(ask("b-copy: 6 and 6"), cfg("b-copy"))
    assert result["messages"][-1].content == "the sum is 12"
    # What the family sweeps left is only what they could not prove unshared.
    leftover = set(blobs(any_db)) - live(any_db)
    assert all(blobs(any_db)[i][0] is None for i in leftover)
    whole_sweep(saver)
    assert set(blobs(any_db)) == live(any_db)
    if saver.postgres is None:  # check() reads SQLite's own integrity check
        report = SessionManager(saver).check()
        assert not report.problems, report.problems

    # Deleting the rest leaves nothing at all.
    saver.delete_thread("a-fork")
    saver.delete_thread("b-copy")
    whole_sweep(saver)
    assert blobs(any_db) == {}


def test_a_whole_sweep_follows_a_tenth_of_the_rows(saver: AgentGitSaver, any_db: str) -> None:
    graph = build_agent_graph().compile(checkpointer=saver)
    for i in range(20):
        graph.invoke(ask(f"{i} and {i}"), cfg(f"t{i}"))
    whole_sweep(saver)
    debt, rows = gc_state(any_db)
    assert debt == 0 and rows == sql_rows(any_db, "SELECT count(*) FROM agentgit_checkpoints")[0][0]
    per_thread = rows // 20
    assert per_thread * 20 == rows and 1 < per_thread < rows // 10
    deleted = 0
    for i in range(20):
        saver.delete_thread(f"t{i}")
        deleted += per_thread
        debt, at_last_sweep = gc_state(any_db)
        if deleted * 10 < rows:
            assert (debt, at_last_sweep) == (deleted, rows), i
        else:
            # This delete crossed a tenth: a whole sweep ran and the count starts again.
            assert debt == 0 and at_last_sweep == rows - deleted, i
            assert set(blobs(any_db)) == live(any_db)
            break
    else:
        pytest.fail("no whole sweep ran")
    for j in range(i + 1, 20):
        assert graph.get_state(cfg(f"t{j}")).values["messages"][-1].content == f"the sum is {2 * j}"


def test_a_pruned_grandchild_keeps_what_it_reads_when_its_parent_and_root_go(
    any_db: str,
) -> None:
    """Delete a branch T between a root P and a fork C of T, prune C (it stops
    inheriting, so T's rows can go), then delete P: T's thread row used to go with its
    rows, cutting C off from P's family, and P's sweep took values C's rows still refer
    to (seen only by a fresh saver: a warm cache hid it). Found by a review of the
    collector."""
    with AgentGitSaver.from_conn_string(any_db) as saver:
        graph = build_agent_graph().compile(checkpointer=saver)
        graph.invoke(ask("P: 2 and 3"), cfg("P"))
        saver.fork_thread(
            "P", graph.get_state(cfg("P")).config["configurable"]["checkpoint_id"], "T"
        )
        graph.invoke(ask("T: 4 and 5"), cfg("T"))
        saver.fork_thread(
            "T", graph.get_state(cfg("T")).config["configurable"]["checkpoint_id"], "C"
        )
        whole_sweep(saver)
        saver.store.WHOLE_SWEEP_SHARE = math.inf
        view = thread_view(saver, "C")
        saver.delete_thread("T")
        saver.prune(["C"], strategy="keep_latest")
        saver.delete_thread("P")
        assert live(any_db) <= set(blobs(any_db))
    with AgentGitSaver.from_conn_string(any_db) as saver:
        assert thread_view(saver, "C")[0] == view[0]
        graph = build_agent_graph().compile(checkpointer=saver)
        result = graph.invoke(ask("C: 6 and 7"), cfg("C"))
        assert result["messages"][-1].content == "the sum is 13"
        assert len(result["messages"]) > len(view[0]["values"]["messages"])
        saver.delete_thread("C")
        whole_sweep(saver)
    assert blobs(any_db) == {}
    assert sql_rows(any_db, "SELECT count(*) FROM agentgit_threads")[0][0] == 0
