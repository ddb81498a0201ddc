"""Databases and a real server process for the web viewer's tests (tests/test_web*.py).

Every database here is filled by running real compiled graphs with deterministic fake
chat models through :class:`~langgraph_agentgit.SessionManager`; nothing is hand-made.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from graphs import build_chat_graph

from langgraph_agentgit import AgentGitSaver, SessionManager
from langgraph_agentgit.agents import create_agent_graph
from langgraph_agentgit.demo import DemoResult, run_demo

#: Strings that would run script if a page put them into its HTML unescaped.
XSS_SCRIPT = "<script>window.__xss = 1</script>"
XSS_IMG = '<img src=x onerror="window.__xss = 2">'
XSS_LINK = '<a href="javascript:window.__xss = 3">click me</a> javascript:alert(1)'
XSS_TEXT = f"{XSS_SCRIPT} {XSS_IMG} {XSS_LINK}"
XSS_NAME = '"><svg onload="window.__xss = 4">'
XSS_TAG = "<b>tag</b><script>x</script>"


@dataclass
class WebDb:
    """A database with the demo's session, a session whose texts are XSS strings and a
    long session (more checkpoints than a lane shows whole), plus their ids."""

    path: Path
    demo: DemoResult
    xss_session_id: str
    long_session_id: str

    @contextmanager
    def open(self, read_only: bool = False) -> Iterator[tuple[AgentGitSaver, SessionManager]]:
        with AgentGitSaver.from_conn_string(str(self.path), read_only=read_only) as saver:
            yield saver, SessionManager(saver)


def fill_web_db(path: Path) -> WebDb:
    """Run the demo, an XSS conversation and a long chat with two rollbacks into ``path``."""
    with AgentGitSaver.from_conn_string(str(path)) as saver:
        demo = run_demo(saver)
        mgr = SessionManager(saver)
        agent = create_agent_graph(checkpointer=saver)
        xss = mgr.create_session(user_id="mallory", name=XSS_NAME)
        agent.invoke({"messages": [("user", XSS_TEXT)]}, mgr.config(xss.id))
        first = mgr.checkpoints(xss.id)[-1].checkpoint["id"]
        mgr.tag(xss.id, mgr.checkpoints(xss.id)[0].checkpoint["id"], XSS_TAG)
        mgr.branch(xss.id, first, name=XSS_NAME + "-branch")

        chat = build_chat_graph().compile(checkpointer=saver)
        long = mgr.create_session(user_id="bob", name="long chat")
        for n in range(20):
            chat.invoke({"messages": [("user", f"message {n}")]}, mgr.config(long.id))
        history = mgr.checkpoints(long.id)  # newest first
        mgr.tag(long.id, history[len(history) // 2].checkpoint["id"], "middle")
        mgr.rollback(long.id, history[30].checkpoint["id"], name="retry")
        for n in range(3):
            chat.invoke({"messages": [("user", f"retry {n}")]}, mgr.config(long.id))
        mgr.branch(long.id, history[5].checkpoint["id"], name="late")
    return WebDb(path, demo, xss.id, long.id)


def copy_db(source: WebDb, target: Path) -> WebDb:
    """A private copy of ``source``'s database (tests may change it)."""
    shutil.copy(source.path, target)
    for suffix in ("-wal", "-shm"):
        if Path(f"{source.path}{suffix}").exists():
            shutil.copy(f"{source.path}{suffix}", f"{target}{suffix}")
    return WebDb(target, source.demo, source.xss_session_id, source.long_session_id)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """A running ``agentgit serve``: the URL it answers at (on loopback) and what it
    printed before it started listening."""

    url: str
    printed: list[str]


@contextmanager
def running_server(db: Path, *args: str, host: str = "127.0.0.1") -> Iterator[Served]:
    """``agentgit serve --db DB --host HOST`` as a real process on a free port; yields
    once it answers on loopback, and stops it (SIGTERM, then SIGKILL) afterwards."""
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "langgraph_agentgit", "serve", "--db", str(db),
         "--host", host, "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
    )  # fmt: skip
    try:
        # Not a timing assertion: how long a loaded machine may take to start Python.
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                output = process.stdout.read().decode() if process.stdout else ""
                raise AssertionError(f"agentgit serve exited {process.returncode}: {output}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("agentgit serve did not start listening") from None
                time.sleep(0.1)
        printed = []
        # Its start-up lines, printed before it listens; the last says how to stop it.
        while process.stdout is not None:
            line = process.stdout.readline().decode()
            printed.append(line.rstrip("\n"))
            if not line or "Ctrl-C" in line:
                break
        yield Served(f"http://127.0.0.1:{port}", printed)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
