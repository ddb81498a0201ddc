"""Copy-on-write thread forks: ``fork_thread`` / ``afork_thread`` on real graphs and files.

A fork of thread ``src`` at checkpoint ``C`` must behave exactly like LangGraph's own
replay from ``C`` inside ``src``, see ``C`` and its parent chain as its history, never
change ``src``, survive whatever is deleted in ``src``, and cost one thread row.
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest
from conftest import (
    TABLES,
    cfg,
    checkpoint_id_of,
    drive,
    dump_tables,
    reference,
    saver_get_tuple,
    saver_list,
    snapshot_view,
    table_counts,
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
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from langgraph_agentgit import (
    AgentGitSaver,
    AsyncAgentGitSaver,
    CheckpointNotFoundError,
    ThreadExistsError,
    ThreadNotFoundError,
)
from langgraph_agentgit.saver_base import DEFAULT_CACHE_SIZE, AgentGitSaverBase


@pytest.fixture
def db_path(any_db: str) -> str:
    """Every test here runs on both engines: a SQLite file, then a Postgres schema."""
    return any_db


def ask(text: str) -> dict[str, Any]:
    """A user turn for the agent graph (deterministic message id)."""
    return {"messages": [HumanMessage(content=text, id=f"h-{text}")]}


def run(
    graph: CompiledStateGraph, thread: str, turns: list[str], run_prefix: str | None = None
) -> None:
    """Run user turns on a thread, tagging each turn's checkpoints with a run id."""
    for i, text in enumerate(turns, start=1):
        config: dict[str, Any] = cfg(thread)
        if run_prefix is not None:
            config["metadata"] = {"run_id": f"{run_prefix}-{i}"}
        graph.invoke(ask(text), config)


def tools_checkpoint(graph: CompiledStateGraph, thread: str, nth: int = 0) -> str:
    """The ``nth`` newest checkpoint where the agent has asked for a tool that has not run."""
    found = [s for s in graph.get_state_history(cfg(thread)) if s.next == ("tools",)]
    cid = checkpoint_id_of(found[nth].config)
    assert cid is not None
    return cid


def chain(saver: AgentGitSaverBase, config: RunnableConfig) -> list[dict[str, Any]]:
    """The checkpoint ``config`` names and its ancestors, walked with ``get_tuple`` alone
    (an independent way to compute what ``list`` should return)."""
    out: list[dict[str, Any]] = []
    current = saver.get_tuple(config)
    while current is not None:
        out.append(tuple_view(current))
        if current.parent_config is None:
            break
        current = saver.get_tuple(current.parent_config)
    return out


async def fork(
    saver: AgentGitSaverBase, source: str, checkpoint_id: str, new: str
) -> RunnableConfig:
    if isinstance(saver, AsyncAgentGitSaver):
        return await saver.afork_thread(source, checkpoint_id, new)
    return saver.fork_thread(source, checkpoint_id, new)


# --- what a fork sees ----------------------------------------------------------------------------


async def test_fork_starts_at_the_checkpoint_without_its_writes(saver: AgentGitSaverBase) -> None:
    """The fork's head is ``C`` with the same values and versions, under the new thread's
    name, and none of the writes the source made at ``C`` (it has not run from it yet)."""
    d = drive(build_agent_graph(), saver)
    for text in ("2 and 3", "4 and 5"):
        await d.invoke(ask(text), cfg("src"))
    history = await d.history(cfg("src"))
    c_id = checkpoint_id_of(next(s for s in history if s.next == ("tools",)).config)
    assert c_id is not None
    at_c = await saver_get_tuple(saver, cfg("src", c_id))
    assert at_c is not None and at_c.pending_writes, "the source ran from C, so it has writes"

    fork_config = await fork(saver, "src", c_id, "fork")

    assert fork_config == {
        "configurable": {"thread_id": "fork", "checkpoint_ns": "", "checkpoint_id": c_id}
    }
    for config in (cfg("fork"), fork_config):
        head = await saver_get_tuple(saver, config)
        assert head is not None
        assert head.config["configurable"]["thread_id"] == "fork"
        assert head.parent_config is not None
        assert head.parent_config["configurable"]["thread_id"] == "fork"
        assert head.pending_writes == []
        assert tuple_view(head) == {**tuple_view(at_c), "writes": []}


async def test_invoking_a_fork_equals_langgraph_replay(saver: AgentGitSaverBase) -> None:
    """``invoke(None, fork)`` re-runs from ``C`` exactly like ``invoke(None, C-in-source)``
    on the same saver and on InMemorySaver; a new turn on the fork continues alike."""

    async def replay_in_thread(d: Any, thread: str) -> dict[str, Any]:
        for text in ("2 and 3", "4 and 5"):
            await d.invoke(ask(text), cfg(thread))
        history = await d.history(cfg(thread))
        at_c = next(s for s in history if s.next == ("tools",))
        replayed = await d.invoke(None, at_c.config)
        state = await d.get_state(cfg(thread))
        more = await d.invoke(ask("6 and 7"), cfg(thread))
        return {
            "replayed": comparable(replayed),
            "state": snapshot_view(state),
            "more": comparable(more),
        }

    d = drive(build_agent_graph(), saver)
    for text in ("2 and 3", "4 and 5"):
        await d.invoke(ask(text), cfg("src"))
    history = await d.history(cfg("src"))
    c_id = checkpoint_id_of(next(s for s in history if s.next == ("tools",)).config)
    assert c_id is not None
    fork_config = await fork(saver, "src", c_id, "fork")
    replayed = await d.invoke(None, fork_config)
    state = await d.get_state(cfg("fork"))
    more = await d.invoke(ask("6 and 7"), cfg("fork"))
    on_fork = {
        "replayed": comparable(replayed),
        "state": snapshot_view(state),
        "more": comparable(more),
    }

    assert [m["content"] for m in on_fork["replayed"]["messages"]][-1] == "the sum is 9"
    assert [m["content"] for m in on_fork["more"]["messages"]][-1] == "the sum is 13"
    assert on_fork == await replay_in_thread(d, "src-replayed")
    assert on_fork == await replay_in_thread(reference(build_agent_graph()), "src")


