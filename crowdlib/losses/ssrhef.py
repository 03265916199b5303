"""SSR-HEF losses (Chen et al., "Crowd Counting with Multi-Scale Semantic Refining and Hard Example Focusing").

Eq. 5: ``L = L_hef + lambda_1 L_segs + lambda_2 L_cla`` with ``lambda_1 = 1e-2`` and ``lambda_2 = 1e-3``; the terms
of :class:`SSRHEFLoss` are named ``hef`` (``l2`` when hard example focusing is off, Table VII's "without HEF"),
``seg`` (present only with the semantic refining strategy) and ``cls`` (present only with ``num_classes > 0``).

Hard example focusing (Eq. 4). The printed equation weights the squared error with ``-sigma(D)^gamma``; the text
below it names the factor ``(1 - sigma(D))^gamma`` and explains it (an under-predicted, low density gets a factor
near 1, an "easy" high one near 0). Both forms are here (``form="text"``, the default, and ``"printed"``); the
printed minus sign is dropped in both (it would make the loss *maximise* the error; it is the ``-log p`` sign of
the focal loss carried over). ``gamma = 2`` as the paper. Two consequences worth knowing:

- The factor depends on the *predicted* value in loss units only, so its effect is set by ``density_scale`` (the
  targets are multiplied by it and the network predicts scaled densities) and by the output stride (the ground
  truth is sum-pooled to the prediction's grid, so a stride-8 cell holds 64 pixels' mass). Raw full-resolution
  densities (~1e-2 per pixel) give ``sigma(D) ~ 0.5`` everywhere: a constant factor of ~0.25, i.e. plain L2.
  :func:`hef_factor` returns the factor map, for plotting its distribution over pixels.
- ``detach=True`` (default) uses the factor as a per-pixel weight (no gradient through it). Differentiating
  through ``(1 - sigma(D))^2`` adds ``-2 sigma (1 - sigma)^2 e^2`` to ``dL/dD`` (``e = D - D_gt``): the gradient is
  ``2 (1 - sigma)^2 e (1 - sigma e)``, which for an over-prediction ``e > 1 / sigma`` points *upwards*, so the loss
  can be lowered by inflating the prediction (it tends to 0 as ``D -> inf``). ``detach=False`` keeps that form.

Semantic refining (Eq. 2): the Dice loss ``1 - 2 sum(S_hat S) / (sum(S_hat^2) + sum(S^2))`` (V-Net form) of each of
the ``M = 3`` scales, per image, summed over scales and averaged over the batch; ``S_hat = sigmoid(logits)``.

Classification (Eq. 3, Table II): cross-entropy over ``K`` count classes. :func:`class_threshold` is the adaptive
rule ``Thr = C / K`` (``C`` the maximum training count) and :func:`count_classes` maps a count to
``min(floor(count / Thr), K - 1)`` (the maximum count itself falls into the last class).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from crowdlib.losses.base import WeightedLoss

__all__ = ["HEF_FORMS", "hef_factor", "hef_loss", "dice_loss", "sum_pool_to", "class_threshold", "count_classes",
           "SSRHEFLoss"]

HEF_FORMS = ("text", "printed")


# ----------------------------------------------------------------------------------------------- HEF
def hef_factor(pred: torch.Tensor | np.ndarray, form: str = "text", gamma: float = 2.0) -> torch.Tensor:
    """The modulating factor of Eq. 4 on a prediction in loss units: ``(1 - sigmoid(pred)) ** gamma``
    (``form="text"``) or ``sigmoid(pred) ** gamma`` (``form="printed"``). Differentiable; accepts arrays.

    Raises:
        ValueError: on an unknown form or a negative ``gamma``.
    """
    if form not in HEF_FORMS:
        raise ValueError(f"hef_factor: form must be one of {HEF_FORMS}, got {form!r}")
    if float(gamma) < 0:
        raise ValueError(f"hef_factor: gamma must be >= 0, got {gamma}")
    p = pred if torch.is_tensor(pred) else torch.as_tensor(np.asarray(pred, dtype=np.float32))
    s = torch.sigmoid(p)
    return (1.0 - s).pow(float(gamma)) if form == "text" else s.pow(float(gamma))


def hef_loss(pred: torch.Tensor, target: torch.Tensor, form: str = "text", gamma: float = 2.0,
             detach: bool = True) -> torch.Tensor:
    """Eq. 4 (without the printed minus sign): the mean over pixels and images of
    ``hef_factor(pred) * (pred - target) ** 2``; the factor is a constant weight when ``detach``."""
    if pred.shape != target.shape:
        raise ValueError(f"hef_loss: prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    f = hef_factor(pred.detach() if detach else pred, form, gamma)
    return (f * (pred - target) ** 2).mean()


# ----------------------------------------------------------------------------------------------- Dice
def dice_loss(prob: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Eq. 2 for one scale: ``1 - (2 sum(p t) + eps) / (sum(p^2) + sum(t^2) + eps)`` per image (sums over all but
    the first dimension), averaged over the batch. ``prob`` holds probabilities (apply the sigmoid first); an
    empty prediction of an empty target scores 0."""
    if prob.shape != target.shape:
        raise ValueError(f"dice_loss: prediction {tuple(prob.shape)} and target {tuple(target.shape)} differ")
    p = prob.reshape(prob.shape[0], -1)
    t = target.reshape(target.shape[0], -1).to(p.dtype)
    num = 2.0 * (p * t).sum(1) + eps
    den = (p * p).sum(1) + (t * t).sum(1) + eps
    return (1.0 - num / den).mean()


