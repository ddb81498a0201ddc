"""The checkpoint store: LangGraph's checkpointer contract over the SQLite self.sql.

Every method takes an open ``Connection``; the sync and async savers decide on
which thread that connection is used. Nothing here knows about sessions.

Threads and forks
-----------------
A thread may be *forked* from another at one of its checkpoints ``C``. The fork stores
one row in ``agentgit_threads`` and nothing else; what it sees is computed from its
*lineage* — itself, then the thread it was forked from up to ``C``, then that thread's
own parent up to its fork point, and so on:

* root namespace: the fork's own checkpoints, then ``C`` and its ancestors (parent links);
* child namespaces: the fork's own rows, then each ancestor's rows up to its bound;
* writes at a checkpoint ``X``: those stored by the nearest lineage thread that owns
  ``X`` or was forked at ``X`` (a fork has not run anything at its fork point yet),
  together with any the threads before it stored at ``X``.

Deleting, pruning or deleting runs never removes a row that a fork still inherits: such
rows are only *hidden* from their own thread, and :meth:`CheckpointStore.collect_garbage`
removes them once nothing needs them.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from types import ModuleType
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
    PendingWrite,
    get_checkpoint_id,
    get_serializable_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from langgraph_agentgit.errors import (
    AgentGitError,
    CheckpointNotFoundError,
    CorruptDataError,
    ThreadDeletedError,
    ThreadExistsError,
    ThreadNotFoundError,
)
from langgraph_agentgit.storage.backend import Connection
from langgraph_agentgit.storage.blobs import (
    DEFAULT_CACHE_BYTES,
    BlobStore,
    decode_value,
    encode_value,
    private,
)
from langgraph_agentgit.storage.search import SearchIndex, Tail, index_fork_point, reindex_stale

METADATA_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{1,128}$")
_SCALARS = (str, int, float, bool, type(None))
_BATCH = 1000


# The largest LIMIT SQL takes (a 64-bit integer): a larger one wants every row anyway.
_MAX_SQL_INT = 2**63 - 1


@dataclass(frozen=True)
class Row:
    rid: int
    thread_pk: int
    ns: str
    checkpoint_id: str
    parent_checkpoint_id: str | None
    parent_rid: int | None
    body: bytes
    metadata: str
    refs: str

    @classmethod
    def of(cls, values: Sequence[Any]) -> Row:
        return cls(*values[:9])


@dataclass(frozen=True)
class LineageEntry:
    pk: int
    # Newest checkpoint id this thread contributes (None: the thread itself, unbounded).
    bound: str | None
    # Where this thread was forked from the next entry, if it was.
    fork_checkpoint_id: str | None
    fork_rid: int | None
    inherits: bool
    created_at: str = ""
    # When it stopped inheriting from the next entry (None: it never did).
    stopped_at: str | None = None
    # Bumped when what its forks see of it may have changed (see SearchIndex.ancestry).
    epoch: int = 0


@dataclass(frozen=True)
class Lineage:
    thread_id: str
    entries: tuple[LineageEntry, ...]

    @property
    def pk(self) -> int:
        return self.entries[0].pk

    @property
    def signature(self) -> tuple[tuple[int, bool, str | None, int], ...]:
        """What a thread's ancestry is computed from, as stored now: a cached ancestry
        made under another signature is stale (a prune or a run deletion since, in this
        process or another)."""
        return tuple((e.pk, e.inherits, e.stopped_at, e.epoch) for e in self.entries)

    def write_visible(self, pk: int, written_at: int | None) -> bool:
        """Whether a pending write an ancestor thread stored is in this thread's history:
        only if it was stored before the fork that inherits from that thread was made
        (a source may go on writing at old checkpoints: a resume addressed there)."""
        if written_at is None:
            return True
        index = self.index_of(pk)
        if not index:
            return True
        return written_at <= _micros(self.entries[index - 1].created_at)

    def inherited_row_visible(self, pk: int, hidden: int, hidden_at: str | None) -> bool:
        """Whether a row of an ancestor thread belongs to this thread's history.

        A row hidden in its own thread (deleted, pruned, its run deleted) stays in the
        history of forks created before it was hidden, and is not in the history of
        forks created after: as if each fork had copied its history when it was made.
        Likewise a thread between this one and the row's that stopped inheriting (a
        pruned fork) hides its parent's rows from forks of it made after that.
        """
        index = self.index_of(pk)
        if index is None:
            # Reached through the parent link of a copied row whose parent was not copied
            # (copy_thread copies what the source sees): never in this history.
            return False
        if index == 0:
            return True
        if self.cut_off_before(index):
            return False
        if not hidden or hidden_at is None:
            return True
        return hidden_at > self.entries[index - 1].created_at

    def cut_off_before(self, index: int) -> bool:
        """Whether a thread between this one and entry ``index`` had stopped inheriting
        (was pruned) before the thread forked from it was made: then nothing of entry
        ``index`` or beyond is in this thread's history."""
        for j in range(1, index):
            stopped = self.entries[j].stopped_at
            if stopped is not None and stopped <= self.entries[j - 1].created_at:
                return True
        return False

    def searchable(self) -> list[tuple[int, str | None]]:
        """The threads whose message index rows this thread sees: ``(pk, newest
        checkpoint id seen there)``, itself first (``None``: all of its own), then each
        ancestor it still inherits from up to its bound."""
        own = self.entries[0]
        out: list[tuple[int, str | None]] = [(own.pk, None)]
        if own.inherits:
            for index, entry in enumerate(self.entries[1:], 1):
                if self.cut_off_before(index):
                    break
                out.append((entry.pk, entry.bound))
        return out

    def index_of(self, pk: int) -> int | None:
        for i, entry in enumerate(self.entries):
            if entry.pk == pk:
                return i
        return None

    def write_providers(self, row: Row) -> tuple[int, ...]:
        """Lineage threads whose writes at ``row`` this thread sees, nearest first."""
        owner = self.index_of(row.thread_pk)
        if owner is None:
            return (row.thread_pk,)
        for j in range(owner):
            if row.ns == "" and self.entries[j].fork_checkpoint_id == row.checkpoint_id:
                return tuple(e.pk for e in self.entries[: j + 1])
        return tuple(e.pk for e in self.entries[: owner + 1])


def build_lineage(thread_id: str, rows: Sequence[Sequence[Any]]) -> Lineage:
    """A lineage from its threads' rows, nearest first: (pk, parent pk, fork checkpoint
    id, fork rid, inherits, created at, stopped at[, epoch])."""
    entries: list[LineageEntry] = []
    bound: str | None = None
    for i, row in enumerate(rows):
        pk, _parent, fork_id, fork_rid, inherits, created, stopped = row[:7]
        epoch = int(row[7]) if len(row) > 7 else 0
        if i > 0:
            child_fork = entries[i - 1].fork_checkpoint_id
            bound = child_fork if bound is None or (child_fork or "") < bound else bound
        entries.append(
            LineageEntry(pk, bound, fork_id, fork_rid, bool(inherits), str(created), stopped, epoch)
        )
    return Lineage(thread_id, tuple(entries))


def thread_id_of(config: RunnableConfig | None) -> str:
    """The ``thread_id`` of a config, or a ``ValueError`` saying it is missing."""
    configurable = (config or {}).get("configurable") or {}
    thread_id = configurable.get("thread_id")
    if thread_id is None:
        raise ValueError(
            'config has no "thread_id": pass {"configurable": {"thread_id": ...}} '
            "to identify the thread"
        )
    return str(thread_id)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


def _check_new_thread_id(thread_id: str) -> None:
    """Refuse to create a thread whose id holds NUL, with ``ValueError``: PostgreSQL
    cannot store one, and on SQLite ``delete_thread`` and ``prune`` refuse such an id, so
    the thread could never be deleted."""
    if "\x00" in thread_id:
        raise ValueError(f"a thread id must not hold NUL (0x00): {thread_id!r}")


@lru_cache(maxsize=4096)  # thread creation times, read for every inherited write
def _micros(iso: str) -> int:
    """An ISO-8601 time (as :func:`_now` writes) in microseconds since the epoch."""
    moment = datetime.fromisoformat(iso)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment - _EPOCH) // timedelta(microseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def decode_record(serde: SerializerProtocol, data: bytes, checkpoint_id: str) -> dict[str, Any]:
    """A checkpoint row's stored record: the checkpoint minus its id and channel values
    (``v``, ``ts``, ``channel_versions``, ``versions_seen``...). Raises
    ``CorruptDataError`` naming ``checkpoint_id`` when it cannot be inflated or decoded,
    or decodes to other shapes than LangGraph's (:func:`record_problem`)."""
    try:
        body = decode_value(serde, data)
    except CorruptDataError as exc:
        raise exc.located(checkpoint_id=checkpoint_id) from exc
    except AgentGitError:
        raise
    except Exception as exc:
        raise CorruptDataError(
            f"the checkpoint's record cannot be decoded ({type(exc).__name__}: {exc})",
            checkpoint_id=checkpoint_id,
        ) from exc
    problem = record_problem(body)
    if problem is not None:
        raise CorruptDataError(f"the checkpoint's record {problem}", checkpoint_id=checkpoint_id)
    return cast(dict[str, Any], body)


_VERSION_TYPES = (str, int, float)


