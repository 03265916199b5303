"""The one training/evaluation engine every method uses (shaped like torchvision's detection references).

``train_one_epoch`` runs one pass over a loader: forward, the loss object's named terms, backward, optional
gradient clipping, optimizer and scheduler steps, then an ``after_step`` hook (Crowd-SDNet's pseudo-box
refinement lives there). It stops with :class:`NonFiniteLossError` on a NaN/inf loss instead of training on.
Under ``torchrun`` with a ``DistributedDataParallel`` model (:mod:`crowdlib.distributed`) it runs unchanged on
each rank and returns the means over ranks, so that every rank logs the global batch's loss.
``evaluate`` runs the model in eval mode and hands each batch's outputs to a ``postprocess`` function.
"""
from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from crowdlib import distributed
from crowdlib.device import autocast

__all__ = ["NonFiniteLossError", "to_device", "default_prepare_batch", "make_lr_schedule", "train_one_epoch",
           "evaluate"]


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training stops rather than corrupting the model."""


def to_device(obj: Any, device: torch.device) -> Any:
    """Move tensors inside (nested) dicts, lists and tuples to ``device``; leave everything else as is."""
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    if isinstance(obj, Mapping):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, list):
        return [to_device(v, device) for v in obj]
    if isinstance(obj, tuple):
        return tuple(to_device(v, device) for v in obj)
    return obj


def default_prepare_batch(batch: Mapping[str, Any], device: torch.device) -> tuple[torch.Tensor, dict]:
    """Inputs are ``batch["image"]``; targets are the whole batch, tensors moved to ``device``."""
    targets = to_device(dict(batch), device)
    return targets["image"], targets


def _batch_size(inputs: Any) -> int:
    if isinstance(inputs, torch.Tensor):
        return int(inputs.shape[0])
    if isinstance(inputs, (list, tuple)):
        return len(inputs)
    return 1


def make_lr_schedule(opt: torch.optim.Optimizer, kind: str, warmup: int, total: int) -> Any:
    """Per-iteration learning-rate schedule for :func:`train_one_epoch`'s ``scheduler``: ``"constant"`` (returns
    None), or ``"cosine"``: linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``total`` steps.

    Raises:
        ValueError: on another ``kind``.
    """
    if kind == "constant":
        return None
    if kind != "cosine":
        raise ValueError(f"make_lr_schedule: schedule must be 'constant' or 'cosine', got {kind!r}")
    total, warmup = max(int(total), 1), max(int(warmup), 0)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / float(warmup)
        t = min(1.0, (step - warmup) / max(1, total - warmup))
        return 0.5 * (1.0 + math.cos(math.pi * t))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def train_one_epoch(
    model: nn.Module,
    criterion: Callable[[Any, Any], Mapping[str, torch.Tensor]],
    loader: Iterable,
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    epoch: int,
    *,
    prepare_batch: Callable[[Any, torch.device], tuple[Any, Any]] | None = None,
    after_step: Callable[[Any, Any, int], None] | None = None,
    scheduler: Any = None,
    max_norm: float = 0.0,
    amp: bool = True,
    progress: bool = True,
    max_steps: int | None = None,
) -> dict[str, float]:
    """Train ``model`` for one epoch and return the mean of every loss term plus throughput.

    Args:
        criterion: returns a dict with ``"loss"`` (the weighted total) and the named terms.
        prepare_batch: ``(batch, device) -> (inputs, targets)``; default :func:`default_prepare_batch`.
        after_step: called as ``after_step(outputs, batch, step)`` after each optimizer step, outputs detached.
        scheduler: stepped once per iteration when given.
        max_norm: clip the gradient norm to this value when > 0.
        amp: bf16 autocast on CUDA (no effect on CPU).
        max_steps: stop after this many steps (for smoke profiles).

    Raises:
        NonFiniteLossError: the total loss is NaN or infinite (names the epoch, step and each term's value).
    """
    prepare = prepare_batch or default_prepare_batch
    model.train()
    sums: dict[str, float] = defaultdict(float)
    steps, images = 0, 0
    t0 = time.perf_counter()
    try:
        total = len(loader)  # type: ignore[arg-type]
    except TypeError:
        total = None
    if max_steps is not None and total is not None:
        total = min(total, max_steps)
    bar = tqdm(loader, total=total, desc=f"epoch {epoch}", leave=False, disable=not progress)
    for batch in bar:
        if max_steps is not None and steps >= max_steps:
            break
        inputs, targets = prepare(batch, device)
        with autocast(device, enabled=amp):
            outputs = model(inputs)
            losses = criterion(outputs, targets)
        loss = losses["loss"]
        if not math.isfinite(float(loss.detach())):
            terms = {k: float(v.detach()) for k, v in losses.items()}
            raise NonFiniteLossError(f"non-finite loss at epoch {epoch}, step {steps}: {terms}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if max_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        if after_step is not None:
            after_step(_detach(outputs), batch, steps)
        for k, v in losses.items():
            sums[k] += float(v.detach())
        steps += 1
        images += _batch_size(inputs)
        if progress:
            bar.set_postfix({k: f"{v / steps:.4f}" for k, v in sums.items()})
    bar.close()
    seconds = time.perf_counter() - t0
    out = {k: v / max(steps, 1) for k, v in sums.items()}
    info = distributed.current()
    if info.enabled:  # every rank logs the global batch's means and the images of all ranks
        out = distributed.mean_over_ranks(out)
        images *= info.world_size
    out.update(steps=float(steps), images=float(images), seconds=seconds,
               images_per_s=images / seconds if seconds > 0 else float("nan"))
    return out


def _detach(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach()
    if isinstance(obj, Mapping):
        return {k: _detach(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_detach(v) for v in obj)
    return obj


@torch.no_grad()
def evaluate(
    model: nn.Module,
    loader: Iterable,
    device: torch.device,
    postprocess: Callable[[Any, Any], list],
    *,
    prepare_batch: Callable[[Any, torch.device], tuple[Any, Any]] | None = None,
    amp: bool = True,
    progress: bool = True,
) -> list:
    """Run ``model`` in eval mode over ``loader``; return the concatenation of ``postprocess(outputs, batch)``."""
    prepare = prepare_batch or default_prepare_batch
    was_training = model.training
    model.eval()
    results: list = []
    try:
        for batch in tqdm(loader, desc="evaluate", leave=False, disable=not progress):
            inputs, _ = prepare(batch, device)
            with autocast(device, enabled=amp):
                outputs = model(inputs)
            outputs = _to_float(outputs)
            results.extend(postprocess(outputs, batch))
    finally:
        model.train(was_training)
    return results


def _to_float(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.float() if obj.is_floating_point() else obj
    if isinstance(obj, Mapping):
        return {k: _to_float(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_float(v) for v in obj)
    return obj
