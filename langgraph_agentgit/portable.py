"""Export sessions to a portable JSON Lines file, and import them into any agentgit database.

::

    with open("sessions.agentgit.jsonl", "w") as f:
        mgr.export_sessions(f, user_id="ada")
    with open("sessions.agentgit.jsonl") as f:
        report = other_mgr.import_sessions(f, on_conflict="new_ids")

The format is documented in ``docs/export-format.md``. An export holds, for the chosen
sessions, their branches (with the fork points), tags and tombstones of deleted branches,
and every row of the threads they need (a branch's ancestors too, deleted ones a fork
still reads from): checkpoints (hidden ones as well, with when they were hidden), pending
writes (with when they were written: a fork sees only what its source had written when
it was made) and values. Rows are exported as stored, so every thread reads back as it
did, forks, ``DeltaChannel`` state, pending interrupts and all. Values are exported once
each, as LangGraph serializer type and bytes (base64); a list stored as a delta or an
index of other lists is exported as slices of exported lists, so a long message list is
not repeated at every checkpoint.

An import reads and checks the whole file first (JSON, fields, types, every reference,
every value decoded by the saver's strict serializer: no module is imported and nothing
is called), then writes everything in one transaction: on any error nothing is written.
Keys (thread rows, checkpoint rows, values) are renumbered in the target. Values keep
their exact bytes and are stored as the store stores them (compressed against the writes
that produced them, a growing list as a delta of its parent's), each once; values stored
whole that the target already holds are shared.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import IO, Any, Literal

from langgraph.checkpoint.serde.base import SerializerProtocol

from langgraph_agentgit._version import __version__
from langgraph_agentgit.errors import (
    AgentGitError,
    CorruptDataError,
    ExportFormatError,
    ImportConflictError,
    SessionNotFoundError,
    SessionScopeError,
)
from langgraph_agentgit.sessions.store import check_user_id
from langgraph_agentgit.storage.backend import Connection
from langgraph_agentgit.storage.blobs import (
    LIST_DELTA,
    LIST_INDEX,
    MAX_DELTA_DEPTH,
    BlobStore,
    _Read,
    pack,
    raw_payload,
)
from langgraph_agentgit.storage.checkpoints import CheckpointStore
from langgraph_agentgit.storage.search import reindex_stale
from langgraph_agentgit.storage.serde import SAFE_ENCODINGS

#: The ``format`` named by the first line of every export.
FORMAT = "agentgit-export"
#: The version of the format this package writes (and the only one it reads).
FORMAT_VERSION = 1

OnConflict = Literal["error", "new_ids"]


@dataclass(frozen=True)
class ExportReport:
    """What :func:`export_sessions` wrote: records per kind and lines in all."""

    sessions: int
    branches: int
    tags: int
    threads: int
    checkpoints: int
    writes: int
    values: int
    lines: int
    undo_runs: int = 0
    undone_effects: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data (for JSON)."""
        return asdict(self)