async def test_fork_lists_own_then_parent_chain(saver: AgentGitSaverBase) -> None:
    """``list`` on a fork = its own checkpoints newest first, then ``C`` and its ancestors
    newest first; checkpoints of the source that are not ancestors of ``C`` (an abandoned
    in-thread branch) are not part of it. ``before``/``limit``/``filter`` work across the
    boundary, and ``get_state_history`` shows the same states as the source had."""
    d = drive(build_agent_graph(), saver)
    await d.invoke(ask("2 and 3"), cfg("src"))
    first = await d.history(cfg("src"))
    # Replay the first turn from before its tool ran: the original tail is now a branch
    # that is older than C but not on C's chain.
    await d.invoke(None, next(s for s in first if s.next == ("tools",)).config)
    await d.invoke(ask("4 and 5"), cfg("src"))
    abandoned = {checkpoint_id_of(s.config) for s in first if s.metadata["step"] >= 2}
    c_id = checkpoint_id_of(
        next(s for s in await d.history(cfg("src")) if s.next == ("tools",)).config
    )
    assert c_id is not None
    await fork(saver, "src", c_id, "fork")
    await d.invoke(None, cfg("fork"))
    await d.invoke(ask("6 and 7"), cfg("fork"))

    listed = await saver_list(saver, cfg("fork"))
    ids = [checkpoint_id_of(t.config) for t in listed]
    assert all(t.config["configurable"]["thread_id"] == "fork" for t in listed)
    split = ids.index(c_id)
    own, inherited = ids[:split], ids[split:]
    assert own and own == sorted(own, reverse=True) and min(own) > c_id
    assert inherited == sorted(inherited, reverse=True)
    assert not abandoned & set(ids)
    # Independently: walking parent links from the fork's head gives the same list.
    # (The async saver's sync methods must run off the event loop's thread.)
    assert [tuple_view(t) for t in listed] == await asyncio.to_thread(chain, saver, cfg("fork"))
    source_chain = [
        tuple_view(t)
        for t in await saver_list(saver, cfg("src"))
        if checkpoint_id_of(t.config) in set(inherited)
    ]
    assert [v["id"] for v in source_chain] == inherited
    # Inherited entries read as in the source. At C the writes are the fork's own (it ran
    # the same tasks from C), the ancestors' writes are the source's.
    fork_inherited = [tuple_view(t) for t in listed[split:]]
    assert {**fork_inherited[0], "writes": None} == {**source_chain[0], "writes": None}
    assert [w[:2] for w in fork_inherited[0]["writes"]] == [
        w[:2] for w in source_chain[0]["writes"]
    ]
    assert fork_inherited[1:] == source_chain[1:]
    assert [v["metadata"] for v in fork_inherited] == [v["metadata"] for v in source_chain]
    assert len(own) == (
        await saver.acheckpoint_count("fork")
        if isinstance(saver, AsyncAgentGitSaver)
        else saver.checkpoint_count("fork")
    )

    async def ids_of(**kwargs: Any) -> list[str | None]:
        return [checkpoint_id_of(t.config) for t in await saver_list(saver, cfg("fork"), **kwargs)]

    assert await ids_of(before=listed[split - 1].config) == inherited
    assert await ids_of(limit=split + 2) == ids[: split + 2]
    assert await ids_of(before=listed[1].config, limit=split) == ids[2 : split + 2]
    assert await ids_of(filter={"source": "input"}) == [
        checkpoint_id_of(t.config) for t in listed if t.metadata["source"] == "input"
    ]

    states = await d.history(cfg("fork"))
    assert [checkpoint_id_of(s.config) for s in states] == ids
    assert all(s.config["configurable"]["thread_id"] == "fork" for s in states)
    for s in states[split:]:
        in_source = await d.get_state(cfg("src", checkpoint_id_of(s.config)))
        assert comparable(s.values) == comparable(in_source.values)
        assert s.next == in_source.next


