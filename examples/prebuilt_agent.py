"""LangGraph's prebuilt ReAct agent with the agentgit checkpointer, rolled back and branched.

Uses LangChain's ``create_agent`` when the ``langchain`` package is installed, else
LangGraph's ``create_react_agent`` (which LangGraph 1.x still ships, marked as moved to
``langchain.agents``). Either way the model is the deterministic ``FakeToolCallingModel``,
so this runs offline; with a real provider model nothing else changes.

The database goes to ``$AGENTGIT_EXAMPLES_DIR/prebuilt_agent.db``, else a temporary
directory.

    python examples/prebuilt_agent.py
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool

from langgraph_agentgit import AgentGitSaver, SessionManager
from langgraph_agentgit.agents import TOOLS, FakeToolCallingModel, message_preview


def database_path(name: str) -> str:
    """``$AGENTGIT_DB`` (a file, or a ``postgresql://`` URL with the ``postgres`` extra),
    else ``$AGENTGIT_EXAMPLES_DIR/name``, else ``name`` in a new temporary directory."""
    if os.environ.get("AGENTGIT_DB"):
        return os.environ["AGENTGIT_DB"]
    folder = os.environ.get("AGENTGIT_EXAMPLES_DIR") or tempfile.mkdtemp(prefix="agentgit-")
    return str(Path(folder) / name)


def prebuilt_agent(model: BaseChatModel, tools: Sequence[BaseTool], checkpointer: Any) -> Any:
    """LangChain's ``create_agent`` if installed, else LangGraph's ``create_react_agent``."""
    try:
        from langchain.agents import create_agent
    except ImportError:
        from langgraph.prebuilt import create_react_agent

        print("using langgraph.prebuilt.create_react_agent")
        with warnings.catch_warnings():
            # "moved to langchain.agents": true, and langchain is not installed here.
            warnings.simplefilter("ignore")
            return create_react_agent(model, list(tools), checkpointer=checkpointer)
    print("using langchain.agents.create_agent")
    return create_agent(model, list(tools), checkpointer=checkpointer)


def main() -> None:
    with AgentGitSaver.from_conn_string(database_path("prebuilt_agent.db")) as saver:
        agent = prebuilt_agent(FakeToolCallingModel(), TOOLS, saver)
        sessions = SessionManager(saver)
        session = sessions.create_session(user_id="linus", name="prebuilt agent")
        main_thread = session.current_thread_id

        config = sessions.config(session.id)
        agent.invoke({"messages": [("user", "Where are orders A-1001 and C-3003?")]}, config)
        checkpoint_after_lookup = agent.get_state(config)
        agent.invoke({"messages": [("user", "What is 78.98 + 89.50?")]}, config)
        sessions.tag(session.id, checkpoint_after_lookup, "looked-up")

        # Roll back by tag name, and ask something else on the new branch.
        branch = sessions.rollback(session.id, "looked-up")
        agent.invoke(
            {"messages": [("user", "What is 78.98 - 10 for the discount?")]},
            sessions.config(session.id),
        )

        for title, thread_id in (("original", main_thread), ("branch", branch.thread_id)):
            messages = agent.get_state({"configurable": {"thread_id": thread_id}}).values[
                "messages"
            ]
            print(f"\n== {title} timeline ({thread_id})")
            for message in messages:
                print("  " + message_preview(message, 100))

        print()
        print(sessions.timeline(session.id))
        print()
        print(
            sessions.diff(
                agent.get_state({"configurable": {"thread_id": main_thread}}),
                agent.get_state(branch.config),
            )
        )


if __name__ == "__main__":
    main()
