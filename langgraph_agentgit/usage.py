"""Where the bytes go: ``SessionManager.storage()`` and ``agentgit du``.

Bytes are counted as stored: a checkpoint row's body, metadata and value references, and
each stored value (blob) once, whatever number of checkpoints, writes, branches or sessions
refer to it. A value is *reached* by a thread through its checkpoints' channels and its
pending writes, and through what those values are built from (a list delta's base and
tail, an index's slices, the values a value is compressed against). Each value is then
counted once:

* as a session's own when only that session's threads reach it, and as a branch's own
  when only that branch's thread does;
* as *shared* (in the report's ``shared_value_bytes``, and in each session's
  ``shared_value_bytes``, which then add up to more than the total) when threads of
  several sessions reach it;
* as *unattributed* when no session reaches it (plain threads, or garbage not collected
  yet).

So ``sum(s.own_value_bytes) + shared_value_bytes + unattributed_value_bytes ==
value_bytes``. A session's threads are its branches and the threads they were forked from
(a deleted branch a fork still reads from included). Per channel, a value reached under
several channels counts in each. ``database_bytes`` is what the database takes: SQLite's
pages (the file's size, once its write-ahead log is checkpointed), or PostgreSQL's
``pg_total_relation_size`` of the agentgit tables; what it holds beyond rows and values is
indexes, page slack and free pages (``VACUUM`` returns those of a SQLite file).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from langgraph_agentgit.errors import SessionNotFoundError
from langgraph_agentgit.storage.backend import Connection
from langgraph_agentgit.storage.checkpoints import CheckpointStore


@dataclass(frozen=True)
class BranchUsage:
    """One branch: its own checkpoint rows and the values only its thread reaches."""

    thread_id: str
    checkpoints: int
    row_bytes: int
    own_value_bytes: int


@dataclass(frozen=True)
class SessionUsage:
    """One session: rows of its threads, values only it reaches (``own_value_bytes``)
    and values it shares with other sessions, per branch and per channel."""

    session_id: str
    name: str
    checkpoints: int
    row_bytes: int
    own_value_bytes: int
    shared_value_bytes: int
    branches: list[BranchUsage] = field(default_factory=list)
    #: channel -> bytes of the values reached under it (a value once per channel)
    channels: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class StorageReport:
    """Bytes of a whole database and of its sessions (see the module docstring)."""

    database_bytes: int
    row_bytes: int
    value_bytes: int
    values: int
    shared_value_bytes: int
    unattributed_value_bytes: int
    sessions: list[SessionUsage] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data (for JSON)."""
        return asdict(self)


