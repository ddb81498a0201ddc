"""Export and import of sessions (``SessionManager.export_sessions`` / ``import_sessions``,
``agentgit export`` / ``agentgit import``), on both engines.

Sessions are built by running real graphs: a chat graph with branches of branches and
tags, an interrupt graph whose source resumed after a branch was made at its pending
interrupt, a ``DeltaChannel`` graph, and a graph with a subgraph interrupted inside it.
After a round trip every branch's whole history (``get_state_history``, and every
checkpoint tuple of every namespace) reads back as it did, and resuming gives the same
results. Malformed and hostile files are refused naming the line and field, and leave
the target exactly as it was.
"""

from __future__ import annotations

import base64
import copy
import gzip
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import ormsgpack
import pg
import pytest
from conftest import snapshot_view, sql_rows, thread_view
from graphs import (
    build_chat_graph,
    build_delta_graph,
    build_interrupt_graph,
    build_subgraph_graph,
    comparable,
)
from langgraph.types import Command

from langgraph_agentgit import (
    AgentGitSaver,
    AsyncAgentGitSaver,
    ExportFormatError,
    ImportConflictError,
    SessionManager,
    SessionNotFoundError,
    SessionScopeError,
)
from langgraph_agentgit.backends import is_postgres_url
from langgraph_agentgit.langgraph_import import import_langgraph

TABLES = (
    "agentgit_threads",
    "agentgit_checkpoints",
    "agentgit_writes",
    "agentgit_blobs",
    "agentgit_sessions",
    "agentgit_session_threads",
    "agentgit_tags",
    "agentgit_deleted_threads",
)


def indexed_blobs(db: str) -> int:
    """Blobs stored under their digest (found again when the same content comes back)."""
    return int(sql_rows(db, "SELECT count(*) FROM agentgit_blobs WHERE digest IS NOT NULL")[0][0])


def blob_bytes(db: str) -> int:
    return int(sql_rows(db, "SELECT coalesce(sum(length(data)), 0) FROM agentgit_blobs")[0][0])


def counts(db: str) -> dict[str, int]:
    return {t: sql_rows(db, f"SELECT count(*) FROM {t}")[0][0] for t in TABLES}


@pytest.fixture
def target_db(any_db: str, tmp_path: Path) -> Iterator[str]:
    """A second database on the same engine as ``any_db``."""
    if is_postgres_url(any_db):
        with pg.fresh_schema() as url:
            yield url
    else:
        yield str(tmp_path / "target.db")


GRAPHS = {
    "chat": build_chat_graph,
    "approval": build_interrupt_graph,
    "delta": build_delta_graph,
    "nested": build_subgraph_graph,
}


class World:
    """Sessions built on one database by running the test graphs."""

    def __init__(self, saver: AgentGitSaver) -> None:
        self.saver = saver
        self.mgr = SessionManager(saver)
        self.graphs = {name: build().compile(checkpointer=saver) for name, build in GRAPHS.items()}
        #: session id -> the graph it runs
        self.kind: dict[str, str] = {}

    def build(self) -> None:
        mgr, g = self.mgr, self.graphs
        # Chat: three turns, a branch at a tag, a branch of that branch, a tag on each.
        chat = mgr.create_session(user_id="ada", name="chat", metadata={"topic": "orders"})
        self.kind[chat.id] = "chat"
        config = mgr.config(chat.id)
        g["chat"].invoke({"messages": [("user", "first")]}, config)
        mgr.tag(chat.id, g["chat"].get_state(config), "after-first")
        g["chat"].invoke({"messages": [("user", "second")]}, config)
        g["chat"].invoke({"messages": [("user", "third")]}, config)
        branch = mgr.rollback(chat.id, "after-first")
        g["chat"].invoke({"messages": [("user", "second, again")]}, branch.config)
        mgr.tag(chat.id, g["chat"].get_state(branch.config), "on-branch")
        g["chat"].invoke({"messages": [("user", "fourth")]}, branch.config)
        deeper = mgr.rollback(chat.id, "on-branch")
        g["chat"].invoke({"messages": [("user", "another fourth")]}, deeper.config)
        # Approval: an interrupt pending; a branch made there; then the source resumes
        # (its resume is written at the checkpoint the branch inherits).
        approval = mgr.create_session(user_id="ada", name="approval")
        self.kind[approval.id] = "approval"
        config = mgr.config(approval.id)
        g["approval"].invoke({"steps": []}, config)
        pending = g["approval"].get_state(config)
        assert pending.interrupts
        mgr.branch(approval.id, pending)
        g["approval"].invoke(Command(resume="yes"), config)
        # DeltaChannel: most checkpoints hold no value for the list; a branch from the
        # middle continues with more rounds.
        delta = mgr.create_session(user_id="bob", name="delta")
        self.kind[delta.id] = "delta"
        config = mgr.config(delta.id)
        g["delta"].invoke({"items": [], "rounds": 0, "target": 9}, config)
        middle = list(g["delta"].get_state_history(config))[5]
        branch = mgr.rollback(delta.id, middle)
        g["delta"].invoke({"target": 12}, branch.config)
        # A subgraph interrupted inside it (its checkpoints in a child namespace).
        nested = mgr.create_session(user_id="bob", name="nested")
        self.kind[nested.id] = "nested"
        g["nested"].invoke({"log": ["start"]}, mgr.config(nested.id))
        # A plain thread outside any session: never exported.
        g["chat"].invoke(
            {"messages": [("user", "plain")]}, {"configurable": {"thread_id": "plain"}}
        )

    def views(self, session_ids: list[str] | None = None) -> dict[str, Any]:
        """Everything a reader sees of the sessions: their listing, branches and tags,
        and per branch every checkpoint tuple (all namespaces) and the graph's history."""
        out: dict[str, Any] = {}
        for session in self.mgr.list_sessions():
            if session_ids is not None and session.id not in session_ids:
                continue
            graph = self.graphs[self.kind[session.id]]
            branches = self.mgr.branches(session.id)
            out[session.id] = {
                "session": session,
                "branches": branches,
                "tags": self.mgr.tags(session.id),
                "threads": {
                    b.thread_id: {
                        "tuples": thread_view(self.saver, b.thread_id),
                        "history": [
                            snapshot_view(s) | {"values": s.values, "config": s.config}
                            for s in graph.get_state_history(b.config)
                        ],
                        "state": graph.get_state(b.config, subgraphs=True),
                    }
                    for b in branches
                },
            }
        return out

    def outcome(self) -> list[Any]:
        """Per session and branch, in order: every state of the history (values, next
        nodes, interrupts), without checkpoint ids or times (new runs make new ones)."""
        return [
            [
                [
                    comparable(snapshot_view(s)) | {"values": comparable(s.values)}
                    for s in self.graphs[kind].get_state_history(b.config)
                ]
                for b in self.mgr.branches(session_id)
            ]
            for session_id, kind in sorted(self.kind.items())
        ]


def export_text(mgr: SessionManager, **kwargs: Any) -> str:
    out = io.StringIO()
    mgr.export_sessions(out, **kwargs)
    return out.getvalue()


def test_round_trip_reads_back_identically(any_db: str, target_db: str) -> None:
    """Every session, branch, tag and checkpoint of every namespace reads back the same
    after an export and an import into another database of the same engine; resuming
    the pending interrupts on both sides gives the same states."""
    with ExitStack() as stack:
        source = World(stack.enter_context(AgentGitSaver.from_conn_string(any_db)))
        source.build()
        text = export_text(source.mgr)
        target = World(stack.enter_context(AgentGitSaver.from_conn_string(target_db)))
        report = target.mgr.import_sessions(io.StringIO(text))
        target.kind = dict(source.kind)
        assert report.sessions == 4
        assert report.renamed_sessions == {} and report.renamed_threads == {}
        before = source.views()
        after = target.views()
        assert after == before
        # Stored as compactly as the source: lists as deltas, values compressed alike.
        assert blob_bytes(target_db) <= 1.1 * blob_bytes(any_db)
        # The plain thread was not exported.
        assert target.saver.get_tuple({"configurable": {"thread_id": "plain"}}) is None
        # The pending interrupts resume alike on both sides.
        for world in (source, target):
            for session_id, kind in world.kind.items():
                for branch in world.mgr.branches(session_id):
                    graph = world.graphs[kind]
                    if graph.get_state(branch.config).interrupts:
                        graph.invoke(Command(resume="later"), branch.config)
        assert target.outcome() == source.outcome()


