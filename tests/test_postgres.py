"""What is particular to PostgreSQL: many writers at once, the caller's own connections
and pools, and the seam that keeps both engines' SQL in step. (Everything else runs on
both engines in the other test files: conformance, sessions, the fuzzer, ...)"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pg
import psycopg
import pytest
from conftest import sql_rows
from langgraph.checkpoint.memory import InMemorySaver
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool
from session_graphs import COUNTER, build_agent, build_counter, cfg

from langgraph_agentgit import (
    AgentGitSaver,
    AsyncAgentGitSaver,
    ConnectionInTransactionError,
    ReadOnlyDatabaseError,
    SchemaVersionError,
    SessionManager,
)
from langgraph_agentgit.backends import describe, is_postgres_url, scrub
from langgraph_agentgit.backends.postgres import sql as postgres_sql
from langgraph_agentgit.backends.sqlite import sql as sqlite_sql

PER_TURN = 4  # checkpoints one COUNTER turn writes: input, __start__ ... (as test_sessions)


@pytest.fixture
def url() -> Any:
    with pg.fresh_schema() as fresh:
        yield fresh


def public_names(module: Any) -> set[str]:
    return {
        n for n in vars(module) if not n.startswith("_") and (n.isupper() or n == "metadata_filter")
    }


def test_both_engines_define_the_same_statements() -> None:
    """A backend is its SQL module: the logic looks statements up by name, so a name one
    engine lacks would fail only when that path runs. CHECK_* serve `agentgit check`
    (SQLite only); LOCK_* are Postgres' advisory locks (SQLite has one writer), and
    UNPREPARED names the statements psycopg must plan with their values each time."""
    sqlite_names = {n for n in public_names(sqlite_sql) if not n.startswith("CHECK_")}
    postgres_names = {
        n for n in public_names(postgres_sql) if not n.startswith("LOCK_") and n != "UNPREPARED"
    }
    assert sqlite_names - postgres_names == set()
    assert postgres_names - sqlite_names == set()


# --- many writers ---------------------------------------------------------------------------


def writer(url: str, thread_id: str, turns: int, errors: Any) -> None:
    """Run ``turns`` turns on one thread (a session's first branch)."""
    try:
        with AgentGitSaver.from_conn_string(url) as saver:
            graph = build_counter().compile(checkpointer=saver)
            for t in range(turns):
                COUNTER.turn(graph, cfg(thread_id), f"w{t}")
    except BaseException as exc:
        errors.put(f"writer {thread_id}: {type(exc).__name__}: {exc}")


def brancher(url: str, session_id: str, turns: int, errors: Any) -> None:
    """Roll the session back to a checkpoint of its first thread (which a writer is
    extending meanwhile) and run one turn on the new branch, ``turns`` times."""
    try:
        with AgentGitSaver.from_conn_string(url) as saver:
            graph = build_counter().compile(checkpointer=saver)
            mgr = SessionManager(saver)
            first = mgr.branches(session_id)[0].thread_id
            for t in range(turns):
                history = list(graph.get_state_history(cfg(first)))
                branch = mgr.rollback(session_id, history[t % len(history)])
                COUNTER.turn(graph, branch.config, f"b{t}")
    except BaseException as exc:
        errors.put(f"brancher {session_id}: {type(exc).__name__}: {exc}")


def test_eight_processes_write_and_branch_the_same_sessions(url: str) -> None:
    """8 processes x 100 turns on one database: four write into the first thread of four
    sessions while four others roll those sessions back and branch them. Nothing is
    lost, nothing fails, every count is exact."""
    turns = 100
    with AgentGitSaver.from_conn_string(url) as saver:
        graph = build_counter().compile(checkpointer=saver)
        mgr = SessionManager(saver)
        sessions = [mgr.create_session(name=f"s{i}") for i in range(4)]
        for s in sessions:
            COUNTER.turn(graph, mgr.config(s.id), "start")
    ctx = multiprocessing.get_context("spawn")
    errors = ctx.Queue()
    workers = [
        ctx.Process(target=writer, args=(url, s.current_thread_id, turns, errors)) for s in sessions
    ] + [ctx.Process(target=brancher, args=(url, s.id, turns, errors)) for s in sessions]
    for p in workers:
        p.start()
    for p in workers:
        p.join(600)
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == []
    assert [p.exitcode for p in workers] == [0] * 8

    with AgentGitSaver.from_conn_string(url) as saver:
        graph = build_counter().compile(checkpointer=saver)
        mgr = SessionManager(saver)
        for s in sessions:
            got = mgr.get_session(s.id)
            assert got is not None
            first, *branches = mgr.branches(s.id)
            # Every turn of the writer is in the first thread, none lost.
            assert first.checkpoint_count == PER_TURN * (1 + turns)
            log = graph.get_state(cfg(first.thread_id)).values["log"]
            assert [e for e in log if e.startswith("in w")] == [f"in w{t}" for t in range(turns)]
            # Every rollback made one branch holding exactly its one turn.
            assert got.branch_count == len(branches) == turns
            assert all(b.checkpoint_count == PER_TURN for b in branches)
            assert got.total_checkpoints == PER_TURN * (1 + turns + turns)
            for t, b in enumerate(branches):
                # The branch holds the state it was forked at, plus its own turn.
                log = graph.get_state(cfg(b.thread_id)).values["log"]
                fork_state = graph.get_state(cfg(first.thread_id, b.fork_checkpoint_id))
                at_fork = fork_state.values.get("log", [])
                assert log[: len(at_fork)] == at_fork
                assert f"in b{t}" in log[len(at_fork) :]
    # The stored counters agree with the rows themselves.
    stored = dict(sql_rows(url, "SELECT pk, checkpoint_count FROM agentgit_threads"))
    counted = dict(
        sql_rows(
            url,
            "SELECT thread_pk, count(*) FROM agentgit_checkpoints "
            "WHERE ns = '' AND hidden = 0 GROUP BY thread_pk",
        )
    )
    assert stored == {pk: counted.get(pk, 0) for pk in stored}


def test_threads_of_one_process_write_at_once(url: str) -> None:
    """One saver on a pool serves several threads' writes at the same time."""
    import threading

    with AgentGitSaver.from_conn_string(url) as saver:
        graph = build_counter().compile(checkpointer=saver)
        failures: list[BaseException] = []

        def work(n: int) -> None:
            try:
                for t in range(10):
                    COUNTER.turn(graph, cfg(f"t{n}"), f"x{t}")
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert failures == []
        for n in range(6):
            assert saver.checkpoint_count(f"t{n}") == PER_TURN * 10


# --- the caller's connections and pools --------------------------------------------------


def run_two_turns(saver: Any) -> dict[str, Any]:
    graph = build_counter().compile(checkpointer=saver)
    COUNTER.turn(graph, cfg("t"), "a")
    COUNTER.turn(graph, cfg("t"), "bb")
    return dict(graph.get_state(cfg("t")).values)


EXPECTED = run_two_turns(InMemorySaver())


def test_a_connection_configured_for_postgres_saver(url: str) -> None:
    """PostgresSaver wants dict rows and autocommit; a connection set up otherwise
    (transactions on, dict rows) works as well: the saver reads tuples and runs its own
    transactions."""
    with psycopg.connect(url, row_factory=dict_row) as conn:
        assert run_two_turns(AgentGitSaver(conn)) == EXPECTED
    with ConnectionPool(url, kwargs={"row_factory": dict_row}, open=True) as pool:
        saver = AgentGitSaver(pool)
        assert saver.get_tuple(cfg("t")) is not None
        assert len(list(saver.list(cfg("t")))) == 2 * PER_TURN
    # A cursor factory with other placeholders ($1) is not used for the saver's statements.
    raw = {"cursor_factory": psycopg.RawCursor, "row_factory": dict_row}
    with ConnectionPool(url, kwargs=raw, open=True) as pool:
        saver = AgentGitSaver(pool)
        assert len(list(saver.list(cfg("t")))) == 2 * PER_TURN
        graph = build_counter().compile(checkpointer=saver)
        COUNTER.turn(graph, cfg("raw"), "a")
        COUNTER.turn(graph, cfg("raw"), "bb")
        assert dict(graph.get_state(cfg("raw")).values) == EXPECTED


async def test_an_async_connection_with_a_raw_cursor_factory(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(
        url, cursor_factory=psycopg.AsyncRawCursor
    ) as conn:
        saver = AsyncAgentGitSaver(conn)
        graph = build_counter().compile(checkpointer=saver)
        await COUNTER.aturn(graph, cfg("t"), "a")
        await COUNTER.aturn(graph, cfg("t"), "bb")
        assert (await graph.aget_state(cfg("t"))).values == EXPECTED


async def test_async_connection_and_pool(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        saver = AsyncAgentGitSaver(conn)
        graph = build_counter().compile(checkpointer=saver)
        await COUNTER.aturn(graph, cfg("t"), "a")
        await COUNTER.aturn(graph, cfg("t"), "bb")
        assert (await graph.aget_state(cfg("t"))).values == EXPECTED
    async with AsyncConnectionPool(url, open=False) as pool:
        saver = AsyncAgentGitSaver(pool)
        graph = build_counter().compile(checkpointer=saver)
        await asyncio.gather(*(COUNTER.aturn(graph, cfg(f"p{n}"), "x") for n in range(4)))
        for n in range(4):
            assert await saver.acheckpoint_count(f"p{n}") == PER_TURN
        # The sync methods work from another thread, as on SQLite.
        assert await asyncio.to_thread(saver.checkpoint_count, "t") == 2 * PER_TURN
    # A sync pool: each transaction runs on a worker thread (what from_conn_string opens).
    with ConnectionPool(url, kwargs={"row_factory": dict_row}, open=True) as sync_pool:
        saver = AsyncAgentGitSaver(sync_pool)
        graph = build_counter().compile(checkpointer=saver)
        await asyncio.gather(*(COUNTER.aturn(graph, cfg(f"s{n}"), "x") for n in range(4)))
        for n in range(4):
            assert await saver.acheckpoint_count(f"s{n}") == PER_TURN
        assert (await graph.aget_state(cfg("t"))).values == EXPECTED
        assert await asyncio.to_thread(saver.checkpoint_count, "s0") == PER_TURN
        await saver.postgres.drain()


_T_ROOT: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}


def _blocked_put(saver: AsyncAgentGitSaver, blocker: psycopg.Connection[Any]) -> Any:
    """A task storing one checkpoint on thread "t" while ``blocker`` holds that thread's
    lock: the write waits for it inside its transaction."""
    from langgraph.checkpoint.base import empty_checkpoint

    from langgraph_agentgit.backends.postgres.runner import _begin_write

    for statement in _begin_write(30, "t").split("; "):
        blocker.execute(statement)
    checkpoint = empty_checkpoint()
    checkpoint["channel_values"] = {"messages": ["kept whole"]}
    checkpoint["channel_versions"] = {"messages": 1}
    metadata: Any = {"source": "input", "step": -1}
    return asyncio.create_task(saver.aput(_T_ROOT, checkpoint, metadata, {"messages": 1}))


@asynccontextmanager
async def _async_saver(url: str, pool_kind: str) -> AsyncIterator[AsyncAgentGitSaver]:
    """An AsyncAgentGitSaver on the sync pool ``from_conn_string`` opens (transactions on
    worker threads), or on an ``AsyncConnectionPool`` (statements on the event loop)."""
    if pool_kind == "pool":
        async with AsyncAgentGitSaver.from_conn_string(url) as saver:
            yield saver
        return
    async with AsyncConnectionPool(url, open=False) as pool:
        saver = AsyncAgentGitSaver(pool)
        try:
            yield saver
        finally:
            await saver.postgres.drain()


_SYNC_NODES_CALL_THE_SAVER = """
import asyncio, sys
from typing import Annotated, TypedDict
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.graph import END, START, StateGraph
from langgraph.graph.message import add_messages
from psycopg_pool import AsyncConnectionPool
from langgraph_agentgit import AsyncAgentGitSaver

class State(TypedDict):
    messages: Annotated[list, add_messages]

async def turns(saver):
    def node(state):  # sync: LangGraph runs it on the event loop's default executor
        return {"messages": [AIMessage(content=str(saver.checkpoint_count("t0")))]}
    builder = StateGraph(State)
    builder.add_node("node", node)
    builder.add_edge(START, "node")
    builder.add_edge("node", END)
    graph = builder.compile(checkpointer=saver)
    configs = [{"configurable": {"thread_id": f"t{n}"}} for n in range(24)]
    await asyncio.gather(*(graph.ainvoke({"messages": [HumanMessage("hi")]}, c) for c in configs))
    return [len((await graph.aget_state(c)).values["messages"]) for c in configs]

async def main(url, kind):
    if kind == "pool":
        async with AsyncAgentGitSaver.from_conn_string(url) as saver:
            return await turns(saver)
    async with AsyncConnectionPool(url, open=False) as pool:
        saver = AsyncAgentGitSaver(pool)
        lengths = await turns(saver)
        await saver.postgres.drain()
        return lengths

print(asyncio.run(main(sys.argv[1], sys.argv[2])))
"""


@pytest.mark.parametrize("pool_kind", ["pool", "async pool"])
def test_sync_nodes_calling_the_async_saver_do_not_starve_its_transactions(
    url: str, pool_kind: str
) -> None:
    """Sync nodes run on the event loop's default executor; one calling the saver's sync
    methods holds its thread until a transaction answers. The transactions ran on that
    same executor: with 24 runs at once every thread waited for one queued behind them,
    and the process hung for good (no timeout could end it). In a child process, so a
    hang fails the test instead of stopping the suite."""
    done = subprocess.run(
        [sys.executable, "-c", _SYNC_NODES_CALL_THE_SAVER, url, pool_kind],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == str([2] * 24)


@pytest.mark.parametrize("pool_kind", ["pool", "async pool"])
async def test_a_cancelled_async_write_ends_its_transaction_before_the_connection_returns(
    url: str, pool_kind: str
) -> None:
    """A write cancelled mid-transaction (a client gone, a run cancelled) cannot stop its
    worker thread. The connection stays with that transaction until it commits or rolls
    back, then the cancellation is raised: it went back to the pool at once, and the
    thread ran its remaining statements on a connection the pool had reset or handed to
    another transaction (a hang seen in `make compat`: "idle in transaction")."""
    # Its connections are told apart from other tests' on the shared server by name.
    name = f"agentgit-cancel-{os.getpid()}"
    async with _async_saver(f"{url}&application_name={name}", pool_kind) as saver:
        with psycopg.connect(url, autocommit=True) as blocker:
            task = _blocked_put(saver, blocker)
            await asyncio.sleep(0.5)
            task.cancel()
            await asyncio.sleep(0.5)
            assert not task.done()  # still in its transaction, holding its connection
            blocker.execute("ROLLBACK")
        with pytest.raises(asyncio.CancelledError):
            await task
        # It ran to its COMMIT: whole, and the saver and its pool go on working.
        stored = await saver.aget_tuple(_T_ROOT)
        assert stored is not None and stored.checkpoint["channel_values"] == {
            "messages": ["kept whole"]
        }
        graph = build_counter().compile(checkpointer=saver)
        await asyncio.gather(*(COUNTER.aturn(graph, cfg(f"after{n}"), "x") for n in range(4)))
        assert [await saver.acheckpoint_count(f"after{n}") for n in range(4)] == [PER_TURN] * 4
    with psycopg.connect(url, autocommit=True) as admin:
        left = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%%'"
            " AND application_name = %s",
            (name,),
        ).fetchone()
        assert left == (0,)


async def test_closing_the_async_saver_waits_for_a_cancelled_write_to_end(url: str) -> None:
    """A caller cancelled mid-write returns at once while its transaction runs on (see
    above). Leaving ``from_conn_string`` closed the pool without waiting for it: the
    transaction stayed open, holding its locks, with its next statement waiting for the
    event loop; `make compat`'s teardown then dropped the schema from that loop's thread
    and both waited for good. Closing now waits until the transaction has ended."""
    import threading

    name = f"agentgit-close-{os.getpid()}"
    with psycopg.connect(url, autocommit=True) as blocker:
        async with AsyncAgentGitSaver.from_conn_string(f"{url}&application_name={name}") as saver:
            task = _blocked_put(saver, blocker)
            await asyncio.sleep(0.5)
            task.cancel()
            # The lock is let go while the saver closes, from another thread.
            threading.Timer(1.0, blocker.execute, ("ROLLBACK",)).start()
        # A closed connection's server process ends a moment after the client left
        # (under load it was still listed "idle"); one left in its transaction stays.
        with psycopg.connect(url, autocommit=True) as admin:
            deadline = time.monotonic() + 5
            while True:
                left = admin.execute(
                    "SELECT state FROM pg_stat_activity WHERE application_name = %s", (name,)
                ).fetchall()
                if left == [] or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        assert left == []
    assert task.cancelled()
    async with AsyncAgentGitSaver.from_conn_string(url) as saver:
        stored = await saver.aget_tuple(_T_ROOT)
        assert stored is not None
        assert stored.checkpoint["channel_values"] == {"messages": ["kept whole"]}


async def test_wrong_kind_of_connection_is_named(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url) as aconn:
        with pytest.raises(TypeError, match="AsyncAgentGitSaver takes the async ones"):
            AgentGitSaver(aconn)
    with (
        psycopg.connect(url) as conn,
        pytest.raises(TypeError, match="AgentGitSaver takes a single sync Connection"),
    ):
        AsyncAgentGitSaver(conn)
    with pytest.raises(TypeError, match="not dict"):
        AgentGitSaver({"url": url})
    with pytest.raises(TypeError, match=r"use AsyncAgentGitSaver\.from_conn_string"):
        AsyncAgentGitSaver(url)


def test_read_only_and_newer_schema(url: str) -> None:
    with AgentGitSaver.from_conn_string(url) as saver:
        run_two_turns(saver)
    with AgentGitSaver.from_conn_string(url, read_only=True) as reader:
        assert reader.checkpoint_count("t") == 2 * PER_TURN
        with pytest.raises(ReadOnlyDatabaseError):
            build_counter().compile(checkpointer=reader).invoke({"total": 1}, cfg("t"))
    assert sql_rows(url, "SELECT count(*) FROM agentgit_checkpoints")[0][0] == 2 * PER_TURN
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE agentgit_schema SET version = version + 1")
    with pytest.raises(SchemaVersionError, match="newer"), AgentGitSaver.from_conn_string(url):
        pass


def test_a_url_without_a_server_fails_at_once_naming_it() -> None:
    """psycopg's own error (host, port, why), not a pool timeout half a minute later."""
    started = time.monotonic()
    with (
        pytest.raises(psycopg.OperationalError, match=r"127\.0\.0\.1.*port 1"),
        AgentGitSaver.from_conn_string("postgresql://nobody@127.0.0.1:1/none"),
    ):
        pass
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    "value, stored",
    [(1, True), (True, 1), (1.0, 1), ("1", 1), (None, None), ("a b", "a b"), (2, 1)],
)
def test_metadata_filters_match_as_on_sqlite(
    url: str, tmp_path: Any, value: Any, stored: Any
) -> None:
    """The filter is SQL on each engine; both must keep the rows Python equality keeps."""
    results = []
    for target in (str(tmp_path / "f.db"), url):
        with AgentGitSaver.from_conn_string(target) as saver:
            graph = build_counter().compile(checkpointer=saver)
            config = {"configurable": {"thread_id": "t"}, "metadata": {"k": stored}}
            graph.invoke({"total": 1, "log": []}, config)
            results.append(len(list(saver.list(cfg("t"), filter={"k": value}))))
    assert results[0] == results[1]
    assert (results[0] > 0) == (stored == value)


# --- what the break-it pass found -----------------------------------------------------------


def test_a_connection_inside_the_callers_transaction_is_refused_untouched(url: str) -> None:
    """The saver never commits or rolls back its caller's transaction."""
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE mine (x int)")
        conn.commit()
        with conn.transaction(force_rollback=True):
            conn.execute("INSERT INTO mine VALUES (1)")
            with pytest.raises(ConnectionInTransactionError, match="inside a transaction"):
                AgentGitSaver(conn)
        assert conn.execute("SELECT count(*) FROM mine").fetchone() == (0,)
        # That query opened a transaction (psycopg's default mode): it must end first.
        with pytest.raises(ConnectionInTransactionError, match="intrans"):
            AgentGitSaver(conn)
        conn.rollback()
        saver = AgentGitSaver(conn)  # outside any transaction: fine
        run_two_turns(saver)
        with conn.transaction(force_rollback=True):
            conn.execute("INSERT INTO mine VALUES (2)")
            with pytest.raises(ConnectionInTransactionError):
                saver.get_tuple(cfg("t"))
        assert conn.execute("SELECT count(*) FROM mine").fetchone() == (0,)
        assert conn.autocommit is False  # given back as it was configured


def test_a_shared_pool_keeps_its_transaction_mode(url: str) -> None:
    with ConnectionPool(url, open=True) as pool:
        assert run_two_turns(AgentGitSaver(pool)) == EXPECTED
        with pool.connection() as conn:
            assert conn.autocommit is False
            conn.execute("CREATE TABLE mine (x int)")
        with contextlib.suppress(RuntimeError), pool.connection() as conn:
            conn.execute("INSERT INTO mine VALUES (1)")
            raise RuntimeError("the application's transaction fails")
        assert sql_rows(url, "SELECT count(*) FROM mine") == [(0,)]


def test_every_way_of_naming_a_postgres_database(url: str) -> None:
    schema = url.split("search_path%3D", 1)[1]
    keywords = f"host=127.0.0.1 port=5432 user=postgres dbname=test options=-csearch_path={schema}"
    for target in (url, url.replace("postgresql://", "POSTGRESQL://"), keywords):
        assert is_postgres_url(target)
        with AgentGitSaver.from_conn_string(target) as saver:
            assert saver.postgres is not None
            run_two_turns(saver)
    assert sql_rows(url, "SELECT count(DISTINCT thread_pk) FROM agentgit_checkpoints") == [(1,)]


def test_passwords_are_never_shown() -> None:
    for target, secret in (
        ("postgresql://app:S3cret@db/chat", "S3cret"),
        ("postgresql://db/chat?sslmode=require&password=S3cret", "S3cret"),
        ("postgresql://app:S3cret@db/chat?options=-csearch_path%3Da@b", "S3cret"),
        ("host=db password=S3cret dbname=chat", "S3cret"),
        # URLs urllib cannot take apart (an unclosed IPv6 bracket).
        ("postgresql://app:S3cret@[::1/chat", "S3cret"),
        # An escaped space in a keyword string's password.
        ("host=db password=abc\\ S3cret dbname=chat", "S3cret"),
        ("host=db password='abc S3cret' dbname=chat", "S3cret"),
        ("postgres://app:S3cret@[::1:5432/chat?password=S3cret", "S3cret"),
    ):
        shown = describe(target)
        assert secret not in shown and "***" in shown, shown
        assert secret not in scrub(f'invalid token: "{secret}"', target)
    assert describe("postgresql://[::1") == "postgresql://[::1"
    # An unencoded "@" in a URL's password: libpq reads what follows it as the host and
    # quotes it in its error.
    target = "postgresql://app:abc@S3cret@db/chat"
    assert "S3cret" not in describe(target)
    assert "S3cret" not in scrub("failed to resolve host 'S3cret@db'", target)


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


@pytest.mark.parametrize(
    "target",
    ["postgresql://app:S3cret@[::1/chat", "postgresql://app:S3cret@127.0.0.1/test?bogus=1"],
)
def test_a_url_libpq_cannot_parse_is_a_value_error_that_hides_the_password(target: str) -> None:
    """libpq quotes a URL it cannot parse whole, password included: both savers raise
    ValueError quoting it masked, with nothing in the exception chain that shows it, and
    the CLI calls it bad input (exit 2), without a traceback."""
    with pytest.raises(ValueError, match="not a PostgreSQL URL libpq can read") as sync_error:
        AgentGitSaver.from_conn_string(target).__enter__()

    async def open_async() -> None:
        async with AsyncAgentGitSaver.from_conn_string(target):
            pass

    with pytest.raises(ValueError, match="not a PostgreSQL URL libpq can read") as async_error:
        asyncio.run(open_async())
    for error in (sync_error.value, async_error.value):
        assert all("S3cret" not in str(e) for e in _chain(error)), list(_chain(error))
    run = subprocess.run(
        [sys.executable, "-m", "langgraph_agentgit", "--db", target, "sessions"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2, run.stderr
    assert "not a PostgreSQL URL libpq can read" in run.stderr
    assert "S3cret" not in run.stderr + run.stdout and "Traceback" not in run.stderr


def test_a_connection_error_quoting_part_of_the_password_masks_it() -> None:
    """With an unencoded "@" in a URL's password, libpq reads the rest as the host and
    its error quotes it: the savers raise psycopg's OperationalError with that part
    masked (nothing in the chain shows it), and the CLI prints it masked."""
    target = "postgresql://app:abc@S3cret@127.0.0.1:5432/test"
    with pytest.raises(psycopg.OperationalError) as error:
        AgentGitSaver.from_conn_string(target).__enter__()
    assert "***" in str(error.value)
    assert all("S3cret" not in str(e) for e in _chain(error.value))
    run = subprocess.run(
        [sys.executable, "-m", "langgraph_agentgit", "--db", target, "sessions"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1 and "cannot connect" in run.stderr, run.stderr
    assert "S3cret" not in run.stderr + run.stdout


@pytest.mark.parametrize(
    ("target", "code"),
    [
        ("postgresql://app@127.0.0.1:99999/test", 2),
        ("postgresql://app@127.0.0.1:abc/test", 2),
        ("postgresql://app@127.0.0.1/test?port=-1", 2),
        # A well-formed URL no server answers: a failure, not bad input.
        ("postgresql://app@127.0.0.1:1/test", 1),
    ],
)
def test_the_cli_tells_a_bad_port_from_a_server_that_does_not_answer(
    target: str, code: int
) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "langgraph_agentgit", "--db", target, "sessions"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == code, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and "Traceback" not in run.stderr


def test_text_postgres_cannot_store_is_a_clear_error(url: str) -> None:
    with AgentGitSaver.from_conn_string(url) as saver:
        graph = build_counter().compile(checkpointer=saver)
        with pytest.raises(ValueError, match="NUL"):
            graph.invoke({"total": 1, "log": []}, cfg("bad\x00thread"))
        with pytest.raises(ValueError, match="2,700 bytes"):
            graph.invoke({"total": 1, "log": []}, cfg(os.urandom(4000).hex()))
        with pytest.raises(NotImplementedError, match="PostgreSQL"):
            SessionManager(saver).check()
    assert sql_rows(url, "SELECT count(*) FROM agentgit_checkpoints") == [(0,)]


# Rows added under 1,000 thread pks no thread has, so that the tables are large enough for the
# planner to prefer an index to a scan wherever one can serve the statement.
_FILLER = """
INSERT INTO agentgit_blobs(digest, kind, deps, data)
SELECT sha256(i::text::bytea), 0, NULL, '\\x00'::bytea FROM generate_series(1, 20000) AS i;
INSERT INTO agentgit_checkpoints(thread_pk, ns, checkpoint_id, body, metadata, refs)
SELECT -1 - i % 1000, '', lpad(i::text, 36, '0'), '\\x00'::bytea, '{}', '{}'
FROM generate_series(1, 20000) AS i;
INSERT INTO agentgit_writes(thread_pk, ns, checkpoint_id, task_id, idx, channel, blob_id)
SELECT -1 - i % 1000, '', lpad(i::text, 36, '0'), 't', 0, 'c', 1
FROM generate_series(1, 20000) AS i;
ANALYZE;
"""
_BIG_TABLES = ("agentgit_blobs", "agentgit_checkpoints", "agentgit_writes")


def _plan_nodes(node: dict[str, Any]) -> Any:
    yield node
    for child in node.get("Plans", []):
        yield from _plan_nodes(child)


def test_statements_of_one_thread_look_rows_up_by_key_whatever_the_tables_hold(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cold read, turns, a fork, a copy, a prune, a deletion, usage and search of one
    session touch the rows they need through indexes: no statement they run scans a whole
    table of values, checkpoints or writes, so each costs the same on a big database as
    on a small one. (Id lists were planned as hash joins over the whole value table: a
    cold read of a 40-turn thread took 15 ms among 12,000 values, 28 ms among 23,000.)"""
    from langchain_core.messages import HumanMessage

    with AgentGitSaver.from_conn_string(url):
        pass  # the schema
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(_FILLER)
    ran: dict[str, Any] = {}
    real_execute, real_executemany = psycopg.Cursor.execute, psycopg.Cursor.executemany

    def execute(self: Any, query: Any, params: Any = None, **kwargs: Any) -> Any:
        if params:
            ran.setdefault(str(query), params)
        return real_execute(self, query, params, **kwargs)

    def executemany(self: Any, query: Any, params_seq: Any, **kwargs: Any) -> Any:
        params_seq = list(params_seq)
        if params_seq:
            ran.setdefault(str(query), params_seq[0])
        return real_executemany(self, query, params_seq, **kwargs)

    with AgentGitSaver.from_conn_string(url) as saver:
        graph = build_agent().compile(checkpointer=saver)
        mgr = SessionManager(saver)
        s = mgr.create_session(user_id="u")
        for text in ("hello", "weather in Paris?", "thanks"):
            graph.invoke({"messages": [HumanMessage(text)]}, mgr.config(s.id))
        first = list(graph.get_state_history(mgr.config(s.id)))[-3]
    monkeypatch.setattr(psycopg.Cursor, "execute", execute)
    monkeypatch.setattr(psycopg.Cursor, "executemany", executemany)
    with AgentGitSaver.from_conn_string(url) as saver:
        graph = build_agent().compile(checkpointer=saver)
        mgr = SessionManager(saver)
        main = mgr.config(s.id)["configurable"]["thread_id"]
        assert graph.get_state(mgr.config(s.id)).values["messages"]
        branch = mgr.rollback(s.id, first)
        graph.invoke({"messages": [HumanMessage("weather in Rome?")]}, mgr.config(s.id))
        list(graph.get_state_history(mgr.config(s.id)))
        assert mgr.usage(s.id).messages > 0 and mgr.search("rome", session_id=s.id)
        saver.copy_thread(main, "copy")
        saver.prune([branch.thread_id])
        saver.delete_thread("copy")
    monkeypatch.undo()
    assert len(ran) > 20
    scans: list[tuple[str, str]] = []
    with psycopg.connect(url) as conn:
        conn.execute("SET LOCAL jit = off")
        for query, params in ran.items():
            (plan,) = conn.execute(f"EXPLAIN (FORMAT JSON) {query}", params).fetchone()
            for node in _plan_nodes(plan[0]["Plan"]):
                if node["Node Type"] == "Seq Scan" and node["Relation Name"] in _BIG_TABLES:
                    scans.append((node["Relation Name"], " ".join(query.split())[:2000]))
        conn.rollback()
    assert scans == [], "\n".join(map(str, scans))
