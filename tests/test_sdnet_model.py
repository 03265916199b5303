"""Crowd-SDNet detector: shapes and strides of both decoders, head initialisation, registry, one-image overfit."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from crowdlib.models.csp import CSPDetector
from crowdlib.models.registry import build_model
from crowdlib.targets.csp import csp_targets


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_fullres_decoder_shapes_and_bias() -> None:
    torch.manual_seed(0)
    m = CSPDetector("tiny", "fullres", width=8)
    out = m(torch.randn(2, 3, 64, 48))
    assert m.stride == 1 and "offset" not in out
    assert out["center_logits"].shape == (2, 1, 64, 48) and out["log_size"].shape == (2, 1, 64, 48)
    assert m.center_head.bias.item() == pytest.approx(-math.log(99.0))
    assert torch.sigmoid(out["center_logits"]).mean().item() == pytest.approx(0.01, abs=0.005)


def test_csp_decoder_has_offset_and_stride4() -> None:
    m = CSPDetector("tiny", "csp", width=8)
    out = m(torch.randn(1, 3, 64, 64))
    assert m.stride == 4
    assert out["offset"].shape == (1, 2, 16, 16) and out["center_logits"].shape == (1, 1, 16, 16)


def test_builder_and_errors() -> None:
    model, crit = build_model({"model": "csp_sdnet", "backbone": "tiny", "width": 8, "crowd_aware": False})
    assert crit.neg_scale == pytest.approx(1 / 16) and set(crit.weight_dict) == {"center", "size"}
    _, crit4 = build_model({"model": "csp_sdnet", "backbone": "tiny", "decoder": "csp", "width": 8})
    assert crit4.neg_scale == 1.0 and set(crit4.weight_dict) == {"center", "size", "offset"}
    with pytest.raises(ValueError, match="decoder"):
        CSPDetector("tiny", "fpn")
    with pytest.raises(ValueError, match="unknown loss options"):
        build_model({"model": "csp_sdnet", "width": 8, "loss": {"lambda": 0.1}})
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        model(torch.randn(3, 32, 32))


def test_one_image_overfit() -> None:
    """The detector memorises the centres and sizes of one small image."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    pts = np.array([[12.0, 14.0], [40.0, 20.0], [22.0, 44.0], [50.0, 50.0]], np.float32)
    sizes = np.array([6.0, 10.0, 8.0, 12.0], np.float32)
    img = torch.from_numpy(rng.normal(size=(1, 3, 64, 64)).astype(np.float32))
    t = csp_targets(pts, sizes, (64, 64), stride=1, crowdedness=np.ones(4), window=3, offset=False)
    targets = {k: torch.from_numpy(v)[None, None] for k, v in t.items()}
    targets["size_mask"] = (targets["size_weight"] > 0).float()
    model, crit = build_model({"model": "csp_sdnet", "backbone": "tiny", "width": 8, "crowd_aware": False})
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(120):
        losses = crit(model(img), targets)
        opt.zero_grad()
        losses["loss"].backward()
        opt.step()
        first = first if first is not None else losses["loss"].item()
    assert losses["loss"].item() < 0.2 * first
    model.eval()
    with torch.no_grad():
        out = model(img)
    cols, rows = pts[:, 0].astype(int), pts[:, 1].astype(int)
    pred = out["log_size"][0, 0, rows, cols].numpy()
    assert np.abs(pred - np.log(sizes)).mean() < 0.25
    prob = torch.sigmoid(out["center_logits"][0, 0])
    assert prob[rows, cols].min() > prob.flatten().quantile(0.99)


def test_fullres_skips_keep_full_resolution_and_validate() -> None:
    """Skip connections from C2 (stride 4) and the stem (stride 2) keep the stride-1 output on odd sizes."""
    torch.manual_seed(0)
    plain = CSPDetector("tiny", "fullres", width=8, up_width=4)
    m = CSPDetector("tiny", "fullres", width=8, up_width=4, skips={"c2": 8, "stem": 4})
    for shape in ((1, 3, 64, 48), (2, 3, 61, 37)):
        out = m(torch.randn(*shape))
        assert out["center_logits"].shape == (shape[0], 1, *shape[2:])
    assert sum(p.numel() for p in m.parameters()) > sum(p.numel() for p in plain.parameters())
    with pytest.raises(ValueError, match="skips may come from"):
        CSPDetector("tiny", "fullres", width=8, skips={"c4": 8})
    with pytest.raises(ValueError, match="fullres"):
        CSPDetector("tiny", "csp", width=8, skips={"c2": 8})


def test_skip_connections_sharpen_the_gradient_footprint() -> None:
    """The stem skip gives an output pixel a direct path to nearby input pixels: its input gradient is more
    concentrated around the pixel than without skips (the finer stages reach the head)."""
    from crowdlib.models.csp import effective_receptive_field

    torch.manual_seed(0)
    plain = effective_receptive_field(CSPDetector("tiny", "fullres", width=8, up_width=4), 64)
    torch.manual_seed(0)
    skip = effective_receptive_field(CSPDetector("tiny", "fullres", width=8, up_width=4,
                                                 skips={"c2": 8, "stem": 4}), 64)
    assert 0 < skip["radius50"] < plain["radius50"]
    assert skip["extent"] >= skip["radius50"]
