"""Faults: processes killed mid-write, locks held by others, read-only locations, damaged
rows, and hostile text on the terminal.

* Several real processes run a compiled tool agent with ``AgentGitSaver`` and
  ``SessionManager`` on one file (``tests/fault_worker.py``) and are SIGKILLed at random
  points of turns, rollbacks and deletions; afterwards ``check`` finds no damage and
  every checkpoint a ``put`` returned for reads back whole.
* Another connection holding the write lock: writes fail with ``DatabaseLockedError``
  after the configured ``lock_timeout`` (in total), while opening and reading go on.
* A database in a read-only directory (``chattr +i``: permission bits do not stop root)
  or on a read-only file system (a read-only bind mount in a private mount namespace):
  it opens read-only (``mode=ro``, or ``immutable=1`` when SQLite cannot create the
  ``-wal``/``-shm`` files), reads what was written, and refuses writes by name.
* Each kind of damage, made with plain SQL, is reported by ``check`` under its kind.
* Control characters in messages, ids and names never reach the terminal.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import fault_worker
import pytest
from conftest import cfg
from typer.testing import CliRunner

from langgraph_agentgit import (
    AgentGitSaver,
    AsyncAgentGitSaver,
    DatabaseLockedError,
    ReadOnlyDatabaseError,
    SessionManager,
)
from langgraph_agentgit.agents import create_agent_graph
from langgraph_agentgit.cli import app, clean
from langgraph_agentgit.storage.check import GARBAGE, REPAIRABLE, check, repair

TESTS = Path(__file__).parent
runner = CliRunner()


def fill(path: str, turns: int = 2, sessions: int = 2) -> dict[str, list[str]]:
    """A database with ``sessions`` sessions of ``turns`` agent turns each, one of them
    rolled back and continued on a branch; returns each session's message texts."""
    with AgentGitSaver.from_conn_string(path) as saver:
        graph = create_agent_graph(checkpointer=saver)
        mgr = SessionManager(saver)
        for n in range(sessions):
            s = mgr.create_session(user_id=f"user-{n}", name=f"chat {n}")
            for i in range(turns):
                question = f"Where is my order A-100{i}?" if i % 2 == 0 else f"What is {n} * {i}?"
                graph.invoke({"messages": [("user", question)]}, mgr.config(s.id))
            if n == 0:
                first_turn_end = mgr.checkpoints(s.id)[-5].config["configurable"]["checkpoint_id"]
                mgr.rollback(s.id, first_turn_end)
                graph.invoke({"messages": [("user", "What is 2 * 3?")]}, mgr.config(s.id))
        return {
            s.id: [str(m.content) for m in graph.get_state(mgr.config(s.id)).values["messages"]]
            for s in mgr.list_sessions()
        }


# --- processes killed at random points ------------------------------------------------------


