"""Pilot for the IIM explorer model (``weights/iim-synthetic-explorer.pt``, notebook 91): notebook 20's
default-profile IIM row trained for ``factor`` times its trunk and fine-tune steps, scored on the validation
images carved from its training scenes only (never the test scenes). Prints per factor the training time, the
count-optimal validation threshold (as the recipe chooses it), and the validation recall, precision, F1 and the
count error at that threshold, so that the explorer's schedule is chosen on validation.

Example::

    python benchmarks/iim_explorer_steps.py --factors 1 4
"""
from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--factors", nargs="+", type=float, default=[1.0, 4.0],
                    help="multiples of notebook 20's trunk_steps and finetune_steps")
    ap.add_argument("--threads", type=int, default=2, help="intra-op threads of training and inference")
    a = ap.parse_args()
    from crowdlib import recipes
    from crowdlib.methods import iim
    from crowdlib.methods.iim.infer import decode_iim, predict_maps, score_points
    from crowdlib.methods.iim.train import split_records

    p = recipes.notebook_params("20_iim_ablation", "default")
    for f in a.factors:
        cfg = recipes.iim_explorer_config(p, 0, factor=f, threads=a.threads)
        recs = iim.load_records(cfg["data"], "train")
        t = time.perf_counter()
        res = iim.get_or_train_iim(cfg, progress=False, records=recs)
        wall = time.perf_counter() - t
        model = iim.load_trained(cfg, res, "cpu")
        thr = recipes.validation_threshold(model, cfg, recs)
        _, val = split_records(recs, iim.make_config(**cfg))
        maps = predict_maps(model, val)
        pts = [decode_iim(m, thr) for m in maps]
        sc = score_points(val, pts)
        gt = np.array([r.count for r in val], float)
        rel = np.abs([len(x) for x in pts] - gt) / gt
        print(f"x{f:g} ({cfg['init']['steps']} + {cfg['steps']} steps): {wall:.0f} s; validation threshold "
              f"{thr:.2f}: Rec {100 * sc['rec']:.1f} Pre {100 * sc['pre']:.1f} F1 {100 * sc['f1']:.1f} MAE "
              f"{sc['mae']:.1f}, relative count error median {100 * np.median(rel):.0f}% max {100 * rel.max():.0f}% "
              f"over {len(val)} validation scenes", flush=True)


if __name__ == "__main__":
    main()
