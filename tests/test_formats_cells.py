"""VGG-cells and adipocyte dot-image readers, on images written here and on the shared data."""
import numpy as np
import pytest
from PIL import Image

from crowdlib.data.formats import FormatError, read_adipocyte, read_red_dot_jpeg, read_vgg_cells, read_vgg_dots
from crowdlib.paths import shared_root

SHARED = shared_root()
CELLS = SHARED / "data" / "cells" if SHARED else None
HAS_CELLS = CELLS is not None and (CELLS / "vgg_cells").is_dir() and (CELLS / "adipocyte").is_dir()


def test_vgg_dots_pure_red_only(tmp_path):
    dots = np.zeros((20, 30, 3), np.uint8)
    dots[2, 3] = (255, 0, 0)
    dots[10, 25] = (255, 0, 0)
    dots[5, 5] = (254, 0, 0)    # not pure red
    dots[6, 6] = (255, 255, 255)
    Image.fromarray(dots).save(tmp_path / "001dots.png")
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "001cell.png")
    recs = read_vgg_cells(tmp_path)
    assert len(recs) == 1 and recs[0].image_id == "001" and recs[0].image_size == (20, 30)
    np.testing.assert_allclose(recs[0].points, [[3.5, 2.5], [25.5, 10.5]])
    assert recs[0].image_path == tmp_path / "001cell.png"


def test_vgg_errors(tmp_path):
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "002dots.png")
    Image.fromarray(np.zeros((21, 30, 3), np.uint8)).save(tmp_path / "002cell.png")
    with pytest.raises(FormatError, match=r"002dots\.png: annotation is 30x20 but image .* is 30x21"):
        read_vgg_dots(tmp_path / "002dots.png", image_path=tmp_path / "002cell.png")
    (tmp_path / "003dots.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(FormatError, match=r"003dots\.png: corrupt or unreadable image"):
        read_vgg_dots(tmp_path / "003dots.png")
    (tmp_path / "sub").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "sub" / "004cell.png")
    with pytest.raises(FormatError, match="dot annotation missing"):
        read_vgg_cells(tmp_path / "sub")
    with pytest.raises(FormatError, match="no '\\*cell.png' images"):
        read_vgg_cells(tmp_path / "missing")


def test_red_dot_jpeg_components(tmp_path):
    ann = np.zeros((40, 40, 3), np.uint8)
    ann[5:8, 5:8] = (250, 10, 10)     # 3x3 dot, centroid pixel (6, 6)
    ann[20, 30] = (255, 0, 0)         # single pixel
    ann[21, 31] = (255, 0, 0)         # diagonal neighbour: same cell (8-connectivity)
    ann[35, 2] = (90, 0, 0)           # below the threshold
    (tmp_path / "images").mkdir()
    (tmp_path / "annotations").mkdir()
    Image.fromarray(ann).save(tmp_path / "annotations" / "a.jpeg", quality=100, subsampling=0)
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "images" / "a.jpeg")
    recs = read_adipocyte(tmp_path)
    assert len(recs) == 1 and recs[0].count == 2
    pts = recs[0].points[np.argsort(recs[0].points[:, 0])]
    np.testing.assert_allclose(pts[0], [6.5, 6.5], atol=0.1)
    np.testing.assert_allclose(pts[1], [31.0, 21.0], atol=0.1)
    assert read_red_dot_jpeg(tmp_path / "annotations" / "a.jpeg", threshold=50).count == 3
    blank = tmp_path / "blank.jpeg"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(blank)
    assert read_red_dot_jpeg(blank).count == 0


def test_adipocyte_errors(tmp_path):
    (tmp_path / "images").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "images" / "x.jpeg")
    with pytest.raises(FormatError, match="dot annotation missing"):
        read_adipocyte(tmp_path)
    with pytest.raises(FormatError, match="no JPEG images"):
        read_adipocyte(tmp_path / "nothing")


@pytest.mark.skipif(not HAS_CELLS, reason="shared cell data not present (../shared/data/cells)")
def test_real_vgg_cells():
    recs = read_vgg_cells(CELLS / "vgg_cells")
    assert len(recs) == 200 and all(r.image_size == (256, 256) for r in recs)
    mean = np.mean([r.count for r in recs])
    assert 170 < mean < 182  # the data README: mean 176 cells


@pytest.mark.skipif(not HAS_CELLS, reason="shared cell data not present (../shared/data/cells)")
def test_real_adipocyte():
    recs = read_adipocyte(CELLS / "adipocyte")
    assert len(recs) == 200 and all(r.image_size == (150, 150) for r in recs)
    counts = np.array([r.count for r in recs])
    assert counts.min() > 0
    assert all(r.points.min() >= 0 and r.points.max() <= 150 for r in recs)
