"""Generate notebooks/40_l2r_ranking.ipynb (run: .venv/bin/python notebooks/src/make_40.py)."""
from pathlib import Path
import sys

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from nbtools import write_notebook  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _l2r_snippets import BASE_CODE, IMPORTS, RUN_PARAMS  # noqa: E402

PARAMS = """
profile = "smoke"  # parameter profile written into the reports (smoke | default | paper)
nests_per_test_image = 2  # held-out nests drawn on each test scene to score the ranking (paper: none; a measurement of ours)
nest_eval_seed = 7  # seed of the held-out nests' anchors
""" + RUN_PARAMS

cells = [
    ("md", """
     # 40 · L2R's self-supervised task: ranking nested crops of unlabeled images
     L2R's premise (Liu et al., CVPR 2018; our copy: a review): *"it is guaranteed that box I_1 has equal or more
     people than I_2 and I_3"* when each lies inside the previous one, so nests of crops of unlabeled images give
     free ranking constraints. The network's density map is average-pooled over its units, `c_hat(I)`, and every
     ordered pair of a nest is pushed to `c_hat(outer) >= c_hat(inner) + eps` by a hinge.

     This notebook shows the nest builder on an image, trains a **ranking-only** model (no counting loss, no label
     of any kind) and measures on held-out nests of fresh test scenes (their labels only score) the share of
     correctly ordered pairs against chance (0.5), beside a counting-only model. The review's caveat: ranking is
     "poorly-defined", the network "could decide to count anything, e.g. 'hats', 'trees', or 'people'". The last
     section measures how far the ranking-only map's total follows the true count of whole images."""),
    ("parameters", PARAMS),
    ("code", IMPORTS + """
     apply_thread_limit()
     rep = Reporter("40_l2r_ranking", profile=profile, seeds=seeds)
""" + BASE_CODE + """
     base = base_config()
     test_images = test_images_of(base)
     print(f"{backbone}, nests of {nest_k + 1} crops (scale {nest_scale:g}), {crop}-px inputs; {n_pool} unlabeled "
           f"scenes; {len(test_images)} held-out test scenes; {torch.get_num_threads()} thread(s)")
     """),
    ("md", "## The nest builder on a scene"),
    ("code", """
     from crowdlib.data.datasets import denormalize

     ex = test_images[0]
     rng = np.random.default_rng(0)
     crops, boxes = l2r.sample_nests([ex], [0], {**base, "flip_p": 0.0}, rng)
     counts = l2r.crop_counts(ex.points, boxes[0])
     fig, axes = plt.subplots(1, nest_k + 2, figsize=(2.3 * (nest_k + 2), 2.6))
     axes[0].imshow(ex.image.permute(1, 2, 0).numpy())
     for k, (b, c) in enumerate(zip(boxes[0], counts)):
         axes[0].add_patch(plt.Rectangle(b[:2], b[2] - b[0], b[3] - b[1], fill=False, lw=1.2,
                                         color=plt.cm.viridis(k / max(nest_k, 1))))
     axes[0].plot(ex.points[:, 0], ex.points[:, 1], "r.", ms=1)
     axes[0].set_title("scene, nest (points: scoring only)", fontsize=7)
     for k in range(nest_k + 1):
         axes[k + 1].imshow(denormalize(crops[k]).permute(1, 2, 0).numpy())
         axes[k + 1].set_title(f"crop {k}: {counts[k]} people", fontsize=7)
     for a in axes:
         a.axis("off")
     fig.tight_layout()
     rep.figure(fig, "nest")
     print("true counts of the nest, outer to inner:", counts.tolist())
     """),
    ("md", "## Train a ranking-only model and a counting-only reference (cached; the latter is notebook 41's row)"),
    ("code", """
     settings = {"ranking only": {"paradigm": "rank"}, "counting only": {"paradigm": "count"}}
     long, runs = l2s.run_settings(settings, base, seeds, test_images, progress=progress, title="L2R ranking only")
     recs = []
     for (setting, seed), run in runs.items():
         model = l2r.load_trained(run["config"], {"model": l2r.get_or_train_l2r(run["config"], progress=False)["model"]})
         rk = l2r.nest_ranking(model, test_images, run["config"], nests_per_image=nests_per_test_image,
                               seed=nest_eval_seed)
         pred, gt = np.array(run["eval"]["pred"]), np.array(run["eval"]["gt"])
         from scipy.stats import pearsonr, spearmanr
         recs += [{"setting": setting, "seed": seed, "metric": "rank accuracy", "value": rk["accuracy"]},
                  {"setting": setting, "seed": seed, "metric": "strict rank accuracy", "value": rk["strict_accuracy"]},
                  {"setting": setting, "seed": seed, "metric": "Pearson r (image count)",
                   "value": float(pearsonr(pred, gt)[0]) if pred.std() > 0 else float("nan")},
                  {"setting": setting, "seed": seed, "metric": "Spearman rho (image count)",
                   "value": float(spearmanr(pred, gt)[0]) if pred.std() > 0 else float("nan")}]
         run["ranking"] = rk
     rank_long = pd.DataFrame(recs)
     chance = pd.DataFrame([{"setting": "chance", "seed": -1, "metric": m, "value": 0.5}
                            for m in ("rank accuracy", "strict rank accuracy")])
     rank_metrics = ["rank accuracy", "strict rank accuracy", "Pearson r (image count)", "Spearman rho (image count)"]
     rows = l2s.rows_from_long(pd.concat([rank_long, chance]), "40", None, rank_metrics,
                               higher_is_better=lambda m: True)
     table = results_table(rows, digits=3)
     n_strict = next(iter(runs.values()))["ranking"]["n_strict"]
     n_pairs = next(iter(runs.values()))["ranking"]["n_pairs"]
     rep.table(table, "ranking", caption=f"held-out nests of the test scenes ({n_pairs} pairs; {n_strict} with differing "
               "true counts, 'strict'): share of pairs ordered outer > inner (ties count half), and the correlation "
               "of each model's whole-image total with the true count; mean ± std over seeds")
     table
     """),
    ("code", """
     fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.8))
     for setting, col in (("ranking only", "tab:orange"), ("counting only", "tab:blue")):
         run = runs[(setting, seeds[0])]
         rk = run["ranking"]
         axes[0].scatter(rk["true_count"], rk["c_hat"] * (crop // 16) ** 2, s=6, color=col, label=setting)
         axes[1].scatter(run["eval"]["gt"], run["eval"]["pred"], s=10, color=col, label=setting)
     axes[0].set_xlabel("true people in the nest crop"); axes[0].set_ylabel("predicted map total of the crop")
     axes[0].set_title(f"held-out nest crops (seed {seeds[0]})", fontsize=9)
     axes[1].set_xlabel("true count (whole test scene)"); axes[1].set_ylabel("predicted count")
     axes[1].set_title("whole test scenes: ranking alone is uncalibrated", fontsize=9)
     for a in axes:
         a.legend(fontsize=7)
     fig.tight_layout()
     rep.figure(fig, "ranking_vs_count")
     """),
    ("code", """
     ex_maps = {s: l2r.predict_density(l2r.load_trained(runs[(s, seeds[0])]["config"],
                                                        l2r.get_or_train_l2r(runs[(s, seeds[0])]["config"], progress=False)),
                                       [ex], test_side=base["test_side"])[0][0] for s in settings}
     fig, axes = plt.subplots(1, 3, figsize=(10, 3))
     axes[0].imshow(ex.image.permute(1, 2, 0).numpy()); axes[0].set_title(f"scene ({ex.count} people)", fontsize=8)
     for a, (s, m) in zip(axes[1:], ex_maps.items()):
         im = a.imshow(m, cmap="magma"); a.set_title(f"{s}: map total {m.sum():.1f}", fontsize=8)
         plt.colorbar(im, ax=a, fraction=0.046)
     for a in axes:
         a.axis("off")
     fig.tight_layout()
     rep.figure(fig, "maps")
     """),
    ("md", """
     ## Does the ranking premise hold, and what does ranking alone learn?
     The one claim here is the paper's premise: a model trained only to rank nests orders held-out nest pairs
     better than chance. The correlation rows answer the review's caveat by measurement: a high correlation of
     the ranking-only total with the true count means that in this domain ranking picked up people (the synthetic
     scenes hold few other things whose number grows with the crop); a low one that it learned something else
     that also shrinks with the crop (texture area, edges)."""),
    ("code", """
     from crowdlib.repro import Claim

     claims = [Claim("a ranking-only model orders held-out nest pairs better than chance (rank accuracy; the "
                     "paper's premise: \\"it is guaranteed that box I_1 has equal or more people than I_2 and I_3\\")",
                     "rank accuracy", "ranking only", "chance", "40")]
     claims_df = rep.results(rows, claims)
     for s in l2s.claim_sentences(claims_df, digits=3):
         print(s)
     claims_df[["claim", "better (ours)", "worse (ours)", "gap", "gap se", "state"]]
     """),
    ("md", """
     **How to read this.** Rank accuracy counts every pair of a nest (the constraint the loss trains); the
     strict one only pairs whose true counts differ, where a correct order is informative. Ranking only keeps its
     last state (no count selection: its map has no scale). The counting-only reference is trained with labels
     and is the same run as notebook 41's "counting only, ImageNet" row. The smoke profile trains a few steps: its
     numbers mean only that the pipeline runs."""),
    ("code", """
     rep.provenance();
     """),
]

if __name__ == "__main__":
    write_notebook(Path(__file__).resolve().parents[1] / "40_l2r_ranking.ipynb", cells)
