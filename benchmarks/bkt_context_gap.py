"""How much context a cycle's patch loses: R_0's count over a patch cut out alone against R_0's count over the same
region of the whole image (and D_0's detections in it, alone and in the image), in the default profile's regime (80 px patches of 224 x 320 windows) and in the
paper's (224 px patches of the full, calibrated-size scene: sha_like 640 x 960, shb_like 768 x 1024).

Only unlabelled target images are read (their labels are never touched) and R_0 comes from the source stages, so
nothing here looks at a test image or a target label. The gap is why ``r_context`` defaults to ``"image"``: with
``"patch"`` a cycle fine-tunes R on the patch alone against a target computed on the whole image, and R drifts by
the gap whatever the fusion.

Usage: ``PYTHONPATH=. .venv/bin/python benchmarks/bkt_context_gap.py --transfer B A --seed 0``.

Measured on 2026-12-08 (AMD EPYC host, 1 thread, the default profile's R_0 of seed 0, every non-overlapping patch
of 12 unlabelled target scenes; about 20 s each):

- B->A: 80 px patches of the windows (96) alone 1047.8 against 1276.4 in the window, gap -17.9% (mean |gap| per
  patch 23.4%); 224 px patches of the 640 x 960 scenes (96) 4649.1 against 4878.5, gap -4.7% (14.5%). D_0 (its
  source-validation threshold 0.045): 467 detections in the 80 px patches alone against 234 in the windows
  (+99.6%), 1897 against 1480 in the 224 px patches of whole scenes (+28.2%); mean scores alike (0.087 / 0.086).
- A->B: 80 px patches (96) 425.8 against 318.8, gap +33.6% (47.2%); 224 px patches of the 768 x 1024 scenes (144)
  1884.9 against 1781.5, gap +5.8% (11.3%). D_0 (threshold 0.06): 28 against 60 (-53.3%); 624 against 702 (-11.1%).
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bkt_run import add_run_args, run_cfg, source_setup  # noqa: E402


def gaps(R, records, patch: int) -> dict[str, float]:
    """R's count over every non-overlapping ``patch`` of ``records``' images, alone and inside the whole image:
    the summed counts, their relative difference and the mean absolute per-patch relative difference (patches
    whose in-image count is below 0.5 person are left out of the mean)."""
    from crowdlib.methods.bkt.fusion import patch_grid
    from crowdlib.methods.bkt.infer import image_tensor, predict_cells

    alone, inside = [], []
    for rec in records:
        img = image_tensor(rec)
        cells = predict_cells(R, img)
        for y, x in patch_grid(img.shape[-2:], patch):
            alone.append(float(predict_cells(R, img[..., y:y + patch, x:x + patch]).sum()))
            inside.append(float(cells[y // 8:(y + patch) // 8, x // 8:(x + patch) // 8].sum()))
    a, i = np.asarray(alone), np.asarray(inside)
    keep = i >= 0.5
    return {"patches": float(len(a)), "alone": float(a.sum()), "inside": float(i.sum()),
            "gap": float(a.sum() / max(i.sum(), 1e-9) - 1.0),
            "mean_abs_gap": float(np.mean(np.abs(a[keep] / i[keep] - 1.0))) if keep.any() else float("nan")}


def d_gaps(D, records, patch: int, threshold: float, nms_iou: float) -> dict[str, float]:
    """D's detections (score above ``threshold``) inside every non-overlapping ``patch``: D run on the patch alone
    against D run on the whole image, and the mean score of those detections."""
    from crowdlib.methods.bkt.fusion import patch_grid
    from crowdlib.methods.bkt.infer import image_tensor, run_detector

    alone, inside, s_alone, s_inside = 0, 0, [], []
    for rec in records:
        img = image_tensor(rec)
        det = run_detector(D, img, threshold=threshold, nms_iou=nms_iou)[0]
        for y, x in patch_grid(img.shape[-2:], patch):
            pts = det["points"]
            m = (pts[:, 0] >= x) & (pts[:, 0] < x + patch) & (pts[:, 1] >= y) & (pts[:, 1] < y + patch)
            inside += int(m.sum())
            s_inside.extend(det["scores"][m].tolist())
            d = run_detector(D, img[..., y:y + patch, x:x + patch], threshold=threshold, nms_iou=nms_iou)[0]
            alone += len(d["points"])
            s_alone.extend(d["scores"].tolist())
    return {"alone": float(alone), "inside": float(inside), "gap": alone / max(inside, 1) - 1.0,
            "score_alone": float(np.mean(s_alone)) if s_alone else float("nan"),
            "score_inside": float(np.mean(s_inside)) if s_inside else float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_args(ap)
    ap.add_argument("--scenes", type=int, default=12, help="unlabelled target training scenes to measure on")
    ap.add_argument("--paper-patch", type=int, default=224, help="patch side in the paper's regime, px (paper 224)")
    a = ap.parse_args()

    from crowdlib.methods.bkt.data import domain_records, unlabeled
    from crowdlib.repro import fixed_threads

    cfg = run_cfg(a)
    models, thr = source_setup(cfg)
    R, D, nms = models["regressor"].eval(), models["detector"].eval(), float(models["det_nms_iou"])
    spec = {**copy.deepcopy(cfg["target"]), "n": int(a.scenes)}
    full_spec = {**spec, "window": None}
    print(f"{a.transfer[0]}->{a.transfer[1]} seed {a.seed}: R_0 of the source stages, {a.scenes} unlabelled "
          f"{spec['preset']} scenes")
    with fixed_threads(1), torch.no_grad():
        for name, s, patch in (("default profile: windows", spec, int(cfg["patch"])),
                               ("paper's regime: whole scenes", full_spec, int(a.paper_patch))):
            recs = unlabeled(domain_records(s, "train"))
            h, w = recs[0].image.shape[:2]
            g = gaps(R, recs, patch)
            print(f"  {name} ({h} x {w} px), {patch} px patches ({int(g['patches'])}): alone {g['alone']:.1f}, "
                  f"in the image {g['inside']:.1f}, gap {g['gap']:+.1%}, mean |gap| per patch {g['mean_abs_gap']:.1%}")
            g = d_gaps(D, recs, patch, thr, nms)
            print(f"    D_0 (threshold {thr:.3g}): {g['alone']:.0f} detections in the patches alone, {g['inside']:.0f} "
                  f"in the image, gap {g['gap']:+.1%}; mean score {g['score_alone']:.3f} alone, "
                  f"{g['score_inside']:.3f} in the image", flush=True)


if __name__ == "__main__":
    main()