class Tail:
    """What a worker is doing, from the new lines of its journal."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.doing = "starting"

    def poll(self) -> str:
        with open(self.path, "rb") as handle:
            handle.seek(self.offset)
            chunk = handle.read()
        whole = chunk[: chunk.rfind(b"\n") + 1]
        self.offset += len(whole)
        for line in whole.splitlines():
            entry = json.loads(line)
            if entry["op"] == "begin":
                self.doing = entry["what"]
            elif entry["op"] in ("end", "ready"):
                self.doing = "between operations"
        return self.doing


WORKERS = 3
KILLS = 20
KILL_LOOP_BUDGET = 40.0  # seconds; the loop ends at KILLS kills or then, whichever is first


def test_sigkill_at_random_points_leaves_no_damage_and_loses_nothing_committed(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    db = str(tmp_path / "faults.db")
    # A fork server that has imported the agent stack once: a new worker starts in
    # milliseconds, so the kills land in its work rather than in its imports. (The fork
    # server does not get the tests' sys.path: it preloads what the worker imports.)
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["langgraph_agentgit", "langgraph_agentgit.agents"])
    rng = random.Random(1234)
    running: dict[int, tuple[Any, Tail]] = {}
    journals: list[Path] = []

    def start(slot: int) -> None:
        journal = tmp_path / f"journal-{len(journals)}.jsonl"
        journal.touch()
        journals.append(journal)
        proc = ctx.Process(target=fault_worker.run, args=(db, str(journal), rng.randrange(1 << 30)))
        proc.start()
        running[slot] = (proc, Tail(journal))

    def kill(slot: int) -> str:
        proc, tail = running.pop(slot)
        doing = tail.poll()
        assert proc.is_alive(), f"worker {slot} died by itself (exit {proc.exitcode})"
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(timeout=30)
        assert proc.exitcode == -signal.SIGKILL
        return doing

    def target(wanted: str, patience: float) -> int | None:
        """A worker that is doing ``wanted`` right now (rollbacks and deletions take
        milliseconds: a kill at a random moment rarely finds one)."""
        until = time.monotonic() + patience
        while time.monotonic() < until:
            for slot, (_proc, tail) in running.items():
                if tail.poll() == wanted:
                    return slot
            time.sleep(0.001)
        return None

    kills: list[str] = []
    try:
        for slot in range(WORKERS):
            start(slot)
        # The first kills should not all land in the fork server's start.
        warm = time.monotonic() + 60
        while time.monotonic() < warm and any(t.poll() == "starting" for _, t in running.values()):
            time.sleep(0.05)
        deadline = time.monotonic() + KILL_LOOP_BUDGET
        while len(kills) < KILLS and time.monotonic() < deadline:
            # Every other kill at a random moment, the others aimed at an operation.
            slot = None
            if len(kills) % 2:
                wanted = rng.choice(["rollback", "delete-branch", "delete-session"])
                slot = target(wanted, patience=2.0)
            if slot is None:
                time.sleep(rng.uniform(0.1, 0.5))
                slot = rng.randrange(WORKERS)
            kills.append(kill(slot))
            start(slot)
        time.sleep(0.3)
        for slot in list(running):
            kills.append(kill(slot))
    finally:
        for proc, _tail in running.values():
            proc.kill()
            proc.join(timeout=30)

    entries = [e for journal in journals for e in fault_worker.read_journal(str(journal))]
    errors = [e for e in entries if e["op"] == "error"]
    assert not errors, "\n".join(e["traceback"] for e in errors[:3])
    session_of = {e["t"]: e["s"] for e in entries if e["op"] == "branch"}
    gone_sessions = {e["s"] for e in entries if e["op"] == "delete-session"}
    gone_threads = {e["t"] for e in entries if e["op"] == "delete-branch"}
    puts = [e for e in entries if e["op"] == "put"]
    kept = [
        e
        for e in puts
        if e["t"] not in gone_threads and session_of.get(e["t"]) not in gone_sessions
    ]
    assert len(kills) >= KILLS // 2 and len(kept) > 20  # the loop did real work

    with AgentGitSaver.from_conn_string(db) as saver:
        mgr = SessionManager(saver)
        report = mgr.check()
        assert report.ok, [p.message for p in report.damage]
        for entry in kept:
            found = saver.get_tuple(cfg(entry["t"], entry["c"]))
            assert found is not None, f"committed checkpoint {entry} is gone"
            assert found.checkpoint["id"] == entry["c"]
            if entry["n"] is not None:
                assert len(found.checkpoint["channel_values"]["messages"]) == entry["n"], entry
        for s in mgr.list_sessions():
            mgr.timeline(s.id)
            for branch in mgr.branches(s.id):
                for item in saver.list(cfg(branch.thread_id)):
                    assert item.checkpoint["id"]

    figures = {
        "kills": len(kills),
        "interrupted": {what: kills.count(what) for what in sorted(set(kills))},
        "committed_checkpoints": len(puts),
        "still_expected": len(kept),
        "found_after": len(kept),  # every one was asserted above
        "garbage_after": len(report.garbage),
        "operations": sum(1 for e in entries if e["op"] == "end"),
        "races": sum(1 for e in entries if e["op"] == "race"),
    }
    record_property("kill_loop", json.dumps(figures))
    print("kill loop:", json.dumps(figures))


# --- locks ---------------------------------------------------------------------------------


@contextmanager
def write_lock_held(path: str) -> Iterator[sqlite3.Connection]:
    """Another connection holding the database's write lock (``BEGIN IMMEDIATE``)."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield holder
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def row_counts(path: str) -> dict[str, int]:
    with closing(sqlite3.connect(path)) as conn:
        tables = ("agentgit_checkpoints", "agentgit_blobs", "agentgit_sessions")
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def test_a_held_write_lock_fails_writes_after_the_timeout_while_opening_and_reads_go_on(
    db_path: str,
) -> None:
    states = fill(db_path, sessions=1)
    session_id, messages = next(iter(states.items()))
    before = row_counts(db_path)
    notices: list[float] = []
    # Opening a current database takes no lock: an open that wanted the write lock would
    # fail here with DatabaseLockedError.
    with (
        write_lock_held(db_path),
        AgentGitSaver.from_conn_string(
            db_path, lock_timeout=1.5, on_lock_wait=lambda: notices.append(time.monotonic())
        ) as saver,
    ):
        graph = create_agent_graph(checkpointer=saver)
        mgr = SessionManager(saver)
        config = mgr.config(session_id)
        assert [m.content for m in graph.get_state(config).values["messages"]] == messages
        assert [s.id for s in mgr.list_sessions()] == [session_id]
        started = time.monotonic()
        with pytest.raises(DatabaseLockedError, match=re.escape(db_path)) as raised:
            graph.invoke({"messages": [("user", "What is 2 * 2?")]}, config)
        invoke_waited = time.monotonic() - started
        assert "lock_timeout = 1.5 s" in str(raised.value)
        assert notices  # LangGraph may have several writes under way, each told
        told = len(notices)
        started = time.monotonic()
        with pytest.raises(DatabaseLockedError):
            mgr.rollback(session_id, mgr.checkpoints(session_id)[-1].config)
        write_waited = time.monotonic() - started
        assert len(notices) == told + 1  # one write, told once however many retries
        # Reads still work while the lock is held.
        assert [m.content for m in graph.get_state(config).values["messages"]] == messages
    # One total wait per write, not one per retry (the old code waited 12 x the busy
    # timeout, 6 minutes); loose bounds, the machine may be busy.
    assert write_waited < 1.5 + 5
    assert invoke_waited < 2 * 1.5 + 8
    assert row_counts(db_path) == before  # nothing was written
    with AgentGitSaver.from_conn_string(db_path, lock_timeout=1.5) as saver:
        graph = create_agent_graph(checkpointer=saver)
        graph.invoke(
            {"messages": [("user", "What is 2 * 2?")]}, SessionManager(saver).config(session_id)
        )


