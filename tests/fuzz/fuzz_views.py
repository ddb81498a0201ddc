"""What the fuzzer compares: plain-data views of ``get_state``/``get_state_history`` and of
operation results, with only what must differ between savers normalized.

Normalizations, each needed because two correct savers cannot agree on it:

* **ids generated at run time are relabelled by first appearance.** Checkpoint ids
  (uuid6 with a timestamp), task ids (derived from the checkpoint id) and interrupt ids
  (hashes of task ids) differ on every run. Every UUID-shaped or 32-hex-digit substring
  of any string is replaced by ``<id:N>``, N counting distinct ids in the order the
  (deterministic) view walk meets them, *across one whole view*. So equality still
  checks identity: a parent link must point at the same position, a checkpoint shared by
  two threads (a fork, a copy) must be shared in both savers.
* ``created_at`` (a timestamp) is dropped from snapshots.
* **message ids LangGraph generates** (uuid4, for a message given without an id) are
  shown as ``<generated>``, and **message ids inside a task's ``result``** (the writes
  stored for a task) are dropped. LangGraph hands the writes to ``put_writes`` on a
  background thread while ``add_messages`` assigns ids to the *same* message objects in
  place, so whether a stored write carries the id is a race inside LangGraph:
  InMemorySaver alone, 100 runs of one ``invoke``, stores the ``__start__`` write with
  the id 89 times and without it 11 times. And a message rebuilt from a stored write
  when LangGraph applies it again can get another generated id than its write shows
  (InMemorySaver: 100 of 100 resumes of a two-node graph whose other node interrupted).
  So which generated id a message ends up with is not the saver's to decide. Ids the
  graph chooses (``ai-3``, ``h-ask``, tool call ids) are compared exactly.
* **the order of ``__interrupt__`` in what ``invoke`` returns** is the order in which
  parallel tasks happened to finish (InMemorySaver alone, 60 runs of the parallel graph:
  ``[a, b]`` 14 times, ``[b, a]`` 46 times); :func:`invoke_result` sorts it by value.
  The order in ``get_state`` (by task) is compared as is.
* a **checkpointer object** inside a value (a subgraph state's config carries the saver
  itself under ``__pregel_checkpointer``) is shown as ``<checkpointer>``, not its repr.
* Channel versions and checkpoint ``ts`` are not part of a ``StateSnapshot`` at all.

Nothing else is normalized: values (messages compared field by field), ``next``,
tasks (name, path, error, interrupts, result, subgraph state), interrupts, metadata,
configs (thread id and namespace included) and parent configs are compared as is.
"""

from __future__ import annotations

import re
from dataclasses import fields, is_dataclass
from typing import Any

from langchain_core.messages import BaseMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.types import Interrupt, Overwrite, PregelTask, Send, StateSnapshot
from pydantic import BaseModel

UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
ID_PATTERN = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])"
)


class Relabel:
    """Replaces run-time ids by ``<id:N>`` in first-appearance order (one per view)."""

    def __init__(self) -> None:
        self.labels: dict[str, str] = {}
        # (id(message), in_write) -> (message, its view): see message_view.
        self.messages: dict[tuple[int, bool], tuple[BaseMessage, dict[str, Any]]] = {}

    def text(self, s: str) -> str:
        if len(s) < 32:  # shorter than any id: the common case, skip the regex
            return s

        def sub(m: re.Match[str]) -> str:
            return self.labels.setdefault(m.group(0), f"<id:{len(self.labels)}>")

        return ID_PATTERN.sub(sub, s)

    def __call__(self, value: Any) -> Any:
        return plain(value, self)


_SCALARS = (int, float, bool, type(None))


