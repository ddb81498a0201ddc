"""The PostgreSQL server the benchmark's Postgres rows run on: whether one answers, a fresh
schema per measured saver, and what a schema's tables weigh.

The server comes from ``--postgres URL``, else ``AGENTGIT_BENCH_POSTGRES``, else
``AGENTGIT_TEST_POSTGRES`` (the tests' server), else
``postgresql://postgres@127.0.0.1:5432/test``. Each run gets its own schema (created, then
dropped with everything in it) and a URL whose ``search_path`` points at it, so both
savers create their tables there and nothing else on the server is counted or touched.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from langgraph_agentgit.backends import describe

DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"
SETTINGS = ("shared_buffers", "autovacuum", "synchronous_commit", "fsync")


def default_url() -> str:
    return (
        os.environ.get("AGENTGIT_BENCH_POSTGRES")
        or os.environ.get("AGENTGIT_TEST_POSTGRES")
        or DEFAULT_URL
    )


def unavailable(url: str) -> str | None:
    """Why the Postgres rows cannot run against ``url`` (None when they can)."""
    try:
        import langgraph.checkpoint.postgres  # noqa: F401
        import psycopg
    except ImportError as exc:
        return f"{exc.name or exc} is not installed (pip install -e '.[dev]')"
    try:
        with psycopg.connect(url, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"no PostgreSQL server answers at {describe(url)} ({first})"
    return None


def server_info(url: str) -> dict[str, str]:
    """The server's version and the settings that bear on the figures."""
    import psycopg

    with psycopg.connect(url, connect_timeout=5) as conn:
        version = conn.execute("SHOW server_version").fetchone()
        info = {"PostgreSQL server": f"{version[0] if version else '?'} at {describe(url)}"}
        settings = []
        for name in SETTINGS:
            row = conn.execute(f"SHOW {name}").fetchone()
            settings.append(f"{name}={row[0] if row else '?'}")
        info["PostgreSQL settings"] = ", ".join(settings)
    return info


def with_schema(url: str, schema: str) -> str:
    """``url`` with its connections' ``search_path`` set to ``schema``."""
    option = quote(f"-csearch_path={schema}")
    return f"{url}{'&' if '?' in url else '?'}options={option}"


@dataclass(frozen=True)
class Schema:
    """A fresh schema on the server: its name, the server's URL and the URL into it."""

    name: str
    server_url: str
    url: str


@contextmanager
def fresh_schema(url: str) -> Iterator[Schema]:
    """A new, empty schema on ``url``'s server, dropped afterwards with all it holds."""
    import psycopg

    name = f"agentgit_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield Schema(name, url, with_schema(url, name))
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


_SIZES = """
SELECT c.relname,
       pg_total_relation_size(c.oid),
       pg_table_size(c.oid),
       pg_indexes_size(c.oid),
       coalesce(s.n_live_tup, 0),
       coalesce(s.n_dead_tup, 0)
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
WHERE n.nspname = %s AND c.relkind IN ('r', 'm')
ORDER BY c.relname
"""


def schema_sizes(schema: Schema) -> dict[str, Any]:
    """What the schema's tables take on the server, as they are (no VACUUM):

    * ``db_bytes`` — ``pg_total_relation_size`` summed over its tables: heap, TOAST,
      free-space and visibility maps, and indexes;
    * ``table_bytes`` — the same without indexes (``pg_table_size``: heap and TOAST);
    * ``index_bytes`` — the indexes alone;
    * ``live_tuples``/``dead_tuples`` — from ``pg_stat_user_tables`` (the statistics
      system's counts, which may lag the last statements by a moment);
    * ``pg_tables`` — ``pg_total_relation_size`` per table.

    Sequences (8 KB each) are not counted."""
    import psycopg

    with psycopg.connect(schema.server_url, autocommit=True) as conn:
        rows = conn.execute(_SIZES, (schema.name,)).fetchall()
    return {
        "db_bytes": sum(r[1] for r in rows),
        "table_bytes": sum(r[2] for r in rows),
        "index_bytes": sum(r[3] for r in rows),
        "live_tuples": sum(r[4] for r in rows),
        "dead_tuples": sum(r[5] for r in rows),
        "pg_tables": {r[0]: r[1] for r in rows},
    }
