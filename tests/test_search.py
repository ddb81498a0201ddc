"""Full-text search and usage counters (issue 12, points 2 and 3), on real branches.

Real compiled graphs (the token-reporting tool agent of ``test_session_features``) on
both engines, through the sync and the async API. What a search should find, and what
the counters should say, is recomputed from LangGraph's own ``get_state_history`` of
every live branch: each message of the union of those histories once (known by its id
and content).
"""

from __future__ import annotations

import io
import json
import re
import unicodedata
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, TypedDict

import pg
import pytest
from langchain_core.messages import AIMessage, AnyMessage, BaseMessage, RemoveMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from session_graphs import cfg, cid
from test_session_features import MODES, World, open_world
from typer.testing import CliRunner

from langgraph_agentgit import (
    AgentGitSaver,
    CheckpointNotFoundError,
    LastBranchError,
    ReadOnlyDatabaseError,
    SessionManager,
    SessionNotFoundError,
    TurnNotFoundError,
)
from langgraph_agentgit.cli import app
from langgraph_agentgit.storage.search import MARK_END, MARK_START

runner = CliRunner()


@pytest.fixture
def db(any_db: str) -> str:
    return any_db


# --- the reference: LangGraph's own histories -----------------------------------------------


def _key(message: BaseMessage) -> tuple[Any, str]:
    return message.id, json.dumps(message.content, sort_keys=True, default=repr)


async def history_messages(world: World, thread_ids: Iterable[str]) -> list[BaseMessage]:
    """Every message of the threads' histories (own and inherited checkpoints), once."""
    seen: dict[tuple[Any, str], BaseMessage] = {}
    for thread_id in thread_ids:
        for snapshot in await world.history(cfg(thread_id)):
            for message in snapshot.values.get("messages", []):
                seen.setdefault(_key(message), message)
    return list(seen.values())


def recount(messages: Sequence[BaseMessage]) -> dict[str, Any]:
    """What ``Usage.to_dict`` should say about these messages, counted from scratch."""
    calls: Counter[str] = Counter()
    tokens = Counter[str]()
    for m in messages:
        if m.type != "ai":
            continue
        calls.update(str(c["name"]) for c in m.tool_calls)  # type: ignore[attr-defined]
        for k, v in (m.usage_metadata or {}).items():  # type: ignore[attr-defined]
            if k in ("input_tokens", "output_tokens", "total_tokens"):
                tokens[k] += int(v)
    return {
        "turns": sum(1 for m in messages if m.type == "human"),
        "messages": len(messages),
        "tool_calls": dict(sorted(calls.items())),
        "input_tokens": tokens["input_tokens"],
        "output_tokens": tokens["output_tokens"],
        "total_tokens": tokens["total_tokens"],
    }


def counts(usage: Any) -> dict[str, Any]:
    data = usage.to_dict()
    del data["session_id"], data["thread_id"]
    return data


