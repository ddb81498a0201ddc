"""Turning raw benchmark runs into summaries, target verdicts and `docs/benchmarks.md`."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable
from typing import Any

from benchmarks.workloads import SAVER_KINDS, percentile

Doc = dict[str, Any]
TIMES = "\N{MULTIPLICATION SIGN}"
RANGE = "\N{EN DASH}"

# --- statistics -------------------------------------------------------------------------


def summarize(values: Iterable[Any]) -> dict[str, float] | None:
    """Median, min and max of the numeric values (None when there are none)."""
    numbers = [
        float(v)
        for v in values
        if isinstance(v, int | float) and not isinstance(v, bool) and not math.isnan(v)
    ]
    if not numbers:
        return None
    return {
        "median": statistics.median(numbers),
        "min": min(numbers),
        "max": max(numbers),
        "n": len(numbers),
    }


def median(runs: list[dict[str, Any]] | None, metric: str) -> float | None:
    """The median of ``metric`` over ``runs``."""
    stat = summarize(r.get(metric) for r in runs or [])
    return stat["median"] if stat else None


def summarize_runs(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """A summary for every numeric metric that occurs in ``runs``."""
    keys = {k for r in runs for k, v in r.items() if isinstance(v, int | float)}
    out = {}
    for key in sorted(keys):
        stat = summarize(r.get(key) for r in runs)
        if stat is not None:
            out[key] = stat
    return out


# --- formatting -------------------------------------------------------------------------


def fmt_bytes(n: float) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("KB", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}" if n / size < 100 else f"{n / size:.0f} {unit}"
    return f"{n:.0f} B"


def fmt_number(n: float) -> str:
    if n == 0:
        return "0"
    if abs(n) >= 100:
        return f"{n:,.0f}"
    if abs(n) >= 10:
        return f"{n:.1f}"
    if abs(n) >= 1:
        return f"{n:.2f}"
    return f"{n:.3f}"


def fmt_stat(stat: dict[str, float] | None, fmt: Callable[[float], str] = fmt_number) -> str:
    """``median (min-max)``; just the median when there was one run or no spread."""
    if stat is None:
        return "—"
    text = fmt(stat["median"])
    lo, hi = fmt(stat["min"]), fmt(stat["max"])
    if stat["n"] > 1 and (lo != text or hi != text):
        text += f" ({lo}{RANGE}{hi})"
    return text


def fmt_ratio(ratio: float | None) -> str:
    if ratio is None:
        return "—"
    if ratio >= 10:
        return f"{ratio:,.0f}{TIMES}"
    if ratio >= 1:
        return f"{ratio:.2f}{TIMES}"
    return f"{ratio:.3f}{TIMES}"


def _ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


# --- targets and checks -----------------------------------------------------------------


def _conv_runs(doc: Doc, workload: str, turns: int, saver: str) -> list[dict[str, Any]] | None:
    entry = doc.get("conversations", {}).get(workload, {}).get(str(turns), {}).get(saver)
    return entry["runs"] if entry and entry.get("runs") else None


def evaluate_targets(doc: Doc) -> list[dict[str, Any]]:
    """The issue's targets, each with the measured figure and a verdict."""
    plan = doc["plan"]
    t, long_t = plan["target_turns"], plan["long_turns"]
    ag = _conv_runs(doc, "chat", t, "agentgit")
    sq = _conv_runs(doc, "chat", t, "sqlite")
    ag_pg = _conv_runs(doc, "chat", t, "agentgit_pg")
    pg = _conv_runs(doc, "chat", t, "postgres")
    ag_long = _conv_runs(doc, "chat", long_t, "agentgit")
    floor_long = _conv_runs(doc, "chat", long_t, "floor")
    branching = doc.get("branching", {})
    small = branching.get(plan["fork_small"], {}).get("runs")
    large = branching.get(plan["fork_large"], {}).get("runs")

    def target(name: str, measured: float | None, limit: float, higher_is_better: bool) -> dict:
        passed = None
        if measured is not None:
            passed = measured >= limit if higher_is_better else measured <= limit
        sign = "≥" if higher_is_better else "≤"
        return {
            "name": name,
            "limit": limit,
            "limit_text": f"{sign} {limit:g}{TIMES}",
            "measured": measured,
            "passed": passed,
        }

    server_targets = []
    for shape, entry in doc.get("server", {}).get("shapes", {}).items():
        runs = entry["runs"]
        server_targets.append(
            target(
                f"Server, {shape} (threads x turns): AgentGitSaver cold get_state ÷ SqliteSaver's",
                _ratio(
                    server_median(runs, "agentgit", "cold_get_state"),
                    server_median(runs, "sqlite", "cold_get_state"),
                ),
                1.0,
                False,
            )
        )
        server_targets.append(
            target(
                f"Server, {shape} (threads x turns): AgentGitSaver cold turn ÷ SqliteSaver's",
                _ratio(
                    server_median(runs, "agentgit", "cold_turn"),
                    server_median(runs, "sqlite", "cold_turn"),
                ),
                0.5,
                False,
            )
        )
    return [
        target(
            f"Chat, {t} turns: AgentGitSaver database ÷ raw message bytes",
            median(ag, "db_over_raw"),
            3,
            False,
        ),
        target(
            f"Chat, {t} turns: SqliteSaver database ÷ AgentGitSaver database",
            _ratio(median(sq, "db_bytes"), median(ag, "db_bytes")),
            100,
            True,
        ),
        target(
            f"Chat, {t} turns: AgentGitSaver last-10-turn latency ÷ SqliteSaver's",
            _ratio(median(ag, "last10_ms"), median(sq, "last10_ms")),
            0.5,
            False,
        ),
        target(
            f"Chat, {t} turns: AgentGitSaver full history read ÷ SqliteSaver's",
            _ratio(median(ag, "history_ms"), median(sq, "history_ms")),
            0.1,
            False,
        ),
        target(
            f"Chat, {long_t} turns: AgentGitSaver last-10-turn latency ÷ floor's",
            _ratio(median(ag_long, "last10_ms"), median(floor_long, "last10_ms")),
            1.5,
            False,
        ),
        target(
            f"fork_thread at {_label(doc, plan['fork_large'])} ÷ at "
            f"{_label(doc, plan['fork_small'])}",
            _ratio(median(large, "fork_thread_ms"), median(small, "fork_thread_ms")),
            2,
            False,
        ),
        target(
            f"PostgreSQL, chat, {t} turns: AgentGitSaver tables ÷ raw message bytes",
            median(ag_pg, "db_over_raw"),
            3,
            False,
        ),
        target(
            f"PostgreSQL, chat, {t} turns: PostgresSaver tables ÷ AgentGitSaver tables",
            _ratio(median(pg, "db_bytes"), median(ag_pg, "db_bytes")),
            30,
            True,
        ),
        target(
            f"PostgreSQL, chat, {t} turns: AgentGitSaver last-10-turn latency ÷ PostgresSaver's",
            _ratio(median(ag_pg, "last10_ms"), median(pg, "last10_ms")),
            0.5,
            False,
        ),
        target(
            f"PostgreSQL, chat, {t} turns: AgentGitSaver full history read ÷ PostgresSaver's",
            _ratio(median(ag_pg, "history_ms"), median(pg, "history_ms")),
            0.1,
            False,
        ),
        *server_targets,
        *_delete_targets(doc),
        *_web_targets(doc),
        *search_targets(doc),
    ]


