"""The message index: full-text search and usage counters, kept as checkpoints are written.

Values are stored compressed (and as deltas of each other), so nothing can be found by
scanning SQL text. Instead :meth:`CheckpointStore.put` hands every *new* list item of a
root-namespace channel (the tail of a list delta, or a whole list written afresh) to
:meth:`SearchIndex.index`, and each ``BaseMessage`` among them becomes one row of
``agentgit_search_docs``:

* where it is stored (the VALUE blob holding it and its position there: the text is
  never stored a second time; snippets are made by loading the few messages shown);
* who wrote it (thread row and the checkpoint where it first appeared);
* its key, a hash of its id and content, unique per thread: a message a branch inherits,
  or that a list rewrite (``RemoveMessage``) stores again, is already a row of the thread
  that wrote it first and is not indexed twice;
* what usage counts need (role, tool names, ``AIMessage.usage_metadata`` tokens).

The words go to the engine's full-text index under the row's id: a contentless FTS5
table on SQLite, a ``tsvector`` column with a GIN index on PostgreSQL. Both receive the
same words, normalized here (case-folded, accents stripped, split into runs of letters
and digits), so both engines find the same rows for the same query.

Each row's words also hold two **scope tokens**: the thread that wrote it and its role
(:func:`scope_tokens`). They start with a private-use character, which no normalized word
holds, so no query text can reach them. A search filtered by user or session names the
threads it may report (their sessions' threads and the threads those inherit from) and
the role in its full-text query, so the index finds only rows in scope: a filter costs
what a search of that user's messages alone would, instead of reading matches of every
user until enough pass. A database indexed before the tokens existed says so
(``agentgit_search_state.scoped``); its filtered searches read matches and filter them,
as before, until ``agentgit reindex`` rebuilds the index.

A row lives as long as its blob and its thread (triggers delete it with either). On
SQLite before 3.43 a contentless FTS5 row cannot be deleted without its words, so the
words of deleted rows stay in the FTS index, unreachable (searches join the rows), until
:func:`reindex` rebuilds it.

Sources: Hermes Agent's SessionDB (FTS5 search with a sanitized query syntax, snippets
with the match marked) and OpenAI's ``AdvancedSQLiteSession`` (usage per turn and per
branch).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from types import ModuleType
from typing import TYPE_CHECKING, Any

from langchain_core.messages import BaseMessage

from langgraph_agentgit.storage.backend import Connection
from langgraph_agentgit.storage.blobs import LRU

if TYPE_CHECKING:
    from langgraph_agentgit.storage.checkpoints import CheckpointStore

#: What marks a match in a snippet (Hermes' FTS5 ``snippet()`` markers).
MARK_START, MARK_END = ">>>", "<<<"
#: The message types a search can be limited to, and the names also accepted for them.
ROLES = ("human", "ai", "tool", "system", "function", "chat")
ROLE_ALIASES = {"user": "human", "assistant": "ai"}
# A word longer than this is indexed (and searched) by its first characters.
MAX_WORD_CHARS = 64
# Distinct words indexed per message (bytes of UTF-8): a huge message is indexed by its
# first words (PostgreSQL's tsvector holds at most 1 MB).
MAX_DOC_WORD_BYTES = 256 * 1024
# A query is the words of its first MAX_QUERY_CHARS characters (a word cut there is left
# out); the first MAX_QUERY_WORDS go to the full-text index, any others are checked on
# the messages it finds, so that every word of a query is in every hit.
MAX_QUERY_WORDS = 32
MAX_QUERY_CHARS = 4096
SNIPPET_CHARS = 160
#: Starts every scope token (Unicode private use: no normalized word holds one, and both
#: FTS5's tokenizer and a tsvector keep it as part of the token).
SCOPE_MARK = "\ue000"
#: A filtered search names at most this many threads in its full-text query; a user with
#: more (sessions and branches) is searched by filtering matches instead.
MAX_SCOPE_THREADS = 500
#: Hits are the best ranked among the newest RANK_WINDOW matches (all of them for any
#: query but one of words most messages hold), so that a search costs the same on a
#: million messages as on ten thousand.
RANK_WINDOW = 5000
# Shorter texts cannot reach MAX_DOC_WORD_BYTES (NFKD at most triples a character's
# UTF-8 bytes).
_SHORT_TEXT = MAX_DOC_WORD_BYTES // 16

_WORD = re.compile(r"[^\W_]+")
_QUERY_WORD = re.compile(r"([^\W_]+)(\*?)")
# FTS5's and websearch's operators, written in capitals: separators ("cats AND dogs"),
# unless the query holds nothing else (then they are the words looked for).
_OPERATOR = re.compile(r"\b(?:AND|OR|NOT|NEAR)\b")
# Combining marks left by NFKD (accents): "café" is found as "cafe" and the reverse.
_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_SPACE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Case-folded, compatibility-decomposed, accents removed: what words are made of."""
    text = text.casefold()
    if not text.isascii():
        text = _COMBINING.sub("", unicodedata.normalize("NFKD", text))
    return text


