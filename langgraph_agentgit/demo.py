"""The scenario behind ``agentgit demo``: an agent conversation, a rollback, two timelines.

Kept apart from the CLI so that tests and notebooks can run the same scenario and look
at the result as data::

    from langgraph_agentgit import AgentGitSaver
    from langgraph_agentgit.demo import run_demo

    with AgentGitSaver.from_conn_string("demo.db") as saver:
        result = run_demo(saver)
        print(result.session_id, result.main_head, result.branch_head)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig

from langgraph_agentgit import SessionManager
from langgraph_agentgit.agents import AgentState, create_agent_graph
from langgraph_agentgit.saver_base import AgentGitSaverBase

#: What the user says on each timeline. The first two turns happen before the rollback.
FIRST_TURN = "Hi! Where is my order A-1001?"
SECOND_TURN = "I was charged for 3 cables at 9.99 each. What is 3 * 9.99?"
MAIN_CONTINUES = "So the refund for the extra cable is 3 * 9.99 - 2 * 9.99?"
BRANCH_CONTINUES = "Sorry, I meant order B-2002. Where is that one?"
ROLLBACK_TAG = "after-lookup"

#: Called after each turn with a label ("main", "branch") and the messages it added.
TurnCallback = Callable[[str, Sequence[BaseMessage]], None]


@dataclass(frozen=True)
class DemoResult:
    """What :func:`run_demo` left in the database."""

    session_id: str
    #: The thread the conversation started on.
    main_thread_id: str
    #: The thread the rollback created (the session's current branch afterwards).
    branch_thread_id: str
    #: The checkpoint rolled back to (tagged :data:`ROLLBACK_TAG`).
    rollback_checkpoint_id: str
    #: The newest checkpoint of each timeline.
    main_head: str
    branch_head: str


def _checkpoint_id(config: RunnableConfig) -> str:
    return str(config["configurable"]["checkpoint_id"])


def run_demo(
    saver: AgentGitSaverBase,
    *,
    user_id: str = "demo-user",
    name: str = "order support (agentgit demo)",
    on_turn: TurnCallback | None = None,
) -> DemoResult:
    """Run the demo conversation in a new session of ``saver``'s database.

    1. The user asks about order A-1001 (the agent calls ``lookup_order``); the
       checkpoint after the answer is tagged ``after-lookup``.
    2. The user asks for a sum (the agent calls ``calculator``).
    3. The session is rolled back to ``after-lookup``: a new branch, made current.
    4. The branch asks about another order; the original timeline asks another sum.
    """
    mgr = SessionManager(saver)
    graph = create_agent_graph(checkpointer=saver)
    session = mgr.create_session(
        user_id=user_id, name=name, metadata={"created_by": "agentgit demo"}
    )
    main_thread = session.current_thread_id

    def turn(label: str, config: RunnableConfig, text: str) -> RunnableConfig:
        before = graph.get_state(config).values.get("messages", [])
        inputs: AgentState = {"messages": [HumanMessage(text)]}
        result = graph.invoke(inputs, config)
        if on_turn is not None:
            on_turn(label, result["messages"][len(before) :])
        return graph.get_state(config).config

    turn("main", mgr.config(session.id), FIRST_TURN)
    after_lookup = _checkpoint_id(graph.get_state(mgr.config(session.id)).config)
    mgr.tag(session.id, after_lookup, ROLLBACK_TAG)
    turn("main", mgr.config(session.id), SECOND_TURN)

    branch = mgr.rollback(session.id, ROLLBACK_TAG)
    branch_head = turn("branch", mgr.config(session.id), BRANCH_CONTINUES)
    main_head = turn("main", {"configurable": {"thread_id": main_thread}}, MAIN_CONTINUES)

    return DemoResult(
        session_id=session.id,
        main_thread_id=main_thread,
        branch_thread_id=branch.thread_id,
        rollback_checkpoint_id=after_lookup,
        main_head=_checkpoint_id(main_head),
        branch_head=_checkpoint_id(branch_head),
    )
