"""States that were read back wrong, each compared with what LangGraph's own savers give.

Each test is one failing input of the correctness issue; the kinds behind them are a
channel's value identified by its version (not assumed to be the parent's), pruning that
keeps what a ``DeltaChannel`` reconstructs from, versions that stay of one type within a
thread, and a branch that waits on an interrupt it raised again.
"""

from __future__ import annotations

import operator
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing
from typing import Annotated, Any, TypedDict

import pytest
from conftest import cfg, drive, reference, saver_get_tuple
from langgraph.channels.delta import DeltaChannel
from langgraph.checkpoint.base import BaseCheckpointSaver, empty_checkpoint
from langgraph.checkpoint.base.id import uuid6
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from py310 import config_context
from session_graphs import build_approval

from langgraph_agentgit import AgentGitSaver, AsyncAgentGitSaver, SessionManager
from langgraph_agentgit.saver_base import AgentGitSaverBase

# --- graphs -----------------------------------------------------------------------------


class LogState(TypedDict):
    log: Annotated[list[str], operator.add]
    last: str


def build_two_steps(*, ask: bool = False) -> StateGraph:
    """START -> a -> (ask, an interrupt) -> b, each appending its name to ``log``."""

    def a(state: LogState) -> dict[str, Any]:
        return {"log": ["a"], "last": "a"}

    @config_context
    def ask_human(state: LogState) -> dict[str, Any]:
        answer = interrupt("question")
        return {"log": [f"human:{answer}"], "last": "ask"}

    def b(state: LogState) -> dict[str, Any]:
        return {"log": ["b"], "last": "b"}

    builder = StateGraph(LogState)
    builder.add_node("a", a)
    builder.add_node("b", b)
    builder.add_edge(START, "a")
    if ask:
        builder.add_node("ask", ask_human)
        builder.add_edge("a", "ask")
        builder.add_edge("ask", "b")
    else:
        builder.add_edge("a", "b")
    builder.add_edge("b", END)
    return builder


def _append_all(state: list[str], writes: Sequence[list[str]]) -> list[str]:
    return state + [item for write in writes for item in write]


class DeltaState(TypedDict):
    log: Annotated[list[str], DeltaChannel(_append_all)]


def build_delta_log() -> StateGraph:
    """One node appending ``"<last>-out"`` to a ``DeltaChannel`` list."""

    def step(state: DeltaState) -> dict[str, Any]:
        return {"log": [f"{state['log'][-1]}-out"]}

    builder = StateGraph(DeltaState)
    builder.add_node("step", step)
    builder.add_edge(START, "step")
    builder.add_edge("step", END)
    return builder


@pytest.fixture
def file_saver(any_db: str) -> Iterator[AgentGitSaver]:
    """The sync saver on a SQLite file, then on a Postgres schema."""
    with AgentGitSaver.from_conn_string(any_db) as saver:
        yield saver


@pytest.fixture
def sqlite_saver(db_path: str) -> Iterator[AgentGitSaver]:
    with AgentGitSaver.from_conn_string(db_path) as saver:
        yield saver


def without_interrupt_ids(result: dict[str, Any]) -> dict[str, Any]:
    """An invoke result with each interrupt reduced to its value: interrupt ids are
    derived from checkpoint ids, which differ between savers."""
    interrupts = result.get("__interrupt__")
    if interrupts is None:
        return result
    return {**result, "__interrupt__": [i.value for i in interrupts]}


# --- 1. "__copy__" forks hold the copied checkpoint's values ----------------------------------


@pytest.mark.parametrize("subject", ["agentgit", "memory", "sqlite"])
def test_copy_put_under_an_older_parent_keeps_its_own_values(db_path: str, subject: str) -> None:
    """The saver-level input: C2 copied under C1 with no new versions reads ``"two"``."""

    def run(saver: BaseCheckpointSaver) -> Any:
        c1 = empty_checkpoint()
        c1["id"] = str(uuid6(clock_seq=1))
        c1["channel_values"] = {"x": "one"}
        c1["channel_versions"] = {"x": saver.get_next_version(None, None)}
        config1 = saver.put(
            cfg("t", ns=""), c1, {"source": "loop", "step": 0}, c1["channel_versions"]
        )
        c2 = empty_checkpoint()
        c2["id"] = str(uuid6(clock_seq=2))
        c2["channel_values"] = {"x": "two"}
        c2["channel_versions"] = {"x": saver.get_next_version(c1["channel_versions"]["x"], None)}
        saver.put(config1, c2, {"source": "loop", "step": 1}, c2["channel_versions"])
        copy = {**c2, "id": str(uuid6(clock_seq=3))}
        copied = saver.put(config1, copy, {"source": "fork", "step": 2}, {})  # type: ignore[arg-type]
        found = saver.get_tuple(copied)
        assert found is not None
        return found.checkpoint["channel_values"]

    if subject == "agentgit":
        with AgentGitSaver.from_conn_string(db_path) as saver:
            assert run(saver) == {"x": "two"}
    elif subject == "memory":
        assert run(InMemorySaver()) == {"x": "two"}
    else:
        with closing(sqlite3.connect(db_path, check_same_thread=False)) as conn:
            assert run(SqliteSaver(conn)) == {"x": "two"}


async def test_rerun_from_here_copy_reads_and_runs_like_langgraph(
    saver: AgentGitSaverBase,
) -> None:
    """Studio's "Re-run from here" (``update_state(config, None, as_node="__copy__")``)
    at the checkpoint after ``a``: the copy holds that checkpoint's state, and running it
    ends as on InMemorySaver (it raised ``InvalidUpdateError`` before)."""
    ours, ref = drive(build_two_steps(), saver), reference(build_two_steps())
    results = []
    for driver in (ours, ref):
        config = cfg("t")
        await driver.invoke({"log": ["in"], "last": ""}, config)
        after_a = next(s for s in await driver.history(config) if s.next == ("b",))
        copy = await driver.update_state(after_a.config, None, as_node="__copy__")
        copied = await driver.get_state(copy)
        ran = await driver.invoke(None, copy)
        results.append((copied.values, copied.next, ran))
    assert results[0] == results[1]
    assert results[0][0] == {"log": ["in", "a"], "last": "a"}


