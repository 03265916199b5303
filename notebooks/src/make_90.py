"""Generate notebooks/90_widgets.ipynb (run: .venv/bin/python notebooks/src/make_90.py)."""
from pathlib import Path
import sys

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from nbtools import write_notebook  # noqa: E402

cells = [
    ("md", """
     # 90 · Crowd-SDNet explorer (interactive)
     Pick a training image, replay how its pseudo boxes were refined epoch by epoch (boxes coloured by their stored
     confidence; epoch -1 is LUDA before training), switch between GAK, LUDA and refined boxes, and slide the score
     threshold to see the detector's boxes, count and counting error change. The committed parameters train a tiny
     run in seconds; use the values of notebook 11's default profile (which caches its runs) for a meaningful model."""),
    ("parameters", """
     profile = "smoke"  # parameter profile (this notebook is interactive; smoke trains a few steps)
     seed = 0  # training seed
     n_dense = 8  # crowd_a training images
     n_sparse = 8  # crowd_b training images
     image_size = 256  # synthetic image side in px
     crop = 128  # training crop side in px (paper: 704)
     epochs = 3  # training epochs (notebook 11 default profile: 18)
     max_steps = 2  # cap on steps per epoch, None for full epochs
     lr = 0.002  # Adam peak learning rate (paper: 7.5e-6 WiderFace)
     beta = 1.0  # LUDA beta (paper: 0.5 WiderFace, 1.0 SHA)
     """),
    ("code", """
     import matplotlib
     import torch

     from crowdlib.device import apply_thread_limit
     from crowdlib.methods import sdnet
     from crowdlib.widgets import PseudoBoxExplorer

     apply_thread_limit()
     base = sdnet.experiment_config(n_dense=n_dense, n_sparse=n_sparse, image_size=image_size, crop=crop,
                                    epochs=epochs, max_steps=max_steps, lr=lr, beta=beta)
     cfg = sdnet.setting_config(base, "both", seed)
     res = sdnet.run_config(cfg, progress=False)
     records = sdnet.train_records_of(cfg)
     store = sdnet.PseudoBoxStore.from_state_dict(res["store"])
     model = sdnet.load_detector(res, cfg)
     preds = sdnet.predict_sdnet(model, records)
     print(f"{len(records)} training images; count threshold chosen on validation: {res['count_threshold']:.2f}")
     """),
    ("code", """
     explorer = PseudoBoxExplorer(records, store, preds, cfg["pseudo"]["params"], threshold=res["count_threshold"])
     explorer.widget
     """),
    ("md", "Setting widget values from code drives the same callbacks (this is how the tests check them):"),
    ("code", """
     explorer.threshold.value = 0.2
     explorer.source.value = "LUDA"
     print(explorer.summary.value)
     """),
]
write_notebook(Path(__file__).resolve().parents[1] / "90_widgets.ipynb", cells)
