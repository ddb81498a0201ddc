"""Fork of a pruned thread shows the checkpoints prune(keep_latest) removed (likewise
delete_for_runs, second part; and a pruned *fork*, third part).

Parts 1 and 2 are fixed (10e6f21). Part 3 is open: KNOWN_DIVERGENCES key
"fork_thread:of-pruned-fork" (also covers SessionManager.rollback). A fork that is pruned
stops inheriting, and its history is its latest checkpoint alone; but a new fork of it
walks the parent links from that checkpoint into the rows the pruned fork used to
inherit, so the whole history is back.
Found by tests/fuzz (subgraph graph; reproduced here on the smallest graph). When another
fork ("keeper") still inherits a pruned thread's older checkpoints, they are only hidden
from the pruned thread; a *new* fork of the pruned thread at its head walks the parent
chain through them, so they come back in the new fork's history. On the reference (InMemorySaver,
where the pruned checkpoints are gone) the new fork's history is just the kept checkpoint.

Run: .venv/bin/python tests/fuzz/repros/repro_fork_of_pruned_thread.py
"""

from __future__ import annotations

import operator
from typing import Annotated

from langgraph.checkpoint.memory import InMemorySaver
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


def cfg(thread: str) -> dict:
    return {"configurable": {"thread_id": thread}}


def run(saver, fork, prune) -> list[int]:
    graph = build().compile(checkpointer=saver)
    graph.invoke({"log": ["x"]}, cfg("t"))
    history = list(graph.get_state_history(cfg("t")))
    fork(saver, "t", history[1].config["configurable"]["checkpoint_id"], "keeper")
    prune(saver, ["t"])
    head = graph.get_state(cfg("t")).config["configurable"]["checkpoint_id"]
    fork(saver, "t", head, "new")
    return [s.metadata["step"] for s in graph.get_state_history(cfg("new"))]


def reference_fork(saver: InMemorySaver, src: str, cid: str, new: str) -> None:
    # The fork's contract: the checkpoint and its parent chain, as stored now.
    rows = saver.storage[src][""]
    while cid in rows:
        saver.storage[new][""][cid] = rows[cid]
        cid = rows[cid][2]
    for key, blob in list(saver.blobs.items()):
        if key[0] == src:
            saver.blobs[(new, *key[1:])] = blob


def reference_prune(saver: InMemorySaver, threads: list[str]) -> None:
    for t in threads:
        rows = saver.storage[t][""]
        for cid in [c for c in rows if c != max(rows)]:
            del rows[cid]


def run_runs(saver, fork, delete_run) -> list[int]:
    """Two runs; a fork keeps the first alive; the first run is deleted; a new fork of the
    thread's head."""
    graph = build().compile(checkpointer=saver)
    for run_id in ("run-1", "run-2"):
        graph.invoke({"log": [run_id]}, {**cfg("t"), "metadata": {"run_id": run_id}})
    first_run_head = next(
        s for s in graph.get_state_history(cfg("t")) if s.metadata["run_id"] == "run-1"
    )
    fork(saver, "t", first_run_head.config["configurable"]["checkpoint_id"], "keeper")
    delete_run(saver, "run-1")
    head = graph.get_state(cfg("t")).config["configurable"]["checkpoint_id"]
    fork(saver, "t", head, "new")
    return [s.metadata["step"] for s in graph.get_state_history(cfg("new"))]


def reference_delete_run(saver: InMemorySaver, run_id: str) -> None:
    rows = saver.storage["t"][""]
    for cid in [
        c for c, row in rows.items() if saver.serde.loads_typed(row[1])["run_id"] == run_id
    ]:
        del rows[cid]


def run_pruned_fork(saver, fork, prune) -> list[int]:
    graph = build().compile(checkpointer=saver)
    graph.invoke({"log": ["x"]}, cfg("t"))
    history = list(graph.get_state_history(cfg("t")))
    fork(saver, "t", history[1].config["configurable"]["checkpoint_id"], "f")
    graph.update_state(cfg("f"), {"log": ["u"]}, as_node="a")
    prune(saver, ["f"])
    head = graph.get_state(cfg("f")).config["configurable"]["checkpoint_id"]
    fork(saver, "f", head, "g")
    return [s.metadata["step"] for s in graph.get_state_history(cfg("g"))]


expected = run(InMemorySaver(), reference_fork, reference_prune)
with AgentGitSaver.from_conn_string(":memory:") as ours:
    got = run(ours, AgentGitSaver.fork_thread, lambda s, ts: s.prune(ts, strategy="keep_latest"))
print("prune: reference steps:", expected)  # [2]
print("prune: agentgit  steps:", got)  # [2, 1, 0, -1]

expected_runs = run_runs(InMemorySaver(), reference_fork, reference_delete_run)
with AgentGitSaver.from_conn_string(":memory:") as ours:
    got_runs = run_runs(ours, AgentGitSaver.fork_thread, lambda s, r: s.delete_for_runs([r]))
print("delete_for_runs: reference steps:", expected_runs)  # [6, 5, 4, 3]
print("delete_for_runs: agentgit  steps:", got_runs)  # [6, 5, 4, 3, 2, 1, 0, -1]
expected_fork = run_pruned_fork(InMemorySaver(), reference_fork, reference_prune)
with AgentGitSaver.from_conn_string(":memory:") as ours:
    got_fork = run_pruned_fork(
        ours, AgentGitSaver.fork_thread, lambda s, ts: s.prune(ts, strategy="keep_latest")
    )
print("pruned fork: reference steps:", expected_fork)  # [2]
print("pruned fork: agentgit  steps:", got_fork)  # [2, 1, 0, -1]
assert got == expected, "the pruned checkpoints reappear in a fork of the pruned thread"
assert got_runs == expected_runs, "the deleted run's checkpoints reappear in a new fork"
assert got_fork == expected_fork, "a pruned fork's old history reappears in a fork of it"