@dataclass(frozen=True)
class ImportReport:
    """What :func:`import_sessions` stored. ``renamed_sessions`` and ``renamed_threads``
    map ids in the file to the new ids given to them (``on_conflict="new_ids"``)."""

    sessions: int
    branches: int
    tags: int
    threads: int
    checkpoints: int
    writes: int
    values: int
    session_ids: list[str] = field(default_factory=list)
    renamed_sessions: dict[str, str] = field(default_factory=dict)
    renamed_threads: dict[str, str] = field(default_factory=dict)
    undo_runs: int = 0
    undone_effects: int = 0
    renamed_undo_runs: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The report as plain data (for JSON)."""
        return asdict(self)


# --- export -------------------------------------------------------------------------------


def export_sessions(
    conn: Connection,
    store: CheckpointStore,
    write: Callable[[str], Any],
    session_ids: Sequence[str] | None,
    user_id: str | None,
    owner: str | None = None,
) -> ExportReport:
    """Write the chosen sessions with ``write`` (in the caller's read transaction).

    ``session_ids`` (each must exist: :class:`SessionNotFoundError`) or, when it is
    ``None``, every session (of ``user_id`` when given). ``owner`` (a scoped manager's
    user) sees only its own sessions: another user's is reported as missing, and
    ``user_id`` naming another user exports none (SessionManager refuses that first)."""
    sql = store.sql
    if owner is not None and user_id is None:
        user_id = owner
    if session_ids is None:
        if owner is not None and user_id != owner:
            ids: list[str] = []
        else:
            ids = [r[0] for r in conn.execute(sql.EXPORT_SELECT_SESSION_IDS, (user_id, user_id))]
    else:
        ids = list(dict.fromkeys(str(s) for s in session_ids))
    ids_json = json.dumps(ids)
    sessions = conn.execute(sql.EXPORT_SELECT_SESSIONS, (ids_json,)).fetchall()
    if owner is not None:
        sessions = [row for row in sessions if row[1] == owner]
    found = {row[0] for row in sessions}
    missing = [s for s in ids if s not in found]
    if missing:
        raise SessionNotFoundError(f"no session {missing[0]!r}: nothing was exported")
    if session_ids is not None and user_id is not None:
        sessions = [row for row in sessions if row[1] == user_id]
        ids_json = json.dumps([row[0] for row in sessions])
    branches = conn.execute(sql.EXPORT_SELECT_BRANCHES, (ids_json,)).fetchall()
    tags = conn.execute(sql.EXPORT_SELECT_TAGS, (ids_json,)).fetchall()
    deleted = conn.execute(sql.EXPORT_SELECT_DELETED_THREADS, (ids_json,)).fetchall()
    undo_runs = conn.execute(sql.EXPORT_SELECT_UNDO_RUNS, (ids_json,)).fetchall()
    undone = conn.execute(sql.EXPORT_SELECT_UNDONE_EFFECTS, (ids_json,)).fetchall()
    thread_ids = json.dumps([row[0] for row in branches])
    threads = conn.execute(sql.EXPORT_SELECT_THREADS, (thread_ids,)).fetchall()
    if owner is not None:
        _refuse_foreign_ancestors(conn, store, owner, threads, branches, deleted)
    pks = json.dumps([row[0] for row in threads])
    checkpoints = conn.execute(sql.EXPORT_SELECT_CHECKPOINTS, (pks,)).fetchall()
    writes = conn.execute(sql.EXPORT_SELECT_WRITES, (pks,)).fetchall()
    # A deleted thread whose rows all went stays only to keep the forks that outlived it
    # in one family for the garbage collector: there is nothing of it to export, unless
    # a fork inherits through it (forked at a checkpoint it inherited itself): then its
    # record is the link between the fork and the rows it reads.
    with_rows = {row[1] for row in checkpoints}
    kept = {t[0] for t in threads if t[1] is not None or t[0] in with_rows}
    parent_of = {t[0]: (t[2] if t[5] else None) for t in threads}
    for pk in list(kept):
        path: list[int] = []
        at = parent_of.get(pk)
        while at is not None and at in parent_of and at not in kept and at not in path:
            path.append(at)
            at = parent_of.get(at)
        if at in kept:
            kept.update(path)
    threads = [t for t in threads if t[0] in kept]

    exported_rows = {row[0] for row in checkpoints}
    values = _ValueExporter(store.blobs, conn)
    refs_of: dict[int, dict[str, int]] = {}
    for row in checkpoints:
        refs = json.loads(row[10])
        refs_of[row[0]] = refs
        values.want(v for v in refs.values() if v)
    values.want(row[7] for row in writes)
    value_lines = values.export()

    lines = 0
    digest = hashlib.sha256()

    def emit(record: Mapping[str, Any]) -> None:
        nonlocal lines
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        digest.update(line.encode("utf-8"))
        write(line)
        lines += 1

    emit(
        {
            "type": "header",
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "exported_at": datetime.now(timezone.utc).isoformat(),
            "agentgit_version": __version__,
        }
    )
    for record in value_lines:
        emit(record)
    exported_threads = {row[0] for row in threads}
    for pk, thread_id, parent_pk, fork_id, fork_rid, inherits, created, stopped, dropped in threads:
        emit(
            {
                "type": "thread",
                "key": pk,
                "thread_id": thread_id,
                # A pruned fork outlives the thread it was forked from once nothing needs
                # that thread's rows: it names no thread then.
                "parent": parent_pk if parent_pk in exported_threads else None,
                "fork_checkpoint_id": fork_id,
                # A pruned fork may outlive the row it was forked at (it no longer reads
                # from it), or the thread it was forked from: no row is named then.
                "fork_row": (
                    fork_rid
                    if fork_rid in exported_rows and parent_pk in exported_threads
                    else None
                ),
                "inherits": bool(inherits),
                "created_at": created,
                "stopped_at": stopped,
                # Lines it no longer lists, kept for a fork (CheckpointStore.dropped).
                "dropped": json.loads(dropped) if dropped else [],
            }
        )
    # Each exported thread's exported ancestors, as the records link them: a row's parent
    # must be in one of them. A pruned fork whose link to its source was not exported
    # keeps its first row's parent as an id (text), as a collected parent's is kept.
    linked_parent = {t[0]: (t[2] if t[2] in exported_threads else None) for t in threads}
    ancestors: dict[int, set[int]] = {}
    for pk in linked_parent:
        seen: set[int] = set()
        at = linked_parent[pk]
        while at is not None and at not in seen:
            seen.add(at)
            at = linked_parent.get(at)
        ancestors[pk] = seen
    row_of = {row[0]: (row[1], row[3]) for row in checkpoints}
    for (
        rid,
        pk,
        ns,
        cid,
        parent_cid,
        parent_rid,
        hidden,
        run_id,
        body,
        meta,
        _r,
        hidden_at,
    ) in checkpoints:
        if parent_rid in row_of:
            owner, owner_cid = row_of[parent_rid]
            if owner != pk and owner not in ancestors.get(pk, ()):
                parent_rid, parent_cid = None, parent_cid or owner_cid
        try:
            encoding, payload = raw_payload(bytes(body))
        except CorruptDataError as exc:
            raise exc.located(checkpoint_id=cid) from exc
        emit(
            {
                "type": "checkpoint",
                "key": rid,
                "thread": pk,
                "ns": ns,
                "checkpoint_id": cid,
                "parent_checkpoint_id": parent_cid,
                # A parent removed by garbage collection leaves its id as text (and its
                # row id behind): the export names no row then.
                "parent": parent_rid if parent_rid in exported_rows else None,
                "hidden": int(hidden),
                "hidden_at": hidden_at,
                "run_id": run_id,
                "body": {"encoding": encoding, "data": _b64(payload)},
                "metadata": json.loads(meta),
                "values": {ch: values.ids[b] if b else 0 for ch, b in refs_of[rid].items()},
            }
        )
    for pk, ns, cid, task_id, idx, channel, task_path, blob, written_at in writes:
        emit(
            {
                "type": "write",
                "thread": pk,
                "ns": ns,
                "checkpoint_id": cid,
                "task_id": task_id,
                "idx": idx,
                "channel": channel,
                "task_path": task_path,
                "value": values.ids[blob],
                "written_at": written_at,
            }
        )
    for sid, uid, name, created, updated, active, meta, current, ended, reason in sessions:
        emit(
            {
                "type": "session",
                "id": sid,
                "user_id": uid,
                "name": name,
                "created_at": created,
                "updated_at": updated,
                "is_active": bool(active),
                "metadata": json.loads(meta),
                "current_thread_id": current,
                "ended_at": ended,
                "end_reason": reason,
            }
        )
    for thread_id, sid, ordinal, parent_thread, fork_id, name, created in branches:
        emit(
            {
                "type": "branch",
                "thread_id": thread_id,
                "session_id": sid,
                "ordinal": ordinal,
                "parent_thread_id": parent_thread,
                "fork_checkpoint_id": fork_id,
                "name": name,
                "created_at": created,
            }
        )
    for sid, name, cid, thread_id, created in tags:
        emit(
            {
                "type": "tag",
                "session_id": sid,
                "name": name,
                "checkpoint_id": cid,
                "thread_id": thread_id,
                "created_at": created,
            }
        )
    for thread_id, sid, deleted_at in deleted:
        emit(
            {
                "type": "deleted_thread",
                "thread_id": thread_id,
                "session_id": sid,
                "deleted_at": deleted_at,
            }
        )
    for row in undo_runs:
        emit({"type": "undo_run", **dict(zip(_FIELDS["undo_run"], row, strict=True))})
    for row in undone:
        emit({"type": "undone_effect", **dict(zip(_FIELDS["undone_effect"], row, strict=True))})
    emit({"type": "end", "lines": lines + 1, "sha256": digest.hexdigest()})
    return ExportReport(
        sessions=len(sessions),
        branches=len(branches),
        tags=len(tags),
        threads=len(threads),
        checkpoints=len(checkpoints),
        writes=len(writes),
        values=len(value_lines),
        lines=lines,
        undo_runs=len(undo_runs),
        undone_effects=len(undone),
    )


def _refuse_foreign_ancestors(
    conn: Connection,
    store: CheckpointStore,
    owner: str,
    threads: Sequence[Sequence[Any]],
    branches: Sequence[Sequence[Any]],
    deleted: Sequence[Sequence[Any]],
) -> None:
    """A scoped export whose branches fork from a thread outside the user's sessions
    (another user's, or none's) would carry that whole thread, what was written there
    after the fork point included: refused, naming the thread, rather than leaked.
    Raises :class:`SessionScopeError`."""
    ours = {str(row[0]) for row in branches} | {str(row[0]) for row in deleted}
    for row in threads:
        thread_id = row[1]
        if thread_id is None or thread_id in ours:
            continue
        found = conn.execute(store.sql.SEARCH_SESSION_OF_THREAD, (thread_id,)).fetchone()
        if found is None or found[1] != owner:
            raise SessionScopeError(
                f"a session of user {owner!r} forks from thread {thread_id!r}, which is not "
                "in one of their sessions: exporting it would write that whole thread, "
                "messages after the fork point included; nothing was exported (an unscoped "
                "manager can export it)"
            )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class _ValueExporter:
    """Blob ids of the source -> value records of the export, each value once."""

    def __init__(self, blobs: BlobStore, conn: Connection) -> None:
        self.blobs = blobs
        self.conn = conn
        self.wanted: set[int] = set()
        #: source blob id -> export id
        self.ids: dict[int, int] = {}
        self._by_content: dict[tuple[str, bytes], int] = {}

    def want(self, blob_ids: Iterable[int]) -> None:
        self.wanted.update(int(b) for b in blob_ids)

    def export(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        if not self.wanted:
            return records
        kinds = dict(
            self.conn.execute(
                self.blobs.sql.EXPORT_SELECT_BLOB_KINDS, (json.dumps(sorted(self.wanted)),)
            ).fetchall()
        )
        lists = sorted(b for b in self.wanted if kinds.get(b) in (LIST_DELTA, LIST_INDEX))
        plain = sorted(b for b in self.wanted if b not in lists)
        slices = _Read(self.blobs, self.conn).resolve(lists) if lists else {}
        segments = sorted({seg for b in lists for seg, _, _ in slices[b][0]})
        self._values(sorted(set(plain) | set(segments)), records)
        for blob_id in lists:
            export_id = len(records) + 1
            records.append(
                {
                    "type": "list",
                    "id": export_id,
                    "parts": [
                        [self.ids[seg], start, stop] for seg, start, stop in slices[blob_id][0]
                    ],
                }
            )
            self.ids[blob_id] = export_id
        return records

    def _values(self, blob_ids: list[int], records: list[dict[str, Any]]) -> None:
        for start in range(0, len(blob_ids), 500):
            batch = blob_ids[start : start + 500]
            # The type name too comes from the payloads: a packed value's row holds only
            # its bounds in its pack.
            payloads = self.blobs._raw_payloads(self.conn, batch)
            for blob_id in batch:
                if blob_id not in payloads:
                    raise CorruptDataError("a stored value is not a value", blob_id=blob_id)
                payload, _level, encoding = payloads[blob_id]
                key = (encoding, payload)
                if key not in self._by_content:
                    self._by_content[key] = len(records) + 1
                    records.append(
                        {
                            "type": "value",
                            "id": len(records) + 1,
                            "encoding": encoding,
                            "data": _b64(payload),
                        }
                    )
                self.ids[blob_id] = self._by_content[key]


# --- import: reading and checking -----------------------------------------------------------


@dataclass
class _Parsed:
    values: dict[int, tuple[str, bytes, Any]] = field(default_factory=dict)
    lists: dict[int, list[tuple[int, int, int]]] = field(default_factory=dict)
    threads: dict[int, dict[str, Any]] = field(default_factory=dict)
    checkpoints: dict[int, dict[str, Any]] = field(default_factory=dict)
    writes: list[dict[str, Any]] = field(default_factory=list)
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    branches: dict[str, dict[str, Any]] = field(default_factory=dict)
    tags: list[dict[str, Any]] = field(default_factory=list)
    deleted: dict[str, dict[str, Any]] = field(default_factory=dict)
    undo_runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    undone_effects: list[dict[str, Any]] = field(default_factory=list)
    #: the line each record was read from, for errors found once every line is read
    line_of: dict[tuple[str, Any], int] = field(default_factory=dict)


class _Field:
    """Typed access to one record's fields, each failure naming the line and field."""

    def __init__(self, line: int, kind: str, record: dict[str, Any]) -> None:
        self.line = line
        self.kind = kind
        self.record = record

    def error(self, name: str, problem: str) -> ExportFormatError:
        return ExportFormatError(
            f"line {self.line} ({self.kind}), field {name!r}: {problem}",
            line=self.line,
            field=name,
        )

    def get(self, name: str, kinds: tuple[type, ...], *, optional: bool = False) -> Any:
        if name not in self.record:
            raise self.error(name, "missing")
        value = self.record[name]
        if value is None and optional:
            return None
        # bool is an int in Python, never in the format.
        if type(value) not in kinds:
            wanted = " or ".join(_TYPE_NAMES[k] for k in kinds) + (" or null" if optional else "")
            raise self.error(name, f"must be {wanted}, not {_json_type(value)}")
        return value

    def text(self, name: str, *, optional: bool = False, nonempty: bool = False) -> Any:
        value = self.get(name, (str,), optional=optional)
        if value is not None and nonempty and not value:
            raise self.error(name, "must not be empty")
        if value is not None and "\x00" in value:
            raise self.error(name, "must not hold NUL characters")
        return value

    def integer(self, name: str, *, optional: bool = False, minimum: int | None = None) -> Any:
        value = self.get(name, (int,), optional=optional)
        if value is not None and minimum is not None and value < minimum:
            raise self.error(name, f"must be at least {minimum}")
        if value is not None and abs(value) >= 2**63:
            raise self.error(name, "is out of range")
        return value

    def time(self, name: str, *, optional: bool = False) -> Any:
        value = self.text(name, optional=optional)
        if value is not None:
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                raise self.error(name, f"{value[:40]!r} is not an ISO-8601 time") from None
            if moment.tzinfo is None:
                # Every time the store writes carries its offset (UTC); one without
                # would be read back naive, and compared with aware ones as text.
                raise self.error(name, f"{value[:40]!r} has no UTC offset")
        return value

    def mapping(self, name: str) -> dict[str, Any]:
        return dict(self.get(name, (dict,)))

    def only(self, names: Iterable[str]) -> None:
        extra = set(self.record) - set(names) - {"type"}
        if extra:
            raise self.error(sorted(extra)[0], "is not a field of this record")


_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    bool: "a boolean",
    dict: "an object",
    list: "a list",
}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return _TYPE_NAMES.get(type(value), type(value).__name__).split(" ")[-1]


