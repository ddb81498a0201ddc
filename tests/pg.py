"""The PostgreSQL server the Postgres tests run on, and a fresh schema per test.

The server comes from ``AGENTGIT_TEST_POSTGRES`` (default
``postgresql://postgres@127.0.0.1:5432/test``). Each test gets its own schema (created,
then dropped), named after a random id, and a URL whose ``search_path`` points at it, so
tests on several xdist workers never see each other's rows.

Where no server answers, tests that need one are skipped with the reason; with
``AGENTGIT_REQUIRE_POSTGRES=1`` (set by ``.ci/run``) they fail instead.
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import pytest

URL = os.environ.get("AGENTGIT_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRED = os.environ.get("AGENTGIT_REQUIRE_POSTGRES") == "1"


@functools.cache
def unavailable() -> str | None:
    """Why the Postgres tests cannot run here (None when they can)."""
    try:
        import psycopg
    except ImportError:
        return 'psycopg is not installed (pip install "langgraph-agentgit[postgres]")'
    try:
        with psycopg.connect(URL, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"no PostgreSQL server answers at AGENTGIT_TEST_POSTGRES={URL} ({first})"
    return None


def require() -> None:
    """Skip the calling test (fail it under AGENTGIT_REQUIRE_POSTGRES=1) without a server."""
    reason = unavailable()
    if reason is None:
        return
    if REQUIRED:
        pytest.fail(f"AGENTGIT_REQUIRE_POSTGRES=1 but {reason}")
    pytest.skip(f"Postgres tests skipped: {reason}")


def with_schema(url: str, schema: str) -> str:
    """``url`` with its connections' ``search_path`` set to ``schema``."""
    option = quote(f"-csearch_path={schema}")
    return f"{url}{'&' if '?' in url else '?'}options={option}"


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A URL on a new, empty schema, dropped afterwards with everything in it."""
    require()
    import psycopg

    schema = f"agentgit_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield with_schema(URL, schema)
    finally:
        with psycopg.connect(URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
