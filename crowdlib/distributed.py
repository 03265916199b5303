"""Multi-process data-parallel training: ``torchrun --nproc_per_node N`` with ``DistributedDataParallel``.

The engine (:func:`crowdlib.engine.train_one_epoch`) trains a DDP-wrapped model unchanged: DDP averages the
gradients of the ranks in ``backward``. What a training loop adds is here:

- :func:`init_from_env` reads the variables ``torchrun`` sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
  ``MASTER_ADDR``/``MASTER_PORT``) and joins the process group (NCCL on CUDA, gloo on the CPU). Without them,
  or with ``WORLD_SIZE=1``, it returns the single-process :class:`DistInfo` and touches nothing.
- :func:`wrap` puts a model in ``DistributedDataParallel`` (``SyncBatchNorm`` first on CUDA; PyTorch has no CPU
  SyncBatchNorm, so on gloo each rank normalises with its own share of the batch).
- Data: :class:`crowdlib.data.datasets.SeededSampler` with ``rank``/``world_size`` is this library's
  ``DistributedSampler``: the single-process sequence of ``(index, augmentation seed)`` pairs is cut into
  rank-strided shards, so the union of the ranks' k-th batches (each ``batch_size / world_size``) is the
  single-process run's k-th batch of the same global ``batch_size``, with the same augmentations.
- :func:`shared_denominator` for losses normalised by a count (positives, supervised pixels),
  :func:`mean_over_ranks` for logged numbers, :func:`broadcast_buffers` so that every rank ends with rank 0's
  BatchNorm statistics (weights are already equal: DDP broadcasts rank 0's at wrap time and all ranks apply
  the same averaged gradients), :func:`all_gather_objects` for anything else a method keeps in sync
  (Crowd-SDNet's pseudo-box store), and :func:`is_main`: checkpoints, caches and reports are written by rank 0.

Seeds per rank: a method seeds its global generators with ``seed + rank`` (rank 0 is the single-process run).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["DistInfo", "current", "init_from_env", "wrap", "unwrap", "is_main", "barrier", "mean_over_ranks",
           "shared_denominator",
           "broadcast_buffers", "all_gather_objects", "shutdown"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size`` processes, ``local_rank`` on its machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if value == "":
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ValueError(f"environment variable {name} must be an integer (torchrun sets it), got {value!r}") from exc


def current() -> DistInfo:
    """The :class:`DistInfo` of an initialised process group, else of the environment, else single-process."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", dist.get_rank()))
    return DistInfo(0, 1, 0)


def init_from_env(device: torch.device | str | None = None, backend: str | None = None) -> DistInfo:
    """Join the process group described by torchrun's environment; return this process's :class:`DistInfo`.

    Args:
        device: the training device; on CUDA the process is pinned to ``cuda:LOCAL_RANK``.
        backend: ``"gloo"`` or ``"nccl"``; default NCCL on CUDA, gloo otherwise.

    Raises:
        RuntimeError: ``WORLD_SIZE`` > 1 but ``MASTER_ADDR``/``MASTER_PORT`` are missing (not started by torchrun).
    """
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return DistInfo(0, 1, 0)
    if dist.is_initialized():
        return current()
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if not os.environ.get(name):
            raise RuntimeError(f"WORLD_SIZE={world} but {name} is not set: start distributed training with "
                               "`torchrun --nproc_per_node N ...`")
    rank, local = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    cuda = torch.device(device).type == "cuda" if device is not None else torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local)
    dist.init_process_group(backend or ("nccl" if cuda else "gloo"), rank=rank, world_size=world)
    return DistInfo(rank, world, local)


def wrap(model: nn.Module, device: torch.device, info: DistInfo | None = None) -> nn.Module:
    """``DistributedDataParallel(model)`` when training on several processes, else ``model`` itself."""
    info = info or current()
    if not info.enabled:
        return model
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        return nn.parallel.DistributedDataParallel(model, device_ids=[device.index])
    return nn.parallel.DistributedDataParallel(model)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel`` wrapper (or ``model`` itself)."""
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def is_main(info: DistInfo | None = None) -> bool:
    """True on rank 0 (and in a single-process run): the process that writes checkpoints, caches and reports."""
    return (info or current()).rank == 0


def barrier() -> None:
    """Wait for every rank (no-op in a single-process run)."""
    if current().enabled:
        dist.barrier()


def mean_over_ranks(values: dict[str, float]) -> dict[str, float]:
    """The mean over ranks of each number in ``values`` (the same keys on every rank); unchanged when alone."""
    if not current().enabled or not values:
        return dict(values)
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64)
    dist.all_reduce(t)
    t /= dist.get_world_size()
    return {k: float(v) for k, v in zip(keys, t.tolist())}


def shared_denominator(count: torch.Tensor, min: float = 1.0) -> torch.Tensor:
    """A loss normaliser that makes DDP's gradient average equal the single-process gradient of the global batch.

    A loss ``local_sum / count`` (number of positives, of supervised pixels...) differs per rank; divided instead
    by ``max(global count, min) / world_size`` and averaged over ranks by DDP it is ``global_sum / max(global
    count, min)``, the single-process loss (as DETR normalises by its all-reduced ``num_boxes``). Alone:
    ``count.clamp(min=min)``. ``count`` carries no gradient.
    """
    count = count.detach().float()
    info = current()
    if not info.enabled:
        return count.clamp(min=min)
    total = count.clone()
    dist.all_reduce(total)
    return total.clamp(min=min) / info.world_size


def broadcast_buffers(model: nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (BatchNorm running statistics) into every rank's ``model``."""
    if not current().enabled:
        return
    for buf in unwrap(model).buffers():
        dist.broadcast(buf.data, src)


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (picklable), in rank order; ``[obj]`` when alone."""
    if not current().enabled:
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def shutdown() -> None:
    """Leave the process group (no-op when none was joined)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