def _delete_targets(doc: Doc) -> list[dict[str, Any]]:
    """Deleting one session costs the same from many sessions as from a few (within 2x),
    on each engine measured."""
    costs = (doc.get("lifecycle") or {}).get("delete_cost") or []
    out = []
    for engine, prefix in (("sqlite", ""), ("postgres", "PostgreSQL: ")):
        # Runs recorded before Postgres rows existed carry no engine: SQLite's.
        runs = [c for c in costs if c.get("engine", "sqlite") == engine]
        if len(runs) < 2:
            continue
        small, large = runs[0], runs[-1]
        out.append(
            _target(
                f"{prefix}delete_session from {large['sessions']:,} sessions ÷ from "
                f"{small['sessions']:,}",
                _ratio(large["family_ms"], small["family_ms"]),
                2,
                False,
            )
        )
    return out


#: The web viewer's target: a big session's page rendered in under this many ms.
WEB_PAGE_LIMIT_MS = 300


def _web_targets(doc: Doc) -> list[dict[str, Any]]:
    data = doc.get("web")
    if not data:
        return []
    measured = data["page_median_ms"]
    return [
        {
            "name": f"Web viewer: session page of {data['checkpoints']:,} checkpoints on "
            f"{data['branches']} branches, median render",
            "limit": WEB_PAGE_LIMIT_MS,
            "limit_text": f"≤ {WEB_PAGE_LIMIT_MS} ms",
            "unit": "ms",
            "measured": measured,
            "passed": measured <= WEB_PAGE_LIMIT_MS,
        }
    ]


def fmt_target(target: dict[str, Any]) -> str:
    """A target's measured figure in its unit (a ratio unless it says otherwise)."""
    if target.get("unit") == "ms" and target["measured"] is not None:
        return f"{target['measured']:.0f} ms"
    return fmt_ratio(target["measured"])


def search_targets(doc: Doc) -> list[dict[str, Any]]:
    """The message index's targets: per-turn overhead and search latency."""
    found = doc.get("search")
    if not found:
        return []
    out = []
    for engine, cost in found["cost"].items():
        out.append(
            _target(
                f"{_ENGINES[engine]}, chat, {cost['turns']} turns: time indexing per turn ÷ "
                "the rest of the turn",
                cost["index_ms_per_turn"] / (cost["turn_ms_indexed"] - cost["index_ms_per_turn"]),
                0.1,
                False,
            )
        )
    for engine, latency in found["latency"].items():
        worst = max(q["p95_ms"] for q in latency["queries"])
        out.append(
            _target(
                f"{_ENGINES[engine]}, {latency['messages']:,} messages in "
                f"{latency['sessions']:,} sessions: slowest query shape's p95 search, ms ÷ 100",
                worst / 100,
                1,
                False,
            )
        )
    return out


