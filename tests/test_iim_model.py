"""IIM model pieces: binarization layer gradients, compressed sigmoid, threshold encoders, networks, losses."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from crowdlib.losses.iim import DensityLoss, DotMapLoss, IIMLoss
from crowdlib.models.baselines import cruciform_map, local_maxima
from crowdlib.models.iim import (
    ConfidencePredictor,
    IIMNet,
    ImageThresholdEncoder,
    PixelThresholdEncoder,
    binarize,
    compressed_sigmoid,
    sliding_window_predict,
)
from crowdlib.models.registry import build_model

torch.set_num_threads(1)
TINY = {"backbone": "tiny", "fpn_channels": 8, "head_channels": 4, "pbm_widths": [8, 8, 4], "pbm_pool": 3}


def test_binarize_forward_is_ge():
    conf = torch.tensor([[0.1, 0.5, 0.9]])
    out = binarize(conf, torch.tensor(0.5))
    assert out.tolist() == [[0.0, 1.0, 1.0]]  # 1 where confidence >= threshold (ties count)


@pytest.mark.parametrize("k", [0.0, 0.2, 1.0])
@pytest.mark.parametrize("thr_shape", [(2, 1, 1, 1), (2, 1, 5, 6), (1,), ()])
def test_binarize_gradients_match_linear_relaxation(k, thr_shape):
    """Backward equals autograd of the relaxation O ~ k*I - T (Eq. 3/6), including broadcast reduction."""
    g = torch.Generator().manual_seed(0)
    conf = torch.rand(2, 1, 5, 6, generator=g, dtype=torch.float64, requires_grad=True)
    thr = torch.rand(thr_shape, generator=g, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(2, 1, 5, 6, generator=g, dtype=torch.float64)
    (binarize(conf, thr, k) * upstream).sum().backward()
    conf2 = conf.detach().clone().requires_grad_(True)
    thr2 = thr.detach().clone().requires_grad_(True)
    ((k * conf2 - thr2) * upstream).sum().backward()
    assert thr.grad.shape == thr.shape
    torch.testing.assert_close(conf.grad, conf2.grad)
    torch.testing.assert_close(thr.grad, thr2.grad)


def test_binarize_threshold_gradient_direction():
    """L1 gradient: false positives raise the threshold, false negatives lower it (Eq. 7)."""
    conf = torch.tensor([[[[0.9, 0.2]]]])
    target = torch.tensor([[[[0.0, 1.0]]]])  # pixel 0 a false positive, pixel 1 a false negative
    thr = torch.full((1, 1, 1, 2), 0.5, requires_grad=True)
    (binarize(conf, thr) - target).abs().sum().backward()
    assert thr.grad[0, 0, 0, 0] < 0 < thr.grad[0, 0, 0, 1]  # descent: T0 up, T1 down


def test_binarize_k_zero_gives_zero_confidence_gradient_and_errors():
    conf = torch.rand(1, 1, 3, 3, requires_grad=True)
    binarize(conf, torch.tensor(0.5, requires_grad=True), k=0.0).sum().backward()
    assert torch.all(conf.grad == 0)
    with pytest.raises(ValueError, match="broadcast"):
        binarize(torch.rand(1, 1, 3, 3), torch.rand(1, 1, 2, 2))
    with pytest.raises(ValueError, match="k must be"):
        binarize(torch.rand(1, 1, 3, 3), 0.5, k=-1)


def test_compressed_sigmoid_range_and_value():
    x = torch.linspace(-50, 50, 1001)
    y = compressed_sigmoid(x)
    assert float(y.min()) >= 0.2 and float(y.max()) <= 0.7
    assert float(compressed_sigmoid(torch.tensor(-5.0))) > 0.2 and float(compressed_sigmoid(torch.tensor(5.0))) < 0.7
    assert torch.all(y[1:] >= y[:-1])
    assert abs(float(compressed_sigmoid(torch.tensor(0.0))) - (1 / 3 + 0.2)) < 1e-6
    xs = torch.tensor([-3.0, -0.5, 0.7, 4.0], dtype=torch.float64)
    torch.testing.assert_close(compressed_sigmoid(xs), 1 / (2 + torch.exp(-xs)) + 0.2)
    # no overflow: finite values and gradients far in the tails (the naive form gives nan gradients below -88)
    x = torch.tensor([-1000.0, -100.0, 100.0, 1000.0], requires_grad=True)
    compressed_sigmoid(x).sum().backward()
    assert torch.isfinite(x.grad).all() and torch.all(x.grad >= 0)
    torch.testing.assert_close(compressed_sigmoid(x.detach()), torch.tensor([0.2, 0.2, 0.7, 0.7]))


def test_encoders_shapes_detach_and_range():
    feat = torch.randn(2, 8, 4, 5, requires_grad=True)
    conf = torch.rand(2, 1, 32, 40, requires_grad=True)
    t_img = ImageThresholdEncoder(8)(feat, conf)
    assert t_img.shape == (2, 1, 1, 1)
    pbm = PixelThresholdEncoder(8, widths=(8, 8, 4), pool_kernel=3)
    t_pix = pbm(feat, conf)
    assert t_pix.shape == (2, 1, 32, 40)
    assert float(t_pix.detach().min()) > 0.2 and float(t_pix.detach().max()) < 0.7
    # nearest x8 upsampling: each 8x8 block is constant
    blocks = t_pix[0, 0].reshape(4, 8, 5, 8)
    assert torch.allclose(blocks, blocks[:, :1, :, :1].expand_as(blocks))
    (t_img.sum() + t_pix.sum()).backward()
    assert feat.grad is None and conf.grad is None  # inputs are detached
    assert pbm.out.weight.grad is not None
    with pytest.raises(ValueError, match="pool_kernel"):
        PixelThresholdEncoder(8, pool_kernel=4)


@pytest.mark.parametrize("encoder,thr_shape", [("none", (2, 1, 1, 1)), ("ibm", (2, 1, 1, 1)), ("pbm", (2, 1, 32, 48))])
def test_iimnet_outputs_and_loss(encoder, thr_shape):
    torch.manual_seed(0)
    model, crit = build_model({"model": "iim", "encoder": encoder, **TINY})
    out = model(torch.randn(2, 3, 32, 48))
    assert out["confidence"].shape == (2, 1, 32, 48) and out["threshold"].shape == thr_shape
    assert 0 <= float(out["confidence"].detach().min()) <= float(out["confidence"].detach().max()) <= 1
    assert torch.equal(out["binary"], (out["confidence"] >= out["threshold"]).float())
    inst = (torch.rand(2, 1, 32, 48) > 0.8).float()
    losses = crit(out, {"instance": inst})
    assert set(losses) == ({"mse", "loss"} if encoder == "none" else {"mse", "l1", "loss"})
    expected_mse = ((out["confidence"] - inst) ** 2).mean()
    torch.testing.assert_close(losses["mse"], expected_mse)
    if encoder != "none":
        torch.testing.assert_close(losses["l1"], (out["binary"] - inst).abs().mean())
    losses["loss"].backward()
    if encoder != "none":
        assert model.encoder.parameters().__next__().grad is not None


def test_l1_area_encoder_only_stops_predictor_gradient():
    """With l1_area='encoder' the L1 term gives no gradient to the confidence predictor (Table 3, row 4/6)."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 32, 32)
    inst = (torch.rand(2, 1, 32, 32) > 0.8).float()
    grads = {}
    for area in ("encoder", "both"):
        torch.manual_seed(0)
        model, _ = build_model({"model": "iim", "encoder": "pbm", **TINY})
        crit = IIMLoss(use_l1=True, l1_area=area, w_mse=0.0)  # L1 only
        crit(model(x), {"instance": inst})["loss"].backward()
        head_w = model.predictor.head[-1].weight.grad
        grads[area] = 0.0 if head_w is None else float(head_w.abs().sum())
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.parameters())
    assert grads["encoder"] == 0.0 and grads["both"] > 0.0
    with pytest.raises(ValueError, match="l1_area"):
        IIMLoss(l1_area="cp")


