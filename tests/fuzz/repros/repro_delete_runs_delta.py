"""``delete_for_runs`` changes the ``DeltaChannel`` values of checkpoints it keeps.

KNOWN_DIVERGENCES key: "delete_for_runs@delta".
Found by tests/fuzz (delta graph). A ``DeltaChannel`` value between snapshots is rebuilt
from the writes stored at its ancestors. Deleting the first run of a thread removes those
ancestors, so the second run's input checkpoint (kept) reads ``[]`` instead of
``["run-1", "a"]`` (its later checkpoints hold snapshots and read right).
``BaseCheckpointSaver.delete_for_runs`` warns that a naive implementation does this and
``prune`` lists the safe ways (keep what the rebuild reads, or snapshot the survivors
first); the reference (tests/fuzz/fuzz_reference.py) snapshots, so no kept checkpoint
changes. ``prune(keep_latest)`` is already safe in AgentGitSaver.

Run: .venv/bin/python tests/fuzz/repros/repro_delete_runs_delta.py
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from langgraph.channels import DeltaChannel
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from langgraph_agentgit import AgentGitSaver


def concat(state: list[Any], writes: Sequence[list[Any]]) -> list[Any]:
    return [*state, *(x for w in writes for x in w)]


class S(TypedDict, total=False):
    items: Annotated[list[str], DeltaChannel(concat, snapshot_frequency=3)]


def build() -> StateGraph:
    b = StateGraph(S)
    b.add_node("a", lambda s: {"items": ["a"]})
    b.add_edge(START, "a")
    b.add_edge("a", END)
    return b


def run(saver: Any, delete_run: Any) -> list[list[str]]:
    graph = build().compile(checkpointer=saver)
    for run_id in ("run-1", "run-2"):
        config = {"configurable": {"thread_id": "t"}, "metadata": {"run_id": run_id}}
        graph.invoke({"items": [run_id]}, config)
    delete_run(saver, "run-1")
    return [
        s.values.get("items") for s in graph.get_state_history({"configurable": {"thread_id": "t"}})
    ]


def reference_delete_run(saver: InMemorySaver, run_id: str) -> None:
    """What surviving checkpoints read must not change: read them all first, then delete
    the run and store each survivor's value (the base class's 'force a fresh snapshot')."""
    graph = build().compile(checkpointer=saver)
    config = {"configurable": {"thread_id": "t"}}
    before = {s.config["configurable"]["checkpoint_id"]: s for s in graph.get_state_history(config)}
    rows = saver.storage["t"][""]
    for cid, row in list(rows.items()):
        if saver.serde.loads_typed(row[1]).get("run_id") == run_id:
            del rows[cid]
        else:
            version = saver.serde.loads_typed(row[0])["channel_versions"].get("items")
            if version is not None:
                value = _DeltaSnapshot(before[cid].values.get("items", []))
                saver.blobs[("t", "", "items", version)] = saver.serde.dumps_typed(value)


expected = run(InMemorySaver(), reference_delete_run)
with AgentGitSaver.from_conn_string(":memory:") as ours:
    got = run(ours, lambda s, r: s.delete_for_runs([r]))
print(
    "reference:", expected
)  # [['run-1', 'a', 'run-2', 'a'], ['run-1', 'a', 'run-2'], ['run-1', 'a']]
print("agentgit: ", got)  # [['run-1', 'a', 'run-2', 'a'], ['run-1', 'a', 'run-2'], []]
assert got == expected
