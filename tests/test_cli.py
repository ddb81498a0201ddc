"""The ``agentgit`` command: every command, ``--json``, id prefixes and every error path.

Most tests drive the Typer app in-process with ``CliRunner`` against a copy of a database
that :func:`langgraph_agentgit.demo.run_demo` filled; a few run the installed console
script (and ``python -m langgraph_agentgit``) as real subprocesses.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from langgraph_agentgit import AgentGitSaver, SessionManager
from langgraph_agentgit.agents import create_agent_graph
from langgraph_agentgit.cli import abbreviations, app, resolve_prefix
from langgraph_agentgit.demo import ROLLBACK_TAG, DemoResult, run_demo
from langgraph_agentgit.views import SCHEMA_VERSION, diff_view

runner = CliRunner()


@dataclass
class DemoDb:
    """A database left by the demo scenario, plus what the scenario reported."""

    path: Path
    result: DemoResult

    def run(self, *args: str, env: dict[str, str] | None = None) -> Any:
        """Invoke the CLI in-process with ``--db`` pointing at this database."""
        return runner.invoke(app, [*args, "--db", str(self.path)], env=env)

    def json(self, *args: str) -> Any:
        result = self.run(*args, "--json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    @contextmanager
    def open(self) -> Iterator[tuple[AgentGitSaver, SessionManager]]:
        """The database through the library, to set up or check what the CLI did."""
        with AgentGitSaver.from_conn_string(str(self.path)) as saver:
            yield saver, SessionManager(saver)


def _checkpoint_ids(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT DISTINCT checkpoint_id FROM agentgit_checkpoints WHERE ns = ''"
        ).fetchall()
    return sorted(r[0] for r in rows)


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, DemoResult]:
    path = tmp_path_factory.mktemp("template") / "demo.db"
    with AgentGitSaver.from_conn_string(str(path)) as saver:
        result = run_demo(saver)
    return path, result


@pytest.fixture
def demo_db(demo_template: tuple[Path, DemoResult], tmp_path: Path) -> DemoDb:
    """A private copy of the demo database (tests may change it)."""
    template, result = demo_template
    path = tmp_path / "demo.db"
    shutil.copy(template, path)
    for suffix in ("-wal", "-shm"):
        if Path(f"{template}{suffix}").exists():
            shutil.copy(f"{template}{suffix}", f"{path}{suffix}")
    return DemoDb(path=path, result=result)


def _assert_clean_error(result: Any, exit_code: int, *fragments: str) -> None:
    assert result.exit_code == exit_code, result.output
    assert result.stdout == ""
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    assert result.stderr.startswith("error: ")
    assert "Traceback" not in result.output


# --- the pure helpers ------------------------------------------------------------------------


def test_resolve_prefix_exact_unique_ambiguous_unknown() -> None:
    ids = ["abc123", "abd456", "abc"]
    assert resolve_prefix("abc", ids, "session") == "abc"  # an exact id wins
    assert resolve_prefix("abd", ids, "session") == "abd456"
    with pytest.raises(Exception, match=r"ambiguous session prefix 'ab': 3 match"):
        resolve_prefix("ab", ids, "session")
    with pytest.raises(Exception, match="unknown session 'zz'"):
        resolve_prefix("zz", ids, "session")


def test_abbreviations_are_one_length_and_unique() -> None:
    ids = ["1f0aaaaa-1111", "1f0aaaaa-1122", "1f0bbbbb-0000"]
    short = abbreviations(ids, minimum=4)
    assert len(set(short.values())) == 3
    assert {len(v) for v in short.values()} == {len("1f0aaaaa-11") + 1}
    assert abbreviations(["abcdefghij"], minimum=8) == {"abcdefghij": "abcdefgh"}


# --- the database ------------------------------------------------------------------------------


def test_missing_database_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    for command in (["sessions"], ["show", "x"], ["log", "x"], ["tree", "x"], ["diff", "a", "b"]):
        result = runner.invoke(app, [*command, "--db", str(missing)])
        _assert_clean_error(result, 2, f"no database at {missing}")
    assert not missing.exists()


def test_database_from_env_var_root_option_and_default(
    demo_db: DemoDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_env = runner.invoke(app, ["sessions", "--json"], env={"AGENTGIT_DB": str(demo_db.path)})
    assert by_env.exit_code == 0, by_env.output
    assert json.loads(by_env.stdout)[0]["id"] == demo_db.result.session_id

    before = runner.invoke(app, ["--db", str(demo_db.path), "sessions", "--json"])
    assert before.exit_code == 0 and json.loads(before.stdout) == json.loads(by_env.stdout)

    # --db after the command wins over $AGENTGIT_DB.
    override = runner.invoke(
        app,
        ["sessions", "--db", str(tmp_path / "other.db")],
        env={"AGENTGIT_DB": str(demo_db.path)},
    )
    _assert_clean_error(override, 2, "other.db")

    monkeypatch.chdir(tmp_path)
    default = runner.invoke(app, ["sessions"], env={"AGENTGIT_DB": None})
    _assert_clean_error(default, 2, "no database at agentgit.db")
    assert not (tmp_path / "agentgit.db").exists()


def test_a_file_that_is_not_an_agentgit_database_is_refused_untouched(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a database " * 100)
    _assert_clean_error(
        runner.invoke(app, ["sessions", "--db", str(text)]), 2, "is not an agentgit database"
    )
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE people (name TEXT)")
    conn.close()
    _assert_clean_error(
        runner.invoke(app, ["sessions", "--db", str(other)]), 2, "no agentgit tables"
    )
    with sqlite3.connect(other) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    conn.close()
    assert tables == ["people"]
    _assert_clean_error(runner.invoke(app, ["sessions", "--db", str(tmp_path)]), 2, "not a file")


def test_a_database_from_a_newer_version_fails_with_status_1(demo_db: DemoDb) -> None:
    with sqlite3.connect(demo_db.path) as conn:
        conn.execute("UPDATE agentgit_schema SET version = 999")
    conn.close()
    _assert_clean_error(demo_db.run("sessions"), 1, "newer than this langgraph-agentgit")


# --- listings ------------------------------------------------------------------------------------


def test_sessions_lists_with_stable_json_keys(demo_db: DemoDb) -> None:
    rows = demo_db.json("sessions")
    assert len(rows) == 1
    row = rows[0]
    assert set(row) == {
        "id",
        "user_id",
        "name",
        "created_at",
        "updated_at",
        "is_active",
        "metadata",
        "current_thread_id",
        "thread_ids",
        "branch_count",
        "total_checkpoints",
        "last_message",
        "ended_at",
        "end_reason",
        "usage",
    }
    result = demo_db.result
    assert row["id"] == result.session_id
    assert row["user_id"] == "demo-user"
    assert row["current_thread_id"] == result.branch_thread_id
    assert row["thread_ids"] == [result.main_thread_id, result.branch_thread_id]
    assert row["branch_count"] == 1  # the rollback branch; the first thread is not a branch
    assert row["total_checkpoints"] == 20  # main: 3 turns x 5, branch: 1 turn x 5
    assert row["last_message"].startswith("ai: Here is what I found: Order B-2002")

    table = demo_db.run("sessions")
    assert table.exit_code == 0, table.output
    assert result.session_id[:8] in table.stdout
    assert "demo-user" in table.stdout


def test_sessions_filters_by_user_and_activity(demo_db: DemoDb) -> None:
    with demo_db.open() as (_, mgr):
        mgr.create_session(user_id="someone-else", name="second")
        mgr.deactivate(demo_db.result.session_id)
    assert [r["user_id"] for r in demo_db.json("sessions", "--user", "demo-user")] == ["demo-user"]
    assert [r["name"] for r in demo_db.json("sessions", "--active")] == ["second"]
    assert len(demo_db.json("sessions")) == 2
    empty = demo_db.run("sessions", "--user", "nobody")
    assert empty.exit_code == 0 and "No sessions" in empty.stdout


def test_show_session_by_prefix(demo_db: DemoDb) -> None:
    result = demo_db.result
    data = demo_db.json("show", result.session_id[:8])
    assert data["id"] == result.session_id
    assert data["tags"] == {ROLLBACK_TAG: result.rollback_checkpoint_id}
    branches = {b["thread_id"]: b for b in data["branches"]}
    assert set(branches) == {result.main_thread_id, result.branch_thread_id}
    assert branches[result.branch_thread_id]["fork_checkpoint_id"] == result.rollback_checkpoint_id
    assert branches[result.branch_thread_id]["parent_thread_id"] == result.main_thread_id
    assert branches[result.branch_thread_id]["is_current"] is True
    assert branches[result.main_thread_id]["checkpoint_count"] == 15

    text = demo_db.run("show", result.session_id[:8])
    assert text.exit_code == 0, text.output
    assert result.session_id in text.stdout and ROLLBACK_TAG in text.stdout


def test_log_is_newest_first_with_nodes_and_sources(demo_db: DemoDb) -> None:
    result = demo_db.result
    rows = demo_db.json("log", result.session_id)
    assert rows[0]["checkpoint_id"] == result.branch_head
    steps = [r["step"] for r in rows]
    assert steps == sorted(steps, reverse=True) and steps[-1] == -1
    assert len(rows) == 10  # the first turn (inherited) and the branch's own turn
    assert set(rows[0]) == {
        "checkpoint_id",
        "parent_checkpoint_id",
        "thread_id",
        "step",
        "source",
        "nodes",
        "created_at",
        "tags",
        "message",
    }
    assert [r["thread_id"] for r in rows[:5]] == [result.branch_thread_id] * 5
    assert [r["thread_id"] for r in rows[5:]] == [result.main_thread_id] * 5
    assert [r["nodes"] for r in rows[:5]] == [["agent"], ["tools"], ["agent"], ["__start__"], []]
    assert [r["source"] for r in rows[:5]] == ["loop"] * 4 + ["input"]
    assert rows[4]["message"] == "user: Sorry, I meant order B-2002. Where is that one?"
    assert rows[1]["message"].startswith("tool: Order B-2002")
    tagged = [r for r in rows if r["tags"]]
    assert [(r["checkpoint_id"], r["tags"]) for r in tagged] == [
        (result.rollback_checkpoint_id, [ROLLBACK_TAG])
    ]
    for newer, older in pairwise(rows):
        assert newer["parent_checkpoint_id"] == older["checkpoint_id"]

    text = demo_db.run("log", result.session_id[:6])
    assert text.exit_code == 0, text.output
    assert "lookup_order" in text.stdout and ROLLBACK_TAG in text.stdout


def test_log_of_another_branch_by_prefix_or_name_and_limit(demo_db: DemoDb) -> None:
    result = demo_db.result
    main = demo_db.json("log", result.session_id, "--branch", result.main_thread_id[:10])
    assert main[0]["checkpoint_id"] == result.main_head
    assert len(main) == 15
    assert len(demo_db.json("log", result.session_id, "-b", result.main_thread_id, "-n", "3")) == 3
    with demo_db.open() as (_, mgr):
        named = mgr.branch(result.session_id, result.main_head, name="experiment")
    by_name = demo_db.json("log", result.session_id, "--branch", "experiment")
    assert by_name[0]["checkpoint_id"] == result.main_head
    assert by_name[0]["thread_id"] == result.main_thread_id  # inherited, not its own
    assert named.thread_id != result.main_thread_id


def test_tree_shows_both_branches_and_the_fork(demo_db: DemoDb) -> None:
    result = demo_db.result
    text = demo_db.run("tree", result.session_id[:8])
    assert text.exit_code == 0, text.output
    out = text.stdout
    assert result.main_thread_id[:8] in out and result.branch_thread_id[:8] in out
    assert "(current)" in out and f"[{ROLLBACK_TAG}]" in out
    # The branch is drawn under the checkpoint it was forked at, before main's later turns.
    assert out.index(f"[{ROLLBACK_TAG}]") < out.index("B-2002") < out.index("3 * 9.99 = 29.97")

    data = demo_db.json("tree", result.session_id)
    assert data["session_id"] == result.session_id
    assert data["current_thread_id"] == result.branch_thread_id
    own = {b["thread_id"]: [c["checkpoint_id"] for c in b["checkpoints"]] for b in data["branches"]}
    assert len(own[result.main_thread_id]) == 15 and len(own[result.branch_thread_id]) == 5
    assert own[result.branch_thread_id][-1] == result.branch_head  # oldest first
    assert result.rollback_checkpoint_id in own[result.main_thread_id]
    assert result.rollback_checkpoint_id not in own[result.branch_thread_id]


def test_diff_of_two_heads_by_prefix(demo_db: DemoDb) -> None:
    result = demo_db.result
    ids = _checkpoint_ids(demo_db.path)
    short = abbreviations(ids)
    a, b = short[result.main_head], short[result.branch_head]
    data = demo_db.json("diff", a, b)
    with demo_db.open() as (_, mgr):
        expected = mgr.diff(result.main_head, result.branch_head)
    assert data["schema_version"] == SCHEMA_VERSION
    assert data == json.loads(json.dumps(diff_view(expected), default=str))
    text = demo_db.run("diff", a, b)
    assert text.exit_code == 0, text.output
    assert text.stdout.strip() == str(expected).strip()
    # The refund the rollback undid is on main's side of the fork: listed, with when.
    [undone] = data["undone_effects"]
    assert (undone["tool_name"], undone["tool_call_id"]) == ("refund_order", "call_5_0")
    assert undone["thread_id"] == result.main_thread_id and undone["undone_at"]
    assert "undone effects: 1" in text.stdout


def test_demo_rollback_undid_the_refund_and_kept_the_lookup(
    demo_template: tuple[Path, DemoResult],
) -> None:
    _, result = demo_template
    assert result.shop is not None and result.undo is not None
    # The handler really ran: the refund the agent issued is cancelled in the shop.
    assert result.shop.refunds == {"R-1": {"order_id": "A-1001", "status": "cancelled"}}
    assert [o.effect.tool_name for o in result.undo.undone] == ["refund_order"]
    assert [(o.effect.tool_name, o.reason) for o in result.undo.skipped] == [
        ("calculator", "no_handler")
    ]
    assert [p.effect.tool_name for p in result.kept] == ["lookup_order"]
    assert result.undo.branch_thread_id == result.branch_thread_id


def test_diff_accepts_a_session_tag(demo_db: DemoDb) -> None:
    result = demo_db.result
    data = demo_db.json("diff", ROLLBACK_TAG, result.branch_head, "--session", result.session_id)
    with demo_db.open() as (_, mgr):
        expected = mgr.diff(result.rollback_checkpoint_id, result.branch_head)
    assert data == json.loads(json.dumps(diff_view(expected), default=str))
    without = demo_db.run("diff", ROLLBACK_TAG, result.branch_head)
    _assert_clean_error(without, 2, f"unknown checkpoint '{ROLLBACK_TAG}'")


def test_diff_with_a_session_looks_the_checkpoints_up_in_it(demo_db: DemoDb) -> None:
    """--session is passed on to the lookup: a checkpoint the session's branch inherits
    from a deleted branch is still found through the session."""
    result = demo_db.result
    with demo_db.open() as (_, mgr):
        mgr.delete_branch(result.session_id, result.main_thread_id)
        expected = mgr.diff(ROLLBACK_TAG, result.branch_head, session_id=result.session_id)
    assert expected.a.thread_id == result.branch_thread_id
    data = demo_db.json("diff", ROLLBACK_TAG, result.branch_head, "--session", result.session_id)
    assert data == json.loads(json.dumps(diff_view(expected), default=str))


# --- changes ---------------------------------------------------------------------------------


def test_rollback_by_tag_makes_a_new_current_branch(demo_db: DemoDb) -> None:
    result = demo_db.result
    data = demo_db.json("rollback", result.session_id[:8], ROLLBACK_TAG, "--name", "retry")
    assert data["fork_checkpoint_id"] == result.rollback_checkpoint_id
    assert data["name"] == "retry"
    assert data["is_current"] is True
    with demo_db.open() as (_, mgr):
        session = mgr.get_session(result.session_id)
        assert session is not None
        assert session.current_thread_id == data["thread_id"]
        assert session.branch_count == 2
        # Nothing was lost: both earlier heads are still where they were.
        assert (
            mgr.checkpoints(session.id, thread_id=result.main_thread_id)[0].checkpoint["id"]
            == result.main_head
        )


def test_rollback_by_checkpoint_prefix_prints_the_new_branch(demo_db: DemoDb) -> None:
    result = demo_db.result
    prefix = abbreviations(_checkpoint_ids(demo_db.path))[result.main_head]
    text = demo_db.run("rollback", result.session_id, prefix)
    assert text.exit_code == 0, text.output
    assert "Rolled back session" in text.stdout and "is current" in text.stdout
    with demo_db.open() as (_, mgr):
        session = mgr.get_session(result.session_id)
        assert session is not None
        current = mgr.branches(session.id)[-1]
        assert current.thread_id == session.current_thread_id
        assert current.fork_checkpoint_id == result.main_head
        assert current.thread_id in text.stdout


def test_branch_keeps_the_current_branch(demo_db: DemoDb) -> None:
    result = demo_db.result
    data = demo_db.json("branch", result.session_id, result.main_head, "--name", "what-if")
    assert data["name"] == "what-if"
    assert data["fork_checkpoint_id"] == result.main_head
    assert data["is_current"] is False
    text = demo_db.run("branch", result.session_id, ROLLBACK_TAG)
    assert text.exit_code == 0, text.output
    assert "current branch is still" in text.stdout
    with demo_db.open() as (_, mgr):
        session = mgr.get_session(result.session_id)
        assert session is not None and session.current_thread_id == result.branch_thread_id
        assert session.branch_count == 3


def test_checkout_by_thread_prefix_and_by_name(demo_db: DemoDb) -> None:
    result = demo_db.result
    data = demo_db.json("checkout", result.session_id, result.main_thread_id[:8])
    assert data["thread_id"] == result.main_thread_id and data["is_current"] is True
    assert demo_db.json("show", result.session_id)["current_thread_id"] == result.main_thread_id
    demo_db.json("branch", result.session_id, result.main_head, "--name", "side")
    text = demo_db.run("checkout", result.session_id, "side")
    assert text.exit_code == 0, text.output
    assert "is now on branch" in text.stdout
    current = demo_db.json("show", result.session_id)["current_thread_id"]
    side = [b for b in demo_db.json("show", result.session_id)["branches"] if b["name"] == "side"]
    assert current == side[0]["thread_id"]


def test_tag_then_rollback_to_it(demo_db: DemoDb) -> None:
    result = demo_db.result
    prefix = abbreviations(_checkpoint_ids(demo_db.path))[result.main_head]
    data = demo_db.json("tag", result.session_id, prefix, "main-end")
    assert data == {
        "session_id": result.session_id,
        "tag": "main-end",
        "checkpoint_id": result.main_head,
    }
    assert demo_db.json("show", result.session_id)["tags"]["main-end"] == result.main_head
    back = demo_db.json("rollback", result.session_id, "main-end")
    assert back["fork_checkpoint_id"] == result.main_head
    duplicate = demo_db.run("tag", result.session_id, result.branch_head, "main-end")
    _assert_clean_error(duplicate, 2, "main-end")


# --- error paths ---------------------------------------------------------------------------------


def test_unknown_session_prefix(demo_db: DemoDb) -> None:
    for command in ("show", "log", "tree"):
        _assert_clean_error(demo_db.run(command, "zzzz"), 2, "unknown session 'zzzz'")
    _assert_clean_error(demo_db.run("rollback", "zzzz", "x"), 2, "unknown session")


def test_ambiguous_session_prefix(demo_db: DemoDb) -> None:
    first_chars: dict[str, str] = {}
    shared = None
    with demo_db.open() as (_, mgr):
        first_chars[demo_db.result.session_id[0]] = demo_db.result.session_id
        # Pigeonhole: ids drawn from a finite alphabet soon share a first character.
        for _ in range(200):
            session = mgr.create_session(name="filler")
            if session.id[0] in first_chars:
                shared = session.id[0]
                break
            first_chars[session.id[0]] = session.id
    assert shared is not None
    result = demo_db.run("show", shared)
    _assert_clean_error(result, 2, f"ambiguous session prefix '{shared}'", "type more characters")


def test_unknown_and_ambiguous_checkpoint(demo_db: DemoDb) -> None:
    result = demo_db.result
    sid = result.session_id
    _assert_clean_error(demo_db.run("rollback", sid, "ffffffff"), 2, "unknown checkpoint")
    # Checkpoint ids start with a timestamp: ids written together share a long prefix.
    ids = _checkpoint_ids(demo_db.path)
    common = ids[0][
        : next(i for i, (x, y) in enumerate(zip(ids[0], ids[-1], strict=True)) if x != y)
    ]
    assert len(common) >= 8
    _assert_clean_error(
        demo_db.run("rollback", sid, common), 2, f"ambiguous checkpoint prefix '{common}'"
    )
    _assert_clean_error(demo_db.run("diff", common, result.main_head), 2, "ambiguous checkpoint")
    _assert_clean_error(demo_db.run("tag", sid, "nope-not-a-tag", "x"), 2, "unknown checkpoint")
    with sqlite3.connect(demo_db.path) as conn:
        threads_before = conn.execute("SELECT count(*) FROM agentgit_threads").fetchone()
    conn.close()
    _assert_clean_error(demo_db.run("branch", sid, "ffff"), 2, "unknown checkpoint")
    with sqlite3.connect(demo_db.path) as conn:
        assert conn.execute("SELECT count(*) FROM agentgit_threads").fetchone() == threads_before
    conn.close()


def test_a_checkpoint_of_another_session_is_a_bad_checkpoint(demo_db: DemoDb) -> None:
    with demo_db.open() as (saver, mgr):
        other = mgr.create_session(name="other")
        graph = create_agent_graph(checkpointer=saver)
        graph.invoke({"messages": [("user", "hi")]}, mgr.config(other.id))
        foreign = mgr.checkpoints(other.id)[0].checkpoint["id"]
    result = demo_db.run("rollback", demo_db.result.session_id, foreign)
    _assert_clean_error(result, 2, foreign)
    assert len(demo_db.json("show", demo_db.result.session_id)["branches"]) == 2  # unchanged


def test_unknown_or_ambiguous_thread(demo_db: DemoDb) -> None:
    sid = demo_db.result.session_id
    _assert_clean_error(
        demo_db.run("checkout", sid, "no-such-thread"), 2, "unknown branch or thread"
    )
    _assert_clean_error(demo_db.run("log", sid, "--branch", "zz"), 2, "unknown branch or thread")
    seen = {demo_db.result.main_thread_id[0], demo_db.result.branch_thread_id[0]}
    shared = None
    if len(seen) == 1:
        shared = seen.pop()
    with demo_db.open() as (_, mgr):
        while shared is None and len(seen) < 200:  # pigeonhole, as for sessions
            first = mgr.branch(sid, demo_db.result.main_head).thread_id[0]
            if first in seen:
                shared = first
            seen.add(first)
    assert shared is not None
    _assert_clean_error(
        demo_db.run("checkout", sid, shared),
        2,
        f"ambiguous branch or thread of session {sid} prefix",
    )


def test_bad_usage_exits_2_without_traceback(demo_db: DemoDb) -> None:
    missing_arg = demo_db.run("rollback", demo_db.result.session_id)
    assert missing_arg.exit_code == 2
    assert "Traceback" not in missing_arg.output
    bad_limit = demo_db.run("log", demo_db.result.session_id, "-n", "0")
    assert bad_limit.exit_code == 2
    no_command = runner.invoke(app, [])
    assert no_command.exit_code in (0, 2) and "demo" in no_command.output
    # Values the library refuses are usage errors too, not "unexpected" failures (exit 1).
    for args, said in (
        (["--lock-timeout", "inf", "sessions", "--db", str(demo_db.path)], "finite"),
        (
            ["end", demo_db.result.session_id, "--reason", "r" * 1001, "--db", str(demo_db.path)],
            "1000",
        ),
    ):
        refused = runner.invoke(app, args)
        assert refused.exit_code == 2 and said in refused.output, refused.output
        assert "Traceback" not in refused.output and "unexpected" not in refused.output


# --- demo -----------------------------------------------------------------------------------------


def test_demo_creates_a_database_and_suggests_commands(tmp_path: Path) -> None:
    path = tmp_path / "fresh" / "demo.db"
    path.parent.mkdir()
    result = runner.invoke(app, ["demo", "--db", str(path)])
    assert result.exit_code == 0, result.output
    out = result.stdout
    for fragment in (
        "Branch timeline",
        "branch_count = 1",
        "total_checkpoints = 20",
        "Diff of the two heads",
        "Try next",
        f"agentgit --db {path} tree",
        "lookup_order('A-1001')",
        "lookup_order('B-2002')",
        "undo  refund_order (call call_5_0): undone",
        "undo  calculator (call call_5_1): skipped (no_handler)",
        "kept  lookup_order (call call_1_0): before the fork",
        "Refunds in the shop now: R-1 A-1001 cancelled",
        "undone effects: 1",
        "! refund_order (call call_5_0) undone ",
    ):
        assert fragment in out, fragment
    sessions = json.loads(runner.invoke(app, ["sessions", "--json", "--db", str(path)]).stdout)
    assert len(sessions) == 1

    again = runner.invoke(app, ["demo", "--db", str(path)])
    assert again.exit_code == 0, again.output
    assert (
        len(json.loads(runner.invoke(app, ["sessions", "--json", "--db", str(path)]).stdout)) == 2
    )

    fresh = runner.invoke(app, ["demo", "--db", str(path), "--fresh"])
    assert fresh.exit_code == 0, fresh.output
    assert (
        len(json.loads(runner.invoke(app, ["sessions", "--json", "--db", str(path)]).stdout)) == 1
    )


def test_demo_refuses_a_file_that_is_not_an_agentgit_database(tmp_path: Path) -> None:
    path = tmp_path / "precious.txt"
    path.write_text("do not touch")
    _assert_clean_error(
        runner.invoke(app, ["demo", "--db", str(path)]), 2, "is not an agentgit database"
    )
    assert path.read_text() == "do not touch"


# --- the real console script ----------------------------------------------------------------------


def _console_script() -> str:
    found = shutil.which("agentgit", path=str(Path(sys.executable).parent))
    assert found is not None, "the agentgit console script is not installed in this venv"
    return found


def test_console_script_runs_commands_and_reports_errors(demo_db: DemoDb, tmp_path: Path) -> None:
    script = _console_script()
    env = {**os.environ, "AGENTGIT_DB": str(demo_db.path), "COLUMNS": "120"}
    listed = subprocess.run(
        [script, "sessions", "--json"], capture_output=True, text=True, env=env, timeout=120
    )
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)[0]["id"] == demo_db.result.session_id

    tree = subprocess.run(
        [script, "tree", demo_db.result.session_id[:8]],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert tree.returncode == 0, tree.stderr
    assert ROLLBACK_TAG in tree.stdout

    missing = tmp_path / "missing.db"
    failed = subprocess.run(
        [script, "log", "abc", "--db", str(missing)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert failed.returncode == 2
    assert failed.stdout == ""
    assert failed.stderr.startswith(f"error: no database at {missing}")
    assert "Traceback" not in failed.stderr
    assert not missing.exists()


def test_python_dash_m_is_the_same_command(demo_db: DemoDb) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "langgraph_agentgit", "show", demo_db.result.session_id, "--json"],
        capture_output=True,
        text=True,
        env={**os.environ, "AGENTGIT_DB": str(demo_db.path)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["id"] == demo_db.result.session_id


def test_tree_and_log_after_the_parent_branch_is_deleted(demo_db: DemoDb) -> None:
    result = demo_db.result
    with demo_db.open() as (_, mgr):
        mgr.delete_branch(result.session_id, result.main_thread_id)
    data = demo_db.json("tree", result.session_id)
    assert [b["thread_id"] for b in data["branches"]] == [result.branch_thread_id]
    assert len(data["branches"][0]["checkpoints"]) == 5
    text = demo_db.run("tree", result.session_id)
    assert text.exit_code == 0, text.output
    assert "B-2002" in text.stdout and "A-1001" not in text.stdout
    # The branch still sees the history it inherited from the deleted thread.
    rows = demo_db.json("log", result.session_id)
    assert len(rows) == 10 and rows[-1]["message"] == "user: Hi! Where is my order A-1001?"
    # Checkpoints of a thread that no longer exists belong to no branch of the session.
    assert [r["thread_id"] for r in rows] == [result.branch_thread_id] * 5 + [None] * 5


def test_bad_paths_and_an_empty_session_are_one_clean_line(demo_db: DemoDb, tmp_path: Path) -> None:
    """A source that is not a LangGraph database or is missing, an --output that is a
    directory or in a missing one, and `du ""`: one error line, exit 2."""
    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("not a database\n")
    _assert_clean_error(
        demo_db.run("import-langgraph", str(not_sqlite)), 2, "is not a SQLite database"
    )
    missing = tmp_path / "nowhere.db"
    _assert_clean_error(demo_db.run("import-langgraph", str(missing)), 2, "no database at")
    assert not missing.exists()
    folder = tmp_path / "folder"
    folder.mkdir()
    _assert_clean_error(demo_db.run("import-langgraph", str(folder)), 2, "but a directory")
    _assert_clean_error(demo_db.run("export", "-o", str(folder)), 2, "is a directory")
    absent = tmp_path / "absent" / "x.jsonl"
    _assert_clean_error(demo_db.run("export", "-o", str(absent)), 2, "there is no directory")
    assert not absent.parent.exists()
    _assert_clean_error(demo_db.run("du", ""), 2, "empty session")
