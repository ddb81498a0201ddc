"""Retention: ``SessionManager.prune_sessions`` (``agentgit prune``), the saver's
``max_age`` sweep of plain threads, and ``agentgit vacuum``.

A prune goes through the paths deleting already takes, so that it never changes what
stays:

* a whole session goes as :meth:`SessionManager.delete_session` deletes it (rows another
  live thread inherits are only hidden);
* an old checkpoint of a branch is *hidden* from its thread, as a deleted run's are
  (``CheckpointStore.delete_for_runs``): forks made before still list it, what a kept
  checkpoint rebuilds a ``DeltaChannel`` value from is kept (``_keep_for_rebuild``), and
  garbage collection then removes the rows, pending writes and values nothing needs.

So every checkpoint that stays listed in a branch reads back exactly as before: values
(``DeltaChannel`` included), metadata, parent, pending writes and interrupts.

Bytes freed are counted as :mod:`langgraph_agentgit.usage` counts them (checkpoint rows
and stored values, in the database's own encoding), before and after, in the prune's
transaction; a dry run is the same prune rolled back, so its figure is what the real
prune would free at that moment. A SQLite file keeps its size until ``VACUUM``
(:func:`vacuum`) returns the freed pages.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from langgraph_agentgit.errors import CheckpointNotFoundError, SessionNotFoundError
from langgraph_agentgit.sessions import store as ops
from langgraph_agentgit.sessions.models import ExternalSession
from langgraph_agentgit.storage.backend import Connection
from langgraph_agentgit.storage.checkpoints import CheckpointStore, Row
from langgraph_agentgit.storage.checkpoints import _now as hidden_at

if TYPE_CHECKING:
    from langgraph_agentgit.saver_base import AgentGitSaverBase

logger = logging.getLogger("langgraph_agentgit.retention")

#: Puts between two automatic sweeps of a saver with ``max_age`` (the first put of a
#: saver sweeps too), and the most threads one automatic sweep deletes.
SWEEP_EVERY = 1000
SWEEP_BATCH = 100
# LIMIT for "all" that both engines take (SQLite reads -1 so, PostgreSQL refuses it).
_NO_LIMIT = 2**62

_DURATION = re.compile(r"^\s*([0-9]+)\s*(s|m|h|d|w)\s*$", re.ASCII)
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class PrunedSession:
    """What a prune did (or would do) to one session."""

    session_id: str
    name: str
    #: True: the whole session went (it was inactive for longer than ``older_than``).
    deleted: bool
    #: Root-namespace checkpoints no branch of the session lists any more.
    checkpoints_removed: int
    #: Tags that named a checkpoint no branch reaches any more (``keep_tagged=False``).
    tags_removed: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PruneReport:
    """The outcome of :meth:`SessionManager.prune_sessions`.

    ``bytes_freed`` is the drop in checkpoint-row and stored-value bytes (as
    :class:`~langgraph_agentgit.usage.StorageReport` counts ``row_bytes`` and
    ``value_bytes``); ``rows_deleted`` counts checkpoint rows of every namespace removed
    from the database (a row a live fork still inherits is hidden, not removed).
    ``kept_tagged`` lists sessions older than ``older_than`` kept whole because they
    have tags (``keep_tagged=True``)."""

    dry_run: bool
    sessions: list[PrunedSession]
    sessions_deleted: int
    checkpoints_removed: int
    rows_deleted: int
    bytes_freed: int
    kept_tagged: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data (for JSON)."""
        return asdict(self)


class _DryRun(Exception):
    """Carries a dry run's report out of its transaction, which it rolls back."""

    def __init__(self, report: PruneReport) -> None:
        super().__init__("dry run")
        self.report = report


# --- checking options -----------------------------------------------------------------------


#: The longest age a prune or ``max_age`` takes: older is before any checkpoint, and
#: "now minus" it must stay a date.
MAX_AGE = timedelta(days=36_500)


def parse_duration(text: str) -> timedelta:
    """``"90d"``, ``"12h"``, ``"30m"``, ``"45s"`` or ``"2w"`` as a ``timedelta``.

    Raises ``ValueError`` naming the text for anything else, for zero and for more than
    :data:`MAX_AGE`."""
    found = _DURATION.match(text) if isinstance(text, str) else None
    if found is None:
        raise ValueError(
            f"cannot read {text!r} as an age: give a whole number and a unit, s, m, h, d "
            "or w (90d, 12h)"
        )
    value = int(found.group(1))
    if value == 0:
        raise ValueError(f"an age of {text!r} would prune everything: give more than zero")
    try:
        age = timedelta(**{_UNITS[found.group(2)]: value})
    except OverflowError:
        age = MAX_AGE + MAX_AGE  # refused below, with the same message
    return check_age(age, f"the age {text!r}")


