"""The views layer: how sessions, branches, checkpoints, timelines and diffs are shown,
in one place for the CLI, the web viewer (``agentgit serve``) and notebooks.

- :mod:`~langgraph_agentgit.views.text`: one message-preview rule, one id-abbreviation
  rule;
- :mod:`~langgraph_agentgit.views.tree`: one walk of a session's branch tree;
- :mod:`~langgraph_agentgit.views.build`: the versioned JSON shapes
  (:data:`SCHEMA_VERSION`, documented in ``docs/views-schema.md``);
- :mod:`~langgraph_agentgit.views.svg`: the branch timeline as SVG (imported on its own:
  it needs the timeline classes).

Nothing heavy is imported here, so that the CLI starts quickly.
"""

from __future__ import annotations

from langgraph_agentgit.views.build import (
    SCHEMA_VERSION,
    branch_view,
    checkpoint_detail_view,
    checkpoint_preview,
    checkpoint_view,
    diff_view,
    message_view,
    session_preview,
    session_view,
    summary_view,
    timeline_view,
    turn_view,
    versioned,
)
from langgraph_agentgit.views.text import MIN_ABBREV, abbreviations, message_preview
from langgraph_agentgit.views.tree import branch_children, walk_branches

__all__ = [
    "MIN_ABBREV",
    "SCHEMA_VERSION",
    "abbreviations",
    "branch_children",
    "branch_view",
    "checkpoint_detail_view",
    "checkpoint_preview",
    "checkpoint_view",
    "diff_view",
    "message_preview",
    "message_view",
    "session_preview",
    "session_view",
    "summary_view",
    "timeline_view",
    "turn_view",
    "versioned",
    "walk_branches",
]
