"""The JSON shapes of sessions, branches, checkpoints, turns, timelines and diffs: what
``agentgit ... --json`` prints and what ``agentgit serve``'s ``/api/`` returns.

Every builder returns plain JSON data (``str``, numbers, ``bool``, ``None``, lists,
dicts); times are ISO 8601 strings. The shapes are versioned by :data:`SCHEMA_VERSION`
and documented in ``docs/views-schema.md``: keys are only ever added within a version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from langgraph_agentgit.errors import CorruptDataError
from langgraph_agentgit.views.text import PREVIEW_WIDTH, cut, message_preview

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage
    from langgraph.checkpoint.base import CheckpointTuple

    from langgraph_agentgit.diff import CheckpointDiff
    from langgraph_agentgit.saver_base import AgentGitSaverBase
    from langgraph_agentgit.sessions.manager import SessionManager
    from langgraph_agentgit.sessions.models import (
        Branch,
        CheckpointSummary,
        ExternalSession,
        SearchHit,
        Turn,
        Usage,
    )
    from langgraph_agentgit.timeline import Timeline

#: The version of every shape below; bumped when a key changes meaning or goes away.
SCHEMA_VERSION = 1
#: Characters of a checkpoint's one-line ``message`` in listings.
LISTING_PREVIEW_WIDTH = 200
#: LangGraph's channel of pending interrupts, among a checkpoint's pending writes.
INTERRUPT_CHANNEL = "__interrupt__"


def iso(value: Any) -> str | None:
    """A time as ISO 8601 to the second (``None`` stays ``None``; a string as it is)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


def versioned(kind: str, **data: Any) -> dict[str, Any]:
    """An API document: ``{"schema_version": 1, "kind": kind, **data}``."""
    return {"schema_version": SCHEMA_VERSION, "kind": kind, **data}


# --- checkpoints as one line ------------------------------------------------------------------


def last_message(values: Mapping[str, Any]) -> BaseMessage | None:
    """The last message of a state's ``messages`` list, if it has one."""
    from langchain_core.messages import BaseMessage

    messages = values.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[-1], BaseMessage):
        return messages[-1]
    return None


def describe_input(value: Any, width: int | None = PREVIEW_WIDTH) -> str:
    """One line for a run's input (an input checkpoint's ``__start__`` channel)."""
    from langchain_core.messages import BaseMessage

    # An input checkpoint holds the graph's input, not yet merged into the state: in the
    # "__start__" channel, often as ("user", "text") tuples rather than messages.
    if isinstance(value, Mapping) and isinstance(value.get("messages"), list | tuple):
        messages = value["messages"]
        if messages:
            last = messages[-1]
            if isinstance(last, BaseMessage):
                return message_preview(last, width)
            if isinstance(last, tuple | list) and len(last) == 2:
                return cut(f"{last[0]}: {' '.join(str(last[1]).split())}", width)
            if isinstance(last, str):
                return cut(f"user: {last}", width)
    if value is None:
        return ""
    return cut(f"input: {value}", width)


def checkpoint_preview(item: CheckpointTuple, width: int | None = PREVIEW_WIDTH) -> str:
    """One line for a checkpoint: the input it received, or the state's last message,
    else its other channels as ``name=value``."""
    values = item.checkpoint.get("channel_values", {})
    if item.metadata and item.metadata.get("source") == "input" and "__start__" in values:
        return describe_input(values["__start__"], width)
    message = last_message(values)
    if message is not None:
        return message_preview(message, width)
    shown = {k: v for k, v in values.items() if not k.startswith(("__", "branch:"))}
    return cut(", ".join(f"{k}={v!r}" for k, v in shown.items()), width)


def nodes_run(item: CheckpointTuple, parent: CheckpointTuple | None) -> list[str]:
    """The graph nodes whose work produced ``item``: those whose ``versions_seen`` moved
    since ``parent``. LangGraph 1.x no longer records this in the metadata."""
    if item.metadata and item.metadata.get("source") == "input":
        return []
    seen = item.checkpoint.get("versions_seen", {})
    before = parent.checkpoint.get("versions_seen", {}) if parent is not None else {}
    return [
        node
        for node, versions in seen.items()
        if versions != before.get(node) and (node == "__start__" or not node.startswith("__"))
    ]


def parent_id(item: CheckpointTuple) -> str | None:
    """The id of the checkpoint ``item`` was made from (``None`` at a thread's start)."""
    if item.parent_config is None:
        return None
    value = item.parent_config["configurable"].get("checkpoint_id")
    return str(value) if value is not None else None


def session_preview(saver: AgentGitSaverBase, mgr: SessionManager, session_id: str) -> str:
    """The one line of a session's current head (:func:`checkpoint_preview`; ``""``
    before it has run). Reads and decodes that checkpoint; raises
    :class:`~langgraph_agentgit.errors.SessionNotFoundError` for an unknown session.

    A head that cannot be decoded (damage: :class:`CorruptDataError`) is previewed as
    ``"(unreadable: <why>)"``, so that one damaged session does not take every listing
    down with it; reading that session itself still raises."""
    try:
        latest = saver.get_tuple(mgr.config(session_id))
    except CorruptDataError as exc:
        return f"(unreadable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
    return checkpoint_preview(latest) if latest is not None else ""


