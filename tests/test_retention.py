"""Retention: ``SessionManager.prune_sessions`` (``agentgit prune``), the saver's
``max_age`` sweep of plain threads, and ``agentgit vacuum``, on both engines.

Sessions are built by running real graphs: a chat with branches of branches and tags,
an interrupt graph whose branch was made at a pending interrupt (and whose head is
interrupted again), a ``DeltaChannel`` graph with a branch, a graph interrupted inside a
subgraph over several turns, and a session adopting a fork of another session's thread.
After a prune every branch's remaining history (``get_state_history``, every checkpoint
tuple of every namespace, ``get_state`` with subgraphs) reads back exactly as it did,
minus what the options say goes; resuming the pending interrupts gives the same results
as on a twin database that was not pruned.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

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
from typer.testing import CliRunner

from langgraph_agentgit import (
    AgentGitSaver,
    AsyncAgentGitSaver,
    SessionManager,
    SessionNotFoundError,
    SessionScopeError,
    retention,
)
from langgraph_agentgit.backends import is_postgres_url
from langgraph_agentgit.cli import app

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

GRAPHS = {
    "chat": build_chat_graph,
    "approval": build_interrupt_graph,
    "delta": build_delta_graph,
    "nested": build_subgraph_graph,
}

OLD = "2020-01-01T00:00:00.000000+00:00"


def dump(db: str) -> dict[str, list[tuple[Any, ...]]]:
    return {t: sorted(sql_rows(db, f"SELECT * FROM {t}"), key=repr) for t in TABLES}


def make_old(db: str, session_id: str) -> None:
    """Back-date a session's last activity (as if nobody had touched it since 2020)."""
    if is_postgres_url(db):
        import psycopg

        with psycopg.connect(db) as conn:
            conn.execute(
                "UPDATE agentgit_sessions SET updated_at = %s WHERE id = %s", (OLD, session_id)
            )
        return
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE agentgit_sessions SET updated_at = ? WHERE id = ?", (OLD, session_id))


@pytest.fixture
def twin_db(any_db: str, tmp_path: Path) -> Iterator[str]:
    """A second database on the same engine as ``any_db``."""
    if is_postgres_url(any_db):
        with pg.fresh_schema() as url:
            yield url
    else:
        yield str(tmp_path / "twin.db")


