"""Undoing what an agent did: the effect log and rollbacks that reverse tool side effects.

Register an undo handler per tool on the :class:`~langgraph_agentgit.SessionManager`;
``plan_rollback`` shows what a rollback would abandon and ``rollback(...,
undo_effects=True)`` reverses it, newest first, each effect at most once ever::

    def cancel_order(effect):                 # effect.args, effect.result, effect.artifact
        shop.cancel(effect.args["order_id"])

    mgr = SessionManager(saver, undo={"create_order": cancel_order})
    print(mgr.plan_rollback(s.id, "before-orders").effects)
    result = mgr.rollback(s.id, "before-orders", undo_effects=True)
    result.raise_for_failures()

The log is derived from the checkpointed messages (:mod:`.log`); what was undone is
recorded in two tables (:mod:`.store`); handlers run outside any transaction (:mod:`.undo`).
"""

from __future__ import annotations

from langgraph_agentgit.effects.models import (
    KINDS,
    Effect,
    EffectOutcome,
    EffectRecord,
    OnError,
    OutcomeStatus,
    PlannedEffect,
    PlanStatus,
    RollbackPlan,
    RollbackResult,
    UndoHandler,
    UndoKind,
    UndoRun,
)

__all__ = [
    "KINDS",
    "Effect",
    "EffectOutcome",
    "EffectRecord",
    "OnError",
    "OutcomeStatus",
    "PlanStatus",
    "PlannedEffect",
    "RollbackPlan",
    "RollbackResult",
    "UndoHandler",
    "UndoKind",
    "UndoRun",
]
