"""Models: backbones, the registry, and the per-paper networks (registered on import)."""
from __future__ import annotations

import importlib

from crowdlib.models.backbones import Backbone, build_backbone, list_backbones
from crowdlib.models.registry import build_model, get_model, list_models, register_model

__all__ = ["Backbone", "build_backbone", "list_backbones", "build_model", "get_model", "list_models", "register_model"]

for _mod in ("crowdlib.models.csp", "crowdlib.models.iim", "crowdlib.models.baselines", "crowdlib.models.ssrhef",
             "crowdlib.models.bkt"):
    try:
        importlib.import_module(_mod)
    except ModuleNotFoundError as _exc:  # a paper module not written yet must not break the others
        if _exc.name != _mod:
            raise
