"""Run every benchmark workload and write `docs/benchmarks.md` and `docs/benchmarks.json`.

python -m benchmarks.run              # the full run (about a quarter of an hour on 2 idle CPUs)
python -m benchmarks.run --smoke      # every workload at a tiny size, in seconds
python -m benchmarks.run --out /tmp/bench.md --workloads chat,branching
python -m benchmarks.run --postgres postgresql://user@host/db   # the Postgres rows' server
python -m benchmarks.run --postgres off                          # no Postgres rows

The chat workload's PostgreSQL rows (AgentGitSaver and AsyncAgentGitSaver on PostgreSQL,
LangGraph's PostgresSaver and AsyncPostgresSaver) run on the server at --postgres
(default: $AGENTGIT_BENCH_POSTGRES, else $AGENTGIT_TEST_POSTGRES, else
postgresql://postgres@127.0.0.1:5432/test), each run in a fresh schema dropped afterwards.
Where no server answers they are skipped, with one line saying why.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import langgraph_agentgit
from benchmarks import postgres, report, server, web
from benchmarks import search as search_bench
from benchmarks.workloads import (
    SAVER_KINDS,
    BranchCase,
    available_cpus,
    run_branching,
    run_concurrency,
    run_conversation,
    run_delete_cost,
    run_lifecycle,
)

ROOT = Path(__file__).resolve().parent.parent
WORKLOADS = ("chat", "tool", "branching", "concurrency", "server", "lifecycle", "web", "search")
PACKAGES = (
    "langgraph-agentgit",
    "langgraph",
    "langgraph-checkpoint",
    "langgraph-checkpoint-sqlite",
    "langgraph-prebuilt",
    "langchain-core",
    "aiosqlite",
    "ormsgpack",
    "langgraph-checkpoint-postgres",
    "psycopg",
    "psycopg-pool",
)


@dataclass(frozen=True)
class Override:
    """A row run fewer times than the plan says (0: not at all), and why."""

    reps: int
    why: str
    read_history: bool = True


@dataclass(frozen=True)
class Plan:
    """What to run and how often."""

    mode: str
    reps: int
    chat_turns: tuple[int, ...]
    chat_savers: tuple[str, ...]
    tool_turns: tuple[int, ...]
    tool_savers: tuple[str, ...]
    branch_cases: tuple[BranchCase, ...]
    fork_ops: int
    concurrency_backends: tuple[str, ...]
    concurrency_processes: tuple[int, ...]
    concurrency_threads: int
    concurrency_turns: int
    # The sizes the targets are judged at.
    target_turns: int
    long_turns: int
    fork_small: str
    fork_large: str
    # The server workload: (threads, turns) shapes, threads picked per measure, runs.
    server_shapes: tuple[tuple[int, int], ...] = ()
    server_picks: int = 0
    server_reps: int = 0
    # Cold get_state by thread length: these lengths (turns), threads of each.
    server_lengths: tuple[int, ...] = ()
    server_length_threads: int = 0
    # The data-lifecycle workload: a SqliteSaver chat of this many turns, run once.
    lifecycle_turns: int = 0
    # Deleting one session from databases of these many sessions (of this many
    # checkpoints each), this many times.
    delete_sessions: tuple[int, ...] = ()
    delete_per_session: int = 0
    delete_reps: int = 0
    # The web workload: a session of this many branches and checkpoints, page renders.
    web_branches: int = 0
    web_checkpoints: int = 0
    web_reps: int = 0
    # The message index: the chat's turns with it on and off, and the large database
    # searched (SQLite; PostgreSQL builds a smaller one: its inserts are slower).
    search_turns: int = 0
    search_reps: int = 0
    search_sessions: int = 0
    search_pg_sessions: int = 0
    search_per_session: int = 0
    search_query_reps: int = 0
    # (workload, saver, turns) -> fewer runs, or none, or no history read.
    overrides: Mapping[tuple[str, str, int], Override] = field(default_factory=dict)

    def override(self, workload: str, saver: str, turns: int) -> Override:
        return self.overrides.get((workload, saver, turns), Override(self.reps, ""))


_QUADRATIC = (
    "its cost grows with the square of the number of turns (every checkpoint stores the "
    "whole message list)"
)

FULL = Plan(
    mode="full",
    reps=3,
    chat_turns=(50, 200, 1000),
    chat_savers=(
        "floor",
        "memory",
        "sqlite",
        "sqlite_async",
        "sqlite_delta",
        "agentgit",
        "agentgit_async",
        "agentgit_delta",
        "postgres",
        "postgres_async",
        "agentgit_pg",
        "agentgit_pg_async",
    ),
    tool_turns=(50, 200, 1000),
    tool_savers=("floor", "sqlite", "sqlite_delta", "agentgit", "agentgit_async", "agentgit_delta"),
    branch_cases=(
        BranchCase("chain-10", "hand-built thread of 10", "chain", 10),
        BranchCase("chain-1000", "hand-built thread of 1,000", "chain", 1_000),
        BranchCase("chain-10000", "hand-built thread of 10,000", "chain", 10_000),
        BranchCase("chat-200", "200-turn chat", "chat", 200),
    ),
    fork_ops=25,
    concurrency_backends=("agentgit", "sqlite"),
    concurrency_processes=(1, 2, 4),
    concurrency_threads=2,
    concurrency_turns=50,
    target_turns=200,
    long_turns=1000,
    fork_small="chain-10",
    fork_large="chain-10000",
    server_shapes=((200, 40), (20, 200)),
    server_picks=25,
    server_reps=3,
    server_lengths=(5, 10, 15, 20, 25, 30, 40, 50, 60, 80),
    server_length_threads=6,
    lifecycle_turns=1000,
    delete_sessions=(10, 10_000),
    delete_per_session=10,
    delete_reps=5,
    web_branches=50,
    web_checkpoints=2000,
    web_reps=15,
    search_turns=200,
    search_reps=3,
    search_sessions=10_000,
    search_pg_sessions=1_000,
    search_per_session=100,
    search_query_reps=20,
    overrides={
        ("chat", "sqlite", 1000): Override(
            1,
            "one run only: it takes one to two minutes and writes a 2 GB file; " + _QUADRATIC,
        ),
        ("chat", "sqlite_async", 1000): Override(
            0, f"not run: it would take minutes; {_QUADRATIC}"
        ),
        ("chat", "memory", 1000): Override(
            0,
            "not run: its history read alone takes over a minute (every checkpoint "
            "deserializes the whole message list)",
        ),
        ("chat", "sqlite_delta", 1000): Override(
            1,
            "one run, history read skipped: with a DeltaChannel, LangGraph rebuilds every "
            "snapshot of the history by replaying writes, which took about 70 s for this "
            "saver in a trial run on this machine",
            read_history=False,
        ),
        ("chat", "postgres", 1000): Override(
            0, f"not run: its history read alone would take minutes; {_QUADRATIC}"
        ),
        ("chat", "postgres_async", 1000): Override(
            0, f"not run: its history read alone would take minutes; {_QUADRATIC}"
        ),
        ("chat", "agentgit_pg", 1000): Override(
            1, "one run, to keep the whole benchmark near a quarter of an hour"
        ),
        ("chat", "agentgit_pg_async", 1000): Override(
            0, "not run, to keep the whole benchmark near a quarter of an hour"
        ),
        ("tool", "sqlite", 1000): Override(0, f"not run: it would take minutes; {_QUADRATIC}"),
        ("tool", "sqlite_delta", 1000): Override(
            0, "not run, to keep the whole benchmark near a quarter of an hour (see chat)"
        ),
        ("tool", "agentgit_delta", 1000): Override(
            1, "one run, to keep the whole benchmark near a quarter of an hour"
        ),
    },
)


SMOKE = Plan(
    mode="smoke",
    reps=1,
    chat_turns=(5,),
    chat_savers=FULL.chat_savers,
    tool_turns=(6,),  # turn 6 is the first with parallel tool calls
    tool_savers=FULL.tool_savers,
    branch_cases=(
        BranchCase("chain-10", "hand-built thread of 10", "chain", 10),
        BranchCase("chain-50", "hand-built thread of 50", "chain", 50),
        BranchCase("chat-5", "5-turn chat", "chat", 5),
    ),
    fork_ops=3,
    concurrency_backends=("agentgit", "sqlite"),
    concurrency_processes=(2,),
    concurrency_threads=2,
    concurrency_turns=3,
    target_turns=5,
    long_turns=5,
    fork_small="chain-10",
    fork_large="chain-50",
    server_shapes=((4, 3),),
    server_picks=1,
    server_reps=1,
    server_lengths=(2, 3),
    server_length_threads=1,
    lifecycle_turns=5,
    delete_sessions=(10, 100),
    delete_per_session=3,
    delete_reps=2,
    web_branches=3,
    web_checkpoints=30,
    web_reps=1,
    search_turns=5,
    search_reps=1,
    search_sessions=20,
    search_pg_sessions=10,
    search_per_session=10,
    search_query_reps=2,
)


class Progress:
    """Timestamped progress lines on stderr (the run takes minutes)."""

    def __init__(self, quiet: bool = False) -> None:
        self.started = time.perf_counter()
        self.quiet = quiet

    def __call__(self, message: str) -> None:
        if not self.quiet:
            print(f"[{self.elapsed():7.1f}s] {message}", file=sys.stderr, flush=True)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started


# --- running ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PostgresTarget:
    """The server the Postgres rows run on, or why they do not run."""

    url: str | None
    why_not: str | None = None


def run_conversations(
    plan: Plan, workload: str, workdir: Path, log: Progress, pg: PostgresTarget
) -> dict[str, dict[str, Any]]:
    """Every (turns, saver) of ``workload``; repetitions interleaved across savers so that
    background load on a shared machine spreads over all rows rather than a few."""
    savers = plan.chat_savers if workload == "chat" else plan.tool_savers
    sizes = plan.chat_turns if workload == "chat" else plan.tool_turns
    out: dict[str, dict[str, Any]] = {}
    for turns in sizes:
        entries: dict[str, Any] = {}
        for saver in savers:
            override = plan.override(workload, saver, turns)
            if SAVER_KINDS[saver].postgres and pg.why_not:
                override = Override(0, "not run: no PostgreSQL server (see Machine)")
            entries[saver] = {
                "runs": [],
                "skipped": override.why if override.reps == 0 else None,
                "note": override.why or None,
            }
        for rep in range(max(plan.override(workload, s, turns).reps for s in savers)):
            for saver in savers:
                override = plan.override(workload, saver, turns)
                if rep >= override.reps or entries[saver]["skipped"]:
                    continue
                t0 = time.perf_counter()
                result = run_conversation(
                    workload,
                    SAVER_KINDS[saver],
                    turns,
                    workdir,
                    read_history=override.read_history,
                    postgres_url=pg.url,
                )
                entries[saver]["runs"].append(result)
                log(
                    f"{workload} {turns} turns, {saver} run {rep + 1}: "
                    f"{time.perf_counter() - t0:.1f} s, last-10 {result['last10_ms']:.1f} ms"
                )
        for entry in entries.values():
            entry["summary"] = report.summarize_runs(entry["runs"])
        out[str(turns)] = entries
    return out


def run_branching_cases(plan: Plan, workdir: Path, log: Progress) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for case in plan.branch_cases:
        t0 = time.perf_counter()
        runs = run_branching(case, plan.reps, plan.fork_ops, workdir)
        out[case.key] = {
            "label": case.label,
            "runs": runs,
            "summary": report.summarize_runs(runs),
        }
        log(f"branching {case.key}: {time.perf_counter() - t0:.1f} s")
    return out


def run_concurrency_matrix(plan: Plan, workdir: Path, log: Progress) -> dict[str, Any]:
    out: dict[str, dict[str, Any]] = {
        b: {str(p): {"runs": []} for p in plan.concurrency_processes}
        for b in plan.concurrency_backends
    }
    for rep in range(plan.reps):
        for processes in plan.concurrency_processes:
            for backend in plan.concurrency_backends:
                result = run_concurrency(
                    backend,
                    processes,
                    plan.concurrency_threads,
                    plan.concurrency_turns,
                    workdir,
                )
                out[backend][str(processes)]["runs"].append(result)
                log(
                    f"concurrency {backend} x{processes} run {rep + 1}: "
                    f"{result['checkpoints_per_s']:.0f} checkpoints/s, {result['errors']} errors"
                )
    for by_procs in out.values():
        for entry in by_procs.values():
            entry["summary"] = report.summarize_runs(entry["runs"])
    return out


def run_server_matrix(
    plan: Plan, workdir: Path, log: Progress, pg: PostgresTarget
) -> dict[str, Any]:
    """Every server shape; the Postgres groups only where a server answers."""
    groups = [
        g for g in server.SERVER_SAVERS if not (g in ("postgres", "agentgit_pg") and pg.why_not)
    ]
    out: dict[str, Any] = {"picks": plan.server_picks, "shapes": {}}
    for threads, turns in plan.server_shapes:
        t0 = time.perf_counter()
        runs = server.run_server_shape(
            threads, turns, plan.server_picks, plan.server_reps, workdir, groups, pg.url, log
        )
        out["shapes"][f"{threads}x{turns}"] = {"threads": threads, "turns": turns, "runs": runs}
        log(f"server {threads}x{turns}: {time.perf_counter() - t0:.1f} s")
    if plan.server_lengths:
        t0 = time.perf_counter()
        out["lengths"] = server.run_length_sweep(
            plan.server_lengths, plan.server_length_threads, plan.server_reps, workdir, log
        )
        log(f"server lengths: {time.perf_counter() - t0:.1f} s")
    return out


def run_search(plan: Plan, workdir: Path, log: Progress, pg: PostgresTarget) -> dict[str, Any]:
    """The message index: its per-turn cost and size, and search latency."""
    url = None if pg.why_not else pg.url
    latency = search_bench.search_latency(
        plan.search_sessions,
        plan.search_per_session,
        plan.search_query_reps,
        workdir,
        None,
        log,
        engines=("sqlite",),
    )
    if url:
        latency.update(
            search_bench.search_latency(
                plan.search_pg_sessions,
                plan.search_per_session,
                plan.search_query_reps,
                workdir,
                url,
                log,
                engines=("postgres",),
            )
        )
    return {
        "cost": search_bench.index_cost(plan.search_turns, plan.search_reps, workdir, url, log),
        "latency": latency,
    }


def run_all(
    plan: Plan,
    workdir: Path,
    workloads: Sequence[str],
    log: Progress,
    pg: PostgresTarget | None = None,
) -> dict[str, Any]:
    """Run the selected workloads; returns the report document minus ``meta``."""
    pg = pg or PostgresTarget(None, "no server given")
    doc: dict[str, Any] = {
        "plan": {
            "mode": plan.mode,
            "target_turns": plan.target_turns,
            "long_turns": plan.long_turns,
            "fork_small": plan.fork_small,
            "fork_large": plan.fork_large,
        },
        "conversations": {},
    }
    for workload in ("chat", "tool"):
        if workload in workloads:
            doc["conversations"][workload] = run_conversations(plan, workload, workdir, log, pg)
    if "branching" in workloads:
        doc["branching"] = run_branching_cases(plan, workdir, log)
    if "concurrency" in workloads:
        doc["concurrency"] = run_concurrency_matrix(plan, workdir, log)
    if "server" in workloads:
        doc["server"] = run_server_matrix(plan, workdir, log, pg)
    if "lifecycle" in workloads:
        t0 = time.perf_counter()
        doc["lifecycle"] = run_lifecycle(plan.lifecycle_turns, workdir)
        log(f"lifecycle {plan.lifecycle_turns} turns: {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        doc["lifecycle"]["delete_cost"] = run_delete_cost(
            plan.delete_sessions,
            plan.delete_per_session,
            plan.delete_reps,
            workdir,
            None if pg.why_not else pg.url,
        )
        log(f"delete cost at {plan.delete_sessions} sessions: {time.perf_counter() - t0:.1f} s")
    if "web" in workloads:
        doc["web"] = web.run_web(
            workdir, plan.web_branches, plan.web_checkpoints, plan.web_reps, log
        )
    if "search" in workloads:
        doc["search"] = run_search(plan, workdir, log, pg)
    doc["targets"] = report.evaluate_targets(doc)
    doc["checks"] = report.consistency_checks(doc)
    return doc


# --- describing the run -----------------------------------------------------------------


def machine_info(workdir: Path, pg: PostgresTarget) -> dict[str, Any]:
    info: dict[str, Any] = {
        "CPU": _cpu_model(),
        "CPUs (os.cpu_count)": os.cpu_count(),
        "usable CPUs": available_cpus(),
        "memory": _memory(),
        "Python": f"{platform.python_version()} ({platform.python_implementation()})",
        "platform": platform.platform(),
        "SQLite library": sqlite3.sqlite_version,
        "database directory": str(workdir.parent),
    }
    if pg.url and not pg.why_not:
        info.update(postgres.server_info(pg.url))
    else:
        info["PostgreSQL server"] = f"none ({pg.why_not})"
    with contextlib.suppress(OSError):
        info["load average at start"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    except OSError:
        pass
    return "unknown"


def package_versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def git_info() -> dict[str, Any]:
    """The commit of the saver under test, whether its sources differ from it, and a hash
    of the sources as imported (they may change while a long run is going)."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()

    sources = hashlib.sha256()
    package = Path(langgraph_agentgit.__file__).parent
    for path in sorted(package.rglob("*.py")):
        sources.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes())
    info: dict[str, Any] = {"commit": "unknown", "dirty": False}
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        info["commit"] = git("rev-parse", "--short", "HEAD")
        info["dirty"] = bool(git("status", "--porcelain", "--", "langgraph_agentgit"))
    info["sources_sha256"] = sources.hexdigest()[:12]
    return info


