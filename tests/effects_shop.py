"""A shop whose tools have real side effects, for ``tests/test_effects.py``.

The shop is a journal file (one JSON object per line, appended with one ``write``, so
several processes can share it): tools append what they did (``{"op": "do", ...}``) and
undo handlers what they undid (``{"op": "undo", ...}``). Tests compare the plan and the
outcomes of a rollback with what the journal says really happened.

The chat model is deterministic: the last user message is read word by word —
``buy:<item>`` calls ``create_order``, ``pay:<n>`` ``charge``, ``mail:<to>``
``send_email``, ``look:<item>`` ``lookup`` (read-only), ``boom:<x>`` ``explode`` (raises),
and the file tools' verbs (:data:`FILE_VERBS`); after tool results it answers with them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, tool
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import START, StateGraph
from langgraph.graph.message import add_messages
from langgraph.prebuilt import ToolNode, tools_condition

from langgraph_agentgit.effects import Effect

VERBS = {
    "buy": ("create_order", "item"),
    "pay": ("charge", "amount"),
    "mail": ("send_email", "to"),
    "look": ("lookup", "item"),
    "boom": ("explode", "what"),
}

#: ``write:<path>:<content>``, ``edit:<path>:<old>:<new>``, ``del:<path>``.
FILE_VERBS = {
    "write": ("write_file", ("path", "content")),
    "edit": ("edit_file", ("path", "old", "new")),
    "del": ("delete_file", ("path",)),
}


class ShopModel(BaseChatModel):
    """Tool calls from the words of the last user message; an answer after results."""

    @property
    def _llm_type(self) -> str:
        return "fake-shop"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        last = messages[-1]
        if isinstance(last, ToolMessage):
            results = []
            for message in reversed(messages):
                if not isinstance(message, ToolMessage):
                    break
                results.append(str(message.content))
            reply = AIMessage("done: " + "; ".join(reversed(results)))
        else:
            calls = []
            for i, word in enumerate(str(last.content).split()):
                verb, _, value = word.partition(":")
                if verb in FILE_VERBS:
                    name, keys = FILE_VERBS[verb]
                    values = value.split(":")
                    calls.append(
                        {
                            "name": name,
                            "args": dict(zip(keys, values, strict=True)),
                            "id": f"call_{len(messages)}_{i}",
                            "type": "tool_call",
                        }
                    )
                if verb in VERBS:
                    name, arg = VERBS[verb]
                    calls.append(
                        {
                            "name": name,
                            "args": {arg: int(value) if arg == "amount" else value},
                            "id": f"call_{len(messages)}_{i}",
                            "type": "tool_call",
                        }
                    )
            reply = AIMessage("", tool_calls=calls) if calls else AIMessage("ok")
        return ChatResult(generations=[ChatGeneration(message=reply)])

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Runnable[LanguageModelInput, Any]:
        return self


def append(journal: str | Path, entry: dict[str, Any]) -> None:
    line = (json.dumps(entry, sort_keys=True) + "\n").encode()
    fd = os.open(str(journal), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def read(journal: str | Path, op: str | None = None) -> list[dict[str, Any]]:
    path = Path(journal)
    if not path.exists():
        return []
    entries = [json.loads(line) for line in path.read_text().splitlines() if line]
    return [e for e in entries if op is None or e["op"] == op]


def make_tools(journal: str | Path) -> list[BaseTool]:
    """The shop's tools, each appending what it did to ``journal``."""

    @tool(response_format="content_and_artifact")
    def create_order(item: str) -> tuple[str, dict[str, Any]]:
        """Order an item."""
        number = len([e for e in read(journal, "do") if e["tool"] == "create_order"]) + 1
        append(journal, {"op": "do", "tool": "create_order", "args": {"item": item}, "n": number})
        return f"order #{number} for {item}", {"order": number}

    @tool
    def charge(amount: int) -> str:
        """Charge the customer."""
        append(journal, {"op": "do", "tool": "charge", "args": {"amount": amount}})
        return f"charged ${amount}"

    @tool
    def send_email(to: str) -> str:
        """Send an email."""
        append(journal, {"op": "do", "tool": "send_email", "args": {"to": to}})
        return f"mailed {to}"

    @tool
    def lookup(item: str) -> str:
        """Look an item up (no side effect)."""
        append(journal, {"op": "do", "tool": "lookup", "args": {"item": item}})
        return f"{item} is in stock"

    @tool
    def explode(what: str) -> str:
        """A tool that always fails."""
        append(journal, {"op": "do", "tool": "explode", "args": {"what": what}})
        raise ValueError(f"cannot {what}")

    return [create_order, charge, send_email, lookup, explode]


class ShopState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def tool_node_agent(journal: str | Path, checkpointer: BaseCheckpointSaver[Any]) -> Any:
    """``START → agent ⇄ tools`` with LangGraph's ``ToolNode``."""
    tools = make_tools(journal)
    model = ShopModel()

    def agent(state: ShopState) -> dict[str, list[BaseMessage]]:
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(ShopState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode(tools, handle_tool_errors=True))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=checkpointer)