class World:
    """Sessions built on one database by running the test graphs (the same each time:
    message ids are derived from content, so two worlds build alike)."""

    def __init__(self, saver: AgentGitSaver) -> None:
        self.saver = saver
        self.mgr = SessionManager(saver)
        self.graphs = {name: build().compile(checkpointer=saver) for name, build in GRAPHS.items()}
        #: session name -> (session id, graph kind)
        self.sessions: dict[str, tuple[str, str]] = {}

    def build(self) -> None:
        mgr, g = self.mgr, self.graphs
        # Chat: four turns, a branch at the first turn's tag, a branch of that branch at
        # a tag on it; each branch goes on for turns of its own.
        chat = mgr.create_session(user_id="ada", name="chat")
        self.sessions["chat"] = (chat.id, "chat")
        config = mgr.config(chat.id)
        g["chat"].invoke({"messages": [("user", "first")]}, config)
        mgr.tag(chat.id, g["chat"].get_state(config), "after-first")
        for text in ("second", "third", "fourth"):
            g["chat"].invoke({"messages": [("user", text)]}, config)
        branch = mgr.rollback(chat.id, "after-first")
        g["chat"].invoke({"messages": [("user", "second, again")]}, branch.config)
        mgr.tag(chat.id, g["chat"].get_state(branch.config), "on-branch")
        g["chat"].invoke({"messages": [("user", "third, again")]}, branch.config)
        g["chat"].invoke({"messages": [("user", "fourth, again")]}, branch.config)
        deeper = mgr.rollback(chat.id, "on-branch")
        g["chat"].invoke({"messages": [("user", "another third")]}, deeper.config)
        g["chat"].invoke({"messages": [("user", "another fourth")]}, deeper.config)
        # Another session continues from a fork of the chat's main thread (adopted).
        fork = self.saver.fork_thread(
            chat.current_thread_id,
            list(g["chat"].get_state_history(config))[3].config["configurable"]["checkpoint_id"],
            "adopted-fork",
        )
        g["chat"].invoke({"messages": [("user", "elsewhere")]}, fork)
        adopted = mgr.adopt("adopted-fork", user_id="cy", name="adopted")
        self.sessions["adopted"] = (adopted.id, "chat")
        # Approval: an interrupt pending; a branch made there; the source resumes and
        # starts a second run, interrupted again (its head has a pending interrupt).
        approval = mgr.create_session(user_id="bob", name="approval")
        self.sessions["approval"] = (approval.id, "approval")
        config = mgr.config(approval.id)
        g["approval"].invoke({"steps": []}, config)
        mgr.branch(approval.id, g["approval"].get_state(config))
        g["approval"].invoke(Command(resume="yes"), config)
        g["approval"].invoke({"steps": []}, config)
        assert g["approval"].get_state(config).interrupts
        # DeltaChannel: most checkpoints hold no value for the list; a branch from the
        # middle goes on with more rounds.
        delta = mgr.create_session(user_id="bob", name="delta")
        self.sessions["delta"] = (delta.id, "delta")
        config = mgr.config(delta.id)
        g["delta"].invoke({"items": [], "rounds": 0, "target": 9}, config)
        middle = list(g["delta"].get_state_history(config))[5]
        branch = mgr.rollback(delta.id, middle)
        g["delta"].invoke({"target": 14}, branch.config)
        # A subgraph interrupted inside it, resumed, then run again and interrupted again.
        nested = mgr.create_session(user_id="bob", name="nested")
        self.sessions["nested"] = (nested.id, "nested")
        config = mgr.config(nested.id)
        g["nested"].invoke({"log": ["start"]}, config)
        g["nested"].invoke(Command(resume="ok"), config)
        g["nested"].invoke({"log": ["again"]}, config)
        assert g["nested"].get_state(config, subgraphs=True).tasks[0].state is not None
        # A plain thread outside any session: prune_sessions never touches it.
        g["chat"].invoke(
            {"messages": [("user", "plain")]}, {"configurable": {"thread_id": "plain"}}
        )

    def id(self, name: str) -> str:
        return self.sessions[name][0]

    def views(self) -> dict[str, Any]:
        """Per live session and branch: every checkpoint tuple of every namespace, the
        graph's whole history, and its state with subgraphs; plus the plain thread."""
        out: dict[str, Any] = {"plain": thread_view(self.saver, "plain")}
        live = {s.id for s in self.mgr.list_sessions()}
        for name, (session_id, kind) in self.sessions.items():
            if session_id not in live:
                continue
            graph = self.graphs[kind]
            out[name] = {
                b.thread_id: {
                    "own": b.checkpoint_count,
                    "tuples": thread_view(self.saver, b.thread_id),
                    "history": [
                        snapshot_view(s)
                        | {"values": s.values, "config": s.config, "parent": s.parent_config}
                        for s in graph.get_state_history(b.config)
                    ],
                    "state": graph.get_state(b.config, subgraphs=True),
                }
                for b in self.mgr.branches(session_id)
            }
        return out

    def resume_all(self) -> list[Any]:
        """Resume every pending interrupt of every branch; the states that come out,
        without ids (comparable between two databases)."""
        out = []
        for name, (session_id, kind) in sorted(self.sessions.items()):
            if self.mgr.get_session(session_id) is None:
                continue
            graph = self.graphs[kind]
            for b in self.mgr.branches(session_id):
                if graph.get_state(b.config).interrupts:
                    graph.invoke(Command(resume="later"), b.config)
                out.append((name, comparable(graph.get_state(b.config).values)))
        return out


def _id(item: dict[str, Any]) -> str:
    return str(item["config"]["configurable"]["checkpoint_id"])