def test_round_trip_through_binary_file_and_async_manager(any_db: str, target_db: str) -> None:
    """A binary file works as well as a text one, and the async twins do the same."""
    import asyncio

    with AgentGitSaver.from_conn_string(any_db) as saver:
        source = World(saver)
        source.build()
        binary = io.BytesIO()
        source.mgr.export_sessions(binary, user_id="bob")
        expected = source.views([s.id for s in source.mgr.list_sessions(user_id="bob")])

    async def run() -> None:
        async with AsyncAgentGitSaver.from_conn_string(target_db) as asaver:
            report = await SessionManager(asaver).aimport_sessions(io.BytesIO(binary.getvalue()))
            assert sorted(report.session_ids) == sorted(expected)

    asyncio.run(run())
    with AgentGitSaver.from_conn_string(target_db) as saver:
        target = World(saver)
        target.kind = dict(source.kind)
        assert target.views() == expected


def test_export_selects_sessions(any_db: str) -> None:
    with AgentGitSaver.from_conn_string(any_db) as saver:
        world = World(saver)
        world.build()
        ids = list(world.kind)
        only = json_lines(export_text(world.mgr, session_ids=[ids[2]]))
        assert [r["id"] for r in only if r["type"] == "session"] == [ids[2]]
        ada = json_lines(export_text(world.mgr, user_id="ada"))
        assert {r["id"] for r in ada if r["type"] == "session"} == set(ids[:2])
        with pytest.raises(SessionNotFoundError):
            export_text(world.mgr, session_ids=[ids[0], "no-such-session"])


def test_import_conflicts_and_new_ids_store_nothing_twice(any_db: str, target_db: str) -> None:
    """Importing a file twice: refused with on_conflict="error" (nothing written); with
    "new_ids" the sessions and threads get new ids, read back like the originals, and
    no value stored whole is stored again."""
    with AgentGitSaver.from_conn_string(any_db) as saver:
        source = World(saver)
        source.build()
        text = export_text(source.mgr)
        expected = source.views()
    with AgentGitSaver.from_conn_string(target_db) as saver:
        target = World(saver)
        target.mgr.import_sessions(io.StringIO(text))
        first = counts(target_db)
        indexed = indexed_blobs(target_db)
        with pytest.raises(ImportConflictError):
            target.mgr.import_sessions(io.StringIO(text))
        assert counts(target_db) == first
        report = target.mgr.import_sessions(io.StringIO(text), on_conflict="new_ids")
        assert set(report.renamed_sessions) == set(source.kind)
        second = counts(target_db)
        # Values stored whole are found, not stored again; only what the store never
        # looks up (per-step list deltas, values compressed against their neighbours)
        # is written anew, as when a graph runs the same steps in another thread.
        assert indexed_blobs(target_db) == indexed
        assert second["agentgit_blobs"] - first["agentgit_blobs"] < first["agentgit_blobs"]
        assert second["agentgit_checkpoints"] == 2 * first["agentgit_checkpoints"]
        assert second["agentgit_sessions"] == 8
        target.kind = {report.renamed_sessions[s]: k for s, k in source.kind.items()} | dict(
            source.kind
        )
        copies = target.views(list(report.renamed_sessions.values()))
        for old, new in report.renamed_sessions.items():
            a, b = expected[old], copies[new]
            assert [t["tuples"] for t in a["threads"].values()] == [
                t["tuples"] for t in b["threads"].values()
            ]
            assert a["tags"] == b["tags"]
            assert [br.name for br in a["branches"]] == [br.name for br in b["branches"]]
            assert not set(b["threads"]) & set(a["threads"])
            # Tags name the renamed threads.
            assert b["session"].current_thread_id in b["threads"]


def test_import_of_deleted_branch_keeps_the_forks_that_read_from_it(
    any_db: str, target_db: str
) -> None:
    """A branch deleted while a branch of it lives on: the deleted thread's rows that the
    fork inherits travel with the export (a thread row with no id), and the tombstone
    keeps its id from being reused."""
    with AgentGitSaver.from_conn_string(any_db) as saver:
        world = World(saver)
        graph = world.graphs["chat"]
        s = world.mgr.create_session(name="deleting")
        world.kind[s.id] = "chat"
        graph.invoke({"messages": [("user", "one")]}, world.mgr.config(s.id))
        middle = world.mgr.rollback(s.id, graph.get_state(world.mgr.config(s.id)))
        graph.invoke({"messages": [("user", "two")]}, middle.config)
        leaf = world.mgr.rollback(s.id, graph.get_state(middle.config))
        graph.invoke({"messages": [("user", "three")]}, leaf.config)
        world.mgr.delete_branch(s.id, middle.thread_id)
        records = json_lines(export_text(world.mgr))
        assert any(r["type"] == "thread" and r["thread_id"] is None for r in records)
        assert [r["thread_id"] for r in records if r["type"] == "deleted_thread"] == [
            middle.thread_id
        ]
        expected = world.views()
    with AgentGitSaver.from_conn_string(target_db) as saver:
        target = World(saver)
        target.kind = dict(world.kind)
        target.mgr.import_sessions(io.StringIO(to_text(records)))
        assert target.views() == expected


def test_a_branch_deleted_through_the_saver_exports_as_an_empty_branch(
    any_db: str, target_db: str
) -> None:
    """LangGraph's ``delete_thread`` (and ``prune(strategy="delete")``) on a session's
    branch empties it: the branch stays, forks from nothing, and a run on it starts
    afresh. An export of the session imports (it was refused: "the branch's thread is
    not in the file") and reads back identically, a branch of the emptied one included,
    and the next turn on each side gives the same states."""
    with ExitStack() as stack:
        source = World(stack.enter_context(AgentGitSaver.from_conn_string(any_db)))
        graph = source.graphs["chat"]
        s = source.mgr.create_session(name="emptied")
        source.kind[s.id] = "chat"
        for text in ("one", "two"):
            graph.invoke({"messages": [("user", text)]}, source.mgr.config(s.id))
        first = list(graph.get_state_history(source.mgr.config(s.id)))[-2]
        middle = source.mgr.rollback(s.id, first)
        graph.invoke({"messages": [("user", "three")]}, middle.config)
        leaf = source.mgr.rollback(s.id, graph.get_state(middle.config))
        graph.invoke({"messages": [("user", "four")]}, leaf.config)
        solo = source.mgr.rollback(s.id, first)
        graph.invoke({"messages": [("user", "five")]}, solo.config)
        leaf_values = graph.get_state(leaf.config).values
        source.saver.delete_thread(middle.thread_id)
        source.saver.prune([solo.thread_id], strategy="delete")
        by_id = {b.thread_id: b for b in source.mgr.branches(s.id)}
        for emptied in (middle.thread_id, solo.thread_id):
            assert by_id[emptied].parent_thread_id is None
            assert by_id[emptied].fork_checkpoint_id is None
            assert graph.get_state(by_id[emptied].config).values == {}
        # The branch of the emptied one still reads what it inherited.
        assert by_id[leaf.thread_id].parent_thread_id == middle.thread_id
        assert graph.get_state(leaf.config).values == leaf_values
        text = export_text(source.mgr)
        target = World(stack.enter_context(AgentGitSaver.from_conn_string(target_db)))
        target.kind = dict(source.kind)
        target.mgr.import_sessions(io.StringIO(text))
        assert target.views() == source.views()
        for world in (source, target):
            for thread_id in (middle.thread_id, leaf.thread_id):
                config = {"configurable": {"thread_id": thread_id}}
                world.graphs["chat"].invoke({"messages": [("user", "again")]}, config)
        assert target.outcome() == source.outcome()


