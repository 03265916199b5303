"""L2R pilot on validation only: time a few runs of each paradigm and print their validation learning curves
(validation MAE against steps), so that the default profile's budget can be sized from measurement.

Never scores test images."""
from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=300, help="counting steps per run")
    ap.add_argument("--rank-steps", type=int, default=300, help="ranking steps (rank_finetune)")
    ap.add_argument("--fraction", type=float, default=1.0, help="labelled fraction of the training images")
    ap.add_argument("--paradigms", nargs="+", default=["count", "multitask"], help="paradigms to run")
    ap.add_argument("--lr", type=float, default=1e-3, help="learning rate")
    ap.add_argument("--lam", type=float, default=1.0, help="lambda of the ranking term")
    ap.add_argument("--optimizer", default="sgd", help="sgd or adam")
    ap.add_argument("--input-size", type=int, default=128, help="crop side in px")
    ap.add_argument("--eval-every", type=int, default=50, help="validation every this many steps")
    ap.add_argument("--no-pretrained", action="store_true", help="train from scratch")
    ap.add_argument("--freeze-bn", choices=["pretrained", True, False], default="pretrained",
                    type=lambda v: {"true": True, "false": False}.get(v, v), metavar="{pretrained,true,false}",
                    help="batch norm in eval mode during training: only when ImageNet-initialised (default), always, "
                         "or never")
    ap.add_argument("--n-labelled", type=int, default=48, help="labelled synthetic images (validation carved out)")
    ap.add_argument("--max-norm", type=float, default=0.0, help="gradient clipping norm (0: none)")
    ap.add_argument("--seed", type=int, default=0, help="training seed")
    ap.add_argument("--out", default=None, help="write the histories to this JSON file")
    a = ap.parse_args()
    from crowdlib.methods import l2r

    out = {}
    for p in a.paradigms:
        cfg = l2r.make_config(paradigm=p, steps=a.steps, rank_steps=a.rank_steps, labelled_fraction=a.fraction,
                              lr=a.lr, lam=a.lam, optimizer=a.optimizer, input_size=a.input_size,
                              eval_every=a.eval_every, pretrained=not a.no_pretrained, seed=a.seed,
                              freeze_bn=a.freeze_bn, max_norm=a.max_norm, data={"n": a.n_labelled})
        t = time.perf_counter()
        res = l2r.train_l2r(cfg, progress=False)
        dt = time.perf_counter() - t
        curve = [(h["step"], round(h.get("val_mae", float("nan")), 2), round(h.get("loss_count", 0), 3),
                  round(h.get("loss_rank", 0), 4)) for h in res["history"]]
        print(f"{p}: {dt:.1f}s wall, {res['train_seconds']:.1f}s train, {res['images_per_s']:.1f} img/s, "
              f"best step {res['best_step']} val MAE {res['best_val']['mae']:.2f}; n_train {res['n_train']}", flush=True)
        print("   (step, val MAE, count loss, rank loss):", curve, flush=True)
        out[p] = {"wall": dt, "history": res["history"], "best": res["best_val"]}
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(out, fh, indent=1, default=float)


if __name__ == "__main__":
    main()
