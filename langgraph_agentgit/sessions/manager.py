"""`SessionManager`: external sessions whose rollbacks open branch threads.

Each operation is written once, as a function of a connection in
:mod:`langgraph_agentgit.sessions.store`, and run through the saver's runners: the sync
methods block, their ``a``-prefixed twins don't, and both work with
:class:`~langgraph_agentgit.AgentGitSaver` and
:class:`~langgraph_agentgit.AsyncAgentGitSaver` (whose sync methods must be called from
another thread than its event loop's, as for the saver itself).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import IO, Any, TypeAlias

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointTuple
from langgraph.types import StateSnapshot

from langgraph_agentgit import portable, usage
from langgraph_agentgit.diff import CheckpointDiff
from langgraph_agentgit.portable import ExportReport, ImportReport, OnConflict
from langgraph_agentgit.saver_base import AgentGitSaverBase
from langgraph_agentgit.sessions import store as ops
from langgraph_agentgit.sessions.models import Branch, ExternalSession
from langgraph_agentgit.storage import check as check_module
from langgraph_agentgit.storage.check import CheckReport
from langgraph_agentgit.timeline import Timeline
from langgraph_agentgit.usage import StorageReport

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
    """

    def __init__(self, saver: AgentGitSaverBase) -> None:
        if not isinstance(saver, AgentGitSaverBase):
            raise TypeError(
                "SessionManager needs an AgentGitSaver or AsyncAgentGitSaver, got "
                f"{type(saver).__name__}"
            )
        self.saver = saver

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

    def rollback(
        self,
        session_id: str,
        checkpoint: CheckpointLike,
        *,
        name: str | None = None,
        thread_id: str | None = None,
    ) -> Branch:
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
        """
        return self.saver._write(
            ops.create_branch,
            self.saver.store,
            session_id,
            ops.as_ref(checkpoint),
            name,
            thread_id,
            True,
        )

    async def arollback(
        self,
        session_id: str,
        checkpoint: CheckpointLike,
        *,
        name: str | None = None,
        thread_id: str | None = None,
    ) -> Branch:
        """Async twin of :meth:`rollback`."""
        return await self.saver._awrite(
            ops.create_branch,
            self.saver.store,
            session_id,
            ops.as_ref(checkpoint),
            name,
            thread_id,
            True,
        )

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
        session has no such branch."""
        return self.saver._write(ops.checkout, self.saver.store, session_id, thread_id)

    async def acheckout(self, session_id: str, thread_id: str) -> Branch:
        """Async twin of :meth:`checkout`."""
        return await self.saver._awrite(ops.checkout, self.saver.store, session_id, thread_id)

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

    # --- presentation ----------------------------------------------------------------------

    def timeline(self, session_id: str) -> Timeline:
        """The session's branch tree: ``print(mgr.timeline(s.id))``, ``.to_mermaid()``,
        ``.to_dict()``; renders itself in a notebook."""
        session, histories, tags = self.saver._read(ops.timeline_data, self.saver.store, session_id)
        return Timeline(session, tuple(histories), tags)

    async def atimeline(self, session_id: str) -> Timeline:
        """Async twin of :meth:`timeline`."""
        session, histories, tags = await self.saver._aread(
            ops.timeline_data, self.saver.store, session_id
        )
        return Timeline(session, tuple(histories), tags)

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
        ``user_id`` when it is given. Returns an :class:`~langgraph_agentgit.portable.ExportReport`.
        """
        return self.saver._read(
            portable.export_sessions,
            self.saver.store,
            portable.writer(fileobj),
            session_ids,
            user_id,
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
        return await self.saver._aread(
            portable.export_sessions,
            self.saver.store,
            portable.writer(fileobj),
            session_ids,
            user_id,
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

        Raises :class:`ExportFormatError` (naming the line and field) for a malformed,
        truncated or hostile file, :class:`ImportConflictError` as above; in every
        failure nothing is written. Returns an
        :class:`~langgraph_agentgit.portable.ImportReport`.
        """
        _check_on_conflict(on_conflict)
        parsed = portable.read_export(fileobj, self.saver.serde)
        return self.saver._write(portable.import_sessions, self.saver.store, parsed, on_conflict)

    async def aimport_sessions(
        self, fileobj: IO[Any], *, on_conflict: OnConflict = "error"
    ) -> ImportReport:
        """Async twin of :meth:`import_sessions` (the file is read and checked before the
        write transaction starts, in the event loop's thread)."""
        _check_on_conflict(on_conflict)
        parsed = portable.read_export(fileobj, self.saver.serde)
        return await self.saver._awrite(
            portable.import_sessions, self.saver.store, parsed, on_conflict
        )

    # --- where the bytes go ---------------------------------------------------------------

    def storage(self, session_id: str | None = None) -> StorageReport:
        """Bytes of the database and of each session (``agentgit du``): checkpoint rows
        and stored values, per session, branch and channel; a value reached by several
        sessions counted once, as shared; database totals. ``session_id``: that session
        only (:class:`SessionNotFoundError` when unknown). See
        :mod:`langgraph_agentgit.usage` for how bytes are attributed."""
        return self.saver._read(usage.storage, self.saver.store, session_id)

    async def astorage(self, session_id: str | None = None) -> StorageReport:
        """Async twin of :meth:`storage`."""
        return await self.saver._aread(usage.storage, self.saver.store, session_id)

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


def _check_on_conflict(on_conflict: str) -> None:
    if on_conflict not in ("error", "new_ids"):
        raise ValueError(f"on_conflict must be 'error' or 'new_ids', not {on_conflict!r}")
