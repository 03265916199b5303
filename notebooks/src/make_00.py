"""Generate notebooks/00_environment.ipynb (run: .venv/bin/python notebooks/src/make_00.py)."""
from pathlib import Path
import sys

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from nbtools import write_notebook  # noqa: E402

cells = [
    ("md", """
     # 00 · Environment and data tour
     What this machine offers crowdlib: provenance (git SHA, package versions, torch/CUDA), the devices, the
     synthetic presets (always available) and the real datasets found under `shared/data` (optional)."""),
    ("parameters", """
     profile = "smoke"  # parameter profile name, written into the reports (smoke | default | paper)
     device = "auto"  # "auto" picks CUDA when available, else the CPU
     """),
    ("code", """
     import pandas as pd
     from crowdlib.device import pick_device, describe_devices
     from crowdlib.report import Reporter
     from crowdlib.data.catalog import dataset_catalog

     rep = Reporter("00_environment", profile=profile)
     dev = pick_device(None if device == "auto" else device)
     print("using device:", dev)
     rep.table(pd.DataFrame(describe_devices()), "devices")
     """),
    ("code", """
     prov = rep.provenance()
     pd.Series({k: v for k, v in prov.items() if k not in ("devices", "packages")}, name="value").to_frame()
     """),
    ("code", """
     pd.Series(prov["packages"], name="version").to_frame()
     """),
    ("md", """
     ## Datasets
     Synthetic presets are generated on the fly (deterministic in preset, seed and index). Real datasets are read
     from `shared/data` beside the project when present; notebooks that need them say so and end cleanly otherwise."""),
    ("code", """
     rep.table(dataset_catalog(), "datasets")
     """),
    ("code", """
     rep.provenance();
     """),
]
write_notebook(Path(__file__).resolve().parents[1] / "00_environment.ipynb", cells)
