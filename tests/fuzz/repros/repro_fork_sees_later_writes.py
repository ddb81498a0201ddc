"""A fork's inherited history shows writes its source made *after* the fork.

KNOWN_DIVERGENCES key: "fork_thread:source-writes-later".
Found by tests/fuzz (parallel, fanout and subgraph graphs; reproduced here on a two-node
graph). A fork reads the writes at an inherited checkpoint from the thread that owns it,
at read time. The source goes on writing at old checkpoints in two ways:

1. ``Command(resume=...)`` addressed at an older checkpoint the thread has moved past
   (LangGraph stores the resumed task's writes on that checkpoint);
2. ``delete_for_runs`` makes an older checkpoint the source's head again, and the source
   resumes there.

Either way a fork (or a SessionManager rollback branch) that inherits that checkpoint
suddenly shows those writes (task results) in its history. On the reference
(InMemorySaver; the fork is the copy the fork contract describes) the fork's history is
what it was when it was made. (Running the fork is not affected in these cases: only an
ancestor's writes change, and LangGraph reads the fork point's.)

Run: .venv/bin/python tests/fuzz/repros/repro_fork_sees_later_writes.py
"""

from __future__ import annotations

import operator
from typing import Annotated, Any

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from typing_extensions import TypedDict

from langgraph_agentgit import AgentGitSaver


class S(TypedDict):
    log: Annotated[list[str], operator.add]


def build() -> StateGraph:
    b = StateGraph(S)
    b.add_node("ask", lambda s: {"log": [f"ask:{interrupt('ok?')}"]})
    b.add_node("done", lambda s: {"log": ["done"]})
    b.add_edge(START, "ask")
    b.add_edge("ask", "done")
    b.add_edge("done", END)
    return b


def cfg(thread: str, run_id: str | None = None) -> Any:
    config: dict[str, Any] = {"configurable": {"thread_id": thread}}
    if run_id:
        config["metadata"] = {"run_id": run_id}
    return config


def run(saver: Any, fork: Any, how: str) -> list[Any]:
    graph = build().compile(checkpointer=saver)
    graph.invoke({"log": ["first"]}, cfg("t", "run-1"))  # pauses in "ask" (C1)
    c1 = graph.get_state(cfg("t")).config
    graph.invoke({"log": ["second"]}, cfg("t", "run-2"))  # new input from C1, pauses again
    head = graph.get_state(cfg("t")).config["configurable"]["checkpoint_id"]
    fork(saver, "t", head, "f")
    before = [[(t.name, t.result) for t in s.tasks] for s in graph.get_state_history(cfg("f"))]
    if how == "resume-at-old":
        # LangGraph stores the resumed task's writes at C1, an ancestor of f.
        graph.invoke(Command(resume="yes"), c1)
    else:
        saver.delete_for_runs(["run-2"])  # t's head is C1 again; f keeps run-2's checkpoints
        graph.invoke(Command(resume="yes"), cfg("t", "run-3"))  # writes at C1
    after = [[(t.name, t.result) for t in s.tasks] for s in graph.get_state_history(cfg("f"))]
    return [before, after]


def reference_fork(saver: InMemorySaver, src: str, cid: str, new: str) -> None:
    """The fork contract, literally: the checkpoint and its parent chain, with the writes
    of the ancestors (not the fork point's), as they are now."""
    rows = saver.storage[src][""]
    current = cid
    while current in rows:
        saver.storage[new][""][current] = rows[current]
        if current != cid and (src, "", current) in saver.writes:
            saver.writes[(new, "", current)] = dict(saver.writes[(src, "", current)])
        current = rows[current][2]
    for key, blob in list(saver.blobs.items()):
        if key[0] == src:
            saver.blobs[(new, *key[1:])] = blob


class Reference(InMemorySaver):
    def delete_for_runs(self, run_ids: Any) -> None:
        for ns_rows in self.storage["t"].values():
            for cid in [
                c
                for c, r in ns_rows.items()
                if self.serde.loads_typed(r[1]).get("run_id") in run_ids
            ]:
                del ns_rows[cid]


failed = []
for how in ("resume-at-old", "delete-for-runs"):
    expected = run(Reference(), reference_fork, how)
    with AgentGitSaver.from_conn_string(":memory:") as ours:
        got = run(ours, AgentGitSaver.fork_thread, how)
    print(how, "reference before/after:", expected)
    print(how, "agentgit  before/after:", got)
    assert expected[0] == expected[1] == got[0], "the fork's history before the source resumed"
    # agentgit's fork now shows ('ask', {'log': ['ask:yes']}) at the paused checkpoint C1
    if got[1] != got[0]:
        failed.append(how)
assert not failed, f"the fork's history changed when its source resumed at C1: {failed}"
