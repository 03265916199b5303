"""Code shared by the SSR-HEF notebook generators (make_30..32): the parameters that decide a run's config and the
code that builds it, so that notebooks 30, 31 and 32 build identical configs and share the cached runs."""

#: Parameters of notebooks 30-32 that enter a run's config (their defaults are the smoke profile's values).
RUN_PARAMS = """
seeds = [0]  # training seeds (paper: one run; default profile: 3 seeds)
n_train = 8  # synthetic training images per set, val_fraction of them carved out for validation (paper: SHA 300, SHB 400; default profile: 48, 12 of them for validation)
n_test = 3  # held-out synthetic test scenes per set (paper: SHA 182, SHB 316 test images; default profile: 40)
image_sizes = {"sha_like": [96, 144], "shb_like": [96, 128]}  # synthetic scenes' height, width in px; a set not named here is rendered at its preset's calibrated size, 640 x 960 (sha_like) / 768 x 1024 (shb_like) as the paper's datasets (paper profile: those; default profile: {}, i.e. calibrated, and windowed)
window = [64, 96]  # [height, width] of the window kept of each synthetic scene (the most crowded of 4 random ones), for training and test; heads keep the scene's size in px and the crowd its people per output cell; None: whole scenes (paper: whole images of the real datasets; default profile: 224 x 320 of calibrated scenes for the CPU budget)
cells_root = None  # folder of the VGG cells (NNNcell.png / NNNdots.png); None: shared/data/cells/vgg_cells
cells_train = 8  # VGG cells training images, the first of the 200 (the paper has no cells; 100 for the usual split)
cells_test = 3  # VGG cells test images, from the last 100 (all 100 for the usual split)
data_seed = 1  # synthetic training-set seed
test_seed = 5001  # seed of the held-out synthetic test scenes (fresh: no other notebook uses it; default profile: 5501, drawn anew after the learning-rate pilot, as 5401 had been scored)
width = 0.25  # network width multiplier (paper: 1.0, the 2.04M-parameter model; default profile: 0.5, 0.58M, for the CPU budget)
steps = 6  # optimizer steps per run, batch 1 (paper: until convergence; default profile: 1000, sized by a timing probe: about 40 s a run at one thread)
eval_every = 3  # validation (model selection) every this many steps
lr = 0.001  # Adam learning rate (the peak of a cosine schedule) (paper: 3e-5 for a far longer run; default profile: 2.5e-4, chosen on validation among 1e-4, 2.5e-4 and 1e-3, notebook 30)
schedule = "constant"  # learning-rate schedule: "constant", or "cosine" (linear warm-up over warmup_steps, then cosine decay to 0) (paper: none named, i.e. constant; default profile: constant, chosen on a validation pilot, notebook 30)
warmup_steps = 0  # linear warm-up steps of the cosine schedule (paper: none)
max_norm = 10.0  # clip the gradient norm at this value, 0: no clipping (paper: none, i.e. 0; default profile: 10, a guard against divergence that left the validation pilot's curves unchanged, notebook 30)
patch_counts = [9, 4, 1]  # patches per image and epoch of 1/16, 1/4 and all of its area (paper: 9, 4, 1)
val_fraction = 0.25  # share of the training images used for model selection (paper: none stated; default profile: 0.25)
hef_form = "text"  # HEF factor (1 - sigmoid(D))^gamma as the text defines it; "printed": sigmoid(D)^gamma as Eq. 4 prints it
gamma = 2.0  # HEF focusing exponent (paper: 2)
density_scale = 1.0  # targets times this in the loss; the factor sees the scaled 1/8-grid density (paper: none, i.e. 1)
progress = False  # show progress bars
"""

#: Notebook code (indented as the cells) defining ``cells_path``, ``base_for(name)`` and ``tests_for(name, base)``.
BASE_CODE = """
     cells_path = Path(cells_root) if cells_root is not None else (
         paths.default_data_root("cells") / "vgg_cells" if paths.default_data_root("cells") is not None else None)


     def base_for(name):
         \"\"\"The base config of one set: every Table VII / VIII row of it is this plus the row's override.\"\"\"
         hw = image_sizes.get(name, [None, None])
         cells = name == "vgg_cells"
         data = ssrhef.set_data(name, n_train=cells_train if cells else n_train, data_seed=data_seed, height=hw[0],
                                width=hw[1], root=cells_path if cells else None, window=None if cells else window)
         return ssrhef.make_config(data=data, width=width, steps=steps, eval_every=eval_every, lr=lr,
                                   schedule=schedule, warmup_steps=warmup_steps, max_norm=max_norm,
                                   patch_counts=list(patch_counts), val_fraction=val_fraction, hef_form=hef_form,
                                   gamma=gamma, density_scale=density_scale)


     def tests_for(name, base):
         \"\"\"Held-out test records of a set: fresh synthetic scenes of test_seed (windowed as the training
         scenes), or the cells' test images.\"\"\"
         n = cells_test if name == "vgg_cells" else n_test
         return ssrhef.load_records(ssrhef.test_data(base["data"], n, test_seed), "test")
     """

IMPORTS = """
     from pathlib import Path

     import matplotlib.pyplot as plt
     import numpy as np
     import pandas as pd
     import torch

     from crowdlib import paths
     from crowdlib.device import apply_thread_limit
     from crowdlib.methods import ssrhef
     from crowdlib.report import Reporter, results_table
     """
