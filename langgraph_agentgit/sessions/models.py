"""The records the session manager returns. Plain frozen dataclasses: no database access.

An *external session* is the conversation a user sees. It is made of *internal sessions*
— LangGraph threads, called branches here. The first one is created with the session (or
adopted); every rollback or branch adds one, forked copy-on-write at a checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from langchain_core.runnables import RunnableConfig


@dataclass(frozen=True)
class Branch:
    """One internal session (a LangGraph thread) of an external session.

    Attributes:
        thread_id: the LangGraph thread id.
        session_id: the external session it belongs to.
        parent_thread_id: the thread it was forked from; ``None`` for the session's first
            thread, which is not a branch. Kept after the parent thread is deleted.
        fork_checkpoint_id: the checkpoint it was forked at (``None`` for the first thread).
        name: its name, unique in the session, accepted wherever a thread id is: the one
            given to :meth:`SessionManager.branch` / ``rollback``, else ``main`` for the
            session's first thread and ``branch-<n>`` for the others.
        created_at: when the branch was made (UTC).
        checkpoint_count: root-namespace checkpoints written into this thread itself;
            inherited ones are not counted.

    Run the graph on the branch with ``graph.invoke(inputs, branch.config)``.
    """

    thread_id: str
    session_id: str
    parent_thread_id: str | None
    fork_checkpoint_id: str | None
    name: str | None
    created_at: datetime
    checkpoint_count: int

    @property
    def config(self) -> RunnableConfig:
        """``{"configurable": {"thread_id": ...}}``: addresses the branch head."""
        return {"configurable": {"thread_id": self.thread_id}}

    @property
    def is_branch(self) -> bool:
        """False for the session's first thread, True for one made by a rollback/branch."""
        return self.fork_checkpoint_id is not None


@dataclass(frozen=True)
class ExternalSession:
    """A user-visible conversation: a set of branches, one of which is current.

    Attributes:
        id: the session id.
        user_id: optional owner, for :meth:`SessionManager.list_sessions` filtering.
        name: a label.
        created_at: creation time (UTC).
        updated_at: last activity (UTC): any change to the session, and any checkpoint
            written into one of its threads.
        is_active: False after :meth:`SessionManager.deactivate`.
        metadata: free-form JSON object.
        internal_session_ids: thread ids of its branches, oldest first; the first one is
            the session's first thread.
        current_thread_id: the thread :meth:`SessionManager.config` addresses.
        branch_count: branches made by rollback/branch that the session still has. The
            first internal session is not a branch, so a new session has 0.
        total_checkpoints: root-namespace checkpoints written into the session's threads.
            A checkpoint a branch inherits from its parent is counted once, in the parent.
        ended_at: when :meth:`SessionManager.end_session` ended it (UTC), ``None`` while
            it is open.
        end_reason: the reason given to ``end_session`` (``"retired"`` for a session
            retired by ``max_sessions_per_user``), ``None`` while it is open.
    """

    id: str
    user_id: str | None
    name: str
    created_at: datetime
    updated_at: datetime
    is_active: bool
    metadata: dict[str, Any] = field(hash=False)
    internal_session_ids: tuple[str, ...]
    current_thread_id: str
    branch_count: int
    total_checkpoints: int
    ended_at: datetime | None = None
    end_reason: str | None = None

    @property
    def config(self) -> RunnableConfig:
        """The config of the current thread (as :meth:`SessionManager.config` returns)."""
        return {"configurable": {"thread_id": self.current_thread_id}}

    @property
    def is_ended(self) -> bool:
        """Ended by :meth:`SessionManager.end_session` and not reopened since."""
        return self.ended_at is not None