def storage(conn: Connection, store: CheckpointStore, session_id: str | None) -> StorageReport:
    """The report, read in the caller's read transaction (``session_id``: list only
    that session; the totals are the whole database's)."""
    sql = store.sql
    blobs = {
        int(i): (_deps(deps), int(size or 0)) for i, deps, size in conn.execute(sql.USAGE_BLOBS)
    }
    threads = {int(pk): (tid, parent) for pk, tid, parent in conn.execute(sql.USAGE_THREADS)}
    pk_of = {tid: pk for pk, (tid, _) in threads.items() if tid is not None}
    sessions = [(str(i), str(n)) for i, n in conn.execute(sql.USAGE_SESSIONS)]
    if session_id is not None and session_id not in {s for s, _ in sessions}:
        raise SessionNotFoundError(f"no session {session_id!r}")
    branches: dict[str, list[str]] = {}
    for thread_id, sid in conn.execute(sql.USAGE_BRANCHES):
        branches.setdefault(str(sid), []).append(str(thread_id))
    # Which sessions each thread row serves: its branches and their ancestors.
    served: dict[int, set[str]] = {}
    for sid, thread_ids in branches.items():
        for thread_id in thread_ids:
            pk: int | None = pk_of.get(thread_id)
            seen: set[int] = set()
            while pk is not None and pk in threads and pk not in seen:
                seen.add(pk)
                served.setdefault(pk, set()).add(sid)
                pk = threads[pk][1]

    closure_cache: dict[int, frozenset[int]] = {}

    def closure(blob: int) -> frozenset[int]:
        found = closure_cache.get(blob)
        if found is None:
            closure_cache[blob] = frozenset((blob,))  # a (corrupt) loop ends here
            parts = {blob}
            for dep in blobs.get(blob, ((), 0))[0]:
                parts |= closure(dep)
            found = closure_cache[blob] = frozenset(parts)
        return found

    rows: dict[int, tuple[int, int]] = {}
    # blob -> the thread rows that reach it; (pk, channel) -> blobs reached
    reached_by: dict[int, set[int]] = {}
    by_channel: dict[tuple[int, str], set[int]] = {}

    def reach(pk: int, channel: str, blob: int) -> None:
        if not blob:
            return
        for part in closure(blob):
            reached_by.setdefault(part, set()).add(pk)
        by_channel.setdefault((pk, channel), set()).update(closure(blob))

    for pk, size, refs in conn.execute(sql.USAGE_CHECKPOINTS):
        count, total = rows.get(pk, (0, 0))
        rows[pk] = (count + 1, total + int(size or 0))
        for channel, blob in _refs(refs).items():
            reach(int(pk), channel, blob)
    for pk, channel, blob in conn.execute(sql.USAGE_WRITES):
        reach(int(pk), str(channel), int(blob))

    owner = {b: {s for pk in reached_by.get(b, ()) for s in served.get(pk, ())} for b in blobs}
    shared = sum(blobs[b][1] for b, s in owner.items() if len(s) > 1)
    unattributed = sum(blobs[b][1] for b, s in owner.items() if not s)
    own_of: dict[str, int] = {}
    shared_of: dict[str, int] = {}
    for b, owners in owner.items():
        tally = own_of if len(owners) == 1 else shared_of
        for sid in owners:
            tally[sid] = tally.get(sid, 0) + blobs[b][1]
    only_thread: dict[int, int] = {}
    for b, pks in reached_by.items():
        if len(pks) == 1 and b in blobs:
            (pk,) = pks
            only_thread[pk] = only_thread.get(pk, 0) + blobs[b][1]
    channels_of: dict[str, dict[str, set[int]]] = {}
    for (pk, channel), reached in by_channel.items():
        for sid in served.get(pk, ()):
            channels_of.setdefault(sid, {}).setdefault(channel, set()).update(reached)
    report_sessions = []
    for sid, name in sessions:
        if session_id is not None and sid != session_id:
            continue
        own_rows = [pk for pk, s in served.items() if s == {sid}]
        branch_usage = []
        for thread_id in branches.get(sid, []):
            pk_or_none = pk_of.get(thread_id)
            count, total = rows.get(pk_or_none, (0, 0)) if pk_or_none is not None else (0, 0)
            only = only_thread.get(pk_or_none, 0) if pk_or_none is not None else 0
            branch_usage.append(BranchUsage(thread_id, count, total, only))
        report_sessions.append(
            SessionUsage(
                session_id=sid,
                name=name,
                checkpoints=sum(rows.get(pk, (0, 0))[0] for pk in own_rows),
                row_bytes=sum(rows.get(pk, (0, 0))[1] for pk in own_rows),
                own_value_bytes=own_of.get(sid, 0),
                shared_value_bytes=shared_of.get(sid, 0),
                branches=branch_usage,
                channels={
                    ch: sum(blobs[b][1] for b in reached if b in blobs)
                    for ch, reached in sorted(channels_of.get(sid, {}).items())
                },
            )
        )
    return StorageReport(
        database_bytes=int(conn.execute(sql.DATABASE_BYTES).fetchone()[0] or 0),
        row_bytes=sum(total for _, total in rows.values()),
        value_bytes=sum(size for _, size in blobs.values()),
        values=len(blobs),
        shared_value_bytes=shared,
        unattributed_value_bytes=unattributed,
        sessions=report_sessions,
    )


def _deps(text: str | None) -> tuple[int, ...]:
    if not text:
        return ()
    try:
        found = json.loads(text)
    except ValueError:
        return ()
    return tuple(int(d) for d in found if type(d) is int) if isinstance(found, list) else ()


def _refs(text: str) -> dict[str, int]:
    try:
        found = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(found, dict):
        return {}
    return {str(k): int(v) for k, v in found.items() if type(v) is int}
