"""The scenario behind ``agentgit demo``: an agent conversation, a rollback that undoes a
tool's side effect, two timelines.

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
from dataclasses import dataclass, field

from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, tool

from langgraph_agentgit import SessionManager
from langgraph_agentgit.agents import TOOLS, AgentState, create_agent_graph
from langgraph_agentgit.effects import Effect, PlannedEffect, RollbackResult
from langgraph_agentgit.saver_base import AgentGitSaverBase

#: What the user says on each timeline. The first two turns happen before the rollback.
FIRST_TURN = "Hi! Where is my order A-1001?"
SECOND_TURN = "I was charged for 3 cables at 9.99 each, please refund A-1001. What is 3 * 9.99?"
MAIN_CONTINUES = "So the refund for the extra cable is 3 * 9.99 - 2 * 9.99?"
BRANCH_CONTINUES = "Sorry, I meant order B-2002. Where is that one?"
ROLLBACK_TAG = "after-lookup"

#: Called after each turn with a label ("main", "branch") and the messages it added.
TurnCallback = Callable[[str, Sequence[BaseMessage]], None]


@dataclass
class DemoShop:
    """The demo's back office, in memory: the refunds the agent's ``refund_order`` tool
    issued, by refund id (``R-1``, ...), each ``{"order_id", "status"}`` with status
    ``"issued"``, or ``"cancelled"`` once a rollback undid it."""

    refunds: dict[str, dict[str, str]] = field(default_factory=dict)

    def tools(self) -> list[BaseTool]:
        """``lookup_order``, ``calculator`` and a ``refund_order`` writing to this shop."""

        @tool(response_format="content_and_artifact")
        def refund_order(order_id: str) -> tuple[str, dict[str, str]]:
            """Refund an order (e.g. A-1001)."""
            refund_id = f"R-{len(self.refunds) + 1}"
            self.refunds[refund_id] = {"order_id": order_id, "status": "issued"}
            return f"Refund {refund_id} issued for order {order_id}.", {"refund_id": refund_id}

        return [*TOOLS, refund_order]

    def cancel_refund(self, effect: Effect) -> None:
        """The undo handler of ``refund_order``: cancel the refund the call issued."""
        self.refunds[effect.artifact["refund_id"]]["status"] = "cancelled"


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
    #: The shop the agent's tools wrote to (its refund is cancelled by the rollback).
    shop: DemoShop | None = None
    #: What ``rollback(..., undo_effects=True)`` did with each abandoned tool call.
    undo: RollbackResult | None = None
    #: The tool calls before the fork point, kept by the rollback (newest first).
    kept: tuple[PlannedEffect, ...] = ()


def _checkpoint_id(config: RunnableConfig) -> str:
    return str(config["configurable"]["checkpoint_id"])


def run_demo(
    saver: AgentGitSaverBase,
    *,
    user_id: str = "demo-user",
    name: str = "order support (agentgit demo)",
    on_turn: TurnCallback | None = None,
    shop: DemoShop | None = None,
) -> DemoResult:
    """Run the demo conversation in a new session of ``saver``'s database.

    1. The user asks about order A-1001 (the agent calls ``lookup_order``); the
       checkpoint after the answer is tagged ``after-lookup``.
    2. The user asks for a refund and a sum (the agent calls ``refund_order``, which
       issues a refund in ``shop``, and ``calculator``).
    3. The session is rolled back to ``after-lookup`` with ``undo_effects=True``: a new
       branch, made current, and the refund is cancelled by its undo handler; the
       lookup before the fork point is kept.
    4. The branch asks about another order; the original timeline asks another sum.
    """
    shop = shop if shop is not None else DemoShop()
    mgr = SessionManager(saver, undo={"refund_order": shop.cancel_refund})
    graph = create_agent_graph(checkpointer=saver, tools=shop.tools())
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

    undo = mgr.rollback(session.id, ROLLBACK_TAG, undo_effects=True)
    undo.raise_for_failures()
    kept = tuple(mgr.effects(session.id))  # the new branch's history: before the fork
    branch_head = turn("branch", mgr.config(session.id), BRANCH_CONTINUES)
    main_head = turn("main", {"configurable": {"thread_id": main_thread}}, MAIN_CONTINUES)

    return DemoResult(
        session_id=session.id,
        main_thread_id=main_thread,
        branch_thread_id=undo.branch_thread_id,
        rollback_checkpoint_id=after_lookup,
        main_head=_checkpoint_id(main_head),
        branch_head=_checkpoint_id(branch_head),
        shop=shop,
        undo=undo,
        kept=kept,
    )
