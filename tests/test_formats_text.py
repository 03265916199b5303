"""NWPU JSON, JHU-Crowd, WIDER FACE and CARPK/PUCPR+ readers on files written here."""
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from crowdlib.data.formats import (
    FormatError,
    read_carpk,
    read_carpk_txt,
    read_jhu,
    read_jhu_txt,
    read_nwpu_crowd,
    read_nwpu_json,
    read_widerface,
)


def write_image(path: Path, w=50, h=40):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(path)


# ---------------------------------------------------------------- NWPU JSON
def nwpu_json(path: Path, points, boxes=None, human_num=None):
    data = {"img_id": path.stem + ".jpg", "human_num": len(points) if human_num is None else human_num,
            "points": points}
    if boxes is not None:
        data["boxes"] = boxes
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def test_nwpu_json_boxes_sigmas_levels(tmp_path):
    nwpu_json(tmp_path / "jsons" / "0001.json", [[10, 12], [30.5, 20]], [[5, 2, 15, 22], [30, 19, 31, 21]])
    write_image(tmp_path / "images" / "0001.jpg")
    (tmp_path / "val.txt").write_text("0001 0 1\n")
    recs = read_nwpu_crowd(tmp_path, "val")
    rec = recs[0]
    assert rec.image_id == "0001" and rec.count == 2 and rec.image_size == (40, 50)
    np.testing.assert_allclose(rec.boxes[0], [5, 2, 15, 22])
    np.testing.assert_array_equal(rec.sigmas, [[5, 11], [0, 1]])
    np.testing.assert_array_equal(rec.levels, [2, 0])
    assert read_nwpu_crowd(tmp_path)[0].count == 2


def test_nwpu_json_empty_and_errors(tmp_path):
    nwpu_json(tmp_path / "e.json", [], [])
    assert read_nwpu_json(tmp_path / "e.json").count == 0
    nwpu_json(tmp_path / "n.json", [[1, 1]], human_num=3)
    with pytest.raises(FormatError, match=r"n\.json: 'human_num' says 3 heads but 'points' holds 1"):
        read_nwpu_json(tmp_path / "n.json")
    (tmp_path / "k.json").write_text(json.dumps({"boxes": []}))
    with pytest.raises(FormatError, match=r"k\.json: missing key 'points'"):
        read_nwpu_json(tmp_path / "k.json")
    (tmp_path / "j.json").write_text("{not json")
    with pytest.raises(FormatError, match="invalid JSON"):
        read_nwpu_json(tmp_path / "j.json")
    nwpu_json(tmp_path / "b.json", [[1, 1], [2, 2]], [[0, 0, 2, 2]])
    with pytest.raises(FormatError, match="1 boxes for 2 points"):
        read_nwpu_json(tmp_path / "b.json")
    nwpu_json(tmp_path / "s.json", [[1, 1]], [[0, 0, 2]])
    with pytest.raises(FormatError, match=r"'boxes' must have shape \(N, 4\)"):
        read_nwpu_json(tmp_path / "s.json")


def test_nwpu_json_drop_outside_filters_boxes(tmp_path):
    nwpu_json(tmp_path / "d.json", [[10, 10], [60, 10]], [[8, 8, 12, 12], [58, 8, 62, 12]])
    with pytest.raises(FormatError, match="outside the 50x40 image"):
        read_nwpu_json(tmp_path / "d.json", image_size=(40, 50))
    rec = read_nwpu_json(tmp_path / "d.json", image_size=(40, 50), drop_outside=True)
    assert rec.count == 1 and rec.boxes.shape == (1, 4) and rec.levels.shape == (1,) and rec.meta["dropped"] == 1


# ---------------------------------------------------------------- JHU
def test_jhu(tmp_path):
    gt = tmp_path / "train" / "gt" / "0001.txt"
    gt.parent.mkdir(parents=True)
    gt.write_text("10 12 4 6 1 0\n20 30 8 8 3 1\n\n")
    write_image(tmp_path / "train" / "images" / "0001.jpg")
    rec = read_jhu(tmp_path, "train")[0]
    assert rec.count == 2
    np.testing.assert_allclose(rec.boxes[0], [8, 9, 12, 15])
    np.testing.assert_array_equal(rec.meta["occlusion"], [1, 3])
    np.testing.assert_array_equal(rec.meta["blur"], [0, 1])
    (tmp_path / "empty.txt").write_text("")
    assert read_jhu_txt(tmp_path / "empty.txt").count == 0


