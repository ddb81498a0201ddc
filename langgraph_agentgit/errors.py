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


class ThreadDeletedError(AgentGitError, LookupError):
    """A write into a thread that was deleted with its session (or as one of its
    branches) while a run was still writing into it; nothing of the write is stored."""


class ThreadExistsError(AgentGitError, ValueError):
    """A thread id that is already in use where a new one is required."""


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
    """A tag name that is empty, holds control characters, is too long, or could be
    mistaken for a checkpoint id or a prefix of one (only hex digits and ``-``)."""


class BranchExistsError(AgentGitError, ValueError):
    """A branch name already used in the session (branch names are unique per session)."""


class InvalidBranchNameError(AgentGitError, ValueError):
    """A branch name that is empty, holds control characters, is too long, or could be
    mistaken for a thread or checkpoint id (only hex digits and ``-``)."""


class LastBranchError(AgentGitError, ValueError):
    """Deleting the only remaining branch of a session (delete the session instead)."""


class AmbiguousSessionError(AgentGitError, LookupError):
    """A session name or id prefix (:meth:`SessionManager.find_session`) that matches
    more than one session; the message names them."""


class InvalidSessionNameError(AgentGitError, ValueError):
    """A session name that is empty once its control characters are stripped (a name
    given as ``""`` is allowed: the session is untitled)."""


class SessionLimitError(AgentGitError, ValueError):
    """A new (or reopened) session would take its user past ``max_sessions_per_user``
    with ``on_limit="refuse"``; nothing was written."""


class SessionScopeError(AgentGitError, PermissionError):
    """An operation a :class:`SessionManager` scoped to one user (``user_id=``) cannot do:
    create a session for another user, or scan the whole database (``check``)."""


class TurnNotFoundError(AgentGitError, LookupError):
    """A conversation turn the branch does not have (a turn number out of range, no
    user turn matching a text, no turn to undo)."""


class UndoFailedError(AgentGitError):
    """A rollback with ``undo_effects=True`` (or ``resume_undo``) did not undo every
    effect it was responsible for: raised by ``RollbackResult.raise_for_failures()``.
    ``result`` is the :class:`~langgraph_agentgit.effects.RollbackResult`; the message
    names each effect that failed, was not run or is in doubt."""

    def __init__(self, message: str, result: object) -> None:
        super().__init__(message)
        self.result = result


class UndoRunNotFoundError(AgentGitError, LookupError):
    """An undo run id the session does not have (``resume_undo(..., run_id=...)``)."""


class EffectsUndoneWarning(UserWarning):
    """Issued by ``SessionManager.checkout`` when the branch checked out had tool effects
    undone by a rollback: continuing it continues a history whose effects no longer hold
    (they are not redone). A warning, not an error: the checkout is made."""


# --- damage and access ------------------------------------------------------------------


class CorruptDataError(AgentGitError):
    """Stored data is damaged: a value, row or link the database should hold is missing,
    undecodable or inconsistent.

    Raised instead of returning a state that differs from what was stored. The message
    names what is damaged; ``thread_id``, ``checkpoint_id`` and ``blob_id`` carry it too
    (``None`` where unknown). Reads of other threads are unaffected. ``agentgit check``
    lists every kind of damage.
    """

    def __init__(
        self,
        message: str,
        *,
        thread_id: str | None = None,
        checkpoint_id: str | None = None,
        blob_id: int | None = None,
    ) -> None:
        where = ", ".join(
            f"{name} {value!r}"
            for name, value in (
                ("thread", thread_id),
                ("checkpoint", checkpoint_id),
                ("blob", blob_id),
            )
            if value is not None
        )
        super().__init__(f"{message} ({where})" if where else message)
        self.reason = message
        self.thread_id = thread_id
        self.checkpoint_id = checkpoint_id
        self.blob_id = blob_id

    def located(
        self,
        *,
        thread_id: str | None = None,
        checkpoint_id: str | None = None,
        blob_id: int | None = None,
    ) -> CorruptDataError:
        """The same error (same class), also naming where it was met."""
        return type(self)(
            self.reason,
            thread_id=self.thread_id or thread_id,
            checkpoint_id=self.checkpoint_id or checkpoint_id,
            blob_id=self.blob_id if self.blob_id is not None else blob_id,
        )


class UnsafeTypeError(CorruptDataError, TypeError):
    """A stored value names a type that is not allowed to be deserialized: tampering, or
    damage that happens to read as another type name. Nothing of it is imported or run.
    A kind of :class:`CorruptDataError`, so it names where it was met."""


class DatabaseLockedError(AgentGitError, TimeoutError):
    """Another connection held the database's write lock for longer than the wait allowed
    (``lock_timeout``); nothing was written."""


class ReadOnlyDatabaseError(AgentGitError, PermissionError):
    """A write to a database opened read-only, or in a location that cannot be written."""


class TargetNotEmptyError(AgentGitError, ValueError):
    """The target of a copy already holds agentgit data (or an agentgit schema of an
    older version); nothing was written to it."""


class CopyMismatchError(AgentGitError):
    """After a copy, the target reads back differently from the source (the copy was
    committed; the message names the first difference)."""


class ConnectionInTransactionError(AgentGitError, RuntimeError):
    """A connection given to a Postgres saver is inside a transaction of its caller's: the
    saver runs its own transactions and never commits or rolls back someone else's."""


class ExportFormatError(AgentGitError, ValueError):
    """An export file that cannot be imported: not JSON Lines, an unknown format or
    version, a missing or ill-typed field, a reference to nothing, a value the strict
    serializer refuses, a truncated file. Nothing was written. ``line`` (1-based) and
    ``field`` say where, when known."""

    def __init__(self, message: str, *, line: int | None = None, field: str | None = None):
        super().__init__(message)
        self.line = line
        self.field = field


class ImportConflictError(AgentGitError, ValueError):
    """An import whose sessions or threads already exist in the target (with
    ``on_conflict="error"``); nothing was written."""
