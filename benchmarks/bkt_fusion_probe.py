"""What does Eq. 8's fusion change, and what moves R in a cycle? A probe of the source models R_0, D_0 (notebook
51's default profile, trained or read from the cache) on one transfer, reading no target label:

- on the unlabelled target training windows: D_0's detection scores above its counting threshold, the weight map
  W of Eq. 8 (each detection's score over its k x k window) over the image and over the patches selected for R,
  and how far the fused target M^R = (1 - W) R + W Psi(D) lies from R's own map there;
- the crop-context gap: R_0 on an 80 px patch alone against R_0 on the whole window, summed over the same
  selected patches (in a cycle R is fine-tuned on the patch alone against a target computed on the whole window,
  so this gap moves R with or without fusion);
- the cosine between the fine-tuning gradients of R's last layers toward its own map and toward the fused map;
- on the labelled SOURCE validation split: D_0's localization mAP when its detections are cut at the counting
  threshold (as notebooks 51-53 score it) and at a floor of 0.005;
- would a calibrated W make Eq. 8 act, and act well? On the source validation split: the precision of D_0's
  detections per score band (a detection is right when it is the first, by score, to claim an annotated head within
  half its predicted size, at least 4 px), a Platt scaling of the kept detections' scores to that precision, the
  calibrated W over R's target patches, and the count MAE of R alone, of M^R with the raw W (Eq. 8 as implemented)
  and of M^R with the calibrated W (a label-legal test of the fusion's premise, source models on source images).

Example::

    PYTHONPATH=. python benchmarks/bkt_fusion_probe.py --transfer B A --seed 0

Run on 2026-12-07 at the default profile (seed 0, one thread; trains the three source stages first when the cache
lacks them, about 3 minutes a transfer), B→A / A→B: D_0's kept scores median 0.071 / 0.082, 90th percentile
0.198 / 0.159; mean W 0.0247 / 0.0061 over the windows and 0.0201 / 0.0080 over R's 48 selected patches; M^R sums
+0.5% / +2.1% above R's own map there; R_0 on the 80 px patches alone -19.2% / +31.1% against the whole window;
gradient cosine 1.0000 / 0.9999; source-validation D_0 mAP 0.727 / 0.269 cut at the counting threshold (0.045 /
0.06) and 0.798 / 0.515 from the 0.005 floor. Section (5), run the same day on the same seed and transfers: the
kept detections' source-validation precision is 0.48 / 0.55 just above the counting threshold, 0.79 / 1.00 at
scores 0.1-0.2 and 0.97-1.00 above 0.2 (D's scores are low but well ranked); the Platt scaling of them raises W over
R's target patches from 0.020 / 0.008 to 0.081 / 0.046 and moves M^R there +2.9% / +14.5% from R's map, but on the
source validation split M^R's count MAE is 3.60 / 12.66 with the raw W against 8.80 / 22.29 with the calibrated one
(R alone 4.85 / 11.17): a calibrated W makes Eq. 8 act, and act worse, so W stays D's raw score.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bkt_run import add_run_args, run_cfg, source_setup  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_args(ap)
    ap.add_argument("--floor", type=float, default=0.005, help="low score floor for the uncut mAP")
    a = ap.parse_args()

    from crowdlib.losses.bkt import DensityLoss
    from crowdlib.methods.bkt.data import domain_records, pool_density, split_source
    from crowdlib.methods.bkt.evaluate import localization_map
    from crowdlib.methods.bkt.fusion import select_patches
    from crowdlib.methods.bkt.infer import image_tensor, predict_cells, pseudo_labels, run_detector
    from crowdlib.repro import fixed_threads

    cfg = run_cfg(a)
    models, thr = source_setup(cfg)
    R, D = models["regressor"], models["detector"]
    p_sz = int(cfg["patch"])
    rng = np.random.default_rng([a.seed, 17])
    scores, w_img, w_patch, own, fused, crop_sum, full_sum = [], [], [], [], [], [], []
    x_self, t_self, t_fused, target_labs = [], [], [], []
    target = list(domain_records(cfg["target"], "train"))
    with fixed_threads(1), torch.no_grad():
        for rec in target:
            lab = pseudo_labels(rec, R, D, None, {**cfg, "fusion": True}, det_threshold=thr,
                                det_nms_iou=float(models["det_nms_iou"]))
            scores.append(lab["detections"]["scores"])
            w_img.append(float(lab["weight"].mean()))
            sel = select_patches(lab["density"], lab["fused"], patch=p_sz, k=int(cfg["patches_per_image"]),
                                 mode=cfg["selection"], r_range=cfg["r_range"], r_range_mode=cfg["r_range_mode"],
                                 d_score=cfg["d_score"], weight=lab["weight"], rng=rng)
            target_labs.append((lab, sel["r"]))
            img = image_tensor(rec)
            for y, x in sel["r"]:
                sl = (slice(y, y + p_sz), slice(x, x + p_sz))
                w_patch.append(float(lab["weight"][sl].mean()))
                own.append(float(lab["regression"][sl].sum()))
                fused.append(float(lab["density"][sl].sum()))
                crop = img[..., y:y + p_sz, x:x + p_sz]
                crop_sum.append(float(predict_cells(R, crop).sum()))
                full_sum.append(float(lab["cells"][y // 8:(y + p_sz) // 8, x // 8:(x + p_sz) // 8].sum()))
                x_self.append(crop[0])
                t_self.append(lab["regression"][sl].copy())
                t_fused.append(lab["density"][sl].copy())
    s = np.concatenate(scores) if scores else np.zeros(0)
    print(f"{a.transfer[0]}->{a.transfer[1]} seed {a.seed}: {len(target)} unlabelled target windows, D_0 counting "
          f"threshold {thr:.3g}")
    if s.size:
        q = np.percentile(s, [50, 90, 99])
        print(f"  D_0 scores of kept detections: median {q[0]:.3f}, 90th {q[1]:.3f}, 99th {q[2]:.3f} ({s.size} detections)")
    print(f"  W (Eq. 8): mean {np.mean(w_img):.4f} over the windows, {np.mean(w_patch):.4f} over R's {len(w_patch)} "
          f"selected patches")
    print(f"  on those patches: R's own map sums to {sum(own):.1f}, the fused M^R to {sum(fused):.1f} "
          f"({100 * (sum(fused) / max(sum(own), 1e-9) - 1):+.1f}%)")
    print(f"  crop-context gap: R_0 on the {p_sz} px patches alone sums to {sum(crop_sum):.1f}, on the whole windows "
          f"over the same regions {sum(full_sum):.1f} ({100 * (sum(crop_sum) / max(sum(full_sum), 1e-9) - 1):+.1f}%)")

    crit = DensityLoss(float(cfg["regressor"]["w_mse"]), float(cfg["regressor"]["w_ssim"]))
    x = torch.stack(x_self)
    grads = []
    for t in (t_self, t_fused):
        params = R.last_layers(int(cfg["r_layers"]))
        tt = pool_density(torch.as_tensor(np.stack(t))[:, None], 8)
        loss = crit(R(x), {"density": tt})["loss"]
        grads.append(torch.cat([g.flatten() for g in torch.autograd.grad(loss, params)]))
    cos = float(torch.dot(grads[0], grads[1]) / (grads[0].norm() * grads[1].norm() + 1e-12))
    print(f"  fine-tuning gradient of R's last {cfg['r_layers']} layers toward its own map vs toward M^R: cosine "
          f"{cos:.4f}")

    val = split_source(domain_records(cfg["source"], "train"), cfg)[1]
    with fixed_threads(1), torch.no_grad():
        cut = [run_detector(D, image_tensor(r), threshold=thr, nms_iou=float(models["det_nms_iou"]))[0] for r in val]
        low = [run_detector(D, image_tensor(r), threshold=a.floor, nms_iou=float(models["det_nms_iou"]))[0]
               for r in val]
    pts = [r.points for r in val]
    print(f"  source validation ({len(val)} windows): D_0 mAP {localization_map(cut, pts):.3f} cut at the counting "
          f"threshold, {localization_map(low, pts):.3f} from a floor of {a.floor:g}")
    calibration(R, D, thr, float(models["det_nms_iou"]), cfg, val, target_labs, low, pts, p_sz)


def _hits(det: dict, gt: np.ndarray) -> np.ndarray:
    """1 where a detection is the first, by score, to claim an unclaimed head within max(size / 2, 4) px: a radius
    per detection (its own head), which ``crowdlib.metrics.greedy_point_matching`` (one radius) does not take."""
    order, used = np.argsort(-det["scores"], kind="stable"), np.zeros(len(gt), bool)
    hit = np.zeros(len(det["scores"]), np.float64)
    for j in order:
        if not len(gt):
            break
        d = np.hypot(*(gt - det["points"][j]).T)
        d[used] = np.inf
        k = int(np.argmin(d))
        if d[k] <= max(0.5 * float(det["sizes"][j]), 4.0):
            used[k], hit[j] = True, 1.0
    return hit


def _platt(scores: np.ndarray, hits: np.ndarray) -> tuple[float, float]:
    """Logistic fit ``P(hit) = sigmoid(a logit(s) + b)`` by Newton steps."""
    s = np.clip(scores, 1e-6, 1 - 1e-6)
    z = np.log(s / (1 - s))
    theta = np.zeros(2)
    X = np.stack([z, np.ones_like(z)], 1)
    for _ in range(50):
        q = 1 / (1 + np.exp(-(X @ theta)))
        hess = X.T @ (X * (q * (1 - q))[:, None]) + 1e-9 * np.eye(2)
        theta = theta - np.linalg.solve(hess, X.T @ (q - hits))
    return float(theta[0]), float(theta[1])


def calibration(R, D, thr, nms, cfg, val, target_labs, low, pts, p_sz) -> None:
    """Section (5) of the module docstring; ``target_labs``: per target window its pseudo labels and R's patch
    corners from :func:`main`, ``low``: D_0's detections on ``val`` from the score floor, ``pts`` their heads."""
    from crowdlib.methods.bkt.fusion import confidence_map, fuse_density, kernel_radii
    from crowdlib.methods.bkt.infer import pseudo_labels
    from crowdlib.repro import fixed_threads

    sc = np.concatenate([d["scores"] for d in low])
    hit = np.concatenate([_hits(d, np.asarray(g, np.float64).reshape(-1, 2)) for d, g in zip(low, pts)])
    bands = [(0.0, thr), (thr, 0.1), (0.1, 0.2), (0.2, 0.4), (0.4, 1.01)]
    print("  source validation precision of D_0's detections by score: " + ", ".join(
        f"[{lo:.3g}, {hi:.3g}) {hit[(sc >= lo) & (sc < hi)].mean():.2f} (n {int(((sc >= lo) & (sc < hi)).sum())})"
        for lo, hi in bands if ((sc >= lo) & (sc < hi)).any()))
    kept = sc > thr
    a_, b_ = _platt(sc[kept], hit[kept])

    def cal(s: np.ndarray) -> np.ndarray:
        s = np.clip(np.asarray(s, np.float64), 1e-6, 1 - 1e-6)
        return 1 / (1 + np.exp(-(a_ * np.log(s / (1 - s)) + b_)))

    sf, tr = float(cfg["sigma_factor"]), float(cfg["truncate"])

    def fused_cal(lab: dict) -> tuple[np.ndarray, np.ndarray]:
        det = lab["detections"]
        w = confidence_map(det["points"], cal(det["scores"]), kernel_radii(det["sizes"], sf, tr),
                           lab["regression"].shape)
        return w, fuse_density(lab["regression"], lab["psi"], w)

    w_raw, w_cal, own, f_cal = [], [], 0.0, 0.0
    for lab, corners in target_labs:
        w, m = fused_cal(lab)
        for y, x in corners:
            sl = (slice(y, y + p_sz), slice(x, x + p_sz))
            w_raw.append(float(lab["weight"][sl].mean()))
            w_cal.append(float(w[sl].mean()))
            own += float(lab["regression"][sl].sum())
            f_cal += float(m[sl].sum())
    err = {"R": [], "raw": [], "cal": []}
    with fixed_threads(1), torch.no_grad():
        for rec in val:
            lab = pseudo_labels(rec, R, D, None, {**cfg, "fusion": True}, det_threshold=thr, det_nms_iou=nms)
            for k, v in (("R", lab["regression"]), ("raw", lab["density"]), ("cal", fused_cal(lab)[1])):
                err[k].append(abs(float(v.sum()) - rec.count))
    print(f"  Platt scaling of the kept scores (a {a_:.2f}, b {b_:.2f}): W over R's target patches "
          f"{np.mean(w_raw):.4f} raw, {np.mean(w_cal):.4f} calibrated; M^R there "
          f"{100 * (f_cal / max(own, 1e-9) - 1):+.1f}% from R's map")
    print(f"  source validation count MAE: R alone {np.mean(err['R']):.2f}, M^R with raw W {np.mean(err['raw']):.2f}, "
          f"M^R with calibrated W {np.mean(err['cal']):.2f}")


if __name__ == "__main__":
    main()
