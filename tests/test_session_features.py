"""What the seeds' session stores do, on real branches: turns, ownership, limits, titles
and lifecycle, events, and their commands.

Every test runs real compiled graphs (deterministic fake chat models) on both engines
(``any_db``: a SQLite file, then a fresh Postgres schema), through the sync and the
async API. Expected transcripts come from reference runs of the same turns on a fresh
plain thread; expected checkpoints from LangGraph's own ``get_state_history``.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import logging
import threading
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
from conftest import sql_rows
from graphs import build_tool_agent
from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langgraph.graph import MessagesState, StateGraph
from session_graphs import COUNTER, GraphCase, cfg, cid, digest, dump_tables, get_weather
from typer.testing import CliRunner

from langgraph_agentgit import (
    AgentGitError,
    AgentGitSaver,
    AmbiguousSessionError,
    AsyncAgentGitSaver,
    CheckpointNotFoundError,
    InvalidSessionNameError,
    SessionEvent,
    SessionLimitError,
    SessionManager,
    SessionNotFoundError,
    SessionScopeError,
    ThreadExistsError,
    ThreadNotFoundError,
    TokenUsage,
    TurnNotFoundError,
)
from langgraph_agentgit.cli import app

MODES = ["sync", "async"]


@pytest.fixture
def db(any_db: str) -> str:
    return any_db


# --- a tool-calling agent whose model reports token usage ------------------------------------


class UsageModel(BaseChatModel):
    """Calls ``get_weather`` when asked about the weather, answers with the tool result,
    else echoes. Every reply reports ``usage_metadata``: input tokens = the number of
    messages it was given, output tokens = 2, total = their sum."""

    @property
    def _llm_type(self) -> str:
        return "fake-usage-model"

    def bind_tools(self, tools: Any, **kwargs: Any) -> UsageModel:  # type: ignore[override]
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        key = digest(tuple(f"{m.type}:{m.content}" for m in messages))
        usage = {
            "input_tokens": len(messages),
            "output_tokens": 2,
            "total_tokens": len(messages) + 2,
        }
        last = messages[-1]
        if isinstance(last, ToolMessage):
            reply = AIMessage(
                content=f"the weather is {last.content}", id=f"ai-{key}", usage_metadata=usage
            )
        elif "weather in " in str(last.content):
            city = str(last.content).split("weather in ", 1)[1].strip(" ?")
            reply = AIMessage(
                content="",
                id=f"ai-{key}",
                tool_calls=[{"name": "get_weather", "args": {"city": city}, "id": f"call-{key}"}],
                usage_metadata=usage,
            )
        else:
            reply = AIMessage(content=f"echo: {last.content}", id=f"ai-{key}", usage_metadata=usage)
        return ChatResult(generations=[ChatGeneration(message=reply)])


def build_usage_agent() -> StateGraph:
    return build_tool_agent(UsageModel(), [get_weather], MessagesState)


def _human(text: str) -> list[Any]:
    return [{"messages": [("user", text)]}]


def _transcript(values: dict[str, Any]) -> list[str]:
    return [f"{m.type}: {m.content}" for m in values.get("messages", [])]


USAGE_AGENT = GraphCase("usage-agent", build_usage_agent, _human, _transcript)


class World:
    """A saver on the database, the usage agent compiled on it, and session managers,
    driven through the sync or the async API."""

    def __init__(self, mode: str, saver: Any) -> None:
        self.mode = mode
        self.saver = saver
        self.graph = USAGE_AGENT.build().compile(checkpointer=saver)
        self.counter = COUNTER.build().compile(checkpointer=saver)
        self.mgr = SessionManager(saver)

    def manager(self, **options: Any) -> SessionManager:
        return SessionManager(self.saver, **options)

    async def call(
        self, method: str, *args: Any, mgr: SessionManager | None = None, **kw: Any
    ) -> Any:
        target = mgr or self.mgr
        if self.mode == "sync":
            return getattr(target, method)(*args, **kw)
        return await getattr(target, "a" + method)(*args, **kw)

    async def outcome(
        self, method: str, *args: Any, mgr: SessionManager | None = None, **kw: Any
    ) -> tuple[type[BaseException], str] | None:
        """The error class and message a call raises (``None`` if it does not)."""
        try:
            await self.call(method, *args, mgr=mgr, **kw)
        except AgentGitError as exc:
            return type(exc), str(exc)
        return None

    async def say(self, config: Any, text: str, graph: Any = None) -> None:
        graph = graph or self.graph
        if self.mode == "sync":
            graph.invoke({"messages": [("user", text)]}, config)
        else:
            await graph.ainvoke({"messages": [("user", text)]}, config)

    async def run_counter(self, config: Any, text: str) -> None:
        if self.mode == "sync":
            COUNTER.turn(self.counter, config, text)
        else:
            await COUNTER.aturn(self.counter, config, text)

    async def state(self, config: Any) -> Any:
        if self.mode == "sync":
            return self.graph.get_state(config)
        return await self.graph.aget_state(config)

    async def history(self, config: Any) -> list[Any]:
        if self.mode == "sync":
            return list(self.graph.get_state_history(config))
        return [s async for s in self.graph.aget_state_history(config)]

    async def transcript(self, config: Any) -> list[str]:
        return _transcript((await self.state(config)).values)

    async def reference(self, texts: Sequence[str]) -> list[str]:
        """The transcript of ``texts`` said from scratch on a new plain thread."""
        config = cfg(f"reference-{uuid.uuid4()}")
        for text in texts:
            await self.say(config, text)
        return await self.transcript(config)


@asynccontextmanager
async def open_world(mode: str, db: str) -> AsyncIterator[World]:
    if mode == "sync":
        with AgentGitSaver.from_conn_string(db) as saver:
            yield World(mode, saver)
    else:
        async with AsyncAgentGitSaver.from_conn_string(db) as asaver:
            yield World(mode, asaver)


def texts(turns: Sequence[Any]) -> list[str]:
    return [t.text for t in turns]


# --- 1. turns ------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_turns_match_the_history(mode: str, db: str) -> None:
    async with open_world(mode, db) as w:
        s = await w.call("create_session", user_id="ada", name="turns")
        said = ["hello", "weather in Paris", "third"]
        for text in said:
            await w.say(await w.call("config", s.id), text)
        found = await w.call("turns", s.id)
        assert [t.number for t in found] == [1, 2, 3]
        assert texts(found) == said
        assert all(t.thread_id == s.current_thread_id and not t.inherited for t in found)

        history = list(reversed(await w.history(cfg(s.current_thread_id))))  # oldest first
        source = {cid(h): h.metadata["source"] for h in history}
        # Each turn came as graph input: it starts at that run's input checkpoint, right
        # after the previous turn's last checkpoint, and the last one ends at the head.
        assert found[0].before_checkpoint_id is None
        assert found[0].start_checkpoint_id == cid(history[0])
        for previous, turn in itertools.pairwise(found):
            assert turn.before_checkpoint_id == previous.end_checkpoint_id
        ids = [cid(h) for h in history]
        for turn in found:
            assert source[turn.start_checkpoint_id] == "input"
            if turn.before_checkpoint_id is not None:
                assert (
                    ids.index(turn.start_checkpoint_id) == ids.index(turn.before_checkpoint_id) + 1
                )
        assert found[-1].end_checkpoint_id == cid(history[-1])
        # The turns' messages, in order, are the conversation.
        head = (await w.state(cfg(s.current_thread_id))).values["messages"]
        assert [m.id for t in found for m in t.messages] == [m.id for m in head]
        assert all(t.messages[0].type == "human" for t in found)

        # Tool calls: only the weather turn made one.
        assert [len(t.tool_calls) for t in found] == [0, 1, 0]
        call = found[1].tool_calls[0]
        assert (call["name"], call["args"]) == ("get_weather", {"city": "Paris"})
        assert call["id"] == head[3].tool_calls[0]["id"]
        # Usage: the model reports as input tokens the number of messages it was given.
        # Turn 1: one call on [h] -> 1. Turn 2: a call on [h ai h] (3) asking for the
        # tool, then on [h ai h ai tool] (5). Turn 3: one call on 7 messages.
        assert [t.usage for t in found] == [
            TokenUsage(1, 2, 3),
            TokenUsage(8, 4, 12),
            TokenUsage(7, 2, 9),
        ]

        # messages(): the last N of the head state, in order.
        assert [m.id for m in await w.call("messages", s.id)] == [m.id for m in head]
        assert [m.id for m in await w.call("messages", s.id, limit=3)] == [m.id for m in head[-3:]]
        assert await w.call("messages", s.id, limit=0) == []
        with pytest.raises(ValueError, match="limit"):
            await w.call("messages", s.id, limit=-1)
        for bad in (True, False, 1.5, "3"):  # a bool is not a count (True was 1)
            with pytest.raises(TypeError, match="limit must be an int"):
                await w.call("messages", s.id, limit=bad)


@pytest.mark.parametrize("mode", MODES)
async def test_turn_numbers_on_branches_of_branches(mode: str, db: str) -> None:
    async with open_world(mode, db) as w:
        s = await w.call("create_session", user_id="ada", name="branches")
        main = s.current_thread_id
        for text in ["hello", "weather in Paris", "third"]:
            await w.say(await w.call("config", s.id), text)
        main_turns = await w.call("turns", s.id)

        # Branch before turn 3: the branch holds turns 1-2, inherited, as main has them.
        b1 = await w.call("branch_from_turn", s.id, 3, name="one")
        assert b1.parent_thread_id == main
        assert b1.fork_checkpoint_id == main_turns[2].before_checkpoint_id
        assert (await w.call("config", s.id)) == cfg(b1.thread_id)
        inherited = await w.call("turns", s.id)
        assert [(t.number, t.text, t.inherited) for t in inherited] == [
            (1, "hello", True),
            (2, "weather in Paris", True),
        ]
        assert [t.start_checkpoint_id for t in inherited] == [
            t.start_checkpoint_id for t in main_turns[:2]
        ]
        await w.say(b1.config, "fourth")
        await w.say(b1.config, "fifth")
        assert [(t.number, t.text, t.inherited) for t in await w.call("turns", s.id)] == [
            (1, "hello", True),
            (2, "weather in Paris", True),
            (3, "fourth", False),
            (4, "fifth", False),
        ]

        # A branch of that branch, before its turn 4, then a new turn 4.
        b2 = await w.call("branch_from_turn", s.id, 4, name="two")
        assert b2.parent_thread_id == b1.thread_id
        await w.say(b2.config, "sixth")
        assert [(t.number, t.text, t.inherited) for t in await w.call("turns", s.id)] == [
            (1, "hello", True),
            (2, "weather in Paris", True),
            (3, "fourth", True),
            (4, "sixth", False),
        ]
        assert await w.transcript(b2.config) == await w.reference(
            ["hello", "weather in Paris", "fourth", "sixth"]
        )

        # A third level, found by text (case-insensitive), before turn 3 of b2.
        b3 = await w.call("branch_from_text", s.id, "FOURTH", name="three")
        # Its fork point (the end of turn 2) was written by main: the branch hangs off
        # the thread that wrote it, as every rollback does.
        assert b3.parent_thread_id == main
        assert b3.fork_checkpoint_id == main_turns[1].end_checkpoint_id
        await w.say(b3.config, "seventh")
        b3_turns = await w.call("turns", s.id)
        assert [(t.number, t.text) for t in b3_turns] == [
            (1, "hello"),
            (2, "weather in Paris"),
            (3, "seventh"),
        ]
        assert await w.transcript(b3.config) == await w.reference(
            ["hello", "weather in Paris", "seventh"]
        )

        # Undo: a rollback to before the last turn; the undone turn stays on b3.
        undone = await w.call("undo_last_turn", s.id)
        assert undone.fork_checkpoint_id == b3_turns[2].before_checkpoint_id
        assert undone.parent_thread_id == main
        assert texts(await w.call("turns", s.id)) == ["hello", "weather in Paris"]
        assert [f"{m.type}: {m.content}" for m in await w.call("messages", s.id)] == (
            await w.reference(["hello", "weather in Paris"])
        )
        assert texts(await w.call("turns", s.id, thread_id="three")) == [
            "hello",
            "weather in Paris",
            "seventh",
        ]
        # Nothing was lost anywhere: every branch still reads as it did.
        assert texts(await w.call("turns", s.id, thread_id=main)) == texts(main_turns)
        assert texts(await w.call("turns", s.id, thread_id="one")) == [
            "hello",
            "weather in Paris",
            "fourth",
            "fifth",
        ]
        # switch=False makes a branch without changing the current one.
        side = await w.call("branch_from_turn", s.id, 2, thread_id="one", switch=False)
        assert (await w.call("config", s.id)) == cfg(undone.thread_id)
        assert texts(await w.call("turns", s.id, thread_id=side.thread_id)) == ["hello"]


@pytest.mark.parametrize("mode", MODES)
async def test_redoing_the_first_turn(mode: str, db: str) -> None:
    async with open_world(mode, db) as w:
        s = await w.call("create_session", user_id="ada")
        await w.say(await w.call("config", s.id), "hello")
        await w.say(await w.call("config", s.id), "again")
        first = (await w.call("turns", s.id))[0]
        b = await w.call("branch_from_turn", s.id, 1)
        # Turn 1 began the thread: the branch starts at its input checkpoint, with no
        # messages yet; the next input replaces the one pending there.
        assert b.fork_checkpoint_id == first.start_checkpoint_id
        assert await w.call("messages", s.id) == []
        assert await w.call("turns", s.id) == []
        await w.say(b.config, "instead")
        assert await w.transcript(b.config) == await w.reference(["instead"])
        redone = await w.call("turns", s.id)
        assert [(t.number, t.text, t.inherited) for t in redone] == [(1, "instead", False)]
        assert redone[0].before_checkpoint_id == first.start_checkpoint_id


@pytest.mark.parametrize("mode", MODES)
async def test_a_turn_added_by_update_state(mode: str, db: str) -> None:
    async with open_world(mode, db) as w:
        s = await w.call("create_session")
        await w.say(s.config, "hello")
        head = cid(await w.state(s.config))
        if mode == "sync":
            added = w.graph.update_state(s.config, {"messages": [("user", "noted")]})
        else:
            added = await w.graph.aupdate_state(s.config, {"messages": [("user", "noted")]})
        found = await w.call("turns", s.id)
        assert texts(found) == ["hello", "noted"]
        # No input checkpoint: the turn starts at the update that holds the message.
        assert found[1].start_checkpoint_id == added["configurable"]["checkpoint_id"]
        assert found[1].before_checkpoint_id == head == found[0].end_checkpoint_id
        assert [m.content for m in found[1].messages] == ["noted"]
        redo = await w.call("branch_from_turn", s.id, 2)
        assert redo.fork_checkpoint_id == head


@pytest.mark.parametrize("mode", MODES)
async def test_turn_errors(mode: str, db: str) -> None:
    async with open_world(mode, db) as w:
        s = await w.call("create_session", user_id="ada")
        with pytest.raises(TurnNotFoundError, match="no user turn to undo"):
            await w.call("undo_last_turn", s.id)
        await w.say(await w.call("config", s.id), "hello")
        before = dump_tables(db)
        for n in (0, 2, -1):
            with pytest.raises(TurnNotFoundError, match=f"has 1 turns; there is no turn {n}"):
                await w.call("branch_from_turn", s.id, n)
        with pytest.raises(TypeError):
            await w.call("branch_from_turn", s.id, "1")
        with pytest.raises(TurnNotFoundError, match="contains 'bye'"):
            await w.call("branch_from_text", s.id, "bye")
        with pytest.raises(ValueError):
            await w.call("branch_from_text", s.id, "")
        for bad in (5, None, b"hello"):
            with pytest.raises(TypeError, match="branch_from_text needs a str"):
                await w.call("branch_from_text", s.id, bad)
        assert dump_tables(db) == before
        # A graph without a messages list has no turns.
        c = await w.call("create_session", user_id="ada")
        await w.run_counter(await w.call("config", c.id), "x")
        assert await w.call("turns", c.id) == []
        assert await w.call("messages", c.id) == []
        with pytest.raises(TurnNotFoundError):
            await w.call("undo_last_turn", c.id)


# --- 4. ownership ----------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_another_users_session_behaves_like_a_missing_one(mode: str, db: str) -> None:
    async with open_world(mode, db) as w:
        alice = w.manager(user_id="alice")
        bob = w.manager(user_id="bob")
        sa = await w.call("create_session", name="alice chat", mgr=alice)
        assert sa.user_id == "alice"
        await w.say(sa.config, "hello")
        await w.say(sa.config, "weather in Oslo")
        side = await w.call("branch", sa.id, (await w.state(sa.config)), name="side", mgr=alice)
        await w.call("tag", sa.id, side, "t0", mgr=alice)
        sb = await w.call("create_session", name="bob chat", mgr=bob)
        assert sb.user_id == "bob"
        head = cid(await w.state(sa.config))
        first = cid((await w.history(sa.config))[-1])
        missing = str(uuid.uuid4())

        def calls(sid: str) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
            return [
                ("config", (sid,), {}),
                ("branches", (sid,), {}),
                ("get_branch", (sid, "main"), {}),
                ("checkpoints", (sid,), {}),
                ("tags", (sid,), {}),
                ("timeline", (sid,), {}),
                ("turns", (sid,), {}),
                ("messages", (sid,), {"limit": 2}),
                ("deactivate", (sid,), {}),
                ("activate", (sid,), {}),
                ("end_session", (sid,), {"reason": "x"}),
                ("reopen_session", (sid,), {}),
                ("rollback", (sid, head), {}),
                ("branch", (sid, head), {}),
                ("checkout", (sid, "main"), {}),
                ("tag", (sid, head, "t1"), {}),
                ("untag", (sid, "t0"), {}),
                ("delete_branch", (sid, "side"), {}),
                ("branch_from_turn", (sid, 1), {}),
                ("branch_from_text", (sid, "hello"), {}),
                ("undo_last_turn", (sid,), {}),
                ("diff", (first, head), {"session_id": sid}),
                ("delete_session", (sid,), {}),
            ]

        before = dump_tables(db)
        for (method, theirs, kw), (_, absent, absent_kw) in zip(
            calls(sa.id), calls(missing), strict=True
        ):
            seen = await w.outcome(method, *theirs, mgr=bob, **kw)
            expected = await w.outcome(method, *absent, mgr=bob, **absent_kw)
            assert seen is not None and expected is not None, method
            assert seen[0] is expected[0] is SessionNotFoundError, method
            assert seen[1].replace(sa.id, "<id>") == expected[1].replace(missing, "<id>"), method
        assert await w.call("get_session", sa.id, mgr=bob) is None
        assert [x.id for x in await w.call("list_sessions", mgr=bob)] == [sb.id]
        assert [x.id for x in await w.call("list_sessions", user_id="bob", mgr=bob)] == [sb.id]
        assert await w.call("count_sessions", mgr=bob) == 1
        # Asking for another user's sessions is refused, as creating one for them is.
        for method, kw in (
            ("list_sessions", {}),
            ("count_sessions", {}),
            ("export_sessions", {"fileobj": io.StringIO()}),
        ):
            with pytest.raises(SessionScopeError, match=r"scoped to user 'bob'.*user 'alice'"):
                await w.call(method, user_id="alice", mgr=bob, **kw)
        assert await w.call("session_of_thread", sa.current_thread_id, mgr=bob) is None
        assert await w.call("session_of", side.thread_id, mgr=bob) is None
        for text, other in ((sa.id, missing), (sa.id[:8], "0" * 8), ("alice chat", "nobody")):
            seen = await w.outcome("find_session", text, mgr=bob)
            expected = await w.outcome("find_session", other, mgr=bob)
            assert seen is not None and expected is not None
            assert seen[0] is expected[0] is SessionNotFoundError
            assert seen[1].replace(text, "<x>") == expected[1].replace(other, "<x>")
        # A diff outside any session sees only bob's sessions.
        seen = await w.outcome("diff", first, head, mgr=bob)
        expected = await w.outcome("diff", missing, head, mgr=bob)
        assert seen == (CheckpointNotFoundError, f"checkpoint {first!r} does not exist")
        assert expected == (CheckpointNotFoundError, f"checkpoint {missing!r} does not exist")
        seen = await w.outcome("diff", cfg(sa.current_thread_id, head), head, mgr=bob)
        assert seen == (ThreadNotFoundError, f"thread {sa.current_thread_id!r} does not exist")
        # Creating: for bob only, and a taken thread without naming alice's session.
        with pytest.raises(SessionScopeError, match="scoped to user 'bob'"):
            await w.call("create_session", user_id="alice", mgr=bob)
        for method, args in (
            ("create_session", {"thread_id": sa.current_thread_id}),
            ("adopt", {}),
        ):
            if method == "adopt":
                failure = await w.outcome("adopt", sa.current_thread_id, mgr=bob)
            else:
                failure = await w.outcome(method, mgr=bob, **args)
            assert failure is not None and failure[0] is ThreadExistsError
            assert sa.id not in failure[1]
        with pytest.raises(SessionScopeError):
            await w.call("check", mgr=bob)
        assert dump_tables(db) == before  # bob changed nothing
        # Bob's own branch cannot take a thread id of alice's, nor learn her session.
        await w.say(sb.config, "bob here")
        before = dump_tables(db)
        for method in ("rollback", "branch"):
            failure = await w.outcome(
                method, sb.id, await w.state(sb.config), thread_id=side.thread_id, mgr=bob
            )
            assert failure is not None and failure[0] is ThreadExistsError
            assert sa.id not in failure[1]
        assert dump_tables(db) == before

        # Alice sees and does all of it on her own session.
        assert texts(await w.call("turns", sa.id, mgr=alice)) == ["hello", "weather in Oslo"]
        assert (await w.call("find_session", "alice chat", mgr=alice)).id == sa.id
        assert (await w.call("session_of_thread", side.thread_id, mgr=alice)).id == sa.id
        assert await w.call("count_sessions", mgr=alice) == 1
        assert (await w.call("diff", first, head, mgr=alice)).base is not None
        undone = await w.call("undo_last_turn", sa.id, mgr=alice)
        assert undone.session_id == sa.id
        await w.call("delete_session", sa.id, mgr=alice)
        # An unscoped manager sees everyone.
        assert [x.id for x in await w.call("list_sessions")] == [sb.id]
        assert await w.call("count_sessions") == 1


@pytest.mark.parametrize("mode", MODES)
async def test_a_diff_in_a_session_reads_only_that_sessions_threads(mode: str, db: str) -> None:
    """A ref carrying its own thread (a config, with or without a checkpoint id, a
    snapshot, a Branch) is held to the session named: bob cannot read alice's messages
    by pairing her thread with his own session, and an unscoped manager cannot read
    another session's thread through a session either."""
    async with open_world(mode, db) as w:
        alice = w.manager(user_id="alice")
        bob = w.manager(user_id="bob")
        sa = await w.call("create_session", name="alice chat", mgr=alice)
        await w.say(sa.config, "alice secret")
        sb = await w.call("create_session", name="bob chat", mgr=bob)
        await w.say(sb.config, "bob here")
        theirs_thread = sa.current_thread_id
        theirs_state = await w.state(sa.config)
        theirs_branch = (await w.call("branches", sa.id, mgr=alice))[0]
        mine = (await w.call("branches", sb.id, mgr=bob))[0]
        missing = f"no-such-thread-{uuid.uuid4()}"
        refs = [
            (cfg(theirs_thread), theirs_thread),
            (cfg(theirs_thread, cid(theirs_state)), theirs_thread),
            (theirs_state, theirs_thread),
            (theirs_branch, theirs_thread),
        ]
        for manager in (bob, None):
            for ref, thread in refs:
                for a, b in ((ref, mine), (mine, ref)):
                    seen = await w.outcome("diff", a, b, session_id=sb.id, mgr=manager)
                    assert seen == (ThreadNotFoundError, f"thread {thread!r} does not exist")
            absent = await w.outcome("diff", cfg(missing), mine, session_id=sb.id, mgr=manager)
            assert absent == (ThreadNotFoundError, f"thread {missing!r} does not exist")
        # The session's own threads still diff, by every form.
        own = await w.state(sb.config)
        for ref in (cfg(sb.current_thread_id), cfg(sb.current_thread_id, cid(own)), own, mine):
            assert (await w.call("diff", ref, mine, session_id=sb.id, mgr=bob)).is_empty