def test_fork_does_not_see_source_checkpoints_off_its_chain(sync_saver: AgentGitSaver) -> None:
    """``get_tuple`` on a fork finds exactly the checkpoints ``list`` shows: a source
    checkpoint that is older than ``C`` but not its ancestor is not part of the fork."""
    graph = build_agent_graph().compile(checkpointer=sync_saver)
    run(graph, "src", ["2 and 3"])
    first = list(graph.get_state_history(cfg("src")))
    graph.invoke(None, next(s for s in first if s.next == ("tools",)).config)
    run(graph, "src", ["4 and 5"])
    c_id = tools_checkpoint(graph, "src")
    sync_saver.fork_thread("src", c_id, "fork")

    visible = {checkpoint_id_of(t.config) for t in sync_saver.list(cfg("fork"))}
    for t in sync_saver.list(cfg("src")):
        cid = checkpoint_id_of(t.config)
        assert cid is not None
        found = sync_saver.get_tuple(cfg("fork", cid))
        listed = list(sync_saver.list(cfg("fork", cid)))
        assert (found is not None) == (cid in visible), (
            f"get_tuple(fork, {cid}) is {'found' if found else 'None'} but list(fork) "
            f"{'shows' if cid in visible else 'does not show'} it"
        )
        assert len(listed) == (1 if cid in visible else 0)


# --- the source never changes --------------------------------------------------------------------


def test_source_thread_never_changes(sync_saver: AgentGitSaver) -> None:
    """Forking, running, forking again and resuming on forks leaves every checkpoint,
    write and value of the source exactly as it was."""
    graph = build_agent_graph().compile(checkpointer=sync_saver)
    run(graph, "src", ["2 and 3", "4 and 5"])
    before = thread_view(sync_saver, "src")
    state_before = graph.get_state(cfg("src"))

    for i, c_id in enumerate(t["id"] for t in before):
        sync_saver.fork_thread("src", c_id, f"fork-{i}")
        graph.invoke(None, cfg(f"fork-{i}"))
        graph.invoke(ask(f"{i} and 100"), cfg(f"fork-{i}"))
    graph.invoke(ask("1 and 1"), cfg("fork-0"))

    assert thread_view(sync_saver, "src") == before
    assert graph.get_state(cfg("src")) == state_before


# --- forks of forks, siblings --------------------------------------------------------------------


def test_forks_of_forks(sync_saver: AgentGitSaver) -> None:
    """A fork of a fork, taken at the middle fork's own checkpoint or at one it inherits,
    sees the right chain and runs exactly as the replay of that checkpoint does."""
    graph = build_agent_graph().compile(checkpointer=sync_saver)
    run(graph, "src", ["2 and 3", "4 and 5"])
    sync_saver.fork_thread("src", tools_checkpoint(graph, "src", nth=1), "a")
    run(graph, "a", ["10 and 20"])
    own_of_a = tools_checkpoint(graph, "a")  # written by "a" itself
    inherited_by_a = tools_checkpoint(graph, "a", nth=1)  # from "src" (first turn)
    assert sync_saver.get_tuple(cfg("src", own_of_a)) is None
    assert sync_saver.get_tuple(cfg("src", inherited_by_a)) is not None

    for name, at in (("b", own_of_a), ("c", inherited_by_a)):
        a_view = chain(sync_saver, cfg("a", at))
        sync_saver.fork_thread("a", at, name)
        assert [tuple_view(t) for t in sync_saver.list(cfg(name))] == [
            {**a_view[0], "writes": []},
            *a_view[1:],
        ]
        # Running the grandchild equals replaying the same checkpoint inside "a".
        on_fork = comparable(graph.invoke(None, cfg(name)))
        sync_saver.copy_thread("a", f"{name}-control")
        in_thread = comparable(graph.invoke(None, cfg(f"{name}-control", at)))
        assert on_fork == in_thread
        assert [m["content"] for m in on_fork["messages"]][-1].startswith("the sum is")
        listed = list(sync_saver.list(cfg(name)))
        assert [checkpoint_id_of(t.config) for t in listed] == [
            v["id"] for v in chain(sync_saver, cfg(name))
        ]


def test_sibling_forks_are_independent(sync_saver: AgentGitSaver) -> None:
    """Two forks at the same checkpoint never see each other's checkpoints or values."""
    graph = build_agent_graph().compile(checkpointer=sync_saver)
    run(graph, "src", ["2 and 3", "4 and 5"])
    before = thread_view(sync_saver, "src")
    c_id = tools_checkpoint(graph, "src")
    sync_saver.fork_thread("src", c_id, "left")
    sync_saver.fork_thread("src", c_id, "right")
    graph.invoke(None, cfg("left"))
    run(graph, "left", ["1 and 1"])
    run(graph, "right", ["30 and 40"])

    left = {checkpoint_id_of(t.config) for t in sync_saver.list(cfg("left"))}
    right = {checkpoint_id_of(t.config) for t in sync_saver.list(cfg("right"))}
    shared = {t["id"] for t in chain(sync_saver, cfg("src", c_id))}
    assert left & right == shared
    left_text = [m.content for m in graph.get_state(cfg("left")).values["messages"]]
    right_text = [m.content for m in graph.get_state(cfg("right")).values["messages"]]
    assert left_text[-1] == "the sum is 2" and "the sum is 9" in left_text
    assert right_text[-1] == "the sum is 70" and "the sum is 9" not in right_text
    assert "1 and 1" not in right_text and "30 and 40" not in left_text
    assert thread_view(sync_saver, "src") == before


