"""`CheckpointDiff`: what changed, channel by channel, between two checkpoints.

Built by :meth:`SessionManager.diff` from two checkpoints on any branches and their
nearest common ancestor. A message list is compared by message id: the messages only
``b`` has are *added*, those only ``a`` has are *removed*, those both have under one id
with different content are *changed*. With LangGraph's append-only ``add_messages``
reducer, when ``a`` and ``b`` are on different branches the removed messages are the ones
``a``'s side added after the common ancestor and the added ones those ``b``'s side added.
Other channels are compared by value. Tool calls on either side's path from the common
ancestor that a rollback undid (``rollback(..., undo_effects=True)``) are listed too.

::

    d = mgr.diff(main_head, retry_head)
    print(d)              # text
    d.format(width=120)   # text for a wider terminal; width=None: nothing cut
    d.to_dict()           # JSON-ready
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from langchain_core.messages import BaseMessage
from langgraph.checkpoint.base import CheckpointTuple

from langgraph_agentgit.views.text import message_preview

if TYPE_CHECKING:
    from langgraph_agentgit.effects.models import EffectRecord

#: Columns the text of a diff fits in unless told otherwise.
DEFAULT_WIDTH = 80


@dataclass(frozen=True)
class CheckpointPoint:
    """One side of a diff (or the common ancestor)."""

    thread_id: str
    checkpoint_id: str
    step: int | None

    @classmethod
    def of(cls, t: CheckpointTuple) -> CheckpointPoint:
        step = (t.metadata or {}).get("step")
        return cls(
            thread_id=str(t.config["configurable"]["thread_id"]),
            checkpoint_id=str(t.config["configurable"]["checkpoint_id"]),
            step=step if isinstance(step, int) else None,
        )

    def to_dict(self) -> dict[str, Any]:
        return {"thread_id": self.thread_id, "checkpoint_id": self.checkpoint_id, "step": self.step}


@dataclass(frozen=True)
class ChannelDiff:
    """How one channel differs.

    Attributes:
        channel: the channel name.
        status: ``"added"`` (only ``b`` has the channel), ``"removed"`` (only ``a``), or
            ``"changed"``.
        kind: ``"messages"`` for a list of messages, else ``"value"``.
        before: ``a``'s value (``None`` when absent).
        after: ``b``'s value (``None`` when absent).
        added: messages only ``b`` has (by id), in ``b``'s order.
        removed: messages only ``a`` has (by id), in ``a``'s order.
        changed: ``(a's, b's)`` pairs of messages with one id and different content.
        common: how many message ids both have.
    """

    channel: str
    status: Literal["added", "removed", "changed"]
    kind: Literal["messages", "value"]
    before: Any = None
    after: Any = None
    added: tuple[BaseMessage, ...] = ()
    removed: tuple[BaseMessage, ...] = ()
    changed: tuple[tuple[BaseMessage, BaseMessage], ...] = ()
    common: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"channel": self.channel, "status": self.status, "kind": self.kind}
        if self.kind == "messages":
            out["added"] = [message_dict(m) for m in self.added]
            out["removed"] = [message_dict(m) for m in self.removed]
            out["changed"] = [
                {"before": message_dict(x), "after": message_dict(y)} for x, y in self.changed
            ]
            out["common"] = self.common
        else:
            out["before"] = jsonable(self.before)
            out["after"] = jsonable(self.after)
        return out


@dataclass(frozen=True)
class CheckpointDiff:
    """Per-channel differences from checkpoint ``a`` to checkpoint ``b``.

    Attributes:
        a: the checkpoint compared from.
        b: the checkpoint compared to.
        base: their nearest common ancestor (the fork point for two branches); ``None``
            when they share no history.
        channels: the channels that differ, by name. LangGraph's internal channels
            (``__start__``, ``branch:to:…``) are left out.
        undone: the tool calls on the path from ``base`` to ``a`` or to ``b`` (from the
            start when ``base`` is ``None``) that a rollback undid, oldest undo first.
    """

    a: CheckpointPoint
    b: CheckpointPoint
    base: CheckpointPoint | None
    channels: dict[str, ChannelDiff] = field(default_factory=dict)
    undone: tuple[EffectRecord, ...] = ()

    @classmethod
    def compute(
        cls,
        a: CheckpointTuple,
        b: CheckpointTuple,
        base: CheckpointTuple | None = None,
        undone: Sequence[EffectRecord] = (),
    ) -> CheckpointDiff:
        """Compare two checkpoint tuples (``base``: their common ancestor, if known;
        ``undone``: the undone effects on their paths from it)."""
        values_a = a.checkpoint["channel_values"]
        values_b = b.checkpoint["channel_values"]
        channels: dict[str, ChannelDiff] = {}
        for name in sorted(set(values_a) | set(values_b)):
            if _internal(name):
                continue
            found = _channel_diff(name, values_a, values_b)
            if found is not None:
                channels[name] = found
        return cls(
            a=CheckpointPoint.of(a),
            b=CheckpointPoint.of(b),
            base=CheckpointPoint.of(base) if base is not None else None,
            channels=channels,
            undone=tuple(undone),
        )

    @property
    def is_empty(self) -> bool:
        """True when no user-visible channel differs."""
        return not self.channels

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (messages as ``{"id", "type", "content", ...}``)."""
        return {
            "a": self.a.to_dict(),
            "b": self.b.to_dict(),
            "base": self.base.to_dict() if self.base else None,
            "channels": {name: c.to_dict() for name, c in self.channels.items()},
            "undone_effects": [_undone_dict(e) for e in self.undone],
        }

    def __str__(self) -> str:
        return self.format()

    def format(self, width: int | None = DEFAULT_WIDTH) -> str:
        """The diff as text whose lines fit in ``width`` columns (80 by default)::

            diff 1f1e6153-220a-6eac-800d-169e797ac0e7 (step 13, thread 1710aa3f)
              -> 1f1e6153-21f6-6886-8008-f17d4ed2e910 (step 8, thread c1312ec1)
            common ancestor: 1f1e6153-21bc-6bc4-8003-5f284e8e43cc (step 3, thread 1710aa3f)
            messages (changed): +1 -1, 4 in common
              - ai: Here is what I found: 3 * 9.99 = 29.97
              + human: Sorry, I meant order B-2002.
            undone effects: 1
              ! refund_order (call call_5_0) undone 2026-11-30T05:20:12.182278+00:00

        Checkpoint ids are whole, thread ids shortened to 8 characters; message texts
        are cut to the width. ``width=None`` cuts nothing and adds each message's id.
        :meth:`to_dict` has everything.
        """
        lines = [
            f"diff {_point(self.a, width)}",
            f"  -> {_point(self.b, width)}",
            "common ancestor: " + ("none" if self.base is None else _point(self.base, width)),
        ]
        if not self.channels:
            lines.append("no differences")
        for c in self.channels.values():
            if c.kind == "messages":
                counts = f"+{len(c.added)} -{len(c.removed)}"
                if c.changed:
                    counts += f" ~{len(c.changed)}"
                lines.append(f"{c.channel} ({c.status}): {counts}, {c.common} in common")
                lines.extend("  - " + _preview(m, _room(width, 4)) for m in c.removed)
                for before, after in c.changed:
                    half = _room(width, 9, 2)
                    lines.append(f"  ~ {_preview(before, half)}  =>  {_preview(after, half)}")
                lines.extend("  + " + _preview(m, _room(width, 4)) for m in c.added)
            else:
                head = f"{c.channel} ({c.status}): "
                half = _room(width, len(head) + 4, 2)
                lines.append(f"{head}{_short(c.before, half)} -> {_short(c.after, half)}")
        if self.undone:
            lines.append(f"undone effects: {len(self.undone)}")
            lines.extend(
                f"  ! {e.tool_name} (call {e.tool_call_id or '?'}) undone {e.updated_at}"
                for e in self.undone
            )
        return "\n".join(_cut(line, width) for line in lines)