def _fit(t: torch.Tensor, hw: tuple[int, int], what: str) -> torch.Tensor:
    """Crop ``t (B, C, H, W)`` to ``hw``; raises when it is smaller (labels are built on the ceil grid)."""
    h, w = hw
    if t.shape[-2] < h or t.shape[-1] < w:
        raise ValueError(f"SSRHEFLoss: {what} target {tuple(t.shape[-2:])} is smaller than the prediction {hw}")
    return t[..., :h, :w]


def sum_pool_to(density: torch.Tensor, stride: int, hw: tuple[int, int]) -> torch.Tensor:
    """Sum-pool a full-resolution ``(B, 1, H, W)`` density over ``stride x stride`` cells (zero padding to the ceil
    grid, so every head's mass is kept) and crop to ``hw``: the count-preserving target of a stride-``s`` map."""
    s = int(stride)
    if s < 1:
        raise ValueError(f"sum_pool_to: stride must be >= 1, got {stride}")
    if s > 1:
        H, W = density.shape[-2:]
        ph, pw = (-H) % s, (-W) % s
        if ph or pw:
            density = F.pad(density, (0, pw, 0, ph))
        density = F.avg_pool2d(density, s) * float(s * s)
    return _fit(density, hw, "density")


# ----------------------------------------------------------------------------------------------- count classes
def class_threshold(train_counts: Sequence[float] | np.ndarray, num_classes: int) -> float:
    """Table II's adaptive threshold ``Thr = C / K`` with ``C`` the maximum count of the training images.

    Raises:
        ValueError: when ``num_classes < 1``, no counts are given, or the maximum count is not positive.
    """
    k = int(num_classes)
    if k < 1:
        raise ValueError(f"class_threshold: num_classes must be >= 1 (0 disables the classification task), got {k}")
    c = np.asarray(train_counts, dtype=np.float64).reshape(-1)
    if c.size == 0 or not np.all(np.isfinite(c)):
        raise ValueError("class_threshold: need at least one finite training count")
    cmax = float(c.max())
    if cmax <= 0:
        raise ValueError(f"class_threshold: the maximum training count is {cmax}; need a positive one")
    return cmax / k


def count_classes(counts: Sequence[float] | np.ndarray | float, thr: float, num_classes: int) -> np.ndarray:
    """Count class of each count: ``min(floor(count / thr), K - 1)`` as int64 (a scalar gives a 0-d array).

    Raises:
        ValueError: on ``thr <= 0``, ``num_classes < 1`` or a negative count.
    """
    if not float(thr) > 0:
        raise ValueError(f"count_classes: thr must be > 0, got {thr}")
    k = int(num_classes)
    if k < 1:
        raise ValueError(f"count_classes: num_classes must be >= 1, got {k}")
    c = np.asarray(counts, dtype=np.float64)
    if np.any(c < 0):
        raise ValueError("count_classes: counts must be >= 0")
    return np.minimum(np.floor(c / float(thr)), k - 1).astype(np.int64)


