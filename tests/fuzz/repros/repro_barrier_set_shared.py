"""An older checkpoint's waiting-edge barrier changes after later steps (shared set).

KNOWN_DIVERGENCES key: "shared-values@parallel".
Found by tests/fuzz (parallel graph). A waiting edge (``add_edge(["a", "b", "c"], "join")``)
is a ``NamedBarrierValue`` channel whose checkpoint value is a ``set``. LangGraph's
``from_checkpoint`` adopts the set it is given and ``update`` adds to it *in place*. The
saver hands out the same decoded set object it caches for the stored checkpoint, so
whatever LangGraph adds while running from a checkpoint is added to that checkpoint's
cached value too: ``list``/``get_state_history`` then show older checkpoints with a barrier
that is further along than it was, and ``next`` includes ``join`` where it must not.
(A reopened saver reads the file correctly; ``cache_size=0`` also avoids it.) The
README's "Shared decoded values" section covers lists, not sets.

Run: .venv/bin/python tests/fuzz/repros/repro_barrier_set_shared.py
"""

from __future__ import annotations

import operator
from typing import Annotated, Any

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from langgraph_agentgit import AgentGitSaver


class S(TypedDict):
    log: Annotated[list[str], operator.add]


def build() -> StateGraph:
    b = StateGraph(S)
    for name in ("a", "b", "c"):
        b.add_node(name, lambda s, name=name: {"log": [name]})
        b.add_edge(START, name)
    b.add_node("join", lambda s: {"log": ["join"]})
    b.add_edge(["a", "b", "c"], "join")
    b.add_edge("join", END)
    return b


def run(saver: Any) -> list[tuple[str, tuple[str, ...]]]:
    graph = build().compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "t"}}
    graph.update_state(config, {"log": ["x"]}, as_node="a")
    graph.update_state(config, None, as_node="b")
    graph.invoke({"log": ["go"]}, config)
    return [(s.metadata["source"], s.next) for s in graph.get_state_history(config)]


expected = run(InMemorySaver())
with AgentGitSaver.from_conn_string(":memory:") as ours:
    got = run(ours)
print("reference:", expected)
print("agentgit: ", got)
# reference: [..., ('loop', ('a', 'b', 'c')), ('input', ('__start__',)),
#             ('update', ()), ('update', ())]
# agentgit:  [..., ('loop', ('a', 'b', 'c', 'join')), ('input', ('__start__', 'join')),
#             ('update', ('join',)), ('update', ())]
assert got == expected
