"""A tampered database must not make the saver import or call arbitrary Python, and
metadata filters must not reach SQL text.

Each payload is shown to be real: LangGraph's permissive serializer, given the very same
stored bytes, runs it (it only creates a marker file in the test's tmp directory).
"""

from __future__ import annotations

import json
import os
import pickle
import shlex
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path
from typing import Any

import ormsgpack
import pytest
from conftest import cfg, drive, saver_list
from graphs import Note, Order, build_chat_graph, build_interrupt_graph, build_typed_state_graph
from langchain_core.messages import HumanMessage
from langgraph.checkpoint.serde.jsonplus import (
    EXT_CONSTRUCTOR_KW_ARGS,
    EXT_CONSTRUCTOR_POS_ARGS,
    EXT_CONSTRUCTOR_SINGLE_ARG,
    JsonPlusSerializer,
    _msgpack_enc,
)

from langgraph_agentgit import AgentGitSaver, StrictSerializer, UnsafeTypeError
from langgraph_agentgit.backends import is_postgres_url
from langgraph_agentgit.saver_base import AgentGitSaverBase
from langgraph_agentgit.storage.blobs import VALUE, decode_value, encode_value

TESTS_DIR = Path(__file__).parent

# LangGraph's JsonPlusSerializer() default unless LANGGRAPH_STRICT_MSGPACK is set: every
# msgpack type is revived (with a warning). Spelled out so the contrast does not depend on
# the environment the tests run in.
PERMISSIVE = JsonPlusSerializer(allowed_msgpack_modules=True)


class _Raw:
    """A stand-in serializer so ``encode_value`` itself lays out the stored form of an
    arbitrary (type name, payload) pair."""

    def dumps_typed(self, value: tuple[str, bytes]) -> tuple[str, bytes]:
        return value

    def loads_typed(self, data: tuple[str, bytes]) -> Any:  # pragma: no cover - unused
        raise NotImplementedError


def stored(type_name: str, payload: bytes) -> bytes:
    """The bytes the saver keeps in ``agentgit_blobs.data`` / ``agentgit_checkpoints.body``
    for a value of that type and payload, laid out by the saver's own ``encode_value``."""
    encoded: Any = encode_value(_Raw(), (type_name, payload))  # type: ignore[arg-type]
    # encode_value returns the stored bytes, or (stored bytes, raw payload).
    return encoded[0] if isinstance(encoded, tuple) else encoded


def touch_payloads(marker: Path) -> dict[str, ormsgpack.Ext]:
    """msgpack extensions as LangGraph's ``_msgpack_enc`` writes them, each of which makes
    the permissive serializer call a function of the attacker's choosing."""
    command = f"touch {shlex.quote(str(marker))}"
    return {
        "os.system(*args)": ormsgpack.Ext(
            EXT_CONSTRUCTOR_POS_ARGS, _msgpack_enc(("os", "system", [command]))
        ),
        "os.system(arg)": ormsgpack.Ext(
            EXT_CONSTRUCTOR_SINGLE_ARG, _msgpack_enc(("os", "system", command))
        ),
        "open(**kwargs)": ormsgpack.Ext(
            EXT_CONSTRUCTOR_KW_ARGS,
            _msgpack_enc(("builtins", "open", {"file": str(marker), "mode": "w"})),
        ),
    }


class _RawPostgres:
    """A psycopg connection taking the tests' ``?`` placeholders, autocommit."""

    def __init__(self, url: str) -> None:
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)

    def execute(self, query: str, params: tuple[Any, ...] = ()) -> Any:
        return self.conn.execute(query.replace("?", "%s"), params or None)

    def close(self) -> None:
        self.conn.close()


def connect_raw(db_path: str) -> closing[Any]:
    """Another connection to the database, to tamper with stored rows (either engine)."""
    if is_postgres_url(db_path):
        return closing(_RawPostgres(db_path))
    return closing(sqlite3.connect(db_path, isolation_level=None))


@pytest.fixture
def db_path(any_db: str) -> str:
    """Every test here runs on both engines: a SQLite file, then a Postgres schema."""
    return any_db


def write_chat(db_path: str) -> None:
    with AgentGitSaver.from_conn_string(db_path) as saver:
        graph = build_chat_graph().compile(checkpointer=saver)
        graph.invoke({"messages": [HumanMessage("hello", id="h-1")]}, cfg("t"))