def plain(value: Any, rl: Relabel, *, in_write: bool = False) -> Any:
    """``value`` as comparable plain data (dicts, lists, strings, numbers); ``in_write``:
    inside a task's stored writes (message ids dropped, see the module docstring)."""
    # The common types first, by exact type: this runs a million times per sequence.
    kind = type(value)
    if kind is str:
        return rl.text(value)
    if kind in _SCALARS:
        return value
    if kind is dict:
        return {
            plain(k, rl, in_write=in_write): plain(v, rl, in_write=in_write)
            for k, v in value.items()
        }
    if kind is list or kind is tuple:
        return [plain(v, rl, in_write=in_write) for v in value]
    if isinstance(value, BaseMessage):
        return message_view(value, rl, in_write)
    if isinstance(value, StateSnapshot):
        return snapshot_view(value, rl)
    if isinstance(value, BaseCheckpointSaver):
        return "<checkpointer>"
    if isinstance(value, PregelTask):
        return {
            "id": rl.text(value.id),
            "name": value.name,
            "path": plain(value.path, rl),
            "error": None if value.error is None else error_view(value.error, rl),
            "interrupts": plain(list(value.interrupts), rl),
            "state": plain(value.state, rl),
            "result": plain(value.result, rl, in_write=True),
        }
    if isinstance(value, Interrupt):
        return {"interrupt": plain(value.value, rl), "id": rl.text(value.id)}
    if isinstance(value, Send):
        return {"send": value.node, "arg": plain(value.arg, rl, in_write=in_write)}
    if isinstance(value, Overwrite):
        return {"overwrite": plain(value.value, rl, in_write=in_write)}
    if isinstance(value, BaseModel):
        return plain(value.model_dump(), rl)
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name), rl) for f in fields(value)}
    if isinstance(value, dict):
        return {
            plain(k, rl, in_write=in_write): plain(v, rl, in_write=in_write)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [plain(v, rl, in_write=in_write) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(plain(v, rl) for v in value)
    if isinstance(value, str):
        return rl.text(value)
    if isinstance(value, BaseException):
        return error_view(value, rl)
    if isinstance(value, _SCALARS):
        return value
    return rl.text(repr(value))


def message_view(message: BaseMessage, rl: Relabel, in_write: bool) -> dict[str, Any]:
    """A message field by field. Fields at their default are left out (the same in both
    views, so nothing is hidden: a field set in one saver only still differs), which keeps
    the walk short. Memoized per object: AgentGit hands out one object for a message that
    many checkpoints share (the labels a first walk assigned stay assigned)."""
    key = (id(message), in_write)
    if key in rl.messages:
        return rl.messages[key][1]
    dumped = message.model_dump(exclude_defaults=True)
    if in_write:
        dumped.pop("id", None)
    elif isinstance(dumped.get("id"), str) and UUID_PATTERN.fullmatch(dumped["id"]):
        dumped["id"] = "<generated>"
    view = {"message": message.type, **plain(dumped, rl)}
    # The object is kept with its view so its id cannot be reused while the view lives.
    rl.messages[key] = (message, view)
    return view


def invoke_result(out: Any) -> Any:
    """What ``invoke`` returned, with its ``__interrupt__`` list in a stable order."""
    if isinstance(out, dict) and isinstance(out.get("__interrupt__"), list):
        ordered = sorted(out["__interrupt__"], key=lambda i: repr(getattr(i, "value", i)))
        return {**out, "__interrupt__": ordered}
    return out


def error_view(error: BaseException, rl: Relabel) -> dict[str, Any]:
    """An exception by type and message (ids in the message relabelled)."""
    return {"error": type(error).__name__, "message": rl.text(str(error))}


def snapshot_view(s: StateSnapshot, rl: Relabel) -> dict[str, Any]:
    # created_at: a wall-clock timestamp, different on every run.
    return {
        "values": plain(s.values, rl),
        "next": list(s.next),
        "config": plain(s.config, rl),
        "metadata": plain(s.metadata, rl),
        "parent_config": plain(s.parent_config, rl),
        "tasks": [plain(t, rl) for t in s.tasks],
        "interrupts": [plain(i, rl) for i in s.interrupts],
    }


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """A short description of where two views first differ (for failure messages)."""
    if type(a) is not type(b):
        return f"{path or '<root>'}: {a!r:.300} != {b!r:.300}"
    if isinstance(a, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if k not in a or k not in b:
                return f"{path}/{k}: only in {'expected' if k in a else 'actual'}"
            d = first_difference(a[k], b[k], f"{path}/{k}")
            if d:
                return d
        return None
    if isinstance(a, list):
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            d = first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        if len(a) != len(b):
            return f"{path}: length {len(a)} != {len(b)}"
        return None
    return None if a == b else f"{path or '<root>'}: {a!r:.300} != {b!r:.300}"
