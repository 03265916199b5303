"""Generate notebooks/10_sdnet_pseudo_sizes.ipynb (run: .venv/bin/python notebooks/src/make_10.py)."""
from pathlib import Path
import sys

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from nbtools import write_notebook  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sdnet_snippets import BASE_CONFIG  # noqa: E402

cells = [
    ("md", """
     # 10 · Crowd-SDNet pseudo sizes (Table II, Fig. 1, Fig. 3)
     With point labels only, Crowd-SDNet needs a size for every head. **GAK** takes it from the distances to the
     nearest neighbours; **LUDA** (locally-uniform distribution assumption) averages those sizes over a local
     circle of radius `(y_max - y_min) / r`, whose head count `|R|` is the head's *crowdedness*. Training then
     **refines** the sizes (Algorithm 1). Table II measures all three against the true boxes of the training
     images: AP at IoU 0.3 / 0.5 / 0.7 (every pseudo box gets the same score, so AP is precision x recall of the
     single operating point) and the share of heads whose pseudo box overlaps its true box at that IoU.
     The refined sizes come from the "both modules" runs of notebook 11 (the paper's full method) and, as a second
     row, from its "refinement only" runs (same configurations, loaded from the cache when notebook 11 ran
     first)."""),
    ("parameters", """
     profile = "smoke"  # parameter profile written into the reports (smoke | default | paper)
     seeds = [0]  # training seeds of the refined runs (default profile: 3)
     n_dense = 8  # crowd_a training images (paper: 12,880 WiderFace training images)
     n_sparse = 8  # crowd_b training images
     image_size = 256  # synthetic image side in px
     crop = 128  # training crop side in px (paper: 704)
     epochs = 2  # training epochs (paper: 200k iterations)
     max_steps = 2  # cap on steps per epoch, None for full epochs (smoke only)
     batch_size = 8  # paper: 12
     lr = 0.002  # Adam peak learning rate, cosine schedule (paper: 7.5e-6 WiderFace, 7.5e-5 others, constant)
     width = 32  # decoder fusion channels (paper: 256)
     up_width = 8  # channels of the full-resolution decoder blocks (paper: 256)
     beta = 1.0  # LUDA beta (paper: 0.5 WiderFace, 1.0 SHA, 0.5 SHB)
     region_divisor = 8  # LUDA circle radius is (y_max - y_min) over this (paper: 6 WiderFace, 10 SHA, 8 SHB)
     prior = 0.6  # initial confidence of every pseudo box (paper: 0.6)
     warmup_epochs = 0  # epochs before refinement starts (paper: 0)
     alpha_cap = 50.0  # cap of the crowdedness factor (paper: 50 on ShanghaiTech)
     eta = 1.0  # exponent of the crowdedness factor (paper: 1)
     size_norm = "objects"  # size loss divided by the number of supervised pixels (paper) or by the sum of alpha
     center_weight = 0.1  # lambda, weight of the centre loss (paper: 0.1)
     data_root = None  # a WIDER FACE folder (the paper's ablation data) instead of synthetic scenes; None: synthetic
     data_seed = 0  # synthetic training-set seed
     progress = False  # show training progress bars
     """),
    ("code", """
     import matplotlib.pyplot as plt
     import numpy as np
     import pandas as pd
     import torch

     from crowdlib import viz
     from crowdlib.device import apply_thread_limit
     from crowdlib.methods import sdnet
     from crowdlib.report import Reporter, results_table

     apply_thread_limit()
     rep = Reporter("10_sdnet_pseudo_sizes", profile=profile, seeds=seeds)
""" + BASE_CONFIG + """     train_records = sdnet.train_records_of(base)
     print(len(train_records), "training images,", sum(r.count for r in train_records), "heads")
     """),
    ("md", "## Table II: pseudo boxes against the true boxes of the training images"),
    ("code", """
     trained = sdnet.train_settings(base, ["both", "refinement only"], seeds, progress=progress)
     refined = {label: {seed: sdnet.PseudoBoxStore.from_state_dict(trained[(setting, seed)]["store"]) for seed in seeds}
                for setting, label in (("both", "refined"), ("refinement only", "refined (refinement only)"))}
     stores = refined["refined"]
     long = sdnet.table2_quality(train_records, base["pseudo"], refined)
     rows = sdnet.rows_from_long(long, "II", sdnet.PAPER_TABLE2)
     rep.table(results_table(rows), "table2", caption="Table II on synthetic training images (%); paper: WiderFace. "
               "'refined' = final pseudo boxes of the 'both' runs of notebook 11 (the paper's full method), "
               "'refined (refinement only)' = those of its 'refinement only' runs")
     by_preset = sdnet.quality_by_preset(train_records, base["pseudo"], refined)
     rep.table(by_preset.round(1), "table2_by_preset",
               caption="share of heads (%) whose pseudo box has IoU >= 0.5 with its true box, dense vs sparse scenes")
     """),
    ("code", """
     from crowdlib.repro import Claim
     claims = [Claim("LUDA pseudo boxes beat GAK pseudo boxes (AP 0.5)", "AP(0.5)", "LUDA", "GAK", "II"),
               Claim("refined pseudo boxes beat LUDA pseudo boxes (AP 0.5)", "AP(0.5)", "refined", "LUDA", "II"),
               Claim("refined pseudo boxes beat LUDA pseudo boxes (AP 0.3)", "AP(0.3)", "refined", "LUDA", "II"),
               Claim("refinement-only pseudo boxes beat LUDA pseudo boxes (AP 0.5)", "AP(0.5)",
                     "refined (refinement only)", "LUDA", "II")]
     claims_df = rep.results(rows, claims)
     for s in sdnet.claim_sentences(claims_df):
         print(s)
     """),
    ("md", """
     ## Fig. 3: GAK vs LUDA on a crowded training image
     Left GAK, right LUDA with each box's crowdedness `|R|` (high crowdedness: LUDA's size is trustworthy).
     Green: the true boxes."""),
    ("code", """
     crowded = [i for i, r in enumerate(train_records) if r.image_id.startswith("crowd_a")] or list(range(len(train_records)))
     dense = min(crowded, key=lambda i: abs(train_records[i].count - 100))  # crowded, yet labels stay legible
     rec = train_records[dense]
     gak = sdnet.pseudo_boxes([rec], "gak", base["pseudo"]["params"])[0]
     luda_store = sdnet.PseudoBoxStore.from_records([rec], "luda", base["pseudo"]["params"])
     fig, axes = plt.subplots(1, 2, figsize=(11, 5.5))
     viz.show_image(axes[0], rec.image, f"GAK ({rec.count} heads)")
     viz.draw_boxes(axes[0], rec.boxes, color="lime", linewidth=0.5)
     viz.draw_boxes(axes[0], gak, color="red", linewidth=0.7)
     viz.show_image(axes[1], rec.image, "LUDA, labelled with crowdedness |R|")
     viz.draw_boxes(axes[1], rec.boxes, color="lime", linewidth=0.5)
     viz.draw_boxes(axes[1], luda_store.boxes(0), values=luda_store.crowdedness[0], cmap="autumn",
                    label_values=rec.count <= 200, fmt="{:.0f}", fontsize=4, linewidth=0.7)
     fig.tight_layout()
     rep.figure(fig, "fig3_gak_vs_luda")
     """),
    ("md", """
     ## Fig. 1: pseudo boxes before and after training
     A sparse training image: LUDA boxes before training (red, labelled with crowdedness) and the refined boxes
     after training (blue, labelled with the stored posterior), seed `seeds[0]`."""),
    ("code", """
     store = stores[seeds[0]]
     sparse = [i for i, r in enumerate(train_records) if r.image_id.startswith("crowd_b") and 4 <= r.count <= 40]
     pick = max(sparse or range(len(train_records)), key=lambda i: int((store.n_updates[i] > 0).sum()))
     rec = train_records[pick]
     fig, axes = plt.subplots(1, 2, figsize=(11, 5.5))
     viz.show_image(axes[0], rec.image, "(a) before training: LUDA")
     viz.draw_boxes(axes[0], store.boxes(pick, "init"), values=store.crowdedness[pick], cmap="autumn",
                    label_values=True, fmt="{:.0f}", fontsize=6)
     viz.show_image(axes[1], rec.image, "(b) after training: refined")
     viz.draw_boxes(axes[1], store.boxes(pick), values=store.confidence[pick], cmap="winter", vmin=0.6, vmax=1.0,
                    label_values=True, fmt="{:.2f}", fontsize=6)
     for ax in axes:
         viz.draw_points(ax, rec.points, color="lime", size=6)
     fig.tight_layout()
     rep.figure(fig, "fig1_before_after")
     """),
    ("md", """
     **Reading.** The claims above are computed from the table. LUDA's local averaging helps most where heads are
     packed (see the dense vs sparse table); refinement matters where LUDA is wrong, i.e. in sparse scenes with
     few neighbours, which is the paper's argument for Fig. 1."""),
    ("code", """
     rep.provenance();
     """),
]
write_notebook(Path(__file__).resolve().parents[1] / "10_sdnet_pseudo_sizes.ipynb", cells)
