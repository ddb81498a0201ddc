"""Both savers under real compiled graphs, on a real SQLite file, compared with LangGraph's
own ``InMemorySaver`` running the very same graph and inputs."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from conftest import (
    Driver,
    cfg,
    checkpoint_id_of,
    drive,
    reference,
    saver_get_tuple,
    saver_list,
    snapshot_view,
    thread_view,
    tuple_view,
)
from graphs import (
    build_agent_graph,
    build_chat_graph,
    build_delta_graph,
    build_edit_graph,
    build_interrupt_graph,
    build_subgraph_graph,
    comparable,
)
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.base import BaseCheckpointSaver, empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from langgraph_agentgit import AgentGitSaver, AsyncAgentGitSaver
from langgraph_agentgit.saver_base import AgentGitSaverBase


@pytest.fixture
def db_path(any_db: str) -> str:
    """Every test here runs on both engines: a SQLite file, then a Postgres schema."""
    return any_db


# --- interrupts ---------------------------------------------------------------------------------


async def interrupt_scenario(d: Driver, thread: str) -> dict[str, Any]:
    c = cfg(thread)
    first = await d.invoke({"steps": []}, c)
    paused = await d.get_state(c)
    done = await d.invoke(Command(resume="yes"), c)
    final = await d.get_state(c)
    return {
        "first": comparable(first),
        "paused": snapshot_view(paused),
        "done": comparable(done),
        "final": snapshot_view(final),
        "history": [snapshot_view(s) for s in await d.history(c)],
    }


async def test_interrupt_then_resume_with_command(saver: AgentGitSaverBase) -> None:
    """``interrupt()`` pauses the run, the pause survives in the database, and
    ``Command(resume=...)`` finishes it exactly as on InMemorySaver."""
    got = await interrupt_scenario(drive(build_interrupt_graph(), saver), "t")

    assert got["paused"]["next"] == ("review",)
    assert got["paused"]["interrupts"] == [{"question": "approve?", "seen": ["draft"]}]
    assert got["done"] == {"steps": ["draft", "review:yes", "finish"], "answer": "yes"}
    assert got["final"]["next"] == ()
    assert got == await interrupt_scenario(reference(build_interrupt_graph()), "t")


# --- a tool-calling agent ------------------------------------------------------------------------


async def test_tool_calling_agent_matches_inmemory(saver: AgentGitSaverBase) -> None:
    """A model that calls a tool through LangGraph's ``ToolNode``, over several turns:
    every state in the history equals InMemorySaver's."""

    async def scenario(d: Driver) -> list[dict[str, Any]]:
        for text in ("2 and 3", "40 and 2", "-1 and 1"):
            await d.invoke({"messages": [HumanMessage(text, id=f"h-{text}")]}, cfg("t"))
        return [snapshot_view(s) for s in await d.history(cfg("t"))]

    got = await scenario(drive(build_agent_graph(), saver))

    final = [m["content"] for m in got[0]["values"]["messages"]]
    assert final[-1] == "the sum is 0"
    assert [m for m in final if m.startswith("the sum")] == [
        "the sum is 5",
        "the sum is 42",
        "the sum is 0",
    ]
    assert len(got) == 3 * 5  # input, agent, tools, agent, end per turn
    assert got == await scenario(reference(build_agent_graph()))


# --- subgraphs ----------------------------------------------------------------------------------