def method_notes(plan: Plan, doc: dict[str, Any]) -> list[str]:
    notes = [
        "- **Text.** Questions (200 characters) and answers (800) are sentences of common "
        "English words drawn with `random.Random(seed)`, identical for every saver; an "
        "answer is seeded by its question, so threads of different users share no answer. "
        "Message ids are deterministic, so every saver must end with byte-identical state "
        "(see the consistency checks).",
        "- **Latency.** Wall time of `graph.invoke` (`ainvoke` for the async rows) per "
        "turn, averaged over the first and over the last 10 turns.",
        "- **get_state, same saver:** mean of 5 calls right after the last turn, on the "
        "saver that wrote the thread (AgentGitSaver's value cache is warm). **get_state, new "
        "saver:** the first call on a newly opened saver on the same file — nothing cached "
        "in the process, the OS page cache warm.",
        "- **Full history read:** iterating `graph.get_state_history(config)` to the end on "
        "a newly opened saver (InMemorySaver rows: the same saver). Snapshots are counted "
        "and hashed, not kept, so SqliteSaver's 1,000-turn history (3,000 full copies of "
        "up to 2,000 messages) fits in memory.",
        "- **DB size:** database file plus WAL after `PRAGMA wal_checkpoint(TRUNCATE)` "
        "(which empties the WAL). bytes/turn is that divided by the turns; DB ÷ raw "
        "divides it by the messages' own UTF-8 bytes.",
        "- **Floor:** the same graph on an `InMemorySaver` whose serializer hands objects "
        "through untouched (copying only the small dicts LangGraph mutates in place): what "
        "the graph itself costs with no persistence.",
        "- **DeltaChannel rows** declare the message list as "
        "`Annotated[list, DeltaChannel(_messages_delta_reducer)]` (LangGraph's batch "
        "reducer for messages), so savers store each step's writes and a snapshot every "
        "100 updates instead of the whole list.",
        "- **Order.** Repetition *r* of every saver runs before repetition *r + 1* of any, "
        "so background load on the shared machine spreads across rows. Each run uses a "
        "fresh database in a temporary directory on the machine's disk.",
    ]
    if doc.get("server"):
        notes.append(
            "- **Server workload.** K threads of T chat turns each are written once per "
            "storage (turns interleaved across threads); then, per repetition and saver, a "
            "new Python process reads some threads once (*cold get_state*: up to "
            f"{plan.server_picks}, at most a quarter of the threads, the same for every "
            "process) and runs one turn on threads of its own no process has touched "
            f"(*cold turn*: up to {plan.server_picks}, fewer when K is small), then a second "
            "turn on each (*warm turn*), after one warm-up read of another thread. Each "
            "process checks that its turns were stored. The sync and async savers of a "
            "storage read the same database. Figures are the median and the 90th "
            "percentile of all samples of all repetitions (the sample counts are given per "
            "shape); the "
            "spread is the lowest and highest per-repetition median."
        )
    if any(
        SAVER_KINDS[saver].postgres and entry.get("runs")
        for by_turns in doc.get("conversations", {}).values()
        for by_saver in by_turns.values()
        for saver, entry in by_saver.items()
    ):
        notes += [
            "- **PostgreSQL rows** (chat only) run on the server named under Machine, over "
            "TCP on the same machine, which shares the 2 CPUs with the benchmark (and "
            "with whatever else runs there). Each run gets a fresh schema (dropped "
            "afterwards) and a URL whose `search_path` points at it; AgentGitSaver opens it "
            "with `from_conn_string(url)` (a psycopg pool), PostgresSaver with "
            "`PostgresSaver.from_conn_string(url)` then `.setup()` (one autocommit "
            "connection with `dict_row`, as LangGraph documents), the async rows with their "
            "async twins. PostgresSaver keeps each version of a channel's value whole, "
            "as one `bytea` row of `checkpoint_blobs` (TOAST compresses large ones with "
            "pglz).",
            "- **PostgreSQL size** (the *DB size* column): `pg_total_relation_size` summed "
            "over the schema's tables — heap, TOAST, free-space and visibility maps and "
            "indexes; sequences (8 KB each) are not counted. Measured right after the run, "
            "as it is: no `VACUUM`, so dead tuples left by updates are in it (the server's "
            "autovacuum setting is listed under Machine). The PostgreSQL section below "
            "splits it into tables (heap + TOAST) and indexes, gives the live and dead "
            "tuple counts (`pg_stat_user_tables`, which can lag a moment) and what the "
            "saver's empty tables take after its setup.",
            "- **PostgreSQL, new saver:** a new saver is a new connection (pool); nothing "
            "is cached in the process, the server's shared buffers are warm.",
        ]
    if doc.get("search"):
        notes.append(
            "- **Message index.** See `benchmarks/search.py`: the chat with the index on and "
            "off (interleaved runs; the time inside the indexing call is timed too, since "
            "the difference between two whole runs is mostly noise on a shared machine), "
            "and searches on a database of "
            f"{plan.search_sessions:,} sessions of {plan.search_per_session} messages on "
            f"SQLite ({plan.search_pg_sessions:,} sessions on PostgreSQL, whose inserts are "
            "slower), stored through `CheckpointStore.put` with one checkpoint per session "
            "rather than one graph run per turn (which would take hours); each query shape "
            f"is timed {plan.search_query_reps} times after a warm-up."
        )
    skipped = [
        f"- {SAVER_KINDS[saver].label}, {workload}, {turns:,} turns: {o.why}."
        for (workload, saver, turns), o in plan.overrides.items()
        if workload in doc.get("conversations", {})
    ]
    if skipped:
        notes += ["", "Rows run fewer times or not at all:", "", *skipped]
    return notes


