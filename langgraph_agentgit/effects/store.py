"""Undo bookkeeping, each operation a function of an open connection run in one saver
transaction (``saver._read`` / ``_write`` and their async twins), as the session
operations are.

A rollback with ``undo_effects=True`` is three kinds of transaction, and the handlers
run between them, outside any transaction:

1. :func:`start_rollback`: the plan is derived, the branch opened, the run recorded and
   every effect to undo *claimed* (a row in ``agentgit_undone_effects`` with status
   ``pending``, inserted with ``ON CONFLICT DO NOTHING`` on the effect's id) — all
   atomically, under the write lock the session operations take;
2. per effect, :func:`start_effect` (``pending`` → ``running``: exactly one caller can
   make that change) before its handler runs, and :func:`finish_effect` (``done`` or
   ``failed``) after;
3. :func:`finish_run`: the run's status; claims it never started go back.

A crash between 2's two halves leaves the effect ``running``: in doubt, as the handler
may or may not have done its work. :func:`start_effect` records the process that runs the
handler (hostname, pid, start time); :func:`resume_runs` reports an effect whose process is
still alive (same host) as ``running`` and never hands it back, one whose process is gone
as in doubt, and one started on another host as in doubt with that said (whether that
process lives cannot be told from here). In-doubt effects are handed back only when asked.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from langgraph.checkpoint.base import CheckpointTuple

from langgraph_agentgit.effects import log
from langgraph_agentgit.effects.models import (
    Effect,
    EffectRecord,
    PlannedEffect,
    PlanStatus,
    RollbackPlan,
    UndoKind,
    UndoRun,
)
from langgraph_agentgit.errors import CheckpointNotFoundError, UndoRunNotFoundError
from langgraph_agentgit.sessions import store as session_ops
from langgraph_agentgit.sessions.models import Branch
from langgraph_agentgit.storage.backend import Connection
from langgraph_agentgit.storage.checkpoints import CheckpointStore

#: Tool name -> the kind of its registered handler.
Kinds = Mapping[str, UndoKind]


def claims(conn: Connection, store: CheckpointStore, session_id: str) -> dict[str, EffectRecord]:
    """Every claimed effect of the session, by effect id."""
    rows = conn.execute(store.sql.SELECT_EFFECT_CLAIMS, (session_id,)).fetchall()
    return {str(r[0]): _record(r) for r in rows}


def _record(row: Sequence[Any]) -> EffectRecord:
    return EffectRecord(
        effect_id=row[0],
        run_id=row[1],
        thread_id=row[2],
        checkpoint_id=row[3],
        tool_call_id=row[4],
        tool_name=row[5],
        kind=row[6],
        status=row[7],
        attempts=int(row[8]),
        error=row[9],
        updated_at=row[10],
    )


def _run(row: Sequence[Any]) -> UndoRun:
    return UndoRun(*row)


def runs(conn: Connection, store: CheckpointStore, session_id: str) -> list[UndoRun]:
    """The session's undo runs, oldest first."""
    session_ops.require_session(conn, store, session_id)
    return [_run(r) for r in conn.execute(store.sql.SELECT_UNDO_RUNS, (session_id,)).fetchall()]


def status_of(
    effect: Effect, kinds: Kinds, claim: EffectRecord | None
) -> tuple[PlanStatus, UndoKind | None]:
    """An effect's plan status (see :data:`~langgraph_agentgit.effects.PlanStatus`)."""
    kind = kinds.get(effect.tool_name)
    if claim is not None and claim.status == "done":
        return "undone", kind
    if effect.tool_status == "error":
        return "tool_error", kind
    if kind is None:
        return "no_handler", None
    if kind == "irreversible":
        return "irreversible", kind
    if claim is not None and claim.status in ("pending", "running"):
        return "in_progress", kind
    return "will_undo", kind


def _planned(
    effects: Sequence[Effect], kinds: Kinds, held: Mapping[str, EffectRecord]
) -> tuple[PlannedEffect, ...]:
    out = []
    for effect in reversed(effects):  # newest first
        claim = held.get(effect.effect_id)
        status, kind = status_of(effect, kinds, claim)
        out.append(
            PlannedEffect(
                effect=effect,
                status=status,
                kind=kind,
                last_error=claim.error if claim is not None else None,
                undone_by=claim.run_id if claim is not None else None,
            )
        )
    return tuple(out)