@pytest.mark.parametrize("mode", MODES)
async def test_sessions_are_listed_page_by_page(mode: str, db: str) -> None:
    """limit/offset pages follow the full listing's order (most recent activity first),
    per user and for a scoped manager too; bad paging arguments change nothing."""
    async with open_world(mode, db) as w:
        made = [await w.call("create_session", user_id=f"u{i % 2}", name=f"s{i}") for i in range(7)]
        await w.say(await w.call("config", made[2].id), "hello")  # activity reorders
        full = [s.id for s in await w.call("list_sessions")]
        assert sorted(full) == sorted(s.id for s in made) and full[0] == made[2].id
        pages = [
            [s.id for s in await w.call("list_sessions", limit=3, offset=offset)]
            for offset in (0, 3, 6, 9)
        ]
        assert [len(p) for p in pages] == [3, 3, 1, 0]
        assert [i for p in pages for i in p] == full
        assert await w.call("list_sessions", limit=0) == []
        mine = [s.id for s in await w.call("list_sessions", user_id="u1")]
        assert [s.id for s in await w.call("list_sessions", user_id="u1", limit=2, offset=1)] == (
            mine[1:3]
        )
        scoped = w.manager(user_id="u0")
        assert [s.id for s in await w.call("list_sessions", limit=2, mgr=scoped)] == [
            i for i in full if i in {s.id for s in made if s.user_id == "u0"}
        ][:2]
        for bad in (
            {"limit": -1},
            {"limit": 1.5},
            {"limit": True},
            {"offset": -2},
            {"offset": None},
        ):
            with pytest.raises(ValueError, match=r"^(limit|offset) must be"):
                await w.call("list_sessions", **bad)


