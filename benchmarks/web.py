"""The web viewer's workload: how long ``agentgit serve`` takes to render a big session's
page (the branch timeline as SVG, the branch table, the diff choices).

The session is made by running a real compiled graph (START -> reply -> END with a
deterministic reply; three checkpoints per turn) through :class:`SessionManager`: a
main line, then branches forked at points spread along it, each run for a few turns,
until the session holds the wanted number of checkpoints. The page is fetched through
Starlette's in-process client, so a figure covers the database reads, the timeline, the
SVG and the template, not the network.
"""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path
from typing import Annotated, Any

from langchain_core.messages import AIMessage, AnyMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from typing_extensions import TypedDict

from langgraph_agentgit import AgentGitSaver, SessionManager

#: Checkpoints LangGraph writes per turn of the graph below (input, start, reply).
CHECKPOINTS_PER_TURN = 3


class _State(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def _graph() -> StateGraph:
    def reply(state: _State) -> dict[str, Any]:
        n = len(state["messages"])
        return {"messages": [AIMessage(content=f"answer {n}: {state['messages'][-1].content}")]}

    builder = StateGraph(_State)
    builder.add_node("reply", reply)
    builder.add_edge(START, "reply")
    builder.add_edge("reply", END)
    return builder


def build_session(path: Path, branches: int, checkpoints: int) -> tuple[str, int, int]:
    """A session of ``branches`` threads and about ``checkpoints`` checkpoints in a new
    database at ``path``: half of them on the main line, the rest split among branches
    forked at evenly spaced points of it. Returns (session id, threads, checkpoints)."""
    with AgentGitSaver.from_conn_string(str(path)) as saver:
        mgr = SessionManager(saver)
        graph = _graph().compile(checkpointer=saver)
        s = mgr.create_session(user_id="bench", name="web benchmark")
        main_turns = max(1, -(-checkpoints // 2 // CHECKPOINTS_PER_TURN))
        for n in range(main_turns):
            graph.invoke({"messages": [("user", f"main {n}")]}, mgr.config(s.id))
        line = list(reversed(mgr.checkpoints(s.id)))  # oldest first
        main_thread = s.current_thread_id
        others = max(branches - 1, 0)
        # The turns left, spread as evenly as they go: at least ``checkpoints`` in all.
        turns = max(-(-(checkpoints - len(line)) // CHECKPOINTS_PER_TURN), others)
        for b in range(others):
            fork = line[(b + 1) * len(line) // (others + 1)].checkpoint["id"]
            mgr.rollback(s.id, fork, name=f"try-{b}")
            for n in range(turns // others + (1 if b < turns % others else 0)):
                graph.invoke({"messages": [("user", f"branch {b} turn {n}")]}, mgr.config(s.id))
        if others:
            mgr.checkout(s.id, main_thread)
        session = mgr.get_session(s.id)
        assert session is not None
        return s.id, len(session.internal_session_ids), session.total_checkpoints


def run_web(workdir: Path, branches: int, checkpoints: int, reps: int, log: Any) -> dict[str, Any]:
    """Render the big session's page ``reps`` times (after one warm-up) and its JSON
    timeline as many: times in ms, and what the page showed."""
    from starlette.testclient import TestClient

    from langgraph_agentgit.web import Guard, allowed_hosts, create_app

    path = workdir / "web.db"
    started = time.perf_counter()
    session_id, threads, total = build_session(path, branches, checkpoints)
    log(f"web: built {threads} branches, {total} checkpoints in "
        f"{time.perf_counter() - started:.1f} s")  # fmt: skip
    page_ms: list[float] = []
    api_ms: list[float] = []
    with AgentGitSaver.from_conn_string(str(path), read_only=True) as saver:
        guard = Guard(hosts=allowed_hosts("127.0.0.1", 8765), token=None)
        app = create_app(saver, SessionManager(saver), guard=guard, read_only=True)
        with TestClient(app, base_url="http://127.0.0.1:8765") as client:
            first = client.get(f"/sessions/{session_id}")
            assert first.status_code == 200, first.text[:500]
            for _ in range(reps):
                t0 = time.perf_counter()
                page = client.get(f"/sessions/{session_id}")
                page_ms.append((time.perf_counter() - t0) * 1000)
                assert page.status_code == 200
                t0 = time.perf_counter()
                api = client.get(f"/api/sessions/{session_id}/timeline")
                api_ms.append((time.perf_counter() - t0) * 1000)
                assert api.status_code == 200
    html = first.text
    return {
        "branches": threads,
        "checkpoints": total,
        "dots": len(re.findall(r'<circle class="dot[ "]', html)),
        "lanes": len(re.findall(r'<g class="lane[ "]', html)),
        "page_bytes": len(first.content),
        "page_ms": page_ms,
        "api_timeline_ms": api_ms,
        "page_median_ms": statistics.median(page_ms),
    }
