"""A deterministic tool-calling chat model and a small tool-using agent to run it in.

Everything the demo, the examples, the notebooks and the tests need to show an agent
being rolled back and branched, with no API key and no network:

* :class:`FakeToolCallingModel` — a real LangChain ``BaseChatModel`` whose replies,
  ``tool_calls`` included, come either from a script or from a simple rule on the
  conversation. Replies depend only on the conversation so far, so a rolled-back branch
  that is sent the same message gets the same answer, and a different message a
  different one.
* :func:`lookup_order` and :func:`calculator` — real LangChain tools run by LangGraph's
  prebuilt ``ToolNode``.
* :func:`build_agent` / :func:`create_agent_graph` — the classic model ⇄ tools loop.

::

    from langgraph_agentgit import AgentGitSaver
    from langgraph_agentgit.agents import create_agent_graph

    with AgentGitSaver.from_conn_string("chat.db") as saver:
        graph = create_agent_graph(checkpointer=saver)
        config = {"configurable": {"thread_id": "t1"}}
        graph.invoke({"messages": [("user", "Where is order A-1001?")]}, config)
"""

from __future__ import annotations

import ast
import operator
import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypedDict

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, tool
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode, tools_condition

from langgraph_agentgit.views.text import message_preview as _message_preview

__all__ = [
    "ORDERS",
    "TOOLS",
    "AgentState",
    "FakeToolCallingModel",
    "build_agent",
    "calculator",
    "create_agent_graph",
    "lookup_order",
    "message_preview",
    "rule_based_reply",
]

# --- tools -------------------------------------------------------------------------------

ORDERS: dict[str, dict[str, Any]] = {
    "A-1001": {
        "customer": "Ada",
        "items": [("USB-C cable", 2, 9.99), ("headphones", 1, 59.00)],
        "status": "shipped",
        "eta": "Thursday",
    },
    "B-2002": {
        "customer": "Grace",
        "items": [("mechanical keyboard", 1, 89.50)],
        "status": "processing",
        "eta": "next week",
    },
    "C-3003": {
        "customer": "Linus",
        "items": [("monitor arm", 1, 45.00), ("desk lamp", 2, 22.25)],
        "status": "delivered",
        "eta": "delivered on Monday",
    },
}


@tool
def lookup_order(order_id: str) -> str:
    """Look up an order by its id (e.g. A-1001): customer, items, total and shipping status."""
    order = ORDERS.get(order_id.strip().upper())
    if order is None:
        return f"No order {order_id!r}. Known orders: {', '.join(sorted(ORDERS))}."
    items = ", ".join(f"{qty} x {name} @ ${price:.2f}" for name, qty, price in order["items"])
    total = sum(qty * price for _, qty, price in order["items"])
    return (
        f"Order {order_id.upper()} for {order['customer']}: {items}; total ${total:.2f}; "
        f"status {order['status']} (ETA {order['eta']})."
    )


