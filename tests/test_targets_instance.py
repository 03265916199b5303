"""IIM instance maps: one component per head, clamps, shrinking loop, NWPU sigmas/levels."""
import numpy as np
import pytest
from scipy import ndimage

from crowdlib.targets import (
    boxes_from_sizes,
    instance_map_from_boxes,
    instance_map_from_points,
    nwpu_sigmas_levels,
    separate_boxes,
)

H, W = 64, 80
FOUR = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]])


def _check_components(m, pts, kept):
    lab, n = ndimage.label(m, structure=FOUR)
    assert n == kept.sum()
    cols = np.clip(np.floor(pts[:, 0]).astype(int), 0, m.shape[1] - 1)
    rows = np.clip(np.floor(pts[:, 1]).astype(int), 0, m.shape[0] - 1)
    ids = lab[rows[kept], cols[kept]]
    assert (ids > 0).all() and len(np.unique(ids)) == kept.sum()
    assert ndimage.label(m, structure=np.ones((3, 3)))[1] == kept.sum()  # not even corner-touching


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_dense_random_heads_give_one_component_each(seed):
    rng = np.random.default_rng(seed)
    pts = rng.uniform([-1, -1], [W + 1, H + 1], (120, 2))
    pts[5] = pts[4]  # coincident
    sizes = rng.uniform(2, 60, len(pts))
    m, kept = instance_map_from_points(pts, sizes, (H, W), return_kept=True)
    assert m.dtype == np.uint8 and set(np.unique(m)) <= {0, 1}
    assert not (kept[4] and kept[5]) and kept[4]
    _check_components(m, pts, kept)


def test_isolated_heads_keep_clamped_half_sizes():
    pts = np.array([[20.0, 20.0], [60.0, 45.0]])
    boxes = np.array([[15, 16, 25, 24], [59, 44, 61, 46]], dtype=float)  # 10x8 and 2x2
    m, kept = instance_map_from_boxes(pts, boxes, (H, W), return_kept=True)
    assert kept.all()
    lab, n = ndimage.label(m, structure=FOUR)
    assert (lab == lab[20, 20]).sum() == 11 * 9  # half sizes 5 and 4
    assert (lab == lab[45, 60]).sum() == 7 * 7  # clamped up to half 3
    big = instance_map_from_boxes([[100.0, 100.0]], [[0, 0, 200, 200]], (200, 200))
    assert big.sum() == 51 * 51  # clamped down to half 25


def test_shrinking_loop_reaches_the_required_gap():
    pts = np.array([[0.0, 0.0], [30.0, 0.0], [0.0, 100.0]])
    hw, hh = separate_boxes(pts, np.array([20.0, 12.0, 5.0]), np.array([20.0, 12.0, 5.0]))
    # pair (0, 1): the larger (head 0) shrinks by 0.9 until 30 - (hw0 + 12) >= 0.5 * hw0
    expected = 20.0
    while 30 - (expected + 12) < 0.5 * expected:
        expected *= 0.9
    assert hw[0] == pytest.approx(expected) and hw[1] == 12.0 and hw[2] == 5.0
    hw1, _ = separate_boxes(pts, np.array([20.0, 12.0, 5.0]), np.array([20.0, 12.0, 5.0]), max_iter=1)
    assert hw1[0] == pytest.approx(18.0)


def test_gap_cap():
    pts = np.array([[0.0, 0.0], [220.0, 0.0]])
    hw, _ = separate_boxes(pts, np.array([200.0, 10.0]), np.array([200.0, 10.0]), gap_cap=5.0)
    assert hw[0] == 200.0  # gap 10 >= min(0.5 * 200, 5)
    hw, _ = separate_boxes(pts, np.array([200.0, 10.0]), np.array([200.0, 10.0]))
    assert 220 - (hw[0] + 10) >= min(0.5 * hw[0], 60.0)
    prev = hw[0] / 0.9
    assert 220 - (prev + 10) < min(0.5 * prev, 60.0)  # one round earlier it was still too close


def test_special_cases_zero_one_two_three_border():
    assert instance_map_from_points(np.zeros((0, 2)), 10.0, (H, W)).sum() == 0
    assert instance_map_from_points([[10, 10]], 10.0, (H, W)).sum() == 11 * 11
    for pts in ([[10, 10], [12, 10]], [[10, 10], [12, 10], [11, 12]], [[0, 0], [W, H], [W - 1, 0]]):
        pts = np.asarray(pts, dtype=float)
        m, kept = instance_map_from_points(pts, 20.0, (H, W), return_kept=True)
        _check_components(m, pts, kept)
    m, kept = instance_map_from_points([[10, 10], [12, 10]], 20.0, (H, W), return_kept=True)
    assert kept.all()  # 2 px apart: both survive as separate components


def test_nwpu_sigmas_levels_hand_values():
    boxes = np.array([[0, 0, 10, 20], [0, 0, 1, 5], [0, 0, 400, 250], [5, 5, 5.5, 5.5]], dtype=float)
    sig, lev = nwpu_sigmas_levels(boxes)
    np.testing.assert_array_equal(sig[0], [5, 11])  # min 10/2, floor(sqrt(500)/2)
    np.testing.assert_array_equal(lev, [2, 0, 5, 0])
    assert sig.dtype == np.float32 and lev.dtype == np.int64
    assert nwpu_sigmas_levels(np.zeros((0, 4)))[0].shape == (0, 2)
    s2, l2 = nwpu_sigmas_levels(boxes_from_sizes([[10, 10]], 100.0))
    assert l2[0] == 4 and s2[0, 0] == 50


@pytest.mark.parametrize(
    "boxes, match",
    [
        (np.zeros((2, 4)), "2 boxes for 1"),
        (np.array([[5.0, 5.0, 1.0, 9.0]]), "x2 >= x1"),
        (np.array([[np.nan, 0, 1, 1]]), "NaN"),
        (np.zeros((1, 3)), "shape"),
    ],
)
def test_bad_boxes(boxes, match):
    with pytest.raises(ValueError, match=match):
        instance_map_from_boxes([[3.0, 3.0]], boxes, (H, W))