_FIELDS = {
    "value": ("id", "encoding", "data"),
    "list": ("id", "parts"),
    "thread": (
        "key",
        "thread_id",
        "parent",
        "fork_checkpoint_id",
        "fork_row",
        "inherits",
        "created_at",
        "stopped_at",
        "dropped",
    ),
    "checkpoint": (
        "key",
        "thread",
        "ns",
        "checkpoint_id",
        "parent_checkpoint_id",
        "parent",
        "hidden",
        "hidden_at",
        "run_id",
        "body",
        "metadata",
        "values",
    ),
    "write": (
        "thread",
        "ns",
        "checkpoint_id",
        "task_id",
        "idx",
        "channel",
        "task_path",
        "value",
        "written_at",
    ),
    "session": (
        "id",
        "user_id",
        "name",
        "created_at",
        "updated_at",
        "is_active",
        "metadata",
        "current_thread_id",
        "ended_at",
        "end_reason",
    ),
    "branch": (
        "thread_id",
        "session_id",
        "ordinal",
        "parent_thread_id",
        "fork_checkpoint_id",
        "name",
        "created_at",
    ),
    "tag": ("session_id", "name", "checkpoint_id", "thread_id", "created_at"),
    "deleted_thread": ("thread_id", "session_id", "deleted_at"),
    # The records of undone tool effects (langgraph_agentgit.effects), as stored.
    "undo_run": (
        "id",
        "session_id",
        "source_thread_id",
        "head_checkpoint_id",
        "base_checkpoint_id",
        "target_checkpoint_id",
        "branch_thread_id",
        "on_error",
        "status",
        "created_at",
        "finished_at",
    ),
    "undone_effect": (
        "session_id",
        "effect_id",
        "run_id",
        "thread_id",
        "checkpoint_id",
        "tool_call_id",
        "tool_name",
        "kind",
        "status",
        "attempts",
        "error",
        "updated_at",
    ),
}


def _lines(source: IO[Any]) -> Iterator[tuple[int, str]]:
    for number, raw in enumerate(source, 1):
        if isinstance(raw, bytes):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ExportFormatError(
                    f"line {number}: not UTF-8 text ({exc.reason} at byte {exc.start})",
                    line=number,
                ) from None
        else:
            text = raw
        yield number, text