_ENGINES = {"sqlite": "SQLite", "postgres": "PostgreSQL"}


def _target(name: str, measured: float | None, limit: float, higher_is_better: bool) -> dict:
    passed = None
    if measured is not None:
        passed = measured >= limit if higher_is_better else measured <= limit
    sign = "≥" if higher_is_better else "≤"
    return {
        "name": name,
        "limit": limit,
        "limit_text": f"{sign} {limit:g}{TIMES}",
        "measured": measured,
        "passed": passed,
    }


def server_samples(runs: dict[str, Any], saver: str, metric: str) -> list[float]:
    """Every sample (ms) of ``metric`` for ``saver``, all repetitions pooled."""
    return [v for run in runs.get(saver, []) for v in run.get(metric, [])]


def server_median(runs: dict[str, Any], saver: str, metric: str) -> float | None:
    samples = server_samples(runs, saver, metric)
    return statistics.median(samples) if samples else None


def _label(doc: Doc, case: str) -> str:
    return doc.get("branching", {}).get(case, {}).get("label", case)


def consistency_checks(doc: Doc) -> list[dict[str, Any]]:
    """Did every saver store and read back the same data? (Not timings.)"""
    checks: list[dict[str, Any]] = []
    for workload, by_turns in doc.get("conversations", {}).items():
        for turns, by_saver in by_turns.items():
            runs = [(s, r) for s, e in by_saver.items() for r in e.get("runs") or []]
            if not runs:
                continue
            digests = {r["digest"] for _, r in runs}
            # Rows run without a history read have no history digest.
            histories = {r["history_digest"] for _, r in runs if r["history_digest"]}
            bad_counts = sorted(
                {
                    s
                    for s, r in runs
                    if r["messages"] != r["expected_messages"]
                    or r["checkpoints"] != r["expected_checkpoints"]
                    or not r["readback_ok"]
                }
            )
            checks.append(
                {
                    "name": f"{workload}, {turns} turns: identical final state and history "
                    "in every saver, expected message and checkpoint counts",
                    "passed": len(digests) == 1 and len(histories) <= 1 and not bad_counts,
                    "detail": f"{len(digests)} final-state digest(s), {len(histories)} history "
                    f"digest(s) over {len(runs)} runs"
                    + (
                        f"; wrong counts or read-back: {', '.join(bad_counts)}"
                        if bad_counts
                        else ""
                    ),
                }
            )
    for entry in doc.get("branching", {}).values():
        failed = sorted(
            {k for r in entry.get("runs", []) for k, v in r.items() if k.endswith("_ok") and not v}
        )
        checks.append(
            {
                "name": f"branching, {entry['label']}: forks show the source state, copies have "
                "every checkpoint, edits hang off the old checkpoint",
                "passed": not failed,
                "detail": "all verified" if not failed else "failed: " + ", ".join(failed),
            }
        )
    for backend, by_procs in doc.get("concurrency", {}).items():
        for procs, entry in by_procs.items():
            runs = entry.get("runs", [])
            errors = sum(r["errors"] for r in runs)
            unreadable = sum(r["unreadable"] for r in runs)
            wrong = sum(r["threads_with_wrong_state"] for r in runs)
            written = sum(r["checkpoints"] for r in runs)
            expected = sum(r["expected_checkpoints"] for r in runs)
            checks.append(
                {
                    "name": f"concurrency, {SAVER_KINDS[backend].label}, {procs} process(es): "
                    "no errors, every checkpoint written is readable",
                    "passed": errors == 0
                    and unreadable == 0
                    and wrong == 0
                    and written == expected,
                    "detail": f"{errors} errors, {unreadable} unreadable of {written} written "
                    f"({expected} expected), {wrong} threads with a wrong final state",
                    "required": backend == "agentgit",
                }
            )
    lifecycle = doc.get("lifecycle")
    if lifecycle:
        counts = (
            lifecycle["checkpoints"],
            lifecycle["exported_checkpoints"],
            lifecycle["imported_checkpoints"],
        )
        checks.append(
            {
                "name": f"lifecycle, {lifecycle['turns']} turns: import-langgraph, export and "
                "import carry every checkpoint, and each copy's final state is SqliteSaver's",
                "passed": bool(lifecycle["readback_ok"])
                and all(c == lifecycle["expected_checkpoints"] for c in counts),
                "detail": f"checkpoints {' / '.join(str(c) for c in counts)} "
                f"({lifecycle['expected_checkpoints']} expected)",
            }
        )
    return checks


# --- markdown ---------------------------------------------------------------------------