def words(text: str) -> list[str]:
    """The distinct words of ``text`` as indexed, in order of first appearance, at most
    :data:`MAX_DOC_WORD_BYTES` of them."""
    found = _WORD.findall(normalize(text))
    if len(text) < _SHORT_TEXT and all(len(w) <= MAX_WORD_CHARS for w in found):
        return list(dict.fromkeys(found))  # the common case, in C
    out: dict[str, None] = {}
    budget = MAX_DOC_WORD_BYTES
    for word in found:
        word = word[:MAX_WORD_CHARS]
        if word in out:
            continue
        budget -= len(word.encode()) + 1
        if budget < 0:
            break
        out[word] = None
    return list(out)


def thread_token(pk: int) -> str:
    """The scope token of the rows thread ``pk`` wrote."""
    return f"{SCOPE_MARK}t{int(pk)}"


def role_token(role: str) -> str:
    """The scope token of rows of a role (one of :data:`ROLES`)."""
    return f"{SCOPE_MARK}r{role}"


def scope_tokens(thread_pk: int, role: str) -> tuple[str, ...]:
    """The scope tokens indexed with a row (see the module's docstring): its thread's,
    and its role's when it is one of :data:`ROLES` (a filter names only those)."""
    if role in ROLES:
        return (thread_token(thread_pk), role_token(role))
    return (thread_token(thread_pk),)


@dataclass(frozen=True)
class Scope:
    """What a filtered search asks the index for besides the words: rows written by one
    of ``threads`` (None: any thread), of ``role`` (None: any role)."""

    threads: tuple[int, ...] | None = None
    role: str | None = None


@dataclass(frozen=True)
class Query:
    """A user's query, sanitized: the words every hit must contain (AND), each matched
    whole or, when it ended in ``*`` in the query, as a prefix. Everything else in the
    text (quotes, operators, parentheses, NUL...) only separates words."""

    terms: tuple[tuple[str, bool], ...]
    #: Words past the first MAX_QUERY_WORDS: checked on each message the index finds.
    more: tuple[tuple[str, bool], ...] = ()

    @classmethod
    def parse(cls, text: object) -> Query:
        if not isinstance(text, str):
            raise TypeError(f"a search query is a string, not {type(text).__name__}")
        cut = text[:MAX_QUERY_CHARS]
        if len(text) > MAX_QUERY_CHARS and _WORD.match(text, MAX_QUERY_CHARS):
            # The cut fell inside a word: what is left of it is not a word of the query.
            cut = re.sub(r"[^\W_]+\Z", "", cut)
        without_operators = _OPERATOR.sub(" ", cut)
        if _WORD.search(without_operators):
            cut = without_operators
        terms: dict[tuple[str, bool], None] = {}
        for match in _QUERY_WORD.finditer(normalize(cut)):
            terms[(match.group(1)[:MAX_WORD_CHARS], bool(match.group(2)))] = None
        found = tuple(terms)
        return cls(found[:MAX_QUERY_WORDS], found[MAX_QUERY_WORDS:])

    def holds_all(self, text: str) -> bool:
        """Whether ``text`` has every word of the query (those past the index's too)."""
        have = words(text)
        present = set(have)
        return all(
            any(w.startswith(t) for w in have) if prefix else t in present
            for t, prefix in (*self.terms, *self.more)
        )

    def expression(self, syntax: str, scope: Scope | None = None) -> str:
        """The query in the engine's syntax (``sql.SEARCH_SYNTAX``), limited to the rows
        of ``scope`` (its tokens hold only the mark, letters and digits, so nothing in
        them is syntax either)."""
        fts5 = syntax == "fts5"
        text = self.fts5() if fts5 else self.tsquery()
        if scope is None or (scope.threads is None and scope.role is None):
            return text
        quote = '"' if fts5 else "'"
        parts = [f"({text})"]
        if scope.threads is not None:
            either = " OR " if fts5 else " | "
            tokens = either.join(f"{quote}{thread_token(pk)}{quote}" for pk in scope.threads)
            parts.append(f"({tokens})")
        if scope.role is not None:
            parts.append(f"{quote}{role_token(scope.role)}{quote}")
        return (" AND " if fts5 else " & ").join(parts)

    def fts5(self) -> str:
        """An FTS5 MATCH expression: each word quoted (words hold only letters and
        digits, so nothing in them is syntax)."""
        return " ".join(f'"{w}"' + ("*" if prefix else "") for w, prefix in self.terms)

    def tsquery(self) -> str:
        """A ``tsquery`` literal: each word quoted, ``:*`` for a prefix."""
        return " & ".join(f"'{w}'" + (":*" if prefix else "") for w, prefix in self.terms)

    def matches(self, word: str) -> bool:
        return any(word.startswith(w) if prefix else word == w for w, prefix in self.terms)


