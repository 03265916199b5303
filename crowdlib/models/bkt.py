"""Networks of the regression-detection bi-knowledge transfer (Liu et al., ACM MM 2020).

- :class:`DensityRegressor` (the counter R, "bkt_regressor"): the paper uses DSSINet (VGG-16 + CRFs); this is a
  CSRNet-family regressor (CSRNet is the paper's [14] and DSSINet's base): the backbone's C3 (stride 8) and C4
  (stride 16, upsampled) are concatenated and fed to a dilated back-end (``backend`` channels, dilation
  ``backend_dilation`` = 2, as CSRNet's back-end B) and a 1x1 output conv. The density map is at stride 8, each
  cell holding the count of its 8 x 8 pixels (targets are sum-pooled, :func:`crowdlib.methods.bkt.data.pool_density`).
  ``backbone``: ``mobilenet_v2`` (ImageNet weights offline, the CPU default), ``vgg16`` (users with its weights) or
  ``tiny`` (random, tests). :meth:`DensityRegressor.last_layers` gives the "last two layers" the cycles fine-tune.
- :class:`RegToDet` (the Reg-to-Det transformer Phi, "bkt_phi"): a nested U-Net (UNet++, the paper's [43]) whose
  encoder is a dilated backbone: nodes ``X^{0,0}`` (stride 1), ``X^{1,0}`` (2), ``X^{2,0}`` (4), ``X^{3,0}`` (8)
  followed by ``dilated_convs`` 3x3 convolutions of dilation 2 (CSRNet's dilated back-end at stride 8). With
  ``vgg16`` the four encoder nodes are VGG's conv1_x..conv4_x, i.e. exactly "the first 10 convolutional layers"
  initialised from ImageNet (Sec. 4.2); with ``mobilenet_v2`` the stride-2..8 nodes are its ImageNet stages and
  ``X^{0,0}`` is a fresh two-conv block; ``tiny`` is random. Decoder nodes ``X^{i,j} = block(cat(X^{i,0..j-1},
  up(X^{i+1,j-1})))`` (dense skips); the output is a 1x1 conv on ``X^{0,3}``: the logit ``z`` of the dot map at the
  input's resolution. The input density map (one channel) is multiplied by ``input_scale`` and repeated to three
  channels for the pretrained first layer (our choice: densities per pixel are ~1e-2). Convolutions outside the
  backbone start from N(0, ``init_std`` = 0.01), biases 0 (Sec. 4.2).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from crowdlib.losses.bkt import DensityLoss, PhiLoss
from crowdlib.models.backbones import build_backbone
from crowdlib.models.registry import register_model

__all__ = ["DensityRegressor", "RegToDet", "build_regressor", "build_phi", "REGRESSOR_DEFAULTS", "PHI_DEFAULTS"]

REGRESSOR_DEFAULTS: dict[str, Any] = {"backbone": "mobilenet_v2", "pretrained": True, "backend": [128, 64, 32],
                                      "backend_dilation": 2, "w_mse": 1.0, "w_ssim": 0.0}
PHI_DEFAULTS: dict[str, Any] = {"backbone": "mobilenet_v2", "pretrained": True, "widths": [16, 24, 32, 64],
                                "dilated_convs": 2, "input_scale": 100.0, "init_std": 0.01,
                                "loss": "focal_mse+dms_ssim", "form": "prob", "alpha_pos": 1.0, "alpha_neg": 0.1,
                                "gamma": 2.0, "w_ssim": 1.0}


def _conv_relu(cin: int, cout: int, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=dilation, dilation=dilation), nn.ReLU(inplace=True))


def _init_normal(module: nn.Module, std: float) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class DensityRegressor(nn.Module):
    """R (module docstring). ``forward(x)`` -> ``{"density": (B, 1, ceil(H/8), ceil(W/8))}`` (counts per cell)."""

    def __init__(self, backbone: str = "mobilenet_v2", pretrained: bool = True, backend: Sequence[int] = (128, 64, 32),
                 backend_dilation: int = 2) -> None:
        super().__init__()
        if not backend:
            raise ValueError("DensityRegressor: backend needs at least one layer")
        self.backbone = build_backbone(backbone, pretrained=pretrained)
        del self.backbone.stages["c5"]  # R reads C3 and C4 only
        self.backbone.out_channels.pop("c5")
        if self.backbone.strides["c3"] != 8:
            raise ValueError(f"DensityRegressor: backbone {backbone!r} has C3 at stride {self.backbone.strides['c3']}")
        self.stride = 8
        cin = self.backbone.out_channels["c3"] + self.backbone.out_channels["c4"]
        layers = []
        for c in backend:
            layers.append(_conv_relu(cin, int(c), int(backend_dilation)))
            cin = int(c)
        self.backend = nn.Sequential(*layers)
        self.output = nn.Conv2d(cin, 1, 1)
        _init_normal(self.backend, 0.01)
        _init_normal(self.output, 0.01)

    def last_layers(self, n: int = 2) -> list[nn.Parameter]:
        """Parameters of the last ``n`` convolution layers (the output conv and the last back-end convs)."""
        convs = [m for m in self.backend.modules() if isinstance(m, nn.Conv2d)] + [self.output]
        if not 1 <= n <= len(convs):
            raise ValueError(f"last_layers: n must lie in 1..{len(convs)}, got {n}")
        return [p for m in convs[-n:] for p in m.parameters()]

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"DensityRegressor expects (B, 3, H, W) images, got {tuple(x.shape)}")
        f = self.backbone(x)
        c3, c4 = f["c3"], F.interpolate(f["c4"], size=f["c3"].shape[-2:], mode="bilinear", align_corners=False)
        y = self.output(self.backend(torch.cat([c3, c4], 1)))
        h, w = -(-x.shape[-2] // 8), -(-x.shape[-1] // 8)
        return {"density": y[..., :h, :w]}


def _encoder(backbone: str, pretrained: bool, width0: int) -> tuple[nn.ModuleList, list[int]]:
    """Encoder nodes at strides 1, 2, 4, 8 and their channels."""
    if backbone == "vgg16":
        import torchvision

        from crowdlib.models.backbones import find_weights, WEIGHT_FILES

        net = torchvision.models.vgg16(weights=None)
        if pretrained:
            net.load_state_dict(torch.load(find_weights(WEIGHT_FILES["vgg16"]), map_location="cpu", weights_only=True))
        f = net.features  # conv1_1..conv4_3 are the first 10 convolutions (the last pool is not used)
        return nn.ModuleList([f[:4], f[4:9], f[9:16], f[16:23]]), [64, 128, 256, 512]
    bb = build_backbone(backbone, pretrained=pretrained)
    first = nn.Sequential(_conv_relu(3, width0), _conv_relu(width0, width0))
    stages = [first, bb.stages["stem"], bb.stages["c2"], bb.stages["c3"]]
    chans = [width0, bb.out_channels["stem"], bb.out_channels["c2"], bb.out_channels["c3"]]
    return nn.ModuleList(stages), chans


class RegToDet(nn.Module):
    """Phi (module docstring). ``forward(density)`` with ``density`` ``(B, 1, H, W)`` (H, W multiples of 8)
    -> ``{"logits": (B, 1, H, W)}``."""

    def __init__(self, backbone: str = "mobilenet_v2", pretrained: bool = True, widths: Sequence[int] = (16, 24, 32, 64),
                 dilated_convs: int = 2, input_scale: float = 100.0, init_std: float = 0.01) -> None:
        super().__init__()
        if len(widths) != 4 or min(int(w) for w in widths) < 1:
            raise ValueError(f"RegToDet: widths must give 4 positive decoder widths, got {list(widths)}")
        self.input_scale = float(input_scale)
        self.encoder, enc = _encoder(backbone, pretrained, int(widths[0]))
        self.first_fresh = backbone != "vgg16"
        dil = [_conv_relu(enc[3] if i == 0 else int(widths[3]), int(widths[3]), 2) for i in range(int(dilated_convs))]
        self.dilated = nn.Sequential(*dil)
        self.enc_channels = [enc[0], enc[1], enc[2], int(widths[3]) if dilated_convs else enc[3]]
        self.widths = [int(w) for w in widths]
        self.nodes = nn.ModuleDict()
        for j in range(1, 4):
            for i in range(0, 4 - j):
                cin = self.enc_channels[i] + self.widths[i] * (j - 1) + (self.enc_channels[i + 1] if j == 1
                                                                           else self.widths[i + 1])
                self.nodes[f"{i}_{j}"] = nn.Sequential(_conv_relu(cin, self.widths[i]), _conv_relu(self.widths[i],
                                                                                                    self.widths[i]))
        self.head = nn.Conv2d(self.widths[0], 1, 1)
        _init_normal(self.dilated, init_std)
        _init_normal(self.nodes, init_std)
        _init_normal(self.head, init_std)
        if self.first_fresh:
            _init_normal(self.encoder[0], init_std)

    def forward(self, density: torch.Tensor) -> dict[str, torch.Tensor]:
        if density.dim() != 4 or density.shape[1] != 1:
            raise ValueError(f"RegToDet expects (B, 1, H, W) density maps, got {tuple(density.shape)}")
        if density.shape[-2] % 8 or density.shape[-1] % 8:
            raise ValueError(f"RegToDet: H and W must be multiples of 8, got {tuple(density.shape[-2:])}")
        inp = (density.float() * self.input_scale).expand(-1, 3, -1, -1)
        x: dict[tuple[int, int], torch.Tensor] = {}
        h = inp
        for i, stage in enumerate(self.encoder):
            h = stage(inp if (i == 1 and self.first_fresh) else h)  # a fresh stride-1 node is a side branch
            x[(i, 0)] = h
        x[(3, 0)] = self.dilated(x[(3, 0)])
        for j in range(1, 4):
            for i in range(0, 4 - j):
                up = F.interpolate(x[(i + 1, j - 1)], size=x[(i, 0)].shape[-2:], mode="bilinear", align_corners=False)
                x[(i, j)] = self.nodes[f"{i}_{j}"](torch.cat([x[(i, k)] for k in range(j)] + [up], 1))
        return {"logits": self.head(x[(0, 3)])}


def _pick(cfg: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    return {k: cfg.get(k, v) for k, v in defaults.items()}


@register_model("bkt_regressor")
def build_regressor(cfg: Mapping[str, Any]) -> tuple[DensityRegressor, DensityLoss]:
    """``(DensityRegressor, DensityLoss)`` from the keys of :data:`REGRESSOR_DEFAULTS` (missing: defaults)."""
    c = _pick(cfg, REGRESSOR_DEFAULTS)
    net = DensityRegressor(str(c["backbone"]), bool(c["pretrained"]), [int(v) for v in c["backend"]],
                           int(c["backend_dilation"]))
    return net, DensityLoss(float(c["w_mse"]), float(c["w_ssim"]))


@register_model("bkt_phi")
def build_phi(cfg: Mapping[str, Any]) -> tuple[RegToDet, PhiLoss]:
    """``(RegToDet, PhiLoss)`` from the keys of :data:`PHI_DEFAULTS` (missing: defaults)."""
    c = _pick(cfg, PHI_DEFAULTS)
    net = RegToDet(str(c["backbone"]), bool(c["pretrained"]), [int(v) for v in c["widths"]], int(c["dilated_convs"]),
                   float(c["input_scale"]), float(c["init_std"]))
    crit = PhiLoss(str(c["loss"]), alpha_pos=float(c["alpha_pos"]), alpha_neg=float(c["alpha_neg"]),
                   gamma=float(c["gamma"]), form=str(c["form"]), w_ssim=float(c["w_ssim"]))
    return net, crit
