"""notebooks/tour.ipynb runs from a clean kernel without an error, and the outputs saved in it are the
ones its code produces (text and tables exactly, pictures to within JPEG noise)."""

from __future__ import annotations

import base64
import copy
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

nbformat = pytest.importorskip("nbformat", reason="needs the notebook extra")
nbclient = pytest.importorskip("nbclient", reason="needs the notebook extra")
pytest.importorskip("torch", reason="the notebook trains a tiny model: needs the training extra")
pytestmark = pytest.mark.notebook

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "tour.ipynb"
TEXT_TYPES = ("text/plain", "text/html", "text/markdown")
MAX_BYTES = 3 * 1024 * 1024
# Mean absolute difference (0..255) allowed between a saved picture and a fresh one: the pictures
# are deterministic, but a different matplotlib or JPEG library could move a few pixels.
PICTURE_TOLERANCE = 1.0


@pytest.fixture(scope="module")
def saved():
    return nbformat.read(NOTEBOOK, as_version=4)


@pytest.fixture(scope="module")
def fresh(saved):
    """The notebook executed now, from a clean kernel in notebooks/ (as `jupyter lab notebooks/` runs it).
    Any cell that raises fails every test that uses this."""
    notebook = copy.deepcopy(saved)
    client = nbclient.NotebookClient(
        notebook,
        timeout=600,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as error:
        pytest.fail(f"{NOTEBOOK.name}: a cell failed:\n{error}")
    return notebook


def code_cells(notebook) -> list:
    return [cell for cell in notebook.cells if cell.cell_type == "code"]


def text_outputs(cell) -> list:
    """What a cell printed and displayed as text (streams, tables, reprs), in order. Consecutive chunks of
    one stream are joined: where the kernel cuts a stream depends on timing, not on what was printed."""
    texts: list = []
    for output in cell.outputs:
        if output.output_type == "stream":
            if texts and texts[-1][0] == output.name:
                texts[-1] = (output.name, texts[-1][1] + output.text)
            else:
                texts.append((output.name, output.text))
        elif output.output_type == "error":
            texts.append(("error", output.ename, output.evalue))
        elif output.output_type in ("display_data", "execute_result"):
            texts += [(kind, output.data[kind]) for kind in TEXT_TYPES if kind in output.data]
    return texts


def pictures(cell) -> list[np.ndarray]:
    return [
        np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"), dtype=np.float32)
        for output in cell.outputs
        for kind, data in output.get("data", {}).items()
        if kind in ("image/png", "image/jpeg")
    ]


def test_every_cell_runs_on_a_clean_kernel(fresh):
    cells = code_cells(fresh)
    assert [cell.execution_count for cell in cells] == list(range(1, len(cells) + 1))
    assert not [output for cell in cells for output in cell.outputs if output.output_type == "error"]


def test_saved_notebook_is_small_complete_and_shows_everything(saved):
    assert NOTEBOOK.stat().st_size < MAX_BYTES
    cells = code_cells(saved)
    assert all(cell.execution_count for cell in cells), "saved without running every cell"
    assert sum(len(pictures(cell)) for cell in cells) >= 8, "saved without its pictures"
    hidden = [
        cell.source[:40]
        for cell in saved.cells
        if cell.metadata.get("jupyter", {}).get("source_hidden")
        or cell.metadata.get("jupyter", {}).get("outputs_hidden")
    ]
    assert not hidden


def test_saved_text_and_tables_are_what_the_code_prints(saved, fresh):
    for saved_cell, fresh_cell in zip(code_cells(saved), code_cells(fresh), strict=True):
        assert text_outputs(saved_cell) == text_outputs(fresh_cell), (
            f"outputs of this cell changed:\n{saved_cell.source}"
        )


def test_saved_pictures_are_what_the_code_draws(saved, fresh):
    for saved_cell, fresh_cell in zip(code_cells(saved), code_cells(fresh), strict=True):
        before, after = pictures(saved_cell), pictures(fresh_cell)
        assert len(before) == len(after), f"pictures of this cell changed:\n{saved_cell.source}"
        for old, new in zip(before, after):
            assert old.shape == new.shape, f"a picture changed size:\n{saved_cell.source}"
            assert np.abs(old - new).mean() <= PICTURE_TOLERANCE, f"a picture changed:\n{saved_cell.source}"
