"""Both notebooks run headless, top to bottom, in a scratch directory, so they cannot rot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def _execute(name: str, workdir: Path) -> Any:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    # Raises CellExecutionError (with the cell and traceback) if any cell fails.
    NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
    ).execute()
    return notebook


def _outputs(notebook: Any) -> list[dict[str, Any]]:
    return [
        output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    ]


def _text(notebook: Any) -> str:
    parts = []
    for output in _outputs(notebook):
        if output.get("output_type") == "stream":
            parts.append(output["text"])
        elif "data" in output:
            parts.append(output["data"].get("text/plain", ""))
    return "\n".join(parts)


@pytest.mark.parametrize("name", ["quickstart.ipynb", "timelines.ipynb"])
def test_notebook_is_stored_without_outputs(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code)


def test_quickstart_notebook_rolls_back_and_compares(tmp_path: Path) -> None:
    notebook = _execute("quickstart.ipynb", tmp_path)
    assert not [o for o in _outputs(notebook) if o.get("output_type") == "error"]
    text = _text(notebook)
    assert "end of the first turn:" in text
    assert "== original" in text and "== after rollback" in text
    assert "lookup_order('C-3003')" in text  # the branch's different second turn
    assert "calculator('2 * 9.99 + 59')" in text  # the original's second turn
    assert (tmp_path / "quickstart.db").exists()  # written in the working directory


def test_timelines_notebook_draws_the_timeline(tmp_path: Path) -> None:
    notebook = _execute("timelines.ipynb", tmp_path)
    outputs = _outputs(notebook)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    pictures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(pictures) == 1
    assert len(pictures[0]["data"]["image/png"]) > 10_000  # base64 of a real drawing
    text = _text(notebook)
    assert "bytes of SVG, 4 fork curves" in text
    assert "gitGraph" in text  # the Mermaid source
    assert "other-order" in text and "follow-up" in text
