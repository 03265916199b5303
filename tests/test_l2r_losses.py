"""L2R losses: the ranking hinge on hand-computed cases and its gradient sign, the counting MSE, the combined
criterion and the ranking accuracy."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from crowdlib.losses.l2r import L2RLoss, average_count, count_mse, ranking_accuracy, ranking_hinge


def test_average_count_is_the_mean_over_units():
    d = torch.arange(2 * 14 * 14, dtype=torch.float32).reshape(2, 1, 14, 14)
    np.testing.assert_allclose(average_count(d).numpy(), d.flatten(1).mean(1).numpy())
    with pytest.raises(ValueError, match="B, 1, h, w"):
        average_count(torch.zeros(2, 14, 14))


def test_ranking_hinge_hand_computed():
    c = torch.tensor([3.0, 2.0, 2.5])  # outer 3.0, then 2.0, then 2.5 (the last pair is mis-ordered)
    pairs = np.array([[0, 1], [0, 2], [1, 2]])
    # max(0, 2-3+0)=0, max(0, 2.5-3)=0, max(0, 2.5-2)=0.5 -> mean 0.5/3
    assert ranking_hinge(c, pairs, 0.0).item() == pytest.approx(0.5 / 3)
    # margin 1: max(0, 0)=0, max(0, 0.5)=0.5, max(0, 1.5)=1.5 -> 2/3
    assert ranking_hinge(c, pairs, 1.0).item() == pytest.approx(2.0 / 3)
    assert ranking_hinge(torch.tensor([2.0, 1.0]), np.array([[0, 1]]), 0.0).item() == 0.0
    assert ranking_hinge(c, np.zeros((0, 2), np.int64)).item() == 0.0
    with pytest.raises(ValueError, match="margin"):
        ranking_hinge(c, pairs, -1.0)
    with pytest.raises(ValueError, match="P, 2"):
        ranking_hinge(c, np.array([0, 1, 2]))


def test_ranking_hinge_gradient_raises_the_outer_and_lowers_the_inner():
    c = torch.tensor([1.0, 2.0], requires_grad=True)  # mis-ordered: inner above outer
    ranking_hinge(c, np.array([[0, 1]])).backward()
    assert c.grad[0] < 0 < c.grad[1]  # gradient descent raises c[0] (outer) and lowers c[1] (inner)
    c2 = torch.tensor([2.0, 1.0], requires_grad=True)  # well ordered beyond the margin: no gradient
    ranking_hinge(c2, np.array([[0, 1]]), 0.5).backward()
    assert torch.equal(c2.grad, torch.zeros(2))


def test_count_mse_sums_units_and_averages_images():
    p, t = torch.zeros(2, 1, 2, 2), torch.ones(2, 1, 2, 2)
    t[1] *= 2
    assert count_mse(p, t).item() == pytest.approx((4 * 1 + 4 * 4) / 2)
    assert count_mse(torch.zeros(0, 1, 2, 2), torch.zeros(0, 1, 2, 2)).item() == 0.0
    with pytest.raises(ValueError, match="differ"):
        count_mse(p, torch.zeros(1, 1, 2, 2))


def test_l2r_loss_terms_weights_and_parts():
    crit = L2RLoss(w_count=1.0, lam=0.5, margin=0.0)
    d = torch.zeros(2 + 3, 1, 2, 2, requires_grad=True)
    with torch.no_grad():
        d[2:] = torch.tensor([1.0, 2.0, 0.5]).view(3, 1, 1, 1)  # a nest of 3: pair (0, 1) mis-ordered by 1
    target = {"density": torch.ones(2, 1, 2, 2), "n_count": 2, "n_nests": 1, "nest_size": 3}
    out = crit({"density": d}, target)
    assert set(out) == {"count", "rank", "loss"}
    assert out["count"].item() == pytest.approx(4.0)
    assert out["rank"].item() == pytest.approx(1.0 / 3)
    assert out["loss"].item() == pytest.approx(4.0 + 0.5 / 3)
    only_rank = crit({"density": d[2:]}, {"n_count": 0, "n_nests": 1, "nest_size": 3, "density": torch.zeros(0, 1, 2, 2)})
    assert only_rank["count"].item() == 0.0 and only_rank["rank"].item() == pytest.approx(1.0 / 3)
    with pytest.raises(ValueError, match="outputs"):
        crit({"density": d}, {**target, "n_nests": 2})
    with pytest.raises(ValueError, match="margin"):
        L2RLoss(margin=-0.1)


def test_ranking_accuracy_counts_ties_half_and_strict_masks():
    c = np.array([3.0, 2.0, 2.0])
    pairs = np.array([[0, 1], [0, 2], [1, 2]])
    assert ranking_accuracy(c, pairs) == pytest.approx((1 + 1 + 0.5) / 3)
    assert ranking_accuracy(c, pairs, np.array([True, True, False])) == 1.0
    assert np.isnan(ranking_accuracy(c, pairs, np.zeros(3, bool)))
