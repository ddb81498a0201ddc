"""Strict deserialization.

LangGraph's default ``JsonPlusSerializer`` will, for a crafted row, import a module and
call a function it names (it only logs a warning). The saver instead uses
:class:`StrictSerializer` by default. A stored value may construct:

* LangChain and LangGraph types (LangGraph's own safe list: messages, documents, ``Send``,
  ``Command``, ...);
* types passed through ``with_allowlist`` (LangGraph does so for the graph's state schema
  when ``LANGGRAPH_STRICT_MSGPACK`` is set) or named in ``allowed_types``;
* dataclasses, Pydantic models and enums defined in modules the program has *already
  imported* — the graph's own state types are, a tampered row cannot make it import
  anything, and those constructors build data rather than run commands. Pass
  ``trust_loaded_models=False`` to turn this off.

Anything else comes back as its plain data, with a warning; no module is imported and
nothing is called. The legacy ``json`` and ``pickle`` encodings, which can revive arbitrary
objects, are refused outright.
"""

from __future__ import annotations

import dataclasses
import enum
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any

from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer, _create_msgpack_ext_hook
from pydantic import BaseModel

from langgraph_agentgit.errors import UnsafeTypeError

SAFE_ENCODINGS = frozenset({"null", "bytes", "bytearray", "msgpack"})


class _Allowlist:
    """The set LangGraph's msgpack hook consults, answering for loaded data models too."""

    def __init__(self, explicit: set[tuple[str, ...]], trust_loaded_models: bool) -> None:
        self.explicit = explicit
        self.trust_loaded_models = trust_loaded_models

    def __contains__(self, key: object) -> bool:
        if key in self.explicit:
            return True
        if not self.trust_loaded_models or not isinstance(key, tuple) or len(key) != 2:
            return False
        module = sys.modules.get(str(key[0]))
        if module is None:
            return False
        # vars(), not getattr(): a module-level __getattr__ could run code.
        obj = vars(module).get(str(key[1]))
        return isinstance(obj, type) and (
            dataclasses.is_dataclass(obj) or issubclass(obj, (BaseModel, enum.Enum))
        )


def _keys(types: Iterable[type | tuple[str, ...]]) -> set[tuple[str, ...]]:
    return {t if isinstance(t, tuple) else (t.__module__, t.__qualname__) for t in types}


class StrictSerializer(JsonPlusSerializer):
    """A ``JsonPlusSerializer`` that never imports a module or calls a function named by
    stored data (see the module docstring for exactly what it revives).

    ``allowed_types`` takes classes or ``(module, name)`` tuples::

        from langgraph_agentgit import AgentGitSaver, StrictSerializer

        serde = StrictSerializer(allowed_types=[MyState, ("my_pkg.models", "Order")])
        saver = AgentGitSaver(conn, serde=serde)
    """

    def __init__(
        self,
        *,
        allowed_types: Iterable[type | tuple[str, ...]] = (),
        trust_loaded_models: bool = True,
    ) -> None:
        explicit = _keys(allowed_types)
        self._allowlist = _Allowlist(explicit, trust_loaded_models)
        super().__init__(
            pickle_fallback=False,
            allowed_msgpack_modules=tuple(explicit) or None,
            __unpack_ext_hook__=_guarded(_create_msgpack_ext_hook(self._allowlist)),  # type: ignore[arg-type]
        )

    def with_msgpack_allowlist(
        self, extra_allowlist: Iterable[tuple[str, ...] | type]
    ) -> StrictSerializer:
        extra = _keys(extra_allowlist)
        if extra <= self._allowlist.explicit:
            return self
        return StrictSerializer(
            allowed_types=self._allowlist.explicit | extra,
            trust_loaded_models=self._allowlist.trust_loaded_models,
        )

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        encoding = data[0]
        if encoding not in SAFE_ENCODINGS:
            # LangGraph's own encodings that are not read: pickle runs code, json can
            # import classes. Anything else is no encoding at all (damaged bytes).
            why = (
                "it can import and run arbitrary code"
                if encoding in ("pickle", "json")
                else "no saver writes it (the stored bytes may be damaged)"
            )
            raise UnsafeTypeError(
                f"refusing to deserialize a value stored with the {encoding[:40]!r} "
                f"encoding: {why}. Only msgpack values are read."
            )
        try:
            return super().loads_typed(data)
        except Exception:
            interrupted, _pending.interrupt = getattr(_pending, "interrupt", None), None
            if interrupted is not None:
                raise interrupted from None
            raise


# msgpack reports anything raised in an ext hook as "ValueError: ext_hook failed", a
# KeyboardInterrupt too: the hook leaves it here so that loads_typed raises it as it was
# (a Ctrl-C during a read is not damaged data).
_pending = threading.local()


def _guarded(hook: Callable[[int, bytes], Any]) -> Callable[[int, bytes], Any]:
    def guarded(code: int, data: bytes) -> Any:
        try:
            return hook(code, data)
        except Exception:
            raise
        except BaseException as exc:
            _pending.interrupt = exc
            raise

    return guarded