def test_a_fork_that_inherits_through_a_deleted_branch_exports_and_imports(
    any_db: str, target_db: str
) -> None:
    """A fork made at a checkpoint its source branch inherited reads through that
    branch. Once the branch's session is deleted, nothing of the branch's own remains,
    but its record is the link: the export keeps it (the import refused the file: "a
    fork that inherits from its parent needs it") and the fork reads back identically."""
    with ExitStack() as stack:
        source = World(stack.enter_context(AgentGitSaver.from_conn_string(any_db)))
        graph = source.graphs["chat"]
        a = source.mgr.create_session(name="a")
        graph.invoke({"messages": [("user", "apple one")]}, source.mgr.config(a.id))
        snap = graph.get_state(source.mgr.config(a.id))
        graph.invoke({"messages": [("user", "apple two")]}, source.mgr.config(a.id))
        branch = source.mgr.rollback(a.id, snap)
        graph.invoke({"messages": [("user", "apple three")]}, branch.config)
        snap_id = snap.config["configurable"]["checkpoint_id"]
        source.saver.fork_thread(branch.thread_id, snap_id, "kept-fork")
        kept = source.mgr.adopt("kept-fork", name="kept")
        source.kind[kept.id] = "chat"
        graph.invoke({"messages": [("user", "apple four")]}, source.mgr.config(kept.id))
        source.mgr.delete_session(a.id)
        text = export_text(source.mgr)
        target = World(stack.enter_context(AgentGitSaver.from_conn_string(target_db)))
        target.kind = dict(source.kind)
        target.mgr.import_sessions(io.StringIO(text))
        assert target.views() == source.views()
        held = graph.get_state(source.mgr.config(kept.id)).values["messages"]
        assert [m.content for m in held][::2] == ["apple one", "apple four"]


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def to_text(records: list[dict[str, Any]], *, seal: bool = True) -> str:
    """The records as a file. ``seal``: an end record's ``sha256`` is made that of the
    lines written, as a tool rewriting the file consistently would (the cases below test
    what the reader checks besides the digest); else it is left as it was."""
    lines = [json.dumps(r) + "\n" for r in records]
    end = next((i for i, r in enumerate(records) if r.get("type") == "end"), None)
    if seal and end is not None and "sha256" in records[end]:
        digest = hashlib.sha256("".join(lines[:end]).encode()).hexdigest()
        lines[end] = json.dumps({**records[end], "sha256": digest}) + "\n"
    return "".join(lines)


# --- malformed and hostile files ------------------------------------------------------------


def _first(records: list[dict[str, Any]], kind: str, **match: Any) -> int:
    """Index of the first record of ``kind`` (whose fields equal ``match``)."""
    return next(
        i
        for i, r in enumerate(records)
        if r["type"] == kind and all(r.get(k) == v for k, v in match.items())
    )


def _set(kind: str, name: str, value: Any, **match: Any) -> Callable[[list[dict[str, Any]]], int]:
    def change(records: list[dict[str, Any]]) -> int:
        i = _first(records, kind, **match)
        records[i][name] = value
        return i + 1

    return change


def _drop_field(kind: str, name: str) -> Callable[[list[dict[str, Any]]], int]:
    def change(records: list[dict[str, Any]]) -> int:
        i = _first(records, kind)
        del records[i][name]
        return i + 1

    return change


def _pickle_value(records: list[dict[str, Any]]) -> int:
    i = _first(records, "value")
    records[i]["encoding"] = "pickle"
    records[i]["data"] = base64.b64encode(b"cos\nsystem\n(S'echo pwned'\ntR.").decode()
    return i + 1


def _garbage_body(records: list[dict[str, Any]]) -> int:
    i = _first(records, "checkpoint")
    records[i]["body"] = {"encoding": "msgpack", "data": base64.b64encode(b"\xc1\xff\x00").decode()}
    return i + 1


def _missing_value(records: list[dict[str, Any]]) -> int:
    i = next(
        i for i, r in enumerate(records) if r["type"] == "checkpoint" and any(r["values"].values())
    )
    channel = next(ch for ch, v in records[i]["values"].items() if v)
    records[i]["values"][channel] = 10**9
    return i + 1


def _checkpoint_cycle(records: list[dict[str, Any]]) -> int:
    """Two checkpoints of a thread each naming the other as parent."""
    child = next(
        i
        for i, r in enumerate(records)
        if r["type"] == "checkpoint" and r["parent"] is not None and r["ns"] == ""
    )
    parent = _first(records, "checkpoint", key=records[child]["parent"])
    records[parent]["parent"] = records[child]["key"]
    records[parent]["parent_checkpoint_id"] = None
    return min(child, parent) + 1


def _thread_cycle(records: list[dict[str, Any]]) -> int:
    fork = next(i for i, r in enumerate(records) if r["type"] == "thread" and r["parent"])
    parent = _first(records, "thread", key=records[fork]["parent"])
    records[parent].update(
        parent=records[fork]["key"],
        fork_checkpoint_id=records[fork]["fork_checkpoint_id"],
        fork_row=records[fork]["fork_row"],
    )
    return min(fork, parent) + 1


def _fork_outside_history(records: list[dict[str, Any]]) -> int:
    """A fork whose fork row is a checkpoint of an unrelated thread."""
    fork = next(i for i, r in enumerate(records) if r["type"] == "thread" and r["parent"])
    lineage = {records[fork]["key"], records[fork]["parent"]}
    other = next(
        r
        for r in records
        if r["type"] == "checkpoint" and r["ns"] == "" and r["thread"] not in lineage
    )
    records[fork]["fork_row"] = other["key"]
    records[fork]["fork_checkpoint_id"] = other["checkpoint_id"]
    return fork + 1


def _duplicate_value_id(records: list[dict[str, Any]]) -> int:
    first = _first(records, "value")
    second = next(i for i, r in enumerate(records) if r["type"] == "value" and i > first)
    records[second]["id"] = records[first]["id"]
    return second + 1


def _list_out_of_range(records: list[dict[str, Any]]) -> int:
    i = _first(records, "list")
    records[i]["parts"][0][2] = 10**6
    return i + 1


def _dropped_listed(records: list[dict[str, Any]]) -> int:
    """A thread's ``dropped`` naming a checkpoint it lists."""
    c = next(r for r in records if r["type"] == "checkpoint" and r["ns"] == "" and not r["hidden"])
    i = _first(records, "thread", key=c["thread"])
    records[i]["dropped"] = [c["checkpoint_id"]]
    return i + 1


def _branch_forked_elsewhere(records: list[dict[str, Any]]) -> int:
    """A branch record naming a fork checkpoint other than its thread's."""
    forked = {
        r["thread_id"]: r for r in records if r["type"] == "thread" and r["fork_checkpoint_id"]
    }
    i = next(i for i, r in enumerate(records) if r["type"] == "branch" and r["thread_id"] in forked)
    other = next(
        r["checkpoint_id"]
        for r in records
        if r["type"] == "checkpoint"
        and r["checkpoint_id"] != forked[records[i]["thread_id"]]["fork_checkpoint_id"]
    )
    records[i]["fork_checkpoint_id"] = other
    return i + 1


def _drop_end(records: list[dict[str, Any]]) -> int:
    records.pop()
    return len(records) + 1


def _drop_a_write(records: list[dict[str, Any]]) -> int:
    records.pop(_first(records, "write"))
    return len(records)


def _trailing_data(records: list[dict[str, Any]]) -> int:
    records.append({"type": "session"})
    return len(records)


def _dangling_parent(records: list[dict[str, Any]]) -> int:
    i = next(i for i, r in enumerate(records) if r["type"] == "checkpoint" and r["parent"])
    records[i]["parent"] = 10**9
    return i + 1


def _write_of_missing_value(records: list[dict[str, Any]]) -> int:
    i = _first(records, "write")
    records[i]["value"] = 10**9
    return i + 1


def _branch_of_a_missing_thread(records: list[dict[str, Any]]) -> int:
    """A fork branch whose thread has no thread record (nothing to read it through)."""
    i = next(i for i, r in enumerate(records) if r["type"] == "branch" and r["parent_thread_id"])
    records[i]["thread_id"] = "not-in-the-file"
    return i + 1


def _tag_of_another_session(records: list[dict[str, Any]]) -> int:
    """A tag naming a checkpoint only another session's threads hold."""
    i = _first(records, "tag")
    mine = records[i]["session_id"]
    theirs = {r["thread_id"] for r in records if r["type"] == "branch" and r["session_id"] != mine}
    keys = {r["key"] for r in records if r["type"] == "thread" and r["thread_id"] in theirs}
    ours = {r["thread_id"] for r in records if r["type"] == "branch" and r["session_id"] == mine}
    our_ids = {
        r["checkpoint_id"]
        for r in records
        if r["type"] == "checkpoint"
        and any(
            t["key"] == r["thread"] and t["thread_id"] in ours
            for t in records
            if t["type"] == "thread"
        )
    }
    other = next(
        r
        for r in records
        if r["type"] == "checkpoint"
        and r["ns"] == ""
        and r["thread"] in keys
        and r["checkpoint_id"] not in our_ids
    )
    records[i]["checkpoint_id"] = other["checkpoint_id"]
    return i + 1


