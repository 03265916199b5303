"""Benchmark of the metrics (``crowdlib.metrics``).

Prints the median wall time of:

* the NWPU-Crowd localization evaluation of the shipped 500-image pair (``val_gt_loc.txt`` with
  ``Raz_loc_val_0.5.txt``) when ``../shared`` is present: parsing, matching and scoring separately and together,
  plus the agreement with ``expected_Raz_loc.json`` (the reference evaluator takes about 26 s);
* the same protocol on synthetic NWPU-like data (``--images`` images with ``--heads`` heads each);
* point AP (radius 20 px), MLE (Hungarian), box AP (IoU 0.3/0.5/0.7) on that synthetic data;
* point mAP over radii 1..100 px on the first ``--map-images`` images.

Run with one thread for comparable numbers: ``OMP_NUM_THREADS=1 .venv/bin/python benchmarks/metrics.py``.
"""
from __future__ import annotations

import argparse
import sys
import json
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import median_time  # noqa: E402





def _synthetic(n_images: int, n_heads: int, seed: int, width: int, height: int):
    """Heads uniform in the image, predictions = heads + 3 px noise (10% dropped, 10% extra), random scores,
    head sizes 5-40 px with jittered predicted boxes."""
    rng = np.random.default_rng(seed)
    gts, preds, scores, gt_boxes, pred_boxes, sigmas = [], [], [], [], [], []
    for _ in range(n_images):
        g = rng.uniform(0, [width, height], (n_heads, 2))
        size = rng.uniform(5, 40, (n_heads, 1))
        keep = rng.uniform(size=n_heads) > 0.1
        extra = rng.uniform(0, [width, height], (n_heads // 10, 2))
        p = np.concatenate([g[keep] + rng.normal(0, 3, (int(keep.sum()), 2)), extra])
        kept_size = size[keep] * rng.uniform(0.8, 1.2, (int(keep.sum()), 1))
        ps = np.concatenate([kept_size, rng.uniform(5, 40, (len(extra), 1))])
        gts.append(g)
        preds.append(p)
        scores.append(rng.uniform(size=len(p)))
        gt_boxes.append(np.concatenate([g - size / 2, g + size / 2], axis=1))
        pred_boxes.append(np.concatenate([p - ps / 2, p + ps / 2], axis=1))
        sig = np.concatenate([np.floor(size / 2), np.floor(size * np.sqrt(2) / 2)], axis=1)
        sigmas.append(sig)
    return gts, preds, scores, gt_boxes, pred_boxes, sigmas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=500, help="synthetic images (default 500)")
    parser.add_argument("--heads", type=int, default=1000, help="heads per synthetic image (default 1000)")
    parser.add_argument("--width", type=int, default=1024, help="synthetic image width in pixels")
    parser.add_argument("--height", type=int, default=768, help="synthetic image height in pixels")
    parser.add_argument("--map-images", type=int, default=50, help="images used for the mAP over radii 1..100")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions; the median is printed")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic data")
    parser.add_argument("--json", action="store_true", help="also print all timings as one JSON object")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    from crowdlib.data.formats.nwpu_loc import nwpu_val_ids, read_nwpu_gt, read_nwpu_pred
    from crowdlib.metrics import box_ap, mle, nwpu_evaluate, point_ap, point_map_over_radii
    from crowdlib.paths import default_data_root

    results: dict[str, float] = {}
    root = default_data_root("nwpu_loc")
    if root is not None and (root / "val_gt_loc.txt").is_file():
        gt_path, pred_path = root / "val_gt_loc.txt", root / "Raz_loc_val_0.5.txt"
        t_parse, (gt, pred) = median_time(lambda: (read_nwpu_gt(gt_path), read_nwpu_pred(pred_path)), args.repeats)
        ids = nwpu_val_ids()
        t_eval, res = median_time(lambda: nwpu_evaluate(gt, pred, ids), args.repeats)
        expected = json.loads((root / "expected_Raz_loc.json").read_text())
        sig = ("sigma_s", "sigma_l")
        dev = max(abs(getattr(getattr(res, s), k) - expected[s][k]) for s in sig for k in ("precision", "recall", "f1"))
        lvl = max(
            abs(a - b) for s in sig for a, b in zip(getattr(res, s).recall_per_level, expected[s]["recall_per_level"])
        )
        n_heads = sum(len(gt[i].points) for i in ids)
        print(f"NWPU val (500 images, {n_heads} heads): parse {t_parse:.3f} s, evaluate {t_eval:.3f} s, "
              f"total {t_parse + t_eval:.3f} s (reference evaluator: about 26 s)")
        print(f"  max |P/R/F1 - reference| = {dev:.2e}, max |level recall - reference| = {lvl:.2e}, "
              f"F1 sigma_l {res.sigma_l.f1:.4f}")
        results.update(nwpu_parse_s=t_parse, nwpu_eval_s=t_eval, nwpu_total_s=t_parse + t_eval)
    else:
        print("NWPU val files not found (../shared absent): skipping the real-file evaluation")

    data = _synthetic(args.images, args.heads, args.seed, args.width, args.height)
    gts, preds, scores, gt_boxes, pred_boxes, sigmas = data
    n = args.images
    print(f"synthetic: {n} images x {args.heads} heads ({args.width}x{args.height}), "
          f"{sum(len(p) for p in preds)} predictions")
    gt_map = {str(i): (gts[i], sigmas[i], np.zeros(len(gts[i]), np.int64)) for i in range(n)}
    pred_map = {str(i): preds[i] for i in range(n)}
    t, res = median_time(lambda: nwpu_evaluate(gt_map, pred_map), args.repeats)
    print(f"  NWPU protocol        {t:7.3f} s   F1 sigma_l {res.sigma_l.f1:.4f}")
    results["synthetic_nwpu_s"] = t
    point_preds = list(zip(preds, scores))
    t, ap = median_time(lambda: point_ap(point_preds, gts, radius=20.0), args.repeats)
    print(f"  point AP (20 px)     {t:7.3f} s   AP {ap:.4f}")
    results["point_ap_s"] = t
    t, err = median_time(lambda: mle(point_preds, gts, radius=20.0), args.repeats)
    print(f"  MLE (Hungarian)      {t:7.3f} s   MLE {err:.3f} px")
    results["mle_s"] = t
    t, aps = median_time(lambda: box_ap(pred_boxes, scores, gt_boxes, (0.3, 0.5, 0.7)), args.repeats)
    print(f"  box AP (0.3/0.5/0.7) {t:7.3f} s   " + " ".join(f"AP@{k}={v:.4f}" for k, v in aps.items()))
    results["box_ap_s"] = t
    m = min(args.map_images, n)
    t, mp = median_time(lambda: point_map_over_radii(point_preds[:m], gts[:m]), 1)
    print(f"  point mAP r=1..100   {t:7.3f} s   mAP {mp:.4f}  ({m} images)")
    results["point_map_s"] = t
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