def assert_kept_exactly(
    before: dict[str, Any], after: dict[str, Any], keep_last: int | None, tagged: set[str]
) -> None:
    """Every branch left lists a subset of what it listed, each entry exactly as before;
    with ``keep_last``, exactly its newest ``keep_last`` own checkpoints (and tagged
    ones) and everything it inherits."""
    for name, branches in after.items():
        if name == "plain":
            assert branches == before["plain"]
            continue
        for thread_id, view in branches.items():
            old = before[name][thread_id]
            assert view["state"] == old["state"], (name, thread_id)
            left = {_id(h) for h in view["history"]}
            assert view["history"] == [h for h in old["history"] if _id(h) in left]
            keys = {(t["ns"], t["id"]) for t in view["tuples"]}
            assert view["tuples"] == [t for t in old["tuples"] if (t["ns"], t["id"]) in keys]
            if keep_last is None:
                continue
            own, inherited = old["history"][: old["own"]], old["history"][old["own"] :]
            expected = [
                h for i, h in enumerate(own) if i < keep_last or _id(h) in tagged
            ] + inherited
            assert view["history"] == expected, (name, thread_id)


def storage_bytes(mgr: SessionManager) -> int:
    report = mgr.storage()
    return report.row_bytes + report.value_bytes


# --- prune_sessions --------------------------------------------------------------------------


@pytest.mark.parametrize("keep_last", [1, 2])
def test_keep_last_keeps_every_remaining_state(any_db: str, twin_db: str, keep_last: int) -> None:
    """keep_last trims every branch to its newest checkpoints (tagged ones kept), keeps
    what branches inherit, reads back every remaining state as before, frees what it
    says, and the interrupts resume as on a database that was not pruned."""
    with ExitStack() as stack:
        world = World(stack.enter_context(AgentGitSaver.from_conn_string(any_db)))
        world.build()
        twin = World(stack.enter_context(AgentGitSaver.from_conn_string(twin_db)))
        twin.build()
        before = world.views()
        tagged = {
            cid
            for session_id, _ in world.sessions.values()
            for cid in world.mgr.tags(session_id).values()
        }
        size = storage_bytes(world.mgr)
        report = world.mgr.prune_sessions(keep_last=keep_last)
        after = world.views()
        assert set(after) == set(before)
        assert_kept_exactly(before, after, keep_last, tagged)
        removed = sum(
            old["own"] - after[name][thread_id]["own"]
            for name, branches in before.items()
            if name != "plain"
            for thread_id, old in branches.items()
        )
        assert removed > 0
        assert report.checkpoints_removed == removed
        assert report.sessions_deleted == 0 and not report.dry_run
        assert report.bytes_freed == size - storage_bytes(world.mgr) > 0
        assert report.rows_deleted > 0
        # The subgraph's namespace of the first run (interrupted, resumed) went with the
        # checkpoints it served; the one the head's pending task runs in stayed.
        nested = world.mgr.branches(world.id("nested"))[0].thread_id
        spaces = {t["ns"] for t in before["nested"][nested]["tuples"] if t["ns"]}
        left = {t["ns"] for t in after["nested"][nested]["tuples"] if t["ns"]}
        pending = {
            task.state.config["configurable"]["checkpoint_ns"]
            for task in after["nested"][nested]["state"].tasks
            if task.state
        }
        assert len(spaces) == 2 and left == pending and len(left) == 1
        if not is_postgres_url(any_db):
            report_of_check = world.mgr.check()
            assert report_of_check.ok, report_of_check.problems
        # A second prune with the same option has nothing left to do.
        again = world.mgr.prune_sessions(keep_last=keep_last)
        assert again.checkpoints_removed == 0 and again.bytes_freed == 0
        assert world.resume_all() == twin.resume_all()
        # Tags still name their checkpoints: a branch starts at each.
        for session_id, _ in world.sessions.values():
            for name, checkpoint_id in world.mgr.tags(session_id).items():
                assert world.mgr.branch(session_id, name).fork_checkpoint_id == checkpoint_id


