"""Generate notebooks/11_sdnet_ablation.ipynb (run: .venv/bin/python notebooks/src/make_11.py)."""
from pathlib import Path
import sys

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from nbtools import write_notebook  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sdnet_snippets import BASE_CONFIG, OTHER_CONFIGS  # noqa: E402

cells = [
    ("md", """
     # 11 · Crowd-SDNet ablation (Table III)
     Crowd-SDNet trains a CSP-style detector from head points only: LUDA gives every head an initial pseudo box
     size, a **crowdedness-aware loss** weights the size regression by `alpha = |R|^eta` (heads in crowded regions,
     whose LUDA sizes are reliable, count more), and a **confidence- and order-aware refinement** replaces a
     pseudo size by the detector's prediction whenever the posterior at the head's centre exceeds the stored
     confidence (Algorithm 1, prior 0.6). Table III of the paper switches the two modules on and off.

     Here the four settings are trained on `sha_like`, a synthetic stand-in for ShanghaiTech A calibrated to its
     counts and nearest-neighbour distances (notebook 10), trained on its own as the paper trains each dataset,
     and evaluated on held-out synthetic images with true head boxes: AP at IoU 0.3 and 0.5 on cumulative size
     subsets by true box height, easy (>= 0.04 H, about the largest 20% of heads), medium (>= 0.02 H, the largest
     60%), hard (all), counting MAE / NAE with the count threshold chosen on a validation split carved from the
     training images, and the median size error of the counted detections (`size error`, |log(predicted / true
     side)|; `size bias` its signed median), the quantity that separates AP@0.5 from AP@0.3.
     The "size init" rows put GAK / LUDA boxes on the test images' TRUE centres (no detector)."""),
    ("parameters", """
     profile = "smoke"  # parameter profile written into the reports (smoke | default | paper)
     seeds = [0]  # training seeds (paper: one run; default profile: 3 seeds)
     dataset = "sha_like"  # calibrated stand-in, trained alone (paper: SHA, SHB and WiderFace each on its own)
     n_train = 12  # training images, 15% carved out as validation (paper: 300 SHA train images)
     n_test = 4  # held-out test images (paper: 3,226 WiderFace validation images)
     image_size = 160  # image height in px, None: the preset's own (sha_like 640 x 960; SHA median 652 x 1024)
     crop = 128  # training crop side in px (paper: 704)
     epochs = 2  # training epochs (paper: 200k iterations on WiderFace)
     max_steps = 2  # cap on steps per epoch, None for full epochs (smoke only)
     batch_size = 8  # paper: 12
     lr = 0.002  # Adam peak learning rate, cosine schedule (paper: 7.5e-6 WiderFace, 7.5e-5 others, constant)
     width = 32  # decoder fusion channels (paper: 256)
     up_width = 8  # channels of the full-resolution decoder blocks (paper: 256)
     skips = {"c2": 16, "stem": 8}  # decoder skips from the stride-4 / stride-2 stages, channels (paper: none)
     beta = "fit"  # LUDA beta, or "fit": median true size / 2-NN distance on the training images (paper: SHA 1.0)
     region_divisor = 10  # LUDA circle radius is (y_max - y_min) over this (paper: 10 SHA, 8 SHB, 6 WiderFace)
     prior = 0.6  # initial confidence of every pseudo box (paper: 0.6)
     warmup_epochs = 0  # epochs before refinement starts (paper: 0)
     alpha_cap = 50.0  # cap of the crowdedness factor (paper: 50 on ShanghaiTech, none on WiderFace)
     eta = 1.0  # exponent of the crowdedness factor (paper: 1)
     size_norm = "alpha"  # size loss divided by the sum of alpha, or "objects": by the supervised pixels (Eq. 6)
     center_weight = 0.1  # lambda, weight of the centre loss (paper: 0.1)
     data_root = None  # a WIDER FACE folder (the paper's ablation data) instead of synthetic scenes; None: synthetic
     data_seed = 0  # synthetic training-set seed
     test_seed = 4000  # seed of the held-out synthetic test scenes (must differ from data_seed; pilots used 7000)
     variant_seeds = 1  # seeds of the extra row "both, size loss / #pixels (Eq. 6)" (0: skip it)
     other_sets = ["shb_like", "faces"]  # stand-ins with their own Table III, each trained alone (paper: SHB, WiderFace)
     n_test_other = {"shb_like": 4, "faces": 8}  # held-out test images of each of those sets (default: about equal pixels)
     other_test_seed = 4100  # seed of those sets' test scenes (fresh: a timing probe had scored seed 4000 scenes)
     progress = False  # show training progress bars
     """),
    ("code", """
     import pandas as pd
     import torch

     from crowdlib.device import apply_thread_limit
     from crowdlib.methods import sdnet
     from crowdlib.report import Reporter, results_table

     apply_thread_limit()
     rep = Reporter("11_sdnet_ablation", profile=profile, seeds=seeds)
""" + BASE_CONFIG + """     test_records = sdnet.eval_records_for(base, n_test, image_size, data_seed, test_seed)
     print("devices:", sdnet.describe_run_device(), "| threads:", torch.get_num_threads())
     """),
    ("md", """
     ## The detector: output stride and receptive field
     The decoder fuses C3-C5 (stride 8 and coarser) as the paper's, then upsamples to full resolution; the skip
     connections (`skips`) bring in C2 (stride 4) and the stem (stride 2), so that heads of 9-15 px, one or two C3
     cells wide, can be told apart. The gradient footprint of one output pixel (at initialisation) gives the
     effective receptive field."""),
    ("code", """
     from crowdlib.models.csp import effective_receptive_field

     for name, sk in (("this run", base["model"].get("skips")), ("without skips", None)):
         torch.manual_seed(0)
         m, _ = sdnet.build_detector(sdnet.merge_config(base, {"model": {"skips": sk}}))
         erf = effective_receptive_field(m, 256)
         print(f"{name}: output stride {m.stride} px, {sum(p.numel() for p in m.parameters()) / 1e6:.2f} M "
               f"parameters, receptive field >= {2 * erf['extent'] + 1:.0f} px (clipped by the 256 px probe), "
               f"50% / 90% of the gradient within {erf['radius50']:.0f} / {erf['radius90']:.0f} px")
     """),
    ("md", "## Train the four settings (cached: notebooks 10 and 12 reuse these runs)"),
    ("code", """
     runs, df = sdnet.run_settings(base, list(sdnet.ABLATION_SETTINGS), seeds, test_records, progress=progress)
     frames = [sdnet.size_init_metrics(test_records, base["pseudo"]), df]
     if variant_seeds:  # the literal Eq. 6 normalisation beside the authors'-code reading used by the table
         _, dfv = sdnet.run_settings(base, ["both"], seeds[:variant_seeds], test_records, progress=progress,
                                     extra={"model": {"loss": {"size_norm": "objects"}}},
                                     label="both, size loss / #pixels (Eq. 6)")
         frames.append(dfv)
     long = pd.concat(frames, ignore_index=True)
     timing = df[df.metric.isin(["train_seconds", "images_per_s"])].pivot_table(
         index="setting", columns="metric", values="value", aggfunc="mean", sort=False)
     rep.table(timing.round(1), "timing", caption="training time per run (s) and throughput (images/s)")
     losses = sdnet.final_losses(runs)
     rep.table(losses.round(3), "final_losses", caption="last-epoch training loss terms and refined share, mean over seeds")
     """),
    ("code", """
     table_metrics = ([f"AP@{t} {s}" for t in ("0.3", "0.5") for s in ("easy", "medium", "hard")]
                      + ["MAE", "NAE", "size error", "size bias"])
     rows = sdnet.rows_from_long(long, "III", sdnet.PAPER_TABLE3, table_metrics)
     table3 = results_table(rows)
     rep.table(table3, "table3", caption="Table III on synthetic scenes: ours (mean ± std over seeds) beside the "
               "paper's WiderFace numbers (AP in %, IoU 0.5; the paper reports no AP@0.3)")
     """),
    ("md", """
     ## Table III on the other stand-ins
     The same four settings on the ShanghaiTech B and WiderFace stand-ins, each trained on its own (its own Table I
     row, beta fitted on its own training images, the schedule and model above) and tested on its own held-out
     scenes (`n_test_other`, sized so that each set's test pixels are comparable). The paper's Table III is
     measured on WiderFace, so its numbers stand beside the `faces` rows."""),
    ("code", """
""" + OTHER_CONFIGS + """     other_rows, other_claims, summary = [], [], [long.assign(set=dataset)]
     for name, cfg_o in others.items():
         test_o = sdnet.eval_records_for(cfg_o, int(n_test_other.get(name, n_test)), None, data_seed,
                                         other_test_seed)
         _, df_o = sdnet.run_settings(cfg_o, list(sdnet.ABLATION_SETTINGS), seeds, test_o, progress=progress)
         long_o = pd.concat([sdnet.size_init_metrics(test_o, cfg_o["pseudo"]), df_o], ignore_index=True)
         table = f"III ({name})"
         other_rows += sdnet.rows_from_long(long_o, table, sdnet.PAPER_TABLE3 if name == "faces" else None,
                                            table_metrics)
         other_claims += sdnet.table3_claims(("AP@0.5 medium",), table=table, tag=name)
         summary.append(long_o.assign(set=name))
         print(f"{name}: {len(test_o)} test images, {sum(r.count for r in test_o)} heads; LUDA {cfg_o['pseudo']['params']}")
     rep.table(results_table(other_rows), "table3_other_sets",
               caption="Table III on the SHB and WiderFace stand-ins (AP in %); the paper's WiderFace numbers beside faces")
     """),
    ("code", """
     import matplotlib.pyplot as plt
     import numpy as np

     allsets = pd.concat(summary, ignore_index=True)
     settings = list(sdnet.ABLATION_SETTINGS)
     fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
     for ax, metric in zip(axes, ("AP@0.5 medium", "AP@0.3 medium")):
         sets = list(dict.fromkeys(allsets["set"]))
         for k, setting in enumerate(settings):
             g = allsets[(allsets.setting == setting) & (allsets.metric == metric)].groupby("set")["value"]
             mean, std = g.mean().reindex(sets), g.std().reindex(sets).fillna(0)
             ax.bar(np.arange(len(sets)) + (k - 1.5) * 0.2, mean, 0.2, yerr=std, capsize=2, label=setting)
         ax.set_xticks(range(len(sets)), sets)
         ax.set_ylabel(f"{metric} (%)")
         ax.set_title(f"Table III per stand-in: {metric} (mean ± std over seeds)")
     axes[0].legend(fontsize=8)
     fig.tight_layout()
     rep.figure(fig, "table3_per_set")
     """),
    ("md", """
     ## Did the paper's directions reproduce?
     Each claim compares two settings over seeds; the sentences below are generated from the numbers.
     Each claim gets a state from its per-seed values: *reproduced* when the gap in the paper's direction exceeds its standard error across seeds, *contradicted* when the opposite direction does, *inconclusive* otherwise (and always with a single seed, as in the smoke profile)."""),
    ("code", """
     claims_df = rep.results(rows + other_rows, sdnet.table3_claims() + other_claims)
     for s in sdnet.claim_sentences(claims_df):
         print(s)
     """),
    ("md", """
     **How to read this.** The paper's ordering on WiderFace is both > refinement only > loss only > neither.
     The sentences above state, for this run's profile and seeds, which of these directions hold on the SHA
     stand-in; a claim that did not reproduce is listed as such, and the seed spread (± std in the table) says how
     much a single run can be trusted. The same directions on the SHB and WiderFace stand-ins are claims of their
     own (`[shb_like]`, `[faces]`): a direction that holds on one dataset and not on another is a property of the
     data regime, not of the code. The smoke profile trains for a few steps only and its numbers carry no meaning
     beyond "the pipeline runs".

     **Where to look when a direction fails.** AP@0.3 asks for a detection near the head, AP@0.5 also for the
     right size: the `size error` and `size bias` rows (median |log| and signed log ratio of predicted to true box
     side of the counted detections) say whether a setting lost AP@0.5 through sizes, and MAE / AP@0.3 whether it
     lost the heads themselves. The training-loss table shows the centre term of each setting at the end of
     training: the crowdedness factor (up to 50) multiplies the size loss, and when the size term dominates the
     shared features the centre heatmap learns more slowly.

     **Normalisation of the crowdedness-aware size loss.** Eq. 6 divides the alpha-weighted sum by the number of
     objects; `../shared/REFERENCE.md` describes the authors' code as normalising by the number of *weighted* mask
     pixels, i.e. by the sum of alpha (`size_norm = "alpha"`). The default profile uses the latter; the extra row
     "both, size loss / #pixels (Eq. 6)" (`variant_seeds`) trains the literal form. Pilot runs on separately
     rendered scenes (seed 7000, never the test scenes) found the literal form collapsing both crowd-aware
     settings (AP@0.5 medium about 2%).

     **Test scenes.** The pilots that fixed the decoder skips, the normalisation and the schedule were scored on
     scenes of seed 7000; the table is scored on fresh scenes (`test_seed = 4000`) that no run was evaluated on
     before."""),
    ("code", """
     rep.provenance();
     """),
]
write_notebook(Path(__file__).resolve().parents[1] / "11_sdnet_ablation.ipynb", cells)
