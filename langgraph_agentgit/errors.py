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


# --- sessions ---------------------------------------------------------------------------


class SessionNotFoundError(AgentGitError, LookupError):
    """An external session id that does not exist."""


class BranchNotFoundError(AgentGitError, LookupError):
    """A thread that is not one of the given session's branches (internal sessions)."""


class TagNotFoundError(CheckpointNotFoundError):
    """A tag name the session does not have.

    A subclass of :class:`CheckpointNotFoundError` because wherever a tag is accepted it
    stands for a checkpoint: ``except CheckpointNotFoundError`` covers both.
    """


class TagExistsError(AgentGitError, ValueError):
    """A tag name already used in the session (tag names are unique per session)."""


class InvalidTagError(AgentGitError, ValueError):
    """A tag name that could be mistaken for a checkpoint id, or is empty."""


class LastBranchError(AgentGitError, ValueError):
    """Deleting the only remaining branch of a session (delete the session instead)."""