# ----------------------------------------------------------------------------------------------- criterion
class SSRHEFLoss(WeightedLoss):
    """Eq. 5 as a :class:`WeightedLoss`.

    Args:
        use_hef: the ``hef`` term (Eq. 4); ``False``: plain pixel L2 (MSE) under the name ``l2``.
        use_seg: the ``seg`` term (Dice over the model's ``"seg"`` logits, Eq. 2).
        num_classes: ``K``; 0 drops the ``cls`` term.
        hef_form, gamma, hef_detach: see :func:`hef_loss`.
        density_scale: ground-truth densities are multiplied by it (the model predicts scaled densities).
        output_stride: the prediction's stride; the full-resolution ground truth is sum-pooled to it.
        w_density, w_seg, w_cls: the weights (1, ``lambda_1 = 1e-2``, ``lambda_2 = 1e-3``).

    ``outputs``: ``{"density": (B, 1, h, w), "seg": [three (B, 1, h_m, w_m) logits] (with use_seg),
    "cls": (B, K) logits (with K > 0)}``. ``targets``: ``{"density": (B, 1, H, W)`` full resolution, unscaled,
    ``"seg2", "seg4", "seg8"``: binary labels at 1/2, 1/4, 1/8, ``"cls"``: ``(B,)`` int64 classes``}``.
    """

    SEG_KEYS = ("seg2", "seg4", "seg8")

    def __init__(self, *, use_hef: bool = True, use_seg: bool = True, num_classes: int = 15, hef_form: str = "text",
                 gamma: float = 2.0, hef_detach: bool = True, density_scale: float = 1.0, output_stride: int = 8,
                 w_density: float = 1.0, w_seg: float = 1e-2, w_cls: float = 1e-3) -> None:
        if hef_form not in HEF_FORMS:
            raise ValueError(f"SSRHEFLoss: hef_form must be one of {HEF_FORMS}, got {hef_form!r}")
        if not float(density_scale) > 0:
            raise ValueError(f"SSRHEFLoss: density_scale must be > 0, got {density_scale}")
        if int(num_classes) < 0:
            raise ValueError(f"SSRHEFLoss: num_classes must be >= 0, got {num_classes}")
        self.density_term = "hef" if use_hef else "l2"
        weights = {self.density_term: float(w_density)}
        if use_seg:
            weights["seg"] = float(w_seg)
        if int(num_classes) > 0:
            weights["cls"] = float(w_cls)
        super().__init__(weights)
        self.use_hef, self.use_seg, self.num_classes = bool(use_hef), bool(use_seg), int(num_classes)
        self.hef_form, self.gamma, self.hef_detach = hef_form, float(gamma), bool(hef_detach)
        self.density_scale, self.output_stride = float(density_scale), int(output_stride)

    def density_target(self, outputs: Mapping[str, Any], targets: Mapping[str, Any]) -> torch.Tensor:
        """The ground truth in loss units on the prediction's grid (sum-pooled, times ``density_scale``)."""
        pred = outputs["density"]
        gt = targets["density"].to(pred.dtype)
        return sum_pool_to(gt, self.output_stride, tuple(pred.shape[-2:])) * self.density_scale

    def compute_terms(self, outputs: Mapping[str, Any], targets: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        pred = outputs["density"]
        gt = self.density_target(outputs, targets)
        if self.use_hef:
            terms = {"hef": hef_loss(pred, gt, self.hef_form, self.gamma, self.hef_detach)}
        else:
            terms = {"l2": F.mse_loss(pred, gt)}
        if self.use_seg:
            segs = outputs.get("seg")
            if segs is None or len(segs) != len(self.SEG_KEYS):
                raise ValueError("SSRHEFLoss: use_seg needs the model's three 'seg' logits maps")
            total = pred.new_zeros(())
            for logit, key in zip(segs, self.SEG_KEYS):
                lab = _fit(targets[key], tuple(logit.shape[-2:]), key).to(logit.dtype)
                total = total + dice_loss(torch.sigmoid(logit), lab)
            terms["seg"] = total
        if self.num_classes > 0:
            logits = outputs.get("cls")
            if logits is None:
                raise ValueError("SSRHEFLoss: num_classes > 0 needs the model's 'cls' logits")
            terms["cls"] = F.cross_entropy(logits.float(), targets["cls"].reshape(-1).long())
        return terms
