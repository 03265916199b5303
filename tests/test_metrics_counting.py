"""Counting metrics: hand-computed MAE / RMSE / NAE / GAME and input validation."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from crowdlib.metrics import count_metrics, game, grid_edges, mae, mean_game, nae, rmse


def test_mae_rmse_hand_values():
    pred, gt = [3, 5, 10], [1, 5, 14]
    assert mae(pred, gt) == pytest.approx((2 + 0 + 4) / 3)
    assert rmse(pred, gt) == pytest.approx(math.sqrt((4 + 0 + 16) / 3))


def test_nae_skips_zero_ground_truth_and_reports_it():
    value, skipped = nae([2, 3, 7], [0, 4, 7], return_skipped=True)
    assert skipped == 1
    assert value == pytest.approx((1 / 4 + 0) / 2)
    assert math.isnan(nae([1, 2], [0, 0]))


def test_count_metrics_keys_and_mse_is_root():
    m = count_metrics(torch.tensor([1.0, 2.0]), np.array([3, 2]))
    assert m["mae"] == pytest.approx(1.0)
    assert m["mse"] == m["rmse"] == pytest.approx(math.sqrt(2.0))
    assert m["nae"] == pytest.approx(1 / 3)
    assert m["nae_skipped"] == 0 and m["n_images"] == 2


def test_count_metrics_rejects_length_mismatch_and_nan():
    with pytest.raises(ValueError, match="2 predicted counts for 3"):
        count_metrics([1, 2], [1, 2, 3])
    with pytest.raises(ValueError, match="NaN"):
        mae([float("nan")], [1])


def test_grid_edges_spread_the_remainder():
    assert grid_edges(5, 4).tolist() == [0, 1, 2, 3, 5]
    assert grid_edges(8, 2).tolist() == [0, 4, 8]
    assert grid_edges(3, 4).tolist() == [0, 0, 1, 2, 3]  # more cells than pixels: some are empty


def test_game_density_hand_computed():
    d = np.zeros((5, 5))
    d[0, 0] = 1.0
    d[4, 4] = 2.0
    gt = np.array([[0.5, 0.5], [4.2, 4.9], [2.5, 2.5]])
    assert game(d, gt, 0) == pytest.approx(0.0)
    assert game(d, gt, 1) == pytest.approx(0.0)  # cells rows/cols [0, 2) and [2, 5)
    assert game(d, gt, 2) == pytest.approx(2.0)  # edges 0,1,2,3,5: (2,2) misses 1, (3,3) has 1 too many
    assert game(torch.from_numpy(d)[None, None], gt, 2) == pytest.approx(2.0)


def test_game_points_and_rescaled_density():
    gt = np.array([[4.9, 4.9]])
    assert game(np.array([[0.1, 0.1]]), gt, 0, image_size=(5, 5)) == 0.0
    assert game(np.array([[0.1, 0.1]]), gt, 1, image_size=(5, 5)) == 2.0
    assert game(np.zeros((0, 2)), gt, 1, image_size=(5, 5)) == 1.0
    # a half-resolution density map: the grid lies on the map, the points are scaled by 1/2
    d = np.zeros((4, 4))
    d[3, 3] = 1.0
    assert game(d, np.array([[7.5, 7.5]]), 2, image_size=(8, 8)) == 0.0
    assert mean_game([d, d], [np.array([[7.5, 7.5]]), np.zeros((0, 2))], 1, image_sizes=[(8, 8), (8, 8)]) == 0.5


def test_game_errors():
    with pytest.raises(ValueError, match="image_size is required"):
        game(np.zeros((3, 2)), np.zeros((0, 2)), 1, pred_kind="points")
    with pytest.raises(ValueError, match="level"):
        game(np.zeros((4, 4)), np.zeros((0, 2)), -1)


def test_empty_inputs_give_nan_not_errors():
    assert math.isnan(mae([], []))
    m = count_metrics([], [])
    assert m["n_images"] == 0 and math.isnan(m["mse"]) and math.isnan(m["nae"])


def test_constant_count_metrics_by_hand():
    from crowdlib.metrics.counting import constant_count_metrics

    # training mean 20; test counts 10, 30, 50 -> errors 10, 10, 30: MAE 50/3, RMSE sqrt(1100/3)
    out = constant_count_metrics([10, 20, 30], [10, 30, 50])
    assert out["constant"] == pytest.approx(20.0)
    assert out["mae"] == pytest.approx(50 / 3)
    assert out["mse"] == pytest.approx(np.sqrt(1100 / 3))
    # the test counts never move the constant
    assert constant_count_metrics([10, 20, 30], [1000, 2000])["constant"] == pytest.approx(20.0)
    with pytest.raises(ValueError, match="no training counts"):
        constant_count_metrics([], [1, 2])


def test_count_correlation_by_hand_and_degenerate_cases():
    from crowdlib.metrics.counting import count_correlation

    assert count_correlation([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert count_correlation([3, 2, 1], [10, 20, 30]) == pytest.approx(-1.0)
    # pred (0, 1, 0, 1) against gt (0, 0, 1, 1): covariance 0 -> r = 0
    assert count_correlation([0, 1, 0, 1], [0, 0, 1, 1]) == pytest.approx(0.0)
    assert np.isnan(count_correlation([5, 5, 5], [1, 2, 3]))  # a constant predictor has no correlation
    assert np.isnan(count_correlation([1.0], [2.0]))
    with pytest.raises(ValueError, match="predicted counts"):
        count_correlation([1, 2], [1, 2, 3])
