"""External sessions made of branch threads: :class:`SessionManager` and its records."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langgraph_agentgit.sessions.models import (
    Branch,
    BranchHistory,
    CheckpointSummary,
    ExternalSession,
    SearchHit,
    SessionEvent,
    TokenUsage,
    Turn,
    Usage,
)

if TYPE_CHECKING:
    from langgraph_agentgit.sessions.manager import SessionManager

__all__ = [
    "Branch",
    "BranchHistory",
    "CheckpointSummary",
    "ExternalSession",
    "SearchHit",
    "SessionEvent",
    "SessionManager",
    "TokenUsage",
    "Turn",
    "Usage",
]


def __getattr__(name: str) -> Any:
    # Imported lazily: the manager imports the presentation modules (timeline, diff),
    # which import the models from this package.
    if name == "SessionManager":
        from langgraph_agentgit.sessions.manager import SessionManager

        return SessionManager
    raise AttributeError(name)
