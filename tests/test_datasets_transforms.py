"""CrowdDataset, transforms, collation and loaders: alignment, determinism, inverse mapping."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from crowdlib.data.datasets import (CrowdDataset, collate_crowd, denormalize, make_loader, normalize,
                                    split_train_val)
from crowdlib.data.records import CrowdRecord
from crowdlib.data.synthetic import SyntheticCrowds
from crowdlib.data.transforms import IMAGENET_MEAN, EvalTransform, TrainTransform, unmap_boxes, unmap_points

torch.set_num_threads(1)


def dot_record(h: int = 90, w: int = 110, n: int = 12, seed: int = 0) -> CrowdRecord:
    """A black image with a white 5x5 dot at each point; boxes are the dots' extents."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(3, h - 3, n)
    cols = rng.integers(3, w - 3, n)
    img = np.zeros((h, w, 3), np.uint8)
    for r, c in zip(rows, cols):
        img[r - 2:r + 3, c - 2:c + 3] = 255
    pts = np.stack([cols + 0.5, rows + 0.5], 1)
    boxes = np.stack([cols - 2, rows - 2, cols + 3, rows + 3], 1)
    return CrowdRecord("dots", points=pts, image=img, boxes=boxes)


@pytest.mark.parametrize("seed", range(6))
def test_points_and_boxes_follow_the_image(seed):
    rec = dot_record(seed=seed)
    tr = TrainTransform(64, scale_range=(0.7, 1.5), flip=True, color_jitter=0.0, grayscale_p=0.0)
    out = tr(rec.image, rec.points, rec.boxes, torch.Generator().manual_seed(seed))
    img = out["image"]
    assert img.shape == (3, 64, 64)
    pts = out["points"]
    for x, y in pts.tolist():
        assert img[0, int(y), int(x)] > 0.5, (x, y)
    # box centres stay on the points when the box is not clipped
    b = out["boxes"]
    inside = (b[:, 0] > 0) & (b[:, 1] > 0) & (b[:, 2] < 64) & (b[:, 3] < 64)
    centres = torch.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], 1)
    assert torch.allclose(centres[inside], pts[inside], atol=1e-4)
    # the record maps back to the original image
    back = unmap_points(pts, out)
    np.testing.assert_allclose(back, rec.points[out["keep"].numpy()], atol=1e-4)
    bb = unmap_boxes(b[inside], out)
    np.testing.assert_allclose(bb, rec.boxes[out["keep"].numpy()][inside.numpy()], atol=1e-4)
    # dropped points were outside the crop
    assert len(out["keep"]) == len(pts) == len(b)


def test_flip_and_scale_hand_computed():
    rec = CrowdRecord("one", points=[[10.0, 20.0]], image=np.zeros((40, 50, 3), np.uint8),
                      boxes=[[8.0, 18.0, 12.0, 22.0]])
    tr = TrainTransform(None, scale_range=(2.0, 2.0), flip=True, color_jitter=0.0, grayscale_p=0.0)
    for s in range(20):
        out = tr(rec.image, rec.points, rec.boxes, torch.Generator().manual_seed(s))
        assert out["image"].shape == (3, 80, 100) and out["scale"] == 2.0
        if out["flip"]:
            assert out["points"].tolist() == [[100 - 20.0, 40.0]]
            assert out["boxes"].tolist() == [[100 - 24.0, 36.0, 100 - 16.0, 44.0]]
            break
    else:
        pytest.fail("no flip in 20 seeds")


def test_pad_when_image_smaller_than_crop():
    rec = dot_record(h=30, w=40, n=5)
    tr = TrainTransform((48, 64), scale_range=(1.0, 1.0), flip=False, color_jitter=0.0, grayscale_p=0.0)
    out = tr(rec.image, rec.points, rec.boxes, torch.Generator().manual_seed(0))
    assert out["image"].shape == (3, 48, 64) and out["offset"] == (0.0, 0.0)
    assert len(out["keep"]) == 5
    pad = out["image"][:, 40:, 50:]
    assert torch.allclose(pad, torch.tensor(IMAGENET_MEAN).view(3, 1, 1).expand_as(pad))


def test_transform_determinism_and_variety():
    rec = dot_record()
    tr = TrainTransform(48)
    a = tr(rec.image, rec.points, rec.boxes, torch.Generator().manual_seed(5))
    b = tr(rec.image, rec.points, rec.boxes, torch.Generator().manual_seed(5))
    c = tr(rec.image, rec.points, rec.boxes, torch.Generator().manual_seed(6))
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["points"], b["points"])
    assert not torch.equal(a["image"], c["image"])