def record_problem(body: Any) -> str | None:
    """Why a decoded checkpoint record (a LangGraph ``Checkpoint`` minus its id and
    values) cannot be handed to LangGraph, or ``None``. The shapes are those of
    LangGraph's ``Checkpoint``: ``v`` an int, ``ts`` a string, ``channel_versions`` a
    mapping of channel to version (str, int or float), ``versions_seen`` a mapping of
    node to such a mapping, ``updated_channels`` None or a list of names. A forged
    record of other types otherwise fails deep inside LangGraph with a TypeError instead
    of naming the damaged checkpoint."""
    if not isinstance(body, dict):
        return "is not a mapping"
    if "v" in body and (type(body["v"]) is not int):
        return "has a format version that is not an integer"
    if "ts" in body and not isinstance(body["ts"], str):
        return "has a timestamp that is not a string"
    if not _versions_map(body.get("channel_versions", {})):
        return "has channel versions that are not a mapping of versions"
    seen = body.get("versions_seen", {})
    if not isinstance(seen, dict) or not all(_versions_map(v) for v in seen.values()):
        return "has versions seen that are not a mapping of mappings of versions"
    updated = body.get("updated_channels")
    if updated is not None and (
        not isinstance(updated, list) or not all(isinstance(c, str) for c in updated)
    ):
        return "has updated channels that are not a list of names"
    return None


def _versions_map(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and type(v) in _VERSION_TYPES for k, v in value.items()
    )


