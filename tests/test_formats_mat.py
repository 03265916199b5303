"""ShanghaiTech and UCF-QNRF .mat readers, on files written here and on the shared data."""
from pathlib import Path

import numpy as np
import pytest
import scipy.io
from PIL import Image

from crowdlib.data.formats import (
    FormatError,
    read_shanghaitech,
    read_shanghaitech_mat,
    read_ucf_qnrf,
    read_ucf_qnrf_mat,
)
from crowdlib.paths import shared_root

SHARED = shared_root()
SHT = SHARED / "data" / "ShanghaiTech" if SHARED else None


def write_sht_mat(path: Path, loc, number=None, key="image_info", field="location"):
    """ShanghaiTech's layout: a 1x1 cell holding a 1x1 struct with 'location' and 'number'."""
    loc = np.asarray(loc, dtype=np.float64) if np.size(loc) else np.zeros((0, 2))
    struct = np.zeros((1, 1), dtype=[(field, "O"), ("number", "O")])
    struct[0, 0][field] = loc
    struct[0, 0]["number"] = np.array([[len(loc) if number is None else number]], dtype=np.float64)
    cell = np.empty((1, 1), dtype=object)
    cell[0, 0] = struct
    scipy.io.savemat(str(path), {key: cell})


def write_image(path: Path, w=40, h=30):
    Image.fromarray(np.full((h, w, 3), 100, np.uint8)).save(path)


def make_sht(root: Path, part="B", split="train", n=3):
    base = root / f"part_{part}" / f"{split}_data"
    (base / "images").mkdir(parents=True)
    (base / "ground-truth").mkdir()
    for i in (10, 2, 1)[:n]:
        write_image(base / "images" / f"IMG_{i}.jpg")
        write_sht_mat(base / "ground-truth" / f"GT_IMG_{i}.mat", [[1.5, 2.5]] * i)
    return base


def test_read_mat_roundtrip(tmp_path):
    write_image(tmp_path / "IMG_7.jpg")
    write_sht_mat(tmp_path / "GT_IMG_7.mat", [[1.0, 2.0], [39.5, 29.0], [40.0, 30.0]])
    rec = read_shanghaitech_mat(tmp_path / "GT_IMG_7.mat", image_path=tmp_path / "IMG_7.jpg")
    assert rec.image_id == "IMG_7" and rec.count == 3 and rec.image_size == (30, 40)
    np.testing.assert_allclose(rec.points[0], [1.0, 2.0])
    assert rec.points.dtype == np.float32 and rec.meta["dropped"] == 0


def test_read_mat_empty(tmp_path):
    write_sht_mat(tmp_path / "GT_IMG_1.mat", np.zeros((0, 2)))
    rec = read_shanghaitech_mat(tmp_path / "GT_IMG_1.mat")
    assert rec.count == 0 and rec.points.shape == (0, 2)


def test_read_layout_sorted_by_number(tmp_path):
    make_sht(tmp_path)
    recs = read_shanghaitech(tmp_path, "B", "train")
    assert [r.image_id for r in recs] == ["IMG_1", "IMG_2", "IMG_10"]
    assert [r.count for r in recs] == [1, 2, 10]
    assert recs[0].meta["part"] == "B" and recs[0].meta["split"] == "train"


