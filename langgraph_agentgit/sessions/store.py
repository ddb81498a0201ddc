"""Session operations, each a function of an open ``sqlite3`` connection.

Every function here runs inside one transaction opened by a saver runner
(``saver._read`` / ``_write`` / ``_aread`` / ``_awrite``), so the sync and async session
managers share one implementation and every operation is atomic: a failure raises before
the transaction commits and leaves the database exactly as it was.

Branch threads are forked with the checkpoint store's copy-on-write
:meth:`~langgraph_agentgit.storage.checkpoints.CheckpointStore.fork_thread` in the same
transaction as the session's own rows, so a rollback writes one thread row and one
session-thread row whatever the length of the history.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from langchain_core.messages import BaseMessage
from langgraph.checkpoint.base import CheckpointTuple

from langgraph_agentgit.errors import (
    AmbiguousSessionError,
    BranchExistsError,
    BranchNotFoundError,
    CheckpointNotFoundError,
    CorruptDataError,
    InvalidBranchNameError,
    InvalidSessionNameError,
    InvalidTagError,
    LastBranchError,
    SessionLimitError,
    SessionNotFoundError,
    SessionScopeError,
    TagExistsError,
    TagNotFoundError,
    ThreadExistsError,
    ThreadNotFoundError,
    TurnNotFoundError,
)
from langgraph_agentgit.sessions.models import (
    Branch,
    BranchHistory,
    CheckpointSummary,
    ExternalSession,
    SearchHit,
    TokenUsage,
    Turn,
    Usage,
)
from langgraph_agentgit.storage import search as search_index
from langgraph_agentgit.storage.backend import Connection
from langgraph_agentgit.storage.checkpoints import CheckpointStore, Lineage, Row, decode_record
from langgraph_agentgit.views.text import message_preview as preview_line

# LangGraph checkpoint ids are UUIDs (uuid6). Tag names may not look like one, so a
# string argument is never ambiguous between a tag and a checkpoint id.
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# What an id or an abbreviation of one can look like (checkpoint ids and the UUID thread
# ids the manager makes): a tag or branch name like this could hijack an id prefix typed
# where a tag or branch name is also accepted (`agentgit rollback S 1f1ec2a2`).
_ID_LIKE = re.compile(r"^[0-9a-fA-F-]+$")
# A name or id is shown in terminals, tables and trees, on one line: C0 and C1 controls,
# DEL, line and paragraph separators, the bidirectional overrides and isolates, which can
# make it read as something else ("Trojan Source", CVE-2021-42574), and zero-width
# characters, which make two different names look the same.
_CONTROL = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060\u2066-\u2069\ufeff]"
)
MAX_TAG_LENGTH = 200
MAX_BRANCH_NAME_LENGTH = 200
#: The name of a session's first thread unless it was given another one.
MAIN_BRANCH = "main"
PREVIEW_LENGTH = 60
# The channel LangGraph writes a pending interrupt() to (its INTERRUPT constant).
_INTERRUPT = "__interrupt__"


@dataclass(frozen=True)
class CheckpointRef:
    """A checkpoint as the caller named it, before it is looked up.

    ``text`` is a string argument (a tag name or a checkpoint id). Otherwise
    ``checkpoint_id`` and/or ``thread_id`` come from a config; a thread without a
    checkpoint id means that thread's head.
    """

    text: str | None = None
    checkpoint_id: str | None = None
    thread_id: str | None = None
    ns: str = ""


def as_ref(value: Any) -> CheckpointRef:
    """Normalize what the public API accepts for a checkpoint: a checkpoint id or tag name
    (str), a config (``{"configurable": {...}}``), or anything with a ``.config`` such as
    a LangGraph ``StateSnapshot``, a ``CheckpointTuple`` or a :class:`Branch` (its head)."""
    if isinstance(value, str):
        if not value:
            raise ValueError("an empty string names no checkpoint")
        return CheckpointRef(text=value)
    config = value if isinstance(value, Mapping) else getattr(value, "config", None)
    if not isinstance(config, Mapping):
        raise TypeError(
            "expected a checkpoint id, a tag name, a config, a StateSnapshot or a Branch; "
            f"got {type(value).__name__}"
        )
    configurable = config.get("configurable") or {}
    checkpoint_id = configurable.get("checkpoint_id") or None
    thread_id = configurable.get("thread_id")
    if checkpoint_id is None and thread_id in (None, ""):
        raise ValueError('config names no checkpoint: give it a "checkpoint_id" or "thread_id"')
    return CheckpointRef(
        checkpoint_id=str(checkpoint_id) if checkpoint_id is not None else None,
        thread_id=str(thread_id) if thread_id not in (None, "") else None,
        ns=configurable.get("checkpoint_ns") or "",
    )


def looks_like_checkpoint_id(text: str) -> bool:
    return bool(_UUID.match(text))


def name_problem(name: object, max_length: int) -> str | None:
    """Why ``name`` cannot be a tag or branch name, or ``None`` if it can.

    Names are shown on one line and typed where ids are also accepted, so a name must be
    a non-empty string without control characters or surrounding whitespace, at most
    ``max_length`` characters, and not made of hex digits and ``-`` alone (it could be
    read as an id or a prefix of one: ``1f1ec2a2``, ``cafe``).
    """
    if not isinstance(name, str):
        return f"must be a string, not {type(name).__name__}"
    if not name.strip():
        return "must not be empty"
    if len(name) > max_length:
        return f"must be at most {max_length} characters"
    if _CONTROL.search(name):
        return (
            "must not contain control characters (newlines, tabs, escapes) or "
            "bidirectional overrides"
        )
    if name != name.strip():
        return "must not start or end with whitespace"
    if _ID_LIKE.match(name):
        return (
            "could be read as an id or a prefix of one (only hex digits and '-'); "
            "add another character"
        )
    return None


def now() -> str:
    """UTC now in the one text format every session timestamp uses (sorts as text)."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


# --- reading sessions and branches ------------------------------------------------------


def _branch(row: Sequence[Any], index: int) -> Branch:
    thread_id, session_id, parent, fork_id, name, created_at, count = row
    if not name:
        # Stored without a name (databases written before every branch got one): the
        # name every listing has shown for it.
        name = MAIN_BRANCH if fork_id is None else f"branch-{index}"
    return Branch(thread_id, session_id, parent, fork_id, name, _dt(created_at), int(count))


def _session(row: Sequence[Any], branches: Sequence[Branch]) -> ExternalSession:
    session_id, user_id, name, created_at, updated_at, active, metadata, current = row[:8]
    ended_at, end_reason = row[8], row[9]
    return ExternalSession(
        id=session_id,
        user_id=user_id,
        name=name,
        created_at=_dt(created_at),
        updated_at=_dt(updated_at),
        is_active=bool(active),
        metadata=json.loads(metadata),
        internal_session_ids=tuple(b.thread_id for b in branches),
        current_thread_id=current,
        branch_count=sum(1 for b in branches if b.is_branch),
        total_checkpoints=sum(b.checkpoint_count for b in branches),
        ended_at=_dt(ended_at) if ended_at is not None else None,
        end_reason=end_reason,
    )


def _require_text(value: object, what: str) -> None:
    """Refuse a non-string id: PostgreSQL would refuse to compare it with text
    (UndefinedFunction), SQLite would look it up as something else; both say less than
    this."""
    if not isinstance(value, str):
        raise TypeError(f"a {what} must be a string, not {type(value).__name__}")


def _session_row(conn: Connection, store: CheckpointStore, session_id: str) -> Sequence[Any]:
    _require_text(session_id, "session id")
    row = conn.execute(store.sql.SELECT_SESSION, (session_id,)).fetchone()
    if row is None:
        raise SessionNotFoundError(f"session {session_id!r} does not exist")
    return row


def branches(conn: Connection, store: CheckpointStore, session_id: str) -> list[Branch]:
    _session_row(conn, store, session_id)
    return _branches(conn, store, session_id)


def _branches(conn: Connection, store: CheckpointStore, session_id: str) -> list[Branch]:
    rows = conn.execute(store.sql.SELECT_BRANCHES, (session_id,))
    return [_branch(row, index) for index, row in enumerate(rows)]


def get_session(
    conn: Connection, store: CheckpointStore, session_id: str
) -> ExternalSession | None:
    _require_text(session_id, "session id")
    row = conn.execute(store.sql.SELECT_SESSION, (session_id,)).fetchone()
    if row is None:
        return None
    return _session(row, _branches(conn, store, session_id))


def require_session(conn: Connection, store: CheckpointStore, session_id: str) -> ExternalSession:
    return _session(_session_row(conn, store, session_id), _branches(conn, store, session_id))