def test_param_groups_and_errors():
    model, _ = build_model({"model": "iim", "encoder": "ibm", **TINY})
    groups = model.param_groups(1e-3, 1e-4)
    assert [g["lr"] for g in groups] == [1e-3, 1e-4]
    n = sum(p.numel() for g in groups for p in g["params"])
    assert n == sum(p.numel() for p in model.parameters())
    with pytest.raises(ValueError, match="encoder"):
        IIMNet(ConfidencePredictor("tiny", fpn_channels=8, head_channels=4), encoder="xbm")
    with pytest.raises(ValueError, match="targets have no"):
        IIMLoss()(model(torch.randn(2, 3, 32, 32)), {})


def test_sliding_window_matches_single_pass_for_small_images_and_covers_large():
    torch.manual_seed(0)
    model, _ = build_model({"model": "iim", "encoder": "pbm", **TINY})
    model.eval()
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        one = model(x)
        sw = sliding_window_predict(model, x, window=64, overlap=8)
        torch.testing.assert_close(sw["confidence"], one["confidence"])
        big = sliding_window_predict(model, torch.randn(1, 3, 80, 72), window=32, overlap=8)
    assert big["confidence"].shape == (1, 1, 80, 72) and big["binary"].shape == (1, 1, 80, 72)
    assert torch.isfinite(big["threshold"]).all()
    with pytest.raises(ValueError, match="overlap"):
        sliding_window_predict(model, x, window=16, overlap=16)


