"""The ``agentgit`` command: look at and steer the sessions, branches and checkpoints of a
langgraph-agentgit database from the terminal.

A thin layer over :class:`~langgraph_agentgit.SessionManager` (every change goes through
it), plus what only a terminal needs: the database's location, git-like id prefixes,
tables and trees, and ``--json`` for scripts. Also runs as ``python -m langgraph_agentgit``.

Exit status: 0 on success, 2 for bad input (a missing database, an unknown or ambiguous
id, a checkpoint that is not in the session, a bad option), 1 for any other failure
(a database another process keeps locked, a write to a read-only location, damage;
``check`` exits 1 when it finds damage). Errors are one line on stderr, never a traceback
(set ``AGENTGIT_DEBUG=1`` to get one).

Read commands (``sessions``, ``show``, ``log``, ``tree``, ``diff``, ``check``) open the
database read-only by themselves where it cannot be written (or with ``--read-only``).
Everything printed from the database goes through one console that replaces control
characters (an escape sequence in a message must not reach the terminal).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.base import CheckpointTuple
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.segment import Segment
from rich.style import Style
from rich.table import Table
from rich.text import Text as RichText
from rich.tree import Tree
from typer.core import TyperGroup

from langgraph_agentgit import (
    AgentGitError,
    AgentGitSaver,
    Branch,
    BranchNotFoundError,
    CheckpointDiff,
    CheckpointNotFoundError,
    DatabaseLockedError,
    ExternalSession,
    ReadOnlyDatabaseError,
    SessionManager,
    SessionNotFoundError,
    TagNotFoundError,
)
from langgraph_agentgit.agents import message_preview
from langgraph_agentgit.storage.check import KINDS, CheckReport, Problem
from langgraph_agentgit.storage.connection import (
    DEFAULT_LOCK_TIMEOUT,
    SQLITE_CANTOPEN,
    SQLITE_CORRUPT,
    SQLITE_NOTADB,
    error_code,
    is_agentgit_database,
    location_writable,
)

DEFAULT_DB = "agentgit.db"
DB_ENV_VAR = "AGENTGIT_DB"
DEBUG_ENV_VAR = "AGENTGIT_DEBUG"
LOCK_TIMEOUT_ENV_VAR = "AGENTGIT_LOCK_TIMEOUT"
#: The commands that only read, and so also work on a database that cannot be written.
READ_COMMANDS = ("sessions", "show", "log", "tree", "diff", "check")
#: Shortest abbreviation shown for an id; longer where needed to stay unique, like git.
MIN_ABBREV = 8
PREVIEW_WIDTH = 60

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
# escape sequences that set the title, clear the screen, rewrite the clipboard...).
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


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


class Text(RichText):
    """Rich's ``Text`` with :func:`clean` applied to every string put into it, so that
    tables and trees measure and lay out the text as it will be shown. Every ``Text`` in
    this module is one of these (the name shadows Rich's on purpose)."""

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
    """A Rich console that cleans (:func:`clean`) the text of everything it renders.

    Every line the CLI prints goes through one of these, so text from the database (an
    LLM's message, a tool result, a tag, an id) never writes escape sequences to the
    terminal, whichever table, tree or panel shows it. Text built in this module is
    clean already (see :class:`Text`); this catches whatever else is printed (a markup
    string, a renderable of Rich's). Rich's own styling is applied after this, from
    segment styles, and is unaffected.
    """

    def render(self, renderable: Any, options: Any = None) -> Iterator[Segment]:
        for segment in super().render(renderable, options):
            if segment.control is None and _CONTROL.search(segment.text):
                yield Segment(clean(segment.text), segment.style)
            else:
                yield segment


def _json_text(data: Any) -> str:
    # json.dumps escapes C0 controls itself; DEL and C1 controls it leaves raw.
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    return re.sub(r"[\x7f-\x9f]", lambda m: f"\\u{ord(m.group()):04x}", text)


def _fail(message: str, exit_code: int) -> NoReturn:
    SafeConsole(stderr=True, highlight=False, soft_wrap=True).print(
        Text("error: ", style="bold red") + Text(message)
    )
    raise typer.Exit(exit_code)


class _AgentGitGroup(TyperGroup):
    """Turns every exception a command raises into a message and an exit status.

    Done here rather than in :func:`main` so that Typer's test runner, which invokes the
    app directly, sees exactly what a user of the console script sees.
    """

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except CliError as exc:
            _fail(str(exc), exc.exit_code)
        except DatabaseLockedError as exc:
            _fail(f"{exc} (--lock-timeout SECONDS waits longer)", EXIT_FAILURE)
        except AgentGitError as exc:
            bad_input = isinstance(exc, _BAD_INPUT_ERRORS)
            _fail(str(exc), EXIT_BAD_INPUT if bad_input else EXIT_FAILURE)
        except sqlite3.Error as exc:
            _fail(f"database error: {exc}", EXIT_FAILURE)
        except Exception as exc:
            if os.environ.get(DEBUG_ENV_VAR):
                raise
            _fail(f"unexpected {type(exc).__name__}: {exc}", EXIT_FAILURE)


app = typer.Typer(
    name="agentgit",
    cls=_AgentGitGroup,
    help=(
        "Version control for LangGraph agents: list sessions, read their branch timelines, "
        "diff checkpoints, roll back, branch, tag.\n\n"
        f"The database is --db PATH, else ${DB_ENV_VAR}, else ./{DEFAULT_DB}. "
        "Session, thread and checkpoint ids may be shortened to any unique prefix."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help=f"SQLite database (default: ${DB_ENV_VAR}, else ./{DEFAULT_DB}).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
SessionArg = Annotated[str, typer.Argument(help="Session id or a unique prefix of it.")]
CheckpointArg = Annotated[
    str, typer.Argument(help="Checkpoint id, a unique prefix of it, or a tag of the session.")
]


ReadOnlyOption = Annotated[
    bool,
    typer.Option(
        "--read-only",
        help="Open the database read-only (automatic where it cannot be written).",
    ),
]


@app.callback()
def _root(
    ctx: typer.Context,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            envvar=DB_ENV_VAR,
            help=f"SQLite database (default: ./{DEFAULT_DB}).",
            show_default=False,
        ),
    ] = None,
    lock_timeout: Annotated[
        float,
        typer.Option(
            "--lock-timeout",
            envvar=LOCK_TIMEOUT_ENV_VAR,
            min=0,
            help="Seconds to wait, in all, for another process's lock on the database.",
        ),
    ] = DEFAULT_LOCK_TIMEOUT,
    read_only: ReadOnlyOption = False,
) -> None:
    """Version control for LangGraph agents."""
    ctx.obj = {"db": db, "lock_timeout": lock_timeout, "read_only": read_only}


def main() -> None:
    """Entry point of the ``agentgit`` console script and ``python -m langgraph_agentgit``."""
    app(prog_name="agentgit")


# --- the database --------------------------------------------------------------------------


def db_path(ctx: typer.Context, db: str | None) -> Path:
    """``--db`` after the command, else ``--db`` before it or ``$AGENTGIT_DB``, else default."""
    root = ctx.find_root().obj or {}
    return Path(db or root.get("db") or DEFAULT_DB)


def lock_timeout_of(ctx: typer.Context) -> float:
    """``--lock-timeout`` (or ``$AGENTGIT_LOCK_TIMEOUT``): seconds to wait for a lock."""
    root = ctx.find_root().obj or {}
    return float(root.get("lock_timeout", DEFAULT_LOCK_TIMEOUT))


class LockNotice:
    """Tells the user, once and on stderr, that a command is waiting for another process's
    lock on the database (called by the saver after about a second of waiting)."""

    def __init__(self, path: Path, lock_timeout: float) -> None:
        self.path = path
        self.lock_timeout = lock_timeout
        self.told = False

    def __call__(self) -> None:
        if self.told:
            return
        self.told = True
        SafeConsole(stderr=True, highlight=False, soft_wrap=True).print(
            Text(
                f"waiting for another process to release its lock on {self.path} "
                f"(up to {self.lock_timeout:g} s; --lock-timeout changes it)…",
                style="yellow",
            )
        )


def check_database(
    path: Path,
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
    """
    if not path.exists():
        raise CliError(
            f"no database at {path} (pass --db PATH or set ${DB_ENV_VAR}; "
            f"`agentgit demo --db {path}` creates one)"
        )
    if not path.is_file():
        raise CliError(f"{path} is not a file")
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

    path: Path
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
        """A branch of ``session`` by thread id, unique thread id prefix, or branch name."""
        branches = self.mgr.branches(session.id)
        by_name = [b for b in branches if b.name and b.name == ref]
        if not any(b.thread_id == ref for b in branches) and len(by_name) == 1:
            return by_name[0]
        thread_id = resolve_prefix(
            ref, [b.thread_id for b in branches], f"thread of session {session.id}"
        )
        return next(b for b in branches if b.thread_id == thread_id)

    def checkpoint(self, ref: str, session: ExternalSession | None = None) -> str:
        """A checkpoint id from a tag of ``session`` (tags win, as in git), a full id, or a
        unique prefix of one of the database's checkpoint ids."""
        if session is not None:
            tags = self.mgr.tags(session.id)
            if ref in tags:
                return tags[ref]
        return resolve_prefix(ref, self.checkpoint_ids(), "checkpoint")

    # --- reading -----------------------------------------------------------------------------

    def abbreviate(self, checkpoint_id: str | None) -> str:
        """The shortest unique prefix of a checkpoint id (at least :data:`MIN_ABBREV`)."""
        if checkpoint_id is None:
            return ""
        if self._abbreviations is None:
            self._abbreviations = abbreviations(self.checkpoint_ids())
        return self._abbreviations.get(checkpoint_id, checkpoint_id)

    def history(self, session: ExternalSession) -> SessionHistory:
        """Every branch of ``session`` with the checkpoints it wrote itself."""
        branches = self.mgr.branches(session.id)
        own: dict[str, list[CheckpointTuple]] = {}
        for branch in branches:
            mine: list[CheckpointTuple] = []
            # Newest first; a branch's own checkpoints stop at the one it was forked at.
            for item in self.mgr.checkpoints(session.id, thread_id=branch.thread_id):
                if item.checkpoint["id"] == branch.fork_checkpoint_id:
                    break
                mine.append(item)
            own[branch.thread_id] = mine
        tags: dict[str, list[str]] = {}
        for name, checkpoint_id in sorted(self.mgr.tags(session.id).items()):
            tags.setdefault(checkpoint_id, []).append(name)
        return SessionHistory(session=session, branches=branches, own=own, tags=tags)


@dataclass
class SessionHistory:
    """A session's branches, each branch's own checkpoints (newest first) and its tags."""

    session: ExternalSession
    branches: list[Branch]
    own: dict[str, list[CheckpointTuple]]
    tags: dict[str, list[str]]

    def owner(self) -> dict[str, str]:
        """Checkpoint id -> the thread that wrote it."""
        return {
            item.checkpoint["id"]: thread_id
            for thread_id, items in self.own.items()
            for item in items
        }


@contextmanager
def open_repo(
    ctx: typer.Context,
    path: Path,
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
    back to read-only when SQLite finds the file cannot be written. A command that
    ``writes`` fails at once, with exit status 1, where nothing can be written. Waits
    for another process's lock last ``--lock-timeout`` in all and are announced on
    stderr after a second.
    """
    root = ctx.find_root().obj or {}
    timeout = lock_timeout_of(ctx)
    command = command or ctx.info_name or "this command"
    notice = LockNotice(path, timeout)
    asked_read_only = read_only or bool(root.get("read_only"))
    if writes and asked_read_only:
        raise CliError(f"--read-only: `{command}` changes the database")
    if not create:
        check_database(path, lock_timeout=timeout, on_lock_wait=notice)
    writable = location_writable(str(path))
    if writes and not writable:
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


def resolve_prefix(prefix: str, candidates: Iterable[str], kind: str) -> str:
    """The one candidate equal to ``prefix``, else the one that starts with it.

    Raises :class:`CliError` (exit status 2) naming the matches when there are several,
    or saying so when there is none.
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
        raise CliError(f"unknown {kind} {prefix!r}")
    shown = ", ".join(sorted(matches)[:5]) + (", …" if len(matches) > 5 else "")
    raise CliError(
        f"ambiguous {kind} prefix {prefix!r}: {len(matches)} match ({shown}); type more characters"
    )


def abbreviations(ids: Sequence[str], minimum: int = MIN_ABBREV) -> dict[str, str]:
    """Each id cut to one common length at which no two ids in ``ids`` look the same.

    Like git's abbreviated hashes, but one length for all so that listings line up; it
    is at least ``minimum`` and grows as ids start to share longer prefixes (LangGraph's
    checkpoint ids begin with a timestamp, so ids written close together share a lot).
    """
    ordered = sorted(set(ids))
    length = minimum
    for before, after in pairwise(ordered):
        shared = 0
        for x, y in zip(before, after, strict=False):
            if x != y:
                break
            shared += 1
        length = max(length, shared + 1)
    return {value: value[:length] for value in ordered}


# --- formatting ----------------------------------------------------------------------------


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    return str(value)


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


def _last_message(values: Mapping[str, Any]) -> BaseMessage | None:
    messages = values.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[-1], BaseMessage):
        return messages[-1]
    return None


def _describe_input(value: Any, width: int) -> str:
    # An input checkpoint holds the graph's input, not yet merged into the state: in the
    # "__start__" channel, often as ("user", "text") tuples rather than messages.
    if isinstance(value, Mapping) and isinstance(value.get("messages"), list | tuple):
        messages = value["messages"]
        if messages:
            last = messages[-1]
            if isinstance(last, BaseMessage):
                return message_preview(last, width)
            if isinstance(last, tuple | list) and len(last) == 2:
                return _cut(f"{last[0]}: {' '.join(str(last[1]).split())}", width)
            if isinstance(last, str):
                return _cut(f"user: {last}", width)
    if value is None:
        return ""
    return _cut(f"input: {value}", width)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def checkpoint_preview(item: CheckpointTuple, width: int = PREVIEW_WIDTH) -> str:
    """One line for a checkpoint: the input it received, or the state's last message."""
    values = item.checkpoint.get("channel_values", {})
    if item.metadata and item.metadata.get("source") == "input" and "__start__" in values:
        return _describe_input(values["__start__"], width)
    message = _last_message(values)
    if message is not None:
        return message_preview(message, width)
    shown = {k: v for k, v in values.items() if not k.startswith(("__", "branch:"))}
    return _cut(", ".join(f"{k}={v!r}" for k, v in shown.items()), width)


def nodes_run(item: CheckpointTuple, parent: CheckpointTuple | None) -> list[str]:
    """The graph nodes whose work produced ``item``: those whose ``versions_seen`` moved
    since ``parent``. LangGraph 1.x no longer records this in the metadata."""
    if item.metadata and item.metadata.get("source") == "input":
        return []
    seen = item.checkpoint.get("versions_seen", {})
    before = parent.checkpoint.get("versions_seen", {}) if parent is not None else {}
    return [
        node
        for node, versions in seen.items()
        if versions != before.get(node) and (node == "__start__" or not node.startswith("__"))
    ]


def _parent_id(item: CheckpointTuple) -> str | None:
    if item.parent_config is None:
        return None
    value = item.parent_config["configurable"].get("checkpoint_id")
    return str(value) if value is not None else None


def _session_preview(repo: Repo, session: ExternalSession) -> str:
    latest = repo.saver.get_tuple(repo.mgr.config(session.id))
    return checkpoint_preview(latest) if latest is not None else ""


def session_json(session: ExternalSession, last_message: str) -> dict[str, Any]:
    """The stable JSON shape of a session."""
    return {
        "id": session.id,
        "user_id": session.user_id,
        "name": session.name,
        "created_at": _iso(session.created_at),
        "updated_at": _iso(session.updated_at),
        "is_active": session.is_active,
        "metadata": session.metadata,
        "current_thread_id": session.current_thread_id,
        "thread_ids": list(session.internal_session_ids),
        "branch_count": session.branch_count,
        "total_checkpoints": session.total_checkpoints,
        "last_message": last_message,
    }


def branch_json(branch: Branch, current_thread_id: str | None) -> dict[str, Any]:
    """The stable JSON shape of a branch."""
    return {
        "thread_id": branch.thread_id,
        "session_id": branch.session_id,
        "name": branch.name,
        "parent_thread_id": branch.parent_thread_id,
        "fork_checkpoint_id": branch.fork_checkpoint_id,
        "created_at": _iso(branch.created_at),
        "checkpoint_count": branch.checkpoint_count,
        "is_current": branch.thread_id == current_thread_id,
    }


def checkpoint_json(
    item: CheckpointTuple,
    parent: CheckpointTuple | None,
    *,
    thread_id: str | None,
    tags: Sequence[str],
) -> dict[str, Any]:
    """The stable JSON shape of a checkpoint in a listing. ``thread_id`` is the session
    branch that wrote it (``None`` when that thread has been deleted)."""
    metadata = item.metadata or {}
    return {
        "checkpoint_id": item.checkpoint["id"],
        "parent_checkpoint_id": _parent_id(item),
        "thread_id": thread_id,
        "step": metadata.get("step"),
        "source": metadata.get("source"),
        "nodes": nodes_run(item, parent),
        "created_at": item.checkpoint.get("ts"),
        "tags": list(tags),
        "message": checkpoint_preview(item, width=200),
    }


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


class _PlainTable(Table):
    """A table whose string cells are plain text: a name or id from the database that
    looks like Rich markup (``[red]``, ``[/]``) is shown as typed, never interpreted."""

    def add_row(self, *renderables: Any, **kwargs: Any) -> None:
        super().add_row(*(Text(r) if isinstance(r, str) else r for r in renderables), **kwargs)


def _table(title: str) -> Table:
    # Light borders: the tables are meant to be read in 80 columns.
    return _PlainTable(
        title=title, title_justify="left", box=box.SIMPLE_HEAD, title_style="bold", pad_edge=False
    )


def _console() -> Console:
    # Made per command so that output goes to whatever sys.stdout is at the time.
    return SafeConsole(highlight=False)


def _branch_label(branch: Branch, index: int) -> str:
    # The same names as Timeline.label: the name, else "main" / "branch-<n>".
    return branch.name or ("main" if branch.fork_checkpoint_id is None else f"branch-{index}")


# --- commands ------------------------------------------------------------------------------


@app.command()
def demo(
    ctx: typer.Context,
    db: DbOption = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Delete the database first, if it exists.")
    ] = False,
) -> None:
    """Run a tool-using agent, roll it back, continue both timelines, show the result.

    Needs no API key and no network: the agent's model is a deterministic fake that calls
    real tools. Each run adds a new session to the database (creating it if needed).
    """
    from langgraph_agentgit import demo as scenario  # the agent stack is only needed here

    path = db_path(ctx, db)
    if fresh:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    elif path.exists():
        check_database(path, lock_timeout=lock_timeout_of(ctx))
    console = _console()
    console.rule("[bold]agentgit demo")
    console.print(f"Database: [bold]{escape(str(path))}[/]", soft_wrap=True)
    console.print(
        "An order-support agent with a fake, deterministic chat model and two real tools "
        "(lookup_order, calculator) talks to a user; then the session is rolled back.\n"
    )

    def on_turn(label: str, messages: Sequence[BaseMessage]) -> None:
        style = "green" if label == "main" else "magenta"
        for message in messages:
            line = Text.assemble((f"[{label}] ", style), message_preview(message, 200))
            console.print(line, no_wrap=True, overflow="ellipsis")

    with open_repo(ctx, path, writes=True, create=True) as repo:
        result = scenario.run_demo(repo.saver, on_turn=on_turn)
        s = repo.mgr.get_session(result.session_id)
        if s is None:  # pragma: no cover - run_demo just created it
            raise CliError(f"session {result.session_id} vanished", EXIT_FAILURE)
        console.print(
            Text.assemble(
                "\nRolled back to ",
                (repo.abbreviate(result.rollback_checkpoint_id), "yellow"),
                (f" [{scenario.ROLLBACK_TAG}]", "bold cyan"),
                " and continued both timelines.\n",
            )
        )
        console.rule("[bold]Branch timeline")
        console.print(build_tree(repo, repo.history(s)))
        console.print(
            f"\nbranch_count = [bold]{s.branch_count}[/]   "
            f"total_checkpoints = [bold]{s.total_checkpoints}[/]\n"
        )
        main_head = repo.abbreviate(result.main_head)
        branch_head = repo.abbreviate(result.branch_head)
        console.rule(f"[bold]Diff of the two heads: {main_head} (main) → {branch_head} (branch)")
        print_diff(console, repo.mgr.diff(result.main_head, result.branch_head))
        short = abbreviations([x.id for x in repo.mgr.list_sessions()])[s.id]
        main_thread = abbreviations(s.internal_session_ids)[result.main_thread_id]
        prefix = (
            "agentgit" if path == Path(DEFAULT_DB) else f"agentgit --db {shlex.quote(str(path))}"
        )
        console.rule("[bold]Try next")
        for command in (
            "sessions",
            f"show {short}",
            f"tree {short}",
            f"log {short}",
            f"log {short} --branch {main_thread}",
            f"diff {main_head} {branch_head}",
            f"rollback {short} {scenario.ROLLBACK_TAG}",
            "sessions --json",
        ):
            console.print(f"  {escape(prefix)} {escape(command)}", soft_wrap=True)


@app.command()
def sessions(
    ctx: typer.Context,
    db: DbOption = None,
    user: Annotated[str | None, typer.Option(help="Only this user's sessions.")] = None,
    active: Annotated[bool, typer.Option("--active", help="Only active sessions.")] = False,
    read_only: ReadOnlyOption = False,
    as_json: JsonOption = False,
) -> None:
    """List sessions, most recently active first."""
    with open_repo(ctx, db_path(ctx, db), writes=False, read_only=read_only) as repo:
        found = repo.mgr.list_sessions(user_id=user, active_only=active)
        rows = [(s, _session_preview(repo, s)) for s in found]
        if as_json:
            _print_json([session_json(s, preview) for s, preview in rows])
            return
        if not rows:
            _console().print(f"No sessions in {escape(str(repo.path))}.")
            return
        short = abbreviations([s.id for s in found])
        table = _table(f"Sessions in {escape(str(repo.path))}")
        table.add_column("id", no_wrap=True)
        table.add_column("user", no_wrap=True, max_width=16, overflow="ellipsis")
        table.add_column("name", min_width=10, max_width=24)
        table.add_column("br.", justify="right", no_wrap=True)
        table.add_column("ckpts", justify="right", no_wrap=True)
        table.add_column("last activity", no_wrap=True)
        table.add_column("last message")  # the column that shrinks
        for s, preview in rows:
            table.add_row(
                Text(short[s.id], style="yellow" if s.is_active else "dim"),
                s.user_id or "",
                s.name,
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
    """Show one session: its details, branches and tags."""
    with open_repo(ctx, db_path(ctx, db), writes=False, read_only=read_only) as repo:
        s = repo.session(session)
        branches = repo.mgr.branches(s.id)
        tags = repo.mgr.tags(s.id)
        preview = _session_preview(repo, s)
        if as_json:
            data = session_json(s, preview)
            data["branches"] = [branch_json(b, s.current_thread_id) for b in branches]
            data["tags"] = dict(sorted(tags.items()))
            _print_json(data)
            return
        console = _console()
        details = Table.grid(padding=(0, 2))
        details.add_column(style="bold")
        details.add_column()
        for label, value in (
            ("session", s.id),
            ("name", s.name),
            ("user", s.user_id or ""),
            ("active", "yes" if s.is_active else "no"),
            ("created", _when(s.created_at)),
            ("last activity", _when(s.updated_at)),
            ("current branch", s.current_thread_id),
            ("branches", str(s.branch_count)),
            ("checkpoints", str(s.total_checkpoints)),
            ("metadata", json.dumps(s.metadata, default=str) if s.metadata else ""),
            ("last message", preview),
        ):
            details.add_row(label, Text(str(value)))
        console.print(Panel(details, title="Session", title_align="left", expand=False))
        table = _table("Branches (oldest first; --json for full ids)")
        for name in ("", "thread", "name", "parent", "forked at", "checkpoints"):
            table.add_column(
                name, justify="right" if name == "checkpoints" else "left", no_wrap=True
            )
        short = abbreviations([b.thread_id for b in branches])
        for index, b in enumerate(branches):
            current = b.thread_id == s.current_thread_id
            parent = b.parent_thread_id
            table.add_row(
                Text("*", style="bold green") if current else "",
                Text(short[b.thread_id], style="bold green" if current else ""),
                _branch_label(b, index),
                short.get(parent, parent[:MIN_ABBREV]) if parent else "",
                repo.abbreviate(b.fork_checkpoint_id),
                str(b.checkpoint_count),
            )
        console.print(table)
        if tags:
            tag_table = _table("Tags")
            tag_table.add_column("tag")
            tag_table.add_column("checkpoint")
            for name, checkpoint_id in sorted(tags.items()):
                tag_table.add_row(name, checkpoint_id)
            console.print(tag_table)


@app.command()
def log(
    ctx: typer.Context,
    session: SessionArg,
    branch: Annotated[
        str | None,
        typer.Option("--branch", "-b", help="Thread id, prefix or branch name (default: current)."),
    ] = None,
    limit: Annotated[int | None, typer.Option("--limit", "-n", min=1, help="At most N.")] = None,
    db: DbOption = None,
    read_only: ReadOnlyOption = False,
    as_json: JsonOption = False,
) -> None:
    """A branch's checkpoints, newest first: id, step, source, node and message."""
    with open_repo(ctx, db_path(ctx, db), writes=False, read_only=read_only) as repo:
        s = repo.session(session)
        target = repo.branch(s, branch) if branch is not None else None
        thread_id = target.thread_id if target is not None else s.current_thread_id
        items = repo.mgr.checkpoints(s.id, thread_id=thread_id)
        history = repo.history(s)
        owner = history.owner()
        pairs = [
            (item, items[i + 1] if i + 1 < len(items) else None) for i, item in enumerate(items)
        ]
        if limit is not None:
            pairs = pairs[:limit]
        if as_json:
            _print_json(
                [
                    checkpoint_json(
                        item,
                        parent,
                        thread_id=owner.get(item.checkpoint["id"]),
                        tags=history.tags.get(item.checkpoint["id"], []),
                    )
                    for item, parent in pairs
                ]
            )
            return
        table = _table(f"Session {escape(s.id)}, branch {escape(thread_id)} (newest first)")
        table.add_column("checkpoint", no_wrap=True)
        table.add_column("step", justify="right", no_wrap=True)
        table.add_column("source", no_wrap=True)
        table.add_column("node", no_wrap=True)
        table.add_column("message")  # the column that shrinks
        for item, parent in pairs:
            checkpoint_id = item.checkpoint["id"]
            metadata = item.metadata or {}
            label = Text(repo.abbreviate(checkpoint_id), style="yellow")
            if owner.get(checkpoint_id) != thread_id:
                label.stylize("dim")  # inherited from the branch this one was forked from
            message = Text()
            for tag in history.tags.get(checkpoint_id, []):
                message.append(f"[{tag}] ", style="bold cyan")
            message.append(checkpoint_preview(item))
            table.add_row(
                label,
                str(metadata.get("step", "")),
                str(metadata.get("source", "")),
                ", ".join(nodes_run(item, parent)),
                _one_line(message),
            )
        _console().print(table)


def build_tree(repo: Repo, history: SessionHistory) -> Tree:
    """The session's timeline as a Rich tree: each branch lists its own checkpoints oldest
    first, and a branch hangs under the checkpoint it was forked at."""
    s = history.session
    root = Tree(
        Text.assemble(
            ("session ", "bold"),
            (s.id, "bold yellow"),
            f"  {s.name}" if s.name else "",
            (f"  user {s.user_id}" if s.user_id else "", "dim"),
        )
    )
    threads = abbreviations([b.thread_id for b in history.branches])
    nodes: dict[str, Tree] = {}
    placed: set[str] = set()
    in_session = {b.thread_id for b in history.branches}
    pending = list(history.branches)
    # Parents before children; a branch whose fork point is not drawn yet waits a round.
    while pending:
        progress = False
        for branch in list(pending):
            anchor = root
            if branch.fork_checkpoint_id in nodes:
                anchor = nodes[branch.fork_checkpoint_id]
            elif branch.parent_thread_id in in_session and branch.parent_thread_id not in placed:
                continue  # its parent is drawn later; a deleted parent is not waited for
            pending.remove(branch)
            placed.add(branch.thread_id)
            progress = True
            current = branch.thread_id == s.current_thread_id
            own = history.own.get(branch.thread_id, [])
            label = Text.assemble(
                ("⑂ " if anchor is not root else "● ", "bold magenta"),
                (
                    _branch_label(branch, history.branches.index(branch)),
                    "bold green" if current else "bold",
                ),
                ("  thread ", "dim"),
                (threads[branch.thread_id], "green" if current else ""),
                ("  (current)" if current else "", "bold green"),
                (f"  {len(own)} own checkpoints", "dim"),
            )
            branch_node = anchor.add(label)
            for item in reversed(own):
                checkpoint_id = item.checkpoint["id"]
                metadata = item.metadata or {}
                line = Text.assemble(
                    (repo.abbreviate(checkpoint_id), "yellow"),
                    f"  {metadata.get('step', '?'):>3}  ",
                    (f"{metadata.get('source', ''):<6}", "dim"),
                )
                for tag in history.tags.get(checkpoint_id, []):
                    line.append(f"[{tag}] ", style="bold cyan")
                line.append(checkpoint_preview(item))
                nodes[checkpoint_id] = branch_node.add(_one_line(line))
        if not progress:  # only a cycle of parents could get here: show what is left
            for branch in pending:
                branch_node = root.add(Text(f"⑂ {branch.thread_id} (fork point not found)"))
                nodes.setdefault(branch.thread_id, branch_node)
            break
    return root


def tree_json(repo: Repo, history: SessionHistory) -> dict[str, Any]:
    """The stable JSON shape of a timeline: branches with their own checkpoints."""
    s = history.session
    return {
        "session_id": s.id,
        "current_thread_id": s.current_thread_id,
        "branches": [
            {
                **branch_json(b, s.current_thread_id),
                "checkpoints": [
                    checkpoint_json(
                        item,
                        own[i + 1] if i + 1 < len(own) else None,
                        thread_id=b.thread_id,
                        tags=history.tags.get(item.checkpoint["id"], []),
                    )
                    for i, item in reversed(list(enumerate(own)))
                ],
            }
            for b in history.branches
            for own in [history.own.get(b.thread_id, [])]
        ],
    }


@app.command()
def tree(
    ctx: typer.Context,
    session: SessionArg,
    db: DbOption = None,
    as_json: JsonOption = False,
    read_only: ReadOnlyOption = False,
) -> None:
    """The session's timeline as a tree of branches and checkpoints (oldest first)."""
    with open_repo(ctx, db_path(ctx, db), writes=False, read_only=read_only) as repo:
        history = repo.history(repo.session(session))
        if as_json:
            _print_json(tree_json(repo, history))
            return
        _console().print(build_tree(repo, history))


@app.command()
def diff(
    ctx: typer.Context,
    a: Annotated[str, typer.Argument(help="Checkpoint id or unique prefix (the 'before').")],
    b: Annotated[str, typer.Argument(help="Checkpoint id or unique prefix (the 'after').")],
    session: Annotated[
        str | None, typer.Option("--session", "-s", help="Also accept this session's tags.")
    ] = None,
    db: DbOption = None,
    read_only: ReadOnlyOption = False,
    as_json: JsonOption = False,
) -> None:
    """What changed between two checkpoints (of any threads)."""
    with open_repo(ctx, db_path(ctx, db), writes=False, read_only=read_only) as repo:
        scope = repo.session(session) if session is not None else None
        result = repo.mgr.diff(repo.checkpoint(a, scope), repo.checkpoint(b, scope))
        if as_json:
            _print_json(result.to_dict())
            return
        print_diff(_console(), result)


def print_diff(console: Console, result: CheckpointDiff) -> None:
    """A diff's text, coloured: removed messages red, added green, changed yellow."""
    styles = {"-": "red", "+": "green", "~": "yellow"}
    for line in str(result).splitlines():
        marker = line.lstrip()[:1]
        style = styles.get(marker, "") if line.startswith("  ") else "bold"
        # soft_wrap: long lines are left to the terminal, never cut or re-flowed.
        console.print(Text(line, style=style), soft_wrap=True)


@app.command()
def rollback(
    ctx: typer.Context,
    session: SessionArg,
    checkpoint: CheckpointArg,
    name: Annotated[str | None, typer.Option("--name", help="A name for the new branch.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Roll a session back: a new branch starts at CHECKPOINT and becomes current.

    Nothing is lost: the branch that was current keeps its whole history.
    """
    with open_repo(ctx, db_path(ctx, db), writes=True) as repo:
        s = repo.session(session)
        checkpoint_id = repo.checkpoint(checkpoint, s)
        new = repo.mgr.rollback(s.id, checkpoint_id, name=name)
        if as_json:
            _print_json(branch_json(new, new.thread_id))
            return
        _say(
            Text.assemble(
                "Rolled back session ",
                (s.id, "yellow"),
                " to ",
                (repo.abbreviate(checkpoint_id), "yellow"),
                ": new branch ",
                (new.thread_id, "bold green"),
                " is current (was ",
                s.current_thread_id,
                ").",
            )
        )


@app.command("branch")
def branch_command(
    ctx: typer.Context,
    session: SessionArg,
    checkpoint: CheckpointArg,
    name: Annotated[str | None, typer.Option("--name", help="A name for the branch.")] = None,
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Start a new branch at CHECKPOINT without switching to it."""
    with open_repo(ctx, db_path(ctx, db), writes=True) as repo:
        s = repo.session(session)
        new = repo.mgr.branch(s.id, repo.checkpoint(checkpoint, s), name=name)
        if as_json:
            _print_json(branch_json(new, s.current_thread_id))
            return
        _say(
            Text.assemble(
                "Created branch ",
                (new.thread_id, "bold green"),
                f" ({new.name})" if new.name else "",
                " at ",
                (repo.abbreviate(new.fork_checkpoint_id), "yellow"),
                "; current branch is still ",
                s.current_thread_id,
                ".",
            )
        )


@app.command()
def checkout(
    ctx: typer.Context,
    session: SessionArg,
    thread: Annotated[str, typer.Argument(help="Thread id, unique prefix, or branch name.")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Make another branch of the session the current one."""
    with open_repo(ctx, db_path(ctx, db), writes=True) as repo:
        s = repo.session(session)
        switched = repo.mgr.checkout(s.id, repo.branch(s, thread).thread_id)
        if as_json:
            _print_json(branch_json(switched, switched.thread_id))
            return
        _say(
            Text.assemble(
                "Session ",
                (s.id, "yellow"),
                " is now on branch ",
                (switched.thread_id, "bold green"),
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
    """Name a checkpoint of the session, to roll back to it by name later."""
    with open_repo(ctx, db_path(ctx, db), writes=True) as repo:
        s = repo.session(session)
        checkpoint_id = repo.checkpoint(checkpoint, s)
        repo.mgr.tag(s.id, checkpoint_id, name)
        if as_json:
            _print_json({"session_id": s.id, "tag": name, "checkpoint_id": checkpoint_id})
            return
        _say(Text.assemble("Tagged ", (checkpoint_id, "yellow"), " as ", (name, "bold cyan")))


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
