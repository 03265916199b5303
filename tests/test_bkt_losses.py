"""Bi-knowledge transfer losses: DMS-SSIM against a directly computed SSIM, the focal MSE / focal CE of Eqs. 4-6
on hand-computed cases, gradient signs, and the named terms of the Phi and R criteria."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from crowdlib.losses.bkt import (DensityLoss, PhiLoss, dms_ssim, dms_ssim_loss, focal_ce, focal_mse, gaussian_window,
                                 plain_mse)


def _direct_ssim(x: np.ndarray, y: np.ndarray, dilation: int, c1: float = 1e-4, c2: float = 9e-4) -> np.ndarray:
    """SSIM window by window: Gaussian 5x5 (sigma 1) taps ``dilation`` apart, replicate borders, no convolution."""
    w = gaussian_window(5, 1.0).numpy()
    h, wd = x.shape
    out = np.zeros_like(x, dtype=np.float64)
    offs = (np.arange(5) - 2) * dilation
    for r in range(h):
        for c in range(wd):
            rr = np.clip(r + offs, 0, h - 1)
            cc = np.clip(c + offs, 0, wd - 1)
            px, py = x[np.ix_(rr, cc)], y[np.ix_(rr, cc)]
            mx, my = (w * px).sum(), (w * py).sum()
            vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
            cxy = (w * (px - mx) * (py - my)).sum()
            out[r, c] = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return out


@pytest.mark.parametrize("dilation", [1, 2])
@pytest.mark.parametrize("hierarchy", ["nested", "flat"])
def test_one_scale_dms_ssim_is_the_directly_computed_ssim(dilation, hierarchy):
    rng = np.random.default_rng(0)
    x = rng.random((12, 14))
    y = 0.6 * x + 0.4 * rng.random((12, 14))
    got = dms_ssim(torch.tensor(x)[None, None], torch.tensor(y)[None, None], dilations=[dilation], weights=[1.0],
                   hierarchy=hierarchy, reduce=False)[0, 0].double().numpy()
    np.testing.assert_allclose(got, _direct_ssim(x, y, dilation), rtol=2e-4, atol=2e-5)


def test_dms_ssim_is_one_for_equal_maps_and_drops_with_noise():
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.random((1, 1, 40, 40)), dtype=torch.float32)
    assert float(dms_ssim(x, x)) == pytest.approx(1.0, abs=1e-5)
    assert float(dms_ssim_loss(x, x)) == pytest.approx(0.0, abs=1e-5)
    noisy = x + 0.3 * torch.tensor(rng.standard_normal((1, 1, 40, 40)), dtype=torch.float32)
    noisier = x + 0.6 * torch.tensor(rng.standard_normal((1, 1, 40, 40)), dtype=torch.float32)
    assert float(dms_ssim(x, noisier)) < float(dms_ssim(x, noisy)) < 1.0


def test_dms_ssim_nested_scales_differ_from_flat_and_bad_input_is_named():
    x = torch.rand(1, 1, 24, 24, generator=torch.Generator().manual_seed(0))
    y = torch.rand(1, 1, 24, 24, generator=torch.Generator().manual_seed(1))
    assert float(dms_ssim(x, y, hierarchy="nested")) != pytest.approx(float(dms_ssim(x, y, hierarchy="flat")))
    with pytest.raises(ValueError, match="one shape"):
        dms_ssim(x, y[..., :20])
    with pytest.raises(ValueError, match="hierarchy"):
        dms_ssim(x, y, hierarchy="pyramid")
    with pytest.raises(ValueError, match="weights"):
        dms_ssim(x, y, dilations=[1, 2], weights=[1.0])


def test_focal_mse_hand_computed():
    z = torch.tensor([0.0, math.log(3.0)]).view(1, 1, 1, 2)  # sigmoid: 0.5 and 0.75
    t = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)
    # head: alpha 1, p 0.5, (1-p)^2 0.25, (1-0.5)^2 0.25; background: alpha 0.1, p 0.25, (0.75)^2, (0.75)^2
    want = (1.0 * 0.25 * 0.25 + 0.1 * 0.5625 * 0.5625) / 2
    assert float(focal_mse(z, t)) == pytest.approx(want, rel=1e-6)
    want_lit = (1.0 * 0.25 * 1.0 + 0.1 * 0.5625 * math.log(3.0) ** 2) / 2
    assert float(focal_mse(z, t, form="literal")) == pytest.approx(want_lit, rel=1e-6)
    assert float(focal_mse(z, t, gamma=0.0, alpha_neg=1.0)) == pytest.approx(float(plain_mse(z, t)), rel=1e-6)


def test_focal_ce_hand_computed_and_gradient_signs():
    z = torch.tensor([0.0, math.log(3.0)]).view(1, 1, 1, 2)
    t = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)
    want = (-0.25 * math.log(0.5) - 0.1 * 0.5625 * math.log(0.25)) / 2
    assert float(focal_ce(z, t)) == pytest.approx(want, rel=1e-6)
    for fn in (focal_mse, focal_ce):
        zz = torch.tensor([0.3, 0.3]).view(1, 1, 1, 2).requires_grad_(True)
        fn(zz, t).backward()
        g = zz.grad.view(-1)
        assert g[0] < 0 < g[1]  # raise the logit at a head, lower it on the background


def test_easy_pixels_weigh_less_than_hard_ones():
    t = torch.tensor([1.0]).view(1, 1, 1, 1)
    easy, hard = torch.tensor([4.0]).view(1, 1, 1, 1), torch.tensor([-1.0]).view(1, 1, 1, 1)
    assert float(focal_mse(easy, t)) < 0.01 * float(focal_mse(hard, t))


def test_phi_loss_terms_and_named_errors():
    z, t = torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 16, 16)
    t[0, 0, 4, 4] = 1
    out = PhiLoss()({"logits": z}, {"dots": t})
    assert set(out) == {"focal_mse", "dms_ssim", "loss"}
    assert float(out["loss"]) == pytest.approx(float(out["focal_mse"] + out["dms_ssim"]), rel=1e-6)
    assert set(PhiLoss("focal_ce")({"logits": z}, {"dots": t})) == {"focal_ce", "loss"}
    assert set(PhiLoss("mse")({"logits": z}, {"dots": t})) == {"mse", "loss"}
    with pytest.raises(ValueError, match="kind"):
        PhiLoss("l1")
    with pytest.raises(ValueError, match="differ"):
        PhiLoss()({"logits": z}, {"dots": t[..., :8]})
    with pytest.raises(ValueError, match="form"):
        focal_mse(z, t, form="raw")


def test_density_loss_terms():
    p, t = torch.ones(2, 1, 4, 4), torch.zeros(2, 1, 4, 4)
    out = DensityLoss()({"density": p}, {"density": t})
    assert set(out) == {"mse", "loss"} and float(out["mse"]) == pytest.approx(1.0)
    assert set(DensityLoss(w_ssim=1.0)({"density": p}, {"density": t})) == {"mse", "dms_ssim", "loss"}
    with pytest.raises(ValueError, match="differ"):
        DensityLoss()({"density": p}, {"density": t[..., :2]})