def test_outside_points_raise_or_drop(tmp_path):
    write_image(tmp_path / "IMG_1.jpg")
    write_sht_mat(tmp_path / "GT_IMG_1.mat", [[5, 5], [41, 3], [3, 31], [10, 10]])
    with pytest.raises(FormatError, match=r"GT_IMG_1\.mat: 2 points outside the 40x30 image"):
        read_shanghaitech_mat(tmp_path / "GT_IMG_1.mat", image_path=tmp_path / "IMG_1.jpg")
    rec = read_shanghaitech_mat(tmp_path / "GT_IMG_1.mat", image_path=tmp_path / "IMG_1.jpg", drop_outside=True)
    assert rec.count == 2 and rec.meta["dropped"] == 2
    np.testing.assert_allclose(rec.points, [[5, 5], [10, 10]])


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(loc=[[1.0, np.nan]]), "NaN"),
        (dict(loc=[[-1.0, 2.0]]), "negative"),
        (dict(loc=np.ones((2, 3)), number=2), r"shape \(N, 2\)"),
        (dict(loc=[[1.0, 2.0]], key="annotation"), "missing key 'image_info'"),
        (dict(loc=[[1.0, 2.0]], field="loc"), "no field 'location'"),
        (dict(loc=[[1.0, 2.0]], number=5), "'number' says 5 heads"),
    ],
)
def test_malformed_mat(tmp_path, kwargs, match):
    write_sht_mat(tmp_path / "GT_IMG_3.mat", **kwargs)
    with pytest.raises(FormatError, match=match) as exc:
        read_shanghaitech_mat(tmp_path / "GT_IMG_3.mat")
    assert "GT_IMG_3.mat" in str(exc.value)


def test_corrupt_files(tmp_path):
    (tmp_path / "GT_IMG_1.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(FormatError, match="cannot read .mat"):
        read_shanghaitech_mat(tmp_path / "GT_IMG_1.mat")
    write_sht_mat(tmp_path / "GT_IMG_2.mat", [[1, 1]])
    (tmp_path / "IMG_2.jpg").write_bytes(b"\xff\xd8garbage")
    with pytest.raises(FormatError, match=r"IMG_2\.jpg: corrupt or unreadable image"):
        read_shanghaitech_mat(tmp_path / "GT_IMG_2.mat", image_path=tmp_path / "IMG_2.jpg")
    with pytest.raises(FormatError, match="image file not found"):
        read_shanghaitech_mat(tmp_path / "GT_IMG_2.mat", image_path=tmp_path / "missing.jpg")
    with pytest.raises(FormatError, match="annotation file not found"):
        read_shanghaitech_mat(tmp_path / "nope.mat")


def test_layout_errors(tmp_path):
    base = make_sht(tmp_path, n=2)
    (base / "ground-truth" / "GT_IMG_2.mat").unlink()
    with pytest.raises(FormatError, match="ground truth missing"):
        read_shanghaitech(tmp_path, "B", "train")
    with pytest.raises(FormatError, match="'images' and 'ground-truth'"):
        read_shanghaitech(tmp_path, "A", "train")
    with pytest.raises(ValueError, match="part"):
        read_shanghaitech(tmp_path, "C")


def test_ucf_qnrf(tmp_path):
    d = tmp_path / "Train"
    d.mkdir()
    write_image(d / "img_0001.jpg")
    scipy.io.savemat(str(d / "img_0001_ann.mat"), {"annPoints": np.array([[3.0, 4.0], [39.0, 29.0]])})
    recs = read_ucf_qnrf(tmp_path, "Train")
    assert len(recs) == 1 and recs[0].image_id == "img_0001" and recs[0].count == 2
    scipy.io.savemat(str(d / "bad_ann.mat"), {"points": np.zeros((1, 2))})
    with pytest.raises(FormatError, match=r"bad_ann\.mat: missing key 'annPoints'"):
        read_ucf_qnrf_mat(d / "bad_ann.mat")


@pytest.mark.skipif(SHT is None or not SHT.is_dir(), reason="shared ShanghaiTech data not present (../shared/data)")
@pytest.mark.parametrize("part, split, n", [("A", "train", 300), ("B", "train", 400), ("B", "test", 316)])
def test_real_shanghaitech(part, split, n):
    recs = read_shanghaitech(SHT, part, split)
    assert len(recs) == n
    assert all(r.meta["dropped"] == 0 and r.image_size is not None for r in recs)
    counts = np.array([r.count for r in recs])
    assert counts.min() > 0
    if part == "A":
        assert recs[0].image_id == "IMG_1" and recs[0].count == 1546 and recs[0].image_size == (768, 1024)
