"""Schema, migrations and every SQL statement the package runs.

All SQL lives here as named constants; ``backends/postgres/sql.py`` is the same module
for PostgreSQL (the storage logic is given one of them, see ``storage/backend.py``).
Statements are always parameterized; the few that take a variable-length set of ids
receive it as one JSON array parameter and unpack it with ``json_each``, so no statement
text is ever built from user data.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

# --- migrations -------------------------------------------------------------------------
# Each entry is one forward step; entry N (0-based) moves the schema from version N to
# N + 1. Never edit an entry that has shipped: append a new one.

_MIGRATION_1_CORE = """
CREATE TABLE IF NOT EXISTS agentgit_threads (
    pk INTEGER PRIMARY KEY AUTOINCREMENT,
    -- NULL once the thread is deleted while a fork still needs some of its rows.
    thread_id TEXT,
    parent_pk INTEGER,
    -- The checkpoint (root namespace) the thread was forked at, and its row.
    fork_checkpoint_id TEXT,
    fork_rid INTEGER,
    -- 0 after prune(): the thread's history no longer reaches into its parent.
    inherits INTEGER NOT NULL DEFAULT 1,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS agentgit_threads_by_id ON agentgit_threads(thread_id);
CREATE INDEX IF NOT EXISTS agentgit_threads_by_parent ON agentgit_threads(parent_pk);

CREATE TABLE IF NOT EXISTS agentgit_checkpoints (
    rid INTEGER PRIMARY KEY AUTOINCREMENT,
    thread_pk INTEGER NOT NULL,
    ns TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    parent_checkpoint_id TEXT,
    parent_rid INTEGER,
    -- 1: deleted for its own thread but kept because a fork still inherits it.
    hidden INTEGER NOT NULL DEFAULT 0,
    run_id TEXT,
    body BLOB NOT NULL,
    metadata TEXT NOT NULL,
    -- JSON object: channel -> blob id (0 = channel present but empty).
    refs TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS agentgit_checkpoints_key
    ON agentgit_checkpoints(thread_pk, ns, checkpoint_id);
CREATE INDEX IF NOT EXISTS agentgit_checkpoints_by_run
    ON agentgit_checkpoints(run_id) WHERE run_id IS NOT NULL;

-- No foreign key to checkpoints: LangGraph's async durability may store writes first.
CREATE TABLE IF NOT EXISTS agentgit_writes (
    thread_pk INTEGER NOT NULL,
    ns TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    channel TEXT NOT NULL,
    task_path TEXT NOT NULL DEFAULT '',
    blob_id INTEGER NOT NULL,
    PRIMARY KEY (thread_pk, ns, checkpoint_id, task_id, idx)
) WITHOUT ROWID;

-- Content-addressed values. kind 0: a serialized value; kind 1: a list stored as a
-- delta (base list + new tail); kind 2: a list stored as an index of slices of other
-- blobs. AUTOINCREMENT so an id is never reused and can be cached forever.
CREATE TABLE IF NOT EXISTS agentgit_blobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    -- NULL for list deltas, which are not deduplicated.
    digest BLOB UNIQUE,
    kind INTEGER NOT NULL,
    -- JSON array of the blob ids this one is built from (kinds 1 and 2).
    deps TEXT,
    data BLOB NOT NULL
);
"""

_MIGRATION_2_COUNTS = """
ALTER TABLE agentgit_threads ADD COLUMN checkpoint_count INTEGER NOT NULL DEFAULT 0;

UPDATE agentgit_threads SET checkpoint_count = (
    SELECT count(*) FROM agentgit_checkpoints c
    WHERE c.thread_pk = agentgit_threads.pk AND c.ns = '' AND c.hidden = 0
);

-- Counting in triggers keeps the counters in the same transaction as the checkpoint,
-- whichever process writes it.
CREATE TRIGGER IF NOT EXISTS agentgit_count_insert AFTER INSERT ON agentgit_checkpoints
WHEN NEW.ns = '' AND NEW.hidden = 0
BEGIN
    UPDATE agentgit_threads SET checkpoint_count = checkpoint_count + 1
    WHERE pk = NEW.thread_pk;
END;

CREATE TRIGGER IF NOT EXISTS agentgit_count_delete AFTER DELETE ON agentgit_checkpoints
WHEN OLD.ns = '' AND OLD.hidden = 0
BEGIN
    UPDATE agentgit_threads SET checkpoint_count = checkpoint_count - 1
    WHERE pk = OLD.thread_pk;
END;

CREATE TRIGGER IF NOT EXISTS agentgit_count_hide
AFTER UPDATE OF hidden ON agentgit_checkpoints
WHEN NEW.ns = '' AND OLD.hidden <> NEW.hidden
BEGIN
    UPDATE agentgit_threads
    SET checkpoint_count = checkpoint_count + (CASE WHEN NEW.hidden = 0 THEN 1 ELSE -1 END)
    WHERE pk = NEW.thread_pk;
END;
"""

_MIGRATION_3_SESSIONS = """
-- External sessions: a user-visible conversation made of threads (its branches).
-- Timestamps are UTC ISO-8601 text with microseconds, so they sort as text.
CREATE TABLE IF NOT EXISTS agentgit_sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT,
    name TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    -- Last change to the session, including any checkpoint written into its threads.
    updated_at TEXT NOT NULL,
    is_active INTEGER NOT NULL DEFAULT 1,
    metadata TEXT NOT NULL DEFAULT '{}',
    current_thread_id TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS agentgit_sessions_by_activity ON agentgit_sessions(updated_at);
CREATE INDEX IF NOT EXISTS agentgit_sessions_by_user
    ON agentgit_sessions(user_id, updated_at);

-- The threads of each session. Keyed by thread id, not agentgit_threads.pk: a session's
-- first thread has no checkpoints (and so no agentgit_threads row) until the graph runs,
-- and a thread belongs to at most one session. parent_thread_id / fork_checkpoint_id
-- record how the session made the branch and outlive the parent thread's deletion;
-- both are NULL for the session's first thread, which is not a branch.
CREATE TABLE IF NOT EXISTS agentgit_session_threads (
    thread_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    ordinal INTEGER NOT NULL,
    parent_thread_id TEXT,
    fork_checkpoint_id TEXT,
    name TEXT,
    created_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS agentgit_session_threads_order
    ON agentgit_session_threads(session_id, ordinal);

-- Named restore points, unique per session. thread_id: the session thread the
-- checkpoint was found in when it was tagged (a hint; resolution re-checks reachability).
CREATE TABLE IF NOT EXISTS agentgit_tags (
    session_id TEXT NOT NULL,
    name TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (session_id, name)
);

-- A checkpoint written into a session's thread is activity of that session: kept in the
-- same transaction as the checkpoint, whichever process or saver writes it.
CREATE TRIGGER IF NOT EXISTS agentgit_session_activity AFTER INSERT ON agentgit_checkpoints
WHEN NEW.ns = ''
BEGIN
    UPDATE agentgit_sessions
    SET updated_at = strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000+00:00'
    WHERE id = (
        SELECT st.session_id FROM agentgit_threads t
        JOIN agentgit_session_threads st ON st.thread_id = t.thread_id
        WHERE t.pk = NEW.thread_pk
    );
END;
"""

_MIGRATION_4_DELETED_THREADS = """
-- Threads deleted with their session, or as one of its branches. A run still writing
-- into one when it was deleted must not bring it back as an orphan thread: put() refuses
-- to create a thread listed here. create_session() with an explicit thread id takes it
-- off the list.
CREATE TABLE IF NOT EXISTS agentgit_deleted_threads (
    thread_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    deleted_at TEXT NOT NULL
) WITHOUT ROWID;
"""

_MIGRATION_5_HIDDEN_AT = """
-- When a row was hidden (UTC ISO-8601 text). A fork created before that still sees the
-- row in its inherited history; one created after does not, as if it had been copied
-- at its creation. NULL for rows hidden before this migration (seen by every fork).
ALTER TABLE agentgit_checkpoints ADD COLUMN hidden_at TEXT;

-- When a thread stopped inheriting from its parent (prune): forks made before still see
-- the parent's history through it, forks made after do not.
ALTER TABLE agentgit_threads ADD COLUMN stopped_at TEXT;

-- When a pending write was stored (microseconds since the epoch, UTC): a fork sees the
-- writes its source stores at an inherited checkpoint only up to the fork's creation.
-- NULL for writes stored before this migration (seen by every fork).
ALTER TABLE agentgit_writes ADD COLUMN written_at INTEGER;

-- hidden = 2: hidden like 1, but kept because a listed checkpoint rebuilds a
-- DeltaChannel value from its writes. Counts follow "hidden = 0" alone.
DROP TRIGGER IF EXISTS agentgit_count_hide;
CREATE TRIGGER IF NOT EXISTS agentgit_count_hide
AFTER UPDATE OF hidden ON agentgit_checkpoints
WHEN NEW.ns = '' AND (OLD.hidden = 0) <> (NEW.hidden = 0)
BEGIN
    UPDATE agentgit_threads
    SET checkpoint_count = checkpoint_count + (CASE WHEN NEW.hidden = 0 THEN 1 ELSE -1 END)
    WHERE pk = NEW.thread_pk;
END;
"""

_MIGRATION_6_SESSION_LIFECYCLE = """
-- When a session was ended (SessionManager.end_session) and why; both NULL while it is
-- open. Ended sessions do not count toward max_sessions_per_user; reopen_session clears
-- both.
ALTER TABLE agentgit_sessions ADD COLUMN ended_at TEXT;
ALTER TABLE agentgit_sessions ADD COLUMN end_reason TEXT;
-- A user's sessions by name: unique_names numbering and find_session.
CREATE INDEX IF NOT EXISTS agentgit_sessions_by_user_name ON agentgit_sessions(user_id, name);
"""

_MIGRATION_7_UNDO = """
-- Undoing tool side effects (langgraph_agentgit.effects). The effects themselves are
-- derived from the checkpointed messages (AIMessage.tool_calls and ToolMessages); these
-- tables record only what rollbacks undid.
-- One row per rollback made with undo_effects=True: the path it abandoned (from the
-- source thread's head down to, not including, the common ancestor with the target).
-- status: 'running' (handlers being run, or the process died: resume_undo continues it),
-- 'done' (every effect it owned was undone), 'incomplete' (a handler failed, or an
-- effect was in doubt: resume_undo retries).
CREATE TABLE IF NOT EXISTS agentgit_undo_runs (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    source_thread_id TEXT NOT NULL,
    head_checkpoint_id TEXT NOT NULL,
    base_checkpoint_id TEXT,
    target_checkpoint_id TEXT NOT NULL,
    branch_thread_id TEXT NOT NULL,
    on_error TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE INDEX IF NOT EXISTS agentgit_undo_runs_by_session
    ON agentgit_undo_runs(session_id, created_at);

-- One row per effect a rollback claimed, keyed by the effect (the ToolMessage's id), so
-- that an effect is undone at most once whichever rollback, branch or process gets to it
-- first. status: 'pending' (claimed, handler not started), 'running' (handler started
-- and not reported: in doubt after a crash), 'done', 'failed' (may be claimed again).
CREATE TABLE IF NOT EXISTS agentgit_undone_effects (
    session_id TEXT NOT NULL,
    effect_id TEXT NOT NULL,
    run_id TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    checkpoint_id TEXT NOT NULL,
    tool_call_id TEXT,
    tool_name TEXT NOT NULL,
    kind TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (session_id, effect_id)
);
CREATE INDEX IF NOT EXISTS agentgit_undone_effects_by_run ON agentgit_undone_effects(run_id);
"""

_MIGRATION_8_EFFECT_OWNER = """
-- The process running an effect's undo handler (hostname, pid, start time as JSON), so a
-- resume tells a live one (running) from a dead one (in doubt).
ALTER TABLE agentgit_undone_effects ADD COLUMN owner TEXT;
"""

_MIGRATION_9_SEARCH = """
-- The message index (langgraph_agentgit.storage.search): one row per message a thread
-- wrote (a message it inherits is its ancestor's row), filled as checkpoints are
-- written. It points at the VALUE blob holding the message (blob_id, pos) instead of
-- holding its text; msg_key hashes the message's id and content.
CREATE TABLE IF NOT EXISTS agentgit_search_docs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    thread_pk INTEGER NOT NULL,
    -- The checkpoint (root namespace) where the thread's history first held it.
    checkpoint_id TEXT NOT NULL,
    blob_id INTEGER NOT NULL,
    pos INTEGER NOT NULL,
    msg_key INTEGER NOT NULL,
    role TEXT NOT NULL,
    -- JSON array of the tool names an AIMessage calls; NULL for none.
    tool_calls TEXT,
    -- AIMessage.usage_metadata; NULL when not reported.
    input_tokens INTEGER,
    output_tokens INTEGER,
    total_tokens INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS agentgit_search_docs_key
    ON agentgit_search_docs(thread_pk, msg_key);
CREATE INDEX IF NOT EXISTS agentgit_search_docs_by_blob ON agentgit_search_docs(blob_id);
-- Contentless (the words are not stored again) and without positions (detail=none: no
-- phrase queries, a third of the size); with its column sizes (columnsize=0 would
-- save a page but makes the table unscannable, which breaks sqlite3's iterdump):
-- rowid = agentgit_search_docs.id. AUTOINCREMENT above keeps a deleted row's id from
-- being given to another: its words stay here until a reindex (SQLite before 3.43
-- cannot delete them from a contentless table).
CREATE VIRTUAL TABLE IF NOT EXISTS agentgit_search_fts
    USING fts5(body, content='', detail=none);
-- A message is indexed while the blob holding it and the thread that wrote it exist.
CREATE TRIGGER IF NOT EXISTS agentgit_search_blob_gone AFTER DELETE ON agentgit_blobs
BEGIN
    DELETE FROM agentgit_search_docs WHERE blob_id = OLD.id;
END;
CREATE TRIGGER IF NOT EXISTS agentgit_search_thread_gone AFTER DELETE ON agentgit_threads
BEGIN
    DELETE FROM agentgit_search_docs WHERE thread_pk = OLD.pk;
END;
-- needs_reindex = 1: checkpoints written before the index existed (or copied without
-- it) are not indexed yet; the first search or usage read rebuilds it.
CREATE TABLE IF NOT EXISTS agentgit_search_state (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    needs_reindex INTEGER NOT NULL
);
INSERT INTO agentgit_search_state(singleton, needs_reindex)
SELECT 1, EXISTS (SELECT 1 FROM agentgit_checkpoints)
WHERE NOT EXISTS (SELECT 1 FROM agentgit_search_state);
"""

_MIGRATION_10_BLOB_OWNER = """
-- Incremental garbage collection (CheckpointStore.collect_garbage): the thread whose
-- write stored a blob. A blob with an owner is referred to only from the rows, writes
-- and blobs of its owner's family (the threads linked by fork parents), so deleting
-- in one family sweeps that family's blobs alone. NULL: possibly shared with another
-- family (stored again by another thread, copied by copy_thread, imported, or from
-- before this version); only a sweep of the whole database frees it.
ALTER TABLE agentgit_blobs ADD COLUMN owner INTEGER;
CREATE INDEX IF NOT EXISTS agentgit_blobs_by_owner ON agentgit_blobs(owner)
    WHERE owner IS NOT NULL;
-- The children of rows a sweep deletes keep their parent's id as text: found through
-- this index, not by reading every row (a copy_thread's rows may hang from the source's).
CREATE INDEX IF NOT EXISTS agentgit_checkpoints_by_parent ON agentgit_checkpoints(parent_rid);
-- Rows deleted by family sweeps since the last whole sweep (debt), and the checkpoint
-- rows that sweep found (rows): the next whole sweep runs once debt * 10 >= rows, so
-- what shared blobs leave behind stays a bounded share of the database.
CREATE TABLE IF NOT EXISTS agentgit_gc_state (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    debt INTEGER NOT NULL,
    rows INTEGER NOT NULL
);
INSERT INTO agentgit_gc_state(singleton, debt, rows)
SELECT 1, 0, 0 WHERE NOT EXISTS (SELECT 1 FROM agentgit_gc_state);
"""

_MIGRATION_11_SEARCH_SCOPE = """
-- Scope tokens (langgraph_agentgit.storage.search): every row indexed from now on holds
-- its thread's and its role's. scoped = 1 once every row does: at once for an index with
-- no rows yet, after a reindex for one built before.
ALTER TABLE agentgit_search_state ADD COLUMN scoped INTEGER NOT NULL DEFAULT 0;
UPDATE agentgit_search_state
SET scoped = CASE WHEN EXISTS (SELECT 1 FROM agentgit_search_docs) THEN 0 ELSE 1 END;
-- A row written without its tokens (by a process of an older version still running on
-- this database, or by its reindex) has scoped = 0 and marks the whole index unscoped
-- again: filtered searches then filter matches, as before, instead of missing it.
ALTER TABLE agentgit_search_docs ADD COLUMN scoped INTEGER NOT NULL DEFAULT 0;
CREATE TRIGGER IF NOT EXISTS agentgit_search_unscoped_row AFTER INSERT ON agentgit_search_docs
WHEN NEW.scoped = 0 BEGIN
    UPDATE agentgit_search_state SET scoped = 0 WHERE singleton = 1;
END;
"""

_MIGRATION_12_DROPPED_LINES_AND_TURNS = """
-- JSON array of root-namespace checkpoint ids (NULL: none) of lines the thread no longer
-- lists and that none it lists descends from, kept only because a fork inherits them
-- (see CheckpointStore._record_dropped). Recorded when a prune or a run deletion hides them,
-- while the parent links that tell them apart still exist: the garbage collector then
-- deletes the rows in between.
ALTER TABLE agentgit_threads ADD COLUMN dropped TEXT;
-- A message's id alone (search.turn_key): an edit in place (same id, new text) is a new
-- row of the index, not a new turn. NULL in rows indexed before (each counts as its own
-- message until a reindex).
ALTER TABLE agentgit_search_docs ADD COLUMN turn_key INTEGER;
-- The threads that lost an index row with a value the collector deleted. A row names
-- the first value that held its message; a list rewritten whole (a message edited or
-- removed) holds the others again, so the message may live on after that value is
-- gone: CheckpointStore.collect_garbage then rebuilds those threads' rows (and their
-- forks') from what they still hold, and empties this table.
CREATE TABLE IF NOT EXISTS agentgit_search_stale (thread_pk INTEGER PRIMARY KEY);
DROP TRIGGER IF EXISTS agentgit_search_blob_gone;
CREATE TRIGGER agentgit_search_blob_gone AFTER DELETE ON agentgit_blobs
BEGIN
    INSERT OR IGNORE INTO agentgit_search_stale(thread_pk)
    SELECT DISTINCT thread_pk FROM agentgit_search_docs WHERE blob_id = OLD.id;
    DELETE FROM agentgit_search_docs WHERE blob_id = OLD.id;
END;
"""

_MIGRATION_13_THREAD_EPOCH = """
-- Bumped whenever what a thread's forks (and its own usage) see of it may change without
-- its lineage changing: rows hidden or collected, dropped lines recorded. A process caches
-- a thread's ancestry under its lineage's epochs, so that a prune or a run deletion made
-- by another process (or earlier in this one) is never read through a stale one.
ALTER TABLE agentgit_threads ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
"""

_MIGRATION_14_PACKS = """
-- Blob kinds 3 (a pack: one list holding the items of several tails) and 4 (a tail
-- packed: its slice of a pack), which older code cannot read (storage.blobs). A tail is
-- packed by deleting its row, marked kind -1, and storing it again under its id: that
-- delete is not the blob going, and must leave the message index as it is.
DROP TRIGGER IF EXISTS agentgit_search_blob_gone;
CREATE TRIGGER agentgit_search_blob_gone AFTER DELETE ON agentgit_blobs
WHEN OLD.kind <> -1
BEGIN
    INSERT OR IGNORE INTO agentgit_search_stale(thread_pk)
    SELECT DISTINCT thread_pk FROM agentgit_search_docs WHERE blob_id = OLD.id;
    DELETE FROM agentgit_search_docs WHERE blob_id = OLD.id;
END;
"""

_MIGRATION_15_ZSTD = """
-- Values compressed on their own may be zstd frames (flag byte 2, storage.blobs), which
-- older code would read as damage. Nothing changes in the tables; the version is what
-- makes older code refuse this database instead.
SELECT 1;
"""

MIGRATIONS: list[str] = [
    _MIGRATION_1_CORE,
    _MIGRATION_2_COUNTS,
    _MIGRATION_3_SESSIONS,
    _MIGRATION_4_DELETED_THREADS,
    _MIGRATION_5_HIDDEN_AT,
    _MIGRATION_6_SESSION_LIFECYCLE,
    _MIGRATION_7_UNDO,
    _MIGRATION_8_EFFECT_OWNER,
    _MIGRATION_9_SEARCH,
    _MIGRATION_10_BLOB_OWNER,
    _MIGRATION_11_SEARCH_SCOPE,
    _MIGRATION_12_DROPPED_LINES_AND_TURNS,
    _MIGRATION_13_THREAD_EPOCH,
    _MIGRATION_14_PACKS,
    _MIGRATION_15_ZSTD,
]

SCHEMA_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS agentgit_schema (
    singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
    version INTEGER NOT NULL
)
"""
GET_SCHEMA_VERSION = "SELECT version FROM agentgit_schema WHERE singleton = 1"
SET_SCHEMA_VERSION = """
INSERT INTO agentgit_schema(singleton, version) VALUES (1, ?)
ON CONFLICT(singleton) DO UPDATE SET version = excluded.version
"""

# --- threads ----------------------------------------------------------------------------

# The thread and every thread it descends from, nearest first (whether or not the thread
# itself still inherits: its forks may). UNION, not UNION ALL: a row is the same each
# time its thread is reached, so a (corrupt) cycle of parent links ends the walk instead
# of running forever; the caller tells it from the last row's parent. Without ORDER BY,
# SQLite yields a recursive CTE's rows in the order it walks them (a FIFO queue).
SELECT_LINEAGE = """
WITH RECURSIVE lineage(
    pk, parent_pk, fork_checkpoint_id, fork_rid, inherits, created_at, stopped_at, epoch
) AS (
    SELECT pk, parent_pk, fork_checkpoint_id, fork_rid, inherits, created_at, stopped_at,
        epoch
    FROM agentgit_threads WHERE thread_id = ?
    UNION
    SELECT t.pk, t.parent_pk, t.fork_checkpoint_id, t.fork_rid, t.inherits, t.created_at,
        t.stopped_at, t.epoch
    FROM agentgit_threads t JOIN lineage l ON t.pk = l.parent_pk
)
SELECT pk, parent_pk, fork_checkpoint_id, fork_rid, inherits, created_at, stopped_at, epoch
FROM lineage
"""
INSERT_THREAD = """
INSERT INTO agentgit_threads(thread_id, parent_pk, fork_checkpoint_id, fork_rid, created_at)
VALUES (?, ?, ?, ?, ?)
RETURNING pk
"""
SELECT_THREAD_PK = "SELECT pk FROM agentgit_threads WHERE thread_id = ?"
SELECT_THREAD_ID_OF_PK = "SELECT thread_id FROM agentgit_threads WHERE pk = ?"
SELECT_DELETED_THREAD = "SELECT session_id FROM agentgit_deleted_threads WHERE thread_id = ?"
INSERT_DELETED_THREAD = """
INSERT INTO agentgit_deleted_threads(thread_id, session_id, deleted_at) VALUES (?, ?, ?)
ON CONFLICT(thread_id) DO UPDATE SET session_id = excluded.session_id
"""
FORGET_DELETED_THREAD = "DELETE FROM agentgit_deleted_threads WHERE thread_id = ?"
SELECT_ALL_THREADS = """
SELECT pk, thread_id, parent_pk, fork_checkpoint_id, inherits FROM agentgit_threads
"""
TOMBSTONE_THREAD = "UPDATE agentgit_threads SET thread_id = NULL WHERE pk = ?"
# A session branch whose thread was deleted through the saver: an empty branch.
DETACH_BRANCH = """
UPDATE agentgit_session_threads SET parent_thread_id = NULL, fork_checkpoint_id = NULL
WHERE thread_id = ?
"""
DELETE_THREAD_ROW = "DELETE FROM agentgit_threads WHERE pk = ?"
# Parameters: the time, then the thread.
STOP_INHERITING = "UPDATE agentgit_threads SET inherits = 0, stopped_at = ? WHERE pk = ?"
# What forks see of the threads (a JSON array of pks) may have changed: rows hidden or
# collected (see the epoch column).
BUMP_THREAD_EPOCHS = """
UPDATE agentgit_threads SET epoch = epoch + 1
WHERE pk IN (SELECT value FROM json_each(?))
"""
SELECT_CHECKPOINT_COUNT = "SELECT checkpoint_count FROM agentgit_threads WHERE thread_id = ?"
SELECT_ROOT_CHECKPOINT_IDS = """
SELECT DISTINCT checkpoint_id FROM agentgit_checkpoints WHERE ns = '' ORDER BY checkpoint_id
"""
HAS_SCHEMA_TABLE = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'agentgit_schema'"

# --- checkpoints ------------------------------------------------------------------------

# A parent that was resolved to a row is stored only as its rid (the id is read back
# through the join), which keeps every checkpoint row 36 bytes smaller.
CHECKPOINT_COLUMNS = (
    "c.rid, c.thread_pk, c.ns, c.checkpoint_id, "
    "coalesce(c.parent_checkpoint_id, p.checkpoint_id), c.parent_rid, "
    "c.body, c.metadata, c.refs"
)
CHECKPOINTS_FROM = "agentgit_checkpoints c LEFT JOIN agentgit_checkpoints p ON p.rid = c.parent_rid"

UPSERT_CHECKPOINT = """
INSERT INTO agentgit_checkpoints(
    thread_pk, ns, checkpoint_id, parent_checkpoint_id, parent_rid, run_id, body, metadata, refs
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(thread_pk, ns, checkpoint_id) DO UPDATE SET
    parent_checkpoint_id = excluded.parent_checkpoint_id,
    parent_rid = excluded.parent_rid,
    run_id = excluded.run_id,
    body = excluded.body,
    metadata = excluded.metadata,
    refs = excluded.refs,
    hidden = 0
RETURNING rid
"""

SELECT_CHECKPOINT_BY_RID = f"SELECT {CHECKPOINT_COLUMNS} FROM {CHECKPOINTS_FROM} WHERE c.rid = ?"

# Rows along parent links from one row, across thread boundaries, nearest first. The
# rows travel in the recursion itself (no ORDER BY, no join afterwards), so SQLite yields
# them as it walks and a reader that stops early does not pay for the whole ancestry.
# UNION ALL keeps it streaming without a temporary index of whole rows; the reader
# (CheckpointStore.chain) stops at a rid it has already seen, so a corrupt cycle of
# parent links cannot make it run forever.
SELECT_CHAIN = f"""
WITH RECURSIVE chain(
    rid, thread_pk, ns, checkpoint_id, parent_id, parent_rid, body, metadata, refs,
    hidden, hidden_at
) AS (
    SELECT {CHECKPOINT_COLUMNS}, c.hidden, c.hidden_at FROM {CHECKPOINTS_FROM} WHERE c.rid = ?
    UNION ALL
    SELECT {CHECKPOINT_COLUMNS}, c.hidden, c.hidden_at FROM chain
    JOIN agentgit_checkpoints c ON c.rid = chain.parent_rid
    LEFT JOIN agentgit_checkpoints p ON p.rid = c.parent_rid
)
SELECT * FROM chain
"""

# Walks parent links from one row until it meets the wanted checkpoint id (or the root).
# UNION: a (corrupt) cycle of parent links ends the walk.
SELECT_CHAIN_MEMBER = f"""
WITH RECURSIVE chain(rid) AS (
    SELECT ?
    UNION
    SELECT c.parent_rid
    FROM agentgit_checkpoints c JOIN chain ON c.rid = chain.rid
    WHERE c.parent_rid IS NOT NULL AND c.checkpoint_id <> ?
)
SELECT {CHECKPOINT_COLUMNS} FROM chain
JOIN agentgit_checkpoints c ON c.rid = chain.rid
LEFT JOIN agentgit_checkpoints p ON p.rid = c.parent_rid
WHERE c.checkpoint_id = ?
LIMIT 1
"""

# Own rows of one thread (all namespaces, or one), newest first. The trailing filters
# are appended from METADATA_FILTER_CLAUSE, each bound as parameters.
SELECT_OWN_CHECKPOINTS = f"""
SELECT {CHECKPOINT_COLUMNS} FROM {CHECKPOINTS_FROM}
WHERE c.thread_pk = ? AND c.hidden = 0
  AND (? IS NULL OR c.ns = ?)
  AND (? IS NULL OR c.checkpoint_id = ?)
  AND (? IS NULL OR c.checkpoint_id < ?)
"""
SELECT_ALL_LIVE_CHECKPOINTS = f"""
SELECT {CHECKPOINT_COLUMNS}, t.thread_id FROM {CHECKPOINTS_FROM}
JOIN agentgit_threads t ON t.pk = c.thread_pk
WHERE t.thread_id IS NOT NULL AND c.hidden = 0
  AND (? IS NULL OR c.ns = ?)
  AND (? IS NULL OR c.checkpoint_id = ?)
  AND (? IS NULL OR c.checkpoint_id < ?)
"""
# Inherited rows of child namespaces: rows of an ancestor thread up to its bound.
SELECT_INHERITED_CHILD_NS = f"""
SELECT {CHECKPOINT_COLUMNS} FROM {CHECKPOINTS_FROM}
WHERE c.thread_pk = ? AND c.ns <> '' AND c.checkpoint_id <= ?
  AND (? IS NULL OR c.ns = ?)
  AND (? IS NULL OR c.checkpoint_id = ?)
  AND (? IS NULL OR c.checkpoint_id < ?)
"""
ORDER_NEWEST_FIRST = " ORDER BY c.checkpoint_id DESC"
LIMIT = " LIMIT ?"


def metadata_filter(key: str, value: Any) -> tuple[str, list[Any]]:
    """The clause (and its parameters) keeping rows whose metadata ``key`` equals the
    scalar ``value`` (``json_extract(...) IS ?``: ``1 == 1.0 == True`` as in Python, and
    ``None`` also matches a missing key). ``key`` was validated by the caller
    (``METADATA_KEY_PATTERN``); its JSON path and the value are bound."""
    return " AND json_extract(c.metadata, ?) IS ?", [f'$."{key}"', value]


# Point lookups used to resolve what a thread sees. For the thread itself ("own") hidden
# rows are excluded; for an ancestor thread every row up to the inherited bound counts.
SELECT_OWN_BY_ID = f"""
SELECT {CHECKPOINT_COLUMNS} FROM {CHECKPOINTS_FROM}
WHERE c.thread_pk = ? AND c.ns = ? AND c.checkpoint_id = ? AND c.hidden = 0
"""
# A put whose parent is hidden (LangGraph's "__copy__" of a checkpoint whose parent
# a delete_for_runs removed): the new row hangs under it, as InMemorySaver's does, so
# that its DeltaChannel values rebuild through the hidden rows kept for that.
SELECT_OWN_HIDDEN_BY_ID = f"""
SELECT {CHECKPOINT_COLUMNS} FROM {CHECKPOINTS_FROM}
WHERE c.thread_pk = ? AND c.ns = ? AND c.checkpoint_id = ? AND c.hidden <> 0
"""
# The common case of a put: the parent is the thread's own row (one statement, no lineage).
SELECT_OWN_BY_THREAD_ID = f"""
SELECT {CHECKPOINT_COLUMNS} FROM {CHECKPOINTS_FROM}
JOIN agentgit_threads t ON t.pk = c.thread_pk
WHERE t.thread_id = ? AND c.ns = ? AND c.checkpoint_id = ? AND c.hidden = 0
"""
SELECT_OWN_LATEST_BY_THREAD_ID = f"""
SELECT {CHECKPOINT_COLUMNS} FROM {CHECKPOINTS_FROM}
JOIN agentgit_threads t ON t.pk = c.thread_pk
WHERE t.thread_id = ? AND c.ns = ? AND c.hidden = 0
ORDER BY c.checkpoint_id DESC LIMIT 1
"""
SELECT_INHERITED_BY_ID = f"""
SELECT {CHECKPOINT_COLUMNS} FROM {CHECKPOINTS_FROM}
WHERE c.thread_pk = ? AND c.ns = ? AND c.checkpoint_id = ? AND c.checkpoint_id <= ?
"""
SELECT_OWN_LATEST = f"""
SELECT {CHECKPOINT_COLUMNS} FROM {CHECKPOINTS_FROM}
WHERE c.thread_pk = ? AND c.ns = ? AND c.hidden = 0
ORDER BY c.checkpoint_id DESC LIMIT 1
"""
SELECT_INHERITED_LATEST = f"""
SELECT {CHECKPOINT_COLUMNS} FROM {CHECKPOINTS_FROM}
WHERE c.thread_pk = ? AND c.ns = ? AND c.checkpoint_id <= ?
ORDER BY c.checkpoint_id DESC LIMIT 1
"""
# Parameters: the time, then the thread (rows hidden earlier keep their time).
HIDE_ALL_OF_THREAD = """
UPDATE agentgit_checkpoints SET hidden = 1, hidden_at = coalesce(hidden_at, ?)
WHERE thread_pk = ? AND hidden <> 1
"""
# The second parameter: a JSON array of rids to keep whatever their age.
HIDE_OLDER_THAN_LATEST = """
UPDATE agentgit_checkpoints SET hidden = 1, hidden_at = ?
WHERE thread_pk = ? AND hidden = 0
  AND rid NOT IN (SELECT value FROM json_each(?))
  AND checkpoint_id < (
    SELECT max(c2.checkpoint_id) FROM agentgit_checkpoints c2
    WHERE c2.thread_pk = agentgit_checkpoints.thread_pk AND c2.ns = agentgit_checkpoints.ns
      AND c2.hidden = 0
)
"""
# The newest live row of each namespace of one thread.
SELECT_OWN_HEADS = f"""
SELECT {CHECKPOINT_COLUMNS} FROM {CHECKPOINTS_FROM}
WHERE c.thread_pk = ? AND c.hidden = 0 AND c.checkpoint_id = (
    SELECT max(c2.checkpoint_id) FROM agentgit_checkpoints c2
    WHERE c2.thread_pk = c.thread_pk AND c2.ns = c.ns AND c2.hidden = 0
)
"""
# Listed rows of a thread whose parent row is hidden: where a walk down a parent chain
# enters hidden rows (a deleted run in the middle of the history, on any path through
# the thread, not only the latest checkpoint's).
SELECT_LISTED_WITH_HIDDEN_PARENT = f"""
SELECT {CHECKPOINT_COLUMNS} FROM {CHECKPOINTS_FROM}
WHERE c.thread_pk = ? AND c.hidden = 0 AND c.parent_rid IN (
    SELECT h.rid FROM agentgit_checkpoints h WHERE h.thread_pk = c.thread_pk AND h.hidden <> 0
)
"""
SELECT_HIDDEN_AMONG = """
SELECT rid, hidden, hidden_at FROM agentgit_checkpoints
WHERE rid IN (SELECT value FROM json_each(?)) AND hidden <> 0
"""
KEEP_ROWS_HIDDEN = """
UPDATE agentgit_checkpoints SET hidden = 2 WHERE rid IN (SELECT value FROM json_each(?))
"""
# Rows of a thread whose parent was copied into it point at the copy instead.
RELINK_PARENT = (
    "UPDATE agentgit_checkpoints SET parent_rid = ? WHERE thread_pk = ? AND parent_rid = ?"
)
HIDE_RUNS = """
UPDATE agentgit_checkpoints SET hidden = 1, hidden_at = ?
WHERE hidden = 0 AND run_id IN (SELECT value FROM json_each(?))
"""
SELECT_THREADS_OF_RUNS = """
SELECT DISTINCT thread_pk FROM agentgit_checkpoints
WHERE run_id IN (SELECT value FROM json_each(?))
"""
SELECT_HIDDEN_RIDS_OF_THREAD = (
    "SELECT rid FROM agentgit_checkpoints WHERE thread_pk = ? AND hidden <> 0"
)
# Live rows that may rebuild a DeltaChannel value from their ancestors' writes.
SELECT_LIVE_DELTA_ROWS = f"""
SELECT {CHECKPOINT_COLUMNS} FROM {CHECKPOINTS_FROM}
WHERE c.thread_pk = ? AND c.hidden = 0
  AND json_extract(c.metadata, '$.counters_since_delta_snapshot') IS NOT NULL
"""
# The second parameter: a JSON array of the rids to keep (hidden = 2); the others of
# the thread that were kept go back to hidden = 1.
KEEP_HIDDEN_ROWS = """
UPDATE agentgit_checkpoints
SET hidden = CASE WHEN rid IN (SELECT value FROM json_each(?)) THEN 2 ELSE 1 END
WHERE thread_pk = ? AND hidden <> 0
"""
SELECT_HIDDEN_OF_THREAD = """
SELECT rid, ns, checkpoint_id FROM agentgit_checkpoints WHERE thread_pk = ? AND hidden = 1
"""
SELECT_THREADS_WITH_HIDDEN = "SELECT DISTINCT thread_pk FROM agentgit_checkpoints WHERE hidden = 1"
# Before rows go, their children keep the parent id as text (it was only a rid).
KEEP_PARENT_IDS_OF_CHILDREN = """
UPDATE agentgit_checkpoints SET parent_checkpoint_id = (
    SELECT p.checkpoint_id FROM agentgit_checkpoints p WHERE p.rid = agentgit_checkpoints.parent_rid
)
WHERE parent_checkpoint_id IS NULL AND parent_rid IN (SELECT value FROM json_each(?))
"""
SELECT_RIDS_OF_THREAD = "SELECT rid FROM agentgit_checkpoints WHERE thread_pk = ?"
DELETE_CHECKPOINT_ROWS = """
DELETE FROM agentgit_checkpoints WHERE rid IN (SELECT value FROM json_each(?))
"""
DELETE_ALL_CHECKPOINTS_OF_THREAD = "DELETE FROM agentgit_checkpoints WHERE thread_pk = ?"

# --- writes -----------------------------------------------------------------------------

# The last parameter of both: when the write was stored (µs since the epoch, UTC).
UPSERT_WRITE = """
INSERT INTO agentgit_writes(
    thread_pk, ns, checkpoint_id, task_id, idx, channel, task_path, blob_id, written_at
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(thread_pk, ns, checkpoint_id, task_id, idx) DO UPDATE SET
    channel = excluded.channel, task_path = excluded.task_path, blob_id = excluded.blob_id,
    written_at = excluded.written_at
"""
INSERT_WRITE_IF_ABSENT = """
INSERT INTO agentgit_writes(
    thread_pk, ns, checkpoint_id, task_id, idx, channel, task_path, blob_id, written_at
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(thread_pk, ns, checkpoint_id, task_id, idx) DO NOTHING
"""
# The write a special channel's upsert is about to replace, and the forks that still
# inherit from its thread: those made after it was stored keep seeing it (put_writes).
SELECT_WRITE = """
SELECT channel, task_path, blob_id, written_at FROM agentgit_writes
WHERE thread_pk = ? AND ns = ? AND checkpoint_id = ? AND task_id = ? AND idx = ?
"""
SELECT_INHERITING_FORKS = """
SELECT pk, fork_checkpoint_id, created_at FROM agentgit_threads
WHERE parent_pk = ? AND inherits = 1
"""
SELECT_WRITES_OF_CHECKPOINT = """
SELECT thread_pk, checkpoint_id, task_id, idx, channel, task_path, blob_id, written_at
FROM agentgit_writes WHERE thread_pk = ? AND ns = ? AND checkpoint_id = ?
"""
# Writes of many checkpoints of several threads in one statement.
SELECT_WRITES = """
SELECT thread_pk, checkpoint_id, task_id, idx, channel, task_path, blob_id, written_at
FROM agentgit_writes
WHERE ns = ?
  AND thread_pk IN (SELECT value FROM json_each(?))
  AND checkpoint_id IN (SELECT value FROM json_each(?))
"""
DELETE_WRITES_OF_THREAD = "DELETE FROM agentgit_writes WHERE thread_pk = ?"
DELETE_WRITES_OF_THREAD_ABOVE = """
DELETE FROM agentgit_writes WHERE thread_pk = ? AND checkpoint_id > ?
"""
DELETE_WRITES_FOR = """
DELETE FROM agentgit_writes
WHERE thread_pk = ? AND ns = ? AND checkpoint_id = ?
"""

# --- blobs ------------------------------------------------------------------------------

# DO UPDATE (a no-op) rather than DO NOTHING so that RETURNING yields the existing id.
# A blob stored again by another thread (or without an owner) loses its owner: it may be
# referred to from another family now (RETURNING says so; the caller then clears the
# owners of what it is built from too).
UPSERT_BLOB = """
INSERT INTO agentgit_blobs(digest, kind, deps, data, owner) VALUES (?, ?, ?, ?, ?)
ON CONFLICT(digest) DO UPDATE SET owner = CASE WHEN owner = excluded.owner THEN owner END
RETURNING id, owner, deps
"""
# The blobs of a JSON array of ids and everything they are built from lose their owner.
SHARE_BLOB_CLOSURE = """
WITH RECURSIVE closure(id) AS (
    SELECT value FROM json_each(?)
    UNION
    SELECT d.value FROM agentgit_blobs b JOIN closure ON b.id = closure.id, json_each(b.deps) d
    WHERE b.deps IS NOT NULL
)
UPDATE agentgit_blobs SET owner = NULL
WHERE id IN (SELECT id FROM closure) AND owner IS NOT NULL
"""
# The blobs a thread's rows and writes refer to (a copy_thread's source): shared then.
SELECT_BLOBS_OF_THREAD = """
SELECT r.value FROM agentgit_checkpoints c, json_each(c.refs) r
WHERE c.thread_pk = ? AND r.value > 0
UNION
SELECT blob_id FROM agentgit_writes WHERE thread_pk = ?
"""
SELECT_BLOBS = """
SELECT id, kind, deps, data FROM agentgit_blobs WHERE id IN (SELECT value FROM json_each(?))
"""
# What packing an index's tails needs to know of them: which are plain values of its
# thread (storage.blobs.BlobStore._pack).
SELECT_BLOB_OWNERS = """
SELECT id, kind, owner FROM agentgit_blobs WHERE id IN (SELECT value FROM json_each(?))
"""
# A tail packed: its row becomes a reference into the pack (kind 4), under the same id.
# PACK_TAILS: the statements, each run for every tail of the pack (executemany), with the
# names of their parameters in order (storage.blobs.BlobStore._put_pack fills them in).
# Mark the row (only while it is still a plain value of the thread packing it: a digest
# hit may have shared it), delete what was marked, store the reference where a row was
# deleted. Not one UPDATE: a row an update shrinks leaves its bytes a hole in its page
# (SQLite merges pages after a delete, not after an update), and new blobs, whose ids only
# grow, never land there. A marked row's delete (kind -1) leaves the message index alone
# (migration 14). The digest goes: it was of the bytes the row held.
PACK_TAILS = (
    ("UPDATE agentgit_blobs SET kind = -1 WHERE id = ? AND kind = 0 AND owner = ?", "id owner"),
    ("DELETE FROM agentgit_blobs WHERE id = ? AND kind = -1", "id"),
    (
        """
INSERT INTO agentgit_blobs(id, digest, kind, deps, data, owner)
SELECT ?, NULL, 4, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM agentgit_blobs WHERE id = ?)
""",
        "id deps data owner id",
    ),
)
# Blobs and, transitively, every blob they are built from (their deps), in one query.
# UNION: a blob reached twice (or a corrupt cycle of deps) is walked once.
SELECT_BLOB_CLOSURE = """
WITH RECURSIVE closure(id) AS (
    SELECT value FROM json_each(?)
    UNION
    SELECT d.value FROM agentgit_blobs b JOIN closure ON b.id = closure.id, json_each(b.deps) d
    WHERE b.deps IS NOT NULL AND json_valid(b.deps) AND json_type(b.deps) = 'array'
)
SELECT b.id, b.kind, b.deps, b.data FROM closure JOIN agentgit_blobs b ON b.id = closure.id
"""
# Mark and sweep: every blob reachable from a checkpoint or a write survives.
DELETE_UNREACHABLE_BLOBS = """
WITH RECURSIVE live(id) AS (
    SELECT r.value FROM agentgit_checkpoints c, json_each(c.refs) r WHERE r.value > 0
    UNION
    SELECT blob_id FROM agentgit_writes
    UNION
    SELECT d.value FROM agentgit_blobs b JOIN live ON b.id = live.id, json_each(b.deps) d
    WHERE b.deps IS NOT NULL
)
DELETE FROM agentgit_blobs WHERE id NOT IN (SELECT id FROM live)
"""

# A family sweep: the threads linked by fork parents to any of a JSON array of thread
# pks (up to their roots, then down to every descendant), as SELECT_ALL_THREADS.
SELECT_FAMILY_THREADS = """
WITH RECURSIVE up(pk) AS (
    SELECT value FROM json_each(?)
    UNION
    SELECT t.parent_pk FROM agentgit_threads t JOIN up ON t.pk = up.pk
    WHERE t.parent_pk IS NOT NULL
), down(pk) AS (
    SELECT pk FROM up
    UNION
    SELECT t.pk FROM agentgit_threads t JOIN down ON t.parent_pk = down.pk
)
SELECT pk, thread_id, parent_pk, fork_checkpoint_id, inherits FROM agentgit_threads
WHERE pk IN (SELECT pk FROM down)
"""
# Blobs owned by a family (a JSON array of its thread pks) that its rows, writes and the
# blobs these are built from no longer reach. All three parameters: the same array.
DELETE_UNREACHABLE_FAMILY_BLOBS = """
WITH RECURSIVE live(id) AS (
    SELECT r.value FROM agentgit_checkpoints c, json_each(c.refs) r
    WHERE c.thread_pk IN (SELECT value FROM json_each(?)) AND r.value > 0
    UNION
    SELECT blob_id FROM agentgit_writes WHERE thread_pk IN (SELECT value FROM json_each(?))
    UNION
    SELECT d.value FROM agentgit_blobs b JOIN live ON b.id = live.id, json_each(b.deps) d
    WHERE b.deps IS NOT NULL
)
DELETE FROM agentgit_blobs
WHERE owner IN (SELECT value FROM json_each(?)) AND id NOT IN (SELECT id FROM live)
"""
SELECT_GC_STATE = "SELECT debt, rows FROM agentgit_gc_state WHERE singleton = 1"
SHARE_BLOBS_OF_OWNER = "UPDATE agentgit_blobs SET owner = NULL WHERE owner = ?"
ADD_GC_DEBT = "UPDATE agentgit_gc_state SET debt = debt + ? WHERE singleton = 1"
# After a whole sweep; the parameter: the checkpoint rows left.
RESET_GC_STATE = "UPDATE agentgit_gc_state SET debt = 0, rows = ? WHERE singleton = 1"
COUNT_CHECKPOINT_ROWS = "SELECT count(*) FROM agentgit_checkpoints"

# --- the message index (langgraph_agentgit.storage.search) -------------------------------

# Keys a thread's lineage already indexed: (thread pk, checkpoint id, key) of the given
# threads and keys; the caller applies each ancestor's bound.
SEARCH_SELECT_KEYS = """
SELECT thread_pk, checkpoint_id, msg_key FROM agentgit_search_docs
WHERE thread_pk IN (SELECT value FROM json_each(?)) AND msg_key IN (SELECT value FROM json_each(?))
"""
SEARCH_INSERT_DOC = """
INSERT INTO agentgit_search_docs(
    thread_pk, checkpoint_id, blob_id, pos, msg_key, role, tool_calls, input_tokens,
    output_tokens, total_tokens, turn_key, scoped
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
ON CONFLICT(thread_pk, msg_key) DO NOTHING
RETURNING id
"""
SEARCH_INSERT_WORDS = "INSERT INTO agentgit_search_fts(rowid, body) VALUES (?, ?)"
# How Query.expression writes a query for SEARCH_MATCH.
SEARCH_SYNTAX = "fts5"


def search_words(words: tuple[str, ...]) -> tuple[Any, ...]:
    """SEARCH_INSERT_DOC's parameters for the words: none (they go to the FTS table)."""
    return ()


def search_match_params(
    expression: str, rank_expression: str, window: int, fetch: int
) -> tuple[Any, ...]:
    """SEARCH_MATCH's parameters. FTS5 ranks rows by the whole match (bm25 over an index
    without positions gives every row the same rank, so hits come newest first)."""
    return (expression, window, fetch)


# (key, checkpoint id, role, tool names, input, output, total tokens, turn key) of one
# thread's rows, up to a checkpoint id (NULL: all).
SEARCH_USAGE_ROWS = """
SELECT msg_key, checkpoint_id, role, tool_calls, input_tokens, output_tokens, total_tokens, turn_key
FROM agentgit_search_docs WHERE thread_pk = ? AND (? IS NULL OR checkpoint_id <= ?)
"""
# Hits, best first: (id, thread pk, thread id (NULL: deleted while a fork inherits the
# row), checkpoint id, blob id, pos, role, session id, user id, rank (higher is better),
# message key).
# Parameters: match expression, window, how many to return. Ranked among the newest
# `window` matches only: FTS5 walks matches newest first and stops there, where ranking
# every match of a word most messages hold would read all of them. The caller filters
# (role, session, user) and asks for more when filters leave too few. The id is NULL
# for words a deleted row left in the FTS table (see agentgit_search_fts).
SEARCH_MATCH = """
SELECT d.id, d.thread_pk, t.thread_id, d.checkpoint_id, d.blob_id, d.pos, d.role,
    st.session_id, s.user_id, -f.rank, d.msg_key, t.parent_pk
FROM (
    SELECT id, rank FROM (
        SELECT rowid AS id, rank FROM agentgit_search_fts WHERE agentgit_search_fts MATCH ?
        ORDER BY rowid DESC LIMIT ?
    ) ORDER BY rank, id DESC LIMIT ?
) f
LEFT JOIN agentgit_search_docs d ON d.id = f.id
LEFT JOIN agentgit_threads t ON t.pk = d.thread_pk
LEFT JOIN agentgit_session_threads st ON st.thread_id = t.thread_id
LEFT JOIN agentgit_sessions s ON s.id = st.session_id
ORDER BY f.rank, f.id DESC
"""
SEARCH_CHILD_THREADS = """
SELECT pk, thread_id, fork_checkpoint_id, inherits FROM agentgit_threads
WHERE parent_pk = ? ORDER BY pk
"""
# Threads that have forks: only a message of one of these can be inherited elsewhere.
SEARCH_PARENT_THREADS = (
    "SELECT DISTINCT parent_pk FROM agentgit_threads WHERE parent_pk IS NOT NULL"
)
# The index rows of one message (parameter 2: its key) on the given threads (1: a JSON
# array of pks) whose checkpoint the thread still lists, with each thread's id and
# session: a fork's hit is moved to the thread that wrote the message.
SEARCH_LISTED_ROWS_OF_MESSAGE = """
SELECT d.thread_pk, d.checkpoint_id, d.blob_id, d.pos, t.thread_id, st.session_id
FROM json_each(?) j
JOIN agentgit_search_docs d ON d.thread_pk = j.value AND d.msg_key = ?
JOIN agentgit_threads t ON t.pk = d.thread_pk
JOIN agentgit_checkpoints c ON c.thread_pk = d.thread_pk AND c.ns = ''
    AND c.checkpoint_id = d.checkpoint_id AND c.hidden = 0
LEFT JOIN agentgit_session_threads st ON st.thread_id = t.thread_id
"""
SEARCH_SESSION_OF_THREAD = """
SELECT st.session_id, s.user_id FROM agentgit_session_threads st
JOIN agentgit_sessions s ON s.id = st.session_id WHERE st.thread_id = ?
"""
# The threads whose rows a search filtered by session (parameters 1-2, NULL: any) and
# user (3-4) may report: those sessions' threads and every thread they descend from (a
# fork sees its ancestors' rows up to where it forked; the caller attributes each row),
# at most parameter 5 of them.
SEARCH_SCOPE_THREADS = """
WITH RECURSIVE scope(pk) AS (
    SELECT t.pk FROM agentgit_session_threads st
    JOIN agentgit_sessions s ON s.id = st.session_id
    JOIN agentgit_threads t ON t.thread_id = st.thread_id
    WHERE (? IS NULL OR st.session_id = ?) AND (? IS NULL OR s.user_id = ?)
    UNION
    SELECT t.parent_pk FROM agentgit_threads t JOIN scope ON t.pk = scope.pk
    WHERE t.parent_pk IS NOT NULL
)
SELECT pk FROM scope LIMIT ?
"""
SEARCH_SCOPED = "SELECT scoped FROM agentgit_search_state WHERE singleton = 1"
SEARCH_SET_SCOPED = "UPDATE agentgit_search_state SET scoped = 1 WHERE singleton = 1"
SEARCH_NEEDS_REINDEX = "SELECT needs_reindex FROM agentgit_search_state WHERE singleton = 1"
SEARCH_SET_NEEDS_REINDEX = "UPDATE agentgit_search_state SET needs_reindex = ? WHERE singleton = 1"
SEARCH_DELETE_ALL_DOCS = "DELETE FROM agentgit_search_docs"
SEARCH_DELETE_ALL_WORDS = (
    "INSERT INTO agentgit_search_fts(agentgit_search_fts) VALUES ('delete-all')"
)
SEARCH_THREADS = """
SELECT pk, thread_id, parent_pk, fork_checkpoint_id, fork_rid, inherits, created_at, stopped_at
FROM agentgit_threads ORDER BY pk
"""
SEARCH_ROOT_ROWS = """
SELECT checkpoint_id, refs FROM agentgit_checkpoints
WHERE thread_pk = ? AND ns = '' ORDER BY checkpoint_id
"""
SEARCH_DOC_COUNT = "SELECT count(*) FROM agentgit_search_docs"
# The checkpoint ids of a thread's index rows whose checkpoint it no longer lists
# (collected after a prune, or hidden and kept for a fork): a fork made after the prune
# holds those messages, but no parent link reaches them (CheckpointStore.searchable).
SEARCH_UNLISTED_CHECKPOINTS = """
SELECT DISTINCT d.checkpoint_id FROM agentgit_search_docs d
WHERE d.thread_pk = ? AND NOT EXISTS (
    SELECT 1 FROM agentgit_checkpoints c
    WHERE c.thread_pk = d.thread_pk AND c.ns = '' AND c.checkpoint_id = d.checkpoint_id
        AND c.hidden = 0
)
"""
# Of the given checkpoint ids (a JSON array), those the thread still has index rows or a
# root-namespace checkpoint row at.
SEARCH_CHECKPOINTS_WITH_DOCS_OR_ROWS = """
SELECT j.value FROM json_each(?) j
WHERE EXISTS (
    SELECT 1 FROM agentgit_search_docs d WHERE d.thread_pk = ? AND d.checkpoint_id = j.value
) OR EXISTS (
    SELECT 1 FROM agentgit_checkpoints c
    WHERE c.thread_pk = ? AND c.ns = '' AND c.checkpoint_id = j.value
)
"""
# Of the given [thread pk, checkpoint id] pairs (a JSON array), those listed (root
# namespace, not hidden): where search hits are shown as they are.
SEARCH_LISTED_AMONG = """
SELECT c.thread_pk, c.checkpoint_id FROM json_each(?) j
JOIN agentgit_checkpoints c ON c.thread_pk = json_extract(j.value, '$[0]') AND c.ns = ''
    AND c.checkpoint_id = json_extract(j.value, '$[1]') AND c.hidden = 0
"""
# A thread's root-namespace checkpoints from an id on, oldest first, with whether each
# is hidden: where a search hit whose checkpoint was pruned is reported instead.
SEARCH_CHECKPOINTS_FROM = """
SELECT checkpoint_id, hidden FROM agentgit_checkpoints
WHERE thread_pk = ? AND ns = '' AND checkpoint_id >= ? ORDER BY checkpoint_id
"""
SELECT_DROPPED = "SELECT dropped FROM agentgit_threads WHERE pk = ?"
SEARCH_STALE_THREADS = "SELECT thread_pk FROM agentgit_search_stale ORDER BY thread_pk"
SEARCH_CLEAR_STALE = "DELETE FROM agentgit_search_stale"
# Threads (a JSON array of pks) to index again from what they hold (search.reindex_stale).
SEARCH_MARK_STALE = """
INSERT OR IGNORE INTO agentgit_search_stale(thread_pk) SELECT value FROM json_each(?)
"""
SEARCH_DELETE_DOCS_OF_THREADS = (
    "DELETE FROM agentgit_search_docs WHERE thread_pk IN (SELECT value FROM json_each(?))"
)
SET_DROPPED = "UPDATE agentgit_threads SET dropped = ?, epoch = epoch + 1 WHERE pk = ?"
# A thread's rows and their parent links (CheckpointStore._record_dropped).
SEARCH_THREAD_LINKS = """
SELECT rid, ns, checkpoint_id, parent_rid, parent_checkpoint_id, hidden
FROM agentgit_checkpoints WHERE thread_pk = ?
"""
SEARCH_EXISTING_RIDS = (
    "SELECT rid FROM agentgit_checkpoints WHERE rid IN (SELECT value FROM json_each(?))"
)

# --- sessions, branches and tags (langgraph_agentgit.sessions) --------------------------
# Counts are never stored here: a branch's checkpoint count is agentgit_threads'
# trigger-maintained checkpoint_count, a session's total is the sum over its threads,
# and its branch count is the number of its threads that were forked.

SESSION_COLUMNS = (
    "s.id, s.user_id, s.name, s.created_at, s.updated_at, s.is_active, s.metadata, "
    "s.current_thread_id, s.ended_at, s.end_reason"
)
INSERT_SESSION = """
INSERT INTO agentgit_sessions(
    id, user_id, name, created_at, updated_at, is_active, metadata, current_thread_id
) VALUES (?, ?, ?, ?, ?, 1, ?, ?)
"""
SELECT_SESSION = f"SELECT {SESSION_COLUMNS} FROM agentgit_sessions s WHERE s.id = ?"
SELECT_SESSIONS = f"""
SELECT {SESSION_COLUMNS} FROM agentgit_sessions s
WHERE (? IS NULL OR s.user_id = ?) AND (? = 0 OR s.is_active = 1)
ORDER BY s.updated_at DESC, s.rowid DESC
LIMIT ? OFFSET ?
"""


def page(limit: int | None, offset: int) -> tuple[int, int]:
    """``LIMIT ? OFFSET ?`` parameters: SQLite spells "no limit" -1."""
    return (-1 if limit is None else limit, offset)


SELECT_SESSION_ID_OF_THREAD = "SELECT session_id FROM agentgit_session_threads WHERE thread_id = ?"
TOUCH_SESSION = "UPDATE agentgit_sessions SET updated_at = ? WHERE id = ?"
SET_CURRENT_THREAD = """
UPDATE agentgit_sessions SET current_thread_id = ?, updated_at = ? WHERE id = ?
"""
SET_SESSION_ACTIVE = "UPDATE agentgit_sessions SET is_active = ?, updated_at = ? WHERE id = ?"
# Ending a session also makes it inactive; reopening makes it active again.
END_SESSION = """
UPDATE agentgit_sessions SET ended_at = ?, end_reason = ?, is_active = 0, updated_at = ?
WHERE id = ?
"""
REOPEN_SESSION = """
UPDATE agentgit_sessions SET ended_at = NULL, end_reason = NULL, is_active = 1, updated_at = ?
WHERE id = ?
"""
# Parameters: user (NULL: everyone) twice, then 1 to count only open (not ended) sessions.
COUNT_SESSIONS = """
SELECT count(*) FROM agentgit_sessions
WHERE (? IS NULL OR user_id = ?) AND (? = 0 OR ended_at IS NULL) AND (? = 0 OR is_active = 1)
"""
# One user's open sessions (user_id NULL is a group of its own), the first to retire
# first: inactive ones, then the least recently active.
SELECT_OPEN_SESSIONS_OF_USER = """
SELECT id FROM agentgit_sessions WHERE user_id IS ? AND ended_at IS NULL
ORDER BY is_active, updated_at, rowid
"""
# Names of one user's sessions equal to a name or starting with "<name> #" (the second
# and third parameters: the name; the fourth and fifth: the name followed by " #").
SELECT_SESSION_NAMES_LIKE = """
SELECT name FROM agentgit_sessions
WHERE user_id IS ? AND (name = ? OR substr(name, 1, length(?)) = ?)
"""
# Sessions named exactly so, or whose id starts with the text (parameters: user or NULL
# twice, the name, the prefix twice), oldest first.
FIND_SESSIONS = """
SELECT id, name FROM agentgit_sessions
WHERE (? IS NULL OR user_id = ?) AND (name = ? OR substr(id, 1, length(?)) = ?)
ORDER BY created_at, rowid
"""
DELETE_SESSION = "DELETE FROM agentgit_sessions WHERE id = ?"

# Branches with their live checkpoint counts (0 for a thread that has not run yet).
BRANCH_COLUMNS = (
    "st.thread_id, st.session_id, st.parent_thread_id, st.fork_checkpoint_id, st.name, "
    "st.created_at, coalesce(t.checkpoint_count, 0)"
)
INSERT_SESSION_THREAD = """
INSERT INTO agentgit_session_threads(
    thread_id, session_id, ordinal, parent_thread_id, fork_checkpoint_id, name, created_at
) VALUES (
    ?, ?,
    (SELECT coalesce(max(ordinal), -1) + 1 FROM agentgit_session_threads WHERE session_id = ?),
    ?, ?, ?, ?
)
"""
SELECT_BRANCHES = f"""
SELECT {BRANCH_COLUMNS} FROM agentgit_session_threads st
LEFT JOIN agentgit_threads t ON t.thread_id = st.thread_id
WHERE st.session_id = ? ORDER BY st.ordinal
"""
SELECT_BRANCHES_OF_SESSIONS = f"""
SELECT {BRANCH_COLUMNS} FROM agentgit_session_threads st
LEFT JOIN agentgit_threads t ON t.thread_id = st.thread_id
WHERE st.session_id IN (SELECT value FROM json_each(?))
ORDER BY st.session_id, st.ordinal
"""
SELECT_BRANCH = f"""
SELECT {BRANCH_COLUMNS} FROM agentgit_session_threads st
LEFT JOIN agentgit_threads t ON t.thread_id = st.thread_id
WHERE st.thread_id = ? AND st.session_id = ?
"""
DELETE_SESSION_THREAD = "DELETE FROM agentgit_session_threads WHERE thread_id = ?"
DELETE_SESSION_THREADS = "DELETE FROM agentgit_session_threads WHERE session_id = ?"

INSERT_TAG = """
INSERT INTO agentgit_tags(session_id, name, checkpoint_id, thread_id, created_at)
VALUES (?, ?, ?, ?, ?)
"""
SELECT_TAG = "SELECT checkpoint_id, thread_id FROM agentgit_tags WHERE session_id = ? AND name = ?"
SELECT_TAGS = """
SELECT name, checkpoint_id FROM agentgit_tags WHERE session_id = ? ORDER BY created_at, rowid
"""
DELETE_TAG = "DELETE FROM agentgit_tags WHERE session_id = ? AND name = ?"
DELETE_TAGS_OF_SESSION = "DELETE FROM agentgit_tags WHERE session_id = ?"

# A thread's own root-namespace checkpoints, oldest first, for timelines (bodies carry
# versions_seen, from which the node that produced each checkpoint is derived). The
# parent id may be stored only as parent_rid, hence the join.
SUMMARY_COLUMNS = (
    "c.rid, c.checkpoint_id, coalesce(c.parent_checkpoint_id, p.checkpoint_id), "
    "c.parent_rid, c.metadata, c.body"
)
SELECT_ROOT_HISTORY = f"""
SELECT {SUMMARY_COLUMNS}
FROM agentgit_checkpoints c JOIN agentgit_threads t ON t.pk = c.thread_pk
LEFT JOIN agentgit_checkpoints p ON p.rid = c.parent_rid
WHERE t.thread_id = ? AND c.ns = '' AND c.hidden = 0
ORDER BY c.checkpoint_id
"""
SELECT_CHECKPOINT_SUMMARY = f"""
SELECT {SUMMARY_COLUMNS}
FROM agentgit_checkpoints c LEFT JOIN agentgit_checkpoints p ON p.rid = c.parent_rid
WHERE c.rid = ?
"""
SELECT_FORK_RID = "SELECT fork_rid FROM agentgit_threads WHERE thread_id = ?"

# Row ids and checkpoint ids along parent links from one row, nearest first (diffs use
# it to find the common ancestor of two checkpoints, across branches). UNION: a
# (corrupt) cycle of parent links ends the walk.
SELECT_ANCESTRY = """
WITH RECURSIVE chain(rid, checkpoint_id, parent_rid) AS (
    SELECT rid, checkpoint_id, parent_rid FROM agentgit_checkpoints WHERE rid = ?
    UNION
    SELECT c.rid, c.checkpoint_id, c.parent_rid
    FROM chain JOIN agentgit_checkpoints c ON c.rid = chain.parent_rid
)
SELECT rid, checkpoint_id FROM chain
"""
# A live thread holding a root-namespace checkpoint, for ids given without a thread.
# Not indexed by checkpoint id alone: only diffs of bare ids outside a session use it.
SELECT_LIVE_THREAD_OF_CHECKPOINT = """
SELECT t.thread_id FROM agentgit_checkpoints c JOIN agentgit_threads t ON t.pk = c.thread_pk
WHERE c.checkpoint_id = ? AND c.ns = '' AND c.hidden = 0 AND t.thread_id IS NOT NULL
ORDER BY c.rid LIMIT 1
"""

# --- undoing tool side effects (langgraph_agentgit.effects) -------------------------------

UNDO_RUN_COLUMNS = (
    "id, session_id, source_thread_id, head_checkpoint_id, base_checkpoint_id, "
    "target_checkpoint_id, branch_thread_id, on_error, status, created_at, finished_at"
)
INSERT_UNDO_RUN = f"""
INSERT INTO agentgit_undo_runs({UNDO_RUN_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
SELECT_UNDO_RUN = f"SELECT {UNDO_RUN_COLUMNS} FROM agentgit_undo_runs WHERE id = ?"
SELECT_UNDO_RUNS = f"""
SELECT {UNDO_RUN_COLUMNS} FROM agentgit_undo_runs WHERE session_id = ? ORDER BY created_at, id
"""
SET_UNDO_RUN_STATUS = "UPDATE agentgit_undo_runs SET status = ?, finished_at = ? WHERE id = ?"
DELETE_UNDO_RUNS_OF_SESSION = "DELETE FROM agentgit_undo_runs WHERE session_id = ?"

EFFECT_CLAIM_COLUMNS = (
    "effect_id, run_id, thread_id, checkpoint_id, tool_call_id, tool_name, kind, status, "
    "attempts, error, updated_at"
)
SELECT_EFFECT_CLAIMS = f"""
SELECT {EFFECT_CLAIM_COLUMNS} FROM agentgit_undone_effects WHERE session_id = ?
ORDER BY updated_at, effect_id
"""
SELECT_EFFECT_CLAIM = f"""
SELECT {EFFECT_CLAIM_COLUMNS} FROM agentgit_undone_effects WHERE session_id = ? AND effect_id = ?
"""
# A claim is taken once: a second rollback (another branch, another process) that gets
# here finds the row and leaves the effect alone.
INSERT_EFFECT_CLAIM = """
INSERT INTO agentgit_undone_effects(
    session_id, effect_id, run_id, thread_id, checkpoint_id, tool_call_id, tool_name, kind,
    status, attempts, error, updated_at
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, NULL, ?)
ON CONFLICT(session_id, effect_id) DO NOTHING
"""
# A failed undo may be claimed again, by any run. Parameters: run, time, session, effect.
RECLAIM_FAILED_EFFECT = """
UPDATE agentgit_undone_effects SET run_id = ?, status = 'pending', updated_at = ?
WHERE session_id = ? AND effect_id = ? AND status = 'failed'
"""
# pending -> running, by the run that holds the claim; exactly one caller sees rowcount 1.
# Parameters: time, owner, session, effect, run, the status it must have ('pending', or
# 'running' when an in-doubt effect is run again on purpose).
START_EFFECT = """
UPDATE agentgit_undone_effects
SET status = 'running', attempts = attempts + 1, updated_at = ?, owner = ?
WHERE session_id = ? AND effect_id = ? AND run_id = ? AND status = ?
"""
# running -> done / failed. Parameters: status, error, time, session, effect, run.
FINISH_EFFECT = """
UPDATE agentgit_undone_effects SET status = ?, error = ?, updated_at = ?
WHERE session_id = ? AND effect_id = ? AND run_id = ? AND status = 'running'
"""
# Claims a stopped run never started go back, for later rollbacks or a resume to take.
RELEASE_PENDING_EFFECTS = """
DELETE FROM agentgit_undone_effects WHERE run_id = ? AND status = 'pending'
"""
SELECT_EFFECT_OWNER = """
SELECT owner FROM agentgit_undone_effects WHERE session_id = ? AND effect_id = ?
"""
DELETE_EFFECT_CLAIMS_OF_SESSION = "DELETE FROM agentgit_undone_effects WHERE session_id = ?"

# --- copying a whole database (langgraph_agentgit.transfer) -------------------------------
# Every row as it is stored, ids included (other rows and the JSON columns refs/deps refer
# to threads.pk, checkpoints.rid and blobs.id). Read in key order; sessions and tags in
# insertion order (rowid), which breaks ties in their listings.

COPY_SELECT_THREADS = """
SELECT pk, thread_id, parent_pk, fork_checkpoint_id, fork_rid, inherits, created_at, stopped_at,
    dropped
FROM agentgit_threads ORDER BY pk
"""
# checkpoint_count starts at 0: the count trigger brings it to the copied rows' count.
COPY_INSERT_THREADS = """
INSERT INTO agentgit_threads(
    pk, thread_id, parent_pk, fork_checkpoint_id, fork_rid, inherits, created_at,
    checkpoint_count, stopped_at, dropped
) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?)
"""
COPY_SELECT_CHECKPOINTS = """
SELECT rid, thread_pk, ns, checkpoint_id, parent_checkpoint_id, parent_rid, hidden, run_id,
    body, metadata, refs, hidden_at
FROM agentgit_checkpoints ORDER BY rid
"""
COPY_INSERT_CHECKPOINTS = """
INSERT INTO agentgit_checkpoints(
    rid, thread_pk, ns, checkpoint_id, parent_checkpoint_id, parent_rid, hidden, run_id,
    body, metadata, refs, hidden_at
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
COPY_SELECT_WRITES = """
SELECT thread_pk, ns, checkpoint_id, task_id, idx, channel, task_path, blob_id, written_at
FROM agentgit_writes ORDER BY thread_pk, ns, checkpoint_id, task_id, idx
"""
COPY_INSERT_WRITES = """
INSERT INTO agentgit_writes(
    thread_pk, ns, checkpoint_id, task_id, idx, channel, task_path, blob_id, written_at
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
COPY_SELECT_BLOBS = "SELECT id, digest, kind, deps, data FROM agentgit_blobs ORDER BY id"
COPY_INSERT_BLOBS = (
    "INSERT INTO agentgit_blobs(id, digest, kind, deps, data) VALUES (?, ?, ?, ?, ?)"
)
COPY_SELECT_SESSIONS = """
SELECT id, user_id, name, created_at, updated_at, is_active, metadata, current_thread_id,
    ended_at, end_reason
FROM agentgit_sessions ORDER BY rowid
"""
COPY_INSERT_SESSIONS = """
INSERT INTO agentgit_sessions(
    id, user_id, name, created_at, updated_at, is_active, metadata, current_thread_id,
    ended_at, end_reason
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
COPY_SELECT_SESSION_THREADS = """
SELECT thread_id, session_id, ordinal, parent_thread_id, fork_checkpoint_id, name, created_at
FROM agentgit_session_threads ORDER BY session_id, ordinal
"""
COPY_INSERT_SESSION_THREADS = """
INSERT INTO agentgit_session_threads(
    thread_id, session_id, ordinal, parent_thread_id, fork_checkpoint_id, name, created_at
) VALUES (?, ?, ?, ?, ?, ?, ?)
"""
COPY_SELECT_TAGS = """
SELECT session_id, name, checkpoint_id, thread_id, created_at FROM agentgit_tags ORDER BY rowid
"""
COPY_INSERT_TAGS = """
INSERT INTO agentgit_tags(session_id, name, checkpoint_id, thread_id, created_at)
VALUES (?, ?, ?, ?, ?)
"""
COPY_SELECT_DELETED_THREADS = """
SELECT thread_id, session_id, deleted_at FROM agentgit_deleted_threads ORDER BY thread_id
"""
COPY_INSERT_DELETED_THREADS = """
INSERT INTO agentgit_deleted_threads(thread_id, session_id, deleted_at) VALUES (?, ?, ?)
"""
COPY_SELECT_UNDO_RUNS = """
SELECT id, session_id, source_thread_id, head_checkpoint_id, base_checkpoint_id,
    target_checkpoint_id, branch_thread_id, on_error, status, created_at, finished_at
FROM agentgit_undo_runs ORDER BY id
"""
COPY_INSERT_UNDO_RUNS = """
INSERT INTO agentgit_undo_runs(
    id, session_id, source_thread_id, head_checkpoint_id, base_checkpoint_id,
    target_checkpoint_id, branch_thread_id, on_error, status, created_at, finished_at
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
COPY_SELECT_UNDONE_EFFECTS = """
SELECT session_id, effect_id, run_id, thread_id, checkpoint_id, tool_call_id, tool_name, kind,
    status, attempts, error, updated_at
FROM agentgit_undone_effects ORDER BY session_id, effect_id
"""
COPY_INSERT_UNDONE_EFFECTS = """
INSERT INTO agentgit_undone_effects(
    session_id, effect_id, run_id, thread_id, checkpoint_id, tool_call_id, tool_name, kind,
    status, attempts, error, updated_at
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
# Tables that hold rows (a copy goes only into a database without any).
COPY_TABLES_WITH_ROWS = """
SELECT 'agentgit_threads' WHERE EXISTS (SELECT 1 FROM agentgit_threads)
UNION ALL SELECT 'agentgit_checkpoints' WHERE EXISTS (SELECT 1 FROM agentgit_checkpoints)
UNION ALL SELECT 'agentgit_writes' WHERE EXISTS (SELECT 1 FROM agentgit_writes)
UNION ALL SELECT 'agentgit_blobs' WHERE EXISTS (SELECT 1 FROM agentgit_blobs)
UNION ALL SELECT 'agentgit_sessions' WHERE EXISTS (SELECT 1 FROM agentgit_sessions)
UNION ALL SELECT 'agentgit_session_threads' WHERE EXISTS (SELECT 1 FROM agentgit_session_threads)
UNION ALL SELECT 'agentgit_tags' WHERE EXISTS (SELECT 1 FROM agentgit_tags)
UNION ALL SELECT 'agentgit_deleted_threads' WHERE EXISTS (SELECT 1 FROM agentgit_deleted_threads)
UNION ALL SELECT 'agentgit_undo_runs' WHERE EXISTS (SELECT 1 FROM agentgit_undo_runs)
UNION ALL SELECT 'agentgit_undone_effects' WHERE EXISTS (SELECT 1 FROM agentgit_undone_effects)
"""
# Rows per table, in the order of langgraph_agentgit.transfer.TABLES.
COPY_COUNTS = """
SELECT (SELECT count(*) FROM agentgit_threads), (SELECT count(*) FROM agentgit_checkpoints),
    (SELECT count(*) FROM agentgit_writes), (SELECT count(*) FROM agentgit_blobs),
    (SELECT count(*) FROM agentgit_sessions), (SELECT count(*) FROM agentgit_session_threads),
    (SELECT count(*) FROM agentgit_tags), (SELECT count(*) FROM agentgit_deleted_threads),
    (SELECT count(*) FROM agentgit_undo_runs), (SELECT count(*) FROM agentgit_undone_effects)
"""
# Every thread id a saver can be asked about: live threads and session branches.
COPY_THREAD_IDS = """
SELECT thread_id FROM agentgit_threads WHERE thread_id IS NOT NULL
UNION SELECT thread_id FROM agentgit_session_threads
ORDER BY 1
"""
# None here: an AUTOINCREMENT table's sqlite_sequence follows the ids inserted explicitly.
COPY_RESET_SEQUENCES: tuple[str, ...] = ()


def stream_rows(conn: Any, query: str, size: int) -> Iterator[list[Any]]:
    """The rows of ``query`` (a statement without parameters) in lists of at most
    ``size``, fetched as they are yielded: a SQLite cursor steps through the table, so
    the whole result is never in memory."""
    cursor = conn.execute(query)
    while rows := cursor.fetchmany(size):
        yield rows


# --- size (langgraph_agentgit.langgraph_import) --------------------------------------------
# Bytes of the database's pages in use (WAL pages the connection sees included).
DATABASE_BYTES = "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"


# --- a LangGraph SqliteSaver file, read by langgraph_agentgit.langgraph_import ------------
# Its own tables (langgraph-checkpoint-sqlite's schema), read-only.
LANGGRAPH_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table'"
LANGGRAPH_WRITE_COLUMNS = "SELECT name FROM pragma_table_info('writes')"
LANGGRAPH_THREADS = "SELECT DISTINCT thread_id FROM checkpoints ORDER BY thread_id"
LANGGRAPH_CHECKPOINT_KEYS = """
SELECT checkpoint_ns, checkpoint_id FROM checkpoints WHERE thread_id = ?
ORDER BY checkpoint_id, checkpoint_ns
"""
# (task_id, idx, channel, task_path, type, value); {task_path} is the column or ''.
LANGGRAPH_WRITES = """
SELECT task_id, idx, channel, {task_path}, type, value FROM writes
WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ? ORDER BY task_id, idx
"""
# Bytes of the file's pages (a SqliteSaver file holds nothing else).
LANGGRAPH_BYTES = "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()"


# --- where the bytes go (langgraph_agentgit.usage): read-only ---------------------------
USAGE_THREADS = "SELECT pk, thread_id, parent_pk FROM agentgit_threads"
USAGE_BRANCHES = "SELECT thread_id, session_id FROM agentgit_session_threads"
USAGE_SESSIONS = "SELECT id, name FROM agentgit_sessions ORDER BY rowid"
# Bytes of each checkpoint row's stored columns, and its channel -> blob refs.
USAGE_CHECKPOINTS = """
SELECT thread_pk, length(body) + length(CAST(metadata AS BLOB)) + length(CAST(refs AS BLOB)),
    refs
FROM agentgit_checkpoints
"""
USAGE_WRITES = "SELECT thread_pk, channel, blob_id FROM agentgit_writes"
USAGE_BLOBS = "SELECT id, deps, length(data) FROM agentgit_blobs"


# --- export and import of sessions (langgraph_agentgit.portable) --------------------------
# Rows of the chosen sessions and of the threads they need, read as stored; written back
# with new keys (threads.pk, checkpoints.rid and blob ids are renumbered on import).

_JSON_TEXTS = "(SELECT value FROM json_each(?))"
EXPORT_SELECT_SESSIONS = f"""
SELECT id, user_id, name, created_at, updated_at, is_active, metadata, current_thread_id,
    ended_at, end_reason
FROM agentgit_sessions WHERE id IN {_JSON_TEXTS} ORDER BY rowid
"""
EXPORT_SELECT_UNDO_RUNS = f"""
SELECT id, session_id, source_thread_id, head_checkpoint_id, base_checkpoint_id,
    target_checkpoint_id, branch_thread_id, on_error, status, created_at, finished_at
FROM agentgit_undo_runs WHERE session_id IN {_JSON_TEXTS} ORDER BY session_id, created_at, id
"""
EXPORT_SELECT_UNDONE_EFFECTS = f"""
SELECT session_id, effect_id, run_id, thread_id, checkpoint_id, tool_call_id, tool_name, kind,
    status, attempts, error, updated_at
FROM agentgit_undone_effects WHERE session_id IN {_JSON_TEXTS} ORDER BY session_id, effect_id
"""
EXPORT_SELECT_SESSION_IDS = """
SELECT id FROM agentgit_sessions WHERE (? IS NULL OR user_id = ?) ORDER BY rowid
"""
EXPORT_SELECT_BRANCHES = f"""
SELECT thread_id, session_id, ordinal, parent_thread_id, fork_checkpoint_id, name, created_at
FROM agentgit_session_threads WHERE session_id IN {_JSON_TEXTS} ORDER BY session_id, ordinal
"""
EXPORT_SELECT_TAGS = f"""
SELECT session_id, name, checkpoint_id, thread_id, created_at FROM agentgit_tags
WHERE session_id IN {_JSON_TEXTS} ORDER BY rowid
"""
EXPORT_SELECT_DELETED_THREADS = f"""
SELECT thread_id, session_id, deleted_at FROM agentgit_deleted_threads
WHERE session_id IN {_JSON_TEXTS} ORDER BY thread_id
"""
# The thread rows of the given thread ids and every thread they descend from (deleted
# ones a fork still reads from included), parents first.
EXPORT_SELECT_THREADS = f"""
WITH RECURSIVE needed(pk) AS (
    SELECT pk FROM agentgit_threads WHERE thread_id IN {_JSON_TEXTS}
    UNION
    SELECT t.parent_pk FROM agentgit_threads t JOIN needed ON t.pk = needed.pk
    WHERE t.parent_pk IS NOT NULL
)
SELECT pk, thread_id, parent_pk, fork_checkpoint_id, fork_rid, inherits, created_at, stopped_at,
    dropped
FROM agentgit_threads WHERE pk IN (SELECT pk FROM needed) ORDER BY pk
"""
EXPORT_SELECT_CHECKPOINTS = """
SELECT rid, thread_pk, ns, checkpoint_id, parent_checkpoint_id, parent_rid, hidden, run_id,
    body, metadata, refs, hidden_at
FROM agentgit_checkpoints WHERE thread_pk IN (SELECT value FROM json_each(?)) ORDER BY rid
"""
EXPORT_SELECT_WRITES = """
SELECT thread_pk, ns, checkpoint_id, task_id, idx, channel, task_path, blob_id, written_at
FROM agentgit_writes WHERE thread_pk IN (SELECT value FROM json_each(?))
ORDER BY thread_pk, ns, checkpoint_id, task_id, idx
"""
EXPORT_SELECT_BLOB_KINDS = (
    "SELECT id, kind FROM agentgit_blobs WHERE id IN (SELECT value FROM json_each(?))"
)
# Thread ids and session ids of an import that the target already uses.
IMPORT_TAKEN_THREAD_IDS = f"""
SELECT thread_id FROM agentgit_threads WHERE thread_id IN {_JSON_TEXTS}
UNION SELECT thread_id FROM agentgit_session_threads WHERE thread_id IN {_JSON_TEXTS}
UNION SELECT thread_id FROM agentgit_deleted_threads WHERE thread_id IN {_JSON_TEXTS}
"""
IMPORT_TAKEN_SESSION_IDS = f"SELECT id FROM agentgit_sessions WHERE id IN {_JSON_TEXTS}"
IMPORT_TAKEN_UNDO_RUN_IDS = f"SELECT id FROM agentgit_undo_runs WHERE id IN {_JSON_TEXTS}"
# checkpoint_count starts at 0: the count trigger brings it to the imported rows' count.
IMPORT_INSERT_THREAD = """
INSERT INTO agentgit_threads(
    thread_id, parent_pk, fork_checkpoint_id, fork_rid, inherits, created_at,
    checkpoint_count, stopped_at, dropped
) VALUES (?, ?, ?, NULL, ?, ?, 0, ?, ?)
RETURNING pk
"""
IMPORT_SET_FORK_RID = "UPDATE agentgit_threads SET fork_rid = ? WHERE pk = ?"
IMPORT_INSERT_CHECKPOINT = """
INSERT INTO agentgit_checkpoints(
    thread_pk, ns, checkpoint_id, parent_checkpoint_id, parent_rid, hidden, run_id,
    body, metadata, refs, hidden_at
) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
RETURNING rid
"""


# --- agentgit check (langgraph_agentgit.storage.check): read-only unless named otherwise ---

CHECK_TABLES = "SELECT name FROM sqlite_master WHERE type = 'table'"
CHECK_THREADS = (
    "SELECT pk, thread_id, parent_pk, fork_checkpoint_id, fork_rid, checkpoint_count "
    "FROM agentgit_threads"
)
CHECK_NOT_INHERITING = "SELECT pk FROM agentgit_threads WHERE inherits = 0"
CHECK_CHECKPOINTS = (
    "SELECT rid, thread_pk, ns, checkpoint_id, parent_checkpoint_id, parent_rid, body, "
    "metadata, refs FROM agentgit_checkpoints"
)
CHECK_CHECKPOINT_IDS = (
    "SELECT rid, checkpoint_id FROM agentgit_checkpoints "
    "WHERE rid IN (SELECT value FROM json_each(?))"
)
CHECK_CHECKPOINT_REFS = "SELECT rid, thread_pk, checkpoint_id, refs FROM agentgit_checkpoints"
CHECK_COUNTS = (
    "SELECT thread_pk, count(*) FROM agentgit_checkpoints "
    "WHERE ns = '' AND hidden = 0 GROUP BY thread_pk"
)
CHECK_ROWS_PER_THREAD = "SELECT thread_pk, count(*) FROM agentgit_checkpoints GROUP BY thread_pk"
CHECK_WRITES = "SELECT thread_pk, ns, checkpoint_id, task_id, idx, blob_id FROM agentgit_writes"
CHECK_WRITE_THREADS = "SELECT DISTINCT thread_pk FROM agentgit_writes"
CHECK_BLOB_META = "SELECT id, kind, deps, digest FROM agentgit_blobs"
CHECK_BLOB_DATA = "SELECT id, kind, deps, data, digest FROM agentgit_blobs ORDER BY id"
CHECK_BLOB_ROW = "SELECT kind, deps, data FROM agentgit_blobs WHERE id = ?"
CHECK_SESSIONS = "SELECT id, current_thread_id FROM agentgit_sessions"
CHECK_SESSION_THREADS = "SELECT thread_id, session_id FROM agentgit_session_threads"
CHECK_TAGS = "SELECT session_id, name FROM agentgit_tags"

CHECK_RECOUNT = """
UPDATE agentgit_threads SET checkpoint_count = (
    SELECT count(*) FROM agentgit_checkpoints c
    WHERE c.thread_pk = agentgit_threads.pk AND c.ns = '' AND c.hidden = 0
)
WHERE pk = ?
"""
CHECK_DELETE_BLOBS = "DELETE FROM agentgit_blobs WHERE id IN (SELECT value FROM json_each(?))"
CHECK_DELETE_WRITES_OF_THREAD = "DELETE FROM agentgit_writes WHERE thread_pk = ?"
CHECK_DELETE_ROWS_OF_THREAD = "DELETE FROM agentgit_checkpoints WHERE thread_pk = ?"
CHECK_DELETE_THREAD = "DELETE FROM agentgit_threads WHERE pk = ?"
CHECK_DELETE_SESSION_THREAD = (
    "DELETE FROM agentgit_session_threads WHERE thread_id = ? AND session_id = ?"
)
CHECK_DELETE_TAG = "DELETE FROM agentgit_tags WHERE session_id = ? AND name = ?"


# --- retention (langgraph_agentgit.retention) --------------------------------------------
# Sessions to look at, oldest activity first (user_id: one user's, or NULL for all), with
# how many tags each has.
PRUNE_SESSIONS = """
SELECT s.id, s.name, s.user_id, s.updated_at,
    (SELECT count(*) FROM agentgit_tags t WHERE t.session_id = s.id)
FROM agentgit_sessions s
WHERE (? IS NULL OR s.user_id = ?)
ORDER BY s.updated_at, s.rowid
"""
# The rows a thread lists (every namespace).
PRUNE_OWN_ROWS = """
SELECT rid, ns, checkpoint_id FROM agentgit_checkpoints WHERE thread_pk = ? AND hidden = 0
"""
# Hides the given rows of their thread (a JSON array of rids), as a deleted run's are.
HIDE_ROWS = """
UPDATE agentgit_checkpoints SET hidden = 1, hidden_at = ?
WHERE hidden = 0 AND rid IN (SELECT value FROM json_each(?))
"""
# What a prune can free, counted as `usage` counts it: checkpoint rows (body, metadata,
# value references) and stored values; then the number of checkpoint rows.
STORED_BYTES = """
SELECT
    (SELECT coalesce(sum(length(body) + length(CAST(metadata AS BLOB))
        + length(CAST(refs AS BLOB))), 0) FROM agentgit_checkpoints),
    (SELECT coalesce(sum(length(data)), 0) FROM agentgit_blobs),
    (SELECT count(*) FROM agentgit_checkpoints)
"""
# Threads outside every session whose newest root-namespace checkpoint id sorts before
# the first parameter (LangGraph's ids start with their time), or that hold no checkpoint
# of their own and were made before the second parameter; at most the third parameter of
# them. The newest id is read off the (thread_pk, ns, checkpoint_id) index, one probe per
# thread.
SELECT_EXPIRED_THREADS = """
SELECT pk, thread_id, newest FROM (
    SELECT t.pk, t.thread_id, t.created_at, (
        SELECT max(c.checkpoint_id) FROM agentgit_checkpoints c
        WHERE c.thread_pk = t.pk AND c.ns = ''
    ) AS newest
    FROM agentgit_threads t
    WHERE t.thread_id IS NOT NULL
      AND t.thread_id NOT IN (SELECT thread_id FROM agentgit_session_threads)
) AS expiring
WHERE newest < ? OR (newest IS NULL AND created_at < ?)
ORDER BY pk
LIMIT ?
"""
# Run outside a transaction, in order: VACUUM rewrites the file without its free pages
# (through the write-ahead log), then the log is folded in and cut.
VACUUM_STATEMENTS = ("VACUUM", "PRAGMA wal_checkpoint(TRUNCATE)")
DATABASE_NAME = "SELECT file FROM pragma_database_list WHERE name = 'main'"
