"""``prune(keep_latest)`` of an idle fork whose source was deleted empties the fork.

KNOWN_DIVERGENCES key: "prune:keep_latest:fork-of-deleted".
Found by tests/fuzz (fanout, parallel, subgraph graphs) after f94dad6. A fork that has not
written anything yet reads everything from its source. Once the source is deleted
(``delete_thread``) or its run is (``delete_for_runs``) - both keep what the fork
inherits - pruning the fork with ``keep_latest`` leaves it with no checkpoint at all:
``get_state`` is empty and the history is ``[]``. Pruning before deleting works
(tests/test_fork.py::test_prune_keep_latest_on_a_fork), and so does pruning a fork whose
source is still there. Reference (the fork as the copy its contract describes, then
``keep_latest``): the fork keeps its latest checkpoint and its values.

Run: .venv/bin/python tests/fuzz/repros/repro_prune_fork_of_deleted_source.py
"""

from __future__ import annotations

import operator
from typing import Annotated, Any

from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from langgraph_agentgit import AgentGitSaver


class S(TypedDict):
    log: Annotated[list[str], operator.add]


def build() -> StateGraph:
    b = StateGraph(S)
    b.add_node("a", lambda s: {"log": ["a"]})
    b.add_node("b", lambda s: {"log": ["b"]})
    b.add_edge(START, "a")
    b.add_edge("a", "b")
    b.add_edge("b", END)
    return b


def cfg(thread: str) -> Any:
    return {"configurable": {"thread_id": thread}, "metadata": {"run_id": "run-1"}}


failed = []
for delete in ("delete_thread", "delete_for_runs", "nothing"):
    with AgentGitSaver.from_conn_string(":memory:") as saver:
        graph = build().compile(checkpointer=saver)
        graph.invoke({"log": ["x"]}, cfg("t"))
        history = list(graph.get_state_history(cfg("t")))
        saver.fork_thread("t", history[1].config["configurable"]["checkpoint_id"], "f")
        before = graph.get_state(cfg("f")).values  # {'log': ['x', 'a']}
        if delete == "delete_thread":
            saver.delete_thread("t")
        elif delete == "delete_for_runs":
            saver.delete_for_runs(["run-1"])
        saver.prune(["f"], strategy="keep_latest")
        after = graph.get_state(cfg("f")).values
        steps = [s.metadata["step"] for s in graph.get_state_history(cfg("f"))]
        print(f"{delete:16} before {before}  after prune {after}  history steps {steps}")
        if after != before or steps != [1]:
            failed.append(delete)
# delete_thread     before {'log': ['x', 'a']}  after prune {}  history steps []
# delete_for_runs   before {'log': ['x', 'a']}  after prune {}  history steps []
# nothing           before {'log': ['x', 'a']}  after prune {'log': ['x', 'a']}  history steps [1]
assert not failed, f"the pruned fork lost its state after: {failed}"
