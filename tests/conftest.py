"""Shared test fixtures: headless matplotlib, one torch thread, and the optional ``shared`` data root."""
from __future__ import annotations

import os

import matplotlib
import pytest

matplotlib.use("Agg")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from crowdlib import paths  # noqa: E402

SHARED = paths.shared_root()


@pytest.fixture
def shared_root():
    """The ``shared`` folder, or skip the test with a clear reason when it is absent."""
    if SHARED is None:
        pytest.skip("../shared is absent on this machine (real-data test); set CROWDLIB_SHARED to run it")
    return SHARED


@pytest.fixture(autouse=True)
def _isolated_outputs(tmp_path, monkeypatch):
    """Every test writes reports and caches into its own temporary folder."""
    monkeypatch.setenv("CROWDLIB_REPORTS", str(tmp_path / "reports"))
    monkeypatch.setenv("CROWDLIB_CACHE", str(tmp_path / "cache"))
