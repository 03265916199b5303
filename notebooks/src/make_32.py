"""Generate notebooks/32_ssr_hef_maps.ipynb (run: .venv/bin/python notebooks/src/make_32.py)."""
from pathlib import Path
import sys

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from nbtools import write_notebook  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _ssrhef_snippets import BASE_CODE, IMPORTS, RUN_PARAMS  # noqa: E402

PARAMS = """
profile = "smoke"  # parameter profile written into the reports (smoke | default | paper)
dataset = "sha_like"  # the set of Figs. 7-9 (paper: ShanghaiTech Part_A; sha_like is its stand-in)
factor_sets = ["sha_like", "shb_like"]  # sets whose full models' HEF factor distribution is plotted
n_show = 3  # test images drawn in Figs. 7 and 9 (paper: 3 and 4)
reference_scales = [0.01, 1.0, 100.0]  # density scales of the ground-truth factor reference (no training)
""" + RUN_PARAMS

cells = [
    ("md", """
     # 32 · SSR-HEF maps: segmentation at three depths (Fig. 7), counts and densities with and without HEF (Figs. 8, 9), the HEF factor
     Fig. 7 of the paper shows the segmentation maps SM1-SM3 (1/2, 1/4, 1/8) of Part_A test images: shallow maps
     pick out small heads, deep ones large heads. Fig. 8 plots each Part_A test image's count with HEF, without
     HEF and the truth; Fig. 9 the density maps. Here the models are notebook 30's `sha_like` runs (the same
     configs, so the cache serves them): the full model and the "without HEF" row, trained and drawn on windows
     of calibrated scenes in the default profile (notebook 30 says why). The last section plots the
     distribution of the HEF factor over the output pixels of the trained full models, on validation images,
     at the configured `density_scale`."""),
    ("parameters", PARAMS),
    ("code", IMPORTS + """
     from crowdlib.targets.density import density_map

     apply_thread_limit()
     rep = Reporter("32_ssr_hef_maps", profile=profile, seeds=seeds)
""" + BASE_CODE + """
     pair = {k: ssrhef.TABLE7_SETTINGS[k] for k in (ssrhef.FULL, "without HEF")}
     base = base_for(dataset)
     test_records = tests_for(dataset, base)
     long, runs = ssrhef.run_settings(pair, base, seeds, test_records, progress=progress, keep_maps=True,
                                      title=f"SSR-HEF maps {dataset}")
     s0 = seeds[0]
     full_cfg, full_res = runs[(ssrhef.FULL, s0)]["config"], runs[(ssrhef.FULL, s0)]["result"]
     print(f"{dataset}: {len(test_records)} test images; HEF form {hef_form!r}, gamma {gamma:g}, density_scale "
           f"{density_scale:g}; first seed {s0}")
     """),
    ("md", "## Fig. 7: segmentation maps at three depths (full model, first seed)"),
    ("code", """
     model = ssrhef.load_trained(full_cfg, ssrhef.get_or_train_ssrhef(full_cfg, progress=progress))
     show = test_records[:n_show]
     segs = ssrhef.segmentation_maps(model, show)
     fig, axes = plt.subplots(len(show), 4, figsize=(13, 2.6 * len(show)), squeeze=False)
     for i, (rec, sm) in enumerate(zip(show, segs)):
         axes[i, 0].imshow(rec.load_image()); axes[i, 0].set_title(f"{rec.image_id}: {rec.count} heads", fontsize=8)
         for j, m in enumerate(sm):
             axes[i, j + 1].imshow(m, vmin=0, vmax=1, cmap="magma"); axes[i, j + 1].set_title(f"SM{j + 1} (1/{2 ** (j + 1)})")
         for a in axes[i]:
             a.axis("off")
     fig.tight_layout()
     rep.figure(fig, "fig7_segmentation_maps")
     """),
    ("md", "## Fig. 8: per-image counts with and without HEF against the truth (test images, first seed)"),
    ("code", """
     counts = ssrhef.per_image_counts(runs, list(pair), s0, test_records)
     rep.table(counts.round(1).set_index("image"), "fig8_counts", caption="test images sorted by true count: truth "
               "and the predicted counts with and without HEF (first seed)")
     fig, ax = plt.subplots(figsize=(7, 3.6))
     x = np.arange(len(counts))
     ax.plot(x, counts["truth"], "^", color="red", label="truth")
     ax.plot(x, counts[ssrhef.FULL], "o", mfc="none", color="blue", label="with HEF (SSR-HEF)")
     ax.plot(x, counts["without HEF"], "p", mfc="none", color="green", label="without HEF (L2)")
     ax.set_xlabel("test image (sorted by true count)"); ax.set_ylabel("count"); ax.legend(fontsize=8)
     rep.figure(fig, "fig8_counts")
     err = {s: float(np.mean(np.abs(counts[s] - counts["truth"]))) for s in pair}
     closer = float(np.mean(np.abs(counts[ssrhef.FULL] - counts.truth) < np.abs(counts["without HEF"] - counts.truth)))
     print(f"MAE with HEF {err[ssrhef.FULL]:.2f}, without {err['without HEF']:.2f}; the HEF count is closer to the "
           f"truth on {100 * closer:.0f}% of the test images (first seed)")
     """),
    ("md", "## Fig. 9: density maps with and without HEF (first seed)"),
    ("code", """
     fig, axes = plt.subplots(4, len(show), figsize=(3.6 * len(show), 10), squeeze=False)
     for j, rec in enumerate(show):
         img = rec.load_image()
         gt = density_map(np.asarray(rec.points, np.float64).reshape(-1, 2), img.shape[:2], sigma=full_cfg["density_sigma"])
         axes[0, j].imshow(img); axes[0, j].set_title(rec.image_id, fontsize=8)
         axes[1, j].imshow(gt, cmap="jet"); axes[1, j].set_title(f"ground truth, GT {rec.count}", fontsize=8)
         for row, s in ((2, "without HEF"), (3, ssrhef.FULL)):
             m = runs[(s, s0)]["maps"][j]
             axes[row, j].imshow(np.clip(m, 0, None), cmap="jet")
             axes[row, j].set_title(f"{'without HEF' if row == 2 else 'with HEF'}, ET {m.sum():.1f}", fontsize=8)
         for a in axes[:, j]:
             a.axis("off")
     fig.tight_layout()
     rep.figure(fig, "fig9_density_maps")
     """),
    ("md", """
     ## The HEF factor over pixels of the trained full models
     The factor `(1 - sigmoid(D))^gamma` (or the printed form, as configured) of the trained full model's raw
     output `D` (loss units: the 1/8-grid density times `density_scale`) at every output pixel of the validation
     images (carved from the training images), split into cells with a ground-truth density (head cells) and
     empty ones. The reference rows show the factor a perfect prediction would get at other density scales
     (ground truth only, no training): at a tiny scale it is constant (0.25, plain L2), at a large one it is
     near 0 on every head cell."""),
    ("code", """
     values, masks, hist = {}, {}, {}
     for name in factor_sets:
         if name == "vgg_cells" and (cells_path is None or not Path(cells_path).is_dir()):
             print(f"{name}: skipped, the VGG cells folder is absent ({cells_path})")
             continue
         b = base_for(name)
         cfg = ssrhef.setting_config(b, ssrhef.TABLE7_SETTINGS[ssrhef.FULL], s0)
         res = ssrhef.get_or_train_ssrhef(cfg, progress=progress)
         _, val_records = ssrhef.split_records(ssrhef.load_records(cfg["data"], "train"), cfg)
         fv = ssrhef.model_factor_values(ssrhef.load_trained(cfg, res), val_records, cfg)
         label = f"{name}, trained model (density_scale {density_scale:g})"
         values[label], masks[label], hist[label] = fv["factor"], fv["target"] > 1e-3, fv["factor"]
         for sc, f in ssrhef.gt_factor_values(val_records, cfg, reference_scales).items():
             lab = f"{name}, ground truth x {sc:g} (reference)"
             values[lab], masks[lab] = f, fv["target"] > 1e-3
     summ = ssrhef.factor_summary(values, masks)
     rep.table(summ.round(4), "hef_factor_distribution", caption="HEF factor over output pixels of validation images: "
               "quantiles, spread, mean on head cells and on empty cells")
     fig, ax = plt.subplots(figsize=(7, 3.6))
     for lab, v in hist.items():
         ax.hist(v, bins=60, range=(0, 1), histtype="step", density=True, label=lab)
     for lab, v in values.items():
         if "reference" in lab and lab.startswith(factor_sets[0]):
             ax.hist(v, bins=60, range=(0, 1), histtype="step", density=True, ls=":", label=lab)
     ax.set_xlabel("HEF factor"); ax.set_ylabel("density of pixels"); ax.set_yscale("log"); ax.legend(fontsize=6)
     rep.figure(fig, "hef_factor_distribution")
     summ.round(3)
     """),
    ("code", """
     rows = ssrhef.rows_from_long(long, f"VII ({dataset})", ssrhef.PAPER_TABLE7["Part_A"], list(ssrhef.METRICS))
     rep.results(rows, [])
     rep.table(results_table(rows, digits=2), "rows", caption="the two rows drawn here (as notebook 30's table)")
     """),
    ("md", """
     **How to read this.** All maps come from runs trained with the text form of the HEF factor on the unscaled
     1/8-grid density (`density_scale` above; notebook 30 says why): the factor table shows how much that setting
     actually reweights, i.e. the spread between its 1% and 99% quantiles and between head and empty cells. A
     spread near 1 means HEF acted as a rescaled L2, and a Table VII gap between "without HEF" and the full model
     is then not the effect of focusing. The segmentation maps show what each depth learned with the Dice term
     (no ground truth is drawn: the labels are the 15 x 15 head templates); Fig. 8 and 9 compare the two rows of
     the first seed and are illustrations, the claims are notebook 30's."""),
    ("code", """
     rep.provenance();
     """),
]

if __name__ == "__main__":
    write_notebook(Path(__file__).resolve().parents[1] / "32_ssr_hef_maps.ipynb", cells)