@pytest.mark.parametrize(
    "query",
    [
        {"limit": 1},
        {"limit": 3},
        {"limit": 100},
        {"limit": 4, "filter": {"source": "loop"}},
        {"limit": 1, "filter": {"source": "input"}},
        {"limit": 3, "filter": {"parents": {}}},
    ],
    ids=["1", "own-then-inherited", "all", "loop", "inherited-only", "non-scalar-filter"],
)
def test_limit_on_a_fork_is_a_prefix_of_the_whole_listing(
    sync_saver: AgentGitSaver, query: dict[str, Any]
) -> None:
    """``list(limit=N)`` on a fork returns the first N of what the unlimited listing
    returns, across its own rows and the inherited chain, with and without filters."""
    graph = build_agent_graph().compile(checkpointer=sync_saver)
    run(graph, "src", ["2 and 3", "4 and 5"])
    sync_saver.fork_thread("src", tools_checkpoint(graph, "src"), "fork")
    graph.invoke(None, cfg("fork"))
    everything = [
        checkpoint_id_of(t.config) for t in sync_saver.list(cfg("fork"), filter=query.get("filter"))
    ]
    limited = [checkpoint_id_of(t.config) for t in sync_saver.list(cfg("fork"), **query)]
    assert len(everything) >= 2  # the listing being cut is not trivial
    assert limited == everything[: query["limit"]]


def test_listed_checkpoints_do_not_share_list_objects(sync_saver: AgentGitSaver) -> None:
    """Checkpoints holding the same stored list (an input checkpoint and the turn end
    before it) get list objects of their own: appending to one tuple's messages leaves
    the others as they were."""
    graph = build_agent_graph().compile(checkpointer=sync_saver)
    run(graph, "src", ["2 and 3", "4 and 5"])
    lists = [
        t.checkpoint["channel_values"]["messages"]
        for t in sync_saver.list(cfg("src"))
        if "messages" in t.checkpoint["channel_values"]
    ]
    assert len(lists) > 2
    assert len({id(messages) for messages in lists}) == len(lists)
    lengths = [len(messages) for messages in lists]
    for messages in lists:
        messages.append(HumanMessage("extra"))
    assert [len(messages) for messages in lists] == [n + 1 for n in lengths]


# --- interrupts ----------------------------------------------------------------------------------


async def test_interrupt_fires_again_on_a_fork_taken_before_it(saver: AgentGitSaverBase) -> None:
    """A fork taken where the source was paused asks again, and can be answered
    differently, exactly like a replay of that checkpoint on InMemorySaver."""

    async def paused_then_answered(d: Any, thread: str) -> str:
        await d.invoke({"steps": []}, cfg(thread))
        paused = await d.get_state(cfg(thread))
        await d.invoke(Command(resume="yes"), cfg(thread))
        cid = checkpoint_id_of(paused.config)
        assert cid is not None
        return cid

    async def answer_again(d: Any, config: RunnableConfig, thread: str) -> dict[str, Any]:
        asked = await d.invoke(None, config)
        paused = await d.get_state(cfg(thread))
        done = await d.invoke(Command(resume="no"), cfg(thread))
        return {"asked": comparable(asked), "paused": snapshot_view(paused), "done": done}

    d = drive(build_interrupt_graph(), saver)
    c_id = await paused_then_answered(d, "src")
    source_before = [tuple_view(t) for t in await saver_list(saver, cfg("src"))]
    fork_config = await fork(saver, "src", c_id, "fork")
    head = await d.get_state(cfg("fork"))
    assert head.next == ("review",)
    assert [i for t in head.tasks for i in t.interrupts] == []  # the source's were not copied

    on_fork = await answer_again(d, fork_config, "fork")

    assert on_fork["asked"]["__interrupt__"] == [
        {"interrupt": {"question": "approve?", "seen": ["draft"]}}
    ]
    assert on_fork["paused"]["interrupts"] == [{"question": "approve?", "seen": ["draft"]}]
    assert on_fork["done"] == {"steps": ["draft", "review:no", "finish"], "answer": "no"}
    ref = reference(build_interrupt_graph())
    ref_c = await paused_then_answered(ref, "src")
    assert on_fork == await answer_again(ref, cfg("src", ref_c), "src")
    assert [tuple_view(t) for t in await saver_list(saver, cfg("src"))] == source_before
    assert (await d.get_state(cfg("src"))).values["answer"] == "yes"


async def test_subgraph_interrupt_fires_again_on_a_fork(saver: AgentGitSaverBase) -> None:
    """A fork taken where the parent waited on its paused subgraph re-runs the subgraph and
    asks again, like LangGraph's replay of that parent checkpoint on InMemorySaver."""

    async def answered(d: Any, thread: str) -> str:
        await d.invoke({"log": []}, cfg(thread))
        paused = await d.get_state(cfg(thread))
        await d.invoke(Command(resume="first"), cfg(thread))
        cid = checkpoint_id_of(paused.config)
        assert cid is not None
        return cid

    async def ask_again(d: Any, config: RunnableConfig, thread: str) -> dict[str, Any]:
        asked = await d.invoke(None, config)
        state = await d.get_state(cfg(thread), subgraphs=True)
        done = await d.invoke(Command(resume="second"), cfg(thread))
        return {
            "asked": comparable(asked),
            "parent": snapshot_view(state),
            "sub": [snapshot_view(t.state) for t in state.tasks if t.state is not None],
            "done": done,
        }

    d = drive(build_subgraph_graph(), saver)
    c_id = await answered(d, "src")
    source_before = [tuple_view(t) for t in await saver_list(saver, cfg("src"))]
    fork_config = await fork(saver, "src", c_id, "fork")

    on_fork = await ask_again(d, fork_config, "fork")

    assert on_fork["asked"]["__interrupt__"] == [
        {"interrupt": {"inner_log": ["prepare", "inner1"]}}
    ]
    assert on_fork["sub"][0]["values"] == {"log": ["prepare", "inner1"]}
    assert on_fork["done"] == {"log": ["prepare", "inner1", "ask:second", "inner2", "done"]}
    ref = reference(build_subgraph_graph())
    ref_c = await answered(ref, "src")
    assert on_fork == await ask_again(ref, cfg("src", ref_c), "src")
    assert [tuple_view(t) for t in await saver_list(saver, cfg("src"))] == source_before


