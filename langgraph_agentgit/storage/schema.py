"""Schema, migrations and every SQL statement the package runs.

All SQL lives here as named constants so that a second backend (Postgres) only has to
provide another module of the same shape. Statements are always parameterized; the few
that take a variable-length set of ids receive it as one JSON array parameter and unpack
it with ``json_each``, so no statement text is ever built from user data.
"""

from __future__ import annotations

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

MIGRATIONS: list[str] = [_MIGRATION_1_CORE, _MIGRATION_2_COUNTS]

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

# The thread and every thread it inherits from, nearest first.
SELECT_LINEAGE = """
WITH RECURSIVE lineage(pk, parent_pk, fork_checkpoint_id, fork_rid, inherits, depth) AS (
    SELECT pk, parent_pk, fork_checkpoint_id, fork_rid, inherits, 0
    FROM agentgit_threads WHERE thread_id = ?
    UNION ALL
    SELECT t.pk, t.parent_pk, t.fork_checkpoint_id, t.fork_rid, t.inherits, l.depth + 1
    FROM agentgit_threads t JOIN lineage l ON t.pk = l.parent_pk
    WHERE l.inherits = 1
)
SELECT pk, parent_pk, fork_checkpoint_id, fork_rid, inherits FROM lineage ORDER BY depth
"""
INSERT_THREAD = """
INSERT INTO agentgit_threads(thread_id, parent_pk, fork_checkpoint_id, fork_rid, created_at)
VALUES (?, ?, ?, ?, ?)
"""
SELECT_THREAD_PK = "SELECT pk FROM agentgit_threads WHERE thread_id = ?"
SELECT_ALL_THREADS = """
SELECT pk, thread_id, parent_pk, fork_checkpoint_id, inherits FROM agentgit_threads
"""
TOMBSTONE_THREAD = "UPDATE agentgit_threads SET thread_id = NULL WHERE pk = ?"
DELETE_THREAD_ROW = "DELETE FROM agentgit_threads WHERE pk = ?"
STOP_INHERITING = "UPDATE agentgit_threads SET inherits = 0 WHERE pk = ?"
SELECT_CHECKPOINT_COUNT = "SELECT checkpoint_count FROM agentgit_threads WHERE thread_id = ?"

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

# Follows parent links from one row, across thread boundaries, nearest first.
SELECT_CHAIN = f"""
WITH RECURSIVE chain(rid, depth) AS (
    SELECT ?, 0
    UNION ALL
    SELECT c.parent_rid, chain.depth + 1
    FROM agentgit_checkpoints c JOIN chain ON c.rid = chain.rid
    WHERE c.parent_rid IS NOT NULL
)
SELECT {CHECKPOINT_COLUMNS} FROM chain
JOIN agentgit_checkpoints c ON c.rid = chain.rid
LEFT JOIN agentgit_checkpoints p ON p.rid = c.parent_rid
ORDER BY chain.depth
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
# A metadata key is validated against METADATA_KEY_PATTERN and its JSON path is bound
# as a parameter; the value is bound too.
METADATA_FILTER_CLAUSE = " AND json_extract(c.metadata, ?) IS ?"
ORDER_NEWEST_FIRST = " ORDER BY c.checkpoint_id DESC"

# Point lookups used to resolve what a thread sees. For the thread itself ("own") hidden
# rows are excluded; for an ancestor thread every row up to the inherited bound counts.
SELECT_OWN_BY_ID = f"""
SELECT {CHECKPOINT_COLUMNS} FROM {CHECKPOINTS_FROM}
WHERE c.thread_pk = ? AND c.ns = ? AND c.checkpoint_id = ? AND c.hidden = 0
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
HIDE_ALL_OF_THREAD = "UPDATE agentgit_checkpoints SET hidden = 1 WHERE thread_pk = ? AND hidden = 0"
HIDE_OLDER_THAN_LATEST = """
UPDATE agentgit_checkpoints SET hidden = 1
WHERE thread_pk = ? AND hidden = 0 AND checkpoint_id < (
    SELECT max(c2.checkpoint_id) FROM agentgit_checkpoints c2
    WHERE c2.thread_pk = agentgit_checkpoints.thread_pk AND c2.ns = agentgit_checkpoints.ns
      AND c2.hidden = 0
)
"""
HIDE_RUNS = """
UPDATE agentgit_checkpoints SET hidden = 1
WHERE hidden = 0 AND run_id IN (SELECT value FROM json_each(?))
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
COUNT_CHECKPOINTS_OF_THREAD = "SELECT count(*) FROM agentgit_checkpoints WHERE thread_pk = ?"
SELECT_LATEST_ROOT_OF_THREAD = """
SELECT max(checkpoint_id) FROM agentgit_checkpoints WHERE thread_pk = ? AND ns = ''
"""

# --- writes -----------------------------------------------------------------------------

UPSERT_WRITE = """
INSERT INTO agentgit_writes(thread_pk, ns, checkpoint_id, task_id, idx, channel, task_path, blob_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(thread_pk, ns, checkpoint_id, task_id, idx) DO UPDATE SET
    channel = excluded.channel, task_path = excluded.task_path, blob_id = excluded.blob_id
"""
INSERT_WRITE_IF_ABSENT = """
INSERT INTO agentgit_writes(thread_pk, ns, checkpoint_id, task_id, idx, channel, task_path, blob_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(thread_pk, ns, checkpoint_id, task_id, idx) DO NOTHING
"""
# Writes of many checkpoints of several threads in one statement.
SELECT_WRITES = """
SELECT thread_pk, checkpoint_id, task_id, idx, channel, task_path, blob_id
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
UPSERT_BLOB = """
INSERT INTO agentgit_blobs(digest, kind, deps, data) VALUES (?, ?, ?, ?)
ON CONFLICT(digest) DO UPDATE SET kind = kind
RETURNING id
"""
SELECT_BLOBS = """
SELECT id, kind, deps, data FROM agentgit_blobs WHERE id IN (SELECT value FROM json_each(?))
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
