"""Property tests of the blob store: every version of a list channel, stored as deltas,
index blobs or plain values, reads back exactly as written, warm or cold cache."""

from __future__ import annotations

import copy
import json
import math
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import Any

import pytest
from conftest import cfg
from graphs import build_chat_graph
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from langgraph_agentgit import AgentGitSaver, StrictSerializer
from langgraph_agentgit.backends.sqlite import sql as sqlite_sql
from langgraph_agentgit.backends.sqlite.connection import migrate
from langgraph_agentgit.storage import blobs
from langgraph_agentgit.storage.blobs import LIST_DELTA, LIST_INDEX, PACK, PACKED, BlobStore

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@contextmanager
def database() -> Iterator[sqlite3.Connection]:
    """A migrated in-memory database in autocommit mode, as the store expects."""
    with closing(sqlite3.connect(":memory:", isolation_level=None)) as conn:
        migrate(conn)
        yield conn


@contextmanager
def max_delta_depth(depth: int) -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(blobs, "MAX_DELTA_DEPTH", depth)
        yield


def same(actual: Any, expected: Any) -> bool:
    """Equality that also requires equal types all the way down (``1 == 1.0 == True`` in
    Python, but a store that swaps one for another did not return what was written)."""
    if type(actual) is not type(expected):
        return False
    if isinstance(expected, BaseMessage):
        return same(actual.model_dump(), expected.model_dump())
    if isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(
            same(actual[k], expected[k]) for k in expected
        )
    if isinstance(expected, list):
        return len(actual) == len(expected) and all(
            same(a, e) for a, e in zip(actual, expected, strict=True)
        )
    if isinstance(expected, float):
        return math.copysign(1, actual) == math.copysign(1, expected) and actual == expected
    return bool(actual == expected)


# --- strategies ----------------------------------------------------------------------------------
# Small alphabets so that equal items recur and versions share prefixes, as message lists
# do. Leaves are of types that never compare equal to each other (no bool/float): the
# typed test below covers those.

leaves = st.one_of(st.none(), st.integers(-3, 3), st.text("abc", max_size=3))
json_items = st.recursive(
    leaves,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text("xy", max_size=2), inner),
    max_leaves=4,
)
messages = st.builds(
    lambda cls, text, n: cls(content=text, id=f"m-{n}"),
    st.sampled_from([HumanMessage, AIMessage]),
    st.text("hi ", max_size=4),
    st.integers(0, 3),
)
items = st.one_of(json_items, messages)

operations = st.one_of(
    st.tuples(st.just("append"), st.lists(items, min_size=1, max_size=3)),
    st.tuples(st.just("truncate"), st.integers(0, 8)),
    st.tuples(st.just("replace"), st.integers(0, 8), items),
    st.tuples(st.just("clear")),
    st.tuples(st.just("same")),
    st.tuples(st.just("reset"), st.lists(items, max_size=4)),
    st.tuples(st.just("scalar"), leaves),
)


def versions_from(ops: list[tuple[Any, ...]]) -> list[Any]:
    """Successive values of one channel. Each list version is a new list object that
    shares its kept items with the previous version, as LangGraph's reducers produce."""
    current: Any = []
    out = []
    for op in ops:
        base = current if isinstance(current, list) else []
        kind = op[0]
        if kind == "append":
            current = [*base, *op[1]]
        elif kind == "truncate":
            current = base[: op[1]]
        elif kind == "replace":
            current = list(base)
            if current:
                current[op[1] % len(current)] = op[2]
        elif kind == "clear":
            current = []
        elif kind == "same":
            current = list(base)
        elif kind == "reset":
            current = list(op[1])
        else:
            current = op[1]
        out.append(current)
    return out


