"""A procedural synthetic crowd world: deterministic scenes with exact head annotations.

``render_scene(preset, seed, index)`` draws one RGB image together with head points, true head boxes and
per-head metadata. The same ``(preset, seed, index, size, overrides)`` gives the same image bit for bit.

What the scenes model (what the five papers rely on):

* Perspective: head size grows linearly with the image row, from ``size_range[0]`` (fraction of the image
  height) at the horizon row to ``size_range[1]`` at the bottom row, with a floor of ``min_head_px`` pixels.
  Dense presets place heads on a jittered lattice whose spacing is a fixed multiple of the local head size
  (density ~ 1 / size^2), so the nearest-neighbour distance tracks head size in crowded regions (the
  assumption behind Crowd-SDNet's LUDA); sparse presets scatter a few people (density ~ size^-p with a small
  p), so there it does not.
* Varied heads: skin / hair / hat palettes, partial turns (the face shifts sideways, back views show hair
  only), eyes on large faces, shoulders or bodies below the heads, painter's order (far first) so nearer
  people occlude farther ones, a small annotation jitter of the point around the true centre. The true box
  is the visible extent of the head; heads hidden more than ``max_occlusion`` are not annotated.
* Layouts: uniform, clustered (Gaussian mixture), street bands converging to a vanishing point, optional
  empty rectangles.
* Clutter and negatives: textured backgrounds (noise, stripes, gradients, building facades), round
  head-like distractors (``meta["distractors"]`` holds their boxes), images with zero heads.
* Difficulty: haze (low contrast) and blur growing towards the horizon, global blur and sensor noise.

Coordinates: pixel ``(r, c)`` covers ``[c, c+1) x [r, r+1)`` (see :mod:`crowdlib.data.synth_raster`);
points are ``(x, y)`` float32, boxes ``(x1, y1, x2, y2)`` float32 with ``x2, y2`` exclusive pixel edges.

``meta["sizes"]`` is the head size in pixels: the height of the full (unoccluded) head box, whose width is
``0.9`` times that.
"""
from __future__ import annotations

import os
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from crowdlib.data.records import CrowdRecord
from crowdlib.data.synth_config import (HAIR, HEAD_ASPECT, PRESETS, SKIN, SceneConfig, _rng,  # noqa: F401
                                        config_hash, list_presets, resolve_config)
from crowdlib.data.synth_raster import composite, shape_pixels, smooth_field


# ----------------------------------------------------------------------------------------------------------
# geometry: perspective, layout, placement


@dataclass
class _Geometry:
    height: int
    width: int
    horizon_row: float
    s_far: float
    s_near: float
    min_px: float

    def size_at(self, y: np.ndarray) -> np.ndarray:
        t = np.clip((np.asarray(y, np.float64) - self.horizon_row) / max(self.height - self.horizon_row, 1.0),
                    0.0, 1.0)
        return np.maximum(self.s_far + (self.s_near - self.s_far) * t, self.min_px)


def _layout_weight(rng: np.random.Generator, cfg: SceneConfig, geo: _Geometry) -> tuple[str, Any]:
    """Sample a layout and return ``(name, weight_fn)`` with ``weight_fn(x, y) -> [0, 1]``."""
    names = [n for n, _ in cfg.layouts]
    probs = np.array([p for _, p in cfg.layouts], np.float64)
    name = names[int(rng.choice(len(names), p=probs / probs.sum()))]
    h, w, yh = geo.height, geo.width, geo.horizon_row
    if name == "clustered":
        k = int(rng.integers(2, 6))
        mx = rng.uniform(0.05, 0.95, k) * w
        my = yh + rng.uniform(0.05, 1.0, k) * (h - yh)
        sg = rng.uniform(0.08, 0.25, k) * max(h, w)

        def base(x, y):
            d = ((x[:, None] - mx) ** 2 + (y[:, None] - my) ** 2) / (2 * sg ** 2)
            return np.clip(np.exp(-d).sum(1) * 1.2, 0.03, 1.0)
    elif name == "street":
        nb = int(rng.integers(1, 3))
        vx = rng.uniform(0.3, 0.7) * w
        xb = rng.uniform(-0.1, 1.1, nb) * w
        hw = rng.uniform(0.2, 0.45, nb) * w

        def base(x, y):
            t = np.clip((y - yh) / max(h - yh, 1.0), 0.0, 1.0)
            xc = vx + (xb - vx) * t[:, None]
            half = 0.02 * w + hw * t[:, None]
            return np.where((np.abs(x[:, None] - xc) < half).any(1), 1.0, 0.03)
    else:
        def base(x, y):
            return np.ones_like(x, dtype=np.float64)
    rects = np.zeros((0, 4))
    if rng.random() < cfg.empty_prob:
        nr = int(rng.integers(1, 4))
        rw = rng.uniform(0.15, 0.4, nr) * w
        rh = rng.uniform(0.15, 0.4, nr) * h
        rx = rng.uniform(0, 1, nr) * (w - rw)
        ry = yh + rng.uniform(0, 1, nr) * np.maximum(h - yh - rh, 0)
        rects = np.stack([rx, ry, rx + rw, ry + rh], 1)

    def weight(x, y):
        x = np.asarray(x, np.float64)
        y = np.asarray(y, np.float64)
        out = base(x, y)
        if len(rects):
            inside = ((x[:, None] >= rects[:, 0]) & (x[:, None] < rects[:, 2])
                      & (y[:, None] >= rects[:, 1]) & (y[:, None] < rects[:, 3])).any(1)
            out = np.where(inside, 0.0, out)
        return out

    return name, weight


