"""The server workload: many threads, most of them cold.

A chat server serves many users; most requests touch a thread that is not in the
process's memory (another worker served the previous turn, or the process restarted).
So: K threads x T turns are written once per storage (AgentGitSaver's and SqliteSaver's
files, and on Postgres both schemas), then fresh worker processes (``python -m
benchmarks.server``) each open a saver and, on threads picked at random (seeded, see
:func:`pick_threads`):

* **cold get_state**: the first read of a thread;
* **cold turn**: one turn on a thread never read in this process;
* **warm turn**: a second turn on each of those threads.

A second measure, **cold get_state by thread length**, reads threads of many lengths
(5 to 80 turns) once each in fresh processes, on SQLite: the two shapes above each sit
at one point of the saver's cycle of list indexes, and a cold read costs most just
before the next index.

Before measuring, a worker reads one thread outside the sample so that opening the
connection, the first query plans and imports are not charged to the first sample. The
sync and async savers of one storage read the same database (their formats are the
same), each in its own processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from benchmarks import postgres
from benchmarks.fake_models import user_message
from benchmarks.workloads import (
    SAVER_KINDS,
    SaverKind,
    build_graph,
    open_async_saver,
    open_saver,
    remove_db,
    thread_config,
)

ROOT = Path(__file__).resolve().parent.parent

#: The savers of the server workload, grouped by the storage they read (built once).
SERVER_SAVERS: dict[str, tuple[str, ...]] = {
    "sqlite": ("sqlite", "sqlite_async"),
    "agentgit": ("agentgit", "agentgit_async"),
    "postgres": ("postgres", "postgres_async"),
    "agentgit_pg": ("agentgit_pg", "agentgit_pg_async"),
}


def thread_name(k: int) -> str:
    return f"user-{k:05d}"


def build_storage(kind: SaverKind, location: str, threads: int, turns: int) -> float:
    """Write ``threads`` x ``turns`` chat turns with ``kind``'s sync saver; seconds taken.
    Turns are interleaved across threads, as users' requests arrive."""
    started = time.perf_counter()
    with open_saver(kind.backend, location) as saver:
        graph = build_graph("chat").compile(checkpointer=saver)
        for turn in range(1, turns + 1):
            for k in range(threads):
                graph.invoke(
                    {"messages": [user_message(turn, seed=k)]}, thread_config(thread_name(k))
                )
    return time.perf_counter() - started