def write_versions(
    store: BlobStore, conn: sqlite3.Connection, versions: list[Any], owner: int | None = None
) -> list[int]:
    """Each version as a channel's next; with an ``owner`` (a thread's pk), an index
    packs the tails before it, as a saver's writes do."""
    ids: list[int] = []
    previous: int | None = None
    for value in versions:
        previous = store.put_channel_value(conn, value, previous, owner=owner)
        ids.append(previous)
    return ids


def assert_reads_back(
    store: BlobStore, conn: sqlite3.Connection, ids: list[int], versions: list[Any]
) -> None:
    together = store.load(conn, ids)
    for blob_id, expected in zip(ids, versions, strict=True):
        assert same(together[blob_id], expected), (blob_id, together[blob_id], expected)
    for blob_id, expected in reversed(list(zip(ids, versions, strict=True))):
        alone = store.load(conn, [blob_id])[blob_id]
        assert same(alone, expected), (blob_id, alone, expected)


# --- properties ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cache_size", [50_000, 0], ids=["cached", "no-cache"])
@SETTINGS
@given(
    ops=st.lists(operations, min_size=1, max_size=30),
    depth=st.integers(1, 5),
    owner=st.sampled_from([None, 1]),
)
def test_every_version_of_a_channel_reads_back(
    cache_size: int, ops: list[tuple[Any, ...]], depth: int, owner: int | None
) -> None:
    """Any sequence of versions (growth, truncation, replacement in the middle, empty
    lists, non-list values, chains past ``MAX_DELTA_DEPTH``, tails packed) loads back
    equal, from the writing store, from a fresh store (cold cache), and from one without
    a cache."""
    versions = versions_from(ops)
    expected = copy.deepcopy(versions)
    with database() as conn, max_delta_depth(depth):
        writer = BlobStore(StrictSerializer(), sql=sqlite_sql, cache_size=cache_size)
        ids = write_versions(writer, conn, versions, owner)
        assert_reads_back(writer, conn, ids, expected)
        assert_reads_back(
            BlobStore(StrictSerializer(), sql=sqlite_sql, cache_size=cache_size),
            conn,
            ids,
            expected,
        )
        assert_reads_back(
            BlobStore(StrictSerializer(), sql=sqlite_sql, cache_size=0), conn, ids, expected
        )
    # Writing never mutated the caller's lists.
    assert all(same(v, e) for v, e in zip(versions, expected, strict=True))


@SETTINGS
@given(ops=st.lists(operations, min_size=1, max_size=20))
def test_two_channels_interleaved_share_one_store(ops: list[tuple[Any, ...]]) -> None:
    """Two channels written alternately (their deltas interleave in one table, and reuse
    each other's content) still each read back exactly."""
    first = versions_from(ops)
    second = versions_from(list(reversed(ops)))
    with database() as conn, max_delta_depth(3):
        store = BlobStore(StrictSerializer(), sql=sqlite_sql)
        ids: dict[str, list[int]] = {"first": [], "second": []}
        previous: dict[str, int | None] = {"first": None, "second": None}
        for a, b in zip(first, second, strict=True):
            for name, value in (("first", a), ("second", b)):
                previous[name] = store.put_channel_value(conn, value, previous[name])
                ids[name].append(previous[name])  # type: ignore[arg-type]
        cold = BlobStore(StrictSerializer(), sql=sqlite_sql)
        assert_reads_back(cold, conn, ids["first"], first)
        assert_reads_back(cold, conn, ids["second"], second)


@SETTINGS
@given(value=st.one_of(json_items, st.lists(items, max_size=5)))
def test_identical_values_share_one_blob(value: Any) -> None:
    """Content addressing: the same value stored twice (even as a separate, equal object)
    is one blob, whether stored as a value or as a channel's first version."""
    with database() as conn:
        store = BlobStore(StrictSerializer(), sql=sqlite_sql)
        first = store.put_value(conn, value)
        assert store.put_value(conn, copy.deepcopy(value)) == first
        assert (
            BlobStore(StrictSerializer(), sql=sqlite_sql).put_value(conn, copy.deepcopy(value))
            == first
        )
        if isinstance(value, list):
            assert store.put_channel_value(conn, copy.deepcopy(value), None) == first
            # An unchanged list version is the previous blob itself.
            assert store.put_channel_value(conn, copy.deepcopy(value), first) == first
        (rows,) = conn.execute("SELECT count(*) FROM agentgit_blobs").fetchone()
        assert rows == 1