def _place_lattice(rng, cfg, geo, weight, spacing):
    """Jittered grid in perspective coordinates: row step and column step are ``spacing * size(y)``."""
    h, w = geo.height, geo.width
    y_top = max(geo.horizon_row, 0.0)
    rows = []
    y = y_top + 0.5 * spacing * geo.size_at(y_top) * rng.random()
    while y < h:
        rows.append(y)
        y += spacing * float(geo.size_at(y))
    rows = np.asarray(rows)
    if len(rows) == 0:
        return np.zeros((0, 2))
    step = spacing * geo.size_at(rows)
    ncol = np.ceil(w / step).astype(np.int64) + 1
    rid = np.repeat(np.arange(len(rows)), ncol)
    start = np.cumsum(ncol) - ncol
    k = np.arange(int(ncol.sum())) - start[rid]
    phase = rng.random(len(rows))
    xs = (k + phase[rid]) * step[rid]
    ys = rows[rid].copy()
    jit = 0.3
    xs += rng.uniform(-jit, jit, len(xs)) * step[rid]
    ys += rng.uniform(-jit, jit, len(ys)) * step[rid]
    keep = (xs >= 0) & (xs < w) & (ys >= 0) & (ys < h)
    xs, ys = xs[keep], ys[keep]
    keep = rng.random(len(xs)) < weight(xs, ys)
    return np.stack([xs[keep], ys[keep]], 1)


def _place_poisson(rng, cfg, geo, weight, n):
    """``n`` independent positions with density proportional to ``weight * size(y) ** -density_power``."""
    h, w = geo.height, geo.width
    y_top = max(geo.horizon_row, 0.0)
    s_min = float(geo.size_at(y_top))
    out = []
    got = 0
    for _ in range(50):
        if got >= n:
            break
        m = max(4 * (n - got), 64)
        xs = rng.uniform(0, w, m)
        ys = rng.uniform(y_top, h, m)
        p = weight(xs, ys)
        if cfg.size_mode == "perspective":
            p = p * (geo.size_at(ys) / s_min) ** (-cfg.density_power)
        acc = rng.random(m) < p
        pts = np.stack([xs[acc], ys[acc]], 1)
        out.append(pts)
        got += len(pts)
    pts = np.concatenate(out, 0) if out else np.zeros((0, 2))
    return pts[:n]


def _separate(centers: np.ndarray, sizes: np.ndarray, min_sep: float, n: int) -> np.ndarray:
    """Greedy thinning: indices of up to ``n`` heads, in candidate order, none closer than
    ``min_sep * (s_i + s_j) / 2`` to an earlier kept head (``min_sep <= 0``: the first ``n``)."""
    if min_sep <= 0 or len(centers) == 0:
        return np.arange(min(n, len(centers)))
    kept: list[int] = []
    for i in range(len(centers)):  # a loop over candidates (at most a few hundred), not pixels
        if len(kept) >= n:
            break
        if kept:
            k = np.asarray(kept)
            d = np.hypot(centers[k, 0] - centers[i, 0], centers[k, 1] - centers[i, 1])
            if np.any(d < min_sep * 0.5 * (sizes[k] + sizes[i])):
                continue
        kept.append(i)
    return np.asarray(kept, dtype=np.int64)


