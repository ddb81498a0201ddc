"""Many writers on one database file: separate processes, threads sharing one saver, and
threads each with their own saver. Nothing may fail with "database is locked", and every
checkpoint written must be present and readable afterwards."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
import traceback
from collections.abc import Callable
from typing import Any

from conftest import cfg, checkpoint_id_of
from graphs import build_chat_graph
from langchain_core.messages import HumanMessage

from langgraph_agentgit import AgentGitSaver, AsyncAgentGitSaver
from langgraph_agentgit.saver_base import AgentGitSaverBase

PROCESSES = 4
TURNS = 10  # three checkpoints per turn: 30 per writer
CHECKPOINTS_PER_TURN = 3


def write_turns(saver: AgentGitSaver, thread: str, turns: int = TURNS) -> None:
    """Run ``turns`` chat turns on ``thread`` and read the state back after each one."""
    graph = build_chat_graph().compile(checkpointer=saver)
    for i in range(turns):
        graph.invoke(
            {"messages": [HumanMessage(f"{thread} says {i}", id=f"{thread}-{i}")]}, cfg(thread)
        )
        # Interleave reads with the other writers' transactions.
        assert len(graph.get_state(cfg(thread)).values["messages"]) == 2 * (i + 1)


def process_worker(path: str, thread: str, start: Any, results: Any) -> None:
    """Entry point of a spawned process: its own connection, its own thread id."""
    try:
        start.wait(timeout=120)  # all processes begin writing together
        with AgentGitSaver.from_conn_string(path) as saver:
            write_turns(saver, thread)
        results.put((thread, None))
    except BaseException:
        results.put((thread, traceback.format_exc()))


def assert_thread_complete(saver: AgentGitSaverBase, thread: str, turns: int = TURNS) -> None:
    """Every checkpoint of ``thread`` is listed, readable by id, and chained to its parent,
    and the final state holds every turn in order."""
    listed = list(saver.list(cfg(thread)))
    assert len(listed) == turns * CHECKPOINTS_PER_TURN
    assert saver.checkpoint_count(thread) == turns * CHECKPOINTS_PER_TURN
    ids = [checkpoint_id_of(t.config) for t in listed]
    for t, parent_id in zip(listed, [*ids[1:], None], strict=True):
        again = saver.get_tuple(t.config)
        assert again is not None and again.checkpoint == t.checkpoint
        assert checkpoint_id_of(t.parent_config) == parent_id
    head = saver.get_tuple(cfg(thread))
    assert head is not None
    texts = [m.content for m in head.checkpoint["channel_values"]["messages"]]
    expected: list[str] = []
    for i in range(turns):
        expected += [f"{thread} says {i}", f"echo {2 * i + 1}: {thread} says {i}"]
    assert texts == expected


def run_threads(target: Callable[[int], None], count: int) -> list[str]:
    """Run ``target(i)`` on ``count`` threads started together; return their tracebacks."""
    errors: list[str] = []
    barrier = threading.Barrier(count)

    def body(i: int) -> None:
        try:
            barrier.wait(timeout=60)
            target(i)
        except BaseException:
            errors.append(traceback.format_exc())

    threads = [threading.Thread(target=body, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_processes_write_one_file_at_once(db_path: str) -> None:
    """4 spawned processes x 30 checkpoints, each on its own thread, all at once, on a
    brand-new file: they also race to create the schema."""
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(PROCESSES)
    results = ctx.Queue()
    threads = [f"proc-{i}" for i in range(PROCESSES)]
    procs = [
        ctx.Process(target=process_worker, args=(db_path, thread, start, results))
        for thread in threads
    ]
    for p in procs:
        p.start()
    outcomes = dict(results.get(timeout=300) for _ in procs)
    for p in procs:
        p.join(timeout=60)

    assert sorted(outcomes) == threads
    failures = {thread: tb for thread, tb in outcomes.items() if tb is not None}
    assert not failures, "\n".join(f"{t}:\n{tb}" for t, tb in failures.items())
    assert all(p.exitcode == 0 for p in procs)
    with AgentGitSaver.from_conn_string(db_path) as saver:
        for thread in threads:
            assert_thread_complete(saver, thread)
        assert len(list(saver.list(None))) == PROCESSES * TURNS * CHECKPOINTS_PER_TURN


def test_threads_share_one_saver(sync_saver: AgentGitSaver) -> None:
    """Several Python threads drive graphs through one AgentGitSaver instance (one sqlite3
    connection), while another thread keeps reading the whole database."""
    stop = threading.Event()
    read_errors: list[str] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                for t in sync_saver.list(None, limit=20):
                    assert sync_saver.get_tuple(t.config) is not None
        except BaseException:
            read_errors.append(traceback.format_exc())

    watcher = threading.Thread(target=reader)
    watcher.start()
    try:
        errors = run_threads(lambda i: write_turns(sync_saver, f"shared-{i}"), 4)
    finally:
        stop.set()
        watcher.join()

    assert not errors, "\n".join(errors)
    assert not read_errors, "\n".join(read_errors)
    for i in range(4):
        assert_thread_complete(sync_saver, f"shared-{i}")


def test_threads_each_with_their_own_saver(db_path: str) -> None:
    """Several threads, each with its own AgentGitSaver (own connection) on one file."""

    def own_saver(i: int) -> None:
        with AgentGitSaver.from_conn_string(db_path) as saver:
            write_turns(saver, f"own-{i}")

    errors = run_threads(own_saver, 4)

    assert not errors, "\n".join(errors)
    with AgentGitSaver.from_conn_string(db_path) as saver:
        for i in range(4):
            assert_thread_complete(saver, f"own-{i}")


def test_threads_fork_and_write_while_others_write(sync_saver: AgentGitSaver) -> None:
    """Forks taken from one thread while other threads write into the same file each get
    the exact state of the checkpoint they were taken at."""
    write_turns(sync_saver, "base", turns=3)
    base = list(sync_saver.list(cfg("base")))

    def work(i: int) -> None:
        if i % 2:
            write_turns(sync_saver, f"busy-{i}", turns=4)
            return
        for j, t in enumerate(base):
            cid = checkpoint_id_of(t.config)
            assert cid is not None
            sync_saver.fork_thread("base", cid, f"fork-{i}-{j}")
            head = sync_saver.get_tuple(cfg(f"fork-{i}-{j}"))
            assert head is not None and head.checkpoint == t.checkpoint

    errors = run_threads(work, 4)

    assert not errors, "\n".join(errors)
    for i in (1, 3):
        assert_thread_complete(sync_saver, f"busy-{i}", turns=4)
    assert list(sync_saver.list(cfg("base"))) == base


async def test_async_saver_runs_many_graphs_at_once(async_saver: AsyncAgentGitSaver) -> None:
    """Concurrent ``ainvoke`` runs on one AsyncAgentGitSaver (one aiosqlite connection)
    interleave their writes without losing or mixing any checkpoint."""
    graph = build_chat_graph().compile(checkpointer=async_saver)

    async def turns(thread: str) -> None:
        for i in range(TURNS):
            message = HumanMessage(f"{thread} says {i}", id=f"{thread}-{i}")
            await graph.ainvoke({"messages": [message]}, cfg(thread))

    threads = [f"task-{i}" for i in range(4)]
    await asyncio.gather(*(turns(thread) for thread in threads))

    # Check through the sync API from a worker thread, with the same helper as above.
    for thread in threads:
        await asyncio.to_thread(assert_thread_complete, async_saver, thread)


def open_fresh_files_worker(paths: list[str], start: Any, results: Any) -> None:
    """Opens each of ``paths`` (brand-new files) at the same moment as the other
    processes, round after round."""
    failures = []
    for path in paths:
        try:
            start.wait(timeout=120)
            with AgentGitSaver.from_conn_string(path) as saver:
                saver.get_tuple(cfg("t"))
        except Exception:
            failures.append(traceback.format_exc())
    results.put(failures)


def test_processes_creating_one_new_file_at_once(tmp_path: Any) -> None:
    """Several processes opening the same new file together all succeed: switching it to
    WAL and creating the schema race, and the loser must wait, not fail."""
    ctx = multiprocessing.get_context("spawn")
    processes = 6
    paths = [str(tmp_path / f"fresh-{i}.db") for i in range(8)]
    start = ctx.Barrier(processes)
    results = ctx.Queue()
    workers = [
        ctx.Process(target=open_fresh_files_worker, args=(paths, start, results))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    failures = [f for _ in workers for f in results.get(timeout=300)]
    for worker in workers:
        worker.join(timeout=60)
    assert not failures, failures[0]