# --- deleting around forks -----------------------------------------------------------------------


SOURCE_OPERATIONS = ["delete_thread", "prune_keep_latest", "prune_delete", "delete_for_runs"]


def apply_to_source(saver: AgentGitSaver, operation: str) -> None:
    if operation == "delete_thread":
        saver.delete_thread("src")
    elif operation == "prune_keep_latest":
        saver.prune(["src"], strategy="keep_latest")
    elif operation == "prune_delete":
        saver.prune(["src"], strategy="delete")
    else:
        saver.delete_for_runs(["src-1", "src-2", "src-3"])


@pytest.mark.parametrize("operation", SOURCE_OPERATIONS)
@pytest.mark.parametrize("fork_has_run", [True, False], ids=["fork-ran", "fork-idle"])
def test_deleting_in_the_source_never_breaks_the_fork(
    sync_saver: AgentGitSaver, db_path: str, operation: str, fork_has_run: bool
) -> None:
    """Whatever is deleted in the source, the fork's state and history read exactly as
    before and the fork keeps running; deleting both then leaves no row at all."""
    graph = build_agent_graph().compile(checkpointer=sync_saver)
    run(graph, "src", ["2 and 3", "4 and 5", "6 and 7"], run_prefix="src")
    c_id = tools_checkpoint(graph, "src", nth=1)  # in the middle of the second turn
    sync_saver.fork_thread("src", c_id, "fork")
    if fork_has_run:
        graph.invoke(None, cfg("fork"))
        run(graph, "fork", ["1 and 2"], run_prefix="fork")
    fork_before = thread_view(sync_saver, "fork")
    state_before = graph.get_state(cfg("fork"))
    count_before = sync_saver.checkpoint_count("fork")
    latest_src = thread_view(sync_saver, "src")[0]

    apply_to_source(sync_saver, operation)

    assert thread_view(sync_saver, "fork") == fork_before
    assert graph.get_state(cfg("fork")) == state_before
    assert sync_saver.checkpoint_count("fork") == count_before
    assert [tuple_view(t) for t in sync_saver.list(cfg("fork"))] == chain(sync_saver, cfg("fork"))
    source_now = thread_view(sync_saver, "src")
    if operation == "prune_keep_latest":
        assert source_now == [latest_src]
        assert sync_saver.checkpoint_count("src") == 1
    else:
        assert source_now == []
        assert sync_saver.get_tuple(cfg("src")) is None
        assert sync_saver.checkpoint_count("src") == 0
    # The fork still runs, reading its inherited values.
    result = graph.invoke(ask("5 and 5"), cfg("fork"))
    assert [m.content for m in result["messages"]][:2] == ["2 and 3", ""]
    assert result["messages"][-1].content == "the sum is 10"

    sync_saver.delete_thread("fork")
    sync_saver.delete_thread("src")
    assert table_counts(db_path) == dict.fromkeys(TABLES, 0)


MIDDLE_OPERATIONS = ["delete_thread", "prune_keep_latest", "prune_delete", "delete_for_runs"]


@pytest.mark.parametrize("operation", MIDDLE_OPERATIONS)
def test_deleting_in_a_middle_fork_never_breaks_its_forks(
    sync_saver: AgentGitSaver, db_path: str, operation: str
) -> None:
    """``src`` -> ``a`` -> {``b`` forked at a checkpoint ``a`` wrote, ``c`` forked at one
    ``a`` inherited from ``src``}. Deleting or pruning in ``a``, then deleting ``src``,
    leaves ``b`` and ``c`` reading and running exactly as before."""
    graph = build_agent_graph().compile(checkpointer=sync_saver)
    run(graph, "src", ["2 and 3", "4 and 5"], run_prefix="src")
    sync_saver.fork_thread("src", tools_checkpoint(graph, "src", nth=1), "a")
    run(graph, "a", ["10 and 20"], run_prefix="a")
    sync_saver.fork_thread("a", tools_checkpoint(graph, "a"), "b")
    sync_saver.fork_thread("a", tools_checkpoint(graph, "a", nth=1), "c")
    views = {name: thread_view(sync_saver, name) for name in ("b", "c")}
    heads = {name: graph.get_state(cfg(name)) for name in ("b", "c")}

    if operation == "delete_thread":
        sync_saver.delete_thread("a")
    elif operation == "prune_keep_latest":
        sync_saver.prune(["a"], strategy="keep_latest")
    elif operation == "prune_delete":
        sync_saver.prune(["a"], strategy="delete")
    else:
        sync_saver.delete_for_runs(["a-1"])
    for name in ("b", "c"):
        assert thread_view(sync_saver, name) == views[name], f"{name} changed after {operation}"

    sync_saver.delete_thread("src")
    for name in ("b", "c"):
        assert thread_view(sync_saver, name) == views[name], f"{name} changed after src deleted"
        assert graph.get_state(cfg(name)) == heads[name]
    # Each runs its pending tool call from its own fork point.
    assert graph.invoke(None, cfg("b"))["messages"][-1].content == "the sum is 30"
    assert graph.invoke(None, cfg("c"))["messages"][-1].content == "the sum is 5"

    for name in ("a", "b", "c"):
        sync_saver.delete_thread(name)
    assert table_counts(db_path) == dict.fromkeys(TABLES, 0)