def test_dataset_sample_and_targets():
    src = SyntheticCrowds("crowd_b", 4, seed=0, height=64, width=64)

    def builder(sample):
        h, w = sample["image"].shape[-2:]
        m = np.zeros((h, w), np.float32)
        for x, y in sample["points"].tolist():
            m[int(y), int(x)] += 1
        return {"dot_map": m, "n": len(sample["points"])}

    ds = CrowdDataset(src, target_builder=builder)
    s = ds[1]
    assert s["image"].shape == (3, 64, 64) and s["image"].dtype == torch.float32
    assert s["index"] == 1 and s["image_id"] == "crowd_b-0-1" and s["orig_size"] == (64, 64)
    assert s["scale"] == 1.0 and s["offset"] == (0.0, 0.0) and s["flip"] is False
    assert torch.is_tensor(s["dot_map"]) and float(s["dot_map"].sum()) == len(s["points"]) == s["n"]
    raw = torch.from_numpy(src[1].image).permute(2, 0, 1).float() / 255
    assert torch.allclose(denormalize(s["image"]), raw, atol=1e-6)
    assert torch.allclose(normalize(raw), s["image"], atol=1e-6)
    # records without boxes give an empty (0, 4) tensor
    rec = CrowdRecord("nobox", points=[[1.0, 2.0]], image=np.zeros((8, 8, 3), np.uint8))
    s2 = CrowdDataset([rec])[0]
    assert s2["boxes"].shape == (0, 4) and s2["points"].shape == (1, 2)
    s3 = CrowdDataset([rec], transform=TrainTransform(8))[(0, 1)]
    assert s3["boxes"].shape == (0, 4)
    with pytest.raises(IndexError):
        ds[4]
    sub = ds.subset([3, 1])
    assert len(sub) == 2 and sub[0]["image_id"] == "crowd_b-0-3"


def test_collate_shapes():
    src = SyntheticCrowds("crowd_a", 3, seed=0, height=64, width=64)
    ds = CrowdDataset(src, target_builder=lambda s: {"t": np.ones((2, 16, 16), np.float32), "ragged":
                                                     np.zeros(len(s["points"]))},
                      transform=TrainTransform(32))
    batch = collate_crowd([ds[(i, i)] for i in range(3)])
    assert batch["image"].shape == (3, 3, 32, 32)
    assert batch["t"].shape == (3, 2, 16, 16)
    assert isinstance(batch["points"], list) and len(batch["points"]) == 3
    assert batch["offset"].shape == (3, 2) and batch["flip"].dtype == torch.bool
    assert batch["index"].tolist() == [0, 1, 2] and batch["image_id"][0] == "crowd_a-0-0"
    assert isinstance(batch["boxes"], list) and isinstance(batch["keep"], list)
    lens = {len(p) for p in batch["points"]}
    if len(lens) > 1:
        assert isinstance(batch["ragged"], list)
    with pytest.raises(ValueError, match="different sizes"):
        collate_crowd([{"image": torch.zeros(3, 4, 4)}, {"image": torch.zeros(3, 5, 5)}])


def test_loader_deterministic_under_seed():
    src = SyntheticCrowds("crowd_b", 6, seed=0, height=48, width=48)
    ds = CrowdDataset(src, transform=TrainTransform(32))

    def run(seed):
        return [(b["index"].tolist(), b["image"].sum().item(), b["offset"].tolist())
                for b in make_loader(ds, 2, True, seed)]

    a, b, c = run(1), run(1), run(2)
    assert a == b and a != c
    # two epochs of one loader differ (fresh order and augmentation seeds)
    loader = make_loader(ds, 3, True, 1)
    e1 = [x["image"].sum().item() for x in loader]
    e2 = [x["image"].sum().item() for x in loader]
    assert e1 != e2


def test_split_train_val():
    tr, va = split_train_val(10, 0.2, seed=0)
    assert len(tr) == 8 and len(va) == 2
    assert sorted(np.concatenate([tr, va]).tolist()) == list(range(10))
    tr2, va2 = split_train_val(10, 0.2, seed=0)
    assert np.array_equal(va, va2)
    assert not np.array_equal(split_train_val(50, 0.2, seed=1)[1], split_train_val(50, 0.2, seed=2)[1])
    assert len(split_train_val(3, 0.01)[1]) == 1
    with pytest.raises(ValueError):
        split_train_val(10, 1.5)


def test_eval_transform_identity():
    rec = dot_record()
    out = EvalTransform()(rec.image, rec.points, rec.boxes)
    assert out["image"].shape == (3, 90, 110)
    assert torch.equal(out["keep"], torch.arange(len(rec.points)))
    np.testing.assert_allclose(unmap_points(out["points"], out), rec.points)


def test_bad_arguments():
    with pytest.raises(ValueError, match="scale_range"):
        TrainTransform(32, scale_range=(1.2, 0.8))
    with pytest.raises(ValueError, match="crop_size"):
        TrainTransform((0, 3))
    with pytest.raises(ValueError, match="source"):
        CrowdDataset(5)  # type: ignore[arg-type]


def test_loader_same_with_workers():
    src = SyntheticCrowds("crowd_b", 4, seed=0, height=40, width=40)
    ds = CrowdDataset(src, transform=TrainTransform(32))
    a = [b["image"].sum().item() for b in make_loader(ds, 2, True, 3, num_workers=0)]
    b = [b["image"].sum().item() for b in make_loader(ds, 2, True, 3, num_workers=1)]
    assert a == b