def read_everything(db_path: str) -> None:
    """Every read path a user has: tuple, list, graph state and history (cold caches)."""
    with AgentGitSaver.from_conn_string(db_path) as saver:
        saver.get_tuple(cfg("t"))
        list(saver.list(cfg("t")))
        list(saver.list(None))
        graph = build_chat_graph().compile(checkpointer=saver)
        graph.get_state(cfg("t"))
        list(graph.get_state_history(cfg("t")))


# --- msgpack constructors ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["os.system(*args)", "os.system(arg)", "open(**kwargs)"])
@pytest.mark.parametrize("where", ["channel value", "checkpoint body", "pending write"])
def test_tampered_msgpack_never_runs_code(
    db_path: str, tmp_path: Path, kind: str, where: str
) -> None:
    """A crafted constructor payload in a channel value, a checkpoint body or a write is
    read back as plain data; the permissive serializer runs the same bytes."""
    marker = tmp_path / "pwned"
    ext = touch_payloads(marker)[kind]
    if where == "pending write":
        with AgentGitSaver.from_conn_string(db_path) as saver:
            graph = build_interrupt_graph().compile(checkpointer=saver)
            graph.invoke({"steps": []}, cfg("t"))  # paused: the interrupt is a stored write
    else:
        write_chat(db_path)

    with connect_raw(db_path) as conn:
        if where == "checkpoint body":
            rid, body = conn.execute(
                "SELECT rid, body FROM agentgit_checkpoints ORDER BY checkpoint_id DESC LIMIT 1"
            ).fetchone()
            decoded = decode_value(StrictSerializer(), body)
            evil = stored("msgpack", ormsgpack.packb({**decoded, "evil": ext}))
            conn.execute("UPDATE agentgit_checkpoints SET body = ? WHERE rid = ?", (evil, rid))
        else:
            if where == "channel value":
                (refs,) = conn.execute(
                    "SELECT refs FROM agentgit_checkpoints ORDER BY checkpoint_id DESC LIMIT 1"
                ).fetchone()
                blob_id = json.loads(refs)["messages"]
            else:
                (blob_id,) = conn.execute(
                    "SELECT blob_id FROM agentgit_writes WHERE channel = '__interrupt__'"
                ).fetchone()
            evil = stored("msgpack", ormsgpack.packb(["looks harmless", {"nested": [ext]}]))
            conn.execute(
                "UPDATE agentgit_blobs SET kind = ?, deps = NULL, data = ? WHERE id = ?",
                (VALUE, evil, blob_id),
            )

    if where == "pending write":
        with AgentGitSaver.from_conn_string(db_path) as saver:
            head = saver.get_tuple(cfg("t"))
            assert head is not None and head.pending_writes
            build_interrupt_graph().compile(checkpointer=saver).get_state(cfg("t"))
    else:
        read_everything(db_path)
    assert not marker.exists(), "reading the tampered database ran the payload"

    # Contrast: the same stored bytes, decoded by LangGraph's permissive default.
    decode_value(PERMISSIVE, evil)
    assert marker.exists(), "the payload is not a working exploit, the test proves nothing"


def test_tampered_value_reads_back_as_its_plain_data(db_path: str, tmp_path: Path) -> None:
    """A blocked constructor is replaced by its arguments (LangGraph's blocked-type
    behaviour), so the rest of the state still reads."""
    marker = tmp_path / "pwned"
    write_chat(db_path)
    ext = touch_payloads(marker)["os.system(*args)"]
    with connect_raw(db_path) as conn:
        (refs,) = conn.execute(
            "SELECT refs FROM agentgit_checkpoints ORDER BY checkpoint_id DESC LIMIT 1"
        ).fetchone()
        conn.execute(
            "UPDATE agentgit_blobs SET kind = ?, deps = NULL, data = ? WHERE id = ?",
            (VALUE, stored("msgpack", ormsgpack.packb(["ok", ext])), json.loads(refs)["messages"]),
        )
    with AgentGitSaver.from_conn_string(db_path) as saver:
        head = saver.get_tuple(cfg("t"))
    assert head is not None
    assert head.checkpoint["channel_values"]["messages"] == [
        "ok",
        [f"touch {shlex.quote(str(marker))}"],
    ]
    assert not marker.exists()


# --- legacy encodings ----------------------------------------------------------------------------


class _Exploit:
    """Pickles to a call of ``os.system``."""

    def __init__(self, command: str) -> None:
        self.command = command

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return (os.system, (self.command,))