_CONV_COLUMNS: list[tuple[str, str, Callable[[float], str]]] = [
    ("db_bytes", "DB size", fmt_bytes),
    ("bytes_per_turn", "bytes/turn", fmt_bytes),
    ("db_over_raw", "DB ÷ raw", fmt_number),
    ("first10_ms", "first 10 turns, ms/turn", fmt_number),
    ("last10_ms", "last 10 turns, ms/turn", fmt_number),
    ("get_state_ms", "get_state, same saver (ms)", fmt_number),
    ("get_state_fresh_ms", "get_state, new saver (ms)", fmt_number),
    ("history_ms", "full history read (ms)", fmt_number),
]
_RATIO_COLUMNS = [
    ("db_bytes", "DB size"),
    ("last10_ms", "last-10 latency"),
    ("get_state_fresh_ms", "get_state, new saver"),
    ("history_ms", "history read"),
]


def render_markdown(doc: Doc) -> str:
    """The whole report."""
    meta = doc["meta"]
    out: list[str] = ["# Benchmarks", ""]
    out += [
        f"Generated by `{meta['command']}` on {meta['generated']} in "
        f"{meta['duration_s'] / 60:.1f} minutes"
        + (" — **smoke mode: tiny sizes, the figures mean nothing**" if meta["smoke"] else "")
        + ". Raw numbers: `"
        + meta["json_name"]
        + "`.",
        "",
        f"Saver under test: `langgraph_agentgit` at commit `{meta['git']['commit']}`"
        + (" with uncommitted changes to it" if meta["git"]["dirty"] else "")
        + f" (sources sha256 `{meta['git'].get('sources_sha256', '?')}` when the run started)."
        + (
            " **The saver's sources changed during the run**, so later figures (the "
            "concurrency processes import it afresh) may come from another version."
            if meta["git"].get("sources_sha256_at_end", meta["git"].get("sources_sha256"))
            != meta["git"].get("sources_sha256")
            else ""
        ),
        "",
        f"Every figure is the **median of {meta['repetitions']} run(s)** with the spread "
        f"(min{RANGE}max) in brackets, unless a row says otherwise.",
        "",
        "## Machine",
        "",
    ]
    machine = meta["machine"]
    out += _table(["", ""], [[k, str(v)] for k, v in machine.items()])
    out += ["", "## Package versions", ""]
    out += _table(["package", "version"], [[k, v] for k, v in meta["packages"].items()])
    out += ["", "## Targets", ""]
    rows = []
    for t in doc["targets"]:
        verdict = {True: "**PASS**", False: "**FAIL**", None: "not measured"}[t["passed"]]
        rows.append([t["name"], t["limit_text"], fmt_target(t), verdict])
    out += _table(["target", "limit", "measured", "result"], rows)
    out += ["", *_notes_on_targets(doc), ""]
    out += _conversation_sections(doc)
    out += _branching_section(doc)
    out += _concurrency_section(doc)
    out += _server_section(doc)
    out += _lifecycle_section(doc)
    out += _web_section(doc)
    out += _search_section(doc)
    out += ["## Consistency checks", ""]
    out += [
        "Not timings: whether the stored data reads back. Digests cover every message's "
        "type, id, content and tool calls; history digests cover every checkpoint's "
        "message count and last message.",
        "",
    ]
    out += _table(
        ["check", "result", "detail"],
        [[c["name"], "ok" if c["passed"] else "**FAILED**", c["detail"]] for c in doc["checks"]],
    )
    out += ["", "## Method", "", *meta["method"], ""]
    return "\n".join(out)


def _notes_on_targets(doc: Doc) -> list[str]:
    failed = [t for t in doc["targets"] if t["passed"] is False]
    if not failed:
        return ["All targets are met."]
    lines = ["Targets not met (figures as measured, not adjusted):", ""]
    for t in failed:
        lines.append(
            f"- {t['name']}: measured {fmt_ratio(t['measured'])}, limit {t['limit_text']}."
        )
    return lines