def test_long_chains_switch_to_index_blobs() -> None:
    """Past ``MAX_DELTA_DEPTH`` the store writes index blobs, and every version of a long
    growing list (with a truncation and an edit in the middle) still reads back."""
    versions: list[list[Any]] = []
    current: list[Any] = []
    for i in range(60):
        current = [*current, HumanMessage(f"message {i}", id=f"m-{i}")]
        if i == 30:
            current = current[:10]
        if i == 45:
            current = [*current[:5], AIMessage("edited", id="edited"), *current[6:]]
        versions.append(current)
    with database() as conn, max_delta_depth(4):
        ids = write_versions(BlobStore(StrictSerializer(), sql=sqlite_sql), conn, versions, 1)
        kinds = dict(conn.execute("SELECT kind, count(*) FROM agentgit_blobs GROUP BY kind"))
        assert kinds.get(LIST_DELTA, 0) > 0 and kinds.get(LIST_INDEX, 0) > 0
        assert kinds.get(PACK, 0) > 0 and kinds.get(PACKED, 0) > 0
        for cache_size in (50_000, 0):
            assert_reads_back(
                BlobStore(StrictSerializer(), sql=sqlite_sql, cache_size=cache_size),
                conn,
                ids,
                versions,
            )


# --- equal but differently typed items ------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ([1, 2], [1.0, 2.0]),
        ([1], [True]),
        ([0, "x"], [False, "y"]),
        ([{"score": 1}, "a"], [{"score": 1.0}, "b"]),
    ],
    ids=["int->float", "int->bool", "int->bool-prefix", "nested"],
)
def test_equal_but_differently_typed_items_keep_their_type(
    before: list[Any], after: list[Any]
) -> None:
    """A new version whose items are ``==`` to the previous ones but of another type
    (``1`` vs ``1.0`` vs ``True``) must read back with the new types: it is a different
    value, and msgpack would store it differently."""
    with database() as conn:
        store = BlobStore(StrictSerializer(), sql=sqlite_sql)
        first = store.put_channel_value(conn, before, None)
        second = store.put_channel_value(conn, after, first)
        for reader in (store, BlobStore(StrictSerializer(), sql=sqlite_sql)):
            loaded = reader.load(conn, [first, second])
            assert same(loaded[first], before)
            assert same(loaded[second], after), f"{after!r} read back as {loaded[second]!r}"


class ScoreState(TypedDict):
    scores: list[Any]


def test_graph_list_channel_keeps_float_items(db_path: str) -> None:
    """The same through a graph: a node that turns ``[1, 2]`` into ``[1.0, 2.0]`` must
    leave floats in the state, as it does on InMemorySaver."""

    def normalize(state: ScoreState) -> dict[str, Any]:
        return {"scores": [s / 1 for s in state["scores"]]}

    builder = StateGraph(ScoreState)
    builder.add_node("normalize", normalize)
    builder.add_edge(START, "normalize")
    builder.add_edge("normalize", END)

    reference = builder.compile(checkpointer=InMemorySaver())
    expected = reference.invoke({"scores": [1, 2]}, cfg("t"))
    assert same(expected["scores"], [1.0, 2.0])
    with AgentGitSaver.from_conn_string(db_path) as saver:
        graph = builder.compile(checkpointer=saver)
        graph.invoke({"scores": [1, 2]}, cfg("t"))
    with AgentGitSaver.from_conn_string(db_path) as saver:
        stored = builder.compile(checkpointer=saver).get_state(cfg("t")).values["scores"]
    assert same(stored, expected["scores"]), f"stored {stored!r}, expected {expected['scores']!r}"


