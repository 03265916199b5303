"""Inference of R, D and Phi on one image and the pseudo ground truth of one cycle (Sec. 3.4 steps 1-2).

:func:`pseudo_labels` is also the test-time procedure ("merging the outputs of R_T and D_T with the same procedure as
in training"): it returns R's own map, D's own detections, Psi(D), Phi(R), ``W``, the fused density ``M^R`` and the
fused detections ``M^D``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from crowdlib.data.records import CrowdRecord

from .data import upsample_density
from .fusion import confidence_map, fuse_density, fuse_detections, kernel_radii, phi_points, psi

__all__ = ["image_tensor", "predict_cells", "run_detector", "run_phi", "pseudo_labels", "refit_phi_threshold",
           "choose_phi_threshold", "above"]


def image_tensor(rec: CrowdRecord, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(1, 3, H, W)`` ImageNet-normalised image of a record."""
    from crowdlib.data.datasets import normalize
    from crowdlib.data.transforms import to_float_image

    return normalize(to_float_image(rec.load_image()))[None].to(device)


@torch.no_grad()
def predict_cells(regressor: torch.nn.Module, image: torch.Tensor) -> np.ndarray:
    """R's density ``(ceil(H/8), ceil(W/8))`` (counts per cell) of a ``(1, 3, H, W)`` image."""
    was = regressor.training
    regressor.eval()
    try:
        return regressor(image)["density"][0, 0].float().cpu().numpy()
    finally:
        regressor.train(was)


@torch.no_grad()
def run_detector(detector: torch.nn.Module, image: torch.Tensor, *, threshold: float,
                 nms_iou: float = 0.5) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """D's detections with score above ``threshold`` (``{"points", "scores", "sizes"}``) and its size map
    ``(H, W)`` in pixels (nearest-upsampled from the detector's stride)."""
    from crowdlib.methods.sdnet import decode_csp

    was = detector.training
    detector.eval()
    try:
        out = detector(image)
    finally:
        detector.train(was)
    stride = int(detector.stride)
    det = decode_csp(out, stride, min_score=float(threshold), nms_iou=float(nms_iou))[0]
    size = torch.exp(out["log_size"].float().clamp(max=12.0))
    if stride > 1:
        size = F.interpolate(size, scale_factor=stride, mode="nearest")
    h, w = image.shape[-2:]
    return {k: det[k] for k in ("points", "scores", "sizes")}, size[0, 0, :h, :w].cpu().numpy()


