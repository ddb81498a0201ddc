"""The differential state machine: random sequences of graph-level operations, run on
AgentGit's savers and on the reference (``fuzz_reference.ReferenceSaver``, LangGraph's
``InMemorySaver``) side by side, compared after every step.

Subjects (each on its own database, each running the same compiled graph):

* ``sync-file``   - ``AgentGitSaver`` on a file (reopened by the ``reopen`` step);
* ``sync-memory`` - ``AgentGitSaver(":memory:")`` (nothing to reopen: ``reopen`` skips it);
* ``async-file``  - ``AsyncAgentGitSaver`` on a file;
* ``sync-postgres``, ``async-postgres`` - the two savers on PostgreSQL, each on its own
  schema (``tests/pg.py``; left out where no server answers, which
  ``test_fuzz_differential`` reports as a skipped test).

Operations whose ``use_async`` flag is set run through the async API on every subject and
on the reference (``ainvoke``, ``aupdate_state``, ``afork_thread``, ``arollback``, ...;
the sync saver serves them too); otherwise through the sync API (the async saver's from
a worker thread, the way it supports). After every step each subject's view is read -
``sync-file`` and ``sync-postgres`` through the sync API, the others through the async
one - and compared with the reference's view read the same way.

Checkpoints are named by position (``pos``: index into the thread's history, newest
first), resolved in each saver separately, because checkpoint ids differ between savers.
Interrupt ids likewise: a resume map is built from each saver's own pending interrupts.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pg
from fuzz_graphs import GraphSpec
from fuzz_reference import ReferenceSaver
from fuzz_views import Relabel, first_difference, invoke_result, plain
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from langchain_core.runnables import RunnableConfig
from langgraph.channels import DeltaChannel
from langgraph.types import Command, StateSnapshot

from langgraph_agentgit import AgentGitSaver, AsyncAgentGitSaver, SessionManager
from langgraph_agentgit.saver_base import DEFAULT_CACHE_SIZE

# Divergences the fuzzer has found and reported but the storage code does not fix yet.
# Each entry excludes exactly the operation variant that diverges, so the rest of the
# space stays covered and the suite stays green meanwhile. THE LEAD REMOVES AN ENTRY ONCE
# THE BUG IS FIXED (the repro is in tests/fuzz/repros/, named after the key). Keys:
#   "<op>"                  the whole operation
#   "<op>:<variant>"        one variant (see each rule for the variants it checks)
#   "<op>@<graph>"          the operation on one graph only
KNOWN_DIVERGENCES: dict[str, str] = {
    # None is open. Fixed (regression tests in tests/test_correctness_regressions.py),
    # kept here as examples of the keys and their repros:
    # "fork_thread:across-deleted-run"    repro_fork_across_deleted_run.py
    # "prune:keep_latest:fork-of-deleted" repro_prune_fork_of_deleted_source.py (e750958)
    # "put:late-capture@parallel"         repro_barrier_put_race.py (fc6e786)
    # "fork_thread:source-writes-later"   repro_fork_sees_later_writes.py
    # "fork_thread:of-pruned-fork"        repro_fork_of_pruned_thread.py (third part)
    # "prune:keep_latest:unwritten-delta" repro_prune_unwritten_delta.py
    # "fork_thread:of-trimmed"          repro_fork_of_pruned_thread.py
    # "shared-values@parallel"          repro_barrier_set_shared.py
    # "delete_for_runs@delta"           repro_delete_runs_delta.py
    # "update_state:__copy__-metadata"  repro_copy_metadata.py
}

# Operation -> count over this process (test_fuzz_differential writes it out per graph).
STATS: Counter[str] = Counter()

MAX_THREADS = 5
MAX_POS = 40
# AGENTGIT_FUZZ_ENGINES (comma-separated, default both) picks the engines: `make fuzz`
# runs its long SQLite and Postgres runs separately, each with its own number of sequences.
ENGINES = set(os.environ.get("AGENTGIT_FUZZ_ENGINES", "sqlite,postgres").split(","))
SUBJECT_KINDS: tuple[str, ...] = ()
if "sqlite" in ENGINES:
    SUBJECT_KINDS += ("sync-file", "sync-memory", "async-file")
if "postgres" in ENGINES and (pg.unavailable() is None or pg.REQUIRED):
    SUBJECT_KINDS += ("sync-postgres", "async-postgres")
ASYNC_KINDS = ("async-file", "async-postgres")


def known(*keys: str) -> bool:
    return any(k in KNOWN_DIVERGENCES for k in keys)


def cfg(thread: str, checkpoint_id: str | None = None, run_id: str | None = None) -> Any:
    config: dict[str, Any] = {"configurable": {"thread_id": thread}}
    if checkpoint_id is not None:
        # With the namespace, as in every config LangGraph hands out: InMemorySaver's
        # get_tuple returns the config it was given, and its put() needs the namespace.
        config["configurable"]["checkpoint_id"] = checkpoint_id
        config["configurable"]["checkpoint_ns"] = ""
    if run_id is not None:
        # A run id of our choosing (the same on every saver) lands in each checkpoint's
        # metadata, so delete_for_runs can name runs; fresh per operation, as a server
        # would give them (LangGraph treats a head with the same run id as a re-entry).
        config["metadata"] = {"run_id": run_id}
    return config


class Subject:
    """One saver and the graph compiled on it, driven through its sync or async API."""

    def __init__(self, kind: str, spec: GraphSpec, loop: asyncio.AbstractEventLoop, tmp: Path):
        self.kind = kind
        self.spec = spec
        self.loop = loop
        self.path = str(tmp / f"{kind}.db")
        self.schema: Any = None
        if kind.endswith("-postgres"):
            self.schema = pg.fresh_schema()
            self.path = self.schema.__enter__()
        self.cm: Any = None
        self.saver: Any = None
        self.sessions: SessionManager | None = None
        self.graph: Any = None
        self.open()

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    @property
    def cache_size(self) -> int:
        return 0 if known(f"shared-values@{self.spec.name}") else DEFAULT_CACHE_SIZE

    def open(self) -> None:
        if self.kind == "reference":
            compiled = self.spec.build().compile()
            deltas = {k: v for k, v in compiled.channels.items() if isinstance(v, DeltaChannel)}
            self.saver = ReferenceSaver(deltas)
        elif self.kind in ASYNC_KINDS:
            self.cm = AsyncAgentGitSaver.from_conn_string(self.path, cache_size=self.cache_size)
            self.saver = self.run(self.cm.__aenter__())
        else:
            path = ":memory:" if self.kind == "sync-memory" else self.path
            self.cm = AgentGitSaver.from_conn_string(path, cache_size=self.cache_size)
            self.saver = self.cm.__enter__()
        if self.kind != "reference":
            self.sessions = SessionManager(self.saver)
            # Every delete and prune sweeps only the families it changed (after the
            # database's first sweep): the incremental path, whose mistakes would lose
            # values a thread still reads. The whole sweep, which otherwise follows
            # every tenth of the rows deleted, is the older path the rest of the suite
            # exercises.
            self.saver.store.WHOLE_SWEEP_SHARE = math.inf
        self.graph = self.spec.build().compile(checkpointer=self.saver)

    def close(self) -> None:
        if self.cm is None:
            return
        cm, self.cm = self.cm, None
        if self.kind in ASYNC_KINDS:
            self.run(cm.__aexit__(None, None, None))
        else:
            cm.__exit__(None, None, None)

    def dispose(self) -> None:
        """Close, and drop a Postgres subject's schema."""
        try:
            self.close()
        finally:
            if self.schema is not None:
                schema, self.schema = self.schema, None
                schema.__exit__(None, None, None)

    def reopen(self) -> bool:
        if self.kind != "sync-memory":
            self.close()
            self.open()
            return True
        return False

    # --- graph API --------------------------------------------------------------------------
    # Every subject uses the API the reference used: LangGraph's sync and async paths are
    # separate code, and a difference between them would not be the saver's.
    # AsyncAgentGitSaver's sync methods must not run on its event loop's thread: its sync
    # calls run on a worker thread while the loop serves the connection (the documented
    # way to use them).

    def blocking(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.kind in ASYNC_KINDS:
            return self.run(asyncio.to_thread(fn, *args, **kwargs))
        return fn(*args, **kwargs)

    def invoke(self, inp: Any, config: RunnableConfig, use_async: bool) -> Any:
        extra = {"durability": "sync"} if known(f"put:late-capture@{self.spec.name}") else {}
        if use_async:
            return invoke_result(self.run(self.graph.ainvoke(inp, config, **extra)))
        return invoke_result(self.blocking(self.graph.invoke, inp, config, **extra))

    def update_state(self, config: Any, values: Any, as_node: str | None, use_async: bool) -> Any:
        if use_async:
            return self.run(self.graph.aupdate_state(config, values, as_node=as_node))
        return self.blocking(self.graph.update_state, config, values, as_node=as_node)

    def get_state(
        self, config: RunnableConfig, use_async: bool, subgraphs: bool = False
    ) -> StateSnapshot:
        if use_async:
            return self.run(self.graph.aget_state(config, subgraphs=subgraphs))
        return self.blocking(self.graph.get_state, config, subgraphs=subgraphs)

    def history(self, thread: str, use_async: bool) -> list[StateSnapshot]:
        if use_async:

            async def collect() -> list[StateSnapshot]:
                return [s async for s in self.graph.aget_state_history(cfg(thread))]

            return self.run(collect())
        return self.blocking(lambda: list(self.graph.get_state_history(cfg(thread))))

    def checkpoint_at(self, thread: str, pos: int, use_async: bool) -> str:
        """The id of the ``pos``-th checkpoint (newest first, wrapping) of ``thread``."""
        history = self.history(thread, use_async)
        return history[pos % len(history)].config["configurable"]["checkpoint_id"]

    # --- saver API --------------------------------------------------------------------------

    def call(self, name: str, use_async: bool, *args: Any, **kwargs: Any) -> Any:
        """``saver.<name>(...)`` or ``await saver.a<name>(...)``."""
        if use_async:
            return self.run(getattr(self.saver, "a" + name)(*args, **kwargs))
        return self.blocking(getattr(self.saver, name), *args, **kwargs)

    def rollback(self, source: str, checkpoint_id: str, new: str, use_async: bool) -> Any:
        """``SessionManager.rollback`` into a new branch ``new`` (adopting ``source`` into
        a session first if it has none); returns the branch's config. The reference forks
        and returns the same shape."""
        if self.sessions is None:
            self.call("fork_thread", use_async, source, checkpoint_id, new)
            return {"configurable": {"thread_id": new}}
        mgr = self.sessions
        # The checkpoint as the source thread shows it (a config naming the thread), as
        # a user picks it from that thread's history: the branch continues that history,
        # which is the reference's fork of the source. (A bare id means the history of
        # the thread that wrote it; after a prune or run deletion in the writer, that can
        # differ from what an older branch inheriting it shows.)
        target = {"configurable": {"thread_id": source, "checkpoint_id": checkpoint_id}}
        if use_async:

            async def go() -> Any:
                session = await mgr.asession_of(source) or await mgr.aadopt(source)
                branch = await mgr.arollback(session.id, target, thread_id=new)
                return branch.config, await mgr.aconfig(session.id)

            branch_config, current = self.run(go())
        else:

            def go_sync() -> Any:
                session = mgr.session_of(source) or mgr.adopt(source)
                branch = mgr.rollback(session.id, target, thread_id=new)
                return branch.config, mgr.config(session.id)

            branch_config, current = self.blocking(go_sync)
        # A rollback makes the new branch the session's current thread.
        assert current == branch_config, (current, branch_config)
        return branch_config


def outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    """``("ok", result)`` or ``("raised", exception)``."""
    try:
        return "ok", fn()
    except Exception as exc:  # compared with the reference's outcome, never swallowed
        return "raised", exc


def make_machine(spec: GraphSpec) -> type[RuleBasedStateMachine]:
    """A state machine class for one graph (the vocabularies of inputs, updates and nodes
    are the graph's)."""
    g = spec.name
    input_names = sorted(spec.inputs)
    update_names = sorted(spec.updates)
    as_nodes: list[str | None] = [
        n
        for n in [None, *spec.nodes, "__copy__", "__input__", "__end__"]
        if not known(f"update_state:{n}", f"update_state:{n}@{g}")
    ]
    threads_st = st.integers(0, MAX_THREADS - 1)
    pos_st = st.integers(0, MAX_POS)

    class DifferentialMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.loop = asyncio.new_event_loop()
            self.tmp = Path(tempfile.mkdtemp(prefix=f"agentgit-fuzz-{g}-"))
            self.reference = Subject("reference", spec, self.loop, self.tmp)
            self.subjects = [Subject(k, spec, self.loop, self.tmp) for k in SUBJECT_KINDS]
            self.threads: list[str] = ["t0"]
            self.runs: list[str] = []
            # Threads trimmed by prune(keep_latest)/delete_for_runs ("fork_thread:of-trimmed").
            self.trimmed: set[str] = set()
            # Threads forked or rolled back ("fork_thread:source-writes-later").
            self.fork_sources: set[str] = set()
            # Fork/rollback branch -> the thread it was made from, and threads something
            # was deleted from ("prune:keep_latest:fork-of-deleted").
            self.source_of: dict[str, str] = {}
            self.deleted_from: set[str] = set()
            # Threads delete_for_runs removed checkpoints from ("fork_thread:across-deleted-run").
            self.runs_deleted_in: set[str] = set()
            # Threads made by fork_thread/rollback, and those of them pruned with
            # keep_latest ("fork_thread:of-pruned-fork").
            self.forks: set[str] = set()
            self.pruned_forks: set[str] = set()
            # The reference's view after the last step: what preconditions look at.
            self.ref_view: dict[str, Any] = {}
            self.counter = 0
            STATS["sequences"] += 1

        def teardown(self) -> None:
            for s in self.subjects:
                with contextlib.suppress(Exception):
                    s.dispose()
            self.loop.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

        # --- helpers ----------------------------------------------------------------------

        def fresh(self, prefix: str) -> str:
            self.counter += 1
            return f"{prefix}{self.counter}"

        def pick(self, i: int) -> str:
            return self.threads[i % len(self.threads)]

        def with_history(self) -> list[str]:
            return [t for t in self.threads if self.ref_view.get(t, {}).get("history")]

        def interrupted(self) -> list[str]:
            return [t for t in self.threads if self.ref_view.get(t, {}).get("interrupts")]

        def unwritten_delta_channel(self, t: str) -> bool:
            """Whether a DeltaChannel has no version at ``t``'s head (on the reference)."""
            saver = self.reference.saver
            head = saver.get_tuple(cfg(t))
            versions = head.checkpoint["channel_versions"] if head else {}
            return any(name not in versions for name in saver.delta_channels)

        def source_deleted(self, t: str) -> bool:
            """Whether ``t`` is a fork with a source (or one further up) that something
            was deleted from."""
            seen = set()
            while t in self.source_of and t not in seen:
                seen.add(t)
                t = self.source_of[t]
                if t in self.deleted_from:
                    return True
            return False

        def room(self) -> bool:
            return len(self.threads) < MAX_THREADS

        def apply(self, op: str, fn: Callable[[Subject], Any]) -> None:
            """Run ``fn`` on the reference and on every subject; results (or raised
            errors, by type and message) must match the reference's."""
            expected_kind, expected = outcome(lambda: fn(self.reference))
            # How often each operation ran, and how often the reference refused it.
            STATS[f"{op}: {expected_kind}"] += 1
            expected_view = plain(expected, Relabel())
            for s in self.subjects:
                kind, got = outcome(lambda s=s: fn(s))
                got_view = plain(got, Relabel())
                if (kind, got_view) != (expected_kind, expected_view):
                    where = first_difference(
                        {"outcome": expected_kind, "value": expected_view},
                        {"outcome": kind, "value": got_view},
                    )
                    message = f"{op} on {s.kind} differs from the reference: {where}"
                    if expected_kind == "raised":
                        message += f" (the reference raised {expected!r})"
                    raise AssertionError(message) from (got if kind == "raised" else None)

        # --- operations -------------------------------------------------------------------

        def run_input(self, t: str, inp: str, use_async: bool) -> None:
            config = cfg(t, run_id=self.fresh("run-"))
            self.runs.append(config["metadata"]["run_id"])
            self.apply("invoke", lambda s: s.invoke(spec.inputs[inp](), config, use_async))

        @rule(thread=threads_st, inp=st.sampled_from(input_names), use_async=st.booleans())
        def invoke(self, thread: int, inp: str, use_async: bool) -> None:
            """New input (``invoke``/``ainvoke``) on a known thread."""
            self.run_input(self.pick(thread), inp, use_async)

        @precondition(lambda self: self.room())
        @rule(inp=st.sampled_from(input_names), use_async=st.booleans())
        def invoke_new_thread(self, inp: str, use_async: bool) -> None:
            """New input on a new thread."""
            t = self.fresh("t")
            self.threads.append(t)
            self.run_input(t, inp, use_async)

        @precondition(lambda self: bool(self.interrupted()) and not known("resume", f"resume@{g}"))
        @rule(
            thread=threads_st,
            value=st.sampled_from(spec.resume_values),
            mode=st.sampled_from(["value", "map_all", "map_first", "map_last"]),
            at=st.one_of(st.none(), st.just("head"), pos_st),
            use_async=st.booleans(),
        )
        def resume(self, thread: int, value: str, mode: str, at: Any, use_async: bool) -> None:
            """``Command(resume=...)``: a plain value, or a map keyed by the ids of all /
            the first / the last pending interrupts (each saver's own ids); on the head, on
            the head's explicit checkpoint id, or at an older checkpoint."""
            if known(f"resume:{mode}", f"resume:at-{'pos' if isinstance(at, int) else at}"):
                return
            candidates = self.interrupted()
            t = candidates[thread % len(candidates)]
            if (
                isinstance(at, int)
                and t in self.fork_sources
                and known("fork_thread:source-writes-later")
            ):
                return
            run_id = self.fresh("run-")
            self.runs.append(run_id)

            def go(s: Subject) -> Any:
                if at is None:
                    config = cfg(t, run_id=run_id)
                elif at == "head":
                    config = cfg(t, s.checkpoint_at(t, 0, use_async), run_id=run_id)
                else:
                    config = cfg(t, s.checkpoint_at(t, at, use_async), run_id=run_id)
                pending = s.get_state(config, use_async).interrupts
                if mode == "value":
                    resume: Any = value
                elif mode == "map_all":
                    resume = {i.id: f"{value}-{n}" for n, i in enumerate(pending)}
                else:
                    chosen = pending[:1] if mode == "map_first" else pending[-1:]
                    resume = {i.id: value for i in chosen}
                return s.invoke(Command(resume=resume), config, use_async)

            self.apply(f"resume:{mode}", go)

        @precondition(lambda self: bool(self.with_history()) and not known("replay", f"replay@{g}"))
        @rule(
            thread=threads_st,
            pos=pos_st,
            inp=st.one_of(st.none(), st.sampled_from(input_names)),
            use_async=st.booleans(),
        )
        def replay(self, thread: int, pos: int, inp: str | None, use_async: bool) -> None:
            """``invoke(None | input, config_at_old_checkpoint)``: time travel."""
            if known(f"replay:{'input' if inp else 'none'}"):
                return
            ts = self.with_history()
            t = ts[thread % len(ts)]
            run_id = self.fresh("run-")
            self.runs.append(run_id)

            def go(s: Subject) -> Any:
                config = cfg(t, s.checkpoint_at(t, pos, use_async), run_id=run_id)
                return s.invoke(None if inp is None else spec.inputs[inp](), config, use_async)

            self.apply("replay", go)

        @precondition(lambda self: not known("update_state", f"update_state@{g}"))
        @rule(
            thread=threads_st,
            pos=st.one_of(st.none(), pos_st),
            values=st.sampled_from(update_names),
            as_node=st.sampled_from(as_nodes),
            use_async=st.booleans(),
        )
        def update_state(
            self, thread: int, pos: int | None, values: str, as_node: str | None, use_async: bool
        ) -> None:
            """``update_state`` on the head or at an older checkpoint, with values (or
            ``None``) as a node, as ``None`` (inferred), ``__copy__``, ``__input__`` or
            ``__end__``."""
            t = self.pick(thread)
            has_history = t in self.with_history()
            run_id: str | None = self.fresh("run-")
            if as_node == "__copy__" and known("update_state:__copy__-metadata"):
                run_id = None
            else:
                self.runs.append(str(run_id))
            # LangGraph's documented forms: update_state(config, None, as_node="__copy__")
            # and update_state(config, None, as_node=END) (clears the pending tasks).
            make = spec.updates["none" if as_node in ("__copy__", "__end__") else values]

            def go(s: Subject) -> Any:
                at = (
                    s.checkpoint_at(t, pos, use_async)
                    if (pos is not None and has_history)
                    else None
                )
                return s.update_state(cfg(t, at, run_id=run_id), make(), as_node, use_async)

            self.apply(f"update_state:{as_node}", go)

        @precondition(
            lambda self: bool(self.with_history()) and self.room() and not known("fork_thread")
        )
        @rule(thread=threads_st, pos=pos_st, use_async=st.booleans())
        def fork_thread(self, thread: int, pos: int, use_async: bool) -> None:
            """``saver.fork_thread(src, checkpoint, new)``; reference: the literal copy of
            the checkpoint's chain (see fuzz_reference)."""
            ts = self.with_history()
            t = ts[thread % len(ts)]
            if t in self.trimmed and known("fork_thread:of-trimmed"):
                return
            if t in self.pruned_forks and known("fork_thread:of-pruned-fork"):
                return
            if t in self.runs_deleted_in and known("fork_thread:across-deleted-run"):
                return
            new = self.fresh("f")
            self.threads.append(new)
            self.fork_sources.add(t)
            self.forks.add(new)
            self.source_of[new] = t
            self.apply(
                "fork_thread",
                lambda s: s.call(
                    "fork_thread", use_async, t, s.checkpoint_at(t, pos, use_async), new
                ),
            )

        @precondition(
            lambda self: bool(self.with_history()) and self.room() and not known("rollback")
        )
        @rule(thread=threads_st, pos=pos_st, use_async=st.booleans())
        def rollback(self, thread: int, pos: int, use_async: bool) -> None:
            """``SessionManager.rollback`` (adopting the thread into a session first if it
            has none) into a new branch; reference: the same fork."""
            ts = self.with_history()
            t = ts[thread % len(ts)]
            if t in self.trimmed and known("fork_thread:of-trimmed"):
                return
            if t in self.pruned_forks and known("fork_thread:of-pruned-fork"):
                return
            if t in self.runs_deleted_in and known("fork_thread:across-deleted-run"):
                return
            new = self.fresh("b")
            self.threads.append(new)
            self.fork_sources.add(t)
            self.forks.add(new)
            self.source_of[new] = t
            self.apply(
                "rollback",
                lambda s: s.rollback(t, s.checkpoint_at(t, pos, use_async), new, use_async),
            )

        @precondition(lambda self: self.room() and not known("copy_thread"))
        @rule(thread=threads_st, use_async=st.booleans())
        def copy_thread(self, thread: int, use_async: bool) -> None:
            """``copy_thread(src, new)`` into a thread that does not exist yet."""
            t = self.pick(thread)
            new = self.fresh("c")
            self.threads.append(new)
            self.apply("copy_thread", lambda s: s.call("copy_thread", use_async, t, new))

        # delete_thread and both prune strategies share one rule: as separate rules they
        # came up so often that most sequences never grew an interesting history.
        @rule(
            picks=st.lists(threads_st, min_size=1, max_size=3),
            how=st.sampled_from(["prune:keep_latest", "prune:delete", "delete_thread"]),
            use_async=st.booleans(),
        )
        def prune_or_delete(self, picks: list[int], how: str, use_async: bool) -> None:
            """``prune(threads, strategy=...)``, or ``delete_thread`` of the first pick
            (the thread id stays in play: it may be run again)."""
            if known(how, f"{how}@{g}"):
                return
            if how == "delete_thread":
                t = self.pick(picks[0])
                self.deleted_from.add(t)
                self.apply(how, lambda s: s.call("delete_thread", use_async, t))
                return
            strategy = how.split(":")[1]
            ids = sorted({self.pick(i) for i in picks})
            if (
                strategy == "keep_latest"
                and known("prune:keep_latest:unwritten-delta")
                and any(self.unwritten_delta_channel(t) for t in ids)
            ):
                return
            if (
                strategy == "keep_latest"
                and known("prune:keep_latest:fork-of-deleted")
                and any(self.source_deleted(t) for t in ids)
            ):
                return
            if strategy == "delete":
                self.deleted_from.update(ids)
            if strategy == "keep_latest":
                self.trimmed.update(ids)
                self.pruned_forks.update(self.forks.intersection(ids))
            self.apply(how, lambda s: s.call("prune", use_async, ids, strategy=strategy))

        @precondition(
            lambda self: bool(self.runs) and not known("delete_for_runs", f"delete_for_runs@{g}")
        )
        @rule(picks=st.lists(st.integers(0, 200), min_size=1, max_size=3), use_async=st.booleans())
        def delete_for_runs(self, picks: list[int], use_async: bool) -> None:
            """``delete_for_runs`` of one to three of the runs made so far."""
            ids = sorted({self.runs[i % len(self.runs)] for i in picks})
            touched = {
                t
                for t, v in self.ref_view.items()
                if any(s.get("metadata", {}).get("run_id") in ids for s in v["history"])
            }
            if touched & self.fork_sources and known("fork_thread:source-writes-later"):
                return
            self.trimmed.update(touched)
            self.deleted_from.update(touched)
            self.runs_deleted_in.update(touched)
            self.apply("delete_for_runs", lambda s: s.call("delete_for_runs", use_async, ids))

        @precondition(lambda self: not known("reopen"))
        @rule()
        def reopen(self) -> None:
            """Close and reopen the file-backed databases (a new saver, a new graph)."""
            for s in self.subjects:
                s.reopen()

        # --- the comparison after every step --------------------------------------------

        def view(self, s: Subject, use_async: bool) -> dict[str, Any]:
            """Every thread's state (with subgraph states) and full history, as one view
            relabelled in one pass (so ids shared between threads stay shared)."""
            rl = Relabel()
            out: dict[str, Any] = {}
            for t in self.threads:
                _, state = outcome(lambda t=t: s.get_state(cfg(t), use_async, subgraphs=True))
                _, history = outcome(lambda t=t: s.history(t, use_async))
                # A read that raises is part of the view (as its error), not a crash.
                out[t] = {"state": plain(state, rl), "history": plain(history, rl)}
            return out

        @invariant()
        def states_and_histories_match(self) -> None:
            STATS["comparisons"] += 1
            # Each subject is read through one API: the sync file saver through the sync
            # one, the others through the async one (their natural use, and the sync
            # saver's executor path); the reference through both.
            expected = {False: self.view(self.reference, False)}
            expected[True] = self.view(self.reference, True)
            for s in self.subjects:
                use_async = s.kind not in ("sync-file", "sync-postgres")
                got = self.view(s, use_async)
                if got != expected[use_async]:
                    where = first_difference(expected[use_async], got)
                    api = "async" if use_async else "sync"
                    raise AssertionError(
                        f"after the last step, {s.kind} ({api} reads) differs: {where}"
                    )
            # What preconditions read: threads with history, threads waiting on interrupts.
            self.ref_view = {
                t: {
                    "history": v["history"] if isinstance(v["history"], list) else [],
                    "interrupts": v["state"].get("interrupts") if "values" in v["state"] else [],
                }
                for t, v in expected[False].items()
            }

    DifferentialMachine.__name__ = f"DifferentialMachine_{g}"
    DifferentialMachine.__qualname__ = DifferentialMachine.__name__
    return DifferentialMachine
