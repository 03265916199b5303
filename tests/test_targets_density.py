"""Density maps: count preservation, fast == classic, adaptive sigmas, special cases."""
import numpy as np
import pytest

import crowdlib.targets.density as dens
from crowdlib.targets import adaptive_sigmas, density_map, kernel_radius

H, W = 40, 56


def _points(n=30, seed=0):
    rng = np.random.default_rng(seed)
    pts = rng.uniform([0, 0], [W, H], (n, 2))
    pts[0] = [0.0, 0.0]          # corner
    pts[1] = [W - 0.01, H / 2]   # right border
    pts[2] = [W + 3.0, -2.0]     # slightly outside: clipped into the corner pixel
    pts[4] = pts[3]              # coincident pair
    return pts


def test_single_head_matches_hand_kernel():
    sigma, truncate = 1.0, 2.0  # radius int(2 * 1 + 0.5) = 2 -> 5x5 kernel
    d = density_map([[10.7, 20.2]], (H, W), sigma, truncate=truncate)
    g = np.exp(-0.5 * np.arange(-2, 3) ** 2)
    g /= g.sum()
    expected = np.zeros((H, W))
    expected[18:23, 8:13] = np.outer(g, g)  # head pixel (row 20, col 10)
    np.testing.assert_allclose(d, expected, atol=1e-7)


@pytest.mark.parametrize("sigma", [4.0, "adaptive", 0.0, 2.5])
def test_renormalized_sums_to_count_even_at_borders(sigma):
    pts = _points()
    d = density_map(pts, (H, W), sigma)
    assert d.shape == (H, W) and d.dtype == np.float32
    assert d.sum() == pytest.approx(len(pts), abs=1e-3)
    assert (d >= 0).all()


def test_classic_loses_mass_at_borders_without_renormalization():
    d = density_map([[0.0, 0.0]], (H, W), 4.0, renormalize=False)
    # a corner head keeps about a quarter of its (symmetric) kernel plus the centre row/column
    assert 0.25 < d.sum() < 0.4


@pytest.mark.parametrize("sigma", [4.0, "adaptive", 1.5])
@pytest.mark.parametrize("renormalize", [False, True])
def test_fast_matches_classic(sigma, renormalize):
    pts = _points(40, seed=1)
    fast = density_map(pts, (H, W), sigma, renormalize=renormalize, method="fast", dtype=np.float64)
    classic = density_map(pts, (H, W), sigma, renormalize=renormalize, method="classic", dtype=np.float64)
    assert fast.dtype == np.float64
    assert np.abs(fast - classic).max() < 1e-12


def test_fast_matches_classic_on_wide_kernel_path(monkeypatch):
    monkeypatch.setattr(dens, "_CHUNK_ELEMENTS", 30)  # every kernel takes the per-head path
    pts = _points(12, seed=2)
    fast = density_map(pts, (H, W), "adaptive", renormalize=False)
    classic = density_map(pts, (H, W), "adaptive", renormalize=False, method="classic")
    assert np.abs(fast - classic).max() < 1e-6
    assert density_map(pts, (H, W), 6.0).sum() == pytest.approx(12, abs=1e-4)


def test_zero_points_gives_zero_map():
    d = density_map(np.zeros((0, 2)), (H, W), "adaptive")
    assert d.shape == (H, W) and d.sum() == 0


def test_adaptive_sigma_special_cases():
    assert adaptive_sigmas(np.zeros((0, 2)), (H, W)).shape == (0,)
    # one head: the published fallback mean(H, W) / 4
    assert adaptive_sigmas([[5, 5]], (H, W))[0] == pytest.approx((H + W) / 2 / 4)
    assert adaptive_sigmas([[5, 5]], (H, W), lone_sigma=3.0)[0] == 3.0
    # two heads 10 px apart: each uses its single neighbour
    np.testing.assert_allclose(adaptive_sigmas([[0, 0], [10, 0]], (H, W)), [3.0, 3.0])
    # three heads with k=3: the two available neighbours are averaged
    s = adaptive_sigmas([[0, 0], [3, 0], [0, 4]], (H, W), k=3, beta=1.0)
    np.testing.assert_allclose(s, [(3 + 4) / 2, (3 + 5) / 2, (4 + 5) / 2])


def test_coincident_heads_are_deltas_like_the_published_scripts():
    d = density_map([[5.5, 6.5], [5.5, 6.5]], (H, W), "adaptive")
    assert d[6, 5] == pytest.approx(2.0)
    assert d.sum() == pytest.approx(2.0)


def test_kernel_radius_rule():
    np.testing.assert_array_equal(kernel_radius(np.array([0.0, 1.0, 4.0, 3.9]), 4.0), [0, 4, 16, 16])
    assert kernel_radius(4.0, 1.75) == 7  # the "15x15, sigma 4" convention


def test_per_head_sigma_array():
    d = density_map([[10, 10], [30, 30]], (H, W), np.array([1.0, 2.0]))
    assert d.sum() == pytest.approx(2.0, abs=1e-5)
    assert d[10, 10] > d[30, 30]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(points=[[np.nan, 1.0]]), "NaN"),
        (dict(points=[[1.0, 2.0, 3.0]]), "shape"),
        (dict(sigma="wide"), "adaptive"),
        (dict(sigma=np.array([1.0, 2.0])), "sigmas for"),
        (dict(sigma=-1.0), ">= 0"),
        (dict(method="slow"), "method"),
        (dict(shape=(0, 5)), "positive"),
    ],
)
def test_bad_input_raises(kwargs, match):
    args = dict(points=[[1.0, 1.0]], shape=(H, W), sigma=4.0)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        density_map(args.pop("points"), args.pop("shape"), **args)
