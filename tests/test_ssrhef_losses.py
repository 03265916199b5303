"""SSR-HEF losses: Dice (Eq. 2), the HEF factor in both forms (Eq. 4 / its text) with its gradient, the weighted
total (Eq. 5), the sum-pooled density target and the adaptive count classes (Table II)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from crowdlib.losses.ssrhef import (SSRHEFLoss, class_threshold, count_classes, dice_loss, hef_factor, hef_loss,
                                    sum_pool_to)


# ----------------------------------------------------------------------------------------------- Dice
def test_dice_perfect_disjoint_and_hand_computed():
    t = torch.tensor([[[[1.0, 1.0], [0.0, 0.0]]]])
    assert float(dice_loss(t.clone(), t)) == pytest.approx(0.0, abs=1e-6)
    assert float(dice_loss(1 - t, t)) == pytest.approx(1.0, abs=1e-5)
    p = torch.tensor([[[[1.0, 0.5], [0.0, 0.0]]]])
    # 1 - 2 (1 + 0.5) / ((1 + 0.25) + 2) = 1 - 3 / 3.25
    assert float(dice_loss(p, t)) == pytest.approx(1 - 3 / 3.25, abs=1e-6)
    empty = torch.zeros(1, 1, 3, 3)
    assert float(dice_loss(empty, empty)) == pytest.approx(0.0, abs=1e-6)  # nothing to find, nothing found
    batch = torch.cat([t, t]), torch.cat([t, 1 - t])
    assert float(dice_loss(batch[0], batch[1])) == pytest.approx(0.5, abs=1e-5)  # per image, then batch mean
    with pytest.raises(ValueError, match="differ"):
        dice_loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 3))


def test_seg_term_sums_the_three_scales():
    crit = SSRHEFLoss(num_classes=0, output_stride=8)
    labels = {f"seg{s}": torch.zeros(1, 1, 16 // s, 16 // s) for s in (2, 4, 8)}
    labels["seg2"][..., :4, :4] = 1
    labels["seg4"][..., :2, :2] = 1
    labels["seg8"][..., :1, :1] = 1
    big = 40.0  # sigmoid(+-40) is 0/1 to float precision
    perfect = [(2 * lab - 1) * big for lab in (labels["seg2"], labels["seg4"], labels["seg8"])]
    out = {"density": torch.zeros(1, 1, 2, 2), "seg": perfect}
    tg = {"density": torch.zeros(1, 1, 16, 16), **labels}
    assert float(crit(out, tg)["seg"]) == pytest.approx(0.0, abs=1e-5)
    out["seg"] = [-p for p in perfect]
    assert float(crit(out, tg)["seg"]) == pytest.approx(3.0, abs=1e-4)  # M = 3 disjoint scales


# ----------------------------------------------------------------------------------------------- HEF
def test_hef_factor_both_forms_by_hand():
    x = torch.tensor([0.0, math.log(3.0), -math.log(3.0)])  # sigmoid: 0.5, 0.75, 0.25
    assert torch.allclose(hef_factor(x, "text", 2.0), torch.tensor([0.25, 0.0625, 0.5625]))
    assert torch.allclose(hef_factor(x, "printed", 2.0), torch.tensor([0.25, 0.5625, 0.0625]))
    assert torch.allclose(hef_factor(x, "text", 0.0), torch.ones(3))  # gamma 0: plain L2
    assert torch.allclose(hef_factor(np.array([0.0]), "text"), torch.tensor([0.25]))  # arrays for notebooks
    # raw densities (~1e-2 per pixel): the factor is ~0.25 everywhere, i.e. a constant times L2
    assert torch.allclose(hef_factor(torch.full((4,), 1e-2)), torch.full((4,), 0.25), atol=0.003)
    with pytest.raises(ValueError, match="form"):
        hef_factor(x, "focal")
    with pytest.raises(ValueError, match="gamma"):
        hef_factor(x, "text", -1.0)


def test_hef_loss_value_by_hand():
    pred = torch.tensor([0.0, math.log(3.0)])
    gt = torch.tensor([1.0, 0.0])
    want_text = (0.25 * 1.0 + 0.0625 * math.log(3.0) ** 2) / 2
    want_printed = (0.25 * 1.0 + 0.5625 * math.log(3.0) ** 2) / 2
    assert float(hef_loss(pred, gt, "text")) == pytest.approx(want_text, rel=1e-6)
    assert float(hef_loss(pred, gt, "printed")) == pytest.approx(want_printed, rel=1e-6)


def test_hef_gradient_sign_detached_and_through_the_factor():
    gt = torch.tensor([0.0, 0.0, 2.0])
    for form in ("text", "printed"):
        pred = torch.tensor([0.5, 3.0, 0.0], requires_grad=True)
        hef_loss(pred, gt, form, detach=True).backward()
        # a weight without gradient: every pixel is pulled towards its target
        assert torch.equal(torch.sign(pred.grad), torch.sign(pred.detach() - gt))
        f = hef_factor(pred.detach(), form)
        assert torch.allclose(pred.grad, 2 * f * (pred.detach() - gt) / 3)
    pred = torch.tensor([0.5, 3.0, 0.0], requires_grad=True)
    hef_loss(pred, gt, "text", detach=False).backward()
    s = torch.sigmoid(pred.detach())
    e = pred.detach() - gt
    assert torch.allclose(pred.grad, 2 * (1 - s) ** 2 * e * (1 - s * e) / 3, atol=1e-7)
    # e = 3 > 1 / sigma(3): the gradient through (1 - sigma)^2 points up, inflating the over-prediction
    assert pred.grad[1] < 0 and pred.grad[0] > 0 and pred.grad[2] < 0


def test_sum_pool_keeps_the_count():
    d = torch.rand(2, 1, 20, 28)
    p = sum_pool_to(d, 8, (3, 4))
    assert p.shape == (2, 1, 3, 4)
    assert torch.allclose(p.sum((1, 2, 3)), d.sum((1, 2, 3)), rtol=1e-5)  # ceil grid: nothing lost
    assert torch.equal(sum_pool_to(d, 1, (20, 28)), d)
    with pytest.raises(ValueError, match="smaller"):
        sum_pool_to(d, 8, (4, 4))


def test_criterion_terms_weights_and_total():
    crit = SSRHEFLoss(num_classes=3, density_scale=10.0, output_stride=4)
    assert crit.weight_dict == {"hef": 1.0, "seg": 1e-2, "cls": 1e-3}
    torch.manual_seed(0)
    out = {"density": torch.randn(2, 1, 4, 4), "seg": [torch.randn(2, 1, 8, 8), torch.randn(2, 1, 4, 4),
                                                      torch.randn(2, 1, 2, 2)], "cls": torch.randn(2, 3)}
    tg = {"density": torch.rand(2, 1, 16, 16) / 100, "cls": torch.tensor([0, 2]),
          "seg2": torch.ones(2, 1, 8, 8), "seg4": torch.ones(2, 1, 4, 4), "seg8": torch.zeros(2, 1, 2, 2)}
    terms = crit(out, tg)
    gt = F.avg_pool2d(tg["density"], 4) * 16 * 10.0
    assert float(terms["hef"]) == pytest.approx(float(hef_loss(out["density"], gt)), rel=1e-6)
    assert float(terms["cls"]) == pytest.approx(float(F.cross_entropy(out["cls"], tg["cls"])), rel=1e-6)
    total = terms["hef"] + 1e-2 * terms["seg"] + 1e-3 * terms["cls"]
    assert float(terms["loss"]) == pytest.approx(float(total), rel=1e-6)
    l2 = SSRHEFLoss(use_hef=False, use_seg=False, num_classes=0, density_scale=10.0, output_stride=4)
    t2 = l2(out, tg)
    assert set(t2) == {"l2", "loss"} and float(t2["l2"]) == pytest.approx(float(F.mse_loss(out["density"], gt)))
    with pytest.raises(ValueError, match="hef_form"):
        SSRHEFLoss(hef_form="sigma")
    with pytest.raises(ValueError, match="cls"):
        SSRHEFLoss(num_classes=3, output_stride=4)({"density": out["density"], "seg": out["seg"]}, tg)


# ----------------------------------------------------------------------------------------------- classes
def test_class_threshold_reproduces_table_two():
    table2 = {3139: 209.3, 578: 38.5, 4543: 302.9, 12865: 857.7, 253: 16.9, 7286: 485.7}
    for cmax, thr in table2.items():
        assert round(class_threshold([0, cmax / 2, cmax], 15), 1) == thr


def test_count_classes_paper_example_and_edges():
    thr = class_threshold([0, 12, 30], 3)  # "from 0 to 30 ... three classes. Thr = 10"
    assert thr == 10.0
    got = count_classes([0, 5, 9.9, 10, 15, 25, 30], thr, 3)
    assert got.tolist() == [0, 0, 0, 1, 1, 2, 2]  # the maximum count falls into the last class
    assert got.dtype == np.int64 and count_classes(45, thr, 3).ndim == 0 and int(count_classes(45, thr, 3)) == 2
    with pytest.raises(ValueError, match="0 disables"):
        class_threshold([3, 4], 0)
    with pytest.raises(ValueError, match="positive"):
        class_threshold([0, 0], 5)
    with pytest.raises(ValueError, match="thr"):
        count_classes([1], 0.0, 3)
    with pytest.raises(ValueError, match=">= 0"):
        count_classes([-1], 2.0, 3)
