"""Packed tails (storage.blobs): every ``MAX_DELTA_DEPTH`` versions of a message list,
the tails a thread stored since the last index are stored again as one pack and their
rows become references into it. Real compiled graphs on both engines, compared with
LangGraph's InMemorySaver, read cold from a new saver."""

from __future__ import annotations

import io
import sqlite3
from pathlib import Path
from typing import Any

import ormsgpack
import pytest
from conftest import cfg, sql_rows
from graphs import build_chat_graph
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.memory import InMemorySaver
from test_cli_user import echo_graph
from typer.testing import CliRunner

from langgraph_agentgit import AgentGitSaver, CorruptDataError, SessionManager
from langgraph_agentgit.backends.sqlite import sql as schema
from langgraph_agentgit.backends.sqlite.connection import migrate
from langgraph_agentgit.cli import app
from langgraph_agentgit.storage.blobs import PACK, PACKED
from langgraph_agentgit.storage.check import check

TURNS = 80  # two messages a turn: past several indexes (blobs.MAX_DELTA_DEPTH)


def _say(graph: Any, thread: str, turn: int, checkpoint_id: str | None = None) -> None:
    graph.invoke(
        {"messages": [HumanMessage(f"question {turn}", id=f"h-{turn}")]}, cfg(thread, checkpoint_id)
    )


def _history(graph: Any, thread: str) -> list[tuple[Any, ...]]:
    return [(s.values, s.next, s.metadata["step"]) for s in graph.get_state_history(cfg(thread))]


def _chat(saver: Any, turns: int = TURNS) -> Any:
    graph = build_chat_graph().compile(checkpointer=saver)
    for turn in range(turns):
        _say(graph, "t", turn)
    return graph


def test_a_long_chat_reads_back_whole_after_its_tails_are_packed(any_db: str) -> None:
    """Every checkpoint of an 80-turn chat, and of a branch started inside the packed
    part, reads back as InMemorySaver's, from a new saver (nothing cached); the message
    index keeps a row for every message (a tail packed is not a blob gone)."""
    reference = _chat(InMemorySaver())
    with AgentGitSaver.from_conn_string(any_db) as saver:
        graph = _chat(saver)
        assert sql_rows(any_db, "SELECT count(*) FROM agentgit_search_docs") == [(2 * TURNS,)]
        # A checkpoint whose list is made of tails that were packed since.
        early = [
            s.config["configurable"]["checkpoint_id"] for s in graph.get_state_history(cfg("t"))
        ]
        ref_early = [
            s.config["configurable"]["checkpoint_id"] for s in reference.get_state_history(cfg("t"))
        ]
        _say(graph, "t", 999, early[-40])
        _say(reference, "t", 999, ref_early[-40])
    kinds = dict(sql_rows(any_db, "SELECT kind, count(*) FROM agentgit_blobs GROUP BY kind"))
    assert kinds.get(PACK, 0) >= 2 and kinds.get(PACKED, 0) >= 100
    with AgentGitSaver.from_conn_string(any_db) as saver:
        graph = build_chat_graph().compile(checkpointer=saver)
        assert graph.get_state(cfg("t")).values == reference.get_state(cfg("t")).values
        assert _history(graph, "t") == _history(reference, "t")


def test_an_index_leaves_no_row_unreached(tmp_path: Path) -> None:
    """After many indexes over tails that are rows of their own (messages without ids
    get theirs after the write that carried them was stored), the database checks clean
    and every question is found by search. The index names the newest tail itself: it
    used to pack it, leaving its row reached by nothing (seen under load, where a
    checkpoint is stored before its writes: test_faults' healthy database then held an
    orphan packed row in 10 of 24 runs)."""
    path = str(tmp_path / "chat.db")
    with AgentGitSaver.from_conn_string(path) as saver:
        mgr = SessionManager(saver)
        session = mgr.create_session(user_id="u")
        config = mgr.config(session.id)
        graph = echo_graph(saver)  # answers without ids
        for turn in range(30):
            question = HumanMessage(f"question {turn} about parcel{turn}x")
            graph.invoke({"messages": [question]}, config, durability="sync")
        assert len(graph.get_state(config).values["messages"]) == 60
        packs = sql_rows(path, "SELECT count(*) FROM agentgit_blobs WHERE kind = ?", (PACK,))
        assert packs[0][0] > 1
        with sqlite3.connect(path) as conn:
            report = check(conn)
        assert report.problems == [], [p.message for p in report.problems]
        for turn in (0, 9, 17, 29):
            hits = mgr.search(f"parcel{turn}x")
            assert hits and {h.session_id for h in hits} == {session.id}


def test_an_edit_to_a_message_read_cold_from_a_pack_spoils_no_later_read(any_db: str) -> None:
    """Tails read from their pack share its message objects. A caller editing one that a
    read handed out changes neither a later read nor the next checkpoint."""
    reference = _chat(InMemorySaver(), 40)
    with AgentGitSaver.from_conn_string(any_db) as saver:
        _chat(saver, 40)
    with AgentGitSaver.from_conn_string(any_db) as saver:
        graph = build_chat_graph().compile(checkpointer=saver)
        history = list(graph.get_state_history(cfg("t")))
        history[0].values["messages"][3].content = "edited by the caller"
        history[-20].values["messages"][3].content = "edited by the caller"
        assert _history(graph, "t") == _history(reference, "t")
        _say(graph, "t", 40)
        _say(reference, "t", 40)
        assert _history(graph, "t") == _history(reference, "t")


