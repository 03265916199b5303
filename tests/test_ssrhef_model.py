"""SSR-HEF network: the paper-scale parameter count, every head's shape, the ablation switches, the FEL, and a
one-batch overfit."""
from __future__ import annotations

import pytest
import torch

from crowdlib.models import build_model, list_models
from crowdlib.models.ssrhef import MODEL_DEFAULTS, FeatureEnhancement, SSRHEFNet, build_ssr_hef, count_parameters

torch.set_num_threads(1)


def test_registered_and_paper_config_has_two_million_parameters():
    assert "ssr_hef" in list_models()
    model, crit = build_model({"model": "ssr_hef"})
    n = count_parameters(model)
    assert abs(n - 2_000_000) <= 200_000, n  # Table IX: "2M"
    assert n == 2_043_334  # the inferred layer table of the module docstring
    assert set(crit.weight_dict) == {"hef", "seg", "cls"}
    assert crit.weight_dict == {"hef": 1.0, "seg": 1e-2, "cls": 1e-3}  # Eq. 5
    assert count_parameters(build_ssr_hef({"width": 0.25})[0]) < 200_000


def test_head_shapes_at_paper_config():
    model, _ = build_ssr_hef({})
    out = model(torch.randn(2, 3, 64, 96))
    assert out["density"].shape == (2, 1, 8, 12)  # output stride 8
    assert [tuple(s.shape) for s in out["seg"]] == [(2, 1, 32, 48), (2, 1, 16, 24), (2, 1, 8, 12)]
    assert out["cls"].shape == (2, 15)
    assert out["msrf"].shape == (2, 64 + 128 + 256, 8, 12)  # concatenated refined features at 1/8


def test_fuse_stride_fusion_width_and_pyramid_pooling():
    m4, c4 = build_ssr_hef({"fuse_stride": 4, "width": 0.25})
    out = m4(torch.randn(1, 3, 32, 48))
    assert out["density"].shape == (1, 1, 8, 12) and c4.output_stride == 4
    ms, _ = build_ssr_hef({"fusion": "sum", "width": 0.25, "cls_pool": [1, 2, 4]})
    out = ms(torch.randn(1, 3, 32, 32))
    assert out["msrf"].shape[1] == 64 and out["cls"].shape == (1, 15)  # summed at the deepest width (256 / 4)


def test_ablation_switches_remove_their_parts():
    x = torch.randn(1, 3, 32, 32)
    full = count_parameters(build_ssr_hef({})[0])
    no_ssr, crit = build_ssr_hef({"use_ssr": False})
    assert "seg" not in no_ssr(x) and "seg" not in crit.weight_dict
    assert full - count_parameters(no_ssr) == 65 + 129 + 257  # the three Con1-1 segmentation heads
    no_fel, _ = build_ssr_hef({"use_fel": False})
    assert no_fel.fel is None and no_fel(x)["density"].shape == (1, 1, 4, 4)
    k0, crit0 = build_ssr_hef({"num_classes": 0})
    assert "cls" not in k0(x) and "cls" not in crit0.weight_dict
    _, crit_l2 = build_ssr_hef({"use_hef": False})
    assert set(crit_l2.weight_dict) == {"l2", "seg", "cls"}


def test_bad_inputs_raise():
    model, _ = build_ssr_hef({"width": 0.25})
    with pytest.raises(ValueError, match="multiples of 8"):
        model(torch.randn(1, 3, 30, 32))
    with pytest.raises(ValueError, match="fusion"):
        SSRHEFNet(fusion="max")
    with pytest.raises(ValueError, match="num_classes"):
        SSRHEFNet(num_classes=1)
    with pytest.raises(ValueError, match="fuse_stride"):
        SSRHEFNet(fuse_stride=16)


def test_feature_enhancement_layer_by_hand():
    fel = FeatureEnhancement(4, 3, kernel=7)
    with torch.no_grad():
        fel.attend.weight.zero_()
        fel.attend.bias.fill_(0.0)
    x = torch.randn(2, 4, 5, 6)
    y = torch.relu(fel.encode[0](x))
    assert torch.allclose(fel(x), 0.5 * y)  # a zero attention conv: sigmoid(0) = 0.5 everywhere
    with torch.no_grad():
        fel.attend.weight[0, 0, 3, 3] = 1.0  # centre tap on the channel max only
    att = torch.sigmoid(y.amax(1, keepdim=True))
    assert torch.allclose(fel(x), y * att, atol=1e-6)


def test_semantic_refining_multiplies_stage_features_by_the_sigmoid_of_the_seg_map():
    model, _ = build_ssr_hef({"width": 0.25, "num_classes": 0})
    with torch.no_grad():
        for head in model.seg_heads:
            head.weight.zero_()
            head.bias.fill_(-30.0)  # sigmoid ~ 0: the refined features vanish, MSRF is ~0
    with torch.no_grad():
        out = model(torch.randn(1, 3, 32, 32))
    assert float(out["msrf"].abs().max()) < 1e-6


def test_one_batch_overfit_within_100_steps():
    torch.manual_seed(0)
    model, crit = build_ssr_hef({"width": 0.25, "num_classes": 4})
    x = torch.randn(1, 3, 32, 32)
    dens = torch.zeros(1, 1, 32, 32)
    dens[0, 0, 4:12, 4:12] = 1.0 / 64  # one head per 8x8 cell (at stride 8: a single cell of 1)
    dens[0, 0, 20:28, 8:24] = 2.0 / 128
    seg = {f"seg{s}": (torch.nn.functional.max_pool2d((dens > 0).float(), s)) for s in (2, 4, 8)}
    targets = {"density": dens, "cls": torch.tensor([2]), **seg}
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    first = None
    for _ in range(100):
        losses = crit(model(x), targets)
        opt.zero_grad()
        losses["loss"].backward()
        opt.step()
        first = losses["loss"].item() if first is None else first
    assert losses["loss"].item() < first / 20, (first, losses["loss"].item())  # about 1/150 here
    assert losses["hef"].item() < 1e-3


def test_model_defaults_are_the_documented_paper_values():
    assert MODEL_DEFAULTS["dilations"] == [1, 2, 3, 4] and MODEL_DEFAULTS["num_classes"] == 15
    assert MODEL_DEFAULTS["cls_pool"] == 16 and MODEL_DEFAULTS["cls_hidden"] == 64  # Table I
