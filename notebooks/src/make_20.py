"""Generate notebooks/20_iim_ablation.ipynb (run: .venv/bin/python notebooks/src/make_20.py)."""
from pathlib import Path
import sys

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from nbtools import write_notebook  # noqa: E402

PARAMS = """
profile = "smoke"  # parameter profile written into the reports (smoke | default | paper)
seeds = [0]  # training seeds (paper: one run; default profile: 3 seeds)
presets = ["crowd_a", "crowd_b"]  # synthetic training/test presets (paper: NWPU-Crowd train / val)
n_train = 6  # synthetic training images per preset; validation is carved from them (paper: 3,109 images)
n_test = 4  # held-out synthetic test images per preset (paper: 500 NWPU val images)
image_size = 128  # synthetic image side in px (paper: original NWPU sizes)
data_seed = 1  # synthetic training-set seed
test_seed = 1001  # seed of the held-out synthetic test scenes (must differ from data_seed)
val_fraction = 0.15  # share of training images used for model selection (paper: NWPU val)
crop = 64  # training crop side in px (paper: 512 x 1024)
batch_size = 4  # paper: 12
trunk_steps = 4  # shared confidence-predictor warm start per seed (paper: none, end-to-end training)
finetune_steps = 4  # steps of each row after the warm start (paper: until convergence; lr decays as one poly schedule over both stages)
eval_every = 2  # validation (model selection) every this many steps
lr = 0.002  # confidence predictor learning rate (paper: 1e-5)
lr_encoder = 0.0002  # threshold encoder learning rate, its own Adam group and poly decay (paper: 1e-6, i.e. lr / 10)
k = 0.2  # binarization layer's gradient factor to the confidence map (authors' code: 0.2)
backbone = "tiny"  # confidence predictor backbone (paper: HRNet-W48 for Table 3; VGG-16 + FPN elsewhere)
fpn_channels = 32  # FPN width (paper VGG-16-FPN: 256)
head_channels = 16  # decoder width
head_full_res = True  # last 3x3 conv at full resolution (paper: True); False stops at stride 2 and upsamples
pbm_widths = [64, 32, 16]  # PBM conv widths (paper: 256, 128, 64)
pbm_pool = 3  # PBM average-pool size at 1/8 resolution (paper: 15 on ~2000 px NWPU images; 3 keeps the same share of a 256 px scene)
progress = False  # show progress bars
"""


def base_config_code(extra: str = "") -> str:
    return f"""
     base = iim.make_config(
         data={{"kind": "synthetic", "presets": list(presets), "n": n_train, "seed": data_seed,
               "height": image_size, "width": image_size}},
         val_fraction=val_fraction, crop=crop, batch_size=batch_size, eval_every=eval_every, lr=lr,
         lr_encoder=lr_encoder, k=k, backbone=backbone, fpn_channels=fpn_channels, head_channels=head_channels,
         head_full_res=head_full_res, pbm_widths=list(pbm_widths), pbm_pool=pbm_pool{extra})
     train_records = iim.load_records(base["data"], "train")
     test_records = iim.load_records(dict(base["data"], n=n_test, test_seed=test_seed), "test")
     print(f"{{len(train_records)}} training images (validation carved from them), {{len(test_records)}} test images,",
           f"{{sum(r.count for r in test_records)}} test heads; device {{pick_device()}}, {{torch.get_num_threads()}} thread(s)")
     """


