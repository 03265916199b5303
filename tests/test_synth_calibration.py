"""Calibration statistics of the stand-in presets: computed by hand on a small case, stored real statistics used
when the data are absent, and those stored numbers equal to what the data give (skipped without ../shared)."""
from __future__ import annotations

import numpy as np
import pytest

from crowdlib import paths
from crowdlib.data import CrowdRecord, synth_stats


def test_calibration_stats_by_hand() -> None:
    recs = [CrowdRecord("a", np.array([[0.0, 0.0], [3.0, 4.0], [30.0, 40.0]], np.float32), image_size=(100, 100)),
            CrowdRecord("b", np.zeros((0, 2), np.float32), image_size=(50, 80))]
    st = synth_stats.calibration_stats(recs)
    assert st["n_images"] == 2 and st["count_mean"] == pytest.approx(1.5) and st["height_median"] == 75
    # nearest neighbours of image a: 5, 5, 45 px at height 100
    assert st["nn_px_q"][2] == pytest.approx(5.0) and st["nn_rel_q"][2] == pytest.approx(0.05)
    assert sum(st["count_hist"]) == 0  # both images (3 and 0 heads) lie below the first edge, 5 heads
    assert sum(st["nn_rel_hist"]) == 2  # 0.05, 0.05; the 0.45 lies beyond the last edge, 0.1
    with pytest.raises(ValueError, match="no records"):
        synth_stats.calibration_stats([])


def test_stored_real_statistics_are_used_without_the_data(tmp_path) -> None:
    for part in ("A", "B"):
        st, source = synth_stats.real_calibration_stats(part, tmp_path)
        assert "stored statistics" in source and st["n_images"] == {"A": 300, "B": 400}[part]


def test_stored_real_statistics_match_the_data() -> None:
    root = paths.default_data_root("ShanghaiTech")
    if root is None or not (root / "part_A" / "train_data").is_dir():
        pytest.skip("ShanghaiTech is not in ../shared here")
    for part in ("A", "B"):
        computed, _ = synth_stats.real_calibration_stats(part, root)
        stored, _ = synth_stats.real_calibration_stats(part, "/nonexistent")
        assert computed["count_hist"] == stored["count_hist"] and computed["nn_rel_hist"] == stored["nn_rel_hist"]
        np.testing.assert_allclose(computed["nn_rel_q"], stored["nn_rel_q"], rtol=1e-12)