def legacy_payloads(marker: Path) -> dict[str, tuple[str, bytes, JsonPlusSerializer]]:
    """(stored type name, payload, a LangGraph serializer configured to accept it)."""
    command = f"touch {shlex.quote(str(marker))}"
    lc = {"lc": 2, "type": "constructor", "id": ["os", "system"], "args": [command]}
    return {
        "json": (
            "json",
            json.dumps(lc).encode(),
            JsonPlusSerializer(allowed_json_modules=True),
        ),
        "pickle": (
            "pickle",
            pickle.dumps(_Exploit(command)),
            JsonPlusSerializer(pickle_fallback=True),
        ),
    }


@pytest.mark.parametrize("encoding", ["json", "pickle"])
def test_legacy_encodings_are_refused(db_path: str, tmp_path: Path, encoding: str) -> None:
    """Values stored with the legacy ``json`` (lc constructor) or ``pickle`` encodings raise
    ``UnsafeTypeError`` naming the encoding, and nothing runs."""
    marker = tmp_path / "pwned"
    type_name, payload, lenient = legacy_payloads(marker)[encoding]
    write_chat(db_path)
    with connect_raw(db_path) as conn:
        (refs,) = conn.execute(
            "SELECT refs FROM agentgit_checkpoints ORDER BY checkpoint_id DESC LIMIT 1"
        ).fetchone()
        conn.execute(
            "UPDATE agentgit_blobs SET kind = ?, deps = NULL, data = ? WHERE id = ?",
            (VALUE, stored(type_name, payload), json.loads(refs)["messages"]),
        )

    with AgentGitSaver.from_conn_string(db_path) as saver:
        with pytest.raises(UnsafeTypeError, match=repr(encoding)):
            saver.get_tuple(cfg("t"))
        with pytest.raises(UnsafeTypeError):
            build_chat_graph().compile(checkpointer=saver).get_state(cfg("t"))
    with pytest.raises(UnsafeTypeError):
        StrictSerializer().loads_typed((type_name, payload))
    with pytest.raises(UnsafeTypeError):
        StrictSerializer(allowed_types=[("os", "system")]).loads_typed((type_name, payload))
    assert not marker.exists()

    lenient.loads_typed((type_name, payload))  # LangGraph, configured to accept it, runs it
    assert marker.exists()


# --- allowlists ----------------------------------------------------------------------------------


def run_typed_graph(saver: AgentGitSaverBase) -> dict[str, Any]:
    graph = build_typed_state_graph().compile(checkpointer=saver)
    return graph.invoke({"order": Order("sku-1", 1), "note": Note(text="hi")}, cfg("t"))


def test_strict_serializer_allowed_types_revive_user_types(db_path: str) -> None:
    """``StrictSerializer(allowed_types=[...])`` revives exactly the named user types; the
    narrowest serializer (``trust_loaded_models=False``) hands back their plain data."""
    serde = StrictSerializer(allowed_types=[Order, (Note.__module__, Note.__name__)])
    with AgentGitSaver.from_conn_string(db_path, serde=serde) as saver:
        run_typed_graph(saver)
    with AgentGitSaver.from_conn_string(db_path, serde=serde) as saver:
        head = saver.get_tuple(cfg("t"))
        graph = build_typed_state_graph().compile(checkpointer=saver)
        again = graph.invoke({"count": 10}, cfg("t"))
    assert head is not None
    assert head.checkpoint["channel_values"]["order"] == Order("sku-1", 2)
    assert head.checkpoint["channel_values"]["note"] == Note(text="hi!")
    assert again == {"order": Order("sku-1", 3), "note": Note(text="hi!!"), "count": 11}

    narrowest = StrictSerializer(trust_loaded_models=False)
    with AgentGitSaver.from_conn_string(db_path, serde=narrowest) as strict:
        plain = strict.get_tuple(cfg("t"))
    assert plain is not None
    assert plain.checkpoint["channel_values"]["order"] == {"sku": "sku-1", "qty": 3}
    assert plain.checkpoint["channel_values"]["note"] == {"text": "hi!!"}


