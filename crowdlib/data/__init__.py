"""Data: the record type, the synthetic crowd world, datasets and augmentation.

``crowdlib.data.records.CrowdRecord`` is the one record type; ``crowdlib.data.synthetic`` renders scenes;
``crowdlib.data.datasets.CrowdDataset`` combines an annotation source with a target builder;
``crowdlib.data.transforms`` moves points and boxes with the image. Real-format readers live in
``crowdlib.data.formats``.

The names below are imported lazily (PEP 562), so ``import crowdlib.data.formats`` or the metrics command line
does not pay for importing torch and torchvision.
"""
from __future__ import annotations

import importlib
from typing import Any

from crowdlib.data.records import CrowdRecord, ImageReadError

_LAZY = {
    "crowdlib.data.datasets": ("CrowdDataset", "IndexedSource", "collate_crowd", "denormalize", "make_loader",
                               "normalize", "split_train_val"),
    "crowdlib.data.synthetic": ("PRESETS", "SceneConfig", "SyntheticCrowds", "list_presets", "render_scene"),
    "crowdlib.data.transforms": ("IMAGENET_MEAN", "IMAGENET_STD", "EvalTransform", "TrainTransform", "unmap_points"),
}
_WHERE = {name: mod for mod, names in _LAZY.items() for name in names}

__all__ = ["CrowdRecord", "ImageReadError", *_WHERE]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'crowdlib.data' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
