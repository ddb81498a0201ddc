"""Failed writes leave nothing behind, and damaged data is an error, never another state.

Failing inputs of the reliability issue that concern reads and writes of the store: a
rolled-back write's values must not reach another thread through a cache, metadata that
is not JSON is refused, a missing or damaged value raises ``CorruptDataError`` naming
thread, checkpoint and blob (other threads unaffected), a cycle of parent links ends the
read instead of hanging it, a run cannot recreate the threads of a deleted session, and
caches are bounded by bytes.
"""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from contextlib import closing
from typing import Annotated, Any, TypedDict

import pytest
from conftest import cfg
from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from test_correctness_regressions import build_delta_log
from typer.testing import CliRunner

from langgraph_agentgit import (
    AgentGitSaver,
    CorruptDataError,
    SessionManager,
    StrictSerializer,
    ThreadDeletedError,
    ThreadExistsError,
)
from langgraph_agentgit.cli import app
from langgraph_agentgit.storage import blobs
from langgraph_agentgit.storage.check import check, repair


class ChatState(TypedDict, total=False):
    messages: Annotated[list[AnyMessage], add_messages]
    extra: Any


def build_chat(reply: Any = None) -> StateGraph:
    """One node answering the last message; ``reply(text)`` may return extra state."""

    def answer(state: ChatState) -> dict[str, Any]:
        text = f"echo: {state['messages'][-1].content}"
        update: dict[str, Any] = {"messages": [AIMessage(text)]}
        if reply is not None:
            update.update(reply(text))
        return update

    builder = StateGraph(ChatState)
    builder.add_node("answer", answer)
    builder.add_edge(START, "answer")
    builder.add_edge("answer", END)
    return builder


@pytest.fixture
def saver(db_path: str) -> Iterator[AgentGitSaver]:
    with AgentGitSaver.from_conn_string(db_path) as opened:
        yield opened


def texts(values: dict[str, Any]) -> list[str]:
    return [m.content for m in values.get("messages", [])]


# --- 1. a failed write leaks nothing -------------------------------------------------------


def test_failed_write_leaks_nothing_to_the_next_thread(saver: AgentGitSaver) -> None:
    """A node's value that cannot be serialized fails the turn after the reply was stored
    in the same transaction; the ids SQLite hands out again must not read back the
    failed reply through the decode cache."""

    def poison(text: str) -> dict[str, Any]:
        if "secret" in text:
            return {"messages": [AIMessage("SECRET reply of t1")], "extra": lambda: None}
        return {}

    graph = build_chat(poison).compile(checkpointer=saver)
    with pytest.raises(TypeError):
        graph.invoke({"messages": [HumanMessage("secret")]}, cfg("t1"))
    graph.invoke({"messages": [HumanMessage("hello from t2")]}, cfg("t2"))
    history = [texts(s.values) for s in graph.get_state_history(cfg("t2"))]
    assert all("SECRET reply of t1" not in m for h in history for m in h)
    assert texts(graph.get_state(cfg("t2")).values) == ["hello from t2", "echo: hello from t2"]
    # A fresh reader agrees with the cached one.
    with AgentGitSaver.from_conn_string(saver_path(saver)) as fresh:
        assert [
            texts(s.values)
            for s in build_chat().compile(checkpointer=fresh).get_state_history(cfg("t2"))
        ] == history


def saver_path(saver: AgentGitSaver) -> str:
    return str(saver.conn.execute("PRAGMA database_list").fetchone()[2])


# --- 2. metadata that JSON cannot hold -----------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_metadata_is_refused_and_search_keeps_working(saver: AgentGitSaver, bad: float) -> None:
    graph = build_chat().compile(checkpointer=saver)
    graph.invoke({"messages": [HumanMessage("hi")]}, cfg("ok"))
    config: Any = {**cfg("bad"), "metadata": {"score": bad}}
    with pytest.raises(ValueError, match="NaN or an infinite float"):
        graph.invoke({"messages": [HumanMessage("hi")]}, config)
    assert saver.get_tuple(cfg("bad")) is None  # nothing of the refused turn is stored
    found = list(saver.list(None, filter={"source": "loop"}))
    assert found and {t.config["configurable"]["thread_id"] for t in found} == {"ok"}


# --- 3 and 4. missing and damaged values ------------------------------------------------------


