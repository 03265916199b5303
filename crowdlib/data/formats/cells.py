"""Cell counting sets in dot-image form.

* VGG cells (Lempitsky and Zisserman): ``NNNcell.png`` with ``NNNdots.png`` beside it; every pure red
  pixel ``(255, 0, 0)`` of the dots image is one cell.
* Adipocytes (GTEx, via count-ception): ``images/<name>.jpeg`` with ``annotations/<name>.jpeg``, red dots
  on black in a lossy JPEG: the red channel is thresholded, connected components (8-connectivity) are
  the cells, their centroids the points.

Points are pixel centres ``(col + 0.5, row + 0.5)``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from crowdlib.data.formats._common import FormatError, build_record, image_size_of, load_rgb

__all__ = ["read_adipocyte", "read_red_dot_jpeg", "read_vgg_cells", "read_vgg_dots"]


def _check_same_size(ann: Path, image_path: Path | None, size: tuple[int, int]) -> None:
    if image_path is not None:
        isz = image_size_of(image_path)
        if isz != size:
            raise FormatError(f"{ann}: annotation is {size[1]}x{size[0]} but image {image_path} is {isz[1]}x{isz[0]}")


def read_vgg_dots(path: str | Path, *, image_path: str | Path | None = None):
    """One VGG-cells dots PNG (pure red pixels) into a ``CrowdRecord``."""
    p = Path(path)
    rgb = load_rgb(p).astype(np.int16)
    size = (rgb.shape[0], rgb.shape[1])
    ip = Path(image_path) if image_path is not None else None
    _check_same_size(p, ip, size)
    rows, cols = np.nonzero((rgb[..., 0] == 255) & (rgb[..., 1] == 0) & (rgb[..., 2] == 0))
    pts = np.stack([cols + 0.5, rows + 0.5], axis=1)
    image_id = p.stem[:-4] if p.stem.endswith("dots") else p.stem
    return build_record(image_id, pts, p, image_path=ip, image_size=size, meta={"source": "vgg_cells"})


def read_vgg_cells(root: str | Path, *, progress: bool = False) -> list:
    """All ``NNNcell.png``/``NNNdots.png`` pairs in ``root``, sorted by number."""
    from tqdm.auto import tqdm

    r = Path(root)
    cells = sorted(r.glob("*cell.png"))
    if not cells:
        raise FormatError(f"{r}: no '*cell.png' images found")
    out = []
    for c in tqdm(cells, desc="VGG cells", disable=not progress):
        dots = c.with_name(c.name[: -len("cell.png")] + "dots.png")
        if not dots.is_file():
            raise FormatError(f"{dots}: dot annotation missing for image {c}")
        out.append(read_vgg_dots(dots, image_path=c))
    return out


def read_red_dot_jpeg(path: str | Path, *, image_path: str | Path | None = None, threshold: int = 128):
    """Red-dot annotation image: red channel ``> threshold``, 8-connected components -> centroids."""
    p = Path(path)
    rgb = load_rgb(p)
    size = (rgb.shape[0], rgb.shape[1])
    ip = Path(image_path) if image_path is not None else None
    _check_same_size(p, ip, size)
    mask = rgb[..., 0] > threshold
    lab, n = ndimage.label(mask, structure=np.ones((3, 3), dtype=bool))
    if n:
        com = np.asarray(ndimage.center_of_mass(mask, lab, index=np.arange(1, n + 1)), dtype=np.float64)
        pts = com[:, ::-1] + 0.5
    else:
        pts = np.zeros((0, 2))
    return build_record(p.stem, pts, p, image_path=ip, image_size=size,
                        meta={"source": "adipocyte", "threshold": threshold})


def read_adipocyte(root: str | Path, *, threshold: int = 128, progress: bool = False) -> list:
    """All ``images/*.jpeg`` with their ``annotations/*.jpeg`` under ``root``, sorted by name."""
    from tqdm.auto import tqdm

    r = Path(root)
    imgs = sorted((r / "images").glob("*.jp*g"))
    if not imgs:
        raise FormatError(f"{r / 'images'}: no JPEG images found")
    out = []
    for img in tqdm(imgs, desc="adipocyte", disable=not progress):
        ann = r / "annotations" / img.name
        if not ann.is_file():
            raise FormatError(f"{ann}: dot annotation missing for image {img}")
        out.append(read_red_dot_jpeg(ann, image_path=img, threshold=threshold))
    return out
