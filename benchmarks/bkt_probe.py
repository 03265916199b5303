"""Probe of the bi-knowledge transfer budget on labels the method may use: the source stages' validation curves
(R's count MAE, Phi's mAP, D's per-epoch validation MAE, all on the source validation split) with their wall time, and
what each cycle changes on the target's *unlabelled* training images (R's and D's mean predicted count, the fused
pseudo count), so that cycle step counts and rates can be sized without a target label.

No target label and no test image is read: the target side enters through ``bkt.unlabeled``.

Example::

    python benchmarks/bkt_probe.py --transfer B A --seeds 0 --window 224 320 --reg-steps 600 --out /tmp/probe.json

Parameters not given take the default profile's values (``params/default/51_bkt_transfer.yaml``).

Runs so far (default profile at 18eef42 unless said; one thread, beside another job):

- B→A seed 0: R 51 s (source-validation MAE 5.6 -> 5.2 over 300 steps, noisy: 5 validation windows), Phi (focal CE)
  32 s (mAP 0.58 -> 0.90), D 40 epochs 71 s (MAE 28.8 -> 6.0 at epoch 20, then 6.8-9.2); cycles 59 s. On the
  unlabelled target windows R's mean count goes 134.9 -> 150.1 over 5 cycles (the paper's 1e-6 moves it), D's 53.8
  -> 13.4 after one cycle -> 0.0. With ``--det-epochs 60 --phi-steps 50`` (an untrained Phi) the same collapse; a
  single cycle at d_lr 0 keeps D's counts, at 1e-6 they still fall (46 -> 34 on the first window).
- A→B seed 2: R 58 s (MAE 31.6 -> 5.7 at step 250), Phi 34 s (0.82 -> 0.90), D 70 s (88 -> 35.2); cycles 87 s. D's mean
  count on the unlabelled target goes 6.8 -> 7.2 -> 332 -> 5000 (every candidate) at cycles 2-3, the fused density
  31.7 -> 4799, R alone stays at 31; R's fine-tuning loss then grows to 42.7.
- Phi's source training at the previous defaults (crop 128, 300 steps, lr 1e-4, L_Phi): 285 s, 2.6x slower without
  flush-denormal (1.9 s a step once its loss fell).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _default_params_path() -> Path:
    """Notebook 51's default profile, which the probe and ``bkt_phi_pilot.py`` start from."""
    return ROOT / "params" / "default" / "51_bkt_transfer.yaml"


def _params(a: argparse.Namespace) -> dict:
    import yaml

    p = yaml.safe_load(_default_params_path().read_text())
    for k, v in vars(a).items():
        if v is not None and k not in ("transfer", "seeds", "out"):
            p[k] = v
    return p


def _label_free(cfg: dict, res: dict, t: int, records: list) -> dict:
    """Mean counts of R_t, D_t and the fused output on unlabelled target training images."""
    from crowdlib.methods import bkt

    m = bkt.cycle_models(cfg, res, t)
    labs = [bkt.pseudo_labels(r, m["regressor"], m["detector"], m["phi"], {**cfg, "fusion": True},
                              det_threshold=m["det_threshold"], det_nms_iou=m["det_nms_iou"],
                              phi_threshold=m.get("phi_threshold")) for r in records]
    return {"cycle": t, "R count": float(np.mean([np.clip(lab["cells"], 0, None).sum() for lab in labs])),
            "D count": float(np.mean([len(lab["detections"]["points"]) for lab in labs])),
            "fused count": float(np.mean([lab["density"].sum() for lab in labs]))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--transfer", nargs=2, default=["B", "A"], help="source and target domain keys (A or B)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0], help="training seeds")
    ap.add_argument("--window", nargs=2, type=int, default=None, help="window (h w) cut from each calibrated scene")
    ap.add_argument("--n-train", dest="n_train", type=int, default=None, help="training scenes per domain")
    ap.add_argument("--reg-steps", dest="reg_steps", type=int, default=None, help="R's source steps")
    ap.add_argument("--phi-steps", dest="phi_steps", type=int, default=None, help="Phi's source steps")
    ap.add_argument("--det-epochs", dest="det_epochs", type=int, default=None, help="D's source epochs")
    ap.add_argument("--eval-every", dest="eval_every", type=int, default=None, help="source validation period")
    ap.add_argument("--crop", type=int, default=None, help="source training crop side (px)")
    ap.add_argument("--patch", type=int, default=None, help="selected patch side (px)")
    ap.add_argument("--max-cycles", dest="max_cycles", type=int, default=None, help="cycles to run")
    ap.add_argument("--cycle-steps", dest="cycle_steps", type=int, default=None, help="steps per cycle (R and D)")
    ap.add_argument("--r-lr", dest="r_lr", type=float, default=None, help="R's fine-tuning rate")
    ap.add_argument("--d-lr", dest="d_lr", type=float, default=None, help="D's fine-tuning rate")
    ap.add_argument("--threads", type=int, default=None, help="threads per run")
    ap.add_argument("--out", default=None, help="write the curves and timings as JSON here")
    a = ap.parse_args()

    from crowdlib.methods import bkt
    from crowdlib.methods.bkt.profile import run_config
    from crowdlib.repro import fixed_threads

    p = _params(a)
    out = []
    for seed in a.seeds:
        cfg = {**run_config(p, *a.transfer), "seed": int(seed)}
        timings = {}
        for stage in ("regressor", "phi", "detector"):
            t0 = time.perf_counter()
            r = bkt.get_or_train_stage(cfg, stage)
            timings[stage] = time.perf_counter() - t0
            hist = r.get("history", [])
            keys = [k for k in ("val_mae", "val_map") if any(k in h for h in hist)]
            curve = [(h.get("step", h.get("epoch")), *(round(float(h[k]), 3) for k in keys)) for h in hist
                     if all(k in h for k in keys)]
            print(f"seed {seed} {stage}: {timings[stage]:.0f} s; {keys}: {curve}", flush=True)
        t0 = time.perf_counter()
        res = bkt.get_or_run_transfer(cfg)
        timings["cycles"] = time.perf_counter() - t0
        target = bkt.unlabeled(bkt.domain_records(cfg["target"], "train"))
        with fixed_threads(int(cfg["threads"])):
            free = [_label_free(cfg, res, t, target) for t in range(len(res["cycles"]) + 1)]
        for c, f in zip([{}] + res["cycles"], free):
            print(f"seed {seed} cycle {f['cycle']}: R {f['R count']:.1f}, D {f['D count']:.1f}, fused "
                  f"{f['fused count']:.1f}; R loss {c.get('r_loss', float('nan')):.4g}, D loss "
                  f"{c.get('d_loss', float('nan')):.4g}, {c.get('seconds', 0):.0f} s", flush=True)
        print(f"seed {seed} timings (s): {json.dumps({k: round(v) for k, v in timings.items()})}", flush=True)
        out.append({"seed": seed, "timings": timings, "label_free": free})
    if a.out:
        Path(a.out).write_text(json.dumps({"params": p, "runs": out}, indent=1, default=str))


if __name__ == "__main__":
    main()
