"""Write notebooks from Python: ``write_notebook(path, cells)``.

Each cell is ``("parameters", src)``, ``("code", src)`` or ``("md", src)``. The parameters cell is tagged
``parameters`` for papermill; the notebook is written with outputs cleared and the ``crowdlib`` kernel.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat


def write_notebook(path: str | Path, cells: list[tuple[str, str]]) -> Path:
    """Write ``cells`` to ``path`` as a cleared notebook using the ``crowdlib`` kernel."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "crowdlib", "display_name": "crowdlib (.venv)", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    out = []
    for kind, src in cells:
        src = textwrap.dedent(src).strip("\n")
        if kind == "md":
            out.append(nbformat.v4.new_markdown_cell(src))
        elif kind == "code":
            out.append(nbformat.v4.new_code_cell(src))
        elif kind == "parameters":
            cell = nbformat.v4.new_code_cell(src)
            cell.metadata["tags"] = ["parameters"]
            out.append(cell)
        else:
            raise ValueError(f"unknown cell kind {kind!r}")
    for i, c in enumerate(out):
        c["id"] = f"cell-{i:02d}"
    nb.cells = out
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path