cells = [
    ("md", """
     # 20 · IIM ablation (Table 3): fixed vs learnable thresholds, and where the L1 loss works
     IIM (Gao et al.) segments a crowd image into an **independent instance map**: one non-overlapping blob per
     head; heads are the centroids of its 4-connected components. A *confidence predictor* (CP) regresses the
     instance map (MSE); a **binarization layer** turns the confidence into a binary map with a threshold that
     is either fixed or predicted by a threshold encoder: one value per image (**IBM**) or a map (**PBM**,
     compressed sigmoid in 0.2-0.7). Its backward pass sends `-grad` to the threshold and `k x grad` (k = 0.2)
     to the confidence, so an L1 loss between the binary map and the instance map trains the encoder ("L1 on
     the encoder only" = k 0) or the encoder and the CP ("L1 on CP and encoder").

     **Setup here.** Synthetic dense (`crowd_a`) and sparse (`crowd_b`) scenes with true head boxes stand in for
     NWPU-Crowd; instance maps come from the boxes with IIM's overlap removal; scores use the NWPU protocol
     (sigma_l from each true box; F1/Pre/Rec in %, MAE, MSE = root mean squared error, NAE) on held-out test
     scenes. Models are selected on a validation split carved from the training scenes, never on test.
     To fit a one-core CPU budget, every row of one seed starts from **one shared CP warm start**
     (`trunk_steps`, MSE only) and then trains `finetune_steps` more steps with its own threshold module and
     L1 working area; the predictor continues its learning-rate schedule, the threshold module (its own Adam group
     at a tenth of the predictor's rate, as the authors') starts its own. The fixed-threshold rows continue with
     MSE only and each chooses its checkpoint on validation at its own threshold (0.5 or 0.8). All rows therefore
     see the same number of steps. The paper trains
     each row end to end from ImageNet weights; our backbone is a small network trained from scratch.
     The PBM's two average pools (15 x 15 at 1/8 resolution in the paper, i.e. 120 px on NWPU images of about
     2000 px) are scaled to the 256 px scenes (`pbm_pool`); with 15 they would span most of a scene and make the
     pixel-level module nearly image-level."""),
    ("parameters", PARAMS),
    ("code", """
     import matplotlib.pyplot as plt
     import numpy as np
     import pandas as pd
     import torch

     from crowdlib.device import apply_thread_limit, pick_device
     from crowdlib.methods import iim
     from crowdlib.report import Reporter, results_table

     apply_thread_limit()
     rep = Reporter("20_iim_ablation", profile=profile, seeds=seeds)
     """ + base_config_code()),
    ("md", "## Train the rows (cached: notebooks 21 and 22 reuse the IIM models)"),
    ("code", """
     long, runs = iim.run_settings(iim.TABLE3_SETTINGS, base, seeds, test_records, trunk_steps=trunk_steps,
                                   finetune_steps=finetune_steps, train_records=train_records, progress=progress,
                                   keep_maps=True)
     timing = long[long.metric.isin(["train_seconds", "trunk_seconds", "images_per_s"])].pivot_table(
         index="setting", columns="metric", values="value", aggfunc="mean", sort=False)
     rep.table(timing.round(1), "timing", caption="training seconds per run (the warm start is shared by all rows "
               "of a seed) and training throughput (images/s)")
     """),
    ("code", """
     rows = iim.rows_from_long(long, "3", iim.PAPER_TABLE3, iim.METRICS)
     table3 = results_table(rows, digits=2)
     rep.table(table3, "table3", caption="Table 3 on synthetic scenes: ours (mean ± std over seeds) beside the "
               "paper's NWPU-Crowd val numbers (HRNet-W48). F1/Pre/Rec in % at sigma_l.")
     """),
    ("md", """
     ## Threshold sweep of the fixed-threshold confidence predictor
     The CP model (fixed-threshold rows) decoded at every global threshold, on the test scenes of the first
     seed; the learnable rows are drawn as horizontal lines at their F1. This is for reading only: no setting
     is chosen from it."""),
    ("code", """
     s0 = seeds[0]
     cp = runs[("CP fixed:0.5", s0)]
     sweep = []
     for t in np.round(np.arange(0.1, 0.951, 0.05), 2):
         ev = iim.evaluate_model(None, cp["config"], test_records, maps=cp["maps"], threshold=float(t))
         sweep.append({"threshold": t, "F1": 100 * ev["f1"], "Pre": 100 * ev["pre"], "Rec": 100 * ev["rec"]})
     sweep = pd.DataFrame(sweep)
     fig, ax = plt.subplots(figsize=(6.5, 3.6))
     for m in ("F1", "Pre", "Rec"):
         ax.plot(sweep.threshold, sweep[m], marker="o", ms=3, label=f"CP, global threshold: {m}")
     for name, style in (("CP+IBM (L1: CP&IBM)", "--"), ("CP+PBM (L1: CP&PBM) = IIM", ":")):
         ax.axhline(100 * runs[(name, s0)]["eval"]["f1"], ls=style, color="k", label=f"{name}: F1")
     ax.set_xlabel("global threshold"); ax.set_ylabel("%"); ax.legend(fontsize=7); ax.grid(alpha=0.3)
     rep.figure(fig, "threshold_sweep")
     rep.table(sweep.round(2).set_index("threshold"), "threshold_sweep")
     """),
    ("md", """
     ## Where does a learned threshold settle?
     The binarization layer's backward pass gives the threshold the gradient `#FN pixels - #FP pixels` (a
     derivative of -1 at every pixel, Eq. 3 and 6), so a learned threshold moves until the predicted foreground
     area equals the instance maps' area. The table sweeps a global threshold over the fixed-threshold CP model's
     confidence maps (first seed, test scenes) and shows that balance point beside the pixel-L1 minimum and the
     F1 optimum; the learned thresholds (last table of this notebook) can be read against it."""),
    ("code", """
     from crowdlib.targets.instance import instance_map_from_boxes

     inst_maps = [instance_map_from_boxes(r.points, r.boxes, r.load_image().shape[:2]) for r in test_records]
     bal = iim.pixel_balance_sweep(test_records, cp["maps"], inst_maps, np.round(np.arange(0.2, 0.81, 0.05), 2))
     rep.table(bal.round(3).set_index("threshold"), "pixel_balance", caption="FP / FN pixels, pixel L1 and F1 of the "
               "CP model at global thresholds")
     t_bal = float(bal.threshold[(bal["FP pixels"] - bal["FN pixels"]).abs().idxmin()])
     t_l1 = float(bal.threshold[bal["pixel L1"].idxmin()])
     t_f1 = float(bal.threshold[bal["F1"].idxmax()])
     print(f"FP = FN pixels near T = {t_bal:.2f}; pixel-L1 minimum at T = {t_l1:.2f}; F1 maximum at T = {t_f1:.2f}")
     """),
    ("md", """
     ## Did the paper's directions reproduce?
     One sentence per comparison, generated from the rows' per-seed values (never typed by hand).
     Each claim gets a state from its per-seed values: *reproduced* when the gap in the paper's direction exceeds its standard error across seeds, *contradicted* when the opposite direction does, *inconclusive* otherwise (and always with a single seed, as in the smoke profile)."""),
    ("code", """
     claims_df = rep.results(rows, iim.table3_claims())
     for s in iim.claim_sentences(claims_df, digits=2):
         print(s)
     for s in iim.table3_readings(rows):
         print(s)
     claims_df[["claim", "better (ours)", "worse (ours)", "gap", "gap se", "state"]]
     """),
    ("md", """
     ## The learned thresholds over training
     Every validation point of the rows with a threshold module records the mean learned threshold on head pixels
     and on background pixels of the validation images (carved from train); step 0 is before the module's first
     update. The threshold module has its own Adam group at `lr_encoder` (the authors' 1/10 of the predictor's
     rate) and its own poly decay from its first step (`encoder_schedule = "own"`): a module that stays where it
     started is, in effect, a fixed threshold."""),
    ("code", """
     traj = iim.threshold_trajectory(runs)
     if not traj.empty:
         fig, axes = plt.subplots(1, 3, figsize=(15, 3.6), sharex=True)
         for setting, g in traj.groupby("setting", sort=False):
             m = g.groupby("step")[["thr_fg", "gap"]].mean()
             line, = axes[0].plot(m.index, m["thr_fg"], marker="o", ms=3, label=setting)
             axes[1].plot(m.index, m["gap"], marker="o", ms=3, color=line.get_color(), label=setting)
         per_image = iim.image_thresholds(runs[("CP+IBM (L1: CP&IBM)", seeds[0])])
         if not per_image.empty:
             axes[2].plot(per_image.index, per_image.values, lw=0.8, alpha=0.7)
         axes[0].set_ylabel("mean threshold on head pixels"); axes[1].set_ylabel("head minus background threshold")
         axes[2].set_ylabel("IBM threshold per validation image"); axes[2].set_title("CP+IBM (L1: CP&IBM), first seed")
         for ax in axes:
             ax.set_xlabel("steps of this row (after the warm start)"); ax.grid(alpha=0.3)
         axes[0].legend(fontsize=7)
         fig.tight_layout()
         rep.figure(fig, "threshold_trajectory")
         se = iim.threshold_start_end(traj)
         rep.table(se.round(3), "threshold_start_end",
                   caption="learned thresholds at the first and the last validation point (mean over seeds)")
         bal_thr = t_bal  # where the threshold gradient (#FN - #FP pixels) vanishes for the CP model (sweep above)
         for setting, r in se.iterrows():
             need = abs(r["start thr_fg"] - bal_thr)
             print(f"{setting}: the head-pixel threshold moved {r['start thr_fg'] - r['end thr_fg']:+.3f} "
                   f"({r['start thr_fg']:.3f} -> {r['end thr_fg']:.3f}); the pixel balance point (FP = FN pixels, "
                   f"where the L1 gradient vanishes) is near {bal_thr:.2f}, {need:.3f} from its start")
     """),
    ("md", """
     **How to read this.** The paper reports that learnable thresholds beat both fixed thresholds, that the
     pixel-level module beats the image-level one, that sending the L1 gradient into the confidence predictor
     helps both modules, and that raising a fixed threshold trades recall for precision (a reading here, not a
     claim: both fixed rows decode nearly the same maps, so it cannot fail). The sentences above say
     which of these held here (means over the profile's seeds; the ± std in the table is the seed spread).
     Differences smaller than their standard error are marked inconclusive and should not be read as a
     direction either way.
     **Why the image-level module barely moves.** IBM is a 1x1 convolution, a global average and the compressed
     sigmoid (the text's design; the authors never released it). Adam moves each of its weights by at most about
     `lr_encoder` per step, and its logit is an average over mostly-background pixels where `F := I * F` is near
     zero, so a few hundred steps at the authors' 1/10 rate move its threshold by the small amount printed above,
     against the distance to the balance point it is pushed towards. PBM multiplies its logit by 10 (the authors'
     code) and moves much further. The IBM rows are therefore close to a fixed threshold at their start value; at the
     paper's ~100x longer schedules they would move further.
     *Disclosure:* the default profile's step counts (`trunk_steps`, `finetune_steps`) were raised once, from
     400 + 200 to 600 + 300, after a first default run on the test scenes of seed 1001 showed the learned
     thresholds tied with a fixed 0.5; no per-row setting was changed. The issue-11 rerun (own encoder schedule,
     full-resolution head, fair baselines, 3 seeds) scores fresh test scenes (`test_seed = 3002`) that no earlier
     run evaluated. The smoke profile
     trains a few steps only: its numbers mean nothing beyond "the pipeline runs". Where a direction did not
     reproduce, the mean thresholds printed below (foreground vs background pixels) and the threshold sweep show
     whether the learned thresholds sit near the sweep's best global threshold."""),
    ("code", """
     thr = long[long.metric.isin(["thr_fg", "thr_bg", "conf_fg", "conf_bg"])].pivot_table(
         index="setting", columns="metric", values="value", aggfunc="mean", sort=False)
     rep.table(thr.round(3), "learned_thresholds", caption="mean learned threshold / confidence on foreground "
               "(instance map 1) and background pixels of the test scenes")
     """),
    ("code", """
     rep.provenance();
     """),
]

if __name__ == "__main__":
    write_notebook(Path(__file__).resolve().parents[1] / "20_iim_ablation.ipynb", cells)
