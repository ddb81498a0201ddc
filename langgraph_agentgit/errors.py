"""Exceptions raised by langgraph-agentgit. Every one names the id it is about."""

from __future__ import annotations


class AgentGitError(Exception):
    """Base class of every error this package raises on purpose."""


class SchemaVersionError(AgentGitError):
    """The database was written by a newer, incompatible version of the package."""


class ThreadNotFoundError(AgentGitError, LookupError):
    """A thread id that has no checkpoints in this database."""


class CheckpointNotFoundError(AgentGitError, LookupError):
    """A checkpoint that does not exist, or is not reachable from the given thread/session."""


class ThreadExistsError(AgentGitError, ValueError):
    """A thread id that is already in use where a new one is required."""


class UnsafeTypeError(AgentGitError, TypeError):
    """A stored value names a type that is not allowed to be deserialized."""