def check_page(limit: object, offset: object) -> tuple[int | None, int]:
    """``(limit, offset)`` of a listing, checked: ``limit`` ``None`` (all) or an integer
    >= 0, ``offset`` an integer >= 0, each below 2**63, which both engines' integers
    hold (``bool`` is not taken for either).

    Raises ``ValueError`` naming the bad argument."""
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit < 2**63
    ):
        raise ValueError(f"limit must be None or an integer from 0 to 2**63 - 1, not {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset < 2**63:
        raise ValueError(f"offset must be an integer from 0 to 2**63 - 1, not {offset!r}")
    return limit, offset


def list_sessions(
    conn: Connection,
    store: CheckpointStore,
    user_id: str | None,
    active_only: bool,
    page: tuple[int | None, int] = (None, 0),
) -> list[ExternalSession]:
    limit, offset = page
    rows = conn.execute(
        store.sql.SELECT_SESSIONS,
        (user_id, user_id, 1 if active_only else 0, *store.sql.page(limit, offset)),
    ).fetchall()
    by_session: dict[str, list[Branch]] = {r[0]: [] for r in rows}
    if rows:
        ids = json.dumps(list(by_session))
        for found in conn.execute(store.sql.SELECT_BRANCHES_OF_SESSIONS, (ids,)):
            siblings = by_session[found[1]]
            siblings.append(_branch(found, len(siblings)))
    return [_session(r, by_session[r[0]]) for r in rows]


def session_of_thread(
    conn: Connection, store: CheckpointStore, thread_id: str
) -> ExternalSession | None:
    _require_text(thread_id, "thread id")
    found = conn.execute(store.sql.SELECT_SESSION_ID_OF_THREAD, (thread_id,)).fetchone()
    return None if found is None else get_session(conn, store, found[0])


def get_branch(conn: Connection, store: CheckpointStore, session_id: str, thread_id: str) -> Branch:
    _session_row(conn, store, session_id)
    return _require_branch(conn, store, session_id, thread_id)


def _require_branch(conn: Connection, store: CheckpointStore, session_id: str, ref: str) -> Branch:
    """The session's branch whose thread id is ``ref``, else whose name is ``ref``."""
    branches = _branches(conn, store, session_id)
    for branch in branches:
        if branch.thread_id == ref:
            return branch
    named = [b for b in branches if b.name == ref]
    if len(named) == 1:
        return named[0]
    if named:  # only in a database written before names were unique
        raise BranchNotFoundError(
            f"session {session_id!r} has {len(named)} branches named {ref!r} (threads "
            + ", ".join(b.thread_id for b in named)
            + "): name one by its thread id"
        )
    raise BranchNotFoundError(
        f"session {session_id!r} has no branch named {ref!r} and no thread {ref!r}"
    )


def branch_name(session_id: str, name: str | None, taken: Sequence[Branch]) -> str:
    """``name`` checked (valid, unused among ``taken``, the session's branches), or the
    next free ``branch-<n>``. Raises :class:`InvalidBranchNameError` (not a name, or the
    thread id of a branch) or :class:`BranchExistsError`, as a new branch would: a dry
    run (``agentgit rollback --undo-effects --dry-run --name``) checks with it too."""
    names = {b.name for b in taken}
    if name is None:
        n = len(taken)
        while f"branch-{n}" in names:
            n += 1
        return f"branch-{n}"
    problem = name_problem(name, MAX_BRANCH_NAME_LENGTH)
    if problem is not None:
        raise InvalidBranchNameError(f"branch name {name!r} {problem}")
    if name in names:
        owner = next(b for b in taken if b.name == name)
        raise BranchExistsError(
            f"session {session_id!r} already has a branch named {name!r} (thread {owner.thread_id})"
        )
    if any(b.thread_id == name for b in taken):
        raise InvalidBranchNameError(
            f"branch name {name!r} is the thread id of another branch of session {session_id!r}"
        )
    return name


# --- creating and changing sessions -----------------------------------------------------


def _metadata_json(metadata: Mapping[str, Any] | None) -> str:
    if metadata is not None and not isinstance(metadata, Mapping):
        raise TypeError(f"session metadata must be a mapping, got {type(metadata).__name__}")
    # Strict JSON, as for checkpoint metadata: NaN and infinities would be written as bare
    # tokens no JSON reader takes (an export of the session could not be imported).
    try:
        return json.dumps(
            dict(metadata or {}), separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except TypeError as exc:
        raise TypeError(f"session metadata must be JSON-serializable: {exc}") from None
    except ValueError as exc:
        if "Circular" in str(exc):
            raise ValueError(f"session metadata must be JSON-serializable: {exc}") from None
        raise ValueError(
            "session metadata holds NaN or an infinite number, which JSON cannot represent; "
            "pass a finite number or a string"
        ) from None


def new_thread_id(thread_id: object) -> str:
    """The id for a new thread: ``thread_id`` checked, or a fresh UUID for ``None``.

    A thread id is typed and shown where branch names and checkpoint ids also are, so it
    must be a non-empty string with no control characters and no surrounding
    whitespace (a non-string, e.g. a list, was stored as its ``str()``)."""
    if thread_id is None:
        return str(uuid.uuid4())
    if not isinstance(thread_id, str):
        raise TypeError(f"a thread id must be a string, not {type(thread_id).__name__}")
    if not thread_id.strip():
        raise ValueError(f"a thread id must not be empty or only whitespace: {thread_id!r}")
    if thread_id != thread_id.strip():
        raise ValueError(f"a thread id must not start or end with whitespace: {thread_id!r}")
    if _CONTROL.search(thread_id):
        raise ValueError(
            "a thread id must not hold control characters or bidirectional overrides: "
            f"{thread_id!r}"
        )
    return thread_id


def _check_unowned(conn: Connection, store: CheckpointStore, thread_id: str) -> None:
    owner = conn.execute(store.sql.SELECT_SESSION_ID_OF_THREAD, (thread_id,)).fetchone()
    if owner is not None:
        raise ThreadExistsError(f"thread {thread_id!r} already belongs to session {owner[0]!r}")


def _insert_session(
    conn: Connection,
    store: CheckpointStore,
    thread_id: str,
    user_id: str | None,
    name: str,
    metadata: Mapping[str, Any] | None,
) -> str:
    session_id = str(uuid.uuid4())
    ts = now()
    conn.execute(
        store.sql.INSERT_SESSION,
        (session_id, user_id, name, ts, ts, _metadata_json(metadata), thread_id),
    )
    conn.execute(
        store.sql.INSERT_SESSION_THREAD,
        (thread_id, session_id, session_id, None, None, MAIN_BRANCH, ts),
    )
    return session_id


def create_session(
    conn: Connection,
    store: CheckpointStore,
    user_id: str | None,
    name: str,
    metadata: Mapping[str, Any] | None,
    thread_id: str | None,
) -> ExternalSession:
    # The first thread has no checkpoints yet: the graph creates it on its first run.
    thread_id = new_thread_id(thread_id)
    _check_unowned(conn, store, thread_id)
    # Naming a thread of a deleted session again is a deliberate new start.
    conn.execute(store.sql.FORGET_DELETED_THREAD, (thread_id,))
    if store.lineage(conn, thread_id) is not None:
        raise ThreadExistsError(
            f"thread {thread_id!r} already exists: use adopt() to make it a session"
        )
    session_id = _insert_session(conn, store, thread_id, user_id, name, metadata)
    return require_session(conn, store, session_id)


def adopt(
    conn: Connection,
    store: CheckpointStore,
    thread_id: str,
    user_id: str | None,
    name: str,
    metadata: Mapping[str, Any] | None,
) -> ExternalSession:
    thread_id = str(thread_id)
    if store.lineage(conn, thread_id) is None:
        raise ThreadNotFoundError(f"thread {thread_id!r} does not exist")
    _check_unowned(conn, store, thread_id)
    session_id = _insert_session(conn, store, thread_id, user_id, name, metadata)
    return require_session(conn, store, session_id)


def set_active(
    conn: Connection, store: CheckpointStore, session_id: str, active: bool
) -> ExternalSession:
    _session_row(conn, store, session_id)
    conn.execute(store.sql.SET_SESSION_ACTIVE, (1 if active else 0, now(), session_id))
    return require_session(conn, store, session_id)


def delete_session(conn: Connection, store: CheckpointStore, session_id: str) -> None:
    _session_row(conn, store, session_id)
    delete_sessions(conn, store, [session_id])


def delete_sessions(
    conn: Connection, store: CheckpointStore, session_ids: Sequence[str], *, collect: bool = True
) -> None:
    """Delete existing sessions with one garbage collection (none when not ``collect``:
    the caller runs it)."""
    deleted_at = now()
    thread_ids: list[str] = []
    for session_id in session_ids:
        threads = [branch.thread_id for branch in _branches(conn, store, session_id)]
        # A run still writing into one of them must not recreate it as an orphan thread.
        conn.executemany(
            store.sql.INSERT_DELETED_THREAD,
            [(thread_id, session_id, deleted_at) for thread_id in threads],
        )
        thread_ids += threads
    # The store hides what another thread (e.g. a fork adopted by another session) still
    # inherits and garbage-collects the rest.
    store.delete_threads(conn, thread_ids, collect=collect)
    for session_id in session_ids:
        conn.execute(store.sql.DELETE_TAGS_OF_SESSION, (session_id,))
        conn.execute(store.sql.DELETE_EFFECT_CLAIMS_OF_SESSION, (session_id,))
        conn.execute(store.sql.DELETE_UNDO_RUNS_OF_SESSION, (session_id,))
        conn.execute(store.sql.DELETE_SESSION_THREADS, (session_id,))
        conn.execute(store.sql.DELETE_SESSION, (session_id,))


# --- resolving checkpoints --------------------------------------------------------------


def resolve(
    conn: Connection, store: CheckpointStore, session_id: str, ref: CheckpointRef
) -> tuple[str, Row]:
    """The session thread to fork from and the checkpoint row ``ref`` names.

    The checkpoint must be visible from one of the session's threads. The thread ``ref``
    names (a config's or snapshot's thread, a tag's) is taken when the checkpoint is in
    its history, owned or inherited: the branch continues the history the user pointed
    at. For a bare checkpoint id, a thread that wrote it (the current one first, then
    the others), else the first that inherits it. Cost: for a bare id, an indexed lookup
    per session thread, independent of history length; for a named thread that
    inherits the checkpoint, a walk from its fork point back to the checkpoint.
    """
    thread_ids = [b.thread_id for b in _branches(conn, store, session_id)]
    found = _resolve_in(conn, store, session_id, ref, thread_ids)
    # A config or snapshot names its thread: a thread that does not exist (made up, or
    # deleted) is refused, not silently ignored, even where a thread of the session
    # reaches the checkpoint. (Another live thread the session inherits the checkpoint
    # from is accepted: a snapshot of the source of a fork.)
    if (
        ref.text is None
        and ref.checkpoint_id is not None
        and ref.thread_id is not None
        and ref.thread_id not in thread_ids
        and store.lineage(conn, ref.thread_id) is None
    ):
        raise ThreadNotFoundError(f"thread {ref.thread_id!r} does not exist")
    return found


def _resolve_in(
    conn: Connection,
    store: CheckpointStore,
    session_id: str,
    ref: CheckpointRef,
    thread_ids: list[str],
) -> tuple[str, Row]:
    """:func:`resolve` among ``thread_ids`` (the session's)."""
    preferred: str | None = ref.thread_id
    tag: Sequence[Any] | None = None
    if ref.text is not None:
        tag = conn.execute(store.sql.SELECT_TAG, (session_id, ref.text)).fetchone()
        checkpoint_id = ref.text if tag is None else tag[0]
        preferred = None if tag is None else tag[1]
    elif ref.checkpoint_id is None:
        return _thread_head(conn, store, session_id, str(ref.thread_id), thread_ids)
    else:
        checkpoint_id = ref.checkpoint_id
    if ref.ns:
        raise CheckpointNotFoundError(
            f"checkpoint {checkpoint_id!r} is in subgraph namespace {ref.ns!r}; branches "
            "start at checkpoints of the root graph"
        )
    # A thread ``ref`` names (a config's, a snapshot's, a tag's) is the history the user
    # pointed at: the branch continues it whether the thread wrote the checkpoint or
    # inherits it (then found by walking its chain: O(distance from its fork point)). It
    # may differ from the writer's: a run deleted or a prune in the writer after the
    # named thread was made hides rows from the writer and from forks made of it since.
    if preferred in thread_ids:
        lineage = store.lineage(conn, preferred)
        row = store.find_row(conn, lineage, "", checkpoint_id) if lineage else None
        if row is not None:
            return preferred, row
    # Then the session's current thread: after prune(keep_latest) a branch owns a copy of
    # a checkpoint its source also owns, with the shorter history the branch shows.
    current = _session_row(conn, store, session_id)[7]
    first = [t for t in (preferred, current) if t in thread_ids]
    ordered = list(dict.fromkeys(first + thread_ids))
    # A thread that wrote it: one indexed lookup per thread, whatever the history length.
    for thread_id in ordered:
        own = conn.execute(
            store.sql.SELECT_OWN_BY_THREAD_ID, (thread_id, "", checkpoint_id)
        ).fetchone()
        if own is not None:
            return thread_id, Row.of(own)
    # Else the first that inherits it.
    for thread_id in ordered:
        lineage = store.lineage(conn, thread_id)
        if lineage is None:
            continue
        row = store.find_row(conn, lineage, "", checkpoint_id)
        if row is not None:
            return thread_id, row
    if tag is not None:
        raise CheckpointNotFoundError(
            f"tag {ref.text!r} of session {session_id!r} names checkpoint {checkpoint_id!r}, "
            "which no thread of the session reaches any more"
        )
    if ref.text is not None and not looks_like_checkpoint_id(ref.text):
        raise TagNotFoundError(f"session {session_id!r} has no tag or checkpoint {ref.text!r}")
    raise CheckpointNotFoundError(
        f"checkpoint {checkpoint_id!r} is not reachable from any thread of session {session_id!r}"
    )


def _tree_parent(
    conn: Connection, store: CheckpointStore, session_id: str, source: str, row: Row
) -> str:
    """The branch a new branch is drawn from in the session's tree: the session thread
    that wrote its fork checkpoint, else the thread it was forked from. A branch made at
    a checkpoint the current branch inherits from main hangs off main in the tree (a
    sibling), while its history is the one the current branch showed."""
    found = conn.execute(store.sql.SELECT_THREAD_ID_OF_PK, (row.thread_pk,)).fetchone()
    writer = None if found is None else found[0]
    if writer is not None and writer != source:
        owner = conn.execute(store.sql.SELECT_SESSION_ID_OF_THREAD, (writer,)).fetchone()
        if owner is not None and owner[0] == session_id:
            return str(writer)
    return source


def _thread_head(
    conn: Connection,
    store: CheckpointStore,
    session_id: str,
    thread_id: str,
    thread_ids: Sequence[str],
) -> tuple[str, Row]:
    if thread_id not in thread_ids:
        raise BranchNotFoundError(f"thread {thread_id!r} is not a branch of session {session_id!r}")
    lineage = store.lineage(conn, thread_id)
    row = store.find_row(conn, lineage, "", None) if lineage is not None else None
    if row is None:
        raise CheckpointNotFoundError(
            f"thread {thread_id!r} of session {session_id!r} has no checkpoint yet"
        )
    return thread_id, row


# --- branches ---------------------------------------------------------------------------


def create_branch(
    conn: Connection,
    store: CheckpointStore,
    session_id: str,
    ref: CheckpointRef,
    name: str | None,
    thread_id: str | None,
    make_current: bool,
) -> Branch:
    _session_row(conn, store, session_id)
    taken = _branches(conn, store, session_id)
    name = branch_name(session_id, name, taken)
    fresh = new_thread_id(thread_id)
    # A thread id equal to a branch's name would make that name ambiguous (checkout,
    # get_branch and the CLI take either).
    named = next((b for b in taken if b.name == fresh), None)
    if named is not None:
        raise ValueError(
            f"thread id {fresh!r} is the name of branch {named.thread_id!r} of session "
            f"{session_id!r}; choose another thread id"
        )
    source, row = resolve(conn, store, session_id, ref)
    _check_unowned(conn, store, fresh)
    # Raises ThreadExistsError for a thread id in use; writes one row. Forked from the
    # thread whose history the checkpoint was found in, so the branch continues exactly
    # that history (see resolve).
    store.fork_thread(conn, source, row.checkpoint_id, fresh)
    ts = now()
    conn.execute(
        store.sql.INSERT_SESSION_THREAD,
        (
            fresh,
            session_id,
            session_id,
            _tree_parent(conn, store, session_id, source, row),
            row.checkpoint_id,
            name,
            ts,
        ),
    )
    if make_current:
        conn.execute(store.sql.SET_CURRENT_THREAD, (fresh, ts, session_id))
    else:
        conn.execute(store.sql.TOUCH_SESSION, (ts, session_id))
    return _require_branch(conn, store, session_id, fresh)


def checkout(conn: Connection, store: CheckpointStore, session_id: str, thread_id: str) -> Branch:
    _session_row(conn, store, session_id)
    branch = _require_branch(conn, store, session_id, thread_id)
    conn.execute(store.sql.SET_CURRENT_THREAD, (branch.thread_id, now(), session_id))
    return branch


def delete_branch(
    conn: Connection, store: CheckpointStore, session_id: str, thread_id: str
) -> ExternalSession:
    row = _session_row(conn, store, session_id)
    branch = _require_branch(conn, store, session_id, thread_id)
    thread_id = branch.thread_id
    remaining = [b for b in _branches(conn, store, session_id) if b.thread_id != thread_id]
    if not remaining:
        raise LastBranchError(
            f"thread {thread_id!r} is the only branch of session {session_id!r}; "
            "delete the session instead"
        )
    # A run still writing into the branch must not recreate it as an orphan thread.
    conn.execute(store.sql.INSERT_DELETED_THREAD, (thread_id, session_id, now()))
    store.delete_thread(conn, thread_id)
    conn.execute(store.sql.DELETE_SESSION_THREAD, (thread_id,))
    current = row[7]
    if current == thread_id:
        parents = [b for b in remaining if b.thread_id == branch.parent_thread_id]
        current = (parents or remaining)[-1].thread_id
    conn.execute(store.sql.SET_CURRENT_THREAD, (current, now(), session_id))
    return require_session(conn, store, session_id)


def checkpoints(
    conn: Connection,
    store: CheckpointStore,
    session_id: str,
    thread_id: str | None,
    limit: int | None,
) -> list[CheckpointTuple]:
    row = _session_row(conn, store, session_id)
    thread_id = (
        row[7]
        if thread_id is None
        else _require_branch(conn, store, session_id, thread_id).thread_id
    )
    config = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    return list(store.list_checkpoints(conn, config, limit=limit))  # type: ignore[arg-type]


def checkpoint_tuples(
    conn: Connection, store: CheckpointStore, thread_id: str, checkpoint_ids: Sequence[str]
) -> dict[str, CheckpointTuple]:
    """The named root-namespace checkpoints as ``thread_id`` sees them, read together: the
    lists they hold are decoded in one pass, sharing what they share (reading scattered
    checkpoints of a long thread one by one rebuilds each list from its delta chain).
    Ids the thread does not see are left out."""
    lineage = store.lineage(conn, thread_id)
    if lineage is None or not checkpoint_ids:
        return {}
    rows = [store.find_row(conn, lineage, "", cid) for cid in dict.fromkeys(checkpoint_ids)]
    # _tuples is the store's batch reader (get_tuple and list go through it too).
    found = store._tuples(conn, lineage, [row for row in rows if row is not None])
    return {t.checkpoint["id"]: t for t in found}


# --- tags -------------------------------------------------------------------------------


def tag(
    conn: Connection,
    store: CheckpointStore,
    session_id: str,
    ref: CheckpointRef,
    name: str,
) -> str:
    _session_row(conn, store, session_id)
    problem = name_problem(name, MAX_TAG_LENGTH)
    if problem is not None:
        raise InvalidTagError(f"tag name {name!r} {problem}")
    if conn.execute(store.sql.SELECT_TAG, (session_id, name)).fetchone() is not None:
        raise TagExistsError(f"session {session_id!r} already has a tag {name!r}")
    thread_id, row = resolve(conn, store, session_id, ref)
    ts = now()
    conn.execute(store.sql.INSERT_TAG, (session_id, name, row.checkpoint_id, thread_id, ts))
    conn.execute(store.sql.TOUCH_SESSION, (ts, session_id))
    return row.checkpoint_id


def untag(conn: Connection, store: CheckpointStore, session_id: str, name: str) -> None:
    _session_row(conn, store, session_id)
    if conn.execute(store.sql.DELETE_TAG, (session_id, name)).rowcount == 0:
        raise TagNotFoundError(f"session {session_id!r} has no tag {name!r}")
    conn.execute(store.sql.TOUCH_SESSION, (now(), session_id))


def tags(conn: Connection, store: CheckpointStore, session_id: str) -> dict[str, str]:
    _session_row(conn, store, session_id)
    return {name: cid for name, cid in conn.execute(store.sql.SELECT_TAGS, (session_id,))}


# --- timelines --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Body:
    versions_seen: Mapping[str, Any]
    ts: str | None


def _body(store: CheckpointStore, row: Sequence[Any]) -> _Body:
    """What a timeline needs of a checkpoint row (``SUMMARY_COLUMNS``): the stored
    checkpoint minus its channel values, small, no blob reads needed. A damaged record
    fails the view as it fails get_state (``CorruptDataError`` naming the checkpoint)."""
    decoded = decode_record(store.serde, row[5], row[1])
    seen = decoded.get("versions_seen")
    ts = decoded.get("ts")
    return _Body(seen if isinstance(seen, dict) else {}, ts if isinstance(ts, str) else None)


def _producing_nodes(
    source: str | None, seen: Mapping[str, Any], parent_seen: Mapping[str, Any] | None
) -> str | None:
    """The node(s) whose run made a checkpoint: those whose ``versions_seen`` entry
    differs from the parent checkpoint's (LangGraph updates it for every task it runs).
    ``update_state`` and input checkpoints ran no node."""
    if source not in ("loop", None) or parent_seen is None:
        return None
    nodes = sorted(k for k, v in seen.items() if _is_node(k) and parent_seen.get(k) != v)
    return ", ".join(nodes) or None


def _is_node(key: str) -> bool:
    # versions_seen also tracks "__input__" and "__interrupt__" (interrupt_before/after
    # bookkeeping); "__start__" is the node that applies a run's input.
    return key == "__start__" or not key.startswith("__")


def _summary(row: Sequence[Any], body: _Body, parent: _Body | None) -> CheckpointSummary:
    _rid, checkpoint_id, parent_id, _parent_rid, metadata_json, _body = row
    metadata = json.loads(metadata_json)
    step = metadata.get("step")
    source = metadata.get("source")
    return CheckpointSummary(
        checkpoint_id=checkpoint_id,
        parent_checkpoint_id=parent_id,
        step=step if isinstance(step, int) else None,
        source=source if isinstance(source, str) else None,
        node=_producing_nodes(
            source if isinstance(source, str) else None,
            body.versions_seen,
            parent.versions_seen if parent is not None else None,
        ),
        created_at=body.ts,
    )


def _summary_by_rid(
    conn: Connection, store: CheckpointStore, rid: int | None
) -> CheckpointSummary | None:
    if rid is None:
        return None
    row = conn.execute(store.sql.SELECT_CHECKPOINT_SUMMARY, (rid,)).fetchone()
    if row is None:
        return None
    parent = conn.execute(store.sql.SELECT_CHECKPOINT_SUMMARY, (row[3],)).fetchone()
    return _summary(row, _body(store, row), _body(store, parent) if parent else None)


def _own_history(
    conn: Connection, store: CheckpointStore, thread_id: str
) -> list[CheckpointSummary]:
    bodies: dict[int, _Body] = {}
    out = []
    for row in conn.execute(store.sql.SELECT_ROOT_HISTORY, (thread_id,)).fetchall():
        rid, parent_rid = row[0], row[3]
        body = _body(store, row)
        parent = bodies.get(parent_rid) if parent_rid is not None else None
        if parent is None and parent_rid is not None:
            # The first checkpoint of a branch: its parent is the fork point, elsewhere.
            found = conn.execute(store.sql.SELECT_CHECKPOINT_SUMMARY, (parent_rid,)).fetchone()
            parent = _body(store, found) if found else None
        bodies[rid] = body
        out.append(_summary(row, body, parent))
    return out


def message_preview(values: Mapping[str, Any], length: int = PREVIEW_LENGTH) -> str | None:
    """One line for the last message of the state's message list, if any (the views
    layer's rule: ``"ai: <text>"``, ``"user: <text>"``, ``"ai → tool(args)"``)."""
    candidates = [values.get("messages")] + [v for k, v in values.items() if k != "messages"]
    for value in candidates:
        if isinstance(value, list) and value and isinstance(value[-1], BaseMessage):
            return preview_line(value[-1], length)
    return None


def timeline_data(
    conn: Connection, store: CheckpointStore, session_id: str, heads: bool = True
) -> tuple[ExternalSession, list[BranchHistory], dict[str, str]]:
    """The session, each branch's history and the tags. Without ``heads`` the branches'
    head states are not read (no ``last_message``, ``interrupted`` false): that read
    decodes each head's whole state, most of the cost for a session with long branches."""
    session = require_session(conn, store, session_id)
    histories = []
    for branch in _branches(conn, store, session_id):
        own = _own_history(conn, store, branch.thread_id)
        fork_point = None
        if branch.fork_checkpoint_id is not None:
            found = conn.execute(store.sql.SELECT_FORK_RID, (branch.thread_id,)).fetchone()
            fork_point = _summary_by_rid(conn, store, found[0] if found else None)
        head_tuple = (
            store.get_tuple(
                conn, {"configurable": {"thread_id": branch.thread_id, "checkpoint_ns": ""}}
            )
            if heads
            else None
        )
        histories.append(
            BranchHistory(
                branch=branch,
                checkpoints=tuple(own),
                fork_point=fork_point,
                head=own[-1] if own else fork_point,
                last_message=(
                    message_preview(head_tuple.checkpoint["channel_values"]) if head_tuple else None
                ),
                # A fork that has not written a checkpoint yet may still wait on an
                # interrupt: running it again from its fork point stores the interrupt as
                # its own write at that point, which the fork sees (its parent's writes
                # there it does not).
                interrupted=head_tuple is not None
                and any(w[1] == _INTERRUPT for w in head_tuple.pending_writes or ()),
                is_current=branch.thread_id == session.current_thread_id,
            )
        )
    return session, histories, tags(conn, store, session_id)


# --- diffs ------------------------------------------------------------------------------


def _locate(
    conn: Connection, store: CheckpointStore, ref: CheckpointRef, session_id: str | None
) -> tuple[str, Row]:
    """The thread to read ``ref`` through and its row, for a diff. With ``session_id``,
    the thread must be one of that session's: a thread of another session (or of no
    session) is reported exactly as a missing one."""
    if session_id is not None:
        _session_row(conn, store, session_id)
        if ref.text is not None or ref.thread_id is None:
            return resolve(conn, store, session_id, ref)
        found = conn.execute(store.sql.SELECT_SESSION_ID_OF_THREAD, (ref.thread_id,)).fetchone()
        if found is None or found[0] != session_id:
            raise ThreadNotFoundError(f"thread {ref.thread_id!r} does not exist")
    if ref.thread_id is None:
        assert ref.text is not None or ref.checkpoint_id is not None
        checkpoint_id = ref.text if ref.text is not None else ref.checkpoint_id
        found = conn.execute(
            store.sql.SELECT_LIVE_THREAD_OF_CHECKPOINT, (checkpoint_id,)
        ).fetchone()
        if found is None:
            raise CheckpointNotFoundError(f"checkpoint {checkpoint_id!r} does not exist")
        ref = CheckpointRef(checkpoint_id=checkpoint_id, thread_id=found[0])
    lineage = store.lineage(conn, str(ref.thread_id))
    if lineage is None:
        raise ThreadNotFoundError(f"thread {ref.thread_id!r} does not exist")
    row = store.find_row(conn, lineage, ref.ns, ref.checkpoint_id)
    if row is None:
        raise CheckpointNotFoundError(
            f"checkpoint {ref.checkpoint_id!r} is not in thread {ref.thread_id!r}"
            if ref.checkpoint_id
            else f"thread {ref.thread_id!r} has no checkpoint"
        )
    return str(ref.thread_id), row


def diff_data(
    conn: Connection,
    store: CheckpointStore,
    a: CheckpointRef,
    b: CheckpointRef,
    session_id: str | None,
) -> tuple[CheckpointTuple, CheckpointTuple, CheckpointTuple | None]:
    """The two checkpoints and their nearest common ancestor (``None`` if unrelated)."""
    thread_a, row_a = _locate(conn, store, a, session_id)
    thread_b, row_b = _locate(conn, store, b, session_id)
    chain_a = conn.execute(store.sql.SELECT_ANCESTRY, (row_a.rid,)).fetchall()
    in_a = {rid for rid, _ in chain_a}
    base_id = next(
        (cid for rid, cid in conn.execute(store.sql.SELECT_ANCESTRY, (row_b.rid,)) if rid in in_a),
        None,
    )

    def load(thread_id: str, ns: str, checkpoint_id: str) -> CheckpointTuple:
        config = {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": ns,
                "checkpoint_id": checkpoint_id,
            }
        }
        found = store.get_tuple(conn, config)  # type: ignore[arg-type]
        assert found is not None, checkpoint_id
        return found

    base = load(thread_a, row_a.ns, base_id) if base_id is not None else None
    return (
        load(thread_a, row_a.ns, row_a.checkpoint_id),
        load(thread_b, row_b.ns, row_b.checkpoint_id),
        base,
    )


# --- ownership: a manager scoped to one user ------------------------------------------------
# A session of another user must behave exactly like a missing one: the check raises the
# very error (class and message) a missing session raises, before the operation runs.


def _require_owned(
    conn: Connection, store: CheckpointStore, owner: str | None, session_id: str
) -> Sequence[Any]:
    row = _session_row(conn, store, session_id)
    if owner is not None and row[1] != owner:
        raise SessionNotFoundError(f"session {session_id!r} does not exist")
    return row


def scoped(
    conn: Connection,
    store: CheckpointStore,
    owner: str | None,
    fn: Any,
    session_id: str,
    *args: Any,
) -> Any:
    """``fn(conn, store, session_id, *args)`` if ``owner`` (``None``: anyone) owns the
    session, in the same transaction; :class:`SessionNotFoundError` otherwise."""
    _require_owned(conn, store, owner, session_id)
    return fn(conn, store, session_id, *args)


def scoped_get_session(
    conn: Connection, store: CheckpointStore, owner: str | None, session_id: str
) -> ExternalSession | None:
    found = get_session(conn, store, session_id)
    if found is None or (owner is not None and found.user_id != owner):
        return None
    return found


def scoped_list_sessions(
    conn: Connection,
    store: CheckpointStore,
    owner: str | None,
    user_id: str | None,
    active_only: bool,
    page: tuple[int | None, int] = (None, 0),
) -> list[ExternalSession]:
    if owner is not None:
        if user_id is not None and user_id != owner:
            return []
        user_id = owner
    return list_sessions(conn, store, user_id, active_only, page)


def count_sessions(
    conn: Connection,
    store: CheckpointStore,
    owner: str | None,
    user_id: str | None,
    open_only: bool,
    active_only: bool = False,
) -> int:
    if owner is not None:
        if user_id is not None and user_id != owner:
            return 0
        user_id = owner
    row = conn.execute(
        store.sql.COUNT_SESSIONS,
        (user_id, user_id, 1 if open_only else 0, 1 if active_only else 0),
    )
    return int(row.fetchone()[0])


def scoped_session_of_thread(
    conn: Connection, store: CheckpointStore, owner: str | None, thread_id: str
) -> ExternalSession | None:
    found = session_of_thread(conn, store, thread_id)
    if found is None or (owner is not None and found.user_id != owner):
        return None
    return found


def find_session(
    conn: Connection, store: CheckpointStore, owner: str | None, text: str
) -> ExternalSession:
    """The session whose id is ``text``, else the one named ``text`` or whose id starts
    with it; :class:`AmbiguousSessionError` naming them when several match."""
    if not isinstance(text, str) or not text:
        raise ValueError("find_session needs a session name or a non-empty id prefix")
    exact = scoped_get_session(conn, store, owner, text)
    if exact is not None:
        return exact
    rows = conn.execute(store.sql.FIND_SESSIONS, (owner, owner, text, text, text)).fetchall()
    if not rows:
        raise SessionNotFoundError(f"no session is named {text!r} or has an id starting with it")
    if len(rows) > 1:
        shown = ", ".join(f"{sid} ({name!r})" if name else sid for sid, name in rows[:5])
        more = f" and {len(rows) - 5} more" if len(rows) > 5 else ""
        raise AmbiguousSessionError(
            f"{text!r} matches {len(rows)} sessions: {shown}{more}; give more of the id"
        )
    return require_session(conn, store, rows[0][0])


# --- names, limits and lifecycle ------------------------------------------------------------

#: Longest session name kept; a longer one is cut (sanitized, not refused).
MAX_SESSION_NAME_LENGTH = 200
#: User ids come from an application's accounts (an email, a UUID), never from prose.
MAX_USER_ID_LENGTH = 256
#: An end reason is a short note shown with the session, not a document.
MAX_END_REASON_LENGTH = 1000
#: What ``end_reason`` says of a session retired by ``on_limit="retire_oldest"``.
RETIRED = "retired"
ON_LIMIT = ("refuse", "retire_oldest")
# Any whitespace run (newlines and tabs included) is one space; other controls go.
_WHITESPACE_RUN = re.compile(r"\s+")
_NUMBERED = re.compile(r"^(?P<base>.*) #(?P<n>[0-9]+)$", re.DOTALL)


@dataclass(frozen=True)
class Policy:
    """What a :class:`SessionManager` enforces when it creates or reopens sessions."""

    owner: str | None = None
    unique_names: bool = False
    max_sessions_per_user: int | None = None
    on_limit: str = "refuse"


def sanitize_session_name(name: object) -> str:
    """``name`` on one line: every whitespace run (newlines, tabs) becomes one space,
    other control characters and bidirectional overrides are removed, the ends are
    stripped and the rest is cut to :data:`MAX_SESSION_NAME_LENGTH` characters.

    Raises ``TypeError`` for a non-string and :class:`InvalidSessionNameError` for a
    non-empty name that nothing is left of (``""`` itself means untitled)."""
    if not isinstance(name, str):
        raise TypeError(f"a session name must be a string, not {type(name).__name__}")
    cleaned = _CONTROL.sub("", _WHITESPACE_RUN.sub(" ", name)).strip()
    cleaned = cleaned[:MAX_SESSION_NAME_LENGTH].rstrip()
    if name and not cleaned:
        raise InvalidSessionNameError(
            f"session name {name!r} is empty once its control characters are stripped"
        )
    return cleaned


def _unique_name(conn: Connection, store: CheckpointStore, user_id: str | None, name: str) -> str:
    """``name`` if the user has no session so named, else ``"<base> #<n>"`` with the
    next number after the highest taken (the unnumbered name counts as #1)."""
    if not name:
        return name
    numbered = _NUMBERED.match(name)
    base = numbered.group("base") if numbered else name
    prefix = f"{base} #"
    taken = {
        r[0]
        for r in conn.execute(store.sql.SELECT_SESSION_NAMES_LIKE, (user_id, name, prefix, prefix))
    }
    if name not in taken:
        return name
    taken |= {
        r[0]
        for r in conn.execute(store.sql.SELECT_SESSION_NAMES_LIKE, (user_id, base, prefix, prefix))
    }
    highest = 1
    for other in taken:
        found = _NUMBERED.match(other)
        if found and found.group("base") == base:
            highest = max(highest, int(found.group("n")))
    candidate = f"{base} #{highest + 1}"
    if len(candidate) > MAX_SESSION_NAME_LENGTH:
        raise InvalidSessionNameError(
            f"session name {name!r} is taken and too long to number (at most "
            f"{MAX_SESSION_NAME_LENGTH} characters)"
        )
    return candidate


def _make_room(
    conn: Connection,
    store: CheckpointStore,
    policy: Policy,
    user_id: str | None,
    adding: int = 1,
) -> None:
    """Enforce ``max_sessions_per_user`` before ``adding`` more open sessions of
    ``user_id`` (``0``: after they were added, as an import does).

    Runs in the write transaction that then creates (or reopens) the session: SQLite has
    one writer, and on PostgreSQL every session write holds the schema's exclusive
    advisory lock (``LOCK_ALL``), so two creates cannot both see room for one."""
    limit = policy.max_sessions_per_user
    if limit is None:
        return
    open_ids = [r[0] for r in conn.execute(store.sql.SELECT_OPEN_SESSIONS_OF_USER, (user_id,))]
    excess = len(open_ids) - limit + adding
    if excess <= 0:
        return
    who = f"user {user_id!r}" if user_id is not None else "sessions without a user"
    if policy.on_limit == "refuse" and not adding:
        raise SessionLimitError(
            f"{who} would have {len(open_ids)} open sessions, more than allowed "
            f"(max_sessions_per_user={limit}); nothing was imported"
        )
    if policy.on_limit == "refuse":
        raise SessionLimitError(
            f"{who} already has {len(open_ids)} open sessions, the most allowed "
            f"(max_sessions_per_user={limit}); end or delete one first"
        )
    ts = now()
    for session_id in open_ids[:excess]:
        conn.execute(store.sql.END_SESSION, (ts, RETIRED, ts, session_id))


def _check_thread_free(
    conn: Connection, store: CheckpointStore, owner: str | None, thread_id: str | None
) -> None:
    # A scoped manager says a thread is taken without naming another user's session.
    if owner is None or thread_id is None:
        return
    found = conn.execute(store.sql.SELECT_SESSION_ID_OF_THREAD, (str(thread_id),)).fetchone()
    if found is not None:
        row = conn.execute(store.sql.SELECT_SESSION, (found[0],)).fetchone()
        if row is not None and row[1] != owner:
            raise ThreadExistsError(f"thread {str(thread_id)!r} already belongs to a session")


def check_user_id(user_id: object) -> str | None:
    """``user_id`` if it can name a user: ``None`` (no user) or a non-empty string of at
    most :data:`MAX_USER_ID_LENGTH` characters, without control characters (NUL
    included, which PostgreSQL cannot store) or surrounding whitespace. A user id is
    compared exactly (it scopes whole managers), so nothing is cleaned silently.

    Raises ``TypeError`` for a non-string and ``ValueError`` naming the problem."""
    if user_id is None:
        return None
    if not isinstance(user_id, str):
        raise TypeError(f"a user id must be a string or None, not {type(user_id).__name__}")
    if not user_id.strip():
        raise ValueError(f"a user id must not be empty or only whitespace: {user_id!r}")
    if len(user_id) > MAX_USER_ID_LENGTH:
        raise ValueError(
            f"a user id must be at most {MAX_USER_ID_LENGTH} characters, not {len(user_id)}"
        )
    if user_id != user_id.strip():
        raise ValueError(f"a user id must not start or end with whitespace: {user_id!r}")
    if _CONTROL.search(user_id):
        raise ValueError(
            f"a user id must not hold control characters or bidirectional overrides: {user_id!r}"
        )
    return user_id


def _owner_of_new(policy: Policy, user_id: str | None) -> str | None:
    user_id = check_user_id(user_id)
    if policy.owner is None:
        return user_id
    if user_id is not None and user_id != policy.owner:
        raise SessionScopeError(
            f"this session manager is scoped to user {policy.owner!r}; it cannot create a "
            f"session for user {user_id!r}"
        )
    return policy.owner


def create_with_policy(
    conn: Connection,
    store: CheckpointStore,
    policy: Policy,
    user_id: str | None,
    name: str,
    metadata: Mapping[str, Any] | None,
    thread_id: str | None,
) -> ExternalSession:
    user_id = _owner_of_new(policy, user_id)
    name = sanitize_session_name(name)
    if thread_id is not None:
        thread_id = new_thread_id(thread_id)
    _check_thread_free(conn, store, policy.owner, thread_id)
    if policy.unique_names:
        name = _unique_name(conn, store, user_id, name)
    _make_room(conn, store, policy, user_id)
    return create_session(conn, store, user_id, name, metadata, thread_id)


def adopt_with_policy(
    conn: Connection,
    store: CheckpointStore,
    policy: Policy,
    thread_id: str,
    user_id: str | None,
    name: str,
    metadata: Mapping[str, Any] | None,
) -> ExternalSession:
    user_id = _owner_of_new(policy, user_id)
    name = sanitize_session_name(name)
    _check_thread_free(conn, store, policy.owner, thread_id)
    if policy.unique_names:
        name = _unique_name(conn, store, user_id, name)
    _make_room(conn, store, policy, user_id)
    return adopt(conn, store, thread_id, user_id, name, metadata)


def end_session(
    conn: Connection, store: CheckpointStore, policy: Policy, session_id: str, reason: str | None
) -> ExternalSession:
    _require_owned(conn, store, policy.owner, session_id)
    if reason is not None and not isinstance(reason, str):
        raise TypeError(f"an end reason must be a string, not {type(reason).__name__}")
    if reason is not None and len(reason) > MAX_END_REASON_LENGTH:
        raise ValueError(
            f"an end reason must be at most {MAX_END_REASON_LENGTH} characters, not {len(reason)}"
        )
    ts = now()
    conn.execute(store.sql.END_SESSION, (ts, reason, ts, session_id))
    return require_session(conn, store, session_id)


def reopen_session(
    conn: Connection, store: CheckpointStore, policy: Policy, session_id: str
) -> ExternalSession:
    row = _require_owned(conn, store, policy.owner, session_id)
    if row[8] is None:  # open already
        return require_session(conn, store, session_id)
    _make_room(conn, store, policy, row[1])
    conn.execute(store.sql.REOPEN_SESSION, (now(), session_id))
    return require_session(conn, store, session_id)


# --- what an event reports (read in the change's own transaction) ---------------------------


def switch(
    conn: Connection, store: CheckpointStore, session_id: str, thread_id: str
) -> tuple[str, Branch]:
    """:func:`checkout`, also returning the thread that was current before."""
    previous = str(_session_row(conn, store, session_id)[7])
    return previous, checkout(conn, store, session_id, thread_id)


def tag_located(
    conn: Connection, store: CheckpointStore, session_id: str, ref: CheckpointRef, name: str
) -> tuple[str, str]:
    """:func:`tag`, returning the tagged checkpoint id and the thread it was found in."""
    checkpoint_id = tag(conn, store, session_id, ref, name)
    found = conn.execute(store.sql.SELECT_TAG, (session_id, name)).fetchone()
    return checkpoint_id, str(found[1])


def delete_session_returning(
    conn: Connection, store: CheckpointStore, session_id: str
) -> ExternalSession:
    """:func:`delete_session`, returning the session as it was."""
    before = require_session(conn, store, session_id)
    delete_session(conn, store, session_id)
    return before


def delete_branch_returning(
    conn: Connection, store: CheckpointStore, session_id: str, thread_id: str
) -> tuple[Branch, ExternalSession]:
    """:func:`delete_branch`, also returning the branch deleted."""
    _session_row(conn, store, session_id)
    branch = _require_branch(conn, store, session_id, thread_id)
    return branch, delete_branch(conn, store, session_id, branch.thread_id)


def scoped_diff_data(
    conn: Connection,
    store: CheckpointStore,
    owner: str | None,
    a: CheckpointRef,
    b: CheckpointRef,
    session_id: str | None,
) -> tuple[CheckpointTuple, CheckpointTuple, CheckpointTuple | None]:
    """:func:`diff_data` seeing only the owner's sessions: a checkpoint or thread outside
    them is reported exactly as a missing one."""
    if owner is None:
        return diff_data(conn, store, a, b, session_id)
    if session_id is not None:
        _require_owned(conn, store, owner, session_id)
        return diff_data(conn, store, a, b, session_id)
    mine = [
        r[0]
        for r in conn.execute(
            store.sql.SELECT_SESSIONS, (owner, owner, 0, *store.sql.page(None, 0))
        )
    ]

    def pin(ref: CheckpointRef) -> CheckpointRef:
        if ref.thread_id is not None:
            found = conn.execute(store.sql.SELECT_SESSION_ID_OF_THREAD, (ref.thread_id,))
            row = found.fetchone()
            if row is None or row[0] not in mine:
                raise ThreadNotFoundError(f"thread {ref.thread_id!r} does not exist")
            return ref
        checkpoint_id = ref.text if ref.text is not None else ref.checkpoint_id
        bare = CheckpointRef(checkpoint_id=checkpoint_id)
        for sid in mine:
            try:
                thread_id, _row = resolve(conn, store, sid, bare)
            except (CheckpointNotFoundError, BranchNotFoundError):
                continue
            return CheckpointRef(checkpoint_id=checkpoint_id, thread_id=thread_id)
        raise CheckpointNotFoundError(f"checkpoint {checkpoint_id!r} does not exist")

    return diff_data(conn, store, pin(a), pin(b), None)


# --- turns ----------------------------------------------------------------------------------
# A turn starts where HumanMessages are appended to the "messages" channel. The branch's
# root-namespace history is followed from its head along parent links (its own
# checkpoints, then the ones it inherits), oldest first; a checkpoint whose messages hold
# a human message (by id) its parent's did not starts a turn.

MESSAGES_CHANNEL = "messages"


def _message_list(values: Mapping[str, Any]) -> list[BaseMessage]:
    value = values.get(MESSAGES_CHANNEL)
    if not isinstance(value, list):
        return []
    return [m for m in value if isinstance(m, BaseMessage)]


def _key(message: BaseMessage, position: int) -> Any:
    # add_messages gives every message an id; a list without ids is compared by position.
    return message.id if message.id else ("#", position, message.type, repr(message.content))


def _line_of_head(items: Sequence[CheckpointTuple]) -> list[CheckpointTuple]:
    """The head's line of descent, oldest first: ``items`` (a thread's history, newest
    first) also holds forks LangGraph made inside the thread, which are not on it."""
    if not items:
        return []
    by_id = {t.checkpoint["id"]: t for t in items}
    line: list[CheckpointTuple] = []
    seen: set[str] = set()
    current: CheckpointTuple | None = items[0]
    while current is not None and current.checkpoint["id"] not in seen:
        seen.add(current.checkpoint["id"])
        line.append(current)
        parent = current.parent_config
        parent_id = (parent or {}).get("configurable", {}).get("checkpoint_id")
        current = by_id.get(parent_id) if parent_id else None
    line.reverse()
    return line


def _source(item: CheckpointTuple) -> Any:
    return (item.metadata or {}).get("source")


def _usage(messages: Sequence[BaseMessage]) -> TokenUsage:
    total = TokenUsage()
    for m in messages:
        usage = getattr(m, "usage_metadata", None) if m.type == "ai" else None
        if isinstance(usage, Mapping):
            total = total + TokenUsage(
                int(usage.get("input_tokens") or 0),
                int(usage.get("output_tokens") or 0),
                int(usage.get("total_tokens") or 0),
            )
    return total


def _turns_of(
    thread_id: str, fork_checkpoint_id: str | None, line: Sequence[CheckpointTuple]
) -> list[Turn]:
    # (index of the first checkpoint holding it, the human message, its key)
    starts: list[tuple[int, BaseMessage, Any]] = []
    before_keys: set[Any] = set()
    for index, item in enumerate(line):
        messages = _message_list(item.checkpoint["channel_values"])
        keys = [_key(m, i) for i, m in enumerate(messages)]
        new = [
            (m, k)
            for m, k in zip(messages, keys, strict=True)
            if m.type == "human" and k not in before_keys
        ]
        if index == 0 and item.parent_config is not None:
            # The line starts past a parent that was pruned: the turns of the earlier
            # messages it holds lost their checkpoints; only the last may be the turn
            # this checkpoint is part of.
            new = new[-1:]
        if new:
            starts.append((index, *new[0]))
        before_keys = set(keys)
    bounds: list[tuple[int | None, int]] = []  # (before, start) per turn
    for index, _, _ in starts:
        # A run's input checkpoint (one per run) holds the message only as pending input.
        start = index - 1 if index > 0 and _source(line[index - 1]) == "input" else index
        bounds.append((start - 1 if start > 0 else None, start))
    turns: list[Turn] = []
    for number, ((first, human, wanted), (before, start)) in enumerate(
        zip(starts, bounds, strict=True), 1
    ):
        end = len(line) - 1
        if number < len(starts):
            next_before = bounds[number][0]
            end = next_before if next_before is not None and next_before >= first else first
        at_end = _message_list(line[end].checkpoint["channel_values"])
        keys = [_key(m, i) for i, m in enumerate(at_end)]
        position = keys.index(wanted) if wanted in keys else len(at_end)
        own = tuple(at_end[position:])
        calls = tuple(
            {"name": c.get("name"), "args": c.get("args"), "id": c.get("id")}
            for m in own
            if m.type == "ai"
            for c in (getattr(m, "tool_calls", None) or [])
        )
        start_id = str(line[start].checkpoint["id"])
        turns.append(
            Turn(
                number=number,
                thread_id=thread_id,
                before_checkpoint_id=(
                    str(line[before].checkpoint["id"]) if before is not None else None
                ),
                start_checkpoint_id=start_id,
                end_checkpoint_id=str(line[end].checkpoint["id"]),
                user_message=human,
                messages=own,
                tool_calls=calls,
                usage=_usage(own),
                inherited=fork_checkpoint_id is not None and start_id <= fork_checkpoint_id,
            )
        )
    return turns


def _branch_line(
    conn: Connection, store: CheckpointStore, session_id: str, thread_id: str | None
) -> tuple[Branch, list[CheckpointTuple]]:
    row = _session_row(conn, store, session_id)
    branch = _require_branch(conn, store, session_id, row[7] if thread_id is None else thread_id)
    config = {"configurable": {"thread_id": branch.thread_id, "checkpoint_ns": ""}}
    items = list(store.list_checkpoints(conn, config))  # type: ignore[arg-type]
    return branch, _line_of_head(items)


def turns(
    conn: Connection, store: CheckpointStore, session_id: str, thread_id: str | None
) -> list[Turn]:
    branch, line = _branch_line(conn, store, session_id, thread_id)
    return _turns_of(branch.thread_id, branch.fork_checkpoint_id, line)


def messages(
    conn: Connection,
    store: CheckpointStore,
    session_id: str,
    thread_id: str | None,
    limit: int | None,
) -> list[BaseMessage]:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
        raise TypeError(f"limit must be an int or None, not {type(limit).__name__}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be a non-negative integer or None, not {limit!r}")
    row = _session_row(conn, store, session_id)
    branch = _require_branch(conn, store, session_id, row[7] if thread_id is None else thread_id)
    head = store.get_tuple(
        conn, {"configurable": {"thread_id": branch.thread_id, "checkpoint_ns": ""}}
    )
    found = _message_list(head.checkpoint["channel_values"]) if head is not None else []
    if limit is None:
        return found
    return found[len(found) - limit :] if limit else []


def _fork_point(line: Sequence[CheckpointTuple], turn: Turn, session_id: str) -> str:
    """Where a branch that redoes ``turn`` starts: the checkpoint before it; for a first
    turn that came as the thread's first input, that input checkpoint (the branch's next
    input replaces the input still pending there)."""
    if turn.before_checkpoint_id is not None:
        return turn.before_checkpoint_id
    start = next(t for t in line if t.checkpoint["id"] == turn.start_checkpoint_id)
    if _source(start) == "input":
        return turn.start_checkpoint_id
    if start.parent_config is not None:
        raise TurnNotFoundError(
            f"turn {turn.number} of session {session_id!r}: the checkpoint before it was "
            "pruned, so there is nothing to branch from to redo it"
        )
    raise TurnNotFoundError(
        f"turn {turn.number} of session {session_id!r} starts its thread: there is no "
        "checkpoint before it to branch from"
    )


def branch_at_turn(
    conn: Connection,
    store: CheckpointStore,
    session_id: str,
    selector: tuple[str, Any],
    name: str | None,
    thread_id: str | None,
    make_current: bool,
) -> Branch:
    """A new branch that continues from before one turn of a branch (the current one by
    default): ``selector`` is ``("number", n)``, ``("text", text)`` (the first turn whose
    user message contains it, case-insensitively) or ``("last", None)``."""
    branch, line = _branch_line(conn, store, session_id, thread_id)
    found = _turns_of(branch.thread_id, branch.fork_checkpoint_id, line)
    kind, value = selector
    where = f"branch {branch.name!r} (thread {branch.thread_id}) of session {session_id!r}"
    turn: Turn | None
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"a turn number must be an int, not {type(value).__name__}")
        turn = found[value - 1] if 1 <= value <= len(found) else None
        if turn is None:
            raise TurnNotFoundError(f"{where} has {len(found)} turns; there is no turn {value}")
    elif kind == "text":
        if not isinstance(value, str):
            raise TypeError(f"branch_from_text needs a str, not {type(value).__name__}")
        if not value:
            raise ValueError("branch_from_text needs a non-empty text")
        needle = value.casefold()
        turn = next((t for t in found if needle in t.text.casefold()), None)
        if turn is None:
            raise TurnNotFoundError(f"no user turn of {where} contains {value!r}")
    else:
        turn = found[-1] if found else None
        if turn is None:
            raise TurnNotFoundError(f"{where} has no user turn to undo")
    ref = CheckpointRef(
        checkpoint_id=_fork_point(line, turn, session_id), thread_id=branch.thread_id
    )
    return create_branch(conn, store, session_id, ref, name, None, make_current)


