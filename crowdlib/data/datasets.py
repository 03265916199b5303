"""``CrowdDataset``: an annotation source (``Sequence[CrowdRecord]``) times a target builder.

As in CenterNet, *what* is annotated (a reader or the synthetic world) is separate from *what the model is
trained on* (a density map, a heat map, an instance map...): ``CrowdDataset(source, target_builder,
transform)`` loads a record, applies the transform (which moves points and boxes with the image), normalises
the image with the ImageNet mean and std, then calls ``target_builder(sample)`` and merges the returned dict
into the sample (NumPy arrays become tensors).

A sample is a dict with ``"image"`` ``(3, H, W)`` float, ``"points"`` ``(K, 2)``, ``"boxes"`` ``(K, 4)``
(``(0, 4)`` when the source has none), ``"index"`` (position in this dataset), ``"image_id"``,
``"orig_size"`` ``(H0, W0)`` and the augmentation record ``"keep"``, ``"scale"``, ``"offset"``, ``"flip"``
(see :mod:`crowdlib.data.transforms`; :func:`crowdlib.data.transforms.unmap_points` maps back).

Randomness: ``dataset[i]`` draws the augmentation seed from torch's global generator;
``dataset[(i, seed)]`` uses ``seed``. :func:`make_loader` feeds ``(index, seed)`` pairs drawn from its own
seeded generator, so a loader is deterministic given its seed, whatever ``num_workers`` is.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from crowdlib.data.records import CrowdRecord
from crowdlib.data.transforms import IMAGENET_MEAN, IMAGENET_STD, EvalTransform

try:  # the foundation's worker seeding, when present
    from crowdlib.repro import seed_worker as _seed_worker
except ImportError:  # pragma: no cover - fallback for a partial checkout
    def _seed_worker(worker_id: int) -> None:
        """Seed NumPy and ``random`` in a DataLoader worker from torch's per-worker seed."""
        s = torch.initial_seed() % 2**32
        np.random.seed(s)
        random.seed(s)

_MEAN = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
_STD = torch.tensor(IMAGENET_STD).view(3, 1, 1)


def normalize(image: torch.Tensor) -> torch.Tensor:
    """``[0, 1]`` image(s) ``(..., 3, H, W)`` -> ImageNet-normalised."""
    return (image - _MEAN.to(image)) / _STD.to(image)


def denormalize(image: torch.Tensor) -> torch.Tensor:
    """Invert :func:`normalize`: ImageNet-normalised ``(..., 3, H, W)`` -> ``[0, 1]`` (clamped)."""
    return (image * _STD.to(image) + _MEAN.to(image)).clamp(0, 1)


def to_numpy_image(image: torch.Tensor) -> np.ndarray:
    """A normalised ``(3, H, W)`` tensor -> ``(H, W, 3)`` uint8 array for display."""
    x = denormalize(image.detach().cpu().float())
    return (x.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)