def _finite(value: Any) -> Any:
    # JSON has no NaN; an unmeasurable figure becomes null.
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


# --- entry point ------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run each")
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "docs" / "benchmarks.md",
        help="markdown report path; the raw numbers go next to it as .json",
    )
    parser.add_argument(
        "--workloads",
        default=",".join(WORKLOADS),
        help=f"comma-separated subset of {', '.join(WORKLOADS)}",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="where databases are made")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument(
        "--postgres",
        default=postgres.default_url(),
        metavar="URL",
        help="PostgreSQL server for the Postgres rows ('off': none); default "
        "$AGENTGIT_BENCH_POSTGRES, else $AGENTGIT_TEST_POSTGRES, else %(default)s",
    )
    args = parser.parse_args(argv)
    workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
    unknown = sorted(set(workloads) - set(WORKLOADS))
    if unknown:
        parser.error(f"unknown workloads: {', '.join(unknown)}")
    plan = SMOKE if args.smoke else FULL
    progress = Progress(quiet=args.quiet)
    command = "python -m benchmarks.run" + (" --smoke" if args.smoke else "")
    pg = PostgresTarget(args.postgres, "--postgres off")
    if args.postgres != "off":
        pg = PostgresTarget(args.postgres, postgres.unavailable(args.postgres))
    if pg.why_not and "chat" in workloads:
        # Always said, even with --quiet: a report without these rows must not surprise.
        print(f"PostgreSQL rows skipped: {pg.why_not}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="agentgit-bench-", dir=args.workdir) as tmp:
        workdir = Path(tmp)
        machine = machine_info(workdir, pg)
        git = git_info()  # before the run: the sources may change while it goes on
        generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        progress(f"{plan.mode} run of {', '.join(workloads)} in {workdir}")
        doc = run_all(plan, workdir, workloads, progress, pg)
    with contextlib.suppress(OSError):
        machine["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    # Spawned processes import the saver afresh, so a change mid-run mixes versions.
    git["sources_sha256_at_end"] = git_info()["sources_sha256"]

    out: Path = args.out
    json_path = out.with_suffix(".json")
    doc["meta"] = {
        "command": command,
        "generated": generated,
        "duration_s": progress.elapsed(),
        "smoke": args.smoke,
        "repetitions": plan.reps,
        "fork_ops": plan.fork_ops,
        "concurrency": {"threads": plan.concurrency_threads, "turns": plan.concurrency_turns},
        "workloads": workloads,
        "machine": machine,
        "packages": package_versions(),
        "git": git,
        "json_name": json_path.name,
        "method": method_notes(plan, doc),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(_finite(doc), indent=1, ensure_ascii=False) + "\n")
    out.write_text(report.render_markdown(doc) + "\n")
    progress(f"wrote {out} and {json_path} in {progress.elapsed() / 60:.1f} minutes")
    for target in doc["targets"]:
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[target["passed"]]
        progress(f"{verdict}: {target['name']}: {report.fmt_target(target)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
