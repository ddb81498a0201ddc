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
and a failed call has nothing to undo).
"""

from __future__ import annotations

import hashlib
import os
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


def _digest(data: bytes | None) -> str | None:
    return None if data is None else hashlib.sha256(data).hexdigest()


def _read(target: Path) -> bytes | None:
    try:
        return target.read_bytes()
    except FileNotFoundError:
        return None


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
        target = resolve_in_root(root, path)
        before = _read(target)
        data = content.encode("utf-8")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        verb = "created" if before is None else "overwrote"
        return f"{verb} {path} ({len(data)} bytes)", _artifact(path, before, data)

    def edit_file(path: str, old: str, new: str) -> tuple[str, dict[str, Any]]:
        """Replace the one occurrence of ``old`` in a text file by ``new``."""
        target = resolve_in_root(root, path)
        before = _read(target)
        if before is None:
            raise FileNotFoundError(f"{path} does not exist")
        text = before.decode("utf-8")
        count = text.count(old) if old else 0
        if count != 1:
            raise ValueError(f"{old!r} occurs {count} times in {path}; it must occur once")
        data = text.replace(old, new).encode("utf-8")
        target.write_bytes(data)
        return f"edited {path}", _artifact(path, before, data)

    def delete_file(path: str) -> tuple[str, dict[str, Any]]:
        """Delete a file."""
        target = resolve_in_root(root, path)
        before = _read(target)
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
        if not isinstance(artifact, dict) or "before" not in artifact:
            raise ValueError(f"{effect.tool_name} call {effect.effect_id} has no file artifact")
        target = resolve_in_root(root, str(artifact["path"]))
        now = _read(target)
        if _digest(now) != artifact["after_sha256"]:
            raise FileChangedError(
                f"{artifact['path']} changed since {effect.tool_name} ({effect.effect_id}); "
                "left as it is"
            )
        before = artifact["before"]
        if before is None:
            target.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(before)

    return {"write_file": undo, "edit_file": undo, "delete_file": undo}
