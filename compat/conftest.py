"""Fixtures for running LangGraph's own test files against our savers (`make compat`).

``compat/prepare.py`` copies this file over LangGraph's ``tests/conftest.py``. It provides
the fixtures that conftest defines, under the same names and shapes, with the checkpointer
fixtures parametrized over our savers instead of LangGraph's:

- ``sync_checkpointer``: ``agentgit_file`` (``AgentGitSaver`` on a database file),
  ``agentgit_memory`` (``AgentGitSaver`` on ``":memory:"``) and, for reference,
  ``sqlite_ref`` (LangGraph's ``SqliteSaver`` on ``":memory:"``, as in its own suite);
- ``async_checkpointer``: the same two ``AgentGitSaver`` subjects (it serves ``ainvoke``, as
  ``InMemorySaver`` does in LangGraph's list), ``agentgit_async`` (``AsyncAgentGitSaver`` on
  a file) and ``sqlite_aio_ref`` (``AsyncSqliteSaver``);
- on PostgreSQL (``AGENTGIT_TEST_POSTGRES``, default the local server's ``test`` database;
  a fresh schema per test): ``agentgit_postgres`` (``AgentGitSaver``, in both lists) and
  ``agentgit_postgres_async`` (``AsyncAgentGitSaver``). Without a server they are skipped
  with the reason (failed under ``AGENTGIT_REQUIRE_POSTGRES=1``).

Variants that need services LangGraph starts with docker compose (the redis ``cache``, the
postgres stores) are generated and then deselected, as are tests that request no
checkpointer fixture (they never touch a saver); the reasons and counts are printed at the
end, with a table of outcomes per subject and every test that passes for the reference
saver but not for one of ours. The same data goes to ``compat-results.json``.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote
from uuid import UUID

import pytest
from langgraph.cache.base import BaseCache
from langgraph.cache.memory import InMemoryCache
from langgraph.cache.sqlite import SqliteCache
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.store.base import BaseStore
from langgraph.store.memory import InMemoryStore
from langgraph.types import Durability
from pytest_mock import MockerFixture

from langgraph_agentgit import AgentGitSaver, AsyncAgentGitSaver

OURS_SYNC = ("agentgit_file", "agentgit_memory", "agentgit_postgres")
OURS_ASYNC = (*OURS_SYNC, "agentgit_async", "agentgit_postgres_async")
SYNC_SUBJECTS = (*OURS_SYNC, "sqlite_ref")
ASYNC_SUBJECTS = (*OURS_ASYNC, "sqlite_aio_ref")
REFERENCE = {"sync_checkpointer": "sqlite_ref", "async_checkpointer": "sqlite_aio_ref"}
SUBJECTS = (*OURS_ASYNC, "sqlite_ref", "sqlite_aio_ref")

NEEDS_REDIS = "needs the redis service LangGraph's suite starts with docker compose"
NEEDS_POSTGRES = "tests LangGraph's Postgres store (not a checkpointer) on its docker services"
NO_CHECKPOINTER = "requests no checkpointer fixture, so none of our code runs"

RESULTS_FILE = "compat-results.json"


POSTGRES_URL = os.environ.get("AGENTGIT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A URL on a fresh schema of the test server, dropped afterwards."""
    import psycopg

    try:
        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        reason = f"no PostgreSQL server answers at {POSTGRES_URL} ({exc})"
        if os.environ.get("AGENTGIT_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"AGENTGIT_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    # Not uuid4: deterministic_uuids patches it, and the run's snapshots count its calls.
    schema = f"agentgit_compat_{os.getpid()}_{os.urandom(6).hex()}"
    with admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{POSTGRES_URL}?options={quote(f'-csearch_path={schema}')}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# --- LangGraph's fixtures, same names and shapes ----------------------------------------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture()
def deterministic_uuids(mocker: MockerFixture) -> MockerFixture:
    side_effect = (UUID(f"00000000-0000-4000-8000-{i:012}", version=4) for i in range(10000))
    return mocker.patch("uuid.uuid4", side_effect=side_effect)


@pytest.fixture(params=["sync", "async", "exit"])
def durability(request: pytest.FixtureRequest) -> Durability:
    return request.param


@pytest.fixture(params=["sqlite", "memory", "redis"])
def cache(request: pytest.FixtureRequest) -> Iterator[BaseCache]:
    if request.param == "sqlite":
        yield SqliteCache(path=":memory:")
    elif request.param == "memory":
        yield InMemoryCache()
    else:
        pytest.fail(f"{request.param} cache variants are deselected at collection")


STORES = ["in_memory", "postgres", "postgres_pipe", "postgres_pool"]
ASYNC_STORES = ["in_memory", "postgres_aio", "postgres_aio_pipe", "postgres_aio_pool"]


@pytest.fixture(params=STORES)
def sync_store(request: pytest.FixtureRequest) -> Iterator[BaseStore]:
    if request.param != "in_memory":
        pytest.fail(f"{request.param} store variants are deselected at collection")
    yield InMemoryStore()


@pytest.fixture(params=ASYNC_STORES)
async def async_store(request: pytest.FixtureRequest) -> AsyncIterator[BaseStore]:
    if request.param != "in_memory":
        pytest.fail(f"{request.param} store variants are deselected at collection")
    yield InMemoryStore()


@pytest.fixture(params=SYNC_SUBJECTS)
def sync_checkpointer(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[BaseCheckpointSaver]:
    name = request.param
    if name == "sqlite_ref":
        with SqliteSaver.from_conn_string(":memory:") as reference:
            yield reference
        return
    if name == "agentgit_postgres":
        with postgres_schema() as url, AgentGitSaver.from_conn_string(url) as saver:
            yield saver
        return
    path = str(tmp_path / "agentgit.db") if name == "agentgit_file" else ":memory:"
    with AgentGitSaver.from_conn_string(path) as saver:
        yield saver


@pytest.fixture(params=ASYNC_SUBJECTS)
async def async_checkpointer(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[BaseCheckpointSaver]:
    name = request.param
    db_file = str(tmp_path / "agentgit.db")
    if name == "sqlite_aio_ref":
        async with AsyncSqliteSaver.from_conn_string(":memory:") as reference:
            yield reference
    elif name == "agentgit_async":
        async with AsyncAgentGitSaver.from_conn_string(db_file) as aio:
            yield aio
    elif name == "agentgit_postgres_async":
        with postgres_schema() as url:
            async with AsyncAgentGitSaver.from_conn_string(url) as aio:
                yield aio
    elif name == "agentgit_postgres":
        with postgres_schema() as url, AgentGitSaver.from_conn_string(url) as saver:
            yield saver
    else:
        path = db_file if name == "agentgit_file" else ":memory:"
        with AgentGitSaver.from_conn_string(path) as saver:
            yield saver


# --- deselection with reasons -----------------------------------------------------------------

_DESELECTED = pytest.StashKey[Counter]()


def _deselect_reason(item: pytest.Item) -> str | None:
    fixtures = getattr(item, "fixturenames", ())
    if not any(name in fixtures for name in REFERENCE):
        return NO_CHECKPOINTER
    params = getattr(getattr(item, "callspec", None), "params", {})
    if params.get("cache") == "redis":
        return NEEDS_REDIS
    for store in ("sync_store", "async_store"):
        if str(params.get(store, "in_memory")).startswith("postgres"):
            return NEEDS_POSTGRES
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    reasons: Counter[str] = Counter()
    for item in items:
        reason = _deselect_reason(item)
        if reason is None:
            kept.append(item)
        else:
            dropped.append(item)
            reasons[reason] += 1
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    config.stash[_DESELECTED] = reasons
    # Under xdist only workers collect; each collects everything, so any one worker's
    # counts are the session's, handed to the controller through workeroutput.
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:
        workeroutput["compat_deselected"] = dict(reasons)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    reasons = getattr(node, "workeroutput", {}).get("compat_deselected")
    if reasons is not None:
        node.config.stash[_DESELECTED] = Counter(reasons)


# --- outcome per subject ----------------------------------------------------------------------

# When a test has several reports (setup, call, teardown), the worst outcome stands.
_RANK = {"passed": 0, "skipped": 1, "xfailed": 1, "xpassed": 2, "error": 3, "failed": 4}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    report = yield
    params = getattr(getattr(item, "callspec", None), "params", {})
    for fixture in REFERENCE:
        if fixture in params:
            subject = params[fixture]
            # The same test with the subject blanked out pairs ours with the reference.
            key = re.sub(rf"(?<=[\[-]){re.escape(subject)}(?=[\]-])", "*", item.nodeid)
            report.user_properties.append(("compat_subject", subject))
            report.user_properties.append(("compat_key", key))
            report.user_properties.append(("compat_fixture", fixture))
            break
    return report


def _outcome(report: Any) -> str:
    if report.when == "call":
        if hasattr(report, "wasxfail"):
            return "xfailed" if report.skipped else "xpassed"
        return report.outcome
    if report.failed:
        return "error"
    return "skipped" if report.skipped else "passed"


def _outcomes(terminalreporter: Any) -> dict[str, dict[str, Any]]:
    """nodeid -> {subject, key, fixture, outcome} from every report of the session."""
    by_test: dict[str, dict[str, Any]] = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            props = dict(getattr(report, "user_properties", ()) or ())
            if "compat_subject" not in props or not hasattr(report, "when"):
                continue
            entry = by_test.setdefault(
                report.nodeid,
                {
                    "subject": props["compat_subject"],
                    "key": props["compat_key"],
                    "fixture": props["compat_fixture"],
                    "outcome": "passed",
                },
            )
            outcome = _outcome(report)
            if _RANK[outcome] > _RANK[entry["outcome"]]:
                entry["outcome"] = outcome
    return by_test


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    by_test = _outcomes(terminalreporter)
    reasons: Counter[str] = config.stash.get(_DESELECTED, Counter())
    write = terminalreporter.write_line
    terminalreporter.section("compat: outcomes per subject")
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for entry in by_test.values():
        counts[entry["subject"]][entry["outcome"]] += 1
    columns = ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
    write(f"{'subject':<24}" + "".join(f"{c:>9}" for c in columns))
    for subject in SUBJECTS:
        if subject in counts:
            row = counts[subject]
            write(f"{subject:<24}" + "".join(f"{row[c]:>9}" for c in columns))
    for reason, count in sorted(reasons.items()):
        write(f"deselected {count}: {reason}")

    reference_by_key = {
        entry["key"]: entry["outcome"]
        for entry in by_test.values()
        if entry["subject"] == REFERENCE[entry["fixture"]]
    }
    gaps = sorted(
        (nodeid, entry["outcome"], reference_by_key.get(entry["key"], "not run"))
        for nodeid, entry in by_test.items()
        if entry["subject"] not in REFERENCE.values()
        and entry["outcome"] != reference_by_key.get(entry["key"])
    )
    terminalreporter.section("compat: where ours differ from the reference saver")
    if not by_test:
        write("no test ran")
    elif not gaps:
        write("nowhere: every test has the same outcome for our savers as for SqliteSaver")
    for nodeid, ours, reference in gaps:
        write(f"{ours:<8} (reference {reference}) {nodeid}")

    results = {
        "counts": {subject: dict(row) for subject, row in counts.items()},
        "deselected": dict(reasons),
        "differences": [{"nodeid": n, "ours": o, "reference": r} for n, o, r in gaps],
    }
    Path(config.rootpath, RESULTS_FILE).write_text(json.dumps(results, indent=2) + "\n")
