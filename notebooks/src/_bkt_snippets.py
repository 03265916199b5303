"""Code shared by the bi-knowledge transfer notebook generators (make_50..54): the parameters that fix the two
synthetic domains, so that every notebook renders the same source and target scenes (and shares cached runs)."""

#: Parameters of notebooks 50-54 that enter the domain specs (defaults: the smoke profile's values).
DOMAIN_PARAMS = """
domains = {"A": "sha_like", "B": "shb_like"}  # synthetic stand-ins of ShanghaiTech A and B (paper: SHA, SHB; C and Q have no stand-in here)
image_sizes = {"sha_like": [128, 192], "shb_like": [128, 160]}  # render size, height and width in px; None: the preset's own (640 x 960 and 768 x 1024, as the datasets; heads are calibrated at it)
window = None  # [h, w]: cut one window of this size from each rendered scene (head sizes and people per output cell as calibrated); None: whole scenes (paper: whole images, 224 x 224 training crops)
n_train = 6  # training scenes per domain (paper: SHA 300, SHB 400); the source's validation split is carved from them
n_test = 3  # held-out test scenes per domain (paper: SHA 182, SHB 316)
data_seed = {"A": 11, "B": 12}  # training-scene seed per domain
test_seed = {"A": 5011, "B": 5012}  # test-scene seed per domain (fresh: no other notebook renders them)
"""

#: Notebook code (indented as the cells) defining ``domain_spec(key)``.
DOMAIN_CODE = """
     from crowdlib.methods.bkt import profile as bkt_profile

     P = {k: globals()[k] for k in bkt_profile.DOMAIN_KEYS + tuple(k for k in bkt_profile.RUN_KEYS if k in globals())}


     def domain_spec(key):
         \"\"\"The bkt domain spec of domain ``key`` ("A" or "B"): preset, scene counts, seeds, size and window.\"\"\"
         return bkt_profile.domain_spec(P, key)
     """

IMPORTS = """
     import matplotlib.pyplot as plt
     import numpy as np
     import pandas as pd

     from crowdlib import viz
     from crowdlib.device import apply_thread_limit
     from crowdlib.methods import bkt
     from crowdlib.report import Reporter
     from crowdlib.repro import Claim, Row
     """

#: Parameters of notebooks 51-54 that enter a run's config (defaults: the smoke profile's values). Notebooks 51-54
#: build identical base configs from them, so that they share the cached runs (51's B→A run is 52's "Ours" and 53's
#: cycles; 51's A→B Phi is 54's L_Phi).
RUN_PARAMS = """
seeds = [0]  # training seeds (paper: one run; default profile: 3 seeds)
backbone = "mobilenet_v2"  # trunk of R and Phi (paper: VGG-16, DSSINet for R and a dilated-VGG nested U-Net for Phi; "vgg16" needs its ImageNet file)
det_backbone = "mobilenet_v2"  # trunk of D, Crowd-SDNet's CSP detector (paper: ResNet-50 CSP, "resnet50")
det_width = 32  # channels of D's decoder (library default 32)
pretrained = True  # ImageNet weights for the trunks (paper: ImageNet VGG-16 / ResNet-50)
crop = 64  # source training crops of R, Phi and D, px (paper: 224 x 224 for Phi)
batch_size = 2  # source training batch (paper: not stated)
reg_steps = 4  # R's source training steps (paper: DSSINet's protocol, to convergence)
reg_lr = 0.0001  # R's Adam learning rate on the source (paper: DSSINet's protocol)
reg_ssim = 0.0  # weight of DMS-SSIM in R's loss (paper: DSSINet trains with MSE + DMS-SSIM; its weight is in [18])
phi_steps = 4  # Phi's source training steps (paper: to convergence)
phi_lr = 0.0001  # Phi's Adam learning rate (paper: 1e-5)
phi_crop = 64  # Phi's source training crops, px (paper: 224 x 224)
phi_loss = "focal_mse+dms_ssim"  # Phi's loss in Tables 1-3 (paper: L_Phi, focal MSE + DMS-SSIM; Table 4 compares all four)
det_epochs = 1  # D's source training epochs (paper: CSP's protocol)
det_max_steps = 3  # cap on D's source training steps (None: all epochs)
eval_every = 2  # source validation (model selection of R and Phi) every this many steps
val_fraction = 0.2  # share of the source training scenes held out for model selection (paper: not stated)
sigma_factor = 0.25  # Eq. 1's kernel rule: sigma_j is sigma_factor x head size (paper: sigma proportional to the scale)
truncate = 2.0  # kernel half width in sigmas; Eq. 8's window k is 2 x int(truncate x sigma + 0.5) + 1
patch = 40  # side of the selected patches, px (paper: 224 on ~600 x 900 to 768 x 1024 images, 6-12 patches per image)
patches_per_image = 2  # patches per image for R and for D (paper: 2)
r_range = [0.5, 0.7]  # R's patches: density percentile range (paper: 50% - 70%)
cycles = 1  # T, the cycles of "Ours" (paper: 4)
max_cycles = 2  # cycles run and shown in Table 3 (paper: 5); Ours is read at cycle T of this run
cycle_steps = 2  # optimizer steps per cycle for R and for D (paper: not stated; one pass over the selected patches)
cycle_batch = 2  # patches per fine-tuning step (paper: not stated)
r_lr = 0.000001  # R's fine-tuning rate, last two layers (paper: 1e-6)
d_lr = 0.00001  # D's fine-tuning rate (paper: 1e-5)
d_threshold = "refit"  # D's counting threshold: "source" (chosen on the source validation split for D_0 and kept), "refit" (re-chosen on that split for D_0 and after every cycle, grid down to 0.005) (paper: none named; default profile: refit)
phi_threshold = "refit"  # Phi's binarisation: "paper" (phi.threshold 0.2 for every loss), "refit" (the count-MAE minimiser of Phi(R_0)'s points on the source validation split) (paper: 0.2 for its L_Phi; default profile: refit)
d_loss = "csp"  # D's loss in the cycles: "csp" (centre cross-entropy + smooth-L1 sizes), "sdnet" (Crowd-SDNet's crowdedness-aware size loss, D_0's source loss) (paper: CSP's, Sec. 3.1)
r_context = "image"  # what R sees when fine-tuned on a patch: "image" (the whole image, loss on the patch's cells), "patch" (the patch cut out alone) (paper: 224 px patches cut from ~1024 px images, little context lost; default profile: image)
d_context = "image"  # what D sees when fine-tuned on a patch: "image" (the whole image, CSP loss on the patch's cells), "patch" (the patch cut out alone) (paper: 224 px patches cut from ~1024 px images; default profile: image)
threads = 1  # threads per run (the study runs one run per core)
progress = False  # print a line per cycle
"""

