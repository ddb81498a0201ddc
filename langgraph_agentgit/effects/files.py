"""Reversible file tools for agents that edit files, confined to one root directory.

::

    from langgraph_agentgit.effects.files import file_tools, file_undo_handlers

    tools = file_tools("workspace")                    # write_file, edit_file, delete_file
    graph = create_react_agent(model, tools, checkpointer=saver)
    mgr = SessionManager(saver, undo=file_undo_handlers("workspace"))
    ...
    mgr.rollback(s.id, "before-edits", undo_effects=True)   # files back, byte for byte

Each tool returns its message and an artifact (``response_format="content_and_artifact"``)
holding the file's bytes before the call (``None`` if it did not exist) and the SHA-256 of
its bytes after. The artifact is part of the checkpointed ``ToolMessage``, so the saver
stores it with the conversation (values are stored once, by content). Undo writes the old
bytes back (or removes a file the call created), newest call first, so a rollback brings
code and conversation back together. A handler refuses (raises
:class:`FileChangedError`) when the file no longer holds what the call left there: it was
changed outside the agent, and overwriting it would lose that change.

Paths are relative to the root; an absolute path, ``..`` or a symbolic link leading outside
the root is refused with ``ValueError`` (``ToolNode`` reports it to the model as an error,
and a failed call has nothing to undo). Files are written to a temporary file in the same
directory and moved over the target (``os.replace``), so a write is atomic and never goes
through a link; a target that is a symbolic link, a directory or a file with more than one
hard link (checked with ``lstat`` when the tool runs and again at undo) is refused with
``ValueError``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool

from langgraph_agentgit.effects.models import Effect, UndoHandler
from langgraph_agentgit.errors import AgentGitError

__all__ = ["FileChangedError", "file_tools", "file_undo_handlers", "resolve_in_root"]


class FileChangedError(AgentGitError):
    """Undoing a file tool call found the file changed since the call: it was left as is."""


def resolve_in_root(root: str | os.PathLike[str], path: str) -> Path:
    """``path`` inside ``root``, symbolic links resolved; ``ValueError`` if it leads
    outside (absolute paths, ``..``, links) or names the root itself."""
    base = Path(root).resolve()
    if not isinstance(path, str) or not path or Path(path).is_absolute():
        raise ValueError(f"path must be relative to the workspace root, got {path!r}")
    target = (base / path).resolve()
    if target == base or not target.is_relative_to(base):
        raise ValueError(f"path {path!r} is outside the workspace root")
    return target


def _entry_in_root(root: str | os.PathLike[str], path: str) -> Path:
    """``path``'s directory entry inside ``root``: its parent directory resolved (and
    inside the root), its last component not followed (see :func:`_check_plain`)."""
    base = Path(root).resolve()
    if not isinstance(path, str) or not path or Path(path).is_absolute():
        raise ValueError(f"path must be relative to the workspace root, got {path!r}")
    unresolved = base / path
    parent = unresolved.parent.resolve()
    if not parent.is_relative_to(base) or unresolved.name in ("", ".", ".."):
        raise ValueError(f"path {path!r} is outside the workspace root")
    return parent / unresolved.name


def _digest(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def _check_plain(target: Path, path: str) -> None:
    """Refuse a target that is a symbolic link, not a regular file, or has more than one
    hard link (writing it would change a file outside the workspace too). Checked with
    ``lstat``: a link is never followed."""
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        return
    if stat.S_ISLNK(info.st_mode):
        raise ValueError(f"{path} is a symbolic link; refusing to write through it")
    if stat.S_ISDIR(info.st_mode):
        raise ValueError(f"{path} is a directory, not a file")
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path} is not a regular file")
    if info.st_nlink > 1:
        raise ValueError(
            f"{path} has {info.st_nlink} hard links; refusing to change a file that is "
            "also reachable from elsewhere"
        )


def _read_plain(target: Path, path: str) -> bytes | None:
    """The bytes of ``target`` (``None`` if absent), after :func:`_check_plain`; opened
    with ``O_NOFOLLOW`` where the platform has it."""
    _check_plain(target, path)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(target, flags)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _write_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file in the same directory, then ``os.replace`` it
    over ``target``: atomic, and it replaces the directory entry (never writes through a
    hard link or a symbolic link)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _artifact(path: str, before: bytes | None, after: bytes | None) -> dict[str, Any]:
    return {"path": path, "before": before, "after_sha256": _digest(after)}


def file_tools(root: str | os.PathLike[str]) -> list[BaseTool]:
    """``write_file(path, content)``, ``edit_file(path, old, new)`` and
    ``delete_file(path)``, confined to ``root`` (which must exist). Text is written as
    UTF-8; each tool's artifact keeps the bytes it replaced."""
    if not Path(root).is_dir():
        raise NotADirectoryError(f"workspace root {str(root)!r} is not a directory")

    def write_file(path: str, content: str) -> tuple[str, dict[str, Any]]:
        """Create or overwrite a text file (path relative to the workspace)."""
        resolve_in_root(root, path)  # refuses paths leading outside the root
        target = _entry_in_root(root, path)
        before = _read_plain(target, path)
        data = content.encode("utf-8")
        _write_atomic(target, data)
        verb = "created" if before is None else "overwrote"
        return f"{verb} {path} ({len(data)} bytes)", _artifact(path, before, data)

    def edit_file(path: str, old: str, new: str) -> tuple[str, dict[str, Any]]:
        """Replace the one occurrence of ``old`` in a text file by ``new``."""
        resolve_in_root(root, path)  # refuses paths leading outside the root
        target = _entry_in_root(root, path)
        before = _read_plain(target, path)
        if before is None:
            raise FileNotFoundError(f"{path} does not exist")
        text = before.decode("utf-8")
        count = text.count(old) if old else 0
        if count != 1:
            raise ValueError(f"{old!r} occurs {count} times in {path}; it must occur once")
        data = text.replace(old, new).encode("utf-8")
        _write_atomic(target, data)
        return f"edited {path}", _artifact(path, before, data)

    def delete_file(path: str) -> tuple[str, dict[str, Any]]:
        """Delete a file."""
        resolve_in_root(root, path)  # refuses paths leading outside the root
        target = _entry_in_root(root, path)
        before = _read_plain(target, path)
        if before is None:
            raise FileNotFoundError(f"{path} does not exist")
        target.unlink()
        return f"deleted {path}", _artifact(path, before, None)

    return [
        StructuredTool.from_function(fn, response_format="content_and_artifact")
        for fn in (write_file, edit_file, delete_file)
    ]


def file_undo_handlers(root: str | os.PathLike[str]) -> dict[str, UndoHandler]:
    """Undo handlers for :func:`file_tools` (``SessionManager(saver, undo=...)``): each
    puts back the bytes the call replaced, or removes a file it created. Raises
    :class:`FileChangedError` when the file no longer holds what the call left, and
    ``ValueError`` for an effect without a file tool's artifact."""

    def undo(effect: Effect) -> None:
        artifact = effect.artifact
        if (
            not isinstance(artifact, dict)
            or not {"path", "before", "after_sha256"} <= artifact.keys()
            or not isinstance(artifact["path"], str)
        ):
            raise ValueError(
                f"{effect.tool_name} call {effect.effect_id} has no file artifact "
                "(a dict with 'path', 'before' and 'after_sha256')"
            )
        path = artifact["path"]
        target = _entry_in_root(root, path)
        now = _read_plain(target, path)
        if _digest(now) != artifact["after_sha256"]:
            raise FileChangedError(
                f"{path} changed since {effect.tool_name} ({effect.effect_id}); left as it is"
            )
        before = artifact["before"]
        if before is None:
            target.unlink()
        else:
            _write_atomic(target, before)

    return {"write_file": undo, "edit_file": undo, "delete_file": undo}
