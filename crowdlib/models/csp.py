"""CSP-style anchor-free detector for Crowd-SDNet: a backbone, a decoder, and centre / log-size (/ offset) heads.

Two decoders:

- ``"fullres"`` (the paper's decoder for dense crowds, Sec. III-A1): 1x1 convs reduce C3, C4, C5 to ``width``
  channels, a top-down pathway adds each coarser map (nearest-upsampled) to the next finer one, a 3x3 conv-BN-ReLU
  smooths the fused P3, then "8x Up": a 2x nearest upsample followed by two (Deconv 4x4 s2, Conv 3x3, BN, ReLU)
  blocks. The output has the input's resolution when C3 has stride 8 (every backbone in
  :mod:`crowdlib.models.backbones`); no offset head is needed.
- ``"csp"`` (the original CSP at stride 4, used for sparse/face data): C3, C4, C5 reduced to ``width`` channels,
  upsampled to C2's stride (4), L2-normalised with a learnable per-channel scale (initialised to 10), concatenated,
  then a 3x3 conv-BN-ReLU; an offset head predicts the sub-stride position of each centre.

Outputs (a dict of tensors): ``"center_logits"`` ``(B, 1, h, w)`` (sigmoid gives the centre probability; the bias is
initialised for a prior of ``center_prior`` = 0.01), ``"log_size"`` ``(B, 1, h, w)``: the natural log of the square box
side in input pixels, and with an offset head ``"offset"`` ``(B, 2, h, w)`` as ``(dx, dy)`` in output cells.
``model.stride`` is the input pixels per output cell (1 for ``"fullres"`` on stride-8 C3, 4 for ``"csp"``).

Registered builder: ``"csp_sdnet"`` (see :func:`build_csp_sdnet`).
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from crowdlib.losses.csp import CSPLoss
from crowdlib.models.backbones import build_backbone
from crowdlib.models.registry import register_model

__all__ = ["FullResDecoder", "CSPDecoder", "CSPDetector", "build_csp_sdnet", "effective_receptive_field"]


def _conv_bn_relu(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class FullResDecoder(nn.Module):
    """FPN-style fusion of C3-C5 to ``width`` channels, then x2 nearest and two deconv blocks (stride / 8).

    ``up_width`` (default ``width``) sets the channels of the smoothing conv and the two full-resolution blocks;
    the paper uses 256 throughout, a CPU run can keep the fusion wide and the costly high-resolution blocks narrow.

    ``skips`` adds U-Net style skip connections from high-resolution backbone stages: ``{"c2": 16}`` projects C2
    (stride 4) with a 1x1 conv to 16 channels, concatenates it after the x2 upsample (stride 4) and mixes it back
    to ``up_width`` with a 3x3 conv-BN-ReLU; ``{"stem": 8}`` does the same with the stride-2 stage after the first
    deconv block. The paper's decoder has none: its ResNet-50 C3 localises heads of 10 px and more; small synthetic
    heads (4-8 px) need the finer stages. :func:`effective_receptive_field` measures what an output pixel sees.
    """

    def __init__(self, in_channels: Mapping[str, int], strides: Mapping[str, int], width: int = 256,
                 up_width: int | None = None, skips: Mapping[str, int] | None = None) -> None:
        super().__init__()
        if strides["c3"] % 8 != 0:
            raise ValueError(f"FullResDecoder: C3 stride must be a multiple of 8, got {strides['c3']}")
        self.out_stride = strides["c3"] // 8
        self.lateral = nn.ModuleDict({k: nn.Conv2d(in_channels[k], width, 1) for k in ("c3", "c4", "c5")})
        up = int(up_width or width)
        self.smooth = _conv_bn_relu(width, up, 3)
        skips = {str(k): int(v) for k, v in (skips or {}).items() if int(v) > 0}
        wanted = {"c2": strides["c3"] // 2, "stem": strides["c3"] // 4}  # the stride where each skip is merged
        for k in skips:
            if k not in wanted:
                raise ValueError(f"FullResDecoder: skips may come from 'c2' or 'stem', got {k!r}")
            if k not in in_channels or strides.get(k) != wanted[k]:
                raise ValueError(f"FullResDecoder: the backbone gives no {k!r} stage at stride {wanted[k]} "
                                 f"(has {dict(strides)})")
        self.skips = skips
        self.skip_proj = nn.ModuleDict({k: nn.Conv2d(in_channels[k], c, 1) for k, c in skips.items()})
        self.skip_mix = nn.ModuleDict({k: _conv_bn_relu(up + c, up, 3) for k, c in skips.items()})
        self.up = nn.ModuleList([
            nn.Sequential(nn.ConvTranspose2d(up, up, 4, stride=2, padding=1, bias=False),
                          nn.Conv2d(up, up, 3, padding=1, bias=False), nn.BatchNorm2d(up), nn.ReLU(inplace=True))
            for _ in range(2)])
        self.out_channels = up

    def _merge(self, key: str, p: torch.Tensor, feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        if key not in self.skips:
            return p
        s = self.skip_proj[key](feats[key])
        if p.shape[-2:] != s.shape[-2:]:  # the decoder rounds up to whole C3 cells
            p = p[..., : s.shape[-2], : s.shape[-1]]
            s = F.pad(s, (0, p.shape[-1] - s.shape[-1], 0, p.shape[-2] - s.shape[-2]))
        return self.skip_mix[key](torch.cat([p, s], dim=1))

    def forward(self, feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        p = self.lateral["c5"](feats["c5"])
        for k in ("c4", "c3"):
            lat = self.lateral[k](feats[k])
            if p.shape[-2:] != lat.shape[-2:]:
                p = F.interpolate(p, size=lat.shape[-2:], mode="nearest")
            p = lat + p
        p = self.smooth(p)
        p = F.interpolate(p, scale_factor=2.0, mode="nearest")
        p = self._merge("c2", p, feats)
        p = self.up[0](p)
        p = self._merge("stem", p, feats)
        return self.up[1](p)


class _L2Norm(nn.Module):
    def __init__(self, channels: int, scale: float = 10.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((1, channels, 1, 1), float(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=1, eps=1e-6) * self.weight


class CSPDecoder(nn.Module):
    """Original CSP fusion: C3-C5 reduced, upsampled to C2's resolution, L2-normalised, concatenated, 3x3 conv."""

    def __init__(self, in_channels: Mapping[str, int], strides: Mapping[str, int], width: int = 256) -> None:
        super().__init__()
        self.out_stride = strides["c2"]
        self.reduce = nn.ModuleDict({k: nn.Conv2d(in_channels[k], width, 1) for k in ("c3", "c4", "c5")})
        self.norms = nn.ModuleDict({k: _L2Norm(width) for k in ("c3", "c4", "c5")})
        self.fuse = _conv_bn_relu(3 * width, width, 3)
        self.out_channels = width

    def forward(self, feats: Mapping[str, torch.Tensor]) -> torch.Tensor:
        size = feats["c2"].shape[-2:]
        maps = []
        for k in ("c3", "c4", "c5"):
            m = self.reduce[k](feats[k])
            m = F.interpolate(m, size=size, mode="bilinear", align_corners=False)
            maps.append(self.norms[k](m))
        return self.fuse(torch.cat(maps, dim=1))