def check_age(value: Any, name: str) -> timedelta:
    """``value`` as a positive ``timedelta`` (``TypeError`` / ``ValueError`` otherwise)."""
    if not isinstance(value, timedelta):
        raise TypeError(f"{name} must be a datetime.timedelta, not {type(value).__name__}")
    if value <= timedelta(0):
        raise ValueError(f"{name} must be longer than zero, not {value}")
    if value > MAX_AGE:
        raise ValueError(f"{name} must be at most {MAX_AGE.days:,} days (100 years)")
    return value


def check_prune_options(older_than: Any, keep_last: Any, keep_tagged: Any) -> None:
    """The options of ``prune_sessions``, checked before anything is read."""
    if older_than is None and keep_last is None:
        raise ValueError("prune_sessions needs older_than, keep_last or both")
    if older_than is not None:
        check_age(older_than, "older_than")
    if keep_last is not None and (
        isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1
    ):
        raise ValueError(
            f"keep_last must be a whole number of at least 1 (a branch keeps its head), "
            f"not {keep_last!r}"
        )
    if not isinstance(keep_tagged, bool):
        raise TypeError(f"keep_tagged must be True or False, not {keep_tagged!r}")


# --- pruning sessions -------------------------------------------------------------------------


def prune_sessions(
    conn: Connection,
    store: CheckpointStore,
    older_than: timedelta | None,
    keep_last: int | None,
    user_id: str | None,
    keep_tagged: bool,
    dry_run: bool,
) -> tuple[PruneReport, list[tuple[ExternalSession, str | None]]]:
    """The prune, in the caller's write transaction (see the module docstring), and the
    sessions it deleted with their owners. A dry run raises :class:`_DryRun` carrying
    the report, which rolls the transaction back."""
    sql = store.sql
    rows_before, values_before, count_before = conn.execute(sql.STORED_BYTES).fetchone()
    found = conn.execute(sql.PRUNE_SESSIONS, (user_id, user_id)).fetchall()
    if user_id is not None and not found:
        raise SessionNotFoundError(f"user {user_id!r} has no sessions")
    cutoff = None if older_than is None else _now() - older_than
    doomed_sessions: list[tuple[str, str]] = []
    kept_tagged: list[str] = []
    trimmed: list[tuple[str, str]] = []
    for session_id, name, _user, updated_at, tag_count in found:
        if cutoff is not None and _when(updated_at) < cutoff:
            if keep_tagged and int(tag_count):
                kept_tagged.append(str(session_id))
            else:
                doomed_sessions.append((str(session_id), str(name)))
                continue
        if keep_last is not None:
            trimmed.append((str(session_id), str(name)))
    results: list[PrunedSession] = []
    gone: list[tuple[ExternalSession, str | None]] = []
    for session_id, name in doomed_sessions:
        session = ops.require_session(conn, store, session_id)
        gone.append((session, session.user_id))
        results.append(PrunedSession(session_id, name, True, session.total_checkpoints))
    ops.delete_sessions(conn, store, [s for s, _ in doomed_sessions], collect=False)
    touched: list[tuple[str, str, int]] = []
    trimmed_threads: list[int] = []
    for session_id, name in trimmed:
        assert keep_last is not None
        removed = _trim_session(conn, store, session_id, keep_last, keep_tagged, trimmed_threads)
        touched.append((session_id, name, removed))
    if trimmed_threads and store.search.enabled:
        # A message the index names by the first checkpoint that held it may now live on
        # only in later ones: the collection below indexes the trimmed threads, and their
        # forks, again from what they hold (a whole session deleted takes its index rows
        # with its rows), at a cost that grows with them, not with the database.
        conn.execute(sql.SEARCH_MARK_STALE, (json.dumps(sorted(set(trimmed_threads))),))
    store.collect_garbage(conn)
    store._forget_collected(conn, trimmed_threads)
    for session_id, name, removed in touched:
        lost = [] if keep_tagged else _drop_unreachable_tags(conn, store, session_id)
        if removed or lost:
            results.append(PrunedSession(session_id, name, False, removed, lost))
    rows_after, values_after, count_after = conn.execute(sql.STORED_BYTES).fetchone()
    report = PruneReport(
        dry_run=dry_run,
        sessions=results,
        sessions_deleted=len(doomed_sessions),
        checkpoints_removed=sum(r.checkpoints_removed for r in results),
        rows_deleted=int(count_before) - int(count_after),
        bytes_freed=int(rows_before) + int(values_before) - int(rows_after) - int(values_after),
        kept_tagged=kept_tagged,
    )
    if dry_run:
        raise _DryRun(report)
    return report, gone


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _when(text: str) -> datetime:
    moment = datetime.fromisoformat(str(text))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def _trim_session(
    conn: Connection,
    store: CheckpointStore,
    session_id: str,
    keep_last: int,
    keep_tagged: bool,
    trimmed_threads: list[int],
) -> int:
    """Hide every checkpoint of the session's branches but the newest ``keep_last`` of
    each (and tagged ones with ``keep_tagged``). Returns the root-namespace checkpoints
    hidden; adds the pks of the threads it trimmed to ``trimmed_threads``. Garbage
    collection is left to the caller."""
    sql = store.sql
    tagged = (
        {str(cid) for _name, cid in conn.execute(sql.SELECT_TAGS, (session_id,))}
        if keep_tagged
        else set()
    )
    removed = 0
    for branch in ops.branches(conn, store, session_id):
        pk_row = conn.execute(sql.SELECT_THREAD_PK, (branch.thread_id,)).fetchone()
        if pk_row is None:
            continue  # a branch that has not run yet holds nothing
        pk = int(pk_row[0])
        rows = [(int(r), str(ns), str(c)) for r, ns, c in conn.execute(sql.PRUNE_OWN_ROWS, (pk,))]
        root = sorted((r for r in rows if r[1] == ""), key=lambda r: r[2], reverse=True)
        if len(root) <= keep_last:
            continue
        kept = root[:keep_last] + [r for r in root[keep_last:] if r[2] in tagged]
        kept_rids = {r[0] for r in kept}
        doomed = [r[0] for r in root if r[0] not in kept_rids]
        if not doomed:
            continue
        # A subgraph's checkpoints belong to a task of the root checkpoint before them;
        # a namespace whose every checkpoint is older than the oldest kept root one
        # served only checkpoints that go. (One still written to stays whole.)
        oldest_kept = min(r[2] for r in kept)
        newest_of_ns: dict[str, str] = {}
        for _rid, ns, cid in rows:
            if ns and cid > newest_of_ns.get(ns, ""):
                newest_of_ns[ns] = cid
        doomed += [rid for rid, ns, _cid in rows if ns and newest_of_ns[ns] < oldest_kept]
        # The store's clock and format: a fork's creation time is compared with it.
        conn.execute(sql.HIDE_ROWS, (hidden_at(), json.dumps(doomed)))
        store.bump_epochs(conn, [pk])
        # What kept checkpoints rebuild DeltaChannel values from, and what a fork made
        # later must walk past to reach a kept older (tagged) checkpoint, stays hidden.
        store._keep_for_rebuild(conn, pk)
        # A line the branch left by time travel, kept only for a fork, stops counting
        # as the branch's (its search and usage), as after saver.prune.
        store._record_dropped(conn, pk)
        trimmed_threads.append(pk)
        removed += len(root) - len(kept)
    return removed


