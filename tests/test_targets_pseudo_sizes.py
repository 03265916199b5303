"""LUDA and nearest-neighbour pseudo sizes: hand cases and special cases."""
import numpy as np
import pytest

from crowdlib.targets import LUDA_PRESETS, boxes_from_sizes, gak_sizes, luda_sizes

# A=(0,0) B=(2,0) C=(0,10) D=(0,20): y range 20, r=4 -> circle radius 5.
PTS = np.array([[0, 0], [2, 0], [0, 10], [0, 20]], dtype=float)


def test_luda_hand_case_k1():
    p = luda_sizes(PTS, 100, K=1, beta=1.0, r=4, min_size=0.5)
    # d = [2, 2, 10, 10]; regions {A,B}, {A,B}, {C}, {D}
    np.testing.assert_allclose(p.sizes, [2, 2, 10, 10], rtol=1e-6)
    np.testing.assert_array_equal(p.crowdedness, [2, 2, 1, 1])
    np.testing.assert_array_equal(p.weights, [2, 2, 1, 1])


def test_luda_hand_case_k2_beta_and_clipping():
    p = luda_sizes(PTS, 100, K=2, beta=0.5, r=4, min_size=3.0, max_size=6.0)
    d_a = 0.5 * (2 + 10) / 2
    d_b = 0.5 * (2 + np.hypot(2, 10)) / 2
    d_c = 0.5 * (10 + 10) / 2
    d_d = 0.5 * (10 + 20) / 2
    raw = np.array([(d_a + d_b) / 2, (d_a + d_b) / 2, d_c, d_d])
    np.testing.assert_allclose(p.sizes, np.clip(raw, 3.0, 6.0), rtol=1e-6)
    assert p.sizes.dtype == np.float32 and p.crowdedness.dtype == np.int64


def test_neighbor_limit_and_weight_cap():
    # five heads within a unit cluster plus one far head (y range 100, r=0.9 -> radius 111)
    pts = np.array([[0, 0], [1, 0], [0, 1], [1, 1], [0.5, 0.5], [0, 100]], dtype=float)
    full = luda_sizes(pts, 200, K=1, beta=1.0, r=0.9, min_size=0.0)
    np.testing.assert_array_equal(full.crowdedness, [6, 6, 6, 6, 6, 6])
    half = luda_sizes(pts, 200, K=1, beta=1.0, r=0.9, min_size=0.0, neighbor_limit="half")
    np.testing.assert_array_equal(half.crowdedness, [3, 3, 3, 3, 3, 3])  # N // 2 = 3
    two = luda_sizes(pts, 200, K=1, beta=1.0, r=0.9, min_size=0.0, neighbor_limit=2)
    np.testing.assert_array_equal(two.crowdedness, [2] * 6)
    capped = luda_sizes(pts, 200, K=1, beta=1.0, r=0.9, min_size=0.0, max_weight=4)
    np.testing.assert_array_equal(capped.weights, [4] * 6)
    sq = luda_sizes(pts, 200, K=1, beta=1.0, r=0.9, min_size=0.0, eta=0.5)
    np.testing.assert_array_equal(sq.weights, [2] * 6)  # int(sqrt(6)) = 2


def test_luda_special_cases():
    p0 = luda_sizes(np.zeros((0, 2)), 100)
    assert p0.sizes.shape == p0.crowdedness.shape == p0.weights.shape == (0,)
    p1 = luda_sizes([[5, 5]], 100)
    assert p1.sizes[0] == pytest.approx(20.0) and p1.weights[0] == pytest.approx(0.1)
    assert luda_sizes([[5, 5]], 30).sizes[0] == pytest.approx(12.0)  # max(H/5, 12)
    p2 = luda_sizes([[5, 5], [50, 5]], 120)
    np.testing.assert_allclose(p2.sizes, [20.0, 20.0])
    np.testing.assert_allclose(p2.weights, [1.0, 1.0])
    assert luda_sizes([[5, 5], [50, 5]], 30).sizes[0] == pytest.approx(12.0)  # max(H/6, 12)


