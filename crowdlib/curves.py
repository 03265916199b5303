"""Validation learning curves: the points a run logged, and what more steps would reach.

Schedules are sized by measurement: a run logs a validation metric every few epochs (e.g. Crowd-SDNet's
``train.val_every``), :func:`curve_from_history` turns the history into a table and :func:`extrapolate_curve`
fits ``metric = a * step ** -b`` (a power law, the usual shape of a learning curve, for a metric that falls) on the
late part of the curve to say what 2x or 10x the steps would give. The extrapolation is a trend, not a promise:
the notebooks print it beside the measured points.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = ["curve_from_history", "extrapolate_curve"]


def curve_from_history(history: Sequence[Mapping[str, Any]], metric: str = "val_mae",
                       step_key: str = "step") -> "Any":
    """A DataFrame ``step, <metric>`` of the history entries that have ``metric`` (finite), in step order."""
    import pandas as pd

    rows = [{"step": float(h[step_key]), metric: float(h[metric])} for h in history
            if metric in h and step_key in h and np.isfinite(float(h[metric]))]
    return pd.DataFrame(rows, columns=["step", metric]).sort_values("step").reset_index(drop=True)


def extrapolate_curve(steps: Sequence[float], values: Sequence[float], factors: Sequence[float] = (2.0, 10.0),
                      tail: float = 0.5) -> dict[str, float]:
    """Fit ``value = a * step ** -b`` by least squares in log-log space on the last ``tail`` share of the points
    (at least 3) and predict the value at ``factor`` times the last step.

    Returns ``{"b": exponent, "at x2": ..., "at x10": ..., "points": n used}``; ``b <= 0`` (no longer falling)
    means more steps are not expected to help. Raises ``ValueError`` with fewer than 3 positive points.
    """
    s = np.asarray(steps, np.float64)
    v = np.asarray(values, np.float64)
    ok = (s > 0) & (v > 0) & np.isfinite(s) & np.isfinite(v)
    s, v = s[ok], v[ok]
    if len(s) < 3:
        raise ValueError(f"extrapolate_curve: need >= 3 positive points, got {len(s)}")
    n = max(3, int(np.ceil(tail * len(s))))
    ls, lv = np.log(s[-n:]), np.log(v[-n:])
    slope, icpt = np.polyfit(ls, lv, 1)
    out = {"b": float(-slope), "points": float(n)}
    for f in factors:
        out[f"at x{f:g}"] = float(np.exp(icpt + slope * np.log(s[-1] * float(f))))
    return out