# ----------------------------------------------------------------------------------------------------------
# appearance


def _palette_colours(rng, palette: str):
    """Return (ground, upper, haze) base colours for a palette."""
    if palette == "street":
        g = rng.uniform(95, 150)
        ground = np.array([g, g, g * rng.uniform(0.95, 1.08)])
        upper = rng.uniform([120, 110, 100], [225, 215, 210])
        haze = np.array([200.0, 205.0, 215.0])
    elif palette == "indoor":
        ground = rng.uniform([60, 45, 35], [150, 120, 95])
        upper = rng.uniform([70, 60, 50], [190, 170, 150])
        haze = rng.uniform([150, 140, 120], [200, 190, 175])
    else:
        ground = rng.uniform(60, 220, 3)
        upper = rng.uniform(60, 220, 3)
        haze = np.array([190.0, 190.0, 190.0])
    return ground.astype(np.float32), upper.astype(np.float32), haze.astype(np.float32)


def _background(rng, cfg, geo, palette_cols) -> tuple[np.ndarray, str]:
    h, w = geo.height, geo.width
    ground, upper, _ = palette_cols
    yy = (np.arange(h, dtype=np.float32) + 0.5)[:, None]
    xx = (np.arange(w, dtype=np.float32) + 0.5)[None, :]
    hr = geo.horizon_row
    soft = np.clip((yy - hr) / max(2.0, 0.03 * h), 0, 1)[..., None]
    img = upper[None, None, :] * (1 - soft) + ground[None, None, :] * soft
    img = np.broadcast_to(img, (h, w, 3)).astype(np.float32).copy()
    kind = cfg.backgrounds[int(rng.integers(len(cfg.backgrounds)))]
    if kind == "noise":
        amp = rng.uniform(15, 45)
        for c_cells in (4, 16):
            img += (amp * smooth_field(rng, h, w, c_cells))[..., None] * rng.uniform(0.7, 1.0, 3)
    elif kind == "stripes":
        theta = rng.uniform(0, np.pi)
        period = rng.uniform(0.03, 0.2) * h
        amp = rng.uniform(10, 35)
        s = np.sin(2 * np.pi * (xx * np.cos(theta) + yy * np.sin(theta)) / period)
        img += (amp * s)[..., None]
    elif kind == "gradient":
        theta = rng.uniform(0, 2 * np.pi)
        g = (xx * np.cos(theta) + yy * np.sin(theta)) / max(h, w)
        img += (rng.uniform(30, 70) * (g - g.mean()))[..., None] * rng.uniform(0.6, 1.0, 3)
    elif kind == "facade":
        # building blocks with window grids above the horizon, pavement stripes below
        nb = int(rng.integers(2, 6))
        edges = np.sort(rng.uniform(0, w, nb - 1))
        col_id = np.searchsorted(edges, xx[0])
        block_cols = rng.uniform(70, 210, (nb, 3)).astype(np.float32)
        top = int(max(0, min(h, hr)))
        if top > 0:
            img[:top] = block_cols[col_id][None, :, :]
            pw = rng.uniform(0.04, 0.1) * h
            ph = rng.uniform(0.05, 0.12) * h
            win = ((np.mod(xx, pw) < 0.55 * pw) & (np.mod(yy, ph) < 0.55 * ph))[:top]
            img[:top] = np.where(win[..., None], img[:top] * 0.55 + 20, img[:top])
        img += (12 * smooth_field(rng, h, w, 12))[..., None]
        period = rng.uniform(0.05, 0.12) * h
        lines = (np.mod(xx + 0.3 * yy, period) < 0.08 * period) & (yy > hr)
        img = np.where(lines[..., None], img * 0.85, img)
    img += rng.normal(0, 3.0, (h, w, 1)).astype(np.float32)
    return img, kind


