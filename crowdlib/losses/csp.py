"""Crowd-SDNet / CSP losses: focal centre loss, (crowdedness-aware) size loss and offset loss.

Conventions (all maps are ``(B, 1, h, w)`` at the detector's output resolution unless stated):

- ``outputs["center_logits"]``: centre heatmap logits; ``outputs["log_size"]``: predicted log box size (in input
  pixels); ``outputs["offset"]``: ``(B, 2, h, w)`` sub-stride offsets (only with an offset head).
- ``targets["center"]``: Gaussian heatmap ``Q`` in [0, 1] with 1 at object centres; ``targets["center_pos"]``: 1 at
  positive (centre) pixels; ``targets["log_size"]``: log pseudo size, valid where ``targets["size_mask"]`` is 1 (a
  ``window x window`` patch around each centre); ``targets["crowdedness"]``: the local-region count ``|R_j|`` of
  the object owning each masked pixel; ``targets["center_offset"]`` ``(B, 2, h, w)`` and ``targets["offset_mask"]`` (not ``"offset"``: a
  dataset sample keeps its crop origin under that key).

Paper (Eq. 1, 2, 5-7): ``L = lambda * L_c + L_size + L_o`` with ``lambda = 0.1``; ``L_c`` the focal loss with
``gamma = 2``, ``delta = 4`` and ``A = 1`` (stride-4 CSP) or ``1/16`` (full-resolution decoder), normalised by the
number of positives; ``L_size-alpha = 1/M sum_j alpha_j SmoothL1(s_hat_j - s_j)`` with ``alpha_j = |R_j|^eta``
capped. The authors' code instead uses the relative error ``|y - y_hat| / y`` of the log size and casts alpha to
an integer; both are parameters here (``size_error``, ``alpha_integer``). Normalisation is by the number of
supervised (mask) pixels (``size_norm="objects"``; with ``window=1`` that is the paper's ``1/M``) or by the sum of
alpha (``size_norm="alpha"``).
"""
from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

from crowdlib.distributed import shared_denominator
from crowdlib.losses.base import WeightedLoss

__all__ = ["focal_center_loss", "size_loss", "offset_loss", "crowdedness_factor", "CSPLoss"]


def focal_center_loss(logits: torch.Tensor, heatmap: torch.Tensor, pos: torch.Tensor, *, gamma: float = 2.0,
                      delta: float = 4.0, neg_scale: float = 1.0) -> torch.Tensor:
    """Focal cross-entropy of Eq. (1), summed over pixels and divided by the number of positives (at least 1).

    Positives (``pos == 1``): ``-(1 - p)^gamma log p``; negatives: ``-A (1 - Q)^delta p^gamma log(1 - p)``.
    Computed from logits with ``logsigmoid`` for stability.
    """
    logits = logits.float()
    heatmap = heatmap.float()
    pos = pos.float()
    p = torch.sigmoid(logits)
    log_p = F.logsigmoid(logits)
    log_1mp = F.logsigmoid(-logits)
    pos_term = -((1.0 - p) ** gamma) * log_p * pos
    neg_term = -neg_scale * ((1.0 - heatmap) ** delta) * (p ** gamma) * log_1mp * (1.0 - pos)
    n_pos = shared_denominator(pos.sum())  # the count over all ranks in distributed training
    return (pos_term.sum() + neg_term.sum()) / n_pos


def crowdedness_factor(crowdedness: torch.Tensor, *, eta: float = 1.0, cap: float | None = 50.0,
                       integer: bool = True) -> torch.Tensor:
    """``alpha = |R|^eta`` (Eq. 7), floored to an integer (authors' code) when ``integer``, capped at ``cap``.

    The result is at least 1 wherever ``|R| >= 1`` (a point is always inside its own region).
    """
    alpha = crowdedness.float().clamp(min=0.0) ** eta
    if integer:
        alpha = torch.floor(alpha)
    if cap is not None:
        alpha = alpha.clamp(max=float(cap))
    return alpha


def _smooth_l1(x: torch.Tensor, beta: float) -> torch.Tensor:
    ax = x.abs()
    return torch.where(ax < beta, 0.5 * ax * ax / beta, ax - 0.5 * beta)


def size_loss(pred_log_size: torch.Tensor, target_log_size: torch.Tensor, mask: torch.Tensor,
              alpha: torch.Tensor | None = None, *, error: Literal["absolute", "relative"] = "absolute",
              norm: Literal["objects", "alpha"] = "objects", beta: float = 1.0, eps: float = 0.1) -> torch.Tensor:
    """Weighted smooth-L1 on log sizes over masked pixels.

    ``error="absolute"``: ``SmoothL1(y_hat - y)`` (paper Eq. 5/6); ``"relative"``: ``SmoothL1(|y - y_hat| / y)``
    (authors' code; ``y`` clamped to at least ``eps``). ``alpha=None`` means plain smooth-L1 (Eq. 5). ``norm``:
    divide by the number of mask pixels (``"objects"``) or by the sum of ``alpha`` over them (``"alpha"``).
    """
    if error not in ("absolute", "relative"):
        raise ValueError(f"size_loss: error must be 'absolute' or 'relative', got {error!r}")
    if norm not in ("objects", "alpha"):
        raise ValueError(f"size_loss: norm must be 'objects' or 'alpha', got {norm!r}")
    pred = pred_log_size.float()
    y = target_log_size.float()
    mask = mask.float()
    diff = pred - y
    if error == "relative":
        diff = diff.abs() / y.abs().clamp(min=eps)
    w = mask if alpha is None else mask * alpha.float()
    total = (w * _smooth_l1(diff, beta)).sum()
    denom = mask.sum() if (norm == "objects" or alpha is None) else w.sum()
    return total / shared_denominator(denom)


