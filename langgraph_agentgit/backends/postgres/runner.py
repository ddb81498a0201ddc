"""Connections, migrations and transactions on PostgreSQL (psycopg 3, psycopg-pool).

Installed with ``pip install "langgraph-agentgit[postgres]"``; nothing imports this module
until a saver is given a ``postgresql://`` URL or a psycopg connection or pool.

What each write relies on
-------------------------
PostgreSQL runs many writers at once, where SQLite has one. The storage logic was
written for one writer (read, then write what was read), so each write transaction
first takes advisory locks, held until it ends:

* **a write into one thread** (``put``, ``put_writes``): the schema's lock *shared* and
  the thread's own lock exclusive. Writes to different threads run at once; two writes
  to one thread queue (creating its ``agentgit_threads`` row, the count trigger and the
  parent lookup need that). What they share is made safe by constraints instead: a blob
  is inserted with ``ON CONFLICT (digest)`` (two writers storing the same value get one
  row and both its id), checkpoint and write rows with ``ON CONFLICT`` on their keys.
* **everything else** (forks, copies, deletes, prune, garbage collection, session
  operations): the schema's lock exclusive, so it runs alone, as on SQLite. This is what
  keeps garbage collection from deleting a blob a concurrent put has just referenced, a
  fork's existence check from racing another fork, and a session's next branch ordinal
  unique.

Two writers inserting the same new blobs in opposite orders can deadlock; PostgreSQL
aborts one (``40P01``) and the runner runs that transaction again (at most
:data:`RETRIES` times). A wait for a lock longer than ``lock_timeout`` seconds raises
:class:`DatabaseLockedError`.

Reads run in ``REPEATABLE READ READ ONLY`` transactions: one snapshot for all the
statements of a read, as a SQLite read transaction gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import hashlib
import random
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.pq import TransactionStatus
from psycopg.rows import tuple_row
from psycopg_pool import AsyncConnectionPool, ConnectionPool

from langgraph_agentgit.backends import normalized_url, scrub
from langgraph_agentgit.backends.postgres import sql
from langgraph_agentgit.errors import (
    ConnectionInTransactionError,
    DatabaseLockedError,
    ReadOnlyDatabaseError,
    SchemaVersionError,
)

T = TypeVar("T")

#: Times a transaction aborted by a deadlock or a serialization failure is run again.
RETRIES = 8
#: Seconds to wait for the server when a saver opens a URL.
CONNECT_TIMEOUT = 10
_RETRYABLE = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)
# Every transaction turns the JIT compiler off: our statements are lookups of a few rows,
# but the planner's estimates for id lists and recursive walks (100 rows per
# set-returning function, ten times more per level of recursion) can pass jit_above_cost,
# and compiling a plan took 80-300 ms (most of a delete_session), far more than the
# statement's own work.
_NO_JIT = "SET LOCAL jit = off"
_BEGIN_READ = f"BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; {_NO_JIT}"

Journal = Callable[[], AbstractContextManager[None]]


def pool_kwargs() -> dict[str, Any]:
    """Connection settings the savers' own pools use (autocommit: each transaction is
    explicit)."""
    return {"autocommit": True}


# --- the connection the storage logic sees ------------------------------------------------


def _prepare(query: str, parameters: Sequence[Any] | None) -> bool | None:
    """psycopg's ``prepare`` for a statement: its default (prepared once it has run a few
    times), except for statements without parameters (BEGIN, COMMIT, migration scripts:
    PostgreSQL cannot prepare a script) and those planned best with their values
    (``sql.UNPREPARED``)."""
    return False if not parameters or query in sql.UNPREPARED else None


class PgConnection:
    """A psycopg connection shaped like ``sqlite3.Connection`` for the storage logic
    (``execute``/``executemany`` returning cursors). Rows are tuples whatever row factory
    the caller's connection or pool was configured with (``PostgresSaver`` needs
    ``dict_row``), and statements go through a plain ``Cursor`` whatever its cursor
    factory (a ``RawCursor`` would read ``%s`` as a syntax error)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, query: str, parameters: Sequence[Any] = (), /) -> Any:
        cur = psycopg.Cursor(self._conn, row_factory=tuple_row)
        cur.execute(query, parameters or None, prepare=_prepare(query, parameters))
        return cur

    def executemany(self, query: str, parameters: Iterable[Sequence[Any]], /) -> Any:
        cur = psycopg.Cursor(self._conn, row_factory=tuple_row)
        cur.executemany(query, list(parameters))
        return cur


