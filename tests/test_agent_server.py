"""`AsyncAgentGitSaver` as the checkpointer of LangGraph's Agent Server (`langgraph dev`).

Two real `langgraph dev` processes serve ``examples/langgraph_server``: one with our saver
(the example's ``langgraph.json`` as shipped), one with the server's default persistence
(the same file without its ``"checkpointer"`` key), which is the reference. The same calls
go to both through ``langgraph_sdk`` -- runs, an interrupt and its resume, history,
Studio's "re-run from here" (a ``__copy__`` fork, then a run with no input), copy, prune,
delete -- and every observation (values, next, tasks, interrupts, history shape) must be
the same on both once ids are renamed by order of first appearance.

Needs ``langgraph-cli[inmem]`` (in the ``dev`` extra on Python 3.11+). Without it the test
is skipped, unless ``AGENTGIT_REQUIRE_SERVER=1`` (set by ``.ci/run``) makes that a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pg
import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "langgraph_server"
GRAPH_ID = "ask"
STARTUP_TIMEOUT = 90.0  # a loaded 2-core machine can take tens of seconds to import the server
REQUEST_TIMEOUT = 30.0
SCENARIO_TIMEOUT = 180.0
# Keeps the server from reaching anything but loopback: no CLI analytics, no version check
# against the package index, no tracing, no metrics export, no license beacon.
QUIET_ENV = {
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "LANGGRAPH_NO_VERSION_CHECK": "true",
    "LANGSMITH_TRACING": "false",
    "LANGSMITH_TRACING_V2": "false",
    "LANGCHAIN_TRACING_V2": "false",
    "LANGCHAIN_TRACING": "false",
    "OTEL_ENABLED": "false",
    "LANGGRAPH_METRICS_ENABLED": "false",
    "PYTHONUNBUFFERED": "1",
}
SECRET_ENV = (
    "LANGSMITH_API_KEY",
    "LANGCHAIN_API_KEY",
    "LANGSMITH_CONTROL_PLANE_API_KEY",
    "LANGGRAPH_CLOUD_LICENSE_KEY",
    "LANGSMITH_ENDPOINT",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)
ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}")
API_URL = re.compile(r"API: (?:\x1b\[[0-9;]*m)?(http://127\.0\.0\.1:\d+)")


def langgraph_executable() -> str | None:
    if importlib.util.find_spec("langgraph_api") is None:
        return None
    beside = Path(sys.executable).with_name("langgraph")
    return str(beside) if beside.exists() else shutil.which("langgraph")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    name: str
    folder: Path
    process: subprocess.Popen[bytes]
    log: Path
    db: str | None  # our server's database: a SQLite file or a Postgres URL
    url: str = ""

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def start_server(
    exe: str, folder: Path, name: str, custom: bool, database: str | None = None
) -> Server:
    """Copy the example to ``folder`` and start ``langgraph dev`` there (not yet ready).
    With ``custom``, our checkpointer on ``database`` (default: a file in ``folder``)."""
    folder.mkdir()
    for item in ("graph.py", "checkpointer.py"):
        shutil.copy(EXAMPLE / item, folder / item)
    config = json.loads((EXAMPLE / "langgraph.json").read_text())
    assert "checkpointer" in config, "the example must configure our checkpointer"
    if not custom:
        del config["checkpointer"]
    (folder / "langgraph.json").write_text(json.dumps(config))
    db = (database or str(folder / "agentgit.db")) if custom else None
    env = {k: v for k, v in os.environ.items() if k not in SECRET_ENV}
    env.update(QUIET_ENV)
    if db is not None:
        env["AGENTGIT_SERVER_DB"] = db
    log = folder / "server.log"
    command = [exe, "dev", "--no-browser", "--no-reload", "--config", "langgraph.json"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(free_port())],
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            # Its own process group, so stopping it reaches nothing but what it started.
            start_new_session=True,
        )
    return Server(name, folder, process, log, db)


def wait_ready(server: Server, deadline: float) -> None:
    # The server moves to another port when the one given is taken: read the one it chose.
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"{server.name} server exited early:\n{server.output()[-6000:]}")
        found = API_URL.search(server.log.read_text(errors="replace"))
        if found:
            try:
                if httpx.get(found.group(1) + "/ok", timeout=2.0).status_code == 200:
                    server.url = found.group(1)
                    return
            except httpx.HTTPError:
                pass
        time.sleep(0.2)
    pytest.fail(
        f"{server.name} server not ready in {STARTUP_TIMEOUT:.0f} s:\n{server.output()[-6000:]}"
    )


def stop_server(server: Server) -> None:
    if server.process.poll() is None:
        try:
            os.killpg(server.process.pid, signal.SIGTERM)
            server.process.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.process.pid, signal.SIGKILL)
            server.process.wait(timeout=15)


@pytest.fixture(params=["sqlite", "postgres"])
def servers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    """Our server (the example, on a SQLite file or on a Postgres schema) and one with
    LangGraph's default persistence."""
    if sys.version_info < (3, 11):
        # Not a missing install: langgraph-api supports Python 3.11+ only, so the
        # `server` extra installs nothing here and AGENTGIT_REQUIRE_SERVER cannot apply.
        pytest.skip("LangGraph's Agent Server (langgraph-api) needs Python 3.11+")
    exe = langgraph_executable()
    if exe is None:
        reason = "langgraph-api is not installed (pip install -e '.[dev]' on Python 3.11+)"
        if os.environ.get("AGENTGIT_REQUIRE_SERVER") == "1":
            pytest.fail(reason + "; AGENTGIT_REQUIRE_SERVER=1 forbids skipping")
        pytest.skip(reason)
    started: list[Server] = []
    with contextlib.ExitStack() as stack:
        database = stack.enter_context(pg.fresh_schema()) if request.param == "postgres" else None
        try:
            started.append(
                start_server(exe, tmp_path / "agentgit", "agentgit", custom=True, database=database)
            )
            started.append(start_server(exe, tmp_path / "default", "default", custom=False))
            deadline = time.monotonic() + STARTUP_TIMEOUT
            for server in started:
                wait_ready(server, deadline)
            yield started[0], started[1]
        finally:
            for server in started:
                stop_server(server)