def read_export(source: IO[Any], serde: SerializerProtocol) -> _Parsed:
    """Read and check a whole export; raise :class:`ExportFormatError` at the first
    problem (naming the line and field). Every value is decoded with ``serde``."""
    parsed = _Parsed()
    header_seen = False
    end_line: int | None = None
    number = 0
    digest = hashlib.sha256()
    for number, text in _lines(source):
        if end_line is not None:
            if text.strip():
                raise ExportFormatError(
                    f"line {number}: data after the end record of line {end_line}", line=number
                )
            continue
        if not text.endswith("\n"):
            raise ExportFormatError(
                f"line {number}: the file ends in the middle of a line (truncated?)", line=number
            )
        try:
            record = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ExportFormatError(
                f"line {number}: not a JSON object ({exc})", line=number
            ) from None
        if not isinstance(record, dict):
            raise ExportFormatError(f"line {number}: not a JSON object", line=number)
        kind = record.get("type")
        if not header_seen:
            _check_header(number, record)
            header_seen = True
            digest.update(text.encode("utf-8"))
            continue
        if kind == "end":
            f = _Field(number, "end", record)
            f.only(("lines", "sha256"))
            if f.integer("lines") != number:
                raise f.error("lines", f"says {record['lines']} lines, the file has {number}")
            # Absent from files written before it: their values are checked by decoding.
            said = f.text("sha256") if "sha256" in record else None
            if said is not None and said != digest.hexdigest():
                raise f.error(
                    "sha256",
                    "the lines before it are not the ones exported (their SHA-256 is "
                    f"{digest.hexdigest()[:16]}…, the export's {said[:16]}…): the file "
                    "was changed or damaged after it was written",
                )
            end_line = number
            continue
        digest.update(text.encode("utf-8"))
        if kind == "header":
            raise ExportFormatError(f"line {number}: a second header", line=number, field="type")
        if kind not in _FIELDS:
            raise ExportFormatError(
                f"line {number}, field 'type': unknown record type {str(kind)[:40]!r}",
                line=number,
                field="type",
            )
        f = _Field(number, str(kind), record)
        f.only(_FIELDS[str(kind)])
        _READERS[str(kind)](f, parsed, serde)
    if not header_seen:
        raise ExportFormatError("line 1: the file is empty (no header line)", line=1)
    if end_line is None:
        raise ExportFormatError(
            f"line {number + 1}: the end record is missing (the file is truncated)",
            line=number + 1,
        )
    _check_references(parsed, serde)
    return parsed


def _check_header(number: int, record: dict[str, Any]) -> None:
    f = _Field(number, "header", record)
    if record.get("type") != "header" or record.get("format") != FORMAT:
        raise ExportFormatError(
            f"line {number}: not an agentgit export (the first line must be its header, "
            f'{{"type": "header", "format": "{FORMAT}", ...}})',
            line=number,
            field="format",
        )
    version = f.integer("version")
    if version != FORMAT_VERSION:
        raise f.error(
            "version",
            f"format version {version} is not supported (this package reads version "
            f"{FORMAT_VERSION}{'; upgrade langgraph-agentgit' if version > FORMAT_VERSION else ''}"
            ")",
        )


