"""IIM's binarization layer (Sec. 3.1), used by the IIM loss and re-exported by :mod:`crowdlib.models.iim`.

Forward ``1`` where ``confidence >= threshold`` else ``0``; backward sends ``-grad`` to the threshold (reduced to the
threshold's shape, so an image-level ``(B, 1, 1, 1)`` threshold receives the sum over its pixels) and ``k * grad`` to
the confidence map (``k = 0.2`` in the authors' code; ``k = 0`` stops the L1 gradient at the threshold encoder,
Table 3's "L1 loss on the threshold encoder only").
"""
from __future__ import annotations

from typing import Any

import torch

__all__ = ["Binarize", "binarize"]


def _reduce_to_shape(grad: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """Sum ``grad`` over the dimensions that were broadcast to reach ``grad.shape`` from ``shape``."""
    if grad.shape == shape:
        return grad
    lead = grad.dim() - len(shape)
    if lead > 0:
        grad = grad.sum(dim=tuple(range(lead)))
    dims = tuple(i for i, s in enumerate(shape) if s == 1 and grad.shape[i] != 1)
    if dims:
        grad = grad.sum(dim=dims, keepdim=True)
    return grad.reshape(shape)


class Binarize(torch.autograd.Function):
    """Binarization layer: ``O = [I >= T]`` forward; ``dO/dT = -1``, ``dO/dI = k`` backward.

    ``threshold`` may have any shape that broadcasts against ``confidence`` (a per-image scalar for IBM,
    a per-pixel map for PBM); its gradient is summed over the broadcast dimensions, exactly as autograd
    would do for the linear relaxation ``O ~ k * I - T`` of Eq. 3 / Eq. 6.
    """

    @staticmethod
    def forward(ctx: Any, confidence: torch.Tensor, threshold: torch.Tensor, k: float) -> torch.Tensor:  # type: ignore[override]
        ctx.k = float(k)
        ctx.thr_shape = threshold.shape
        ctx.thr_dtype = threshold.dtype
        ctx.conf_dtype = confidence.dtype
        return (confidence >= threshold).to(confidence.dtype)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor):  # type: ignore[override]
        grad_conf = grad_thr = None
        if ctx.needs_input_grad[0]:
            grad_conf = (grad_out * ctx.k).to(ctx.conf_dtype)
        if ctx.needs_input_grad[1]:
            grad_thr = _reduce_to_shape(-grad_out, ctx.thr_shape).to(ctx.thr_dtype)
        return grad_conf, grad_thr, None


def binarize(confidence: torch.Tensor, threshold: torch.Tensor | float, k: float = 0.2) -> torch.Tensor:
    """Apply :class:`Binarize`; ``threshold`` may be a float (then no gradient flows to it).

    Raises:
        ValueError: when ``threshold`` does not broadcast against ``confidence`` or ``k`` is negative.
    """
    if k < 0:
        raise ValueError(f"binarize: k must be >= 0, got {k}")
    if not torch.is_tensor(threshold):
        threshold = torch.tensor(float(threshold), dtype=confidence.dtype, device=confidence.device)
    try:
        torch.broadcast_shapes(confidence.shape, threshold.shape)
    except RuntimeError as exc:
        raise ValueError(
            f"binarize: threshold shape {tuple(threshold.shape)} does not broadcast to confidence shape "
            f"{tuple(confidence.shape)}"
        ) from exc
    if len(threshold.shape) > confidence.dim():
        raise ValueError(f"binarize: threshold has more dims ({threshold.dim()}) than confidence ({confidence.dim()})")
    return Binarize.apply(confidence, threshold, k)