def test_scope_arguments_are_checked(tmp_path: Any) -> None:
    with AgentGitSaver.from_conn_string(str(tmp_path / "x.db")) as saver:
        bad_ids = {
            "": "must not be empty",
            "  ": "must not be empty",
            " ada": "must not start or end with whitespace",
            "a\x00b": "control characters",
            "ada\u202e": "bidirectional overrides",
            "al\u200bice": "bidirectional overrides",  # zero-width: looks like alice
            "ada\u2028x": "bidirectional overrides",  # a line separator
            "x" * 257: "at most 256 characters, not 257",
        }
        mgr = SessionManager(saver)
        for bad, problem in bad_ids.items():
            with pytest.raises(ValueError, match=problem):
                SessionManager(saver, user_id=bad)
            with pytest.raises(ValueError, match=problem):
                mgr.create_session(user_id=bad)
            with pytest.raises(ValueError, match=problem):
                mgr.list_sessions(user_id=bad)
            with pytest.raises(ValueError, match=problem):
                mgr.count_sessions(user_id=bad)
        with pytest.raises(TypeError, match="a user id must be a string or None, not int"):
            SessionManager(saver, user_id=3)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="not int"):
            mgr.create_session(user_id=3)  # type: ignore[arg-type]
        assert mgr.count_sessions() == 0
        assert mgr.create_session(user_id="x" * 256).user_id == "x" * 256
        for limit in (0, -1, True, 1.5):
            with pytest.raises(ValueError, match="max_sessions_per_user"):
                SessionManager(saver, max_sessions_per_user=limit)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="on_limit"):
            SessionManager(saver, max_sessions_per_user=1, on_limit="evict")


