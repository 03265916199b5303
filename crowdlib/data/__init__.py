"""Data: the record type, the synthetic crowd world, datasets and augmentation.

``crowdlib.data.records.CrowdRecord`` is the one record type; ``crowdlib.data.synthetic`` renders scenes;
``crowdlib.data.datasets.CrowdDataset`` combines an annotation source with a target builder;
``crowdlib.data.transforms`` moves points and boxes with the image. Real-format readers live in
``crowdlib.data.formats``.
"""
from crowdlib.data.datasets import (CrowdDataset, IndexedSource, collate_crowd, denormalize, make_loader,
                                    normalize, split_train_val)
from crowdlib.data.records import CrowdRecord
from crowdlib.data.synthetic import PRESETS, SceneConfig, SyntheticCrowds, list_presets, render_scene
from crowdlib.data.transforms import IMAGENET_MEAN, IMAGENET_STD, EvalTransform, TrainTransform, unmap_points

__all__ = [
    "CrowdRecord", "PRESETS", "SceneConfig", "SyntheticCrowds", "list_presets", "render_scene", "CrowdDataset",
    "IndexedSource", "collate_crowd", "denormalize", "normalize", "make_loader", "split_train_val",
    "IMAGENET_MEAN", "IMAGENET_STD", "EvalTransform", "TrainTransform", "unmap_points",
]