async def test_subgraph_state_and_resume_inside_subgraph(saver: AgentGitSaverBase) -> None:
    """The subgraph's own checkpoints are stored under its namespace; ``get_state(...,
    subgraphs=True)`` shows the paused subgraph, and resuming finishes both graphs."""

    async def scenario(d: Driver) -> dict[str, Any]:
        c = cfg("t")
        await d.invoke({"log": []}, c)
        state = await d.get_state(c, subgraphs=True)
        (task,) = state.tasks
        assert task.state is not None and not isinstance(task.state, dict)
        sub_state = task.state
        # The subgraph's state also reads back through its own namespaced config.
        direct = await d.get_state(sub_state.config)
        done = await d.invoke(Command(resume="ok"), c)
        return {
            "parent": snapshot_view(state),
            "sub": snapshot_view(sub_state),
            "sub_ns": sub_state.config["configurable"]["checkpoint_ns"].split(":")[0],
            "direct": snapshot_view(direct),
            "done": comparable(done),
            "history": [snapshot_view(s) for s in await d.history(c)],
        }

    got = await scenario(drive(build_subgraph_graph(), saver))

    assert got["parent"]["next"] == ("sub",)
    assert got["sub"]["values"] == {"log": ["prepare", "inner1"]}
    assert got["sub"]["next"] == ("ask",)
    assert got["sub"]["interrupts"] == [{"inner_log": ["prepare", "inner1"]}]
    assert got["sub_ns"] == "sub"
    assert got["direct"]["values"] == got["sub"]["values"]
    assert got["direct"]["next"] == ("ask",)
    assert got["done"] == {"log": ["prepare", "inner1", "ask:ok", "inner2", "done"]}
    assert got == await scenario(reference(build_subgraph_graph()))

    # The saver really holds child-namespace checkpoints, listed only under their namespace.
    everything = await saver_list(saver, cfg("t"))
    child = [t for t in everything if t.config["configurable"]["checkpoint_ns"] != ""]
    assert child, "the subgraph wrote no checkpoints of its own"
    ns = child[0].config["configurable"]["checkpoint_ns"]
    only_ns = await saver_list(saver, cfg("t", ns=ns))
    assert {checkpoint_id_of(t.config) for t in only_ns} == {
        checkpoint_id_of(t.config) for t in child if t.config["configurable"]["checkpoint_ns"] == ns
    }
    root_only = await saver_list(saver, cfg("t", ns=""))
    assert all(t.config["configurable"]["checkpoint_ns"] == "" for t in root_only)
    assert len(root_only) + len(child) == len(everything)


# --- update_state and replay ---------------------------------------------------------------------


def human(text: str) -> HumanMessage:
    return HumanMessage(content=text, id=f"h-{text}")


async def time_travel_scenario(d: Driver) -> dict[str, Any]:
    """Three turns, then a replay from before the second answer, then an edit of the
    state after the first turn (an in-thread fork) continued with a new message."""
    c = cfg("t")
    for text in ("one", "two", "three"):
        await d.invoke({"messages": [human(text)]}, c)
    history = await d.history(c)
    before_two = next(
        s for s in history if s.next == ("chat",) and s.values["messages"][-1].content == "two"
    )
    replayed = await d.invoke(None, before_two.config)
    after_one = next(s for s in history if s.next == () and len(s.values["messages"]) == 2)
    edited = await d.update_state(after_one.config, {"messages": [human("edited")]})
    edited_state = await d.get_state(edited)
    continued = await d.invoke({"messages": [human("four")]}, edited)
    return {
        "replayed": comparable(replayed),
        "edited": snapshot_view(edited_state),
        "edited_parent_is_after_one": checkpoint_id_of(edited_state.parent_config)
        == checkpoint_id_of(after_one.config),
        "continued": comparable(continued),
        "latest": snapshot_view(await d.get_state(c)),
        "history": [snapshot_view(s) for s in await d.history(c)],
    }


async def test_update_state_fork_and_replay_match_inmemory(saver: AgentGitSaverBase) -> None:
    """``update_state`` on an old checkpoint and ``invoke(None, old_config)`` give the same
    values, next nodes and history as LangGraph's InMemorySaver."""
    got = await time_travel_scenario(drive(build_chat_graph(), saver))

    texts = [m["content"] for m in got["replayed"]["messages"]]
    assert texts == ["one", "echo 1: one", "two", "echo 3: two"]
    assert got["edited_parent_is_after_one"]
    assert [m["content"] for m in got["edited"]["values"]["messages"]] == [
        "one",
        "echo 1: one",
        "edited",
    ]
    assert [m["content"] for m in got["continued"]["messages"]] == [
        "one",
        "echo 1: one",
        "edited",
        "four",
        "echo 4: four",
    ]
    assert got["latest"]["values"] == got["continued"]
    assert got == await time_travel_scenario(reference(build_chat_graph()))


# --- DeltaChannel -------------------------------------------------------------------------------


def history_view(history: Any) -> dict[str, Any]:
    """A DeltaChannelHistory mapping with the seed's type kept (``_DeltaSnapshot`` is a
    NamedTuple, so it would compare equal to a plain 1-tuple)."""
    out: dict[str, Any] = {}
    for channel, entry in history.items():
        view: dict[str, Any] = {"writes": [tuple(w) for w in entry["writes"]]}
        if "seed" in entry:
            view["seed"] = (type(entry["seed"]).__name__, entry["seed"])
        out[channel] = view
    return out


async def delta_scenario(d: Driver) -> list[dict[str, Any]]:
    c = cfg("t")
    await d.invoke({"target": 9}, c)
    await d.update_state(c, {"items": ["manual"]})
    await d.invoke({"target": 15}, c)
    return [snapshot_view(s) for s in await d.history(c)]


