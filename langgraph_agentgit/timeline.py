"""`Timeline`: the tree of a session's branches, as text, Mermaid, plain data or notebook
output. Built by :meth:`SessionManager.timeline`; it holds data only, no connection.

::

    tl = mgr.timeline(session.id)
    print(tl)                 # text tree, current branch marked with *
    tl.to_mermaid()           # Mermaid gitGraph (one commit per checkpoint)
    tl.to_mermaid("flowchart")  # Mermaid flowchart (one box per branch)
    tl.to_dict()              # JSON-ready (the views layer's "timeline" shape)
    tl.to_svg()               # SVG: one lane per branch, as `agentgit serve` draws it
    tl                        # in a notebook: renders the gitGraph

Checkpoint ids are shown abbreviated, like git, by the views layer's one rule
(:func:`langgraph_agentgit.views.text.abbreviations`, not aligned): the shortest prefix
(at least 8 characters) that is unique among the checkpoints of the timeline. LangGraph's
ids are time-ordered UUIDs whose first characters change slowly, so prefixes are often
longer than 8. ``to_dict()`` has the full ids.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from langgraph_agentgit.sessions.models import (
    Branch,
    BranchHistory,
    CheckpointSummary,
    ExternalSession,
)
from langgraph_agentgit.views.build import timeline_view
from langgraph_agentgit.views.text import MIN_ABBREV
from langgraph_agentgit.views.text import abbreviations as _abbreviations
from langgraph_agentgit.views.tree import branch_children


def _branch_of(history: BranchHistory) -> Branch:
    return history.branch


DEFAULT_MAX_COMMITS = 24
#: Columns the text of a timeline fits in unless told otherwise.
DEFAULT_WIDTH = 80
#: Longest name shown; the rest is cut to "…" so ids after it stay on the line.
NAME_WIDTH = 28


@dataclass(frozen=True)
class Timeline:
    """A session's branches with their fork points, checkpoints and heads.

    Attributes:
        session: the session.
        branches: one :class:`BranchHistory` per branch, oldest branch first.
        tags: tag name -> checkpoint id.
        undone: thread id -> the tools whose calls on that branch a rollback undid (one
            entry per effect, newest undo last); branches without any are absent.
    """

    session: ExternalSession
    branches: tuple[BranchHistory, ...]
    tags: dict[str, str]
    undone: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    # --- lookups ---------------------------------------------------------------------------

    @property
    def current(self) -> BranchHistory | None:
        """The current branch."""
        return next((b for b in self.branches if b.is_current), None)

    def branch(self, thread_id: str) -> BranchHistory:
        """The history of one branch, by thread id (``KeyError`` if not in the timeline)."""
        for history in self.branches:
            if history.branch.thread_id == thread_id:
                return history
        raise KeyError(thread_id)

    def label(self, history: BranchHistory | Branch) -> str:
        """The display name of a branch: its name, ``main`` for the session's first
        thread, else ``branch-<n>`` by creation order."""
        branch = history.branch if isinstance(history, BranchHistory) else history
        for index, candidate in enumerate(self.branches):
            if candidate.branch.thread_id == branch.thread_id:
                if branch.name:
                    return branch.name
                return "main" if not branch.is_branch else f"branch-{index}"
        return branch.name or branch.thread_id

    def abbreviations(self) -> dict[str, str]:
        """Checkpoint id -> its shortest unique prefix (at least 8 characters)."""
        return _abbreviations(self._all_ids(), aligned=False)

    def _all_ids(self) -> set[str]:
        ids = set(self.tags.values())
        for history in self.branches:
            ids.update(c.checkpoint_id for c in history.checkpoints)
            if history.fork_point is not None:
                ids.add(history.fork_point.checkpoint_id)
            if history.branch.fork_checkpoint_id is not None:
                ids.add(history.branch.fork_checkpoint_id)
        return ids

    def _tags_by_checkpoint(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for name, checkpoint_id in self.tags.items():
            out.setdefault(checkpoint_id, []).append(name)
        return out

    # --- the tree --------------------------------------------------------------------------

    def _children(self) -> tuple[list[BranchHistory], dict[str, list[BranchHistory]]]:
        """Roots (branches whose parent is not in the session) and children by parent."""
        return branch_children(self.branches, _branch_of)

    def __str__(self) -> str:
        return self.format()

    def format(self, width: int | None = DEFAULT_WIDTH) -> str:
        """The branch tree as text whose lines fit in ``width`` columns (80 by default;
        ``None``: nothing cut). Two lines per branch, the current one marked ``*``::

            Session 0c4f...e2 'support'
            user alice · 2 branches · 20 checkpoints
            main · 1710aa3f · 15 checkpoints
            │   head 1f1e6153-220a step 13 agent · 'ai: Here is what I found: …'
            └── * retry · c1312ec1 · forked at 1f1e6153-21bc (step 3) · 5 checkpoints
                    head 1f1e6153-21f6 step 8 agent · 'ai: Here is what I found: …'

        Thread and checkpoint ids are their shortest unique prefixes (at least 8
        characters); names are cut to 28 characters.
        """
        s = self.session
        abbrev = self.abbreviations()
        threads = _abbreviations((h.branch.thread_id for h in self.branches), aligned=False)
        header = f"Session {s.id}"
        if s.name:
            header += f" {_name(s.name, width)!r}"
        details = []
        if s.user_id is not None:
            details.append(f"user {_name(s.user_id, width)}")
        details.append(_plural(s.branch_count, "branch", "branches"))
        details.append(_plural(s.total_checkpoints, "checkpoint"))
        if not s.is_active:
            details.append("inactive")
        lines = [header, " · ".join(details)]
        roots, children = self._children()

        def walk(history: BranchHistory, prefix: str, connector: str, child_prefix: str) -> None:
            kids = children.get(history.branch.thread_id, [])
            first, second = self._lines(history, abbrev, threads, width)
            lines.append(prefix + connector + first)
            lines.append(prefix + child_prefix + ("│   " if kids else "    ") + second)
            for i, kid in enumerate(kids):
                last = i == len(kids) - 1
                walk(
                    kid,
                    prefix + child_prefix,
                    "└── " if last else "├── ",
                    "    " if last else "│   ",
                )

        for root in roots:
            walk(root, "", "", "")
        if self.tags:
            marks = []
            for name, checkpoint_id in self.tags.items():
                marks.append(f"{_name(name, width)} -> {abbrev.get(checkpoint_id, checkpoint_id)}")
            lines.append("tags: " + ", ".join(marks))
        return "\n".join(_cut(line, width) for line in lines)

    def _lines(
        self,
        history: BranchHistory,
        abbrev: dict[str, str],
        threads: dict[str, str],
        width: int | None,
    ) -> tuple[str, str]:
        b = history.branch
        parts = [
            ("* " if history.is_current else "") + _name(self.label(history), width),
            threads.get(b.thread_id, b.thread_id),
        ]
        if b.fork_checkpoint_id is not None:
            where = abbrev.get(b.fork_checkpoint_id, b.fork_checkpoint_id)
            step = history.fork_point.step if history.fork_point else None
            fork = f"forked at {where}" + (f" (step {step})" if step is not None else "")
            parent_ids = {h.branch.thread_id for h in self.branches}
            if b.parent_thread_id not in parent_ids:
                parent = b.parent_thread_id or ""
                fork += f" of deleted thread {parent[:MIN_ABBREV] if width else parent}"
            parts.append(fork)
        parts.append(_plural(b.checkpoint_count, "checkpoint"))
        if history.in_thread_forks:
            parts.append(_plural(history.in_thread_forks, "in-thread fork"))
        head = history.head
        if head is None:
            second = ["not run yet"]
        else:
            what = head.node or head.source or "?"
            text = f"head {abbrev.get(head.checkpoint_id, head.checkpoint_id)}"
            text += f" step {head.step} {what}"
            if not history.checkpoints:
                text += " (fork point)"
            second = [text]
        if history.interrupted:
            second.append("interrupted")
        undone = self.undone.get(b.thread_id, ())
        if undone:
            second.append(
                _plural(len(undone), "effect") + " undone (" + ", ".join(sorted(set(undone))) + ")"
            )
        if history.last_message:
            second.append(repr(history.last_message))
        return " · ".join(parts), " · ".join(second)

    # --- Mermaid ---------------------------------------------------------------------------

    def to_mermaid(
        self,
        kind: Literal["gitGraph", "flowchart"] = "gitGraph",
        *,
        max_commits: int = DEFAULT_MAX_COMMITS,
    ) -> str:
        """Mermaid source.

        ``"gitGraph"``: one lane per branch, one commit per checkpoint, each branch leaving
        its parent at its fork point; tags shown, the current head highlighted. A branch
        with more than ``max_commits`` checkpoints shows its first and last ones, its
        fork points and tagged checkpoints, and ``... N more`` for the rest.
        ``"flowchart"``: one box per branch, edges labelled with the fork point.
        """
        if kind == "flowchart":
            return self._flowchart()
        if kind != "gitGraph":
            raise ValueError(f"unknown Mermaid diagram kind {kind!r}: 'gitGraph' or 'flowchart'")
        return self._git_graph(max_commits)

    def _lanes(self) -> list[_Lane]:
        """Every lane a gitGraph draws: each branch's line to its head, then each fork
        LangGraph made inside a thread, as a lane of its own leaving the checkpoint it
        continues from."""
        lanes: list[_Lane] = []
        used: set[str] = set()

        def unique(label: str) -> str:
            base = re.sub(r"[^A-Za-z0-9_\-/.]", "-", label).strip("-./") or "b"
            if not base[0].isalpha():
                base = "b-" + base
            name, n = base, 2
            while name in used:
                name, n = f"{base}-{n}", n + 1
            used.add(name)
            return name

        roots, _ = self._children()
        main_id = roots[0].branch.thread_id if roots else None
        for history in self.branches:
            b = history.branch
            parent = b.parent_thread_id
            if parent not in {h.branch.thread_id for h in self.branches}:
                parent = main_id if b.thread_id != main_id else None
            lines = history.lines
            first = lines[0].checkpoints if lines else ()
            lanes.append(_Lane(b.thread_id, unique(self.label(history)), first, parent,
                               b.fork_checkpoint_id))  # fmt: skip
        for history in self.branches:
            b = history.branch
            own_lanes = [lane for lane in lanes if lane.key == b.thread_id]
            for k, line in enumerate(history.lines[1:], start=1):
                at = line.parent_checkpoint_id
                holder = next(
                    (
                        lane
                        for lane in own_lanes
                        if any(c.checkpoint_id == at for c in lane.checkpoints)
                    ),
                    own_lanes[0],
                )
                lane = _Lane(f"{b.thread_id}~{k}", unique(f"{own_lanes[0].name}-fork-{k}"),
                             line.checkpoints, holder.key, at)  # fmt: skip
                own_lanes.append(lane)
                lanes.append(lane)
        return lanes

    def _git_graph(self, max_commits: int) -> str:
        abbrev = self.abbreviations()
        tags = self._tags_by_checkpoint()
        lanes = self._lanes()
        if not lanes:
            return "gitGraph\n"
        by_key = {lane.key: lane for lane in lanes}
        names = {lane.key: lane.name for lane in lanes}
        main = lanes[0]
        fork_ids: dict[str, set[str]] = {}
        for lane in lanes:
            if lane.parent is not None and lane.fork is not None:
                fork_ids.setdefault(lane.parent, set()).add(lane.fork)
        current_head = (
            self.current.head.checkpoint_id if self.current and self.current.head else None
        )

        # Display entries per lane: (sort key, label, checkpoint id or None for "... N more").
        shown: dict[str, list[tuple[str, str, str | None]]] = {}
        for lane in lanes:
            keep = _kept(lane.checkpoints, max_commits, fork_ids.get(lane.key, set()), tags)
            entries: list[tuple[str, str, str | None]] = []
            skipped: list[CheckpointSummary] = []
            for i, c in enumerate(lane.checkpoints):
                if i in keep:
                    if skipped:
                        entries.append(_elided(skipped, lane.name))
                        skipped = []
                    entries.append((c.checkpoint_id, _commit_label(c, abbrev), c.checkpoint_id))
                else:
                    skipped.append(c)
            if skipped:
                entries.append(_elided(skipped, lane.name))
            shown[lane.key] = entries

        attach: dict[tuple[str, str | None], list[str]] = {}
        for lane in lanes[1:]:
            parent = lane.parent if lane.parent in by_key else main.key
            at = None
            for _key, _label, cid in shown[parent]:
                if cid is not None and lane.fork is not None and cid <= lane.fork:
                    at = cid
            attach.setdefault((parent, at), []).append(lane.key)

        lines: list[str] = []
        if main.name != "main":
            lines.append("%%{init: {'gitGraph': {'mainBranchName': '" + main.name + "'}}}%%")
        lines.append("gitGraph")
        state = {"on": main.key}

        def checkout(key: str) -> None:
            if state["on"] != key:
                lines.append(f"    checkout {names[key]}")
                state["on"] = key

        def open_children(key: str, at: str | None) -> None:
            for kid in attach.get((key, at), []):
                checkout(key)
                lines.append(f"    branch {names[kid]}")
                state["on"] = kid
                open_children(kid, None)

        open_children(main.key, None)
        events = sorted(
            (sort_key, key, label, cid)
            for key, entries in shown.items()
            for sort_key, label, cid in entries
        )
        for _sort_key, key, label, cid in events:
            checkout(key)
            commit = f'    commit id: "{label}"'
            if cid is not None and cid in tags:
                commit += f' tag: "{_safe(", ".join(tags[cid]))}"'
            if cid is not None and cid == current_head:
                commit += " type: HIGHLIGHT"
            lines.append(commit)
            if cid is not None:
                open_children(key, cid)
        return "\n".join(lines) + "\n"

    def _flowchart(self) -> str:
        abbrev = self.abbreviations()
        node_ids = {h.branch.thread_id: f"b{i}" for i, h in enumerate(self.branches)}
        lines = ["flowchart TD"]
        for history in self.branches:
            b = history.branch
            head = history.head
            details = [_plural(b.checkpoint_count, "checkpoint")]
            if head is not None:
                details.append(f"head step {head.step} {head.node or head.source or ''}".strip())
            if history.last_message:
                details.append(history.last_message)
            title = ("* " if history.is_current else "") + self.label(history)
            text = "<br/>".join(_safe(t) for t in [title, *details])
            lines.append(f'    {node_ids[b.thread_id]}["{text}"]')
        for history in self.branches:
            b = history.branch
            if b.parent_thread_id in node_ids and b.fork_checkpoint_id is not None:
                step = history.fork_point.step if history.fork_point else None
                edge = _safe(f"step {step} {abbrev.get(b.fork_checkpoint_id, '')}")
                lines.append(
                    f'    {node_ids[b.parent_thread_id]} -->|"{edge}"| {node_ids[b.thread_id]}'
                )
        current = self.current
        if current is not None:
            lines.append(f"    style {node_ids[current.branch.thread_id]} stroke-width:3px")
        return "\n".join(lines) + "\n"

    # --- data and notebooks ----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data, the views layer's ``timeline`` shape
        (:func:`langgraph_agentgit.views.build.timeline_view`, ``docs/views-schema.md``):
        the session, its tags, and every branch with its fork point, head, last-message
        preview, own checkpoints (full ids), in-thread forks and the tools whose effects
        on it a rollback undid (``undone_effects``)."""
        return timeline_view(self)

    def to_svg(self, *, collapse: bool = True) -> str:
        """The branch timeline as a standalone SVG document: what ``agentgit serve``
        shows and ``agentgit tree --svg FILE`` writes
        (:func:`langgraph_agentgit.views.svg.timeline_svg`)."""
        from langgraph_agentgit.views.svg import timeline_svg

        return timeline_svg(self, collapse=collapse, standalone=True)

    def _repr_svg_(self) -> str:
        return self.to_svg()

    def _repr_markdown_(self) -> str:
        return f"```mermaid\n{self.to_mermaid()}```\n\n```text\n{self}\n```\n"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(str(self))