def _people_layers(rng, cfg, geo, centers, sizes, depth0):
    """Build z-buffer layers (legs, bodies, heads) of people sorted far to near.

    Person ``i`` draws its legs and torso at depth ``depth0 + 2 i`` and its head at ``depth0 + 2 i + 1``, so a
    nearer person's body hides farther heads. Returns ``(layers, head_pixels, info)``; the head layer is last.
    """
    h, w = geo.height, geo.width
    n = len(centers)
    f32 = np.float32
    cx, cy = centers[:, 0], centers[:, 1]
    skin = (SKIN[rng.integers(len(SKIN), size=n)] * rng.uniform(0.9, 1.05, (n, 1))).astype(f32)
    hair = (HAIR[rng.integers(len(HAIR), size=n)] * rng.uniform(0.85, 1.15, (n, 1))).astype(f32)
    hat = rng.uniform(20, 240, (n, 3)).astype(f32)
    clothes = (rng.uniform(15, 230, (n, 3)) * rng.uniform(0.5, 1.0, (n, 1))).astype(f32)
    trousers = rng.uniform(20, 110, (n, 3)).astype(f32)
    has_hat = rng.random(n) < cfg.hat_prob
    back = rng.random(n) < cfg.back_prob
    turn = rng.uniform(-cfg.turn_max, cfg.turn_max, n) * rng.random(n)
    blen = cfg.body_length * rng.uniform(0.85, 1.15, n)
    bhx = 0.95 * sizes * rng.uniform(0.85, 1.1, n)
    # torso: superellipse top (shoulders), straight sides below the centre
    bhy = 0.5 * blen * sizes + 0.3 * sizes
    bcy = cy + 0.3 * sizes + bhy
    bp = shape_pixels(cx, bcy, bhx, bhy, h, w)
    bp = bp.select((np.abs(bp.u) ** 2.5 + np.abs(np.minimum(bp.v, 0)) ** 2.5 <= 1.0) & (bp.v <= 1.0))
    bcol = clothes[bp.sid] * np.clip(1.0 - 0.25 * bp.v - 0.15 * bp.u, 0.5, 1.3)[:, None]
    # legs below long torsos (street scenes): two dark columns
    has_legs = blen >= 1.8
    lhy = np.where(has_legs, 0.5 * blen * sizes, 0.0)
    lp = shape_pixels(cx, bcy + bhy + lhy, np.where(has_legs, 0.8 * bhx, 0.0), lhy, h, w)
    lp = lp.select(has_legs[lp.sid] & (np.abs(lp.u) >= 0.08) & (np.abs(lp.u) <= 1.0))
    lcol = trousers[lp.sid] * np.clip(1.0 - 0.2 * lp.v, 0.6, 1.2)[:, None]
    # heads: ellipse with face / hair / hat regions
    hp = shape_pixels(cx, cy, 0.5 * HEAD_ASPECT * sizes, 0.5 * sizes, h, w)
    hp = hp.select(hp.u * hp.u + hp.v * hp.v <= 1.0)
    u, v, sid = hp.u, hp.v, hp.sid
    t = turn[sid].astype(f32)
    fx = 0.62 * (1 - 0.45 * np.abs(t))
    face = (((u - 0.45 * t) / fx) ** 2 + ((v - 0.2) / 0.72) ** 2 <= 1.0) & ~back[sid]
    hcol = np.where(face[:, None], skin[sid], hair[sid])
    eyes = face & (sizes[sid] >= 10) & (np.abs(v - 0.05) < 0.1)
    eyes &= (np.abs(u - 0.45 * t - 0.28) < 0.09) | (np.abs(u - 0.45 * t + 0.28) < 0.09)
    hcol = np.where(eyes[:, None], f32(30.0), hcol)
    hcol = np.where((has_hat[sid] & (v < -0.2))[:, None], hat[sid], hcol)
    hcol = hcol * np.clip(1.08 - 0.12 * u - 0.15 * v - 0.12 * (u * u + v * v), 0.6, 1.25)[:, None]
    layers = [
        (lp.row * w + lp.col, depth0 + 2 * lp.sid, lcol, None),
        (bp.row * w + bp.col, depth0 + 2 * bp.sid, bcol, None),
        (hp.row * w + hp.col, depth0 + 2 * hp.sid + 1, hcol, None),
    ]
    info = dict(turn=turn, has_hat=has_hat, back=back)
    return layers, hp, info


