"""The deterministic tool-calling model and the demo agent graph (langgraph_agentgit.agents)."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from langgraph_agentgit import AgentGitSaver
from langgraph_agentgit.agents import (
    TOOLS,
    FakeToolCallingModel,
    calculator,
    create_agent_graph,
    lookup_order,
    message_preview,
    rule_based_reply,
)

NAMES = ["lookup_order", "calculator"]


def test_calculator_evaluates_arithmetic_and_refuses_code() -> None:
    assert calculator.invoke({"expression": "3 * 19.99 + 5"}) == "3 * 19.99 + 5 = 64.97"
    assert calculator.invoke({"expression": "(2 + 3) ** 2"}) == "(2 + 3) ** 2 = 25"
    assert "Cannot evaluate" in calculator.invoke({"expression": "__import__('os')"})
    assert "Cannot evaluate" in calculator.invoke({"expression": "1 / 0"})


def test_lookup_order_knows_the_in_memory_orders() -> None:
    found = lookup_order.invoke({"order_id": "a-1001"})
    assert "Order A-1001 for Ada" in found and "total $78.98" in found
    assert "No order 'Z-9999'" in lookup_order.invoke({"order_id": "Z-9999"})


def test_rule_calls_one_tool_per_order_and_expression() -> None:
    reply = rule_based_reply([HumanMessage("Where are A-1001 and B-2002? And 2 + 2?")], NAMES)
    calls = [(c["name"], c["args"]) for c in reply.tool_calls]
    assert calls == [
        ("lookup_order", {"order_id": "A-1001"}),
        ("lookup_order", {"order_id": "B-2002"}),
        ("calculator", {"expression": "2 + 2"}),
    ]
    assert len({c["id"] for c in reply.tool_calls}) == 3


def test_rule_only_calls_bound_tools_and_answers_tool_results() -> None:
    assert rule_based_reply([HumanMessage("What is 2 + 2?")], ["lookup_order"]).tool_calls == []
    answer = rule_based_reply(
        [HumanMessage("2+2?"), AIMessage(""), ToolMessage("2+2 = 4", tool_call_id="c")], NAMES
    )
    assert answer.content == "Here is what I found: 2+2 = 4"
    assert answer.tool_calls == []


def test_rule_sends_refund_requests_to_a_refund_tool_when_bound() -> None:
    reply = rule_based_reply([HumanMessage("Please refund A-1001")], [*NAMES, "refund_order"])
    assert [c["name"] for c in reply.tool_calls] == ["refund_order"]
    assert [
        c["name"] for c in rule_based_reply([HumanMessage("refund A-1001")], NAMES).tool_calls
    ] == ["lookup_order"]


def test_bind_tools_passes_schemas_and_model_calls_them() -> None:
    reply = FakeToolCallingModel().bind_tools([calculator]).invoke("What is 6 * 7?")
    assert isinstance(reply, AIMessage)
    assert reply.tool_calls[0]["name"] == "calculator"
    unbound = FakeToolCallingModel().invoke("What is 6 * 7?")
    assert unbound.tool_calls == []


def test_script_follows_the_conversation_not_the_call_count() -> None:
    model = FakeToolCallingModel(script=["first", AIMessage("second")])
    assert model.invoke([HumanMessage("hi")]).content == "first"
    assert model.invoke([HumanMessage("hi")]).content == "first"  # same conversation again
    later = [HumanMessage("hi"), AIMessage("first"), HumanMessage("more")]
    assert model.invoke(later).content == "second"
    with pytest.raises(IndexError, match="script has 2 replies"):
        model.invoke([*later, AIMessage("second"), HumanMessage("again")])


def test_agent_graph_runs_tools_and_checkpoints(tmp_path: Path) -> None:
    with AgentGitSaver.from_conn_string(str(tmp_path / "a.db")) as saver:
        graph = create_agent_graph(checkpointer=saver)
        config = {"configurable": {"thread_id": "t"}}
        out = graph.invoke({"messages": [("user", "Where is C-3003? Also 45 + 2 * 22.25")]}, config)
        previews = [message_preview(m, 200) for m in out["messages"]]
        assert previews[1] == "ai → lookup_order('C-3003'), calculator('45 + 2 * 22.25')"
        assert [m.type for m in out["messages"]] == ["human", "ai", "tool", "tool", "ai"]
        assert "45 + 2 * 22.25 = 89.5" in out["messages"][-1].content
        assert len(list(saver.list(config))) == 5  # input, start, agent, tools, agent
    assert [t.name for t in TOOLS] == NAMES


def test_message_preview_cuts_long_text() -> None:
    assert message_preview(HumanMessage("x" * 100), 10) == "user: xxx…"
    assert message_preview(None) == ""
