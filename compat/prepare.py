"""Assemble the `make compat` run directory from the sdist of the *installed* langgraph.

LangGraph's own tests are not in its wheel, so this downloads the sdist of exactly the
version in the running environment (``pip download --no-deps --no-binary :all:``), unpacks
it under the cache directory and copies into ``<cache>/run/tests``:

- the test files named by ``TEST_FILE_PATTERNS`` that request LangGraph's checkpointer
  fixtures (``sync_checkpointer`` / ``async_checkpointer``); a file that matches but never
  asks for one would not exercise our savers, so it is left out and said so;
- the helper modules those files import (``tests/any_str.py``, ``tests/messages.py``, ...)
  and their syrupy snapshots;
- this directory's ``conftest.py`` (our fixtures, replacing LangGraph's, which needs
  postgres, redis and pycryptodome) and ``pytest.ini``.

Nothing of this is committed: the run directory is rebuilt on every call, the sdist is
downloaded once per version. Usage::

    python compat/prepare.py [--cache .compat]    # then run pytest in <cache>/run

Exit status 1 (with the reason on stderr) when the sdist cannot be downloaded or has none
of the expected files.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib.metadata
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Checkpointer-parametrized groups of LangGraph's suite: time travel, subgraph persistence,
# interrupts, strict resume, DeltaChannel, checkpoint migration, pregel, large cases.
TEST_FILE_PATTERNS = (
    "test_time_travel.py",
    "test_time_travel_async.py",
    "test_subgraph_persistence.py",
    "test_subgraph_persistence_async.py",
    "test_interruption.py",
    "test_interrupt_state.py",
    "test_strict_resume.py",
    "test_delta_channel_*.py",
    "test_checkpoint_migration.py",
    "test_pregel.py",
    "test_pregel_async.py",
    "test_large_cases.py",
    "test_large_cases_async.py",
)
CHECKPOINTER_FIXTURES = ("sync_checkpointer", "async_checkpointer")


def fail(message: str) -> None:
    print(f"compat: {message}", file=sys.stderr)
    raise SystemExit(1)


def sdist_tests(cache: Path, version: str) -> Path:
    """The ``tests`` directory of langgraph ``version``'s sdist, downloading it if needed."""
    root = cache / f"langgraph-{version}"
    if (root / "tests").is_dir():
        return root / "tests"
    dist = cache / "dist"
    archive = dist / f"langgraph-{version}.tar.gz"
    if not archive.exists():
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--no-binary",
            ":all:",
            f"langgraph=={version}",
            "-d",
            str(dist),
        ]
        if subprocess.run(command, check=False).returncode != 0 or not archive.exists():
            fail(f"could not download the sdist of langgraph=={version}")
    staging = cache / f".unpack-{version}"
    shutil.rmtree(staging, ignore_errors=True)
    with tarfile.open(archive) as tar:
        # The "data" filter refuses absolute paths, links out of the tree and devices.
        tar.extractall(staging, filter="data")
    unpacked = staging / f"langgraph-{version}"
    if not (unpacked / "tests").is_dir():
        fail(f"the sdist of langgraph=={version} has no tests/ directory")
    # Renamed into place only once complete, so an interrupted unpack is redone next time.
    unpacked.rename(root)
    shutil.rmtree(staging, ignore_errors=True)
    return root / "tests"


def select_test_files(tests: Path) -> tuple[list[Path], list[Path]]:
    """(files to run, matching files that never request a checkpointer fixture)."""
    chosen: list[Path] = []
    without_fixture: list[Path] = []
    for path in sorted(tests.glob("test_*.py")):
        if not any(fnmatch.fnmatch(path.name, pattern) for pattern in TEST_FILE_PATTERNS):
            continue
        text = path.read_text(encoding="utf-8")
        if any(name in text for name in CHECKPOINTER_FIXTURES):
            chosen.append(path)
        else:
            without_fixture.append(path)
    return chosen, without_fixture


def build_run_dir(tests: Path, run: Path, chosen: list[Path]) -> None:
    shutil.rmtree(run, ignore_errors=True)
    target = run / "tests"
    target.mkdir(parents=True)
    for path in tests.glob("*.py"):
        # LangGraph's conftest files import postgres, redis and pycryptodome clients.
        if path.name.startswith(("test_", "conftest")):
            continue
        shutil.copy2(path, target / path.name)
    for path in chosen:
        shutil.copy2(path, target / path.name)
    snapshots = tests / "__snapshots__"
    for path in chosen:
        snapshot = snapshots / f"{path.stem}.ambr"
        if snapshot.exists():
            (target / "__snapshots__").mkdir(exist_ok=True)
            shutil.copy2(snapshot, target / "__snapshots__" / snapshot.name)
    shutil.copy2(HERE / "conftest.py", target / "conftest.py")
    shutil.copy2(HERE / "pytest.ini", run / "pytest.ini")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=".compat", help="cache directory (git-ignored)")
    args = parser.parse_args(argv)
    cache = Path(args.cache).resolve()
    version = importlib.metadata.version("langgraph")
    tests = sdist_tests(cache, version)
    chosen, without_fixture = select_test_files(tests)
    if not chosen:
        fail(f"langgraph=={version}'s sdist has none of the expected test files")
    run = cache / "run"
    build_run_dir(tests, run, chosen)
    print(f"compat: langgraph {version}, {len(chosen)} test files in {run}")
    for path in without_fixture:
        print(f"compat: left out {path.name} (requests no checkpointer fixture)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