# --- limits ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_session_limit_refuses(mode: str, db: str) -> None:
    async with open_world(mode, db) as w:
        mgr = w.manager(max_sessions_per_user=2)
        a1 = await w.call("create_session", user_id="alice", name="a1", mgr=mgr)
        a2 = await w.call("create_session", user_id="alice", name="a2", mgr=mgr)
        await w.call("create_session", user_id="bob", mgr=mgr)  # another user's room
        before = dump_tables(db)
        with pytest.raises(SessionLimitError, match=r"user 'alice' already has 2 open sessions"):
            await w.call("create_session", user_id="alice", name="a3", mgr=mgr)
        plain = cfg("plain-thread")
        await w.say(plain, "hello")
        before = dump_tables(db)
        with pytest.raises(SessionLimitError):
            await w.call("adopt", "plain-thread", user_id="alice", mgr=mgr)
        assert dump_tables(db) == before
        assert await w.call("count_sessions", user_id="alice") == 2
        # An ended session does not count; reopening it needs room again.
        await w.call("end_session", a1.id, reason="done", mgr=mgr)
        assert await w.call("count_sessions", user_id="alice") == 2
        assert await w.call("count_sessions", user_id="alice", open_only=True) == 1
        a3 = await w.call("create_session", user_id="alice", name="a3", mgr=mgr)
        with pytest.raises(SessionLimitError):
            await w.call("reopen_session", a1.id, mgr=mgr)
        assert (await w.call("get_session", a1.id)).is_ended
        await w.call("delete_session", a3.id, mgr=mgr)
        assert not (await w.call("reopen_session", a1.id, mgr=mgr)).is_ended
        assert {x.id for x in await w.call("list_sessions", user_id="alice")} == {a1.id, a2.id}
        # Sessions without a user count as one group.
        for _ in range(2):
            await w.call("create_session", mgr=mgr)
        with pytest.raises(SessionLimitError, match="sessions without a user"):
            await w.call("create_session", mgr=mgr)