async def test_rerun_from_here_at_an_interrupt_asks_again(saver: AgentGitSaverBase) -> None:
    """A copy of the checkpoint waiting on ``ask`` asks again and resumes in order (the
    Agent Server's re-run-from-here; LangGraph's ``test_copy_fork_retriggers_interrupt``)."""
    builder = build_two_steps(ask=True)
    ours, ref = drive(builder, saver), reference(builder)
    results = []
    for driver in (ours, ref):
        config = cfg("t")
        await driver.invoke({"log": [], "last": ""}, config)
        waiting = await driver.get_state(config)
        copy = await driver.update_state(waiting.config, None, as_node="__copy__")
        asked = await driver.invoke(None, copy)
        resumed = await driver.invoke(Command(resume="again"), copy)
        results.append((without_interrupt_ids(asked), resumed))
    assert results[0] == results[1]
    assert results[0][1]["log"] == ["a", "human:again", "b"]


# --- 2. prune keeps what a DeltaChannel is rebuilt from ---------------------------------------


def test_prune_keep_latest_keeps_delta_channel_state(file_saver: AgentGitSaver) -> None:
    graph = build_delta_log().compile(checkpointer=file_saver)
    config = cfg("t")
    graph.invoke({"log": ["in0"]}, config)
    before = graph.get_state(config).values
    file_saver.prune(["t"], strategy="keep_latest")
    assert graph.get_state(config).values == before == {"log": ["in0", "in0-out"]}
    graph.invoke({"log": ["in1"]}, config)
    assert graph.get_state(config).values == {"log": ["in0", "in0-out", "in1", "in1-out"]}
    # Pruning again keeps the newest state whole; a thread with nothing to rebuild from
    # keeps one checkpoint.
    file_saver.prune(["t"], strategy="keep_latest")
    assert graph.get_state(config).values["log"][-2:] == ["in1", "in1-out"]


def test_prune_keep_latest_of_a_fork_whose_source_is_deleted(file_saver: AgentGitSaver) -> None:
    """A fork stops inheriting when pruned: what its delta channel is rebuilt from
    becomes its own, so deleting the source afterwards loses nothing."""
    graph = build_delta_log().compile(checkpointer=file_saver)
    graph.invoke({"log": ["in0"]}, cfg("src"))
    head = graph.get_state(cfg("src")).config["configurable"]["checkpoint_id"]
    file_saver.fork_thread("src", head, "fork")
    graph.invoke({"log": ["in1"]}, cfg("fork"))
    expected = graph.get_state(cfg("fork")).values
    file_saver.prune(["fork"], strategy="keep_latest")
    file_saver.delete_thread("src")
    assert graph.get_state(cfg("fork")).values == expected
    assert expected == {"log": ["in0", "in0-out", "in1", "in1-out"]}


def test_prune_keep_latest_on_a_session_branch(file_saver: AgentGitSaver) -> None:
    graph = build_delta_log().compile(checkpointer=file_saver)
    mgr = SessionManager(file_saver)
    session = mgr.create_session(user_id="u")
    graph.invoke({"log": ["in0"]}, mgr.config(session.id))
    first = mgr.checkpoints(session.id)[-1]
    branch = mgr.rollback(session.id, first.config["configurable"]["checkpoint_id"])
    graph.invoke({"log": ["in1"]}, mgr.config(session.id))
    expected = graph.get_state(mgr.config(session.id)).values
    file_saver.prune([branch.thread_id], strategy="keep_latest")
    assert graph.get_state(mgr.config(session.id)).values == expected
    graph.invoke({"log": ["in2"]}, mgr.config(session.id))
    assert graph.get_state(mgr.config(session.id)).values["log"] == [
        *expected["log"],
        "in2",
        "in2-out",
    ]


# --- 3. channel versions keep one type within a thread ----------------------------------------


async def test_thread_with_langgraph_string_versions_resumes(saver: AgentGitSaverBase) -> None:
    """Versions written as ``"<32 digits>.<random>"`` (InMemorySaver's and the Agent
    Server's format) compare with the ones we write next: resuming the interrupt raised
    ``TypeError: '>' not supported between 'int' and 'str'`` before."""
    builder = build_two_steps(ask=True)
    ours = drive(builder, saver)
    foreign = InMemorySaver().get_next_version
    saver.get_next_version = foreign  # type: ignore[method-assign]
    await ours.invoke({"log": [], "last": ""}, cfg("t"))
    del saver.get_next_version  # back to the class's own
    result = await ours.invoke(Command(resume="yes"), cfg("t"))
    assert result["log"] == ["a", "human:yes", "b"]
    history = await ours.history(cfg("t"))
    stored = [
        v
        for s in history
        for v in (await _tuple_versions(saver, s.config)).values()
        if not isinstance(v, str)
    ]
    assert stored == []


async def _tuple_versions(saver: AgentGitSaverBase, config: Any) -> dict[str, Any]:
    found = await saver_get_tuple(saver, config)
    assert found is not None
    return dict(found.checkpoint["channel_versions"])


def test_versions_are_strings_of_one_order(file_saver: AgentGitSaver) -> None:
    """Our versions are zero-padded strings, so text order is numeric order (LangGraph
    takes ``max`` of them), and an integer version (written by 0.1) continues as one."""
    versions = [file_saver.get_next_version(None, None)]
    for _ in range(11):
        versions.append(file_saver.get_next_version(versions[-1], None))
    assert all(isinstance(v, str) for v in versions)
    assert sorted(versions) == versions and max(versions) == versions[-1]
    assert file_saver.get_next_version("00000000000000000000000000000009.0123", None) > (
        "00000000000000000000000000000009.0123"
    )
    assert file_saver.get_next_version(7, None) == 8


# --- 5. a branch waiting on an interrupt it raised again --------------------------------------


def test_timeline_marks_a_branch_that_asks_again(file_saver: AgentGitSaver) -> None:
    graph = build_approval().compile(checkpointer=file_saver)
    mgr = SessionManager(file_saver)
    session = mgr.create_session(user_id="u")
    graph.invoke({"messages": [("user", "hello")]}, mgr.config(session.id))
    waiting = graph.get_state(mgr.config(session.id))
    assert waiting.interrupts
    graph.invoke(Command(resume="ok"), mgr.config(session.id))
    mgr.rollback(session.id, waiting.config["configurable"]["checkpoint_id"])
    graph.invoke(None, mgr.config(session.id))  # the interrupt fires again
    assert len(graph.get_state(mgr.config(session.id)).interrupts) == 1
    current = mgr.timeline(session.id).current
    assert current is not None and current.interrupted


# --- found by the differential fuzzer (tests/fuzz) --------------------------------------------


