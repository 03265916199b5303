"""Decoding: heat-map peaks, NMS, connected components, density peaks and the counting threshold."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from crowdlib.decode import choose_count_threshold, components, count_above, density_peaks, heatmap_peaks, nms


def test_heatmap_peaks_positions_scores_and_threshold():
    h = torch.zeros(8, 8)
    h[2, 3] = 0.9
    h[2, 4] = 0.6  # neighbour of a higher peak: suppressed by the 3x3 max pool
    h[6, 6] = 0.2  # not above the (strict) threshold
    h[6, 1] = 0.5
    (out,) = heatmap_peaks(h, threshold=0.2)
    # pixel centres: column 3, row 2 -> (3.5, 2.5)
    np.testing.assert_allclose(out["points"], [[3.5, 2.5], [1.5, 6.5]])
    np.testing.assert_allclose(out["scores"], [0.9, 0.5])
    assert out["boxes"] is None and out["points"].dtype == np.float32
    (top,) = heatmap_peaks(h, threshold=0.2, max_peaks=1)
    np.testing.assert_allclose(top["points"], [[3.5, 2.5]])
    (wide,) = heatmap_peaks(h, threshold=0.2, kernel=11)
    assert len(wide["points"]) == 1


def test_heatmap_peaks_stride_offset_and_sizes():
    h = torch.zeros(2, 1, 4, 4)
    h[0, 0, 1, 2] = 0.8
    h[1, 0, 3, 0] = 0.7
    size = torch.full((2, 1, 4, 4), math.log(6.0))
    off = torch.zeros(2, 2, 4, 4)
    off[0, 0, 1, 2] = 0.25  # dx
    off[0, 1, 1, 2] = 0.75  # dy
    out = heatmap_peaks(h, size_map=size, offset=off, stride=4)
    assert len(out) == 2
    np.testing.assert_allclose(out[0]["points"], [[(2 + 0.25) * 4, (1 + 0.75) * 4]])
    np.testing.assert_allclose(out[0]["sizes"], [6.0], rtol=1e-6)
    np.testing.assert_allclose(out[0]["boxes"], [[6.0, 4.0, 12.0, 10.0]], rtol=1e-6)
    np.testing.assert_allclose(out[1]["points"], [[0.0, 12.0]])
    # without offsets a peak decodes to its cell centre; size_scale multiplies exp(size)
    (c,) = heatmap_peaks(h[:1], size_map=size[:1], stride=4, size_scale=4)
    np.testing.assert_allclose(c["points"], [[10.0, 6.0]])
    np.testing.assert_allclose(c["sizes"], [24.0], rtol=1e-6)


def test_heatmap_peaks_plateau_keeps_both_and_errors():
    h = np.zeros((5, 5), np.float32)
    h[2, 1] = h[2, 2] = 0.5
    (out,) = heatmap_peaks(h)
    assert len(out["points"]) == 2
    with pytest.raises(ValueError, match="kernel"):
        heatmap_peaks(h, kernel=2)
    with pytest.raises(ValueError, match="size_map shape"):
        heatmap_peaks(h, size_map=np.zeros((4, 4)))
    with pytest.raises(ValueError, match="heat"):
        heatmap_peaks(np.zeros((1, 2, 4, 4)))


def test_nms():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30]], np.float32)
    keep = nms(boxes, np.array([0.5, 0.9, 0.4]), iou=0.5)
    assert keep.tolist() == [1, 2]
    assert nms(np.zeros((0, 4)), np.zeros(0)).tolist() == []
    with pytest.raises(ValueError, match="2 boxes for 1 scores"):
        nms(boxes[:2], np.array([1.0]))


def test_components_area_filter_connectivity_centroids_boxes():
    b = np.zeros((6, 8), np.uint8)
    b[0:2, 0:2] = 1  # 4 pixels
    b[4, 4:7] = 1  # 3 pixels
    b[5, 7] = 1  # touches the previous one only diagonally
    b[0, 7] = 1  # single pixel
    cent, boxes, areas = components(b)
    np.testing.assert_allclose(cent, [[1.0, 1.0], [5.5, 4.5]])
    np.testing.assert_allclose(boxes, [[0, 0, 2, 2], [4, 4, 7, 5]])
    assert areas.tolist() == [4, 3]
    cent8, _, areas8 = components(torch.from_numpy(b), connectivity=8, min_area=1)
    assert areas8.tolist() == [4, 1, 4]
    np.testing.assert_allclose(cent8[2], [(4.5 + 5.5 + 6.5 + 7.5) / 4, (4.5 * 3 + 5.5) / 4])
    empty = components(np.zeros((3, 3)))
    assert empty[0].shape == (0, 2) and empty[1].shape == (0, 4) and empty[2].shape == (0,)
    with pytest.raises(ValueError, match="connectivity"):
        components(b, connectivity=6)


def test_density_peaks():
    d = np.zeros((7, 7))
    d[1, 1] = 0.5
    d[1, 2] = 0.4  # within min_distance of the first
    d[5, 5] = 0.3
    pts, vals = density_peaks(d, threshold=0.1, min_distance=1)
    np.testing.assert_allclose(pts, [[1.5, 1.5], [5.5, 5.5]])
    np.testing.assert_allclose(vals, [0.5, 0.3])
    pts, _ = density_peaks(d, threshold=0.35, min_distance=1)
    assert len(pts) == 1


def test_choose_count_threshold_hand_computed():
    scores = [np.array([0.1, 0.5, 0.9]), np.array([0.3, 0.8])]
    best, table = choose_count_threshold(scores, [2, 1], thresholds=[0.0, 0.2, 0.4, 0.6, 0.85])
    # counts above t: t=0 -> (3,2) MAE 1; 0.2 -> (2,2) 0.5; 0.4 -> (2,1) 0; 0.6 -> (1,1) 0.5; 0.85 -> (1,0) 1
    assert best == 0.4
    np.testing.assert_allclose(table["mae"], [1.0, 0.5, 0.0, 0.5, 1.0])
    assert count_above(scores, [0.5]).tolist() == [[1], [1]]  # strictly above
    best, _ = choose_count_threshold([np.array([0.5])], [1], thresholds=[0.3, 0.1, 0.4])
    assert best == 0.1  # ties go to the lowest threshold
    with pytest.raises(ValueError, match="2 score lists for 1 counts"):
        choose_count_threshold(scores, [1])
