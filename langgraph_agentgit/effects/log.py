"""The effect log: the tool calls a branch made, derived from its checkpoints.

Nothing is recorded while the graph runs. A tool call's arguments are in the
checkpointed ``AIMessage.tool_calls`` and its real result in the ``ToolMessage`` that
answers it (LangGraph's ``ToolNode``, ``create_react_agent`` and any graph whose state
holds such messages), so the calls a branch made between two checkpoints of its history
are read back from the states along the path: an effect belongs to the first checkpoint
whose state holds its ``ToolMessage``. A branch inherits its source's checkpoints, so an
effect made before a fork is the same effect (same id) on both sides.

Functions here take an open connection inside a saver runner's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, ToolMessage

from langgraph_agentgit.effects.models import Effect
from langgraph_agentgit.sessions import store as session_ops
from langgraph_agentgit.storage.backend import Connection
from langgraph_agentgit.storage.checkpoints import CheckpointStore, Row


def ancestry(conn: Connection, store: CheckpointStore, row: Row) -> list[tuple[int, str]]:
    """``(rid, checkpoint_id)`` along parent links from ``row``, nearest first (across
    the threads a branch inherits from)."""
    return [(int(r), str(c)) for r, c in conn.execute(store.sql.SELECT_ANCESTRY, (row.rid,))]


def common_base(
    head_chain: Sequence[tuple[int, str]], other_chain: Iterable[tuple[int, str]]
) -> tuple[int, str] | None:
    """The nearest entry of ``head_chain`` that ``other_chain`` also holds."""
    others = {rid for rid, _ in other_chain}
    return next((entry for entry in head_chain if entry[0] in others), None)


def _messages(values: Mapping[str, Any]) -> list[BaseMessage]:
    """The state's messages: the ``messages`` channel, else every list of messages."""
    found = values.get("messages")
    if isinstance(found, list):
        return [m for m in found if isinstance(m, BaseMessage)]
    out: list[BaseMessage] = []
    for value in values.values():
        if isinstance(value, list):
            out.extend(m for m in value if isinstance(m, BaseMessage))
    return out


def _identity(message: ToolMessage) -> str:
    return message.id if isinstance(message.id, str) and message.id else message.tool_call_id


def effects_on_path(
    conn: Connection,
    store: CheckpointStore,
    thread_id: str,
    head_chain: Sequence[tuple[int, str]],
    base_rid: int | None,
) -> list[Effect]:
    """The effects made after ``base_rid`` (exclusive; ``None``: from the start) up to the
    head (the first entry of ``head_chain``, inclusive), oldest first.

    Reads the root-namespace states of the checkpoints on that path (and of the base,
    whose results are kept, not abandoned) through ``thread_id``, which must see them.
    Checkpoints the thread no longer sees (deleted runs) are passed over: an effect
    recorded only there is attributed to the next checkpoint that still holds it.
    """
    path: list[str] = []
    base_id: str | None = None
    for rid, checkpoint_id in head_chain:
        if rid == base_rid:
            base_id = checkpoint_id
            break
        path.append(checkpoint_id)
    path.reverse()
    wanted = path + ([base_id] if base_id is not None else [])
    tuples = session_ops.checkpoint_tuples(conn, store, thread_id, wanted)
    calls: dict[str, Mapping[str, Any]] = {}
    seen: set[str] = set()

    def scan(checkpoint_id: str, record: list[Effect] | None) -> None:
        found = tuples.get(checkpoint_id)
        if found is None:
            return
        messages = _messages(found.checkpoint["channel_values"])
        for message in messages:
            if isinstance(message, AIMessage):
                for tool_call in message.tool_calls:
                    if tool_call.get("id"):
                        calls[str(tool_call["id"])] = tool_call
        for message in messages:
            if not isinstance(message, ToolMessage):
                continue
            identity = _identity(message)
            if identity in seen:
                continue
            seen.add(identity)
            if record is None:
                continue
            call: Mapping[str, Any] = calls.get(message.tool_call_id) or {}
            args = call.get("args")
            record.append(
                Effect(
                    effect_id=(
                        message.id
                        if isinstance(message.id, str) and message.id
                        else f"{checkpoint_id}:{message.tool_call_id}"
                    ),
                    tool_name=str(call.get("name") or message.name or ""),
                    tool_call_id=message.tool_call_id,
                    args=dict(args) if isinstance(args, Mapping) else {},
                    result=message.content,
                    artifact=message.artifact,
                    tool_status=str(message.status),
                    checkpoint_id=checkpoint_id,
                    message=message,
                )
            )

    if base_id is not None:
        scan(base_id, None)
    effects: list[Effect] = []
    for checkpoint_id in path:
        scan(checkpoint_id, effects)
    return effects