def build_join() -> StateGraph:
    """Three parallel nodes joined by a waiting edge (a barrier channel holding a set)."""
    builder = StateGraph(LogState)
    for name in ("a", "b", "c"):
        builder.add_node(name, lambda s, name=name: {"log": [name]})
        builder.add_edge(START, name)
    builder.add_node("join", lambda s: {"log": ["join"]})
    builder.add_edge(["a", "b", "c"], "join")
    builder.add_edge("join", END)
    return builder


def test_barrier_set_is_not_shared_with_older_checkpoints(file_saver: AgentGitSaver) -> None:
    """LangGraph's waiting edge adds to the set it was given in place; the cached set of
    an older checkpoint must not change with it (their ``next`` showed ``join`` early)."""
    histories = []
    for saver in (file_saver, InMemorySaver()):
        graph = build_join().compile(checkpointer=saver)
        graph.update_state(cfg("t"), {"log": ["x"]}, as_node="a")
        graph.update_state(cfg("t"), None, as_node="b")
        graph.invoke({"log": ["go"]}, cfg("t"))
        histories.append(
            [(s.metadata["source"], s.next) for s in graph.get_state_history(cfg("t"))]
        )
    assert histories[0] == histories[1]


def test_copy_keeps_the_callers_config_metadata(file_saver: AgentGitSaver) -> None:
    """``get_tuple`` of a config naming a checkpoint returns that config, as InMemorySaver
    and SqliteSaver do, so a ``"__copy__"`` carries the caller's metadata (a run id)."""
    results = []
    for saver in (file_saver, InMemorySaver()):
        graph = build_two_steps().compile(checkpointer=saver)
        graph.update_state(cfg("t"), {"log": ["x"]}, as_node="a")
        at = graph.get_state(cfg("t")).config
        graph.update_state({**at, "metadata": {"run_id": "run-2"}}, None, as_node="__copy__")
        results.append(graph.get_state(cfg("t")).metadata)
    assert results[0] == results[1]
    assert results[0]["run_id"] == "run-2"


class RunState(TypedDict, total=False):
    items: Annotated[list[str], DeltaChannel(_append_all, snapshot_frequency=3)]


def test_delete_for_runs_keeps_the_delta_values_of_checkpoints_that_stay(
    file_saver: AgentGitSaver,
) -> None:
    builder = StateGraph(RunState)
    builder.add_node("a", lambda s: {"items": ["a"]})
    builder.add_edge(START, "a")
    builder.add_edge("a", END)
    graph = builder.compile(checkpointer=file_saver)
    for run_id in ("run-1", "run-2"):
        graph.invoke({"items": [run_id]}, {**cfg("t"), "metadata": {"run_id": run_id}})
    before = {
        s.config["configurable"]["checkpoint_id"]: s.values
        for s in graph.get_state_history(cfg("t"))
        if s.metadata["run_id"] == "run-2"
    }
    file_saver.delete_for_runs(["run-1"])
    after = {
        s.config["configurable"]["checkpoint_id"]: s.values
        for s in graph.get_state_history(cfg("t"))
    }
    assert after == before and len(after) == 3
    graph.invoke({"items": ["run-3"]}, cfg("t"))
    assert graph.get_state(cfg("t")).values["items"][-2:] == ["run-3", "a"]


def test_a_copy_made_after_a_deleted_run_survives_a_prune_of_its_source(
    file_saver: AgentGitSaver,
) -> None:
    """copy_thread after delete_for_runs: the copied checkpoints rebuild their
    ``DeltaChannel`` values from rows the source keeps out of sight; a later prune of
    the source removed those, and the copy read "a parent checkpoint is missing" (found
    by make fuzz, tests/fuzz/repros/steps_copy_after_deleted_run_prune.txt)."""
    builder = StateGraph(RunState)
    builder.add_node("a", lambda s: {"items": ["a"]})
    builder.add_edge(START, "a")
    builder.add_edge("a", END)
    graph = builder.compile(checkpointer=file_saver)
    for run_id in ("run-1", "run-2", "run-3"):
        graph.invoke({"items": [run_id]}, {**cfg("t"), "metadata": {"run_id": run_id}})
    file_saver.delete_for_runs(["run-2"])
    file_saver.copy_thread("t", "copy")

    def view(thread: str) -> list[tuple[str, Any]]:
        return [
            (s.config["configurable"]["checkpoint_id"], s.values)
            for s in graph.get_state_history(cfg(thread))
        ]

    copied = view("copy")
    assert copied == view("t") and len(copied) == 6
    file_saver.prune(["t"], strategy="keep_latest")
    assert view("copy") == copied
    graph.invoke({"items": ["run-4"]}, cfg("copy"))
    assert graph.get_state(cfg("copy")).values["items"][-2:] == ["run-4", "a"]


def test_a_copy_update_under_a_deleted_parent_keeps_the_delta_values(
    file_saver: AgentGitSaver,
) -> None:
    """``update_state(config, None, as_node="__copy__")`` stores the copy under the
    head's parent. When delete_for_runs had removed that parent, the copy was stored with
    no parent row and its ``DeltaChannel`` value read ``[]`` where InMemorySaver reads the
    head's (found by make fuzz, tests/fuzz/repros/steps_copy_update_under_deleted_parent.txt)."""
    builder = StateGraph(RunState)
    builder.add_node("a", lambda s: {"items": ["a"]})
    builder.add_edge(START, "a")
    builder.add_edge("a", END)
    graph = builder.compile(checkpointer=file_saver)
    graph.update_state({**cfg("t"), "metadata": {"run_id": "run-1"}}, {"items": ["u1"]})
    graph.invoke(None, {**cfg("t"), "metadata": {"run_id": "run-2"}})
    graph.update_state({**cfg("t"), "metadata": {"run_id": "run-3"}}, {"items": ["u3"]})
    file_saver.delete_for_runs(["run-2"])
    file_saver.delete_for_runs(["run-1"])
    head = graph.get_state(cfg("t"))
    assert head.values["items"] == ["u1", "a", "u3"]
    assert len(list(graph.get_state_history(cfg("t")))) == 1
    graph.update_state(head.config, None, as_node="__copy__")
    copy = graph.get_state(cfg("t"))
    assert copy.metadata["source"] == "fork"
    assert copy.values == head.values
    assert copy.parent_config == head.parent_config
    graph.invoke({"items": ["run-4"]}, cfg("t"))
    assert graph.get_state(cfg("t")).values["items"] == ["u1", "a", "u3", "run-4", "a"]


