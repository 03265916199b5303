"""Ground-truth-type baselines of IIM's Table 5, on the same confidence-predictor network as IIM.

- Density map + peak finding (GPR-like, Gao et al. [19]): the network (linear output) regresses ``density_scale x`` a Gaussian
  density map (MSE); heads are local maxima of the predicted density within a ``window`` (the 15x15 Gaussian
  prior of GPR) whose value passes a threshold chosen on validation; the count is the integral of the map.
- Dilated dot map + local maxima (RAZ_Loc-like "cruciform" label, Liu et al. [12]): the network classifies
  every pixel as near-a-head or not, trained on dots dilated by a cross of ``radius`` pixels (class-balanced
  BCE); heads are 3x3 local maxima of the probability above a validation-chosen threshold; the count is the
  number of heads.

Both builders return ``(DenseMapNet, loss)``; the network's ``forward`` gives ``{"map": (B, 1, H, W)}``.
The decoders are plain tensor functions (:func:`local_maxima`) usable on any map.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from crowdlib.losses.iim import DensityLoss, DotMapLoss
from crowdlib.models.iim import ConfidencePredictor
from crowdlib.models.registry import register_model

__all__ = ["DenseMapNet", "build_density_baseline", "build_dotmap_baseline", "local_maxima", "cruciform_map"]


class DenseMapNet(nn.Module):
    """A :class:`~crowdlib.models.iim.ConfidencePredictor` whose full-resolution map is returned as ``{"map"}``.

    Args:
        predictor: the network.
        clamp_eval: in eval mode, clamp the map at 0 (the density regressor is trained with a linear output,
            since a ReLU output starting with negative pre-activations gets no gradient and can die, and is made
            non-negative for counting and peak finding).
    """

    def __init__(self, predictor: ConfidencePredictor, clamp_eval: bool = False) -> None:
        super().__init__()
        self.predictor = predictor
        self.clamp_eval = bool(clamp_eval)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        m, _ = self.predictor(x)
        m = m.float()
        if self.clamp_eval and not self.training:
            m = m.clamp(min=0.0)
        return {"map": m}


def local_maxima(score: torch.Tensor, threshold: float, window: int = 3) -> list[np.ndarray]:
    """Local maxima of ``score (B, 1, H, W)`` (or ``(H, W)``) within ``window`` with value ``>= threshold``.

    Ties on a plateau keep every tied pixel (as a max-pool test does). Returns one ``(N, 2)`` float32 array of
    ``(x, y)`` pixel coordinates per image.

    Raises:
        ValueError: for an even or non-positive ``window`` or an input that is not 2-D or 4-D.
    """
    if window < 1 or window % 2 == 0:
        raise ValueError(f"local_maxima: window must be odd and >= 1, got {window}")
    s = score
    if s.dim() == 2:
        s = s[None, None]
    if s.dim() != 4:
        raise ValueError(f"local_maxima: score must be (H, W) or (B, 1, H, W), got {tuple(score.shape)}")
    s = s.float()
    mx = F.max_pool2d(s, window, stride=1, padding=window // 2)
    keep = (s >= mx) & (s >= threshold)
    out = []
    for b in range(s.shape[0]):
        yx = torch.nonzero(keep[b, 0], as_tuple=False).cpu().numpy()
        out.append(yx[:, ::-1].astype(np.float32).reshape(-1, 2))
    return out


def cruciform_map(points: np.ndarray, shape: tuple[int, int], radius: int = 2) -> np.ndarray:
    """A binary ``(H, W)`` float32 map with a cross of arm length ``radius`` centred on each (rounded) point.

    Points outside the image are ignored.
    """
    H, W = shape
    out = np.zeros((H, W), dtype=np.float32)
    pts = np.asarray(points, dtype=np.float32).reshape(-1, 2)
    if len(pts) == 0:
        return out
    xi = np.floor(pts[:, 0]).astype(np.int64)
    yi = np.floor(pts[:, 1]).astype(np.int64)
    ok = (xi >= 0) & (xi < W) & (yi >= 0) & (yi < H)
    xi, yi = xi[ok], yi[ok]
    offs = np.arange(-radius, radius + 1)
    # horizontal arm
    xs = (xi[:, None] + offs[None]).ravel()
    ys = np.repeat(yi, len(offs))
    m = (xs >= 0) & (xs < W)
    out[ys[m], xs[m]] = 1.0
    # vertical arm
    ys = (yi[:, None] + offs[None]).ravel()
    xs = np.repeat(xi, len(offs))
    m = (ys >= 0) & (ys < H)
    out[ys[m], xs[m]] = 1.0
    return out


def _predictor(cfg: Mapping[str, Any], out_activation: str) -> ConfidencePredictor:
    return ConfidencePredictor(
        backbone=cfg.get("backbone", "tiny"),
        pretrained=bool(cfg.get("pretrained", False)),
        fpn_channels=int(cfg.get("fpn_channels", 64)),
        head_channels=int(cfg.get("head_channels", 32)),
        out_activation=out_activation,
        head_full_res=bool(cfg.get("head_full_res", True)),
    )


@register_model("iim_density")
def build_density_baseline(cfg: Mapping[str, Any]) -> tuple[nn.Module, nn.Module]:
    """``(DenseMapNet with a linear output clamped at 0 in eval mode, DensityLoss(density_scale))``; keys as
    :func:`crowdlib.models.iim.build_iim` plus ``density_scale`` (100)."""
    return DenseMapNet(_predictor(cfg, "none"), clamp_eval=True), DensityLoss(density_scale=float(cfg.get("density_scale", 100.0)))


@register_model("iim_dotmap")
def build_dotmap_baseline(cfg: Mapping[str, Any]) -> tuple[nn.Module, nn.Module]:
    """``(DenseMapNet with a sigmoid output, DotMapLoss)``, the loss named by ``cfg["dot_loss"]`` (``"mse"`` or
    ``"bce_balanced"``, the default when the key is absent); the output bias starts at the logit of 0.01."""
    pred = _predictor(cfg, "sigmoid")
    pred.set_output_bias(float(np.log(0.01 / 0.99)))
    return DenseMapNet(pred), DotMapLoss(kind=str(cfg.get("dot_loss", "bce_balanced")),
                                         max_pos_weight=float(cfg.get("max_pos_weight", 50.0)))