class _Rows:
    """A finished statement's rows, handed from the event loop to the logic's thread."""

    def __init__(self, rows: list[Any], rowcount: int) -> None:
        self._rows = rows
        self._next = 0
        self.rowcount = rowcount

    def fetchone(self) -> Any:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    def fetchall(self) -> list[Any]:
        rest, self._next = self._rows[self._next :], len(self._rows)
        return rest

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class AsyncPgConnection:
    """An async psycopg connection used from a worker thread by the (synchronous) storage
    logic: each statement runs on the event loop that owns the connection, and the
    thread waits for its rows. The logic is written once; only this I/O is twinned."""

    def __init__(self, conn: psycopg.AsyncConnection[Any], loop: asyncio.AbstractEventLoop):
        self._conn = conn
        self._loop = loop

    async def _run(self, query: str, params: Sequence[Any] | None, many: bool) -> _Rows:
        cur = psycopg.AsyncCursor(self._conn, row_factory=tuple_row)
        if many:
            await cur.executemany(query, list(params or []))
            return _Rows([], cur.rowcount)
        await cur.execute(query, params or None, prepare=_prepare(query, params))
        rows = await cur.fetchall() if cur.description is not None else []
        return _Rows(rows, cur.rowcount)

    def execute(self, query: str, parameters: Sequence[Any] = (), /) -> Any:
        coro = self._run(query, parameters, False)
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def executemany(self, query: str, parameters: Iterable[Sequence[Any]], /) -> Any:
        coro = self._run(query, list(parameters), True)
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()


# --- schema ---------------------------------------------------------------------------------


def _refuse_newer(current: int) -> None:
    if current > len(sql.MIGRATIONS):
        raise SchemaVersionError(
            f"database schema version {current} is newer than this langgraph-agentgit "
            f"supports on PostgreSQL ({len(sql.MIGRATIONS)}); upgrade the package to open it"
        )


def stored_schema_version(conn: Any) -> int:
    """The schema version in the connection's schema (0 for none), read without writing."""
    if conn.execute(sql.HAS_SCHEMA_TABLE).fetchone() is None:
        return 0
    row = conn.execute(sql.GET_SCHEMA_VERSION).fetchone()
    return int(row[0]) if row else 0


def migrate_steps(conn: Any, read_only: bool) -> int:
    """Bring the schema forward (``conn``: a :class:`PgConnection`-like object inside a
    transaction). Serialized across processes by an advisory lock."""
    current = stored_schema_version(conn)
    _refuse_newer(current)
    if current >= len(sql.MIGRATIONS):
        return current
    if read_only:
        raise ReadOnlyDatabaseError(
            f"the PostgreSQL schema has agentgit schema version {current}, older than this "
            f"package's {len(sql.MIGRATIONS)}, and a read-only saver cannot create or "
            "upgrade it: open it once without read_only"
        )
    conn.execute(sql.LOCK_MIGRATION)
    conn.execute(sql.SCHEMA_VERSION_TABLE)
    current = int((conn.execute(sql.GET_SCHEMA_VERSION).fetchone() or (0,))[0])
    _refuse_newer(current)
    for version in range(current, len(sql.MIGRATIONS)):
        conn.execute(sql.MIGRATIONS[version])
        conn.execute(sql.SET_SCHEMA_VERSION, (version + 1,))
    return len(sql.MIGRATIONS)


def _locked(exc: BaseException, lock_timeout: float) -> DatabaseLockedError:
    return DatabaseLockedError(
        f"PostgreSQL: this write waited more than {lock_timeout:g} s (lock_timeout) for "
        f"another transaction's lock; nothing was written ({exc})"
    )


