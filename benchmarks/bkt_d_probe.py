"""Probe of D's behaviour in one self-supervised cycle, on labels the method may use: D's peak scores on the
*unlabelled* target windows (quantiles, count above its threshold) and on the source validation windows (the count
threshold that minimises the source-validation count MAE on a grid reaching below the usual 0.05 floor), before and
after one cycle under a few variants of D's fine-tuning, and what D is taught (pseudo points per D patch against D's
own detections there).

No target label and no test image is read: the target side enters through ``bkt.unlabeled``.

Example::

    python benchmarks/bkt_d_probe.py --transfer B A --seed 0 --variants paper d_lr0 --out /tmp/dprobe.json

Parameters are the default profile's (``params/default/51_bkt_transfer.yaml``) plus each variant's override.

Runs so far (default profile, 3 cycles A→B / 2 cycles B→A; "MAE" is D's source-validation count MAE at the
threshold in use; no target label read):

- B→A, seed 0 (``--transfer B A --seed 0 --variants paper refit --cycles 2``): D_0 at its source threshold 0.05
  counts 33.2 per unlabelled target window (peak scores q50/q90/q99 0.0105 / 0.0137 / 0.052), source-val MAE 4.8;
  a cycle teaches D 22.2 pseudo points per D patch where D itself finds 4.2. Fixed threshold ("paper"): after 2
  cycles D counts 2.0 per target window, MAE 21.6. "refit": thresholds 0.045 (D_0), 0.025, 0.015; D counts 25.7,
  MAE 7.8. Either way D's target scores flatten (q50 0.0107, q90 0.0108).
- A→B, seed 2 (``--transfer A B --seed 2 --variants paper refit --cycles 3``): D_0 at 0.05 (the grid's floor)
  counts 7.0 per target window, source-val MAE 31.0; pseudo points per D patch 18.9 against D's own 0.4. Fixed
  threshold: D's loss 1.54, 0.84, 4.36 and after 3 cycles every candidate passes (5000 per window, peak q50 0.57),
  MAE 4912. "refit": thresholds 0.05, 0.12, 0.45, 0.78; D's loss 1.54, 0.80, 0.74; D counts 0 on the target
  windows (peak q99 0.45 < 0.78), MAE 48.4: the divergence is stopped, D is not repaired.

Notebooks 51-54 therefore run with ``d_threshold: refit`` in the default profile.

D's loss in the cycles (``d_loss``; the runs above used Crowd-SDNet's crowdedness-aware loss, now the variants
``sdnet_loss`` / ``sdnet_refit``; ``paper`` / ``refit`` now use the paper's CSP loss, Sec. 3.1):

- B→A, seed 0 (``--variants d_lr0 paper``, 1 cycle, old loss): at ``d_lr`` 0 nothing moves (no BatchNorm or state
  leak); at 1e-5 D's target count falls 33.2 → 8.0 and its peak q99 0.052 → 0.020 in one cycle. On the first 8
  D patches (the ``gradient terms`` row) the crowdedness weights average 14 and, with the crowdedness-aware loss,
  the size term's parameter-gradient norm is 38.8 against 1.7 for the centre term (weight 0.1); with CSP's loss
  it is 3.1.
- B→A, seed 0 (``--variants sdnet_loss paper sdnet_refit refit --cycles 2``): crowdedness-aware loss, fixed
  threshold: count 2.0, source-val MAE 21.6 (best 7.8); CSP loss, fixed: count 44.4, MAE 6.4 (best 3.0 at 0.06);
  crowdedness-aware + refit: thresholds 0.025, 0.015, count 25.7, MAE 7.8; CSP + refit: thresholds 0.05, 0.06,
  count 36.8, MAE 3.0. Peak q99 0.012 (old loss) against 0.067-0.073 (CSP).
- A→B, seed 2 (``--variants paper refit --cycles 3``, CSP loss): D_0 counts 7.0 per target window (source-val MAE
  31.0) while the fused points teach 18.9 per D patch against D's own 0.4; D's scores rise everywhere (peak q50
  0.33 after 3 cycles): fixed threshold 5000 per window, refit thresholds 0.11, 0.52, 0.82 and count 0. Neither
  loss repairs D when most of what it is taught is Phi(R_0)'s points on a target where R_0 overcounts.

Notebooks 51-54 run with ``d_loss: csp`` (the paper's) from 53642f3 on.

Phi's binarisation (the ``Phi on source validation`` row; seed 0, focal-CE Phi of the default profile): at the
paper's 0.2 Phi(R_0) gives 65.2 points per source-validation window against 28.8 true and 28.5 from R_0 (B source)
and 360 against 88.0 / 87.2 (A source); at 0.3 34.2 and 247, at 0.5 none. Refit on that split
(``phi_threshold: refit``) the threshold is 0.33 for B (seed 0); then (B→A, seed 0, ``--variants refit --cycles 2``)
the fused points per D patch fall 22.2 → 12.8 (103 per target window against 227), the crowdedness weights 14 →
4.8, and after 2 cycles D's target count is 53 (peak q99 0.21) and its source-validation MAE 2.4, against 37 and
3.0 at 0.2. Notebooks 51-53 run with ``phi_threshold: refit`` from the commit after 8b6a3e9 on; 54 keeps 0.2.
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

#: Overrides of the run config that each variant applies to one cycle.
VARIANTS = {
    "paper": {"d_threshold": "source"},
    "d_lr0": {"d_lr": 0.0, "d_threshold": "source"},
    "d_lr1e-6": {"d_lr": 1e-6, "d_threshold": "source"},
    "no_fusion": {"fusion": False, "d_threshold": "source"},
    "refit": {"d_threshold": "refit"},
    "sdnet_loss": {"d_loss": "sdnet", "d_threshold": "source"},
    "sdnet_refit": {"d_loss": "sdnet", "d_threshold": "refit"},
}


def _scores(detector, records, min_score: float = 0.005) -> list[np.ndarray]:
    from crowdlib.methods.bkt.infer import image_tensor, run_detector

    return [run_detector(detector, image_tensor(r), threshold=min_score)[0]["scores"] for r in records]


def _summary(tag: str, det, thr: float, target, source_val) -> dict:
    from crowdlib.decode import choose_count_threshold
    from crowdlib.methods.bkt import REFIT_GRID

    ts = _scores(det, target)
    allt = np.concatenate(ts) if ts else np.zeros(0)
    q = np.quantile(allt, [0.5, 0.9, 0.99]) if len(allt) else [np.nan] * 3
    vs = _scores(det, source_val)
    best, maes = choose_count_threshold(vs, np.array([r.count for r in source_val], float), REFIT_GRID)
    val_mae_at_thr = float(np.mean([abs((s > thr).sum() - r.count) for s, r in zip(vs, source_val)]))
    row = {"tag": tag, "target count @thr": float(np.mean([(s > thr).sum() for s in ts])),
           "target peak q50/q90/q99": [round(float(v), 4) for v in q],
           "source-val MAE @thr": val_mae_at_thr, "source-val best thr": float(best),
           "source-val MAE @best": float(maes["mae"].min()),
           "target count @best": float(np.mean([(s > best).sum() for s in ts]))}
    print(json.dumps(row), flush=True)
    return row


def _phi_counts(models, records, cfg) -> dict:
    """Mean count of Phi(R_0)'s points on the labelled source validation windows at the paper's threshold and at the
    one in use, beside the true and R_0's counts."""
    from crowdlib.methods.bkt.data import upsample_density
    from crowdlib.methods.bkt.infer import image_tensor, predict_cells, run_phi

    out = {"tag": "Phi on source validation", "true count": float(np.mean([r.count for r in records]))}
    r_counts, at = [], {float(cfg["phi"]["threshold"]): [], float(models["phi_threshold"]): []}
    for r in records:
        img = image_tensor(r)
        cells = predict_cells(models["regressor"], img)
        r_counts.append(float(np.clip(cells, 0, None).sum()))
        dens = upsample_density(cells, tuple(img.shape[-2:]), 8)
        for t in at:
            at[t].append(len(run_phi(models["phi"], dens, threshold=t, merge=int(cfg["phi"]["merge"]))[0]["points"]))
    out["R_0 count"] = float(np.mean(r_counts))
    out.update({f"Phi count @{t:g}": float(np.mean(v)) for t, v in at.items()})
    print(json.dumps(out), flush=True)
    return out


