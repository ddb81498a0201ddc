"""The checkpointer factory named in ``langgraph.json`` (``"checkpointer": {"path": ...}``).

LangGraph's Agent Server calls ``checkpointer()`` and enters the async context manager it
returns, once per event loop that runs graphs, and exits it on shutdown. The database is
``$AGENTGIT_SERVER_DB``, else ``agentgit-server.db`` beside this file; every entry opens
its own connection to that one file (SQLite in WAL mode serves them all).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from langgraph_agentgit import AsyncAgentGitSaver

DEFAULT_DB = Path(__file__).resolve().with_name("agentgit-server.db")


@asynccontextmanager
async def checkpointer() -> AsyncIterator[AsyncAgentGitSaver]:
    path = os.environ.get("AGENTGIT_SERVER_DB") or str(DEFAULT_DB)
    async with AsyncAgentGitSaver.from_conn_string(path) as saver:
        yield saver