def test_reusing_a_deleted_source_id_starts_a_fresh_thread(sync_saver: AgentGitSaver) -> None:
    """A thread id deleted while a fork still needs its rows can be used again: the new
    thread starts empty and the fork is unaffected."""
    graph = build_agent_graph().compile(checkpointer=sync_saver)
    run(graph, "src", ["2 and 3"])
    sync_saver.fork_thread("src", tools_checkpoint(graph, "src"), "fork")
    fork_view = thread_view(sync_saver, "fork")
    sync_saver.delete_thread("src")

    run(graph, "src", ["7 and 7"])

    assert [m.content for m in graph.get_state(cfg("src")).values["messages"]] == [
        "7 and 7",
        "",
        "14",
        "the sum is 14",
    ]
    assert sync_saver.checkpoint_count("src") == 5
    assert thread_view(sync_saver, "fork") == fork_view
    with pytest.raises(ThreadExistsError):
        sync_saver.fork_thread("fork", fork_view[0]["id"], "src")


def test_deleting_the_fork_keeps_the_source_and_frees_the_fork_rows(
    sync_saver: AgentGitSaver, db_path: str
) -> None:
    """Deleting a fork removes exactly what it added; the source is untouched."""
    graph = build_agent_graph().compile(checkpointer=sync_saver)
    run(graph, "src", ["2 and 3", "4 and 5"])
    counts = table_counts(db_path)
    source = thread_view(sync_saver, "src")
    sync_saver.fork_thread("src", tools_checkpoint(graph, "src"), "fork")
    graph.invoke(None, cfg("fork"))
    run(graph, "fork", ["8 and 9"])
    assert table_counts(db_path) != counts

    sync_saver.delete_thread("fork")

    assert list(sync_saver.list(cfg("fork"))) == []
    assert thread_view(sync_saver, "src") == source
    assert table_counts(db_path) == counts
    sync_saver.delete_thread("src")
    assert table_counts(db_path) == dict.fromkeys(TABLES, 0)


def test_prune_keep_latest_on_a_fork(sync_saver: AgentGitSaver, db_path: str) -> None:
    """Pruning a fork (idle or not) keeps its latest state readable and runnable even after
    the source is deleted."""
    graph = build_agent_graph().compile(checkpointer=sync_saver)
    run(graph, "src", ["2 and 3", "4 and 5"])
    source = thread_view(sync_saver, "src")
    c_id = tools_checkpoint(graph, "src")
    sync_saver.fork_thread("src", c_id, "idle")
    sync_saver.fork_thread("src", c_id, "busy")
    run(graph, "busy", ["1 and 2"])
    states = {name: graph.get_state(cfg(name)) for name in ("idle", "busy")}

    sync_saver.prune(["idle", "busy"], strategy="keep_latest")

    assert thread_view(sync_saver, "src") == source
    sync_saver.delete_thread("src")
    for name in ("idle", "busy"):
        (only,) = list(sync_saver.list(cfg(name)))
        assert checkpoint_id_of(only.config) == checkpoint_id_of(states[name].config)
        assert graph.get_state(cfg(name)).values == states[name].values
        assert graph.get_state(cfg(name)).next == states[name].next
        assert sync_saver.checkpoint_count(name) == 1
    assert graph.invoke(None, cfg("idle"))["messages"][-1].content == "the sum is 9"
    assert graph.invoke(ask("3 and 3"), cfg("busy"))["messages"][-1].content == "the sum is 6"
    sync_saver.delete_thread("idle")
    sync_saver.delete_thread("busy")
    assert table_counts(db_path) == dict.fromkeys(TABLES, 0)


# --- cost ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("turns", [1, 8])
def test_fork_adds_one_thread_row_and_nothing_else(
    sync_saver: AgentGitSaver, db_path: str, turns: int
) -> None:
    """Copy-on-write, checked structurally: a fork of a long history writes exactly one
    ``agentgit_threads`` row, no checkpoint, write or blob, like a fork of a short one."""
    graph = build_agent_graph().compile(checkpointer=sync_saver)
    run(graph, "src", [f"{i} and {i}" for i in range(turns)])
    assert sync_saver.checkpoint_count("src") == 5 * turns

    for source, target in (("src", "f1"), ("f1", "f2")):
        before = table_counts(db_path)
        c_id = checkpoint_id_of(sync_saver.get_tuple(cfg(source)).config)  # type: ignore[union-attr]
        assert c_id is not None
        sync_saver.fork_thread(source, c_id, target)
        after = table_counts(db_path)
        assert after == {**before, "agentgit_threads": before["agentgit_threads"] + 1}
        assert len(list(sync_saver.list(cfg(target)))) == 5 * turns


# --- errors --------------------------------------------------------------------------------------


