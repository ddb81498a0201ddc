"""Human in the loop: an ``interrupt``, a rollback to before it, a different answer.

The agent's ``refund_order`` tool asks a human to approve every refund with LangGraph's
``interrupt``. On the main timeline the human says no. Then the session is rolled back
to the checkpoint where the agent was waiting for the answer, and on that branch the
human says yes: one conversation, two outcomes, both kept.

Runs offline. The database goes to ``$AGENTGIT_EXAMPLES_DIR/human_in_the_loop.db``, else
a temporary directory.

    python examples/human_in_the_loop.py
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from langchain_core.tools import tool
from langgraph.types import Command, interrupt

from langgraph_agentgit import AgentGitSaver, SessionManager
from langgraph_agentgit.agents import ORDERS, TOOLS, create_agent_graph, message_preview

REFUNDS: list[str] = []  # what the (pretend) payment system has refunded


@tool
def refund_order(order_id: str) -> str:
    """Refund an order in full. A human must approve every refund."""
    order = ORDERS[order_id]
    total = sum(qty * price for _, qty, price in order["items"])
    # Execution stops here until the graph is resumed with Command(resume=...).
    answer = interrupt({"question": f"Refund ${total:.2f} for order {order_id}?"})
    if str(answer).strip().lower() not in ("yes", "y", "approve"):
        return f"Refund of order {order_id} was declined by a human ({answer!r})."
    REFUNDS.append(order_id)
    return f"Refunded ${total:.2f} for order {order_id}."


def database_path(name: str) -> str:
    """``$AGENTGIT_DB`` (a file, or a ``postgresql://`` URL with the ``postgres`` extra),
    else ``$AGENTGIT_EXAMPLES_DIR/name``, else ``name`` in a new temporary directory."""
    if os.environ.get("AGENTGIT_DB"):
        return os.environ["AGENTGIT_DB"]
    folder = os.environ.get("AGENTGIT_EXAMPLES_DIR") or tempfile.mkdtemp(prefix="agentgit-")
    return str(Path(folder) / name)


def main() -> None:
    with AgentGitSaver.from_conn_string(database_path("human_in_the_loop.db")) as saver:
        graph = create_agent_graph(checkpointer=saver, tools=[*TOOLS, refund_order])
        sessions = SessionManager(saver)
        session = sessions.create_session(user_id="ada", name="refund approval")
        config = sessions.config(session.id)

        result = graph.invoke({"messages": [("user", "Please refund order A-1001.")]}, config)
        question = result["__interrupt__"][0].value["question"]
        waiting = graph.get_state(config)
        print(f"interrupted before {waiting.next}: {question}")
        # Name the checkpoint where the agent waits for a human, to come back to it.
        sessions.tag(session.id, waiting, "awaiting-approval")

        graph.invoke(Command(resume="no"), config)
        print("main timeline, human said no:")
        print("  " + message_preview(graph.get_state(config).values["messages"][-2], 100))

        # Roll back to before the answer was given, and give the other answer.
        branch = sessions.rollback(session.id, "awaiting-approval")
        branch_config = sessions.config(session.id)
        replay = graph.get_state(branch_config)
        print(f"\nrolled back to {branch.fork_checkpoint_id}: next is {replay.next}")
        graph.invoke(Command(resume="yes"), branch_config)
        print("branch timeline, human said yes:")
        print("  " + message_preview(graph.get_state(branch_config).values["messages"][-2], 100))

        main_messages = graph.get_state(config).values["messages"]
        branch_messages = graph.get_state(branch_config).values["messages"]
        assert "declined" in main_messages[-1].content
        assert "Refunded" in branch_messages[-1].content
        assert REFUNDS == ["A-1001"], REFUNDS  # the declined timeline refunded nothing

        print()
        print(sessions.timeline(session.id))
        print()
        print(sessions.diff(graph.get_state(config), graph.get_state(branch_config)))


if __name__ == "__main__":
    main()
