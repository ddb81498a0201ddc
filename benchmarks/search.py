"""The message index (full-text search and usage counters), measured.

* **Per-turn cost.** The chat workload (``workloads.build_graph("chat")``) on
  ``AgentGitSaver``, the same turns with the index kept (as shipped) and with it turned
  off (``saver.store.search.enabled = False``, which only a benchmark does), runs
  interleaved so that background load spreads over both; on SQLite and, when a server
  is given, PostgreSQL. The two runs' difference is noisy on a shared machine, so the
  time spent inside the indexing call (``SearchIndex.index``, timed around each call)
  is also reported, per turn and as a share of the indexed turn. What the index stores
  is read from the database itself (SQLite's ``dbstat``: pages of ``agentgit_search_*``
  tables and indexes, FTS5's shadow tables included; PostgreSQL's
  ``pg_total_relation_size``).
* **Search latency** on a large database: ``sessions`` sessions of ``per_session``
  messages each (alternately human and AI, natural text from the benchmark vocabulary
  plus a ticket number, so that some words are rare and some are in most messages),
  stored through the real write path (``CheckpointStore.put``, which indexes them) but
  one checkpoint per session holding all of its messages, instead of one graph run per
  turn, which would take hours at a million messages. The index rows are those a
  conversation's writes make (one per message, from the same code), except that every
  message of a session names that one checkpoint. Each query shape is timed through
  ``SessionManager.search`` (snippets included) on a warm database.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.base.id import uuid6

from benchmarks import postgres
from benchmarks.fake_models import VOCABULARY, sentence_text, user_message
from benchmarks.workloads import (
    MAIN_THREAD,
    build_graph,
    db_file_bytes,
    percentile,
    raw_message_bytes,
    remove_db,
    thread_config,
)
from langgraph_agentgit import AgentGitSaver, SessionManager
from langgraph_agentgit.sessions import store as ops

_SQLITE_INDEX_BYTES = (
    "SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name LIKE 'agentgit\\_search%' ESCAPE '\\'"
)


@contextmanager
def _location(engine: str, workdir: Path, name: str, postgres_url: str | None) -> Iterator[Any]:
    """A fresh SQLite file path or PostgreSQL schema (object with ``url``) for one run."""
    if engine == "sqlite":
        path = workdir / f"{name}.db"
        remove_db(path)
        try:
            yield path
        finally:
            remove_db(path)
    else:
        assert postgres_url is not None
        with postgres.fresh_schema(postgres_url) as schema:
            yield schema


def _chat_run(engine: str, turns: int, indexed: bool, workdir: Path, pg: str | None) -> dict:
    inputs = [{"messages": [user_message(turn)]} for turn in range(1, turns + 1)]
    with _location(engine, workdir, f"search-chat-{indexed}", pg) as where:
        url = str(where) if engine == "sqlite" else where.url
        latencies: list[float] = []
        in_index: list[float] = []
        with AgentGitSaver.from_conn_string(url) as saver:
            saver.store.search.enabled = indexed
            index = saver.store.search.index

            def timed(*args: Any, **kwargs: Any) -> None:
                t0 = time.perf_counter()
                try:
                    index(*args, **kwargs)
                finally:
                    in_index.append(time.perf_counter() - t0)

            saver.store.search.index = timed  # type: ignore[method-assign]
            graph = build_graph("chat").compile(checkpointer=saver)
            config = thread_config(MAIN_THREAD)
            for item in inputs:
                t0 = time.perf_counter()
                graph.invoke(item, config)
                latencies.append(time.perf_counter() - t0)
            messages: list[BaseMessage] = graph.get_state(config).values["messages"]
            if engine == "sqlite":
                index_bytes = saver._read(lambda c: c.execute(_SQLITE_INDEX_BYTES).fetchone()[0])
        if engine == "sqlite":
            db_bytes = db_file_bytes(where)
        else:
            sizes = postgres.schema_sizes(where)
            db_bytes = sizes["db_bytes"]
            index_bytes = sum(
                size for table, size in sizes["pg_tables"].items() if "search" in table
            )
    raw = raw_message_bytes(messages)
    return {
        "turn_ms": 1000 * statistics.fmean(latencies),
        "index_ms_per_turn": 1000 * sum(in_index) / turns,
        "db_bytes": db_bytes,
        "index_bytes": index_bytes,
        "raw_bytes": raw,
        "messages": len(messages),
    }


def index_cost(
    turns: int, reps: int, workdir: Path, postgres_url: str | None, log: Callable[[str], None]
) -> dict[str, Any]:
    """Per engine: the chat's mean per-turn latency with and without the index (median
    over ``reps`` interleaved runs), the overhead, and what the index stores."""
    out: dict[str, Any] = {}
    for engine in ("sqlite", "postgres") if postgres_url else ("sqlite",):
        runs: dict[bool, list[dict[str, Any]]] = {True: [], False: []}
        for rep in range(reps):
            for indexed in (True, False) if rep % 2 == 0 else (False, True):
                t0 = time.perf_counter()
                runs[indexed].append(_chat_run(engine, turns, indexed, workdir, postgres_url))
                log(
                    f"search: {engine} chat {turns} turns, index "
                    f"{'on' if indexed else 'off'}, run {rep + 1}: "
                    f"{time.perf_counter() - t0:.1f} s"
                )
        on = statistics.median(r["turn_ms"] for r in runs[True])
        off = statistics.median(r["turn_ms"] for r in runs[False])
        inside = statistics.median(r["index_ms_per_turn"] for r in runs[True])
        last = runs[True][-1]
        out[engine] = {
            "turns": turns,
            "reps": reps,
            "turn_ms_indexed": on,
            "turn_ms_unindexed": off,
            "overhead_pct": 100 * (on - off) / off,
            # Timed inside the indexing call itself: what the index costs per turn, free
            # of the noise between two whole runs.
            "index_ms_per_turn": inside,
            "index_share_pct": 100 * inside / on,
            "messages": last["messages"],
            "raw_bytes": last["raw_bytes"],
            "index_bytes": last["index_bytes"],
            "index_over_raw": last["index_bytes"] / last["raw_bytes"],
            "db_bytes_indexed": last["db_bytes"],
            "db_bytes_unindexed": runs[False][-1]["db_bytes"],
            "db_over_raw_indexed": last["db_bytes"] / last["raw_bytes"],
            "db_over_raw_unindexed": runs[False][-1]["db_bytes"] / last["raw_bytes"],
        }
    return out


# --- search latency --------------------------------------------------------------------------


def _message(session: int, i: int) -> BaseMessage:
    rng = random.Random(f"{session}-{i}")
    chars = 200 if i % 2 == 0 else 400
    text = f"{sentence_text(chars, f'{session}-{i}')} Ticket T{rng.randrange(10**6):06d}."
    kind = HumanMessage if i % 2 == 0 else AIMessage
    return kind(content=text, id=f"m-{session}-{i}")


def _fill(conn: Any, saver: AgentGitSaver, start: int, stop: int, per_session: int) -> None:
    store = saver.store
    for session in range(start, stop):
        created = ops.create_session(
            conn, store, f"user-{session % 1000}", f"s{session}", None, f"t-{session}"
        )
        checkpoint = empty_checkpoint()
        checkpoint["id"] = str(uuid6(clock_seq=session))
        checkpoint["channel_values"] = {
            "messages": [_message(session, i) for i in range(per_session)]
        }
        checkpoint["channel_versions"] = {"messages": 1}
        config = {"configurable": {"thread_id": created.current_thread_id, "checkpoint_ns": ""}}
        store.put(conn, config, checkpoint, {"source": "loop", "step": 0}, {"messages": 1})


def _queries() -> list[tuple[str, dict[str, Any], str]]:
    """(query, search options, what it shows)."""
    ticket = str(_message(7, 3).content).rsplit("Ticket ", 1)[1].rstrip(".")
    first, second = VOCABULARY[len(VOCABULARY) // 3], VOCABULARY[len(VOCABULARY) // 2]
    return [
        (ticket, {}, "a ticket number (in a handful of messages)"),
        ("ticket", {}, "a word in every message"),
        (first, {}, "a vocabulary word (in many messages)"),
        (f"{first} {second}", {}, "two vocabulary words"),
        (f"{first[:3]}*", {}, "a prefix"),
        (first, {"user_id": "user-7"}, "a vocabulary word, one user's sessions"),
        (first, {"role": "human"}, "a vocabulary word, human messages only"),
        ("zzzz", {}, "a word in no message"),
    ]


def search_latency(
    sessions: int,
    per_session: int,
    reps: int,
    workdir: Path,
    postgres_url: str | None,
    log: Callable[[str], None],
    engines: Sequence[str] = ("sqlite",),
) -> dict[str, Any]:
    """Build the database, then time each query shape ``reps`` times (after one warm-up
    run): median and 95th percentile in ms, and the hits found."""
    out: dict[str, Any] = {}
    for engine in engines:
        if engine == "postgres" and not postgres_url:
            continue
        with _location(engine, workdir, "search-large", postgres_url) as where:
            url = str(where) if engine == "sqlite" else where.url
            with AgentGitSaver.from_conn_string(url) as saver:
                t0 = time.perf_counter()
                batch = 100
                for start in range(0, sessions, batch):
                    stop = min(sessions, start + batch)
                    saver._write(_fill, saver, start, stop, per_session)
                    if (start // batch) % 20 == 0:
                        log(f"search: {engine} database, {stop} of {sessions} sessions")
                if engine == "postgres":
                    # As autovacuum would: the planner's statistics of the new rows.
                    saver._write(lambda conn: conn.execute("ANALYZE agentgit_search_docs"))
                build_s = time.perf_counter() - t0
                mgr = SessionManager(saver)
                rows: list[dict[str, Any]] = []
                for query, options, label in _queries():
                    hits = mgr.search(query, **options)
                    times = []
                    for _ in range(reps):
                        t1 = time.perf_counter()
                        mgr.search(query, **options)
                        times.append(1000 * (time.perf_counter() - t1))
                    times.sort()
                    rows.append(
                        {
                            "query": query,
                            "options": options,
                            "label": label,
                            "hits": len(hits),
                            "median_ms": statistics.median(times),
                            "p95_ms": percentile(times, 0.95),
                        }
                    )
                session_id = mgr.list_sessions(user_id="user-7")[0].id
                t1 = time.perf_counter()
                for _ in range(reps):
                    mgr.usage(session_id)
                usage_ms = 1000 * (time.perf_counter() - t1) / reps
            size = db_file_bytes(where) if engine == "sqlite" else None
        out[engine] = {
            "sessions": sessions,
            "messages": sessions * per_session,
            "build_s": build_s,
            "db_bytes": size,
            "queries": rows,
            "usage_ms": usage_ms,
        }
        log(f"search: {engine} latency on {sessions * per_session} messages measured")
    return out