def _conversation_sections(doc: Doc) -> list[str]:
    out: list[str] = []
    titles = {
        "chat": (
            "1. Chat",
            "A one-node graph answering every question with an AIMessage (an `add_messages` "
            "channel; three checkpoints per turn). Each turn adds a 200-character question "
            "and an 800-character answer, so the raw messages weigh 1,000 bytes per turn.",
        ),
        "tool": (
            "2. Tool agent",
            "`agent → tools_condition → ToolNode → agent` with a scripted chat model: every "
            "other turn calls a tool (one `search`, or in every third such turn three calls "
            "in parallel: search, calculator, search) before answering. Five checkpoints in a "
            "tool turn, three in the others. Raw bytes count message text and tool-call JSON.",
        ),
    }
    for workload, by_turns in doc.get("conversations", {}).items():
        title, text = titles[workload]
        out += [f"## {title}", "", text, ""]
        for turns, by_saver in by_turns.items():
            out += [f"### {int(turns):,} turns", ""]
            rows = []
            notes = []
            for key, entry in by_saver.items():
                label = SAVER_KINDS[key].label
                if entry.get("note"):
                    notes.append(f"{label}: {entry['note']}")
                if not entry.get("runs"):
                    continue
                summary = entry["summary"]
                n = len(entry["runs"])
                label += f" ({n} run)" if n == 1 and doc["meta"]["repetitions"] > 1 else ""
                rows.append(
                    [label]
                    + [fmt_stat(summary.get(m), f) for m, _, f in _CONV_COLUMNS]
                    + [f"{summary['checkpoints']['median']:,.0f}"]
                )
            header = ["saver"] + [h for _, h, _ in _CONV_COLUMNS] + ["checkpoints"]
            out += _table(header, rows)
            raw = next(
                (e["runs"][0]["raw_bytes"] for e in by_saver.values() if e.get("runs")), None
            )
            if raw is not None:
                out += ["", f"Raw message bytes: {fmt_bytes(raw)}."]
            if notes:
                out += ["", "Notes:", ""] + [f"- {note}." for note in notes]
            out += _ratio_table(by_saver, "SqliteSaver", lambda kind: "sqlite")
            out += _ratio_table(
                by_saver,
                "PostgresSaver (async rows: against AsyncPostgresSaver)",
                lambda kind: "postgres_async" if kind.is_async else "postgres",
                on_postgres=True,
            )
            out += _postgres_storage(by_saver)
            out.append("")
    return out


def _ratio_table(
    by_saver: dict[str, Any],
    against: str,
    base_of: Callable[[Any], str],
    *,
    on_postgres: bool = False,
) -> list[str]:
    """Every row of one engine (SQLite and memory, or PostgreSQL) against its reference."""
    rows = []
    for key, entry in by_saver.items():
        kind = SAVER_KINDS[key]
        base = by_saver.get(base_of(kind), {}).get("runs")
        if kind.postgres != on_postgres or key == base_of(kind) or not base:
            continue
        if not entry.get("runs"):
            continue
        rows.append(
            [kind.label]
            + [
                fmt_ratio(_ratio(median(entry["runs"], m), median(base, m)))
                for m, _ in _RATIO_COLUMNS
            ]
        )
    if not rows:
        return []
    return [
        "",
        f"Against {against}, median ÷ median (below 1 is better):",
        "",
        *_table(["saver"] + [h for _, h in _RATIO_COLUMNS], rows),
    ]


_PG_COLUMNS: list[tuple[str, str, Callable[[float], str]]] = [
    ("db_bytes", "all (tables + indexes)", fmt_bytes),
    ("table_bytes", "tables (heap + TOAST)", fmt_bytes),
    ("index_bytes", "indexes", fmt_bytes),
    ("empty_db_bytes", "empty, after setup", fmt_bytes),
    ("live_tuples", "live tuples", fmt_number),
    ("dead_tuples", "dead tuples", fmt_number),
]


def _postgres_storage(by_saver: dict[str, Any]) -> list[str]:
    rows = []
    biggest: dict[str, str] = {}
    for key, entry in by_saver.items():
        if not SAVER_KINDS[key].postgres or not entry.get("runs"):
            continue
        summary = entry["summary"]
        rows.append(
            [SAVER_KINDS[key].label] + [fmt_stat(summary.get(m), f) for m, _, f in _PG_COLUMNS]
        )
        tables = entry["runs"][0].get("pg_tables") or {}
        if tables and not SAVER_KINDS[key].is_async:
            top = sorted(tables.items(), key=lambda kv: -kv[1])[:3]
            biggest[SAVER_KINDS[key].label] = ", ".join(
                f"`{name}` {fmt_bytes(size)}" for name, size in top
            )
    if not rows:
        return []
    out = [
        "",
        "What the PostgreSQL rows' tables take, right after the run (no `VACUUM`):",
        "",
        *_table(["saver"] + [h for _, h, _ in _PG_COLUMNS], rows),
    ]
    if biggest:
        out += ["", "Largest tables (first run, indexes and TOAST included):", ""]
        out += [f"- {label}: {tables}." for label, tables in biggest.items()]
    return out


