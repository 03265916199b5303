"""Crowd-SDNet inference: (multi-)scale testing, box decoding, and the validation-chosen count threshold.

Counting uses the detections with score strictly above the threshold chosen on the validation split
(:func:`choose_threshold`, i.e. :func:`crowdlib.decode.choose_count_threshold`).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from crowdlib.repro import fixed_threads

__all__ = ["MultiScale", "decode_csp", "predict_sdnet", "choose_threshold"]


# =====================================================================================================================
# inference
# =====================================================================================================================
class MultiScale(torch.nn.Module):
    """Wrap a detector for (multi-)scale testing: run it on the image resized by each scale and average.

    Centre probabilities and log sizes (minus ``log(scale)``, i.e. in input pixels) are resampled to the
    scale-1 output grid and averaged; the result is returned as logits again, so decoding is unchanged.
    """

    def __init__(self, model: torch.nn.Module, scales: Sequence[float] = (1.0,)) -> None:
        super().__init__()
        if not scales or any(s <= 0 for s in scales):
            raise ValueError(f"MultiScale: scales must be positive, got {scales}")
        self.model = model
        self.scales = [float(s) for s in scales]
        self.stride = int(model.stride)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        import torch.nn.functional as F

        h, w = -(-x.shape[-2] // self.stride), -(-x.shape[-1] // self.stride)
        probs, sizes, offs = [], [], []
        for s in self.scales:
            xs = x if s == 1.0 else F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=False,
                                                  recompute_scale_factor=False)
            out = self.model(xs)
            p = torch.sigmoid(out["center_logits"].float())
            ls = out["log_size"].float() - math.log(s)
            if p.shape[-2:] != (h, w):
                p = F.interpolate(p, size=(h, w), mode="bilinear", align_corners=False)
                ls = F.interpolate(ls, size=(h, w), mode="bilinear", align_corners=False)
            probs.append(p)
            sizes.append(ls)
            if "offset" in out and s == 1.0:
                offs.append(out["offset"].float())
        p = torch.stack(probs).mean(0).clamp(1e-6, 1 - 1e-6)
        res = {"center_logits": torch.log(p) - torch.log1p(-p), "log_size": torch.stack(sizes).mean(0)}
        if offs:
            res["offset"] = offs[0]
        return res


class _Rescaled(torch.nn.Module):
    """Run a detector on its input resized by ``scale`` (outputs stay on the resized grid)."""

    def __init__(self, model: torch.nn.Module, scale: float) -> None:
        super().__init__()
        self.model = model
        self.scale = float(scale)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        import torch.nn.functional as F

        x = F.interpolate(x, scale_factor=self.scale, mode="bilinear", align_corners=False,
                          recompute_scale_factor=False, antialias=self.scale < 1.0)
        return self.model(x)


def decode_csp(outputs: Mapping[str, torch.Tensor], stride: int, *, min_score: float = 0.05, nms_iou: float = 0.5,
               max_det: int = 5000) -> list[dict[str, np.ndarray]]:
    """Peaks (3x3 max-pool) above ``min_score`` -> square boxes -> NMS, per image.

    Thin wrapper of :func:`crowdlib.decode.heatmap_peaks` and :func:`crowdlib.decode.nms`: a peak in cell
    ``(row, col)`` is at ``((col + dx) * stride, (row + dy) * stride)`` with the predicted offset ``(dx, dy)`` when
    there is an offset head, else at the cell centre ``(col + 0.5) * stride``; the log size is clamped at 12 before
    ``exp`` so that a wild prediction cannot overflow. Returns per image
    ``{"points": (K, 2), "boxes": (K, 4), "scores": (K,), "sizes": (K,)}`` float32, sorted by score.
    """
    from crowdlib.decode import heatmap_peaks, nms

    prob = torch.sigmoid(outputs["center_logits"].float())
    log_size = outputs["log_size"].float().clamp(max=12.0)
    offset = outputs.get("offset")
    res = []
    for det in heatmap_peaks(prob, threshold=min_score, size_map=log_size, stride=stride, max_peaks=max_det,
                             offset=None if offset is None else offset.float()):
        n = len(det["scores"])
        keep = nms(det["boxes"], det["scores"], nms_iou) if nms_iou < 1.0 and n else np.arange(n)
        res.append({k: det[k][keep] for k in ("points", "boxes", "scores", "sizes")})
    return res


@torch.no_grad()
@fixed_threads()
def predict_sdnet(model: torch.nn.Module, records: Sequence[Any], *, device: torch.device | str | None = None,
                  scales: Sequence[float] = (1.0,), min_score: float = 0.05, nms_iou: float = 0.5,
                  batch_size: int = 8, progress: bool = False) -> list[dict[str, np.ndarray]]:
    """Detections for each record (boxes in the record's pixel frame), via :func:`crowdlib.engine.evaluate`.

    Records of equal image size are batched together; ``scales`` gives (multi-)scale testing, e.g. ``(0.5,)``
    runs a model trained on half-size crops of full-size images.
    """
    from crowdlib.data.datasets import CrowdDataset, make_loader
    from crowdlib.device import pick_device
    from crowdlib.engine import evaluate

    device = pick_device(device) if not isinstance(device, torch.device) else device
    scales = [float(v) for v in scales]
    stride = int(model.stride)
    factor = 1.0
    if len(scales) == 1:  # one scale: decode on the resized image's grid, then map back by 1 / scale
        factor = scales[0]
        net: torch.nn.Module = model if factor == 1.0 else _Rescaled(model, factor)
    else:
        net = MultiScale(model, scales)
    net = net.to(device)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, rec in enumerate(records):
        hw = tuple(rec.image_size) if rec.image_size is not None else tuple(rec.load_image().shape[:2])
        groups.setdefault(hw, []).append(i)
    out: list[dict[str, np.ndarray] | None] = [None] * len(records)
    for idx in groups.values():
        ds = CrowdDataset([records[i] for i in idx])
        loader = make_loader(ds, batch_size, shuffle=False, seed=0)

        def post(outputs: Mapping[str, torch.Tensor], batch: Mapping[str, Any]) -> list:
            dets = decode_csp(outputs, stride, min_score=min_score, nms_iou=nms_iou)
            if factor != 1.0:
                for d in dets:
                    for k in ("points", "boxes", "sizes"):
                        d[k] = (d[k] / factor).astype(np.float32)
            return dets

        dets = evaluate(net, loader, device, post, progress=progress)
        for j, d in zip(idx, dets):
            out[j] = d
    return out  # type: ignore[return-value]


def choose_threshold(scores: Sequence[np.ndarray], gt_counts: Sequence[float],
                     grid: Sequence[float] | None = None) -> float:
    """Score threshold minimising the counting MAE on the given images (call it on VALIDATION images only).

    Uses :func:`crowdlib.decode.choose_count_threshold` on a 0.01 grid from 0.05 to 0.95 (ties: lowest threshold).
    """
    from crowdlib.decode import choose_count_threshold

    grid = np.round(np.arange(0.05, 0.951, 0.01), 4) if grid is None else np.asarray(grid, dtype=np.float64)
    if len(scores) != len(gt_counts):
        raise ValueError(f"choose_threshold: {len(scores)} score arrays for {len(gt_counts)} counts")
    if len(scores) == 0:
        return 0.4
    best, _ = choose_count_threshold([np.asarray(s) for s in scores], np.asarray(gt_counts, dtype=np.float64), grid)
    return float(best)
