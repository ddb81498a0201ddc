"""langgraph-agentgit: version control for LangGraph agents."""

from langgraph_agentgit.aio import AsyncAgentGitSaver
from langgraph_agentgit.diff import ChannelDiff, CheckpointDiff
from langgraph_agentgit.errors import (
    AgentGitError,
    BranchNotFoundError,
    CheckpointNotFoundError,
    CorruptDataError,
    DatabaseLockedError,
    InvalidTagError,
    LastBranchError,
    ReadOnlyDatabaseError,
    SchemaVersionError,
    SessionNotFoundError,
    TagExistsError,
    TagNotFoundError,
    ThreadDeletedError,
    ThreadExistsError,
    ThreadNotFoundError,
    UnsafeTypeError,
)
from langgraph_agentgit.saver import AgentGitSaver
from langgraph_agentgit.sessions.manager import SessionManager
from langgraph_agentgit.sessions.models import (
    Branch,
    BranchHistory,
    CheckpointSummary,
    ExternalSession,
)
from langgraph_agentgit.storage.check import CheckReport, Problem, RepairReport
from langgraph_agentgit.storage.serde import StrictSerializer
from langgraph_agentgit.timeline import Timeline

__all__ = [
    "AgentGitError",
    "AgentGitSaver",
    "AsyncAgentGitSaver",
    "Branch",
    "BranchHistory",
    "BranchNotFoundError",
    "ChannelDiff",
    "CheckReport",
    "CheckpointDiff",
    "CheckpointNotFoundError",
    "CheckpointSummary",
    "CorruptDataError",
    "DatabaseLockedError",
    "ExternalSession",
    "InvalidTagError",
    "LastBranchError",
    "Problem",
    "ReadOnlyDatabaseError",
    "RepairReport",
    "SchemaVersionError",
    "SessionManager",
    "SessionNotFoundError",
    "StrictSerializer",
    "TagExistsError",
    "TagNotFoundError",
    "ThreadDeletedError",
    "ThreadExistsError",
    "ThreadNotFoundError",
    "Timeline",
    "UnsafeTypeError",
]
