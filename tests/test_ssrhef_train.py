"""SSR-HEF recipe: config validation, the paper's patch sampling, per-crop targets, whole-image prediction,
deterministic training with validation-based selection, and the cache."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from crowdlib.data.records import CrowdRecord
from crowdlib.methods import ssrhef
from crowdlib.models.ssrhef import build_ssr_hef
from crowdlib.targets.density import density_map
from crowdlib.targets.ssr import ssr_labels

torch.set_num_threads(1)
DATA = {"kind": "synthetic", "presets": ["shb_like"], "n": 5, "seed": 3, "height": 64, "width": 96}
TINY = {"width": 0.25, "num_classes": 4, "steps": 6, "eval_every": 3, "val_fraction": 0.2, "data": DATA}


def _record(h: int = 48, w: int = 64, n: int = 6, seed: int = 0) -> CrowdRecord:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    pts = np.stack([rng.uniform(0, w, n), rng.uniform(0, h, n)], 1).astype(np.float32)
    return CrowdRecord(image_id=f"r{seed}", points=pts, image=img)


# ----------------------------------------------------------------------------------------------- config
def test_make_config_validates_keys_and_choices():
    cfg = ssrhef.make_config()
    assert cfg["lr"] == 3e-5 and cfg["batch_size"] == 1 and cfg["patch_counts"] == [9, 4, 1]  # Sec. IV
    assert cfg["w_seg"] == 1e-2 and cfg["w_cls"] == 1e-3 and cfg["gamma"] == 2.0 and cfg["num_classes"] == 15
    assert cfg["threads"] == 1
    with pytest.raises(ValueError, match="unknown config key"):
        ssrhef.make_config(learning_rate=1e-3)
    with pytest.raises(ValueError, match="hef_form"):
        ssrhef.make_config(hef_form="focal")
    with pytest.raises(ValueError, match="batch_size=1"):
        ssrhef.make_config(batch_size=4)
    assert ssrhef.make_config(sampling="random_crop", batch_size=4)["batch_size"] == 4
    merged = ssrhef.make_config(data={"n": 3})
    assert merged["data"]["n"] == 3 and merged["data"]["presets"] == ["shb_like"]
    assert ssrhef.make_config(data={"kind": "vgg_cells", "root": "x"})["data"] == {"kind": "vgg_cells", "root": "x"}


# ----------------------------------------------------------------------------------------------- sampling
def test_patch_transform_sizes_points_flip_and_noise():
    rec = _record(64, 96, n=40)
    g = torch.Generator().manual_seed(5)
    plain = ssrhef.PatchTransform(0.25, flip_p=0.0, noise_p=0.0)
    out = plain(rec.image, rec.points, None, g)
    assert out["image"].shape == (3, 16, 24)  # 1/16 of the area, sides multiples of 8
    x0, y0 = out["offset"]
    src = torch.from_numpy(rec.image[int(y0):int(y0) + 16, int(x0):int(x0) + 24]).permute(2, 0, 1).float() / 255
    assert torch.allclose(out["image"], src)
    inside = [(x - x0, y - y0) for x, y in rec.points if 0 <= x - x0 < 24 and 0 <= y - y0 < 16]
    assert np.allclose(sorted(map(tuple, out["points"].tolist())), sorted(inside), atol=1e-5) and len(inside) > 0
    flipped = ssrhef.PatchTransform(0.25, flip_p=1.0, noise_p=0.0)(rec.image, rec.points, None,
                                                                   torch.Generator().manual_seed(5))
    assert torch.allclose(flipped["image"], out["image"].flip(-1)) and flipped["flip"]
    assert torch.allclose(flipped["points"][:, 0], 24 - out["points"][:, 0])
    noisy = ssrhef.PatchTransform(0.25, flip_p=0.0, noise_p=1.0, noise_std=0.1)(rec.image, rec.points, None,
                                                                                torch.Generator().manual_seed(5))
    assert 0.05 < float((noisy["image"] - out["image"]).std()) < 0.15
    assert ssrhef.PatchTransform(1.0).patch_size(60, 70) == (56, 64)
    assert ssrhef.PatchTransform(crop=32)(rec.image[:20], rec.points, None, g)["image"].shape == (3, 32, 32)  # padded
    with pytest.raises(ValueError, match="multiple"):
        ssrhef.PatchTransform(crop=30)


def test_paper_epoch_has_nine_four_one_patches_per_image():
    cfg = ssrhef.make_config(num_classes=0)
    ds = ssrhef.train_dataset([_record(64, 96, seed=0), _record(64, 96, seed=1)], cfg, None)
    assert len(ds) == 2 * 14
    sizes = [tuple(ds[(i, 7)]["image"].shape[-2:]) for i in range(14)]
    assert sizes.count((16, 24)) == 9 and sizes.count((32, 48)) == 4 and sizes.count((64, 96)) == 1
    crops = ssrhef.train_dataset([_record(64, 96)], ssrhef.make_config(sampling="random_crop", crop=32,
                                                                      num_classes=0), None)
    assert len(crops) == 1 and crops[(0, 1)]["image"].shape == (3, 32, 32)


# ----------------------------------------------------------------------------------------------- targets
def test_targets_density_segmentation_labels_and_class():
    pts = torch.tensor([[5.5, 6.5], [30.2, 20.7], [31.0, 22.0]])
    sample = {"image": torch.zeros(3, 32, 40), "points": pts, "orig_size": (64, 80)}
    tg = ssrhef.SSRHEFTargets(density_sigma=2.0, num_classes=4, thr=1.0)(sample)
    assert tg["density"].shape == (1, 32, 40) and float(tg["density"].sum()) == pytest.approx(3.0, rel=1e-4)
    assert torch.allclose(tg["density"][0], torch.from_numpy(density_map(pts.numpy(), (32, 40), sigma=2.0)))
    want = ssr_labels(pts.numpy(), (32, 40), template=15)
    for s, hw in ((2, (16, 20)), (4, (8, 10)), (8, (4, 5))):
        assert tg[f"seg{s}"].shape == (1, *hw) and tg[f"seg{s}"].dtype == torch.float32
        assert np.array_equal(tg[f"seg{s}"][0].numpy(), want[s])
    assert int(tg["cls"]) == 3  # floor(3 / 1) = 3 = K - 1
    area = ssrhef.SSRHEFTargets(num_classes=15, thr=10.0, thr_mode="area")(sample)
    assert int(area["cls"]) == 1  # a quarter of the image: Thr 2.5, floor(3 / 2.5) = 1
    bare = ssrhef.SSRHEFTargets(use_seg=False, num_classes=0)(sample)
    assert set(bare) == {"density"}  # K = 0 and no SSR: density only
    with pytest.raises(ValueError, match="threshold"):
        ssrhef.SSRHEFTargets(num_classes=15, thr=None)


def test_load_records_kinds_and_errors():
    recs = ssrhef.load_records(DATA)
    test = ssrhef.load_records(DATA, "test")
    assert len(recs) == 5 and len(test) == 5 and recs[0].image.shape == (64, 96, 3)
    assert not any(np.array_equal(a.points, b.points) for a, b in zip(recs, test))
    assert len(ssrhef.load_records({**DATA, "limit": 2})) == 2
    with pytest.raises(ValueError, match="unknown data kind"):
        ssrhef.load_records({"kind": "ucf"})
    with pytest.raises(ValueError, match="root"):
        ssrhef.load_records({"kind": "vgg_cells"})
    with pytest.raises(ValueError, match="split"):
        ssrhef.load_records(DATA, "val")


def test_vgg_cells_records(shared_root):
    root = shared_root / "data" / "cells" / "vgg_cells"
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    tr = ssrhef.load_records({"kind": "vgg_cells", "root": str(root), "n_train": 32})
    te = ssrhef.load_records({"kind": "vgg_cells", "root": str(root)}, "test")
    assert len(tr) == 32 and len(te) == 100 and {r.image_id for r in tr}.isdisjoint(r.image_id for r in te)
    model, _ = build_ssr_hef({"width": 0.25, "num_classes": 0})
    maps, counts = ssrhef.predict_density(model, te[:1])
    h, w = te[0].load_image().shape[:2]
    assert maps[0].shape == (-(-h // 8), -(-w // 8)) and np.isfinite(counts).all()


# ----------------------------------------------------------------------------------------------- inference
def test_predict_density_pads_and_counts_are_map_sums():
    model, _ = build_ssr_hef({"width": 0.25, "num_classes": 0, "density_scale": 10.0})
    assert model.density_scale == 10.0
    recs = [_record(60, 70, seed=0), _record(32, 40, seed=1)]
    maps, counts = ssrhef.predict_density(model, recs)
    assert [m.shape for m in maps] == [(8, 9), (4, 5)]
    with torch.no_grad():
        raw = model(ssrhef.image_tensor(recs[1].image))["density"][0, 0].numpy()
    assert np.allclose(maps[1], raw / 10.0, atol=1e-6) and counts[1] == pytest.approx(float(maps[1].sum()))
    res = ssrhef.evaluate_model(model, recs, counts=[6.0, 8.0])
    assert res["mae"] == pytest.approx(1.0) and res["mse"] == pytest.approx(np.sqrt(2.0))  # MSE = RMSE
    with pytest.raises(ValueError, match="counts"):
        ssrhef.evaluate_model(model, recs, counts=[1.0])


# ----------------------------------------------------------------------------------------------- training
def test_train_is_deterministic_and_selects_on_validation():
    recs = ssrhef.load_records(DATA)
    a = ssrhef.train_ssrhef(TINY, progress=False, records=recs)
    b = ssrhef.train_ssrhef(TINY, progress=False, records=recs)
    assert a["model"].keys() == b["model"].keys()
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    c = ssrhef.train_ssrhef({**TINY, "seed": 1}, progress=False, records=recs)
    assert not all(torch.equal(a["model"][k], c["model"][k]) for k in a["model"])
    assert [h["step"] for h in a["history"]] == [3, 6]
    assert {"loss", "loss_hef", "loss_seg", "loss_cls", "val_mae", "val_mse"} <= set(a["history"][0])
    assert a["best_val"]["mae"] == min(h["val_mae"] for h in a["history"])
    assert a["best_step"] in (3, 6) and a["n_train"] == 4 and a["n_val"] == 1 and a["n_patches"] == 4 * 14
    train_recs, _ = ssrhef.split_records(recs, ssrhef.make_config(**TINY))
    assert a["class_thr"] == pytest.approx(max(r.count for r in train_recs) / 4)
    last = ssrhef.train_ssrhef({**TINY, "select": "last", "use_hef": False, "use_ssr": False}, progress=False,
                               records=recs)
    assert last["best_step"] == 6 and "loss_l2" in last["history"][0] and "loss_seg" not in last["history"][0]


def test_get_or_train_caches_under_the_test_cache_dir(tmp_path):
    cfg = {**TINY, "steps": 2, "eval_every": 2, "num_classes": 0}
    first = ssrhef.get_or_train_ssrhef(cfg, progress=False)
    files = list((tmp_path / "cache" / "ssrhef").glob("*.pt"))
    assert len(files) == 1  # conftest points CROWDLIB_CACHE at this test's tmp_path
    again = ssrhef.get_or_train_ssrhef(cfg, progress=False)
    assert all(torch.equal(first["model"][k], again["model"][k]) for k in first["model"])
    model = ssrhef.load_trained(cfg, again)
    assert not model.training and model.cls_fc is None
    res = ssrhef.evaluate_model(model, ssrhef.load_records(DATA, "test")[:2])
    assert np.isfinite(res["mae"]) and res["n_images"] == 2
    with pytest.raises(ValueError, match="at least 2"):
        ssrhef.train_ssrhef(cfg, progress=False, records=ssrhef.load_records(DATA)[:1])


def test_shanghaitech_b_records_patches_and_whole_image_prediction(shared_root):
    root = shared_root / "data" / "ShanghaiTech"
    if not (root / "part_B").is_dir():
        pytest.skip(f"{root / 'part_B'} is absent")
    recs = ssrhef.load_records({"kind": "shanghaitech", "root": str(root), "part": "B", "limit": 2})
    assert len(recs) == 2 and recs[0].image_size == (768, 1024)
    thr = ssrhef.class_threshold([r.count for r in recs], 15)
    ds = ssrhef.train_dataset(recs, ssrhef.make_config(), thr)
    small = ds[(0, 3)]  # the first patch of the first image: 1/16 of its area
    assert small["image"].shape == (3, 192, 256) and small["seg8"].shape == (1, 24, 32)
    assert 0 <= int(small["cls"]) < 15
    model, _ = build_ssr_hef({"width": 0.25, "num_classes": 0})
    maps, counts = ssrhef.predict_density(model, recs[:1])
    assert maps[0].shape == (96, 128) and np.isfinite(counts[0])