def _term_grads(det, crops, cfg) -> dict:
    """Per loss term of D's cycle loss (CSP's and Crowd-SDNet's), the norm of its weighted gradient on D's parameters
    over one batch of D patches, and the mean crowdedness weight on the supervised size cells."""
    from crowdlib.methods import bkt
    from crowdlib.methods.bkt.cycles import detector_batch

    x, tg = detector_batch(crops, int(det.stride))
    row = {"tag": "gradient terms", "mean crowdedness": float(tg["crowdedness"][tg["size_mask"] > 0].mean())}
    was = det.training
    det.eval()
    for kind in ("csp", "sdnet"):
        crit = bkt.cycle_detector_criterion({**cfg, "d_loss": kind})
        for name, w in crit.weight_dict.items():
            det.zero_grad(set_to_none=True)
            (crit(det(x), tg)[name] * float(w)).backward()
            row[f"{kind} {name} grad norm"] = float(sum(float(p.grad.norm()) ** 2 for p in det.parameters()
                                                        if p.grad is not None) ** 0.5)
    det.zero_grad(set_to_none=True)
    det.train(was)
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--transfer", nargs=2, default=["B", "A"], help="source and target domain keys (A or B)")
    ap.add_argument("--seed", type=int, default=0, help="training seed")
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), help=f"one cycle under each of {list(VARIANTS)}")
    ap.add_argument("--cycles", type=int, default=1, help="cycles per variant")
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    a = ap.parse_args()

    import yaml

    from crowdlib.methods import bkt
    from crowdlib.methods.bkt.cycles import _cycle_patches, transfer_cycles
    from crowdlib.methods.bkt.profile import run_config
    from crowdlib.repro import fixed_threads
    from crowdlib.device import flush_denormal

    p = yaml.safe_load((ROOT / "params" / "default" / "51_bkt_transfer.yaml").read_text())
    cfg = {**run_config(p, *a.transfer), "seed": int(a.seed)}
    cfg = bkt.make_config(**cfg)
    rows = []
    with fixed_threads(int(cfg["threads"])), flush_denormal():
        t0 = time.perf_counter()
        models = bkt.source_models(cfg)
        print(f"source stages {time.perf_counter() - t0:.0f} s; D threshold {models['det_threshold']}; Phi threshold "
              f"{models['phi_threshold']} ({cfg['phi_threshold']})", flush=True)
        target = bkt.unlabeled(bkt.domain_records(cfg["target"], "train"))
        src = bkt.domain_records(cfg["source"], "train")
        val_ids = set(models["results"]["detector"].get("val_ids", []))
        source_val = [r for r in src if r.image_id in val_ids]
        if not source_val:
            raise SystemExit("bkt_d_probe: D's validation ids are not among the source records")
        thr = models["det_threshold"]
        rows.append(_phi_counts(models, source_val, cfg))
        rows.append(_summary("cycle 0", models["detector"], thr, target, source_val))
        # what one cycle teaches D: pseudo points per D patch against D's own detections in the same patch
        rng = np.random.default_rng([int(cfg["seed"]), 17])
        _, d_crops, stats = _cycle_patches(target, models, cfg, rng)
        from crowdlib.methods.bkt.infer import run_detector

        own = [len(run_detector(models["detector"], c["image"][None], threshold=thr)[0]["points"]) for c in d_crops]
        taught = [len(c["points"]) for c in d_crops]
        row = {"tag": "D patches", "pseudo points per patch": float(np.mean(taught)),
               "D's own detections per patch": float(np.mean(own)), "n patches": len(d_crops), **stats}
        print(json.dumps(row), flush=True)
        rows.append(row)
        rows.append(_term_grads(models["detector"], d_crops[:8], cfg))
        for v in a.variants:
            m = {**models, "regressor": copy.deepcopy(models["regressor"]),
                 "detector": copy.deepcopy(models["detector"])}
            c = bkt.make_config(**{**cfg, **VARIANTS[v], "cycles": int(a.cycles)})
            t0 = time.perf_counter()
            if c["d_threshold"] == "refit":
                m["det_threshold"] = bkt.refit_det_threshold(m["detector"], source_val, nms_iou=m["det_nms_iou"])
                print(f"{v}: D_0's refit threshold {m['det_threshold']:g}", flush=True)
            out = transfer_cycles(c, m, bkt.domain_records(cfg["target"], "train"), source_val=source_val)
            print(f"{v}: {a.cycles} cycle(s) {time.perf_counter() - t0:.0f} s, D loss "
                  f"{[round(o['d_loss'], 4) for o in out]}, D threshold {[o['det_threshold'] for o in out]}",
                  flush=True)
            rows.append(_summary(f"after {a.cycles} cycle(s), {v}", m["detector"], float(m["det_threshold"]), target,
                                 source_val))
    if a.out:
        Path(a.out).write_text(json.dumps({"config_seed": a.seed, "transfer": a.transfer, "rows": rows}, indent=1,
                                          default=str))


if __name__ == "__main__":
    main()
