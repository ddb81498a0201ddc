"""The graphs the differential fuzzer drives, and what it may feed them.

Each :class:`GraphSpec` is a real, deterministic LangGraph ``StateGraph`` (no network, no
real model: the chat model is scripted) plus named inputs, state updates and ``as_node``
choices the fuzzer draws from. Names keep Hypothesis' printed failing sequences readable
(``state.invoke(thread=0, new=False, inp='sum', use_async=True)``).

Features covered, one graph each so a failure names the feature it came from:

* ``agent`` - messages (``add_messages``) and LangGraph's prebuilt ``ToolNode``: a scripted
  model calls tools (sometimes two in parallel), and one tool asks a human via
  ``interrupt()``;
* ``delta`` - a ``DeltaChannel`` list with a small snapshot frequency, a loop, an
  interrupt, ``Overwrite`` updates;
* ``fanout`` - ``Send`` fan-out to workers, several of which may interrupt at once (resume
  maps keyed by interrupt id);
* ``parallel`` - three parallel nodes behind a waiting edge, two of which may interrupt;
* ``subgraph`` - a compiled subgraph node whose inner node may interrupt.

Nodes that call ``interrupt()`` are wrapped in ``config_context`` (tests/py310.py) so they
interrupt under ``ainvoke`` on Python 3.10 too.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langgraph.channels import DeltaChannel
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Overwrite, Send, interrupt
from py310 import config_context
from typing_extensions import TypedDict


@dataclass(frozen=True)
class GraphSpec:
    """A graph builder and the vocabulary of operations that make sense on it."""

    name: str
    build: Callable[[], StateGraph]
    # name -> a factory (fresh objects every call: LangGraph may mutate inputs).
    inputs: dict[str, Callable[[], Any]]
    # name -> values for update_state (a factory; None means "no values").
    updates: dict[str, Callable[[], Any]]
    # as_node values worth trying besides None, "__copy__", "__input__" and "__end__".
    nodes: tuple[str, ...]
    resume_values: tuple[str, ...] = ("yes", "no")
    notes: tuple[str, ...] = field(default_factory=tuple)


# --- agent: messages + ToolNode + an interrupting tool ------------------------------------------


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def ask_human(question: str) -> str:
    """Ask the human a question; the graph pauses until it is answered."""
    answer = interrupt({"question": question})
    return f"human said {answer}"


class ScriptedModel(BaseChatModel):
    """Calls ``add`` on the numbers of the last human message (twice, in parallel, for
    "twice"), ``ask_human`` when asked to ask, otherwise answers; after tool results it
    summarizes them. Message and tool-call ids are derived from the history length, so
    every saver sees the same ids."""

    @property
    def _llm_type(self) -> str:
        return "fuzz-scripted"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> ScriptedModel:
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        n = len(messages)
        last = messages[-1]
        if isinstance(last, ToolMessage):
            results = []
            for m in reversed(messages):
                if not isinstance(m, ToolMessage):
                    break
                results.append(str(m.content))
            reply = AIMessage(content="done: " + "; ".join(reversed(results)), id=f"ai-{n}")
        else:
            text = str(last.content)
            numbers = [int(x) for x in re.findall(r"-?\d+", text)]
            calls: list[dict[str, Any]] = []
            if "ask" in text:
                calls.append({"name": "ask_human", "args": {"question": text}, "id": f"c{n}-q"})
            elif len(numbers) >= 2:
                calls.append({"name": "add", "args": {"a": numbers[0], "b": numbers[1]}})
                if "twice" in text:
                    calls.append({"name": "add", "args": {"a": numbers[1], "b": numbers[1]}})
                for i, call in enumerate(calls):
                    call["id"] = f"c{n}-{i}"
            reply = (
                AIMessage(content="", tool_calls=calls, id=f"ai-{n}")
                if calls
                else AIMessage(content=f"echo {n}: {text}", id=f"ai-{n}")
            )
        return ChatResult(generations=[ChatGeneration(message=reply)])


class AgentState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def build_agent() -> StateGraph:
    model = ScriptedModel().bind_tools([add, ask_human])

    def agent(state: AgentState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(AgentState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode([add, ask_human]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder


def _user(text: str, msg_id: str | None = None) -> Callable[[], Any]:
    # Without an id, add_messages gives the message a random uuid: exercises the
    # normalization of random message ids.
    return lambda: {"messages": [HumanMessage(content=text, id=msg_id)]}


AGENT = GraphSpec(
    name="agent",
    build=build_agent,
    inputs={
        "sum": _user("2 and 3"),
        "sum_twice": _user("4 and 5 twice"),
        "ask": _user("please ask me", "h-ask"),
        "chat": _user("hello there", "h-chat"),
    },
    updates={
        "none": lambda: None,
        "human": lambda: {"messages": [HumanMessage(content="7 and 8", id="h-upd")]},
        "ai": lambda: {"messages": [AIMessage(content="patched answer", id="ai-upd")]},
        "tool_call": lambda: {
            "messages": [
                AIMessage(
                    content="",
                    id="ai-upd-call",
                    tool_calls=[{"name": "add", "args": {"a": 1, "b": 1}, "id": "c-upd"}],
                )
            ]
        },
    },
    nodes=("agent", "tools"),
)


# --- delta: a DeltaChannel list --------------------------------------------------------------


def concat(state: list[Any], writes: Sequence[list[Any]]) -> list[Any]:
    """DeltaChannel reducer: append every write's items (batching-invariant)."""
    out = list(state)
    for items in writes:
        out.extend(items)
    return out