def _distractor_layer(rng, cfg, geo, centers, sizes):
    h, w = geo.height, geo.width
    m = len(centers)
    r = 0.5 * sizes * rng.uniform(0.8, 1.2, m)
    kind = rng.integers(0, 3, m)
    hard = rng.random(m) < 0.5
    col = np.where(hard[:, None],
                   np.concatenate([SKIN, HAIR])[rng.integers(len(SKIN) + len(HAIR), size=m)],
                   rng.uniform(20, 240, (m, 3))).astype(np.float32)
    col2 = rng.uniform(20, 240, (m, 3)).astype(np.float32)
    dp = shape_pixels(centers[:, 0], centers[:, 1], r, r, h, w)
    rr = dp.u ** 2 + dp.v ** 2
    k = kind[dp.sid]
    inside = rr <= 1.0
    inside &= ~((k == 1) & (rr < 0.3))  # rings
    stripe = (k == 2) & (np.mod(np.floor((dp.u + 1) * 3), 2) == 0)
    c = np.where(stripe[:, None], col2[dp.sid], col[dp.sid])
    c = c * np.clip(1.15 - 0.2 * (dp.u + dp.v) - 0.2 * rr, 0.6, 1.3)[:, None]
    boxes = np.stack([centers[:, 0] - r, centers[:, 1] - r, centers[:, 0] + r, centers[:, 1] + r], 1)
    boxes = np.clip(boxes, 0, [w, h, w, h])
    return (dp.row * w + dp.col, dp.sid.astype(np.int64), c, inside), boxes