async def test_delta_channel_state_and_history_match(saver: AgentGitSaverBase) -> None:
    """A ``DeltaChannel`` list rebuilt from the saver's ancestor writes equals
    InMemorySaver's at every checkpoint, and the saver's ``get_delta_channel_history``
    override returns what the base-class default walk computes from ``get_tuple``."""
    got = await delta_scenario(drive(build_delta_graph(), saver))

    expected_items = [f"item-{i}" for i in range(1, 10)] + ["manual"]
    expected_items += [f"item-{i}" for i in range(10, 16)]
    assert got[0]["values"]["items"] == expected_items
    assert got == await delta_scenario(reference(build_delta_graph()))

    tuples = await saver_list(saver, cfg("t"))
    # Most checkpoints store no value for the channel: the state really is rebuilt from
    # history, so the comparison above exercises get_delta_channel_history.
    without_value = [t for t in tuples if "items" not in t.checkpoint["channel_values"]]
    assert len(without_value) > len(tuples) // 2
    assert any("items" in t.checkpoint["channel_values"] for t in tuples)

    channels = ["items", "rounds"]
    for t in tuples:
        if isinstance(saver, AsyncAgentGitSaver):
            mine = await saver.aget_delta_channel_history(config=t.config, channels=channels)
            default = await BaseCheckpointSaver.aget_delta_channel_history(
                saver, config=t.config, channels=channels
            )
            mine_sync = await asyncio.to_thread(
                saver.get_delta_channel_history, config=t.config, channels=channels
            )
            assert history_view(mine_sync) == history_view(mine)
        else:
            mine = saver.get_delta_channel_history(config=t.config, channels=channels)
            default = BaseCheckpointSaver.get_delta_channel_history(
                saver, config=t.config, channels=channels
            )
        assert history_view(mine) == history_view(default), t.config


# --- one saver, both APIs ---------------------------------------------------------------------


async def test_sync_saver_serves_invoke_and_ainvoke_on_one_thread(
    sync_saver: AgentGitSaver,
) -> None:
    """One AgentGitSaver instance backs ``graph.invoke`` and ``await graph.ainvoke``
    alternately on the same thread; the result is one consistent history."""
    graph = build_chat_graph().compile(checkpointer=sync_saver)
    c = cfg("t")
    graph.invoke({"messages": [human("one")]}, c)
    await graph.ainvoke({"messages": [human("two")]}, c)
    graph.invoke({"messages": [human("three")]}, c)
    result = await graph.ainvoke({"messages": [human("four")]}, c)

    ref = reference(build_chat_graph())
    for text in ("one", "two", "three", "four"):
        expected = await ref.invoke({"messages": [human(text)]}, c)
    assert result == expected  # message ids are deterministic here, so compare exactly
    sync_state = graph.get_state(c)
    async_state = await graph.aget_state(c)
    assert sync_state.values == async_state.values == expected
    sync_history = [snapshot_view(s) for s in graph.get_state_history(c)]
    async_history = [snapshot_view(s) async for s in graph.aget_state_history(c)]
    assert sync_history == async_history == [snapshot_view(s) for s in await ref.history(c)]


async def test_async_saver_sync_methods_from_worker_thread(
    async_saver: AsyncAgentGitSaver,
) -> None:
    """The async saver's sync methods work from another thread (they hand the work to the
    loop), and on the loop's own thread they raise instead of deadlocking."""
    graph = build_chat_graph().compile(checkpointer=async_saver)
    c = cfg("t")
    await graph.ainvoke({"messages": [human("one")]}, c)

    from_thread = await asyncio.to_thread(async_saver.get_tuple, c)
    from_loop = await async_saver.aget_tuple(c)
    assert from_thread is not None and from_loop is not None
    assert tuple_view(from_thread) == tuple_view(from_loop)
    listed = await asyncio.to_thread(lambda: list(async_saver.list(c)))
    assert [tuple_view(t) for t in listed] == [
        tuple_view(t) for t in await saver_list(async_saver, c)
    ]
    # Even a whole sync graph run works from a worker thread.
    result = await asyncio.to_thread(graph.invoke, {"messages": [human("two")]}, c)
    assert [m.content for m in result["messages"]] == ["one", "echo 1: one", "two", "echo 3: two"]

    with pytest.raises(asyncio.InvalidStateError, match=r"event loop.*async methods"):
        async_saver.get_tuple(c)
    with pytest.raises(asyncio.InvalidStateError, match="another thread"):
        async_saver.put(c, empty_checkpoint(), {}, {})
    # The refused calls changed nothing and left the saver usable.
    after = await async_saver.aget_tuple(c)
    assert after is not None
    assert [m.content for m in after.checkpoint["channel_values"]["messages"]][-1] == "echo 3: two"