def create_branch_for(
    conn: Connection,
    store: CheckpointStore,
    session_id: str,
    owner: str | None,
    ref: CheckpointRef,
    name: str | None,
    thread_id: str | None,
    make_current: bool,
) -> Branch:
    """:func:`create_branch`; for a scoped manager, a ``thread_id`` taken by another
    user's session is refused without naming that session."""
    if thread_id is not None:
        thread_id = new_thread_id(thread_id)
    _check_thread_free(conn, store, owner, thread_id)
    return create_branch(conn, store, session_id, ref, name, thread_id, make_current)


def scoped_with_owner(
    conn: Connection,
    store: CheckpointStore,
    owner: str | None,
    fn: Any,
    session_id: str,
    *args: Any,
) -> tuple[Any, str | None]:
    """:func:`scoped`, also returning the session's user (for the event it causes)."""
    row = _require_owned(conn, store, owner, session_id)
    return fn(conn, store, session_id, *args), row[1]


# --- search and usage (the message index, langgraph_agentgit.storage.search) -------------

DEFAULT_SEARCH_LIMIT = 20
MAX_SEARCH_LIMIT = 1000


def search_role(role: object) -> str | None:
    """A role filter as stored (``"user"`` is ``"human"``, ``"assistant"`` is ``"ai"``);
    ``ValueError`` for another value."""
    if role is None:
        return None
    if isinstance(role, str):
        wanted = search_index.ROLE_ALIASES.get(role.lower(), role.lower())
        if wanted in search_index.ROLES:
            return wanted
    known = ", ".join([*search_index.ROLES, *search_index.ROLE_ALIASES])
    raise ValueError(f"unknown role {role!r}: use one of {known}")