def _undone_dict(e: EffectRecord) -> dict[str, Any]:
    return {
        "effect_id": e.effect_id,
        "tool_name": e.tool_name,
        "tool_call_id": e.tool_call_id,
        "checkpoint_id": e.checkpoint_id,
        "thread_id": e.thread_id,
        "kind": e.kind,
        "run_id": e.run_id,
        "undone_at": e.updated_at,
    }


def _internal(channel: str) -> bool:
    return channel.startswith("__") or ":" in channel


def _is_messages(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(m, BaseMessage) for m in value)


def _key(message: BaseMessage, index: int) -> str:
    # add_messages gives every message an id; a message without one is keyed by position.
    return message.id if message.id else f"#{index}"


def _channel_diff(name: str, a: Mapping[str, Any], b: Mapping[str, Any]) -> ChannelDiff | None:
    status: Literal["added", "removed", "changed"]
    if name not in a:
        status = "added"
    elif name not in b:
        status = "removed"
    elif _equal(a[name], b[name]):
        return None
    else:
        status = "changed"
    before, after = a.get(name), b.get(name)
    if _is_messages(before or []) and _is_messages(after or []) and (before or after):
        return _messages_diff(name, status, before or [], after or [])
    return ChannelDiff(name, status, "value", before=before, after=after)