class CheckpointStore:
    """LangGraph's checkpointer operations on one database (its dialect: ``sql``)."""

    #: A delete or prune sweeps only the families it changed until the checkpoint rows
    #: such sweeps deleted reach this share of those the last whole sweep found; then
    #: the whole database is swept (what shared blobs left behind goes with it).
    WHOLE_SWEEP_SHARE: float = 0.1

    def __init__(
        self,
        serde: SerializerProtocol,
        *,
        cache_size: int = DEFAULT_CACHE_BYTES,
        sql: ModuleType,
    ) -> None:
        #: The backend's SQL module (``backends/<engine>/sql.py``): every statement run.
        self.sql = sql
        self.blobs = BlobStore(serde, cache_size=cache_size, sql=sql)
        #: The message index (full-text search and usage counters), kept by :meth:`put`.
        self.search = SearchIndex(sql)
        self.blobs.add_cache(self.search.ancestries)

    @property
    def serde(self) -> SerializerProtocol:
        return self.blobs.serde

    # --- threads -------------------------------------------------------------------------

    def lineage(self, conn: Connection, thread_id: str) -> Lineage | None:
        rows = conn.execute(self.sql.SELECT_LINEAGE, (thread_id,)).fetchall()
        if not rows:
            return None
        if rows[-1][1] is not None and rows[-1][1] in {row[0] for row in rows}:
            raise CorruptDataError(
                "the thread's fork links form a cycle (run `agentgit check`)", thread_id=thread_id
            )
        return build_lineage(thread_id, rows)

    def _ensure_thread(self, conn: Connection, thread_id: str) -> Lineage:
        lineage = self.lineage(conn, thread_id)
        if lineage is None:  # a new thread descends from nothing
            lineage = _own_lineage(thread_id, self._thread_pk(conn, thread_id))
        return lineage

    def _thread_pk(self, conn: Connection, thread_id: str) -> int:
        found = conn.execute(self.sql.SELECT_THREAD_PK, (thread_id,)).fetchone()
        if found:
            return int(found[0])
        deleted = conn.execute(self.sql.SELECT_DELETED_THREAD, (thread_id,)).fetchone()
        if deleted:
            raise ThreadDeletedError(
                f"thread {thread_id!r} of session {deleted[0]!r} was deleted; a run that "
                "was still writing into it cannot bring it back (nothing was stored)"
            )
        _check_new_thread_id(thread_id)
        row = conn.execute(self.sql.INSERT_THREAD, (thread_id, None, None, None, _now())).fetchone()
        return int(row[0])

    def checkpoint_count(self, conn: Connection, thread_id: str) -> int:
        """Root-namespace checkpoints the thread wrote itself (inherited ones excluded)."""
        row = conn.execute(self.sql.SELECT_CHECKPOINT_COUNT, (thread_id,)).fetchone()
        return int(row[0]) if row else 0

    def checkpoint_ids(self, conn: Connection) -> list[str]:
        """Every root-namespace checkpoint id stored, sorted, without decoding any state."""
        return [str(row[0]) for row in conn.execute(self.sql.SELECT_ROOT_CHECKPOINT_IDS)]

    # --- finding rows --------------------------------------------------------------------

    def find_row(
        self, conn: Connection, lineage: Lineage, ns: str, checkpoint_id: str | None
    ) -> Row | None:
        """The checkpoint the thread sees under ``checkpoint_id`` (latest when None).

        In the root namespace a fork sees exactly its fork checkpoint and that
        checkpoint's ancestors, the same rows ``list`` shows.
        """
        own = lineage.entries[0]
        entries = lineage.entries if own.inherits else lineage.entries[:1]
        if ns == "" and len(entries) > 1 and own.fork_rid is not None:
            found = conn.execute(
                self.sql.SELECT_OWN_LATEST if checkpoint_id is None else self.sql.SELECT_OWN_BY_ID,
                (own.pk, ns) if checkpoint_id is None else (own.pk, ns, checkpoint_id),
            ).fetchone()
            if found is None and checkpoint_id is None:
                found = conn.execute(self.sql.SELECT_CHECKPOINT_BY_RID, (own.fork_rid,)).fetchone()
            elif found is None:
                # A quick SQL walk finds the row; the history walk then says whether the
                # fork sees it (a row hidden before the fork was made, or reached past a
                # pruned boundary or out of the lineage, is not in its history).
                member = conn.execute(
                    self.sql.SELECT_CHAIN_MEMBER, (own.fork_rid, checkpoint_id, checkpoint_id)
                ).fetchone()
                if member is None:
                    return None
                return next(
                    (r for r in self._inherited_chain(conn, lineage) if r.rid == member[0]),
                    None,
                )
            return Row.of(found) if found else None
        for i, entry in enumerate(entries):
            if checkpoint_id is None:
                if i == 0:
                    found = conn.execute(self.sql.SELECT_OWN_LATEST, (entry.pk, ns)).fetchone()
                else:
                    found = conn.execute(
                        self.sql.SELECT_INHERITED_LATEST, (entry.pk, ns, entry.bound)
                    ).fetchone()
            elif i == 0:
                found = conn.execute(
                    self.sql.SELECT_OWN_BY_ID, (entry.pk, ns, checkpoint_id)
                ).fetchone()
            else:
                found = conn.execute(
                    self.sql.SELECT_INHERITED_BY_ID, (entry.pk, ns, checkpoint_id, entry.bound)
                ).fetchone()
            if found:
                return Row.of(found)
        return None

    def searchable(
        self, conn: Connection, lineage: Lineage
    ) -> list[tuple[int, frozenset[str] | None]]:
        """The threads whose message index rows the thread sees (``search.Ancestry``):
        itself (None: all of its rows), then each ancestor it still inherits from with
        the root-namespace checkpoints it sees there, the fork checkpoint and that
        checkpoint's ancestors, as ``list`` shows them. Not every checkpoint up to the
        fork point's id: one of a branch the source left by time travel (a run from an
        older checkpoint of the same thread) is older than the fork point but not in the
        fork's history, and its messages are not the fork's (nor its user's)."""
        entries = lineage.searchable()
        if len(entries) == 1:
            return [(entries[0][0], None)]
        seen: dict[int, set[str]] = {pk: set() for pk, _ in entries[1:]}
        fork_rid = lineage.entries[0].fork_rid
        if (
            fork_rid is not None
            and not conn.execute(self.sql.SELECT_CHECKPOINT_BY_RID, (fork_rid,)).fetchone()
        ):
            pass  # collected: a deleted thread that only links its forks sees nothing
        elif fork_rid is not None:
            broken: set[int] = set()
            # Every ancestor of the fork checkpoint, hidden ones included: the messages
            # first indexed at one (a pruned or deleted-run checkpoint that a row still
            # descends from) are in the fork point's state, whether or not the fork
            # lists that checkpoint.
            last: tuple[Any, ...] | None = None
            for found in self.chain(conn, fork_rid):
                index = lineage.index_of(int(found[1]))
                if index is None or (index and lineage.cut_off_before(index)):
                    break  # beyond a pruned boundary, or out of the lineage
                last = found
                if found[2] == "" and int(found[1]) in seen:
                    seen[int(found[1])].add(str(found[3]))
            else:
                # The last row walked names a parent the walk could not reach: collected.
                if last is not None and last[4] is not None:
                    broken.add(int(last[1]))
            if broken:
                self.search.broken.add(lineage.entries[0].pk)
            # The walk ended at a parent the collector removed: the ancestor was pruned
            # to a checkpoint the fork point descends from. Everything that ancestor no
            # longer lists up to the fork point, but a line it dropped, is that
            # checkpoint's history (its state holds those messages); what it still lists
            # and the walk did not reach is another line (time travel), not the fork's.
            for pk, bound in entries[1:]:
                if pk in broken:
                    dropped = self.dropped(conn, pk)
                    seen[pk].update(
                        str(r[0])
                        for r in conn.execute(self.sql.SEARCH_UNLISTED_CHECKPOINTS, (pk,))
                        if (bound is None or str(r[0]) <= bound) and str(r[0]) not in dropped
                    )
        else:  # a fork written before fork rows were recorded: its bounds, by id
            for pk, bound in entries[1:]:
                seen[pk] = {
                    str(r[0])
                    for r in conn.execute(self.sql.SEARCH_ROOT_ROWS, (pk,))
                    if bound is None or str(r[0]) <= bound
                }
        return [(entries[0][0], None), *((pk, frozenset(seen[pk])) for pk, _ in entries[1:])]

    def dropped(self, conn: Connection, pk: int) -> frozenset[str]:
        """Ids of the root-namespace checkpoints of thread ``pk`` that it no longer lists
        and that none it lists descends from: a line it left by time travel and then
        pruned, or a deleted run at a tip, kept only because a fork inherits it. The
        messages first indexed there are that fork's history, not the thread's, so the
        thread's own search hits and usage leave them out (the fork still sees them,
        through :meth:`searchable`). Empty for a thread that dropped nothing."""
        found = conn.execute(self.sql.SELECT_DROPPED, (pk,)).fetchone()
        return frozenset(json.loads(found[0])) if found and found[0] else frozenset()

    def _record_dropped(self, conn: Connection, pk: int) -> None:
        """Add to :meth:`dropped` the thread's hidden root-namespace rows that no row it
        lists descends from. Run after hiding and before collecting, while the links
        hold. A walk from the listed rows that ends at a parent an earlier collection
        removed cannot tell what was above it: a hidden row older than that parent is
        left undecided (counted, as before), never dropped. The thread's own index rows
        that named a checkpoint dropped now are placed again (by the collection that
        follows, see ``search.reindex_stale``): a message its listed rows hold too is
        theirs (an answer of a deleted run that later turns also hold)."""
        rows = {int(r[0]): r for r in conn.execute(self.sql.SEARCH_THREAD_LINKS, (pk,))}
        dangling = {int(r[3]) for r in rows.values() if r[3] is not None and int(r[3]) not in rows}
        elsewhere = (
            {
                int(r[0])
                for r in conn.execute(
                    self.sql.SEARCH_EXISTING_RIDS, (json.dumps(sorted(dangling)),)
                )
            }
            if dangling
            else set()
        )
        reached: set[int] = set()
        # Checkpoint ids of the collected parents the walk ended at: what was above one
        # is older than it (a parent is older than its children), so a hidden row newer
        # than every such parent was above none of them.
        ends: list[str] = []
        todo = [rid for rid, r in rows.items() if not r[5]]
        while todo:
            rid = todo.pop()
            if rid in reached:
                continue
            reached.add(rid)
            _rid, _ns, _checkpoint_id, parent_rid, parent_id, _hidden = rows[rid]
            if parent_rid is not None and int(parent_rid) in rows:
                todo.append(int(parent_rid))
            elif parent_id is not None and (parent_rid is None or int(parent_rid) not in elsewhere):
                ends.append(str(parent_id))
        newest_end = max(ends, default="")
        found = {
            str(r[2])
            for rid, r in rows.items()
            if r[5] and r[1] == "" and rid not in reached and str(r[2]) > newest_end
        }
        # Index rows can outlive their checkpoint (collected by an earlier prune or run
        # deletion while a listed row still descended from it). Judged again the same
        # way: once no walk from a listed row can have passed it, it is dropped too (the
        # rows of a thread whose every run was deleted, one by one).
        if self.search.enabled:
            own_ids = {str(r[2]) for r in rows.values() if r[1] == ""}
            found.update(
                checkpoint_id
                for checkpoint_id in (
                    str(r[0]) for r in conn.execute(self.sql.SEARCH_UNLISTED_CHECKPOINTS, (pk,))
                )
                if checkpoint_id not in own_ids and checkpoint_id > newest_end
            )
        before = self.dropped(conn, pk)
        if found - before:
            conn.execute(self.sql.SET_DROPPED, (json.dumps(sorted(before | found)), pk))
            if self.search.enabled:
                # Its rows are placed again, and what a fork whose walk ends at a
                # collected row sees of it leaves out the lines it dropped: it and its
                # forks are indexed again from what they hold (by the collection that
                # follows, see reindex_stale).
                conn.execute(self.sql.SEARCH_MARK_STALE, (json.dumps([pk]),))

    def _forget_collected(self, conn: Connection, pks: Sequence[int]) -> None:
        """Keep in :meth:`dropped` only the checkpoints the thread still has index rows
        or a row of, so that the list does not grow with every prune of a thread. Rows
        outlive a collected checkpoint when their message lives on elsewhere (a fork
        point's pending write holding the answer of a run deleted after it): those stay
        dropped. A hidden row kept for a fork stays dropped even without index rows: a
        reindex may place messages there (its first row holding them)."""
        for pk in pks:
            before = self.dropped(conn, pk)
            if before:
                found = conn.execute(
                    self.sql.SEARCH_CHECKPOINTS_WITH_DOCS_OR_ROWS,
                    (json.dumps(sorted(before)), pk, pk),
                )
                left = {str(r[0]) for r in found}
                if before - left:
                    kept = sorted(before & left)
                    conn.execute(self.sql.SET_DROPPED, (json.dumps(kept) if kept else None, pk))

    def _inherited_chain(self, conn: Connection, lineage: Lineage) -> Iterator[Row]:
        """The root-namespace rows a fork inherits, nearest first: its fork checkpoint
        and that checkpoint's ancestors as the fork sees them."""
        fork_rid = lineage.entries[0].fork_rid
        if fork_rid is None:
            return
        for found in self.chain(conn, fork_rid):
            row = Row.of(found)
            if not lineage.inherited_row_visible(row.thread_pk, found[9], found[10]):
                index = lineage.index_of(row.thread_pk)
                if index is None or (index and lineage.cut_off_before(index)):
                    return  # nothing beyond a pruned boundary or out of the lineage either
                # A checkpoint hidden before the fork was made (a deleted run, a prune) is
                # not in its history; older ones may be, as they still are in the source's.
                continue
            if row.ns == "":
                yield row

    def chain(self, conn: Connection, rid: int) -> Iterator[tuple[Any, ...]]:
        """Rows along parent links from ``rid``, nearest first, as they are walked.

        Raises :class:`CorruptDataError` when a parent link leads back to a row already
        walked, or to a row that is not there (the library never writes either: a parent
        that is deleted leaves its id as text, not a dangling row id).
        """
        seen: set[int] = set()
        last: tuple[Any, ...] | None = None
        for found in conn.execute(self.sql.SELECT_CHAIN, (rid,)):
            if found[0] in seen:
                raise CorruptDataError(
                    "parent links form a cycle (run `agentgit check`)",
                    checkpoint_id=str(found[3]),
                )
            seen.add(found[0])
            last = found
            yield found
        # (A parent removed by garbage collection left its id as text: the walk ends.)
        if last is None or (last[5] is not None and last[4] is None):
            raise CorruptDataError(
                "a parent checkpoint is missing (run `agentgit check`)",
                checkpoint_id=None if last is None else str(last[3]),
            )

    # --- reading -------------------------------------------------------------------------

    def get_tuple(self, conn: Connection, config: RunnableConfig) -> CheckpointTuple | None:
        thread_id = thread_id_of(config)
        ns = config["configurable"].get("checkpoint_ns") or ""
        checkpoint_id = get_checkpoint_id(config)
        # A thread's own rows come first whatever it inherits, and only it wrote at them:
        # when one matches, the lineage is not needed.
        own = self._own_row(conn, thread_id, ns, checkpoint_id)
        if own is not None:
            found = self._tuples(conn, _own_lineage(thread_id, own.thread_pk), [own])[0]
        else:
            lineage = self.lineage(conn, thread_id)
            row = self.find_row(conn, lineage, ns, checkpoint_id) if lineage else None
            if lineage is None or row is None:
                return None
            found = self._tuples(conn, lineage, [row])[0]
        # As InMemorySaver and SqliteSaver do: a config naming the checkpoint comes back
        # as given, metadata included, which LangGraph's "__copy__" puts into the copy.
        return found._replace(config=config) if checkpoint_id else found

    def _own_row(
        self, conn: Connection, thread_id: str, ns: str, checkpoint_id: str | None
    ) -> Row | None:
        found = (
            conn.execute(self.sql.SELECT_OWN_LATEST_BY_THREAD_ID, (thread_id, ns))
            if checkpoint_id is None
            else conn.execute(self.sql.SELECT_OWN_BY_THREAD_ID, (thread_id, ns, checkpoint_id))
        ).fetchone()
        return Row.of(found) if found else None

    def list_checkpoints(
        self,
        conn: Connection,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        if limit is not None:
            if not isinstance(limit, int):
                raise TypeError(
                    f"limit must be an int or None, not {type(limit).__name__} {limit!r}"
                )
            if limit <= 0:
                return
            # int(): True is 1, as for InMemorySaver (PostgreSQL refuses a boolean LIMIT).
            limit = min(int(limit), _MAX_SQL_INT)
        metadata_filter = _validated_filter(filter)
        before_id = get_checkpoint_id(before) if before else None
        if config is None:
            yield from self._list_all(conn, metadata_filter, before_id, limit)
            return
        thread_id = thread_id_of(config)
        lineage = self.lineage(conn, thread_id)
        if lineage is None:
            return
        configurable = config.get("configurable", {})
        ns = configurable.get("checkpoint_ns")
        checkpoint_id = get_checkpoint_id(config)
        rows = self._visible_rows(
            conn, lineage, ns, checkpoint_id, before_id, metadata_filter, limit
        )
        for start in range(0, len(rows), _BATCH):
            yield from self._tuples(conn, lineage, rows[start : start + _BATCH])

    def _list_all(
        self,
        conn: Connection,
        metadata_filter: dict[str, Any],
        before_id: str | None,
        limit: int | None,
    ) -> Iterator[CheckpointTuple]:
        sql, params = _filtered(
            self.sql,
            self.sql.SELECT_ALL_LIVE_CHECKPOINTS,
            [None, None, None, None, before_id, before_id],
            metadata_filter,
        )
        sql += self.sql.ORDER_NEWEST_FIRST
        if limit is not None and all(isinstance(v, _SCALARS) for v in metadata_filter.values()):
            sql, params = sql + self.sql.LIMIT, [*params, limit]
        found = conn.execute(sql, params).fetchall()
        rows = [(Row.of(r), r[9]) for r in found if _matches(json.loads(r[7]), metadata_filter)]
        rows = _apply_limit(rows, limit)
        for start in range(0, len(rows), _BATCH):
            batch = rows[start : start + _BATCH]
            by_thread: dict[str, list[Row]] = {}
            for row, thread_id in batch:
                by_thread.setdefault(thread_id, []).append(row)
            built: dict[int, CheckpointTuple] = {}
            for thread_id, thread_rows in by_thread.items():
                own = Lineage(
                    thread_id, (LineageEntry(thread_rows[0].thread_pk, None, None, None, False),)
                )
                for row, tup in zip(thread_rows, self._tuples(conn, own, thread_rows), strict=True):
                    built[row.rid] = tup
            for row, _ in batch:
                yield built[row.rid]

    def _visible_rows(
        self,
        conn: Connection,
        lineage: Lineage,
        ns: str | None,
        checkpoint_id: str | None,
        before_id: str | None,
        metadata_filter: dict[str, Any],
        limit: int | None = None,
    ) -> list[Row]:
        """Rows the thread sees, in listing order: own rows newest first, then the inherited
        root-namespace lineage newest first, then inherited child-namespace rows; at most
        ``limit`` of them, found without reading further than needed."""
        own = lineage.entries[0]
        sql, params = _filtered(
            self.sql,
            self.sql.SELECT_OWN_CHECKPOINTS,
            [own.pk, ns, ns, checkpoint_id, checkpoint_id, before_id, before_id],
            metadata_filter,
        )
        # When SQL applies the whole filter, the limit can be applied there too.
        exact = all(isinstance(v, _SCALARS) for v in metadata_filter.values())
        if limit is not None and exact:
            sql, params = sql + self.sql.ORDER_NEWEST_FIRST + self.sql.LIMIT, [*params, limit]
        else:
            sql += self.sql.ORDER_NEWEST_FIRST
        rows = [Row.of(r) for r in conn.execute(sql, params)]
        if metadata_filter and not exact:
            rows = [r for r in rows if _matches(json.loads(r.metadata), metadata_filter)]
        if len(lineage.entries) > 1 and own.inherits:
            if ns in (None, "") and own.fork_rid is not None:
                # The walk streams: it stops as soon as the limit is reached.
                for row in self._inherited_chain(conn, lineage):
                    if limit is not None and len(rows) >= limit:
                        break
                    if checkpoint_id is not None and row.checkpoint_id != checkpoint_id:
                        continue
                    if before_id is not None and row.checkpoint_id >= before_id:
                        continue
                    if metadata_filter and not _matches(json.loads(row.metadata), metadata_filter):
                        continue
                    rows.append(row)
            if ns != "":
                for entry in lineage.entries[1:]:
                    sql, params = _filtered(
                        self.sql,
                        self.sql.SELECT_INHERITED_CHILD_NS,
                        [
                            entry.pk,
                            entry.bound,
                            ns,
                            ns,
                            checkpoint_id,
                            checkpoint_id,
                            *[before_id] * 2,
                        ],
                        metadata_filter,
                    )
                    rows.extend(
                        row
                        for row in map(
                            Row.of, conn.execute(sql + self.sql.ORDER_NEWEST_FIRST, params)
                        )
                        if _matches(json.loads(row.metadata), metadata_filter)
                    )
        return _apply_limit(rows, limit)

    def _tuples(
        self, conn: Connection, lineage: Lineage, rows: Sequence[Row]
    ) -> list[CheckpointTuple]:
        """Build tuples for rows seen from one thread: one query for all their writes and
        one (plus delta bases) for all their values.

        Damage (a missing or undecodable value, body or metadata) raises
        :class:`CorruptDataError` naming the thread and checkpoint: a state is never
        returned with a channel or write quietly left out.
        """
        refs = [_refs(row, lineage.thread_id) for row in rows]
        writes = self._visible_writes(conn, lineage, rows)
        blob_ids = {i for r in refs for i in r.values() if i}
        blob_ids |= {w[3] for ws in writes.values() for w in ws}
        try:
            values = self.blobs.load(conn, blob_ids)
        except CorruptDataError as exc:
            user = next(
                (
                    row.checkpoint_id
                    for row, row_refs in zip(rows, refs, strict=True)
                    if exc.blob_id in row_refs.values()
                    or any(w[3] == exc.blob_id for w in writes.get(row.rid, ()))
                ),
                rows[0].checkpoint_id if len(rows) == 1 else None,
            )
            raise exc.located(thread_id=lineage.thread_id, checkpoint_id=user) from exc
        handed_out: set[int] = set()

        def own_copy(blob: int) -> Any:
            # A list (or set, dict) shared by several checkpoints is copied (the items
            # stay shared), so changing one snapshot's value does not change another's.
            value = values[blob]
            if blob in handed_out:
                return list(value) if isinstance(value, list) else private(value)
            handed_out.add(blob)
            return value

        out = []
        for row, row_refs in zip(rows, refs, strict=True):
            try:
                body = self._body(row)
                metadata = json.loads(row.metadata)
            except CorruptDataError as exc:
                raise exc.located(thread_id=lineage.thread_id) from exc
            except AgentGitError:
                raise
            except Exception as exc:
                raise CorruptDataError(
                    f"the checkpoint's record cannot be decoded ({type(exc).__name__}: {exc})",
                    thread_id=lineage.thread_id,
                    checkpoint_id=row.checkpoint_id,
                ) from exc
            checkpoint = cast(
                Checkpoint,
                {
                    **body,
                    "id": row.checkpoint_id,
                    "channel_values": {ch: own_copy(blob) for ch, blob in row_refs.items() if blob},
                },
            )
            if row.parent_rid is not None and row.parent_checkpoint_id is None:
                raise CorruptDataError(
                    "the checkpoint's parent is missing (run `agentgit check`)",
                    thread_id=lineage.thread_id,
                    checkpoint_id=row.checkpoint_id,
                )
            config = _config(lineage.thread_id, row.ns, row.checkpoint_id)
            parent = (
                _config(lineage.thread_id, row.ns, row.parent_checkpoint_id)
                if row.parent_checkpoint_id
                else None
            )
            pending: list[PendingWrite] = [
                (task_id, channel, values[blob])
                for task_id, channel, _path, blob, _idx in writes.get(row.rid, [])
            ]
            out.append(
                CheckpointTuple(
                    config=config,
                    checkpoint=checkpoint,
                    metadata=cast(CheckpointMetadata, metadata),
                    parent_config=parent,
                    pending_writes=pending,
                )
            )
        return out

    def _visible_writes(
        self, conn: Connection, lineage: Lineage, rows: Sequence[Row]
    ) -> dict[int, list[tuple[str, str, str, int, int]]]:
        """Per row id: (task_id, channel, task_path, blob_id, idx) in ``writes_sort_key``
        order."""
        out: dict[int, list[tuple[str, str, str, int, int]]] = {}
        by_ns: dict[str, list[Row]] = {}
        for row in rows:
            by_ns.setdefault(row.ns, []).append(row)
        for ns, ns_rows in by_ns.items():
            providers = {row.rid: lineage.write_providers(row) for row in ns_rows}
            pks = sorted({pk for p in providers.values() for pk in p})
            ids = sorted({row.checkpoint_id for row in ns_rows})
            stored: dict[tuple[int, str], list[tuple[Any, ...]]] = {}
            query = (
                conn.execute(self.sql.SELECT_WRITES_OF_CHECKPOINT, (pks[0], ns, ids[0]))
                if len(pks) == 1 and len(ids) == 1
                else conn.execute(self.sql.SELECT_WRITES, (ns, json.dumps(pks), json.dumps(ids)))
            )
            for found in query:
                stored.setdefault((found[0], found[1]), []).append(found)
            for row in ns_rows:
                seen: dict[tuple[str, int], tuple[str, str, str, int, int]] = {}
                for pk in providers[row.rid]:
                    for _pk, _cid, task_id, idx, channel, task_path, blob, written in stored.get(
                        (pk, row.checkpoint_id), ()
                    ):
                        if pk != lineage.pk and not lineage.write_visible(pk, written):
                            continue
                        seen.setdefault((task_id, idx), (task_id, channel, task_path, blob, idx))
                out[row.rid] = [
                    seen[key]
                    for key in sorted(seen, key=lambda k: writes_sort_key(seen[k][2], k[0], k[1]))
                ]
        return out

    def delta_channel_history(
        self, conn: Connection, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """Walk the parent chain once for all channels (see BaseCheckpointSaver)."""
        if not channels:
            return {}
        result: dict[str, DeltaChannelHistory] = {ch: {"writes": []} for ch in channels}
        thread_id = thread_id_of(config)
        lineage = self.lineage(conn, thread_id)
        if lineage is None:
            return result
        ns = config["configurable"].get("checkpoint_ns") or ""
        target = self.find_row(conn, lineage, ns, get_checkpoint_id(config))
        if target is None or target.parent_rid is None:
            return result
        remaining = set(channels)
        seeds: dict[str, int] = {}
        # chain[i] is the i-th ancestor; last_index[ch] is the oldest one whose writes count.
        chain: list[Row] = []
        last_index: dict[str, int] = {}
        for found in self.chain(conn, target.parent_rid):
            row = Row.of(found)
            chain.append(row)
            refs = json.loads(row.refs)
            for ch in list(remaining):
                if refs.get(ch):
                    seeds[ch] = refs[ch]
                    last_index[ch] = len(chain) - 1
                    remaining.discard(ch)
            if not remaining:
                break
        writes = self._visible_writes(conn, lineage, chain)
        wanted_blobs = set(seeds.values()) | {
            w[3] for ws in writes.values() for w in ws if w[1] in result
        }
        values = self.blobs.load(conn, wanted_blobs)
        for index in range(len(chain) - 1, -1, -1):
            for task_id, channel, _path, blob, _idx in writes.get(chain[index].rid, []):
                if channel in result and index <= last_index.get(channel, len(chain)):
                    result[channel]["writes"].append((task_id, channel, values.get(blob)))
        for ch, blob in seeds.items():
            result[ch]["seed"] = values.get(blob)
        return result

    # --- writing -------------------------------------------------------------------------

    def put(
        self,
        conn: Connection,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        thread_id = thread_id_of(config)
        ns = config["configurable"].get("checkpoint_ns") or ""
        # Checked before anything is stored.
        stored_metadata = get_serializable_checkpoint_metadata(config, metadata)
        metadata_json = _metadata_json(stored_metadata)
        parent_id = get_checkpoint_id(config)
        parent = self._own_row(conn, thread_id, ns, parent_id) if parent_id else None
        whole_lineage = parent is None
        if parent is not None:
            lineage = _own_lineage(thread_id, parent.thread_pk)
        else:
            lineage = self._ensure_thread(conn, thread_id)
            parent = self.find_row(conn, lineage, ns, parent_id) if parent_id else None
        hidden_parent = False
        if parent is None and parent_id:
            found = conn.execute(
                self.sql.SELECT_OWN_HIDDEN_BY_ID, (lineage.pk, ns, parent_id)
            ).fetchone()
            if found is not None:
                parent, hidden_parent = Row.of(found), True
        parent_refs: dict[str, int] = json.loads(parent.refs) if parent else {}
        # The writes at the parent produced this checkpoint's new values: compressing the
        # values against them stores each new message's text once.
        hints = (
            [w[3] for w in self._visible_writes(conn, lineage, [parent]).get(parent.rid, [])]
            if parent
            else []
        )
        values = checkpoint["channel_values"]
        versions = checkpoint["channel_versions"]
        # LangGraph names a value by its channel and version: a channel left out of
        # new_versions holds the parent's value only if it has the parent's version. A
        # "__copy__" fork puts a copy of a later checkpoint under an earlier parent with no
        # new versions at all, and its channels hold the later values.
        parent_versions = self._versions(parent) if parent and parent_refs else {}
        refs: dict[str, int] = {}
        # New list items of the root namespace go to the message index (subgraphs' lists
        # repeat or prepare what reaches the root).
        tails: list[Tail] | None = [] if ns == "" and self.search.enabled else None
        # Channels without a value (empty, or DeltaChannel between snapshots) get no ref.
        for channel, version in versions.items():
            inherited = parent_refs.get(channel)
            if (
                channel not in new_versions
                and inherited is not None
                and parent_versions.get(channel) == version
            ):
                refs[channel] = inherited
            elif channel in values:
                refs[channel] = self.blobs.put_channel_value(
                    conn, values[channel], inherited, hints, tails, owner=lineage.pk
                )
        if tails:
            own_lineage = lineage
            self.search.index(
                conn,
                lineage.pk,
                checkpoint["id"],
                tails,
                lambda: self.search.ancestry(
                    own_lineage.pk,
                    thread_id,
                    lambda: self.searchable(
                        conn,
                        own_lineage
                        if whole_lineage
                        else self.lineage(conn, thread_id) or own_lineage,
                    ),
                ),
            )
        body = {k: v for k, v in checkpoint.items() if k not in ("channel_values", "id")}
        conn.execute(
            self.sql.UPSERT_CHECKPOINT,
            (
                lineage.pk,
                ns,
                checkpoint["id"],
                None if parent else parent_id,
                parent.rid if parent else None,
                stored_metadata.get("run_id"),
                encode_value(self.serde, body)[0],
                metadata_json,
                json.dumps(refs, separators=(",", ":")),
            ),
        ).fetchone()
        if (
            tails is not None
            and parent is not None
            and parent.rid == lineage.entries[0].fork_rid
            and lineage.entries[0].pk in self.search.broken
        ):
            # A fork's first step whose source's parent links end at a collected row:
            # what its fork checkpoint holds is indexed under it (see index_fork_point).
            index_fork_point(conn, self, lineage.pk, parent.checkpoint_id, parent.refs)
        if hidden_parent:
            # The new row rebuilds through hidden rows that nothing listed needed before.
            self._keep_for_rebuild(conn, lineage.pk)
        return _config(thread_id, ns, checkpoint["id"])

    def _body(self, row: Row) -> dict[str, Any]:
        """A row's checkpoint minus its values and id (versions, versions_seen, ts...)."""
        return decode_record(self.serde, row.body, row.checkpoint_id)

    def _versions(self, row: Row) -> Mapping[str, Any]:
        """The channel versions stored with a checkpoint row."""
        body = self._body(row)
        return cast(Mapping[str, Any], body.get("channel_versions") or {})

    def put_writes(
        self,
        conn: Connection,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        thread_id = thread_id_of(config)
        configurable = config["configurable"]
        checkpoint_id = configurable.get("checkpoint_id")
        if not checkpoint_id:
            raise ValueError('put_writes needs a config with a "checkpoint_id"')
        ns = configurable.get("checkpoint_ns") or ""
        # A task's writes usually repeat what the checkpoint holds (the input a __start__
        # task forwards, say): its values are the compression hints. Writes may arrive
        # before their checkpoint; then there are none.
        checkpoint = self._own_row(conn, thread_id, ns, checkpoint_id)
        pk = checkpoint.thread_pk if checkpoint else self._thread_pk(conn, thread_id)
        hints = [i for i in json.loads(checkpoint.refs).values() if i] if checkpoint else []
        written_at = time.time_ns() // 1000
        for idx, (channel, value) in enumerate(writes):
            write_idx = WRITES_IDX_MAP.get(channel, idx)
            # Special channels (errors, interrupts, resumes) replace; others are idempotent.
            statement = self.sql.UPSERT_WRITE if write_idx < 0 else self.sql.INSERT_WRITE_IF_ABSENT
            blob = self.blobs.put_value(conn, value, hints, owner=pk)
            if write_idx < 0:
                self._keep_replaced_write_for_forks(conn, pk, ns, checkpoint_id, task_id, write_idx)
            conn.execute(
                statement,
                (pk, ns, checkpoint_id, task_id, write_idx, channel, task_path, blob, written_at),
            )

    def put_write_rows(
        self,
        conn: Connection,
        thread_id: str,
        ns: str,
        checkpoint_id: str,
        rows: Sequence[tuple[str, int, str, str, Any]],
    ) -> None:
        """Store pending writes given with their indexes, as another saver stored them:
        ``(task_id, idx, channel, task_path, value)`` each (``put_writes`` numbers a
        task's writes itself). Values are compressed against the checkpoint's, as there.
        A write already stored under the same key is kept (special channels, whose
        indexes are negative, are replaced, as ``put_writes`` does)."""
        if not rows:
            return
        checkpoint = self._own_row(conn, thread_id, ns, checkpoint_id)
        pk = checkpoint.thread_pk if checkpoint else self._thread_pk(conn, thread_id)
        hints = [i for i in json.loads(checkpoint.refs).values() if i] if checkpoint else []
        written_at = time.time_ns() // 1000
        for task_id, idx, channel, task_path, value in rows:
            statement = self.sql.UPSERT_WRITE if idx < 0 else self.sql.INSERT_WRITE_IF_ABSENT
            blob = self.blobs.put_value(conn, value, hints, owner=pk)
            conn.execute(
                statement,
                (pk, ns, checkpoint_id, task_id, idx, channel, task_path, blob, written_at),
            )

    def _keep_replaced_write_for_forks(
        self, conn: Connection, pk: int, ns: str, checkpoint_id: str, task_id: str, idx: int
    ) -> None:
        """Copy-on-write for a pending write about to be replaced (an interrupt or error
        rewritten by a resume on the source thread): every fork that inherits the
        checkpoint and was made after the old write was stored saw that write, and a
        fork's history is what it was when it was made. Each such fork gets its own copy,
        with the original ``written_at`` so forks of the fork see it exactly when they
        saw it through the fork."""
        old = conn.execute(self.sql.SELECT_WRITE, (pk, ns, checkpoint_id, task_id, idx)).fetchone()
        if old is None:
            return
        channel, task_path, blob, written_at = old
        for fork_pk, fork_checkpoint_id, created_at in conn.execute(
            self.sql.SELECT_INHERITING_FORKS, (pk,)
        ).fetchall():
            if fork_checkpoint_id is not None and checkpoint_id > fork_checkpoint_id:
                continue  # made before this checkpoint existed: not in the fork's history
            if ns == "" and checkpoint_id == fork_checkpoint_id:
                continue  # forked here: a fork never sees its source's writes at its start
            if written_at is not None and written_at > _micros(str(created_at)):
                continue  # stored after the fork was made: the fork never saw it
            conn.execute(
                self.sql.INSERT_WRITE_IF_ABSENT,
                (fork_pk, ns, checkpoint_id, task_id, idx, channel, task_path, blob, written_at),
            )

    def fork_thread(
        self,
        conn: Connection,
        source_thread_id: str,
        checkpoint_id: str,
        new_thread_id: str,
    ) -> RunnableConfig:
        lineage = self.lineage(conn, source_thread_id)
        if lineage is None:
            raise ThreadNotFoundError(f"thread {source_thread_id!r} does not exist")
        row = self.find_row(conn, lineage, "", checkpoint_id)
        if row is None:
            raise CheckpointNotFoundError(
                f"checkpoint {checkpoint_id!r} is not in thread {source_thread_id!r}"
            )
        if conn.execute(self.sql.SELECT_THREAD_PK, (new_thread_id,)).fetchone():
            raise ThreadExistsError(f"thread {new_thread_id!r} already exists")
        _check_new_thread_id(new_thread_id)
        conn.execute(
            self.sql.INSERT_THREAD, (new_thread_id, lineage.pk, checkpoint_id, row.rid, _now())
        )
        if self.search.enabled and any(entry.epoch for entry in lineage.entries):
            # The source lost rows to a prune or a run deletion (nothing did while every
            # epoch is 0, and then this costs nothing): if the fork's walk up from its
            # fork checkpoint ends at a collected row, what that checkpoint holds is
            # indexed under the fork now, so that search finds it before its first step.
            fork = self.lineage(conn, new_thread_id)
            if fork is not None:
                self.search.broken.discard(fork.pk)
                self.searchable(conn, fork)
                if fork.pk in self.search.broken:
                    index_fork_point(conn, self, fork.pk, row.checkpoint_id, row.refs)
        return _config(new_thread_id, "", checkpoint_id)

    def lineage_of_pk(self, conn: Connection, pk: int) -> Lineage | None:
        """:meth:`lineage` of the thread whose pk is ``pk`` (None: deleted or gone)."""
        named = conn.execute(self.sql.SELECT_THREAD_ID_OF_PK, (pk,)).fetchone()
        return self.lineage(conn, str(named[0])) if named and named[0] is not None else None

    def copy_thread(self, conn: Connection, source: str, target: str) -> None:
        """Materialize a full copy (rows only: values are shared blobs).

        Raises :class:`ThreadExistsError` when ``target`` already holds anything: a copy
        never merges into or replaces another thread's history (``fork_thread`` likewise).
        """
        lineage = self.lineage(conn, source)
        if lineage is None:
            return
        if conn.execute(self.sql.SELECT_THREAD_PK, (target,)).fetchone():
            raise ThreadExistsError(
                f"thread {target!r} already exists: copy_thread needs a new thread id"
            )
        rows = self._visible_rows(conn, lineage, None, None, None, {})
        if rows:
            # What the copied rows rebuild their DeltaChannel values from, and walk past to
            # older checkpoints, may be rows the source keeps out of sight (a deleted
            # run's): copied too, out of sight, so that the copy never depends on rows of
            # the source a later prune removes.
            listed = {row.rid for row in rows}
            rebuild: dict[int, Row] = {}
            # Only where the history has a gap (a row whose parent is not listed) can a
            # rebuild reach a hidden row; a row after it reaches the same ones through it.
            # Walking from every row would cost the square of a long thread.
            for row in rows:
                if row.parent_rid is None or row.parent_rid in listed:
                    continue
                for ancestor in self._delta_ancestors(conn, row):
                    if ancestor.rid not in listed:
                        rebuild.setdefault(ancestor.rid, ancestor)
                # The hidden rows between it and the listed row it descends from (a
                # deleted run's, in the middle of the history) too: a fork of the copy
                # walks past them to the older checkpoints, as a fork of the source does
                # (the copy's row hung from the source's, so the fork's history, search
                # and usage ended there).
                # (Walked from the row itself: its parent may have been collected, its
                # rid left behind with its id as text.)
                for found in itertools.islice(self.chain(conn, row.rid), 1, None):
                    between = Row.of(found)
                    if between.rid in listed:
                        break
                    rebuild.setdefault(between.rid, between)
            target_pk = self._ensure_thread(conn, target).pk
            copies = self._copy_rows(conn, lineage, [*rows, *rebuild.values()], target_pk)
            # The copy is a family of its own that refers to the source family's blobs:
            # shared now, so that neither family's sweep takes them from the other.
            shared = [
                int(r[0])
                for r in conn.execute(self.sql.SELECT_BLOBS_OF_THREAD, (target_pk, target_pk))
            ]
            if shared:
                conn.execute(self.sql.SHARE_BLOB_CLOSURE, (json.dumps(shared),))
            if rebuild:
                # Hidden as of now: out of the copy's history and of any fork made of it.
                kept = json.dumps(sorted(copies[r] for r in rebuild))
                conn.execute(self.sql.HIDE_ROWS, (_now(), kept))
                conn.execute(self.sql.KEEP_ROWS_HIDDEN, (kept,))
            if self.search.enabled:
                # Rows copied, not put: the copy is indexed here, from what it holds, at
                # the cost of this thread alone (marking the whole index for a rebuild
                # made the next search or usage read decode every thread stored).
                conn.execute(self.sql.SEARCH_MARK_STALE, (json.dumps([target_pk]),))
                reindex_stale(conn, self)

    def _copy_rows(
        self, conn: Connection, lineage: Lineage, rows: Sequence[Row], target_pk: int
    ) -> dict[int, int]:
        """Copy rows as ``lineage`` sees them (with the writes it sees at them) into the
        thread ``target_pk``, oldest first, linking each copy to the copy of its parent.
        Returns old rid -> new rid."""
        writes = self._visible_writes(conn, lineage, rows)
        written_at = time.time_ns() // 1000
        new_rids: dict[int, int] = {}
        for row in sorted(rows, key=lambda r: r.checkpoint_id):
            parent_rid = new_rids.get(row.parent_rid or 0, row.parent_rid)
            (new_rid,) = conn.execute(
                self.sql.UPSERT_CHECKPOINT,
                (
                    target_pk,
                    row.ns,
                    row.checkpoint_id,
                    row.parent_checkpoint_id,
                    parent_rid,
                    json.loads(row.metadata).get("run_id"),
                    row.body,
                    row.metadata,
                    row.refs,
                ),
            ).fetchone()
            new_rids[row.rid] = new_rid
            conn.executemany(
                self.sql.INSERT_WRITE_IF_ABSENT,
                [
                    (
                        target_pk,
                        row.ns,
                        row.checkpoint_id,
                        task_id,
                        idx,
                        channel,
                        path,
                        blob,
                        written_at,
                    )
                    for task_id, channel, path, blob, idx in writes.get(row.rid, [])
                ],
            )
        return new_rids

    # --- deleting ------------------------------------------------------------------------

    def delete_thread(self, conn: Connection, thread_id: str) -> None:
        self.delete_threads(conn, [thread_id])

    def delete_threads(
        self, conn: Connection, thread_ids: Sequence[str], *, collect: bool = True
    ) -> None:
        """Delete several threads with one garbage collection (none when not ``collect``:
        the caller runs it). Rows a surviving fork still inherits are only hidden until
        nothing needs them."""
        touched: list[int] = []
        for thread_id in thread_ids:
            row = conn.execute(self.sql.SELECT_THREAD_PK, (thread_id,)).fetchone()
            if row is not None:
                conn.execute(self.sql.HIDE_ALL_OF_THREAD, (_now(), row[0]))
                conn.execute(self.sql.TOMBSTONE_THREAD, (row[0],))
                touched.append(int(row[0]))
                if conn.execute(self.sql.SEARCH_CHILD_THREADS, (row[0],)).fetchone():
                    # Kept to link its forks, it lists nothing: every line of it is
                    # dropped, so that a fork whose walk ends at a collected row sees
                    # only what its own walk reaches (not lines the thread left).
                    self._record_dropped(conn, int(row[0]))
                    if self.search.enabled:
                        # Its index rows past what the forks inherit name messages only
                        # it held: the collection below indexes it again from the rows
                        # the forks keep (others would stay, found by no search, until
                        # a whole reindex).
                        conn.execute(self.sql.SEARCH_MARK_STALE, (json.dumps([int(row[0])]),))
                # A session's branch deleted through the saver (LangGraph's delete_thread,
                # prune(strategy="delete")) stays a branch, now empty: it forks from
                # nothing any more (its fork row is gone) and a run on it starts afresh.
                # Its record must say so, or an export of the session names a fork with
                # nothing to read it through, and its import is refused.
                conn.execute(self.sql.DETACH_BRANCH, (thread_id,))
        if collect:
            self.collect_garbage(conn, touched)
        elif touched:
            self.bump_epochs(conn, touched)

    def delete_for_runs(self, conn: Connection, run_ids: Sequence[str]) -> None:
        if not run_ids:
            return
        runs = json.dumps([str(r) for r in run_ids])
        touched = [int(r[0]) for r in conn.execute(self.sql.SELECT_THREADS_OF_RUNS, (runs,))]
        conn.execute(self.sql.HIDE_RUNS, (_now(), runs))
        for pk in touched:
            self._keep_for_rebuild(conn, pk)
            self._record_dropped(conn, pk)
        self.collect_garbage(conn, touched)
        self._forget_collected(conn, touched)

    def _keep_for_rebuild(self, conn: Connection, pk: int) -> None:
        """Keep (hidden = 2) the hidden rows of a thread that its listed checkpoints still
        need, and release the others:

        * those its checkpoints rebuild ``DeltaChannel`` values from, so that deleting
          rows never changes the values of the checkpoints that stay;
        * those between two listed checkpoints on a parent chain (a deleted run in the
          middle of the history), so that a fork made later still reaches the older
          checkpoints its source lists, walking past the hidden ones.
        """
        hidden = {r[0] for r in conn.execute(self.sql.SELECT_HIDDEN_RIDS_OF_THREAD, (pk,))}
        if not hidden:
            return
        needed: set[int] = set()
        for found in conn.execute(self.sql.SELECT_LIVE_DELTA_ROWS, (pk,)).fetchall():
            needed |= {r.rid for r in self._delta_ancestors(conn, Row.of(found))} & hidden
        named = conn.execute(self.sql.SELECT_THREAD_ID_OF_PK, (pk,)).fetchone()
        lineage = self.lineage(conn, named[0]) if named and named[0] is not None else None
        # Walks start at the latest checkpoint of each namespace and at every listed row
        # entering hidden ones: a thread's rows form a tree (update_state or a resume at
        # an older checkpoint branches inside the thread), and a deleted run on a path
        # other than the latest one's is between listed checkpoints too.
        starts = {
            int(r[0]): r
            for query in (self.sql.SELECT_OWN_HEADS, self.sql.SELECT_LISTED_WITH_HIDDEN_PARENT)
            for r in conn.execute(query, (pk,)).fetchall()
        }
        for head in starts.values():
            passed: list[int] = []
            for found in self.chain(conn, head[0]):
                if found[1] != pk:
                    # The walk leaves the thread for what it inherits: if the thread still
                    # lists that checkpoint, the hidden rows just passed are between two
                    # listed ones too (a fork of it must walk past them to get there).
                    if lineage is not None and lineage.inherited_row_visible(
                        found[1], found[9], found[10]
                    ):
                        needed.update(passed)
                    break
                if found[0] in hidden:
                    passed.append(found[0])
                else:
                    needed.update(passed)
                    passed.clear()
        conn.execute(self.sql.KEEP_HIDDEN_ROWS, (json.dumps(sorted(needed)), pk))

    def prune(self, conn: Connection, thread_ids: Sequence[str], strategy: str) -> None:
        """LangGraph's ``prune``: ``"delete"`` deletes the threads; ``"keep_latest"`` keeps
        the latest checkpoint of each namespace, plus what reconstructing its
        ``DeltaChannel`` values reads (the ancestors back to the nearest one holding a
        snapshot of each, with their writes), as ``BaseCheckpointSaver.prune`` asks. A
        fork stops inheriting: what it keeps becomes its own rows (sharing every value)."""
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(f"unknown prune strategy {strategy!r}: use 'keep_latest' or 'delete'")
        if strategy == "delete":
            self.delete_threads(conn, thread_ids)
            return
        touched: list[int] = []
        for thread_id in thread_ids:
            lineage = self.lineage(conn, thread_id)
            if lineage is None:
                continue
            own = lineage.entries[0]
            keep: list[Row] = []
            for head in self._heads(conn, lineage):
                keep += [head, *self._delta_ancestors(conn, head)]
            keep_rids = [r.rid for r in keep if r.thread_pk == own.pk]
            if len(lineage.entries) > 1 and own.inherits:
                inherited = [r for r in keep if r.thread_pk != own.pk]
                if inherited:
                    copies = self._copy_rows(conn, lineage, inherited, own.pk)
                    conn.executemany(
                        self.sql.RELINK_PARENT, [(new, own.pk, old) for old, new in copies.items()]
                    )
                    keep_rids += copies.values()
                    # A row that was not in this thread's history (kept only for
                    # rebuilding) is copied for rebuilding too: out of sight, as it was.
                    flags = {
                        r[0]: r[1:]
                        for r in conn.execute(
                            self.sql.SELECT_HIDDEN_AMONG, (json.dumps(list(copies)),)
                        )
                    }
                    unseen: list[int] = []
                    for row in inherited:  # each head, then its ancestors, in chain order
                        if row.rid in flags and not lineage.inherited_row_visible(
                            row.thread_pk, *flags[row.rid]
                        ):
                            unseen.append(copies[row.rid])
                    conn.execute(self.sql.KEEP_ROWS_HIDDEN, (json.dumps(unseen),))
                if self.search.enabled:
                    # What it inherited is its own now (its values still hold those
                    # messages), and put() never indexed it under this thread: the
                    # collection below indexes it, and its forks, again.
                    conn.execute(self.sql.SEARCH_MARK_STALE, (json.dumps([own.pk]),))
                conn.execute(self.sql.STOP_INHERITING, (_now(), own.pk))
            conn.execute(self.sql.HIDE_OLDER_THAN_LATEST, (_now(), own.pk, json.dumps(keep_rids)))
            self._keep_for_rebuild(conn, own.pk)
            self._record_dropped(conn, own.pk)
            touched.append(own.pk)
        self.collect_garbage(conn, touched)
        self._forget_collected(conn, touched)

    def _heads(self, conn: Connection, lineage: Lineage) -> list[Row]:
        """The latest checkpoint of each namespace the thread wrote, and in the root
        namespace the one it sees (a fork that wrote nothing yet sees its fork point)."""
        heads = [Row.of(r) for r in conn.execute(self.sql.SELECT_OWN_HEADS, (lineage.pk,))]
        if not any(h.ns == "" for h in heads):
            root = self.find_row(conn, lineage, "", None)
            if root is not None:
                heads.append(root)
        return heads

    def _delta_ancestors(self, conn: Connection, head: Row) -> list[Row]:
        """Ancestors of ``head`` that reconstructing its ``DeltaChannel`` values reads.

        LangGraph records in ``counters_since_delta_snapshot`` (checkpoint metadata)
        which delta channels changed since their last snapshot; each is rebuilt from the
        writes of ancestors back to the nearest one that holds a value for it.
        """
        counters = json.loads(head.metadata).get("counters_since_delta_snapshot") or {}
        head_refs = json.loads(head.refs)
        remaining = {ch for ch in counters if not head_refs.get(ch)}
        if remaining:
            # LangGraph rebuilds only channels that have a version (one never written is
            # listed in the counters all the same).
            remaining &= set(self._versions(head))
        needed: list[Row] = []
        if not remaining or head.parent_rid is None:
            return needed
        for found in self.chain(conn, head.parent_rid):
            row = Row.of(found)
            needed.append(row)
            refs = json.loads(row.refs)
            remaining -= {ch for ch in remaining if refs.get(ch)}
            if not remaining:
                break
        return needed

    def collect_garbage(self, conn: Connection, threads: Sequence[int] | None = None) -> None:
        """Remove hidden rows, deleted threads and blobs that nothing needs any more.

        ``threads``: the pks of the threads a delete or prune just changed; only their
        families (the threads linked to them by fork parents) are swept, at a cost that
        grows with those families, not with the database. A blob that may be shared with
        another family (``owner`` NULL: stored again by another thread, copied, imported
        or older than this scheme) waits for a sweep of the whole database, which runs
        instead once the rows family sweeps deleted reach ``WHOLE_SWEEP_SHARE`` of the
        rows the last one found. ``None``: sweep the whole database now
        (``prune_sessions``, ``agentgit vacuum``).

        The message index rows of the blobs it deletes go with them; the threads that
        lost one are indexed again from what they still hold (``search.reindex_stale``).
        """
        if threads:
            self.bump_epochs(conn, threads)
        self._collect_garbage(conn, threads)
        if self.search.enabled:
            reindex_stale(conn, self)

    def bump_epochs(self, conn: Connection, pks: Iterable[int]) -> None:
        """Record that what the threads' forks see of them may have changed (rows hidden
        or collected): every process then computes their forks' ancestries afresh."""
        conn.execute(self.sql.BUMP_THREAD_EPOCHS, (json.dumps(sorted(set(pks))),))

    def _collect_garbage(self, conn: Connection, threads: Sequence[int] | None) -> None:
        if threads is not None:
            if not threads:
                return
            state = conn.execute(self.sql.SELECT_GC_STATE).fetchone()
            limit = int(state[1]) * self.WHOLE_SWEEP_SHARE if state is not None else 0
            if state is not None and int(state[0]) < limit:
                family = conn.execute(
                    self.sql.SELECT_FAMILY_THREADS, (json.dumps(sorted(set(threads))),)
                ).fetchall()
                deleted = self._collect(conn, family, whole=False)
                if int(state[0]) + deleted < limit:
                    if deleted:
                        conn.execute(self.sql.ADD_GC_DEBT, (deleted,))
                    return
        self._collect(conn, conn.execute(self.sql.SELECT_ALL_THREADS).fetchall(), whole=True)
        (rows,) = conn.execute(self.sql.COUNT_CHECKPOINT_ROWS).fetchone()
        conn.execute(self.sql.RESET_GC_STATE, (int(rows),))

    def _collect(self, conn: Connection, threads: Sequence[Sequence[Any]], *, whole: bool) -> int:
        """One sweep over ``threads`` (``SELECT_ALL_THREADS`` rows: all of them when
        ``whole``, else whole families); returns the checkpoint rows it deleted."""
        info = {int(row[0]): tuple(row[1:]) for row in threads}
        children: dict[int, list[int]] = {}
        for pk, (_tid, parent, _fork, _inherits) in info.items():
            if parent is not None:
                children.setdefault(parent, []).append(pk)

        needed_cache: dict[int, str | None] = {}

        def needed(pk: int) -> str | None:
            """Newest checkpoint id of ``pk`` that some fork still inherits."""
            if pk in needed_cache:
                return needed_cache[pk]
            needed_cache[pk] = None  # guards against a (corrupt) cycle
            best: str | None = None
            for child in children.get(pk, []):
                child_id, _parent, fork_id, inherits = info[child]
                # A live fork needs everything up to its fork point; a deleted or pruned
                # one only what its own forks still need.
                if child_id is not None and inherits:
                    contribution = fork_id
                else:
                    contribution = _min(fork_id, needed(child))
                if contribution is not None and (best is None or contribution > best):
                    best = contribution
            needed_cache[pk] = best
            return best

        # A whole sweep finds the threads with hidden rows in one scan; a family's are
        # few enough to look at each.
        hidden_threads = (
            {r[0] for r in conn.execute(self.sql.SELECT_THREADS_WITH_HIDDEN)}
            if whole
            else set(info)
        )
        deleted = 0
        emptied: list[int] = []
        changed: list[int] = []
        family = json.dumps(sorted(info))
        for pk, (thread_id, _parent, _fork, _inherits) in info.items():
            if thread_id is not None and pk not in hidden_threads:
                continue
            bound = needed(pk)
            if thread_id is None and bound is None:
                rids = [r[0] for r in conn.execute(self.sql.SELECT_RIDS_OF_THREAD, (pk,))]
                conn.execute(self.sql.KEEP_PARENT_IDS_OF_CHILDREN, (json.dumps(rids),))
                conn.execute(self.sql.DELETE_ALL_CHECKPOINTS_OF_THREAD, (pk,))
                conn.execute(self.sql.DELETE_WRITES_OF_THREAD, (pk,))
                deleted += len(rids)
                emptied.append(pk)
                changed.append(pk)
                continue
            doomed = [
                (rid, ns, cid)
                for rid, ns, cid in conn.execute(self.sql.SELECT_HIDDEN_OF_THREAD, (pk,))
                if bound is None or cid > bound
            ]
            if doomed:
                doomed_rids = json.dumps([d[0] for d in doomed])
                conn.execute(self.sql.KEEP_PARENT_IDS_OF_CHILDREN, (doomed_rids,))
                conn.execute(self.sql.DELETE_CHECKPOINT_ROWS, (doomed_rids,))
                conn.executemany(
                    self.sql.DELETE_WRITES_FOR, [(pk, ns, cid) for _, ns, cid in doomed]
                )
                deleted += len(doomed)
                changed.append(pk)
            if thread_id is None and bound is not None:
                conn.execute(self.sql.DELETE_WRITES_OF_THREAD_ABOVE, (pk, bound))
        # An emptied thread's row goes once no thread descends from it (children first):
        # until then it keeps its descendants in the family of its ancestors, whose
        # values their rows may still refer to (a family cut in two would let one half's
        # sweep take what the other half reads).
        empty = set(emptied)
        leaves: dict[int, bool] = {}

        def can_go(pk: int) -> bool:
            if pk not in leaves:
                leaves[pk] = False  # guards against a (corrupt) cycle
                leaves[pk] = all(c in empty and can_go(c) for c in children.get(pk, ()))
            return leaves[pk]

        gone = [pk for pk in emptied if can_go(pk)]
        for pk in gone:
            conn.execute(self.sql.DELETE_THREAD_ROW, (pk,))
        if changed:
            self.bump_epochs(conn, changed)
            forks = sorted({c for pk in changed for c in children.get(pk, ())})
            if forks and self.search.enabled:
                # A fork's walk up from its fork checkpoint may now end at a collected
                # row, past which it cannot tell its ancestors' index rows from other
                # lines': it is indexed again from what it holds, its fork checkpoint's
                # messages included (before, only its next step did that).
                conn.execute(self.sql.SEARCH_MARK_STALE, (json.dumps(forks),))
        if whole:
            conn.execute(self.sql.DELETE_UNREACHABLE_BLOBS)
        else:
            conn.execute(self.sql.DELETE_UNREACHABLE_FAMILY_BLOBS, (family, family, family))
        # Nothing of the family should still reach what a thread whose row went owns; if
        # anything does, it becomes shared (a whole sweep's to judge) rather than owned
        # by a thread no family names.
        for pk in gone:
            conn.execute(self.sql.SHARE_BLOBS_OF_OWNER, (pk,))
        return deleted


def _refs(row: Row, thread_id: str) -> dict[str, int]:
    """A row's channel -> blob id map."""
    try:
        refs = json.loads(row.refs)
    except ValueError:
        refs = None
    if not isinstance(refs, dict) or not all(type(v) is int for v in refs.values()):
        raise CorruptDataError(
            "the checkpoint's value references cannot be read",
            thread_id=thread_id,
            checkpoint_id=row.checkpoint_id,
        )
    return refs


def _own_lineage(thread_id: str, pk: int) -> Lineage:
    """The lineage as far as a thread's own rows are concerned: itself alone."""
    return Lineage(thread_id, (LineageEntry(pk, None, None, None, True),))


def _min(a: str | None, b: str | None) -> str | None:
    if a is None or b is None:
        return None
    return min(a, b)


def _config(thread_id: str, ns: str, checkpoint_id: str | None) -> RunnableConfig:
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": ns,
            "checkpoint_id": checkpoint_id,
        }
    }


def _metadata_json(metadata: Mapping[str, Any]) -> str:
    """Metadata as strict JSON. NaN and infinities are refused: SQLite's JSON functions
    reject the tokens Python would write for them, and one such row would break every
    filtered ``list`` over the database."""
    try:
        return json.dumps(metadata, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except TypeError as exc:
        raise TypeError(f"checkpoint metadata must be JSON-serializable: {exc}") from None
    except ValueError:
        keys = [k for k, v in metadata.items() if not _finite(v)]
        raise ValueError(
            f"checkpoint metadata {keys or ''} holds NaN or an infinite float, which JSON "
            "cannot represent; pass a finite number or a string (LangGraph copies scalar "
            "values of config['metadata'] and configurable into checkpoint metadata)"
        ) from None


def _finite(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (ValueError, TypeError):
        return False
    return True


def _validated_filter(filter: Mapping[str, Any] | None) -> dict[str, Any]:
    if not filter:
        return {}
    for key in filter:
        if not isinstance(key, str) or not METADATA_KEY_PATTERN.match(key):
            raise ValueError(
                f"invalid metadata filter key {key!r}: keys may only contain letters, "
                "digits, '_' and '-' (at most 128 characters)"
            )
    return dict(filter)


def _filtered(
    dialect: ModuleType, sql: str, params: list[Any], metadata_filter: Mapping[str, Any]
) -> tuple[str, list[Any]]:
    """Append one bound clause per scalar filter value (others are checked in Python)."""
    for key, value in metadata_filter.items():
        if isinstance(value, _SCALARS):
            clause, bound = dialect.metadata_filter(key, value)
            sql += clause
            params += bound
    return sql, params


def _matches(metadata: Mapping[str, Any], metadata_filter: Mapping[str, Any]) -> bool:
    return all(metadata.get(k) == v for k, v in metadata_filter.items())


def _apply_limit(rows: list[Any], limit: int | None) -> list[Any]:
    return rows if limit is None else rows[:limit]