@pytest.mark.parametrize("trim", ["prune", "delete_for_runs"])
def test_a_fork_made_after_trimming_does_not_see_what_was_trimmed(
    file_saver: AgentGitSaver, trim: str
) -> None:
    """Rows a trim hides stay for an older fork that inherits them ("keeper"), but a fork
    made afterwards starts from what the thread shows then, as a copy would."""
    graph = build_two_steps().compile(checkpointer=file_saver)
    for run_id in ("run-1", "run-2"):
        graph.invoke({"log": [run_id], "last": ""}, {**cfg("t"), "metadata": {"run_id": run_id}})
    history = list(graph.get_state_history(cfg("t")))
    keeper_at = next(s for s in history if s.metadata["run_id"] == "run-1")
    file_saver.fork_thread("t", keeper_at.config["configurable"]["checkpoint_id"], "keeper")
    keeper_before = [s.config for s in graph.get_state_history(cfg("keeper"))]
    if trim == "prune":
        file_saver.prune(["t"], strategy="keep_latest")
    else:
        file_saver.delete_for_runs(["run-1"])
    shown = [s.config["configurable"]["checkpoint_id"] for s in graph.get_state_history(cfg("t"))]
    file_saver.fork_thread("t", shown[0], "new")
    new = [s.config["configurable"]["checkpoint_id"] for s in graph.get_state_history(cfg("new"))]
    assert new == shown
    keeper_after = [s.config for s in graph.get_state_history(cfg("keeper"))]
    assert keeper_after == keeper_before


def test_prune_keeps_nothing_for_a_delta_channel_never_written(file_saver: AgentGitSaver) -> None:
    """LangGraph lists a never-written DeltaChannel in its counters, but rebuilds only
    channels with a version: pruning such a thread keeps the latest checkpoint alone."""

    class TwoLogs(TypedDict, total=False):
        log: Annotated[list[str], operator.add]
        unused: Annotated[list[str], DeltaChannel(_append_all)]

    builder = StateGraph(TwoLogs)
    builder.add_node("a", lambda s: {"log": ["a"]})
    builder.add_edge(START, "a")
    builder.add_edge("a", END)
    graph = builder.compile(checkpointer=file_saver)
    graph.invoke({"log": ["in"]}, cfg("t"))
    before = graph.get_state(cfg("t")).values
    file_saver.prune(["t"], strategy="keep_latest")
    assert len(list(graph.get_state_history(cfg("t")))) == 1
    assert graph.get_state(cfg("t")).values == before


def test_a_fork_of_a_pruned_fork_starts_from_what_the_fork_kept(
    file_saver: AgentGitSaver,
) -> None:
    graph = build_two_steps().compile(checkpointer=file_saver)
    graph.invoke({"log": ["x"], "last": ""}, cfg("src"))
    head = graph.get_state(cfg("src")).config["configurable"]["checkpoint_id"]
    file_saver.fork_thread("src", head, "fork")
    file_saver.prune(["fork"], strategy="keep_latest")
    kept = [s.config["configurable"]["checkpoint_id"] for s in graph.get_state_history(cfg("fork"))]
    assert kept == [head]
    file_saver.fork_thread("fork", head, "fork-of-fork")
    again = graph.get_state_history(cfg("fork-of-fork"))
    assert [s.config["configurable"]["checkpoint_id"] for s in again] == kept
    assert len(list(graph.get_state_history(cfg("src")))) == 4  # the source keeps its own


@pytest.mark.parametrize("how", ["resume-at-old", "delete-for-runs"])
def test_a_fork_does_not_see_writes_its_source_stores_later(
    file_saver: AgentGitSaver, how: str
) -> None:
    """The source goes on writing at a checkpoint the fork inherits (a resume addressed
    there, or one after delete_for_runs made it the head again): the fork's history
    stays what it was when the fork was made."""
    builder = StateGraph(LogState)
    builder.add_node("ask", lambda s: {"log": [f"ask:{interrupt('ok?')}"]})
    builder.add_node("done", lambda s: {"log": ["done"]})
    builder.add_edge(START, "ask")
    builder.add_edge("ask", "done")
    builder.add_edge("done", END)
    graph = builder.compile(checkpointer=file_saver)

    def run_cfg(run_id: str) -> Any:
        return {**cfg("t"), "metadata": {"run_id": run_id}}

    graph.invoke({"log": ["first"], "last": ""}, run_cfg("run-1"))
    first_pause = graph.get_state(cfg("t")).config
    graph.invoke({"log": ["second"], "last": ""}, run_cfg("run-2"))
    head = graph.get_state(cfg("t")).config["configurable"]["checkpoint_id"]
    file_saver.fork_thread("t", head, "f")

    def tasks() -> list[Any]:
        history = graph.get_state_history(cfg("f"))
        return [[(t.name, t.result) for t in s.tasks] for s in history]

    before = tasks()
    if how == "resume-at-old":
        graph.invoke(Command(resume="yes"), first_pause)
    else:
        file_saver.delete_for_runs(["run-2"])
        graph.invoke(Command(resume="yes"), run_cfg("run-3"))
    assert tasks() == before


def test_a_fork_keeps_the_interrupt_its_source_replaces_later(file_saver: AgentGitSaver) -> None:
    """A node that asks twice. The source pauses at C on the first question, moves on
    with new input, and is forked at its head. Resuming the source at C answers the
    first question and stores the second interrupt at C, over the first (the fuzzer's
    fanout divergence). The fork's history still shows C waiting on the first question,
    as on a thread copied when the fork was made."""

    def ask(state: LogState) -> dict[str, Any]:
        first = interrupt("first?")
        second = interrupt("second?")
        return {"log": [f"{first}+{second}"]}

    builder = StateGraph(LogState)
    builder.add_node("ask", ask)
    builder.add_edge(START, "ask")
    builder.add_edge("ask", END)
    graph = builder.compile(checkpointer=file_saver)

    def history(thread_id: str) -> list[Any]:
        return [
            (
                s.config["configurable"]["checkpoint_id"],
                [(t.name, [i.value for i in t.interrupts]) for t in s.tasks],
            )
            for s in graph.get_state_history(cfg(thread_id))
        ]

    graph.invoke({"log": ["first"], "last": ""}, cfg("t"))
    pause = graph.get_state(cfg("t")).config
    graph.invoke({"log": ["second"], "last": ""}, cfg("t"))
    head = graph.get_state(cfg("t")).config["configurable"]["checkpoint_id"]
    file_saver.fork_thread("t", head, "f")
    # A fork made at the paused checkpoint itself starts there without the source's
    # writes (it runs the node again); the rewrite must not hand it the old interrupt.
    file_saver.fork_thread("t", pause["configurable"]["checkpoint_id"], "g")
    before = history("f")
    before_g = history("g")
    assert (pause["configurable"]["checkpoint_id"], [("ask", ["first?"])]) in before
    assert before_g[0] == (pause["configurable"]["checkpoint_id"], [("ask", [])])

    graph.invoke(Command(resume="1"), pause)
    replaced = [i.value for i in graph.get_state(pause).interrupts]
    assert replaced == ["second?"]
    assert history("f") == before
    assert history("g") == before_g


