"""Differential fuzzing: random sequences of graph-level operations (invoke/ainvoke,
resume, replay, update_state, fork_thread, SessionManager.rollback, copy_thread, prune,
delete_thread, delete_for_runs, reopen) on AgentGit's savers and on LangGraph's
InMemorySaver, compared after every step. See fuzz_machine.py for the machine,
fuzz_reference.py for the reference and fuzz_views.py for what is compared.

One test per graph (two per graph in the long run, each with half the sequences, so
``-n 2`` keeps both workers busy). Two modes:

* default (part of ``make test``): a short, derandomized run - AGENTGIT_FUZZ_EXAMPLES
  unset means 30 sequences in all, same sequences every run, no example database;
* ``make fuzz``: AGENTGIT_FUZZ_EXAMPLES=N sequences in all (split between the graphs),
  random every run, failures saved in ``.hypothesis/fuzz`` (git-ignored) and replayed
  first next time. AGENTGIT_FUZZ_STEPS sets the steps per sequence;
  AGENTGIT_FUZZ_SHRINK=0 reports failures unshrunk (quick triage);
  AGENTGIT_FUZZ_DELTA_DEPTH (default 3) bounds delta chains, so that sequences cross
  list indexes and packed tails;
  AGENTGIT_FUZZ_SEEDED=1 makes the long run derandomized too (the same N sequences on
  every run of a commit, one test per graph, no example database): what CI runs, so that
  a red CI run is a regression, never a new sequence drawn by chance (new sequences are
  what ``make fuzz`` explores on the development machine).
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import pg
import pytest
from fuzz_graphs import SPECS
from fuzz_machine import ENGINES, STATS, SUBJECT_KINDS, make_machine
from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.stateful import run_state_machine_as_test

from langgraph_agentgit.storage import blobs

LONG = "AGENTGIT_FUZZ_EXAMPLES" in os.environ
SEEDED = not LONG or os.environ.get("AGENTGIT_FUZZ_SEEDED", "0") == "1"
TOTAL = int(os.environ.get("AGENTGIT_FUZZ_EXAMPLES", "30"))
STEPS = int(os.environ.get("AGENTGIT_FUZZ_STEPS", "20" if LONG else "12"))
# Derandomized shards of one graph would draw the same sequences: one test per graph.
SHARDS = 1 if SEEDED else 2
SHRINK = os.environ.get("AGENTGIT_FUZZ_SHRINK", "1") != "0"
DELTA_DEPTH = int(os.environ.get("AGENTGIT_FUZZ_DELTA_DEPTH", "3"))
HYPOTHESIS_DIR = Path(__file__).resolve().parents[2] / ".hypothesis"
DATABASE = HYPOTHESIS_DIR / "fuzz"
STATS_DIR = HYPOTHESIS_DIR / "fuzz-stats"


def fuzz_settings() -> settings:
    return settings(
        max_examples=max(1, math.ceil(TOTAL / (len(SPECS) * SHARDS))),
        stateful_step_count=STEPS,
        deadline=None,
        derandomize=SEEDED,
        database=None if SEEDED else DirectoryBasedExampleDatabase(DATABASE),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        print_blob=LONG,
        phases=list(Phase) if SHRINK else [p for p in Phase if p is not Phase.shrink],
    )


@pytest.fixture(autouse=True)
def short_delta_chains(monkeypatch: pytest.MonkeyPatch) -> None:
    """A message list is written as deltas, then as an index with its tails packed, every
    ``MAX_DELTA_DEPTH`` versions (64): more than a sequence's steps. At 3 the sequences
    cross indexes and packs (storage.blobs) many times, forks and prunes included."""
    monkeypatch.setattr(blobs, "MAX_DELTA_DEPTH", DELTA_DEPTH)


@pytest.mark.parametrize("shard", range(SHARDS))
@pytest.mark.parametrize("graph", sorted(SPECS))
def test_savers_match_inmemory_on_random_sequences(graph: str, shard: int) -> None:
    STATS.clear()
    started = time.monotonic()
    try:
        run_state_machine_as_test(make_machine(SPECS[graph]), settings=fuzz_settings())
    finally:
        # Counts of what ran (sequences, comparisons, each operation by the reference's
        # outcome), for the run's report; in the git-ignored .hypothesis directory.
        STATS_DIR.mkdir(parents=True, exist_ok=True)
        report = {"seconds": round(time.monotonic() - started, 1), **dict(sorted(STATS.items()))}
        (STATS_DIR / f"{graph}-{shard}.json").write_text(json.dumps(report, indent=1))


def test_postgres_savers_are_fuzzed() -> None:
    """The sequences above run on the Postgres savers too; without a server this skips,
    so that their absence shows (and fails under AGENTGIT_REQUIRE_POSTGRES=1)."""
    if "postgres" not in ENGINES:
        pytest.skip("AGENTGIT_FUZZ_ENGINES leaves Postgres out of this run")
    pg.require()
    assert {"sync-postgres", "async-postgres"} <= set(SUBJECT_KINDS)