def render_scene(preset: str | SceneConfig, seed: int, index: int, *, height: int | None = None,
                 width: int | None = None, **overrides: Any) -> CrowdRecord:
    """Render one synthetic scene.

    Args:
        preset: a name from :data:`PRESETS` or a :class:`SceneConfig`.
        seed: dataset seed.
        index: image index within the dataset.
        height, width: image size (defaults: the config's, 256 x 256).
        **overrides: any :class:`SceneConfig` field, e.g. ``count_range=(100, 100)``.

    Returns:
        A :class:`CrowdRecord` with ``image`` ``(H, W, 3)`` uint8, ``points`` ``(N, 2)``, ``boxes`` ``(N, 4)``
        (visible head extent), ``image_size`` and ``meta`` with ``"sizes"`` ``(N,)`` (full head box height,
        px), ``"occlusion"`` ``(N,)`` hidden fraction in ``[0, 1]``, ``"domain"``, ``"distractors"`` ``(M, 4)``,
        ``"preset"``, ``"seed"``, ``"index"``, and scene details (``"centers"`` true head centres, ``"far"``
        ``(N,)`` haze / blur weight at the head's row (1 at the horizon: hard, 0 at the bottom), ``"turn"``,
        ``"has_hat"``, ``"layout"``, ``"background"``, ``"horizon_row"``, ``"spacing"``).
    """
    cfg = resolve_config(preset, height, width, **overrides)
    if not isinstance(seed, (int, np.integer)) or not isinstance(index, (int, np.integer)):
        raise ValueError(f"seed and index must be integers, got {seed!r}, {index!r}")
    rng = _rng(cfg.name, seed, index)
    h, w = cfg.height, cfg.width
    # per-image geometry
    hz = rng.uniform(*cfg.horizon) * h
    scale = rng.uniform(1 - cfg.size_jitter, 1 + cfg.size_jitter)
    geo = _Geometry(h, w, hz, cfg.size_range[0] * h * scale, cfg.size_range[1] * h * scale, cfg.min_head_px)
    palette_cols = _palette_colours(rng, cfg.palette)
    img, bg_kind = _background(rng, cfg, geo, palette_cols)
    layout, weight = _layout_weight(rng, cfg, geo)
    negative = cfg.placement == "none" or rng.random() < cfg.negative_prob
    spacing = float(np.exp(rng.uniform(*np.log(cfg.spacing_range))))
    if negative:
        centers = np.zeros((0, 2))
    elif cfg.placement == "lattice":
        centers = _place_lattice(rng, cfg, geo, weight, spacing)
    else:
        lo, hi = cfg.count_range
        n_target = int(np.floor(np.exp(rng.uniform(np.log(max(lo, 1)), np.log(max(hi, 1) + 1)))))
        n_target = min(max(n_target, lo), hi)
        oversample = 4 if cfg.min_separation > 0 else 1
        centers = _place_poisson(rng, cfg, geo, weight, oversample * n_target)
    if len(centers) > cfg.max_heads and cfg.placement == "lattice":
        centers = centers[np.sort(rng.choice(len(centers), cfg.max_heads, replace=False))]
    n = len(centers)
    if cfg.size_mode == "perspective":
        sizes = geo.size_at(centers[:, 1]) * np.exp(rng.normal(0, cfg.size_noise, n))
    else:
        lo_s, hi_s = np.log(geo.s_far), np.log(geo.s_near)
        sizes = np.exp(rng.uniform(lo_s, hi_s, n))
    sizes = np.maximum(sizes, cfg.min_head_px)
    if cfg.placement == "poisson" and not negative:
        keep_idx = _separate(centers, sizes, cfg.min_separation, min(n_target, cfg.max_heads))
        centers, sizes = centers[keep_idx], sizes[keep_idx]
        n = len(centers)
    order = np.argsort(centers[:, 1], kind="stable")  # painter's order: far (top) first
    centers, sizes = centers[order], sizes[order]
    # distractors: round head-like objects standing in the scene
    m_lo, m_hi = cfg.distractor_range
    m = int(rng.integers(m_lo, m_hi + 1)) if m_hi > 0 else 0
    dy = rng.uniform(max(hz, 0), h, m)
    dc = np.stack([rng.uniform(0, w, m), dy], 1)
    dsz = geo.size_at(dy) * rng.uniform(0.7, 1.6, m) if cfg.size_mode == "perspective" else \
        np.exp(rng.uniform(np.log(geo.s_far), np.log(geo.s_near), m))
    d_layer, d_boxes = _distractor_layer(rng, cfg, geo, dc, np.maximum(dsz, cfg.min_head_px))
    layers, hp, info = _people_layers(rng, cfg, geo, centers, sizes, depth0=m)
    vis = composite(img, [d_layer, *layers])
    # visibility of heads -> occlusion, visible boxes
    hsid = hp.sid
    total = np.bincount(hsid, minlength=n).astype(np.float64)
    vwin = vis[-1]
    visible = np.bincount(hsid[vwin], minlength=n).astype(np.float64)
    occl = np.where(total > 0, 1.0 - visible / np.maximum(total, 1), 1.0)
    rows, cols = hp.row[vwin], hp.col[vwin]
    vs = hsid[vwin]
    x1 = np.full(n, np.inf)
    y1 = np.full(n, np.inf)
    x2 = np.full(n, -np.inf)
    y2 = np.full(n, -np.inf)
    np.minimum.at(x1, vs, cols)
    np.minimum.at(y1, vs, rows)
    np.maximum.at(x2, vs, cols + 1)
    np.maximum.at(y2, vs, rows + 1)
    keep = (occl <= cfg.max_occlusion) & (visible > 0)
    # post-processing: haze and blur towards the horizon, global blur, brightness, noise
    far = np.clip(1 - (np.arange(h) + 0.5 - max(hz, 0)) / max(h - max(hz, 0), 1), 0, 1)[:, None, None]
    far = far.astype(np.float32)
    _, _, haze_col = palette_cols
    if cfg.haze > 0:
        img = img * (1 - cfg.haze * far ** 1.5) + haze_col * (cfg.haze * far ** 1.5)
    res = h / 256.0
    if cfg.far_blur > 0:
        blurred = ndimage.gaussian_filter(img, (cfg.far_blur * res, cfg.far_blur * res, 0))
        img = img * (1 - far) + blurred * far
    sig = rng.uniform(*cfg.blur) * res
    if sig > 0.05:
        img = ndimage.gaussian_filter(img, (sig, sig, 0))
    img = img * rng.uniform(*cfg.brightness)
    img = img + rng.normal(0, rng.uniform(*cfg.noise_std), img.shape).astype(np.float32)
    image = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    # annotations
    centers_k, sizes_k = centers[keep], sizes[keep]
    pts = centers_k + rng.normal(0, cfg.point_jitter, (n, 2))[keep] * sizes_k[:, None]
    pts = np.clip(pts.astype(np.float32), np.float32(0), np.nextafter(np.array([w, h], np.float32), np.float32(0)))
    boxes = np.stack([x1, y1, x2, y2], 1)[keep]
    meta = {
        "sizes": sizes_k.astype(np.float32),
        "occlusion": occl[keep].astype(np.float32),
        "domain": cfg.domain,
        "distractors": d_boxes.astype(np.float32).reshape(-1, 4),
        "preset": cfg.name,
        "seed": int(seed),
        "index": int(index),
        "centers": centers_k.astype(np.float32).reshape(-1, 2),
        "far": far[np.clip(centers_k[:, 1].astype(np.int64), 0, h - 1), 0, 0].astype(np.float32).reshape(-1),
        "turn": info["turn"][keep].astype(np.float32),
        "has_hat": info["has_hat"][keep],
        "back": info["back"][keep],
        "layout": layout if not negative else "none",
        "background": bg_kind,
        "horizon_row": float(hz),
        "spacing": spacing if cfg.placement == "lattice" else float("nan"),
    }
    return CrowdRecord(image_id=f"{cfg.name}-{int(seed)}-{int(index)}", points=pts.astype(np.float32),
                       image=image, boxes=boxes.astype(np.float32), image_size=(h, w), meta=meta)


