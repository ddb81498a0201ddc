"""What a new user meets (issue 15): every input that used to destroy a file, crash the
CLI, hijack an id or break a promise of the README, through the real ``agentgit`` entry
point (Typer's runner on the app, whose group is the console script's ``main``, or the
console script itself), checking the exit status, the output, and that the database (or
file) is unchanged where the command must not change it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import closing, contextmanager
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, MessagesState, StateGraph
from test_cli import DemoDb, demo_db, demo_template  # noqa: F401  (fixtures)
from typer.testing import CliRunner

from langgraph_agentgit import (
    AgentGitSaver,
    BranchExistsError,
    BranchNotFoundError,
    InvalidBranchNameError,
    InvalidTagError,
    SessionManager,
    __version__,
)
from langgraph_agentgit.cli import app

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent


def dump(path: Path) -> list[str]:
    """Every row of every table, as SQL: equal before and after means unchanged."""
    with closing(sqlite3.connect(path)) as conn:
        return list(conn.iterdump())


def run(db: Path, *args: str, columns: int = 120) -> Any:
    return runner.invoke(app, [*args, "--db", str(db)], env={"COLUMNS": str(columns)})


def refused(result: Any, code: int, *fragments: str) -> None:
    """A clean one-line error: the status, nothing on stdout, no traceback."""
    assert result.exit_code == code, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    assert "Traceback" not in result.output


def echo_graph(saver: Any) -> Any:
    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [AIMessage(f"echo: {state['messages'][-1].content}")]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_edge(START, "agent")
    builder.add_edge("agent", END)
    return builder.compile(checkpointer=saver)


@contextmanager
def opened(path: Path) -> Iterator[tuple[AgentGitSaver, SessionManager, Any]]:
    with AgentGitSaver.from_conn_string(str(path)) as saver:
        yield saver, SessionManager(saver), echo_graph(saver)


def say(graph: Any, config: Any, text: str) -> None:
    graph.invoke({"messages": [("user", text)]}, config)


# --- 1. the demo never destroys a file ---------------------------------------------------------


def test_demo_fresh_refuses_another_sqlite_database(tmp_path: Path) -> None:
    precious = tmp_path / "precious.db"
    with closing(sqlite3.connect(precious)) as conn, conn:
        conn.execute("create table t(x)")
        conn.execute("insert into t values (42)")
    before = precious.read_bytes()
    refused(run(precious, "demo", "--fresh"), 2, "is not an agentgit database")
    assert precious.read_bytes() == before
    assert dump(precious) == [
        "BEGIN TRANSACTION;",
        "CREATE TABLE t(x);",
        'INSERT INTO "t" VALUES(42);',
        "COMMIT;",
    ]


def test_demo_fresh_refuses_a_text_file(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n" * 50)
    before = notes.read_bytes()
    refused(run(notes, "demo", "--fresh"), 2, "is not an agentgit database")
    assert notes.read_bytes() == before


def test_demo_on_a_directory_or_in_a_missing_directory_is_a_clean_error(tmp_path: Path) -> None:
    refused(run(tmp_path, "demo", "--fresh"), 2, "is not a file but a directory")
    assert list(tmp_path.iterdir()) == []
    missing = tmp_path / "nonexistent" / "dir" / "x.db"
    refused(run(missing, "demo"), 2, "does not exist")  # before the banner: stdout empty
    assert not missing.parent.exists()


def test_demo_fresh_deletes_only_earlier_demo_sessions(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    with opened(db) as (_, mgr, graph):
        mine = mgr.create_session(user_id="ada", name="my own work")
        say(graph, mgr.config(mine.id), "keep me")
    assert run(db, "demo").exit_code == 0
    with opened(db) as (_, mgr, _graph):
        mine_before = [t.checkpoint["id"] for t in mgr.checkpoints(mine.id)]
        assert len(mgr.list_sessions()) == 2
    fresh = run(db, "demo", "--fresh")
    assert fresh.exit_code == 0, fresh.output
    assert "--fresh: deleted 1 session of earlier demo runs." in fresh.stdout
    with opened(db) as (_, mgr, _graph):
        names = sorted(s.name for s in mgr.list_sessions())
        assert names == ["my own work", "order support (agentgit demo)"]
        assert [t.checkpoint["id"] for t in mgr.checkpoints(mine.id)] == mine_before


# --- 2. names are data, never markup ------------------------------------------------------------


MARKUP = "notes [draft] v2"


def test_markup_in_names_tags_and_users_is_printed_literally(tmp_path: Path) -> None:
    db = tmp_path / "markup.db"
    with opened(db) as (_, mgr, graph):
        s = mgr.create_session(user_id="[red]eve", name=MARKUP)
        say(graph, mgr.config(s.id), "hello [bold]world[/bold]")
        mgr.tag(s.id, graph.get_state(mgr.config(s.id)), "[/]")
        mgr.rollback(s.id, "[/]", name="[b]x[/b]")
        say(graph, mgr.config(s.id), "again")
        other = mgr.create_session(name="[/]")
        say(graph, mgr.config(other.id), "hi")
    for args in (["sessions"], ["show", s.id], ["tree", s.id], ["log", s.id], ["show", other.id]):
        result = run(db, *args)
        assert result.exit_code == 0, (args, result.output)
    assert MARKUP in run(db, "sessions").stdout and "[/]" in run(db, "sessions").stdout
    shown = run(db, "show", s.id).stdout
    for literal in (MARKUP, "[red]eve", "[/]", "[b]x[/b]"):
        assert literal in shown, literal
    assert "[[/]] " in run(db, "tree", s.id).stdout and "[b]x[/b]" in run(db, "tree", s.id).stdout
    assert "[bold]world[/bold]" in run(db, "log", s.id, "-b", "main").stdout
    # In errors too, and in the timeline's text and Mermaid.
    refused(run(db, "checkout", s.id, "[/]nope"), 2, "'[/]nope'")
    with opened(db) as (_, mgr, _graph):
        tl = mgr.timeline(s.id)
    assert MARKUP in str(tl) and "[b]x[/b]" in tl.to_mermaid("flowchart")


# --- 3. a tag cannot hijack a checkpoint prefix ---------------------------------------------------


def test_a_tag_that_looks_like_an_id_prefix_is_refused(demo_db: DemoDb) -> None:  # noqa: F811
    ids = [t for t in _root_ids(demo_db.path)]
    sid = demo_db.result.session_id
    before = dump(demo_db.path)
    for name in (ids[1][:13], "cafe", "1f1e-", "DEAD-beef"):
        refused(demo_db.run("tag", sid, ids[0], name), 2, "could be read as an id")
    refused(demo_db.run("tag", sid, ids[0], "two\nlines"), 2, "control characters")
    refused(demo_db.run("tag", sid, ids[0], " padded"), 2, "whitespace")
    assert dump(demo_db.path) == before
    with demo_db.open() as (_, mgr), pytest.raises(InvalidTagError):
        mgr.tag(sid, ids[0], ids[1][:13])


def test_an_old_tag_that_is_also_a_prefix_is_reported_as_ambiguous(
    demo_db: DemoDb,  # noqa: F811
) -> None:
    ids = _root_ids(demo_db.path)
    sid = demo_db.result.session_id
    prefix = next(i for i in ids if ids.index(i) > 0)[:13]
    target = ids[0]
    # Written before such names were refused.
    with closing(sqlite3.connect(demo_db.path)) as conn, conn:
        conn.execute(
            "INSERT INTO agentgit_tags(session_id, name, checkpoint_id, thread_id, created_at) "
            "VALUES (?, ?, ?, ?, '2025-01-01T00:00:00.000000+00:00')",
            (sid, prefix, target, demo_db.result.main_thread_id),
        )
    before = dump(demo_db.path)
    refused(demo_db.run("rollback", sid, prefix), 2, "ambiguous", target)
    assert dump(demo_db.path) == before


def _root_ids(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(
            "SELECT DISTINCT checkpoint_id FROM agentgit_checkpoints WHERE ns = '' "
            "ORDER BY checkpoint_id"
        ).fetchall()
    return [r[0] for r in rows]


# --- 4. branch names: unique, accepted by the CLI and the API ------------------------------------


def test_branch_names_shown_are_accepted(demo_db: DemoDb) -> None:  # noqa: F811
    sid = demo_db.result.session_id
    checked_out = demo_db.run("checkout", sid, "main", "--json")
    assert checked_out.exit_code == 0, checked_out.output
    assert json.loads(checked_out.stdout)["thread_id"] == demo_db.result.main_thread_id
    listed = demo_db.json("log", sid, "-b", "branch-1")
    assert listed[0]["thread_id"] == demo_db.result.branch_thread_id
    shown = demo_db.json("show", sid)
    assert [b["name"] for b in shown["branches"]] == ["main", "branch-1"]


def test_a_branch_name_is_unique_and_valid(demo_db: DemoDb) -> None:  # noqa: F811
    sid = demo_db.result.session_id
    made = demo_db.run("rollback", sid, "after-lookup", "--name", "retry")
    assert made.exit_code == 0, made.output
    before = dump(demo_db.path)
    refused(demo_db.run("rollback", sid, "after-lookup", "--name", "retry"), 2, "already has")
    refused(demo_db.run("branch", sid, "after-lookup", "--name", "main"), 2, "already has")
    refused(demo_db.run("branch", sid, "after-lookup", "--name", ""), 2, "must not be empty")
    refused(demo_db.run("branch", sid, "after-lookup", "--name", "a\nb"), 2, "control")
    refused(demo_db.run("branch", sid, "after-lookup", "--name", "c0ffee"), 2, "an id")
    assert dump(demo_db.path) == before
    assert demo_db.run("checkout", sid, "main").exit_code == 0
    back = demo_db.run("checkout", sid, "retry", "--json")
    assert back.exit_code == 0 and json.loads(back.stdout)["name"] == "retry"


def test_the_api_takes_branch_names_too(tmp_path: Path) -> None:
    with opened(tmp_path / "api.db") as (_, mgr, graph):
        s = mgr.create_session()
        say(graph, mgr.config(s.id), "one")
        head = graph.get_state(mgr.config(s.id))
        alt = mgr.branch(s.id, head, name="alt")
        auto = mgr.branch(s.id, head)
        assert (alt.name, auto.name, mgr.branches(s.id)[0].name) == ("alt", "branch-2", "main")
        assert mgr.checkout(s.id, "alt").thread_id == alt.thread_id
        assert mgr.get_branch(s.id, "main").thread_id == s.current_thread_id
        assert [t.checkpoint["id"] for t in mgr.checkpoints(s.id, thread_id="alt")] == [
            t.checkpoint["id"] for t in mgr.checkpoints(s.id, thread_id=alt.thread_id)
        ]
        with pytest.raises(BranchExistsError):
            mgr.rollback(s.id, head, name="main")
        with pytest.raises(InvalidBranchNameError):
            mgr.branch(s.id, head, name="")
        with pytest.raises(BranchNotFoundError):
            mgr.checkout(s.id, "nope")
        mgr.delete_branch(s.id, "alt")
        assert [b.name for b in mgr.branches(s.id)] == ["main", "branch-2"]


def test_branches_of_an_older_database_keep_the_names_they_were_shown_with(
    demo_db: DemoDb,  # noqa: F811
) -> None:
    sid = demo_db.result.session_id
    with closing(sqlite3.connect(demo_db.path)) as conn, conn:
        conn.execute("UPDATE agentgit_session_threads SET name = NULL")
    assert demo_db.run("checkout", sid, "branch-1").exit_code == 0
    assert demo_db.run("checkout", sid, "main").exit_code == 0
    with closing(sqlite3.connect(demo_db.path)) as conn, conn:  # two of one name, as before
        conn.execute("UPDATE agentgit_session_threads SET name = 'dup'")
    before = dump(demo_db.path)
    refused(demo_db.run("checkout", sid, "dup"), 2, "ambiguous branch 'dup'")
    assert dump(demo_db.path) == before


# --- 5. long sessions: bounded reads, the same answers -------------------------------------------


@pytest.fixture(scope="module")
def long_session(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    db = tmp_path_factory.mktemp("long") / "long.db"
    with opened(db) as (_, mgr, graph):
        s = mgr.create_session(name="long")
        marks = []
        for turn in range(40):
            say(graph, mgr.config(s.id), f"question {turn}")
            if turn % 10 == 5:
                marks.append(graph.get_state(mgr.config(s.id)))
        for i, mark in enumerate(marks):
            branch = mgr.branch(s.id, mark, name=f"try-{i}")
            say(graph, branch.config, f"branch {i}")
        mgr.tag(s.id, marks[0], "early")
    return db, s.id


def test_log_limit_is_the_head_of_the_full_log(long_session: tuple[Path, str]) -> None:
    db, sid = long_session
    for branch in ("main", "try-2"):
        full = json.loads(run(db, "log", sid, "-b", branch, "--json").stdout)
        assert json.loads(run(db, "log", sid, "-b", branch, "-n", "5", "--json").stdout) == full[:5]
    full = json.loads(run(db, "log", sid, "-b", "try-2", "--json").stdout)
    with opened(db) as (_, mgr, _graph):
        main_ids = {t.checkpoint["id"] for t in mgr.checkpoints(sid, thread_id="main")}
        branch = mgr.get_branch(sid, "try-2")
    owners = {row["checkpoint_id"]: row["thread_id"] for row in full}
    assert {c for c, t in owners.items() if t == branch.thread_id} == {
        c for c in owners if c not in main_ids
    }


def test_tree_elides_long_lines_but_keeps_fork_points_and_tags(
    long_session: tuple[Path, str],
) -> None:
    db, sid = long_session
    with opened(db) as (_, mgr, _graph):
        tl = mgr.timeline(sid)
        fork_points = [h.branch.fork_checkpoint_id for h in tl.branches[1:]]
        total = sum(len(h.checkpoints) for h in tl.branches)
    short = run(db, "tree", sid).stdout
    every = run(db, "tree", sid, "--all").stdout
    assert "more checkpoints" in short and "more checkpoints" not in every
    abbreviated = json.loads(run(db, "tree", sid, "--json").stdout)
    assert sum(len(b["checkpoints"]) for b in abbreviated["branches"]) == total
    for fork in fork_points:
        assert fork is not None and fork[:13] in short
    assert "[early]" in short
    assert len(short.splitlines()) < len(every.splitlines()) < total + 40


# --- 6. 80 columns ------------------------------------------------------------------------------


def test_eighty_columns_keep_ids_usable_and_the_current_marker(demo_db: DemoDb) -> None:  # noqa: F811
    sid = demo_db.result.session_id
    long_name = "a-very-long-branch-name-made-of-43-chars-xx"
    assert len(long_name) == 43
    assert run(demo_db.path, "rollback", sid, "after-lookup", "--name", long_name).exit_code == 0
    with demo_db.open() as (_, mgr):
        mgr.create_session(name="a session name long enough to wrap in a table cell")
        current = mgr.branches(sid)[-1]
    for args in (["show", sid], ["sessions"], ["tree", sid], ["log", sid]):
        out = run(demo_db.path, *args, columns=80).stdout
        assert all(len(line) <= 80 for line in out.splitlines()), (args, out)
    shown = run(demo_db.path, "show", sid, columns=80).stdout
    row = next(line for line in shown.splitlines() if line.lstrip().startswith("*"))
    assert current.thread_id[:8] in row and "…" not in row.split()[1]
    fork = re.search(r"1f[0-9a-f]{6}-[0-9a-f]{4}", row)
    assert fork is not None and (current.fork_checkpoint_id or "").startswith(fork.group())
    sessions = run(demo_db.path, "sessions", columns=80).stdout
    assert sum("a session name" in line for line in sessions.splitlines()) == 1
    assert "* " in run(demo_db.path, "tree", sid, columns=80).stdout
    heads = (demo_db.result.main_head, demo_db.result.branch_head)
    diff = run(demo_db.path, "diff", *heads, columns=80).stdout
    assert all(len(line) <= 80 for line in diff.splitlines())
    assert demo_db.result.main_head in diff  # ids whole


# --- 8. package hygiene ---------------------------------------------------------------------------


def test_version_py_typed_license_and_lazy_imports() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout == f"agentgit (langgraph-agentgit) {__version__}\n"
    assert metadata.version("langgraph-agentgit") == __version__
    assert (resources.files("langgraph_agentgit") / "py.typed").is_file()
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    probe = (
        "import sys, langgraph_agentgit.cli, langgraph_agentgit as p; "
        "print(sorted(m for m in ('langgraph', 'langchain_core') if m in sys.modules)); "
        "p.SessionManager; print('langgraph' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:2] == ["[]", "True"]


def test_plotting_without_matplotlib_names_the_extra(
    demo_db: DemoDb,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from langgraph_agentgit.plot import draw_timeline

    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with demo_db.open() as (_, mgr):
        tl = mgr.timeline(demo_db.result.session_id)
    with pytest.raises(ImportError, match=re.escape("pip install 'langgraph-agentgit[plot]'")):
        draw_timeline(tl)


# --- 9. smaller things ----------------------------------------------------------------------------


def test_a_bad_option_is_one_line(demo_db: DemoDb) -> None:  # noqa: F811
    sid = demo_db.result.session_id
    before = dump(demo_db.path)
    for args, fragment in (
        (["log", sid, "--lim", "3"], "No such option: --lim"),
        (["log", sid, "-n", "0"], "'--limit'"),
        (["rollback", sid], "Missing argument"),
        (["nosuch"], "No such command"),
    ):
        result = demo_db.run(*args)
        refused(result, 2, fragment)
        assert "╭" not in result.stderr and "Usage:" not in result.stderr
    assert dump(demo_db.path) == before


def test_untag_delete_branch_deactivate_activate_delete(demo_db: DemoDb) -> None:  # noqa: F811
    sid = demo_db.result.session_id
    assert demo_db.run("untag", sid, "after-lookup").exit_code == 0
    refused(demo_db.run("untag", sid, "after-lookup"), 2, "has no tag")
    assert demo_db.json("show", sid)["tags"] == {}

    before = dump(demo_db.path)
    refused(demo_db.run("delete-branch", sid, "branch-1"), 2, "pass --yes")  # no TTY
    refused(demo_db.run("delete", sid), 2, "pass --yes")
    assert dump(demo_db.path) == before
    deleted = demo_db.run("delete-branch", sid, "branch-1", "--yes")
    assert deleted.exit_code == 0, deleted.output
    assert "current branch: main" in deleted.stdout
    assert [b["name"] for b in demo_db.json("show", sid)["branches"]] == ["main"]
    refused(demo_db.run("delete-branch", sid, "main", "--yes"), 2, "delete the session instead")

    assert demo_db.run("deactivate", sid).exit_code == 0
    assert demo_db.json("sessions", "--active") == []
    assert demo_db.run("activate", sid).exit_code == 0
    assert len(demo_db.json("sessions", "--active")) == 1
    assert demo_db.run("delete", sid, "--yes").exit_code == 0
    assert demo_db.json("sessions") == []


def test_forks_inside_a_thread_are_drawn(tmp_path: Path) -> None:
    db = tmp_path / "forks.db"
    with opened(db) as (_, mgr, graph):
        s = mgr.create_session()
        config = mgr.config(s.id)
        say(graph, config, "one")
        first = graph.get_state(config).config
        say(graph, config, "two")
        # LangGraph's own fork: continue the same thread from an earlier checkpoint.
        graph.invoke({"messages": [("user", "two, again")]}, first)
        history = list(graph.get_state_history(config))
        tl = mgr.timeline(s.id)
    main = tl.branches[0]
    assert main.in_thread_forks == 1
    # Each line is a chain of LangGraph's own parent links, and together they are all.
    parents = {h.config["configurable"]["checkpoint_id"]: h.parent_config for h in history}
    for line in main.lines:
        for a, b in zip(line.checkpoints, line.checkpoints[1:], strict=False):
            assert parents[b.checkpoint_id]["configurable"]["checkpoint_id"] == a.checkpoint_id  # type: ignore[index]
    assert sorted(c.checkpoint_id for line in main.lines for c in line.checkpoints) == sorted(
        parents
    )
    assert main.lines[0].checkpoints[-1].checkpoint_id == max(parents)  # ends at the head
    assert "1 in-thread fork" in str(tl)
    mermaid = tl.to_mermaid()
    assert "    branch main-fork-1" in mermaid  # a lane of its own, not one straight line
    assert len(tl.to_dict()["branches"][0]["in_thread_forks"]) == 1
    from langgraph_agentgit.plot import draw_timeline

    drawn = [t.get_text() for t in draw_timeline(tl).axes[0].texts]
    assert "fork in thread" in drawn  # a row of its own in the picture too
    tree = run(db, "tree", s.id).stdout
    assert "fork inside the thread" in tree
    fork_at = main.lines[1].parent_checkpoint_id or ""
    assert f"⑂ after {fork_at[:8]}" in run(db, "log", s.id).stdout
    # The same shape as LangGraph's reference saver gives.
    ref = echo_graph(InMemorySaver())
    ref_config = {"configurable": {"thread_id": "t"}}
    say(ref, ref_config, "one")
    ref_first = ref.get_state(ref_config).config
    say(ref, ref_config, "two")
    ref.invoke({"messages": [("user", "two, again")]}, ref_first)
    assert len(list(ref.get_state_history(ref_config))) == len(history)


SERDE_MODULE = """
from dataclasses import dataclass
from typing import Any, TypedDict

