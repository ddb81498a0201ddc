"""The timelines notebook's promise: ``AGENTGIT_TIMELINE_PNG=docs/timeline.png`` (a
relative path) writes the picture under the repository's root, whichever directory the
notebook runs in (Jupyter runs it in ``notebooks/``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_notebooks import _execute


def test_a_relative_picture_path_is_taken_from_the_repository_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "clone"
    (repo / "docs").mkdir(parents=True)
    (repo / "notebooks").mkdir()
    (repo / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    monkeypatch.setenv("AGENTGIT_TIMELINE_PNG", "docs/timeline.png")
    _execute("timelines.ipynb", repo / "notebooks")
    picture = repo / "docs" / "timeline.png"
    assert picture.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert not (repo / "notebooks" / "docs").exists()