def search_limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_SEARCH_LIMIT:
        raise ValueError(f"limit must be an int from 1 to {MAX_SEARCH_LIMIT}, not {limit!r}")
    return limit


def search(
    conn: Connection,
    store: CheckpointStore,
    owner: str | None,
    query: str,
    user_id: str | None,
    session_id: str | None,
    role: str | None,
    limit: int,
) -> list[SearchHit]:
    """:meth:`SessionManager.search` in one read transaction."""
    parsed = search_index.Query.parse(query)
    role = search_role(role)
    limit = search_limit(limit)
    user_id = check_user_id(user_id)
    if session_id is not None and not isinstance(session_id, str):
        raise TypeError(f"a session id must be a string, not {type(session_id).__name__}")
    if owner is not None:
        if user_id is not None and user_id != owner:
            return []
        user_id = owner
    if session_id is not None:
        row = _require_owned(conn, store, owner, session_id)
        if user_id is not None and row[1] != user_id:
            return []
    if not parsed.terms:
        return []
    sql = store.sql
    scope = _search_scope(conn, store, session_id, user_id, role)
    if scope is not None and scope.threads == ():
        return []
    expression = parsed.expression(sql.SEARCH_SYNTAX, scope)
    rank_expression = parsed.expression(sql.SEARCH_SYNTAX)

    def wanted(sid: str | None, uid: str | None) -> bool:
        return (session_id is None or sid == session_id) and (user_id is None or uid == user_id)

    # A message is indexed once, on the thread that wrote it; forks of that thread
    # (another session's adopted fork, a branch left after its parent was deleted) hold
    # it too. Only threads with forks need that walk.
    parents = {int(r[0]) for r in conn.execute(sql.SEARCH_PARENT_THREADS)}
    heirs: dict[tuple[int, str], list[tuple[str, str | None, str | None]]] = {}
    # A row of a line its thread no longer lists (kept for a fork) is only the fork's.
    dropped: dict[int, frozenset[str]] = {}

    def holds(pk: int, checkpoint_id: str) -> bool:
        if pk not in dropped:
            dropped[pk] = store.dropped(conn, pk) if pk in parents else frozenset()
        return checkpoint_id not in dropped[pk]

    lineages: dict[str, Any] = {}

    writers: dict[tuple[str, Any, Any], tuple[str, Any, Any, Any, int] | None] = {}

    def writer(
        pk: int, thread_id: str, row: tuple[Any, Any, Any], msg_key: Any, sid: str | None
    ) -> tuple[str, Any, Any, Any, int]:
        """A fork's row of a message, or the row of the oldest thread it descends from
        in the same session that holds the message too, at a checkpoint it still lists:
        the hit is on the thread that wrote it, whatever the rows' order (the fork's
        rows, indexed later, come first among equal ranks, and the other one may be
        past the rows read). One query for all the ancestors."""
        key = (thread_id, msg_key, sid)
        if key not in writers:
            writers[key] = None
            if thread_id not in lineages:
                lineages[thread_id] = store.lineage(conn, thread_id)
            lineage = lineages[thread_id]
            ancestors = [e.pk for e in lineage.entries[1:]] if lineage is not None else []
            if ancestors:
                rows = {
                    int(r[0]): r
                    for r in conn.execute(
                        sql.SEARCH_LISTED_ROWS_OF_MESSAGE, (json.dumps(ancestors), msg_key)
                    )
                }
                for ancestor in reversed(ancestors):
                    r = rows.get(ancestor)
                    if r and r[4] is not None and r[5] == sid and holds(ancestor, r[1]):
                        writers[key] = (str(r[4]), r[1], r[2], r[3], ancestor)
                        break
        return writers[key] or (thread_id, *row, pk)

    def candidates(want: int) -> tuple[list[tuple[Any, ...]], bool]:
        """The best matches, in rank order, of ``want`` messages (one per session), and
        whether that is all there are. A message held by a fork as well as by the thread
        it forked from matches once on each, at the same rank: the rows of equal rank
        after the last message are taken too (and a fork's row is taken as its
        ancestor's, see ``writer``)."""
        fetch = want + 16
        while True:
            window = max(search_index.RANK_WINDOW, fetch)
            params = sql.search_match_params(expression, rank_expression, window, fetch)
            rows = conn.execute(sql.SEARCH_MATCH, params).fetchall()
            found: list[tuple[Any, ...]] = []
            keys: set[tuple[Any, Any]] = set()
            passed = False
            for row in rows:
                doc, pk, thread_id, checkpoint_id, blob_id, pos, kind, sid, uid, rank, msg_key = (
                    row[:11]
                )
                if doc is None or pk is None or (role is not None and kind != role):
                    continue
                heir = None
                if thread_id is None or not wanted(sid, uid) or not holds(pk, checkpoint_id):
                    key = (int(pk), str(checkpoint_id))
                    if key not in heirs:
                        heirs[key] = _heirs(conn, store, *key) if key[0] in parents else []
                    heir = next((h for h in heirs[key] if wanted(h[1], h[2])), None)
                    if heir is None:
                        continue
                    thread_id, sid, uid = heir
                if heir is not None or row[11] is not None:
                    # A fork may hold the message indexed under the thread it forked from
                    # as well (a keep_latest prune made its inherited rows its own).
                    thread_id, checkpoint_id, blob_id, pos, pk = writer(
                        int(pk), str(thread_id), (checkpoint_id, blob_id, pos), msg_key, sid
                    )
                if parsed.more and not _holds_all(store, conn, parsed, int(blob_id), int(pos)):
                    continue
                if len(keys) >= want:
                    if rank != found[-1][6]:
                        return found, False
                    if (msg_key, sid) not in keys:
                        passed = True  # a message past the limit
                        continue
                found.append(
                    (thread_id, checkpoint_id, blob_id, pos, kind, sid, rank, int(pk), msg_key)
                )
                keys.add((msg_key, sid))
            if len(rows) < fetch:
                return found, not passed
            if len(keys) >= want:
                # Twins further down a long run of equal rank (the same text in many
                # messages) are not looked for: the hit may then be the fork's.
                return found, False
            fetch *= 4

    # Hits a prune left nowhere, and duplicates, are dropped only once read: ask for
    # more messages (at least twice as many) until there are ``limit`` hits or no more.
    want = limit
    while True:
        found, complete = candidates(want)
        hits = _search_hits(conn, store, parsed, found)
        if len(hits) >= limit or complete:
            return hits[:limit]
        want += max(limit - len(hits), want)


