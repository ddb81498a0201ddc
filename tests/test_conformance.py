"""LangGraph's checkpointer conformance suite, against every way the saver can be driven."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pg
import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.report import ProgressCallbacks
from psycopg_pool import AsyncConnectionPool

from langgraph_agentgit import AgentGitSaver, AsyncAgentGitSaver


class SyncMethodsShim(BaseCheckpointSaver):
    """Drives AgentGitSaver's *sync* methods through the async names the suite calls."""

    def __init__(self, inner: AgentGitSaver) -> None:
        super().__init__(serde=inner.serde)
        self.inner = inner

    async def aget_tuple(self, config: RunnableConfig) -> Any:
        return self.inner.get_tuple(config)

    async def alist(self, config: Any, **kwargs: Any) -> AsyncIterator[Any]:
        for item in self.inner.list(config, **kwargs):
            yield item

    async def aput(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        return self.inner.put(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self, config: Any, writes: Sequence[Any], task_id: str, task_path: str = ""
    ) -> None:
        self.inner.put_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        self.inner.delete_thread(thread_id)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        self.inner.delete_for_runs(run_ids)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self.inner.copy_thread(source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self.inner.prune(thread_ids, strategy=strategy)


@checkpointer_test(name="AsyncAgentGitSaver")
async def async_saver() -> AsyncIterator[BaseCheckpointSaver]:
    async with AsyncAgentGitSaver.from_conn_string(":memory:") as saver:
        yield saver


@checkpointer_test(name="AgentGitSaver")
async def sync_saver_async_methods() -> AsyncIterator[BaseCheckpointSaver]:
    with AgentGitSaver.from_conn_string(":memory:") as saver:
        yield saver


@checkpointer_test(name="AgentGitSaver (sync methods)")
async def sync_saver_sync_methods() -> AsyncIterator[BaseCheckpointSaver]:
    with AgentGitSaver.from_conn_string(":memory:") as saver:
        yield SyncMethodsShim(saver)


@checkpointer_test(name="AsyncAgentGitSaver on Postgres")
async def async_saver_postgres() -> AsyncIterator[BaseCheckpointSaver]:
    with pg.fresh_schema() as url:
        async with AsyncAgentGitSaver.from_conn_string(url) as saver:
            yield saver


@checkpointer_test(name="AsyncAgentGitSaver on a Postgres AsyncConnectionPool")
async def async_saver_postgres_async_pool() -> AsyncIterator[BaseCheckpointSaver]:
    """Statements on the event loop (from_conn_string's sync pool runs them on threads)."""
    with pg.fresh_schema() as url:
        async with AsyncConnectionPool(url, open=False) as pool:
            saver = AsyncAgentGitSaver(pool)
            yield saver
            await saver.postgres.drain()


@checkpointer_test(name="AgentGitSaver on Postgres")
async def sync_saver_postgres() -> AsyncIterator[BaseCheckpointSaver]:
    with pg.fresh_schema() as url, AgentGitSaver.from_conn_string(url) as saver:
        yield saver


@checkpointer_test(name="AgentGitSaver on Postgres (sync methods)")
async def sync_saver_postgres_sync_methods() -> AsyncIterator[BaseCheckpointSaver]:
    with pg.fresh_schema() as url, AgentGitSaver.from_conn_string(url) as saver:
        yield SyncMethodsShim(saver)


POSTGRES = [
    async_saver_postgres,
    async_saver_postgres_async_pool,
    sync_saver_postgres,
    sync_saver_postgres_sync_methods,
]


@pytest.mark.parametrize(
    "registered",
    [
        async_saver,
        sync_saver_async_methods,
        sync_saver_sync_methods,
        async_saver_postgres,
        async_saver_postgres_async_pool,
        sync_saver_postgres,
        sync_saver_postgres_sync_methods,
    ],
    ids=lambda r: r.name,
)
async def test_full_conformance(registered: Any) -> None:
    if any(registered is p for p in POSTGRES):
        pg.require()
    report = await validate(registered, progress=ProgressCallbacks.verbose())
    report.print_report()
    detected = {name for name, result in report.results.items() if result.detected}
    assert len(detected) == 8, f"capabilities not detected: {set(report.results) - detected}"
    failures = [f for result in report.results.values() for f in result.failures]
    assert not failures, "\n".join(failures)
    assert all(r.tests_skipped == 0 for r in report.results.values())
    assert report.conformance_level() == "FULL"
