"""Every script in examples/ runs as its own process, exits 0 and says what it showed."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pg
import pytest
from conftest import sql_rows

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

# Per example: fragments its output must contain.
EXPECTED: dict[str, list[str]] = {
    "quickstart.py": [
        "2 turns completed",
        "== original timeline",
        "== after the rollback",
        "lookup_order('C-3003')",
        "branches: 1, checkpoints: 15",
    ],
    "branch_timelines.py": [
        "== timeline (text)",
        "== timeline (Mermaid)",
        "gitGraph",
        "== walking the branches",
        "other-order-sum: forked from other-order",
        "branches: 4, checkpoints:",
    ],
    "async_agent.py": ["[ada] branch:", "[linus] branch:", "7 + 8 = 15", "2 sessions"],
    "prebuilt_agent.py": [
        "using langgraph.prebuilt.create_react_agent",
        "== branch timeline",
        "78.98 - 10 = 68.98",
        "78.98 + 89.50 = 168.48",
    ],
    "reversible_tools.py": [
        "== plan: 3 effects after 'before-monitor', newest first",
        "irreversible send_receipt",
        "O-2 monitor cancelled; payments: P-1 $389.50 refunded; emails sent: 1",
        "checkout main: warning: branch 'main' had 2 tool effect(s) undone",
        "second rollback undid 0 effects",
        "files restored byte for byte: True",
    ],
    "human_in_the_loop.py": [
        "interrupted before ('tools',): Refund $78.98 for order A-1001?",
        "declined by a human",
        "Refunded $78.98 for order A-1001.",
    ],
}


def test_every_example_is_tested() -> None:
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_runs(name: str, engine: str, tmp_path: Path) -> None:
    env = {**os.environ, "AGENTGIT_EXAMPLES_DIR": str(tmp_path)}
    env.pop("AGENTGIT_DB", None)
    with contextlib.ExitStack() as stack:
        if engine == "postgres":
            # The same script on PostgreSQL: only the database named by AGENTGIT_DB changes.
            env["AGENTGIT_DB"] = stack.enter_context(pg.fresh_schema())
        done = subprocess.run(
            [sys.executable, str(EXAMPLES / name)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        if engine == "postgres":
            stored = sql_rows(env["AGENTGIT_DB"], "SELECT count(*) FROM agentgit_checkpoints")
            assert stored[0][0] > 0, "the example wrote nothing into AGENTGIT_DB"
    for fragment in EXPECTED[name]:
        assert fragment in done.stdout, f"{fragment!r} not in:\n{done.stdout}"
    assert "Traceback" not in done.stderr
    if engine == "sqlite":
        assert list(tmp_path.glob("*.db")), "the example wrote no database in AGENTGIT_EXAMPLES_DIR"
    else:
        assert not list(tmp_path.glob("*.db")), "AGENTGIT_DB was not used"
