"""Calibrate the stand-in presets (sha_like, shb_like) against ShanghaiTech and store the real statistics.

Prints, per preset, the real and synthetic count and nearest-neighbour statistics side by side, and (with
``--write``) stores the real statistics in ``crowdlib/data/real_stats.json`` so that notebooks can show the
calibration target where the data are absent. Run before any test result is looked at; the presets' values in
``crowdlib/data/synth_config.py`` are then fixed.

    .venv/bin/python tools/calibrate_synthetic.py --n 100 --write
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from crowdlib.data import synth_stats
from crowdlib.data.synthetic import SyntheticCrowds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-root", default=None, help="ShanghaiTech folder (default: crowdlib.paths)")
    ap.add_argument("--n", type=int, default=100, help="synthetic images rendered per preset (default 100)")
    ap.add_argument("--seed", type=int, default=0, help="synthetic dataset seed (default 0, the training seed)")
    ap.add_argument("--write", action="store_true", help="store the real statistics in crowdlib/data/")
    args = ap.parse_args()
    stored = {}
    for preset, (part, split) in synth_stats.REAL_COUNTERPART.items():
        real, source = synth_stats.real_calibration_stats(part, args.data_root)
        syn = synth_stats.calibration_stats(SyntheticCrowds(preset, args.n, seed=args.seed))
        stored[f"SH{part}_{split}"] = real
        print(f"\n{preset} against ShanghaiTech {part} {split} ({source})")
        print(synth_stats.calibration_table({f"SH{part} {split}": real, preset: syn}).round(4).T.to_string())
    if args.write:
        path = Path(synth_stats.__file__).with_name(synth_stats.REAL_STATS_FILE)
        path.write_text(json.dumps(stored, indent=1) + "\n")
        print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