def message_text(message: BaseMessage) -> str:
    """What is indexed of a message: its text (a string, or the text of its content
    blocks) and, for a tool-calling ``AIMessage``, each call's tool name and arguments."""
    parts: list[str] = []
    content = message.content
    if isinstance(content, str):
        parts.append(content)
    elif isinstance(content, list):
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, Mapping) and isinstance(block.get("text"), str):
                parts.append(block["text"])
    for call in getattr(message, "tool_calls", None) or ():
        if isinstance(call, Mapping):
            parts.append(str(call.get("name") or ""))
            parts.append(json.dumps(call.get("args"), ensure_ascii=False, default=repr))
    return "\n".join(p for p in parts if p)


def message_key(message: BaseMessage, position: int) -> int:
    """A message's identity in the index, a signed 64-bit hash of its id and content
    (and of its position in the list when it has no id, as without add_messages)."""
    h = hashlib.blake2b(digest_size=8)
    h.update(str(message.id).encode() if message.id else f"#{position}".encode())
    h.update(b"\x00")
    h.update(json.dumps(message.content, sort_keys=True, ensure_ascii=False, default=repr).encode())
    return int.from_bytes(h.digest(), "big", signed=True)


def turn_key(message: BaseMessage, position: int) -> int:
    """A message's identity as ``SessionManager.turns`` knows it: its id alone, so that
    a message edited in place (``update_state`` with the same id, as add_messages
    replaces it) is the same turn; without an id, :func:`message_key`."""
    if not message.id:
        return message_key(message, position)
    h = hashlib.blake2b(str(message.id).encode(), digest_size=8)
    return int.from_bytes(h.digest(), "big", signed=True)


@dataclass(frozen=True)
class Doc:
    """One row of the index, before it is stored."""

    key: int
    turn: int
    blob_id: int
    pos: int
    role: str
    tool_calls: str | None
    input_tokens: int | None
    output_tokens: int | None
    total_tokens: int | None
    words: tuple[str, ...]

    @classmethod
    def of(cls, message: BaseMessage, blob_id: int, pos: int, position: int) -> Doc:
        names = [
            str(c.get("name"))
            for c in (getattr(message, "tool_calls", None) or ())
            if isinstance(c, Mapping)
        ]
        usage = getattr(message, "usage_metadata", None) if message.type == "ai" else None
        tokens: tuple[int | None, int | None, int | None] = (None, None, None)
        if isinstance(usage, Mapping):
            tokens = (
                _int(usage.get("input_tokens")),
                _int(usage.get("output_tokens")),
                _int(usage.get("total_tokens")),
            )
        return cls(
            message_key(message, position),
            turn_key(message, position),
            blob_id,
            pos,
            str(message.type)[:32],
            json.dumps(names, ensure_ascii=False) if names else None,
            *tokens,
            words=tuple(words(message_text(message))),
        )


def _int(value: Any) -> int:
    try:
        return int(value or 0)
    except (TypeError, ValueError, OverflowError):
        return 0