def react_agent(journal: str | Path, checkpointer: BaseCheckpointSaver[Any]) -> Any:
    """The same tools in ``langgraph.prebuilt.create_react_agent``."""
    import warnings

    from langgraph.prebuilt import create_react_agent

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        node = ToolNode(make_tools(journal), handle_tool_errors=True)
        return create_react_agent(ShopModel(), node, checkpointer=checkpointer)


def make_handlers(
    journal: str | Path,
    *,
    fail: Callable[[Effect], bool] | None = None,
    crash: Callable[[Effect], bool] | None = None,
    pause: float = 0.0,
    use_async: bool = False,
) -> dict[str, Any]:
    """Undo handlers for the shop (for ``SessionManager(undo=...)``): each appends
    ``{"op": "undo", ...}`` with the effect and the real result it was given. ``fail``
    makes a handler raise before doing anything; ``crash`` makes it end the process
    (``os._exit(3)``) before doing anything; ``pause`` sleeps first (to widen races)."""

    def record(effect: Effect, action: str) -> None:
        if crash is not None and crash(effect):
            os._exit(3)
        if pause:
            time.sleep(pause)
        if fail is not None and fail(effect):
            raise RuntimeError(f"{action} failed for {effect.effect_id}")
        append(
            journal,
            {
                "op": "undo",
                "action": action,
                "effect": effect.effect_id,
                "tool": effect.tool_name,
                "args": effect.args,
                "result": effect.result,
                "artifact": effect.artifact,
                "pid": os.getpid(),
            },
        )

    def cancel_order(effect: Effect) -> None:
        record(effect, "cancel")

    def refund(effect: Effect) -> None:
        record(effect, "refund")

    async def acancel_order(effect: Effect) -> None:
        record(effect, "cancel")

    async def arefund(effect: Effect) -> None:
        record(effect, "refund")

    return {
        "create_order": acancel_order if use_async else cancel_order,
        "charge": ((arefund if use_async else refund), "compensable"),
        "send_email": (None, "irreversible"),
        "explode": cancel_order,
    }


# --- processes ----------------------------------------------------------------------------


def _open(db: str) -> Any:
    from langgraph_agentgit import AgentGitSaver

    return AgentGitSaver.from_conn_string(db)


def crash_worker(db: str, journal: str, session_id: str, target: str, crash_tool: str) -> None:
    """Roll back with undo_effects; the handler of ``crash_tool`` ends the process before
    it does anything (``os._exit(3)``), as a kill in the middle of an undo would."""
    from langgraph_agentgit import SessionManager

    with _open(db) as saver:
        handlers = make_handlers(journal, crash=lambda e: e.tool_name == crash_tool)
        mgr = SessionManager(saver, undo=handlers)
        mgr.rollback(session_id, target, undo_effects=True)
    append(journal, {"op": "survived"})


def slow_worker(
    db: str, journal: str, session_id: str, target: str, started: Any, release: Any
) -> None:
    """Roll back with undo_effects; the handler of ``charge`` sets ``started`` and waits
    for ``release`` before it does its work (a slow handler still running)."""
    from langgraph_agentgit import SessionManager

    with _open(db) as saver:
        handlers = make_handlers(journal)
        refund, kind = handlers["charge"]

        def slow_refund(effect: Effect) -> None:
            started.set()
            release.wait(120)
            refund(effect)

        handlers["charge"] = (slow_refund, kind)
        mgr = SessionManager(saver, undo=handlers)
        mgr.rollback(session_id, target, undo_effects=True)
    append(journal, {"op": "survived"})


def rollback_worker(db: str, journal: str, session_id: str, target: str, barrier: Any) -> None:
    """Check out ``main`` and roll it back to ``target`` with undo_effects, at the same
    time as another such process; record what this process's rollback did."""
    from langgraph_agentgit import SessionManager

    with _open(db) as saver:
        mgr = SessionManager(saver, undo=make_handlers(journal, pause=0.05))
        barrier.wait()
        mgr.checkout(session_id, "main")
        result = mgr.rollback(session_id, target, undo_effects=True)
    append(
        journal,
        {
            "op": "result",
            "pid": os.getpid(),
            "outcomes": [[o.effect.effect_id, o.status, o.reason] for o in result.outcomes],
        },
    )


def file_agent(root: str | Path, checkpointer: BaseCheckpointSaver[Any]) -> Any:
    """``create_react_agent`` with the built-in file tools confined to ``root``."""
    import warnings

    from langgraph.prebuilt import create_react_agent

    from langgraph_agentgit.effects.files import file_tools

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        node = ToolNode(file_tools(root), handle_tool_errors=True)
        return create_react_agent(ShopModel(), node, checkpointer=checkpointer)
