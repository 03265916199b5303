"""SSR-HEF segmentation labels and L2R nested crops."""
import numpy as np
import pytest

from crowdlib.targets import block_max, crop_counts, nested_crops, ranking_pairs, ssr_labels


def test_ssr_template_and_scales():
    lab = ssr_labels([[20.5, 30.2]], (64, 72))
    assert set(lab) == {1, 2, 4, 8}
    s0 = lab[1]
    assert s0.dtype == np.uint8 and s0.sum() == 225
    assert s0[23:38, 13:28].all()  # 15x15 centred on pixel (30, 20)
    assert lab[2].shape == (32, 36) and lab[8].shape == (8, 9)
    for s in (2, 4, 8):
        np.testing.assert_array_equal(lab[s], block_max(s0, s))
        assert set(np.unique(lab[s])) <= {0, 1}


def test_ssr_border_zero_and_overlap():
    assert ssr_labels([[0, 0]], (40, 40))[1].sum() == 8 * 8
    assert ssr_labels(np.zeros((0, 2)), (40, 40))[4].sum() == 0
    two = ssr_labels([[10, 10], [10, 10], [12, 10]], (40, 40))[1]
    assert two.max() == 1 and two.sum() == 15 * 17
    assert ssr_labels([[5, 5]], (33, 33), scales=(3,))[3].shape == (11, 11)
    assert ssr_labels([[5, 5]], (40, 40), template=4)[1][3:7, 3:7].all()


def test_block_max_ceil_shape():
    m = np.zeros((5, 5), np.uint8)
    m[4, 4] = 1
    np.testing.assert_array_equal(block_max(m, 2), [[0, 0, 0], [0, 0, 0], [0, 0, 1]])


def test_ssr_bad_input():
    with pytest.raises(ValueError, match="template"):
        ssr_labels([[1, 1]], (10, 10), template=0)
    with pytest.raises(ValueError, match="scales"):
        ssr_labels([[1, 1]], (10, 10), scales=(1.5,))


def test_nested_crops_are_nested_and_counts_non_increasing():
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, [120, 90], (400, 2))
    for seed in range(5):
        c = nested_crops((90, 120), n=5, scale=0.75, seed=seed)
        assert c.shape == (5, 4)
        assert (c[:, 0] >= 0).all() and (c[:, 2] <= 120).all() and (c[:, 1] >= 0).all() and (c[:, 3] <= 90).all()
        assert (c[1:, :2] >= c[:-1, :2]).all() and (c[1:, 2:] <= c[:-1, 2:]).all()
        np.testing.assert_allclose((c[1:, 2] - c[1:, 0]) / (c[:-1, 2] - c[:-1, 0]), 0.75)
        counts = crop_counts(pts, c)
        assert (np.diff(counts) <= 0).all()
        for i, j in ranking_pairs(5):
            assert counts[i] >= counts[j]
    np.testing.assert_array_equal(nested_crops((90, 120), seed=3), nested_crops((90, 120), seed=3))
    assert not np.array_equal(nested_crops((90, 120), seed=3), nested_crops((90, 120), seed=4))


def test_ranking_pairs_and_errors():
    np.testing.assert_array_equal(ranking_pairs(3), [[0, 1], [0, 2], [1, 2]])
    assert ranking_pairs(1).shape == (0, 2)
    with pytest.raises(ValueError, match="scale"):
        nested_crops((10, 10), scale=1.5)
    with pytest.raises(ValueError, match="n:"):
        ranking_pairs(0)