@pytest.mark.parametrize("mode", MODES)
async def test_session_limit_retires_the_oldest(mode: str, db: str) -> None:
    async with open_world(mode, db) as w:
        mgr = w.manager(max_sessions_per_user=2, on_limit="retire_oldest")
        s1 = await w.call("create_session", user_id="alice", name="s1", mgr=mgr)
        s2 = await w.call("create_session", user_id="alice", name="s2", mgr=mgr)
        await w.say(s1.config, "hello")  # s1 is now the more recently active
        await w.call("deactivate", s1.id)  # ...but inactive: it goes first
        s3 = await w.call("create_session", user_id="alice", name="s3", mgr=mgr)
        retired = await w.call("get_session", s1.id)
        assert (retired.is_ended, retired.end_reason, retired.is_active) == (True, "retired", False)
        assert not (await w.call("get_session", s2.id)).is_ended
        # Then the least recently active of the open ones.
        await w.say(s3.config, "hello")
        s4 = await w.call("create_session", user_id="alice", name="s4", mgr=mgr)
        assert (await w.call("get_session", s2.id)).end_reason == "retired"
        assert not (await w.call("get_session", s3.id)).is_ended
        assert await w.call("count_sessions", user_id="alice", open_only=True) == 2
        assert await w.call("count_sessions", user_id="alice") == 4
        # Retired sessions keep working: nothing was deleted.
        assert await w.transcript(s1.config) == await w.reference(["hello"])
        # Reopening retires another one to make room.
        await w.call("reopen_session", s1.id, mgr=mgr)
        open_now = {x.id for x in await w.call("list_sessions", user_id="alice") if not x.is_ended}
        assert s1.id in open_now and len(open_now) == 2
        assert s4.id in open_now or s3.id in open_now


