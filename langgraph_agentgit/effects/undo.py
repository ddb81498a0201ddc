"""Running undo handlers: the registry of handlers by tool name, and the loop that runs
a started undo run's handlers newest first, recording each step in its own short write
transaction (see :mod:`langgraph_agentgit.effects.store`). Handlers always run outside
any database transaction, so they may take their time and do network I/O."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Mapping
from typing import Any

from langgraph_agentgit.effects import store as effect_ops
from langgraph_agentgit.effects.models import (
    KINDS,
    EffectOutcome,
    RollbackResult,
    UndoHandler,
    UndoKind,
)
from langgraph_agentgit.saver_base import AgentGitSaverBase


class UndoRegistry:
    """Undo handlers by tool name, each with its kind."""

    def __init__(self) -> None:
        self._handlers: dict[str, tuple[UndoHandler, UndoKind]] = {}

    def register(self, name: str, handler: UndoHandler | None, kind: str = "reversible") -> None:
        """Register ``handler`` for the tool ``name`` (replacing any earlier one).

        Raises ``ValueError`` for an unknown ``kind`` and ``TypeError`` when ``handler``
        is not callable (``None`` is allowed for ``"irreversible"`` only)."""
        if kind not in KINDS:
            raise ValueError(f"undo kind must be one of {', '.join(KINDS)}; got {kind!r}")
        if not isinstance(name, str) or not name:
            raise ValueError("an undo handler is registered under a tool's name")
        if handler is None and kind != "irreversible":
            raise TypeError(f"undo handler for {name!r} is None; only irreversible tools may")
        if handler is not None and not callable(handler):
            raise TypeError(f"undo handler for {name!r} is not callable")
        self._handlers[name] = (handler, kind)  # type: ignore[assignment]

    def kinds(self) -> dict[str, UndoKind]:
        return {name: kind for name, (_, kind) in self._handlers.items()}

    def handler(self, name: str) -> UndoHandler | None:
        entry = self._handlers.get(name)
        return entry[0] if entry is not None else None

    @classmethod
    def of(cls, handlers: Mapping[str, Any] | None) -> UndoRegistry:
        """From ``{tool name: handler}`` (kind ``reversible``) or ``{tool name: (handler,
        kind)}``."""
        registry = cls()
        if handlers is None:
            return registry
        if not isinstance(handlers, Mapping):
            raise TypeError(
                "undo handlers must be a mapping of tool names to handlers "
                f"({{'create_order': cancel_order}}), not {type(handlers).__name__}"
            )
        for name, value in handlers.items():
            if isinstance(value, tuple):
                if len(value) not in (1, 2):
                    raise TypeError(
                        f"undo handler for {name!r} must be a callable or a (handler, kind) "
                        f"pair, not a tuple of {len(value)}"
                    )
                registry.register(name, *value)
            else:
                registry.register(name, value)
        return registry


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _skip(planned: effect_ops.PlannedEffect) -> EffectOutcome:
    # An effect planned to undo that this run could not claim is held by another run.
    reason = "in_progress" if planned.status == "will_undo" else planned.status
    return EffectOutcome(planned.effect, "skipped", planned.kind, reason=reason)


def _call_sync(handler: UndoHandler, effect: Any) -> None:
    result = handler(effect)
    if inspect.isawaitable(result):
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(_await(result))
            return
        # A sync rollback called on an event loop's thread cannot wait for a coroutine.
        close = getattr(result, "close", None)
        if close is not None:
            close()
        raise RuntimeError(
            "an async undo handler needs arollback()/aresume_undo() when called from a "
            "running event loop"
        )


async def _await(value: Any) -> Any:
    return await value


def run_started(
    saver: AgentGitSaverBase,
    registry: UndoRegistry,
    started: effect_ops.Started,
    on_error: str,
) -> RollbackResult:
    """Run the handlers of ``started`` newest first (blocking)."""
    outcomes: list[EffectOutcome] = []
    stopped = False
    session_id = started.run.session_id
    run_id = started.run.run_id
    for planned in started.plan:
        effect_id = planned.effect.effect_id
        decided, stopped = _decide(started, planned, stopped, on_error)
        if decided == "not_owned":
            outcomes.append(_skip(_current(saver, planned, session_id)))
            continue
        if isinstance(decided, EffectOutcome):
            outcomes.append(decided)
            continue
        from_status = started.owned[effect_id]
        claim = saver._write(
            effect_ops.start_effect, saver.store, session_id, effect_id, run_id, from_status
        )
        if claim is None:
            outcomes.append(_skip(_current(saver, planned, session_id)))
            continue
        handler = registry.handler(planned.effect.tool_name)
        try:
            if handler is None:
                raise LookupError(f"no undo handler is registered for {planned.effect.tool_name!r}")
            _call_sync(handler, planned.effect)
        except Exception as exc:
            error = _error_text(exc)
            saver._write(
                effect_ops.finish_effect, saver.store, session_id, effect_id, run_id, error
            )
            outcomes.append(EffectOutcome(planned.effect, "failed", planned.kind, error=error))
            stopped = stopped or on_error == "stop"
            continue
        saver._write(effect_ops.finish_effect, saver.store, session_id, effect_id, run_id, None)
        outcomes.append(EffectOutcome(planned.effect, "undone", planned.kind))
    result = _result(started, outcomes)
    saver._write(effect_ops.finish_run, saver.store, run_id, result.complete)
    return result


async def arun_started(
    saver: AgentGitSaverBase,
    registry: UndoRegistry,
    started: effect_ops.Started,
    on_error: str,
) -> RollbackResult:
    """Async twin of :func:`run_started`: async handlers are awaited, sync ones run in a
    worker thread."""
    outcomes: list[EffectOutcome] = []
    stopped = False
    session_id = started.run.session_id
    run_id = started.run.run_id
    for planned in started.plan:
        effect_id = planned.effect.effect_id
        decided, stopped = _decide(started, planned, stopped, on_error)
        if decided == "not_owned":
            outcomes.append(_skip(await _acurrent(saver, planned, session_id)))
            continue
        if isinstance(decided, EffectOutcome):
            outcomes.append(decided)
            continue
        from_status = started.owned[effect_id]
        claim = await saver._awrite(
            effect_ops.start_effect, saver.store, session_id, effect_id, run_id, from_status
        )
        if claim is None:
            outcomes.append(_skip(await _acurrent(saver, planned, session_id)))
            continue
        handler = registry.handler(planned.effect.tool_name)
        try:
            if handler is None:
                raise LookupError(f"no undo handler is registered for {planned.effect.tool_name!r}")
            if inspect.iscoroutinefunction(handler):
                await handler(planned.effect)
            else:
                value = await asyncio.to_thread(handler, planned.effect)
                if inspect.isawaitable(value):
                    await value
        except Exception as exc:
            error = _error_text(exc)
            await saver._awrite(
                effect_ops.finish_effect, saver.store, session_id, effect_id, run_id, error
            )
            outcomes.append(EffectOutcome(planned.effect, "failed", planned.kind, error=error))
            stopped = stopped or on_error == "stop"
            continue
        await saver._awrite(
            effect_ops.finish_effect, saver.store, session_id, effect_id, run_id, None
        )
        outcomes.append(EffectOutcome(planned.effect, "undone", planned.kind))
    result = _result(started, outcomes)
    await saver._awrite(effect_ops.finish_run, saver.store, run_id, result.complete)
    return result


def _decide(
    started: effect_ops.Started,
    planned: effect_ops.PlannedEffect,
    stopped: bool,
    on_error: str,
) -> tuple[EffectOutcome | str | None, bool]:
    """What the run does with one planned effect before any I/O, shared by the sync and
    async loops: an outcome decided already (another process is running it, it is in
    doubt, or an earlier failure stopped the run), ``"not_owned"`` (the run did not claim
    it: report its current status), or None (claim and run its handler). Also returns
    whether the run is stopped from here on."""
    effect_id = planned.effect.effect_id
    if effect_id in started.running:
        reason = started.running[effect_id]
        return EffectOutcome(planned.effect, "running", planned.kind, reason=reason), stopped
    if effect_id in started.in_doubt:
        reason = started.in_doubt[effect_id]
        outcome = EffectOutcome(planned.effect, "in_doubt", planned.kind, reason=reason)
        return outcome, stopped or on_error == "stop"
    if effect_id not in started.owned:
        return "not_owned", stopped
    if stopped:
        return EffectOutcome(planned.effect, "not_run", planned.kind), stopped
    return None, stopped


def _current(
    saver: AgentGitSaverBase, planned: effect_ops.PlannedEffect, session_id: str
) -> effect_ops.PlannedEffect:
    """``planned`` with the status its claim has now (another run may have taken it)."""
    if planned.status not in ("will_undo", "in_progress"):
        return planned
    claim = saver._read(effect_ops.claim_of, saver.store, session_id, planned.effect.effect_id)
    return _restated(planned, claim)


async def _acurrent(
    saver: AgentGitSaverBase, planned: effect_ops.PlannedEffect, session_id: str
) -> effect_ops.PlannedEffect:
    if planned.status not in ("will_undo", "in_progress"):
        return planned
    claim = await saver._aread(
        effect_ops.claim_of, saver.store, session_id, planned.effect.effect_id
    )
    return _restated(planned, claim)


def _restated(
    planned: effect_ops.PlannedEffect, claim: effect_ops.EffectRecord | None
) -> effect_ops.PlannedEffect:
    kinds = {planned.effect.tool_name: planned.kind} if planned.kind is not None else {}
    status, kind = effect_ops.status_of(planned.effect, kinds, claim)
    return effect_ops.PlannedEffect(
        planned.effect,
        status,
        kind,
        last_error=claim.error if claim is not None else None,
        undone_by=claim.run_id if claim is not None else None,
    )


def _result(started: effect_ops.Started, outcomes: list[EffectOutcome]) -> RollbackResult:
    return RollbackResult(
        run_id=started.run.run_id,
        session_id=started.run.session_id,
        branch=started.branch,
        branch_thread_id=started.run.branch_thread_id,
        source_thread_id=started.run.source_thread_id,
        outcomes=tuple(outcomes),
    )