def _duplicate_branch_name(records: list[dict[str, Any]]) -> int:
    """Two branches of one session with one name."""
    first: dict[str, int] = {}
    for i, r in enumerate(records):
        if r["type"] != "branch":
            continue
        if r["session_id"] in first:
            records[i]["name"] = records[first[r["session_id"]]]["name"]
            return i + 1
        first[r["session_id"]] = i
    raise AssertionError("no session with two branches")


# (name, change of the records returning the line it breaks, the field the error names)
RECORD_CASES: list[tuple[str, Callable[[list[dict[str, Any]]], int], str | None]] = [
    ("wrong format", _set("header", "format", "something-else"), "format"),
    ("newer version", _set("header", "version", 2), "version"),
    ("unknown record type", _set("tag", "type", "macro"), "type"),
    ("missing field", _drop_field("checkpoint", "checkpoint_id"), "checkpoint_id"),
    ("field of the wrong type", _set("checkpoint", "ns", 5), "ns"),
    ("a boolean for an integer", _set("write", "idx", True), "idx"),
    ("unknown field", _set("session", "owner", "mallory"), "owner"),
    ("NUL in a thread id", _set("branch", "thread_id", "a\x00b"), "thread_id"),
    ("bidi override in a user id", _set("session", "user_id", "\u202eada"), "user_id"),
    ("user id of 1,000 characters", _set("session", "user_id", "u" * 1000), "user_id"),
    ("bad time", _set("session", "created_at", "yesterday"), "created_at"),
    ("end reason of an open session", _set("session", "end_reason", "done"), "end_reason"),
    ("NaN in metadata", _set("session", "metadata", {"score": float("nan")}), "metadata"),
    ("pickle encoding", _pickle_value, "encoding"),
    ("value not base64", _set("value", "data", "!!not base64!!"), "data"),
    ("undecodable body", _garbage_body, "body"),
    ("missing value", _missing_value, "values"),
    ("dangling parent", _dangling_parent, "parent"),
    ("cycle of checkpoints", _checkpoint_cycle, "parent"),
    ("cycle of threads", _thread_cycle, "parent"),
    ("fork outside the parent's history", _fork_outside_history, "fork_row"),
    ("write of a missing value", _write_of_missing_value, "value"),
    ("duplicate value id", _duplicate_value_id, "id"),
    ("list slice out of range", _list_out_of_range, "parts"),
    (
        "current thread not a branch",
        _set("session", "current_thread_id", "elsewhere"),
        "current_thread_id",
    ),
    ("branch of a thread not in the file", _branch_of_a_missing_thread, "thread_id"),
    (
        "tag of a missing checkpoint",
        _set("tag", "checkpoint_id", "1f0c0ffe-0000-6000-8000-000000000000"),
        "checkpoint_id",
    ),
    ("tag of another session's checkpoint", _tag_of_another_session, "checkpoint_id"),
    (
        "tag named like a checkpoint id",
        _set("tag", "name", "1f0c0ffe-0000-6000-8000-000000000000"),
        "name",
    ),
    ("tag name with a newline", _set("tag", "name", "two\nlines"), "name"),
    ("tag name too long", _set("tag", "name", "t" * 201), "name"),
    ("duplicate branch name", _duplicate_branch_name, "name"),
    ("branch name of hex digits", _set("branch", "name", "cafe"), "name"),
    ("branch name with a control character", _set("branch", "name", "a\x07b"), "name"),
    (
        "write of a missing checkpoint",
        _set("write", "checkpoint_id", "1f0c0ffe-0000-6000-8000-000000000000"),
        "checkpoint_id",
    ),
    ("session name with a control character", _set("session", "name", "a\x1b[31mb"), "name"),
    ("session name too long", _set("session", "name", "s" * 201), "name"),
    ("session name on two lines", _set("session", "name", "one\ntwo"), "name"),
    ("dropped names a listed checkpoint", _dropped_listed, "dropped"),
    (
        "time without a UTC offset",
        _set("session", "created_at", "2026-01-01T00:00:00"),
        "created_at",
    ),
    ("branch forked elsewhere than its thread", _branch_forked_elsewhere, "fork_checkpoint_id"),
    ("end record missing (truncated)", _drop_end, None),
    ("a line removed", _drop_a_write, "lines"),
    ("data after the end", _trailing_data, None),
]


def _head(data: bytes, lines: int) -> bytes:
    return b"".join(data.splitlines(keepends=True)[:lines])


def _tail(data: bytes, lines: int) -> bytes:
    return b"".join(data.splitlines(keepends=True)[lines:])


