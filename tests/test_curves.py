"""Learning-curve helpers: exact power laws are recovered, short curves are refused."""
from __future__ import annotations

import numpy as np
import pytest

from crowdlib.curves import curve_from_history, extrapolate_curve


def test_power_law_is_recovered_and_extrapolated() -> None:
    steps = np.array([100, 200, 400, 800, 1600], float)
    vals = 50.0 * steps ** -0.5
    out = extrapolate_curve(steps, vals, factors=(2, 10))
    assert out["b"] == pytest.approx(0.5, rel=1e-9)
    assert out["at x2"] == pytest.approx(50.0 * 3200 ** -0.5, rel=1e-9)
    assert out["at x10"] == pytest.approx(50.0 * 16000 ** -0.5, rel=1e-9)


def test_flat_curve_has_no_gain_and_short_curve_raises() -> None:
    out = extrapolate_curve([1, 2, 3, 4], [5.0, 5.0, 5.0, 5.0])
    assert out["b"] == pytest.approx(0.0, abs=1e-12) and out["at x10"] == pytest.approx(5.0)
    with pytest.raises(ValueError, match=">= 3"):
        extrapolate_curve([1, 2], [3.0, 2.0])


def test_curve_from_history_keeps_logged_points_in_order() -> None:
    hist = [{"step": 20.0, "val_mae": 4.0}, {"step": 10.0, "val_mae": 5.0}, {"step": 30.0}, {"step": 40.0,
                                                                                           "val_mae": float("nan")}]
    df = curve_from_history(hist)
    assert df["step"].tolist() == [10.0, 20.0] and df["val_mae"].tolist() == [5.0, 4.0]