def test_pruning_a_source_keeps_the_history_of_its_older_forks(
    file_saver: AgentGitSaver,
) -> None:
    """Found by the fuzzer: a branch made at a thread's head before the thread is pruned
    keeps the whole history it inherited."""
    graph = build_two_steps().compile(checkpointer=file_saver)
    graph.invoke({"log": ["x"], "last": ""}, cfg("src"))
    head = graph.get_state(cfg("src")).config["configurable"]["checkpoint_id"]
    file_saver.fork_thread("src", head, "branch")
    before = [s.config for s in graph.get_state_history(cfg("branch"))]
    file_saver.prune(["src"], strategy="keep_latest")
    assert [s.config for s in graph.get_state_history(cfg("branch"))] == before
    assert len(before) == 4


def test_put_stores_the_values_as_they_were_when_it_was_called(
    sqlite_saver: AgentGitSaver,
) -> None:
    """LangGraph hands put() its live channel values and goes on with the next step,
    which adds to a waiting edge's set in place: what is stored is the set as it was
    when put() was called, even when the write has to wait (here: for the SQLite saver's
    own lock, which is how the wait is arranged)."""
    import threading

    checkpoint = empty_checkpoint()
    checkpoint["id"] = str(uuid6(clock_seq=1))
    checkpoint["channel_values"] = {"join:a+b": {"a"}}
    checkpoint["channel_versions"] = {"join:a+b": sqlite_saver.get_next_version(None, None)}
    stored: list[Any] = []
    with sqlite_saver.lock:
        writer = threading.Thread(
            target=lambda: stored.append(
                sqlite_saver.put(
                    cfg("t", ns=""), checkpoint, {"source": "loop", "step": 0}, {"join:a+b": 1}
                )
            )
        )
        writer.start()
        writer.join(timeout=0.5)
        assert writer.is_alive()  # waiting for the lock, with put() already called
        checkpoint["channel_values"]["join:a+b"].add("b")  # the next step, meanwhile
    writer.join(timeout=30)
    found = sqlite_saver.get_tuple(stored[0])
    assert found is not None and found.checkpoint["channel_values"] == {"join:a+b": {"a"}}


def test_a_fork_after_a_deleted_middle_run_sees_what_its_source_lists(
    file_saver: AgentGitSaver,
) -> None:
    """Found by the fuzzer: with the middle of three runs deleted, the source lists run 3
    then run 1; a fork made at its head afterwards must list the same (it stopped at the
    gap), and so must a rollback branch."""
    graph = build_two_steps().compile(checkpointer=file_saver)
    for run_id in ("run-1", "run-2", "run-3"):
        graph.invoke({"log": [run_id], "last": ""}, {**cfg("t"), "metadata": {"run_id": run_id}})
    file_saver.delete_for_runs(["run-2"])

    def history(thread: str) -> list[Any]:
        return [
            (s.config["configurable"]["checkpoint_id"], s.metadata["run_id"])
            for s in graph.get_state_history(cfg(thread))
        ]

    source = history("t")
    assert {run for _, run in source} == {"run-1", "run-3"}
    file_saver.fork_thread("t", source[0][0], "f")
    assert history("f") == source
    mgr = SessionManager(file_saver)
    session = mgr.adopt("t", user_id="u")
    branch = mgr.rollback(session.id, source[0][0])
    assert history(branch.thread_id) == source


def test_a_fork_of_a_copy_does_not_reach_rows_the_copy_left_out(
    file_saver: AgentGitSaver,
) -> None:
    """Found by the fuzzer: copy_thread copies what its source lists, so after the first
    run was deleted the copy's oldest checkpoint names a parent the copy does not hold. A
    fork of the copy must stop there too (it walked on into the source's hidden row),
    and must not find that row by id either."""
    graph = build_two_steps().compile(checkpointer=file_saver)
    for run_id in ("run-1", "run-2"):
        graph.invoke({"log": [run_id], "last": ""}, {**cfg("t"), "metadata": {"run_id": run_id}})
    first_run = [
        s.config["configurable"]["checkpoint_id"]
        for s in graph.get_state_history(cfg("t"))
        if s.metadata["run_id"] == "run-1"
    ]
    file_saver.delete_for_runs(["run-1"])
    file_saver.copy_thread("t", "c")
    copied = [s.config["configurable"]["checkpoint_id"] for s in graph.get_state_history(cfg("c"))]
    assert copied and not set(copied) & set(first_run)
    file_saver.fork_thread("c", copied[0], "f")
    forked = [s.config["configurable"]["checkpoint_id"] for s in graph.get_state_history(cfg("f"))]
    assert forked == copied
    assert all(file_saver.get_tuple(cfg("f", cid)) is None for cid in first_run)
    assert all(file_saver.get_tuple(cfg("f", cid)) is not None for cid in copied)


def test_a_fork_walks_past_a_deleted_run_to_the_checkpoint_its_source_inherits(
    file_saver: AgentGitSaver,
) -> None:
    """Found by the fuzzer (make fuzz, agent graph): a branch b was forked at t's first
    checkpoint X, ran twice (run-2, run-3), then run-1 (X's run, hidden after b was made:
    b still lists X) and run-2 were deleted. b lists run-3's checkpoints and X. Garbage
    collection dropped run-2's hidden rows because the walk that keeps rows "between two
    listed ones" stopped at b's own boundary, before X; a fork of b then stopped at the
    gap and lost X."""
    graph = build_two_steps().compile(checkpointer=file_saver)

    def run(thread: str, run_id: str) -> None:
        config = {**cfg(thread), "metadata": {"run_id": run_id}}
        graph.invoke({"log": [run_id], "last": ""}, config)

    def history(thread: str) -> list[str]:
        return [
            s.config["configurable"]["checkpoint_id"] for s in graph.get_state_history(cfg(thread))
        ]

    run("t", "run-1")
    first = history("t")[-1]
    file_saver.fork_thread("t", first, "b")
    run("b", "run-2")
    run("b", "run-3")
    file_saver.delete_for_runs(["run-1"])
    file_saver.delete_for_runs(["run-2"])
    listed = history("b")
    assert listed[-1] == first  # b still lists the checkpoint it was forked at
    file_saver.fork_thread("b", listed[0], "c")
    assert history("c") == listed