# Files that are not even records: (name, bytes from the export's text, line, field)
RAW_CASES: list[tuple[str, Callable[[bytes], bytes], int, str | None]] = [
    ("empty file", lambda data: b"", 1, None),
    ("cut in the middle of a line", lambda data: data[: len(data) // 2], 0, None),
    ("not JSON", lambda data: _head(data, 2) + b"{oops\n" + _tail(data, 2), 3, None),
    (
        "invalid UTF-8",
        lambda data: _head(data, 2) + b'{"type": "\xff"}\n' + _tail(data, 2),
        3,
        None,
    ),
    ("nested too deep", lambda data: _head(data, 1) + b"[" * 100_000 + b"\n", 2, None),
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One export of the test world (built on SQLite; the format is the same)."""
    path = str(tmp_path_factory.mktemp("export") / "source.db")
    with AgentGitSaver.from_conn_string(path) as saver:
        world = World(saver)
        world.build()
        world.mgr.delete_branch(
            next(iter(world.kind)), world.mgr.branches(next(iter(world.kind)))[1].thread_id
        )
        return export_text(world.mgr)


@pytest.fixture
def occupied(any_db: str) -> Iterator[SessionManager]:
    """A target database that already holds a session."""
    with AgentGitSaver.from_conn_string(any_db) as saver:
        mgr = SessionManager(saver)
        s = mgr.create_session(name="already here")
        build_chat_graph().compile(checkpointer=saver).invoke(
            {"messages": [("user", "hello")]}, mgr.config(s.id)
        )
        yield mgr


def test_every_case_is_a_valid_file_before_it_is_broken(exported: str, any_db: str) -> None:
    """The unbroken export imports (so each case below fails for its own breakage)."""
    with AgentGitSaver.from_conn_string(any_db) as saver:
        SessionManager(saver).import_sessions(io.StringIO(exported))
    records = json_lines(exported)
    for _, change, _ in RECORD_CASES:
        change(copy.deepcopy(records))  # every change finds what it breaks


@pytest.mark.parametrize("name,change,field", RECORD_CASES, ids=[c[0] for c in RECORD_CASES])
def test_broken_records_are_refused_and_nothing_is_written(
    exported: str,
    occupied: SessionManager,
    any_db: str,
    name: str,
    change: Callable[[list[dict[str, Any]]], int],
    field: str | None,
) -> None:
    records = json_lines(exported)
    line = change(records)
    before = counts(any_db)
    with pytest.raises(ExportFormatError) as caught:
        occupied.import_sessions(io.StringIO(to_text(records)), on_conflict="new_ids")
    assert caught.value.line == line, str(caught.value)
    assert caught.value.field == field, str(caught.value)
    assert f"line {line}" in str(caught.value)
    assert counts(any_db) == before


@pytest.mark.parametrize("name,change,line,field", RAW_CASES, ids=[c[0] for c in RAW_CASES])
def test_broken_files_are_refused_and_nothing_is_written(
    exported: str,
    occupied: SessionManager,
    any_db: str,
    name: str,
    change: Callable[[bytes], bytes],
    line: int,
    field: str | None,
) -> None:
    data = change(exported.encode())
    before = counts(any_db)
    with pytest.raises(ExportFormatError) as caught:
        occupied.import_sessions(io.BytesIO(data), on_conflict="new_ids")
    if line:
        assert caught.value.line == line, str(caught.value)
    assert caught.value.line is not None
    assert f"line {caught.value.line}" in str(caught.value)
    assert caught.value.field == field
    assert counts(any_db) == before


def test_a_file_changed_after_export_is_refused_by_its_digest(
    exported: str, occupied: SessionManager, any_db: str
) -> None:
    """A value altered into bytes that still decode (an integer's three zero bytes: 0)
    passes every other check; the end record's SHA-256 of the lines refuses it, naming
    the end line. A file written before the digest existed (no ``sha256``) still
    imports, and the digest is that of the lines as written, header included."""
    records = json_lines(exported)
    end = records[-1]
    assert end["type"] == "end"
    lines = exported.splitlines(keepends=True)
    assert end["sha256"] == hashlib.sha256("".join(lines[:-1]).encode()).hexdigest()
    i = _first(records, "value")
    records[i]["data"] = base64.b64encode(b"\x00\x00\x00").decode()
    records[i]["encoding"] = "bytes"
    altered = "".join([*lines[:i], json.dumps(records[i]) + "\n", *lines[i + 1 :]])
    before = counts(any_db)
    with pytest.raises(ExportFormatError) as caught:
        occupied.import_sessions(io.StringIO(altered), on_conflict="new_ids")
    assert caught.value.line == len(lines) and caught.value.field == "sha256"
    assert "changed or damaged" in str(caught.value)
    assert counts(any_db) == before
    # The same change sealed again is the reader's to judge, as before the digest.
    occupied.import_sessions(io.StringIO(to_text(records)), on_conflict="new_ids")
    # An older file: no digest, read as before.
    unsealed = json_lines(exported)
    del unsealed[-1]["sha256"]
    occupied.import_sessions(io.StringIO(to_text(unsealed)), on_conflict="new_ids")
    assert counts(any_db) != before


def test_a_value_naming_a_function_runs_nothing(exported: str, any_db: str, tmp_path: Path) -> None:
    """A msgpack value naming ``os.system`` (LangGraph's constructor extension) is
    decoded by the strict serializer as plain data: importing it runs nothing."""
    marker = tmp_path / "pwned"
    payload = ormsgpack.packb(
        ormsgpack.Ext(0, ormsgpack.packb(("os", "system", f"touch {marker}")))
    )
    records = json_lines(exported)
    i = _first(records, "value")
    records[i]["data"] = base64.b64encode(payload).decode()
    with AgentGitSaver.from_conn_string(any_db) as saver:
        mgr = SessionManager(saver)
        mgr.import_sessions(io.StringIO(to_text(records)))
        # What the strict serializer made of it: plain data, not the call's result.
        decoded = saver.serde.loads_typed(("msgpack", payload))
        assert not isinstance(decoded, int)
        for session in mgr.list_sessions():
            for branch in mgr.branches(session.id):
                thread_view(saver, branch.thread_id)
    assert not marker.exists()


# --- a LangGraph SqliteSaver database brought in --------------------------------------------


@contextmanager
def _langgraph_saver(source: str) -> Iterator[Any]:
    """LangGraph's own saver on ``source``: SqliteSaver on a path, PostgresSaver on a URL."""
    if is_postgres_url(source):
        from langgraph.checkpoint.postgres import PostgresSaver

        with PostgresSaver.from_conn_string(source) as saver:
            saver.setup()
            yield saver
    else:
        from langgraph.checkpoint.sqlite import SqliteSaver

        with SqliteSaver.from_conn_string(source) as saver:
            yield saver


def _sqlite_saver_world(path: str) -> list[tuple[str, str]]:
    """Threads run by LangGraph's SqliteSaver (a path) or PostgresSaver (a URL) on
    ``path``: (thread id, graph) each."""
    threads = [
        ("chat-1", "chat"),
        ("chat-2", "chat"),
        ("approval-1", "approval"),
        ("nested-1", "nested"),
        ("delta-1", "delta"),
    ]
    with _langgraph_saver(path) as saver:
        graphs = {name: build().compile(checkpointer=saver) for name, build in GRAPHS.items()}
        for thread_id, kind in threads:
            config = {"configurable": {"thread_id": thread_id}}
            graph = graphs[kind]
            if kind == "chat":
                for text in ("hello", "where is my order?", thread_id):
                    graph.invoke({"messages": [("user", text)]}, config)
            elif kind == "approval":
                graph.invoke({"steps": []}, config)
            elif kind == "nested":
                graph.invoke({"log": ["start"]}, config)
            else:
                graph.invoke({"items": [], "rounds": 0, "target": 7}, config)
        # One more: a chat thread whose earlier state was edited (update_state forks it
        # inside the thread).
        config = {"configurable": {"thread_id": "chat-2"}}
        first = list(graphs["chat"].get_state_history(config))[-3]
        graphs["chat"].update_state(first.config, {"messages": [("user", "edited")]})
    return threads


def _continue(graph: Any, kind: str, config: Any) -> None:
    """The same next steps on either saver."""
    if kind == "chat":
        graph.invoke({"messages": [("user", "and now?")]}, config)
    elif kind in ("approval", "nested"):
        graph.invoke(Command(resume="approved"), config)
    else:
        graph.invoke({"target": 10}, config)


def _sorted_view(saver: Any, thread_id: str) -> list[dict[str, Any]]:
    from conftest import tuple_view

    view = [tuple_view(t) for t in saver.list({"configurable": {"thread_id": thread_id}})]
    return sorted(view, key=lambda v: (v["ns"], v["id"]))


@pytest.fixture(params=["SqliteSaver", "PostgresSaver"])
def langgraph_source(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Where LangGraph's own saver keeps its checkpoints: a file, or a fresh schema."""
    if request.param == "SqliteSaver":
        yield str(tmp_path / "langgraph.sqlite")
        return
    with pg.fresh_schema() as url:
        yield url


def _source_rows(source: str) -> list[Any]:
    """Every row of LangGraph's tables at ``source``, to show it was only read."""
    tables = (
        ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
        if is_postgres_url(source)
        else ("checkpoints", "writes")
    )
    return [sorted(sql_rows(source, f"SELECT * FROM {t}"), key=repr) for t in tables]


def test_import_langgraph_resumes_alike(langgraph_source: str, any_db: str, tmp_path: Path) -> None:
    """Every thread, checkpoint (all namespaces) and pending write of a SqliteSaver file
    or a PostgresSaver schema reads back the same from agentgit, the source is not
    changed, and the graphs resume with the same results as on LangGraph's saver."""
    from langgraph_agentgit import ThreadExistsError
    from langgraph_agentgit.langgraph_import import import_langgraph

    source = langgraph_source
    threads = _sqlite_saver_world(source)
    untouched = _source_rows(source)
    report = import_langgraph(source, any_db, sessions=True, user_id="ada")
    assert _source_rows(source) == untouched
    assert report.threads == len(threads)
    if not is_postgres_url(source):
        assert report.source_bytes == Path(source).stat().st_size
    assert report.source_bytes > 0
    assert report.target_bytes_after > report.target_bytes_before
    with _langgraph_saver(source) as lg, AgentGitSaver.from_conn_string(any_db) as ours:
        assert report.checkpoints == sum(1 for _ in lg.list(None))
        for thread_id, _ in threads:
            expected = _sorted_view(lg, thread_id)
            assert _sorted_view(ours, thread_id) == expected
            assert any(v["writes"] for v in expected) or thread_id.startswith("chat")
        mgr = SessionManager(ours)
        assert {s.current_thread_id for s in mgr.list_sessions(user_id="ada")} == {
            t for t, _ in threads
        }
        theirs = {k: b().compile(checkpointer=lg) for k, b in GRAPHS.items()}
        mine = {k: b().compile(checkpointer=ours) for k, b in GRAPHS.items()}
        for thread_id, kind in threads:
            config = {"configurable": {"thread_id": thread_id}}
            for graphs in (theirs, mine):
                pending = graphs[kind].get_state(config, subgraphs=True)
                assert bool(pending.interrupts) == (kind in ("approval", "nested"))
                _continue(graphs[kind], kind, config)
            a = [comparable(s.values) for s in theirs[kind].get_state_history(config)]
            b = [comparable(s.values) for s in mine[kind].get_state_history(config)]
            assert b == a, thread_id
            assert comparable(mine[kind].get_state(config).values) == comparable(
                theirs[kind].get_state(config).values
            )
        # Versions stay LangGraph's strings.
        latest = ours.get_tuple({"configurable": {"thread_id": "chat-1"}})
        assert latest is not None
        assert all(isinstance(v, str) for v in latest.checkpoint["channel_versions"].values())
    before = counts(any_db)
    with pytest.raises(ThreadExistsError):
        import_langgraph(source, any_db)
    assert counts(any_db) == before


# --- the commands --------------------------------------------------------------------------


def test_a_refused_import_into_a_new_file_leaves_no_database(tmp_path: Path) -> None:
    """`agentgit import` of a file that is missing, not an export, or broken half way
    creates nothing (it left an empty database); into an existing database it changes
    nothing."""
    from typer.testing import CliRunner

    from langgraph_agentgit.cli import app

    runner = CliRunner()
    source = str(tmp_path / "source.db")
    with AgentGitSaver.from_conn_string(source) as saver:
        world = World(saver)
        world.build()
        records = json_lines(export_text(world.mgr))
    broken = tmp_path / "broken.jsonl"
    broken.write_text(to_text(records[: len(records) // 2]))
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text("not json\n")
    # A gzip header, then data that does not inflate ("unexpected error", exit 1, before).
    corrupt = tmp_path / "corrupt.jsonl.gz"
    corrupt.write_bytes(gzip.compress(to_text(records).encode())[:12] + b"\xff" * 64)
    for bad in (tmp_path / "missing.jsonl", garbage, broken, tmp_path, corrupt):
        target = tmp_path / "new.db"
        result = runner.invoke(app, ["import", str(bad), "--db", str(target)])
        assert result.exit_code == 2, (bad, result.output)
        assert "unexpected" not in result.output
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("new.db")) == []
    existing = tmp_path / "existing.db"
    with AgentGitSaver.from_conn_string(str(existing)) as saver:
        SessionManager(saver).create_session(name="kept")
    before = counts(str(existing))
    result = runner.invoke(app, ["import", str(broken), "--db", str(existing)])
    assert result.exit_code != 0 and existing.exists()
    assert counts(str(existing)) == before


def test_cli_export_import_and_import_langgraph(any_db: str, tmp_path: Path) -> None:
    """`agentgit export`, `agentgit import` and `agentgit import-langgraph` are the library
    calls: the imported sessions read back as exported, a conflict exits 2 with nothing
    written, --new-ids imports again, a broken file names its line."""
    from typer.testing import CliRunner

    from langgraph_agentgit.cli import app

    runner = CliRunner()
    source = str(tmp_path / "source.db")
    with AgentGitSaver.from_conn_string(source) as saver:
        world = World(saver)
        world.build()
        chat, approval = list(world.kind)[:2]
        expected = world.views([chat, approval])
    out = tmp_path / "two.jsonl"
    done = runner.invoke(app, ["export", chat[:8], approval, "-o", str(out), "--db", source])
    assert done.exit_code == 0, done.output
    assert "Exported 2 session(s)" in done.output
    done = runner.invoke(app, ["import", str(out), "--db", any_db, "--json"])
    assert done.exit_code == 0, done.output
    assert sorted(json.loads(done.stdout)["session_ids"]) == sorted([chat, approval])
    with AgentGitSaver.from_conn_string(any_db) as saver:
        target = World(saver)
        target.kind = dict(world.kind)
        assert target.views() == expected
    before = counts(any_db)
    again = runner.invoke(app, ["import", str(out), "--db", any_db])
    assert again.exit_code == 2 and "already exists" in again.output
    assert counts(any_db) == before
    broken = tmp_path / "broken.jsonl"
    broken.write_text("".join(out.read_text().splitlines(keepends=True)[:-1]))
    refused = runner.invoke(app, ["import", str(broken), "--db", any_db])
    assert refused.exit_code == 2 and "line" in refused.output and "truncated" in refused.output
    assert counts(any_db) == before
    renamed = runner.invoke(app, ["import", str(out), "--new-ids", "--db", any_db])
    assert renamed.exit_code == 0, renamed.output
    assert counts(any_db)["agentgit_sessions"] == before["agentgit_sessions"] + 2
    # A .gz output is gzip-compressed, and import recognizes it.
    packed = tmp_path / "two.jsonl.gz"
    done = runner.invoke(app, ["export", chat, approval, "-o", str(packed), "--db", source])
    assert done.exit_code == 0, done.output
    unpacked = json_lines(gzip.decompress(packed.read_bytes()).decode())
    # All but the export's time, and the digest that covers it.
    assert unpacked[1:-1] == json_lines(out.read_text())[1:-1]
    assert unpacked[-1]["lines"] == json_lines(out.read_text())[-1]["lines"]
    done = runner.invoke(app, ["import", str(packed), "--new-ids", "--db", any_db])
    assert done.exit_code == 0, done.output
    assert counts(any_db)["agentgit_sessions"] == before["agentgit_sessions"] + 4
    # Standard input, plain and gzipped ("-").
    for data in (out.read_bytes(), packed.read_bytes()):
        done = runner.invoke(app, ["import", "-", "--new-ids", "--db", any_db], input=data)
        assert done.exit_code == 0, done.output
    assert counts(any_db)["agentgit_sessions"] == before["agentgit_sessions"] + 8
    # A LangGraph SqliteSaver file.
    lg = str(tmp_path / "langgraph.sqlite")
    threads = _sqlite_saver_world(lg)
    done = runner.invoke(app, ["import-langgraph", lg, "--sessions", "--db", any_db, "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert set(report["session_ids"]) == {t for t, _ in threads}
    assert report["target_bytes_after"] >= report["target_bytes_before"]


def test_export_from_sqlite_imports_into_postgres_and_back(tmp_path: Path) -> None:
    """The format does not depend on the engine: SQLite -> PostgreSQL -> SQLite."""
    source = str(tmp_path / "source.db")
    back = str(tmp_path / "back.db")
    with AgentGitSaver.from_conn_string(source) as saver:
        world = World(saver)
        world.build()
        text = export_text(world.mgr)
        expected = world.views()
    with pg.fresh_schema() as url, AgentGitSaver.from_conn_string(url) as saver:
        middle = World(saver)
        middle.kind = dict(world.kind)
        middle.mgr.import_sessions(io.StringIO(text))
        assert middle.views() == expected
        text = export_text(middle.mgr)
    with AgentGitSaver.from_conn_string(back) as saver:
        last = World(saver)
        last.kind = dict(world.kind)
        last.mgr.import_sessions(io.StringIO(text))
        assert last.views() == expected


def test_each_value_is_exported_once_and_lists_as_slices(exported: str) -> None:
    records = json_lines(exported)
    values = [(r["encoding"], r["data"]) for r in records if r["type"] == "value"]
    assert len(values) == len(set(values))
    ids = [r["id"] for r in records if r["type"] in ("value", "list")]
    assert len(ids) == len(set(ids))
    # The chat's growing message list is stored as deltas: exported as slices of the
    # values holding its parts, never as a whole copy per checkpoint.
    lists = [r for r in records if r["type"] == "list"]
    assert lists and all(len(r["parts"]) >= 1 for r in lists)
    assert any(len(r["parts"]) > 1 for r in lists)


def test_round_trip_after_prune_keeps_what_forks_see(any_db: str, target_db: str) -> None:
    """After prune(keep_latest) of a session's first thread (its rows hidden but kept for
    the branches forked from it) and of a branch (which stops inheriting), every branch
    still reads back as before the export."""
    with AgentGitSaver.from_conn_string(any_db) as saver:
        world = World(saver)
        world.build()
        for session_id in world.kind:
            branches = world.mgr.branches(session_id)
            saver.prune([branches[0].thread_id], strategy="keep_latest")
            if len(branches) > 2:
                saver.prune([branches[1].thread_id], strategy="keep_latest")
        records = json_lines(export_text(world.mgr))
        assert any(r["type"] == "checkpoint" and r["hidden"] for r in records)
        assert any(r["type"] == "thread" and not r["inherits"] for r in records)
        expected = world.views()
    with AgentGitSaver.from_conn_string(target_db) as saver:
        target = World(saver)
        target.kind = dict(world.kind)
        target.mgr.import_sessions(io.StringIO(to_text(records)))
        assert target.views() == expected


def test_round_trip_of_a_pruned_fork_that_outlived_its_source(any_db: str, target_db: str) -> None:
    """A branch pruned (it stops inheriting), then the branch it was forked from deleted:
    nothing needs the source's rows any more and they are collected, the thread row too;
    the pruned branch still reads back as it did."""
    with AgentGitSaver.from_conn_string(any_db) as saver:
        world = World(saver)
        graph = world.graphs["chat"]
        s = world.mgr.create_session(name="pruned")
        world.kind[s.id] = "chat"
        main = world.mgr.config(s.id)
        for text in ("one", "two", "three"):
            graph.invoke({"messages": [("user", text)]}, main)
        first = world.mgr.branches(s.id)[0]
        branch = world.mgr.rollback(s.id, list(graph.get_state_history(main))[3])
        graph.invoke({"messages": [("user", "two, again")]}, branch.config)
        saver.prune([branch.thread_id], strategy="keep_latest")
        world.mgr.delete_branch(s.id, first.thread_id)
        records = json_lines(export_text(world.mgr))
        threads = [r for r in records if r["type"] == "thread"]
        assert [(t["parent"], t["inherits"]) for t in threads] == [(None, False)]
        expected = world.views()
    with AgentGitSaver.from_conn_string(target_db) as saver:
        target = World(saver)
        target.kind = dict(world.kind)
        target.mgr.import_sessions(io.StringIO(to_text(records)))
        assert target.views() == expected


# --- where the bytes go (mgr.storage, agentgit du) -----------------------------------------


def test_storage_attributes_every_value_once(any_db: str) -> None:
    """Own, shared and unattributed bytes partition the stored values; deleting a session
    frees exactly the bytes the report called its own; a copy of a session (imported
    with new ids) shares its values with the original, reported as shared."""
    with AgentGitSaver.from_conn_string(any_db) as saver:
        world = World(saver)
        world.build()
        chat, approval = list(world.kind)[:2]
        world.mgr.import_sessions(
            io.StringIO(export_text(world.mgr, session_ids=[approval])), on_conflict="new_ids"
        )
        report = world.mgr.storage()
        by_id = {s.session_id: s for s in report.sessions}
        assert len(by_id) == 5
        assert (
            sum(s.own_value_bytes for s in report.sessions)
            + report.shared_value_bytes
            + report.unattributed_value_bytes
            == report.value_bytes
            == blob_bytes(any_db)
        )
        assert report.unattributed_value_bytes > 0  # the plain thread's messages
        assert by_id[approval].shared_value_bytes > 0  # shared with its copy
        assert report.database_bytes >= report.row_bytes + report.value_bytes
        # Branches of the chat: three, each with rows; the channels it used.
        assert len(by_id[chat].branches) == 3
        assert all(b.checkpoints > 0 and b.row_bytes > 0 for b in by_id[chat].branches)
        assert sum(b.own_value_bytes for b in by_id[chat].branches) <= by_id[chat].own_value_bytes
        assert "messages" in by_id[chat].channels
        assert by_id[chat].checkpoints == sum(1 for _ in saver.list(None)) - sum(
            s.checkpoints for s in report.sessions if s.session_id != chat
        ) - sum(1 for _ in saver.list({"configurable": {"thread_id": "plain"}}))
        # Only one session when asked.
        assert [s.session_id for s in world.mgr.storage(chat).sessions] == [chat]
        with pytest.raises(SessionNotFoundError):
            world.mgr.storage("no-such-session")
        # Deleting the chat frees what was its own, and nothing else.
        world.mgr.delete_session(chat)
        after = world.mgr.storage()
        assert after.value_bytes == report.value_bytes - by_id[chat].own_value_bytes
    if not is_postgres_url(any_db):
        # The database's size is the file's, within 10% (its log checkpointed at close).
        size = Path(any_db).stat().st_size
        assert abs(after.database_bytes - size) <= 0.1 * size


def test_cli_du(any_db: str) -> None:
    from typer.testing import CliRunner

    from langgraph_agentgit.cli import app

    with AgentGitSaver.from_conn_string(any_db) as saver:
        world = World(saver)
        world.build()
        expected = world.mgr.storage().to_dict()
        chat = next(iter(world.kind))
    runner = CliRunner()
    done = runner.invoke(app, ["du", "--db", any_db, "--json"])
    assert done.exit_code == 0, done.output
    got = json.loads(done.stdout)
    assert got["value_bytes"] == expected["value_bytes"]
    assert got["sessions"] == expected["sessions"]
    done = runner.invoke(app, ["du", chat[:8], "--db", any_db])
    assert done.exit_code == 0, done.output
    assert "messages" in done.output and "Branches" in done.output


# --- session lifecycle and ownership (sessions-features) -----------------------------------


def test_ended_session_round_trips_with_its_end_reason(any_db: str, target_db: str) -> None:
    """An ended session keeps ``ended_at`` and ``end_reason`` (and stays inactive) through
    an export and an import; an open one stays open; the import can be reopened."""
    with AgentGitSaver.from_conn_string(any_db) as saver:
        source = World(saver)
        source.build()
        chat, approval, delta, _ = list(source.kind)
        ended = source.mgr.end_session(chat, reason="resolved by agent")
        silent = source.mgr.end_session(delta)
        assert ended.ended_at is not None and ended.end_reason == "resolved by agent"
        assert silent.ended_at is not None and silent.end_reason is None
        records = json_lines(export_text(source.mgr))
        by_id = {r["id"]: r for r in records if r["type"] == "session"}
        assert by_id[chat]["end_reason"] == "resolved by agent"
        assert by_id[chat]["ended_at"] == ended.ended_at.isoformat()
        assert (by_id[delta]["ended_at"] is not None, by_id[delta]["end_reason"]) == (True, None)
        assert (by_id[approval]["ended_at"], by_id[approval]["end_reason"]) == (None, None)
        expected = source.views()
    with AgentGitSaver.from_conn_string(target_db) as saver:
        target = World(saver)
        target.kind = dict(source.kind)
        target.mgr.import_sessions(io.StringIO(to_text(records)))
        assert target.views() == expected  # ExternalSession equality: ended_at, end_reason
        got = target.mgr.get_session(chat)
        assert got is not None and got.is_ended and not got.is_active
        assert (got.ended_at, got.end_reason) == (ended.ended_at, "resolved by agent")
        assert target.mgr.count_sessions(open_only=True) == 2
        reopened = target.mgr.reopen_session(chat)
        assert (reopened.ended_at, reopened.end_reason, reopened.is_active) == (None, None, True)
        # A file written before sessions could end (no such fields) imports them open.
        for r in records:
            if r["type"] == "session":
                r.pop("ended_at")
                r.pop("end_reason")
        report = target.mgr.import_sessions(io.StringIO(to_text(records)), on_conflict="new_ids")
        for new in report.renamed_sessions.values():
            s = target.mgr.get_session(new)
            assert s is not None and (s.ended_at, s.end_reason) == (None, None)


def test_scoped_manager_exports_imports_and_measures_only_its_users_sessions(
    any_db: str, target_db: str
) -> None:
    from langgraph_agentgit import SessionEvent, SessionLimitError, SessionScopeError

    with AgentGitSaver.from_conn_string(any_db) as saver:
        source = World(saver)
        source.build()
        ada_ids = list(source.kind)[:2]  # World.build: chat and approval are ada's
        bob_id = list(source.kind)[2]
        ada = SessionManager(saver, user_id="ada")
        mine = json_lines(export_text(ada))
        assert [r["id"] for r in mine if r["type"] == "session"] == ada_ids
        # Another user's sessions: refused, as creating one for them is.
        with pytest.raises(SessionScopeError, match="scoped to user 'ada'"):
            export_text(ada, user_id="bob")
        assert json_lines(export_text(ada, user_id="ada"))[1:-1] == mine[1:-1]
        # Another user's session is a missing one, with the same message.
        missing = "no-such-session"
        for call in (
            lambda sid: export_text(ada, session_ids=[ada_ids[0], sid]),
            lambda sid: ada.storage(sid),
        ):
            with pytest.raises(SessionNotFoundError) as theirs:
                call(bob_id)
            with pytest.raises(SessionNotFoundError) as absent:
                call(missing)
            assert str(theirs.value).replace(bob_id, "<id>") == str(absent.value).replace(
                missing, "<id>"
            )
        assert [s.session_id for s in ada.storage(ada_ids[0]).sessions] == [ada_ids[0]]
        with pytest.raises(SessionScopeError):
            ada.storage()
        everyone = export_text(source.mgr)
    with AgentGitSaver.from_conn_string(target_db) as saver:
        before = counts(target_db)
        with pytest.raises(SessionScopeError, match="scoped to user 'ada'"):
            SessionManager(saver, user_id="ada").import_sessions(io.StringIO(everyone))
        assert counts(target_db) == before
        # The session limit counts the imported open sessions, in the same transaction.
        with pytest.raises(SessionLimitError):
            SessionManager(saver, user_id="ada", max_sessions_per_user=1).import_sessions(
                io.StringIO(to_text(mine))
            )
        assert counts(target_db) == before
        scoped = SessionManager(
            saver, user_id="ada", max_sessions_per_user=1, on_limit="retire_oldest"
        )
        seen: list[SessionEvent] = []
        scoped.on("create", seen.append)
        report = scoped.import_sessions(io.StringIO(to_text(mine)))
        assert report.session_ids == ada_ids
        assert [(e.kind, e.session_id, e.user_id) for e in seen] == [
            ("create", s, "ada") for s in ada_ids
        ]
        assert scoped.count_sessions(open_only=True) == 1
        assert [s.end_reason for s in scoped.list_sessions() if s.is_ended] == ["retired"]


def test_file_and_id_arguments_are_checked(tmp_path: Path, exported: str) -> None:
    """A path, None or a lone session id instead of a file object or a list: TypeError
    saying what to pass, before anything is read or written."""
    with AgentGitSaver.from_conn_string(str(tmp_path / "x.db")) as saver:
        mgr = SessionManager(saver)
        s = mgr.create_session(name="one")
        for bad in ("out.jsonl", tmp_path / "out.jsonl", b"out.jsonl"):
            with pytest.raises(TypeError, match="pass an open file object, not a path"):
                mgr.export_sessions(bad)  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="pass an open file object, not a path"):
                mgr.import_sessions(bad)  # type: ignore[arg-type]
        assert not (tmp_path / "out.jsonl").exists()
        with pytest.raises(TypeError, match="file object open for writing, got NoneType"):
            mgr.export_sessions(None)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="file object open for reading, got NoneType"):
            mgr.import_sessions(None)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="not a single str"):
            mgr.export_sessions(io.StringIO(), session_ids=s.id)  # type: ignore[arg-type]
        records = json_lines(exported)
        records[_first(records, "session")]["metadata"] = "a string"
        with pytest.raises(ExportFormatError, match="field 'metadata': must be an object"):
            mgr.import_sessions(io.StringIO(to_text(records)), on_conflict="new_ids")
        assert [x.id for x in mgr.list_sessions()] == [s.id]


def test_import_after_the_session_was_deleted_names_the_deleted_thread(any_db: str) -> None:
    """Re-importing a session deleted since: the conflict says its thread id is a
    deleted thread's (ids of deleted threads are kept, not reused) and how to import."""
    with AgentGitSaver.from_conn_string(any_db) as saver:
        mgr = SessionManager(saver)
        s = mgr.create_session(name="gone")
        build_chat_graph().compile(checkpointer=saver).invoke(
            {"messages": [("user", "hello")]}, mgr.config(s.id)
        )
        text = export_text(mgr)
        mgr.delete_session(s.id)
        with pytest.raises(ImportConflictError) as caught:
            mgr.import_sessions(io.StringIO(text))
        message = str(caught.value)
        assert f"thread {s.current_thread_id!r} is the id of a deleted thread" in message
        assert "--new-ids" in message
        assert mgr.list_sessions() == []
        report = mgr.import_sessions(io.StringIO(text), on_conflict="new_ids")
        assert len(report.session_ids) == 1


def test_import_langgraph_names_sessions_safely_and_checks_the_user(tmp_path: Path) -> None:
    """A LangGraph thread id may hold what a session name may not: the session made of
    it is named after the id cleaned (one line, no bidirectional overrides) or untitled
    when nothing is left. A bad user id is refused before the target is even created."""
    lg = str(tmp_path / "langgraph.sqlite")
    weird = {"two\nlines\u202eevil": "two linesevil", "\x07\x1b": ""}
    with _langgraph_saver(lg) as saver:
        graph = build_chat_graph().compile(checkpointer=saver)
        for thread_id in weird:
            graph.invoke({"messages": [("user", "hi")]}, {"configurable": {"thread_id": thread_id}})
    target = tmp_path / "target.db"
    for bad in ("", " ada", "a\x00b"):
        with pytest.raises(ValueError, match="a user id must"):
            import_langgraph(lg, str(target), sessions=True, user_id=bad)
        assert not target.exists()
    report = import_langgraph(lg, str(target), sessions=True, user_id="ada")
    with AgentGitSaver.from_conn_string(str(target)) as saver:
        mgr = SessionManager(saver)
        for thread_id, name in weird.items():
            session = mgr.get_session(report.session_ids[thread_id])
            assert session is not None
            assert (session.name, session.user_id) == (name, "ada")
            assert session.current_thread_id == thread_id


def test_a_scoped_export_of_a_fork_of_another_users_thread_is_refused(any_db: str) -> None:
    """Bob's session forks alice's thread: his scoped export would write her whole thread,
    what she wrote after the fork point included. It is refused, naming the thread, and
    nothing is written; alice's own fork of her own session exports; an unscoped
    manager exports bob's session."""
    with AgentGitSaver.from_conn_string(any_db) as saver:
        world = World(saver)
        graph = world.graphs["chat"]
        alice, bob = SessionManager(saver, user_id="alice"), SessionManager(saver, user_id="bob")
        a = alice.create_session(name="a")
        graph.invoke({"messages": [("user", "shared start")]}, alice.config(a.id))
        head = graph.get_state(alice.config(a.id)).config["configurable"]["checkpoint_id"]
        saver.fork_thread(a.current_thread_id, head, "bob-fork")
        saver.fork_thread(a.current_thread_id, head, "alice-fork")
        b = bob.adopt("bob-fork", name="b")
        mine = alice.adopt("alice-fork", name="mine")
        graph.invoke({"messages": [("user", "alice private later")]}, alice.config(a.id))
        out = io.StringIO()
        with pytest.raises(SessionScopeError, match=a.current_thread_id):
            bob.export_sessions(out)
        assert out.getvalue() == ""
        with pytest.raises(SessionScopeError):
            bob.export_sessions(io.StringIO(), session_ids=[b.id])
        # Her own thread goes with her own fork (values are encoded: the thread record).
        assert a.current_thread_id in export_text(alice, session_ids=[mine.id])
        assert "bob-fork" in export_text(SessionManager(saver), session_ids=[b.id])


def _histories(saver: Any, mgr: SessionManager) -> dict[str, Any]:
    """Every branch's history as LangGraph reads it: ids, parents, messages, and usage."""
    out: dict[str, Any] = {}
    for s in mgr.list_sessions():
        for b in mgr.branches(s.id):
            config = {"configurable": {"thread_id": b.thread_id, "checkpoint_ns": ""}}
            out[b.thread_id] = (
                [
                    (
                        t.config["configurable"]["checkpoint_id"],
                        (t.parent_config or {}).get("configurable", {}).get("checkpoint_id"),
                        [m.content for m in t.checkpoint["channel_values"].get("messages", [])],
                    )
                    for t in saver.list(config)
                ],
                mgr.usage(s.id, thread_id=b.thread_id).messages,
            )
    return out


@pytest.mark.parametrize("case", ["deleted middle branch", "deleted undo branch"])
def test_exports_after_deleted_branches_and_prunes_import(tmp_path: Path, case: str) -> None:
    """A fork of a fork whose middle branch was deleted, then pruned; or a rollback from
    an undo branch that was then deleted, then prune_sessions. The export named a fork
    row for a thread without a parent, or refused a deleted link thread without its
    fork row: the library could not import its own file. It imports, and every branch
    reads back the same (ids, parents, messages, counts)."""
    from langchain_core.messages import HumanMessage

    source = str(tmp_path / "source.db")
    with AgentGitSaver.from_conn_string(source) as saver:
        graph = build_chat_graph().compile(checkpointer=saver)
        mgr = SessionManager(saver)
        s = mgr.create_session(name="x")
        main = mgr.config(s.id)
        graph.invoke({"messages": [HumanMessage("one")]}, main)
        if case == "deleted middle branch":
            first = list(saver.list(main))[-1].config
            b1 = mgr.rollback(s.id, first)
            graph.invoke({"messages": [HumanMessage("two")]}, b1.config)
            b2 = mgr.branch(s.id, list(saver.list(b1.config))[-1].config)
            graph.invoke({"messages": [HumanMessage("three")]}, b2.config)
            mgr.delete_branch(s.id, b1.thread_id)
            saver.prune([b2.thread_id], strategy="keep_latest")
        else:
            history = list(saver.list(main))
            graph.invoke({"messages": [HumanMessage("travel")]}, history[1].config)
            b1 = mgr.undo_last_turn(s.id)
            rows = list(saver.list(b1.config))
            b2 = mgr.rollback(s.id, rows[3 % len(rows)].config)
            graph.invoke({"messages": [HumanMessage("three")]}, b2.config)
            mgr.delete_branch(s.id, b1.thread_id)
            mgr.prune_sessions(keep_last=2)
        expected = _histories(saver, mgr)
        text = export_text(mgr)
    with AgentGitSaver.from_conn_string(str(tmp_path / "target.db")) as saver:
        mgr = SessionManager(saver)
        mgr.import_sessions(io.StringIO(text))
        assert _histories(saver, mgr) == expected