def _branching_section(doc: Doc) -> list[str]:
    cases = doc.get("branching", {})
    if not cases:
        return []
    meta = doc["meta"]
    out = [
        "## 3. Branching",
        "",
        "Going back to the middle checkpoint of a thread and continuing from there, three "
        "ways: AgentGitSaver's `fork_thread` (a new thread that inherits the history); "
        "LangGraph's own in-thread fork, `graph.update_state(old_config, values)`, which "
        "adds a checkpoint whose parent is the old one; and a full copy of the thread into "
        "a new one (AgentGitSaver's `copy_thread`; SqliteSaver has no `copy_thread`, so "
        "every checkpoint and its writes are re-put). Time is per operation (the mean of "
        f"{meta['fork_ops']} forks or edits per run; one copy per run); bytes are the growth "
        "of the database file after `wal_checkpoint(TRUNCATE)`, per operation — SQLite "
        "grows in 4 KB pages, so a few hundred bytes of rows often show as 0.",
        "",
        "The hand-built threads are chains of checkpoints written with `saver.put`, each "
        "holding a turn counter and the latest question and answer (about 1 KB): the "
        "history is long but the state is small. The chat thread is a real conversation "
        "whose state is the whole message list.",
        "",
    ]
    ops = [
        ("AgentGitSaver `fork_thread`", "fork_thread_ms", "fork_thread_bytes"),
        ("AgentGitSaver `update_state`", "agentgit_update_state_ms", "agentgit_update_state_bytes"),
        ("SqliteSaver `update_state`", "sqlite_update_state_ms", "sqlite_update_state_bytes"),
        ("AgentGitSaver `copy_thread`", "agentgit_copy_ms", "agentgit_copy_bytes"),
        ("SqliteSaver copy (re-put every checkpoint)", "sqlite_copy_ms", "sqlite_copy_bytes"),
    ]
    for entry in cases.values():
        summary = entry["summary"]
        checkpoints = int(summary["checkpoints"]["median"])
        out += [f"### {entry['label']} ({checkpoints:,} checkpoints)", ""]
        rows = []
        base = summary.get("sqlite_update_state_ms")
        for label, time_key, bytes_key in ops:
            ratio = _ratio(
                summary.get(time_key, {}).get("median"), base["median"] if base else None
            )
            rows.append(
                [
                    label,
                    fmt_stat(summary.get(time_key)),
                    fmt_stat(summary.get(bytes_key), fmt_bytes),
                    fmt_ratio(ratio),
                ]
            )
        out += _table(
            ["operation", "time per op (ms)", "bytes added per op", "time ÷ SqliteSaver edit"],
            rows,
        )
        build = [
            f"{name}: built in {fmt_stat(summary.get(f'{key}_build_s'))} s, "
            f"{fmt_bytes(summary[f'{key}_db_bytes']['median'])} after the runs"
            for name, key in (("AgentGitSaver", "agentgit"), ("SqliteSaver", "sqlite"))
            if f"{key}_db_bytes" in summary
        ]
        out += ["", "; ".join(build) + ".", ""]
    return out


def _concurrency_section(doc: Doc) -> list[str]:
    by_backend = doc.get("concurrency", {})
    if not by_backend:
        return []
    meta = doc["meta"]
    out = [
        "## 4. Concurrency",
        "",
        f"1 to {max(int(p) for b in by_backend.values() for p in b)} processes (spawned) "
        "writing into one database file at the same time, each running "
        f"{meta['concurrency']['threads']} chat threads of its own for "
        f"{meta['concurrency']['turns']} turns (turns interleaved across its threads). "
        "The database and its schema are created before the processes start. "
        "Throughput is every checkpoint written divided by the time from the moment all "
        "processes were ready to the moment the last one finished. Afterwards every "
        "checkpoint each process stored is read back with `get_tuple` and found in "
        "`list`, and each thread's final state is checked. The machine has "
        f"{meta['machine']['usable CPUs']} usable CPUs, so more processes than that "
        "compete for them as well as for the database.",
        "",
    ]
    rows = []
    for backend, by_procs in by_backend.items():
        for procs, entry in by_procs.items():
            s = entry["summary"]
            runs = entry["runs"]
            rows.append(
                [
                    SAVER_KINDS[backend].label,
                    procs,
                    fmt_stat(s.get("checkpoints_per_s")),
                    fmt_stat(s.get("seconds")),
                    str(int(s["checkpoints"]["median"])),
                    str(sum(r["errors"] for r in runs)),
                    str(sum(r["unreadable"] for r in runs)),
                ]
            )
    out += _table(
        [
            "saver",
            "processes",
            "checkpoints/s",
            "seconds",
            "checkpoints per run",
            "errors (all runs)",
            "unreadable (all runs)",
        ],
        rows,
    )
    samples = [
        f"{SAVER_KINDS[b].label}, {p} processes: {s}"
        for b, by_procs in by_backend.items()
        for p, e in by_procs.items()
        for r in e["runs"]
        for s in r["error_samples"]
    ]
    if samples:
        out += ["", "Errors seen:", ""] + [f"- `{s.strip()}`" for s in samples[:10]]
    out.append("")
    return out


#: Each server row's reference: the LangGraph saver of the same engine and I/O style.
_SERVER_REFERENCE = {
    "agentgit": "sqlite",
    "agentgit_async": "sqlite_async",
    "agentgit_pg": "postgres",
    "agentgit_pg_async": "postgres_async",
}