class _EditedWhileSerialized(StrictSerializer):
    """Each serialization of a dict with a ``"seen"`` key bumps it first: the value changes
    under the saver, as a message does when LangGraph gives it an id on the loop thread
    while a background put is storing it."""

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        if isinstance(obj, dict) and "seen" in obj:
            obj["seen"] += 1
        return super().dumps_typed(obj)


def test_a_value_edited_while_it_is_stored_still_serves_as_a_hint() -> None:
    """A value compressed against another must be readable however that other value
    changed while it was being stored: the hint is the bytes that were stored, which a
    fresh store (cold caches, another process) reads back and decompresses with."""
    text = "the same long sentence, repeated in the write and in the channel value " * 4
    with database() as conn:
        store = BlobStore(_EditedWhileSerialized(), sql=sqlite_sql)
        # ``first`` is itself compressed against ``origin``: the path on which a value
        # was serialized once for the plain form and again for the hinted one.
        origin = store.put_value(conn, {"text": text})
        first = store.put_value(conn, {"seen": 0, "text": text}, hint_ids=[origin])
        second = store.put_value(conn, {"text": text, "more": 1}, hint_ids=[first])
        (deps,) = conn.execute("SELECT deps FROM agentgit_blobs WHERE id = ?", (second,)).fetchone()
        assert deps == f"[{first}]", "the second value was not compressed against the first"
        fresh = BlobStore(StrictSerializer(), sql=sqlite_sql)
        assert fresh.load(conn, [origin, first, second]) == {
            origin: {"text": text},
            first: {"seen": 1, "text": text},
            second: {"text": text, "more": 1},
        }


def test_values_alone_are_zstd_frames_and_zlib_values_still_read() -> None:
    """A value of more than 4 KiB compressed on its own is stored as a zstd frame (flag
    byte 2); a smaller one, or one compressed against a hint, as a zlib stream (flag 1);
    a large value an earlier version stored as zlib reads back the same."""
    text = "".join(f"answer {n} about shipping, returns and refunds; " for n in range(120))
    with database() as conn:
        store = BlobStore(StrictSerializer(), sql=sqlite_sql)
        alone = store.put_value(conn, {"text": text})
        small = store.put_value(conn, {"text": text[:1000]})
        hinted = store.put_value(conn, {"text": text, "more": 1}, hint_ids=[alone])
        rows = dict(conn.execute("SELECT id, data FROM agentgit_blobs").fetchall())
        assert len(text) > 4096
        assert [rows[alone][:1], rows[small][:1], rows[hinted][:1]] == [b"\x02", b"\x01", b"\x01"]
        type_name, payload = StrictSerializer().dumps_typed({"text": text, "old": True})
        older = b"\x01" + type_name.encode() + b"\x00" + blobs._compress(payload, b"")
        (old_id,) = conn.execute(
            "INSERT INTO agentgit_blobs(kind, data) VALUES (0, ?) RETURNING id", (older,)
        ).fetchone()
        fresh = BlobStore(StrictSerializer(), sql=sqlite_sql)
        assert fresh.load(conn, [alone, small, hinted, old_id]) == {
            alone: {"text": text},
            small: {"text": text[:1000]},
            hinted: {"text": text, "more": 1},
            old_id: {"text": text, "old": True},
        }