def test_older_than_deletes_whole_sessions_but_not_what_others_inherit(any_db: str) -> None:
    """Sessions inactive for longer than older_than go whole; one with tags stays unless
    keep_tagged=False; a session continuing a fork of a deleted one reads as before."""
    with AgentGitSaver.from_conn_string(any_db) as saver:
        world = World(saver)
        world.build()
        for name in ("chat", "approval", "delta"):
            make_old(any_db, world.id(name))
        before = world.views()
        report = world.mgr.prune_sessions(older_than=timedelta(days=90))
        # The chat has tags: kept. Approval and delta went.
        assert report.kept_tagged == [world.id("chat")]
        assert sorted(s.session_id for s in report.sessions if s.deleted) == sorted(
            [world.id("approval"), world.id("delta")]
        )
        assert report.sessions_deleted == 2
        assert report.checkpoints_removed == sum(
            b["own"] for name in ("approval", "delta") for b in before[name].values()
        )
        after = world.views()
        assert set(after) == {"plain", "chat", "adopted", "nested"}
        assert_kept_exactly(before, after, None, set())
        assert after["chat"] == before["chat"] and after["nested"] == before["nested"]
        # Without keep_tagged the chat goes too; the adopted fork of it still reads whole.
        report = world.mgr.prune_sessions(older_than=timedelta(days=90), keep_tagged=False)
        assert [s.session_id for s in report.sessions] == [world.id("chat")]
        after = world.views()
        assert set(after) == {"plain", "adopted", "nested"}
        assert after["adopted"] == before["adopted"]
        assert world.mgr.get_session(world.id("chat")) is None
        if not is_postgres_url(any_db):
            assert world.mgr.check().ok


def test_options_combine_and_user_limits_the_prune(any_db: str) -> None:
    """older_than and keep_last together: old sessions go, the others are trimmed;
    user_id touches only that user's sessions; keep_tagged=False drops the tags whose
    checkpoint no branch reaches any more, and keeps those a fork still reaches."""
    with AgentGitSaver.from_conn_string(any_db) as saver:
        world = World(saver)
        world.build()
        make_old(any_db, world.id("approval"))
        before = world.views()
        report = world.mgr.prune_sessions(older_than=timedelta(days=30), keep_last=1, user_id="bob")
        assert [s.session_id for s in report.sessions if s.deleted] == [world.id("approval")]
        trimmed = {s.session_id for s in report.sessions if not s.deleted}
        assert trimmed == {world.id("delta"), world.id("nested")}
        after = world.views()
        # Ada's and Cy's sessions untouched.
        for name in ("chat", "adopted", "plain"):
            assert after[name] == before[name]
        assert_kept_exactly(
            {k: v for k, v in before.items() if k in ("delta", "nested")},
            {k: v for k, v in after.items() if k in ("delta", "nested")},
            1,
            set(),
        )
        # Ada's chat without its tags' protection: "after-first" (main thread, the first
        # turn) is still reached through the branches forked before the prune.
        report = world.mgr.prune_sessions(keep_last=1, user_id="ada", keep_tagged=False)
        chat = next(s for s in report.sessions if s.session_id == world.id("chat"))
        assert chat.tags_removed == []
        assert set(world.mgr.tags(world.id("chat"))) == {"after-first", "on-branch"}
        assert_kept_exactly({"chat": before["chat"]}, {"chat": world.views()["chat"]}, 1, set())


def test_dry_run_writes_nothing_and_reports_what_the_prune_frees(any_db: str) -> None:
    with AgentGitSaver.from_conn_string(any_db) as saver:
        world = World(saver)
        world.build()
        make_old(any_db, world.id("delta"))
        tables = dump(any_db)
        options: dict[str, Any] = {"older_than": timedelta(days=1), "keep_last": 1}
        dry = world.mgr.prune_sessions(dry_run=True, **options)
        assert dump(any_db) == tables
        assert dry.dry_run and dry.bytes_freed > 0 and dry.sessions_deleted == 1
        size = storage_bytes(world.mgr)
        events: list[Any] = []
        world.mgr.on("delete", events.append)
        real = world.mgr.prune_sessions(**options)
        assert real.to_dict() == dry.to_dict() | {"dry_run": False}
        assert real.bytes_freed == size - storage_bytes(world.mgr)
        assert [e.session_id for e in events] == [world.id("delta")]