def _web_section(doc: Doc) -> list[str]:
    data = doc.get("web")
    if not data:
        return []
    page = summarize(data["page_ms"])
    api = summarize(data["api_timeline_ms"])
    return [
        "## Web viewer",
        "",
        f"`agentgit serve`'s session page for one session of {data['branches']} branches "
        f"and {data['checkpoints']:,} checkpoints (made by a real graph, see "
        "benchmarks/web.py), fetched in-process through Starlette's test client after one "
        f"warm-up: {len(data['page_ms'])} renders. The page drew {data['lanes']} lanes and "
        f"{data['dots']} dots (long runs collapsed) in {fmt_bytes(data['page_bytes'])}.",
        "",
        *_table(
            ["request", "ms"],
            [
                ["session page (HTML with the SVG timeline)", fmt_stat(page)],
                ["/api/sessions/{id}/timeline (JSON)", fmt_stat(api)],
            ],
        ),
        "",
    ]


def _server_section(doc: Doc) -> list[str]:
    data = doc.get("server")
    if not data or not data.get("shapes"):
        return []
    out = [
        "## Server: cold threads",
        "",
        "Many threads, most of them not in the process's memory (see Method). Median "
        "(90th percentile) in ms, then the spread of the per-repetition medians.",
        "",
    ]
    metrics = ("cold_get_state", "cold_turn", "warm_turn")
    for entry in data["shapes"].values():
        runs = entry["runs"]
        first = next(iter(runs.values()), [])
        reads = sum(len(r.get("cold_get_state", [])) for r in first)
        turns = sum(len(r.get("cold_turn", [])) for r in first)
        out += [
            f"### {entry['threads']} threads x {entry['turns']} turns",
            "",
            f"Samples per saver: {reads} cold reads, {turns} cold turns, {turns} warm turns.",
            "",
        ]
        rows = []
        for saver in runs:
            cells = [SAVER_KINDS[saver].label]
            for metric in metrics:
                samples = server_samples(runs, saver, metric)
                per_rep = [statistics.median(r[metric]) for r in runs[saver] if r.get(metric)]
                if not samples:
                    cells.append("—")
                    continue
                p90 = percentile(samples, 0.9)
                cells.append(
                    f"{fmt_number(statistics.median(samples))} ({fmt_number(p90)}); "
                    f"{fmt_number(min(per_rep))}{RANGE}{fmt_number(max(per_rep))}"
                )
            reference = _SERVER_REFERENCE.get(saver)
            for metric in metrics:
                ratio = (
                    _ratio(
                        server_median(runs, saver, metric), server_median(runs, reference, metric)
                    )
                    if reference
                    else None
                )
                cells.append(fmt_ratio(ratio) if ratio is not None else "—")
            rows.append(cells)
        out += _table(
            [
                "saver",
                "cold get_state",
                "cold turn",
                "warm turn",
                "cold get_state ÷ ref",
                "cold turn ÷ ref",
                "warm turn ÷ ref",
            ],
            rows,
        )
        out += [
            "",
            "Ratios divide by the LangGraph saver of the same engine and style (SqliteSaver, "
            "AsyncSqliteSaver, PostgresSaver, AsyncPostgresSaver); below 1 is better.",
            "",
        ]
    return out + _server_lengths_section(data.get("lengths"))


def _server_lengths_section(data: dict[str, Any] | None) -> list[str]:
    """Cold get_state by thread length (benchmarks.server.run_length_sweep)."""
    if not data:
        return []
    runs = data["runs"]
    reps = len(next(iter(runs.values()), []))
    rows = []
    for length in data["lengths"]:
        key = str(length)
        medians = {
            saver: statistics.median([v for run in saver_runs for v in run[key]])
            for saver, saver_runs in runs.items()
        }
        spread = [statistics.median(run[key]) for run in runs.get("agentgit", []) if run.get(key)]
        rows.append(
            [
                str(length),
                fmt_number(medians["sqlite"]),
                f"{fmt_number(medians['agentgit'])}; "
                f"{fmt_number(min(spread))}{RANGE}{fmt_number(max(spread))}",
                fmt_ratio(_ratio(medians["agentgit"], medians["sqlite"])),
            ]
        )
    return [
        "### Cold get_state by thread length (SQLite)",
        "",
        f"{data['per_length']} threads of each length, each read once per process in "
        f"{reps} new processes per saver; median ms (AgentGitSaver: then the spread of the "
        "per-process medians). A thread is stored as deltas with an index every 8 to 32 "
        "versions (storage.blobs.index_depth): a cold read costs most just before one.",
        "",
        *_table(["turns", "SqliteSaver", "AgentGitSaver", "AgentGitSaver ÷ SqliteSaver"], rows),
        "",
    ]


