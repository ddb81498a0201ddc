"""A session's branch timeline as SVG: what ``agentgit serve`` shows, what
``agentgit tree --svg FILE`` writes and what a :class:`~langgraph_agentgit.Timeline`
shows in a notebook.

One lane per branch (depth first, each right below the branch it was forked from), one
dot per checkpoint coloured by the node that produced it, a curve from each fork point
to the branch it starts, tags as flags, the current head ringed, interrupted heads
marked, and at the end of each lane its last message and the tool calls a rollback
undid on it. A lane with more than :data:`FULL_LANE` checkpoints shows its first
:data:`KEEP_FIRST` and last :data:`KEEP_LAST`, and every checkpoint a branch, an
in-thread fork or a tag hangs from; each run left out is one ``+N`` box, so 50 branches
of 2,000 checkpoints stay a picture of a few hundred dots.

Every piece of text from the database (names, tags, messages) is XML-escaped here: the
SVG is put into the web viewer's pages as it is.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape, quoteattr

from langgraph_agentgit.views.text import abbreviations, cut
from langgraph_agentgit.views.tree import walk_branches

if TYPE_CHECKING:
    from langgraph_agentgit.sessions.models import BranchHistory, CheckpointSummary
    from langgraph_agentgit.timeline import Timeline

#: A lane shows all its checkpoints up to this many; a longer one is collapsed.
FULL_LANE = 40
KEEP_FIRST = 3
KEEP_LAST = 8
#: Dot colour by what produced the checkpoint (its node, else its source).
NODE_COLOURS: dict[str, str] = {
    "input": "#4c72b0",
    "__start__": "#8da0cb",
    "agent": "#55a868",
    "tools": "#dd8452",
    "update": "#8172b2",
    "fork": "#937860",
}
#: Colours for other nodes, chosen by a hash of the node name (stable across runs).
OTHER_COLOURS = ("#c44e52", "#64b5cd", "#ccb974", "#8c564b", "#e377c2", "#17becf")

# Geometry, in SVG user units (pixels at zoom 1).
_COL = 20
_ROW = 30
_LEFT = 190
_TOP = 40
_DOT = 5
_GAP_COLS = 2
_LABEL = 26


def node_colour(summary: CheckpointSummary) -> str:
    """The colour of a checkpoint's dot: by its (first) node, else its source."""
    for key in (summary.node, summary.source):
        if key:
            first = key.split(",")[0].strip()
            if first in NODE_COLOURS:
                return NODE_COLOURS[first]
            if key is summary.node:
                return OTHER_COLOURS[zlib.crc32(first.encode()) % len(OTHER_COLOURS)]
    return "#999999"


def _kind(summary: CheckpointSummary) -> str:
    return (summary.node or summary.source or "?").split(",")[0].strip()


@dataclass
class _Item:
    """A dot (``summary``) or a box standing for a run left out (``skipped``)."""

    col: int
    summary: CheckpointSummary | None = None
    skipped: int = 0
    first_step: int | None = None


def _lane_items(
    history: BranchHistory, start: int, anchors: set[str], collapse: bool
) -> list[_Item]:
    checkpoints = history.checkpoints
    keep = set(range(len(checkpoints)))
    if collapse and len(checkpoints) > FULL_LANE:
        keep = set(range(KEEP_FIRST)) | set(range(len(checkpoints) - KEEP_LAST, len(checkpoints)))
        keep |= {i for i, c in enumerate(checkpoints) if c.checkpoint_id in anchors}
    items: list[_Item] = []
    col = start
    run: list[CheckpointSummary] = []
    for i, c in enumerate(checkpoints):
        if i not in keep:
            run.append(c)
            continue
        if run:
            items.append(_Item(col, skipped=len(run), first_step=run[0].step))
            col += _GAP_COLS
            run = []
        items.append(_Item(col, summary=c))
        col += 1
    return items


