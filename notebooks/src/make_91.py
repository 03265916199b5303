"""Generate notebooks/91_iim_threshold.ipynb (run: .venv/bin/python notebooks/src/make_91.py)."""
from pathlib import Path
import sys

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from make_20 import PARAMS  # noqa: E402
from nbtools import write_notebook  # noqa: E402

EXTRA = """model_source = "shipped"  # "shipped" (weights/, no training), "cache" (notebook 20's default run), "train"
n_images = 4  # held-out synthetic scenes in the explorer
explorer_test_seed = 3001  # their seed (notebook 20's default-profile test scenes)
"""
_head, _profile, _rest = PARAMS.split("\n", 2)  # notebook 20's parameters; ours go after its profile line
PARAMS_91 = "\n".join([_head, _profile, EXTRA + _rest])

cells = [
    ("md", """
     # 91 · IIM threshold explorer (interactive)
     Pick a held-out image, slide a **global threshold** over the confidence map or switch to the **learned PBM
     threshold map**, and watch the binary map, its 4-connected components (the heads), the count and the F1
     (NWPU protocol, sigma_l) update.

     It opens on a **trained model without training anything**: `weights/iim-synthetic-explorer.pt`, notebook
     20's default-profile IIM row (CP + PBM, L1 on CP and encoder; seed 0, tiny backbone, synthetic scenes) trained
     for 4x its steps (`crowdlib.recipes.IIM_EXPLORER_STEPS`), made by `python -m crowdlib train
     iim-synthetic-explorer` (see `weights/MODELS.md`). The global slider starts at the threshold with the lowest
     count error on validation images carved from the training scenes.
     `model_source = "cache"` takes notebook 20's own default-profile run from your cache instead (training it there
     if missing);
     `"train"` trains notebook 20's IIM row with the parameters below (smoke values: a few steps)."""),
    ("parameters", PARAMS_91),
    ("code", """
     from crowdlib.device import apply_thread_limit
     from crowdlib.methods import iim
     from crowdlib.widget_models import iim_explorer_inputs
     from crowdlib.widgets_iim import ThresholdExplorer

     apply_thread_limit()
     train_cfg = None
     if model_source == "train":
         base = iim.make_config(
             data={"kind": "synthetic", "presets": list(presets), "n": n_train, "seed": data_seed,
                   "height": image_size, "width": image_size},
             val_fraction=val_fraction, crop=crop, batch_size=batch_size, eval_every=eval_every, lr=lr,
             lr_encoder=lr_encoder, k=k, backbone=backbone, fpn_channels=fpn_channels, head_channels=head_channels,
             head_full_res=head_full_res, pbm_widths=list(pbm_widths), pbm_pool=pbm_pool)
         train_cfg = iim.setting_config(base, iim.TABLE3_SETTINGS["CP+PBM (L1: CP&PBM) = IIM"][0], seeds[0],
                                        trunk_steps, finetune_steps)
     inputs = iim_explorer_inputs(model_source, n_images=n_images, train_config=train_cfg,
                                  test_seed=explorer_test_seed)
     print(inputs["about"])
     print(f"global threshold chosen on validation: {inputs['threshold']:.2f}")
     """),
    ("code", """
     explorer = ThresholdExplorer(inputs["records"], inputs["maps"], threshold=inputs["threshold"])
     explorer.widget()
     """),
    ("md", """
     The cell below drives the same callbacks from code (what the sliders do): the validation threshold, 0.3 and
     0.8, then the learned map; it ends back on the validation threshold."""),
    ("code", """
     for mode, t in (("global", inputs["threshold"]), ("global", 0.3), ("global", 0.8), ("learned", 0.8)):
         explorer.mode.value = mode
         explorer.threshold.value = round(t, 2)
         s = explorer.state
         print(f"{mode:7s} T={t:.2f}: {s['count']:4d} components (true {s['gt_count']}), F1 {s['f1']:.3f}, "
               f"precision {s['pre']:.3f}, recall {s['rec']:.3f}")
     explorer.mode.value = "global"
     explorer.threshold.value = round(inputs["threshold"], 2)
     """),
]

if __name__ == "__main__":
    write_notebook(Path(__file__).resolve().parents[1] / "91_iim_threshold.ipynb", cells)
