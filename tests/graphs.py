"""Small, deterministic LangGraph graphs that the tests run against real savers.

Every builder returns an *uncompiled* ``StateGraph`` so a test can compile the same graph
with an AgentGit saver and with LangGraph's own ``InMemorySaver`` and compare the two.
Nothing here calls a network or a real model: the chat models are scripted.
"""

from __future__ import annotations

import dataclasses
import operator
import re
from collections.abc import Sequence
from typing import Annotated, Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langgraph.channels import DeltaChannel
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Interrupt, interrupt
from py310 import config_context
from pydantic import BaseModel
from typing_extensions import TypedDict

# --- a plain chat graph -------------------------------------------------------------------


class ChatState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def build_chat_graph() -> StateGraph:
    """START -> chat -> END; ``chat`` answers the last message with a deterministic id, so
    two savers running the same inputs produce equal states."""

    def chat(state: ChatState) -> dict[str, Any]:
        n = len(state["messages"])
        last = state["messages"][-1]
        return {"messages": [AIMessage(content=f"echo {n}: {last.content}", id=f"ai-{n}")]}

    builder = StateGraph(ChatState)
    builder.add_node("chat", chat)
    builder.add_edge(START, "chat")
    builder.add_edge("chat", END)
    return builder


def build_edit_graph() -> StateGraph:
    """START -> edit -> END on the chat state; ``edit`` changes the first message *in
    place* and returns it (``add_messages`` replaces it by id). In-place edits are legal
    Python in a node, and LangGraph's own savers keep older checkpoints unaffected."""

    def edit(state: ChatState) -> dict[str, Any]:
        first = state["messages"][0]
        first.content = f"{first.content} (edited)"
        return {"messages": [first]}

    builder = StateGraph(ChatState)
    builder.add_node("edit", edit)
    builder.add_edge(START, "edit")
    builder.add_edge("edit", END)
    return builder


# --- a tool-calling agent ------------------------------------------------------------------


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


class ScriptedToolModel(BaseChatModel):
    """A chat model that asks for the ``add`` tool on the first two integers of the last
    human message, then reports the tool's result. Deterministic, offline."""

    @property
    def _llm_type(self) -> str:
        return "scripted-tool-model"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedToolModel:
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        last = messages[-1]
        n = len(messages)
        if isinstance(last, ToolMessage):
            reply = AIMessage(content=f"the sum is {last.content}", id=f"model-{n}")
        else:
            a, b = (int(x) for x in re.findall(r"-?\d+", str(last.content))[:2])
            reply = AIMessage(
                content="",
                id=f"model-{n}",
                tool_calls=[{"name": "add", "args": {"a": a, "b": b}, "id": f"call-{n}"}],
            )
        return ChatResult(generations=[ChatGeneration(message=reply)])


def build_tool_agent(model: Any, tools: Sequence[Any], state: Any = None) -> StateGraph:
    """agent <-> tools (LangGraph's prebuilt ``ToolNode``) until ``model`` stops calling."""

    def agent(values: dict[str, Any]) -> dict[str, Any]:
        return {"messages": [model.invoke(values["messages"])]}

    builder = StateGraph(state or ChatState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode(list(tools)))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder


def build_agent_graph() -> StateGraph:
    """The scripted adding agent: the model calls ``add`` on the numbers it is given."""
    return build_tool_agent(ScriptedToolModel().bind_tools([add]), [add])


# --- a graph that interrupts -----------------------------------------------------------------


class ApprovalState(TypedDict, total=False):
    steps: Annotated[list[str], operator.add]
    answer: str


def build_interrupt_graph() -> StateGraph:
    """draft -> review (``interrupt()`` asking for an answer) -> finish."""

    def draft(state: ApprovalState) -> dict[str, Any]:
        return {"steps": ["draft"]}

    @config_context
    def review(state: ApprovalState) -> dict[str, Any]:
        answer = interrupt({"question": "approve?", "seen": list(state["steps"])})
        return {"steps": [f"review:{answer}"], "answer": answer}

    def finish(state: ApprovalState) -> dict[str, Any]:
        return {"steps": ["finish"]}

    builder = StateGraph(ApprovalState)
    builder.add_node("draft", draft)
    builder.add_node("review", review)
    builder.add_node("finish", finish)
    builder.add_edge(START, "draft")
    builder.add_edge("draft", "review")
    builder.add_edge("review", "finish")
    builder.add_edge("finish", END)
    return builder


# --- a graph with a subgraph -----------------------------------------------------------------


class LogState(TypedDict):
    # The subgraph appends to its log...
    log: Annotated[list[str], operator.add]


class ParentLogState(TypedDict):
    # ...and hands the whole log back: the parent keeps it as is (a reducer here would
    # append the part it passed in a second time).
    log: list[str]