# --- the shapes -------------------------------------------------------------------------------


def search_hit_view(hit: SearchHit) -> dict[str, Any]:
    """A full-text search hit: the session, branch (``thread_id``) and checkpoint where
    the message first appears, its id and role, a ``snippet`` with each match between
    ``>>>`` and ``<<<``, and ``rank`` (higher is better), as ``SessionManager.search``
    gives them."""
    return hit.to_dict()


def usage_view(usage: Usage) -> dict[str, Any]:
    """Usage counts without the ids they are about: ``turns``, ``messages``,
    ``tool_calls`` (by tool name) and ``tokens`` (input, output, total), as
    ``SessionManager.usage`` keeps them."""
    data = usage.to_dict()
    del data["session_id"], data["thread_id"]
    return data


def session_view(
    session: ExternalSession, last_message: str, usage: Usage | None = None
) -> dict[str, Any]:
    """A session: ids, owner, name, times, activity, its threads (``thread_ids``, oldest
    first), counts and ``last_message`` (:func:`session_preview`); ``usage``
    (:func:`usage_view`) where the caller counted it (listings and a session's details)."""
    view: dict[str, Any] = {
        "id": session.id,
        "user_id": session.user_id,
        "name": session.name,
        "created_at": iso(session.created_at),
        "updated_at": iso(session.updated_at),
        "is_active": session.is_active,
        "metadata": session.metadata,
        "current_thread_id": session.current_thread_id,
        "thread_ids": list(session.internal_session_ids),
        "branch_count": session.branch_count,
        "total_checkpoints": session.total_checkpoints,
        "last_message": last_message,
        "ended_at": iso(session.ended_at),
        "end_reason": session.end_reason,
    }
    if usage is not None:
        view["usage"] = usage_view(usage)
    return view


def branch_view(
    branch: Branch, current_thread_id: str | None, usage: Usage | None = None
) -> dict[str, Any]:
    """A branch: its thread, parent thread and fork point, name, creation time, own
    checkpoint count, and whether it is the session's current one; ``usage`` (its whole
    history's, inherited turns included) where the caller counted it."""
    view: dict[str, Any] = {
        "thread_id": branch.thread_id,
        "session_id": branch.session_id,
        "name": branch.name,
        "parent_thread_id": branch.parent_thread_id,
        "fork_checkpoint_id": branch.fork_checkpoint_id,
        "created_at": iso(branch.created_at),
        "checkpoint_count": branch.checkpoint_count,
        "is_current": branch.thread_id == current_thread_id,
    }
    if usage is not None:
        view["usage"] = usage_view(usage)
    return view


def turn_view(turn: Turn) -> dict[str, Any]:
    """A conversation turn: its checkpoints, user message, tool calls and token usage."""
    return {
        "number": turn.number,
        "thread_id": turn.thread_id,
        "before_checkpoint_id": turn.before_checkpoint_id,
        "start_checkpoint_id": turn.start_checkpoint_id,
        "end_checkpoint_id": turn.end_checkpoint_id,
        "user_message": turn.text,
        "message_count": len(turn.messages),
        "tool_calls": [dict(call) for call in turn.tool_calls],
        "usage": {
            "input_tokens": turn.usage.input_tokens,
            "output_tokens": turn.usage.output_tokens,
            "total_tokens": turn.usage.total_tokens,
        },
        "inherited": turn.inherited,
    }


def checkpoint_view(
    item: CheckpointTuple,
    parent: CheckpointTuple | None,
    *,
    thread_id: str | None,
    tags: Sequence[str],
) -> dict[str, Any]:
    """A checkpoint in a listing: ids, the branch that wrote it (``thread_id``, ``None``
    when that thread has been deleted), step, source, the nodes that ran, time, tags and
    its one-line ``message`` (:func:`checkpoint_preview`, 200 characters at most)."""
    metadata = item.metadata or {}
    return {
        "checkpoint_id": item.checkpoint["id"],
        "parent_checkpoint_id": parent_id(item),
        "thread_id": thread_id,
        "step": metadata.get("step"),
        "source": metadata.get("source"),
        "nodes": nodes_run(item, parent),
        "created_at": item.checkpoint.get("ts"),
        "tags": list(tags),
        "message": checkpoint_preview(item, width=LISTING_PREVIEW_WIDTH),
    }


def message_view(message: BaseMessage) -> dict[str, Any]:
    """A message as the viewer shows it: :func:`langgraph_agentgit.diff.message_dict`
    (id, type, content, tool calls, tool call id) plus ``role``, its ``text`` and
    ``name`` (a tool message's tool)."""
    from langgraph_agentgit.diff import message_dict
    from langgraph_agentgit.views.text import message_text, role

    out = message_dict(message)
    out["role"] = role(message)
    out["text"] = message_text(message)
    out["name"] = getattr(message, "name", None)
    return out


