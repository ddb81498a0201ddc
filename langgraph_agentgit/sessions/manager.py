"""`SessionManager`: external sessions whose rollbacks open branch threads.

Each operation is written once, as a function of a connection in
:mod:`langgraph_agentgit.sessions.store`, and run through the saver's runners: the sync
methods block, their ``a``-prefixed twins don't, and both work with
:class:`~langgraph_agentgit.AgentGitSaver` and
:class:`~langgraph_agentgit.AsyncAgentGitSaver` (whose sync methods must be called from
another thread than its event loop's, as for the saver itself).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, Literal, TypeAlias, overload

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple
from langgraph.types import StateSnapshot

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
from langgraph_agentgit.errors import EffectsUndoneWarning
from langgraph_agentgit.saver_base import AgentGitSaverBase
from langgraph_agentgit.sessions import store as ops
from langgraph_agentgit.sessions.models import Branch, ExternalSession
from langgraph_agentgit.storage import check as check_module
from langgraph_agentgit.storage.check import CheckReport
from langgraph_agentgit.timeline import Timeline

CheckpointLike: TypeAlias = "str | RunnableConfig | StateSnapshot | CheckpointTuple | Branch"
"""A checkpoint id or a tag name of the session, a config carrying ``checkpoint_id`` (a
config with only a ``thread_id`` means that thread's head), a ``StateSnapshot``, a
``CheckpointTuple``, or a :class:`Branch` (its head)."""


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
        undo: Mapping[str, UndoHandler | tuple[UndoHandler | None, str]] | None = None,
    ) -> None:
        if not isinstance(saver, AgentGitSaverBase):
            raise TypeError(
                "SessionManager needs an AgentGitSaver or AsyncAgentGitSaver, got "
                f"{type(saver).__name__}"
            )
        self.saver = saver
        self._undo = UndoRegistry.of(undo)

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
        """
        return self.saver._write(
            ops.create_session, self.saver.store, user_id, name, metadata, thread_id
        )

    async def acreate_session(
        self,
        *,
        user_id: str | None = None,
        name: str = "",
        metadata: Mapping[str, Any] | None = None,
        thread_id: str | None = None,
    ) -> ExternalSession:
        """Async twin of :meth:`create_session`."""
        return await self.saver._awrite(
            ops.create_session, self.saver.store, user_id, name, metadata, thread_id
        )

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
        :class:`ThreadExistsError` for one that already belongs to a session."""
        return self.saver._write(ops.adopt, self.saver.store, thread_id, user_id, name, metadata)

    async def aadopt(
        self,
        thread_id: str,
        *,
        user_id: str | None = None,
        name: str = "",
        metadata: Mapping[str, Any] | None = None,
    ) -> ExternalSession:
        """Async twin of :meth:`adopt`."""
        return await self.saver._awrite(
            ops.adopt, self.saver.store, thread_id, user_id, name, metadata
        )

    def get_session(self, session_id: str) -> ExternalSession | None:
        """The session, or ``None`` if there is none with this id."""
        return self.saver._read(ops.get_session, self.saver.store, session_id)

    async def aget_session(self, session_id: str) -> ExternalSession | None:
        """Async twin of :meth:`get_session`."""
        return await self.saver._aread(ops.get_session, self.saver.store, session_id)

    def list_sessions(
        self, *, user_id: str | None = None, active_only: bool = False
    ) -> list[ExternalSession]:
        """Sessions, most recent activity first (a checkpoint written into one of a
        session's threads counts as activity), optionally of one user / active only."""
        return self.saver._read(ops.list_sessions, self.saver.store, user_id, active_only)

    async def alist_sessions(
        self, *, user_id: str | None = None, active_only: bool = False
    ) -> list[ExternalSession]:
        """Async twin of :meth:`list_sessions`."""
        return await self.saver._aread(ops.list_sessions, self.saver.store, user_id, active_only)

    def session_of(self, thread_id: str) -> ExternalSession | None:
        """The session a thread belongs to, or ``None`` for a plain thread."""
        return self.saver._read(ops.session_of_thread, self.saver.store, thread_id)

    async def asession_of(self, thread_id: str) -> ExternalSession | None:
        """Async twin of :meth:`session_of`."""
        return await self.saver._aread(ops.session_of_thread, self.saver.store, thread_id)

    def config(self, session_id: str) -> RunnableConfig:
        """``{"configurable": {"thread_id": <current thread>}}`` to run the graph on."""
        return self.saver._read(ops.require_session, self.saver.store, session_id).config

    async def aconfig(self, session_id: str) -> RunnableConfig:
        """Async twin of :meth:`config`."""
        return (await self.saver._aread(ops.require_session, self.saver.store, session_id)).config

    def deactivate(self, session_id: str) -> ExternalSession:
        """Mark the session inactive (hidden by ``list_sessions(active_only=True)``); its
        branches keep working."""
        return self.saver._write(ops.set_active, self.saver.store, session_id, False)

    async def adeactivate(self, session_id: str) -> ExternalSession:
        """Async twin of :meth:`deactivate`."""
        return await self.saver._awrite(ops.set_active, self.saver.store, session_id, False)

    def activate(self, session_id: str) -> ExternalSession:
        """Undo :meth:`deactivate`."""
        return self.saver._write(ops.set_active, self.saver.store, session_id, True)

    async def aactivate(self, session_id: str) -> ExternalSession:
        """Async twin of :meth:`activate`."""
        return await self.saver._awrite(ops.set_active, self.saver.store, session_id, True)

    def delete_session(self, session_id: str) -> None:
        """Delete the session, its tags, and all its threads with their checkpoints and
        writes — except rows another thread still inherits (e.g. a fork adopted by another
        session), which stay until nothing needs them."""
        self.saver._write(ops.delete_session, self.saver.store, session_id)

    async def adelete_session(self, session_id: str) -> None:
        """Async twin of :meth:`delete_session`."""
        await self.saver._awrite(ops.delete_session, self.saver.store, session_id)

    # --- branches --------------------------------------------------------------------------

    @overload
    def rollback(
        self,
        session_id: str,
        checkpoint: CheckpointLike,
        *,
        name: str | None = None,
        thread_id: str | None = None,
        undo_effects: Literal[False] = False,
        on_error: OnError = "stop",
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
        on_error: OnError = "stop",
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
        on_error: OnError = "stop",
    ) -> Branch | RollbackResult: ...

    def rollback(
        self,
        session_id: str,
        checkpoint: CheckpointLike,
        *,
        name: str | None = None,
        thread_id: str | None = None,
        undo_effects: bool = False,
        on_error: OnError = "stop",
    ) -> Branch | RollbackResult:
        """Open a new branch starting at ``checkpoint`` and make it current.

        ``checkpoint`` must be reachable from one of the session's threads. ``name`` must
        be unused in the session (:class:`BranchExistsError`) and valid
        (:class:`InvalidBranchNameError`: not empty, one line, not only hex digits and
        ``-``); without one the branch is named ``branch-<n>``. Nothing is
        copied or lost: the branch sees the history up to and including the checkpoint,
        and the thread it came from stays whole. ``branch_count`` grows by one::

            history = list(graph.get_state_history(mgr.config(s.id)))
            branch = mgr.rollback(s.id, history[3])          # or a checkpoint id / tag
            graph.invoke({"messages": [("user", "try again")]}, mgr.config(s.id))

        With ``undo_effects=True`` it also undoes the tool calls the current branch made
        after its common ancestor with ``checkpoint`` (:meth:`plan_rollback` lists them)
        and returns a :class:`~langgraph_agentgit.effects.RollbackResult` instead of the
        branch. The branch is opened and every effect to undo claimed in one transaction
        (an effect claimed by another rollback, or undone before, is skipped); then each
        handler runs, newest first, outside any transaction, its outcome recorded as it
        goes. A handler that raises is recorded as failed; ``on_error="stop"`` leaves the
        older effects for :meth:`resume_undo`, ``"continue"`` goes on. Handler errors are
        never raised: ``result.raise_for_failures()`` does (:class:`UndoFailedError`).
        """
        if not undo_effects:
            return self.saver._write(
                ops.create_branch,
                self.saver.store,
                session_id,
                ops.as_ref(checkpoint),
                name,
                thread_id,
                True,
            )
        _check_on_error(on_error)
        started = self.saver._write(
            effect_ops.start_rollback,
            self.saver.store,
            session_id,
            ops.as_ref(checkpoint),
            name,
            thread_id,
            self._undo.kinds(),
            on_error,
        )
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
        on_error: OnError = "stop",
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
        on_error: OnError = "stop",
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
        on_error: OnError = "stop",
    ) -> Branch | RollbackResult: ...

    async def arollback(
        self,
        session_id: str,
        checkpoint: CheckpointLike,
        *,
        name: str | None = None,
        thread_id: str | None = None,
        undo_effects: bool = False,
        on_error: OnError = "stop",
    ) -> Branch | RollbackResult:
        """Async twin of :meth:`rollback` (async handlers are awaited, sync ones run in a
        worker thread)."""
        if not undo_effects:
            return await self.saver._awrite(
                ops.create_branch,
                self.saver.store,
                session_id,
                ops.as_ref(checkpoint),
                name,
                thread_id,
                True,
            )
        _check_on_error(on_error)
        started = await self.saver._awrite(
            effect_ops.start_rollback,
            self.saver.store,
            session_id,
            ops.as_ref(checkpoint),
            name,
            thread_id,
            self._undo.kinds(),
            on_error,
        )
        return await arun_started(self.saver, self._undo, started, on_error)

    def branch(
        self,
        session_id: str,
        checkpoint: CheckpointLike,
        *,
        name: str | None = None,
        thread_id: str | None = None,
    ) -> Branch:
        """Like :meth:`rollback`, but the current branch stays current."""
        return self.saver._write(
            ops.create_branch,
            self.saver.store,
            session_id,
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
        return await self.saver._awrite(
            ops.create_branch,
            self.saver.store,
            session_id,
            ops.as_ref(checkpoint),
            name,
            thread_id,
            False,
        )

    def checkout(self, session_id: str, thread_id: str) -> Branch:
        """Make one of the session's branches current: ``thread_id`` is its thread id or
        its name (``mgr.checkout(s.id, "main")``). :class:`BranchNotFoundError` if the
        session has no such branch. Issues an :class:`EffectsUndoneWarning` when a
        rollback undid tool effects in that branch's history (they stay undone)."""
        branch = self.saver._write(ops.checkout, self.saver.store, session_id, thread_id)
        _warn_undone(
            branch,
            self.saver._read(
                effect_ops.undone_in_branch, self.saver.store, session_id, branch.thread_id
            ),
        )
        return branch

    async def acheckout(self, session_id: str, thread_id: str) -> Branch:
        """Async twin of :meth:`checkout`."""
        branch = await self.saver._awrite(ops.checkout, self.saver.store, session_id, thread_id)
        undone = await self.saver._aread(
            effect_ops.undone_in_branch, self.saver.store, session_id, branch.thread_id
        )
        _warn_undone(branch, undone)
        return branch

    def branches(self, session_id: str) -> list[Branch]:
        """The session's branches, oldest first; the first thread (``main``) included."""
        return self.saver._read(ops.branches, self.saver.store, session_id)

    async def abranches(self, session_id: str) -> list[Branch]:
        """Async twin of :meth:`branches`."""
        return await self.saver._aread(ops.branches, self.saver.store, session_id)

    def get_branch(self, session_id: str, thread_id: str) -> Branch:
        """One branch of the session by thread id or name (:class:`BranchNotFoundError`
        if it has none)."""
        return self.saver._read(ops.get_branch, self.saver.store, session_id, thread_id)

    async def aget_branch(self, session_id: str, thread_id: str) -> Branch:
        """Async twin of :meth:`get_branch`."""
        return await self.saver._aread(ops.get_branch, self.saver.store, session_id, thread_id)

    def delete_branch(self, session_id: str, thread_id: str) -> ExternalSession:
        """Delete one branch of the session (by thread id or name) with the checkpoints
        only it holds. Branches forked from it keep working
        (the rows they inherit stay). If it was current, its parent (or else the newest
        remaining branch) becomes current. The last branch cannot be deleted
        (:class:`LastBranchError`): delete the session."""
        return self.saver._write(ops.delete_branch, self.saver.store, session_id, thread_id)

    async def adelete_branch(self, session_id: str, thread_id: str) -> ExternalSession:
        """Async twin of :meth:`delete_branch`."""
        return await self.saver._awrite(ops.delete_branch, self.saver.store, session_id, thread_id)

    def checkpoints(
        self, session_id: str, *, thread_id: str | None = None, limit: int | None = None
    ) -> list[CheckpointTuple]:
        """Root-namespace history of a branch (the current one by default; ``thread_id``
        may be its name), newest first: its own checkpoints, then the inherited ones down
        to the start. ``limit`` stops the read after that many."""
        return self.saver._read(ops.checkpoints, self.saver.store, session_id, thread_id, limit)

    async def acheckpoints(
        self, session_id: str, *, thread_id: str | None = None, limit: int | None = None
    ) -> list[CheckpointTuple]:
        """Async twin of :meth:`checkpoints`."""
        return await self.saver._aread(
            ops.checkpoints, self.saver.store, session_id, thread_id, limit
        )

    # --- tags ------------------------------------------------------------------------------

    def tag(self, session_id: str, checkpoint: CheckpointLike, name: str) -> None:
        """Name a checkpoint of the session (a restore point), e.g.
        ``mgr.tag(s.id, snapshot, "before-orders")``; ``rollback(s.id, "before-orders")``
        then goes back to it. Names are unique per session (:class:`TagExistsError`) and
        may not look like a checkpoint id (:class:`InvalidTagError`)."""
        self.saver._write(ops.tag, self.saver.store, session_id, ops.as_ref(checkpoint), name)

    async def atag(self, session_id: str, checkpoint: CheckpointLike, name: str) -> None:
        """Async twin of :meth:`tag`."""
        await self.saver._awrite(
            ops.tag, self.saver.store, session_id, ops.as_ref(checkpoint), name
        )

    def untag(self, session_id: str, name: str) -> None:
        """Remove a tag (:class:`TagNotFoundError` if the session has no such tag)."""
        self.saver._write(ops.untag, self.saver.store, session_id, name)

    async def auntag(self, session_id: str, name: str) -> None:
        """Async twin of :meth:`untag`."""
        await self.saver._awrite(ops.untag, self.saver.store, session_id, name)

    def tags(self, session_id: str) -> dict[str, str]:
        """Tag name -> checkpoint id, oldest tag first."""
        return self.saver._read(ops.tags, self.saver.store, session_id)

    async def atags(self, session_id: str) -> dict[str, str]:
        """Async twin of :meth:`tags`."""
        return await self.saver._aread(ops.tags, self.saver.store, session_id)

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
        return self.saver._read(
            effect_ops.plan,
            self.saver.store,
            session_id,
            ops.as_ref(checkpoint),
            self._undo.kinds(),
        )

    async def aplan_rollback(self, session_id: str, checkpoint: CheckpointLike) -> RollbackPlan:
        """Async twin of :meth:`plan_rollback`."""
        return await self.saver._aread(
            effect_ops.plan,
            self.saver.store,
            session_id,
            ops.as_ref(checkpoint),
            self._undo.kinds(),
        )

    def effects(self, session_id: str, *, thread_id: str | None = None) -> list[PlannedEffect]:
        """Every tool call in a branch's history (the current branch by default;
        ``thread_id`` may be its name), newest first, with its undo status."""
        return self.saver._read(
            effect_ops.branch_effects, self.saver.store, session_id, thread_id, self._undo.kinds()
        )

    async def aeffects(
        self, session_id: str, *, thread_id: str | None = None
    ) -> list[PlannedEffect]:
        """Async twin of :meth:`effects`."""
        return await self.saver._aread(
            effect_ops.branch_effects, self.saver.store, session_id, thread_id, self._undo.kinds()
        )

    def undo_runs(self, session_id: str) -> list[UndoRun]:
        """The session's rollbacks made with ``undo_effects=True``, oldest first."""
        return self.saver._read(effect_ops.runs, self.saver.store, session_id)

    async def aundo_runs(self, session_id: str) -> list[UndoRun]:
        """Async twin of :meth:`undo_runs`."""
        return await self.saver._aread(effect_ops.runs, self.saver.store, session_id)

    def undone_effects(self, session_id: str) -> dict[str, EffectRecord]:
        """Every effect of the session a rollback claimed, by effect id, with its status
        (``pending``, ``running``, ``done``, ``failed``)."""
        return self.saver._read(_records, self.saver.store, session_id)

    async def aundone_effects(self, session_id: str) -> dict[str, EffectRecord]:
        """Async twin of :meth:`undone_effects`."""
        return await self.saver._aread(_records, self.saver.store, session_id)

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
        a process started without reporting back is *in doubt*: it may or may not have
        been undone, so it is reported (``"in_doubt"``) and not run again unless
        ``rerun_in_doubt=True`` — pass that only when no process is still running that
        run (e.g. it died), and prefer handlers that can tell whether their work is done.
        Returns one :class:`RollbackResult` per run. Raises
        :class:`CheckpointNotFoundError` for a run whose branch (the one it left) was
        deleted since, as its effects can no longer be read: resume the others by
        ``run_id``.
        """
        if on_error is not None:
            _check_on_error(on_error)
        found = self.saver._write(
            effect_ops.resume_runs,
            self.saver.store,
            session_id,
            run_id,
            self._undo.kinds(),
            rerun_in_doubt,
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
        found = await self.saver._awrite(
            effect_ops.resume_runs,
            self.saver.store,
            session_id,
            run_id,
            self._undo.kinds(),
            rerun_in_doubt,
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
        session, histories, tags = self.saver._read(ops.timeline_data, self.saver.store, session_id)
        claims = self.saver._read(effect_ops.claims, self.saver.store, session_id)
        return Timeline(session, tuple(histories), tags, _undone_by_thread(claims))

    async def atimeline(self, session_id: str) -> Timeline:
        """Async twin of :meth:`timeline`."""
        session, histories, tags = await self.saver._aread(
            ops.timeline_data, self.saver.store, session_id
        )
        claims = await self.saver._aread(effect_ops.claims, self.saver.store, session_id)
        return Timeline(session, tuple(histories), tags, _undone_by_thread(claims))

    def diff(
        self, a: CheckpointLike, b: CheckpointLike, *, session_id: str | None = None
    ) -> CheckpointDiff:
        """Per-channel differences from checkpoint ``a`` to ``b`` (any branches), with
        messages compared by id since their common ancestor::

            print(mgr.diff(mgr.get_branch(s.id, main_id), branch))

        A bare checkpoint id is looked up in ``session_id``'s threads (tag names work
        too) or, without a session, in any live thread.
        """
        found = self.saver._read(
            ops.diff_data, self.saver.store, ops.as_ref(a), ops.as_ref(b), session_id
        )
        return CheckpointDiff.compute(*found)

    async def adiff(
        self, a: CheckpointLike, b: CheckpointLike, *, session_id: str | None = None
    ) -> CheckpointDiff:
        """Async twin of :meth:`diff`."""
        found = await self.saver._aread(
            ops.diff_data, self.saver.store, ops.as_ref(a), ops.as_ref(b), session_id
        )
        return CheckpointDiff.compute(*found)

    # --- maintenance -----------------------------------------------------------------------

    def check(self, *, repair: bool = False, decode: bool = True) -> CheckReport:
        """Scan the whole database for damage and garbage (``agentgit check``): every
        reference resolves, no cycles of parent links, counts match their rows, every
        stored value decodes (``decode``). ``report.ok`` is false when there is damage;
        ``report.problems`` names each problem by kind and ids (see
        :mod:`langgraph_agentgit.storage.check`). With ``repair``, first removes what
        nothing refers to and recomputes counts (in one write transaction), then scans.
        SQLite only for now: on PostgreSQL it raises ``NotImplementedError``.
        """
        self._require_sqlite_for_check()
        done = self.saver._write(check_module.repair) if repair else None
        report = self.saver._read(check_module.check, serde=self.saver.serde, decode=decode)
        report.repair = done
        return report

    def _require_sqlite_for_check(self) -> None:
        if getattr(self.saver, "postgres", None) is not None:
            raise NotImplementedError(
                "check() reads SQLite's own integrity check and tables; it is not available "
                "on PostgreSQL yet"
            )

    async def acheck(self, *, repair: bool = False, decode: bool = True) -> CheckReport:
        """Async twin of :meth:`check`."""
        self._require_sqlite_for_check()
        done = await self.saver._awrite(check_module.repair) if repair else None
        report = await self.saver._aread(check_module.check, serde=self.saver.serde, decode=decode)
        report.repair = done
        return report


def _check_on_error(on_error: str) -> None:
    if on_error not in ("stop", "continue"):
        raise ValueError(f'on_error must be "stop" or "continue", not {on_error!r}')


def _records(conn: Any, store: Any, session_id: str) -> dict[str, EffectRecord]:
    ops.require_session(conn, store, session_id)
    return effect_ops.claims(conn, store, session_id)


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