class DeltaState(TypedDict, total=False):
    # A small snapshot frequency so histories mix snapshot and sentinel checkpoints.
    items: Annotated[list[str], DeltaChannel(concat, snapshot_frequency=3)]
    budget: int
    rounds: int
    pause: bool


def build_delta() -> StateGraph:
    def step(state: DeltaState) -> dict[str, Any]:
        rounds = state.get("rounds", 0) + 1
        return {
            "items": [f"r{rounds}"],
            "rounds": rounds,
            "budget": state.get("budget", 0) - 1,
        }

    def more(state: DeltaState) -> str:
        return "step" if state.get("budget", 0) > 0 else "check"

    @config_context
    def check(state: DeltaState) -> dict[str, Any]:
        if state.get("pause"):
            answer = interrupt({"rounds": state.get("rounds", 0), "n": len(state["items"])})
            return {"items": [f"ans:{answer}"], "pause": False}
        return {"items": ["checked"]}

    builder = StateGraph(DeltaState)
    builder.add_node("step", step)
    builder.add_node("check", check)
    builder.add_edge(START, "step")
    builder.add_conditional_edges("step", more, ["step", "check"])
    builder.add_edge("check", END)
    return builder


DELTA = GraphSpec(
    name="delta",
    build=build_delta,
    inputs={
        "two": lambda: {"items": ["in-a"], "budget": 2},
        "four": lambda: {"items": ["in-b", "in-c"], "budget": 4},
        "pause": lambda: {"items": ["in-p"], "budget": 1, "pause": True},
        "empty": lambda: {"budget": 0},
    },
    updates={
        "none": lambda: None,
        "item": lambda: {"items": ["upd"]},
        "overwrite": lambda: {"items": Overwrite(["reset"])},
        "budget": lambda: {"budget": 2, "pause": True},
    },
    nodes=("step", "check"),
)


# --- fanout: Send to workers that may interrupt ---------------------------------------------------


class FanState(TypedDict, total=False):
    results: Annotated[list[str], operator.add]
    jobs: int
    pause_at: list[int]
    round: int


class WorkArg(TypedDict):
    i: int
    round: int
    pause: bool


def build_fanout() -> StateGraph:
    def plan(state: FanState) -> dict[str, Any]:
        return {"round": state.get("round", 0) + 1}

    def dispatch(state: FanState) -> list[Send] | str:
        jobs = state.get("jobs", 0)
        if jobs <= 0:
            return "collect"
        pause_at = state.get("pause_at") or []
        return [
            Send("work", {"i": i, "round": state["round"], "pause": i in pause_at})
            for i in range(jobs)
        ]

    @config_context
    def work(arg: WorkArg) -> dict[str, Any]:
        label = f"r{arg['round']}w{arg['i']}"
        if arg["pause"]:
            answer = interrupt({"job": arg["i"], "round": arg["round"]})
            return {"results": [f"{label}:{answer}"]}
        return {"results": [label]}

    def collect(state: FanState) -> dict[str, Any]:
        return {"results": [f"collected {len(state.get('results', []))}"]}

    builder = StateGraph(FanState)
    builder.add_node("plan", plan)
    builder.add_node("work", work, input_schema=WorkArg)
    builder.add_node("collect", collect)
    builder.add_edge(START, "plan")
    builder.add_conditional_edges("plan", dispatch, ["work", "collect"])
    builder.add_edge("work", "collect")
    builder.add_edge("collect", END)
    return builder


