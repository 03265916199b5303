"""Crowd-SDNet integration pieces: target builder reads the store, refinement undoes the augmentation scale."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from crowdlib.data.datasets import CrowdDataset, collate_crowd
from crowdlib.data.records import CrowdRecord
from crowdlib.data.transforms import TrainTransform
from crowdlib.methods.sdnet import (PseudoBoxStore, Refiner, SDNetTargets, choose_threshold, decode_csp,
                                    merge_config, sdnet_prepare_batch)


def _record() -> CrowdRecord:
    img = np.zeros((32, 32, 3), np.uint8)
    pts = np.array([[8.0, 8.0], [20.0, 10.0], [12.0, 24.0]], np.float32)
    return CrowdRecord("toy", pts, image=img)


def _store(rec: CrowdRecord) -> PseudoBoxStore:
    return PseudoBoxStore([rec.points], [np.array([4.0, 6.0, 8.0], np.float32)], [np.array([1.0, 2.0, 20.0])])


def test_targets_follow_store_and_scale() -> None:
    rec = _record()
    store = _store(rec)
    ds = CrowdDataset([rec], SDNetTargets(store, stride=1, window=3), TrainTransform(None, (2.0, 2.0), flip=True,
                                                                                     color_jitter=0.0,
                                                                                     grayscale_p=0.0))
    s = ds[(0, 1)]
    assert s["center"].shape == (1, 64, 64) and s["center_pos"].sum() == 3
    pts = s["points"].numpy()
    c, r = int(pts[2, 0]), int(pts[2, 1])
    assert s["log_size"][0, r, c].item() == pytest.approx(math.log(16.0))  # 8 px at scale 2
    assert s["crowdedness"][0, r, c].item() == 20.0 and s["size_mask"][0, r, c].item() == 1.0
    store.sizes[0][2] = 5.0  # refinement changes the next sample's targets
    assert ds[(0, 1)]["log_size"][0, r, c].item() == pytest.approx(math.log(10.0))


def test_refiner_maps_sizes_back_and_respects_confidence() -> None:
    rec = _record()
    store = _store(rec)
    ds = CrowdDataset([rec], SDNetTargets(store, stride=1, window=3),
                      TrainTransform(None, (2.0, 2.0), flip=True, color_jitter=0.0, grayscale_p=0.0))
    batch = collate_crowd([ds[(0, 3)]])
    inputs, targets = sdnet_prepare_batch(batch, torch.device("cpu"))
    assert inputs.shape == (1, 3, 64, 64) and set(targets) >= {"center", "log_size", "size_mask", "crowdedness"}
    prob = torch.full((1, 1, 64, 64), 0.2)
    pts = batch["points"][0]
    keep = batch["keep"][0]
    head0 = int(torch.nonzero(keep == 0)[0])
    prob[0, 0, int(pts[head0, 1]), int(pts[head0, 0])] = 0.9  # only head 0 is confident
    outputs = {"center_logits": torch.log(prob / (1 - prob)), "log_size": torch.full((1, 1, 64, 64), math.log(24.0))}
    ref = Refiner(store, stride=1, rule="paper")
    ref.epoch = 2
    ref(outputs, batch, step=5)
    assert store.sizes[0].tolist() == [12.0, 6.0, 8.0]  # 24 px in the x2 crop = 12 px in the image
    assert store.confidence[0][0] == pytest.approx(0.9) and store.confidence[0][1] == pytest.approx(0.6)
    assert store.history()[0, :4].tolist() == [2, 5, 0, 0]
    ref(outputs, batch, step=6)  # same posterior again: no update (needs posterior > stored)
    assert len(store.history()) == 1
    ref.active = False
    prob[:] = 0.99
    ref({"center_logits": torch.log(prob / (1 - prob)), "log_size": outputs["log_size"]}, batch, 7)
    assert len(store.history()) == 1


def test_decode_and_threshold() -> None:
    prob = torch.full((1, 1, 16, 16), 0.01)
    prob[0, 0, 4, 5] = 0.9
    prob[0, 0, 10, 10] = 0.3
    out = {"center_logits": torch.log(prob / (1 - prob)), "log_size": torch.full((1, 1, 16, 16), math.log(4.0))}
    (d,) = decode_csp(out, stride=1, min_score=0.1)
    np.testing.assert_allclose(d["points"][0], [5.5, 4.5])
    np.testing.assert_allclose(d["boxes"][0], [3.5, 2.5, 7.5, 6.5], atol=1e-5)
    np.testing.assert_allclose(d["scores"], [0.9, 0.3], atol=1e-6)
    thr = choose_threshold([np.array([0.9, 0.3]), np.array([0.8])], [1, 1])
    assert 0.3 <= thr < 0.8  # counts are detections with score > threshold


def test_merge_config_is_recursive() -> None:
    base = {"a": {"b": 1, "c": 2}, "d": 3}
    assert merge_config(base, {"a": {"b": 5}}) == {"a": {"b": 5, "c": 2}, "d": 3}
    assert base["a"]["b"] == 1
