"""The one walk of a session's branch tree, shared by the text tree, the pictures and
the web viewer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

T = TypeVar("T")


class BranchLike(Protocol):
    """What the walk needs of a branch."""

    @property
    def thread_id(self) -> str: ...

    @property
    def parent_thread_id(self) -> str | None: ...


def branch_children(
    items: Sequence[T], branch: Callable[[T], BranchLike]
) -> tuple[list[T], dict[str, list[T]]]:
    """Roots and children by parent thread id, each in the order of ``items``.

    ``branch(item)`` gives the item's :class:`~langgraph_agentgit.sessions.models.Branch`
    (anything with ``thread_id`` and ``parent_thread_id``). A root is a branch whose
    parent is not among ``items`` (the session's first thread, or a branch forked from
    a thread since deleted)."""
    in_session = {branch(i).thread_id for i in items}
    roots: list[T] = []
    children: dict[str, list[T]] = {}
    for item in items:
        parent = branch(item).parent_thread_id
        if parent is not None and parent in in_session:
            children.setdefault(parent, []).append(item)
        else:
            roots.append(item)
    return roots, children


def walk_branches(items: Sequence[T], branch: Callable[[T], BranchLike]) -> list[tuple[T, int]]:
    """``(item, depth)`` depth first, each branch right after its parent (depth 0 for a
    root), siblings in the order of ``items`` (oldest first for a session's branches).
    Every item appears once, even where damaged data makes parents form a cycle."""
    roots, children = branch_children(items, branch)
    ordered: list[tuple[T, int]] = []
    seen: set[int] = set()

    def visit(item: T, depth: int) -> None:
        if id(item) in seen:
            return
        seen.add(id(item))
        ordered.append((item, depth))
        for child in children.get(branch(item).thread_id, []):
            visit(child, depth + 1)

    for root in roots:
        visit(root, 0)
    for item in items:  # a cycle has no root: still shown
        visit(item, 0)
    return ordered