def _drop_unreachable_tags(conn: Connection, store: CheckpointStore, session_id: str) -> list[str]:
    """Delete the session's tags that no branch reaches any more; returns their names."""
    lost = []
    for name, _cid in conn.execute(store.sql.SELECT_TAGS, (session_id,)).fetchall():
        try:
            ops.resolve(conn, store, session_id, ops.CheckpointRef(text=str(name)))
        except CheckpointNotFoundError:
            lost.append(str(name))
    for name in lost:
        conn.execute(store.sql.DELETE_TAG, (session_id, name))
    return lost


Gone = list[tuple["ExternalSession", "str | None"]]


def run_prune(saver: AgentGitSaverBase, *args: Any) -> tuple[PruneReport, Gone]:
    """:func:`prune_sessions` through the saver's write runner."""
    try:
        return saver._write(prune_sessions, saver.store, *args)
    except _DryRun as dry:
        return dry.report, []


async def arun_prune(saver: AgentGitSaverBase, *args: Any) -> tuple[PruneReport, Gone]:
    """:func:`run_prune` without blocking the event loop."""
    try:
        return await saver._awrite(prune_sessions, saver.store, *args)
    except _DryRun as dry:
        return dry.report, []


# --- max_age: plain threads ----------------------------------------------------------------


def checkpoint_id_at(moment: datetime) -> str:
    """The smallest LangGraph checkpoint id (a UUID version 6, whose leading hex digits
    are its time in 100 ns since 1582-10-15) made at ``moment``: ids made before sort
    before it as text."""
    ticks = (moment - datetime(1582, 10, 15, tzinfo=timezone.utc)) // timedelta(microseconds=1)
    ticks *= 10
    high = (ticks >> 12) & 0xFFFFFFFFFFFF
    low = ticks & 0x0FFF
    return str(uuid.UUID(int=(high << 80) | (0x6 << 76) | (low << 64)))