def _messages_diff(
    name: str,
    status: Literal["added", "removed", "changed"],
    before: Sequence[BaseMessage],
    after: Sequence[BaseMessage],
) -> ChannelDiff:
    old = {_key(m, i): m for i, m in enumerate(before)}
    new = {_key(m, i): m for i, m in enumerate(after)}
    return ChannelDiff(
        name,
        status,
        "messages",
        before=list(before),
        after=list(after),
        added=tuple(m for k, m in new.items() if k not in old),
        removed=tuple(m for k, m in old.items() if k not in new),
        changed=tuple((old[k], m) for k, m in new.items() if k in old and not _equal(old[k], m)),
        common=sum(1 for k in new if k in old),
    )


def _equal(x: Any, y: Any) -> bool:
    try:
        return bool(x == y)
    except Exception:  # e.g. arrays whose == is elementwise
        return x is y


def message_dict(message: BaseMessage) -> dict[str, Any]:
    """A message as plain data: id, type, content, and tool calls / tool call id if any."""
    out: dict[str, Any] = {
        "id": message.id,
        "type": message.type,
        "content": jsonable(message.content),
    }
    calls = getattr(message, "tool_calls", None)
    if calls:
        out["tool_calls"] = jsonable(calls)
    call_id = getattr(message, "tool_call_id", None)
    if call_id:
        out["tool_call_id"] = call_id
    return out


def jsonable(value: Any) -> Any:
    """``value`` if it is JSON data, messages as dicts, anything else as its ``repr``."""
    if isinstance(value, BaseMessage):
        return message_dict(value)
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def _room(width: int | None, used: int, parts: int = 1) -> int | None:
    """Columns left for each of ``parts`` texts on a line of ``width`` once ``used`` are."""
    return None if width is None else max((width - used) // parts, 12)


def _cut(text: str, width: int | None) -> str:
    return text if width is None or len(text) <= width else text[: max(width - 1, 0)] + "…"


def _thread(thread_id: str) -> str:
    # UUIDs are unique in their first 8 characters in practice; other ids are kept.
    return thread_id[:8] if len(thread_id) == 36 else _cut(thread_id, 20)


def _point(p: CheckpointPoint, width: int | None) -> str:
    step = "?" if p.step is None else p.step
    thread = p.thread_id if width is None else _thread(p.thread_id)
    return f"{p.checkpoint_id} (step {step}, thread {thread})"


def _preview(message: BaseMessage, width: int | None) -> str:
    if width is None:
        return f"{message_preview(message, None)} [{message.id}]"
    return message_preview(message, width)


def _short(value: Any, width: int | None) -> str:
    return _cut(repr(value), width)
