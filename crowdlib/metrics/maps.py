"""How a predicted map responds where its target is on and where it is off: the measurement that tells a model
that learned its sparse target from one that collapsed towards the background (e.g. a dot map trained with a
plain pixel MSE, where a few percent of the pixels are positive)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["target_response"]


def target_response(predictions: Sequence[np.ndarray], targets: Sequence[np.ndarray],
                    on: float = 0.5) -> dict[str, float]:
    """Pixel statistics of ``predictions`` against binary-ish ``targets`` (same shapes, one pair per image).

    A pixel is *on* where its target is ``>= on``. Returns ``on_share`` (share of on pixels), ``mean_on`` /
    ``mean_off`` (mean prediction on / off them), ``median_on`` and ``p99_off`` (the 99th percentile off them: what
    a peak threshold must clear to avoid background maxima), all over every pixel of every image.

    Raises:
        ValueError: on a different number of predictions and targets, or mismatched shapes.
    """
    if len(predictions) != len(targets):
        raise ValueError(f"target_response: {len(predictions)} predictions for {len(targets)} targets")
    on_vals, off_vals = [], []
    for p, t in zip(predictions, targets):
        p, t = np.asarray(p, np.float64), np.asarray(t, np.float64)
        if p.shape != t.shape:
            raise ValueError(f"target_response: prediction shape {p.shape} differs from target shape {t.shape}")
        m = t >= on
        on_vals.append(p[m])
        off_vals.append(p[~m])
    a_on = np.concatenate(on_vals) if on_vals else np.zeros(0)
    a_off = np.concatenate(off_vals) if off_vals else np.zeros(0)
    n = a_on.size + a_off.size
    nan = float("nan")
    return {"on_share": a_on.size / n if n else nan,
            "mean_on": float(a_on.mean()) if a_on.size else nan, "mean_off": float(a_off.mean()) if a_off.size else nan,
            "median_on": float(np.median(a_on)) if a_on.size else nan,
            "p99_off": float(np.percentile(a_off, 99)) if a_off.size else nan}