def _search_hits(
    conn: Connection,
    store: CheckpointStore,
    parsed: search_index.Query,
    found: list[tuple[Any, ...]],
) -> list[SearchHit]:
    """The hits of ``search``'s matching rows, in their order: read, placed on a
    checkpoint their branch still lists, one per message in a session."""
    sql = store.sql
    # Where each hit is shown: its checkpoint, unless a prune removed or hid it there.
    pairs = json.dumps(sorted({(f[7], str(f[1])) for f in found}))
    listed = {(int(r[0]), str(r[1])) for r in conn.execute(sql.SEARCH_LISTED_AMONG, (pairs,))}
    values = store.blobs.load(conn, {int(f[2]) for f in found})
    lineages: dict[str, Any] = {}

    def forked_from(fork: str, ancestor: str) -> bool:
        """Whether branch ``fork`` descends from branch ``ancestor`` by fork links, still
        inheriting or not (a keep_latest prune made what it inherited its own)."""
        for thread in (fork, ancestor):
            if thread not in lineages:
                lineages[thread] = store.lineage(conn, thread)
        if lineages[fork] is None or lineages[ancestor] is None:
            return False
        return any(e.pk == lineages[ancestor].pk for e in lineages[fork].entries[1:])

    hits: list[SearchHit | None] = []
    # A message a fork holds indexed under it as well as under the thread it forked from
    # (the first checkpoint that held it there is on another line, after time travel and
    # a prune; or a keep_latest prune made the fork's inherited rows its own): one hit in
    # a session, on the thread that wrote it, where both are still held. Sibling
    # branches that each wrote it keep a hit each.
    by_key: dict[tuple[Any, Any], list[int]] = {}
    for thread_id, checkpoint_id, blob_id, pos, kind, sid, rank, pk, msg_key in found:
        items = values.get(int(blob_id))
        message = items[int(pos)] if isinstance(items, list) and 0 <= pos < len(items) else None
        if not isinstance(message, BaseMessage):
            raise CorruptDataError(
                "the message index names a message that is not stored there (run "
                "`agentgit reindex`)",
                blob_id=int(blob_id),
            )
        if (pk, str(checkpoint_id)) not in listed:
            moved = _remaining(conn, store, pk, str(thread_id), str(checkpoint_id), message)
            if moved is None:
                continue  # no checkpoint the branch lists holds it any more
            checkpoint_id = moved
        hit = SearchHit(
            session_id=sid,
            thread_id=str(thread_id),
            checkpoint_id=str(checkpoint_id),
            message_id=message.id,
            role=str(kind),
            snippet=search_index.snippet(search_index.message_text(message), parsed),
            rank=float(rank or 0.0),
            message=message,
        )
        twins = {
            i: kept.thread_id
            for i in by_key.get((msg_key, sid), ())
            if (kept := hits[i]) is not None
        }
        if any(t == hit.thread_id or forked_from(hit.thread_id, t) for t in twins.values()):
            continue
        heirs = [i for i, t in twins.items() if forked_from(t, hit.thread_id)]
        if heirs:
            # In the place of the first of the forks found before it.
            hits[heirs[0]] = hit
            for i in heirs[1:]:
                hits[i] = None
            continue
        by_key.setdefault((msg_key, sid), []).append(len(hits))
        hits.append(hit)
    return [h for h in hits if h is not None]


