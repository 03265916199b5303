"""L2R nest builder and pair enumeration: containment, sizes, determinism under a seed, pairs of stacked nests."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from crowdlib.methods import l2r
from crowdlib.methods.l2r.data import LabelledImage, UnlabeledImage, sample_nests
from crowdlib.targets.ranking import crop_counts, nest_pairs, nested_crops, ranking_pairs


@pytest.mark.parametrize("shape", [(90, 120), (200, 150), (64, 64)])
def test_nests_are_contained_square_and_shrink_by_the_factor(shape):
    for seed in range(20):
        c = nested_crops(shape, n=5, scale=0.75, seed=seed, anchor_region=0.5)
        w, h = c[:, 2] - c[:, 0], c[:, 3] - c[:, 1]
        np.testing.assert_allclose(w, h)                       # squares
        np.testing.assert_allclose(w[1:] / w[:-1], 0.75)       # the shrink factor
        assert (c[:, :2] >= -1e-9).all() and (c[:, 2] <= shape[1] + 1e-9).all() and (c[:, 3] <= shape[0] + 1e-9).all()
        assert (c[1:, :2] >= c[:-1, :2] - 1e-9).all() and (c[1:, 2:] <= c[:-1, 2:] + 1e-9).all()  # each inside the last
        assert np.isclose(w[0], 2 * min(c[0, 0] + w[0] / 2, shape[1] - c[0, 0] - w[0] / 2,
                                        c[0, 1] + h[0] / 2, shape[0] - c[0, 1] - h[0] / 2))   # the largest square


def test_nest_counts_never_grow_and_the_builder_is_deterministic():
    rng = np.random.default_rng(0)
    pts = rng.uniform([0, 0], [120, 90], (300, 2))
    for seed in range(10):
        counts = crop_counts(pts, nested_crops((90, 120), 5, 0.75, seed))
        assert (np.diff(counts) <= 0).all()
    np.testing.assert_array_equal(nested_crops((90, 120), 4, 0.6, 7), nested_crops((90, 120), 4, 0.6, 7))
    assert not np.array_equal(nested_crops((90, 120), seed=7), nested_crops((90, 120), seed=8))


def test_sample_nests_sizes_order_and_seed():
    cfg = l2r.make_config(nest_k=3, input_size=32, flip_p=0.0, anchor_region=0.0)  # anchor at the centre
    img = torch.zeros(3, 80, 100, dtype=torch.uint8)
    img[:, 30:50, 40:60] = 255  # a bright square around the anchor: inner crops are brighter on average
    pool = [UnlabeledImage("a", img), UnlabeledImage("b", img.flip(-1))]
    x, boxes = sample_nests(pool, [0, 1], cfg, np.random.default_rng(3))
    assert x.shape == (2 * 4, 3, 32, 32) and boxes.shape == (2, 4, 4)
    x2, boxes2 = sample_nests(pool, [0, 1], cfg, np.random.default_rng(3))
    assert torch.equal(x, x2) and np.array_equal(boxes, boxes2)
    means = x[:4].mean(dim=(1, 2, 3))
    assert (means[1:] >= means[:-1] - 1e-4).all()
    # a labelled image serves as well (held-out nests): only its pixels are read
    x3, _ = sample_nests([LabelledImage("c", img, np.zeros((0, 2), np.float32))], [0], cfg, np.random.default_rng(0))
    assert x3.shape == (4, 3, 32, 32)


def test_pairs_of_one_nest_and_of_stacked_nests():
    np.testing.assert_array_equal(ranking_pairs(3), [[0, 1], [0, 2], [1, 2]])
    p = nest_pairs(2, 3)
    np.testing.assert_array_equal(p, [[0, 1], [0, 2], [1, 2], [3, 4], [3, 5], [4, 5]])
    assert nest_pairs(4, 5).shape == (4 * 10, 2)
    assert nest_pairs(0, 5).shape == (0, 2)
    assert (nest_pairs(3, 5)[:, 0] < nest_pairs(3, 5)[:, 1]).all()
    assert (nest_pairs(3, 5) // 5)[:, 0].tolist() == (nest_pairs(3, 5) // 5)[:, 1].tolist()  # never across nests
    with pytest.raises(ValueError, match="nest_size"):
        nest_pairs(2, 1)
    with pytest.raises(ValueError, match="n_nests"):
        nest_pairs(-1, 3)