async def test_fork_errors_change_nothing(saver: AgentGitSaverBase, db_path: str) -> None:
    """Unknown source, unknown checkpoint, or an existing target each raise their own error
    naming the id, and leave every table as it was."""
    d = drive(build_agent_graph(), saver)
    await d.invoke(ask("2 and 3"), cfg("src"))
    await d.invoke(ask("4 and 5"), cfg("other"))
    head = await saver_get_tuple(saver, cfg("src"))
    other_head = await saver_get_tuple(saver, cfg("other"))
    assert head is not None and other_head is not None
    c_id = checkpoint_id_of(head.config)
    assert c_id is not None
    before = dump_tables(db_path)

    cases: list[tuple[tuple[str, str, str], type[Exception], str]] = [
        (("missing", c_id, "new"), ThreadNotFoundError, "missing"),
        (("src", "1ef00000-0000-6000-8000-000000000000", "new"), CheckpointNotFoundError, "1ef0"),
        # A checkpoint of another thread is not a checkpoint of the source.
        (("src", checkpoint_id_of(other_head.config) or "", "new"), CheckpointNotFoundError, "src"),
        (("src", c_id, "other"), ThreadExistsError, "other"),
        (("src", c_id, "src"), ThreadExistsError, "src"),
    ]
    for args, error, mentioned in cases:
        with pytest.raises(error, match=mentioned):
            await fork(saver, *args)
        assert dump_tables(db_path) == before, args
    assert await saver_list(saver, cfg("new")) == []


# --- copy_thread and checkpoint_count ------------------------------------------------------------


def test_copy_thread_of_a_fork_copies_its_full_history(
    sync_saver: AgentGitSaver, db_path: str
) -> None:
    """``copy_thread`` of a fork materializes everything the fork sees (inherited lineage
    included); the copy then stands alone when source and fork are deleted."""
    graph = build_agent_graph().compile(checkpointer=sync_saver)
    run(graph, "src", ["2 and 3", "4 and 5"])
    sync_saver.fork_thread("src", tools_checkpoint(graph, "src"), "fork")
    graph.invoke(None, cfg("fork"))
    run(graph, "fork", ["8 and 9"])
    fork_view = thread_view(sync_saver, "fork")

    sync_saver.copy_thread("fork", "copy")

    assert thread_view(sync_saver, "copy") == fork_view
    assert sync_saver.checkpoint_count("copy") == len(fork_view)
    sync_saver.delete_thread("src")
    sync_saver.delete_thread("fork")
    assert thread_view(sync_saver, "copy") == fork_view
    result = graph.invoke(ask("1 and 1"), cfg("copy"))
    assert result["messages"][-1].content == "the sum is 2"
    assert [m.content for m in result["messages"]].count("the sum is 17") == 1


def test_checkpoint_count_counts_own_root_checkpoints(db_path: str) -> None:
    """``checkpoint_count`` = root-namespace checkpoints the thread wrote itself: not the
    subgraph's, not inherited ones; it follows prune/delete_for_runs and survives reopening."""

    def root_count(saver: AgentGitSaver, thread: str) -> int:
        return sum(1 for t in saver.list(cfg(thread, ns="")))

    with AgentGitSaver.from_conn_string(db_path) as saver:
        graph = build_subgraph_graph(with_interrupt=False).compile(checkpointer=saver)
        for i in range(3):
            graph.invoke({"log": []}, {**cfg("src"), "metadata": {"run_id": f"run-{i}"}})
        everything = list(saver.list(cfg("src")))
        assert any(t.config["configurable"]["checkpoint_ns"] for t in everything)
        assert saver.checkpoint_count("src") == root_count(saver, "src") == 3 * 5
        assert saver.checkpoint_count("nobody") == 0

        c_id = checkpoint_id_of(list(saver.list(cfg("src", ns=""), limit=3))[-1].config)
        assert c_id is not None
        saver.fork_thread("src", c_id, "fork")
        assert saver.checkpoint_count("fork") == 0
        graph.invoke({"log": ["again"]}, {**cfg("fork"), "metadata": {"run_id": "run-f"}})
        assert saver.checkpoint_count("fork") == 5
        assert root_count(saver, "fork") > 5  # it also sees the inherited ones

        saver.delete_for_runs(["run-1"])
        assert saver.checkpoint_count("src") == root_count(saver, "src") == 10
        assert saver.checkpoint_count("fork") == 5

    with AgentGitSaver.from_conn_string(db_path) as saver:
        assert saver.checkpoint_count("src") == 10
        assert saver.checkpoint_count("fork") == 5
        saver.prune(["src", "fork"], strategy="keep_latest")
        assert saver.checkpoint_count("src") == root_count(saver, "src") == 1
        assert saver.checkpoint_count("fork") == root_count(saver, "fork") == 1

    with AgentGitSaver.from_conn_string(db_path) as saver:
        assert saver.checkpoint_count("src") == 1
        assert saver.checkpoint_count("fork") == 1
        saver.delete_thread("src")
        assert saver.checkpoint_count("src") == 0
        assert saver.checkpoint_count("fork") == 1


# --- DeltaChannel across a fork ------------------------------------------------------------------


