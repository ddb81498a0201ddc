"""``prune(keep_latest)`` keeps ancestors for a ``DeltaChannel`` that was never written.

KNOWN_DIVERGENCES key: "prune:keep_latest:unwritten-delta".
Found by tests/fuzz (delta graph). ``prune`` keeps, besides the latest checkpoint, the
ancestors its ``DeltaChannel`` values are rebuilt from. It decides which channels need
that from ``counters_since_delta_snapshot`` in the metadata, which LangGraph also fills
for a delta channel that has never been written (counter ``[0, n]``, no entry in
``channel_versions``). LangGraph rebuilds only channels that have a version
(``langgraph.pregel._checkpoint._delta_channels_to_replay``), so nothing needs those
ancestors, yet they stay in the history. Reference (InMemorySaver + the base class's
"keep what the rebuild walks" rule): only the latest checkpoint remains.
Suggested fix: only channels present in the head's ``channel_versions``.

Run: .venv/bin/python tests/fuzz/repros/repro_prune_unwritten_delta.py
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from langgraph.channels import DeltaChannel
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from langgraph_agentgit import AgentGitSaver


def concat(state: list[Any], writes: Sequence[list[Any]]) -> list[Any]:
    return [*state, *(x for w in writes for x in w)]


class S(TypedDict, total=False):
    items: Annotated[list[str], DeltaChannel(concat, snapshot_frequency=3)]
    budget: int


def build() -> StateGraph:
    b = StateGraph(S)
    b.add_node("a", lambda s: {"budget": 1})
    b.add_edge(START, "a")
    b.add_edge("a", END)
    return b


def run(saver: Any, prune: Any) -> list[str]:
    graph = build().compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "t"}}
    graph.invoke({"budget": 0}, config)  # "items" is never written
    prune(saver)
    return [s.metadata["source"] for s in graph.get_state_history(config)]


def reference_prune(saver: InMemorySaver) -> None:
    # Nothing to rebuild ("items" has no version): only the latest checkpoint stays.
    rows = saver.storage["t"][""]
    for cid in [c for c in rows if c != max(rows)]:
        del rows[cid]


expected = run(InMemorySaver(), reference_prune)
with AgentGitSaver.from_conn_string(":memory:") as ours:
    got = run(ours, lambda s: s.prune(["t"], strategy="keep_latest"))
print("reference:", expected)  # ['loop']
print("agentgit: ", got)  # ['loop', 'loop', 'input']
assert got == expected