def _read_only_error() -> ReadOnlyDatabaseError:
    return ReadOnlyDatabaseError(
        "this saver is read-only: nothing can be written through it (open it without "
        "read_only to write)"
    )


def _translated(exc: psycopg.Error) -> Exception | None:
    """The error a user should see for a driver error that is about their input or the
    server's mode rather than a fault (None: let it through as it is)."""
    if isinstance(exc, pg_errors.ReadOnlySqlTransaction):
        return ReadOnlyDatabaseError(
            f"the PostgreSQL server refused the write: {exc} (a read-only server or standby, "
            "or default_transaction_read_only); nothing was written"
        )
    if isinstance(exc, pg_errors.InvalidSchemaName):
        return ValueError(
            f"PostgreSQL: {exc}; the connection's search_path names no existing schema "
            "(create it, or choose one with ?options=-csearch_path%3Dname)"
        )
    if isinstance(exc, pg_errors.ProgramLimitExceeded):
        return ValueError(
            f"PostgreSQL cannot index a value this long ({exc}); thread ids, namespaces and "
            "other keys must stay under about 2,700 bytes there"
        )
    if isinstance(exc, pg_errors.UntranslatableCharacter) or (
        isinstance(exc, psycopg.DataError) and "NUL" in str(exc)
    ):
        return ValueError(
            "PostgreSQL text cannot contain NUL (0x00) characters: a thread id, namespace, "
            "session field or metadata value holds one; nothing was written"
        )
    return None


def _backoff(attempt: int) -> float:
    return min(0.2, 0.002 * 2**attempt) * (0.5 + random.random())


def _begin_write(lock_timeout: float, thread_id: str | None) -> str:
    """BEGIN, the lock wait bound and the write's advisory locks, as one script (one round
    trip). Only numbers computed here are formatted into it."""
    ms = max(1, int(lock_timeout * 1000))
    if thread_id is None:
        lock = sql.LOCK_ALL
    else:
        digest = hashlib.blake2b(thread_id.encode("utf-8", "surrogatepass"), digest_size=4)
        lock = sql.LOCK_THREAD.format(key=int.from_bytes(digest.digest(), "big", signed=True))
    return f"BEGIN; SET LOCAL lock_timeout = {ms}; {_NO_JIT}; {lock}"


# --- borrowing the caller's connections --------------------------------------------------


