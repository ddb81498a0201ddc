"""`CheckpointDiff`: what changed, channel by channel, between two checkpoints.

Built by :meth:`SessionManager.diff` from two checkpoints on any branches and their
nearest common ancestor. A message list is compared by message id: the messages only
``b`` has are *added*, those only ``a`` has are *removed*, those both have under one id
with different content are *changed*. With LangGraph's append-only ``add_messages``
reducer, when ``a`` and ``b`` are on different branches the removed messages are the ones
``a``'s side added after the common ancestor and the added ones those ``b``'s side added.
Other channels are compared by value.

::

    d = mgr.diff(main_head, retry_head)
    print(d)              # text
    d.to_dict()           # JSON-ready
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langchain_core.messages import BaseMessage
from langgraph.checkpoint.base import CheckpointTuple

PREVIEW_LENGTH = 70


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
    """

    a: CheckpointPoint
    b: CheckpointPoint
    base: CheckpointPoint | None
    channels: dict[str, ChannelDiff] = field(default_factory=dict)

    @classmethod
    def compute(
        cls, a: CheckpointTuple, b: CheckpointTuple, base: CheckpointTuple | None = None
    ) -> CheckpointDiff:
        """Compare two checkpoint tuples (``base``: their common ancestor, if known)."""
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
        }

    def __str__(self) -> str:
        lines = [f"diff {_point(self.a)} -> {_point(self.b)}"]
        if self.base is None:
            lines.append("common ancestor: none")
        else:
            lines.append(f"common ancestor: {_point(self.base)}")
        if not self.channels:
            lines.append("no differences")
        for c in self.channels.values():
            if c.kind == "messages":
                counts = f"+{len(c.added)} -{len(c.removed)}"
                if c.changed:
                    counts += f" ~{len(c.changed)}"
                lines.append(f"{c.channel} ({c.status}): {counts}, {c.common} in common")
                lines.extend(f"  - {_preview(m)}" for m in c.removed)
                for before, after in c.changed:
                    lines.append(f"  ~ {_preview(before)}  =>  {_preview(after)}")
                lines.extend(f"  + {_preview(m)}" for m in c.added)
            else:
                lines.append(f"{c.channel} ({c.status}): {_short(c.before)} -> {_short(c.after)}")
        return "\n".join(lines)


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


def _point(p: CheckpointPoint) -> str:
    step = "?" if p.step is None else p.step
    return f"{p.checkpoint_id} (step {step}, thread {p.thread_id})"


def _preview(message: BaseMessage) -> str:
    text = " ".join(str(message.text).split())
    calls = getattr(message, "tool_calls", None) or []
    if not text and calls:
        text = "calls " + ", ".join(str(c.get("name")) for c in calls)
    if len(text) > PREVIEW_LENGTH:
        text = text[: PREVIEW_LENGTH - 1] + "…"
    return f"{message.type}: {text} [{message.id}]"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= PREVIEW_LENGTH else text[: PREVIEW_LENGTH - 1] + "…"