async def test_delta_channel_on_a_fork(saver: AgentGitSaverBase) -> None:
    """A DeltaChannel list is rebuilt on a fork from writes stored in the source thread,
    the fork runs on like an in-thread replay, and the saver's history override agrees with
    the base-class walk on every checkpoint of the fork."""
    d = drive(build_delta_graph(), saver)
    await d.invoke({"target": 11}, cfg("src"))
    history = await d.history(cfg("src"))
    tuples = {checkpoint_id_of(t.config): t for t in await saver_list(saver, cfg("src"))}
    # A checkpoint in the middle whose list is *not* stored: it must come from writes.
    at_c = next(
        s
        for s in history
        if s.values.get("rounds") == 6
        and "items" not in tuples[checkpoint_id_of(s.config)].checkpoint["channel_values"]
    )
    c_id = checkpoint_id_of(at_c.config)
    assert c_id is not None
    await fork(saver, "src", c_id, "fork")

    assert (await d.get_state(cfg("fork"))).values == at_c.values
    on_fork = await d.invoke({"target": 14}, cfg("fork"))
    assert on_fork["items"] == [f"item-{i}" for i in range(1, 15)]
    replayed = await d.invoke({"target": 14}, cfg("src", c_id))
    assert on_fork == replayed

    for t in await saver_list(saver, cfg("fork")):
        if isinstance(saver, AsyncAgentGitSaver):
            mine = await saver.aget_delta_channel_history(config=t.config, channels=["items"])
            default = await BaseCheckpointSaver.aget_delta_channel_history(
                saver, config=t.config, channels=["items"]
            )
        else:
            mine = saver.get_delta_channel_history(config=t.config, channels=["items"])
            default = BaseCheckpointSaver.get_delta_channel_history(
                saver, config=t.config, channels=["items"]
            )
        assert mine["items"]["writes"] == default["items"]["writes"]
        assert ("seed" in mine["items"]) == ("seed" in default["items"])
        if "seed" in mine["items"]:
            assert type(mine["items"]["seed"]) is type(default["items"]["seed"])
            assert mine["items"]["seed"] == default["items"]["seed"]


@pytest.mark.parametrize("cache_size", [DEFAULT_CACHE_SIZE, 0], ids=["cache", "no-cache"])
def test_in_place_edit_on_a_fork_does_not_leak_into_the_source(
    db_path: str, cache_size: int
) -> None:
    """A fork shares the source's stored values; a node on the fork that edits a message
    in place must change the fork only, in this process and after reopening, whether or
    not the saver caches decoded values."""
    with AgentGitSaver.from_conn_string(db_path, cache_size=cache_size) as sync_saver:
        edit_on_fork(sync_saver, db_path)


def edit_on_fork(sync_saver: AgentGitSaver, db_path: str) -> None:
    chat = build_chat_graph().compile(checkpointer=sync_saver)
    chat.invoke({"messages": [HumanMessage("hi", id="h-1")]}, cfg("src"))
    # A deep copy: with the decode cache on, objects a read returned are shared with later
    # reads, so the edit below reaches them; what the saver stores and returns must not.
    source = copy.deepcopy(thread_view(sync_saver, "src"))
    head = checkpoint_id_of(sync_saver.get_tuple(cfg("src")).config)  # type: ignore[union-attr]
    assert head is not None
    sync_saver.fork_thread("src", head, "fork")

    edit = build_edit_graph().compile(checkpointer=sync_saver)
    # "sync": every checkpoint is stored before the edit runs (see test_saver_graphs).
    edit.invoke({"messages": []}, cfg("fork"), durability="sync")

    fork_texts = [m.content for m in chat.get_state(cfg("fork")).values["messages"]]
    assert fork_texts == ["hi (edited)", "echo 1: hi"]
    assert [m.content for m in chat.get_state(cfg("src")).values["messages"]] == [
        "hi",
        "echo 1: hi",
    ]
    assert thread_view(sync_saver, "src") == source
    with AgentGitSaver.from_conn_string(db_path) as reopened:
        assert thread_view(reopened, "src") == source
        again = build_chat_graph().compile(checkpointer=reopened).get_state(cfg("fork"))
        assert [m.content for m in again.values["messages"]] == fork_texts


@pytest.mark.parametrize("cut", ["prune", "first_run_deleted"])
@pytest.mark.parametrize("workload", ["chat", "delta"])
def test_copy_thread_of_a_thread_that_lost_its_oldest_rows(
    any_db: str, cut: str, workload: str
) -> None:
    """A prune, or the deletion of the first run, collects a thread's oldest rows: the
    rows kept name their parent by id only. copy_thread copies what the thread lists,
    reading back identically (a walk started at a collected parent's row id was taken
    for damage: CorruptDataError, "a parent checkpoint is missing")."""
    with AgentGitSaver.from_conn_string(any_db) as saver:
        if workload == "chat":
            graph = build_chat_graph().compile(checkpointer=saver)
            inputs: list[Any] = [{"messages": [HumanMessage(w)]} for w in ("one", "two", "three")]
        else:
            graph = build_delta_graph().compile(checkpointer=saver)
            inputs = [{"target": n} for n in (2, 4, 6)]
        for n, value in enumerate(inputs):
            graph.invoke(value, {**cfg("src"), "metadata": {"run_id": f"run-{n}"}})
        if cut == "prune":
            saver.prune(["src"], strategy="keep_latest")
        else:
            saver.delete_for_runs(["run-0"])
        source_view = thread_view(saver, "src")
        saver.copy_thread("src", "copy")
        assert thread_view(saver, "copy") == source_view
        saver.delete_thread("src")
        assert thread_view(saver, "copy") == source_view
