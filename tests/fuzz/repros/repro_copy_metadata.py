"""``update_state(config_at_checkpoint, None, as_node="__copy__")`` drops the caller's
metadata.

KNOWN_DIVERGENCES key: "update_state:__copy__-metadata".
Found by tests/fuzz (agent graph). For ``__copy__`` LangGraph stores the copy with
``checkpointer.put(saved.parent_config or saved.config, ...)``, where ``saved`` is what
``get_tuple(config)`` returned. For a config naming a checkpoint, InMemorySaver and
SqliteSaver return the caller's config object itself (``config=config``), so the caller's
``metadata`` (here a ``run_id``; any user key likewise) lands in the copy's checkpoint
metadata. AgentGitSaver's ``get_tuple`` returns a config it builds, so the copy's metadata
lacks those keys. (``delete_for_runs`` then cannot find the copy by its run id.) Only the
first checkpoint of a thread shows it (later ones are put under ``saved.parent_config``,
which no saver carries metadata in).

Run: .venv/bin/python tests/fuzz/repros/repro_copy_metadata.py
"""

from __future__ import annotations

import operator
from typing import Annotated, Any

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from langgraph_agentgit import AgentGitSaver


class S(TypedDict):
    log: Annotated[list[str], operator.add]


def build() -> StateGraph:
    b = StateGraph(S)
    b.add_node("a", lambda s: {"log": ["a"]})
    b.add_edge(START, "a")
    b.add_edge("a", END)
    return b


def run(saver: Any) -> dict[str, Any]:
    graph = build().compile(checkpointer=saver)
    thread = {"configurable": {"thread_id": "t"}}
    graph.update_state(thread, {"log": ["x"]}, as_node="a")
    at = graph.get_state(thread).config
    graph.update_state({**at, "metadata": {"run_id": "run-2"}}, None, as_node="__copy__")
    return graph.get_state(thread).metadata


expected = run(InMemorySaver())
with SqliteSaver.from_conn_string(":memory:") as sqlite:
    assert run(sqlite) == expected
with AgentGitSaver.from_conn_string(":memory:") as ours:
    got = run(ours)
print("reference:", expected)  # {'source': 'fork', 'step': 1, 'parents': {}, 'run_id': 'run-2'}
print("agentgit: ", got)  # {'source': 'fork', 'step': 1, 'parents': {}}
assert got == expected