# --- what a scenario observes ------------------------------------------------------------


@dataclass
class Transcript:
    """Observations by label, with ids renamed ``#0, #1, ...`` by first appearance, so two
    servers that hand out different ids but relate them the same way read the same."""

    steps: dict[str, Any] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)

    def canon(self, value: Any) -> Any:
        if isinstance(value, str) and ID.fullmatch(value):
            return self.names.setdefault(value, f"#{len(self.names)}")
        if isinstance(value, dict):
            return {self.canon(k): self.canon(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.canon(v) for v in value]
        return value

    async def record(self, label: str, call: Awaitable[Any], view: Callable[[Any], Any]) -> Any:
        """Await ``call``; record ``view(result)``, or the HTTP status / exception it raised."""
        try:
            result = await call
        except httpx.HTTPStatusError as exc:
            self.steps[label] = {"http_error": exc.response.status_code}
            return None
        except Exception as exc:
            self.steps[label] = {"error": type(exc).__name__, "detail": str(exc)[:300]}
            return None
        self.steps[label] = self.canon(view(result))
        return result


def state_view(state: dict[str, Any]) -> dict[str, Any]:
    metadata = state.get("metadata") or {}
    return {
        "values": state["values"],
        "next": state["next"],
        "tasks": [
            {k: task.get(k) for k in ("id", "name", "error", "interrupts")}
            for task in state["tasks"]
        ],
        "interrupts": state.get("interrupts"),
        "checkpoint": (state.get("checkpoint") or {}).get("checkpoint_id"),
        "parent": (state.get("parent_checkpoint") or {}).get("checkpoint_id"),
        "metadata": {k: metadata.get(k) for k in ("source", "step", "parents")},
    }


def history_view(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [state_view(state) for state in history]


def thread_view(thread: dict[str, Any]) -> dict[str, Any]:
    return {
        "thread_id": thread["thread_id"],
        "status": thread["status"],
        "values": thread.get("values"),
        "interrupts": thread.get("interrupts"),
        "graph_id": (thread.get("metadata") or {}).get("graph_id"),
    }


def same(value: Any) -> Any:
    return value


# Every label a scenario records, in order; both transcripts must hold each one.
LABELS = [
    "run 1 (stops at the interrupt)",
    "state while interrupted",
    "thread while interrupted",
    "resume",
    "state after resume",
    "thread after resume",
    "history",
    "re-run at the waiting checkpoint: fork",
    "re-run at the waiting checkpoint: state after fork",
    "re-run at the waiting checkpoint: run",
    "re-run at the waiting checkpoint: state",
    "re-run at the waiting checkpoint: resume",
    "re-run at the waiting checkpoint: state after resume",
    "re-run before a: fork",
    "re-run before a: state after fork",
    "re-run before a: run",
    "re-run before a: state",
    "re-run before b: fork",
    "re-run before b: state after fork",
    "re-run before b: run",
    "re-run before b: state",
    "history after the re-runs",
    "copy",
    "state of the copy",
    "history of the copy",
    "run on the copy",
    "state of the copy after its run",
    "history of the original after the copy's run",
    "prune keep_latest",
    "prune delete (the copy)",
    "the pruned copy",
    "delete",
    "the deleted thread",
    "state of the deleted thread",
]


def at(history: list[dict[str, Any]], next_nodes: list[str]) -> str:
    """The id of the (only) checkpoint in ``history`` whose next nodes are ``next_nodes``."""
    found = [s["checkpoint"]["checkpoint_id"] for s in history if s["next"] == next_nodes]
    assert len(found) == 1, (next_nodes, [s["next"] for s in history])
    return str(found[0])


async def scenario(
    url: str, before_delete: Callable[[list[str]], Awaitable[Any]] | None = None
) -> tuple[Transcript, dict[str, Any]]:
    """Drive one server; returns its transcript and the raw ids of the threads it made
    (plus what ``before_delete`` returned, called with them before prune and delete)."""
    from langgraph_sdk import get_client

    client = get_client(url=url, timeout=httpx.Timeout(REQUEST_TIMEOUT))
    threads, runs = client.threads, client.runs
    t = Transcript()
    thread = await threads.create(metadata={"purpose": "agent-server-test"})
    tid = thread["thread_id"]
    t.canon(tid)

    await t.record(LABELS[0], runs.wait(tid, GRAPH_ID, input={"steps": []}), same)
    await t.record(LABELS[1], threads.get_state(tid), state_view)
    await t.record(LABELS[2], threads.get(tid), thread_view)
    await t.record(LABELS[3], runs.wait(tid, GRAPH_ID, command={"resume": "yes"}), same)
    await t.record(LABELS[4], threads.get_state(tid), state_view)
    await t.record(LABELS[5], threads.get(tid), thread_view)
    history = await t.record(LABELS[6], threads.get_history(tid, limit=100), history_view)
    assert history, t.steps[LABELS[6]]

    # Studio's "re-run from here": fork the chosen checkpoint, then run with no input.
    for where, next_nodes, resume in (
        ("re-run at the waiting checkpoint", ["ask"], "no"),
        ("re-run before a", ["a"], None),
        ("re-run before b", ["b"], None),
    ):
        checkpoint_id = at(history, next_nodes)
        fork = threads.update_state(tid, None, as_node="__copy__", checkpoint_id=checkpoint_id)
        await t.record(f"{where}: fork", fork, lambda r: r["checkpoint"])
        await t.record(f"{where}: state after fork", threads.get_state(tid), state_view)
        await t.record(f"{where}: run", runs.wait(tid, GRAPH_ID, input=None), same)
        await t.record(f"{where}: state", threads.get_state(tid), state_view)
        if resume is not None:
            command = {"resume": resume}
            await t.record(f"{where}: resume", runs.wait(tid, GRAPH_ID, command=command), same)
            await t.record(f"{where}: state after resume", threads.get_state(tid), state_view)
    await t.record(LABELS[21], threads.get_history(tid, limit=100), history_view)

    copy = await t.record(LABELS[22], threads.copy(tid), thread_view)
    copy_id = str(copy["thread_id"]) if copy else ""
    if copy_id:
        await t.record(LABELS[23], threads.get_state(copy_id), state_view)
        await t.record(LABELS[24], threads.get_history(copy_id, limit=100), history_view)
        run = runs.wait(copy_id, GRAPH_ID, input={"steps": ["copy"]})
        await t.record(LABELS[25], run, same)
        await t.record(LABELS[26], threads.get_state(copy_id), state_view)
    await t.record(LABELS[27], threads.get_history(tid, limit=100), history_view)
    made: dict[str, Any] = {"thread": tid, "copy": copy_id}
    if before_delete is not None:
        made["before_delete"] = await before_delete([tid, copy_id])

    await t.record(LABELS[28], threads.prune([tid], strategy="keep_latest"), same)
    if copy_id:
        await t.record(LABELS[29], threads.prune([copy_id]), same)
        await t.record(LABELS[30], threads.get(copy_id), thread_view)
    await t.record(LABELS[31], threads.delete(tid), same)
    await t.record(LABELS[32], threads.get(tid), thread_view)
    await t.record(LABELS[33], threads.get_state(tid), state_view)
    return t, made


async def begun_outside(url: str, db: str | None, graph_file: Path) -> dict[str, Any]:
    """A thread begun without the server, then resumed through it.

    With our saver the first run is made in this process, straight on the server's
    database (as a script or ``SessionManager`` would); with the default persistence,
    which nothing outside the server can write, it is made through the server.
    """
    from langgraph_sdk import get_client

    from langgraph_agentgit import AsyncAgentGitSaver

    spec = importlib.util.spec_from_file_location("agent_server_graph", graph_file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # StateGraph reads the state's (string) annotations through the module's entry here.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    client = get_client(url=url, timeout=httpx.Timeout(REQUEST_TIMEOUT))
    thread = await client.threads.create(graph_id=GRAPH_ID)
    tid = thread["thread_id"]
    if db is not None:
        async with AsyncAgentGitSaver.from_conn_string(str(db)) as saver:
            graph = module.builder.compile(checkpointer=saver)
            await graph.ainvoke({"steps": []}, {"configurable": {"thread_id": tid}})
    else:
        await client.runs.wait(tid, GRAPH_ID, input={"steps": []})
    t = Transcript()
    t.canon(tid)
    await t.record("state", client.threads.get_state(tid), state_view)
    await t.record("resume", client.runs.wait(tid, GRAPH_ID, command={"resume": "yes"}), same)
    await t.record("after", client.threads.get_state(tid), state_view)
    view: dict[str, Any] = {}
    for label, observed in t.steps.items():
        if isinstance(observed, dict) and "values" in observed:
            # Checkpoint ids and metadata come from different writers here; compare the state.
            observed = {k: observed[k] for k in ("values", "next")} | {
                "interrupts": [i["value"] for i in observed["interrupts"] or []]
            }
        view[label] = observed
    return view


async def stored_checkpoints(db: str, thread_ids: list[str]) -> dict[str, int]:
    from langgraph_agentgit import AsyncAgentGitSaver

    async with AsyncAgentGitSaver.from_conn_string(str(db)) as saver:
        counts = {}
        for thread_id in thread_ids:
            config = {"configurable": {"thread_id": thread_id}}
            counts[thread_id] = len([c async for c in saver.alist(config)])
        return counts


def test_agent_server_matches_default_persistence(
    servers: tuple[Server, Server], subtests: pytest.Subtests
) -> None:
    ours, default = servers
    db = ours.db
    assert db is not None

    async def drive() -> tuple[Any, ...]:
        async with asyncio.timeout(SCENARIO_TIMEOUT):
            (mine, made), (reference, _) = await asyncio.gather(
                scenario(ours.url, lambda ids: stored_checkpoints(db, ids)),
                scenario(default.url),
            )
            log_after_scenario = ours.output()
            graph_file = ours.folder / "graph.py"
            outside_mine, outside_reference = await asyncio.gather(
                begun_outside(ours.url, db, graph_file),
                begun_outside(default.url, None, graph_file),
            )
            after = await stored_checkpoints(db, [made["thread"], made["copy"]])
            return mine, reference, outside_mine, outside_reference, made, after, log_after_scenario

    mine, reference, outside_mine, outside_reference, made, after, log = asyncio.run(drive())

    assert list(reference.steps) == LABELS, "the reference scenario did not run every step"
    for label in LABELS:
        with subtests.test(msg=label):
            assert mine.steps.get(label) == reference.steps[label]
    with subtests.test(msg="a thread begun outside the server resumes through it"):
        assert outside_mine == outside_reference
    with subtests.test(msg="delete and prune leave nothing of the threads in the database"):
        before = made.get("before_delete") or {}
        assert before and all(before.values()), before
        assert after == dict.fromkeys(before, 0)
    with subtests.test(msg="the scenario made the server log no error"):
        plain = re.sub(r"\x1b\[[0-9;]*m", "", log)
        errors = [line for line in plain.splitlines() if "[error" in line or "Traceback" in line]
        assert not errors, plain[-6000:]
