"""crowdlib.data.synth_stats: hand-computed neighbour statistics and table shapes."""
from __future__ import annotations

import numpy as np
import pytest

from crowdlib.data.records import CrowdRecord
from crowdlib.data.synth_stats import (head_table, local_count, nn_distance, pearson, scene_table,
                                       size_nn_correlation, time_render)
from crowdlib.data.synthetic import render_scene


def test_nn_distance_and_local_count_by_hand():
    pts = np.array([[0, 0], [3, 4], [3, 0], [100, 100]], float)
    np.testing.assert_allclose(nn_distance(pts), [3, 4, 3, np.hypot(97, 96)])
    np.testing.assert_allclose(nn_distance(pts, k=2)[0], (3 + 5) / 2)
    assert local_count(pts, 4.5).tolist() == [1, 1, 2, 0]
    assert np.isinf(nn_distance(pts[:1])).all()
    assert local_count(np.zeros((0, 2)), 1.0).shape == (0,)
    with pytest.raises(ValueError):
        nn_distance(pts, k=0)


def test_pearson():
    assert pearson([1, 2, 3, 4], [2, 4, 6, 8]) == pytest.approx(1.0)
    assert pearson([1, 2, 3, 4], [8, 6, 4, 2]) == pytest.approx(-1.0)
    assert np.isnan(pearson([1, 2], [1, 2]))
    assert np.isnan(pearson([1, 1, 1], [1, 2, 3]))


def test_tables():
    recs = [render_scene("crowd_a", 0, i, height=64, width=64) for i in range(2)]
    recs.append(CrowdRecord("empty", points=np.zeros((0, 2)), image_size=(64, 64)))
    heads = head_table(recs)
    assert len(heads) == sum(r.count for r in recs)
    assert set(heads["region"]) <= {"dense", "sparse"}
    assert (heads["nn_dist"] > 0).all()
    corr = size_nn_correlation(heads)
    assert corr["heads"].sum() == len(heads) and "pearson_r" in corr
    by2 = size_nn_correlation(heads, by=["preset", "region"])
    assert {"preset", "region"} <= set(by2.columns)
    sc = scene_table(recs)
    assert sc["count"].tolist() == [r.count for r in recs]
    assert head_table([recs[-1]]).empty
    t = time_render("crowd_b", n_images=2, height=32, width=32)
    assert len(t) == 2 and (t["ms"] >= 0).all()
