"""``copy_database`` / ``agentgit copy``, and the ``agentgit`` command on ``postgresql://``
URLs: real SQLite files and real PostgreSQL schemas (``tests/pg.py``), no mocks.

A copy is checked three ways: the stored rows of every table are equal on both sides
(ids included), every checkpoint of every thread reads back the same through the savers,
and a run continued on the copy and on the original ends in the same state.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pg
import pytest
from conftest import cfg, checkpoint_id_of, snapshot_view, sql_rows, thread_view
from graphs import build_chat_graph, build_delta_graph, build_subgraph_graph
from langchain_core.messages import HumanMessage
from langgraph.types import Command
from typer.testing import CliRunner

from langgraph_agentgit import (
    AgentGitSaver,
    CopyMismatchError,
    SessionManager,
    TargetNotEmptyError,
)
from langgraph_agentgit.backends import is_postgres_url
from langgraph_agentgit.backends.postgres import sql as postgres_sql
from langgraph_agentgit.backends.sqlite import sql as sqlite_sql
from langgraph_agentgit.cli import app
from langgraph_agentgit.demo import DemoResult, run_demo
from langgraph_agentgit.transfer import TABLES, copy_database, verify_copy

runner = CliRunner()

#: Every column of every table, and what orders the rows where order is stored.
COLUMNS = {
    "agentgit_threads": "pk, thread_id, parent_pk, fork_checkpoint_id, fork_rid, inherits, "
    "created_at, checkpoint_count, stopped_at",
    "agentgit_checkpoints": "rid, thread_pk, ns, checkpoint_id, parent_checkpoint_id, "
    "parent_rid, hidden, run_id, body, metadata, refs, hidden_at",
    "agentgit_writes": "thread_pk, ns, checkpoint_id, task_id, idx, channel, task_path, "
    "blob_id, written_at",
    "agentgit_blobs": "id, digest, kind, deps, data",
    "agentgit_sessions": "id, user_id, name, created_at, updated_at, is_active, metadata, "
    "current_thread_id",
    "agentgit_session_threads": "thread_id, session_id, ordinal, parent_thread_id, "
    "fork_checkpoint_id, name, created_at",
    "agentgit_tags": "session_id, name, checkpoint_id, thread_id, created_at",
    "agentgit_deleted_threads": "thread_id, session_id, deleted_at",
    "agentgit_undo_runs": "id, session_id, source_thread_id, head_checkpoint_id, "
    "base_checkpoint_id, target_checkpoint_id, branch_thread_id, on_error, status, created_at, "
    "finished_at",
    "agentgit_undone_effects": "session_id, effect_id, run_id, thread_id, checkpoint_id, "
    "tool_call_id, tool_name, kind, status, attempts, error, updated_at",
}


def stored_rows(db: str) -> dict[str, Any]:
    """Every row of every agentgit table (sorted), and the insertion order of sessions and
    tags (``rowid`` on SQLite, ``seq`` on PostgreSQL): equal means copied as stored."""
    order = "seq" if is_postgres_url(db) else "rowid"
    rows: dict[str, Any] = {
        table: sorted(sql_rows(db, f"SELECT {columns} FROM {table}"), key=repr)
        for table, columns in COLUMNS.items()
    }
    rows["session order"] = sql_rows(db, f"SELECT id FROM agentgit_sessions ORDER BY {order}")
    rows["tag order"] = sql_rows(db, f"SELECT name FROM agentgit_tags ORDER BY {order}")
    return rows


def thread_ids(db: str) -> list[str]:
    return [
        r[0]
        for r in sql_rows(
            db,
            "SELECT thread_id FROM agentgit_threads WHERE thread_id IS NOT NULL "
            "UNION SELECT thread_id FROM agentgit_session_threads ORDER BY 1",
        )
    ]


def read_back(db: str) -> dict[str, Any]:
    """What the savers read: every thread's checkpoint tuples, each checkpoint again by
    ``get_tuple``, every session with its branches, tags and timeline."""
    with AgentGitSaver.from_conn_string(db) as saver:
        mgr = SessionManager(saver)
        threads = {t: thread_view(saver, t) for t in thread_ids(db)}
        by_id = {
            (t, item["ns"], item["id"]): saver.get_tuple(cfg(t, item["id"], item["ns"]))
            for t, items in threads.items()
            for item in items
        }
        sessions = mgr.list_sessions()
        return {
            "threads": threads,
            "get_tuple": {
                key: (found.checkpoint, found.metadata, found.parent_config, found.pending_writes)
                for key, found in by_id.items()
                if found is not None
            },
            "sessions": sessions,
            "branches": {s.id: mgr.branches(s.id) for s in sessions},
            "tags": {s.id: mgr.tags(s.id) for s in sessions},
        }


def assert_same(source: str, target: str) -> None:
    assert stored_rows(target) == stored_rows(source)
    assert read_back(target) == read_back(source)


@pytest.fixture(scope="module")
def demo_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, DemoResult]:
    """The database ``agentgit demo`` builds (a SQLite file; tests only read it)."""
    path = str(tmp_path_factory.mktemp("demo") / "demo.db")
    with AgentGitSaver.from_conn_string(path) as saver:
        result = run_demo(saver)
    return path, result


@pytest.fixture
def url() -> Iterator[str]:
    with pg.fresh_schema() as fresh:
        yield fresh


@pytest.fixture
def url2() -> Iterator[str]:
    with pg.fresh_schema() as fresh:
        yield fresh


def ask(text: str) -> dict[str, Any]:
    return {"messages": [HumanMessage(content=text, id=f"h-{text}")]}


def run_id(name: str) -> dict[str, Any]:
    return {"metadata": {"run_id": name}}


def build_history(db: str) -> None:
    """A database with everything a copy must carry: a session with a tag, branches, a
    deleted branch and a deleted session (tombstones in ``agentgit_deleted_threads``);
    forks; a thread deleted while a fork still needs its rows (``thread_id`` NULL); runs
    deleted with ``delete_for_runs`` (hidden rows a fork still reads); a pruned thread; a
    subgraph's namespaced checkpoints; an interrupt's pending writes; a DeltaChannel."""
    with AgentGitSaver.from_conn_string(db) as saver:
        mgr = SessionManager(saver)
        chat = build_chat_graph().compile(checkpointer=saver)
        delta = build_delta_graph().compile(checkpointer=saver)
        sub = build_subgraph_graph(with_interrupt=True).compile(checkpointer=saver)

        s = mgr.create_session(user_id="ada", name="support", thread_id="s-main")
        for i in range(3):
            chat.invoke(ask(f"turn {i}"), {**mgr.config(s.id), **run_id(f"s-run-{i}")})
        first = next(t for t in saver.list(cfg("s-main", ns="")) if t.metadata["step"] == 1)
        mgr.tag(s.id, checkpoint_id_of(first.config), "first-answer")
        mgr.rollback(s.id, "first-answer", name="retry", thread_id="s-retry")
        chat.invoke(ask("again"), mgr.config(s.id))
        mgr.branch(s.id, "first-answer", name="doomed", thread_id="s-doomed")
        chat.invoke(ask("doomed"), cfg("s-doomed"))
        mgr.delete_branch(s.id, "s-doomed")
        other = mgr.create_session(user_id="bob", name="gone", thread_id="gone-main")
        chat.invoke(ask("bye"), mgr.config(other.id))
        mgr.delete_session(other.id)

        delta.invoke({"target": 9}, {**cfg("d-src"), **run_id("d-run-1")})
        delta.invoke({"target": 12}, {**cfg("d-src"), **run_id("d-run-2")})
        middle = next(t for t in saver.list(cfg("d-src", ns="")) if t.metadata["step"] == 6)
        saver.fork_thread("d-src", checkpoint_id_of(middle.config), "d-fork")
        delta.invoke({"target": 10}, {**cfg("d-fork"), **run_id("d-run-f")})
        saver.delete_for_runs(["d-run-1"])

        for i in range(3):
            chat.invoke(ask(f"p {i}"), cfg("p-src"))
        head = checkpoint_id_of(next(saver.list(cfg("p-src"), limit=1)).config)
        saver.fork_thread("p-src", head, "p-fork")
        chat.invoke(ask("p fork"), cfg("p-fork"))
        saver.prune(["p-src"], strategy="keep_latest")

        for i in range(2):
            chat.invoke(ask(f"x {i}"), cfg("x-src"))
        head = checkpoint_id_of(next(saver.list(cfg("x-src"), limit=1)).config)
        saver.fork_thread("x-src", head, "x-fork")
        saver.delete_thread("x-src")
        chat.invoke(ask("x fork"), cfg("x-fork"))

        sub.invoke({"log": []}, cfg("sub"))  # stops at the subgraph's interrupt
        saver.copy_thread("sub", "sub-copy")


def continue_runs(db: str) -> dict[str, Any]:
    """Run on from the stored state of every kind of thread; what the graphs then see."""
    with AgentGitSaver.from_conn_string(db) as saver:
        mgr = SessionManager(saver)
        chat = build_chat_graph().compile(checkpointer=saver)
        delta = build_delta_graph().compile(checkpointer=saver)
        sub = build_subgraph_graph(with_interrupt=True).compile(checkpointer=saver)
        (session,) = mgr.list_sessions()
        chat.invoke(ask("later"), mgr.config(session.id))
        mgr.rollback(session.id, "first-answer", name="later-retry", thread_id="s-later")
        chat.invoke(ask("later retry"), mgr.config(session.id))
        delta.invoke({"target": 14}, cfg("d-fork"))
        delta.invoke({"target": 15}, cfg("d-src"))
        chat.invoke(ask("p later"), cfg("p-src"))
        chat.invoke(ask("p fork later"), cfg("p-fork"))
        chat.invoke(ask("x later"), cfg("x-fork"))
        head = checkpoint_id_of(next(saver.list(cfg("x-fork"), limit=1)).config)
        saver.fork_thread("x-fork", head, "x-new")
        chat.invoke(ask("x new"), cfg("x-new"))
        sub.invoke(Command(resume="yes"), cfg("sub"))
        sub.invoke(Command(resume="copy"), cfg("sub-copy"))
        graphs = {"s-retry": chat, "s-later": chat, "s-main": chat, "d-fork": delta}
        graphs |= {"d-src": delta, "p-src": chat, "p-fork": chat, "x-fork": chat}
        graphs |= {"x-new": chat, "sub": sub, "sub-copy": sub}
        return {
            thread: {
                "state": snapshot_view(graph.get_state(cfg(thread))),
                "history": [snapshot_view(s) for s in graph.get_state_history(cfg(thread))],
            }
            for thread, graph in graphs.items()
        } | {"branches": [(b.name, b.checkpoint_count) for b in mgr.branches(session.id)]}


# --- the library ------------------------------------------------------------------------------


def test_the_demo_database_copied_to_postgres_reads_back_identically(
    demo_file: tuple[str, DemoResult], url: str
) -> None:
    source, result = demo_file
    report = copy_database(source, url)
    assert report.verified
    counts = dict(zip(TABLES, sql_rows(source, sqlite_sql.COPY_COUNTS)[0], strict=True))
    assert (report.threads, report.checkpoints, report.writes, report.blobs) == (
        counts["threads"],
        counts["checkpoints"],
        counts["writes"],
        counts["blobs"],
    )
    assert (report.sessions, report.branches, report.tags) == (1, 2, 1)
    assert report.checkpoints > 0 and report.writes > 0 and report.blobs > 0
    assert report.target.startswith("postgresql://") and report.seconds >= report.verify_seconds
    assert_same(source, url)
    with AgentGitSaver.from_conn_string(url) as saver:
        mgr = SessionManager(saver)
        copied = mgr.get_session(result.session_id)
        assert copied is not None and copied.total_checkpoints == 20
        assert mgr.tags(result.session_id) == {"after-lookup": result.rollback_checkpoint_id}


def test_a_copy_with_forks_deletions_and_hidden_rows_runs_on_like_the_original(
    tmp_path: Path, url: str
) -> None:
    source = str(tmp_path / "history.db")
    build_history(source)
    hidden = sql_rows(source, "SELECT count(*) FROM agentgit_checkpoints WHERE hidden <> 0")
    tombstoned = sql_rows(source, "SELECT count(*) FROM agentgit_threads WHERE thread_id IS NULL")
    deleted = sql_rows(source, "SELECT count(*) FROM agentgit_deleted_threads")
    namespaced = sql_rows(source, "SELECT count(*) FROM agentgit_checkpoints WHERE ns <> ''")
    assert hidden[0][0] and tombstoned[0][0] and deleted[0][0] >= 2 and namespaced[0][0]

    report = copy_database(source, url)
    assert report.deleted_threads == deleted[0][0]
    assert_same(source, url)
    # New rows on the copy take ids past the copied ones (the sequences were moved).
    assert continue_runs(url) == continue_runs(source)


def test_a_1000_turn_thread_copied_to_postgres_reads_back_identically(
    tmp_path: Path, url: str
) -> None:
    """A long thread (1,000 turns, 3,000 checkpoints, message lists up to 2,000 long,
    stored as delta chains and list indexes): every checkpoint reads back with the same
    messages, metadata, parent and pending writes, compared here one checkpoint at a time
    as both sides stream it, independently of ``verify_copy``; then both sides resume
    alike."""
    turns = 1000
    source = str(tmp_path / "long.db")
    with AgentGitSaver.from_conn_string(source) as saver:
        graph = build_chat_graph().compile(checkpointer=saver)
        for turn in range(turns):
            graph.invoke(ask(f"turn {turn}"), cfg("long"))
    report = copy_database(source, url)
    assert report.verified and report.checkpoints == 3 * turns

    def view(found: Any) -> tuple[Any, ...]:
        messages = found.checkpoint["channel_values"].get("messages", [])
        return (
            found.config["configurable"]["checkpoint_id"],
            found.metadata,
            found.parent_config,
            [(m.type, m.id, m.content) for m in messages],
            {k: v for k, v in found.checkpoint["channel_versions"].items()},
            [(task, channel, repr(value)) for task, channel, value in found.pending_writes or []],
        )

    compared = 0
    with (
        AgentGitSaver.from_conn_string(source) as original,
        AgentGitSaver.from_conn_string(url) as copied,
    ):
        for expected, got in zip(original.list(cfg("long")), copied.list(cfg("long")), strict=True):
            assert view(got) == view(expected)
            compared += 1
        assert compared == 3 * turns
        head = original.get_tuple(cfg("long"))
        assert head is not None and len(head.checkpoint["channel_values"]["messages"]) == 2 * turns
        results = []
        for saver in (original, copied):
            graph = build_chat_graph().compile(checkpointer=saver)
            results.append(graph.invoke(ask("one more"), cfg("long"))["messages"][-3:])
        assert results[0] == results[1]


def test_a_target_with_agentgit_data_is_refused_untouched(
    demo_file: tuple[str, DemoResult], tmp_path: Path, url: str
) -> None:
    source = str(tmp_path / "history.db")
    build_history(source)
    copy_database(demo_file[0], url)
    before = stored_rows(url)
    with pytest.raises(TargetNotEmptyError, match="already holds agentgit data") as refused:
        copy_database(source, url)
    assert "agentgit_threads" in str(refused.value) and "postgresql://" in str(refused.value)
    assert stored_rows(url) == before

    sqlite_target = tmp_path / "full.db"
    shutil.copy(demo_file[0], sqlite_target)
    before = stored_rows(str(sqlite_target))
    with pytest.raises(TargetNotEmptyError, match=str(sqlite_target)):
        copy_database(source, str(sqlite_target))
    assert stored_rows(str(sqlite_target)) == before
    with pytest.raises(TargetNotEmptyError):  # a database copied onto itself
        copy_database(source, source)


def test_a_source_or_target_that_is_not_an_agentgit_database_is_refused(
    demo_file: tuple[str, DemoResult], tmp_path: Path, url: str
) -> None:
    missing = tmp_path / "missing.db"
    with pytest.raises(FileNotFoundError, match="no database at"):
        copy_database(str(missing), str(tmp_path / "out.db"))
    assert not missing.exists() and not (tmp_path / "out.db").exists()
    with pytest.raises(ValueError, match="is not an agentgit database"):
        copy_database(url, str(tmp_path / "out.db"))  # an empty schema
    assert sql_rows(url, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()") == [
        (0,)
    ]
    other = tmp_path / "people.db"
    with closing(sqlite3.connect(other)) as conn, conn:
        conn.execute("CREATE TABLE people (name TEXT)")
    with closing(sqlite3.connect(other)) as conn:
        dump = list(conn.iterdump())
    with pytest.raises(ValueError, match="is not an agentgit database"):
        copy_database(demo_file[0], str(other))
    with closing(sqlite3.connect(other)) as conn:
        assert list(conn.iterdump()) == dump
    nowhere = pg.with_schema(pg.URL, "agentgit_test_no_such_schema")
    with pytest.raises(ValueError, match="no existing schema"):
        copy_database(demo_file[0], nowhere)


def test_round_trip_sqlite_postgres_postgres_sqlite(tmp_path: Path, url: str, url2: str) -> None:
    source = str(tmp_path / "history.db")
    build_history(source)
    back = str(tmp_path / "back.db")
    with AgentGitSaver.from_conn_string(url2):
        pass  # an agentgit schema without data is a valid target
    copy_database(source, url)
    copy_database(url, url2)
    report = copy_database(url2, back)
    assert report.verified and report.source.startswith("postgresql://")
    assert stored_rows(back) == stored_rows(source)
    assert read_back(back) == read_back(source)
    assert continue_runs(back) == continue_runs(source)


def test_verify_finds_a_difference(demo_file: tuple[str, DemoResult], url: str) -> None:
    report = copy_database(demo_file[0], url, verify=False)
    assert not report.verified and report.verify_seconds == 0
    assert verify_copy(demo_file[0], url) >= 0
    rid = sql_rows(url, "SELECT max(rid) FROM agentgit_checkpoints WHERE hidden = 0")[0][0]
    import psycopg

    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE agentgit_checkpoints SET metadata = %s WHERE rid = %s",
            ('{"source": "update", "step": 99}', rid),
        )
    with pytest.raises(CopyMismatchError, match="metadata"):
        verify_copy(demo_file[0], url)


def test_both_engines_define_the_copy_statements() -> None:
    names = {n for n in vars(sqlite_sql) if n.startswith("COPY_")} | {"stream_rows"}
    assert names == {n for n in vars(postgres_sql) if n.startswith("COPY_")} | {"stream_rows"}
    assert callable(postgres_sql.stream_rows) and callable(sqlite_sql.stream_rows)
    for table in TABLES:
        assert f"COPY_SELECT_{table.upper()}" in names and f"COPY_INSERT_{table.upper()}" in names


# --- the command --------------------------------------------------------------------------------


def invoke(*args: str, env: dict[str, str | None] | None = None) -> Any:
    return runner.invoke(app, list(args), env={"COLUMNS": "200", **(env or {})})


def clean_error(result: Any, exit_code: int, *fragments: str) -> None:
    assert result.exit_code == exit_code, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


def test_agentgit_copy_then_every_read_command_on_the_url_answers_as_on_the_file(
    demo_file: tuple[str, DemoResult], url: str
) -> None:
    source, result = demo_file
    copied = invoke("copy", source, url)
    assert copied.exit_code == 0, copied.output
    assert "Copied" in copied.stdout and "Verified" in copied.stdout
    session = result.session_id[:8]
    for command in (
        ["sessions"],
        ["show", session],
        ["log", session],
        ["log", session, "--branch", "main"],
        ["tree", session],
        ["diff", result.main_head, result.branch_head],
    ):
        on_file = invoke(*command, "--json", "--db", source)
        on_url = invoke(*command, "--json", "--db", url)
        assert on_file.exit_code == on_url.exit_code == 0, on_url.output
        assert json.loads(on_url.stdout) == json.loads(on_file.stdout), command
        assert invoke(*command, "--db", url).exit_code == 0, command
    by_env = invoke("sessions", "--json", env={"AGENTGIT_DB": url})
    by_root = invoke("--db", url, "tree", session)
    assert by_env.exit_code == by_root.exit_code == 0, by_env.output + by_root.output
    assert json.loads(by_env.stdout)[0]["id"] == result.session_id
    assert "branch-1" in by_root.stdout

    rolled = invoke("rollback", session, "after-lookup", "--db", url, "--json")
    assert rolled.exit_code == 0, rolled.output
    with AgentGitSaver.from_conn_string(url) as saver:
        assert len(SessionManager(saver).branches(result.session_id)) == 3

    again = invoke("copy", source, url)
    clean_error(again, 2, "already holds agentgit data")
    json_copy = invoke("copy", url, str(Path(source).parent / "back.db"), "--json", "--no-verify")
    assert json_copy.exit_code == 0, json_copy.output
    assert json.loads(json_copy.stdout)["verified"] is False


def test_a_url_without_agentgit_tables_or_server_is_one_clean_line(url: str) -> None:
    for command in (["sessions"], ["log", "x"], ["tree", "x"], ["show", "x"]):
        clean_error(invoke(*command, "--db", url), 2, "is not an agentgit database", "schema")
    assert sql_rows(url, "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()") == [
        (0,)
    ]
    secret = "postgresql://bob:hunter2@127.0.0.1:1/test"
    down = invoke("sessions", "--db", secret)
    clean_error(down, 1, "cannot connect to postgresql://bob:***@127.0.0.1:1/test")
    assert "hunter2" not in down.output
    clean_error(invoke("copy", secret, url), 1, "bob:***")
    clean_error(invoke("check", "--db", url), 1, "not available on PostgreSQL")
    nowhere = pg.with_schema(pg.URL, "agentgit_test_no_such_schema")
    clean_error(invoke("demo", "--db", nowhere), 2, "no existing schema")
    clean_error(invoke("sessions", "--db", nowhere), 2, "is not an agentgit database")


def test_demo_on_a_url_and_fresh_deletes_only_earlier_demo_sessions(url: str) -> None:
    first = invoke("demo", "--db", url)
    assert first.exit_code == 0, first.output
    assert "Database: postgresql://" in first.stdout and "--db 'postgresql://" in first.stdout
    with AgentGitSaver.from_conn_string(url) as saver:
        SessionManager(saver).create_session(name="not a demo")
    fresh = invoke("demo", "--db", url, "--fresh")
    assert fresh.exit_code == 0, fresh.output
    assert "deleted 1 session" in fresh.stdout
    names = sorted(s["name"] for s in json.loads(invoke("sessions", "--json", "--db", url).stdout))
    assert names == ["not a demo", "order support (agentgit demo)"]
