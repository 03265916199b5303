"""IIM inference and scoring: whole-image (sliding-window) maps, decoding (Sec. 3.3: 4-connected components of the
binary map with at least ``min_area`` pixels; the centroid of a component is a head, the count is the number of
components), the baselines' peak decoding with parameters chosen on validation, and the NWPU-protocol scores."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from crowdlib.data.records import CrowdRecord
from crowdlib.device import autocast
from crowdlib.models.baselines import local_maxima
from crowdlib.models.iim import sliding_window_predict
from crowdlib.repro import TRAIN_THREADS, fixed_threads

from .data import gt_for_scoring

__all__ = ["DENSITY_THRESHOLDS", "DOTMAP_THRESHOLDS", "PEAK_WINDOWS", "predict_maps", "decode_components", "decode_iim",
           "decode_baseline", "score_points", "choose_decode_params", "evaluate_model", "threshold_stats",
           "pixel_balance_sweep"]


# decode grids searched on validation images for the baselines (never on test images)
DENSITY_THRESHOLDS = tuple(float(v) for v in np.geomspace(0.02, 2.0, 24))
DOTMAP_THRESHOLDS = tuple(float(v) for v in np.linspace(0.1, 0.95, 18))
PEAK_WINDOWS = (3, 5, 7)

# ----------------------------------------------------------------------------------------------- inference
def _normalise(image: np.ndarray) -> torch.Tensor:
    from crowdlib.data.transforms import IMAGENET_MEAN, IMAGENET_STD, to_float_image

    t = to_float_image(image)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return ((t - mean) / std)[None]


@torch.no_grad()
def predict_maps(model: torch.nn.Module, records: Sequence[CrowdRecord], device: torch.device | str | None = None,
                 *, window: int = 1024, overlap: int = 64, scale: float = 1.0, density: bool = False,
                 progress: bool = False, threads: int = TRAIN_THREADS) -> list[dict[str, np.ndarray]]:
    """Run a model on whole images (sliding windows above ``window`` px) and return numpy maps per image.

    IIM models give ``{"confidence", "threshold"}`` (``(H, W)`` float32 each; an image-level threshold is
    expanded); the baselines give ``{"map"}``. With ``scale != 1`` the image is resized by ``scale`` first (a
    CPU-time saving for large images) and the maps are resized back to the image size (bilinear); with
    ``density=True`` the ``"map"`` is then multiplied by ``scale ** 2`` so that its integral (the count) is kept.
    Runs under :class:`crowdlib.repro.fixed_threads` with ``threads`` intra-op threads (a config's ``threads``).
    """
    with fixed_threads(threads):
        return _predict_maps(model, records, device, window, overlap, scale, density, progress)


def _predict_maps(model: torch.nn.Module, records: Sequence[CrowdRecord], device: torch.device | str | None,
                  window: int, overlap: int, scale: float, density: bool, progress: bool) -> list[dict[str, np.ndarray]]:
    import torch.nn.functional as F

    dev = torch.device(device) if device is not None else next(model.parameters()).device
    was = model.training
    model.eval()
    out = []
    try:
        for rec in tqdm(records, desc="predict", leave=False, disable=not progress):
            x = _normalise(rec.load_image()).to(dev)
            H, W = x.shape[-2:]
            if scale != 1.0:
                x = F.interpolate(x, scale_factor=scale, mode="bilinear", align_corners=False, antialias=scale < 1,
                                  recompute_scale_factor=False)
            with autocast(dev):
                keys = ("map",) if not hasattr(model, "encoder_type") else ("confidence", "threshold")
                res = sliding_window_predict(model, x, window=window, overlap=overlap, keys=keys)
            maps = {}
            for k, v in res.items():
                if k == "binary":
                    continue
                v = v.float()
                if scale != 1.0:
                    v = F.interpolate(v, size=(H, W), mode="bilinear", align_corners=False)
                    if k == "map" and density:
                        v = v * scale ** 2
                maps[k] = v[0, 0].cpu().numpy()
            out.append(maps)
    finally:
        model.train(was)
    return out


def decode_components(binary: np.ndarray, min_area: int = 3) -> np.ndarray:
    """Heads of a binary map: centroids ``(x, y)`` (pixel centres at ``+0.5``) of its 4-connected components with
    at least ``min_area`` pixels (``crowdlib.decode.components``)."""
    from crowdlib.decode import components

    cent, _, _ = components(np.asarray(binary).astype(bool), min_area=min_area, connectivity=4)
    return np.asarray(cent, np.float32).reshape(-1, 2)


def decode_iim(maps: Mapping[str, np.ndarray], threshold: float | None = None, min_area: int = 3) -> np.ndarray:
    """Heads from IIM maps: binarize the confidence with ``threshold`` (a float) or the predicted threshold map
    (``None``), then :func:`decode_components`."""
    thr = maps["threshold"] if threshold is None else float(threshold)
    return decode_components(maps["confidence"] >= thr, min_area=min_area)


def decode_baseline(model_name: str, maps: Mapping[str, np.ndarray], params: Mapping[str, Any],
                    density_scale: float = 100.0) -> tuple[np.ndarray, float]:
    """``(points, count)`` for the baselines: density peaks (count = integral / ``density_scale``) or dot-map
    local maxima (count = number of maxima); ``params`` holds ``threshold`` and ``window``."""
    m = torch.from_numpy(np.ascontiguousarray(maps["map"]))
    (pts,) = local_maxima(m, float(params["threshold"]), int(params.get("window", 3)))
    pts = pts + 0.5  # pixel centres
    if model_name == "iim_density":
        return pts, float(maps["map"].sum() / density_scale)
    return pts, float(len(pts))


def score_points(records: Sequence[CrowdRecord], points: Sequence[np.ndarray], counts: Sequence[float] | None = None,
                 fallback_size: float | None = None) -> dict[str, Any]:
    """NWPU-protocol scores of predicted heads: ``f1``, ``pre``, ``rec`` (sigma_l), ``f1_s``/``pre_s``/``rec_s``
    (sigma_s), ``rec_levels`` (sigma_l recall per area level A0..A5), ``mae``, ``mse`` (root mean squared error),
    ``nae``; counting errors use ``counts`` when given (e.g. a density integral), else the number of heads.
    ``fallback_size``: see :func:`gt_for_scoring`."""
    from crowdlib.metrics.counting import count_metrics
    from crowdlib.metrics.nwpu import nwpu_evaluate

    gt = {r.image_id: gt_for_scoring(r, fallback_size) for r in records}
    pred = {r.image_id: np.asarray(p, np.float64).reshape(-1, 2) for r, p in zip(records, points)}
    res = nwpu_evaluate(gt, pred, [r.image_id for r in records])
    out = {
        "f1": res.sigma_l.f1, "pre": res.sigma_l.precision, "rec": res.sigma_l.recall,
        "f1_s": res.sigma_s.f1, "pre_s": res.sigma_s.precision, "rec_s": res.sigma_s.recall,
        "rec_levels": list(res.sigma_l.recall_per_level),
        "heads_per_level": [a + b for a, b in zip(res.sigma_l.tp_per_level, res.sigma_l.fn_per_level)],
        "mae": res.mae, "mse": res.mse, "nae": res.nae,
    }
    if counts is not None:
        cm = count_metrics(np.asarray(counts, float), np.asarray([r.count for r in records], float))
        out.update(mae=cm["mae"], mse=cm["mse"], nae=cm["nae"])
    return out


def choose_decode_params(model_name: str, records: Sequence[CrowdRecord], maps: Sequence[Mapping[str, np.ndarray]],
                         density_scale: float = 100.0, fallback_size: float | None = None) -> tuple[dict[str, Any], float]:
    """Grid-search the baselines' peak threshold (and window) for the best F1 on the given (validation) images.

    Returns ``(params, f1)``. IIM needs no search (its threshold is fixed or learned): ``({}, nan)``.
    """
    if model_name == "iim":
        return {}, float("nan")
    grid = DENSITY_THRESHOLDS if model_name == "iim_density" else DOTMAP_THRESHOLDS
    windows = PEAK_WINDOWS if model_name == "iim_density" else (3,)
    best: tuple[float, dict[str, Any]] = (-1.0, {"threshold": grid[0], "window": windows[0]})
    for w in windows:
        for t in grid:
            params = {"threshold": t, "window": w}
            pts = [decode_baseline(model_name, m, params, density_scale)[0] for m in maps]
            f1 = score_points(records, pts, fallback_size=fallback_size)["f1"]
            if f1 > best[0]:
                best = (f1, params)
    return best[1], best[0]


def evaluate_model(model: torch.nn.Module, cfg: Mapping[str, Any], records: Sequence[CrowdRecord], *,
                   maps: Sequence[Mapping[str, np.ndarray]] | None = None, threshold: float | None = None,
                   decode: Mapping[str, Any] | None = None, device: torch.device | str | None = None,
                   progress: bool = False, fallback_size: float | None = None) -> dict[str, Any]:
    """Predict (unless ``maps`` are given), decode and score ``records``.

    IIM: ``threshold`` None uses the model's own threshold (learned, or ``fixed_threshold`` for CP), a float
    overrides it. Baselines: ``decode`` holds the validation-chosen ``threshold``/``window``. The result is
    :func:`score_points`' dict plus ``"points"`` and ``"counts"`` per image.
    """
    if maps is None:
        maps = predict_maps(model, records, device, window=int(cfg.get("eval_window", 1024)),
                            scale=float(cfg.get("eval_scale", 1.0)), density=cfg["model"] == "iim_density",
                            progress=progress, threads=int(cfg.get("threads", TRAIN_THREADS)))
    name = cfg["model"]
    if name == "iim":
        if threshold is None and cfg.get("encoder", "pbm") == "none":
            threshold = float(cfg.get("fixed_threshold", 0.5))
        pts = [decode_iim(m, threshold, int(cfg.get("min_area", 3))) for m in maps]
        counts = [float(len(p)) for p in pts]
    else:
        if decode is None:
            raise ValueError(f"evaluate_model: model {name!r} needs decode params (threshold/window) chosen on validation")
        dec = [decode_baseline(name, m, decode, float(cfg.get("density_scale", 100.0))) for m in maps]
        pts, counts = [d[0] for d in dec], [d[1] for d in dec]
    out = score_points(records, pts, counts, fallback_size=fallback_size)
    out["points"] = pts
    out["counts"] = counts
    return out


def threshold_stats(maps: Sequence[Mapping[str, np.ndarray]], instance_maps: Sequence[np.ndarray]) -> dict[str, float]:
    """Mean predicted threshold on foreground (instance map 1) and background pixels, and mean confidence on each."""
    fg_t, bg_t, fg_c, bg_c = [], [], [], []
    for m, inst in zip(maps, instance_maps):
        fg = np.asarray(inst) > 0
        t = np.broadcast_to(m["threshold"], fg.shape)
        if fg.any():
            fg_t.append(t[fg])
            fg_c.append(m["confidence"][fg])
        bg_t.append(t[~fg])
        bg_c.append(m["confidence"][~fg])
    cat = lambda xs: float(np.concatenate(xs).mean()) if xs else float("nan")  # noqa: E731
    return {"thr_fg": cat(fg_t), "thr_bg": cat(bg_t), "conf_fg": cat(fg_c), "conf_bg": cat(bg_c)}


def pixel_balance_sweep(records: Sequence[CrowdRecord], maps: Sequence[Mapping[str, np.ndarray]],
                        instance_maps: Sequence[np.ndarray], thresholds: Sequence[float],
                        min_area: int = 3) -> Any:
    """For each global threshold: false-positive and false-negative *pixels* against the instance maps, the
    pixel L1 error, and the localization F1/Pre/Rec of the decoded components.

    The binarization layer's threshold gradient is ``#FN - #FP`` pixels (derivative -1 at every pixel, Eq. 3/6),
    so a learned threshold drifts to where the two counts balance (predicted foreground area = true area), which
    need not be the pixel-L1 minimum nor the F1 optimum; this table shows the three side by side.
    """
    import pandas as pd

    C = [np.asarray(m["confidence"]) for m in maps]
    G = [np.asarray(g) > 0 for g in instance_maps]
    n = float(sum(g.size for g in G))
    out = []
    for t in thresholds:
        fp = sum(int(((c >= t) & ~g).sum()) for c, g in zip(C, G))
        fn = sum(int(((c < t) & g).sum()) for c, g in zip(C, G))
        s = score_points(records, [decode_components(c >= t, min_area) for c in C])
        out.append({"threshold": float(t), "FP pixels": fp, "FN pixels": fn, "pixel L1": (fp + fn) / n,
                    "F1": 100 * s["f1"], "Pre": 100 * s["pre"], "Rec": 100 * s["rec"]})
    return pd.DataFrame(out)
