"""langgraph-agentgit: version control for LangGraph agents."""

from langgraph_agentgit.aio import AsyncAgentGitSaver
from langgraph_agentgit.errors import (
    AgentGitError,
    CheckpointNotFoundError,
    SchemaVersionError,
    ThreadExistsError,
    ThreadNotFoundError,
    UnsafeTypeError,
)
from langgraph_agentgit.saver import AgentGitSaver
from langgraph_agentgit.storage.serde import StrictSerializer

__all__ = [
    "AgentGitError",
    "AgentGitSaver",
    "AsyncAgentGitSaver",
    "CheckpointNotFoundError",
    "SchemaVersionError",
    "StrictSerializer",
    "ThreadExistsError",
    "ThreadNotFoundError",
    "UnsafeTypeError",
]