def test_a_value_that_is_one_of_its_hints_is_that_blob() -> None:
    """A message list's new tail is the write that carried it: the write's blob is reused
    (no second row). Only the same type counts: bytes that happen to equal a list's
    msgpack payload are stored apart and read back as bytes."""
    with database() as conn:
        store = BlobStore(StrictSerializer(), sql=sqlite_sql)
        write = store.put_value(conn, [{"role": "ai", "text": "an answer " * 8}])
        same = store.put_value(conn, [{"role": "ai", "text": "an answer " * 8}], hint_ids=[write])
        assert same == write
        type_name, payload = StrictSerializer().dumps_typed([1, 2, 3])
        listed = store.put_value(conn, [1, 2, 3])
        raw = store.put_value(conn, payload, hint_ids=[listed])
        assert raw != listed and StrictSerializer().dumps_typed(payload)[0] != type_name
        (rows,) = conn.execute("SELECT count(*) FROM agentgit_blobs").fetchone()
        assert rows == 3
        fresh = BlobStore(StrictSerializer(), sql=sqlite_sql)
        assert fresh.load(conn, [listed, raw]) == {listed: [1, 2, 3], raw: payload}


def test_a_chat_stores_each_message_once(db_path: str) -> None:
    """In a chat, a delta's tail is the blob of the pending write that carried the
    message, not a second copy of it, whenever that write was stored before the
    checkpoint (LangGraph stores writes and checkpoints from background threads, so under
    load a checkpoint can come first and is then stored with a tail of its own: the
    reuse is an optimization, never needed for correctness)."""
    with AgentGitSaver.from_conn_string(db_path) as saver:
        graph = build_chat_graph().compile(checkpointer=saver)
        # Four turns: eight versions of the list, the last seven deltas, short of the
        # first index (blobs.MIN_DELTA_DEPTH), which would pack the tails.
        for turn in range(4):
            ask = HumanMessage(f"question {turn} " * 10, id=f"h{turn}")
            graph.invoke({"messages": [ask]}, cfg("t"), durability="sync")
        assert len(graph.get_state(cfg("t")).values["messages"]) == 8
    with closing(sqlite3.connect(db_path)) as conn:
        written = {r[0] for r in conn.execute("SELECT blob_id FROM agentgit_writes")}
        deltas = conn.execute("SELECT deps FROM agentgit_blobs WHERE kind = ?", (LIST_DELTA,))
        tails = [json.loads(deps)[1] for (deps,) in deltas if len(json.loads(deps)) > 1]
    assert len(tails) == 7  # every version after the first adds one message
    # Without the reuse none would be a write's blob.
    assert len([t for t in tails if t in written]) >= 4


def _edit_message_content(items: list[Any]) -> None:
    items[1].content = "rebound"


def _edit_message_kwargs(items: list[Any]) -> None:
    items[0].additional_kwargs["seen"] = True


def _edit_tool_args(items: list[Any]) -> None:
    items[1].tool_calls[0]["args"]["n"] = 2


def _edit_dict_item(items: list[Any]) -> None:
    items[2]["meta"]["k"].append(1)


def _edit_list_item(items: list[Any]) -> None:
    items[3][0] = "changed"


def _edit_items(messages_only: bool) -> list[Any]:
    messages: list[Any] = [
        HumanMessage("question", id="h"),
        AIMessage("answer", id="a", tool_calls=[{"name": "t", "args": {"n": 1}, "id": "c"}]),
    ]
    if messages_only:
        return messages
    return [*messages, {"meta": {"k": [0]}, "nan": math.nan}, ["x", 1.5], "plain"]


_EDITS = [
    (True, _edit_message_content),
    (True, _edit_message_kwargs),
    (True, _edit_tool_args),
    (False, _edit_message_content),
    (False, _edit_tool_args),
    (False, _edit_dict_item),
    (False, _edit_list_item),
]


@pytest.mark.parametrize(
    ("messages_only", "edit"),
    _EDITS,
    ids=[f"{'messages' if m else 'mixed'}-{e.__name__[6:]}" for m, e in _EDITS],
)
def test_an_edit_in_place_is_seen_wherever_it_is(messages_only: bool, edit: Any) -> None:
    """The check a put and a read run over a whole list (the shared objects still hold
    what was stored) sees an edit at any depth, in a list of messages (compared in one
    C pass) and in a list holding other values (item by item), and nothing when nothing
    changed (a NaN shared with the copy included)."""
    items = _edit_items(messages_only)
    saved = blobs.fingerprints(items)
    assert blobs.all_unchanged(items, saved)
    assert blobs.all_unchanged(items, blobs.fingerprints(_edit_items(messages_only)))
    edit(items)
    assert not blobs.all_unchanged(items, saved), edit.__name__
    assert not blobs.all_unchanged(items[:-1], saved)  # another length


