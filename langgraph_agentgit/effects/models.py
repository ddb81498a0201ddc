"""The records of the effect log and of rollbacks that undo effects. Plain frozen
dataclasses: no database access."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from langchain_core.messages import ToolMessage

from langgraph_agentgit.errors import UndoFailedError
from langgraph_agentgit.sessions.models import Branch

#: How an effect can be taken back: ``"reversible"`` (the handler reverses it: cancel
#: an order), ``"compensable"`` (a new action makes up for it: a refund for a payment) —
#: both are run by a rollback — or ``"irreversible"`` (never run; the plan says so).
UndoKind: TypeAlias = Literal["reversible", "compensable", "irreversible"]
KINDS: tuple[str, ...] = ("reversible", "compensable", "irreversible")

#: What a failing handler does to the rest of a rollback's undo: ``"stop"`` (the older
#: effects are not run; ``resume_undo`` continues later) or ``"continue"``.
OnError: TypeAlias = Literal["stop", "continue"]

#: An effect's status in a plan (:class:`PlannedEffect`):
#:
#: * ``"will_undo"``: it has a handler that a rollback runs (also after an earlier
#:   attempt failed: ``last_error`` says so);
#: * ``"no_handler"``: no handler is registered for the tool;
#: * ``"irreversible"``: its handler's kind is ``"irreversible"``;
#: * ``"tool_error"``: the call itself failed (its ``ToolMessage`` has status ``"error"``),
#:   so there is nothing to undo;
#: * ``"undone"``: an earlier rollback undid it;
#: * ``"in_progress"``: another rollback holds it (running now, or died mid-way:
#:   ``resume_undo`` finishes it).
PlanStatus: TypeAlias = Literal[
    "will_undo", "no_handler", "irreversible", "tool_error", "undone", "in_progress"
]

#: What a rollback did with an effect (:class:`EffectOutcome`):
#:
#: * ``"undone"``: its handler ran and returned;
#: * ``"failed"``: its handler raised (``error`` has the exception);
#: * ``"not_run"``: the rollback stopped at an earlier failure (``on_error="stop"``)
#:   before getting to it; ``resume_undo`` runs it;
#: * ``"running"``: (``resume_undo`` only) its handler was started by a process on this
#:   host that is still alive (it holds the effect; ``reason`` names it): never run again
#:   from here;
#: * ``"in_doubt"``: (``resume_undo`` only) its handler was started by a process that did
#:   not report back and has exited, or that ran on another host (whether it still runs
#:   cannot be checked; ``reason`` says which); it is run again only with
#:   ``rerun_in_doubt=True``;
#: * ``"skipped"``: not run on purpose; ``reason`` is its plan status (``"no_handler"``,
#:   ``"irreversible"``, ``"tool_error"``, ``"undone"``, ``"in_progress"``).
OutcomeStatus: TypeAlias = Literal["undone", "failed", "not_run", "running", "in_doubt", "skipped"]


@dataclass(frozen=True)
class Effect:
    """One tool call a branch made, as the checkpoints recorded it.

    Derived from the checkpointed messages: each ``ToolMessage`` (the tool's real result)
    joined with the ``AIMessage.tool_calls`` entry it answers (the arguments).

    Attributes:
        effect_id: a stable identity: the ``ToolMessage``'s id (``add_messages`` gives
            every message one), else ``"<checkpoint id>:<position>"``: the first
            checkpoint holding the message and its index in that state's message list
            (tool call ids may repeat, so they do not identify a call). The same effect
            seen from several branches (one inherits the other) has one id.
        tool_name: the tool's name.
        tool_call_id: the id of the call in the ``AIMessage``.
        args: the call's arguments.
        result: the ``ToolMessage``'s content (what the tool returned).
        artifact: the ``ToolMessage``'s artifact (tools with
            ``response_format="content_and_artifact"``), else ``None``.
        tool_status: the ``ToolMessage``'s status: ``"success"`` or ``"error"``.
        checkpoint_id: the first checkpoint whose state holds the result.
        message: the ``ToolMessage`` itself.
    """

    effect_id: str
    tool_name: str
    tool_call_id: str | None
    args: dict[str, Any]
    result: Any
    artifact: Any
    tool_status: str
    checkpoint_id: str
    message: ToolMessage = field(repr=False, compare=False)


#: An undo handler: called with the :class:`Effect` to take back; sync or async. Its
#: return value is ignored; raising marks the undo failed.
UndoHandler: TypeAlias = Callable[[Effect], Any] | Callable[[Effect], Awaitable[Any]]


@dataclass(frozen=True)
class PlannedEffect:
    """An effect in a rollback plan, with what a rollback would do with it.

    Attributes:
        effect: the effect.
        status: see :data:`PlanStatus`.
        kind: the registered handler's kind, ``None`` without a handler.
        last_error: the error of an earlier failed undo, if any.
        undone_by: the id of the rollback (undo run) that holds or undid it, if any.
    """

    effect: Effect
    status: PlanStatus
    kind: UndoKind | None
    last_error: str | None = None
    undone_by: str | None = None


@dataclass(frozen=True)
class RollbackPlan:
    """The effects a rollback would abandon: the tool calls in the current branch's
    history after its common ancestor with the target, newest first.

    Attributes:
        session_id: the session.
        source_thread_id: the branch being left (the session's current branch).
        head_checkpoint_id: its newest checkpoint (``None`` if it has none).
        target_checkpoint_id: the checkpoint the rollback goes back to.
        base_checkpoint_id: the nearest checkpoint both share (``None`` if none): effects
            at or before it are kept, whatever the plan says.
        effects: the abandoned effects, newest first.
    """

    session_id: str
    source_thread_id: str
    head_checkpoint_id: str | None
    target_checkpoint_id: str
    base_checkpoint_id: str | None
    effects: tuple[PlannedEffect, ...]

    @property
    def to_undo(self) -> tuple[PlannedEffect, ...]:
        """The effects a rollback would run a handler for, newest first."""
        return tuple(p for p in self.effects if p.status == "will_undo")


@dataclass(frozen=True)
class EffectOutcome:
    """What a rollback (or a resume) did with one effect of its plan.

    Attributes:
        effect: the effect.
        status: see :data:`OutcomeStatus`.
        kind: the handler's kind, ``None`` without a handler.
        reason: for ``"skipped"``, the plan status that kept it from running; for
            ``"running"`` and ``"in_doubt"``, which process started it and why.
        error: for ``"failed"``, ``"<ExceptionType>: <message>"`` of what the handler
            raised (also recorded in the database).
    """

    effect: Effect
    status: OutcomeStatus
    kind: UndoKind | None = None
    reason: str | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        if self.status == "skipped" and not self.reason:
            raise ValueError("a skipped effect outcome carries the reason it was skipped")


@dataclass(frozen=True)
class RollbackResult:
    """What ``SessionManager.rollback(..., undo_effects=True)`` and ``resume_undo`` did.

    Attributes:
        run_id: the id of this undo run (``resume_undo(session_id, run_id=...)`` takes it).
        session_id: the session.
        branch: the branch the rollback opened (now current); ``None`` only from
            ``resume_undo`` when that branch was deleted since.
        branch_thread_id: its thread id.
        source_thread_id: the branch that was left, whose effects were undone.
        outcomes: one per abandoned effect, newest first (the order handlers ran in).
        complete: every effect this run was responsible for is undone (none failed, none
            left to run, none still running elsewhere, none in doubt). Effects skipped on
            purpose do not count.
    """

    run_id: str
    session_id: str
    branch: Branch | None
    branch_thread_id: str
    source_thread_id: str
    outcomes: tuple[EffectOutcome, ...]

    def _with(self, status: str) -> tuple[EffectOutcome, ...]:
        return tuple(o for o in self.outcomes if o.status == status)

    @property
    def undone(self) -> tuple[EffectOutcome, ...]:
        """Effects whose handler ran and returned in this run."""
        return self._with("undone")

    @property
    def failed(self) -> tuple[EffectOutcome, ...]:
        """Effects whose handler raised."""
        return self._with("failed")

    @property
    def not_run(self) -> tuple[EffectOutcome, ...]:
        """Effects left for later after a failure stopped the run."""
        return self._with("not_run")

    @property
    def running(self) -> tuple[EffectOutcome, ...]:
        """Effects whose handler a live process on this host is running (``resume_undo``
        only)."""
        return self._with("running")

    @property
    def in_doubt(self) -> tuple[EffectOutcome, ...]:
        """Effects a process started and never reported, which has exited or ran on
        another host (``resume_undo`` only)."""
        return self._with("in_doubt")

    @property
    def skipped(self) -> tuple[EffectOutcome, ...]:
        """Effects not run on purpose (no handler, irreversible, already undone, ...)."""
        return self._with("skipped")

    @property
    def complete(self) -> bool:
        return not (self.failed or self.not_run or self.running or self.in_doubt)

    def raise_for_failures(self) -> None:
        """Raise :class:`UndoFailedError` unless :attr:`complete`."""
        if self.complete:
            return
        parts = [
            f"{o.effect.tool_name} {o.effect.effect_id}: {o.status}"
            + (f" ({o.error})" if o.error else "")
            for o in self.outcomes
            if o.status in ("failed", "not_run", "running", "in_doubt")
        ]
        raise UndoFailedError(
            f"undo run {self.run_id} of session {self.session_id!r} is incomplete: "
            + "; ".join(parts),
            self,
        )


@dataclass(frozen=True)
class UndoRun:
    """A rollback made with ``undo_effects=True``, as recorded.

    Attributes:
        run_id: its id.
        session_id: the session.
        source_thread_id: the branch it left (whose effects it undid).
        head_checkpoint_id: that branch's head when it was left.
        base_checkpoint_id: the common ancestor with the target (effects after it, up to
            the head, were the ones abandoned).
        target_checkpoint_id: the checkpoint it went back to.
        branch_thread_id: the branch it opened.
        on_error: ``"stop"`` or ``"continue"``.
        status: ``"running"`` (handlers running, or the process died), ``"done"``, or
            ``"incomplete"`` (a handler failed or an effect is in doubt);
            ``resume_undo`` continues ``"running"`` and ``"incomplete"`` runs.
        created_at: when it started (UTC ISO-8601 text).
        finished_at: when it last ended (``None`` while running).
    """

    run_id: str
    session_id: str
    source_thread_id: str
    head_checkpoint_id: str
    base_checkpoint_id: str | None
    target_checkpoint_id: str
    branch_thread_id: str
    on_error: str
    status: str
    created_at: str
    finished_at: str | None


@dataclass(frozen=True)
class EffectRecord:
    """An effect some rollback claimed, as recorded (no messages decoded).

    Attributes:
        effect_id: the effect's id (see :class:`Effect`).
        run_id: the undo run that holds or undid it.
        thread_id: the branch that run left.
        checkpoint_id: the first checkpoint holding the tool's result.
        tool_call_id: the call's id.
        tool_name: the tool.
        kind: the handler's kind.
        status: ``"pending"``, ``"running"``, ``"done"`` or ``"failed"``.
        attempts: handler calls started.
        error: the last failure.
        updated_at: last change (UTC ISO-8601 text).
    """

    effect_id: str
    run_id: str
    thread_id: str
    checkpoint_id: str
    tool_call_id: str | None
    tool_name: str
    kind: str
    status: str
    attempts: int
    error: str | None
    updated_at: str
