"""A model registry in the style of torchvision's ``get_model`` / ``list_models``.

A registered builder takes a config dict and returns ``(model, criterion)``; ``build_model(cfg)`` looks the
builder up by ``cfg["model"]``. ``get_model(name, **cfg)`` returns just the model.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from torch import nn

__all__ = ["register_model", "build_model", "get_model", "list_models"]

Builder = Callable[[dict], tuple[nn.Module, nn.Module]]
_BUILDERS: dict[str, Builder] = {}


def register_model(name: str) -> Callable[[Builder], Builder]:
    """Decorator: register ``fn(cfg) -> (model, criterion)`` under ``name`` (names must be unique)."""

    def wrap(fn: Builder) -> Builder:
        if name in _BUILDERS and _BUILDERS[name] is not fn:
            raise ValueError(f"a model named {name!r} is already registered")
        _BUILDERS[name] = fn
        return fn

    return wrap


def list_models() -> list[str]:
    """The names of every registered model, sorted."""
    return sorted(_BUILDERS)


def build_model(cfg: Mapping[str, Any]) -> tuple[nn.Module, nn.Module]:
    """Build ``(model, criterion)`` from a config whose ``"model"`` key names a registered builder."""
    if "model" not in cfg:
        raise ValueError(f"config has no 'model' key; registered models: {list_models()}")
    name = cfg["model"]
    if name not in _BUILDERS:
        raise ValueError(f"unknown model {name!r}; registered models: {list_models()}")
    return _BUILDERS[name](dict(cfg))


def get_model(name: str, **cfg: Any) -> nn.Module:
    """Build and return only the model of builder ``name``."""
    model, _ = build_model({"model": name, **cfg})
    return model