@dataclass(frozen=True)
class TokenUsage:
    """Tokens counted by the model, summed from ``AIMessage.usage_metadata``.

    Messages without ``usage_metadata`` (a model that does not report it) add nothing, so
    zeros mean "not reported" as much as "none used"."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.total_tokens + other.total_tokens,
        )


@dataclass(frozen=True)
class SearchHit:
    """One message found by :meth:`SessionManager.search`.

    Attributes:
        session_id: the session of the branch (``None`` for a thread outside sessions).
        thread_id: the branch thread that wrote the message. A message branches share
            (one inherits it from its parent up to the fork point) is one hit, on the
            thread that wrote it; if that thread was deleted while a branch still
            inherits the message, on that branch.
        checkpoint_id: the checkpoint (root namespace) where the message first appeared.
        message_id: the message's ``id`` (``None`` if it has none).
        role: the message's type: ``"human"``, ``"ai"``, ``"tool"``, ``"system"``...
        snippet: one line of its text around the first match (at most about 160
            characters), each matching word between ``>>>`` and ``<<<``.
        rank: relevance, higher is better; comparable between hits of one search only
            (SQLite: minus FTS5's bm25; PostgreSQL: ``ts_rank``).
        message: the message itself.
    """

    session_id: str | None
    thread_id: str
    checkpoint_id: str
    message_id: str | None
    role: str
    snippet: str
    rank: float
    message: Any = field(repr=False, compare=False, default=None)

    def to_dict(self) -> dict[str, Any]:
        """The hit as JSON-ready values (without the message object)."""
        return {
            "session_id": self.session_id,
            "thread_id": self.thread_id,
            "checkpoint_id": self.checkpoint_id,
            "message_id": self.message_id,
            "role": self.role,
            "snippet": self.snippet,
            "rank": self.rank,
        }


@dataclass(frozen=True)
class Usage:
    """What a session or one of its branches holds, counted (:meth:`SessionManager.usage`).

    Counted over every message of the history, each once: a branch counts its own
    messages and those it inherits up to its fork point; a session counts the messages
    of all its branches, a prefix they share once. A message is known by its id and
    content (a message edited in place under the same id counts again). OpenAI's
    ``AdvancedSQLiteSession`` usage tracking, per branch.

    Attributes:
        session_id: the session.
        thread_id: the branch (``None``: the whole session).
        turns: checkpoints where human messages first appeared (as
            :meth:`SessionManager.turns` numbers them: a message edited in place, same
            id and new text, is not a new turn).
        messages: messages of every type (an edited message's texts each count).
        tool_calls: tool name -> calls made by ``AIMessage.tool_calls``.
        tokens: summed ``AIMessage.usage_metadata``.
    """

    session_id: str
    thread_id: str | None
    turns: int = 0
    messages: int = 0
    tool_calls: dict[str, int] = field(default_factory=dict)
    tokens: TokenUsage = field(default_factory=lambda: TokenUsage())

    def to_dict(self) -> dict[str, Any]:
        """The counts as JSON-ready values."""
        return {
            "session_id": self.session_id,
            "thread_id": self.thread_id,
            "turns": self.turns,
            "messages": self.messages,
            "tool_calls": dict(self.tool_calls),
            "input_tokens": self.tokens.input_tokens,
            "output_tokens": self.tokens.output_tokens,
            "total_tokens": self.tokens.total_tokens,
        }


@dataclass(frozen=True)
class Turn:
    """One conversation turn on a branch (:meth:`SessionManager.turns`).

    A turn starts where one or more human messages (``HumanMessage``) are appended to
    the ``messages`` channel: at the first checkpoint of the branch's history (its own
    checkpoints and the ones it inherits, followed from its head along parent links)
    whose ``messages`` hold a human message (compared by id) its parent's did not. It
    lasts until the next turn starts.

    Attributes:
        number: 1 for the first turn of the history, counted along the whole lineage: a
            branch of a branch numbers the turns it inherits as its parents do.
        thread_id: the branch the turns were read on.
        before_checkpoint_id: the checkpoint the turn was run from: the last checkpoint
            of the previous turn (the parent of the turn's input checkpoint).
            ``None`` for a turn that starts the thread.
        start_checkpoint_id: the turn's first checkpoint: the input checkpoint
            (``source="input"``) when the message came as graph input, else the
            checkpoint that first holds it (``update_state``).
        end_checkpoint_id: the turn's last checkpoint: the branch head for the last
            turn, else the checkpoint the next turn was run from.
        user_message: the (first) human message that started the turn.
        messages: the turn's messages as they are at its end, the user's first.
        tool_calls: every tool call the AI messages of the turn made, in order, as
            ``{"name", "args", "id"}``.
        usage: the tokens its AI messages report (``usage_metadata``).
        inherited: the turn started before the branch was forked (a checkpoint the
            branch inherits rather than wrote).
    """

    number: int
    thread_id: str
    before_checkpoint_id: str | None
    start_checkpoint_id: str
    end_checkpoint_id: str
    user_message: Any
    messages: tuple[Any, ...]
    tool_calls: tuple[dict[str, Any], ...]
    usage: TokenUsage
    inherited: bool

    @property
    def text(self) -> str:
        """The user message's text."""
        return str(getattr(self.user_message, "text", self.user_message.content))


@dataclass(frozen=True)
class SessionEvent:
    """What a :meth:`SessionManager.on` callback receives, after the change committed.

    Attributes:
        kind: ``"create"``, ``"branch"``, ``"rollback"``, ``"checkout"``, ``"tag"`` or
            ``"delete"``.
        session_id: the session.
        user_id: its owner.
        source_thread_id: the thread the change started from: the parent of a new
            branch (``branch``/``rollback``), the branch that was current before a
            ``checkout``, the thread a tagged checkpoint was found in, the deleted
            branch (``delete`` of a branch); ``None`` for ``create`` and for ``delete``
            of a whole session.
        thread_id: the thread the change made or made current: the new branch, the
            branch checked out, the session's first thread (``create``), the branch
            current after a ``delete`` of a branch; ``None`` for ``tag`` and for
            ``delete`` of a whole session.
        checkpoint_id: the fork point of a new branch, the tagged checkpoint; else
            ``None``.
        name: the new branch's name, the tag's name, the session's name (``create``,
            ``delete``); else ``None``.
        thread_ids: for ``delete`` of a whole session, every thread it had; else ``()``.
    """

    kind: str
    session_id: str
    user_id: str | None
    source_thread_id: str | None = None
    thread_id: str | None = None
    checkpoint_id: str | None = None
    name: str | None = None
    thread_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class CheckpointSummary:
    """What a timeline shows of one root-namespace checkpoint.

    Attributes:
        checkpoint_id: the checkpoint id.
        parent_checkpoint_id: the checkpoint it was made from.
        step: LangGraph's ``metadata["step"]`` (-1 for the input checkpoint of a run).
        source: ``metadata["source"]``: ``"input"``, ``"loop"``, ``"update"``, ``"fork"``.
        node: the node(s) whose run produced it, comma-separated, or ``None`` when no node
            ran (input and ``update_state`` checkpoints). Derived from ``versions_seen``:
            LangGraph records, per node, the channel versions each run consumed, so the
            nodes whose entry differs from the parent checkpoint's are the ones that ran.
        created_at: the checkpoint's ``ts``.
    """

    checkpoint_id: str
    parent_checkpoint_id: str | None
    step: int | None
    source: str | None
    node: str | None
    created_at: str | None


@dataclass(frozen=True)
class BranchHistory:
    """One branch as a timeline shows it.

    Attributes:
        branch: the branch.
        checkpoints: its own root-namespace checkpoints, oldest first.
        fork_point: the checkpoint it was forked at (``None`` for the first thread, or
            when that checkpoint is gone).
        head: the newest checkpoint the branch sees (its fork point until it has run).
        last_message: short preview of the head's last message, e.g. ``"ai: Hello"``.
        interrupted: the head has a pending ``interrupt()`` waiting to be resumed.
        is_current: the session's current branch.
    """

    branch: Branch
    checkpoints: tuple[CheckpointSummary, ...]
    fork_point: CheckpointSummary | None
    head: CheckpointSummary | None
    last_message: str | None
    interrupted: bool
    is_current: bool

    @cached_property
    def lines(self) -> tuple[Line, ...]:
        """The branch's own checkpoints as lines of descent (see :func:`branch_lines`):
        the first ends at the head; any other is a fork LangGraph made inside the thread."""
        return branch_lines(self.checkpoints)

    @property
    def in_thread_forks(self) -> int:
        """How many forks LangGraph made inside this branch's thread (a run resumed, or a
        state updated, from an earlier checkpoint of the same thread)."""
        return len(self.lines) - 1 if self.checkpoints else 0


@dataclass(frozen=True)
class Line:
    """A run of a branch's own checkpoints, each the parent of the next.

    Attributes:
        checkpoints: the run, oldest first.
        parent_checkpoint_id: the checkpoint the run continues from (the branch's fork
            point for its first line; ``None`` at the very start of a thread).
        is_main: the line that ends at the branch's head (its newest checkpoint).
    """

    checkpoints: tuple[CheckpointSummary, ...]
    parent_checkpoint_id: str | None
    is_main: bool


def branch_lines(checkpoints: Sequence[CheckpointSummary]) -> tuple[Line, ...]:
    """Split a thread's own checkpoints (oldest first) into lines of descent.

    LangGraph forks *inside* a thread when a run is resumed or a state updated from an
    earlier checkpoint of it (``graph.invoke(None, config_with_checkpoint_id)``, Studio's
    "re-run from here"): the thread's checkpoints then form a tree, not a chain. The
    first line returned runs from the thread's first checkpoint to its head (the newest
    checkpoint); each other line starts at a checkpoint whose parent is on an earlier
    line (or outside the thread) and follows, at every fork, the child with the newest
    descendant. Lines after the first are in the order they start.
    """
    if not checkpoints:
        return ()
    ordered = sorted(checkpoints, key=lambda c: c.checkpoint_id)
    by_id = {c.checkpoint_id: c for c in ordered}
    children: dict[str, list[CheckpointSummary]] = {}
    roots: list[CheckpointSummary] = []
    for c in ordered:
        parent = c.parent_checkpoint_id
        if parent is not None and parent in by_id and parent != c.checkpoint_id:
            children.setdefault(parent, []).append(c)
        else:
            roots.append(c)
    # The newest checkpoint under each one (ids are time-ordered), children first.
    newest: dict[str, str] = {}
    for c in reversed(ordered):
        below = [
            newest.get(k.checkpoint_id, k.checkpoint_id) for k in children.get(c.checkpoint_id, [])
        ]
        newest[c.checkpoint_id] = max([c.checkpoint_id, *below])
    head = ordered[-1].checkpoint_id
    placed: set[str] = set()
    starts: list[tuple[CheckpointSummary, str | None]] = [
        (r, r.parent_checkpoint_id) for r in roots
    ]
    # The line to the head first; a (damaged) cycle of parents, unreachable from any
    # root, is still shown, as lines of its own.
    starts.sort(key=lambda s: (newest[s[0].checkpoint_id] != head, s[0].checkpoint_id))
    lines: list[Line] = []
    queue = list(starts)
    while queue or len(placed) < len(ordered):
        if not queue:
            rest = next(c for c in ordered if c.checkpoint_id not in placed)
            queue.append((rest, rest.parent_checkpoint_id))
        start, parent_id = queue.pop(0)
        if start.checkpoint_id in placed:
            continue
        run: list[CheckpointSummary] = []
        node: CheckpointSummary | None = start
        forks: list[tuple[CheckpointSummary, str | None]] = []
        while node is not None and node.checkpoint_id not in placed:
            placed.add(node.checkpoint_id)
            run.append(node)
            kids = [
                k for k in children.get(node.checkpoint_id, []) if k.checkpoint_id not in placed
            ]
            if not kids:
                break
            follow = max(kids, key=lambda k: newest[k.checkpoint_id])
            forks.extend((k, node.checkpoint_id) for k in kids if k is not follow)
            node = follow
        lines.append(Line(tuple(run), parent_id, is_main=not lines))
        queue.extend(forks)
        queue.sort(key=lambda s: s[0].checkpoint_id)
    return tuple(lines)
