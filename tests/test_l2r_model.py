"""The L2R counting network: VGG-16 to conv5_3 gives a 14 x 14 map on a 224 x 224 input; the registry builds the
network and its criterion; bad head kernels and batch-norm modes are refused."""
from __future__ import annotations

import pytest
import torch

from crowdlib.losses.l2r import L2RLoss
from crowdlib.methods.l2r.config import make_config
from crowdlib.models.l2r import L2RNet, resolve_freeze_bn
from crowdlib.models.registry import build_model


def test_vgg16_gives_a_14_by_14_map_on_224_inputs():
    torch.manual_seed(0)
    net = L2RNet("vgg16", pretrained=False).eval()
    with torch.no_grad():
        out = net(torch.randn(1, 3, 224, 224))["density"]
    assert out.shape == (1, 1, 14, 14)
    convs = [m for m in net.trunk.modules() if isinstance(m, torch.nn.Conv2d)]
    pools = [m for m in net.trunk.modules() if isinstance(m, torch.nn.MaxPool2d)]
    assert len(convs) == 13 and len(pools) == 4  # conv1_1 .. conv5_3, four poolings (pool5 dropped)
    assert net.head.in_channels == 512 and net.head.kernel_size == (3, 3) and net.head.out_channels == 1


@pytest.mark.parametrize("backbone", ["mobilenet_v2", "tiny"])
def test_other_backbones_have_stride_16(backbone):
    net = L2RNet(backbone, pretrained=False).eval()
    with torch.no_grad():
        assert net(torch.randn(2, 3, 128, 128))["density"].shape == (2, 1, 8, 8)


def test_registry_builds_model_and_criterion():
    model, crit = build_model({"model": "l2r", "backbone": "tiny", "pretrained": False, "lam": 0.3, "margin": 0.1,
                               "density_relu": True})
    assert isinstance(model, L2RNet) and isinstance(crit, L2RLoss)
    assert crit.weight_dict == {"count": 1.0, "rank": 0.3} and crit.margin == 0.1
    with torch.no_grad():
        assert (model(torch.randn(1, 3, 64, 64))["density"] >= 0).all()
    with pytest.raises(ValueError, match="head_kernel"):
        L2RNet("tiny", pretrained=False, head_kernel=2)


def test_freeze_bn_pretrained_freezes_only_imagenet_initialised_networks():
    """``"pretrained"`` (the default) resolves to the initialisation; True / False force it; anything else is named."""
    assert [resolve_freeze_bn("pretrained", p) for p in (True, False)] == [True, False]
    assert [resolve_freeze_bn(f, p) for f in (True, False) for p in (True, False)] == [True, True, False, False]
    assert L2RNet("tiny", pretrained=False).freeze_bn is False
    assert L2RNet("tiny", pretrained=False, freeze_bn=True).freeze_bn is True
    for bad in ("yes", "imagenet", 2, None):
        with pytest.raises(ValueError, match="freeze_bn"):
            resolve_freeze_bn(bad, True)
    with pytest.raises(ValueError, match="freeze_bn"):
        make_config(freeze_bn="always")


@pytest.mark.parametrize("freeze_bn", [True, False])
def test_frozen_batch_norm_keeps_nests_from_changing_the_labelled_outputs(freeze_bn):
    """A multi-task mini-batch holds labelled crops and a nest. With ``freeze_bn`` (eval-mode batch norm in
    training) the labelled crops' maps do not depend on what else is in the batch, so ``lambda = 0`` trains as
    counting only; in training-mode batch norm the nest changes them (the batch effect measured on validation)."""
    torch.manual_seed(0)
    net = L2RNet("tiny", pretrained=False, freeze_bn=freeze_bn)
    with torch.no_grad():  # non-trivial running statistics, as ImageNet's would be
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    net.train()
    labelled, nest = torch.randn(4, 3, 64, 64), 2.0 + torch.randn(5, 3, 64, 64)
    alone = net(labelled)["density"]
    mixed = net(torch.cat([labelled, nest]))["density"][:4]
    assert torch.allclose(alone, mixed, atol=1e-5) is freeze_bn
    bn = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert all(not m.training for m in bn) is freeze_bn  # train() leaves them in eval mode when frozen
    assert net.training