def plan(
    conn: Connection,
    store: CheckpointStore,
    session_id: str,
    ref: session_ops.CheckpointRef,
    kinds: Kinds,
) -> RollbackPlan:
    """What ``rollback(session_id, ref)`` would abandon, from the current branch."""
    row = session_ops._session_row(conn, store, session_id)
    current = str(row[7])
    _, target = session_ops.resolve(conn, store, session_id, ref)
    lineage = store.lineage(conn, current)
    head = store.find_row(conn, lineage, "", None) if lineage is not None else None
    if head is None:
        return RollbackPlan(session_id, current, None, target.checkpoint_id, None, ())
    head_chain = log.ancestry(conn, store, head)
    base = log.common_base(head_chain, log.ancestry(conn, store, target))
    effects = log.effects_on_path(
        conn, store, current, head_chain, base[0] if base is not None else None
    )
    return RollbackPlan(
        session_id=session_id,
        source_thread_id=current,
        head_checkpoint_id=head.checkpoint_id,
        target_checkpoint_id=target.checkpoint_id,
        base_checkpoint_id=base[1] if base is not None else None,
        effects=_planned(effects, kinds, claims(conn, store, session_id)),
    )


def branch_effects(
    conn: Connection,
    store: CheckpointStore,
    session_id: str,
    thread_id: str | None,
    kinds: Kinds,
) -> list[PlannedEffect]:
    """Every effect in a branch's history (the current branch by default), newest first,
    with the status a rollback past it would give it."""
    row = session_ops._session_row(conn, store, session_id)
    thread = (
        str(row[7])
        if thread_id is None
        else session_ops._require_branch(conn, store, session_id, thread_id).thread_id
    )
    lineage = store.lineage(conn, thread)
    head = store.find_row(conn, lineage, "", None) if lineage is not None else None
    if head is None:
        return []
    effects = log.effects_on_path(conn, store, thread, log.ancestry(conn, store, head), None)
    return list(_planned(effects, kinds, claims(conn, store, session_id)))


@dataclass(frozen=True)
class Started:
    """What :func:`start_rollback` and :func:`resume_runs` hand the handler loop."""

    run: UndoRun
    branch: Branch | None
    plan: tuple[PlannedEffect, ...]
    #: Effects this run holds and must run, by id; value: the status they must have to
    #: be started (``pending``, or ``running`` for an in-doubt effect run again).
    owned: Mapping[str, str]
    #: Effects this run holds that a process started and never reported back, which is
    #: gone (or runs on another host, so cannot be checked), by id; value: why (not run
    #: again).
    in_doubt: Mapping[str, str]
    #: Effects this run holds whose handler a live process on this host is running now,
    #: by id; value: which process (never run again from here).
    running: Mapping[str, str] = field(default_factory=dict)