# --- list() -------------------------------------------------------------------------------------


async def test_list_filter_before_limit_on_real_history(saver: AgentGitSaverBase) -> None:
    """``list`` with ``filter``, ``before`` and ``limit`` returns exactly the matching slice
    of the full, newest-first history."""
    d = drive(build_chat_graph(), saver)
    for turn, text in enumerate(("one", "two", "three"), start=1):
        config = {**cfg("t"), "metadata": {"turn": turn}}
        await d.invoke({"messages": [human(text)]}, config)
    await d.invoke({"messages": [human("other")]}, {**cfg("u"), "metadata": {"turn": 2}})

    full = await saver_list(saver, cfg("t"))
    ids = [checkpoint_id_of(t.config) for t in full]
    assert len(full) == 9  # three checkpoints per turn: input, chat, end
    assert ids == sorted(ids, reverse=True)
    assert all(t.config["configurable"]["thread_id"] == "t" for t in full)

    async def ids_of(config: Any, **kwargs: Any) -> list[str | None]:
        return [checkpoint_id_of(t.config) for t in await saver_list(saver, config, **kwargs)]

    def expect(pred: Any, items: list[Any] = full) -> list[str | None]:
        return [checkpoint_id_of(t.config) for t in items if pred(t)]

    inputs = await ids_of(cfg("t"), filter={"source": "input"})
    assert inputs == expect(lambda t: t.metadata["source"] == "input")
    assert len(inputs) == 3
    assert await ids_of(cfg("t"), filter={"turn": 2, "source": "loop"}) == expect(
        lambda t: t.metadata.get("turn") == 2 and t.metadata["source"] == "loop"
    )
    assert await ids_of(cfg("t"), filter={"turn": 7}) == []
    assert await ids_of(cfg("t"), before=full[3].config) == ids[4:]
    assert await ids_of(cfg("t"), limit=2) == ids[:2]
    assert await ids_of(cfg("t"), before=full[2].config, limit=3) == ids[3:6]
    assert (
        await ids_of(cfg("t"), filter={"source": "loop"}, before=full[0].config, limit=2)
        == (expect(lambda t: t.metadata["source"] == "loop", full[1:])[:2])
    )
    # Across threads (config None): the filter applies to every thread.
    everywhere = await saver_list(saver, None, filter={"turn": 2})
    assert {t.config["configurable"]["thread_id"] for t in everywhere} == {"t", "u"}
    assert all(t.metadata["turn"] == 2 for t in everywhere)
    assert len(everywhere) == 6


# --- errors and absences -------------------------------------------------------------------------


async def test_config_without_thread_id_is_a_value_error(saver: AgentGitSaverBase) -> None:
    """Every entry point names the missing ``thread_id`` instead of guessing a thread."""
    no_thread: Any = {"configurable": {"checkpoint_ns": ""}}
    with_id: Any = {"configurable": {"checkpoint_id": "x"}}
    if isinstance(saver, AsyncAgentGitSaver):
        calls: list[Any] = [
            lambda: saver.aget_tuple(no_thread),
            lambda: saver_list(saver, no_thread),
            lambda: saver.aput(no_thread, empty_checkpoint(), {}, {}),
            lambda: saver.aput_writes(with_id, [("a", 1)], "task"),
        ]
    else:

        async def wrap(fn: Any) -> Any:
            return fn()

        calls = [
            lambda: wrap(lambda: saver.get_tuple(no_thread)),
            lambda: wrap(lambda: list(saver.list(no_thread))),
            lambda: wrap(lambda: saver.put(no_thread, empty_checkpoint(), {}, {})),
            lambda: wrap(lambda: saver.put_writes(with_id, [("a", 1)], "task")),
        ]
    for call in calls:
        with pytest.raises(ValueError, match="thread_id"):
            await call()
    assert await saver_list(saver, None) == []  # nothing was written by the failed calls


