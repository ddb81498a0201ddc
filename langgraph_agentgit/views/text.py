"""The text rules every view shares: one line for a message, and ids abbreviated.

Imports nothing heavy (LangGraph and LangChain are imported by the functions that look
at messages), so that the CLI's start-up stays quick.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage

#: Shortest abbreviation shown for an id; longer where needed to stay unique, like git.
MIN_ABBREV = 8
#: Characters a message preview is cut to unless told otherwise.
PREVIEW_WIDTH = 60

#: How a message's ``type`` is shown: LangChain's "human" is the user.
ROLES = {"human": "user", "ai": "ai", "tool": "tool", "system": "system"}


def cut(text: str, width: int | None) -> str:
    """``text`` cut to ``width`` characters, the last one ``…`` when cut (``None``: whole)."""
    return text if width is None or len(text) <= width else text[: max(width - 1, 0)] + "…"


def role(message: BaseMessage) -> str:
    """The role a message is shown with: ``user``, ``ai``, ``tool``, ``system``, else its
    LangChain type."""
    return ROLES.get(message.type, message.type)


def message_text(message: BaseMessage) -> str:
    """A message's text content: a string as it is, content blocks' text joined by
    spaces (non-text blocks, such as images, are left out)."""
    content = message.content
    if isinstance(content, str):
        return content
    parts: list[str] = []
    for part in content:
        if isinstance(part, str):
            parts.append(part)
        elif isinstance(part, dict) and isinstance(part.get("text"), str):
            parts.append(part["text"])
    return " ".join(parts)


def call_text(call: Any) -> str:
    """A tool call as ``name('arg', 2)``: its argument values' reprs, in order."""
    args = call.get("args") if isinstance(call, dict) else None
    values = args.values() if isinstance(args, dict) else ()
    return f"{call.get('name') if isinstance(call, dict) else call}({', '.join(map(repr, values))})"


def message_preview(message: BaseMessage | None, width: int | None = PREVIEW_WIDTH) -> str:
    """One line for a message: ``user: …``, ``ai → calculator('3 * 9.99')``, ``tool: …``.

    Whitespace runs (newlines included) become one space; the line is cut to ``width``
    characters (``None``: never). An AI message that calls tools is shown by its calls.
    ``""`` for ``None``. The one rule behind the CLI's listings, timelines, diffs, the
    web viewer and :func:`langgraph_agentgit.agents.message_preview`.
    """
    if message is None:
        return ""
    calls = getattr(message, "tool_calls", None) or []
    if message.type == "ai" and calls:
        line = f"{role(message)} → {', '.join(call_text(c) for c in calls)}"
    else:
        line = f"{role(message)}: {' '.join(message_text(message).split())}"
    return cut(line, width)


def common_prefix(a: str, b: str) -> int:
    """How many leading characters ``a`` and ``b`` share."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def abbreviations(
    ids: Iterable[str], minimum: int = MIN_ABBREV, *, aligned: bool = True
) -> dict[str, str]:
    """Each id cut to its shortest prefix that no other id in ``ids`` starts with, like
    git's abbreviated hashes, and at least ``minimum`` characters long.

    ``aligned`` (the default, for listings whose columns line up): every id cut to one
    length, the longest any of them needs. LangGraph's checkpoint ids begin with a
    timestamp, so ids written close together share long prefixes. The one abbreviation
    rule of the CLI, timelines and the web viewer; ``aligned=False`` is for lines of
    text (a timeline's tree), where a shorter id leaves room for the rest.
    """
    ordered = sorted(set(ids))
    need: dict[str, int] = {}
    for i, value in enumerate(ordered):
        length = minimum
        for j in (i - 1, i + 1):
            if 0 <= j < len(ordered):
                length = max(length, common_prefix(value, ordered[j]) + 1)
        need[value] = length
    if aligned:
        longest = max(need.values(), default=minimum)
        return {value: value[:longest] for value in ordered}
    return {value: value[: need[value]] for value in ordered}