async def test_the_async_saver_has_the_same_lock_timeout(db_path: str) -> None:
    states = fill(db_path, sessions=1)
    session_id, messages = next(iter(states.items()))
    with write_lock_held(db_path):
        async with AsyncAgentGitSaver.from_conn_string(db_path, lock_timeout=0.5) as saver:
            graph = create_agent_graph(checkpointer=saver)
            mgr = SessionManager(saver)
            config = await mgr.aconfig(session_id)
            state = await graph.aget_state(config)
            assert [m.content for m in state.values["messages"]] == messages
            with pytest.raises(DatabaseLockedError, match=re.escape(db_path)):
                await graph.ainvoke({"messages": [("user", "What is 2 * 2?")]}, config)


def test_cli_write_blocked_by_another_process_says_it_waits_then_names_the_lock(
    db_path: str,
) -> None:
    states = fill(db_path, sessions=1)
    session_id = next(iter(states))
    with AgentGitSaver.from_conn_string(db_path) as saver:
        checkpoint_id = SessionManager(saver).checkpoints(session_id)[-1].checkpoint["id"]
    with write_lock_held(db_path):
        listed = runner.invoke(app, ["--db", db_path, "--lock-timeout", "2", "sessions", "--json"])
        assert listed.exit_code == 0, listed.output
        assert [s["id"] for s in json.loads(listed.stdout)] == [session_id]
        assert listed.stderr == ""  # reading did not wait
        result = subprocess.run(
            [sys.executable, "-m", "langgraph_agentgit", "--db", db_path, "--lock-timeout",
             "2", "tag", session_id, checkpoint_id, "blocked"],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert result.returncode == 1, result.stderr
    waiting, error = result.stderr.splitlines()
    assert waiting.startswith("waiting for another process to release its lock on")
    assert error.startswith(f"error: database {db_path} is locked by another connection")
    assert "lock_timeout = 2 s" in error and "nothing was written" in error
    assert result.stdout == ""


def test_cli_read_blocked_by_an_exclusive_lock_is_not_called_a_bad_database(
    db_path: str,
) -> None:
    """A connection in ``locking_mode = EXCLUSIVE`` keeps even readers out; the CLI said
    "not an agentgit database" (exit 2). It says the database is locked (exit 1)."""
    fill(db_path, sessions=1)
    holder = sqlite3.connect(db_path, isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("UPDATE agentgit_sessions SET name = name")
        holder.execute("COMMIT")  # the exclusive lock stays until the connection closes
        result = runner.invoke(app, ["--db", db_path, "--lock-timeout", "0.3", "sessions"])
    finally:
        holder.close()
    assert result.exit_code == 1, result.output
    assert "not an agentgit database" not in result.stderr
    assert f"database {Path(db_path).resolve()} is locked by another connection" in result.stderr
    assert "lock_timeout = 0.3 s" in result.stderr


# --- read-only locations -------------------------------------------------------------------


def _chattr(flag: str, path: Path) -> bool:
    if shutil.which("chattr") is None:
        return False
    return subprocess.run(["chattr", flag, str(path)], capture_output=True).returncode == 0


@contextmanager
def read_only_directory(directory: Path) -> Iterator[None]:
    """``directory`` made unwritable for this process. Root ignores permission bits, so as
    root it is made immutable (``chattr +i``: no file can be created, renamed or removed
    in it, whoever asks); otherwise its write permission is removed."""
    if os.geteuid() == 0:
        if not _chattr("+i", directory):
            pytest.skip("running as root and chattr +i is not available here")
        try:
            yield
        finally:
            _chattr("-i", directory)
    else:
        directory.chmod(0o555)
        try:
            yield
        finally:
            directory.chmod(0o755)


def run_probe(db: Path, *, inside: str = "") -> dict[str, Any]:
    """``tests/readonly_probe.py`` on ``db``; ``inside``: a shell command line to prefix
    it with, in a private mount namespace."""
    probe = [sys.executable, str(TESTS / "readonly_probe.py"), str(db)]
    command = (
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         f"{inside} exec {shlex.join(probe)}"]
        if inside
        else probe
    )  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=180, cwd=TESTS,
        env={**os.environ, "PYTHONPATH": str(TESTS)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def assert_read_only_behaviour(
    result: dict[str, Any], db: Path, states: dict[str, Any], *, writer_open: bool = False
) -> None:
    # A plain open that writes is refused by name (it used to be "unable to open database
    # file"), unless a writer keeps a -wal file open that can still be written.
    if not writer_open:
        assert result["plain_write"]["error"] == "ReadOnlyDatabaseError", result["plain_write"]
        assert "read-only" in result["plain_write"]["message"]
        assert str(db) in result["plain_write"]["message"]
    read = result["read_only"]["ok"]
    assert read["sessions"] == states
    assert read["check_ok"] is True
    for step in ("write_session", "write_turn", "rollback"):
        assert read[step]["error"] == "ReadOnlyDatabaseError", read[step]
        assert str(db) in read[step]["message"]
    aread = result["async_read_only"]["ok"]
    assert aread["sessions"] == sorted(states)
    assert aread["write"]["error"] == "ReadOnlyDatabaseError"
    cli = result["cli"]
    assert cli["sessions"]["exit"] == 0, cli["sessions"]
    assert sorted(s["id"] for s in json.loads(cli["sessions"]["stdout"])) == sorted(states)
    assert cli["tree"]["exit"] == 0 and "main" in cli["tree"]["stdout"]
    assert cli["check"]["exit"] == 0 and json.loads(cli["check"]["stdout"])["ok"] is True
    for name, command in (("tag", "`tag`"), ("check_repair", "`check --repair`")):
        assert cli[name]["exit"] == 1, cli[name]
        error = cli[name]["stderr"]
        assert f"{db} is read-only" in error and command in error
        assert "sessions, show, log, turns, tree, diff, check" in error
        assert "not an agentgit database" not in error


@pytest.mark.parametrize("wal_present", [False, True], ids=["closed", "writer-open"])
def test_a_database_in_a_read_only_directory_reads_and_refuses_writes(
    tmp_path: Path, wal_present: bool
) -> None:
    """``closed``: no -wal/-shm files, and none can be created (``immutable=1``).
    ``writer-open``: a writer has the files open (``mode=ro`` shares them, and sees
    what the writer commits after the directory became read-only)."""
    directory = tmp_path / "ro"
    directory.mkdir()
    db = directory / "chat.db"
    states = fill(str(db))
    writer = sqlite3.connect(db, isolation_level=None) if wal_present else None
    try:
        if writer is not None:
            writer.execute("SELECT count(*) FROM agentgit_sessions").fetchone()
            assert Path(f"{db}-shm").exists()
        with read_only_directory(directory):
            if writer is not None:  # the writer's file is still writable, its directory not
                writer.execute("UPDATE agentgit_sessions SET name = 'renamed later'")
            result = run_probe(db)
            after = os.listdir(directory)
    finally:
        if writer is not None:
            writer.close()
    assert_read_only_behaviour(result, db, states, writer_open=wal_present)
    if wal_present:
        shown = json.loads(result["cli"]["sessions"]["stdout"])
        assert {s["name"] for s in shown} == {"renamed later"}
    else:
        assert after == ["chat.db"]  # nothing was created next to it


def _can_unshare_mounts() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"], capture_output=True
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _can_unshare_mounts(), reason="needs root and mount namespaces")
@pytest.mark.parametrize("leftovers", ["none", "wal-and-shm", "wal-only"])
def test_a_database_on_a_read_only_file_system(tmp_path: Path, leftovers: str) -> None:
    """The directory is bind-mounted read-only onto itself in a private mount namespace
    (EROFS for everyone there, root included); the probe runs inside it.

    ``wal-and-shm``: the files a crashed writer left; ``mode=ro`` reads the logged
    transactions from them. ``wal-only``: a log without its index cannot be read there,
    and the error says so (rather than showing the database without them)."""
    directory = tmp_path / "rofs"
    directory.mkdir()
    db = directory / "chat.db"
    states = fill(str(db))
    if leftovers != "none":
        # A writer that never closed: copy its files while it has them open.
        staging = tmp_path / "staging.db"
        shutil.copy(db, staging)
        writer = sqlite3.connect(staging, isolation_level=None)
        writer.execute("UPDATE agentgit_sessions SET name = 'logged only'")
        for suffix in ("", "-wal", "-shm")[: 2 if leftovers == "wal-only" else 3]:
            shutil.copy(f"{staging}{suffix}", f"{db}{suffix}")
        writer.close()
        assert Path(f"{db}-wal").stat().st_size > 0
    where = shlex.quote(str(directory))
    result = run_probe(
        db, inside=f"mount --bind {where} {where} && mount -o remount,bind,ro {where} &&"
    )
    if leftovers == "wal-only":
        assert result["read_only"]["error"] == "ReadOnlyDatabaseError"
        assert "write-ahead log" in result["read_only"]["message"]
        assert result["cli"]["sessions"]["exit"] == 1
        assert "write-ahead log" in result["cli"]["sessions"]["stderr"]
        assert result["plain_write"]["error"] == "ReadOnlyDatabaseError"
        return
    if leftovers == "wal-and-shm":
        shown = json.loads(result["cli"]["sessions"]["stdout"])
        assert {s["name"] for s in shown} == {"logged only"}
    assert_read_only_behaviour(result, db, states)


# --- damage, by kind -----------------------------------------------------------------------


def _one(conn: sqlite3.Connection, sql: str, *args: Any) -> Any:
    row = conn.execute(sql, args).fetchone()
    assert row is not None, sql
    return row[0] if len(row) == 1 else row


def delete_referenced_blob(conn: sqlite3.Connection) -> dict[str, Any]:
    blob = _one(conn, "SELECT max(blob_id) FROM agentgit_writes")
    conn.execute("DELETE FROM agentgit_blobs WHERE id = ?", (blob,))
    return {"blob_id": blob}


def garble_compressed_value(conn: sqlite3.Connection) -> dict[str, Any]:
    # A value compressed against hints has no digest: only decoding can tell.
    blob, data = _one(
        conn,
        "SELECT id, data FROM agentgit_blobs WHERE kind = 0 AND deps IS NOT NULL "
        "AND substr(data, 1, 1) = x'01' ORDER BY length(data) DESC LIMIT 1",
    )
    garbled = bytearray(data)
    cut = garbled.index(0) + 1  # after the type name: the zlib stream
    for i in range(cut, min(cut + 8, len(garbled))):
        garbled[i] ^= 0xFF
    conn.execute("UPDATE agentgit_blobs SET data = ? WHERE id = ?", (bytes(garbled), blob))
    return {"blob_id": blob}


def alter_digested_value(conn: sqlite3.Connection) -> dict[str, Any]:
    # Bytes that still decode, but are not the ones stored: only the digest tells.
    blob = _one(conn, "SELECT id FROM agentgit_blobs WHERE digest IS NOT NULL AND kind = 0")
    other = _one(
        conn, "SELECT data FROM agentgit_blobs WHERE kind = 0 AND deps IS NULL AND id <> ?", blob
    )
    conn.execute("UPDATE agentgit_blobs SET data = ? WHERE id = ?", (other, blob))
    return {"blob_id": blob}


def parent_cycle(conn: sqlite3.Connection) -> dict[str, Any]:
    root = _one(conn, "SELECT min(rid) FROM agentgit_checkpoints WHERE parent_rid IS NULL")
    child = _one(conn, "SELECT rid FROM agentgit_checkpoints WHERE parent_rid = ? LIMIT 1", root)
    conn.execute("UPDATE agentgit_checkpoints SET parent_rid = ? WHERE rid = ?", (child, root))
    return {"rids": sorted([root, child])}


def thread_cycle(conn: sqlite3.Connection) -> dict[str, Any]:
    child, parent = _one(
        conn, "SELECT pk, parent_pk FROM agentgit_threads WHERE parent_pk IS NOT NULL"
    )
    conn.execute("UPDATE agentgit_threads SET parent_pk = ? WHERE pk = ?", (child, parent))
    return {"thread_pks": sorted([child, parent])}


def wrong_count(conn: sqlite3.Connection) -> dict[str, Any]:
    pk = _one(conn, "SELECT min(pk) FROM agentgit_threads")
    conn.execute(
        "UPDATE agentgit_threads SET checkpoint_count = checkpoint_count + 2 WHERE pk = ?", (pk,)
    )
    return {"thread_pk": pk}


def dangling_parent(conn: sqlite3.Connection) -> dict[str, Any]:
    rid = _one(conn, "SELECT max(rid) FROM agentgit_checkpoints WHERE parent_rid IS NOT NULL")
    conn.execute(
        "UPDATE agentgit_checkpoints SET parent_rid = 999999, parent_checkpoint_id = NULL "
        "WHERE rid = ?",
        (rid,),
    )
    return {"rid": rid}


def missing_fork_point(conn: sqlite3.Connection) -> dict[str, Any]:
    pk = _one(conn, "SELECT pk FROM agentgit_threads WHERE fork_rid IS NOT NULL")
    conn.execute("UPDATE agentgit_threads SET fork_rid = 999999 WHERE pk = ?", (pk,))
    return {"thread_pk": pk}


def missing_thread(conn: sqlite3.Connection) -> dict[str, Any]:
    rid = _one(conn, "SELECT max(rid) FROM agentgit_checkpoints")
    conn.execute("UPDATE agentgit_checkpoints SET thread_pk = 999999 WHERE rid = ?", (rid,))
    return {"rid": rid}


def bad_refs(conn: sqlite3.Connection) -> dict[str, Any]:
    rid = _one(conn, "SELECT max(rid) FROM agentgit_checkpoints")
    conn.execute("UPDATE agentgit_checkpoints SET refs = '{not json' WHERE rid = ?", (rid,))
    return {"rid": rid}


def lost_current_branch(conn: sqlite3.Connection) -> dict[str, Any]:
    session = _one(conn, "SELECT min(id) FROM agentgit_sessions")
    conn.execute("UPDATE agentgit_sessions SET current_thread_id = 'gone' WHERE id = ?", (session,))
    return {"session_id": session}


def orphan_blob(conn: sqlite3.Connection) -> dict[str, Any]:
    cursor = conn.execute(
        "INSERT INTO agentgit_blobs(digest, kind, deps, data) VALUES (NULL, 0, NULL, ?)",
        (b"\x00msgpack\x00\xc0",),
    )
    return {"blob_id": cursor.lastrowid}


def orphan_session_rows(conn: sqlite3.Connection) -> dict[str, Any]:
    conn.execute(
        "INSERT INTO agentgit_session_threads VALUES ('t-x', 'no-such-session', 0, NULL, NULL, "
        "NULL, '2024-01-01')"
    )
    conn.execute(
        "INSERT INTO agentgit_tags VALUES ('no-such-session', 'tag', 'c', 't-x', '2024-01-01')"
    )
    return {"session_id": "no-such-session"}


def orphan_thread(conn: sqlite3.Connection) -> dict[str, Any]:
    cursor = conn.execute(
        "INSERT INTO agentgit_threads(thread_id, created_at) VALUES ('never-used', '2024-01-01')"
    )
    return {"thread_pk": cursor.lastrowid}


def orphan_writes(conn: sqlite3.Connection) -> dict[str, Any]:
    blob = _one(conn, "SELECT max(blob_id) FROM agentgit_writes")
    conn.execute(
        "INSERT INTO agentgit_writes VALUES (999999, '', 'c', 'task', 0, 'messages', '', ?, NULL)",
        (blob,),
    )
    return {"thread_pk": 999999}


Damage = Callable[[sqlite3.Connection], dict[str, Any]]
# What to do, the kinds it must be reported as (the ids it returned are checked on those),
# and kinds that follow from it (moving a row to a missing thread also leaves its
# thread's count one too high).
DAMAGE: dict[str, tuple[Damage, tuple[str, ...], tuple[str, ...]]] = {
    "delete-blob": (delete_referenced_blob, ("missing-blob",), ()),
    "garble-blob": (garble_compressed_value, ("undecodable-blob",), ()),
    "alter-blob": (alter_digested_value, ("digest-mismatch",), ()),
    "parent-cycle": (parent_cycle, ("parent-cycle",), ()),
    "thread-cycle": (thread_cycle, ("lineage-cycle",), ()),
    "wrong-count": (wrong_count, ("count-mismatch",), ()),
    "dangling-parent": (dangling_parent, ("missing-parent",), ()),
    "fork-point": (missing_fork_point, ("missing-fork-point",), ()),
    "missing-thread": (missing_thread, ("missing-thread",), ("count-mismatch",)),
    "bad-refs": (bad_refs, ("undecodable-checkpoint",), ()),
    "current-branch": (lost_current_branch, ("missing-branch",), ()),
    "orphan-blob": (orphan_blob, ("orphan-blob",), ()),
    "orphan-session-rows": (orphan_session_rows, ("orphan-session-thread", "orphan-tag"), ()),
    "orphan-thread": (orphan_thread, ("orphan-thread",), ()),
    "orphan-writes": (orphan_writes, ("orphan-write",), ()),
}


@pytest.fixture(scope="module")
def healthy_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("healthy") / "healthy.db"
    fill(str(path), turns=3)
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


def test_a_healthy_database_checks_clean(healthy_template: Path) -> None:
    with closing(sqlite3.connect(healthy_template)) as conn:
        report = check(conn)
    assert report.problems == []
    assert report.ok
    assert report.scanned["checkpoints"] > 20 and report.scanned["blobs"] > 20


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_each_kind_of_damage_is_reported_by_name(
    damage: str, healthy_template: Path, tmp_path: Path
) -> None:
    db = tmp_path / "damaged.db"
    shutil.copy(healthy_template, db)
    make, named, following = DAMAGE[damage]
    kinds = {*named, *following}
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        where = make(conn)
        report = check(conn)
    assert set(report.kinds()) == kinds, [p.message for p in report.problems]
    for problem in report.problems:
        if problem.kind in named:
            for key, value in where.items():
                found = problem.ids.get(key)
                assert (sorted(found) if isinstance(found, list) else found) == value, problem
    is_damage = bool(kinds - GARBAGE)
    assert report.ok is not is_damage

    # The command says the same, with exit status 1 for damage.
    result = runner.invoke(app, ["--db", str(db), "check", "--json"])
    assert result.exit_code == (1 if is_damage else 0), result.output
    assert set(json.loads(result.stdout)["kinds"]) == kinds
    text = runner.invoke(app, ["--db", str(db), "check"])
    assert all(f"{kind}: " in text.stdout for kind in kinds), text.stdout

    # --repair removes garbage and fixes counts, and leaves damage alone.
    repaired = runner.invoke(app, ["--db", str(db), "check", "--repair", "--json"])
    after = json.loads(repaired.stdout)
    if kinds <= REPAIRABLE:
        assert repaired.exit_code == 0 and after["problems"] == [], repaired.output
        assert after["repair"]["actions"]
    else:
        assert repaired.exit_code == 1
        assert set(after["kinds"]) == kinds - REPAIRABLE


def test_repair_keeps_what_something_still_refers_to(
    healthy_template: Path, tmp_path: Path
) -> None:
    db = tmp_path / "mixed.db"
    shutil.copy(healthy_template, db)
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        orphan_blob(conn)
        delete_referenced_blob(conn)
        blobs_before = _one(conn, "SELECT count(*) FROM agentgit_blobs")
        conn.execute("BEGIN IMMEDIATE")
        done = repair(conn)
        conn.execute("COMMIT")
        assert done.removed == {"orphan-blob": 1}
        assert _one(conn, "SELECT count(*) FROM agentgit_blobs") == blobs_before - 1
        assert set(check(conn).kinds()) == {"missing-blob"}


def test_library_check_through_the_session_manager(healthy_template: Path, tmp_path: Path) -> None:
    db = tmp_path / "lib.db"
    shutil.copy(healthy_template, db)
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        wrong_count(conn)
        orphan_blob(conn)
    with AgentGitSaver.from_conn_string(str(db)) as saver:
        mgr = SessionManager(saver)
        assert mgr.check().kinds() == {"count-mismatch": 1, "orphan-blob": 1}
        fixed = mgr.check(repair=True)
        assert fixed.problems == [] and fixed.repair is not None
        assert fixed.repair.removed == {"orphan-blob": 1, "count-mismatch": 1}


def test_check_finds_a_cycle_at_the_end_of_a_long_chain(tmp_path: Path) -> None:
    """The scan walks parent links without recursion: a long chain and a cycle at its
    far end are both fine."""
    db = tmp_path / "long.db"
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        from langgraph_agentgit.backends.sqlite.connection import migrate

        migrate(conn)
        conn.execute("INSERT INTO agentgit_threads(thread_id, created_at) VALUES ('t', 'now')")
        body = b"\x00msgpack\x00\x80"
        conn.executemany(
            "INSERT INTO agentgit_checkpoints(thread_pk, ns, checkpoint_id, parent_rid, body, "
            "metadata, refs) VALUES (1, '', ?, ?, ?, '{}', '{}')",
            [(f"c{i:06}", i if i else None, body) for i in range(20000)],
        )
        conn.execute("UPDATE agentgit_checkpoints SET parent_rid = 20000 WHERE rid = 1")
        report = check(conn)
    assert report.kinds() == {"parent-cycle": 1}
    assert len(report.problems[0].ids["rids"]) == 20000


# --- control characters ------------------------------------------------------------------------

HOSTILE = "look \x1b]0;owned\x07\x1b[2J here \x9b31m \x7f and\x00nul \u202egnp.exe"
RAW_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f\x80-\x9f\u202a-\u202e\u2066-\u2069]")


