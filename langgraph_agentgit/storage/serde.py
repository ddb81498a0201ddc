"""Strict deserialization.

LangGraph's default ``JsonPlusSerializer`` will, for a crafted row, import a module and
call a function it names (it only logs a warning). The saver instead uses
:class:`StrictSerializer` by default: msgpack payloads may only construct LangChain and
LangGraph types, the types LangGraph passes through ``with_allowlist`` for the graph's
state schema, and types the user names explicitly. The legacy ``json`` and ``pickle``
encodings, which can revive arbitrary objects, are refused outright.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

from langgraph_agentgit.errors import UnsafeTypeError

SAFE_ENCODINGS = frozenset({"null", "bytes", "bytearray", "msgpack"})


class StrictSerializer(JsonPlusSerializer):
    """A ``JsonPlusSerializer`` that never revives types outside an allowlist.

    ``allowed_types`` takes classes or ``(module, name)`` tuples::

        from langgraph_agentgit import AgentGitSaver, StrictSerializer

        serde = StrictSerializer(allowed_types=[MyState, ("my_pkg.models", "Order")])
        saver = AgentGitSaver(conn, serde=serde)

    A payload that names any other type is returned as its plain data (the way LangGraph
    handles blocked types) and a warning is logged; nothing is imported or called.
    """

    def __init__(self, *, allowed_types: Iterable[type | tuple[str, ...]] = ()) -> None:
        allowed = tuple(allowed_types)
        super().__init__(
            pickle_fallback=False,
            allowed_msgpack_modules=allowed or None,
        )

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        encoding = data[0]
        if encoding not in SAFE_ENCODINGS:
            raise UnsafeTypeError(
                f"refusing to deserialize a value stored with the {encoding!r} encoding: "
                "it can import and run arbitrary code. Only msgpack values are read."
            )
        return super().loads_typed(data)
