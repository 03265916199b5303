"""Bi-knowledge transfer: Psi preserves the count, Eq. 8 at W = 0 and W = 1, Phi's binarise-and-merge, the fused
detections, the patch selector's ranges, and the paper's mAP rule against crowdlib's greedy matching."""
from __future__ import annotations

import numpy as np
import pytest

from crowdlib.methods.bkt import (confidence_map, count_errors, fuse_density, fuse_detections, kernel_radii,
                                  localization_map, paper_point_map, patch_grid, phi_points, psi, select_patches)


def test_psi_preserves_the_detection_count():
    rng = np.random.default_rng(0)
    pts = np.concatenate([rng.uniform(0, [80, 60], (25, 2)), [[0.2, 0.3], [79.9, 59.9], [40, 0.1]]]).astype(np.float32)
    sizes = rng.uniform(3, 30, len(pts)).astype(np.float32)
    m = psi(pts, sizes, (60, 80), sigma_factor=0.25, truncate=2.0)
    assert m.shape == (60, 80) and m.min() >= 0
    assert float(m.sum()) == pytest.approx(len(pts), rel=1e-5)
    assert float(psi(np.zeros((0, 2)), np.zeros(0), (10, 10)).sum()) == 0.0
    big = psi(pts[:1], [40.0], (60, 80))  # sigma grows with the predicted scale
    small = psi(pts[:1], [4.0], (60, 80))
    assert big.max() < small.max()
    with pytest.raises(ValueError, match="sizes"):
        psi(pts, sizes[:3], (60, 80))


def test_confidence_map_spreads_each_score_over_its_kernel_square():
    pts = np.array([[10.5, 10.5], [12.5, 10.5]], np.float32)
    w = confidence_map(pts, [0.4, 0.9], [2, 1], (20, 20))
    assert w[10, 8] == pytest.approx(0.4) and w[10, 7] == 0  # radius 2 around (10, 10)
    assert w[10, 12] == pytest.approx(0.9) and w[10, 11] == pytest.approx(0.9)  # overlap: the maximum
    assert w[8, 12] == pytest.approx(0.4) and w[8, 13] == 0
    assert kernel_radii(np.array([8.0]), 0.25, 2.0)[0] == 4  # sigma 2 -> int(2 * 2 + 0.5)
    with pytest.raises(ValueError, match="\\[0, 1\\]"):
        confidence_map(pts, [0.4, 1.5], [1, 1], (20, 20))


def test_fusion_at_w0_is_r_and_at_w1_is_psi():
    rng = np.random.default_rng(1)
    r, p = rng.random((8, 9)).astype(np.float32), rng.random((8, 9)).astype(np.float32)
    np.testing.assert_allclose(fuse_density(r, p, np.zeros((8, 9))), r)
    np.testing.assert_allclose(fuse_density(r, p, np.ones((8, 9))), p)
    half = fuse_density(r, p, np.full((8, 9), 0.25))
    np.testing.assert_allclose(half, 0.75 * r + 0.25 * p, rtol=1e-6)
    with pytest.raises(ValueError, match="W must"):
        fuse_density(r, p, np.full((8, 9), 1.5))
    with pytest.raises(ValueError, match="differ"):
        fuse_density(r, p[:4], np.zeros((8, 9)))


def test_phi_points_binarise_at_threshold_and_merge_within_10x10():
    v = np.zeros((40, 40), np.float32)
    v[10, 10], v[12, 13], v[10, 16] = 0.9, 0.5, 0.6  # (13, 12) is within 5 px of (10, 10): merged; (16, 10) is not
    v[30, 30] = 0.15  # below 0.2
    out = phi_points(v, threshold=0.2, merge=10)
    np.testing.assert_allclose(out["points"], [[10.5, 10.5], [16.5, 10.5]])
    np.testing.assert_allclose(out["scores"], [0.9, 0.6])
    assert len(phi_points(v, threshold=0.2, merge=1)["points"]) == 3
    assert len(phi_points(v, threshold=0.1)["points"]) == 3


def test_fused_detections_union_nms_and_sizes_by_image_half():
    size_map = np.full((100, 100), 8.0, np.float32)
    det = {"points": np.array([[20.0, 80.0], [60.0, 20.0]], np.float32), "scores": np.array([0.9, 0.8], np.float32)}
    phi = {"points": np.array([[21.0, 80.0], [70.0, 20.0], [50.0, 70.0]], np.float32),
           "scores": np.array([0.5, 0.6, 0.4], np.float32)}
    out = fuse_detections(det, phi, size_map, nms_iou=0.3, nn_factor=1.0)
    assert len(out["points"]) == 4  # (21, 80) overlaps D's (20, 80) and goes
    np.testing.assert_allclose(out["scores"], [0.9, 0.8, 0.6, 0.4])
    upper = out["points"][:, 1] < 50
    np.testing.assert_allclose(out["sizes"][upper], [10.0, 10.0])  # nearest neighbour: each other, 10 px apart
    np.testing.assert_allclose(out["sizes"][~upper], [8.0, 8.0])  # D's scale map
    assert out["from_phi"].tolist() == [False, False, True, True]
    alone = fuse_detections(det, None, size_map)
    assert len(alone["points"]) == 2 and not alone["from_phi"].any()