@pytest.fixture
def hostile_db(tmp_path: Path) -> tuple[Path, str]:
    """A database where a user message, the session's name and user, a tag and a thread
    id carry escape sequences, NUL, DEL and C1 controls."""
    db = tmp_path / "hostile.db"
    with AgentGitSaver.from_conn_string(str(db)) as saver:
        graph = create_agent_graph(checkpointer=saver)
        mgr = SessionManager(saver)
        # New thread ids with control characters are refused now; a graph run on a plain
        # thread so named, then adopted, still makes one (NUL aside: no thread is created
        # under an id holding one; the message above carries NUL).
        hostile_thread = "t\x1b[2J\x7f"
        graph.invoke(
            {"messages": [("user", HOSTILE)]}, {"configurable": {"thread_id": hostile_thread}}
        )
        s = mgr.adopt(hostile_thread, user_id="eve", name="n\x1b]0;title\x07")
        mgr.tag(s.id, graph.get_state(mgr.config(s.id)), "tag[/]")
        ids = [t.checkpoint["id"] for t in mgr.checkpoints(s.id)]
        mgr.rollback(s.id, ids[-1])
        graph.invoke({"messages": [("user", "What is 2 * 2?")]}, mgr.config(s.id))
    # Tag names and user ids with control characters are refused now; older databases may
    # hold them.
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE agentgit_tags SET name = ? WHERE name = 'tag[/]'", ("tag\x1b[5m[/]",))
        conn.execute("UPDATE agentgit_sessions SET user_id = ?", ("eve\x1b[31m",))
    return db, s.id


def _commands(session_id: str, db: Path) -> list[list[str]]:
    with closing(sqlite3.connect(db)) as conn:
        a, b = (r[0] for r in conn.execute(
            "SELECT checkpoint_id FROM agentgit_checkpoints ORDER BY rid LIMIT 2"
        ))  # fmt: skip
    base = [["sessions"], ["show", session_id], ["log", session_id], ["tree", session_id],
            ["diff", a, b], ["check"]]  # fmt: skip
    return base + [[*c, "--json"] for c in base]


def test_control_characters_never_reach_the_terminal(hostile_db: tuple[Path, str]) -> None:
    db, session_id = hostile_db
    for command in _commands(session_id, db):
        result = runner.invoke(app, ["--db", str(db), *command])
        assert result.exit_code == 0, (command, result.output)
        assert not RAW_CONTROL.search(result.stdout), (command, result.stdout)
        if "--json" in command:
            json.loads(result.stdout)  # still valid JSON, the characters escaped
    tree = runner.invoke(app, ["--db", str(db), "tree", session_id]).stdout
    assert "␛]0;owned␇␛[2J" in tree  # shown, as visible stand-ins
    shown = runner.invoke(app, ["--db", str(db), "show", session_id]).stdout
    assert "tag␛[5m[/]" in shown  # and not read as Rich markup
    dump = runner.invoke(app, ["--db", str(db), "sessions", "--json"]).stdout
    assert json.loads(dump)[0]["current_thread_id"] != "t\x1b[2J\x7f"  # the rolled-back branch
    assert json.loads(dump)[0]["thread_ids"][0] == "t\x1b[2J\x7f"  # JSON keeps the data


def test_control_characters_never_reach_a_colour_terminal(hostile_db: tuple[Path, str]) -> None:
    """With colours forced on, Rich's own SGR sequences are there, and nothing else."""
    db, session_id = hostile_db
    for command in (["tree", session_id], ["log", session_id], ["show", session_id]):
        done = subprocess.run(
            [sys.executable, "-m", "langgraph_agentgit", "--db", str(db), *command],
            capture_output=True, timeout=120,
            env={**os.environ, "FORCE_COLOR": "1", "COLUMNS": "200"},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        out = done.stdout.decode()
        assert "\x1b[" in out  # coloured
        without_sgr = re.sub(r"\x1b\[[0-9;]*m", "", out)
        assert not RAW_CONTROL.search(without_sgr), (command, without_sgr)


def test_error_messages_are_cleaned_too(hostile_db: tuple[Path, str]) -> None:
    db, _ = hostile_db
    result = runner.invoke(app, ["--db", str(db), "show", "no\x1b]0;x\x07such"])
    assert result.exit_code == 2
    assert not RAW_CONTROL.search(result.stderr.rstrip("\n"))
    assert clean("a\x1bb\x00c\x7fd\x9be\tf\ng") == "a␛b␀c␡d\ufffde f\ng"


def test_read_only_saver_on_a_writable_file_refuses_writes(db_path: str) -> None:
    states = fill(db_path, sessions=1)
    before = row_counts(db_path)
    with AgentGitSaver.from_conn_string(db_path, read_only=True) as saver:
        mgr = SessionManager(saver)
        graph = create_agent_graph(checkpointer=saver)
        session_id = next(iter(states))
        assert [m.content for m in graph.get_state(mgr.config(session_id)).values["messages"]] == (
            states[session_id]
        )
        with pytest.raises(ReadOnlyDatabaseError, match=re.escape(db_path)):
            graph.invoke({"messages": [("user", "hi")]}, mgr.config(session_id))
        with pytest.raises(ReadOnlyDatabaseError):
            saver.delete_thread(mgr.config(session_id)["configurable"]["thread_id"])
    assert row_counts(db_path) == before
    with (
        pytest.raises(FileNotFoundError),
        AgentGitSaver.from_conn_string(db_path + ".missing", read_only=True),
    ):
        pass
    assert not Path(db_path + ".missing").exists()