def pick_threads(
    threads: int, picks: int, worker: int, workers: int
) -> tuple[list[str], list[str], str]:
    """The threads one worker reads cold, the threads it runs turns on, and its warm-up
    thread. Threads are shuffled once (seeded); the warm-up and cold-read threads are the
    same for every worker (a read leaves nothing behind in the database, and each worker
    is a new process), the turn threads are each worker's own, so that every cold turn
    runs on a thread of exactly ``turns`` turns no process has seen. With few threads
    (K=20) that leaves each worker few turn threads."""
    names = [thread_name(k) for k in range(threads)]
    random.Random(threads).shuffle(names)
    reads = min(picks, max(1, threads // 4))
    rest = names[1 + reads :]
    per_worker = min(picks, len(rest) // workers)
    if per_worker < 1:
        raise ValueError(f"{threads} threads are too few for {workers} workers")
    mine = rest[worker * per_worker : (worker + 1) * per_worker]
    return names[1 : 1 + reads], mine, names[0]


def _timed(samples: list[float], fn: Callable[..., Any], *args: Any) -> None:
    t0 = time.perf_counter()
    fn(*args)
    samples.append(1000 * (time.perf_counter() - t0))


def _check_turns(thread: str, values: dict[str, Any], turn_number: int) -> None:
    """The measured turns were stored: a thread built with ``turn_number - 1`` turns and
    given two more holds two messages per turn."""
    found = len(values.get("messages", []))
    if found != 2 * (turn_number + 1):
        raise RuntimeError(
            f"thread {thread} holds {found} messages after the measured turns, "
            f"not {2 * (turn_number + 1)}"
        )


def measure_sync(
    kind: SaverKind,
    location: str,
    reads: Sequence[str],
    turns: Sequence[str],
    warmup: str,
    turn_number: int,
) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"cold_get_state": [], "cold_turn": [], "warm_turn": []}
    with open_saver(kind.backend, location) as saver:
        graph = build_graph("chat").compile(checkpointer=saver)
        graph.get_state(thread_config(warmup))
        for name in reads:
            _timed(out["cold_get_state"], graph.get_state, thread_config(name))
        for offset, key in enumerate(("cold_turn", "warm_turn")):
            for k, name in enumerate(turns):
                message = {"messages": [user_message(turn_number + offset, seed=k)]}
                _timed(out[key], graph.invoke, message, thread_config(name))
        for name in turns:
            _check_turns(name, graph.get_state(thread_config(name)).values, turn_number)
    return out


async def measure_async(
    kind: SaverKind,
    location: str,
    reads: Sequence[str],
    turns: Sequence[str],
    warmup: str,
    turn_number: int,
) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"cold_get_state": [], "cold_turn": [], "warm_turn": []}
    async with open_async_saver(kind.backend, location) as saver:
        graph = build_graph("chat").compile(checkpointer=saver)
        await graph.aget_state(thread_config(warmup))
        for name in reads:
            t0 = time.perf_counter()
            await graph.aget_state(thread_config(name))
            out["cold_get_state"].append(1000 * (time.perf_counter() - t0))
        for offset, key in enumerate(("cold_turn", "warm_turn")):
            for k, name in enumerate(turns):
                message = {"messages": [user_message(turn_number + offset, seed=k)]}
                t0 = time.perf_counter()
                await graph.ainvoke(message, thread_config(name))
                out[key].append(1000 * (time.perf_counter() - t0))
        for name in turns:
            _check_turns(name, (await graph.aget_state(thread_config(name))).values, turn_number)
    return out


def run_worker(
    saver: str, location: str, threads: int, turns: int, picks: int, worker: int, workers: int
) -> dict[str, list[float]]:
    """One measuring process's work (see the module docstring)."""
    kind = SAVER_KINDS[saver]
    reads, turn_threads, warmup = pick_threads(threads, picks, worker, workers)
    if kind.is_async:
        return asyncio.run(measure_async(kind, location, reads, turn_threads, warmup, turns + 1))
    return measure_sync(kind, location, reads, turn_threads, warmup, turns + 1)


def spawn_worker(
    saver: str, location: str, threads: int, turns: int, picks: int, worker: int, workers: int
) -> dict[str, list[float]]:
    """:func:`run_worker` in a new Python process: nothing cached, as after a restart."""
    args = [saver, location, str(threads), str(turns), str(picks), str(worker), str(workers)]
    result: dict[str, list[float]] = _spawn(*args)
    return result


#: The savers the thread-length sweep compares (sync, on SQLite).
LENGTH_SAVERS = ("sqlite", "agentgit")
_LENGTH_WARMUP = "len-warmup"


def length_thread(turns: int, k: int) -> str:
    return f"len-{turns:03d}-{k:02d}"


def build_lengths(kind: SaverKind, location: str, lengths: Sequence[int], per_length: int) -> float:
    """``per_length`` threads of each length (and a warm-up thread), turns interleaved
    across threads as users' requests arrive, each thread stopping at its length;
    seconds taken."""
    started = time.perf_counter()
    with open_saver(kind.backend, location) as saver:
        graph = build_graph("chat").compile(checkpointer=saver)
        for turn in range(1, max(lengths) + 1):
            for length in lengths:
                for k in range(per_length if turn <= length else 0):
                    message = {"messages": [user_message(turn, seed=1000 * length + k)]}
                    graph.invoke(message, thread_config(length_thread(length, k)))
        for turn in range(1, 4):
            graph.invoke({"messages": [user_message(turn)]}, thread_config(_LENGTH_WARMUP))
    return time.perf_counter() - started


def measure_lengths(
    saver: str, location: str, lengths: Sequence[int], per_length: int
) -> dict[str, list[float]]:
    """In this (new) process: one get_state of every thread, after a warm-up read of a
    thread outside the sample; samples (ms) per length. Each read is checked to hold
    the thread's two messages per turn."""
    kind = SAVER_KINDS[saver]
    out: dict[str, list[float]] = {str(length): [] for length in lengths}
    with open_saver(kind.backend, location) as opened:
        graph = build_graph("chat").compile(checkpointer=opened)
        graph.get_state(thread_config(_LENGTH_WARMUP))
        for k in range(per_length):
            for length in lengths:
                config = thread_config(length_thread(length, k))
                t0 = time.perf_counter()
                state = graph.get_state(config)
                out[str(length)].append(1000 * (time.perf_counter() - t0))
                if len(state.values.get("messages", [])) != 2 * length:
                    raise RuntimeError(f"{length_thread(length, k)} does not hold {length} turns")
    return out


def run_length_sweep(
    lengths: Sequence[int], per_length: int, reps: int, workdir: Path, log: Callable[[str], None]
) -> dict[str, Any]:
    """Cold get_state by thread length: per saver of :data:`LENGTH_SAVERS`, a list of
    runs (one new process each, savers interleaved), each holding samples per length."""
    runs: dict[str, list[dict[str, list[float]]]] = {}
    with contextlib.ExitStack() as stack:
        locations = {}
        for saver in LENGTH_SAVERS:
            path = workdir / f"server-lengths-{saver}.db"
            remove_db(path)
            stack.callback(remove_db, path)
            seconds = build_lengths(SAVER_KINDS[saver], str(path), lengths, per_length)
            log(f"server lengths: built {saver} in {seconds:.1f} s")
            locations[saver] = str(path)
        for _ in range(reps):
            for saver in LENGTH_SAVERS:
                args = [saver, locations[saver], ",".join(map(str, lengths)), str(per_length)]
                runs.setdefault(saver, []).append(_spawn("lengths", *args))
    return {"lengths": list(lengths), "per_length": per_length, "runs": runs}


def _spawn(*args: str) -> Any:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.server", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"server worker {args[:2]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_server_shape(
    threads: int,
    turns: int,
    picks: int,
    reps: int,
    workdir: Path,
    groups: Sequence[str],
    postgres_url: str | None,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Every saver of ``groups`` on one shape: per saver, a list of runs (one worker
    process each, the same picks for every saver in a repetition), each holding the
    samples in ms. Repetitions interleave savers, so background load spreads evenly."""
    out: dict[str, Any] = {}
    with _storages(groups, threads, turns, workdir, postgres_url, log) as locations:
        for rep in range(reps):
            for group in groups:
                for saver in SERVER_SAVERS[group]:
                    workers = reps * len(SERVER_SAVERS[group])
                    worker = rep * len(SERVER_SAVERS[group]) + SERVER_SAVERS[group].index(saver)
                    samples = spawn_worker(
                        saver, locations[group], threads, turns, picks, worker, workers
                    )
                    out.setdefault(saver, []).append(samples)
    return out


@contextlib.contextmanager
def _storages(
    groups: Sequence[str],
    threads: int,
    turns: int,
    workdir: Path,
    postgres_url: str | None,
    log: Callable[[str], None],
) -> Iterator[dict[str, str]]:
    """Each group's database, built once; files removed and schemas dropped afterwards
    (also when a build fails half-way)."""
    with contextlib.ExitStack() as stack:
        locations: dict[str, str] = {}
        for group in groups:
            kind = SAVER_KINDS[SERVER_SAVERS[group][0]]
            if kind.postgres:
                if postgres_url is None:
                    raise ValueError(f"{kind.label} needs a PostgreSQL server")
                location = stack.enter_context(postgres.fresh_schema(postgres_url)).url
            else:
                path = workdir / f"server-{group}-{threads}x{turns}.db"
                remove_db(path)
                stack.callback(remove_db, path)
                location = str(path)
            seconds = build_storage(kind, location, threads, turns)
            log(f"server {threads}x{turns}: built {group} in {seconds:.1f} s")
            locations[group] = location
        yield locations


if __name__ == "__main__":
    if sys.argv[1] == "lengths":
        saver_key, where, lengths_csv, n_per_length = sys.argv[2:6]
        lengths_read = [int(n) for n in lengths_csv.split(",")]
        print(json.dumps(measure_lengths(saver_key, where, lengths_read, int(n_per_length))))
        sys.exit(0)
    saver_key, where, k_threads, t_turns, n_picks, n_worker, n_workers = sys.argv[1:8]
    result = run_worker(
        saver_key,
        where,
        int(k_threads),
        int(t_turns),
        int(n_picks),
        int(n_worker),
        int(n_workers),
    )
    print(json.dumps(result))
