"""L2R (Liu, van de Weijer and Bagdanov, "Leveraging Unlabeled Data for Crowd Counting by Learning to Rank",
CVPR 2018): a density-map counter trained with a ranking loss on nested crops of unlabeled images; notebooks
``40``-``42``. The authors published only an inference network definition; this is a training implementation
from the paper's text (our copy: a review, ``shared/papers/l2r_review.txt``).

1. A run is one flat, hashable config (:data:`DEFAULTS`, :func:`make_config`; ``config.py``).
2. Data (``data.py``): labelled records, the unlabeled pool (pixels only), labelled crops with density targets,
   nests of nested crops (:func:`crowdlib.targets.ranking.nested_crops`), whole-image evaluation tensors.
3. Network and loss: ``crowdlib.models.l2r`` (VGG-16 to conv5_3 or MobileNetV2 to stride 16, a 3 x 3 convolution)
   and ``crowdlib.losses.l2r`` (counting MSE, the pairwise ranking hinge on average-pooled maps).
4. Training (``train.py``): the paradigm schedules (:func:`phase`), mini-batches of labelled crops and nests,
   model selection on validation carved from the labelled training images, the ``l2r`` cache.
5. Scoring (``infer.py``): whole-image counts, MAE / MSE, ranking accuracy on held-out nests.
6. Studies (``study.py``): Table 2 (paradigms x ImageNet initialisation), the label-scarcity curve, the SHB row,
   the review's claims; analyses (``analysis.py``): the nest drawing, ranking-only maps against true counts.
"""
from __future__ import annotations

import crowdlib.models.l2r  # noqa: F401  (registers the "l2r" model)
from crowdlib.losses.l2r import L2RLoss, average_count, count_mse, ranking_accuracy, ranking_hinge
from crowdlib.targets.ranking import crop_counts, nest_pairs, nested_crops, ranking_pairs

from .config import DEFAULTS, PARADIGMS, make_config
from .data import (LabelledImage, UnlabeledImage, count_target, crop_tensors, eval_tensor, image_u8, load_labelled,
                   load_pool, load_records, sample_count_crops, sample_nests)
from .infer import evaluate_model, nest_ranking, predict_density
from .train import (L2RBatches, get_or_train_l2r, load_trained, phase, schedule, split_labelled, total_steps,
                    train_l2r)

__all__ = [
    "DEFAULTS", "PARADIGMS", "make_config", "L2RLoss", "average_count", "count_mse", "ranking_accuracy",
    "ranking_hinge", "crop_counts", "nest_pairs", "nested_crops", "ranking_pairs",
    "LabelledImage", "UnlabeledImage", "count_target", "crop_tensors", "eval_tensor", "image_u8", "load_labelled",
    "load_pool", "load_records", "sample_count_crops", "sample_nests",
    "evaluate_model", "nest_ranking", "predict_density",
    "L2RBatches", "get_or_train_l2r", "load_trained", "phase", "schedule", "split_labelled", "total_steps",
    "train_l2r",
]