#: New list items: (VALUE blob id holding them, position of the first in that blob,
#: position of the first in the whole list, the items).
Tail = tuple[int, int, int, Sequence[Any]]
#: The threads whose rows a thread sees: (thread pk, the root-namespace checkpoint ids it
#: sees there; None for the thread itself: all of them), nearest first (see
#: :meth:`CheckpointStore.searchable`).
Ancestry = Sequence[tuple[int, "frozenset[str] | None"]]
# Checkpoint ids the ancestries cache holds at most (each costs about 100 bytes).
_ANCESTRY_IDS = 200_000


def docs_of(tails: Iterable[Tail]) -> list[Doc]:
    """Rows for the messages among new list items, each key once. An item that cannot
    be read as a message is left out of the index (never fails the write)."""
    out: dict[int, Doc] = {}
    for blob_id, blob_start, list_start, items in tails:
        for i, item in enumerate(items):
            if not isinstance(item, BaseMessage):
                continue
            try:
                doc = Doc.of(item, blob_id, blob_start + i, list_start + i)
            except Exception:  # a message subclass with unreadable fields: not indexed
                continue
            out.setdefault(doc.key, doc)
    return list(out.values())


class SearchIndex:
    """The index's writes and reads on one database (dialect: ``sql``)."""

    def __init__(self, sql: ModuleType) -> None:
        self.sql = sql
        # Off only to measure what indexing costs (benchmarks): an index missing the
        # checkpoints written meanwhile is wrong until a reindex.
        self.enabled = True
        # (thread pk, thread id, lineage signature) -> the thread's ancestry and whether
        # its walk ended at a collected row. Reads (usage, search) key it by the
        # signature of the lineage they read (Lineage.signature: its threads' epochs,
        # bumped by every prune or run deletion, in any process), so they never count
        # through a stale one. Puts key it by None: which threads a thread descends
        # from never changes but by a prune, after which dedup against its former
        # ancestors is merely useless; that saves a lineage query per checkpoint
        # written. Entries made in a write that rolls back are dropped
        # (BlobStore.transaction), since the thread's pk may then be given to another.
        self.ancestries: LRU[
            tuple[int, str, Hashable], tuple[list[tuple[int, frozenset[str] | None]], bool]
        ] = LRU(_ANCESTRY_IDS)
        # Forks whose walk up from their fork checkpoint ended at a row the collector
        # removed (CheckpointStore.searchable): their first step indexes what that
        # checkpoint holds under them. Thread pks are never given out again.
        self.broken: set[int] = set()

    def ancestry(
        self,
        pk: int,
        thread_id: str,
        compute: Callable[[], Ancestry],
        signature: Hashable = None,
    ) -> list[tuple[int, frozenset[str] | None]]:
        """The thread's ancestry (see :data:`Ancestry`), cached under ``signature`` (the
        lineage's, see :attr:`ancestries`). Leaves :attr:`broken` as that computation
        found it."""
        key = (pk, thread_id, signature)
        found = self.ancestries.get(key)
        if found is None:
            self.broken.discard(pk)
            entries = list(compute())
            found = (entries, pk in self.broken)
            weight = 1 + sum(len(ids) for _, ids in entries if ids is not None)
            self.ancestries.put(key, found, weight)
        elif found[1]:
            self.broken.add(pk)
        else:
            self.broken.discard(pk)
        return found[0]

    def sees(self, entries: Ancestry, pk: int, checkpoint_id: str) -> bool:
        """Whether a thread of ancestry ``entries`` sees the rows thread ``pk`` wrote at
        ``checkpoint_id`` (its own, or on the chain it inherits)."""
        return any(
            entry_pk == pk and (ids is None or checkpoint_id in ids) for entry_pk, ids in entries
        )

    def index(
        self,
        conn: Connection,
        thread_pk: int,
        checkpoint_id: str,
        tails: Sequence[Tail],
        ancestry: Callable[[], Ancestry],
    ) -> None:
        """Index the messages among a checkpoint's new list items that the thread does not
        see indexed yet (by itself, or by an ancestor up to where it inherits from it)."""
        docs = docs_of(tails)
        if not docs:
            return
        entries = ancestry()
        # The thread's own rows are unique by key (the insert skips a key it has); only
        # an ancestor's need looking up.
        seen = (
            self.visible_keys(conn, entries, [d.key for d in docs]) if len(entries) > 1 else set()
        )
        for doc in docs:
            if doc.key not in seen:
                self.insert(conn, thread_pk, checkpoint_id, doc)

    def visible_keys(self, conn: Connection, entries: Ancestry, keys: Sequence[int]) -> set[int]:
        pks = [pk for pk, _ in entries]
        found = conn.execute(
            self.sql.SEARCH_SELECT_KEYS, (json.dumps(pks), json.dumps(list(keys)))
        ).fetchall()
        return {
            int(key)
            for pk, checkpoint_id, key in found
            if self.sees(entries, int(pk), str(checkpoint_id))
        }

    def insert(self, conn: Connection, thread_pk: int, checkpoint_id: str, doc: Doc) -> None:
        indexed = (*doc.words, *scope_tokens(thread_pk, doc.role))
        row = conn.execute(
            self.sql.SEARCH_INSERT_DOC,
            (
                thread_pk,
                checkpoint_id,
                doc.blob_id,
                doc.pos,
                doc.key,
                doc.role,
                doc.tool_calls,
                doc.input_tokens,
                doc.output_tokens,
                doc.total_tokens,
                doc.turn,
                *self.sql.search_words(indexed),
            ),
        ).fetchone()
        if row is not None and self.sql.SEARCH_INSERT_WORDS:
            conn.execute(self.sql.SEARCH_INSERT_WORDS, (row[0], " ".join(indexed)))

    # --- usage ---------------------------------------------------------------------------

    def usage_rows(
        self, conn: Connection, entries: Ancestry, dropped: frozenset[str] = frozenset()
    ) -> dict[int, tuple[Any, ...]]:
        """The index rows a thread sees, by key: (thread pk, checkpoint id, role, tool
        names as JSON, input, output, total tokens, turn key). ``dropped``: the thread's own
        checkpoints whose rows it no longer holds (:meth:`CheckpointStore.dropped`)."""
        out: dict[int, tuple[Any, ...]] = {}
        for pk, ids in entries:
            for key, *rest in conn.execute(self.sql.SEARCH_USAGE_ROWS, (pk, None, None)):
                if rest[0] in dropped if ids is None else rest[0] not in ids:
                    continue
                out.setdefault(int(key), (pk, *rest))
        return out


