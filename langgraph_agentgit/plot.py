"""Draw a session's :class:`~langgraph_agentgit.Timeline` as a picture with matplotlib.

One lane per branch, one dot per checkpoint placed by its LangGraph step, a curve from
each fork point to the branch it starts, tags as flags and each head labelled with its
last message. Needs ``matplotlib`` (the ``plot`` extra:
``pip install 'langgraph-agentgit[plot]'``), imported only when a drawing is made::

    from langgraph_agentgit.plot import draw_timeline, timeline_image

    figure = draw_timeline(mgr.timeline(session_id))
    figure.savefig("timeline.png")
    png = timeline_image(mgr.timeline(session_id))          # bytes, e.g. for IPython.display
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Literal

from langgraph_agentgit.sessions.models import BranchHistory, CheckpointSummary, Line
from langgraph_agentgit.timeline import Timeline
from langgraph_agentgit.views.tree import walk_branches

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["NODE_COLOURS", "draw_timeline", "timeline_image"]

#: Dot colour by what produced the checkpoint (its node, else its source).
NODE_COLOURS: dict[str, str] = {
    "input": "#4c72b0",
    "__start__": "#8da0cb",
    "agent": "#55a868",
    "tools": "#dd8452",
    "update": "#8172b2",
    "fork": "#937860",
}
_OTHER_COLOUR = "#999999"
_LANE_COLOURS = ("#333333", "#c44e52", "#4c72b0", "#55a868", "#8172b2", "#dd8452", "#64b5cd")


def _lanes(timeline: Timeline) -> list[tuple[BranchHistory, int]]:
    """Branches in drawing order, depth first so a branch sits right below its parent."""
    return walk_branches(timeline.branches, lambda h: h.branch)


def _rows(timeline: Timeline) -> list[tuple[BranchHistory, Line]]:
    """One row per lane, in drawing order: each branch's line to its head, then each fork
    LangGraph made inside its thread (which would otherwise overlap it, step for step)."""
    rows: list[tuple[BranchHistory, Line]] = []
    for history, _depth in _lanes(timeline):
        lines = history.lines or (Line((), history.branch.fork_checkpoint_id, True),)
        rows.extend((history, line) for line in lines)
    return rows


def _x(summary: CheckpointSummary, fallback: int) -> float:
    return float(summary.step) if summary.step is not None else float(fallback)


def _colour(summary: CheckpointSummary) -> str:
    for key in (summary.node, summary.source):
        if key is not None and key.split(",")[0].strip() in NODE_COLOURS:
            return NODE_COLOURS[key.split(",")[0].strip()]
    return _OTHER_COLOUR


def draw_timeline(
    timeline: Timeline,
    ax: Axes | None = None,
    *,
    title: str | None = None,
    message_width: int = 48,
) -> Figure:
    """Draw ``timeline`` on ``ax`` (or on a new figure) and return the figure.

    Works without a display: a new figure is a plain ``matplotlib.figure.Figure`` that
    uses no GUI backend.
    """
    try:
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.patches import FancyArrowPatch
    except ImportError as exc:
        raise ImportError(
            "drawing a timeline needs matplotlib: pip install 'langgraph-agentgit[plot]'"
        ) from exc

    lanes = _rows(timeline)
    widest = max((len(line.checkpoints) for _, line in lanes), default=1)
    if ax is None:
        figure = Figure(figsize=(max(8.0, 3.0 + 0.42 * widest + 3.2), 1.1 + 0.75 * len(lanes)))
        ax = figure.add_subplot()
    else:
        figure = ax.get_figure()  # type: ignore[assignment]
    lane_of = {h.branch.thread_id: i for i, (h, line) in reversed(list(enumerate(lanes)))}
    position: dict[str, tuple[float, float]] = {}
    tagged: dict[str, list[str]] = {}
    for name, checkpoint_id in timeline.tags.items():
        tagged.setdefault(checkpoint_id, []).append(name)

    # Dots and lane lines first, so fork curves can find their fork point's position.
    max_x = 0.0
    for row, (history, line) in enumerate(lanes):
        y = float(-row)
        colour = _LANE_COLOURS[lane_of[history.branch.thread_id] % len(_LANE_COLOURS)]
        xs = [_x(c, i) for i, c in enumerate(line.checkpoints)]
        for summary, x in zip(line.checkpoints, xs, strict=True):
            position[summary.checkpoint_id] = (x, y)
        if xs:
            ax.plot(xs, [y] * len(xs), color=colour, linewidth=2.2, zorder=1,
                    linestyle="-" if line.is_main else "--")  # fmt: skip
            ax.scatter(
                xs,
                [y] * len(xs),
                s=70,
                c=[_colour(c) for c in line.checkpoints],
                edgecolors="white",
                linewidths=1.2,
                zorder=3,
            )
            max_x = max(max_x, *xs)
        if not line.is_main:
            ax.text(-1.2, y, "fork in thread", ha="right", va="center", fontsize=8, color=colour)
            continue
        label = ("* " if history.is_current else "") + timeline.label(history)
        ax.text(
            -1.2,
            y,
            f"{label}\n{history.branch.thread_id[:8]}",
            ha="right",
            va="center",
            fontsize=9,
            fontweight="bold" if history.is_current else "normal",
            color=colour,
        )

    for row, (history, line) in enumerate(lanes):
        branch = history.branch
        y = float(-row)
        colour = _LANE_COLOURS[lane_of[branch.thread_id] % len(_LANE_COLOURS)]
        start = position.get(line.parent_checkpoint_id or "")
        if start is not None and line.checkpoints:
            end = position[line.checkpoints[0].checkpoint_id]
            ax.add_patch(
                FancyArrowPatch(
                    start,
                    end,
                    connectionstyle="arc3,rad=0.25",
                    arrowstyle="-|>",
                    mutation_scale=10,
                    color=colour,
                    linewidth=1.6,
                    zorder=2,
                )
            )
        head = history.head
        if line.is_main and head is not None and history.last_message:
            head_x = position.get(head.checkpoint_id, start or (0.0, y))[0]
            text = history.last_message
            if len(text) > message_width:
                text = text[: message_width - 1] + "…"
            ax.text(head_x + 0.5, y, text, va="center", fontsize=8, color="#444444")
            if history.is_current:
                ax.scatter([head_x], [y], s=220, facecolors="none", edgecolors="black", zorder=4)

    for checkpoint_id, names in tagged.items():
        if checkpoint_id in position:
            x, y = position[checkpoint_id]
            ax.annotate(
                ", ".join(sorted(names)),
                (x, y),
                xytext=(x, y + 0.38),
                ha="center",
                fontsize=8,
                color="#1f6f8b",
                fontweight="bold",
                arrowprops={"arrowstyle": "-", "color": "#1f6f8b"},
            )

    legend = [
        Line2D([], [], marker="o", linestyle="", color=colour, label=name)
        for name, colour in NODE_COLOURS.items()
        if name in ("input", "__start__", "agent", "tools")
    ]
    ax.legend(
        handles=legend,
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncol=len(legend),
        frameon=False,
        fontsize=8,
    )
    s = timeline.session
    ax.set_title(
        title or f"{s.name or s.id}: {s.branch_count} branches, {s.total_checkpoints} checkpoints",
        fontsize=11,
        loc="left",
    )
    ax.set_xlim(-5.5, max_x + 0.55 * message_width / 4 + 2)
    ax.set_ylim(-len(lanes) + 0.4, 0.9)
    ax.set_xlabel("step")
    last = int(max_x)
    ax.set_xticks(range(-1, last + 1, max(1, (last + 2) // 12)))
    ax.set_yticks([])
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    figure.tight_layout()
    return figure


def timeline_image(
    timeline: Timeline, image_format: Literal["png", "svg"] = "png", *, dpi: int = 110
) -> bytes:
    """The drawing as PNG or SVG bytes (for ``IPython.display.Image`` / ``SVG``, or a file)."""
    buffer = io.BytesIO()
    draw_timeline(timeline).savefig(buffer, format=image_format, dpi=dpi)
    return buffer.getvalue()