_BINARY_OPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY_OPS: dict[type[ast.unaryop], Callable[[Any], Any]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


def _evaluate(node: ast.AST) -> float | int:
    # A tiny interpreter instead of eval(): the expression comes from a model's tool call.
    if isinstance(node, ast.Expression):
        return _evaluate(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY_OPS:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 100:
            raise ValueError("exponent too large")
        result: float | int = _BINARY_OPS[type(node.op)](left, right)
        return result
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY_OPS:
        value: float | int = _UNARY_OPS[type(node.op)](_evaluate(node.operand))
        return value
    raise ValueError(f"unsupported expression element: {ast.dump(node)[:40]}")


@tool
def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression with + - * / // % ** and parentheses, e.g. 3 * 19.99."""
    try:
        value = _evaluate(ast.parse(expression.strip(), mode="eval"))
    except (SyntaxError, ValueError, ZeroDivisionError, OverflowError) as exc:
        return f"Cannot evaluate {expression!r}: {exc}"
    if isinstance(value, float):
        value = round(value, 6)
        if value.is_integer():
            value = int(value)
    return f"{expression.strip()} = {value}"


TOOLS: list[BaseTool] = [lookup_order, calculator]

# --- the fake model --------------------------------------------------------------------------

_ORDER_ID = re.compile(r"\b[A-Za-z]-\d{4}\b")
_NUMBER = r"\d+(?:\.\d+)?"
_EXPRESSION = re.compile(rf"\(*{_NUMBER}\)*(?:\s*(?:\*\*|//|[-+*/%])\s*\(*{_NUMBER}\)*)+")


def _text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    parts = [p if isinstance(p, str) else str(p.get("text", "")) for p in content]
    return " ".join(parts)


def rule_based_reply(messages: Sequence[BaseMessage], tool_names: Sequence[str]) -> AIMessage:
    """The reply :class:`FakeToolCallingModel` gives when it has no script.

    * After tool results: a final answer quoting them.
    * After a user message naming orders (``A-1001``) or containing arithmetic
      (``3 * 19.99``): one tool call per order / expression, if that tool is bound. An
      order named in a message that asks for a refund goes to a ``refund_order`` tool
      instead of ``lookup_order``, when one is bound.
    * Otherwise: a short answer that says what it can do.
    """
    if not messages:
        return AIMessage(content="Hello! Ask me about an order (e.g. A-1001) or a sum.")
    last = messages[-1]
    if isinstance(last, ToolMessage):
        results: list[str] = []
        for message in reversed(messages):
            if not isinstance(message, ToolMessage):
                break
            results.append(_text(message))
        return AIMessage(content="Here is what I found: " + " ".join(reversed(results)))
    if not isinstance(last, HumanMessage):
        return AIMessage(content="Anything else I can help with?")

    text = _text(last)
    calls: list[dict[str, Any]] = []
    wants_refund = "refund_order" in tool_names and re.search(r"\brefund", text, re.IGNORECASE)
    order_tool = "refund_order" if wants_refund else "lookup_order"
    if order_tool in tool_names:
        for order_id in dict.fromkeys(m.upper() for m in _ORDER_ID.findall(text)):
            calls.append({"name": order_tool, "args": {"order_id": order_id}})
    if "calculator" in tool_names:
        # Order ids like A-1001 look like subtractions; blank them out first.
        for expression in _EXPRESSION.findall(_ORDER_ID.sub(" ", text)):
            calls.append({"name": "calculator", "args": {"expression": expression.strip()}})
    if calls:
        tool_calls = [
            {**call, "id": f"call_{len(messages)}_{i}", "type": "tool_call"}
            for i, call in enumerate(calls)
        ]
        return AIMessage(content="", tool_calls=tool_calls)
    if re.search(r"\b(thanks|thank you)\b", text, re.IGNORECASE):
        return AIMessage(content="You're welcome!")
    return AIMessage(
        content=f"You said: {text!r}. I can look up orders (e.g. A-1001) and do arithmetic."
    )


class FakeToolCallingModel(BaseChatModel):
    """A deterministic chat model that can call tools; no network, no API key.

    With ``script`` set, the reply is ``script[n]`` where ``n`` is the number of AI
    messages already in the conversation — so replies follow the conversation, not the
    number of calls made, and a rolled-back branch replays the script from where it
    forked. Script entries are :class:`AIMessage` objects (tool calls included) or
    plain strings. Without a script, :func:`rule_based_reply` decides.

    ``bind_tools`` works like a real provider's: it returns a binding that passes the
    tools' schemas to every call, and the rule only calls tools that were bound::

        model = FakeToolCallingModel().bind_tools([lookup_order, calculator])
        model.invoke("What is 2 + 3?").tool_calls
        # [{'name': 'calculator', 'args': {'expression': '2 + 3'}, 'id': 'call_1_0', ...}]
    """

    # Any, not ``AIMessage | str``: pydantic would try AIMessage's validators on a str.
    script: list[Any] | None = None

    @property
    def _llm_type(self) -> str:
        return "fake-tool-calling"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        tools: list[dict[str, Any]] = kwargs.get("tools") or []
        tool_names = [t["function"]["name"] for t in tools if "function" in t]
        if self.script is not None:
            turn = sum(isinstance(m, AIMessage) for m in messages)
            if turn >= len(self.script):
                raise IndexError(
                    f"FakeToolCallingModel script has {len(self.script)} replies; "
                    f"reply {turn + 1} was asked for"
                )
            entry = self.script[turn]
            reply = entry.model_copy() if isinstance(entry, AIMessage) else AIMessage(str(entry))
        else:
            reply = rule_based_reply(messages, tool_names)
        return ChatResult(generations=[ChatGeneration(message=reply)])

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools the way provider models do: their OpenAI-style schemas become a
        ``tools`` keyword argument of every call."""
        formatted = [convert_to_openai_tool(t) for t in tools]
        return self.bind(tools=formatted, **kwargs)


# --- the agent -------------------------------------------------------------------------------


class AgentState(TypedDict):
    """The agent's state: a message list merged with LangGraph's ``add_messages``."""

    messages: Annotated[list[AnyMessage], add_messages]


def build_agent(
    model: BaseChatModel | None = None, tools: Sequence[BaseTool] | None = None
) -> StateGraph[AgentState, None, AgentState, AgentState]:
    """The uncompiled agent graph: ``START → agent ⇄ tools``.

    ``model`` defaults to :class:`FakeToolCallingModel` and ``tools`` to :data:`TOOLS`.
    The ``agent`` node calls the model with the tools bound; ``tools_condition`` routes
    to LangGraph's prebuilt ``ToolNode`` while the reply has tool calls, else ends.
    """
    tool_list = list(TOOLS if tools is None else tools)
    bound = (model or FakeToolCallingModel()).bind_tools(tool_list)

    def agent(state: AgentState) -> dict[str, list[BaseMessage]]:
        return {"messages": [bound.invoke(state["messages"])]}

    builder = StateGraph(AgentState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode(tool_list))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder


def create_agent_graph(
    checkpointer: BaseCheckpointSaver[Any] | None = None,
    *,
    model: BaseChatModel | None = None,
    tools: Sequence[BaseTool] | None = None,
) -> CompiledStateGraph[AgentState, None, AgentState, AgentState]:
    """:func:`build_agent` compiled with ``checkpointer`` (e.g. an ``AgentGitSaver``)."""
    return build_agent(model, tools).compile(checkpointer=checkpointer)


def message_preview(message: BaseMessage | None, width: int = 60) -> str:
    """One line describing a message: ``user: …``, ``ai → calculator(…)``, ``tool: …``.

    Used by the CLI's listings and the examples; long text is cut to ``width``. The
    views layer's rule (:func:`langgraph_agentgit.views.text.message_preview`).
    """
    return _message_preview(message, width)
