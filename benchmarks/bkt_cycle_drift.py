"""Which way the cycles move R and D, and how much of M^R is D's: per cycle t of one cached transfer run, the signed
count bias (mean predicted minus mean true count) of R_t, D_t and M^R on the target test scenes, and on the
unlabelled target training windows Eq. 8's W (mean), the share of M^R's total that comes from Psi(D_t), and how far
M^R lies above R's own map on the patches R is fine-tuned on (drawn by the cycle's rule).

This reads target test labels, so it is an explanation of committed results only: nothing in the method or the
profiles is chosen from it. It trains (or reads from the cache) the run notebook 51 uses for the transfer and seed.

Usage: ``PYTHONPATH=. .venv/bin/python benchmarks/bkt_cycle_drift.py --transfer B A --seed 0``.

Measured on 2026-12-08 at 7d8f8b9 (r_context and d_context image, seed 0, 48 test windows; bias = mean predicted -
mean true count; M^R/R = M^R over R's own map on R's patches):

- B->A (true mean 167.8), cycles 0..5: R bias -47.5, -48.5, -49.7, -51.2, -52.3, -51.0; D -130.2, -114.2, -77.4,
  -85.0, -50.7, -79.8; M^R -45.7, -45.0, -39.6, -42.5, -31.8, -38.7; D's threshold 0.045 -> 0.30; mean W 0.025,
  0.111, 0.219, 0.228, 0.277, 0.302; Psi(D)'s share of M^R 3.1%, 11.5%, 28.0%, 31.8%, 47.0%, 46.6%; M^R/R +0.5%,
  +0.3%, +0.5%, -0.5%, +10.8%, +2.7%.
- A->B (true mean 22.9): R bias +4.2 -> +4.1; D -13.9 -> -5.8 (cycle 4); M^R +4.8, +5.3, +6.4, +5.9, +7.0, +6.4;
  mean W 0.006 -> 0.170; Psi(D)'s share 3.4% -> 33.6%; M^R/R +2.1%, +4.0%, +8.5%, +6.8%, +7.8%, +6.9%.
- At 28f33ef (R in context, D on its patch alone) B->A gave R -47.5 -> -53.0 and M^R -45.7 -> -45.9 at cycle 4.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bkt_run import add_run_args, run_cfg  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_args(ap)
    a = ap.parse_args()

    from crowdlib.methods import bkt
    from crowdlib.repro import fixed_threads

    cfg = run_cfg(a)
    res = bkt.get_or_run_transfer(cfg, progress=True)
    test = bkt.domain_records(cfg["target"], "test")
    train = bkt.unlabeled(bkt.domain_records(cfg["target"], "train"))
    gt = np.array([r.count for r in test], np.float64)
    print(f"{a.transfer[0]}->{a.transfer[1]} seed {a.seed}: {len(test)} target test scenes, mean true count "
          f"{gt.mean():.1f}; r_context {cfg['r_context']}")
    from crowdlib.methods.bkt.fusion import select_patches

    print("cycle | R bias | D bias | M^R bias | D threshold | mean W (train windows) | Psi(D)'s share of M^R | "
          "M^R over R on R's patches")
    with fixed_threads(1), torch.no_grad():
        for t in range(len(res["cycles"]) + 1):
            m = bkt.cycle_models(cfg, res, t)

            def labs(recs):
                return [bkt.pseudo_labels(r, m["regressor"], m["detector"], m["phi"], {**cfg, "fusion": True},
                                          det_threshold=m["det_threshold"], det_nms_iou=m["det_nms_iou"],
                                          phi_threshold=m.get("phi_threshold")) for r in recs]

            lt, lr = labs(test), labs(train)
            r = np.array([float(np.clip(x["cells"], 0, None).sum()) for x in lt])
            d = np.array([len(x["detections"]["points"]) for x in lt], np.float64)
            f = np.array([float(x["density"].sum()) for x in lt])
            w = np.mean([float(x["weight"].mean()) for x in lr])
            share = sum(float((x["weight"] * x["psi"]).sum()) for x in lr) / max(
                sum(float(x["density"].sum()) for x in lr), 1e-9)
            rng, own, fused, p_sz = np.random.default_rng([a.seed, 17]), 0.0, 0.0, int(cfg["patch"])
            for x in lr:  # R's patches by the cycle's rule (a fresh draw within the 50-70% range)
                sel = select_patches(x["density"], x["fused"], patch=p_sz, k=int(cfg["patches_per_image"]),
                                     mode=cfg["selection"], r_range=cfg["r_range"], r_range_mode=cfg["r_range_mode"],
                                     d_score=cfg["d_score"], weight=x["weight"], rng=rng)
                for y, x0 in sel["r"]:
                    own += float(x["regression"][y:y + p_sz, x0:x0 + p_sz].sum())
                    fused += float(x["density"][y:y + p_sz, x0:x0 + p_sz].sum())
            print(f"{t} | {r.mean() - gt.mean():+.1f} | {d.mean() - gt.mean():+.1f} | {f.mean() - gt.mean():+.1f} | "
                  f"{m['det_threshold']:.3g} | {w:.4f} | {share:.2%} | {fused / max(own, 1e-9) - 1:+.1%}", flush=True)

if __name__ == "__main__":
    main()
