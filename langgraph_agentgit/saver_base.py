"""What the sync and async savers share: every method of LangGraph's contract, written
once in terms of four runners (`_read`, `_write`, `_aread`, `_awrite`) that each saver
implements for its own kind of connection."""

from __future__ import annotations

import logging
import uuid
from abc import abstractmethod
from collections.abc import (
    AsyncIterator,
    Callable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from datetime import timedelta
from types import ModuleType
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from langgraph_agentgit import retention
from langgraph_agentgit.errors import AgentGitError
from langgraph_agentgit.storage.blobs import DEFAULT_CACHE_BYTES, private
from langgraph_agentgit.storage.checkpoints import CheckpointStore
from langgraph_agentgit.storage.serde import StrictSerializer

T = TypeVar("T")
logger = logging.getLogger("langgraph_agentgit.retention")
DEFAULT_CACHE_SIZE = DEFAULT_CACHE_BYTES  # bytes of serialized values; see BlobStore


class AgentGitSaverBase(BaseCheckpointSaver[Any]):
    """Shared implementation of :class:`AgentGitSaver` and :class:`AsyncAgentGitSaver`."""

    store: CheckpointStore

    @property
    def read_only(self) -> bool:
        """Whether the saver was opened ``read_only=True`` (it never writes)."""
        access = getattr(self, "access", None)
        return bool(access is not None and access.read_only)

    def __init__(
        self,
        *,
        sql: ModuleType,
        serde: SerializerProtocol | None = None,
        cache_size: int = DEFAULT_CACHE_SIZE,
        max_age: timedelta | None = None,
    ) -> None:
        super().__init__(serde=serde or StrictSerializer())
        self.cache_size = cache_size
        self.store = CheckpointStore(self.serde, cache_size=cache_size, sql=sql)
        #: Threads outside sessions whose newest checkpoint is older are deleted (see
        #: :meth:`sweep`); None: never.
        self.max_age = None if max_age is None else retention.check_age(max_age, "max_age")
        # The first put sweeps (an opened database may hold expired threads already).
        self._puts_before_sweep = 0

    # --- the runners each saver provides ---------------------------------------------------

    @abstractmethod
    def _read(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(conn, *args)`` in a read transaction, blocking."""

    @abstractmethod
    def _write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(conn, *args)`` in a write transaction, blocking."""

    def _write_in_thread(
        self, thread_id: str, fn: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T:
        """Run ``fn(conn, *args)`` in a write transaction that changes only ``thread_id``
        (its checkpoints and writes, and blobs). A backend with concurrent writers lets
        such writes to different threads run at once; by default it is :meth:`_write`."""
        return self._write(fn, *args, **kwargs)

    async def _awrite_in_thread(
        self, thread_id: str, fn: Callable[..., T], *args: Any, **kwargs: Any
    ) -> T:
        """:meth:`_write_in_thread` without blocking the event loop."""
        return await self._awrite(fn, *args, **kwargs)

    @abstractmethod
    async def _aread(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(conn, *args)`` in a read transaction without blocking the event loop."""

    @abstractmethod
    async def _awrite(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(conn, *args)`` in a write transaction without blocking the event loop."""

    # --- serialization -----------------------------------------------------------------------

    def with_allowlist(
        self, extra_allowlist: Collection[tuple[str, ...]]
    ) -> BaseCheckpointSaver[Any]:
        clone = super().with_allowlist(extra_allowlist)
        if clone is not self:
            # Decoded values are cached per serializer: a wider allowlist decodes differently.
            assert isinstance(clone, AgentGitSaverBase)
            clone.store = CheckpointStore(
                clone.serde, cache_size=self.cache_size, sql=self.store.sql
            )
        return clone

    def get_next_version(self, current: int | str | None, channel: None = None) -> int | str:
        """The channel version after ``current``: ``"<32-digit number>"`` strings.

        LangGraph compares the versions of one checkpoint with each other, so every
        thread keeps one type. Strings are what ``InMemorySaver``, ``SqliteSaver`` and
        LangGraph's Agent Server write (the server's checkpointer adapter replaces this
        method with its own ``"<32 digits>.<random>"`` format), so a thread can move
        between them and us; zero padding keeps the text order the numeric order, and the
        random part those savers add is left out because our checkpoints reference their
        values directly (and runs of zeros compress to almost nothing). A thread written
        with integer versions by langgraph-agentgit 0.1 keeps integers.
        """
        if isinstance(current, int):
            return current + 1
        number = 0 if current is None else int(str(current).split(".", 1)[0])
        return f"{number + 1:032}"

    # --- sync contract -------------------------------------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._read(self.store.get_tuple, config)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        return iter(self._read(_list_all, self.store, config, filter, before, limit))

    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        stored = self._write_in_thread(
            _thread_of(config),
            self.store.put,
            config,
            _captured(checkpoint),
            metadata,
            new_versions,
        )
        if self._sweep_due():
            assert self.max_age is not None
            age = self.max_age
            self._swept(
                lambda: self._write(retention.sweep, self.store, age, retention.SWEEP_BATCH)
            )
        return stored

    def sweep(self, *, max_age: timedelta | None = None, limit: int | None = None) -> int:
        """Delete the threads outside every session whose newest checkpoint is older than
        ``max_age`` (default: the saver's ``max_age``), at most ``limit`` of them, as
        :meth:`delete_thread` deletes (rows a live fork inherits stay). Returns how many
        were deleted. LangGraph's TTL for users without sessions; sessions are pruned by
        ``SessionManager.prune_sessions``.

        A saver made with ``max_age`` sweeps by itself at its first put and then every
        ``retention.SWEEP_EVERY`` (1000) puts, at most ``retention.SWEEP_BATCH`` (100)
        threads each time, in a write transaction of its own after the put's. The age is
        read from the newest checkpoint's id (LangGraph's ids start with their time) and
        confirmed from its ``ts``; a thread whose ids are not LangGraph's and sort after
        them is never swept. Raises ``ValueError`` without any ``max_age`` or for a
        ``limit`` below 1, ``TypeError`` for a ``max_age`` that is not a ``timedelta``."""
        age, limit = self._sweep_options(max_age, limit)
        return self._write(retention.sweep, self.store, age, limit)

    async def asweep(self, *, max_age: timedelta | None = None, limit: int | None = None) -> int:
        """Async twin of :meth:`sweep`."""
        age, limit = self._sweep_options(max_age, limit)
        return await self._awrite(retention.sweep, self.store, age, limit)

    def _sweep_options(
        self, max_age: timedelta | None, limit: int | None
    ) -> tuple[timedelta, int | None]:
        age = max_age if max_age is not None else self.max_age
        if age is None:
            raise ValueError("sweep needs a max_age: pass one, or make the saver with max_age")
        if limit is not None and (
            isinstance(limit, bool) or not isinstance(limit, int) or limit < 1
        ):
            raise ValueError(f"limit must be a whole number of at least 1 or None, not {limit!r}")
        return retention.check_age(age, "max_age"), limit

    def _sweep_due(self) -> bool:
        """Whether this put is the one that sweeps (a race between threads at worst
        sweeps twice)."""
        if self.max_age is None:
            return False
        self._puts_before_sweep -= 1
        if self._puts_before_sweep > 0:
            return False
        self._puts_before_sweep = retention.SWEEP_EVERY
        return True

    def _swept(self, fn: Callable[[], int]) -> None:
        # The put has committed: a sweep that cannot run now (a lock held elsewhere,
        # damage) must not turn it into a failure; the next one tries again.
        try:
            fn()
        except AgentGitError as exc:
            logger.warning("max_age sweep skipped: %s", exc)

    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        self._write_in_thread(
            _thread_of(config), self.store.put_writes, config, writes, task_id, task_path
        )

    def delete_thread(self, thread_id: str) -> None:
        """LangGraph's ``delete_thread``: the thread's checkpoints and writes (a fork's
        inherited history stays with the fork). ``thread_id``: a string, or an int or
        UUID (its text), as a config takes; anything else is a ``TypeError`` and an id
        holding NUL a ``ValueError``, with nothing deleted."""
        self._write(self.store.delete_thread, _id("delete_thread", "thread", thread_id))

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        self._write(self.store.delete_for_runs, _id_list("delete_for_runs", "run", run_ids))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self._write(
            self.store.copy_thread,
            _id("copy_thread", "thread", source_thread_id),
            _id("copy_thread", "thread", target_thread_id),
        )

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self._write(self.store.prune, _id_list("prune", "thread", thread_ids), strategy)

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return self._read(self.store.delta_channel_history, config, list(channels))

    def fork_thread(
        self, source_thread_id: str, checkpoint_id: str, new_thread_id: str
    ) -> RunnableConfig:
        """Start ``new_thread_id`` at ``checkpoint_id`` of ``source_thread_id``.

        Copy-on-write: one row is written whatever the length of the history. The new
        thread sees the source's lineage up to and including the checkpoint, but none of
        the writes the source made at it, so the graph runs on from there exactly as
        LangGraph replays from that checkpoint. Returns the new thread's config::

            config = saver.fork_thread("chat-1", old_checkpoint_id, "chat-1-retry")
            graph.invoke({"messages": [("user", "try again")]}, config)

        Thread ids are strings (an int or UUID by its text), the checkpoint id a string:
        anything else is a ``TypeError``; a thread id holding NUL or an empty checkpoint
        id is a ``ValueError``. Raises
        :class:`ThreadNotFoundError`, :class:`CheckpointNotFoundError` and
        :class:`ThreadExistsError` when the source, the checkpoint or the new id say so.
        """
        return self._write(
            self.store.fork_thread,
            _id("fork_thread", "thread", source_thread_id),
            _checkpoint_id("fork_thread", checkpoint_id),
            _id("fork_thread", "thread", new_thread_id),
        )

    def checkpoint_count(self, thread_id: str) -> int:
        """Root-namespace checkpoints written into ``thread_id`` (inherited ones excluded)."""
        return self._read(self.store.checkpoint_count, str(thread_id))

    # --- async contract ---------------------------------------------------------------------

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self._aread(self.store.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        for item in await self._aread(_list_all, self.store, config, filter, before, limit):
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        stored = await self._awrite_in_thread(
            _thread_of(config),
            self.store.put,
            config,
            _captured(checkpoint),
            metadata,
            new_versions,
        )
        if self._sweep_due():
            assert self.max_age is not None
            try:
                await self._awrite(retention.sweep, self.store, self.max_age, retention.SWEEP_BATCH)
            except AgentGitError as exc:
                logger.warning("max_age sweep skipped: %s", exc)
        return stored

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await self._awrite_in_thread(
            _thread_of(config), self.store.put_writes, config, writes, task_id, task_path
        )

    async def adelete_thread(self, thread_id: str) -> None:
        await self._awrite(self.store.delete_thread, _id("adelete_thread", "thread", thread_id))

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await self._awrite(self.store.delete_for_runs, _id_list("adelete_for_runs", "run", run_ids))

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self._awrite(
            self.store.copy_thread,
            _id("acopy_thread", "thread", source_thread_id),
            _id("acopy_thread", "thread", target_thread_id),
        )

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await self._awrite(self.store.prune, _id_list("aprune", "thread", thread_ids), strategy)

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return await self._aread(self.store.delta_channel_history, config, list(channels))

    async def afork_thread(
        self, source_thread_id: str, checkpoint_id: str, new_thread_id: str
    ) -> RunnableConfig:
        """Async twin of :meth:`fork_thread`."""
        return await self._awrite(
            self.store.fork_thread,
            _id("afork_thread", "thread", source_thread_id),
            _checkpoint_id("afork_thread", checkpoint_id),
            _id("afork_thread", "thread", new_thread_id),
        )

    async def acheckpoint_count(self, thread_id: str) -> int:
        """Async twin of :meth:`checkpoint_count`."""
        return await self._aread(self.store.checkpoint_count, str(thread_id))


def _thread_of(config: RunnableConfig) -> str:
    """The thread a write goes to, as a lock key (the store validates the config)."""
    return str((config.get("configurable") or {}).get("thread_id", ""))


def _captured(checkpoint: Checkpoint) -> Checkpoint:
    """The checkpoint as it is when ``put`` is called. LangGraph hands ``put`` its live
    channel values and runs the next step meanwhile; a waiting edge adds to the very set
    it gave. Containers are copied here, before any lock or worker thread, as
    ``InMemorySaver`` serializes on entry (the items themselves stay shared)."""
    values = checkpoint["channel_values"]
    return {
        **checkpoint,
        "channel_values": {
            k: list(v) if type(v) is list else private(v) for k, v in values.items()
        },
    }


def _list_all(
    conn: Any,
    store: CheckpointStore,
    config: RunnableConfig | None,
    filter: dict[str, Any] | None,
    before: RunnableConfig | None,
    limit: int | None,
) -> list[CheckpointTuple]:
    # Materialized inside the transaction: a generator would outlive the lock.
    return list(store.list_checkpoints(conn, config, filter=filter, before=before, limit=limit))


def _id_list(method: str, kind: str, ids: object) -> list[str]:
    """``ids`` as a list of strings. A lone string (or bytes) is refused with
    ``TypeError``: iterated, it would name one id per character and silently match
    nothing. An id holding NUL is refused with ``ValueError``: SQLite compares such text
    up to the NUL ("r\\x00" would name run "r"), PostgreSQL cannot hold it."""
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise TypeError(
            f"{method}() takes a list of {kind} ids, not {type(ids).__name__} {ids!r}: "
            f"wrap a single id in a list"
        )
    return [_id(method, kind, i) for i in ids]


def _checkpoint_id(method: str, value: object) -> str:
    """A checkpoint id a fork starts at: a non-empty string. ``None`` or ``""`` named
    the latest checkpoint and left a fork that did not record where it started (search
    missed what it inherited, and its export could not be imported); another type was a
    driver error on PostgreSQL."""
    if not isinstance(value, str):
        raise TypeError(
            f"{method}(): a checkpoint id must be a string, not {type(value).__name__} {value!r}"
        )
    if not value:
        raise ValueError(f"{method}(): the checkpoint id is empty")
    return value


def _id(method: str, kind: str, value: object) -> str:
    """One thread or run id as the text it is stored under: a string, or an int or UUID
    (LangGraph's configs take those and store their text). Anything else (None, bytes,
    a float, a container) is refused with ``TypeError``: its text (``"None"``) would name
    some other id."""
    if isinstance(value, str):
        if "\x00" in value:
            # SQLite compares such text up to the NUL ("r\x00" would name run "r"),
            # PostgreSQL cannot hold it.
            raise ValueError(f"{method}(): a {kind} id must not hold NUL (0x00): {value!r}")
        return value
    if isinstance(value, (int, uuid.UUID)) and not isinstance(value, bool):
        return str(value)
    raise TypeError(
        f"{method}(): a {kind} id must be a string (or an int or UUID), not "
        f"{type(value).__name__} {value!r}"
    )