def _search_scope(
    conn: Connection,
    store: CheckpointStore,
    session_id: str | None,
    user_id: str | None,
    role: str | None,
) -> search_index.Scope | None:
    """What a filtered search asks the index for besides its words (None: nothing, as
    for an index built before scope tokens, whose matches are filtered as they come).
    ``threads`` is empty when no thread is in scope, None when too many are to name."""
    if (session_id is None and user_id is None and role is None) or not search_index.scoped(
        conn, store
    ):
        return None
    threads: tuple[int, ...] | None = None
    if session_id is not None or user_id is not None:
        limit = search_index.MAX_SCOPE_THREADS
        found = conn.execute(
            store.sql.SEARCH_SCOPE_THREADS,
            (session_id, session_id, user_id, user_id, limit + 1),
        ).fetchall()
        threads = tuple(sorted(int(r[0]) for r in found)) if len(found) <= limit else None
    return search_index.Scope(threads, role)


# How many later checkpoints a hit whose checkpoint was pruned is looked for in (each is
# read whole): a message that none of them holds is left out of the hits.
_MOVED_HIT_CHECKPOINTS = 64


def _remaining(
    conn: Connection,
    store: CheckpointStore,
    pk: int,
    thread_id: str,
    checkpoint_id: str,
    message: BaseMessage,
) -> str | None:
    """Where a hit on thread ``pk``'s row at ``checkpoint_id``, which thread ``pk`` no
    longer lists (a prune removed or hid it), reported on ``thread_id`` (that thread, or
    a fork inheriting the row), is shown: the first checkpoint of ``pk`` from it on that
    ``thread_id`` lists, as ``get_tuple`` reads it, whose state holds ``message``, among
    the first ``_MOVED_HIT_CHECKPOINTS`` it lists. None when none does (the message went
    with what was pruned, or an edit replaced it): the hit is left out."""
    found = conn.execute(store.sql.SEARCH_CHECKPOINTS_FROM, (pk, checkpoint_id)).fetchall()
    named = conn.execute(store.sql.SELECT_THREAD_ID_OF_PK, (pk,)).fetchone()
    own = named is not None and named[0] == thread_id
    lineage = store.lineage(conn, thread_id)
    if lineage is None:
        return None

    def holds(at: str) -> bool:
        config = {
            "configurable": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": at}
        }
        held = store.get_tuple(conn, config)  # type: ignore[arg-type]
        return held is not None and any(
            _same_message(m, message) for m in _message_list(held.checkpoint["channel_values"])
        )

    # A fork's fork checkpoint is another thread's row that the fork lists: the messages
    # indexed there under the fork (its walk up ended at a collected row) are shown there.
    if lineage.entries[0].fork_checkpoint_id == checkpoint_id and holds(checkpoint_id):
        return checkpoint_id
    tried = 0
    for later, hidden in found:
        if own and hidden:
            continue
        tried += 1
        if tried > _MOVED_HIT_CHECKPOINTS:
            break
        if not own and store.find_row(conn, lineage, "", str(later)) is None:
            continue
        if holds(str(later)):
            return str(later)
    return None


