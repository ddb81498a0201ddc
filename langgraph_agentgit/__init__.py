"""langgraph-agentgit: version control for LangGraph agents.

The names below are imported on first use, so that ``import langgraph_agentgit`` (and the
``agentgit`` command's start-up, ``--help`` and ``--version``) does not pay for importing
LangGraph until something needs it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from langgraph_agentgit._version import __version__

if TYPE_CHECKING:
    from langgraph_agentgit.aio import AsyncAgentGitSaver
    from langgraph_agentgit.diff import ChannelDiff, CheckpointDiff
    from langgraph_agentgit.effects import (
        Effect,
        EffectOutcome,
        PlannedEffect,
        RollbackPlan,
        RollbackResult,
        UndoRun,
    )
    from langgraph_agentgit.errors import (
        AgentGitError,
        AmbiguousSessionError,
        BranchExistsError,
        BranchNotFoundError,
        CheckpointNotFoundError,
        ConnectionInTransactionError,
        CopyMismatchError,
        CorruptDataError,
        DatabaseLockedError,
        EffectsUndoneWarning,
        ExportFormatError,
        ImportConflictError,
        InvalidBranchNameError,
        InvalidSessionNameError,
        InvalidTagError,
        LastBranchError,
        ReadOnlyDatabaseError,
        SchemaVersionError,
        SessionLimitError,
        SessionNotFoundError,
        SessionScopeError,
        TagExistsError,
        TagNotFoundError,
        TargetNotEmptyError,
        ThreadDeletedError,
        ThreadExistsError,
        ThreadNotFoundError,
        TurnNotFoundError,
        UndoFailedError,
        UndoRunNotFoundError,
        UnsafeTypeError,
    )
    from langgraph_agentgit.portable import ExportReport, ImportReport
    from langgraph_agentgit.retention import PruneReport
    from langgraph_agentgit.saver import AgentGitSaver
    from langgraph_agentgit.sessions.manager import SessionManager
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
    from langgraph_agentgit.storage.check import CheckReport, Problem, RepairReport
    from langgraph_agentgit.storage.serde import StrictSerializer
    from langgraph_agentgit.timeline import Timeline
    from langgraph_agentgit.usage import StorageReport

#: Public name -> the module that defines it.
_EXPORTS: dict[str, str] = {
    "AsyncAgentGitSaver": "langgraph_agentgit.aio",
    "ChannelDiff": "langgraph_agentgit.diff",
    "CheckpointDiff": "langgraph_agentgit.diff",
    **dict.fromkeys(
        (
            "Effect",
            "EffectOutcome",
            "PlannedEffect",
            "RollbackPlan",
            "RollbackResult",
            "UndoRun",
        ),
        "langgraph_agentgit.effects",
    ),
    **dict.fromkeys(
        (
            "AgentGitError",
            "AmbiguousSessionError",
            "BranchExistsError",
            "BranchNotFoundError",
            "CheckpointNotFoundError",
            "ConnectionInTransactionError",
            "CopyMismatchError",
            "CorruptDataError",
            "DatabaseLockedError",
            "EffectsUndoneWarning",
            "ExportFormatError",
            "ImportConflictError",
            "InvalidBranchNameError",
            "InvalidSessionNameError",
            "InvalidTagError",
            "LastBranchError",
            "ReadOnlyDatabaseError",
            "SchemaVersionError",
            "SessionLimitError",
            "SessionNotFoundError",
            "SessionScopeError",
            "TagExistsError",
            "TagNotFoundError",
            "TargetNotEmptyError",
            "ThreadDeletedError",
            "ThreadExistsError",
            "ThreadNotFoundError",
            "TurnNotFoundError",
            "UndoFailedError",
            "UndoRunNotFoundError",
            "UnsafeTypeError",
        ),
        "langgraph_agentgit.errors",
    ),
    "AgentGitSaver": "langgraph_agentgit.saver",
    "PruneReport": "langgraph_agentgit.retention",
    **dict.fromkeys(("ExportReport", "ImportReport"), "langgraph_agentgit.portable"),
    "SessionManager": "langgraph_agentgit.sessions.manager",
    **dict.fromkeys(
        (
            "Branch",
            "BranchHistory",
            "CheckpointSummary",
            "ExternalSession",
            "SearchHit",
            "SessionEvent",
            "TokenUsage",
            "Turn",
            "Usage",
        ),
        "langgraph_agentgit.sessions.models",
    ),
    **dict.fromkeys(("CheckReport", "Problem", "RepairReport"), "langgraph_agentgit.storage.check"),
    "StrictSerializer": "langgraph_agentgit.storage.serde",
    "Timeline": "langgraph_agentgit.timeline",
    "StorageReport": "langgraph_agentgit.usage",
}

__all__ = [
    "AgentGitError",
    "AgentGitSaver",
    "AmbiguousSessionError",
    "AsyncAgentGitSaver",
    "Branch",
    "BranchExistsError",
    "BranchHistory",
    "BranchNotFoundError",
    "ChannelDiff",
    "CheckReport",
    "CheckpointDiff",
    "CheckpointNotFoundError",
    "CheckpointSummary",
    "ConnectionInTransactionError",
    "CopyMismatchError",
    "CorruptDataError",
    "DatabaseLockedError",
    "Effect",
    "EffectOutcome",
    "EffectsUndoneWarning",
    "ExportFormatError",
    "ExportReport",
    "ExternalSession",
    "ImportConflictError",
    "ImportReport",
    "InvalidBranchNameError",
    "InvalidSessionNameError",
    "InvalidTagError",
    "LastBranchError",
    "PlannedEffect",
    "Problem",
    "PruneReport",
    "ReadOnlyDatabaseError",
    "RepairReport",
    "RollbackPlan",
    "RollbackResult",
    "SchemaVersionError",
    "SearchHit",
    "SessionEvent",
    "SessionLimitError",
    "SessionManager",
    "SessionNotFoundError",
    "SessionScopeError",
    "StorageReport",
    "StrictSerializer",
    "TagExistsError",
    "TagNotFoundError",
    "TargetNotEmptyError",
    "ThreadDeletedError",
    "ThreadExistsError",
    "ThreadNotFoundError",
    "Timeline",
    "TokenUsage",
    "Turn",
    "TurnNotFoundError",
    "UndoFailedError",
    "UndoRun",
    "UndoRunNotFoundError",
    "UnsafeTypeError",
    "Usage",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'langgraph_agentgit' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