def build_subgraph_graph(*, with_interrupt: bool = True) -> StateGraph:
    """prepare -> sub (inner1 -> ask -> inner2, ``ask`` may interrupt) -> done.

    The subgraph is compiled without a checkpointer, so it stores its checkpoints through
    the parent's saver under its own ``checkpoint_ns``.
    """

    def inner1(state: LogState) -> dict[str, Any]:
        return {"log": ["inner1"]}

    @config_context
    def ask(state: LogState) -> dict[str, Any]:
        if not with_interrupt:
            return {"log": ["ask:auto"]}
        reply = interrupt({"inner_log": list(state["log"])})
        return {"log": [f"ask:{reply}"]}

    def inner2(state: LogState) -> dict[str, Any]:
        return {"log": ["inner2"]}

    sub = StateGraph(LogState)
    sub.add_node("inner1", inner1)
    sub.add_node("ask", ask)
    sub.add_node("inner2", inner2)
    sub.add_edge(START, "inner1")
    sub.add_edge("inner1", "ask")
    sub.add_edge("ask", "inner2")
    sub.add_edge("inner2", END)

    def prepare(state: ParentLogState) -> dict[str, Any]:
        return {"log": [*state["log"], "prepare"]}

    def done(state: ParentLogState) -> dict[str, Any]:
        return {"log": [*state["log"], "done"]}

    builder = StateGraph(ParentLogState)
    builder.add_node("prepare", prepare)
    builder.add_node("sub", sub.compile())
    builder.add_node("done", done)
    builder.add_edge(START, "prepare")
    builder.add_edge("prepare", "sub")
    builder.add_edge("sub", "done")
    builder.add_edge("done", END)
    return builder


# --- a graph whose list is a DeltaChannel ------------------------------------------------------


def concat(state: list[Any], writes: Sequence[list[Any]]) -> list[Any]:
    """DeltaChannel reducer: append every write's items (batching-invariant)."""
    out = list(state)
    for items in writes:
        out.extend(items)
    return out


DELTA_SNAPSHOT_FREQUENCY = 4


class DeltaState(TypedDict, total=False):
    items: Annotated[list[Any], DeltaChannel(concat, snapshot_frequency=DELTA_SNAPSHOT_FREQUENCY)]
    rounds: int
    target: int


def build_delta_graph() -> StateGraph:
    """``step`` appends one item per superstep until ``rounds`` reaches ``target``.

    With a snapshot every few updates, most checkpoints store no value for ``items`` and
    LangGraph rebuilds it from ``get_delta_channel_history``.
    """

    def step(state: DeltaState) -> dict[str, Any]:
        rounds = state.get("rounds", 0) + 1
        return {"items": [f"item-{rounds}"], "rounds": rounds}

    def more(state: DeltaState) -> str:
        return "step" if state.get("rounds", 0) < state.get("target", 0) else END

    builder = StateGraph(DeltaState)
    builder.add_node("step", step)
    builder.add_edge(START, "step")
    builder.add_conditional_edges("step", more, ["step", END])
    return builder


# --- helpers to compare states across savers ---------------------------------------------------


def comparable(value: Any) -> Any:
    """``value`` with every message replaced by its type, content and tool data, and every
    ``Interrupt`` by its value, so states of two savers compare equal although LangGraph
    gave some messages and interrupts ids that differ between runs."""
    if isinstance(value, Interrupt):
        return {"interrupt": comparable(value.value)}
    if isinstance(value, BaseMessage):
        out: dict[str, Any] = {"type": value.type, "content": value.content}
        if isinstance(value, AIMessage) and value.tool_calls:
            out["tool_calls"] = [(c["name"], c["args"], c["id"]) for c in value.tool_calls]
        if isinstance(value, ToolMessage):
            out["tool_call_id"] = value.tool_call_id
        return out
    if isinstance(value, dict):
        return {k: comparable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [comparable(v) for v in value]
    return value


# --- a graph whose state holds user types ---------------------------------------------------------


@dataclasses.dataclass
class Order:
    """A user dataclass kept in graph state."""

    sku: str
    qty: int


class Note(BaseModel):
    """A user Pydantic model kept in graph state."""

    text: str


class TypedState(TypedDict, total=False):
    order: Order
    note: Note
    count: int


def build_typed_state_graph() -> StateGraph:
    """``bump`` reads attributes of the stored ``Order`` and ``Note``: it fails if the saver
    hands back plain dicts instead of the user's types."""

    def bump(state: TypedState) -> dict[str, Any]:
        order, note = state["order"], state["note"]
        return {
            "order": Order(order.sku, order.qty + 1),
            "note": Note(text=note.text + "!"),
            "count": state.get("count", 0) + 1,
        }

    builder = StateGraph(TypedState)
    builder.add_node("bump", bump)
    builder.add_edge(START, "bump")
    builder.add_edge("bump", END)
    return builder
