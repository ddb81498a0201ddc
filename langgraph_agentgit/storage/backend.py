"""What the storage logic needs from a database engine: the seam between them.

The checkpoint, blob and session logic (``storage/``, ``sessions/store.py``) is written
once. It is given, by the saver:

* a connection shaped like :class:`Connection` (``sqlite3.Connection`` is one as it is;
  the Postgres backend wraps a psycopg 3 connection to look the same), already inside the
  transaction the saver opened;
* the backend's SQL module (``backends/<engine>/sql.py``), as ``store.sql``: every
  statement, as a named constant, with that engine's placeholders. Statements that take
  a list of ids receive it as one JSON array parameter; ``metadata_filter`` and ``LIMIT``
  are the only SQL fragments the logic appends.

A backend is one folder: its SQL module, its connection handling and its transaction
runner (``backends/sqlite``, ``backends/postgres``). Adding one touches nothing here.
``tests/test_postgres.py`` checks that every backend's SQL module defines the same names.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, Protocol


class Cursor(Protocol):
    """The part of a DB-API cursor the logic uses."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Connection(Protocol):
    """The part of a DB-API connection the logic uses: ``sqlite3.Connection``'s
    ``execute`` and ``executemany``, parameters given as a sequence."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Any: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Any: ...
