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
     threshold of the trained detector's boxes: the count and its error against the annotated heads follow.

     It opens on a **trained model without training anything**: `weights/sdnet-synthetic-explorer.pt`, notebook
     11's default-profile run with both modules (seed 0, tiny backbone, synthetic `sha_like` scenes), made by
     `python -m crowdlib train sdnet-synthetic-explorer` (see `weights/MODELS.md`), with the pseudo-box store and
     refinement history of its first training images. `model_source = "cache"` takes that run from your own
     cache instead (training it there if missing, a few minutes); `"train"` trains a small run from the parameters
     below."""),
    ("parameters", """
     profile = "smoke"  # parameter profile (this notebook is interactive; it opens on the shipped model)
     model_source = "shipped"  # "shipped" (weights/, no training), "cache" (notebook 11's default run), "train"
     n_images = 6  # training images in the explorer (the shipped store holds 6)
     seed = 0  # training seed (model_source "train" only, as the parameters below)
     n_dense = 8  # crowd_a training images
     n_sparse = 8  # crowd_b training images
     image_size = 256  # synthetic image side in px
     crop = 128  # training crop side in px (paper: 704)
     epochs = 3  # training epochs (notebook 11 default profile: 40)
     max_steps = 2  # cap on steps per epoch, None for full epochs
     lr = 0.002  # Adam peak learning rate (paper: 7.5e-6 WiderFace)
     beta = 1.0  # LUDA beta (paper: 0.5 WiderFace, 1.0 SHA)
     """),
    ("code", """
     from crowdlib.device import apply_thread_limit
     from crowdlib.methods import sdnet
     from crowdlib.widget_models import sdnet_explorer_inputs
     from crowdlib.widgets import PseudoBoxExplorer

     apply_thread_limit()
     train_cfg = None
     if model_source == "train":
         base = sdnet.experiment_config(n_dense=n_dense, n_sparse=n_sparse, image_size=image_size, crop=crop,
                                        epochs=epochs, max_steps=max_steps, lr=lr, beta=beta)
         train_cfg = sdnet.setting_config(base, "both", seed)
     inputs = sdnet_explorer_inputs(model_source, n_images=n_images, train_config=train_cfg)
     print(inputs["about"])
     print(f"{len(inputs['records'])} training images; count threshold chosen on validation: {inputs['threshold']:.2f}")
     """),
    ("code", """
     explorer = PseudoBoxExplorer(inputs["records"], inputs["store"], inputs["predictions"], inputs["pseudo_params"],
                                  threshold=inputs["threshold"])
     explorer.widget
     """),
    ("md", "Setting widget values from code drives the same callbacks (this is how the tests check them):"),
    ("code", """
     for t in (inputs["threshold"], 0.2, 0.6):
         explorer.threshold.value = round(t, 2)
         print(explorer.summary.value)
     explorer.source.value = "LUDA"
     explorer.threshold.value = round(inputs["threshold"], 2)
     """),
]
write_notebook(Path(__file__).resolve().parents[1] / "90_widgets.ipynb", cells)