@dataclass(frozen=True)
class _Lane:
    """One lane of a gitGraph: a branch's line to its head, or a fork inside a thread."""

    key: str
    name: str
    checkpoints: tuple[CheckpointSummary, ...]
    parent: str | None
    fork: str | None


def _kept(
    checkpoints: Sequence[CheckpointSummary],
    max_commits: int,
    fork_ids: set[str],
    tags: dict[str, list[str]],
) -> set[int]:
    if len(checkpoints) <= max_commits:
        return set(range(len(checkpoints)))
    half = max(1, max_commits // 2)
    keep = set(range(half)) | set(range(len(checkpoints) - half, len(checkpoints)))
    keep |= {i for i, c in enumerate(checkpoints) if c.checkpoint_id in fork_ids}
    keep |= {i for i, c in enumerate(checkpoints) if c.checkpoint_id in tags}
    return keep


def _elided(skipped: Sequence[CheckpointSummary], lane: str) -> tuple[str, str, None]:
    first = skipped[0]
    return (first.checkpoint_id, f"... {len(skipped)} more ({lane} from step {first.step})", None)


def _commit_label(c: CheckpointSummary, abbrev: dict[str, str]) -> str:
    what = _safe(c.node or c.source or "")
    return f"{abbrev.get(c.checkpoint_id, c.checkpoint_id)} s{c.step} {what}".strip()


def _safe(text: str) -> str:
    """Text that can sit inside a double-quoted Mermaid string."""
    return text.replace('"', "'").replace("\n", " ").replace("#", "")


def _cut(text: str, width: int | None) -> str:
    return text if width is None or len(text) <= width else text[: max(width - 1, 0)] + "…"


def _name(text: str, width: int | None) -> str:
    """A user-given name on one line: newlines shown as ``⏎``, cut to :data:`NAME_WIDTH`."""
    one = text.replace("\n", "\u23ce")
    return one if width is None else _cut(one, NAME_WIDTH)


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"