def test_async_twin_prunes_alike(any_db: str, twin_db: str) -> None:
    """aprune_sessions on an AsyncAgentGitSaver: same report as the sync prune of a twin
    database, and the same states left."""
    with AgentGitSaver.from_conn_string(twin_db) as saver:
        twin = World(saver)
        twin.build()
        expected = twin.mgr.prune_sessions(keep_last=2)
    with AgentGitSaver.from_conn_string(any_db) as saver:
        world = World(saver)
        world.build()
        before = world.views()

    async def run() -> Any:
        async with AsyncAgentGitSaver.from_conn_string(any_db) as asaver:
            mgr = SessionManager(asaver)
            dry = await mgr.aprune_sessions(keep_last=2, dry_run=True)
            real = await mgr.aprune_sessions(keep_last=2)
            return dry, real

    dry, real = asyncio.run(run())
    assert real.to_dict() == dry.to_dict() | {"dry_run": False}
    assert real.checkpoints_removed == expected.checkpoints_removed
    assert real.rows_deleted == expected.rows_deleted
    assert [(s.checkpoints_removed, s.deleted) for s in real.sessions] == [
        (s.checkpoints_removed, s.deleted) for s in expected.sessions
    ]
    with AgentGitSaver.from_conn_string(any_db) as saver:
        world.saver, world.mgr = saver, SessionManager(saver)
        world.graphs = {n: b().compile(checkpointer=saver) for n, b in GRAPHS.items()}
        after = world.views()
    assert_kept_exactly(before, after, 2, _tagged_ids(any_db))


def _tagged_ids(db: str) -> set[str]:
    return {str(r[0]) for r in sql_rows(db, "SELECT checkpoint_id FROM agentgit_tags")}


@pytest.mark.parametrize(
    "options,error,match",
    [
        ({}, ValueError, "older_than, keep_last or both"),
        ({"older_than": timedelta(0)}, ValueError, "longer than zero"),
        ({"older_than": timedelta(days=-3)}, ValueError, "longer than zero"),
        ({"older_than": timedelta(days=10**8)}, ValueError, "at most 36,500 days"),
        ({"older_than": "90d"}, TypeError, "timedelta"),
        ({"older_than": 90}, TypeError, "timedelta"),
        ({"keep_last": 0}, ValueError, "at least 1"),
        ({"keep_last": -2}, ValueError, "at least 1"),
        ({"keep_last": True}, ValueError, "at least 1"),
        ({"keep_last": 1.5}, ValueError, "at least 1"),
        ({"keep_last": 1, "keep_tagged": "no"}, TypeError, "keep_tagged"),
        ({"keep_last": 1, "user_id": ""}, ValueError, "user_id"),
        ({"keep_last": 1, "user_id": "nobody"}, SessionNotFoundError, "'nobody' has no sessions"),
    ],
)
def test_bad_options_are_refused_and_nothing_changes(
    db_path: str, options: dict[str, Any], error: type[Exception], match: str
) -> None:
    with AgentGitSaver.from_conn_string(db_path) as saver:
        world = World(saver)
        world.build()
        tables = dump(db_path)
        with pytest.raises(error, match=match):
            world.mgr.prune_sessions(**options)
        assert dump(db_path) == tables


def test_scoped_manager_prunes_only_its_users_sessions(db_path: str) -> None:
    with AgentGitSaver.from_conn_string(db_path) as saver:
        world = World(saver)
        world.build()
        before = world.views()
        bob = SessionManager(saver, user_id="bob")
        with pytest.raises(SessionScopeError):
            bob.prune_sessions(keep_last=1, user_id="ada")
        report = bob.prune_sessions(keep_last=1)
        assert {s.session_id for s in report.sessions} == {
            world.id("approval"),
            world.id("delta"),
            world.id("nested"),
        }
        after = world.views()
        for name in ("chat", "adopted", "plain"):
            assert after[name] == before[name]


