"""The reference the fuzzer compares against: LangGraph's ``InMemorySaver``, plus the
operations it does not implement, written directly on its storage dicts.

``InMemorySaver`` implements ``put``/``get_tuple``/``list``/``delete_thread`` and the
``DeltaChannel`` history walk itself; everything a graph run does goes through that code
unchanged. It raises ``NotImplementedError`` for ``copy_thread``, ``prune`` and
``delete_for_runs`` and has no ``fork_thread``; those are added here, following the
contracts in ``langgraph.checkpoint.base.BaseCheckpointSaver`` (and LangGraph's
conformance suite, ``langgraph.checkpoint.conformance.spec``) as literally as possible:

* ``copy_thread(src, dst)`` copies every checkpoint (all namespaces, same ids, same
  parents, same metadata) and every pending write; blobs go along because InMemorySaver
  keys them by thread.
* ``prune(ids, "delete")`` is ``delete_thread`` for each id; ``prune(ids, "keep_latest")``
  keeps the newest checkpoint of each namespace and its writes. Both contracts warn that a
  naive ``keep_latest`` or ``delete_for_runs`` severs ``DeltaChannel`` history and list
  safe implementations; this reference takes the first one the base class lists (the one
  AgentGit implements): "walk back from each kept checkpoint and preserve every ancestor
  (plus its checkpoint_writes) up to the nearest one whose channel_values already
  contains a _DeltaSnapshot". ``keep_latest`` keeps those ancestors in the history.
* ``delete_for_runs(run_ids)`` removes the checkpoints whose ``metadata["run_id"]`` is
  listed from the history (``list``/``get_tuple`` no longer see them; surviving ones keep
  their now dangling parent ids, as InMemorySaver never rewrites a stored parent) but
  keeps them, *hidden*, for the ``DeltaChannel`` rebuild walk, so no surviving
  checkpoint's values change (AgentGit does the same; keeping the deleted run's
  checkpoints visible would defeat the deletion). Checkpoints a fork inherited are left
  alone (next item).
* ``fork_thread(src, C, new)`` - AgentGit's primitive. Its documented contract (README,
  ``AgentGitSaverBase.fork_thread`` and ``tests/test_fork.py``) is: the new thread's
  history is ``C`` and its parent chain, with the same ids, and none of the writes the
  source made *at* ``C``, so invoking the fork re-runs from ``C`` exactly as LangGraph's
  own replay of ``C`` does. LangGraph has no thread-level fork; the nearest built-in
  operations either add a checkpoint (``update_state(C, None)`` writes a new ``update``
  checkpoint, ``as_node="__copy__"`` a ``fork`` one) or copy the whole thread
  (``copy_thread``) - neither has the same history. So the reference is the literal
  copy the contract describes: root-namespace ``C`` plus its ancestors (with their
  writes, not ``C``'s), and the subgraph-namespace checkpoints the source had written up
  to ``C`` (ids <= ``C``: those a replay of ``C`` can see). Hidden checkpoints on the
  chain go along hidden (for the rebuild walk). Running the fork is then LangGraph's own
  code on InMemorySaver.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.channels import DeltaChannel
from langgraph.checkpoint.base import CheckpointTuple, get_checkpoint_id
from langgraph.checkpoint.memory import InMemorySaver


class ReferenceSaver(InMemorySaver):
    """``InMemorySaver`` with ``fork_thread``, ``copy_thread``, ``prune`` and
    ``delete_for_runs`` (sync and async), and hidden checkpoints. ``delta_channels`` are
    the root graph's ``DeltaChannel`` specs (``prune`` keeps what rebuilding them reads)."""

    def __init__(self, delta_channels: Mapping[str, DeltaChannel] | None = None) -> None:
        super().__init__()
        self.delta_channels = dict(delta_channels or {})
        # thread -> (ns, checkpoint id) it inherited through fork_thread.
        self.inherited: dict[str, set[tuple[str, str]]] = {}
        # (thread, ns, checkpoint id) removed from the history but kept for the
        # DeltaChannel rebuild walk (InMemorySaver's walk reads self.storage directly).
        self.hidden: set[tuple[str, str, str]] = set()

    # --- reading: hidden checkpoints are not there ------------------------------------------

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        thread = config["configurable"]["thread_id"]
        ns = config["configurable"].get("checkpoint_ns", "")
        cid = get_checkpoint_id(config)
        if cid is not None:
            return None if (thread, ns, cid) in self.hidden else super().get_tuple(config)
        visible = [
            c for c in self.storage.get(thread, {}).get(ns, {}) if not self._hidden(thread, ns, c)
        ]
        if not visible:
            return None
        # What InMemorySaver returns for a config without a checkpoint id, for the latest
        # checkpoint that is not hidden.
        latest = {
            "configurable": {
                "thread_id": thread,
                "checkpoint_ns": ns,
                "checkpoint_id": max(visible),
            }
        }
        return super().get_tuple(latest)

    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        shown = 0
        for t in super().list(config, filter=filter, before=before):
            c = t.config["configurable"]
            if self._hidden(c["thread_id"], c["checkpoint_ns"], c["checkpoint_id"]):
                continue
            if limit is not None and shown >= limit:
                return
            shown += 1
            yield t

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self.get_tuple(config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        for t in self.list(config, filter=filter, before=before, limit=limit):
            yield t

    # --- helpers on InMemorySaver's dicts ---------------------------------------------------

    def _hidden(self, thread: str, ns: str, cid: str) -> bool:
        return (thread, ns, cid) in self.hidden

    def _copy_row(self, src: str, dst: str, ns: str, cid: str, *, with_writes: bool) -> None:
        self.storage[dst][ns][cid] = self.storage[src][ns][cid]
        if with_writes and (src, ns, cid) in self.writes:
            self.writes[(dst, ns, cid)] = dict(self.writes[(src, ns, cid)])
        if self._hidden(src, ns, cid):
            self.hidden.add((dst, ns, cid))

    def _copy_blobs(self, src: str, dst: str) -> None:
        for (thread, ns, ch, ver), blob in list(self.blobs.items()):
            if thread == src:
                self.blobs[(dst, ns, ch, ver)] = blob

    def _delta_ancestors(self, thread: str, ns: str, cid: str) -> set[str]:
        """The ancestors of ``cid`` that ``get_delta_channel_history`` walks to rebuild its
        DeltaChannel values: back to the nearest one storing a value for each (an ancestor
        where the channel has no version does not stop the walk), else to the root."""
        if ns != "" or not self.delta_channels:
            return set()
        rows = self.storage[thread][ns]

        def stored(at: str, name: str) -> bool:
            version = self.serde.loads_typed(rows[at][0])["channel_versions"].get(name)
            blob = None if version is None else self.blobs.get((thread, ns, name, version))
            return blob is not None and blob[0] != "empty"

        head_versions = self.serde.loads_typed(rows[cid][0])["channel_versions"]
        # A channel with no version at the head is empty there: nothing to rebuild.
        remaining = {n for n in self.delta_channels if n in head_versions and not stored(cid, n)}
        needed: set[str] = set()
        current = rows[cid][2]
        while remaining and current is not None and current in rows:
            needed.add(current)
            remaining = {n for n in remaining if not stored(current, n)}
            current = rows[current][2]
        return needed

    # --- the operations InMemorySaver lacks -----------------------------------------------------

    def fork_thread(self, source: str, checkpoint_id: str, new_thread: str) -> RunnableConfig:
        root = self.storage.get(source, {}).get("", {})
        if checkpoint_id not in root or self._hidden(source, "", checkpoint_id):
            raise KeyError(f"checkpoint {checkpoint_id!r} is not in thread {source!r}")
        if self.storage.get(new_thread):
            raise KeyError(f"thread {new_thread!r} already exists")
        inherited = self.inherited.setdefault(new_thread, set())
        current: str | None = checkpoint_id
        while current is not None and current in root:
            self._copy_row(source, new_thread, "", current, with_writes=current != checkpoint_id)
            inherited.add(("", current))
            current = root[current][2]
        for ns, rows in list(self.storage[source].items()):
            if ns == "":
                continue
            for cid in list(rows):
                if cid <= checkpoint_id:
                    self._copy_row(source, new_thread, ns, cid, with_writes=True)
                    inherited.add((ns, cid))
        self._copy_blobs(source, new_thread)
        return {
            "configurable": {
                "thread_id": new_thread,
                "checkpoint_ns": "",
                "checkpoint_id": checkpoint_id,
            }
        }

    def delete_thread(self, thread_id: str) -> None:
        super().delete_thread(thread_id)
        self.inherited.pop(thread_id, None)
        self.hidden = {h for h in self.hidden if h[0] != thread_id}

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        for ns, rows in list(self.storage.get(source_thread_id, {}).items()):
            for cid in list(rows):
                self._copy_row(source_thread_id, target_thread_id, ns, cid, with_writes=True)
        self._copy_blobs(source_thread_id, target_thread_id)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        if strategy not in ("keep_latest", "delete"):
            raise ValueError(strategy)
        for thread in thread_ids:
            if strategy == "delete":
                self.delete_thread(thread)
                continue
            self.inherited.pop(thread, None)
            for ns, rows in list(self.storage.get(thread, {}).items()):
                visible = [c for c in rows if not self._hidden(thread, ns, c)]
                if not visible:
                    continue
                latest = max(visible)
                keep = {latest} | self._delta_ancestors(thread, ns, latest)
                # Hidden checkpoints stay hidden (whatever the rebuild still reads).
                for cid in [c for c in visible if c not in keep]:
                    del rows[cid]
                    self.writes.pop((thread, ns, cid), None)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        wanted = {str(r) for r in run_ids}
        for thread, namespaces in list(self.storage.items()):
            inherited = self.inherited.get(thread, set())
            for ns, rows in list(namespaces.items()):
                for cid, (_, metadata, _) in rows.items():
                    run_id = self.serde.loads_typed(metadata).get("run_id")
                    if run_id in wanted and (ns, cid) not in inherited:
                        self.hidden.add((thread, ns, cid))

    async def afork_thread(self, source: str, checkpoint_id: str, new_thread: str) -> Any:
        return self.fork_thread(source, checkpoint_id, new_thread)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        self.copy_thread(source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        self.prune(thread_ids, strategy=strategy)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        self.delete_for_runs(run_ids)