def test_patch_selector_ranges():
    # a 4 x 5 grid of 10 px patches with patch sums 0..19 in a shuffled order
    rng = np.random.default_rng(2)
    sums = rng.permutation(20).astype(np.float64)
    dens = np.kron(sums.reshape(4, 5), np.ones((10, 10))) / 100.0
    corners = patch_grid(dens.shape, 10)
    assert len(corners) == 20
    pick = select_patches(dens, {"points": np.zeros((0, 2)), "scores": np.zeros(0)}, patch=10, k=2,
                          r_range=(0.5, 0.7), rng=np.random.default_rng(0))
    got = [sums.reshape(4, 5)[y // 10, x // 10] for y, x in pick["r"]]
    assert len(got) == 2 and all(10 <= g <= 13 for g in got)  # ranks 10..13 of 0..19 are the 50-70% range
    pick = select_patches(dens, {"points": np.zeros((0, 2)), "scores": np.zeros(0)}, patch=10, k=2,
                          r_range=(0.5, 0.7), r_range_mode="max", rng=np.random.default_rng(0))
    got = [sums.reshape(4, 5)[y // 10, x // 10] for y, x in pick["r"]]
    assert all(0.5 * 19 <= g <= 0.7 * 19 for g in got)
    # D: highest mean detection confidence
    det = {"points": np.array([[5, 5], [6, 6], [35, 25], [45, 35]], np.float32),
           "scores": np.array([0.9, 0.5, 0.8, 0.95], np.float32)}
    pick = select_patches(dens, det, patch=10, k=2, rng=np.random.default_rng(0))
    assert [tuple(c) for c in pick["d"]] == [(30, 40), (20, 30)]  # means 0.95 and 0.8 beat 0.7


def test_patch_selector_fills_up_random_mode_and_errors():
    dens = np.ones((20, 20))
    pick = select_patches(dens, {"points": np.zeros((0, 2)), "scores": np.zeros(0)}, patch=10, k=2,
                          r_range=(0.99, 1.0), rng=np.random.default_rng(0))
    assert len(pick["r"]) == 2  # fewer patches in range: the nearest ones fill up
    a = select_patches(dens, {"points": np.zeros((0, 2)), "scores": np.zeros(0)}, patch=10, mode="random",
                       rng=np.random.default_rng(5))
    b = select_patches(dens, {"points": np.zeros((0, 2)), "scores": np.zeros(0)}, patch=10, mode="random",
                       rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a["r"], b["r"])
    with pytest.raises(ValueError, match="does not fit"):
        patch_grid((8, 30), 10)
    with pytest.raises(ValueError, match="mode"):
        select_patches(dens, {"points": np.zeros((0, 2)), "scores": np.zeros(0)}, patch=10, mode="best",
                       rng=np.random.default_rng(0))


def test_paper_map_rule_differs_from_greedy_on_a_duplicate():
    gts = [np.array([[0.0, 0.0], [10.0, 0.0]])]
    preds = [{"points": np.array([[1.0, 0.0], [2.0, 0.0]]), "scores": np.array([0.9, 0.8])}]
    # c = 20: the second prediction's nearest head is taken -> a false positive for the paper (AP 0.5); greedy
    # matching gives it the free head 8 px away (AP 1)
    assert paper_point_map(preds, gts, radii=[20]) == pytest.approx(0.5)
    assert localization_map(preds, gts, rule="greedy", radii=[20]) == pytest.approx(1.0)
    # c = 1: only the first is within reach of its nearest head
    m, aps = paper_point_map(preds, gts, radii=[0.5, 1, 20], return_per_radius=True)
    np.testing.assert_allclose(aps, [0.0, 0.5, 0.5])
    # the highest-scoring duplicate is the true positive, wherever it lies
    preds = [{"points": np.array([[3.0, 0.0], [0.5, 0.0]]), "scores": np.array([0.9, 0.8])}]
    assert paper_point_map(preds, gts[:1], radii=[5]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="rule"):
        localization_map(preds, gts, rule="hungarian")


def test_count_errors_uses_the_root():
    e = count_errors([1, 5], [2, 2])
    assert e["MAE"] == pytest.approx(2.0) and e["MSE"] == pytest.approx(np.sqrt(5.0))