def test_cli_prune_and_vacuum_shrink_the_file(tmp_path: Path) -> None:
    """`agentgit prune --dry-run` changes nothing; `agentgit prune` frees what the dry run
    said; `agentgit vacuum` then makes the file smaller."""
    db = str(tmp_path / "agentgit.db")
    with AgentGitSaver.from_conn_string(db) as saver:
        world = World(saver)
        world.build()
        for _ in range(3):  # long enough that the freed pages are worth giving back
            for name in ("chat", "approval", "delta", "nested"):
                kind = world.sessions[name][1]
                branch = world.mgr.branches(world.id(name))[0]
                more = {"chat": {"messages": [("user", "x" * 2000)]}, "delta": {"target": 30}}
                if kind in more:
                    world.graphs[kind].invoke(more[kind], branch.config)
        make_old(db, world.id("approval"))
    runner = CliRunner()
    tables = dump(db)
    dry = runner.invoke(
        app, ["prune", "--older-than", "30d", "--keep-last", "1", "--dry-run", "--json", "--db", db]
    )
    assert dry.exit_code == 0, dry.output
    assert dump(db) == tables
    size = Path(db).stat().st_size
    done = runner.invoke(app, ["prune", "--older-than", "30d", "--keep-last", "1", "--db", db])
    assert done.exit_code == 0, done.output
    assert "Removed 1 session(s)" in done.output
    real = runner.invoke(app, ["prune", "--keep-last", "1", "--json", "--db", db])
    assert json.loads(real.stdout)["checkpoints_removed"] == 0
    assert json.loads(dry.stdout)["bytes_freed"] > 0
    vacuumed = runner.invoke(app, ["vacuum", "--json", "--db", db])
    assert vacuumed.exit_code == 0, vacuumed.output
    report = json.loads(vacuumed.stdout)
    assert report["bytes_after"] < report["bytes_before"]
    assert Path(db).stat().st_size == report["bytes_after"] < size


@pytest.mark.parametrize(
    "args,message",
    [
        (["--older-than", "0d"], "more than zero"),
        (["--older-than", "-5d"], "cannot read '-5d'"),
        (["--older-than", "999999999999999999d"], "at most 36,500 days"),
        (["--keep-last", "1", "--user", ""], "must not be empty"),
        (["--older-than", "soon"], "cannot read 'soon'"),
        (["--older-than", "90"], "cannot read '90'"),
        (["--older-than", "90y"], "cannot read '90y'"),
        (["--keep-last", "0"], "at least 1"),
        (["--keep-last", "-1"], "at least 1"),
        ([], "--older-than, --keep-last or both"),
        (["--keep-last", "1", "--user", "nobody"], "'nobody' has no sessions"),
    ],
)
def test_cli_prune_refuses_bad_options(db_path: str, args: list[str], message: str) -> None:
    with AgentGitSaver.from_conn_string(db_path) as saver:
        World(saver).build()
    tables = dump(db_path)
    done = CliRunner().invoke(app, ["prune", *args, "--db", db_path])
    assert done.exit_code == 2, done.output
    assert message in done.output
    assert dump(db_path) == tables


def test_cli_vacuum_on_either_engine(any_db: str) -> None:
    with AgentGitSaver.from_conn_string(any_db) as saver:
        World(saver).build()
        SessionManager(saver).prune_sessions(keep_last=1)
    done = CliRunner().invoke(app, ["vacuum", "--json", "--db", any_db])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["bytes_before"] > 0 and report["bytes_after"] > 0
    if not is_postgres_url(any_db):
        assert report["bytes_after"] <= report["bytes_before"]


# --- max_age: plain threads ----------------------------------------------------------------