def _lifecycle_section(doc: Doc) -> list[str]:
    entry = doc.get("lifecycle")
    if not entry:
        return []
    turns = entry["turns"]
    out = [
        "## 5. Export, import and bringing a LangGraph database",
        "",
        f"A {turns:,}-turn chat written by LangGraph's `SqliteSaver` "
        f"({entry['checkpoints']:,} checkpoints) is brought in with `agentgit import-langgraph` "
        "(the thread becomes a session), exported with `agentgit export` and imported into a "
        "new database with `agentgit import`; one run. Throughput is checkpoints, and "
        "megabytes read (the SqliteSaver file, then the export file), per second of wall "
        "time; sizes are files with their write-ahead log folded in.",
        "",
    ]
    out += _table(
        ["step", "seconds", "checkpoints/s", "MB/s"],
        [
            [
                label,
                fmt_number(entry[f"{key}_s"]),
                fmt_number(entry[f"{key}_checkpoints_per_s"]),
                fmt_number(entry[f"{key}_mb_per_s"]),
            ]
            for label, key in (
                ("import-langgraph (SqliteSaver file in)", "langgraph_import"),
                ("export (JSON Lines out)", "export"),
                ("import (JSON Lines in)", "import"),
            )
        ],
    )
    out += [
        "",
        *_table(
            ["database", "size"],
            [
                ["SqliteSaver file", fmt_bytes(entry["sqlite_bytes"])],
                ["after import-langgraph (agentgit)", fmt_bytes(entry["agentgit_bytes"])],
                ["export file (JSON Lines)", fmt_bytes(entry["export_bytes"])],
                ["after import of the export (agentgit)", fmt_bytes(entry["copy_bytes"])],
            ],
        ),
        "",
    ]
    costs = entry.get("delete_cost") or []
    if costs:
        out += [
            "Deleting one session (`delete_session`) from databases of a few and of many "
            "sessions (hand-built threads), median of the deletes and the slowest: with the "
            "garbage collector as shipped (a sweep of the deleted session's family), then "
            "with a sweep of the whole database every time (the collector before it), in "
            "the same file (on PostgreSQL, the same schema).",
            "",
            *_table(
                [
                    "engine",
                    "sessions",
                    "checkpoints",
                    "delete (ms)",
                    "slowest (ms)",
                    "whole sweep (ms)",
                ],
                [
                    [
                        "PostgreSQL" if c.get("engine") == "postgres" else "SQLite",
                        f"{c['sessions']:,}",
                        f"{c['checkpoints']:,}",
                        fmt_number(c["family_ms"]),
                        fmt_number(c["family_max_ms"]),
                        fmt_number(c["whole_ms"]),
                    ]
                    for c in costs
                ],
            ),
            "",
        ]
    return out


def _search_section(doc: Doc) -> list[str]:
    found = doc.get("search")
    if not found:
        return []
    out = [
        "## Message index (search and usage counters)",
        "",
        "The chat on `AgentGitSaver` with the index kept as checkpoints are written (as "
        "shipped) and with it turned off, runs interleaved; the median over runs of each "
        "run's mean per-turn latency. Index bytes: what the `agentgit_search_*` tables and "
        "their indexes take (SQLite: `dbstat` pages, FTS5's shadow tables included; "
        "PostgreSQL: `pg_total_relation_size`).",
        "",
    ]
    rows = []
    for engine, c in found["cost"].items():
        rows.append(
            [
                _ENGINES[engine],
                str(c["turns"]),
                f"{c['turn_ms_unindexed']:.2f}",
                f"{c['turn_ms_indexed']:.2f}",
                f"{c['overhead_pct']:+.1f}%",
                f"{c['index_ms_per_turn']:.2f} ({c['index_share_pct']:.1f}%)",
                fmt_bytes(c["index_bytes"]),
                f"{c['index_over_raw']:.2f}{TIMES}",
                f"{c['db_over_raw_unindexed']:.2f}{TIMES} → {c['db_over_raw_indexed']:.2f}{TIMES}",
            ]
        )
    out += _table(
        [
            "engine",
            "turns",
            "ms/turn, no index",
            "ms/turn, index",
            "difference",
            "ms/turn inside the index (share)",
            "index bytes",
            "index ÷ raw messages",
            "database ÷ raw messages",
        ],
        rows,
    )
    for engine, lat in found["latency"].items():
        out += [
            "",
            f"Search on {_ENGINES[engine]}: {lat['messages']:,} messages in "
            f"{lat['sessions']:,} sessions, stored through `CheckpointStore.put` (one "
            f"checkpoint per session) in {lat['build_s']:.0f} s"
            + (f", {fmt_bytes(lat['db_bytes'])} on disk" if lat.get("db_bytes") else "")
            + f". `SessionManager.search` (limit 20, snippets made), warm; usage of one "
            f"session: {lat['usage_ms']:.1f} ms.",
            "",
        ]
        out += _table(
            ["query", "options", "what", "hits", "median ms", "p95 ms"],
            [
                [
                    f"`{q['query']}`",
                    ", ".join(f"{k}={v}" for k, v in q["options"].items()),
                    q["label"],
                    str(q["hits"]),
                    f"{q['median_ms']:.1f}",
                    f"{q['p95_ms']:.1f}",
                ]
                for q in lat["queries"]
            ],
        )
    return [*out, ""]