def _process_start(pid: int) -> str | None:
    """When process ``pid`` started (Linux: clock ticks since boot from ``/proc``), to
    tell it from a later process given the same pid; ``None`` where unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def this_process() -> str:
    """The owner recorded with a started effect: this host and process, as JSON."""
    pid = os.getpid()
    return json.dumps({"host": socket.gethostname(), "pid": pid, "start": _process_start(pid)})


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    except OSError:
        return False
    return True


def owner_state(owner: str | None) -> tuple[str, str]:
    """``("running", why)`` when the process that started an effect's handler is alive on
    this host, else ``("in_doubt", why)``: it is gone, it ran on another host (whose
    processes cannot be checked from here), or it was not recorded."""
    try:
        found: dict[str, Any] = json.loads(owner) if owner else {}
        host, pid, start = str(found["host"]), int(found["pid"]), found.get("start")
    except (ValueError, TypeError, KeyError):
        return "in_doubt", "the process that started it was not recorded"
    who = f"pid {pid} on {host}"
    if host != socket.gethostname():
        return "in_doubt", f"started by {who}, another host: cannot tell whether it still runs"
    if _pid_alive(pid) and (start is None or _process_start(pid) in (start, None)):
        return "running", f"{who} is running its undo handler now"
    return "in_doubt", f"started by {who}, which has exited without reporting back"


def _claim(
    conn: Connection,
    store: CheckpointStore,
    session_id: str,
    run: UndoRun,
    planned: PlannedEffect,
    ts: str,
) -> bool:
    effect = planned.effect
    inserted = conn.execute(
        store.sql.INSERT_EFFECT_CLAIM,
        (
            session_id,
            effect.effect_id,
            run.run_id,
            run.source_thread_id,
            effect.checkpoint_id,
            effect.tool_call_id,
            effect.tool_name,
            planned.kind or "",
            ts,
        ),
    ).rowcount
    if inserted == 1:
        return True
    taken = conn.execute(
        store.sql.RECLAIM_FAILED_EFFECT, (run.run_id, ts, session_id, effect.effect_id)
    ).rowcount
    return bool(taken == 1)


def start_rollback(
    conn: Connection,
    store: CheckpointStore,
    session_id: str,
    owner: str | None,
    ref: session_ops.CheckpointRef,
    name: str | None,
    thread_id: str | None,
    kinds: Kinds,
    on_error: str,
) -> Started:
    """In one write transaction: plan, open the branch (as ``rollback`` does; ``owner``,
    a scoped manager's user, refuses a ``thread_id`` another user's session holds), record
    the run and claim every effect to undo."""
    found = plan(conn, store, session_id, ref, kinds)
    branch = session_ops.create_branch_for(
        conn, store, session_id, owner, ref, name, thread_id, True
    )
    ts = session_ops.now()
    run = UndoRun(
        run_id=str(uuid.uuid4()),
        session_id=session_id,
        source_thread_id=found.source_thread_id,
        head_checkpoint_id=found.head_checkpoint_id or branch.fork_checkpoint_id or "",
        base_checkpoint_id=found.base_checkpoint_id,
        target_checkpoint_id=found.target_checkpoint_id,
        branch_thread_id=branch.thread_id,
        on_error=on_error,
        status="running",
        created_at=ts,
        finished_at=None,
    )
    owned = {
        p.effect.effect_id: "pending"
        for p in found.to_undo
        if _claim(conn, store, session_id, run, p, ts)
    }
    if not owned:
        run = _replace_status(run, "done", ts)
    conn.execute(
        store.sql.INSERT_UNDO_RUN,
        (
            run.run_id,
            session_id,
            run.source_thread_id,
            run.head_checkpoint_id,
            run.base_checkpoint_id,
            run.target_checkpoint_id,
            run.branch_thread_id,
            on_error,
            run.status,
            ts,
            run.finished_at,
        ),
    )
    return Started(run, branch, found.effects, owned, {})


def _replace_status(run: UndoRun, status: str, ts: str | None) -> UndoRun:
    return replace(run, status=status, finished_at=ts)


def start_effect(
    conn: Connection,
    store: CheckpointStore,
    session_id: str,
    effect_id: str,
    run_id: str,
    from_status: str,
) -> EffectRecord | None:
    """Mark the effect ``running`` for this run; ``None`` if it was taken from under it
    (the current record is then returned by :func:`claim_of`)."""
    changed = conn.execute(
        store.sql.START_EFFECT,
        (session_ops.now(), this_process(), session_id, effect_id, run_id, from_status),
    ).rowcount
    if changed != 1:
        return None
    return claim_of(conn, store, session_id, effect_id)


def claim_of(
    conn: Connection, store: CheckpointStore, session_id: str, effect_id: str
) -> EffectRecord | None:
    row = conn.execute(store.sql.SELECT_EFFECT_CLAIM, (session_id, effect_id)).fetchone()
    return _record(row) if row is not None else None


def finish_effect(
    conn: Connection,
    store: CheckpointStore,
    session_id: str,
    effect_id: str,
    run_id: str,
    error: str | None,
) -> None:
    conn.execute(
        store.sql.FINISH_EFFECT,
        (
            "failed" if error is not None else "done",
            error,
            session_ops.now(),
            session_id,
            effect_id,
            run_id,
        ),
    )


def finish_run(conn: Connection, store: CheckpointStore, run_id: str, complete: bool) -> None:
    """Record how the run ended; claims it never started are released."""
    conn.execute(store.sql.RELEASE_PENDING_EFFECTS, (run_id,))
    conn.execute(
        store.sql.SET_UNDO_RUN_STATUS,
        ("done" if complete else "incomplete", session_ops.now(), run_id),
    )


def resume_runs(
    conn: Connection,
    store: CheckpointStore,
    session_id: str,
    run_id: str | None,
    kinds: Kinds,
    rerun_in_doubt: bool,
) -> list[Started]:
    """The session's unfinished undo runs (``running`` or ``incomplete``; or the one
    named), oldest first, each with its plan derived again from the path it abandoned and
    its effects claimed again: effects it holds that were never started, effects whose
    undo failed, effects no run holds. Effects it holds that a process started and never
    reported are ``running`` while that process lives (same host; never handed back),
    else in doubt: handed back only with ``rerun_in_doubt``."""
    session_ops._session_row(conn, store, session_id)
    all_runs = runs(conn, store, session_id)
    if run_id is not None:
        chosen = [r for r in all_runs if r.run_id == run_id]
        if not chosen:
            raise UndoRunNotFoundError(f"session {session_id!r} has no undo run {run_id!r}")
    else:
        chosen = [r for r in all_runs if r.status in ("running", "incomplete")]
    out = []
    ts = session_ops.now()
    for run in chosen:
        effects = _abandoned(conn, store, run)
        held = claims(conn, store, session_id)
        planned = _planned(effects, kinds, held)
        owned: dict[str, str] = {}
        in_doubt: dict[str, str] = {}
        running: dict[str, str] = {}
        for p in planned:
            claim = held.get(p.effect.effect_id)
            if p.status == "will_undo":
                if _claim(conn, store, session_id, run, p, ts):
                    owned[p.effect.effect_id] = "pending"
            elif p.status == "in_progress" and claim is not None and claim.run_id == run.run_id:
                if claim.status == "pending":
                    owned[p.effect.effect_id] = "pending"
                    continue
                owner = conn.execute(
                    store.sql.SELECT_EFFECT_OWNER, (session_id, p.effect.effect_id)
                ).fetchone()
                state, why = owner_state(owner[0] if owner is not None else None)
                if state == "running":
                    running[p.effect.effect_id] = why
                elif rerun_in_doubt:
                    owned[p.effect.effect_id] = "running"
                else:
                    in_doubt[p.effect.effect_id] = why
        conn.execute(store.sql.SET_UNDO_RUN_STATUS, ("running", None, run.run_id))
        branch_row = conn.execute(
            store.sql.SELECT_BRANCH, (run.branch_thread_id, session_id)
        ).fetchone()
        branch = (
            session_ops._require_branch(conn, store, session_id, run.branch_thread_id)
            if branch_row is not None
            else None
        )
        out.append(
            Started(
                _replace_status(run, "running", None),
                branch,
                planned,
                owned,
                in_doubt,
                running,
            )
        )
    return out


def _abandoned(conn: Connection, store: CheckpointStore, run: UndoRun) -> list[Effect]:
    """The effects ``run`` abandoned, read again from the source branch's checkpoints."""
    lineage = store.lineage(conn, run.source_thread_id)
    head = (
        store.find_row(conn, lineage, "", run.head_checkpoint_id) if lineage is not None else None
    )
    if head is None:
        raise CheckpointNotFoundError(
            f"undo run {run.run_id}: checkpoint {run.head_checkpoint_id!r} of thread "
            f"{run.source_thread_id!r}, the branch it left, is gone; its effects can no "
            "longer be read"
        )
    chain = log.ancestry(conn, store, head)
    base_rid = next(
        (rid for rid, cid in chain if cid == run.base_checkpoint_id),
        None,
    )
    if run.base_checkpoint_id is not None and base_rid is None:
        raise CheckpointNotFoundError(
            f"undo run {run.run_id}: checkpoint {run.base_checkpoint_id!r} is no longer "
            f"in the history of thread {run.source_thread_id!r}"
        )
    return log.effects_on_path(conn, store, run.source_thread_id, chain, base_rid)