def checkpoint_detail_view(
    item: CheckpointTuple,
    parent: CheckpointTuple | None,
    *,
    thread_id: str | None,
    tags: Sequence[str],
) -> dict[str, Any]:
    """A checkpoint whole: :func:`checkpoint_view` plus ``messages`` (the state's message
    list, :func:`message_view` each), ``channels`` (the other channels' values, messages
    and unknown objects made JSON as by :func:`langgraph_agentgit.diff.jsonable`),
    ``pending_writes`` (``task_id``, ``channel``, ``value``), ``interrupts`` (what the
    graph waits on: each pending ``__interrupt__`` as ``id`` and ``value``) and
    ``metadata``."""
    from langchain_core.messages import BaseMessage

    from langgraph_agentgit.diff import jsonable

    values = item.checkpoint.get("channel_values", {})
    raw = values.get("messages")
    messages = (
        [message_view(m) for m in raw if isinstance(m, BaseMessage)]
        if isinstance(raw, list)
        else []
    )
    channels = {
        k: jsonable(v) for k, v in sorted(values.items()) if k != "messages" or not messages
    }
    writes = [
        {"task_id": str(w[0]), "channel": str(w[1]), "value": jsonable(w[2])}
        for w in item.pending_writes or ()
    ]
    interrupts = [
        _interrupt(found)
        for w in item.pending_writes or ()
        if w[1] == INTERRUPT_CHANNEL
        for found in (w[2] if isinstance(w[2], list | tuple) else [w[2]])
    ]
    return {
        **checkpoint_view(item, parent, thread_id=thread_id, tags=tags),
        "messages": messages,
        "channels": channels,
        "pending_writes": writes,
        "interrupts": interrupts,
        "metadata": jsonable(dict(item.metadata or {})),
    }


def _interrupt(found: Any) -> dict[str, Any]:
    """LangGraph's ``Interrupt`` as ``{"id", "value"}`` (anything else as its value)."""
    from langgraph_agentgit.diff import jsonable

    if hasattr(found, "value"):
        return {"id": getattr(found, "id", None), "value": jsonable(found.value)}
    return {"id": None, "value": jsonable(found)}


def summary_view(summary: CheckpointSummary | None) -> dict[str, Any] | None:
    """A checkpoint as a timeline knows it (no state read): ids, step, source, node(s)
    and time."""
    if summary is None:
        return None
    return {
        "checkpoint_id": summary.checkpoint_id,
        "parent_checkpoint_id": summary.parent_checkpoint_id,
        "step": summary.step,
        "source": summary.source,
        "node": summary.node,
        "created_at": summary.created_at,
    }


def timeline_view(timeline: Timeline, last_message: str | None = None) -> dict[str, Any]:
    """A session's whole branch tree: ``session`` (:func:`session_view`; its
    ``last_message`` is ``last_message`` if given, else the current head's), ``tags``
    (name -> checkpoint id) and ``branches`` (oldest first): :func:`branch_view` plus
    ``label``, ``fork_point`` and ``head`` (:func:`summary_view`), ``last_message``,
    ``interrupted``, ``undone_effects`` (tools whose calls on it a rollback undid),
    ``checkpoints`` (its own, oldest first) and ``in_thread_forks`` (each fork
    LangGraph made inside the thread: ``parent_checkpoint_id``, ``checkpoint_ids``)."""
    current = timeline.current
    if last_message is None:
        last_message = (current.last_message if current else None) or ""
    s = timeline.session
    return {
        "session": session_view(s, last_message),
        "tags": dict(sorted(timeline.tags.items())),
        "branches": [
            {
                **branch_view(h.branch, s.current_thread_id),
                "label": timeline.label(h),
                "fork_point": summary_view(h.fork_point),
                "head": summary_view(h.head),
                "last_message": h.last_message,
                "interrupted": h.interrupted,
                "undone_effects": list(timeline.undone.get(h.branch.thread_id, ())),
                "checkpoints": [summary_view(c) for c in h.checkpoints],
                "in_thread_forks": [
                    {
                        "parent_checkpoint_id": line.parent_checkpoint_id,
                        "checkpoint_ids": [c.checkpoint_id for c in line.checkpoints],
                    }
                    for line in h.lines[1:]
                ],
            }
            for h in timeline.branches
        ],
    }


def diff_view(diff: CheckpointDiff) -> dict[str, Any]:
    """:meth:`CheckpointDiff.to_dict` with the ``schema_version``: ``a`` and ``b`` (the
    two points: ``thread_id``, ``checkpoint_id``, ``step``), ``base`` (their common
    ancestor), ``channels`` (per changed channel: ``added``/``removed``/``changed``
    messages since the common ancestor, or ``before``/``after`` values) and
    ``undone_effects``."""
    return {"schema_version": SCHEMA_VERSION, **diff.to_dict()}
