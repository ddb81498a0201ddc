"""The ``agentgit`` command: look at and steer the sessions, branches and checkpoints of a
langgraph-agentgit database from the terminal.

A thin layer over :class:`~langgraph_agentgit.SessionManager` (every change goes through
it), plus what only a terminal needs: the database's location, git-like id prefixes,
tables and trees, and ``--json`` for scripts. Also runs as ``python -m langgraph_agentgit``.

Exit status: 0 on success, 2 for bad input (a missing database, an unknown or ambiguous
id, a checkpoint that is not in the session, a bad option or name), 1 for any other
failure (a database another process keeps locked, a write to a read-only location,
damage; ``check`` exits 1 when it finds damage). Errors are one line on stderr, never a
traceback (set ``AGENTGIT_DEBUG=1`` to get one).

The database is a SQLite file or a ``postgresql://`` URL (its ``search_path`` chooses the
schema). Read commands (``sessions``, ``show``, ``log``, ``tree``, ``diff``, ``check``)
open a file read-only by themselves where it cannot be written (or with ``--read-only``);
a URL is looked at (does a server answer, are agentgit's tables there) before a saver
opens it, so a read command never creates tables. ``check`` is SQLite-only for now.
Everything printed from the database goes through one console that replaces control
characters (an escape sequence in a message must not reach the terminal) and never reads
Rich markup out of it (a tag named ``[/]`` is shown as typed).

Only Typer and Rich are imported at start-up; LangGraph and the savers are imported by
the commands that open a database (psycopg only for a URL), so ``--help`` and
``--version`` answer at once.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import logging
import math
import os
import re
import shlex
import shutil
import sqlite3
import sys
import time
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any, Literal, NoReturn, TypeVar, cast
from urllib.parse import urlencode

import typer
from rich import box
from rich.console import Console
from rich.panel import Panel
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text as RichText
from rich.tree import Tree
from typer.core import TyperGroup

try:  # Typer 0.26+ carries its own copy of Click; older releases use Click itself.
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - depends on the installed Typer
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

from langgraph_agentgit._version import __version__
from langgraph_agentgit.backends import describe, is_postgres_url, scrub
from langgraph_agentgit.backends.sqlite.connection import (
    DEFAULT_LOCK_TIMEOUT,
    SQLITE_CANTOPEN,
    SQLITE_CORRUPT,
    SQLITE_NOTADB,
    error_code,
    is_agentgit_database,
    location_writable,
)
from langgraph_agentgit.errors import (
    AgentGitError,
    BranchNotFoundError,
    CheckpointNotFoundError,
    DatabaseLockedError,
    EffectsUndoneWarning,
    ReadOnlyDatabaseError,
    SessionNotFoundError,
    TagNotFoundError,
)

# The views layer: the JSON shapes, previews and abbreviations the web viewer shares
# (their old names here are kept for scripts that import them).
from langgraph_agentgit.views.build import (
    SCHEMA_VERSION,
    diff_view,
    search_hit_view,
    session_preview,
)
from langgraph_agentgit.views.build import branch_view as branch_json
from langgraph_agentgit.views.build import checkpoint_preview as checkpoint_preview
from langgraph_agentgit.views.build import checkpoint_view as checkpoint_json
from langgraph_agentgit.views.build import nodes_run as nodes_run
from langgraph_agentgit.views.build import parent_id as _parent_id
from langgraph_agentgit.views.build import session_view as session_json
from langgraph_agentgit.views.build import turn_view as turn_json
from langgraph_agentgit.views.text import MIN_ABBREV as MIN_ABBREV
from langgraph_agentgit.views.text import PREVIEW_WIDTH as PREVIEW_WIDTH
from langgraph_agentgit.views.text import abbreviations as abbreviations
from langgraph_agentgit.views.text import cut as _cut
from langgraph_agentgit.views.text import message_preview as message_preview
from langgraph_agentgit.views.tree import walk_branches

T = TypeVar("T")

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage
    from langgraph.checkpoint.base import CheckpointTuple

    from langgraph_agentgit import AgentGitSaver, SessionManager
    from langgraph_agentgit.demo import DemoResult
    from langgraph_agentgit.diff import CheckpointDiff
    from langgraph_agentgit.sessions.models import (
        Branch,
        BranchHistory,
        CheckpointSummary,
        ExternalSession,
        Usage,
    )
    from langgraph_agentgit.storage.check import CheckReport
    from langgraph_agentgit.transfer import CopyReport

DEFAULT_DB = "agentgit.db"
#: How many sessions ``agentgit sessions`` lists unless told otherwise: each row reads
#: its session's last message, so listing thousands takes seconds.
SESSIONS_SHOWN = 50
DB_ENV_VAR = "AGENTGIT_DB"
#: Where ``rollback --undo-effects`` finds its handlers without ``--handlers``.
UNDO_HANDLERS_ENV_VAR = "AGENTGIT_UNDO_HANDLERS"
DEBUG_ENV_VAR = "AGENTGIT_DEBUG"
LOCK_TIMEOUT_ENV_VAR = "AGENTGIT_LOCK_TIMEOUT"
#: A database as the commands take it: a file, or a PostgreSQL URL (never made a Path,
#: which would fold its ``//``).
Database = Path | str
#: The commands that only read, and so also work on a database that cannot be written.
READ_COMMANDS = (
    "sessions", "show", "log", "turns", "tree", "diff", "check", "export", "du", "search", "serve",
)  # fmt: skip
#: Longest branch or session name shown in a tree line or table cell (the rest is "…"),
#: so that the ids and the current-branch marker after it stay on an 80-column line.
NAME_WIDTH = 32
#: ``tree`` shows a line of descent whole up to this many checkpoints; a longer one
#: shows its first and last few and every checkpoint something hangs from (``--all``:
#: everything).
TREE_FULL_LINE = 30
TREE_KEEP_FIRST = 3
TREE_KEEP_LAST = 10
#: What ``demo`` writes into a session's metadata; ``demo --fresh`` deletes only those.
DEMO_MARK = {"created_by": "agentgit demo"}

EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


class CliError(Exception):
    """A failure the CLI reports as one line on stderr with the given exit status."""

    def __init__(self, message: str, exit_code: int = EXIT_BAD_INPUT) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# Errors about what the user asked for (exit 2) rather than about the system (exit 1).
_BAD_INPUT_ERRORS: tuple[type[BaseException], ...] = (
    SessionNotFoundError,
    BranchNotFoundError,
    CheckpointNotFoundError,
    TagNotFoundError,
    LookupError,
    ValueError,
)


# --- terminal safety -----------------------------------------------------------------------

# C0 controls but the newline, DEL and C1 controls: what a terminal may act on (ESC starts
# escape sequences that set the title, clear the screen, rewrite the clipboard...); and
# the bidirectional overrides, embeddings and isolates, which reorder what is shown
# (U+202E makes "exe.txt" read as "txt.exe").
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _picture(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code == 0x09:
        return " "
    if code < 0x20:
        return chr(0x2400 + code)  # the Unicode "control picture" of it: ␛ for ESC, ␀ for NUL
    return "\u2421" if code == 0x7F else "\ufffd"


def clean(text: str) -> str:
    """``text`` with every control character a terminal could act on replaced by a visible
    stand-in (``␛`` for ESC, ``␀`` for NUL, ``␡`` for DEL, ``U+FFFD`` for C1 controls, a
    space for a tab); newlines are kept."""
    return _CONTROL.sub(_picture, text)


def one_line(text: str) -> str:
    """``text`` cleaned (:func:`clean`) with newlines shown as ``⏎``: a name or id that must
    stay on its line (a tag written before names were checked may hold a newline)."""
    return clean(text).replace("\n", "\u23ce")


class Text(RichText):
    """Rich's ``Text`` with :func:`clean` applied to every string put into it, so that
    tables and trees measure and lay out the text as it will be shown. Every ``Text`` in
    this module is one of these (the name shadows Rich's on purpose). A ``Text`` is never
    parsed as markup: what is put in is what is shown."""

    def __init__(self, text: str = "", *args: Any, **kwargs: Any) -> None:
        super().__init__(clean(text), *args, **kwargs)

    def append(self, text: RichText | str, style: str | Style | None = None) -> RichText:
        if isinstance(text, str):
            return super().append(clean(text), style)
        return super().append(text if type(text) is Text else _cleaned(text), style)

    def append_text(self, text: RichText) -> RichText:
        return super().append_text(text if type(text) is Text else _cleaned(text))


def _cleaned(text: RichText) -> RichText:
    if not _CONTROL.search(text.plain):
        return text
    copy = text.copy()
    copy.plain = clean(text.plain)  # one character for one: the styles stay in place
    return copy


class SafeConsole(Console):
    """A Rich console that cleans (:func:`clean`) the text of everything it renders, and
    never reads markup out of a plain string.

    Every line the CLI prints goes through one of these, so text from the database (an
    LLM's message, a tool result, a tag, an id) never writes escape sequences to the
    terminal, whichever table, tree or panel shows it, and ``[red]`` or ``[/]`` in a name
    is printed as typed. Styling is given as :class:`Text` styles, never as markup.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("markup", False)
        kwargs.setdefault("highlight", False)
        super().__init__(*args, **kwargs)

    def render(self, renderable: Any, options: Any = None) -> Iterator[Segment]:
        for segment in super().render(renderable, options):
            if segment.control is None and _CONTROL.search(segment.text):
                yield Segment(clean(segment.text), segment.style)
            else:
                yield segment


def _json_safe(data: Any) -> Any:
    """``data`` with NaN and infinities as the strings ``"NaN"``, ``"Infinity"`` and
    ``"-Infinity"``: JSON has no such numbers, and metadata written by another saver (an
    import) may hold them."""
    if isinstance(data, float) and not math.isfinite(data):
        return "NaN" if math.isnan(data) else ("Infinity" if data > 0 else "-Infinity")
    if isinstance(data, Mapping):
        return {key: _json_safe(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_json_safe(value) for value in data]
    return data


def _json_text(data: Any) -> str:
    # json.dumps escapes C0 controls itself; DEL, C1 controls and bidirectional
    # controls it leaves raw.
    text = json.dumps(_json_safe(data), indent=2, ensure_ascii=False, default=str, allow_nan=False)
    return re.sub(
        r"[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]",
        lambda m: f"\\u{ord(m.group()):04x}",
        text,
    )


def _stderr() -> Console:
    return SafeConsole(stderr=True, soft_wrap=True)


def _fail(message: str, exit_code: int) -> NoReturn:
    _stderr().print(Text("error: ", style="bold red") + Text(" ".join(message.splitlines())))
    raise typer.Exit(exit_code)


# --- LangGraph's deserialization warnings ----------------------------------------------------

_SERDE_LOGGER = "langgraph.checkpoint.serde.jsonplus"
_TYPE_NAMED = re.compile(
    r"(?:Blocked deserialization of|unregistered type) (?:method call )?(\S+?)[ .]"
)


class _SerdeNotes(logging.Handler):
    """Turns LangGraph's "Blocked deserialization of X - Add to allowed_msgpack_modules"
    warnings into one line of ours per type: the CLI never imports a program's own types,
    and the setting to name is ours (``StrictSerializer(allowed_types=...)``), not the one
    LangGraph's message names."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: set[str] = set()

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        if len(args) >= 2:
            name = f"{args[0]}.{args[1]}"
        else:
            found = _TYPE_NAMED.search(record.getMessage())
            name = found.group(1) if found else "a stored type"
        if name in self.seen:
            return
        self.seen.add(name)
        _stderr().print(
            Text(
                f"note: values of type {name} are shown as plain data: agentgit does not "
                "import your program's modules (in your program, "
                f"StrictSerializer(allowed_types=[{name!r}]) revives them)",
                style="dim",
            )
        )


def _quiet_langgraph_serde() -> None:
    logger = logging.getLogger(_SERDE_LOGGER)
    if not any(isinstance(h, _SerdeNotes) for h in logger.handlers):
        logger.addHandler(_SerdeNotes())
    logger.propagate = False


# --- the command group ---------------------------------------------------------------------


class _AgentGitGroup(TyperGroup):
    """Turns every exception a command raises into one line and an exit status.

    Done here rather than in :func:`main` so that Typer's test runner, which invokes the
    app directly, sees exactly what a user of the console script sees.
    """

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        def run() -> Any:
            return super(_AgentGitGroup, self).main(
                args, prog_name, complete_var, False, windows_expand_args, **extra
            )

        if not standalone_mode:
            return run()
        try:
            code = run()
        except click_exceptions.NoArgsIsHelpError as exc:
            if exc.format_message().strip():  # Typer's rich help has been printed already
                exc.show()
            sys.exit(exc.exit_code)
        except click_exceptions.ClickException as exc:
            # Click and Typer print a usage block and a box; the README promises a line.
            message = " ".join(exc.format_message().split())
            ctx = getattr(exc, "ctx", None)
            if ctx is not None:
                message += f" (see `{ctx.command_path} --help`)"
            _stderr().print(Text("error: ", style="bold red") + Text(message))
            sys.exit(exc.exit_code)
        except typer.Abort:
            _stderr().print(Text("aborted", style="bold red"))
            sys.exit(EXIT_FAILURE)
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: Any) -> Any:
        _quiet_langgraph_serde()
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, click_exceptions.ClickException):
            raise
        except CliError as exc:
            _fail(str(exc), exc.exit_code)
        except DatabaseLockedError as exc:
            _fail(f"{exc} (--lock-timeout SECONDS waits longer)", EXIT_FAILURE)
        except AgentGitError as exc:
            bad_input = isinstance(exc, _BAD_INPUT_ERRORS)
            _fail(str(exc), EXIT_BAD_INPUT if bad_input else EXIT_FAILURE)
        except sqlite3.Error as exc:
            _fail(f"database error: {_one_line_error(exc)}", EXIT_FAILURE)
        except Exception as exc:
            if os.environ.get(DEBUG_ENV_VAR):
                raise
            if _is_psycopg_error(exc):
                _fail(f"database error: {_one_line_error(exc)}", EXIT_FAILURE)
            _fail(f"unexpected {type(exc).__name__}: {_one_line_error(exc)}", EXIT_FAILURE)


def _is_psycopg_error(exc: BaseException) -> bool:
    """Whether ``exc`` is psycopg's (judged without importing psycopg)."""
    return type(exc).__module__.split(".")[0] in ("psycopg", "psycopg_pool")


def _one_line_error(exc: BaseException) -> str:
    """The error on one line, without the password of any database URL this command was
    given (a driver may quote the part of a URL it could not parse)."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    for given in [*sys.argv[1:], os.environ.get(DB_ENV_VAR, "")]:
        message = scrub(message, given)
    return message


app = typer.Typer(
    name="agentgit",
    cls=_AgentGitGroup,
    help=(
        "Version control for LangGraph agents: list sessions, read their branch timelines, "
        "diff checkpoints, roll back, branch, tag.\n\n"
        f"The database is --db PATH (a SQLite file or a postgresql:// URL), else "
        f"${DB_ENV_VAR}, else ./{DEFAULT_DB}. "
        "Session, thread and checkpoint ids may be shortened to any unique prefix; "
        "a branch may be named instead of its thread, a tag instead of its checkpoint."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: Rich-formatted help imports Markdown rendering, a third of start-up.
    rich_markup_mode=None,
)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help=f"SQLite file or postgresql:// URL (default: ${DB_ENV_VAR}, else ./{DEFAULT_DB}).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
SessionArg = Annotated[str, typer.Argument(help="Session id or a unique prefix of it.")]
CheckpointArg = Annotated[
    str, typer.Argument(help="Checkpoint id, a unique prefix of it, or a tag of the session.")
]
BranchArg = Annotated[
    str, typer.Argument(help="Branch name, thread id, or a unique prefix of a thread id.")
]
YesOption = Annotated[
    bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (needed without a TTY).")
]
ReadOnlyOption = Annotated[
    bool,
    typer.Option(
        "--read-only",
        help="Open the database read-only (automatic where it cannot be written).",
    ),
]


def _user_id(value: str | None) -> str | None:
    """A ``--user`` value checked as the library checks user ids (a usage error, exit 2)."""
    from langgraph_agentgit.sessions import store as ops

    try:
        return ops.check_user_id(value)
    except (TypeError, ValueError) as exc:
        raise typer.BadParameter(str(exc)) from None


def _end_reason(value: str | None) -> str | None:
    """``--reason`` checked as ``end_session`` checks it (a usage error, exit 2)."""
    from langgraph_agentgit.sessions import store as ops

    if value is not None and len(value) > ops.MAX_END_REASON_LENGTH:
        raise typer.BadParameter(
            f"an end reason must be at most {ops.MAX_END_REASON_LENGTH} characters, "
            f"not {len(value)}"
        )
    return value


def _finite_seconds(value: float) -> float:
    """``--lock-timeout``: a finite number of seconds (a usage error, exit 2)."""
    if not math.isfinite(value):
        raise typer.BadParameter(f"must be a finite number of seconds, not {value}")
    return value


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"agentgit (langgraph-agentgit) {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            envvar=DB_ENV_VAR,
            help=f"SQLite file or postgresql:// URL (default: ./{DEFAULT_DB}).",
            show_default=False,
        ),
    ] = None,
    lock_timeout: Annotated[
        float,
        typer.Option(
            "--lock-timeout",
            envvar=LOCK_TIMEOUT_ENV_VAR,
            min=0,
            callback=_finite_seconds,
            help="Seconds to wait, in all, for another process's lock on the database.",
        ),
    ] = DEFAULT_LOCK_TIMEOUT,
    read_only: ReadOnlyOption = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_print_version,
            is_eager=True,
            help="Print the version and exit.",
        ),
    ] = False,
) -> None:
    """Version control for LangGraph agents."""
    ctx.obj = {"db": db, "lock_timeout": lock_timeout, "read_only": read_only}


def main() -> None:
    """Entry point of the ``agentgit`` console script and ``python -m langgraph_agentgit``."""
    app(prog_name="agentgit")


# --- the database --------------------------------------------------------------------------


def db_path(ctx: typer.Context, db: str | None) -> Database:
    """``--db`` after the command, else ``--db`` before it or ``$AGENTGIT_DB``, else default:
    a ``Path``, or the ``postgresql://`` URL as given."""
    root = ctx.find_root().obj or {}
    return as_database(db or root.get("db") or DEFAULT_DB)


def as_database(value: str) -> Database:
    """A URL as it is; anything else as a file ``Path``."""
    return value if is_postgres_url(value) else Path(value)


def lock_timeout_of(ctx: typer.Context) -> float:
    """``--lock-timeout`` (or ``$AGENTGIT_LOCK_TIMEOUT``): seconds to wait for a lock."""
    root = ctx.find_root().obj or {}
    return float(root.get("lock_timeout", DEFAULT_LOCK_TIMEOUT))


class LockNotice:
    """Tells the user, once and on stderr, that a command is waiting for another process's
    lock on the database (called by the saver after about a second of waiting)."""

    def __init__(self, path: Database, lock_timeout: float) -> None:
        self.path = describe(path)
        self.lock_timeout = lock_timeout
        self.told = False

    def __call__(self) -> None:
        if self.told:
            return
        self.told = True
        _stderr().print(
            Text(
                f"waiting for another process to release its lock on {self.path} "
                f"(up to {self.lock_timeout:g} s; --lock-timeout changes it)…",
                style="yellow",
            )
        )


def check_database(
    path: Database,
    *,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    on_lock_wait: Callable[[], None] | None = None,
) -> None:
    """Refuse a path that is not an existing agentgit database, without creating or
    changing anything (``sqlite3.connect`` would create an empty file, and opening the
    saver would add agentgit's tables to somebody else's database).

    Only a file that is not SQLite, or has no agentgit tables, is "not an agentgit
    database" (exit 2). A database that is locked (:class:`DatabaseLockedError`), that
    cannot be opened, or whose pages are damaged fails with exit 1 saying so.

    For a URL: a schema without agentgit tables is "not an agentgit database" (exit 2);
    a server that does not answer or refuses the connection fails with exit 1.
    """
    if isinstance(path, str):
        schema, found = postgres_schema(path)
        if not found:
            where = f"schema {schema}" if schema else "its search_path (no such schema)"
            raise CliError(
                f"{describe(path)} is not an agentgit database (no agentgit tables in "
                f"{where}; `agentgit demo --db URL` or `agentgit copy FILE URL` creates "
                "them; ?options=-csearch_path%3DSCHEMA chooses another schema)"
            )
        return
    if not path.exists():
        raise CliError(
            f"no database at {path} (pass --db PATH or set ${DB_ENV_VAR}; "
            f"`agentgit demo --db {path}` creates one)"
        )
    if not path.is_file():
        raise CliError(f"{path} is not a file" + (" but a directory" if path.is_dir() else ""))
    try:
        found = is_agentgit_database(
            str(path.resolve()), lock_timeout=lock_timeout, on_lock_wait=on_lock_wait
        )
    except sqlite3.DatabaseError as exc:
        code = error_code(exc)
        if code == SQLITE_NOTADB:
            raise CliError(f"{path} is not an agentgit database ({exc})") from exc
        if code == SQLITE_CORRUPT:
            raise CliError(
                f"{path} is damaged at the SQLite level ({exc}); `agentgit check` cannot "
                "repair that: restore a copy, or try `sqlite3 DB .recover`",
                EXIT_FAILURE,
            ) from exc
        if code == SQLITE_CANTOPEN:
            raise CliError(
                f"cannot open {path} ({exc}): {_why_unreadable(path)}", EXIT_FAILURE
            ) from exc
        raise CliError(f"cannot read {path} ({exc})", EXIT_FAILURE) from exc
    if not found:
        raise CliError(f"{path} is not an agentgit database (no agentgit tables in it)")


# libpq's words for a connection option it refuses before connecting.
_LIBPQ_BAD_VALUE = re.compile(r"invalid (?:port number|integer value|\w+ value)")


def postgres_schema(url: str) -> tuple[str | None, bool]:
    """The schema ``url`` uses and whether agentgit's tables are in it, read without
    changing anything (psycopg is imported here, not at start-up). Raises
    :class:`CliError` naming the URL, its password hidden: exit 1 when psycopg is
    missing or no server answers, 2 for a URL libpq cannot parse."""
    try:
        import psycopg

        from langgraph_agentgit.backends.postgres.probe import agentgit_schema
    except ImportError as exc:
        raise CliError(
            f"cannot open {describe(url)}: PostgreSQL needs psycopg 3 "
            '(pip install "langgraph-agentgit[postgres]")',
            EXIT_FAILURE,
        ) from exc
    try:
        return agentgit_schema(url)
    except psycopg.Error as exc:
        # libpq could not parse it (an unclosed IPv6 bracket, an unknown parameter), or
        # refused a value in it before connecting (a port out of range or not a number).
        if isinstance(exc, psycopg.ProgrammingError) or _LIBPQ_BAD_VALUE.search(str(exc)):
            raise CliError(
                f"{describe(url)} is not a PostgreSQL URL libpq can read: {_one_line_error(exc)}"
            ) from exc
        raise CliError(
            f"cannot connect to {describe(url)}: {_one_line_error(exc)}", EXIT_FAILURE
        ) from exc


def _why_unreadable(path: Path) -> str:
    target = path.resolve()
    if not os.access(target, os.R_OK):
        return "this user may not read the file"
    if not os.access(target.parent, os.X_OK):
        return f"this user may not enter {target.parent}"
    return "SQLite could not open it"


def _why_read_only(path: Path) -> str:
    target = path.resolve()
    directory = target.parent
    try:
        if os.statvfs(directory).f_flag & os.ST_RDONLY:
            return "it is on a read-only file system"
    except OSError:
        pass
    if not os.access(directory, os.W_OK):
        return f"its directory {directory} cannot be written"
    if target.exists() and not os.access(target, os.W_OK):
        return "the file cannot be written"
    return "it cannot be written"


@dataclass
class Repo:
    """An open database: the saver, its session manager, and id lookups."""

    path: Database
    saver: AgentGitSaver
    mgr: SessionManager
    _checkpoint_ids: list[str] | None = field(default=None, repr=False)
    _abbreviations: dict[str, str] | None = field(default=None, repr=False)

    def checkpoint_ids(self) -> list[str]:
        """Every root-namespace checkpoint id in the database, sorted (read once)."""
        if self._checkpoint_ids is None:
            self._checkpoint_ids = self.saver._read(self.saver.store.checkpoint_ids)
        return self._checkpoint_ids

    # --- resolving what the user typed ---------------------------------------------------

    def session(self, prefix: str) -> ExternalSession:
        """The session whose id is, or starts with, ``prefix``."""
        sessions = self.mgr.list_sessions()
        session_id = resolve_prefix(prefix, [s.id for s in sessions], "session")
        return next(s for s in sessions if s.id == session_id)

    def branch(self, session: ExternalSession, ref: str) -> Branch:
        """A branch of ``session`` by thread id, branch name, or unique thread id prefix.

        A name that is also a prefix of another branch's thread id is ambiguous (names
        made by this version cannot be: they are never only hex digits and ``-``)."""
        branches = self.mgr.branches(session.id)
        exact = [b for b in branches if b.thread_id == ref]
        if exact:
            return exact[0]
        named = [b for b in branches if b.name == ref]
        prefixed = [b for b in branches if b.thread_id.startswith(ref) and b not in named]
        if len(named) == 1 and not prefixed:
            return named[0]
        if named:
            others = ", ".join(f"thread {b.thread_id}" for b in [*named, *prefixed])
            raise CliError(
                f"ambiguous branch {ref!r} in session {session.id}: {others}; "
                "give the whole thread id"
            )
        thread_id = resolve_prefix(
            ref,
            [b.thread_id for b in branches],
            f"branch or thread of session {session.id}",
            hint=_names_hint(branches),
        )
        return next(b for b in branches if b.thread_id == thread_id)

    def checkpoint(self, ref: str, session: ExternalSession | None = None) -> str:
        """A checkpoint id from a tag of ``session``, a full id, or a unique prefix of one
        of the database's checkpoint ids. A tag that is also a prefix of another
        checkpoint's id is ambiguous, as in git."""
        if session is not None:
            tags = self.mgr.tags(session.id)
            if ref in tags:
                target = tags[ref]
                others = [c for c in self.checkpoint_ids() if c.startswith(ref) and c != target]
                if others:
                    raise CliError(
                        f"ambiguous {ref!r}: the tag names checkpoint {target}, and it is also "
                        f"a prefix of checkpoint {others[0]}"
                        + (f" and {len(others) - 1} more" if len(others) > 1 else "")
                        + "; give more of the id, or the tag's checkpoint id"
                    )
                return target
        return resolve_prefix(ref, self.checkpoint_ids(), "checkpoint")

    # --- reading -----------------------------------------------------------------------------

    def abbreviate(self, checkpoint_id: str | None) -> str:
        """The shortest unique prefix of a checkpoint id (at least :data:`MIN_ABBREV`)."""
        if checkpoint_id is None:
            return ""
        if self._abbreviations is None:
            self._abbreviations = abbreviations(self.checkpoint_ids())
        return self._abbreviations.get(checkpoint_id, checkpoint_id)

    def tuples(self, thread_id: str, ids: Iterable[str]) -> dict[str, CheckpointTuple]:
        """The named checkpoints of a thread (its own or inherited), read together."""
        from langgraph_agentgit.sessions import store as ops

        wanted = list(ids)
        if not wanted:
            return {}
        return self.saver._read(ops.checkpoint_tuples, self.saver.store, thread_id, wanted)

    def undone_at(self, session_id: str) -> dict[str, list[str]]:
        """Checkpoint id -> the tools whose effects there a rollback undid."""
        out: dict[str, list[str]] = {}
        for record in self.mgr.undone_effects(session_id).values():
            if record.status == "done":
                out.setdefault(record.checkpoint_id, []).append(record.tool_name)
        return out

    def timeline(self, session: ExternalSession) -> tuple[list[BranchHistory], dict[str, str]]:
        """Every branch with the summaries of its own checkpoints, and the tags; the
        branches' head states are not read (see ``timeline_data``)."""
        from langgraph_agentgit.sessions import store as ops

        _, histories, tags = self.saver._read(
            ops.timeline_data, self.saver.store, session.id, False
        )
        return histories, tags


def _names_hint(branches: Sequence[Branch]) -> str:
    names = [one_line(b.name) for b in branches if b.name]
    shown = ", ".join(names[:8]) + (", …" if len(names) > 8 else "")
    return f"its branches: {shown}" if names else ""


def owners(branches: Sequence[Branch], thread_id: str) -> Callable[[str], str | None]:
    """For the history of branch ``thread_id``: checkpoint id -> the branch that wrote it
    (``None`` for a thread that is not in the session any more).

    A branch wrote the checkpoints newer than its fork point (ids are time-ordered);
    older ones are its parent's, or further up. Reads nothing."""
    by_id = {b.thread_id: b for b in branches}
    chain: list[tuple[str | None, str | None]] = []  # (thread, fork point) nearest first
    current: str | None = thread_id
    seen: set[str] = set()
    while current is not None and current not in seen:
        seen.add(current)
        branch = by_id.get(current)
        if branch is None:
            chain.append((None, None))
            break
        chain.append((current, branch.fork_checkpoint_id))
        current = branch.parent_thread_id

    def owner(checkpoint_id: str) -> str | None:
        for thread, fork in chain:
            if fork is None or checkpoint_id > fork:
                return thread
        return None

    return owner


@contextmanager
def open_repo(
    ctx: typer.Context,
    path: Database,
    *,
    writes: bool,
    read_only: bool = False,
    create: bool = False,
    command: str | None = None,
) -> Iterator[Repo]:
    """Open the database at ``path`` for the running command; unless ``create``, it must
    already be one of ours.

    A command that only reads opens it read-only when asked (``--read-only``) or when
    its location cannot be written (a read-only directory or file system), and falls
    back to read-only when the saver finds it cannot write. A command that ``writes``
    fails at once, with exit status 1, where nothing can be written. A URL has no
    location to look at: it is checked by :func:`check_database` alone. Waits
    for another process's lock last ``--lock-timeout`` in all and are announced on
    stderr after a second.
    """
    from langgraph_agentgit import AgentGitSaver, SessionManager

    root = ctx.find_root().obj or {}
    timeout = lock_timeout_of(ctx)
    command = command or ctx.info_name or "this command"
    notice = LockNotice(path, timeout)
    asked_read_only = read_only or bool(root.get("read_only"))
    if writes and asked_read_only:
        raise CliError(f"--read-only: `{command}` changes the database")
    if not create:
        check_database(path, lock_timeout=timeout, on_lock_wait=notice)
    writable = not isinstance(path, Path) or location_writable(str(path))
    if writes and isinstance(path, Path) and not writable:
        raise CliError(
            f"{path} is read-only ({_why_read_only(path)}): `{command}` changes the database "
            f"and cannot run; the read commands ({', '.join(READ_COMMANDS)}) work with it",
            EXIT_FAILURE,
        )
    with ExitStack() as stack:

        def open_saver(read_only: bool) -> AgentGitSaver:
            return stack.enter_context(
                AgentGitSaver.from_conn_string(
                    str(path), lock_timeout=timeout, read_only=read_only, on_lock_wait=notice
                )
            )

        if writes:
            saver = open_saver(False)
        elif asked_read_only or not writable:
            saver = open_saver(True)
        else:
            try:
                saver = open_saver(False)
            except ReadOnlyDatabaseError:
                saver = open_saver(True)
        yield Repo(path=path, saver=saver, mgr=SessionManager(saver))


# --- ids -----------------------------------------------------------------------------------


def resolve_prefix(prefix: str, candidates: Iterable[str], kind: str, hint: str = "") -> str:
    """The one candidate equal to ``prefix``, else the one that starts with it.

    Raises :class:`CliError` (exit status 2) naming the matches when there are several,
    or saying so when there is none (with ``hint`` appended).
    """
    pool = list(dict.fromkeys(candidates))
    if prefix in pool:
        return prefix
    if not prefix:
        raise CliError(f"empty {kind} id")
    matches = [c for c in pool if c.startswith(prefix)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise CliError(f"unknown {kind} {prefix!r}" + (f" ({hint})" if hint else ""))
    shown = ", ".join(sorted(matches)[:5]) + (", …" if len(matches) > 5 else "")
    raise CliError(
        f"ambiguous {kind} prefix {prefix!r}: {len(matches)} match ({shown}); type more characters"
    )


# --- formatting ----------------------------------------------------------------------------


def _when(value: Any, *, seconds: bool = True) -> str:
    """A timestamp for a table: local date and time."""
    if value is None:
        return ""
    moment = value
    if not isinstance(moment, datetime):
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError:
            return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def _session_preview(repo: Repo, session: ExternalSession) -> str:
    return session_preview(repo.saver, repo.mgr, session.id)


def _counted(count: Callable[[], T]) -> T | None:
    """Usage counts, or None with a note on stderr when a read-only database's message
    index must be rebuilt first (counts from it would be wrong)."""
    try:
        return count()
    except ReadOnlyDatabaseError as exc:
        _stderr().print(Text(f"Usage counts left out: {exc}", style="dim"), soft_wrap=True)
        return None


def usage_text(usage: Usage) -> str:
    """Counts in one short line: turns, messages, tool calls, tokens."""
    calls = sum(usage.tool_calls.values())
    text = f"{usage.turns} turns, {usage.messages} messages, {calls} tool calls"
    if usage.tool_calls:
        text += " (" + ", ".join(f"{k} {v}" for k, v in usage.tool_calls.items()) + ")"
    return text + f", {usage.tokens.total_tokens} tokens"


def _print_json(data: Any) -> None:
    typer.echo(_json_text(data))


def _say(text: RichText) -> None:
    # One-line reports keep their ids whole: never re-flowed, the terminal wraps them.
    _console().print(text, soft_wrap=True)


def _one_line(text: RichText) -> RichText:
    # In a column that may wrap (so Rich narrows it first when space is short), a cell
    # that is still cut to one line with an ellipsis.
    text.no_wrap, text.overflow = True, "ellipsis"
    return text


def _name(text: str, width: int = NAME_WIDTH) -> str:
    """A user-given name for a one-line place: control characters and newlines shown,
    and cut to ``width`` so that what follows it stays on the line."""
    return _cut(one_line(text), width)


class _PlainTable(Table):
    """A table whose string cells are plain text: a name or id from the database that
    looks like Rich markup (``[red]``, ``[/]``) is shown as typed, never interpreted."""

    def add_row(self, *renderables: Any, **kwargs: Any) -> None:
        super().add_row(*(Text(r) if isinstance(r, str) else r for r in renderables), **kwargs)


def _table(title: str) -> Table:
    # Light borders: the tables are meant to be read in 80 columns. The title is a Text:
    # it holds ids and paths, never markup.
    return _PlainTable(
        title=Text(title, style="bold"),
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )


def _console() -> Console:
    # Made per command so that output goes to whatever sys.stdout is at the time.
    return SafeConsole()


def _rule(console: Console, title: str) -> None:
    console.rule(Text(title, style="bold"))


def _invocation() -> str:
    """How the user can run this command again: ``agentgit`` when that is on ``PATH`` and
    is this program, else the path it was started by (``.venv/bin/agentgit``), else
    ``python -m langgraph_agentgit`` with this interpreter."""
    started = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    on_path = shutil.which("agentgit")
    if started is not None and started.name == "agentgit" and started.exists():
        if on_path is not None and Path(on_path).resolve() == started.resolve():
            return "agentgit"
        try:
            shown = started.resolve().relative_to(Path.cwd().resolve())
        except ValueError:
            shown = started.resolve()
        return shlex.quote(str(shown))
    if on_path is not None:
        return "agentgit"
    return f"{shlex.quote(sys.executable)} -m langgraph_agentgit"


def _confirm(question: str, yes: bool) -> None:
    """Go on only if ``--yes`` was given or the user, at a terminal, says yes."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise CliError(f"{question.rstrip('?')}: not confirmed (pass --yes)")
    if not typer.confirm(one_line(question), default=False, err=True):
        raise CliError("nothing deleted", EXIT_FAILURE)


# --- commands ------------------------------------------------------------------------------


def check_target(ctx: typer.Context, path: Database) -> None:
    """Refuse, before anything is printed or written, a database ``demo`` or ``copy``
    must not write into: a directory, a file that is not an agentgit database, a
    directory that does not exist or cannot be written; a URL no server answers (its
    schema may be without agentgit tables: they are created)."""
    if isinstance(path, str):
        schema, _found = postgres_schema(path)
        if schema is None:
            raise CliError(
                f"{describe(path)}: its search_path names no existing schema (create it "
                "first, or choose one with ?options=-csearch_path%3DSCHEMA)"
            )
        return
    if path.exists() or path.is_symlink():
        check_database(path, lock_timeout=lock_timeout_of(ctx))
        return
    parent = path.parent
    if not parent.exists():
        raise CliError(f"cannot create {path}: directory {parent} does not exist")
    if not parent.is_dir():
        raise CliError(f"cannot create {path}: {parent} is not a directory")
    if not location_writable(str(path)):
        raise CliError(
            f"cannot create {path}: {_why_read_only(path)}",
            EXIT_FAILURE,
        )


@app.command()
def demo(
    ctx: typer.Context,
    db: DbOption = None,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh",
            help="First delete the sessions earlier demo runs left in the database (nothing else).",
        ),
    ] = False,
) -> None:
    """Run a tool-using agent, roll it back, continue both timelines, show the result.

    Needs no API key and no network: the agent's model is a deterministic fake that calls
    real tools. Each run adds a new session to the database, creating the database if
    there is none; a file that is not an agentgit database is refused untouched.
    """
    path = db_path(ctx, db)
    check_target(ctx, path)
    from langgraph_agentgit import demo as scenario  # the agent stack is only needed here

    console = _console()
    with open_repo(ctx, path, writes=True, create=True) as repo:
        _rule(console, "agentgit demo")
        console.print(Text.assemble("Database: ", (describe(path), "bold")), soft_wrap=True)
        if fresh:
            earlier = [
                old
                for old in repo.mgr.list_sessions()
                if all(old.metadata.get(k) == v for k, v in DEMO_MARK.items())
            ]
            for old in earlier:
                repo.mgr.delete_session(old.id)
            console.print(
                Text(
                    f"--fresh: deleted {len(earlier)} session"
                    f"{'s' if len(earlier) != 1 else ''} of earlier demo runs."
                )
            )
        console.print(
            Text(
                "An order-support agent with a fake, deterministic chat model and three real "
                "tools (lookup_order, calculator, refund_order) talks to a user; then the "
                "session is rolled back, undoing the refund (refund_order has an undo "
                "handler).\n"
            )
        )

        def on_turn(label: str, messages: Sequence[BaseMessage]) -> None:
            style = "green" if label == "main" else "magenta"
            for message in messages:
                line = Text.assemble((f"[{label}] ", style), message_preview(message, 200))
                console.print(line, no_wrap=True, overflow="ellipsis")

        result = scenario.run_demo(repo.saver, on_turn=on_turn)
        s = repo.mgr.get_session(result.session_id)
        if s is None:  # pragma: no cover - run_demo just created it
            raise CliError(f"session {result.session_id} vanished", EXIT_FAILURE)
        console.print(
            Text.assemble(
                "\nRolled back to ",
                (repo.abbreviate(result.rollback_checkpoint_id), "yellow"),
                (f" [{scenario.ROLLBACK_TAG}]", "bold cyan"),
                " and continued both timelines.",
            )
        )
        print_undo(console, result)
        _rule(console, "Branch timeline")
        histories, tags = repo.timeline(s)
        console.print(build_tree(repo, s, histories, tags))
        console.print(
            Text.assemble(
                "\nbranch_count = ",
                (str(s.branch_count), "bold"),
                "   total_checkpoints = ",
                (str(s.total_checkpoints), "bold"),
                "\n",
            )
        )
        main_head = repo.abbreviate(result.main_head)
        branch_head = repo.abbreviate(result.branch_head)
        _rule(console, f"Diff of the two heads: {main_head} (main) → {branch_head} (branch)")
        print_diff(console, repo.mgr.diff(result.main_head, result.branch_head))
        short = abbreviations([x.id for x in repo.mgr.list_sessions()])[s.id]
        program = _invocation()
        shown = describe(path)
        prefix = program if path == Path(DEFAULT_DB) else f"{program} --db {shlex.quote(shown)}"
        _rule(console, "Try next")
        for command in (
            "sessions",
            f"show {short}",
            f"tree {short}",
            f"log {short}",
            f"log {short} --branch main",
            f"diff {main_head} {branch_head}",
            f"rollback {short} {scenario.ROLLBACK_TAG}",
            "sessions --json",
        ):
            console.print(Text(f"  {prefix} {command}"), soft_wrap=True)
        if program != "agentgit" and program.endswith("agentgit"):
            activate = Path(program).parent / "activate"
            how = f"`source {activate}` puts it there" if activate.exists() else ""
            console.print(
                Text(f"\n(`agentgit` is not on your PATH{': ' + how if how else ''}.)", "dim"),
                soft_wrap=True,
            )


@app.command()
def sessions(
    ctx: typer.Context,
    db: DbOption = None,
    user: Annotated[
        str | None, typer.Option(help="Only this user's sessions.", callback=_user_id)
    ] = None,
    active: Annotated[bool, typer.Option("--active", help="Only active sessions.")] = False,
    limit: Annotated[
        int,
        typer.Option(
            "--limit",
            min=1,
            max=1_000_000,
            help="At most this many sessions, the most recently active.",
        ),
    ] = SESSIONS_SHOWN,
    show_all: Annotated[
        bool, typer.Option("--all", help="Every session, however many (overrides --limit).")
    ] = False,
    read_only: ReadOnlyOption = False,
    as_json: JsonOption = False,
) -> None:
    """List sessions, most recently active first (the 50 most recent unless --limit or
    --all says otherwise; a note on stderr says when there are more)."""
    with open_repo(ctx, db_path(ctx, db), writes=False, read_only=read_only) as repo:
        # One more than shown tells whether there are more, without counting them all.
        found = repo.mgr.list_sessions(
            user_id=user, active_only=active, limit=None if show_all else limit + 1
        )
        more = not show_all and len(found) > limit
        found = found[:limit] if more else found
        rows = [(s, _session_preview(repo, s)) for s in found]
        counts = _counted(lambda: repo.mgr.usages([s.id for s in found])) or {}
        if more:
            _stderr().print(
                Text(
                    f"Showing the {limit} most recently active sessions; there are more "
                    "(--limit N, or --all).",
                    style="dim",
                ),
                soft_wrap=True,
            )
        if as_json:
            _print_json([session_json(s, preview, counts.get(s.id)) for s, preview in rows])
            return
        if not rows:
            _console().print(Text(f"No sessions in {describe(repo.path)}."))
            return
        # Prefixes unique among the sessions shown; when some are not shown, long enough
        # (48 random bits of a UUID) that another session sharing one is unlikely, and
        # `show` would say the prefix is ambiguous.
        short = abbreviations([s.id for s in found], minimum=13 if more else MIN_ABBREV)
        table = _table(f"Sessions in {describe(repo.path)}")
        table.add_column("id", no_wrap=True)
        table.add_column("user", no_wrap=True, max_width=12, overflow="ellipsis")
        table.add_column("name", no_wrap=True, max_width=20, overflow="ellipsis")
        table.add_column("br.", justify="right", no_wrap=True)
        table.add_column("ckpts", justify="right", no_wrap=True)
        table.add_column("last activity", no_wrap=True)
        table.add_column("last message")  # the column that shrinks
        for s, preview in rows:
            table.add_row(
                Text(short[s.id], style="yellow" if s.is_active else "dim"),
                _one_line(Text(one_line(s.user_id or ""))),
                _one_line(Text(one_line(s.name))),
                str(s.branch_count),
                str(s.total_checkpoints),
                _when(s.updated_at, seconds=False),
                _one_line(Text(preview)),
            )
        _console().print(table)


@app.command()
def show(
    ctx: typer.Context,
    session: SessionArg,
    db: DbOption = None,
    as_json: JsonOption = False,
    read_only: ReadOnlyOption = False,
) -> None:
    """Show one session: its details, branches (* = current) and tags."""
    with open_repo(ctx, db_path(ctx, db), writes=False, read_only=read_only) as repo:
        s = repo.session(session)
        branches = repo.mgr.branches(s.id)
        tags = repo.mgr.tags(s.id)
        preview = _session_preview(repo, s)
        runs = repo.mgr.undo_runs(s.id)
        undone = repo.mgr.undone_effects(s.id) if runs else {}
        counted = _counted(
            lambda: (
                repo.mgr.usage(s.id),
                {b.thread_id: repo.mgr.usage(s.id, thread_id=b.thread_id) for b in branches},
            )
        )
        total, per_branch = counted if counted else (None, {})
        if as_json:
            data = {"schema_version": SCHEMA_VERSION, **session_json(s, preview, total)}
            data["branches"] = [
                branch_json(b, s.current_thread_id, per_branch.get(b.thread_id)) for b in branches
            ]
            data["tags"] = dict(sorted(tags.items()))
            data["undo_runs"] = [undo_run_json(r, undone) for r in runs]
            _print_json(data)
            return
        console = _console()
        details = Table.grid(padding=(0, 2))
        details.add_column(style="bold", no_wrap=True)
        details.add_column()
        current = next((b for b in branches if b.thread_id == s.current_thread_id), None)
        for label, value in (
            ("session", s.id),
            ("name", s.name),
            ("user", s.user_id or ""),
            ("active", "yes" if s.is_active else "no"),
            ("created", _when(s.created_at)),
            ("last activity", _when(s.updated_at)),
            (
                "current branch",
                f"{one_line(current.name or '')} ({s.current_thread_id})"
                if current is not None
                else s.current_thread_id,
            ),
            ("branches", str(s.branch_count)),
            ("checkpoints", str(s.total_checkpoints)),
            ("usage", usage_text(total) if total else "unknown (see the note above)"),
            (
                "input/output tokens",
                f"{total.tokens.input_tokens}/{total.tokens.output_tokens}" if total else "?",
            ),
            ("metadata", json.dumps(s.metadata, default=str) if s.metadata else ""),
            ("last message", preview),
        ):
            details.add_row(Text(label), Text(str(value)))
        console.print(Panel(details, title=Text("Session"), title_align="left", expand=False))
        short = abbreviations([b.thread_id for b in branches])
        forks = [repo.abbreviate(b.fork_checkpoint_id) for b in branches]
        table = _table("Branches (oldest first; * = current; --json for full ids)")
        table.add_column("", no_wrap=True, min_width=1)
        table.add_column("thread", no_wrap=True, min_width=max(map(len, short.values())))
        table.add_column("name", overflow="ellipsis")  # the column that shrinks
        table.add_column("parent", no_wrap=True)
        table.add_column("forked at", no_wrap=True, min_width=max(map(len, forks), default=0))
        table.add_column("checkpoints", justify="right", no_wrap=True)
        table.add_column("turns", justify="right", no_wrap=True)
        table.add_column("msgs", justify="right", no_wrap=True)
        table.add_column("tokens", justify="right", no_wrap=True)
        for b, fork in zip(branches, forks, strict=True):
            is_current = b.thread_id == s.current_thread_id
            parent = b.parent_thread_id
            table.add_row(
                Text("*", style="bold green") if is_current else "",
                Text(short[b.thread_id], style="bold green" if is_current else ""),
                _one_line(Text(one_line(b.name or ""), style="bold green" if is_current else "")),
                short.get(parent, parent[:MIN_ABBREV]) if parent else "",
                fork,
                str(b.checkpoint_count),
                *(
                    (str(u.turns), str(u.messages), str(u.tokens.total_tokens))
                    if (u := per_branch.get(b.thread_id))
                    else ("?", "?", "?")
                ),
            )
        console.print(table)
        if tags:
            tag_table = _table("Tags")
            tag_table.add_column("tag", overflow="ellipsis")
            tag_table.add_column("checkpoint", no_wrap=True)
            for name, checkpoint_id in sorted(tags.items()):
                tag_table.add_row(_one_line(Text(one_line(name))), checkpoint_id)
            console.print(tag_table)
        if runs:
            print_undo_runs(console, runs, undone, branches, repo.abbreviate)


def undo_run_json(run: Any, undone: Mapping[str, Any]) -> dict[str, Any]:
    """A rollback made with --undo-effects and the effects it holds, by status."""
    held = [r for r in undone.values() if r.run_id == run.run_id]
    return {
        "run_id": run.run_id,
        "left_thread_id": run.source_thread_id,
        "branch_thread_id": run.branch_thread_id,
        "target_checkpoint_id": run.target_checkpoint_id,
        "status": run.status,
        "created_at": run.created_at,
        "effects": {
            status: sorted(r.tool_name for r in held if r.status == status)
            for status in ("done", "failed", "running", "pending")
            if any(r.status == status for r in held)
        },
    }


def print_undo_runs(
    console: Console,
    runs: Sequence[Any],
    undone: Mapping[str, Any],
    branches: Sequence[Branch],
    abbreviate: Callable[[str], str],
) -> None:
    """The session's rollbacks that undid effects: which branch each left, its status and
    the tools it undid."""
    names = {b.thread_id: one_line(b.name or b.thread_id) for b in branches}
    table = _table("Undo runs (rollback --undo-effects; oldest first)")
    table.add_column("run", no_wrap=True)
    table.add_column("left", no_wrap=True)
    table.add_column("back to", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("undone")  # the column that shrinks
    for run in runs:
        data = undo_run_json(run, undone)
        done = data["effects"].get("done", [])
        table.add_row(
            run.run_id[:MIN_ABBREV],
            names.get(run.source_thread_id, run.source_thread_id[:MIN_ABBREV]),
            abbreviate(run.target_checkpoint_id),
            Text(run.status, style="green" if run.status == "done" else "bold red"),
            _one_line(Text(f"{len(done)}: {', '.join(done)}" if done else "0")),
        )
    console.print(table)


@app.command()
def log(
    ctx: typer.Context,
    session: SessionArg,
    branch: Annotated[
        str | None,
        typer.Option("--branch", "-b", help="Branch name, thread id or prefix (default: current)."),
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="At most N.")] = None,
    db: DbOption = None,
    read_only: ReadOnlyOption = False,
    as_json: JsonOption = False,
) -> None:
    """A branch's checkpoints, newest first: id, step, source, node and message.

    Checkpoints inherited from the branch it was forked from are dimmed; "⑂ after X"
    marks a checkpoint whose parent is not the row below it (LangGraph forked inside the
    thread: a run resumed or a state updated from an earlier checkpoint)."""
    with open_repo(ctx, db_path(ctx, db), writes=False, read_only=read_only) as repo:
        s = repo.session(session)
        branches = repo.mgr.branches(s.id)
        target = repo.branch(s, branch) if branch is not None else None
        thread_id = target.thread_id if target is not None else s.current_thread_id
        name = next((b.name for b in branches if b.thread_id == thread_id), None)
        # One more than shown: the parent of the last row, for its nodes.
        items = repo.mgr.checkpoints(
            s.id, thread_id=thread_id, limit=limit + 1 if limit is not None else None
        )
        by_id = {item.checkpoint["id"]: item for item in items}
        owner = owners(branches, thread_id)
        tags: dict[str, list[str]] = {}
        for tag_name, checkpoint_id in sorted(repo.mgr.tags(s.id).items()):
            tags.setdefault(checkpoint_id, []).append(tag_name)
        rows = []
        for i, item in enumerate(items[:limit] if limit is not None else items):
            below = items[i + 1] if i + 1 < len(items) else None
            parent_id = _parent_id(item)
            parent = by_id.get(parent_id) if parent_id is not None else None
            rows.append((item, parent if parent is not None else below, below, parent_id))
        if as_json:
            _print_json(
                [
                    checkpoint_json(
                        item,
                        parent,
                        thread_id=owner(item.checkpoint["id"]),
                        tags=tags.get(item.checkpoint["id"], []),
                    )
                    for item, parent, _, _ in rows
                ]
            )
            return
        title = f"Session {s.id}, branch {_name(name or '')} ({thread_id}), newest first"
        table = _table(title)
        table.add_column("checkpoint", no_wrap=True)
        table.add_column("step", justify="right", no_wrap=True)
        table.add_column("source", no_wrap=True)
        table.add_column("node", no_wrap=True, max_width=16, overflow="ellipsis")
        table.add_column("message")  # the column that shrinks
        for item, parent, below, parent_id in rows:
            checkpoint_id = item.checkpoint["id"]
            metadata = item.metadata or {}
            label = Text(repo.abbreviate(checkpoint_id), style="yellow")
            if owner(checkpoint_id) != thread_id:
                label.stylize("dim")  # inherited from the branch this one was forked from
            message = Text()
            if parent_id is not None and (below is None or below.checkpoint["id"] != parent_id):
                message.append(f"⑂ after {repo.abbreviate(parent_id)}: ", style="bold magenta")
            for tag in tags.get(checkpoint_id, []):
                message.append(f"[{one_line(tag)}] ", style="bold cyan")
            message.append(checkpoint_preview(item))
            table.add_row(
                label,
                str(metadata.get("step", "")),
                str(metadata.get("source", "")),
                ", ".join(nodes_run(item, parent)),
                _one_line(message),
            )
        _console().print(table)


@app.command()
def turns(
    ctx: typer.Context,
    session: SessionArg,
    branch: Annotated[
        str | None,
        typer.Option("--branch", "-b", help="Branch name, thread id or prefix (default: current)."),
    ] = None,
    db: DbOption = None,
    read_only: ReadOnlyOption = False,
    as_json: JsonOption = False,
) -> None:
    """A branch's conversation turns, first first: number, the checkpoint it starts at,
    the user message, tool calls and tokens (from the AI messages' usage_metadata).

    A turn starts where user messages are added to the state's messages; turns a branch
    inherits keep their numbers (dimmed)."""
    with open_repo(ctx, db_path(ctx, db), writes=False, read_only=read_only) as repo:
        s = repo.session(session)
        target = repo.branch(s, branch) if branch is not None else None
        thread_id = target.thread_id if target is not None else s.current_thread_id
        found = repo.mgr.turns(s.id, thread_id=thread_id)
        if as_json:
            _print_json([turn_json(t) for t in found])
            return
        name = next((b.name for b in repo.mgr.branches(s.id) if b.thread_id == thread_id), None)
        if not found:
            _say(Text(f"Branch {_name(name or '')} ({thread_id}) has no user turns."))
            return
        table = _table(f"Session {s.id}, branch {_name(name or '')} ({thread_id}), turns")
        table.add_column("#", justify="right", no_wrap=True)
        table.add_column("starts at", no_wrap=True)
        table.add_column("tools", no_wrap=True, max_width=20, overflow="ellipsis")
        table.add_column("tokens", justify="right", no_wrap=True)
        table.add_column("user")  # the column that shrinks
        for t in found:
            style = "dim" if t.inherited else ""
            table.add_row(
                Text(str(t.number), style=style),
                Text(repo.abbreviate(t.start_checkpoint_id), style="yellow"),
                _one_line(Text(", ".join(str(c.get("name")) for c in t.tool_calls))),
                str(t.usage.total_tokens) if t.usage.total_tokens else "",
                _one_line(Text(_cut(" ".join(t.text.split()), 200), style=style)),
            )
        _console().print(table)


@app.command()
def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="Words to find (any text; word* = prefix).")],
    session: Annotated[
        str | None, typer.Option("--session", "-s", help="Only this session (id or prefix).")
    ] = None,
    role: Annotated[
        str | None,
        typer.Option(help="Only messages of this type: human (user), ai (assistant), tool."),
    ] = None,
    user: Annotated[
        str | None, typer.Option(help="Only this user's sessions.", callback=_user_id)
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many hits.")] = 20,
    db: DbOption = None,
    read_only: ReadOnlyOption = False,
    as_json: JsonOption = False,
) -> None:
    """Find messages in every branch of every session, best match first.

    Every word of the query must be in the message (case and accents ignored); a word
    ending in * matches as a prefix; quotes, operators and other signs only separate
    words. A message branches share is shown once, on the branch that wrote it."""
    with open_repo(ctx, db_path(ctx, db), writes=False, read_only=read_only) as repo:
        session_id = repo.session(session).id if session is not None else None
        try:
            hits = repo.mgr.search(
                query, user_id=user, session_id=session_id, role=role, limit=limit
            )
        except ValueError as exc:
            raise CliError(str(exc)) from None
        if as_json:
            _print_json([search_hit_view(h) for h in hits])
            return
        if not hits:
            _say(Text(f"No message matches {one_line(query)!r}."))
            return
        table = _table(f"Messages matching {_cut(one_line(query), 60)!r} (best first)")
        table.add_column("session", no_wrap=True)
        table.add_column("branch", no_wrap=True)
        table.add_column("checkpoint", no_wrap=True)
        table.add_column("role", no_wrap=True)
        table.add_column("message")  # the column that shrinks
        for h in hits:
            snippet = Text(one_line(h.snippet))
            snippet.highlight_regex(r">>>.*?<<<", "bold yellow")
            table.add_row(
                (h.session_id or "")[:MIN_ABBREV],
                h.thread_id[:MIN_ABBREV],
                repo.abbreviate(h.checkpoint_id),
                h.role,
                _one_line(snippet),
            )
        _console().print(table)


@app.command()
def reindex(
    ctx: typer.Context,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Rebuild the message index (search, usage counts) from the stored checkpoints.

    Needed only for the words of deleted messages, which SQLite keeps in its search
    index until then: a database written before the index existed is indexed by its
    first search."""
    with open_repo(ctx, db_path(ctx, db), writes=True) as repo:
        started = time.monotonic()
        count = repo.mgr.reindex()
        seconds = time.monotonic() - started
        if as_json:
            _print_json({"messages": count, "seconds": round(seconds, 3)})
            return
        _say(Text(f"Indexed {count} messages in {seconds:.1f} s."))


def _shown(count: int, anchors: set[int], show_all: bool) -> list[int]:
    """Indices of a line's checkpoints that ``tree`` draws (see :data:`TREE_FULL_LINE`)."""
    if show_all or count <= TREE_FULL_LINE:
        return list(range(count))
    keep = set(range(min(TREE_KEEP_FIRST, count)))
    keep |= set(range(max(count - TREE_KEEP_LAST, 0), count))
    return sorted(keep | anchors)


def build_tree(
    repo: Repo,
    session: ExternalSession,
    histories: Sequence[BranchHistory],
    tags: Mapping[str, str],
    *,
    show_all: bool = False,
) -> Tree:
    """The session's timeline as a Rich tree: each branch lists its own checkpoints oldest
    first, a branch hangs under the checkpoint it was forked at, and a fork LangGraph made
    inside a thread hangs under the checkpoint it continues from. Long runs are elided
    unless ``show_all``; fork points, tagged checkpoints and each line's first and last
    checkpoints are always drawn."""
    s = session
    root = Tree(
        Text.assemble(
            ("session ", "bold"),
            (s.id, "bold yellow"),
            f"  {_name(s.name)}" if s.name else "",
            (f"  user {_name(s.user_id)}" if s.user_id else "", "dim"),
        )
    )
    by_checkpoint: dict[str, list[str]] = {}
    for name, checkpoint_id in sorted(tags.items()):
        by_checkpoint.setdefault(checkpoint_id, []).append(name)
    anchors = set(by_checkpoint) | {
        h.branch.fork_checkpoint_id for h in histories if h.branch.fork_checkpoint_id
    }
    for h in histories:
        anchors |= {line.parent_checkpoint_id for line in h.lines if line.parent_checkpoint_id}
    threads = abbreviations([h.branch.thread_id for h in histories])
    nodes: dict[str, Tree] = {}
    # The views layer's walk: parents before children (a branch hangs under its fork
    # point, drawn with its parent), siblings oldest first.
    for history, _depth in walk_branches(histories, lambda h: h.branch):
        fork = history.branch.fork_checkpoint_id
        anchor = nodes.get(fork, root) if fork is not None else root
        _draw_branch(repo, s, history, anchor, root, threads, nodes, anchors,
                     by_checkpoint, show_all)  # fmt: skip
    return root


def _draw_branch(
    repo: Repo,
    s: ExternalSession,
    history: BranchHistory,
    anchor: Tree,
    root: Tree,
    threads: Mapping[str, str],
    nodes: dict[str, Tree],
    anchors: set[str],
    tags: Mapping[str, list[str]],
    show_all: bool,
) -> None:
    branch = history.branch
    is_current = branch.thread_id == s.current_thread_id
    own = history.checkpoints
    undone = repo.undone_at(s.id)
    label = Text.assemble(
        ("⑂ " if anchor is not root else "● ", "bold magenta"),
        ("* " if is_current else "", "bold green"),
        (_name(branch.name or ""), "bold green" if is_current else "bold"),
        ("  thread ", "dim"),
        (threads[branch.thread_id], "green" if is_current else ""),
        ("  (current)" if is_current else "", "bold green"),
        (f"  {len(own)} own checkpoint{'s' if len(own) != 1 else ''}", "dim"),
    )
    if history.in_thread_forks:
        label.append(f"  {history.in_thread_forks} in-thread fork(s)", style="magenta")
    branch_node = anchor.add(label)
    plan: list[tuple[Any, list[int]]] = []
    for line in history.lines:
        ids = [c.checkpoint_id for c in line.checkpoints]
        marked = {i for i, cid in enumerate(ids) if cid in anchors}
        plan.append((line, _shown(len(ids), marked, show_all)))
    wanted = [line.checkpoints[i].checkpoint_id for line, shown in plan for i in shown]
    items = repo.tuples(branch.thread_id, wanted)
    for line, shown in plan:
        if line.is_main:
            holder = branch_node
        else:
            start = nodes.get(line.parent_checkpoint_id or "", branch_node)
            holder = start.add(
                Text.assemble(
                    ("⑂ fork inside the thread", "magenta"),
                    (
                        f" after {repo.abbreviate(line.parent_checkpoint_id)}"
                        if line.parent_checkpoint_id
                        else "",
                        "dim",
                    ),
                    (f"  {len(line.checkpoints)} checkpoints", "dim"),
                )
            )
        previous = -1
        for i in shown:
            if i - previous > 1:
                skipped = line.checkpoints[previous + 1 : i]
                holder.add(_elided(skipped))
            previous = i
            summary = line.checkpoints[i]
            text = _tree_line(
                repo,
                summary,
                items.get(summary.checkpoint_id),
                tags,
                undone.get(summary.checkpoint_id, ()),
            )
            nodes[summary.checkpoint_id] = holder.add(_one_line(text))
        if previous < len(line.checkpoints) - 1:
            holder.add(_elided(line.checkpoints[previous + 1 :]))


def _elided(skipped: Sequence[CheckpointSummary]) -> RichText:
    steps = [c.step for c in skipped if c.step is not None]
    where = f" (steps {min(steps)} to {max(steps)})" if steps else ""
    return Text(f"┆ {len(skipped)} more checkpoints{where}; --all shows them", style="dim")


def _tree_line(
    repo: Repo,
    summary: CheckpointSummary,
    item: CheckpointTuple | None,
    tags: Mapping[str, list[str]],
    undone: Sequence[str] = (),
) -> RichText:
    step = "?" if summary.step is None else summary.step
    line = Text.assemble(
        (repo.abbreviate(summary.checkpoint_id), "yellow"),
        f"  {step:>3}  ",
        (f"{summary.source or '':<6}", "dim"),
    )
    for tag in tags.get(summary.checkpoint_id, []):
        line.append(f"[{one_line(tag)}] ", style="bold cyan")
    if undone:
        # Tool effects recorded at this checkpoint that a rollback undid.
        line.append(f"↶ undone {', '.join(sorted(undone))} ", style="bold yellow")
    line.append(checkpoint_preview(item) if item is not None else "")
    return line


def tree_json(
    repo: Repo, session: ExternalSession, histories: Sequence[BranchHistory],
    tags: Mapping[str, str],
) -> dict[str, Any]:  # fmt: skip
    """The stable JSON shape of a timeline: branches with all their own checkpoints."""
    s = session
    by_checkpoint: dict[str, list[str]] = {}
    for name, checkpoint_id in sorted(tags.items()):
        by_checkpoint.setdefault(checkpoint_id, []).append(name)
    out = []
    for h in histories:
        b = h.branch
        # Newest first, and one more: the fork point, parent of the first own checkpoint.
        listed = repo.mgr.checkpoints(s.id, thread_id=b.thread_id, limit=len(h.checkpoints) + 1)
        by_id = {t.checkpoint["id"]: t for t in listed}
        checkpoints = []
        for summary in h.checkpoints:
            item = by_id.get(summary.checkpoint_id)
            if item is None:
                continue
            parent_id = summary.parent_checkpoint_id
            parent = by_id.get(parent_id) if parent_id else None
            if parent is None and parent_id:
                parent = repo.tuples(b.thread_id, [parent_id]).get(parent_id)
            checkpoints.append(
                checkpoint_json(
                    item,
                    parent,
                    thread_id=b.thread_id,
                    tags=by_checkpoint.get(summary.checkpoint_id, []),
                )
            )
        out.append(
            {
                **branch_json(b, s.current_thread_id),
                "in_thread_forks": h.in_thread_forks,
                "checkpoints": checkpoints,
            }
        )
    return {
        "schema_version": SCHEMA_VERSION,
        "session_id": s.id,
        "current_thread_id": s.current_thread_id,
        "branches": out,
    }


@app.command()
def tree(
    ctx: typer.Context,
    session: SessionArg,
    show_all: Annotated[
        bool, typer.Option("--all", "-a", help="Draw every checkpoint of long branches too.")
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
    svg: Annotated[
        Path | None,
        typer.Option(
            "--svg",
            help="Write the timeline as an SVG picture to this file (what `agentgit serve` "
            "shows) instead of printing the tree.",
            dir_okay=False,
        ),
    ] = None,
    read_only: ReadOnlyOption = False,
) -> None:
    """The session's timeline as a tree of branches and checkpoints (oldest first).

    A long line of checkpoints shows its first and last few and every checkpoint a
    branch, a fork or a tag hangs from; --all shows all of them, --json gives all;
    --svg FILE draws it (one lane per branch, one dot per checkpoint)."""
    if svg is not None and as_json:
        raise CliError("--svg and --json: choose one")
    with open_repo(ctx, db_path(ctx, db), writes=False, read_only=read_only) as repo:
        s = repo.session(session)
        if svg is not None:
            picture = repo.mgr.timeline(s.id).to_svg(collapse=not show_all)
            try:
                svg.write_text(picture, encoding="utf-8")
            except OSError as exc:
                raise CliError(f"cannot write {svg}: {exc.strerror or exc}", EXIT_FAILURE) from exc
            _say(Text.assemble("Wrote the timeline of session ", (s.id, "yellow"), f" to {svg}."))
            return
        histories, tags = repo.timeline(s)
        if as_json:
            _print_json(tree_json(repo, s, histories, tags))
            return
        _console().print(build_tree(repo, s, histories, tags, show_all=show_all))


@app.command()
def diff(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(help="Checkpoint id or unique prefix (the 'before').")],
    b: Annotated[str, typer.Argument(help="Checkpoint id or unique prefix (the 'after').")],
    session: Annotated[
        str | None,
        typer.Option(
            "--session",
            "-s",
            help="Look the checkpoints up in this session's threads; also accept its tags.",
        ),
    ] = None,
    db: DbOption = None,
    read_only: ReadOnlyOption = False,
    as_json: JsonOption = False,
) -> None:
    """What changed between two checkpoints (of any threads)."""
    with open_repo(ctx, db_path(ctx, db), writes=False, read_only=read_only) as repo:
        scope = repo.session(session) if session is not None else None
        # With --session, the checkpoints are looked up in that session's threads (one
        # its branches inherit from a deleted thread included), as the library does.
        result = repo.mgr.diff(
            repo.checkpoint(a, scope),
            repo.checkpoint(b, scope),
            session_id=scope.id if scope is not None else None,
        )
        if as_json:
            _print_json(diff_view(result))
            return
        print_diff(_console(), result)


def print_undo(console: Console, result: DemoResult) -> None:
    """What the demo's rollback did with the tool calls: undone after the fork point,
    kept before it, and the shop's refunds afterwards."""
    undo = result.undo
    if undo is None or result.shop is None:  # pragma: no cover - run_demo always sets them
        return
    for o in undo.outcomes:
        what = "undone" if o.status == "undone" else f"{o.status} ({o.reason or o.error})"
        line = f"  undo  {o.effect.tool_name} (call {o.effect.tool_call_id}): {what}"
        console.print(Text(line, "magenta" if o.status == "undone" else ""), soft_wrap=True)
    for p in result.kept:
        line = f"  kept  {p.effect.tool_name} (call {p.effect.tool_call_id}): before the fork"
        console.print(Text(line), soft_wrap=True)
    refunds = ", ".join(
        f"{rid} {r['order_id']} {r['status']}" for rid, r in result.shop.refunds.items()
    )
    console.print(Text(f"Refunds in the shop now: {refunds or 'none'}\n"), soft_wrap=True)


def print_diff(console: Console, result: CheckpointDiff) -> None:
    """A diff's text, coloured: removed messages red, added green, changed yellow,
    undone effects magenta."""
    styles = {"-": "red", "+": "green", "~": "yellow", "!": "magenta"}
    width = max(console.width, 60)
    for line in result.format(width=width).splitlines():
        marker = line.lstrip()[:1]
        style = styles.get(marker, "") if line.startswith("  ") else "bold"
        # soft_wrap: lines are made to fit; never re-flowed by Rich.
        console.print(Text(line, style=style), soft_wrap=True)


NameOption = Annotated[
    str | None,
    typer.Option(
        "--name", help="A name for the new branch, unique in the session (default: branch-N)."
    ),
]


UndoEffectsOption = Annotated[
    bool,
    typer.Option(
        "--undo-effects",
        help="Also undo the tool calls the current branch made after CHECKPOINT, newest "
        "first, with the handlers named by --handlers.",
    ),
]
DryRunOption = Annotated[
    bool,
    typer.Option("--dry-run", help="With --undo-effects: print the plan and change nothing."),
]
HandlersOption = Annotated[
    str | None,
    typer.Option(
        "--handlers",
        help="MODULE:NAME of a mapping {tool name: handler or (handler, kind)}, imported "
        f"from the current directory or the Python path (default: ${UNDO_HANDLERS_ENV_VAR}).",
        show_default=False,
    ),
]
OnErrorOption = Annotated[
    str | None,
    typer.Option(
        "--on-error",
        help="When a handler fails: stop (leave the older effects for later) or continue. "
        "Default: stop.",
        show_default=False,
    ),
]


@app.command()
def rollback(
    ctx: typer.Context,
    session: SessionArg,
    checkpoint: CheckpointArg,
    name: NameOption = None,
    undo_effects: UndoEffectsOption = False,
    dry_run: DryRunOption = False,
    handlers: HandlersOption = None,
    on_error: OnErrorOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Roll a session back: a new branch starts at CHECKPOINT and becomes current.

    Nothing is lost: the branch that was current keeps its whole history. With
    --undo-effects, the tool calls made on the path being left are undone too (see
    --dry-run for the plan), each at most once.
    """
    if not undo_effects:
        # A user who names handlers means the effects to be undone: a plain rollback
        # would leave them in place and move the session on all the same.
        given = [
            option for option, value in (("--dry-run", dry_run), ("--handlers", handlers)) if value
        ] + (["--on-error"] if on_error is not None else [])
        if given:
            raise CliError(
                f"{' and '.join(given)} go{'es' if len(given) == 1 else ''} with "
                "--undo-effects (a plain rollback undoes no effects)"
            )
    if on_error not in (None, "stop", "continue"):
        raise CliError(f"--on-error must be stop or continue, not {on_error!r}")
    if undo_effects:
        _rollback_undoing(
            ctx, session, checkpoint, name, dry_run, handlers, on_error or "stop", db, as_json
        )
        return
    with open_repo(ctx, db_path(ctx, db), writes=True) as repo:
        s = repo.session(session)
        checkpoint_id = repo.checkpoint(checkpoint, s)
        new = repo.mgr.rollback(s.id, checkpoint_id, name=name)
        if as_json:
            _print_json(branch_json(new, new.thread_id))
            return
        _say_rolled_back(repo, s, checkpoint_id, new)


def _say_rolled_back(repo: Repo, s: ExternalSession, checkpoint_id: str, new: Branch) -> None:
    was = next((b for b in repo.mgr.branches(s.id) if b.thread_id == s.current_thread_id), None)
    _say(
        Text.assemble(
            "Rolled back session ",
            (s.id, "yellow"),
            " to ",
            (repo.abbreviate(checkpoint_id), "yellow"),
            ": new branch ",
            (one_line(new.name or ""), "bold green"),
            " (thread ",
            (new.thread_id, "green"),
            ") is current (was ",
            one_line(was.name or "") if was else s.current_thread_id,
            ").",
        )
    )


def load_handlers(spec: str) -> Mapping[str, Any]:
    """The mapping named by ``MODULE:NAME`` (the current directory is searched first, as
    ``python -m`` does)."""
    import importlib

    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise CliError(f"--handlers takes MODULE:NAME (e.g. myapp.undo:HANDLERS), not {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CliError(f"--handlers: cannot import {module_name!r}: {exc}") from None
    found = getattr(module, attribute, None)
    if not isinstance(found, Mapping):
        raise CliError(
            f"--handlers: {spec} is not a mapping of tool names to undo handlers "
            f"(got {type(found).__name__})"
        )
    from langgraph_agentgit.effects.undo import UndoRegistry

    try:
        UndoRegistry.of(found)
    except (TypeError, ValueError) as exc:
        raise CliError(
            f"--handlers: {spec} must map tool names to undo handlers (callables, or "
            f"(handler, kind) pairs): {exc}"
        ) from None
    return found


def _rollback_undoing(
    ctx: typer.Context,
    session: str,
    checkpoint: str,
    name: str | None,
    dry_run: bool,
    handlers: str | None,
    on_error: str,
    db: str | None,
    as_json: bool,
) -> None:
    spec = handlers or os.environ.get(UNDO_HANDLERS_ENV_VAR) or None
    if spec is None and not dry_run:
        raise CliError(
            "--undo-effects runs your undo handlers: name them with --handlers MODULE:NAME "
            f"(or ${UNDO_HANDLERS_ENV_VAR}); --dry-run shows the plan without them"
        )
    registry = load_handlers(spec) if spec is not None else {}
    with open_repo(ctx, db_path(ctx, db), writes=not dry_run) as repo:
        from langgraph_agentgit import SessionManager
        from langgraph_agentgit.sessions.store import branch_name

        mgr = SessionManager(repo.saver, undo=registry)
        s = repo.session(session)
        checkpoint_id = repo.checkpoint(checkpoint, s)
        plan = mgr.plan_rollback(s.id, checkpoint_id)
        if dry_run:
            # The plan of a rollback the real run would refuse is no plan.
            branch_name(s.id, name, mgr.branches(s.id))
            if as_json:
                _print_json({"plan": [planned_json(p) for p in plan.effects]})
                return
            print_plan(plan.effects, repo.abbreviate, handlers=spec is not None)
            return
        result = mgr.rollback(
            s.id,
            checkpoint_id,
            name=name,
            undo_effects=True,
            on_error="continue" if on_error == "continue" else "stop",
        )
        assert result.branch is not None
        if as_json:
            _print_json(
                {
                    "branch": branch_json(result.branch, result.branch.thread_id),
                    "run_id": result.run_id,
                    "complete": result.complete,
                    "outcomes": [outcome_json(o) for o in result.outcomes],
                }
            )
        else:
            print_plan(plan.effects, repo.abbreviate, handlers=True)
            _say_rolled_back(repo, s, checkpoint_id, result.branch)
            print_outcomes(result)
        if not result.complete:
            raise CliError(
                f"{len(result.failed)} undo handler(s) failed, {len(result.not_run)} effect(s) "
                f"left to undo (undo run {result.run_id}); see the outcomes above",
                EXIT_FAILURE,
            )


def _call_text(effect: Any, width: int = 40) -> str:
    args = ", ".join(f"{k}={v!r}" for k, v in effect.args.items())
    return _cut(one_line(f"{effect.tool_name}({args})"), width)


def planned_json(planned: Any) -> dict[str, Any]:
    effect = planned.effect
    return {
        "effect_id": effect.effect_id,
        "tool": effect.tool_name,
        "tool_call_id": effect.tool_call_id,
        "args": _plain(effect.args),
        "result": _plain(effect.result),
        "checkpoint_id": effect.checkpoint_id,
        "kind": planned.kind,
        "status": planned.status,
        "last_error": planned.last_error,
        "undone_by": planned.undone_by,
    }


def outcome_json(outcome: Any) -> dict[str, Any]:
    return {
        "effect_id": outcome.effect.effect_id,
        "tool": outcome.effect.tool_name,
        "args": _plain(outcome.effect.args),
        "status": outcome.status,
        "reason": outcome.reason,
        "error": outcome.error,
    }


def _plain(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


_PLAN_STYLES = {
    "will_undo": "bold yellow",
    "undone": "green",
    "in_progress": "yellow",
    "irreversible": "red",
    "no_handler": "dim",
    "tool_error": "dim",
}


def print_plan(effects: Sequence[Any], abbreviate: Callable[[str], str], *, handlers: bool) -> None:
    """The effects a rollback abandons, newest first, with what happens to each."""
    console = _console()
    if not effects:
        console.print(Text("No tool calls on the path being left: nothing to undo."))
        return
    table = _table("Effects on the path being left (newest first)")
    table.add_column("#", justify="right", no_wrap=True)
    table.add_column("checkpoint", no_wrap=True)
    table.add_column("call", no_wrap=True)
    table.add_column("kind", no_wrap=True)
    table.add_column("plan", no_wrap=True)
    table.add_column("result")
    for index, planned in enumerate(effects, 1):
        status = planned.status
        if status == "no_handler" and not handlers:
            status = "no_handler (none loaded)"
        table.add_row(
            str(index),
            Text(abbreviate(planned.effect.checkpoint_id), style="yellow"),
            _call_text(planned.effect),
            planned.kind or "",
            Text(status, style=_PLAN_STYLES.get(planned.status, "")),
            _one_line(Text(one_line(str(planned.effect.result)))),
        )
    console.print(table)


_OUTCOME_STYLES = {"undone": "green", "failed": "bold red", "not_run": "yellow"}


def print_outcomes(result: Any) -> None:
    """What the rollback's undo did, effect by effect, and a summary line."""
    console = _console()
    for index, outcome in enumerate(result.outcomes, 1):
        detail = outcome.error or outcome.reason
        console.print(
            Text.assemble(
                f"{index:>3} ",
                (outcome.status, _OUTCOME_STYLES.get(outcome.status, "dim")),
                " ",
                _call_text(outcome.effect),
                (f"  ({one_line(detail)})" if detail else "", "dim"),
            ),
            soft_wrap=True,
        )
    _say(
        Text(
            f"Undone: {len(result.undone)}, failed: {len(result.failed)}, "
            f"not run: {len(result.not_run)}, skipped: {len(result.skipped)} "
            f"(undo run {result.run_id})."
        )
    )


@app.command("resume-undo")
def resume_undo_command(
    ctx: typer.Context,
    session: SessionArg,
    run: Annotated[
        str | None, typer.Option("--run", help="Only this undo run (its id).", show_default=False)
    ] = None,
    rerun_in_doubt: Annotated[
        bool,
        typer.Option(
            "--rerun-in-doubt",
            help="Run again the handlers a process started and never reported back: one "
            "that has exited, or one on another host (only when you know it is gone). A "
            "handler a live process on this host runs is never run again.",
        ),
    ] = False,
    handlers: HandlersOption = None,
    on_error: Annotated[
        str | None, typer.Option("--on-error", help="stop or continue (default: each run's own).")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Continue the session's unfinished undo runs (a handler failed, or a process died
    in the middle of a rollback --undo-effects)."""
    if on_error not in (None, "stop", "continue"):
        raise CliError(f"--on-error must be stop or continue, not {on_error!r}")
    spec = handlers or os.environ.get(UNDO_HANDLERS_ENV_VAR) or None
    if spec is None:
        raise CliError(
            "resume-undo runs your undo handlers: name them with --handlers MODULE:NAME "
            f"(or ${UNDO_HANDLERS_ENV_VAR})"
        )
    registry = load_handlers(spec)
    with open_repo(ctx, db_path(ctx, db), writes=True) as repo:
        from langgraph_agentgit import SessionManager

        mgr = SessionManager(repo.saver, undo=registry)
        s = repo.session(session)
        results = mgr.resume_undo(
            s.id,
            run_id=run,
            rerun_in_doubt=rerun_in_doubt,
            on_error=None if on_error is None else ("stop" if on_error == "stop" else "continue"),
        )
        if as_json:
            _print_json(
                [
                    {
                        "run_id": r.run_id,
                        "complete": r.complete,
                        "outcomes": [outcome_json(o) for o in r.outcomes],
                    }
                    for r in results
                ]
            )
        elif not results:
            _say(Text(f"Session {s.id} has no unfinished undo run."))
        for result in results if not as_json else ():
            print_outcomes(result)
        incomplete = [r for r in results if not r.complete]
        if incomplete:
            raise CliError(
                f"{len(incomplete)} undo run(s) still incomplete: "
                + ", ".join(r.run_id for r in incomplete),
                EXIT_FAILURE,
            )


@app.command()
def undo(
    ctx: typer.Context,
    session: SessionArg,
    name: NameOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Undo the last user turn of the current branch: a new branch starts just before
    it and becomes current. Nothing is lost: the turn stays on the branch it was on."""
    with open_repo(ctx, db_path(ctx, db), writes=True) as repo:
        s = repo.session(session)
        new = repo.mgr.undo_last_turn(s.id, name=name)
        if as_json:
            _print_json(branch_json(new, new.thread_id))
            return
        _say(
            Text.assemble(
                "Undid the last turn of session ",
                (s.id, "yellow"),
                ": new branch ",
                (one_line(new.name or ""), "bold green"),
                " (thread ",
                (new.thread_id, "green"),
                ") continues from ",
                (repo.abbreviate(new.fork_checkpoint_id), "yellow"),
                " and is current.",
            )
        )


@app.command("branch")
def branch_command(
    ctx: typer.Context,
    session: SessionArg,
    checkpoint: CheckpointArg,
    name: NameOption = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start a new branch at CHECKPOINT without switching to it."""
    with open_repo(ctx, db_path(ctx, db), writes=True) as repo:
        s = repo.session(session)
        checkpoint_id = repo.checkpoint(checkpoint, s)
        new = repo.mgr.branch(s.id, checkpoint_id, name=name)
        current = next(
            (b for b in repo.mgr.branches(s.id) if b.thread_id == s.current_thread_id), None
        )
        if as_json:
            _print_json(branch_json(new, s.current_thread_id))
            return
        _say(
            Text.assemble(
                "Created branch ",
                (one_line(new.name or ""), "bold green"),
                " (thread ",
                (new.thread_id, "green"),
                ") at ",
                (repo.abbreviate(checkpoint_id), "yellow"),
                "; the current branch is still ",
                one_line(current.name or "") if current else s.current_thread_id,
                ".",
            )
        )


@app.command()
def checkout(
    ctx: typer.Context,
    session: SessionArg,
    thread: BranchArg,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make another branch of the session the current one."""
    with open_repo(ctx, db_path(ctx, db), writes=True) as repo:
        s = repo.session(session)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", EffectsUndoneWarning)
            switched = repo.mgr.checkout(s.id, repo.branch(s, thread).thread_id)
        for warning in caught:
            if issubclass(warning.category, EffectsUndoneWarning):
                _stderr().print(Text(f"warning: {one_line(str(warning.message))}"))
        if as_json:
            _print_json(branch_json(switched, switched.thread_id))
            return
        _say(
            Text.assemble(
                "Session ",
                (s.id, "yellow"),
                " is now on branch ",
                (one_line(switched.name or ""), "bold green"),
                " (thread ",
                (switched.thread_id, "green"),
                ").",
            )
        )


@app.command()
def tag(
    ctx: typer.Context,
    session: SessionArg,
    checkpoint: CheckpointArg,
    name: Annotated[str, typer.Argument(help="Tag name, unique within the session.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Name a checkpoint of the session, to roll back to it by name later.

    A tag name is one line, and is not only hex digits and '-' (it could be read as a
    checkpoint id prefix)."""
    with open_repo(ctx, db_path(ctx, db), writes=True) as repo:
        s = repo.session(session)
        checkpoint_id = repo.checkpoint(checkpoint, s)
        repo.mgr.tag(s.id, checkpoint_id, name)
        if as_json:
            _print_json({"session_id": s.id, "tag": name, "checkpoint_id": checkpoint_id})
            return
        _say(
            Text.assemble(
                "Tagged ", (checkpoint_id, "yellow"), " as ", (one_line(name), "bold cyan")
            )
        )


@app.command()
def untag(
    ctx: typer.Context,
    session: SessionArg,
    name: Annotated[str, typer.Argument(help="The tag to remove.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Remove a tag (the checkpoint stays)."""
    with open_repo(ctx, db_path(ctx, db), writes=True) as repo:
        s = repo.session(session)
        checkpoint_id = repo.mgr.tags(s.id).get(name)
        repo.mgr.untag(s.id, name)
        if as_json:
            _print_json({"session_id": s.id, "tag": name, "checkpoint_id": checkpoint_id})
            return
        _say(
            Text.assemble(
                "Removed tag ",
                (one_line(name), "bold cyan"),
                " (was ",
                (checkpoint_id or "", "yellow"),
                ").",
            )
        )


@app.command("delete-branch")
def delete_branch(
    ctx: typer.Context,
    session: SessionArg,
    thread: BranchArg,
    yes: YesOption = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete a branch and the checkpoints only it holds. Branches forked from it keep
    working; if it was current, its parent becomes current. Asks first (--yes: don't)."""
    with open_repo(ctx, db_path(ctx, db), writes=True) as repo:
        s = repo.session(session)
        target = repo.branch(s, thread)
        _confirm(
            f"Delete branch {target.name} (thread {target.thread_id}) with its "
            f"{target.checkpoint_count} own checkpoints?",
            yes,
        )
        after = repo.mgr.delete_branch(s.id, target.thread_id)
        if as_json:
            _print_json({"deleted": branch_json(target, None), **session_json(after, "")})
            return
        now_on = next(
            (b for b in repo.mgr.branches(s.id) if b.thread_id == after.current_thread_id), None
        )
        _say(
            Text.assemble(
                "Deleted branch ",
                (one_line(target.name or ""), "bold"),
                f" (thread {target.thread_id}); current branch: ",
                (one_line(now_on.name or "") if now_on else after.current_thread_id, "bold green"),
                ".",
            )
        )


def _set_active(
    ctx: typer.Context, session: str, db: str | None, active: bool, as_json: bool
) -> None:
    with open_repo(ctx, db_path(ctx, db), writes=True) as repo:
        s = repo.session(session)
        changed = repo.mgr.activate(s.id) if active else repo.mgr.deactivate(s.id)
        if as_json:
            _print_json(session_json(changed, _session_preview(repo, changed)))
            return
        _say(
            Text.assemble(
                "Session ",
                (s.id, "yellow"),
                " is ",
                ("active" if active else "inactive", "bold"),
                "." if active else " (hidden by `sessions --active`; its branches still work).",
            )
        )


@app.command()
def deactivate(
    ctx: typer.Context, session: SessionArg, db: DbOption = None, as_json: JsonOption = False
) -> None:
    """Mark a session inactive: `sessions --active` hides it; nothing is deleted."""
    _set_active(ctx, session, db, False, as_json)


@app.command()
def activate(
    ctx: typer.Context, session: SessionArg, db: DbOption = None, as_json: JsonOption = False
) -> None:
    """Mark a session active again (undoes deactivate)."""
    _set_active(ctx, session, db, True, as_json)


@app.command()
def end(
    ctx: typer.Context,
    session: SessionArg,
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why it ended.", callback=_end_reason)
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """End a session (it becomes inactive and stops counting toward a user's session
    limit); nothing is deleted and its branches keep working."""
    with open_repo(ctx, db_path(ctx, db), writes=True) as repo:
        s = repo.session(session)
        ended = repo.mgr.end_session(s.id, reason=reason)
        if as_json:
            _print_json(session_json(ended, _session_preview(repo, ended)))
            return
        _say(
            Text.assemble(
                "Ended session ",
                (s.id, "yellow"),
                (f" ({one_line(reason)})" if reason else ""),
                ".",
            )
        )


@app.command()
def reopen(
    ctx: typer.Context, session: SessionArg, db: DbOption = None, as_json: JsonOption = False
) -> None:
    """Reopen an ended session (undoes end)."""
    with open_repo(ctx, db_path(ctx, db), writes=True) as repo:
        s = repo.session(session)
        reopened = repo.mgr.reopen_session(s.id)
        if as_json:
            _print_json(session_json(reopened, _session_preview(repo, reopened)))
            return
        _say(Text.assemble("Reopened session ", (s.id, "yellow"), "."))


@app.command()
def delete(
    ctx: typer.Context,
    session: SessionArg,
    yes: YesOption = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete a session with all its branches, checkpoints and tags. Asks first (--yes:
    don't)."""
    with open_repo(ctx, db_path(ctx, db), writes=True) as repo:
        s = repo.session(session)
        _confirm(
            f"Delete session {s.id}"
            + (f" ({s.name})" if s.name else "")
            + f" with {len(s.internal_session_ids)} branches and {s.total_checkpoints} "
            "checkpoints?",
            yes,
        )
        repo.mgr.delete_session(s.id)
        if as_json:
            _print_json({"deleted": session_json(s, "")})
            return
        _say(Text.assemble("Deleted session ", (s.id, "yellow"), "."))


@app.command("check")
def check_command(
    ctx: typer.Context,
    repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="First remove what nothing refers to and recompute the counts.",
        ),
    ] = False,
    db: DbOption = None,
    read_only: ReadOnlyOption = False,
    as_json: JsonOption = False,
) -> None:
    """Check the whole database: SQLite's integrity check, every reference resolves, no
    cycles of parent links, counts match their rows, every stored value decodes.

    Damage is listed by kind and ids, and makes the exit status 1. Garbage (rows nothing
    refers to: orphan blobs, writes, threads, branch rows, tags) is listed but is not a
    failure; --repair removes it and recomputes counts, and never touches anything
    still referred to. --json gives the full report.
    """
    path = db_path(ctx, db)
    if isinstance(path, str):
        raise CliError(
            f"`agentgit check` is not available on PostgreSQL yet ({describe(path)}): it "
            "runs SQLite's integrity check; `agentgit copy URL FILE` makes a SQLite copy "
            "it can check",
            EXIT_FAILURE,
        )
    command = "check --repair" if repair else None
    with open_repo(ctx, path, writes=repair, read_only=read_only, command=command) as repo:
        report = repo.mgr.check(repair=repair)
    if as_json:
        _print_json({"database": str(path), **report.to_dict()})
    else:
        print_check(_console(), path, report)
    if not report.ok:
        raise typer.Exit(EXIT_FAILURE)


#: Problems of one kind printed one per line; more are summed up (``--json`` has all).
CHECK_LINES_PER_KIND = 20


def print_check(console: Console, path: Path, report: CheckReport) -> None:
    """A check report as text: what was scanned, what a repair did, every problem (by
    kind, damage first), and a summary line."""
    from langgraph_agentgit.storage.check import KINDS, Problem

    scanned = ", ".join(
        f"{n} {what if n != 1 else what.removesuffix('s')}" for what, n in report.scanned.items()
    )
    console.print(Text.assemble(("Checked ", "bold"), str(path), f": {scanned}."), soft_wrap=True)
    if report.repair is not None:
        for action in report.repair.actions or ["nothing needed repairing"]:
            console.print(Text.assemble(("repaired: ", "bold green"), action), soft_wrap=True)
        for skipped in report.repair.skipped:
            console.print(Text.assemble(("skipped: ", "bold yellow"), skipped), soft_wrap=True)
    grouped: dict[str, list[Problem]] = {}
    for problem in sorted(report.problems, key=lambda p: not p.is_damage):
        grouped.setdefault(problem.kind, []).append(problem)
    for kind, problems in grouped.items():
        style = "bold red" if problems[0].is_damage else "yellow"
        for problem in problems[:CHECK_LINES_PER_KIND]:
            line = Text.assemble((f"{kind}: ", style), problem.message)
            affected = problem.ids.get("affected_checkpoints")
            if affected:
                line.append(f" (spoils {affected} checkpoints)", style="dim")
            console.print(line, soft_wrap=True)
        if len(problems) > CHECK_LINES_PER_KIND:
            console.print(
                Text.assemble(
                    (f"{kind}: ", style),
                    f"… and {len(problems) - CHECK_LINES_PER_KIND} more ({KINDS[kind]}; "
                    "--json lists them all)",
                ),
                soft_wrap=True,
            )
    damage, garbage = len(report.damage), len(report.garbage)
    if not report.problems:
        console.print(Text("No problems found.", style="bold green"))
        return
    summary = Text()
    summary.append(
        f"{damage} problem{'s' if damage != 1 else ''} of damage",
        style="bold red" if damage else "bold green",
    )
    summary.append(f", {garbage} of garbage.")
    if garbage:
        summary.append(" `agentgit check --repair` removes the garbage.")
    if any(p.kind == "count-mismatch" for p in report.damage):
        summary.append(" --repair also recomputes the counts.")
    console.print(summary, soft_wrap=True)


@app.command("copy")
def copy_command(
    ctx: typer.Context,
    source: Annotated[
        str, typer.Argument(help="The database to copy: a SQLite file or a postgresql:// URL.")
    ],
    target: Annotated[
        str,
        typer.Argument(
            help="Where to: a new or empty SQLite file, or a postgresql:// URL whose schema "
            "holds no agentgit data."
        ),
    ],
    verify: Annotated[
        bool,
        typer.Option(
            "--verify/--no-verify",
            help="Afterwards, read every thread and session back from both and compare.",
        ),
    ] = True,
    as_json: JsonOption = False,
) -> None:
    """Copy a whole database into an empty one: SQLite to PostgreSQL, back, or alike.

    Threads, checkpoints, pending writes, stored values, sessions, branches, tags and
    deleted threads are copied as they are, ids included, in one transaction; a target
    that already holds agentgit data is refused untouched. Then both are read back and
    compared, checkpoint by checkpoint (--no-verify skips that).
    """
    from_db, to_db = as_database(source), as_database(target)
    if (ctx.find_root().obj or {}).get("read_only"):
        raise CliError("--read-only: `copy` writes its target")
    check_database(from_db, lock_timeout=lock_timeout_of(ctx))
    check_target(ctx, to_db)
    from langgraph_agentgit.transfer import copy_database

    report = copy_database(source, target, verify=verify, lock_timeout=lock_timeout_of(ctx))
    if as_json:
        _print_json(report.to_dict())
        return
    print_copy(_console(), report)


def print_copy(console: Console, report: CopyReport) -> None:
    """A copy report: where from and to, rows per kind, whether it was verified."""
    console.print(
        Text.assemble(
            ("Copied ", "bold"), report.source, " → ", report.target, f" in {report.seconds:.1f} s."
        ),
        soft_wrap=True,
    )
    table = _table("Rows copied")
    table.add_column("threads", justify="right")
    table.add_column("checkpoints", justify="right")
    table.add_column("writes", justify="right")
    table.add_column("blobs", justify="right")
    table.add_column("sessions", justify="right")
    table.add_column("branches", justify="right")
    table.add_column("tags", justify="right")
    table.add_row(
        *(
            str(n)
            for n in (
                report.threads,
                report.checkpoints,
                report.writes,
                report.blobs,
                report.sessions,
                report.branches,
                report.tags,
            )
        )
    )
    console.print(table)
    if report.verified:
        console.print(
            Text(
                "Verified: every thread's checkpoints, metadata and pending writes and every "
                f"session read back the same ({report.verify_seconds:.1f} s).",
                style="green",
            ),
            soft_wrap=True,
        )
    else:
        console.print(Text("Not verified (--no-verify).", style="yellow"))


# --- export, import, import-langgraph ------------------------------------------------------


@app.command("export")
def export_command(
    ctx: typer.Context,
    sessions: Annotated[
        list[str] | None,
        typer.Argument(help="Sessions to export (ids or unique prefixes); default: all."),
    ] = None,
    output: Annotated[
        str,
        typer.Option(
            "--output",
            "-o",
            help="The file to write (replaced when complete; gzip-compressed when it ends "
            "in .gz); - for stdout.",
        ),
    ] = "-",
    user: Annotated[
        str | None,
        typer.Option("--user", help="Only the sessions of this user id.", callback=_user_id),
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Export sessions to a JSON Lines file (docs/export-format.md).

    Each session goes with its branches, tags, every checkpoint and pending write of its
    threads and their values, each value once. `agentgit import FILE` reads it back into
    any agentgit database, SQLite or PostgreSQL.
    """
    with open_repo(ctx, db_path(ctx, db), writes=False) as repo:
        ids = [repo.session(prefix).id for prefix in sessions] if sessions else None
        if output == "-":
            report = repo.mgr.export_sessions(sys.stdout, session_ids=ids, user_id=user)
        else:
            if os.path.isdir(output):
                raise CliError(f"--output {output}: is a directory; give a file name")
            folder = os.path.dirname(output) or "."
            if not os.path.isdir(folder):
                raise CliError(f"--output {output}: there is no directory {folder}")
            partial = f"{output}.partial"
            try:
                with (
                    gzip.open(partial, "wt", encoding="utf-8", newline="\n")
                    if output.endswith(".gz")
                    else open(partial, "w", encoding="utf-8", newline="\n")
                ) as out:
                    report = repo.mgr.export_sessions(out, session_ids=ids, user_id=user)
                os.replace(partial, output)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(partial)
                raise
    if as_json:
        _print_json(report.to_dict())
    elif output != "-":
        _say(
            Text(
                f"Exported {report.sessions} session(s), {report.branches} branch(es), "
                f"{report.checkpoints} checkpoint(s), {report.writes} pending write(s) and "
                f"{report.values} value(s) to {output}."
            )
        )


@app.command("import")
def import_command(
    ctx: typer.Context,
    file: Annotated[
        str,
        typer.Argument(help="An export written by `agentgit export` (or gzipped); - for stdin."),
    ],
    new_ids: Annotated[
        bool,
        typer.Option(
            "--new-ids",
            help="Give sessions and threads that already exist here new ids (default: refuse).",
        ),
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Import sessions from an export file, all or nothing.

    The whole file is checked first (format, every record, every reference, every value
    decoded without running anything); a problem is reported with its line and field and
    nothing is written. The database is created if it does not exist.
    """
    path = db_path(ctx, db)
    check_target(ctx, path)
    on_conflict: Literal["error", "new_ids"] = "new_ids" if new_ids else "error"
    # Opened before the database, so that a file that cannot be read creates nothing.
    if file == "-":
        # Standard input may be gzipped too: its first two bytes say so, and are then
        # read again as the start of the stream.
        head = sys.stdin.buffer.read(2)
        source: IO[bytes] = io.BufferedReader(_Rewound(head, sys.stdin.buffer))
        if head == b"\x1f\x8b":
            source = cast("IO[bytes]", gzip.open(source, "rb"))  # noqa: SIM115
    else:
        try:
            with open(file, "rb") as probe:
                compressed = probe.read(2) == b"\x1f\x8b"
            source = cast(
                "IO[bytes]",
                gzip.open(file, "rb") if compressed else open(file, "rb"),  # noqa: SIM115
            )
        except OSError as exc:
            raise CliError(f"cannot read {file}: {exc.strerror}") from None
    # A database this import creates goes again when the import fails (it is all or
    # nothing): a refused file leaves no empty database behind.
    created = isinstance(path, Path) and not (path.exists() or path.is_symlink())
    try:
        owned = contextlib.nullcontext() if file == "-" else source  # stdin stays open
        with open_repo(ctx, path, writes=True, create=True) as repo, owned:
            try:
                report = repo.mgr.import_sessions(source, on_conflict=on_conflict)
            except (OSError, EOFError, zlib.error) as exc:  # a damaged gzip stream
                raise CliError(f"cannot read {file}: {exc}") from None
    except BaseException:
        if created and isinstance(path, Path):
            for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
                leftover.unlink(missing_ok=True)
        raise
    if as_json:
        _print_json(report.to_dict())
        return
    _say(
        Text(
            f"Imported {report.sessions} session(s), {report.branches} branch(es), "
            f"{report.tags} tag(s), {report.checkpoints} checkpoint(s) and {report.writes} "
            f"pending write(s)"
            + (
                f"; {len(report.renamed_sessions)} session(s) and "
                f"{len(report.renamed_threads)} thread(s) got new ids."
                if report.renamed_sessions or report.renamed_threads
                else "."
            )
        )
    )


class _Rewound(io.RawIOBase):
    """``head`` (bytes already read from ``rest``), then the rest of ``rest``."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@app.command("import-langgraph")
def import_langgraph_command(
    ctx: typer.Context,
    source: Annotated[
        str,
        typer.Argument(
            help="A LangGraph SqliteSaver file, or a postgresql:// URL of a PostgresSaver "
            "schema (only read)."
        ),
    ],
    as_sessions: Annotated[
        bool,
        typer.Option("--sessions", help="Make each imported thread the first of a new session."),
    ] = False,
    user: Annotated[
        str | None, typer.Option("--user", help="The user id of those sessions.", callback=_user_id)
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Bring a LangGraph SqliteSaver or PostgresSaver database into this one.

    Every thread, checkpoint (subgraph namespaces too) and pending write is copied, in
    one transaction, so graphs resume where they were; the source is opened read-only.
    Prints the size of the source and of this database before and after.
    """
    from langgraph_agentgit.langgraph_import import NotALangGraphDatabaseError, import_langgraph

    path = db_path(ctx, db)
    if (ctx.find_root().obj or {}).get("read_only"):
        raise CliError("--read-only: `import-langgraph` writes into the database")
    check_target(ctx, path)
    try:
        report = import_langgraph(
            source,
            str(path),
            sessions=as_sessions,
            user_id=user,
            lock_timeout=lock_timeout_of(ctx),
        )
    except (FileNotFoundError, NotALangGraphDatabaseError) as exc:
        raise CliError(str(exc)) from None
    if as_json:
        _print_json(report.to_dict())
        return
    _say(
        Text(
            f"Imported {report.threads} thread(s), {report.checkpoints} checkpoint(s) and "
            f"{report.writes} pending write(s) from {report.source} in {report.seconds:.1f} s"
            + (f"; {len(report.session_ids)} session(s) made." if report.session_ids else ".")
        )
    )
    _say(
        Text(
            f"Size: source {_bytes(report.source_bytes)}; {report.target} "
            f"{_bytes(report.target_bytes_before)} before, "
            f"{_bytes(report.target_bytes_after)} after."
        )
    )


def _bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{n} B"  # pragma: no cover


@app.command("du")
def du_command(
    ctx: typer.Context,
    session: Annotated[
        str | None, typer.Argument(help="Only this session (id or unique prefix).")
    ] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Where the bytes go: per session (and its branches and channels), checkpoint rows
    and stored values, a value several sessions reach counted once, as shared; and the
    database's totals."""
    with open_repo(ctx, db_path(ctx, db), writes=False) as repo:
        session_id = repo.session(session).id if session is not None else None
        report = repo.mgr.storage(session_id)
    if as_json:
        _print_json(report.to_dict())
        return
    console = _console()
    table = _table("Sessions")
    table.add_column("session")
    table.add_column("name")
    table.add_column("checkpoints", justify="right")
    table.add_column("rows", justify="right")
    table.add_column("own values", justify="right")
    table.add_column("shared values", justify="right")
    for s in report.sessions:
        table.add_row(
            s.session_id[:MIN_ABBREV],
            _name(s.name),
            str(s.checkpoints),
            _bytes(s.row_bytes),
            _bytes(s.own_value_bytes),
            _bytes(s.shared_value_bytes),
        )
    console.print(table)
    if session_id is not None and report.sessions:
        s = report.sessions[0]
        branches = _table("Branches")
        branches.add_column("thread")
        branches.add_column("checkpoints", justify="right")
        branches.add_column("rows", justify="right")
        branches.add_column("own values", justify="right")
        for b in s.branches:
            branches.add_row(
                b.thread_id, str(b.checkpoints), _bytes(b.row_bytes), _bytes(b.own_value_bytes)
            )
        console.print(branches)
        channels = _table("Channels")
        channels.add_column("channel")
        channels.add_column("values", justify="right")
        for channel, size in s.channels.items():
            channels.add_row(one_line(channel), _bytes(size))
        console.print(channels)
    _say(
        Text(
            f"Database: {_bytes(report.database_bytes)} in all; checkpoint rows "
            f"{_bytes(report.row_bytes)}, {report.values} values {_bytes(report.value_bytes)} "
            f"(shared by several sessions {_bytes(report.shared_value_bytes)}, in no session "
            f"{_bytes(report.unattributed_value_bytes)}); the rest is indexes and free space."
        )
    )


@app.command("prune")
def prune_command(
    ctx: typer.Context,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--older-than",
            help="Delete sessions inactive for longer than this: 90d, 12h, 30m, 2w.",
        ),
    ] = None,
    keep_last: Annotated[
        int | None,
        typer.Option(
            "--keep-last", help="In the other sessions, keep the newest N checkpoints per branch."
        ),
    ] = None,
    user: Annotated[
        str | None, typer.Option("--user", help="Only this user's sessions.", callback=_user_id)
    ] = None,
    keep_tagged: Annotated[
        bool,
        typer.Option(
            "--keep-tagged/--drop-tagged",
            help="Keep tagged checkpoints and sessions with tags (default), or not.",
        ),
    ] = True,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Say what would go and the bytes freed; change nothing."),
    ] = False,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Remove old sessions and old checkpoints: never what a live branch inherits, a
    branch head, or a tagged checkpoint (unless --drop-tagged).

    Every checkpoint that stays reads back as before. The file keeps its size until
    `agentgit vacuum`.
    """
    from datetime import timedelta

    from langgraph_agentgit.retention import parse_duration

    age: timedelta | None = None
    if older_than is not None:
        try:
            age = parse_duration(older_than)
        except ValueError as exc:
            raise CliError(f"--older-than: {exc}") from None
    if older_than is None and keep_last is None:
        raise CliError("give --older-than, --keep-last or both")
    if keep_last is not None and keep_last < 1:
        raise CliError(f"--keep-last must be at least 1 (a branch keeps its head), not {keep_last}")
    with open_repo(ctx, db_path(ctx, db), writes=True) as repo:
        report = repo.mgr.prune_sessions(
            older_than=age,
            keep_last=keep_last,
            user_id=user,
            keep_tagged=keep_tagged,
            dry_run=dry_run,
        )
    if as_json:
        _print_json(report.to_dict())
        return
    if report.sessions:
        table = _table("Would prune" if dry_run else "Pruned")
        table.add_column("session")
        table.add_column("name")
        table.add_column("what")
        table.add_column("checkpoints", justify="right")
        for s in report.sessions:
            what = "deleted" if s.deleted else "trimmed"
            if s.tags_removed:
                what += f", tags {', '.join(s.tags_removed)} dropped"
            table.add_row(
                s.session_id[:MIN_ABBREV], _name(s.name), one_line(what), str(s.checkpoints_removed)
            )
        _console().print(table)
    _say(
        Text(
            f"{'Would remove' if dry_run else 'Removed'} {report.sessions_deleted} session(s) "
            f"and {report.checkpoints_removed} checkpoint(s) in all, {report.rows_deleted} "
            f"stored row(s): {_bytes(report.bytes_freed)} "
            + ("would be freed." if dry_run else "freed (`agentgit vacuum` shrinks the file).")
        )
    )
    if report.kept_tagged:
        _say(
            Text(
                f"Kept {len(report.kept_tagged)} old session(s) because they have tags "
                "(--drop-tagged removes them)."
            )
        )


@app.command("vacuum")
def vacuum_command(ctx: typer.Context, db: DbOption = None, as_json: JsonOption = False) -> None:
    """Give back the space deletes and prunes freed: SQLite VACUUM (the file shrinks),
    PostgreSQL VACUUM of the agentgit tables. Prints the size before and after."""
    from langgraph_agentgit.retention import vacuum

    with open_repo(ctx, db_path(ctx, db), writes=True) as repo:
        report = vacuum(repo.saver)
    if as_json:
        _print_json(report.to_dict())
        return
    _say(
        Text(
            f"Vacuumed: {_bytes(report.bytes_before)} before, {_bytes(report.bytes_after)} "
            f"after ({_bytes(max(report.bytes_before - report.bytes_after, 0))} given back)."
        )
    )


DEFAULT_SERVE_HOST = "127.0.0.1"
DEFAULT_SERVE_PORT = 8765


@app.command("serve")
def serve_command(
    ctx: typer.Context,
    db: DbOption = None,
    host: Annotated[
        str,
        typer.Option(help="Address to listen on; any but loopback needs an access token."),
    ] = DEFAULT_SERVE_HOST,
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = (
        DEFAULT_SERVE_PORT
    ),
    read_only: Annotated[
        bool,
        typer.Option("--read-only", help="Only look: no tag, branch, rollback or checkout."),
    ] = False,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            help="Access token every request must carry (default: none on loopback; "
            "generated and printed for any other --host).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """A web viewer of the database: sessions, branch timelines, checkpoints, diffs and
    a JSON API under /api/, at http://HOST:PORT/ until Ctrl-C.

    Tag, branch, rollback and checkout are offered (each asks for confirmation) unless
    --read-only, or where the database cannot be written."""
    import secrets
    import socket

    from langgraph_agentgit.web.security import Guard, allowed_hosts, is_loopback

    try:
        import uvicorn
    except ImportError as exc:  # pragma: no cover - a main dependency
        raise CliError(f"agentgit serve needs uvicorn ({exc})", EXIT_FAILURE) from exc
    if token is not None and len(token) < 8:
        raise CliError("--token must be at least 8 characters")
    if token is None and not is_loopback(host):
        token = secrets.token_urlsafe(24)
    root = ctx.find_root().obj or {}
    asked_read_only = read_only or bool(root.get("read_only"))
    path = db_path(ctx, db)
    with open_repo(ctx, path, writes=False, read_only=asked_read_only, command="serve") as repo:
        # Fail now, with a clear line, rather than from inside uvicorn: an address that
        # does not resolve is bad input, a port taken or forbidden a failure.
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
        family, _, _, _, address = infos[0]
        try:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind(address)
        except OSError as exc:
            raise CliError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}", EXIT_FAILURE
            ) from exc
        access = getattr(repo.saver, "access", None)
        serving_read_only = asked_read_only or bool(getattr(access, "read_only", False))
        from langgraph_agentgit.web import create_app

        guard = Guard(hosts=allowed_hosts(host, port), token=token)
        web_app = create_app(
            repo.saver,
            repo.mgr,
            guard=guard,
            read_only=serving_read_only,
            database=describe(path),
        )
        shown = f"[{host}]" if ":" in host else host
        url = f"http://{shown}:{port}/"
        console = _console()
        console.print(
            Text(f"agentgit serve: {describe(path)} at {url}", style="bold"), soft_wrap=True
        )
        if token is not None:
            # Encoded: a token with "+", "#" or "&" must reach the server as typed.
            link = f"{url}?{urlencode({'token': token})}"
            console.print(Text(f"open {link}", style="yellow"), soft_wrap=True)
        if serving_read_only:
            why = "as asked" if asked_read_only else "the database cannot be written"
            console.print(Text(f"read-only ({why}): no actions are offered"), soft_wrap=True)
        console.print(Text("Ctrl-C stops it.", style="dim"), soft_wrap=True)
        config = uvicorn.Config(
            web_app, host=host, port=port, log_level="warning", lifespan="off", access_log=False
        )
        uvicorn.Server(config).run()
