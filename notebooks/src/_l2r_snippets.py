"""Code shared by the L2R notebook generators (make_40..42): the parameters that decide a run's config and the code
that builds it, so that notebooks 40, 41 and 42 build identical configs and share the cached runs (41's
"counting only, ImageNet" and "multi-task, ImageNet" are 42's 100% rows)."""

#: Parameters of notebooks 40-42 that enter a run's config (their defaults are the smoke profile's values).
RUN_PARAMS = """
seeds = [0]  # training seeds (paper: one run; default profile: 3 seeds)
preset = "shb_like"  # synthetic labelled domain, a stand-in for ShanghaiTech B (sha_like: Part A)
image_sizes = {"shb_like": [96, 128], "sha_like": [96, 144]}  # synthetic height, width in px (presets: 768 x 1024 / 640 x 960 as the datasets; default profile: 192 x 256)
n_train = 12  # labelled synthetic images, val_fraction of them carved out once for validation (paper: SHB 400 train images; default profile: 400)
n_pool = 16  # unlabeled synthetic images of the same domain, labels dropped (paper: thousands of Google images; default profile: 240)
n_test = 4  # held-out synthetic test scenes (paper: SHB 316 test images; default profile: 316)
data_seed = 1  # seed of the labelled scenes
pool_seed = 2  # seed of the unlabeled scenes (never the labelled or test seed)
test_seed = 4001  # seed of the held-out test scenes (fresh: no other notebook uses it; default profile: 4003, as 4001 and 4002 have been scored)
backbone = "mobilenet_v2"  # counting network trunk (paper: "vgg16", conv1_1..conv5_3; its ImageNet file is not on this machine)
pretrained = True  # ImageNet weights available for the backbone (False: only the from-scratch rows are trained)
freeze_bn = "pretrained"  # "pretrained": ImageNet-initialised runs keep batch norm in eval mode (its ImageNet statistics), so the nests in a mini-batch cannot change the labelled crops' normalisation; from-scratch runs have no statistics to keep and train it; True or False force either (paper: VGG-16, no batch norm; chosen on validation, benchmarks/l2r_scarcity_pilot.py)
crop = 64  # side of the labelled crops and nest crops fed to the network, px (paper: 224, giving a 14 x 14 map)
test_zoom = 1.25  # test and validation images are resized to a short side of crop * test_zoom (paper: whole images at native size)
crop_range = [0.5, 1.0]  # labelled crop side as a fraction of the image's short side (paper: not in the review)
batch_size = 2  # labelled crops per mini-batch (paper: not in the review)
nests_per_batch = 1  # unlabeled nests per mini-batch (paper: not in the review)
nest_k = 4  # sub-crops per nest below the outer crop (paper: k is 4, i.e. 5 crops)
nest_scale = 0.75  # side ratio of consecutive nest crops (paper: 0.75)
anchor_region = 0.5  # the nest anchor is drawn in the central box of this fraction of each side (paper: the image centre region)
lam = 1.0  # lambda of L: L_count + lambda L_rank (paper: not in the review)
margin = 0.0  # eps of the ranking hinge (paper: not in the review)
steps = 4  # counting steps of every paradigm that counts (paper: until convergence; default profile: 300, from validation curves and the time budget, benchmarks/l2r_scarcity_pilot.py)
rank_ratio = 1.0  # ranking steps of ranking-then-fine-tune and of ranking only, as a multiple of steps (paper: not in the review)
alternate_blocks = 2  # alternating: this many ranking blocks, each followed by a counting block (paper: not in the review)
eval_every = 2  # validation (model selection) after every this many counting steps, the same checkpoints in every paradigm
optimizer = "sgd"  # paper: SGD with momentum
lr = 0.0001  # learning rate, constant (paper: 1e-6 for VGG-16 at 224 px; default profile: 3e-4, chosen on validation by benchmarks/l2r_scarcity_pilot.py)
max_norm = 10.0  # gradient-norm clipping (paper: none; a guard against the early divergence of sum losses under SGD)
val_fraction = 0.2  # share of the labelled training images used for model selection (paper: none stated)
progress = False  # show progress bars
"""

#: Notebook code (indented as the cells) defining ``base_config()``, ``test_images_of(base)`` and ``fmt_pct``.
BASE_CODE = """
     from crowdlib.models.backbones import require_weights

     require_weights(backbone, pretrained)
     hw = image_sizes[preset]


     def base_config(**over):
         \"\"\"The base config of the synthetic studies: every row is this plus its override (paradigm, init, fraction).\"\"\"
         data = {"kind": "synthetic", "presets": [preset], "n": n_train, "seed": data_seed, "height": hw[0], "width": hw[1]}
         pool = [{"kind": "synthetic", "presets": [preset], "n": n_pool, "seed": pool_seed, "height": hw[0], "width": hw[1]}]
         cfg = dict(data=data, pool=pool, backbone=backbone, pretrained=pretrained, freeze_bn=freeze_bn, input_size=crop,
                    test_side=int(round(crop * test_zoom)), crop_range=list(crop_range), batch_size=batch_size,
                    nests_per_batch=nests_per_batch, nest_k=nest_k, nest_scale=nest_scale, anchor_region=anchor_region,
                    lam=lam, margin=margin, steps=steps, rank_steps=max(1, int(round(rank_ratio * steps))),
                    alternate_every=max(1, steps // alternate_blocks), eval_every=eval_every, optimizer=optimizer,
                    lr=lr, max_norm=max_norm, val_fraction=val_fraction, load_side=max(hw))
         cfg.update(over)
         return l2r.make_config(**cfg)


     def test_images_of(base):
         \"\"\"Held-out synthetic test scenes (fresh seed), as labelled images; only ever scored.\"\"\"
         spec = {**base["data"], "n": n_test, "test_seed": test_seed}
         return l2r.load_labelled(l2r.load_records(spec, "test"), base["load_side"])
     """

IMPORTS = """
     from pathlib import Path

     import matplotlib.pyplot as plt
     import numpy as np
     import pandas as pd
     import torch

     from crowdlib import paths
     from crowdlib.device import apply_thread_limit
     from crowdlib.methods import l2r
     from crowdlib.methods.l2r import study as l2s
     from crowdlib.report import Reporter, results_table
     """

#: A learning-curve figure cell body (validation MAE against steps, mean over seeds), given ``runs`` and ``name``.
CURVE_CODE = """
     curves = l2s.learning_curves(runs)
     fig, ax = plt.subplots(figsize=(6.4, 3.8))
     for setting, grp in curves.dropna(subset=["val_mae"]).groupby("setting", sort=False):
         m = grp.groupby("step")["val_mae"].mean()
         ax.plot(m.index, m.values, marker=".", label=setting)
     ax.set_xlabel("optimizer step"); ax.set_ylabel("validation MAE (mean over seeds)")
     ax.set_title("validation learning curves (model selection; test images unseen)"); ax.legend(fontsize=7)
     fig.tight_layout()
     rep.figure(fig, name)
     """