def test_with_allowlist_clone_revives_and_keeps_its_own_cache(db_path: str) -> None:
    """``saver.with_allowlist`` (what LangGraph calls on compile under strict msgpack)
    returns a saver on the same database that revives the listed types, without sharing
    decoded values with the original, which keeps returning plain data."""
    with AgentGitSaver.from_conn_string(db_path) as saver:
        run_typed_graph(saver)
    narrowest = StrictSerializer(trust_loaded_models=False)
    with AgentGitSaver.from_conn_string(db_path, serde=narrowest) as saver:
        original_first = saver.get_tuple(cfg("t"))  # fills the original's cache with dicts
        clone = saver.with_allowlist(
            [(Order.__module__, Order.__name__), (Note.__module__, Note.__name__)]
        )
        assert clone is not saver
        revived = clone.get_tuple(cfg("t"))
        original_again = saver.get_tuple(cfg("t"))
        # The clone still writes to the same file.
        clone.put(revived.config, revived.checkpoint, revived.metadata, {})  # type: ignore[union-attr]
        assert len(list(saver.list(cfg("t")))) == len(list(clone.list(cfg("t"))))
    assert original_first is not None and revived is not None and original_again is not None
    assert revived.checkpoint["channel_values"]["order"] == Order("sku-1", 2)
    assert revived.checkpoint["channel_values"]["note"] == Note(text="hi!")
    for plain in (original_first, original_again):
        assert plain.checkpoint["channel_values"]["order"] == {"sku": "sku-1", "qty": 2}


def test_graph_with_user_types_in_state_round_trips(db_path: str) -> None:
    """A graph whose state holds a dataclass and a Pydantic model keeps working across
    runs and restarts with the default saver, as it does on LangGraph's own savers.

    This runs in the default environment (``LANGGRAPH_STRICT_MSGPACK`` unset), where
    LangGraph does *not* call ``with_allowlist`` on compile."""
    with AgentGitSaver.from_conn_string(db_path) as saver:
        first = run_typed_graph(saver)
    with AgentGitSaver.from_conn_string(db_path) as saver:
        graph = build_typed_state_graph().compile(checkpointer=saver)
        state = graph.get_state(cfg("t"))
        assert first == {"order": Order("sku-1", 2), "note": Note(text="hi!"), "count": 1}
        assert state.values["order"] == Order("sku-1", 2)
        assert isinstance(state.values["order"], Order)
        assert isinstance(state.values["note"], Note)
        again = graph.invoke({"count": 10}, cfg("t"))
    assert again == {"order": Order("sku-1", 3), "note": Note(text="hi!!"), "count": 11}


_STRICT_ENV_SCRIPT = """
import json, sys
from graphs import Note, Order, build_typed_state_graph
from langgraph_agentgit import AgentGitSaver

path = sys.argv[1]
config = {"configurable": {"thread_id": "t"}}
with AgentGitSaver.from_conn_string(path) as saver:
    graph = build_typed_state_graph().compile(checkpointer=saver)
    # LangGraph applied the graph's allowlist itself: a clone with a wider serializer.
    cloned = graph.checkpointer is not saver
    graph.invoke({"order": Order("sku-1", 1), "note": Note(text="hi")}, config)
with AgentGitSaver.from_conn_string(path) as saver:
    graph = build_typed_state_graph().compile(checkpointer=saver)
    state = graph.get_state(config).values
    again = graph.invoke({"count": 10}, config)
print(json.dumps({
    "cloned": cloned,
    "types": [type(state["order"]).__name__, type(state["note"]).__name__],
    "again": [again["order"].qty, again["note"].text, again["count"]],
}))
"""


def test_graph_with_user_types_under_strict_msgpack(db_path: str) -> None:
    """With ``LANGGRAPH_STRICT_MSGPACK=true`` LangGraph calls ``with_allowlist`` with the
    state schema's types on compile, and the saver's clone revives them across restarts.
    (A subprocess, because LangGraph reads the variable at import time.)"""
    env = {**os.environ, "LANGGRAPH_STRICT_MSGPACK": "true"}
    done = subprocess.run(
        [sys.executable, "-c", _STRICT_ENV_SCRIPT, db_path],
        cwd=TESTS_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"cloned": True, "types": ["Order", "Note"], "again": [3, "hi!!", 11]}


# --- metadata filters ----------------------------------------------------------------------------


BAD_KEYS = ["source') OR 1=1 --", 'x" , "$', "a.b", "", "source OR 1=1", "k" * 129, "a[0]"]


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_metadata_filter_keys_are_validated(saver: AgentGitSaverBase, key: str) -> None:
    """Keys that could change the meaning of the JSON path or the SQL are refused with a
    clear ``ValueError`` (per thread and across threads) instead of widening the result."""
    d = drive(build_chat_graph(), saver)
    await d.invoke({"messages": [HumanMessage("hi", id="h-1")]}, cfg("t"))
    assert len(await saver_list(saver, cfg("t"), filter={"source": "input"})) == 1

    for config in (cfg("t"), None):
        with pytest.raises(ValueError, match="invalid metadata filter key") as raised:
            await saver_list(saver, config, filter={key: "input"})
        assert repr(key) in str(raised.value)
        with pytest.raises(ValueError, match="invalid metadata filter key"):
            await saver_list(saver, config, filter={"source": "input", key: 1})


