"""Database engines. Each is one folder: its SQL module (``sql.py``), and its connection
handling and transaction runner. The storage logic they run is in ``storage/`` (see
``storage/backend.py`` for the seam).

* ``sqlite`` — the embedded default (``sqlite3``, ``aiosqlite``);
* ``postgres`` — PostgreSQL through psycopg 3 and psycopg-pool, in the ``postgres``
  extra (``pip install "langgraph-agentgit[postgres]"``).

This module itself imports neither engine's driver.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(target: object) -> bool:
    """Whether ``target`` is a PostgreSQL connection URL (``postgresql://...``)."""
    return isinstance(target, str) and target.startswith(POSTGRES_SCHEMES)


def is_postgres_object(target: object) -> bool:
    """Whether ``target`` is a psycopg 3 connection or pool (sync or async), judged
    without importing psycopg."""
    module = type(target).__module__
    return module.split(".")[0] in ("psycopg", "psycopg_pool")


def postgres_runner() -> ModuleType:
    """``backends.postgres.runner``; raises ``ImportError`` saying which extra to install
    when psycopg is missing."""
    try:
        from langgraph_agentgit.backends.postgres import runner
    except ImportError as exc:
        raise ImportError(
            "PostgreSQL needs psycopg 3 and psycopg-pool: "
            'pip install "langgraph-agentgit[postgres]"'
            f" ({exc})"
        ) from exc
    return runner


def describe(target: Any) -> str:
    """A URL or path as it may be shown to a person (a URL's password hidden)."""
    if is_postgres_url(target) and "@" in target:
        scheme, rest = target.split("://", 1)
        credentials, host = rest.rsplit("@", 1)
        user = credentials.split(":", 1)[0]
        return f"{scheme}://{user}{':***' if ':' in credentials else ''}@{host}"
    return str(target)