def sweep(conn: Connection, store: CheckpointStore, max_age: timedelta, limit: int | None) -> int:
    """Delete threads outside every session whose newest checkpoint is older than
    ``max_age`` (at most ``limit``), as ``delete_thread`` does; returns how many.

    The newest checkpoint's time is read from its id (LangGraph's ids are UUIDs version
    6, time first) to find candidates, then confirmed from the checkpoint's own ``ts``:
    a thread whose ids are not LangGraph's and sort after them is never swept."""
    moment = _now() - max_age
    found = conn.execute(
        store.sql.SELECT_EXPIRED_THREADS,
        (
            checkpoint_id_at(moment),
            moment.isoformat(),
            _NO_LIMIT if limit is None else min(limit, _NO_LIMIT),
        ),
    ).fetchall()
    expired = []
    for pk, thread_id, newest in found:
        if newest is not None:
            head = conn.execute(store.sql.SELECT_OWN_LATEST, (pk, "")).fetchone()
            if head is None or not _older(store, Row.of(head), moment):
                continue
        expired.append(str(thread_id))
    if expired:
        store.delete_threads(conn, expired)
    return len(expired)


def _older(store: CheckpointStore, head: Row, moment: datetime) -> bool:
    ts = store._body(head).get("ts")
    try:
        return _when(str(ts)) < moment
    except ValueError:
        return False  # no readable time: kept


# --- vacuum ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class VacuumReport:
    """Bytes of the database before and after :func:`vacuum`: the file (SQLite, its
    write-ahead log folded in) or ``pg_total_relation_size`` of the agentgit tables."""

    database: str
    bytes_before: int
    bytes_after: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def vacuum(saver: Any) -> VacuumReport:
    """Sweep the whole database for garbage (what deletes left because another family
    might share it), then return the free space to the system: SQLite ``VACUUM``
    (then the write-ahead log is folded in and truncated), or PostgreSQL ``VACUUM`` of
    each agentgit table (the space goes back to the tables; their files shrink only where
    their tail is free). ``saver``: an open sync ``AgentGitSaver``. SQLite rewrites the
    whole file, holding the saver's lock meanwhile. Sizes are ``DATABASE_BYTES`` (as
    ``agentgit du`` reports them). Raises
    :class:`~langgraph_agentgit.ReadOnlyDatabaseError` on a read-only saver and
    :class:`~langgraph_agentgit.DatabaseLockedError` when another connection keeps the
    SQLite file busy."""
    from langgraph_agentgit.errors import DatabaseLockedError, ReadOnlyDatabaseError

    sql = saver.store.sql
    if saver.access.read_only:
        raise ReadOnlyDatabaseError("vacuum rewrites the database; it was opened read-only")
    # Blobs a delete could not tell were garbage (shared with another family) go first.
    saver._write(saver.store.collect_garbage)
    before = saver._read(_bytes_of, sql)
    name = saver._read(_name_of, sql)
    if saver.postgres is not None:
        with saver.postgres._connection() as conn:
            for statement in sql.VACUUM_STATEMENTS:
                conn.execute(statement)
    else:
        with saver.lock:
            try:
                for statement in sql.VACUUM_STATEMENTS:
                    saver.conn.execute(statement).fetchall()
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc) or "busy" in str(exc):
                    raise DatabaseLockedError(
                        f"cannot vacuum: another connection is using the database ({exc})"
                    ) from exc
                raise
    return VacuumReport(name, before, saver._read(_bytes_of, sql))


def _bytes_of(conn: Connection, sql: Any) -> int:
    return int(conn.execute(sql.DATABASE_BYTES).fetchone()[0] or 0)


def _name_of(conn: Connection, sql: Any) -> str:
    return str(conn.execute(sql.DATABASE_NAME).fetchone()[0] or ":memory:")