async def test_metadata_filter_values_are_bound(saver: AgentGitSaverBase) -> None:
    """Filter values are parameters: an injection attempt just matches nothing, and a real
    value full of quotes matches exactly its checkpoints."""
    d = drive(build_chat_graph(), saver)
    tricky = "it's \"quoted\" -- ') OR 1=1; DROP TABLE agentgit_blobs; --"
    await d.invoke(
        {"messages": [HumanMessage("hi", id="h-1")]}, {**cfg("t"), "metadata": {"note": tricky}}
    )
    await d.invoke({"messages": [HumanMessage("yo", id="h-2")]}, cfg("u"))
    total = len(await saver_list(saver, None))
    assert total == 6

    for value in ["' OR 1=1 --", 'input" OR "1"="1', "input' --", "%", "*"]:
        assert await saver_list(saver, cfg("t"), filter={"source": value}) == []
        assert await saver_list(saver, None, filter={"source": value}) == []
    matching = await saver_list(saver, None, filter={"note": tricky})
    assert len(matching) == 3
    assert {t.config["configurable"]["thread_id"] for t in matching} == {"t"}
    assert await saver_list(saver, None, filter={"note": tricky[:-1]}) == []
    assert len(await saver_list(saver, None)) == total  # nothing was dropped


def test_a_tampered_row_never_imports_a_module(db_path: str, tmp_path: Path) -> None:
    """A payload naming a data class in a module the program has not imported is read as
    plain data and the module is never imported, although it is on ``sys.path`` (the
    permissive serializer imports it, running its top-level code)."""
    marker = tmp_path / "imported"
    module_dir = tmp_path / "mods"
    module_dir.mkdir()
    (module_dir / "agentgit_evil_mod.py").write_text(
        "import dataclasses, pathlib\n"
        f"pathlib.Path({str(marker)!r}).touch()\n"
        "@dataclasses.dataclass\n"
        "class Thing:\n"
        "    x: int = 0\n"
    )
    ext = ormsgpack.Ext(
        EXT_CONSTRUCTOR_KW_ARGS, _msgpack_enc(("agentgit_evil_mod", "Thing", {"x": 1}))
    )
    payload = ormsgpack.packb({"value": ext})
    sys.path.insert(0, str(module_dir))
    try:
        assert StrictSerializer().loads_typed(("msgpack", payload)) == {"value": {"x": 1}}
        assert not marker.exists()
        assert "agentgit_evil_mod" not in sys.modules
        assert type(PERMISSIVE.loads_typed(("msgpack", payload))["value"]).__name__ == "Thing"
        assert marker.exists()
    finally:
        sys.path.remove(str(module_dir))
        sys.modules.pop("agentgit_evil_mod", None)


def test_loaded_data_models_revive_but_loaded_functions_do_not() -> None:
    """The default serializer revives a dataclass from an already imported module (the
    graph's own state types), while a function of an imported module (``os.system``,
    ``builtins.open``) stays plain data."""
    order = ormsgpack.Ext(
        EXT_CONSTRUCTOR_KW_ARGS, _msgpack_enc((Order.__module__, "Order", {"sku": "s", "qty": 1}))
    )
    call = ormsgpack.Ext(EXT_CONSTRUCTOR_POS_ARGS, _msgpack_enc(("os", "getcwd", [])))
    payload = ormsgpack.packb([order, call])
    revived = StrictSerializer().loads_typed(("msgpack", payload))
    assert revived == [Order("s", 1), []]
    narrow = StrictSerializer(trust_loaded_models=False).loads_typed(("msgpack", payload))
    assert narrow == [{"sku": "s", "qty": 1}, []]


def test_an_interrupt_while_decoding_is_not_reported_as_damage() -> None:
    """msgpack turns anything raised in its ext hook into "ValueError: ext_hook failed";
    a Ctrl-C landing there must reach the caller as KeyboardInterrupt, not as a
    CorruptDataError about a value that is fine."""
    from langgraph_agentgit.storage import serde as serde_module

    strict = StrictSerializer()
    stored_value = strict.dumps_typed([HumanMessage("hello", id="h-1")])

    def interrupted(code: int, data: bytes) -> Any:
        raise KeyboardInterrupt

    strict._unpack_ext_hook = serde_module._guarded(interrupted)
    with pytest.raises(KeyboardInterrupt):
        strict.loads_typed(stored_value)
    assert StrictSerializer().loads_typed(stored_value)[0].content == "hello"