from langgraph.graph import END, START, StateGraph


@dataclass
class Order:
    number: str


class State(TypedDict):
    order: Any


def build(saver):
    g = StateGraph(State)
    g.add_node("n", lambda s: {"order": Order("A-1")})
    g.add_edge(START, "n")
    g.add_edge("n", END)
    return g.compile(checkpointer=saver)
"""


def test_langgraph_serde_warnings_become_one_note_of_ours(tmp_path: Path) -> None:
    (tmp_path / "my_orders.py").write_text(textwrap.dedent(SERDE_MODULE))
    db = tmp_path / "orders.db"
    writer = (
        "import sys; sys.path.insert(0, sys.argv[2]); import my_orders\n"
        "from langgraph_agentgit import AgentGitSaver, SessionManager\n"
        "with AgentGitSaver.from_conn_string(sys.argv[1]) as saver:\n"
        "    mgr = SessionManager(saver); s = mgr.create_session()\n"
        "    my_orders.build(saver).invoke({'order': None}, mgr.config(s.id)); print(s.id)\n"
    )
    made = subprocess.run(
        [sys.executable, "-c", writer, str(db), str(tmp_path)],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    sid = made.stdout.strip()
    shown = subprocess.run(
        [sys.executable, "-m", "langgraph_agentgit", "--db", str(db), "log", sid],
        capture_output=True, text=True, timeout=120, cwd=tmp_path.parent,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    assert "allowed_msgpack_modules" not in shown.stderr + shown.stdout
    assert "my_orders.Order" in shown.stderr
    assert "StrictSerializer(allowed_types=" in shown.stderr
    assert shown.stderr.count("my_orders.Order") == 2  # one note, naming it twice


def test_demo_says_how_to_run_the_commands_it_suggests(tmp_path: Path) -> None:
    script = shutil.which("agentgit", path=str(Path(sys.executable).parent))
    assert script is not None
    env = {**os.environ, "PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    done = subprocess.run(
        [script, "demo", "--db", str(tmp_path / "d.db")],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    suggested = done.stdout.split("Try next")[1]
    assert f"{script} --db" in suggested  # a path that runs, not a bare `agentgit`
    assert "is not on your PATH" in suggested


def test_read_commands_do_not_import_the_agent_stack(demo_db: DemoDb) -> None:  # noqa: F811
    from langgraph_agentgit.agents import message_preview as reference
    from langgraph_agentgit.cli import message_preview

    with demo_db.open() as (saver, _):
        messages = [
            m for t in saver.list(None) for m in t.checkpoint["channel_values"].get("messages", [])
        ]
    assert messages and all(
        message_preview(m, w) == reference(m, w) for m in messages for w in (20, 60, 200)
    )
    probe = (
        "import sys; from typer.testing import CliRunner; from langgraph_agentgit.cli import app\n"
        "r = CliRunner().invoke(app, ['--db', sys.argv[1], 'tree', sys.argv[2]])\n"
        "loaded = [m in sys.modules for m in ('langgraph_agentgit.agents', 'langgraph.prebuilt')]\n"
        "print(r.exit_code, *loaded)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(demo_db.path), demo_db.result.session_id],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.split() == ["0", "False", "False"]


# --- bad user ids and values JSON cannot hold ---------------------------------------------


def test_json_output_stays_json_with_nan_metadata_and_user_ids_are_checked(tmp_path: Path) -> None:
    """Metadata written by other means (an older version, SQL, another tool) may hold NaN
    or infinities, which JSON has no numbers for: `--json` still prints strict JSON. An
    empty or malformed `--user` is refused, naming the problem, with nothing written."""
    db = tmp_path / "nan.db"
    with opened(db) as (_, mgr, graph):
        s = mgr.create_session(user_id="ada", name="scores")
        say(graph, mgr.config(s.id), "hello")
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute(
            "UPDATE agentgit_sessions SET metadata = ? WHERE id = ?",
            ('{"score": NaN, "hi": Infinity, "lo": [-Infinity, 1.5]}', s.id),
        )

    def strict(text: str) -> Any:
        def refuse(constant: str) -> Any:
            raise AssertionError(f"not JSON: {constant}")

        return json.loads(text, parse_constant=refuse)

    for args in (["sessions", "--json"], ["show", s.id, "--json"]):
        result = run(db, *args)
        assert result.exit_code == 0, (args, result.output)
        data = strict(result.stdout)
        session = data[0] if isinstance(data, list) else data.get("session", data)
        assert session["metadata"] == {
            "score": "NaN",
            "hi": "Infinity",
            "lo": ["-Infinity", 1.5],
        }
    before = dump(db)
    for bad, problem in (("", "must not be empty"), ("a\tb", "control characters")):
        refused(run(db, "sessions", "--user", bad), 2, problem)
    assert dump(db) == before


def test_sessions_lists_the_most_recent_and_says_when_there_are_more(tmp_path: Path) -> None:
    """`agentgit sessions` reads each listed session's last message: it lists the 50 most
    recently active (--limit N, --all) and says on stderr when it left some out."""
    db = tmp_path / "many.db"
    with opened(db) as (_, mgr, graph):
        made = [mgr.create_session(name=f"s{i}") for i in range(5)]
        say(graph, mgr.config(made[1].id), "hello")  # the most recent activity
        order = [s.id for s in mgr.list_sessions()]
    assert order[0] == made[1].id
    shown = run(db, "sessions", "--limit", "2", "--json")
    assert shown.exit_code == 0, shown.output
    assert [s["id"] for s in json.loads(shown.stdout)] == order[:2]
    assert "there are more" in shown.stderr
    every = run(db, "sessions", "--all", "--json")
    assert [s["id"] for s in json.loads(every.stdout)] == order and not every.stderr
    assert not run(db, "sessions", "--limit", "5", "--json").stderr  # exactly all of them
    table = run(db, "sessions", "--limit", "3", columns=200)
    assert table.exit_code == 0 and "there are more" in table.stderr
    listed = [line.split()[0] for line in table.stdout.splitlines() if " s" in line]
    assert [i for i in listed if "-" in i] == [i[:13] for i in order[:3]]
    refused(run(db, "sessions", "--limit", "0"), 2, "--limit")
