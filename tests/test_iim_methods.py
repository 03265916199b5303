"""IIM recipes: instance-map round trip, component decoding, targets, scoring, training smoke, widget callbacks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from crowdlib.data.records import CrowdRecord
from crowdlib.data.synthetic import render_scene
from crowdlib.methods import iim
from crowdlib.repro import load_checkpoint, save_checkpoint
from crowdlib.targets.instance import instance_map_from_boxes

torch.set_num_threads(1)
TINY = {"fpn_channels": 8, "head_channels": 4, "pbm_widths": [8, 8, 4], "pbm_pool": 3, "crop": 64, "batch_size": 2,
        "data": {"kind": "synthetic", "presets": ["crowd_b"], "n": 4, "seed": 3, "height": 64, "width": 64},
        "val_fraction": 0.25, "steps": 2, "eval_every": 1}


def test_instance_map_decodes_to_one_component_per_surviving_head():
    rec = render_scene("crowd_a", seed=0, index=1)
    inst, kept = instance_map_from_boxes(rec.points, rec.boxes, rec.image.shape[:2], return_kept=True)
    pts = iim.decode_components(inst, min_area=1)
    assert len(pts) == int(kept.sum()) > 20
    # every decoded centroid lies within half a pixel of a kept head's pixel block: match each to its nearest head
    heads = rec.points[kept]
    d = np.linalg.norm(pts[:, None, :] - (np.floor(heads) + 0.5)[None], axis=2)
    assert len(set(d.argmin(1).tolist())) == len(pts)


def test_components_on_hand_made_masks():
    m = np.zeros((6, 8), bool)
    m[0:2, 0:2] = True  # 4 px square -> centroid (1, 1)
    m[2, 2] = True  # touches the square only diagonally: separate 4-connected component of 1 px
    m[4, 4:7] = True  # 3 px bar -> centroid (5.5, 4.5)
    pts = iim.decode_components(m, min_area=1)
    assert sorted(map(tuple, pts.round(3).tolist())) == [(1.0, 1.0), (2.5, 2.5), (5.5, 4.5)]
    pts3 = iim.decode_components(m, min_area=3)
    assert sorted(map(tuple, pts3.round(3).tolist())) == [(1.0, 1.0), (5.5, 4.5)]
    assert iim.decode_components(np.zeros((4, 4), bool)).shape == (0, 2)
    maps = {"confidence": np.where(m, 0.6, 0.1).astype(np.float32), "threshold": np.full(m.shape, 0.65, np.float32)}
    assert len(iim.decode_iim(maps, threshold=0.5, min_area=1)) == 3
    assert len(iim.decode_iim(maps, threshold=None, min_area=1)) == 0  # learned map 0.65 is above every confidence


def test_targets_kinds_and_points_fallback():
    pts = torch.tensor([[10.5, 10.5], [30.5, 20.5]])
    sample = {"image": torch.zeros(3, 40, 50), "points": pts, "boxes": torch.tensor([[6.0, 6, 15, 15], [26, 16, 35, 25]]),
              "scale": 1.0}
    inst = iim.IIMTargets("instance")(sample)["instance"]
    assert inst.shape == (1, 40, 50) and len(iim.decode_components(inst[0].numpy(), 1)) == 2
    no_boxes = dict(sample, boxes=torch.zeros((0, 4)))
    inst2 = iim.IIMTargets("instance", point_size=8.0)(no_boxes)["instance"]
    assert inst2.sum() > 0 and len(iim.decode_components(inst2[0].numpy(), 1)) == 2
    dens = iim.IIMTargets("density", density_sigma=2.0)(sample)["density"]
    assert dens.shape == (1, 40, 50) and float(dens.sum()) == pytest.approx(2.0, rel=1e-4)
    dot = iim.IIMTargets("dotmap", dot_radius=1)(sample)["dotmap"]
    assert float(dot.sum()) == 10.0
    with pytest.raises(ValueError, match="kind"):
        iim.IIMTargets("boxes")


def test_score_points_and_baseline_decoding():
    boxes = np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)
    rec = CrowdRecord("r", points=np.array([[5, 5], [25, 25]], np.float32), boxes=boxes, image_size=(40, 40))
    s = iim.score_points([rec], [np.array([[6.0, 5.0], [39.0, 39.0]])])
    assert (s["pre"], s["rec"]) == (0.5, 0.5) and s["mae"] == 0.0
    s2 = iim.score_points([rec], [np.zeros((0, 2))], counts=[3.0])
    assert s2["f1"] == 0.0 and s2["mae"] == 1.0
    dmap = np.zeros((40, 40), np.float32)
    dmap[5, 5], dmap[25, 25] = 50.0, 150.0
    pts, count = iim.decode_baseline("iim_density", {"map": dmap}, {"threshold": 100.0, "window": 3}, density_scale=100.0)
    assert pts.tolist() == [[25.5, 25.5]] and count == pytest.approx(2.0)
    pts, count = iim.decode_baseline("iim_dotmap", {"map": dmap / 200}, {"threshold": 0.2})
    assert count == 2.0
    with pytest.raises(ValueError, match="sigmas or head boxes"):
        iim.gt_for_scoring(CrowdRecord("p", points=np.zeros((1, 2), np.float32)))


def test_make_config_errors_and_merge():
    cfg = iim.make_config(data={"n": 5})
    assert cfg["data"]["n"] == 5 and cfg["data"]["kind"] == "synthetic"
    with pytest.raises(ValueError, match="unknown config key"):
        iim.make_config(not_a_key=1)
    with pytest.raises(ValueError, match="data kind"):
        iim.load_records({"kind": "nope"})


@pytest.mark.parametrize("model,encoder", [("iim", "pbm"), ("iim_density", "none")])
def test_train_smoke_checkpointable_and_deterministic(model, encoder):
    cfg = iim.make_config(model=model, encoder=encoder, **TINY)
    a = iim.train_iim(cfg, progress=False, device="cpu")
    # one validation point per step; a model with a threshold module also records its start (step 0)
    assert a["steps"] == 2 and len(a["history"]) == 2 + (encoder != "none") and a["images_per_s"] > 0
    assert set(a["best_val"]) == {"f1", "pre", "rec", "mae", "mse"}
    if model == "iim_density":
        assert set(a["decode"]) == {"threshold", "window"}
    b = iim.train_iim(cfg, progress=False, device="cpu")
    for k in a["model"]:
        torch.testing.assert_close(a["model"][k], b["model"][k])
    m = iim.load_trained(cfg, a, device="cpu")
    test = iim.load_records(cfg["data"], "test")[:2]
    ev = iim.evaluate_model(m, cfg, test, decode=a["decode"])
    assert 0.0 <= ev["f1"] <= 1.0 and len(ev["points"]) == 2


def test_train_result_roundtrips_through_checkpoint(tmp_path):
    cfg = iim.make_config(model="iim", encoder="ibm", **dict(TINY, steps=1, eval_every=1))
    res = iim.train_iim(cfg, progress=False, device="cpu")
    save_checkpoint(tmp_path / "r.pt", res)
    back = load_checkpoint(tmp_path / "r.pt")
    assert back["steps"] == 1 and set(back["model"]) == set(res["model"])


def test_warm_start_loads_predictor_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("CROWDLIB_CACHE", str(tmp_path))
    trunk = iim.make_config(encoder="none", select="last", **dict(TINY, steps=1))
    cfg = iim.make_config(encoder="pbm", init=trunk, sched_offset=1, **dict(TINY, steps=1))
    res = iim.get_or_train_iim(cfg, progress=False, device="cpu")
    assert res["steps"] == 1 and any(p.name == "iim" for p in tmp_path.iterdir())
    assert len(list((tmp_path / "iim").glob("*.pt"))) == 2  # the trunk is cached too


def test_threshold_stats():
    maps = [{"confidence": np.array([[0.9, 0.1]]), "threshold": np.array([[0.3, 0.6]])}]
    s = iim.threshold_stats(maps, [np.array([[1, 0]])])
    assert s == {"thr_fg": 0.3, "thr_bg": 0.6, "conf_fg": 0.9, "conf_bg": 0.1}


def test_widget_callbacks_update_state():
    pytest.importorskip("ipywidgets")
    from crowdlib.widgets_iim import ThresholdExplorer, explore_state

    boxes = np.array([[0, 0, 8, 8], [12, 12, 20, 20]], np.float32)
    rec = CrowdRecord("w", points=np.array([[4, 4], [16, 16]], np.float32), boxes=boxes,
                      image=np.zeros((24, 24, 3), np.uint8))
    conf = np.zeros((24, 24), np.float32)
    conf[2:7, 2:7] = 0.9
    conf[14:19, 14:19] = 0.4
    thr = np.full((24, 24), 0.3, np.float32)
    ex = ThresholdExplorer([rec], [{"confidence": conf, "threshold": thr}], threshold=0.5, draw=False)
    assert ex.state["count"] == 1 and ex.state["rec"] == 0.5
    ex.threshold.value = 0.35
    assert ex.state["count"] == 2 and ex.state["f1"] == 1.0
    ex.threshold.value = 0.95
    assert ex.state["count"] == 0
    ex.mode.value = "learned"
    assert ex.state["count"] == 2 and ex.threshold.disabled
    ex.min_area.value = 26
    assert ex.state["count"] == 0
    assert "count 0" in ex.summary.value
    with pytest.raises(ValueError, match="mode"):
        explore_state(rec, {"confidence": conf}, mode="local")
