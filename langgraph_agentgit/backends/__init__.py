"""Database engines. Each is one folder: its SQL module (``sql.py``), and its connection
handling and transaction runner. The storage logic they run is in ``storage/`` (see
``storage/backend.py`` for the seam).

* ``sqlite`` — the embedded default (``sqlite3``, ``aiosqlite``);
* ``postgres`` — PostgreSQL through psycopg 3 and psycopg-pool, in the ``postgres``
  extra (``pip install "langgraph-agentgit[postgres]"``).

This module itself imports neither engine's driver.
"""

from __future__ import annotations

import re
from types import ModuleType
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
# libpq's keyword form ("host=db dbname=chat user=app"), as PostgresSaver accepts it: the
# first word is one of libpq's connection keywords followed by "=".
_KEYWORD_DSN = re.compile(
    r"\s*(host|hostaddr|port|dbname|user|password|passfile|service|sslmode|options|"
    r"connect_timeout|application_name|target_session_attrs)\s*=",
    re.IGNORECASE,
)


def is_postgres_url(target: object) -> bool:
    """Whether ``target`` names a PostgreSQL database: a ``postgresql://`` or
    ``postgres://`` URL (any case), or a libpq keyword string (``"host=db dbname=chat"``).
    Anything else is a SQLite path."""
    if not isinstance(target, str):
        return False
    return target.lower().startswith(POSTGRES_SCHEMES) or bool(_KEYWORD_DSN.match(target))


def normalized_url(target: str) -> str:
    """``target`` with a URL's scheme in lower case (libpq only knows it so)."""
    head, sep, rest = target.partition("://")
    if sep and head.lower() in ("postgresql", "postgres"):
        return f"{head.lower()}://{rest}"
    return target


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


# A keyword string's password: quoted, or up to an unescaped space (libpq's escapes).
_KEYWORD_PASSWORD = re.compile(r"(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|(?:[^\s\\]|\\.)*)")


def describe(target: Any) -> str:
    """A database as it may be shown to a person: a URL's or keyword string's password
    (in the user part or as ``password=``) replaced by ``***``."""
    text = str(target)
    if not is_postgres_url(text):
        return text
    if not text.lower().startswith(POSTGRES_SCHEMES):
        return _KEYWORD_PASSWORD.sub(lambda m: f"{m.group(1)}***", text)
    try:
        parts = urlsplit(text)
    except ValueError:
        # Not a URL urllib can take apart (an unclosed IPv6 bracket): whatever stands
        # between the user name and the last "@" of the authority is masked.
        return _masked_authority(text)
    netloc = parts.netloc
    if "@" in netloc:
        credentials, host = netloc.rsplit("@", 1)
        if ":" in credentials:
            credentials = credentials.split(":", 1)[0] + ":***"
        netloc = f"{credentials}@{host}"
    query = re.sub(r"(?i)((?:^|&)password=)[^&]*", r"\1***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


# "scheme://user:password@" up to the authority's last "@" (a password may hold "@").
_AUTHORITY_PASSWORD = re.compile(r"^([a-z]+://[^:/?#@]*:)([^/?#]*)@", re.IGNORECASE)


def _masked_authority(text: str) -> str:
    text = _AUTHORITY_PASSWORD.sub(r"\1***@", text, count=1)
    return re.sub(r"(?i)([?&]password=)[^&#]*", r"\1***", text)


def _url_secrets(text: str) -> list[str]:
    """The password of a ``postgresql://`` URL (in its user part or as ``password=``),
    as written and percent-decoded; also from a URL urllib cannot take apart. A password
    holding an unencoded "@" is split where libpq splits it (at the first "@", the rest
    read as the host, which its errors then quote): each part is a secret too."""
    try:
        parts = urlsplit(text)
    except ValueError:
        found = _AUTHORITY_PASSWORD.search(text)
        password = found.group(2) if found else ""
        query = text.partition("?")[2]
    else:
        password = parts.password or ""
        query = parts.query
    in_query = re.findall(r"(?i)(?:^|&)password=([^&#]*)", query)
    found_all = [password, *in_query]
    found_all += [piece for secret in found_all for piece in secret.split("@") if len(piece) >= 3]
    return [*found_all, *map(unquote, found_all)]


def _keyword_secrets(text: str) -> list[str]:
    """The password of a libpq keyword string, as written, unescaped, and each word of
    it (an error may quote what follows an escaped space)."""
    out: list[str] = []
    for _key, value in _KEYWORD_PASSWORD.findall(text):
        raw = value[1:-1] if value.startswith("'") and value.endswith("'") else value
        plain = re.sub(r"\\(.)", r"\1", raw)
        out += [value, raw, plain, *(w for w in plain.split() if len(w) >= 3)]
    return out


def scrub(message: str, target: Any) -> str:
    """``message`` with the password of ``target`` (if any) replaced by ``***``: driver
    errors may quote the part of a URL they could not parse."""
    text = str(target)
    secrets = []
    if is_postgres_url(text) and text.lower().startswith(POSTGRES_SCHEMES):
        secrets += _url_secrets(text)
    elif is_postgres_url(text):
        secrets += _keyword_secrets(text)
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        message = message.replace(secret, "***")
    return message
