"""The process that ``tests/test_faults.py`` kills: a real compiled tool agent on an
``AgentGitSaver`` and a ``SessionManager``, doing turns, rollbacks, branch and session
deletions at random on a database file that other such processes share, until it is
killed.

It keeps a journal (one JSON object per line, one ``write`` each, so a line is whole or
absent after SIGKILL):

* ``{"op": "put", "t": thread, "c": checkpoint, "n": messages}`` — written after
  ``put`` has returned, i.e. after its transaction committed;
* ``{"op": "branch", "s": session, "t": thread}`` — before anything is written into a
  thread, the session it belongs to;
* ``{"op": "delete-session", "s": session}`` / ``{"op": "delete-branch", "s": ...,
  "t": ...}`` — written *before* the deletion starts, so that a deletion a kill
  interrupted is known too;
* ``{"op": "begin", "what": ...}`` / ``{"op": "end"}`` around each operation, so the
  killer knows what it interrupted;
* ``{"op": "error", ...}`` for an exception that is not an expected race with another
  process (the test fails on those).
"""

from __future__ import annotations

import json
import os
import random
import traceback
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import ChannelVersions, Checkpoint, CheckpointMetadata

from langgraph_agentgit import (
    AgentGitSaver,
    BranchNotFoundError,
    CheckpointNotFoundError,
    LastBranchError,
    SessionManager,
    SessionNotFoundError,
    ThreadNotFoundError,
)
from langgraph_agentgit.agents import create_agent_graph

try:  # a deletion racing a run: the run's next write is refused (when the saver knows)
    from langgraph_agentgit import ThreadDeletedError

    _RACES: tuple[type[BaseException], ...] = (ThreadDeletedError,)
except ImportError:  # pragma: no cover - older package
    _RACES = ()

# What another process may legitimately do to this one's session between two calls.
RACES = (
    *_RACES,
    SessionNotFoundError,
    BranchNotFoundError,
    CheckpointNotFoundError,
    ThreadNotFoundError,
    LastBranchError,
)
SESSIONS = 4


class Journal:
    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def __call__(self, **entry: Any) -> None:
        os.write(self.fd, (json.dumps(entry) + "\n").encode())


class RecordingSaver(AgentGitSaver):
    """An AgentGitSaver that notes each checkpoint once ``put`` has committed it."""

    journal: Journal

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        stored = super().put(config, checkpoint, metadata, new_versions)
        if not stored["configurable"].get("checkpoint_ns"):
            messages = checkpoint["channel_values"].get("messages")
            self.journal(
                op="put",
                t=stored["configurable"]["thread_id"],
                c=stored["configurable"]["checkpoint_id"],
                n=len(messages) if isinstance(messages, list) else None,
            )
        return stored


def run(db: str, journal_path: str, seed: int) -> None:
    """Work on ``db`` until killed (the test's entry point in a child process)."""
    rng = random.Random(seed)
    journal = Journal(journal_path)
    with RecordingSaver.from_conn_string(db) as saver:
        saver.journal = journal
        graph = create_agent_graph(checkpointer=saver)
        mgr = SessionManager(saver)
        journal(op="ready", pid=os.getpid())
        turn = 0
        while True:
            turn += 1
            try:
                step(rng, mgr, graph, journal, f"{seed}-{turn}")
            except RACES as exc:
                journal(op="race", error=type(exc).__name__)
            except Exception as exc:
                journal(op="error", error=repr(exc), traceback=traceback.format_exc())
            journal(op="end")


def step(rng: random.Random, mgr: SessionManager, graph: Any, journal: Journal, tag: str) -> None:
    sessions = mgr.list_sessions()
    if len(sessions) < SESSIONS:
        journal(op="begin", what="create")
        created = mgr.create_session(user_id="fault", name=f"session {tag}")
        journal(op="branch", s=created.id, t=created.current_thread_id)
        return
    session = rng.choice(sessions)
    roll = rng.random()
    if roll < 0.65:
        journal(op="begin", what="turn")
        config = mgr.config(session.id)
        journal(op="branch", s=session.id, t=config["configurable"]["thread_id"])
        a, b = rng.randint(2, 99), rng.randint(2, 99)
        question = (
            f"Where is my order A-{a}?" if rng.random() < 0.5 else f"What is {a} * {b}? ({tag})"
        )
        graph.invoke({"messages": [("user", question)]}, config)
    elif roll < 0.87:
        journal(op="begin", what="rollback")
        history = mgr.checkpoints(session.id)
        if history:
            target = rng.choice(history).config["configurable"]["checkpoint_id"]
            branch = mgr.rollback(session.id, target)
            journal(op="branch", s=session.id, t=branch.thread_id)
    elif roll < 0.97:
        journal(op="begin", what="delete-branch")
        branches = mgr.branches(session.id)
        if len(branches) > 1:
            victim = rng.choice(branches)
            journal(op="delete-branch", s=session.id, t=victim.thread_id)
            mgr.delete_branch(session.id, victim.thread_id)
    else:
        journal(op="begin", what="delete-session")
        # The two oldest sessions are never deleted, so that much history survives.
        oldest = {s.id for s in sorted(sessions, key=lambda s: s.created_at)[:2]}
        if session.id not in oldest:
            journal(op="delete-session", s=session.id)
            mgr.delete_session(session.id)


def read_journal(path: str) -> list[dict[str, Any]]:
    """The journal's whole lines (a line cut by the kill, if any, is dropped)."""
    entries = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.endswith("\n"):
                entries.append(json.loads(line))
    return entries