@pytest.mark.parametrize(
    "text, match",
    [("1 2 3 4 5\n", "line 1: expected 6 fields"), ("1 2 3 4 5 x\n", "line 1: non-numeric"),
     ("1 2 3 4 5 6\n1 nan 1 1 1 1\n", "NaN"), ("1 2 -3 4 1 0\n", "negative box width"),
     ("-1 2 3 4 1 0\n", "negative")],
)
def test_jhu_errors(tmp_path, text, match):
    (tmp_path / "x.txt").write_text(text)
    with pytest.raises(FormatError, match=match) as exc:
        read_jhu_txt(tmp_path / "x.txt")
    assert "x.txt" in str(exc.value)


# ---------------------------------------------------------------- WIDER FACE
WIDER = """0--Parade/a.jpg
2
10 20 10 10 0 0 0 0 0 0
30 5 4 6 2 1 0 1 2 3
1--Handshaking/b.jpg
0
0 0 0 0 0 0 0 0 0 0
2--Demo/c.jpg
1
1 1 2 2 0 0 0 0 0 0
"""


def test_widerface(tmp_path):
    (tmp_path / "gt.txt").write_text(WIDER)
    for name in ("0--Parade/a.jpg", "1--Handshaking/b.jpg", "2--Demo/c.jpg"):
        write_image(tmp_path / "images" / name)
    recs = read_widerface(tmp_path / "gt.txt", tmp_path / "images")
    assert [r.image_id for r in recs] == ["a", "b", "c"] and [r.count for r in recs] == [2, 0, 1]
    np.testing.assert_allclose(recs[0].boxes, [[10, 20, 20, 30], [30, 5, 34, 11]])
    np.testing.assert_allclose(recs[0].points, [[15, 25], [32, 8]])
    np.testing.assert_array_equal(recs[0].meta["invalid"], [0, 1])
    np.testing.assert_array_equal(recs[0].meta["pose"], [0, 3])
    assert recs[0].image_size == (40, 50)
    no_img = read_widerface(tmp_path / "gt.txt")
    assert no_img[0].image_path is None and no_img[0].count == 2
    valid = read_widerface(tmp_path / "gt.txt", drop_invalid=True)
    assert valid[0].count == 1 and valid[0].meta["blur"].tolist() == [0]


@pytest.mark.parametrize(
    "text, match",
    [("a.jpg\nx\n", "line 2: expected the face count"), ("a.jpg\n2\n1 1 1 1 0 0 0 0 0 0\n", "expected 2 face lines"),
     ("a.jpg\n1\n1 1 1 1 0 0 0 0 0\n", "line 3: expected 10 fields"), ("a.jpg\n", "missing face count"),
     ("a.jpg\n1\n1 1 -1 1 0 0 0 0 0 0\n", "negative box width")],
)
def test_widerface_errors(tmp_path, text, match):
    (tmp_path / "gt.txt").write_text(text)
    with pytest.raises(FormatError, match=match) as exc:
        read_widerface(tmp_path / "gt.txt")
    assert "gt.txt" in str(exc.value)


# ---------------------------------------------------------------- CARPK / PUCPR+
def test_carpk(tmp_path):
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "20160331_NTU_00001.txt").write_text("0 0 10 20 1\n40 30 50 40 1\n")
    write_image(tmp_path / "Images" / "20160331_NTU_00001.png")
    (tmp_path / "ImageSets").mkdir()
    (tmp_path / "ImageSets" / "train.txt").write_text("20160331_NTU_00001\n")
    rec = read_carpk(tmp_path, "train")[0]
    np.testing.assert_allclose(rec.points, [[5, 10], [45, 35]])
    assert rec.boxes.shape == (2, 4) and rec.meta["cls"].tolist() == [1, 1] and rec.image_size == (40, 50)
    (tmp_path / "bad.txt").write_text("10 0 5 20 1\n")
    with pytest.raises(FormatError, match=r"bad\.txt: boxes need x2 >= x1"):
        read_carpk_txt(tmp_path / "bad.txt")
    (tmp_path / "out.txt").write_text("50 0 60 20 1\n")
    with pytest.raises(FormatError, match="outside"):
        read_carpk_txt(tmp_path / "out.txt", image_size=(40, 50))
    assert read_carpk_txt(tmp_path / "out.txt", image_size=(40, 50), drop_outside=True).meta["dropped"] == 1
    with pytest.raises(FormatError, match="split list not found"):
        read_carpk(tmp_path, "test")
