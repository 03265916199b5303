"""IIM on ShanghaiTech B (notebook 23): the validation learning curve of a run, the F1 ceiling that decoding the
training targets themselves reaches at a given image scale, and the Table 4 / per-level rows of a test evaluation.

Everything here reads training or validation images only, except :func:`table4_frame`, which formats a test
evaluation already computed."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from crowdlib.data.records import CrowdRecord

from .infer import decode_components, score_points

__all__ = ["PAPER_TABLE4_SHB", "learning_curve", "curve_trend", "target_ceiling", "table4_frame",
           "level_recall_frame"]

#: IIM Table 4, ShanghaiTech Part B row (VGG-16 + FPN, point labels; sigma_l), in %
PAPER_TABLE4_SHB: dict[str, float] = {"F1": 82.1, "Pre": 92.0, "Rec": 74.1}


def learning_curve(result: Mapping[str, Any]) -> Any:
    """A DataFrame ``step, val_f1, val_pre, val_rec, val_mae, loss, seconds`` of a :func:`train_iim` result's
    validation points (the curve the schedule is sized from); ``seconds`` is the training time up to that point,
    estimated from the run's mean throughput."""
    import pandas as pd

    hist = [h for h in result["history"] if "val_f1" in h]
    if not hist:
        raise ValueError("learning_curve: the run logged no validation point (eval_every larger than steps?)")
    steps = int(result["steps"])
    per_step = float(result["train_seconds"]) / max(steps, 1)
    rows = [{"step": int(h["step"]), "val_f1": float(h["val_f1"]), "val_pre": float(h["val_pre"]),
             "val_rec": float(h["val_rec"]), "val_mae": float(h["val_mae"]),
             "loss": float(h.get("loss_loss", h.get("loss_total", float("nan")))),
             "seconds": per_step * int(h["step"])} for h in hist]
    return pd.DataFrame(rows)


def curve_trend(curve: Any, factors: Sequence[float] = (2.0, 10.0)) -> dict[str, Any]:
    """What more steps would reach: a power law ``1 - F1 = a * step ** -b`` fitted on the late half of the
    validation curve (:func:`crowdlib.curves.extrapolate_curve`), returned as F1 at the last step (fitted and
    measured) and at ``factors`` x the steps, with ``rising`` (``b > 0``)."""
    from crowdlib.curves import extrapolate_curve

    s = np.asarray(curve["step"], float)
    f1 = np.asarray(curve["val_f1"], float)
    fit = extrapolate_curve(s, 1.0 - f1, factors=(1.0, *factors))
    out: dict[str, Any] = {"last_step": int(s[-1]), "measured": float(f1[-1]), "b": float(fit["b"]),
                           "rising": bool(fit["b"] > 0), "fitted": 1.0 - float(fit["at x1"])}
    for f in factors:
        key = f"at x{f:g}"
        out[key] = 1.0 - float(fit[key])
    return out


def target_ceiling(records: Sequence[CrowdRecord], point_size: float, scale: float, threshold: float = 0.5,
                   min_area: int = 3) -> dict[str, float]:
    """F1 / Pre / Rec (sigma_l, ``point_size`` boxes) of decoding the *training targets themselves* when images are
    resized by ``scale``: the points-only instance map built at that scale (as training sees it), resized back to the
    image (bilinear, as predictions are), binarised at ``threshold`` and decoded. A perfect model trained at
    ``scale`` scores at most this; use training or validation images only."""
    import torch
    import torch.nn.functional as F

    from .data import IIMTargets

    if not 0 < scale <= 4:
        raise ValueError(f"target_ceiling: scale must be in (0, 4], got {scale}")
    tg = IIMTargets("instance", point_size=point_size)
    pts_out = []
    for r in records:
        h, w = r.load_image().shape[:2]
        hs, ws = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
        pts = np.asarray(r.points, np.float32).reshape(-1, 2) * np.float32(scale)
        inst = tg({"image": torch.zeros(1, hs, ws), "points": pts, "boxes": None, "scale": scale})["instance"]
        m = inst.float().reshape(1, 1, hs, ws)
        if (hs, ws) != (h, w):
            m = F.interpolate(m, size=(h, w), mode="bilinear", align_corners=False)
        pts_out.append(decode_components(m[0, 0].numpy() >= threshold, min_area=min_area))
    s = score_points(records, pts_out, fallback_size=point_size)
    return {"scale": float(scale), "f1": float(s["f1"]), "pre": float(s["pre"]), "rec": float(s["rec"])}


def table4_frame(evals: Sequence[Mapping[str, Any]], paper: Mapping[str, float] = PAPER_TABLE4_SHB) -> Any:
    """Pre / Rec / F1 at sigma_l and sigma_s and MAE / MSE of test evaluations (one per seed: mean, and std when
    more than one) beside the paper's Table 4 row (sigma_l only; the paper gives no counting errors for SHB)."""
    import pandas as pd

    rows = []
    for name, key, sigma, pct in (("F1", "f1", "sigma_l", True), ("Pre", "pre", "sigma_l", True),
                                  ("Rec", "rec", "sigma_l", True), ("F1", "f1_s", "sigma_s", True),
                                  ("Pre", "pre_s", "sigma_s", True), ("Rec", "rec_s", "sigma_s", True),
                                  ("MAE", "mae", "-", False), ("MSE", "mse", "-", False)):
        v = np.asarray([float(e[key]) for e in evals]) * (100.0 if pct else 1.0)
        rows.append({"metric": name, "sigma": sigma, "ours": float(v.mean()),
                     "ours std": float(v.std(ddof=1)) if len(v) > 1 else float("nan"),
                     "paper": float(paper[name]) if sigma == "sigma_l" and name in paper else float("nan")})
    return pd.DataFrame(rows)


def level_recall_frame(evals: Sequence[Mapping[str, Any]], paper: Sequence[float] | None = None) -> Any:
    """Recall (sigma_l, %) per head-area level A0..A5 of test evaluations (mean over seeds) with the number of
    heads per level, beside ``paper`` (e.g. IIM Table 2's NWPU row; the paper gives none for SHB)."""
    import pandas as pd

    rec = np.asarray([e["rec_levels"] for e in evals], float) * 100.0
    heads = np.asarray(evals[0]["heads_per_level"], int)
    rows = []
    for lv in range(rec.shape[1]):
        row = {"level": f"A{lv}", "heads": int(heads[lv]), "recall (ours)": float(np.nanmean(rec[:, lv]))}
        if paper is not None:
            row["recall (paper, NWPU)"] = float(paper[lv])
        rows.append(row)
    return pd.DataFrame(rows)
