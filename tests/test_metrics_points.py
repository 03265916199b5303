"""Point AP, mAP over radii and MLE: hand-computed cases, a naive reference, and property tests."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crowdlib.metrics import average_precision, greedy_point_matching, mle, mle_details, point_ap, point_map_over_radii


def naive_greedy(preds, gts, radius):
    """Sequential reference: dataset ranking by score (ties: image, x, y), nearest free head within radius."""
    items = []
    for i, (p, s) in enumerate(preds):
        for k in range(len(p)):
            items.append((-float(s[k]), i, float(p[k][0]), float(p[k][1]), k))
    items.sort()
    taken = [np.zeros(len(g), bool) for g in gts]
    flags, scores = [], []
    for neg_s, i, x, y, _ in items:
        g = np.asarray(gts[i], float).reshape(-1, 2)
        d = np.hypot(g[:, 0] - x, g[:, 1] - y) if len(g) else np.zeros(0)
        cand = [j for j in np.argsort(d, kind="stable") if d[j] <= radius and not taken[i][j]]
        if cand:
            taken[i][cand[0]] = True
        flags.append(bool(cand))
        scores.append(-neg_s)
    return np.array(scores), np.array(flags, bool), sum(len(g) for g in gts)


def test_hand_computed_point_ap():
    gts = [np.array([[0.0, 0.0], [100.0, 0.0]]), np.array([[50.0, 50.0]])]
    preds = [
        (np.array([[1.0, 0.0], [2.0, 0.0], [100.0, 5.0]]), np.array([0.9, 0.8, 0.7])),  # TP, duplicate FP, TP
        (np.zeros((0, 2)), np.zeros(0)),
    ]
    # ranking TP, FP, TP with 3 heads: recall 1/3, 1/3, 2/3; precision 1, 1/2, 2/3 -> AP = 1/3 + 1/3 * 2/3
    assert point_ap(preds, gts, radius=20.0) == pytest.approx(5 / 9)
    ap, curve = point_ap(preds, gts, radius=20.0, return_curve=True)
    np.testing.assert_allclose(curve["recall"], [1 / 3, 1 / 3, 2 / 3])
    np.testing.assert_allclose(curve["precision"], [1, 1 / 2, 2 / 3])


def test_empty_cases():
    assert point_ap([(np.zeros((0, 2)), np.zeros(0))], [np.array([[1.0, 1.0]])]) == 0.0
    assert math.isnan(point_ap([(np.array([[1.0, 1.0]]), np.array([0.5]))], [np.zeros((0, 2))]))
    assert math.isnan(average_precision(np.zeros(0), np.zeros(0, bool), 0))
    d = mle_details([np.array([[1.0, 1.0]])], [np.zeros((0, 2))])
    assert d["matched"] == 0 and d["unmatched_pred"] == 1 and math.isnan(d["mle"])


def test_tied_scores_form_one_group():
    gts = [np.array([[0.0, 0.0]])]
    a = [(np.array([[0.0, 0.0], [500.0, 500.0]]), np.array([0.5, 0.5]))]
    b = [(np.array([[500.0, 500.0], [0.0, 0.0]]), np.array([0.5, 0.5]))]
    # one PR point: recall 1, precision 1/2, whatever the listing order
    assert point_ap(a, gts) == point_ap(b, gts) == pytest.approx(0.5)
    # bare points: every score is 1
    assert point_ap([np.array([[0.0, 0.0], [500.0, 500.0]])], gts) == pytest.approx(0.5)


def test_equidistant_prediction_takes_the_lower_index_head_and_inclusive_radius():
    gts = [np.array([[0.0, 0.0], [10.0, 0.0]])]
    scores, pred_gt, dist, _, n = greedy_point_matching([(np.array([[5.0, 0.0]]), np.array([1.0]))], gts, radius=5.0)
    assert pred_gt.tolist() == [0] and dist.tolist() == [5.0] and n == 2
    _, pred_gt, _, _, _ = greedy_point_matching([(np.array([[5.0, 0.0]]), np.array([1.0]))], gts, radius=4.999)
    assert pred_gt.tolist() == [-1]


def test_higher_score_wins_the_head():
    gts = [np.array([[0.0, 0.0]])]
    preds = [(np.array([[0.0, 1.0], [0.0, 0.0]]), np.array([0.9, 0.3]))]
    _, pred_gt, _, _, _ = greedy_point_matching(preds, gts, radius=5.0)
    assert pred_gt.tolist() == [0, -1]  # the nearer but lower-scored prediction is the duplicate


def test_map_over_radii_hand_computed():
    gts = [np.array([[0.0, 0.0]])]
    preds = [(np.array([[3.0, 0.0]]), np.array([1.0]))]
    mean, aps = point_map_over_radii(preds, gts, radii=[1, 2, 3, 4], return_per_radius=True)
    assert aps.tolist() == [0.0, 0.0, 1.0, 1.0] and mean == 0.5
    assert point_map_over_radii(preds, gts) == pytest.approx(98 / 100)


def test_mle_conventions():
    gts = [np.array([[0.0, 0.0], [10.0, 0.0], [100.0, 100.0]])]
    preds = [(np.array([[3.0, 4.0], [12.0, 0.0], [300.0, 300.0]]), np.array([0.5, 0.9, 0.1]))]
    # Hungarian: (3,4)-(0,0) = 5 and (12,0)-(10,0) = 2; one head and one prediction unmatched
    assert mle(preds, gts, unmatched_penalty=None) == pytest.approx(3.5)
    assert mle(preds, gts) == pytest.approx((7 + 16) / 3)
    assert mle(preds, gts, penalize="both") == pytest.approx((7 + 32) / 4)
    d = mle_details(preds, gts)
    assert (d["matched"], d["unmatched_gt"], d["unmatched_pred"]) == (2, 1, 1)


def test_mle_hungarian_vs_greedy():
    # (3, 0) is 3 px from both heads; greedy (by score) gives it the lower-index head (0, 0) and (-2, 0) is left
    # without a head within 3 px. Hungarian maximises the number of pairs first: (3,0)-(6,0) and (-2,0)-(0,0).
    gts = [np.array([[0.0, 0.0], [6.0, 0.0]])]
    preds = [(np.array([[3.0, 0.0], [-2.0, 0.0]]), np.array([0.9, 0.1]))]
    # greedy: (3,0) takes (0,0) (distance 3 = 3, lower index), (-2,0) finds nothing within 3
    g = mle_details(preds, gts, radius=3.0, matching="greedy", unmatched_penalty=None)
    h = mle_details(preds, gts, radius=3.0, matching="hungarian", unmatched_penalty=None)
    assert g["matched"] == 1 and h["matched"] == 2
    assert h["mle"] == pytest.approx((3 + 2) / 2)


def test_errors():
    with pytest.raises(ValueError, match="2 prediction entries for 1"):
        point_ap([np.zeros((0, 2)), np.zeros((0, 2))], [np.zeros((0, 2))])
    with pytest.raises(ValueError, match=r"preds\[0\]: 1 scores for 2 points"):
        point_ap([(np.zeros((2, 2)), np.zeros(1))], [np.zeros((0, 2))])
    with pytest.raises(ValueError, match="matching"):
        mle([np.zeros((0, 2))], [np.zeros((0, 2))], matching="nearest")


def test_matches_naive_reference_on_random_scenes():
    rng = np.random.default_rng(0)
    for trial in range(20):
        n_img = int(rng.integers(1, 4))
        gts = [rng.integers(0, 40, (int(rng.integers(0, 15)), 2)).astype(float) for _ in range(n_img)]
        preds = []
        for _ in range(n_img):
            k = int(rng.integers(0, 15))
            preds.append((rng.integers(0, 40, (k, 2)).astype(float), rng.integers(0, 4, k) / 4))  # many ties
        radius = float(rng.choice([2.0, 5.0, 9.0]))
        s, flags, n = naive_greedy(preds, gts, radius)
        want = average_precision(s, flags, n)
        got = point_ap(preds, gts, radius=radius)
        assert (math.isnan(want) and math.isnan(got)) or got == pytest.approx(want), trial


def test_rounds_and_sequential_greedy_agree_on_a_dense_scene():
    rng = np.random.default_rng(1)
    gts = [rng.uniform(0, 200, (3000, 2))]
    preds = [(gts[0] + rng.normal(0, 3, gts[0].shape), rng.uniform(size=3000))]
    s, flags, n = naive_greedy(preds, gts, 6.0)
    assert point_ap(preds, gts, radius=6.0) == pytest.approx(average_precision(s, flags, n))


scene = st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50)), min_size=0, max_size=10).map(
    lambda v: np.array(v, dtype=float).reshape(-1, 2)
)


@settings(max_examples=40, deadline=None)
@given(
    gts=st.lists(scene, min_size=1, max_size=3),
    noise=st.lists(scene, min_size=3, max_size=3),
    seed=st.integers(0, 999),
)
def test_properties(gts, noise, seed):
    rng = np.random.default_rng(seed)
    n_heads = sum(len(g) for g in gts)
    perfect = [(g, rng.uniform(size=len(g))) for g in gts]
    if n_heads:
        assert point_ap(perfect, gts, radius=1.0) == pytest.approx(1.0)
        assert mle(perfect, gts) == pytest.approx(0.0)
    preds = [(noise[i], rng.integers(0, 3, len(noise[i])) / 3) for i in range(len(gts))]
    base = point_ap(preds, gts, radius=8.0)
    perm = []
    for p, s in preds:
        o = rng.permutation(len(p))
        perm.append((p[o], s[o]))
    same = point_ap(perm, gts, radius=8.0)
    assert (math.isnan(base) and math.isnan(same)) or same == pytest.approx(base)
    assert mle(perm, gts) == pytest.approx(mle(preds, gts), nan_ok=True)
    # a far-away false positive (at any score) never raises AP
    p0, s0 = preds[0]
    far = [(np.concatenate([p0, [[1e4, 1e4]]]), np.concatenate([s0, [rng.uniform()]]))] + preds[1:]
    worse = point_ap(far, gts, radius=8.0)
    if not math.isnan(base):
        assert worse <= base + 1e-12
