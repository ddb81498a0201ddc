"""A fork taken after ``delete_for_runs`` removed a run from the middle of its source's
history loses the source's older checkpoints.

KNOWN_DIVERGENCES key: "fork_thread:across-deleted-run" (also SessionManager.rollback).
Found by tests/fuzz (parallel, agent and delta graphs, ``make fuzz`` after e750958).
Three runs on one thread, the middle one deleted: the thread's history is run 3's
checkpoints then run 1's (run 2's are gone; run 3's input checkpoint keeps its now
dangling parent id). A fork at the head should see the same history as the source up to
that checkpoint (the fork contract: "exactly as LangGraph replays from that checkpoint",
and a replay in the source still has run 1 in its history); AgentGitSaver's fork stops
at the gap and shows run 3's checkpoints only. Reference (the fork as the copy of the
checkpoint's parent chain, the deleted run's checkpoints kept out of sight): run 3's
and run 1's checkpoints, as in the source.

Run: .venv/bin/python tests/fuzz/repros/repro_fork_across_deleted_run.py
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
    b.add_edge(START, "a")
    b.add_edge("a", END)
    return b


def cfg(thread: str, run_id: str | None = None) -> Any:
    config: dict[str, Any] = {"configurable": {"thread_id": thread}}
    if run_id:
        config["metadata"] = {"run_id": run_id}
    return config


with AgentGitSaver.from_conn_string(":memory:") as saver:
    graph = build().compile(checkpointer=saver)
    for run_id in ("run-1", "run-2", "run-3"):
        graph.invoke({"log": [run_id]}, cfg("t", run_id))
    saver.delete_for_runs(["run-2"])
    source = [s.metadata["run_id"] for s in graph.get_state_history(cfg("t"))]
    head = graph.get_state(cfg("t")).config["configurable"]["checkpoint_id"]
    saver.fork_thread("t", head, "f")
    fork = [s.metadata["run_id"] for s in graph.get_state_history(cfg("f"))]
print("source:", source)  # ['run-3', 'run-3', 'run-3', 'run-1', 'run-1', 'run-1']
print("fork:  ", fork)  # ['run-3', 'run-3', 'run-3']
assert fork == source, "the fork lost the checkpoints before the deleted run"