@pytest.mark.parametrize("on_limit", ["refuse", "retire_oldest"])
def test_concurrent_creates_never_exceed_the_limit(on_limit: str, db: str) -> None:
    """Threads, each with its own saver (its own connections), create sessions for one
    user at once; the limit holds on both engines."""
    with AgentGitSaver.from_conn_string(db):
        pass  # the schema exists before the threads start
    workers, attempts, limit = 6, 3, 3
    barrier = threading.Barrier(workers)
    created: list[str] = []
    refused: list[BaseException] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def work() -> None:
        try:
            with AgentGitSaver.from_conn_string(db) as saver:
                mgr = SessionManager(saver, max_sessions_per_user=limit, on_limit=on_limit)
                barrier.wait()
                for _ in range(attempts):
                    try:
                        s = mgr.create_session(user_id="alice")
                    except SessionLimitError as exc:
                        with lock:
                            refused.append(exc)
                    else:
                        with lock:
                            created.append(s.id)
        except BaseException as exc:  # reported below
            with lock:
                failures.append(exc)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    open_rows = sql_rows(
        db,
        "SELECT count(*) FROM agentgit_sessions WHERE user_id = ? AND ended_at IS NULL",
        ("alice",),
    )
    all_rows = sql_rows(db, "SELECT count(*) FROM agentgit_sessions WHERE user_id = ?", ("alice",))
    if on_limit == "refuse":
        assert len(created) == limit
        assert len(refused) == workers * attempts - limit
        assert all_rows[0][0] == limit
    else:
        assert refused == []
        assert len(created) == all_rows[0][0] == workers * attempts
    assert open_rows[0][0] == limit


# --- 5. titles and lifecycle -----------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_names_are_sanitized_and_numbered(mode: str, db: str) -> None:
    async with open_world(mode, db) as w:
        s = await w.call("create_session", name="  sup\x1bport\n\tchat\u202e ")
        assert s.name == "support chat"
        assert (await w.call("create_session", name="x" * 500)).name == "x" * 200
        assert (await w.call("create_session")).name == ""
        before = dump_tables(db)
        with pytest.raises(InvalidSessionNameError, match="empty once its control characters"):
            await w.call("create_session", name="\x07\x1b\n")
        with pytest.raises(TypeError):
            await w.call("create_session", name=5)
        assert dump_tables(db) == before

        unique = w.manager(unique_names=True)
        names = [
            (await w.call("create_session", user_id="ada", name="support", mgr=unique)).name
            for _ in range(3)
        ]
        assert names == ["support", "support #2", "support #3"]
        again = await w.call("create_session", user_id="ada", name="support #2", mgr=unique)
        assert again.name == "support #4"
        other = await w.call("create_session", user_id="grace", name="support", mgr=unique)
        assert other.name == "support"  # unique per user
        assert (await w.call("create_session", user_id="ada", name="", mgr=unique)).name == ""
        # Without unique_names a name may repeat.
        assert (await w.call("create_session", user_id="ada", name="support")).name == "support"