#: Notebook code (indented as the cells) defining ``base_config(src, tgt)`` and ``transfer_name(src, tgt)``; needs
#: :data:`DOMAIN_CODE`'s ``domain_spec`` before it.
BASE_CODE = """
     from crowdlib.methods.bkt import study as bs
     from crowdlib.models.backbones import require_weights

     require_weights(backbone, pretrained)
     require_weights(det_backbone, pretrained)
     transfer_name, describe = bkt_profile.transfer_name, bkt_profile.describe


     def base_config(src, tgt):
         \"\"\"The run config of the transfer src -> tgt (:func:`crowdlib.methods.bkt.profile.run_config`): every row
         of Tables 1-4 is this plus its override; it runs max(cycles, max_cycles) cycles, Ours is read at cycle T.\"\"\"
         return bkt_profile.run_config(P, src, tgt)
     """

#: Imports of notebooks 51-54.
RUN_IMPORTS = """
     import matplotlib.pyplot as plt
     import numpy as np
     import pandas as pd
     import torch

     from crowdlib.device import apply_thread_limit
     from crowdlib.methods import bkt
     from crowdlib.report import Reporter, results_table
     """

#: The claims cell body (given ``rows`` and ``claims``).
CLAIMS_CODE = """
     claims_df = rep.results(rows, claims)
     for s in bs.claim_sentences(claims_df, digits=3):
         print(s)
     if len(claims_df):
         print({k: int(v) for k, v in claims_df.state.value_counts().items()}, f"of {len(claims_df)} claims")
     claims_df[["claim", "better (ours)", "worse (ours)", "gap", "gap se", "state"]] if len(claims_df) else None
     """

#: Notebook code defining ``outputs_at(cfg, t, rec)``: every map of one image from the cached run of ``cfg`` at cycle
#: ``t`` (R_t's density, D_t's detections, Phi(R_t), the fused M^R and M^D; :func:`crowdlib.methods.bkt.pseudo_labels`).
OUTPUTS_CODE = """
     def outputs_at(cfg, t, rec):
         \"\"\"The maps of one (test) image at cycle t of the cached run of cfg (fused as at test time).\"\"\"
         res = bkt.get_or_run_transfer(cfg)
         m = bkt.cycle_models(cfg, res, t)
         return bkt.pseudo_labels(rec, m["regressor"], m["detector"], m["phi"], {**cfg, "fusion": True},
                                  det_threshold=m["det_threshold"], det_nms_iou=m["det_nms_iou"],
                                  phi_threshold=m["phi_threshold"])
     """