def _packed_row(db: str) -> tuple[int, int]:
    (row,) = sql_rows(db, "SELECT id, deps FROM agentgit_blobs WHERE kind = ? LIMIT 1", (PACKED,))
    return int(row[0]), int(str(row[1]).strip("[]"))


def test_check_and_reads_name_a_packed_tail_cut_outside_its_pack(tmp_path: Path) -> None:
    """A packed row whose slice lies outside its pack is damage: `agentgit check` names
    the blob, and a read raises CorruptDataError instead of returning other messages."""
    db = str(tmp_path / "agentgit.db")
    with AgentGitSaver.from_conn_string(db) as saver:
        _chat(saver, 40)
    blob_id, _pack_id = _packed_row(db)
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE agentgit_blobs SET data = ? WHERE id = ?",
            (ormsgpack.packb([500, 501, 10, 20]), blob_id),
        )
    result = CliRunner().invoke(app, ["check", "--db", db], env={"COLUMNS": "200"})
    assert result.exit_code != 0
    assert f"blob {blob_id}" in result.output, result.output
    with AgentGitSaver.from_conn_string(db) as saver:
        graph = build_chat_graph().compile(checkpointer=saver)
        with pytest.raises(CorruptDataError) as raised:
            list(graph.get_state_history(cfg("t")))
        assert raised.value.blob_id == blob_id


@pytest.mark.parametrize("pick", ["min", "max"], ids=["value-read-later", "value-read-first"])
def test_a_packed_tail_naming_a_value_that_is_not_a_pack_is_damage(
    tmp_path: Path, pick: str
) -> None:
    """The value a damaged PACKED row names may be one the same read decodes first (the
    newest tail, "max"), or one it does not otherwise read ("min"): either way the read
    fails naming the packed row, instead of slicing a value that is not a pack."""
    db = str(tmp_path / "agentgit.db")
    with AgentGitSaver.from_conn_string(db) as saver:
        _chat(saver, 40)
    blob_id, _pack_id = _packed_row(db)
    (other,) = sql_rows(db, f"SELECT {pick}(id) FROM agentgit_blobs WHERE kind = 0")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE agentgit_blobs SET deps = ? WHERE id = ?", (f"[{other[0]}]", blob_id))
    result = CliRunner().invoke(app, ["check", "--db", db], env={"COLUMNS": "200"})
    assert result.exit_code != 0 and f"packed blob {blob_id} names no pack" in result.output
    with AgentGitSaver.from_conn_string(db) as saver:
        graph = build_chat_graph().compile(checkpointer=saver)
        with pytest.raises(CorruptDataError, match="names no pack") as raised:
            list(graph.get_state_history(cfg("t")))
        assert raised.value.blob_id == blob_id


def test_a_database_migrated_to_packs_keeps_its_message_index(tmp_path: Path) -> None:
    """Before migration 14 a blob's delete took its messages out of the index; packing
    deletes a tail's row to store it again, so the trigger must tell the two apart."""
    db = str(tmp_path / "agentgit.db")
    conn = sqlite3.connect(db, isolation_level=None)
    assert migrate(conn, schema.MIGRATIONS[:13]) == 13
    conn.close()
    with AgentGitSaver.from_conn_string(db) as saver:
        _chat(saver, 40)
    assert sql_rows(db, "SELECT count(*) FROM agentgit_blobs WHERE kind = ?", (PACKED,))[0][0] > 0
    assert sql_rows(db, "SELECT count(*) FROM agentgit_search_docs") == [(80,)]


def _session_history(db: str) -> list[Any]:
    with AgentGitSaver.from_conn_string(db) as saver:
        mgr = SessionManager(saver)
        graph = build_chat_graph().compile(checkpointer=saver)
        out = []
        for session in mgr.list_sessions():
            for thread_id in sorted(b.thread_id for b in mgr.branches(session.id)):
                out.append((session.name, _history(graph, thread_id)))
        return out


def test_a_packed_session_moves_whole_by_export_import_and_by_copy(
    any_db: str, tmp_path: Path
) -> None:
    """Export and import write every value anew (a pack arrives as a plain value); a copy
    keeps the rows as they are. Either way every checkpoint reads back the same."""
    source = str(tmp_path / "source.db")
    with AgentGitSaver.from_conn_string(source) as saver:
        mgr = SessionManager(saver)
        graph = build_chat_graph().compile(checkpointer=saver)
        session = mgr.create_session(name="long")
        for turn in range(40):
            _say_in(graph, mgr.config(session.id), turn)
        mgr.rollback(session.id, mgr.turns(session.id)[5].before_checkpoint_id)
        _say_in(graph, mgr.config(session.id), 99)
        buffer = io.StringIO()
        mgr.export_sessions(buffer)
    assert sql_rows(source, "SELECT count(*) FROM agentgit_blobs WHERE kind = ?", (PACKED,))[0][0]
    expected = _session_history(source)
    with AgentGitSaver.from_conn_string(any_db) as saver:
        SessionManager(saver).import_sessions(io.StringIO(buffer.getvalue()))
    assert _session_history(any_db) == expected
    copied = str(tmp_path / "copied.db")
    result = CliRunner().invoke(app, ["copy", source, copied], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert _session_history(copied) == expected


def _say_in(graph: Any, config: Any, turn: int) -> None:
    graph.invoke({"messages": [HumanMessage(f"question {turn}", id=f"h-{turn}")]}, config)
