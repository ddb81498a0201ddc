"""The matplotlib drawing of a timeline (langgraph_agentgit.plot)."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from langgraph_agentgit import AgentGitSaver, SessionManager
from langgraph_agentgit.agents import create_agent_graph
from langgraph_agentgit.demo import ROLLBACK_TAG, run_demo
from langgraph_agentgit.plot import draw_timeline, timeline_image


def test_draws_one_lane_per_branch_with_tags_and_heads(tmp_path: Path) -> None:
    with AgentGitSaver.from_conn_string(str(tmp_path / "p.db")) as saver:
        result = run_demo(saver)
        mgr = SessionManager(saver)
        nested = mgr.branch(result.session_id, result.branch_head, name="nested")
        graph = create_agent_graph(checkpointer=saver)
        graph.invoke({"messages": [("user", "What is 1 + 1?")]}, nested.config)
        timeline = mgr.timeline(result.session_id)

    figure = draw_timeline(timeline)
    assert isinstance(figure, Figure)
    texts = [t.get_text() for t in figure.axes[0].texts]
    lanes = [t for t in texts if "\n" in t]  # "label\nthread-prefix" per branch
    assert [t.split("\n")[0] for t in lanes] == ["main", "* branch-1", "nested"]
    assert result.main_thread_id[:8] in lanes[0]
    assert ROLLBACK_TAG in texts
    assert any("1 + 1 = 2" in t for t in texts)  # the nested branch's head message
    assert len(figure.axes[0].patches) == 2  # one fork curve per branch


def test_timeline_image_is_png_or_svg(tmp_path: Path) -> None:
    with AgentGitSaver.from_conn_string(str(tmp_path / "p.db")) as saver:
        result = run_demo(saver)
        timeline = SessionManager(saver).timeline(result.session_id)
    png = timeline_image(timeline)
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    svg = timeline_image(timeline, "svg")
    assert b"<svg" in svg[:1000]
