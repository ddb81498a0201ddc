"""`SessionManager`: external sessions whose rollbacks open branch threads.

Each operation is written once, as a function of a connection in
:mod:`langgraph_agentgit.sessions.store`, and run through the saver's runners: the sync
methods block, their ``a``-prefixed twins don't, and both work with
:class:`~langgraph_agentgit.AgentGitSaver` and
:class:`~langgraph_agentgit.AsyncAgentGitSaver` (whose sync methods must be called from
another thread than its event loop's, as for the saver itself).
"""

from __future__ import annotations

import inspect
import logging
import os
import warnings
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import IO, Any, Literal, TypeAlias, overload

from langchain_core.messages import BaseMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple
from langgraph.types import StateSnapshot

from langgraph_agentgit import portable, retention, usage
from langgraph_agentgit.diff import CheckpointDiff
from langgraph_agentgit.effects import store as effect_ops
from langgraph_agentgit.effects.models import (
    EffectRecord,
    OnError,
    PlannedEffect,
    RollbackPlan,
    RollbackResult,
    UndoHandler,
    UndoRun,
)
from langgraph_agentgit.effects.undo import UndoRegistry, arun_started, run_started
from langgraph_agentgit.errors import (
    EffectsUndoneWarning,
    ReadOnlyDatabaseError,
    SessionScopeError,
)
from langgraph_agentgit.portable import ExportReport, ImportReport, OnConflict
from langgraph_agentgit.retention import PruneReport
from langgraph_agentgit.saver_base import AgentGitSaverBase
from langgraph_agentgit.sessions import store as ops
from langgraph_agentgit.sessions.models import (
    Branch,
    ExternalSession,
    SearchHit,
    SessionEvent,
    Turn,
    Usage,
)
from langgraph_agentgit.storage import check as check_module
from langgraph_agentgit.storage import search as search_index
from langgraph_agentgit.storage.check import CheckReport
from langgraph_agentgit.timeline import Timeline
from langgraph_agentgit.usage import StorageReport

CheckpointLike: TypeAlias = "str | RunnableConfig | StateSnapshot | CheckpointTuple | Branch"
"""A checkpoint id or a tag name of the session, a config carrying ``checkpoint_id`` (a
config with only a ``thread_id`` means that thread's head), a ``StateSnapshot``, a
``CheckpointTuple``, or a :class:`Branch` (its head)."""

#: The events :meth:`SessionManager.on` accepts.
EVENTS = ("create", "branch", "rollback", "checkout", "tag", "delete")
EventCallback: TypeAlias = "Callable[[SessionEvent], Awaitable[None] | None]"

logger = logging.getLogger("langgraph_agentgit.sessions")
# Said before a rebuild that reads every stored checkpoint (minutes on a big database).
_INDEXING = (
    "building the message index behind search and usage counts, after `agentgit copy` or "
    "for a database written before it existed; it reads every stored checkpoint"
)

_UNINDEXED = (
    "search and usage counts need the message index, and this database opened read-only "
    "has not got it up to date (after `agentgit copy`, or written before the index "
    "existed): open it writable once to build it (`agentgit reindex`, or any search "
    "without --read-only)"
)


