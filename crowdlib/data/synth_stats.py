"""Statistics of annotated scenes (synthetic or real): counts, head sizes, nearest-neighbour distances.

Used by ``notebooks/01_synthetic_world.ipynb`` to check that the synthetic world has the properties the papers
rely on, chiefly Crowd-SDNet's LUDA assumption that the distance to the nearest neighbour tracks head size in
crowded regions (and fails in sparse ones).
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from crowdlib.data.records import CrowdRecord


def nn_distance(points: np.ndarray, k: int = 1) -> np.ndarray:
    """Mean distance from each point to its ``k`` nearest other points (``inf`` when there are none)."""
    p = np.asarray(points, np.float64).reshape(-1, 2)
    if k < 1:
        raise ValueError(f"k: expected >= 1, got {k}")
    if len(p) < 2:
        return np.full(len(p), np.inf)
    kk = min(k, len(p) - 1)
    d, _ = cKDTree(p).query(p, k=kk + 1)
    return d[:, 1:].mean(1)


def local_count(points: np.ndarray, radius: float) -> np.ndarray:
    """Number of *other* points within ``radius`` of each point."""
    p = np.asarray(points, np.float64).reshape(-1, 2)
    if len(p) == 0:
        return np.zeros(0, np.int64)
    counts = cKDTree(p).query_ball_point(p, r=radius, return_length=True)
    return np.asarray(counts, np.int64) - 1


def head_sizes(rec: CrowdRecord) -> np.ndarray:
    """Per-head size: ``meta["sizes"]`` when present, else the box height, else NaN."""
    if "sizes" in rec.meta:
        return np.asarray(rec.meta["sizes"], np.float64)
    if rec.boxes is not None:
        return (rec.boxes[:, 3] - rec.boxes[:, 1]).astype(np.float64)
    return np.full(rec.count, np.nan)


def head_table(records: Iterable[CrowdRecord], k: int = 1, region_divisor: float = 10.0,
               dense_min: int = 8) -> pd.DataFrame:
    """One row per head: position, size, occlusion, nearest-neighbour distance and local crowdedness.

    Args:
        records: annotated records.
        k: neighbours averaged in ``nn_dist``.
        region_divisor: the local region is a circle of radius ``image height / region_divisor`` (as LUDA's
            ``r``); ``n_local`` counts the other heads inside it.
        dense_min: a head is in a ``"dense"`` region when ``n_local >= dense_min``, else ``"sparse"``.
    """
    frames = []
    for rec in records:
        if rec.count == 0:
            continue
        h = rec.image_size[0] if rec.image_size is not None else float(np.ptp(rec.points[:, 1]) + 1)
        nloc = local_count(rec.points, h / region_divisor)
        frames.append(pd.DataFrame({
            "image_id": rec.image_id,
            "preset": rec.meta.get("preset", ""),
            "domain": rec.meta.get("domain", ""),
            "seed": rec.meta.get("seed", -1),
            "x": rec.points[:, 0], "y": rec.points[:, 1],
            "size": head_sizes(rec),
            "occlusion": np.asarray(rec.meta.get("occlusion", np.full(rec.count, np.nan)), np.float64),
            "nn_dist": nn_distance(rec.points, k),
            "n_local": nloc,
            "region": np.where(nloc >= dense_min, "dense", "sparse"),
            "count": rec.count,
        }))
    cols = ["image_id", "preset", "domain", "seed", "x", "y", "size", "occlusion", "nn_dist", "n_local", "region",
            "count"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


def scene_table(records: Iterable[CrowdRecord]) -> pd.DataFrame:
    """One row per image: count, head-size summary, distractors, layout and background."""
    rows = []
    for rec in records:
        s = head_sizes(rec)
        rows.append({
            "image_id": rec.image_id, "preset": rec.meta.get("preset", ""), "seed": rec.meta.get("seed", -1),
            "count": rec.count,
            "size_median": float(np.median(s)) if len(s) else np.nan,
            "size_min": float(s.min()) if len(s) else np.nan, "size_max": float(s.max()) if len(s) else np.nan,
            "occlusion_mean": float(np.mean(rec.meta["occlusion"])) if rec.count and "occlusion" in rec.meta
            else np.nan,
            "distractors": int(len(rec.meta.get("distractors", ()))),
            "layout": rec.meta.get("layout", ""), "background": rec.meta.get("background", ""),
        })
    return pd.DataFrame(rows)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of finite pairs (NaN with fewer than 3 pairs or zero variance)."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    ok = np.isfinite(a) & np.isfinite(b)
    a, b = a[ok], b[ok]
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def size_nn_correlation(heads: pd.DataFrame, by: str | Sequence[str] = "preset") -> pd.DataFrame:
    """Per group: Pearson r of head size vs nearest-neighbour distance (``pearson_r``) and vs the image row
    (``size_row_r``, perspective), and the median ratio nn / size."""
    rows = []
    for key, g in heads.groupby(by, sort=False):
        rows.append({**(dict(zip(by, key)) if isinstance(by, (list, tuple)) else {by: key}),
                     "heads": len(g), "images": g["image_id"].nunique(),
                     "pearson_r": pearson(g["size"], g["nn_dist"]),
                     "size_row_r": pearson(g["size"], g["y"]),
                     "median_nn_over_size": float(np.nanmedian(g["nn_dist"] / g["size"])) if len(g) else np.nan})
    return pd.DataFrame(rows)


def time_render(preset: str, n_images: int = 10, seed: int = 0, height: int = 256, width: int = 256,
                **overrides: Any) -> pd.DataFrame:
    """Process (CPU) time of ``render_scene`` per image, with the head count (one row per image)."""
    from crowdlib.data.synthetic import render_scene

    render_scene(preset, seed, 0, height=height, width=width, **overrides)  # warm-up
    rows = []
    for i in range(n_images):
        t0 = time.process_time()
        rec = render_scene(preset, seed, i, height=height, width=width, **overrides)
        rows.append({"preset": preset, "index": i, "count": rec.count,
                     "ms": 1000.0 * (time.process_time() - t0)})
    return pd.DataFrame(rows)


# =====================================================================================================================
# calibration of the stand-in presets against real datasets
# =====================================================================================================================
#: Quantiles reported by :func:`calibration_stats`.
CAL_QUANTILES: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75, 0.9)
#: Histogram edges: counts per image (log-spaced) and nearest-neighbour distance / image height.
COUNT_EDGES: tuple[float, ...] = tuple(float(x) for x in np.round(np.geomspace(5, 5000, 31), 2))
NN_EDGES: tuple[float, ...] = tuple(float(x) for x in np.round(np.linspace(0.0, 0.1, 41), 4))


def calibration_stats(records: Iterable[CrowdRecord]) -> dict[str, Any]:
    """The statistics a stand-in preset is calibrated on: count per image, nearest-neighbour distance (pixels and
    as a fraction of the image height), image heights; quantiles (:data:`CAL_QUANTILES`) and histograms
    (:data:`COUNT_EDGES`, :data:`NN_EDGES`). Plain lists and floats (JSON-ready)."""
    counts, nn_px, nn_rel, heights = [], [], [], []
    for rec in records:
        h = int(rec.image_size[0]) if rec.image_size is not None else int(rec.load_image().shape[0])
        counts.append(rec.count)
        heights.append(h)
        if rec.count >= 2:
            d = nn_distance(rec.points, 1)
            nn_px.append(d)
            nn_rel.append(d / h)
    if not counts:
        raise ValueError("calibration_stats: no records")
    nn_px_a = np.concatenate(nn_px) if nn_px else np.zeros(0)
    nn_rel_a = np.concatenate(nn_rel) if nn_rel else np.zeros(0)
    c = np.asarray(counts, np.float64)

    def q(a: np.ndarray) -> list[float]:
        return [float(v) for v in np.quantile(a, CAL_QUANTILES)] if len(a) else [float("nan")] * len(CAL_QUANTILES)

    return {"n_images": len(counts), "height_median": float(np.median(heights)),
            "count_mean": float(c.mean()), "count_q": q(c), "nn_px_q": q(nn_px_a), "nn_rel_q": q(nn_rel_a),
            "count_hist": np.histogram(c, COUNT_EDGES)[0].tolist(),
            "nn_rel_hist": np.histogram(nn_rel_a, NN_EDGES)[0].tolist()}


def calibration_table(stats: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per named statistics dict (e.g. ``{"SHA train (real)": ..., "sha_like": ...}``): image height,
    count mean and quantiles, nearest-neighbour distance / height quantiles."""
    rows = []
    for name, s in stats.items():
        row = {"set": name, "images": s["n_images"], "height": s["height_median"], "count mean": s["count_mean"]}
        for qq, v in zip(CAL_QUANTILES, s["count_q"]):
            row[f"count q{int(100 * qq)}"] = v
        for qq, v in zip(CAL_QUANTILES, s["nn_rel_q"]):
            row[f"NN/H q{int(100 * qq)}"] = v
        rows.append(row)
    return pd.DataFrame(rows).set_index("set")


