"""A look at a PostgreSQL URL that changes nothing: does a server answer, and does the
URL's schema hold agentgit's tables? (The ``agentgit`` command and
:func:`langgraph_agentgit.transfer.copy_database` ask before opening a saver, which would
create the tables.)"""

from __future__ import annotations

from typing import Any

import psycopg

from langgraph_agentgit.backends import normalized_url

#: The schema a connection's unqualified names resolve to, and whether agentgit's schema
#: table is in it (``to_regclass`` looks without creating or locking anything).
_PROBE = "SELECT current_schema(), to_regclass('agentgit_schema') IS NOT NULL"

#: Seconds to wait for a server that does not answer, unless the URL says otherwise.
CONNECT_TIMEOUT = 10


def agentgit_schema(url: str) -> tuple[str | None, bool]:
    """The schema ``url``'s connections use (``None`` when its ``search_path`` names no
    existing schema) and whether it holds an agentgit schema, read in a read-only
    transaction.

    Raises ``psycopg.Error`` (``OperationalError`` when no server answers or it refuses
    the connection, ``ProgrammingError`` for a malformed URL)."""
    timeout: dict[str, Any] = (
        {} if "connect_timeout" in url else {"connect_timeout": CONNECT_TIMEOUT}
    )
    with psycopg.connect(normalized_url(url), **timeout) as conn:
        conn.read_only = True
        row = conn.execute(_PROBE).fetchone()
        conn.rollback()
    if row is None:  # pragma: no cover - the statement always returns one row
        return None, False
    return row[0], bool(row[1])