def timeline_svg(
    timeline: Timeline,
    *,
    collapse: bool = True,
    href: Callable[[str], str] | None = None,
    standalone: bool = False,
) -> str:
    """The SVG of ``timeline``.

    ``href(checkpoint_id)`` makes each dot a link (the web viewer's checkpoint page);
    ``collapse=False`` draws every checkpoint; ``standalone`` adds the XML declaration
    and inline styles a file or notebook needs (the web viewer styles it from its own
    stylesheet, so that its Content-Security-Policy can forbid inline styles).

    Marks for scripts and tests: each lane is a ``<g class="lane">`` with
    ``data-thread-id``, each dot a ``<circle class="dot">`` with ``data-checkpoint-id``,
    ``data-thread-id`` and ``data-node``, each collapsed run a ``<g class="gap">`` with
    ``data-count``; the current head has ``class="dot head current"``, an interrupted
    head ``interrupted``.
    """
    ordered = walk_branches(timeline.branches, lambda h: h.branch)
    abbrev = abbreviations(c.checkpoint_id for h in timeline.branches for c in h.checkpoints)
    tags: dict[str, list[str]] = {}
    for name, checkpoint_id in sorted(timeline.tags.items()):
        tags.setdefault(checkpoint_id, []).append(name)
    anchors = set(tags)
    for history in timeline.branches:
        if history.branch.fork_checkpoint_id is not None:
            anchors.add(history.branch.fork_checkpoint_id)
        anchors.update(
            line.parent_checkpoint_id for line in history.lines[1:] if line.parent_checkpoint_id
        )
    current = timeline.current
    current_head = current.head.checkpoint_id if current and current.head else None

    where: dict[str, tuple[int, int]] = {}  # checkpoint id -> (column, row) of its dot
    lanes: list[tuple[BranchHistory, int, list[_Item], int]] = []
    for row, (history, depth) in enumerate(ordered):
        fork = history.branch.fork_checkpoint_id
        start = where[fork][0] + 1 if fork is not None and fork in where else 0
        items = _lane_items(history, start, anchors, collapse)
        for item in items:
            if item.summary is not None:
                where[item.summary.checkpoint_id] = (item.col, row)
        lanes.append((history, row, items, depth))
    ends = [item.col + (_GAP_COLS if item.skipped else 1) for _, _, its, _ in lanes for item in its]
    for history, *_ in lanes:
        fork = history.branch.fork_checkpoint_id
        if fork is not None and fork in where:
            ends.append(where[fork][0] + 2)
    columns = max([*ends, 1])
    width = _LEFT + columns * _COL + 240
    height = _TOP + max(len(lanes), 1) * _ROW + 10

    def x(col: float) -> float:
        return _LEFT + col * _COL + _COL / 2

    def y(row: int) -> float:
        return _TOP + row * _ROW + _ROW / 2

    out: list[str] = []
    if standalone:
        out.append('<?xml version="1.0" encoding="UTF-8"?>')
    out.append(
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" '
        f'data-lanes="{len(lanes)}" role="img">'
    )
    s = timeline.session
    out.append(f"<title>{escape(f'Timeline of session {s.id} {s.name}'.strip())}</title>")
    if standalone:
        out.append(f"<style>{STANDALONE_CSS}</style>")
    # The legend: the colours in use.
    kinds: dict[str, str] = {}
    for history in timeline.branches:
        for c in history.checkpoints:
            kinds.setdefault(_kind(c), node_colour(c))
    lx = _LEFT
    out.append('<g class="legend">')
    for kind, colour in sorted(kinds.items()):
        out.append(
            f'<circle cx="{lx + 6}" cy="14" r="{_DOT}" fill="{colour}"/>'
            f'<text x="{lx + 14}" y="18">{escape(cut(kind, 20))}</text>'
        )
        lx += 30 + 7 * min(len(kind), 20)
    out.append("</g>")

    for history, row, items, depth in lanes:
        b = history.branch
        classes = "lane current" if history.is_current else "lane"
        out.append(
            f'<g class="{classes}" data-thread-id={quoteattr(b.thread_id)} '
            f'data-checkpoints="{len(history.checkpoints)}">'
        )
        label = ("* " if history.is_current else "") + timeline.label(history)
        out.append(
            f'<text class="label" x="{4 + 8 * min(depth, 6)}" y="{y(row) + 4}">'
            f"{escape(cut(' '.join(label.split()), _LABEL))}"
            f"<title>{escape(label)} · thread {escape(b.thread_id)}</title></text>"
        )
        fork = b.fork_checkpoint_id
        first_col = items[0].col if items else (where[fork][0] + 1 if fork in where else 0)
        last_col = (
            (items[-1].col + (_GAP_COLS - 1 if items[-1].skipped else 0)) if items else first_col
        )
        # The curve from the fork point, then the lane's line.
        if fork is not None and fork in where:
            fc, fr = where[fork]
            x0, y0, x1, y1 = x(fc), y(fr), x(first_col), y(row)
            out.append(
                f'<path class="fork" d="M{x0},{y0} C{x0 + _COL / 2},{y0} '
                f'{x1 - _COL},{y1} {x1},{y1}"/>'
            )
        if items and last_col > first_col:
            out.append(
                f'<line class="lane-line" x1="{x(first_col)}" y1="{y(row)}" '
                f'x2="{x(last_col)}" y2="{y(row)}"/>'
            )
        shown_ids = {i.summary.checkpoint_id for i in items if i.summary is not None}
        previous: str | None = None
        for item in items:
            if item.summary is None:
                gx = x(item.col) - _COL / 2 + 2
                out.append(
                    f'<g class="gap" data-count="{item.skipped}">'
                    f'<rect x="{gx}" y="{y(row) - 8}" width="{_GAP_COLS * _COL - 4}" '
                    f'height="16" rx="4"/>'
                    f'<text x="{gx + (_GAP_COLS * _COL - 4) / 2}" y="{y(row) + 4}">'
                    f"+{item.skipped}</text>"
                    f"<title>{item.skipped} more checkpoints from step {item.first_step}"
                    "</title></g>"
                )
                previous = None
                continue
            c = item.summary
            # A checkpoint whose parent is an earlier dot of the lane but not the one
            # before it: LangGraph forked inside the thread there.
            parent = c.parent_checkpoint_id
            if parent in shown_ids and parent != previous and previous is not None:
                pc, _ = where[parent]
                out.append(
                    f'<path class="fork inner" d="M{x(pc)},{y(row)} Q{(x(pc) + x(item.col)) / 2},'
                    f'{y(row) - _ROW * 0.6} {x(item.col)},{y(row)}"/>'
                )
            previous = c.checkpoint_id
            cx, cy = x(item.col), y(row)
            is_head = history.head is not None and c.checkpoint_id == history.head.checkpoint_id
            dot_classes = ["dot"]
            if is_head:
                dot_classes.append("head")
                if c.checkpoint_id == current_head and history.is_current:
                    dot_classes.append("current")
                if history.interrupted:
                    dot_classes.append("interrupted")
            what = c.node or c.source or "?"
            title = f"{abbrev.get(c.checkpoint_id, c.checkpoint_id)} · step {c.step} · {what}"
            if is_head and history.last_message:
                title += f"\n{history.last_message}"
            if tags.get(c.checkpoint_id):
                title += "\ntags: " + ", ".join(tags[c.checkpoint_id])
            if "current" in dot_classes:
                out.append(f'<circle class="ring current" cx="{cx}" cy="{cy}" r="{_DOT + 4}"/>')
            if "interrupted" in dot_classes:
                out.append(
                    f'<rect class="ring interrupted" x="{cx - _DOT - 4}" y="{cy - _DOT - 4}" '
                    f'width="{2 * _DOT + 8}" height="{2 * _DOT + 8}"/>'
                )
            circle = (
                f'<circle class="{" ".join(dot_classes)}" cx="{cx}" cy="{cy}" r="{_DOT}" '
                f'fill="{node_colour(c)}" data-checkpoint-id={quoteattr(c.checkpoint_id)} '
                f"data-thread-id={quoteattr(b.thread_id)} data-node={quoteattr(what)}>"
                f"<title>{escape(title)}</title></circle>"
            )
            if href is not None:
                circle = f"<a href={quoteattr(href(c.checkpoint_id))}>{circle}</a>"
            out.append(circle)
            for k, name in enumerate(tags.get(c.checkpoint_id, [])):
                top = cy - 10 - 11 * k
                out.append(
                    f'<g class="tag"><line x1="{cx}" y1="{cy - _DOT}" x2="{cx}" y2="{top}"/>'
                    f'<text x="{cx + 2}" y="{top}">⚑ {escape(cut(" ".join(name.split()), 24))}'
                    f"</text></g>"
                )
        # At the end of the lane: where its head is and what it says.
        end = x(last_col) + _COL
        note = []
        if not history.checkpoints:
            note.append("not run yet")
        if history.interrupted:
            note.append("⏸ interrupted")
        undone = timeline.undone.get(b.thread_id, ())
        if undone:
            tools = ", ".join(sorted(set(undone)))
            note.append(f"↶ {len(undone)} undone ({tools})")
        if history.last_message:
            note.append(cut(" ".join(history.last_message.split()), 40))
        if not items and fork is not None and fork in where:
            out.append(f'<circle class="dot-empty" cx="{x(first_col)}" cy="{y(row)}" r="{_DOT}"/>')
        if note:
            out.append(
                f'<text class="note" x="{end}" y="{y(row) + 4}">{escape(" · ".join(note))}</text>'
            )
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)


#: The styles a standalone SVG carries (the web viewer's stylesheet has the same rules).
STANDALONE_CSS = (
    "text{font:12px sans-serif;fill:#222}"
    ".label{font-weight:600}.note{fill:#555}"
    ".lane-line{stroke:#888;stroke-width:2}"
    ".fork{fill:none;stroke:#888;stroke-width:2}"
    ".dot{stroke:#fff;stroke-width:1}"
    ".ring.current{fill:none;stroke:#111;stroke-width:2}"
    ".ring.interrupted{fill:none;stroke:#d62728;stroke-width:2}"
    ".gap rect{fill:#eee;stroke:#999}.gap text{font-size:10px;text-anchor:middle}"
    ".tag line{stroke:#1f77b4}.tag text{fill:#1f77b4;font-size:11px}"
    ".dot-empty{fill:#fff;stroke:#888;stroke-width:2}"
    ".legend text{font-size:11px}"
)