def offset_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """Smooth-L1 between predicted and true sub-stride offsets at the masked (centre) pixels, mean per component."""
    mask = mask.float()
    if mask.dim() == pred.dim() and mask.shape[1] == 1:
        mask = mask.expand_as(pred)
    total = (mask * _smooth_l1(pred.float() - target.float(), beta)).sum()
    return total / shared_denominator(mask.sum())


class CSPLoss(WeightedLoss):
    """``lambda * L_c + w_size * L_size + w_off * L_o`` with named terms ``center``, ``size`` (and ``offset``).

    Args:
        center_weight: lambda (paper 0.1).
        size_weight: weight of the size term (paper 1).
        offset_weight: weight of the offset term (paper 1); the term exists only when ``use_offset``.
        use_offset: whether the model has an offset head (stride-4 CSP decoder).
        gamma, delta: focal-loss exponents (paper 2 and 4).
        neg_scale: ``A`` of Eq. (1): 1 for the stride-4 CSP, 1/16 for the full-resolution decoder.
        crowd_aware: use ``alpha = |R|^eta`` weights (Eq. 6); ``False`` gives plain smooth-L1 (Eq. 5).
        eta: exponent of Eq. (7) (paper 1).
        alpha_cap: maximum alpha (paper 50 on ShanghaiTech, 200 NWPU, none on WiderFace); ``None`` for no cap.
        alpha_integer: floor alpha to an integer (authors' code).
        size_error: ``"absolute"`` (paper) or ``"relative"`` (authors' code).
        size_norm: ``"objects"`` (mean over supervised pixels) or ``"alpha"`` (divide by the sum of alpha).
        smooth_l1_beta: transition point of the smooth-L1.
    """

    def __init__(self, center_weight: float = 0.1, size_weight: float = 1.0, offset_weight: float = 1.0, *,
                 use_offset: bool = False, gamma: float = 2.0, delta: float = 4.0, neg_scale: float = 1.0,
                 crowd_aware: bool = True, eta: float = 1.0, alpha_cap: float | None = 50.0,
                 alpha_integer: bool = True, size_error: Literal["absolute", "relative"] = "absolute",
                 size_norm: Literal["objects", "alpha"] = "objects", smooth_l1_beta: float = 1.0) -> None:
        weights = {"center": center_weight, "size": size_weight}
        if use_offset:
            weights["offset"] = offset_weight
        super().__init__(weights)
        if size_error not in ("absolute", "relative"):
            raise ValueError(f"CSPLoss: size_error must be 'absolute' or 'relative', got {size_error!r}")
        if size_norm not in ("objects", "alpha"):
            raise ValueError(f"CSPLoss: size_norm must be 'objects' or 'alpha', got {size_norm!r}")
        if not (neg_scale > 0 and math.isfinite(neg_scale)):
            raise ValueError(f"CSPLoss: neg_scale (A) must be positive, got {neg_scale}")
        self.use_offset = use_offset
        self.gamma, self.delta, self.neg_scale = float(gamma), float(delta), float(neg_scale)
        self.crowd_aware = crowd_aware
        self.eta = float(eta)
        self.alpha_cap = None if alpha_cap is None else float(alpha_cap)
        self.alpha_integer = alpha_integer
        self.size_error = size_error
        self.size_norm = size_norm
        self.smooth_l1_beta = float(smooth_l1_beta)

    def compute_terms(self, outputs: dict[str, torch.Tensor],
                      targets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        for key in ("center", "center_pos", "log_size", "size_mask"):
            if key not in targets:
                raise KeyError(f"CSPLoss: targets lack {key!r} (have {sorted(targets)})")
        terms = {
            "center": focal_center_loss(outputs["center_logits"], targets["center"], targets["center_pos"],
                                        gamma=self.gamma, delta=self.delta, neg_scale=self.neg_scale),
        }
        alpha = None
        if self.crowd_aware:
            if "crowdedness" not in targets:
                raise KeyError("CSPLoss(crowd_aware=True): targets lack 'crowdedness'")
            alpha = crowdedness_factor(targets["crowdedness"], eta=self.eta, cap=self.alpha_cap,
                                       integer=self.alpha_integer)
        if "size_scale" in targets:  # per-head multiplier (0.1 for a one-head image), crowd-aware or not
            scale = targets["size_scale"].float()
            alpha = scale if alpha is None else alpha * scale
        terms["size"] = size_loss(outputs["log_size"], targets["log_size"], targets["size_mask"], alpha,
                                  error=self.size_error, norm=self.size_norm, beta=self.smooth_l1_beta)
        if self.use_offset:
            if "offset" not in outputs:
                raise KeyError("CSPLoss(use_offset=True): the model outputs no 'offset'")
            if "center_offset" not in targets:
                raise KeyError("CSPLoss(use_offset=True): targets lack 'center_offset'")
            terms["offset"] = offset_loss(outputs["offset"], targets["center_offset"], targets["offset_mask"],
                                          self.smooth_l1_beta)
        return terms
