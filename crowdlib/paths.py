"""Where things live: the project root, the optional ``shared`` data folder, caches and reports.

Nothing here depends on the current working directory: notebooks executed by papermill from another folder
resolve the same paths. Environment variables override the defaults:

- ``CROWDLIB_SHARED``: the folder holding ``data/`` and ``papers/`` (default: ``shared`` beside the project root).
- ``CROWDLIB_CACHE``: trained-model cache (default: ``<project>/.cache``).
- ``CROWDLIB_REPORTS``: where notebooks write tables and figures (default: ``<project>/reports``).
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["project_root", "shared_root", "default_data_root", "cache_dir", "reports_dir"]

_PACKAGE_DIR = Path(__file__).resolve().parent


def project_root() -> Path:
    """The repository root (the folder holding ``pyproject.toml``), or the package's parent when installed elsewhere."""
    root = _PACKAGE_DIR.parent
    return root


def shared_root() -> Path | None:
    """The ``shared`` folder (papers and real data) if present, else ``None``."""
    env = os.environ.get("CROWDLIB_SHARED")
    candidates = [Path(env)] if env else [project_root().parent / "shared", project_root() / "shared"]
    for c in candidates:
        if (c / "data").is_dir():
            return c.resolve()
    return None


def default_data_root(name: str) -> Path | None:
    """``shared/data/<name>`` if it exists (e.g. ``"ShanghaiTech"``, ``"nwpu_loc"``), else ``None``."""
    root = shared_root()
    if root is None:
        return None
    p = root / "data" / name
    return p if p.exists() else None


def cache_dir() -> Path:
    """The trained-model cache folder (created on demand)."""
    p = Path(os.environ.get("CROWDLIB_CACHE", project_root() / ".cache"))
    p.mkdir(parents=True, exist_ok=True)
    return p


def reports_dir(notebook: str | None = None) -> Path:
    """``reports/`` (or ``$CROWDLIB_REPORTS``), or its sub-folder for one notebook; created on demand."""
    base = Path(os.environ.get("CROWDLIB_REPORTS", project_root() / "reports"))
    p = base / notebook if notebook else base
    p.mkdir(parents=True, exist_ok=True)
    return p