async def test_missing_thread_or_checkpoint_reads_as_none(saver: AgentGitSaverBase) -> None:
    d = drive(build_chat_graph(), saver)
    await d.invoke({"messages": [human("one")]}, cfg("t"))

    assert await saver_get_tuple(saver, cfg("nope")) is None
    missing_id = "1ef00000-0000-6000-8000-000000000000"
    assert await saver_get_tuple(saver, cfg("t", missing_id)) is None
    assert await saver_list(saver, cfg("nope")) == []
    assert await saver_list(saver, cfg("t", missing_id)) == []
    assert await saver_get_tuple(saver, cfg("t")) is not None


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_reopening_the_file_gives_identical_history(db_path: str, kind: str) -> None:
    """Closing and reopening the database yields the same values, metadata, parents and
    pending writes for every checkpoint, and the graph continues from there."""

    async def views() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        out = []
        for thread in ("chat", "paused"):
            if kind == "sync":
                out.append(thread_view(saver, thread))
            else:
                out.append([tuple_view(t) for t in await saver_list(saver, cfg(thread))])
        return out[0], out[1]

    saver: AgentGitSaverBase
    if kind == "sync":
        with AgentGitSaver.from_conn_string(db_path) as saver:
            chat = drive(build_chat_graph(), saver)
            for text in ("one", "two"):
                await chat.invoke({"messages": [human(text)]}, cfg("chat"))
            # A paused run keeps pending writes (the interrupt) at its latest checkpoint.
            await drive(build_interrupt_graph(), saver).invoke({"steps": []}, cfg("paused"))
            before = await views()
        with AgentGitSaver.from_conn_string(db_path) as saver:
            after = await views()
            done = await drive(build_interrupt_graph(), saver).invoke(
                Command(resume="later"), cfg("paused")
            )
    else:
        async with AsyncAgentGitSaver.from_conn_string(db_path) as saver:
            chat = drive(build_chat_graph(), saver)
            for text in ("one", "two"):
                await chat.invoke({"messages": [human(text)]}, cfg("chat"))
            await drive(build_interrupt_graph(), saver).invoke({"steps": []}, cfg("paused"))
            before = await views()
        async with AsyncAgentGitSaver.from_conn_string(db_path) as saver:
            after = await views()
            done = await drive(build_interrupt_graph(), saver).invoke(
                Command(resume="later"), cfg("paused")
            )

    assert len(before[0]) == 6 and len(before[1]) == 3
    assert any(view["writes"] for view in before[1]), "the paused thread stored no writes"
    assert after == before
    assert done == {"steps": ["draft", "review:later", "finish"], "answer": "later"}


# --- isolation of returned values -------------------------------------------------------------


async def test_a_node_editing_state_in_place_does_not_rewrite_history(
    saver: AgentGitSaverBase,
) -> None:
    """A node that edits a message object in place changes the new checkpoint only: the
    older checkpoints still read as they were written, as on InMemorySaver.

    ``durability="sync"`` stores each checkpoint before the next step runs, so no
    checkpoint is serialized after the edit (with "async" that is a race in any saver)."""

    async def scenario(chat: Driver, edit: Driver) -> list[dict[str, Any]]:
        await chat.invoke({"messages": [human("hi")]}, cfg("t"))
        await edit.invoke({"messages": []}, cfg("t"), durability="sync")
        return [snapshot_view(s) for s in await edit.history(cfg("t"))]

    got = await scenario(drive(build_chat_graph(), saver), drive(build_edit_graph(), saver))
    ref_saver = InMemorySaver()
    expected = await scenario(
        Driver(build_chat_graph(), ref_saver, use_async=False),
        Driver(build_edit_graph(), ref_saver, use_async=False),
    )
    assert expected[0]["values"]["messages"][0]["content"] == "hi (edited)"
    assert expected[1]["values"]["messages"][0]["content"] == "hi"
    assert got == expected


def test_a_warm_turn_reads_no_stored_value_and_leaves_the_busy_timeout_alone(
    tmp_path: Any,
) -> None:
    """What a turn costs beyond LangGraph's own work is mostly statements. On a thread
    this process has just run, a turn reads no stored value again (the message list is
    not a compression hint for the task's writes, and was fetched for each write to
    learn that), and its transactions do not set and restore the busy timeout around
    every BEGIN and COMMIT. Its writes still land: the next process reads them."""
    db = str(tmp_path / "warm.db")
    statements: list[str] = []
    with AgentGitSaver.from_conn_string(db) as saver:
        graph = build_chat_graph().compile(checkpointer=saver)
        for text in ("one", "two"):
            graph.invoke({"messages": [HumanMessage(text)]}, cfg("t"))
        saver.conn.set_trace_callback(statements.append)
        graph.invoke({"messages": [HumanMessage("three")]}, cfg("t"), durability="sync")
        saver.conn.set_trace_callback(None)
    assert statements, "the trace saw nothing"
    assert sum(s.startswith("BEGIN IMMEDIATE") for s in statements) >= 3
    assert not [s for s in statements if "FROM agentgit_blobs" in s]
    assert not [s for s in statements if "busy_timeout" in s]
    with AgentGitSaver.from_conn_string(db) as saver:
        graph = build_chat_graph().compile(checkpointer=saver)
        held = graph.get_state(cfg("t")).values["messages"]
        assert [m.content for m in held][-2:] == ["three", "echo 5: three"]