def _same_message(a: BaseMessage, b: BaseMessage) -> bool:
    return a is b or (a.id == b.id and a.type == b.type and a.content == b.content)


def _holds_all(
    store: CheckpointStore, conn: Connection, query: search_index.Query, blob_id: int, pos: int
) -> bool:
    """Whether the indexed message at (``blob_id``, ``pos``) has every word of ``query``,
    those past the words the index was asked for included."""
    items = store.blobs.load(conn, {blob_id}).get(blob_id)
    message = items[pos] if isinstance(items, list) and 0 <= pos < len(items) else None
    return isinstance(message, BaseMessage) and query.holds_all(search_index.message_text(message))


def _heirs(
    conn: Connection, store: CheckpointStore, pk: int, checkpoint_id: str
) -> list[tuple[str, str | None, str | None]]:
    """The live threads that inherit thread ``pk``'s row at ``checkpoint_id`` (whose
    history holds that checkpoint: forked from it or from one of its descendants,
    directly or through other forks, live or deleted), nearest and oldest first, each
    with its session and user. Decided by the fork checkpoint's chain, not by comparing
    ids: a checkpoint of a branch the source left by time travel is older than a later
    fork point without being in that fork's history (see CheckpointStore.searchable)."""
    out: list[tuple[str, str | None, str | None]] = []
    queue = [pk]
    seen = {pk}
    while queue:
        at = queue.pop(0)
        for child, thread_id, fork_id, inherits in conn.execute(
            store.sql.SEARCH_CHILD_THREADS, (at,)
        ).fetchall():
            if child in seen or fork_id is None:
                continue
            seen.add(child)
            # A fork that stopped inheriting (a keep_latest prune made what it inherited
            # its own) may have forks made before that, which still see these rows.
            queue.append(child)
            if (
                thread_id is not None
                and inherits
                and store.search.sees(
                    _ancestry(conn, store, int(child), str(thread_id)), pk, checkpoint_id
                )
            ):
                owner = conn.execute(store.sql.SEARCH_SESSION_OF_THREAD, (thread_id,)).fetchone()
                out.append(
                    (str(thread_id), owner[0] if owner else None, owner[1] if owner else None)
                )
    return out


