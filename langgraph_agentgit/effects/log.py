"""The effect log: the tool calls a branch made, derived from its checkpoints.

Nothing is recorded while the graph runs. A tool call's arguments are in the
checkpointed ``AIMessage.tool_calls`` and its real result in the ``ToolMessage`` that
answers it (LangGraph's ``ToolNode``, ``create_react_agent`` and any graph whose state
holds such messages), so the calls a branch made between two checkpoints of its history
are read back from the states along the path: an effect belongs to the first checkpoint
whose state holds its ``ToolMessage``. A branch inherits its source's checkpoints, so an
effect made before a fork is the same effect (same id) on both sides.

Identity rule: one ``ToolMessage`` is one effect. A message with an id (``add_messages``
gives each one) is that id. An id-less message (a plain ``operator.add`` list) is
``"<checkpoint id>:<position>"``: the first checkpoint on the path whose state holds it
and its index in that state's message list; in each later checkpoint it is recognized as
the same message by content (tool call id, name, content, artifact, status), matched in
list order, so a call repeated with the same tool call id is a new effect each time. Its
arguments come from the ``tool_calls`` entry it answers, paired by position (the nearest
preceding ``AIMessage`` with a call of that id), never by the tool call id alone: models
reuse ids (``"call_0"``, ``""``).

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


def _fingerprint(message: ToolMessage) -> tuple[Any, ...]:
    """What an id-less ``ToolMessage`` is recognized by from one checkpoint to the next."""
    return (
        message.tool_call_id,
        message.name,
        repr(message.content),
        repr(message.artifact),
        message.status,
    )


def _paired_calls(messages: Sequence[BaseMessage]) -> dict[int, Mapping[str, Any]]:
    """Each ``ToolMessage``'s call, by its position: the ``tool_calls`` entry of that id
    in the nearest preceding ``AIMessage`` that has one, in order when one message holds
    several calls of that id. Tool call ids need not be unique (models reuse ``"call_0"``
    or send ``""``), so a call is never looked up by its id alone."""
    pending: dict[str, list[Mapping[str, Any]]] = {}
    last: dict[str, Mapping[str, Any]] = {}
    paired: dict[int, Mapping[str, Any]] = {}
    for index, message in enumerate(messages):
        if isinstance(message, AIMessage):
            fresh: dict[str, list[Mapping[str, Any]]] = {}
            for tool_call in message.tool_calls:
                key = str(tool_call.get("id") or "")
                fresh.setdefault(key, []).append(tool_call)
                last[key] = tool_call
            pending.update(fresh)
        elif isinstance(message, ToolMessage):
            key = str(message.tool_call_id or "")
            queue = pending.get(key)
            if queue:
                paired[index] = queue.pop(0)
            elif key in last:
                paired[index] = last[key]
    return paired


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
    seen: set[str] = set()  # ids of the ToolMessages that have one
    # The id-less ToolMessages of the previous checkpoint scanned: (fingerprint, identity).
    previous: list[tuple[tuple[Any, ...], str]] = []

    def scan(checkpoint_id: str, record: list[Effect] | None) -> None:
        nonlocal previous
        found = tuples.get(checkpoint_id)
        if found is None:
            return
        messages = _messages(found.checkpoint["channel_values"])
        paired = _paired_calls(messages)
        current: list[tuple[tuple[Any, ...], str]] = []
        cursor = 0  # previous entries are matched in order (a list grows, or is trimmed)
        for index, message in enumerate(messages):
            if not isinstance(message, ToolMessage):
                continue
            if isinstance(message.id, str) and message.id:
                if message.id in seen:
                    continue
                seen.add(message.id)
                effect_id = message.id
            else:
                fingerprint = _fingerprint(message)
                match = next(
                    (i for i in range(cursor, len(previous)) if previous[i][0] == fingerprint),
                    None,
                )
                if match is not None:
                    cursor = match + 1
                    current.append(previous[match])
                    continue
                effect_id = f"{checkpoint_id}:{index}"
                current.append((fingerprint, effect_id))
            if record is None:
                continue
            call: Mapping[str, Any] = paired.get(index) or {}
            args = call.get("args")
            record.append(
                Effect(
                    effect_id=effect_id,
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
        previous = current

    if base_id is not None:
        scan(base_id, None)
    effects: list[Effect] = []
    for checkpoint_id in path:
        scan(checkpoint_id, effects)
    return effects