@dataclass
class Counts:
    """Usage counted from index rows (see :class:`~langgraph_agentgit.sessions.models.Usage`)."""

    turns: int = 0
    messages: int = 0
    tool_calls: dict[str, int] = field(default_factory=dict)
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0


def count(rows: Mapping[int, tuple[Any, ...]]) -> Counts:
    """Aggregate index rows (one per message): a turn is a checkpoint where a human
    message first appeared, as :meth:`SessionManager.turns` numbers them; a human
    message edited in place (same id, new text) is a new message but not a new turn."""
    out = Counts()
    turns: set[tuple[int, str]] = set()
    seen: set[int] = set()
    # Oldest first: an edit is indexed at a later checkpoint than the message it edits.
    for pk, checkpoint_id, role, names, tin, tout, ttotal, turn in sorted(
        rows.values(), key=lambda r: str(r[1])
    ):
        out.messages += 1
        if role == "human" and (turn is None or int(turn) not in seen):
            turns.add((pk, checkpoint_id))
            if turn is not None:
                seen.add(int(turn))
        if names:
            for name in json.loads(names):
                out.tool_calls[name] = out.tool_calls.get(name, 0) + 1
        out.input_tokens += int(tin or 0)
        out.output_tokens += int(tout or 0)
        out.total_tokens += int(ttotal or 0)
    out.turns = len(turns)
    out.tool_calls = dict(sorted(out.tool_calls.items()))
    return out