class SessionManager:
    """External sessions, their branches and tags, stored in the saver's database.

    A session starts with one thread. ``rollback`` forks a new thread at an earlier
    checkpoint (copy-on-write: one row, whatever the history) and makes it current; the
    old timeline stays whole and can be continued. Counts are derived from the
    checkpoint rows the saver maintains in the same transaction as each checkpoint, so
    they are exact after a crash or a restart::

        mgr = SessionManager(saver)
        s = mgr.create_session(user_id="alice", name="support")
        graph.invoke({"messages": [("user", "hi")]}, mgr.config(s.id))
        mgr.tag(s.id, graph.get_state(mgr.config(s.id)), "greeted")
        graph.invoke({"messages": [("user", "order A-1")]}, mgr.config(s.id))
        branch = mgr.rollback(s.id, "greeted")     # a new branch, now current
        graph.invoke({"messages": [("user", "order B-2")]}, mgr.config(s.id))
        print(mgr.timeline(s.id))                  # both timelines, the current one marked

    Every failure raises an :class:`~langgraph_agentgit.AgentGitError` subclass naming the
    id, and leaves the database unchanged.

    ``undo`` registers undo handlers by tool name (``{"create_order": cancel_order}``, or
    ``{"pay": (refund, "compensable")}``); see :meth:`register_undo` and
    :meth:`rollback`'s ``undo_effects``.
    """

    def __init__(
        self,
        saver: AgentGitSaverBase,
        *,
        user_id: str | None = None,
        unique_names: bool = False,
        max_sessions_per_user: int | None = None,
        on_limit: str = "refuse",
        undo: Mapping[str, UndoHandler | tuple[UndoHandler | None, str]] | None = None,
    ) -> None:
        """
        Args:
            saver: the ``AgentGitSaver`` or ``AsyncAgentGitSaver`` whose database holds
                the sessions.
            user_id: scope every read and write to this user's sessions (Agent-Git's
                ownership checks): another user's session behaves exactly like a missing
                one (same error class and message, ``None`` from ``get_session``, absent
                from listings), new sessions belong to this user, and ``check()``, which
                reads the whole database, raises :class:`SessionScopeError`.
            unique_names: a new session named like one of its user's others gets the next
                number, ``"support #2"``, ``"support #3"`` (Hermes' title lineage).
            max_sessions_per_user: how many open (not ended) sessions a user may have
                (the Rust agent's limit); ``None``: no limit. Sessions without a user
                count as one user.
            on_limit: ``"refuse"`` (the new session raises :class:`SessionLimitError`)
                or ``"retire_oldest"`` (the user's oldest open sessions are ended with
                reason ``"retired"``, deactivated ones first, then the least recently
                active, in the same transaction as the new one). The limit is checked
                and the session created in one write transaction, which on SQLite is
                the single writer and on PostgreSQL holds the schema's exclusive
                advisory lock, so concurrent creates never exceed it.
            undo: undo handlers by tool name, as :meth:`register_undo` registers them:
                a handler (kind ``"reversible"``) or a ``(handler, kind)`` pair.

        Raises ``TypeError`` for a saver of another kind or a non-string ``user_id``, and
        ``ValueError`` for a bad ``user_id`` (empty, surrounded by whitespace, holding
        control characters, longer than 256 characters), ``max_sessions_per_user``
        (< 1) or ``on_limit``.
        """
        if not isinstance(saver, AgentGitSaverBase):
            raise TypeError(
                "SessionManager needs an AgentGitSaver or AsyncAgentGitSaver, got "
                f"{type(saver).__name__}"
            )
        ops.check_user_id(user_id)
        if max_sessions_per_user is not None and (
            isinstance(max_sessions_per_user, bool)
            or not isinstance(max_sessions_per_user, int)
            or max_sessions_per_user < 1
        ):
            raise ValueError(
                f"max_sessions_per_user must be a positive int or None, not "
                f"{max_sessions_per_user!r}"
            )
        if on_limit not in ops.ON_LIMIT:
            raise ValueError(f"on_limit must be one of {ops.ON_LIMIT}, not {on_limit!r}")
        self.saver = saver
        self.user_id = user_id
        self.policy = ops.Policy(
            owner=user_id,
            unique_names=bool(unique_names),
            max_sessions_per_user=max_sessions_per_user,
            on_limit=on_limit,
        )
        self._listeners: dict[str, list[EventCallback]] = {kind: [] for kind in EVENTS}
        self._undo = UndoRegistry.of(undo)

    # --- scoped runners: every session id goes through the owner check ---------------------

    def _sread(self, fn: Callable[..., Any], session_id: str, *args: Any) -> Any:
        return self.saver._read(ops.scoped, self.saver.store, self.user_id, fn, session_id, *args)

    async def _asread(self, fn: Callable[..., Any], session_id: str, *args: Any) -> Any:
        return await self.saver._aread(
            ops.scoped, self.saver.store, self.user_id, fn, session_id, *args
        )

    def _swrite(self, fn: Callable[..., Any], session_id: str, *args: Any) -> Any:
        return self.saver._write(ops.scoped, self.saver.store, self.user_id, fn, session_id, *args)

    async def _aswrite(self, fn: Callable[..., Any], session_id: str, *args: Any) -> Any:
        return await self.saver._awrite(
            ops.scoped, self.saver.store, self.user_id, fn, session_id, *args
        )

    # --- events ----------------------------------------------------------------------------

    def on(self, event: str, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback(SessionEvent)`` after each change of kind ``event`` made
        through this manager commits: ``"create"`` (``create_session``, ``adopt``),
        ``"branch"`` (``branch``, ``branch_from_turn``/``branch_from_text`` with
        ``switch=False``), ``"rollback"`` (``rollback``, ``undo_last_turn``,
        ``branch_from_turn``/``branch_from_text``), ``"checkout"``, ``"tag"``,
        ``"delete"`` (``delete_session``, ``delete_branch``). The event carries the
        session, source thread, new thread and fork-point checkpoint ids
        (:class:`SessionEvent`). Codex users' fork event; no seed store has one.

        Callbacks run in the calling thread, in the order registered, once the
        transaction has committed: a callback that raises cannot undo the change. Its
        exception is logged (logger ``langgraph_agentgit.sessions``, with the traceback)
        and not raised; the other callbacks still run and the method returns its result.
        The async methods await a callback that returns an awaitable; the sync methods
        cannot, and log an error for one instead. Changes made by other managers or
        processes are not seen. Returns a function that removes the callback.
        Raises ``ValueError`` for an unknown event and ``TypeError`` for a callback that
        is not callable."""
        if event not in self._listeners:
            raise ValueError(f"unknown session event {event!r}; one of {', '.join(EVENTS)}")
        if not callable(callback):
            raise TypeError(f"an event callback must be callable, not {type(callback).__name__}")
        self._listeners[event].append(callback)

        def remove() -> None:
            if callback in self._listeners[event]:
                self._listeners[event].remove(callback)

        return remove

    def _emit(self, event: SessionEvent) -> None:
        for callback in list(self._listeners[event.kind]):
            try:
                result = callback(event)
                if inspect.isawaitable(result):
                    close = getattr(result, "close", None)
                    if close is not None:
                        close()
                    logger.error(
                        "session event %r: callback %r is async; the sync methods cannot "
                        "await it (use the async twins)",
                        event.kind,
                        callback,
                    )
            except Exception:
                logger.exception(
                    "session event %r: callback %r raised; the change was committed",
                    event.kind,
                    callback,
                )

    async def _aemit(self, event: SessionEvent) -> None:
        for callback in list(self._listeners[event.kind]):
            try:
                result = callback(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception(
                    "session event %r: callback %r raised; the change was committed",
                    event.kind,
                    callback,
                )

    def _created(self, s: ExternalSession) -> SessionEvent:
        return SessionEvent(
            "create", s.id, s.user_id, thread_id=s.current_thread_id, name=s.name or None
        )

    @staticmethod
    def _forked(kind: str, b: Branch, user_id: str | None) -> SessionEvent:
        return SessionEvent(
            kind,
            b.session_id,
            user_id,
            source_thread_id=b.parent_thread_id,
            thread_id=b.thread_id,
            checkpoint_id=b.fork_checkpoint_id,
            name=b.name,
        )

    # --- sessions --------------------------------------------------------------------------

    def create_session(
        self,
        *,
        user_id: str | None = None,
        name: str = "",
        metadata: Mapping[str, Any] | None = None,
        thread_id: str | None = None,
    ) -> ExternalSession:
        """Create a session and its first thread (a new UUID unless ``thread_id`` is
        given; it must not exist yet). The thread has no checkpoints until the graph runs
        on :meth:`config`::

            s = mgr.create_session(user_id="alice", name="support")
            graph.invoke(inputs, mgr.config(s.id))

        ``name`` is sanitized (:func:`~langgraph_agentgit.sessions.store.sanitize_session_name`:
        one line, control characters stripped, at most 200 characters) and, with
        ``unique_names``, numbered (``"support #2"``). A scoped manager creates the
        session for its user (another ``user_id`` raises :class:`SessionScopeError`).
        Raises :class:`InvalidSessionNameError` for a name nothing is left of,
        :class:`SessionLimitError` past ``max_sessions_per_user`` with
        ``on_limit="refuse"``, :class:`ThreadExistsError` for a ``thread_id`` in use.
        Emits ``"create"``.
        """
        s = self.saver._write(
            ops.create_with_policy,
            self.saver.store,
            self.policy,
            user_id,
            name,
            metadata,
            thread_id,
        )
        self._emit(self._created(s))
        return s

    async def acreate_session(
        self,
        *,
        user_id: str | None = None,
        name: str = "",
        metadata: Mapping[str, Any] | None = None,
        thread_id: str | None = None,
    ) -> ExternalSession:
        """Async twin of :meth:`create_session`."""
        s = await self.saver._awrite(
            ops.create_with_policy,
            self.saver.store,
            self.policy,
            user_id,
            name,
            metadata,
            thread_id,
        )
        await self._aemit(self._created(s))
        return s

    def adopt(
        self,
        thread_id: str,
        *,
        user_id: str | None = None,
        name: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> ExternalSession:
        """Make an existing plain thread the first thread of a new session (its history
        is kept as is). Raises :class:`ThreadNotFoundError` for an unknown thread and
        :class:`ThreadExistsError` for one that already belongs to a session (a scoped
        manager does not say which session when it is another user's). Names, scope and
        limits as for :meth:`create_session`. Emits ``"create"``."""
        s = self.saver._write(
            ops.adopt_with_policy, self.saver.store, self.policy, thread_id, user_id, name, metadata
        )
        self._emit(self._created(s))
        return s

    async def aadopt(
        self,
        thread_id: str,
        *,
        user_id: str | None = None,
        name: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> ExternalSession:
        """Async twin of :meth:`adopt`."""
        s = await self.saver._awrite(
            ops.adopt_with_policy, self.saver.store, self.policy, thread_id, user_id, name, metadata
        )
        await self._aemit(self._created(s))
        return s

    def get_session(self, session_id: str) -> ExternalSession | None:
        """The session, or ``None`` if there is none with this id (or it is another
        user's, for a scoped manager). ``TypeError`` for an id that is not a string."""
        return self.saver._read(ops.scoped_get_session, self.saver.store, self.user_id, session_id)

    async def aget_session(self, session_id: str) -> ExternalSession | None:
        """Async twin of :meth:`get_session`."""
        return await self.saver._aread(
            ops.scoped_get_session, self.saver.store, self.user_id, session_id
        )

    def _check_user(self, user_id: str | None) -> None:
        """A scoped manager asked about another user's sessions: SessionScopeError."""
        ops.check_user_id(user_id)
        if self.user_id is not None and user_id is not None and user_id != self.user_id:
            raise SessionScopeError(
                f"this session manager is scoped to user {self.user_id!r}; it cannot read "
                f"the sessions of user {user_id!r}"
            )

    def list_sessions(
        self,
        *,
        user_id: str | None = None,
        active_only: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[ExternalSession]:
        """Sessions, most recent activity first (a checkpoint written into one of a
        session's threads counts as activity), optionally of one user / active only.
        A scoped manager lists only its user's (another ``user_id`` raises
        :class:`SessionScopeError`, as :meth:`create_session` does).

        ``limit`` and ``offset`` page through them (``None``: all): a page costs the same
        on a database of 10 sessions as on one of 10,000, since the activity index gives
        the order. Sessions whose activity changes between two pages may move from one
        to the other. Raises ``ValueError`` for a negative or non-integer ``limit`` or
        ``offset``."""
        self._check_user(user_id)
        page = ops.check_page(limit, offset)
        return self.saver._read(
            ops.scoped_list_sessions, self.saver.store, self.user_id, user_id, active_only, page
        )

    async def alist_sessions(
        self,
        *,
        user_id: str | None = None,
        active_only: bool = False,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[ExternalSession]:
        """Async twin of :meth:`list_sessions`."""
        self._check_user(user_id)
        page = ops.check_page(limit, offset)
        return await self.saver._aread(
            ops.scoped_list_sessions, self.saver.store, self.user_id, user_id, active_only, page
        )

    def count_sessions(
        self, *, user_id: str | None = None, open_only: bool = False, active_only: bool = False
    ) -> int:
        """How many sessions there are (of ``user_id``; ``None``: of everyone, or of a
        scoped manager's user; another user's raises :class:`SessionScopeError` on a
        scoped manager), only those not ended with ``open_only`` (what
        ``max_sessions_per_user`` limits), only the active ones with ``active_only``
        (what ``list_sessions(active_only=True)`` lists). One ``count(*)`` (Agent-Git's
        per-user session count)."""
        self._check_user(user_id)
        return self.saver._read(
            ops.count_sessions, self.saver.store, self.user_id, user_id, open_only, active_only
        )

    async def acount_sessions(
        self, *, user_id: str | None = None, open_only: bool = False, active_only: bool = False
    ) -> int:
        """Async twin of :meth:`count_sessions`."""
        self._check_user(user_id)
        return await self.saver._aread(
            ops.count_sessions, self.saver.store, self.user_id, user_id, open_only, active_only
        )

    def find_session(self, name_or_id_prefix: str) -> ExternalSession:
        """The session whose id is ``name_or_id_prefix``, else the one session named so
        or whose id starts with it (Hermes' lookup by title, git's id prefixes). Raises
        :class:`AmbiguousSessionError` naming the matches when there are several,
        :class:`SessionNotFoundError` when there is none (a scoped manager sees only its
        user's sessions), ``ValueError`` for an empty text."""
        return self.saver._read(ops.find_session, self.saver.store, self.user_id, name_or_id_prefix)

    async def afind_session(self, name_or_id_prefix: str) -> ExternalSession:
        """Async twin of :meth:`find_session`."""
        return await self.saver._aread(
            ops.find_session, self.saver.store, self.user_id, name_or_id_prefix
        )

    def session_of_thread(self, thread_id: str) -> ExternalSession | None:
        """The session a thread (any of its branches) belongs to, or ``None`` for a
        plain thread, an unknown one, or another user's for a scoped manager
        (Agent-Git's lookup of the session of an internal session). ``TypeError`` for a
        thread id that is not a string."""
        return self.saver._read(
            ops.scoped_session_of_thread, self.saver.store, self.user_id, thread_id
        )

    async def asession_of_thread(self, thread_id: str) -> ExternalSession | None:
        """Async twin of :meth:`session_of_thread`."""
        return await self.saver._aread(
            ops.scoped_session_of_thread, self.saver.store, self.user_id, thread_id
        )

    def session_of(self, thread_id: str) -> ExternalSession | None:
        """The session a thread belongs to, or ``None`` for a plain thread (the same as
        :meth:`session_of_thread`)."""
        return self.session_of_thread(thread_id)

    async def asession_of(self, thread_id: str) -> ExternalSession | None:
        """Async twin of :meth:`session_of`."""
        return await self.asession_of_thread(thread_id)

    def config(self, session_id: str) -> RunnableConfig:
        """``{"configurable": {"thread_id": <current thread>}}`` to run the graph on."""
        session: ExternalSession = self._sread(ops.require_session, session_id)
        return session.config

    async def aconfig(self, session_id: str) -> RunnableConfig:
        """Async twin of :meth:`config`."""
        session: ExternalSession = await self._asread(ops.require_session, session_id)
        return session.config

    def deactivate(self, session_id: str) -> ExternalSession:
        """Mark the session inactive (hidden by ``list_sessions(active_only=True)``); its
        branches keep working."""
        return self._swrite(ops.set_active, session_id, False)

    async def adeactivate(self, session_id: str) -> ExternalSession:
        """Async twin of :meth:`deactivate`."""
        return await self._aswrite(ops.set_active, session_id, False)

    def activate(self, session_id: str) -> ExternalSession:
        """Undo :meth:`deactivate`."""
        return self._swrite(ops.set_active, session_id, True)

    async def aactivate(self, session_id: str) -> ExternalSession:
        """Async twin of :meth:`activate`."""
        return await self._aswrite(ops.set_active, session_id, True)

    def end_session(self, session_id: str, *, reason: str | None = None) -> ExternalSession:
        """End the session (Hermes' ``end_session``): ``ended_at`` is set, ``end_reason``
        is ``reason``, and it becomes inactive. Nothing is deleted and its branches keep
        working; an ended session no longer counts toward ``max_sessions_per_user``.
        Ending an ended session again records the new time and reason. Raises
        :class:`SessionNotFoundError`, and ``ValueError`` for a reason longer than 1,000
        characters (``MAX_END_REASON_LENGTH``)."""
        return self.saver._write(ops.end_session, self.saver.store, self.policy, session_id, reason)

    async def aend_session(self, session_id: str, *, reason: str | None = None) -> ExternalSession:
        """Async twin of :meth:`end_session`."""
        return await self.saver._awrite(
            ops.end_session, self.saver.store, self.policy, session_id, reason
        )

    def reopen_session(self, session_id: str) -> ExternalSession:
        """Undo :meth:`end_session`: ``ended_at`` and ``end_reason`` are cleared and the
        session is active again (an open session is returned unchanged). It counts
        toward ``max_sessions_per_user`` again, which may refuse it
        (:class:`SessionLimitError`) or retire another. Raises
        :class:`SessionNotFoundError`."""
        return self.saver._write(ops.reopen_session, self.saver.store, self.policy, session_id)

    async def areopen_session(self, session_id: str) -> ExternalSession:
        """Async twin of :meth:`reopen_session`."""
        return await self.saver._awrite(
            ops.reopen_session, self.saver.store, self.policy, session_id
        )

    def delete_session(self, session_id: str) -> None:
        """Delete the session, its tags, and all its threads with their checkpoints and
        writes — except rows another thread still inherits (e.g. a fork adopted by another
        session), which stay until nothing needs them. Emits ``"delete"`` (with
        ``thread_ids``)."""
        gone, user_id = self.saver._write(
            ops.scoped_with_owner,
            self.saver.store,
            self.user_id,
            ops.delete_session_returning,
            session_id,
        )
        self._emit(self._deleted(gone, user_id))

    async def adelete_session(self, session_id: str) -> None:
        """Async twin of :meth:`delete_session`."""
        gone, user_id = await self.saver._awrite(
            ops.scoped_with_owner,
            self.saver.store,
            self.user_id,
            ops.delete_session_returning,
            session_id,
        )
        await self._aemit(self._deleted(gone, user_id))

    @staticmethod
    def _deleted(gone: ExternalSession, user_id: str | None) -> SessionEvent:
        return SessionEvent(
            "delete",
            gone.id,
            user_id,
            name=gone.name or None,
            thread_ids=gone.internal_session_ids,
        )

    # --- branches --------------------------------------------------------------------------

    def _fork(self, kind: str, fn: Callable[..., Any], session_id: str, *args: Any) -> Branch:
        b, user_id = self.saver._write(
            ops.scoped_with_owner, self.saver.store, self.user_id, fn, session_id, *args
        )
        self._emit(self._forked(kind, b, user_id))
        return b

    async def _afork(
        self, kind: str, fn: Callable[..., Any], session_id: str, *args: Any
    ) -> Branch:
        b, user_id = await self.saver._awrite(
            ops.scoped_with_owner, self.saver.store, self.user_id, fn, session_id, *args
        )
        await self._aemit(self._forked(kind, b, user_id))
        return b

    @overload
    def rollback(
        self,
        session_id: str,
        checkpoint: CheckpointLike,
        *,
        name: str | None = None,
        thread_id: str | None = None,
        undo_effects: Literal[False] = False,
        on_error: OnError | None = None,
    ) -> Branch: ...

    @overload
    def rollback(
        self,
        session_id: str,
        checkpoint: CheckpointLike,
        *,
        name: str | None = None,
        thread_id: str | None = None,
        undo_effects: Literal[True],
        on_error: OnError | None = None,
    ) -> RollbackResult: ...

    @overload
    def rollback(
        self,
        session_id: str,
        checkpoint: CheckpointLike,
        *,
        name: str | None = None,
        thread_id: str | None = None,
        undo_effects: bool,
        on_error: OnError | None = None,
    ) -> Branch | RollbackResult: ...

    def rollback(
        self,
        session_id: str,
        checkpoint: CheckpointLike,
        *,
        name: str | None = None,
        thread_id: str | None = None,
        undo_effects: bool = False,
        on_error: OnError | None = None,
    ) -> Branch | RollbackResult:
        """Open a new branch starting at ``checkpoint`` and make it current.

        ``checkpoint`` must be reachable from one of the session's threads. ``name`` must
        be unused in the session (:class:`BranchExistsError`) and valid
        (:class:`InvalidBranchNameError`: not empty, one line, not only hex digits and
        ``-``); without one the branch is named ``branch-<n>``. Nothing is
        copied or lost: the branch sees the history up to and including the checkpoint,
        and the thread it came from stays whole. ``branch_count`` grows by one. Emits
        ``"rollback"``::

            history = list(graph.get_state_history(mgr.config(s.id)))
            branch = mgr.rollback(s.id, history[3])          # or a checkpoint id / tag
            graph.invoke({"messages": [("user", "try again")]}, mgr.config(s.id))

        With ``undo_effects=True`` it also undoes the tool calls the current branch made
        after its common ancestor with ``checkpoint`` (:meth:`plan_rollback` lists them)
        and returns a :class:`~langgraph_agentgit.effects.RollbackResult` instead of the
        branch. The branch is opened and every effect to undo claimed in one transaction
        (an effect claimed by another rollback, or undone before, is skipped); the
        ``"rollback"`` event is emitted once it commits; then each handler runs, newest
        first, outside any transaction, its outcome recorded as it goes. A handler that
        raises is recorded as failed; ``on_error="stop"`` leaves the older effects for
        :meth:`resume_undo`, ``"continue"`` goes on. Handler errors are never raised:
        ``result.raise_for_failures()`` does (:class:`UndoFailedError`). ``on_error``
        (default ``"stop"``) goes only with ``undo_effects=True`` (``ValueError``
        otherwise); ``undo_effects`` must be a ``bool`` (``TypeError``).
        """
        on_error = _rollback_options(undo_effects, on_error)
        if not undo_effects:
            return self._fork(
                "rollback",
                ops.create_branch_for,
                session_id,
                self.user_id,
                ops.as_ref(checkpoint),
                name,
                thread_id,
                True,
            )
        started, user_id = self.saver._write(
            ops.scoped_with_owner,
            self.saver.store,
            self.user_id,
            effect_ops.start_rollback,
            session_id,
            self.user_id,
            ops.as_ref(checkpoint),
            name,
            thread_id,
            self._undo.kinds(),
            on_error,
        )
        if started.branch is not None:
            self._emit(self._forked("rollback", started.branch, user_id))
        return run_started(self.saver, self._undo, started, on_error)

    @overload
    async def arollback(
        self,
        session_id: str,
        checkpoint: CheckpointLike,
        *,
        name: str | None = None,
        thread_id: str | None = None,
        undo_effects: Literal[False] = False,
        on_error: OnError | None = None,
    ) -> Branch: ...

    @overload
    async def arollback(
        self,
        session_id: str,
        checkpoint: CheckpointLike,
        *,
        name: str | None = None,
        thread_id: str | None = None,
        undo_effects: Literal[True],
        on_error: OnError | None = None,
    ) -> RollbackResult: ...

    @overload
    async def arollback(
        self,
        session_id: str,
        checkpoint: CheckpointLike,
        *,
        name: str | None = None,
        thread_id: str | None = None,
        undo_effects: bool,
        on_error: OnError | None = None,
    ) -> Branch | RollbackResult: ...

    async def arollback(
        self,
        session_id: str,
        checkpoint: CheckpointLike,
        *,
        name: str | None = None,
        thread_id: str | None = None,
        undo_effects: bool = False,
        on_error: OnError | None = None,
    ) -> Branch | RollbackResult:
        """Async twin of :meth:`rollback` (async handlers are awaited, sync ones run in a
        worker thread)."""
        on_error = _rollback_options(undo_effects, on_error)
        if not undo_effects:
            return await self._afork(
                "rollback",
                ops.create_branch_for,
                session_id,
                self.user_id,
                ops.as_ref(checkpoint),
                name,
                thread_id,
                True,
            )
        started, user_id = await self.saver._awrite(
            ops.scoped_with_owner,
            self.saver.store,
            self.user_id,
            effect_ops.start_rollback,
            session_id,
            self.user_id,
            ops.as_ref(checkpoint),
            name,
            thread_id,
            self._undo.kinds(),
            on_error,
        )
        if started.branch is not None:
            await self._aemit(self._forked("rollback", started.branch, user_id))
        return await arun_started(self.saver, self._undo, started, on_error)

    def branch(
        self,
        session_id: str,
        checkpoint: CheckpointLike,
        *,
        name: str | None = None,
        thread_id: str | None = None,
    ) -> Branch:
        """Like :meth:`rollback`, but the current branch stays current. Emits
        ``"branch"``."""
        return self._fork(
            "branch",
            ops.create_branch_for,
            session_id,
            self.user_id,
            ops.as_ref(checkpoint),
            name,
            thread_id,
            False,
        )

    async def abranch(
        self,
        session_id: str,
        checkpoint: CheckpointLike,
        *,
        name: str | None = None,
        thread_id: str | None = None,
    ) -> Branch:
        """Async twin of :meth:`branch`."""
        return await self._afork(
            "branch",
            ops.create_branch_for,
            session_id,
            self.user_id,
            ops.as_ref(checkpoint),
            name,
            thread_id,
            False,
        )

    def checkout(self, session_id: str, thread_id: str) -> Branch:
        """Make one of the session's branches current: ``thread_id`` is its thread id or
        its name (``mgr.checkout(s.id, "main")``). :class:`BranchNotFoundError` if the
        session has no such branch. Emits ``"checkout"`` (source: the branch that was
        current). Issues an :class:`EffectsUndoneWarning` when a rollback undid tool
        effects in that branch's history (they stay undone)."""
        (previous, b), user_id = self.saver._write(
            ops.scoped_with_owner, self.saver.store, self.user_id, ops.switch, session_id, thread_id
        )
        self._emit(self._switched(previous, b, user_id))
        _warn_undone(b, self._sread(effect_ops.undone_in_branch, session_id, b.thread_id))
        return b

    async def acheckout(self, session_id: str, thread_id: str) -> Branch:
        """Async twin of :meth:`checkout`."""
        (previous, b), user_id = await self.saver._awrite(
            ops.scoped_with_owner, self.saver.store, self.user_id, ops.switch, session_id, thread_id
        )
        await self._aemit(self._switched(previous, b, user_id))
        undone = await self._asread(effect_ops.undone_in_branch, session_id, b.thread_id)
        _warn_undone(b, undone)
        return b

    @staticmethod
    def _switched(previous: str, b: Branch, user_id: str | None) -> SessionEvent:
        return SessionEvent(
            "checkout",
            b.session_id,
            user_id,
            source_thread_id=previous,
            thread_id=b.thread_id,
            name=b.name,
        )

    def branches(self, session_id: str) -> list[Branch]:
        """The session's branches, oldest first; the first thread (``main``) included."""
        return self._sread(ops.branches, session_id)

    async def abranches(self, session_id: str) -> list[Branch]:
        """Async twin of :meth:`branches`."""
        return await self._asread(ops.branches, session_id)

    def get_branch(self, session_id: str, thread_id: str) -> Branch:
        """One branch of the session by thread id or name (:class:`BranchNotFoundError`
        if it has none)."""
        return self._sread(ops.get_branch, session_id, thread_id)

    async def aget_branch(self, session_id: str, thread_id: str) -> Branch:
        """Async twin of :meth:`get_branch`."""
        return await self._asread(ops.get_branch, session_id, thread_id)

    def delete_branch(self, session_id: str, thread_id: str) -> ExternalSession:
        """Delete one branch of the session (by thread id or name) with the checkpoints
        only it holds. Branches forked from it keep working
        (the rows they inherit stay). If it was current, its parent (or else the newest
        remaining branch) becomes current. The last branch cannot be deleted
        (:class:`LastBranchError`): delete the session. Emits ``"delete"`` (source: the
        deleted branch; thread: the branch current afterwards)."""
        (gone, after), user_id = self.saver._write(
            ops.scoped_with_owner,
            self.saver.store,
            self.user_id,
            ops.delete_branch_returning,
            session_id,
            thread_id,
        )
        self._emit(self._branch_deleted(gone, after, user_id))
        return after

    async def adelete_branch(self, session_id: str, thread_id: str) -> ExternalSession:
        """Async twin of :meth:`delete_branch`."""
        (gone, after), user_id = await self.saver._awrite(
            ops.scoped_with_owner,
            self.saver.store,
            self.user_id,
            ops.delete_branch_returning,
            session_id,
            thread_id,
        )
        await self._aemit(self._branch_deleted(gone, after, user_id))
        return after

    @staticmethod
    def _branch_deleted(gone: Branch, after: ExternalSession, user_id: str | None) -> SessionEvent:
        return SessionEvent(
            "delete",
            after.id,
            user_id,
            source_thread_id=gone.thread_id,
            thread_id=after.current_thread_id,
            checkpoint_id=gone.fork_checkpoint_id,
            name=gone.name,
        )

    def checkpoints(
        self, session_id: str, *, thread_id: str | None = None, limit: int | None = None
    ) -> list[CheckpointTuple]:
        """Root-namespace history of a branch (the current one by default; ``thread_id``
        may be its name), newest first: its own checkpoints, then the inherited ones down
        to the start. ``limit`` stops the read after that many."""
        return self._sread(ops.checkpoints, session_id, thread_id, limit)

    async def acheckpoints(
        self, session_id: str, *, thread_id: str | None = None, limit: int | None = None
    ) -> list[CheckpointTuple]:
        """Async twin of :meth:`checkpoints`."""
        return await self._asread(ops.checkpoints, session_id, thread_id, limit)

    # --- turns -----------------------------------------------------------------------------

    def turns(self, session_id: str, *, thread_id: str | None = None) -> list[Turn]:
        """The conversation's turns on a branch (the current one by default; ``thread_id``
        may be its name), first first: :class:`Turn` (number, the checkpoints before,
        at the start and at the end of it, the user message, tool calls, token usage
        from ``AIMessage.usage_metadata``). OpenAI's ``AdvancedSQLiteSession`` turns.

        A turn starts where human messages are appended to the ``messages`` channel;
        turns are numbered along the branch's whole history, so a branch numbers the
        turns it inherits as its parent does and its own ones after them. A graph without
        a ``messages`` list has no turns. Reads and decodes the branch's history.
        Raises :class:`SessionNotFoundError`, :class:`BranchNotFoundError`."""
        return self._sread(ops.turns, session_id, thread_id)

    async def aturns(self, session_id: str, *, thread_id: str | None = None) -> list[Turn]:
        """Async twin of :meth:`turns`."""
        return await self._asread(ops.turns, session_id, thread_id)

    def messages(
        self, session_id: str, *, limit: int | None = None, thread_id: str | None = None
    ) -> list[BaseMessage]:
        """The last ``limit`` messages (all with ``None``) of a branch's head state (the
        current branch by default), oldest first: OpenAI's ``get_items(limit)``. ``[]``
        before the graph has run or without a ``messages`` list. ``ValueError`` for a
        negative ``limit``."""
        return self._sread(ops.messages, session_id, thread_id, limit)

    async def amessages(
        self, session_id: str, *, limit: int | None = None, thread_id: str | None = None
    ) -> list[BaseMessage]:
        """Async twin of :meth:`messages`."""
        return await self._asread(ops.messages, session_id, thread_id, limit)

    def branch_from_turn(
        self,
        session_id: str,
        n: int,
        *,
        name: str | None = None,
        thread_id: str | None = None,
        switch: bool = True,
    ) -> Branch:
        """A new branch that continues from just before turn ``n`` (1-based, as
        :meth:`turns` numbers them) of a branch (the current one by default): it holds
        turns 1 to n-1, and the next input to it is turn n again (OpenAI's
        ``create_branch_from_turn``). The fork point is the turn's
        ``before_checkpoint_id``; for a first turn that came as the thread's first input
        it is that input checkpoint (the branch's next input replaces the input pending
        there). Made current unless ``switch=False``; emits ``"rollback"`` (or
        ``"branch"``). Raises :class:`TurnNotFoundError` for a turn the branch does not
        have, and what :meth:`rollback` raises."""
        return self._fork(
            "rollback" if switch else "branch",
            ops.branch_at_turn,
            session_id,
            ("number", n),
            name,
            thread_id,
            switch,
        )

    async def abranch_from_turn(
        self,
        session_id: str,
        n: int,
        *,
        name: str | None = None,
        thread_id: str | None = None,
        switch: bool = True,
    ) -> Branch:
        """Async twin of :meth:`branch_from_turn`."""
        return await self._afork(
            "rollback" if switch else "branch",
            ops.branch_at_turn,
            session_id,
            ("number", n),
            name,
            thread_id,
            switch,
        )

    def branch_from_text(
        self,
        session_id: str,
        text: str,
        *,
        name: str | None = None,
        thread_id: str | None = None,
        switch: bool = True,
    ) -> Branch:
        """:meth:`branch_from_turn` at the first turn whose user message contains
        ``text`` (case-insensitive; OpenAI's branch from a turn found by content).
        Raises :class:`TurnNotFoundError` when no user turn matches."""
        return self._fork(
            "rollback" if switch else "branch",
            ops.branch_at_turn,
            session_id,
            ("text", text),
            name,
            thread_id,
            switch,
        )

    async def abranch_from_text(
        self,
        session_id: str,
        text: str,
        *,
        name: str | None = None,
        thread_id: str | None = None,
        switch: bool = True,
    ) -> Branch:
        """Async twin of :meth:`branch_from_text`."""
        return await self._afork(
            "rollback" if switch else "branch",
            ops.branch_at_turn,
            session_id,
            ("text", text),
            name,
            thread_id,
            switch,
        )

    def undo_last_turn(self, session_id: str, *, name: str | None = None) -> Branch:
        """Undo the current branch's last user turn (OpenAI's ``pop_item``, without
        destroying anything): a rollback to just before it (as :meth:`branch_from_turn`
        of the last turn), made current. The undone turn stays on the branch it was
        on. Emits ``"rollback"``. Raises :class:`TurnNotFoundError` when the branch has
        no turn."""
        return self._fork(
            "rollback", ops.branch_at_turn, session_id, ("last", None), name, None, True
        )

    async def aundo_last_turn(self, session_id: str, *, name: str | None = None) -> Branch:
        """Async twin of :meth:`undo_last_turn`."""
        return await self._afork(
            "rollback", ops.branch_at_turn, session_id, ("last", None), name, None, True
        )

    # --- tags ------------------------------------------------------------------------------

    def tag(self, session_id: str, checkpoint: CheckpointLike, name: str) -> None:
        """Name a checkpoint of the session (a restore point), e.g.
        ``mgr.tag(s.id, snapshot, "before-orders")``; ``rollback(s.id, "before-orders")``
        then goes back to it. Names are unique per session (:class:`TagExistsError`) and
        may not look like a checkpoint id (:class:`InvalidTagError`). Emits ``"tag"``."""
        (checkpoint_id, thread_id), user_id = self.saver._write(
            ops.scoped_with_owner,
            self.saver.store,
            self.user_id,
            ops.tag_located,
            session_id,
            ops.as_ref(checkpoint),
            name,
        )
        self._emit(self._tagged(session_id, user_id, thread_id, checkpoint_id, name))

    async def atag(self, session_id: str, checkpoint: CheckpointLike, name: str) -> None:
        """Async twin of :meth:`tag`."""
        (checkpoint_id, thread_id), user_id = await self.saver._awrite(
            ops.scoped_with_owner,
            self.saver.store,
            self.user_id,
            ops.tag_located,
            session_id,
            ops.as_ref(checkpoint),
            name,
        )
        await self._aemit(self._tagged(session_id, user_id, thread_id, checkpoint_id, name))

    @staticmethod
    def _tagged(
        session_id: str, user_id: str | None, thread_id: str, checkpoint_id: str, name: str
    ) -> SessionEvent:
        return SessionEvent(
            "tag",
            session_id,
            user_id,
            source_thread_id=thread_id,
            checkpoint_id=checkpoint_id,
            name=name,
        )

    def untag(self, session_id: str, name: str) -> None:
        """Remove a tag (:class:`TagNotFoundError` if the session has no such tag)."""
        self._swrite(ops.untag, session_id, name)

    async def auntag(self, session_id: str, name: str) -> None:
        """Async twin of :meth:`untag`."""
        await self._aswrite(ops.untag, session_id, name)

    def tags(self, session_id: str) -> dict[str, str]:
        """Tag name -> checkpoint id, oldest tag first."""
        return self._sread(ops.tags, session_id)

    async def atags(self, session_id: str) -> dict[str, str]:
        """Async twin of :meth:`tags`."""
        return await self._asread(ops.tags, session_id)

    # --- undoing effects ---------------------------------------------------------------------

    def register_undo(
        self, name: str, handler: UndoHandler | None, *, kind: str = "reversible"
    ) -> None:
        """Register the undo handler of the tool ``name`` (replacing an earlier one).

        ``handler(effect)`` is called with an :class:`~langgraph_agentgit.effects.Effect`:
        the call's ``args``, the tool's real ``result`` (the ``ToolMessage`` content) and
        ``artifact``; it may be sync or async, and raising marks the undo failed.
        ``kind`` is ``"reversible"``, ``"compensable"`` (both are run) or
        ``"irreversible"`` (never run; ``handler`` may be ``None``). ``ValueError`` for
        another kind."""
        self._undo.register(name, handler, kind)

    def plan_rollback(self, session_id: str, checkpoint: CheckpointLike) -> RollbackPlan:
        """What ``rollback(session_id, checkpoint, undo_effects=True)`` would undo,
        without changing anything: the tool calls in the current branch's history after
        its common ancestor with ``checkpoint``, newest first, each with its handler's
        kind and status (``will_undo``, ``no_handler``, ``irreversible``,
        ``tool_error``, ``undone``, ``in_progress``). Derived from the checkpointed
        messages and the recorded undos. Raises as :meth:`rollback` does for an unknown
        session or checkpoint."""
        return self._sread(effect_ops.plan, session_id, ops.as_ref(checkpoint), self._undo.kinds())

    async def aplan_rollback(self, session_id: str, checkpoint: CheckpointLike) -> RollbackPlan:
        """Async twin of :meth:`plan_rollback`."""
        return await self._asread(
            effect_ops.plan, session_id, ops.as_ref(checkpoint), self._undo.kinds()
        )

    def effects(self, session_id: str, *, thread_id: str | None = None) -> list[PlannedEffect]:
        """Every tool call in a branch's history (the current branch by default;
        ``thread_id`` may be its name), newest first, with its undo status."""
        return self._sread(effect_ops.branch_effects, session_id, thread_id, self._undo.kinds())

    async def aeffects(
        self, session_id: str, *, thread_id: str | None = None
    ) -> list[PlannedEffect]:
        """Async twin of :meth:`effects`."""
        return await self._asread(
            effect_ops.branch_effects, session_id, thread_id, self._undo.kinds()
        )

    def undo_runs(self, session_id: str) -> list[UndoRun]:
        """The session's rollbacks made with ``undo_effects=True``, oldest first."""
        return self._sread(effect_ops.runs, session_id)

    async def aundo_runs(self, session_id: str) -> list[UndoRun]:
        """Async twin of :meth:`undo_runs`."""
        return await self._asread(effect_ops.runs, session_id)

    def undone_effects(self, session_id: str) -> dict[str, EffectRecord]:
        """Every effect of the session a rollback claimed, by effect id, with its status
        (``pending``, ``running``, ``done``, ``failed``)."""
        return self._sread(effect_ops.claims, session_id)

    async def aundone_effects(self, session_id: str) -> dict[str, EffectRecord]:
        """Async twin of :meth:`undone_effects`."""
        return await self._asread(effect_ops.claims, session_id)

    def resume_undo(
        self,
        session_id: str,
        *,
        run_id: str | None = None,
        rerun_in_doubt: bool = False,
        on_error: OnError | None = None,
    ) -> list[RollbackResult]:
        """Continue the session's unfinished undo runs (a process died mid-way, a handler
        failed, or effects were left after a stop), oldest first, or only ``run_id``
        (:class:`UndoRunNotFoundError` if the session has no such run).

        Each run's effects are read again from the branch it left; effects undone since
        are skipped, failed ones retried, the rest run newest first as in
        :meth:`rollback` (``on_error`` defaults to the run's own). An effect whose handler
        a process started without reporting back is reported ``"running"`` while that
        process (recorded with the claim: hostname, pid, start time) is alive on this
        host, and is never started again. Once that process has exited, or when it ran on
        another host (which cannot be checked; the outcome's ``reason`` says so), the
        effect is *in doubt*: it may or may not have been undone, so it is reported
        (``"in_doubt"``) and not run again unless ``rerun_in_doubt=True``. For another
        host's effect pass that only when you know its process is gone, and prefer
        handlers that can tell whether their work is done.
        Returns one :class:`RollbackResult` per run. Raises
        :class:`CheckpointNotFoundError` for a run whose branch (the one it left) was
        deleted since, as its effects can no longer be read: resume the others by
        ``run_id``.
        """
        if on_error is not None:
            _check_on_error(on_error)
        found = self._swrite(
            effect_ops.resume_runs, session_id, run_id, self._undo.kinds(), rerun_in_doubt
        )
        return [
            run_started(self.saver, self._undo, started, on_error or started.run.on_error)
            for started in found
        ]

    async def aresume_undo(
        self,
        session_id: str,
        *,
        run_id: str | None = None,
        rerun_in_doubt: bool = False,
        on_error: OnError | None = None,
    ) -> list[RollbackResult]:
        """Async twin of :meth:`resume_undo`."""
        if on_error is not None:
            _check_on_error(on_error)
        found = await self._aswrite(
            effect_ops.resume_runs, session_id, run_id, self._undo.kinds(), rerun_in_doubt
        )
        return [
            await arun_started(self.saver, self._undo, started, on_error or started.run.on_error)
            for started in found
        ]

    # --- presentation ----------------------------------------------------------------------

    def timeline(self, session_id: str) -> Timeline:
        """The session's branch tree: ``print(mgr.timeline(s.id))``, ``.to_mermaid()``,
        ``.to_dict()``; renders itself in a notebook. A branch left by a rollback that
        undid its effects says how many, and of which tools."""
        session, histories, tags, claims = self._sread(_timeline_data, session_id)
        return Timeline(session, tuple(histories), tags, _undone_by_thread(claims))

    async def atimeline(self, session_id: str) -> Timeline:
        """Async twin of :meth:`timeline`."""
        session, histories, tags, claims = await self._asread(_timeline_data, session_id)
        return Timeline(session, tuple(histories), tags, _undone_by_thread(claims))

    def diff(
        self, a: CheckpointLike, b: CheckpointLike, *, session_id: str | None = None
    ) -> CheckpointDiff:
        """Per-channel differences from checkpoint ``a`` to ``b`` (any branches), with
        messages compared by id since their common ancestor, and the tool calls on
        either path from it that a rollback undid (``undone``)::

            print(mgr.diff(mgr.get_branch(s.id, main_id), branch))

        A bare checkpoint id is looked up in ``session_id``'s threads (tag names work
        too) or, without a session, in any live thread (a scoped manager: in its user's
        sessions; anything else is reported as missing).
        """
        found = self.saver._read(
            _diff_data,
            self.saver.store,
            self.user_id,
            ops.as_ref(a),
            ops.as_ref(b),
            session_id,
        )
        return CheckpointDiff.compute(*found)

    async def adiff(
        self, a: CheckpointLike, b: CheckpointLike, *, session_id: str | None = None
    ) -> CheckpointDiff:
        """Async twin of :meth:`diff`."""
        found = await self.saver._aread(
            _diff_data,
            self.saver.store,
            self.user_id,
            ops.as_ref(a),
            ops.as_ref(b),
            session_id,
        )
        return CheckpointDiff.compute(*found)

    # --- export and import ------------------------------------------------------------------

    def export_sessions(
        self,
        fileobj: IO[Any],
        *,
        session_ids: Sequence[str] | None = None,
        user_id: str | None = None,
    ) -> ExportReport:
        """Write sessions to ``fileobj`` (text or binary, written as UTF-8) in the versioned
        JSON Lines format of ``docs/export-format.md``: each session with its branches
        (and fork points), tags and deleted-branch tombstones, every checkpoint, pending
        write and value of the threads they need, each value once. Read in one read
        transaction, so the export is consistent while writers go on.

        ``session_ids``: these sessions (:class:`SessionNotFoundError` for an unknown
        one; nothing is written then); ``None``: every session, or every session of
        ``user_id`` when it is given. A scoped manager exports only its user's sessions
        (another user's is reported as missing; ``user_id`` of another user raises
        :class:`SessionScopeError`). The export holds each session's
        ``ended_at``/``end_reason`` and its undo records (undo runs and undone effects).
        Returns an
        :class:`~langgraph_agentgit.portable.ExportReport`.
        """
        _check_file(fileobj, "write")
        _check_session_ids(session_ids)
        self._check_user(user_id)
        return self.saver._read(
            portable.export_sessions,
            self.saver.store,
            portable.writer(fileobj),
            session_ids,
            user_id,
            self.user_id,
        )

    async def aexport_sessions(
        self,
        fileobj: IO[Any],
        *,
        session_ids: Sequence[str] | None = None,
        user_id: str | None = None,
    ) -> ExportReport:
        """Async twin of :meth:`export_sessions` (the file is written from the saver's
        worker thread)."""
        _check_file(fileobj, "write")
        _check_session_ids(session_ids)
        self._check_user(user_id)
        return await self.saver._aread(
            portable.export_sessions,
            self.saver.store,
            portable.writer(fileobj),
            session_ids,
            user_id,
            self.user_id,
        )

    def import_sessions(
        self, fileobj: IO[Any], *, on_conflict: OnConflict = "error"
    ) -> ImportReport:
        """Import an export written by :meth:`export_sessions` (text or binary file).

        The whole file is read and checked first: its header and version, every record's
        fields and types, every reference between records, and every value, decoded by
        the saver's strict serializer (no module is imported, nothing is called). Then
        everything is written in one write transaction. Values the database already
        holds are shared; keys of rows are renumbered, ids of sessions and threads kept.

        ``on_conflict``: ``"error"`` raises :class:`ImportConflictError` when a session
        or thread id of the file exists in this database; ``"new_ids"`` gives those new
        UUIDs (the report maps old ids to new ones).

        A scoped manager imports only its user's sessions (a file holding any other
        raises :class:`SessionScopeError`). ``max_sessions_per_user`` counts the imported
        open sessions: ``"refuse"`` raises :class:`SessionLimitError`,
        ``"retire_oldest"`` ends the oldest, in the import's transaction. Emits
        ``"create"`` for each imported session.

        ``fileobj`` is an open file object (a path raises ``TypeError``: open it first,
        ``open(path, "rb")``). Raises :class:`ExportFormatError` (naming the line and
        field) for a malformed,
        truncated or hostile file, :class:`ImportConflictError` as above; in every
        failure nothing is written. Returns an
        :class:`~langgraph_agentgit.portable.ImportReport`.
        """
        _check_on_conflict(on_conflict)
        _check_file(fileobj, "read")
        parsed = portable.read_export(fileobj, self.saver.serde)
        report, sessions = self.saver._write(
            _import_with_policy, self.saver.store, self.policy, parsed, on_conflict
        )
        for s in sessions:
            self._emit(self._created(s))
        return report

    async def aimport_sessions(
        self, fileobj: IO[Any], *, on_conflict: OnConflict = "error"
    ) -> ImportReport:
        """Async twin of :meth:`import_sessions` (the file is read and checked before the
        write transaction starts, in the event loop's thread)."""
        _check_on_conflict(on_conflict)
        _check_file(fileobj, "read")
        parsed = portable.read_export(fileobj, self.saver.serde)
        report, sessions = await self.saver._awrite(
            _import_with_policy, self.saver.store, self.policy, parsed, on_conflict
        )
        for s in sessions:
            await self._aemit(self._created(s))
        return report

    # --- search and usage --------------------------------------------------------------------

    def search(
        self,
        query: str,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        role: str | None = None,
        limit: int = ops.DEFAULT_SEARCH_LIMIT,
    ) -> list[SearchHit]:
        """Full-text search over every message of every branch of every session (Hermes
        Agent SessionDB's FTS5 search): :class:`SearchHit` s, best first, at most
        ``limit`` (1 to 1000), and fewer only when fewer messages match.

        A message branches share is one hit (on the thread that wrote it); a message
        only an abandoned branch holds is found like any other. ``query`` is any text: its
        words (runs of letters and digits, case and accents ignored) must all be in the
        message, a word ending in ``*`` matches as a prefix, and everything else (quotes,
        operators, parentheses, NUL) only separates words, so no query is a syntax error;
        one without words finds nothing. The text indexed is the message's content and
        its tool calls' names and arguments.

        ``user_id`` / ``session_id`` limit the search to a user's or a session's
        messages, ``role`` to one message type (``"human"`` or ``"user"``, ``"ai"`` or
        ``"assistant"``, ``"tool"``, ``"system"``). A manager scoped to a user searches
        only that user's sessions (another ``user_id`` finds nothing, another user's
        ``session_id`` is a missing one). Threads outside sessions are searched only by
        an unscoped manager without ``user_id`` and ``session_id``.

        Raises :class:`SessionNotFoundError` for an unknown ``session_id``,
        ``ValueError`` for an unknown ``role`` or a bad ``limit``, ``TypeError`` for a
        query that is not a string. A database written before the index existed is
        indexed first (once, in a write transaction; see :meth:`reindex`); opened
        read-only, it cannot be, and search raises :class:`ReadOnlyDatabaseError`.
        """
        self._index_if_needed()
        return self.saver._read(
            ops.search, self.saver.store, self.user_id, query, user_id, session_id, role, limit
        )

    async def asearch(
        self,
        query: str,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        role: str | None = None,
        limit: int = ops.DEFAULT_SEARCH_LIMIT,
    ) -> list[SearchHit]:
        """Async twin of :meth:`search`."""
        await self._aindex_if_needed()
        return await self.saver._aread(
            ops.search, self.saver.store, self.user_id, query, user_id, session_id, role, limit
        )

    def usage(self, session_id: str, *, thread_id: str | None = None) -> Usage:
        """What a session, or one of its branches (``thread_id``, or its name), holds:
        :class:`Usage` (turns, messages, tool calls by tool name, tokens from
        ``AIMessage.usage_metadata``), each message of the history counted once (OpenAI
        ``AdvancedSQLiteSession``'s usage per branch). Read from counts kept as
        checkpoints are written: no stored value is decoded. Raises
        :class:`SessionNotFoundError`, :class:`BranchNotFoundError`, and
        :class:`ReadOnlyDatabaseError` when the index must be rebuilt first (after
        `agentgit copy`, or a database older than the index) and this saver is
        read-only: counts from a stale index would be wrong."""
        self._index_if_needed()
        return self._sread(ops.usage, session_id, thread_id)

    async def ausage(self, session_id: str, *, thread_id: str | None = None) -> Usage:
        """Async twin of :meth:`usage`."""
        await self._aindex_if_needed()
        return await self._asread(ops.usage, session_id, thread_id)

    def usages(self, session_ids: Sequence[str]) -> dict[str, Usage]:
        """:meth:`usage` of several whole sessions, in one read transaction (the same
        errors; ``TypeError`` for a lone string, which would name one session per
        character)."""
        _check_session_ids(session_ids)
        ids = list(session_ids)
        self._index_if_needed()
        return self.saver._read(ops.usages, self.saver.store, self.user_id, ids)

    async def ausages(self, session_ids: Sequence[str]) -> dict[str, Usage]:
        """Async twin of :meth:`usages`."""
        _check_session_ids(session_ids)
        ids = list(session_ids)
        await self._aindex_if_needed()
        return await self.saver._aread(ops.usages, self.saver.store, self.user_id, ids)

    def reindex(self) -> int:
        """Rebuild the message index (search and usage) from the stored checkpoints, in
        one write transaction: for a database written before the index existed (done
        by the first search or usage read anyway), or to drop the words of deleted
        messages from SQLite's FTS index. Decodes every stored list; returns the number
        of messages indexed. Raises :class:`SessionScopeError` on a manager scoped to a
        user, :class:`CorruptDataError` when a stored value cannot be read."""
        self._require_unscoped("reindex()")
        return self.saver._write(search_index.reindex, self.saver.store)

    async def areindex(self) -> int:
        """Async twin of :meth:`reindex`."""
        self._require_unscoped("reindex()")
        return await self.saver._awrite(search_index.reindex, self.saver.store)

    def _index_if_needed(self) -> None:
        """Build the message index when the database needs it. Read-only, it cannot:
        a search or a count raises :class:`ReadOnlyDatabaseError` rather
        than answer "no match" or a count for messages it cannot see."""
        store = self.saver.store
        if self.saver._read(search_index.needs_reindex, store):
            if self.saver.read_only:
                raise ReadOnlyDatabaseError(_UNINDEXED)
            logger.warning(_INDEXING)
            try:
                self.saver._write(search_index.reindex_if_needed, store)
            except ReadOnlyDatabaseError as exc:
                raise ReadOnlyDatabaseError(_UNINDEXED) from exc

    async def _aindex_if_needed(self) -> None:
        """Async twin of :meth:`_index_if_needed`."""
        store = self.saver.store
        if await self.saver._aread(search_index.needs_reindex, store):
            if self.saver.read_only:
                raise ReadOnlyDatabaseError(_UNINDEXED)
            logger.warning(_INDEXING)
            try:
                await self.saver._awrite(search_index.reindex_if_needed, store)
            except ReadOnlyDatabaseError as exc:
                raise ReadOnlyDatabaseError(_UNINDEXED) from exc

    # --- where the bytes go ---------------------------------------------------------------

    def storage(self, session_id: str | None = None) -> StorageReport:
        """Bytes of the database and of each session (``agentgit du``): checkpoint rows
        and stored values, per session, branch and channel; a value reached by several
        sessions counted once, as shared; database totals. ``session_id``: that session
        only (:class:`SessionNotFoundError` when unknown). See
        :mod:`langgraph_agentgit.usage` for how bytes are attributed. A scoped manager
        reports one of its user's sessions (another user's is a missing one) and raises
        :class:`SessionScopeError` without ``session_id`` (that lists every user's)."""
        if session_id is None:
            self._require_unscoped("storage() without a session_id")
            return self.saver._read(usage.storage, self.saver.store, None)
        return self._sread(usage.storage, session_id)

    async def astorage(self, session_id: str | None = None) -> StorageReport:
        """Async twin of :meth:`storage`."""
        if session_id is None:
            self._require_unscoped("storage() without a session_id")
            return await self.saver._aread(usage.storage, self.saver.store, None)
        return await self._asread(usage.storage, session_id)

    def _require_unscoped(self, what: str) -> None:
        if self.user_id is not None:
            raise SessionScopeError(
                f"{what} reads every user's data; this session manager is scoped to user "
                f"{self.user_id!r}: use an unscoped SessionManager(saver)"
            )

    # --- retention ---------------------------------------------------------------------------

    def prune_sessions(
        self,
        *,
        older_than: timedelta | None = None,
        keep_last: int | None = None,
        user_id: str | None = None,
        keep_tagged: bool = True,
        dry_run: bool = False,
    ) -> PruneReport:
        """Remove old sessions and old checkpoints (``agentgit prune``), in one write
        transaction.

        ``older_than`` (a ``timedelta``): sessions whose last activity (a checkpoint
        written into one of their branches, or a change made through this class) is
        older are deleted whole, as :meth:`delete_session` deletes them. ``keep_last``
        (>= 1): every other session keeps, on each branch, the newest ``keep_last``
        checkpoints it wrote (its head among them); older ones are removed. At least one
        of the two. ``user_id``: only that user's sessions (a scoped manager: only its
        user's). ``keep_tagged``: a tagged checkpoint is kept, and a session with tags is
        not deleted whole; with ``False`` both go, and tags whose checkpoint no branch
        reaches any more are deleted.

        Nothing a live branch inherits is removed (a fork made before the prune lists
        the same history as before), and every checkpoint still listed reads back exactly
        as before: values (``DeltaChannel`` values included: what they are rebuilt from
        is kept), metadata, parent and pending writes. A subgraph namespace goes with the
        checkpoints it served (all its checkpoints older than the oldest kept one).
        Hidden rows that kept checkpoints or live forks need stay in the database: a
        tagged checkpoint older than the last ``keep_last`` keeps the rows between it and
        them (a branch made later from the kept history walks past them to reach it).
        The message index rows of the trimmed branches (and of their forks) are rebuilt
        in the same transaction, so a search or a usage count right after, read-only
        included, names only checkpoints the branches still list.

        ``dry_run``: the same prune, rolled back: the report says what would go and the
        bytes it would free, and nothing is written (it takes the write lock all the same,
        so it needs a writable database). Bytes are checkpoint rows and
        stored values as :meth:`storage` counts them; a SQLite file keeps its size until
        ``agentgit vacuum``. Emits ``"delete"`` for each session deleted (not in a dry
        run). Returns a :class:`~langgraph_agentgit.retention.PruneReport`.

        Raises ``ValueError`` for neither option, an ``older_than`` of zero or less or a
        ``keep_last`` below 1, ``TypeError`` for an ``older_than`` that is not a
        ``timedelta``, :class:`SessionNotFoundError` for a ``user_id`` without sessions,
        and :class:`SessionScopeError` for another user's on a scoped manager.
        """
        user = self._prune_user(older_than, keep_last, user_id, keep_tagged)
        report, gone = retention.run_prune(
            self.saver, older_than, keep_last, user, keep_tagged, bool(dry_run)
        )
        for session, owner in gone:
            self._emit(self._deleted(session, owner))
        return report

    async def aprune_sessions(
        self,
        *,
        older_than: timedelta | None = None,
        keep_last: int | None = None,
        user_id: str | None = None,
        keep_tagged: bool = True,
        dry_run: bool = False,
    ) -> PruneReport:
        """Async twin of :meth:`prune_sessions`."""
        user = self._prune_user(older_than, keep_last, user_id, keep_tagged)
        report, gone = await retention.arun_prune(
            self.saver, older_than, keep_last, user, keep_tagged, bool(dry_run)
        )
        for session, owner in gone:
            await self._aemit(self._deleted(session, owner))
        return report

    def _prune_user(
        self, older_than: Any, keep_last: Any, user_id: Any, keep_tagged: Any
    ) -> str | None:
        retention.check_prune_options(older_than, keep_last, keep_tagged)
        if user_id is not None and (not isinstance(user_id, str) or not user_id):
            raise ValueError(f"user_id must be a non-empty string or None, not {user_id!r}")
        self._check_user(user_id)
        return self.user_id if user_id is None else user_id

    # --- maintenance -----------------------------------------------------------------------

    def check(self, *, repair: bool = False, decode: bool = True) -> CheckReport:
        """Scan the whole database for damage and garbage (``agentgit check``): every
        reference resolves, no cycles of parent links, counts match their rows, every
        stored value decodes (``decode``). ``report.ok`` is false when there is damage;
        ``report.problems`` names each problem by kind and ids (see
        :mod:`langgraph_agentgit.storage.check`). With ``repair``, first removes what
        nothing refers to and recomputes counts (in one write transaction), then scans.
        SQLite only for now: on PostgreSQL it raises ``NotImplementedError``. A manager
        scoped to a user raises :class:`SessionScopeError` (the scan reads every user's
        data).
        """
        self._require_unscoped_sqlite_for_check()
        done = self.saver._write(check_module.repair) if repair else None
        report = self.saver._read(check_module.check, serde=self.saver.serde, decode=decode)
        report.repair = done
        return report

    def _require_unscoped_sqlite_for_check(self) -> None:
        if self.user_id is not None:
            raise SessionScopeError(
                f"check() scans every user's data; this session manager is scoped to user "
                f"{self.user_id!r}: use an unscoped SessionManager(saver)"
            )
        if getattr(self.saver, "postgres", None) is not None:
            raise NotImplementedError(
                "check() reads SQLite's own integrity check and tables; it is not available "
                "on PostgreSQL yet"
            )

    async def acheck(self, *, repair: bool = False, decode: bool = True) -> CheckReport:
        """Async twin of :meth:`check`."""
        self._require_unscoped_sqlite_for_check()
        done = await self.saver._awrite(check_module.repair) if repair else None
        report = await self.saver._aread(check_module.check, serde=self.saver.serde, decode=decode)
        report.repair = done
        return report


def _rollback_options(undo_effects: Any, on_error: str | None) -> OnError:
    """``rollback``'s ``on_error``, checked against ``undo_effects``."""
    if not isinstance(undo_effects, bool):
        raise TypeError(f"undo_effects must be True or False, not {undo_effects!r}")
    if on_error is None:
        return "stop"
    if not undo_effects:
        raise ValueError("on_error goes with undo_effects=True (a plain rollback runs no handler)")
    _check_on_error(on_error)
    return on_error  # type: ignore[return-value]


def _check_on_error(on_error: str) -> None:
    if on_error not in ("stop", "continue"):
        raise ValueError(f'on_error must be "stop" or "continue", not {on_error!r}')


def _timeline_data(conn: Any, store: Any, session_id: str) -> tuple[Any, Any, Any, Any]:
    """The timeline's rows and the session's recorded undos, in one read transaction."""
    session, histories, tags = ops.timeline_data(conn, store, session_id)
    return session, histories, tags, effect_ops.claims(conn, store, session_id)


def _diff_data(
    conn: Any, store: Any, owner: str | None, a: Any, b: Any, session_id: str | None
) -> tuple[Any, Any, Any, Any]:
    """The two checkpoints, their common ancestor and the undone effects on their paths
    from it, in one read transaction."""
    found_a, found_b, base = ops.scoped_diff_data(conn, store, owner, a, b, session_id)
    undone = effect_ops.undone_between(conn, store, found_a, found_b, base)
    return found_a, found_b, base, undone


def _warn_undone(branch: Branch, undone: list[EffectRecord]) -> None:
    if undone:
        tools = ", ".join(sorted({c.tool_name for c in undone}))
        warnings.warn(
            f"branch {branch.name or branch.thread_id!r} had {len(undone)} tool effect(s) "
            f"undone by a rollback ({tools}); they stay undone if it is continued",
            EffectsUndoneWarning,
            stacklevel=3,
        )


def _undone_by_thread(claims: Mapping[str, EffectRecord]) -> dict[str, tuple[str, ...]]:
    """Thread left by a rollback -> the tools of the effects it undid, oldest undo first."""
    out: dict[str, list[str]] = {}
    for record in sorted(claims.values(), key=lambda r: (r.updated_at, r.effect_id)):
        if record.status == "done":
            out.setdefault(record.thread_id, []).append(record.tool_name)
    return {thread: tuple(tools) for thread, tools in out.items()}


def _import_with_policy(
    conn: Any,
    store: Any,
    policy: ops.Policy,
    parsed: Any,
    on_conflict: OnConflict,
) -> tuple[ImportReport, list[ExternalSession]]:
    """:func:`portable.import_sessions` under the manager's scope and session limit, in
    one write transaction; also returns the imported sessions (for the events)."""
    if policy.owner is not None:
        for session_id, s in parsed.sessions.items():
            if s["user_id"] != policy.owner:
                whose = f"user {s['user_id']!r}" if s["user_id"] is not None else "no user"
                raise SessionScopeError(
                    f"this session manager is scoped to user {policy.owner!r}; the file's "
                    f"session {session_id!r} belongs to {whose}: nothing was imported"
                )
    report = portable.import_sessions(conn, store, parsed, on_conflict)
    opened = [s["user_id"] for s in parsed.sessions.values() if s["ended_at"] is None]
    for user_id in dict.fromkeys(opened):
        ops._make_room(conn, store, policy, user_id, adding=0)
    return report, [ops.require_session(conn, store, sid) for sid in report.session_ids]


def _check_file(fileobj: Any, mode: str) -> None:
    """A file object to ``mode`` ("read" or "write"): a path (str, bytes, PathLike) or
    anything else raises ``TypeError`` saying to pass an open file."""
    if isinstance(fileobj, (str, bytes, os.PathLike)):
        raise TypeError(
            f"pass an open file object, not a path ({fileobj!r}): e.g. "
            f"open(path, {'rb' if mode == 'read' else 'wb'!r})"
        )
    if not callable(getattr(fileobj, mode, None)):
        raise TypeError(
            f"expected a file object open for {'reading' if mode == 'read' else 'writing'}, "
            f"got {type(fileobj).__name__}"
        )


def _check_session_ids(session_ids: Any) -> None:
    if isinstance(session_ids, (str, bytes)):
        raise TypeError(
            "session_ids must be a list of session ids, not a single str "
            f"(did you mean session_ids=[{session_ids!r}]?)"
        )


def _check_on_conflict(on_conflict: str) -> None:
    if on_conflict not in ("error", "new_ids"):
        raise ValueError(f"on_conflict must be 'error' or 'new_ids', not {on_conflict!r}")