def _to_tensor(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        t = torch.from_numpy(np.ascontiguousarray(v))
        return t.float() if t.dtype == torch.float64 else t
    return v


class CrowdDataset(Dataset):
    """Annotation source x target builder (x transform).

    Args:
        source: any ``Sequence[CrowdRecord]`` (a reader, :class:`~crowdlib.data.synthetic.SyntheticCrowds`).
        target_builder: ``f(sample) -> dict`` called after the transform on the sample dict; its entries are
            merged into the sample (NumPy arrays converted to tensors). ``None``: no targets.
        transform: a :class:`~crowdlib.data.transforms.TrainTransform`, :class:`EvalTransform` (default) or any
            callable with the same signature.
        normalize: apply ImageNet normalisation to the image (default ``True``).
    """

    def __init__(self, source: Sequence[CrowdRecord], target_builder: Callable[[dict], dict] | None = None,
                 transform: Callable[..., dict] | None = None, normalize: bool = True) -> None:
        if not hasattr(source, "__getitem__") or not hasattr(source, "__len__"):
            raise ValueError(f"source: expected a Sequence[CrowdRecord], got {type(source).__name__}")
        self.source = source
        self.target_builder = target_builder
        self.transform = transform if transform is not None else EvalTransform()
        self.normalize = bool(normalize)

    def __len__(self) -> int:
        return len(self.source)

    def record(self, index: int) -> CrowdRecord:
        """The source record behind sample ``index``."""
        return self.source[index]

    def __getitem__(self, item: int | tuple[int, int]) -> dict[str, Any]:
        if isinstance(item, (tuple, list)):
            index, seed = int(item[0]), int(item[1])
        else:
            index, seed = int(item), None
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"CrowdDataset index {index} out of range for {len(self)} samples")
        rec = self.source[index]
        if not isinstance(rec, CrowdRecord):
            raise ValueError(f"source[{index}]: expected a CrowdRecord, got {type(rec).__name__}")
        image = rec.load_image()
        g = None
        if getattr(self.transform, "random", True):
            if seed is None:
                seed = int(torch.randint(0, 2**62, (1,)).item())
            g = torch.Generator()
            g.manual_seed(seed)
        out = self.transform(image, rec.points, rec.boxes, g)
        img = out["image"]
        sample: dict[str, Any] = {
            "image": normalize(img) if self.normalize else img,
            "points": out["points"],
            "boxes": out["boxes"] if out.get("boxes") is not None else torch.zeros((0, 4)),
            "index": index,
            "image_id": rec.image_id,
            "orig_size": (int(image.shape[0]), int(image.shape[1])),
            "keep": out["keep"],
            "scale": float(out["scale"]),
            "offset": tuple(float(v) for v in out["offset"]),
            "flip": bool(out["flip"]),
        }
        if self.target_builder is not None:
            targets = self.target_builder(sample)
            if not isinstance(targets, dict):
                raise ValueError(f"target_builder must return a dict, got {type(targets).__name__}")
            for k, v in targets.items():
                sample[k] = _to_tensor(v)
        return sample

    def subset(self, indices: Sequence[int]) -> CrowdDataset:
        """A dataset over ``source[indices]`` with the same target builder and transform."""
        return CrowdDataset(IndexedSource(self.source, indices), self.target_builder, self.transform,
                            self.normalize)

    def with_transform(self, transform: Callable[..., dict] | None) -> CrowdDataset:
        """The same source and target builder with another transform (e.g. train vs eval)."""
        return CrowdDataset(self.source, self.target_builder, transform, self.normalize)


class IndexedSource(Sequence):
    """``source[indices[i]]`` as a ``Sequence[CrowdRecord]`` (a ``Subset`` for annotation sources)."""

    def __init__(self, source: Sequence[CrowdRecord], indices: Sequence[int]) -> None:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if len(idx) and (idx.min() < 0 or idx.max() >= len(source)):
            raise ValueError(f"indices: values must lie in [0, {len(source)}), got range "
                             f"[{idx.min()}, {idx.max()}]")
        self.source = source
        self.indices = idx

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return self.source[int(self.indices[i])]


