"""Box AP (VOC-style) with ignored ground truth, difficulty subsets, and a dense naive reference."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crowdlib.metrics import average_precision, box_ap, box_ap_subsets, box_iou, size_subsets, widerface_subsets


def naive_voc(pred_boxes, pred_scores, gt_boxes, thr, gt_ignore=None):
    """Sequential VOC reference with a dense IoU matrix."""
    items = []
    for i, (b, s) in enumerate(zip(pred_boxes, pred_scores)):
        for k in range(len(b)):
            items.append((-float(s[k]), i, *map(float, b[k])))
    items.sort()
    used = [np.zeros(len(g), bool) for g in gt_boxes]
    ign = [np.zeros(len(g), bool) if gt_ignore is None else np.asarray(gt_ignore[i]) for i, g in enumerate(gt_boxes)]
    scores, flags = [], []
    for neg, i, *box in items:
        g = np.asarray(gt_boxes[i], float).reshape(-1, 4)
        iou = box_iou(np.array([box]), g)[0] if len(g) else np.zeros(0)
        j = int(np.argmax(iou)) if len(iou) else -1
        if j >= 0 and iou[j] >= thr:
            if ign[i][j]:
                continue
            flags.append(not used[i][j])
            used[i][j] = True
        else:
            flags.append(False)
        scores.append(-neg)
    n = int(sum((~m).sum() for m in ign))
    return average_precision(np.array(scores), np.array(flags, bool), n)


def test_box_iou_hand_values():
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 0]], float)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30]], float)
    iou = box_iou(a, b)
    assert iou[0, 0] == pytest.approx(50 / 150)
    assert iou[0, 1] == 0.0 and iou[1, 0] == 0.0  # no overlap; empty box has IoU 0, not NaN


GT = [np.array([[0, 0, 10, 10], [20, 0, 30, 10]], float)]
PRED = [np.array([[0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60], [21, 0, 31, 10]], float)]
SCORES = [np.array([0.9, 0.8, 0.7, 0.6])]


def test_hand_computed_box_ap():
    # ranking TP, duplicate FP, FP, TP (IoU 90/110 = 0.818): precision 1, 1/2, 1/3, 1/2 at recall 1/2, 1/2, 1/2, 1
    ap = box_ap(PRED, SCORES, GT, iou_thresholds=(0.3, 0.5, 0.7, 0.9))
    assert ap[0.3] == ap[0.5] == ap[0.7] == pytest.approx(0.5 * 1 + 0.5 * 0.5)
    assert ap[0.9] == pytest.approx(0.5)


def test_ignored_ground_truth_is_neither_tp_nor_fp():
    scores = [np.array([0.9, 0.8, 0.7, 0.95])]  # the detection of the second box now ranks first
    ap = box_ap(PRED, scores, GT, iou_thresholds=(0.5,), gt_ignore=[np.array([False, True])])
    assert ap[0.5] == pytest.approx(1.0)  # its match to the ignored box is dropped; 1 positive, found first
    # removing the box instead makes that detection a leading false positive: precision 1/2 at recall 1
    removed = box_ap(PRED, scores, [GT[0][:1]], iou_thresholds=(0.5,))
    assert removed[0.5] == pytest.approx(0.5)
    ap_all_ignored = box_ap(PRED, SCORES, GT, iou_thresholds=(0.5,), gt_ignore=[np.array([True, True])])
    assert math.isnan(ap_all_ignored[0.5])


def test_empty_images():
    ap = box_ap([np.zeros((0, 4)), np.array([[0, 0, 5, 5]], float)], [np.zeros(0), np.array([0.5])],
                [np.array([[0, 0, 5, 5]], float), np.zeros((0, 4))], iou_thresholds=(0.5,))
    assert ap[0.5] == 0.0  # the only detection lies in an image without ground truth


def test_size_subsets_and_widerface_labels():
    boxes = [np.array([[0, 0, 5, 40], [0, 0, 40, 20], [0, 0, 40, 8]], float)]
    sub = size_subsets(boxes)
    assert sub["easy"][0].tolist() == [True, False, False]
    assert sub["medium"][0].tolist() == [True, True, False]
    assert sub["hard"][0].tolist() == [True, True, True]
    sub = size_subsets(boxes, {"big": (30.0, float("inf"))}, by="max_side")
    assert sub["big"][0].tolist() == [True, True, True]
    wf = widerface_subsets([np.array([2, 0, 1])])
    assert wf["easy"][0].tolist() == [False, True, False] and wf["medium"][0].tolist() == [False, True, True]
    with pytest.raises(ValueError, match="labels must be"):
        widerface_subsets([np.array([3])])
    res = box_ap_subsets(PRED, SCORES, GT, {"first": [np.array([True, False])]}, iou_thresholds=(0.5,))
    assert res["first"][0.5] == pytest.approx(1.0)


def test_errors():
    with pytest.raises(ValueError, match="x2 >= x1"):
        box_ap([np.array([[5, 0, 0, 5]], float)], [np.array([1.0])], [np.zeros((0, 4))])
    with pytest.raises(ValueError, match="1 scores for 2 boxes"):
        box_ap([np.zeros((2, 4))], [np.array([1.0])], [np.zeros((0, 4))])
    with pytest.raises(ValueError, match="thresholds"):
        box_ap([np.zeros((0, 4))], [np.zeros(0)], [np.zeros((0, 4))], iou_thresholds=(0.0,))


def random_boxes(rng, n, lo=3, hi=30, extent=80):
    c = rng.uniform(0, extent, (n, 2))
    wh = rng.uniform(lo, hi, (n, 2))
    return np.concatenate([c - wh / 2, c + wh / 2], axis=1)


def test_matches_dense_naive_reference():
    rng = np.random.default_rng(0)
    for trial in range(15):
        n_img = int(rng.integers(1, 4))
        gts = [random_boxes(rng, int(rng.integers(0, 12))) for _ in range(n_img)]
        preds, scores, ign = [], [], []
        for g in gts:
            jitter = g + rng.normal(0, 2, g.shape)
            extra = random_boxes(rng, int(rng.integers(0, 5)), lo=1, hi=60)
            preds.append(np.concatenate([np.sort(jitter.reshape(-1, 2, 2), axis=1).reshape(-1, 4), extra]))
            scores.append(rng.integers(0, 4, len(preds[-1])) / 4)
            ign.append(rng.uniform(size=len(g)) < 0.3)
        got = box_ap(preds, scores, gts, iou_thresholds=(0.3, 0.5, 0.7), gt_ignore=ign)
        for t, v in got.items():
            want = naive_voc(preds, scores, gts, t, ign)
            assert (math.isnan(v) and math.isnan(want)) or v == pytest.approx(want), (trial, t)


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(0, 15))
def test_properties(seed, n):
    rng = np.random.default_rng(seed)
    gts = [random_boxes(rng, n)]
    ap = box_ap(gts, [rng.uniform(size=n)], gts)
    if n:
        assert all(v == pytest.approx(1.0) for v in ap.values())
    preds = [random_boxes(rng, n + 2)]
    scores = [rng.integers(0, 3, n + 2) / 3]
    base = box_ap(preds, scores, gts)
    o = rng.permutation(n + 2)
    same = box_ap([preds[0][o]], [scores[0][o]], gts)
    far = box_ap([np.concatenate([preds[0], [[1e4, 1e4, 1e4 + 10, 1e4 + 10]]])], [np.r_[scores[0], rng.uniform()]], gts)
    for t in base:
        if n:
            assert same[t] == pytest.approx(base[t])
            assert far[t] <= base[t] + 1e-12


def test_tied_scores_hand_computed():
    gt = [np.array([[0, 0, 10, 10]], float)]
    pred = [np.array([[40, 40, 50, 50], [0, 0, 10, 10]], float)]
    # one FP and one TP with the same score form one PR point: recall 1, precision 1/2, in either listing order
    assert box_ap(pred, [np.array([0.5, 0.5])], gt, (0.5,))[0.5] == pytest.approx(0.5)
    assert box_ap([pred[0][::-1]], [np.array([0.5, 0.5])], gt, (0.5,))[0.5] == pytest.approx(0.5)