@pytest.mark.parametrize("mode", MODES)
async def test_find_session(mode: str, db: str) -> None:
    async with open_world(mode, db) as w:
        a = await w.call("create_session", user_id="ada", name="billing")
        b = await w.call("create_session", user_id="ada", name="refund")
        await w.call("create_session", user_id="ada", name="twice")
        await w.call("create_session", user_id="ada", name="twice")
        assert (await w.call("find_session", "billing")).id == a.id
        assert (await w.call("find_session", b.id)).id == b.id
        assert (await w.call("find_session", b.id[:13])).id == b.id
        with pytest.raises(AmbiguousSessionError, match="'twice' matches 2 sessions"):
            await w.call("find_session", "twice")
        # A name that is also the prefix of another session's id is ambiguous too.
        c = await w.call("create_session", user_id="ada", name=a.id[:6])
        with pytest.raises(AmbiguousSessionError) as caught:
            await w.call("find_session", a.id[:6])
        assert a.id in str(caught.value) and c.id in str(caught.value)
        with pytest.raises(SessionNotFoundError, match="no session is named 'nothing'"):
            await w.call("find_session", "nothing")
        with pytest.raises(ValueError):
            await w.call("find_session", "")


@pytest.mark.parametrize("mode", MODES)
async def test_end_reopen_and_session_of_thread(mode: str, db: str) -> None:
    async with open_world(mode, db) as w:
        s = await w.call("create_session", user_id="ada", name="life")
        await w.say(s.config, "hello")
        b = await w.call("rollback", s.id, await w.state(s.config))
        ended = await w.call("end_session", s.id, reason="resolved")
        assert ended.is_ended and ended.end_reason == "resolved" and not ended.is_active
        assert ended.ended_at is not None
        assert await w.call("get_session", s.id) == ended
        assert s.id not in [x.id for x in await w.call("list_sessions", active_only=True)]
        # Ended sessions still work.
        await w.say(b.config, "after the end")
        reopened = await w.call("reopen_session", s.id)
        assert (reopened.ended_at, reopened.end_reason, reopened.is_active) == (None, None, True)
        assert (await w.call("reopen_session", s.id)).ended_at is None  # already open
        for thread in (s.current_thread_id, b.thread_id):
            assert (await w.call("session_of_thread", thread)).id == s.id
        assert await w.call("session_of_thread", "no-such-thread") is None
        await w.say(cfg("plain"), "hi")
        assert await w.call("session_of_thread", "plain") is None
        with pytest.raises(SessionNotFoundError):
            await w.call("end_session", str(uuid.uuid4()))
        # A reason is a note, not a document: an over-long one changes nothing.
        before = dump_tables(db)
        with pytest.raises(ValueError, match="at most 1000 characters, not 1001"):
            await w.call("end_session", s.id, reason="x" * 1001)
        assert dump_tables(db) == before


# --- 6. events -------------------------------------------------------------------------------


def _current_in_db(db: str, session_id: str) -> str | None:
    """The current thread as another connection sees it (only committed data)."""
    rows = sql_rows(
        db, "SELECT current_thread_id FROM agentgit_sessions WHERE id = ?", (session_id,)
    )
    return rows[0][0] if rows else None


@pytest.mark.parametrize("mode", MODES)
async def test_events_after_commit(mode: str, db: str) -> None:
    async with open_world(mode, db) as w:
        seen: list[SessionEvent] = []
        committed: list[Any] = []

        def record(event: SessionEvent) -> None:
            seen.append(event)
            # Another connection already sees what the change wrote.
            committed.append(_current_in_db(db, event.session_id))

        for kind in ("create", "branch", "rollback", "checkout", "tag", "delete"):
            w.mgr.on(kind, record)

        s = await w.call("create_session", user_id="ada", name="events")
        main = s.current_thread_id
        assert seen[-1] == SessionEvent("create", s.id, "ada", thread_id=main, name="events")
        assert committed[-1] == main
        await w.say(s.config, "hello")
        await w.say(s.config, "again")
        head = cid(await w.state(s.config))

        await w.call("tag", s.id, head, "here")
        assert seen[-1] == SessionEvent(
            "tag", s.id, "ada", source_thread_id=main, checkpoint_id=head, name="here"
        )
        side = await w.call("branch", s.id, "here", name="side")
        assert seen[-1] == SessionEvent("branch", s.id, "ada", main, side.thread_id, head, "side")
        back = await w.call("rollback", s.id, head)
        assert seen[-1] == SessionEvent(
            "rollback", s.id, "ada", main, back.thread_id, head, back.name
        )
        assert committed[-1] == back.thread_id
        await w.call("checkout", s.id, "side")
        assert seen[-1] == SessionEvent(
            "checkout", s.id, "ada", back.thread_id, side.thread_id, None, "side"
        )
        assert committed[-1] == side.thread_id
        undone = await w.call("undo_last_turn", s.id)
        # The last turn on "side" is "again", inherited from main: the branch before it
        # hangs off main, which wrote its fork point.
        assert (seen[-1].kind, seen[-1].source_thread_id, seen[-1].thread_id) == (
            "rollback",
            main,
            undone.thread_id,
        )
        assert seen[-1].checkpoint_id == undone.fork_checkpoint_id
        quiet = await w.call("branch_from_turn", s.id, 1, thread_id=main, switch=False)
        assert (seen[-1].kind, seen[-1].thread_id) == ("branch", quiet.thread_id)
        await w.call("delete_branch", s.id, quiet.thread_id)
        assert seen[-1] == SessionEvent(
            "delete",
            s.id,
            "ada",
            quiet.thread_id,
            undone.thread_id,
            quiet.fork_checkpoint_id,
            quiet.name,
        )

        # A failed change emits nothing.
        count = len(seen)
        with pytest.raises(CheckpointNotFoundError):
            await w.call("rollback", s.id, str(uuid.uuid4()))
        with pytest.raises(TurnNotFoundError):
            await w.call("branch_from_turn", s.id, 9)
        assert len(seen) == count

        threads = (await w.call("get_session", s.id)).internal_session_ids
        await w.call("delete_session", s.id)
        assert seen[-1] == SessionEvent("delete", s.id, "ada", name="events", thread_ids=threads)
        assert committed[-1] is None  # gone when the callback ran


