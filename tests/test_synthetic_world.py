"""The synthetic crowd world: determinism, annotation consistency, perspective, density regimes, API errors."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.spatial import cKDTree

from crowdlib.data.records import CrowdRecord
from crowdlib.data.synth_raster import composite, shape_pixels
from crowdlib.data.synthetic import PRESETS, SceneConfig, SyntheticCrowds, list_presets, render_scene

SMALL = dict(height=96, width=96)


def test_presets_listed():
    names = list_presets()
    for p in ("crowd_a", "crowd_b", "faces", "negatives"):
        assert p in names
        assert isinstance(PRESETS[p], SceneConfig)
    with pytest.raises(dataclasses.FrozenInstanceError):
        PRESETS["crowd_a"].height = 3  # type: ignore[misc]


@pytest.mark.parametrize("preset", ["crowd_a", "crowd_b", "faces", "negatives"])
def test_deterministic_bit_for_bit(preset):
    a = render_scene(preset, 3, 7, **SMALL)
    b = render_scene(preset, 3, 7, **SMALL)
    assert a.image_id == f"{preset}-3-7"
    assert a.image.dtype == np.uint8 and a.image.shape == (96, 96, 3)
    assert a.image.tobytes() == b.image.tobytes()
    assert a.points.tobytes() == b.points.tobytes()
    assert a.boxes.tobytes() == b.boxes.tobytes()
    assert a.meta["sizes"].tobytes() == b.meta["sizes"].tobytes()
    c = render_scene(preset, 3, 8, **SMALL)
    assert a.image.tobytes() != c.image.tobytes()


@pytest.mark.parametrize("preset", ["crowd_a", "crowd_b", "faces"])
def test_annotations_consistent(preset):
    for i in range(3):
        r = render_scene(preset, 0, i, **SMALL)
        assert isinstance(r, CrowdRecord)
        n = r.count
        assert r.boxes.shape == (n, 4) and r.image_size == (96, 96)
        for key in ("sizes", "occlusion", "turn", "has_hat", "far", "centers"):
            assert len(r.meta[key]) == n
        assert r.meta["domain"] == PRESETS[preset].domain and r.meta["preset"] == preset
        assert r.meta["seed"] == 0 and r.meta["index"] == i
        assert r.meta["distractors"].ndim == 2 and r.meta["distractors"].shape[1] == 4
        if n == 0:
            continue
        x1, y1, x2, y2 = r.boxes.T
        assert np.all(x2 > x1) and np.all(y2 > y1)
        assert np.all(r.boxes >= 0) and np.all(x2 <= 96) and np.all(y2 <= 96)
        assert np.all((r.points >= 0) & (r.points < 96))
        occ = r.meta["occlusion"]
        assert np.all((occ >= 0) & (occ <= PRESETS[preset].max_occlusion + 1e-6))
        # the visible box lies inside the full head box (size x 0.9 size) around the true centre
        cx, cy = r.meta["centers"].T
        s = r.meta["sizes"]
        assert np.all(x1 >= np.floor(cx - 0.45 * s) - 1e-4) and np.all(x2 <= np.ceil(cx + 0.45 * s) + 1e-4)
        assert np.all(y1 >= np.floor(cy - 0.5 * s) - 1e-4) and np.all(y2 <= np.ceil(cy + 0.5 * s) + 1e-4)
        # the annotated point is jittered only slightly around the true centre
        assert np.all(np.abs(r.points - r.meta["centers"]) <= 0.3 * s[:, None] + 1e-4)
        # heads respect the size floor
        assert s.min() >= PRESETS[preset].min_head_px - 1e-6


def test_unoccluded_head_box_matches_size():
    r = render_scene("faces", 0, 0, height=128, width=128, count_range=(1, 1), distractor_range=(0, 0))
    assert r.count == 1
    s = float(r.meta["sizes"][0])
    w, h = r.boxes[0, 2] - r.boxes[0, 0], r.boxes[0, 3] - r.boxes[0, 1]
    assert abs(h - s) <= 2.0 and abs(w - 0.9 * s) <= 2.0
    assert r.meta["occlusion"][0] == pytest.approx(0.0)


def test_perspective_size_grows_with_row():
    ys, ss = [], []
    for i in range(4):
        r = render_scene("crowd_a", 0, i, height=128, width=128)
        ys.append(r.points[:, 1])
        ss.append(r.meta["sizes"])
    ys, ss = np.concatenate(ys), np.concatenate(ss)
    assert len(ys) > 100
    assert np.corrcoef(ys, ss)[0, 1] > 0.5


def _size_nn_corr(preset: str, n_images: int) -> float:
    sizes, dists = [], []
    for i in range(n_images):
        r = render_scene(preset, 0, i, height=128, width=128)
        if r.count < 3:
            continue
        d, _ = cKDTree(r.points).query(r.points, k=2)
        sizes.append(r.meta["sizes"])
        dists.append(d[:, 1])
    return float(np.corrcoef(np.concatenate(sizes), np.concatenate(dists))[0, 1])


def test_nn_distance_tracks_size_in_dense_not_sparse():
    dense = _size_nn_corr("crowd_a", 4)
    sparse = _size_nn_corr("crowd_b", 8)
    assert dense > 0.4
    assert dense > sparse + 0.2


def test_density_regimes_differ():
    ca = np.mean([render_scene("crowd_a", 1, i, height=128, width=128).count for i in range(4)])
    cb = np.mean([render_scene("crowd_b", 1, i, height=128, width=128).count for i in range(4)])
    assert ca > 3 * cb


def test_negatives_have_no_heads_but_distractors():
    for i in range(3):
        r = render_scene("negatives", 0, i, **SMALL)
        assert r.count == 0 and r.points.shape == (0, 2) and r.boxes.shape == (0, 4)
        assert len(r.meta["distractors"]) >= PRESETS["negatives"].distractor_range[0]
    r = render_scene("crowd_b", 0, 0, negative_prob=1.0, **SMALL)
    assert r.count == 0


def test_size_scales_with_height_and_keeps_floor():
    big = render_scene("crowd_b", 0, 1, height=256, width=256)
    small = render_scene("crowd_b", 0, 1, height=128, width=128)
    assert big.count > 0 and small.count > 0
    assert np.median(big.meta["sizes"]) > 1.5 * np.median(small.meta["sizes"])
    tiny = render_scene("crowd_a", 0, 0, height=64, width=64)
    assert tiny.count == 0 or tiny.meta["sizes"].min() >= 3.0


def test_overrides_and_errors():
    r = render_scene("crowd_b", 0, 0, count_range=(12, 12), layouts=(("uniform", 1.0),), empty_prob=0.0,
                     max_occlusion=1.0, **SMALL)
    assert r.count <= 12 and r.count >= 8  # a few may be fully hidden
    with pytest.raises(ValueError, match="unknown synthetic preset"):
        render_scene("nope", 0, 0)
    with pytest.raises(ValueError, match="unknown SceneConfig field"):
        render_scene("crowd_a", 0, 0, not_a_field=3)
    with pytest.raises(ValueError, match="placement"):
        dataclasses.replace(PRESETS["crowd_a"], placement="grid")
    with pytest.raises(ValueError, match="image size"):
        render_scene("crowd_a", 0, 0, height=4, width=4)


def test_custom_config_object():
    cfg = dataclasses.replace(PRESETS["crowd_b"], name="mine", domain="street2")
    r = render_scene(cfg, 2, 3, **SMALL)
    assert r.image_id == "mine-2-3" and r.meta["domain"] == "street2"


def test_synthetic_crowds_sequence_and_cache(tmp_path):
    ds = SyntheticCrowds("crowd_b", 5, seed=4, height=64, width=64, cache_dir=tmp_path / "c", lru_size=2)
    assert len(ds) == 5
    r = ds[2]
    ref = render_scene("crowd_b", 4, 2, height=64, width=64)
    assert r.image.tobytes() == ref.image.tobytes() and r.image_id == "crowd_b-4-2"
    assert ds[-1].image_id == "crowd_b-4-4"
    assert [x.image_id for x in ds[1:3]] == ["crowd_b-4-1", "crowd_b-4-2"]
    files = list((tmp_path / "c").glob("*.npz"))
    assert sorted(f.name.split("-")[2] for f in files) == ["1", "2", "4"]  # indices 2, 4, 1 were rendered
    ds2 = SyntheticCrowds("crowd_b", 5, seed=4, height=64, width=64, cache_dir=tmp_path / "c")
    r2 = ds2[2]  # loaded from disk
    assert r2.image.tobytes() == ref.image.tobytes()
    assert r2.points.tobytes() == ref.points.tobytes()
    assert r2.meta["domain"] == "crowd_b" and r2.meta["seed"] == 4
    np.testing.assert_array_equal(r2.meta["sizes"], ref.meta["sizes"])
    with pytest.raises(IndexError):
        ds[5]
    with pytest.raises(ValueError):
        SyntheticCrowds("crowd_b", -1)


def test_composite_painters_order():
    img = np.zeros((10, 10, 3), np.float32)
    sp = shape_pixels(np.array([5.0, 5.0]), np.array([5.0, 5.0]), np.array([3.0, 2.0]), np.array([3.0, 2.0]),
                      10, 10)
    inside = sp.u ** 2 + sp.v ** 2 <= 1
    col = np.where((sp.sid == 0)[:, None], 100.0, 200.0).astype(np.float32)
    vis = composite(img, [(sp.row * 10 + sp.col, sp.sid, col, inside)])
    assert img[5, 5, 0] == 200.0  # the nearer (higher depth) shape wins
    assert img[5, 2, 0] == 100.0  # the far shape shows around it
    assert img[0, 0, 0] == 0.0
    assert vis[0].sum() == (img[..., 0] > 0).sum()


def test_poisson_min_separation():
    from scipy.spatial.distance import pdist, squareform

    for i in range(3):
        r = render_scene("crowd_b", 5, i, height=128, width=128, max_occlusion=1.0)
        if r.count < 2:
            continue
        c, s = r.meta["centers"].astype(np.float64), r.meta["sizes"].astype(np.float64)
        d = squareform(pdist(c))
        need = PRESETS["crowd_b"].min_separation * 0.5 * (s[:, None] + s[None, :])
        np.fill_diagonal(d, np.inf)
        assert np.all(d >= need - 1e-3)