def test_luda_three_points_and_coincident_and_flat_rows():
    p3 = luda_sizes([[0, 0], [10, 0], [20, 0]], 50, K=2, beta=1.0, r=8, min_size=0.0)
    # y range 0 -> radius 0: each region is the head itself
    np.testing.assert_allclose(p3.sizes, [15, 10, 15])
    np.testing.assert_array_equal(p3.crowdedness, [1, 1, 1])
    pc = luda_sizes([[3, 3], [3, 3], [3, 30]], 50, K=1, beta=1.0, r=100, min_size=2.0)
    np.testing.assert_allclose(pc.sizes[:2], [2.0, 2.0])  # distance 0 clipped to min_size
    np.testing.assert_array_equal(pc.crowdedness, [2, 2, 1])


def test_luda_presets_match_table_one():
    assert LUDA_PRESETS["SHA"]["beta"] == 1.0 and LUDA_PRESETS["SHA"]["r"] == 10
    assert LUDA_PRESETS["SHB"]["max_size"] == 50.0
    assert LUDA_PRESETS["WiderFace"]["min_size"] == 8.0
    p = luda_sizes(PTS, 100, **LUDA_PRESETS["SHB"])
    assert p.sizes.shape == (4,)
    with pytest.raises(TypeError):
        LUDA_PRESETS["SHA"]["beta"] = 2.0  # read-only


def test_gak_sizes():
    np.testing.assert_allclose(gak_sizes(PTS), [2, 2, 10, 10])
    np.testing.assert_allclose(gak_sizes(PTS, k=2, beta=0.5)[0], 0.5 * 6)
    assert gak_sizes([[1, 1]], lone_size=7.0)[0] == 7.0
    assert gak_sizes(np.zeros((0, 2))).shape == (0,)
    np.testing.assert_allclose(gak_sizes(PTS, min_size=3, max_size=9), [3, 3, 9, 9])


def test_boxes_from_sizes():
    b = boxes_from_sizes([[10, 20], [0, 0]], np.array([4.0, 2.0]))
    np.testing.assert_allclose(b, [[8, 18, 12, 22], [-1, -1, 1, 1]])
    assert boxes_from_sizes([[10, 20]], 6.0).shape == (1, 4)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: luda_sizes([[0, 0], [1, np.nan], [2, 2]], 10), "NaN"),
        (lambda: luda_sizes(PTS, 0), "image_height"),
        (lambda: luda_sizes(PTS, 10, r=0), "r:"),
        (lambda: luda_sizes(PTS, 10, neighbor_limit="all"), "neighbor_limit"),
        (lambda: boxes_from_sizes(PTS, np.ones(3)), "3 sizes for 4"),
        (lambda: boxes_from_sizes(PTS, -1.0), "> 0"),
    ],
)
def test_bad_input(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_vectorised_matches_bruteforce_on_random_points():
    rng = np.random.default_rng(3)
    pts = rng.uniform(0, 200, (150, 2))
    p = luda_sizes(pts, 200, K=2, beta=0.7, r=8, min_size=0.0)
    dd = np.linalg.norm(pts[:, None] - pts[None], axis=2)
    np.fill_diagonal(dd, np.inf)
    d = 0.7 * np.sort(dd, axis=1)[:, :2].mean(axis=1)
    np.fill_diagonal(dd, 0.0)
    radius = (pts[:, 1].max() - pts[:, 1].min()) / 8
    inside = dd <= radius
    np.testing.assert_allclose(p.sizes, (inside * d[None]).sum(1) / inside.sum(1), rtol=1e-5)
    np.testing.assert_array_equal(p.crowdedness, inside.sum(1))


def test_neighbor_limit_matches_bruteforce():
    rng = np.random.default_rng(4)
    pts = rng.uniform(0, 100, (80, 2))
    p = luda_sizes(pts, 100, K=2, beta=1.0, r=3, min_size=0.0, neighbor_limit=7)
    dd = np.linalg.norm(pts[:, None] - pts[None], axis=2)
    d = np.sort(dd, axis=1)[:, 1:3].mean(axis=1)
    radius = (pts[:, 1].max() - pts[:, 1].min()) / 3
    order = np.argsort(dd, axis=1, kind="stable")
    for j in range(len(pts)):
        members = [i for i in order[j] if dd[j, i] <= radius][:7]
        assert p.crowdedness[j] == len(members)
        assert p.sizes[j] == pytest.approx(d[members].mean(), rel=1e-5)
