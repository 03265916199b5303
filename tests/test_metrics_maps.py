"""target_response: prediction statistics on and off a target's on pixels, by hand."""
import numpy as np
import pytest

from crowdlib.metrics import target_response


def test_target_response_by_hand_and_named_errors():
    p = [np.array([[0.9, 0.1], [0.2, 0.0]]), np.array([[0.5, 0.5]])]
    t = [np.array([[1, 0], [0, 0]]), np.array([[1, 0]])]
    r = target_response(p, t)
    assert r["on_share"] == pytest.approx(2 / 6)
    assert r["mean_on"] == pytest.approx(0.7) and r["median_on"] == pytest.approx(0.7)
    assert r["mean_off"] == pytest.approx((0.1 + 0.2 + 0.0 + 0.5) / 4)
    assert r["p99_off"] == pytest.approx(np.percentile([0.1, 0.2, 0.0, 0.5], 99))
    with pytest.raises(ValueError, match="predictions for"):
        target_response(p, t[:1])
    with pytest.raises(ValueError, match="shape"):
        target_response([np.zeros((2, 2))], [np.zeros((2, 3))])
