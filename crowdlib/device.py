"""Device selection and mixed precision.

``pick_device()`` returns CUDA when it is available and the CPU otherwise; pass a name ("cpu", "cuda",
"cuda:1") to override. Mixed precision is bf16 autocast on CUDA only: on a CPU ``autocast`` is a no-op so
that CPU results stay in float32 and comparable across machines.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

__all__ = ["pick_device", "autocast", "apply_thread_limit", "positive_int_env", "describe_devices", "flush_denormal"]


def positive_int_env(name: str) -> int | None:
    """The positive integer in environment variable ``name``, or ``None`` when it is unset or empty.

    Raises:
        ValueError: when the value is not an integer or is below 1 (the message names the variable).
    """
    value = os.environ.get(name)
    if not value:
        return None
    try:
        n = int(value)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {value!r}") from exc
    if n < 1:
        raise ValueError(f"{name} must be >= 1, got {n}")
    return n


def apply_thread_limit() -> int:
    """Honour ``CROWDLIB_TORCH_THREADS`` (an integer) by calling ``torch.set_num_threads``; return the thread count."""
    n = positive_int_env("CROWDLIB_TORCH_THREADS")
    if n is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return torch.get_num_threads()


def pick_device(name: str | torch.device | None = None) -> torch.device:
    """Return ``torch.device(name)`` if given, else ``cuda`` when available, else ``cpu``.

    Raises:
        ValueError: if CUDA is asked for but not available.
    """
    apply_thread_limit()
    if name is None or name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was requested but CUDA is not available on this machine")
    return dev


@contextlib.contextmanager
def autocast(device: torch.device | str, enabled: bool = True) -> Iterator[None]:
    """bf16 autocast on CUDA when ``enabled``; a no-op on other devices."""
    dev = torch.device(device)
    if enabled and dev.type == "cuda":
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
            yield
    else:
        yield


def describe_devices() -> list[dict]:
    """One dict per usable device (always the CPU, then every CUDA device) for notebooks and provenance."""
    out = [{"device": "cpu", "name": "CPU", "threads": torch.get_num_threads(), "cpu_count": os.cpu_count()}]
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            out.append({"device": f"cuda:{i}", "name": p.name, "memory_gib": round(p.total_memory / 2**30, 1)})
    return out


class flush_denormal(contextlib.ContextDecorator):
    """Run a block with ``torch.set_flush_denormal(True)``: subnormal floats are read and written as 0 on the CPU.

    Why: networks whose outputs are driven towards 0 almost everywhere (a dot-map decoder under a focal loss, a
    density regressor on sparse crowds) fill their backward pass with subnormal gradients, which x86 CPUs process
    10-100x slower; a training step of bi-knowledge transfer's Phi went from 0.75 s to 1.9 s once its loss fell.
    Flushing changes values below ~1e-38 only. torch offers no getter, so the setting is restored to torch's default
    (off) when the outermost block exits; nested uses are fine. No effect on CUDA.
    """

    _depth = 0

    def __enter__(self) -> "flush_denormal":
        if flush_denormal._depth == 0:
            torch.set_flush_denormal(True)
        flush_denormal._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        flush_denormal._depth -= 1
        if flush_denormal._depth == 0:
            torch.set_flush_denormal(False)