# ----------------------------------------------------------------------------------------------------------
# dataset of scenes

_META_SCALARS = ("domain", "preset", "seed", "index", "layout", "background", "horizon_row", "spacing")


def _save_npz(path: Path, rec: CrowdRecord) -> None:
    arrays = {"image": rec.image, "points": rec.points, "boxes": rec.boxes}
    for k, v in rec.meta.items():
        arrays["meta__" + k] = np.asarray(v)
    # a name of this process's own: parallel study workers may render the same scene at the same moment
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def _load_npz(path: Path, image_id: str) -> CrowdRecord:
    with np.load(path, allow_pickle=False) as z:
        meta: dict[str, Any] = {}
        for k in z.files:
            if k.startswith("meta__"):
                key = k[len("meta__"):]
                val = z[k]
                if key in _META_SCALARS:
                    val = val.item()
                meta[key] = val
        img = z["image"]
        return CrowdRecord(image_id=image_id, points=z["points"], image=img, boxes=z["boxes"],
                           image_size=(int(img.shape[0]), int(img.shape[1])), meta=meta)


class SyntheticCrowds(Sequence):
    """A lazily rendered sequence of ``n`` synthetic scenes (``Sequence[CrowdRecord]``).

    Item ``i`` is ``render_scene(preset, seed, i, height=height, width=width, **overrides)``. Rendered
    records are kept in an in-memory LRU cache of ``lru_size`` items and, when ``cache_dir`` is given, in
    ``.npz`` files named by preset, seed, index and a hash of the full config.
    """

    def __init__(self, preset: str | SceneConfig, n: int, seed: int = 0, *, height: int | None = None,
                 width: int | None = None, cache_dir: str | Path | None = None, lru_size: int = 256,
                 **overrides: Any) -> None:
        if int(n) < 0:
            raise ValueError(f"n: number of scenes must be >= 0, got {n}")
        self.config = resolve_config(preset, height, width, **overrides)
        self.preset = self.config.name
        self.n = int(n)
        self.seed = int(seed)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
        self.lru_size = int(lru_size)
        self._lru: OrderedDict[int, CrowdRecord] = OrderedDict()
        self._hash = config_hash(self.config)

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self.n))]
        i = int(i)
        if i < 0:
            i += self.n
        if not 0 <= i < self.n:
            raise IndexError(f"SyntheticCrowds index {i} out of range for {self.n} scenes")
        if i in self._lru:
            self._lru.move_to_end(i)
            return self._lru[i]
        rec = None
        path = None
        if self.cache_dir is not None:
            path = self.cache_dir / f"{self.preset}-{self.seed}-{i}-{self.config.height}x{self.config.width}" \
                                    f"-{self._hash}.npz"
            if path.exists():
                rec = _load_npz(path, f"{self.preset}-{self.seed}-{i}")
        if rec is None:
            rec = render_scene(self.config, self.seed, i)
            if path is not None:
                _save_npz(path, rec)
        self._lru[i] = rec
        if len(self._lru) > self.lru_size:
            self._lru.popitem(last=False)
        return rec

    def __repr__(self) -> str:
        return (f"SyntheticCrowds(preset={self.preset!r}, n={self.n}, seed={self.seed}, "
                f"size={self.config.height}x{self.config.width})")
