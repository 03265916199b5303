"""Losses for IIM and for the two ground-truth-type baselines of IIM's Table 5.

- :class:`IIMLoss`: ``mse`` = mean squared error between the confidence map and the instance map, and ``l1`` =
  mean absolute error between the binarized map and the instance map (Sec. 3.3.3, weights 1:1 in the authors'
  code). The L1 term is computed here with its own binarization so that Table 3's "L1 loss working area" is a
  loss parameter: ``l1_area="encoder"`` binarizes with ``k = 0`` (the gradient reaches only the threshold
  encoder), ``l1_area="both"`` with ``k`` (0.2 in the authors' code; the gradient also reaches the predictor).
- :class:`DensityLoss`: pixel MSE between a predicted and a ground-truth density map (scaled by ``density_scale``).
- :class:`DotMapLoss`: on a dilated dot ("cruciform") map, pixel MSE (``kind="mse"``, the loss IIM's own
  confidence map has) or class-balanced binary cross-entropy (``kind="bce_balanced"``).

Targets are batch dicts with ``(B, 1, H, W)`` (or ``(B, H, W)``) float maps under ``"instance"``, ``"density"`` or
``"dotmap"``; outputs are the model dicts (``"confidence"``, ``"threshold"``) or a ``"map"`` for the baselines.
"""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F

from crowdlib.losses.base import WeightedLoss
from crowdlib.losses.binarize import binarize

__all__ = ["IIMLoss", "DensityLoss", "DotMapLoss"]


def _target(targets: Mapping[str, torch.Tensor], key: str, like: torch.Tensor) -> torch.Tensor:
    if key not in targets:
        raise ValueError(f"targets have no {key!r} map (keys: {sorted(targets)})")
    t = targets[key]
    if t.dim() == 3:
        t = t.unsqueeze(1)
    if t.shape != like.shape:
        raise ValueError(f"target {key!r} has shape {tuple(t.shape)}, prediction has {tuple(like.shape)}")
    return t.to(device=like.device, dtype=torch.float32)


class IIMLoss(WeightedLoss):
    """MSE(confidence, instance) + L1(binary, instance).

    Args:
        use_l1: include the L1 term (False for the fixed-threshold CP rows, which train on MSE alone).
        l1_area: ``"both"`` (confidence predictor and threshold encoder) or ``"encoder"`` (encoder only).
        k: confidence-path gradient factor of the binarization layer when ``l1_area == "both"``.
        w_mse, w_l1: term weights.
    """

    def __init__(self, use_l1: bool = True, l1_area: str = "both", k: float = 0.2, w_mse: float = 1.0, w_l1: float = 1.0) -> None:
        if l1_area not in ("both", "encoder"):
            raise ValueError(f"IIMLoss: l1_area must be 'both' or 'encoder', got {l1_area!r}")
        weights = {"mse": w_mse, "l1": w_l1} if use_l1 else {"mse": w_mse}
        super().__init__(weights)
        self.use_l1 = use_l1
        self.l1_area = l1_area
        self.k = float(k) if l1_area == "both" else 0.0

    def compute_terms(self, outputs: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        conf = outputs["confidence"].float()
        inst = _target(targets, "instance", conf)
        terms = {"mse": F.mse_loss(conf, inst)}
        if self.use_l1:
            thr = outputs["threshold"].float()
            binary = binarize(conf, thr, self.k)
            terms["l1"] = (binary - inst).abs().mean()
        return terms


class DensityLoss(WeightedLoss):
    """Pixel MSE between ``outputs["map"]`` and ``density_scale * targets["density"]``.

    The scale (100 by default, a common choice) keeps the per-pixel density values away from zero so that the
    MSE gradient is not vanishing; predictions are divided by it when counting.
    """

    def __init__(self, density_scale: float = 100.0, w_mse: float = 1.0) -> None:
        super().__init__({"mse": w_mse})
        self.density_scale = float(density_scale)

    def compute_terms(self, outputs: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        pred = outputs["map"].float()
        gt = _target(targets, "density", pred) * self.density_scale
        return {"mse": F.mse_loss(pred, gt)}


class DotMapLoss(WeightedLoss):
    """The cruciform dot-map baseline's loss, named by ``kind``.

    ``"mse"``: pixel MSE between the sigmoid output and the dot map (term ``mse``), as IIM's confidence map is
    trained, so that Table 5 compares ground-truth forms under one loss. ``"bce_balanced"``: binary cross-entropy
    with positives weighted by ``pos_weight`` (default: #neg / #pos per batch, capped at ``max_pos_weight``; term
    ``bce``).
    """

    KINDS = ("mse", "bce_balanced")

    def __init__(self, kind: str = "bce_balanced", pos_weight: float | None = None, max_pos_weight: float = 50.0,
                 weight: float = 1.0) -> None:
        if kind not in self.KINDS:
            raise ValueError(f"DotMapLoss: kind must be one of {self.KINDS}, got {kind!r}")
        super().__init__({"mse" if kind == "mse" else "bce": weight})
        self.kind = kind
        self.pos_weight = pos_weight
        self.max_pos_weight = float(max_pos_weight)

    def compute_terms(self, outputs: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        p = outputs["map"].float()
        gt = _target(targets, "dotmap", p)
        if self.kind == "mse":
            return {"mse": F.mse_loss(p, gt)}
        p = p.clamp(1e-6, 1 - 1e-6)
        if self.pos_weight is None:
            npos = gt.sum()
            w = ((gt.numel() - npos) / npos.clamp(min=1.0)).clamp(max=self.max_pos_weight).detach()
        else:
            w = torch.tensor(self.pos_weight, device=p.device)
        loss = -(w * gt * torch.log(p) + (1 - gt) * torch.log(1 - p))
        return {"bce": loss.mean()}