def _ancestry(
    conn: Connection,
    store: CheckpointStore,
    pk: int,
    thread_id: str,
    lineage: Lineage | None = None,
) -> list[tuple[int, frozenset[str] | None]]:
    """The rows thread ``pk`` (``thread_id``, whose ``lineage`` the caller may have read
    already) sees (``search.Ancestry``), cached."""

    found = lineage or store.lineage(conn, thread_id)
    if found is None:
        return [(pk, None)]
    return store.search.ancestry(
        pk, thread_id, lambda: store.searchable(conn, found), found.signature
    )


def usage(
    conn: Connection, store: CheckpointStore, session_id: str, thread_id: str | None
) -> Usage:
    """:meth:`SessionManager.usage` in one read transaction."""
    if thread_id is None:
        threads = [b.thread_id for b in _branches(conn, store, session_id)]
    else:
        threads = [_require_branch(conn, store, session_id, thread_id).thread_id]
    rows: dict[int, tuple[Any, ...]] = {}
    for branch in threads:
        lineage = store.lineage(conn, branch)
        if lineage is not None:
            pk = lineage.entries[0].pk
            entries = _ancestry(conn, store, pk, branch, lineage)
            dropped = store.dropped(conn, pk)
            seen = store.search.usage_rows(conn, entries, dropped)
            fork = lineage.entries[0]
            if pk in store.search.broken and fork.fork_rid is not None:
                # A fork whose walk ends at a collected row, before its first step
                # indexes its fork checkpoint's messages under it: counted from there.
                found = conn.execute(store.sql.SELECT_CHECKPOINT_BY_RID, (fork.fork_rid,))
                row = found.fetchone()
                if row is not None:
                    for doc in search_index.fork_point_docs(conn, store, str(row[8])):
                        tokens = (doc.input_tokens, doc.output_tokens, doc.total_tokens)
                        counted = (pk, str(row[3]), doc.role, doc.tool_calls, *tokens, doc.turn)
                        seen.setdefault(doc.key, counted)
            for key, usage_row in seen.items():
                rows.setdefault(key, usage_row)
    counts = search_index.count(rows)
    return Usage(
        session_id=session_id,
        thread_id=threads[0] if thread_id is not None else None,
        turns=counts.turns,
        messages=counts.messages,
        tool_calls=counts.tool_calls,
        tokens=TokenUsage(counts.input_tokens, counts.output_tokens, counts.total_tokens),
    )


def usages(
    conn: Connection, store: CheckpointStore, owner: str | None, session_ids: Sequence[str]
) -> dict[str, Usage]:
    """:func:`usage` of several sessions (the ones ``owner`` owns) in one transaction."""
    out = {}
    for session_id in session_ids:
        _require_owned(conn, store, owner, session_id)
        out[session_id] = usage(conn, store, session_id, None)
    return out