def test_a_rollback_by_id_after_prune_forks_the_history_the_current_branch_shows(
    file_saver: AgentGitSaver,
) -> None:
    """Found by the fuzzer (make fuzz, agent graph): prune(keep_latest) of a branch copies
    the checkpoint it was forked at into the branch, so that id is held by the branch and
    by its source, with different histories. A rollback naming the bare id while the
    branch is current took the source's copy (the first writer in session order) and
    brought back the history the prune had removed."""
    graph = build_two_steps().compile(checkpointer=file_saver)
    graph.invoke({"log": ["in"], "last": ""}, cfg("t"))
    mgr = SessionManager(file_saver)
    session = mgr.adopt("t")
    middle = list(graph.get_state_history(cfg("t")))[1]
    branch = mgr.rollback(session.id, middle)
    file_saver.prune([branch.thread_id], strategy="keep_latest")
    shown = [
        s.config["configurable"]["checkpoint_id"] for s in graph.get_state_history(branch.config)
    ]
    again = mgr.rollback(session.id, shown[0])
    again_shown = [
        s.config["configurable"]["checkpoint_id"] for s in graph.get_state_history(again.config)
    ]
    assert again_shown == shown


def test_a_rollback_to_a_checkpoint_of_a_named_branch_continues_that_branchs_history(
    file_saver: AgentGitSaver,
) -> None:
    """The fuzzer's delta divergence: branch b inherits main's checkpoints; a run of main
    is then deleted, which hides its rows from main and from forks made of main since,
    not from b. Rolling back to a checkpoint *as b shows it* (a config naming b) must
    continue b's history, as LangGraph's fork of b would; the tree still draws the new
    branch off main, which wrote the checkpoint."""
    graph = build_two_steps().compile(checkpointer=file_saver)
    mgr = SessionManager(file_saver)
    session = mgr.create_session(thread_id="main")
    for run in ("run-1", "run-2", "run-3"):
        graph.invoke({"log": [run], "last": ""}, {**cfg("main"), "metadata": {"run_id": run}})
    after_a = next(
        s.config for s in graph.get_state_history(cfg("main")) if s.values.get("last") == "a"
    )  # run-3's checkpoint after a
    b = mgr.rollback(session.id, after_a["configurable"]["checkpoint_id"], thread_id="b")
    b_history = [
        s.config["configurable"]["checkpoint_id"] for s in graph.get_state_history(cfg("b"))
    ]
    file_saver.delete_for_runs(["run-2"])
    main_history = [
        s.config["configurable"]["checkpoint_id"] for s in graph.get_state_history(cfg("main"))
    ]
    assert len(main_history) < len(b_history) + 2  # run-2's checkpoints left main

    target = {"configurable": {"thread_id": "b", "checkpoint_id": b_history[0]}}
    c = mgr.rollback(session.id, target, thread_id="c")
    c_history = [
        s.config["configurable"]["checkpoint_id"] for s in graph.get_state_history(cfg("c"))
    ]
    assert c_history == b_history
    assert [s.values for s in graph.get_state_history(cfg("c"))] == [
        s.values for s in graph.get_state_history(cfg("b"))
    ]
    assert c.parent_thread_id == "main" and b.parent_thread_id == "main"


def test_a_fork_walks_past_a_deleted_run_on_a_path_other_than_the_latest(
    file_saver: AgentGitSaver,
) -> None:
    """The fuzzer's fanout divergence: a thread's rows form a tree once an update is made
    at an older checkpoint; a run deleted on the older path (not the latest checkpoint's)
    must stay walkable (hidden) for forks made later, which list what the source lists
    below their fork point. LangGraph's fork walks parent links past the deleted run."""
    graph = build_two_steps().compile(checkpointer=file_saver)

    def run(name: str) -> Any:
        return {**cfg("t"), "metadata": {"run_id": name}}

    for name in ("run-1", "run-2", "run-3"):
        graph.invoke({"log": [name], "last": ""}, run(name))
    history = list(graph.get_state_history(cfg("t")))
    by_run = {
        name: [
            s.config["configurable"]["checkpoint_id"]
            for s in history
            if s.metadata.get("run_id") == name
        ]
        for name in ("run-1", "run-2", "run-3")
    }
    # An update at run-1's last checkpoint: the thread's newest checkpoint is now on
    # another path than run-3's.
    run1_last = next(s.config for s in history if s.metadata.get("run_id") == "run-1")
    graph.update_state(run1_last, {"log": ["edited"]}, as_node="b")
    file_saver.delete_for_runs(["run-2"])
    run3_head = by_run["run-3"][0]
    file_saver.fork_thread("t", run3_head, "f")
    forked = [s.config["configurable"]["checkpoint_id"] for s in graph.get_state_history(cfg("f"))]
    assert forked == by_run["run-3"] + by_run["run-1"]
    assert graph.get_state(cfg("f")).values == graph.get_state(cfg("t", run3_head)).values


# --- objects edited in place at any depth -------------------------------------------------


def _editing_chat() -> StateGraph:
    """A chat whose node, from the second turn on, edits older messages in place at
    several depths (a dict attribute, a dict inside one, a content block, a tool call's
    arguments) before answering."""
    from langchain_core.messages import AIMessage
    from langgraph.graph import MessagesState

    def chat(state: MessagesState) -> dict[str, Any]:
        messages = state["messages"]
        turn = len(messages) // 2 + 1
        if turn > 1:
            first, answer = messages[0], messages[1]
            first.additional_kwargs["seen_by"] = f"turn-{turn}"
            answer.response_metadata["usage"]["calls"] += 1
            answer.content[0]["text"] += "!"  # type: ignore[index]
            answer.tool_calls[0]["args"]["n"] = turn
        return {
            "messages": [
                AIMessage(
                    content=[{"type": "text", "text": f"answer {turn}"}],
                    id=f"ai-{turn}",
                    response_metadata={"usage": {"calls": 0}},
                    tool_calls=[{"name": "t", "args": {"n": 0}, "id": f"c-{turn}"}],
                )
            ]
        }

    builder = StateGraph(MessagesState)
    builder.add_node("chat", chat)
    builder.add_edge(START, "chat")
    builder.add_edge("chat", END)
    return builder


