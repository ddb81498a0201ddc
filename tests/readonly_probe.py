"""What a process sees of a database in a location it cannot write, as JSON on stdout.

Run by ``tests/test_faults.py`` as ``python tests/readonly_probe.py DB`` — directly when
the directory is made read-only in the test's own mount namespace (``chattr +i``), and
inside a private mount namespace where the directory is a read-only bind mount (the test
process cannot see that mount, so the probe has to run in there). It touches the
database through the library (sync and async savers, a compiled graph) and through the
CLI, and reports what each step gave; the test compares that with what the database
held before it became read-only.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

from typer.testing import CliRunner

from langgraph_agentgit import (
    AgentGitSaver,
    AsyncAgentGitSaver,
    ReadOnlyDatabaseError,
    SessionManager,
)
from langgraph_agentgit.agents import create_agent_graph
from langgraph_agentgit.cli import app


def outcome(fn: Any) -> dict[str, Any]:
    try:
        return {"ok": fn()}
    except Exception as exc:
        return {"error": type(exc).__name__, "message": str(exc)}


def sessions_seen(saver: Any) -> dict[str, list[str]]:
    """Every session's current state, as its message texts."""
    mgr = SessionManager(saver)
    graph = create_agent_graph(checkpointer=saver)
    return {
        s.id: [str(m.content) for m in graph.get_state(mgr.config(s.id)).values["messages"]]
        for s in mgr.list_sessions()
    }


def probe(db: str) -> dict[str, Any]:
    result: dict[str, Any] = {}

    def read_only() -> dict[str, Any]:
        with AgentGitSaver.from_conn_string(db, read_only=True) as saver:
            seen = sessions_seen(saver)
            mgr = SessionManager(saver)
            graph = create_agent_graph(checkpointer=saver)
            first = next(iter(seen))
            return {
                "sessions": seen,
                "check_ok": mgr.check().ok,
                "write_session": outcome(lambda: mgr.create_session(name="x")),
                "write_turn": outcome(
                    lambda: graph.invoke({"messages": [("user", "hi")]}, mgr.config(first))
                ),
                "rollback": outcome(
                    lambda: mgr.rollback(
                        first, mgr.checkpoints(first)[-1].config["configurable"]["checkpoint_id"]
                    )
                ),
            }

    result["read_only"] = outcome(read_only)

    async def async_read_only() -> dict[str, Any]:
        async with AsyncAgentGitSaver.from_conn_string(db, read_only=True) as saver:
            mgr = SessionManager(saver)
            sessions = await mgr.alist_sessions()
            first = sessions[0].id
            tuple_ = await saver.aget_tuple(await mgr.aconfig(first))
            try:
                await mgr.acreate_session(name="x")
                write: dict[str, Any] = {"ok": None}
            except ReadOnlyDatabaseError as exc:
                write = {"error": type(exc).__name__, "message": str(exc)}
            return {
                "sessions": sorted(s.id for s in sessions),
                "messages": len(tuple_.checkpoint["channel_values"]["messages"])
                if tuple_
                else None,
                "write": write,
            }

    result["async_read_only"] = outcome(lambda: asyncio.run(async_read_only()))

    runner = CliRunner()
    cli: dict[str, Any] = {}
    for name, args in {
        "sessions": ["sessions", "--json"],
        "tree": ["tree", "SESSION"],
        "check": ["check", "--json"],
        "tag": ["tag", "SESSION", "CHECKPOINT", "new-tag"],
        "check_repair": ["check", "--repair"],
    }.items():
        if "SESSION" in args:
            ids = (result["read_only"].get("ok") or {}).get("sessions") or {"missing": []}
            args = [next(iter(ids)) if a == "SESSION" else a for a in args]
        args = ["1f" if a == "CHECKPOINT" else a for a in args]
        ran = runner.invoke(app, ["--db", db, *args])
        cli[name] = {"exit": ran.exit_code, "stdout": ran.stdout, "stderr": ran.stderr}
    result["cli"] = cli

    # Last, as it may succeed (a writer's open -wal file can still be written).
    def plain_write() -> str:
        with AgentGitSaver.from_conn_string(db) as saver:
            return SessionManager(saver).create_session(name="written").id

    result["plain_write"] = outcome(plain_write)
    return result


if __name__ == "__main__":
    json.dump(probe(sys.argv[1]), sys.stdout)
