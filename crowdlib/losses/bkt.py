"""Losses of the regression-detection bi-knowledge transfer (Liu et al., ACM MM 2020).

- :func:`dms_ssim`: the dilated multi-scale structural similarity of DSSINet (Liu et al., ICCV 2019, the paper's
  [18]), which both the regressor R and the Reg-to-Det transformer Phi use (Eq. 7: "its parameter setting is the
  same to [18]"). Written from its definition, not from code. With ``X_0 = X`` and a ``5 x 5`` Gaussian ``w``
  (sigma 1) dilated by ``r_i`` (``1, 2, 3, 6, 9``), scale ``i`` has the local statistics

      mu_i = w_{r_i} * mu_{i-1},   var_i(z) = sum_z' w_{r_i}(z' - z) (mu_{i-1}(z') - mu_i(z))^2,
      cov_i(z) = sum_z' w_{r_i}(z' - z) (mu^X_{i-1}(z') - mu^X_i(z)) (mu^Y_{i-1}(z') - mu^Y_i(z)),   mu_0 = X

  (``hierarchy="nested"``: each scale takes the statistics of the previous scale's mean map around the window's
  centre, so the receptive field grows as the sum of the dilated supports; this is how we read DSSINet's Eqs. 9-11,
  with the deviations taken from the centre's mean as in SSIM). ``hierarchy="flat"`` computes every scale
  from the raw maps (``mu_i = w_{r_i} * X``, ``var_i = w_{r_i} * X^2 - mu_i^2``). Both give plain Gaussian SSIM with
  one scale of dilation 1 (the unit test compares that against an SSIM computed window by window). The index is
  ``prod_i l_i^{a_i} c_i^{a_i} s_i^{a_i}`` with MS-SSIM's weights ``a = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)``,
  each factor clamped at ``eps`` before its fractional power (a negative structure term has no real power), averaged
  over pixels; the loss is ``1 - index``. ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2`` with ``L`` = ``data_range`` (1).
- :func:`focal_mse` (Eqs. 4-6), :func:`focal_ce` and :func:`plain_mse` (Eq. 3): the Reg-to-Det losses of Table 4.
  The paper writes the squared error on ``Phi(M^R)`` and the focal factor with ``sigmoid(Phi(M^R))`` (Eq. 5), which
  only agree with "easy: a very large value where M^D = 1" if ``Phi`` is the logit ``z`` and the regressed value is
  its probability; ``form="prob"`` (default) uses ``(M^D - sigmoid(z))^2``, ``form="literal"`` uses ``(M^D - z)^2``
  with the factor still from ``sigmoid(z)``.
- :class:`DensityLoss` (R on the source and in the cycles: MSE, optionally + DMS-SSIM) and :class:`PhiLoss`
  (Eq. 7 and its Table 4 alternatives), both :class:`~crowdlib.losses.base.WeightedLoss`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from crowdlib.losses.base import WeightedLoss

__all__ = ["MS_SSIM_WEIGHTS", "DSSINET_DILATIONS", "gaussian_window", "dms_ssim", "dms_ssim_loss", "focal_mse",
           "focal_ce", "plain_mse", "DensityLoss", "PhiLoss", "PHI_LOSSES"]

#: MS-SSIM's scale weights (Wang et al. 2003), which DSSINet keeps.
MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
#: DSSINet's dilation rates of the five scales.
DSSINET_DILATIONS: tuple[int, ...] = (1, 2, 3, 6, 9)
#: Reg-to-Det objectives: Eq. 7 and the Table 4 alternatives.
PHI_LOSSES: tuple[str, ...] = ("focal_mse+dms_ssim", "focal_mse", "mse", "focal_ce")


def gaussian_window(size: int = 5, sigma: float = 1.0) -> torch.Tensor:
    """A normalised ``size x size`` Gaussian (float64 ``(size, size)``, sums to 1)."""
    if size < 1 or size % 2 == 0:
        raise ValueError(f"gaussian_window: size must be a positive odd integer, got {size}")
    if not sigma > 0:
        raise ValueError(f"gaussian_window: sigma must be > 0, got {sigma}")
    t = torch.arange(size, dtype=torch.float64) - size // 2
    g = torch.exp(-t * t / (2.0 * float(sigma) ** 2))
    w = g[:, None] * g[None, :]
    return w / w.sum()


def _filter(x: torch.Tensor, w: torch.Tensor, dilation: int) -> torch.Tensor:
    """Depthwise 'same' filtering with a dilated window, replicate padding at the borders."""
    k = w.shape[-1]
    pad = dilation * (k // 2)
    c = x.shape[1]
    xp = F.pad(x, (pad, pad, pad, pad), mode="replicate")
    return F.conv2d(xp, w.to(x.dtype).expand(c, 1, k, k), dilation=dilation, groups=c)


def dms_ssim(x: torch.Tensor, y: torch.Tensor, *, dilations: Sequence[int] = DSSINET_DILATIONS,
             weights: Sequence[float] | None = None, window: int = 5, sigma: float = 1.0, data_range: float = 1.0,
             hierarchy: str = "nested", eps: float = 1e-6, reduce: bool = True) -> torch.Tensor:
    """The DMS-SSIM index of maps ``x`` and ``y`` ``(B, C, H, W)`` (module docstring).

    Args:
        dilations: dilation rate per scale (DSSINet: 1, 2, 3, 6, 9).
        weights: exponent per scale (default :data:`MS_SSIM_WEIGHTS`, the first ``len(dilations)`` of them,
            renormalised to sum 1 when fewer scales are used).
        window, sigma: the Gaussian window (5, 1.0).
        data_range: ``L`` of ``C1 = (0.01 L)^2``, ``C2 = (0.03 L)^2``.
        hierarchy: ``"nested"`` or ``"flat"``.
        reduce: mean over everything (a scalar); False returns the per-pixel index ``(B, C, H, W)``.

    Raises:
        ValueError: shapes differ, no scale, weights of the wrong length, or an unknown hierarchy.
    """
    if x.shape != y.shape or x.dim() != 4:
        raise ValueError(f"dms_ssim: x and y must be (B, C, H, W) of one shape, got {tuple(x.shape)}, {tuple(y.shape)}")
    dil = [int(d) for d in dilations]
    if not dil or min(dil) < 1:
        raise ValueError(f"dms_ssim: dilations must be a non-empty list of positive integers, got {dilations}")
    if weights is None:
        if len(dil) > len(MS_SSIM_WEIGHTS):
            raise ValueError(f"dms_ssim: give weights for {len(dil)} scales")
        a = torch.tensor(MS_SSIM_WEIGHTS[: len(dil)], dtype=torch.float64)
        a = a / a.sum()
    else:
        a = torch.as_tensor(list(weights), dtype=torch.float64)
        if len(a) != len(dil):
            raise ValueError(f"dms_ssim: {len(a)} weights for {len(dil)} scales")
    if hierarchy not in ("nested", "flat"):
        raise ValueError(f"dms_ssim: hierarchy must be 'nested' or 'flat', got {hierarchy!r}")
    w = gaussian_window(window, sigma)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    x, y = x.float(), y.float()
    mx, my = x, y
    index = torch.ones_like(x)
    for d, ai in zip(dil, a.tolist()):
        if hierarchy == "nested":
            nx, ny = _filter(mx, w, d), _filter(my, w, d)
            vx = _filter(mx * mx, w, d) - nx * nx
            vy = _filter(my * my, w, d) - ny * ny
            cxy = _filter(mx * my, w, d) - nx * ny
            mx, my = nx, ny
        else:
            mx, my = _filter(x, w, d), _filter(y, w, d)
            vx = _filter(x * x, w, d) - mx * mx
            vy = _filter(y * y, w, d) - my * my
            cxy = _filter(x * y, w, d) - mx * my
        vx, vy = vx.clamp(min=0), vy.clamp(min=0)
        sx, sy = torch.sqrt(vx + 1e-12), torch.sqrt(vy + 1e-12)
        lum = (2 * mx * my + c1) / (mx * mx + my * my + c1)
        con = (2 * sx * sy + c2) / (vx + vy + c2)
        struct = (cxy + c2 / 2) / (sx * sy + c2 / 2)
        for f in (lum, con, struct):
            index = index * f.clamp(min=eps) ** ai
    return index.mean() if reduce else index


def dms_ssim_loss(pred: torch.Tensor, target: torch.Tensor, **kwargs: Any) -> torch.Tensor:
    """``1 - dms_ssim(pred, target)`` (keywords of :func:`dms_ssim`)."""
    return 1.0 - dms_ssim(pred, target, **kwargs)


def _alpha(target: torch.Tensor, alpha_pos: float, alpha_neg: float) -> torch.Tensor:
    return torch.where(target >= 0.5, torch.full_like(target, alpha_pos), torch.full_like(target, alpha_neg))


def focal_mse(logits: torch.Tensor, target: torch.Tensor, *, alpha_pos: float = 1.0, alpha_neg: float = 0.1,
              gamma: float = 2.0, form: str = "prob") -> torch.Tensor:
    """Eq. 4: ``1/N sum_i alpha_i (1 - p_i)^gamma (M^D_i - Phi_i)^2`` with ``p_i = sigmoid(z_i)`` at heads
    (``M^D_i = 1``) and ``1 - sigmoid(z_i)`` elsewhere (Eq. 5) and ``alpha_i`` 1 at heads, 0.1 elsewhere (Eq. 6).
    ``Phi_i`` is ``sigmoid(z_i)`` (``form="prob"``) or ``z_i`` (``"literal"``; module docstring). The modulating
    factor is part of the differentiated expression, as in the focal loss."""
    if form not in ("prob", "literal"):
        raise ValueError(f"focal_mse: form must be 'prob' or 'literal', got {form!r}")
    z, t = logits.float(), target.float()
    s = torch.sigmoid(z)
    pos = t >= 0.5
    p = torch.where(pos, s, 1.0 - s)
    phi = s if form == "prob" else z
    return (_alpha(t, alpha_pos, alpha_neg) * (1.0 - p) ** gamma * (t - phi) ** 2).mean()


def focal_ce(logits: torch.Tensor, target: torch.Tensor, *, alpha_pos: float = 1.0, alpha_neg: float = 0.1,
             gamma: float = 2.0) -> torch.Tensor:
    """Table 4's focal cross-entropy: ``1/N sum_i -alpha_i (1 - p_i)^gamma log p_i`` with Eqs. 5-6's ``p`` and
    ``alpha`` (Lin et al.'s focal loss), from logits with ``logsigmoid``."""
    z, t = logits.float(), target.float()
    pos = t >= 0.5
    s = torch.sigmoid(z)
    p = torch.where(pos, s, 1.0 - s)
    log_p = torch.where(pos, F.logsigmoid(z), F.logsigmoid(-z))
    return (-_alpha(t, alpha_pos, alpha_neg) * (1.0 - p) ** gamma * log_p).mean()


def plain_mse(logits: torch.Tensor, target: torch.Tensor, *, form: str = "prob") -> torch.Tensor:
    """Eq. 3: ``1/N sum_i (M^D_i - Phi_i)^2`` with ``Phi`` as in :func:`focal_mse`."""
    if form not in ("prob", "literal"):
        raise ValueError(f"plain_mse: form must be 'prob' or 'literal', got {form!r}")
    z = logits.float()
    phi = torch.sigmoid(z) if form == "prob" else z
    return ((target.float() - phi) ** 2).mean()


class DensityLoss(WeightedLoss):
    """R's loss: ``w_mse * MSE + w_ssim * (1 - DMS-SSIM)`` on ``outputs["density"]`` vs ``targets["density"]``
    (both at the network's output stride). ``w_ssim = 0`` drops the term (and its name)."""

    def __init__(self, w_mse: float = 1.0, w_ssim: float = 0.0, ssim: Mapping[str, Any] | None = None) -> None:
        weights = {"mse": float(w_mse)}
        if float(w_ssim) > 0:
            weights["dms_ssim"] = float(w_ssim)
        super().__init__(weights)
        self.ssim = dict(ssim or {})

    def compute_terms(self, outputs: Any, targets: Any) -> dict[str, torch.Tensor]:
        pred, tgt = outputs["density"].float(), targets["density"].float()
        if pred.shape != tgt.shape:
            raise ValueError(f"DensityLoss: prediction {tuple(pred.shape)} and target {tuple(tgt.shape)} differ")
        terms = {"mse": ((pred - tgt) ** 2).mean()}
        if "dms_ssim" in self.weight_dict:
            terms["dms_ssim"] = dms_ssim_loss(pred, tgt, **self.ssim)
        return terms


class PhiLoss(WeightedLoss):
    """Reg-to-Det objective on ``outputs["logits"]`` vs the dot map ``targets["dots"]``: ``kind`` one of
    :data:`PHI_LOSSES` (``"focal_mse+dms_ssim"`` is Eq. 7, ``L_Phi``; DMS-SSIM compares ``sigmoid(z)`` (or ``z``
    with ``form="literal"``) to the dot map)."""

    def __init__(self, kind: str = "focal_mse+dms_ssim", *, alpha_pos: float = 1.0, alpha_neg: float = 0.1,
                 gamma: float = 2.0, form: str = "prob", w_ssim: float = 1.0,
                 ssim: Mapping[str, Any] | None = None) -> None:
        if kind not in PHI_LOSSES:
            raise ValueError(f"PhiLoss: kind must be one of {PHI_LOSSES}, got {kind!r}")
        names = {"focal_mse+dms_ssim": {"focal_mse": 1.0, "dms_ssim": float(w_ssim)}, "focal_mse": {"focal_mse": 1.0},
                 "mse": {"mse": 1.0}, "focal_ce": {"focal_ce": 1.0}}[kind]
        super().__init__(names)
        self.kind, self.form = kind, form
        self.focal = {"alpha_pos": float(alpha_pos), "alpha_neg": float(alpha_neg), "gamma": float(gamma)}
        self.ssim = dict(ssim or {})

    def compute_terms(self, outputs: Any, targets: Any) -> dict[str, torch.Tensor]:
        z, t = outputs["logits"], targets["dots"]
        if z.shape != t.shape:
            raise ValueError(f"PhiLoss: logits {tuple(z.shape)} and dot map {tuple(t.shape)} differ")
        terms: dict[str, torch.Tensor] = {}
        if "focal_mse" in self.weight_dict:
            terms["focal_mse"] = focal_mse(z, t, form=self.form, **self.focal)
        if "mse" in self.weight_dict:
            terms["mse"] = plain_mse(z, t, form=self.form)
        if "focal_ce" in self.weight_dict:
            terms["focal_ce"] = focal_ce(z, t, **self.focal)
        if "dms_ssim" in self.weight_dict:
            phi = torch.sigmoid(z.float()) if self.form == "prob" else z.float()
            terms["dms_ssim"] = dms_ssim_loss(phi, t.float(), **self.ssim)
        return terms