def _decode(
    f: _Field, name: str, encoding: str, data: str, serde: SerializerProtocol
) -> tuple[bytes, Any]:
    if encoding not in SAFE_ENCODINGS:
        raise f.error(
            "encoding" if name == "data" else name,
            f"encoding {encoding[:40]!r} is not accepted (only {', '.join(sorted(SAFE_ENCODINGS))}"
            ": the others can run code)",
        )
    try:
        payload = base64.b64decode(data.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise f.error(name, "is not valid base64") from None
    try:
        value = serde.loads_typed((encoding, payload))
    except AgentGitError as exc:
        raise f.error(name, f"the value is refused ({exc})") from None
    except Exception as exc:
        raise f.error(name, f"the value cannot be decoded ({type(exc).__name__}: {exc})") from None
    return payload, value


def _unique(f: _Field, parsed: _Parsed, key: tuple[str, Any], name: str) -> None:
    if key in parsed.line_of:
        raise f.error(name, f"{key[1]!r} was already defined on line {parsed.line_of[key]}")
    parsed.line_of[key] = f.line


def _read_value(f: _Field, parsed: _Parsed, serde: SerializerProtocol) -> None:
    value_id = f.integer("id", minimum=1)
    _unique(f, parsed, ("value", value_id), "id")
    encoding = f.text("encoding")
    payload, value = _decode(f, "data", encoding, f.text("data"), serde)
    parsed.values[value_id] = (encoding, payload, value)


def _read_list(f: _Field, parsed: _Parsed, serde: SerializerProtocol) -> None:
    list_id = f.integer("id", minimum=1)
    _unique(f, parsed, ("value", list_id), "id")
    parts = f.get("parts", (list,))
    if not parts:
        raise f.error("parts", "must not be empty")
    checked: list[tuple[int, int, int]] = []
    for part in parts:
        if (
            type(part) is not list
            or len(part) != 3
            or not all(type(x) is int and 0 <= x < 2**63 for x in part)
        ):
            raise f.error("parts", "each part must be [value id, start, stop] (integers >= 0)")
        segment, start, stop = part
        if segment not in parsed.values:
            raise f.error("parts", f"value {segment} is not defined before this line")
        held = parsed.values[segment][2]
        if not isinstance(held, list):
            raise f.error("parts", f"value {segment} is not a list")
        if not start <= stop <= len(held):
            raise f.error("parts", f"[{start}, {stop}] is not a slice of value {segment}")
        checked.append((segment, start, stop))
    parsed.lists[list_id] = checked


def _read_thread(f: _Field, parsed: _Parsed, serde: SerializerProtocol) -> None:
    key = f.integer("key")
    _unique(f, parsed, ("thread", key), "key")
    thread_id = f.text("thread_id", optional=True, nonempty=True)
    if thread_id is not None:
        _unique(f, parsed, ("thread_id", thread_id), "thread_id")
    parent = f.integer("parent", optional=True)
    fork_checkpoint_id = f.text("fork_checkpoint_id", optional=True, nonempty=True)
    fork_row = f.integer("fork_row", optional=True)
    inherits = f.get("inherits", (bool,))
    if parent is not None and fork_checkpoint_id is None:
        raise f.error("fork_checkpoint_id", "a fork needs the checkpoint it was forked at")
    if parent is None and fork_checkpoint_id is not None and inherits:
        raise f.error("parent", "a fork that inherits from its parent needs it")
    if fork_row is not None and parent is None:
        raise f.error("fork_row", "a thread without a parent has no fork row")
    if fork_row is None and parent is not None and inherits and thread_id is not None:
        # (A deleted thread kept only to link its forks may have lost its fork row: its
        # forks read through their own.)
        raise f.error("fork_row", "a fork that inherits from its parent needs its fork row")
    parsed.threads[key] = {
        "line": f.line,
        "thread_id": thread_id,
        "parent": parent,
        "fork_checkpoint_id": fork_checkpoint_id,
        "fork_row": fork_row,
        "inherits": inherits,
        "created_at": f.time("created_at"),
        "stopped_at": f.time("stopped_at", optional=True),
        "dropped": _dropped(f),
    }


def _dropped(f: _Field) -> list[str]:
    """A thread's ``dropped`` checkpoint ids (absent in files written before it)."""
    if "dropped" not in f.record:
        return []
    ids = f.get("dropped", (list,))
    for checkpoint_id in ids:
        if type(checkpoint_id) is not str or not checkpoint_id or "\x00" in checkpoint_id:
            raise f.error("dropped", "must be a list of checkpoint ids (non-empty strings)")
    return sorted(set(ids))


def _read_checkpoint(f: _Field, parsed: _Parsed, serde: SerializerProtocol) -> None:
    key = f.integer("key")
    _unique(f, parsed, ("checkpoint", key), "key")
    thread = f.integer("thread")
    ns = f.text("ns")
    checkpoint_id = f.text("checkpoint_id", nonempty=True)
    _unique(f, parsed, ("checkpoint_id", (thread, ns, checkpoint_id)), "checkpoint_id")
    hidden = f.integer("hidden")
    if hidden not in (0, 1, 2):
        raise f.error("hidden", "must be 0, 1 or 2")
    body = f.mapping("body")
    bf = _Field(f.line, "checkpoint body", body)
    bf.only(("encoding", "data"))
    body_payload, body_value = _decode(f, "body", bf.text("encoding"), bf.text("data"), serde)
    if not isinstance(body_value, dict):
        raise f.error("body", "must decode to a mapping (channel_versions, versions_seen, ...)")
    metadata = f.mapping("metadata")
    try:
        metadata_json = json.dumps(
            metadata, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except ValueError:
        raise f.error("metadata", "holds NaN or an infinite number") from None
    values = f.mapping("values")
    for channel, ref in values.items():
        if type(ref) is not int or ref < 0:
            raise f.error("values", f"channel {channel[:40]!r}: must be a value id (0: empty)")
    parsed.checkpoints[key] = {
        "line": f.line,
        "thread": thread,
        "ns": ns,
        "checkpoint_id": checkpoint_id,
        "parent_checkpoint_id": f.text("parent_checkpoint_id", optional=True, nonempty=True),
        "parent": f.integer("parent", optional=True),
        "hidden": hidden,
        "hidden_at": f.time("hidden_at", optional=True),
        "run_id": f.text("run_id", optional=True),
        "body": pack(bf.record["encoding"], body_payload),
        "metadata": metadata_json,
        "values": values,
    }


def _read_write(f: _Field, parsed: _Parsed, serde: SerializerProtocol) -> None:
    record = {
        "line": f.line,
        "thread": f.integer("thread"),
        "ns": f.text("ns"),
        "checkpoint_id": f.text("checkpoint_id", nonempty=True),
        "task_id": f.text("task_id"),
        "idx": f.integer("idx"),
        "channel": f.text("channel"),
        "task_path": f.text("task_path"),
        "value": f.integer("value", minimum=1),
        "written_at": f.integer("written_at", optional=True),
    }
    _unique(
        f,
        parsed,
        ("write", tuple(record[k] for k in ("thread", "ns", "checkpoint_id", "task_id", "idx"))),
        "idx",
    )
    parsed.writes.append(record)


def _read_session(f: _Field, parsed: _Parsed, serde: SerializerProtocol) -> None:
    from langgraph_agentgit.sessions.store import sanitize_session_name

    session_id = f.text("id", nonempty=True)
    _unique(f, parsed, ("session", session_id), "id")
    name = f.text("name")
    if sanitize_session_name(name) != name:
        raise f.error(
            "name",
            "is not a session name the API would store (one line, no control characters, "
            "no surrounding whitespace, at most 200 characters)",
        )
    user_id = f.text("user_id", optional=True)
    try:
        check_user_id(user_id)
    except ValueError as exc:
        # Every other way in refuses it, and a session no user id can name is lost.
        raise f.error("user_id", str(exc).replace("a user id ", "", 1)) from None
    parsed.sessions[session_id] = {
        "line": f.line,
        "user_id": user_id,
        "name": name,
        "created_at": f.time("created_at"),
        "updated_at": f.time("updated_at"),
        "is_active": f.get("is_active", (bool,)),
        "metadata": _strict_json(f, "metadata"),
        "current_thread_id": f.text("current_thread_id", nonempty=True),
        # Absent from files written before sessions could be ended: an open session.
        "ended_at": f.time("ended_at", optional=True) if "ended_at" in f.record else None,
        "end_reason": f.text("end_reason", optional=True) if "end_reason" in f.record else None,
    }
    if parsed.sessions[session_id]["end_reason"] is not None and (
        parsed.sessions[session_id]["ended_at"] is None
    ):
        raise f.error("end_reason", "is set for a session that has not ended (ended_at null)")


def _strict_json(f: _Field, name: str) -> str:
    """An object field as strict JSON text (NaN and infinities refused)."""
    value = f.mapping(name)  # its own error (ExportFormatError is a ValueError)
    try:
        return json.dumps(value, ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise f.error(name, "holds NaN or an infinite number") from None


def _read_branch(f: _Field, parsed: _Parsed, serde: SerializerProtocol) -> None:
    thread_id = f.text("thread_id", nonempty=True)
    _unique(f, parsed, ("branch", thread_id), "thread_id")
    session_id = f.text("session_id", nonempty=True)
    ordinal = f.integer("ordinal", minimum=0)
    _unique(f, parsed, ("ordinal", (session_id, ordinal)), "ordinal")
    parent = f.text("parent_thread_id", optional=True, nonempty=True)
    fork = f.text("fork_checkpoint_id", optional=True, nonempty=True)
    if (parent is None) != (fork is None):
        raise f.error("parent_thread_id", "parent_thread_id and fork_checkpoint_id go together")
    name = f.text("name", optional=True)
    if name is not None:
        from langgraph_agentgit.sessions.store import MAX_BRANCH_NAME_LENGTH, name_problem

        problem = name_problem(name, MAX_BRANCH_NAME_LENGTH)
        if problem is not None:
            raise f.error("name", f"branch name {name[:40]!r} {problem}")
        _unique(f, parsed, ("branch_name", (session_id, name)), "name")
    parsed.branches[thread_id] = {
        "line": f.line,
        "session_id": session_id,
        "ordinal": ordinal,
        "parent_thread_id": parent,
        "fork_checkpoint_id": fork,
        "name": name,
        "created_at": f.time("created_at"),
    }


def _read_tag(f: _Field, parsed: _Parsed, serde: SerializerProtocol) -> None:
    from langgraph_agentgit.sessions.store import MAX_TAG_LENGTH, name_problem

    session_id = f.text("session_id", nonempty=True)
    name = f.text("name", nonempty=True)
    problem = name_problem(name, MAX_TAG_LENGTH)
    if problem is not None:
        raise f.error("name", f"tag name {name[:40]!r} {problem}")
    _unique(f, parsed, ("tag", (session_id, name)), "name")
    parsed.tags.append(
        {
            "line": f.line,
            "session_id": session_id,
            "name": name,
            "checkpoint_id": f.text("checkpoint_id", nonempty=True),
            "thread_id": f.text("thread_id", nonempty=True),
            "created_at": f.time("created_at"),
        }
    )


def _read_deleted(f: _Field, parsed: _Parsed, serde: SerializerProtocol) -> None:
    thread_id = f.text("thread_id", nonempty=True)
    _unique(f, parsed, ("deleted", thread_id), "thread_id")
    parsed.deleted[thread_id] = {
        "line": f.line,
        "session_id": f.text("session_id", nonempty=True),
        "deleted_at": f.time("deleted_at"),
    }


#: What the effects package writes in the status, on_error and kind columns.
_RUN_STATUSES = ("running", "done", "incomplete")
_EFFECT_STATUSES = ("pending", "running", "done", "failed")
_ON_ERROR = ("stop", "continue")
_KINDS = ("", "reversible", "compensable", "irreversible")


def _choice(f: _Field, name: str, allowed: tuple[str, ...]) -> str:
    value = f.text(name)
    if value not in allowed:
        raise f.error(name, f"{value[:40]!r} is not one of {', '.join(map(repr, allowed))}")
    return str(value)


def _read_undo_run(f: _Field, parsed: _Parsed, serde: SerializerProtocol) -> None:
    run_id = f.text("id", nonempty=True)
    _unique(f, parsed, ("undo_run", run_id), "id")
    parsed.undo_runs[run_id] = {
        "line": f.line,
        "session_id": f.text("session_id", nonempty=True),
        "source_thread_id": f.text("source_thread_id", nonempty=True),
        "head_checkpoint_id": f.text("head_checkpoint_id"),
        "base_checkpoint_id": f.text("base_checkpoint_id", optional=True),
        "target_checkpoint_id": f.text("target_checkpoint_id"),
        "branch_thread_id": f.text("branch_thread_id", nonempty=True),
        "on_error": _choice(f, "on_error", _ON_ERROR),
        "status": _choice(f, "status", _RUN_STATUSES),
        "created_at": f.time("created_at"),
        "finished_at": f.time("finished_at", optional=True),
    }


def _read_undone_effect(f: _Field, parsed: _Parsed, serde: SerializerProtocol) -> None:
    session_id = f.text("session_id", nonempty=True)
    effect_id = f.text("effect_id", nonempty=True)
    _unique(f, parsed, ("undone_effect", (session_id, effect_id)), "effect_id")
    parsed.undone_effects.append(
        {
            "line": f.line,
            "session_id": session_id,
            "effect_id": effect_id,
            "run_id": f.text("run_id", nonempty=True),
            "thread_id": f.text("thread_id", nonempty=True),
            "checkpoint_id": f.text("checkpoint_id", nonempty=True),
            "tool_call_id": f.text("tool_call_id", optional=True),
            "tool_name": f.text("tool_name"),
            "kind": _choice(f, "kind", _KINDS),
            "status": _choice(f, "status", _EFFECT_STATUSES),
            "attempts": f.integer("attempts", minimum=0),
            "error": f.text("error", optional=True),
            "updated_at": f.time("updated_at"),
        }
    )


_READERS = {
    "value": _read_value,
    "list": _read_list,
    "thread": _read_thread,
    "checkpoint": _read_checkpoint,
    "write": _read_write,
    "session": _read_session,
    "branch": _read_branch,
    "tag": _read_tag,
    "deleted_thread": _read_deleted,
    "undo_run": _read_undo_run,
    "undone_effect": _read_undone_effect,
}


def _bad(line: int, kind: str, name: str, problem: str) -> ExportFormatError:
    return ExportFormatError(
        f"line {line} ({kind}), field {name!r}: {problem}", line=line, field=name
    )


def _check_references(p: _Parsed, serde: SerializerProtocol) -> None:
    """Every reference between records points at a record of the right kind, and parent
    and fork links form trees (no cycle, a fork point in the parent's history)."""
    # Threads: parents exist, no cycle; their ancestors, nearest first.
    ancestors: dict[int, list[int]] = {}
    for key, t in p.threads.items():
        chain: list[int] = []
        seen = {key}
        parent = t["parent"]
        while parent is not None:
            if parent not in p.threads:
                raise _bad(t["line"], "thread", "parent", f"thread {parent} is not in the file")
            if parent in seen:
                raise _bad(t["line"], "thread", "parent", "parent links form a cycle")
            seen.add(parent)
            chain.append(parent)
            parent = p.threads[parent]["parent"]
        ancestors[key] = chain
    lineage = {key: set(chain) for key, chain in ancestors.items()}
    # A branch forked at a checkpoint is the thread forked there (a record saying another
    # checkpoint would show the branch forked where its thread was not).
    forks_of = {t["thread_id"]: t["fork_checkpoint_id"] for t in p.threads.values()}
    for thread_id, b in p.branches.items():
        forked = forks_of.get(thread_id)
        said = b["fork_checkpoint_id"]
        if said is not None and forked is not None and said != forked:
            raise _bad(
                b["line"],
                "branch",
                "fork_checkpoint_id",
                f"the branch's thread was forked at {forked[:40]!r}, not at {said[:40]!r}",
            )
    # A thread's dropped checkpoints are lines it no longer lists: one it lists is not.
    listed = {
        (c["thread"], c["checkpoint_id"])
        for c in p.checkpoints.values()
        if c["ns"] == "" and not c["hidden"]
    }
    for key, t in p.threads.items():
        named = next((i for i in t["dropped"] if (key, i) in listed), None)
        if named is not None:
            raise _bad(
                t["line"],
                "thread",
                "dropped",
                f"checkpoint {named[:40]!r} is one the thread lists, not one it dropped",
            )
    for c in p.checkpoints.values():
        if c["thread"] not in p.threads:
            raise _bad(
                c["line"], "checkpoint", "thread", f"thread {c['thread']} is not in the file"
            )
        for channel, ref in c["values"].items():
            if ref and ref not in p.values and ref not in p.lists:
                raise _bad(
                    c["line"],
                    "checkpoint",
                    "values",
                    f"channel {channel[:40]!r}: value {ref} is not in the file",
                )
        parent = c["parent"]
        if parent is not None:
            if parent not in p.checkpoints:
                raise _bad(
                    c["line"], "checkpoint", "parent", f"checkpoint {parent} is not in the file"
                )
            owner = p.checkpoints[parent]["thread"]
            if owner != c["thread"] and owner not in lineage[c["thread"]]:
                raise _bad(
                    c["line"], "checkpoint", "parent", "the parent is not in the thread's history"
                )
            if p.checkpoints[parent]["ns"] != c["ns"]:
                raise _bad(c["line"], "checkpoint", "parent", "the parent is in another namespace")
            if c["parent_checkpoint_id"] not in (None, p.checkpoints[parent]["checkpoint_id"]):
                raise _bad(
                    c["line"],
                    "checkpoint",
                    "parent_checkpoint_id",
                    "differs from the parent's checkpoint_id",
                )
    # Parent links between checkpoints: no cycle (each row walked once: a walk stops at
    # a row already known to lead to a root).
    rooted: set[int] = set()
    for key, c in p.checkpoints.items():
        path: list[int] = []
        on_path: set[int] = set()
        at: int | None = key
        while at is not None and at not in rooted:
            if at in on_path:
                raise _bad(c["line"], "checkpoint", "parent", "parent links form a cycle")
            path.append(at)
            on_path.add(at)
            at = p.checkpoints[at]["parent"]
        rooted.update(path)
    for key, t in p.threads.items():
        if t["fork_row"] is None:
            continue
        row = p.checkpoints.get(t["fork_row"])
        if row is None:
            raise _bad(
                t["line"], "thread", "fork_row", f"checkpoint {t['fork_row']} is not in the file"
            )
        if row["ns"] != "" or row["checkpoint_id"] != t["fork_checkpoint_id"]:
            raise _bad(
                t["line"],
                "thread",
                "fork_row",
                "is not the root checkpoint fork_checkpoint_id names",
            )
        if row["thread"] not in lineage[key]:
            raise _bad(
                t["line"], "thread", "fork_row", "is not in the history of the thread's parent"
            )
    # Checkpoint ids each thread holds (ns, id), its own and inherited.
    own: dict[int, set[tuple[str, str]]] = {key: set() for key in p.threads}
    for c in p.checkpoints.values():
        own[c["thread"]].add((c["ns"], c["checkpoint_id"]))

    def visible(thread: int) -> set[tuple[str, str]]:
        seen = set(own[thread])
        for ancestor in ancestors[thread]:
            seen |= own[ancestor]
        return seen

    for w in p.writes:
        if w["thread"] not in p.threads:
            raise _bad(w["line"], "write", "thread", f"thread {w['thread']} is not in the file")
        if w["value"] not in p.values:
            raise _bad(w["line"], "write", "value", f"value {w['value']} is not in the file")
        if (w["ns"], w["checkpoint_id"]) not in visible(w["thread"]):
            raise _bad(
                w["line"],
                "write",
                "checkpoint_id",
                f"checkpoint {w['checkpoint_id'][:40]!r} is not in the thread's history",
            )
    key_of_thread = {t["thread_id"]: key for key, t in p.threads.items() if t["thread_id"]}
    known_threads = set(key_of_thread) | set(p.branches) | set(p.deleted)
    for thread_id, b in p.branches.items():
        if b["session_id"] not in p.sessions:
            raise _bad(
                b["line"], "branch", "session_id", f"session {b['session_id']!r} is not in the file"
            )
        if thread_id in p.deleted:
            raise _bad(b["line"], "branch", "thread_id", "is also a deleted thread")
        # A fork always has checkpoints to inherit (a thread record); only a branch
        # nothing has run on yet (a new session's main) has none.
        if b["parent_thread_id"] is not None and thread_id not in key_of_thread:
            raise _bad(b["line"], "branch", "thread_id", "the branch's thread is not in the file")
        if b["parent_thread_id"] is not None and b["parent_thread_id"] not in known_threads:
            raise _bad(
                b["line"], "branch", "parent_thread_id", "names a thread that is not in the file"
            )
    for session_id, s in p.sessions.items():
        current = p.branches.get(s["current_thread_id"])
        if current is None or current["session_id"] != session_id:
            raise _bad(
                s["line"], "session", "current_thread_id", "is not one of the session's branches"
            )
    # The thread records of each session: its branches', its deleted threads', and
    # their ancestors'.
    session_keys: dict[str, set[int]] = {sid: set() for sid in p.sessions}
    for thread_id, owner in [
        *((t, b["session_id"]) for t, b in p.branches.items()),
        *((t, d["session_id"]) for t, d in p.deleted.items()),
    ]:
        found = key_of_thread.get(thread_id)
        if found is not None and owner in session_keys:
            session_keys[owner].add(found)
            session_keys[owner].update(ancestors[found])
    for t in p.tags:
        if t["session_id"] not in p.sessions:
            raise _bad(
                t["line"], "tag", "session_id", f"session {t['session_id']!r} is not in the file"
            )
        if not any(("", t["checkpoint_id"]) in own[k] for k in session_keys[t["session_id"]]):
            raise _bad(
                t["line"],
                "tag",
                "checkpoint_id",
                f"checkpoint {t['checkpoint_id'][:40]!r} is not in a thread of the session",
            )
    records: list[tuple[str, Any]] = [
        ("deleted_thread", p.deleted.values()),
        ("undo_run", p.undo_runs.values()),
        ("undone_effect", p.undone_effects),
    ]
    for kind, rows in records:
        for row in rows:
            if row["session_id"] not in p.sessions:
                raise _bad(
                    row["line"],
                    kind,
                    "session_id",
                    f"session {row['session_id']!r} is not in the file",
                )
    for e in p.undone_effects:
        run = p.undo_runs.get(e["run_id"])
        if run is None or run["session_id"] != e["session_id"]:
            raise _bad(
                e["line"],
                "undone_effect",
                "run_id",
                f"undo run {e['run_id']!r} of the session is not in the file",
            )


# --- import: writing --------------------------------------------------------------------------


def import_sessions(
    conn: Connection, store: CheckpointStore, parsed: _Parsed, on_conflict: OnConflict
) -> ImportReport:
    """Store a checked export (in the caller's write transaction)."""
    sql = store.sql
    thread_ids = sorted(
        {t["thread_id"] for t in parsed.threads.values() if t["thread_id"] is not None}
        | set(parsed.branches)
        | set(parsed.deleted)
    )
    ids_json = json.dumps(thread_ids)
    taken_threads = {
        r[0] for r in conn.execute(sql.IMPORT_TAKEN_THREAD_IDS, (ids_json, ids_json, ids_json))
    }
    taken_sessions = {
        r[0]
        for r in conn.execute(sql.IMPORT_TAKEN_SESSION_IDS, (json.dumps(sorted(parsed.sessions)),))
    }
    if (taken_threads or taken_sessions) and on_conflict == "error":
        what = (
            f"session {sorted(taken_sessions)[0]!r}"
            if taken_sessions
            else f"thread {sorted(taken_threads)[0]!r}"
        )
        if not taken_sessions:
            first = sorted(taken_threads)[0]
            if conn.execute(sql.SELECT_DELETED_THREAD, (first,)).fetchone() is not None:
                raise ImportConflictError(
                    f"thread {first!r} is the id of a deleted thread in the target (its "
                    "session or branch was deleted; the id is not reused); nothing was "
                    "imported. Pass on_conflict='new_ids' (agentgit import --new-ids) to "
                    "import under new ids"
                )
        raise ImportConflictError(
            f"{what} already exists in the target ({len(taken_sessions)} session(s) and "
            f"{len(taken_threads)} thread(s) in all); nothing was imported. Pass "
            "on_conflict='new_ids' (agentgit import --new-ids) to import them under new ids"
        )
    taken_runs = {
        r[0]
        for r in conn.execute(
            sql.IMPORT_TAKEN_UNDO_RUN_IDS, (json.dumps(sorted(parsed.undo_runs)),)
        )
    }
    if taken_runs and on_conflict == "error":
        raise ImportConflictError(
            f"undo run {sorted(taken_runs)[0]!r} already exists in the target "
            f"({len(taken_runs)} undo run(s) in all); nothing was imported. Pass "
            "on_conflict='new_ids' (agentgit import --new-ids) to import them under new ids"
        )
    new_session = {s: str(uuid.uuid4()) for s in sorted(taken_sessions)}
    new_thread = {t: str(uuid.uuid4()) for t in sorted(taken_threads)}
    new_run = {r: str(uuid.uuid4()) for r in sorted(taken_runs)}

    def sid(session_id: str) -> str:
        return new_session.get(session_id, session_id)

    def tid(thread_id: str | None) -> str | None:
        return None if thread_id is None else new_thread.get(thread_id, thread_id)

    values = _ValueImporter(store.blobs, conn, parsed)
    pk_of: dict[int, int] = {}
    for key in _parents_first(parsed.threads, "parent"):
        t = parsed.threads[key]
        (pk_of[key],) = conn.execute(
            sql.IMPORT_INSERT_THREAD,
            (
                tid(t["thread_id"]),
                None if t["parent"] is None else pk_of[t["parent"]],
                t["fork_checkpoint_id"],
                int(t["inherits"]),
                t["created_at"],
                t["stopped_at"],
                json.dumps(t["dropped"]) if t["dropped"] else None,
            ),
        ).fetchone()
    # Writes by the checkpoint they were written at, stored right after it: the values of
    # its children are compressed against them, as the store does when a graph runs.
    writes_at: dict[tuple[int, str, str], list[dict[str, Any]]] = {}
    for w in parsed.writes:
        writes_at.setdefault((w["thread"], w["ns"], w["checkpoint_id"]), []).append(w)
    write_blobs: dict[tuple[int, str, str], list[int]] = {}

    def store_writes(key: tuple[int, str, str], hints: list[int]) -> None:
        rows = writes_at.pop(key, [])
        blobs = [values.value(w["value"], hints) for w in rows]
        write_blobs[key] = blobs
        conn.executemany(
            sql.COPY_INSERT_WRITES,
            [
                (
                    pk_of[w["thread"]],
                    w["ns"],
                    w["checkpoint_id"],
                    w["task_id"],
                    w["idx"],
                    w["channel"],
                    w["task_path"],
                    blob,
                    w["written_at"],
                )
                for w, blob in zip(rows, blobs, strict=True)
            ],
        )

    rid_of: dict[int, int] = {}
    refs_of: dict[int, dict[str, int]] = {}
    for key in _parents_first(parsed.checkpoints, "parent"):
        c = parsed.checkpoints[key]
        parent = parsed.checkpoints.get(c["parent"]) if c["parent"] is not None else None
        parent_key = (parent["thread"], parent["ns"], parent["checkpoint_id"]) if parent else None
        hints = write_blobs.get(parent_key, []) if parent_key else []
        refs: dict[str, int] = {}
        for channel, ref in c["values"].items():
            previous = parent["values"].get(channel) if parent else None
            base = refs_of[c["parent"]].get(channel) if parent else None
            refs[channel] = values.channel_value(ref, previous, base, hints) if ref else 0
        refs_of[key] = refs
        (rid_of[key],) = conn.execute(
            sql.IMPORT_INSERT_CHECKPOINT,
            (
                pk_of[c["thread"]],
                c["ns"],
                c["checkpoint_id"],
                # Stored as text only when the parent row is gone (see the format).
                c["parent_checkpoint_id"] if c["parent"] is None else None,
                None if c["parent"] is None else rid_of[c["parent"]],
                c["hidden"],
                c["run_id"],
                c["body"],
                c["metadata"],
                json.dumps(refs, separators=(",", ":")),
                c["hidden_at"],
            ),
        ).fetchone()
        store_writes((c["thread"], c["ns"], c["checkpoint_id"]), [b for b in refs.values() if b])
    for at in list(writes_at):  # writes at checkpoints of no record (inherited, or early)
        store_writes(at, [])
    conn.executemany(
        sql.IMPORT_SET_FORK_RID,
        [
            (rid_of[t["fork_row"]], pk_of[k])
            for k, t in parsed.threads.items()
            if t["fork_row"] is not None
        ],
    )
    conn.executemany(
        sql.COPY_INSERT_SESSIONS,
        [
            (
                sid(session_id),
                s["user_id"],
                s["name"],
                s["created_at"],
                s["updated_at"],
                int(s["is_active"]),
                s["metadata"],
                tid(s["current_thread_id"]),
                s["ended_at"],
                s["end_reason"],
            )
            for session_id, s in parsed.sessions.items()
        ],
    )
    conn.executemany(
        sql.COPY_INSERT_SESSION_THREADS,
        [
            (
                tid(thread_id),
                sid(b["session_id"]),
                b["ordinal"],
                tid(b["parent_thread_id"]),
                b["fork_checkpoint_id"],
                b["name"],
                b["created_at"],
            )
            for thread_id, b in parsed.branches.items()
        ],
    )
    conn.executemany(
        sql.COPY_INSERT_TAGS,
        [
            (
                sid(t["session_id"]),
                t["name"],
                t["checkpoint_id"],
                tid(t["thread_id"]),
                t["created_at"],
            )
            for t in parsed.tags
        ],
    )
    conn.executemany(
        sql.COPY_INSERT_DELETED_THREADS,
        [
            (tid(thread_id), sid(d["session_id"]), d["deleted_at"])
            for thread_id, d in parsed.deleted.items()
        ],
    )
    conn.executemany(
        sql.COPY_INSERT_UNDO_RUNS,
        [
            (
                new_run.get(run_id, run_id),
                sid(r["session_id"]),
                tid(r["source_thread_id"]),
                r["head_checkpoint_id"],
                r["base_checkpoint_id"],
                r["target_checkpoint_id"],
                tid(r["branch_thread_id"]),
                r["on_error"],
                r["status"],
                r["created_at"],
                r["finished_at"],
            )
            for run_id, r in parsed.undo_runs.items()
        ],
    )
    conn.executemany(
        sql.COPY_INSERT_UNDONE_EFFECTS,
        [
            (
                sid(e["session_id"]),
                e["effect_id"],
                new_run.get(e["run_id"], e["run_id"]),
                tid(e["thread_id"]),
                e["checkpoint_id"],
                e["tool_call_id"],
                e["tool_name"],
                e["kind"],
                e["status"],
                e["attempts"],
                e["error"],
                e["updated_at"],
            )
            for e in parsed.undone_effects
        ],
    )
    # Rows were inserted as stored, not through put(): the imported threads are indexed
    # here, from what they hold, at the cost of the import alone (marking the whole index
    # for a rebuild made the next search or usage read decode every thread stored).
    if store.search.enabled:
        conn.execute(sql.SEARCH_MARK_STALE, (json.dumps(sorted(pk_of.values())),))
        reindex_stale(conn, store)
    return ImportReport(
        sessions=len(parsed.sessions),
        branches=len(parsed.branches),
        tags=len(parsed.tags),
        threads=len(parsed.threads),
        checkpoints=len(parsed.checkpoints),
        writes=len(parsed.writes),
        values=values.stored,
        session_ids=[sid(s) for s in parsed.sessions],
        renamed_sessions=new_session,
        renamed_threads=new_thread,
        undo_runs=len(parsed.undo_runs),
        undone_effects=len(parsed.undone_effects),
        renamed_undo_runs=new_run,
    )


class _ValueImporter:
    """Stores the values of a checked export as the store would have: each value once,
    with its exact bytes, compressed against the values it was made from (``hints``); a
    list that appends one value to its parent checkpoint's list as a delta of that list."""

    def __init__(self, blobs: BlobStore, conn: Connection, parsed: _Parsed) -> None:
        self.blobs = blobs
        self.conn = conn
        self.parsed = parsed
        #: export value or list id -> blob id
        self.blob_of: dict[int, int] = {}
        #: list blob id -> its delta depth (blobs made here; others are 0)
        self.depth: dict[int, int] = {}
        self.stored = 0

    def value(self, value_id: int, hints: Sequence[int]) -> int:
        found = self.blob_of.get(value_id)
        if found is None:
            encoding, payload, _ = self.parsed.values[value_id]
            found = self.blobs.put_serialized(self.conn, encoding, payload, hints)
            self.blob_of[value_id] = found
            self.stored += 1
        return found

    def channel_value(
        self, ref: int, previous: int | None, base: int | None, hints: Sequence[int]
    ) -> int:
        """The blob of a checkpoint's channel value ``ref``; ``previous`` is the parent
        checkpoint's value of the channel and ``base`` its blob."""
        if ref in self.parsed.values:
            return self.value(ref, hints)
        found = self.blob_of.get(ref)
        if found is not None:
            return found
        parts = self.parsed.lists[ref]
        segments = [self.value(seg, hints) for seg, _, _ in parts]
        blob = None
        if previous and base:
            blob = self._delta(parts, segments, self._parts(previous), base)
        if blob is None:
            seg, start, stop = parts[0]
            if len(parts) == 1 and start == 0 and stop == len(self.parsed.values[seg][2]):
                blob = segments[0]
            else:
                blob = self.blobs.put_index(
                    self.conn,
                    [(b, start, stop) for b, (_, start, stop) in zip(segments, parts, strict=True)],
                )
        self.blob_of[ref] = blob
        self.stored += 1
        return blob

    def _parts(self, value_id: int) -> list[tuple[int, int, int]] | None:
        """The slices a list value is made of (a plain list value is one slice)."""
        if value_id in self.parsed.lists:
            return self.parsed.lists[value_id]
        held = self.parsed.values[value_id][2]
        return [(value_id, 0, len(held))] if isinstance(held, list) else None

    def _delta(
        self,
        parts: list[tuple[int, int, int]],
        segments: list[int],
        previous: list[tuple[int, int, int]] | None,
        base: int,
    ) -> int | None:
        """A delta of the parent's list (``previous``, stored as ``base``) when this list
        is that list plus one whole value (what a step appended), within the depth bound."""
        tail_id, start, stop = parts[-1]
        if previous is None or start != 0 or stop != len(self.parsed.values[tail_id][2]):
            return None
        if stop == 0 or _normalized(parts[:-1]) != _normalized(previous):
            return None
        depth = self.depth.get(base, 0) + 1
        if depth > MAX_DELTA_DEPTH:
            return None
        keep = sum(b - a for _, a, b in parts[:-1])
        blob = self.blobs.put_list_delta(self.conn, base, keep, segments[-1], depth)
        self.depth[blob] = depth
        return blob


def _normalized(parts: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    """Slices without empty ones (a list's parts compared with another's)."""
    return [p for p in parts if p[2] > p[1]]


def _parents_first(records: Mapping[int, Mapping[str, Any]], link: str) -> list[int]:
    """Keys ordered so that each comes after the one its ``link`` names (checked acyclic)."""
    order: list[int] = []
    placed: set[int] = set()
    for key in sorted(records):
        path = []
        at: int | None = key
        while at is not None and at not in placed:
            path.append(at)
            at = records[at][link]
        for k in reversed(path):
            placed.add(k)
            order.append(k)
    return order


def writer(fileobj: IO[Any]) -> Callable[[str], Any]:
    """A function writing text to a text or binary file object (UTF-8)."""
    binary = isinstance(fileobj, (io.RawIOBase, io.BufferedIOBase)) or "b" in str(
        getattr(fileobj, "mode", "")
    )
    if binary:
        return lambda text: fileobj.write(text.encode("utf-8"))
    return fileobj.write
