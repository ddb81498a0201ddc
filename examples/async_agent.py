"""The quickstart flow, async: ``AsyncAgentGitSaver``, ``ainvoke`` and ``arollback``.

Every ``SessionManager`` method has an async twin with an ``a`` prefix
(``acreate_session``, ``aconfig``, ``arollback``, ``atimeline``, ...), which never block
the event loop. Two conversations run concurrently in one database to show it.

Runs offline. The database goes to ``$AGENTGIT_EXAMPLES_DIR/async_agent.db``, else a
temporary directory.

    python examples/async_agent.py
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path

from langgraph.graph.state import CompiledStateGraph

from langgraph_agentgit import AsyncAgentGitSaver, SessionManager
from langgraph_agentgit.agents import create_agent_graph, message_preview


def database_path(name: str) -> str:
    """``$AGENTGIT_DB`` (a file, or a ``postgresql://`` URL with the ``postgres`` extra),
    else ``$AGENTGIT_EXAMPLES_DIR/name``, else ``name`` in a new temporary directory."""
    if os.environ.get("AGENTGIT_DB"):
        return os.environ["AGENTGIT_DB"]
    folder = os.environ.get("AGENTGIT_EXAMPLES_DIR") or tempfile.mkdtemp(prefix="agentgit-")
    return str(Path(folder) / name)


async def conversation(
    graph: CompiledStateGraph, sessions: SessionManager, user: str, order: str
) -> str:
    """Two turns, a rollback to the end of the first, a different second turn.

    Returns the session id.
    """
    session = await sessions.acreate_session(user_id=user, name=f"{user}'s order")
    config = await sessions.aconfig(session.id)
    await graph.ainvoke({"messages": [("user", f"Where is order {order}?")]}, config)
    after_first = await graph.aget_state(config)
    await graph.ainvoke({"messages": [("user", "What is 10 * 4.5?")]}, config)

    branch = await sessions.arollback(session.id, after_first)
    await graph.ainvoke(
        {"messages": [("user", "Never mind the sum: what is 7 + 8?")]},
        await sessions.aconfig(session.id),
    )

    original = await graph.aget_state({"configurable": {"thread_id": session.current_thread_id}})
    retried = await graph.aget_state(branch.config)
    print(f"[{user}] original: {message_preview(original.values['messages'][-1], 70)}")
    print(f"[{user}] branch:   {message_preview(retried.values['messages'][-1], 70)}")
    assert original.values["messages"][-1].content != retried.values["messages"][-1].content
    return session.id


async def main() -> None:
    async with AsyncAgentGitSaver.from_conn_string(database_path("async_agent.db")) as saver:
        graph = create_agent_graph(checkpointer=saver)
        sessions = SessionManager(saver)
        session_ids = await asyncio.gather(
            conversation(graph, sessions, "ada", "A-1001"),
            conversation(graph, sessions, "linus", "C-3003"),
        )
        for session_id in session_ids:
            print()
            print(await sessions.atimeline(session_id))
        listed = await sessions.alist_sessions()
        print(f"\n{len(listed)} sessions, {sum(s.branch_count for s in listed)} branches")


if __name__ == "__main__":
    asyncio.run(main())