def snippet(text: str, query: Query, width: int = SNIPPET_CHARS) -> str:
    """A one-line excerpt of ``text`` around the first word the query matches, each
    matching word marked with :data:`MARK_START` / :data:`MARK_END`."""
    text = _SPACE.sub(" ", text).strip()
    hits = [
        m
        for m in _WORD.finditer(text)
        if any(query.matches(w[:MAX_WORD_CHARS]) for w in _WORD.findall(normalize(m.group())))
    ]
    start = max(0, hits[0].start() - width // 4) if hits else 0
    end = min(len(text), start + width)
    pieces: list[str] = ["…" if start else ""]
    at = start
    for m in hits:
        if m.start() < start or m.end() > end:
            continue
        pieces += [text[at : m.start()], MARK_START, m.group(), MARK_END]
        at = m.end()
    pieces += [text[at:end], "…" if end < len(text) else ""]
    return "".join(pieces)


def scoped(conn: Connection, store: CheckpointStore) -> bool:
    """Whether every row of the index holds its scope tokens (false for an index built
    before they existed, until :func:`reindex`)."""
    row = conn.execute(store.sql.SEARCH_SCOPED).fetchone()
    return bool(row and row[0])


def needs_reindex(conn: Connection, store: CheckpointStore) -> bool:
    """Whether checkpoints were stored without being indexed (written before the index
    existed, or copied without it): :func:`reindex` then rebuilds it."""
    row = conn.execute(store.sql.SEARCH_NEEDS_REINDEX).fetchone()
    return bool(row and row[0])


def reindex_if_needed(conn: Connection, store: CheckpointStore) -> int | None:
    """:func:`reindex` when :func:`needs_reindex`; the number of rows, or ``None``."""
    return reindex(conn, store) if needs_reindex(conn, store) else None


def reindex(conn: Connection, store: CheckpointStore) -> int:
    """Rebuild the whole index from the stored checkpoints, in one write transaction:
    the same rows :meth:`CheckpointStore.put` writes (each thread's root-namespace
    checkpoints in id order, each list item indexed at the first checkpoint holding it,
    from the blob that stores it), and on SQLite an FTS index without the words of
    deleted rows. Decodes every stored list; returns the number of rows.

    Raises :class:`~langgraph_agentgit.errors.CorruptDataError` when a stored value
    cannot be read (nothing is changed then)."""
    sql = store.sql
    conn.execute(sql.SEARCH_DELETE_ALL_DOCS)
    if sql.SEARCH_DELETE_ALL_WORDS:
        conn.execute(sql.SEARCH_DELETE_ALL_WORDS)
    threads = {int(r[0]): tuple(r) for r in conn.execute(sql.SEARCH_THREADS).fetchall()}
    for pk in sorted(threads):
        _index_thread(conn, store, pk, threads)
    conn.execute(sql.SEARCH_CLEAR_STALE)
    conn.execute(sql.SEARCH_SET_NEEDS_REINDEX, (0,))
    conn.execute(sql.SEARCH_SET_SCOPED)
    row = conn.execute(sql.SEARCH_DOC_COUNT).fetchone()
    return int(row[0]) if row else 0


def reindex_stale(conn: Connection, store: CheckpointStore) -> None:
    """Rebuild the rows of the threads that lost one to the garbage collector
    (``agentgit_search_stale``) and of every thread forked from them, from what they
    still hold: a message whose first value was collected may live on in another (a
    list rewritten whole after an edit). Nothing to do when the whole index is to be
    rebuilt anyway. Costs a decode of those threads' stored lists."""
    sql = store.sql
    stale = [int(r[0]) for r in conn.execute(sql.SEARCH_STALE_THREADS).fetchall()]
    if not stale:
        return
    conn.execute(sql.SEARCH_CLEAR_STALE)
    if needs_reindex(conn, store):
        return
    threads = {int(r[0]): tuple(r) for r in conn.execute(sql.SEARCH_THREADS).fetchall()}
    children: dict[int, list[int]] = {}
    for pk, row in threads.items():
        if row[2] is not None:
            children.setdefault(int(row[2]), []).append(pk)
    family: set[int] = set()
    todo = [pk for pk in stale if pk in threads]
    while todo:
        pk = todo.pop()
        if pk not in family:
            family.add(pk)
            todo += children.get(pk, [])
    if not family:
        return
    conn.execute(sql.SEARCH_DELETE_DOCS_OF_THREADS, (json.dumps(sorted(family)),))
    for pk in sorted(family):  # a fork after the threads it descends from
        _index_thread(conn, store, pk, threads)


def _index_thread(
    conn: Connection, store: CheckpointStore, pk: int, threads: Mapping[int, tuple[Any, ...]]
) -> None:
    """Index thread ``pk``'s root-namespace checkpoints as :func:`reindex` does
    (``threads``: SEARCH_THREADS's rows by pk), a fork's fork checkpoint first (see
    :func:`index_fork_point`)."""
    from langgraph_agentgit.storage.checkpoints import build_lineage

    sql = store.sql
    rows = conn.execute(sql.SEARCH_ROOT_ROWS, (pk,)).fetchall()
    thread_id, fork_rid, inherits = threads[pk][1], threads[pk][4], threads[pk][5]
    fork_row = None
    if thread_id is not None and fork_rid is not None and inherits:
        fork_row = conn.execute(sql.SELECT_CHECKPOINT_BY_RID, (fork_rid,)).fetchone()
    if not rows and fork_row is None:
        return  # nothing to index (a deleted thread kept only to link its forks)
    chain: list[tuple[Any, ...]] = []
    walked: set[int] = set()
    at: int | None = pk
    while at is not None and at in threads and at not in walked:
        walked.add(at)
        pk_, _tid, parent, fork_id, fork_rid_, inherits_, created, stopped = threads[at]
        chain.append((pk_, parent, fork_id, fork_rid_, inherits_, created, stopped))
        at = parent
    entries = store.searchable(conn, build_lineage(str(thread_id), chain))
    done: set[tuple[int, int]] = set()
    if fork_row is not None:
        index_row(conn, store, pk, str(fork_row[3]), str(fork_row[8]), entries, done)
    # A message is placed at the first checkpoint holding it on a line the thread still
    # has: one it dropped (kept only for a fork) comes after, or a message both hold
    # would be placed where the thread's own count leaves it out.
    dropped = store.dropped(conn, pk)
    if dropped:
        rows = sorted(rows, key=lambda row: str(row[0]) in dropped)
    for checkpoint_id, refs_text in rows:
        index_row(conn, store, pk, str(checkpoint_id), str(refs_text), entries, done)


def index_fork_point(
    conn: Connection, store: CheckpointStore, pk: int, checkpoint_id: str, refs_text: str
) -> None:
    """Index, under fork ``pk``, the messages of its fork checkpoint that it does not see
    indexed by the threads it descends from: those whose rows name checkpoints a prune
    removed between that checkpoint and the rows it still reaches (its parent links end
    there). Run at the fork's first step when its walk ended so (``SearchIndex.broken``)
    and by :func:`reindex`; a fork made by a rollback costs nothing more."""
    lineage = store.lineage_of_pk(conn, pk)
    if lineage is not None:
        index_row(conn, store, pk, checkpoint_id, refs_text, store.searchable(conn, lineage))


def fork_point_docs(conn: Connection, store: CheckpointStore, refs_text: str) -> list[Doc]:
    """The index rows a checkpoint's list items would make (nothing is written): what
    ``usage`` counts for a fork that has not run a step yet while its walk ends at a
    collected row (``SearchIndex.broken``)."""
    return docs_of(_row_tails(conn, store, refs_text, set()))


def index_row(
    conn: Connection,
    store: CheckpointStore,
    pk: int,
    checkpoint_id: str,
    refs_text: str,
    entries: Ancestry,
    done: set[tuple[int, int]] | None = None,
) -> None:
    """Index, under thread ``pk`` at ``checkpoint_id``, the list items of a checkpoint's
    values (``refs_text``, its channel -> blob map) that ``done`` (segment positions
    indexed already) does not hold and that the thread (``entries``) does not see."""
    tails = _row_tails(conn, store, refs_text, set() if done is None else done)
    if tails:
        store.search.index(conn, pk, checkpoint_id, tails, partial(list, entries))


def _row_tails(
    conn: Connection, store: CheckpointStore, refs_text: str, done: set[tuple[int, int]]
) -> list[Tail]:
    """The list items of a checkpoint's values (``refs_text``: channel -> blob) that
    ``done`` (segment positions taken already) does not hold, as :data:`Tail` s; adds
    theirs to ``done``."""
    from langgraph_agentgit.storage.blobs import _Read

    refs = json.loads(refs_text)
    ids = [b for b in refs.values() if isinstance(b, int) and b]
    read = _Read(store.blobs, conn)
    resolved = read.resolve(ids)
    tails: list[Tail] = []
    for blob_id in ids:
        if blob_id not in resolved:
            continue
        position = 0
        for seg, start, stop in resolved[blob_id][0]:
            fresh = [p for p in range(start, stop) if (seg, p) not in done]
            if fresh:
                items = read.value(seg)
                first = fresh[0]
                tails.append((seg, first, position + first - start, items[first:stop]))
                done.update((seg, p) for p in range(first, stop))
            position += stop - start
    return tails
