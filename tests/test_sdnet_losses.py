"""Crowd-SDNet losses: hand-computed values, gradient signs, the loss-name assertion, option errors."""
from __future__ import annotations

import math

import pytest
import torch

from crowdlib.losses.csp import CSPLoss, crowdedness_factor, focal_center_loss, size_loss


def _targets(h: int = 6, w: int = 6) -> dict[str, torch.Tensor]:
    center = torch.zeros(1, 1, h, w)
    pos = torch.zeros(1, 1, h, w)
    center[0, 0, 2, 3] = 1.0
    pos[0, 0, 2, 3] = 1.0
    center[0, 0, 2, 2] = 0.5
    log_size = torch.zeros(1, 1, h, w)
    mask = torch.zeros(1, 1, h, w)
    crowd = torch.zeros(1, 1, h, w)
    log_size[0, 0, 1:4, 2:5] = math.log(6.0)
    mask[0, 0, 1:4, 2:5] = 1.0
    crowd[0, 0, 1:4, 2:5] = 3.0
    return {"center": center, "center_pos": pos, "log_size": log_size, "size_mask": mask, "crowdedness": crowd}


def test_focal_loss_hand_computed() -> None:
    logits = torch.zeros(1, 1, 1, 2)  # p = 0.5 everywhere
    heat = torch.tensor([[[[1.0, 0.5]]]])
    pos = torch.tensor([[[[1.0, 0.0]]]])
    # positive: -(0.5^2) log 0.5 ; negative: -A (1-0.5)^4 0.5^2 log 0.5
    expect = -(0.25 * math.log(0.5)) - (1 / 16) * (0.5**4) * 0.25 * math.log(0.5)
    got = focal_center_loss(logits, heat, pos, gamma=2, delta=4, neg_scale=1 / 16)
    assert got.item() == pytest.approx(expect, rel=1e-6)


def test_focal_gradient_signs() -> None:
    t = _targets()
    logits = torch.zeros(1, 1, 6, 6, requires_grad=True)
    focal_center_loss(logits, t["center"], t["center_pos"]).backward()
    g = logits.grad[0, 0]
    assert torch.isfinite(g).all()
    assert g[2, 3] < 0  # raising the positive's logit lowers the loss
    assert g[0, 0] > 0  # raising a far negative's logit raises the loss
    assert abs(g[2, 2]) < abs(g[0, 0])  # negatives near a centre are down-weighted by (1 - Q)^delta


def test_crowdedness_factor_cap_and_integer() -> None:
    c = torch.tensor([1.0, 2.7, 10.0, 80.0])
    assert crowdedness_factor(c, eta=1.0, cap=50).tolist() == [1.0, 2.0, 10.0, 50.0]
    assert crowdedness_factor(c, eta=0.0, cap=None).tolist() == [1.0, 1.0, 1.0, 1.0]
    assert crowdedness_factor(c, eta=1.0, cap=None, integer=False)[1].item() == pytest.approx(2.7)


def test_size_loss_values_and_gradient() -> None:
    t = _targets()
    pred = torch.full((1, 1, 6, 6), math.log(3.0), requires_grad=True)
    plain = size_loss(pred, t["log_size"], t["size_mask"])
    d = abs(math.log(3.0) - math.log(6.0))  # 0.693 < beta=1
    assert plain.item() == pytest.approx(0.5 * d * d, rel=1e-5)
    plain.backward()
    g = pred.grad[0, 0]
    assert (g[1:4, 2:5] < 0).all()  # prediction too small: gradient pushes it up
    assert (g[0] == 0).all()  # unsupervised pixels get no gradient
    alpha = crowdedness_factor(t["crowdedness"])
    weighted = size_loss(pred.detach(), t["log_size"], t["size_mask"], alpha, norm="objects")
    assert weighted.item() == pytest.approx(3 * plain.item(), rel=1e-5)
    by_alpha = size_loss(pred.detach(), t["log_size"], t["size_mask"], alpha, norm="alpha")
    assert by_alpha.item() == pytest.approx(plain.item(), rel=1e-5)
    rel = size_loss(pred.detach(), t["log_size"], t["size_mask"], error="relative")
    r = d / math.log(6.0)
    assert rel.item() == pytest.approx(0.5 * r * r, rel=1e-5)


def test_csp_loss_terms_weights_and_errors() -> None:
    t = _targets()
    out = {"center_logits": torch.zeros(1, 1, 6, 6, requires_grad=True),
           "log_size": torch.zeros(1, 1, 6, 6, requires_grad=True)}
    crit = CSPLoss(center_weight=0.1, crowd_aware=True, neg_scale=1 / 16)
    losses = crit(out, t)
    assert set(losses) == {"center", "size", "loss"}
    assert losses["loss"].item() == pytest.approx(0.1 * losses["center"].item() + losses["size"].item(), rel=1e-6)
    losses["loss"].backward()
    assert all(torch.isfinite(v.grad).all() for v in out.values())
    with pytest.raises(KeyError, match="offset"):
        CSPLoss(use_offset=True)(out, {**t, "center_offset": torch.zeros(1, 2, 6, 6), "offset_mask": t["center_pos"]})
    with pytest.raises(ValueError, match="size_error"):
        CSPLoss(size_error="squared")
    with pytest.raises(KeyError, match="crowdedness"):
        CSPLoss(crowd_aware=True)(out, {k: v for k, v in t.items() if k != "crowdedness"})


def test_loss_name_assertion() -> None:
    class Broken(CSPLoss):
        def compute_terms(self, outputs, targets):  # noqa: ANN001, ANN202
            terms = super().compute_terms(outputs, targets)
            terms["extra"] = terms["size"] * 0
            return terms

    t = _targets()
    out = {"center_logits": torch.zeros(1, 1, 6, 6), "log_size": torch.zeros(1, 1, 6, 6)}
    with pytest.raises(AssertionError, match="extra"):
        Broken()(out, t)


def test_offset_loss_term() -> None:
    t = _targets()
    off_t = torch.zeros(1, 2, 6, 6)
    off_t[0, :, 2, 3] = torch.tensor([0.25, 0.75])
    out = {"center_logits": torch.zeros(1, 1, 6, 6), "log_size": torch.zeros(1, 1, 6, 6),
           "offset": torch.full((1, 2, 6, 6), 0.5)}
    losses = CSPLoss(use_offset=True, crowd_aware=False)(out, {**t, "center_offset": off_t, "offset_mask": t["center_pos"]})
    assert losses["offset"].item() == pytest.approx(0.5 * 0.25**2, rel=1e-6)
