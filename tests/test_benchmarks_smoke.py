"""The benchmark suite's smoke mode: every workload runs, and what it stored reads back.

Timings are not checked (they mean nothing at these sizes); stored data is.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pg
import pytest

# `benchmarks` is a top-level directory, not an installed package; `python -m pytest` puts
# the repository on sys.path but a bare `pytest` does not.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import run  # noqa: E402
from benchmarks.fake_models import (  # noqa: E402
    ScriptedChatModel,
    answer_text,
    question_text,
    sentence_text,
    user_message,
)
from benchmarks.workloads import (  # noqa: E402
    SAVER_KINDS,
    build_graph,
    expected_counts,
    run_conversation,
)


def test_text_is_exact_length_deterministic_and_wordy() -> None:
    for chars in (2, 5, 23, 24, 25, 200, 800):
        for seed in range(20):
            text = sentence_text(chars, seed)
            assert len(text) == chars
            assert text == sentence_text(chars, seed)
    answer = answer_text(7)
    assert answer != answer_text(8)
    words = answer.rstrip(".").replace(".", "").split()
    assert len(words) > 80 and len(set(words)) > 40  # natural text, not one repeated token
    assert question_text(3).endswith("?") and len(question_text(3)) == 200


def test_the_server_workloads_threads_share_no_answer() -> None:
    """Every thread of the server workload gets answers of its own, as a server's users
    do: shared answers would be stored and decoded once for all threads."""
    graph = build_graph("chat").compile()
    answers = [
        graph.invoke({"messages": [user_message(1, seed=k)]})["messages"][-1].content
        for k in (0, 1, 0)
    ]
    assert answers[0] != answers[1] and answers[0] == answers[2]
    assert len(answers[0]) == 800


def test_scripted_model_calls_tools_on_schedule() -> None:
    model = ScriptedChatModel()
    assert [model.wants_tools(t) for t in range(1, 7)] == [False, True] * 3
    assert len(model.tool_calls(2)) == 1
    assert len(model.tool_calls(6)) == 3  # every third tool turn calls in parallel
    assert {c["name"] for c in model.tool_calls(6)} == {"search", "calculator"}


def test_floor_stores_the_same_history_as_a_serializing_saver(tmp_path: Path) -> None:
    # The floor's serializer shares objects; if LangGraph's in-place updates leaked into
    # what it stored, its history would differ from InMemorySaver's.
    floor = run_conversation("tool", SAVER_KINDS["floor"], 6, tmp_path)
    memory = run_conversation("tool", SAVER_KINDS["memory"], 6, tmp_path)
    assert floor["history_digest"] == memory["history_digest"]
    assert floor["digest"] == memory["digest"]
    assert (floor["checkpoints"], floor["messages"]) == expected_counts("tool", 6)


def test_postgres_rows_store_what_sqlite_stores(tmp_path: Path) -> None:
    # The bench's PostgreSQL rows, tiny: each saver in a fresh schema, measured, dropped.
    pg.require()
    sqlite = run_conversation("chat", SAVER_KINDS["agentgit"], 3, tmp_path)
    for key in ("postgres", "postgres_async", "agentgit_pg", "agentgit_pg_async"):
        result = run_conversation("chat", SAVER_KINDS[key], 3, tmp_path, postgres_url=pg.URL)
        assert (result["digest"], result["history_digest"]) == (
            sqlite["digest"],
            sqlite["history_digest"],
        ), key
        assert (result["checkpoints"], result["messages"]) == expected_counts("chat", 3)
        assert result["readback_ok"], key
        assert result["db_bytes"] >= result["table_bytes"] > 0, key
        assert result["empty_db_bytes"] > 0, key


def test_smoke_run_writes_report_and_every_saver_reads_back(tmp_path: Path) -> None:
    out = tmp_path / "bench.md"
    # The Postgres rows run where the tests' server answers (the test above says when not).
    postgres = "off" if pg.unavailable() else pg.URL
    assert run.main(["--smoke", "--quiet", "--out", str(out), "--postgres", postgres]) == 0
    doc: dict[str, Any] = json.loads(out.with_suffix(".json").read_text())
    markdown = out.read_text()

    plan = run.SMOKE
    for workload, sizes, savers in (
        ("chat", plan.chat_turns, plan.chat_savers),
        ("tool", plan.tool_turns, plan.tool_savers),
    ):
        for turns in sizes:
            by_saver = doc["conversations"][workload][str(turns)]
            assert set(by_saver) == set(savers)
            checkpoints, messages = expected_counts(workload, turns)
            finals = set()
            for saver, entry in by_saver.items():
                if SAVER_KINDS[saver].postgres and postgres == "off":
                    assert not entry["runs"] and entry["skipped"], saver
                    continue
                (result,) = entry["runs"]
                assert result["messages"] == messages, (workload, saver)
                assert result["checkpoints"] == checkpoints, (workload, saver)
                assert result["readback_ok"], (workload, saver)
                if SAVER_KINDS[saver].on_disk:
                    assert result["db_bytes"] > 0
                finals.add((result["digest"], result["history_digest"]))
            assert len(finals) == 1, f"{workload}: savers disagree on the stored state"

    assert set(doc["branching"]) == {c.key for c in plan.branch_cases}
    for key, entry in doc["branching"].items():
        (result,) = entry["runs"]
        flags = {k: v for k, v in result.items() if k.endswith("_ok")}
        assert flags and all(flags.values()), (key, flags)
        assert result["fork_thread_ms"] > 0

    for backend in plan.concurrency_backends:
        (result,) = doc["concurrency"][backend]["2"]["runs"]
        assert result["errors"] == 0, result["error_samples"]
        assert result["unreadable"] == 0
        assert result["threads_with_wrong_state"] == 0
        assert result["checkpoints"] == result["expected_checkpoints"] > 0

    # The server workload: every saver measured each operation on the smoke shape (its
    # workers fail the run if a measured turn was not stored).
    from benchmarks.server import SERVER_SAVERS

    for threads, turns in plan.server_shapes:
        runs = doc["server"]["shapes"][f"{threads}x{turns}"]["runs"]
        expected = {
            saver
            for group, savers in SERVER_SAVERS.items()
            if postgres != "off" or group not in ("postgres", "agentgit_pg")
            for saver in savers
        }
        assert set(runs) == expected
        for saver, saver_runs in runs.items():
            for metric in ("cold_get_state", "cold_turn", "warm_turn"):
                samples = [v for r in saver_runs for v in r[metric]]
                assert samples and all(v > 0 for v in samples), (saver, metric)
    sweep = doc["server"]["lengths"]
    assert set(sweep["runs"]) == {"sqlite", "agentgit"}
    for saver_runs in sweep["runs"].values():
        for length in plan.server_lengths:
            samples = [v for r in saver_runs for v in r[str(length)]]
            assert len(samples) == plan.server_length_threads * plan.server_reps
            assert all(v > 0 for v in samples)
    assert "## Server: cold threads" in markdown
    assert "### Cold get_state by thread length (SQLite)" in markdown

    # Data lifecycle: every checkpoint carried by import-langgraph, export and import, the
    # copies' final states are SqliteSaver's, and each throughput is a measured rate.
    lifecycle = doc["lifecycle"]
    checkpoints, _ = expected_counts("chat", plan.lifecycle_turns)
    assert lifecycle["checkpoints"] == checkpoints
    assert lifecycle["exported_checkpoints"] == lifecycle["imported_checkpoints"] == checkpoints
    assert lifecycle["readback_ok"]
    for step in ("langgraph_import", "export", "import"):
        assert lifecycle[f"{step}_checkpoints_per_s"] > 0 and lifecycle[f"{step}_mb_per_s"] > 0
    assert min(lifecycle[k] for k in ("sqlite_bytes", "agentgit_bytes", "copy_bytes")) > 0
    assert "## 5. Export, import and bringing a LangGraph database" in markdown
    engines = {"sqlite"} | (set() if postgres == "off" else {"postgres"})
    # Deleting a session: each size measured on each engine, with the shipped collector
    # and a whole sweep.
    costs = lifecycle["delete_cost"]
    assert [(c["engine"], c["sessions"]) for c in costs] == [
        (engine, size) for engine in sorted(engines, reverse=True) for size in plan.delete_sessions
    ]
    assert all(c["family_ms"] > 0 and c["whole_ms"] > 0 for c in costs)
    assert "Deleting one session" in markdown
    # The web workload: the page drew the session it was given, every checkpoint a dot
    # (the smoke session is too small for a lane to be collapsed).
    web = doc["web"]
    assert web["branches"] == web["lanes"] == plan.web_branches
    assert web["checkpoints"] >= plan.web_checkpoints and web["dots"] == web["checkpoints"]
    assert len(web["page_ms"]) == plan.web_reps and "## Web viewer" in markdown

    # The message index: its cost measured on each engine with the index on and off, and
    # every query shape answered on the large database.
    assert set(doc["search"]["cost"]) == engines == set(doc["search"]["latency"])
    for cost in doc["search"]["cost"].values():
        assert cost["messages"] == expected_counts("chat", plan.search_turns)[1]
        assert cost["index_bytes"] > 0 and cost["turn_ms_indexed"] > 0
    for engine, latency in doc["search"]["latency"].items():
        sessions = plan.search_sessions if engine == "sqlite" else plan.search_pg_sessions
        assert latency["messages"] == sessions * plan.search_per_session
        hits = {q["label"]: q["hits"] for q in latency["queries"]}
        assert hits["a word in no message"] == 0
        assert hits["a word in every message"] == 20  # the default limit
        assert hits["a ticket number (in a handful of messages)"] >= 1
    assert "## Message index" in markdown

    assert all(check["passed"] for check in doc["checks"]), doc["checks"]
    # The web page's target, and per engine the deletion's and two of the message index.
    assert len(doc["targets"]) == 10 + 2 * len(plan.server_shapes) + 1 + 3 * len(engines)
    measured = [t for t in doc["targets"] if postgres != "off" or "PostgreSQL" not in t["name"]]
    assert len(measured) >= 6 and all(t["measured"] is not None for t in measured)
    assert "## Targets" in markdown and "## 4. Concurrency" in markdown
    assert "PASS" in markdown or "FAIL" in markdown


@pytest.mark.parametrize("argv", [["--workloads", "chat,nonsense"]])
def test_cli_rejects_unknown_workloads(argv: list[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        run.main([*argv, "--out", str(tmp_path / "x.md")])
