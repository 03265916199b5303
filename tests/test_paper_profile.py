"""Parameter profiles cannot rot: every params/<profile>/*.yaml names its notebook's parameters with values of
their types, and the paper profile of each training notebook runs its first training steps here on the CPU (the
paper's architecture, widths, learning rates and optimizer groups; the smoke profile's data sizes and steps;
no pretrained weights, which this machine lacks)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from crowdlib.recipes import parameters_cell

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
PROFILES = sorted(p for p in (ROOT / "params").iterdir() if p.is_dir())

#: parameters that size the data and the schedule: the paper run takes the notebook's (smoke) defaults for these
SIZE_KEYS = {"seeds", "n_train", "n_test", "n_images", "timing_images", "n_negative", "image_size", "crop",
             "input_scale", "image_scale", "batch_size", "epochs", "max_steps", "steps", "trunk_steps",
             "finetune_steps", "eval_every", "val_every", "pbm_pool", "n_dense", "n_sparse", "reg_steps", "phi_steps",
             "det_epochs", "det_max_steps", "cycles", "max_cycles", "cycle_steps", "patch", "phi_crop"}


def _same_kind(default: object, value: object, comment: str) -> bool:
    if value is None:
        return default is None or "None" in comment  # None only where the notebook says what it means
    if default is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return type(default) is type(value)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    return isinstance(value, type(default))


PARAM_FILES = [(prof.name, y) for prof in PROFILES for y in sorted(prof.glob("*.yaml"))]


@pytest.mark.parametrize("profile,path", PARAM_FILES, ids=[f"{p}/{y.stem}" for p, y in PARAM_FILES])
def test_profile_names_only_the_notebooks_parameters_with_their_types(profile: str, path: Path) -> None:
    nb = NOTEBOOKS / f"{path.stem}.ipynb"
    assert nb.is_file(), f"{path} has no notebook {nb.name}"
    params = parameters_cell(nb)
    values = yaml.safe_load(path.read_text()) or {}
    assert values.get("profile") == profile, f"{path}: 'profile' must be {profile!r}, got {values.get('profile')!r}"
    for name, value in values.items():
        assert name in params, f"{path}: {name!r} is not a parameter of {nb.name}"
        default, comment = params[name]
        assert _same_kind(default, value, comment), (f"{path}: {name}={value!r} but {nb.name} has "
                                                     f"{name} = {default!r}  {comment}")


# --------------------------------------------------------------------------- the paper profile's first steps
def _write_shanghaitech(root: Path) -> Path:
    """A tiny ShanghaiTech Part B (3 train, 2 test images) and its NWPU-format localization file."""
    from PIL import Image
    from test_formats_mat import write_sht_mat

    rng = np.random.default_rng(0)
    lines = []
    for split, n in (("train", 3), ("test", 2)):
        base = root / "part_B" / f"{split}_data"
        (base / "images").mkdir(parents=True)
        (base / "ground-truth").mkdir()
        for k in range(1, n + 1):
            Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(base / "images" / f"IMG_{k}.jpg")
            pts = rng.uniform([4, 4], [124, 92], (5 + k, 2))
            write_sht_mat(base / "ground-truth" / f"GT_IMG_{k}.mat", pts)
            if split == "test":
                heads = " ".join(f"{x:.0f} {y:.0f} 8 10 1" for x, y in pts)
                lines.append(f"{400 + k:04d} {len(pts)} {heads}")
    loc = root / "SHHB_test_gt_loc.txt"
    loc.write_text("\n".join(lines) + "\n")
    return loc


#: smaller still than the smoke sizes: the paper's widths (256-channel decoders, VGG-16) are slow on a CPU
TINY = {"n_train": 8, "n_test": 2, "n_test_other": {"shb_like": 2, "faces": 2}, "n_negative": 2, "image_size": 64, "crop": 64,
        "batch_size": 2, "epochs": 1, "max_steps": 1, "trunk_steps": 1, "finetune_steps": 2, "steps": 2,
        "eval_every": 1, "image_sizes": {"sha_like": [64, 64], "shb_like": [64, 64]}, "cells_train": 4,
        "cells_test": 2, "latency_hw": [64, 128], "latency_repeats": 2, "try_compile": False}
#: Fig. 4's crowdedness bins (notebook 12) need the smoke profile's 160-px scenes: 64-px ones have no crowded heads
KEEP_SMOKE = {("12_sdnet_refinement_dynamics", "image_size"), ("12_sdnet_refinement_dynamics", "crop")}
SHANGHAITECH_NOTEBOOKS = {"13_sdnet_shanghaitech", "23_iim_shanghaitech", "33_ssr_hef_shanghaitech"}
PAPER_RUNS = sorted(p.stem for p in (ROOT / "params" / "paper").glob("*.yaml")
                    if p.stem[:2] in {"10", "11", "12", "13", "20", "21", "22", "23", "30", "31", "32", "33", "40", "41", "42",
                                        "51", "52", "53", "54"})


@pytest.mark.parametrize("stem", PAPER_RUNS)
def test_paper_profile_runs_its_first_training_steps(stem: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    pm = pytest.importorskip("papermill")
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        KernelSpecManager().get_kernel_spec("crowdlib")
    except NoSuchKernel:
        pytest.skip("the 'crowdlib' Jupyter kernel is not installed (make setup installs it)")
    nb = NOTEBOOKS / f"{stem}.ipynb"
    defaults = {k: v for k, (v, _) in parameters_cell(nb).items()}
    params = yaml.safe_load((ROOT / "params" / "paper" / f"{stem}.yaml").read_text())
    params.update({k: defaults[k] for k in SIZE_KEYS & defaults.keys()})
    params.update({k: v for k, v in TINY.items() if k in defaults and (stem, k) not in KEEP_SMOKE})
    if "pretrained" in defaults:
        params["pretrained"] = False
    if stem in SHANGHAITECH_NOTEBOOKS:
        loc = _write_shanghaitech(tmp_path / "sht")
        params["data_root"] = str(tmp_path / "sht")
        if "loc_file" in defaults:
            params["loc_file"] = str(loc)
    monkeypatch.setenv("CROWDLIB_REPORTS", str(tmp_path / "reports"))
    monkeypatch.setenv("CROWDLIB_CACHE", str(tmp_path / "cache"))
    pm.execute_notebook(str(nb), str(tmp_path / nb.name), parameters=params, kernel_name="crowdlib",
                        cwd=str(NOTEBOOKS), progress_bar=False, execution_timeout=600)
    out = json.loads((tmp_path / nb.name).read_text())
    text = "".join("".join(o.get("text", "")) for c in out["cells"] for o in c.get("outputs", []))
    assert "NOT found" not in text and "NOT available" not in text, "the generated data were not used"
    assert (tmp_path / "reports" / stem / "results.json").is_file()


def test_missing_pretrained_weights_stop_the_first_cell_with_the_file_and_place(tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch):
    from crowdlib.models.backbones import MissingWeightsError, require_weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr("torch.hub.get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr("crowdlib.paths.project_root", lambda: tmp_path)
    with pytest.raises(MissingWeightsError, match=r"resnet50-0676ba61\.pth.*" + str(tmp_path / "hub" / "checkpoints")):
        require_weights("resnet50", True)
    require_weights("resnet50", False)  # training from scratch needs no file
    require_weights("tiny", False)
    with pytest.raises(ValueError, match="unknown backbone"):
        require_weights("resnet51", True)
    assert os.environ["TORCH_HOME"] == str(tmp_path)