@torch.no_grad()
def run_phi(phi: torch.nn.Module, density: np.ndarray, *, threshold: float = 0.2, merge: int = 10,
            form: str = "prob") -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Phi on a full-resolution density ``(H, W)`` (zero-padded to multiples of 8): its points and its map
    (``sigmoid(z)`` with ``form="prob"``, ``z`` with ``"literal"``)."""
    h, w = density.shape
    t = torch.as_tensor(np.asarray(density, np.float32))[None, None]
    t = F.pad(t, (0, (-w) % 8, 0, (-h) % 8))
    dev = next(phi.parameters()).device
    was = phi.training
    phi.eval()
    try:
        z = phi(t.to(dev))["logits"][0, 0, :h, :w].float().cpu()
    finally:
        phi.train(was)
    value = (torch.sigmoid(z) if form == "prob" else z).numpy()
    return phi_points(value, threshold=threshold, merge=merge), value


def choose_phi_threshold(scores_per_image: Sequence[np.ndarray], counts: Sequence[float],
                         grid: Sequence[float] | None = None) -> float:
    """The binarisation threshold ``t`` whose point counts (scores ``> t``) are closest in MAE to ``counts`` (ties:
    the lowest). ``grid`` None searches every pooled candidate score and one value just below the lowest (keep all):
    the counts only change at those values, so the search is exact and holds for any scale of Phi's map
    (probabilities or raw outputs). Pass the candidates of :func:`run_phi` at ``threshold=-inf``: the greedy merge
    visits pixels by descending value, so the points kept at ``t`` are those kept at ``-inf`` with a score above ``t``."""
    from crowdlib.decode import choose_count_threshold

    if grid is None:
        pooled = np.unique(np.concatenate([np.asarray(s, np.float64).ravel() for s in scores_per_image] + [[0.0]]))
        grid = np.r_[np.nextafter(min(pooled[0], 0.0), -np.inf), pooled]  # 0.0: a grid even without candidates
    best, _ = choose_count_threshold(scores_per_image, np.asarray(counts, np.float64), np.asarray(grid, np.float64))
    return float(best)


def above(points: Mapping[str, np.ndarray], threshold: float) -> dict[str, np.ndarray]:
    """The points of ``{"points", "scores"}`` whose score is above ``threshold``."""
    keep = np.asarray(points["scores"]) > float(threshold)
    return {k: np.asarray(v)[keep] for k, v in points.items()}


@torch.no_grad()
def refit_phi_threshold(regressor: torch.nn.Module, phi: torch.nn.Module, records: Sequence[CrowdRecord], *,
                        merge: int = 10, form: str = "prob", grid: Sequence[float] | None = None) -> float:
    """Phi's binarisation threshold minimising the count MAE of Phi(R)'s points on labelled ``records`` (pass the
    SOURCE validation split, never target or test images), by :func:`choose_phi_threshold` (``grid`` None: every
    candidate score, so the threshold follows Phi's own scale, ``form`` "prob" or "literal"). Phi reads R's upsampled
    density, as in :func:`pseudo_labels`."""
    if not records:
        raise ValueError("refit_phi_threshold: no validation records")
    low = -np.inf if grid is None else float(np.min(np.asarray(grid, np.float64)))
    scores = []
    for rec in records:
        img = image_tensor(rec, next(regressor.parameters()).device)
        reg = upsample_density(predict_cells(regressor, img), tuple(img.shape[-2:]), 8)
        scores.append(run_phi(phi, reg, threshold=low, merge=merge, form=form)[0]["scores"])
    return choose_phi_threshold(scores, [r.count for r in records], grid)


def pseudo_labels(rec: CrowdRecord, regressor: torch.nn.Module, detector: torch.nn.Module,
                  phi: torch.nn.Module | None, cfg: Mapping[str, Any], *, det_threshold: float,
                  det_nms_iou: float = 0.5, phi_threshold: float | None = None) -> dict[str, Any]:
    """Everything one cycle derives from one image (module docstring). ``cfg`` is a full run config
    (:func:`~crowdlib.methods.bkt.config.make_config`); with ``cfg["fusion"]`` false, ``M^R = R`` and
    ``M^D = D`` (sizes still by the half rule) and Phi is not run. ``phi_threshold`` (None: ``cfg["phi"]["threshold"]``)
    binarises Phi's map (``source_models(...)["phi_threshold"]`` under ``phi_threshold="refit"``)."""
    dev = next(regressor.parameters()).device
    img = image_tensor(rec, dev)
    h, w = img.shape[-2:]
    cells = predict_cells(regressor, img)
    reg = upsample_density(cells, (h, w), 8)
    det, size_map = run_detector(detector, img, threshold=det_threshold, nms_iou=det_nms_iou)
    sf, tr = float(cfg["sigma_factor"]), float(cfg["truncate"])
    psi_map = psi(det["points"], det["sizes"], (h, w), sigma_factor=sf, truncate=tr)
    weight = confidence_map(det["points"], np.clip(det["scores"], 0, 1), kernel_radii(det["sizes"], sf, tr), (h, w))
    fusion = bool(cfg["fusion"])
    phi_det, phi_map = None, None
    if fusion and phi is not None:
        pc = cfg["phi"]
        thr = float(pc["threshold"] if phi_threshold is None else phi_threshold)
        phi_det, phi_map = run_phi(phi, reg, threshold=thr, merge=int(pc["merge"]),
                                   form=str(pc["form"]))
    m_r = fuse_density(reg, psi_map, weight) if fusion else reg
    m_d = fuse_detections(det, phi_det if fusion else None, size_map, nms_iou=float(cfg["fuse_nms_iou"]),
                          nn_factor=float(cfg["nn_size_factor"]))
    return {"cells": cells, "regression": reg, "detections": det, "size_map": size_map, "psi": psi_map,
            "weight": weight, "phi": phi_det, "phi_map": phi_map, "density": m_r, "fused": m_d}