FANOUT = GraphSpec(
    name="fanout",
    build=build_fanout,
    inputs={
        "three": lambda: {"jobs": 3, "pause_at": []},
        "pause_one": lambda: {"jobs": 2, "pause_at": [1]},
        "pause_two": lambda: {"jobs": 3, "pause_at": [0, 2]},
        "none": lambda: {"jobs": 0},
    },
    updates={
        "none": lambda: None,
        "result": lambda: {"results": ["upd"]},
        "jobs": lambda: {"jobs": 2, "pause_at": [0]},
        "overwrite": lambda: {"results": Overwrite(["reset"])},
    },
    nodes=("plan", "work", "collect"),
)


# --- parallel: three nodes behind a waiting edge -------------------------------------------------


class ParState(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    pause: list[str]
    total: int


def build_parallel() -> StateGraph:
    def branch(name: str) -> Callable[..., dict[str, Any]]:
        @config_context
        def node(state: ParState) -> dict[str, Any]:
            if name in (state.get("pause") or []):
                answer = interrupt({"node": name, "seen": len(state.get("log", []))})
                return {"log": [f"{name}:{answer}"]}
            return {"log": [name]}

        return node

    def join(state: ParState) -> dict[str, Any]:
        return {"log": ["join"], "total": len(state.get("log", [])), "pause": []}

    builder = StateGraph(ParState)
    for name in ("a", "b", "c"):
        builder.add_node(name, branch(name))
        builder.add_edge(START, name)
    builder.add_node("join", join)
    builder.add_edge(["a", "b", "c"], "join")
    builder.add_edge("join", END)
    return builder


PARALLEL = GraphSpec(
    name="parallel",
    build=build_parallel,
    inputs={
        "go": lambda: {"log": ["go"], "pause": []},
        "pause_a": lambda: {"log": ["pa"], "pause": ["a"]},
        "pause_ab": lambda: {"log": ["pab"], "pause": ["a", "b"]},
        "nothing": lambda: {"pause": []},
    },
    updates={
        "none": lambda: None,
        "log": lambda: {"log": ["upd"]},
        "pause": lambda: {"pause": ["c"]},
        "total": lambda: {"total": 99},
    },
    nodes=("a", "b", "c", "join"),
)


# --- subgraph: a compiled subgraph node that may interrupt -----------------------------------


class InnerState(TypedDict, total=False):
    log: Annotated[list[str], operator.add]
    ask: bool


class OuterState(TypedDict, total=False):
    # The subgraph hands its whole log back: a reducer here would append the part the
    # parent passed in a second time.
    log: list[str]
    ask: bool


def build_subgraph() -> StateGraph:
    def inner1(state: InnerState) -> dict[str, Any]:
        return {"log": ["inner1"]}

    @config_context
    def ask(state: InnerState) -> dict[str, Any]:
        if not state.get("ask"):
            return {"log": ["ask:auto"]}
        reply = interrupt({"inner_log": list(state.get("log", []))})
        return {"log": [f"ask:{reply}"]}

    def inner2(state: InnerState) -> dict[str, Any]:
        return {"log": ["inner2"]}

    sub = StateGraph(InnerState)
    sub.add_node("inner1", inner1)
    sub.add_node("ask", ask)
    sub.add_node("inner2", inner2)
    sub.add_edge(START, "inner1")
    sub.add_edge("inner1", "ask")
    sub.add_edge("ask", "inner2")
    sub.add_edge("inner2", END)

    def prepare(state: OuterState) -> dict[str, Any]:
        return {"log": [*state.get("log", []), "prepare"]}

    def done(state: OuterState) -> dict[str, Any]:
        return {"log": [*state.get("log", []), "done"]}

    builder = StateGraph(OuterState)
    builder.add_node("prepare", prepare)
    # Compiled without a checkpointer: it stores its checkpoints through the parent's
    # saver under its own checkpoint_ns.
    builder.add_node("sub", sub.compile())
    builder.add_node("done", done)
    builder.add_edge(START, "prepare")
    builder.add_edge("prepare", "sub")
    builder.add_edge("sub", "done")
    builder.add_edge("done", END)
    return builder


SUBGRAPH = GraphSpec(
    name="subgraph",
    build=build_subgraph,
    inputs={
        "auto": lambda: {"log": ["in"], "ask": False},
        "ask": lambda: {"log": ["in-ask"], "ask": True},
        "ask_only": lambda: {"ask": True},
    },
    updates={
        "none": lambda: None,
        "log": lambda: {"log": ["replaced"]},
        "ask": lambda: {"ask": True},
    },
    nodes=("prepare", "sub", "done"),
)


SPECS: dict[str, GraphSpec] = {s.name: s for s in (AGENT, DELTA, FANOUT, PARALLEL, SUBGRAPH)}
