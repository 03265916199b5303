"""Benchmark of the ground-truth builders (``crowdlib.targets``).

Prints, for one 768x1024 image with about 1,000 heads (the ShanghaiTech A train image closest to
that count when ``../shared`` is present, synthetic uniform points otherwise):

* adaptive density map time, ours (``method="fast"``) and the published algorithm
  (``method="classic"``, one full-image Gaussian filter per head), their ratio, and the per-pixel
  maximum difference with renormalisation off;
* LUDA time for that image and for all 300 SHA train images (reading excluded);
* CSP targets, instance map and SSR labels time for that image;
* the synthetic world's ``render_scene`` time when that function exists.

Run with one thread for comparable numbers:
``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/targets.py``.
"""
from __future__ import annotations

import argparse
import sys
import os
import statistics
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median_time  # noqa: E402





def _pick_points(args: argparse.Namespace):
    """(points, (H, W), description, all SHA train records or None)."""
    from crowdlib.paths import default_data_root

    root = default_data_root("ShanghaiTech") if args.source in ("auto", "sha") else None
    if root is None and args.source == "sha":
        raise SystemExit("--source sha: ../shared/data/ShanghaiTech not found")
    if root is not None:
        from crowdlib.data.formats import read_shanghaitech

        t0 = time.perf_counter()
        recs = read_shanghaitech(root, "A", "train")
        read_s = time.perf_counter() - t0
        same = [r for r in recs if r.image_size == (args.height, args.width)] or recs
        best = min(same, key=lambda r: abs(r.count - args.heads))
        desc = (f"ShanghaiTech A train {best.image_id} ({best.image_size[0]}x{best.image_size[1]}, "
                f"{best.count} heads); reading 300 annotations took {read_s:.2f} s")
        return best.points, best.image_size, desc, recs
    rng = np.random.default_rng(args.seed)
    pts = rng.uniform(0, [args.width, args.height], (args.heads, 2)).astype(np.float32)
    return pts, (args.height, args.width), f"synthetic uniform points ({args.heads} heads)", None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", choices=("auto", "sha", "synthetic"), default="auto",
                        help="where the head points come from: 'auto' uses ShanghaiTech A when present")
    parser.add_argument("--heads", type=int, default=1000, help="target number of heads in the image")
    parser.add_argument("--height", type=int, default=768, help="image height for synthetic points / SHA choice")
    parser.add_argument("--width", type=int, default=1024, help="image width for synthetic points / SHA choice")
    parser.add_argument("--repeats", type=int, default=3, help="repetitions of each fast timing (median)")
    parser.add_argument("--skip-classic", action="store_true",
                        help="skip the classic density map (about 30 ms per head on one core)")
    parser.add_argument("--render-preset", default="crowd_dense", help="synthetic preset timed with render_scene")
    parser.add_argument("--render-images", type=int, default=5, help="number of synthetic scenes rendered")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic points and scenes")
    args = parser.parse_args(argv)

    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass
    from crowdlib.targets import (
        LUDA_PRESETS,
        csp_targets,
        density_map,
        instance_map_from_points,
        luda_sizes,
        ssr_labels,
    )

    print(f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    pts, shape, desc, recs = _pick_points(args)
    print(f"image: {desc}")

    t_fast, dens = median_time(lambda: density_map(pts, shape, "adaptive"), args.repeats)
    print(f"adaptive density (ours, fast, renormalised): {t_fast * 1e3:.1f} ms, sum {dens.sum():.3f}")
    t_fast_raw, _ = median_time(lambda: density_map(pts, shape, "adaptive", renormalize=False), args.repeats)
    print(f"adaptive density (ours, fast, renormalize=False): {t_fast_raw * 1e3:.1f} ms")
    fast_raw = density_map(pts, shape, "adaptive", renormalize=False, dtype=np.float64)
    if not args.skip_classic:
        t_classic, classic = median_time(
            lambda: density_map(pts, shape, "adaptive", renormalize=False, method="classic", dtype=np.float64), 1)
        diff = float(np.abs(fast_raw - classic).max())
        print(f"adaptive density (classic, one full-image filter per head): {t_classic:.2f} s, "
              f"sum {classic.sum():.3f}")
        print(f"speed-up classic / ours (both renormalize=False): {t_classic / t_fast_raw:.0f}x")
        print(f"max per-pixel |ours - classic| (renormalize=False, float64 maps): {diff:.2e} "
              f"(max pixel value {classic.max():.3f})")

    sha = dict(LUDA_PRESETS["SHA"])
    t_luda, ps = median_time(lambda: luda_sizes(pts, shape[0], **sha), args.repeats)
    print(f"LUDA (SHA preset) on this image: {t_luda * 1e3:.2f} ms")
    if recs is not None:
        t0 = time.perf_counter()
        for r in recs:
            luda_sizes(r.points, r.image_size[0], **sha)
        print(f"LUDA on all {len(recs)} SHA train images: {time.perf_counter() - t0:.2f} s "
              f"({sum(r.count for r in recs)} heads)")

    t_csp, _ = median_time(lambda: csp_targets(pts, ps.sizes, shape, crowdedness=ps.weights), args.repeats)
    t_csp4, _ = median_time(lambda: csp_targets(pts, ps.sizes, shape, stride=4), args.repeats)
    print(f"CSP targets: stride 1 {t_csp * 1e3:.1f} ms, stride 4 {t_csp4 * 1e3:.1f} ms")
    t_inst, (_, kept) = median_time(lambda: instance_map_from_points(pts, ps.sizes, shape, return_kept=True),
                                args.repeats)
    print(f"IIM instance map from LUDA sizes: {t_inst * 1e3:.1f} ms ({int(kept.sum())}/{len(kept)} heads kept)")
    t_ssr, _ = median_time(lambda: ssr_labels(pts, shape), args.repeats)
    print(f"SSR-HEF labels (15x15, 1/2 1/4 1/8): {t_ssr * 1e3:.1f} ms")

    try:
        from crowdlib.data.synthetic import render_scene
    except ImportError:
        print("synthetic render: crowdlib.data.synthetic.render_scene not available, skipped")
        return
    times, counts = [], []
    for i in range(args.render_images):
        t0 = time.perf_counter()
        rec = render_scene(args.render_preset, args.seed, i, height=shape[0], width=shape[1])
        times.append(time.perf_counter() - t0)
        counts.append(rec.count)
    print(f"synthetic render_scene('{args.render_preset}', {shape[0]}x{shape[1]}): "
          f"median {statistics.median(times) * 1e3:.0f} ms per image over {len(times)} images "
          f"(heads per image {min(counts)}-{max(counts)})")


if __name__ == "__main__":
    main()