def test_baselines_build_and_losses():
    torch.manual_seed(0)
    for name, key in (("iim_density", "density"), ("iim_dotmap", "dotmap")):
        model, crit = build_model({"model": name, **TINY})
        out = model(torch.randn(2, 3, 32, 32))
        assert out["map"].shape == (2, 1, 32, 32)
        losses = crit(out, {key: torch.rand(2, 1, 32, 32)})
        losses["loss"].backward()
        assert torch.isfinite(losses["loss"])
    d = DensityLoss(density_scale=10.0)({"map": torch.full((1, 1, 2, 2), 1.0)}, {"density": torch.full((1, 1, 2, 2), 0.1)})
    assert float(d["mse"]) == pytest.approx(0.0, abs=1e-6)
    b = DotMapLoss(pos_weight=1.0)({"map": torch.full((1, 1, 1, 2), 0.5)}, {"dotmap": torch.tensor([[[[1.0, 0.0]]]])})
    assert float(b["bce"]) == pytest.approx(np.log(2), rel=1e-5)


def test_local_maxima_and_cruciform():
    s = torch.zeros(1, 1, 8, 8)
    s[0, 0, 2, 3] = 0.9
    s[0, 0, 6, 6] = 0.4
    s[0, 0, 2, 4] = 0.5  # neighbour of the first peak, not a maximum
    (pts,) = local_maxima(s, threshold=0.3)
    assert sorted(map(tuple, pts.tolist())) == [(3.0, 2.0), (6.0, 6.0)]
    (pts,) = local_maxima(s, threshold=0.6)
    assert pts.tolist() == [[3.0, 2.0]]
    m = cruciform_map(np.array([[3.2, 2.7], [0.0, 0.0], [50.0, 50.0]]), (6, 7), radius=1)
    assert m.sum() == 5 + 3  # a full cross + a corner cross clipped to 3 pixels; the outside point is ignored
    assert m[2, 3] == 1 and m[1, 3] == 1 and m[2, 4] == 1 and m[1, 4] == 0
    with pytest.raises(ValueError, match="window"):
        local_maxima(s, 0.1, window=2)


def test_density_net_is_linear_in_training_and_clamped_in_eval():
    torch.manual_seed(0)
    model, _ = build_model({"model": "iim_density", **TINY})
    model.predictor.set_output_bias(-5.0)  # all pre-activations negative
    x = torch.randn(2, 3, 32, 32)
    train_map = model(x)["map"]
    assert float(train_map.detach().max()) < 0  # linear output: negative values keep their gradient
    model.eval()
    with torch.no_grad():
        assert float(model(x)["map"].min()) == 0.0