def _dumped(snapshot: Any) -> list[dict[str, Any]]:
    return [m.model_dump() for m in snapshot.values["messages"]]


def _run_editing_chat(saver: BaseCheckpointSaver) -> list[list[dict[str, Any]]]:
    from langchain_core.messages import HumanMessage

    graph = _editing_chat().compile(checkpointer=saver)
    for turn in range(1, 4):
        message = HumanMessage(content=f"question {turn}", id=f"h-{turn}")
        graph.invoke({"messages": [message]}, cfg("t"), durability="sync")
    return [_dumped(s) for s in graph.get_state_history(cfg("t"))]


def test_nested_edits_by_a_node_are_stored(any_db: str) -> None:
    """A node editing an older message in place, deep inside (``additional_kwargs[k] =
    v``, a content block's text, a tool call's arguments), changes the checkpoints it
    writes as on InMemorySaver, in this process and after reopening; older checkpoints
    keep what they held. (Only identities of a message's attributes were compared: the
    edit stayed in the process's cache and was lost on restart.)"""
    expected = _run_editing_chat(InMemorySaver())
    assert expected[0][0]["additional_kwargs"] == {"seen_by": "turn-3"}
    assert expected[0][1]["content"][0]["text"] == "answer 1!!"
    assert expected[-3][0]["additional_kwargs"] == {}
    with AgentGitSaver.from_conn_string(any_db) as saver:
        assert _run_editing_chat(saver) == expected
    with AgentGitSaver.from_conn_string(any_db) as saver:
        graph = _editing_chat().compile(checkpointer=saver)
        assert [_dumped(s) for s in graph.get_state_history(cfg("t"))] == expected


def test_nested_edits_of_a_snapshot_do_not_reach_later_reads(any_db: str) -> None:
    """A caller editing a message of a snapshot in place, deep inside, changes neither
    what the next read returns nor what the next checkpoint stores, as on
    InMemorySaver."""
    from langchain_core.messages import HumanMessage

    results = []
    with AgentGitSaver.from_conn_string(any_db) as saver:
        for checkpointer in (InMemorySaver(), saver):
            graph = _editing_chat().compile(checkpointer=checkpointer)
            graph.invoke({"messages": [HumanMessage(content="hi", id="h-1")]}, cfg("t"))
            state = graph.get_state(cfg("t"))
            answer = state.values["messages"][1]
            answer.additional_kwargs["caller"] = "edited"
            answer.content[0]["text"] = "rewritten"
            answer.tool_calls[0]["args"]["n"] = 99
            again = _dumped(graph.get_state(cfg("t")))
            # "sync": each checkpoint is stored before the next node edits in place.
            graph.invoke(
                {"messages": [HumanMessage(content="next", id="h-2")]}, cfg("t"), durability="sync"
            )
            results.append((again, [_dumped(s) for s in graph.get_state_history(cfg("t"))]))
    assert results[1] == results[0]
    assert results[0][0][1]["additional_kwargs"] == {}
    assert results[0][0][1]["content"][0]["text"] == "answer 1"


def test_a_lone_string_for_a_list_of_ids_is_refused(file_saver: AgentGitSaver) -> None:
    """``prune("t")`` iterated the string and pruned threads "t"... one per character,
    silently matching nothing; the same for ``delete_for_runs("run-1")``."""
    graph = build_two_steps().compile(checkpointer=file_saver)
    graph.invoke({"log": ["x"], "last": ""}, {**cfg("t"), "metadata": {"run_id": "r"}})
    before = list(file_saver.list(cfg("t")))
    for call in (
        lambda: file_saver.prune("t"),  # type: ignore[arg-type]
        lambda: file_saver.delete_for_runs("r"),  # type: ignore[arg-type]
        lambda: file_saver.delete_for_runs(None),  # type: ignore[arg-type]
    ):
        with pytest.raises(TypeError, match=r"takes a list of \w+ ids"):
            call()
    assert list(file_saver.list(cfg("t"))) == before
    # SQLite compared "r\x00" up to the NUL and deleted run "r"; PostgreSQL raised a
    # driver error. Refused on both, naming the character.
    for call in (
        lambda: file_saver.delete_for_runs(["r\x00"]),
        lambda: file_saver.prune(["t\x00"]),
    ):
        with pytest.raises(ValueError, match="NUL"):
            call()
    assert list(file_saver.list(cfg("t"))) == before


def test_ids_that_are_not_text_are_refused_not_stringified(any_db: str) -> None:
    """``delete_thread(None)`` deleted the thread named "None" (its text), and
    ``delete_for_runs([None, b"x", {}])`` took each one's text. A string, an int or a
    UUID (what LangGraph configs take) is an id; anything else is a TypeError naming it,
    and nothing is deleted. A session id that is not a string is a TypeError on both
    engines (PostgreSQL raised a driver error), and ``usages("abc")`` is refused rather
    than read as three sessions."""
    import uuid

    from langgraph_agentgit import SessionManager

    with AgentGitSaver.from_conn_string(any_db) as saver:
        graph = build_two_steps().compile(checkpointer=saver)
        for thread in ("None", "7", "b'x'"):
            graph.invoke({"log": ["x"], "last": ""}, {**cfg(thread), "metadata": {"run_id": "r"}})
        kept = {t: len(list(saver.list(cfg(t)))) for t in ("None", "7", "b'x'")}
        for call in (
            lambda: saver.delete_thread(None),  # type: ignore[arg-type]
            lambda: saver.delete_thread(b"x"),  # type: ignore[arg-type]
            lambda: saver.delete_thread(True),  # type: ignore[arg-type]
            lambda: saver.delete_for_runs([None]),  # type: ignore[list-item]
            lambda: saver.delete_for_runs(["r", {}]),  # type: ignore[list-item]
            lambda: saver.prune([None]),  # type: ignore[list-item]
            lambda: saver.prune([b"x"]),  # type: ignore[list-item]
        ):
            with pytest.raises(TypeError, match="must be a string"):
                call()
        assert {t: len(list(saver.list(cfg(t)))) for t in kept} == kept
        # Ints and UUIDs are ids by their text, as in a LangGraph config.
        saver.delete_thread(7)  # type: ignore[arg-type]
        assert list(saver.list(cfg("7"))) == []
        saver.delete_thread(uuid.uuid4())  # type: ignore[arg-type]  # no such thread: nothing
        assert {t: len(list(saver.list(cfg(t)))) for t in ("None", "b'x'")} == {
            t: kept[t] for t in ("None", "b'x'")
        }
        with pytest.raises(ValueError, match="NUL"):
            saver.delete_thread("None\x00y")
        assert len(list(saver.list(cfg("None")))) == kept["None"]
        mgr = SessionManager(saver)
        s = mgr.create_session(name="s")
        for call in (
            lambda: mgr.usage(123),  # type: ignore[arg-type]
            lambda: mgr.branches(123),  # type: ignore[arg-type]
            lambda: mgr.get_session(uuid.uuid4()),  # type: ignore[arg-type]
            lambda: mgr.get_session(None),  # type: ignore[arg-type]
        ):
            with pytest.raises(TypeError, match="session id must be a string"):
                call()
        with pytest.raises(TypeError, match="thread id must be a string"):
            mgr.session_of_thread(1)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="list of session ids"):
            mgr.usages(s.id)
        assert mgr.usages([s.id])[s.id].messages == 0