#: Where :func:`real_calibration_stats` keeps the statistics of the real datasets (written by
#: ``tools/calibrate_synthetic.py`` from ``../shared``; statistics only, no images or annotations).
REAL_STATS_FILE = "real_stats.json"
#: The real dataset each calibrated preset stands for: ``(ShanghaiTech part, split)``.
REAL_COUNTERPART: dict[str, tuple[str, str]] = {"sha_like": ("A", "train"), "shb_like": ("B", "train")}


def real_calibration_stats(part: str, data_root: Any = None) -> tuple[dict[str, Any], str]:
    """:func:`calibration_stats` of ShanghaiTech ``part`` train, and where they came from.

    Computed from the data when ``data_root`` (default :func:`crowdlib.paths.default_data_root`) holds them,
    else read from the committed ``crowdlib/data/real_stats.json`` (so that users without the data see the
    calibration target). Returns ``(stats, source)``.
    """
    import json
    from pathlib import Path

    from crowdlib import paths

    root = Path(data_root) if data_root else paths.default_data_root("ShanghaiTech")
    if root is not None and (Path(root) / f"part_{part}" / "train_data").is_dir():
        from crowdlib.data.formats import read_shanghaitech

        return calibration_stats(read_shanghaitech(root, part, "train")), f"computed from {root}"
    path = Path(__file__).with_name(REAL_STATS_FILE)
    stored = json.loads(path.read_text())
    key = f"SH{part}_train"
    if key not in stored:
        raise KeyError(f"real_calibration_stats: {path} has no {key!r} (have {sorted(stored)})")
    return stored[key], f"stored statistics {path.name} (the data are absent)"
