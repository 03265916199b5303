"""CSP targets: shapes, Gaussian rule, windows, offsets, special cases."""
import numpy as np
import pytest

from crowdlib.targets import csp_sigma, csp_targets

H, W = 32, 48


def test_shapes_and_keys_stride_1_and_4():
    t = csp_targets([[10, 10]], [8.0], (H, W))
    assert set(t) == {"center", "center_pos", "log_size", "size_weight", "offset", "offset_mask"}
    assert t["center"].shape == (H, W) and t["offset"].shape == (2, H, W)
    t4 = csp_targets([[10, 10]], [8.0], (30, 46), stride=4)
    assert t4["center"].shape == (8, 12)  # ceil(30/4), ceil(46/4)
    assert all(v.dtype == np.float32 for v in t4.values())
    assert "offset" not in csp_targets([[10, 10]], [8.0], (H, W), offset=False)
    assert csp_targets([[10, 10]], [8.0], (H, W), out_shape=(5, 6))["center"].shape == (5, 6)


def test_center_gaussian_follows_csp_sigma_rule():
    size = 11.0  # k = 11 -> sigma = 0.3 * (5 - 1) + 0.8 = 2.0, footprint |d| <= 5
    assert csp_sigma(size) == pytest.approx(2.0)
    t = csp_targets([[20.5, 15.5]], [size], (H, W))
    c = t["center"]
    assert c[15, 20] == 1.0 and t["center_pos"].sum() == 1 and t["center_pos"][15, 20] == 1
    assert c[15, 21] == pytest.approx(np.exp(-1 / 8.0))
    assert c[17, 23] == pytest.approx(np.exp(-(4 + 9) / 8.0))
    assert c[15, 25] > 0 and c[15, 26] == 0  # cut to the box
    assert csp_sigma(0.2) == pytest.approx(0.5)  # sides below 1 px use k = 1


def test_element_wise_max_where_gaussians_overlap():
    a = csp_targets([[10, 10]], [11.0], (H, W))["center"]
    b = csp_targets([[13, 10]], [11.0], (H, W))["center"]
    both = csp_targets([[10, 10], [13, 10]], [11.0, 11.0], (H, W))["center"]
    np.testing.assert_allclose(both, np.maximum(a, b))


def test_size_window_and_weights():
    t = csp_targets([[10.2, 12.7], [40, 25]], [6.0, 9.0], (H, W), crowdedness=np.array([3.0, 7.0]))
    ls, sw = t["log_size"], t["size_weight"]
    np.testing.assert_allclose(ls[10:15, 8:13], np.log(6.0))
    np.testing.assert_allclose(sw[10:15, 8:13], 3.0)
    np.testing.assert_allclose(sw[23:28, 38:43], 7.0)
    assert (sw > 0).sum() == 50 and (ls != 0).sum() == 50
    t1 = csp_targets([[10, 10]], [6.0], (H, W), window=3)
    assert (t1["size_weight"] == 1).sum() == 9


def test_overlapping_windows_go_to_the_nearest_head():
    t = csp_targets([[10.5, 10.5], [12.5, 10.5]], [4.0, 8.0], (H, W))
    row = t["log_size"][10]
    assert row[10] == pytest.approx(np.log(4.0)) and row[11] == pytest.approx(np.log(4.0))
    assert row[12] == pytest.approx(np.log(8.0)) and row[14] == pytest.approx(np.log(8.0))
    assert row[8] == pytest.approx(np.log(4.0))


def test_offsets_at_stride_4():
    t = csp_targets([[10.5, 7.0]], [8.0], (H, W), stride=4)
    assert t["offset_mask"][1, 2] == 1 and t["offset_mask"].sum() == 1
    assert t["offset"][0, 1, 2] == pytest.approx(10.5 / 4 - 2)
    assert t["offset"][1, 1, 2] == pytest.approx(7.0 / 4 - 1)


def test_special_cases_zero_border_coincident():
    t0 = csp_targets(np.zeros((0, 2)), np.zeros(0), (H, W))
    assert all(v.sum() == 0 for v in t0.values())
    tb = csp_targets([[0, 0], [W, H]], [6.0, 6.0], (H, W))  # W, H clip to the last pixel
    assert tb["center"][0, 0] == 1 and tb["center"][H - 1, W - 1] == 1
    assert tb["size_weight"].sum() == 2 * 9  # 3x3 of each 5x5 window inside
    tc = csp_targets([[5, 5], [5, 5], [20, 20]], 6.0, (H, W))
    assert tc["center_pos"].sum() == 2 and tc["offset_mask"].sum() == 2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(sizes=[1.0, 2.0]), "2 sizes for 1"),
        (dict(sizes=[0.0]), "> 0"),
        (dict(stride=0), "stride"),
        (dict(crowdedness=np.array([-1.0])), "crowdedness"),
        (dict(window=0), "window"),
    ],
)
def test_bad_input(kwargs, match):
    args = dict(points=[[3.0, 3.0]], sizes=[4.0], shape=(H, W))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        csp_targets(args.pop("points"), args.pop("sizes"), args.pop("shape"), **args)