def two_threads(saver: AgentGitSaver) -> tuple[Any, dict[str, int]]:
    """Two threads with a turn each; returns the graph and, per thread, a blob only its
    head references (its reply)."""
    graph = build_chat().compile(checkpointer=saver)
    for thread in ("hurt", "fine"):
        graph.invoke({"messages": [HumanMessage(f"hello {thread}")]}, cfg(thread))
    own: dict[str, int] = {}
    for thread in ("hurt", "fine"):
        head = saver.get_tuple(cfg(thread))
        assert head is not None
        refs = saver.conn.execute(
            "SELECT refs FROM agentgit_checkpoints WHERE checkpoint_id = ?",
            (head.config["configurable"]["checkpoint_id"],),
        ).fetchone()[0]
        own[thread] = max(int(v) for v in json.loads(refs).values())
    return graph, own


def damage(path: str, sql: str, params: tuple[Any, ...] = ()) -> None:
    with closing(sqlite3.connect(path)) as conn:
        conn.execute(sql, params)
        conn.commit()


DAMAGE = {
    "missing value": "DELETE FROM agentgit_blobs WHERE id = ?",
    "garbled value": "UPDATE agentgit_blobs SET data = x'01ffee00aabbccdd' WHERE id = ?",
    "truncated value": (
        "UPDATE agentgit_blobs SET data = substr(data, 1, length(data) / 2) WHERE id = ?"
    ),
    "unknown kind": "UPDATE agentgit_blobs SET kind = 9 WHERE id = ?",
    "bad parts": "UPDATE agentgit_blobs SET deps = '[1, \"x\"' WHERE id = ?",
    "parts missing": "UPDATE agentgit_blobs SET deps = '[987654]' WHERE id = ?",
    # A zstd frame (flag 2) of garbage, and one announcing a terabyte: zstd allocates
    # what a frame announces, so the size must be refused before it is inflated.
    "garbled zstd frame": (
        "UPDATE agentgit_blobs SET data = x'026d73677061636b00ffee0011' WHERE id = ?"
    ),
    "zstd frame of a forged size": (
        "UPDATE agentgit_blobs SET data = x'026d73677061636b00e00000000000010000010000' "
        "WHERE id = ?"
    ),
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_damaged_value_is_an_error_naming_it(db_path: str, kind: str) -> None:
    with AgentGitSaver.from_conn_string(db_path) as saver:
        graph, own = two_threads(saver)
        fine = graph.get_state(cfg("fine")).values
    damage(db_path, DAMAGE[kind], (own["hurt"],))
    with AgentGitSaver.from_conn_string(db_path) as saver:  # a fresh process's view
        graph = build_chat().compile(checkpointer=saver)
        with pytest.raises(CorruptDataError) as raised:
            saver.get_tuple(cfg("hurt"))
        assert raised.value.thread_id == "hurt"
        assert raised.value.checkpoint_id is not None
        assert "hurt" in str(raised.value)
        with pytest.raises(CorruptDataError):
            list(saver.list(cfg("hurt")))
        # The other thread reads as before.
        assert graph.get_state(cfg("fine")).values == fine


@pytest.mark.parametrize("size", [1000, 20_000], ids=["zlib stream", "zstd frame"])
def test_a_flipped_bit_in_a_stored_value_is_an_error_or_nothing(size: int) -> None:
    """Every single-bit flip in a compressed value's bytes either fails the read with
    CorruptDataError or leaves its payload as it was: never other text. (Packs over
    4 KiB are zstd frames; without a checksum about half of such flips read back as
    altered messages.)"""
    text = "".join(f"answer {n}: shipping, returns and refunds. " for n in range(size // 40))
    type_name, payload = StrictSerializer().dumps_typed([{"content": text[:size]}])
    stored = blobs.pack(type_name, payload)
    head = 1 + len(type_name) + 1
    assert stored[:1] == (b"\x02" if size > 4096 else b"\x01")
    outcomes = {"error": 0, "same": 0}
    for at in range(head, len(stored)):
        for bit in range(8):
            damaged = bytearray(stored)
            damaged[at] ^= 1 << bit
            try:
                found = blobs.raw_payload(bytes(damaged))
            except CorruptDataError:
                outcomes["error"] += 1
                continue
            assert found == (type_name, payload), f"byte {at} bit {bit} read back other bytes"
            outcomes["same"] += 1
    assert outcomes["error"] > outcomes["same"]


def test_missing_pending_write_value_is_an_error(db_path: str) -> None:
    with AgentGitSaver.from_conn_string(db_path) as saver:
        two_threads(saver)
        (blob,) = saver.conn.execute(
            "SELECT w.blob_id FROM agentgit_writes w JOIN agentgit_threads t "
            "ON t.pk = w.thread_pk WHERE t.thread_id = 'hurt' LIMIT 1"
        ).fetchone()
        shared = saver.conn.execute(
            "SELECT count(*) FROM agentgit_writes WHERE blob_id = ?", (blob,)
        ).fetchone()[0]
        assert shared == 1
    damage(db_path, "DELETE FROM agentgit_blobs WHERE id = ?", (blob,))
    with AgentGitSaver.from_conn_string(db_path) as saver:
        with pytest.raises(CorruptDataError) as raised:
            list(saver.list(cfg("hurt")))
        assert raised.value.blob_id == blob
        assert saver.get_tuple(cfg("fine")) is not None


@pytest.mark.parametrize(
    "column,value",
    [
        ("body", b"\x01garbage"),
        ("refs", "{not json"),
        ("refs", '{"messages": "x"}'),
        ("metadata", "{oops"),
    ],
)
def test_damaged_checkpoint_row_is_an_error(db_path: str, column: str, value: Any) -> None:
    with AgentGitSaver.from_conn_string(db_path) as saver:
        two_threads(saver)
        head = saver.get_tuple(cfg("hurt"))
        assert head is not None
        checkpoint_id = head.config["configurable"]["checkpoint_id"]
    damage(
        db_path,
        f"UPDATE agentgit_checkpoints SET {column} = ? WHERE checkpoint_id = ?",
        (value, checkpoint_id),
    )
    with AgentGitSaver.from_conn_string(db_path) as saver:
        with pytest.raises(CorruptDataError) as raised:
            saver.get_tuple(cfg("hurt"))
        assert raised.value.checkpoint_id == checkpoint_id
        assert saver.get_tuple(cfg("fine")) is not None


def test_session_views_raise_for_a_damaged_session_only(db_path: str) -> None:
    with AgentGitSaver.from_conn_string(db_path) as saver:
        mgr = SessionManager(saver)
        graph = build_chat().compile(checkpointer=saver)
        hurt, fine = mgr.create_session(user_id="u"), mgr.create_session(user_id="u")
        for session in (hurt, fine):
            graph.invoke({"messages": [HumanMessage("hello")]}, mgr.config(session.id))
        head = saver.get_tuple(mgr.config(hurt.id))
        assert head is not None
    with closing(sqlite3.connect(db_path)) as conn:
        (refs_text,) = conn.execute(
            "SELECT refs FROM agentgit_checkpoints WHERE checkpoint_id = ?",
            (head.config["configurable"]["checkpoint_id"],),
        ).fetchone()
    # The newest value the head references: its reply, which no other session shares.
    target = max(json.loads(refs_text).values())
    damage(db_path, "DELETE FROM agentgit_blobs WHERE id = ?", (target,))
    with AgentGitSaver.from_conn_string(db_path) as saver:
        mgr = SessionManager(saver)
        with pytest.raises(CorruptDataError):
            mgr.checkpoints(hurt.id)
        with pytest.raises(CorruptDataError):
            mgr.timeline(hurt.id)
        assert len(mgr.checkpoints(fine.id)) > 0
        assert {s.id for s in mgr.list_sessions()} == {hurt.id, fine.id}


def _one_turn_session(db_path: str) -> tuple[str, str, bytes]:
    """A session of one turn: its id, its head checkpoint's id and stored record."""
    with AgentGitSaver.from_conn_string(db_path) as saver:
        mgr = SessionManager(saver)
        graph = build_chat().compile(checkpointer=saver)
        session = mgr.create_session(user_id="u")
        graph.invoke({"messages": [HumanMessage("hello")]}, mgr.config(session.id))
        head = saver.get_tuple(mgr.config(session.id))
        assert head is not None
        checkpoint_id = head.config["configurable"]["checkpoint_id"]
        (body,) = saver.conn.execute(
            "SELECT body FROM agentgit_checkpoints WHERE checkpoint_id = ?", (checkpoint_id,)
        ).fetchone()
    return session.id, checkpoint_id, bytes(body)


@pytest.mark.parametrize(
    "body",
    [
        b"\x01msgpack\x00" + b"\x78\x9c\xff\xfe garbage",
        b"\x02msgpack\x00" + b"\x20\x05garbage",
        b"\x00msgpack\x00\xc1",
    ],
    ids=["zlib", "zstd", "msgpack"],
)
def test_a_damaged_checkpoint_record_is_an_error_in_every_view(
    db_path: str, tmp_path: Any, body: bytes
) -> None:
    """A checkpoint record that cannot be inflated or decoded fails the session views and
    an export with CorruptDataError naming the checkpoint (not zlib's or zstd's own
    error); the CLI says so in one line."""
    session_id, checkpoint_id, _record = _one_turn_session(db_path)
    damage(
        db_path,
        "UPDATE agentgit_checkpoints SET body = ? WHERE checkpoint_id = ?",
        (body, checkpoint_id),
    )
    with AgentGitSaver.from_conn_string(db_path) as saver:
        mgr = SessionManager(saver)
        for view in (mgr.timeline, mgr.turns, mgr.checkpoints):
            with pytest.raises(CorruptDataError) as raised:
                view(session_id)
            assert raised.value.checkpoint_id == checkpoint_id, view
    done = CliRunner().invoke(app, ["export", "-o", str(tmp_path / "out.jsonl"), "--db", db_path])
    if body[:1] == b"\x00":
        # An export copies a record's payload without decoding it: only one that cannot
        # be inflated fails it (an import decodes every record and refuses this one).
        assert done.exit_code == 0, done.output
        return
    assert done.exit_code != 0
    assert "error:" in done.output and checkpoint_id in done.output, done.output
    assert "unexpected" not in done.output


def _forged(field: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    def forge(record: dict[str, Any]) -> Any:
        return {**record, field: value}

    return forge


@pytest.mark.parametrize(
    "forge",
    [
        _forged("v", "x"),
        _forged("ts", 5),
        _forged("channel_versions", 5),
        _forged("channel_versions", {"messages": [1]}),
        _forged("versions_seen", 5),
        _forged("versions_seen", {"node": "x"}),
        _forged("updated_channels", 5),
        lambda record: 5,
        lambda record: [record],
    ],
    ids=[
        "version",
        "timestamp",
        "channel versions",
        "a channel version",
        "versions seen",
        "a node's versions seen",
        "updated channels",
        "a number",
        "a list",
    ],
)
def test_a_checkpoint_record_of_other_shapes_is_named_as_damage(
    db_path: str, forge: Callable[[dict[str, Any]], Any]
) -> None:
    """A record that decodes, but not to the shapes of LangGraph's Checkpoint (a forged
    row), fails reads and the session views with CorruptDataError naming the checkpoint
    (LangGraph raised a TypeError of its own) and is reported by ``check``."""
    session_id, checkpoint_id, body = _one_turn_session(db_path)
    serde = StrictSerializer()
    forged = serde.dumps_typed(forge(blobs.decode_value(serde, body)))
    damage(
        db_path,
        "UPDATE agentgit_checkpoints SET body = ? WHERE checkpoint_id = ?",
        (blobs.pack(*forged), checkpoint_id),
    )
    with AgentGitSaver.from_conn_string(db_path) as saver:
        mgr = SessionManager(saver)
        reads = [
            lambda: saver.get_tuple(mgr.config(session_id)),
            lambda: list(saver.list(mgr.config(session_id))),
            lambda: mgr.timeline(session_id),
            lambda: mgr.turns(session_id),
        ]
        for read in reads:
            with pytest.raises(CorruptDataError) as raised:
                read()
            assert raised.value.checkpoint_id == checkpoint_id
        report = check(saver.conn)
    assert any(
        p.kind == "undecodable-checkpoint" and checkpoint_id in p.message for p in report.problems
    ), report.problems


def test_an_unknown_compression_flag_is_damage() -> None:
    with pytest.raises(CorruptDataError, match="unknown compression flag"):
        blobs.raw_payload(b"\x07msgpack\x00\x90")


# --- 5. a cycle of parent links ------------------------------------------------------------

CYCLE_READER = textwrap.dedent(
    """
    import sys
    from langgraph_agentgit import AgentGitSaver, CorruptDataError
    with AgentGitSaver.from_conn_string(sys.argv[1]) as saver:
        config = {"configurable": {"thread_id": sys.argv[2]}}
        for read in (lambda: list(saver.list(config)), lambda: saver.get_tuple(config)):
            try:
                read()
            except CorruptDataError as exc:
                print("CorruptDataError:", exc)
            else:
                print("read without error")
    """
)


@pytest.mark.parametrize("link", ["parent_rid", "parent_pk"])
def test_cycle_of_parent_links_ends_the_read(db_path: str, link: str) -> None:
    """A corrupt cycle (the library never writes one) gives an error within seconds in a
    real process, instead of a read that runs forever while memory grows."""
    with AgentGitSaver.from_conn_string(db_path) as saver:
        graph = build_chat().compile(checkpointer=saver)
        graph.invoke({"messages": [HumanMessage("one")]}, cfg("base"))
        graph.invoke({"messages": [HumanMessage("two")]}, cfg("base"))
        first = list(saver.list(cfg("base")))[-1].config["configurable"]["checkpoint_id"]
        saver.fork_thread("base", first, "fork")
        graph.invoke({"messages": [HumanMessage("three")]}, cfg("fork"))
    if link == "parent_rid":
        # The oldest row of "base" points at its newest: the fork's walk loops.
        damage(
            db_path,
            "UPDATE agentgit_checkpoints SET parent_rid = (SELECT max(rid) FROM "
            "agentgit_checkpoints WHERE ns = '' AND thread_pk = 1) "
            "WHERE rid = (SELECT min(rid) FROM agentgit_checkpoints)",
        )
    else:
        damage(db_path, "UPDATE agentgit_threads SET parent_pk = 2 WHERE pk = 1")
    done = subprocess.run(
        [sys.executable, "-c", CYCLE_READER, db_path, "fork"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "CorruptDataError" in done.stdout and "cycle" in done.stdout


# --- 9. a deleted session stays deleted ----------------------------------------------------


def test_run_cannot_recreate_threads_of_a_deleted_session(db_path: str) -> None:
    """The session is deleted (through another connection, as another process would)
    while its turn runs: the turn fails with ThreadDeletedError and nothing of the
    session remains."""
    with AgentGitSaver.from_conn_string(db_path) as saver:
        mgr = SessionManager(saver)
        session = mgr.create_session(user_id="u")

        def delete_meanwhile(text: str) -> dict[str, Any]:
            with AgentGitSaver.from_conn_string(db_path) as other:
                SessionManager(other).delete_session(session.id)
            return {}

        graph = build_chat(delete_meanwhile).compile(checkpointer=saver)
        config = mgr.config(session.id)
        thread_id = config["configurable"]["thread_id"]
        with pytest.raises(ThreadDeletedError, match=session.id):
            graph.invoke({"messages": [HumanMessage("hello")]}, config)
        assert saver.get_tuple(cfg(thread_id)) is None
    with closing(sqlite3.connect(db_path)) as conn:
        assert conn.execute("SELECT count(*) FROM agentgit_threads").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM agentgit_checkpoints").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM agentgit_writes").fetchone()[0] == 0
        assert conn.execute("SELECT count(*) FROM agentgit_sessions").fetchone()[0] == 0


def test_a_new_session_may_name_a_deleted_thread_again(saver: AgentGitSaver) -> None:
    mgr = SessionManager(saver)
    graph = build_chat().compile(checkpointer=saver)
    first = mgr.create_session(user_id="u", thread_id="chat")
    graph.invoke({"messages": [HumanMessage("one")]}, mgr.config(first.id))
    mgr.delete_session(first.id)
    with pytest.raises(ThreadDeletedError):
        graph.invoke({"messages": [HumanMessage("late")]}, cfg("chat"))
    second = mgr.create_session(user_id="u", thread_id="chat")
    graph.invoke({"messages": [HumanMessage("two")]}, mgr.config(second.id))
    assert texts(graph.get_state(cfg("chat")).values) == ["two", "echo: two"]


# --- 10. caches bounded by bytes -----------------------------------------------------------


def cached_bytes(saver: AgentGitSaver) -> int:
    blobs = saver.store.blobs
    return sum(cache.weight for cache in (blobs._values, blobs._items, blobs._raw, blobs._slices))


@pytest.mark.parametrize("cache_size", [0, 2_000_000])
def test_caches_hold_at_most_their_byte_budget(db_path: str, cache_size: int) -> None:
    big = "x" * 1_000_000
    with AgentGitSaver.from_conn_string(db_path, cache_size=cache_size) as saver:
        graph = build_chat().compile(checkpointer=saver)
        for turn in range(6):
            graph.invoke({"messages": [HumanMessage(f"{turn} {big}")]}, cfg("t"))
        history = list(graph.get_state_history(cfg("t")))
        assert len(history) == 18
        assert len(history[0].values["messages"]) == 12
        # Everything kept is counted, and the count stays within budget: at most
        # cache_size for values plus the fractions of it the other caches get.
        assert cached_bytes(saver) <= cache_size * (1 + 1 / 4 + 1 / 8 + 1 / 16)
        if cache_size == 0:
            blobs = saver.store.blobs
            assert not any(len(c) for c in (blobs._values, blobs._items, blobs._raw))


# --- found by trying to break it -------------------------------------------------------------


def delta_thread(saver: AgentGitSaver) -> Any:
    """A thread whose DeltaChannel list is rebuilt from the writes of its ancestors."""
    graph = build_delta_log().compile(checkpointer=saver)
    for turn in range(3):
        graph.invoke({"log": [f"in{turn}"]}, cfg("t"))
    return graph


@pytest.mark.parametrize("damage_kind", ["middle row deleted", "parent link dangling"])
def test_a_broken_parent_chain_is_an_error_not_a_shorter_value(
    db_path: str, damage_kind: str
) -> None:
    with AgentGitSaver.from_conn_string(db_path) as saver:
        delta_thread(saver)
    with closing(sqlite3.connect(db_path)) as conn:
        rids = [r[0] for r in conn.execute("SELECT rid FROM agentgit_checkpoints ORDER BY rid")]
        if damage_kind == "middle row deleted":
            conn.execute("DELETE FROM agentgit_checkpoints WHERE rid = ?", (rids[len(rids) // 2],))
        else:
            conn.execute(
                "UPDATE agentgit_checkpoints SET parent_rid = 999999 WHERE rid = ?", (rids[-1],)
            )
        conn.commit()
    with AgentGitSaver.from_conn_string(db_path) as saver:
        graph = build_delta_log().compile(checkpointer=saver)
        with pytest.raises(CorruptDataError, match="parent"):
            graph.get_state(cfg("t"))


def test_an_edited_snapshot_is_never_read_back_or_stored(db_path: str) -> None:
    """A caller redacting a message of a snapshot for display edits a shared object: later
    reads and the next checkpoint must still hold what was stored."""
    with AgentGitSaver.from_conn_string(db_path) as saver:
        graph = build_chat().compile(checkpointer=saver)
        graph.invoke({"messages": [HumanMessage("my card is 4111")]}, cfg("t"))
        shown = graph.get_state(cfg("t")).values["messages"][0]
        shown.content = "[redacted]"
        assert texts(graph.get_state(cfg("t")).values)[0] == "my card is 4111"
        graph.invoke({"messages": [HumanMessage("next")]}, cfg("t"))
    with AgentGitSaver.from_conn_string(db_path) as saver:
        graph = build_chat().compile(checkpointer=saver)
        assert texts(graph.get_state(cfg("t")).values)[0] == "my card is 4111"


def test_copy_thread_never_merges_into_an_existing_thread(saver: AgentGitSaver) -> None:
    graph = build_chat().compile(checkpointer=saver)
    graph.invoke({"messages": [HumanMessage("a")]}, cfg("A"))
    graph.invoke({"messages": [HumanMessage("b")]}, cfg("B"))
    before = [s.values for s in graph.get_state_history(cfg("B"))]
    for target in ("B", "A"):
        with pytest.raises(ThreadExistsError, match=target):
            saver.copy_thread("A", target)
    assert [s.values for s in graph.get_state_history(cfg("B"))] == before


def test_run_cannot_recreate_a_deleted_branch(db_path: str) -> None:
    with AgentGitSaver.from_conn_string(db_path) as saver:
        mgr = SessionManager(saver)
        session = mgr.create_session(user_id="u")
        graph = build_chat().compile(checkpointer=saver)
        graph.invoke({"messages": [HumanMessage("one")]}, mgr.config(session.id))
        first = mgr.checkpoints(session.id)[-1].config["configurable"]["checkpoint_id"]
        branch = mgr.rollback(session.id, first)

        def delete_meanwhile(text: str) -> dict[str, Any]:
            with AgentGitSaver.from_conn_string(db_path) as other:
                SessionManager(other).delete_branch(session.id, branch.thread_id)
            return {}

        racing = build_chat(delete_meanwhile).compile(checkpointer=saver)
        with pytest.raises(ThreadDeletedError, match=session.id):
            racing.invoke({"messages": [HumanMessage("two")]}, cfg(branch.thread_id))
        assert saver.get_tuple(cfg(branch.thread_id)) is None
        assert mgr.session_of(branch.thread_id) is None


def test_repair_keeps_the_writes_of_a_thread_that_lost_its_row(db_path: str) -> None:
    with AgentGitSaver.from_conn_string(db_path) as saver:
        graph = build_chat().compile(checkpointer=saver)
        graph.invoke({"messages": [HumanMessage("hi")]}, cfg("t"))
    with closing(sqlite3.connect(db_path, isolation_level=None)) as conn:
        writes = conn.execute("SELECT count(*) FROM agentgit_writes").fetchone()[0]
        row = conn.execute("SELECT * FROM agentgit_threads WHERE thread_id = 't'").fetchone()
        conn.execute("DELETE FROM agentgit_threads WHERE thread_id = 't'")
        kinds = {p.kind for p in check(conn).problems}
        assert "missing-thread" in kinds and "orphan-write" not in kinds
        conn.execute("BEGIN IMMEDIATE")
        repair(conn)
        conn.execute("COMMIT")
        assert conn.execute("SELECT count(*) FROM agentgit_writes").fetchone()[0] == writes
        columns = ",".join("?" * len(row))
        conn.execute(f"INSERT INTO agentgit_threads VALUES ({columns})", row)
    with AgentGitSaver.from_conn_string(db_path) as saver:
        assert texts(build_chat().compile(checkpointer=saver).get_state(cfg("t")).values) == [
            "hi",
            "echo: hi",
        ]


def test_a_hint_loop_between_values_is_an_error(db_path: str) -> None:
    with AgentGitSaver.from_conn_string(db_path) as saver:
        graph = build_chat().compile(checkpointer=saver)
        graph.invoke({"messages": [HumanMessage("hi " * 50)]}, cfg("t"))
    with closing(sqlite3.connect(db_path)) as conn:
        hinted = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM agentgit_blobs WHERE kind = 0 AND deps IS NOT NULL"
            )
        ]
        assert hinted
        conn.execute("UPDATE agentgit_blobs SET deps = json_array(id) WHERE id = ?", (hinted[0],))
        conn.commit()
    with AgentGitSaver.from_conn_string(db_path) as saver:
        # The history holds every value, the looping one included.
        with pytest.raises(CorruptDataError):
            list(saver.list(cfg("t")))
        with pytest.raises(CorruptDataError):
            list(build_chat().compile(checkpointer=saver).get_state_history(cfg("t")))


def test_an_empty_thread_id_is_a_thread_as_in_langgraphs_savers(saver: AgentGitSaver) -> None:
    graph = build_chat().compile(checkpointer=saver)
    graph.invoke({"messages": [HumanMessage("hi")]}, cfg(""))
    assert texts(graph.get_state(cfg("")).values) == ["hi", "echo: hi"]
    with pytest.raises(ValueError, match="thread_id"):
        saver.get_tuple({"configurable": {}})


def test_a_connection_bound_to_one_thread_is_refused_at_once(db_path: str) -> None:
    conn = sqlite3.connect(db_path)
    try:
        with pytest.raises(ValueError, match="check_same_thread=False"):
            AgentGitSaver(conn)
    finally:
        conn.close()
    shared = sqlite3.connect(db_path, check_same_thread=False)
    try:
        graph = build_chat().compile(checkpointer=AgentGitSaver(shared))
        graph.invoke({"messages": [HumanMessage("hi")]}, cfg("t"))
        assert texts(graph.get_state(cfg("t")).values) == ["hi", "echo: hi"]
    finally:
        shared.close()
