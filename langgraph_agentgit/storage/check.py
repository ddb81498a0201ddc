"""Scanning a database for damage and leftovers: ``agentgit check`` and
``SessionManager.check()``.

:func:`check` reads every table once, on one connection (run it in a read transaction for
one consistent snapshot), and decodes every stored value. It is independent of the
read path in ``checkpoints``/``blobs``: a reader stops at the first damage it meets,
this lists all of it. Each finding is a :class:`Problem` with a kind name and the ids it
is about. Two sorts:

* **damage** — something a read would fail on or get wrong: SQLite's own
  ``integrity_check`` failing, a reference to a blob, checkpoint or thread that does not
  exist, a value that cannot be decoded, a cycle of parent links, a stale count;
* **garbage** — rows nothing refers to (a blob no checkpoint or write reaches, a session's
  thread or tag whose session is gone, an empty or deleted thread nothing descends from).
  Harmless, and normal operation leaves a few (a write retried with another value keeps
  the first value's blob until the next garbage collection).

:func:`repair` (in a write transaction) removes the garbage and recomputes the counts;
it never touches what something still refers to, so damage stays for a person to judge.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import ormsgpack
from langgraph.checkpoint.serde.base import SerializerProtocol

from langgraph_agentgit.backends.sqlite import sql as schema
from langgraph_agentgit.storage.blobs import KINDS as BLOB_KINDS
from langgraph_agentgit.storage.blobs import (
    LIST_DELTA,
    PACK,
    PACKED,
    VALUE,
    _digest,
    array_items,
    packed_bounds,
    packed_payload,
    raw_payload,
)
from langgraph_agentgit.storage.checkpoints import record_problem
from langgraph_agentgit.storage.serde import StrictSerializer

#: Every kind of finding, with what it means. Kinds in :data:`GARBAGE` are not damage.
KINDS: dict[str, str] = {
    "integrity-error": "SQLite's integrity_check reports a damaged page, row or index",
    "missing-blob": "a checkpoint, write or stored value refers to a blob that does not exist",
    "undecodable-blob": "a stored value cannot be decompressed or decoded, or its layout is "
    "inconsistent (a list longer than its parts, an unknown kind)",
    "digest-mismatch": "a stored value's bytes differ from the digest they were stored under",
    "undecodable-checkpoint": "a checkpoint row's body, metadata or value references "
    "cannot be decoded",
    "missing-thread": "a checkpoint row belongs to a thread row that does not exist",
    "missing-parent": "a checkpoint's parent link names a row that does not exist",
    "missing-parent-thread": "a thread was forked from a thread row that does not exist",
    "missing-fork-point": "a live thread was forked at a checkpoint row that does not exist",
    "lineage-cycle": "threads whose fork-parent links form a cycle",
    "parent-cycle": "checkpoints whose parent links form a cycle",
    "count-mismatch": "a thread's stored checkpoint count differs from its rows",
    "missing-branch": "a session's current thread is not one of its branches",
    "orphan-blob": "a stored value no checkpoint or write refers to",
    "orphan-write": "pending writes of a thread row that does not exist",
    "orphan-thread": "a deleted or empty thread row nothing descends from",
    "orphan-session-thread": "a branch row whose session does not exist",
    "orphan-tag": "a tag whose session does not exist",
}
GARBAGE = frozenset(
    {"orphan-blob", "orphan-write", "orphan-thread", "orphan-session-thread", "orphan-tag"}
)
#: Kinds :func:`repair` fixes: the garbage, and the counts.
REPAIRABLE = GARBAGE | {"count-mismatch"}
# Checkpoints named per damaged value (the count is always given in full).
_AFFECTED_SHOWN = 20


@dataclass(frozen=True)
class Problem:
    """One finding: its kind (a key of :data:`KINDS`), one line saying what is wrong, and
    the ids it is about (JSON-ready: ``thread_id``, ``checkpoint_id``, ``rid``,
    ``blob_id``, ``session_id``, ...)."""

    kind: str
    message: str
    ids: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_damage(self) -> bool:
        return self.kind not in GARBAGE

    @property
    def repairable(self) -> bool:
        return self.kind in REPAIRABLE

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "damage": self.is_damage,
            "repairable": self.repairable,
            "message": self.message,
            "ids": dict(self.ids),
        }


@dataclass
class RepairReport:
    """What :func:`repair` did: rows removed per kind, threads recounted, and one line per
    action."""

    removed: dict[str, int] = field(default_factory=dict)
    recounted: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "removed": dict(self.removed),
            "recounted": list(self.recounted),
            "actions": list(self.actions),
            "skipped": list(self.skipped),
        }


@dataclass
class CheckReport:
    """Everything :func:`check` found, and how much it looked at.

    ``ok`` is true when there is no damage (garbage alone is reported but is not a
    failure). ``repair`` holds what a preceding :func:`repair` did, when one ran.
    """

    problems: list[Problem] = field(default_factory=list)
    scanned: dict[str, int] = field(default_factory=dict)
    repair: RepairReport | None = None

    @property
    def damage(self) -> list[Problem]:
        return [p for p in self.problems if p.is_damage]

    @property
    def garbage(self) -> list[Problem]:
        return [p for p in self.problems if not p.is_damage]

    @property
    def ok(self) -> bool:
        return not self.damage

    def kinds(self) -> dict[str, int]:
        """How many problems of each kind, in the order of :data:`KINDS`."""
        found: dict[str, int] = {}
        for problem in self.problems:
            found[problem.kind] = found.get(problem.kind, 0) + 1
        return {k: found[k] for k in KINDS if k in found}

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "damage": len(self.damage),
            "garbage": len(self.garbage),
            "kinds": self.kinds(),
            "scanned": dict(self.scanned),
            "problems": [p.to_dict() for p in self.problems],
            "repair": self.repair.to_dict() if self.repair is not None else None,
        }


# --- checking ------------------------------------------------------------------------------


def check(
    conn: sqlite3.Connection, *, serde: SerializerProtocol | None = None, decode: bool = True
) -> CheckReport:
    """Scan the database on ``conn`` and report every problem found (nothing is changed).

    ``decode`` (default) decompresses and deserializes every stored value and checkpoint
    body with ``serde`` (default :class:`StrictSerializer`), which is what finds damaged
    bytes; without it only the links between rows are checked. Tables of a schema older
    than this package's are checked as far as they exist. Memory grows with the number
    of rows (a few integers each), not with their contents.
    """
    scan = _Scan(conn, serde or StrictSerializer(), decode)
    scan.run()
    return scan.report


class _Scan:
    def __init__(self, conn: sqlite3.Connection, serde: SerializerProtocol, decode: bool) -> None:
        self.conn = conn
        self.serde = serde
        self.decode = decode
        self.report = CheckReport()
        for what in ("threads", "checkpoints", "writes", "blobs", "sessions"):
            self.report.scanned[what] = 0
        self.tables = {str(r[0]) for r in conn.execute(schema.CHECK_TABLES)}
        # pk -> (thread_id, parent_pk, fork_checkpoint_id, fork_rid, checkpoint_count)
        self.threads: dict[int, tuple[Any, ...]] = {}
        # blob id -> (kind, deps or None when unreadable)
        self.blobs: dict[int, tuple[int, list[int] | None]] = {}
        # Every checkpoint row, and rid -> parent rid (ids are looked up when needed).
        self.rids: set[int] = set()
        self.parents: dict[int, int] = {}
        self.referenced: set[int] = set()
        # Values that cannot be read: blob id -> the problem (damage at that blob).
        self.broken: dict[int, Problem] = {}
        # Values unreadable only because a part of them is damaged (not reported again).
        self.spoiled: set[int] = set()
        # Some references could not be read: no blob can be called unreferenced then.
        self.unknown_references = False

    def add(self, kind: str, message: str, **ids: Any) -> Problem:
        problem = Problem(kind, message, {k: v for k, v in ids.items() if v is not None})
        self.report.problems.append(problem)
        return problem

    def run(self) -> None:
        self._integrity()
        sections: list[tuple[str, Callable[[], None]]] = [
            ("agentgit_blobs", self._blob_links),
            ("agentgit_threads", self._threads),
            ("agentgit_checkpoints", self._checkpoints),
            ("agentgit_writes", self._writes),
            ("agentgit_blobs", self._blob_contents),
            ("agentgit_threads", self._counts),
            ("agentgit_sessions", self._sessions),
            ("agentgit_threads", self._orphan_threads),
            ("agentgit_blobs", self._orphan_blobs),
            ("agentgit_checkpoints", self._affected),
        ]
        for table, section in sections:
            if table not in self.tables:
                continue
            try:
                section()
            except sqlite3.DatabaseError as exc:
                self.add("integrity-error", f"{table} could not be read in full: {exc}")

    # --- SQLite's own check ---------------------------------------------------------------

    def _integrity(self) -> None:
        try:
            rows = [str(r[0]) for r in self.conn.execute("PRAGMA integrity_check(100)")]
        except sqlite3.DatabaseError as exc:
            rows = [str(exc)]
        if rows != ["ok"]:
            for row in rows:
                self.add("integrity-error", f"integrity_check: {row}")

    # --- blobs: their links first (everything else refers to them) ------------------------

    def _blob_links(self) -> None:
        rows = self.conn.execute(schema.CHECK_BLOB_META).fetchall()
        self.report.scanned["blobs"] = len(rows)
        for blob_id, kind, deps, _digest_value in rows:
            self.blobs[int(blob_id)] = (int(kind), _parse_deps(deps))
        for blob_id, (kind, deps) in self.blobs.items():
            if kind not in BLOB_KINDS:
                self._broken(blob_id, f"blob {blob_id} has unknown kind {kind!r}")
                continue
            if deps is None:
                self.unknown_references = True
                self._broken(blob_id, f"blob {blob_id} names its parts in unreadable JSON")
                continue
            if kind == PACK and deps:
                self._broken(blob_id, f"pack blob {blob_id} names parts")
                continue
            if kind == PACKED and (len(deps) != 1 or self.blobs.get(deps[0], (PACK,))[0] != PACK):
                self._broken(blob_id, f"packed blob {blob_id} names no pack")
                continue
            if kind not in (VALUE, PACK) and not deps:
                self._broken(blob_id, f"list blob {blob_id} names no parts")
                continue
            for dep in deps:
                if dep not in self.blobs:
                    problem = self.add(
                        "missing-blob",
                        f"blob {dep}, a part of blob {blob_id}, does not exist",
                        blob_id=dep,
                        referenced_by_blob=blob_id,
                    )
                    self.broken.setdefault(blob_id, problem)

    def unreadable(self, blob_id: int) -> bool:
        return blob_id in self.broken or blob_id in self.spoiled

    def _broken(self, blob_id: int, message: str) -> None:
        if blob_id not in self.broken:  # one problem per value: its first
            self.broken[blob_id] = self.add("undecodable-blob", message, blob_id=blob_id)

    # --- threads --------------------------------------------------------------------------

    def _threads(self) -> None:
        for pk, thread_id, parent_pk, fork_id, fork_rid, count in self.conn.execute(
            schema.CHECK_THREADS
        ):
            self.threads[int(pk)] = (thread_id, parent_pk, fork_id, fork_rid, count)
        self.report.scanned["threads"] = len(self.threads)
        for pk, (thread_id, parent_pk, _fork_id, _fork_rid, _count) in self.threads.items():
            if parent_pk is not None and parent_pk not in self.threads:
                self.add(
                    "missing-parent-thread",
                    f"thread {_name(thread_id, pk)} was forked from thread row {parent_pk}, "
                    "which does not exist",
                    thread_id=thread_id,
                    thread_pk=pk,
                    parent_pk=parent_pk,
                )
        parent_of = {pk: int(t[1]) for pk, t in self.threads.items() if t[1] is not None}
        for cycle in _cycles(parent_of):
            names = [_name(self.threads[pk][0], pk) for pk in cycle]
            self.add(
                "lineage-cycle",
                f"threads {_loop(names)} are each forked from the next",
                thread_ids=[self.threads[pk][0] for pk in cycle],
                thread_pks=cycle,
            )

    # --- checkpoint rows ------------------------------------------------------------------

    def _checkpoints(self) -> None:
        without_parent_id: set[int] = set()
        count = 0
        for row in self.conn.execute(schema.CHECK_CHECKPOINTS):
            count += 1
            rid, thread_pk, ns, checkpoint_id, parent_id, parent_rid, body, metadata, refs = row
            rid = int(rid)
            self.rids.add(rid)
            thread_id = self._thread_id(thread_pk)
            where = {"thread_id": thread_id, "checkpoint_id": checkpoint_id, "rid": rid}
            if ns:
                where["ns"] = ns
            if thread_pk not in self.threads:
                self.add(
                    "missing-thread",
                    f"checkpoint {checkpoint_id} belongs to thread row {thread_pk}, which "
                    "does not exist",
                    thread_pk=thread_pk,
                    **where,
                )
            if parent_rid is not None:
                self.parents[rid] = int(parent_rid)
                if parent_id is None:
                    without_parent_id.add(rid)
            parsed = _parse_refs(refs)
            if parsed is None:
                self.unknown_references = True
                self.add(
                    "undecodable-checkpoint",
                    f"checkpoint {checkpoint_id}: its value references are not a JSON "
                    "object of blob ids",
                    **where,
                )
            else:
                for channel, blob_id in parsed.items():
                    if not blob_id:
                        continue
                    self.referenced.add(blob_id)
                    if blob_id not in self.blobs:
                        self.add(
                            "missing-blob",
                            f"blob {blob_id}, the value of channel {channel!r} in checkpoint "
                            f"{checkpoint_id}, does not exist",
                            blob_id=blob_id,
                            channel=channel,
                            **where,
                        )
            if self.decode:
                self._decode_checkpoint(body, metadata, checkpoint_id, where)
        self.report.scanned["checkpoints"] = count
        for rid, parent_rid in self.parents.items():
            if parent_rid not in self.rids and rid in without_parent_id:
                checkpoint_id = self._checkpoint_ids([rid])[rid]
                self.add(
                    "missing-parent",
                    f"checkpoint {checkpoint_id}: its parent row {parent_rid} does not exist",
                    checkpoint_id=checkpoint_id,
                    rid=rid,
                    parent_rid=parent_rid,
                )
        for cycle in _cycles(self.parents):
            found = self._checkpoint_ids(cycle)
            ids = [found[rid] for rid in cycle]
            self.add(
                "parent-cycle",
                f"checkpoints {_loop(ids)} are each the parent of the one before",
                checkpoint_ids=ids,
                rids=cycle,
            )
        # Only a live thread that still inherits reads its fork point (a deleted one's
        # forks keep their own links, and garbage collection may remove what a deleted
        # thread was forked at once no fork reaches it).
        not_inheriting = {int(r[0]) for r in self.conn.execute(schema.CHECK_NOT_INHERITING)}
        for pk, (thread_id, _parent, _fork_id, fork_rid, _count) in self.threads.items():
            if (
                fork_rid is not None
                and fork_rid not in self.rids
                and thread_id is not None
                and pk not in not_inheriting
            ):
                self.add(
                    "missing-fork-point",
                    f"thread {_name(thread_id, pk)} was forked at checkpoint row {fork_rid}, "
                    "which does not exist",
                    thread_id=thread_id,
                    thread_pk=pk,
                    fork_rid=fork_rid,
                )

    def _checkpoint_ids(self, rids: list[int]) -> dict[int, str]:
        found: dict[int, str] = {}
        for start in range(0, len(rids), 1000):
            batch = json.dumps(rids[start : start + 1000])
            found.update(self.conn.execute(schema.CHECK_CHECKPOINT_IDS, (batch,)).fetchall())
        return found

    def _decode_checkpoint(
        self, body: bytes, metadata: str, checkpoint_id: str, where: dict[str, Any]
    ) -> None:
        try:
            problem = record_problem(self.serde.loads_typed(raw_payload(body)))
            if problem is not None:
                raise ValueError(f"the record {problem}")
        except Exception as exc:
            self.add(
                "undecodable-checkpoint",
                f"checkpoint {checkpoint_id}: its body cannot be decoded ({_why(exc)})",
                **where,
            )
        try:
            if not isinstance(json.loads(metadata), dict):
                raise ValueError("not a JSON object")
        except Exception as exc:
            self.add(
                "undecodable-checkpoint",
                f"checkpoint {checkpoint_id}: its metadata cannot be decoded ({_why(exc)})",
                **where,
            )

    def _thread_id(self, pk: Any) -> str | None:
        thread = self.threads.get(pk)
        return None if thread is None else thread[0]

    # --- writes ---------------------------------------------------------------------------

    def _writes(self) -> None:
        count = 0
        gone: dict[int, int] = {}
        for thread_pk, ns, checkpoint_id, task_id, idx, blob_id in self.conn.execute(
            schema.CHECK_WRITES
        ):
            count += 1
            self.referenced.add(int(blob_id))
            if thread_pk not in self.threads:
                gone[thread_pk] = gone.get(thread_pk, 0) + 1
            if blob_id not in self.blobs:
                self.add(
                    "missing-blob",
                    f"blob {blob_id}, written by task {task_id} at checkpoint {checkpoint_id}, "
                    "does not exist",
                    blob_id=blob_id,
                    thread_id=self._thread_id(thread_pk),
                    checkpoint_id=checkpoint_id,
                    ns=ns or None,
                    task_id=task_id,
                    idx=idx,
                )
        self.report.scanned["writes"] = count
        # Writes of a missing thread that still has checkpoint rows belong to that damage
        # (missing-thread): they are what a restored thread row needs, never garbage.
        with_rows = {int(r[0]) for r in self.conn.execute(schema.CHECK_ROWS_PER_THREAD)}
        for thread_pk, n in sorted(gone.items()):
            if thread_pk in with_rows:
                continue
            self.add(
                "orphan-write",
                f"{n} pending writes belong to thread row {thread_pk}, which does not exist",
                thread_pk=thread_pk,
                writes=n,
            )

    # --- blob contents --------------------------------------------------------------------

    def _blob_contents(self) -> None:
        if not self.decode:
            return
        decoder = _Decoder(self)
        for blob_id, kind, deps_text, data, digest in self.conn.execute(schema.CHECK_BLOB_DATA):
            blob_id = int(blob_id)
            if blob_id in self.broken:
                continue
            deps = self.blobs[blob_id][1] or []
            if any(self.unreadable(d) for d in deps):
                self.spoiled.add(blob_id)
                continue
            if digest is not None and bytes(digest) != _digest(kind, deps_text, bytes(data)):
                self.broken[blob_id] = self.add(
                    "digest-mismatch",
                    f"blob {blob_id}: its bytes are not the ones stored under its digest",
                    blob_id=blob_id,
                )
                continue
            error = decoder.check(blob_id, int(kind), deps, bytes(data))
            if error is not None:
                self._broken(blob_id, f"blob {blob_id} cannot be decoded: {error}")
        for blob_id, error in decoder.layout_errors():
            self._broken(blob_id, f"blob {blob_id}: {error}")

    # --- counts, sessions, orphans ---------------------------------------------------------

    def _counts(self) -> None:
        actual = {int(pk): int(n) for pk, n in self.conn.execute(schema.CHECK_COUNTS)}
        for pk, (thread_id, _parent, _fork_id, _fork_rid, stored) in self.threads.items():
            if stored != actual.get(pk, 0):
                self.add(
                    "count-mismatch",
                    f"thread {_name(thread_id, pk)} counts {stored} checkpoints but has "
                    f"{actual.get(pk, 0)}",
                    thread_id=thread_id,
                    thread_pk=pk,
                    stored=stored,
                    actual=actual.get(pk, 0),
                )

    def _sessions(self) -> None:
        sessions = dict(self.conn.execute(schema.CHECK_SESSIONS).fetchall())
        self.report.scanned["sessions"] = len(sessions)
        branches: dict[str, set[str]] = {}
        if "agentgit_session_threads" in self.tables:
            for thread_id, session_id in self.conn.execute(schema.CHECK_SESSION_THREADS):
                branches.setdefault(session_id, set()).add(thread_id)
                if session_id not in sessions:
                    self.add(
                        "orphan-session-thread",
                        f"branch {thread_id} belongs to session {session_id}, which does not exist",
                        thread_id=thread_id,
                        session_id=session_id,
                    )
        for session_id, current in sessions.items():
            if current not in branches.get(session_id, set()):
                self.add(
                    "missing-branch",
                    f"session {session_id}: its current thread {current} is not one of its "
                    "branches",
                    session_id=session_id,
                    thread_id=current,
                )
        if "agentgit_tags" in self.tables:
            for session_id, name in self.conn.execute(schema.CHECK_TAGS):
                if session_id not in sessions:
                    self.add(
                        "orphan-tag",
                        f"tag {name!r} belongs to session {session_id}, which does not exist",
                        session_id=session_id,
                        tag=name,
                    )

    def _orphan_threads(self) -> None:
        for pk, reason in orphan_threads(self.conn, self.threads, self.tables):
            thread_id = self.threads[pk][0]
            self.add(
                "orphan-thread",
                f"thread {_name(thread_id, pk)}: {reason}",
                thread_id=thread_id,
                thread_pk=pk,
            )

    def _orphan_blobs(self) -> None:
        if self.unknown_references:
            return  # what an unreadable list of references names could be anything
        for blob_id in sorted(_unreachable(self.blobs, self.referenced)):
            self.add(
                "orphan-blob",
                f"blob {blob_id} is not used by any checkpoint or write",
                blob_id=blob_id,
            )

    def _affected(self) -> None:
        """Name, for each damaged value, the checkpoints whose state it spoils."""
        if not self.broken:
            return
        users: dict[int, list[int]] = {}
        for blob_id, (_kind, deps) in self.blobs.items():
            for dep in deps or ():
                users.setdefault(dep, []).append(blob_id)
        # Every blob built on a damaged one, back to the damage it comes from.
        source: dict[int, set[int]] = {}
        for root in self.broken:
            stack = [root]
            while stack:
                blob_id = stack.pop()
                roots = source.setdefault(blob_id, set())
                if root in roots:
                    continue
                roots.add(root)
                stack.extend(users.get(blob_id, ()))
        hit: dict[int, list[str]] = {}
        for _rid, _thread_pk, checkpoint_id, refs in self.conn.execute(
            schema.CHECK_CHECKPOINT_REFS
        ):
            for blob_id in set((_parse_refs(refs) or {}).values()):
                for root in source.get(blob_id, ()):
                    hit.setdefault(root, []).append(checkpoint_id)
        for index, problem in enumerate(self.report.problems):
            causes = [b for b, p in self.broken.items() if p is problem]
            if not causes:
                continue
            affected = sorted({c for b in causes for c in hit.get(b, [])})
            ids = dict(problem.ids)
            ids["affected_checkpoints"] = len(affected)
            ids["checkpoint_ids"] = affected[:_AFFECTED_SHOWN]
            self.report.problems[index] = Problem(problem.kind, problem.message, ids)


class _Decoder:
    """Decodes stored values one by one, keeping what later values need: the raw payloads
    used as compression hints (a bounded number, fetched again when evicted) and the
    length of every list."""

    _KEEP_RAW = 4096

    def __init__(self, scan: _Scan) -> None:
        self.scan = scan
        self.raw: dict[int, bytes] = {}
        # Length of each blob that is a list (values, deltas and indexes); None: not a list.
        self.lengths: dict[int, int | None] = {}
        self.deltas: dict[int, tuple[int, list[int]]] = {}
        self.indexes: dict[int, tuple[list[tuple[int, int]], list[int]]] = {}

    def check(self, blob_id: int, kind: int, deps: list[int], data: bytes) -> str | None:
        try:
            if kind in (VALUE, PACK):
                value = self.scan.serde.loads_typed(self._payload(blob_id, deps, data, set()))
                self.lengths[blob_id] = len(value) if isinstance(value, list) else None
            elif kind == PACKED:
                value = self.scan.serde.loads_typed(self._payload(blob_id, deps, data, set(), kind))
                start, stop, _first, _end = packed_bounds(blob_id, data)
                if not isinstance(value, list) or len(value) != stop - start:
                    return f"its slice {start}:{stop} of pack {deps[0]} is malformed"
                self.lengths[blob_id] = len(value)
            elif kind == LIST_DELTA:
                keep, _depth = ormsgpack.unpackb(data)
                if not isinstance(keep, int) or keep < 0 or len(deps) > 2:
                    return "its list delta is malformed"
                self.deltas[blob_id] = (keep, deps)
            else:
                bounds = ormsgpack.unpackb(zlib.decompress(data))
                slices = [(int(start), int(stop)) for start, stop in bounds]
                if len(slices) != len(deps):
                    return f"its list index has {len(slices)} slices for {len(deps)} parts"
                self.indexes[blob_id] = (slices, deps)
        except Exception as exc:
            return _why(exc)
        return None

    def _hint(self, deps: list[int], seen: set[int]) -> bytes:
        return b"".join(self._raw(d, seen) for d in deps)[-32768:]

    def _payload(
        self, blob_id: int, deps: list[int], data: bytes, seen: set[int], kind: int = VALUE
    ) -> tuple[str, bytes]:
        if kind == PACKED:
            bounds = packed_bounds(blob_id, data)
            whole = self._raw(deps[0], seen | {blob_id}, packs_only=True)
            count = array_items(whole)
            if count is None or count[0] < bounds[1]:
                raise ValueError(f"its slice {bounds[0]}:{bounds[1]} is outside pack {deps[0]}")
            type_name, payload = "msgpack", packed_payload(blob_id, bounds, whole)
        else:
            type_name, payload = raw_payload(data, self._hint(deps, seen | {blob_id}))
        if len(self.raw) >= self._KEEP_RAW:
            self.raw.pop(next(iter(self.raw)))
        self.raw[blob_id] = payload
        return type_name, payload

    def _raw(self, blob_id: int, seen: set[int], packs_only: bool = False) -> bytes:
        if blob_id in self.raw:
            return self.raw[blob_id]
        if blob_id in seen:
            raise ValueError(f"its compression hints refer back to blob {blob_id}")
        row = self.scan.conn.execute(schema.CHECK_BLOB_ROW, (blob_id,)).fetchone()
        if row is None:
            raise ValueError(f"blob {blob_id}, a compression hint, does not exist")
        kind, deps, data = row
        if packs_only and kind != PACK:
            raise ValueError(f"blob {blob_id}, named as a pack, is not one")
        if kind not in (VALUE, PACK, PACKED):
            raise ValueError(f"blob {blob_id}, a compression hint, is not a value")
        return self._payload(blob_id, _parse_deps(deps) or [], bytes(data), seen, kind)[1]

    def layout_errors(self) -> Iterator[tuple[int, str]]:
        """Lists whose parts do not fit together: a delta keeping more items than its
        base has, an index slice past the end of its part, a part that is not a list."""
        for blob_id, (slices, deps) in self.indexes.items():
            length = 0
            for (start, stop), dep in zip(slices, deps, strict=True):
                size = self.lengths.get(dep)
                if self.scan.unreadable(dep):
                    self.scan.spoiled.add(blob_id)
                    break
                if size is None:
                    yield blob_id, f"its list index takes a slice of blob {dep}, not a list"
                    break
                if not 0 <= start <= stop <= size:
                    yield blob_id, f"its list index slice {start}:{stop} is outside blob {dep}"
                    break
                length += stop - start
            else:
                self.lengths[blob_id] = length
        pending = dict(self.deltas)
        while pending:
            progressed = False
            for blob_id, (keep, deps) in list(pending.items()):
                base, tail = deps[0], deps[1] if len(deps) > 1 else None
                if base in pending:
                    continue
                del pending[blob_id]
                progressed = True
                if self.scan.unreadable(base) or (tail is not None and self.scan.unreadable(tail)):
                    self.scan.spoiled.add(blob_id)
                    continue
                base_len = self.lengths.get(base)
                tail_len = self.lengths.get(tail) if tail is not None else 0
                if base_len is None:
                    yield blob_id, f"its list delta builds on blob {base}, not a list"
                elif tail_len is None:
                    yield blob_id, f"its list delta appends blob {tail}, not a list"
                elif keep > base_len:
                    yield (
                        blob_id,
                        (f"its list delta keeps {keep} items of blob {base}, which has {base_len}"),
                    )
                else:
                    self.lengths[blob_id] = keep + tail_len
            if not progressed:
                for blob_id in sorted(pending):
                    yield blob_id, "its list delta builds on itself (a cycle of bases)"
                return


# --- garbage ----------------------------------------------------------------------------


def orphan_threads(
    conn: sqlite3.Connection, threads: Mapping[int, tuple[Any, ...]], tables: set[str]
) -> list[tuple[int, str]]:
    """Thread rows nothing needs, with why: deleted threads no fork descends from (their
    remaining rows serve nobody), and threads that were never forked, hold no rows or
    writes, and belong to no session."""
    children = {int(t[1]) for t in threads.values() if t[1] is not None}
    rows = {int(pk): int(n) for pk, n in conn.execute(schema.CHECK_ROWS_PER_THREAD)}
    writes = {int(r[0]) for r in conn.execute(schema.CHECK_WRITE_THREADS)}
    in_session: set[str] = set()
    if "agentgit_session_threads" in tables:
        in_session = {str(r[0]) for r in conn.execute(schema.CHECK_SESSION_THREADS)}
    found = []
    for pk, (thread_id, parent_pk, *_rest) in sorted(threads.items()):
        if pk in children:
            continue
        if thread_id is None:
            found.append((pk, f"deleted, and no fork descends from it ({rows.get(pk, 0)} rows)"))
        elif (
            parent_pk is None
            and pk not in rows
            and pk not in writes
            and str(thread_id) not in in_session
        ):
            found.append((pk, "holds no checkpoints or writes and belongs to no session"))
    return found


def _unreachable(blobs: Mapping[int, tuple[int, list[int] | None]], roots: set[int]) -> set[int]:
    live: set[int] = set()
    stack = [b for b in roots if b in blobs]
    while stack:
        blob_id = stack.pop()
        if blob_id in live:
            continue
        live.add(blob_id)
        stack.extend(d for d in blobs[blob_id][1] or () if d in blobs and d not in live)
    return set(blobs) - live


# --- repairing ------------------------------------------------------------------------------


def repair(conn: sqlite3.Connection) -> RepairReport:
    """Remove the garbage :func:`check` reports and recompute every thread's checkpoint
    count; run it in a write transaction. Only rows nothing refers to are deleted: blob
    removal is skipped altogether when a value's list of parts is unreadable (what it
    refers to would be unknown)."""
    done = RepairReport()
    tables = {str(r[0]) for r in conn.execute(schema.CHECK_TABLES)}

    def removed(kind: str, n: int, what: str) -> None:
        if n:
            done.removed[kind] = done.removed.get(kind, 0) + n
            done.actions.append(f"removed {n} {what}")

    threads = {
        int(pk): (thread_id, parent_pk, fork_id, fork_rid, count)
        for pk, thread_id, parent_pk, fork_id, fork_rid, count in conn.execute(schema.CHECK_THREADS)
    }
    if "agentgit_sessions" in tables:
        sessions = {str(r[0]) for r in conn.execute(schema.CHECK_SESSIONS)}
        stale = [
            (t, s)
            for t, s in conn.execute(schema.CHECK_SESSION_THREADS).fetchall()
            if s not in sessions
        ]
        conn.executemany(schema.CHECK_DELETE_SESSION_THREAD, stale)
        removed("orphan-session-thread", len(stale), "branch rows of deleted sessions")
        tags = [(s, n) for s, n in conn.execute(schema.CHECK_TAGS).fetchall() if s not in sessions]
        conn.executemany(schema.CHECK_DELETE_TAG, tags)
        removed("orphan-tag", len(tags), "tags of deleted sessions")

    with_rows = {int(r[0]) for r in conn.execute(schema.CHECK_ROWS_PER_THREAD)}
    gone_writes = [
        pk
        for (pk,) in conn.execute(schema.CHECK_WRITE_THREADS).fetchall()
        if pk not in threads and pk not in with_rows
    ]
    for pk in gone_writes:
        conn.execute(schema.CHECK_DELETE_WRITES_OF_THREAD, (pk,))
    removed("orphan-write", len(gone_writes), "sets of writes of missing threads")

    orphans = orphan_threads(conn, threads, tables)
    for pk, _reason in orphans:
        rids = [r[0] for r in conn.execute(schema.SELECT_RIDS_OF_THREAD, (pk,))]
        if rids:
            # Rows elsewhere that name one of these as parent keep its id as text.
            conn.execute(schema.KEEP_PARENT_IDS_OF_CHILDREN, (json.dumps(rids),))
        conn.execute(schema.CHECK_DELETE_ROWS_OF_THREAD, (pk,))
        conn.execute(schema.CHECK_DELETE_WRITES_OF_THREAD, (pk,))
        conn.execute(schema.CHECK_DELETE_THREAD, (pk,))
        del threads[pk]
    removed("orphan-thread", len(orphans), "thread rows nothing needs")

    blobs = {
        int(i): (int(k), _parse_deps(d)) for i, k, d, _g in conn.execute(schema.CHECK_BLOB_META)
    }
    unreadable = [i for i, (_k, deps) in blobs.items() if deps is None]
    if unreadable:
        done.skipped.append(
            f"orphan blobs were not removed: blobs {unreadable[:10]} name their parts in "
            "unreadable JSON, so what they refer to is unknown"
        )
    else:
        roots: set[int] = set()
        for (refs,) in conn.execute("SELECT refs FROM agentgit_checkpoints"):
            parsed = _parse_refs(refs)
            if parsed is None:
                done.skipped.append(
                    "orphan blobs were not removed: a checkpoint's value references are "
                    "unreadable, so what it refers to is unknown"
                )
                roots = set()
                break
            roots.update(b for b in parsed.values() if b)
        else:
            roots.update(int(r[0]) for r in conn.execute("SELECT blob_id FROM agentgit_writes"))
            doomed = sorted(_unreachable(blobs, roots))
            for start in range(0, len(doomed), 1000):
                conn.execute(schema.CHECK_DELETE_BLOBS, (json.dumps(doomed[start : start + 1000]),))
            removed("orphan-blob", len(doomed), "blobs nothing refers to")

    actual = {int(pk): int(n) for pk, n in conn.execute(schema.CHECK_COUNTS)}
    for pk, (thread_id, *_rest, count) in sorted(threads.items()):
        if count != actual.get(pk, 0):
            conn.execute(schema.CHECK_RECOUNT, (pk,))
            done.recounted.append(_name(thread_id, pk))
    if done.recounted:
        done.removed["count-mismatch"] = len(done.recounted)
        done.actions.append(f"recomputed the checkpoint count of {len(done.recounted)} threads")
    return done


# --- helpers ------------------------------------------------------------------------------


def _cycles(parent: Mapping[int, int]) -> list[list[int]]:
    """The cycles of a graph in which every node has at most one parent, each once (its
    members, starting anywhere). Iterative: no recursion, however long the chains."""
    state: dict[int, int] = {}  # 1: on the walk in progress; 2: done
    cycles = []
    for start in parent:
        if start in state:
            continue
        path = []
        node: int | None = start
        while node is not None and node not in state:
            state[node] = 1
            path.append(node)
            node = parent.get(node)
        if node is not None and state[node] == 1:
            cycles.append(path[path.index(node) :])
        for member in path:
            state[member] = 2
    return cycles


def _loop(names: list[str], shown: int = 6) -> str:
    """A cycle for a message: ``a -> b -> a``, cut short when long."""
    if len(names) <= shown:
        return " -> ".join([*names, names[0]])
    return " -> ".join(names[:shown]) + f" -> … ({len(names)} in the cycle) -> {names[0]}"


def _parse_deps(text: Any) -> list[int] | None:
    if text is None:
        return []
    try:
        deps = json.loads(text)
    except (TypeError, ValueError):
        return None
    if not isinstance(deps, list) or not all(type(d) is int for d in deps):
        return None
    return deps


def _parse_refs(text: Any) -> dict[str, int] | None:
    try:
        refs = json.loads(text)
    except (TypeError, ValueError):
        return None
    if not isinstance(refs, dict) or not all(type(v) is int for v in refs.values()):
        return None
    return refs


def _name(thread_id: Any, pk: int) -> str:
    return str(thread_id) if thread_id is not None else f"(deleted, row {pk})"


def _why(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def kinds_help(kinds: Iterable[str] = KINDS) -> str:
    """One line per kind, for help texts."""
    return "\n".join(f"{k}: {KINDS[k]}" for k in kinds)
