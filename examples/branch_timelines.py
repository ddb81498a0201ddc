"""Branch timelines: several branches, a branch of a branch, and how to read them back.

A conversation of three turns is branched at the end of turn 1 twice and at the end of
turn 2 once, and one of the branches is branched again. The script then prints the
session's timeline as text and as Mermaid (paste it into any Mermaid renderer), and
walks the branches programmatically: parent, fork point, own checkpoints, last message.

Runs offline. The database goes to ``$AGENTGIT_EXAMPLES_DIR/branch_timelines.db``,
else a temporary directory.

    python examples/branch_timelines.py
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from langgraph.types import StateSnapshot

from langgraph_agentgit import AgentGitSaver, Branch, SessionManager
from langgraph_agentgit.agents import create_agent_graph, message_preview


def database_path(name: str) -> str:
    """``$AGENTGIT_DB`` (a file, or a ``postgresql://`` URL with the ``postgres`` extra),
    else ``$AGENTGIT_EXAMPLES_DIR/name``, else ``name`` in a new temporary directory."""
    if os.environ.get("AGENTGIT_DB"):
        return os.environ["AGENTGIT_DB"]
    folder = os.environ.get("AGENTGIT_EXAMPLES_DIR") or tempfile.mkdtemp(prefix="agentgit-")
    return str(Path(folder) / name)


def turn_ends(history: list[StateSnapshot]) -> list[StateSnapshot]:
    """The checkpoints at the end of each turn, oldest first (nothing left to run)."""
    return [s for s in reversed(history) if not s.next and s.values.get("messages")]


def main() -> None:
    with AgentGitSaver.from_conn_string(database_path("branch_timelines.db")) as saver:
        graph = create_agent_graph(checkpointer=saver)
        sessions = SessionManager(saver)
        session = sessions.create_session(user_id="grace", name="branching")
        main_config = sessions.config(session.id)

        def say(config: dict, text: str) -> None:
            graph.invoke({"messages": [("user", text)]}, config)

        say(main_config, "Where is order A-1001?")
        say(main_config, "What is 2 * 9.99?")
        say(main_config, "Thanks!")
        ends = turn_ends(list(graph.get_state_history(main_config)))

        # Two alternative second turns, forked from the end of turn 1.
        b_orders = sessions.branch(session.id, ends[0], name="other-order")
        say(b_orders.config, "Sorry, I meant B-2002.")
        b_math = sessions.branch(session.id, ends[0], name="other-sum")
        say(b_math.config, "What is 3 * 9.99?")

        # An alternative third turn, forked from the end of turn 2.
        b_third = sessions.branch(session.id, ends[1], name="follow-up")
        say(b_third.config, "And C-3003?")

        # A branch of a branch: from the end of other-order's own turn.
        fork_point = turn_ends(list(graph.get_state_history(b_orders.config)))[-1]
        b_nested = sessions.branch(session.id, fork_point, name="other-order-sum")
        say(b_nested.config, "What is 89.50 + 4.99 shipping?")

        timeline = sessions.timeline(session.id)
        print("== timeline (text)")
        print(timeline)
        print("\n== timeline (Mermaid)")
        print(timeline.to_mermaid())

        print("\n== walking the branches")
        branches = sessions.branches(session.id)  # oldest first
        by_thread = {b.thread_id: b for b in branches}
        children: dict[str | None, list[Branch]] = {}
        for b in branches:
            children.setdefault(b.parent_thread_id, []).append(b)

        def walk(branch: Branch, depth: int) -> None:
            last = graph.get_state(branch.config).values["messages"][-1]
            parent = by_thread.get(branch.parent_thread_id or "")
            origin = (
                f"forked from {parent.name or parent.thread_id} at {branch.fork_checkpoint_id}"
                if parent is not None
                else "root"
            )
            print(
                f"{'  ' * depth}- {branch.name or branch.thread_id}: {origin}; "
                f"{branch.checkpoint_count} own checkpoints; last: {message_preview(last, 50)}"
            )
            for child in children.get(branch.thread_id, []):
                walk(child, depth + 1)

        for root in children.get(None, []):
            walk(root, 0)

        assert len(branches) == 5, [b.thread_id for b in branches]
        assert by_thread[b_nested.thread_id].parent_thread_id == b_orders.thread_id
        updated = sessions.get_session(session.id)
        assert updated is not None
        print(f"\nbranches: {updated.branch_count}, checkpoints: {updated.total_checkpoints}")


if __name__ == "__main__":
    main()