def _plain(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def containing(messages: Iterable[BaseMessage], word: str) -> set[str]:
    """Ids of the messages whose text or tool calls hold ``word`` as a whole word."""
    pattern = re.compile(rf"(?<![^\W_]){re.escape(word)}(?![^\W_])")
    out = set()
    for m in messages:
        text = str(m.content) + " ".join(
            json.dumps(c) for c in getattr(m, "tool_calls", None) or []
        )
        if pattern.search(_plain(text)):
            out.add(str(m.id))
    return out


async def live_threads(world: World, session_ids: Iterable[str]) -> list[str]:
    out = []
    for session_id in session_ids:
        out += [b.thread_id for b in await world.call("branches", session_id)]
    return out


async def say_all(world: World, session_id: str, texts: Sequence[str]) -> None:
    for text in texts:
        await world.say(await world.call("config", session_id), text)


def ids(hits: Iterable[Any]) -> list[str]:
    return [str(h.message_id) for h in hits]


# --- search ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_search_finds_abandoned_branches_and_shared_prefixes_once(mode: str, db: str) -> None:
    async with open_world(mode, db) as w:
        s = await w.call("create_session", name="fruit")
        main = s.current_thread_id
        await say_all(w, s.id, ["tell me about bananas", "tell me about cherries"])
        await say_all(w, s.id, ["tell me about kiwis", "what is the weather in Paris?"])
        turns = await w.call("turns", s.id)
        branch = await w.call("rollback", s.id, turns[1].before_checkpoint_id)
        await say_all(w, s.id, ["tell me about mangos and bananas"])
        other = await w.call("create_session", name="other")
        await say_all(w, other.id, ["bananas again"])

        everything = await history_messages(w, await live_threads(w, [s.id, other.id]))
        for word in ("bananas", "kiwis", "mangos", "paris", "weather", "echo"):
            hits = await w.call("search", word, limit=100)
            assert len(ids(hits)) == len(set(ids(hits))), word  # a shared message once
            assert set(ids(hits)) == containing(everything, word), word
            assert all(MARK_START in h.snippet and MARK_END in h.snippet for h in hits)
            assert [h.rank for h in hits] == sorted((h.rank for h in hits), reverse=True)

        # The first turn is shared by both branches: found once, on the thread that wrote it.
        shared = await w.call("search", "bananas", session_id=s.id)
        first_turn = {str(m.id) for m in turns[0].messages} | {str(turns[0].user_message.id)}
        assert {h.thread_id for h in shared if h.message_id in first_turn} == {main}
        # Kiwis were said only on the branch the rollback abandoned.
        branch_history = await history_messages(w, [branch.thread_id])
        assert not containing(branch_history, "kiwis")
        kiwis = await w.call("search", "kiwis")
        assert kiwis and {(h.thread_id, h.session_id) for h in kiwis} == {(main, s.id)}
        # Each hit names the checkpoint where its message first appeared.
        for h in await w.call("search", "bananas", limit=100):
            snapshot = await w.state(cfg(h.thread_id, h.checkpoint_id))
            assert h.message_id in {str(m.id) for m in snapshot.values["messages"]}
            parent = snapshot.parent_config
            if parent is not None:
                before = (await w.state(parent)).values.get("messages", [])
                assert h.message_id not in {str(m.id) for m in before}

        # Filters: a session, a role (with its aliases).
        only_other = await w.call("search", "bananas", session_id=other.id)
        assert {h.session_id for h in only_other} == {other.id}
        assert set(ids(only_other)) == containing(
            await history_messages(w, await live_threads(w, [other.id])), "bananas"
        )
        humans = await w.call("search", "bananas", role="user", limit=100)
        assert humans == await w.call("search", "bananas", role="human", limit=100)
        assert humans and {h.role for h in humans} == {"human"}
        assert {h.role for h in await w.call("search", "bananas", role="assistant")} == {"ai"}
        assert len(await w.call("search", "bananas", limit=1)) == 1
        assert await w.call("search", "tool", role="tool") == []
        assert {h.role for h in await w.call("search", "paris", role="tool")} == {"tool"}

        # Deleting the abandoned branch: what only it held is gone; the prefix it shared
        # is now found on the branch that inherits it.
        await w.call("delete_branch", s.id, main)
        assert await w.call("search", "kiwis") == []
        after = await w.call("search", "bananas", session_id=s.id, limit=100)
        assert set(ids(after)) == containing(branch_history, "bananas")
        assert {h.thread_id for h in after} == {branch.thread_id}
        await w.call("delete_session", other.id)
        assert await w.call("search", "again") == []


# Queries that mean "bananas", and queries that find nothing; none is an error.
LIKE_BANANAS = [
    '"bananas"',
    'bananas"',
    "(bananas",
    "bananas)",
    "BANANAS",
    "bánánas",
    "banan*",
    "bananas*",
    "bananas AND",
    "NOT bananas",
    "-bananas",
    "bananas:*",
    "bananas\x00",
    "{bananas}",
    "bananas " * 5000,
]
NOTHING = [
    "",
    '"',
    "(",
    "*",
    "\x00",
    "AND OR NOT NEAR",  # nothing else: the four words, which no message holds
    "'; DROP TABLE agentgit_blobs; --",
    "x" * 200_000,
    '"unbalanced ( quote',
    "bananas NEAR/2 zzz",
]


@pytest.mark.parametrize("mode", MODES)
async def test_hostile_queries(mode: str, db: str) -> None:
    async with open_world(mode, db) as w:
        s = await w.call("create_session")
        await say_all(w, s.id, ["tell me about bananas", "and about apples"])
        plain = await w.call("search", "bananas")
        assert plain
        for query in LIKE_BANANAS:
            assert await w.call("search", query) == plain, repr(query[:40])
        for query in NOTHING:
            assert await w.call("search", query) == [], repr(query[:40])
        assert await w.call("search", "bananas") == plain  # nothing was dropped
        for bad in ({"role": "robot"}, {"limit": 0}, {"limit": 1001}, {"limit": True}):
            with pytest.raises(ValueError):
                await w.call("search", "bananas", **bad)
        with pytest.raises(TypeError):
            await w.call("search", None)


@pytest.mark.parametrize("mode", MODES)
async def test_search_and_usage_are_scoped_to_the_owner(mode: str, db: str) -> None:
    async with open_world(mode, db) as w:
        alice = w.manager(user_id="alice")
        bob = w.manager(user_id="bob")
        a = await w.call("create_session", mgr=alice)
        b = await w.call("create_session", mgr=bob)
        await say_all(w, a.id, ["bananas for alice"])
        await say_all(w, b.id, ["bananas for bob"])
        loose = f"thread-{a.id}"
        await w.say(cfg(loose), "bananas outside sessions")

        mine = await w.call("search", "bananas", mgr=alice)
        assert mine and {h.session_id for h in mine} == {a.id}
        assert await w.call("search", "bananas", user_id="bob", mgr=alice) == []
        assert await w.call("search", "bananas", user_id="alice", mgr=alice) == mine
        for method, args in (("search", ("bananas",)), ("usage", (b.id,))):
            kw = {"session_id": b.id} if method == "search" else {}
            missing = await w.outcome(method, *args, mgr=alice, **kw)
            assert missing == (SessionNotFoundError, f"session {b.id!r} does not exist")
        # Unscoped: every user's sessions and the threads outside sessions.
        everyone = await w.call("search", "bananas")
        assert {h.session_id for h in everyone} == {a.id, b.id, None}
        assert {h.session_id for h in await w.call("search", "bananas", user_id="bob")} == {b.id}
        assert counts(await w.call("usage", a.id, mgr=alice)) == counts(await w.call("usage", a.id))


# --- usage counters ---------------------------------------------------------------------------


async def assert_counts_match(w: World, session_ids: Sequence[str]) -> None:
    for session_id in session_ids:
        branches = await w.call("branches", session_id)
        threads = [b.thread_id for b in branches]
        total = await w.call("usage", session_id)
        assert counts(total) == recount(await history_messages(w, threads)), session_id
        for branch in branches:
            usage = await w.call("usage", session_id, thread_id=branch.thread_id)
            expected = recount(await history_messages(w, [branch.thread_id]))
            assert counts(usage) == expected, branch.thread_id
            assert usage.turns == len(await w.call("turns", session_id, thread_id=branch.thread_id))
        assert await w.call("usages", [session_id]) == {session_id: total}


def _index_rows(conn: Any) -> list[tuple[Any, ...]]:
    rows = conn.execute(
        "SELECT thread_pk, checkpoint_id, blob_id, pos, msg_key, role, tool_calls, "
        "input_tokens, output_tokens, total_tokens FROM agentgit_search_docs"
    ).fetchall()
    return sorted(tuple(r) for r in rows)


def index_rows(saver: Any) -> list[tuple[Any, ...]]:
    """Every row of the message index (ids aside)."""
    return saver._read(_index_rows)


async def world_index_rows(w: World) -> list[tuple[Any, ...]]:
    if w.mode == "sync":
        return index_rows(w.saver)
    return await w.saver._aread(_index_rows)


@pytest.mark.parametrize("mode", MODES)
async def test_usage_equals_a_recount(mode: str, db: str) -> None:
    async with open_world(mode, db) as w:
        s = await w.call("create_session")
        main = s.current_thread_id
        await say_all(w, s.id, ["hello", "what is the weather in Paris?", "and now?"])
        first = await w.call("turns", s.id)
        await w.call("rollback", s.id, first[1].before_checkpoint_id)
        await say_all(w, s.id, ["what is the weather in Rome?", "thanks"])
        b1_turns = await w.call("turns", s.id)
        b2 = await w.call("branch", s.id, b1_turns[2].before_checkpoint_id, name="side")
        await say_all(w, s.id, ["one more on b1"])
        await w.say(cfg(b2.thread_id), "what is the weather in Oslo?")
        # A list rewritten from its first item (RemoveMessage): the inherited messages
        # it stores again are not counted again.
        state = await w.state(cfg(b2.thread_id))
        first_id = state.values["messages"][0].id
        update = {"messages": [RemoveMessage(id=first_id)]}
        if mode == "sync":
            w.graph.update_state(cfg(b2.thread_id), update)
        else:
            await w.graph.aupdate_state(cfg(b2.thread_id), update)
        await w.say(cfg(b2.thread_id), "after the removal")
        gone = await w.call("create_session")
        await say_all(w, gone.id, ["what is the weather in Lima?"])
        await assert_counts_match(w, [s.id, gone.id])

        # Deletes: a whole session, and the branch the others were forked from.
        await w.call("delete_session", gone.id)
        await w.call("delete_branch", s.id, main)
        await assert_counts_match(w, [s.id])
        assert await w.call("search", "lima") == []
        live = await world_index_rows(w)
        # The rows are what a rebuild from the stored checkpoints makes.
        await w.call("reindex")
        assert await world_index_rows(w) == live
        await assert_counts_match(w, [s.id])
        assert (await w.call("usage", s.id)).tool_calls == {"get_weather": 2}

    async with open_world(mode, db) as w:  # reopened
        await assert_counts_match(w, [s.id])
        await say_all(w, s.id, ["what is the weather in Bern?"])
        await assert_counts_match(w, [s.id])
        with pytest.raises(SessionNotFoundError):
            await w.call("usage", gone.id)


# --- moving data: copy, export/import, backfill --------------------------------------------


def hit_keys(hits: Iterable[Any]) -> set[tuple[Any, ...]]:
    # rank is the engine's own measure; everything else is the same on both engines.
    return {
        (h.session_id, h.thread_id, h.checkpoint_id, h.message_id, h.role, h.snippet) for h in hits
    }


WORDS = ("bananas", "paris", "weather", "echo", "kiwis", "tell")


def build_fruit(path: str) -> tuple[dict[str, set[tuple[Any, ...]]], dict[str, dict[str, Any]]]:
    """A session with an abandoned branch; its hits per word and usage per session."""
    with AgentGitSaver.from_conn_string(path) as saver:
        w = World("sync", saver)
        mgr = w.mgr
        s = mgr.create_session(name="fruit")
        for text in ("tell me about bananas", "what is the weather in Paris?", "kiwis"):
            w.graph.invoke({"messages": [("user", text)]}, mgr.config(s.id))
        turns = mgr.turns(s.id)
        mgr.rollback(s.id, turns[1].before_checkpoint_id)
        w.graph.invoke({"messages": [("user", "tell me more")]}, mgr.config(s.id))
        hits = {word: hit_keys(mgr.search(word, limit=100)) for word in WORDS}
        return hits, {s.id: counts(mgr.usage(s.id))}


def read_target(url: str) -> tuple[dict[str, set[tuple[Any, ...]]], dict[str, dict[str, Any]]]:
    with AgentGitSaver.from_conn_string(url) as saver:
        mgr = SessionManager(saver)
        hits = {word: hit_keys(mgr.search(word, limit=100)) for word in WORDS}
        return hits, {s.id: counts(mgr.usage(s.id)) for s in mgr.list_sessions()}


def test_search_works_after_copy_to_postgres(tmp_path: Any) -> None:
    pg.require()
    source = str(tmp_path / "source.db")
    expected = build_fruit(source)
    assert all(expected[0].values())
    with pg.fresh_schema() as url:
        result = runner.invoke(app, ["copy", source, url], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        assert read_target(url) == expected
        # And back: the same hits from a copy of the copy on SQLite.
        back = str(tmp_path / "back.db")
        result = runner.invoke(app, ["copy", url, back], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        assert read_target(back) == expected


def test_search_works_after_export_and_import(db: str, tmp_path: Any) -> None:
    source = str(tmp_path / "source.db")
    expected = build_fruit(source)
    buffer = io.StringIO()
    with AgentGitSaver.from_conn_string(source) as saver:
        SessionManager(saver).export_sessions(buffer)
    with AgentGitSaver.from_conn_string(db) as saver:
        SessionManager(saver).import_sessions(io.StringIO(buffer.getvalue()))
    assert read_target(db) == expected


def test_cli_search_sessions_show_and_reindex(tmp_path: Any) -> None:
    path = str(tmp_path / "cli.db")
    _, usage = build_fruit(path)
    (session_id,) = usage

    def cli(*args: str) -> Any:
        result = runner.invoke(app, [*args, "--db", path], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        return result.output

    found = json.loads(cli("search", "bananas", "--json"))
    with AgentGitSaver.from_conn_string(path) as saver:
        mgr = SessionManager(saver)
        assert found == [h.to_dict() for h in mgr.search("bananas")]
        assert json.loads(cli("search", "bananas", "--role", "user", "--json")) == [
            h.to_dict() for h in mgr.search("bananas", role="human")
        ]
        branches = {
            b.thread_id: counts(mgr.usage(session_id, thread_id=b.thread_id))
            for b in mgr.branches(session_id)
        }
    assert "bananas" in cli("search", "bananas")
    assert json.loads(cli("search", "zzz", "--session", session_id[:8], "--json")) == []
    assert [r["usage"] for r in json.loads(cli("sessions", "--json"))] == [usage[session_id]]
    shown = json.loads(cli("show", session_id, "--json"))
    assert shown["usage"] == usage[session_id]
    assert {b["thread_id"]: b["usage"] for b in shown["branches"]} == branches
    assert "1 tool calls (get_weather 1)" in cli("show", session_id)
    assert json.loads(cli("reindex", "--json"))["messages"] == usage[session_id]["messages"]
    bad = runner.invoke(app, ["search", "x", "--role", "robot", "--db", path])
    assert bad.exit_code != 0 and "unknown role" in bad.output


def test_a_database_written_before_the_index_is_indexed_by_its_first_search(
    tmp_path: Any,
) -> None:
    path = str(tmp_path / "old.db")
    expected = build_fruit(path)
    with AgentGitSaver.from_conn_string(path) as saver:
        rows = index_rows(saver)

        def forget(conn: Any) -> None:
            conn.execute("DELETE FROM agentgit_search_docs")
            conn.execute("UPDATE agentgit_search_state SET needs_reindex = 1")

        saver._write(forget)
    assert read_target(path) == expected
    with AgentGitSaver.from_conn_string(path) as saver:
        assert index_rows(saver) == rows


def test_a_read_only_search_of_an_unindexed_database_says_so(tmp_path: Any) -> None:
    """Read-only, the index cannot be built: a search raises a clear error (it answered
    "no match" for messages it could not see); the same search writable finds them."""
    path = str(tmp_path / "unindexed.db")
    build_fruit(path)
    with AgentGitSaver.from_conn_string(path) as saver:

        def forget(conn: Any) -> None:
            conn.execute("DELETE FROM agentgit_search_docs")
            conn.execute("UPDATE agentgit_search_state SET needs_reindex = 1")

        saver._write(forget)
    with (
        AgentGitSaver.from_conn_string(path, read_only=True) as saver,
        pytest.raises(ReadOnlyDatabaseError, match="agentgit reindex"),
    ):
        SessionManager(saver).search("bananas")
    refused = runner.invoke(app, ["search", "bananas", "--db", path, "--read-only"])
    assert refused.exit_code != 0 and "message index" in refused.output
    assert "bananas" in runner.invoke(app, ["search", "bananas", "--db", path]).output


def test_read_only_usage_of_an_unindexed_database_is_refused_not_miscounted(
    tmp_path: Any,
) -> None:
    """Counts read from an index that must be rebuilt would be wrong (they said 0): read
    only, ``usage`` raises; the CLI and the web viewer leave the counts out and say why,
    and show everything else."""
    from starlette.testclient import TestClient

    from langgraph_agentgit.web import Guard, allowed_hosts, create_app

    path = str(tmp_path / "unindexed.db")
    _, expected = build_fruit(path)
    (session_id,) = expected
    with AgentGitSaver.from_conn_string(path) as saver:

        def forget(conn: Any) -> None:
            conn.execute("DELETE FROM agentgit_search_docs")
            conn.execute("UPDATE agentgit_search_state SET needs_reindex = 1")

        saver._write(forget)
    with AgentGitSaver.from_conn_string(path, read_only=True) as saver:
        mgr = SessionManager(saver)
        for call in (
            lambda: mgr.usage(session_id),
            lambda: mgr.usage(session_id, thread_id=mgr.branches(session_id)[0].thread_id),
            lambda: mgr.usages([session_id]),
        ):
            with pytest.raises(ReadOnlyDatabaseError, match="usage counts need the message"):
                call()
        assert mgr.list_sessions()[0].id == session_id  # what needs no index still reads
        guard = Guard(hosts=allowed_hosts("127.0.0.1", 8765), token=None)
        web = create_app(saver, mgr, guard=guard, read_only=True, database=path)
        client = TestClient(web, base_url="http://127.0.0.1:8765")
        listed = client.get("/api/sessions").json()["sessions"]
        assert [s["id"] for s in listed] == [session_id] and "usage" not in listed[0]
        shown = client.get(f"/api/sessions/{session_id}").json()
        assert "usage" not in shown["session"]
        assert shown["branches"] and all("usage" not in b for b in shown["branches"])
    ro = ["--db", path, "--read-only"]
    listed_cli = runner.invoke(app, ["sessions", "--json", *ro])
    assert listed_cli.exit_code == 0, listed_cli.output
    assert "Usage counts left out" in listed_cli.stderr
    assert "building the message index" not in listed_cli.stderr  # nothing is built
    (row,) = json.loads(listed_cli.stdout)
    assert row["id"] == session_id and "usage" not in row
    shown_cli = runner.invoke(app, ["show", session_id, *ro], env={"COLUMNS": "200"})
    assert shown_cli.exit_code == 0, shown_cli.output
    assert "unknown" in shown_cli.stdout and "Usage counts left out" in shown_cli.stderr
    # Writable, the index is rebuilt and the counts are the ones written.
    with AgentGitSaver.from_conn_string(path) as saver:
        assert counts(SessionManager(saver).usage(session_id)) == expected[session_id]


def test_each_message_is_indexed_once_per_lineage(tmp_path: Any) -> None:
    """A branch's first checkpoints store its inherited messages again only as a delta:
    the index gets rows for its new messages alone."""
    path = str(tmp_path / "once.db")
    build_fruit(path)
    with AgentGitSaver.from_conn_string(path) as saver:
        mgr = SessionManager(saver)
        (s,) = mgr.list_sessions()
        w = World("sync", saver)
        per_thread = Counter(row[0] for row in index_rows(saver))
        all_messages = {
            _key(m)
            for b in mgr.branches(s.id)
            for snap in w.graph.get_state_history(cfg(b.thread_id))
            for m in snap.values.get("messages", [])
        }
        assert sum(per_thread.values()) == len(all_messages)
        branch = next(b for b in mgr.branches(s.id) if b.parent_thread_id)
        head = w.graph.get_state(cfg(branch.thread_id))
        fork = w.graph.get_state(cfg(branch.thread_id, branch.fork_checkpoint_id))
        new = len(head.values["messages"]) - len(fork.values["messages"])
        assert sorted(per_thread.values())[0] == new
        assert cid(head) != branch.fork_checkpoint_id


def _dangling(conn: Any) -> tuple[int, int]:
    """Index rows whose stored value, or whose thread, is gone (there should be none)."""
    blobs = conn.execute(
        "SELECT count(*) FROM agentgit_search_docs d "
        "WHERE NOT EXISTS (SELECT 1 FROM agentgit_blobs b WHERE b.id = d.blob_id)"
    ).fetchone()[0]
    threads = conn.execute(
        "SELECT count(*) FROM agentgit_search_docs d "
        "WHERE NOT EXISTS (SELECT 1 FROM agentgit_threads t WHERE t.pk = d.thread_pk)"
    ).fetchone()[0]
    return int(blobs), int(threads)


def test_prune_and_delete_thread_keep_the_index_to_what_is_stored(db: str) -> None:
    with AgentGitSaver.from_conn_string(db) as saver:
        w = World("sync", saver)
        mgr = SessionManager(saver)
        for thread in ("kept", "pruned", "deleted"):
            for text in (f"first {thread} words", f"second {thread} words", f"third {thread}"):
                w.graph.invoke({"messages": [("user", text)]}, cfg(thread))
        saver.prune(["pruned"], strategy="keep_latest")
        saver.delete_thread("deleted")
        assert saver._read(_dangling) == (0, 0)
        # Every message of the pruned thread's latest state is still stored, and found.
        latest = w.graph.get_state(cfg("pruned")).values["messages"]
        found = {h.message_id for h in mgr.search("pruned", limit=100)}
        assert found == containing(latest, "pruned") and found
        assert mgr.search("deleted") == []
        assert {h.thread_id for h in mgr.search("words", limit=100)} == {"kept", "pruned"}
        saver.prune(["pruned"], strategy="delete")
        assert mgr.search("pruned") == []
        assert saver._read(_dangling) == (0, 0)
        assert {h.thread_id for h in mgr.search("words", limit=100)} == {"kept"}


@pytest.mark.parametrize("mode", MODES)
async def test_usage_of_a_pruned_branch_and_a_copied_thread(mode: str, db: str) -> None:
    """A branch pruned to its latest checkpoint, and a thread copied with copy_thread, hold
    rows that were copied rather than put: the index is rebuilt for them."""
    async with open_world(mode, db) as w:
        s = await w.call("create_session")
        await say_all(w, s.id, ["hello", "what is the weather in Paris?", "thanks"])
        turns = await w.call("turns", s.id)
        branch = await w.call("rollback", s.id, turns[2].before_checkpoint_id)
        await say_all(w, s.id, ["what is the weather in Rome?"])
        if mode == "sync":
            w.saver.prune([branch.thread_id], strategy="keep_latest")
            w.saver.copy_thread(branch.thread_id, f"copy-{s.id}")
        else:
            await w.saver.aprune([branch.thread_id], strategy="keep_latest")
            await w.saver.acopy_thread(branch.thread_id, f"copy-{s.id}")
        expected = recount(await history_messages(w, [branch.thread_id]))
        usage = counts(await w.call("usage", s.id, thread_id=branch.thread_id))
        # (Turns are left out: which checkpoints a prune keeps decides where messages
        # first appear in what remains.)
        del expected["turns"], usage["turns"]
        assert usage == expected
        # The copy holds the branch's messages again, as rows of its own: found there too.
        by_thread: dict[str, set[str]] = {}
        for h in await w.call("search", "rome", limit=100):
            by_thread.setdefault(h.thread_id, set()).add(str(h.message_id))
        assert set(by_thread) == {branch.thread_id, f"copy-{s.id}"}
        assert (
            by_thread[branch.thread_id]
            == by_thread[f"copy-{s.id}"]
            == containing(await history_messages(w, [branch.thread_id]), "rome")
        )


def test_a_copy_and_a_pruned_fork_are_indexed_at_once_for_themselves_alone(db: str) -> None:
    """copy_thread, and a keep_latest prune of a fork, write rows put() never saw. They
    are indexed in the same transaction, those threads alone: a read-only process finds
    and counts them at once (it was refused until a writable one rebuilt the whole index,
    decoding every thread stored), and the rows are those a whole rebuild makes."""
    from langchain_core.messages import HumanMessage

    with AgentGitSaver.from_conn_string(db) as saver:
        graph = _echo_graph(saver)
        mgr = SessionManager(saver)
        s = mgr.create_session(name="copied and pruned")
        for word in ("oscar", "papa", "quebec"):
            graph.invoke({"messages": [HumanMessage(word, id=word)]}, mgr.config(s.id))
        history = list(graph.get_state_history(mgr.config(s.id)))
        after_papa = [h for h in history if h.metadata["source"] == "loop" and h.next == ()][1]
        main = mgr.branches(s.id)[0].thread_id
        branch = mgr.rollback(s.id, after_papa)
        graph.invoke({"messages": [HumanMessage("romeo", id="romeo")]}, mgr.config(s.id))
        other = mgr.create_session(name="untouched")
        graph.invoke({"messages": [HumanMessage("sierra", id="sierra")]}, mgr.config(other.id))
        untouched = index_rows(saver)
        saver.copy_thread(main, "copy-of-main")
        saver.prune([branch.thread_id])
        rows = index_rows(saver)
        changed = {
            saver._read(lambda conn, t=t: saver.store.lineage(conn, t).pk)
            for t in ("copy-of-main", branch.thread_id)
        }
        # The other threads' rows are as they were.
        assert [r for r in rows if r[0] not in changed] == [
            r for r in untouched if r[0] not in changed
        ]
        with AgentGitSaver.from_conn_string(db, read_only=True) as reader:
            ro = SessionManager(reader)
            # The pruned fork's kept checkpoint holds what it inherited: its own rows now
            # (its usage below counts them), found once in the session, on main.
            assert {h.thread_id for h in ro.search("oscar", limit=100)} == {main, "copy-of-main"}
            assert {h.thread_id for h in ro.search("romeo", limit=100)} == {branch.thread_id}
            for b in ro.branches(s.id):
                usage = counts(ro.usage(s.id, thread_id=b.thread_id))
                expected = recount(_held(graph, cfg(b.thread_id)))
                del usage["turns"], expected["turns"]  # (see the note on turns in the README)
                assert usage == expected, b.name
        mgr.reindex()
        assert index_rows(saver) == rows


def test_a_deleted_thread_kept_for_its_fork_keeps_only_the_rows_the_fork_inherits(
    db: str,
) -> None:
    """Deleting a thread that a fork inherits from keeps its rows up to the fork point.
    Its index rows past that point named messages only it held: they go in the same
    transaction (a copy of the thread, which shares their stored values, kept them in the
    index, found by no search, until a whole reindex), and the rows left are those a
    whole rebuild makes."""
    from langchain_core.messages import HumanMessage

    with AgentGitSaver.from_conn_string(db) as saver:
        graph = _echo_graph(saver)
        mgr = SessionManager(saver)
        s = mgr.create_session(name="deleted under a fork")
        for word in ("alpha", "bravo", "charlie"):
            graph.invoke({"messages": [HumanMessage(word, id=word)]}, mgr.config(s.id))
        history = list(graph.get_state_history(mgr.config(s.id)))
        after_bravo = [h for h in history if h.metadata["source"] == "loop" and h.next == ()][1]
        main = mgr.branches(s.id)[0].thread_id
        fork = mgr.rollback(s.id, after_bravo)
        graph.invoke({"messages": [HumanMessage("delta", id="delta")]}, mgr.config(s.id))
        saver.copy_thread(main, "copy-of-main")
        main_pk = saver._read(lambda conn: saver.store.lineage(conn, main).pk)
        saver.delete_thread(main)
        rows = index_rows(saver)
        assert not [
            r
            for r in rows
            if r[0] == main_pk and r[1] > after_bravo.config["configurable"]["checkpoint_id"]
        ]
        for word, holders in (
            ("alpha", {fork.thread_id, "copy-of-main"}),
            ("charlie", {"copy-of-main"}),
            ("delta", {fork.thread_id}),
        ):
            assert {h.thread_id for h in mgr.search(word, limit=100)} == holders, word
        mgr.reindex()
        assert index_rows(saver) == rows


def test_a_fork_of_a_copy_made_after_a_run_deletion_sees_the_whole_history(db: str) -> None:
    """A run deleted in the middle of a thread leaves hidden rows that its forks walk past
    to the older checkpoints. copy_thread copies them too (hidden): a fork of the copy
    lists the history a fork of the source lists, and counts and finds every message
    that history holds. (The copy's row hung from the source's hidden one: the fork's
    history ended there, and usage left out the first turn's messages.)"""
    from langchain_core.messages import HumanMessage

    with AgentGitSaver.from_conn_string(db) as saver:
        graph = _echo_graph(saver)
        deleted = str(uuid.uuid4())
        for word, run in (("kilo", None), ("lima", deleted), ("mike", None)):
            config = cfg("source")
            if run is not None:
                config["configurable"]["run_id"] = run
            graph.invoke({"messages": [HumanMessage(word, id=word)]}, config)
        saver.delete_for_runs([deleted])
        saver.copy_thread("source", "copy")
        source_head = graph.get_state(cfg("source"))
        saver.fork_thread("source", source_head.config["configurable"]["checkpoint_id"], "f1")
        mgr = SessionManager(saver)
        s = mgr.adopt("copy", name="copied")
        branch = mgr.rollback(s.id, graph.get_state(cfg("copy")))

        def listed(thread_id: str) -> list[str]:
            return [t.checkpoint["id"] for t in saver.list(cfg(thread_id))]

        assert listed(branch.thread_id) == listed("f1") == listed("source")
        held = _held(graph, branch.config)
        assert {m.id for m in held} >= {"kilo", "lima", "mike"}
        usage = counts(mgr.usage(s.id, thread_id=branch.thread_id))
        expected = recount(held)
        del usage["turns"], expected["turns"]  # (see the note on turns in the README)
        assert usage == expected
        for word in ("kilo", "lima", "mike"):
            hits = mgr.search(word, session_id=s.id, limit=100)
            assert [h.message_id for h in hits if h.role == "human"] == [word], word
        mgr.reindex()
        again = counts(mgr.usage(s.id, thread_id=branch.thread_id))
        del again["turns"]
        assert again == usage


def test_an_answer_of_a_deleted_run_that_later_turns_hold_counts_once(db: str) -> None:
    """Time travel from the first step leaves the first answer on a line of its own; a
    prune collects the step both lines grew from, and a rollback forks the new line.
    Deleting the first run then hides the old line's answer, which only the fork's
    collector bound keeps: the thread drops it (a parent is older than its children, so
    it was above none of the collected ones), its first message moves to the new line,
    and each branch counts what its history holds (main counted the answer it no
    longer holds, and the fork the first message twice). Search finds the first
    message once, on main, before and after (it was found on the fork as well)."""
    from langchain_core.messages import HumanMessage

    with AgentGitSaver.from_conn_string(db) as saver:
        graph = _echo_graph(saver)
        mgr = SessionManager(saver)
        s = mgr.create_session(name="traveled")
        main = mgr.branches(s.id)[0].thread_id
        first_run = str(uuid.uuid4())
        config = mgr.config(s.id)
        config["configurable"]["run_id"] = first_run
        graph.invoke({"messages": [HumanMessage("oscar", id="oscar")]}, config)
        step0 = next(
            h for h in graph.get_state_history(mgr.config(s.id)) if h.metadata["step"] == 0
        )
        graph.invoke({"messages": [HumanMessage("papa", id="papa")]}, step0.config)
        mgr.prune_sessions(keep_last=4)
        branch = mgr.undo_last_turn(s.id)
        # The fork indexes the first message under it too (the first checkpoint that
        # held it on main is now on the other line): still one hit, on main.
        assert "oscar" in {m.id for m in _held(graph, branch.config)}
        hits = mgr.search("oscar", session_id=s.id, role="human")
        assert [(h.thread_id, h.message_id) for h in hits] == [(main, "oscar")]
        saver.delete_for_runs([first_run])
        for b in mgr.branches(s.id):
            held = _held(graph, cfg(b.thread_id))
            usage = counts(mgr.usage(s.id, thread_id=b.thread_id))
            expected = recount(held)
            del usage["turns"], expected["turns"]  # (see the note on turns in the README)
            assert usage == expected, b.name
        hits = mgr.search("oscar", session_id=s.id, role="human")
        assert [(h.thread_id, h.message_id) for h in hits] == [(main, "oscar")]


def test_a_fork_of_a_fork_that_stopped_inheriting_still_finds_what_it_inherits(
    db: str,
) -> None:
    """A fork of a fork, made before a keep_latest prune of the middle thread (which then
    holds what it inherited as its own), still lists the first thread's checkpoints.
    Once the first and the middle threads are deleted, the first one's message is found
    on the fork of the fork (the search looked for heirs only below threads that still
    inherit)."""
    from langchain_core.messages import HumanMessage

    with AgentGitSaver.from_conn_string(db) as saver:
        graph = _echo_graph(saver)
        graph.invoke({"messages": [HumanMessage("quebec", id="quebec")]}, cfg("first"))
        head = graph.get_state(cfg("first")).config["configurable"]["checkpoint_id"]
        saver.fork_thread("first", head, "middle")
        saver.fork_thread("middle", head, "last")
        graph.invoke({"messages": [HumanMessage("romeo", id="romeo")]}, cfg("middle"))
        saver.prune(["middle"], strategy="keep_latest")
        saver.delete_thread("middle")
        saver.delete_thread("first")
        held = {m.id for m in _held(graph, cfg("last"))}
        assert "quebec" in held
        mgr = SessionManager(saver)
        hits = mgr.search("quebec", role="human", limit=100)
        assert [(h.thread_id, h.message_id) for h in hits] == [("last", "quebec")]
        _readable_hits(saver, graph, hits)


def test_a_pruned_fork_and_its_source_find_a_message_once_in_their_session(db: str) -> None:
    """A keep_latest prune of a rollback branch makes what it inherited its own rows
    (each branch still counts it). In the session the message is one hit, on the branch
    that wrote it (it was found on both)."""
    from langchain_core.messages import HumanMessage

    with AgentGitSaver.from_conn_string(db) as saver:
        graph = _echo_graph(saver)
        mgr = SessionManager(saver)
        s = mgr.create_session(name="pruned fork")
        main = mgr.branches(s.id)[0].thread_id
        graph.invoke({"messages": [HumanMessage("sierra", id="sierra")]}, mgr.config(s.id))
        branch = mgr.rollback(s.id, graph.get_state(mgr.config(s.id)))
        saver.prune([branch.thread_id], strategy="keep_latest")
        hits = mgr.search("sierra", session_id=s.id, role="human")
        assert [(h.thread_id, h.message_id) for h in hits] == [(main, "sierra")]
        for b in mgr.branches(s.id):
            assert mgr.usage(s.id, thread_id=b.thread_id).messages == 2, b.name
        assert mgr.usage(s.id).messages == 2


def test_a_duplicate_hit_dropped_leaves_room_for_the_next_one(db: str) -> None:
    """A search returns ``limit`` hits while more messages match: the one hit a message
    and its copy on a pruned fork make does not take two places of the limit (it did,
    and a search with limit 2 found one hit where two messages matched)."""
    from langchain_core.messages import HumanMessage

    with AgentGitSaver.from_conn_string(db) as saver:
        graph = _echo_graph(saver)
        mgr = SessionManager(saver)
        s = mgr.create_session(name="two messages, each held twice")
        main = mgr.branches(s.id)[0].thread_id
        for word in ("sierra", "sierra tango"):
            graph.invoke({"messages": [HumanMessage(word, id=word)]}, mgr.config(s.id))
        branch = mgr.rollback(s.id, graph.get_state(mgr.config(s.id)))
        saver.prune([branch.thread_id], strategy="keep_latest")
        everything = mgr.search("sierra", session_id=s.id, role="human", limit=100)
        assert sorted((h.thread_id, h.message_id) for h in everything) == [
            (main, "sierra"),
            (main, "sierra tango"),
        ]
        for limit in (1, 2, 3):
            hits = mgr.search("sierra", session_id=s.id, role="human", limit=limit)
            assert hits == everything[:limit], limit


def test_a_message_a_pruned_fork_holds_is_found_on_its_writer_past_the_rows_read(
    db: str,
) -> None:
    """Among equal ranks the newest rows come first, and a keep_latest prune indexes
    what a fork inherited anew: with more matching messages elsewhere than a small
    search reads, the source's row was never read, and the hit went to the fork (a
    search with limit 1000 put it on main). Every limit now names main."""
    from langchain_core.messages import HumanMessage

    with AgentGitSaver.from_conn_string(db) as saver:
        graph = _echo_graph(saver)
        mgr = SessionManager(saver)
        s = mgr.create_session(name="forked")
        main = mgr.branches(s.id)[0].thread_id
        graph.invoke({"messages": [HumanMessage("kilo first", id="first")]}, mgr.config(s.id))
        fork = mgr.branch(s.id, graph.get_state(mgr.config(s.id)), name="fork")
        other = mgr.create_session(name="busy")
        for i in range(40):
            graph.invoke(
                {"messages": [HumanMessage(f"kilo {i}", id=f"o{i}")]}, mgr.config(other.id)
            )
        saver.prune([fork.thread_id], strategy="keep_latest")
        everything = mgr.search("kilo", role="human", limit=1000)
        assert len(everything) == 41
        assert [h.thread_id for h in everything if h.message_id == "first"] == [main]
        for limit in (1, 5, 20, 40, 41):
            hits = mgr.search("kilo", role="human", limit=limit)
            assert len(hits) == limit
            assert all(h.thread_id == main for h in hits if h.message_id == "first"), limit
            in_session = mgr.search("kilo", session_id=s.id, role="human", limit=limit)
            assert [(h.thread_id, h.message_id) for h in in_session] == [(main, "first")]


def test_a_fork_keeps_its_hit_where_the_thread_it_forked_from_lets_the_message_go(
    db: str,
) -> None:
    """The thread a fork descends from still has an index row of the message, at a
    checkpoint a prune collected after a RemoveMessage: the hit stays on the fork, which
    holds the message (moving it to that row found it nowhere, and the search had no
    hit)."""
    from langchain_core.messages import HumanMessage, RemoveMessage

    with AgentGitSaver.from_conn_string(db) as saver:
        graph = _echo_graph(saver)
        mgr = SessionManager(saver)
        s = mgr.create_session(name="let go")
        main = mgr.branches(s.id)[0].thread_id
        graph.invoke({"messages": [HumanMessage("kilo first", id="k1")]}, mgr.config(s.id))
        fork = mgr.branch(s.id, graph.get_state(mgr.config(s.id)), name="fork")
        graph.update_state(mgr.config(s.id), {"messages": [RemoveMessage(id="k1")]})
        saver.prune([main], strategy="keep_latest")
        saver.prune([fork.thread_id], strategy="keep_latest")
        assert "k1" in {m.id for m in _held(graph, fork.config)}
        assert "k1" not in {m.id for m in _held(graph, cfg(main))}
        hits = mgr.search("kilo", role="human", limit=10)
        assert [(h.thread_id, h.message_id) for h in hits] == [(fork.thread_id, "k1")]
        _readable_hits(saver, graph, hits)


def test_sibling_branches_that_each_wrote_a_message_get_a_hit_each_and_no_more(
    db: str,
) -> None:
    """Two sibling branches each wrote the same message, and a pruned fork of one holds
    it too: one hit per branch that wrote it (the fork's hit, moved to its writer, was
    a second copy of that branch's hit)."""
    from langchain_core.messages import HumanMessage

    with AgentGitSaver.from_conn_string(db) as saver:
        graph = _echo_graph(saver)
        mgr = SessionManager(saver)
        s = mgr.create_session(name="siblings")
        graph.invoke({"messages": [HumanMessage("start", id="start")]}, mgr.config(s.id))
        root = graph.get_state(mgr.config(s.id))
        one = mgr.branch(s.id, root, name="one")
        two = mgr.branch(s.id, root, name="two")
        graph.invoke({"messages": [HumanMessage("kilo", id="same")]}, two.config)
        three = mgr.branch(s.id, graph.get_state(two.config), name="three")
        saver.prune([three.thread_id], strategy="keep_latest")
        graph.invoke({"messages": [HumanMessage("kilo", id="same")]}, one.config)
        everything = mgr.search("kilo", role="human", limit=10)
        assert sorted(h.thread_id for h in everything) == sorted([one.thread_id, two.thread_id])
        for limit in (1, 2):
            assert mgr.search("kilo", role="human", limit=limit) == everything[:limit]
        _readable_hits(saver, graph, everything)


def test_hits_name_checkpoints_that_remain_after_prune_sessions(db: str) -> None:
    """prune_sessions(keep_last=...) removes the checkpoint where a message first
    appeared while later ones still hold it: the hit then names a checkpoint that is
    still in the branch's history (the index is rebuilt), never a pruned one."""
    with AgentGitSaver.from_conn_string(db) as saver:
        w = World("sync", saver)
        mgr = SessionManager(saver)
        s = mgr.create_session(name="kept short")
        for text in ("zebra crossing", "where is order A-1001", "giraffe neck"):
            w.graph.invoke({"messages": [("user", text)]}, mgr.config(s.id))
        before = mgr.search("zebra")
        assert before and all(h.session_id == s.id for h in before)
        report = mgr.prune_sessions(keep_last=2)
        assert report.checkpoints_removed > 0
        listed = {t.checkpoint["id"] for t in saver.list(mgr.config(s.id))}
        assert not {h.checkpoint_id for h in before} <= listed  # where they first appeared
        after = mgr.search("zebra")
        assert {h.message_id for h in after} == {h.message_id for h in before}
        assert {h.checkpoint_id for h in after} <= listed


def test_prune_sessions_keep_last_indexes_the_trimmed_branches_at_once(db: str) -> None:
    """prune_sessions(keep_last=...) hides the checkpoints where messages first appeared
    while the kept ones still hold them. The same transaction indexes the trimmed
    branches (and the forks that inherit from them) again, those alone: a read-only
    process finds and counts them at once (it was refused until a writable one rebuilt
    the whole index), another session's rows stay as they were, and the rows are those
    a whole rebuild makes."""
    from langchain_core.messages import HumanMessage

    with AgentGitSaver.from_conn_string(db) as saver:
        graph = _echo_graph(saver)
        mgr = SessionManager(saver)
        s = mgr.create_session(name="trimmed")
        for word in ("tango", "uniform", "victor", "whiskey"):
            graph.invoke({"messages": [HumanMessage(word, id=word)]}, mgr.config(s.id))
        history = list(graph.get_state_history(mgr.config(s.id)))
        after_victor = [h for h in history if h.metadata["source"] == "loop" and h.next == ()][1]
        main = mgr.branches(s.id)[0].thread_id
        fork = mgr.rollback(s.id, after_victor)
        graph.invoke({"messages": [HumanMessage("xray", id="xray")]}, mgr.config(s.id))
        other = mgr.create_session(name="short")
        graph.invoke({"messages": [HumanMessage("yankee", id="yankee")]}, mgr.config(other.id))
        before = index_rows(saver)
        # A turn makes three checkpoints: the other session, and the fork's own
        # checkpoints, are kept whole; main keeps its last turn's.
        report = mgr.prune_sessions(keep_last=3)
        assert {p.session_id for p in report.sessions} == {s.id}
        assert report.checkpoints_removed > 0
        rows = index_rows(saver)
        main_pk, fork_pk = (
            saver._read(lambda conn, t=t: saver.store.lineage(conn, t).pk)
            for t in (main, fork.thread_id)
        )
        assert [r for r in rows if r[0] not in (main_pk, fork_pk)] == [
            r for r in before if r[0] not in (main_pk, fork_pk)
        ]
        with AgentGitSaver.from_conn_string(db, read_only=True) as reader:
            ro = SessionManager(reader)
            # Found once, on the branch that wrote it (the fork inherits it).
            tango = ro.search("tango", limit=100)
            assert {h.thread_id for h in tango} == {main}
            for b in ro.branches(s.id):
                listed = {t.checkpoint["id"] for t in reader.list(cfg(b.thread_id))}
                assert {h.checkpoint_id for h in tango if h.thread_id == b.thread_id} <= listed
                usage = counts(ro.usage(s.id, thread_id=b.thread_id))
                expected = recount(_held(graph, cfg(b.thread_id)))
                del usage["turns"], expected["turns"]  # (see the note on turns in the README)
                assert usage == expected, b.name
            _readable_hits(reader, graph, tango)
        mgr.reindex()
        assert index_rows(saver) == rows


def test_a_fork_in_another_session_finds_what_it_inherits(db: str) -> None:
    """A message is indexed once, on the thread that wrote it. A fork of that thread
    adopted as another user's session holds it too, and that user finds it there (as
    usage counts it); deleting the writer's branch leaves it found on every branch that
    still inherits it, each user on their own."""
    with AgentGitSaver.from_conn_string(db) as saver:
        w = World("sync", saver)
        alice, bob = SessionManager(saver, user_id="alice"), SessionManager(saver, user_id="bob")
        a = alice.create_session(name="a")
        w.graph.invoke({"messages": [("user", "giraffe kiwi")]}, alice.config(a.id))
        head = saver.get_tuple(alice.config(a.id))
        assert head is not None
        one = alice.branch(a.id, head.checkpoint["id"], name="one")
        w.graph.invoke({"messages": [("user", "mango secret")]}, cfg(one.thread_id))
        one_head = saver.get_tuple(cfg(one.thread_id))
        assert one_head is not None
        saver.fork_thread(one.thread_id, one_head.checkpoint["id"], "bob-fork")
        b = bob.adopt("bob-fork", name="b")
        two = alice.branch(a.id, one_head.checkpoint["id"], name="two")
        assert [h.thread_id for h in bob.search("giraffe", role="user")] == ["bob-fork"]
        assert bob.usage(b.id).messages == len(saver.get_tuple(cfg("bob-fork")).checkpoint[
            "channel_values"]["messages"])  # fmt: skip
        assert [h.thread_id for h in bob.search("mango", role="user")] == ["bob-fork"]
        assert [h.thread_id for h in alice.search("mango", role="user")] == [one.thread_id]
        alice.delete_branch(a.id, one.thread_id)
        assert [h.thread_id for h in alice.search("mango", role="user")] == [two.thread_id]
        assert [h.thread_id for h in bob.search("mango", role="user")] == ["bob-fork"]
        assert len(SessionManager(saver).search("mango", role="user")) == 1  # one message, one hit


def test_long_and_operator_queries_mean_what_they_say(db: str) -> None:
    """A query cut at its length limit loses the word cut in two, not its meaning; every
    word of a long query must be in a hit, past the first 32 too; AND, OR, NOT and NEAR
    separate words, unless a query holds nothing else."""
    with AgentGitSaver.from_conn_string(db) as saver:
        w = World("sync", saver)
        mgr = SessionManager(saver)
        s = mgr.create_session()
        words = [f"w{i}" for i in range(40)]
        w.graph.invoke({"messages": [("user", "busy bees " + " ".join(words))]}, mgr.config(s.id))
        w.graph.invoke({"messages": [("user", "this OR that")]}, mgr.config(s.id))
        assert mgr.search("busy " * 1000)  # 5,000 characters, cut inside a "busy"
        assert mgr.search(" ".join(words))  # all 40 are in the message
        assert mgr.search(" ".join([*words[:32], "password"])) == []
        assert mgr.search(" ".join([*words, "password"])) == []
        assert {h.snippet for h in mgr.search("OR")} == {h.snippet for h in mgr.search("or")}
        assert mgr.search("OR")


# --- filtered searches ask the index for rows in scope ------------------------------------


def _set_scoped(saver: Any, value: int) -> None:
    saver._write(
        lambda conn: conn.execute(
            "UPDATE agentgit_search_state SET scoped = " + str(value) + " WHERE singleton = 1"
        )
    )


def _scoped(saver: Any) -> int:
    return int(saver._read(lambda conn: conn.execute(sql_scoped(saver)).fetchone()[0]))


def sql_scoped(saver: Any) -> str:
    return str(saver.store.sql.SEARCH_SCOPED)


def test_filtered_searches_find_what_filtering_every_match_finds(db: str) -> None:
    """A search filtered by user, session or role names the threads and role it may
    report in its full-text query (scope tokens). It must find exactly what reading every
    match and filtering it finds (how an index built before the tokens is searched):
    branches of branches, a fork adopted by another user, a deleted writer's messages on
    the branches that inherit them, threads outside sessions, limits."""
    with AgentGitSaver.from_conn_string(db) as saver:
        w = World("sync", saver)
        alice, bob = SessionManager(saver, user_id="alice"), SessionManager(saver, user_id="bob")
        a1 = alice.create_session(name="a1")
        a2 = alice.create_session(name="a2")
        for i in range(4):
            w.graph.invoke(
                {"messages": [("user", f"giraffe kiwi number {i}")]}, alice.config(a1.id)
            )
            w.graph.invoke(
                {"messages": [("user", f"giraffe plum number {i}")]}, alice.config(a2.id)
            )
        head = saver.get_tuple(alice.config(a1.id))
        assert head is not None
        one = alice.branch(a1.id, head.checkpoint["id"], name="one")
        w.graph.invoke({"messages": [("user", "giraffe mango secret")]}, cfg(one.thread_id))
        one_head = saver.get_tuple(cfg(one.thread_id))
        assert one_head is not None
        two = alice.branch(a1.id, one_head.checkpoint["id"], name="two")
        w.graph.invoke({"messages": [("user", "giraffe papaya")]}, cfg(two.thread_id))
        saver.fork_thread(one.thread_id, one_head.checkpoint["id"], "bob-fork")
        b = bob.create_session(name="b")
        w.graph.invoke({"messages": [("user", "giraffe for bob")]}, bob.config(b.id))
        bob.adopt("bob-fork", name="adopted")
        w.graph.invoke({"messages": [("user", "giraffe outside sessions")]}, cfg("loose"))
        alice.delete_branch(a1.id, one.thread_id)
        everyone = SessionManager(saver)
        searches: list[tuple[SessionManager, dict[str, Any]]] = [
            (everyone, {"user_id": "alice"}),
            (everyone, {"user_id": "bob"}),
            (everyone, {"user_id": "nobody"}),
            (everyone, {"session_id": a1.id}),
            (everyone, {"session_id": b.id, "role": "user"}),
            (everyone, {"role": "ai"}),
            (everyone, {"role": "human", "limit": 3}),
            (alice, {}),
            (alice, {"session_id": a2.id, "limit": 2}),
            (bob, {"role": "user"}),
        ]
        assert _scoped(saver) == 1
        for query in ("giraffe", "mango", "gir*", "giraffe number"):
            for mgr, options in searches:
                fast = [hit_keys([h]) for h in mgr.search(query, **options)]
                _set_scoped(saver, 0)
                try:
                    slow = [hit_keys([h]) for h in mgr.search(query, **options)]
                finally:
                    _set_scoped(saver, 1)
                assert fast == slow, (query, options)
        # What the reference says, for a few of them.
        assert {h.thread_id for h in bob.search("mango")} == {"bob-fork"}
        assert {h.thread_id for h in alice.search("mango")} == {two.thread_id}
        assert len(everyone.search("giraffe", user_id="alice", role="user", limit=100)) == 10
        assert everyone.search("giraffe", user_id="nobody") == []


def test_no_query_reaches_the_scope_tokens(db: str) -> None:
    """Scope tokens start with a private-use character that no normalized word holds:
    a query spelling one out searches for the letters and digits after it."""
    from langgraph_agentgit.storage.search import role_token, thread_token

    with AgentGitSaver.from_conn_string(db) as saver:
        w = World("sync", saver)
        mgr = SessionManager(saver)
        s = mgr.create_session()
        w.graph.invoke({"messages": [("user", "mellow cocoa song")]}, mgr.config(s.id))
        pks = saver._read(
            lambda conn: [r[0] for r in conn.execute("SELECT pk FROM agentgit_threads")]
        )
        tokens = [role_token("human"), role_token("ai"), *(thread_token(pk) for pk in pks)]
        for token in tokens:
            for query in (token, f'"{token}"', f"{token}*", f"{token[:2]}*", "\ue000", "\ue000*"):
                assert mgr.search(query) == [], query
                assert mgr.search(query, role="user") == [], query


def test_an_index_built_before_scope_tokens_is_searched_right_until_reindexed(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migration 11 leaves a database whose index has rows marked unscoped: its filtered
    searches filter every match (right, and as slow as before) until a reindex gives
    every row its tokens. Emulated by rebuilding the index without tokens."""
    import langgraph_agentgit.storage.search as search_index

    path = str(tmp_path / "old-index.db")
    build_fruit(path)
    with AgentGitSaver.from_conn_string(path) as saver:
        mgr = SessionManager(saver)
        (s,) = mgr.list_sessions()
        expected = {w: hit_keys(mgr.search(w, session_id=s.id, role="user")) for w in WORDS}
        assert any(expected.values())
        with monkeypatch.context() as patched:
            patched.setattr(search_index, "scope_tokens", lambda pk, role: ())
            saver._write(search_index.reindex, saver.store)
        _set_scoped(saver, 0)
        assert {w: hit_keys(mgr.search(w, session_id=s.id, role="user")) for w in WORDS} == expected
        # Were the rows taken as scoped, the filters would find nothing: they have no tokens.
        _set_scoped(saver, 1)
        assert all(not mgr.search(w, session_id=s.id) for w in WORDS)
        _set_scoped(saver, 0)
    result = runner.invoke(app, ["reindex", "--db", path])
    assert result.exit_code == 0, result.output
    with AgentGitSaver.from_conn_string(path) as saver:
        assert _scoped(saver) == 1
        mgr = SessionManager(saver)
        assert {w: hit_keys(mgr.search(w, session_id=s.id, role="user")) for w in WORDS} == expected


def test_migration_11_marks_an_index_with_rows_unscoped(tmp_path: Any) -> None:
    import sqlite3

    from langgraph_agentgit.backends.sqlite import sql as schema
    from langgraph_agentgit.backends.sqlite.connection import migrate

    for rows in (0, 1):
        conn = sqlite3.connect(str(tmp_path / f"v10-{rows}.db"), isolation_level=None)
        assert migrate(conn, schema.MIGRATIONS[:10]) == 10
        if rows:
            conn.execute(
                "INSERT INTO agentgit_search_docs(thread_pk, checkpoint_id, blob_id, pos, "
                "msg_key, role) VALUES (1, 'c', 1, 0, 7, 'human')"
            )
        assert migrate(conn, schema.MIGRATIONS) == len(schema.MIGRATIONS)
        scoped = conn.execute("SELECT scoped FROM agentgit_search_state").fetchone()[0]
        assert scoped == (0 if rows else 1)
        conn.close()


def test_a_row_written_without_tokens_marks_the_index_unscoped(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process of the previous version still running on an upgraded database writes
    rows without scope tokens (and reindexes without them). Such a row marks the index
    unscoped, so filtered searches filter matches and find it, until a reindex."""
    import types

    import langgraph_agentgit.storage.search as search_index

    with AgentGitSaver.from_conn_string(db) as saver:
        w = World("sync", saver)
        alice = SessionManager(saver, user_id="alice")
        s = alice.create_session()
        w.graph.invoke({"messages": [("user", "papaya before")]}, alice.config(s.id))
        assert _scoped(saver) == 1
        index = saver.store.search
        new_sql = index.sql
        old_insert = (
            new_sql.SEARCH_INSERT_DOC.replace("turn_key, scoped", "turn_key")
            .replace("words, scoped", "words")
            .replace(", 1)\nON CONFLICT", ")\nON CONFLICT")
        )
        assert "scoped" not in old_insert
        with monkeypatch.context() as patched:
            old_sql = types.SimpleNamespace(**{**vars(new_sql), "SEARCH_INSERT_DOC": old_insert})
            patched.setattr(index, "sql", old_sql)
            patched.setattr(search_index, "scope_tokens", lambda pk, role: ())
            w.graph.invoke({"messages": [("user", "papaya after upgrade")]}, alice.config(s.id))
        assert _scoped(saver) == 0
        expected = {"papaya before", "papaya after upgrade"}
        for hits in (
            alice.search("papaya", role="user"),
            SessionManager(saver).search("papaya", user_id="alice", role="user"),
            SessionManager(saver).search("papaya", session_id=s.id, role="user"),
        ):
            assert {h.message.content for h in hits} == expected
        SessionManager(saver).reindex()
        assert _scoped(saver) == 1
        assert {h.message.content for h in alice.search("papaya", role="user")} == expected


def test_filters_of_the_wrong_type_are_refused(db: str) -> None:
    with AgentGitSaver.from_conn_string(db) as saver:
        mgr = SessionManager(saver)
        for options in ({"user_id": 123}, {"session_id": 123}, {"user_id": b"alice"}):
            with pytest.raises(TypeError, match="must be a string"):
                mgr.search("apple", **options)
        with pytest.raises(ValueError, match="user id"):
            mgr.search("apple", user_id=" ")


def test_a_fork_does_not_inherit_a_branch_its_source_left_by_time_travel(db: str) -> None:
    """Alice runs her graph again from an older checkpoint (LangGraph's time travel, in
    the same thread), then a fork of the new line is adopted by bob. The message of the
    line she left is older than the fork point but not in the fork's history: bob's
    search and usage must not see it (they did: rows were inherited by id)."""
    from langchain_core.messages import HumanMessage

    with AgentGitSaver.from_conn_string(db) as saver:
        w = World("sync", saver)
        alice, bob = SessionManager(saver, user_id="alice"), SessionManager(saver, user_id="bob")
        everyone = SessionManager(saver)
        a = alice.create_session(name="a")
        config = alice.config(a.id)
        w.graph.invoke({"messages": [HumanMessage(content="hello one")]}, config)
        early = w.graph.get_state(config)
        w.graph.invoke({"messages": [HumanMessage(content="alice secret two")]}, config)
        w.graph.invoke({"messages": [HumanMessage(content="hello three")]}, early.config)
        head = w.graph.get_state(config)
        assert "alice secret two" not in [m.content for m in head.values["messages"]]
        saver.fork_thread(a.current_thread_id, cid(head), "bob-fork")
        b = bob.adopt("bob-fork", name="fork")
        held = w.graph.get_state(cfg("bob-fork")).values["messages"]
        assert bob.search("secret") == []
        assert everyone.search("secret", user_id="bob") == []
        assert everyone.search("secret", session_id=b.id) == []
        assert bob.usage(b.id).messages == len(held)
        # What the fork does hold is found there, and alice still finds her message.
        assert {h.thread_id for h in bob.search("three", role="user")} == {"bob-fork"}
        assert [h.thread_id for h in alice.search("secret", role="user")] == [a.current_thread_id]
        # The same within one user: a fork adopted into another of her sessions.
        saver.fork_thread(a.current_thread_id, cid(head), "alice-fork")
        other = alice.adopt("alice-fork", name="other")
        assert alice.search("secret", session_id=other.id) == []
        assert alice.usage(other.id).messages == len(held)


@pytest.mark.parametrize("how", ["prune", "delete_for_runs"])
def test_a_thread_stops_counting_a_line_it_no_longer_lists(
    db: str, how: str, tmp_path: Any
) -> None:
    """A line of a thread that the thread no longer lists, kept only because a fork
    inherits it, is the fork's alone: the thread's own search and usage leave it out.

    ``prune``: alice runs again from an older checkpoint (time travel), a fork is made
    at the head of the line she left, then her thread is pruned to its latest checkpoint.
    ``delete_for_runs``: her last run is deleted after a fork was made at its head. In
    both, the line's messages used to be counted and found in her session still (twice
    as many turns as her thread holds after the prune)."""
    from langchain_core.messages import HumanMessage

    with AgentGitSaver.from_conn_string(db) as saver:
        w = World("sync", saver)
        alice = SessionManager(saver, user_id="alice")
        everyone = SessionManager(saver)
        a = alice.create_session(name="a")
        config = alice.config(a.id)
        w.graph.invoke({"messages": [HumanMessage(content="hello one")]}, config)
        early = w.graph.get_state(config)
        if how == "prune":
            w.graph.invoke({"messages": [HumanMessage(content="alice secret two")]}, config)
            saver.fork_thread(a.current_thread_id, cid(w.graph.get_state(config)), "old-fork")
            w.graph.invoke({"messages": [HumanMessage(content="hello three")]}, early.config)
            saver.prune([a.current_thread_id], strategy="keep_latest")
        else:
            run = {**config, "metadata": {"run_id": "the-last-run"}}
            w.graph.invoke({"messages": [HumanMessage(content="alice secret two")]}, run)
            saver.fork_thread(a.current_thread_id, cid(w.graph.get_state(config)), "old-fork")
            saver.delete_for_runs(["the-last-run"])
        held = w.graph.get_state(config).values["messages"]
        assert "alice secret two" not in [m.content for m in held]
        assert counts(alice.usage(a.id)) == recount(held)
        assert alice.search("secret") == []
        assert everyone.search("secret", session_id=a.id) == []
        # The fork holds the line: found there, and counted when someone adopts it.
        assert {h.thread_id for h in everyone.search("secret")} == {"old-fork"}
        forked = w.graph.get_state(cfg("old-fork")).values["messages"]
        assert "alice secret two" in [m.content for m in forked]
        bob = SessionManager(saver, user_id="bob")
        b = bob.adopt("old-fork", name="fork")
        assert counts(bob.usage(b.id)) == recount(forked)
        hits = bob.search("secret")
        assert {h.thread_id for h in hits} == {"old-fork"}
        assert {str(h.message_id) for h in hits} == containing(forked, "secret")
        # A fork made now of what alice keeps holds her kept line, not the dropped one.
        saver.fork_thread(a.current_thread_id, cid(w.graph.get_state(config)), "new-fork")
        carol = SessionManager(saver, user_id="carol")
        c = carol.adopt("new-fork", name="kept")
        assert counts(carol.usage(c.id)) == recount(held)
        assert carol.search("secret") == []
        assert {h.thread_id for h in carol.search("hello")} == {"new-fork"}
        # What both hold is reported once, on the thread that wrote it.
        assert {h.thread_id for h in everyone.search("hello", limit=100)} == {a.current_thread_id}
        expected = {s: counts(everyone.usage(s)) for s in (a.id, b.id, c.id)}
        buffer = io.StringIO()
        everyone.export_sessions(buffer)
    # What the thread dropped travels with it: an export, and a copy to the other engine.
    with AgentGitSaver.from_conn_string(str(tmp_path / "imported.db")) as saver:
        SessionManager(saver).import_sessions(io.StringIO(buffer.getvalue()))
        again = SessionManager(saver)
        assert {s: counts(again.usage(s)) for s in (a.id, b.id, c.id)} == expected
        assert {h.thread_id for h in again.search("secret")} == {"old-fork"}
    if not db.startswith("postgresql"):
        copied = str(tmp_path / "copied.db")
        result = runner.invoke(app, ["copy", db, copied], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        with AgentGitSaver.from_conn_string(copied) as saver:
            again = SessionManager(saver)
            assert {s: counts(again.usage(s)) for s in (a.id, b.id, c.id)} == expected
            assert {h.thread_id for h in again.search("secret")} == {"old-fork"}


@pytest.mark.parametrize("mode", MODES)
async def test_a_fork_made_after_its_source_was_pruned_sees_the_pruned_history(
    mode: str, db: str
) -> None:
    """A thread pruned to its latest checkpoint keeps its messages in that checkpoint's
    state; a fork made of it afterwards holds them too. The index rows of those messages
    name checkpoints the prune deleted, which no fork's chain reaches: the fork's search
    and usage missed them (3 messages counted of 8 held)."""
    async with open_world(mode, db) as w:
        s = await w.call("create_session")
        await say_all(w, s.id, ["alpha one", "beta two", "gamma three"])
        source = (await w.call("get_session", s.id)).current_thread_id
        if mode == "sync":
            w.saver.prune([source], strategy="keep_latest")
        else:
            await w.saver.aprune([source], strategy="keep_latest")
        head = (await w.history(cfg(source)))[0]
        if mode == "sync":
            w.saver.fork_thread(source, cid(head), f"fork-{s.id}")
        else:
            await w.saver.afork_thread(source, cid(head), f"fork-{s.id}")
        other = await w.call("adopt", f"fork-{s.id}", name="after the prune")
        await say_all(w, other.id, ["delta four"])
        held = await history_messages(w, [f"fork-{s.id}"])
        assert counts(await w.call("usage", other.id)) == recount(held)
        hits = await w.call("search", "alpha", session_id=other.id)
        assert {str(h.message_id) for h in hits} == containing(held, "alpha")
        # The source still counts its own, and the fork's new message is the fork's.
        assert counts(await w.call("usage", s.id)) == recount(await history_messages(w, [source]))
        assert await w.call("search", "delta", session_id=s.id) == []


# --- after prunes and deleted runs (found by a break-it pass) --------------------------------


class EchoState(TypedDict):
    messages: Annotated[list[AnyMessage], add_messages]


def _echo(state: EchoState) -> dict[str, Any]:
    said = state["messages"][-1].content
    usage: Any = {"input_tokens": 10, "output_tokens": 5, "total_tokens": 15}
    return {"messages": [AIMessage(f"echo: {said}", id=f"ai-{uuid.uuid4()}", usage_metadata=usage)]}


def _echo_graph(saver: Any) -> Any:
    """One node answering each user message with a 15-token reply."""
    builder = StateGraph(EchoState)
    builder.add_node("echo", _echo)
    builder.add_edge(START, "echo")
    builder.add_edge("echo", END)
    return builder.compile(checkpointer=saver)


def _held(graph: Any, config: Any) -> list[BaseMessage]:
    """Every message of the branch's listed checkpoints, once."""
    seen: dict[tuple[Any, str], BaseMessage] = {}
    for snapshot in graph.get_state_history(config):
        for m in snapshot.values.get("messages", []):
            seen.setdefault(_key(m), m)
    return list(seen.values())


def test_prune_sessions_drops_a_line_kept_only_for_a_fork(db: str) -> None:
    """prune_sessions(keep_last=...) after time travel, with a branch forked on the line
    left: that line is the branch's alone, as after saver.prune (it was still counted and
    found in main)."""
    from langchain_core.messages import HumanMessage

    with AgentGitSaver.from_conn_string(db) as saver:
        graph = _echo_graph(saver)
        mgr = SessionManager(saver)
        s = mgr.create_session(name="p")
        main = mgr.config(s.id)
        graph.invoke({"messages": [HumanMessage("alpha", id="h1")]}, main)
        early = graph.get_state(main).config
        graph.invoke({"messages": [HumanMessage("bravo", id="h2")]}, main)
        side = mgr.branch(s.id, list(graph.get_state_history(main))[1], name="side")
        graph.invoke({"messages": [HumanMessage("charlie", id="h3")]}, early)
        mgr.prune_sessions(keep_last=2)
        held = _held(graph, main)
        assert "bravo" not in [m.content for m in held]
        usage = counts(mgr.usage(s.id, thread_id=s.current_thread_id))
        expected = recount(held)
        del usage["turns"], expected["turns"]  # (see the note on turns in the README)
        assert usage == expected
        assert {h.thread_id for h in mgr.search("bravo", session_id=s.id)} == {side.thread_id}
        assert [t.text for t in mgr.turns(s.id)] == ["charlie"]


def test_a_deleted_runs_answer_kept_as_a_forks_pending_write_is_not_the_threads(
    db: str,
) -> None:
    """A branch forked inside a run, before its node answered, keeps that answer as its
    fork point's pending write. Deleting the run (or pruning the thread) must not leave
    the answer found in, and counted for, a thread that holds it nowhere, at a checkpoint
    that no longer exists."""
    from langchain_core.messages import HumanMessage

    for how in ("delete_for_runs", "prune"):
        with AgentGitSaver.from_conn_string(db) as saver:
            graph = _echo_graph(saver)
            mgr = SessionManager(saver)
            s = mgr.create_session(name=how)
            main = mgr.config(s.id)
            graph.invoke({"messages": [HumanMessage("alpha")]}, main)
            run = str(uuid.uuid4())
            graph.invoke(
                {"messages": [HumanMessage("bravo")]}, {**main, "metadata": {"run_id": run}}
            )
            mgr.branch(s.id, list(graph.get_state_history(main))[1], name="side")
            if how == "delete_for_runs":
                saver.delete_for_runs([run])
            else:
                saver.prune([s.current_thread_id], strategy="keep_latest")
            held = _held(graph, main)
            usage = mgr.usage(s.id, thread_id=s.current_thread_id)
            assert usage.messages == len(held), how
            everywhere = {
                _key(m)
                for b in mgr.branches(s.id)
                for m in _held(graph, {"configurable": {"thread_id": b.thread_id}})
            }
            assert mgr.usage(s.id).messages == len(everywhere), how
            for hit in mgr.search("echo", session_id=s.id, limit=50):
                found = cfg(hit.thread_id, hit.checkpoint_id)
                assert saver.get_tuple(found) is not None, (how, hit)
                assert hit.message in _held(graph, {"configurable": {"thread_id": hit.thread_id}})


def test_turns_after_keep_last_list_the_turn_that_remains(db: str) -> None:
    """After prune_sessions(keep_last=2) only the last turn's checkpoints remain: turns()
    lists that turn (it listed the first, whose checkpoints are gone), and undoing it says
    that the checkpoint before it was pruned."""
    from langchain_core.messages import HumanMessage

    from langgraph_agentgit import TurnNotFoundError

    with AgentGitSaver.from_conn_string(db) as saver:
        graph = _echo_graph(saver)
        mgr = SessionManager(saver)
        s = mgr.create_session(name="t")
        for text in ("alpha", "bravo", "charlie"):
            graph.invoke({"messages": [HumanMessage(text, id=text)]}, mgr.config(s.id))
        assert [t.text for t in mgr.turns(s.id)] == ["alpha", "bravo", "charlie"]
        mgr.prune_sessions(keep_last=2)
        turns = mgr.turns(s.id)
        assert [t.text for t in turns] == ["charlie"]
        assert [m.content for m in turns[0].messages] == ["charlie", "echo: charlie"]
        with pytest.raises(TurnNotFoundError, match="pruned"):
            mgr.undo_last_turn(s.id)


def test_a_message_edited_in_place_is_not_a_new_turn(db: str) -> None:
    """update_state with a user message's id and new text (add_messages replaces it, the
    usual way to edit a message): usage counts both texts as messages, as the history
    holds both, but one turn, as turns() lists it (it counted an extra turn)."""
    from langchain_core.messages import HumanMessage

    with AgentGitSaver.from_conn_string(db) as saver:
        graph = _echo_graph(saver)
        mgr = SessionManager(saver)
        s = mgr.create_session(name="edit")
        config = mgr.config(s.id)
        graph.invoke({"messages": [HumanMessage("hello there", id="h1")]}, config)
        graph.invoke({"messages": [HumanMessage("second", id="h2")]}, config)
        graph.update_state(config, {"messages": [HumanMessage("second, edited", id="h2")]})
        graph.invoke({"messages": [HumanMessage("third", id="h3")]}, config)
        usage = mgr.usage(s.id)
        assert usage.turns == len(mgr.turns(s.id)) == 3
        assert usage.messages == len(_held(graph, config))
        hits = {h.message.content for h in mgr.search("second", role="human")}
        assert hits == {"second", "second, edited"}
        # A rebuilt index counts the same.
        mgr.reindex()
        assert mgr.usage(s.id) == usage


def _readable_hits(saver: Any, graph: Any, hits: Sequence[Any]) -> None:
    """Each hit names a checkpoint its thread lists, whose state (or history) holds it."""
    for hit in hits:
        found = saver.get_tuple(cfg(hit.thread_id, hit.checkpoint_id))
        assert found is not None, hit
        state = graph.get_state(cfg(hit.thread_id, hit.checkpoint_id))
        assert hit.message in state.values["messages"], hit


def test_forks_of_pruned_branches_count_and_find_what_they_hold(db: str) -> None:
    """A branch pruned to its latest checkpoint, then forked: the fork holds every message
    of that checkpoint's state. With a search between the prune and the fork (which
    rebuilt the index of the pruned branch at checkpoints the fork does not list), the
    fork counted 3 of 8 and found nothing it inherited; a message was found twice."""
    from langchain_core.messages import HumanMessage

    with AgentGitSaver.from_conn_string(db) as saver:
        graph = _echo_graph(saver)
        mgr = SessionManager(saver)
        s = mgr.create_session(user_id="ada")
        graph.invoke({"messages": [HumanMessage("apple one")]}, mgr.config(s.id))
        first = mgr.branch(s.id, mgr.config(s.id), name="first")
        for text in ("banana two", "cherry three"):
            graph.invoke({"messages": [HumanMessage(text)]}, first.config)
        saver.prune([first.thread_id], strategy="keep_latest")
        mgr.search("apple")  # rebuilds the index (a pruned fork's rows were copied)
        second = mgr.branch(s.id, first.config, name="second")
        graph.invoke({"messages": [HumanMessage("date four")]}, second.config)
        held = _held(graph, second.config)
        assert len(held) == 8
        assert mgr.usage(s.id, thread_id=second.thread_id).messages == len(held)
        hits = mgr.search("banana", session_id=s.id)
        assert sorted(str(h.message_id) for h in hits) == sorted(containing(held, "banana"))
        _readable_hits(saver, graph, hits)
        # A plain fork of it, adopted by another user.
        saver.fork_thread(second.thread_id, cid(graph.get_state(second.config)), "bobs-copy")
        graph.invoke({"messages": [HumanMessage("elder five")]}, cfg("bobs-copy"))
        bob = SessionManager(saver, user_id="bob")
        b = bob.adopt("bobs-copy", name="copy")
        held = _held(graph, cfg("bobs-copy"))
        assert bob.usage(b.id).messages == len(held) == 10
        hits = bob.search("cherry")
        assert {h.thread_id for h in hits} == {"bobs-copy"}
        assert sorted(str(h.message_id) for h in hits) == sorted(containing(held, "cherry"))
        _readable_hits(saver, graph, hits)


def test_a_second_prune_keeps_what_an_earlier_one_left_on_the_line(db: str) -> None:
    """A thread pruned to its latest checkpoint while an earlier fork keeps its first
    turn, continued, then trimmed by prune_sessions: its first turn is still in its
    state (it was taken for a line the thread had left: 4 of 6 counted)."""
    from langchain_core.messages import HumanMessage

    with AgentGitSaver.from_conn_string(db) as saver:
        graph = _echo_graph(saver)
        mgr = SessionManager(saver)
        s = mgr.create_session(user_id="ada")
        main = mgr.config(s.id)
        for text in ("apple", "banana"):
            graph.invoke({"messages": [HumanMessage(text)]}, main)
        early = next(
            x
            for x in graph.get_state_history(main)
            if len(x.values["messages"]) == 2 and not x.next
        )
        side = mgr.branch(s.id, early, name="side")
        graph.invoke({"messages": [HumanMessage("cherry")]}, side.config)
        saver.prune([s.current_thread_id], strategy="keep_latest")
        graph.invoke({"messages": [HumanMessage("date")]}, main)
        mgr.prune_sessions(keep_last=3)
        held = _held(graph, main)
        assert mgr.usage(s.id, thread_id=s.current_thread_id).messages == len(held) == 6
        hits = mgr.search("apple", session_id=s.id)
        assert {h.thread_id for h in hits} == {s.current_thread_id}
        _readable_hits(saver, graph, hits)


def test_a_hit_an_heir_reports_names_a_checkpoint_the_heir_lists(db: str) -> None:
    """bob's thread is pruned while a branch keeps its older checkpoints; ada adopts a
    plain fork of his head. Her filtered search reports his message on her thread: at a
    checkpoint she lists (it named one she could not read)."""
    from langchain_core.messages import HumanMessage

    with AgentGitSaver.from_conn_string(db) as saver:
        graph = _echo_graph(saver)
        mgr = SessionManager(saver)
        s = mgr.create_session(user_id="bob")
        main = s.current_thread_id
        for text in ("apple", "banana"):
            graph.invoke({"messages": [HumanMessage(text)]}, mgr.config(s.id))
        mgr.undo_last_turn(s.id)
        saver.prune([main], strategy="keep_latest")
        saver.fork_thread(main, cid(graph.get_state(cfg(main))), "adas-copy")
        graph.invoke({"messages": [HumanMessage("cherry")]}, cfg("adas-copy"))
        ada = mgr.adopt("adas-copy", user_id="ada")
        for filters in ({"session_id": ada.id}, {"user_id": "ada"}):
            hits = mgr.search("apple", **filters)  # type: ignore[arg-type]
            assert {h.thread_id for h in hits} == {"adas-copy"} and len(hits) == 2
            _readable_hits(saver, graph, hits)


@pytest.mark.parametrize("how", ["prune", "delete_for_runs"])
def test_messages_a_rewritten_list_holds_stay_indexed_when_their_first_value_goes(
    db: str, how: str
) -> None:
    """A message edited in place makes the next list a whole new value, holding the
    other messages again. The index named their first values; when a prune (or a
    deleted run) lets the collector delete those, the thread is indexed again from
    what it holds (it counted 1 of 4 messages and found none of the others)."""
    from langchain_core.messages import HumanMessage

    with AgentGitSaver.from_conn_string(db) as saver:
        graph = _echo_graph(saver)
        mgr = SessionManager(saver)
        s = mgr.create_session(name=how)
        config = mgr.config(s.id)
        run = {**config, "metadata": {"run_id": "first-run"}}
        graph.invoke({"messages": [HumanMessage("first hello", id="h1")]}, run)
        graph.invoke({"messages": [HumanMessage("second", id="h2")]}, config)
        graph.update_state(config, {"messages": [HumanMessage("first edited", id="h1")]})
        if how == "prune":
            saver.prune([s.current_thread_id], strategy="keep_latest")
        else:
            saver.delete_for_runs(["first-run"])
        held = _held(graph, config)
        assert mgr.usage(s.id).messages == len(held)
        hits = mgr.search("second")
        assert sorted(str(h.message_id) for h in hits) == sorted(containing(held, "second"))
        _readable_hits(saver, graph, hits)


@pytest.mark.parametrize("seed", [7, 11, 23])
def test_rollbacks_and_branch_deletes_keep_the_index_whole(tmp_path: Any, seed: int) -> None:
    """Random turns, rollbacks and branch deletions (the fault test's steps, without the
    kills): each step succeeds, and each branch counts what its history holds. Seed 7
    deleted a branch whose collected values sent the index to rebuild a deleted thread
    that only links its forks, and whose fork checkpoint was gone: the delete failed."""
    import random

    from langchain_core.messages import HumanMessage

    rng = random.Random(seed)
    with AgentGitSaver.from_conn_string(str(tmp_path / "steps.db")) as saver:
        graph = _echo_graph(saver)
        mgr = SessionManager(saver)
        s = mgr.create_session()
        for turn in range(25):
            roll = rng.random()
            if roll < 0.5:
                graph.invoke({"messages": [HumanMessage(f"m{turn}")]}, mgr.config(s.id))
            elif roll < 0.8:
                history = mgr.checkpoints(s.id)
                if history:
                    mgr.rollback(s.id, cid(rng.choice(history)))
            else:
                branches = mgr.branches(s.id)
                if len(branches) > 1:
                    mgr.delete_branch(s.id, rng.choice(branches).thread_id)
            for b in mgr.branches(s.id):
                held = _held(graph, {"configurable": {"thread_id": b.thread_id}})
                assert mgr.usage(s.id, thread_id=b.thread_id).messages == len(held), turn


@pytest.mark.parametrize("seed", [3, 4, 10, 14, 16])
def test_hits_after_random_prunes_name_checkpoints_holding_them(tmp_path: Any, seed: int) -> None:
    """Random turns, edits, removals, rollbacks, branches, time travel, prunes of both
    kinds, deleted runs and branches, on two sessions (a break-it helper's sequence
    found a deleted run's answer still found, at a checkpoint that did not hold it; 11
    of the first 40 seeds failed so, these among them). After each step every hit names
    a checkpoint its branch lists whose state holds the message. (Counts are not
    compared: an edit or removal before a prune is still counted while a fork keeps the
    old checkpoints, see docs/session-api.md.)"""
    import random

    from langchain_core.messages import HumanMessage

    rng = random.Random(seed)
    with AgentGitSaver.from_conn_string(str(tmp_path / "random.db")) as saver:
        graph = _echo_graph(saver)
        mgr = SessionManager(saver)
        sessions = [mgr.create_session(name=f"s{i}").id for i in range(2)]
        for step in range(25):
            sid = rng.choice(sessions)
            tid = rng.choice(mgr.get_session(sid).internal_session_ids)  # type: ignore[union-attr]
            config = cfg(tid)
            op = rng.choice(
                ["invoke"] * 4
                + ["edit", "remove", "rollback", "branch", "tt", "prune_s", "prune"]
                + ["delete_branch", "dfr", "undo"]
            )
            state = graph.get_state(config)
            messages = state.values.get("messages", [])
            try:
                if op == "invoke":
                    run = {**config, "metadata": {"run_id": str(uuid.uuid4())}}
                    graph.invoke({"messages": [HumanMessage(f"q w{step}")]}, run)
                elif op == "edit" and messages:
                    m = rng.choice(messages)
                    graph.update_state(config, {"messages": [type(m)(f"edited w{step}", id=m.id)]})
                elif op == "remove" and messages:
                    graph.update_state(
                        config, {"messages": [RemoveMessage(id=rng.choice(messages).id)]}
                    )
                elif op in ("rollback", "branch", "tt"):
                    history = list(graph.get_state_history(config))
                    if history:
                        target = rng.choice(history)
                        if op == "rollback":
                            mgr.rollback(sid, target)
                        elif op == "branch":
                            mgr.branch(sid, target)
                        else:
                            graph.invoke({"messages": [HumanMessage(f"tt w{step}")]}, target.config)
                elif op == "prune_s":
                    mgr.prune_sessions(keep_last=rng.randint(1, 4))
                elif op == "prune":
                    saver.prune([tid], strategy="keep_latest")
                elif op == "delete_branch":
                    mgr.delete_branch(sid, tid)
                elif op == "dfr":
                    runs = [t.metadata.get("run_id") for t in saver.list(config)]
                    runs = [r for r in runs if r]
                    if runs:
                        saver.delete_for_runs([rng.choice(runs)])
                elif op == "undo":
                    mgr.undo_last_turn(sid)
            except (LastBranchError, TurnNotFoundError, CheckpointNotFoundError):
                pass
            for session_id in sessions:
                _readable_hits(saver, graph, mgr.search("w*", session_id=session_id, limit=1000))


def test_a_fork_whose_history_a_prune_cut_counts_what_its_fork_point_holds(db: str) -> None:
    """Time travel makes a second line; a prune removes the checkpoint both lines grew
    from, so the index holds the first turn's messages at a checkpoint of the other
    line, which the new line's parent links no longer reach. A branch rolled back onto
    the new line holds those messages: it counts and finds them, before and after its
    first step (it counted none)."""
    from langchain_core.messages import HumanMessage

    with AgentGitSaver.from_conn_string(db) as saver:
        graph = _echo_graph(saver)
        mgr = SessionManager(saver)
        s = mgr.create_session()
        main = mgr.config(s.id)
        graph.invoke({"messages": [HumanMessage("alpha")]}, main)
        after_first = graph.get_state(main).config
        for text in ("bravo", "charlie"):
            graph.invoke({"messages": [HumanMessage(text)]}, main)
        graph.invoke({"messages": [HumanMessage("delta")]}, after_first)
        mgr.prune_sessions(keep_last=5)
        head = graph.get_state(main)
        assert [m.content for m in head.values["messages"]] == [
            "alpha",
            "echo: alpha",
            "delta",
            "echo: delta",
        ]
        branch = mgr.rollback(s.id, head)
        held = _held(graph, branch.config)
        assert mgr.usage(s.id, thread_id=branch.thread_id).messages == len(held) == 4
        graph.invoke({"messages": [HumanMessage("echo")]}, branch.config)
        held = _held(graph, branch.config)
        assert mgr.usage(s.id, thread_id=branch.thread_id).messages == len(held) == 6
        hits = mgr.search("alpha", session_id=s.id)
        assert containing(held, "alpha") <= {str(h.message_id) for h in hits}
        _readable_hits(saver, graph, hits)


# --- runs deleted and branches pruned around forks (a break-it pass, helper 30) -------------


def _deleted_runs_around_a_rollback(saver: Any, graph: Any, mgr: Any, s: Any) -> None:
    """Two runs, the first deleted, a rollback to a checkpoint of the second, then the
    second deleted: main holds nothing, the branch both runs' messages (it counted two
    for main and found one of the branch's three words)."""
    from langchain_core.messages import HumanMessage

    runs = [str(uuid.uuid4()), str(uuid.uuid4())]
    for word, run in zip(("alpha", "bravo"), runs, strict=True):
        config = mgr.config(s.id)
        config["configurable"]["run_id"] = run
        graph.invoke({"messages": [HumanMessage(word, id=word)]}, config)
    saver.delete_for_runs([runs[0]])
    main = mgr.config(s.id)
    second = [t for t in saver.list(main) if t.metadata.get("run_id") == runs[1]]
    mgr.rollback(s.id, second[0].config["configurable"]["checkpoint_id"])
    saver.delete_for_runs([runs[1]])


def _time_travel_past_the_fork_point_then_prune(saver: Any, graph: Any, mgr: Any, s: Any) -> None:
    """A branch runs on from a checkpoint older than its fork point, then is pruned: it
    counted the fork point's messages, which its kept line never held (6 for 4)."""
    from langchain_core.messages import HumanMessage

    for word in ("apple", "banana", "cherry"):
        graph.invoke({"messages": [HumanMessage(word, id=word)]}, mgr.config(s.id))
    history = list(graph.get_state_history(mgr.config(s.id)))
    answered = [h for h in history if h.metadata["source"] == "loop" and h.next == ()]
    after_apple, after_banana = answered[-1], answered[-2]
    branch = mgr.rollback(s.id, after_banana)
    graph.invoke({"messages": [HumanMessage("date", id="date")]}, mgr.config(s.id))
    older = cfg(branch.thread_id, after_apple.config["configurable"]["checkpoint_id"])
    graph.invoke({"messages": [HumanMessage("elder", id="elder")]}, older)
    saver.prune([branch.thread_id])


def _pruned_fork_loses_its_only_run(saver: Any, graph: Any, mgr: Any, s: Any) -> None:
    """A branch is pruned, then its only run is deleted: it holds nothing and counted
    its fork point's two messages."""
    from langchain_core.messages import HumanMessage

    for word in ("kilo", "lima"):
        graph.invoke({"messages": [HumanMessage(word, id=word)]}, mgr.config(s.id))
    history = list(graph.get_state_history(mgr.config(s.id)))
    after_kilo = [h for h in history if h.metadata["source"] == "loop" and h.next == ()][-1]
    branch = mgr.rollback(s.id, after_kilo)
    run = str(uuid.uuid4())
    config = mgr.config(s.id)
    config["configurable"]["run_id"] = run
    graph.invoke({"messages": [HumanMessage("mike", id="mike")]}, config)
    saver.prune([branch.thread_id])
    saver.delete_for_runs([run])


def _source_and_branch_pruned_after_an_update_at_the_fork_point(
    saver: Any, graph: Any, mgr: Any, s: Any
) -> None:
    """A branch's head is an update_state made at its (inherited) fork checkpoint, a
    branch is forked from it, then the source and the branch are pruned: the branch
    counted 1 of the 9 messages it holds (a reindex placed them on the line it left)."""
    from langchain_core.messages import HumanMessage

    for word in ("aaaa", "bbbb", "cccc"):
        graph.invoke({"messages": [HumanMessage(word, id=word)]}, mgr.config(s.id))
    main = s.current_thread_id
    branch = mgr.rollback(s.id, graph.get_state(mgr.config(s.id)))
    graph.invoke({"messages": [HumanMessage("dddd", id="dddd")]}, mgr.config(s.id))
    fork_point = cfg(branch.thread_id, branch.fork_checkpoint_id)
    aside = AIMessage(
        "aside eeee",
        id="eeee",
        usage_metadata={"input_tokens": 1, "output_tokens": 1, "total_tokens": 2},
    )
    graph.update_state(fork_point, {"messages": [aside]}, as_node="echo")
    mgr.rollback(s.id, list(graph.get_state_history(cfg(branch.thread_id)))[1])
    graph.invoke({"messages": [HumanMessage("ffff", id="ffff")]}, mgr.config(s.id))
    saver.prune([main, branch.thread_id])


def _source_deleted_after_time_travel_on_a_pruned_line(
    saver: Any, graph: Any, mgr: Any, s: Any
) -> None:
    """After prune_sessions, main runs twice from older checkpoints (time travel); a
    branch forked on the second run's input is left alone when main is deleted: it
    counted the lines main had left (6 messages where it holds 2)."""
    from langchain_core.messages import HumanMessage

    for word in ("aaaa", "bbbb"):
        graph.invoke({"messages": [HumanMessage(word, id=word)]}, mgr.config(s.id))
    main = s.current_thread_id
    mgr.prune_sessions(keep_last=3)
    history = list(graph.get_state_history(cfg(main)))
    graph.invoke({"messages": [HumanMessage("cccc", id="cccc")]}, history[1].config)
    graph.invoke({"messages": [HumanMessage("dddd", id="dddd")]}, history[2].config)
    inputs = [
        h
        for h in graph.get_state_history(cfg(main))
        if h.metadata["source"] == "input"
        and h.parent_config is not None
        and h.parent_config["configurable"]["checkpoint_id"] == cid(history[2])
    ]
    mgr.branch(s.id, inputs[0])
    mgr.delete_branch(s.id, main)


@pytest.mark.parametrize(
    "scenario",
    [
        _deleted_runs_around_a_rollback,
        _time_travel_past_the_fork_point_then_prune,
        _pruned_fork_loses_its_only_run,
        _source_and_branch_pruned_after_an_update_at_the_fork_point,
        _source_deleted_after_time_travel_on_a_pruned_line,
    ],
)
def test_counts_and_search_after_runs_deleted_and_branches_pruned_around_forks(
    db: str, scenario: Any
) -> None:
    """Each branch counts, and search finds on it, what its listed checkpoints hold; the
    same in the process that made the change and in a fresh one (a process kept the
    ancestry it had computed before the prune), and after a reindex."""
    with AgentGitSaver.from_conn_string(db) as saver:
        graph = _echo_graph(saver)
        mgr = SessionManager(saver)
        s = mgr.create_session(name=scenario.__name__)
        scenario(saver, graph, mgr, s)

        def check(mgr: Any, when: str) -> None:
            everywhere: dict[tuple[Any, str], BaseMessage] = {}
            for b in mgr.branches(s.id):
                held = _held(graph, cfg(b.thread_id))
                everywhere.update((_key(m), m) for m in held)
                usage = counts(mgr.usage(s.id, thread_id=b.thread_id))
                expected = recount(held)
                del usage["turns"], expected["turns"]  # (see the note on turns in the README)
                assert usage == expected, (when, b.name)
                for m in held:
                    if m.type != "human":
                        continue
                    hits = mgr.search(str(m.content), session_id=s.id)
                    assert _key(m) in {_key(h.message) for h in hits}, (when, b.name, m.content)
                    _readable_hits(saver, graph, hits)
            assert mgr.usage(s.id).messages == len(everywhere), when

        check(mgr, "in the process that pruned")
        with AgentGitSaver.from_conn_string(db) as fresh:
            check(SessionManager(fresh), "in a fresh process")
        mgr.reindex()
        check(mgr, "after a reindex")
