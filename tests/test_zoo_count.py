"""The model zoo, ``crowdlib.count`` (tiling included) and ``python -m crowdlib``, without ../shared."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import crowdlib
from crowdlib import zoo
from crowdlib.counter import core_bounds, load_image, predict_one, tile_starts

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "weights"
CARDS = zoo.list_models(WEIGHTS)


def _scene(preset: str = "sha_like", seed: int = 5, height: int | None = None):
    from crowdlib.data.synthetic import SyntheticCrowds

    return SyntheticCrowds(preset, 1, seed=seed, height=height)[0]


# --------------------------------------------------------------------------- shipped files
def test_every_shipped_file_matches_its_card_and_models_md() -> None:
    assert {c.name for c in CARDS} >= {"sdnet-shb", "sdnet-synthetic-explorer", "iim-synthetic-explorer"}
    md = (WEIGHTS / "MODELS.md").read_text()
    for c in CARDS:
        path = WEIGHTS / c.file
        assert path.stat().st_size <= 5_000_000, f"{c.file} is over 5 MB"
        assert zoo.sha256_file(path) == c.sha256, f"{c.file}: SHA-256 differs from MODELS.json"
        section = md.split(f"## `{c.name}`")[1].split("\n## ")[0]
        assert f"| SHA-256 | `{c.sha256}` |" in section, f"MODELS.md's SHA-256 of {c.name} is stale"
        assert re.fullmatch(r"[0-9a-f]{40}", c.trained_at), c.trained_at
        assert c.metrics and all(np.isfinite(list(c.metrics.values())))
    assert md == zoo.render_models_md(CARDS), "MODELS.md is not the rendering of MODELS.json"


@pytest.mark.parametrize("name", [c.name for c in CARDS])
def test_shipped_model_loads_offline_and_counts_a_synthetic_image(name: str) -> None:
    zm = zoo.load_model(name, folder=WEIGHTS, device="cpu")
    assert all(p.dtype == torch.float32 for p in zm.net.parameters())
    rec = _scene("crowd_b", seed=3, height=256)
    res = predict_one(zm, rec.load_image())
    assert np.isfinite(res["count"]) and res["count"] >= 0 and res["points"].shape[1] == 2


def test_a_changed_file_fails_its_checksum_and_names_are_checked(tmp_path: Path) -> None:
    shutil.copytree(WEIGHTS, tmp_path / "w")
    card = zoo.model_card("sdnet-synthetic-explorer", tmp_path / "w")
    f = tmp_path / "w" / card.file
    data = bytearray(f.read_bytes())
    data[-10] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(zoo.WeightsChecksumError, match="SHA-256"):
        zoo.load_model(card.name, folder=tmp_path / "w")
    with pytest.raises(zoo.UnknownModelError, match="sdnet-shb"):
        zoo.load_model("no-such-model", folder=tmp_path / "w")


# --------------------------------------------------------------------------- tiling
def test_tiles_cover_the_image_and_their_cores_partition_it() -> None:
    assert tile_starts(900, 1024, 128) == [0]
    assert tile_starts(1900, 1024, 128) == [0, 876]  # 2 tiles sharing 148 px
    assert tile_starts(2000, 1024, 128) == [0, 488, 976]  # 2 would share only 48 px
    starts = tile_starts(2500, 1024, 128)
    assert starts[0] == 0 and starts[-1] + 1024 == 2500
    assert all(b - a <= 1024 - 128 for a, b in zip(starts, starts[1:]))  # every overlap >= 128 px
    cores = core_bounds(starts, 1024, 2500)
    assert cores[0][0] == 0 and cores[-1][1] == 2500
    assert all(a[1] == b[0] for a, b in zip(cores, cores[1:]))
    assert all(s <= lo and hi <= s + 1024 for s, (lo, hi) in zip(starts, cores))
    with pytest.raises(ValueError, match="larger than overlap"):
        tile_starts(100, 64, 64)


def test_tiled_count_matches_the_untiled_count_without_double_counting() -> None:
    """A 640 x 960 scene in 2 x 4 tiles of 384 px (>= 128 px overlaps) against one pass over the whole image."""
    zm = zoo.load_model("sdnet-synthetic-explorer", folder=WEIGHTS, device="cpu")
    img = _scene().load_image()
    whole = predict_one(zm, img, tile=4096)
    tiled = predict_one(zm, img, tile=384, overlap=128)
    assert whole["tiles"] == 1 and tiled["tiles"] == 2 * 4
    assert abs(tiled["count"] - whole["count"]) <= max(3, 0.05 * whole["count"])
    d = np.linalg.norm(tiled["points"][:, None] - tiled["points"][None], axis=-1) + np.eye(len(tiled["points"])) * 1e9
    assert (d.min(1) > 0.5).all(), "a head was counted twice at a tile seam"


# --------------------------------------------------------------------------- API and command line
def test_count_takes_paths_pil_images_and_arrays(tmp_path: Path) -> None:
    from PIL import Image

    img = _scene("crowd_b", seed=3, height=256).load_image()
    Image.fromarray(img).save(tmp_path / "a.png")
    zm = zoo.load_model("sdnet-synthetic-explorer", folder=WEIGHTS, device="cpu")
    one = crowdlib.count(str(tmp_path / "a.png"), model=zm)
    many = crowdlib.count([img, Image.fromarray(img), img.astype(np.float32) / 255.0], model=zm)
    assert isinstance(one, dict) and len(many) == 3
    assert [r["count"] for r in many[:2]] == [one["count"]] * 2
    batched = crowdlib.count([img, img[:, ::-1].copy(), img], model=zm, batch_size=3)  # one forward pass
    alone = crowdlib.count([img, img[:, ::-1].copy(), img], model=zm, batch_size=1)
    assert [abs(a["count"] - b["count"]) <= 1 for a, b in zip(batched, alone)] == [True] * 3
    assert set(one) >= {"count", "points", "scores", "boxes", "image_size"}
    with pytest.raises(FileNotFoundError):
        load_image(tmp_path / "missing.jpg")
    with pytest.raises(ValueError, match="shape"):
        load_image(np.zeros((4, 4, 5)))


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "crowdlib", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def test_command_line_counts_a_folder_names_bad_files_and_writes_overlays(tmp_path: Path) -> None:
    from PIL import Image

    src = tmp_path / "imgs"
    src.mkdir()
    Image.fromarray(_scene("crowd_b", seed=3, height=256).load_image()).save(src / "good.png")
    (src / "broken.jpg").write_bytes(b"not a jpeg at all")
    out = _cli("count", str(src), "--model", "sdnet-synthetic-explorer", "--out", str(tmp_path / "o"), "--json",
               cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    assert "broken.jpg" in out.stderr and "not a readable image" in out.stderr and "Traceback" not in out.stderr
    rows = json.loads(out.stdout)
    assert [Path(r["image"]).name for r in rows] == ["good.png"] and rows[0]["count"] >= 0
    assert (tmp_path / "o" / "good_overlay.png").is_file()
    assert (tmp_path / "o" / "counts.csv").read_text().count("\n") == 2
    missing = _cli("count", str(tmp_path / "nope.jpg"), "--model", "sdnet-synthetic-explorer", cwd=tmp_path)
    assert missing.returncode == 1 and "no such file" in missing.stderr
    unknown = _cli("count", str(src / "good.png"), "--model", "resnet-9000", cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown model 'resnet-9000'" in unknown.stderr
    models = _cli("models", cwd=tmp_path)
    assert models.returncode == 0 and "sdnet-shb" in models.stdout


def test_a_tiny_model_trained_here_goes_through_the_zoo(tmp_path: Path) -> None:
    """A model trained in the test (2 steps on synthetic images), written and loaded like a shipped one."""
    from crowdlib.methods import sdnet

    cfg = sdnet.experiment_config(n_dense=2, n_sparse=2, image_size=64, crop=64, epochs=1, max_steps=2,
                                  batch_size=2, width=8, up_width=4)
    cfg = sdnet.setting_config(cfg, "both", 0)
    res = sdnet.train_sdnet(cfg, progress=False, checkpoint_dir=str(tmp_path))
    digest = zoo.write_weights(tmp_path / "tiny.pt", kind="sdnet", config=cfg, model_state=res["model"],
                               inference={"count_threshold": 0.0, "nms_iou": 0.5, "min_score": 0.0, "scale": 1.0})
    card = zoo.ModelCard(name="tiny", file="tiny.pt", sha256=digest, kind="sdnet", recipe="-", data="test")
    zoo.save_cards([card], tmp_path)
    res = crowdlib.count(np.zeros((96, 80, 3), np.uint8), model=zoo.load_model("tiny", folder=tmp_path))
    assert res["image_size"] == (96, 80) and res["count"] == len(res["boxes"])