def _require_idle(conn: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> None:
    status = conn.info.transaction_status
    if status != TransactionStatus.IDLE:
        raise ConnectionInTransactionError(
            f"the psycopg connection is {status.name.lower()} (inside a transaction of its "
            "own): the saver runs its own transactions and will not commit or roll back "
            "yours; give it a connection outside any transaction, or a pool"
        )


@contextmanager
def _borrowed(conn: psycopg.Connection[Any]) -> Iterator[None]:
    """Use the caller's connection in autocommit (our transactions are explicit), refusing
    one inside a transaction of its own, and give it back as it was configured: a pool
    shared with the application keeps its own transaction mode."""
    _require_idle(conn)
    previous = conn.autocommit
    if not previous:
        conn.autocommit = True
    try:
        yield
    finally:
        if not previous and conn.info.transaction_status == TransactionStatus.IDLE:
            conn.autocommit = False


@asynccontextmanager
async def _aborrowed(conn: psycopg.AsyncConnection[Any]) -> AsyncIterator[None]:
    """:func:`_borrowed` for an async connection."""
    _require_idle(conn)
    previous = conn.autocommit
    if not previous:
        await conn.set_autocommit(True)
    try:
        yield
    finally:
        if not previous and conn.info.transaction_status == TransactionStatus.IDLE:
            await conn.set_autocommit(False)


# --- transactions ---------------------------------------------------------------------------
# One function per kind of transaction, run on the thread that runs the storage logic, so
# the sync and async runners share them: only the connection object differs.


def _read_once(conn: Any, fn: Callable[..., T], args: Any, kwargs: Any) -> T:
    conn.execute(_BEGIN_READ)
    try:
        result = fn(conn, *args, **kwargs)
    except BaseException:
        _rollback(conn)
        raise
    conn.execute("COMMIT")
    return result


def _write_once(
    conn: Any,
    journal: Journal,
    lock_timeout: float,
    thread_id: str | None,
    fn: Callable[..., T],
    args: Any,
    kwargs: Any,
) -> T:
    with journal():
        try:
            conn.execute(_begin_write(lock_timeout, thread_id))
            result = fn(conn, *args, **kwargs)
            conn.execute("COMMIT")
            return result
        except BaseException:
            _rollback(conn)
            raise


def _rollback(conn: Any) -> None:
    # A connection that is gone cannot roll back; the server ends its transaction.
    with contextlib.suppress(psycopg.Error):
        conn.execute("ROLLBACK")


def _setup_once(conn: Any, read_only: bool) -> int:
    conn.execute("BEGIN")
    try:
        version = migrate_steps(conn, read_only)
        conn.execute("COMMIT")
        return version
    except BaseException:
        _rollback(conn)
        raise


class PostgresRunner:
    """Runs the storage logic in transactions on a psycopg ``Connection`` or
    ``ConnectionPool`` (sync savers). A single connection serves one transaction at a
    time; a pool gives each transaction its own connection. Each transaction borrows its
    connection in autocommit (the transaction is explicit) and gives it back in the mode
    it had; a connection inside a transaction of its caller's is refused."""

    sql = sql

    def __init__(
        self,
        target: psycopg.Connection[Any] | ConnectionPool[Any],
        *,
        lock_timeout: float,
        read_only: bool,
        journal: Journal,
    ) -> None:
        self.target = target
        self.lock_timeout = lock_timeout
        self.read_only = read_only
        self.journal = journal
        self._lock = threading.RLock()
        try:
            with self._connection() as conn:
                _setup_once(conn, read_only)
        except psycopg.Error as exc:
            raise (_translated(exc) or exc) from exc

    @contextmanager
    def _connection(self) -> Iterator[PgConnection]:
        if isinstance(self.target, ConnectionPool):
            with self.target.connection() as conn, _borrowed(conn):
                yield PgConnection(conn)
        else:
            with self._lock, _borrowed(self.target):
                yield PgConnection(self.target)

    def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            with self._connection() as conn:
                return _read_once(conn, fn, args, kwargs)
        except psycopg.Error as exc:
            raise (_translated(exc) or exc) from exc

    def write(self, thread_id: str | None, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self.read_only:
            raise _read_only_error()
        for attempt in range(RETRIES + 1):
            try:
                with self._connection() as conn:
                    return _write_once(
                        conn, self.journal, self.lock_timeout, thread_id, fn, args, kwargs
                    )
            except _RETRYABLE:
                if attempt == RETRIES:
                    raise
                time.sleep(_backoff(attempt))
            except pg_errors.LockNotAvailable as exc:
                raise _locked(exc, self.lock_timeout) from exc
            except psycopg.Error as exc:
                raise (_translated(exc) or exc) from exc
        raise AssertionError("unreachable")


class _Workers:
    """The threads an async runner's transactions run on: its own, never the event
    loop's default executor. LangGraph runs a sync node or tool on that default executor,
    and one calling the saver's sync methods (or a sync ``SessionManager`` method) holds
    its thread while it waits for a transaction: with every default thread waiting so,
    a transaction queued behind them never started (a hang that no timeout ended, from
    about 10 concurrent runs on 2 cores).

    ``threads``: at most that many transactions at once (the pool's size: each needs a
    connection); more wait in this executor's queue."""

    def __init__(self, threads: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="agentgit")
        # Transactions under way, a cancelled caller's included (see drain).
        self.running: set[asyncio.Future[Any]] = set()
        weakref.finalize(self, self._executor.shutdown, wait=False)

    async def run(self, fn: Callable[..., T], /, *args: Any) -> T:
        """``fn(*args)`` on a worker thread, for a transaction on a connection borrowed
        for it. A thread cannot be stopped half way: when the caller is cancelled (a
        client gone, a run cancelled), the transaction still runs to its COMMIT or
        ROLLBACK before the connection goes back, and the cancellation is raised after.
        Returning the connection at once (as a plain ``to_thread`` would) left the thread
        running statements on a connection the pool had rolled back, or handed to
        another transaction."""
        call = functools.partial(contextvars.copy_context().run, fn, *args)
        task = asyncio.get_running_loop().run_in_executor(self._executor, call)
        self.running.add(task)
        task.add_done_callback(self.running.discard)
        cancelled = False
        while not task.done():
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                cancelled = True
            except BaseException:
                break  # the task's own failure: raised by task.result() below
        if cancelled:
            if not task.cancelled():
                task.exception()  # retrieved: what the transaction did no longer matters
            raise asyncio.CancelledError
        return task.result()

    async def drain(self) -> None:
        """Wait until every transaction started here has ended (COMMIT or ROLLBACK)."""
        while self.running:
            await asyncio.wait(set(self.running))

    def shutdown(self) -> None:
        """Let the idle threads go (the runner's owner is closing)."""
        self._executor.shutdown(wait=False)


class AsyncPostgresRunner:
    """:class:`PostgresRunner` on a psycopg ``AsyncConnection`` or ``AsyncConnectionPool``:
    the storage logic runs on a worker thread and its statements on the event loop."""

    sql = sql

    def __init__(
        self,
        target: psycopg.AsyncConnection[Any] | AsyncConnectionPool[Any],
        *,
        lock_timeout: float,
        read_only: bool,
        journal: Journal,
    ) -> None:
        self.target = target
        self.lock_timeout = lock_timeout
        self.read_only = read_only
        self.journal = journal
        self._lock = asyncio.Lock()
        self._setup_lock = asyncio.Lock()
        self.is_setup = False
        self._workers = _Workers(target.max_size if isinstance(target, AsyncConnectionPool) else 1)

    async def drain(self) -> None:
        """Wait until every transaction this runner started has ended (COMMIT or
        ROLLBACK). A caller cancelled mid-transaction returns at once, while its
        transaction runs on (see _Workers.run): closing the pool then would leave it
        open, holding its locks, with its next statement waiting for an event loop that
        may be busy or gone (a test's teardown dropping the schema waited on it for
        good)."""
        await self._workers.drain()

    def shutdown(self) -> None:
        """Let the runner's idle threads go (after :meth:`drain`, when closing)."""
        self._workers.shutdown()

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[AsyncPgConnection]:
        loop = asyncio.get_running_loop()
        if isinstance(self.target, AsyncConnectionPool):
            async with self.target.connection() as conn, _aborrowed(conn):
                yield AsyncPgConnection(conn, loop)
        else:
            async with self._lock, _aborrowed(self.target):
                yield AsyncPgConnection(self.target, loop)

    async def setup(self) -> None:
        async with self._setup_lock:
            if not self.is_setup:
                try:
                    async with self._connection() as conn:
                        await self._workers.run(_setup_once, conn, self.read_only)
                except psycopg.Error as exc:
                    raise (_translated(exc) or exc) from exc
                self.is_setup = True

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if not self.is_setup:
            await self.setup()
        try:
            async with self._connection() as conn:
                return await self._workers.run(_read_once, conn, fn, args, kwargs)
        except psycopg.Error as exc:
            raise (_translated(exc) or exc) from exc

    async def write(
        self, thread_id: str | None, fn: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T:
        if self.read_only:
            raise _read_only_error()
        if not self.is_setup:
            await self.setup()
        for attempt in range(RETRIES + 1):
            try:
                async with self._connection() as conn:
                    return await self._workers.run(
                        _write_once,
                        conn,
                        self.journal,
                        self.lock_timeout,
                        thread_id,
                        fn,
                        args,
                        kwargs,
                    )
            except _RETRYABLE:
                if attempt == RETRIES:
                    raise
                await asyncio.sleep(_backoff(attempt))
            except pg_errors.LockNotAvailable as exc:
                raise _locked(exc, self.lock_timeout) from exc
            except psycopg.Error as exc:
                raise (_translated(exc) or exc) from exc
        raise AssertionError("unreachable")


class ThreadedPostgresRunner:
    """The async runner on a psycopg ``ConnectionPool`` (sync), which
    ``AsyncAgentGitSaver.from_conn_string`` opens for a URL: each transaction runs whole
    on a worker thread, on a pooled connection of its own, exactly as
    :class:`PostgresRunner` runs it for the sync saver; the event loop only waits for it.

    On an ``AsyncConnection`` (:class:`AsyncPostgresRunner`) every statement crosses
    from the logic's thread to the event loop and back: two thread switches a statement,
    about 35 a chat turn, which made an async turn some 35-45% slower than this (measured
    side by side on 60-turn chats). A transaction whose caller is cancelled still runs to
    its COMMIT or ROLLBACK before its connection goes back, as there (:class:`_Workers`).
    """

    sql = sql

    def __init__(
        self,
        target: ConnectionPool[Any],
        *,
        lock_timeout: float,
        read_only: bool,
        journal: Journal,
    ) -> None:
        self.read_only = read_only
        self._make = functools.partial(
            PostgresRunner, target, lock_timeout=lock_timeout, read_only=read_only, journal=journal
        )
        self._runner: PostgresRunner | None = None
        self._setup_lock = asyncio.Lock()
        self._workers = _Workers(target.max_size)

    async def drain(self) -> None:
        """Wait until every transaction this runner started has ended (see
        :meth:`AsyncPostgresRunner.drain`)."""
        await self._workers.drain()

    def shutdown(self) -> None:
        """Let the runner's idle threads go (after :meth:`drain`, when closing)."""
        self._workers.shutdown()

    async def setup(self) -> PostgresRunner:
        """Create or migrate the schema (on a worker thread), once."""
        async with self._setup_lock:
            runner = self._runner
            if runner is None:
                runner = self._runner = await self._workers.run(self._make)
            return runner

    async def read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        runner = self._runner or await self.setup()
        return await self._workers.run(functools.partial(runner.read, fn, *args, **kwargs))

    async def write(
        self, thread_id: str | None, fn: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T:
        if self.read_only:
            raise _read_only_error()
        runner = self._runner or await self.setup()
        return await self._workers.run(
            functools.partial(runner.write, thread_id, fn, *args, **kwargs)
        )


def _connect_error(exc: psycopg.Error, url: str) -> Exception:
    """The error to raise for a first connection that failed, its password masked:
    libpq quotes a URL it cannot parse whole (a ``ValueError`` then), and a host it
    cannot reach, which holds part of the password when that has an unencoded "@".
    Raised outside the except clause, the error carries no link to the original."""
    message = scrub(str(exc).strip(), url)
    if isinstance(exc, psycopg.ProgrammingError):
        return ValueError(f"not a PostgreSQL URL libpq can read: {message}")
    return type(exc)(message)


def open_pool(url: str, *, max_size: int = 8) -> ConnectionPool[Any]:
    """A pool on ``url``, opened. Raises psycopg's ``OperationalError`` naming the server
    and the reason at once when it cannot connect (a pool would retry in the background
    and time out later without saying why), and ``ValueError`` for a URL libpq cannot
    parse (an unclosed IPv6 bracket, an unknown parameter); both with the password
    masked."""
    url = normalized_url(url)
    failed: Exception | None = None
    try:
        psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT).close()
    except (psycopg.ProgrammingError, psycopg.OperationalError) as exc:
        failed = _connect_error(exc, url)
    if failed is not None:
        raise failed
    pool: ConnectionPool[Any] = ConnectionPool(
        url, min_size=1, max_size=max_size, kwargs=pool_kwargs(), open=False
    )
    pool.open(wait=True, timeout=30)
    return pool
