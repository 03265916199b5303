"""SSR-HEF (Chen et al., "Crowd Counting with Multi-Scale Semantic Refining and Hard Example Focusing").

No code was published and Figs. 2, 4 and 5 (the layer tables) are images; the text gives: four parallel dilated
convolutions at the input, ReLU after every convolution, three 2x2 / stride-2 max-pools, segmentation maps at
three depths whose sigmoid multiplies that depth's features, their fusion (MSRF), a CBAM-style feature enhancement
layer (FEL, Fig. 5: conv + ReLU, channel-wise max and mean, concatenation, conv, sigmoid, multiply), the density
map, a classification branch on MSRF (Table I: spatial pyramid pooling to 16x16, FC-64, FC-K) and a 2M-parameter
model (Table IX). Everything else is inferred and a parameter of :func:`build_ssr_hef`:

- input block: four ``Con3-16-d`` with ``d = 1, 2, 3, 4`` (``stem_channels``, ``dilations``), concatenated (64
  channels at full resolution).
- stages after each max-pool (1/2, 1/4, 1/8): two ``Con3`` each of 64, 128, 256 filters (``stage_channels``,
  ``stage_convs``); their outputs ``F_1, F_2, F_3`` carry the segmentation heads (one ``Con1-1`` each,
  ``seg_kernel``), ``F_m * sigmoid(S_m)``.
- MSRF: the refined maps resized to 1/8 (``fuse_stride``: 8, 4 or 2; area averaging down, bilinear up) and
  concatenated (``fusion="concat"``, 448 channels) or projected by ``Con1`` to the deepest width and summed
  (``"sum"``). Without SSR (``use_ssr=False``, Table VII) the same fusion runs on the unrefined maps.
- FEL: ``Con3-128-1`` + ReLU, channel max and mean, concat, ``Con7-1-1`` (CBAM's spatial attention kernel, which
  the paper cites for this layer; ``fel_kernel``), sigmoid, multiply. ``use_fel=False`` feeds MSRF to the head.
- density head: ``Con3-64-1`` + ReLU, ``Con1-1-1`` (linear, so a density may go negative, where the text form of
  the HEF factor tends to 1; ``density_relu=True`` clamps it). Output stride = ``fuse_stride``.
- classification: Table I feeds MSRF to the pooling, but 448 x 16 x 16 inputs to FC-64 are 7.3M weights, 3.6x
  the paper's whole model; so a ``Con1-16`` (``cls_channels``; 0 = Table I literally) reduces MSRF first, then
  adaptive max pooling to 16x16 (``cls_pool``; a list such as ``[1, 2, 4]`` pools a pyramid of levels), FC-64 +
  ReLU (``cls_hidden``), FC-K (``num_classes``; 0 removes the branch, Table VIII's "0").

At these settings the model holds 2.04M parameters (Table IX: "2M"). ``width`` multiplies every convolution's
filter count (not the single-channel heads, FC-64 or K): ``width=0.25`` is a 0.18M CPU variant.

``forward(x)`` takes ``(B, 3, H, W)`` with ``H, W`` multiples of 8 (crop or pad, see
:func:`crowdlib.methods.ssrhef.predict_density`) and returns ``{"density": (B, 1, H/s, W/s), "seg": [logits at
1/2, 1/4, 1/8] (with SSR), "cls": (B, K) logits (with K > 0), "msrf": the fused features}``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from crowdlib.losses.ssrhef import SSRHEFLoss
from crowdlib.models.registry import register_model

__all__ = ["MODEL_DEFAULTS", "FeatureEnhancement", "SSRHEFNet", "build_ssr_hef", "count_parameters"]

#: The paper-scale network settings (what each means: the module docstring).
MODEL_DEFAULTS: dict[str, Any] = {
    "width": 1.0, "stem_channels": 16, "dilations": [1, 2, 3, 4], "stage_channels": [64, 128, 256],
    "stage_convs": [2, 2, 2], "seg_kernel": 1, "fusion": "concat", "fuse_stride": 8, "fel_channels": 128,
    "fel_kernel": 7, "head_channels": 64, "density_relu": False, "cls_channels": 16, "cls_pool": 16,
    "cls_hidden": 64, "num_classes": 15, "use_ssr": True, "use_fel": True,
}


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _conv(cin: int, cout: int, k: int = 3, d: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, padding=d * (k // 2), dilation=d)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _resize(x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == tuple(hw):
        return x
    if x.shape[-2] >= hw[0] and x.shape[-1] >= hw[1]:
        return F.adaptive_avg_pool2d(x, hw)
    return F.interpolate(x, size=hw, mode="bilinear", align_corners=False)


class FeatureEnhancement(nn.Module):
    """Fig. 5: ``y = relu(conv(x))``; ``a = sigmoid(conv_k([max_c(y), mean_c(y)]))``; returns ``y * a``."""

    def __init__(self, cin: int, cout: int, kernel: int = 7) -> None:
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"FeatureEnhancement: kernel must be a positive odd size, got {kernel}")
        self.encode = _conv(cin, cout, 3)
        self.attend = nn.Conv2d(2, 1, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.encode(x)
        pooled = torch.cat([y.amax(1, keepdim=True), y.mean(1, keepdim=True)], 1)
        return y * torch.sigmoid(self.attend(pooled))


class SSRHEFNet(nn.Module):
    """The SSR-HEF network (arguments: :data:`MODEL_DEFAULTS` and the module docstring)."""

    def __init__(self, *, width: float = 1.0, stem_channels: int = 16, dilations: Sequence[int] = (1, 2, 3, 4),
                 stage_channels: Sequence[int] = (64, 128, 256), stage_convs: Sequence[int] = (2, 2, 2),
                 seg_kernel: int = 1, fusion: str = "concat", fuse_stride: int = 8, fel_channels: int = 128,
                 fel_kernel: int = 7, head_channels: int = 64, density_relu: bool = False, cls_channels: int = 16,
                 cls_pool: int | Sequence[int] = 16, cls_hidden: int = 64, num_classes: int = 15,
                 use_ssr: bool = True, use_fel: bool = True) -> None:
        super().__init__()
        if not float(width) > 0:
            raise ValueError(f"SSRHEFNet: width must be > 0, got {width}")
        if len(stage_channels) != 3 or len(stage_convs) != 3:
            raise ValueError("SSRHEFNet: stage_channels and stage_convs need one entry per scale (1/2, 1/4, 1/8)")
        if any(int(n) < 1 for n in stage_convs):
            raise ValueError(f"SSRHEFNet: every stage needs >= 1 convolution, got {list(stage_convs)}")
        if not dilations or any(int(d) < 1 for d in dilations):
            raise ValueError(f"SSRHEFNet: dilations must be positive integers, got {list(dilations)}")
        if fusion not in ("concat", "sum"):
            raise ValueError(f"SSRHEFNet: fusion must be 'concat' or 'sum', got {fusion!r}")
        if int(fuse_stride) not in (2, 4, 8):
            raise ValueError(f"SSRHEFNet: fuse_stride must be 2, 4 or 8, got {fuse_stride}")
        if int(num_classes) < 0 or int(num_classes) == 1:
            raise ValueError(f"SSRHEFNet: num_classes must be 0 (no classification) or >= 2, got {num_classes}")

        def w(c: int) -> int:
            return max(1, int(round(int(c) * float(width))))

        self.use_ssr, self.use_fel, self.fusion = bool(use_ssr), bool(use_fel), fusion
        self.output_stride = int(fuse_stride)
        self.num_classes = int(num_classes)
        self.density_relu = bool(density_relu)
        self.density_scale = 1.0  # set by build_ssr_hef; predict_density divides by it
        c0 = w(stem_channels)
        self.stem = nn.ModuleList([_conv(3, c0, 3, int(d)) for d in dilations])
        cin = c0 * len(dilations)
        self.stages = nn.ModuleList()
        widths = [w(c) for c in stage_channels]
        for c, n in zip(widths, stage_convs):
            self.stages.append(nn.Sequential(nn.MaxPool2d(2, 2), *[_conv(cin if i == 0 else c, c) for i in range(int(n))]))
            cin = c
        if int(seg_kernel) < 1 or int(seg_kernel) % 2 == 0:
            raise ValueError(f"SSRHEFNet: seg_kernel must be a positive odd size, got {seg_kernel}")
        self.seg_heads = (nn.ModuleList([nn.Conv2d(c, 1, int(seg_kernel), padding=int(seg_kernel) // 2) for c in widths])
                          if self.use_ssr else None)
        if fusion == "sum":
            self.project = nn.ModuleList([nn.Conv2d(c, widths[-1], 1) if c != widths[-1] else nn.Identity()
                                          for c in widths])
            c_msrf = widths[-1]
        else:
            self.project = None
            c_msrf = sum(widths)
        self.msrf_channels = c_msrf
        if self.use_fel:
            self.fel = FeatureEnhancement(c_msrf, w(fel_channels), int(fel_kernel))
            c_head = w(fel_channels)
        else:
            self.fel = None
            c_head = c_msrf
        self.head = nn.Sequential(_conv(c_head, w(head_channels), 3), nn.Conv2d(w(head_channels), 1, 1))
        self.cls_levels = [int(cls_pool)] if isinstance(cls_pool, (int, float)) else [int(v) for v in cls_pool]
        if not self.cls_levels or min(self.cls_levels) < 1:
            raise ValueError(f"SSRHEFNet: cls_pool must be a positive size or a list of them, got {cls_pool}")
        if self.num_classes > 0:
            cc = w(cls_channels) if int(cls_channels) > 0 else c_msrf
            self.cls_reduce = _conv(c_msrf, cc, 1) if int(cls_channels) > 0 else nn.Identity()
            bins = sum(v * v for v in self.cls_levels)
            self.cls_fc = nn.Sequential(nn.Linear(cc * bins, int(cls_hidden)), nn.ReLU(inplace=True),
                                        nn.Linear(int(cls_hidden), self.num_classes))
        else:
            self.cls_reduce = None
            self.cls_fc = None

    def forward(self, x: torch.Tensor) -> dict[str, Any]:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"SSRHEFNet: input must be (B, 3, H, W), got {tuple(x.shape)}")
        if x.shape[-2] % 8 or x.shape[-1] % 8:
            raise ValueError(f"SSRHEFNet: H and W must be multiples of 8 (crop or pad), got {tuple(x.shape[-2:])}")
        h = torch.cat([b(x) for b in self.stem], 1)
        feats, segs = [], []
        for m, stage in enumerate(self.stages):
            h = stage(h)
            f = h
            if self.seg_heads is not None:
                s = self.seg_heads[m](f)
                segs.append(s)
                f = f * torch.sigmoid(s)
            feats.append(f)
        s = self.output_stride
        hw = (x.shape[-2] // s, x.shape[-1] // s)
        parts = [_resize(f, hw) for f in feats]
        if self.project is not None:
            msrf = sum(p(f) for p, f in zip(self.project, parts))
        else:
            msrf = torch.cat(parts, 1)
        y = self.fel(msrf) if self.fel is not None else msrf
        dens = self.head(y)
        if self.density_relu:
            dens = F.relu(dens)
        out: dict[str, Any] = {"density": dens, "msrf": msrf}
        if segs:
            out["seg"] = segs
        if self.cls_fc is not None:
            r = self.cls_reduce(msrf)
            pooled = torch.cat([F.adaptive_max_pool2d(r, v).flatten(1) for v in self.cls_levels], 1)
            out["cls"] = self.cls_fc(pooled)
        return out


def _net_kwargs(cfg: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in MODEL_DEFAULTS.items():
        val = cfg.get(k, v)
        out[k] = list(val) if isinstance(val, (list, tuple)) else val
    return out


@register_model("ssr_hef")
def build_ssr_hef(cfg: Mapping[str, Any]) -> tuple[nn.Module, nn.Module]:
    """Build ``(SSRHEFNet, SSRHEFLoss)`` from a config (keys of :data:`MODEL_DEFAULTS` plus the loss keys
    ``use_hef`` (True), ``hef_form`` ("text"), ``gamma`` (2), ``hef_detach`` (True), ``density_scale`` (1),
    ``w_density`` (1), ``w_seg`` (1e-2), ``w_cls`` (1e-3)); missing keys take the paper's values."""
    net = SSRHEFNet(**_net_kwargs(cfg))
    net.density_scale = float(cfg.get("density_scale", 1.0))
    crit = SSRHEFLoss(
        use_hef=bool(cfg.get("use_hef", True)), use_seg=net.use_ssr, num_classes=net.num_classes,
        hef_form=str(cfg.get("hef_form", "text")), gamma=float(cfg.get("gamma", 2.0)),
        hef_detach=bool(cfg.get("hef_detach", True)), density_scale=net.density_scale,
        output_stride=net.output_stride, w_density=float(cfg.get("w_density", 1.0)),
        w_seg=float(cfg.get("w_seg", 1e-2)), w_cls=float(cfg.get("w_cls", 1e-3)))
    return net, crit
