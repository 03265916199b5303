"""Engine, loss base class, registry, backbones and device selection."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from crowdlib import engine
from crowdlib.device import autocast, pick_device
from crowdlib.losses.base import WeightedLoss
from crowdlib.models import build_backbone, list_backbones
from crowdlib.models.registry import build_model, list_models, register_model


class _MSE(WeightedLoss):
    def __init__(self, weight_dict, extra=False):
        super().__init__(weight_dict)
        self.extra = extra

    def compute_terms(self, outputs, targets):
        terms = {"mse": (outputs - targets["y"]).pow(2).mean()}
        if self.extra:
            terms["l1"] = (outputs - targets["y"]).abs().mean()
        return terms


def _loader(n=8, bad=False):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=g)
    y = x.sum(1, keepdim=True)
    if bad:
        y[0] = float("nan")
    return [{"image": x[i:i + 2], "y": y[i:i + 2]} for i in range(0, n, 2)]


def test_weighted_loss_sums_and_asserts_names():
    crit = _MSE({"mse": 2.0})
    out = crit(torch.zeros(2, 1), {"y": torch.ones(2, 1)})
    assert set(out) == {"mse", "loss"} and float(out["loss"]) == pytest.approx(2.0)
    with pytest.raises(AssertionError, match="do not match"):
        _MSE({"mse": 1.0}, extra=True)(torch.zeros(2, 1), {"y": torch.ones(2, 1)})
    with pytest.raises(ValueError, match="reserved"):
        _MSE({"loss": 1.0})


def test_train_one_epoch_reduces_loss_and_calls_hook():
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    seen = []
    first = engine.train_one_epoch(model, _MSE({"mse": 1.0}), _loader(), opt, torch.device("cpu"), 0,
                                   after_step=lambda o, b, s: seen.append(s), progress=False)
    for e in range(1, 20):
        last = engine.train_one_epoch(model, _MSE({"mse": 1.0}), _loader(), opt, torch.device("cpu"), e,
                                      progress=False)
    assert seen == [0, 1, 2, 3]
    assert last["loss"] < first["loss"] and last["images_per_s"] > 0 and last["steps"] == 4


def test_train_one_epoch_stops_on_non_finite_loss():
    model = nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(engine.NonFiniteLossError, match="epoch 5, step 0"):
        engine.train_one_epoch(model, _MSE({"mse": 1.0}), _loader(bad=True), opt, torch.device("cpu"), 5,
                               progress=False)


def test_evaluate_collects_postprocessed_results():
    model = nn.Linear(3, 1)
    res = engine.evaluate(model, _loader(), torch.device("cpu"), lambda out, b: list(out[:, 0].tolist()),
                          progress=False)
    assert len(res) == 8 and model.training


def test_registry_builds_and_rejects_unknown():
    @register_model("_toy_linear")
    def _build(cfg):
        return nn.Linear(cfg.get("n", 2), 1), _MSE({"mse": 1.0})

    model, crit = build_model({"model": "_toy_linear", "n": 4})
    assert model.in_features == 4 and isinstance(crit, WeightedLoss)
    assert "_toy_linear" in list_models()
    with pytest.raises(ValueError, match="unknown model"):
        build_model({"model": "nope"})
    with pytest.raises(ValueError, match="no 'model' key"):
        build_model({})


@pytest.mark.parametrize("name", ["tiny", "mobilenet_v2"])
def test_backbone_shapes(name):
    bb = build_backbone(name)
    feats = bb(torch.randn(1, 3, 64, 64))
    for k, v in feats.items():
        assert v.shape[1] == bb.out_channels[k] and v.shape[-1] == 64 // bb.strides[k]


def test_backbone_errors(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match="unknown backbone"):
        build_backbone("alexnet")
    with pytest.raises(ValueError, match="no pretrained"):
        build_backbone("tiny", pretrained=True)
    from crowdlib.models import backbones

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr(backbones.paths, "project_root", lambda: tmp_path)
    with pytest.raises(FileNotFoundError, match="never downloads"):
        build_backbone("mobilenet_v2", pretrained=True)
    assert set(list_backbones()) == {"tiny", "mobilenet_v2", "resnet50", "vgg16"}


def test_device_selection():
    assert pick_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert pick_device().type == "cpu"
        with pytest.raises(ValueError, match="not available"):
            pick_device("cuda")
    with autocast(torch.device("cpu")):
        assert torch.ones(1).dtype == torch.float32