class Clock:
    """What the sweep takes for now: a fixed time, so "old" is decided by the test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = datetime.now(timezone.utc)
        monkeypatch.setattr(retention, "_now", lambda: self.now)


def test_checkpoint_id_at_sorts_with_langgraphs_ids() -> None:
    from langgraph.checkpoint.base.id import uuid6

    before = str(uuid6(clock_seq=0))
    moment = datetime.now(timezone.utc) + timedelta(milliseconds=1)
    bound = retention.checkpoint_id_at(moment)
    assert before < bound
    assert bound < retention.checkpoint_id_at(moment + timedelta(microseconds=1))


def test_sweep_deletes_expired_plain_threads_only(
    any_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plain threads whose newest checkpoint is older than max_age go (as delete_thread
    deletes: a fork made of one still reads whole); younger ones, session threads and a
    fork that was written to since stay."""
    chat = build_chat_graph()
    clock = Clock(monkeypatch)
    with AgentGitSaver.from_conn_string(any_db) as saver:
        graph = chat.compile(checkpointer=saver)
        mgr = SessionManager(saver)
        for thread in ("old-1", "old-2"):
            graph.invoke({"messages": [("user", thread)]}, {"configurable": {"thread_id": thread}})
        session = mgr.create_session(name="kept")
        graph.invoke({"messages": [("user", "in a session")]}, mgr.config(session.id))
        head = saver.get_tuple({"configurable": {"thread_id": "old-1"}})
        assert head is not None
        cutoff = datetime.now(timezone.utc)
        fork = saver.fork_thread("old-1", head.config["configurable"]["checkpoint_id"], "fork")
        graph.invoke({"messages": [("user", "later")]}, fork)
        graph.invoke({"messages": [("user", "new")]}, {"configurable": {"thread_id": "new"}})
        fork_before = thread_view(saver, "fork")
        session_before = thread_view(saver, session.current_thread_id)
        clock.now = cutoff + timedelta(days=30)
        assert saver.sweep(max_age=timedelta(days=30)) == 2
        for gone in ("old-1", "old-2"):
            assert saver.get_tuple({"configurable": {"thread_id": gone}}) is None
        assert thread_view(saver, "fork") == fork_before
        assert thread_view(saver, session.current_thread_id) == session_before
        assert saver.get_tuple({"configurable": {"thread_id": "new"}}) is not None
        assert saver.sweep(max_age=timedelta(days=30)) == 0
        with pytest.raises(ValueError, match="needs a max_age"):
            saver.sweep()
        with pytest.raises(ValueError, match="longer than zero"):
            saver.sweep(max_age=timedelta(0))
        with pytest.raises(ValueError, match="limit"):
            saver.sweep(max_age=timedelta(days=1), limit=0)


def test_saver_with_max_age_sweeps_by_itself(db_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A saver made with max_age sweeps at its first put, then every SWEEP_EVERY puts, at
    most SWEEP_BATCH threads a time; the async saver likewise."""
    chat = build_chat_graph()
    clock = Clock(monkeypatch)
    with AgentGitSaver.from_conn_string(db_path) as saver:
        graph = chat.compile(checkpointer=saver)
        for i in range(3):
            graph.invoke({"messages": [("user", "x")]}, {"configurable": {"thread_id": f"t{i}"}})
    clock.now = datetime.now(timezone.utc) + timedelta(days=5)
    monkeypatch.setattr(retention, "SWEEP_BATCH", 1)
    monkeypatch.setattr(retention, "SWEEP_EVERY", 2)

    def threads() -> list[str]:
        return sorted(
            r[0]
            for r in sql_rows(db_path, "SELECT thread_id FROM agentgit_threads")
            if r[0] is not None
        )

    def old_left(puts: int) -> int:
        # Sweeps at puts 1, 3, 5...: one old thread each.
        return max(0, 3 - (puts + 1) // 2)

    with pytest.raises(ValueError, match="longer than zero"):
        AgentGitSaver(sql_connection(db_path), max_age=timedelta(days=-1))
    with AgentGitSaver.from_conn_string(db_path, max_age=timedelta(days=5)) as saver:
        graph = chat.compile(checkpointer=saver)
        graph.invoke({"messages": [("user", "y")]}, {"configurable": {"thread_id": "fresh"}})
        puts = saver.checkpoint_count("fresh")
        assert 0 < old_left(puts) < 3
        assert len([t for t in threads() if t.startswith("t")]) == old_left(puts)
        graph.invoke({"messages": [("user", "z")]}, {"configurable": {"thread_id": "fresh"}})
        puts = saver.checkpoint_count("fresh")
        assert old_left(puts) == 0
        assert threads() == ["fresh"]

    async def run() -> list[str]:
        async with AsyncAgentGitSaver.from_conn_string(
            db_path, max_age=timedelta(days=5)
        ) as asaver:
            await chat.compile(checkpointer=asaver).ainvoke(
                {"messages": [("user", "w")]}, {"configurable": {"thread_id": "async"}}
            )
        return threads()

    clock.now = datetime.now(timezone.utc) + timedelta(days=5)
    assert asyncio.run(run()) == ["async"]


def sql_connection(db: str) -> Any:
    import sqlite3

    return sqlite3.connect(db, check_same_thread=False)
