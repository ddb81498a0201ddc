"""The graph the example server serves: ``START → a → ask → b``, deterministic.

``ask`` stops the run with LangGraph's ``interrupt`` and records the answer it is resumed
with (``Command(resume=...)``), so a thread has a checkpoint waiting on a human, one
before it and one after it: enough to exercise history, forks and Studio's
"re-run from here" without a chat model.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict


class State(TypedDict):
    # Each node appends what it did; the reducer keeps the whole trail.
    steps: Annotated[list[str], operator.add]


def a(state: State) -> dict[str, Any]:
    return {"steps": ["a"]}


def ask(state: State) -> dict[str, Any]:
    answer = interrupt({"question": "continue?", "seen": list(state["steps"])})
    return {"steps": [f"ask:{answer}"]}


def b(state: State) -> dict[str, Any]:
    return {"steps": ["b"]}


builder = StateGraph(State)
builder.add_node("a", a)
builder.add_node("ask", ask)
builder.add_node("b", b)
builder.add_edge(START, "a")
builder.add_edge("a", "ask")
builder.add_edge("ask", "b")
builder.add_edge("b", END)

# Compiled without a checkpointer: the server supplies one (ours, through langgraph.json).
graph = builder.compile()