@pytest.mark.parametrize("mode", MODES)
async def test_a_raising_callback_does_not_undo_the_change(
    mode: str, db: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_world(mode, db) as w:
        after: list[str] = []

        def explode(event: SessionEvent) -> None:
            raise RuntimeError("listener bug")

        w.mgr.on("branch", explode)
        remove = w.mgr.on("branch", lambda e: after.append(str(e.thread_id)))
        s = await w.call("create_session")
        await w.say(s.config, "hello")
        with caplog.at_level(logging.ERROR, logger="langgraph_agentgit.sessions"):
            b = await w.call("branch", s.id, await w.state(s.config))
        assert after == [b.thread_id]  # the next callback still ran
        assert [x.thread_id for x in await w.call("branches", s.id)][-1] == b.thread_id
        assert sql_rows(
            db,
            "SELECT session_id FROM agentgit_session_threads WHERE thread_id = ?",
            (b.thread_id,),
        ) == [(s.id,)]
        errors = [r for r in caplog.records if r.name == "langgraph_agentgit.sessions"]
        assert len(errors) == 1 and errors[0].exc_info is not None
        assert "the change was committed" in errors[0].getMessage()
        remove()
        await w.call("branch", s.id, await w.state(s.config))
        assert len(after) == 1
        with pytest.raises(ValueError, match="unknown session event"):
            w.mgr.on("fork", print)
        with pytest.raises(TypeError):
            w.mgr.on("branch", "not callable")  # type: ignore[arg-type]


async def test_async_callbacks(db: str, caplog: pytest.LogCaptureFixture) -> None:
    got: list[str] = []

    async def hook(event: SessionEvent) -> None:
        await asyncio.sleep(0)
        got.append(event.kind)

    async with AsyncAgentGitSaver.from_conn_string(db) as saver:
        mgr = SessionManager(saver)
        mgr.on("create", hook)
        await mgr.acreate_session()
        assert got == ["create"]  # awaited by the async twin
    with AgentGitSaver.from_conn_string(db) as sync_saver:
        mgr = SessionManager(sync_saver)
        mgr.on("create", hook)
        with caplog.at_level(logging.ERROR, logger="langgraph_agentgit.sessions"):
            mgr.create_session()
        assert got == ["create"]  # the sync method cannot await it: logged, not run
        assert any("is async" in r.getMessage() for r in caplog.records)


# --- the commands ----------------------------------------------------------------------------

runner = CliRunner()


def _cli(db: str, *args: str) -> Any:
    return runner.invoke(app, [*args, "--db", db])


def test_cli_turns_undo_end_reopen(db: str) -> None:
    with AgentGitSaver.from_conn_string(db) as saver:
        w = World("sync", saver)
        s = w.mgr.create_session(user_id="ada", name="cli")
        for text in ["hello", "weather in Rome"]:
            w.graph.invoke({"messages": [("user", text)]}, s.config)
        expected = w.mgr.turns(s.id)

    result = _cli(db, "turns", s.id[:8], "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert [t["number"] for t in data] == [1, 2]
    assert [t["user_message"] for t in data] == ["hello", "weather in Rome"]
    assert [t["start_checkpoint_id"] for t in data] == [t.start_checkpoint_id for t in expected]
    assert [t["end_checkpoint_id"] for t in data] == [t.end_checkpoint_id for t in expected]
    assert data[1]["tool_calls"][0]["name"] == "get_weather"
    assert data[1]["tool_calls"][0]["args"] == {"city": "Rome"}
    assert data[1]["usage"] == {"input_tokens": 8, "output_tokens": 4, "total_tokens": 12}
    table = _cli(db, "turns", s.id)
    assert table.exit_code == 0 and "weather in Rome" in table.stdout

    undone = _cli(db, "undo", s.id, "--name", "retry", "--json")
    assert undone.exit_code == 0, undone.output
    branch = json.loads(undone.stdout)
    assert branch["name"] == "retry" and branch["is_current"]
    assert branch["fork_checkpoint_id"] == expected[1].before_checkpoint_id
    after = json.loads(_cli(db, "turns", s.id, "--json").stdout)
    assert [t["user_message"] for t in after] == ["hello"] and after[0]["inherited"]
    on_main = json.loads(_cli(db, "turns", s.id, "--branch", "main", "--json").stdout)
    assert len(on_main) == 2

    ended = _cli(db, "end", s.id, "--reason", "done", "--json")
    assert ended.exit_code == 0, ended.output
    assert json.loads(ended.stdout)["end_reason"] == "done"
    listed = json.loads(_cli(db, "sessions", "--json").stdout)
    assert listed[0]["ended_at"] is not None and listed[0]["end_reason"] == "done"
    reopened = json.loads(_cli(db, "reopen", s.id, "--json").stdout)
    assert (reopened["ended_at"], reopened["end_reason"], reopened["is_active"]) == (
        None,
        None,
        True,
    )

    with AgentGitSaver.from_conn_string(db) as saver:
        empty = SessionManager(saver).create_session(name="empty")
    failed = _cli(db, "undo", empty.id)
    assert failed.exit_code == 2
    assert "no user turn to undo" in failed.stderr and "Traceback" not in failed.output
    none = _cli(db, "turns", empty.id)
    assert none.exit_code == 0 and "has no user turns" in none.stdout