def split_train_val(n: int, val_fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random split of ``range(n)`` into sorted ``(train_idx, val_idx)``.

    The validation part is carved from the *training* data; never pass a test split here: thresholds
    and hyper-parameters are chosen on this validation part, and the test split is touched only for the
    final numbers. ``val_fraction`` of ``n`` (rounded, at least 1 when ``0 < val_fraction`` and ``n >= 2``)
    goes to validation.
    """
    n = int(n)
    if n < 0:
        raise ValueError(f"n: expected a non-negative size, got {n}")
    if not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction: expected a value in [0, 1), got {val_fraction}")
    n_val = int(round(n * val_fraction))
    if val_fraction > 0 and n >= 2:
        n_val = min(max(n_val, 1), n - 1)
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def collate_crowd(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Collate samples: stack images (equal sizes required) and same-shaped tensor targets; keep lists.

    ``points``, ``boxes`` and ``keep`` stay lists of per-image tensors; ``index``, ``scale``, ``flip`` become
    tensors, ``offset`` a ``(B, 2)`` tensor; other tensors are stacked when shapes match (else lists);
    anything else is a list.
    """
    if not batch:
        raise ValueError("collate_crowd: empty batch")
    shapes = {tuple(b["image"].shape) for b in batch}
    if len(shapes) > 1:
        raise ValueError(f"collate_crowd: images have different sizes {sorted(shapes)}; use a crop_size in "
                         f"TrainTransform or batch_size=1")
    out: dict[str, Any] = {"image": torch.stack([b["image"] for b in batch])}
    for key in batch[0]:
        if key == "image":
            continue
        vals = [b[key] for b in batch]
        if key in ("points", "boxes", "keep"):
            out[key] = vals
        elif key == "index":
            out[key] = torch.tensor(vals, dtype=torch.int64)
        elif key == "scale":
            out[key] = torch.tensor(vals, dtype=torch.float32)
        elif key == "flip":
            out[key] = torch.tensor(vals, dtype=torch.bool)
        elif key == "offset":
            out[key] = torch.tensor(vals, dtype=torch.float32).reshape(-1, 2)
        elif all(torch.is_tensor(v) for v in vals) and len({tuple(v.shape) for v in vals}) == 1:
            out[key] = torch.stack(vals)
        else:
            out[key] = vals
    return out


class SeededSampler(Sampler):
    """Yields ``(index, augmentation_seed)`` pairs from a seeded generator (shuffled or in order).

    Each epoch draws a fresh permutation (when ``shuffle``) and fresh seeds from the same generator, so the
    whole sequence of epochs is fixed by the generator's seed.

    With ``world_size > 1`` it is this library's ``DistributedSampler``: every rank draws the same sequence and
    keeps the pairs at positions ``rank, rank + world_size, ...`` of its first ``n // world_size * world_size``
    (the rest is dropped so that all ranks take the same number of steps). The union of the ranks' k-th batches
    of ``b`` pairs is then the single-process k-th batch of ``b * world_size`` pairs (see
    :mod:`crowdlib.distributed`).
    """

    def __init__(self, n: int, shuffle: bool, generator: torch.Generator, rank: int = 0, world_size: int = 1) -> None:
        if int(world_size) < 1 or not 0 <= int(rank) < int(world_size):
            raise ValueError(f"SeededSampler: need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        self.n = int(n)
        self.shuffle = bool(shuffle)
        self.generator = generator
        self.rank, self.world_size = int(rank), int(world_size)

    def __len__(self) -> int:
        return self.n if self.world_size == 1 else self.n // self.world_size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = torch.randperm(self.n, generator=self.generator) if self.shuffle else torch.arange(self.n)
        seeds = torch.randint(0, 2**62, (self.n,), generator=self.generator)
        pairs = list(zip(order.tolist(), seeds.tolist()))
        if self.world_size > 1:
            pairs = pairs[: self.n // self.world_size * self.world_size][self.rank::self.world_size]
        return iter(pairs)


def make_loader(dataset: CrowdDataset, batch_size: int, shuffle: bool, seed: int, num_workers: int = 0,
                drop_last: bool = False, rank: int = 0, world_size: int = 1) -> DataLoader:
    """A deterministic DataLoader: order and augmentations are fixed by ``seed`` (for any ``num_workers``).

    With ``world_size > 1`` (distributed training) ``batch_size`` is the global batch: this rank loads its
    shard (:class:`SeededSampler`) in batches of ``batch_size // world_size``.

    Raises:
        ValueError: ``batch_size`` < 1, or not divisible by ``world_size``.
    """
    if int(batch_size) < 1:
        raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
    if int(batch_size) % int(world_size):
        raise ValueError(f"batch_size {batch_size} (the global batch) is not divisible by world_size {world_size}")
    g = torch.Generator()
    g.manual_seed(int(seed))
    sampler = SeededSampler(len(dataset), shuffle, g, rank, world_size)
    return DataLoader(dataset, batch_size=int(batch_size) // int(world_size), sampler=sampler,
                      collate_fn=collate_crowd, num_workers=int(num_workers),
                      worker_init_fn=_seed_worker if num_workers > 0 else None,
                      generator=g, drop_last=drop_last, persistent_workers=False)
