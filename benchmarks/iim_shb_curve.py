"""Measure IIM's validation learning curve on ShanghaiTech B train (validation carved from train; test never read).

Used to size notebook 23's schedule: it trains one IIM (PBM) run through the same cache as the notebook, then
prints validation F1 (sigma_l with ``point_size`` boxes), loss and seconds at every validation point.

    .venv/bin/python benchmarks/iim_shb_curve.py --steps 1600 --eval-every 200 --crop 256 --scale 1.0
"""
from __future__ import annotations

import argparse
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=1600, help="training steps")
    ap.add_argument("--eval-every", type=int, default=200, help="validation every this many steps")
    ap.add_argument("--crop", type=int, default=256, help="training crop side in px after resizing")
    ap.add_argument("--batch-size", type=int, default=8, help="crops per step")
    ap.add_argument("--scale", type=float, default=1.0, help="image scale for training and inference")
    ap.add_argument("--lr", type=float, default=5e-4, help="confidence predictor learning rate")
    ap.add_argument("--lr-encoder", type=float, default=5e-5, help="PBM learning rate (its own group)")
    ap.add_argument("--pbm-pool", type=int, default=15, help="PBM average-pool size at 1/8 resolution")
    ap.add_argument("--point-size", type=float, default=20.0, help="fixed head size (px, original scale)")
    ap.add_argument("--val-fraction", type=float, default=0.1, help="share of SHB train carved out for validation")
    ap.add_argument("--threads", type=int, default=2, help="intra-op threads")
    ap.add_argument("--seed", type=int, default=0, help="training seed")
    args = ap.parse_args()

    from crowdlib import paths
    from crowdlib.data.formats import read_shanghaitech
    from crowdlib.methods import iim

    root = paths.default_data_root("ShanghaiTech")
    if root is None:
        raise SystemExit("ShanghaiTech not found (see ../shared/README.md)")
    recs = read_shanghaitech(root, "B", "train")
    cfg = iim.make_config(data={"kind": "shanghaitech", "root": str(root), "part": "B", "n": None}, encoder="pbm",
                          l1_area="both", backbone="mobilenet_v2", pretrained=True, point_size=args.point_size,
                          crop=args.crop, batch_size=args.batch_size, steps=args.steps, eval_every=args.eval_every,
                          lr=args.lr, lr_encoder=args.lr_encoder, pbm_pool=args.pbm_pool,
                          scale_range=[0.8 * args.scale, 1.2 * args.scale], eval_scale=args.scale,
                          val_fraction=args.val_fraction, threads=args.threads, seed=args.seed)
    t0 = time.perf_counter()
    res = iim.get_or_train_iim(cfg, progress=True, records=recs)
    print(f"{res['steps']} steps, train {res['train_seconds']:.0f} s, wall {time.perf_counter() - t0:.0f} s, "
          f"{res['images_per_s']:.2f} images/s; best val F1 {res['best_val']['f1']:.3f} at {res['best_step']}")
    for h in res["history"]:
        if "val_f1" in h:
            print(f"step {h['step']:5d}  val F1 {h['val_f1']:.3f}  pre {h['val_pre']:.3f}  rec {h['val_rec']:.3f}  "
                  f"MAE {h['val_mae']:.1f}  thr_fg {h.get('thr_fg', float('nan')):.3f}  "
                  f"thr_bg {h.get('thr_bg', float('nan')):.3f}  loss {h.get('loss_loss', float('nan')):.4f}")


if __name__ == "__main__":
    main()