class CSPDetector(nn.Module):
    """Backbone + decoder + 1x1 heads (centre logits, log size, optional offset).

    Args:
        backbone: a name for :func:`crowdlib.models.backbones.build_backbone` (``tiny``, ``mobilenet_v2``,
            ``resnet50``, ``vgg16``).
        decoder: ``"fullres"`` (paper, dense crowds) or ``"csp"`` (stride 4, original CSP).
        width: decoder channels (paper 256; use 16-32 with the tiny backbone).
        up_width: channels of the full-resolution blocks of the ``"fullres"`` decoder (default ``width``).
        skips: skip connections of the ``"fullres"`` decoder, ``{"c2": channels, "stem": channels}`` (default none,
            as in the paper); see :class:`FullResDecoder`.
        offset_head: add the offset head (default: only for the ``"csp"`` decoder).
        pretrained: load ImageNet weights for the backbone (offline, see the backbones module).
        center_prior: prior probability used to initialise the centre head's bias (paper/CSP 0.01).
        init_log_size: initial bias of the size head (log of a typical size in pixels).
    """

    def __init__(self, backbone: str = "tiny", decoder: str = "fullres", width: int = 256, *,
                 up_width: int | None = None, skips: Mapping[str, int] | None = None,
                 offset_head: bool | None = None, pretrained: bool = False,
                 center_prior: float = 0.01, init_log_size: float = math.log(8.0)) -> None:
        super().__init__()
        if decoder not in ("fullres", "csp"):
            raise ValueError(f"CSPDetector: decoder must be 'fullres' or 'csp', got {decoder!r}")
        if not 0.0 < center_prior < 1.0:
            raise ValueError(f"CSPDetector: center_prior must lie in (0, 1), got {center_prior}")
        self.backbone = build_backbone(backbone, pretrained=pretrained)
        if decoder == "fullres":
            self.decoder = FullResDecoder(self.backbone.out_channels, self.backbone.strides, width, up_width, skips)
        else:
            if skips:
                raise ValueError("CSPDetector: skips apply to the 'fullres' decoder only")
            self.decoder = CSPDecoder(self.backbone.out_channels, self.backbone.strides, width)
        width = self.decoder.out_channels
        self.stride = int(self.decoder.out_stride)
        self.decoder_name = decoder
        self.center_head = nn.Conv2d(width, 1, 1)
        self.size_head = nn.Conv2d(width, 1, 1)
        use_offset = offset_head if offset_head is not None else decoder == "csp"
        self.offset_head = nn.Conv2d(width, 2, 1) if use_offset else None
        nn.init.normal_(self.center_head.weight, std=0.01)
        nn.init.constant_(self.center_head.bias, -math.log((1.0 - center_prior) / center_prior))
        nn.init.normal_(self.size_head.weight, std=0.01)
        nn.init.constant_(self.size_head.bias, float(init_log_size))
        if self.offset_head is not None:
            nn.init.normal_(self.offset_head.weight, std=0.01)
            nn.init.constant_(self.offset_head.bias, 0.5)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"CSPDetector expects (B, 3, H, W) images, got {tuple(x.shape)}")
        feats = self.backbone(x)
        f = self.decoder(feats)
        h, w = -(-x.shape[-2] // self.stride), -(-x.shape[-1] // self.stride)
        f = f[..., :h, :w]  # the decoder rounds up to whole C3 cells; keep ceil(H / stride) x ceil(W / stride)
        out = {"center_logits": self.center_head(f), "log_size": self.size_head(f)}
        if self.offset_head is not None:
            out["offset"] = self.offset_head(f)
        return out


def effective_receptive_field(model: nn.Module, size: int = 128, output: str = "center_logits") -> dict[str, float]:
    """Measure which input pixels the centre output at the image centre depends on (gradient footprint).

    Backpropagates the output ``output`` at the centre cell of a ``size`` x ``size`` random image (eval mode, so
    BatchNorm uses its running statistics) and returns ``{"extent": radius in input pixels of the farthest
    pixel with a non-zero gradient (the theoretical receptive field, clipped by the image), "radius50":
    the radius holding 50% of the absolute gradient (the effective receptive field), "radius90"}``.
    """
    was = model.training
    model.eval()
    try:
        x = torch.randn(1, 3, size, size, requires_grad=True)
        out = model(x)[output]
        stride = max(1, size // out.shape[-1])
        c = size // 2
        out[0, 0, c // stride, c // stride].backward()
        g = x.grad.abs().sum(1)[0]
    finally:
        model.train(was)
    yy, xx = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    r = torch.maximum((yy - c).abs(), (xx - c).abs()).reshape(-1).float()
    g = g.reshape(-1)
    order = torch.argsort(r)
    cum = torch.cumsum(g[order], 0) / g.sum().clamp(min=1e-30)
    rs = r[order]
    return {"extent": float(r[g > 0].max()) if bool((g > 0).any()) else 0.0,
            "radius50": float(rs[torch.searchsorted(cum, torch.tensor(0.5)).clamp(max=len(rs) - 1)]),
            "radius90": float(rs[torch.searchsorted(cum, torch.tensor(0.9)).clamp(max=len(rs) - 1)])}


_LOSS_KEYS = ("center_weight", "size_weight", "offset_weight", "gamma", "delta", "neg_scale", "crowd_aware", "eta",
              "alpha_cap", "alpha_integer", "size_error", "size_norm", "smooth_l1_beta")


@register_model("csp_sdnet")
def build_csp_sdnet(cfg: Mapping[str, Any]) -> tuple[CSPDetector, CSPLoss]:
    """Build ``(CSPDetector, CSPLoss)`` from a config dict.

    Model keys: ``backbone`` (``"tiny"``), ``decoder`` (``"fullres"``), ``width`` (256), ``up_width``, ``skips``
    (none), ``offset_head``,
    ``pretrained`` (False), ``center_prior`` (0.01), ``init_log_size``. Loss keys (optionally under ``cfg["loss"]``):
    those of :class:`crowdlib.losses.csp.CSPLoss`; ``neg_scale`` defaults to 1/16 for the full-resolution decoder
    and 1 for the CSP decoder (paper's ``A``).
    """
    model = CSPDetector(
        backbone=cfg.get("backbone", "tiny"), decoder=cfg.get("decoder", "fullres"), width=int(cfg.get("width", 256)),
        up_width=None if cfg.get("up_width") is None else int(cfg["up_width"]), skips=cfg.get("skips"),
        offset_head=cfg.get("offset_head"),
        pretrained=bool(cfg.get("pretrained", False)),
        center_prior=float(cfg.get("center_prior", 0.01)),
        init_log_size=float(cfg.get("init_log_size", math.log(8.0))),
    )
    loss_cfg = dict(cfg.get("loss", {}))
    for k in _LOSS_KEYS:
        if k in cfg and k not in loss_cfg:
            loss_cfg[k] = cfg[k]
    unknown = set(loss_cfg) - set(_LOSS_KEYS)
    if unknown:
        raise ValueError(f"csp_sdnet: unknown loss options {sorted(unknown)}; allowed {list(_LOSS_KEYS)}")
    loss_cfg.setdefault("neg_scale", 1.0 / 16.0 if model.decoder_name == "fullres" else 1.0)
    criterion = CSPLoss(use_offset=model.offset_head is not None, **loss_cfg)
    return model, criterion