def undone_in_branch(
    conn: Connection, store: CheckpointStore, session_id: str, thread_id: str
) -> list[EffectRecord]:
    """The effects in a branch's history that a rollback undid: those whose checkpoint
    (the first holding the tool's result) is an ancestor of the branch's head. Reads the
    recorded undos and the head's chain of parent links; no state is decoded."""
    done = [c for c in claims(conn, store, session_id).values() if c.status == "done"]
    if not done:
        return []
    lineage = store.lineage(conn, thread_id)
    head = store.find_row(conn, lineage, "", None) if lineage is not None else None
    if head is None:
        return []
    seen = {checkpoint_id for _, checkpoint_id in log.ancestry(conn, store, head)}
    return [c for c in done if c.checkpoint_id in seen]


def undone_between(
    conn: Connection,
    store: CheckpointStore,
    a: CheckpointTuple,
    b: CheckpointTuple,
    base: CheckpointTuple | None,
) -> list[EffectRecord]:
    """The effects undone by a rollback whose checkpoint (the first holding the tool's
    result) is on the path from ``base`` (excluded: effects there are shared) to ``a``
    or to ``b``, oldest undo first. Reads the recorded undos of the sessions owning the
    two threads and the chains of parent links; no state is decoded."""
    sessions: set[str] = set()
    on_paths: set[str] = set()
    stop = base.config["configurable"]["checkpoint_id"] if base is not None else None
    for t in (a, b):
        cfg = t.config["configurable"]
        thread_id = str(cfg["thread_id"])
        owner = conn.execute(store.sql.SELECT_SESSION_ID_OF_THREAD, (thread_id,)).fetchone()
        if owner is not None:
            sessions.add(str(owner[0]))
        lineage = store.lineage(conn, thread_id)
        row = (
            store.find_row(conn, lineage, str(cfg.get("checkpoint_ns", "")), cfg["checkpoint_id"])
            if lineage is not None
            else None
        )
        if row is None:
            continue
        for _, checkpoint_id in log.ancestry(conn, store, row):
            if checkpoint_id == stop:
                break
            on_paths.add(checkpoint_id)
    found = [
        c
        for sid in sorted(sessions)
        for c in claims(conn, store, sid).values()
        if c.status == "done" and c.checkpoint_id in on_paths
    ]
    return sorted(found, key=lambda c: (c.updated_at, c.effect_id))