def test_copies_forks_and_new_threads_refuse_ids_delete_would_refuse(any_db: str) -> None:
    """``copy_thread("src", None)`` made a thread named "None" with the whole history, and
    ``copy_thread(None, ...)`` copied that one; on SQLite a copy, a fork or a graph run
    made a thread whose id holds NUL, which ``delete_thread`` and ``prune`` then refused,
    so nothing could delete it. copy_thread and fork_thread take what delete_thread
    takes; no thread is created under an id holding NUL (PostgreSQL cannot store one)."""
    with AgentGitSaver.from_conn_string(any_db) as saver:
        graph = build_two_steps().compile(checkpointer=saver)
        graph.invoke({"log": ["x"], "last": ""}, cfg("src"))
        head = saver.get_tuple(cfg("src"))
        assert head is not None
        checkpoint_id = head.config["configurable"]["checkpoint_id"]
        for bad in (None, b"src", 1.5):
            with pytest.raises(TypeError, match="must be a string"):
                saver.copy_thread("src", bad)  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="must be a string"):
                saver.copy_thread(bad, "dst")  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="must be a string"):
                saver.fork_thread("src", checkpoint_id, bad)  # type: ignore[arg-type]
        # fork_thread("src", None, ...) forked the latest checkpoint without recording
        # where; 5 was a driver error on PostgreSQL.
        for bad_checkpoint in (None, 5, b"x"):
            with pytest.raises(TypeError, match="checkpoint id must be a string"):
                saver.fork_thread("src", bad_checkpoint, "new")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="checkpoint id is empty"):
            saver.fork_thread("src", "", "new")
        for call in (
            lambda: saver.copy_thread("src", "n\x00l"),
            lambda: saver.fork_thread("src", checkpoint_id, "n\x00l"),
            lambda: graph.invoke({"log": ["x"], "last": ""}, cfg("n\x00l")),
        ):
            with pytest.raises(ValueError, match="NUL"):
                call()
        assert {t.config["configurable"]["thread_id"] for t in saver.list(None)} == {"src"}
        saver.copy_thread("src", 7)  # type: ignore[arg-type]  # an int is an id by its text
        assert len(list(saver.list(cfg("7")))) == len(list(saver.list(cfg("src"))))


async def test_the_async_saver_refuses_ids_that_are_not_text(any_db: str) -> None:
    """``adelete_thread(None)`` deleted the thread named "None", as the sync twin did;
    ``acopy_thread`` and ``afork_thread`` refuse what their sync twins refuse."""
    async with AsyncAgentGitSaver.from_conn_string(any_db) as saver:
        graph = build_two_steps().compile(checkpointer=saver)
        await graph.ainvoke({"log": ["x"], "last": ""}, cfg("None"))
        before = [t async for t in saver.alist(cfg("None"))]
        for bad in (None, True, 1.0, b"None", {"thread": 1}):
            with pytest.raises(TypeError, match="must be a string"):
                await saver.adelete_thread(bad)  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="must be a string"):
                await saver.acopy_thread("None", bad)  # type: ignore[arg-type]
            with pytest.raises(TypeError, match="must be a string"):
                await saver.afork_thread("None", bad, "new")  # type: ignore[arg-type]
        assert [t async for t in saver.alist(cfg("None"))] == before
        assert {t.config["configurable"]["thread_id"] async for t in saver.alist(None)} == {"None"}


def test_a_limit_beyond_sql_integers_lists_everything(any_db: str) -> None:
    """``list(limit=...)`` takes any int, as InMemorySaver does: one past SQL's 64-bit
    LIMIT lists every checkpoint (it was an OverflowError on SQLite, a driver error on
    PostgreSQL); so does ``SessionManager.checkpoints`` and ``sweep``'s limit. A limit
    that is not an int is a TypeError naming it (a float was "datatype mismatch")."""
    from datetime import timedelta

    from graphs import build_chat_graph

    reference_saver = InMemorySaver()
    with AgentGitSaver.from_conn_string(any_db) as saver:
        for checkpointer in (reference_saver, saver):
            graph = build_chat_graph().compile(checkpointer=checkpointer)
            graph.invoke({"messages": [("user", "hi")]}, cfg("t"))
        expected = [t.metadata["step"] for t in reference_saver.list(cfg("t"), limit=10**30)]
        assert expected == [1, 0, -1]
        for limit in (10**30, 2**63):
            assert [t.metadata["step"] for t in saver.list(cfg("t"), limit=limit)] == expected
            assert len(list(saver.list(None, limit=limit))) == 3
        # A bool is an int: True lists one (PostgreSQL refused a boolean LIMIT).
        assert len(list(saver.list(cfg("t"), limit=True))) == 1
        assert list(saver.list(cfg("t"), limit=False)) == []
        with pytest.raises(TypeError, match=r"limit must be an int or None, not float 2\.5"):
            list(saver.list(cfg("t"), limit=2.5))  # type: ignore[arg-type]
        mgr = SessionManager(saver)
        s = mgr.adopt("t")
        assert len(mgr.checkpoints(s.id, limit=10**30)) == 3
        assert saver.sweep(max_age=timedelta(days=1), limit=10**30) == 0
        assert len(mgr.checkpoints(s.id)) == 3