#: Markdown shared by notebooks 51-54: how the default profile's budget was sized (pilots on source validation and
#: unlabelled target images only), so that each notebook says which Phi loss and budgets its tables use.
BUDGET_MD = """
     ### How the default profile was sized (no target label, no test image)
     - **Regime.** Each scene is rendered at its preset's calibrated size (sha_like 640 x 960, shb_like 768 x 1024) and
       one 224 x 320 window of it is kept (the most crowded of 4): head sizes in pixels and people per stride-8 cell
       stay as calibrated, at the pixels a CPU affords. R and D train on the same windows.
     - **R**: 300 steps (Adam 1e-4, crops 128); its source-validation MAE every 50 steps picks the state.
     - **D** (Crowd-SDNet's detector): 40 epochs; its source-validation MAE (every 5 epochs) falls from 28.8 to ~6 by
       epoch 20 and then stays within 5-9 (`benchmarks/bkt_probe.py`, shb_like source, seed 0).
     - **Phi**: the paper's L_Phi (focal MSE + DMS-SSIM on a sigmoid map) left every source-validation map below the
       0.2 threshold, so source-validation mAP 0, in 1000 steps at 1e-3 (and at 1e-4, with a Kaiming-scale init and
       with the literal form); focal CE reaches 0.90 in 150 steps (`benchmarks/bkt_phi_pilot.py`). Tables 1-3 therefore
       run Phi with **focal CE** (`phi_loss`), 200 steps at 1e-3, crops 64; Table 4 trains all four losses alike.
     - **Cycles**: T = 4 of 5 run, each one pass over the selected patches (24 steps of 2 patches) at the paper's
       rates (R's last two layers 1e-6, D 1e-5). On unlabelled target windows (B→A, seed 0) R's mean count moves
       134.9 → 150.1 over 5 cycles, so the rate is not too small to act; D's mean count falls 53.8 → 13.4 after one
       cycle (also at 1e-6) while its scores sit near its threshold (median 0.07 against 0.05).
     - **R's view in the cycles** (`r_context`): the paper cuts 224 px patches from ~1024 px images, so a patch keeps
       most of the context R has at inference; an 80 px patch of a 224 x 320 window does not. R_0 on such a patch
       alone counts 19.2% less than over the same region of the whole window (B→A, unlabelled target windows, seed 0;
       31.1% more on A→B; `benchmarks/bkt_fusion_probe.py`), and fine-tuning on the patch alone pulled R toward
       that gap whatever the fusion (the runs up to 988b381). R therefore sees the whole window and its loss is taken
       on the patch's output cells (`"image"`); `"patch"` is the literal crop. D's gap is larger: D_0 finds 100% more
       heads in an 80 px patch alone than in the same region of its window on B→A and 53% fewer on A→B, against
       +28% and -11% for 224 px patches of whole scenes (`benchmarks/bkt_context_gap.py`), so D too sees the whole
       window and its CSP loss is taken on the patch's output cells (`d_context`).
     - **D's counting threshold** (`d_threshold`; the paper names none): D_0's, chosen on the source validation split,
       sat on the floor (0.05) of Crowd-SDNet's grid, and the cycles move D's scores across it
       (`benchmarks/bkt_d_probe.py`, source validation and unlabelled target windows only): on A→B (seed 2) D's
       target count went 7 → 5000 (every candidate) in 3 cycles at the fixed 0.05, and its source-validation MAE
       to 4912; on B→A (seed 0) it fell 33 → 2 in 2 cycles. Re-choosing the threshold on the source validation
       split after every cycle (`"refit"`, grid down to 0.005) moved it 0.05 → 0.12 → 0.45 → 0.78 on A→B and
       0.045 → 0.025 → 0.015 on B→A, keeping D's source-validation MAE at 48 and 8 instead of 4912 and 22, so the
       default profile uses `"refit"`; `"source"` keeps D_0's threshold through the cycles.
     - **D's loss in the cycles** (`d_loss`): those collapses came with Crowd-SDNet's crowdedness-aware size loss,
       whose weights |R_j| (mean 14 on the fused points of dense target patches, against ~1-3 on the sparse source)
       made the size term's gradient 23 times the centre term's (B→A, seed 0). The paper's D is CSP, "trained with the
       cross-entropy classification loss and the smooth-L1 loss" (Sec. 3.1): with that loss (`"csp"`, the default)
       two B→A cycles raise D's target count 33 → 44 and lower its source-validation MAE 4.0 → 3.0 (at the refit
       thresholds), where the crowdedness-aware loss gave 26 and 7.8. On A→B (seed 2) neither loss helps: the fused
       points teach 19 heads per D patch where D_0 finds 0.4, and D's scores rise everywhere.
     - **Phi's binarisation** (`phi_threshold`): at the paper's 0.2 the focal-CE Phi gives 65 points per
       source-validation window where there are 29 heads (B source) and 360 where there are 88 (A source), although
       R_0 counts them right (28.5, 87.2), so the fused M^D taught D ~300 points per A window. The default profile
       re-chooses Phi's threshold on the source validation split (`"refit"`, the count-MAE minimiser; 0.33 for B,
       seed 0) for Tables 1-3: on B→A (seed 0) the pseudo points per D patch fall 22 → 13, and after 2 cycles D's
       source-validation MAE is 2.4 (3.0 at 0.2). Phi's training step is chosen by the source validation mAP at the
       same policy's threshold (at 0.2 the squared-error Phis of Table 4 never cross it, so every step scored 0 and
       the first was kept); Table 4 refits each loss's threshold the same way.
     """


def setup_code(notebook: str, extra: str = "") -> str:
    """The first code cell of notebooks 51-54: imports, the thread limit, the reporter of ``notebook``, the domain
    specs and ``base_config``, then ``extra`` (more definitions, same indentation)."""
    return (RUN_IMPORTS + f"""
     apply_thread_limit()
     rep = Reporter("{notebook}", profile=profile, seeds=seeds)
""" + DOMAIN_CODE + BASE_CODE + extra)