# --- packed tails ---------------------------------------------------------------------------------


def test_a_packed_tail_is_still_the_hint_other_values_were_compressed_against() -> None:
    """A tail that is a message's write is also what later values were compressed against
    (their dictionary). Packing rewrites its row as a slice of a pack: the bytes cut back
    out of the pack must be exactly the ones the other value was compressed with."""
    messages = [HumanMessage(f"question {i} " * 20, id=f"m-{i}") for i in range(12)]
    with database() as conn, max_delta_depth(3):
        store = BlobStore(StrictSerializer(), sql=sqlite_sql)
        previous: int | None = None
        writes = []
        for i in range(len(messages)):
            write = store.put_value(conn, [messages[i]], owner=1)
            writes.append(write)
            previous = store.put_channel_value(
                conn, messages[: i + 1], previous, hint_ids=[write], owner=1
            )
        # Compressed against the first write, which a later index packs.
        echo = {"said": [messages[0]], "note": "the first question, quoted"}
        quoted = store.put_value(conn, echo, hint_ids=[writes[0]], owner=1)
        kind, deps = conn.execute(
            "SELECT kind, deps FROM agentgit_blobs WHERE id = ?", (quoted,)
        ).fetchone()
        assert kind == 0 and deps == f"[{writes[0]}]"
        (first_kind,) = conn.execute(
            "SELECT kind FROM agentgit_blobs WHERE id = ?", (writes[0],)
        ).fetchone()
        assert first_kind == PACKED
        for cache_size in (50_000, 0):
            cold = BlobStore(StrictSerializer(), sql=sqlite_sql, cache_size=cache_size)
            found = cold.load(conn, [quoted, previous, *writes])
            assert same(found[quoted], echo)
            assert same(found[previous], messages)
            assert all(same(found[w], [m]) for w, m in zip(writes, messages, strict=True))


def test_a_pack_whose_tail_is_shared_meanwhile_leaves_that_tail_whole() -> None:
    """A tail another thread stored too (a digest hit made it shared) is not this
    thread's to rewrite: it keeps its row and the pack holds a copy of its items."""
    messages = [HumanMessage(f"line {i}", id=f"s-{i}") for i in range(10)]
    with database() as conn, max_delta_depth(3):
        store = BlobStore(StrictSerializer(), sql=sqlite_sql)
        previous: int | None = None
        ids = []
        shared = None
        for i in range(len(messages)):
            previous = store.put_channel_value(conn, messages[: i + 1], previous, owner=1)
            ids.append(previous)
            if i == 1:
                # The tail of version 2, stored again by another thread (owner 2).
                (shared,) = conn.execute(
                    "SELECT max(id) FROM agentgit_blobs WHERE kind = 0"
                ).fetchone()
                store.put_value(conn, [messages[1]], owner=2)
        assert shared is not None
        kind, owner = conn.execute(
            "SELECT kind, owner FROM agentgit_blobs WHERE id = ?", (shared,)
        ).fetchone()
        assert (kind, owner) == (0, None)
        assert (
            conn.execute(
                "SELECT count(*) FROM agentgit_blobs WHERE kind = ?", (PACKED,)
            ).fetchone()[0]
            > 0
        )
        cold = BlobStore(StrictSerializer(), sql=sqlite_sql, cache_size=0)
        found = cold.load(conn, ids)
        for i, blob_id in enumerate(ids):
            assert same(found[blob_id], messages[: i + 1])
