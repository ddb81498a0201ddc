"""Quickstart: the checkpointer in a compiled graph, a rollback, and two timelines.

1. Compile a tool-using agent with ``AgentGitSaver`` as its checkpointer.
2. Talk to it in a session (``SessionManager`` keeps track of the session's threads).
3. Roll the session back to the end of the first turn and continue differently.
4. Both timelines are still there: print them side by side, then the session's timeline.

Runs offline: the chat model is a deterministic fake that calls real tools.
The database goes to ``$AGENTGIT_EXAMPLES_DIR/quickstart.db``, else a temporary directory.

    python examples/quickstart.py
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from langgraph_agentgit import AgentGitSaver, SessionManager
from langgraph_agentgit.agents import create_agent_graph, message_preview


def database_path(name: str) -> str:
    """``$AGENTGIT_DB`` (a file, or a ``postgresql://`` URL with the ``postgres`` extra),
    else ``$AGENTGIT_EXAMPLES_DIR/name``, else ``name`` in a new temporary directory."""
    if os.environ.get("AGENTGIT_DB"):
        return os.environ["AGENTGIT_DB"]
    folder = os.environ.get("AGENTGIT_EXAMPLES_DIR") or tempfile.mkdtemp(prefix="agentgit-")
    return str(Path(folder) / name)


def main() -> None:
    path = database_path("quickstart.db")
    with AgentGitSaver.from_conn_string(path) as saver:
        graph = create_agent_graph(checkpointer=saver)
        sessions = SessionManager(saver)
        session = sessions.create_session(user_id="ada", name="quickstart")

        # The session's config points at its current branch; use it like any thread config.
        config = sessions.config(session.id)
        graph.invoke({"messages": [("user", "Where is my order A-1001?")]}, config)
        graph.invoke({"messages": [("user", "What is 2 * 9.99 + 59?")]}, config)

        # The end of each turn is a checkpoint with nothing left to run.
        history = list(graph.get_state_history(config))  # newest first
        turn_ends = [s for s in reversed(history) if not s.next and s.values.get("messages")]
        print(f"{len(history)} checkpoints so far; {len(turn_ends)} turns completed")
        first_turn = turn_ends[0]

        # Roll back: a new branch starts at that checkpoint and becomes current.
        # The original thread keeps its whole history.
        branch = sessions.rollback(session.id, first_turn)
        print(f"rolled back to {first_turn.config['configurable']['checkpoint_id']}")
        print(f"new branch {branch.thread_id} (forked from {branch.parent_thread_id})\n")

        graph.invoke(
            {"messages": [("user", "Actually, I meant order C-3003.")]},
            sessions.config(session.id),
        )

        original = graph.get_state({"configurable": {"thread_id": session.current_thread_id}})
        retried = graph.get_state(sessions.config(session.id))
        for title, snapshot in (("original timeline", original), ("after the rollback", retried)):
            print(f"== {title} ({snapshot.config['configurable']['thread_id']})")
            for message in snapshot.values["messages"]:
                print("  " + message_preview(message, 100))
            print()

        # Both timelines share the first turn and differ after it.
        shared = original.values["messages"][: len(first_turn.values["messages"])]
        assert shared == retried.values["messages"][: len(shared)]
        assert original.values["messages"][-1].content != retried.values["messages"][-1].content

        print(sessions.timeline(session.id))
        updated = sessions.get_session(session.id)
        assert updated is not None
        print(f"\nbranches: {updated.branch_count}, checkpoints: {updated.total_checkpoints}")
        print(f"database: {path}")


if __name__ == "__main__":
    main()
