"""Generate notebooks/91_iim_threshold.ipynb (run: .venv/bin/python notebooks/src/make_91.py)."""
from pathlib import Path
import sys

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from make_20 import PARAMS, base_config_code  # noqa: E402
from nbtools import write_notebook  # noqa: E402

cells = [
    ("md", """
     # 91 · IIM threshold explorer (interactive)
     Pick a test image, slide a **global threshold** over the confidence map or switch to the **learned PBM
     threshold map**, and watch the binary map, its 4-connected components (the heads), the count and the F1
     (NWPU protocol, sigma_l) update. The model is notebook 20's IIM (CP + PBM, L1 on CP and encoder) for the
     parameters below; with the committed smoke parameters it is a few-step model, so run notebook 20 with
     `params/default/20_iim_ablation.yaml` values (or paste them below) to explore a trained one: the trained
     model is fetched from the cache, not retrained."""),
    ("parameters", PARAMS),
    ("code", """
     import torch

     from crowdlib.device import apply_thread_limit, pick_device
     from crowdlib.methods import iim
     from crowdlib.widgets_iim import ThresholdExplorer

     apply_thread_limit()
     """ + base_config_code()),
    ("code", """
     cfg = iim.setting_config(base, iim.TABLE3_SETTINGS["CP+PBM (L1: CP&PBM) = IIM"][0], seeds[0], trunk_steps,
                              finetune_steps)
     model = iim.load_trained(cfg, iim.get_or_train_iim(cfg, progress=progress, records=train_records))
     maps = iim.predict_maps(model, test_records)
     explorer = ThresholdExplorer(test_records, maps, threshold=0.5)
     explorer.widget()
     """),
    ("md", """
     The cell below drives the same callbacks from code (what the sliders do): a global threshold of 0.3, then
     0.8, then the learned map."""),
    ("code", """
     for mode, t in (("global", 0.3), ("global", 0.8), ("learned", 0.8)):
         explorer.mode.value = mode
         explorer.threshold.value = t
         s = explorer.state
         print(f"{mode:7s} T={t:.2f}: {s['count']:4d} components (true {s['gt_count']}), F1 {s['f1']:.3f}, "
               f"precision {s['pre']:.3f}, recall {s['rec']:.3f}")
     """),
]

if __name__ == "__main__":
    write_notebook(Path(__file__).resolve().parents[1] / "91_iim_threshold.ipynb", cells)
